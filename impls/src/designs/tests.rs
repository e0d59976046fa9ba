//! Tests of every design: the randomized miniature MMU over all of them,
//! and the anon_vma_chain core's behaviour (prepare, pages, merge rules,
//! interval-tree keys, failure paths, self-check, dangling objects, fork
//! trees) on each design that has it.

use std::collections::BTreeSet;

use super::avc::{AvcRmap, Model, VMA_DELTA_BYTES, Variant, VmaState};
use super::chain_2010::{Chain2010, Era};
use super::prealloc_2026::Prealloc2026;
use super::single_list_2004::SingleList2004;
use super::testkit::{Sim, check_name, random_stream};
use crate::rmap::{
    CloneOp, Counters, MergeSrc, Rmap, RmapError, TreeCounters, VmaId, VmaInfo, VmaView,
};
use rmaplab_ops::Pid;

/// Runs `seeds` random streams of `steps` ops; returns the errors.
fn streams<R: Rmap>(make: impl Fn() -> R, seeds: u64, steps: usize) -> Vec<String> {
    (1..=seeds)
        .filter_map(|seed| random_stream(make(), seed, steps, false).err())
        .collect()
}

#[test]
fn correct_designs_keep_every_page_findable() {
    let e = streams(SingleList2004::new, 200, 80);
    assert!(e.is_empty(), "single-list-2004: {e:?}");
    for era in [Era::E2010, Era::E2022] {
        let e = streams(|| Chain2010::new(era), 200, 80);
        assert!(e.is_empty(), "chain-2010 era {era}: {e:?}");
    }
    let e = streams(Prealloc2026::new, 200, 80);
    assert!(e.is_empty(), "prealloc-2026: {e:?}");
}

/// Era 2015 is historically broken (B16) and the injected bugs are meant to
/// break things: they must report, never panic.
#[test]
fn broken_configurations_report_and_never_panic() {
    let e = streams(|| Chain2010::new(Era::E2015), 200, 80);
    eprintln!("era 2015: {}/200 failed {:?}", e.len(), e.first());
    let e = streams(|| SingleList2004::with_bugs(&["b01"]), 100, 80);
    eprintln!("b01: {}/100 failed {:?}", e.len(), e.first());
    for bug in ["b03", "b04", "b16"] {
        let e = streams(|| Chain2010::with_bugs(Era::E2022, &[bug]), 100, 80);
        eprintln!("{bug}: {}/100 failed {:?}", e.len(), e.first());
    }
}

/// Calls `test` with chain-2010 era 2022 and prealloc-2026, the two
/// designs with Linux 6.18's objects.
macro_rules! on_linux_6_18 {
    ($test:ident) => {
        $test(Chain2010::new(Era::E2022));
        $test(Prealloc2026::new());
    };
}

fn prepare_allocates_avc_then_anon_vma<V: Variant>(d: AvcRmap<V>) {
    let mut s = Sim::new(d);
    let a = s.mmap(0, 0, 4);
    let b = s.mmap(0, 4, 8);
    let c = s.mmap(0, 8, 12);
    s.fault(a);
    s.fault(a);
    let sites = s.d.alloc_schedule().sites().to_vec();
    assert_eq!(sites, ["anon_vma_prepare:avc", "anon_vma_prepare:anon_vma"]);
    let own = s.av(a);
    assert_eq!(s.counts(own), (1, 1, 1), "self-parent link, one VMA");
    s.fault(c);
    // b sits between a (prev) and c (next): next is tried first.
    s.d.anon_vma_prepare(&s.view, b, Some(c), Some(a)).unwrap();
    assert_eq!(s.av(b), s.av(c));
    assert_eq!(s.counts(s.av(c)), (1, 2, 1));
    let m = Model::LINUX_6_18;
    let counters = Counters {
        anon_vmas: 2,
        avcs: 3,
        bytes: 2 * m.anon_vma_bytes + 3 * m.avc_bytes + 3 * VMA_DELTA_BYTES,
        allocations: 5,
    };
    assert_eq!(s.d.counters(), counters);
    // A fork child's chain is not singular: its neighbour gets a new root.
    let ac = s.fork(1, a);
    assert_eq!(s.d.core.chain_len(ac), 2);
    let n = s.mmap(1, 4, 8);
    s.d.anon_vma_prepare(&s.view, n, None, Some(ac)).unwrap();
    assert_ne!(s.av(n), s.av(ac));
    assert_eq!(s.chain(n), vec![s.av(n)]);
    s.check();
}

