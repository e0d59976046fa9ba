//! The ops that exercise the reverse map: swap-out (`try_to_unmap` through
//! `rmap_walk`), reclaim of the swap cache, swap-in (`do_swap_page`) and
//! migration (`try_to_migrate` + `remove_migration_ptes`).

use crate::rmap::{Rmap, VmaId};
use rmaplab_ops::{Outcome, Pid};

use super::{Fail, FrameId, KResult, Mmu, Pte, SwapId, SwapSlot, Violation};

impl<R: Rmap> Mmu<R> {
    /// The anonymous (non-zero) frame `pid:addr` maps, if any.
    fn anon_frame_at(&self, pid: Pid, addr: u64) -> Option<FrameId> {
        match self.m.pte(pid, addr) {
            Pte::Present { frame, .. } if self.m.frame(frame).anon().is_some() => Some(frame),
            _ => None,
        }
    }

    /// Reports the PTEs that still map `frame` after a walk that should
    /// have reached all of them.
    fn missed(&self, frame: FrameId, what: &str) -> Fail {
        let (mapping, index) = self.m.frame(frame).anon().expect("anonymous frame");
        let left = self.ptes_mapping(frame);
        let (pid, page) = left.first().copied().unwrap_or((Pid(0), 0));
        let list: Vec<String> = left.iter().map(|(p, a)| format!("{p}:{a}")).collect();
        Fail::Violation(Violation::Findability {
            pid,
            page,
            detail: format!(
                "{what}: the reverse-map walk of mapping {mapping} index {index:#x} left \
                 {} PTE(s) mapping the page: [{}]",
                left.len(),
                list.join(", ")
            ),
        })
    }

    /// `swapout`: `try_to_unmap` of the anonymous page at `pid:addr` through
    /// the reverse map. Every PTE the walk reaches becomes a swap entry and
    /// the page stays in the swap cache; a PTE the walk did not reach is a
    /// findability violation. Nothing anonymous there: `ok`, no change.
    pub(super) fn op_swapout(&mut self, pid: Pid, addr: u64) -> KResult<Outcome> {
        if let Some(o) = self.check_range(pid, addr, 1) {
            return self.pure(o);
        }
        let Some(frame) = self.anon_frame_at(pid, addr) else {
            return self.pure(Outcome::Ok);
        };
        let (mapping, index) = self.m.frame(frame).anon().expect("anonymous frame");
        let mut hits = Vec::new();
        self.walk_candidates(mapping, index, |p, a, pte, _| {
            if matches!(pte, Pte::Present { frame: f, .. } if f == frame) {
                hits.push((p, a));
            }
        })?;
        // folio_alloc_swap / add_to_swap: the slot and the swap cache.
        let (value, exclusive) = {
            let f = self.m.frame(frame);
            (f.value, f.exclusive)
        };
        let slot = match self.m.frame(frame).swap {
            Some(s) => {
                let sl = self.m.swap.get_mut(s).expect("live slot");
                sl.value = value;
                s
            }
            None => {
                let s = self.m.swap.insert(SwapSlot {
                    value,
                    count: 0,
                    cache: Some(frame),
                    exclusive: false,
                });
                self.m.frame_mut(frame).swap = Some(s);
                s
            }
        };
        for (p, a) in hits {
            // try_to_unmap_one: the PTE becomes a swap entry.
            if !matches!(self.m.pte(p, a), Pte::Present { frame: f, .. } if f == frame) {
                continue;
            }
            self.m.set_pte(p, a, Pte::Swap(slot));
            let sl = self.m.swap.get_mut(slot).expect("live slot");
            sl.count += 1;
            sl.exclusive = exclusive;
            let f = self.m.frame_mut(frame);
            f.mapcount -= 1;
            f.exclusive = false;
        }
        if self.m.frame(frame).mapcount > 0 {
            return Err(self.missed(frame, "swapout"));
        }
        self.bump(|s| s.swapouts += 1);
        Ok(Outcome::Ok)
    }

