//! The libFuzzer target's extra counters (`fuzz_stream_counters`): after
//! a passing stream they hold exactly the features the built-in engine
//! computes for it (`rmaplab::fuzz::features`: op-kind pairs and fork
//! depths of the stream, kernel paths, block steps and end-state merge
//! pairs of each design's run), one byte set per feature.

use std::sync::atomic::{AtomicU8, Ordering};

use rmaplab::fuzz::engine::Coverage;
use rmaplab::fuzz::features::{self, COUNTERS, set_counter};
use rmaplab::fuzz::fuzz_stream_counters;
use rmaplab::run::runner::{RunOptions, run_all};
use rmaplab_impls::designs::registry::canonical_specs;
use rmaplab_ops::Stream;
use rmaplab_ops::parse::parse;

fn map() -> Vec<AtomicU8> {
    (0..COUNTERS).map(|_| AtomicU8::new(0)).collect()
}

fn set(map: &[AtomicU8]) -> Vec<usize> {
    (0..map.len())
        .filter(|&i| map[i].load(Ordering::Relaxed) != 0)
        .collect()
}

/// The counters of every feature of `s` on the canonical designs, from the
/// feature functions directly; and how many distinct features of each kind.
fn expected(s: &Stream) -> (Vec<AtomicU8>, [usize; 6]) {
    let m = map();
    let mut all = std::collections::HashSet::new();
    let mut scratch = features::Scratch::default();
    let mut emit = |f: u64| {
        set_counter(&m, f);
        all.insert(f);
    };
    features::stream_features(s, &mut scratch, &mut emit);
    let opts = RunOptions {
        paths: true,
        ..RunOptions::fuzzing()
    };
    let (runs, _) = run_all(s, &canonical_specs(), &opts);
    for r in &runs {
        features::path_features(s, &r.paths, &mut scratch, &mut emit);
        r.state.iter().for_each(|&f| emit(f));
        for b in &r.blocks {
            features::block_trace_features(&b.trace, &mut |f, _| emit(f));
        }
    }
    let mut kinds = [0; 6];
    for f in all {
        kinds[(features::kind(f) >> 56) as usize] += 1;
    }
    (m, kinds)
}

fn zoo(id: &str) -> Stream {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join(format!("corpus/zoo/{id}.ops"))).unwrap();
    parse(&text).unwrap()
}

#[test]
fn the_counters_hold_the_built_in_engines_features() {
    // Without blocks: op pairs, fork depths, kernel paths, merge pairs
    // (the range moved to 20 can move back).
    let plain = parse(
        "version 1\nmmap p0 0 8 rw anon\nwrite p0 1 5\nfork p0\nwrite p1 1 6\nfork p1\n\
         mprotect p0 2 2 r\nmremap p0 0 2 2 to 20\nwrite p2 3 1\n",
    )
    .unwrap();
    // With a block (b12's zoo stream passes on the canonical designs).
    let racing = zoo("b12");
    for (s, blocks) in [(plain, false), (racing, true)] {
        let (want, kinds) = expected(&s);
        assert!(
            kinds[0] > 0
                && kinds[1] > 0
                && kinds[3] > 0
                && kinds[4] > 0
                && (blocks || kinds[5] > 0),
            "{kinds:?}"
        );
        assert_eq!(kinds[2] > 0, blocks, "block steps: {kinds:?}");
        let got = map();
        fuzz_stream_counters(&s, &got);
        assert_eq!(set(&got), set(&want));
        // One byte a feature, but for the hash's collisions.
        let n = set(&got).len();
        let features: usize = kinds.iter().sum();
        assert!(
            n <= features && n + features / 16 >= features,
            "{n} of {features}"
        );
        // The built-in engine's coverage counts the same paths features.
        let mut cov = Coverage::default();
        let opts = RunOptions {
            paths: true,
            ..RunOptions::fuzzing()
        };
        let (runs, _) = run_all(&s, &canonical_specs(), &opts);
        for r in &runs {
            cov.add_paths(&s, &r.paths);
            cov.add_state(&r.state);
        }
        assert_eq!(cov.path_features(), kinds[3] + kinds[4] + kinds[5]);
    }
}
