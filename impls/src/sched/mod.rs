//! Deterministic schedulers for concurrent blocks (shuttle-style).
//!
//! A block runs a few **actors** (lettered `A`, `B`, ...). Each actor is a
//! sequence of **steps**; between two steps another actor may run. A step
//! declares the locks it takes ([`Step::needs`]); it is *enabled* iff none
//! of them conflicts with a lock another actor holds across steps
//! (lock-respecting schedules). Locks are taken and released through the
//! [`Execution`] while a step runs, so the lock table is the real one.
//!
//! One [`Execution`] is one schedule: at every step it asks a
//! [`Strategy`] which enabled actor runs (a *decision* when two or more
//! may), counts preemptions (a switch away from an actor that could have
//! gone on, as CHESS counts them), detects deadlock and records the trace.
//! Strategies, one file each: [`Explore`] (preemption-bounded exhaustive
//! DFS over schedules; the caller re-runs the block from a clone of the
//! pre-block state per schedule), [`Pct`], [`RandomWalk`], [`Bytes`] (the
//! fuzzers' raw decision bytes) and [`Replay`] (the run-length form,
//! lenient or strict).
//!
//! [`drive`] runs a set of pull-style [`Actors`] to completion under one
//! schedule; a caller whose actor is ordinary sequential code that stops
//! at yield points (the MMU's split mutator) uses [`Execution`] directly.

use std::fmt;

mod bytes;
mod explore;
mod model;
mod pct;
mod random;
mod replay;

#[cfg(test)]
mod tests;

pub use bytes::Bytes;
pub use explore::Explore;
pub use model::{FaultLock, Granularity, Insert, LockModel, LockObj};
pub use pct::Pct;
pub use random::RandomWalk;
pub use replay::Replay;

/// Most actors in one block (ops-v2: 2 to 8).
pub const MAX_ACTORS: usize = 8;

/// The letter of actor `i` (`A` for 0).
pub fn letter(i: usize) -> char {
    (b'A' + i as u8) as char
}

/// A lock of the model (`mm->mmap_lock`, a per-VMA lock, an anon_vma lock
/// or its root's, a page-table lock, a folio lock). Objects are named by
/// raw handles or pids, so the scheduler needs nothing from the MMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LockId {
    Mmap(u32),
    Vma(u64),
    Anon(u64),
    Ptl(u32),
    Page(u64),
}

impl fmt::Display for LockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockId::Mmap(p) => write!(f, "mmap(p{p})"),
            LockId::Vma(v) => write!(f, "vma({v})"),
            LockId::Anon(a) => write!(f, "anon_vma({a})"),
            LockId::Ptl(p) => write!(f, "ptl(p{p})"),
            LockId::Page(p) => write!(f, "page({p})"),
        }
    }
}

/// Shared (read) or exclusive (write, or a spinlock/mutex).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Shared,
    Exclusive,
}

impl Mode {
    fn conflicts(self, other: Mode) -> bool {
        self == Mode::Exclusive || other == Mode::Exclusive
    }
}

/// What an actor's next step needs before it can run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Locks the step acquires (whether it keeps them or not).
    pub needs: Vec<(LockId, Mode)>,
}

impl Step {
    pub fn free() -> Step {
        Step::default()
    }
    pub fn needing(needs: &[(LockId, Mode)]) -> Step {
        Step {
            needs: needs.to_vec(),
        }
    }
}

/// The name the trace gives a step that failed (its actor stopped inside
/// it, so it has no yield point name).
pub const FAILED: &str = "(failed)";

/// One step taken: the actor and the step's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    pub actor: usize,
    pub name: String,
    /// The actor finished with this step.
    pub last: bool,
}

/// The steps of one schedule, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace(pub Vec<TraceEntry>);

impl Trace {
    /// The strict run-length rendering (`! A..copy_vma B* A*`), which
    /// [`Replay`] runs back exactly. Each maximal run of one actor becomes
    /// `X*` if the actor finished with it, `X..NAME` if the run's last step
    /// name does not occur earlier in the run, `Xn` otherwise.
    pub fn render_strict(&self) -> String {
        let mut s = String::from("!");
        for it in self.items() {
            s.push(' ');
            s.push_str(&it.to_string());
        }
        s
    }