    /// `referenced`: `folio_referenced` of the anonymous page at
    /// `pid:addr`, an rmap walk that only reads: `ok N` with N the PTEs
    /// mapping the page that the walk reached. The emulator has no accessed
    /// bits, so there is nothing to clear. Nothing runs beside it, so a PTE
    /// the walk did not reach is a findability violation. Nothing anonymous
    /// there: `ok 0`.
    pub(super) fn op_referenced(&mut self, pid: Pid, addr: u64) -> KResult<Outcome> {
        if let Some(o) = self.check_range(pid, addr, 1) {
            return self.pure(o);
        }
        let Some(frame) = self.anon_frame_at(pid, addr) else {
            return self.pure(Outcome::Value(0));
        };
        let (mapping, index) = self.m.frame(frame).anon().expect("anonymous frame");
        let mut hits = Vec::new();
        self.walk_candidates(mapping, index, |p, a, pte, _| {
            if matches!(pte, Pte::Present { frame: f, .. } if f == frame) {
                hits.push((p, a));
            }
        })?;
        hits.sort_unstable();
        hits.dedup();
        let missed: Vec<(Pid, u64)> = self
            .ptes_mapping(frame)
            .into_iter()
            .filter(|pte| hits.binary_search(pte).is_err())
            .collect();
        if let Some(&(pid, page)) = missed.first() {
            let list: Vec<String> = missed.iter().map(|(p, a)| format!("{p}:{a}")).collect();
            return Err(Fail::Violation(Violation::Findability {
                pid,
                page,
                detail: format!(
                    "referenced: the reverse-map walk of mapping {mapping} index {index:#x} \
                     found {} of the PTEs mapping the page and missed [{}]",
                    hits.len(),
                    list.join(", ")
                ),
            }));
        }
        self.pure(Outcome::Value(hits.len() as u64))
    }

    /// `reclaim`: every swap cache page no PTE maps is freed (its contents
    /// stay in the slot, which goes too if no swap entry needs it).
    pub(super) fn op_reclaim(&mut self) -> KResult<Outcome> {
        let cached: Vec<(SwapId, FrameId)> = self
            .m
            .swap
            .iter()
            .filter_map(|(s, sl)| sl.cache.map(|f| (s, f)))
            .collect();
        for (s, f) in cached {
            if self.m.frame(f).mapcount != 0 {
                continue;
            }
            let value = self.m.frame(f).value;
            self.m.free_frame(f);
            let sl = self.m.swap.get_mut(s).expect("live slot");
            sl.value = value;
            sl.cache = None;
            if sl.count == 0 {
                self.m.swap.remove(s);
            }
        }
        Ok(Outcome::Ok)
    }

