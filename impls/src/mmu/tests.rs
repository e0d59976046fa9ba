//! MMU tests: the live-kernel cases of `shared/research/live-kernel.md`
//! replayed on a private toy design.
//!
//! The toy design walks like the 2004 design (one list of VMAs per family,
//! which is always complete, so findability holds) but decides merges like
//! Linux 6.18: every VMA carries a logical anon_vma identity and a
//! "fork child" bit (a non-singular anon_vma_chain), so the merge tables of
//! §4 come out as the kernel's.

use std::collections::HashMap;

use super::*;
use crate::arena::{Arena, SecondaryMap};
use crate::rmap::{AllocSchedule, CloneOp, Counters, MergeSrc};
use rmaplab_ops::{Advice, Kind, MremapTo};

#[derive(Clone, Copy, Debug)]
struct ToyVma {
    /// Logical anon_vma identity (what `vma->anon_vma` would point to).
    av: u64,
    /// The chain is not singular: inherited through fork.
    fork_child: bool,
    /// The family list the VMA sits on (the walk structure).
    family: Handle,
}

#[derive(Clone, Default)]
struct Toy {
    vmas: SecondaryMap<ToyVma>,
    families: Arena<Vec<VmaId>>,
    next_av: u64,
    sched: AllocSchedule,
    /// A broken variant whose walks find nothing (to test the MMU's
    /// violation reports).
    blind: bool,
}

impl Toy {
    fn join(&mut self, vma: VmaId, st: ToyVma) {
        self.families
            .get_mut(st.family)
            .expect("live family")
            .push(vma);
        self.vmas.insert(vma, st);
    }
    fn new_av(&mut self) -> u64 {
        self.next_av += 1;
        self.next_av
    }
    fn av(&self, v: VmaId) -> Option<u64> {
        self.vmas.get(v).map(|s| s.av)
    }
    fn is_fork_child(&self, v: Option<VmaId>) -> bool {
        v.and_then(|v| self.vmas.get(v))
            .is_some_and(|s| s.fork_child)
    }
    /// Linux 6.18 `is_mergeable_anon_vma` with explicit middle/copied_from.
    fn mergeable(
        &self,
        tgt: VmaId,
        src_anon: Option<u64>,
        middle: Option<VmaId>,
        copied: Option<VmaId>,
    ) -> bool {
        let tgt_anon = self.av(tgt);
        match (tgt_anon, src_anon) {
            (None, Some(_)) => !self.is_fork_child(middle) && !self.is_fork_child(copied),
            (Some(_), None) => !self.is_fork_child(Some(tgt)),
            (a, b) => a == b,
        }
    }
}

