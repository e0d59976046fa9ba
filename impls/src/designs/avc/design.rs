//! [`AvcRmap`]: the [`Rmap`] of an anon_vma_chain design, the shared
//! [`Core`] driven through the functions its [`Variant`] writes its own way.

use std::collections::BTreeSet;
use std::fmt;

use super::{Core, Model};
use crate::arena::Handle;
use crate::rmap::{
    AllocSchedule, AnonMapping, CloneOp, Counters, MergeSrc, Rmap, RmapError, TreeCounters, VmaId,
    VmaView,
};

/// What one kernel version of the anon_vma_chain design writes its own way:
/// the chain set-up and tear-down of mm/rmap.c and mm/vma.c, the merge rule,
/// and how its warnings are reported. Every method gets the design's
/// [`Core`]; the defaults are Linux 6.18's.
pub trait Variant: Clone + fmt::Debug {
    /// The CLI name.
    const NAME: &'static str;
    /// The type name the design is known by (for `Debug`).
    const TYPE_NAME: &'static str;
    /// Every allocation site (the names given to [`AllocSchedule::alloc`]).
    const ALLOC_SITES: &'static [&'static str];
    /// Whether the walk itself reports a covering AVC whose VMA the MMU
    /// freed (the kernel's tree descent dereferences `avc->vma`), rather
    /// than leaving it to the MMU, which reports the same `dangling`.
    const WALK_CHECKS_VMAS: bool = false;

    /// The configuration besides the bugs, as `(key, value)` pairs.
    fn config(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// The first line of `describe`.
    fn describe_header(&self, core: &Core) -> String;

    /// `__anon_vma_prepare`: the first fault that needs an anonymous page.
    fn anon_vma_prepare(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        vma: VmaId,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<(), RmapError>;

    /// `anon_vma_fork`: `dup_mmap` copies `parent` to the fresh `child`.
    fn anon_vma_fork(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<(), RmapError>;

    /// The second half of an `anon_vma_fork` that stopped after its
    /// allocation (`core.fork_split`, leaving `core.pending_fork`). The
    /// default: a variant that never splits has nothing pending.
    fn anon_vma_fork_link(
        &self,
        _core: &mut Core,
        _view: &dyn VmaView,
        _child: VmaId,
    ) -> Result<(), RmapError> {
        Ok(())
    }

    /// `anon_vma_clone` for a split or a remap copy (`op` is never
    /// `MergeUnfaulted`: that is [`Variant::dup_anon_vma`]).
    fn anon_vma_clone(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        op: CloneOp,
    ) -> Result<(), RmapError>;

    /// `dup_anon_vma`: the merge importer, its two halves in one.
    fn dup_anon_vma(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<(), RmapError> {
        if self.dup_anon_vma_publish(core, view, dst, src)? {
            self.dup_anon_vma_clone(core, view, dst, src)
        } else {
            Ok(())
        }
    }

    /// `dup_anon_vma`'s test and `dst->anon_vma = src->anon_vma`; whether
    /// it published (else there is nothing to clone).
    fn dup_anon_vma_publish(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<bool, RmapError>;

    /// `dup_anon_vma`'s `anon_vma_clone(dst, src, VMA_OP_MERGE_UNFAULTED)`
    /// after a publish; on failure `dst` is unfaulted again.
    fn dup_anon_vma_clone(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<(), RmapError>;

    /// `unlink_anon_vmas`: `vma` goes away.
    fn unlink_anon_vmas(&self, core: &mut Core, vma: VmaId) -> Result<(), RmapError>;

    /// The era's locking rules ([`crate::rmap::Rmap::lock_model`]), with
    /// the re-injected locking bugs of `core` applied.
    fn lock_model(&self, _core: &Core) -> crate::sched::LockModel {
        crate::sched::LockModel::LINUX_6_18
    }

    /// `is_mergeable_anon_vma` (see `Core::is_mergeable_anon_vma`, the
    /// default).
    fn is_mergeable_anon_vma(
        &self,
        core: &Core,
        tgt: VmaId,
        src_anon: Option<Handle>,
        middle: Option<VmaId>,
        copied_from: Option<VmaId>,
    ) -> bool {
        core.is_mergeable_anon_vma(tgt, src_anon, middle, copied_from)
    }

    /// `__folio_set_anon` (see `Core::folio_add_new_anon_rmap`, the
    /// default).
    fn folio_add_new_anon_rmap(
        &self,
        core: &Core,
        vma: VmaId,
        exclusive: bool,
    ) -> Result<AnonMapping, RmapError> {
        core.folio_add_new_anon_rmap(vma, exclusive)
    }

    /// The design's claimed bound on live anon_vmas per VMA: none.
    fn claimed_bound(&self, _core: &Core) -> Option<u64> {
        None
    }

    /// The self-check after every op: the structural checks, then the first
    /// deferred warning.
    fn self_check(&self, core: &Core, view: &dyn VmaView) -> Result<(), RmapError> {
        core.structural_check(view)?;
        match &core.deferred {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

/// An anon_vma_chain design: its objects ([`Core`]) and its kernel
/// version's own functions (`V`).
#[derive(Clone)]
pub struct AvcRmap<V> {
    pub(crate) core: Core,
    pub(crate) variant: V,
}

impl<V: Variant> AvcRmap<V> {
    /// A design with no objects, the given model and re-injected bugs.
    pub(crate) fn build(variant: V, model: Model, bugs: BTreeSet<&'static str>) -> Self {
        AvcRmap {
            core: Core::new(model, bugs),
            variant,
        }
    }

    /// The re-injected bugs, sorted.
    pub fn bugs(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.core.bugs.iter().copied()
    }
}

impl<V: Variant> fmt::Debug for AvcRmap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(V::TYPE_NAME)
            .field("variant", &self.variant)
            .field("bugs", &self.core.bugs)
            .field("objects", &self.core.structure())
            .field("alloc", &self.core.alloc)
            .field("deferred", &self.core.deferred)
            .finish()
    }
}

impl<V: Variant> Rmap for AvcRmap<V> {
    /// The CLI name (docs/op-language.md, "Names the CLI accepts").
    fn name(&self) -> &'static str {
        if self.core.eager {
            "eager-2010"
        } else {
            V::NAME
        }
    }

    fn prepares_at_link(&self) -> bool {
        self.core.eager
    }

    /// The variant's configuration, then the re-injected bugs.
    fn config(&self) -> Vec<(&'static str, String)> {
        let mut c = self.variant.config();
        if !self.core.bugs.is_empty() {
            c.push(("bugs", self.bugs().collect::<Vec<_>>().join(",")));
        }
        c
    }

    /// `vma->anon_vma != NULL` (the fault path's test before
    /// `anon_vma_prepare`, `dup_mmap`'s before copying PTEs).
    fn has_anon_vma(&self, vma: VmaId) -> bool {
        self.core.anon_vma_of(vma).is_some()
    }

    fn anon_vma_prepare(
        &mut self,
        view: &dyn VmaView,
        vma: VmaId,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<(), RmapError> {
        self.variant
            .anon_vma_prepare(&mut self.core, view, vma, next, prev)
    }

    fn anon_vma_fork(
        &mut self,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<(), RmapError> {
        self.variant
            .anon_vma_fork(&mut self.core, view, child, parent)
    }

    /// Splits only where the era's lock model has type-stable slots.
    fn anon_vma_fork_alloc(
        &mut self,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<bool, RmapError> {
        if !self.variant.lock_model(&self.core).typesafe_slots {
            return self.anon_vma_fork(view, child, parent).map(|()| false);
        }
        self.core.fork_split = true;
        let r = self
            .variant
            .anon_vma_fork(&mut self.core, view, child, parent);
        self.core.fork_split = false;
        r?;
        Ok(self.core.pending_fork.is_some())
    }

    fn anon_vma_fork_link(&mut self, view: &dyn VmaView, child: VmaId) -> Result<(), RmapError> {
        self.variant.anon_vma_fork_link(&mut self.core, view, child)
    }

    /// `MergeUnfaulted` is [`Rmap::dup_anon_vma`]; a split or remap copy is
    /// the variant's `anon_vma_clone`.
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
        self.variant
            .anon_vma_clone(&mut self.core, view, dst, src, op)
    }

    fn dup_anon_vma(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<(), RmapError> {
        self.variant.dup_anon_vma(&mut self.core, view, dst, src)
    }

    fn dup_anon_vma_publish(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<bool, RmapError> {
        self.variant
            .dup_anon_vma_publish(&mut self.core, view, dst, src)
    }

    fn dup_anon_vma_clone(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        published: bool,
    ) -> Result<(), RmapError> {
        if !published {
            return Ok(());
        }
        self.variant
            .dup_anon_vma_clone(&mut self.core, view, dst, src)
    }

    /// A VMA without rmap state is a no-op in every variant.
    fn unlink_anon_vmas(&mut self, _view: &dyn VmaView, vma: VmaId) -> Result<(), RmapError> {
        self.variant.unlink_anon_vmas(&mut self.core, vma)
    }

    /// `Existing(v)` is `vmg->middle`, `Copy(v)` is `vmg->copied_from` with
    /// no middle, `New` carries no anon_vma. Called by `vma_merge*` for both
    /// neighbours.
    fn is_mergeable_anon_vma(&self, tgt: VmaId, src: MergeSrc) -> bool {
        let (middle, copied_from, src_anon) = match src {
            MergeSrc::New => (None, None, None),
            MergeSrc::Existing(v) => (Some(v), None, self.core.anon_vma_of(v)),
            MergeSrc::Copy(v) => (None, Some(v), self.core.anon_vma_of(v)),
        };
        self.variant
            .is_mergeable_anon_vma(&self.core, tgt, src_anon, middle, copied_from)
    }

    /// `vma_merge_extend` (mremap growing `src` in place): the range carries
    /// `src`'s anon_vma but `vmg->middle` and `vmg->copied_from` are both
    /// NULL, so the 2025 rule applies no fork-child test to `src` (the older
    /// rules never look at the middle VMA).
    fn is_mergeable_anon_vma_extend(&self, tgt: VmaId, src: VmaId) -> bool {
        let src_anon = self.core.anon_vma_of(src);
        self.variant
            .is_mergeable_anon_vma(&self.core, tgt, src_anon, None, None)
    }

    fn anon_vmas_compatible(&self, prev: VmaId, next: VmaId) -> bool {
        self.core.anon_vmas_compatible(prev, next)
    }

    fn vma_pre_update(&mut self, vma: VmaId) {
        self.core.anon_vma_interval_tree_pre_update_vma(vma);
    }

    fn vma_post_update(&mut self, view: &dyn VmaView, vma: VmaId) {
        self.core.anon_vma_interval_tree_post_update_vma(view, vma);
    }

    fn anon_vma_moveto_tail(&mut self, vma: VmaId) {
        self.core.anon_vma_moveto_tail(vma);
    }

    fn folio_add_new_anon_rmap(
        &mut self,
        vma: VmaId,
        exclusive: bool,
    ) -> Result<AnonMapping, RmapError> {
        self.variant
            .folio_add_new_anon_rmap(&self.core, vma, exclusive)
    }

    fn folio_move_anon_rmap(
        &mut self,
        vma: VmaId,
        _current: AnonMapping,
    ) -> Result<AnonMapping, RmapError> {
        self.core.folio_move_anon_rmap(vma)
    }

    fn rmap_walk(
        &self,
        view: &dyn VmaView,
        mapping: AnonMapping,
        index: u64,
        out: &mut Vec<VmaId>,
    ) -> Result<(), RmapError> {
        self.core
            .rmap_walk_anon(view, mapping, index, out, V::WALK_CHECKS_VMAS)
    }

    /// Every VMA the design has seen has an entry (its anon_vma / chain).
    fn tracks_vma(&self, vma: VmaId) -> bool {
        self.core.vmas.get(vma).is_some()
    }

    fn epoch(&self) -> Option<u64> {
        Some(self.core.epoch())
    }

    fn record_set_writes(&mut self, on: bool) {
        self.core.set_writes = on.then(Vec::new);
    }

    fn take_set_writes(&mut self, out: &mut Vec<crate::rmap::SetWrite>) {
        if let Some(w) = &mut self.core.set_writes {
            out.append(w);
        }
    }

    /// Whether a page's `mapping` still names a live anon_vma (INV-LIVE).
    fn mapping_alive(&self, mapping: AnonMapping) -> bool {
        self.core.anon_vmas.contains(mapping)
    }

    fn counters(&self) -> Counters {
        self.core.counters()
    }

    fn fork_trees(&self) -> Vec<TreeCounters> {
        self.core.fork_trees()
    }

    fn tree_of(&self, mapping: AnonMapping) -> Option<Handle> {
        self.core.tree_of(mapping)
    }

    fn slot_occupant(&self, mapping: AnonMapping) -> Option<AnonMapping> {
        self.core.anon_vmas.occupant(mapping)
    }

    fn slot_root(&self, mapping: AnonMapping) -> Option<Handle> {
        self.core.slot_root(mapping)
    }

    fn next_anon_vma_slot(&self) -> Option<usize> {
        Some(self.core.anon_vmas.next_index())
    }

    fn lock_model(&self) -> crate::sched::LockModel {
        self.variant.lock_model(&self.core)
    }

    fn vma_anon_vma(&self, vma: VmaId) -> Option<Handle> {
        self.core.anon_vma_of(vma)
    }

    fn claimed_bound(&self) -> Option<u64> {
        self.variant.claimed_bound(&self.core)
    }

    fn self_check(&self, view: &dyn VmaView) -> Result<(), RmapError> {
        self.variant.self_check(&self.core, view)
    }

    fn alloc_sites(&self) -> &'static [&'static str] {
        V::ALLOC_SITES
    }

    fn alloc_schedule(&mut self) -> &mut AllocSchedule {
        &mut self.core.alloc
    }

    fn describe(&self, view: &dyn VmaView, mapping: Option<AnonMapping>, vmas: &[VmaId]) -> String {
        let header = self.variant.describe_header(&self.core);
        self.core.describe(&header, view, mapping, vmas)
    }
}
