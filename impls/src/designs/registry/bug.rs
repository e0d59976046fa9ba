//! How a design describes the historical bugs it belongs to (the catalogue
//! B00–B23 of `docs/bugs.md`): one [`Bug`] per catalogued bug, in the
//! module of the design that re-injects it (or would). A leaf: it names no
//! design, so every design module may use it while the registry, which
//! gathers the designs' tables, depends on the designs.

/// One catalogued historical bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bug {
    /// Lower case, `b16`.
    pub id: &'static str,
    pub title: &'static str,
    /// The fixing commit(s), or who reported it and when.
    pub commit: &'static str,
    /// When it was in the kernel (`2015-2022`, `2010 (2.6.34-rc1..rc3)`).
    pub years: &'static str,
    /// For a design with eras, the era it lived in, as `--era` spells it
    /// (`"2015"`); the registry checks that the design has that era.
    pub era: Option<&'static str>,
    /// The invariant the oracle reports when it fires (`-` or
    /// `(concurrency)` for a bug the oracle cannot see).
    pub invariant: &'static str,
    /// Bugs that must be injected with it for it to show (b08 is masked
    /// by the fix of b12 its design's era has): `hunt` and the zoo inject
    /// them too.
    pub needs: &'static [&'static str],
    pub injection: Injection,
}

/// Whether `--bug ID` can re-inject a bug in this build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injection {
    /// It can; how the design re-injects it, in one line.
    Injected(&'static str),
    /// It cannot; why.
    NotInjectable(&'static str),
}

impl Bug {
    /// Whether `--bug` can re-inject it.
    pub const fn is_injectable(&self) -> bool {
        matches!(self.injection, Injection::Injected(_))
    }

    /// Why it cannot be re-injected, if it cannot.
    pub const fn why_not(&self) -> Option<&'static str> {
        match self.injection {
            Injection::Injected(_) => None,
            Injection::NotInjectable(why) => Some(why),
        }
    }
}

/// How many of `bugs` are injectable (the length of [`injectable`]'s
/// array).
pub const fn count_injectable(bugs: &[Bug]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < bugs.len() {
        if bugs[i].is_injectable() {
            n += 1;
        }
        i += 1;
    }
    n
}

/// The injectable bugs of `bugs` as `(id, how)`, in table order: the ids a
/// design's constructor accepts. `N` must be [`count_injectable`]`(bugs)`
/// (a smaller `N` fails to compile: the index runs out of bounds).
pub const fn injectable<const N: usize>(bugs: &[Bug]) -> [(&'static str, &'static str); N] {
    let mut out = [("", ""); N];
    let mut k = 0;
    let mut i = 0;
    while i < bugs.len() {
        if let Injection::Injected(how) = bugs[i].injection {
            out[k] = (bugs[i].id, how);
            k += 1;
        }
        i += 1;
    }
    out
}
