//! A toy reverse-map design for the MMU's own tests. It walks like the 2004
//! design (one list of VMAs per family, which is always complete, so
//! findability holds) but decides merges like Linux 6.18: every VMA carries
//! a logical anon_vma identity and a "fork child" bit (a non-singular
//! anon_vma_chain), so the merge rules of `is_mergeable_anon_vma` (mm/vma.c)
//! and of `anon_vma_prepare`'s neighbour reuse (mm/rmap.c,
//! `find_mergeable_anon_vma`) come out as the kernel's (docs/linux-6.18.md
//! §4.5).

use crate::arena::{Arena, Handle, SecondaryMap};
use crate::rmap::{
    AllocSchedule, AnonMapping, CloneOp, Counters, MergeSrc, Rmap, RmapError, VmaId, VmaView,
};

#[derive(Clone, Copy, Debug)]
struct ToyVma {
    /// Logical anon_vma identity (what `vma->anon_vma` would point to).
    av: u64,
    /// The chain is not singular: inherited through fork.
    fork_child: bool,
    /// The family list the VMA sits on (the walk structure).
    family: Handle,
}

#[derive(Clone, Default)]
pub(super) struct Toy {
    vmas: SecondaryMap<ToyVma>,
    families: Arena<Vec<VmaId>>,
    next_av: u64,
    sched: AllocSchedule,
    /// A broken variant whose walks find nothing (to test the MMU's
    /// violation reports).
    blind: bool,
}

impl Toy {
    /// The broken variant: its walks find nothing.
    pub(super) fn blind() -> Toy {
        Toy {
            blind: true,
            ..Toy::default()
        }
    }
    fn join(&mut self, vma: VmaId, st: ToyVma) {
        self.families
            .get_mut(st.family)
            .expect("live family")
            .push(vma);
        self.vmas.insert(vma, st);
    }
    fn new_av(&mut self) -> u64 {
        self.next_av += 1;
        self.next_av
    }
    fn av(&self, v: VmaId) -> Option<u64> {
        self.vmas.get(v).map(|s| s.av)
    }
    fn is_fork_child(&self, v: Option<VmaId>) -> bool {
        v.and_then(|v| self.vmas.get(v))
            .is_some_and(|s| s.fork_child)
    }
    /// Linux 6.18 `is_mergeable_anon_vma` with explicit middle/copied_from.
    fn mergeable(
        &self,
        tgt: VmaId,
        src_anon: Option<u64>,
        middle: Option<VmaId>,
        copied: Option<VmaId>,
    ) -> bool {
        let tgt_anon = self.av(tgt);
        match (tgt_anon, src_anon) {
            (None, Some(_)) => !self.is_fork_child(middle) && !self.is_fork_child(copied),
            (Some(_), None) => !self.is_fork_child(Some(tgt)),
            (a, b) => a == b,
        }
    }
}

