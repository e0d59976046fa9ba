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

mod common;

use std::collections::BTreeMap;

use common::pages::{Model, Moves, Proc, Rules};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rmaplab::fuzz::engine::check_stream;
use rmaplab::fuzz::engine::{fails_baseline, mutate_bytes};
use rmaplab::fuzz::mutate::mutate_ops;
use rmaplab_impls::designs::registry::DesignSpec;
use rmaplab_impls::mmu::{Mmu, Vma};
use rmaplab_impls::rmap::Rmap;
use rmaplab_ops::decode::{DecodeConfig, decode};
use rmaplab_ops::{Op, Stream};

/// The page model's rules here: protections and the logs of moves,
/// mappings and writes (the marks are not read); every page a move maps
/// takes the protection of the source's first page.
const RULES: Rules = Rules {
    mark_run: false,
    dontneed_clears: false,
    moves: Moves::FirstProt,
};

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
        if !(addr..addr + mlen).all(|a| q.pages.contains_key(&a)) {
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
        if q.pages.contains_key(&dst)
            && q.pages.get(&dst).map(|x| x.0) == q.pages.get(&side).map(|x| x.0)
        {
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
    stage_at(s).0
}

/// [`stage`], and for stage 5 the block (its index in `s.blocks`), its
/// move back (op index) and the racing `migrate` (op index).
fn stage_at(s: &Stream) -> (u8, Option<(usize, usize, usize)>) {
    let mut at = None;
    let mut model = Model::new(RULES);
    let mut best = 0;
    let mut blocks = s.blocks.iter().enumerate().peekable();
    for (i, op) in s.ops.iter().enumerate() {
        if let Some(&(bi, b)) = blocks.peek()
            && b.first == i
        {
            let actors = &s.ops[b.ops()];
            for (mi, m) in actors.iter().enumerate() {
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
                let Some(q) = model.procs.get(&pid.0) else {
                    continue;
                };
                let raced = actors.iter().position(|w| {
                    matches!(*w, Op::Migrate { pid: p, addr } if p == pid
                        && (old..old + old_len).contains(&addr))
                });
                let back = q
                    .moves
                    .iter()
                    .rev()
                    .find(|&&(src, dst, len, _)| dst == old && src == t.new && len == old_len);
                if let Some(&mv) = back
                    && let Some(w) = raced
                    && stage_of(q, mv) >= 4
                {
                    best = 5;
                    at = Some((bi, b.first + mi, b.first + w));
                }
            }
        }
        if blocks
            .peek()
            .is_some_and(|&(_, b)| i + 1 == b.first + b.actors)
        {
            blocks.next();
        }
        model.apply(op, i);
        for q in model.procs.values() {
            for &mv in &q.moves {
                best = best.max(stage_of(q, mv));
            }
        }
    }
    (best, at)
}

/// The first reason (in the order B08's race needs them) why a stream at
/// stage 5 ([`stage_at`]: block `bi`, its move back at op `mover`, its
/// `migrate` at op `walker`) does not fail B08 alone, read from the
/// machine of `chain-2010 era=2010 bug=b08 bug=b12` after the ops before
/// the block (earlier blocks run in op order).
fn diagnose(s: &Stream, (bi, mover, walker): (usize, usize, usize)) -> &'static str {
    let b08: DesignSpec = "chain-2010 era=2010 bug=b08 bug=b12".parse().unwrap();
    let b12: DesignSpec = "chain-2010 era=2010 bug=b12".parse().unwrap();
    let b = &s.blocks[bi];
    let prefix = Stream::with_blocks(s.ops[..b.first].to_vec(), s.blocks[..bi].to_vec());
    if check_stream(&prefix, std::slice::from_ref(&b08)).is_err() {
        return "a failure before the block";
    }
    let mut mmu = Mmu::new(b08.build().unwrap());
    for op in &s.ops[..b.first] {
        let _ = mmu.apply(op);
    }
    let Op::Mremap {
        pid,
        old,
        old_len,
        new_len,
        to: Some(t),
        ..
    } = s.ops[mover]
    else {
        unreachable!()
    };
    let Op::Migrate { addr, .. } = s.ops[walker] else {
        unreachable!()
    };
    let Some((dv, d)) = mmu.vma_at(pid, old) else {
        return "the moved range is not mapped";
    };
    if d.end < old + old_len {
        return "the moved range is not one VMA";
    }
    if (t.new..t.new + new_len).any(|a| mmu.vma_at(pid, a).is_some()) {
        return "the destination is mapped";
    }
    // vm_pgoff of the moved range.
    let pg = d.pgoff + (old - d.start);
    let len = new_len;
    let prev = t
        .new
        .checked_sub(1)
        .and_then(|a| mmu.vma_at(pid, a))
        .filter(|(_, v)| v.end == t.new);
    let next = mmu
        .vma_at(pid, t.new + len)
        .filter(|(_, v)| v.start == t.new + len);
    if prev.is_none() && next.is_none() {
        return "no VMA next to where the range moves back";
    }
    // How far each neighbour gets; the furthest one is reported.
    let rmap = mmu.rmap();
    let grade = |v: &Vma, id, continuous: bool| -> (u8, &'static str) {
        if v.file != d.file {
            (0, "the neighbour is of another kind")
        } else if v.flags != d.flags {
            if (v.flags ^ d.flags) & !7 != 0 {
                (1, "the neighbour's flags differ")
            } else {
                (2, "the neighbour's protection differs")
            }
        } else if !continuous {
            (3, "the neighbour's pgoff is not continuous")
        } else if !rmap.has_anon_vma(id) {
            (4, "the neighbour has no anon_vma (not faulted)")
        } else if rmap.vma_anon_vma(id) != rmap.vma_anon_vma(dv) {
            (5, "the neighbour did not reuse the moved range's anon_vma")
        } else {
            (6, "")
        }
    };
    let mut best = (0, "");
    if let Some((id, v)) = &prev {
        best = best.max(grade(v, *id, v.pgoff + v.pages() == pg));
    }
    if let Some((id, v)) = &next {
        best = best.max(grade(v, *id, pg + len == v.pgoff));
    }
    if best.0 < 6 {
        return best.1;
    }
    if mmu.anon_pte_at(pid, addr).is_none() {
        return "the migrated page is not faulted";
    }
    let mut cut = Stream::with_blocks(
        s.ops[..b.first + b.actors].to_vec(),
        s.blocks[..=bi].to_vec(),
    );
    for b in &mut cut.blocks {
        b.sched = rmaplab_ops::Sched::Explore { preemptions: 3 };
    }
    if check_stream(&cut, std::slice::from_ref(&b12)).is_err() {
        return "b12's own race (the neighbour linked before the moved VMA)";
    }
    if check_stream(&cut, std::slice::from_ref(&b08)).is_ok() {
        return "no schedule fails (explore:3)";
    }
    if fails_baseline(s, std::slice::from_ref(&b12)) {
        return "the whole stream fails with b12 alone";
    }
    if !fails_baseline(s, std::slice::from_ref(&b08)) {
        return "the whole stream passes (the rest of it)";
    }
    "fails B08"
}

