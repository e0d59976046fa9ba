//! A panic while running a stream is a finding (invariant `panic`,
//! `docs/op-language.md`), not the end of the process: [`catch`] runs one
//! execution under `catch_unwind` and returns the panic's message and
//! location instead.
//!
//! The process-wide panic hook is wrapped once: while the panicking thread
//! is inside [`catch`], the hook only records the message and location
//! (Rust's default hook would print `thread … panicked at …` for every
//! caught panic, thousands of times while a finding is shrunk); anywhere
//! else it calls the hook that was there before, so a panic outside
//! [`catch`] behaves as it did (libFuzzer's and AFL's hooks abort, which is
//! how a fuzz target reports a crash).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

/// A caught panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panic {
    /// The panic's message (`index out of bounds: …`).
    pub message: String,
    /// `FILE:LINE:COL`, the file relative to the repository when it is in
    /// it (the same in every build: the fuzz workspace gives rustc absolute
    /// paths).
    pub location: Option<String>,
}

impl fmt::Display for Panic {
    /// `MESSAGE (at FILE:LINE:COL)`: the `detail` of a `panic` failure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(l) = &self.location {
            write!(f, " (at {l})")?;
        }
        Ok(())
    }
}

impl Panic {
    /// The message part of a `panic` failure's detail ([`Panic`]'s
    /// `Display`), without the location and anything after it.
    pub fn message_of(detail: &str) -> &str {
        match detail.rsplit_once(" (at ") {
            Some((message, _)) => message,
            None => detail.lines().next().unwrap_or_default(),
        }
    }

    fn from_hook(info: &PanicHookInfo<'_>) -> Panic {
        Panic {
            message: payload_text(info.payload()),
            location: info
                .location()
                .map(|l| format!("{}:{}:{}", repo_relative(l.file()), l.line(), l.column())),
        }
    }
}

thread_local! {
    /// How many [`catch`] calls this thread is inside.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// What the hook recorded for the panic being unwound.
    static CAUGHT: RefCell<Option<Panic>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Wraps the current panic hook (once per process): quiet inside [`catch`],
/// the previous hook everywhere else.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) > 0 {
                CAUGHT.with(|c| *c.borrow_mut() = Some(Panic::from_hook(info)));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic inside it is returned as `Err` instead of unwinding
/// further, and nothing is printed for it. The caller must not use state
/// that `f` left half-updated (`f` is asserted unwind-safe: each caller
/// drops or rebuilds what the execution touched).
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    install_hook();
    DEPTH.with(|d| d.set(d.get() + 1));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get() - 1));
    result.map_err(|payload| {
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| Panic {
                message: payload_text(&*payload),
                location: None,
            })
    })
}

fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic whose payload is not a string)".to_string()
    }
}

/// `file` relative to the repository root when it is inside it.
fn repo_relative(file: &str) -> &str {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../");
    // CARGO_MANIFEST_DIR is this crate's folder (`oracle/`); its parent is
    // the repository.
    let root = root.strip_suffix("oracle/../").unwrap_or(root);
    file.strip_prefix(root).unwrap_or(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_value_and_the_next_call_runs() {
        let p = catch(|| -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert_eq!(p.message, "boom 7");
        let loc = p.location.clone().expect("a location");
        assert!(loc.starts_with("oracle/src/run/panic.rs:"), "{loc}");
        assert_eq!(Panic::message_of(&p.to_string()), "boom 7");
        assert_eq!(catch(|| 5), Ok(5));
    }

    #[test]
    fn nested_catches_keep_their_own_panic() {
        let outer = catch(|| {
            let inner = catch(|| panic!("inner"));
            assert_eq!(inner.unwrap_err().message, "inner");
            panic!("outer")
        });
        assert_eq!(outer.unwrap_err().message, "outer");
    }

    #[test]
    fn paths_inside_the_repository_become_relative() {
        let abs = concat!(env!("CARGO_MANIFEST_DIR"), "/src/run/panic.rs");
        assert_eq!(repo_relative(abs), "oracle/src/run/panic.rs");
        assert_eq!(
            repo_relative("impls/src/mmu/mod.rs"),
            "impls/src/mmu/mod.rs"
        );
        assert_eq!(
            repo_relative("/rustc/abc/library/core/src/x.rs"),
            "/rustc/abc/library/core/src/x.rs"
        );
    }
}
