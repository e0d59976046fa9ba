//! The oracle can fail: designs broken on purpose (a walk that skips a VMA,
//! a dropped interval-tree update, a forgotten unlink, a page mapped to a
//! freed object, a re-injected historical bug) must be caught with the
//! right invariant, and a corpus file whose expectation is wrong must fail.

use rmaplab::run::runner::{RunOptions, RunReport, run_design};
use rmaplab_impls::designs::chain_2010::{Chain2010, Era};
use rmaplab_impls::designs::registry::{Design, DesignSpec};
use rmaplab_impls::designs::single_list_2004::SingleList2004;
use rmaplab_impls::rmap::{
    AllocSchedule, AnonMapping, CloneOp, Counters, MergeSrc, Rmap, RmapError, VmaId, VmaView,
};
use rmaplab_ops::Stream;
use rmaplab_ops::parse::parse;

/// How a wrapped design is broken.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sabotage {
    /// The walk drops the last candidate VMA.
    WalkSkipsLast,
    /// `vma_post_update` is never called: the interval tree keeps stale keys.
    DropTreeUpdate,
    /// `unlink_anon_vmas` does nothing.
    ForgetUnlink,
    /// A COW reuse records a mapping that names nothing.
    BogusMove,
}

#[derive(Clone)]
struct Broken<R> {
    inner: R,
    how: Sabotage,
}