impl Rmap for Toy {
    fn name(&self) -> &'static str {
        "toy"
    }
    fn config(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    fn has_anon_vma(&self, vma: VmaId) -> bool {
        self.vmas.get(vma).is_some()
    }
    fn anon_vma_prepare(
        &mut self,
        _view: &dyn VmaView,
        vma: VmaId,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<(), RmapError> {
        self.sched.alloc("anon_vma")?;
        for c in [next, prev].into_iter().flatten() {
            if let Some(s) = self.vmas.get(c).copied()
                && !s.fork_child
            {
                self.join(vma, s);
                return Ok(());
            }
        }
        let family = self.families.insert(Vec::new());
        let av = self.new_av();
        self.join(
            vma,
            ToyVma {
                av,
                fork_child: false,
                family,
            },
        );
        Ok(())
    }
    fn anon_vma_fork(
        &mut self,
        _view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<(), RmapError> {
        let Some(p) = self.vmas.get(parent).copied() else {
            return Ok(());
        };
        self.sched.alloc("anon_vma_fork")?;
        let av = self.new_av();
        self.join(
            child,
            ToyVma {
                av,
                fork_child: true,
                family: p.family,
            },
        );
        Ok(())
    }
    fn anon_vma_clone(
        &mut self,
        _view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        _op: CloneOp,
    ) -> Result<(), RmapError> {
        let Some(s) = self.vmas.get(src).copied() else {
            return Ok(());
        };
        self.sched.alloc("anon_vma_clone")?;
        self.join(dst, s);
        Ok(())
    }
    fn dup_anon_vma(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<(), RmapError> {
        if self.has_anon_vma(dst) || !self.has_anon_vma(src) {
            return Ok(());
        }
        self.anon_vma_clone(view, dst, src, CloneOp::MergeUnfaulted)
    }
    fn unlink_anon_vmas(&mut self, _view: &dyn VmaView, vma: VmaId) -> Result<(), RmapError> {
        let Some(s) = self.vmas.remove(vma) else {
            return Ok(());
        };
        let list = self.families.get_mut(s.family).expect("live family");
        list.retain(|&v| v != vma);
        if list.is_empty() {
            self.families.remove(s.family);
        }
        Ok(())
    }
    fn is_mergeable_anon_vma(&self, tgt: VmaId, src: MergeSrc) -> bool {
        match src {
            MergeSrc::New => self.mergeable(tgt, None, None, None),
            MergeSrc::Existing(m) => self.mergeable(tgt, self.av(m), Some(m), None),
            MergeSrc::Copy(c) => self.mergeable(tgt, self.av(c), None, Some(c)),
        }
    }
    fn is_mergeable_anon_vma_extend(&self, tgt: VmaId, src: VmaId) -> bool {
        self.mergeable(tgt, self.av(src), None, None)
    }
    fn anon_vmas_compatible(&self, prev: VmaId, next: VmaId) -> bool {
        match (self.av(prev), self.av(next)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
    fn folio_add_new_anon_rmap(
        &mut self,
        vma: VmaId,
        _exclusive: bool,
    ) -> Result<AnonMapping, RmapError> {
        self.vmas
            .get(vma)
            .map(|s| s.family)
            .ok_or(RmapError::Check {
                name: "toy",
                detail: format!("new anon page in {vma} without an anon_vma"),
            })
    }
    fn folio_move_anon_rmap(
        &mut self,
        vma: VmaId,
        current: AnonMapping,
    ) -> Result<AnonMapping, RmapError> {
        assert_eq!(self.vmas.get(vma).map(|s| s.family), Some(current));
        Ok(current)
    }
    fn rmap_walk(
        &self,
        _view: &dyn VmaView,
        mapping: AnonMapping,
        _index: u64,
        out: &mut Vec<VmaId>,
    ) -> Result<(), RmapError> {
        let list = self.families.get(mapping).ok_or(RmapError::Dangling {
            what: "family".into(),
            detail: format!("{mapping}"),
        })?;
        if !self.blind {
            out.extend_from_slice(list);
        }
        Ok(())
    }
    fn mapping_alive(&self, mapping: AnonMapping) -> bool {
        self.families.contains(mapping)
    }
    fn counters(&self) -> Counters {
        Counters {
            anon_vmas: self.families.len() as u64,
            ..Counters::default()
        }
    }
    fn claimed_bound(&self) -> Option<u64> {
        None
    }
    fn self_check(&self, view: &dyn VmaView) -> Result<(), RmapError> {
        for (v, _) in self.vmas.iter() {
            if view.vma_info(v).is_none() {
                return Err(RmapError::Dangling {
                    what: "vma".into(),
                    detail: format!("toy state for freed {v}"),
                });
            }
        }
        Ok(())
    }
    fn alloc_sites(&self) -> &'static [&'static str] {
        &[]
    }
    fn alloc_schedule(&mut self) -> &mut AllocSchedule {
        &mut self.sched
    }
    fn describe(&self, _: &dyn VmaView, _: Option<AnonMapping>, _: &[VmaId]) -> String {
        String::new()
    }
}

// ---------------------------------------------------------------------------
// A tiny op-line reader for the tests (the real parser lives in the oracle).

fn pid(s: &str) -> Pid {
    Pid(s.trim_start_matches('p').parse().expect("pid"))
}
fn num(s: &str) -> u64 {
    s.parse().expect("number")
}
fn prot(s: &str) -> Prot {
    match s {
        "none" => Prot::None,
        "r" => Prot::R,
        "rw" => Prot::Rw,
        "rx" => Prot::Rx,
        "rwx" => Prot::Rwx,
        _ => panic!("prot {s}"),
    }
}
fn kind(s: &str) -> Kind {
    let parts: Vec<&str> = s.split(':').collect();
    match parts[0] {
        "anon" => Kind::Anon,
        "shared" => Kind::Shared,
        "file" => Kind::File {
            file: num(parts[1]) as u8,
            off: num(parts[2]),
        },
        "sfile" => Kind::SFile {
            file: num(parts[1]) as u8,
            off: num(parts[2]),
        },
        _ => panic!("kind {s}"),
    }
}

fn parse(line: &str) -> Op {
    let w: Vec<&str> = line.split_whitespace().collect();
    match w[0] {
        "mmap" => Op::Mmap {
            pid: pid(w[1]),
            addr: num(w[2]),
            len: num(w[3]),
            prot: prot(w[4]),
            kind: kind(w.get(5).copied().unwrap_or("anon")),
            replace: w.get(6) == Some(&"replace"),
        },
        "munmap" => Op::Munmap {
            pid: pid(w[1]),
            addr: num(w[2]),
            len: num(w[3]),
        },
        "mprotect" => Op::Mprotect {
            pid: pid(w[1]),
            addr: num(w[2]),
            len: num(w[3]),
            prot: prot(w[4]),
        },
        "mremap" => Op::Mremap {
            pid: pid(w[1]),
            old: num(w[2]),
            old_len: num(w[3]),
            new_len: num(w[4]),
            to: (w.get(5) == Some(&"to")).then(|| MremapTo {
                new: num(w[6]),
                dontunmap: w.get(7) == Some(&"dontunmap"),
            }),
        },
        "madvise" => Op::Madvise {
            pid: pid(w[1]),
            addr: num(w[2]),
            len: num(w[3]),
            advice: match w[4] {
                "dontneed" => Advice::DontNeed,
                "dontfork" => Advice::DontFork,
                "dofork" => Advice::DoFork,
                "wipeonfork" => Advice::WipeOnFork,
                "keeponfork" => Advice::KeepOnFork,
                a => panic!("advice {a}"),
            },
        },
        "fork" => Op::Fork { pid: pid(w[1]) },
        "exit" => Op::Exit { pid: pid(w[1]) },
        "read" | "r" => Op::Read {
            pid: pid(w[1]),
            addr: num(w[2]),
        },
        "write" | "w" => Op::Write {
            pid: pid(w[1]),
            addr: num(w[2]),
            value: w.get(3).map_or(0xabc, |v| num(v)),
        },
        "swapout" => Op::Swapout {
            pid: pid(w[1]),
            addr: num(w[2]),
        },
        "reclaim" => Op::Reclaim,
        "migrate" => Op::Migrate {
            pid: pid(w[1]),
            addr: num(w[2]),
        },
        "fail-alloc" => Op::FailAlloc { n: num(w[1]) },
        "dump" => Op::Dump,
        o => panic!("op {o}"),
    }
}

type T = Mmu<Toy>;

fn mmu() -> T {
    Mmu::new(Toy::default())
}

/// The checks the oracle makes after every op, plus the MMU's own
/// bookkeeping: every anonymous PTE found by its walk, every mapping
/// alive, every frame's mapcount equal to the PTEs mapping it, no PTE
/// outside a VMA.
fn check(m: &T) {
    for pte in m.anon_ptes() {
        assert!(m.rmap().mapping_alive(pte.mapping), "dead mapping {pte:?}");
        let w = m.rmap_walk(pte.mapping, pte.index).expect("walk");
        assert!(
            w.found.contains(&(pte.pid, pte.page)),
            "walk misses {}:{} ({pte:?})",
            pte.pid,
            pte.page
        );
    }
    m.rmap().self_check(m).expect("toy self-check");
    let mut counts: HashMap<FrameId, u32> = HashMap::new();
    for (i, mm) in m.m.procs.iter().enumerate() {
        let Some(mm) = mm else { continue };
        for (a, pte) in mm.pt.iter().enumerate() {
            if *pte == Pte::None {
                continue;
            }
            assert!(
                m.m.vma_lookup(Pid(i as u32), a as u64).is_some(),
                "p{i}:{a} has a PTE outside any VMA"
            );
            if let Pte::Present { frame, writable } = *pte {
                if frame != m.m.zero {
                    *counts.entry(frame).or_default() += 1;
                }
                if writable {
                    let f = m.m.frame(frame);
                    let v = m.m.vma(m.m.vma_lookup(Pid(i as u32), a as u64).unwrap());
                    assert!(
                        v.flags & VM_WRITE != 0,
                        "p{i}:{a} writable in a read-only VMA"
                    );
                    if !v.is_shared() {
                        assert!(
                            f.exclusive && f.mapcount == 1,
                            "p{i}:{a} writable shared page"
                        );
                    }
                }
            }
        }
    }
    for (id, f) in m.m.frames.iter() {
        if id == m.m.zero {
            continue;
        }
        assert_eq!(
            f.mapcount,
            counts.get(&id).copied().unwrap_or(0),
            "mapcount of {id} ({:?})",
            f.kind
        );
        if matches!(f.kind, FrameKind::Anon { .. }) && f.mapcount == 0 {
            assert!(f.swap.is_some(), "unmapped anonymous frame {id} leaked");
        }
    }
    // Every VMA in a tree is in the arena exactly once.
    assert_eq!(m.live_vmas().len(), m.m.vmas.len());
}

/// Runs a `;`- or newline-separated script, checking after every op;
/// returns the outcomes.
fn run(m: &mut T, script: &str) -> Vec<Outcome> {
    let mut out = Vec::new();
    for line in script.split([';', '\n']) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let o = m
            .apply(&parse(line))
            .unwrap_or_else(|v| panic!("{line}: {v:?}"));
        check(m);
        out.push(o);
    }
    out
}

/// Runs a script in which every op must succeed.
fn ok(m: &mut T, script: &str) {
    for (o, line) in run(m, script).into_iter().zip(
        script
            .split([';', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#')),
    ) {
        assert!(
            matches!(o, Outcome::Ok | Outcome::Value(_)),
            "`{line}` gave {o}"
        );
    }
}

fn one(m: &mut T, line: &str) -> Outcome {
    run(m, line)[0]
}

/// `0-4 4-8(r--p)`: the compact layout of live-kernel.md (rw-p omitted).
fn layout(m: &T, p: u32) -> String {
    let st = m.state();
    let Some(ps) = st.procs.get(&Pid(p)) else {
        return "dead".into();
    };
    ps.vmas
        .iter()
        .map(|v| {
            if v.perms == "rw-p" {
                format!("{}-{}", v.start, v.end)
            } else {
                format!("{}-{}({})", v.start, v.end, v.perms)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The cells of live-kernel.md §1.4 for each `(pid, start, end)`: `-`,
/// `Z:0`, or a frame label (in order of first appearance) with its
/// mapcount.
fn cells(m: &T, ranges: &[(u32, u64, u64)]) -> Vec<String> {
    let mut labels: HashMap<FrameId, char> = HashMap::new();
    let mut next = b'a';
    ranges
        .iter()
        .map(|&(p, s, e)| {
            (s..e)
                .map(|a| match m.pte(Pid(p), a) {
                    Pte::Present { frame, .. } if frame == m.m.zero => "Z:0".to_string(),
                    Pte::Present { frame, .. } => {
                        let l = *labels.entry(frame).or_insert_with(|| {
                            let c = next as char;
                            next += 1;
                            c
                        });
                        format!("{l}:{}", m.m.frame(frame).mapcount)
                    }
                    Pte::Swap(_) => "S".to_string(),
                    _ => "-".to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn frame_at(m: &T, p: u32, a: u64) -> FrameId {
    match m.pte(Pid(p), a) {
        Pte::Present { frame, .. } => frame,
        other => panic!("p{p}:{a} is {other:?}"),
    }
}

fn value(m: &mut T, p: u32, a: u64) -> u64 {
    match one(m, &format!("read p{p} {a}")) {
        Outcome::Value(v) => v,
        o => panic!("read p{p} {a}: {o}"),
    }
}

/// Every process exits; nothing may be left.
fn teardown(m: &mut T) {
    for p in m.live_pids() {
        ok(m, &format!("exit p{}", p.0));
    }
    assert_eq!(m.anon_frames_live(), 0, "anonymous frames leaked");
    assert_eq!(m.rmap().counters().anon_vmas, 0, "families leaked");
    assert_eq!(m.m.vmas.len(), 0);
    assert_eq!(m.m.swap.len(), 0, "swap slots leaked");
    assert_eq!(m.m.shmem.len(), 0, "shmem objects leaked");
}

// ---------------------------------------------------------------------------
// §3.1 zero page

#[test]
fn e1_zero_page() {
    let mut m = mmu();
    ok(&mut m, "mmap p0 0 4 rw anon; r p0 0; r p0 1");
    assert_eq!(cells(&m, &[(0, 0, 4)]), ["Z:0 Z:0 - -"]);
    assert!(!m.rmap().has_anon_vma(m.vma_at(Pid(0), 0).unwrap().0));
    ok(&mut m, "fork p0");
    assert_eq!(
        cells(&m, &[(0, 0, 4), (1, 0, 4)]),
        ["Z:0 Z:0 - -", "- - - -"]
    );
    ok(&mut m, "r p1 0; w p1 1");
    assert_eq!(cells(&m, &[(1, 0, 4)]), ["Z:0 a:1 - -"]);
    ok(&mut m, "w p0 0; r p0 2; fork p0");
    assert_eq!(
        cells(&m, &[(0, 0, 4), (2, 0, 4)]),
        ["a:2 Z:0 Z:0 -", "a:2 Z:0 Z:0 -"]
    );
    teardown(&mut m);
}

// §3.2 COW reuse

#[test]
fn e3_cow_cases_a_b_c() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 6 rw anon; w p0 0 10; w p0 1 11; w p0 2 12; w p0 3 13; w p0 4 14; w p0 5 15; fork p0",
    );
    assert_eq!(
        cells(&m, &[(0, 0, 6), (1, 0, 6)]),
        ["a:2 b:2 c:2 d:2 e:2 f:2", "a:2 b:2 c:2 d:2 e:2 f:2"]
    );
    // A: child first gets a copy, then the parent reuses in place.
    let a = frame_at(&m, 0, 0);
    ok(&mut m, "w p1 0 20");
    assert_ne!(frame_at(&m, 1, 0), a);
    assert_eq!(m.m.frame(a).mapcount, 1);
    ok(&mut m, "w p0 0 30");
    assert_eq!(frame_at(&m, 0, 0), a);
    // C: parent first copies, then the child reuses.
    let b = frame_at(&m, 0, 1);
    ok(&mut m, "w p0 1 31");
    assert_ne!(frame_at(&m, 0, 1), b);
    assert_eq!(frame_at(&m, 1, 1), b);
    ok(&mut m, "w p1 1 21");
    assert_eq!(frame_at(&m, 1, 1), b);
    // read after fork changes nothing
    let c = frame_at(&m, 0, 2);
    assert_eq!(value(&mut m, 1, 2), 12);
    assert_eq!(m.m.frame(c).mapcount, 2);
    // B: child exits, the parent's write reuses.
    ok(&mut m, "exit p1");
    assert_eq!(cells(&m, &[(0, 0, 6)]), ["a:1 b:1 c:1 d:1 e:1 f:1"]);
    ok(&mut m, "w p0 2 32");
    assert_eq!(frame_at(&m, 0, 2), c);
    assert_eq!(value(&mut m, 0, 0), 30);
    assert_eq!(value(&mut m, 0, 1), 31);
    let s = m.stats();
    assert_eq!(s.cow_copies, 2);
    assert!(s.cow_reuses >= 3);
    teardown(&mut m);
}

#[test]
fn e9_three_sharers_and_grandchild() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 3 rw anon; w p0 0; w p0 1; w p0 2; fork p0; fork p0",
    );
    let a = frame_at(&m, 0, 0);
    assert_eq!(m.m.frame(a).mapcount, 3);
    ok(&mut m, "w p1 0");
    assert_eq!(m.m.frame(a).mapcount, 2);
    ok(&mut m, "w p0 0");
    assert_ne!(frame_at(&m, 0, 0), a);
    assert_eq!(m.m.frame(a).mapcount, 1);
    ok(&mut m, "w p2 0");
    assert_eq!(frame_at(&m, 2, 0), a, "P2, the last mapper, reuses");
    // grandchild
    let d = frame_at(&m, 1, 0);
    let b = frame_at(&m, 1, 1);
    ok(&mut m, "fork p1");
    assert_eq!(m.m.frame(d).mapcount, 2);
    assert_eq!(m.m.frame(b).mapcount, 4);
    ok(&mut m, "exit p1");
    assert_eq!(m.m.frame(d).mapcount, 1);
    ok(&mut m, "w p3 0; w p3 1");
    assert_eq!(frame_at(&m, 3, 0), d);
    assert_ne!(frame_at(&m, 3, 1), b);
    assert_eq!(m.m.frame(b).mapcount, 2);
    teardown(&mut m);
}

#[test]
fn e8_dontneed_after_fork() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 4 rw anon; w p0 0; w p0 1; w p0 2; fork p0; madvise p0 0 2 dontneed",
    );
    assert_eq!(
        cells(&m, &[(0, 0, 4), (1, 0, 4)]),
        ["- - a:2 -", "b:1 c:1 a:2 -"]
    );
    let b1 = frame_at(&m, 1, 1);
    ok(&mut m, "r p0 0; w p0 1; w p1 1; w p1 2");
    assert_eq!(frame_at(&m, 1, 1), b1, "sole mapper after DONTNEED reuses");
    assert_eq!(
        cells(&m, &[(0, 0, 4), (1, 0, 4)]),
        ["Z:0 a:1 b:1 -", "c:1 d:1 e:1 -"]
    );
    // the anon_vma survives DONTNEED
    ok(&mut m, "madvise p1 0 4 dontneed; r p1 0; r p1 1");
    assert!(m.rmap().has_anon_vma(m.vma_at(Pid(1), 0).unwrap().0));
    assert_eq!(cells(&m, &[(1, 0, 4)]), ["Z:0 Z:0 - -"]);
    teardown(&mut m);
}

#[test]
fn e5c_mremap_in_child() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 2 rw anon; w p0 0 1; w p0 1 2; fork p0; mremap p1 0 2 2 to 10",
    );
    assert_eq!(layout(&m, 1), "10-12");
    let (a, b) = (frame_at(&m, 0, 0), frame_at(&m, 0, 1));
    assert_eq!((frame_at(&m, 1, 10), frame_at(&m, 1, 11)), (a, b));
    assert_eq!(m.m.frame(a).mapcount, 2);
    ok(&mut m, "w p0 0; w p1 11");
    assert_ne!(frame_at(&m, 0, 0), a);
    assert_ne!(frame_at(&m, 1, 11), b);
    ok(&mut m, "w p1 10");
    assert_eq!(frame_at(&m, 1, 10), a, "COW follows the page");
    ok(&mut m, "mremap p1 10 2 2 to 30 dontunmap; w p0 1");
    assert_eq!(frame_at(&m, 0, 1), b);
    assert_eq!(layout(&m, 1), "10-12 30-32");
    teardown(&mut m);
}

// ---------------------------------------------------------------------------
// §4.1 new mmaps

fn layouts(script: &str, procs: &[u32]) -> Vec<String> {
    let mut m = mmu();
    ok(&mut m, script);
    let l = procs.iter().map(|&p| layout(&m, p)).collect();
    teardown(&mut m);
    l
}

#[test]
fn n_cases() {
    let cases: &[(&str, &str, &[u32], &[&str])] = &[
        ("N1", "mmap p0 0 4 rw; mmap p0 4 4 rw", &[0], &["0-8"]),
        (
            "N2",
            "mmap p0 0 4 rw; w p0 0; mmap p0 4 4 rw",
            &[0],
            &["0-8"],
        ),
        (
            "N3",
            "mmap p0 4 4 rw; w p0 4; mmap p0 0 4 rw",
            &[0],
            &["0-8"],
        ),
        (
            "N4",
            "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; w p0 8; mmap p0 4 4 rw",
            &[0],
            &["0-8 8-12"],
        ),
        (
            "N5",
            "mmap p0 0 4 rw; mmap p0 8 4 rw; mmap p0 4 4 rw",
            &[0],
            &["0-12"],
        ),
        (
            "N6",
            "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; mmap p0 4 4 rw",
            &[0],
            &["0-12"],
        ),
        (
            "N6b",
            "mmap p0 0 4 rw; mmap p0 8 4 rw; w p0 8; mmap p0 4 4 rw",
            &[0],
            &["0-12"],
        ),
        (
            "N6c",
            "mmap p0 0 4 rw; r p0 0; mmap p0 8 4 rw; r p0 9; mmap p0 4 4 rw",
            &[0],
            &["0-12"],
        ),
        (
            "N7",
            "mmap p0 0 4 rw; mmap p0 4 4 r",
            &[0],
            &["0-4 4-8(r--p)"],
        ),
        (
            "N8",
            "mmap p0 0 4 rw shared; mmap p0 4 4 rw shared",
            &[0],
            &["0-4(rw-s) 4-8(rw-s)"],
        ),
        (
            "N9",
            "mmap p0 0 4 rw anon; mmap p0 4 4 rw shared",
            &[0],
            &["0-4 4-8(rw-s)"],
        ),
        (
            "N10",
            "mmap p0 0 4 rw; w p0 0; fork p0; mmap p1 4 4 rw; mmap p0 4 4 rw",
            &[1, 0],
            &["0-4 4-8", "0-8"],
        ),
        (
            "N11",
            "mmap p0 0 4 rw; fork p0; mmap p1 4 4 rw",
            &[1],
            &["0-8"],
        ),
        (
            "N12",
            "mmap p0 0 4 rw; w p0 0; fork p0; w p1 0; w p1 1; mmap p1 4 4 rw",
            &[1],
            &["0-4 4-8"],
        ),
        (
            "N13",
            "mmap p0 0 4 rw; w p0 0; fork p0; exit p1; mmap p0 4 4 rw",
            &[0],
            &["0-8"],
        ),
        (
            "N14",
            "mmap p0 0 4 rw; fork p0; w p1 0; mmap p1 4 4 rw",
            &[1],
            &["0-8"],
        ),
        (
            "N15",
            "mmap p0 0 4 rw; w p0 0; fork p0; mmap p1 8 4 rw; w p1 8; mmap p1 4 4 rw",
            &[1],
            &["0-4 4-12"],
        ),
    ];
    for (id, script, procs, want) in cases {
        assert_eq!(layouts(script, procs), *want, "{id}: {script}");
    }
}

// §4.2 mprotect split and restore

#[test]
fn s_cases() {
    let split = "mprotect p0 2 2 r";
    let restore = "mprotect p0 2 2 rw";
    let mut m = mmu();
    ok(&mut m, &format!("mmap p0 0 8 rw; {split}"));
    assert_eq!(layout(&m, 0), "0-2 2-4(r--p) 4-8", "S1 split");
    ok(&mut m, restore);
    assert_eq!(layout(&m, 0), "0-8", "S1 restored");
    teardown(&mut m);

    let cases: &[(&str, String, &[u32], &[&str])] = &[
        (
            "S2",
            format!("mmap p0 0 8 rw; w p0 0; w p0 3; w p0 7; {split}; {restore}"),
            &[0],
            &["0-8"],
        ),
        (
            "S3",
            format!("mmap p0 0 8 rw; {split}; w p0 0; {restore}"),
            &[0],
            &["0-8"],
        ),
        (
            "S3b",
            format!("mmap p0 0 8 rw; {split}; w p0 5; {restore}"),
            &[0],
            &["0-8"],
        ),
        (
            "S4",
            format!("mmap p0 0 8 rw; {split}; w p0 0; w p0 5; {restore}"),
            &[0],
            &["0-4 4-8"],
        ),
        (
            "S5",
            "mmap p0 0 8 rw; mprotect p0 2 2 rwx; w p0 2; mprotect p0 2 2 rw".into(),
            &[0],
            &["0-8"],
        ),
        (
            "S5b",
            "mmap p0 0 8 rw; w p0 0; mprotect p0 2 2 rwx; w p0 2; mprotect p0 2 2 rw".into(),
            &[0],
            &["0-8"],
        ),
        (
            "S6",
            "mmap p0 0 8 rw; w p0 0; w p0 7; fork p0; mprotect p1 2 2 r; mprotect p1 2 2 rw".into(),
            &[1],
            &["0-8"],
        ),
        (
            "S6b",
            "mmap p0 0 8 rw; fork p0; mprotect p1 2 2 r; w p1 0; mprotect p1 2 2 rw".into(),
            &[1],
            &["0-8"],
        ),
        (
            "S7",
            "mmap p0 0 4 rw; w p0 0; mmap p0 4 4 r; fork p0; mprotect p0 4 4 rw; \
             mprotect p1 4 4 rw"
                .into(),
            &[1, 0],
            &["0-4 4-8", "0-8"],
        ),
        (
            "S7b",
            "mmap p0 0 4 rw; w p0 0; mmap p0 4 4 r; fork p0; exit p0; mprotect p1 4 4 rw".into(),
            &[1],
            &["0-4 4-8"],
        ),
        (
            "S8",
            "mmap p0 0 4 rw; w p0 0; mmap p0 4 4 rwx; fork p0; w p1 4; mprotect p1 4 4 rw".into(),
            &[1],
            &["0-4 4-8"],
        ),
        (
            "S9",
            "mmap p0 0 4 rw; w p0 0; mmap p0 4 4 rwx; w p0 4; mprotect p0 4 4 rw".into(),
            &[0],
            &["0-8"],
        ),
        (
            "S10",
            "mmap p0 0 4 rw; w p0 0; mmap p0 4 4 r; mprotect p0 4 4 rw".into(),
            &[0],
            &["0-8"],
        ),
        (
            "S11",
            "mmap p0 0 4 r; mmap p0 4 4 rw; w p0 4; mprotect p0 0 4 rw".into(),
            &[0],
            &["0-8"],
        ),
        (
            "S12",
            "mmap p0 0 4 rw; w p0 0; mprotect p0 2 2 r; fork p0; mprotect p0 2 2 rw; \
             mprotect p1 2 2 rw"
                .into(),
            &[1, 0],
            &["0-2 2-4", "0-4"],
        ),
    ];
    for (id, script, procs, want) in cases {
        assert_eq!(layouts(script, procs), *want, "{id}: {script}");
    }
}

// §4.3 mremap and merging

#[test]
fn r_cases() {
    let cases: &[(&str, &str, &[u32], &[&str])] = &[
        (
            "R1",
            "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; w p0 8; mremap p0 8 4 4 to 4",
            &[0],
            &["0-4 4-8"],
        ),
        (
            "R2",
            "mmap p0 0 4 rw; mmap p0 8 4 rw; mremap p0 8 4 4 to 4",
            &[0],
            &["0-8"],
        ),
        (
            "R3",
            "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; mremap p0 8 4 4 to 4",
            &[0],
            &["0-8"],
        ),
        (
            "R4",
            "mmap p0 0 4 rw; mmap p0 8 4 rw; w p0 8; mremap p0 8 4 4 to 4",
            &[0],
            &["0-4 4-8"],
        ),
        (
            "R6",
            "mmap p0 0 8 rw; w p0 0; w p0 5; mremap p0 4 4 4 to 20; mremap p0 20 4 4 to 4",
            &[0],
            &["0-8"],
        ),
        (
            "R6b",
            "mmap p0 0 8 rw; w p0 0; w p0 5; mremap p0 4 4 4 to 20; mmap p0 24 4 rw; \
             mremap p0 20 4 4 to 4",
            &[0],
            &["0-8 24-28"],
        ),
        (
            "R6c",
            "mmap p0 0 8 rw; w p0 0; w p0 5; mremap p0 0 4 4 to 20; mremap p0 4 4 4 to 24",
            &[0],
            &["20-28"],
        ),
        (
            "R6d",
            "mmap p0 0 8 rw; w p0 0; w p0 5; mremap p0 0 4 4 to 16; mremap p0 4 4 4 to 20",
            &[0],
            &["16-24"],
        ),
        (
            "R7",
            "mmap p0 0 4 rw; w p0 0; mremap p0 0 4 8",
            &[0],
            &["0-8"],
        ),
        (
            "R8",
            "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; mremap p0 0 4 8",
            &[0],
            &["0-12"],
        ),
        (
            "R8b",
            "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; w p0 8; mremap p0 0 4 8",
            &[0],
            &["0-8 8-12"],
        ),
        (
            "R8c",
            "mmap p0 0 4 rw; mmap p0 8 4 rw; mremap p0 0 4 8",
            &[0],
            &["0-12"],
        ),
        (
            "R9",
            "mmap p0 0 8 rw; w p0 5; mremap p0 0 8 4",
            &[0],
            &["0-4"],
        ),
        (
            "R10",
            "mmap p0 0 8 rw; mremap p0 2 2 2 to 20",
            &[0],
            &["0-2 4-8 20-22"],
        ),
        (
            "R10f",
            "mmap p0 0 8 rw; w p0 2; mremap p0 2 2 2 to 20",
            &[0],
            &["0-2 4-8 20-22"],
        ),
        (
            "R11",
            "mmap p0 0 4 rw; w p0 0; mremap p0 0 4 4 to 20 dontunmap",
            &[0],
            &["0-4 20-24"],
        ),
        (
            "R11b",
            "mmap p0 0 4 rw; mremap p0 0 4 4 to 4 dontunmap",
            &[0],
            &["0-8"],
        ),
        (
            "R12",
            "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; w p0 8; fork p0; mremap p1 8 4 4 to 4",
            &[1],
            &["0-4 4-8"],
        ),
    ];
    for (id, script, procs, want) in cases {
        assert_eq!(layouts(script, procs), *want, "{id}: {script}");
    }
}

#[test]
fn r5_zero_pages_move_and_r6b_intermediate() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 4 rw; mmap p0 8 4 rw; r p0 8; r p0 10; mremap p0 8 4 4 to 4",
    );
    assert_eq!(layout(&m, 0), "0-8");
    assert_eq!(cells(&m, &[(0, 0, 8)]), ["- - - - Z:0 - Z:0 -"]);
    teardown(&mut m);

    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 8 rw; w p0 0; w p0 5; mremap p0 4 4 4 to 20; mmap p0 24 4 rw",
    );
    assert_eq!(layout(&m, 0), "0-4 20-24 24-28");
    teardown(&mut m);
}

#[test]
fn r9_shrink_frees_and_r14_blocked_growth() {
    let mut m = mmu();
    ok(&mut m, "mmap p0 0 8 rw");
    for a in 0..8 {
        ok(&mut m, &format!("w p0 {a}"));
    }
    ok(&mut m, "mremap p0 0 8 3");
    assert_eq!(layout(&m, 0), "0-3");
    assert_eq!(m.anon_frames_live(), 3);
    teardown(&mut m);

    let mut m = mmu();
    ok(&mut m, "mmap p0 0 4 rw; w p0 0; mmap p0 4 4 rw");
    // N2: they merged; use a different prot to keep two VMAs.
    ok(&mut m, "mmap p0 10 4 rw; mmap p0 14 4 r");
    assert_eq!(one(&mut m, "mremap p0 10 4 8"), Outcome::Err(Errno::ENOMEM));
    assert_eq!(layout(&m, 0), "0-8 10-14 14-18(r--p)");
    teardown(&mut m);
}

#[test]
fn r11_dontunmap_leaves_empty_unfaulted_vma() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 4 rw; w p0 0 7; w p0 1 8; mremap p0 0 4 4 to 20 dontunmap",
    );
    assert_eq!(
        cells(&m, &[(0, 0, 4), (0, 20, 24)]),
        ["- - - -", "a:1 b:1 - -"]
    );
    // The whole VMA moved: the old one lost its anon_vma links.
    assert!(!m.rmap().has_anon_vma(m.vma_at(Pid(0), 0).unwrap().0));
    assert_eq!(value(&mut m, 0, 20), 7);
    assert_eq!(value(&mut m, 0, 0), 0);
    ok(&mut m, "w p0 1 9");
    assert_eq!(value(&mut m, 0, 21), 8);
    teardown(&mut m);
}

// §4.4 anon_vma reuse at first write

#[test]
fn f_a_u_cases() {
    let cases: &[(&str, &str, &[u32], &[&str])] = &[
        (
            "F1",
            "mmap p0 0 4 rw; w p0 0; mmap p0 4 4 rwx; w p0 4; mprotect p0 4 4 rw",
            &[0],
            &["0-8"],
        ),
        (
            "F3",
            "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; w p0 8; mmap p0 4 4 rwx; w p0 4; \
             mprotect p0 4 4 rw",
            &[0],
            &["0-4 4-12"],
        ),
        (
            "F4",
            "mmap p0 0 4 rw; w p0 0; mmap p0 4 4 r; mprotect p0 4 4 rwx; w p0 4; \
             mprotect p0 4 4 rw",
            &[0],
            &["0-8"],
        ),
        (
            "F5",
            "mmap p0 0 4 rw; w p0 0; fork p0; mmap p1 4 4 rwx; w p1 4; mprotect p1 4 4 rw",
            &[1],
            &["0-4 4-8"],
        ),
        (
            "F6",
            "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; w p0 8; mmap p0 4 4 rwx; w p0 4; \
             munmap p0 8 4; mprotect p0 4 4 rw",
            &[0],
            &["0-4 4-8"],
        ),
        (
            "A1",
            "mmap p0 0 4 rw; w p0 0; madvise p0 0 4 dontneed; mremap p0 0 4 4 to 20; \
             mmap p0 24 4 rw",
            &[0],
            &["20-24 24-28"],
        ),
        (
            "A2",
            "mmap p0 0 4 rw; mremap p0 0 4 4 to 20; mmap p0 24 4 rw",
            &[0],
            &["20-28"],
        ),
        (
            "A3",
            "mmap p0 0 4 rw; w p0 0; fork p0; madvise p1 0 4 dontneed; mmap p1 4 4 rw",
            &[1],
            &["0-4 4-8"],
        ),
        (
            "U1",
            "mmap p0 0 12 rw; w p0 0; w p0 11; munmap p0 4 4; mmap p0 4 4 rw",
            &[0],
            &["0-12"],
        ),
        (
            "U2",
            "mmap p0 0 12 rw; w p0 0; w p0 11; munmap p0 4 4; fork p0; mmap p1 4 4 rw",
            &[1],
            &["0-4 4-8 8-12"],
        ),
        (
            "U3",
            "mmap p0 0 12 rw; munmap p0 4 4; w p0 0; w p0 11; mmap p0 4 4 rw",
            &[0],
            &["0-8 8-12"],
        ),
    ];
    for (id, script, procs, want) in cases {
        assert_eq!(layouts(script, procs), *want, "{id}: {script}");
    }
}

// §13 MAP_FIXED replace

#[test]
fn mmap_replace() {
    assert_eq!(
        layouts(
            "mmap p0 0 8 rw; w p0 0; w p0 7; mmap p0 2 2 rw anon replace",
            &[0]
        ),
        ["0-8"]
    );
    assert_eq!(
        layouts(
            "mmap p0 0 8 rw; w p0 0; w p0 7; fork p0; mmap p1 4 2 rw anon replace",
            &[1]
        ),
        ["0-4 4-6 6-8"]
    );
    assert_eq!(
        layouts("mmap p0 0 8 rw; w p0 0; mmap p0 5 2 r anon replace", &[0]),
        ["0-5 5-7(r--p) 7-8"]
    );
    let mut m = mmu();
    ok(&mut m, "mmap p0 0 8 rw; w p0 2; w p0 3; w p0 4");
    assert_eq!(one(&mut m, "mmap p0 2 2 rw"), Outcome::Err(Errno::EEXIST));
    ok(&mut m, "mmap p0 2 2 rw anon replace");
    assert_eq!(cells(&m, &[(0, 0, 8)]), ["- - - - a:1 - - -"]);
    teardown(&mut m);
}

// §5 mremap layouts, multi-VMA moves and errors

#[test]
fn e5b_fixed_and_dontunmap() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 4 rw; w p0 0 1; w p0 1 2; r p0 2; mmap p0 20 4 rw; w p0 20",
    );
    let (a, b) = (frame_at(&m, 0, 0), frame_at(&m, 0, 1));
    ok(&mut m, "mremap p0 0 4 4 to 20");
    assert_eq!(layout(&m, 0), "20-24");
    assert_eq!(cells(&m, &[(0, 20, 24)]), ["a:1 b:1 Z:0 -"]);
    assert_eq!((frame_at(&m, 0, 20), frame_at(&m, 0, 21)), (a, b));
    ok(&mut m, "mremap p0 20 4 4 to 40 dontunmap");
    assert_eq!(layout(&m, 0), "20-24 40-44");
    assert_eq!(
        cells(&m, &[(0, 20, 24), (0, 40, 44)]),
        ["- - - -", "a:1 b:1 Z:0 -"]
    );
    ok(&mut m, "r p0 20; r p0 22");
    assert_eq!(cells(&m, &[(0, 20, 24)]), ["Z:0 - Z:0 -"]);
    ok(&mut m, "w p0 21");
    assert_eq!(cells(&m, &[(0, 20, 24)]), ["Z:0 a:1 Z:0 -"]);
    teardown(&mut m);
}

