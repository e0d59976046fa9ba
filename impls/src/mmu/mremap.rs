//! `mremap` after the 6.17+ `mm/mremap.c` (`struct vma_remap_struct`),
//! including multi-VMA moves.

use crate::rmap::{Rmap, VmaId};
use rmaplab_ops::{Errno, MremapTo, Outcome, Pid};

use super::vm_flags::*;
use super::vma::{Src, Vmg};
use super::{Fail, KResult, Mmu, Next, Pte, StepName, path};

/// `enum mremap_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RemapType {
    NoResize,
    Shrink,
    Expand,
}

/// `struct vma_remap_struct`: one remap, threaded through the operation.
#[derive(Clone, Copy, Debug)]
struct Vrm {
    pid: Pid,
    addr: u64,
    old_len: u64,
    new_len: u64,
    new_addr: u64,
    /// `MREMAP_MAYMOVE | MREMAP_FIXED`.
    fixed: bool,
    dontunmap: bool,
    vma: Option<VmaId>,
}

impl Vrm {
    fn delta(&self) -> u64 {
        self.old_len.abs_diff(self.new_len)
    }
    fn remap_type(&self) -> RemapType {
        if self.old_len == self.new_len {
            RemapType::NoResize
        } else if self.old_len > self.new_len {
            RemapType::Shrink
        } else {
            RemapType::Expand
        }
    }
}

impl<R: Rmap> Mmu<R> {
    /// The `mremap` op: the window rule (old range; new range at `NEW`, or
    /// `[old, old + new_len)` without a target), `EFAULT` when the old
    /// range or the target touches exec's temporary stack, `EINVAL` for a
    /// zero new length (`check_mremap_params`), then `do_mremap`.
    pub(super) fn op_mremap(
        &mut self,
        pid: Pid,
        old: u64,
        old_len: u64,
        new_len: u64,
        to: Option<MremapTo>,
    ) -> KResult<Outcome> {
        if !self.m.alive(pid) {
            return Ok(Outcome::Err(Errno::ESRCH));
        }
        let in_window = |a: u64, l: u64| super::range_ok(a, l);
        let ok = match to {
            Some(t) => in_window(old, old_len) && in_window(t.new, new_len),
            None => in_window(old, old_len) && in_window(old, new_len),
        };
        if !ok {
            return Ok(Outcome::Err(Errno::EINVAL));
        }
        // Exec's temporary stack as source or target: see
        // `temporary_stack_in`.
        if let Some(o) = self
            .temporary_stack_in(pid, old, old_len)
            .or_else(|| to.and_then(|t| self.temporary_stack_in(pid, t.new, new_len)))
        {
            return Ok(o);
        }
        if new_len == 0 {
            return Ok(Outcome::Err(Errno::EINVAL));
        }
        let vrm = Vrm {
            pid,
            addr: old,
            old_len,
            new_len,
            new_addr: to.map_or(old, |t| t.new),
            fixed: to.is_some(),
            dontunmap: to.is_some_and(|t| t.dontunmap),
            vma: None,
        };
        self.do_mremap(vrm)
    }

    /// `do_mremap`: `check_mremap_params` (`EINVAL` for a DONTUNMAP resize
    /// or overlapping ranges), then `remap_move` for a same-size fixed move,
    /// else the single-VMA paths (`EFAULT` if `old` is unmapped).
    fn do_mremap(&mut self, mut vrm: Vrm) -> KResult<Outcome> {
        if vrm.fixed {
            if vrm.dontunmap && vrm.old_len != vrm.new_len {
                return Ok(Outcome::Err(Errno::EINVAL));
            }
            // vrm_overlaps
            let (so, eo) = (vrm.addr, vrm.addr + vrm.old_len);
            let (sn, en) = (vrm.new_addr, vrm.new_addr + vrm.new_len);
            if eo > sn && en > so {
                return Ok(Outcome::Err(Errno::EINVAL));
            }
            if vrm.old_len == vrm.new_len {
                return self.remap_move(vrm);
            }
        }
        vrm.vma = self.m.vma_lookup(vrm.pid, vrm.addr);
        if let Err(e) = self.check_prep_vma(&mut vrm) {
            return Ok(Outcome::Err(e));
        }
        if vrm.fixed {
            self.mremap_to(vrm)
        } else {
            self.mremap_at(vrm)
        }
    }

