//! The strategies on toy actors, checked against brute force.

use super::*;
use std::collections::BTreeSet;

/// A toy step: locks taken and kept, locks taken and dropped inside, locks
/// dropped; `effect` is applied to the shared toy memory.
#[derive(Clone, Debug)]
struct ToyStep {
    name: &'static str,
    take: Vec<(LockId, Mode)>,
    inner: Vec<(LockId, Mode)>,
    drop: Vec<LockId>,
    effect: Effect,
}

#[derive(Clone, Copy, Debug)]
enum Effect {
    None,
    Set(u64),
    /// Fails if the memory is not this value.
    Expect(u64),
}

fn st(name: &'static str) -> ToyStep {
    ToyStep {
        name,
        take: vec![],
        inner: vec![],
        drop: vec![],
        effect: Effect::None,
    }
}

#[derive(Clone, Debug)]
struct Toy {
    steps: Vec<Vec<ToyStep>>,
    pos: Vec<usize>,
    mem: u64,
}

impl Toy {
    fn new(steps: Vec<Vec<ToyStep>>) -> Toy {
        let n = steps.len();
        Toy {
            steps,
            pos: vec![0; n],
            mem: 0,
        }
    }
    fn plain(actors: usize, k: usize) -> Toy {
        const NAMES: [&str; 8] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];
        Toy::new(
            (0..actors)
                .map(|_| (0..k).map(|i| st(NAMES[i])).collect())
                .collect(),
        )
    }
}

impl Actors for Toy {
    type Failure = String;
    fn count(&self) -> usize {
        self.steps.len()
    }
    fn next(&self, a: usize) -> Option<Step> {
        let s = self.steps[a].get(self.pos[a])?;
        let mut needs = s.take.clone();
        needs.extend(s.inner.iter().copied());
        Some(Step { needs })
    }
    fn run(&mut self, a: usize, ex: &mut Execution) -> Result<(String, bool), String> {
        let s = self.steps[a][self.pos[a]].clone();
        for &(l, m) in s.take.iter().chain(&s.inner) {
            ex.acquire(a, l, m).map_err(|e| e.0)?;
        }
        for &(l, _) in &s.inner {
            ex.release(a, l).map_err(|e| e.0)?;
        }
        for &l in &s.drop {
            ex.release(a, l).map_err(|e| e.0)?;
        }
        match s.effect {
            Effect::None => {}
            Effect::Set(v) => self.mem = v,
            Effect::Expect(v) if self.mem != v => {
                return Err(format!("{}:{} saw {}", letter(a), s.name, self.mem));
            }
            Effect::Expect(_) => {}
        }
        self.pos[a] += 1;
        Ok((s.name.to_string(), self.pos[a] == self.steps[a].len()))
    }
}

/// Runs every schedule of `strategy` on fresh copies of `toy`.
fn all(toy: &Toy, strategy: &mut dyn Strategy) -> Vec<(Ended<String>, Trace)> {
    let mut out = Vec::new();
    loop {
        let mut t = toy.clone();
        match drive(strategy, &mut t) {
            Some(r) => out.push(r),
            None => return out,
        }
        assert!(out.len() < 100_000, "runaway search");
    }
}

