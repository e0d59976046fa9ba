//! VMA surgery after `mm/vma.c` (Linux 6.18 with the January 2026
//! `copied_from` fix): splitting, the two merge entry points, munmap, mmap
//! and mremap's `copy_vma`.

use crate::rmap::{CloneOp, MergeSrc, Rmap, VmaId};
use rmaplab_ops::{Errno, Kind, Outcome, Pid, Prot};

use super::vm_flags::*;
use super::{Fail, FileRef, KResult, Mmu, Next, ShmemObj, StepName, Vma, path, prot_bits};

/// What the range being merged carries (`vmg->anon_vma`, `vmg->middle`,
/// `vmg->copied_from`), as `is_mergeable_anon_vma` needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Src {
    /// A new range from mmap: no anon_vma.
    New,
    /// `vma_merge_existing_range`: the middle VMA being modified.
    Existing(VmaId),
    /// `copy_vma`: the VMA being moved (`copied_from`).
    Copy(VmaId),
    /// `vma_merge_extend`: the VMA being grown in place.
    Extend(VmaId),
}

/// `struct vma_merge_struct`: a proposed range and what it would merge with.
#[derive(Clone, Debug)]
pub(super) struct Vmg {
    pub start: u64,
    pub end: u64,
    pub pgoff: u64,
    pub flags: u32,
    pub file: Option<FileRef>,
    pub prev: Option<VmaId>,
    pub next: Option<VmaId>,
    pub src: Src,
    /// `vmg->just_expand`.
    pub just_expand: bool,
}

/// A VMA whose range `commit_merge` rewrites: `(vma, start, end, pgoff)`.
type NewRange = (VmaId, u64, u64, u64);

impl<R: Rmap> Mmu<R> {
    /// `__split_vma`: cuts `vma` at `addr`; the new VMA (below `addr` if
    /// `new_below`, else above) gets `anon_vma_clone(.., CloneOp::Split)`
    /// first, and the original's range change is bracketed by
    /// `vma_pre_update`/`vma_post_update` when it has an anon_vma; on a
    /// clone failure nothing changes (`mm/vma.c` `__split_vma`).
    pub(super) fn split_vma(&mut self, vma: VmaId, addr: u64, new_below: bool) -> KResult<VmaId> {
        let old = self.m.vma(vma).clone();
        debug_assert!(old.start < addr && addr < old.end);
        let mut new = old.clone();
        if new_below {
            new.end = addr;
        } else {
            new.start = addr;
            new.pgoff += addr - old.start;
        }
        // __split_vma write-locks vma after the clone; taken before it here
        // (a fault cannot tell: the clone touches only the unattached new
        // VMA and the trees).
        self.vma_start_write(StepName::new("split.lookup"), &[vma])?;
        let nid = self.m.vma_alloc(new);
        self.clone_dst_unreachable(nid, "split")?;
        if let Err(e) = self.rmap.anon_vma_clone(&self.m, nid, vma, CloneOp::Split) {
            self.m.vma_free(nid);
            return Err(e.into());
        }
        let has = self.rmap.has_anon_vma(vma);
        self.vma_changing(vma, "bounds")?;
        if has {
            self.rmap.vma_pre_update(vma);
        }
        if new_below {
            self.m
                .set_range(vma, addr, old.end, old.pgoff + (addr - old.start));
        } else {
            self.m.set_range(vma, old.start, addr, old.pgoff);
        }
        self.link_new_vma(nid)?;
        if has {
            self.rmap.vma_post_update(&self.m, vma);
        }
        self.bump(|s| s.vma_splits += 1);
        self.path(path::SPLIT);
        if has {
            self.note_link(nid, path::SPLIT);
        }
        Ok(nid)
    }

    /// `is_mergeable_vma`: same flags (no soft-dirty here) and same file.
    fn is_mergeable_vma(&self, vmg: &Vmg, tgt: VmaId) -> bool {
        let t = self.m.vma(tgt);
        t.flags == vmg.flags && t.file == vmg.file
    }

