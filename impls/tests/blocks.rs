//! Concurrent blocks through the public API: a split mutator racing rmap
//! walks under the era's lock model, explored exhaustively up to a
//! preemption bound, failing schedules replayed from their rendering.

use rmaplab_impls::designs::chain_2010::{Chain2010, Era};
use rmaplab_impls::designs::prealloc_2026::Prealloc2026;
use rmaplab_impls::designs::single_list_2004::SingleList2004;
use rmaplab_impls::mmu::{ActorOutcome, BlockOutcome, Mmu, step_names};
use rmaplab_impls::rmap::Rmap;
use rmaplab_impls::sched::{Item, RunLen, Schedule};
use rmaplab_ops::{Op, Outcome, Pid, Stream};

fn ops(text: &str) -> Vec<Op> {
    text.parse::<Stream>().expect("ops").ops
}

/// Runs `setup` sequentially (every op must succeed).
fn machine<R: Rmap>(rmap: R, setup: &str) -> Mmu<R> {
    let mut m = Mmu::new(rmap);
    for op in ops(setup) {
        m.apply(&op).expect("setup op");
    }
    m
}

/// A page at index 2 in a two-page VMA of pgoff 2 at 102, and the rest of
/// its original VMA around the hole at 2: moving it back merges into the
/// VMA at 0 (pgoff 0), which the interval tree walks before the source.
const MERGE_BACK: &str = "mmap p0 0 8 rw anon\nwrite p0 2 0x22\nmremap p0 2 2 2 to 102\n";

fn mremap_back_and_migrate() -> Vec<Op> {
    ops("mremap p0 102 2 2 to 2\nmigrate p0 102\n")
}

fn explore<R: Rmap + Clone>(m: &mut Mmu<R>, block: &[Op], bound: u32) -> BlockOutcome {
    m.run_block(block, &Schedule::Explore { bound }, 100_000)
        .expect("a valid block")
}

fn replay_strict<R: Rmap + Clone>(m: &mut Mmu<R>, block: &[Op], o: &BlockOutcome) -> BlockOutcome {
    let items: Vec<Item> = o.trace.items();
    m.run_block(
        block,
        &Schedule::Replay {
            items,
            strict: true,
        },
        1,
    )
    .expect("a valid block")
}

#[test]
fn mremap_merging_back_races_migrate_safely_with_need_rmap_locks() {
    let mut m = machine(Chain2010::new(Era::E2022), MERGE_BACK);
    assert!(m.lock_model().need_rmap_locks);
    let block = mremap_back_and_migrate();
    let o = explore(&mut m, &block, 3);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert!(!o.capped);
    assert!(o.schedules > 10, "only {} schedules", o.schedules);
    // The first schedule (no preemption, letter order): the move, then
    // the migration of the page at its new place.
    assert_eq!(o.outcomes[0], Some(ActorOutcome::Op(Outcome::Ok)));
    assert_eq!(m.apply(&ops("read p0 2")[0]), Ok(Outcome::Value(0x22)));
    // ... where there is no page any more: the walk ends at its lock. (The
    // source and the VMA it merges into are write-locked first: per-VMA
    // locks, 6.4+.)
    assert_eq!(
        o.trace.labelled(),
        "A:mremap.lookup A:merge.lookup A:merge.commit A:merge.remove#0 A:copy_vma \
         A:move_ptes#0 A:unmap.zap#0 A:unmap.unlink#0 A:end B:w1.lock"
    );
    // Migration first, then the move: the page moves with its new frame.
    let mut m = machine(Chain2010::new(Era::E2022), MERGE_BACK);
    let items = vec![
        Item {
            actor: 1,
            run: RunLen::Finish,
        },
        Item {
            actor: 0,
            run: RunLen::Finish,
        },
    ];
    let o = m
        .run_block(
            &block,
            &Schedule::Replay {
                items,
                strict: true,
            },
            1,
        )
        .unwrap();
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert_eq!(m.stats().migrations, 1);
    assert_eq!(m.apply(&ops("read p0 2")[0]), Ok(Outcome::Value(0x22)));
}

