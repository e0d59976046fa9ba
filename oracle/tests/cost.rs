//! `rmaplab cost`: the counters of small workloads against values worked
//! out by hand from each era's kernel algorithm (docs/cost.md has the
//! traces), and the walk-cost shape of the fork server.

use rmaplab::cost::{self, Class, Measure};
use rmaplab_impls::designs::registry::DesignSpec;

fn run(workload: &str, params: &[(&str, u64)], spec: &str) -> Measure {
    let w = cost::workload(workload).expect("workload");
    let given: Vec<(String, u64)> = params.iter().map(|&(k, v)| (k.to_string(), v)).collect();
    let p = w.params(&given).expect("params");
    let spec: DesignSpec = spec.parse().expect("spec");
    cost::measure(&spec, &w.plan(&p).expect("plan"), true).expect("runs")
}

/// A fork/exit chain of depth 3 (p0 writes, forks p1 and exits; p1 writes,
/// forks p2 and exits; ...): (anon_vmas, AVCs, allocations, freed unused)
/// at the end, with one VMA left.
/// - 2010 (no reuse): every fork adds an anon_vma; the ancestors stay
///   linked by the last VMA: 4 anon_vmas, 4 AVCs; allocations 2 (prepare)
///   + 3 + 4 + 5 (the clones' AVCs, the child's anon_vma and its AVC).
/// - 2015 (`degree`): the third fork reuses A1 (no VMA points to it, one
///   child): 3 anon_vmas, 3 AVCs, 12 allocations.
/// - 2022 (`num_children` + `num_active_vmas`; the root counts its
///   self-parent link): the same reuse, the same counts.
/// - prealloc-2026: as 2022, but the third fork allocated its anon_vma and
///   AVC before cloning and freed both unused (patch 2): 14 and 2.
/// - single-list-2004: one anon_vma for the family, no chains.
#[test]
fn a_three_level_fork_chain_counts_as_each_era_computes() {
    let want = [
        ("single-list-2004", (1, 0, 1, 0)),
        ("chain-2010 era=2010", (4, 4, 14, 0)),
        ("chain-2010 era=2015", (3, 3, 12, 0)),
        ("chain-2010 era=2022", (3, 3, 12, 0)),
        ("prealloc-2026", (3, 3, 14, 2)),
    ];
    for (spec, w) in want {
        let m = run("fork-chain", &[("d", 3), ("k", 1)], spec);
        assert_eq!(m.vmas, 1, "{spec}");
        assert_eq!(
            (m.anon_vmas, m.avcs, m.allocations, m.freed_unused),
            w,
            "{spec}"
        );
    }
    // Without reuse the chain grows with its depth; with it, it does not.
    for d in [8, 32] {
        let grow = run("fork-chain", &[("d", d)], "chain-2010 era=2010");
        assert_eq!(grow.anon_vmas, d + 1);
        let reuse = run("fork-chain", &[("d", d)], "chain-2010 era=2022");
        assert_eq!(reuse.anon_vmas, 3);
    }
}

/// A fork server with N = 4 children that each copy both heap pages:
/// with the single list every walk visits the family's 5 VMAs; with the
/// chain, the parent's pages (their anon_vma is the root, which every
/// child's VMA links) visit 5 and each child's copy only its own VMA.
/// Counts: one anon_vma per process, the root's AVC plus two per child.
#[test]
fn the_fork_server_walks_o_n_on_the_list_and_o_1_for_children_on_the_chain() {
    let p = [("n", 4), ("k", 2)];
    let list = run("fork-server", &p, "single-list-2004");
    let chain = run("fork-server", &p, "chain-2010 era=2010");
    let w = |m: &Measure, c: Class| m.walks.get(c.as_str()).copied().unwrap_or_default();
    assert_eq!(
        (w(&list, Class::Parent).walks, w(&list, Class::Parent).max),
        (2, 5)
    );
    assert_eq!(
        (w(&list, Class::Child).walks, w(&list, Class::Child).max),
        (8, 5)
    );
    assert_eq!(w(&list, Class::Child).visited, 40);
    assert_eq!(w(&chain, Class::Parent).visited, 10);
    assert_eq!(
        (w(&chain, Class::Child).visited, w(&chain, Class::Child).max),
        (8, 1)
    );
    assert_eq!((list.anon_vmas, list.avcs), (1, 0));
    assert_eq!((chain.anon_vmas, chain.avcs), (5, 9));
    // Rik van Riel's "average scanning cost from O(N) to 2": 10 walks,
    // 18 VMAs visited in all on the chain.
    assert_eq!(chain.all_walks().visited, 18);
    // Pages the children never write stay shared: every walk sees all.
    let shared = run(
        "fork-server",
        &[("n", 4), ("k", 2), ("cow", 0)],
        "chain-2010 era=2010",
    );
    assert_eq!(w(&shared, Class::Shared).max, 5);
    assert_eq!(w(&shared, Class::Child).walks, 0);
}

