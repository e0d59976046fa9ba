//! The runner skips the structural checks (findability, dangling, the
//! design's self-check) after an op that changed nothing they read
//! (`Mmu::last_op_pure`), because they could only repeat the previous
//! verdict. These tests show that the skip never changes a report: every
//! canonical design and every re-injectable bug, on random streams, gives
//! the same verdict, at the same op, with the same invariant, the same
//! outcomes and the same dumps whether the checks are skipped or rerun.
//!
//! The same holds for the runner's other savings, which `recheck_pure_ops`
//! also turns off: the incremental findability check after ops that left
//! the design and its VMAs alone (`Mmu::last_op_pte_delta`), the
//! failed-op-trace snapshot only before ops that can allocate
//! (`Mmu::may_allocate`), and one reference model shared by every design of
//! a `run_all`.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rmaplab::run::corpus::parse_corpus;
use rmaplab::run::runner::{RunOptions, run_all, run_spec};
use rmaplab_impls::designs::chain_2010::Chain2010;
use rmaplab_impls::designs::registry::Era;
use rmaplab_impls::designs::registry::{Design, DesignSpec, bug_era, canonical_specs, catalogue};
use rmaplab_impls::mmu::Mmu;
use rmaplab_ops::decode::{DecodeConfig, decode};

fn random_streams(n: usize, seed: u64) -> Vec<rmaplab_ops::Stream> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let cfg = DecodeConfig::default();
    (0..n)
        .map(|_| {
            let len = rng.random_range(0..=400);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            decode(&bytes, &cfg)
        })
        .collect()
}

fn same_reports(spec: &DesignSpec, streams: &[rmaplab_ops::Stream]) -> usize {
    let skip = RunOptions::default();
    let recheck = RunOptions {
        recheck_pure_ops: true,
        ..RunOptions::default()
    };
    let mut failures = 0;
    for s in streams {
        let a = run_spec(s, spec, &skip);
        let b = run_spec(s, spec, &recheck);
        let key = |r: &rmaplab::run::runner::RunReport| {
            r.failure.as_ref().map(|f| {
                (
                    f.op_index,
                    f.broken.invariant.clone(),
                    f.broken.pid,
                    f.broken.page,
                )
            })
        };
        assert_eq!(
            key(&a),
            key(&b),
            "{}: skipping the checks after pure ops changed the verdict of\n{s:?}",
            spec.label()
        );
        assert_eq!(a.outcomes, b.outcomes, "{}", spec.label());
        assert_eq!(a.dumps, b.dumps, "{}", spec.label());
        // A race the configuration's kernel had (in a block) is not a
        // failure of the design as modelled (`DesignSpec::known_race`).
        let known = |f: &rmaplab::run::runner::Failure| {
            !s.blocks.is_empty() && spec.known_race(&f.broken.invariant).is_some()
        };
        failures += usize::from(a.failure.as_ref().is_some_and(|f| !known(f)));
    }
    failures
}

#[test]
fn skipping_checks_after_pure_ops_never_changes_a_canonical_report() {
    let streams = random_streams(1000, 11);
    for spec in canonical_specs() {
        assert_eq!(same_reports(&spec, &streams), 0, "{}", spec.label());
    }
}

#[test]
fn skipping_checks_after_pure_ops_never_hides_or_moves_a_bug() {
    let streams = random_streams(1000, 12);
    let mut caught = 0;
    for (design, bug) in catalogue().into_iter().filter(|(_, b)| b.is_injectable()) {
        let spec = DesignSpec {
            design,
            era: bug_era(design, bug),
            bugs: vec![bug.id.to_string()],
        };
        caught += usize::from(same_reports(&spec, &streams) > 0);
    }
    // Not every bug shows on 1,000 streams; enough do for the comparison to
    // cover failing runs as well as passing ones.
    assert!(caught >= 4, "only {caught} bugs failed on these streams");
}