#[test]
fn without_need_rmap_locks_a_schedule_leaves_a_migration_entry() {
    let mut m = machine(Chain2010::new(Era::E2022), MERGE_BACK);
    let mut locks = m.lock_model();
    locks.need_rmap_locks = false;
    m.set_lock_model(locks);
    let pre = m.clone();
    let block = mremap_back_and_migrate();
    let o = explore(&mut m, &block, 3);
    let f = o.failure.clone().expect("a failing schedule");
    assert_eq!(f.invariant, "stale-migration-entry", "{f:?}");
    assert_eq!(f.actor, Some('B'));
    assert!(f.schedule.starts_with("! "), "{}", f.schedule);
    // The walk visits the merged destination before the source, and the
    // move runs between the two visits of the second walk.
    let labelled = o.trace.labelled();
    let pos = |s: &str| {
        labelled
            .find(s)
            .unwrap_or_else(|| panic!("{s} in {labelled}"))
    };
    assert!(pos("B:w2.visit#0") < pos("A:move_ptes#0"), "{labelled}");
    assert!(pos("A:move_ptes#0") < pos("B:w2.visit#1"), "{labelled}");
    // Its rendering replays exactly that failure.
    let mut again = pre.clone();
    let r = replay_strict(&mut again, &block, &o);
    assert_eq!(r.schedules, 1);
    assert_eq!(
        r.failure.as_ref().map(|f| f.invariant.as_str()),
        Some("stale-migration-entry")
    );
    assert_eq!(r.trace, o.trace);
    assert_eq!(r.failure.unwrap().schedule, f.schedule);
    // With the design's own lock model the same schedule cannot run as
    // written (the move waits for the walk), and the lenient form passes.
    let mut fixed = machine(Chain2010::new(Era::E2022), MERGE_BACK);
    let r = replay_strict(&mut fixed, &block, &o);
    assert_eq!(r.failure.map(|f| f.invariant), Some("schedule".to_string()));
    let mut fixed = machine(Chain2010::new(Era::E2022), MERGE_BACK);
    let lenient = fixed
        .run_block(
            &block,
            &Schedule::Replay {
                items: o.trace.items(),
                strict: false,
            },
            1,
        )
        .unwrap();
    assert!(lenient.failure.is_none(), "{:?}", lenient.failure);
}

#[test]
fn a_missed_mapping_is_busy_inside_a_block() {
    // Without the rmap locks some schedule lets the first walk miss the
    // moving PTE: migrate answers busy and puts its entries back.
    let mut m = machine(Chain2010::new(Era::E2022), MERGE_BACK);
    let mut locks = m.lock_model();
    locks.need_rmap_locks = false;
    m.set_lock_model(locks);
    let block = mremap_back_and_migrate();
    // A moves after B's first visit of w1 (the destination, still empty),
    // then B's visit of the source finds nothing.
    let items = vec![
        Item {
            actor: 0,
            run: RunLen::Until("copy_vma".into()),
        },
        Item {
            actor: 1,
            run: RunLen::Until("w1.visit#0".into()),
        },
        Item {
            actor: 0,
            run: RunLen::Until("move_ptes#0".into()),
        },
        Item {
            actor: 1,
            run: RunLen::Finish,
        },
    ];
    let o = m
        .run_block(
            &block,
            &Schedule::Replay {
                items,
                strict: true,
            },
            1,
        )
        .unwrap();
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert_eq!(o.outcomes[1], Some(ActorOutcome::Busy));
    assert_eq!(m.apply(&ops("read p0 2")[0]), Ok(Outcome::Value(0x22)));
}

/// fork copies the parent's migration entries (read-only for COW); the
/// design's walk order decides whether the second walk finds the copy.
const FORK_SETUP: &str = "mmap p0 0 4 rw anon\nwrite p0 1 0x11\n";

#[test]
fn fork_racing_migrate_is_safe_with_tail_order() {
    let mut m = machine(Chain2010::new(Era::E2022), FORK_SETUP);
    let block = ops("fork p0\nmigrate p0 1\n");
    let o = explore(&mut m, &block, 3);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert!(o.schedules > 5);
    for p in [0, 1] {
        let read = Op::Read {
            pid: Pid(p),
            addr: 1,
        };
        assert_eq!(m.apply(&read), Ok(Outcome::Value(0x11)));
    }
}