    /// `do_swap_page`: a fault on a swap entry. A swap cache hit maps the
    /// same page; a miss reads the slot into a new page put in the swap
    /// cache and added with `folio_add_new_anon_rmap`. A write fault by the
    /// last user drops the swap cache copy (`should_try_to_free_swap`). The
    /// page is mapped `PageAnonExclusive` (and writable if the VMA is) when
    /// the entry was exclusive (`pte_swp_exclusive`) or this is now its only
    /// reference; otherwise a write goes on to `do_wp_page`.
    pub(super) fn do_swap_page(
        &mut self,
        pid: Pid,
        addr: u64,
        vid: VmaId,
        slot: SwapId,
        write: bool,
    ) -> KResult<FrameId> {
        let (cache, count, value, swp_exclusive) = {
            let s = self.m.swap.get(slot).expect("live slot");
            (s.cache, s.count, s.value, s.exclusive)
        };
        let mapcount = cache.map_or(0, |f| self.m.frame(f).mapcount);
        // folio_free_swap succeeds only if no other swap entry needs the slot.
        let keep_cache = !(write && mapcount == 0 && count == 1);
        let refcount = 1 + u32::from(keep_cache) + mapcount;
        let exclusive = swp_exclusive || refcount == 1;
        let writable = exclusive && self.m.vma(vid).flags & super::vm_flags::VM_WRITE != 0;
        let frame = match cache {
            Some(f) => f,
            None => {
                let mapping = self.rmap.folio_add_new_anon_rmap(vid, exclusive)?;
                let index = self.m.vma(vid).linear_page_index(addr);
                let f = self.m.alloc_anon_frame(mapping, index, value);
                self.m.frame_mut(f).swap = Some(slot);
                self.m.frame_mut(f).exclusive = false;
                self.m.swap.get_mut(slot).expect("live slot").cache = Some(f);
                f
            }
        };
        // swap_free_nr
        self.m.swap.get_mut(slot).expect("live slot").count -= 1;
        if !keep_cache {
            self.m.swap.remove(slot);
            self.m.frame_mut(frame).swap = None;
        }
        if exclusive {
            self.m.frame_mut(frame).exclusive = true;
        }
        self.m.set_pte(pid, addr, Pte::None);
        self.m.map_frame(pid, addr, frame, writable);
        self.bump(|s| s.swapins += 1);
        Ok(frame)
    }

    /// `migrate`: `try_to_migrate` turns every PTE the walk reaches into a
    /// migration entry, the contents go to a new frame (same mapping and
    /// index, swap cache membership moved), `remove_migration_ptes` walks
    /// again to restore the entries to the new frame, and the old frame is
    /// freed. A PTE either walk misses is a findability violation.
    pub(super) fn op_migrate(&mut self, pid: Pid, addr: u64) -> KResult<Outcome> {
        if let Some(o) = self.check_range(pid, addr, 1) {
            return self.pure(o);
        }
        let Some(old) = self.anon_frame_at(pid, addr) else {
            return self.pure(Outcome::Ok);
        };
        let (mapping, index) = self.m.frame(old).anon().expect("anonymous frame");
        let mut hits = Vec::new();
        self.walk_candidates(mapping, index, |p, a, pte, _| {
            if matches!(pte, Pte::Present { frame, .. } if frame == old) {
                hits.push((p, a));
            }
        })?;
        for (p, a) in hits {
            if let Pte::Present { frame, writable } = self.m.pte(p, a)
                && frame == old
            {
                self.m.set_pte(p, a, Pte::Migration { frame, writable });
                self.m.frame_mut(old).mapcount -= 1;
            }
        }
        if self.m.frame(old).mapcount > 0 {
            return Err(self.missed(old, "migrate (try_to_migrate)"));
        }
        // folio_migrate_mapping + folio_migrate_flags.
        let (value, exclusive, swap) = {
            let f = self.m.frame(old);
            (f.value, f.exclusive, f.swap)
        };
        let new = self.m.alloc_anon_frame(mapping, index, value);
        {
            let f = self.m.frame_mut(new);
            f.exclusive = exclusive;
            f.swap = swap;
        }
        if let Some(s) = swap {
            self.m.swap.get_mut(s).expect("live slot").cache = Some(new);
        }
        let mut hits = Vec::new();
        self.walk_candidates(mapping, index, |p, a, pte, _| {
            if matches!(pte, Pte::Migration { frame, .. } if frame == old) {
                hits.push((p, a));
            }
        })?;
        for (p, a) in hits {
            if let Pte::Migration { frame, writable } = self.m.pte(p, a)
                && frame == old
            {
                self.m.set_pte(
                    p,
                    a,
                    Pte::Present {
                        frame: new,
                        writable,
                    },
                );
                self.m.frame_mut(new).mapcount += 1;
            }
        }
        let left = self.ptes_mapping(old);
        if !left.is_empty() {
            return Err(self.missed(old, "migrate (remove_migration_ptes)"));
        }
        self.m.free_frame(old);
        self.bump(|s| s.migrations += 1);
        Ok(Outcome::Ok)
    }
}
