//! exec's temporary stack (emulator-only ops `exec-stack`, `exec-shift`).
//!
//! `execve` builds the new stack in a VMA flagged
//! `VM_STACK_INCOMPLETE_SETUP`, copies the arguments into it, then
//! `setup_arg_pages` moves it down to its final place: expand the VMA down
//! over the new range keeping `vm_pgoff` (so `vma_address` already points
//! at the new place), move the page tables, shrink it to the new range.
//! Between the expand and the move a reverse-map walk computes addresses
//! where no PTE is yet: that is why migration skips temporary stacks
//! (`a8bef8ff6ea1`, 2.6.34; `vma_is_temporary_stack` in 6.18's
//! `invalid_migration_vma`).

use rmaplab_ops::{Errno, Outcome, Pid};

use super::vm_flags::*;
use super::{KResult, Mmu, Next, StepName, Vma, path, range_ok};
use crate::rmap::{Rmap, VmaId};

impl<R: Rmap> Mmu<R> {
    /// `vma_is_temporary_stack`: a grows-down VMA with both read-ahead
    /// hints set.
    pub(super) fn vma_is_temporary_stack(&self, vma: VmaId) -> bool {
        let f = self.m.vma(vma).flags;
        f & VM_GROWSDOWN != 0 && f & VM_STACK_INCOMPLETE_SETUP == VM_STACK_INCOMPLETE_SETUP
    }

    /// `pid`'s temporary stack, if it has one.
    fn temporary_stack(&self, pid: Pid) -> Option<VmaId> {
        let mm = self.m.mm(pid)?;
        mm.vmas
            .values()
            .copied()
            .find(|&v| self.vma_is_temporary_stack(v))
    }

    /// `EFAULT` when `[addr, addr + len)` overlaps a VMA of `pid` in its
    /// set-up state. In the kernel that VMA is in `bprm->mm`, which no task
    /// uses until `setup_arg_pages` returns, so no user op can reach it;
    /// the emulator keeps it in `pid`'s mm and refuses such ops at entry,
    /// before any lock or change (the reference model does the same).
    ///
    /// ASSUMPTIONS: `range_ok(addr, len)` holds.
    pub(super) fn temporary_stack_in(&self, pid: Pid, addr: u64, len: u64) -> Option<Outcome> {
        let mm = self.m.mm(pid)?;
        if len == 0 {
            return None;
        }
        mm.vmas
            .range(..addr + len)
            .rev()
            .map(|(_, &v)| v)
            .take_while(|&v| self.m.vma(v).end > addr)
            .any(|v| self.vma_is_temporary_stack(v))
            .then_some(Outcome::Err(Errno::EFAULT))
    }

    /// `exec-stack P ADDR LEN`: `__bprm_mm_init`'s stack VMA (anonymous,
    /// `VM_STACK_FLAGS | VM_STACK_INCOMPLETE_SETUP`, accounted) at `[addr,
    /// addr + len)`, never merged (its flags are unlike any mmap's). The
    /// emulator places it where told and does not grow it. `EINVAL`: empty
    /// or outside the window, or the process has a temporary stack already
    /// (one exec at a time); `EEXIST`: the range is not free.
    pub(super) fn op_exec_stack(&mut self, pid: Pid, addr: u64, len: u64) -> KResult<Outcome> {
        if let Some(o) = self.check_range(pid, addr, len) {
            return self.pure(o);
        }
        if len == 0 || self.temporary_stack(pid).is_some() {
            return self.pure(Outcome::Err(Errno::EINVAL));
        }
        let end = addr + len;
        if self
            .m
            .find_vma(pid, addr)
            .is_some_and(|v| self.m.vma(v).start < end)
        {
            return self.pure(Outcome::Err(Errno::EEXIST));
        }
        let flags = VM_READ
            | VM_WRITE
            | VM_MAYREAD
            | VM_MAYWRITE
            | VM_MAYEXEC
            | VM_GROWSDOWN
            | VM_ACCOUNT
            | VM_STACK_INCOMPLETE_SETUP;
        let id = self.m.vma_alloc(Vma {
            mm: pid,
            start: addr,
            end,
            pgoff: addr,
            flags,
            file: None,
        });
        self.link_new_vma(id)?;
        self.prepare_at_link(id)?;
        self.path(path::EXEC_STACK);
        Ok(Outcome::Ok)
    }

    /// `exec-shift P SHIFT`: `setup_arg_pages` moving the temporary stack
    /// down by `shift` pages (`shift_arg_pages`, 2.6.23; 6.18
    /// `relocate_vma_down`), then clearing `VM_STACK_INCOMPLETE_SETUP`.
    /// `EINVAL`: no temporary stack, or the new place is below the window;
    /// `EFAULT`: a VMA lies in the way (`relocate_vma_down`'s
    /// `vma != vma_next(&vmi)`).
    ///
    /// ASSUMPTIONS: the mmap lock is held for write (a block's split
    /// mutator); the stack is not attached to any other mm.
    pub(super) fn op_exec_shift(&mut self, pid: Pid, shift: u64) -> KResult<Outcome> {
        if self.m.mm(pid).is_none() {
            return self.pure(Outcome::Err(Errno::ESRCH));
        }
        let Some(vid) = self.temporary_stack(pid) else {
            return self.pure(Outcome::Err(Errno::EINVAL));
        };
        let (start, end, pgoff) = {
            let v = self.m.vma(vid);
            (v.start, v.end, v.pgoff)
        };
        if shift > 0 {
            if shift > start || !range_ok(start - shift, end - start) {
                return self.pure(Outcome::Err(Errno::EINVAL));
            }
            let (new_start, new_end) = (start - shift, end - shift);
            if self
                .m
                .vma_before(pid, start)
                .is_some_and(|p| self.m.vma(p).end > new_start)
            {
                return self.pure(Outcome::Err(Errno::EFAULT));
            }
            // relocate_vma_down's vma_expand write-locks the stack first.
            self.vma_start_write(StepName::new("exec.lookup"), &[vid])?;
            // vma_expand: [new_start, end) with the same pgoff, under the
            // anon_vma lock (tree keys change); the move that follows
            // takes no anon_vma lock (no need_rmap_locks for a stack).
            self.commit_bounds(
                (vid, new_start, end, pgoff),
                None,
                &[],
                "exec.expand",
                Next::NoRmap,
            )?;
            // Only PTE moves after the expand: a walk in between computes
            // the new addresses, where nothing is mapped yet.
            self.move_page_tables(pid, start, new_start, end - start, Next::Rmap)?;
            // vma_shrink: the new range only, under the anon_vma lock.
            self.commit_bounds(
                (vid, new_start, new_end, pgoff),
                None,
                &[],
                "exec.shrink",
                Next::NoRmap,
            )?;
        }
        self.m.vma_mut(vid).flags &= !VM_STACK_INCOMPLETE_SETUP;
        self.m.dirty_vmas.push(vid);
        self.path(path::EXEC_SHIFT);
        Ok(Outcome::Ok)
    }
}