#[test]
fn multi_vma_move_and_errors() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 20 2 rw; w p0 20 5; mmap p0 23 2 r; mmap p0 25 1 rw shared; w p0 25 6",
    );
    assert_eq!(
        one(&mut m, "mremap p0 19 6 6 to 40"),
        Outcome::Err(Errno::EFAULT)
    );
    assert_eq!(
        one(&mut m, "mremap p0 20 4 6 to 40"),
        Outcome::Err(Errno::EFAULT)
    );
    assert_eq!(
        one(&mut m, "mremap p0 20 6 6 to 22"),
        Outcome::Err(Errno::EINVAL)
    );
    assert_eq!(
        one(&mut m, "mremap p0 20 6 8 to 40 dontunmap"),
        Outcome::Err(Errno::EINVAL)
    );
    ok(&mut m, "mremap p0 20 6 6 to 40");
    assert_eq!(layout(&m, 0), "40-42 43-45(r--p) 45-46(rw-s)");
    assert_eq!(value(&mut m, 0, 40), 5);
    assert_eq!(value(&mut m, 0, 45), 6);
    // and with DONTUNMAP
    ok(&mut m, "mremap p0 40 6 6 to 60 dontunmap");
    assert_eq!(
        layout(&m, 0),
        "40-42 43-45(r--p) 45-46(rw-s) 60-62 63-65(r--p) 65-66(rw-s)"
    );
    assert_eq!(value(&mut m, 0, 60), 5);
    assert_eq!(value(&mut m, 0, 65), 6);
    assert_eq!(value(&mut m, 0, 45), 6, "shmem pages stay in the object");
    teardown(&mut m);
}

