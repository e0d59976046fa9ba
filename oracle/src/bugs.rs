//! The bug catalogue of `shared/research/rmap-history.md` §7: which
//! historical bugs rmaplab can re-inject (`--bug ID`), into which design and
//! era, and which invariant each breaks.

use crate::design::{DesignName, DesignSpec, EraName};

/// One catalogued bug.
#[derive(Clone, Copy, Debug)]
pub struct Bug {
    pub id: &'static str,
    pub title: &'static str,
    pub commit: &'static str,
    pub years: &'static str,
    /// The design it belongs to and, for chain-2010, the era it lived in.
    pub design: DesignName,
    pub era: Option<EraName>,
    /// The invariant the oracle reports when it fires.
    pub invariant: &'static str,
    /// Whether `--bug` can inject it in this build; if not, why.
    pub injectable: Result<(), &'static str>,
}

/// The catalogue, in id order.
pub const CATALOGUE: &[Bug] = &[
    Bug {
        id: "b01",
        title: "mprotect boundary shift loses the anon_vma (no importer step)",
        commit: "\"[PATCH] mprotect propagate anon_vma\" (Hugh Dickins, 18 Jun 2004)",
        years: "2004",
        design: DesignName::SingleList2004,
        era: None,
        invariant: "findability",
        injectable: Ok(()),
    },
    Bug {
        id: "b02",
        title: "anon_vma_prepare published a new anon_vma without its lock",
        commit: "d9d332e0874f",
        years: "2008",
        design: DesignName::SingleList2004,
        era: None,
        invariant: "(concurrency)",
        injectable: Err("needs concurrent rmap walks; the emulator serialises every op"),
    },
];

/// Looks a bug up by id (lower case, `b01`).
pub fn find(id: &str) -> Option<&'static Bug> {
    CATALOGUE.iter().find(|b| b.id == id)
}

/// Whether `id` can be injected into `spec`'s design.
pub fn applies(id: &str, spec: &DesignSpec) -> bool {
    match find(id) {
        Some(b) => b.injectable.is_ok() && b.design == spec.design,
        None => false,
    }
}
