//! The features that guide every engine beyond code coverage: what the ops
//! of a stream reach (pairs of consecutive op kinds, fork depths), the
//! kernel paths each op took (the MMU's [`rmaplab_impls::mmu::path`]
//! bits: per op kind, and after the same process's previous paths) and the
//! steps of concurrent blocks ((yield point, actor) pairs and switches
//! between two actors' steps). One computation for both engines: the
//! built-in engine keeps an input whose features are new to its job
//! ([`super::engine::Coverage`]); the libFuzzer target writes them into
//! libFuzzer's extra counters ([`set_counter`]), so that libFuzzer keeps
//! such inputs too.
//!
//! The runs also report one kind of state at the end of the stream: the
//! pairs of VMAs a move could merge ([`MERGE_PAIR`]), with how and in
//! which order each got its anon_vma.
//!
//! A feature is a `u64` whose top byte is its kind ([`PAIR`],
//! [`FORK_DEPTH`], [`BLOCK_STEP`], [`KIND_PATH`], [`PATH_SEQ`],
//! [`MERGE_PAIR`]) and whose low bits say which one.

use std::sync::atomic::{AtomicU8, Ordering};

use rmaplab_impls::mmu::Mmu;
use rmaplab_impls::rmap::Rmap;
use rmaplab_ops::{Op, Stream};

/// A pair of consecutive op kinds `a`, `b`: `a * Op::KINDS + b`.
pub const PAIR: u64 = 0;
/// The depth `d` of a fork (p0 is depth 0): `d`.
pub const FORK_DEPTH: u64 = 1 << 56;
/// A step of a block's trace: the actor (its letter's index) and the
/// step's name (yield point), hashed.
pub const BLOCK_STEP: u64 = 2 << 56;
/// An op kind `k` and the kernel paths `m` it took: `k << 32 | m`.
pub const KIND_PATH: u64 = 3 << 56;
/// The paths `p` of a process's previous op that took any, then the
/// paths `m` of its op: `p << 28 | m` (a reused anon_vma, then a split,
/// then a merging `copy_vma` is such a chain).
pub const PATH_SEQ: u64 = 4 << 56;

/// A pair of private anonymous VMAs `V`, `T` of one process at the end of
/// the stream such that `V`, moved whole to where its `vm_pgoff` lines up
/// with `T`'s (touching `T` or inside it), could merge with it
/// ([`merge_pair_features`]): how each got its anon_vma (the
/// [`rmaplab_impls::mmu::AnonLink`] event's path bit index, 31 for none),
/// whether `T` got it after `V`, whether their flags are equal, whether
/// they share the anon_vma, whether `V` has a page present. The
/// mremap-ordering races (B12, B08) start from such a pair: which one the
/// walk visits first depends on these.
pub const MERGE_PAIR: u64 = 5 << 56;

/// The kind of a feature (one of the constants above).
pub fn kind(feature: u64) -> u64 {
    feature & (0xFF << 56)
}

/// Reused buffers of the feature computation.
#[derive(Default)]
pub struct Scratch {
    /// The fork depth of each process of the stream.
    depth: Vec<usize>,
    /// The path bits of each process's last op that took one.
    last_path: Vec<u32>,
}

/// The features of the ops of `stream` alone (no run needed): each pair
/// of consecutive op kinds ([`PAIR`]) and the depth of each fork
/// ([`FORK_DEPTH`]).
pub fn stream_features(stream: &Stream, scratch: &mut Scratch, emit: &mut impl FnMut(u64)) {
    let mut prev: Option<u64> = None;
    scratch.depth.clear();
    scratch.depth.push(0);
    for op in &stream.ops {
        let k = op.kind_index() as u64;
        if let Some(a) = prev {
            emit(PAIR | (a * Op::KINDS as u64 + k));
        }
        prev = Some(k);
        if let Op::Fork { pid } = op {
            let d = scratch.depth.get(pid.0 as usize).copied().unwrap_or(0) + 1;
            scratch.depth.push(d);
            emit(FORK_DEPTH | d as u64);
        }
    }
}

