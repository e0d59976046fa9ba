//! Concurrent blocks: a few ops interleaved at the points where Linux lets
//! another CPU in ("walk is atomic, op is split").
//!
//! The first actor that changes VMAs or page tables is the **split
//! mutator**: it runs the MMU's own sequential code, which stops at named
//! yield points ([`Mmu::yield_point`]); there the scheduler may run other
//! actors' steps. Walkers (`swapout`, `migrate`, `referenced`) are step
//! machines (`swap.rs`); every other actor runs whole, as one step. Locks
//! follow the design's [`LockModel`](crate::sched::LockModel): the split
//! mutator holds its `mmap_lock` for write from its first step to its last,
//! and a step that changes anon_vma trees needs their lock (root or own,
//! by era) for write; walkers hold it (shared from 3.8, else exclusive)
//! from `lock` to `unlock`, and a migration holds the page lock from
//! `w1.lock` to `w2.unlock`.

use std::fmt;

use crate::rmap::{Rmap, RmapError, SetWrite, VmaId};
use crate::sched::{
    Execution, FaultLock, LockId, LockObj, Mode, Pick, Schedule, Step, Strategy, Trace, letter,
};
use rmaplab_ops::{Errno, Op, Outcome, Pid};

use super::swap::{WalkKind, WalkSm};
use super::{Fail, KResult, Mmu, Pte, Violation};

/// A step's name: a yield point or walk step (`move_ptes#0`,
/// `w1.visit#1`), formatted only when a trace needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepName {
    pub base: &'static str,
    pub index: Option<u32>,
}

impl StepName {
    pub const fn new(base: &'static str) -> StepName {
        StepName { base, index: None }
    }
    pub const fn indexed(base: &'static str, i: u32) -> StepName {
        StepName {
            base,
            index: Some(i),
        }
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}#{i}", self.base),
            None => f.write_str(self.base),
        }
    }
}

/// The name of the split mutator's last step (from its last yield point
/// to the end of the op).
pub const END: &str = "end";

/// The step names an op can produce in a block, in the order they can
/// occur (`#i` marks a numbered family), for `rmaplab steps`.
pub fn step_names(op: &Op) -> &'static [&'static str] {
    const UNMAP: &[&str] = &[
        "split.lookup",
        "unmap.gather",
        "unmap.zap#i",
        "unmap.unlink#i",
        END,
    ];
    match op {
        Op::Mremap { .. } => &[
            "mremap.lookup",
            "split.lookup",
            "merge.lookup",
            "merge.publish",
            "merge.clone",
            "merge.prepare",
            "merge.commit",
            "merge.remove#i",
            "unmap.gather",
            "unmap.zap#i",
            "unmap.unlink#i",
            "copy_vma",
            "move_ptes.clear#i",
            "move_ptes#i",
            END,
        ],
        Op::Mmap { .. } => &[
            "split.lookup",
            "unmap.gather",
            "unmap.zap#i",
            "unmap.unlink#i",
            "merge.lookup",
            "merge.publish",
            "merge.clone",
            "merge.prepare",
            "merge.commit",
            "merge.remove#i",
            END,
        ],
        Op::Munmap { .. } | Op::Exit { .. } => UNMAP,
        Op::Mprotect { .. } | Op::Madvise { .. } => &[
            "merge.lookup",
            "merge.publish",
            "merge.clone",
            "merge.prepare",
            "merge.commit",
            "merge.remove#i",
            "split.lookup",
            "modify.lookup",
            "unmap.zap#i",
            "unmap.unlink#i",
            END,
        ],
        Op::Fork { .. } => &[
            "fork.lookup",
            "fork.alloc#i",
            "fork.anon_vma#i",
            "fork.copy#i",
            END,
        ],
        Op::Swapout { .. } => &["lookup", "lock", "visit#i", "unlock"],
        Op::Referenced { .. } => &["lock", "visit#i", "unlock"],
        Op::Migrate { .. } => &[
            "w1.lock",
            "w1.visit#i",
            "w1.unlock",
            "copy",
            "w2.lock",
            "w2.visit#i",
            "w2.unlock",
        ],
        Op::Read { .. } => &[
            "read",
            "fault.lookup",
            "fault.lock",
            "fault.install",
            "fault.mmap",
        ],
        Op::Write { .. } => &[
            "write",
            "fault.lookup",
            "fault.lock",
            "fault.prepare",
            "fault.install",
            "fault.mmap",
        ],
        Op::Reclaim => &["reclaim"],
        Op::FailAlloc { .. } | Op::Dump => &[],
        Op::ExecStack { .. } => &[END],
        Op::ExecShift { .. } => &[
            "exec.lookup",
            "merge.prepare",
            "exec.expand",
            "move_ptes.clear#i",
            "move_ptes#i",
            "merge.prepare",
            "exec.shrink",
            END,
        ],
    }
}

/// What the split mutator's next step takes besides its `mmap_lock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The anon_vma locks of its mm, for write (it changes trees or lists).
    Rmap,
    /// No anon_vma lock (page-table work under PTLs only).
    NoRmap,
    /// Inside a PTL section: the step that ends here took the PTL of the
    /// mutator's mm and keeps it; the next step (no anon_vma lock) drops
    /// it. Only lockless readers (the `remove_migration_pte` peek) can run
    /// in between.
    InPtl,
}

/// An actor's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActorOutcome {
    Op(Outcome),
    /// A walk left the page mapped (Linux's caller sees `mapcount > 0` and
    /// retries later): legal inside a block.
    Busy,
}

impl fmt::Display for ActorOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActorOutcome::Op(o) => o.fmt(f),
            ActorOutcome::Busy => f.write_str("busy"),
        }
    }
}

/// A broken invariant in a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockFailure {
    /// The invariant's name as reports print it (`stale-migration-entry`,
    /// `deadlock`, `lock-discipline`, `unmap-success-but-mapped`,
    /// `dangling`, `findability`, a design check's name), or `schedule`
    /// when a strict schedule could not be followed (an input error).
    pub invariant: String,
    pub detail: String,
    /// The actor whose step failed, if one did.
    pub actor: Option<char>,
    /// The failing schedule, in the strict run-length form.
    pub schedule: String,
    /// The v1 violation, when the invariant is one.
    pub violation: Option<Violation>,
}

/// What a block did.
#[derive(Clone, Debug)]
pub struct BlockOutcome {
    /// Per actor, of the failing schedule if one failed, else of the first
    /// (`None`: the actor did not finish).
    pub outcomes: Vec<Option<ActorOutcome>>,
    /// The steps of that schedule.
    pub trace: Trace,
    /// Schedules run.
    pub schedules: u64,
    /// The schedule cap stopped an `explore` before it was complete.
    pub capped: bool,
    pub failure: Option<BlockFailure>,
}