/// Brute force: every complete lock-respecting interleaving of `toy` (as
/// the actor sequence) with its preemption count; deadlocked prefixes are
/// returned separately.
fn brute(toy: &Toy) -> (Vec<(Vec<usize>, u32)>, usize) {
    let mut done = Vec::new();
    let mut deadlocks = 0;
    fn rec(
        t: &Toy,
        ex: &Execution,
        seq: &mut Vec<usize>,
        pre: u32,
        done: &mut Vec<(Vec<usize>, u32)>,
        dl: &mut usize,
    ) {
        let n = t.steps.len();
        let enabled: Vec<usize> = (0..n)
            .filter(|&a| t.next(a).is_some_and(|s| ex.enabled(a, &s)))
            .collect();
        if enabled.is_empty() {
            if (0..n).all(|a| t.pos[a] == t.steps[a].len()) {
                done.push((seq.clone(), pre));
            } else {
                *dl += 1;
            }
            return;
        }
        let cur = seq.last().copied();
        for &a in &enabled {
            let p = pre + u32::from(matches!(cur, Some(c) if c != a && enabled.contains(&c)));
            let mut t2 = t.clone();
            let mut ex2 = ex.clone();
            let mut dummy = Explore::new(0);
            ex2.running = Some(a);
            let (name, last) = t2.run(a, &mut ex2).expect("toy step");
            ex2.finish_step(&mut dummy, a, &name, last).expect("locks");
            seq.push(a);
            rec(&t2, &ex2, seq, p, done, dl);
            seq.pop();
        }
    }
    rec(
        toy,
        &Execution::new(toy.steps.len()),
        &mut Vec::new(),
        0,
        &mut done,
        &mut deadlocks,
    );
    (done, deadlocks)
}

fn actors_of(t: &Trace) -> Vec<usize> {
    t.0.iter().map(|e| e.actor).collect()
}

/// A toy with a lock: A holds L over three steps; B takes L inside one
/// step between two free ones; C takes L shared.
fn locked_toy() -> Toy {
    let l = LockId::Anon(7);
    let mut a0 = st("lock");
    a0.take = vec![(l, Mode::Exclusive)];
    let mut a2 = st("unlock");
    a2.drop = vec![l];
    let mut b1 = st("touch");
    b1.inner = vec![(l, Mode::Exclusive)];
    let mut c0 = st("rlock");
    c0.take = vec![(l, Mode::Shared)];
    let mut c1 = st("runlock");
    c1.drop = vec![l];
    Toy::new(vec![
        vec![a0, st("visit#0"), a2],
        vec![st("pre"), b1, st("post")],
        vec![c0, c1],
    ])
}

#[test]
fn explore_matches_brute_force_without_locks() {
    for actors in 2..=3 {
        for k in 1..=4 {
            if actors == 3 && k > 3 {
                continue;
            }
            let toy = Toy::plain(actors, k);
            let (bf, dl) = brute(&toy);
            assert_eq!(dl, 0);
            for bound in 0..=4 {
                let mut e = Explore::new(bound);
                let got = all(&toy, &mut e);
                let want: BTreeSet<Vec<usize>> = bf
                    .iter()
                    .filter(|(_, p)| *p <= bound)
                    .map(|(s, _)| s.clone())
                    .collect();
                let seen: Vec<Vec<usize>> = got.iter().map(|(_, t)| actors_of(t)).collect();
                let set: BTreeSet<Vec<usize>> = seen.iter().cloned().collect();
                assert_eq!(seen.len(), set.len(), "a schedule ran twice");
                assert_eq!(set, want, "{actors} actors x {k} steps, bound {bound}");
                assert!(got.iter().all(|(e, _)| matches!(e, Ended::Done)));
            }
        }
    }
}

#[test]
fn explore_counts_for_two_actors() {
    // 2 actors x 3 steps: 20 interleavings; by preemptions 2 with 0, 4
    // with 1, 8 with 2, 4 with 3, 2 with 4 (counted by hand and by a
    // separate script).
    let toy = Toy::plain(2, 3);
    let counts: Vec<usize> = (0..=4)
        .map(|b| all(&toy, &mut Explore::new(b)).len())
        .collect();
    assert_eq!(counts, vec![2, 6, 14, 18, 20]);
}

