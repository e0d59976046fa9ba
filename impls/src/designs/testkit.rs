//! One harness for every design's unit tests, generic over [`Rmap`]:
//!
//! * [`FakeView`], a stand-in for the MMU's VMAs (a generational arena);
//! * [`Sim`], a design and its view with the MMU-side steps of each op
//!   (mmap, fault, fork, exit, split, update), each calling the hooks where
//!   Linux's `mm/` code calls them;
//! * [`random_stream`], a miniature MMU (one anonymous region per process:
//!   write faults with COW reuse, fork, exit, split, mprotect-style merges,
//!   optionally `fail-alloc`) that checks after every step that every PTE's
//!   page is found by the walk at the PTE's address (INV-FIND), that its
//!   mapping is alive (INV-LIVE), the claimed bound and the design's
//!   self-check, and that nothing leaks once every process has exited.

use std::collections::BTreeMap;

use super::avc::{AnonVma, AvcRmap, Variant};
use crate::arena::{Arena, Handle};
use crate::rmap::{AnonMapping, CloneOp, MergeSrc, Rmap, RmapError, VmaId, VmaInfo, VmaView};
use rmaplab_ops::Pid;

/// The MMU's VMAs, reduced to their geometry.
#[derive(Clone, Default)]
pub struct FakeView {
    pub vmas: Arena<VmaInfo>,
}

impl FakeView {
    /// A VMA of process `mm` over `[start, end)` with `pgoff` = `start`.
    pub fn add(&mut self, mm: u32, start: u64, end: u64) -> VmaId {
        self.add_at(mm, start, end, start)
    }

    pub fn add_at(&mut self, mm: u32, start: u64, end: u64, pgoff: u64) -> VmaId {
        self.vmas.insert(VmaInfo {
            mm: Pid(mm),
            start,
            end,
            pgoff,
        })
    }

    /// The geometry of a live VMA.
    pub fn info(&self, v: VmaId) -> VmaInfo {
        self.vmas.get(v).copied().expect("live VMA")
    }

    /// Changes a VMA's range without telling the design.
    pub fn set(&mut self, v: VmaId, start: u64, end: u64, pgoff: u64) {
        let i = self.vmas.get_mut(v).expect("live VMA");
        (i.start, i.end, i.pgoff) = (start, end, pgoff);
    }
}

impl VmaView for FakeView {
    fn vma_info(&self, vma: VmaId) -> Option<VmaInfo> {
        self.vmas.get(vma).copied()
    }
    fn live_vmas(&self) -> Vec<VmaId> {
        let mut v: Vec<(VmaInfo, VmaId)> = self.vmas.iter().map(|(h, i)| (*i, h)).collect();
        v.sort_by_key(|(i, _)| (i.mm, i.start));
        v.into_iter().map(|(_, h)| h).collect()
    }
}

/// A design plus its fake MMU. Every step panics on an unexpected error.
#[derive(Clone)]
pub struct Sim<R> {
    pub view: FakeView,
    pub d: R,
}

impl<R: Rmap> Sim<R> {
    pub fn new(d: R) -> Self {
        Sim {
            view: FakeView::default(),
            d,
        }
    }

    /// mmap: a new anonymous VMA (pgoff = start).
    pub fn mmap(&mut self, mm: u32, start: u64, end: u64) -> VmaId {
        self.view.add(mm, start, end)
    }

    pub fn info(&self, v: VmaId) -> VmaInfo {
        self.view.info(v)
    }

    /// First write fault in `v` with no compatible neighbours.
    pub fn fault(&mut self, v: VmaId) {
        self.d.anon_vma_prepare(&self.view, v, None, None).unwrap();
    }

    /// `dup_mmap` of one VMA into process `mm`: a copy, then `anon_vma_fork`.
    pub fn fork(&mut self, mm: u32, parent: VmaId) -> VmaId {
        let i = self.info(parent);
        let child = self.view.vmas.insert(VmaInfo { mm: Pid(mm), ..i });
        self.d.anon_vma_fork(&self.view, child, parent).unwrap();
        child
    }

    /// exit / munmap of a whole VMA: unlink, then free.
    pub fn exit(&mut self, v: VmaId) {
        self.d.unlink_anon_vmas(&self.view, v).unwrap();
        self.view.vmas.remove(v).unwrap();
    }

