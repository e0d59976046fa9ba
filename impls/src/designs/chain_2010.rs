//! Design 2: the anon_vma_chain design (`chain-2010`), Linux 2.6.34 … 6.18.
//!
//! Rik van Riel's `5beb49305251` ("mm: change anon_vma linking to fix
//! multi-process server scalability issue", 2.6.34) as stabilised in 2010,
//! in three eras (docs/designs.md):
//!
//! | era | kernel | per-anon_vma AVC set | fork reuse | merge rule |
//! |---|---|---|---|---|
//! | [`Era::E2010`] | 2.6.36 | list, insertion order | none (B00: endless growth) | `!a \|\| !b \|\| a == b` |
//! | [`Era::E2015`] | 3.19 … 5.19 | interval tree (3.7) | `degree < 2` (`7a3ef208e662`) | singular target (`965f55dea0e3`) |
//! | [`Era::E2022`] | 6.0 … 6.18.y (default) | interval tree | `num_children < 2 && num_active_vmas == 0` (`2555283eb40d`) | 6.18.y: `879bca0a2c4f` (2025) + the Jan 2026 `copied_from` fixes |
//!
//! The objects, the interval tree, the walk, the page rules and the
//! self-check are the anon_vma_chain core ([`super::avc`]); an [`Era`] is
//! the core's [`Variant`] and writes what the eras do differently: the
//! reuse counters (none, `degree`, `num_children` + `num_active_vmas`,
//! updated exactly where the kernel updates them) and `anon_vma_prepare`,
//! `anon_vma_fork`, `anon_vma_clone`, `dup_anon_vma`, `unlink_anon_vmas` and
//! the merge rule. A VMA's `same_vma` list is newest first (`list_add`),
//! root last; `anon_vma_clone` walks the source oldest first so the copy
//! keeps the order (`646d87b481da`).
//!
//! # Bound
//!
//! [`Rmap::claimed_bound`](crate::rmap::Rmap::claimed_bound) is `None` in every era, deliberately: Konstantin
//! Khlebnikov's "count of anon_vmas is no more than two times bigger than
//! count of vmas" (`7a3ef208e662`) rests on "each anon_vma has either vma or
//! at least two descending anon_vmas", which stops holding as soon as a
//! process exits after forking (its level keeps one child and no VMA until
//! the next fork through it reuses it). Measured against live VMAs it fails
//! on the B00 loop itself (3 anon_vmas for 1 VMA) and on a chain of live
//! forks whose ancestors exit (d + 1 for 1); measured against the peak VMA
//! population (the oracle's `check_bound`) it fails on a binary fork tree
//! with one fork/exit per leaf (11 for a peak of 5), and random streams
//! reached 128 for a peak of 63 — see the `fork_exit_loop_*`,
//! `chain_of_live_forks_*` and `reuse_eras_exceed_*` tests. What reuse does
//! bound is *growth* under the fork/exit loop (2010 grows by one per
//! iteration).
//!
//! # Cost counters
//!
//! `bytes` = anon_vmas × (32 in 2010 — 2.6.36 after `182fea8f4833`; 80 in
//! 2015; 96 in 2022) + AVCs × (48 in 2010, 64 from 3.7) + 24 per VMA the
//! design knows (the `anon_vma_chain` list head and `anon_vma` pointer in
//! `vm_area_struct`; as in design 1, only VMAs that have rmap state).
//!
//! # Re-injectable bugs (off by default; [`Chain2010::with_bugs`])
//!
//! * `b03` (`287d97ac0321`, 2.6.34-rc1…rc3): the importer step clones the
//!   chain from vma_adjust's `vma` instead of the exporter. vma_adjust's
//!   `vma` is always the lower of the two VMAs, so with the trait's
//!   `dup_anon_vma(dst, src)` the bug is: clone from whichever of `dst`/`src`
//!   starts lower (by the view's geometry). When `dst` is the lower one it
//!   clones its own empty chain and ends up with `src`'s anon_vma and no AVC.
//! * `b04` (`d0e9fe1758f2`, 2.6.34-rc1…rc3): `find_mergeable_anon_vma` reuses a
//!   neighbour's anon_vma without the `list_is_singular` chain test.
//! * `b05` (`ea90002b0fa7`, 2.6.34-rc): `__folio_set_anon` ignores
//!   `exclusive`, so a possibly shared page (the MMU's swap-in of a page no
//!   longer in the swap cache) gets the faulting VMA's `anon_vma` — a child's,
//!   which the other mappers' walks cannot reach and which dies with it —
//!   instead of the root.
//! * `b16` (CVE-2022-42703, `2555283eb40d`): the reuse bookkeeping of 3.19 …
//!   5.19 (`degree`) replaces the era's. Era 2015 *is* this bug, so `b16` is
//!   a no-op there; on 2010 or 2022 it switches the counters and the reuse
//!   test to `degree` (struct sizes and merge rule stay the era's).
//! * `b07` (`4946d54cb55e`, 2.6.34-rc, era 2010): `anon_vma_fork`'s own
//!   error path (its anon_vma or AVC allocation failing after a successful
//!   `anon_vma_clone`) returns `-ENOMEM` without `unlink_anon_vmas(vma)`:
//!   the cloned AVCs stay in the parent's anon_vmas' sets pointing at the
//!   child VMA that `dup_mmap` then frees (the next walk or self-check meets
//!   a dangling VMA). The other two B07 fixes are not re-injected:
//!   `31f2b0ebc01f` (anon_vma_prepare leaking its AVC when another thread
//!   installed `->anon_vma` first) needs two concurrent faults, and the
//!   emulator serialises every op; `2aeadc30de45` (`__split_vma`'s later
//!   error path, after a successful clone, not unlinking the new VMA's AVCs)
//!   is unreachable here: in this MMU nothing after the clone can fail in
//!   `__split_vma` (no `vm_ops->open`, mempolicy or file ref to fail).
//! * `b13` (`c4ea95d7cd08`, 3.12 … 3.18, era 2015): `__split_vma` reuses
//!   `err` before the clone, so a failed `anon_vma_clone` returns success.
//!   On an allocation failure in a `CloneOp::Split` clone the clone's error
//!   path runs as in 3.18 (`unlink_anon_vmas(dst)`, which then did not touch
//!   `dst->anon_vma`: the AVCs it made are gone, but no counter moves) and
//!   `Ok(())` is returned: the new VMA is inserted with `->anon_vma` as
//!   `vm_area_dup` copied it (`src`'s) and an empty chain.
//! * `b14` (Leon Yu, Mar 2015, "mm: fix anon_vma->degree underflow in
//!   anon_vma endless growing prevention", 3.19 … 4.0-rc, era 2015): the
//!   `enomem_failure` path of `anon_vma_clone` calls `unlink_anon_vmas(dst)`
//!   without first clearing `dst->anon_vma`, so a `dst->anon_vma` whose
//!   `degree++` (after the loop) never ran — one reused by fork, or the
//!   copied one of a split/remap — is decremented anyway. The resulting
//!   miscount (or an outright underflow, reported as the kernel's
//!   `BUG_ON(anon_vma->degree)` "kernel BUG at mm/rmap.c:399" by the checked
//!   decrement) surfaces as `counters`.

use std::collections::BTreeSet;
use std::fmt;

use super::avc::{
    AnonVma, AvcRmap, Core, Model, Reuse, SITE_CLONE_AVC, SITE_FORK_AV, SITE_FORK_AVC,
    SITE_PREPARE_AV, SITE_PREPARE_AVC, Variant, VmaState, check,
};
use crate::arena::Handle;
use crate::rmap::{AnonMapping, CloneOp, RmapError, VmaId, VmaView};

/// Every allocation site of the design (fault-injection coverage).
pub const ALLOC_SITES: &[&str] = &[
    SITE_PREPARE_AVC,
    SITE_PREPARE_AV,
    SITE_CLONE_AVC,
    SITE_FORK_AV,
    SITE_FORK_AVC,
];

use super::registry::bug::{Bug, Injection, count_injectable, injectable};