#[test]
fn partial_effects() {
    let mut m = mmu();
    ok(&mut m, "mmap p0 0 4 rw");
    assert_eq!(
        one(&mut m, "mprotect p0 2 4 r"),
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(layout(&m, 0), "0-2 2-4(r--p)");
    ok(&mut m, "mmap p0 10 4 rw; w p0 10; w p0 13");
    assert_eq!(
        one(&mut m, "madvise p0 12 4 dontneed"),
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(cells(&m, &[(0, 10, 14)]), ["a:1 - - -"]);
    // mprotect starting in a hole changes nothing
    assert_eq!(
        one(&mut m, "mprotect p0 8 4 r"),
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(layout(&m, 0), "0-2 2-4(r--p) 10-14");
    // mprotect across a hole changes the part before it
    ok(&mut m, "mmap p0 20 4 rw");
    assert_eq!(
        one(&mut m, "mprotect p0 10 14 r"),
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(layout(&m, 0), "0-2 2-4(r--p) 10-14(r--p) 20-24");
    // madvise over a hole still visits everything after it
    ok(&mut m, "w p0 20; w p0 23");
    assert_eq!(
        one(&mut m, "madvise p0 14 10 dontneed"),
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(cells(&m, &[(0, 20, 24)]), ["- - - -"]);
    // madvise with no VMA at or after start
    assert_eq!(
        one(&mut m, "madvise p0 100 4 dontneed"),
        Outcome::Err(Errno::ENOMEM)
    );
    // window and process checks
    assert_eq!(one(&mut m, "mmap p0 250 8 rw"), Outcome::Err(Errno::EINVAL));
    assert_eq!(one(&mut m, "munmap p0 0 0"), Outcome::Err(Errno::EINVAL));
    assert_eq!(one(&mut m, "read p3 0"), Outcome::Err(Errno::ESRCH));
    assert_eq!(one(&mut m, "read p0 256"), Outcome::Err(Errno::EINVAL));
    assert_eq!(one(&mut m, "read p0 30"), Outcome::Segv);
    assert_eq!(one(&mut m, "write p0 2"), Outcome::Segv);
    ok(&mut m, "mmap p0 30 1 none");
    assert_eq!(one(&mut m, "read p0 30"), Outcome::Segv);
    // munmap never merges; a hole is fine
    ok(&mut m, "munmap p0 0 40");
    assert_eq!(layout(&m, 0), "");
    teardown(&mut m);
}

#[test]
fn fork_flags_dontfork_wipeonfork() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 4 rw; w p0 0 1; mmap p0 4 4 r; mmap p0 8 4 rw; w p0 8 2; \
         madvise p0 0 4 dontfork; madvise p0 8 2 wipeonfork",
    );
    assert_eq!(layout(&m, 0), "0-4 4-8(r--p) 8-10 10-12");
    assert_eq!(
        one(&mut m, "madvise p0 0 12 wipeonfork"),
        Outcome::Ok,
        "anon VMAs accept WIPEONFORK"
    );
    ok(
        &mut m,
        "madvise p0 0 12 keeponfork; madvise p0 8 2 wipeonfork; fork p0",
    );
    assert_eq!(layout(&m, 1), "4-8(r--p) 8-10 10-12");
    assert_eq!(cells(&m, &[(1, 8, 12)]), ["- - - -"]);
    assert!(!m.rmap().has_anon_vma(m.vma_at(Pid(1), 8).unwrap().0));
    assert_eq!(value(&mut m, 1, 8), 0, "wiped");
    ok(&mut m, "mmap p0 20 4 rw file:1:0");
    assert_eq!(
        one(&mut m, "madvise p0 8 16 wipeonfork"),
        Outcome::Err(Errno::EINVAL)
    );
    // The walk set WIPEONFORK on [10,12) (merging it into [8,10)) before
    // it reached the file VMA.
    assert_eq!(layout(&m, 0), "0-4 4-8(r--p) 8-12 20-24");
    ok(&mut m, "madvise p0 0 4 dofork");
    assert_eq!(layout(&m, 0), "0-4 4-8(r--p) 8-12 20-24");
    teardown(&mut m);
}

// §6 private file mappings and fault-around

#[test]
fn e6t_private_file() {
    let mut m = mmu();
    // p1 plays the unrelated process P5 (forked while p0 was empty).
    ok(
        &mut m,
        "fork p0; mmap p0 0 6 rw file:0:0; r p0 0; mmap p1 0 6 r file:0:0; r p1 0",
    );
    assert_eq!(
        cells(&m, &[(0, 0, 6), (1, 0, 6)]),
        ["a:2 b:2 c:2 d:2 e:2 f:2", "a:2 b:2 c:2 d:2 e:2 f:2"]
    );
    assert_eq!(value(&mut m, 0, 3), 3);
    ok(&mut m, "w p0 0; w p0 3");
    assert_eq!(
        cells(&m, &[(0, 0, 6), (1, 0, 6)]),
        ["a:1 b:2 c:2 d:1 e:2 f:2", "g:1 b:2 c:2 h:1 e:2 f:2"]
    );
    ok(&mut m, "fork p0; fork p1");
    assert_eq!(
        cells(&m, &[(0, 0, 6), (2, 0, 6), (3, 0, 6)]),
        [
            "a:2 b:3 c:3 d:2 e:3 f:3",
            "a:2 b:3 c:3 d:2 e:3 f:3",
            "- - - - - -"
        ]
    );
    ok(&mut m, "w p2 2; r p3 1");
    assert_eq!(
        cells(&m, &[(2, 0, 6), (3, 0, 6)]),
        ["a:2 b:4 c:1 d:2 e:4 f:4", "g:2 b:4 h:3 i:2 e:4 f:4"]
    );
    let pc0 = frame_at(&m, 1, 0);
    ok(&mut m, "madvise p0 0 1 dontneed; r p0 0");
    assert_eq!(frame_at(&m, 0, 0), pc0);
    // shared file mapping of the same file: same frames, writes never COW
    ok(&mut m, "fork p0; mmap p4 100 6 rw sfile:0:0; exit p4");
    ok(&mut m, "mmap p0 100 6 rw sfile:0:0; r p0 101; w p0 104 99");
    assert_eq!(frame_at(&m, 0, 101), frame_at(&m, 1, 1));
    assert_eq!(frame_at(&m, 0, 104), frame_at(&m, 1, 4));
    assert_eq!(
        value(&mut m, 1, 4),
        99,
        "a shared write is seen by everyone"
    );
    teardown(&mut m);
}

#[test]
fn e6c_fault_around_window() {
    let mut m = mmu();
    ok(&mut m, "mmap p0 0 40 r file:1:0; r p0 20");
    let present: Vec<u64> = (0..40).filter(|&a| m.pte(Pid(0), a) != Pte::None).collect();
    assert_eq!(present, (16..32).collect::<Vec<_>>());
    ok(&mut m, "mmap p0 103 37 r file:1:3; r p0 120");
    let present: Vec<u64> = (103..140)
        .filter(|&a| m.pte(Pid(0), a) != Pte::None)
        .collect();
    assert_eq!(present, (112..128).collect::<Vec<_>>());
    ok(&mut m, "mmap p0 200 30 rw file:1:0; w p0 203");
    let present: Vec<u64> = (200..230)
        .filter(|&a| m.pte(Pid(0), a) != Pte::None)
        .collect();
    assert_eq!(present, [203]);
    assert!(m.rmap().has_anon_vma(m.vma_at(Pid(0), 200).unwrap().0));
    // past EOF: fault-around maps what is below EOF, the access is SIGBUS
    ok(&mut m, "mmap p0 240 8 r file:2:60");
    assert_eq!(value(&mut m, 0, 241), 2 << 32 | 61);
    assert_eq!(one(&mut m, "r p0 244"), Outcome::Sigbus);
    let present: Vec<u64> = (240..248)
        .filter(|&a| m.pte(Pid(0), a) != Pte::None)
        .collect();
    assert_eq!(present, [240, 241, 242, 243]);
    // a private write past EOF prepares the anon_vma first, then SIGBUS
    ok(&mut m, "mmap p0 250 4 rw file:3:62");
    assert_eq!(one(&mut m, "w p0 252"), Outcome::Sigbus);
    assert!(m.rmap().has_anon_vma(m.vma_at(Pid(0), 250).unwrap().0));
    teardown(&mut m);
}

// §7 shared anonymous memory

#[test]
fn e7_shared_anon() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 20 rw shared; w p0 0 1; w p0 1 2; w p0 2 3; w p0 17 4",
    );
    assert_eq!(cells(&m, &[(0, 0, 3)]), ["a:1 b:1 c:1"]);
    ok(&mut m, "fork p0");
    assert_eq!(cells(&m, &[(1, 0, 20)])[0], vec!["-"; 20].join(" "));
    ok(&mut m, "r p1 1");
    assert_eq!(cells(&m, &[(1, 0, 6)]), ["a:2 b:2 c:2 - - -"]);
    assert_eq!(m.pte(Pid(1), 17), Pte::None);
    let a = frame_at(&m, 0, 0);
    ok(&mut m, "w p1 0 10; w p0 2 30; w p1 5 50");
    assert_eq!(frame_at(&m, 1, 0), a, "never COW");
    assert_eq!(value(&mut m, 0, 0), 10);
    ok(&mut m, "r p0 5");
    assert_eq!(frame_at(&m, 0, 5), frame_at(&m, 1, 5));
    assert_eq!(value(&mut m, 0, 5), 50);
    ok(&mut m, "madvise p0 0 1 dontneed");
    assert_eq!(m.pte(Pid(0), 0), Pte::None);
    assert_eq!(m.m.frame(a).mapcount, 1);
    ok(&mut m, "r p0 0");
    assert_eq!(frame_at(&m, 0, 0), a);
    assert_eq!(value(&mut m, 0, 0), 10);
    ok(&mut m, "exit p1");
    assert_eq!(m.m.frame(a).mapcount, 1);
    assert_eq!(m.anon_frames_live(), 0, "shmem pages are not anonymous");
    teardown(&mut m);
}

#[test]
fn shared_anon_grown_past_object_is_sigbus() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 4 rw shared; w p0 2 7; w p0 3 8; mremap p0 2 2 6 to 40",
    );
    let st = m.state();
    let v = &st.procs[&Pid(0)].vmas;
    assert_eq!((v[1].start, v[1].end, v[1].offset), (40, 46, 2));
    assert_eq!(v[1].kind, MapKind::Shared);
    assert_eq!(value(&mut m, 0, 41), 8);
    assert_eq!(one(&mut m, "r p0 44"), Outcome::Sigbus);
    // the object dies with its last mapping
    ok(&mut m, "munmap p0 0 2");
    assert_eq!(m.m.shmem.len(), 1);
    ok(&mut m, "munmap p0 40 6");
    assert_eq!(m.m.shmem.len(), 0);
    teardown(&mut m);
}