/// For each stream at stage 5 of `n` fresh inputs, [`diagnose`]; the
/// counts per reason.
fn diagnose_all(n: u64, seed: u64) -> BTreeMap<&'static str, u64> {
    let cfg = DecodeConfig::default();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = BTreeMap::new();
    let dir = std::env::var_os("RACE_SHAPES_DUMP");
    let mut k = 0;
    for _ in 0..n {
        let bytes = common::fresh_input(&mut rng);
        let s = decode(&bytes, &cfg);
        if let (5, Some(at)) = stage_at(&s) {
            let why = diagnose(&s, at);
            *out.entry(why).or_default() += 1;
            if let Some(d) = &dir {
                let text = rmaplab_ops::print::print_with_header(
                    &s,
                    &[format!(
                        "{why}; block {}, mover op {}, walker op {}",
                        at.0, at.1, at.2
                    )],
                );
                std::fs::write(std::path::Path::new(d).join(format!("s5-{k:03}.ops")), text)
                    .unwrap();
                k += 1;
            }
        }
    }
    out
}

/// The stage-5 inputs of `n` fresh inputs, each mutated `per` times by
/// `mutate` (one step from the input): the reasons ([`diagnose`]) of the
/// mutants at stage 5.
fn mutants(
    n: u64,
    seed: u64,
    per: u64,
    mutate: impl Fn(&mut SmallRng, &[u8], &[u8]) -> Option<Vec<u8>>,
) -> BTreeMap<&'static str, u64> {
    let cfg = DecodeConfig::default();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut found = Vec::new();
    for _ in 0..n {
        let bytes = common::fresh_input(&mut rng);
        if stage(&decode(&bytes, &cfg)) >= 5 {
            found.push(bytes);
        }
    }
    let mut out = BTreeMap::new();
    for (k, bytes) in found.iter().enumerate() {
        for _ in 0..per {
            let other = &found[rng.random_range(0..found.len())];
            let Some(m) = mutate(&mut rng, bytes, other) else {
                *out.entry("(no mutation)").or_default() += 1;
                continue;
            };
            let s = decode(&m, &cfg);
            let why = match stage_at(&s) {
                (5, Some(at)) => diagnose(&s, at),
                (st, _) => {
                    ["stage 0", "stage 1", "stage 2", "stage 3", "stage 4"][usize::from(st.min(4))]
                }
            };
            *out.entry(why).or_default() += 1;
            if why == "fails B08"
                && let Some(d) = std::env::var_os("RACE_SHAPES_DUMP")
            {
                let text = rmaplab_ops::print::print(&s);
                std::fs::write(
                    std::path::Path::new(&d).join(format!("b08-{k:03}-{}.ops", out[why])),
                    text,
                )
                .unwrap();
            }
        }
    }
    out
}