    /// The run-length items of [`Trace::render_strict`].
    pub fn items(&self) -> Vec<Item> {
        let e = &self.0;
        let mut out = Vec::new();
        let mut i = 0;
        while i < e.len() {
            let a = e[i].actor;
            let mut j = i;
            while j + 1 < e.len() && e[j + 1].actor == a {
                j += 1;
            }
            let run = &e[i..=j];
            let end = &run[run.len() - 1];
            let run_len = if end.name == FAILED {
                RunLen::Steps(run.len() as u32)
            } else if end.last {
                RunLen::Finish
            } else if run[..run.len() - 1].iter().all(|x| x.name != end.name) {
                RunLen::Until(end.name.clone())
            } else {
                RunLen::Steps(run.len() as u32)
            };
            out.push(Item {
                actor: a,
                run: run_len,
            });
            i = j + 1;
        }
        out
    }

    /// `A:copy_vma B:w1.lock ...`, for reports.
    pub fn labelled(&self) -> String {
        let v: Vec<String> = self
            .0
            .iter()
            .map(|t| format!("{}:{}", letter(t.actor), t.name))
            .collect();
        v.join(" ")
    }
}

/// How far one run-length item runs its actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunLen {
    /// `Xn`: up to n steps.
    Steps(u32),
    /// `X..LABEL`: up to and including its first step named LABEL.
    Until(String),
    /// `X*`: until it finishes.
    Finish,
}

/// One item of the run-length schedule form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub actor: usize,
    pub run: RunLen,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = letter(self.actor);
        match &self.run {
            RunLen::Steps(n) => write!(f, "{x}{n}"),
            RunLen::Until(l) => write!(f, "{x}..{l}"),
            RunLen::Finish => write!(f, "{x}*"),
        }
    }
}

/// The schedule forms of ops-v2 (`sched SCHED`), as the scheduler takes
/// them; the op language's own value maps onto this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// `explore:C`: every lock-respecting schedule with at most C
    /// preemptions.
    Explore { bound: u32 },
    /// `pct:SEED:DEPTH`.
    Pct { seed: u64, depth: u32 },
    /// `random:SEED`.
    Random { seed: u64 },
    /// `#HEX`: raw decision bytes.
    Bytes(Vec<u8>),
    /// The run-length form; `strict` for `! ...`.
    Replay { items: Vec<Item>, strict: bool },
}

impl Default for Schedule {
    /// `sched` omitted: `explore:2`.
    fn default() -> Schedule {
        Schedule::Explore { bound: 2 }
    }
}

impl Schedule {
    /// The strategy that draws this schedule (or these schedules).
    /// `horizon` is an estimate of the number of steps of one schedule,
    /// which only PCT uses (to place its priority change points).
    pub fn strategy(&self, horizon: usize) -> Box<dyn Strategy> {
        match self {
            Schedule::Explore { bound } => Box::new(Explore::new(*bound)),
            Schedule::Pct { seed, depth } => Box::new(Pct::new(*seed, *depth, horizon)),
            Schedule::Random { seed } => Box::new(RandomWalk::new(*seed)),
            Schedule::Bytes(b) => Box::new(Bytes::new(b.clone())),
            Schedule::Replay { items, strict } => Box::new(Replay::new(items.clone(), *strict)),
        }
    }
}

/// The state a strategy sees at one step.
#[derive(Clone, Copy, Debug)]
pub struct Decision<'a> {
    /// The actors that may run now, ascending (at least one).
    pub enabled: &'a [usize],
    /// Per actor: finished?
    pub finished: &'a [bool],
    /// The actor that ran the previous step, if any.
    pub current: Option<usize>,
    /// Preemptions so far in this schedule.
    pub preemptions: u32,
    /// Steps taken so far in this schedule.
    pub step: usize,
}

impl Decision<'_> {
    /// Whether picking `a` now is a preemption.
    pub fn preempts(&self, a: usize) -> bool {
        matches!(self.current, Some(c) if c != a && self.enabled.contains(&c))
    }
    /// The choice that is not a preemption: the current actor if it may go
    /// on, else the lowest enabled letter.
    pub fn default_choice(&self) -> usize {
        match self.current {
            Some(c) if self.enabled.contains(&c) => c,
            _ => self.enabled[0],
        }
    }
}

/// Why a schedule could not be followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    /// A strict run-length item cannot run as written.
    Strict { item: usize, detail: String },
    /// A replayed prefix met a different set of enabled actors (the block
    /// is not deterministic).
    Diverged { step: usize },
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::Strict { item, detail } => {
                write!(
                    f,
                    "schedule item {} cannot run as written: {detail}",
                    item + 1
                )
            }
            ScheduleError::Diverged { step } => {
                write!(
                    f,
                    "the block diverged from its recorded prefix at step {step}"
                )
            }
        }
    }
}