    /// `is_mergeable_anon_vma`: asks the design whether the range's
    /// anon_vma state may join `tgt`'s.
    fn is_mergeable_anon_vma(&self, vmg: &Vmg, tgt: VmaId) -> bool {
        match vmg.src {
            Src::New => self.rmap.is_mergeable_anon_vma(tgt, MergeSrc::New),
            Src::Existing(m) => self.rmap.is_mergeable_anon_vma(tgt, MergeSrc::Existing(m)),
            Src::Copy(c) => self.rmap.is_mergeable_anon_vma(tgt, MergeSrc::Copy(c)),
            Src::Extend(v) => self.rmap.is_mergeable_anon_vma_extend(tgt, v),
        }
    }

    /// `can_vma_merge_after`: the range may be appended to `prev`.
    fn can_vma_merge_after(&self, vmg: &Vmg, prev: VmaId) -> bool {
        let p = self.m.vma(prev);
        self.is_mergeable_vma(vmg, prev)
            && self.is_mergeable_anon_vma(vmg, prev)
            && p.pgoff + p.pages() == vmg.pgoff
    }

    /// `can_vma_merge_before`: the range may be prepended to `next`.
    fn can_vma_merge_before(&self, vmg: &Vmg, next: VmaId) -> bool {
        let n = self.m.vma(next);
        self.is_mergeable_vma(vmg, next)
            && self.is_mergeable_anon_vma(vmg, next)
            && n.pgoff == vmg.pgoff + (vmg.end - vmg.start)
    }

    /// `can_vma_merge_left`: prev is adjacent and compatible.
    fn can_vma_merge_left(&self, vmg: &Vmg) -> bool {
        vmg.prev
            .is_some_and(|p| self.m.vma(p).end == vmg.start && self.can_vma_merge_after(vmg, p))
    }

    /// `can_vma_merge_right`: next is adjacent and compatible, and for a
    /// three-way merge prev's and next's anon_vmas are compatible with each
    /// other (the design's `anon_vmas_compatible`).
    fn can_vma_merge_right(&self, vmg: &Vmg, can_merge_left: bool) -> bool {
        let Some(n) = vmg.next else { return false };
        if self.m.vma(n).start != vmg.end || !self.can_vma_merge_before(vmg, n) {
            return false;
        }
        if !can_merge_left {
            return true;
        }
        let p = vmg.prev.expect("left merge has a prev");
        self.rmap.anon_vmas_compatible(p, n)
    }

    /// `dup_anon_vma`: before a merge makes `dst` cover pages that `src`
    /// mapped, `dst` takes `src`'s anon_vma if it has none (the design
    /// checks both sides and cleans up after itself on failure).
    ///
    /// Two steps where faults take per-VMA locks: `merge.publish` sets
    /// `dst->anon_vma`, `merge.clone` links `dst` to `src`'s anon_vmas.
    /// `dst` is write-locked before the publish (Jann Horn's July 2023
    /// fix); with `b18b` only after the clone.
    fn dup_anon_vma(&mut self, dst: VmaId, src: VmaId) -> KResult<()> {
        if !self.rmap.has_anon_vma(dst) && self.rmap.has_anon_vma(src) {
            self.vma_changing(dst, "anon_vma")?;
        }
        if !self.rmap.has_anon_vma(dst) && self.rmap.has_anon_vma(src) {
            self.path(path::DUP_ANON_VMA);
            self.note_link(dst, path::DUP_ANON_VMA);
        }
        let published = self.rmap.dup_anon_vma_publish(&self.m, dst, src)?;
        if published {
            self.yield_vma_locking(StepName::new("merge.publish"), &[])?;
            self.vma_changing(dst, "anon_vma chain")?;
        }
        self.rmap.dup_anon_vma_clone(&self.m, dst, src, published)?;
        if published {
            self.yield_vma_locking(StepName::new("merge.clone"), &[])?;
        }
        Ok(())
    }