#[test]
fn prepare_allocates_avc_then_anon_vma_and_reuses_only_singular_neighbours() {
    on_linux_6_18!(prepare_allocates_avc_then_anon_vma);
}

/// Konstantin's "no more than two times" is a claim, not an invariant of
/// live objects: the fork/exit loop settles at 3 anon_vmas for 1 VMA.
fn fork_exit_loop<V: Variant>(d: AvcRmap<V>) {
    let mut s = Sim::new(d);
    let mut v = s.mmap(0, 0, 4);
    s.fault(v);
    let mut live = Vec::new();
    for i in 1..=8 {
        let c = s.fork(i, v);
        s.exit(v);
        s.d.folio_add_new_anon_rmap(c, true).unwrap();
        v = c;
        live.push(s.d.counters().anon_vmas);
        s.check();
    }
    assert_eq!(live, vec![2, 3, 3, 3, 3, 3, 3, 3]);
    assert!(s.d.counters().anon_vmas > 2 * s.view.live_vmas().len() as u64);
    s.exit(v);
    assert_eq!((s.d.counters().anon_vmas, s.d.counters().avcs), (0, 0));
}

#[test]
fn fork_exit_loop_exceeds_twice_the_live_vmas() {
    on_linux_6_18!(fork_exit_loop);
    fork_exit_loop(Chain2010::new(Era::E2015));
}

fn split_and_remap<V: Variant>(d: AvcRmap<V>) {
    let mut s = Sim::new(d);
    let v = s.mmap(0, 0, 8);
    s.fault(v);
    let a = s.av(v);
    // __split_vma(new_below) at 4: the new piece first, then the original.
    let lo = s.split_below(v, 4);
    assert_eq!(s.av(lo), a);
    assert_eq!(s.counts(a), (1, 2, 1));
    assert_eq!(s.walk(a, 2), vec![lo]);
    assert_eq!(s.walk(a, 5), vec![v]);
    s.check();
    // copy_vma: a moved copy keeps pgoff 4; equal starts walk in insertion
    // order.
    let moved = s.view.add_at(0, 100, 104, 4);
    s.d.anon_vma_clone(&s.view, moved, v, CloneOp::Remap)
        .unwrap();
    assert_eq!(s.walk(a, 5), vec![v, moved]);
    assert_eq!(s.walk(a, 9), Vec::<VmaId>::new());
    // Re-keying moves v after moved.
    s.update(v, 4, 8, 4);
    assert_eq!(s.walk(a, 5), vec![moved, v]);
    s.check();
    // A clone of a fork child copies the whole chain set.
    let c = s.fork(1, v);
    let c2 = s.view.add_at(1, 6, 8, 6);
    s.d.anon_vma_clone(&s.view, c2, c, CloneOp::Split).unwrap();
    s.update(c, 4, 6, 4);
    let set = |x: VmaId| s.chain(x).into_iter().collect::<BTreeSet<_>>();
    assert_eq!(set(c2), set(c));
    assert_eq!(s.av(c2), s.av(c));
    s.check();
    // Clone of an unfaulted source gives nothing.
    let u = s.mmap(0, 50, 60);
    let u2 = s.mmap(0, 55, 60);
    s.d.anon_vma_clone(&s.view, u2, u, CloneOp::Split).unwrap();
    assert!(!s.d.has_anon_vma(u2));
    s.check();
}

#[test]
fn split_and_remap_clone_the_chain_and_rekey_in_pre_post_update() {
    on_linux_6_18!(split_and_remap);
}

