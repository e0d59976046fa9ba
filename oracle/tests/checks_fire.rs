//! Every invariant the oracle names fails, with its name, when exactly
//! what it guards is broken: `layout` (a design of Linux 6.18's VMA
//! semantics with one merge decision changed), `mapcount` (a frame's or a
//! swap slot's count off by one), `semantics` (an op failing that must
//! not), `bound` (more anon_vmas than claimed), `differential` (two runs
//! disagreeing on an outcome), `failed-op-trace` (a re-injected bug whose
//! failed fork leaves objects behind). `findability`, `dangling` and
//! `leak` are proven in `oracle_breaks.rs`, the design self-checks in the
//! designs' unit tests (`docs/oracle.md` has the table).

mod common;

use std::path::Path;

use common::{Mutation, Wrap};
use rmaplab::oracle::check;
use rmaplab::run::runner::{
    RunOptions, RunReport, compare_runs, run_all_with, run_design, run_spec,
};
use rmaplab_impls::designs::chain_2010::{Chain2010, Era};
use rmaplab_impls::designs::prealloc_2026::Prealloc2026;
use rmaplab_impls::designs::registry::{Design, DesignSpec};
use rmaplab_impls::mmu::{Census, Mmu, Pte};
use rmaplab_impls::rmap::CloneRmap;
use rmaplab_ops::parse::parse;
use rmaplab_ops::{Pid, Stream};

fn stream(text: &str) -> Stream {
    parse(text).expect("test stream parses")
}

fn invariant(r: &RunReport) -> Option<&str> {
    r.failure.as_ref().map(|f| f.broken.invariant.as_str())
}

fn specs_618() -> Vec<DesignSpec> {
    vec![
        DesignSpec::new(Design::Chain2010),
        DesignSpec::new(Design::Prealloc2026),
    ]
}

/// chain-2010 (era 2022) and prealloc-2026, the latter wrapped with
/// `mutation`.
fn make_618(mutation: Mutation) -> impl Fn(usize) -> Option<Box<dyn CloneRmap>> {
    move |k| -> Option<Box<dyn CloneRmap>> {
        Some(match k {
            0 => Box::new(Chain2010::new(Era::E2022)),
            _ => Box::new(Wrap::new(Prealloc2026::new(), mutation)),
        })
    }
}

/// An unfaulted VMA next to a faulted one it should import into: 6.18
/// merges them (`corpus/merge/m01-*`), the mutant does not.
const IMPORT: &str = "mmap p0 0 4 rw anon
mmap p0 8 4 rw anon
write p0 9 1
mmap p0 4 4 rw anon
write p0 1 2
";

#[test]
fn layout_fires_when_a_design_of_the_same_semantics_merges_differently() {
    let s = stream(IMPORT);
    let opts = RunOptions::fuzzing();
    let (runs, cmp) = run_all_with(&s, &specs_618(), &make_618(Mutation::None), &opts);
    assert!(runs.iter().all(RunReport::passed) && cmp.failure.is_none());
    let (runs, _) = run_all_with(&s, &specs_618(), &make_618(Mutation::RefuseImport), &opts);
    assert_eq!(invariant(&runs[0]), None);
    assert_eq!(invariant(&runs[1]), Some("layout"), "{:?}", runs[1].failure);
    let f = runs[1].failure.as_ref().unwrap();
    assert_eq!(f.op_index, Some(3), "the mmap that 6.18 merges: {f}");
    assert_eq!(f.broken.pid, Some(Pid(0)));
    for want in [
        "`mmap p0 4 4 rw anon`",
        "chain-2010 and prealloc-2026 both claim Linux618",
        "p0 [0, 12): chain-2010 has 0-12 rw-p anon but prealloc-2026 has 0-8 rw-p anon, 8-12 rw-p anon",
    ] {
        assert!(f.broken.detail.contains(want), "{want}\n{f}");
    }
}

