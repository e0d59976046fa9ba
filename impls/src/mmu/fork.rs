//! fork and exit: `dup_mmap` (`mm/mmap.c` since 6.15), `copy_page_range`
//! (`mm/memory.c`) and `exit_mmap`.

use crate::rmap::{Rmap, VmaId};
use rmaplab_ops::{Outcome, Pid};

use super::vm_flags::*;
use super::{Fail, FrameKind, KResult, Mm, Mmu, Next, Pte, StepName, path};

impl<R: Rmap> Mmu<R> {
    /// `dup_mmap`: the child gets a copy of every VMA not `VM_DONTCOPY`, in
    /// address order; each non-`VM_WIPEONFORK` copy goes through
    /// `anon_vma_fork` and then `copy_page_range`. A failed `anon_vma_fork`
    /// fails the whole fork: the partial child is torn down (its PTEs zapped,
    /// `unlink_anon_vmas` for what was linked) and no pid is consumed.
    pub(super) fn dup_mmap(&mut self, parent: Pid) -> KResult<Outcome> {
        let child = Pid(self.m.next_pid);
        let slot = child.0 as usize;
        if self.m.procs.len() <= slot {
            self.m.procs.resize_with(slot + 1, || None);
        }
        self.m.procs[slot] = Some(Mm::new());
        let parent_vmas: Vec<VmaId> = self
            .m
            .mm(parent)
            .expect("live parent")
            .vmas
            .values()
            .copied()
            .collect();
        // dup_mmap write-locks each parent VMA before copying it
        // (vma_start_write(mpnt), "fork: lock VMAs of the parent process
        // when forking", 6.5); taken for all of them up front here.
        self.vma_start_write(StepName::new("fork.lookup"), &parent_vmas)?;
        let mut linked = Vec::new();
        for pv in parent_vmas {
            let p = self.m.vma(pv).clone();
            if p.flags & VM_DONTCOPY != 0 {
                continue;
            }
            let cid = self.m.vma_alloc(super::Vma { mm: child, ..p });
            let wipe = p.flags & VM_WIPEONFORK != 0;
            #[cfg(test)]
            let early = super::block::tests_knob::FORK_LINKS_BEFORE_CLONE.get();
            #[cfg(not(test))]
            let early = false;
            if early {
                self.m.link(cid);
            }
            self.clone_dst_unreachable(cid, "fork")?;
            let (n0, slot) = (
                self.rmap.counters().anon_vmas,
                self.rmap.next_anon_vma_slot(),
            );
            let r = if wipe {
                Ok(())
            } else if self.in_block && self.locks.typesafe_slots {
                // Type-stable slots: anon_vma_fork allocates the child's
                // anon_vma in one step and sets its root and links it in
                // the next (2.6.36 anon_vma_fork), so a reader of the
                // reused slot can see the old root in between.
                match self.rmap.anon_vma_fork_alloc(&self.m, cid, pv) {
                    Ok(true) => {
                        let i = linked.len() as u32;
                        self.yield_point(StepName::indexed("fork.alloc", i), Next::Rmap)?;
                        self.rmap.anon_vma_fork_link(&self.m, cid)
                    }
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                }
            } else {
                self.rmap.anon_vma_fork(&self.m, cid, pv)
            };
            if let Err(e) = r {
                // fail_nomem_anon_vma_fork: the design undid its part.
                self.m.vma_free(cid);
                let e: Fail = e.into();
                if matches!(e, Fail::NoMem) {
                    self.fork_teardown(child, &linked)?;
                }
                return Err(e);
            }
            if !early {
                self.m.link(cid);
            }
            linked.push(cid);
            let i = linked.len() as u32 - 1;
            if !wipe && self.rmap.has_anon_vma(pv) {
                let how = self.noted_alloc(n0, slot, path::FORK_ALLOC, path::FORK_REUSED);
                self.note_link(cid, how);
                self.yield_point(StepName::indexed("fork.anon_vma", i), Next::NoRmap)?;
                self.copy_page_range(child, cid, parent, pv);
                self.yield_point(StepName::indexed("fork.copy", i), Next::Rmap)?;
            } else {
                self.yield_point(StepName::indexed("fork.anon_vma", i), Next::Rmap)?;
            }
        }
        self.m.next_pid += 1;
        self.bump(|s| s.forks += 1);
        Ok(Outcome::Ok)
    }

