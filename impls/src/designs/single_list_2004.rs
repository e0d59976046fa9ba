//! Design 1: the 2004 single-list anon_vma (`single-list-2004`).
//!
//! Andrea Arcangeli's anon_vma scheme as Hugh Dickins merged it for Linux
//! 2.6.7 ("[PATCH] rmap 39 add anon_vma rmap", 18 May 2004; commit
//! `8aa3448cabdf` in the git-ified pre-2005 history), plus the importer fix
//! of 2.6.8 ("[PATCH] mprotect propagate anon_vma", Hugh Dickins, 18 Jun
//! 2004, Message-ID `<Pine.LNX.4.44.0406181956000.26377-100000@localhost.localdomain>`).
//! The code we follow is 2.6.11's `mm/rmap.c` and `mm/mmap.c`, which still
//! have the 2004 algorithm unchanged (docs/designs.md).
//!
//! # Model
//!
//! * One anon_vma per *family*: a VMA, everything split from it, every VMA
//!   forked from any of those, and every VMA that adopted the family's
//!   anon_vma from a neighbour (`find_mergeable_anon_vma`) or as a merge
//!   importer. The anon_vma holds ONE list of VMAs (`anon_vma->head`).
//! * **List order.** 2.6.7 … 2.6.23 insert with `list_add`, i.e. at the
//!   *head* (2.6.11 `anon_vma_prepare`, `__anon_vma_link`, `anon_vma_link`);
//!   2.6.24 switched to `list_add_tail`. We follow 2.6.7/2.6.11: a newly
//!   linked VMA goes to the head, and the walk visits the list head to tail,
//!   so the newest VMA is visited first. (The order only matters for walks
//!   that interleave with PTE moves, which the trait does not model; it is
//!   still reported in this order so traces match the kernel.)
//! * No refcount: an anon_vma is freed exactly when its list becomes empty
//!   ("we're guaranteed no page can be pointing to this anon_vma once its vma
//!   list is empty" — the 2004 comment). KSM's `ksm_refcount` (2.6.32) is
//!   out of scope.
//! * A page's `mapping` is fixed for its whole life: there is no
//!   `page_move_anon_rmap` in this design, and both exclusive and shared
//!   first mappings use `vma->anon_vma` (there is only one per family).
//! * Walks are not keyed by pgoff: every VMA on the list is a candidate; the
//!   MMU's `vma_address` skips those out of range.
//!
//! # Cost counters
//!
//! `bytes` = 24 per anon_vma (`{spinlock_t lock; struct list_head head}`,
//! padded) + 24 per VMA the design knows (the `anon_vma_node` list_head and
//! the `anon_vma` pointer rmap 39 added to `vm_area_struct`,
//! docs/designs.md). The design only learns about a VMA when it gets an
//! anon_vma (prepare, fork/clone/importer of a faulted VMA); an unfaulted
//! VMA has no state here, so its 24 bytes are not counted — `counters()` is
//! given no view of the live VMAs.
//!
//! # Re-injectable bugs
//!
//! * `b01` (docs/bugs.md B01, the 2.6.7 state before the 18 Jun 2004
//!   fix): the importer step is skipped — [`Rmap::dup_anon_vma`] does
//!   nothing, so when mprotect shifts a boundary (or a merge swallows a
//!   faulted VMA) the expanding VMA does not join the shrinking one's
//!   anon_vma. Off by default; enable with [`SingleList2004::with_bugs`].

use std::collections::BTreeSet;
use std::fmt;
use std::fmt::Write as _;

use crate::arena::{Arena, Handle, SecondaryMap};
use crate::rmap::{
    AllocSchedule, AnonMapping, CloneOp, Counters, MergeSrc, Rmap, RmapError, TreeCounters, VmaId,
    VmaView,
};

/// Bytes of one `struct anon_vma { spinlock_t lock; struct list_head head; }`
/// on x86-64 (docs/designs.md).
pub const ANON_VMA_BYTES: u64 = 24;
/// Bytes rmap 39 added to every `vm_area_struct` (`anon_vma_node` + pointer).
pub const VMA_DELTA_BYTES: u64 = 24;

/// Allocation site of the only metadata this design allocates.
const SITE_ANON_VMA: &str = "anon_vma_prepare:anon_vma";

/// Every allocation site of the design: only `anon_vma_prepare` allocates
/// (fork, split and remap link the VMA into the family's list in place).
pub const ALLOC_SITES: &[&str] = &[SITE_ANON_VMA];

use super::registry::bug::{Bug, Injection, count_injectable, injectable};

/// The catalogued bugs of this design (`docs/bugs.md`), each described
/// once; the registry gathers them.
pub const BUGS: &[Bug] = &[
    Bug {
        id: "b01",
        title: "mprotect boundary shift loses the anon_vma (no importer step)",
        commit: "\"[PATCH] mprotect propagate anon_vma\" (Hugh Dickins, 18 Jun 2004)",
        years: "2004",
        era: None,
        invariant: "findability",
        needs: &[],
        injection: Injection::Injected(
            "2.6.7: no vma_adjust importer step (dup_anon_vma does nothing), fixed 18 Jun 2004",
        ),
    },
    Bug {
        id: "b02",
        title: "anon_vma_prepare published a new anon_vma without its lock",
        commit: "d9d332e0874f",
        years: "2008",
        era: Some("2006"),
        invariant: "data-race",
        needs: &[],
        injection: Injection::Injected(
            "anon_vma_prepare links a VMA to an anon_vma it allocated without taking its lock: \
             a walker that found the reused slot through page->mapping holds that lock while \
             the list changes (lock model: lock_fresh_anon_vma false)",
        ),
    },
];