    /// Before `commit_merge`: `dst` write-locked. With `b18b` this is the
    /// first time (6.4 took it in `vma_prepare`, after `dup_anon_vma`);
    /// else it is held already.
    fn merge_lock_dst(&mut self, dst: VmaId) -> KResult<()> {
        self.vma_start_write(StepName::new("merge.clone"), &[dst])
    }

    /// The VMAs a merge write-locks before `dup_anon_vma` (`vmas`, less
    /// `dst` where `b18b` locks it only after the clone).
    fn merge_lock(&mut self, vmas: &[VmaId], dst: VmaId) -> KResult<()> {
        let mut lock: Vec<VmaId> = vmas.to_vec();
        if !self.locks.dup_anon_vma_locks_dst {
            lock.retain(|&v| v != dst);
        }
        self.vma_start_write(StepName::new("merge.lookup"), &lock)
    }

    /// `commit_merge`: rewrites `vma`'s range (and `adjust`'s, the neighbour
    /// whose start moves) inside `vma_pre_update`/`vma_post_update` when an
    /// anon_vma is involved, then frees the VMAs the merge swallowed after
    /// `unlink_anon_vmas` (`anon_vma_merge`), in `remove` order.
    fn commit_merge(
        &mut self,
        vma: NewRange,
        adjust: Option<NewRange>,
        remove: &[VmaId],
    ) -> KResult<()> {
        self.commit_bounds(vma, adjust, remove, "merge.commit", Next::Rmap)
    }

    /// [`Mmu::commit_merge`] with the name of the step that changes the
    /// bounds (`commit`) and what the step after it locks when nothing is
    /// removed (`after`; a removal takes the anon_vma lock).
    pub(super) fn commit_bounds(
        &mut self,
        vma: NewRange,
        adjust: Option<NewRange>,
        remove: &[VmaId],
        commit: &'static str,
        after: Next,
    ) -> KResult<()> {
        if !self.locks.adjust_locked {
            // 2.6.34-35: what came before (dup_anon_vma's links) took the
            // anon_vma locks; the bounds change below does not.
            self.yield_point(StepName::new("merge.prepare"), Next::NoRmap)?;
        }
        self.vma_changing(vma.0, "bounds")?;
        if let Some(a) = adjust {
            self.vma_changing(a.0, "bounds")?;
        }
        for &r in remove {
            self.vma_changing(r, "bounds")?;
        }
        let anon =
            self.rmap.has_anon_vma(vma.0) || adjust.is_some_and(|a| self.rmap.has_anon_vma(a.0));
        if anon {
            self.rmap.vma_pre_update(vma.0);
            if let Some(a) = adjust {
                self.rmap.vma_pre_update(a.0);
            }
        }
        for &r in remove {
            self.m.unlink_tree(r);
        }
        // Keys may move past each other: take both out, then put back.
        self.m.unlink_tree(vma.0);
        if let Some(a) = adjust {
            self.m.unlink_tree(a.0);
        }
        {
            let v = self.m.vma_mut(vma.0);
            (v.start, v.end, v.pgoff) = (vma.1, vma.2, vma.3);
        }
        self.m.link(vma.0);
        if let Some(a) = adjust {
            let v = self.m.vma_mut(a.0);
            (v.start, v.end, v.pgoff) = (a.1, a.2, a.3);
            self.m.link(a.0);
        }
        if anon {
            self.rmap.vma_post_update(&self.m, vma.0);
            if let Some(a) = adjust {
                self.rmap.vma_post_update(&self.m, a.0);
            }
        }
        self.bump(|s| s.vma_merges += 1);
        // vma_complete dropped the anon_vma lock; each removal takes it
        // again.
        let next = if remove.is_empty() { after } else { Next::Rmap };
        self.yield_point(StepName::new(commit), next)?;
        for (i, &r) in remove.iter().enumerate() {
            self.unlink_anon_vmas(r)?;
            self.m.vma_free(r);
            self.yield_point(StepName::indexed("merge.remove", i as u32), Next::Rmap)?;
        }
        Ok(())
    }