#[test]
fn fork_racing_migrate_fails_with_head_order() {
    // single-list-2004 links the child at the head of the list (2.6.7 …
    // 2.6.17): a walk visits the child before the parent, so an entry
    // copied between the two visits survives the migration.
    let mut m = machine(SingleList2004::default(), FORK_SETUP);
    let pre = m.clone();
    let block = ops("fork p0\nmigrate p0 1\n");
    let o = explore(&mut m, &block, 3);
    let f = o.failure.clone().expect("a failing schedule");
    assert_eq!(f.invariant, "stale-migration-entry", "{f:?}");
    let mut again = pre.clone();
    let r = replay_strict(&mut again, &block, &o);
    assert_eq!(r.trace, o.trace);
    assert_eq!(r.failure.map(|f| f.invariant), Some(f.invariant));
}

#[test]
fn a_fault_on_a_migration_entry_waits_for_the_page_lock() {
    let mut m = machine(Chain2010::new(Era::E2022), FORK_SETUP);
    let block = ops("migrate p0 1\nread p0 1\n");
    let o = explore(&mut m, &block, 4);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert_eq!(o.outcomes[1], Some(ActorOutcome::Op(Outcome::Value(0x11))));
    // The read never ran while the PTE was a migration entry (from
    // w1.visit#0 to w2.visit#0), in any schedule.
    for bound in 0..=4 {
        let mut e = Schedule::Explore { bound }.strategy(0);
        loop {
            let mut c = m.clone();
            let (run, s) = c.run_schedule(&block, e);
            e = s;
            let Some(run) = run else { break };
            let l = run.trace.labelled();
            // In 6.18 the read is a per-VMA-lock fault: its page-table
            // work is its last step, under the VMA lock or mmap_lock.
            let read = l
                .find("B:fault.install")
                .or_else(|| l.find("B:fault.mmap"))
                .unwrap();
            assert!(
                read < l.find("A:w1.visit#0").unwrap() || read > l.find("A:w2.visit#0").unwrap(),
                "{l}"
            );
            assert_eq!(
                run.outcomes[1],
                Some(ActorOutcome::Op(Outcome::Value(0x11)))
            );
        }
    }
}

#[test]
fn pct_and_random_schedules_are_deterministic() {
    let block = mremap_back_and_migrate();
    for sched in [
        Schedule::Pct { seed: 7, depth: 3 },
        Schedule::Random { seed: 7 },
        Schedule::Bytes(vec![1, 0, 1, 1, 0]),
    ] {
        let mut a = machine(Chain2010::new(Era::E2022), MERGE_BACK);
        let mut b = machine(Chain2010::new(Era::E2022), MERGE_BACK);
        let oa = a.run_block(&block, &sched, 10).unwrap();
        let ob = b.run_block(&block, &sched, 10).unwrap();
        assert_eq!(oa.schedules, 1);
        assert_eq!(oa.trace, ob.trace, "{sched:?}");
        assert!(oa.failure.is_none());
    }
}

#[test]
fn invalid_blocks_are_refused() {
    let mut m = machine(Chain2010::new(Era::E2022), FORK_SETUP);
    let e = m
        .run_block(&ops("migrate p0 1\ndump\n"), &Schedule::default(), 10)
        .unwrap_err();
    assert!(e.contains("dump"), "{e}");
    assert!(
        m.run_block(&ops("migrate p0 1\n"), &Schedule::default(), 10)
            .is_err()
    );
}

#[test]
fn referenced_counts_the_mappings() {
    let mut m = machine(Chain2010::new(Era::E2022), FORK_SETUP);
    assert_eq!(m.referenced(Pid(0), 1), Ok(Outcome::Value(1)));
    m.apply(&ops("fork p0")[0]).unwrap();
    assert_eq!(m.referenced(Pid(0), 1), Ok(Outcome::Value(2)));
    // No anonymous page there: `ok 0` (the contract's `ok N`, N = 0).
    assert_eq!(m.referenced(Pid(0), 3), Ok(Outcome::Value(0)));
}