impl<R: Rmap> Rmap for Broken<R> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn config(&self) -> Vec<(&'static str, String)> {
        self.inner.config()
    }
    fn has_anon_vma(&self, vma: VmaId) -> bool {
        self.inner.has_anon_vma(vma)
    }
    fn anon_vma_prepare(
        &mut self,
        view: &dyn VmaView,
        vma: VmaId,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<(), RmapError> {
        self.inner.anon_vma_prepare(view, vma, next, prev)
    }
    fn anon_vma_fork(
        &mut self,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<(), RmapError> {
        self.inner.anon_vma_fork(view, child, parent)
    }
    fn anon_vma_clone(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        op: CloneOp,
    ) -> Result<(), RmapError> {
        self.inner.anon_vma_clone(view, dst, src, op)
    }
    fn dup_anon_vma(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<(), RmapError> {
        self.inner.dup_anon_vma(view, dst, src)
    }
    fn unlink_anon_vmas(&mut self, view: &dyn VmaView, vma: VmaId) -> Result<(), RmapError> {
        if self.how == Sabotage::ForgetUnlink {
            return Ok(());
        }
        self.inner.unlink_anon_vmas(view, vma)
    }
    fn is_mergeable_anon_vma(&self, tgt: VmaId, src: MergeSrc) -> bool {
        self.inner.is_mergeable_anon_vma(tgt, src)
    }
    fn is_mergeable_anon_vma_extend(&self, tgt: VmaId, src: VmaId) -> bool {
        self.inner.is_mergeable_anon_vma_extend(tgt, src)
    }
    fn anon_vmas_compatible(&self, prev: VmaId, next: VmaId) -> bool {
        self.inner.anon_vmas_compatible(prev, next)
    }
    fn vma_pre_update(&mut self, vma: VmaId) {
        if self.how != Sabotage::DropTreeUpdate {
            self.inner.vma_pre_update(vma)
        }
    }
    fn vma_post_update(&mut self, view: &dyn VmaView, vma: VmaId) {
        if self.how != Sabotage::DropTreeUpdate {
            self.inner.vma_post_update(view, vma)
        }
    }
    fn folio_add_new_anon_rmap(
        &mut self,
        vma: VmaId,
        exclusive: bool,
    ) -> Result<AnonMapping, RmapError> {
        self.inner.folio_add_new_anon_rmap(vma, exclusive)
    }
    fn folio_move_anon_rmap(
        &mut self,
        vma: VmaId,
        current: AnonMapping,
    ) -> Result<AnonMapping, RmapError> {
        if self.how == Sabotage::BogusMove {
            // A handle to a slot far beyond any object the design made.
            let mut a = rmaplab_impls::arena::Arena::new();
            let h = (0..1000)
                .map(|_| a.insert(()))
                .last()
                .expect("1000 handles");
            let _ = self.inner.folio_move_anon_rmap(vma, current)?;
            return Ok(h);
        }
        self.inner.folio_move_anon_rmap(vma, current)
    }
    fn rmap_walk(
        &self,
        view: &dyn VmaView,
        mapping: AnonMapping,
        index: u64,
        out: &mut Vec<VmaId>,
    ) -> Result<(), RmapError> {
        self.inner.rmap_walk(view, mapping, index, out)?;
        if self.how == Sabotage::WalkSkipsLast {
            out.pop();
        }
        Ok(())
    }
    fn mapping_alive(&self, mapping: AnonMapping) -> bool {
        self.inner.mapping_alive(mapping)
    }
    fn counters(&self) -> Counters {
        self.inner.counters()
    }
    fn claimed_bound(&self) -> Option<u64> {
        self.inner.claimed_bound()
    }
    fn self_check(&self, view: &dyn VmaView) -> Result<(), RmapError> {
        // The sabotaged designs' own checks would often catch the damage
        // first; these tests are about the oracle's independent checks.
        let _ = view;
        Ok(())
    }
    fn alloc_sites(&self) -> &'static [&'static str] {
        self.inner.alloc_sites()
    }
    fn alloc_schedule(&mut self) -> &mut AllocSchedule {
        self.inner.alloc_schedule()
    }
    fn describe(&self, view: &dyn VmaView, mapping: Option<AnonMapping>, vmas: &[VmaId]) -> String {
        self.inner.describe(view, mapping, vmas)
    }
}

fn stream(text: &str) -> Stream {
    parse(text).expect("test stream parses")
}

fn run<R: Rmap + Clone>(s: &Stream, rmap: R) -> RunReport {
    run_design(
        s,
        rmap,
        &DesignSpec::new(Design::SingleList2004),
        &RunOptions::default(),
    )
}

fn invariant(r: &RunReport) -> Option<&str> {
    r.failure.as_ref().map(|f| f.broken.invariant.as_str())
}

const FORK_AND_WRITE: &str = "
mmap p0 0 4 rw anon
write p0 0 1
write p0 1 2
fork p0
read p1 0
";

#[test]
fn the_unbroken_designs_pass_these_streams() {
    let s = stream(FORK_AND_WRITE);
    assert_eq!(invariant(&run(&s, SingleList2004::default())), None);
    assert_eq!(invariant(&run(&s, Chain2010::new(Era::E2022))), None);
}

#[test]
fn a_walk_that_skips_a_vma_breaks_findability() {
    let s = stream(FORK_AND_WRITE);
    for r in [
        run(
            &s,
            Broken {
                inner: SingleList2004::default(),
                how: Sabotage::WalkSkipsLast,
            },
        ),
        run(
            &s,
            Broken {
                inner: Chain2010::new(Era::E2022),
                how: Sabotage::WalkSkipsLast,
            },
        ),
    ] {
        assert_eq!(invariant(&r), Some("findability"), "{:?}", r.failure);
        let f = r.failure.unwrap();
        assert_eq!(f.op_index, Some(1), "caught at the first write: {f}");
        assert!(f.broken.pid.is_some() && f.broken.page.is_some());
    }
}

#[test]
fn a_dropped_interval_tree_update_breaks_findability() {
    // A new mmap merges into a faulted VMA, which grows from pgoff range
    // [0, 3] to [0, 7]: without the re-key the tree still says [0, 3] and
    // the walk of the page at 6 never visits the VMA.
    let s = stream(
        "
mmap p0 0 4 rw anon
write p0 0 1
mmap p0 4 4 rw anon
write p0 6 2
",
    );
    let ok = run(&s, Chain2010::new(Era::E2022));
    assert_eq!(invariant(&ok), None);
    let bad = run(
        &s,
        Broken {
            inner: Chain2010::new(Era::E2022),
            how: Sabotage::DropTreeUpdate,
        },
    );
    assert_eq!(invariant(&bad), Some("findability"), "{:?}", bad.failure);
}

#[test]
fn a_forgotten_unlink_leaks() {
    let s = stream("mmap p0 0 4 rw anon\nwrite p0 0 1\nmunmap p0 0 4\n");
    let r = run(
        &s,
        Broken {
            inner: SingleList2004::default(),
            how: Sabotage::ForgetUnlink,
        },
    );
    assert_eq!(invariant(&r), Some("leak"), "{:?}", r.failure);
    let r = run(
        &s,
        Broken {
            inner: Chain2010::new(Era::E2010),
            how: Sabotage::ForgetUnlink,
        },
    );
    assert_eq!(invariant(&r), Some("leak"), "{:?}", r.failure);
}

#[test]
fn a_page_mapped_to_a_freed_object_is_dangling() {
    // The child exits, so the parent's write reuses the page in place.
    let s = stream(
        FORK_AND_WRITE
            .to_string()
            .as_str()
            .replace("read p1 0", "exit p1\nwrite p0 0 9")
            .as_str(),
    );
    let r = run(
        &s,
        Broken {
            inner: SingleList2004::default(),
            how: Sabotage::BogusMove,
        },
    );
    assert_eq!(invariant(&r), Some("dangling"), "{:?}", r.failure);
}

#[test]
fn failures_name_the_replay_command() {
    let s = stream(FORK_AND_WRITE);
    let opts = RunOptions {
        replay: Some("rmaplab run x.ops --design single-list-2004".into()),
        ..RunOptions::default()
    };
    let r = run_design(
        &s,
        Broken {
            inner: SingleList2004::default(),
            how: Sabotage::WalkSkipsLast,
        },
        &DesignSpec::new(Design::SingleList2004),
        &opts,
    );
    let f = r.failure.expect("fails");
    assert!(f.broken.detail.contains("replay: rmaplab run x.ops"), "{f}");
    assert!(f.to_string().starts_with("op 1 (line 3)"), "{f}");
}

#[test]
fn a_wrong_corpus_expectation_fails_the_corpus_check() {
    let dir = std::env::temp_dir().join(format!("rmaplab-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.ops");
    let bad = dir.join("bad.ops");
    let body = "mmap p0 0 4 rw anon\nwrite p0 0 1\nread p0 1\ndump\n";
    std::fs::write(
        &good,
        format!("# dump 1: p0 vmas 0-4\n# dump 1: p0 pages 0:f0/1 1:Z/0\n{body}"),
    )
    .unwrap();
    std::fs::write(
        &bad,
        format!("# dump 1: p0 vmas 0-4\n# dump 1: p0 pages 0:f0/2 1:Z/0\n{body}"),
    )
    .unwrap();
    assert_eq!(rmaplab::run::corpus::check_corpus(&good), Ok(()));
    let err = rmaplab::run::corpus::check_corpus(&bad).unwrap_err();
    assert!(err.contains("expected 0:f0/2 1:Z/0"), "{err}");
    std::fs::write(&bad, format!("# expect: fail findability\n{body}")).unwrap();
    assert!(rmaplab::run::corpus::check_corpus(&bad).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

/// Reclaim and migration walk the reverse map themselves: with the oracle's
/// per-op checks off, a walk that misses a VMA is caught by `swapout` (a
/// PTE left mapping the page) and by `migrate` (a PTE left on the old
/// frame), at that op.
#[test]
fn swapout_and_migrate_catch_a_walk_that_skips_a_vma() {
    let unchecked = RunOptions {
        check: false,
        ..RunOptions::default()
    };
    for (op, idx) in [("swapout p0 0", 3), ("migrate p1 0", 3)] {
        let s = stream(&format!(
            "mmap p0 0 4 rw anon\nwrite p0 0 1\nfork p0\n{op}\nread p1 0\n"
        ));
        let ok = run_design(
            &s,
            Chain2010::new(Era::E2022),
            &DesignSpec::new(Design::Chain2010),
            &unchecked,
        );
        assert_eq!(invariant(&ok), None, "{op}: {:?}", ok.failure);
        for inner_is_2004 in [false, true] {
            let r = if inner_is_2004 {
                run_design(
                    &s,
                    Broken {
                        inner: SingleList2004::default(),
                        how: Sabotage::WalkSkipsLast,
                    },
                    &DesignSpec::new(Design::SingleList2004),
                    &unchecked,
                )
            } else {
                run_design(
                    &s,
                    Broken {
                        inner: Chain2010::new(Era::E2022),
                        how: Sabotage::WalkSkipsLast,
                    },
                    &DesignSpec::new(Design::Chain2010),
                    &unchecked,
                )
            };
            let f = r.failure.unwrap_or_else(|| panic!("{op}: not caught"));
            assert_eq!(f.broken.invariant, "findability", "{op}: {f}");
            assert_eq!(f.op_index, Some(idx), "{op}: {f}");
        }
    }
}
