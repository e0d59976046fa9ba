//! A deferred failure (a `VM_WARN_ON` recorded inside a hook) moves the
//! epoch forward: the runner reruns the self-check, which reports it, only
//! after an op that moved the epoch, and an op that defers a failure may
//! touch no other object the epoch counts.

use crate::designs::chain_2010::{Chain2010, Era};
use crate::mmu::Mmu;
use crate::rmap::RmapError;
use rmaplab_ops::parse::parse;

#[test]
fn a_deferred_failure_moves_the_epoch_forward() {
    let mut m = Mmu::new(Chain2010::new(Era::E2022));
    for op in parse("mmap p0 10 4 rw anon\nwrite p0 10 1\nfork p0\n")
        .unwrap()
        .ops
    {
        m.apply(&op).expect("op");
    }
    let before = m.rmap().core.epoch();
    assert!(before > 0);
    m.rmap_mut().core.defer(RmapError::Check {
        name: "interval-tree",
        detail: "an AVC still in its tree".into(),
    });
    assert!(m.rmap().core.epoch() > before);
}
