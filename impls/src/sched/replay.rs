//! The run-length schedule form (`A2 B..w1.lock A*`). `Xn` runs actor X
//! for up to n steps, `X..LABEL` up to and including its first step named
//! LABEL, `X*` until it finishes. Lenient: an item whose actor cannot run
//! (blocked or finished) ends there and the next item starts. Strict
//! (`! ...`): an item that cannot run as written is an error. After the
//! list, the unfinished actors run in letter order: the current actor while
//! it may, else the lowest enabled letter.

use super::{Decision, Item, RunLen, ScheduleError, Strategy, letter};

#[derive(Clone, Debug)]
pub struct Replay {
    items: Vec<Item>,
    strict: bool,
    pos: usize,
    /// Steps taken by the current item.
    done: u32,
    used: bool,
}

impl Replay {
    pub fn new(items: Vec<Item>, strict: bool) -> Replay {
        Replay {
            items,
            strict,
            pos: 0,
            done: 0,
            used: false,
        }
    }

    fn next_item(&mut self) {
        self.pos += 1;
        self.done = 0;
    }

    fn strict_error(&self, detail: String) -> ScheduleError {
        ScheduleError::Strict {
            item: self.pos,
            detail: format!("{}: {detail}", self.items[self.pos]),
        }
    }
}

impl Strategy for Replay {
    fn begin(&mut self) -> bool {
        self.pos = 0;
        self.done = 0;
        !std::mem::replace(&mut self.used, true)
    }

    fn choose(&mut self, d: &Decision) -> Result<usize, ScheduleError> {
        while let Some(it) = self.items.get(self.pos) {
            let a = it.actor;
            if a < d.finished.len() && d.enabled.contains(&a) {
                return Ok(a);
            }
            if self.strict {
                let finished = d.finished.get(a).copied().unwrap_or(true);
                let why = if a >= d.finished.len() {
                    format!("there is no actor {}", letter(a))
                } else if finished {
                    if it.run == RunLen::Finish && self.done > 0 {
                        // X* ran to the end already.
                        self.next_item();
                        continue;
                    }
                    format!("actor {} has finished", letter(a))
                } else {
                    format!("actor {} is blocked", letter(a))
                };
                return Err(self.strict_error(why));
            }
            self.next_item();
        }
        Ok(d.default_choice())
    }

    fn observe(&mut self, actor: usize, name: &str, finished: bool) {
        let Some(it) = self.items.get(self.pos) else {
            return;
        };
        if it.actor != actor {
            return;
        }
        self.done += 1;
        let over = match &it.run {
            RunLen::Steps(n) => self.done >= *n,
            RunLen::Until(l) => l == name,
            RunLen::Finish => finished,
        };
        if over || (finished && !self.strict) {
            self.next_item();
        }
    }

    fn end(&mut self, complete: bool) -> Result<(), ScheduleError> {
        if self.strict && complete && self.pos < self.items.len() {
            // Every actor finished with items left: only an `X*` whose
            // actor finished inside it is satisfied.
            return Err(self.strict_error("every actor has finished before it".into()));
        }
        Ok(())
    }
}