    /// A range change bracketed as the MMU does (`vma_prepare` /
    /// `vma_complete`): pre/post update for a VMA with an anon_vma.
    pub fn update(&mut self, v: VmaId, start: u64, end: u64, pgoff: u64) {
        let has = self.d.has_anon_vma(v);
        if has {
            self.d.vma_pre_update(v);
        }
        self.view.set(v, start, end, pgoff);
        if has {
            self.d.vma_post_update(&self.view, v);
        }
    }

    /// `__split_vma(vma, at, new_below = 1)`: returns the new lower part.
    pub fn split_below(&mut self, v: VmaId, at: u64) -> VmaId {
        let i = self.info(v);
        let new = self.view.vmas.insert(VmaInfo { end: at, ..i });
        self.d
            .anon_vma_clone(&self.view, new, v, CloneOp::Split)
            .unwrap();
        self.update(v, at, i.end, i.pgoff + (at - i.start));
        new
    }

    /// The self-check, with the design's account on failure.
    pub fn check(&self) {
        if let Err(e) = self.d.self_check(&self.view) {
            panic!("{e}\n{}", self.d.describe(&self.view, None, &[]));
        }
    }

    /// The VMAs a walk of `(m, index)` visits.
    pub fn walk(&self, m: AnonMapping, index: u64) -> Vec<VmaId> {
        let mut out = Vec::new();
        self.d.rmap_walk(&self.view, m, index, &mut out).unwrap();
        out
    }
}

/// What the anon_vma_chain tests read of the core.
impl<V: Variant> Sim<AvcRmap<V>> {
    /// `vma->anon_vma`.
    pub fn av(&self, v: VmaId) -> Handle {
        self.d.core.anon_vma_of(v).unwrap()
    }

    /// The anon_vmas of `v`'s `same_vma` list, head first.
    pub fn chain(&self, v: VmaId) -> Vec<Handle> {
        let chain = self.d.core.vmas.get(v).map(|s| s.chain.clone());
        chain
            .into_iter()
            .flatten()
            .map(|c| self.d.core.avcs.get(c).unwrap().anon_vma)
            .collect()
    }

    pub fn node(&self, h: Handle) -> AnonVma {
        self.d.core.anon_vmas.get(h).unwrap().clone()
    }

    /// `(num_children, num_active_vmas, refcount)`.
    pub fn counts(&self, h: Handle) -> (u64, u64, u64) {
        let a = self.node(h);
        (a.num_children, a.num_active_vmas, a.refcount)
    }

    /// The design's objects (see `Core::structure`).
    pub fn structure(&self) -> String {
        self.d.core.structure()
    }
}

/// The name of a `Check` error (panics on anything else).
pub fn check_name<T: std::fmt::Debug>(r: Result<T, RmapError>) -> &'static str {
    match r {
        Err(RmapError::Check { name, .. }) => name,
        other => panic!("expected a named check failure, got {other:?}"),
    }
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Pages of the region each process starts with.
const PAGES: u64 = 12;

/// The miniature MMU of [`random_stream`].
struct Mini<R> {
    view: FakeView,
    d: R,
    /// Live processes and their VMAs (address order).
    procs: BTreeMap<u32, Vec<VmaId>>,
    next_pid: u32,
    /// `(pid, page)` → page id.
    ptes: BTreeMap<(u32, u64), usize>,
    /// page id → (mapping, index).
    pages: Vec<(AnonMapping, u64)>,
    /// The most VMAs alive at once so far.
    peak: u64,
    /// Injected allocation failures met.
    failures: u64,
}

impl<R: Rmap> Mini<R> {
    fn new(d: R) -> Self {
        let mut view = FakeView::default();
        let v = view.add(0, 0, PAGES);
        Mini {
            view,
            d,
            procs: BTreeMap::from([(0, vec![v])]),
            next_pid: 1,
            ptes: BTreeMap::new(),
            pages: Vec::new(),
            peak: 1,
            failures: 0,
        }
    }

    fn vma_at(&self, pid: u32, addr: u64) -> Option<(usize, VmaId)> {
        self.procs[&pid].iter().enumerate().find_map(|(i, &v)| {
            let f = self.view.info(v);
            (f.start <= addr && addr < f.end).then_some((i, v))
        })
    }

    /// Adjacent with linear pgoff: what `anon_vma_compatible` needs here.
    fn linear(&self, a: VmaId, b: VmaId) -> bool {
        let (x, y) = (self.view.info(a), self.view.info(b));
        x.end == y.start && x.pgoff + x.pages() == y.pgoff
    }

