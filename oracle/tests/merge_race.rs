//! The merge-race mutation and the state features it feeds on
//! (`oracle/src/fuzz/merge_race.rs`, `features::MERGE_PAIR`): a block is
//! inserted only where the machine has a move that merges, its `mremap`
//! merges when it runs, and the engines draw the inputs to race by their
//! end state's merge pairs.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rmaplab::fuzz::features::{MERGE_PAIR, kind, merge_pair_features};
use rmaplab::fuzz::merge_race::{Ready, insert_merge_race};
use rmaplab::run::runner::{RunOptions, run_spec};
use rmaplab_impls::designs::registry::DesignSpec;
use rmaplab_impls::mmu::{Mmu, path};
use rmaplab_ops::decode::{DecodeConfig, decode, encode};
use rmaplab_ops::parse::parse;
use rmaplab_ops::{MremapTo, Op, Pid, Stream};

fn spec() -> DesignSpec {
    "chain-2010 era=2010".parse().unwrap()
}

fn stream(text: &str) -> Stream {
    parse(&format!("version 2\n{text}")).unwrap()
}

/// A mapping with its second page written and moved away: the page can
/// move back between the two pieces that stayed, merging.
const MOVED: &str = "mmap p0 0 4 rw anon\nwrite p0 1 1\nmremap p0 1 1 1 to 10\n";

#[test]
fn the_block_races_a_migration_against_a_move_that_merges() {
    let cfg = DecodeConfig::default();
    let bytes = encode(&stream(MOVED), &cfg).unwrap();
    let mut rng = SmallRng::seed_from_u64(1);
    let mut made = 0;
    for _ in 0..20 {
        let Some(m) = insert_merge_race(&mut rng, &bytes, &cfg, &spec()) else {
            continue;
        };
        made += 1;
        let s = decode(&m, &cfg);
        assert_eq!(s.blocks.len(), 1, "{s:?}");
        let b = &s.blocks[0];
        // Only after the move is there anything to move back.
        assert_eq!(b.first, 3, "{s:?}");
        let ops = &s.ops[b.ops()];
        let back = Op::Mremap {
            pid: Pid(0),
            old: 10,
            old_len: 1,
            new_len: 1,
            to: Some(MremapTo {
                new: 1,
                dontunmap: false,
            }),
        };
        let walk = Op::Migrate {
            pid: Pid(0),
            addr: 10,
        };
        assert!(ops == [back, walk] || ops == [walk, back], "{ops:?}");
        // The move merges when it runs on the design.
        let mut mmu = Mmu::new(spec().build().unwrap());
        for op in &s.ops[..b.first] {
            mmu.apply(op).unwrap();
        }
        mmu.apply(&back).unwrap();
        assert_ne!(mmu.last_op_paths() & path::COPY_VMA_MERGED, 0);
    }
    assert!(made >= 10, "{made} of 20");
}

#[test]
fn no_block_without_a_move_that_merges() {
    let cfg = DecodeConfig::default();
    let mut rng = SmallRng::seed_from_u64(1);
    for text in [
        "mmap p0 0 4 rw anon\nwrite p0 1 1\n",
        // Moved, but nothing to merge with where its pgoff lines up.
        "mmap p0 0 1 rw anon\nwrite p0 0 1\nmremap p0 0 1 1 to 10\n",
    ] {
        let bytes = encode(&stream(text), &cfg).unwrap();
        for _ in 0..10 {
            assert_eq!(insert_merge_race(&mut rng, &bytes, &cfg, &spec()), None);
        }
    }
}

/// The end state's [`MERGE_PAIR`] features of `text` on [`spec`].
fn pairs(text: &str) -> Vec<u64> {
    let s = stream(text);
    let mut mmu = Mmu::new(spec().build().unwrap());
    for op in &s.ops {
        mmu.apply(op).unwrap();
    }
    let mut out = Vec::new();
    merge_pair_features(&mmu, &mut |f| out.push(f));
    out
}

