//! "Is it fuzzing?": a fixed-seed, fixed-budget run of the built-in engine
//! reaches every op kind, forks chains at least 5 deep, splits and
//! merges VMAs, copies and reuses pages on COW, swaps and migrates, and
//! catches a deliberately broken design (a re-injected historical bug)
//! within its exec budget. Budgets are exec counts, never times.

use rmaplab::fuzz::engine::{EngineConfig, EngineStats, run_engine};
use rmaplab_impls::designs::registry::{Design, DesignSpec, canonical_specs};
use rmaplab_ops::decode::DecodeConfig;

fn engine(specs: Vec<DesignSpec>, execs: u64) -> EngineStats {
    run_engine(&EngineConfig {
        seconds: 600,
        max_execs: Some(execs),
        jobs: 1,
        seed: 7,
        decode: DecodeConfig::default(),
        specs,
        baseline: Vec::new(),
        out_dir: None,
        seeds: Vec::new(),
        stop_on_failure: true,
        progress: false,
    })
}

#[test]
fn the_engine_reaches_every_op_kind_and_deep_fork_chains() {
    let st = engine(canonical_specs(), 3_000);
    assert!(
        st.findings.is_empty(),
        "canonical designs fail: {:?}",
        st.findings[0].0.report
    );
    // Every op kind of the language (`referenced`, `exec-stack` and
    // `exec-shift` included).
    assert_eq!(st.op_kinds.len(), 17, "op kinds reached: {:?}", st.op_kinds);
    assert!(
        st.max_fork_depth >= 5,
        "deepest fork chain {}",
        st.max_fork_depth
    );
    // About half of what the canonical designs reach with seed 7 (faults
    // 71,935, COW copies 10,127 and reuses 2,106, forks 46,164, splits
    // 43,517, merges 6,093, swap-outs 1,900, migrations 1,356, fault-around
    // 20,963; fork depth 9).
    let m = st.mmu;
    assert!(m.faults > 35_000, "{m:?}");
    assert!(m.vma_splits > 20_000, "{m:?}");
    assert!(m.vma_merges > 3_000, "{m:?}");
    assert!(m.cow_copies > 5_000 && m.cow_reuses > 1_000, "{m:?}");
    assert!(m.forks > 20_000, "{m:?}");
    assert!(m.swapouts > 900 && m.migrations > 600, "{m:?}");
    assert!(m.fault_around > 10_000, "{m:?}");
}

#[test]
fn a_broken_design_is_caught_within_the_budget() {
    for (design, bug) in [
        (Design::SingleList2004, "b01"),
        (Design::Chain2010, "b03"),
        (Design::Chain2010, "b04"),
    ] {
        let mut spec = DesignSpec::new(design);
        spec.bugs.push(bug.to_string());
        let st = engine(vec![spec], 50_000);
        let (f, _) = st
            .findings
            .first()
            .unwrap_or_else(|| panic!("{bug} not caught in 50,000 execs"));
        assert!(f.signature.who.contains(bug), "{:?}", f.signature);
        // The shrunk stream still fails the same way.
        let again = rmaplab::fuzz::shrink::signature(
            &f.stream,
            &[{
                let mut s = DesignSpec::new(design);
                s.bugs.push(bug.to_string());
                s
            }],
        );
        assert_eq!(again.as_ref(), Some(&f.signature));
    }
}

#[test]
fn the_engine_is_deterministic_for_a_seed_and_budget() {
    let a = engine(canonical_specs(), 500);
    let b = engine(canonical_specs(), 500);
    assert_eq!(a.ops, b.ops);
    assert_eq!(a.mmu, b.mmu);
    assert_eq!(a.op_kinds, b.op_kinds);
}