#[test]
fn layout_compares_only_designs_that_claim_the_same_semantics() {
    // chain-2010 era 2015 refuses this merge by its own rule (B20): a
    // different semantics, so no `layout` failure.
    let s = stream(IMPORT);
    let specs = vec![
        DesignSpec::new(Design::Chain2010),
        "chain-2010 era=2015".parse::<DesignSpec>().unwrap(),
    ];
    let (runs, cmp) = run_all_with(
        &s,
        &specs,
        &|k| specs[k].build_cloneable(),
        &RunOptions::fuzzing(),
    );
    assert!(runs.iter().all(RunReport::passed), "{:?}", runs[1].failure);
    assert!(cmp.failure.is_none());
}

/// The mutant on random streams, through the engine's entry point
/// (`run_all_with` is what `run_all` calls): caught as `layout`, and never
/// without the mutation.
#[test]
fn layout_catches_a_changed_merge_rule_on_random_streams() {
    let streams = rmaplab::fuzz::bench::streams(400, 64, 7);
    let opts = RunOptions::fuzzing();
    let mut caught = 0;
    for s in &streams {
        let (runs, cmp) = run_all_with(s, &specs_618(), &make_618(Mutation::None), &opts);
        assert!(runs.iter().all(RunReport::passed), "{:?}", runs[1].failure);
        assert!(cmp.failure.is_none());
        let (runs, _) = run_all_with(s, &specs_618(), &make_618(Mutation::RefuseImport), &opts);
        if let Some(f) = &runs[1].failure {
            assert_eq!(f.broken.invariant, "layout", "{f}");
            caught += 1;
        }
    }
    assert!(caught >= 10, "caught on {caught} of 400 streams");
}

fn mmu_after(text: &str) -> Mmu<Chain2010> {
    let mut m = Mmu::new(Chain2010::new(Era::E2022));
    for op in &stream(text).ops {
        m.apply(op).unwrap();
    }
    m
}

fn mapcount_verdict(m: &Mmu<Chain2010>) -> Result<u64, check::Broken> {
    check::check_map_counts(m, &mut Census::default(), true, false)
}

#[test]
fn mapcount_fires_when_a_count_differs_from_the_page_tables() {
    let forked = "mmap p0 0 4 rw anon\nwrite p0 0 1\nfork p0\n";
    assert!(mapcount_verdict(&mmu_after(forked)).is_ok());
    for delta in [1, -1] {
        let mut m = mmu_after(forked);
        m.testkit_add_mapcount(Pid(1), 0, delta);
        let b = mapcount_verdict(&m).unwrap_err();
        assert_eq!(b.invariant, "mapcount");
        assert!(
            b.detail.contains("but 2 PTE(s) map it; PTEs at p0:0 p1:0"),
            "{b}"
        );
    }
    let swapped = "mmap p0 0 4 rw anon\nwrite p0 0 1\nfork p0\nswapout p0 0\n";
    let mut m = mmu_after(swapped);
    assert!(mapcount_verdict(&m).is_ok());
    m.testkit_add_swap_count(Pid(0), 0, 1);
    let b = mapcount_verdict(&m).unwrap_err();
    assert_eq!(b.invariant, "mapcount");
    assert!(b.detail.contains("has count 3 but 2 swap entries"), "{b}");
}

