//! A state-guided op-level mutation: a concurrent block in which a
//! migration walks a page that a merging `mremap` moves.
//!
//! The mremap-ordering races (B12, B12p, B08: docs/bugs.md) all end the
//! same way: `copy_vma` merges the moved range into a VMA next to its
//! destination, `move_ptes` then carries a migration entry from the source
//! to that VMA, and `remove_migration_ptes` must visit the two in an order
//! that cannot miss it. Which moves merge depends on what the decoder does
//! not know: the VMAs' `vm_pgoff`, their flags and their anon_vmas. The
//! decoder's own aim (a block's move back, `ops/src/decode.rs`) guesses
//! from the pages it remembers, and misses whenever a range moved twice or
//! a neighbour was remade (docs/fuzzing.md, "B08's shape").
//!
//! This mutation asks the machine instead. It runs the stream on one
//! design (the engine's first), and at a point between two ops lists the
//! moves that would merge: a whole private anonymous VMA `V` with a page
//! present, moved to where its `vm_pgoff` lines up with another anonymous
//! VMA `T` of the same process (right before `T`, right after it, or into
//! a hole punched in it: `MREMAP_FIXED` unmaps what is there). Each
//! candidate is tried on a copy of the machine, and one whose `copy_vma`
//! merged ([`path::COPY_VMA_MERGED`]) becomes a block there: that `mremap`
//! and a `migrate` of a page of `V`, under random schedule bytes. What
//! came before the block (which VMA `T` is, how it got its anon_vma, in
//! which order the two were linked) is whatever the fuzzer built; the
//! mutation names no bug and knows no list order.

use std::collections::BTreeMap;

use rand::Rng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rmaplab_impls::designs::registry::DesignSpec;
use rmaplab_impls::mmu::{Mmu, Vma, path};
use rmaplab_impls::rmap::{CloneRmap, Rmap, VmaId};
use rmaplab_ops::decode::{DecodeConfig, decode, encode};
use rmaplab_ops::{Block, MremapTo, Op, Pid, Sched, Stream};

use super::features::{self, MERGE_PAIR};
use super::mutate::{Item, items, stream};
use crate::run::panic::catch;

/// Most candidate moves tried on copies of the machine per mutation.
const TRIALS: usize = 8;
/// Most schedule bytes the block gets (each decision takes one).
const SCHED_BYTES: usize = 12;

/// A move that may merge: `V` (the whole VMA at `old`, `len` pages) of
/// `pid` to `new`, and a present anonymous page of `V` to migrate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Candidate {
    pid: Pid,
    old: u64,
    len: u64,
    new: u64,
    page: u64,
}

impl Candidate {
    fn mremap(&self) -> Op {
        Op::Mremap {
            pid: self.pid,
            old: self.old,
            old_len: self.len,
            new_len: self.len,
            to: Some(MremapTo {
                new: self.new,
                dontunmap: false,
            }),
        }
    }
}

/// The stream `bytes` decode to, with a block racing a migration against a
/// merging move inserted where the machine (`spec`'s design) has one,
/// encoded. `None` when the stream has no such point, no candidate merged,
/// or the result has no encoding: the caller mutates otherwise.
pub fn insert_merge_race(
    rng: &mut SmallRng,
    bytes: &[u8],
    cfg: &DecodeConfig,
    spec: &DesignSpec,
) -> Option<Vec<u8>> {
    if !cfg.kinds.contains(rmaplab_ops::decode::OpKinds::PAR) {
        return None;
    }
    let design = spec.build_cloneable()?;
    let s = decode(bytes, cfg);
    let mut its = items(&s);
    let (at, block) = catch(|| pick(rng, &its, cfg, design)).ok()??;
    its.insert(at, block);
    let out = stream(&its, cfg);
    encode(&out, cfg).ok()
}

