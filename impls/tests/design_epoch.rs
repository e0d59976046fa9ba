//! `Rmap::epoch` is the sum of the mutation counts of the containers the
//! oracle's checks read: it never goes back, and it moves whenever the
//! design's objects change (the runner skips the structural checks after
//! an op that left it alone, so an epoch that stands still or returns to
//! an earlier value would hide a change).

use rmaplab_impls::designs::chain_2010::{Chain2010, Era};
use rmaplab_impls::designs::prealloc_2026::Prealloc2026;
use rmaplab_impls::designs::single_list_2004::SingleList2004;
use rmaplab_impls::mmu::Mmu;
use rmaplab_impls::rmap::Rmap;
use rmaplab_ops::parse::parse;

/// Forks (chains grow by more AVCs than anon_vmas), exits, splits, merges,
/// remaps and COW faults.
const STREAM: &str = "\
mmap p0 10 8 rw anon
write p0 10 1
write p0 14 2
fork p0
fork p1
write p1 11 3
mprotect p2 12 2 r
mremap p0 10 4 4 to 40
exit p1
munmap p0 14 2
fork p0
exit p2
exit p3
exit p0
";

fn epochs_follow_changes<R: Rmap>(rmap: R, what: &str) {
    let mut m = Mmu::new(rmap);
    let mut epoch = m.rmap().epoch().expect("the design keeps an epoch");
    for (i, op) in parse(STREAM).expect("stream").ops.iter().enumerate() {
        let before = m.rmap().counters();
        m.apply(op).expect("op");
        let now = m.rmap().epoch().expect("epoch");
        assert!(
            now >= epoch,
            "{what}: op {i} took the epoch back ({epoch} -> {now})"
        );
        if m.rmap().counters() != before {
            assert!(
                now > epoch,
                "{what}: op {i} changed the design, not the epoch"
            );
        }
        epoch = now;
    }
}

#[test]
fn epochs_never_go_back_and_follow_every_change() {
    for era in [Era::E2010, Era::E2015, Era::E2022] {
        epochs_follow_changes(Chain2010::new(era), &format!("chain-2010 era {era}"));
    }
    epochs_follow_changes(Prealloc2026::default(), "prealloc-2026");
    epochs_follow_changes(SingleList2004::default(), "single-list-2004");
}