/// The delta census the runner takes after a fault, a fork or an exit
/// (`check_map_counts_delta`): the op's own PTEs and frames, at the cost
/// of what changed, with the same verdict as the full census.
#[test]
fn mapcount_fires_at_the_fault_through_the_delta_census() {
    let forked = "mmap p0 0 4 rw anon\nwrite p0 0 1\nwrite p0 1 2\nfork p0\n";
    // The census follows the machine as the runner's does: a full pass,
    // then one op, its PTEs named, then the delta pass.
    let after_write = |corrupt: &dyn Fn(&mut Mmu<Chain2010>)| {
        let mut m = mmu_after(forked);
        let mut c = Census::default();
        check::check_map_counts(&m, &mut c, false, false).unwrap();
        // A COW fault in the child: its PTE at 0 moves to a new frame.
        m.apply(&stream("write p1 0 9\n").ops[0]).unwrap();
        for &(p, a) in m.last_op_pte_delta().expect("a fault") {
            c.forget_range(p, a, a + 1, false);
        }
        corrupt(&mut m);
        check::check_map_counts_delta(&m, &mut c)
    };
    assert!(after_write(&|_| {}).is_ok());
    // The faulted page's count: the frame its PTE now maps.
    let b = after_write(&|m| m.testkit_add_mapcount(Pid(1), 0, 1)).unwrap_err();
    assert_eq!(b.invariant, "mapcount");
    assert!(
        b.detail.contains("has map count 2 but 1 PTE(s) map it"),
        "{b}"
    );
    // A count the fault moved without touching its PTEs (the page at 1,
    // shared by both processes): caught because the op changed that frame.
    let b = after_write(&|m| m.testkit_add_mapcount(Pid(0), 1, -1)).unwrap_err();
    assert_eq!(b.invariant, "mapcount");
    assert!(
        b.detail.contains("has map count 1 but 2 PTE(s) map it"),
        "{b}"
    );
    // A fork and an exit: the child counted whole, then dropped.
    let mut m = mmu_after(forked);
    let mut c = Census::default();
    check::check_map_counts(&m, &mut c, false, false).unwrap();
    m.apply(&stream("fork p1\n").ops[0]).unwrap();
    check::check_map_counts_delta(&m, &mut c).unwrap();
    m.testkit_add_mapcount(Pid(2), 1, 1);
    let b = check::check_map_counts_delta(&m, &mut c).unwrap_err();
    assert!(
        b.detail.contains("has map count 4 but 3 PTE(s) map it"),
        "{b}"
    );
    m.testkit_add_mapcount(Pid(2), 1, -1);
    m.apply(&stream("exit p2\n").ops[0]).unwrap();
    c.forget(Some(Pid(2)));
    check::check_map_counts_delta(&m, &mut c).unwrap();
    assert!(check::check_map_counts(&m, &mut c, true, false).is_ok());
}