/// `__folio_set_anon` and `folio_move_anon_rmap`.
fn pages<V: Variant>(d: AvcRmap<V>) {
    let mut s = Sim::new(d);
    let a = s.mmap(0, 0, 4);
    assert_eq!(
        check_name(s.d.folio_add_new_anon_rmap(a, true)),
        "no-anon-vma"
    );
    s.fault(a);
    let r = s.av(a);
    let ac = s.fork(1, a);
    let c = s.av(ac);
    assert_ne!(c, r);
    assert_eq!(s.d.folio_add_new_anon_rmap(ac, true).unwrap(), c);
    assert_eq!(s.d.folio_add_new_anon_rmap(ac, false).unwrap(), r);
    assert_eq!(s.d.folio_move_anon_rmap(ac, r).unwrap(), c);
    assert_eq!(s.d.folio_add_new_anon_rmap(a, false).unwrap(), r);
    // A child page is found only in the child; a root page in both.
    assert_eq!(s.walk(c, 1), vec![ac]);
    assert_eq!(s.walk(r, 1), vec![a, ac]);
    let u = s.mmap(0, 8, 9);
    assert_eq!(
        check_name(s.d.folio_add_new_anon_rmap(u, true)),
        "no-anon-vma"
    );
}

#[test]
fn pages_go_to_the_vma_anon_vma_or_the_root_and_move_to_the_own() {
    on_linux_6_18!(pages);
}

fn merge_rules<V: Variant>(d: AvcRmap<V>) {
    let mut s = Sim::new(d);
    let a = s.mmap(0, 0, 4);
    let b = s.mmap(0, 4, 8);
    let u = s.mmap(0, 8, 12);
    s.fault(a);
    s.fault(b);
    let c = s.fork(1, a);
    let cu = s.mmap(1, 4, 8);
    let m = |t, src| s.d.is_mergeable_anon_vma(t, src);
    // Case 3: equal (or both NULL).
    assert!(!m(a, MergeSrc::Existing(b)));
    assert!(m(a, MergeSrc::Existing(a)));
    assert!(m(u, MergeSrc::New));
    // Case 1: only the source is faulted.
    assert!(m(u, MergeSrc::Existing(a)));
    assert!(!m(cu, MergeSrc::Existing(c)));
    assert!(!m(cu, MergeSrc::Copy(c)), "6.18.y tests copied_from");
    assert!(m(u, MergeSrc::Copy(a)));
    let ext = s.d.is_mergeable_anon_vma_extend(cu, c);
    assert!(ext, "no middle, no copied_from");
    // Case 2: only the target is faulted.
    assert!(m(a, MergeSrc::New));
    assert!(!m(c, MergeSrc::New));
    assert!(!m(c, MergeSrc::Existing(cu)));
    assert!(s.d.is_mergeable_anon_vma_extend(c, c));
    // prev/next of a three-way merge.
    assert!(!s.d.anon_vmas_compatible(a, b));
    assert!(s.d.anon_vmas_compatible(a, u));
    assert!(s.d.anon_vmas_compatible(u, c));
}

#[test]
fn merge_rules_are_linux_6_18s() {
    on_linux_6_18!(merge_rules);
}

fn interval_tree_keys<V: Variant>(d: AvcRmap<V>) {
    // A VMA whose range moves without the tree being told.
    let mut s = Sim::new(d.clone());
    let a = s.mmap(0, 0, 8);
    s.fault(a);
    let r = s.av(a);
    s.view.set(a, 2, 10, 2);
    assert_eq!(check_name(s.d.self_check(&s.view)), "interval-tree");
    let stale = s.walk(r, 8);
    assert_eq!(
        stale,
        Vec::<VmaId>::new(),
        "index 8 is in the VMA, not in the stale key"
    );
    // pre/post fix it.
    s.d.vma_pre_update(a);
    s.d.vma_post_update(&s.view, a);
    assert_eq!(s.walk(r, 8), vec![a]);
    s.check();
    // post without pre is reported.
    s.d.vma_post_update(&s.view, a);
    assert_eq!(check_name(s.d.self_check(&s.view)), "interval-tree");

    // The same with a grown VMA, fixed on a copy.
    let mut s = Sim::new(d);
    let v = s.mmap(0, 10, 14);
    s.fault(v);
    let a = s.av(v);
    assert_eq!(s.walk(a, 13), vec![v]);
    s.view.set(v, 10, 16, 10);
    assert_eq!(s.walk(a, 15), Vec::<VmaId>::new());
    assert_eq!(check_name(s.d.self_check(&s.view)), "interval-tree");
    let mut fixed = s.clone();
    fixed.d.vma_pre_update(v);
    fixed.d.vma_post_update(&fixed.view, v);
    assert_eq!(fixed.walk(a, 15), vec![v]);
    fixed.check();
    s.d.vma_post_update(&s.view, v);
    assert_eq!(check_name(s.d.self_check(&s.view)), "interval-tree");
}