/// One schedule's result ([`Mmu::run_schedule`]).
#[derive(Clone, Debug)]
pub struct ScheduleRun {
    pub outcomes: Vec<Option<ActorOutcome>>,
    pub trace: Trace,
    pub failure: Option<BlockFailure>,
}

#[derive(Clone, Debug)]
enum Kind {
    Split { op: Op, pid: Pid, started: bool },
    Walker(WalkSm),
    Fault(FaultSm),
    Atomic(Op),
}

/// Where a per-VMA-lock fault is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FaultStep {
    /// `lock_vma_under_rcu`'s lockless maple-tree walk.
    Lookup,
    /// `vma_start_read`.
    Lock,
    /// `__vmf_anon_prepare` (a write fault on a VMA without anon_vma).
    Prepare,
    /// The fault proper, under the VMA read lock; drops it.
    Install,
    /// The fallback: the whole fault under `mmap_lock` (`lock_mm_and_find_vma`).
    Mmap,
}

/// A `read`/`write` in a block of an era with per-VMA locks (6.4+): a
/// step machine (`fault.lookup`, `fault.lock`, `fault.prepare`,
/// `fault.install`, or `fault.mmap` where it falls back).
#[derive(Clone, Debug)]
struct FaultSm {
    op: Op,
    pid: Pid,
    addr: u64,
    step: FaultStep,
    /// The VMA it found, then holds the read lock of.
    vma: Option<VmaId>,
}

/// The block in progress.
pub(crate) struct Block {
    ex: Execution,
    strategy: Box<dyn Strategy>,
    actors: Vec<Kind>,
    outcomes: Vec<Option<ActorOutcome>>,
    split: Option<usize>,
    /// The split mutator's next step.
    split_next: Step,
    /// Locks its running step took for the step only.
    step_locks: Vec<LockId>,
    /// The design's epoch when a step without anon_vma locks started.
    epoch_guard: Option<Option<u64>>,
    /// The actor whose step failed.
    failed: Option<usize>,
    /// Every anon_vma lock the split mutator's steps have taken.
    rmap_locks: Vec<LockId>,
    /// The PTL the split mutator holds across a yield ([`Next::InPtl`]).
    ptl_held: Option<LockId>,
    /// VMA write locks the split mutator's next step takes and keeps until
    /// the op ends ([`Mmu::vma_start_write`]).
    vma_pending: Vec<LockId>,
}

/// The MMU's scheduler slot: a clone of a machine never carries the
/// scheduler of a block in progress.
#[derive(Default)]
pub(crate) struct SchedSlot(Option<Box<Block>>);

impl Clone for SchedSlot {
    fn clone(&self) -> SchedSlot {
        SchedSlot(None)
    }
}

impl SchedSlot {
    pub(crate) fn is_none(&self) -> bool {
        self.0.is_none()
    }
}

fn lock_discipline(detail: String) -> Fail {
    Fail::Block {
        invariant: "lock-discipline",
        detail,
    }
}

/// Does `op` change VMAs or page tables (a candidate split mutator)?
fn is_mutator(op: &Op) -> bool {
    matches!(
        op,
        Op::Mmap { .. }
            | Op::Munmap { .. }
            | Op::Mprotect { .. }
            | Op::Mremap { .. }
            | Op::Madvise { .. }
            | Op::Fork { .. }
            | Op::Exit { .. }
            | Op::ExecStack { .. }
            | Op::ExecShift { .. }
    )
}

impl<R: Rmap> Mmu<R> {
    /// A step boundary of the split mutator: the step that ends here is
    /// `at`; the next one takes the anon_vma locks iff `next` says so.
    /// Outside a block this is one branch.
    #[inline]
    pub(super) fn yield_point(&mut self, at: StepName, next: Next) -> KResult<()> {
        if self.sched.is_none() {
            return Ok(());
        }
        self.yield_slow(at, next)
    }

    #[cold]
    fn yield_slow(&mut self, at: StepName, next: Next) -> KResult<()> {
        let mut b = self.sched.0.take().expect("a block in progress");
        let r = self.yield_in(&mut b, at, next);
        self.sched.0 = Some(b);
        r
    }

    fn yield_in(&mut self, b: &mut Block, at: StepName, next: Next) -> KResult<()> {
        let m = b.split.expect("only the split mutator yields");
        self.end_split_step(b, at)?;
        if next == Next::InPtl {
            let Kind::Split { pid, .. } = b.actors[m] else {
                unreachable!("the split actor")
            };
            let l = LockId::Ptl(pid.0);
            b.ex.acquire(m, l, Mode::Exclusive)
                .map_err(|e| lock_discipline(e.0))?;
            b.ptl_held = Some(l);
        }
        b.ex.finish_step(b.strategy.as_mut(), m, &at.to_string(), false)
            .map_err(|e| lock_discipline(e.0))?;
        let Kind::Split { pid, .. } = b.actors[m] else {
            unreachable!("the split actor")
        };
        #[cfg(test)]
        let next = if next == Next::InPtl && super::swap::tests_knob::RMAP_LOCKS_AFTER_PTL.get() {
            Next::Rmap
        } else {
            next
        };
        b.split_next = self.split_needs(pid, next, false);
        for l in b.vma_pending.drain(..) {
            b.split_next.needs.push((l, Mode::Exclusive));
        }
        if next == Next::Rmap {
            // VMAs the op detached are no longer in the mm, but their
            // unlink still takes their anon_vma locks.
            for &l in &b.rmap_locks {
                if !b.split_next.needs.contains(&(l, Mode::Exclusive)) {
                    b.split_next.needs.push((l, Mode::Exclusive));
                }
            }
        }
        let picked = self.run_until_split(b)?;
        debug_assert!(picked, "the split mutator is unfinished");
        Ok(())
    }

