//! How often fresh random inputs (0..=400 random bytes through the default
//! decoder, what the built-in engine draws half of the time) reach the
//! preconditions of the 6.4 per-VMA-lock races (docs/fuzzing.md, "B18's
//! shapes"), step by step, per process, split by the swarm header's bit 5
//! (the per-VMA-lock aims: set in half of the inputs, which otherwise
//! decode as the other half would).
//!
//! b18b (a merge sets an unfaulted VMA's anon_vma under a fault's VMA
//! lock):
//! 1. a faulted mapping (a write gave it an anon_vma) right next to an
//!    unfaulted one with another protection;
//! 2. then a block whose mutator is an mprotect of a range of the faulted
//!    mapping next to the unfaulted one, to its protection (they merge,
//!    `dup_anon_vma` into the unfaulted VMA);
//! 3. with a fault of the same process on a page of the unfaulted one;
//!
//! b18a (a write fault's VMA loses its anon_vma between lookup and lock):
//! 1. a faulted mapping;
//! 2. then a block whose mutator is an `mremap … dontunmap` whose source
//!    is in a faulted mapping;
//! 3. with a write fault of the same process on a page of the source;
//!
//! and, of those at step 3, the inputs that fail with the bug injected
//! and pass without it (blocks explored: what a hunt accepts).
//!
//! The steps are read from the ops alone, roughly (a mapping is a run of
//! pages with one protection; a write to a writable page marks its
//! mapping faulted, a merge by mprotect spreads the mark, a move carries
//! it and `dontunmap` clears the source's). `cargo test --release -p
//! rmaplab --test vmalock_shapes -- --ignored --nocapture` prints the
//! counts over 300,000 inputs; the test that is not ignored checks a floor
//! on a smaller sample.

mod common;

use common::pages::{Model, Moves, Rules, faulted, mapping};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rmaplab::fuzz::engine::fails_baseline;
use rmaplab::fuzz::zoo::hunt_baseline;
use rmaplab_impls::designs::registry::DesignSpec;
use rmaplab_ops::decode::{DecodeConfig, decode};
use rmaplab_ops::{Op, Stream};

/// The page model's rules here: the mark is "the mapping is faulted" (a
/// write while writable sets it, and it spreads over the mapping around a
/// write or an mprotect); moves carry each page's protection and mark,
/// `dontunmap` clears the source's.
const RULES: Rules = Rules {
    mark_run: true,
    dontneed_clears: false,
    moves: Moves::PerPage,
};

/// The highest stages (0..=3) `s` reaches by its ops: (b18b, b18a).
fn stages(s: &Stream) -> (u8, u8) {
    let mut model = Model::new(RULES);
    let (mut b, mut a) = (0, 0);
    let mut blocks = s.blocks.iter().peekable();
    for (i, op) in s.ops.iter().enumerate() {
        if let Some(blk) = blocks.peek()
            && blk.first == i
        {
            let actors = &s.ops[blk.ops()];
            for m in actors {
                match *m {
                    Op::Mprotect {
                        pid,
                        addr,
                        len,
                        prot,
                    } => {
                        let Some(q) = model.procs.get(&pid.0).map(|p| &p.pages) else {
                            continue;
                        };
                        let Some((lo, hi, _)) = mapping(q, addr) else {
                            continue;
                        };
                        if !faulted(q, lo, hi) || addr + len > hi {
                            continue;
                        }
                        // The unfaulted neighbour the range touches.
                        let near = [
                            (addr + len == hi).then_some(hi),
                            (addr == lo).then(|| lo.checked_sub(1)).flatten(),
                        ];
                        for n in near.into_iter().flatten() {
                            let Some((nlo, nhi, np)) = mapping(q, n) else {
                                continue;
                            };
                            if np != prot || faulted(q, nlo, nhi) {
                                continue;
                            }
                            b = b.max(2);
                            let faults = actors.iter().any(|f| {
                                matches!(*f, Op::Read { pid: p, addr: x } | Op::Write { pid: p, addr: x, .. }
                                    if p == pid && (nlo..nhi).contains(&x))
                            });
                            if faults {
                                b = 3;
                            }
                        }
                    }
                    Op::Mremap {
                        pid,
                        old,
                        old_len,
                        to: Some(t),
                        ..
                    } if t.dontunmap => {
                        let Some(q) = model.procs.get(&pid.0).map(|p| &p.pages) else {
                            continue;
                        };
                        if !q.get(&old).is_some_and(|x| x.1) {
                            continue;
                        }
                        a = a.max(2);
                        let faults = actors.iter().any(|f| {
                            matches!(*f, Op::Write { pid: p, addr: x, .. }
                                if p == pid && (old..old + old_len).contains(&x))
                        });
                        if faults {
                            a = 3;
                        }
                    }
                    _ => {}
                }
            }
        }
        if blocks
            .peek()
            .is_some_and(|blk| i + 1 == blk.first + blk.actors)
        {
            blocks.next();
        }
        model.apply(op, i);
        for q in model.procs.values().map(|p| &p.pages) {
            for (&x, &(prot, f)) in q {
                if !f {
                    continue;
                }
                a = a.max(1);
                let (lo, hi, _) = mapping(q, x).expect("mapped");
                let unfaulted = |n: u64| {
                    mapping(q, n).is_some_and(|(nlo, nhi, np)| np != prot && !faulted(q, nlo, nhi))
                };
                if unfaulted(hi) || lo.checked_sub(1).is_some_and(unfaulted) {
                    b = b.max(1);
                }
            }
        }
    }
    (b, a)
}

