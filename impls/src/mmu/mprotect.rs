//! `mprotect` after `mm/mprotect.c`.

use crate::rmap::{Rmap, VmaId};
use rmaplab_ops::{Errno, Outcome, Pid, Prot};

use super::vm_flags::*;
use super::{Fail, FrameKind, KResult, Mmu, Pte, StepName, prot_bits};

impl<R: Rmap> Mmu<R> {
    /// `do_mprotect_pkey`: VMA by VMA from `start`; `ENOMEM` if `start` is
    /// not mapped, and at the first hole (or a range running past the last
    /// VMA) after changing everything before it.
    pub(super) fn do_mprotect_pkey(
        &mut self,
        pid: Pid,
        start: u64,
        end: u64,
        prot: Prot,
    ) -> KResult<Outcome> {
        let Some(first) = self
            .m
            .find_vma(pid, start)
            .filter(|&v| self.m.vma(v).start < end)
        else {
            return Ok(Outcome::Err(Errno::ENOMEM));
        };
        if self.m.vma(first).start > start {
            return Ok(Outcome::Err(Errno::ENOMEM));
        }
        let mut tmp = self.m.vma(first).start;
        let mut nstart = start;
        let mut cur = Some(first);
        while let Some(vid) = cur {
            let (vstart, vend, vflags) = {
                let v = self.m.vma(vid);
                (v.start, v.end, v.flags)
            };
            if vstart >= end {
                break;
            }
            if vstart != tmp {
                return Ok(Outcome::Err(Errno::ENOMEM));
            }
            let newflags = (vflags & !VM_ACCESS_FLAGS) | prot_bits(prot);
            tmp = vend.min(end);
            match self.mprotect_fixup(pid, vid, nstart, tmp, newflags) {
                Ok(()) => {}
                Err(Fail::NoMem) => return Ok(Outcome::Err(Errno::ENOMEM)),
                Err(e) => return Err(e),
            }
            // vma_iter_end: the end of the VMA now covering the range.
            let now = self.m.vma_lookup(pid, tmp - 1).expect("mprotected VMA");
            tmp = self.m.vma(now).end;
            nstart = tmp;
            cur = self.m.vma_from(pid, tmp);
        }
        if tmp < end {
            return Ok(Outcome::Err(Errno::ENOMEM));
        }
        Ok(Outcome::Ok)
    }

    /// `mprotect_fixup`: nothing to do if the flags do not change; a private
    /// mapping gaining write is charged (`VM_ACCOUNT`); an anonymous VMA
    /// with no anon_vma losing write is uncharged; then `vma_modify_flags`
    /// (merge or split) and `change_protection`.
    fn mprotect_fixup(
        &mut self,
        pid: Pid,
        vid: VmaId,
        start: u64,
        end: u64,
        newflags: u32,
    ) -> KResult<()> {
        let (oldflags, anonymous) = {
            let v = self.m.vma(vid);
            (v.flags, v.is_anonymous())
        };
        if newflags == oldflags {
            return Ok(());
        }
        let mut newflags = newflags;
        if newflags & VM_WRITE != 0 {
            if oldflags & (VM_ACCOUNT | VM_WRITE | VM_SHARED) == 0 {
                newflags |= VM_ACCOUNT;
            }
        } else if oldflags & VM_ACCOUNT != 0 && anonymous && !self.rmap.has_anon_vma(vid) {
            newflags &= !VM_ACCOUNT;
        }
        let vma = self.vma_modify(vid, start, end, newflags)?;
        // vm_flags_reset asserts the VMA write-locked.
        self.vma_start_write(StepName::new("modify.lookup"), &[vma])?;
        self.m.vma_mut(vma).flags = newflags;
        self.change_protection(pid, vma, start, end);
        Ok(())
    }

    /// `change_protection` over `[start, end)`: without `VM_WRITE` every PTE
    /// becomes read-only; with it, shared mappings and exclusive anonymous
    /// pages become writable (`can_change_pte_writable`), the rest stays
    /// read-only until a write fault.
    pub(super) fn change_protection(&mut self, pid: Pid, vma: VmaId, start: u64, end: u64) {
        let (flags, shared) = {
            let v = self.m.vma(vma);
            (v.flags, v.is_shared())
        };
        for a in start..end {
            if let Pte::Present {
                frame, writable, ..
            } = self.m.pte(pid, a)
            {
                let w = if flags & VM_WRITE == 0 {
                    false
                } else if shared {
                    true
                } else {
                    let f = self.m.frame(frame);
                    writable
                        || (frame != self.m.zero
                            && matches!(f.kind, FrameKind::Anon { .. })
                            && f.exclusive)
                };
                // vm_page_prot: PAGE_NONE without any access right.
                let protnone = flags & VM_ACCESS_FLAGS == 0;
                self.m.set_pte(
                    pid,
                    a,
                    Pte::Present {
                        frame,
                        writable: w,
                        protnone,
                    },
                );
            } else if let Pte::Migration {
                frame,
                writable: true,
            } = self.m.pte(pid, a)
                && flags & VM_WRITE == 0
            {
                // change_pte_range: a writable migration entry becomes a
                // readable one when the VMA loses VM_WRITE.
                self.m.set_pte(
                    pid,
                    a,
                    Pte::Migration {
                        frame,
                        writable: false,
                    },
                );
            }
        }
    }
}
