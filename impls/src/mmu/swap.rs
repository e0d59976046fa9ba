//! The ops that exercise the reverse map: swap-out (`try_to_unmap` through
//! `rmap_walk`), reclaim of the swap cache, swap-in (`do_swap_page`) and
//! migration (`try_to_migrate` + `remove_migration_ptes`).

use crate::rmap::{AnonMapping, Rmap, RmapError, VmaId};
use crate::sched::{Execution, LockId, LockObj, Mode, Step};
use rmaplab_ops::{Outcome, Pid};

use super::{Fail, FrameId, KResult, Mmu, Pte, StepName, SwapId, SwapSlot, Violation, path};

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
    /// Runs the walk's step machine to completion.
    pub(super) fn op_swapout(&mut self, pid: Pid, addr: u64) -> KResult<Outcome> {
        if let Some(o) = self.check_range(pid, addr, 1) {
            return self.pure(o);
        }
        self.walk_sequential(WalkKind::Swapout, pid, addr)
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
        self.path(path::SWAP_IN);
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
        self.walk_sequential(WalkKind::Migrate, pid, addr)
    }

    /// `referenced`: `folio_referenced` of the anonymous page at `pid:addr`
    /// (a walk that only reads, and clears accessed bits, which are not
    /// modelled): `ok N` with N the mappings found (`Outcome::Value`).
    pub(super) fn op_referenced(&mut self, pid: Pid, addr: u64) -> KResult<Outcome> {
        if let Some(o) = self.check_range(pid, addr, 1) {
            return self.pure(o);
        }
        self.walk_sequential(WalkKind::Referenced, pid, addr)
    }

    /// A walk outside a block: its steps back to back, nothing in between.
    fn walk_sequential(&mut self, kind: WalkKind, pid: Pid, addr: u64) -> KResult<Outcome> {
        let mut w = WalkSm::new(kind, pid, addr);
        w.cands = self.walk_scratch.take();
        let r = loop {
            match self.walk_step(&mut w, None) {
                Ok(s) if s.last => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        let mut cands = std::mem::take(&mut w.cands);
        cands.clear();
        self.walk_scratch.replace(cands);
        r?;
        let o = w.outcome.expect("a finished walk has an outcome");
        if w.frame.is_none() {
            return self.pure(o);
        }
        Ok(o)
    }

    /// The anon_vma lock a walk of `mapping` takes (own or root, by era).
    /// With type-stable slots the root is what `mapping`'s slot says now
    /// (`ACCESS_ONCE(anon_vma->root)`, stale in a reused slot until
    /// `anon_vma_fork` writes it).
    pub(super) fn walk_lock_of(&self, mapping: AnonMapping) -> LockId {
        let obj = match self.locks.walk_lock {
            LockObj::Own => mapping,
            LockObj::Root if self.locks.typesafe_slots => {
                self.rmap.slot_root(mapping).unwrap_or(mapping)
            }
            LockObj::Root => self.rmap.tree_of(mapping).unwrap_or(mapping),
        };
        self.anon_lock(obj)
    }

    /// The lock of anon_vma `av`: with type-stable slots it lives in the
    /// slot's memory, which the next occupant inherits (the cache's
    /// constructor initialises it once), so it is named by the slot.
    pub(super) fn anon_lock(&self, av: crate::arena::Handle) -> LockId {
        if self.locks.typesafe_slots {
            LockId::Anon(av.index() as u64)
        } else {
            LockId::Anon(av.raw())
        }
    }

    /// `page_lock_anon_vma` re-checks `page_mapped` under the lock (and
    /// `page_unlock_anon_vma` releases what it took): the lock model's
    /// `recheck_mapped_after_lock`.
    fn recheck_mapped(&self) -> bool {
        #[cfg(test)]
        if tests_knob::UNLOCK_REREADS_ROOT.get() {
            return false;
        }
        self.locks.recheck_mapped_after_lock
    }

    /// Whether walk `w` looks its page up in a step of its own before
    /// locking (type-stable slots, inside a block): `page_lock_anon_vma`
    /// reads `page->mapping` under RCU, and the anon_vma may be freed and
    /// its slot reused before the lock is taken. Only `try_to_unmap`
    /// (swapout), which holds the page locked and referenced; migration
    /// holds a reference on the anon_vma from before its first walk
    /// (2.6.36 `unmap_and_move`).
    fn rcu_lookup(&self, w: &WalkSm, in_block: bool) -> bool {
        in_block && self.locks.typesafe_slots && w.kind == WalkKind::Swapout
    }

    /// The locks `w`'s next step takes (resolving the page on the first).
    pub(super) fn walk_needs(&self, w: &WalkSm) -> Step {
        let mode = self.locks.walk_mode();
        match w.state {
            WState::Start => match self.anon_frame_at(w.pid, w.addr) {
                Some(f) if self.check_range(w.pid, w.addr, 1).is_none() => {
                    let (mapping, _) = self.m.frame(f).anon().expect("anonymous frame");
                    let mut needs = Vec::new();
                    if !self.rcu_lookup(w, true) {
                        needs.push((self.walk_lock_of(mapping), mode));
                    }
                    // Migration and reclaim work on a locked folio
                    // (migrate_pages, shrink_folio_list's folio_trylock);
                    // folio_referenced of an anonymous page needs no lock.
                    if w.kind != WalkKind::Referenced {
                        needs.push((LockId::Page(f.raw()), Mode::Exclusive));
                    }
                    Step { needs }
                }
                _ => Step::free(),
            },
            WState::Lock => {
                let (mapping, _) = w.target.expect("resolved page");
                Step::needing(&[(self.walk_lock_of(mapping), mode)])
            }
            WState::Visit(i) => match self.visit_ptl(w, i) {
                Some(l) => Step::needing(&[(l, Mode::Exclusive)]),
                None => Step::free(),
            },
            _ => Step::free(),
        }
    }

    /// The PTL visit `i` of `w` takes: that of the candidate's mm, unless
    /// the candidate is gone (the visit reports it) or the walk is
    /// `remove_migration_ptes` of an era that peeks first (≤ 3.0,
    /// `486cf46f3f9b`) and the peek sees no migration entry (it skips the
    /// PTE without the lock).
    fn visit_ptl(&self, w: &WalkSm, i: usize) -> Option<LockId> {
        #[cfg(test)]
        if tests_knob::VISIT_WITHOUT_PTL.get() {
            return None;
        }
        let (_, index) = w.target?;
        let v = self.m.vmas.get(*w.cands.get(i)?)?;
        if self.locks.peek_before_ptl && w.kind == WalkKind::Migrate && w.phase == 2 {
            let a = v.vma_address(index)?;
            if !matches!(self.m.pte(v.mm, a), Pte::Migration { .. }) {
                return None;
            }
        }
        Some(LockId::Ptl(v.mm.0))
    }

    /// Runs one step of walk `w`. `ex` is the block's execution and actor
    /// (`None` outside a block: a missed mapping is then a findability
    /// violation instead of `busy`).
    pub(super) fn walk_step(
        &mut self,
        w: &mut WalkSm,
        mut ex: Option<(&mut Execution, usize)>,
    ) -> KResult<WalkStepped> {
        let in_block = ex.is_some();
        w.step_ptl = None;
        let mig = w.kind == WalkKind::Migrate;
        let phase = if mig { w.phase } else { 0 };
        match w.state {
            WState::Start => {
                // The page: nothing anonymous there ends the op.
                let frame = match self.check_range(w.pid, w.addr, 1) {
                    Some(o) => {
                        w.outcome = Some(o);
                        None
                    }
                    None => self.anon_frame_at(w.pid, w.addr),
                };
                let Some(frame) = frame else {
                    // `referenced` counts mappings: none there is `ok 0`.
                    w.outcome.get_or_insert(if w.kind == WalkKind::Referenced {
                        Outcome::Value(0)
                    } else {
                        Outcome::Ok
                    });
                    w.state = WState::Done;
                    return Ok(WalkStepped::last(StepName::new(phase_name(phase, "lock"))));
                };
                w.frame = Some(frame);
                w.target = self.m.frame(frame).anon();
                if w.kind != WalkKind::Referenced {
                    lock(&mut ex, LockId::Page(frame.raw()), Mode::Exclusive, true)?;
                    // isolate_folio / migrate_pages hold a reference until
                    // the end: an unmap meanwhile does not free the page.
                    self.m.pin(frame);
                }
                w.state = WState::Lock;
                if self.rcu_lookup(w, in_block) {
                    // rcu_read_lock; page->mapping; page_mapped: the lock
                    // is taken in the next step, through the slot.
                    w.rcu = true;
                    return Ok(WalkStepped::more(StepName::new("lookup")));
                }
                self.walk_step(w, ex)
            }
            WState::Lock => {
                let (mapping, index) = w.target.expect("resolved page");
                let l = self.walk_lock_of(mapping);
                lock(&mut ex, l, self.locks.walk_mode(), true)?;
                w.cands.clear();
                if w.rcu {
                    w.locked = Some(l);
                    let frame = w.frame.expect("resolved page");
                    if self.recheck_mapped() && self.m.frame(frame).mapcount == 0 {
                        // f18194275c39: the page went while we were not
                        // holding the lock, so the slot may hold another
                        // anon_vma by now: unlock what was locked, walk
                        // nothing.
                        lock(&mut ex, l, Mode::Shared, false)?;
                        w.locked = None;
                    } else if let Some(now) = self.rmap.slot_occupant(mapping) {
                        // Whatever anon_vma the slot holds now (a freed
                        // one's list is empty: nothing to walk).
                        self.rmap.rmap_walk(&self.m, now, index, &mut w.cands)?;
                    }
                } else if phase != 2 || self.rmap.mapping_alive(mapping) {
                    // A migration pins the anon_vma (folio_get_anon_vma); if
                    // every VMA went away in the gap, the design freed it and
                    // the second walk has nothing to visit.
                    self.rmap.rmap_walk(&self.m, mapping, index, &mut w.cands)?;
                }
                if let Some(&c) = w.cands.iter().find(|&&c| self.m.vmas.get(c).is_none()) {
                    return Err(dangling_candidate(mapping, index, c));
                }
                // invalid_migration_vma: migration never touches exec's
                // temporary stack (its PTEs may be on the move).
                if mig && self.locks.migrate_skips_temp_stack {
                    w.cands.retain(|&c| !self.vma_is_temporary_stack(c));
                }
                self.bump(|s| {
                    s.walks += 1;
                    s.vmas_visited += w.cands.len() as u64;
                });
                if w.kind == WalkKind::Swapout {
                    self.add_to_swap(w);
                }
                w.state = if w.cands.is_empty() {
                    WState::Unlock
                } else {
                    WState::Visit(0)
                };
                Ok(WalkStepped::more(StepName::new(phase_name(phase, "lock"))))
            }
            WState::Visit(i) => {
                let (mapping, index) = w.target.expect("resolved page");
                let c = w.cands[i];
                let ptl = if ex.is_some() {
                    self.visit_ptl(w, i)
                } else {
                    None
                };
                let Some(v) = self.m.vmas.get(c) else {
                    return Err(dangling_candidate(mapping, index, c));
                };
                if let Some(l) = ptl {
                    lock(&mut ex, l, Mode::Exclusive, true)?;
                    w.step_ptl = Some(v.mm);
                }
                if let Some(a) = v.vma_address(index) {
                    let (mm, flags) = (v.mm, v.flags);
                    self.walk_visit(w, mm, a, flags);
                }
                if let Some(l) = ptl {
                    lock(&mut ex, l, Mode::Exclusive, false)?;
                }
                w.state = if i + 1 < w.cands.len() {
                    WState::Visit(i + 1)
                } else {
                    WState::Unlock
                };
                Ok(WalkStepped::more(StepName::indexed(
                    phase_name(phase, "visit"),
                    i as u32,
                )))
            }
            WState::Unlock => {
                let (mapping, _) = w.target.expect("resolved page");
                let frame = w.frame.expect("resolved page");
                if !w.rcu {
                    lock(&mut ex, self.walk_lock_of(mapping), Mode::Shared, false)?;
                } else if let Some(l) = w.locked.take() {
                    // page_unlock_anon_vma: since f18194275c39 the lock
                    // taken is the lock released (the page stayed mapped,
                    // so the root could not change); before (b10) it reads
                    // anon_vma->root again.
                    let l = if self.recheck_mapped() {
                        l
                    } else {
                        self.walk_lock_of(mapping)
                    };
                    lock(&mut ex, l, Mode::Shared, false)?;
                }
                let name = StepName::new(phase_name(phase, "unlock"));
                match (w.kind, phase) {
                    (WalkKind::Referenced, _) => {
                        // Nothing runs beside a walk outside a block, so a
                        // mapping it did not count is a findability failure.
                        if !in_block {
                            let all = self.ptes_mapping(frame);
                            if (w.found as usize) < all.len() {
                                let list: Vec<String> =
                                    all.iter().map(|(p, a)| format!("{p}:{a}")).collect();
                                let (pid, page) = all[0];
                                return Err(Fail::Violation(Violation::Findability {
                                    pid,
                                    page,
                                    detail: format!(
                                        "referenced: the reverse-map walk counted {} of the {} \
                                         PTE(s) mapping the page: [{}]",
                                        w.found,
                                        all.len(),
                                        list.join(", ")
                                    ),
                                }));
                            }
                        }
                        w.outcome = Some(Outcome::Value(w.found));
                        w.state = WState::Done;
                        return Ok(WalkStepped::last(name));
                    }
                    (WalkKind::Swapout, _) => {
                        lock(&mut ex, LockId::Page(frame.raw()), Mode::Exclusive, false)?;
                        if self.m.frame(frame).mapcount > 0 {
                            if !in_block {
                                return Err(self.missed(frame, "swapout"));
                            }
                            w.outcome = Some(Outcome::Ok);
                            w.busy = true;
                        } else {
                            self.check_unmapped(frame, "swapout")?;
                            self.bump(|s| s.swapouts += 1);
                            self.path(path::SWAP_OUT);
                            w.outcome = Some(Outcome::Ok);
                        }
                        self.m.release_pinned(frame);
                        w.state = WState::Done;
                        return Ok(WalkStepped::last(name));
                    }
                    (WalkKind::Migrate, 1) => {
                        if self.m.frame(frame).mapcount > 0 {
                            // A mapping in a skipped temporary stack makes
                            // the migration fail, as it should.
                            if !in_block && !self.mapped_in_skipped_stack(frame) {
                                return Err(self.missed(frame, "migrate (try_to_migrate)"));
                            }
                            // migrate_folio_undo_src: remove_migration_ptes(src, src).
                            w.busy = true;
                        }
                        w.state = WState::Copy;
                    }
                    (WalkKind::Migrate, _) => {
                        let left = self.ptes_mapping(frame);
                        let stale = left.iter().any(|&(p, a)| {
                            matches!(self.m.pte(p, a), Pte::Migration { frame: f, .. } if f == frame)
                        });
                        if !w.busy && !left.is_empty() && !in_block {
                            return Err(self.missed(frame, "migrate (remove_migration_ptes)"));
                        }
                        lock(&mut ex, LockId::Page(frame.raw()), Mode::Exclusive, false)?;
                        if let Some(new) = w.new.filter(|&n| n != frame) {
                            lock(&mut ex, LockId::Page(new.raw()), Mode::Exclusive, false)?;
                        }
                        if stale {
                            let list: Vec<String> =
                                left.iter().map(|(p, a)| format!("{p}:{a}")).collect();
                            return Err(Fail::Block {
                                invariant: "stale-migration-entry",
                                detail: format!(
                                    "the migration of {}:{} is over, but a migration entry for its old page \
                                     is left at [{}]",
                                    w.pid,
                                    w.addr,
                                    list.join(", ")
                                ),
                            });
                        }
                        if w.busy {
                            // The entries went back to the source page.
                            self.m.release_pinned(frame);
                            w.outcome = Some(Outcome::Ok);
                        } else {
                            self.check_unmapped(frame, "migrate")?;
                            self.m.unpin(frame);
                            self.m.free_frame(frame);
                            // The destination's last reference goes with
                            // the migration's if nothing maps it (the
                            // processes unmapped it in the meantime).
                            let new = w.new.expect("destination page");
                            self.m.release_pinned(new);
                            self.bump(|s| s.migrations += 1);
                            w.outcome = Some(Outcome::Ok);
                        }
                        w.state = WState::Done;
                        return Ok(WalkStepped::last(name));
                    }
                }
                Ok(WalkStepped::more(name))
            }
            WState::Copy => {
                // folio_migrate_mapping + folio_migrate_flags (not when the
                // first walk left the page mapped: the entries go back).
                let frame = w.frame.expect("resolved page");
                w.new = Some(if w.busy {
                    frame
                } else {
                    let (mapping, index) = w.target.expect("resolved page");
                    let (value, exclusive, swap) = {
                        let f = self.m.frame(frame);
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
                    self.m.pin(new);
                    // The destination stays locked until its entries are
                    // restored (migrate_folio_unmap locks dst).
                    lock(&mut ex, LockId::Page(new.raw()), Mode::Exclusive, true)?;
                    new
                });
                w.phase = 2;
                w.state = WState::Lock;
                Ok(WalkStepped::more(StepName::new("copy")))
            }
            WState::Done => unreachable!("a finished walk has no step"),
        }
    }

    /// Whether every PTE that still maps `frame` after `try_to_migrate`
    /// lies in a temporary stack that migration skips.
    fn mapped_in_skipped_stack(&self, frame: FrameId) -> bool {
        self.locks.migrate_skips_temp_stack
            && self
                .ptes_mapping(frame)
                .iter()
                .filter(|&&(p, a)| matches!(self.m.pte(p, a), Pte::Present { .. }))
                .all(|&(p, a)| {
                    self.m
                        .vma_lookup(p, a)
                        .is_some_and(|v| self.vma_is_temporary_stack(v))
                })
    }

    /// `folio_alloc_swap` / `add_to_swap`: the slot and the swap cache.
    fn add_to_swap(&mut self, w: &mut WalkSm) {
        let frame = w.frame.expect("resolved page");
        let value = self.m.frame(frame).value;
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
        w.slot = Some(slot);
    }

    /// One `rmap_one` call: the PTE at `pid:a` of a VMA with `vm_flags`,
    /// under its PTL.
    fn walk_visit(&mut self, w: &mut WalkSm, pid: Pid, a: u64, vm_flags: u32) {
        let frame = w.frame.expect("resolved page");
        match (w.kind, w.phase, self.m.pte(pid, a)) {
            (WalkKind::Referenced, _, Pte::Present { frame: f, .. }) if f == frame => {
                w.found += 1;
            }
            (WalkKind::Swapout, _, Pte::Present { frame: f, .. }) if f == frame => {
                // try_to_unmap_one: the PTE becomes a swap entry.
                let slot = w.slot.expect("swap slot");
                let exclusive = self.m.frame(frame).exclusive;
                #[cfg(test)]
                let keep = tests_knob::UNMAP_KEEPS_PTE.get();
                #[cfg(not(test))]
                let keep = false;
                if !keep {
                    self.m.set_pte(pid, a, Pte::Swap(slot));
                }
                let sl = self.m.swap.get_mut(slot).expect("live slot");
                sl.count += 1;
                sl.exclusive = exclusive;
                let f = self.m.frame_mut(frame);
                f.mapcount -= 1;
                f.exclusive = false;
            }
            (
                WalkKind::Migrate,
                1,
                Pte::Present {
                    frame: f, writable, ..
                },
            ) if f == frame => {
                // try_to_migrate_one
                self.m.set_pte(pid, a, Pte::Migration { frame, writable });
                self.m.frame_mut(frame).mapcount -= 1;
                self.path(path::MIGRATION_INSTALL);
            }
            (WalkKind::Migrate, 2, Pte::Migration { frame: f, writable }) if f == frame => {
                // remove_migration_pte
                self.path(path::MIGRATION_REMOVE);
                let new = w.new.expect("destination page");
                // mk_pte(new, vma->vm_page_prot) of the VMA this walk found,
                // made writable for a writable entry: whatever that VMA's
                // flags say now is what the PTE allows (B21).
                self.m.set_pte(
                    pid,
                    a,
                    Pte::Present {
                        frame: new,
                        writable,
                        protnone: vm_flags & super::vm_flags::VM_ACCESS_FLAGS == 0,
                    },
                );
                // PageAnonExclusive comes back only with an exclusive
                // entry: a fork in the gap cleared the source's marker (its
                // entries are no longer exclusive), and a second mapping
                // means one was not.
                let src_exclusive = new == frame || self.m.frame(frame).exclusive;
                let f = self.m.frame_mut(new);
                f.mapcount += 1;
                if f.mapcount > 1 || !src_exclusive {
                    f.exclusive = false;
                }
            }
            _ => {}
        }
    }

    /// `unmap-success-but-mapped`: a walk that left the mapcount at 0 must
    /// have left no present PTE of the page.
    fn check_unmapped(&self, frame: FrameId, what: &str) -> KResult<()> {
        if !self.in_block {
            return Ok(());
        }
        let left: Vec<String> = self
            .ptes_mapping(frame)
            .into_iter()
            .filter(|&(p, a)| matches!(self.m.pte(p, a), Pte::Present { .. }))
            .map(|(p, a)| format!("{p}:{a}"))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        Err(Fail::Block {
            invariant: "unmap-success-but-mapped",
            detail: format!(
                "{what}: the page's mapcount is 0 after the walk, but PTEs still map it: [{}]",
                left.join(", ")
            ),
        })
    }
}

/// Takes (`take`) or drops lock `l` for the block's actor, if in a block.
fn lock(ex: &mut Option<(&mut Execution, usize)>, l: LockId, m: Mode, take: bool) -> KResult<()> {
    if let Some((ex, a)) = ex {
        let r = if take {
            ex.acquire(*a, l, m)
        } else {
            ex.release(*a, l)
        };
        r.map_err(|e| Fail::Block {
            invariant: "lock-discipline",
            detail: e.0,
        })?;
    }
    Ok(())
}

fn phase_name(phase: u8, base: &'static str) -> &'static str {
    match (phase, base) {
        (1, "lock") => "w1.lock",
        (1, "visit") => "w1.visit",
        (1, "unlock") => "w1.unlock",
        (2, "lock") => "w2.lock",
        (2, "visit") => "w2.visit",
        (2, "unlock") => "w2.unlock",
        (_, b) => b,
    }
}

fn dangling_candidate(mapping: AnonMapping, index: u64, c: VmaId) -> Fail {
    Fail::Violation(Violation::Rmap(RmapError::Dangling {
        what: "vma".into(),
        detail: format!(
            "the walk of mapping {mapping} index {index:#x} returned VMA {c}, which the MMU freed"
        ),
    }))
}

/// Which rmap walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WalkKind {
    /// `try_to_unmap`.
    Swapout,
    /// `try_to_migrate` · copy · `remove_migration_ptes`, the page locked.
    Migrate,
    /// `folio_referenced`.
    Referenced,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WState {
    /// The page is not looked up yet.
    Start,
    Lock,
    Visit(usize),
    Unlock,
    /// Migration's gap between the walks.
    Copy,
    Done,
}

/// One walk as a step machine: `lock` · `visit#i` × k · `unlock` (migrate:
/// `w1.lock` … `w1.unlock` · `copy` · `w2.lock` … `w2.unlock`, the page
/// lock held from `w1.lock` to `w2.unlock`). The candidates are the
/// design's at `lock`; `vma_address` is computed at each visit.
#[derive(Clone, Debug)]
pub(crate) struct WalkSm {
    pub(crate) kind: WalkKind,
    pid: Pid,
    addr: u64,
    /// Migration's walk: 1 or 2.
    phase: u8,
    pub(crate) state: WState,
    /// The walked page (the old page of a migration).
    frame: Option<FrameId>,
    target: Option<(AnonMapping, u64)>,
    /// Migration's destination (the old page itself when the first walk
    /// left the page mapped).
    new: Option<FrameId>,
    slot: Option<SwapId>,
    cands: Vec<VmaId>,
    found: u64,
    /// The walk left the page mapped (Linux's caller sees `mapcount > 0`).
    pub(crate) busy: bool,
    pub(crate) outcome: Option<Outcome>,
    /// The process whose PTL the last step held (a visit), if any.
    pub(crate) step_ptl: Option<Pid>,
    /// The page was looked up in a step of its own (type-stable slots).
    rcu: bool,
    /// The anon_vma lock that `lock` took, with `rcu` (`None` once
    /// released).
    locked: Option<LockId>,
}

impl WalkSm {
    pub(crate) fn new(kind: WalkKind, pid: Pid, addr: u64) -> WalkSm {
        WalkSm {
            kind,
            pid,
            addr,
            phase: 1,
            state: WState::Start,
            frame: None,
            target: None,
            new: None,
            slot: None,
            cands: Vec::new(),
            found: 0,
            busy: false,
            outcome: None,
            step_ptl: None,
            rcu: false,
            locked: None,
        }
    }
}

/// What one walk step did.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WalkStepped {
    pub(crate) name: StepName,
    pub(crate) last: bool,
}

impl WalkStepped {
    fn more(name: StepName) -> WalkStepped {
        WalkStepped { name, last: false }
    }
    fn last(name: StepName) -> WalkStepped {
        WalkStepped { name, last: true }
    }
}

/// A broken lock model for the tests of `lock-discipline`.
#[cfg(test)]
pub(crate) mod tests_knob {
    thread_local! {
        /// Walk visits take no PTL.
        pub(crate) static VISIT_WITHOUT_PTL: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
        /// `try_to_unmap_one` drops the map count but leaves the PTE.
        pub(crate) static UNMAP_KEEPS_PTE: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
        /// `move_ptes` takes the rmap locks after the PTL (the order
        /// `need_rmap_locks` keeps the other way round).
        pub(crate) static RMAP_LOCKS_AFTER_PTL: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
        /// `page_unlock_anon_vma` reads the slot's root again instead of
        /// releasing the lock it took, and `page_lock_anon_vma` does not
        /// re-check `page_mapped` (whatever the lock model says).
        pub(crate) static UNLOCK_REREADS_ROOT: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
        /// A mutator locks each VMA's own anon_vma instead of its root
        /// (the 2026 series' pass 2 locking `src->anon_vma`, not the root).
        pub(crate) static LOCK_OWN_NOT_ROOT: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
    }
}