#[test]
fn step_names_are_listed_per_op() {
    let names = step_names(&ops("mremap p0 0 1 1 to 9")[0]);
    assert!(names.contains(&"copy_vma") && names.contains(&"move_ptes#i"));
    assert_eq!(
        step_names(&ops("migrate p0 0")[0]),
        [
            "w1.lock",
            "w1.visit#i",
            "w1.unlock",
            "copy",
            "w2.lock",
            "w2.visit#i",
            "w2.unlock"
        ]
    );
}

#[test]
fn fork_in_the_migration_gap_copies_read_only_entries() {
    let mut m = machine(Chain2010::new(Era::E2022), FORK_SETUP);
    let block = ops("fork p0\nmigrate p0 1\n");
    let items = vec![
        Item {
            actor: 1,
            run: RunLen::Until("copy".into()),
        },
        Item {
            actor: 0,
            run: RunLen::Finish,
        },
    ];
    let o = m
        .run_block(
            &block,
            &Schedule::Replay {
                items,
                strict: true,
            },
            1,
        )
        .unwrap();
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert_eq!(o.outcomes[1], Some(ActorOutcome::Op(Outcome::Ok)));
    // Both processes map the new page read-only (COW), once each.
    let (p0, p1) = (m.pte(Pid(0), 1), m.pte(Pid(1), 1));
    assert_eq!(p0, p1);
    let rmaplab_impls::mmu::Pte::Present { writable, .. } = p0 else {
        panic!("{p0:?}")
    };
    assert!(!writable);
    assert_eq!(m.anon_pte_at(Pid(0), 1).unwrap().mapcount, 2);
}

#[test]
fn unmapping_in_the_migration_gap_leaks_nothing() {
    gap_cases(|| Chain2010::new(Era::E2022));
    gap_cases(|| Chain2010::new(Era::E2010));
    gap_cases(Prealloc2026::default);
    gap_cases(SingleList2004::default);
}

/// Every schedule (up to 3 preemptions) of an unmapping op racing a walk
/// passes and leaves nothing behind once the process exits.
fn gap_cases<R: Rmap + Clone>(design: impl Fn() -> R) {
    for block in [
        "munmap p0 0 4\nmigrate p0 1\n",
        "exit p0\nmigrate p0 1\n",
        "mprotect p0 0 4 r\nmigrate p0 1\n",
        "munmap p0 0 4\nswapout p0 1\n",
    ] {
        let m = machine(design(), FORK_SETUP);
        let block = ops(block);
        let mut e = Schedule::Explore { bound: 3 }.strategy(0);
        let mut n = 0;
        loop {
            let mut c = m.clone();
            let (run, s) = c.run_schedule(&block, e);
            e = s;
            let Some(run) = run else { break };
            n += 1;
            let name = c.rmap().name();
            assert!(run.failure.is_none(), "{name} {block:?}: {:?}", run.failure);
            for op in ops("reclaim\nexit p0\n") {
                let _ = c.apply(&op);
            }
            assert_eq!(
                c.anon_frames_live(),
                0,
                "{name} {block:?}: {}",
                run.trace.labelled()
            );
        }
        assert!(n > 1, "{block:?}");
    }
}

#[test]
fn merge_back_passes_in_the_other_eras() {
    // The list era (2010) has no need_rmap_locks, but on the 6.18 MMU the
    // VMA at 0 is the piece __split_vma made when the page moved out, so
    // it follows the source on the list; the tree eras order by pgoff and
    // take the rmap locks.
    for era in [Era::E2010, Era::E2015] {
        let mut m = machine(Chain2010::new(era), MERGE_BACK);
        let o = explore(&mut m, &mremap_back_and_migrate(), 3);
        assert!(o.failure.is_none(), "{era:?}: {:?}", o.failure);
    }
    let mut m = machine(Prealloc2026::default(), MERGE_BACK);
    let o = explore(&mut m, &mremap_back_and_migrate(), 3);
    assert!(o.failure.is_none(), "{:?}", o.failure);
}

#[test]
fn blocks_run_on_a_design_built_by_name() {
    use rmaplab_impls::designs::registry::{Design, DesignSpec};
    let spec = DesignSpec::new(Design::Chain2010);
    let mut m = machine(spec.build_cloneable().expect("a design"), MERGE_BACK);
    let o = explore(&mut m, &mremap_back_and_migrate(), 2);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    // 28 before faults and VMA write locks were steps of their own.
    assert_eq!(o.schedules, 38);
}
