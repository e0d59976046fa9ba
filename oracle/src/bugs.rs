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
        id: "b00",
        title: "endless anon_vma growth under fork/exit (no reuse before 3.19)",
        commit: "fixed by 7a3ef208e662",
        years: "2010-2015",
        design: DesignName::Chain2010,
        era: Some(EraName::E2010),
        invariant: "bound",
        injectable: Ok(()),
    },
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
    Bug {
        id: "b03",
        title: "vma_adjust cloned the importer's chain from the wrong VMA",
        commit: "287d97ac0321",
        years: "2010 (2.6.34-rc1..rc3)",
        design: DesignName::Chain2010,
        era: Some(EraName::E2010),
        invariant: "findability",
        injectable: Ok(()),
    },
    Bug {
        id: "b04",
        title: "anon_vma_prepare reused a non-singular neighbour's anon_vma",
        commit: "d0e9fe1758f2",
        years: "2010 (2.6.34-rc1..rc3)",
        design: DesignName::Chain2010,
        era: Some(EraName::E2010),
        invariant: "chain-sets",
        injectable: Ok(()),
    },
    Bug {
        id: "b05",
        title: "swapped-in page pointed at a child's anon_vma",
        commit: "ea90002b0fa7",
        years: "2010 (2.6.34-rc1..rc3)",
        design: DesignName::Chain2010,
        era: Some(EraName::E2010),
        invariant: "dangling",
        injectable: Ok(()),
    },
    Bug {
        id: "b06",
        title: "chain cloned in the wrong order",
        commit: "646d87b481da",
        years: "2010",
        design: DesignName::Chain2010,
        era: Some(EraName::E2010),
        invariant: "-",
        injectable: Err(
            "only meaningful while the oldest anon_vma was found by chain position; the model has ->root",
        ),
    },
    Bug {
        id: "b07",
        title: "error paths of anon_vma_fork/prepare/__split_vma left AVCs behind",
        commit: "4946d54cb55e, 31f2b0ebc01f, 2aeadc30de45",
        years: "2010",
        design: DesignName::Chain2010,
        era: Some(EraName::E2010),
        // The failed fork leaves the cloned AVCs behind (the leak), which the
        // oracle's failed-op trace sees before a walk meets the freed child.
        invariant: "failed-op-trace",
        // Only 4946d54cb55e (anon_vma_fork's own ENOMEM path) is injected:
        // 31f2b0ebc01f needs a concurrent fault, and 2aeadc30de45's path
        // (after a successful clone in __split_vma) cannot fail in this MMU.
        injectable: Ok(()),
    },
    Bug {
        id: "b08",
        title: "new VMA inserted at the head of the anon_vma list",
        commit: "26ba0cb63cb8",
        years: "2010",
        design: DesignName::Chain2010,
        era: Some(EraName::E2010),
        invariant: "(concurrency)",
        injectable: Err(
            "needs a walk running while a VMA is added; the emulator serialises every op",
        ),
    },
    Bug {
        id: "b09",
        title: "exec temporary stack move vs migration",
        commit: "a8bef8ff6ea1",
        years: "2010",
        design: DesignName::Chain2010,
        era: Some(EraName::E2010),
        invariant: "(concurrency)",
        injectable: Err("exec is not in the op language and needs interleaved walks"),
    },
    Bug {
        id: "b10",
        title: "anon_vma root switching under page_lock_anon_vma (RCU reuse)",
        commit: "f18194275c39, 1ce82b69e96c",
        years: "2010-2011",
        design: DesignName::Chain2010,
        era: Some(EraName::E2010),
        invariant: "(concurrency)",
        injectable: Err("RCU/SLAB_TYPESAFE_BY_RCU reuse races are not modelled"),
    },
    Bug {
        id: "b11",
        title: "page_address_in_vma with chains and KSM",
        commit: "ab941e0fff39, 21d0d443cdc1",
        years: "2010",
        design: DesignName::Chain2010,
        era: Some(EraName::E2010),
        invariant: "-",
        injectable: Err("KSM and swapoff are not modelled"),
    },
    Bug {
        id: "b12",
        title: "mremap src/dst order vs the migration walk",
        commit: "486cf46f3f9b",
        years: "2011-2012",
        design: DesignName::Chain2010,
        era: Some(EraName::E2010),
        invariant: "(concurrency)",
        injectable: Err("needs a migration walk interleaved with move_ptes"),
    },
    Bug {
        id: "b13",
        title: "__split_vma reported success after anon_vma_clone failed",
        commit: "c4ea95d7cd08",
        years: "2013-2014 (3.12..3.18)",
        design: DesignName::Chain2010,
        era: Some(EraName::E2015),
        // The new half's pages are unfindable, but the self-check meets its
        // `->anon_vma` first: freed once the original's chain empties
        // (dangling), or not on its empty chain (anon-vma-in-chain).
        invariant: "dangling",
        injectable: Ok(()),
    },
    Bug {
        id: "b14",
        title: "degree underflow when anon_vma_clone fails after reuse",
        commit: "Leon Yu, Mar 2015",
        years: "2015",
        design: DesignName::Chain2010,
        era: Some(EraName::E2015),
        invariant: "counters",
        injectable: Ok(()),
    },
    Bug {
        id: "b15",
        title: "fork reused the previous VMA's anon_vma as parent",
        commit: "4e4a9eb92133",
        years: "2019-2020",
        design: DesignName::Chain2010,
        era: Some(EraName::E2015),
        invariant: "-",
        injectable: Err("its final form is unverified (rmap-history §7 B15)"),
    },
    Bug {
        id: "b16",
        title: "CVE-2022-42703: double reuse through the ambiguous degree counter",
        commit: "2555283eb40d (fixes 7a3ef208e662)",
        years: "2015-2022",
        design: DesignName::Chain2010,
        era: Some(EraName::E2015),
        invariant: "chain-sets",
        injectable: Ok(()),
    },
    Bug {
        id: "b17",
        title: "PMD/PUD mremap without the rmap lock (stale TLB)",
        commit: "Aneesh Kumar, Jun 2021",
        years: "2021",
        design: DesignName::Chain2010,
        era: Some(EraName::E2022),
        invariant: "(concurrency)",
        injectable: Err("needs a TLB model and interleaving"),
    },
    Bug {
        id: "b18",
        title: "per-VMA-lock faults vs anon_vma setup",
        commit: "657b5146955e",
        years: "2023",
        design: DesignName::Chain2010,
        era: Some(EraName::E2022),
        invariant: "(concurrency)",
        injectable: Err("needs per-VMA-lock faults interleaved with dup_anon_vma"),
    },
    Bug {
        id: "b19",
        title: "vma_merge case 4 dup_anon_vma arguments after the 6.3 rewrite",
        commit: "4c6759967826",
        years: "2023 (6.3-rc)",
        design: DesignName::Chain2010,
        era: Some(EraName::E2022),
        invariant: "findability",
        injectable: Err("not yet re-injected"),
    },
    Bug {
        id: "b20",
        title: "faulted->unfaulted merges refused 2011-2025 (merge-rule drift)",
        commit: "Lorenzo Stoakes, Mar 2025",
        years: "2011-2025",
        design: DesignName::Chain2010,
        era: Some(EraName::E2015),
        invariant: "-",
        injectable: Err("not a safety bug: era 2015 has the old rule, era 2022 the new one"),
    },
    Bug {
        id: "b21",
        title: "vma_merge case 8 vs the rmap walk (permissions)",
        commit: "e86f15ee64d8",
        years: "2016",
        design: DesignName::Chain2010,
        era: Some(EraName::E2015),
        invariant: "(concurrency)",
        injectable: Err("needs a walk concurrent with vma_merge"),
    },
    Bug {
        id: "b22",
        title: "failed fork left a partial mm reachable through the rmap",
        commit: "Liam Howlett, 2025",
        years: "2025",
        design: DesignName::Chain2010,
        era: Some(EraName::E2022),
        invariant: "dangling",
        injectable: Err("not yet re-injected"),
    },
    Bug {
        id: "b23",
        title: "2026 series with patch 3 but not patch 2 (skip-unfaulted before prealloc-fork)",
        commit: "synthetic (series-intermediate)",
        years: "2026",
        design: DesignName::Prealloc2026,
        era: None,
        invariant: "failed-op-trace",
        injectable: Ok(()),
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