/// The injectable ids of [`BUGS`] with how each is injected: what
/// [`SingleList2004::with_bugs`] accepts.
pub const KNOWN_BUGS: &[(&str, &str)] = &injectable::<{ count_injectable(BUGS) }>(BUGS);

/// One `struct anon_vma`: the family's list of VMAs, head first.
#[derive(Clone, Debug, Default)]
struct AnonVma {
    /// `anon_vma->head`; index 0 is the list head (visited first).
    head: Vec<VmaId>,
}

/// The design's per-VMA state: `vma->anon_vma` (and, implicitly, the
/// `anon_vma_node` linking the VMA into that anon_vma's list).
#[derive(Clone, Copy, Debug)]
struct VmaState {
    anon_vma: Handle,
}

/// The kernel this design follows (`--era`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Era {
    /// 2.6.7 (+ the 2.6.8 importer fix): every link at the list head, no
    /// migration entries yet. The default.
    #[default]
    E2004,
    /// 2.6.18 … 2.6.33: migration entries, and every link at the list tail
    /// (`0697212a411c`, Christoph Lameter with Hugh Dickins' fork fix).
    E2006,
}

impl Era {
    pub const ALL: [Era; 2] = [Era::E2004, Era::E2006];

    /// The CLI spelling: `2004`, `2006`.
    pub fn as_str(self) -> &'static str {
        match self {
            Era::E2004 => "2004",
            Era::E2006 => "2006",
        }
    }

    /// Parses the CLI spelling.
    pub fn from_name(s: &str) -> Option<Era> {
        Era::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// Design 1 (`single-list-2004`): one anon_vma per family with one list of
/// VMAs (Linux 2.6.7 + the 2.6.8 importer fix; era 2006: the list order
/// and lock model of 2.6.18 … 2.6.33).
#[derive(Clone, Default)]
pub struct SingleList2004 {
    era: Era,
    anon_vmas: Arena<AnonVma>,
    /// Only VMAs that have an anon_vma have an entry.
    vmas: SecondaryMap<VmaState>,
    alloc: AllocSchedule,
    /// Re-injected bugs (ids of [`KNOWN_BUGS`]); empty by default.
    bugs: BTreeSet<&'static str>,
    /// Lists changed while recording ([`Rmap::record_set_writes`]).
    set_writes: Option<Vec<Handle>>,
}

impl fmt::Debug for SingleList2004 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lists: Vec<(Handle, Vec<VmaId>)> = self
            .anon_vmas
            .iter()
            .map(|(h, av)| (h, av.head.clone()))
            .collect();
        let vmas: Vec<(VmaId, Handle)> = self.vmas.iter().map(|(v, s)| (v, s.anon_vma)).collect();
        f.debug_struct("SingleList2004")
            .field("era", &self.era)
            .field("anon_vmas", &lists)
            .field("vmas", &vmas)
            .field("alloc", &self.alloc)
            .field("bugs", &self.bugs)
            .finish()
    }
}

/// The `Dangling` error for a freed anon_vma reached from `ctx` (the
/// kernel's use-after-free of an `SLAB_DESTROY_BY_RCU` anon_vma).
fn dangling_anon_vma(av: Handle, ctx: impl fmt::Display) -> RmapError {
    RmapError::Dangling {
        what: "anon_vma".into(),
        detail: format!("{ctx}: anon_vma {av} was freed"),
    }
}

/// The `Dangling` error for a freed VMA reached from `ctx` (a stale
/// `anon_vma_node` in the kernel).
fn dangling_vma(vma: VmaId, ctx: impl fmt::Display) -> RmapError {
    RmapError::Dangling {
        what: "vma".into(),
        detail: format!("{ctx}: VMA {vma} was freed"),
    }
}

impl SingleList2004 {
    /// A design with no re-injected bug.
    pub fn new() -> Self {
        Self::default()
    }

    /// A design with the named bugs re-injected (ids of [`KNOWN_BUGS`],
    /// case-insensitive). Panics on an id this design does not know: callers
    /// validate user input first (the oracle's catalogue, or
    /// [`SingleList2004::try_with_bugs`]).
    pub fn with_bugs(bugs: &[&str]) -> Self {
        Self::try_with_bugs(bugs).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`SingleList2004::with_bugs`], with an unknown id as an error
    /// naming it.
    pub fn try_with_bugs(bugs: &[&str]) -> Result<Self, String> {
        Self::try_with_era_and_bugs(Era::default(), bugs)
    }

    /// The design of `era` (2004: head insertion; 2006: tail insertion)
    /// with the named bugs. Panics on an unknown bug id.
    pub fn with_era_and_bugs(era: Era, bugs: &[&str]) -> Self {
        Self::try_with_era_and_bugs(era, bugs).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`SingleList2004::with_era_and_bugs`], with an unknown id as an
    /// error naming it.
    pub fn try_with_era_and_bugs(era: Era, bugs: &[&str]) -> Result<Self, String> {
        Ok(SingleList2004 {
            era,
            bugs: super::bug_set("single-list-2004", KNOWN_BUGS, bugs)?,
            ..Self::default()
        })
    }

    /// The era.
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

    /// `vma->anon_vma`, without following it (the kernel's plain pointer
    /// read, e.g. the early return of `anon_vma_prepare`).
    fn anon_vma_of(&self, vma: VmaId) -> Option<Handle> {
        self.vmas.get(vma).map(|s| s.anon_vma)
    }

    /// `vma->anon_vma`, followed: `Dangling` if it names a freed anon_vma,
    /// so no hook ever acts on a freed object (every dereferencing path).
    fn live_anon_vma_of(
        &self,
        vma: VmaId,
        ctx: impl fmt::Display,
    ) -> Result<Option<Handle>, RmapError> {
        match self.anon_vma_of(vma) {
            None => Ok(None),
            Some(av) if self.anon_vmas.contains(av) => Ok(Some(av)),
            Some(av) => Err(dangling_anon_vma(av, ctx)),
        }
    }

