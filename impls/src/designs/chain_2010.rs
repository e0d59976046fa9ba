//! Design 2: the anon_vma_chain design (`chain-2010`), Linux 2.6.34 … 6.18.
//!
//! Rik van Riel's `5beb49305251` ("mm: change anon_vma linking to fix
//! multi-process server scalability issue", 2.6.34) as stabilised in 2010,
//! in three eras (rmap-history.md §3–§5):
//!
//! | era | kernel | per-anon_vma AVC set | fork reuse | merge rule |
//! |---|---|---|---|---|
//! | [`Era::E2010`] | 2.6.36 | list, insertion order | none (B00: endless growth) | `!a \|\| !b \|\| a == b` |
//! | [`Era::E2015`] | 3.19 … 5.19 | interval tree (3.7) | `degree < 2` (`7a3ef208e662`) | singular target (`965f55dea0e3`) |
//! | [`Era::E2022`] | 6.0 … 6.18.y (default) | interval tree | `num_children < 2 && num_active_vmas == 0` (`2555283eb40d`) | 6.18.y: `879bca0a2c4f` (2025) + the Jan 2026 `copied_from` fixes |
//!
//! # Model
//!
//! * `anon_vma { root, parent, refcount, counters, set }` lives in an
//!   [`Arena`]; `root` and `parent` point to itself for a root. The root is
//!   pinned by a reference taken for every non-root anon_vma of its tree
//!   (`get_anon_vma(anon_vma->root)` in `anon_vma_fork`, 2.6.36 `76545066c852`),
//!   so it may outlive its last AVC. `parent` is kept in every era (it only
//!   exists in the kernel from 3.19) because the counters of 2015/2022 need it.
//! * Counters of the era: `degree` (2015) or `num_children` +
//!   `num_active_vmas` (2022); none in 2010. They are updated exactly where
//!   the kernel updates them and re-derived by [`Rmap::self_check`].
//! * `anon_vma_chain` objects live in their own arena and link one VMA to one
//!   anon_vma. A VMA's `same_vma` list is newest first (`list_add`), root
//!   last; `anon_vma_clone` walks the source oldest first so the copy keeps
//!   the order (`646d87b481da`).
//! * Per-anon_vma set (`same_anon_vma`): in 2010 a list in insertion order
//!   (we follow 2.6.36, where `26ba0cb63cb8` made every path insert at the
//!   tail); from 3.7 (`bf181b9f9d8d`, eras 2015/2022) an interval tree, modelled
//!   as a map keyed by `(vm_pgoff, insertion sequence)` — "increasing vm_pgoff
//!   order with ties resolved in tree insertion order" (`38a76013ad80`). The
//!   key `[vm_pgoff, vm_pgoff + pages - 1]` is computed from the VMA's
//!   geometry when the AVC is inserted and is stored in the AVC; it is
//!   changed ONLY by [`Rmap::vma_pre_update`] / [`Rmap::vma_post_update`]
//!   (`anon_vma_interval_tree_pre/post_update_vma`), so a missed re-key is a
//!   stale key the walk really uses.
//! * Walks visit the set in order; in the tree eras only AVCs whose stored
//!   interval covers the page index (`anon_vma_interval_tree_foreach`).
//! * Pages: an exclusive new page goes to `vma->anon_vma`, a possibly shared
//!   one to the root (`e8a03feb54ca`, `288468c334e9`); COW reuse moves a page
//!   to `vma->anon_vma` (`c44b674323f4`).
//!
//! # Bound
//!
//! [`Rmap::claimed_bound`] is `None` in every era, deliberately: Konstantin
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
//! 2015; 96 in 2022) + AVCs × (48 in 2010, 64 from 3.7) + 24 per VMA the design
//! knows (the `anon_vma_chain` list head and `anon_vma` pointer in
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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fmt::Write as _;

use crate::arena::{Arena, Handle, SecondaryMap};
use crate::rmap::{
    AllocSchedule, AnonMapping, CloneOp, Counters, MergeSrc, Rmap, RmapError, TreeCounters, VmaId,
    VmaView,
};

/// Bytes rmap adds to every `vm_area_struct` (`anon_vma_chain` + pointer).
pub const VMA_DELTA_BYTES: u64 = 24;

const SITE_PREPARE_AVC: &str = "anon_vma_prepare:avc";
const SITE_PREPARE_AV: &str = "anon_vma_prepare:anon_vma";
const SITE_CLONE_AVC: &str = "anon_vma_clone:avc";
const SITE_FORK_AV: &str = "anon_vma_fork:anon_vma";
const SITE_FORK_AVC: &str = "anon_vma_fork:avc";

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
        invariant: "(concurrency)",
        injection: Injection::NotInjectable(
            "needs a walk running while a VMA is added; the emulator serialises every op",
        ),
    },
    Bug {
        id: "b09",
        title: "exec temporary stack move vs migration",
        commit: "a8bef8ff6ea1",
        years: "2010",
        era: Some("2010"),
        invariant: "(concurrency)",
        injection: Injection::NotInjectable(
            "exec is not in the op language and needs interleaved walks",
        ),
    },
    Bug {
        id: "b10",
        title: "anon_vma root switching under page_lock_anon_vma (RCU reuse)",
        commit: "f18194275c39, 1ce82b69e96c",
        years: "2010-2011",
        era: Some("2010"),
        invariant: "(concurrency)",
        injection: Injection::NotInjectable(
            "RCU/SLAB_TYPESAFE_BY_RCU reuse races are not modelled",
        ),
    },
    Bug {
        id: "b11",
        title: "page_address_in_vma with chains and KSM",
        commit: "ab941e0fff39, 21d0d443cdc1",
        years: "2010",
        era: Some("2010"),
        invariant: "-",
        injection: Injection::NotInjectable("KSM and swapoff are not modelled"),
    },
    Bug {
        id: "b12",
        title: "mremap src/dst order vs the migration walk",
        commit: "486cf46f3f9b",
        years: "2011-2012",
        era: Some("2010"),
        invariant: "(concurrency)",
        injection: Injection::NotInjectable("needs a migration walk interleaved with move_ptes"),
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
        injection: Injection::NotInjectable("its final form is unverified (docs/bugs.md B15)"),
    },
    Bug {
        id: "b16",
        title: "CVE-2022-42703: double reuse through the ambiguous degree counter",
        commit: "2555283eb40d (fixes 7a3ef208e662)",
        years: "2015-2022",
        era: Some("2015"),
        invariant: "chain-sets",
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
        injection: Injection::NotInjectable("needs a TLB model and interleaving"),
    },
    Bug {
        id: "b18",
        title: "per-VMA-lock faults vs anon_vma setup",
        commit: "657b5146955e",
        years: "2023",
        era: Some("2022"),
        invariant: "(concurrency)",
        injection: Injection::NotInjectable(
            "needs per-VMA-lock faults interleaved with dup_anon_vma",
        ),
    },
    Bug {
        id: "b19",
        title: "vma_merge case 4 dup_anon_vma arguments after the 6.3 rewrite",
        commit: "4c6759967826",
        years: "2023 (6.3-rc)",
        era: Some("2022"),
        invariant: "findability",
        injection: Injection::NotInjectable("not yet re-injected"),
    },
    Bug {
        id: "b20",
        title: "faulted->unfaulted merges refused 2011-2025 (merge-rule drift)",
        commit: "Lorenzo Stoakes, Mar 2025",
        years: "2011-2025",
        era: Some("2015"),
        invariant: "-",
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
        invariant: "(concurrency)",
        injection: Injection::NotInjectable("needs a walk concurrent with vma_merge"),
    },
    Bug {
        id: "b22",
        title: "failed fork left a partial mm reachable through the rmap",
        commit: "Liam Howlett, 2025",
        years: "2025",
        era: Some("2022"),
        invariant: "dangling",
        injection: Injection::NotInjectable("not yet re-injected"),
    },
];

/// The injectable ids of [`BUGS`] with how each is injected: what
/// [`Chain2010::with_bugs`] accepts.
pub const KNOWN_BUGS: &[(&str, &str)] = &injectable::<{ count_injectable(BUGS) }>(BUGS);

/// The era of the design (ops-v1: `--era 2010|2015|2022`).
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

    /// `sizeof(struct anon_vma)` on x86-64 in this era (rmap-history.md §8).
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

/// Which reuse bookkeeping runs (era, or `b16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reuse {
    /// 2.6.34 … 3.18: no reuse, no counters.
    Never,
    /// 3.19 … 5.19: `degree`.
    Degree,
    /// 6.0 …: `num_children` / `num_active_vmas`.
    Counters,
}

/// An AVC's position in its anon_vma's set: the interval as inserted and the
/// insertion sequence number (tie-break, and identity in the map).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    start: u64,
    last: u64,
    seq: u64,
}

/// `struct anon_vma_chain`.
#[derive(Clone, Copy, Debug)]
struct Avc {
    vma: VmaId,
    anon_vma: Handle,
    /// `Some` while the AVC is in its anon_vma's set.
    key: Option<Key>,
}

/// The per-anon_vma AVC set: `head` (2010) or `rb_root` (3.7+).
#[derive(Clone, Debug)]
enum AvcSet {
    /// Insertion order (tail insertion).
    List(Vec<Handle>),
    /// Keyed by `(vm_pgoff, seq)`.
    Tree(BTreeMap<(u64, u64), Handle>),
}

impl AvcSet {
    /// `RB_EMPTY_ROOT` / `list_empty`: what `unlink_anon_vmas` tests.
    fn is_empty(&self) -> bool {
        match self {
            AvcSet::List(l) => l.is_empty(),
            AvcSet::Tree(t) => t.is_empty(),
        }
    }

    /// Number of AVCs in the set.
    fn len(&self) -> usize {
        match self {
            AvcSet::List(l) => l.len(),
            AvcSet::Tree(t) => t.len(),
        }
    }