/// Runs `its` on a machine with `design`, collects the points with
/// candidate moves, and at one of them (uniformly) tries candidates on
/// copies until one merges: its index in `its` and its block.
fn pick(
    rng: &mut SmallRng,
    its: &[Item],
    cfg: &DecodeConfig,
    design: Box<dyn CloneRmap>,
) -> Option<(usize, Item)> {
    // First pass: the points with candidates (no copies kept).
    let mut mmu = Mmu::new(design.clone_box());
    let mut points: Vec<usize> = Vec::new();
    for i in 0..=its.len() {
        if !candidates(&mmu, cfg).is_empty() {
            points.push(i);
        }
        let Some(it) = its.get(i) else { break };
        // A block's ops run one after the other here: the state after it
        // is one of those its schedules reach.
        if it.ops.iter().any(|op| mmu.apply(op).is_err()) {
            break;
        }
    }
    let &last = points.last()?;
    // The end half of the time: the state an engine chose the input for
    // (its end state's features, [`Ready`]).
    let at = if last == its.len() && rng.random_bool(0.5) {
        last
    } else {
        points[rng.random_range(0..points.len())]
    };
    // Second pass: the machine at that point.
    let mut mmu = Mmu::new(design);
    for it in &its[..at] {
        if it.ops.iter().any(|op| mmu.apply(op).is_err()) {
            return None;
        }
    }
    let mut cands = candidates(&mmu, cfg);
    cands.shuffle(rng);
    let c = cands.into_iter().take(TRIALS).find(|c| {
        let mut m = mmu.clone();
        m.apply(&c.mremap()).is_ok() && m.last_op_paths() & path::COPY_VMA_MERGED != 0
    })?;
    // The mover is actor A or the last actor, as the decoder writes both.
    let mover_first = rng.random_bool(0.5);
    let n = rng.random_range(0..=SCHED_BYTES);
    let sched = (0..n).map(|_| rng.random()).collect();
    Some((at, race(&c, mover_first, sched)))
}

/// The block of `c`: its move and a migration of its page, the mover
/// first or last, under the schedule bytes `sched`.
fn race(c: &Candidate, mover_first: bool, sched: Vec<u8>) -> Item {
    let migrate = Op::Migrate {
        pid: c.pid,
        addr: c.page,
    };
    let ops = if mover_first {
        vec![c.mremap(), migrate]
    } else {
        vec![migrate, c.mremap()]
    };
    let block = Block {
        first: 0,
        actors: ops.len(),
        sched: Sched::Bytes(sched),
        line: 0,
        sched_line: 0,
        sched_col: 0,
    };
    Item {
        ops,
        block: Some(block),
    }
}

/// Each pair of private anonymous VMAs `V` (with an anon_vma) and `T` of
/// `pid` such that `V`, moved whole to `new`, where its `vm_pgoff` lines
/// up with `T`'s, touches `T` or enters it and leaves its own range:
/// `f(V's id, V, T's id, T, new)`, in address order of `V`, then of `T`.
/// The geometry both [`insert_merge_race`] and
/// [`features::merge_pair_features`] read.
pub fn aligned_moves<R: Rmap>(
    mmu: &Mmu<R>,
    pid: Pid,
    f: &mut impl FnMut(VmaId, &Vma, VmaId, &Vma, u64),
) {
    let private_anon = |v: &Vma| v.is_anonymous() && !v.is_shared();
    for (vid, v) in mmu.vmas_of(pid) {
        if !private_anon(v) || !mmu.rmap().has_anon_vma(vid) {
            continue;
        }
        let len = v.pages();
        for (tid, t) in mmu.vmas_of(pid) {
            if tid == vid || !private_anon(t) {
                continue;
            }
            // Where V's first page index sits in T's linear layout.
            let Some(new) = (t.start + v.pgoff).checked_sub(t.pgoff) else {
                continue;
            };
            let touches = new + len >= t.start && new <= t.end;
            let over_self = new < v.end && new + len > v.start;
            if touches && !over_self {
                f(vid, v, tid, t, new);
            }
        }
    }
}

/// The [`aligned_moves`] of every live process whose `V` has a page
/// present and whose destination is inside the decoder's sub-window.
fn candidates<R: Rmap>(mmu: &Mmu<R>, cfg: &DecodeConfig) -> Vec<Candidate> {
    let lo = cfg.window_start;
    let hi = lo + cfg.window_len.max(1);
    let mut out = Vec::new();
    for pid in mmu.live_pids() {
        aligned_moves(mmu, pid, &mut |_, v, _, _, new| {
            let len = v.pages();
            if new < lo || new + len > hi {
                return;
            }
            if let Some(page) = (v.start..v.end).find(|&a| mmu.anon_pte_at(pid, a).is_some()) {
                out.push(Candidate {
                    pid,
                    old: v.start,
                    len,
                    new,
                    page,
                });
            }
        });
    }
    out
}

