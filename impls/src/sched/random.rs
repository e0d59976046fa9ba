//! `random:SEED`: one schedule, a uniform choice among the enabled actors
//! at each decision.

use super::{Decision, Rng, ScheduleError, Strategy};

#[derive(Clone, Debug)]
pub struct RandomWalk {
    rng: Rng,
    used: bool,
}

impl RandomWalk {
    pub fn new(seed: u64) -> RandomWalk {
        RandomWalk {
            rng: Rng::new(seed),
            used: false,
        }
    }
}

impl Strategy for RandomWalk {
    fn begin(&mut self) -> bool {
        !std::mem::replace(&mut self.used, true)
    }
    fn choose(&mut self, d: &Decision) -> Result<usize, ScheduleError> {
        if d.enabled.len() == 1 {
            return Ok(d.enabled[0]);
        }
        Ok(d.enabled[self.rng.below(d.enabled.len())])
    }
}