    /// ENOMEM is an outcome (`false`), anything else a failure.
    fn nomem(&mut self, r: Result<(), RmapError>) -> Result<bool, String> {
        match r {
            Ok(()) => Ok(true),
            Err(RmapError::NoMem { .. }) => {
                self.failures += 1;
                Ok(false)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// One random op; with `fail_alloc`, one in ten arms `fail-alloc 1..=4`
    /// first.
    fn step(&mut self, rng: &mut Rng, fail_alloc: bool) -> Result<(), String> {
        let pids: Vec<u32> = self.procs.keys().copied().collect();
        let pid = pids[rng.below(pids.len() as u64) as usize];
        if fail_alloc && rng.below(10) == 0 {
            let n = 1 + rng.below(4);
            self.d.alloc_schedule().fail_nth(n);
        }
        match rng.below(100) {
            0..=39 => self.write(pid, rng.below(PAGES)),
            40..=54 if self.procs.len() < 7 => self.fork(pid),
            55..=64 if self.procs.len() > 1 => self.exit(pid),
            65..=79 => self.split(pid, 1 + rng.below(PAGES - 1)),
            80..=99 => self.merge(pid, rng.below(PAGES)),
            _ => Ok(()),
        }
    }

    /// A write fault: `anon_vma_prepare` with the compatible neighbours,
    /// then a new page or the COW reuse of an exclusive one.
    fn write(&mut self, pid: u32, addr: u64) -> Result<(), String> {
        let Some((i, v)) = self.vma_at(pid, addr) else {
            return Ok(());
        };
        let vmas = &self.procs[&pid];
        let next = vmas.get(i + 1).copied().filter(|&n| self.linear(v, n));
        let prev = i
            .checked_sub(1)
            .map(|p| vmas[p])
            .filter(|&p| self.linear(p, v));
        let r = self.d.anon_vma_prepare(&self.view, v, next, prev);
        if !self.nomem(r)? {
            return Ok(());
        }
        let f = self.view.info(v);
        let index = f.pgoff + (addr - f.start);
        let shared = |pg| self.ptes.values().filter(|&&x| x == pg).count() > 1;
        match self.ptes.get(&(pid, addr)).copied() {
            Some(pg) if !shared(pg) => {
                let m = self.d.folio_move_anon_rmap(v, self.pages[pg].0);
                self.pages[pg].0 = m.map_err(|e| e.to_string())?;
            }
            _ => {
                let m = self.d.folio_add_new_anon_rmap(v, true);
                self.pages.push((m.map_err(|e| e.to_string())?, index));
                self.ptes.insert((pid, addr), self.pages.len() - 1);
            }
        }
        Ok(())
    }

    /// `dup_mmap`, with its error path: the failing child is freed
    /// unlinked, the ones set up before are unlinked and freed.
    fn fork(&mut self, pid: u32) -> Result<(), String> {
        let child = self.next_pid;
        let mut done = Vec::new();
        for pv in self.procs[&pid].clone() {
            let f = self.view.info(pv);
            let cv = self.view.vmas.insert(VmaInfo {
                mm: Pid(child),
                ..f
            });
            let r = self.d.anon_vma_fork(&self.view, cv, pv);
            if !self.nomem(r)? {
                self.view.vmas.remove(cv);
                for v in done {
                    self.d
                        .unlink_anon_vmas(&self.view, v)
                        .map_err(|e| e.to_string())?;
                    self.view.vmas.remove(v);
                }
                return Ok(());
            }
            done.push(cv);
        }
        for &pv in &self.procs[&pid] {
            if self.d.has_anon_vma(pv) {
                let f = self.view.info(pv);
                for a in f.start..f.end {
                    if let Some(&pg) = self.ptes.get(&(pid, a)) {
                        self.ptes.insert((child, a), pg);
                    }
                }
            }
        }
        self.next_pid += 1;
        self.procs.insert(child, done);
        Ok(())
    }

    fn exit(&mut self, pid: u32) -> Result<(), String> {
        self.ptes.retain(|&(p, _), _| p != pid);
        for v in self.procs.remove(&pid).unwrap() {
            self.d
                .unlink_anon_vmas(&self.view, v)
                .map_err(|e| e.to_string())?;
            self.view.vmas.remove(v);
        }
        Ok(())
    }

    /// `__split_vma(new_below)` at `addr`.
    fn split(&mut self, pid: u32, addr: u64) -> Result<(), String> {
        let Some((i, v)) = self.vma_at(pid, addr) else {
            return Ok(());
        };
        let f = self.view.info(v);
        if f.start == addr {
            return Ok(());
        }
        let new = self.view.vmas.insert(VmaInfo { end: addr, ..f });
        let r = self.d.anon_vma_clone(&self.view, new, v, CloneOp::Split);
        if !self.nomem(r)? {
            self.view.vmas.remove(new);
            return Ok(());
        }
        let has = self.d.has_anon_vma(v);
        if has {
            self.d.vma_pre_update(v);
        }
        self.view.set(v, addr, f.end, f.pgoff + (addr - f.start));
        if has {
            self.d.vma_post_update(&self.view, v);
        }
        self.procs.get_mut(&pid).unwrap().insert(i, new);
        Ok(())
    }

    /// An mprotect-style merge of the VMA at `addr` (the middle) into its
    /// predecessor: `dup_anon_vma(prev, middle)` when allowed, then prev
    /// expands and the middle is removed (`unlink_anon_vmas`).
    fn merge(&mut self, pid: u32, addr: u64) -> Result<(), String> {
        let Some((i, mid)) = self.vma_at(pid, addr) else {
            return Ok(());
        };
        if i == 0 {
            return Ok(());
        }
        let prev = self.procs[&pid][i - 1];
        if !self.linear(prev, mid) || !self.d.is_mergeable_anon_vma(prev, MergeSrc::Existing(mid)) {
            return Ok(());
        }
        let r = self.d.dup_anon_vma(&self.view, prev, mid);
        if !self.nomem(r)? {
            return Ok(());
        }
        let (p, m) = (self.view.info(prev), self.view.info(mid));
        let anon = self.d.has_anon_vma(prev);
        if anon {
            self.d.vma_pre_update(prev);
        }
        self.view.set(prev, p.start, m.end, p.pgoff);
        if anon {
            self.d.vma_post_update(&self.view, prev);
        }
        self.d
            .unlink_anon_vmas(&self.view, mid)
            .map_err(|e| e.to_string())?;
        self.view.vmas.remove(mid);
        self.procs.get_mut(&pid).unwrap().remove(i);
        Ok(())
    }

    /// The claimed bound against the peak VMA population (as the oracle),
    /// INV-LIVE and INV-FIND for every PTE, then the self-check.
    fn check(&mut self) -> Result<(), String> {
        self.peak = self.peak.max(self.view.vmas.len() as u64);
        let avs = self.d.counters().anon_vmas;
        if let Some(k) = self.d.claimed_bound()
            && avs > k * self.peak
        {
            return Err(format!("bound: {avs} anon_vmas > {k} x peak {}", self.peak));
        }
        let mut out = Vec::new();
        for (&(pid, addr), &pg) in &self.ptes {
            let (m, index) = self.pages[pg];
            if !self.d.mapping_alive(m) {
                return Err(format!("p{pid} page {addr}: mapping {m} freed"));
            }
            let (_, v) = self.vma_at(pid, addr).expect("PTEs live in VMAs");
            out.clear();
            self.d
                .rmap_walk(&self.view, m, index, &mut out)
                .map_err(|e| e.to_string())?;
            let f = self.view.info(v);
            let found = out.contains(&v) && index >= f.pgoff && f.start + (index - f.pgoff) == addr;
            if !found {
                return Err(format!("p{pid} page {addr}: not found by the walk"));
            }
        }
        self.d.self_check(&self.view).map_err(|e| e.to_string())
    }
}

/// One random stream of `steps` ops from `seed`, checked after every step,
/// then every process exits and nothing may be left (anon_vmas, AVCs,
/// bytes). Returns the injected allocation failures met (with
/// `fail_alloc`), or the first violation. After a violation the processes
/// still exit (a broken design must report, never panic).
pub fn random_stream<R: Rmap>(
    d: R,
    seed: u64,
    steps: usize,
    fail_alloc: bool,
) -> Result<u64, String> {
    let mut m = Mini::new(d);
    let mut rng = Rng::new(seed);
    let mut run = Ok(());
    for step in 0..steps {
        run = m
            .step(&mut rng, fail_alloc)
            .and_then(|()| m.check())
            .map_err(|e| format!("seed {seed} step {step}: {e}"));
        if run.is_err() {
            break;
        }
    }
    let mut teardown = Ok(());
    for pid in m.procs.keys().copied().collect::<Vec<_>>() {
        teardown = teardown.and(m.exit(pid));
    }
    run?;
    teardown.map_err(|e| format!("seed {seed} exit: {e}"))?;
    let c = m.d.counters();
    if (c.anon_vmas, c.avcs, c.bytes) != (0, 0, 0) {
        return Err(format!("seed {seed}: leak {c:?}"));
    }
    Ok(m.failures)
}