    /// The error path of a failed fork (`exit_mmap` of the partial mm):
    /// zap, `unlink_anon_vmas`, free, and forget the child.
    fn fork_teardown(&mut self, child: Pid, linked: &[VmaId]) -> KResult<()> {
        self.remove_vmas(child, linked)?;
        self.m.procs[child.0 as usize] = None;
        Ok(())
    }

    /// `copy_page_range` → `copy_pte_range` (called only when the parent VMA
    /// has an anon_vma, `vma_needs_copy`): every PTE is copied; anonymous
    /// pages gain a mapping, lose `PageAnonExclusive` and are
    /// write-protected in both processes (`is_cow_mapping`); zero-page and
    /// page cache PTEs are copied read-only; swap entries are duplicated.
    fn copy_page_range(&mut self, child: Pid, cvma: VmaId, parent: Pid, pvma: VmaId) {
        let (start, end, cow) = {
            let v = self.m.vma(pvma);
            (
                v.start,
                v.end,
                v.flags & (VM_SHARED | VM_MAYWRITE) == VM_MAYWRITE,
            )
        };
        debug_assert_eq!(self.m.vma(cvma).start, start);
        for a in start..end {
            match self.m.pte(parent, a) {
                Pte::None => {}
                Pte::Present {
                    frame,
                    writable,
                    protnone,
                } => {
                    let mut w = writable;
                    if frame != self.m.zero {
                        let f = self.m.frame_mut(frame);
                        f.mapcount += 1;
                        if matches!(f.kind, FrameKind::Anon { .. }) {
                            f.exclusive = false;
                        }
                        if cow && writable {
                            w = false;
                            self.m.set_pte(
                                parent,
                                a,
                                Pte::Present {
                                    frame,
                                    writable: false,
                                    protnone,
                                },
                            );
                        }
                    }
                    self.m.set_pte(
                        child,
                        a,
                        Pte::Present {
                            frame,
                            writable: w,
                            protnone,
                        },
                    );
                }
                Pte::Swap(s) => {
                    let slot = self.m.swap.get_mut(s).expect("live slot");
                    slot.count += 1;
                    slot.exclusive = false;
                    self.m.set_pte(child, a, Pte::Swap(s));
                }
                Pte::Migration { frame, writable } => {
                    // copy_nonpresent_pte: a writable entry becomes a
                    // readable one in both processes for COW; the page's
                    // mapcount is not touched (remove_migration_pte adds
                    // each restored mapping). The entry loses its
                    // exclusive marker: the page is shared now.
                    let w = writable && !cow;
                    self.m.frame_mut(frame).exclusive = false;
                    if w != writable {
                        self.m
                            .set_pte(parent, a, Pte::Migration { frame, writable: w });
                    }
                    self.m
                        .set_pte(child, a, Pte::Migration { frame, writable: w });
                }
            }
        }
    }

    /// `exit_mmap`: zap every PTE (`unmap_vmas`), then `unlink_anon_vmas`
    /// for every VMA in address order (`free_pgtables`), then free them.
    pub(super) fn exit_mmap(&mut self, pid: Pid) -> KResult<()> {
        let vmas: Vec<VmaId> = self
            .m
            .mm(pid)
            .expect("live process")
            .vmas
            .values()
            .copied()
            .collect();
        self.remove_vmas(pid, &vmas)?;
        let mm = self.m.procs[pid.0 as usize].take().expect("live process");
        debug_assert!(mm.pt.iter().all(|p| *p == Pte::None));
        Ok(())
    }
}
