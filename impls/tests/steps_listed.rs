//! `step_names` (what `rmaplab steps` prints, and what a strict schedule
//! may name) lists every step an actor can take: the blocks of the corpus
//! run under many random schedules on every design and era, and each step
//! of each trace must be listed for its actor's op kind.

use std::collections::BTreeSet;
use std::path::Path;

use rmaplab_impls::designs::chain_2010::{self, Chain2010};
use rmaplab_impls::designs::prealloc_2026::Prealloc2026;
use rmaplab_impls::designs::single_list_2004::{self, SingleList2004};
use rmaplab_impls::mmu::{Mmu, step_names};
use rmaplab_impls::rmap::Rmap;
use rmaplab_impls::sched::{FAILED, Schedule};
use rmaplab_ops::{Op, Stream};

/// Random schedules per block.
const SEEDS: u64 = 48;

/// `name#7` → `name#i`, as `step_names` writes a family.
fn family(name: &str) -> String {
    match name.split_once('#') {
        Some((base, _)) => format!("{base}#i"),
        None => name.to_string(),
    }
}

/// Every `.ops` file under the corpus folders that holds a block, with
/// the configurations its header says it fails on (a fuzzer's finding
/// corrupts their state, which the emulator does not survive).
fn block_streams() -> Vec<(String, Stream, Vec<String>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut out = Vec::new();
    for dir in ["blocks", "races", "zoo", "found"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut paths: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_none_or(|e| e != "ops") {
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("readable corpus file");
            let s: Stream = text
                .parse()
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            if !s.blocks.is_empty() {
                let header = rmaplab_ops::corpus::parse_header(&text, &s, |t| Ok(t.to_string()))
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                let fails = header
                    .specific
                    .into_iter()
                    .filter(|(_, v)| matches!(v, rmaplab_ops::corpus::Verdict::Fail(_)))
                    .map(|(spec, _)| spec)
                    .collect();
                out.push((p.display().to_string(), s, fails));
            }
        }
    }
    out
}

/// Runs `s` on `rmap`; at each block, `SEEDS` random schedules from the
/// same state, each step checked against the list of its actor's op. The
/// stream goes on after the block along the first schedule. Returns the
/// steps seen.
fn check<R: Rmap + Clone>(rmap: R, file: &str, s: &Stream, seen: &mut BTreeSet<String>) {
    let mut m = Mmu::new(rmap);
    let mut i = 0;
    for b in &s.blocks {
        for op in &s.ops[i..b.first] {
            let _ = m.apply(op);
        }
        let block: &[Op] = &s.ops[b.first..b.first + b.actors];
        let before = m.clone();
        for seed in 0..SEEDS {
            let mut run = before.clone();
            let Ok(o) = run.run_block(block, &Schedule::Random { seed }, 1) else {
                continue;
            };
            for e in &o.trace.0 {
                // A step that failed is recorded under this mark.
                if e.name == FAILED {
                    continue;
                }
                let op = &block[e.actor];
                let name = family(&e.name);
                assert!(
                    step_names(op).contains(&name.as_str()),
                    "{file}: actor {} ({}) took step {} (`{name}`), which `step_names` does not list: {:?}",
                    e.actor,
                    op.keyword(),
                    e.name,
                    step_names(op)
                );
                seen.insert(format!("{} {name}", op.keyword()));
            }
        }
        // A schedule that fails (an era's known race) leaves a state the
        // rest of the stream cannot be run on.
        if !matches!(m.run_block(block, &Schedule::Random { seed: 0 }, 1), Ok(o) if o.failure.is_none())
        {
            return;
        }
        i = b.first + b.actors;
    }
}

#[test]
fn every_step_a_block_takes_is_listed_for_its_op_kind() {
    let streams = block_streams();
    assert!(streams.len() >= 6, "only {} block files", streams.len());
    let mut seen = BTreeSet::new();
    for (file, s, fails) in &streams {
        for era in chain_2010::Era::ALL {
            let spec = format!("chain-2010 era={}", era.as_str());
            let default = era == chain_2010::Era::E2022 && fails.iter().any(|f| f == "chain-2010");
            if fails.contains(&spec) || default {
                continue;
            }
            check(Chain2010::new(era), file, s, &mut seen);
        }
        check(Prealloc2026::new(), file, s, &mut seen);
        for era in single_list_2004::Era::ALL {
            check(
                SingleList2004::with_era_and_bugs(era, &[]),
                file,
                s,
                &mut seen,
            );
        }
    }
    // The corpus reaches the yield points of every mutator family it
    // races, and both of migration's walks.
    for want in [
        "mremap copy_vma",
        "mremap move_ptes#i",
        "mremap move_ptes.clear#i",
        "mremap merge.commit",
        "fork fork.anon_vma#i",
        "fork fork.copy#i",
        "munmap unmap.zap#i",
        "munmap unmap.unlink#i",
        "migrate w1.visit#i",
        "migrate w2.visit#i",
        "migrate copy",
        "swapout visit#i",
        "referenced visit#i",
    ] {
        assert!(
            seen.contains(want),
            "no block of the corpus took `{want}`: {seen:?}"
        );
    }
}