#[test]
fn explore_respects_locks_and_matches_brute_force() {
    let toy = locked_toy();
    let (bf, dl) = brute(&toy);
    assert_eq!(dl, 0);
    for bound in 0..=4 {
        let got = all(&toy, &mut Explore::new(bound));
        let set: BTreeSet<Vec<usize>> = got.iter().map(|(_, t)| actors_of(t)).collect();
        assert_eq!(set.len(), got.len());
        let want: BTreeSet<Vec<usize>> = bf
            .iter()
            .filter(|(_, p)| *p <= bound)
            .map(|(s, _)| s.clone())
            .collect();
        assert_eq!(set, want, "bound {bound}");
    }
    // B's touch never runs between A's lock and unlock.
    for (_, t) in all(&toy, &mut Explore::new(4)) {
        let pos = |a: usize, n: &str| t.0.iter().position(|e| e.actor == a && e.name == n);
        let touch = pos(1, "touch").unwrap();
        assert!(touch < pos(0, "lock").unwrap() || touch > pos(0, "unlock").unwrap());
    }
}

#[test]
fn deadlock_is_detected() {
    let (x, y) = (LockId::Page(1), LockId::Page(2));
    let mut a0 = st("x");
    a0.take = vec![(x, Mode::Exclusive)];
    let mut a1 = st("y");
    a1.take = vec![(y, Mode::Exclusive)];
    a1.drop = vec![x, y];
    let mut b0 = st("y");
    b0.take = vec![(y, Mode::Exclusive)];
    let mut b1 = st("x");
    b1.take = vec![(x, Mode::Exclusive)];
    b1.drop = vec![x, y];
    let toy = Toy::new(vec![vec![a0, a1], vec![b0, b1]]);
    let runs = all(&toy, &mut Explore::new(1));
    let dead: Vec<String> = runs
        .iter()
        .filter(|(e, _)| matches!(e, Ended::Deadlock))
        .map(|(_, t)| t.render_strict())
        .collect();
    assert_eq!(dead, vec!["! A..x B..y", "! B..y A..x"]);
    assert_eq!(runs.len(), 4);
    // The deadlock's rendering replays into the same deadlock.
    let items = runs
        .iter()
        .find(|(e, _)| matches!(e, Ended::Deadlock))
        .unwrap()
        .1
        .items();
    let r = all(&toy, &mut Replay::new(items, true));
    assert!(matches!(r[..], [(Ended::Deadlock, _)]));
}

#[test]
fn finishing_with_a_lock_held_is_a_lock_error() {
    let mut a0 = st("lock");
    a0.take = vec![(LockId::Mmap(0), Mode::Exclusive)];
    let toy = Toy::new(vec![vec![a0], vec![st("b")]]);
    let r = all(&toy, &mut Explore::new(0));
    assert!(matches!(&r[0].0, Ended::Lock(e) if e.0.contains("finished holding mmap(p0)")));
}

#[test]
fn pct_and_random_are_deterministic_per_seed() {
    let toy = Toy::plain(3, 4);
    let mut traces_pct = BTreeSet::new();
    let mut traces_rnd = BTreeSet::new();
    for seed in 0..40 {
        let p1 = all(&toy, &mut Pct::new(seed, 3, 12));
        let p2 = all(&toy, &mut Pct::new(seed, 3, 12));
        assert_eq!(p1.len(), 1);
        assert_eq!(p1[0].1, p2[0].1);
        traces_pct.insert(actors_of(&p1[0].1));
        let r1 = all(&toy, &mut RandomWalk::new(seed));
        let r2 = all(&toy, &mut RandomWalk::new(seed));
        assert_eq!(r1.len(), 1);
        assert_eq!(r1[0].1, r2[0].1);
        traces_rnd.insert(actors_of(&r1[0].1));
    }
    assert!(
        traces_pct.len() > 5,
        "PCT drew {} schedules",
        traces_pct.len()
    );
    assert!(traces_rnd.len() > 20, "random drew {}", traces_rnd.len());
}

#[test]
fn pct_depth_one_runs_by_priority_without_switching() {
    // No change points: one actor runs to the end, then the next.
    for seed in 0..10 {
        let r = all(&Toy::plain(2, 3), &mut Pct::new(seed, 1, 6));
        let s = actors_of(&r[0].1);
        assert!(s == [0, 0, 0, 1, 1, 1] || s == [1, 1, 1, 0, 0, 0], "{s:?}");
    }
}