    /// The anon_vma lock objects of `pid`'s VMAs, for write, and the
    /// `mmap_lock` on the first step.
    fn split_needs(&self, pid: Pid, next: Next, first: bool) -> Step {
        let mut needs = Vec::new();
        if first {
            needs.push((LockId::Mmap(pid.0), Mode::Exclusive));
        }
        if next == Next::Rmap
            && let Some(mm) = self.m.mm(pid)
        {
            for &v in mm.vmas.values() {
                if let Some(av) = self.rmap.vma_anon_vma(v) {
                    let l = self.walk_lock_of(av);
                    #[cfg(test)]
                    let l = if super::swap::tests_knob::LOCK_OWN_NOT_ROOT.get() {
                        LockId::Anon(av.raw())
                    } else {
                        l
                    };
                    if !needs.contains(&(l, Mode::Exclusive)) {
                        needs.push((l, Mode::Exclusive));
                    }
                }
            }
            // A design that prepares at link time (eager-2010) may
            // allocate and link a fresh anon_vma in the step, under its
            // lock; with type-stable slots that lock is named by the slot
            // the allocation takes.
            if self.locks.typesafe_slots
                && self.rmap.prepares_at_link()
                && let Some(i) = self.rmap.next_anon_vma_slot()
            {
                let l = (LockId::Anon(i as u64), Mode::Exclusive);
                if !needs.contains(&l) {
                    needs.push(l);
                }
            }
        }
        Step { needs }
    }

    fn begin_split_step(&mut self, b: &mut Block) -> KResult<()> {
        let m = b.split.expect("split actor");
        let needs = match b.actors[m] {
            Kind::Split {
                pid,
                started: false,
                op,
            } => {
                let mut needs = self.split_needs(pid, Next::Rmap, true).needs;
                // (A fork of a pid not yet used fails with ESRCH.)
                if matches!(op, Op::Fork { .. }) && self.m.next_pid != pid.0 {
                    // dup_mmap holds the child's mmap_lock for write until
                    // the copy is done: nothing runs on the child before.
                    needs.push((LockId::Mmap(self.m.next_pid), Mode::Exclusive));
                }
                needs
            }
            _ => std::mem::take(&mut b.split_next.needs),
        };
        if let Some(l) = b.ptl_held.take() {
            // Held since the last yield; this step drops it.
            b.step_locks.push(l);
        }
        let mut anon = false;
        for &(l, _) in &needs {
            if matches!(l, LockId::Anon(_)) && !b.rmap_locks.contains(&l) {
                b.rmap_locks.push(l);
            }
        }
        for &(l, mode) in &needs {
            b.ex.acquire(m, l, mode).map_err(|e| lock_discipline(e.0))?;
            match l {
                // Held until the op ends (mmap_write_unlock drops the VMA
                // write locks too).
                LockId::Mmap(_) | LockId::Vma(_) => {}
                _ => {
                    anon |= matches!(l, LockId::Anon(_));
                    b.step_locks.push(l);
                }
            }
        }
        b.epoch_guard = (!anon).then(|| self.rmap.epoch());
        if let Some(log) = &mut self.m.pte_log {
            log.clear();
        }
        self.take_set_writes();
        Ok(())
    }

    fn end_split_step(&mut self, b: &mut Block, at: StepName) -> KResult<()> {
        let m = b.split.expect("split actor");
        self.check_pte_writes(&b.ex, m, &at.to_string(), None)?;
        let sets = self.check_set_writes(&b.ex, m, &at.to_string());
        for l in b.step_locks.drain(..) {
            b.ex.release(m, l).map_err(|e| lock_discipline(e.0))?;
        }
        if let Some(Some(before)) = b.epoch_guard.take()
            && self.rmap.epoch() != Some(before)
        {
            return Err(lock_discipline(format!(
                "actor {}'s step {at} changed anon_vma trees or lists without the anon_vma lock",
                letter(m)
            )));
        }
        sets
    }

    /// The design's set changes since the last call.
    fn take_set_writes(&mut self) -> Vec<SetWrite> {
        let mut w = Vec::new();
        self.rmap.take_set_writes(&mut w);
        w
    }