    /// Every AVC in walk order.
    fn all(&self) -> impl Iterator<Item = Handle> + '_ {
        let (list, tree) = match self {
            AvcSet::List(l) => (l.as_slice(), None),
            AvcSet::Tree(t) => (&[][..], Some(t)),
        };
        list.iter()
            .copied()
            .chain(tree.into_iter().flat_map(|t| t.values().copied()))
    }

    /// Tail insertion (list) or insertion under `(start, seq)` (tree).
    fn insert(&mut self, avc: Handle, key: Key) {
        match self {
            AvcSet::List(l) => l.push(avc),
            AvcSet::Tree(t) => {
                t.insert((key.start, key.seq), avc);
            }
        }
    }

    /// Removes `avc` (inserted with `key`); false if it was not there.
    fn remove(&mut self, avc: Handle, key: Key) -> bool {
        match self {
            AvcSet::List(l) => match l.iter().position(|&a| a == avc) {
                Some(p) => {
                    l.remove(p);
                    true
                }
                None => false,
            },
            AvcSet::Tree(t) => match t.get(&(key.start, key.seq)) {
                Some(&a) if a == avc => {
                    t.remove(&(key.start, key.seq));
                    true
                }
                _ => false,
            },
        }
    }

    /// Whether `avc` is in the set under `key`.
    fn contains(&self, avc: Handle, key: Key) -> bool {
        match self {
            AvcSet::List(l) => l.contains(&avc),
            AvcSet::Tree(t) => t.get(&(key.start, key.seq)) == Some(&avc),
        }
    }
}

/// `struct anon_vma`.
#[derive(Clone, Debug)]
struct AnonVma {
    root: Handle,
    parent: Handle,
    refcount: u64,
    /// 2015 (`degree`).
    degree: u64,
    /// 2022.
    num_children: u64,
    /// 2022.
    num_active_vmas: u64,
    set: AvcSet,
}

/// The design's per-VMA state: `vma->anon_vma` and `vma->anon_vma_chain`.
#[derive(Clone, Debug, Default)]
struct VmaState {
    anon_vma: Option<Handle>,
    /// `same_vma` list, newest first (index 0 is the list head).
    chain: Vec<Handle>,
}

/// Design 2 (`chain-2010`): anon_vma + anon_vma_chain, by era.
#[derive(Clone)]
pub struct Chain2010 {
    era: Era,
    anon_vmas: Arena<AnonVma>,
    avcs: Arena<Avc>,
    vmas: SecondaryMap<VmaState>,
    alloc: AllocSchedule,
    /// Re-injected bugs (ids of [`KNOWN_BUGS`]); empty by default.
    bugs: BTreeSet<&'static str>,
    /// Next interval-tree insertion sequence number.
    seq: u64,
    /// The first failure met where the kernel would only warn or where the
    /// hook cannot return one (pre/post update); reported by `self_check`.
    deferred: Option<RmapError>,
}

impl Default for Chain2010 {
    /// Era 2022 (Linux 6.18), no bugs.
    fn default() -> Self {
        Chain2010::new(Era::default())
    }
}

impl fmt::Debug for Chain2010 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let avs: Vec<String> = self
            .anon_vmas
            .iter()
            .map(|(h, a)| {
                format!(
                    "{h}: root {} parent {} ref {} deg {} ch {} act {} set {:?}",
                    a.root,
                    a.parent,
                    a.refcount,
                    a.degree,
                    a.num_children,
                    a.num_active_vmas,
                    a.set.all().collect::<Vec<_>>()
                )
            })
            .collect();
        let vmas: Vec<String> = self
            .vmas
            .iter()
            .map(|(v, s)| format!("{v}: anon_vma {:?} chain {:?}", s.anon_vma, s.chain))
            .collect();
        let avcs: Vec<String> = self
            .avcs
            .iter()
            .map(|(h, a)| format!("{h}: {} -> {} key {:?}", a.vma, a.anon_vma, a.key))
            .collect();
        f.debug_struct("Chain2010")
            .field("era", &self.era)
            .field("bugs", &self.bugs)
            .field("anon_vmas", &avs)
            .field("avcs", &avcs)
            .field("vmas", &vmas)
            .field("alloc", &self.alloc)
            .field("deferred", &self.deferred)
            .finish()
    }
}

/// The `Dangling` error for a freed anon_vma reached from `ctx` (a UAF of an
/// `SLAB_TYPESAFE_BY_RCU` anon_vma in the kernel).
fn dangling_av(av: Handle, ctx: impl fmt::Display) -> RmapError {
    RmapError::Dangling {
        what: "anon_vma".into(),
        detail: format!("{ctx}: anon_vma {av} was freed"),
    }
}

/// The `Dangling` error for a freed anon_vma_chain reached from `ctx`.
fn dangling_avc(avc: Handle, ctx: impl fmt::Display) -> RmapError {
    RmapError::Dangling {
        what: "anon_vma_chain".into(),
        detail: format!("{ctx}: anon_vma_chain {avc} was freed"),
    }
}

/// The `Dangling` error for a freed VMA reached from `ctx`.
fn dangling_vma(vma: VmaId, ctx: impl fmt::Display) -> RmapError {
    RmapError::Dangling {
        what: "vma".into(),
        detail: format!("{ctx}: VMA {vma} was freed"),
    }
}

/// A named self-check failure.
fn check(name: &'static str, detail: String) -> RmapError {
    RmapError::Check { name, detail }
}

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

