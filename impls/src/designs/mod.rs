//! The reverse-map designs behind [`crate::rmap::Rmap`].

pub mod chain_2010;
pub mod prealloc_2026;
pub mod registry;
pub mod single_list_2004;

/// Cross-design randomized check: a miniature MMU (one anonymous region per
/// process; fault with COW reuse, fork, exit, split, merge of adjacent VMAs)
/// drives each design through the trait and checks after every step that
/// every PTE's page is found by the design's walk at the PTE's address
/// (INV-FIND), that its mapping is alive (INV-LIVE) and the design's
/// self-check.
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::chain_2010::{Chain2010, Era};
    use super::single_list_2004::SingleList2004;
    use crate::arena::Arena;
    use crate::rmap::{AnonMapping, CloneOp, MergeSrc, Rmap, VmaId, VmaInfo, VmaView};
    use rmaplab_ops::Pid;

    #[derive(Default)]
    struct View {
        vmas: Arena<VmaInfo>,
    }

    impl VmaView for View {
        fn vma_info(&self, vma: VmaId) -> Option<VmaInfo> {
            self.vmas.get(vma).copied()
        }
        fn live_vmas(&self) -> Vec<VmaId> {
            let mut v: Vec<(VmaInfo, VmaId)> = self.vmas.iter().map(|(h, i)| (*i, h)).collect();
            v.sort_by_key(|(i, _)| (i.mm, i.start));
            v.into_iter().map(|(_, h)| h).collect()
        }
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    struct Mini<R: Rmap> {
        view: View,
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
        /// The largest `anon_vmas / peak` seen, as (anon_vmas, peak).
        worst: (u64, u64),
    }

    const PAGES: u64 = 12;

    impl<R: Rmap> Mini<R> {
        fn new(d: R) -> Self {
            let mut view = View::default();
            let v = view.vmas.insert(VmaInfo {
                mm: Pid(0),
                start: 0,
                end: PAGES,
                pgoff: 0,
            });
            Mini {
                view,
                d,
                procs: BTreeMap::from([(0, vec![v])]),
                next_pid: 1,
                ptes: BTreeMap::new(),
                pages: Vec::new(),
                peak: 1,
                worst: (0, 1),
            }
        }

        fn info(&self, v: VmaId) -> VmaInfo {
            self.view.vma_info(v).unwrap()
        }

        fn vma_at(&self, pid: u32, addr: u64) -> Option<(usize, VmaId)> {
            self.procs[&pid].iter().enumerate().find_map(|(i, &v)| {
                let f = self.info(v);
                (f.start <= addr && addr < f.end).then_some((i, v))
            })
        }

        /// Adjacent with linear pgoff: what `anon_vma_compatible` needs here.
        fn linear(&self, a: VmaId, b: VmaId) -> bool {
            let (x, y) = (self.info(a), self.info(b));
            x.end == y.start && x.pgoff + x.pages() == y.pgoff
        }

        fn random_pid(&self, rng: &mut Rng) -> u32 {
            let pids: Vec<u32> = self.procs.keys().copied().collect();
            pids[rng.below(pids.len() as u64) as usize]
        }

        fn step(&mut self, rng: &mut Rng) -> Result<(), String> {
            let pid = self.random_pid(rng);
            match rng.below(100) {
                0..=39 => self.write(pid, rng.below(PAGES)),
                40..=54 if self.procs.len() < 7 => self.fork(pid),
                55..=64 if self.procs.len() > 1 => self.exit(pid),
                65..=79 => self.split(pid, 1 + rng.below(PAGES - 1)),
                80..=99 => self.merge(pid, rng.below(PAGES)),
                _ => Ok(()),
            }
        }

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
            self.d
                .anon_vma_prepare(&self.view, v, next, prev)
                .map_err(|e| e.to_string())?;
            let f = self.info(v);
            let index = f.pgoff + (addr - f.start);
            match self.ptes.get(&(pid, addr)).copied() {
                Some(pg) if self.ptes.values().filter(|&&x| x == pg).count() == 1 => {
                    let m = self
                        .d
                        .folio_move_anon_rmap(v, self.pages[pg].0)
                        .map_err(|e| e.to_string())?;
                    self.pages[pg].0 = m;
                }
                _ => {
                    let m = self
                        .d
                        .folio_add_new_anon_rmap(v, true)
                        .map_err(|e| e.to_string())?;
                    self.pages.push((m, index));
                    self.ptes.insert((pid, addr), self.pages.len() - 1);
                }
            }
            Ok(())
        }

        fn fork(&mut self, pid: u32) -> Result<(), String> {
            let child = self.next_pid;
            self.next_pid += 1;
            let mut cvmas = Vec::new();
            for pv in self.procs[&pid].clone() {
                let f = self.info(pv);
                let cv = self.view.vmas.insert(VmaInfo {
                    mm: Pid(child),
                    ..f
                });
                self.d
                    .anon_vma_fork(&self.view, cv, pv)
                    .map_err(|e| e.to_string())?;
                cvmas.push(cv);
                if self.d.has_anon_vma(pv) {
                    for a in f.start..f.end {
                        if let Some(&pg) = self.ptes.get(&(pid, a)) {
                            self.ptes.insert((child, a), pg);
                        }
                    }
                }
            }
            self.procs.insert(child, cvmas);
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
            let f = self.info(v);
            if f.start == addr {
                return Ok(());
            }
            let new = self.view.vmas.insert(VmaInfo { end: addr, ..f });
            self.d
                .anon_vma_clone(&self.view, new, v, CloneOp::Split)
                .map_err(|e| e.to_string())?;
            let has = self.d.has_anon_vma(v);
            if has {
                self.d.vma_pre_update(v);
            }
            let m = self.view.vmas.get_mut(v).unwrap();
            m.pgoff += addr - m.start;
            m.start = addr;
            if has {
                self.d.vma_post_update(&self.view, v);
            }
            self.procs.get_mut(&pid).unwrap().insert(i, new);
            Ok(())
        }

        /// An mprotect-style merge of the VMA at `addr` (the middle) into
        /// its predecessor: `dup_anon_vma(prev, middle)` when allowed, then
        /// prev expands and the middle is removed (`anon_vma_merge`).
        fn merge(&mut self, pid: u32, addr: u64) -> Result<(), String> {
            let Some((i, mid)) = self.vma_at(pid, addr) else {
                return Ok(());
            };
            if i == 0 {
                return Ok(());
            }
            let prev = self.procs[&pid][i - 1];
            if !self.linear(prev, mid)
                || !self.d.is_mergeable_anon_vma(prev, MergeSrc::Existing(mid))
            {
                return Ok(());
            }
            self.d
                .dup_anon_vma(&self.view, prev, mid)
                .map_err(|e| e.to_string())?;
            let end = self.info(mid).end;
            let anon = self.d.has_anon_vma(prev);
            if anon {
                self.d.vma_pre_update(prev);
            }
            self.view.vmas.get_mut(prev).unwrap().end = end;
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

        /// INV-FIND and INV-LIVE for every PTE, the self-check, and the
        /// claimed bound against the peak VMA population (as the oracle).
        fn check(&mut self) -> Result<(), String> {
            self.peak = self.peak.max(self.view.vmas.len() as u64);
            let avs = self.d.counters().anon_vmas;
            if avs * self.worst.1 > self.worst.0 * self.peak {
                self.worst = (avs, self.peak);
            }
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
                let f = self.info(v);
                let found =
                    out.contains(&v) && index >= f.pgoff && f.start + (index - f.pgoff) == addr;
                if !found {
                    return Err(format!("p{pid} page {addr}: not found by the walk"));
                }
            }
            self.d.self_check(&self.view).map_err(|e| e.to_string())
        }
    }

    /// Runs `seeds` random streams; returns how many failed (first error of
    /// each kept for the message).
    fn run<R: Rmap>(make: impl Fn() -> R, seeds: u64, steps: usize) -> (u64, Vec<String>) {
        let mut failed = 0;
        let mut msgs = Vec::new();
        for seed in 1..=seeds {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut m = Mini::new(make());
            for _ in 0..steps {
                if let Err(e) = m.step(&mut rng).and_then(|()| m.check()) {
                    failed += 1;
                    if msgs.len() < 3 {
                        msgs.push(format!("seed {seed}: {e}"));
                    }
                    break;
                }
            }
            // Nothing leaks once every process is gone.
            for pid in m.procs.keys().copied().collect::<Vec<_>>() {
                let _ = m.exit(pid);
            }
            let c = m.d.counters();
            if (c.anon_vmas, c.avcs) != (0, 0) && msgs.len() < 3 {
                msgs.push(format!("seed {seed}: leak {c:?}"));
            }
        }
        (failed, msgs)
    }

    #[test]
    fn correct_designs_keep_every_page_findable() {
        let (f, m) = run(SingleList2004::new, 200, 80);
        assert_eq!(f, 0, "single-list-2004: {m:?}");
        assert!(m.is_empty(), "{m:?}");
        for era in [Era::E2010, Era::E2022] {
            let (f, m) = run(|| Chain2010::new(era), 200, 80);
            assert_eq!(f, 0, "chain-2010 era {era}: {m:?}");
            assert!(m.is_empty(), "{m:?}");
        }
    }

    /// Era 2015 is historically broken (B16) and the injected bugs are
    /// meant to break things: they must report, never panic.
    #[test]
    fn broken_configurations_report_and_never_panic() {
        let (f, m) = run(|| Chain2010::new(Era::E2015), 200, 80);
        eprintln!("era 2015: {f}/200 failed {m:?}");
        let (f, m) = run(|| SingleList2004::with_bugs(&["b01"]), 100, 80);
        eprintln!("b01: {f}/100 failed {m:?}");
        for bug in ["b03", "b04", "b16"] {
            let (f, m) = run(|| Chain2010::with_bugs(Era::E2022, &[bug]), 100, 80);
            eprintln!("{bug}: {f}/100 failed {m:?}");
        }
    }
}