/// The counts the machine keeps at its page-table writes, which the
/// runner checks after every op (`check_refs`): a map count moved, a swap
/// count moved or a PTE write the kept counts missed fails `mapcount` at
/// that op, with the full census's reports; a PTE written around the two
/// writers fails the recount at the end of the stream.
#[test]
fn mapcount_fires_through_the_counts_kept_at_the_pte_writes() {
    let forked = "mmap p0 0 4 rw anon\nwrite p0 0 1\nwrite p0 1 2\nfork p0\n";
    // The checks follow the machine as the runner's do: every slot at the
    // start, then the frames one op noted.
    let after_write = |corrupt: &dyn Fn(&mut Mmu<Chain2010>)| {
        let mut m = mmu_after(forked);
        let mut c = Census::default();
        check::check_refs(&m, &mut c, true, true).unwrap();
        // A COW fault in the child: its PTE at 0 moves to a new frame.
        m.apply(&stream("write p1 0 9\n").ops[0]).unwrap();
        corrupt(&mut m);
        check::check_refs(&m, &mut c, true, true)
    };
    assert!(after_write(&|_| {}).is_ok());
    let b = after_write(&|m| m.testkit_add_mapcount(Pid(1), 0, 1)).unwrap_err();
    assert_eq!(b.invariant, "mapcount");
    assert!(
        b.detail
            .contains("has map count 2 but 1 PTE(s) map it; PTEs at p1:0"),
        "{b}"
    );
    let b = after_write(&|m| m.testkit_add_mapcount(Pid(0), 1, -1)).unwrap_err();
    assert_eq!(b.invariant, "mapcount");
    assert!(
        b.detail.contains("has map count 1 but 2 PTE(s) map it"),
        "{b}"
    );
    // The fault's PTE write missed by the kept counts.
    let b = after_write(&|m| m.testkit_uncount_pte(Pid(1), 0)).unwrap_err();
    assert_eq!(b.invariant, "mapcount");
    assert!(
        b.detail
            .contains("has map count 1 but 0 PTE(s) map it; PTEs at p1:0"),
        "{b}"
    );
    // A swap slot's count moved without its entries, after an op that
    // touched no swap entry.
    let swapped = "mmap p0 0 4 rw anon\nwrite p0 0 1\nwrite p0 1 2\nfork p0\nswapout p0 0\n";
    let mut m = mmu_after(swapped);
    let mut c = Census::default();
    check::check_refs(&m, &mut c, true, false).unwrap();
    m.apply(&stream("write p0 1 3\n").ops[0]).unwrap();
    check::check_refs(&m, &mut c, true, false).unwrap();
    m.apply(&stream("write p1 1 4\n").ops[0]).unwrap();
    m.testkit_add_swap_count(Pid(0), 0, 1);
    let b = check::check_refs(&m, &mut c, true, false).unwrap_err();
    assert_eq!(b.invariant, "mapcount");
    assert!(b.detail.contains("has count 3 but 2 swap entries"), "{b}");
    // A PTE cleared around `set_pte` and `take_pte`: nothing noted it, the
    // recount of the page tables sees it.
    let mut m = mmu_after(forked);
    assert!(check::check_refs_recount(&m).is_ok());
    m.testkit_write_pte_uncounted(Pid(1), 1, Pte::None);
    let b = check::check_refs_recount(&m).unwrap_err();
    assert_eq!(b.invariant, "mapcount");
    assert!(
        b.detail
            .contains("is mapped by 1 PTE(s); PTEs at p0:1 but the count kept"),
        "{b}"
    );
    // The runner's recount comes after the teardown, with every page table
    // empty: the count the zaps could not balance is left.
    for p in ["exit p1\n", "exit p0\n"] {
        m.apply(&stream(p).ops[0]).unwrap();
    }
    let b = check::check_refs_recount(&m).unwrap_err();
    assert_eq!(b.invariant, "mapcount");
    assert!(
        b.detail
            .contains("is mapped by 0 PTE(s) but the count kept at the page-table writes says 1"),
        "{b}"
    );
}

/// A PTE write the kept counts miss, in a run as the engines run it: the
/// fault's `set_pte` breaks at the choke point and the run fails
/// `mapcount` at that fault, with the full census's report.
#[test]
fn a_pte_write_missed_at_the_choke_point_fails_mapcount_at_that_op() {
    let s = stream("mmap p0 0 4 rw anon\nwrite p0 0 1\nwrite p0 1 2\nread p0 2\n");
    let spec = DesignSpec::new(Design::Chain2010);
    let opts = RunOptions::fuzzing();
    let r = run_design(&s, Chain2010::new(Era::E2022), &spec, &opts);
    assert!(r.passed(), "{:?}", r.failure);
    // The second PTE written: the fault at page 1.
    rmaplab_impls::mmu::testkit_miss_pte_write(1);
    let r = run_design(&s, Chain2010::new(Era::E2022), &spec, &opts);
    let f = r.failure.as_ref().expect("mapcount");
    assert_eq!(f.broken.invariant, "mapcount", "{f}");
    assert_eq!(f.op_index, Some(2), "{f}");
    assert!(
        f.broken
            .detail
            .contains("has map count 1 but 0 PTE(s) map it; PTEs at p0:1"),
        "{f}"
    );
}