    /// `vma_expand`: grows `target` over `[start, end)`, swallowing `next`
    /// when the range reaches its end; anon_vma state is propagated first
    /// from `next` and, for mremap, from the copied-from VMA
    /// (`dup_anon_vma`), and an allocation failure there changes nothing.
    fn vma_expand(&mut self, vmg: &Vmg, target: VmaId) -> KResult<()> {
        let remove_next = vmg
            .next
            .is_some_and(|n| n != target && vmg.end == self.m.vma(n).end);
        // vma_expand: vma_start_write(target), and next if it goes.
        let lock: Vec<VmaId> = if remove_next {
            vec![target, vmg.next.expect("next")]
        } else {
            vec![target]
        };
        self.merge_lock(&lock, target)?;
        if remove_next {
            self.dup_anon_vma(target, vmg.next.expect("next"))?;
        }
        if let Src::Copy(from) = vmg.src {
            self.dup_anon_vma(target, from)?;
        }
        self.merge_lock_dst(target)?;
        let remove: Vec<VmaId> = if remove_next {
            vec![vmg.next.expect("next")]
        } else {
            Vec::new()
        };
        self.commit_merge((target, vmg.start, vmg.end, vmg.pgoff), None, &remove)
    }

    /// `vma_merge_new_range`: tries to place the new range `[start, end)`
    /// (nothing mapped there) into `prev` and/or `next`; returns the VMA
    /// that now covers it, `None` if no merge is possible, `Err(NoMem)` if
    /// propagating anon_vma state failed (nothing changed then).
    pub(super) fn vma_merge_new_range(&mut self, vmg: &mut Vmg) -> KResult<Option<VmaId>> {
        if vmg.prev.is_none() && vmg.next.is_none() {
            return Ok(None);
        }
        let end = vmg.end;
        let left = self.can_vma_merge_left(vmg);
        let right = !vmg.just_expand && self.can_vma_merge_right(vmg, left);
        let mut target = None;
        if right {
            let n = vmg.next.expect("next");
            vmg.end = self.m.vma(n).end;
            target = Some(n);
        }
        if left {
            let p = vmg.prev.expect("prev");
            let pv = self.m.vma(p);
            vmg.start = pv.start;
            vmg.pgoff = pv.pgoff;
            target = Some(p);
        }
        let Some(t) = target else { return Ok(None) };
        if let Err(e) = self.vma_expand(vmg, t) {
            vmg.end = end;
            return Err(e);
        }
        self.path(merge_path(left, right));
        Ok(Some(t))
    }