#[test]
fn bytes_take_byte_i_modulo_enabled() {
    let toy = Toy::plain(2, 2);
    // Decision 0: byte 3 % 2 = 1 -> B; decision 1: byte 4 % 2 = 0 -> A;
    // then past the end: the lowest letter.
    let r = all(&toy, &mut Bytes::new(vec![3, 4]));
    assert_eq!(actors_of(&r[0].1), vec![1, 0, 0, 1]);
    let r = all(&toy, &mut Bytes::new(vec![]));
    assert_eq!(actors_of(&r[0].1), vec![0, 0, 1, 1]);
    // Forced steps consume no byte: B runs alone after A finished.
    let r = all(&toy, &mut Bytes::new(vec![0, 0, 1]));
    assert_eq!(actors_of(&r[0].1), vec![0, 0, 1, 1]);
}

#[test]
fn rendered_traces_replay_exactly() {
    let toy = locked_toy();
    for (_, t) in all(&toy, &mut Explore::new(3)) {
        let items = t.items();
        let r = all(&toy, &mut Replay::new(items.clone(), true));
        assert_eq!(r.len(), 1);
        assert!(matches!(r[0].0, Ended::Done), "{}", t.render_strict());
        assert_eq!(r[0].1, t, "{}", t.render_strict());
        // Lenient replay of a feasible schedule is the same schedule.
        let r = all(&toy, &mut Replay::new(items, false));
        assert_eq!(r[0].1, t);
    }
}

#[test]
fn a_failing_schedule_renders_and_replays() {
    // A sets 1 then expects 1; B sets 2: fails only if B runs between.
    let mut a0 = st("set");
    a0.effect = Effect::Set(1);
    let mut a1 = st("check");
    a1.effect = Effect::Expect(1);
    let mut b0 = st("clobber");
    b0.effect = Effect::Set(2);
    let toy = Toy::new(vec![vec![a0, a1], vec![st("pre"), b0]]);
    let runs = all(&toy, &mut Explore::new(0));
    assert!(runs.iter().all(|(e, _)| matches!(e, Ended::Done)));
    let runs = all(&toy, &mut Explore::new(2));
    let (e, t) = runs
        .into_iter()
        .find(|(e, _)| matches!(e, Ended::Failed(_)))
        .expect("explore:2 finds the race");
    let Ended::Failed(msg) = e else {
        unreachable!()
    };
    assert_eq!(msg, "A:check saw 2");
    let s = t.render_strict();
    assert_eq!(s, "! A..set B* A1");
    let r = all(&toy, &mut Replay::new(t.items(), true));
    assert!(matches!(&r[0].0, Ended::Failed(m) if *m == msg));
    assert_eq!(r[0].1, t);
}

#[test]
fn lenient_skips_and_strict_rejects() {
    let toy = locked_toy();
    // B..touch while A holds the lock: lenient skips the item, strict
    // refuses it.
    let items = vec![
        Item {
            actor: 0,
            run: RunLen::Until("lock".into()),
        },
        Item {
            actor: 1,
            run: RunLen::Until("touch".into()),
        },
        Item {
            actor: 2,
            run: RunLen::Finish,
        },
    ];
    let r = all(&toy, &mut Replay::new(items.clone(), false));
    assert!(matches!(r[0].0, Ended::Done));
    // B ran "pre" then blocked; C blocked too (A holds L exclusively), so
    // the rest ran in letter order from the current actor.
    assert_eq!(
        r[0].1.labelled(),
        "A:lock B:pre A:visit#0 A:unlock B:touch B:post C:rlock C:runlock"
    );
    let r = all(&toy, &mut Replay::new(items, true));
    assert!(
        matches!(&r[0].0, Ended::Schedule(ScheduleError::Strict { item: 1, detail }) if detail.contains("blocked")),
        "{:?}",
        r[0].0
    );
    // Leftover items once every actor finished are an error when strict.
    let items = vec![
        Item {
            actor: 0,
            run: RunLen::Finish,
        },
        Item {
            actor: 1,
            run: RunLen::Finish,
        },
        Item {
            actor: 2,
            run: RunLen::Finish,
        },
        Item {
            actor: 0,
            run: RunLen::Steps(1),
        },
    ];
    let r = all(&toy, &mut Replay::new(items, true));
    assert!(matches!(
        r[0].0,
        Ended::Schedule(ScheduleError::Strict { item: 3, .. })
    ));
}