/// A missed re-key is a stale key the walk uses.
#[test]
fn interval_tree_keys_change_only_in_pre_post_update() {
    on_linux_6_18!(interval_tree_keys);
    interval_tree_keys(Chain2010::new(Era::E2015));
}

/// One operation of the failure-injection matrix.
type MatrixOp<V> = fn(&mut Sim<AvcRmap<V>>) -> Result<(), RmapError>;

/// The VMA of process 1.
fn in_p1<R: Rmap>(s: &Sim<R>) -> VmaId {
    let mut v = s.view.live_vmas().into_iter();
    v.find(|&x| s.info(x).mm == Pid(1)).unwrap()
}

/// `dup_mmap` of every VMA of mm 0 into mm 9, with the MMU's error path:
/// the failing child is freed unlinked, the ones set up before are unlinked
/// and freed.
fn fork_mm0<R: Rmap>(s: &mut Sim<R>) -> Result<(), RmapError> {
    let parents: Vec<VmaId> = s.view.live_vmas();
    let parents = parents.into_iter().filter(|&v| s.info(v).mm == Pid(0));
    let mut done = Vec::new();
    for p in parents.collect::<Vec<_>>() {
        let c = s.view.vmas.insert(VmaInfo {
            mm: Pid(9),
            ..s.info(p)
        });
        if let Err(e) = s.d.anon_vma_fork(&s.view, c, p) {
            s.view.vmas.remove(c);
            for v in done {
                s.exit(v);
            }
            return Err(e);
        }
        done.push(c);
    }
    Ok(())
}