    /// `vma_merge_existing_range`: after `[start, end)` of `middle` is to get
    /// new flags, merges that part into prev and/or next when they match;
    /// returns the merged VMA, `None` if nothing merges, `Err(NoMem)` when
    /// `dup_anon_vma` failed (VMAs unchanged).
    fn vma_merge_existing_range(&mut self, vmg: &Vmg, middle: VmaId) -> KResult<Option<VmaId>> {
        let m = self.m.vma(middle).clone();
        let (start, end) = (vmg.start, vmg.end);
        let left_side = start == m.start;
        let right_side = end == m.end;
        if !left_side && !right_side {
            return Ok(None);
        }
        let merge_left = left_side && self.can_vma_merge_left(vmg);
        let mut vmg = vmg.clone();
        let (merge_right, next) = if right_side {
            vmg.next = self.m.vma_next_adjacent(middle);
            (self.can_vma_merge_right(&vmg, merge_left), vmg.next)
        } else {
            (false, None)
        };
        if !merge_left && !merge_right {
            return Ok(None);
        }
        let remove_middle = left_side && right_side;
        // vma_start_write(middle), (next), (prev): dup_anon_vma's dst is
        // prev when merging left, else next.
        let mut lock = vec![middle];
        if merge_right {
            lock.push(next.expect("next"));
        }
        if merge_left {
            lock.push(vmg.prev.expect("prev"));
        }
        let dst = if merge_left {
            vmg.prev.expect("prev")
        } else {
            next.expect("next")
        };
        self.merge_lock(&lock, dst)?;
        if merge_left && merge_right {
            // prev extends over middle and next; both go.
            let (p, n) = (vmg.prev.expect("prev"), next.expect("next"));
            let pv = self.m.vma(p).clone();
            let nv_end = self.m.vma(n).end;
            let src = if self.rmap.has_anon_vma(n) { n } else { middle };
            self.dup_anon_vma(p, src)?;
            self.merge_lock_dst(p)?;
            self.commit_merge((p, pv.start, nv_end, pv.pgoff), None, &[middle, n])?;
            self.path(path::MERGE_BOTH);
            Ok(Some(p))
        } else if merge_left {
            // prev extends over [start, end); middle shrinks or goes.
            let p = vmg.prev.expect("prev");
            let pv = self.m.vma(p).clone();
            self.dup_anon_vma(p, middle)?;
            self.merge_lock_dst(p)?;
            if remove_middle {
                self.commit_merge((p, pv.start, end, pv.pgoff), None, &[middle])?;
            } else {
                let adj = (middle, end, m.end, m.pgoff + (end - m.start));
                self.commit_merge((p, pv.start, end, pv.pgoff), Some(adj), &[])?;
            }
            self.path(path::MERGE_PREV);
            Ok(Some(p))
        } else {
            // next extends down over [start, end); middle shrinks or goes.
            let n = next.expect("next");
            let nv = self.m.vma(n).clone();
            if remove_middle && self.locks.merge_next_extends_middle {
                // Before 4.8 (B21): the middle, still with its old flags,
                // grows over next (vma_adjust's importer takes next's
                // anon_vma) and next goes.
                self.dup_anon_vma(middle, n)?;
                self.commit_merge((middle, m.start, nv.end, m.pgoff), None, &[n])?;
                self.path(path::MERGE_NEXT);
                return Ok(Some(middle));
            }
            self.dup_anon_vma(n, middle)?;
            self.merge_lock_dst(n)?;
            if remove_middle {
                let pgoff = nv.pgoff - (end - start);
                self.commit_merge((n, start, nv.end, pgoff), None, &[middle])?;
            } else {
                let adj = (n, start, nv.end, nv.pgoff - (nv.start - start));
                self.commit_merge((middle, m.start, start, m.pgoff), Some(adj), &[])?;
            }
            self.path(path::MERGE_NEXT);
            Ok(Some(n))
        }
    }

    /// `vma_modify`: for a flags change of `[start, end)` inside `vma`, merge
    /// with a neighbour if possible, else split off the parts outside the
    /// range; returns the VMA that now is exactly the range (or the merged
    /// one). An allocation failure in the merge changes nothing; one in the
    /// second split leaves the first split in place, as Linux does.
    pub(super) fn vma_modify(
        &mut self,
        vma: VmaId,
        start: u64,
        end: u64,
        flags: u32,
    ) -> KResult<VmaId> {
        let v = self.m.vma(vma).clone();
        let vmg = Vmg {
            start,
            end,
            pgoff: v.pgoff + (start - v.start),
            flags,
            file: v.file,
            prev: self.m.vma_prev(vma),
            next: None,
            src: Src::Existing(vma),
            just_expand: false,
        };
        if let Some(merged) = self.vma_merge_existing_range(&vmg, vma)? {
            return Ok(merged);
        }
        if v.start < start {
            self.split_vma(vma, start, true)?;
        }
        if self.m.vma(vma).end > end {
            self.split_vma(vma, end, false)?;
        }
        Ok(vma)
    }

