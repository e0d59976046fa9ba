//! Page faults after `mm/memory.c`: `handle_mm_fault` for one 8-byte load
//! or store.

use crate::rmap::{Rmap, VmaId};
use rmaplab_ops::{Outcome, Pid};

use super::vm_flags::*;
use super::{Fail, FileRef, FrameId, FrameKind, KResult, Mmu, Pte, Violation, path};

/// `fault_around_bytes` / `PAGE_SIZE` (64 KiB, the default).
const FAULT_AROUND_PAGES: u64 = 16;

impl<R: Rmap> Mmu<R> {
    /// A `read`: `segv` outside any VMA or without `VM_READ`, else the value
    /// the PTE maps, faulting it in first if needed.
    pub(super) fn handle_read(&mut self, pid: Pid, addr: u64) -> KResult<Outcome> {
        let Some(vid) = self.m.vma_lookup(pid, addr) else {
            return self.pure(Outcome::Segv);
        };
        if self.m.vma(vid).flags & VM_READ == 0 {
            return self.pure(Outcome::Segv);
        }
        match self.m.pte(pid, addr) {
            Pte::Present { frame, .. } => {
                let v = self.m.frame_value(frame);
                self.pure(Outcome::Value(v))
            }
            Pte::Swap(slot) => {
                self.bump(|s| s.faults += 1);
                let frame = self.do_swap_page(pid, addr, vid, slot, false)?;
                Ok(Outcome::Value(self.m.frame_value(frame)))
            }
            Pte::Migration { .. } => Err(self.stray_migration_entry(pid, addr)),
            Pte::None => {
                self.bump(|s| s.faults += 1);
                match self.m.vma(vid).file {
                    None => {
                        // do_anonymous_page, read: the zero page, no anon_vma.
                        let zero = self.m.zero;
                        self.m.map_frame(pid, addr, zero, false);
                        Ok(Outcome::Value(0))
                    }
                    Some(f) => self.do_read_fault(pid, addr, vid, f),
                }
            }
        }
    }

    /// A `write`: `segv` outside any VMA or without `VM_WRITE`; a writable
    /// PTE is written directly, anything else takes a write fault.
    pub(super) fn handle_write(&mut self, pid: Pid, addr: u64, value: u64) -> KResult<Outcome> {
        let Some(vid) = self.m.vma_lookup(pid, addr) else {
            return self.pure(Outcome::Segv);
        };
        if self.m.vma(vid).flags & VM_WRITE == 0 {
            return self.pure(Outcome::Segv);
        }
        match self.m.pte(pid, addr) {
            Pte::Present {
                frame,
                writable: true,
                ..
            } => {
                // Contents only: nothing the structural checks read.
                self.m.frame_mut(frame).value = value;
                self.pure(Outcome::Ok)
            }
            Pte::Present {
                frame,
                writable: false,
                ..
            } => {
                self.bump(|s| s.faults += 1);
                self.do_wp_page(pid, addr, vid, frame, value)
            }
            Pte::Swap(slot) => {
                self.bump(|s| s.faults += 1);
                let frame = self.do_swap_page(pid, addr, vid, slot, true)?;
                match self.m.pte(pid, addr) {
                    Pte::Present { writable: true, .. } => {
                        self.m.frame_mut(frame).value = value;
                        Ok(Outcome::Ok)
                    }
                    _ => self.do_wp_page(pid, addr, vid, frame, value),
                }
            }
            Pte::Migration { .. } => Err(self.stray_migration_entry(pid, addr)),
            Pte::None => {
                self.bump(|s| s.faults += 1);
                let v = self.m.vma(vid);
                match v.file {
                    None => self.do_anonymous_page(pid, addr, vid, value),
                    Some(f) if v.is_shared() => self.do_shared_fault(pid, addr, vid, f, value),
                    Some(f) => self.do_cow_fault(pid, addr, vid, f, value),
                }
            }
        }
    }

    /// `do_anonymous_page` for a write: `anon_vma_prepare`, then a new
    /// exclusive page (`folio_add_new_anon_rmap(.., RMAP_EXCLUSIVE)`);
    /// nothing is mapped if an allocation fails (Linux would OOM/SIGBUS the
    /// task; the op reports `ENOMEM`).
    fn do_anonymous_page(
        &mut self,
        pid: Pid,
        addr: u64,
        vid: VmaId,
        value: u64,
    ) -> KResult<Outcome> {
        self.anon_vma_prepare(vid)?;
        self.map_new_anon_page(pid, addr, vid, value)?;
        Ok(Outcome::Ok)
    }