/// The catalogued bugs of this design (`docs/bugs.md`), each described
/// once; the registry gathers them.
pub const BUGS: &[Bug] = &[
    Bug {
        id: "b00",
        title: "endless anon_vma growth under fork/exit (no reuse before 3.19)",
        commit: "fixed by 7a3ef208e662",
        years: "2010-2015",
        era: Some("2010"),
        invariant: "bound",
        needs: &[],
        injection: Injection::Injected(
            "2010-2014: no reuse, so the fork/exit loop grows the hierarchy without end; injected \
             as the 2015 bound claim (2 x the peak VMA population) held against the 2010 algorithm",
        ),
    },
    Bug {
        id: "b03",
        title: "vma_adjust cloned the importer's chain from the wrong VMA",
        commit: "287d97ac0321",
        years: "2010 (2.6.34-rc1..rc3)",
        era: Some("2010"),
        invariant: "findability",
        needs: &[],
        injection: Injection::Injected(
            "2.6.34-rc: vma_adjust importer clones the chain from `vma` (the lower VMA) instead of \
             the exporter",
        ),
    },
    Bug {
        id: "b04",
        title: "anon_vma_prepare reused a non-singular neighbour's anon_vma",
        commit: "d0e9fe1758f2",
        years: "2010 (2.6.34-rc1..rc3)",
        era: Some("2010"),
        invariant: "chain-sets",
        needs: &[],
        injection: Injection::Injected(
            "2.6.34-rc: anon_vma_prepare reuses a neighbour's anon_vma without the singular-chain \
             test",
        ),
    },
    Bug {
        id: "b05",
        title: "swapped-in page pointed at a child's anon_vma",
        commit: "ea90002b0fa7",
        years: "2010 (2.6.34-rc1..rc3)",
        era: Some("2010"),
        invariant: "dangling",
        needs: &[],
        injection: Injection::Injected(
            "2.6.34-rc: a possibly shared first mapping (swap-in) goes to vma->anon_vma instead of \
             the root/oldest",
        ),
    },
    Bug {
        id: "b06",
        title: "chain cloned in the wrong order",
        commit: "646d87b481da",
        years: "2010",
        era: Some("2010"),
        invariant: "-",
        needs: &[],
        injection: Injection::NotInjectable(
            "only meaningful while the oldest anon_vma was found by chain position; the model has \
             ->root",
        ),
    },
    Bug {
        id: "b07",
        title: "error paths of anon_vma_fork/prepare/__split_vma left AVCs behind",
        commit: "4946d54cb55e, 31f2b0ebc01f, 2aeadc30de45",
        years: "2010",
        era: Some("2010"),
        // The failed fork leaves the cloned AVCs behind (the leak), which the
        // oracle's failed-op trace sees before a walk meets the freed child.
        invariant: "failed-op-trace",
        needs: &[],
        // Only 4946d54cb55e (anon_vma_fork's own ENOMEM path) is injected:
        // 31f2b0ebc01f needs a concurrent fault, and 2aeadc30de45's path
        // (after a successful clone in __split_vma) cannot fail in this MMU.
        injection: Injection::Injected(
            "2.6.34-rc (4946d54cb55e): anon_vma_fork's own ENOMEM path after a successful clone \
             does not unlink_anon_vmas(child), leaving AVCs that point at the freed child VMA",
        ),
    },
    Bug {
        id: "b08",
        title: "new VMA inserted at the head of the anon_vma list",
        commit: "26ba0cb63cb8",
        years: "2010",
        era: Some("2010"),
        invariant: "stale-migration-entry",
        needs: &["b12"],
        injection: Injection::Injected(
            "2.6.34-2.6.35: anon_vma_prepare links a VMA that reuses a neighbour's anon_vma at the \
             head of its list (lock model: prepare_insert Head). Shows only with --bug b12 too: \
             the 3.3 anon_vma_moveto_tail of the canonical era 2010 masks it",
        ),
    },
    Bug {
        id: "b09",
        title: "exec temporary stack move vs migration",
        commit: "a8bef8ff6ea1",
        years: "2010",
        era: Some("2010"),
        invariant: "stale-migration-entry",
        needs: &[],
        injection: Injection::Injected(
            "migration's walks do not skip exec's temporary stack, so a walk between \
             exec-shift's expand and its page-table move looks for the page where it is not yet \
             (lock model: migrate_skips_temp_stack false)",
        ),
    },
    Bug {
        id: "b10",
        title: "anon_vma root switching under page_lock_anon_vma (RCU reuse)",
        commit: "f18194275c39, 1ce82b69e96c",
        years: "2010-2011",
        era: Some("2010"),
        invariant: "lock-discipline",
        needs: &[],
        injection: Injection::Injected(
            "page_lock_anon_vma locks the root its type-stable slot names without re-checking \
             page_mapped, and page_unlock_anon_vma reads ->root again: a fork that reused the \
             freed slot and set its root in between makes it unlock a lock it does not hold \
             (lock model: recheck_mapped_after_lock false)",
        ),
    },
    Bug {
        id: "b11",
        title: "page_address_in_vma with chains and KSM",
        commit: "ab941e0fff39, 21d0d443cdc1",
        years: "2010",
        era: Some("2010"),
        invariant: "-",
        needs: &[],
        injection: Injection::NotInjectable("KSM and swapoff are not modelled"),
    },
    Bug {
        id: "b12",
        title: "mremap src/dst order vs the migration walk",
        commit: "486cf46f3f9b, anon_vma_moveto_tail (3.3), 38a76013ad80",
        years: "2011-2012",
        era: Some("2010"),
        invariant: "stale-migration-entry",
        needs: &[],
        injection: Injection::Injected(
            "a copy_vma that merged leaves the destination where it was in the walk order: era \
             2010 without anon_vma_moveto_tail (3.0-3.2), eras 2015/2022 without need_rmap_locks \
             (lock model: moveto_tail and need_rmap_locks false)",
        ),
    },
    Bug {
        id: "b12p",
        title: "remove_migration_pte peeks at the PTE before taking its lock",
        commit: "486cf46f3f9b",
        years: "2010-2011 (2.6.18..3.0)",
        era: Some("2010"),
        invariant: "stale-migration-entry",
        needs: &[],
        injection: Injection::Injected(
            "up to 3.0: remove_migration_pte skips a PTE that is not a migration entry without \
             taking its PTL, so an entry move_ptes holds in flight is missed at both places \
             (lock model: peek_before_ptl true)",
        ),
    },
    Bug {
        id: "b13",
        title: "__split_vma reported success after anon_vma_clone failed",
        commit: "c4ea95d7cd08",
        years: "2013-2014 (3.12..3.18)",
        era: Some("2015"),
        // The new half's pages are unfindable, but the self-check meets its
        // `->anon_vma` first: freed once the original's chain empties
        // (dangling), or not on its empty chain (anon-vma-in-chain).
        invariant: "dangling",
        needs: &[],
        injection: Injection::Injected(
            "3.12-3.18 (c4ea95d7cd08): __split_vma returns success after anon_vma_clone failed; \
             the new VMA keeps src's anon_vma with an empty chain",
        ),
    },
    Bug {
        id: "b14",
        title: "degree underflow when anon_vma_clone fails after reuse",
        commit: "Leon Yu, Mar 2015",
        years: "2015",
        era: Some("2015"),
        invariant: "counters",
        needs: &[],
        injection: Injection::Injected(
            "3.19-4.0-rc (Leon Yu, Mar 2015): anon_vma_clone's ENOMEM path unlinks dst without \
             clearing dst->anon_vma, decrementing a degree never incremented",
        ),
    },
    Bug {
        id: "b15",
        title: "fork reused the previous VMA's anon_vma as parent",
        commit: "4e4a9eb92133",
        years: "2019-2020",
        era: Some("2015"),
        invariant: "-",
        needs: &[],
        injection: Injection::NotInjectable("its final form is unverified (docs/bugs.md B15)"),
    },
    Bug {
        id: "b16",
        title: "CVE-2022-42703: double reuse through the ambiguous degree counter",
        commit: "2555283eb40d (fixes 7a3ef208e662)",
        years: "2015-2022",
        era: Some("2015"),
        invariant: "chain-sets",
        needs: &[],
        injection: Injection::Injected(
            "3.19-5.19: fork reuse by the ambiguous `degree` counter (CVE-2022-42703)",
        ),
    },
    Bug {
        id: "b17",
        title: "PMD/PUD mremap without the rmap lock (stale TLB)",
        commit: "Aneesh Kumar, Jun 2021",
        years: "2021",
        era: Some("2022"),
        invariant: "(concurrency)",
        needs: &[],
        injection: Injection::NotInjectable(
            "needs page-table pages and a TLB: the emulator has one PTE table for its 256-page \
             window (no PMD level, so no whole-table move_normal_pmd) and no per-CPU TLB or \
             flush_tlb_range, so no access can go through a stale translation",
        ),
    },
    Bug {
        id: "b18a",
        title: "per-VMA-lock fault tested vma->anon_vma before taking the VMA lock",
        commit: "657b5146955e",
        years: "2023 (6.4)",
        era: Some("2022"),
        invariant: "lock-discipline",
        needs: &[],
        injection: Injection::Injected(
            "6.4: lock_vma_under_rcu tests vma->anon_vma before vma_start_read, so a fault whose \
             VMA lost its anon_vma in between prepares one holding only the VMA read lock (lock \
             model: anon_check_under_vma_lock false)",
        ),
    },
    Bug {
        id: "b18b",
        title: "dup_anon_vma published dst->anon_vma before write-locking dst",
        commit: "Jann Horn, Jul 2023 (mm: lock VMA in dup_anon_vma() before setting ->anon_vma)",
        years: "2023 (6.4)",
        era: Some("2022"),
        invariant: "lock-discipline",
        needs: &[],
        injection: Injection::Injected(
            "6.4: a merge sets dst->anon_vma and clones its chain while a per-VMA-lock fault may \
             hold dst's read lock; dst is write-locked only afterwards (lock model: \
             dup_anon_vma_locks_dst false)",
        ),
    },
    Bug {
        id: "b19",
        title: "vma_merge case 4 dup_anon_vma arguments after the 6.3 rewrite",
        commit: "4c6759967826",
        years: "2023 (6.3-rc)",
        era: Some("2022"),
        invariant: "findability",
        needs: &[],
        injection: Injection::NotInjectable("not yet re-injected"),
    },
    Bug {
        id: "b20",
        title: "faulted->unfaulted merges refused 2011-2025 (merge-rule drift)",
        commit: "Lorenzo Stoakes, Mar 2025",
        years: "2011-2025",
        era: Some("2015"),
        invariant: "-",
        needs: &[],
        injection: Injection::NotInjectable(
            "not a safety bug: era 2015 has the old rule, era 2022 the new one",
        ),
    },
    Bug {
        id: "b21",
        title: "vma_merge case 8 vs the rmap walk (permissions)",
        commit: "e86f15ee64d8",
        years: "2016",
        era: Some("2015"),
        invariant: "pte-prot",
        needs: &[],
        injection: Injection::Injected(
            "vma_merge case 8 extends the middle VMA (old flags) over next and removes next, \
             instead of extending next down: remove_migration_pte in next's range rebuilds the \
             PTE from the middle's old protection, and mprotect's change_protection covers only \
             the middle's range (lock model: merge_next_extends_middle)",
        ),
    },
    Bug {
        id: "b22",
        title: "failed fork left a partial mm reachable through the rmap",
        commit: "Liam Howlett, 2025",
        years: "2025",
        era: Some("2022"),
        invariant: "dangling",
        needs: &[],
        injection: Injection::NotInjectable("not yet re-injected"),
    },
    Bug {
        id: "x1",
        title: "vma_adjust changed VMA bounds without the anon_vma lock",
        commit: "5beb49305251 (dropped the lock), 012f18004da3 (restored it)",
        years: "2010 (2.6.34..2.6.35)",
        era: Some("2010"),
        invariant: "stale-migration-entry",
        needs: &[],
        injection: Injection::Injected(
            "a merge moves a boundary between two VMAs in a step without the anon_vma lock, so a \
             walk holding it can visit both sides of the boundary before and after the move and \
             miss the page between (lock model: adjust_locked false)",
        ),
    },
];