/// A way of choosing schedules. One value serves every schedule of a block
/// (`explore` yields many, the others one).
pub trait Strategy {
    /// Starts the next schedule; `false` when there is none left.
    fn begin(&mut self) -> bool;
    /// Picks one of `d.enabled`.
    fn choose(&mut self, d: &Decision) -> Result<usize, ScheduleError>;
    /// A step ran (chosen or forced).
    fn observe(&mut self, _actor: usize, _name: &str, _finished: bool) {}
    /// The schedule ended (every actor finished, or a failure stopped it).
    fn end(&mut self, _complete: bool) -> Result<(), ScheduleError> {
        Ok(())
    }
}

/// What [`Execution::pick`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Run this actor's next step.
    Run(usize),
    /// Every actor finished.
    Done,
    /// No actor can run and some are unfinished.
    Deadlock,
}

/// A misuse of the lock table by a running step (the model's lockdep).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockError(pub String);

/// One schedule in progress: the lock table, the trace, the preemption
/// count.
#[derive(Clone, Debug)]
pub struct Execution {
    n: usize,
    held: Vec<Vec<(LockId, Mode)>>,
    finished: Vec<bool>,
    current: Option<usize>,
    running: Option<usize>,
    preemptions: u32,
    trace: Trace,
}

impl Execution {
    pub fn new(actors: usize) -> Execution {
        assert!((1..=MAX_ACTORS).contains(&actors));
        Execution {
            n: actors,
            held: vec![Vec::new(); actors],
            finished: vec![false; actors],
            current: None,
            running: None,
            preemptions: 0,
            trace: Trace::default(),
        }
    }

    pub fn actors(&self) -> usize {
        self.n
    }
    pub fn trace(&self) -> &Trace {
        &self.trace
    }
    pub fn into_trace(self) -> Trace {
        self.trace
    }
    pub fn preemptions(&self) -> u32 {
        self.preemptions
    }
    /// The actor whose step is running (picked, not yet finished).
    pub fn running(&self) -> Option<usize> {
        self.running
    }
    pub fn finished(&self, a: usize) -> bool {
        self.finished[a]
    }
    /// The locks `a` holds across steps.
    pub fn held(&self, a: usize) -> &[(LockId, Mode)] {
        &self.held[a]
    }

    /// Whether another actor than `a` holds `l` in a mode that conflicts
    /// with `m`.
    pub fn conflicts(&self, a: usize, l: LockId, m: Mode) -> bool {
        self.held
            .iter()
            .enumerate()
            .any(|(b, hs)| b != a && hs.iter().any(|&(h, hm)| h == l && hm.conflicts(m)))
    }

    /// Whether a step needing `step` may run for actor `a` now.
    pub fn enabled(&self, a: usize, step: &Step) -> bool {
        !self.finished[a] && step.needs.iter().all(|&(l, m)| !self.conflicts(a, l, m))
    }

    /// Chooses who runs next. `next[a]` is actor `a`'s next step (`None`
    /// once it finished; the entry of a finished actor is ignored).
    pub fn pick(
        &mut self,
        strategy: &mut dyn Strategy,
        next: &[Option<Step>],
    ) -> Result<Pick, ScheduleError> {
        debug_assert_eq!(next.len(), self.n);
        debug_assert!(self.running.is_none(), "pick inside a step");
        let mut buf = [0usize; MAX_ACTORS];
        let mut k = 0;
        for (a, s) in next.iter().enumerate() {
            if let Some(s) = s
                && self.enabled(a, s)
            {
                buf[k] = a;
                k += 1;
            }
        }
        if k == 0 {
            return Ok(if self.finished.iter().all(|&f| f) {
                Pick::Done
            } else {
                Pick::Deadlock
            });
        }
        let d = Decision {
            enabled: &buf[..k],
            finished: &self.finished,
            current: self.current,
            preemptions: self.preemptions,
            step: self.trace.0.len(),
        };
        let a = strategy.choose(&d)?;
        assert!(d.enabled.contains(&a), "strategy chose a disabled actor");
        if d.preempts(a) {
            self.preemptions += 1;
        }
        self.running = Some(a);
        Ok(Pick::Run(a))
    }

    /// Takes `l` for the running actor `a`; it is held until [`release`].
    ///
    /// [`release`]: Execution::release
    pub fn acquire(&mut self, a: usize, l: LockId, m: Mode) -> Result<(), LockError> {
        if self.conflicts(a, l, m) {
            return Err(LockError(format!(
                "actor {} took {l} while another actor holds it",
                letter(a)
            )));
        }
        if self.held[a].iter().any(|&(h, _)| h == l) {
            return Err(LockError(format!("actor {} took {l} twice", letter(a))));
        }
        self.held[a].push((l, m));
        Ok(())
    }