#[test]
fn merge_pairs_say_how_and_in_which_order_each_got_its_anon_vma() {
    let how = |bit: u32| u64::from(bit.trailing_zeros());
    let ready = 1 << 11 | 1 << 12 | 1 << 14;
    let moved = pairs(MOVED);
    assert!(!moved.is_empty());
    assert!(moved.iter().all(|&f| kind(f) == MERGE_PAIR));
    // The moved VMA, made by copy_vma, moving back next to the piece that
    // got its anon_vma before it (in the first fault), with its page: ready.
    let back = |f: &&u64| {
        *f & 31 == how(path::COPY_VMA_NEW)
            && (*f >> 5) & 31 == how(path::PREPARE_ALLOC)
            && *f & 1 << 10 == 0
            && Ready::is_ready(**f)
    };
    assert!(moved.iter().any(|f| back(&f)), "{moved:x?}");
    // That piece moving next to the moved VMA: nothing present to migrate.
    let out = |f: &&u64| {
        *f & 31 == how(path::PREPARE_ALLOC)
            && (*f >> 5) & 31 == how(path::COPY_VMA_NEW)
            && *f & 1 << 10 != 0
            && !Ready::is_ready(**f)
    };
    assert!(moved.iter().any(|f| out(&f)), "{moved:x?}");
    // A mapping made over the upper piece after the move, with another
    // protection (so that it stays apart), faulted: its anon_vma is its
    // neighbour's, linked after the moved VMA's, and the flags differ
    // from the moved VMA's until an mprotect makes them equal.
    let refill = format!("{MOVED}mmap p0 2 1 rwx anon replace\nwrite p0 2 1\n");
    let after = |f: &u64| f & 1 << 10 != 0;
    let fresh: Vec<u64> = pairs(&refill).into_iter().filter(after).collect();
    assert!(
        fresh
            .iter()
            .any(|f| (f >> 5) & 31 == how(path::PREPARE_REUSED) && f & ready != ready),
        "{fresh:x?}"
    );
    let equal: Vec<u64> = pairs(&format!("{refill}mprotect p0 10 1 rwx\n"))
        .into_iter()
        .filter(after)
        .collect();
    assert!(
        equal
            .iter()
            .any(|f| (f >> 5) & 31 == how(path::PREPARE_REUSED) && f & ready == ready),
        "{equal:x?}"
    );
}

#[test]
fn ready_inputs_are_drawn_by_feature() {
    let a = MERGE_PAIR | 1 << 11 | 1 << 12 | 1 << 14;
    let b = a | 1 << 10;
    let mut ready = Ready::default();
    assert!(ready.is_empty());
    // The bytes are asked for only when kept: while the feature has room
    // (8 inputs), then one offer in 16.
    let mut asked = 0;
    for i in 0..100u8 {
        ready.offer(&[a], || {
            asked += 1;
            Some(vec![i])
        });
    }
    assert!((8..=8 + 100 / 16).contains(&asked), "{asked}");
    ready.offer(&[b], || Some(vec![200]));
    // Not ready: another kind, or flags that differ.
    ready.offer(&[1 << 56, a & !(1 << 11)], || panic!("not ready"));
    assert_eq!(ready.features(), 2);
    let mut rng = SmallRng::seed_from_u64(3);
    let rare = (0..1000)
        .filter(|_| ready.pick(&mut rng) == Some(&[200][..]))
        .count();
    assert!((400..600).contains(&rare), "{rare}");
    assert!((0..1000).all(|_| ready.pick(&mut rng) != Some(&[201][..])));
}

/// The runs of the built-in engine report the end state's merge pairs.
#[test]
fn runs_report_the_end_states_merge_pairs() {
    let opts = RunOptions {
        paths: true,
        ..RunOptions::fuzzing()
    };
    let r = run_spec(&stream(MOVED), &spec(), &opts);
    assert!(r.passed());
    assert_eq!(r.state, pairs(MOVED));
    let r = run_spec(&stream(MOVED), &spec(), &RunOptions::fuzzing());
    assert!(r.state.is_empty());
}
