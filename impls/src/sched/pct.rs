//! `pct:SEED:DEPTH`: one schedule drawn by PCT (Burckhardt, Kothari,
//! Musuvathi, Nagarakatte, ASPLOS 2010): the actors get distinct random
//! priorities (DEPTH and up), DEPTH - 1 change points are drawn over the
//! expected number of decisions, and at each decision the enabled actor of
//! highest priority runs; at change point i the actor about to run drops
//! to priority i. As in shuttle's `PctScheduler`, only decisions (steps
//! where two or more actors may run) count, so forced steps move no change
//! point.

use super::{Decision, MAX_ACTORS, Rng, ScheduleError, Strategy};

#[derive(Clone, Debug)]
pub struct Pct {
    seed: u64,
    depth: u32,
    horizon: usize,
    priorities: [u64; MAX_ACTORS],
    /// `(decision index, new priority)`, sorted by index.
    changes: Vec<(usize, u64)>,
    decisions: usize,
    used: bool,
}

impl Pct {
    /// `horizon`: the expected number of decisions (or steps) of one
    /// schedule; change points are drawn in `0..horizon`.
    pub fn new(seed: u64, depth: u32, horizon: usize) -> Pct {
        Pct {
            seed,
            depth: depth.max(1),
            horizon: horizon.max(1),
            priorities: [0; MAX_ACTORS],
            changes: Vec::new(),
            decisions: 0,
            used: false,
        }
    }
}

impl Strategy for Pct {
    fn begin(&mut self) -> bool {
        if std::mem::replace(&mut self.used, true) {
            return false;
        }
        let mut rng = Rng::new(self.seed);
        let base = u64::from(self.depth);
        // A random permutation of DEPTH .. DEPTH + MAX_ACTORS (Fisher-Yates).
        let mut p: [u64; MAX_ACTORS] = std::array::from_fn(|i| base + i as u64);
        for i in (1..MAX_ACTORS).rev() {
            p.swap(i, rng.below(i + 1));
        }
        self.priorities = p;
        self.changes = (1..self.depth)
            .map(|i| (rng.below(self.horizon), u64::from(self.depth - i)))
            .collect();
        self.changes.sort_by_key(|&(at, _)| at);
        self.decisions = 0;
        true
    }

    fn choose(&mut self, d: &Decision) -> Result<usize, ScheduleError> {
        if d.enabled.len() == 1 {
            return Ok(d.enabled[0]);
        }
        let i = self.decisions;
        self.decisions += 1;
        let best = |p: &[u64; MAX_ACTORS]| {
            *d.enabled
                .iter()
                .max_by_key(|&&a| p[a])
                .expect("an enabled actor")
        };
        for &(_, prio) in self.changes.iter().filter(|&&(at, _)| at == i) {
            let a = best(&self.priorities);
            self.priorities[a] = prio;
        }
        Ok(best(&self.priorities))
    }
}