#[test]
#[ignore = "a measurement: cargo test --release -p rmaplab --test race_shapes -- --ignored --nocapture"]
fn mutants_of_stage5() {
    let cfg = DecodeConfig::default();
    let ops = mutants(300_000, 7, 2000, |rng, a, b| {
        mutate_ops(rng, a, Some(b), &cfg)
    });
    eprintln!("op-level mutants of the stage-5 inputs: {ops:#?}");
    let bytes = mutants(300_000, 7, 2000, |rng, a, _| Some(mutate_bytes(rng, a)));
    eprintln!("byte mutants of the stage-5 inputs: {bytes:#?}");
}

#[test]
#[ignore = "a measurement: cargo test --release -p rmaplab --test race_shapes -- --ignored --nocapture"]
fn diagnose_b08_stage5() {
    let c = diagnose_all(300_000, 7);
    eprintln!("why stage-5 inputs of 300,000 fresh inputs do not fail B08: {c:#?}");
}

/// The configuration a b08 hunt runs (b12 injected with it) and its
/// baseline (b12 alone).
fn b08_and_b12() -> (Vec<DesignSpec>, Vec<DesignSpec>) {
    let spec = |s: &str| vec![s.parse::<DesignSpec>().unwrap()];
    (
        spec("chain-2010 era=2010 bug=b08 bug=b12"),
        spec("chain-2010 era=2010 bug=b12"),
    )
}

/// Counts of inputs reaching stages 1..=5 ([`stage`]) of `n` fresh random
/// inputs, and failing B08 and not B12 alone (their racing blocks
/// explored).
fn measure(n: u64, seed: u64) -> [u64; 6] {
    let cfg = DecodeConfig::default();
    let (b08, b12) = b08_and_b12();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut counts = [0u64; 6];
    for _ in 0..n {
        let bytes = common::fresh_input(&mut rng);
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

/// `corpus/zoo/b08.ops` (written by `rmaplab hunt --bug b08`, not by hand)
/// is b08's race, not b12's: it fails with both injected in era 2010 and
/// passes with b12 alone there, as it is and with its blocks under
/// `explore:3` (what the hunt's baseline check accepts).
#[test]
fn the_b08_zoo_file_is_b08s_own_race() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/zoo/b08.ops");
    let text = std::fs::read_to_string(&path).unwrap();
    let file = rmaplab::run::corpus::parse_corpus(&text).unwrap();
    let (b08, b12) = b08_and_b12();
    assert!(!file.stream.blocks.is_empty());
    assert!(check_stream(&file.stream, &b08).is_err());
    assert!(fails_baseline(&file.stream, &b08));
    assert!(check_stream(&file.stream, &b12).is_ok());
    assert!(!fails_baseline(&file.stream, &b12));
}

/// Of `n` fresh inputs, how many the merge-race mutation
/// ([`insert_merge_race`], on `chain-2010 era=2010 bug=b08 bug=b12`)
/// changes, and how many of those fail B08 (as [`measure`] counts it) and
/// b12 alone.
fn measure_merge_race(n: u64, seed: u64) -> [u64; 3] {
    use rmaplab::fuzz::merge_race::insert_merge_race;
    let cfg = DecodeConfig::default();
    let (b08, b12) = b08_and_b12();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut counts = [0u64; 3];
    for _ in 0..n {
        let bytes = common::fresh_input(&mut rng);
        let Some(m) = insert_merge_race(&mut rng, &bytes, &cfg, &b08[0]) else {
            continue;
        };
        counts[0] += 1;
        let s = decode(&m, &cfg);
        if fails_baseline(&s, &b12) {
            counts[2] += 1;
        } else if fails_baseline(&s, &b08) {
            counts[1] += 1;
        }
    }
    counts
}

#[test]
#[ignore = "a measurement: cargo test --release -p rmaplab --test race_shapes -- --ignored --nocapture"]
fn measure_merge_race_mutation() {
    let c = measure_merge_race(100_000, 7);
    eprintln!("of 100,000 fresh inputs: changed, fail B08, fail b12 alone: {c:?}");
}

#[test]
#[ignore = "a measurement: cargo test --release -p rmaplab --test race_shapes -- --ignored --nocapture"]
fn measure_all_merge_races() {
    use rmaplab::fuzz::merge_race::all_merge_races;
    let cfg = DecodeConfig::default();
    let (b08, b12) = b08_and_b12();
    let mut rng = SmallRng::seed_from_u64(7);
    let (mut inputs, mut streams, mut b08s, mut b12s) = (0, 0, 0, 0);
    for _ in 0..20_000 {
        let bytes = common::fresh_input(&mut rng);
        let all = all_merge_races(&bytes, &cfg, &b08[0]);
        inputs += u64::from(!all.is_empty());
        let mut hit = false;
        for s in all {
            streams += 1;
            if fails_baseline(&s, &b12) {
                b12s += 1;
            } else if fails_baseline(&s, &b08) {
                b08s += 1;
                if !hit {
                    eprintln!("{}", rmaplab_ops::print::print(&s));
                }
                hit = true;
            }
        }
    }
    eprintln!(
        "inputs with a merging move {inputs}, streams {streams}, B08 {b08s}, b12 alone {b12s}"
    );
}