    /// Allocates an exclusive anonymous page for `pid:addr` in `vid` and maps
    /// it writable (`folio_add_new_anon_rmap` + `set_pte_at`).
    fn map_new_anon_page(
        &mut self,
        pid: Pid,
        addr: u64,
        vid: VmaId,
        value: u64,
    ) -> KResult<FrameId> {
        let mapping = self.rmap.folio_add_new_anon_rmap(vid, true)?;
        let index = self.m.vma(vid).linear_page_index(addr);
        let f = self.m.alloc_anon_frame(mapping, index, value);
        self.m.map_frame(pid, addr, f, true);
        Ok(f)
    }

    /// `do_wp_page`: a write to a present read-only PTE. Shared mappings
    /// just make the PTE writable (`wp_page_shared`); a private anonymous
    /// page is reused if `PageAnonExclusive` or if
    /// `wp_can_reuse_anon_folio` says this is its only mapping; anything
    /// else (zero page, page cache page, shared anonymous page) is copied.
    fn do_wp_page(
        &mut self,
        pid: Pid,
        addr: u64,
        vid: VmaId,
        frame: FrameId,
        value: u64,
    ) -> KResult<Outcome> {
        if self.m.vma(vid).is_shared() {
            self.m.set_pte(
                pid,
                addr,
                Pte::Present {
                    frame,
                    writable: true,
                    protnone: false,
                },
            );
            self.m.frame_mut(frame).value = value;
            return Ok(Outcome::Ok);
        }
        let (anon, exclusive) = {
            let f = self.m.frame(frame);
            (matches!(f.kind, FrameKind::Anon { .. }), f.exclusive)
        };
        if anon && (exclusive || self.wp_can_reuse_anon_folio(frame, vid)?) {
            // wp_page_reuse
            self.m.frame_mut(frame).exclusive = true;
            self.m.set_pte(
                pid,
                addr,
                Pte::Present {
                    frame,
                    writable: true,
                    protnone: false,
                },
            );
            self.m.frame_mut(frame).value = value;
            self.bump(|s| s.cow_reuses += 1);
            self.path(path::COW_REUSE);
            return Ok(Outcome::Ok);
        }
        self.wp_page_copy(pid, addr, vid, frame, value)
    }

    /// `wp_can_reuse_anon_folio` for a small folio: reusable iff this PTE is
    /// its only reference (mapcount 1, and a swap cache copy can be dropped
    /// because no swap entry needs it); then `folio_move_anon_rmap` moves it
    /// to this VMA's anon_vma.
    fn wp_can_reuse_anon_folio(&mut self, frame: FrameId, vid: VmaId) -> KResult<bool> {
        let f = self.m.frame(frame);
        // A walk in progress holds a reference and the folio lock (the
        // refcount test and folio_trylock fail): copy.
        if f.mapcount != 1 || self.m.is_pinned(frame) {
            return Ok(false);
        }
        if let Some(s) = f.swap {
            if self.m.swap.get(s).expect("live slot").count > 0 {
                return Ok(false);
            }
            // folio_free_swap
            self.m.swap.remove(s);
            self.m.frame_mut(frame).swap = None;
        }
        let (mapping, index) = self.m.frame(frame).anon().expect("anonymous frame");
        let new = self.rmap.folio_move_anon_rmap(vid, mapping)?;
        self.m.frame_mut(frame).kind = FrameKind::Anon {
            mapping: new,
            index,
        };
        Ok(true)
    }

    /// `wp_page_copy`: `anon_vma_prepare`, a new exclusive copy mapped
    /// writable, and the old page loses this mapping (its mapcount drops).
    fn wp_page_copy(
        &mut self,
        pid: Pid,
        addr: u64,
        vid: VmaId,
        old: FrameId,
        value: u64,
    ) -> KResult<Outcome> {
        self.anon_vma_prepare(vid)?;
        let mapping = self.rmap.folio_add_new_anon_rmap(vid, true)?;
        let index = self.m.vma(vid).linear_page_index(addr);
        let f = self.m.alloc_anon_frame(mapping, index, value);
        self.m.frame_mut(f).mapcount = 1;
        self.m.set_pte(
            pid,
            addr,
            Pte::Present {
                frame: f,
                writable: true,
                protnone: false,
            },
        );
        self.m.remove_rmap(old);
        self.bump(|s| s.cow_copies += 1);
        self.path(path::COW_COPY);
        Ok(Outcome::Ok)
    }

