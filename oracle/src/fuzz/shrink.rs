//! Delta debugging of failing streams: remove ops and simplify arguments
//! while the same design still fails the same invariant (and, for a panic,
//! panics with the same message).

use rmaplab_impls::designs::registry::DesignSpec;

use crate::oracle::check::{Broken, invariant};
use crate::run::panic::{Panic, catch};
use crate::run::runner::{RunOptions, run_all};
use rmaplab_ops::{MremapTo, Op, Stream};

/// What a failure is, for "still the same failure" decisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The design run that failed (label), `differential`, or [`RMAPLAB`]
    /// for a panic outside every design's run.
    pub who: String,
    pub invariant: String,
    /// The message of a `panic` (without its location): a shrunk stream
    /// must panic the same way, not just somewhere.
    pub panic: Option<String>,
}

/// [`Signature::who`] of a panic outside the designs' runs (comparing
/// them, building the report).
pub const RMAPLAB: &str = "rmaplab";

impl Signature {
    /// The signature of `who` failing with `broken`.
    pub fn new(who: impl Into<String>, broken: &Broken) -> Signature {
        Signature {
            who: who.into(),
            invariant: broken.invariant.clone(),
            panic: (broken.invariant == invariant::PANIC)
                .then(|| Panic::message_of(&broken.detail).to_string()),
        }
    }

    /// The signature of a panic outside the designs' runs.
    pub fn outside(p: &Panic) -> Signature {
        Signature {
            who: RMAPLAB.into(),
            invariant: invariant::PANIC.into(),
            panic: Some(p.message.clone()),
        }
    }
}

/// Runs `stream` on `specs` and returns the first failure's signature.
pub fn signature(stream: &Stream, specs: &[DesignSpec]) -> Option<Signature> {
    let (runs, cmp) = match catch(|| run_all(stream, specs, &RunOptions::fuzzing())) {
        Ok(r) => r,
        Err(p) => return Some(Signature::outside(&p)),
    };
    for (spec, run) in specs.iter().zip(&runs) {
        if let Some(f) = &run.failure {
            return Some(Signature::new(spec.label(), &f.broken));
        }
    }
    cmp.failure
        .map(|f| Signature::new(invariant::DIFFERENTIAL, &f.broken))
}

/// Shrinks `stream` while `signature` stays `want`. Deterministic; bounded
/// by `max_runs` executions.
pub fn shrink(stream: &Stream, specs: &[DesignSpec], want: &Signature, max_runs: usize) -> Stream {
    let runs = std::cell::Cell::new(0usize);
    let still_fails = |ops: &[Op]| -> bool {
        runs.set(runs.get() + 1);
        let s = Stream::from_ops(ops.to_vec());
        signature(&s, specs).as_ref() == Some(want)
    };
    let mut ops = stream.ops.clone();
    // ddmin over chunks of ops, chunk size halving down to 1.
    let mut chunk = ops.len().div_ceil(2).max(1);
    loop {
        let mut changed = false;
        let mut start = 0;
        while start < ops.len() {
            if runs.get() >= max_runs {
                return Stream::from_ops(ops);
            }
            let end = (start + chunk).min(ops.len());
            let candidate: Vec<Op> = ops[..start].iter().chain(&ops[end..]).copied().collect();
            if still_fails(&candidate) {
                ops = candidate;
                changed = true;
            } else {
                start = end;
            }
        }
        if chunk == 1 && !changed {
            break;
        }
        if !changed {
            chunk = chunk.div_ceil(2);
        }
    }
    // Simplify each op's arguments.
    let mut i = 0;
    while i < ops.len() {
        for candidate in simpler(&ops[i]) {
            if runs.get() >= max_runs {
                return Stream::from_ops(ops);
            }
            let mut trial = ops.clone();
            trial[i] = candidate;
            if still_fails(&trial) {
                ops = trial;
            }
        }
        i += 1;
    }
    Stream::from_ops(ops)
}

/// Simpler variants of one op, most aggressive first.
fn simpler(op: &Op) -> Vec<Op> {
    let mut v = Vec::new();
    match *op {
        Op::Mmap {
            pid,
            addr,
            len,
            prot,
            kind,
            replace,
        } => {
            if replace {
                v.push(Op::Mmap {
                    pid,
                    addr,
                    len,
                    prot,
                    kind,
                    replace: false,
                });
            }
            if len > 1 {
                v.push(Op::Mmap {
                    pid,
                    addr,
                    len: len - 1,
                    prot,
                    kind,
                    replace,
                });
            }
        }
        Op::Munmap { pid, addr, len } if len > 1 => v.push(Op::Munmap {
            pid,
            addr,
            len: len - 1,
        }),
        Op::Mprotect {
            pid,
            addr,
            len,
            prot,
        } if len > 1 => v.push(Op::Mprotect {
            pid,
            addr,
            len: len - 1,
            prot,
        }),
        Op::Madvise {
            pid,
            addr,
            len,
            advice,
        } if len > 1 => v.push(Op::Madvise {
            pid,
            addr,
            len: len - 1,
            advice,
        }),
        Op::Mremap {
            pid,
            old,
            old_len,
            new_len,
            to: Some(MremapTo { new, dontunmap }),
        } if dontunmap => v.push(Op::Mremap {
            pid,
            old,
            old_len,
            new_len,
            to: Some(MremapTo {
                new,
                dontunmap: false,
            }),
        }),
        Op::Write { pid, addr, value } if value > 1 => {
            v.push(Op::Write {
                pid,
                addr,
                value: 1,
            });
        }
        _ => {}
    }
    v
}
