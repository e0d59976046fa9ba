//! A design wrapper for the oracle's tests: forwards every hook to the
//! wrapped design, logs the hooks that copy anon_vma state (with whether
//! the destination had an anon_vma before and the source had one), and can
//! change one merge decision (a layout-changing mutant). [`pages`]: the
//! page model the shape counters share.

#![allow(dead_code)]

pub mod pages;

use std::cell::RefCell;
use std::rc::Rc;

use rmaplab_impls::arena::Handle;
use rmaplab_impls::rmap::{
    AllocSchedule, AnonMapping, CloneOp, Counters, MergeSrc, Rmap, RmapError, TreeCounters, VmaId,
    VmaView,
};

/// A hook that copies anon_vma state: which, and whether the destination
/// had an anon_vma and the source had one when it was called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    DupAnonVma { dst_had: bool, src_had: bool },
    Clone { op: CloneOp, src_had: bool },
}

/// How a wrapped design is changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    None,
    /// `is_mergeable_anon_vma` refuses to merge a VMA without an anon_vma
    /// with one that has one (no importer step): the 2015 rule's refusal,
    /// under a 6.18 design's name.
    RefuseImport,
    /// `anon_vma_prepare` fails as if an allocation failed, with no
    /// failure injected.
    FailPrepare,
    /// The design claims a bound of 2 anon_vmas per VMA and holds 100
    /// anon_vmas more than its objects (as if it leaked them).
    ExtraAnonVmas,
    /// `vma_anon_vma` answers none: a concurrent block's split mutator
    /// takes no anon_vma lock, so a step that changes anon_vma trees does
    /// it unlocked (`lock-discipline`).
    HideAnonVma,
    /// `rmap_walk` changes the design's structures (its epoch moves), as a
    /// walk writing under a lock it holds for read would (`lock-discipline`).
    WalkChanges,
}

#[derive(Clone)]
pub struct Wrap<R> {
    pub inner: R,
    pub log: Rc<RefCell<Vec<Event>>>,
    pub mutation: Mutation,
    /// Walks under [`Mutation::WalkChanges`].
    pub walks: std::cell::Cell<u64>,
}

impl<R> Wrap<R> {
    pub fn new(inner: R, mutation: Mutation) -> Wrap<R> {
        Wrap {
            inner,
            log: Rc::default(),
            mutation,
            walks: std::cell::Cell::new(0),
        }
    }
}