impl Chain2010 {
    /// A design of the given era with no re-injected bug.
    pub fn new(era: Era) -> Self {
        Chain2010 {
            era,
            anon_vmas: Arena::new(),
            avcs: Arena::new(),
            vmas: SecondaryMap::new(),
            alloc: AllocSchedule::default(),
            bugs: BTreeSet::new(),
            seq: 0,
            deferred: None,
        }
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
        let mut d = Self::new(era);
        for b in bugs {
            let lower = b.to_ascii_lowercase();
            match KNOWN_BUGS.iter().find(|(id, _)| *id == lower) {
                Some((id, _)) => {
                    d.bugs.insert(id);
                }
                None => {
                    return Err(format!(
                        "bug {b} is not re-injectable in chain-2010 (known: {})",
                        KNOWN_BUGS
                            .iter()
                            .map(|(id, _)| *id)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        Ok(d)
    }

    /// The era this design runs.
    pub fn era(&self) -> Era {
        self.era
    }

    /// The re-injected bugs, sorted.
    pub fn bugs(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.bugs.iter().copied()
    }

    /// Whether bug `id` is re-injected (gates the historical code paths).
    fn bug(&self, id: &str) -> bool {
        self.bugs.contains(id)
    }

    /// The reuse bookkeeping in force: the era's, or 2015's under `b16`.
    fn reuse(&self) -> Reuse {
        if self.bug("b16") {
            return Reuse::Degree;
        }
        match self.era {
            Era::E2010 => Reuse::Never,
            Era::E2015 => Reuse::Degree,
            Era::E2022 => Reuse::Counters,
        }
    }

    // ----- plain accessors -------------------------------------------------

    /// `vma->anon_vma`, not followed.
    fn anon_vma_of(&self, vma: VmaId) -> Option<Handle> {
        self.vmas.get(vma).and_then(|s| s.anon_vma)
    }

    /// Length of `vma->anon_vma_chain` (`list_is_singular` is `== 1`).
    fn chain_len(&self, vma: VmaId) -> usize {
        self.vmas.get(vma).map_or(0, |s| s.chain.len())
    }

    /// Follows an anon_vma pointer: `Dangling` if it was freed.
    fn av(&self, h: Handle, ctx: impl fmt::Display) -> Result<&AnonVma, RmapError> {
        self.anon_vmas.get(h).ok_or_else(|| dangling_av(h, ctx))
    }

    /// Follows an anon_vma pointer for writing: `Dangling` if it was freed.
    fn av_mut(&mut self, h: Handle, ctx: impl fmt::Display) -> Result<&mut AnonVma, RmapError> {
        self.anon_vmas.get_mut(h).ok_or_else(|| dangling_av(h, ctx))
    }

    /// Follows an AVC pointer: `Dangling` if it was freed.
    fn avc(&self, h: Handle, ctx: impl fmt::Display) -> Result<Avc, RmapError> {
        self.avcs
            .get(h)
            .copied()
            .ok_or_else(|| dangling_avc(h, ctx))
    }

    /// Records the first deferred failure (kernel WARN, or a failure inside
    /// a hook that cannot report one).
    fn defer(&mut self, e: RmapError) {
        if self.deferred.is_none() {
            self.deferred = Some(e);
        }
    }

    // ----- object lifetime (mm/rmap.c helpers) -------------------------------

    /// `anon_vma_alloc` (mm/rmap.c): a new root of itself with refcount 1;
    /// `degree = 1` "Reference for first vma" in the degree era
    /// (`7a3ef208e662`), zero counters in 2022 (`2555283eb40d`). The caller
    /// has already passed the allocation schedule.
    fn anon_vma_alloc(&mut self) -> Handle {
        let set = if self.era.has_tree() {
            AvcSet::Tree(BTreeMap::new())
        } else {
            AvcSet::List(Vec::new())
        };
        let degree = u64::from(self.reuse() == Reuse::Degree);
        let h = self.anon_vmas.insert(AnonVma {
            root: placeholder(),
            parent: placeholder(),
            refcount: 1,
            degree,
            num_children: 0,
            num_active_vmas: 0,
            set,
        });
        let a = self.anon_vmas.get_mut(h).expect("just inserted");
        a.root = h;
        a.parent = h;
        h
    }

    /// `put_anon_vma` → `__put_anon_vma` (mm/rmap.c, 2.6.36 `76545066c852`):
    /// drops one reference; the last one frees the anon_vma and then drops
    /// the reference it held on its root, keeping "a root outlives every
    /// anon_vma of its tree".
    fn put_anon_vma(&mut self, av: Handle) -> Result<(), RmapError> {
        let a = self.av_mut(av, "put_anon_vma")?;
        a.refcount = a.refcount.wrapping_sub(1);
        if a.refcount != 0 {
            return Ok(());
        }
        let root = a.root;
        self.anon_vmas.remove(av);
        if root != av {
            let r = self.av_mut(root, "__put_anon_vma (root)")?;
            r.refcount = r.refcount.wrapping_sub(1);
            if r.refcount == 0 {
                self.anon_vmas.remove(root);
            }
        }
        Ok(())
    }

    /// The interval-tree key of `vma` now (`avc_start_pgoff`/`avc_last_pgoff`).
    fn key_now(&mut self, view: &dyn VmaView, vma: VmaId) -> Result<Key, RmapError> {
        let info = view
            .vma_info(vma)
            .ok_or_else(|| dangling_vma(vma, "interval tree key"))?;
        let seq = self.seq;
        self.seq += 1;
        Ok(Key {
            start: info.pgoff,
            last: info.pgoff_last(),
            seq,
        })
    }

    /// `anon_vma_interval_tree_insert` (3.7 `bf181b9f9d8d`; 2010: tail
    /// `list_add_tail` of `same_anon_vma`, `26ba0cb63cb8`): puts `avc` in its
    /// anon_vma's set under `vma`'s current geometry.
    fn set_insert(&mut self, view: &dyn VmaView, avc: Handle) -> Result<(), RmapError> {
        let a = self.avc(avc, "interval tree insert")?;
        let key = self.key_now(view, a.vma)?;
        self.av_mut(a.anon_vma, "interval tree insert")?
            .set
            .insert(avc, key);
        self.avcs.get_mut(avc).expect("checked").key = Some(key);
        Ok(())
    }

    /// `anon_vma_interval_tree_remove` (list era: `list_del` of
    /// `same_anon_vma`): takes `avc` out of its anon_vma's set if it is in.
    fn set_remove(&mut self, avc: Handle) -> Result<(), RmapError> {
        let a = self.avc(avc, "interval tree remove")?;
        if let Some(key) = a.key {
            self.av_mut(a.anon_vma, "interval tree remove")?
                .set
                .remove(avc, key);
            self.avcs.get_mut(avc).expect("checked").key = None;
        }
        Ok(())
    }

    /// `anon_vma_chain_link` (mm/rmap.c): a new AVC from `vma` to `av`, at
    /// the head of `vma`'s chain and in `av`'s set. The caller has already
    /// passed the allocation schedule and created `vma`'s state.
    fn chain_link(&mut self, view: &dyn VmaView, vma: VmaId, av: Handle) -> Result<(), RmapError> {
        self.av(av, "anon_vma_chain_link")?;
        let avc = self.avcs.insert(Avc {
            vma,
            anon_vma: av,
            key: None,
        });
        self.vmas
            .get_mut(vma)
            .expect("caller created the VMA state")
            .chain
            .insert(0, avc);
        self.set_insert(view, avc)
    }

    // ----- counters of the era -----------------------------------------------

    /// A VMA now points to `av` (`degree++` / `num_active_vmas++`).
    fn vma_ref_get(&mut self, av: Handle) -> Result<(), RmapError> {
        let reuse = self.reuse();
        let a = self.av_mut(av, "vma reference")?;
        match reuse {
            Reuse::Never => {}
            Reuse::Degree => a.degree = a.degree.wrapping_add(1),
            Reuse::Counters => a.num_active_vmas = a.num_active_vmas.wrapping_add(1),
        }
        Ok(())
    }

    /// A VMA no longer points to `av` (`degree--` / `num_active_vmas--`).
    /// A decrement below zero is the kernel's `BUG_ON(anon_vma->degree)`
    /// ("kernel BUG at mm/rmap.c:399", `b14`), reported as `counters`.
    fn vma_ref_put(&mut self, av: Handle) -> Result<(), RmapError> {
        let reuse = self.reuse();
        let a = self.av_mut(av, "unlink_anon_vmas: vma->anon_vma")?;
        let ok = match reuse {
            Reuse::Never => true,
            Reuse::Degree => a.degree.checked_sub(1).map(|d| a.degree = d).is_some(),
            Reuse::Counters => a
                .num_active_vmas
                .checked_sub(1)
                .map(|d| a.num_active_vmas = d)
                .is_some(),
        };
        if ok {
            Ok(())
        } else {
            Err(underflow(av, "vma->anon_vma"))
        }
    }

    /// `parent` gains a child (or a root its self-parent link):
    /// `degree++` / `num_children++`.
    fn child_ref_get(&mut self, parent: Handle) -> Result<(), RmapError> {
        let reuse = self.reuse();
        let a = self.av_mut(parent, "anon_vma->parent")?;
        match reuse {
            Reuse::Never => {}
            Reuse::Degree => a.degree = a.degree.wrapping_add(1),
            Reuse::Counters => a.num_children = a.num_children.wrapping_add(1),
        }
        Ok(())
    }

    /// `parent` loses a child (or a root its self-parent link).
    fn child_ref_put(&mut self, parent: Handle) -> Result<(), RmapError> {
        let reuse = self.reuse();
        let a = self.av_mut(parent, "unlink_anon_vmas: anon_vma->parent")?;
        let ok = match reuse {
            Reuse::Never => true,
            Reuse::Degree => a.degree.checked_sub(1).map(|d| a.degree = d).is_some(),
            Reuse::Counters => a
                .num_children
                .checked_sub(1)
                .map(|d| a.num_children = d)
                .is_some(),
        };
        if ok {
            Ok(())
        } else {
            Err(underflow(parent, "anon_vma->parent"))
        }
    }

    /// The reuse test of `anon_vma_clone` for fork (`!dst->anon_vma &&
    /// src->anon_vma` is checked by the caller): 2015 `anon_vma !=
    /// src->anon_vma && degree < 2` (`7a3ef208e662`, the ambiguity B16
    /// exploits); 2022 `num_children < 2 && num_active_vmas == 0`
    /// (`2555283eb40d`).
    fn reusable_on_fork(&self, av: Handle, src_av: Handle) -> Result<bool, RmapError> {
        let a = self.av(av, "anon_vma_clone reuse")?;
        Ok(match self.reuse() {
            Reuse::Never => false,
            Reuse::Degree => av != src_av && a.degree < 2,
            Reuse::Counters => a.num_children < 2 && a.num_active_vmas == 0,
        })
    }

    // ----- the algorithms ----------------------------------------------------

    /// `reusable_anon_vma` + `find_mergeable_anon_vma` (mm/mmap.c, now
    /// mm/vma.c): `next` then `prev` (candidates the MMU found
    /// `anon_vma_compatible`), reused only if the neighbour's chain is
    /// singular (`d0e9fe1758f2`; dropped by `b04`). Keeps "VMAs sharing an
    /// anon_vma have the same chain" (INV-CHAIN); called by `anon_vma_prepare`.
    fn find_mergeable_anon_vma(
        &self,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<Option<Handle>, RmapError> {
        for near in [next, prev].into_iter().flatten() {
            if let Some(av) = self.anon_vma_of(near)
                && (self.bug("b04") || self.chain_len(near) == 1)
            {
                self.av(av, "find_mergeable_anon_vma")?;
                return Ok(Some(av));
            }
        }
        Ok(None)
    }

    /// `anon_vma_clone(dst, src)` (mm/rmap.c; reverse walk `646d87b481da`,
    /// reuse `7a3ef208e662`/`2555283eb40d`, error path with `dst->anon_vma =
    /// NULL` from Leon Yu's 2015 fix): links `dst` to every anon_vma of
    /// `src`'s chain, oldest first, so both chains hold the same set; `dst`'s
    /// state exists with `anon_vma` preset as `vm_area_dup` or `dup_anon_vma`
    /// left it (NULL only for fork, where the reuse test applies). On an AVC
    /// allocation failure everything cloned is unlinked and `dst` loses its
    /// state. Called by split, remap, importer and fork.
    fn clone_chain(&mut self, view: &dyn VmaView, dst: VmaId, src: VmaId) -> Result<(), RmapError> {
        let src_chain: Vec<Handle> = self
            .vmas
            .get(src)
            .map(|s| s.chain.clone())
            .unwrap_or_default();
        let src_av = self.anon_vma_of(src);
        for &pavc in src_chain.iter().rev() {
            let av = self.avc(pavc, "anon_vma_clone: src chain")?.anon_vma;
            self.av(av, "anon_vma_clone")?;
            if let Err(e) = self.alloc.alloc(SITE_CLONE_AVC) {
                self.clone_failed(dst)?;
                return Err(e);
            }
            self.chain_link(view, dst, av)?;
            if let Some(sav) = src_av
                && self.anon_vma_of(dst).is_none()
                && self.reusable_on_fork(av, sav)?
            {
                self.vmas.get_mut(dst).expect("dst state").anon_vma = Some(av);
            }
        }
        if let Some(d) = self.anon_vma_of(dst) {
            self.vma_ref_get(d)?;
        }
        Ok(())
    }

    /// The `enomem_failure` path of `anon_vma_clone`: `dst->anon_vma = NULL`
    /// then `unlink_anon_vmas(dst)`, leaving no trace of the partial clone.
    /// With `b14` (3.19 … 4.0-rc) `dst->anon_vma` is not cleared first, so
    /// the unlink decrements a counter the clone never incremented.
    fn clone_failed(&mut self, dst: VmaId) -> Result<(), RmapError> {
        if !self.bug("b14")
            && let Some(s) = self.vmas.get_mut(dst)
        {
            s.anon_vma = None;
        }
        self.unlink(dst)
    }

    /// `unlink_anon_vmas` (mm/rmap.c; two passes since 2.6.36, counters of
    /// `7a3ef208e662` / `2555283eb40d`): removes every AVC of `vma` from its
    /// anon_vma's set; an anon_vma whose set empties drops its parent's
    /// child count and, after the counters are settled, its own reference
    /// (freeing it, and its root when that was the last pin). Keeps "a live
    /// anon_vma is linked from some VMA or pins descendants". Called for
    /// munmap, exit, the VMA a merge removes (`anon_vma_merge`), and the
    /// error paths of clone/fork.
    fn unlink(&mut self, vma: VmaId) -> Result<(), RmapError> {
        let Some(st) = self.vmas.get(vma) else {
            return Ok(());
        };
        let chain = st.chain.clone();
        let own = st.anon_vma;
        // Every pointer the kernel dereferences below must be alive.
        for &c in &chain {
            let a = self.avc(c, "unlink_anon_vmas")?;
            self.av(a.anon_vma, "unlink_anon_vmas")?;
        }
        if let Some(o) = own {
            self.av(o, "unlink_anon_vmas: vma->anon_vma")?;
        }
        let mut kept = Vec::new();
        for &c in &chain {
            let av = self.avc(c, "unlink_anon_vmas")?.anon_vma;
            self.set_remove(c)?;
            let a = self.av(av, "unlink_anon_vmas")?;
            if a.set.is_empty() {
                let parent = a.parent;
                self.child_ref_put(parent)?;
                kept.push(c);
                continue;
            }
            self.avcs.remove(c);
        }
        if let Some(o) = own {
            self.vma_ref_put(o)?;
        }
        for c in kept {
            let av = self.avc(c, "unlink_anon_vmas pass 2")?.anon_vma;
            let a = self.av(av, "unlink_anon_vmas pass 2")?;
            let warn = match self.reuse() {
                Reuse::Never => false,
                Reuse::Degree => a.degree != 0,
                Reuse::Counters => a.num_children != 0 || a.num_active_vmas != 0,
            };
            if warn {
                let detail = format!(
                    "unlink_anon_vmas: VM_WARN_ON: emptied anon_vma {av} still has degree {} / num_children {} / num_active_vmas {}",
                    a.degree, a.num_children, a.num_active_vmas
                );
                self.defer(check("counters", detail));
            }
            self.put_anon_vma(av)?;
            self.avcs.remove(c);
        }
        self.vmas.remove(vma);
        Ok(())
    }

    /// Checks that `vma` is alive in the view (every hook that acts on it).
    fn alive(
        &self,
        view: &dyn VmaView,
        vma: VmaId,
        ctx: impl fmt::Display,
    ) -> Result<(), RmapError> {
        match view.vma_info(vma) {
            Some(_) => Ok(()),
            None => Err(dangling_vma(vma, ctx)),
        }
    }

    /// One VMA with its geometry, for `describe`.
    fn vma_line(&self, view: &dyn VmaView, vma: VmaId) -> String {
        match view.vma_info(vma) {
            Some(i) => format!("{vma} {} [{}, {}) pgoff {}", i.mm, i.start, i.end, i.pgoff),
            None => format!("{vma} (FREED VMA)"),
        }
    }

    /// `vma_is_fork_child` (6.18.y; `vma_had_uncowed_parents` in
    /// `879bca0a2c4f`): the VMA has an anon_vma and a non-singular chain, i.e.
    /// it was forked (or cloned from a forked VMA) and may hold CoW pages.
    fn fork_child(&self, v: Option<VmaId>) -> bool {
        v.is_some_and(|v| self.anon_vma_of(v).is_some() && self.chain_len(v) != 1)
    }

    /// The merge rule of the era for a range carrying `src_anon` onto `tgt`
    /// (`middle` = `vmg->middle`, `copied_from` = `vmg->copied_from`).
    /// 2022 is `879bca0a2c4f` (2025) plus the 6.18.y stable fixes of Jan
    /// 2026 (`61f67c230a5e` "fix anon_vma UAF on mremap() faulted, unfaulted
    /// merge" and "enforce VMA fork limit on unfaulted,faulted mremap merge
    /// too"): only the source faulted → neither the middle nor the
    /// copied-from VMA may be a fork child; only the target faulted → the
    /// target must not be one; else the anon_vmas must be equal. (6.18.0
    /// had `vmg->middle = NULL` and no `copied_from` for mremap copies, so it
    /// allowed a forked source to merge into an unfaulted neighbour.)
    fn mergeable(
        &self,
        tgt: VmaId,
        src_anon: Option<Handle>,
        middle: Option<VmaId>,
        copied_from: Option<VmaId>,
    ) -> bool {
        let tgt_anon = self.anon_vma_of(tgt);
        match self.era {
            Era::E2010 => tgt_anon.is_none() || src_anon.is_none() || tgt_anon == src_anon,
            Era::E2015 => {
                ((tgt_anon.is_none() || src_anon.is_none()) && self.chain_len(tgt) == 1)
                    || tgt_anon == src_anon
            }
            Era::E2022 => match (tgt_anon, src_anon) {
                (None, Some(_)) => !self.fork_child(middle) && !self.fork_child(copied_from),
                (Some(_), None) => !self.fork_child(Some(tgt)),
                (t, s) => t == s,
            },
        }
    }

    /// The recomputed counters of every live anon_vma (INV-COUNT), as
    /// `(num_children, num_active_vmas, refcount)`: children are the live
    /// anon_vmas whose parent it is, plus the self-parent link of a root
    /// while its set is non-empty; active VMAs are those whose `anon_vma` it
    /// is; the refcount is its own reference while its set is non-empty plus,
    /// for a root, one per live non-root anon_vma of its tree. `degree` is
    /// children + active (the 2015 definition, "linked vmas and directly
    /// descending anon_vmas").
    fn recount_all(&self) -> SecondaryMap<(u64, u64, u64)> {
        let mut m = SecondaryMap::with_slots(self.anon_vmas.slots());
        for (h, a) in self.anon_vmas.iter() {
            let linked = u64::from(!a.set.is_empty());
            let self_link = if a.root == h { linked } else { 0 };
            m.insert(h, (self_link, 0, linked));
        }
        for (h, a) in self.anon_vmas.iter() {
            if a.parent != h
                && let Some(p) = m.get_mut(a.parent)
            {
                p.0 += 1;
            }
            if a.root != h
                && let Some(r) = m.get_mut(a.root)
            {
                r.2 += 1;
            }
        }
        for (_, st) in self.vmas.iter() {
            if let Some(av) = st.anon_vma
                && let Some(e) = m.get_mut(av)
            {
                e.1 += 1;
            }
        }
        m
    }
}

/// A handle value used only between `Arena::insert` and fixing up an
/// anon_vma's self-references (never observable: overwritten at once).
fn placeholder() -> Handle {
    Arena::<()>::new().insert(())
}

impl Rmap for Chain2010 {
    /// The CLI name (ops-v1 "Names the CLI accepts").
    fn name(&self) -> &'static str {
        "chain-2010"
    }

    /// The era and the re-injected bugs.
    fn config(&self) -> Vec<(&'static str, String)> {
        let mut c = vec![("era", self.era.as_str().to_string())];
        if !self.bugs.is_empty() {
            c.push(("bugs", self.bugs().collect::<Vec<_>>().join(",")));
        }
        c
    }

    /// `vma->anon_vma != NULL`.
    fn has_anon_vma(&self, vma: VmaId) -> bool {
        self.anon_vma_of(vma).is_some()
    }

    /// `__anon_vma_prepare` (mm/rmap.c; AVC-first allocation order, the
    /// `degree++` "vma reference or self-parent link" of `7a3ef208e662`, the
    /// `num_children++`/`num_active_vmas++` of `2555283eb40d`): the first
    /// fault needing an anonymous page gives `vma` an anon_vma — a singular
    /// compatible neighbour's, else a new root — and a one-element chain.
    /// On an allocation failure nothing changes. Called from the fault path.
    fn anon_vma_prepare(
        &mut self,
        view: &dyn VmaView,
        vma: VmaId,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<(), RmapError> {
        if self.anon_vma_of(vma).is_some() {
            return Ok(());
        }
        self.alive(view, vma, "anon_vma_prepare")?;
        if self.chain_len(vma) != 0 {
            return Err(check(
                "anon-vma-in-chain",
                format!("anon_vma_prepare: VMA {vma} has a chain but no anon_vma"),
            ));
        }
        self.alloc.alloc(SITE_PREPARE_AVC)?;
        let found = self.find_mergeable_anon_vma(next, prev)?;
        let av = match found {
            Some(av) => av,
            None => {
                self.alloc.alloc(SITE_PREPARE_AV)?;
                let av = self.anon_vma_alloc();
                if self.reuse() == Reuse::Counters {
                    // Self-parent link of a new root.
                    self.anon_vmas.get_mut(av).expect("new").num_children += 1;
                }
                av
            }
        };
        self.vmas.insert(
            vma,
            VmaState {
                anon_vma: Some(av),
                chain: Vec::new(),
            },
        );
        self.chain_link(view, vma, av)?;
        self.vma_ref_get(av)
    }

    /// `anon_vma_fork` (mm/rmap.c, 2.6.34 `5beb49305251`; reuse since
    /// `7a3ef208e662`; counters of `2555283eb40d`): the child VMA links every
    /// anon_vma of the parent's chain (unCOWed pages may point to any), then
    /// either reuses one of them or gets its own anon_vma, a child of the
    /// parent's, pinning the root. On failure the child is left with no rmap
    /// state. Called by `dup_mmap` for each copied VMA in address order.
    fn anon_vma_fork(
        &mut self,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<(), RmapError> {
        let Some(pav) = self.anon_vma_of(parent) else {
            return Ok(());
        };
        self.alive(view, parent, "anon_vma_fork (parent)")?;
        self.alive(view, child, "anon_vma_fork (child)")?;
        self.av(pav, "anon_vma_fork: pvma->anon_vma")?;
        if self.vmas.get(child).is_some() {
            return Err(check(
                "fork-child",
                format!("anon_vma_fork: child VMA {child} already has rmap state"),
            ));
        }
        // "Drop inherited anon_vma, we'll reuse existing or allocate new."
        self.vmas.insert(child, VmaState::default());
        self.clone_chain(view, child, parent)?;
        if self.anon_vma_of(child).is_some() {
            return Ok(());
        }
        // b07 (4946d54cb55e): 2.6.34-rc's `out_error` returned -ENOMEM
        // without unlink_anon_vmas(vma).
        if let Err(e) = self.alloc.alloc(SITE_FORK_AV) {
            if !self.bug("b07") {
                self.unlink(child)?;
            }
            return Err(e);
        }
        let av = self.anon_vma_alloc();
        if self.reuse() == Reuse::Counters {
            self.anon_vmas.get_mut(av).expect("new").num_active_vmas += 1;
        }
        if let Err(e) = self.alloc.alloc(SITE_FORK_AVC) {
            self.put_anon_vma(av)?;
            if !self.bug("b07") {
                self.unlink(child)?;
            }
            return Err(e);
        }
        let root = self.av(pav, "anon_vma_fork")?.root;
        {
            let a = self.anon_vmas.get_mut(av).expect("new");
            a.root = root;
            a.parent = pav;
        }
        // get_anon_vma(anon_vma->root)
        let r = self.av_mut(root, "anon_vma_fork: root")?;
        r.refcount += 1;
        self.vmas.get_mut(child).expect("child state").anon_vma = Some(av);
        self.chain_link(view, child, av)?;
        self.child_ref_get(pav)
    }

    /// `anon_vma_clone` for a split (`__split_vma`), a remap copy
    /// (`copy_vma`) or an importer (`dup_anon_vma`): `dst`, a copy of `src`
    /// made by `vm_area_dup`, gets `src`'s anon_vma and the same chain set.
    /// `MergeUnfaulted` behaves as [`Rmap::dup_anon_vma`]. With `b13` a
    /// failed `Split` clone reports success (see the module doc).
    fn anon_vma_clone(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        op: CloneOp,
    ) -> Result<(), RmapError> {
        if op == CloneOp::MergeUnfaulted {
            return self.dup_anon_vma(view, dst, src);
        }
        self.alive(view, dst, "anon_vma_clone (dst)")?;
        let Some(sav) = self.anon_vma_of(src) else {
            return Ok(());
        };
        self.alive(view, src, "anon_vma_clone (src)")?;
        if self.vmas.get(dst).is_some() {
            return Err(check(
                "clone-dst",
                format!("{op:?} clone into VMA {dst} which already has rmap state"),
            ));
        }
        // vm_area_dup copied src->anon_vma into dst.
        self.vmas.insert(
            dst,
            VmaState {
                anon_vma: Some(sav),
                chain: Vec::new(),
            },
        );
        match self.clone_chain(view, dst, src) {
            // b13 (c4ea95d7cd08, 3.12 … 3.18): __split_vma ignores the
            // failure. The clone's error path has unlinked what it made (in
            // 3.18 without touching dst->anon_vma), so dst keeps the
            // anon_vma vm_area_dup copied, with an empty chain.
            Err(RmapError::NoMem { .. }) if op == CloneOp::Split && self.bug("b13") => {
                self.vmas.insert(
                    dst,
                    VmaState {
                        anon_vma: Some(sav),
                        chain: Vec::new(),
                    },
                );
                Ok(())
            }
            r => r,
        }
    }

    /// `dup_anon_vma` (mm/vma.c, 6.3 `0503ea8f5ba7`; the vma_adjust
    /// importer/exporter of 2.6.34 `287d97ac0321`, first written 18 Jun 2004):
    /// an unfaulted `dst` that takes over pages of `src` gets `src`'s
    /// anon_vma and chain, keeping imported pages findable. With `b03` the
    /// chain is cloned from the lower of the two VMAs (vma_adjust's `vma`).
    fn dup_anon_vma(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<(), RmapError> {
        let Some(sav) = self.anon_vma_of(src) else {
            return Ok(());
        };
        if self.anon_vma_of(dst).is_some() {
            return Ok(());
        }
        self.alive(view, dst, "dup_anon_vma (dst)")?;
        self.alive(view, src, "dup_anon_vma (src)")?;
        self.av(sav, "dup_anon_vma")?;
        if self.chain_len(dst) != 0 {
            return Err(check(
                "anon-vma-in-chain",
                format!("dup_anon_vma: VMA {dst} has a chain but no anon_vma"),
            ));
        }
        let clone_from = if self.bug("b03") {
            let d = view.vma_info(dst).expect("alive").start;
            let s = view.vma_info(src).expect("alive").start;
            if d < s { dst } else { src }
        } else {
            src
        };
        self.vmas.insert(
            dst,
            VmaState {
                anon_vma: Some(sav),
                chain: Vec::new(),
            },
        );
        self.clone_chain(view, dst, clone_from)
    }

    /// `unlink_anon_vmas` (see the private `unlink` for the algorithm):
    /// `vma` goes away (munmap, exit, merge removal); a VMA without rmap
    /// state is a no-op.
    fn unlink_anon_vmas(&mut self, _view: &dyn VmaView, vma: VmaId) -> Result<(), RmapError> {
        self.unlink(vma)
    }

    /// `is_mergeable_anon_vma` by era, keeping "a merge never joins VMAs
    /// whose chains differ": 2010 `!a || !b || a == b` (2004–2.6.39); 2015
    /// the singular-target rule of `965f55dea0e3` (3.0 … 6.14, which also
    /// refuses faulted-into-unfaulted merges, B20); 2022 the rule of Linux
    /// 6.18.y as measured on 6.18.44 (see `rule_2025`). Called by
    /// `vma_merge*` for both neighbours.
    fn is_mergeable_anon_vma(&self, tgt: VmaId, src: MergeSrc) -> bool {
        let (middle, copied_from, src_anon) = match src {
            MergeSrc::New => (None, None, None),
            MergeSrc::Existing(v) => (Some(v), None, self.anon_vma_of(v)),
            MergeSrc::Copy(v) => (None, Some(v), self.anon_vma_of(v)),
        };
        self.mergeable(tgt, src_anon, middle, copied_from)
    }

    /// `is_mergeable_anon_vma` for `vma_merge_extend` (mremap growing `src`
    /// in place): the range carries `src`'s anon_vma but `vmg->middle` and
    /// `vmg->copied_from` are both NULL, so the 2025 rule applies no
    /// fork-child test to `src`. The 2010 and 2015 rules ignore the middle
    /// VMA, so they answer as for `Existing(src)`.
    fn is_mergeable_anon_vma_extend(&self, tgt: VmaId, src: VmaId) -> bool {
        match self.era {
            Era::E2022 => self.mergeable(tgt, self.anon_vma_of(src), None, None),
            Era::E2010 | Era::E2015 => self.is_mergeable_anon_vma(tgt, MergeSrc::Existing(src)),
        }
    }

    /// The prev/next check of a three-way merge: `!a || !b || a == b` in
    /// every era (3.0–6.2 `is_mergeable_anon_vma(prev, next, NULL)`; 6.18
    /// `can_vma_merge_right`).
    fn anon_vmas_compatible(&self, prev: VmaId, next: VmaId) -> bool {
        let a = self.anon_vma_of(prev);
        let b = self.anon_vma_of(next);
        a.is_none() || b.is_none() || a == b
    }

    /// `anon_vma_interval_tree_pre_update_vma` (mm/vma.c, 3.7
    /// `bf181b9f9d8d`): takes every AVC of `vma` out of its tree before the
    /// MMU changes `vm_start`/`vm_end`/`vm_pgoff`. No-op in the list era.
    fn vma_pre_update(&mut self, vma: VmaId) {
        if !self.era.has_tree() {
            return;
        }
        let chain = self
            .vmas
            .get(vma)
            .map(|s| s.chain.clone())
            .unwrap_or_default();
        for c in chain {
            if let Err(e) = self.set_remove(c) {
                self.defer(e);
            }
        }
    }

    /// `anon_vma_interval_tree_post_update_vma` (mm/vma.c, 3.7
    /// `bf181b9f9d8d`): re-inserts every AVC of `vma` with its new key,
    /// keeping "every AVC is keyed by its VMA's current pgoff interval". An
    /// AVC still in its tree (no pre-update) is reported — the kernel would
    /// corrupt its rbtree. No-op in the list era.
    fn vma_post_update(&mut self, view: &dyn VmaView, vma: VmaId) {
        if !self.era.has_tree() {
            return;
        }
        let chain = self
            .vmas
            .get(vma)
            .map(|s| s.chain.clone())
            .unwrap_or_default();
        for c in chain {
            match self.avcs.get(c).copied() {
                None => self.defer(dangling_avc(c, "post_update")),
                Some(a) if a.key.is_some() => self.defer(check(
                    "interval-tree",
                    format!(
                        "post_update of VMA {vma}: AVC {c} is still in its tree (no pre_update)"
                    ),
                )),
                Some(_) => {
                    if let Err(e) = self.set_insert(view, c) {
                        self.defer(e);
                    }
                }
            }
        }
    }

    /// `__folio_set_anon` (mm/rmap.c): an exclusive new page goes to
    /// `vma->anon_vma` (`e8a03feb54ca`), a possibly shared one to the root
    /// (`ea90002b0fa7`, `288468c334e9`), so every VMA that may map it can
    /// reach it (`b05`: always `vma->anon_vma`). Called by
    /// `folio_add_new_anon_rmap`.
    fn folio_add_new_anon_rmap(
        &mut self,
        vma: VmaId,
        exclusive: bool,
    ) -> Result<AnonMapping, RmapError> {
        let Some(av) = self.anon_vma_of(vma) else {
            return Err(check(
                "no-anon-vma",
                format!("folio_add_new_anon_rmap in VMA {vma} which has no anon_vma"),
            ));
        };
        let root = self.av(av, "__folio_set_anon")?.root;
        if exclusive || self.bug("b05") {
            return Ok(av);
        }
        self.av(root, "__folio_set_anon (root)")?;
        Ok(root)
    }

    /// `folio_move_anon_rmap` (mm/rmap.c, `c44b674323f4` 2010): an
    /// exclusively owned page reused by a write fault moves to
    /// `vma->anon_vma`, the most specific anon_vma that reaches `vma`.
    fn folio_move_anon_rmap(
        &mut self,
        vma: VmaId,
        _current: AnonMapping,
    ) -> Result<AnonMapping, RmapError> {
        let Some(av) = self.anon_vma_of(vma) else {
            return Err(check(
                "no-anon-vma",
                format!("folio_move_anon_rmap in VMA {vma} which has no anon_vma"),
            ));
        };
        self.av(av, "folio_move_anon_rmap")?;
        Ok(av)
    }

    /// `rmap_walk_anon` (mm/rmap.c): the VMAs of the AVCs in the page's
    /// anon_vma set, in set order; from 3.7 only those whose stored interval
    /// covers `index` (`anon_vma_interval_tree_foreach`). `Dangling` if the
    /// page's anon_vma or one of its AVCs was freed.
    fn rmap_walk(
        &self,
        _view: &dyn VmaView,
        mapping: AnonMapping,
        index: u64,
        out: &mut Vec<VmaId>,
    ) -> Result<(), RmapError> {
        let a = self.av(mapping, "rmap walk from page->mapping")?;
        let root = a.root;
        self.av(root, "rmap walk: anon_vma->root (lock)")?;
        match &a.set {
            AvcSet::List(l) => {
                for &c in l {
                    out.push(self.avc(c, "rmap walk")?.vma);
                }
            }
            AvcSet::Tree(t) => {
                for (_, &c) in t.range(..=(index, u64::MAX)) {
                    let avc = self.avc(c, "rmap walk")?;
                    if avc.key.is_some_and(|k| k.last >= index) {
                        out.push(avc.vma);
                    }
                }
            }
        }
        Ok(())
    }

    /// Every VMA the design has seen has an entry (its anon_vma / chain).
    fn tracks_vma(&self, vma: VmaId) -> bool {
        self.vmas.get(vma).is_some()
    }

    /// Mutation counts of every container `self_check` and the walk read.
    fn epoch(&self) -> Option<u64> {
        Some(
            self.anon_vmas.epoch()
                + self.avcs.epoch()
                + self.vmas.epoch()
                + u64::from(self.deferred.is_some()),
        )
    }

    /// Whether a page's `mapping` still names a live anon_vma (INV-LIVE).
    fn mapping_alive(&self, mapping: AnonMapping) -> bool {
        self.anon_vmas.contains(mapping)
    }

    /// Live anon_vmas and AVCs, bytes by the era's struct sizes (§8) plus
    /// 24 per VMA with rmap state, successful allocations.
    fn counters(&self) -> Counters {
        let anon_vmas = self.anon_vmas.len() as u64;
        let avcs = self.avcs.len() as u64;
        let vmas = self.vmas.len() as u64;
        Counters {
            anon_vmas,
            avcs,
            bytes: anon_vmas * self.era.anon_vma_bytes()
                + avcs * self.era.avc_bytes()
                + vmas * VMA_DELTA_BYTES,
            allocations: self.alloc.made(),
        }
    }

    /// One tree per root anon_vma (`anon_vma->root`): its anon_vmas, the
    /// AVCs into them, bytes by the era's sizes plus 24 per VMA linked into
    /// the tree, and those VMAs (each once), in root-handle order.
    fn fork_trees(&self) -> Vec<TreeCounters> {
        let mut trees: BTreeMap<Handle, (TreeCounters, BTreeSet<VmaId>)> = BTreeMap::new();
        for (_, a) in self.anon_vmas.iter() {
            let (t, vmas) = trees.entry(a.root).or_insert_with(|| {
                (
                    TreeCounters {
                        root: a.root,
                        anon_vmas: 0,
                        avcs: 0,
                        bytes: 0,
                        vmas: 0,
                    },
                    BTreeSet::new(),
                )
            });
            t.anon_vmas += 1;
            t.bytes += self.era.anon_vma_bytes();
            for c in a.set.all() {
                t.avcs += 1;
                t.bytes += self.era.avc_bytes();
                if let Some(avc) = self.avcs.get(c) {
                    vmas.insert(avc.vma);
                }
            }
        }
        trees
            .into_values()
            .map(|(mut t, vmas)| {
                t.vmas = vmas.len() as u64;
                t.bytes += t.vmas * VMA_DELTA_BYTES;
                t
            })
            .collect()
    }

    /// A page's tree is its anon_vma's root (the lock `rmap_walk_anon` takes).
    fn tree_of(&self, mapping: AnonMapping) -> Option<Handle> {
        self.anon_vmas.get(mapping).map(|a| a.root)
    }

    /// None in every era: no multiple of live VMAs bounds live anon_vmas
    /// (module docs, "Bound"). With `b00` the design claims what
    /// `7a3ef208e662` set out to guarantee — twice the VMA population, which
    /// the oracle measures against the peak — so that the endless growth of
    /// the 2010 algorithm under the fork/exit loop (B00) is reported as
    /// `bound`.
    fn claimed_bound(&self) -> Option<u64> {
        self.bugs.contains("b00").then_some(2)
    }

    /// INV-CHAIN (`chain-sets`), INV-ROOT (`one-root`), INV-COUNT and
    /// refcounts (`counters`), set membership and keys (`interval-tree`),
    /// `vma->anon_vma` in its own chain (`anon-vma-in-chain`), no orphan
    /// objects (`empty-anon-vma`, `leaked-avc`) and every pointer alive
    /// (`Dangling`) — the kernel's `validate_mm`/`anon_vma_interval_tree_verify`
    /// and the asserts of the 2026 series, run after every op.
    fn self_check(&self, view: &dyn VmaView) -> Result<(), RmapError> {
        if let Some(e) = &self.deferred {
            return Err(e.clone());
        }
        let tree = self.era.has_tree();
        let mut chained_avcs = 0usize;
        // The anon_vmas of the VMA being checked, in chain order (chains are
        // short: a scratch vector beats a set on this hot path).
        let mut set: Vec<Handle> = Vec::new();
        // AVCs seen on a chain (each must be on exactly one: its VMA's).
        let mut on_chain: SecondaryMap<()> = SecondaryMap::with_slots(self.avcs.slots());
        // Per VMA.
        for (vma, st) in self.vmas.iter() {
            let Some(info) = view.vma_info(vma) else {
                return Err(dangling_vma(vma, "rmap state kept for"));
            };
            chained_avcs += st.chain.len();
            set.clear();
            let mut root = None;
            for &c in &st.chain {
                let a = self.avc(c, format_args!("VMA {vma}'s chain"))?;
                if a.vma != vma {
                    return Err(check(
                        "chain-sets",
                        format!("AVC {c} on VMA {vma}'s chain belongs to VMA {}", a.vma),
                    ));
                }
                if on_chain.insert(c, ()).is_some() {
                    return Err(check(
                        "chain-sets",
                        format!("AVC {c} is on VMA {vma}'s chain twice"),
                    ));
                }
                let av = self.av(a.anon_vma, format_args!("AVC {c} of VMA {vma}"))?;
                if set.contains(&a.anon_vma) {
                    return Err(check(
                        "chain-sets",
                        format!("VMA {vma} links anon_vma {} twice", a.anon_vma),
                    ));
                }
                set.push(a.anon_vma);
                match root {
                    None => root = Some(av.root),
                    Some(r) if r == av.root => {}
                    Some(r) => {
                        return Err(check(
                            "one-root",
                            format!(
                                "VMA {vma}'s chain mixes roots {r} and {} (anon_vma {})",
                                av.root, a.anon_vma
                            ),
                        ));
                    }
                }
                match a.key {
                    Some(k) if av.set.contains(c, k) => {
                        if tree && (k.start != info.pgoff || k.last != info.pgoff_last()) {
                            return Err(check(
                                "interval-tree",
                                format!(
                                    "AVC {c} of VMA {vma} keyed [{}, {}] but the VMA covers [{}, {}]",
                                    k.start,
                                    k.last,
                                    info.pgoff,
                                    info.pgoff_last()
                                ),
                            ));
                        }
                    }
                    _ => {
                        return Err(check(
                            "interval-tree",
                            format!(
                                "AVC {c} of VMA {vma} is not in anon_vma {}'s set",
                                a.anon_vma
                            ),
                        ));
                    }
                }
            }
            match st.anon_vma {
                Some(av) => {
                    self.av(av, format_args!("VMA {vma}->anon_vma"))?;
                    if !set.contains(&av) {
                        return Err(check(
                            "anon-vma-in-chain",
                            format!("VMA {vma}'s anon_vma {av} is not in its chain"),
                        ));
                    }
                }
                None if !st.chain.is_empty() => {
                    return Err(check(
                        "anon-vma-in-chain",
                        format!("VMA {vma} has a chain but no anon_vma"),
                    ));
                }
                None => {}
            }
        }
        if chained_avcs != self.avcs.len() {
            return Err(check(
                "leaked-avc",
                format!(
                    "{} live AVCs but {chained_avcs} on VMA chains",
                    self.avcs.len()
                ),
            ));
        }
        // Per anon_vma.
        let recounted = self.recount_all();
        for (h, a) in self.anon_vmas.iter() {
            let root = self.av(a.root, format_args!("anon_vma {h}->root"))?;
            if root.root != a.root {
                return Err(check(
                    "one-root",
                    format!("anon_vma {h}'s root {} is not a root", a.root),
                ));
            }
            let parent = self.av(a.parent, format_args!("anon_vma {h}->parent"))?;
            if parent.root != a.root {
                return Err(check(
                    "one-root",
                    format!(
                        "anon_vma {h} and its parent {} have different roots",
                        a.parent
                    ),
                ));
            }
            for c in a.set.all() {
                let avc = self.avc(c, format_args!("anon_vma {h}'s set"))?;
                if avc.anon_vma != h || avc.key.is_none_or(|k| !a.set.contains(c, k)) {
                    return Err(check(
                        "interval-tree",
                        format!("AVC {c} in anon_vma {h}'s set does not point back"),
                    ));
                }
                if view.vma_info(avc.vma).is_none() {
                    return Err(dangling_vma(
                        avc.vma,
                        format_args!("AVC {c} in anon_vma {h}'s set"),
                    ));
                }
                // Chained AVCs point back to the VMA whose chain holds them
                // (checked above), so "on a chain" is "on its VMA's chain".
                if on_chain.get(c).is_none() {
                    return Err(check(
                        "interval-tree",
                        format!(
                            "AVC {c} in anon_vma {h}'s set is not on VMA {}'s chain",
                            avc.vma
                        ),
                    ));
                }
            }
            let (children, active, refcount) = *recounted.get(h).expect("recounted every anon_vma");
            if a.set.is_empty() && refcount == 0 {
                return Err(check(
                    "empty-anon-vma",
                    format!("anon_vma {h} is alive with an empty set and nothing pinning it"),
                ));
            }
            if a.refcount != refcount {
                return Err(check(
                    "counters",
                    format!(
                        "anon_vma {h} refcount {} but {refcount} expected",
                        a.refcount
                    ),
                ));
            }
            let bad = match self.reuse() {
                Reuse::Never => None,
                Reuse::Degree => (a.degree != children + active)
                    .then(|| format!("degree {} but {} expected", a.degree, children + active)),
                Reuse::Counters => (a.num_children != children || a.num_active_vmas != active)
                    .then(|| {
                        format!(
                            "num_children {} / num_active_vmas {} but {children} / {active} expected",
                            a.num_children, a.num_active_vmas
                        )
                    }),
            };
            if let Some(d) = bad {
                return Err(check("counters", format!("anon_vma {h}: {d}")));
            }
        }
        // INV-CHAIN: VMAs of one mm sharing ->anon_vma have the same chain set.
        // Each VMA's set is stored sorted in one flat buffer; the VMAs are
        // then grouped by (mm, anon_vma) (stable: in VMA order) and each is
        // compared with the first of its group.
        let mut sets: Vec<Handle> = Vec::new();
        let mut groups: Vec<((rmaplab_ops::Pid, Handle), VmaId, usize, usize)> = Vec::new();
        for (vma, st) in self.vmas.iter() {
            let Some(av) = st.anon_vma else { continue };
            let mm = view.vma_info(vma).expect("checked above").mm;
            let start = sets.len();
            sets.extend(
                st.chain
                    .iter()
                    .map(|&c| self.avcs.get(c).expect("checked above").anon_vma),
            );
            sets[start..].sort_unstable();
            groups.push(((mm, av), vma, start, sets.len()));
        }
        groups.sort_by_key(|g| g.0);
        for family in groups.chunk_by(|a, b| a.0 == b.0) {
            let &((mm, av), first, s, e) = &family[0];
            for &(_, vma, start, end) in &family[1..] {
                if sets[s..e] != sets[start..end] {
                    return Err(check(
                        "chain-sets",
                        format!(
                            "{mm}: VMAs {first} and {vma} share anon_vma {av} but their chains differ ({:?} vs {:?})",
                            &sets[s..e],
                            &sets[start..end]
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The `fail-alloc` schedule; sites `anon_vma_prepare:{avc,anon_vma}`,
    /// `anon_vma_clone:avc`, `anon_vma_fork:{anon_vma,avc}`.
    fn alloc_sites(&self) -> &'static [&'static str] {
        ALLOC_SITES
    }

    fn alloc_schedule(&mut self) -> &mut AllocSchedule {
        &mut self.alloc
    }

    /// The anon_vma family (same root) of `mapping` and of each VMA, with
    /// parents, counters and sets in walk order, then each VMA's chain.
    fn describe(&self, view: &dyn VmaView, mapping: Option<AnonMapping>, vmas: &[VmaId]) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "chain-2010 era {} (reuse {:?})", self.era, self.reuse());
        if !self.bugs.is_empty() {
            let _ = writeln!(s, "  bugs: {}", self.bugs().collect::<Vec<_>>().join(","));
        }
        if let Some(e) = &self.deferred {
            let _ = writeln!(s, "  deferred failure: {e}");
        }
        let mut roots: Vec<Handle> = Vec::new();
        let mut wanted: Vec<Handle> = Vec::new();
        if let Some(m) = mapping {
            wanted.push(m);
        }
        for &v in vmas {
            if let Some(av) = self.anon_vma_of(v) {
                wanted.push(av);
            }
        }
        for av in wanted {
            match self.anon_vmas.get(av) {
                None => {
                    let tag = if Some(av) == mapping {
                        " (page->mapping)"
                    } else {
                        ""
                    };
                    let _ = writeln!(s, "  anon_vma {av}{tag}: FREED");
                }
                Some(a) => {
                    if !roots.contains(&a.root) {
                        roots.push(a.root);
                    }
                }
            }
        }
        for root in roots {
            let _ = writeln!(s, "  family of root {root}:");
            for (h, a) in self.anon_vmas.iter().filter(|(_, a)| a.root == root) {
                let tag = if Some(h) == mapping {
                    " (page->mapping)"
                } else {
                    ""
                };
                let counters = match self.reuse() {
                    Reuse::Never => String::new(),
                    Reuse::Degree => format!(" degree {}", a.degree),
                    Reuse::Counters => format!(
                        " num_children {} num_active_vmas {}",
                        a.num_children, a.num_active_vmas
                    ),
                };
                let _ = writeln!(
                    s,
                    "    anon_vma {h}{tag}: parent {} refcount {}{counters}, {} AVC(s):",
                    a.parent,
                    a.refcount,
                    a.set.len()
                );
                for c in a.set.all() {
                    match self.avcs.get(c) {
                        Some(avc) => {
                            let key = avc
                                .key
                                .map_or("-".to_string(), |k| format!("[{}, {}]", k.start, k.last));
                            let _ = writeln!(s, "      {key} {}", self.vma_line(view, avc.vma));
                        }
                        None => {
                            let _ = writeln!(s, "      AVC {c} FREED");
                        }
                    }
                }
            }
        }
        for &v in vmas {
            let Some(st) = self.vmas.get(v) else {
                let _ = writeln!(s, "  {}: no rmap state", self.vma_line(view, v));
                continue;
            };
            let chain: Vec<String> = st
                .chain
                .iter()
                .map(|&c| {
                    self.avcs
                        .get(c)
                        .map_or(format!("FREED AVC {c}"), |a| a.anon_vma.to_string())
                })
                .collect();
            let _ = writeln!(
                s,
                "  {}: anon_vma {} chain (newest first) [{}]",
                self.vma_line(view, v),
                st.anon_vma.map_or("none".to_string(), |h| h.to_string()),
                chain.join(", ")
            );
        }
        let c = self.counters();
        let _ = writeln!(s, "  live: {} anon_vma(s), {} AVC(s)", c.anon_vmas, c.avcs);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rmap::VmaInfo;
    use rmaplab_ops::Pid;

    /// A tiny stand-in for the MMU: VMAs in a generational arena.
    #[derive(Default)]
    struct FakeView {
        vmas: Arena<VmaInfo>,
    }

    impl VmaView for FakeView {
        fn vma_info(&self, vma: VmaId) -> Option<VmaInfo> {
            self.vmas.get(vma).copied()
        }
        fn live_vmas(&self) -> Vec<VmaId> {
            let mut v: Vec<(VmaInfo, VmaId)> = self.vmas.iter().map(|(h, i)| (*i, h)).collect();
            v.sort_by_key(|(i, _)| (i.mm, i.start));
            v.into_iter().map(|(_, h)| h).collect()
        }
    }

    /// The design plus its fake MMU, with the MMU-side steps of each op.
    struct Sim {
        view: FakeView,
        d: Chain2010,
    }

    impl Sim {
        fn new(era: Era) -> Self {
            Sim {
                view: FakeView::default(),
                d: Chain2010::new(era),
            }
        }
        fn bugs(era: Era, bugs: &[&str]) -> Self {
            Sim {
                view: FakeView::default(),
                d: Chain2010::with_bugs(era, bugs),
            }
        }
        /// mmap: a new VMA with pgoff = start (anonymous).
        fn mmap(&mut self, mm: u32, start: u64, end: u64) -> VmaId {
            self.view.vmas.insert(VmaInfo {
                mm: Pid(mm),
                start,
                end,
                pgoff: start,
            })
        }
        fn info(&self, v: VmaId) -> VmaInfo {
            self.view.vma_info(v).unwrap()
        }
        /// First write fault in `v` (no compatible neighbours).
        fn fault(&mut self, v: VmaId) {
            self.d.anon_vma_prepare(&self.view, v, None, None).unwrap();
        }
        /// `dup_mmap` of one VMA into process `mm`.
        fn fork(&mut self, mm: u32, parent: VmaId) -> VmaId {
            let i = self.info(parent);
            let child = self.view.vmas.insert(VmaInfo { mm: Pid(mm), ..i });
            self.d.anon_vma_fork(&self.view, child, parent).unwrap();
            child
        }
        /// exit / munmap of a whole VMA.
        fn exit(&mut self, v: VmaId) {
            self.d.unlink_anon_vmas(&self.view, v).unwrap();
            self.view.vmas.remove(v).unwrap();
        }
        /// `__split_vma(vma, at, new_below = 1)`: returns the new lower part.
        fn split_below(&mut self, v: VmaId, at: u64) -> VmaId {
            let i = self.info(v);
            let new = self.view.vmas.insert(VmaInfo { end: at, ..i });
            self.d
                .anon_vma_clone(&self.view, new, v, CloneOp::Split)
                .unwrap();
            self.d.vma_pre_update(v);
            let vi = self.view.vmas.get_mut(v).unwrap();
            vi.pgoff += at - vi.start;
            vi.start = at;
            self.d.vma_post_update(&self.view, v);
            new
        }
        fn check(&self) {
            if let Err(e) = self.d.self_check(&self.view) {
                panic!("{e}\n{}", self.d.describe(&self.view, None, &[]));
            }
        }
        fn walk(&self, m: AnonMapping, index: u64) -> Vec<VmaId> {
            let mut out = Vec::new();
            self.d.rmap_walk(&self.view, m, index, &mut out).unwrap();
            out
        }
        fn av(&self, v: VmaId) -> Handle {
            self.d.anon_vma_of(v).unwrap()
        }
        fn chain(&self, v: VmaId) -> Vec<Handle> {
            self.d
                .vmas
                .get(v)
                .unwrap()
                .chain
                .iter()
                .map(|&c| self.d.avcs.get(c).unwrap().anon_vma)
                .collect()
        }
        fn node(&self, h: Handle) -> AnonVma {
            self.d.anon_vmas.get(h).unwrap().clone()
        }
        /// The logical state (objects and links, not allocation history).
        fn fingerprint(&self) -> String {
            let mut s = String::new();
            for (h, a) in self.d.anon_vmas.iter() {
                let set: Vec<(Handle, Option<(u64, u64)>)> = a
                    .set
                    .all()
                    .map(|c| {
                        (
                            c,
                            self.d.avcs.get(c).unwrap().key.map(|k| (k.start, k.last)),
                        )
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "{h} r{} p{} rc{} d{} c{} a{} {set:?}",
                    a.root, a.parent, a.refcount, a.degree, a.num_children, a.num_active_vmas
                );
            }
            for (h, a) in self.d.avcs.iter() {
                let _ = writeln!(s, "{h} {} {}", a.vma, a.anon_vma);
            }
            for (v, st) in self.d.vmas.iter() {
                let _ = writeln!(s, "{v} {:?} {:?}", st.anon_vma, st.chain);
            }
            s
        }
    }

    #[test]
    fn prepare_makes_a_root_and_reuses_only_a_singular_neighbour() {
        for era in Era::ALL {
            let mut s = Sim::new(era);
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
                Sim::bugs(Era::E2022, &["b04"])
            } else {
                Sim::new(Era::E2022)
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
        let mut s = Sim::new(Era::E2010);
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
        let mut s = Sim::new(Era::E2022);
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
            let mut s = Sim::new(era);
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
            let mut s = Sim::new(era);
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
            let mut s = Sim::new(era);
            let mut peak = 0u64;
            let mut track = |s: &Sim| peak = peak.max(s.view.vmas.len() as u64);
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
            let mut s = Sim::bugs(era, bugs);
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
        let mut s = Sim::new(Era::E2022);
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
        let mut s = Sim::new(Era::E2010);
        let a = s.mmap(0, 0, 8);
        s.fault(a);
        let r = s.av(a);
        let lo = s.split_below(a, 4);
        assert_eq!(s.walk(r, 6), vec![a, lo]);
        s.check();
    }

    #[test]
    fn a_missed_rekey_is_a_stale_key_the_walk_uses() {
        let mut s = Sim::new(Era::E2022);
        let a = s.mmap(0, 0, 8);
        s.fault(a);
        let r = s.av(a);
        // The MMU moves the VMA's range without telling the tree.
        let vi = s.view.vmas.get_mut(a).unwrap();
        vi.start = 2;
        vi.end = 10;
        vi.pgoff = 2;
        assert!(matches!(
            s.d.self_check(&s.view),
            Err(RmapError::Check {
                name: "interval-tree",
                ..
            })
        ));
        assert_eq!(
            s.walk(r, 8),
            Vec::<VmaId>::new(),
            "index 8 is in the VMA but not in the stale key"
        );
        // pre/post fix it.
        s.d.vma_pre_update(a);
        s.d.vma_post_update(&s.view, a);
        assert_eq!(s.walk(r, 8), vec![a]);
        s.check();
        // post without pre is reported.
        s.d.vma_post_update(&s.view, a);
        assert!(matches!(
            s.d.self_check(&s.view),
            Err(RmapError::Check {
                name: "interval-tree",
                ..
            })
        ));
    }

    #[test]
    fn fork_trees_group_by_root() {
        let mut s = Sim::new(Era::E2022);
        let a = s.mmap(0, 0, 4);
        s.fault(a);
        let r = s.av(a);
        let ac = s.fork(1, a);
        let b = s.mmap(0, 10, 14);
        s.fault(b);
        let trees = s.d.fork_trees();
        assert_eq!(trees.len(), 2);
        let t = trees.iter().find(|t| t.root == r).unwrap();
        assert_eq!((t.anon_vmas, t.avcs, t.vmas), (2, 3, 2));
        assert_eq!(t.bytes, 2 * 96 + 3 * 64 + 2 * VMA_DELTA_BYTES);
        assert_eq!(s.d.tree_of(s.av(ac)), Some(r));
        let total: u64 = trees.iter().map(|t| t.bytes).sum();
        assert_eq!(total, s.d.counters().bytes);
    }

    #[test]
    fn page_rules_exclusive_to_own_shared_to_root_move_to_own() {
        let mut s = Sim::new(Era::E2022);
        let a = s.mmap(0, 0, 4);
        assert!(matches!(
            s.d.folio_add_new_anon_rmap(a, true),
            Err(RmapError::Check {
                name: "no-anon-vma",
                ..
            })
        ));
        s.fault(a);
        let r = s.av(a);
        let ac = s.fork(1, a);
        let c = s.av(ac);
        assert_eq!(s.d.folio_add_new_anon_rmap(ac, true).unwrap(), c);
        assert_eq!(s.d.folio_add_new_anon_rmap(ac, false).unwrap(), r);
        assert_eq!(s.d.folio_move_anon_rmap(ac, r).unwrap(), c);
        assert_eq!(s.d.folio_add_new_anon_rmap(a, false).unwrap(), r);
    }

    #[test]
    fn b05_sends_a_shared_first_mapping_to_the_child_instead_of_the_root() {
        for bug in [false, true] {
            let mut s = if bug {
                Sim::bugs(Era::E2010, &["b05"])
            } else {
                Sim::new(Era::E2010)
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
            let mut s = Sim::new(era);
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
                Sim::bugs(Era::E2022, &["b03"])
            } else {
                Sim::new(Era::E2022)
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
            let mut s = Sim::new(era);
            let p0 = s.mmap(0, 0, 8);
            s.fault(p0);
            let p1 = s.fork(1, p0);
            let p2 = s.fork(2, p1);
            // A successful fork of p2 allocates 3 clone AVCs + anon_vma + AVC.
            for n in 1..=5 {
                let before = s.fingerprint();
                let c = s.d.counters();
                let child = s.mmap(3, 0, 8);
                s.d.alloc_schedule().fail_nth(n);
                let err = s.d.anon_vma_fork(&s.view, child, p2).unwrap_err();
                assert!(matches!(err, RmapError::NoMem { .. }), "{era} n={n}: {err}");
                assert!(!s.d.has_anon_vma(child));
                assert_eq!(s.fingerprint(), before, "{era} fork fail n={n}");
                let after = s.d.counters();
                assert_eq!(
                    (after.anon_vmas, after.avcs, after.bytes),
                    (c.anon_vmas, c.avcs, c.bytes)
                );
                s.view.vmas.remove(child);
                s.check();
            }
            // Split failing at its second AVC.
            let before = s.fingerprint();
            let i = s.info(p2);
            let new = s.view.vmas.insert(VmaInfo { end: 4, ..i });
            s.d.alloc_schedule().fail_nth(2);
            assert!(matches!(
                s.d.anon_vma_clone(&s.view, new, p2, CloneOp::Split),
                Err(RmapError::NoMem {
                    site: SITE_CLONE_AVC
                })
            ));
            assert_eq!(s.fingerprint(), before);
            s.view.vmas.remove(new);
            // Importer failing.
            let imp = s.mmap(2, 8, 12);
            s.d.alloc_schedule().fail_nth(1);
            assert!(s.d.dup_anon_vma(&s.view, imp, p2).is_err());
            assert!(!s.d.has_anon_vma(imp));
            assert_eq!(s.fingerprint(), before);
            // Prepare failing at the AVC, then at the anon_vma.
            let q = s.mmap(5, 0, 4);
            for (n, site) in [(1, SITE_PREPARE_AVC), (2, SITE_PREPARE_AV)] {
                s.d.alloc_schedule().fail_nth(n);
                assert_eq!(
                    s.d.anon_vma_prepare(&s.view, q, None, None),
                    Err(RmapError::NoMem { site })
                );
                assert_eq!(s.fingerprint(), before);
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

    /// The name of a `Check` error (panics on anything else).
    fn check_name(r: Result<(), RmapError>) -> &'static str {
        match r {
            Err(RmapError::Check { name, .. }) => name,
            other => panic!("expected a Check error, got {other:?}"),
        }
    }

    #[test]
    fn b07_fork_error_path_leaves_avcs_on_the_freed_child() {
        for (site, n) in [(SITE_FORK_AV, 2), (SITE_FORK_AVC, 3)] {
            for bug in [false, true] {
                let mut s = if bug {
                    Sim::bugs(Era::E2010, &["b07"])
                } else {
                    Sim::new(Era::E2010)
                };
                let p0 = s.mmap(0, 0, 4);
                s.fault(p0);
                let a0 = s.av(p0);
                let before = s.fingerprint();
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
                    assert_eq!(s.fingerprint(), before, "{site}");
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
                Sim::bugs(Era::E2015, &["b13"])
            } else {
                Sim::new(Era::E2015)
            };
            let p0 = s.mmap(0, 0, 8);
            s.fault(p0);
            let p1 = s.fork(1, p0);
            let a1 = s.av(p1);
            let before = s.fingerprint();
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
                assert_eq!(s.fingerprint(), before);
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
                Sim::bugs(Era::E2015, &["b14"])
            } else {
                Sim::new(Era::E2015)
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
            let before = s.fingerprint();
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
                assert_eq!(s.fingerprint(), before);
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
    fn dangling_references_are_reported_not_panicked() {
        let mut s = Sim::new(Era::E2022);
        let p0 = s.mmap(0, 0, 4);
        s.fault(p0);
        let p1 = s.fork(1, p0);
        let a1 = s.av(p1);
        // A bogus free of a non-root anon_vma behind the design's back.
        s.d.anon_vmas.remove(a1).unwrap();
        assert!(!s.d.mapping_alive(a1));
        assert!(matches!(
            s.d.self_check(&s.view),
            Err(RmapError::Dangling { .. })
        ));
        let mut out = Vec::new();
        assert!(matches!(
            s.d.rmap_walk(&s.view, a1, 0, &mut out),
            Err(RmapError::Dangling { .. })
        ));
        assert!(matches!(
            s.d.folio_add_new_anon_rmap(p1, true),
            Err(RmapError::Dangling { .. })
        ));
        let c = s.view.vmas.insert(s.info(p1));
        assert!(matches!(
            s.d.anon_vma_fork(&s.view, c, p1),
            Err(RmapError::Dangling { .. })
        ));
        assert!(matches!(
            s.d.unlink_anon_vmas(&s.view, p1),
            Err(RmapError::Dangling { .. })
        ));
        let text = s.d.describe(&s.view, Some(a1), &[p1]);
        assert!(text.contains("FREED"), "{text}");

        // A freed AVC.
        let mut s = Sim::new(Era::E2015);
        let p0 = s.mmap(0, 0, 4);
        s.fault(p0);
        let avc = s.d.vmas.get(p0).unwrap().chain[0];
        s.d.avcs.remove(avc).unwrap();
        assert!(matches!(
            s.d.self_check(&s.view),
            Err(RmapError::Dangling { .. })
        ));
        let r = s.av(p0);
        assert!(matches!(
            s.d.rmap_walk(&s.view, r, 0, &mut Vec::new()),
            Err(RmapError::Dangling { .. })
        ));

        // A VMA the MMU freed without unlinking it.
        let mut s = Sim::new(Era::E2010);
        let p0 = s.mmap(0, 0, 4);
        s.fault(p0);
        s.view.vmas.remove(p0).unwrap();
        assert!(matches!(
            s.d.self_check(&s.view),
            Err(RmapError::Dangling { .. })
        ));
    }

    #[test]
    fn self_check_names_counter_and_root_failures() {
        let mut s = Sim::new(Era::E2022);
        let p0 = s.mmap(0, 0, 4);
        s.fault(p0);
        let p1 = s.fork(1, p0);
        let r = s.av(p0);
        s.d.anon_vmas.get_mut(r).unwrap().num_children += 1;
        assert!(matches!(
            s.d.self_check(&s.view),
            Err(RmapError::Check {
                name: "counters",
                ..
            })
        ));
        s.d.anon_vmas.get_mut(r).unwrap().num_children -= 1;
        s.check();
        // A second, unrelated root in p1's chain.
        let q = s.mmap(2, 0, 4);
        s.fault(q);
        let other = s.av(q);
        let avc = s.d.vmas.get(p1).unwrap().chain[0];
        s.d.avcs.get_mut(avc).unwrap().anon_vma = other;
        assert!(s.d.self_check(&s.view).is_err());
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
        assert_eq!(d.reuse(), Reuse::Degree);
        assert!(Chain2010::try_with_bugs(Era::E2022, &["b01"]).is_err());
        assert!(std::panic::catch_unwind(|| Chain2010::with_bugs(Era::E2022, &["b01"])).is_err());
        assert_eq!(Era::from_name("2015"), Some(Era::E2015));
        assert_eq!(Era::from_name("2016"), None);
        assert!(format!("{d:?}").contains("Chain2010"));
    }
}
