//! The per-fork-tree counters (`Rmap::fork_trees`, shown by `--stats`) add
//! up to the design's totals (`Rmap::counters`) when every VMA with anon
//! memory is linked into a tree, and a lone family is counted exactly.

use rmaplab_impls::designs::single_list_2004::{ANON_VMA_BYTES, SingleList2004, VMA_DELTA_BYTES};
use rmaplab_impls::mmu::Mmu;
use rmaplab_impls::rmap::Rmap;
use rmaplab_ops::parse::parse;

fn after<R: Rmap>(rmap: R, text: &str) -> Mmu<R> {
    let mut m = Mmu::new(rmap);
    for op in parse(text).expect("stream").ops {
        m.apply(&op).expect("op");
    }
    m
}

#[test]
fn single_list_2004_trees_add_up_to_its_counters() {
    // Two families: the first VMA's (p0's and its child p2's VMAs on one
    // list; p1 exited) and that of p0's second VMA.
    let m = after(
        SingleList2004::default(),
        "mmap p0 10 4 rw anon\nwrite p0 10 1\nfork p0\nexit p1\nfork p0\n\
         mmap p0 40 4 rw anon\nwrite p0 40 2\n",
    );
    let trees = m.rmap().fork_trees();
    let c = m.rmap().counters();
    assert_eq!(trees.len(), 2);
    assert_eq!(trees.iter().map(|t| t.anon_vmas).sum::<u64>(), c.anon_vmas);
    assert_eq!(trees.iter().map(|t| t.bytes).sum::<u64>(), c.bytes);
    let mut shapes: Vec<(u64, u64)> = trees.iter().map(|t| (t.vmas, t.bytes)).collect();
    shapes.sort();
    assert_eq!(
        shapes,
        [
            (1, ANON_VMA_BYTES + VMA_DELTA_BYTES),
            (2, ANON_VMA_BYTES + 2 * VMA_DELTA_BYTES)
        ]
    );
}