impl Rmap for Toy {
    fn name(&self) -> &'static str {
        "toy"
    }
    fn config(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    fn has_anon_vma(&self, vma: VmaId) -> bool {
        self.vmas.get(vma).is_some()
    }
    fn anon_vma_prepare(
        &mut self,
        _view: &dyn VmaView,
        vma: VmaId,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<(), RmapError> {
        self.sched.alloc("anon_vma")?;
        for c in [next, prev].into_iter().flatten() {
            if let Some(s) = self.vmas.get(c).copied()
                && !s.fork_child
            {
                self.join(vma, s);
                return Ok(());
            }
        }
        let family = self.families.insert(Vec::new());
        let av = self.new_av();
        self.join(
            vma,
            ToyVma {
                av,
                fork_child: false,
                family,
            },
        );
        Ok(())
    }
    fn anon_vma_fork(
        &mut self,
        _view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<(), RmapError> {
        let Some(p) = self.vmas.get(parent).copied() else {
            return Ok(());
        };
        self.sched.alloc("anon_vma_fork")?;
        let av = self.new_av();
        self.join(
            child,
            ToyVma {
                av,
                fork_child: true,
                family: p.family,
            },
        );
        Ok(())
    }
    fn anon_vma_clone(
        &mut self,
        _view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        _op: CloneOp,
    ) -> Result<(), RmapError> {
        let Some(s) = self.vmas.get(src).copied() else {
            return Ok(());
        };
        self.sched.alloc("anon_vma_clone")?;
        self.join(dst, s);
        Ok(())
    }
    fn dup_anon_vma(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<(), RmapError> {
        if self.has_anon_vma(dst) || !self.has_anon_vma(src) {
            return Ok(());
        }
        self.anon_vma_clone(view, dst, src, CloneOp::MergeUnfaulted)
    }
    fn unlink_anon_vmas(&mut self, _view: &dyn VmaView, vma: VmaId) -> Result<(), RmapError> {
        let Some(s) = self.vmas.remove(vma) else {
            return Ok(());
        };
        let list = self.families.get_mut(s.family).expect("live family");
        list.retain(|&v| v != vma);
        if list.is_empty() {
            self.families.remove(s.family);
        }
        Ok(())
    }
    fn is_mergeable_anon_vma(&self, tgt: VmaId, src: MergeSrc) -> bool {
        match src {
            MergeSrc::New => self.mergeable(tgt, None, None, None),
            MergeSrc::Existing(m) => self.mergeable(tgt, self.av(m), Some(m), None),
            MergeSrc::Copy(c) => self.mergeable(tgt, self.av(c), None, Some(c)),
        }
    }
    fn is_mergeable_anon_vma_extend(&self, tgt: VmaId, src: VmaId) -> bool {
        self.mergeable(tgt, self.av(src), None, None)
    }
    fn anon_vmas_compatible(&self, prev: VmaId, next: VmaId) -> bool {
        match (self.av(prev), self.av(next)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
    fn folio_add_new_anon_rmap(
        &mut self,
        vma: VmaId,
        _exclusive: bool,
    ) -> Result<AnonMapping, RmapError> {
        self.vmas
            .get(vma)
            .map(|s| s.family)
            .ok_or(RmapError::Check {
                name: "toy",
                detail: format!("new anon page in {vma} without an anon_vma"),
            })
    }
    fn folio_move_anon_rmap(
        &mut self,
        vma: VmaId,
        current: AnonMapping,
    ) -> Result<AnonMapping, RmapError> {
        assert_eq!(self.vmas.get(vma).map(|s| s.family), Some(current));
        Ok(current)
    }
    fn rmap_walk(
        &self,
        _view: &dyn VmaView,
        mapping: AnonMapping,
        _index: u64,
        out: &mut Vec<VmaId>,
    ) -> Result<(), RmapError> {
        let list = self.families.get(mapping).ok_or(RmapError::Dangling {
            what: "family".into(),
            detail: format!("{mapping}"),
        })?;
        if !self.blind {
            out.extend_from_slice(list);
        }
        Ok(())
    }
    fn mapping_alive(&self, mapping: AnonMapping) -> bool {
        self.families.contains(mapping)
    }
    fn counters(&self) -> Counters {
        Counters {
            anon_vmas: self.families.len() as u64,
            ..Counters::default()
        }
    }
    fn claimed_bound(&self) -> Option<u64> {
        None
    }
    fn self_check(&self, view: &dyn VmaView) -> Result<(), RmapError> {
        for (v, _) in self.vmas.iter() {
            if view.vma_info(v).is_none() {
                return Err(RmapError::Dangling {
                    what: "vma".into(),
                    detail: format!("toy state for freed {v}"),
                });
            }
        }
        Ok(())
    }
    fn alloc_sites(&self) -> &'static [&'static str] {
        &[]
    }
    fn alloc_schedule(&mut self) -> &mut AllocSchedule {
        &mut self.sched
    }
    fn describe(&self, _: &dyn VmaView, _: Option<AnonMapping>, _: &[VmaId]) -> String {
        String::new()
    }
}