/// Every allocation of every fork/clone/prepare path, failed in turn,
/// leaves the objects and the anon_vma/AVC/byte counters unchanged
/// (`allocations` grows by the successes before the failure).
fn failure_matrix<V: Variant>(d: AvcRmap<V>) {
    // p0: a [0,4) faulted root, b [10,14) faulted and forked to p1, so p1's
    // copy c has a two-element chain; n [20,24) unfaulted.
    let mut base = Sim::new(d.clone());
    let a = base.mmap(0, 0, 4);
    let b = base.mmap(0, 10, 14);
    base.fault(a);
    base.fault(b);
    base.fork(1, b);
    base.mmap(0, 20, 24);
    base.check();
    let ops: Vec<(&str, MatrixOp<V>)> = vec![
        ("prepare new", |s| {
            let n = s.mmap(2, 0, 4);
            s.d.anon_vma_prepare(&s.view, n, None, None)
        }),
        ("prepare reuse", |s| {
            let a = s.view.live_vmas()[0];
            let n = s.mmap(0, 4, 8);
            s.d.anon_vma_prepare(&s.view, n, None, Some(a))
        }),
        ("split fork child", |s| {
            let c = in_p1(s);
            let lo = s.view.add_at(1, 10, 12, 10);
            let r = s.d.anon_vma_clone(&s.view, lo, c, CloneOp::Split);
            match r {
                Err(_) => s.view.vmas.remove(lo).map(|_| ()).unwrap(),
                Ok(()) => s.update(c, 12, 14, 12),
            }
            r
        }),
        ("remap fork child", |s| {
            let c = in_p1(s);
            let to = s.view.add_at(1, 100, 104, 10);
            let r = s.d.anon_vma_clone(&s.view, to, c, CloneOp::Remap);
            if r.is_err() {
                s.view.vmas.remove(to);
            }
            r
        }),
        ("merge unfaulted", |s| {
            let a = s.view.live_vmas()[0];
            let n = s.mmap(0, 4, 8);
            s.d.dup_anon_vma(&s.view, n, a)
        }),
        ("fork without reuse", fork_mm0),
    ];
    let mut sites = BTreeSet::new();
    let mut runs = 0;
    let mut check_op = |name: &str, s0: &Sim<AvcRmap<V>>, op: MatrixOp<V>| {
        let mut ok = s0.clone();
        let made = ok.d.core.alloc.made();
        op(&mut ok).unwrap();
        ok.check();
        let n = ok.d.core.alloc.made() - made;
        assert!(n > 0, "{name} allocates");
        for i in 1..=n {
            let mut s = s0.clone();
            let before = (s.structure(), s.d.counters());
            s.d.alloc_schedule().fail_nth(i);
            match op(&mut s) {
                Err(RmapError::NoMem { site }) => {
                    sites.insert(site);
                }
                other => panic!("{name}, allocation {i}/{n}: {other:?}"),
            }
            let after = s.d.counters();
            assert_eq!(s.structure(), before.0, "{name}, allocation {i}/{n}");
            assert_eq!(
                (after.anon_vmas, after.avcs, after.bytes),
                (before.1.anon_vmas, before.1.avcs, before.1.bytes),
                "{name}, allocation {i}/{n}"
            );
            assert_eq!(after.allocations, before.1.allocations + i - 1);
            assert!(!s.d.alloc_schedule().pending());
            s.check();
            runs += 1;
        }
    };
    for (name, op) in &ops {
        check_op(name, &base, *op);
    }
    // Fork with reuse (prealloc-2026: the preallocated anon_vma and AVC are
    // discarded), and a failure in the clone changes nothing either.
    let mut r = Sim::new(d);
    let v0 = r.mmap(5, 0, 4);
    r.fault(v0);
    let v1 = r.fork(6, v0);
    let v2 = r.fork(7, v1);
    let b = r.av(v1);
    r.exit(v0);
    r.exit(v1);
    // Re-home v2 as mm 0 so fork_mm0 forks it.
    r.view.vmas.get_mut(v2).unwrap().mm = Pid(0);
    let mut probe = r.clone();
    fork_mm0(&mut probe).unwrap();
    let mut reused = probe.view.live_vmas().into_iter();
    let reused = reused.find(|&x| probe.info(x).mm == Pid(9));
    assert_eq!(
        probe.d.core.anon_vma_of(reused.unwrap()),
        Some(b),
        "reuses B"
    );
    assert_eq!(probe.d.counters().anon_vmas, r.d.counters().anon_vmas);
    check_op("fork with reuse", &r, fork_mm0);

    let all: BTreeSet<&str> = r.d.alloc_sites().iter().copied().collect();
    assert_eq!(sites, all);
    assert!(runs >= 15, "{runs}");
}

#[test]
fn failure_at_every_allocation_site_leaves_no_trace() {
    on_linux_6_18!(failure_matrix);
}