/// Every stream [`insert_merge_race`] can make of `bytes` (each point,
/// each candidate that merges, the mover first, no schedule bytes), for
/// measurements.
pub fn all_merge_races(bytes: &[u8], cfg: &DecodeConfig, spec: &DesignSpec) -> Vec<Stream> {
    let Some(design) = spec.build_cloneable() else {
        return Vec::new();
    };
    let s = decode(bytes, cfg);
    let its = items(&s);
    let mut out = Vec::new();
    let _ = catch(|| {
        let mut mmu = Mmu::new(design);
        for i in 0..=its.len() {
            for c in candidates(&mmu, cfg) {
                let mut m = mmu.clone();
                if m.apply(&c.mremap()).is_ok() && m.last_op_paths() & path::COPY_VMA_MERGED != 0 {
                    let mut v = its.clone();
                    v.insert(i, race(&c, true, Vec::new()));
                    out.push(stream(&v, cfg));
                }
            }
            let Some(it) = its.get(i) else { break };
            if it.ops.iter().any(|op| mmu.apply(op).is_err()) {
                break;
            }
        }
    });
    out
}

/// Inputs whose end state offers a merging move: a [`MERGE_PAIR`] feature
/// with equal flags, one anon_vma and a page present (what
/// [`insert_merge_race`] races), at most [`READY_PER_FEATURE`] inputs per
/// feature. An engine draws the input to race by feature first, so that
/// the rare pairs (a merge target that got its anon_vma after the moved
/// VMA, say) are raced as often as the common ones, as AFL's favoured
/// inputs and libFuzzer's rare features are scheduled.
#[derive(Default)]
pub struct Ready {
    by_feature: BTreeMap<u64, Vec<Vec<u8>>>,
    offers: u64,
}

/// Most inputs [`Ready`] keeps per feature.
pub const READY_PER_FEATURE: usize = 8;

impl Ready {
    /// Whether `f` is a [`MERGE_PAIR`] feature whose move would merge.
    pub fn is_ready(f: u64) -> bool {
        const READY: u64 = 1 << 11 | 1 << 12 | 1 << 14;
        features::kind(f) == MERGE_PAIR && f & READY == READY
    }

    /// Keeps the input's bytes for each ready feature of `state` (a run's
    /// [`RunReport::state`](crate::run::runner::RunReport::state)): while
    /// the feature has room, else in place of one of its inputs one time
    /// in 16, so that the inputs follow what the engine reaches now.
    /// `bytes` is called only when something is kept, at most once (the
    /// libFuzzer target decodes or encodes to get them).
    pub fn offer(&mut self, state: &[u64], bytes: impl FnOnce() -> Option<Vec<u8>>) {
        let mut bytes = Some(bytes);
        let mut got: Option<Vec<u8>> = None;
        for &f in state.iter().filter(|&&f| Ready::is_ready(f)) {
            self.offers += 1;
            let v = self.by_feature.entry(f).or_default();
            let slot = if v.len() < READY_PER_FEATURE {
                None
            } else if self.offers.is_multiple_of(16) {
                Some((self.offers / 16) as usize % READY_PER_FEATURE)
            } else {
                continue;
            };
            if let Some(make) = bytes.take() {
                got = make();
            }
            let Some(b) = &got else { return };
            match slot {
                None if !v.contains(b) => v.push(b.clone()),
                None => {}
                Some(i) => v[i] = b.clone(),
            }
        }
    }

    /// Whether no input is kept.
    pub fn is_empty(&self) -> bool {
        self.by_feature.is_empty()
    }

    /// Distinct ready features seen.
    pub fn features(&self) -> usize {
        self.by_feature.len()
    }

    /// An input: a feature uniformly, then one of its inputs.
    pub fn pick(&self, rng: &mut SmallRng) -> Option<&[u8]> {
        let n = self.by_feature.len();
        let v = self
            .by_feature
            .values()
            .nth(rng.random_range(0..n.max(1)))?;
        v.get(rng.random_range(0..v.len().max(1)))
            .map(Vec::as_slice)
    }

    /// [`insert_merge_race`] on a [`Ready::pick`].
    pub fn mutant(
        &self,
        rng: &mut SmallRng,
        cfg: &DecodeConfig,
        spec: &DesignSpec,
    ) -> Option<Vec<u8>> {
        let bytes = self.pick(rng)?.to_vec();
        insert_merge_race(rng, &bytes, cfg, spec)
    }
}