/// Every regression file, under every spec its header names (zoo files
/// with their bug, which must fail at the same op either way).
#[test]
fn skipping_checks_after_pure_ops_never_changes_a_corpus_verdict() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "ops") {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 80, "{} corpus files", files.len());
    let mut failing = 0;
    for f in &files {
        let file = parse_corpus(&std::fs::read_to_string(f).unwrap()).unwrap();
        for (spec, _) in &file.expects {
            failing += same_reports(spec, std::slice::from_ref(&file.stream));
        }
    }
    assert!(failing >= 10, "{failing} failing corpus runs");
}

#[test]
fn reads_of_present_pages_and_early_errors_are_pure_and_faults_are_not() {
    use rmaplab_ops::parse::parse;
    let s = parse(
        "mmap p0 0 4 rw anon\nread p0 0\nread p0 0\nwrite p0 1 5\nwrite p0 1 6\n\
         mmap p0 0 1 rw anon\nmunmap p0 300 1\nfork p9\nread p0 9\ndump\nfork p0\n",
    )
    .unwrap();
    let mut mmu = Mmu::new(Chain2010::default());
    let pure: Vec<bool> = s
        .ops
        .iter()
        .map(|op| {
            mmu.apply(op).unwrap();
            mmu.last_op_pure()
        })
        .collect();
    assert_eq!(
        pure,
        [
            false, false, true, false, true, true, true, true, true, true, false
        ]
    );
}

/// One reference model shared by the designs of a `run_all` (its record
/// replayed where their layouts agree, rebuilt where they differ) gives
/// the same runs and the same comparison as a model per design: canonical
/// designs in both orders (single-list-2004 first makes the others'
/// mremap layouts diverge from the record), each era, each injectable bug
/// beside the canonical designs.
#[test]
fn sharing_the_reference_model_never_changes_a_run_all() {
    let mut streams = random_streams(300, 13);
    // A layout-dependent outcome: single-list-2004 merges the child's new
    // VMA with the inherited one (N10), so its model answers `ok` where the
    // later designs must be told EFAULT (old range across two VMAs).
    streams.push(
        rmaplab_ops::parse::parse(
            "mmap p0 0 4 rw anon\nwrite p0 0 1\nfork p0\nmmap p1 4 4 rw anon\nmremap p1 0 8 10\n",
        )
        .unwrap(),
    );
    let mut sets = vec![canonical_specs()];
    sets.push(canonical_specs().into_iter().rev().collect());
    sets.push(
        [Era::E2010, Era::E2015, Era::E2022]
            .into_iter()
            .map(|e| DesignSpec {
                era: Some(e),
                ..DesignSpec::new(Design::Chain2010)
            })
            .collect(),
    );
    for (design, bug) in catalogue().into_iter().filter(|(_, b)| b.is_injectable()) {
        let mut set = vec![DesignSpec {
            design,
            era: bug_era(design, bug),
            bugs: vec![bug.id.to_string()],
        }];
        set.extend(canonical_specs());
        sets.push(set);
    }
    let fast = RunOptions::default();
    let slow = RunOptions {
        recheck_pure_ops: true,
        ..RunOptions::default()
    };
    let mut failing = 0;
    for specs in &sets {
        for s in &streams {
            let (ra, ca) = run_all(s, specs, &fast);
            let (rb, cb) = run_all(s, specs, &slow);
            let key = |r: &rmaplab::run::runner::RunReport| {
                (
                    r.executed,
                    r.failure
                        .as_ref()
                        .map(|f| (f.op_index, f.broken.invariant.clone(), f.broken.pid)),
                )
            };
            let ka: Vec<_> = ra.iter().map(key).collect();
            let kb: Vec<_> = rb.iter().map(key).collect();
            assert_eq!(ka, kb, "{specs:?} on\n{s:?}");
            for (a, b) in ra.iter().zip(&rb) {
                assert_eq!(a.outcomes, b.outcomes);
            }
            let cmp = |c: &rmaplab::run::runner::Comparison| {
                (
                    c.failure
                        .as_ref()
                        .map(|f| (f.op_index, f.broken.invariant.clone())),
                    c.notes.clone(),
                )
            };
            assert_eq!(cmp(&ca), cmp(&cb), "{specs:?} on\n{s:?}");
            failing += usize::from(ra.iter().any(|r| r.failure.is_some()));
        }
    }
    assert!(failing >= 10, "only {failing} failing run_alls");
}