/// The libFuzzer custom mutator: deterministic for libFuzzer's seed, within
/// `max_size`, and (no pool input kept) half of the time a fresh input (the
/// built-in engine's next one), the other half libFuzzer's: a third of it
/// op-level changes of the input (encoded: the `FF FF FF` header; on this
/// short input some give nothing and fall through), the rest libFuzzer's
/// own mutation.
#[test]
fn the_libfuzzer_mutator_mixes_fresh_inputs_with_libfuzzers_mutation() {
    use rmaplab::fuzz::engine::libfuzzer_mutate;
    fn marker(data: &mut [u8], _size: usize, _max: usize) -> usize {
        data[0] = 0xAB;
        1
    }
    let (mut defaults, mut op_level) = (0, 0);
    for seed in 0..1000u32 {
        let mut a = vec![0u8; 4096];
        let mut b = vec![0u8; 4096];
        let na = libfuzzer_mutate(&mut a, 10, 4096, seed, marker);
        let nb = libfuzzer_mutate(&mut b, 10, 4096, seed, marker);
        assert_eq!(
            (na, &a[..na]),
            (nb, &b[..nb]),
            "seed {seed} not deterministic"
        );
        assert!(na <= 400);
        if na == 1 && a[0] == 0xAB {
            defaults += 1;
        } else if a[..3] == [0xFF; 3] {
            op_level += 1;
        }
        let mut small = vec![0u8; 16];
        assert!(libfuzzer_mutate(&mut small, 0, 16, seed, marker) <= 16);
    }
    assert!(
        (300..=460).contains(&defaults),
        "{defaults} of 1000 went to libFuzzer"
    );
    assert!(
        (50..=150).contains(&op_level),
        "{op_level} of 1000 were op-level"
    );
}

/// An input with a concurrent block: mmap, then a block (mprotect, migrate,
/// referenced, write; schedule `#ab01`), then a dump.
const BLOCK_INPUT: [u8; 28] = [
    0xFF, 0xFF, 0xFF, 0, 0, 4, 5, 0, 0, 42, 0x17, 7, 0, 0, 1, 0, 0, 2, 0, 0xE9, 1, 0, 0x61, 42,
    0x22, 0xAB, 0x01, 54,
];

/// On an input with a block, the libFuzzer mutator changes only its
/// schedule about 1 time in 4 (the same ops, another `#HEX`), and
/// otherwise mixes op-level changes, fresh inputs and libFuzzer's mutation
/// as before.
#[test]
fn the_libfuzzer_mutator_mutates_schedules_of_inputs_with_blocks() {
    use rmaplab::fuzz::engine::libfuzzer_mutate;
    use rmaplab_ops::decode::{DecodeConfig, decode};
    fn marker(data: &mut [u8], _size: usize, _max: usize) -> usize {
        data[0] = 0xAB;
        1
    }
    let cfg = DecodeConfig::default();
    let before = decode(&BLOCK_INPUT, &cfg);
    assert_eq!(before.blocks.len(), 1);
    let (mut sched_only, mut defaults) = (0, 0);
    for seed in 0..1000u32 {
        let mut data = vec![0u8; 64];
        data[..BLOCK_INPUT.len()].copy_from_slice(&BLOCK_INPUT);
        let n = libfuzzer_mutate(&mut data, BLOCK_INPUT.len(), 64, seed, marker);
        assert!(n <= 64);
        if n == 1 && data[0] == 0xAB {
            defaults += 1;
            continue;
        }
        let after = decode(&data[..n], &cfg);
        if after.ops == before.ops && after.blocks.len() == 1 {
            assert_eq!(after.blocks[0].ops(), before.blocks[0].ops());
            sched_only += 1;
        }
    }
    // 1/4 schedule mutations (plus the odd fresh input that decodes to the
    // same ops, which random bytes practically never do), 1/4 libFuzzer's
    // (3/4 of the time not schedule-only, half of that libFuzzer's share,
    // 2/3 of that not op-level).
    assert!((180..=320).contains(&sched_only), "{sched_only} of 1000");
    assert!((180..=320).contains(&defaults), "{defaults} of 1000");
}
