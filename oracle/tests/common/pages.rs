//! The page model the shape counters (`merge_shapes`, `vmalock_shapes`,
//! `race_shapes`) read a stream's preconditions from: per process, which
//! pages are mapped with which protection and a mark on each (present, or
//! its mapping faulted), read from the ops alone, roughly (a mapping is a
//! run of pages with one protection; the ops' outcomes are not known).
//! Each counter picks the rules its stages need ([`Rules`]).

use std::collections::BTreeMap;

use rmaplab_ops::{Advice, Op, Prot};

/// A process's pages: protection, and the mark ([`Rules`] says what sets
/// and clears it).
pub type Pages = BTreeMap<u64, (Prot, bool)>;

/// What one process did, as far as the stages need it.
#[derive(Clone, Default)]
pub struct Proc {
    /// Mapped pages.
    pub pages: Pages,
    /// Moves: (source, destination, length, op index).
    pub moves: Vec<(u64, u64, u64, usize)>,
    /// Private mappings made (anonymous or file): (address, length, op
    /// index).
    pub mmaps: Vec<(u64, u64, usize)>,
    /// Writes: (address, op index), mapped or not.
    pub writes: Vec<(u64, usize)>,
}

/// How `mremap … to` moves pages (the source must be mapped whole; the
/// destination is mapped after the source is unmapped, or, with
/// `dontunmap`, keeps its pages with their marks cleared).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Moves {
    /// Moves change nothing.
    Ignored,
    /// Each moved page keeps its protection and mark; pages a growing move
    /// adds take the first source page's protection, unmarked.
    PerPage,
    /// Every destination page takes the first source page's protection;
    /// marks as [`Moves::PerPage`].
    FirstProt,
}

/// The rules of the model.
#[derive(Clone, Copy)]
pub struct Rules {
    /// A write to a writable page, or an mprotect, marks the whole mapping
    /// around it when a page of it is marked (a merge shares the
    /// anon_vma): the mark is "the mapping is faulted".
    pub mark_run: bool,
    /// `madvise … dontneed` clears the marks of its range: the mark is
    /// "the page is present".
    pub dontneed_clears: bool,
    /// How moves change the pages.
    pub moves: Moves,
}

/// Every process's [`Proc`] after the ops applied so far.
pub struct Model {
    pub procs: BTreeMap<u32, Proc>,
    next: u32,
    rules: Rules,
}

impl Model {
    /// Process 0 alone, nothing mapped.
    pub fn new(rules: Rules) -> Model {
        Model {
            procs: BTreeMap::from([(0, Proc::default())]),
            next: 1,
            rules,
        }
    }

    /// Applies op `i` of the stream.
    pub fn apply(&mut self, op: &Op, i: usize) {
        let Some(pid) = op.pid() else { return };
        match *op {
            Op::Fork { .. } => {
                let child = self.procs.get(&pid.0).cloned().unwrap_or_default();
                self.procs.insert(self.next, child);
                self.next += 1;
                return;
            }
            Op::Exit { .. } => {
                self.procs.remove(&pid.0);
                return;
            }
            _ => {}
        }
        let rules = self.rules;
        let p = self.procs.entry(pid.0).or_default();
        let q = &mut p.pages;
        match *op {
            Op::Mmap {
                addr,
                len,
                prot,
                replace,
                kind,
                ..
            } if replace || (addr..addr + len).all(|a| !q.contains_key(&a)) => {
                for a in addr..addr + len {
                    q.insert(a, (prot, false));
                }
                if matches!(
                    kind,
                    rmaplab_ops::Kind::Anon | rmaplab_ops::Kind::File { .. }
                ) {
                    p.mmaps.push((addr, len, i));
                }
            }
            Op::Munmap { addr, len, .. } => {
                for a in addr..addr.saturating_add(len) {
                    q.remove(&a);
                }
            }
            Op::Mprotect {
                addr, len, prot, ..
            } if (addr..addr + len).all(|a| q.contains_key(&a)) => {
                for a in addr..addr + len {
                    q.get_mut(&a).expect("mapped").0 = prot;
                }
                if rules.mark_run {
                    mark_run(q, addr);
                }
            }
            Op::Madvise {
                addr,
                len,
                advice: Advice::DontNeed,
                ..
            } if rules.dontneed_clears => {
                for a in addr..addr.saturating_add(len) {
                    if let Some(page) = q.get_mut(&a) {
                        page.1 = false;
                    }
                }
            }
            Op::Write { addr, .. } => {
                p.writes.push((addr, i));
                if let Some(page) = q.get_mut(&addr)
                    && page.0.writable()
                {
                    page.1 = true;
                    if rules.mark_run {
                        mark_run(q, addr);
                    }
                }
            }
            Op::Mremap {
                old,
                old_len,
                new_len,
                to: Some(t),
                ..
            } if rules.moves != Moves::Ignored
                && (old..old + old_len).all(|a| q.contains_key(&a)) =>
            {
                let moved: Vec<_> = (0..old_len.min(new_len)).map(|i| q[&(old + i)]).collect();
                let prot = q[&old].0;
                for a in old..old + old_len {
                    if t.dontunmap {
                        q.get_mut(&a).expect("mapped").1 = false;
                    } else {
                        q.remove(&a);
                    }
                }
                for i in 0..new_len {
                    let (mut page_prot, mark) =
                        moved.get(i as usize).copied().unwrap_or((prot, false));
                    if rules.moves == Moves::FirstProt {
                        page_prot = prot;
                    }
                    q.insert(t.new + i, (page_prot, mark));
                }
                p.moves.push((old, t.new, old_len.min(new_len), i));
            }
            _ => {}
        }
    }
}

/// The mapping (a run of pages with one protection) around `a`.
pub fn mapping(q: &Pages, a: u64) -> Option<(u64, u64, Prot)> {
    let (prot, _) = *q.get(&a)?;
    let same = |i: u64| q.get(&i).is_some_and(|&(p, _)| p == prot);
    let mut lo = a;
    while lo > 0 && same(lo - 1) {
        lo -= 1;
    }
    let mut hi = a;
    while same(hi) {
        hi += 1;
    }
    Some((lo, hi, prot))
}

/// Whether a page of `lo..hi` is marked.
pub fn faulted(q: &Pages, lo: u64, hi: u64) -> bool {
    (lo..hi).any(|a| q.get(&a).is_some_and(|x| x.1))
}

/// Marks the whole mapping around `a` when a page of it is marked.
fn mark_run(q: &mut Pages, a: u64) {
    if let Some((lo, hi, _)) = mapping(q, a)
        && faulted(q, lo, hi)
    {
        for b in lo..hi {
            q.get_mut(&b).expect("mapped").1 = true;
        }
    }
}