/// Lazy preparation: only the anonymous mappings that were written get an
/// anon_vma; read-only private file mappings never do.
#[test]
fn file_mix_prepares_anon_vmas_only_for_written_anonymous_mappings() {
    for spec in [
        "chain-2010 era=2010",
        "chain-2010 era=2022",
        "prealloc-2026",
    ] {
        let m = run("file-mix", &[("f", 3), ("a", 2)], spec);
        assert_eq!((m.vmas, m.anon_vmas, m.avcs), (5, 2, 2), "{spec}");
    }
}

/// Same workload, same counts: everything but the time is deterministic.
#[test]
fn cost_runs_are_deterministic() {
    let a = run("mremap-churn", &[("m", 6)], "prealloc-2026");
    let b = run("mremap-churn", &[("m", 6)], "prealloc-2026");
    let strip = |m: &Measure| Measure {
        nanos: 0,
        ..m.clone()
    };
    assert_eq!(format!("{:?}", strip(&a)), format!("{:?}", strip(&b)));
    let spec: DesignSpec = "chain-2010 era=2015".parse().unwrap();
    let w = cost::workload("random").unwrap();
    let p = w.params(&[("s".into(), 5)]).unwrap();
    let r1 = cost::measure_random(&spec, &p).unwrap();
    let r2 = cost::measure_random(&spec, &p).unwrap();
    assert_eq!(format!("{:?}", strip(&r1)), format!("{:?}", strip(&r2)));
    assert!(r1.ops > 0);
}

/// Unknown workloads and parameters are input errors that name what
/// exists.
#[test]
fn unknown_parameters_are_named() {
    let w = cost::workload("fork-server").unwrap();
    let e = w.params(&[("x".into(), 1)]).unwrap_err();
    assert!(
        e.contains("no parameter `x`") && e.contains("n, k, cow"),
        "{e}"
    );
    assert!(cost::workload("nope").is_none());
}

/// The claims: each measures, claim 1 holds (its shape is worked out by
/// hand above for N = 4), and the charts are byte-identical when
/// regenerated.
#[test]
fn claims_measure_and_their_charts_are_reproducible() {
    use rmaplab::cost::claims::{CLAIMS, Holds};
    let dirs = [tempdir("a"), tempdir("b")];
    for c in CLAIMS {
        let rows = c.measure().expect("measures");
        assert_eq!(
            rows.len(),
            c.sweep.1.len() * c.specs.len(),
            "claim {}",
            c.id
        );
        let (measured, holds) = (c.verdict)(&rows);
        assert!(!measured.is_empty());
        if c.id == 1 {
            assert_eq!(holds, Holds::Yes, "{measured}");
        }
        let a = rmaplab::cost::plot::chart(c, &rows, &dirs[0]).unwrap();
        let b = rmaplab::cost::plot::chart(c, &c.measure().unwrap(), &dirs[1]).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(c.command().starts_with("rmaplab cost -w "));
    }
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rmaplab-cost-test-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Linus Torvalds' eager variant prepares an anon_vma for every private
/// mapping when it is linked, read-only file mappings included: f + a
/// anon_vmas (one AVC each) where the lazy design has a.
#[test]
fn eager_2010_prepares_every_private_mapping_at_link() {
    for (f, a) in [(3, 2), (8, 8), (1, 0)] {
        let lazy = run("file-mix", &[("f", f), ("a", a)], "chain-2010 era=2010");
        let eager = run("file-mix", &[("f", f), ("a", a)], "eager-2010");
        assert_eq!((lazy.anon_vmas, lazy.avcs), (a, a));
        assert_eq!((eager.anon_vmas, eager.avcs), (f + a, f + a));
        assert_eq!(eager.vmas, lazy.vmas);
    }
    // A shared mapping never gets one.
    use rmaplab_impls::mmu::Mmu;
    use rmaplab_ops::{Kind, Op, Pid, Prot};
    let mut m = Mmu::new(rmaplab_impls::designs::chain_2010::Chain2010::eager_2010());
    for (addr, kind) in [(0, Kind::Shared), (4, Kind::Anon)] {
        m.apply(&Op::Mmap {
            pid: Pid(0),
            addr,
            len: 2,
            prot: Prot::Rw,
            kind,
            replace: false,
        })
        .unwrap();
    }
    assert_eq!(rmaplab_impls::rmap::Rmap::counters(m.rmap()).anon_vmas, 1);
}
