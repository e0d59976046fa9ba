//! `explore:C`: every lock-respecting schedule with at most C preemptions,
//! by depth-first search over decisions (shuttle's `DfsScheduler`, with
//! CHESS' preemption bound). Stateless: each schedule is a fresh run of the
//! block (from a clone of the pre-block machine) that replays the recorded
//! prefix of choices and then takes the non-preempting choice until the
//! end; the next schedule changes the deepest decision that still has an
//! untried option within the bound.

use super::{Decision, ScheduleError, Strategy};

/// One decision point: its options (the non-preempting one first, the
/// others in letter order), the option taken, and whether taking each is a
/// preemption.
#[derive(Clone, Debug)]
struct Level {
    options: Vec<usize>,
    taken: usize,
    /// Preemptions before this decision.
    before: u32,
    /// Whether options other than the first preempt.
    preempting: bool,
}

/// Preemption-bounded exhaustive search.
#[derive(Clone, Debug)]
pub struct Explore {
    bound: u32,
    levels: Vec<Level>,
    /// Decision index within the current schedule.
    depth: usize,
    started: bool,
    schedules: u64,
}

impl Explore {
    pub fn new(bound: u32) -> Explore {
        Explore {
            bound,
            levels: Vec::new(),
            depth: 0,
            started: false,
            schedules: 0,
        }
    }

    /// Schedules begun so far.
    pub fn schedules(&self) -> u64 {
        self.schedules
    }

    /// Moves to the next prefix: the deepest level with an untried option
    /// that keeps within the bound. `false` when the search is over.
    fn advance(&mut self) -> bool {
        while let Some(l) = self.levels.last_mut() {
            let cost = l.before + u32::from(l.preempting);
            if l.taken + 1 < l.options.len() && cost <= self.bound {
                l.taken += 1;
                return true;
            }
            self.levels.pop();
        }
        false
    }
}

impl Strategy for Explore {
    fn begin(&mut self) -> bool {
        if self.started && !self.advance() {
            return false;
        }
        self.started = true;
        self.depth = 0;
        self.schedules += 1;
        true
    }

    fn choose(&mut self, d: &Decision) -> Result<usize, ScheduleError> {
        if d.enabled.len() == 1 {
            return Ok(d.enabled[0]);
        }
        let i = self.depth;
        self.depth += 1;
        if let Some(l) = self.levels.get(i) {
            let mut options = Vec::with_capacity(d.enabled.len());
            order(d, &mut options);
            if options != l.options || l.before != d.preemptions {
                return Err(ScheduleError::Diverged { step: d.step });
            }
            return Ok(l.options[l.taken]);
        }
        let mut options = Vec::with_capacity(d.enabled.len());
        let preempting = order(d, &mut options);
        let a = options[0];
        self.levels.push(Level {
            options,
            taken: 0,
            before: d.preemptions,
            preempting,
        });
        Ok(a)
    }
}

/// The options of a decision, the non-preempting one first; returns
/// whether the others preempt.
fn order(d: &Decision, out: &mut Vec<usize>) -> bool {
    let first = d.default_choice();
    out.push(first);
    out.extend(d.enabled.iter().copied().filter(|&a| a != first));
    d.preempts(out[out.len() - 1])
}
