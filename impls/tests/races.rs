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

#[test]
fn b12_in_the_tree_eras_is_a_merge_without_need_rmap_locks() {
    // The page moves out of the middle of its VMA and back: the merge
    // target (pgoff 0) sorts before the source (pgoff 2) in the tree.
    let setup = "mmap p0 0 8 rw anon\nwrite p0 2 0x22\nmremap p0 2 2 2 to 102\n";
    let block = "mremap p0 102 2 2 to 2\nmigrate p0 102\n";
    for era in ["2015", "2022"] {
        fails_with(
            &format!("chain-2010 era={era} bug=b12"),
            setup,
            block,
            "stale-migration-entry",
        );
        passes(&format!("chain-2010 era={era}"), setup, block);
    }
}

/// A fresh destination, linked after the source: only a reader that
/// looks without the PTL can miss the entry move_ptes holds in flight.
const FRESH_MOVE_SETUP: &str = "mmap p0 0 4 rw anon\nwrite p0 1 0x11\n";
const FRESH_MOVE_BLOCK: &str = "mremap p0 0 4 4 to 100\nmigrate p0 1\n";

#[test]
fn b12p_is_the_peek_before_the_ptl() {
    fails_with(
        "chain-2010 era=2010 bug=b12p",
        FRESH_MOVE_SETUP,
        FRESH_MOVE_BLOCK,
        "stale-migration-entry",
    );
    for spec in [
        "chain-2010 era=2010",
        "chain-2010 era=2010 bug=b12",
        "chain-2010",
        "prealloc-2026",
    ] {
        passes(spec, FRESH_MOVE_SETUP, FRESH_MOVE_BLOCK);
    }
    // single-list-2004 never lost the peek (2.6.18 … 2.6.33): it fails in
    // both eras, by design.
    for spec in ["single-list-2004", "single-list-2004 era=2006"] {
        fails_with(
            spec,
            FRESH_MOVE_SETUP,
            FRESH_MOVE_BLOCK,
            "stale-migration-entry",
        );
    }
}

/// X (2..4) gets the page's anon_vma from its read-only neighbour after
/// the page moved to 100 (S); moving the page back merges into X. With
/// head insertion X precedes S on the list.
const PREPARE_HEAD_SETUP: &str = "mmap p0 0 5 rw anon\nwrite p0 4 0x44\nmremap p0 4 1 1 to 100\n\
    munmap p0 2 2\nmprotect p0 0 2 r\nmmap p0 2 2 rw anon\nwrite p0 2 0x22\n";
const PREPARE_HEAD_BLOCK: &str = "mremap p0 100 1 1 to 4\nmigrate p0 100\n";

#[test]
fn b08_needs_b12_because_moveto_tail_masks_it() {
    fails_with(
        "chain-2010 era=2010 bug=b08 bug=b12",
        PREPARE_HEAD_SETUP,
        PREPARE_HEAD_BLOCK,
        "stale-migration-entry",
    );
    for spec in [
        "chain-2010 era=2010 bug=b08",
        "chain-2010 era=2010 bug=b12",
        "chain-2010 era=2010",
    ] {
        passes(spec, PREPARE_HEAD_SETUP, PREPARE_HEAD_BLOCK);
    }
}

#[test]
fn single_list_eras_differ_in_list_order() {
    // fork vs migrate: the child linked at the head (2004) is walked
    // before its parent; at the tail (2006) after it.
    let setup = "mmap p0 0 4 rw anon\nwrite p0 1 0x11\n";
    let block = "fork p0\nmigrate p0 1\n";
    fails_with("single-list-2004", setup, block, "stale-migration-entry");
    passes("single-list-2004 era=2006", setup, block);
    passes(
        "single-list-2004 era=2006",
        setup,
        "munmap p0 0 4\nmigrate p0 1\n",
    );
}

#[test]
fn the_peek_misses_an_entry_in_flight_and_its_rendering_replays() {
    let spec = "chain-2010 era=2010 bug=b12p";
    let o = explore3(spec, FRESH_MOVE_SETUP, FRESH_MOVE_BLOCK);
    let f = o.failure.expect("a failing schedule");
    let l = o.trace.labelled();
    // The second walk visits both places while the entry is in flight.
    let pos = |s: &str| l.find(s).unwrap_or_else(|| panic!("{s} in {l}"));
    assert!(pos("A:move_ptes.clear#1") < pos("B:w2.visit#0"), "{l}");
    assert!(pos("B:w2.visit#1") < pos("B:w2.unlock"), "{l}");
    assert!(f.detail.contains("p0:101"), "{}", f.detail);
    // Replayed strictly on the canonical era, the schedule cannot run: no
    // move stops inside its PTL section there.
    let mut m = Mmu::new(design("chain-2010 era=2010"));
    for op in ops(FRESH_MOVE_SETUP) {
        m.apply(&op).unwrap();
    }
    let items = o.trace.items();
    let r = m
        .run_block(
            &ops(FRESH_MOVE_BLOCK),
            &Schedule::Replay {
                items,
                strict: true,
            },
            1,
        )
        .unwrap();
    assert_eq!(r.failure.map(|f| f.invariant), Some("schedule".to_string()));
}

/// `corpus/races/mremap-merge-back.ops`: every `expect` line of its
/// header holds when its block runs under its schedule (`explore:3`) on
/// the design it names, and the canonical designs pass except those named.
#[test]
fn the_merge_back_exerciser_header_holds_under_explore() {
    use rmaplab_ops::corpus::{Verdict, parse_header};
    use rmaplab_ops::parse::parse;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../corpus/races/mremap-merge-back.ops"
    );
    let text = std::fs::read_to_string(path).expect("the corpus file");
    let stream = parse(&text).expect("a v2 stream");
    assert_eq!(stream.blocks.len(), 1);
    let b = &stream.blocks[0];
    let rmaplab_ops::Sched::Explore { preemptions } = b.sched else {
        panic!("an explore block")
    };
    let header = parse_header(&text, &stream, |s| s.parse::<DesignSpec>()).expect("header");
    let mut expects: Vec<(DesignSpec, Verdict)> = header.specific.clone();
    let general = header.general.clone().unwrap_or(Verdict::Pass);
    for s in rmaplab_impls::designs::registry::canonical_specs() {
        if !expects.iter().any(|(sp, _)| *sp == s) {
            expects.push((s, general.clone()));
        }
    }
    assert!(expects.len() >= 8);
    for (spec, want) in expects {
        let mut m = Mmu::new(spec.build_cloneable().expect("a design"));
        for op in &stream.ops[..b.first] {
            m.apply(op).expect("setup");
        }
        let block = &stream.ops[b.first..b.first + b.actors];
        let o = m
            .run_block(
                block,
                &Schedule::Explore {
                    bound: u32::from(preemptions),
                },
                100_000,
            )
            .expect("a valid block");
        let got = match &o.failure {
            Some(f) => Verdict::Fail(f.invariant.clone()),
            None => {
                // The rest of the stream after the first schedule.
                for op in &stream.ops[b.first + b.actors..] {
                    m.apply(op).expect("after the block");
                }
                Verdict::Pass
            }
        };
        assert_eq!(got, want, "{}: {:?}", spec.label(), o.failure);
    }
}