    /// `vms_gather_munmap_vmas`: splits the VMAs straddling `start` and
    /// `end` and returns every VMA inside `[start, end)`, in address order.
    /// A failed split returns `ENOMEM` with the earlier split kept. Since
    /// 6.6 the pieces that stay mapped are the new VMAs; before, the
    /// unmapped ones were (`do_munmap`; [`LockModel::unmap_keeps_original`]).
    pub(super) fn gather_munmap_vmas(
        &mut self,
        pid: Pid,
        start: u64,
        end: u64,
    ) -> KResult<Vec<VmaId>> {
        let mut out = Vec::new();
        let Some(first) = self.m.find_vma(pid, start) else {
            return Ok(out);
        };
        if self.m.vma(first).start >= end {
            return Ok(out);
        }
        // Which side of each cut is the new VMA is the era's: the pieces
        // that stay are new since 6.6, the original objects before.
        let keep = self.locks.unmap_keeps_original;
        let mut first = first;
        if self.m.vma(first).start < start {
            let new = self.split_vma(first, start, !keep)?;
            if keep {
                first = new;
            }
        }
        let mut cur = Some(first);
        while let Some(v) = cur {
            if self.m.vma(v).start >= end {
                break;
            }
            let gone = if self.m.vma(v).end > end {
                let new = self.split_vma(v, end, keep)?;
                if keep { new } else { v }
            } else {
                v
            };
            out.push(gone);
            cur = self.m.vma_from(pid, self.m.vma(gone).end);
        }
        Ok(out)
    }

    /// `vms_complete_munmap_vmas`/`unmap_region`: detaches the gathered
    /// VMAs, zaps all their PTEs, then `unlink_anon_vmas` each (as
    /// `free_pgtables` does) and frees them.
    pub(super) fn remove_vmas(&mut self, pid: Pid, vmas: &[VmaId]) -> KResult<()> {
        // vms_gather_munmap_vmas write-locks each VMA it detaches.
        self.vma_start_write(StepName::new("unmap.gather"), vmas)?;
        for &v in vmas {
            self.vma_changing(v, "bounds")?;
            self.m.unlink_tree(v);
        }
        for (i, &v) in vmas.iter().enumerate() {
            let (s, e) = {
                let x = self.m.vma(v);
                (x.start, x.end)
            };
            self.m.zap_pte_range(pid, s, e);
            let next = if i + 1 < vmas.len() {
                Next::NoRmap
            } else {
                Next::Rmap
            };
            self.yield_point(StepName::indexed("unmap.zap", i as u32), next)?;
        }
        for (i, &v) in vmas.iter().enumerate() {
            self.unlink_anon_vmas(v)?;
            self.yield_point(StepName::indexed("unmap.unlink", i as u32), Next::Rmap)?;
        }
        for &v in vmas {
            self.m.vma_free(v);
        }
        Ok(())
    }

    /// `do_vmi_munmap`: unmaps `[start, end)`, splitting at both ends; never
    /// merges.
    pub(super) fn do_vmi_munmap(&mut self, pid: Pid, start: u64, end: u64) -> KResult<()> {
        if start == end {
            // EINVAL in Linux; every caller here ignores it or cannot get it.
            return Ok(());
        }
        let vmas = self.gather_munmap_vmas(pid, start, end)?;
        if vmas.is_empty() {
            return Ok(());
        }
        self.remove_vmas(pid, &vmas)
    }

