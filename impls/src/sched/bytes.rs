//! `#HEX`: one schedule from raw decision bytes, as the fuzzers write them.
//! Decision i (a step where two or more actors may run) takes byte i
//! modulo the number of enabled actors; past the last byte, the lowest
//! letter.

use super::{Decision, ScheduleError, Strategy};

#[derive(Clone, Debug)]
pub struct Bytes {
    data: Vec<u8>,
    next: usize,
    used: bool,
}

impl Bytes {
    pub fn new(data: Vec<u8>) -> Bytes {
        Bytes {
            data,
            next: 0,
            used: false,
        }
    }
}

impl Strategy for Bytes {
    fn begin(&mut self) -> bool {
        self.next = 0;
        !std::mem::replace(&mut self.used, true)
    }
    fn choose(&mut self, d: &Decision) -> Result<usize, ScheduleError> {
        if d.enabled.len() == 1 {
            return Ok(d.enabled[0]);
        }
        let i = self.next;
        self.next += 1;
        Ok(match self.data.get(i) {
            Some(&b) => d.enabled[b as usize % d.enabled.len()],
            None => d.enabled[0],
        })
    }
}
