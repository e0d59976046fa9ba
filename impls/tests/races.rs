//! The re-injectable races (`b12`, `b12p`, `b08`) and the eras' lock
//! models: for each, a stream and a block under which the bug's
//! configuration fails under `explore:3` with the bug's invariant and the
//! canonical configuration passes every schedule. These are regression
//! tests of the model; the fuzzers must find their own triggers.

use rmaplab_impls::designs::registry::DesignSpec;
use rmaplab_impls::mmu::{BlockOutcome, Mmu};
use rmaplab_impls::rmap::CloneRmap;
use rmaplab_impls::sched::Schedule;
use rmaplab_ops::{Op, Stream};

fn ops(text: &str) -> Vec<Op> {
    text.parse::<Stream>().expect("ops").ops
}

/// The design a corpus-header spec names (`chain-2010 era=2010 bug=b12`).
fn design(spec: &str) -> Box<dyn CloneRmap> {
    let s: DesignSpec = spec.parse().expect("a spec");
    s.build_cloneable().expect("a design")
}

/// Runs `setup` sequentially (every op must succeed), then `block` under
/// `explore:3`.
fn explore3(spec: &str, setup: &str, block: &str) -> BlockOutcome {
    let mut m = Mmu::new(design(spec));
    for op in ops(setup) {
        m.apply(&op)
            .unwrap_or_else(|e| panic!("{spec}: setup op {op:?}: {e:?}"));
    }
    let o = m
        .run_block(&ops(block), &Schedule::Explore { bound: 3 }, 100_000)
        .expect("a valid block");
    assert!(!o.capped, "{spec}: capped");
    o
}

fn fails_with(spec: &str, setup: &str, block: &str, invariant: &str) {
    let o = explore3(spec, setup, block);
    let f = o
        .failure
        .unwrap_or_else(|| panic!("{spec}: no schedule of {} failed", o.schedules));
    assert_eq!(f.invariant, invariant, "{spec}: {f:?}");
}

fn passes(spec: &str, setup: &str, block: &str) {
    let o = explore3(spec, setup, block);
    assert!(o.failure.is_none(), "{spec}: {:?}", o.failure);
    assert!(o.schedules > 1, "{spec}: {} schedules", o.schedules);
}

/// X (4..8) takes the page's anon_vma from its read-only neighbour R
/// before R moves whole to 100 (a fresh VMA S, linked after X), is made
/// writable there, and moves back: `copy_vma` merges into X, which the
/// list walks before S.
const LIST_MERGE_SETUP: &str = "mmap p0 0 4 rw anon\nwrite p0 0 0x11\nmprotect p0 0 4 r\n\
    mmap p0 4 4 rw anon\nwrite p0 4 0x22\nmremap p0 0 4 4 to 100\nmprotect p0 100 4 rw\n";
const LIST_MERGE_BLOCK: &str = "mremap p0 100 4 4 to 0\nmigrate p0 100\n";

#[test]
fn b12_in_the_list_era_is_a_merge_without_moveto_tail() {
    fails_with(
        "chain-2010 era=2010 bug=b12",
        LIST_MERGE_SETUP,
        LIST_MERGE_BLOCK,
        "stale-migration-entry",
    );
    passes("chain-2010 era=2010", LIST_MERGE_SETUP, LIST_MERGE_BLOCK);
}
