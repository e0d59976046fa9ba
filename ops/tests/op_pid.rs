//! `Op::pid_mut` reaches the process `Op::pid` names, for every op kind.

use rmaplab_ops::parse::parse;
use rmaplab_ops::{Op, Pid};

#[test]
fn pid_mut_changes_the_pid_that_pid_reads() {
    let text = "version 2\nmmap p0 0 4 rw anon\nmunmap p0 0 1\nmprotect p0 0 1 r\n\
                mremap p0 0 1 1 to 8\nmadvise p0 0 1 dontneed\nfork p0\nexit p1\n\
                read p0 1\nwrite p0 1 2\nswapout p0 1\nmigrate p0 1\nreferenced p0 1\n\
                exec-stack p0 16 2\nexec-shift p0 4\nreclaim\nfail-alloc 1\ndump\n";
    let s = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let mut kinds = std::collections::BTreeSet::new();
    for op in &s.ops {
        let mut op: Op = *op;
        let before = op.pid();
        assert_eq!(op.pid_mut().map(|p| *p), before, "{op:?}");
        if let Some(p) = op.pid_mut() {
            *p = Pid(7);
            assert_eq!(op.pid(), Some(Pid(7)), "{op:?}");
        }
        kinds.insert(op.keyword());
    }
    // Every op kind (`Op::KINDS` counts the decoder's `par` too).
    assert_eq!(kinds.len(), Op::KINDS - 1, "every op kind: {kinds:?}");
}