/// Per bit-5 half (clear, set): counts of inputs reaching steps 1..=3 of
/// b18b and failing it, then the same for b18a, of the `n` fresh inputs
/// whose merge-aim bit (6) is clear.
fn measure(n: u64, seed: u64) -> [[u64; 8]; 2] {
    let cfg = DecodeConfig::default();
    let specs = |bug| -> Vec<DesignSpec> {
        vec![
            format!("chain-2010 era=2022 bug={bug}")
                .parse()
                .expect("spec"),
        ]
    };
    let (b18b, b18a) = (specs("b18b"), specs("b18a"));
    let (base_b, base_a) = (hunt_baseline("b18b"), hunt_baseline("b18a"));
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut counts = [[0u64; 8]; 2];
    for _ in 0..n {
        let bytes = common::fresh_input(&mut rng);
        let half = match bytes.get(..3) {
            Some(&[k0, k1, m]) => usize::from((k0 ^ k1 ^ m) & 0x20 != 0),
            _ => 0,
        };
        // Inputs with the merge aim's bit (6) are left out: its boundary
        // mprotects reach b18b's step 2 by themselves in both halves, and
        // they take a block's mutator before this aim can.
        if let Some(&[k0, k1, m]) = bytes.get(..3)
            && (k0 ^ k1 ^ m) & 0x40 != 0
        {
            continue;
        }
        let s = decode(&bytes, &cfg);
        let (b, a) = stages(&s);
        let c = &mut counts[half];
        for x in c[..4].iter_mut().take(usize::from(b)) {
            *x += 1;
        }
        for x in c[4..].iter_mut().take(usize::from(a)) {
            *x += 1;
        }
        if b >= 3 && fails_baseline(&s, &b18b) && !fails_baseline(&s, &base_b) {
            c[3] += 1;
        }
        if a >= 3 && fails_baseline(&s, &b18a) && !fails_baseline(&s, &base_a) {
            c[7] += 1;
        }
    }
    counts
}

/// The floor the aims keep on a small sample (seeded, so the counts are
/// fixed: of the inputs with bit 6 clear, with bit 5 clear 4, 1 at b18b's
/// steps 2-3 and 1 at b18a's step 3, with it set 13, 2 and 2 since the
/// merge aim joined the decoder): with bit 5 set, blocks reach
/// both races' steps 2 and 3 more often (docs/fuzzing.md, "B18's
/// shapes").
#[test]
fn fresh_inputs_reach_b18s_preconditions() {
    let [clear, set] = measure(20_000, 1);
    eprintln!("bit 5 clear: {clear:?}\nbit 5 set:   {set:?}");
    assert!(set[1] >= 2 * clear[1].max(1), "{clear:?} {set:?}");
    assert!(set[2] >= 2 * clear[2].max(1), "{clear:?} {set:?}");
    assert!(set[6] >= 2 * clear[6].max(1), "{clear:?} {set:?}");
}

#[test]
#[ignore = "a measurement: cargo test --release -p rmaplab --test vmalock_shapes -- --ignored --nocapture"]
fn measure_b18_stages() {
    let [clear, set] = measure(300_000, 7);
    eprintln!("300,000 fresh inputs, b18b 1-3 fail, b18a 1-3 fail");
    eprintln!("bit 5 clear: {clear:?}\nbit 5 set:   {set:?}");
}
