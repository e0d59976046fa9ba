//! Delta debugging of failing streams: remove ops and simplify arguments
//! while the same design still fails the same invariant (and, for a panic,
//! panics with the same message).
//!
//! A stream with concurrent blocks ([`shrink_blocks`]) is shrunk with every
//! block pinned to the schedule it ran on the failing path (lenient while
//! ops change, so that a removed actor is no input error), then each
//! schedule is shortened, and at the end every block is pinned to the
//! strict form of the schedule that fails, so the result replays exactly.

use rmaplab_impls::designs::registry::DesignSpec;

use crate::oracle::check::{Broken, invariant};
use crate::run::panic::{Panic, catch};
use crate::run::runner::{RunOptions, RunReport, run_all};
use rmaplab_ops::print::print_op;
use rmaplab_ops::{MremapTo, Op, RunItem, Sched, Stream};

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
    shrink_keeping(stream, specs, want, max_runs, &|_| true)
}

/// [`shrink`], every smaller stream also satisfying `keep` (checked only
/// on a stream whose signature is `want`): for a hunt with a baseline,
/// that it still passes there, so that shrinking does not turn the bug's
/// race into the baseline's own.
pub fn shrink_keeping(
    stream: &Stream,
    specs: &[DesignSpec],
    want: &Signature,
    max_runs: usize,
    keep: &dyn Fn(&Stream) -> bool,
) -> Stream {
    if !stream.blocks.is_empty() {
        return shrink_blocks_keeping(stream, specs, want, max_runs, keep);
    }
    let runs = std::cell::Cell::new(0usize);
    let still_fails = |ops: &[Op]| -> bool {
        runs.set(runs.get() + 1);
        let s = Stream::from_ops(ops.to_vec());
        signature(&s, specs).as_ref() == Some(want) && keep(&s)
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

/// One op of a stream being shrunk, with the block it belongs to (blocks
/// keep their number while ops are removed; a block left with one actor
/// becomes a plain op).
#[derive(Clone, Debug)]
struct Slot {
    op: Op,
    block: Option<usize>,
}

/// The stream of `slots` with block `k` running `scheds[k]`, through its
/// text (so lines are those of the canonical print). `None` if it does
/// not parse (a block of more actors than the language allows).
fn build(slots: &[Slot], scheds: &[Sched]) -> Option<Stream> {
    let mut text = String::from("version 2\n");
    let mut i = 0;
    while i < slots.len() {
        let b = slots[i].block;
        let mut j = i + 1;
        while b.is_some() && j < slots.len() && slots[j].block == b {
            j += 1;
        }
        match b {
            Some(k) if j - i >= 2 => {
                text.push_str("par\n");
                for s in &slots[i..j] {
                    text.push_str(&format!("  {}\n", print_op(&s.op)));
                }
                text.push_str(&format!("end sched {}\n", scheds[k]));
            }
            _ => {
                for s in &slots[i..j] {
                    text.push_str(&format!("{}\n", print_op(&s.op)));
                }
            }
        }
        i = j;
    }
    rmaplab_ops::parse::parse(&text).ok()
}

/// The failing run of `stream` on `specs` (the first that fails).
fn failing_run(stream: &Stream, specs: &[DesignSpec]) -> Option<RunReport> {
    let (runs, _) = catch(|| run_all(stream, specs, &RunOptions::fuzzing())).ok()?;
    runs.into_iter().find(|r| r.failure.is_some())
}

/// The schedule each block of `stream` ran on the failing path (strict),
/// or its own schedule when the failure came before it.
fn failing_scheds(stream: &Stream, specs: &[DesignSpec]) -> Vec<Sched> {
    let run = failing_run(stream, specs);
    stream
        .blocks
        .iter()
        .enumerate()
        .map(|(k, b)| {
            run.as_ref()
                .and_then(|r| r.blocks.get(k))
                .and_then(|br| crate::run::runner::parse_sched(&br.schedule).ok())
                .unwrap_or_else(|| b.sched.clone())
        })
        .collect()
}

/// `sched` in the lenient run-length form (a strict one loses its `!`).
pub fn lenient(sched: &Sched) -> Sched {
    match sched {
        Sched::Steps { items, .. } => Sched::Steps {
            strict: false,
            items: items.clone(),
        },
        other => other.clone(),
    }
}

/// Shorter variants of a schedule: each item removed, and each `X<n>`
/// with a smaller count.
fn simpler_scheds(sched: &Sched) -> Vec<Sched> {
    let Sched::Steps { items, strict } = sched else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for i in 0..items.len() {
        if items.len() > 1 {
            let mut fewer: Vec<RunItem> = items.clone();
            fewer.remove(i);
            v.push(Sched::Steps {
                strict: *strict,
                items: fewer,
            });
        }
        if let rmaplab_ops::RunStop::Steps(n) = items[i].stop
            && n > 1
        {
            let mut less = items.clone();
            less[i].stop = rmaplab_ops::RunStop::Steps(n - 1);
            v.push(Sched::Steps {
                strict: *strict,
                items: less,
            });
        }
    }
    v
}

/// [`shrink`] of a stream with concurrent blocks.
pub fn shrink_blocks(
    stream: &Stream,
    specs: &[DesignSpec],
    want: &Signature,
    max_runs: usize,
) -> Stream {
    shrink_blocks_keeping(stream, specs, want, max_runs, &|_| true)
}

/// [`shrink_blocks`] under [`shrink_keeping`]'s `keep`.
fn shrink_blocks_keeping(
    stream: &Stream,
    specs: &[DesignSpec],
    want: &Signature,
    max_runs: usize,
    keep: &dyn Fn(&Stream) -> bool,
) -> Stream {
    let runs = std::cell::Cell::new(0usize);
    let fails = |s: &Stream| -> bool {
        runs.set(runs.get() + 1);
        signature(s, specs).as_ref() == Some(want) && keep(s)
    };
    let mut slots: Vec<Slot> = (0..stream.ops.len())
        .map(|i| Slot {
            op: stream.ops[i],
            block: stream.blocks.iter().position(|b| b.ops().contains(&i)),
        })
        .collect();
    // The failing path's schedules, lenient while ops change.
    let pinned = failing_scheds(stream, specs);
    let mut scheds: Vec<Sched> = pinned.iter().map(lenient).collect();
    let original = stream.clone();
    let best = |slots: &[Slot], scheds: &[Sched]| build(slots, scheds);
    if best(&slots, &scheds).is_none_or(|s| !fails(&s)) {
        // Pinning lost the failure (it should not): shrink nothing.
        return original;
    }
    // ddmin over ops (actors included), chunk size halving down to 1.
    let mut chunk = slots.len().div_ceil(2).max(1);
    loop {
        let mut changed = false;
        let mut start = 0;
        while start < slots.len() {
            if runs.get() >= max_runs {
                return finish(&slots, &scheds, specs, want, keep);
            }
            let end = (start + chunk).min(slots.len());
            let candidate: Vec<Slot> = slots[..start]
                .iter()
                .chain(&slots[end..])
                .cloned()
                .collect();
            if best(&candidate, &scheds).is_some_and(|s| fails(&s)) {
                slots = candidate;
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
    // A block whose ops fail as well in sequence becomes plain ops (its
    // schedules no longer multiply those of the other blocks).
    let mut blocks: Vec<usize> = slots.iter().filter_map(|x| x.block).collect();
    blocks.dedup();
    for k in blocks {
        if runs.get() >= max_runs {
            return finish(&slots, &scheds, specs, want, keep);
        }
        let trial: Vec<Slot> = slots
            .iter()
            .map(|x| Slot {
                op: x.op,
                block: x.block.filter(|&b| b != k),
            })
            .collect();
        if best(&trial, &scheds).is_some_and(|s| fails(&s)) {
            slots = trial;
        }
    }
    // Simplify each op's arguments.
    for i in 0..slots.len() {
        for candidate in simpler(&slots[i].op) {
            if runs.get() >= max_runs {
                return finish(&slots, &scheds, specs, want, keep);
            }
            let mut trial = slots.clone();
            trial[i].op = candidate;
            if best(&trial, &scheds).is_some_and(|s| fails(&s)) {
                slots = trial;
            }
        }
    }
    // Then the schedules: shorter run-length lists, smaller counts.
    for k in 0..scheds.len() {
        let mut progress = true;
        while progress {
            progress = false;
            for candidate in simpler_scheds(&scheds[k]) {
                if runs.get() >= max_runs {
                    return finish(&slots, &scheds, specs, want, keep);
                }
                let mut trial = scheds.clone();
                trial[k] = candidate;
                if best(&slots, &trial).is_some_and(|s| fails(&s)) {
                    scheds = trial;
                    progress = true;
                    break;
                }
            }
        }
    }
    finish(&slots, &scheds, specs, want, keep)
}

/// The shrunk stream with every block pinned to the strict form of the
/// schedule it ran on the failing path, so that it replays exactly that
/// interleaving (kept lenient if the strict form would not fail alike).
fn finish(
    slots: &[Slot],
    scheds: &[Sched],
    specs: &[DesignSpec],
    want: &Signature,
    keep: &dyn Fn(&Stream) -> bool,
) -> Stream {
    let Some(s) = build(slots, scheds) else {
        unreachable!("every kept candidate parsed")
    };
    let strict = failing_scheds(&s, specs);
    // Blocks that became plain ops keep no schedule: map by block number.
    let mut all = scheds.to_vec();
    let mut present: Vec<usize> = slots.iter().filter_map(|x| x.block).collect();
    present.dedup();
    let kept: Vec<usize> = present
        .into_iter()
        .filter(|&k| slots.iter().filter(|x| x.block == Some(k)).count() >= 2)
        .collect();
    for (n, &k) in kept.iter().enumerate() {
        if let Some(sc) = strict.get(n) {
            all[k] = sc.clone();
        }
    }
    match build(slots, &all) {
        Some(t) if signature(&t, specs).as_ref() == Some(want) && keep(&t) => t,
        _ => s,
    }
}
