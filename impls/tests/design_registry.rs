//! A design built by the registry (`DesignSpec::build`, a `Box<dyn Rmap>`,
//! as the runner and the fuzz engine use it) answers every query as the
//! design itself does, and the bug catalogue says why a bug cannot be
//! re-injected exactly when it cannot (`rmaplab bugs` prints that reason).

use rmaplab_impls::designs::chain_2010::{self, Chain2010};
use rmaplab_impls::designs::prealloc_2026::Prealloc2026;
use rmaplab_impls::designs::registry::{DesignSpec, Injection, catalogue};
use rmaplab_impls::designs::single_list_2004::{self, SingleList2004};
use rmaplab_impls::mmu::Mmu;
use rmaplab_impls::rmap::Rmap;
use rmaplab_ops::parse::parse;

/// Two fork trees (a forked family, a second VMA's own), a split, exits.
const STREAM: &str = "\
mmap p0 10 8 rw anon
write p0 10 1
fork p0
write p1 11 2
mprotect p0 12 2 r
mmap p0 40 4 rw anon
write p0 40 3
fork p1
exit p2
";

fn run<R: Rmap>(rmap: R) -> Mmu<R> {
    let mut m = Mmu::new(rmap);
    for op in parse(STREAM).expect("stream").ops {
        m.apply(&op).expect("op");
    }
    m
}

fn same_answers<R: Rmap>(spec: &str, direct: R) {
    let spec: DesignSpec = spec.parse().expect("spec");
    let boxed = run(spec.build().expect("a design"));
    let direct = run(direct);
    let (b, d) = (boxed.rmap(), direct.rmap());
    assert_eq!(b.name(), d.name(), "{spec}");
    assert_eq!(b.config(), d.config(), "{spec}");
    assert_eq!(b.counters(), d.counters(), "{spec}");
    assert_eq!(b.epoch(), d.epoch(), "{spec}");
    let trees = d.fork_trees();
    assert_eq!(trees.len(), 2, "{spec}: the stream makes two fork trees");
    assert_eq!(b.fork_trees(), trees, "{spec}");
}

#[test]
fn a_design_built_by_name_answers_as_the_design_itself() {
    same_answers("single-list-2004", SingleList2004::default());
    same_answers(
        "single-list-2004 era=2006",
        SingleList2004::with_era_and_bugs(single_list_2004::Era::E2006, &[]),
    );
    for era in chain_2010::Era::ALL {
        same_answers(&format!("chain-2010 era={era}"), Chain2010::new(era));
    }
    same_answers("prealloc-2026", Prealloc2026::default());
}

#[test]
fn a_bug_says_why_it_cannot_be_injected_exactly_when_it_cannot() {
    let (mut injectable, mut not) = (0, 0);
    for (design, b) in catalogue() {
        match b.injection {
            Injection::Injected(how) => {
                injectable += 1;
                assert!(b.is_injectable(), "{}", b.id);
                assert_eq!(b.why_not(), None, "{} ({design:?})", b.id);
                assert!(!how.is_empty(), "{}", b.id);
            }
            Injection::NotInjectable(why) => {
                not += 1;
                assert!(!b.is_injectable(), "{}", b.id);
                assert!(!why.is_empty(), "{}: no reason", b.id);
                assert_eq!(b.why_not(), Some(why), "{} ({design:?})", b.id);
            }
        }
    }
    assert!(injectable > 0 && not > 0, "{injectable} / {not}");
}
