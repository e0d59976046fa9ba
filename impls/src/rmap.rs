//! The `Rmap` trait: the hooks Linux's `mm/` code calls in `mm/rmap.c`.
//!
//! The MMU (`crate::mmu`) owns processes, VMAs, page tables and frames and
//! never names a design. A design owns its reverse-map objects (anon_vmas,
//! chains, ...) in generational arenas and keeps its per-VMA state keyed by
//! [`VmaId`]. The MMU calls a hook exactly where Linux 6.18 calls the
//! corresponding function, and asks the design for the candidate VMAs of a
//! page when it walks the reverse map; it computes the address itself
//! (`vma_address`) and checks the PTE.

use std::fmt;

use crate::arena::Handle;
use rmaplab_ops::Pid;

/// Identity of a VMA: a generational handle into the MMU's VMA arena. A
/// design that keeps a `VmaId` after the MMU freed that VMA holds a
/// dangling pointer, which the MMU reports when it follows it.
pub type VmaId = Handle;

/// A page's `mapping` for anonymous pages: the design's handle (an anon_vma
/// for every design here). Opaque to the MMU.
pub type AnonMapping = Handle;

/// What the MMU tells a design about one live VMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmaInfo {
    pub mm: Pid,
    /// First page (window page number).
    pub start: u64,
    /// One past the last page.
    pub end: u64,
    /// `vm_pgoff`, in pages.
    pub pgoff: u64,
}

impl VmaInfo {
    pub fn pages(&self) -> u64 {
        self.end - self.start
    }
    /// The interval-tree key of the VMA: `[vm_pgoff, vm_pgoff + pages - 1]`.
    pub fn pgoff_last(&self) -> u64 {
        self.pgoff + self.pages() - 1
    }
}

/// Read access to the MMU's VMAs, for designs that need geometry (interval
/// tree keys, self-checks) or ownership (which mm a VMA belongs to).
pub trait VmaView {
    /// `None` if the VMA was freed (the caller holds a dangling `VmaId`).
    fn vma_info(&self, vma: VmaId) -> Option<VmaInfo>;
    /// Every live VMA, in (mm, address) order.
    fn live_vmas(&self) -> Vec<VmaId>;
}

/// A change to the set of VMAs a walk of `anon_vma` reads (its interval
/// tree or `same_anon_vma` list), and the root of `anon_vma`'s fork tree
/// when it happened: the era's lock for it is one or the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetWrite {
    pub anon_vma: Handle,
    pub root: Handle,
}

/// Why `anon_vma_clone` is called (the 2026 series' `enum vma_operation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloneOp {
    /// `__split_vma`: the new piece shares the original's anon_vma.
    Split,
    /// `dup_anon_vma`: an unfaulted VMA imports a faulted one's anon_vma on
    /// merge (the vma_adjust importer/exporter step).
    MergeUnfaulted,
    /// `copy_vma`: mremap made a new VMA for the moved range.
    Remap,
}

/// The other side of a merge, for `is_mergeable_anon_vma`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeSrc {
    /// A new range from mmap/brk: no VMA yet and no anon_vma.
    New,
    /// An existing VMA being modified (mprotect/madvise: `vmg->middle`).
    Existing(VmaId),
    /// copy_vma: the range carries this (still live) VMA's anon_vma, but
    /// there is no middle VMA (`vmg->middle == NULL`).
    Copy(VmaId),
}

/// Counts of a design's live metadata (for `--stats`, `bound` and `leak`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Live anon_vma objects.
    pub anon_vmas: u64,
    /// Live anon_vma_chain objects (0 for designs without chains).
    pub avcs: u64,
    /// Bytes of rmap metadata by the era's struct sizes (docs/designs.md §6),
    /// including the per-VMA fields the design adds.
    pub bytes: u64,
    /// Metadata allocations made so far (successful ones).
    pub allocations: u64,
}

/// The metadata of one fork tree: a root anon_vma and every anon_vma
/// descending from it (chain designs), or one family's anon_vma (2004).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeCounters {
    /// The tree's root object.
    pub root: Handle,
    pub anon_vmas: u64,
    pub avcs: u64,
    /// Bytes of the tree's objects by the era's struct sizes, plus the
    /// per-VMA rmap fields of the VMAs linked into it.
    pub bytes: u64,
    /// VMAs linked into the tree (a walk from its root visits at most these).
    pub vmas: u64,
}