    /// `do_mmap` + `__mmap_region`: flags from prot and kind
    /// (`accountable_mapping` gives private writable mappings `VM_ACCOUNT`),
    /// `EEXIST` for `MAP_FIXED_NOREPLACE` over a mapping, `MAP_FIXED` unmaps
    /// first, then the new range merges with its neighbours
    /// (`vma_merge_new_range`) or becomes a new VMA.
    pub(super) fn do_mmap(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        prot: Prot,
        kind: Kind,
        replace: bool,
    ) -> KResult<Outcome> {
        let end = addr + len;
        let mut flags = prot_bits(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
        let (file, pgoff, shared_anon) = match kind {
            Kind::Anon => (None, addr, false),
            Kind::Shared => {
                flags |= VM_SHARED | VM_MAYSHARE;
                (None, 0, true)
            }
            Kind::File { file, off } | Kind::SFile { file, off } => {
                if file >= rmaplab_ops::NR_FILES {
                    return self.pure(Outcome::Err(Errno::EINVAL));
                }
                if matches!(kind, Kind::SFile { .. }) {
                    flags |= VM_SHARED | VM_MAYSHARE;
                }
                // do_mmap: "offset overflow?" (EOVERFLOW, reported EINVAL).
                if off.checked_add(len).is_none() {
                    return self.pure(Outcome::Err(Errno::EINVAL));
                }
                (Some(FileRef::File(file)), off, false)
            }
        };
        if flags & (VM_SHARED | VM_WRITE) == VM_WRITE {
            flags |= VM_ACCOUNT;
        }
        let overlap = self
            .m
            .find_vma(pid, addr)
            .is_some_and(|v| self.m.vma(v).start < end);
        if overlap && !replace {
            return self.pure(Outcome::Err(Errno::EEXIST));
        }
        if file.is_some() && !file_mmap_ok(pgoff, len) {
            return self.pure(Outcome::Err(Errno::EINVAL));
        }
        if overlap {
            // __mmap_setup: gather, then vms_clean_up_area (zap +
            // free_pgtables' unlink_anon_vmas) before the merge; the VMAs
            // are freed after it in Linux, which no hook can tell apart.
            let old = self.gather_munmap_vmas(pid, addr, end)?;
            self.remove_vmas(pid, &old)?;
        }
        let mut vmg = Vmg {
            start: addr,
            end,
            pgoff,
            flags,
            file,
            prev: self.m.vma_before(pid, addr),
            next: self.m.vma_from(pid, end),
            src: Src::New,
            just_expand: false,
        };
        match self.vma_merge_new_range(&mut vmg) {
            Ok(Some(_)) => return Ok(Outcome::Ok),
            Ok(None) | Err(Fail::NoMem) => {}
            Err(e) => return Err(e),
        }
        // __mmap_new_vma (shmem_zero_setup for shared anonymous memory).
        let file = if shared_anon {
            let o = self.m.shmem.insert(ShmemObj {
                size: len,
                pages: vec![None; len as usize],
                users: 0,
            });
            Some(FileRef::Shmem(o))
        } else {
            file
        };
        let id = self.m.vma_alloc(Vma {
            mm: pid,
            start: addr,
            end,
            pgoff,
            flags,
            file,
        });
        self.link_new_vma(id)?;
        self.prepare_at_link(id)?;
        Ok(Outcome::Ok)
    }

    /// A design that prepares the anon_vma when a private VMA is linked
    /// ([`Rmap::prepares_at_link`]) gets it now; if that fails the new VMA
    /// goes again and the op fails with `ENOMEM`, as `mmap_region`'s error
    /// path unmaps what it linked.
    pub(super) fn prepare_at_link(&mut self, id: VmaId) -> KResult<()> {
        if !self.rmap.prepares_at_link() || self.m.vma(id).flags & VM_SHARED != 0 {
            return Ok(());
        }
        if let Err(e) = self.anon_vma_prepare(id) {
            self.m.unlink_tree(id);
            self.m.vma_free(id);
            return Err(e);
        }
        Ok(())
    }

    /// `copy_vma`: the destination VMA of an mremap move of `vma`'s
    /// `[.., +len)` to `addr`. An unfaulted anonymous VMA's pgoff is reset to
    /// `addr`; the range first tries `vma_merge_copied_range` (which
    /// propagates the anon_vma into an unfaulted neighbour it merges into),
    /// else a new VMA gets `anon_vma_clone(.., CloneOp::Remap)`. Returns
    /// `(new_vma, vma, merged)` where `vma` is replaced by the merged VMA if
    /// the source merged into it, and `merged` says the range merged into an
    /// existing VMA; `Err(NoMem)` if the clone failed.
    pub(super) fn copy_vma(
        &mut self,
        vma: VmaId,
        addr: u64,
        len: u64,
        pgoff: u64,
    ) -> KResult<(VmaId, VmaId, bool)> {
        let v = self.m.vma(vma).clone();
        let pid = v.mm;
        let mut pgoff = pgoff;
        let faulted_in_anon_vma = !v.is_anonymous() || self.rmap.has_anon_vma(vma);
        if !faulted_in_anon_vma {
            pgoff = addr;
        }
        if self
            .m
            .find_vma(pid, addr)
            .is_some_and(|n| self.m.vma(n).start < addr + len)
        {
            // "should never get here"
            return Err(Fail::NoMem);
        }
        let mut vmg = Vmg {
            start: addr,
            end: addr + len,
            pgoff,
            flags: v.flags,
            file: v.file,
            prev: self.m.vma_before(pid, addr),
            next: self.m.vma_from(pid, addr),
            src: Src::Copy(vma),
            just_expand: false,
        };
        match self.vma_merge_new_range(&mut vmg) {
            Ok(Some(nv)) => {
                let n = self.m.vma(nv);
                let vma = if v.start >= n.start && v.start < n.end {
                    // Only an unfaulted VMA, whose pgoff was reset, can
                    // merge with itself.
                    debug_assert!(!faulted_in_anon_vma);
                    nv
                } else {
                    // 3.3 … 3.6 (`anon_vma_moveto_tail`, Andrea Arcangeli):
                    // the merged destination goes after the source in the
                    // list walk order, under the anon_vma lock this step
                    // holds.
                    if self.locks.moveto_tail {
                        self.rmap.anon_vma_moveto_tail(nv);
                    }
                    vma
                };
                self.path(path::COPY_VMA_MERGED);
                return Ok((nv, vma, true));
            }
            Ok(None) | Err(Fail::NoMem) => {}
            Err(e) => return Err(e),
        }
        let new = self.m.vma_alloc(Vma {
            start: addr,
            end: addr + len,
            pgoff,
            ..v
        });
        self.clone_dst_unreachable(new, "remap")?;
        if let Err(e) = self.rmap.anon_vma_clone(&self.m, new, vma, CloneOp::Remap) {
            self.m.vma_free(new);
            return Err(e.into());
        }
        self.link_new_vma(new)?;
        self.path(path::COPY_VMA_NEW);
        self.note_link(new, path::COPY_VMA_NEW);
        Ok((new, vma, false))
    }
}

/// The [`path`] bit of a merge into `prev` (`left`), `next` (`right`) or
/// both.
fn merge_path(left: bool, right: bool) -> u32 {
    match (left, right) {
        (true, true) => path::MERGE_BOTH,
        (true, false) => path::MERGE_PREV,
        _ => path::MERGE_NEXT,
    }
}

/// `file_mmap_ok` for a tmpfs file (`MAX_LFS_FILESIZE` = 2^63 - 1 bytes): the
/// mapping's last byte must be a valid file offset. Linux says `EOVERFLOW`,
/// which the op language reports as `EINVAL`; checked after `EEXIST`, as `do_mmap`
/// does.
fn file_mmap_ok(pgoff: u64, len: u64) -> bool {
    const MAX_LFS_FILESIZE: u64 = i64::MAX as u64;
    let Some(bytes) = len.checked_mul(4096) else {
        return false;
    };
    if bytes > MAX_LFS_FILESIZE {
        return false;
    }
    pgoff <= (MAX_LFS_FILESIZE - bytes) >> 12
}