#[test]
fn shared_locks_do_not_block_each_other() {
    let l = LockId::Anon(1);
    let mk = || {
        let mut a = st("r");
        a.take = vec![(l, Mode::Shared)];
        let mut b = st("u");
        b.drop = vec![l];
        vec![a, b]
    };
    let toy = Toy::new(vec![mk(), mk()]);
    let n = all(&toy, &mut Explore::new(4)).len();
    assert_eq!(n, 6, "two readers interleave freely");
}

#[test]
fn lock_models_per_design_and_era() {
    use crate::designs::registry::{Design, DesignSpec, Era};
    use crate::rmap::Rmap;
    let model = |d: Design, era: Option<&str>| {
        let mut spec = DesignSpec::new(d);
        spec.era = era.map(|e| Era::from_name(e).expect("era"));
        spec.build().expect("design").lock_model()
    };
    let e2010 = model(Design::Chain2010, Some("2010"));
    assert_eq!(e2010, LockModel::LIST_ERA_2010);
    assert!(e2010.moveto_tail && !e2010.need_rmap_locks && !e2010.shared_readers);
    assert_eq!(e2010.walk_lock, LockObj::Root);
    for era in ["2015", "2022"] {
        let m = model(Design::Chain2010, Some(era));
        assert!(
            m.need_rmap_locks && !m.moveto_tail && m.shared_readers,
            "{era}"
        );
        assert_eq!(m.move_granularity, Granularity::Pmd);
    }
    assert_eq!(model(Design::Prealloc2026, None), LockModel::LINUX_6_18);
    let d1 = model(Design::SingleList2004, None);
    assert_eq!(
        (d1.walk_lock, d1.prepare_insert),
        (LockObj::Own, Insert::Head)
    );
    assert_eq!(d1, LockModel::SINGLE_LIST_2004);
    let d1 = model(Design::SingleList2004, Some("2006"));
    assert_eq!(d1, LockModel::SINGLE_LIST_2006);
    assert_eq!(
        (d1.prepare_insert, d1.move_granularity, d1.peek_before_ptl),
        (Insert::Tail, Granularity::Chunk64, true)
    );
    // A locking --bug flips one field of its era's model.
    let bug = |era: &str, id: &str| {
        let mut spec = DesignSpec::new(Design::Chain2010);
        spec.era = Some(Era::from_name(era).expect("era"));
        spec.bugs.push(id.to_string());
        spec.build().expect("design").lock_model()
    };
    let m = bug("2010", "b12");
    assert_eq!(
        m,
        LockModel {
            moveto_tail: false,
            ..LockModel::LIST_ERA_2010
        }
    );
    let m = bug("2022", "b12");
    assert_eq!(
        m,
        LockModel {
            need_rmap_locks: false,
            ..LockModel::LINUX_6_18
        }
    );
    let m = bug("2010", "b12p");
    assert_eq!(
        m,
        LockModel {
            peek_before_ptl: true,
            ..LockModel::LIST_ERA_2010
        }
    );
    let m = bug("2010", "b08");
    assert_eq!(
        m,
        LockModel {
            prepare_insert: Insert::Head,
            ..LockModel::LIST_ERA_2010
        }
    );
}