/// A failure inside a hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RmapError {
    /// An allocation failed (injected with `fail-alloc`); Linux's `-ENOMEM`.
    NoMem { site: &'static str },
    /// The design followed a handle to an object that was already freed.
    Dangling { what: String, detail: String },
    /// A design assertion (`BUG_ON`/`VM_WARN_ON`) or self-check failed.
    Check { name: &'static str, detail: String },
}

impl fmt::Display for RmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RmapError::NoMem { site } => write!(f, "allocation failed at {site}"),
            RmapError::Dangling { what, detail } => write!(f, "dangling {what}: {detail}"),
            RmapError::Check { name, detail } => write!(f, "{name}: {detail}"),
        }
    }
}

/// The failure schedule for metadata allocations (`fail-alloc N`), and the
/// record of which allocation sites were reached. Every design allocates
/// through one of these so fault injection reaches every site.
#[derive(Clone, Debug, Default)]
pub struct AllocSchedule {
    made: u64,
    /// Allocations freed without ever being used (`freed_unused`).
    unused: u64,
    /// Allocations left before the failing one (`Some(0)`: the next fails).
    fail_in: Option<u64>,
    /// Sites reached, in first-reached order.
    sites: Vec<&'static str>,
    /// The site of the injected failure, once it fired.
    failed_at: Option<&'static str>,
}

impl AllocSchedule {
    /// Makes the `n`-th allocation from now fail (`n >= 1`; `0` means 1).
    pub fn fail_nth(&mut self, n: u64) {
        self.fail_in = Some(n.saturating_sub(1));
    }

    /// Called by a design before every metadata allocation.
    pub fn alloc(&mut self, site: &'static str) -> Result<(), RmapError> {
        if !self.sites.contains(&site) {
            self.sites.push(site);
        }
        match self.fail_in {
            Some(0) => {
                self.fail_in = None;
                self.failed_at = Some(site);
                Err(RmapError::NoMem { site })
            }
            Some(k) => {
                self.fail_in = Some(k - 1);
                self.made += 1;
                Ok(())
            }
            None => {
                self.made += 1;
                Ok(())
            }
        }
    }

    /// Records `n` allocations freed without being used (the 2026
    /// series' preallocated fork objects when the child reuses an
    /// anon_vma); for cost reports only.
    pub fn freed_unused(&mut self, n: u64) {
        self.unused += n;
    }

    /// Allocations freed without being used, so far.
    pub fn unused(&self) -> u64 {
        self.unused
    }

    pub fn made(&self) -> u64 {
        self.made
    }

    pub fn sites(&self) -> &[&'static str] {
        &self.sites
    }

    /// Where the injected failure fired, if it did.
    pub fn failed_at(&self) -> Option<&'static str> {
        self.failed_at
    }

    /// Whether a failure is still pending.
    pub fn pending(&self) -> bool {
        self.fail_in.is_some()
    }
}

