//! How often fresh random inputs (what the built-in engine draws half of
//! the time: 0..=400 random bytes through the default decoder) reach the
//! preconditions of B08's race, step by step (docs/fuzzing.md, "B08's
//! shape"), per process:
//!
//! 1. an `mremap` move;
//! 2. a private mapping made right next to the range it vacated, still
//!    mapped (the VMA the range can merge into on its way back);
//! 3. a write into that mapping after both (its fault makes
//!    `anon_vma_prepare` link it after the moved range was);
//! 4. the moved range and that mapping with the same protection (so that
//!    they merge);
//! 5. then a block moving the range back, with a `migrate` of the same
//!    process on a moved page;
//!
//! and, of those at step 5, the inputs that fail under `chain-2010
//! era=2010 bug=b08 bug=b12` and pass with b12 alone (blocks explored:
//! what a b08 hunt accepts).
//!
//! The steps are read from the ops alone, roughly as the decoder's memory
//! (a page's protection is the last `mmap` or `mprotect` over it). `cargo
//! test --release -p rmaplab --test race_shapes -- --ignored --nocapture`
//! prints the counts over 300,000 inputs; the test that is not ignored
//! checks a floor on a smaller sample.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rmaplab::fuzz::engine::fails_baseline;
use rmaplab_impls::designs::registry::DesignSpec;
use rmaplab_ops::decode::{DecodeConfig, decode};
use rmaplab_ops::{Kind, Op, Prot, Stream};

/// What one process did, as far as the stages need it.
#[derive(Clone, Default)]
struct Proc {
    /// Mapped pages and their protection.
    prot: BTreeMap<u64, Prot>,
    /// Moves: (source, destination, length, op index).
    moves: Vec<(u64, u64, u64, usize)>,
    /// Mappings: (address, length, op index).
    mmaps: Vec<(u64, u64, usize)>,
    /// Writes: (address, op index).
    writes: Vec<(u64, usize)>,
}

fn apply(procs: &mut BTreeMap<u32, Proc>, next: &mut u32, op: &Op, i: usize) {
    let Some(pid) = op.pid() else { return };
    match *op {
        Op::Fork { .. } => {
            let child = procs.get(&pid.0).cloned().unwrap_or_default();
            procs.insert(*next, child);
            *next += 1;
            return;
        }
        Op::Exit { .. } => {
            procs.remove(&pid.0);
            return;
        }
        _ => {}
    }
    let q = procs.entry(pid.0).or_default();
    match *op {
        Op::Mmap {
            addr,
            len,
            prot,
            replace,
            kind,
            ..
        } if replace || (addr..addr + len).all(|a| !q.prot.contains_key(&a)) => {
            for a in addr..addr + len {
                q.prot.insert(a, prot);
            }
            // A merge target has an anon_vma: a private mapping.
            if matches!(kind, Kind::Anon | Kind::File { .. }) {
                q.mmaps.push((addr, len, i));
            }
        }
        Op::Munmap { addr, len, .. } => {
            for a in addr..addr.saturating_add(len) {
                q.prot.remove(&a);
            }
        }
        Op::Mprotect {
            addr, len, prot, ..
        } if (addr..addr + len).all(|a| q.prot.contains_key(&a)) => {
            for a in addr..addr + len {
                q.prot.insert(a, prot);
            }
        }
        Op::Mremap {
            old,
            old_len,
            new_len,
            to: Some(t),
            ..
        } if (old..old + old_len).all(|a| q.prot.contains_key(&a)) => {
            let p = q.prot[&old];
            if !t.dontunmap {
                for a in old..old + old_len {
                    q.prot.remove(&a);
                }
            }
            for a in t.new..t.new + new_len {
                q.prot.insert(a, p);
            }
            q.moves.push((old, t.new, old_len.min(new_len), i));
        }
        Op::Write { addr, .. } => q.writes.push((addr, i)),
        _ => {}
    }
}