/// Objects freed behind the design's back are reported as `Dangling`, never
/// a panic.
fn dangling<V: Variant>(d: AvcRmap<V>) {
    // A bogus free of the root.
    let mut s = Sim::new(d.clone());
    let a = s.mmap(0, 0, 4);
    s.fault(a);
    let av = s.av(a);
    let mut freed = s.clone();
    freed.d.core.anon_vmas.remove(av).unwrap();
    dangling_hooks(&mut freed, av, a);
    // A VMA freed by the MMU without unlink.
    let c = s.fork(1, a);
    s.view.vmas.remove(c).unwrap();
    let r = s.d.self_check(&s.view);
    assert!(matches!(r, Err(RmapError::Dangling { .. })));

    // A bogus free of a non-root anon_vma.
    let mut s = Sim::new(d.clone());
    let p0 = s.mmap(0, 0, 4);
    s.fault(p0);
    let p1 = s.fork(1, p0);
    let a1 = s.av(p1);
    s.d.core.anon_vmas.remove(a1).unwrap();
    dangling_hooks(&mut s, a1, p1);

    // A freed AVC.
    let mut s = Sim::new(d.clone());
    let p0 = s.mmap(0, 0, 4);
    s.fault(p0);
    let avc = s.d.core.vmas.get(p0).unwrap().chain[0];
    s.d.core.avcs.remove(avc).unwrap();
    let r = s.d.self_check(&s.view);
    assert!(matches!(r, Err(RmapError::Dangling { .. })));
    let root = s.av(p0);
    let r = s.d.rmap_walk(&s.view, root, 0, &mut Vec::new());
    assert!(matches!(r, Err(RmapError::Dangling { .. })));

    // A VMA the MMU freed without unlinking it.
    let mut s = Sim::new(d);
    let p0 = s.mmap(0, 0, 4);
    s.fault(p0);
    s.view.vmas.remove(p0).unwrap();
    let r = s.d.self_check(&s.view);
    assert!(matches!(r, Err(RmapError::Dangling { .. })));
}

/// Every hook that follows `v`'s freed anon_vma `av` reports `Dangling`.
fn dangling_hooks<V: Variant>(s: &mut Sim<AvcRmap<V>>, av: crate::arena::Handle, v: VmaId) {
    let dangles = |r: Result<(), RmapError>| matches!(r, Err(RmapError::Dangling { .. }));
    assert!(!s.d.mapping_alive(av));
    assert!(dangles(s.d.self_check(&s.view)));
    assert!(dangles(s.d.rmap_walk(&s.view, av, 0, &mut Vec::new())));
    assert!(dangles(s.d.folio_add_new_anon_rmap(v, true).map(|_| ())));
    let c = s.view.vmas.insert(VmaInfo {
        mm: Pid(7),
        ..s.info(v)
    });
    assert!(dangles(s.d.anon_vma_fork(&s.view, c, v)));
    assert!(dangles(s.d.unlink_anon_vmas(&s.view, v)));
    let text = s.d.describe(&s.view, Some(av), &[v]);
    assert!(text.contains("FREED"), "{text}");
}

#[test]
fn dangling_references_are_reported_not_panicked() {
    for era in Era::ALL {
        dangling(Chain2010::new(era));
    }
    dangling(Prealloc2026::new());
}

fn self_check_names<V: Variant>(d: AvcRmap<V>) {
    let mut s = Sim::new(d);
    let p = s.mmap(0, 0, 4);
    s.fault(p);
    let c = s.fork(1, p);
    let (a, b) = (s.av(p), s.av(c));
    s.check();
    let name = |x: &Sim<AvcRmap<V>>| check_name(x.d.self_check(&x.view));
    let mut x = s.clone();
    x.d.core.anon_vmas.get_mut(a).unwrap().num_children += 1;
    assert_eq!(name(&x), "counters");
    x.d.core.anon_vmas.get_mut(a).unwrap().num_children -= 1;
    x.check();
    let mut x = s.clone();
    x.d.core.anon_vmas.get_mut(a).unwrap().refcount -= 1;
    assert_eq!(name(&x), "counters");
    let mut x = s.clone();
    x.d.core.anon_vmas.get_mut(b).unwrap().root = b;
    assert_eq!(name(&x), "one-root");
    let mut x = s.clone();
    let dup = x.d.core.vmas.get(c).unwrap().chain[0];
    x.d.core.state_mut(c).chain.push(dup);
    assert_eq!(name(&x), "chain-sets");
    // A second, unrelated root in c's chain.
    let mut x = s.clone();
    let q = x.mmap(2, 0, 4);
    x.fault(q);
    let other = x.av(q);
    let avc = x.d.core.vmas.get(c).unwrap().chain[0];
    x.d.core.avcs.get_mut(avc).unwrap().anon_vma = other;
    assert!(x.d.self_check(&x.view).is_err());
    // INV-CHAIN: a VMA of p1 sharing B with a chain of only B.
    let mut x = s.clone();
    let w = x.mmap(1, 8, 12);
    let st = VmaState {
        anon_vma: Some(b),
        chain: Vec::new(),
    };
    x.d.core.vmas.insert(w, st);
    let h = x.d.core.avc_alloc(w, b);
    x.d.core.anon_vma_chain_assign(w, h);
    x.d.core.anon_vma_interval_tree_insert(&x.view, h).unwrap();
    x.d.core.anon_vmas.get_mut(b).unwrap().num_active_vmas += 1;
    assert_eq!(name(&x), "chain-sets");
    // An AVC outside every chain.
    let mut x = s.clone();
    x.d.core.avc_alloc(c, a);
    assert_eq!(name(&x), "leaked-avc");
}