    /// `do_read_fault`: first `do_fault_around` maps every cached page of
    /// the 16-page block aligned on the address, clipped to the VMA and EOF,
    /// whose PTE is none; then `__do_fault` for the faulting page itself
    /// (allocating a shmem page on first touch), or `sigbus` past EOF.
    fn do_read_fault(
        &mut self,
        pid: Pid,
        addr: u64,
        vid: VmaId,
        file: FileRef,
    ) -> KResult<Outcome> {
        let v = self.m.vma(vid).clone();
        let shared_w = v.is_shared() && v.flags & VM_WRITE != 0;
        let from = (addr & !(FAULT_AROUND_PAGES - 1)).max(v.start);
        let to = (from + FAULT_AROUND_PAGES).min(v.end);
        for p in from..to {
            if self.m.pte(pid, p) != Pte::None {
                continue;
            }
            if let Some(fr) = self.m.file_page_present(file, v.linear_page_index(p)) {
                self.m.map_frame(pid, p, fr, shared_w);
                if p != addr {
                    self.bump(|s| s.fault_around += 1);
                }
            }
        }
        if let Pte::Present { frame, .. } = self.m.pte(pid, addr) {
            return Ok(Outcome::Value(self.m.frame_value(frame)));
        }
        let Some(fr) = self.m.file_page_get(file, v.linear_page_index(addr)) else {
            return Ok(Outcome::Sigbus);
        };
        self.m.map_frame(pid, addr, fr, shared_w);
        Ok(Outcome::Value(self.m.frame_value(fr)))
    }

    /// `do_cow_fault`: a write to an unmapped page of a private file
    /// mapping. `anon_vma_prepare` comes first (so a write past EOF leaves
    /// the VMA with an anon_vma before reporting `sigbus`), then the page
    /// cache page is copied into a new exclusive anonymous page.
    fn do_cow_fault(
        &mut self,
        pid: Pid,
        addr: u64,
        vid: VmaId,
        file: FileRef,
        value: u64,
    ) -> KResult<Outcome> {
        self.anon_vma_prepare(vid)?;
        let off = self.m.vma(vid).linear_page_index(addr);
        if self.m.file_page_get(file, off).is_none() {
            return Ok(Outcome::Sigbus);
        }
        self.map_new_anon_page(pid, addr, vid, value)?;
        Ok(Outcome::Ok)
    }

    /// `do_shared_fault`: a write to an unmapped page of a shared mapping
    /// maps the page cache / shmem page writable (no fault-around, no COW).
    fn do_shared_fault(
        &mut self,
        pid: Pid,
        addr: u64,
        vid: VmaId,
        file: FileRef,
        value: u64,
    ) -> KResult<Outcome> {
        let off = self.m.vma(vid).linear_page_index(addr);
        let Some(fr) = self.m.file_page_get(file, off) else {
            return Ok(Outcome::Sigbus);
        };
        self.m.map_frame(pid, addr, fr, true);
        self.m.frame_mut(fr).value = value;
        Ok(Outcome::Ok)
    }
}

impl<R: Rmap> Mmu<R> {
    /// A fault met a migration entry. Inside a block the fault waited for
    /// the page lock (`migration_entry_wait`), so the migration is over:
    /// Linux's BUG in `pfn_swap_entry_folio` (`stale-migration-entry`).
    fn stray_migration_entry(&self, pid: Pid, addr: u64) -> Fail {
        if self.in_block {
            return Fail::Block {
                invariant: "stale-migration-entry",
                detail: format!(
                    "a fault at {pid}:{addr} met a migration entry whose migration is over"
                ),
            };
        }
        Fail::Violation(Violation::Findability {
            pid,
            page: addr,
            detail: format!("{pid}:{addr} still holds a migration entry outside a migration"),
        })
    }
}