// ---------------------------------------------------------------------------
// Fault injection

#[test]
fn failed_fork_leaves_no_trace() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 r; mmap p0 12 4 rw; w p0 12",
    );
    let before = m.rmap().counters();
    assert_eq!(
        run(&mut m, "fail-alloc 2; fork p0")[1],
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(m.live_pids(), [Pid(0)]);
    assert_eq!(m.rmap().counters(), before);
    assert_eq!(cells(&m, &[(0, 0, 1), (0, 12, 13)]), ["a:1", "b:1"]);
    ok(&mut m, "fork p0");
    assert_eq!(m.live_pids(), [Pid(0), Pid(1)], "no pid consumed");
    teardown(&mut m);
}

#[test]
fn failed_fault_and_split() {
    let mut m = mmu();
    ok(&mut m, "mmap p0 0 8 rw");
    assert_eq!(
        run(&mut m, "fail-alloc 1; w p0 0")[1],
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(m.pte(Pid(0), 0), Pte::None);
    ok(&mut m, "w p0 0");
    assert_eq!(
        run(&mut m, "fail-alloc 1; mprotect p0 2 2 r")[1],
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(layout(&m, 0), "0-8");
    // the second split fails: the first stays, as in Linux
    assert_eq!(
        run(&mut m, "fail-alloc 2; mprotect p0 2 2 r")[1],
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(layout(&m, 0), "0-2 2-8");
    // a failed munmap split changes nothing
    assert_eq!(
        run(&mut m, "fail-alloc 1; munmap p0 4 1")[1],
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(layout(&m, 0), "0-2 2-8");
    teardown(&mut m);
}

#[test]
fn failed_copy_vma_is_enomem_with_nothing_moved() {
    let mut m = mmu();
    ok(&mut m, "mmap p0 0 4 rw; w p0 0 3");
    assert_eq!(
        run(&mut m, "fail-alloc 1; mremap p0 0 4 4 to 20")[1],
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(layout(&m, 0), "0-4");
    assert_eq!(value(&mut m, 0, 0), 3);
    teardown(&mut m);
}

// ---------------------------------------------------------------------------
// Swap and migration

#[test]
fn swapout_swapin_reclaim() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 4 rw; w p0 0 41; w p0 1 42; fork p0; swapout p0 0",
    );
    assert_eq!(cells(&m, &[(0, 0, 2), (1, 0, 2)]), ["S a:2", "S a:2"]);
    assert_eq!(m.anon_frames_live(), 2, "the page stays in the swap cache");
    // swap cache hit: the same page comes back
    let cached = m.m.swap.iter().next().unwrap().1.cache.unwrap();
    assert_eq!(value(&mut m, 1, 0), 41);
    assert_eq!(frame_at(&m, 1, 0), cached);
    ok(&mut m, "reclaim");
    assert_eq!(m.anon_frames_live(), 2, "mapped: not reclaimed");
    assert_eq!(value(&mut m, 0, 0), 41);
    assert_eq!(frame_at(&m, 0, 0), cached);
    // both mapped again, slot gone once the last entry went
    ok(&mut m, "swapout p1 0; reclaim");
    assert_eq!(m.anon_frames_live(), 1);
    assert_eq!(value(&mut m, 0, 0), 41);
    assert_ne!(frame_at(&m, 0, 0), cached);
    // the write: p1 still holds the entry, so p0 copies
    ok(&mut m, "w p0 0 43");
    assert_eq!(value(&mut m, 1, 0), 41);
    ok(&mut m, "w p1 0 44");
    assert_eq!(value(&mut m, 0, 0), 43);
    teardown(&mut m);

    // exclusive page: swap-in on write maps it writable, no copy
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 2 rw; w p0 0 5; swapout p0 0; reclaim; w p0 0 6",
    );
    assert_eq!(m.stats().cow_copies, 0);
    assert_eq!(value(&mut m, 0, 0), 6);
    ok(&mut m, "swapout p0 0; exit p0");
    assert_eq!(m.anon_frames_live(), 0);
    assert_eq!(m.m.swap.len(), 0);
}

#[test]
fn migrate_moves_every_mapping() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 4 rw; w p0 1 9; fork p0; fork p1; migrate p2 1",
    );
    let f = frame_at(&m, 0, 1);
    assert_eq!((frame_at(&m, 1, 1), frame_at(&m, 2, 1)), (f, f));
    assert_eq!(m.m.frame(f).mapcount, 3);
    assert_eq!(m.stats().migrations, 1);
    assert_eq!(value(&mut m, 2, 1), 9);
    ok(&mut m, "swapout p0 1; migrate p0 1");
    teardown(&mut m);
}