    /// Sets `vma->anon_vma = av` and puts `vma` at the head of `av`'s list
    /// (era 2004) or its tail (era 2006); keeps "a VMA is on its anon_vma's
    /// list exactly once". Called by every linking path (2.6.11
    /// `anon_vma_prepare`, `__anon_vma_link`, `anon_vma_link`, the
    /// `vma_adjust` importer; all `list_add` in rmap 39, `list_add_tail`
    /// from 2.6.18, `0697212a411c`).
    fn link(&mut self, vma: VmaId, av: Handle) -> Result<(), RmapError> {
        if let Some(old) = self.anon_vma_of(vma) {
            return Err(RmapError::Check {
                name: "list-membership",
                detail: format!(
                    "VMA {vma} is already on anon_vma {old}'s list, cannot link to {av}"
                ),
            });
        }
        let list = self
            .anon_vmas
            .get_mut(av)
            .ok_or_else(|| dangling_anon_vma(av, "link"))?;
        match self.era {
            Era::E2004 => list.head.insert(0, vma),
            Era::E2006 => list.head.push(vma),
        }
        if let Some(w) = &mut self.set_writes {
            w.push(av);
        }
        self.vmas.insert(vma, VmaState { anon_vma: av });
        Ok(())
    }

    /// `find_mergeable_anon_vma` (2.6.11 mm/mmap.c, rmap 39/40): the first of
    /// `next`, `prev` (candidates the MMU found `anon_vma_compatible`) that
    /// has an anon_vma; 2004 has no singular-chain test (that is
    /// `d0e9fe1758f2`, 2010, design 2 only). Keeps "anon_vma reuse only
    /// among compatible neighbours"; called by `anon_vma_prepare`.
    fn find_mergeable_anon_vma(
        &self,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<Option<Handle>, RmapError> {
        for near in [next, prev].into_iter().flatten() {
            if let Some(av) = self.live_anon_vma_of(near, "find_mergeable_anon_vma")? {
                return Ok(Some(av));
            }
        }
        Ok(None)
    }

    /// One VMA with its geometry from the view, for `describe`.
    fn vma_line(&self, view: &dyn VmaView, vma: VmaId) -> String {
        match view.vma_info(vma) {
            Some(i) => format!("{vma} {} [{}, {}) pgoff {}", i.mm, i.start, i.end, i.pgoff),
            None => format!("{vma} (FREED VMA)"),
        }
    }
}

impl Rmap for SingleList2004 {
    /// The CLI name (docs/op-language.md, "Names the CLI accepts").
    fn name(&self) -> &'static str {
        "single-list-2004"
    }

    /// The era when it is not the default, and the re-injected bugs.
    fn config(&self) -> Vec<(&'static str, String)> {
        let mut c = Vec::new();
        if self.era != Era::default() {
            c.push(("era", self.era.as_str().to_string()));
        }
        if !self.bugs.is_empty() {
            c.push(("bugs", self.bugs().collect::<Vec<_>>().join(",")));
        }
        c
    }

    /// `vma->anon_vma != NULL` (checked by the fault path before
    /// `anon_vma_prepare`, by `dup_mmap` before copying PTEs).
    fn has_anon_vma(&self, vma: VmaId) -> bool {
        self.anon_vma_of(vma).is_some()
    }