/// The features of the kernel paths one design's run of `stream` took
/// ([`RunReport::paths`](crate::run::runner::RunReport::paths): op index,
/// path bits, for the ops that took any): per such op, (op kind, paths)
/// ([`KIND_PATH`]) then (paths of the same process's previous such op,
/// paths) ([`PATH_SEQ`]).
pub fn path_features(
    stream: &Stream,
    paths: &[(u32, u32)],
    scratch: &mut Scratch,
    emit: &mut impl FnMut(u64),
) {
    const _: () = assert!(rmaplab_impls::mmu::path::COUNT <= 28);
    scratch.last_path.clear();
    for &(i, m) in paths {
        let Some(op) = stream.ops.get(i as usize) else {
            continue;
        };
        let k = op.kind_index() as u64;
        emit(KIND_PATH | k << 32 | u64::from(m));
        let p = op.pid().map_or(0, |p| p.0 as usize);
        if scratch.last_path.len() <= p {
            scratch.last_path.resize(p + 1, 0);
        }
        let prev = std::mem::replace(&mut scratch.last_path[p], m);
        emit(PATH_SEQ | u64::from(prev) << 28 | u64::from(m));
    }
}

/// The [`MERGE_PAIR`] features of `mmu`'s state: one per
/// [`aligned_moves`](super::merge_race::aligned_moves) pair.
pub fn merge_pair_features<R: Rmap>(mmu: &Mmu<R>, emit: &mut impl FnMut(u64)) {
    let how = |id| {
        mmu.anon_link(id)
            .filter(|_| mmu.rmap().has_anon_vma(id))
            .map_or((31, None), |l| {
                (u64::from(l.how.trailing_zeros()), Some(l.seq))
            })
    };
    for pid in mmu.live_pids() {
        super::merge_race::aligned_moves(mmu, pid, &mut |vid, v, tid, t, new| {
            let (hv, sv) = how(vid);
            let present = (v.start..v.end).any(|a| mmu.anon_pte_at(pid, a).is_some());
            let (ht, st) = how(tid);
            let inside = new + v.pages() > t.start && new < t.end;
            let same = mmu
                .rmap()
                .vma_anon_vma(vid)
                .is_some_and(|a| mmu.rmap().vma_anon_vma(tid) == Some(a));
            let bits = hv
                | ht << 5
                | u64::from(st > sv) << 10
                | u64::from(v.flags == t.flags) << 11
                | u64::from(same) << 12
                | u64::from(inside) << 13
                | u64::from(present) << 14;
            emit(MERGE_PAIR | bits);
        });
    }
}

/// The [`BLOCK_STEP`] feature of actor `actor` (0 for `A`) stopped at the
/// yield point `step`: FNV-1a of the step's name in the 48 bits above the
/// actor's byte.
pub fn block_step(actor: usize, step: &str) -> u64 {
    let h = step.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    BLOCK_STEP | (h & ((1 << 48) - 1)) << 8 | (actor as u64 & 0xFF)
}

/// The features of a block's labelled trace (`A:copy_vma B:w1.lock ...`):
/// each (actor, step) pair, the step's `#N` occurrence left out, and each
/// switch from one actor's step to another's (`A:copy_vma>B:w1.lock`,
/// under the second actor); `emit`'s second argument says which (`true`:
/// a switch).
pub fn block_trace_features(trace: &str, emit: &mut impl FnMut(u64, bool)) {
    let mut prev: Option<(&str, &str)> = None;
    for item in trace.split_whitespace() {
        let Some((actor, step)) = item.split_once(':') else {
            continue;
        };
        let step = step.split('#').next().unwrap_or(step);
        let a = usize::from(actor.bytes().next().unwrap_or(b'A').wrapping_sub(b'A'));
        emit(block_step(a, step), false);
        if let Some((pa, ps)) = prev
            && pa != actor
        {
            emit(block_step(a, &format!("{pa}:{ps}>{step}")), true);
        }
        prev = Some((actor, step));
    }
}

/// Bytes of the libFuzzer target's extra-counter map: a feature sets one
/// of them (hashed; collisions merge two features), and libFuzzer scans
/// and clears them all around every execution, so the map stays small.
pub const COUNTERS: usize = 1 << 15;

/// Sets the counter of `feature` in `counters` (a map of [`COUNTERS`]
/// bytes or any other length) to 1: presence, as the built-in engine's
/// set of seen features counts it (libFuzzer would take a higher count for
/// another feature of its own).
pub fn set_counter(counters: &[AtomicU8], feature: u64) {
    if counters.is_empty() {
        return;
    }
    // A final mix (murmur3's): the kinds differ in the top byte only.
    let h = (feature ^ (feature >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    let h = h ^ (h >> 33);
    counters[(h % counters.len() as u64) as usize].store(1, Ordering::Relaxed);
}