#[test]
fn self_check_names_structural_failures() {
    on_linux_6_18!(self_check_names);
}

fn fork_trees<V: Variant>(d: AvcRmap<V>) {
    let mut s = Sim::new(d);
    let p = s.mmap(0, 0, 4);
    let q = s.mmap(0, 10, 14);
    s.fault(p);
    s.fault(q);
    let c = s.fork(1, p);
    let (a, b, r) = (s.av(p), s.av(c), s.av(q));
    assert_eq!(s.d.tree_of(b), Some(a));
    assert_eq!(s.d.tree_of(r), Some(r));
    let trees = s.d.fork_trees();
    assert_eq!(trees.len(), 2);
    let ta = trees.iter().find(|t| t.root == a).unwrap();
    let what = "A and B; p->A, c->A, c->B; p and c";
    assert_eq!((ta.anon_vmas, ta.avcs, ta.vmas), (2, 3, 2), "{what}");
    assert_eq!(ta.bytes, 2 * 96 + 3 * 64 + 2 * VMA_DELTA_BYTES);
    let total = s.d.counters();
    let sum = |f: fn(&TreeCounters) -> u64| trees.iter().map(f).sum::<u64>();
    assert_eq!(sum(|t| t.anon_vmas), total.anon_vmas);
    assert_eq!(sum(|t| t.avcs), total.avcs);
    assert_eq!(sum(|t| t.bytes), total.bytes);
    s.exit(q);
    assert_eq!(s.d.tree_of(r), None);
    assert_eq!(s.d.fork_trees().len(), 1);
}

#[test]
fn fork_trees_partition_the_objects_by_root() {
    on_linux_6_18!(fork_trees);
}

/// Every named check of the anon_vma_chain core fires on exactly the
/// damage it guards (the ones `self_check_names` does not cover): each
/// case corrupts one thing and expects that check's name.
fn named_checks<V: Variant>(d: AvcRmap<V>) {
    let mut s = Sim::new(d);
    let p = s.mmap(0, 0, 4);
    s.fault(p);
    let c = s.fork(1, p);
    s.check();
    let name = |x: &Sim<AvcRmap<V>>| check_name(x.d.self_check(&x.view));

    // interval-tree: an AVC taken out of its anon_vma's tree, its key left
    // as it was, so that only the membership test (`AvcSet::contains`)
    // tells; seen from the VMA's chain.
    let mut x = s.clone();
    let avc = x.d.core.vmas.get(c).unwrap().chain[0];
    let a = x.d.core.avcs.get(avc).copied().unwrap();
    let key = a.key.expect("keyed");
    assert!(
        x.d.core
            .anon_vmas
            .get_mut(a.anon_vma)
            .unwrap()
            .set
            .remove(avc, key)
    );
    assert_eq!(name(&x), "interval-tree");
    // ... and seen from the anon_vma's tree: an AVC in the tree whose key
    // says it is not there.
    let mut x = s.clone();
    let avc = x.d.core.vmas.get(c).unwrap().chain[0];
    x.d.core.avcs.get_mut(avc).unwrap().key = None;
    assert_eq!(name(&x), "interval-tree");

    // anon-vma-in-chain: vma->anon_vma not on its own chain; a chain
    // without an anon_vma.
    let mut x = s.clone();
    let q = x.mmap(2, 0, 4);
    x.fault(q);
    let other = x.av(q);
    x.d.core.state_mut(c).anon_vma = Some(other);
    assert_eq!(name(&x), "anon-vma-in-chain");
    let mut x = s.clone();
    x.d.core.state_mut(c).anon_vma = None;
    assert_eq!(name(&x), "anon-vma-in-chain");

    // empty-anon-vma: an anon_vma that nothing links or pins.
    let mut x = s.clone();
    x.d.core.anon_vma_alloc();
    assert_eq!(name(&x), "empty-anon-vma");

    // no-anon-vma: a new page in a VMA that has no anon_vma.
    let mut x = s.clone();
    let u = x.mmap(0, 8, 12);
    assert_eq!(
        check_name(x.d.folio_add_new_anon_rmap(u, true)),
        "no-anon-vma"
    );
    assert_eq!(
        check_name(x.d.folio_move_anon_rmap(u, x.av(p))),
        "no-anon-vma"
    );

    // clone-dst / check_anon_vma_clone: a clone into a VMA that already
    // has rmap state; fork-child / check_anon_vma_clone: a fork into one.
    let clone_dst = if s.d.name() == "prealloc-2026" {
        "check_anon_vma_clone"
    } else {
        "clone-dst"
    };
    let mut x = s.clone();
    let r = x.d.anon_vma_clone(&x.view, c, p, CloneOp::Split);
    assert_eq!(check_name(r), clone_dst);
    let fork_child = if s.d.name() == "prealloc-2026" {
        "check_anon_vma_clone"
    } else {
        "fork-child"
    };
    let mut x = s.clone();
    let r = x.d.anon_vma_fork(&x.view, c, p);
    assert_eq!(check_name(r), fork_child);
}