impl<R: Rmap> Rmap for Wrap<R> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn config(&self) -> Vec<(&'static str, String)> {
        self.inner.config()
    }
    fn has_anon_vma(&self, vma: VmaId) -> bool {
        self.inner.has_anon_vma(vma)
    }
    fn anon_vma_prepare(
        &mut self,
        view: &dyn VmaView,
        vma: VmaId,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<(), RmapError> {
        if self.mutation == Mutation::FailPrepare {
            return Err(RmapError::NoMem {
                site: "anon_vma_prepare",
            });
        }
        self.inner.anon_vma_prepare(view, vma, next, prev)
    }
    fn anon_vma_fork(
        &mut self,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<(), RmapError> {
        self.inner.anon_vma_fork(view, child, parent)
    }
    fn anon_vma_clone(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        op: CloneOp,
    ) -> Result<(), RmapError> {
        let src_had = self.inner.has_anon_vma(src);
        self.log.borrow_mut().push(Event::Clone { op, src_had });
        self.inner.anon_vma_clone(view, dst, src, op)
    }
    fn dup_anon_vma(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<(), RmapError> {
        let (dst_had, src_had) = (self.inner.has_anon_vma(dst), self.inner.has_anon_vma(src));
        self.log
            .borrow_mut()
            .push(Event::DupAnonVma { dst_had, src_had });
        self.inner.dup_anon_vma(view, dst, src)
    }
    fn unlink_anon_vmas(&mut self, view: &dyn VmaView, vma: VmaId) -> Result<(), RmapError> {
        self.inner.unlink_anon_vmas(view, vma)
    }
    fn is_mergeable_anon_vma(&self, tgt: VmaId, src: MergeSrc) -> bool {
        if self.mutation == Mutation::RefuseImport {
            let src_has = match src {
                MergeSrc::New => false,
                MergeSrc::Existing(v) | MergeSrc::Copy(v) => self.inner.has_anon_vma(v),
            };
            if src_has != self.inner.has_anon_vma(tgt) {
                return false;
            }
        }
        self.inner.is_mergeable_anon_vma(tgt, src)
    }
    fn is_mergeable_anon_vma_extend(&self, tgt: VmaId, src: VmaId) -> bool {
        if self.mutation == Mutation::RefuseImport
            && self.inner.has_anon_vma(src) != self.inner.has_anon_vma(tgt)
        {
            return false;
        }
        self.inner.is_mergeable_anon_vma_extend(tgt, src)
    }
    fn anon_vmas_compatible(&self, prev: VmaId, next: VmaId) -> bool {
        self.inner.anon_vmas_compatible(prev, next)
    }
    fn vma_pre_update(&mut self, vma: VmaId) {
        self.inner.vma_pre_update(vma)
    }
    fn vma_post_update(&mut self, view: &dyn VmaView, vma: VmaId) {
        self.inner.vma_post_update(view, vma)
    }
    fn folio_add_new_anon_rmap(
        &mut self,
        vma: VmaId,
        exclusive: bool,
    ) -> Result<AnonMapping, RmapError> {
        self.inner.folio_add_new_anon_rmap(vma, exclusive)
    }
    fn folio_move_anon_rmap(
        &mut self,
        vma: VmaId,
        current: AnonMapping,
    ) -> Result<AnonMapping, RmapError> {
        self.inner.folio_move_anon_rmap(vma, current)
    }
    fn rmap_walk(
        &self,
        view: &dyn VmaView,
        mapping: AnonMapping,
        index: u64,
        out: &mut Vec<VmaId>,
    ) -> Result<(), RmapError> {
        if self.mutation == Mutation::WalkChanges {
            self.walks.set(self.walks.get() + 1);
        }
        self.inner.rmap_walk(view, mapping, index, out)
    }
    fn mapping_alive(&self, mapping: AnonMapping) -> bool {
        self.inner.mapping_alive(mapping)
    }
    fn tracks_vma(&self, vma: VmaId) -> bool {
        self.inner.tracks_vma(vma)
    }
    fn epoch(&self) -> Option<u64> {
        self.inner.epoch().map(|e| e + self.walks.get())
    }
    fn counters(&self) -> Counters {
        let mut c = self.inner.counters();
        if self.mutation == Mutation::ExtraAnonVmas {
            c.anon_vmas += 100;
        }
        c
    }
    fn fork_trees(&self) -> Vec<TreeCounters> {
        self.inner.fork_trees()
    }
    fn tree_of(&self, mapping: AnonMapping) -> Option<Handle> {
        self.inner.tree_of(mapping)
    }
    fn claimed_bound(&self) -> Option<u64> {
        if self.mutation == Mutation::ExtraAnonVmas {
            return Some(2);
        }
        self.inner.claimed_bound()
    }
    fn self_check(&self, view: &dyn VmaView) -> Result<(), RmapError> {
        self.inner.self_check(view)
    }
    fn alloc_sites(&self) -> &'static [&'static str] {
        self.inner.alloc_sites()
    }
    fn alloc_schedule(&mut self) -> &mut AllocSchedule {
        self.inner.alloc_schedule()
    }
    fn lock_model(&self) -> rmaplab_impls::sched::LockModel {
        self.inner.lock_model()
    }
    fn vma_anon_vma(&self, vma: VmaId) -> Option<VmaId> {
        if self.mutation == Mutation::HideAnonVma {
            return None;
        }
        self.inner.vma_anon_vma(vma)
    }
    fn describe(&self, view: &dyn VmaView, mapping: Option<AnonMapping>, vmas: &[VmaId]) -> String {
        self.inner.describe(view, mapping, vmas)
    }
}

/// One fresh random input as the built-in engine draws half of them
/// (0..=400 random bytes): the sample the shape measurements
/// (`merge_shapes`, `race_shapes`) count stages over.
pub fn fresh_input(rng: &mut rand::rngs::SmallRng) -> Vec<u8> {
    use rand::Rng;
    let len = rng.random_range(0..=400);
    (0..len).map(|_| rng.random()).collect()
}
