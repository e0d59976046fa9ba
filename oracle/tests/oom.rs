//! Allocation-failure tests in the style of wasmtime's OOM tests: for a set
//! of streams, count each design's metadata allocations, then rerun failing
//! each one in turn (`fail-alloc N` in front). Every run must keep every
//! invariant — findability, dangling, the design's self-checks,
//! failed-op-trace and leak — and together the runs must fail every
//! allocation site of every design.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rmaplab::fuzz::engine::collect_ops;
use rmaplab::run::runner::{RunOptions, run_spec};
use rmaplab_impls::designs::registry::canonical_specs;
use rmaplab_impls::rmap::Rmap;
use rmaplab_ops::decode::{DecodeConfig, decode};
use rmaplab_ops::parse::parse;
use rmaplab_ops::{Op, Stream};

fn streams() -> Vec<(String, Stream)> {
    let mut files = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    collect_ops(&root, &mut files);
    let mut out: Vec<(String, Stream)> = files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let name = p.strip_prefix(&root).unwrap_or(p).display().to_string();
            (name, parse(&text).unwrap())
        })
        .collect();
    // Random decoded streams reach shapes the corpus does not.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..40 {
        let bytes: Vec<u8> = (0..600)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        out.push((
            format!("random #{i}"),
            decode(&bytes, &DecodeConfig::default()),
        ));
    }
    // Injection is the test's job: drop the streams' own fail-alloc ops.
    for (_, s) in &mut out {
        *s = Stream::from_ops(
            s.ops
                .iter()
                .copied()
                .filter(|o| !matches!(o, Op::FailAlloc { .. }))
                .collect(),
        );
    }
    out
}

#[test]
fn failing_each_allocation_in_turn_keeps_every_invariant() {
    let opts = RunOptions {
        record: false,
        ..RunOptions::default()
    };
    let streams = streams();
    for spec in canonical_specs() {
        let mut failed_sites: BTreeMap<&'static str, String> = BTreeMap::new();
        let mut all_sites: BTreeSet<&'static str> = BTreeSet::new();
        let mut runs = 0;
        for (name, s) in &streams {
            let base = run_spec(s, &spec, &opts);
            assert!(
                base.passed(),
                "{name} fails {}: {:?}",
                spec.label(),
                base.failure
            );
            let count = base.stats.final_counters.allocations;
            for n in 1..=count {
                let mut ops = vec![Op::FailAlloc { n }];
                ops.extend(s.ops.iter().copied());
                let injected = Stream::from_ops(ops);
                let r = run_spec(&injected, &spec, &opts);
                runs += 1;
                assert!(
                    r.passed(),
                    "{}: {name} with allocation {n} of {count} failing: {}\n{}",
                    spec.label(),
                    r.failure.as_ref().unwrap(),
                    rmaplab_ops::print::print(&injected)
                );
                if let Some(site) = r.failed_site {
                    failed_sites
                        .entry(site)
                        .or_insert_with(|| format!("{name} (allocation {n})"));
                }
                all_sites.extend(r.alloc_sites.iter().copied());
            }
        }
        // Every site the design declares (its `ALLOC_SITES`).
        let declared = spec.build().expect("a design").alloc_sites();
        for site in declared {
            assert!(
                failed_sites.contains_key(site),
                "{}: allocation site {site} was never failed ({runs} runs; failed: {:?})",
                spec.label(),
                failed_sites.keys().collect::<Vec<_>>()
            );
        }
        println!(
            "{}: {runs} injected runs; sites failed and handled:",
            spec.label()
        );
        for (site, by) in &failed_sites {
            println!("  {site:<28} first by {by}");
        }
    }
}