/// The injectable ids of [`BUGS`] with how each is injected: what
/// [`Chain2010::with_bugs`] accepts.
pub const KNOWN_BUGS: &[(&str, &str)] = &injectable::<{ count_injectable(BUGS) }>(BUGS);

/// The era of the design (docs/op-language.md: `--era 2010|2015|2022`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Era {
    /// 2.6.36: list per anon_vma, no reuse, `!a || !b || a == b` merges.
    E2010,
    /// 3.19 … 5.19: interval tree, reuse by `degree`, singular-target merges.
    E2015,
    /// 6.0 … 6.18: interval tree, reuse by `num_children`/`num_active_vmas`,
    /// the 2025 merge rule. The default.
    #[default]
    E2022,
}

impl Era {
    pub const ALL: [Era; 3] = [Era::E2010, Era::E2015, Era::E2022];

    /// The CLI spelling: `2010`, `2015`, `2022`.
    pub fn as_str(self) -> &'static str {
        match self {
            Era::E2010 => "2010",
            Era::E2015 => "2015",
            Era::E2022 => "2022",
        }
    }

    /// Parses the CLI spelling.
    pub fn from_name(s: &str) -> Option<Era> {
        Era::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// `sizeof(struct anon_vma)` on x86-64 in this era (docs/designs.md).
    fn anon_vma_bytes(self) -> u64 {
        match self {
            Era::E2010 => 32,
            Era::E2015 => 80,
            Era::E2022 => 96,
        }
    }

    /// `sizeof(struct anon_vma_chain)`: 48 with the `same_anon_vma` list,
    /// 64 with the interval-tree node (3.7).
    fn avc_bytes(self) -> u64 {
        match self {
            Era::E2010 => 48,
            Era::E2015 | Era::E2022 => 64,
        }
    }

    /// Whether the per-anon_vma set is the 3.7 interval tree (`bf181b9f9d8d`).
    fn has_tree(self) -> bool {
        !matches!(self, Era::E2010)
    }
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Design 2 (`chain-2010`): anon_vma + anon_vma_chain, by era.
pub type Chain2010 = AvcRmap<Era>;

impl Default for Chain2010 {
    /// Era 2022 (Linux 6.18), no bugs.
    fn default() -> Self {
        Chain2010::new(Era::default())
    }
}

impl Chain2010 {
    /// A design of the given era with no re-injected bug.
    pub fn new(era: Era) -> Self {
        Self::build(era, era.model(false), BTreeSet::new())
    }

    /// A design of `era` with the named bugs re-injected (ids of
    /// [`KNOWN_BUGS`], case-insensitive). Panics on an id this design does
    /// not know: callers validate user input first (the oracle's catalogue,
    /// or [`Chain2010::try_with_bugs`]).
    pub fn with_bugs(era: Era, bugs: &[&str]) -> Self {
        Self::try_with_bugs(era, bugs).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Chain2010::with_bugs`], with an unknown id as an error naming it.
    pub fn try_with_bugs(era: Era, bugs: &[&str]) -> Result<Self, String> {
        let bugs = super::bug_set("chain-2010", KNOWN_BUGS, bugs)?;
        Ok(Self::build(era, era.model(bugs.contains("b16")), bugs))
    }

    /// `eager-2010`: era 2010 with the anon_vma prepared when a private VMA
    /// is linked (Linus Torvalds, "rmap: make anon_vma_prepare link in all
    /// the anon_vmas of a mergeable VMA" thread, 7 Apr 2010: "about twice
    /// as many anon_vma entries"). Only the moment of `anon_vma_prepare`
    /// changes; the MMU asks [`Rmap::prepares_at_link`].
    pub fn eager_2010() -> Self {
        let mut d = Self::new(Era::E2010);
        d.core.eager = true;
        d
    }

    /// The era this design runs.
    pub fn era(&self) -> Era {
        self.variant
    }
}

impl Era {
    /// The era's objects; `b16` (CVE-2022-42703) swaps in the `degree`
    /// bookkeeping of 3.19 … 5.19 (struct sizes and merge rule stay the
    /// era's).
    fn model(self, b16: bool) -> Model {
        let reuse = match self {
            _ if b16 => Reuse::Degree,
            Era::E2010 => Reuse::Never,
            Era::E2015 => Reuse::Degree,
            Era::E2022 => Reuse::Counters,
        };
        Model {
            tree: self.has_tree(),
            reuse,
            anon_vma_bytes: self.anon_vma_bytes(),
            avc_bytes: self.avc_bytes(),
        }
    }
}

// ----- counters of the era ---------------------------------------------------

/// A counter of `av` decremented below zero in `unlink_anon_vmas` (reached
/// as `what`): the kernel's `BUG_ON(anon_vma->degree)` after the wrap
/// ("kernel BUG at mm/rmap.c:399", `b14`).
fn underflow(av: Handle, what: &str) -> RmapError {
    check(
        "counters",
        format!(
            "unlink_anon_vmas: {what} {av}: degree / num_children / num_active_vmas underflow \
             (kernel BUG at mm/rmap.c:399)"
        ),
    )
}

/// The two kinds of reference an anon_vma's reuse counters count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ref {
    /// A VMA points to it (`vma->anon_vma`): `degree` / `num_active_vmas`.
    Vma,
    /// A child anon_vma, or a root's self-parent link, has it as parent:
    /// `degree` / `num_children`.
    Child,
}

impl Ref {
    /// The pointer the reference is, for reports.
    fn what(self) -> &'static str {
        match self {
            Ref::Vma => "vma->anon_vma",
            Ref::Child => "anon_vma->parent",
        }
    }

    /// The counter of `a` this reference is counted in, if the era has one.
    fn counter(self, reuse: Reuse, a: &mut AnonVma) -> Option<&mut u64> {
        match (reuse, self) {
            (Reuse::Never, _) => None,
            (Reuse::Degree, _) => Some(&mut a.degree),
            (Reuse::Counters, Ref::Vma) => Some(&mut a.num_active_vmas),
            (Reuse::Counters, Ref::Child) => Some(&mut a.num_children),
        }
    }
}

/// `av` gains a reference of kind `r` (`degree++`, `num_active_vmas++` or
/// `num_children++`, where the kernel does them).
pub(super) fn ref_get(core: &mut Core, av: Handle, r: Ref) -> Result<(), RmapError> {
    let reuse = core.model.reuse;
    let a = core.av_mut(av, r.what())?;
    if let Some(c) = r.counter(reuse, a) {
        *c = c.wrapping_add(1);
    }
    Ok(())
}

/// `av` loses a reference of kind `r` in `unlink_anon_vmas`. A decrement
/// below zero is reported as [`underflow`].
fn ref_put(core: &mut Core, av: Handle, r: Ref) -> Result<(), RmapError> {
    let reuse = core.model.reuse;
    let a = core.av_mut(av, format_args!("unlink_anon_vmas: {}", r.what()))?;
    match r.counter(reuse, a) {
        None => Ok(()),
        Some(c) => match c.checked_sub(1) {
            Some(n) => {
                *c = n;
                Ok(())
            }
            None => Err(underflow(av, r.what())),
        },
    }
}

/// The reuse test of `anon_vma_clone` for fork (`!dst->anon_vma &&
/// src->anon_vma` is checked by the caller): 2015 `anon_vma !=
/// src->anon_vma && degree < 2` (`7a3ef208e662`, the ambiguity B16
/// exploits); 2022 `num_children < 2 && num_active_vmas == 0`
/// (`2555283eb40d`).
fn reusable_on_fork(core: &Core, av: Handle, src_av: Handle) -> Result<bool, RmapError> {
    let a = core.av(av, "anon_vma_clone reuse")?;
    Ok(match core.model.reuse {
        Reuse::Never => false,
        Reuse::Degree => av != src_av && a.degree < 2,
        Reuse::Counters => a.num_children < 2 && a.num_active_vmas == 0,
    })
}

// ----- the algorithms --------------------------------------------------------

/// `reusable_anon_vma` + `find_mergeable_anon_vma` (mm/mmap.c, now
/// mm/vma.c): `next` then `prev` (candidates the MMU found
/// `anon_vma_compatible`), reused only if the neighbour's chain is singular
/// (`d0e9fe1758f2`; dropped by `b04`). Keeps "VMAs sharing an anon_vma have
/// the same chain" (INV-CHAIN); called by `anon_vma_prepare`.
fn find_mergeable_anon_vma(
    core: &Core,
    next: Option<VmaId>,
    prev: Option<VmaId>,
) -> Result<Option<Handle>, RmapError> {
    for near in [next, prev].into_iter().flatten() {
        if let Some(av) = core.anon_vma_of(near)
            && (core.bug("b04") || core.chain_len(near) == 1)
        {
            core.av(av, "find_mergeable_anon_vma")?;
            return Ok(Some(av));
        }
    }
    Ok(None)
}

/// `__anon_vma_prepare` (mm/rmap.c; AVC-first allocation order, the
/// `degree++` "vma reference or self-parent link" of `7a3ef208e662`, the
/// `num_children++`/`num_active_vmas++` of `2555283eb40d`): the first fault
/// needing an anonymous page gives `vma` an anon_vma — a singular compatible
/// neighbour's (next before prev), else a new root — and a one-element
/// chain. On an allocation failure nothing changes. Called from the fault
/// path; the 2026 series does not change it. `insert` is the list position
/// (`Head`: 2.6.34–2.6.35, B08; the tree ignores it).
pub(super) fn anon_vma_prepare(
    core: &mut Core,
    view: &dyn VmaView,
    vma: VmaId,
    next: Option<VmaId>,
    prev: Option<VmaId>,
    insert: crate::sched::Insert,
) -> Result<(), RmapError> {
    if core.anon_vma_of(vma).is_some() {
        return Ok(());
    }
    core.alive(view, vma, "anon_vma_prepare")?;
    if core.chain_len(vma) != 0 {
        return Err(check(
            "anon-vma-in-chain",
            format!("anon_vma_prepare: VMA {vma} has a chain but no anon_vma"),
        ));
    }
    core.alloc.alloc(SITE_PREPARE_AVC)?;
    let av = match find_mergeable_anon_vma(core, next, prev)? {
        Some(av) => av,
        None => {
            // On failure the AVC is freed (out_enomem_free_avc).
            core.alloc.alloc(SITE_PREPARE_AV)?;
            let av = core.anon_vma_alloc();
            if core.model.reuse == Reuse::Counters {
                // Self-parent link of a new root.
                core.anon_vmas.get_mut(av).expect("new").num_children += 1;
            }
            av
        }
    };
    core.vmas.insert(
        vma,
        VmaState {
            anon_vma: Some(av),
            chain: Vec::new(),
        },
    );
    match insert {
        crate::sched::Insert::Tail => core.anon_vma_chain_link(view, vma, av)?,
        crate::sched::Insert::Head => core.anon_vma_chain_link_head(view, vma, av)?,
    }
    ref_get(core, av, Ref::Vma)
}

/// `anon_vma_clone(dst, src)` (mm/rmap.c; reverse walk `646d87b481da`,
/// reuse `7a3ef208e662`/`2555283eb40d`, error path with `dst->anon_vma =
/// NULL` from Leon Yu's 2015 fix): links `dst` to every anon_vma of `src`'s
/// chain, oldest first, so both chains hold the same set; `dst`'s state
/// exists with `anon_vma` preset as `vm_area_dup` or `dup_anon_vma` left it
/// (NULL only for fork, where the reuse test applies). On an AVC allocation
/// failure everything cloned is unlinked and `dst` loses its state. Called
/// by split, remap, importer and fork.
fn clone_chain(
    core: &mut Core,
    view: &dyn VmaView,
    dst: VmaId,
    src: VmaId,
) -> Result<(), RmapError> {
    let src_chain = core.chain_of(src);
    let src_av = core.anon_vma_of(src);
    for &pavc in src_chain.iter().rev() {
        let av = core.avc(pavc, "anon_vma_clone: src chain")?.anon_vma;
        core.av(av, "anon_vma_clone")?;
        if let Err(e) = core.alloc.alloc(SITE_CLONE_AVC) {
            clone_failed(core, dst)?;
            return Err(e);
        }
        core.anon_vma_chain_link(view, dst, av)?;
        if let Some(sav) = src_av
            && core.anon_vma_of(dst).is_none()
            && reusable_on_fork(core, av, sav)?
        {
            core.state_mut(dst).anon_vma = Some(av);
        }
    }
    if let Some(d) = core.anon_vma_of(dst) {
        ref_get(core, d, Ref::Vma)?;
    }
    Ok(())
}

/// The `enomem_failure` path of `anon_vma_clone`: `dst->anon_vma = NULL`
/// then `unlink_anon_vmas(dst)`, leaving no trace of the partial clone.
/// With `b14` (3.19 … 4.0-rc) `dst->anon_vma` is not cleared first, so the
/// unlink decrements a counter the clone never incremented.
fn clone_failed(core: &mut Core, dst: VmaId) -> Result<(), RmapError> {
    if !core.bug("b14")
        && let Some(s) = core.vmas.get_mut(dst)
    {
        s.anon_vma = None;
    }
    unlink_anon_vmas(core, dst)
}

/// `unlink_anon_vmas` (mm/rmap.c; two passes since 2.6.36, counters of
/// `7a3ef208e662` / `2555283eb40d`): removes every AVC of `vma` from its
/// anon_vma's set; an anon_vma whose set empties drops its parent's child
/// count and, after the counters are settled, its own reference (freeing
/// it, and its root when that was the last pin). Keeps "a live anon_vma is
/// linked from some VMA or pins descendants". A VMA without state is a
/// no-op. Called for munmap, exit, the VMA a merge removes
/// (`anon_vma_merge`), and the error paths of clone/fork.
pub(super) fn unlink_anon_vmas(core: &mut Core, vma: VmaId) -> Result<(), RmapError> {
    let Some(st) = core.vmas.get(vma) else {
        return Ok(());
    };
    let chain = st.chain.clone();
    let own = st.anon_vma;
    // Every pointer the kernel dereferences below must be alive.
    for &c in &chain {
        let a = core.avc(c, "unlink_anon_vmas")?;
        core.av(a.anon_vma, "unlink_anon_vmas")?;
    }
    if let Some(o) = own {
        core.av(o, "unlink_anon_vmas: vma->anon_vma")?;
    }
    let mut kept = Vec::new();
    for &c in &chain {
        let av = core.avc(c, "unlink_anon_vmas")?.anon_vma;
        core.anon_vma_interval_tree_remove(c)?;
        let a = core.av(av, "unlink_anon_vmas")?;
        if a.set.is_empty() {
            let parent = a.parent;
            ref_put(core, parent, Ref::Child)?;
            kept.push(c);
            continue;
        }
        core.avcs.remove(c);
    }
    if let Some(o) = own {
        ref_put(core, o, Ref::Vma)?;
    }
    // "Leave empty anon_vmas on the list - we'll need to free them outside
    // the lock": the counters are settled before any anon_vma is put.
    for c in kept {
        let av = core.avc(c, "unlink_anon_vmas pass 2")?.anon_vma;
        let a = core.av(av, "unlink_anon_vmas pass 2")?;
        let warn = match core.model.reuse {
            Reuse::Never => false,
            Reuse::Degree => a.degree != 0,
            Reuse::Counters => a.num_children != 0 || a.num_active_vmas != 0,
        };
        if warn {
            let detail = format!(
                "unlink_anon_vmas: VM_WARN_ON: emptied anon_vma {av} still has degree {} / num_children {} / num_active_vmas {}",
                a.degree, a.num_children, a.num_active_vmas
            );
            core.defer(check("counters", detail));
        }
        core.put_anon_vma(av)?;
        core.avcs.remove(c);
    }
    core.vmas.remove(vma);
    Ok(())
}

/// The start of `anon_vma_fork`: an unfaulted parent gives nothing
/// (`None`); else both VMAs and the parent's anon_vma must be alive. The
/// 2026 series keeps it.
pub(super) fn fork_parent_anon_vma(
    core: &Core,
    view: &dyn VmaView,
    child: VmaId,
    parent: VmaId,
) -> Result<Option<Handle>, RmapError> {
    let Some(pav) = core.anon_vma_of(parent) else {
        return Ok(None);
    };
    core.alive(view, parent, "anon_vma_fork (parent)")?;
    core.alive(view, child, "anon_vma_fork (child)")?;
    core.av(pav, "anon_vma_fork: pvma->anon_vma")?;
    Ok(Some(pav))
}

/// `dup_anon_vma`'s test `src->anon_vma && !dst->anon_vma`: the anon_vma
/// `dst` imports (both VMAs and it alive), or `None` when there is nothing
/// to do. The 2026 series keeps it.
pub(super) fn dup_anon_vma_source(
    core: &Core,
    view: &dyn VmaView,
    dst: VmaId,
    src: VmaId,
) -> Result<Option<Handle>, RmapError> {
    let Some(sav) = core.anon_vma_of(src) else {
        return Ok(None);
    };
    if core.anon_vma_of(dst).is_some() {
        return Ok(None);
    }
    core.alive(view, dst, "dup_anon_vma (dst)")?;
    core.alive(view, src, "dup_anon_vma (src)")?;
    core.av(sav, "dup_anon_vma: src->anon_vma")?;
    Ok(Some(sav))
}

/// The tail of `anon_vma_fork` when no anon_vma was reused: the child's
/// own `av` (allocated with its AVC `avc`, the VMA reference counted) gets
/// the parent's root as root, taking a reference on it
/// (`get_anon_vma(anon_vma->root)`), and `pav` as parent; the child points
/// to it and links it first in its chain and in its tree; `pav` gains a
/// child. Keeps INV-ROOT and INV-COUNT.
pub(super) fn fork_own_anon_vma(
    core: &mut Core,
    view: &dyn VmaView,
    child: VmaId,
    pav: Handle,
    av: Handle,
    avc: Handle,
) -> Result<(), RmapError> {
    let root = core.av(pav, "anon_vma_fork: pvma->anon_vma")?.root;
    {
        let a = core.anon_vmas.get_mut(av).expect("allocated by the caller");
        a.root = root;
        a.parent = pav;
    }
    core.av_mut(root, "anon_vma_fork: root")?.refcount += 1;
    core.state_mut(child).anon_vma = Some(av);
    core.anon_vma_chain_assign(child, avc);
    core.anon_vma_interval_tree_insert(view, avc)?;
    ref_get(core, pav, Ref::Child)
}

/// The merge rule of 2010 (2004–2.6.39): `!a || !b || a == b`.
fn mergeable_2010(tgt_anon: Option<Handle>, src_anon: Option<Handle>) -> bool {
    tgt_anon.is_none() || src_anon.is_none() || tgt_anon == src_anon
}

/// The merge rule of 2015 (`965f55dea0e3`, 3.0 … 6.14): a NULL side only
/// merges into a target with a singular chain, which also refuses
/// faulted-into-unfaulted merges (B20); else the anon_vmas must be equal.
fn mergeable_2015(core: &Core, tgt: VmaId, src_anon: Option<Handle>) -> bool {
    let tgt_anon = core.anon_vma_of(tgt);
    ((tgt_anon.is_none() || src_anon.is_none()) && core.chain_len(tgt) == 1) || tgt_anon == src_anon
}

impl Variant for Era {
    const NAME: &'static str = "chain-2010";
    const TYPE_NAME: &'static str = "Chain2010";
    const ALLOC_SITES: &'static [&'static str] = ALLOC_SITES;

    /// The era (the bugs follow).
    fn config(&self) -> Vec<(&'static str, String)> {
        vec![("era", self.as_str().to_string())]
    }

    fn describe_header(&self, core: &Core) -> String {
        format!("chain-2010 era {self} (reuse {:?})", core.model.reuse)
    }

    /// 2010: the final list era (2.6.36 root lock, 3.1, 3.3
    /// `anon_vma_moveto_tail`); 2015 and 2022: interval tree and
    /// `need_rmap_locks`.
    ///
    /// The locking bugs flip one field each: `b12` drops the ordering fix
    /// of the era (`anon_vma_moveto_tail` in the list era,
    /// `need_rmap_locks` in the tree eras), `b12p` brings back the
    /// `remove_migration_pte` peek, `b08` the head insertion of
    /// `anon_vma_prepare`, `x1` the unlocked `vma_adjust` of 2.6.34–35,
    /// `b09` migration walking exec's temporary stack, `b21` the 4.8 case 8
    /// that extended the middle VMA over `next`, `b18a`/`b18b` the 6.4
    /// per-VMA-lock races.
    fn lock_model(&self, core: &Core) -> crate::sched::LockModel {
        use crate::sched::{Insert, LockModel};
        let mut m = match self {
            Era::E2010 => LockModel::LIST_ERA_2010,
            Era::E2015 => LockModel::ERA_2015,
            Era::E2022 => LockModel::LINUX_6_18,
        };
        if core.bug("b12") {
            m.moveto_tail = false;
            m.need_rmap_locks = false;
        }
        if core.bug("b12p") {
            m.peek_before_ptl = true;
        }
        if core.bug("b08") {
            m.prepare_insert = Insert::Head;
        }
        if core.bug("x1") {
            m.adjust_locked = false;
        }
        if core.bug("b09") {
            m.migrate_skips_temp_stack = false;
        }
        if core.bug("b21") {
            m.merge_next_extends_middle = true;
        }
        if core.bug("b18a") {
            m.anon_check_under_vma_lock = false;
        }
        if core.bug("b18b") {
            m.dup_anon_vma_locks_dst = false;
        }
        if core.bug("b10") {
            m.recheck_mapped_after_lock = false;
        }
        m
    }

    /// The module's `anon_vma_prepare` (prealloc-2026 calls it too).
    fn anon_vma_prepare(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        vma: VmaId,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<(), RmapError> {
        let insert = self.lock_model(core).prepare_insert;
        anon_vma_prepare(core, view, vma, next, prev, insert)
    }

    /// `anon_vma_fork` (mm/rmap.c, 2.6.34 `5beb49305251`; reuse since
    /// `7a3ef208e662`; counters of `2555283eb40d`): the child VMA links every
    /// anon_vma of the parent's chain (unCOWed pages may point to any), then
    /// either reuses one of them or gets its own anon_vma, a child of the
    /// parent's, pinning the root. On failure the child is left with no rmap
    /// state (`b07`: with the cloned AVCs). Called by `dup_mmap` for each
    /// copied VMA in address order.
    fn anon_vma_fork(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<(), RmapError> {
        let Some(pav) = fork_parent_anon_vma(core, view, child, parent)? else {
            return Ok(());
        };
        if core.vmas.get(child).is_some() {
            return Err(check(
                "fork-child",
                format!("anon_vma_fork: child VMA {child} already has rmap state"),
            ));
        }
        // "Drop inherited anon_vma, we'll reuse existing or allocate new."
        core.vmas.insert(child, Default::default());
        clone_chain(core, view, child, parent)?;
        if core.anon_vma_of(child).is_some() {
            return Ok(());
        }
        // b07 (4946d54cb55e): 2.6.34-rc's `out_error` returned -ENOMEM
        // without unlink_anon_vmas(vma).
        if let Err(e) = core.alloc.alloc(SITE_FORK_AV) {
            if !core.bug("b07") {
                unlink_anon_vmas(core, child)?;
            }
            return Err(e);
        }
        let av = if core.fork_split {
            core.anon_vma_alloc_stale()
        } else {
            core.anon_vma_alloc()
        };
        if core.model.reuse == Reuse::Counters {
            core.anon_vmas.get_mut(av).expect("new").num_active_vmas += 1;
        }
        if let Err(e) = core.alloc.alloc(SITE_FORK_AVC) {
            core.put_anon_vma(av)?;
            if !core.bug("b07") {
                unlink_anon_vmas(core, child)?;
            }
            return Err(e);
        }
        let avc = core.avc_alloc(child, av);
        if core.fork_split {
            // 2.6.36: `anon_vma->root = pvma->anon_vma->root` comes after
            // anon_vma_alloc; a type-stable reader of the reused slot sees
            // its old root until then ([`Variant::anon_vma_fork_link`]).
            core.pending_fork = Some((child, pav, av, avc));
            return Ok(());
        }
        fork_own_anon_vma(core, view, child, pav, av, avc)
    }

    /// The tail of a split `anon_vma_fork`: set the root and link.
    fn anon_vma_fork_link(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        child: VmaId,
    ) -> Result<(), RmapError> {
        match core.pending_fork.take() {
            Some((c, pav, av, avc)) if c == child => {
                fork_own_anon_vma(core, view, child, pav, av, avc)
            }
            Some(p) => {
                core.pending_fork = Some(p);
                Err(check(
                    "fork-child",
                    format!("anon_vma_fork: no pending allocation for child VMA {child}"),
                ))
            }
            None => Ok(()),
        }
    }

    /// `anon_vma_clone` for a split (`__split_vma`) or a remap copy
    /// (`copy_vma`): `dst`, a copy of `src` made by `vm_area_dup`, gets
    /// `src`'s anon_vma and the same chain set. With `b13` a failed `Split`
    /// clone reports success (see the module doc).
    fn anon_vma_clone(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        op: CloneOp,
    ) -> Result<(), RmapError> {
        core.alive(view, dst, "anon_vma_clone (dst)")?;
        let Some(sav) = core.anon_vma_of(src) else {
            return Ok(());
        };
        core.alive(view, src, "anon_vma_clone (src)")?;
        if core.vmas.get(dst).is_some() {
            return Err(check(
                "clone-dst",
                format!("{op:?} clone into VMA {dst} which already has rmap state"),
            ));
        }
        // vm_area_dup copied src->anon_vma into dst.
        let copied = VmaState {
            anon_vma: Some(sav),
            chain: Vec::new(),
        };
        core.vmas.insert(dst, copied.clone());
        match clone_chain(core, view, dst, src) {
            // b13 (c4ea95d7cd08, 3.12 … 3.18): __split_vma ignores the
            // failure. The clone's error path has unlinked what it made (in
            // 3.18 without touching dst->anon_vma), so dst keeps the
            // anon_vma vm_area_dup copied, with an empty chain.
            Err(RmapError::NoMem { .. }) if op == CloneOp::Split && core.bug("b13") => {
                core.vmas.insert(dst, copied);
                Ok(())
            }
            r => r,
        }
    }

    /// `dup_anon_vma` (mm/vma.c, 6.3 `0503ea8f5ba7`; the vma_adjust
    /// importer/exporter of 2.6.34 `287d97ac0321`, first written 18 Jun
    /// 2004), first half: an unfaulted `dst` that takes over pages of `src`
    /// gets `src`'s anon_vma (its chain follows in
    /// [`Variant::dup_anon_vma_clone`]).
    fn dup_anon_vma_publish(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<bool, RmapError> {
        let Some(sav) = dup_anon_vma_source(core, view, dst, src)? else {
            return Ok(false);
        };
        if core.chain_len(dst) != 0 {
            return Err(check(
                "anon-vma-in-chain",
                format!("dup_anon_vma: VMA {dst} has a chain but no anon_vma"),
            ));
        }
        core.vmas.insert(
            dst,
            VmaState {
                anon_vma: Some(sav),
                chain: Vec::new(),
            },
        );
        Ok(true)
    }

    /// `dup_anon_vma`, second half: `dst` clones `src`'s chain, keeping
    /// imported pages findable. With `b03` the chain is cloned from the
    /// lower of the two VMAs (vma_adjust's `vma`).
    fn dup_anon_vma_clone(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<(), RmapError> {
        let clone_from = if core.bug("b03") {
            let d = view.vma_info(dst).expect("alive").start;
            let s = view.vma_info(src).expect("alive").start;
            if d < s { dst } else { src }
        } else {
            src
        };
        clone_chain(core, view, dst, clone_from)
    }

    /// The module's `unlink_anon_vmas` (prealloc-2026 calls it after patch 3's
    /// early return).
    fn unlink_anon_vmas(&self, core: &mut Core, vma: VmaId) -> Result<(), RmapError> {
        unlink_anon_vmas(core, vma)
    }

    /// `is_mergeable_anon_vma` by era, keeping "a merge never joins VMAs
    /// whose chains differ": 2010 `!a || !b || a == b` (2004–2.6.39); 2015
    /// the singular-target rule of `965f55dea0e3`; 2022 the rule of Linux
    /// 6.18.y as measured on 6.18.44 (`Core::is_mergeable_anon_vma`).
    fn is_mergeable_anon_vma(
        &self,
        core: &Core,
        tgt: VmaId,
        src_anon: Option<Handle>,
        middle: Option<VmaId>,
        copied_from: Option<VmaId>,
    ) -> bool {
        match self {
            Era::E2010 => mergeable_2010(core.anon_vma_of(tgt), src_anon),
            Era::E2015 => mergeable_2015(core, tgt, src_anon),
            Era::E2022 => core.is_mergeable_anon_vma(tgt, src_anon, middle, copied_from),
        }
    }

    /// `__folio_set_anon`; with `b05` a possibly shared page goes to
    /// `vma->anon_vma` too (a child's, which the other mappers' walks cannot
    /// reach) instead of the root.
    fn folio_add_new_anon_rmap(
        &self,
        core: &Core,
        vma: VmaId,
        exclusive: bool,
    ) -> Result<AnonMapping, RmapError> {
        core.folio_add_new_anon_rmap(vma, exclusive || core.bug("b05"))
    }

    /// None in every era: no multiple of live VMAs bounds live anon_vmas
    /// (module docs, "Bound"). With `b00` the design claims what
    /// `7a3ef208e662` set out to guarantee — twice the VMA population, which
    /// the oracle measures against the peak — so that the endless growth of
    /// the 2010 algorithm under the fork/exit loop (B00) is reported as
    /// `bound`.
    fn claimed_bound(&self, core: &Core) -> Option<u64> {
        core.bug("b00").then_some(2)
    }

    /// The first deferred failure, then the core's structural checks.
    fn self_check(&self, core: &Core, view: &dyn VmaView) -> Result<(), RmapError> {
        if let Some(e) = &core.deferred {
            return Err(e.clone());
        }
        core.structural_check(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::designs::avc::VMA_DELTA_BYTES;
    use crate::designs::testkit::{Sim, check_name};
    use crate::rmap::{Counters, MergeSrc, Rmap, VmaInfo};

    fn sim(era: Era) -> Sim<Chain2010> {
        Sim::new(Chain2010::new(era))
    }

    fn sim_bugs(era: Era, bugs: &[&str]) -> Sim<Chain2010> {
        Sim::new(Chain2010::with_bugs(era, bugs))
    }

    #[test]
    fn prepare_makes_a_root_and_reuses_only_a_singular_neighbour() {
        for era in Era::ALL {
            let mut s = sim(era);
            let a = s.mmap(0, 0, 4);
            let b = s.mmap(0, 4, 8);
            s.fault(a);
            let r = s.av(a);
            let n = s.node(r);
            assert_eq!((n.root, n.parent, n.refcount), (r, r, 1));
            match era {
                Era::E2010 => assert_eq!((n.degree, n.num_children, n.num_active_vmas), (0, 0, 0)),
                Era::E2015 => assert_eq!(n.degree, 2, "own VMA + self-parent link"),
                Era::E2022 => assert_eq!((n.num_children, n.num_active_vmas), (1, 1)),
            }
            s.d.anon_vma_prepare(&s.view, b, None, Some(a)).unwrap();
            assert_eq!(s.av(b), r);
            assert_eq!(s.chain(b), vec![r]);
            let n = s.node(r);
            match era {
                Era::E2010 => {}
                Era::E2015 => assert_eq!(n.degree, 3),
                Era::E2022 => assert_eq!((n.num_children, n.num_active_vmas), (1, 2)),
            }
            let c = s.d.counters();
            assert_eq!((c.anon_vmas, c.avcs, c.allocations), (1, 2, 3));
            assert_eq!(
                c.bytes,
                era.anon_vma_bytes() + 2 * era.avc_bytes() + 2 * VMA_DELTA_BYTES
            );
            assert_eq!(s.d.claimed_bound(), None);
            s.check();
        }
    }

    #[test]
    fn prepare_refuses_a_forked_neighbour_unless_b04() {
        for bug in [false, true] {
            let mut s = if bug {
                sim_bugs(Era::E2022, &["b04"])
            } else {
                sim(Era::E2022)
            };
            let x = s.mmap(0, 0, 4);
            s.fault(x);
            let xc = s.fork(1, x);
            let y = s.mmap(1, 4, 8);
            s.d.anon_vma_prepare(&s.view, y, None, Some(xc)).unwrap();
            if bug {
                assert_eq!(s.av(y), s.av(xc));
                assert_eq!(s.chain(y).len(), 1);
                assert!(matches!(
                    s.d.self_check(&s.view),
                    Err(RmapError::Check {
                        name: "chain-sets",
                        ..
                    })
                ));
            } else {
                assert_ne!(s.av(y), s.av(xc));
                assert_eq!(s.d.counters().anon_vmas, 3);
                s.check();
            }
        }
    }

    #[test]
    fn fork_links_every_level_newest_first_and_pins_the_root() {
        let mut s = sim(Era::E2010);
        let p0 = s.mmap(0, 0, 4);
        s.fault(p0);
        let p1 = s.fork(1, p0);
        let p2 = s.fork(2, p1);
        let (r, a1, a2) = (s.av(p0), s.av(p1), s.av(p2));
        assert_eq!(s.chain(p0), vec![r]);
        assert_eq!(s.chain(p1), vec![a1, r]);
        assert_eq!(s.chain(p2), vec![a2, a1, r]);
        assert_eq!((s.node(a2).parent, s.node(a2).root), (a1, r));
        assert_eq!(s.node(r).refcount, 3, "own + one per descendant");
        // 2010: the list is in insertion order.
        assert_eq!(s.walk(r, 0), vec![p0, p1, p2]);
        assert_eq!(s.walk(a1, 0), vec![p1, p2]);
        s.check();
        // Every anon_vma but the root is freed with its last AVC; the root
        // lives on, empty, while descendants pin it.
        s.exit(p0);
        s.exit(p1);
        assert!(s.d.mapping_alive(r) && s.d.mapping_alive(a1));
        s.check();
        s.exit(p2);
        assert_eq!(
            s.d.counters(),
            Counters {
                // prepare 2, fork 1 + 2, fork 2 + 2
                allocations: 2 + 3 + 4,
                ..Counters::default()
            }
        );
        s.check();

        // A root whose own VMAs are gone while a child anon_vma lives.
        let mut s = sim(Era::E2022);
        let p0 = s.mmap(0, 0, 4);
        s.fault(p0);
        let r = s.av(p0);
        let p1 = s.fork(1, p0);
        s.exit(p0);
        assert_eq!(s.node(r).refcount, 2);
        s.check();
        s.exit(p1);
        assert!(!s.d.mapping_alive(r));
        assert_eq!(s.d.counters().anon_vmas, 0);
    }

    /// The B00 loop ("fork; parent exits; child writes"), worked by hand:
    ///
    /// * 2010: every iteration adds a level; the survivor's chain grows
    ///   without bound (anon_vmas = chain length = iterations + 1).
    /// * 2015 and 2022: iteration 3 reuses A1 (no VMA, one child), iteration
    ///   4 reuses A2 (no VMA, no child), then A1, A2, ... — three anon_vmas
    ///   (R, A1, A2) for the one live VMA, forever.
    #[test]
    fn fork_exit_loop_grows_in_2010_and_is_reused_in_2015_and_2022() {
        for era in Era::ALL {
            let mut s = sim(era);
            let mut v = s.mmap(0, 0, 4);
            s.fault(v);
            let mut counts = Vec::new();
            let mut chains = Vec::new();
            let mut owners = Vec::new();
            for i in 1..=8u32 {
                let child = s.fork(i, v);
                s.exit(v);
                v = child;
                // The child writes: an exclusive page goes to its anon_vma.
                let m = s.d.folio_add_new_anon_rmap(v, true).unwrap();
                assert_eq!(m, s.av(v));
                s.check();
                counts.push(s.d.counters().anon_vmas);
                chains.push(s.chain(v).len());
                owners.push(s.chain(v).iter().position(|&h| h == s.av(v)).unwrap());
            }
            match era {
                Era::E2010 => {
                    assert_eq!(counts, vec![2, 3, 4, 5, 6, 7, 8, 9]);
                    assert_eq!(chains, vec![2, 3, 4, 5, 6, 7, 8, 9]);
                    assert!(owners.iter().all(|&p| p == 0), "always a new level");
                }
                Era::E2015 | Era::E2022 => {
                    assert_eq!(counts, vec![2, 3, 3, 3, 3, 3, 3, 3]);
                    assert_eq!(chains, vec![2, 3, 3, 3, 3, 3, 3, 3]);
                    // Chain [A2, A1, R]: reuse alternates A1 (1), A2 (0).
                    assert_eq!(owners, vec![0, 0, 1, 0, 1, 0, 1, 0]);
                }
            }
        }
    }

    /// Why `claimed_bound` is `None`: forks made while every ancestor is
    /// alive never reuse, and the levels outlive their VMAs.
    #[test]
    fn chain_of_live_forks_keeps_every_level_after_the_ancestors_exit() {
        for era in Era::ALL {
            let mut s = sim(era);
            let mut vmas = vec![s.mmap(0, 0, 4)];
            s.fault(vmas[0]);
            for i in 1..=4u32 {
                let c = s.fork(i, *vmas.last().unwrap());
                vmas.push(c);
            }
            let last = vmas.pop().unwrap();
            for v in vmas {
                s.exit(v);
            }
            s.check();
            assert_eq!(s.d.counters().anon_vmas, 5, "{era}: 5 anon_vmas, 1 VMA");
            s.exit(last);
            assert_eq!(s.d.counters().anon_vmas, 0);
        }
    }

    /// Why `claimed_bound` stays `None` even against the peak VMA
    /// population (the oracle's measure): a binary fork tree whose inner
    /// processes exit keeps VMA-less anon_vmas with two children, and one
    /// fork/exit per leaf adds a VMA-less level with one child under each
    /// leaf (reusable only at the next fork through it). 4 leaves: 11
    /// anon_vmas for 4 live VMAs, never more than 5 VMAs alive at once.
    #[test]
    fn reuse_eras_exceed_twice_the_peak_vma_population() {
        for era in [Era::E2015, Era::E2022] {
            let mut s = sim(era);
            let mut peak = 0u64;
            let mut track = |s: &Sim<Chain2010>| peak = peak.max(s.view.vmas.len() as u64);
            let p0 = s.mmap(0, 0, 4);
            s.fault(p0);
            let p1 = s.fork(1, p0);
            let p2 = s.fork(2, p0);
            track(&s);
            s.exit(p0);
            let mut leaves = Vec::new();
            let mut pid = 3;
            for inner in [p1, p2] {
                for _ in 0..2 {
                    leaves.push(s.fork(pid, inner));
                    pid += 1;
                    track(&s);
                }
                s.exit(inner);
            }
            for leaf in leaves {
                s.fork(pid, leaf);
                pid += 1;
                track(&s);
                s.exit(leaf);
            }
            s.check();
            assert_eq!(s.view.vmas.len(), 4);
            assert_eq!(peak, 5, "{era}");
            assert_eq!(s.d.counters().anon_vmas, 11, "{era}: 11 > 2 x 5");
        }
    }

    #[test]
    fn era_2015_degree_reuses_a_leaf_another_process_still_uses() {
        // R(p0) -> A1(p1) -> A2(p2); p1 exits; p3 (from p2) reuses A1, so
        // A2 — p2's own anon_vma, degree 1 — sits in p3's chain as a leaf.
        // Forking p3 then reuses A2 under `degree < 2` although p2 still
        // uses it; 2022 sees num_active_vmas == 1 and allocates.
        for (era, bugs, reuses_a2) in [
            (Era::E2015, &[][..], true),
            (Era::E2022, &[][..], false),
            (Era::E2022, &["b16"][..], true),
        ] {
            let mut s = sim_bugs(era, bugs);
            let p0 = s.mmap(0, 0, 4);
            s.fault(p0);
            let p1 = s.fork(1, p0);
            let p2 = s.fork(2, p1);
            let (a1, a2) = (s.av(p1), s.av(p2));
            s.exit(p1);
            let p3 = s.fork(3, p2);
            assert_eq!(s.av(p3), a1);
            let before = s.d.counters().anon_vmas;
            let p4 = s.fork(4, p3);
            assert_eq!(s.av(p4) == a2, reuses_a2, "{era} {bugs:?}");
            assert_eq!(s.d.counters().anon_vmas, before + u64::from(!reuses_a2));
            s.check();
        }
    }

    #[test]
    fn split_clones_the_chain_and_the_tree_is_keyed_by_pgoff() {
        let mut s = sim(Era::E2022);
        let a = s.mmap(0, 0, 8);
        s.fault(a);
        let r = s.av(a);
        let ac = s.fork(1, a);
        let c = s.av(ac);
        let lo = s.split_below(ac, 4);
        assert_eq!(s.av(lo), c);
        assert_eq!(s.chain(lo), s.chain(ac));
        assert_eq!(s.node(c).num_active_vmas, 2);
        s.check();
        // Tree order: pgoff, then insertion order.
        assert_eq!(s.walk(r, 1), vec![a, lo]);
        assert_eq!(s.walk(r, 5), vec![a, ac]);
        assert_eq!(s.walk(c, 1), vec![lo]);
        assert_eq!(s.walk(c, 7), vec![ac]);
        assert_eq!(s.walk(c, 8), Vec::<VmaId>::new());
        // 2010 lists every VMA, in insertion order.
        let mut s = sim(Era::E2010);
        let a = s.mmap(0, 0, 8);
        s.fault(a);
        let r = s.av(a);
        let lo = s.split_below(a, 4);
        assert_eq!(s.walk(r, 6), vec![a, lo]);
        s.check();
    }

    #[test]
    fn b05_sends_a_shared_first_mapping_to_the_child_instead_of_the_root() {
        for bug in [false, true] {
            let mut s = if bug {
                sim_bugs(Era::E2010, &["b05"])
            } else {
                sim(Era::E2010)
            };
            let a = s.mmap(0, 0, 4);
            s.fault(a);
            let r = s.av(a);
            let ac = s.fork(1, a);
            let m = s.d.folio_add_new_anon_rmap(ac, false).unwrap();
            assert_eq!(m == r, !bug);
            // The parent's walk reaches the page only through the root.
            assert_eq!(s.walk(m, 0).contains(&a), !bug);
            s.exit(ac);
            assert_eq!(s.d.mapping_alive(m), !bug);
        }
    }

    #[test]
    fn merge_rules_follow_the_era() {
        for era in Era::ALL {
            let mut s = sim(era);
            let single = s.mmap(0, 0, 4);
            s.fault(single);
            let forked_src = s.mmap(0, 10, 14);
            s.fault(forked_src);
            let forked = s.fork(1, forked_src);
            let other = s.mmap(1, 20, 24);
            s.fault(other);
            let unfaulted = s.mmap(0, 30, 34);
            let same = s.mmap(0, 4, 8);
            s.d.anon_vma_prepare(&s.view, same, None, Some(single))
                .unwrap();
            let m = |t, src| s.d.is_mergeable_anon_vma(t, src);
            let e = MergeSrc::Existing;
            // (target, source) -> [2010, 2015, 2022]
            let table: [(VmaId, MergeSrc, [bool; 3]); 10] = [
                (unfaulted, e(single), [true, false, true]),
                (unfaulted, e(forked), [true, false, false]),
                (unfaulted, MergeSrc::Copy(forked), [true, false, false]),
                (unfaulted, MergeSrc::Copy(single), [true, false, true]),
                (single, MergeSrc::New, [true, true, true]),
                (forked, MergeSrc::New, [true, false, false]),
                (single, e(unfaulted), [true, true, true]),
                (unfaulted, MergeSrc::New, [true, true, true]),
                (single, e(same), [true, true, true]),
                (forked, e(other), [false, false, false]),
            ];
            let col = Era::ALL.iter().position(|&x| x == era).unwrap();
            for (i, (t, src, want)) in table.iter().enumerate() {
                assert_eq!(m(*t, *src), want[col], "{era} row {i}");
            }
            // mremap growing a forked VMA into an unfaulted next: 6.18 has
            // no middle VMA to test.
            let ext = s.d.is_mergeable_anon_vma_extend(unfaulted, forked);
            assert_eq!(ext, [true, false, true][col], "{era} extend");
            assert!(s.d.is_mergeable_anon_vma_extend(forked, forked));
            assert!(s.d.anon_vmas_compatible(single, unfaulted));
            assert!(s.d.anon_vmas_compatible(single, same));
            assert!(!s.d.anon_vmas_compatible(forked, other));
        }
    }

    #[test]
    fn importer_takes_the_exporters_chain_and_b03_clones_the_wrong_one() {
        for bug in [false, true] {
            let mut s = if bug {
                sim_bugs(Era::E2022, &["b03"])
            } else {
                sim(Era::E2022)
            };
            let next = s.mmap(0, 4, 8);
            s.fault(next);
            let av = s.av(next);
            // Case "next is the exporter, the lower VMA imports".
            let prev = s.mmap(0, 0, 4);
            s.d.dup_anon_vma(&s.view, prev, next).unwrap();
            assert_eq!(s.av(prev), av);
            if bug {
                assert!(s.chain(prev).is_empty());
                assert!(matches!(
                    s.d.self_check(&s.view),
                    Err(RmapError::Check {
                        name: "anon-vma-in-chain",
                        ..
                    })
                ));
                // anon_vma_merge drops next: its anon_vma goes with it.
                s.exit(next);
                assert!(!s.d.mapping_alive(av));
            } else {
                assert_eq!(s.chain(prev), vec![av]);
                assert_eq!(s.node(av).num_active_vmas, 2);
                s.check();
                s.exit(next);
                assert!(s.d.mapping_alive(av));
                s.check();
            }
            // Case "vma exports to a higher importer": right even with b03.
            let lo = s.mmap(0, 40, 44);
            s.fault(lo);
            let hi = s.mmap(0, 44, 48);
            s.d.dup_anon_vma(&s.view, hi, lo).unwrap();
            assert_eq!(s.chain(hi), s.chain(lo));
            // A second dup is a no-op.
            s.d.dup_anon_vma(&s.view, hi, lo).unwrap();
            assert_eq!(s.chain(hi).len(), 1);
        }
    }

    #[test]
    fn allocation_failures_leave_no_trace() {
        for era in Era::ALL {
            let mut s = sim(era);
            let p0 = s.mmap(0, 0, 8);
            s.fault(p0);
            let p1 = s.fork(1, p0);
            let p2 = s.fork(2, p1);
            // A successful fork of p2 allocates 3 clone AVCs + anon_vma + AVC.
            for n in 1..=5 {
                let before = s.structure();
                let c = s.d.counters();
                let child = s.mmap(3, 0, 8);
                s.d.alloc_schedule().fail_nth(n);
                let err = s.d.anon_vma_fork(&s.view, child, p2).unwrap_err();
                assert!(matches!(err, RmapError::NoMem { .. }), "{era} n={n}: {err}");
                assert!(!s.d.has_anon_vma(child));
                assert_eq!(s.structure(), before, "{era} fork fail n={n}");
                let after = s.d.counters();
                assert_eq!(
                    (after.anon_vmas, after.avcs, after.bytes),
                    (c.anon_vmas, c.avcs, c.bytes)
                );
                s.view.vmas.remove(child);
                s.check();
            }
            // Split failing at its second AVC.
            let before = s.structure();
            let i = s.info(p2);
            let new = s.view.vmas.insert(VmaInfo { end: 4, ..i });
            s.d.alloc_schedule().fail_nth(2);
            assert!(matches!(
                s.d.anon_vma_clone(&s.view, new, p2, CloneOp::Split),
                Err(RmapError::NoMem {
                    site: SITE_CLONE_AVC
                })
            ));
            assert_eq!(s.structure(), before);
            s.view.vmas.remove(new);
            // Importer failing.
            let imp = s.mmap(2, 8, 12);
            s.d.alloc_schedule().fail_nth(1);
            assert!(s.d.dup_anon_vma(&s.view, imp, p2).is_err());
            assert!(!s.d.has_anon_vma(imp));
            assert_eq!(s.structure(), before);
            // Prepare failing at the AVC, then at the anon_vma.
            let q = s.mmap(5, 0, 4);
            for (n, site) in [(1, SITE_PREPARE_AVC), (2, SITE_PREPARE_AV)] {
                s.d.alloc_schedule().fail_nth(n);
                assert_eq!(
                    s.d.anon_vma_prepare(&s.view, q, None, None),
                    Err(RmapError::NoMem { site })
                );
                assert_eq!(s.structure(), before);
            }
            s.check();
            // And then everything works.
            let child = s.fork(3, p2);
            assert!(s.d.has_anon_vma(child));
            s.fault(q);
            s.check();
            let mut sites = s.d.alloc_schedule().sites().to_vec();
            sites.sort_unstable();
            assert_eq!(
                sites,
                vec![
                    SITE_CLONE_AVC,
                    SITE_FORK_AV,
                    SITE_FORK_AVC,
                    SITE_PREPARE_AV,
                    SITE_PREPARE_AVC
                ]
            );
        }
    }

    #[test]
    fn b07_fork_error_path_leaves_avcs_on_the_freed_child() {
        for (site, n) in [(SITE_FORK_AV, 2), (SITE_FORK_AVC, 3)] {
            for bug in [false, true] {
                let mut s = if bug {
                    sim_bugs(Era::E2010, &["b07"])
                } else {
                    sim(Era::E2010)
                };
                let p0 = s.mmap(0, 0, 4);
                s.fault(p0);
                let a0 = s.av(p0);
                let before = s.structure();
                // dup_mmap: the clone's one AVC succeeds, then anon_vma_fork's
                // own allocation fails; the MMU frees the child VMA.
                let child = s.mmap(1, 0, 4);
                s.d.alloc_schedule().fail_nth(n);
                assert_eq!(
                    s.d.anon_vma_fork(&s.view, child, p0),
                    Err(RmapError::NoMem { site })
                );
                s.view.vmas.remove(child);
                if !bug {
                    assert_eq!(s.structure(), before, "{site}");
                    s.check();
                    assert_eq!(s.walk(a0, 0), vec![p0]);
                    continue;
                }
                // The cloned AVC is still in a0's set, pointing at the freed VMA.
                assert_eq!(s.walk(a0, 0), vec![p0, child], "{site}");
                assert!(
                    matches!(
                        s.d.self_check(&s.view),
                        Err(RmapError::Dangling { ref what, .. }) if what == "vma"
                    ),
                    "{site}"
                );
            }
        }
    }

    #[test]
    fn b13_split_reports_success_after_the_clone_failed() {
        for bug in [false, true] {
            let mut s = if bug {
                sim_bugs(Era::E2015, &["b13"])
            } else {
                sim(Era::E2015)
            };
            let p0 = s.mmap(0, 0, 8);
            s.fault(p0);
            let p1 = s.fork(1, p0);
            let a1 = s.av(p1);
            let before = s.structure();
            // __split_vma of p1 (chain of two) failing at its second AVC.
            let i = s.info(p1);
            let new = s.view.vmas.insert(VmaInfo { end: 4, ..i });
            s.d.alloc_schedule().fail_nth(2);
            let r = s.d.anon_vma_clone(&s.view, new, p1, CloneOp::Split);
            if !bug {
                assert_eq!(
                    r,
                    Err(RmapError::NoMem {
                        site: SITE_CLONE_AVC
                    })
                );
                assert_eq!(s.structure(), before);
                s.view.vmas.remove(new);
                s.check();
                continue;
            }
            // "Success": the MMU finishes the split.
            assert_eq!(r, Ok(()));
            s.d.vma_pre_update(p1);
            let vi = s.view.vmas.get_mut(p1).unwrap();
            vi.pgoff += 4;
            vi.start = 4;
            s.d.vma_post_update(&s.view, p1);
            assert_eq!(s.av(new), a1);
            assert!(s.chain(new).is_empty());
            // Pages of the new half (indices 0..4) are unfindable.
            assert!(s.walk(a1, 0).is_empty());
            assert_eq!(s.walk(a1, 4), vec![p1]);
            assert_eq!(check_name(s.d.self_check(&s.view)), "anon-vma-in-chain");
        }
    }

    #[test]
    fn b14_clone_failure_after_reuse_underflows_degree() {
        for bug in [false, true] {
            let mut s = if bug {
                sim_bugs(Era::E2015, &["b14"])
            } else {
                sim(Era::E2015)
            };
            let p0 = s.mmap(0, 0, 4);
            s.fault(p0);
            let p1 = s.fork(1, p0);
            let b = s.av(p1);
            let p2 = s.fork(2, p1);
            // p1 exits: b keeps one child (p2's anon_vma) and no VMA.
            s.exit(p1);
            assert_eq!(s.node(b).degree, 1);
            s.check();
            let before = s.structure();
            // Fork of p2 (chain [b2, b, a0]): a0's AVC, b's AVC (b reused:
            // degree 1 < 2), then b2's AVC fails.
            let child = s.mmap(3, 0, 4);
            s.d.alloc_schedule().fail_nth(3);
            assert_eq!(
                s.d.anon_vma_fork(&s.view, child, p2),
                Err(RmapError::NoMem {
                    site: SITE_CLONE_AVC
                })
            );
            s.view.vmas.remove(child);
            if !bug {
                assert_eq!(s.structure(), before);
                s.check();
                s.exit(p2);
                s.check();
                continue;
            }
            // b's degree was decremented without the increment.
            assert_eq!(s.node(b).degree, 0);
            assert_eq!(check_name(s.d.self_check(&s.view)), "counters");
            // p2's exit empties b2 and drops b's child link below zero: the
            // kernel BUG, reported (not a Rust overflow).
            let e = s.d.unlink_anon_vmas(&s.view, p2).unwrap_err();
            assert!(
                matches!(&e, RmapError::Check { name: "counters", detail } if detail.contains("underflow")),
                "{e}"
            );
        }
    }

    #[test]
    fn config_names_and_bug_gating() {
        let d = Chain2010::default();
        assert_eq!(d.era(), Era::E2022);
        assert_eq!(d.name(), "chain-2010");
        assert_eq!(d.config(), vec![("era", "2022".to_string())]);
        let d = Chain2010::with_bugs(Era::E2010, &["B03", "b16", "b05"]);
        assert_eq!(
            d.config(),
            vec![
                ("era", "2010".to_string()),
                ("bugs", "b03,b05,b16".to_string())
            ]
        );
        assert_eq!(d.core.model.reuse, Reuse::Degree);
        assert!(Chain2010::try_with_bugs(Era::E2022, &["b01"]).is_err());
        assert!(std::panic::catch_unwind(|| Chain2010::with_bugs(Era::E2022, &["b01"])).is_err());
        assert_eq!(Era::from_name("2015"), Some(Era::E2015));
        assert_eq!(Era::from_name("2016"), None);
        assert!(format!("{d:?}").contains("Chain2010"));
    }
}