#[test]
fn every_named_check_fires_on_the_damage_it_guards() {
    on_linux_6_18!(named_checks);
    named_checks(Chain2010::new(Era::E2015));
    named_checks(Chain2010::new(Era::E2010));
}

/// prealloc-2026's `unlink_anon_vmas` warning (patch 5's
/// `VM_WARN_ON_ONCE`): a VMA with AVCs but no anon_vma is unlinked; the
/// warning is deferred to the next self-check (whose structural part then
/// finds the AVCs left in their trees first, so the deferred error itself
/// is read here).
#[test]
fn prealloc_unlink_of_a_chain_without_anon_vma_warns() {
    let mut s = Sim::new(Prealloc2026::new());
    let p = s.mmap(0, 0, 4);
    s.fault(p);
    let c = s.fork(1, p);
    s.check();
    s.d.core.state_mut(c).anon_vma = None;
    s.d.unlink_anon_vmas(&s.view, c).unwrap();
    let deferred = s.d.core.deferred.clone().map(Err::<(), _>);
    assert_eq!(check_name(deferred.expect("deferred")), "unlink_anon_vmas");
    assert!(s.d.self_check(&s.view).is_err());
}

/// The 2026 series takes one root lock for a whole clone or unlink
/// (patch 4): `anon_vma_clone` and `unlink_anon_vmas` check on entry that
/// the chain has one root, so a chain mixing roots fails `one-root` at
/// the clone or unlink that would lock the wrong root, before any tree
/// is touched.
#[test]
fn prealloc_clone_and_unlink_refuse_a_chain_with_two_roots() {
    let mut s = Sim::new(Prealloc2026::new());
    let p = s.mmap(0, 0, 4);
    s.fault(p);
    let c = s.fork(1, p);
    let q = s.mmap(2, 0, 4);
    s.fault(q);
    s.check();
    let other = s.av(q);
    let avc = s.d.core.vmas.get(c).unwrap().chain[0];
    s.d.core.avcs.get_mut(avc).unwrap().anon_vma = other;
    let before = s.structure();
    let i = s.info(c);
    let child = s.view.vmas.insert(VmaInfo { mm: Pid(3), ..i });
    let e = s.d.anon_vma_fork(&s.view, child, c);
    assert_eq!(check_name(e), "one-root");
    let e = s.d.unlink_anon_vmas(&s.view, c);
    assert_eq!(check_name(e), "one-root");
    assert_eq!(s.structure(), before, "refused before changing anything");
}