/// The delta census skips the sum of the swap slots' counts when no swap
/// entry moved and no slot changed since the last pass (the swap arena's
/// epoch): a slot count changed without its entries still fails at the
/// next delta pass, whatever op comes before it.
#[test]
fn mapcount_delta_catches_a_swap_count_changed_without_its_entries() {
    let swapped = "mmap p0 0 4 rw anon\nwrite p0 0 1\nwrite p0 1 2\nfork p0\nswapout p0 0\n";
    let mut m = mmu_after(swapped);
    let mut c = Census::default();
    check::check_map_counts(&m, &mut c, false, false).unwrap();
    // A fault that touches no swap entry, with no corruption: skipped sum.
    m.apply(&stream("write p0 1 3\n").ops[0]).unwrap();
    for &(p, a) in m.last_op_pte_delta().expect("a fault") {
        c.forget_range(p, a, a + 1, false);
    }
    check::check_map_counts_delta(&m, &mut c).unwrap();
    // The same with the slot's count moved behind the census's back.
    m.apply(&stream("write p1 1 4\n").ops[0]).unwrap();
    for &(p, a) in m.last_op_pte_delta().expect("a fault") {
        c.forget_range(p, a, a + 1, false);
    }
    m.testkit_add_swap_count(Pid(0), 0, 1);
    let b = check::check_map_counts_delta(&m, &mut c).unwrap_err();
    assert_eq!(b.invariant, "mapcount");
    assert!(b.detail.contains("has count 3 but 2 swap entries"), "{b}");
}

/// A full pass after which nothing it reads changed keeps the last full
/// pass's verdict without counting again: an op that maps no page (a
/// `munmap` of a range never faulted) takes that path, and a map count
/// changed since the last full pass (by any op, here behind the census's
/// back) still fails at the next full pass.
#[test]
fn mapcount_full_pass_skipped_only_when_nothing_changed() {
    let start = "mmap p0 0 4 rw anon\nwrite p0 0 1\nfork p0\nmmap p0 8 4 rw anon\n";
    let munmap = |m: &mut Mmu<Chain2010>, c: &mut Census, addr: u64| {
        m.apply(&stream(&format!("munmap p0 {addr} 1\n")).ops[0])
            .unwrap();
        c.forget_range(Pid(0), addr, addr + 1, true);
        check::check_map_counts(m, c, false, true)
    };
    let mut m = mmu_after(start);
    let mut c = Census::default();
    let fp = check::check_map_counts(&m, &mut c, false, true).unwrap();
    // Nothing but maps lines changed: the fingerprint follows them.
    let fp1 = munmap(&mut m, &mut c, 8).unwrap();
    assert_eq!(c.full_passes_kept(), 1);
    assert_ne!(fp1, fp);
    assert_eq!(fp1, check::dump_fingerprint(&m, &mut Census::default()));
    // A count changed since: the frame arena moved, the pass runs.
    m.testkit_add_mapcount(Pid(1), 0, 1);
    let b = munmap(&mut m, &mut c, 9).unwrap_err();
    assert_eq!(c.full_passes_kept(), 1);
    assert_eq!(b.invariant, "mapcount");
    assert!(b.detail.contains("but 2 PTE(s) map it"), "{b}");
}

/// The options every engine runs with leave no check out: only `rmaplab
/// bench --without` does.
#[test]
fn no_engine_leaves_a_check_out() {
    assert!(RunOptions::default().without.none());
    assert!(RunOptions::fuzzing().without.none());
    let w = rmaplab::run::runner::Without::parse("layout,mapcount").unwrap();
    assert!(w.layout && w.mapcount);
    assert!(rmaplab::run::runner::Without::parse("mapcount,bound").is_err());
    // Leaving them out changes no outcome of a run that passes.
    let s = stream("mmap p0 0 4 rw anon\nwrite p0 0 1\nfork p0\nwrite p0 0 2\nswapout p1 0\n");
    let spec = DesignSpec::new(Design::Chain2010);
    let every = run_design(
        &s,
        Chain2010::new(Era::E2022),
        &spec,
        &RunOptions::default(),
    );
    let opts = RunOptions {
        without: w,
        ..RunOptions::default()
    };
    let fewer = run_design(&s, Chain2010::new(Era::E2022), &spec, &opts);
    assert!(every.passed() && fewer.passed(), "{:?}", fewer.failure);
    assert_eq!(every.outcomes, fewer.outcomes);
}