#[test]
fn blind_walk_is_reported() {
    let mut m = Mmu::new(Toy {
        blind: true,
        ..Toy::default()
    });
    m.apply(&parse("mmap p0 0 4 rw")).unwrap();
    m.apply(&parse("w p0 0")).unwrap();
    match m.apply(&parse("swapout p0 0")) {
        Err(Violation::Findability { pid, page, .. }) => assert_eq!((pid, page), (Pid(0), 0)),
        other => panic!("{other:?}"),
    }
    let mut m = Mmu::new(Toy {
        blind: true,
        ..Toy::default()
    });
    m.apply(&parse("mmap p0 0 4 rw")).unwrap();
    m.apply(&parse("w p0 0")).unwrap();
    assert!(matches!(
        m.apply(&parse("migrate p0 0")),
        Err(Violation::Findability { .. })
    ));
}

#[test]
fn state_reports_perms_kinds_offsets() {
    let mut m = mmu();
    ok(
        &mut m,
        "mmap p0 0 2 rx anon; mmap p0 4 2 r file:1:7; mmap p0 8 2 rw sfile:2:3; \
         mmap p0 12 2 rwx shared; mmap p0 16 2 none",
    );
    let st = m.state();
    let got: Vec<(String, MapKind, u64)> = st.procs[&Pid(0)]
        .vmas
        .iter()
        .map(|v| (v.perms.clone(), v.kind, v.offset))
        .collect();
    assert_eq!(
        got,
        [
            ("r-xp".to_string(), MapKind::Anon, 0),
            ("r--p".to_string(), MapKind::File(1), 7),
            ("rw-s".to_string(), MapKind::SFile(2), 3),
            ("rwxs".to_string(), MapKind::Shared, 0),
            ("---p".to_string(), MapKind::Anon, 0),
        ]
    );
    ok(&mut m, "r p0 0");
    assert_eq!(m.state().procs[&Pid(0)].pages[&0], (FrameRef::Zero, 0));
    teardown(&mut m);
}