    /// `lock-discipline` for anon_vma trees and lists, after a step of
    /// actor `a`: every tree insert or remove (list link, unlink or
    /// reorder) held the era's lock of that anon_vma (its root since
    /// 2.6.36, itself before) for write. This is the rule the 2026 series'
    /// "remove unnecessary root lock dance" relies on: one root lock covers
    /// every anon_vma of a chain because they all share that root.
    ///
    /// ASSUMPTIONS: the step's locks are still held (called before they
    /// are released).
    fn check_set_writes(&mut self, ex: &Execution, a: usize, step: &str) -> KResult<()> {
        for w in self.take_set_writes() {
            let l = self.anon_lock(match self.locks.walk_lock {
                LockObj::Own => w.anon_vma,
                LockObj::Root => w.root,
            });
            if !ex.held(a).contains(&(l, Mode::Exclusive)) {
                let held: Vec<String> = ex.held(a).iter().map(|(l, _)| l.to_string()).collect();
                return Err(lock_discipline(format!(
                    "actor {}'s step {step} changed anon_vma {}'s tree without {l} for write \
                     (held: [{}])",
                    letter(a),
                    w.anon_vma,
                    held.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// `lock-discipline` for page tables, after a step of actor `a`: no
    /// other actor holds the PTL of a process whose PTEs the step changed,
    /// and a walk (`walk` is `Some(the PTL its step held)`) changed PTEs of
    /// that process only. A mutator's or fault's step is page-table work
    /// under the PTLs it takes and drops within the step.
    fn check_pte_writes(
        &self,
        ex: &Execution,
        a: usize,
        step: &str,
        walk: Option<Option<Pid>>,
    ) -> KResult<()> {
        let Some(log) = &self.m.pte_log else {
            return Ok(());
        };
        for &pid in log {
            let ptl = LockId::Ptl(pid.0);
            if let Some(o) =
                (0..ex.actors()).find(|&o| o != a && ex.held(o).iter().any(|&(l, _)| l == ptl))
            {
                return Err(lock_discipline(format!(
                    "actor {}'s step {step} changed a PTE of {pid} while actor {} holds {ptl}",
                    letter(a),
                    letter(o)
                )));
            }
            if let Some(held) = walk
                && held != Some(pid)
            {
                return Err(lock_discipline(format!(
                    "actor {}'s walk step {step} changed a PTE of {pid} without {ptl}",
                    letter(a)
                )));
            }
        }
        Ok(())
    }

    /// Actor `a`'s next step, `None` once it finished.
    fn actor_next(&self, b: &Block, a: usize) -> Option<Step> {
        if b.ex.finished(a) {
            return None;
        }
        Some(match &b.actors[a] {
            Kind::Split { pid, started, .. } => {
                if *started {
                    b.split_next.clone()
                } else {
                    self.split_needs(*pid, Next::Rmap, true)
                }
            }
            Kind::Walker(w) => self.walk_needs(w),
            Kind::Fault(f) => self.fault_needs(f),
            Kind::Atomic(op) => self.atomic_needs(op),
        })
    }

    /// An op run whole: a mutator takes its `mmap_lock` for write and the
    /// anon_vma locks; a fault its `mmap_lock` for read and, on a
    /// migration entry, the page lock (`migration_entry_wait`), on a swap
    /// entry whose page is in the swap cache, that page's lock
    /// (`do_swap_page`); reclaim the page locks of what it frees.
    fn atomic_needs(&self, op: &Op) -> Step {
        match *op {
            Op::Read { pid, addr } | Op::Write { pid, addr, .. } => {
                let mut needs = vec![(LockId::Mmap(pid.0), Mode::Shared)];
                match self.pte(pid, addr) {
                    Pte::Migration { frame, .. } => {
                        needs.push((LockId::Page(frame.raw()), Mode::Exclusive));
                    }
                    // do_swap_page locks the swap cache's folio
                    // (folio_lock_or_retry): a swap-in waits for a
                    // migration or a reclaim of that page, and then maps
                    // what the swap cache holds.
                    Pte::Swap(slot) => {
                        if let Some(f) = self.m.swap.get(slot).and_then(|sl| sl.cache) {
                            needs.push((LockId::Page(f.raw()), Mode::Exclusive));
                        }
                    }
                    _ => {}
                }
                if self.locks.typesafe_slots {
                    self.prepare_needs(pid, addr, &mut needs);
                }
                Step { needs }
            }
            Op::Reclaim => Step {
                needs: self
                    .m
                    .swap
                    .iter()
                    .filter_map(|(_, sl)| sl.cache)
                    .filter(|&f| self.m.frame(f).mapcount == 0)
                    .map(|f| (LockId::Page(f.raw()), Mode::Exclusive))
                    .collect(),
            },
            ref op => match op.pid() {
                Some(pid) => {
                    let mut s = self.split_needs(pid, Next::Rmap, true);
                    // A mutator run whole write-locks every VMA of its mm
                    // it could touch (all of them, to be safe).
                    if self.locks.fault_lock == FaultLock::PerVma
                        && is_mutator(op)
                        && let Some(mm) = self.m.mm(pid)
                    {
                        for &v in mm.vmas.values() {
                            s.needs.push((LockId::Vma(v.raw()), Mode::Exclusive));
                        }
                    }
                    s
                }
                None => Step::free(),
            },
        }
    }

    /// The anon_vma locks a fault's `anon_vma_prepare` takes, with
    /// type-stable slots (where a walker may hold the lock of a slot the
    /// fault's allocation reuses): if the VMA at `pid:addr` has no
    /// anon_vma, the locks of the anon_vmas of its `anon_vma_compatible`
    /// neighbours (`find_mergeable_anon_vma` may reuse either) and, unless
    /// the era links a fresh one unlocked (`b02`, before `d9d332e0874f`),
    /// the lock of the slot the next allocation takes.
    fn prepare_needs(&self, pid: Pid, addr: u64, needs: &mut Vec<(LockId, Mode)>) {
        let Some(v) = self.m.vma_lookup(pid, addr) else {
            return;
        };
        if self.rmap.has_anon_vma(v) {
            return;
        }
        let next = self
            .m
            .vma_next_adjacent(v)
            .filter(|&n| self.m.anon_vma_compatible(v, n));
        let prev = self
            .m
            .vma_prev(v)
            .filter(|&p| self.m.anon_vma_compatible(p, v));
        for n in next.into_iter().chain(prev) {
            if let Some(av) = self.rmap.vma_anon_vma(n) {
                let l = (self.walk_lock_of(av), Mode::Exclusive);
                if !needs.contains(&l) {
                    needs.push(l);
                }
            }
        }
        #[cfg(test)]
        let fresh = self.locks.lock_fresh_anon_vma && !tests_knob::PREPARE_FRESH_UNLOCKED.get();
        #[cfg(not(test))]
        let fresh = self.locks.lock_fresh_anon_vma;
        if fresh && let Some(i) = self.rmap.next_anon_vma_slot() {
            let l = (LockId::Anon(i as u64), Mode::Exclusive);
            if !needs.contains(&l) {
                needs.push(l);
            }
        }
    }

    /// `data-race` (a lockset rule), after a step of actor `a` that is
    /// not checked for `lock-discipline` (a fault run whole): no anon_vma
    /// list or tree the step changed is locked by another actor while `a`
    /// does not hold that lock.
    fn check_data_race(&mut self, ex: &Execution, a: usize, step: &str) -> KResult<()> {
        for w in self.take_set_writes() {
            let l = self.anon_lock(match self.locks.walk_lock {
                LockObj::Own => w.anon_vma,
                LockObj::Root => w.root,
            });
            if ex.held(a).iter().any(|&(h, _)| h == l) {
                continue;
            }
            if let Some(o) =
                (0..ex.actors()).find(|&o| o != a && ex.held(o).iter().any(|&(h, _)| h == l))
            {
                return Err(Fail::Block {
                    invariant: "data-race",
                    detail: format!(
                        "actor {}'s step {step} changed anon_vma {}'s list without {l}, \
                         which actor {} holds",
                        letter(a),
                        w.anon_vma,
                        letter(o)
                    ),
                });
            }
        }
        Ok(())
    }

    /// Runs actors until the strategy picks the split mutator (`true`; its
    /// step has begun) or every actor finished (`false`).
    fn run_until_split(&mut self, b: &mut Block) -> KResult<bool> {
        loop {
            let next: Vec<Option<Step>> =
                (0..b.actors.len()).map(|a| self.actor_next(b, a)).collect();
            match b.ex.pick(b.strategy.as_mut(), &next) {
                Err(e) => {
                    return Err(Fail::Block {
                        invariant: "schedule",
                        detail: e.to_string(),
                    });
                }
                Ok(Pick::Done) => return Ok(false),
                Ok(Pick::Deadlock) => {
                    let held: Vec<String> = (0..b.actors.len())
                        .filter(|&a| !b.ex.finished(a))
                        .map(|a| {
                            let h: Vec<String> =
                                b.ex.held(a).iter().map(|(l, _)| l.to_string()).collect();
                            format!("{} holds [{}]", letter(a), h.join(", "))
                        })
                        .collect();
                    return Err(Fail::Block {
                        invariant: "deadlock",
                        detail: format!("no actor can run: {}", held.join("; ")),
                    });
                }
                Ok(Pick::Run(a)) if Some(a) == b.split => {
                    self.begin_split_step(b)?;
                    return Ok(true);
                }
                Ok(Pick::Run(a)) => {
                    if let Err(f) = self.run_actor_step(b, a) {
                        if b.ex.running() == Some(a) {
                            b.ex.fail_step(a);
                        }
                        b.failed = Some(a);
                        return Err(f);
                    }
                }
            }
        }
    }

    /// One step of a walker or an atomic actor.
    fn run_actor_step(&mut self, b: &mut Block, a: usize) -> KResult<()> {
        let Block {
            ex,
            strategy,
            actors,
            outcomes,
            ..
        } = b;
        if let Some(log) = &mut self.m.pte_log {
            log.clear();
        }
        match &mut actors[a] {
            Kind::Walker(w) => {
                let epoch = self.rmap.epoch();
                let st = self.walk_step(w, Some((ex, a)))?;
                // Walks read the anon_vma structures and VMAs' anon_vma;
                // changing them needs the lock for write.
                if self.rmap.epoch() != epoch {
                    return Err(lock_discipline(format!(
                        "actor {}'s walk step {} changed anon_vma trees, lists or a VMA's anon_vma",
                        letter(a),
                        st.name
                    )));
                }
                self.check_pte_writes(ex, a, &st.name.to_string(), Some(w.step_ptl))?;
                if st.last {
                    outcomes[a] = Some(if w.busy {
                        ActorOutcome::Busy
                    } else {
                        ActorOutcome::Op(w.outcome.expect("walk outcome"))
                    });
                }
                ex.finish_step(strategy.as_mut(), a, &st.name.to_string(), st.last)
                    .map_err(|e| lock_discipline(e.0))
            }
            Kind::Fault(f) => {
                let (name, last) = self.fault_step(f, ex, a)?;
                self.check_pte_writes(ex, a, name, None)?;
                if let Some(o) = last {
                    outcomes[a] = Some(ActorOutcome::Op(o));
                }
                ex.finish_step(strategy.as_mut(), a, name, last.is_some())
                    .map_err(|e| lock_discipline(e.0))
            }
            Kind::Atomic(op) => {
                let op = *op;
                let needs = self.atomic_needs(&op).needs;
                for &(l, m) in &needs {
                    ex.acquire(a, l, m).map_err(|e| lock_discipline(e.0))?;
                }
                self.take_set_writes();
                let o = match self.dispatch(&op) {
                    Ok(o) => o,
                    Err(Fail::NoMem) => Outcome::Err(Errno::ENOMEM),
                    Err(f) => return Err(f),
                };
                self.check_pte_writes(ex, a, op.keyword(), None)?;
                // A fault's anon_vma_prepare links under a lock the atomic
                // model does not name (the anon_vma is found in the step).
                if !matches!(op, Op::Read { .. } | Op::Write { .. }) {
                    self.check_set_writes(ex, a, op.keyword())?;
                } else if self.locks.typesafe_slots {
                    self.check_data_race(ex, a, op.keyword())?;
                }
                for &(l, _) in &needs {
                    ex.release(a, l).map_err(|e| lock_discipline(e.0))?;
                }
                outcomes[a] = Some(ActorOutcome::Op(o));
                ex.finish_step(strategy.as_mut(), a, op.keyword(), true)
                    .map_err(|e| lock_discipline(e.0))
            }
            Kind::Split { .. } => unreachable!("the split mutator runs in its own code"),
        }
    }

    /// Runs `ops` as one block under the next schedule of `strategy`, in
    /// place; `None` when the strategy has no schedule left. The strategy
    /// is handed back either way.
    pub fn run_schedule(
        &mut self,
        ops: &[Op],
        strategy: Box<dyn Strategy>,
    ) -> (Option<ScheduleRun>, Box<dyn Strategy>) {
        let split = ops.iter().position(is_mutator);
        let actors: Vec<Kind> = ops
            .iter()
            .enumerate()
            .map(|(i, op)| match *op {
                _ if Some(i) == split => Kind::Split {
                    op: *op,
                    pid: op.pid().expect("a mutator names its process"),
                    started: false,
                },
                Op::Swapout { pid, addr } => {
                    Kind::Walker(WalkSm::new(WalkKind::Swapout, pid, addr))
                }
                Op::Referenced { pid, addr } => {
                    Kind::Walker(WalkSm::new(WalkKind::Referenced, pid, addr))
                }
                Op::Migrate { pid, addr } => {
                    Kind::Walker(WalkSm::new(WalkKind::Migrate, pid, addr))
                }
                Op::Read { pid, addr } | Op::Write { pid, addr, .. }
                    if self.locks.fault_lock == FaultLock::PerVma =>
                {
                    Kind::Fault(FaultSm {
                        op: *op,
                        pid,
                        addr,
                        step: FaultStep::Lookup,
                        vma: None,
                    })
                }
                _ => Kind::Atomic(*op),
            })
            .collect();
        let mut b = Box::new(Block {
            ex: Execution::new(ops.len()),
            strategy,
            outcomes: vec![None; ops.len()],
            actors,
            split,
            split_next: Step::free(),
            step_locks: Vec::new(),
            epoch_guard: None,
            failed: None,
            rmap_locks: Vec::new(),
            ptl_held: None,
            vma_pending: Vec::new(),
        });
        if !b.strategy.begin() {
            return (None, b.strategy);
        }
        self.last_op_pure = false;
        self.m.dirty_vmas.clear();
        self.m.dirty_ptes.clear();
        self.m.cleared_ptes.clear();
        self.m.dirty_frames.clear();
        self.m.pte_log = Some(Vec::new());
        self.rmap.record_set_writes(true);
        self.in_block = true;
        let r: KResult<()> = loop {
            match self.run_until_split(&mut b) {
                Ok(false) => break Ok(()),
                Err(f) => break Err(f),
                Ok(true) => {
                    let m = split.expect("split actor");
                    let Kind::Split { op, started, pid } = &mut b.actors[m] else {
                        unreachable!("the split actor")
                    };
                    debug_assert!(!*started);
                    *started = true;
                    let (op, pid) = (*op, *pid);
                    self.sched.0 = Some(b);
                    let r = self.dispatch(&op);
                    b = self.sched.0.take().expect("the block comes back");
                    let o = match r {
                        Ok(o) => o,
                        Err(Fail::NoMem) => Outcome::Err(Errno::ENOMEM),
                        Err(f) => break Err(f),
                    };
                    b.outcomes[m] = Some(ActorOutcome::Op(o));
                    if let Err(f) = self.end_split_step(&mut b, StepName::new(END)) {
                        break Err(f);
                    }
                    let _ = b.ex.release(m, LockId::Mmap(pid.0));
                    // mmap_write_unlock drops the op's VMA write locks.
                    let vmas: Vec<LockId> =
                        b.ex.held(m)
                            .iter()
                            .filter(|(l, _)| matches!(l, LockId::Vma(_)))
                            .map(|&(l, _)| l)
                            .collect();
                    for l in vmas {
                        let _ = b.ex.release(m, l);
                    }
                    if let Some(&(child, _)) = b.ex.held(m).iter().find(|(l, _)| {
                        matches!(op, Op::Fork { .. }) && matches!(l, LockId::Mmap(_))
                    }) {
                        let _ = b.ex.release(m, child);
                    }
                    if let Err(e) = b.ex.finish_step(b.strategy.as_mut(), m, END, true) {
                        break Err(lock_discipline(e.0));
                    }
                }
            }
        };
        self.in_block = false;
        self.m.pte_log = None;
        self.rmap.record_set_writes(false);
        // Every actor finished: a migration entry left anywhere outlived
        // its migration (one moved while no walk could see it).
        let r = r.and_then(|()| self.no_migration_entries_left());
        // Every PTE, since a walk may have restored one anywhere.
        let r = r.and_then(|()| {
            self.check_pte_prot(true).map_err(|v| match v {
                Violation::PteProt { detail, .. } => Fail::Block {
                    invariant: "pte-prot",
                    detail,
                },
                v => Fail::Violation(v),
            })
        });
        // A strict schedule with items left once every actor finished.
        let complete = r.is_ok();
        let r = match (r, b.strategy.end(complete)) {
            (Ok(()), Err(e)) => Err(Fail::Block {
                invariant: "schedule",
                detail: e.to_string(),
            }),
            (r, _) => r,
        };
        let failure = r.err().map(|f| {
            let actor = match b.failed {
                Some(a) => Some(a),
                None if b.ex.running().is_some() => {
                    let a = b.ex.running().expect("running actor");
                    b.ex.fail_step(a);
                    Some(a)
                }
                None => None,
            };
            let (invariant, detail, violation) = match f {
                Fail::Block { invariant, detail } => (invariant.to_string(), detail, None),
                Fail::Violation(v) => {
                    let (name, detail) = match &v {
                        Violation::Rmap(RmapError::Dangling { what, detail }) => {
                            ("dangling".to_string(), format!("{what}: {detail}"))
                        }
                        Violation::Rmap(RmapError::Check { name, detail }) => {
                            (name.to_string(), detail.clone())
                        }
                        Violation::Rmap(e) => ("rmap".to_string(), e.to_string()),
                        Violation::Findability { detail, .. } => {
                            ("findability".to_string(), detail.clone())
                        }
                        Violation::PteProt { detail, .. } => {
                            ("pte-prot".to_string(), detail.clone())
                        }
                    };
                    (name, detail, Some(v))
                }
                Fail::NoMem => unreachable!("ENOMEM is an outcome"),
            };
            BlockFailure {
                invariant,
                detail,
                actor: actor.map(letter),
                schedule: b.ex.trace().render_strict(),
                violation,
            }
        });
        let Block {
            ex,
            strategy,
            outcomes,
            ..
        } = *b;
        let run = ScheduleRun {
            outcomes,
            trace: ex.into_trace(),
            failure,
        };
        (Some(run), strategy)
    }
}

impl<R: Rmap> Mmu<R> {
    /// `stale-migration-entry` at the end of a block: no PTE holds a
    /// migration entry once every migration finished.
    fn no_migration_entries_left(&self) -> KResult<()> {
        let mut left = Vec::new();
        for (i, mm) in self.m.procs.iter().enumerate() {
            let Some(mm) = mm else { continue };
            for (a, pte) in mm.pt.iter().enumerate() {
                if matches!(pte, Pte::Migration { .. }) {
                    left.push(format!("p{i}:{a}"));
                }
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        Err(Fail::Block {
            invariant: "stale-migration-entry",
            detail: format!(
                "every migration of the block is over, but migration entries are left at [{}]",
                left.join(", ")
            ),
        })
    }
}

impl<R: Rmap + Clone> Mmu<R> {
    /// Runs `ops` as one concurrent block under `schedule`. `explore` runs
    /// each schedule on a clone of the pre-block machine and stops at the
    /// first failure or after `max_schedules`; the machine is left in the
    /// state of the failing schedule, or else of the first one. Errors: a
    /// block the language does not allow (its size, `fail-alloc`, `dump`).
    pub fn run_block(
        &mut self,
        ops: &[Op],
        schedule: &Schedule,
        max_schedules: u64,
    ) -> Result<BlockOutcome, String> {
        if !(2..=crate::sched::MAX_ACTORS).contains(&ops.len()) {
            return Err(format!("a block has 2 to 8 actors, not {}", ops.len()));
        }
        if let Some(op) = ops
            .iter()
            .find(|o| matches!(o, Op::FailAlloc { .. } | Op::Dump))
        {
            return Err(format!("`{}` is not allowed in a block", op.keyword()));
        }
        let horizon = match schedule {
            Schedule::Pct { .. } => {
                // PCT places its change points over the steps of one run.
                let mut dry = self.clone();
                let (r, _) = dry.run_schedule(ops, Schedule::Explore { bound: 0 }.strategy(0));
                r.map_or(1, |r| r.trace.0.len())
            }
            _ => 0,
        };
        let mut strategy = schedule.strategy(horizon);
        let pre = self.clone();
        let mut schedules = 0;
        let mut first: Option<(Mmu<R>, ScheduleRun)> = None;
        loop {
            if schedules == max_schedules {
                let (state, run) = first.expect("at least one schedule");
                *self = state;
                return Ok(BlockOutcome {
                    outcomes: run.outcomes,
                    trace: run.trace,
                    schedules,
                    capped: true,
                    failure: None,
                });
            }
            let mut m = pre.clone();
            let (run, s) = m.run_schedule(ops, strategy);
            strategy = s;
            let Some(run) = run else { break };
            schedules += 1;
            if run.failure.is_some() {
                *self = m;
                return Ok(BlockOutcome {
                    outcomes: run.outcomes,
                    trace: run.trace,
                    schedules,
                    capped: false,
                    failure: run.failure,
                });
            }
            if first.is_none() {
                first = Some((m, run));
            }
        }
        let (state, run) = first.expect("at least one schedule");
        *self = state;
        Ok(BlockOutcome {
            outcomes: run.outcomes,
            trace: run.trace,
            schedules,
            capped: false,
            failure: None,
        })
    }
}

/// Per-VMA locks (6.4+, `5e31275cc997`): the split mutator's
/// `vma_start_write`, the check that nothing changes a VMA a fault holds,
/// and the fault's step machine.
impl<R: Rmap> Mmu<R> {
    /// `vma_start_write` on those of `vmas` the op has not write-locked yet:
    /// in a block of an era with per-VMA-lock faults, the step `at` ends
    /// here and the next one (taking the anon_vma locks) begins by taking
    /// their VMA write locks, waiting for faults that hold a read lock. They
    /// stay held until the op ends (`mmap_write_unlock` drops them).
    /// Outside a block this is one branch.
    #[inline]
    pub(super) fn vma_start_write(&mut self, at: StepName, vmas: &[VmaId]) -> KResult<()> {
        if self.sched.is_none() {
            return Ok(());
        }
        self.vma_lock_slow(at, vmas, false)
    }

    /// Links a VMA the op made (`vma_link`, `__split_vma`'s new VMA,
    /// `__mmap_new_vma`): the kernel write-locks it before storing it in
    /// the maple tree, so faults stay out of it until the op ends.
    pub(super) fn link_new_vma(&mut self, v: VmaId) -> KResult<()> {
        self.m.link(v);
        if self.sched.is_none() || self.locks.fault_lock != FaultLock::PerVma {
            return Ok(());
        }
        let b = self.sched.0.as_mut().expect("a block in progress");
        let m = b.split.expect("only the split mutator links VMAs");
        b.ex.acquire(m, LockId::Vma(v.raw()), Mode::Exclusive)
            .map_err(|e| lock_discipline(e.0))
    }

    /// A step boundary `at` that only eras with per-VMA locks have (a fault
    /// can run between the halves of `dup_anon_vma`); the next step takes
    /// the anon_vma locks and write-locks `vmas` as [`Mmu::vma_start_write`].
    #[inline]
    pub(super) fn yield_vma_locking(&mut self, at: StepName, vmas: &[VmaId]) -> KResult<()> {
        if self.sched.is_none() {
            return Ok(());
        }
        self.vma_lock_slow(at, vmas, true)
    }

    #[cold]
    fn vma_lock_slow(&mut self, at: StepName, vmas: &[VmaId], always: bool) -> KResult<()> {
        if self.locks.fault_lock != FaultLock::PerVma {
            return Ok(());
        }
        let b = self.sched.0.as_mut().expect("a block in progress");
        let m = b.split.expect("only the split mutator locks VMAs");
        for &v in vmas {
            let l = LockId::Vma(v.raw());
            if !b.ex.holds(m, l, Mode::Exclusive) && !b.vma_pending.contains(&l) {
                b.vma_pending.push(l);
            }
        }
        if b.vma_pending.is_empty() && !always {
            return Ok(());
        }
        self.yield_slow(at, Next::Rmap)
    }

    /// `lock-discipline`: VMA `v`'s `what` (anon_vma, chain, bounds) is
    /// about to change; no other actor may hold its VMA lock (a fault's
    /// read lock: `vma_assert_write_locked` in the kernel's paths).
    #[inline]
    pub(super) fn vma_changing(&self, v: VmaId, what: &str) -> KResult<()> {
        let Some(b) = self.sched.0.as_deref() else {
            return Ok(());
        };
        let m = b.split.expect("only the split mutator changes VMAs");
        let l = LockId::Vma(v.raw());
        if let Some(o) =
            (0..b.ex.actors()).find(|&o| o != m && b.ex.held(o).iter().any(|&(h, _)| h == l))
        {
            return Err(lock_discipline(format!(
                "actor {}'s step changed the {what} of VMA {v} while actor {} holds {l} (a fault under the VMA lock)",
                letter(m),
                letter(o)
            )));
        }
        Ok(())
    }

    /// `lock-discipline` for the 2026 series' patch 8/9 (pass 1 of
    /// `anon_vma_clone` runs without the anon_vma lock): the destination of
    /// a split, remap or fork clone is not attached, so no fault can find it
    /// (and no walk: its chains reach the trees only in pass 2).
    pub(super) fn clone_dst_unreachable(&self, dst: VmaId, what: &str) -> KResult<()> {
        if !self.in_block {
            return Ok(());
        }
        let v = self.m.vma(dst);
        if self.m.mm(v.mm).and_then(|mm| mm.vmas.get(&v.start)) == Some(&dst) {
            return Err(lock_discipline(format!(
                "the {what} clone's destination VMA {dst} is attached (a fault can find it) \
                 before its anon_vma_chains are in the trees"
            )));
        }
        Ok(())
    }

    /// What a fault's next step takes: the fallback the locks of a fault
    /// run whole; the fault proper its page-table lock (and the page lock a
    /// migration or swap-in needs), under the VMA read lock it holds.
    fn fault_needs(&self, f: &FaultSm) -> Step {
        match f.step {
            FaultStep::Lookup | FaultStep::Lock | FaultStep::Prepare => Step::free(),
            FaultStep::Install => {
                let mut s = self.atomic_needs(&f.op);
                s.needs.retain(|(l, _)| !matches!(l, LockId::Mmap(_)));
                s.needs.push((LockId::Ptl(f.pid.0), Mode::Exclusive));
                s
            }
            FaultStep::Mmap => self.atomic_needs(&f.op),
        }
    }

    /// `findability` of the anonymous page a VMA-locked fault left at its
    /// address: a walk from the page's anon_vma reaches it at once (the
    /// VMA's anon_vma and chain were set together, under the locks that
    /// keep faults out). A merge that published `dst->anon_vma` before
    /// write-locking `dst` (`b18b`) lets a fault map a page that no walk
    /// reaches until the chain clone.
    fn fault_page_findable(&self, f: &FaultSm) -> KResult<()> {
        let Pte::Present { frame, .. } = self.m.pte(f.pid, f.addr) else {
            return Ok(());
        };
        let Some((mapping, index)) = self.m.frame(frame).anon() else {
            return Ok(());
        };
        let w = self
            .rmap_walk(mapping, index)
            .map_err(|e| Fail::Violation(Violation::Rmap(e)))?;
        if w.found.contains(&(f.pid, f.addr)) {
            return Ok(());
        }
        Err(Fail::Violation(Violation::Findability {
            pid: f.pid,
            page: f.addr,
            detail: format!(
                "a fault mapped {}:{} (mapping {mapping:?}, index {index:#x}) through its VMA's \
                 anon_vma, but a walk from there visits {} VMA(s) and does not reach it",
                f.pid, f.addr, w.visited
            ),
        }))
    }

    /// Would the fault call `anon_vma_prepare` on `v` (a write to a
    /// private writable VMA without anon_vma)?
    fn fault_prepares(&self, f: &FaultSm, v: VmaId) -> bool {
        let x = self.m.vma(v);
        matches!(f.op, Op::Write { .. })
            && x.flags & super::vm_flags::VM_WRITE != 0
            && !x.is_shared()
            && !self.rmap.has_anon_vma(v)
    }

    /// One step of fault `f` (actor `a`): its name and, when it is the
    /// last, the fault's outcome.
    ///
    /// ASSUMPTIONS: `f`'s locks are taken and dropped through `ex`; the
    /// step's needs ([`Mmu::fault_needs`]) were free when it was picked.
    fn fault_step(
        &mut self,
        f: &mut FaultSm,
        ex: &mut Execution,
        a: usize,
    ) -> KResult<(&'static str, Option<Outcome>)> {
        let le = |e: crate::sched::LockError| lock_discipline(e.0);
        match f.step {
            FaultStep::Lookup => {
                // lock_vma_under_rcu: the VMA, without mmap_lock. 6.4 (b18a)
                // also gave up here on a VMA without anon_vma, so that the
                // fault would not need to prepare one.
                // A fork's child (the pid a fork in progress is making) has
                // no task yet: its faults wait for the fork's mmap_lock.
                f.vma = (f.pid.0 < self.m.next_pid)
                    .then(|| self.m.vma_lookup(f.pid, f.addr))
                    .flatten()
                    .filter(|&v| self.locks.anon_check_under_vma_lock || self.rmap.has_anon_vma(v));
                f.step = if f.vma.is_some() {
                    FaultStep::Lock
                } else {
                    FaultStep::Mmap
                };
                Ok(("fault.lookup", None))
            }
            FaultStep::Lock => {
                // vma_start_read fails while a writer holds the VMA; after
                // locking, the VMA must still be attached and cover addr.
                let v = f.vma.expect("looked up");
                let l = LockId::Vma(v.raw());
                #[cfg(test)]
                let skip = tests_knob::FAULT_SKIPS_VMA_LOCK.get() && self.m.vmas.get(v).is_some();
                #[cfg(not(test))]
                let skip = false;
                if skip
                    || !ex.conflicts(a, l, Mode::Shared)
                        && self.m.vma_lookup(f.pid, f.addr) == Some(v)
                {
                    if !skip {
                        ex.acquire(a, l, Mode::Shared).map_err(le)?;
                    }
                    f.step = if self.fault_prepares(f, v) {
                        FaultStep::Prepare
                    } else {
                        FaultStep::Install
                    };
                } else {
                    f.vma = None;
                    f.step = FaultStep::Mmap;
                }
                Ok(("fault.lock", None))
            }
            FaultStep::Prepare => {
                let v = f.vma.expect("locked");
                let r = if self.locks.anon_check_under_vma_lock {
                    // __vmf_anon_prepare: anon_vma_prepare needs mmap_lock;
                    // if the trylock fails, VM_FAULT_RETRY under mmap_lock.
                    if ex.conflicts(a, LockId::Mmap(f.pid.0), Mode::Shared) {
                        if ex.holds(a, LockId::Vma(v.raw()), Mode::Shared) {
                            ex.release(a, LockId::Vma(v.raw())).map_err(le)?;
                        }
                        f.vma = None;
                        f.step = FaultStep::Mmap;
                        return Ok(("fault.prepare", None));
                    }
                    self.anon_vma_prepare(v)
                } else {
                    // 6.4: the VMA lock alone.
                    self.fault_vma_only = true;
                    let r = self.anon_vma_prepare(v);
                    self.fault_vma_only = false;
                    r
                };
                match r {
                    Ok(()) => {
                        f.step = FaultStep::Install;
                        Ok(("fault.prepare", None))
                    }
                    Err(Fail::NoMem) => {
                        if ex.holds(a, LockId::Vma(v.raw()), Mode::Shared) {
                            ex.release(a, LockId::Vma(v.raw())).map_err(le)?;
                        }
                        Ok(("fault.prepare", Some(Outcome::Err(Errno::ENOMEM))))
                    }
                    Err(e) => Err(e),
                }
            }
            FaultStep::Install => {
                let v = f.vma.expect("locked");
                let l = LockId::Vma(v.raw());
                // The fault installs through a VMA nobody has write-locked:
                // its read lock excluded writers since fault.lock.
                if let Some(o) =
                    (0..ex.actors()).find(|&o| o != a && ex.held(o).contains(&(l, Mode::Exclusive)))
                {
                    return Err(lock_discipline(format!(
                        "actor {}'s fault installs through VMA {v} while actor {} holds {l} for write",
                        letter(a),
                        letter(o)
                    )));
                }
                let needs = self.fault_needs(f).needs;
                for &(l, m) in &needs {
                    ex.acquire(a, l, m).map_err(le)?;
                }
                self.fault_vma_only = true;
                let r = self.dispatch(&f.op);
                self.fault_vma_only = false;
                let o = match r {
                    Ok(o) => o,
                    Err(Fail::NoMem) => Outcome::Err(Errno::ENOMEM),
                    Err(e) => return Err(e),
                };
                for &(l, _) in &needs {
                    ex.release(a, l).map_err(le)?;
                }
                self.fault_page_findable(f)?;
                if ex.holds(a, l, Mode::Shared) {
                    ex.release(a, l).map_err(le)?;
                }
                Ok(("fault.install", Some(o)))
            }
            FaultStep::Mmap => {
                let needs = self.atomic_needs(&f.op).needs;
                for &(l, m) in &needs {
                    ex.acquire(a, l, m).map_err(le)?;
                }
                let o = match self.dispatch(&f.op) {
                    Ok(o) => o,
                    Err(Fail::NoMem) => Outcome::Err(Errno::ENOMEM),
                    Err(e) => return Err(e),
                };
                for &(l, _) in &needs {
                    ex.release(a, l).map_err(le)?;
                }
                Ok(("fault.mmap", Some(o)))
            }
        }
    }
}

/// Test-only mutants that break one per-VMA-lock rule, to prove the check
/// that guards it fires.
#[cfg(test)]
pub(crate) mod tests_knob {
    thread_local! {
        /// `vma_start_read` neither waits for a writer nor takes the lock.
        pub(crate) static FAULT_SKIPS_VMA_LOCK: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
        /// `dup_mmap` attaches the child's VMA before `anon_vma_fork`.
        pub(crate) static FORK_LINKS_BEFORE_CLONE: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
        /// A fault's `anon_vma_prepare` takes no lock of the anon_vma it
        /// allocates (whatever the lock model says).
        pub(crate) static PREPARE_FRESH_UNLOCKED: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
    }
}