/// One anonymous reverse-map design.
///
/// Every hook runs as if under `mmap_lock` held for write and the anon_vma
/// root lock, which is how Linux serialises the sequences the op language
/// can express. Inside a concurrent block the MMU takes the locks of the
/// design's [`Rmap::lock_model`] around the hooks; a hook never yields.
pub trait Rmap {
    /// Design name as the CLI spells it (`single-list-2004`, ...).
    fn name(&self) -> &'static str;
    /// The configuration that distinguishes runs of this design (era, bugs),
    /// as `(key, value)` pairs for reports.
    fn config(&self) -> Vec<(&'static str, String)>;

    /// `vma->anon_vma != NULL`.
    fn has_anon_vma(&self, vma: VmaId) -> bool;

    /// `__anon_vma_prepare`: the first fault that needs an anonymous page in
    /// `vma`. `next` and `prev` are the neighbours that pass
    /// `anon_vma_compatible` (adjacent, flags equal but for R/W/X, same file,
    /// linear pgoff), which `find_mergeable_anon_vma` tries in that order.
    fn anon_vma_prepare(
        &mut self,
        view: &dyn VmaView,
        vma: VmaId,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<(), RmapError>;

    /// `anon_vma_fork` (2004: `anon_vma_link` of the child's copy), called by
    /// `dup_mmap` for every copied VMA that is not `VM_WIPEONFORK`, in
    /// address order. `child` is a fresh VMA the MMU has not linked yet; on
    /// error the MMU frees it and fails the fork.
    fn anon_vma_fork(
        &mut self,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<(), RmapError>;

    /// `anon_vma_fork`'s first half, where the lock model has type-stable
    /// slots (2.6.36's `anon_vma_fork`: clone the chain, `anon_vma_alloc`,
    /// and only then `anon_vma->root = pvma->anon_vma->root`): everything
    /// up to the allocation of the child's own anon_vma, whose reused slot
    /// keeps its old `root` until [`Rmap::anon_vma_fork_link`]. Returns
    /// whether that second half is pending. The default is the whole
    /// [`Rmap::anon_vma_fork`], nothing pending.
    fn anon_vma_fork_alloc(
        &mut self,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<bool, RmapError> {
        self.anon_vma_fork(view, child, parent).map(|()| false)
    }

    /// `anon_vma_fork`'s second half after [`Rmap::anon_vma_fork_alloc`]
    /// said it is pending: set the root and parent, link the child's own
    /// anon_vma (under the root lock). The default has nothing to do.
    fn anon_vma_fork_link(&mut self, _view: &dyn VmaView, _child: VmaId) -> Result<(), RmapError> {
        Ok(())
    }

    /// `anon_vma_clone` for a split, a remap copy or (through
    /// `dup_anon_vma`) an importer. `dst` starts with the state `vm_area_dup`
    /// gives it: for `Split` and `Remap` it is a fresh copy of `src`.
    fn anon_vma_clone(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        op: CloneOp,
    ) -> Result<(), RmapError>;

    /// `dup_anon_vma(dst, src)`: if `src` has an anon_vma and `dst` has none,
    /// `dst` takes it and clones `src`'s chain (the vma_adjust importer).
    fn dup_anon_vma(&mut self, view: &dyn VmaView, dst: VmaId, src: VmaId)
    -> Result<(), RmapError>;

    /// `dup_anon_vma`'s first half: `dst->anon_vma = src->anon_vma` (if
    /// `src` has one and `dst` none), the moment a per-VMA-lock fault on
    /// `dst` can see it. Returns whether it published; the MMU then calls
    /// [`Rmap::dup_anon_vma_clone`] in a later step. The default publishes
    /// nothing and leaves all of `dup_anon_vma` to the clone half.
    fn dup_anon_vma_publish(
        &mut self,
        _view: &dyn VmaView,
        _dst: VmaId,
        _src: VmaId,
    ) -> Result<bool, RmapError> {
        Ok(false)
    }

    /// `dup_anon_vma`'s second half, `anon_vma_clone(dst, src,
    /// VMA_OP_MERGE_UNFAULTED)`; `published` is what
    /// [`Rmap::dup_anon_vma_publish`] returned. On failure `dst` is
    /// unfaulted again. The default is the whole [`Rmap::dup_anon_vma`].
    fn dup_anon_vma_clone(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        published: bool,
    ) -> Result<(), RmapError> {
        let _ = published;
        self.dup_anon_vma(view, dst, src)
    }

    /// `unlink_anon_vmas`: `vma` goes away (munmap, exit, the VMA a merge
    /// removes). Called for every VMA the MMU frees, faulted or not; the
    /// design drops all its state for `vma`.
    fn unlink_anon_vmas(&mut self, view: &dyn VmaView, vma: VmaId) -> Result<(), RmapError>;

    /// The era's `is_mergeable_anon_vma`: may `src` merge into `tgt`?
    fn is_mergeable_anon_vma(&self, tgt: VmaId, src: MergeSrc) -> bool;

    /// `is_mergeable_anon_vma` as `vma_merge_extend` asks it (mremap growing
    /// `src` in place; `tgt` is `src` itself for the left side, the next VMA
    /// for the right side): the new range carries `src`'s anon_vma, but the
    /// merge has neither a middle nor a copied-from VMA, so Linux 6.18
    /// (`vmg->middle == NULL`, `vmg->copied_from == NULL`) applies no
    /// fork-child test to `src`. The default answers as for
    /// `MergeSrc::Existing(src)`, which is exact for every rule that ignores
    /// the middle VMA (2004, 3.0–6.14); a design with the 2025 rule
    /// overrides it.
    fn is_mergeable_anon_vma_extend(&self, tgt: VmaId, src: VmaId) -> bool {
        self.is_mergeable_anon_vma(tgt, MergeSrc::Existing(src))
    }

    /// Whether `prev` and `next` may end up in one VMA (three-way merges):
    /// `are_anon_vmas_compatible`.
    fn anon_vmas_compatible(&self, prev: VmaId, next: VmaId) -> bool;

    /// `anon_vma_interval_tree_pre_update_vma`: `vma`'s start, end or pgoff
    /// is about to change. Designs whose walk is keyed by pgoff take the VMA
    /// out of their trees here.
    fn vma_pre_update(&mut self, _vma: VmaId) {}
    /// `anon_vma_interval_tree_post_update_vma`: the change is done; re-key.
    fn vma_post_update(&mut self, _view: &dyn VmaView, _vma: VmaId) {}

    /// `anon_vma_moveto_tail` (3.3 … 3.6, Andrea Arcangeli's fix of the
    /// mremap src/dst order): after a merging `copy_vma`, every AVC of
    /// `vma` moves to the tail of its anon_vma's list, so a walk visits the
    /// source before it. The MMU calls it only where the lock model says
    /// so; a design whose walk is not in list order ignores it (the
    /// default).
    fn anon_vma_moveto_tail(&mut self, _vma: VmaId) {}

    /// `__folio_set_anon` on a new folio's first mapping in `vma`
    /// (`folio_add_new_anon_rmap`): returns the folio's `mapping`.
    /// `exclusive` pages go to `vma->anon_vma`; a possibly shared page goes
    /// to the design's choice for it (the root for the chain designs).
    fn folio_add_new_anon_rmap(
        &mut self,
        vma: VmaId,
        exclusive: bool,
    ) -> Result<AnonMapping, RmapError>;

    /// `folio_move_anon_rmap`: a write fault reuses an exclusively owned
    /// page in `vma`; returns its new `mapping` (unchanged if the design
    /// never moves pages).
    fn folio_move_anon_rmap(
        &mut self,
        vma: VmaId,
        current: AnonMapping,
    ) -> Result<AnonMapping, RmapError>;

    /// `rmap_walk_anon`: the candidate VMAs for a page with this `mapping`
    /// and linear `index`, in the design's visiting order. The MMU computes
    /// `vma_address` for each, skips those out of range and checks the PTE.
    fn rmap_walk(
        &self,
        view: &dyn VmaView,
        mapping: AnonMapping,
        index: u64,
        out: &mut Vec<VmaId>,
    ) -> Result<(), RmapError>;

    /// Whether `mapping` names a live object (for the `dangling` check of
    /// every mapped page).
    fn mapping_alive(&self, mapping: AnonMapping) -> bool;

    /// Whether the design holds state for `vma` (a per-VMA entry), so that
    /// freeing or resizing it may change what a walk finds. The default
    /// says yes, which always asks for the full check.
    fn tracks_vma(&self, _vma: VmaId) -> bool {
        true
    }

    /// A number that changes whenever anything `self_check`,
    /// `mapping_alive` or `rmap_walk` reads of the design may have changed
    /// (the sum of its containers' mutation counts). `None`, the default,
    /// means "unknown": the oracle then runs its full checks after every
    /// op that is not pure.
    fn epoch(&self) -> Option<u64> {
        None
    }

    /// Whether the MMU prepares the anon_vma of a private VMA when it links
    /// a new one (`mmap_region`'s `vma_link`, exec's stack) instead of at
    /// its first anonymous fault: Linus Torvalds' eager variant of 7 Apr
    /// 2010. No kernel shipped it.
    fn prepares_at_link(&self) -> bool {
        false
    }

    /// Starts (`true`) or stops recording every change to an anon_vma's
    /// tree or list (insert, remove, reorder) for [`Rmap::take_set_writes`].
    /// The MMU records only inside concurrent blocks, so sequential runs
    /// pay nothing. A design without such sets keeps the default.
    fn record_set_writes(&mut self, _on: bool) {}

    /// Moves the recorded changes since the last call into `out`, each
    /// with the anon_vma's root at the time of the change.
    fn take_set_writes(&mut self, _out: &mut Vec<SetWrite>) {}

    /// Live metadata.
    fn counters(&self) -> Counters;

    /// Counters per fork tree, in a deterministic order (for `--stats`).
    fn fork_trees(&self) -> Vec<TreeCounters> {
        Vec::new()
    }

    /// The fork tree a page with this `mapping` belongs to (its root).
    fn tree_of(&self, _mapping: AnonMapping) -> Option<Handle> {
        None
    }

    /// A type-stable read (`SLAB_TYPESAFE_BY_RCU`) of the anon_vma slot
    /// `mapping` addresses: the live anon_vma there now, whatever its
    /// generation (`None` while the slot is free). The default: `mapping`
    /// while it is alive.
    fn slot_occupant(&self, mapping: AnonMapping) -> Option<AnonMapping> {
        self.mapping_alive(mapping).then_some(mapping)
    }

    /// A type-stable read of the `root` field of `mapping`'s slot
    /// (`ACCESS_ONCE(anon_vma->root)`): the occupant's, which a reused slot
    /// keeps stale until `anon_vma_fork` writes it, or the value a free
    /// slot kept. The default is [`Rmap::tree_of`].
    fn slot_root(&self, mapping: AnonMapping) -> Option<Handle> {
        self.tree_of(mapping)
    }

    /// The slot index the next anon_vma allocation takes (LIFO reuse), for
    /// the lock `anon_vma_prepare` takes on a fresh anon_vma. `None`, the
    /// default: unknown.
    fn next_anon_vma_slot(&self) -> Option<usize> {
        None
    }

    /// The design's claimed bound: live anon_vmas never exceed this multiple
    /// of live VMAs. `None` where the design claims none.
    fn claimed_bound(&self) -> Option<u64>;

    /// The design's structural self-check (run after every op): every
    /// reference alive, counters equal to recomputed values, era-specific
    /// invariants. Errors name the check.
    fn self_check(&self, view: &dyn VmaView) -> Result<(), RmapError>;

    /// Every site at which the design allocates metadata (the names it
    /// passes to [`AllocSchedule::alloc`]), for fault-injection coverage.
    fn alloc_sites(&self) -> &'static [&'static str];

    /// The allocation failure schedule (`fail-alloc N`).
    fn alloc_schedule(&mut self) -> &mut AllocSchedule;

    /// The locking rules of the design's era, for concurrent blocks. The
    /// default is Linux 6.18's.
    fn lock_model(&self) -> crate::sched::LockModel {
        crate::sched::LockModel::LINUX_6_18
    }

    /// `vma->anon_vma`, for the lock model (which anon_vma lock an op on
    /// `vma` takes). The default says none, so no anon_vma lock is modelled
    /// for the VMA's ops.
    fn vma_anon_vma(&self, _vma: VmaId) -> Option<Handle> {
        None
    }

    /// A readable account of the design's objects around `mapping` and the
    /// given VMAs, for failure reports.
    fn describe(&self, view: &dyn VmaView, mapping: Option<AnonMapping>, vmas: &[VmaId]) -> String;
}

/// A design that can be copied behind a box, as `explore` needs: each
/// schedule of a concurrent block runs on a clone of the pre-block machine
/// (`Mmu<Box<dyn CloneRmap>>` is `Clone`). Every `Clone` design is one.
pub trait CloneRmap: Rmap {
    fn clone_box(&self) -> Box<dyn CloneRmap>;
}

impl<T: Rmap + Clone + 'static> CloneRmap for T {
    fn clone_box(&self) -> Box<dyn CloneRmap> {
        Box::new(self.clone())
    }
}

impl Clone for Box<dyn CloneRmap> {
    fn clone(&self) -> Self {
        (**self).clone_box()
    }
}