#[test]
fn clone_is_independent() {
    let mut m = mmu();
    ok(&mut m, "mmap p0 0 4 rw; w p0 0 1");
    let snap = m.clone();
    ok(&mut m, "w p0 0 2; fork p0");
    let mut s = snap;
    assert_eq!(value(&mut s, 0, 0), 1);
    assert_eq!(s.live_pids(), [Pid(0)]);
}

#[test]
fn zero_lengths_follow_linux() {
    let mut m = mmu();
    ok(&mut m, "mmap p0 0 4 rw shared; w p0 1 5; mmap p0 8 4 rw");
    assert_eq!(one(&mut m, "mmap p0 20 0 rw"), Outcome::Err(Errno::EINVAL));
    assert_eq!(one(&mut m, "munmap p0 0 0"), Outcome::Err(Errno::EINVAL));
    assert_eq!(one(&mut m, "mprotect p0 100 0 r"), Outcome::Ok);
    assert_eq!(one(&mut m, "madvise p0 100 0 dontneed"), Outcome::Ok);
    assert_eq!(
        one(&mut m, "madvise p0 256 0 dontneed"),
        Outcome::Err(Errno::EINVAL)
    );
    assert_eq!(one(&mut m, "mremap p0 0 4 0"), Outcome::Err(Errno::EINVAL));
    // old_len 0: a private mapping cannot be duplicated ...
    assert_eq!(
        one(&mut m, "mremap p0 8 0 2 to 40"),
        Outcome::Err(Errno::EINVAL)
    );
    assert_eq!(one(&mut m, "mremap p0 8 0 2"), Outcome::Err(Errno::EINVAL));
    // ... a shared one can: a second mapping of the same object.
    ok(&mut m, "mremap p0 1 0 2 to 40");
    assert_eq!(layout(&m, 0), "0-4(rw-s) 8-12 40-42(rw-s)");
    assert_eq!(value(&mut m, 0, 40), 5);
    assert_eq!(frame_at(&m, 0, 40), frame_at(&m, 0, 1));
    teardown(&mut m);
}

