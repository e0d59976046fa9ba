//! `madvise` after `mm/madvise.c`.

use crate::rmap::{Rmap, VmaId};
use rmaplab_ops::{Advice, Errno, Outcome, Pid};

use super::vm_flags::*;
use super::{Fail, KResult, Mmu, StepName};

impl<R: Rmap> Mmu<R> {
    /// `madvise_walk_vmas`: applies the advice to every VMA part in
    /// `[start, end)`, skipping holes; an error from a VMA stops the walk at
    /// once, holes give `ENOMEM` after the whole walk.
    pub(super) fn madvise_walk_vmas(
        &mut self,
        pid: Pid,
        start: u64,
        end: u64,
        advice: Advice,
    ) -> KResult<Outcome> {
        let mut start = start;
        let mut unmapped_error = false;
        let mut vma = self.m.find_vma(pid, start);
        loop {
            let Some(vid) = vma else {
                return Ok(Outcome::Err(Errno::ENOMEM));
            };
            let (vstart, vend) = {
                let v = self.m.vma(vid);
                (v.start, v.end)
            };
            if start < vstart {
                unmapped_error = true;
                start = vstart;
                if start >= end {
                    break;
                }
            }
            let tmp = vend.min(end);
            let prev = match self.madvise_vma_behavior(pid, vid, start, tmp, advice) {
                Ok(Ok(prev)) => prev,
                Ok(Err(e)) => return Ok(Outcome::Err(e)),
                Err(Fail::NoMem) => return Ok(Outcome::Err(Errno::ENOMEM)),
                Err(e) => return Err(e),
            };
            start = tmp;
            let prev_end = self.m.vma(prev).end;
            if start < prev_end {
                start = prev_end;
            }
            if start >= end {
                break;
            }
            vma = self.m.find_vma(pid, prev_end);
        }
        if unmapped_error {
            return Ok(Outcome::Err(Errno::ENOMEM));
        }
        Ok(Outcome::Ok)
    }

    /// `madvise_vma_behavior` for one VMA part: `MADV_DONTNEED` zaps the
    /// PTEs (`zap_page_range_single`; the anon_vma stays), the fork advices
    /// change flags through `madvise_update_vma` → `vma_modify_flags`
    /// (`MADV_WIPEONFORK` is `EINVAL` on file and shared mappings). Returns
    /// the VMA the walk continues after (`*prev`).
    fn madvise_vma_behavior(
        &mut self,
        pid: Pid,
        vid: VmaId,
        start: u64,
        end: u64,
        advice: Advice,
    ) -> KResult<Result<VmaId, Errno>> {
        let (flags, has_file, shared) = {
            let v = self.m.vma(vid);
            (v.flags, v.file.is_some(), v.flags & VM_SHARED != 0)
        };
        let new_flags = match advice {
            Advice::DontNeed => {
                self.m.zap_pte_range(pid, start, end);
                return Ok(Ok(vid));
            }
            Advice::DontFork => flags | VM_DONTCOPY,
            Advice::DoFork => flags & !VM_DONTCOPY,
            Advice::WipeOnFork => {
                if has_file || shared {
                    return Ok(Err(Errno::EINVAL));
                }
                flags | VM_WIPEONFORK
            }
            Advice::KeepOnFork => flags & !VM_WIPEONFORK,
        };
        if new_flags == flags {
            return Ok(Ok(vid));
        }
        let vma = self.vma_modify(vid, start, end, new_flags)?;
        // vm_flags_reset asserts the VMA write-locked.
        self.vma_start_write(StepName::new("modify.lookup"), &[vma])?;
        self.m.vma_mut(vma).flags = new_flags;
        Ok(Ok(vma))
    }
}