    /// `check_prep_vma`: `EFAULT` without a VMA at `addr`; for a move or a
    /// growth, `EINVAL` when `old_len` is 0 on a private mapping (only a
    /// shared one may be duplicated that way) and `EFAULT` when the range
    /// runs past the end of the VMA.
    fn check_prep_vma(&self, vrm: &mut Vrm) -> Result<(), Errno> {
        let Some(vid) = vrm.vma else {
            return Err(Errno::EFAULT);
        };
        if !vrm.fixed {
            vrm.new_addr = vrm.addr;
        }
        let ty = vrm.remap_type();
        if ty != RemapType::Expand && !vrm.fixed {
            return Ok(());
        }
        if vrm.old_len == 0 && !self.m.vma(vid).is_shared() {
            return Err(Errno::EINVAL);
        }
        let old_len = if ty == RemapType::Shrink {
            vrm.new_len
        } else {
            vrm.old_len
        };
        if old_len > self.m.vma(vid).end - vrm.addr {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    /// `remap_move`: every VMA of `[addr, addr + len)` is moved in turn,
    /// keeping the gaps between them; `EFAULT` if the range starts in a
    /// gap; an error stops the loop with the earlier moves done.
    fn remap_move(&mut self, vrm: Vrm) -> KResult<Outcome> {
        let (start, end) = (vrm.addr, vrm.addr + vrm.old_len);
        let mut target = vrm.new_addr;
        let mut seen = false;
        let mut last_end = 0;
        let mut cursor = start;
        // for_each_vma_range: the iterator resumes after the last VMA it
        // returned and stops at `end`, whatever the moves did to the tree.
        while let Some(vid) = self
            .m
            .find_vma(vrm.pid, cursor)
            .filter(|&v| cursor < end && self.m.vma(v).start < end)
        {
            let (vstart, vend) = {
                let v = self.m.vma(vid);
                (v.start, v.end)
            };
            if !seen && start < vstart {
                return Ok(Outcome::Err(Errno::EFAULT));
            }
            let addr = vstart.max(start);
            let len = end.min(vend) - addr;
            let offset = if seen { vstart - last_end } else { 0 };
            last_end = vend;
            let mut one = Vrm {
                addr,
                old_len: len,
                new_len: len,
                new_addr: target + offset,
                vma: Some(vid),
                ..vrm
            };
            if let Err(e) = self.check_prep_vma(&mut one) {
                return Ok(Outcome::Err(e));
            }
            let o = self.mremap_to(one)?;
            if o != Outcome::Ok {
                return Ok(o);
            }
            seen = true;
            target = one.new_addr + len;
            cursor = addr + len;
        }
        if !seen {
            return Ok(Outcome::Err(Errno::EFAULT));
        }
        Ok(Outcome::Ok)
    }

    /// `mremap_to`: unmap the destination (`MREMAP_FIXED`), look the source
    /// up again (that unmap may have split it), shrink first if asked, then
    /// `move_vma`.
    fn mremap_to(&mut self, mut vrm: Vrm) -> KResult<Outcome> {
        self.do_vmi_munmap(vrm.pid, vrm.new_addr, vrm.new_addr + vrm.new_len)?;
        vrm.vma = self.m.vma_lookup(vrm.pid, vrm.addr);
        if vrm.vma.is_none() {
            return Ok(Outcome::Err(Errno::EFAULT));
        }
        if vrm.remap_type() == RemapType::Shrink {
            self.do_vmi_munmap(vrm.pid, vrm.addr + vrm.new_len, vrm.addr + vrm.old_len)?;
            vrm.vma = self.m.vma_lookup(vrm.pid, vrm.addr);
            if vrm.vma.is_none() {
                return Ok(Outcome::Err(Errno::EFAULT));
            }
            vrm.old_len = vrm.new_len;
        }
        self.move_vma(vrm)
    }

    /// `mremap_at`: no move. Same size does nothing; a shrink unmaps the
    /// tail (across VMAs if need be); growth needs the range to end at the
    /// VMA's end and free space after it (`vma_expandable`), else
    /// `ENOMEM` (no `MREMAP_MAYMOVE` here).
    fn mremap_at(&mut self, vrm: Vrm) -> KResult<Outcome> {
        match vrm.remap_type() {
            RemapType::NoResize => Ok(Outcome::Ok),
            RemapType::Shrink => {
                self.do_vmi_munmap(vrm.pid, vrm.addr + vrm.new_len, vrm.addr + vrm.old_len)?;
                Ok(Outcome::Ok)
            }
            RemapType::Expand => {
                let vid = vrm.vma.expect("checked VMA");
                let vend = self.m.vma(vid).end;
                let delta = vrm.delta();
                // vrm_can_expand_in_place + vma_expandable.
                let blocked = self
                    .m
                    .find_vma(vrm.pid, vend)
                    .is_some_and(|n| self.m.vma(n).start < vend + delta);
                let expandable = vend - vrm.addr == vrm.old_len && !blocked;
                if !expandable {
                    return Ok(Outcome::Err(Errno::ENOMEM));
                }
                match self.vma_merge_extend(vid, delta) {
                    Ok(true) => Ok(Outcome::Ok),
                    Ok(false) | Err(Fail::NoMem) => Ok(Outcome::Err(Errno::ENOMEM)),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// `vma_merge_extend`: grows `vma` by `delta` pages as a new range merged
    /// onto it, possibly also swallowing the next VMA (R8).
    fn vma_merge_extend(&mut self, vma: VmaId, delta: u64) -> KResult<bool> {
        let v = self.m.vma(vma).clone();
        let mut vmg = Vmg {
            start: v.end,
            end: v.end + delta,
            pgoff: v.pgoff + v.pages(),
            flags: v.flags,
            file: v.file,
            prev: Some(vma),
            next: self.m.vma_from(v.mm, v.end),
            src: Src::Extend(vma),
            just_expand: false,
        };
        Ok(self.vma_merge_new_range(&mut vmg)?.is_some())
    }

    /// `move_vma`: `copy_vma_and_data`, then either `dontunmap_complete` or
    /// `unmap_source_vma`.
    fn move_vma(&mut self, mut vrm: Vrm) -> KResult<Outcome> {
        // "mm/mremap: write-lock VMA while remapping it to a new address
        // range" (6.4).
        let src = vrm.vma.expect("source VMA");
        self.path(path::MOVE_VMA);
        self.vma_start_write(StepName::new("mremap.lookup"), &[src])?;
        let new_vma = self.copy_vma_and_data(&mut vrm)?;
        if vrm.dontunmap {
            self.dontunmap_complete(&vrm, new_vma)?;
        } else {
            self.unmap_source_vma(&vrm)?;
        }
        Ok(Outcome::Ok)
    }

    /// `copy_vma_and_data`: `copy_vma` at the destination (pgoff carried
    /// over unless reset), then `move_page_tables`. `ENOMEM` if the
    /// destination VMA could not be made (nothing moved then).
    fn copy_vma_and_data(&mut self, vrm: &mut Vrm) -> KResult<VmaId> {
        let vid = vrm.vma.expect("source VMA");
        let v = self.m.vma(vid);
        let new_pgoff = v.pgoff + (vrm.addr - v.start);
        let (new_vma, vma, merged) = self.copy_vma(vid, vrm.new_addr, vrm.new_len, new_pgoff)?;
        vrm.vma = Some(vma);
        // copy_vma's need_rmap_locks (3.7+, 38a76013ad80): the destination
        // merged into a VMA that the walk may visit before the source.
        let need_rmap_locks = self.locks.need_rmap_locks
            && merged
            && self.m.vma(new_vma).pgoff <= self.m.vma(vma).pgoff;
        let next = if need_rmap_locks {
            Next::Rmap
        } else {
            Next::NoRmap
        };
        // With nothing to move, the step after copy_vma goes on to unmap or
        // unlink the source, under the anon_vma lock.
        let first = if self
            .last_pte_to_move(vrm.pid, vrm.addr, vrm.old_len)
            .is_some()
        {
            next
        } else {
            Next::Rmap
        };
        self.yield_point(StepName::new("copy_vma"), first)?;
        self.move_page_tables(vrm.pid, vrm.addr, vrm.new_addr, vrm.old_len, next)?;
        Ok(new_vma)
    }

    /// `move_page_tables`/`move_ptes`: every non-none PTE moves, zero-page,
    /// page cache and swap entries included; frames keep their mapping and
    /// index (the moved VMA kept the pgoff that makes them findable).
    pub(super) fn move_page_tables(
        &mut self,
        pid: Pid,
        old: u64,
        new: u64,
        len: u64,
        next: Next,
    ) -> KResult<()> {
        // One move_ptes call per extent of the era's granularity; an extent
        // with nothing to move changes nothing and is no step.
        let chunk = self.locks.move_granularity.pages();
        // Up to 3.0 remove_migration_pte peeked at a PTE before taking its
        // PTL (B12p): it can see a migration entry in flight, cleared at
        // the old place (ptep_get_and_clear) and not yet set at the new one.
        // Only such entries matter to a lockless reader, so only they
        // split their move (a block's split mutator only).
        let peek = self.locks.peek_before_ptl && !self.sched.is_none();
        // The step after the last extent that moves something unmaps the
        // source (anon_vma lock for the unlink).
        let last = if self.sched.is_none() {
            None
        } else {
            self.last_pte_to_move(pid, old, len)
        };
        let (mut i, mut extent) = (0, 0);
        while i < len {
            let end = len.min(i.saturating_add(chunk));
            let mut moved = false;
            for j in i..end {
                let pte = self.m.take_pte(pid, old + j);
                if pte != Pte::None {
                    debug_assert_eq!(self.m.pte(pid, new + j), Pte::None);
                    if peek && matches!(pte, Pte::Migration { .. }) {
                        self.yield_point(
                            StepName::indexed("move_ptes.clear", j as u32),
                            Next::InPtl,
                        )?;
                    }
                    self.m.set_pte(pid, new + j, pte);
                    moved = true;
                }
            }
            i = end;
            if moved {
                let after = if last.is_some_and(|l| l >= i) {
                    next
                } else {
                    Next::Rmap
                };
                self.yield_point(StepName::indexed("move_ptes", extent), after)?;
                extent += 1;
            }
        }
        Ok(())
    }

    /// The offset in `[0, len)` of the last PTE of `pid` from `old` that is
    /// not none: where `move_page_tables` moves its last entry.
    fn last_pte_to_move(&self, pid: Pid, old: u64, len: u64) -> Option<u64> {
        (0..len)
            .rev()
            .find(|&j| self.m.pte(pid, old + j) != Pte::None)
    }

    /// `dontunmap_complete`: the source VMA stays (empty); if the whole VMA
    /// was moved to a different VMA, it drops its anon_vma links
    /// (`unlink_anon_vmas` on a VMA that stays mapped, now unfaulted).
    fn dontunmap_complete(&mut self, vrm: &Vrm, new_vma: VmaId) -> KResult<()> {
        let vid = vrm.vma.expect("source VMA");
        let (s, e) = {
            let v = self.m.vma(vid);
            (v.start, v.end)
        };
        if new_vma != vid && vrm.addr == s && vrm.addr + vrm.old_len == e {
            self.vma_changing(vid, "anon_vma")?;
            self.unlink_anon_vmas(vid)?;
        }
        Ok(())
    }

    /// `unmap_source_vma`: munmap the old range with `VM_ACCOUNT` cleared
    /// on the source and restored on the pieces left beside it; if that
    /// munmap fails to split (allocation failure) the move still succeeds
    /// and the source keeps its range, without `VM_ACCOUNT`.
    fn unmap_source_vma(&mut self, vrm: &Vrm) -> KResult<()> {
        let vid = vrm.vma.expect("source VMA");
        let (vm_start, vm_end, accountable) = {
            let v = self.m.vma(vid);
            (v.start, v.end, v.flags & VM_ACCOUNT != 0 && !vrm.dontunmap)
        };
        if accountable {
            self.m.vma_mut(vid).flags &= !VM_ACCOUNT;
        }
        let (addr, end) = (vrm.addr, vrm.addr + vrm.old_len);
        match self.do_vmi_munmap(vrm.pid, addr, end) {
            Ok(()) => {}
            Err(Fail::NoMem) => return Ok(()),
            Err(e) => return Err(e),
        }
        if accountable {
            if vm_start < addr
                && let Some(p) = self.m.vma_before(vrm.pid, addr)
            {
                self.m.vma_mut(p).flags |= VM_ACCOUNT;
            }
            if vm_end > end
                && let Some(n) = self.m.vma_from(vrm.pid, end)
            {
                self.m.vma_mut(n).flags |= VM_ACCOUNT;
            }
        }
        Ok(())
    }
}