/// A faulted VMA moved next to an unfaulted neighbour with linear pgoff
/// merges into it, and the neighbour must get the anon_vma: `vma_expand`'s
/// `dup_anon_vma(target, copied_from)` (61f67c230a5e, in 6.18.y). With
/// DONTUNMAP the source then drops its links; the pages must stay findable.
#[test]
fn copy_vma_merge_into_unfaulted_neighbour_dups_the_anon_vma() {
    for dontunmap in ["", " dontunmap"] {
        let mut m = mmu();
        ok(
            &mut m,
            &format!(
                "mmap p0 0 8 rw; w p0 4 1; w p0 5 2; mremap p0 4 4 4 to 20; munmap p0 0 4; \
                 mmap p0 0 4 rw; mremap p0 20 4 4 to 4{dontunmap}"
            ),
        );
        assert_eq!(
            layout(&m, 0),
            if dontunmap.is_empty() {
                "0-8"
            } else {
                "0-8 20-24"
            }
        );
        assert!(m.rmap().has_anon_vma(m.vma_at(Pid(0), 0).unwrap().0));
        assert_eq!((value(&mut m, 0, 4), value(&mut m, 0, 5)), (1, 2));
        ok(&mut m, "swapout p0 4; migrate p0 5; r p0 4");
        teardown(&mut m);
    }
}
