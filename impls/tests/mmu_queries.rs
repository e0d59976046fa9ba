//! The MMU's queries that the runner uses to skip work (`may_allocate`)
//! answer exactly, not just conservatively: a query that says "maybe" everywhere would still be
//! correct but would turn the runner's savings off unnoticed. The same for
//! the counters the fuzz engine reports (`MmuStats`). These tests pin the
//! answers on small streams (docs/mutation-testing.md: they kill
//! mutants no end-to-end test can see).

use rmaplab_impls::designs::chain_2010::{Chain2010, Era};
use rmaplab_impls::mmu::Mmu;
use rmaplab_ops::Op;
use rmaplab_ops::parse::parse;

/// The MMU after `text`, on chain-2010 (era 2022, as Linux 6.18).
fn after(text: &str) -> Mmu<Chain2010> {
    let mut m = Mmu::new(Chain2010::new(Era::E2022));
    for op in parse(text).expect("stream").ops {
        m.apply(&op).expect("op");
    }
    m
}

fn op(text: &str) -> Op {
    parse(text).expect("op").ops.remove(0)
}

#[test]
fn may_allocate_answers_exactly_for_writes() {
    let m = after("mmap p0 10 4 rw anon\nwrite p0 10 1\nmmap p0 40 4 rw anon\n");
    // A VMA without an anon_vma: the write faults it in (anon_vma_prepare).
    assert!(m.may_allocate(&op("write p0 40 1")));
    // A VMA that has one: the fault can allocate no design object.
    assert!(!m.may_allocate(&op("write p0 11 1")));
    // No VMA there: the write fails with EFAULT before any allocation.
    assert!(!m.may_allocate(&op("write p0 30 1")));
    // Reads never allocate.
    assert!(!m.may_allocate(&op("read p0 40")));
}

#[test]
fn may_allocate_answers_exactly_for_forks() {
    // Nothing written: no VMA has an anon_vma, so dup_mmap clones none.
    let m = after("mmap p0 10 4 rw anon\nmmap p0 40 4 rw anon\n");
    assert!(!m.may_allocate(&op("fork p0")));
    // The only anon_vma is in a VMA fork does not copy (MADV_DONTFORK).
    let m = after(
        "mmap p0 10 4 rw anon\nwrite p0 10 1\nmadvise p0 10 4 dontfork\nmmap p0 40 4 rw anon\n",
    );
    assert!(!m.may_allocate(&op("fork p0")));
    // ... or wipes (MADV_WIPEONFORK: the child gets an empty VMA).
    let m = after("mmap p0 10 4 rw anon\nwrite p0 10 1\nmadvise p0 10 4 wipeonfork\n");
    assert!(!m.may_allocate(&op("fork p0")));
    // A copied VMA with an anon_vma: anon_vma_fork allocates.
    let m = after("mmap p0 10 4 rw anon\nwrite p0 10 1\nmmap p0 40 4 rw anon\n");
    assert!(m.may_allocate(&op("fork p0")));
    // No such process.
    assert!(!m.may_allocate(&op("fork p3")));
}

#[test]
fn a_write_that_swaps_in_an_exclusive_page_is_no_cow_reuse() {
    // do_swap_page maps an exclusive page writable on a write fault and
    // the write lands there: one fault, no do_wp_page (which would count a
    // reuse).
    let mut m = after("mmap p0 10 4 rw anon\nwrite p0 10 1\nswapout p0 10\n");
    let before = m.stats();
    m.apply(&op("write p0 10 2")).expect("write");
    let s = m.stats();
    assert_eq!(s.faults, before.faults + 1);
    assert_eq!(
        (s.cow_reuses, s.cow_copies),
        (before.cow_reuses, before.cow_copies)
    );
    assert_eq!(
        m.apply(&op("read p0 10")).expect("read"),
        rmaplab_ops::Outcome::Value(2)
    );
}

#[test]
fn the_fork_counter_counts_successful_forks_exactly() {
    // `MmuStats::forks` (the fuzz engine's stats): one per fork that made
    // a child, none for a fork that failed for want of memory.
    let mut m = after("mmap p0 10 4 rw anon\nwrite p0 10 1\nfork p0\nfork p1\n");
    assert_eq!(m.stats().forks, 2);
    m.apply(&op("fail-alloc 1")).expect("fail-alloc");
    assert_eq!(
        m.apply(&op("fork p0")).expect("fork"),
        rmaplab_ops::Outcome::Err(rmaplab_ops::Errno::ENOMEM)
    );
    assert_eq!(m.stats().forks, 2);
    m.apply(&op("fork p0")).expect("fork");
    assert_eq!(m.stats().forks, 3);
}
