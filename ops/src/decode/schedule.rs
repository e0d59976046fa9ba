//! Mutating only the schedules of an input's blocks: what the fuzzers'
//! "schedule bytes only" mutation does (libFuzzer's custom mutator and the
//! built-in engine). The ops the input decodes to stay the same; only the
//! decision bytes of one block change, so the same ops run under another
//! interleaving.

use super::{DecodeConfig, MAX_SCHED_BYTES, block_layout};

/// Most decision bytes one insertion or deletion adds or removes.
const MAX_SPLICE: u64 = 4;

/// Mutates the schedule of one block of `data` (decoded with `cfg`), chosen
/// by `rand`, with 1 to 3 edits of its decision bytes: overwrite one, flip
/// one of its bits, add or subtract 1 (the next or previous actor that may
/// run), swap two neighbours, insert or delete up to 4 (the length byte's
/// low 5 bits follow, at most [`MAX_SCHED_BYTES`] bytes and `data` at most
/// `max_size` bytes long). `false`, `data` untouched, when the input has
/// no block, or the chosen block has no decision byte and `data` no room
/// for one.
///
/// Afterwards `decode(data)` has the same ops and blocks as before, every
/// schedule but the chosen one unchanged (see [`block_layout`]).
pub fn mutate_schedule(
    data: &mut Vec<u8>,
    max_size: usize,
    cfg: &DecodeConfig,
    rand: &mut impl FnMut() -> u64,
) -> bool {
    let layout = block_layout(data, cfg);
    if layout.is_empty() {
        return false;
    }
    let block = &layout[below(rand, layout.len())];
    let mut sched = data[block.sched.clone()].to_vec();
    let longest = MAX_SCHED_BYTES.min(sched.len() + max_size.saturating_sub(data.len()));
    if longest == 0 {
        return false;
    }
    for _ in 0..1 + below(rand, 3) {
        let mut edit = below(rand, 6);
        if sched.is_empty() {
            edit = 0;
        }
        if edit == 0 && sched.len() >= longest {
            edit = 2;
        }
        if edit == 5 && sched.len() < 2 {
            edit = 3;
        }
        match edit {
            0 => {
                let at = below(rand, sched.len() + 1);
                let k = 1 + below(rand, MAX_SPLICE as usize).min(longest - sched.len() - 1);
                let new: Vec<u8> = (0..k).map(|_| rand() as u8).collect();
                sched.splice(at..at, new);
            }
            1 => {
                let at = below(rand, sched.len());
                let k = (1 + below(rand, MAX_SPLICE as usize)).min(sched.len() - at);
                sched.drain(at..at + k);
            }
            2 => {
                let at = below(rand, sched.len());
                sched[at] = rand() as u8;
            }
            3 => {
                let at = below(rand, sched.len());
                sched[at] ^= 1 << below(rand, 8);
            }
            4 => {
                let at = below(rand, sched.len());
                sched[at] = if rand() & 1 == 0 {
                    sched[at].wrapping_add(1)
                } else {
                    sched[at].wrapping_sub(1)
                };
            }
            _ => {
                let at = below(rand, sched.len() - 1);
                sched.swap(at, at + 1);
            }
        }
    }
    let len_byte = &mut data[block.len_byte];
    // `sched.len() <= MAX_SCHED_BYTES`, the low 5 bits.
    *len_byte = (*len_byte & !(MAX_SCHED_BYTES as u8)) | sched.len() as u8;
    data.splice(block.sched.clone(), sched);
    true
}

/// A number below `n` (`n > 0`).
fn below(rand: &mut impl FnMut() -> u64, n: usize) -> usize {
    (rand() % n as u64) as usize
}