    /// `anon_vma_prepare` (2.6.11 mm/rmap.c, rmap 39 `8aa3448cabdf`), called
    /// on the first fault needing an anonymous page in `vma`: afterwards
    /// `vma` has an anon_vma and is on its list once — a compatible
    /// neighbour's (next before prev) if one has one, else a new one (the
    /// only allocation; on failure nothing changes).
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
        if view.vma_info(vma).is_none() {
            return Err(dangling_vma(vma, "anon_vma_prepare"));
        }
        let av = match self.find_mergeable_anon_vma(next, prev)? {
            Some(av) => av,
            None => {
                self.alloc.alloc(SITE_ANON_VMA)?;
                self.anon_vmas.insert(AnonVma::default())
            }
        };
        self.link(vma, av)
    }

    /// `anon_vma_link` of the child's copy (2.6.11 `dup_mmap` in
    /// kernel/fork.c, rmap 39): the child VMA inherits the parent's anon_vma
    /// (`*tmp = *mpnt`) and joins the SAME list at its head; keeps "one
    /// anon_vma per family". Allocates nothing, so it cannot fail for memory.
    fn anon_vma_fork(
        &mut self,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<(), RmapError> {
        if view.vma_info(parent).is_none() {
            return Err(dangling_vma(parent, "anon_vma_fork (parent)"));
        }
        match self.live_anon_vma_of(parent, "anon_vma_fork")? {
            Some(av) => self.link(child, av),
            None => Ok(()),
        }
    }

    /// `__anon_vma_link` of a VMA copied from `src` (2.6.11 `split_vma` →
    /// `vma_adjust(insert)` → `__insert_vm_struct`; `copy_vma` → `vma_link`;
    /// rmap 39): `dst` gets `src`'s anon_vma and joins its list, keeping
    /// "a split or moved piece stays findable through the family list".
    /// `MergeUnfaulted` behaves as [`Rmap::dup_anon_vma`].
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
        if view.vma_info(dst).is_none() {
            return Err(dangling_vma(dst, "anon_vma_clone (dst)"));
        }
        let Some(av) = self.live_anon_vma_of(src, "anon_vma_clone")? else {
            return Ok(());
        };
        match self.anon_vma_of(dst) {
            // Already there (vm_area_dup copied the pointer and someone linked it).
            Some(d) if d == av => Ok(()),
            Some(d) => Err(RmapError::Check {
                name: "clone-dst",
                detail: format!(
                    "{op:?} clone into {dst} which has anon_vma {d}, source {src} has {av}"
                ),
            }),
            None => self.link(dst, av),
        }
    }

    /// The `vma_adjust` importer (2.6.8, "mprotect propagate anon_vma",
    /// 18 Jun 2004; 2.6.11 mm/mmap.c): when a merge or boundary shift makes
    /// `dst` cover pages of `src`, `dst` takes `src`'s anon_vma and joins its
    /// list, keeping "imported pages stay findable". With `b01` this does
    /// nothing (the 2.6.7 state).
    fn dup_anon_vma(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<(), RmapError> {
        if self.bug("b01") {
            return Ok(());
        }
        if view.vma_info(dst).is_none() {
            return Err(dangling_vma(dst, "dup_anon_vma (dst)"));
        }
        let Some(av) = self.live_anon_vma_of(src, "dup_anon_vma")? else {
            return Ok(());
        };
        if self.anon_vma_of(dst).is_some() {
            return Ok(());
        }
        self.link(dst, av)
    }

    /// `anon_vma_unlink` (2.6.11 mm/rmap.c, rmap 39; also `__anon_vma_merge`
    /// for the VMA a merge removes): `vma` leaves its anon_vma's list and
    /// the anon_vma is freed when the list empties, keeping "no live
    /// anon_vma with an empty list". Called from `remove_vm_struct` (munmap,
    /// exit) and `vma_adjust` (merge).
    fn unlink_anon_vmas(&mut self, _view: &dyn VmaView, vma: VmaId) -> Result<(), RmapError> {
        let Some(av) = self.anon_vma_of(vma) else {
            return Ok(());
        };
        let list = self
            .anon_vmas
            .get_mut(av)
            .ok_or_else(|| dangling_anon_vma(av, "anon_vma_unlink"))?;
        let Some(pos) = list.head.iter().position(|&v| v == vma) else {
            return Err(RmapError::Check {
                name: "list-membership",
                detail: format!("unlink: VMA {vma} points to anon_vma {av} but is not on its list"),
            });
        };
        list.head.remove(pos);
        let empty = list.head.is_empty();
        if let Some(w) = &mut self.set_writes {
            w.push(av);
        }
        self.vmas.remove(vma);
        if empty {
            self.anon_vmas.remove(av);
        }
        Ok(())
    }

    /// `is_mergeable_anon_vma` of 2004–2.6.39 (2.6.11 mm/mmap.c):
    /// `!a || !b || a == b`, keeping "a merged VMA has one anon_vma". Called
    /// by `vma_merge` (`can_vma_merge_before/after`).
    fn is_mergeable_anon_vma(&self, tgt: VmaId, src: MergeSrc) -> bool {
        let a = self.anon_vma_of(tgt);
        let b = match src {
            MergeSrc::New => None,
            MergeSrc::Existing(v) | MergeSrc::Copy(v) => self.anon_vma_of(v),
        };
        a.is_none() || b.is_none() || a == b
    }

    /// The three-way merge check of 2.6.11 `vma_merge` (cases 1, 6:
    /// `is_mergeable_anon_vma(prev->anon_vma, next->anon_vma)`): same rule.
    fn anon_vmas_compatible(&self, prev: VmaId, next: VmaId) -> bool {
        let a = self.anon_vma_of(prev);
        let b = self.anon_vma_of(next);
        a.is_none() || b.is_none() || a == b
    }

    /// `page_add_anon_rmap` on the first mapping (2.6.11 mm/rmap.c, rmap
    /// 39): the page's mapping is `vma->anon_vma`, exclusive or not — one
    /// anon_vma per family. Called from the fault/COW paths.
    fn folio_add_new_anon_rmap(
        &mut self,
        vma: VmaId,
        _exclusive: bool,
    ) -> Result<AnonMapping, RmapError> {
        match self.live_anon_vma_of(vma, "page_add_anon_rmap")? {
            Some(av) => Ok(av),
            None => Err(RmapError::Check {
                name: "no-anon-vma",
                detail: format!("page_add_anon_rmap in VMA {vma} which has no anon_vma"),
            }),
        }
    }

    /// 2004 has no `page_move_anon_rmap` (that is `c44b674323f4`, 2010): a
    /// page's mapping never changes, so the current one is returned.
    fn folio_move_anon_rmap(
        &mut self,
        _vma: VmaId,
        current: AnonMapping,
    ) -> Result<AnonMapping, RmapError> {
        Ok(current)
    }

    /// `page_referenced_anon` / `try_to_unmap_anon` (2.6.11 mm/rmap.c, rmap
    /// 39): every VMA on the anon_vma's list, head to tail; `index` is not
    /// used (no pgoff tree). `Dangling` if the page's anon_vma was freed.
    fn rmap_walk(
        &self,
        _view: &dyn VmaView,
        mapping: AnonMapping,
        _index: u64,
        out: &mut Vec<VmaId>,
    ) -> Result<(), RmapError> {
        let av = self
            .anon_vmas
            .get(mapping)
            .ok_or_else(|| dangling_anon_vma(mapping, "rmap walk from page->mapping"))?;
        out.extend(av.head.iter().copied());
        Ok(())
    }

    /// Every VMA the design has seen has an entry (its anon_vma / chain).
    fn tracks_vma(&self, vma: VmaId) -> bool {
        self.vmas.get(vma).is_some()
    }

    /// Mutation counts of every container `self_check` and the walk read.
    fn epoch(&self) -> Option<u64> {
        Some(self.anon_vmas.epoch() + self.vmas.epoch())
    }

    fn record_set_writes(&mut self, on: bool) {
        self.set_writes = on.then(Vec::new);
    }

    /// A family's anon_vma is its own root.
    fn take_set_writes(&mut self, out: &mut Vec<crate::rmap::SetWrite>) {
        if let Some(w) = &mut self.set_writes {
            out.extend(w.drain(..).map(|av| crate::rmap::SetWrite {
                anon_vma: av,
                root: av,
            }));
        }
    }

    /// Whether a page's `mapping` still names a live anon_vma (INV-LIVE).
    fn mapping_alive(&self, mapping: AnonMapping) -> bool {
        self.anon_vmas.contains(mapping)
    }

    /// Live anon_vmas, no chains, bytes by the struct sizes (see the module
    /// docs for which VMAs are counted), successful allocations.
    fn counters(&self) -> Counters {
        let anon_vmas = self.anon_vmas.len() as u64;
        let vmas = self.vmas.len() as u64;
        Counters {
            anon_vmas,
            avcs: 0,
            bytes: anon_vmas * ANON_VMA_BYTES + vmas * VMA_DELTA_BYTES,
            allocations: self.alloc.made(),
        }
    }

    /// One tree per family: its anon_vma and the VMAs on its list.
    fn fork_trees(&self) -> Vec<TreeCounters> {
        self.anon_vmas
            .iter()
            .map(|(h, av)| TreeCounters {
                root: h,
                anon_vmas: 1,
                avcs: 0,
                bytes: ANON_VMA_BYTES + av.head.len() as u64 * VMA_DELTA_BYTES,
                vmas: av.head.len() as u64,
            })
            .collect()
    }

    /// A page's family is its anon_vma, fixed for life.
    fn tree_of(&self, mapping: AnonMapping) -> Option<Handle> {
        self.anon_vmas.contains(mapping).then_some(mapping)
    }

    /// The anon_vma in `mapping`'s slot now (type-stable memory: the
    /// cache is `SLAB_DESTROY_BY_RCU`, so a freed slot holds the next
    /// anon_vma allocated).
    fn slot_occupant(&self, mapping: AnonMapping) -> Option<AnonMapping> {
        self.anon_vmas.occupant(mapping)
    }

    fn next_anon_vma_slot(&self) -> Option<usize> {
        Some(self.anon_vmas.next_index())
    }

    /// `b02` clears `lock_fresh_anon_vma`: the link of a freshly allocated
    /// anon_vma is then done without its lock (before `d9d332e0874f`).
    fn lock_model(&self) -> crate::sched::LockModel {
        let mut m = match self.era {
            Era::E2004 => crate::sched::LockModel::SINGLE_LIST_2004,
            Era::E2006 => crate::sched::LockModel::SINGLE_LIST_2006,
        };
        if self.bug("b02") {
            m.lock_fresh_anon_vma = false;
        }
        m
    }

    fn vma_anon_vma(&self, vma: VmaId) -> Option<Handle> {
        self.anon_vma_of(vma)
    }

    /// An anon_vma lives only while its list is non-empty and a VMA is on
    /// one list, so anon_vmas ≤ VMAs.
    fn claimed_bound(&self) -> Option<u64> {
        Some(1)
    }

    /// Checks "every VMA's anon_vma is alive and lists the VMA exactly once"
    /// (`list-membership`), "every listed VMA is alive and points back"
    /// (`list-membership`, `Dangling` for freed VMAs), and "no live anon_vma
    /// has an empty list" (`empty-anon-vma`) — 2.6.11's `validate_anon_vma`
    /// (RMAP_DEBUG) generalised to the whole design.
    fn self_check(&self, view: &dyn VmaView) -> Result<(), RmapError> {
        for (vma, st) in self.vmas.iter() {
            if view.vma_info(vma).is_none() {
                return Err(dangling_vma(
                    vma,
                    format_args!("design state (anon_vma {}) kept for", st.anon_vma),
                ));
            }
            let list = self.anon_vmas.get(st.anon_vma).ok_or_else(|| {
                dangling_anon_vma(st.anon_vma, format_args!("VMA {vma}->anon_vma"))
            })?;
            let n = list.head.iter().filter(|&&v| v == vma).count();
            if n != 1 {
                return Err(RmapError::Check {
                    name: "list-membership",
                    detail: format!(
                        "VMA {vma} is on its anon_vma {}'s list {n} times",
                        st.anon_vma
                    ),
                });
            }
        }
        for (av, list) in self.anon_vmas.iter() {
            if list.head.is_empty() {
                return Err(RmapError::Check {
                    name: "empty-anon-vma",
                    detail: format!("anon_vma {av} is alive with an empty list"),
                });
            }
            for &v in &list.head {
                if view.vma_info(v).is_none() {
                    return Err(dangling_vma(v, format_args!("anon_vma {av}'s list holds")));
                }
                match self.anon_vma_of(v) {
                    Some(back) if back == av => {}
                    other => {
                        return Err(RmapError::Check {
                            name: "list-membership",
                            detail: format!(
                                "VMA {v} is on anon_vma {av}'s list but its anon_vma is {}",
                                other.map_or("none".to_string(), |h| h.to_string())
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The `fail-alloc` schedule; its only site is `anon_vma_prepare:anon_vma`.
    fn alloc_sites(&self) -> &'static [&'static str] {
        ALLOC_SITES
    }

    fn alloc_schedule(&mut self) -> &mut AllocSchedule {
        &mut self.alloc
    }

    /// The anon_vmas of `mapping` and of `vmas`, each with its list head
    /// first (the walk order) and the VMAs' geometry, for failure reports.
    fn describe(&self, view: &dyn VmaView, mapping: Option<AnonMapping>, vmas: &[VmaId]) -> String {
        let mut s = String::new();
        let mut avs: Vec<Handle> = Vec::new();
        if let Some(m) = mapping {
            avs.push(m);
        }
        for &v in vmas {
            if let Some(av) = self.anon_vma_of(v)
                && !avs.contains(&av)
            {
                avs.push(av);
            }
        }
        let _ = writeln!(
            s,
            "single-list-2004 (list order: head insertion, 2.6.7-2.6.23)"
        );
        if !self.bugs.is_empty() {
            let _ = writeln!(s, "  bugs: {}", self.bugs().collect::<Vec<_>>().join(","));
        }
        for av in avs {
            let tag = if Some(av) == mapping {
                " (page->mapping)"
            } else {
                ""
            };
            match self.anon_vmas.get(av) {
                None => {
                    let _ = writeln!(s, "  anon_vma {av}{tag}: FREED");
                }
                Some(list) => {
                    let _ = writeln!(
                        s,
                        "  anon_vma {av}{tag}: {} VMA(s), head first:",
                        list.head.len()
                    );
                    for &v in &list.head {
                        let _ = writeln!(s, "    {}", self.vma_line(view, v));
                    }
                }
            }
        }
        for &v in vmas {
            let av = self
                .anon_vma_of(v)
                .map_or("none".to_string(), |h| h.to_string());
            let _ = writeln!(s, "  {} -> anon_vma {av}", self.vma_line(view, v));
        }
        let _ = writeln!(
            s,
            "  live: {} anon_vma(s), {} linked VMA(s)",
            self.anon_vmas.len(),
            self.vmas.len()
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::designs::testkit::{Sim, check_name};

    /// Each named check fires on the damage it guards: a VMA twice on its
    /// list or on a list that is not its anon_vma's (`list-membership`), an
    /// anon_vma with an empty list (`empty-anon-vma`), a clone into a VMA
    /// that already has another anon_vma (`clone-dst`), a new page in a VMA
    /// without one (`no-anon-vma`).
    #[test]
    fn every_named_check_fires_on_the_damage_it_guards() {
        let mut s = Sim::new(SingleList2004::new());
        let p = s.mmap(0, 0, 4);
        s.fault(p);
        let c = s.fork(1, p);
        s.check();
        let av = s.d.anon_vma_of(p).unwrap();
        let name = |x: &Sim<SingleList2004>| check_name(x.d.self_check(&x.view));
        let mut x = s.clone();
        x.d.anon_vmas.get_mut(av).unwrap().head.push(c);
        assert_eq!(name(&x), "list-membership");
        let mut x = s.clone();
        let q = x.mmap(2, 0, 4);
        x.fault(q);
        let other = x.d.anon_vma_of(q).unwrap();
        x.d.anon_vmas.get_mut(other).unwrap().head.push(c);
        x.d.anon_vmas.get_mut(av).unwrap().head.retain(|&v| v != c);
        assert_eq!(name(&x), "list-membership");
        let mut x = s.clone();
        x.d.anon_vmas.insert(AnonVma { head: Vec::new() });
        assert_eq!(name(&x), "empty-anon-vma");
        let mut x = s.clone();
        let q = x.mmap(2, 0, 4);
        x.fault(q);
        let r = x.d.anon_vma_clone(&x.view, c, q, CloneOp::Split);
        assert_eq!(check_name(r), "clone-dst");
        let mut x = s.clone();
        let u = x.mmap(0, 8, 12);
        assert_eq!(
            check_name(x.d.folio_add_new_anon_rmap(u, true)),
            "no-anon-vma"
        );
    }

    #[test]
    fn prepare_allocates_once_and_reuses_neighbours_next_first() {
        let mut s = Sim::new(SingleList2004::new());
        let a = s.mmap(0, 0, 4);
        let b = s.mmap(0, 4, 8);
        let c = s.mmap(0, 8, 12);
        s.d.anon_vma_prepare(&s.view, a, None, None).unwrap();
        s.d.anon_vma_prepare(&s.view, a, None, None).unwrap();
        assert_eq!(s.d.counters().anon_vmas, 1);
        assert_eq!(s.d.counters().allocations, 1);
        s.d.anon_vma_prepare(&s.view, c, None, None).unwrap();
        assert_eq!(s.d.counters().anon_vmas, 2);
        // b sits between a (prev) and c (next): next is tried first.
        s.d.anon_vma_prepare(&s.view, b, Some(c), Some(a)).unwrap();
        assert_eq!(s.d.anon_vma_of(b), s.d.anon_vma_of(c));
        assert_ne!(s.d.anon_vma_of(b), s.d.anon_vma_of(a));
        assert_eq!(s.d.counters().anon_vmas, 2);
        // Unfaulted next is skipped, prev is used.
        let e = s.mmap(0, 20, 24);
        let f = s.mmap(0, 24, 28);
        let g = s.mmap(0, 28, 32);
        s.d.anon_vma_prepare(&s.view, e, None, None).unwrap();
        s.d.anon_vma_prepare(&s.view, f, Some(g), Some(e)).unwrap();
        assert_eq!(s.d.anon_vma_of(f), s.d.anon_vma_of(e));
        assert_eq!(
            s.d.counters(),
            Counters {
                anon_vmas: 3,
                avcs: 0,
                bytes: 3 * 24 + 5 * 24,
                allocations: 3
            }
        );
        s.d.self_check(&s.view).unwrap();
    }

    #[test]
    fn fork_joins_the_same_list_at_the_head() {
        let mut s = Sim::new(SingleList2004::new());
        let p = s.mmap(0, 0, 4);
        s.d.anon_vma_prepare(&s.view, p, None, None).unwrap();
        let av = s.d.folio_add_new_anon_rmap(p, true).unwrap();
        let c1 = s.mmap(1, 0, 4);
        s.d.anon_vma_fork(&s.view, c1, p).unwrap();
        let c2 = s.mmap(2, 0, 4);
        s.d.anon_vma_fork(&s.view, c2, c1).unwrap();
        assert_eq!(s.d.anon_vma_of(c1), Some(av));
        assert_eq!(s.d.anon_vma_of(c2), Some(av));
        assert_eq!(s.walk(av, 0), vec![c2, c1, p]);
        // Not exclusive: still the family's anon_vma.
        assert_eq!(s.d.folio_add_new_anon_rmap(c2, false).unwrap(), av);
        assert_eq!(s.d.folio_move_anon_rmap(c2, av).unwrap(), av);
        assert_eq!(s.d.counters().anon_vmas, 1);
        assert_eq!(s.d.counters().allocations, 1);
        // Fork of an unfaulted VMA links nothing.
        let u = s.mmap(0, 10, 12);
        let uc = s.mmap(1, 10, 12);
        s.d.anon_vma_fork(&s.view, uc, u).unwrap();
        assert!(!s.d.has_anon_vma(uc));
        s.d.self_check(&s.view).unwrap();
    }

    #[test]
    fn split_and_remap_clone_onto_the_same_list() {
        let mut s = Sim::new(SingleList2004::new());
        let a = s.mmap(0, 0, 8);
        s.d.anon_vma_prepare(&s.view, a, None, None).unwrap();
        let av = s.d.anon_vma_of(a).unwrap();
        let lo = s.mmap(0, 0, 4);
        s.d.anon_vma_clone(&s.view, lo, a, CloneOp::Split).unwrap();
        s.view.set(a, 4, 8, 4);
        let moved = s.mmap(0, 100, 104);
        s.view.set(moved, 100, 104, 4);
        s.d.anon_vma_clone(&s.view, moved, a, CloneOp::Remap)
            .unwrap();
        assert_eq!(s.walk(av, 0), vec![moved, lo, a]);
        assert!(s.d.is_mergeable_anon_vma(lo, MergeSrc::Existing(a)));
        // Clone of an unfaulted source gives nothing.
        let u = s.mmap(0, 50, 60);
        let u2 = s.mmap(0, 55, 60);
        s.d.anon_vma_clone(&s.view, u2, u, CloneOp::Split).unwrap();
        assert!(!s.d.has_anon_vma(u2));
        s.d.self_check(&s.view).unwrap();
    }

    #[test]
    fn unlink_frees_the_anon_vma_when_its_list_empties() {
        let mut s = Sim::new(SingleList2004::new());
        let p = s.mmap(0, 0, 4);
        s.d.anon_vma_prepare(&s.view, p, None, None).unwrap();
        let av = s.d.anon_vma_of(p).unwrap();
        let c = s.mmap(1, 0, 4);
        s.d.anon_vma_fork(&s.view, c, p).unwrap();
        s.exit(p);
        assert!(s.d.mapping_alive(av));
        assert_eq!(s.walk(av, 0), vec![c]);
        s.d.self_check(&s.view).unwrap();
        s.exit(c);
        assert!(!s.d.mapping_alive(av));
        assert_eq!(
            s.d.counters(),
            Counters {
                allocations: 1,
                ..Counters::default()
            }
        );
        // Unlinking an unknown (unfaulted) VMA is a no-op.
        let u = s.mmap(0, 0, 1);
        s.exit(u);
        s.d.self_check(&s.view).unwrap();
        // A page still pointing at the freed anon_vma dangles.
        let mut out = Vec::new();
        assert!(matches!(
            s.d.rmap_walk(&s.view, av, 0, &mut out),
            Err(RmapError::Dangling { .. })
        ));
    }

    #[test]
    fn importer_joins_the_exporters_list_unless_b01() {
        for bug in [false, true] {
            let mut s = Sim::new(SingleList2004::new());
            if bug {
                s.d = SingleList2004::with_bugs(&["B01"]);
                assert_eq!(s.d.config(), vec![("bugs", "b01".to_string())]);
            }
            let prev = s.mmap(0, 0, 4);
            let next = s.mmap(0, 4, 8);
            s.d.anon_vma_prepare(&s.view, next, None, None).unwrap();
            let av = s.d.anon_vma_of(next).unwrap();
            // mprotect case 5: prev expands over part of next.
            assert!(s.d.is_mergeable_anon_vma(prev, MergeSrc::Existing(next)));
            s.d.dup_anon_vma(&s.view, prev, next).unwrap();
            s.view.set(prev, 0, 6, 0);
            s.view.set(next, 6, 8, 6);
            if bug {
                assert!(!s.d.has_anon_vma(prev));
                s.exit(next);
                assert!(!s.d.mapping_alive(av), "b01: imported pages dangle");
            } else {
                assert_eq!(s.d.anon_vma_of(prev), Some(av));
                assert_eq!(s.walk(av, 0), vec![prev, next]);
                // A second import is a no-op.
                s.d.dup_anon_vma(&s.view, prev, next).unwrap();
                s.exit(next);
                assert!(s.d.mapping_alive(av));
                assert_eq!(s.walk(av, 0), vec![prev]);
            }
            s.d.self_check(&s.view).unwrap();
        }
        assert!(SingleList2004::try_with_bugs(&["b16"]).is_err());
        assert!(std::panic::catch_unwind(|| SingleList2004::with_bugs(&["b16"])).is_err());
    }

    #[test]
    fn merge_rule_is_null_or_equal() {
        let mut s = Sim::new(SingleList2004::new());
        let a = s.mmap(0, 0, 4);
        let b = s.mmap(0, 4, 8);
        let u = s.mmap(0, 8, 12);
        s.d.anon_vma_prepare(&s.view, a, None, None).unwrap();
        s.d.anon_vma_prepare(&s.view, b, None, None).unwrap();
        assert!(!s.d.is_mergeable_anon_vma(a, MergeSrc::Existing(b)));
        assert!(!s.d.anon_vmas_compatible(a, b));
        assert!(s.d.is_mergeable_anon_vma(a, MergeSrc::New));
        assert!(s.d.is_mergeable_anon_vma(u, MergeSrc::Copy(a)));
        assert!(s.d.anon_vmas_compatible(a, u));
        assert!(s.d.is_mergeable_anon_vma(a, MergeSrc::Existing(a)));
    }

    #[test]
    fn dangling_references_are_reported_not_panicked() {
        let mut s = Sim::new(SingleList2004::new());
        let a = s.mmap(0, 0, 4);
        s.d.anon_vma_prepare(&s.view, a, None, None).unwrap();
        let av = s.d.anon_vma_of(a).unwrap();
        // A bogus free behind the design's back.
        s.d.anon_vmas.remove(av).unwrap();
        assert!(!s.d.mapping_alive(av));
        assert!(matches!(
            s.d.self_check(&s.view),
            Err(RmapError::Dangling { .. })
        ));
        assert!(matches!(
            s.d.folio_add_new_anon_rmap(a, true),
            Err(RmapError::Dangling { .. })
        ));
        let c = s.mmap(1, 0, 4);
        assert!(matches!(
            s.d.anon_vma_fork(&s.view, c, a),
            Err(RmapError::Dangling { .. })
        ));
        let b = s.mmap(0, 4, 8);
        assert!(matches!(
            s.d.anon_vma_prepare(&s.view, b, None, Some(a)),
            Err(RmapError::Dangling { .. })
        ));
        assert!(matches!(
            s.d.unlink_anon_vmas(&s.view, a),
            Err(RmapError::Dangling { .. })
        ));
        let text = s.d.describe(&s.view, Some(av), &[a]);
        assert!(text.contains("FREED"), "{text}");

        // A VMA freed by the MMU without unlink: the list holds a dangling VMA.
        let mut s = Sim::new(SingleList2004::new());
        let a = s.mmap(0, 0, 4);
        let c = s.mmap(1, 0, 4);
        s.d.anon_vma_prepare(&s.view, a, None, None).unwrap();
        s.d.anon_vma_fork(&s.view, c, a).unwrap();
        s.view.vmas.remove(c).unwrap();
        assert!(matches!(
            s.d.self_check(&s.view),
            Err(RmapError::Dangling { .. })
        ));
    }

    #[test]
    fn self_check_names_structural_failures() {
        let mut s = Sim::new(SingleList2004::new());
        let a = s.mmap(0, 0, 4);
        s.d.anon_vma_prepare(&s.view, a, None, None).unwrap();
        let av = s.d.anon_vma_of(a).unwrap();
        s.d.anon_vmas.get_mut(av).unwrap().head.push(a);
        assert!(matches!(
            s.d.self_check(&s.view),
            Err(RmapError::Check {
                name: "list-membership",
                ..
            })
        ));
        s.d.anon_vmas.get_mut(av).unwrap().head.clear();
        assert!(matches!(
            s.d.self_check(&s.view),
            Err(RmapError::Check {
                name: "list-membership",
                ..
            })
        ));
        s.d.vmas.remove(a);
        assert!(matches!(
            s.d.self_check(&s.view),
            Err(RmapError::Check {
                name: "empty-anon-vma",
                ..
            })
        ));
    }

    #[test]
    fn alloc_failure_returns_nomem_and_changes_nothing() {
        let mut s = Sim::new(SingleList2004::new());
        let a = s.mmap(0, 0, 4);
        let b = s.mmap(0, 10, 14);
        s.d.anon_vma_prepare(&s.view, a, None, None).unwrap();
        let before = s.d.counters();
        s.d.alloc_schedule().fail_nth(1);
        assert_eq!(
            s.d.anon_vma_prepare(&s.view, b, None, None),
            Err(RmapError::NoMem {
                site: SITE_ANON_VMA
            })
        );
        assert!(!s.d.has_anon_vma(b));
        assert_eq!(s.d.counters(), before);
        assert!(!s.d.alloc_schedule().pending());
        s.d.self_check(&s.view).unwrap();
        // Reuse allocates nothing, so a pending failure is not consumed.
        let c = s.mmap(0, 4, 8);
        s.d.alloc_schedule().fail_nth(1);
        s.d.anon_vma_prepare(&s.view, c, None, Some(a)).unwrap();
        assert!(s.d.alloc_schedule().pending());
        // Fork allocates nothing either.
        let ac = s.mmap(1, 0, 4);
        s.d.anon_vma_fork(&s.view, ac, a).unwrap();
        assert!(s.d.alloc_schedule().pending());
        s.d.anon_vma_prepare(&s.view, b, None, None).unwrap_err();
        s.d.anon_vma_prepare(&s.view, b, None, None).unwrap();
        assert!(s.d.has_anon_vma(b));
        assert_eq!(s.d.alloc_schedule().sites(), &[SITE_ANON_VMA]);
        s.d.self_check(&s.view).unwrap();
    }

    #[test]
    fn clone_and_debug_are_deep() {
        let mut s = Sim::new(SingleList2004::new());
        let a = s.mmap(0, 0, 4);
        s.d.anon_vma_prepare(&s.view, a, None, None).unwrap();
        let snapshot = s.d.clone();
        s.exit(a);
        assert_eq!(snapshot.counters().anon_vmas, 1);
        assert_eq!(s.d.counters().anon_vmas, 0);
        assert!(format!("{snapshot:?}").contains("SingleList2004"));
        assert_eq!(s.d.claimed_bound(), Some(1));
        assert_eq!(s.d.name(), "single-list-2004");
    }
}