    /// Drops `l`, which `a` must hold.
    pub fn release(&mut self, a: usize, l: LockId) -> Result<(), LockError> {
        match self.held[a].iter().position(|&(h, _)| h == l) {
            Some(i) => {
                self.held[a].remove(i);
                Ok(())
            }
            None => Err(LockError(format!(
                "actor {} released {l}, which it does not hold",
                letter(a)
            ))),
        }
    }

    /// Whether `a` holds `l` in a mode at least `m`.
    pub fn holds(&self, a: usize, l: LockId, m: Mode) -> bool {
        self.held[a]
            .iter()
            .any(|&(h, hm)| h == l && (m == Mode::Shared || hm == Mode::Exclusive))
    }

    /// The running actor's step failed (an invariant broke inside it):
    /// records it as [`FAILED`], so the rendered trace runs up to it.
    pub fn fail_step(&mut self, a: usize) {
        debug_assert_eq!(self.running, Some(a));
        self.running = None;
        self.current = Some(a);
        self.trace.0.push(TraceEntry {
            actor: a,
            name: FAILED.to_string(),
            last: false,
        });
    }

    /// The running actor's step is over: records it. An actor that
    /// finishes holding a lock is a lock-discipline error.
    pub fn finish_step(
        &mut self,
        strategy: &mut dyn Strategy,
        a: usize,
        name: &str,
        last: bool,
    ) -> Result<(), LockError> {
        debug_assert_eq!(self.running, Some(a));
        self.running = None;
        self.current = Some(a);
        self.trace.0.push(TraceEntry {
            actor: a,
            name: name.to_string(),
            last,
        });
        strategy.observe(a, name, last);
        if last {
            self.finished[a] = true;
            if let Some(&(l, _)) = self.held[a].first() {
                return Err(LockError(format!(
                    "actor {} finished holding {l}",
                    letter(a)
                )));
            }
        }
        Ok(())
    }
}

/// Pull-style actors: the scheduler asks for the next step and runs it.
pub trait Actors {
    /// Why a run failed (an invariant broken by a step).
    type Failure;
    fn count(&self) -> usize;
    /// Actor `a`'s next step, `None` once it finished.
    fn next(&self, a: usize) -> Option<Step>;
    /// Runs actor `a`'s next step, taking and releasing its locks through
    /// `ex`; returns its name and whether the actor is now finished.
    fn run(&mut self, a: usize, ex: &mut Execution) -> Result<(String, bool), Self::Failure>;
}

/// How one schedule of [`drive`] ended.
#[derive(Debug)]
pub enum Ended<F> {
    Done,
    Deadlock,
    /// A step failed.
    Failed(F),
    /// A step broke the lock discipline.
    Lock(LockError),
    /// The schedule itself could not be followed.
    Schedule(ScheduleError),
}

/// Runs `actors` under the next schedule of `strategy`; `None` when the
/// strategy has no schedule left.
pub fn drive<A: Actors>(
    strategy: &mut dyn Strategy,
    actors: &mut A,
) -> Option<(Ended<A::Failure>, Trace)> {
    if !strategy.begin() {
        return None;
    }
    let n = actors.count();
    let mut ex = Execution::new(n);
    let mut next: Vec<Option<Step>> = (0..n).map(|a| actors.next(a)).collect();
    let ended = loop {
        match ex.pick(strategy, &next) {
            Err(e) => break Ended::Schedule(e),
            Ok(Pick::Done) => break Ended::Done,
            Ok(Pick::Deadlock) => break Ended::Deadlock,
            Ok(Pick::Run(a)) => {
                let (name, last) = match actors.run(a, &mut ex) {
                    Ok(r) => r,
                    Err(f) => {
                        ex.fail_step(a);
                        break Ended::Failed(f);
                    }
                };
                if let Err(e) = ex.finish_step(strategy, a, &name, last) {
                    break Ended::Lock(e);
                }
                next[a] = if last { None } else { actors.next(a) };
            }
        }
    };
    let complete = matches!(ended, Ended::Done);
    if let Err(e) = strategy.end(complete)
        && !matches!(ended, Ended::Schedule(_))
    {
        return Some((Ended::Schedule(e), ex.into_trace()));
    }
    Some((ended, ex.into_trace()))
}

/// A small deterministic generator (SplitMix64) for PCT and random walks.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}