#[test]
fn semantics_fires_when_an_op_fails_that_must_not() {
    let s = stream("mmap p0 0 4 rw anon\nwrite p0 0 1\n");
    let r = run_design(
        &s,
        Wrap::new(Chain2010::new(Era::E2022), Mutation::FailPrepare),
        &DesignSpec::new(Design::Chain2010),
        &RunOptions::default(),
    );
    assert_eq!(invariant(&r), Some("semantics"), "{:?}", r.failure);
    assert_eq!(r.failure.unwrap().op_index, Some(1));
}

#[test]
fn differential_fires_when_two_runs_disagree_on_an_outcome() {
    let s = stream("mmap p0 0 4 rw anon\nwrite p0 0 1\n");
    let spec = DesignSpec::new(Design::Chain2010);
    let good = run_design(
        &s,
        Chain2010::new(Era::E2022),
        &spec,
        &RunOptions::default(),
    );
    let bad = run_design(
        &s,
        Wrap::new(Chain2010::new(Era::E2022), Mutation::FailPrepare),
        &spec,
        &RunOptions::default(),
    );
    assert!(
        compare_runs(&[good.clone(), good.clone()])
            .failure
            .is_none()
    );
    let cmp = compare_runs(&[good, bad]);
    let f = cmp.failure.expect("the runs disagree");
    assert_eq!(f.broken.invariant, "differential");
    assert_eq!(f.op_index, Some(1));
}

#[test]
fn bound_fires_when_a_design_holds_more_anon_vmas_than_it_claims() {
    let s = stream("mmap p0 0 4 rw anon\nwrite p0 0 1\n");
    let r = run_design(
        &s,
        Wrap::new(Chain2010::new(Era::E2022), Mutation::ExtraAnonVmas),
        &DesignSpec::new(Design::Chain2010),
        &RunOptions::default(),
    );
    assert_eq!(invariant(&r), Some("bound"), "{:?}", r.failure);
    assert_eq!(r.failure.unwrap().op_index, Some(0));
}

/// Re-injected bugs whose failed ops leave objects behind (`corpus/zoo/`):
/// the corpus test checks their whole header; this names the check.
#[test]
fn failed_op_trace_and_bound_fire_on_the_re_injected_bugs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/zoo");
    for (file, spec, want) in [
        ("b23.ops", "prealloc-2026 bug=b23", "failed-op-trace"),
        ("b07.ops", "chain-2010 era=2010 bug=b07", "failed-op-trace"),
        ("b00.ops", "chain-2010 era=2010 bug=b00", "bound"),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let s = parse(&text).unwrap();
        let spec: DesignSpec = spec.parse().unwrap();
        let r = run_spec(&s, &spec, &RunOptions::default());
        assert_eq!(invariant(&r), Some(want), "{file}: {:?}", r.failure);
        let clean = DesignSpec {
            bugs: Vec::new(),
            ..spec
        };
        let r = run_spec(&s, &clean, &RunOptions::default());
        assert_eq!(invariant(&r), None, "{file} without the bug");
    }
}

/// A corpus file that expects `fail layout` is run next to the canonical
/// design of the same semantics (alone, a run cannot show `layout`): with
/// the designs as they are the pair agrees, so the expectation is reported
/// as wrong, naming the verdict the pair gave.
#[test]
fn a_corpus_file_expecting_layout_is_run_in_a_pair() {
    let dir = std::env::temp_dir().join(format!("rmaplab-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("layout.ops");
    std::fs::write(
        &f,
        format!("# expect [prealloc-2026]: fail layout\n{IMPORT}"),
    )
    .unwrap();
    let err = rmaplab::run::corpus::check_corpus(&f).unwrap_err();
    assert!(
        err.contains("prealloc-2026: expected Fail(\"layout\"), got Pass"),
        "{err}"
    );
    std::fs::write(&f, format!("# expect [prealloc-2026]: pass\n{IMPORT}")).unwrap();
    assert_eq!(rmaplab::run::corpus::check_corpus(&f), Ok(()));
    std::fs::remove_dir_all(&dir).ok();
}