/// The stages (1..=4) one process reaches at this point for its move
/// `m` and its mappings, and whether the move back of `m` would find the
/// merge target ready (stage 4).
fn stage_of(q: &Proc, m: (u64, u64, u64, usize)) -> u8 {
    let (src, dst, len, moved_at) = m;
    let mut best = 1;
    for &(addr, mlen, mapped_at) in &q.mmaps {
        // Next to the vacated range, outside it.
        if !(addr == src + len || addr + mlen == src) {
            continue;
        }
        // Still mapped as made (not unmapped since).
        if !(addr..addr + mlen).all(|a| q.prot.contains_key(&a)) {
            continue;
        }
        best = best.max(2);
        let after = mapped_at.max(moved_at);
        if !q
            .writes
            .iter()
            .any(|&(a, w)| w > after && (addr..addr + mlen).contains(&a))
        {
            continue;
        }
        best = best.max(3);
        let side = if addr == src + len { addr } else { src - 1 };
        if q.prot.contains_key(&dst) && q.prot.get(&dst) == q.prot.get(&side) {
            best = best.max(4);
        }
    }
    best
}

/// The highest stage (0..=5) `s` reaches by its ops: 1, a move of a
/// range with a written page; 2, a mapping right next to the range it
/// vacated; 3, a write into that mapping after both; 4, the moved range
/// and that mapping with the same protection; 5, then a block moving the
/// range back, a `migrate` of the same process on a moved page.
fn stage(s: &Stream) -> u8 {
    let mut procs: BTreeMap<u32, Proc> = BTreeMap::new();
    procs.insert(0, Proc::default());
    let mut next = 1;
    let mut best = 0;
    let mut blocks = s.blocks.iter().peekable();
    for (i, op) in s.ops.iter().enumerate() {
        if let Some(b) = blocks.peek()
            && b.first == i
        {
            let actors = &s.ops[b.ops()];
            for m in actors {
                let Op::Mremap {
                    pid,
                    old,
                    old_len,
                    to: Some(t),
                    ..
                } = *m
                else {
                    continue;
                };
                let Some(q) = procs.get(&pid.0) else { continue };
                let raced = actors.iter().any(|w| {
                    matches!(*w, Op::Migrate { pid: p, addr } if p == pid
                        && (old..old + old_len).contains(&addr))
                });
                let back = q
                    .moves
                    .iter()
                    .rev()
                    .find(|&&(src, dst, len, _)| dst == old && src == t.new && len == old_len);
                if let Some(&mv) = back
                    && raced
                    && stage_of(q, mv) >= 4
                {
                    best = 5;
                }
            }
        }
        if blocks.peek().is_some_and(|b| i + 1 == b.first + b.actors) {
            blocks.next();
        }
        apply(&mut procs, &mut next, op, i);
        for q in procs.values() {
            for &mv in &q.moves {
                best = best.max(stage_of(q, mv));
            }
        }
    }
    best
}

/// Counts of inputs reaching stages 1..=5 ([`stage`]) of `n` fresh random
/// inputs, and failing B08 and not B12 alone (their racing blocks
/// explored).
fn measure(n: u64, seed: u64) -> [u64; 6] {
    let cfg = DecodeConfig::default();
    let b08: Vec<DesignSpec> = vec!["chain-2010 era=2010 bug=b08 bug=b12".parse().unwrap()];
    let b12: Vec<DesignSpec> = vec!["chain-2010 era=2010 bug=b12".parse().unwrap()];
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut counts = [0u64; 6];
    for _ in 0..n {
        let len = rng.random_range(0..=400);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let s = decode(&bytes, &cfg);
        let st = stage(&s);
        for c in counts.iter_mut().take(usize::from(st)) {
            *c += 1;
        }
        if st >= 5 && fails_baseline(&s, &b08) && !fails_baseline(&s, &b12) {
            counts[5] += 1;
        }
    }
    counts
}

/// The floor the decoder's aims keep on a small sample (seeded, so the
/// counts are fixed: 6,637, 1,956, 694, 481 and 10 when written): steps 1-4
/// are common, and a block moves the range back after them (step 5), which
/// without a block's move back came 2 times in 300,000 (61 with it).
#[test]
fn fresh_inputs_reach_b08s_preconditions() {
    let c = measure(20_000, 1);
    eprintln!("stages 1-5 and failures of 20,000 fresh inputs: {c:?}");
    assert!(c[1] >= 1000 && c[3] >= 300 && c[4] >= 4, "{c:?}");
}

#[test]
#[ignore = "a measurement: cargo test --release -p rmaplab --test race_shapes -- --ignored --nocapture"]
fn measure_b08_stages() {
    let c = measure(300_000, 7);
    eprintln!("stages 1-5 and failures of 300,000 fresh inputs: {c:?}");
}
