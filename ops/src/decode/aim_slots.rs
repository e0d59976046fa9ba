//! The slot aim (bit 4 of the swarm bytes' XOR): a block shaped as the
//! type-stable anon_vma slot races need (B10, B02; docs/fuzzing.md, "The
//! slot races' shape"). A walker looks a page up under RCU
//! (`page_lock_anon_vma`: `page->mapping`, then the lock) while one actor
//! frees that page's anon_vma and another allocates one, which takes the
//! freed slot (`SLAB_TYPESAFE_BY_RCU`). The shape, not a sequence: the
//! bytes still choose the processes, pages, walker kinds, the mutator's
//! kind and the schedule.
//!
//! In an input with the bit set, a block whose shape byte has
//! [`BLOCK_BACK`] set but no move back to make decodes, in letter order:
//!
//! - one walker (two when bit 0 of the shape byte is set; kinds by bits
//!   2-5 as in any block): `P` picks a *victim* (below [`PICK_ANY`], among
//!   the processes with pages of their OWN, fork children first; from
//!   [`PICK_ANY`] to [`PICK_NEWEST`], among all with OWN pages; else as a
//!   walker's `P`), a second walker's `P` below [`PICK_NEWEST`] the
//!   first's victim; its target one byte: below [`RACED`] page
//!   `b % |OWN|` of the victim's OWN pages (the pages it wrote itself since
//!   it was created: anonymous pages in its own anon_vma, not its
//!   parent's), else as a mapped page (`mapped_page`);
//! - a fault, when `read` or `write` is on: a byte (bit 0: `write` when
//!   both are on), `P` (below [`PICK_ANY`], among the processes with
//!   FRESH pages, else as any `P`), one byte: below [`RACED`] page
//!   `b % |FRESH|` of its FRESH pages (runs of mapped pages none of which
//!   it has written: a mapping with no anon_vma yet, whose fault's
//!   `anon_vma_prepare` allocates one), else as a mapped page; VALUE for a
//!   write;
//! - a mutator that takes the first walker's target from the victim: one
//!   byte `b` picks among `exit` of the victim (when another process is
//!   live and exit is on), `munmap` (when on) and `mmap … replace` (kind by
//!   `(b >> 2) & 0x3F` as an mmap's KIND byte, file `b >> 6`, offset 0,
//!   `rw`) of the run of mapped pages around the target (at most
//!   `max_len` pages, the target among them): its anon_vma is freed when
//!   that was its last VMA.
//!
//! Then the schedule, as for any block. [`encode`](super::encode) never
//! sets [`BLOCK_BACK`], so what it writes decodes as before.

use super::{
    BLOCK_BACK, Live, MAP_WEIGHTS, MAX_SCHED_BYTES, MapKinds, OpKinds, PICK_ANY, PICK_NEWEST,
    PageSet, Params, Proc, RACED, RawBlock, Reader, block_move_back, fault_kinds, mapped_page,
    nth_bit, pick_weighted, touches_stack, walker_index, walker_kinds,
};
use crate::{Kind, Op, Pid, Prot};

/// Bit of `k0 ^ k1 ^ m` that switches the slot aim on.
pub(super) const SLOTS_BIT: u8 = 0x10;

/// Whether a block with shape byte `sh` is a slot block: the aim is on,
/// and the shape asks for a move back that no process can make.
pub(super) fn is_slot_block(sh: u8, kinds: OpKinds, p: &Params, live: &Live) -> bool {
    live.slots && sh & BLOCK_BACK != 0 && block_move_back(sh, kinds, p, live).is_none()
}

/// The slots with pages of their own, and of those the fork children
/// (every process but the first is one).
fn owners(live: &Live) -> (u64, u64) {
    let mut all = 0u64;
    let mut children = 0u64;
    for i in 0..live.len {
        if !live.procs[i].own.is_empty() {
            all |= 1 << i;
            if live.pids[i] != 0 {
                children |= 1 << i;
            }
        }
    }
    (all, children)
}

/// The `s`-th slot of `mask` (not empty).
fn nth_slot(mask: u64, s: u8) -> usize {
    nth_bit(mask, u32::from(s) % mask.count_ones()) as usize
}

/// The victim a walker's selector `s` picks.
fn pick_victim(s: u8, live: &Live) -> usize {
    let (all, children) = owners(live);
    match s {
        _ if s < PICK_ANY && children != 0 => nth_slot(children, s),
        _ if s < PICK_NEWEST && all != 0 => nth_slot(all, s),
        _ => live.pick(s, true),
    }
}

/// The mapped pages of `q` in runs of mapped pages none of which it has
/// written.
fn fresh(p: &Params, q: &Proc) -> PageSet {
    let mut out = PageSet::default();
    let mut i = 0;
    while i < p.set_pages() {
        if !q.mapped.contains(i) {
            i += 1;
            continue;
        }
        let n = q.mapped.run_from(i);
        let run = PageSet::range(i, i + n);
        if !run.intersects(&q.written) {
            out.insert(&run);
        }
        i += n;
    }
    out
}

/// One byte: below [`RACED`] a page of `set` (when not empty), otherwise a
/// mapped page of `q`, or a page of the window when it maps none.
fn page_in(r: &mut Reader<'_>, p: &Params, q: &Proc, set: &PageSet, live: &Live) -> Option<u64> {
    let b = r.byte()?;
    Some(if b < RACED && !set.is_empty() {
        p.window_start + set.nth(u64::from(b) % set.count())
    } else if !q.mapped.is_empty() {
        mapped_page(b, p, q, live.last)
    } else {
        p.window_start + u64::from(b) % p.window_len
    })
}

/// A slot block after its shape byte `sh` (see the module doc).
pub(super) fn slot_block(
    r: &mut Reader<'_>,
    p: &Params,
    kinds: OpKinds,
    maps: MapKinds,
    live: &mut Live,
    sh: u8,
) -> Option<RawBlock> {
    let walkers = walker_kinds(kinds, p);
    let faults = fault_kinds(kinds);
    let mut ops = Vec::with_capacity(4);
    let mut marks = [0; 5];
    // The first walker's process and target.
    let mut victim: Option<(Pid, u64)> = None;
    for j in 0..1 + usize::from(sh & 1) {
        marks[ops.len()] = r.bytes.len();
        if live.len == 0 {
            return None;
        }
        let s = r.byte()?;
        let slot = match victim.and_then(|(v, _)| live.slot(v)) {
            Some(v) if s < PICK_NEWEST => v,
            _ => pick_victim(s, live),
        };
        let pid = Pid(live.pids[slot]);
        let q = &live.procs[slot];
        let addr = page_in(r, p, q, &q.own, live)?;
        victim.get_or_insert((pid, addr));
        let op = match walker_index(walkers, (sh >> (2 + 2 * j)) & 3) {
            9 => Op::Swapout { pid, addr },
            11 => Op::Migrate { pid, addr },
            _ => Op::Referenced { pid, addr },
        };
        live.apply(&op, p);
        ops.push(op);
    }
    if !faults.is_empty() {
        marks[ops.len()] = r.bytes.len();
        if live.len == 0 {
            return None;
        }
        let b = r.byte()?;
        let write =
            faults.contains(OpKinds::WRITE) && (b & 1 != 0 || !faults.contains(OpKinds::READ));
        let s = r.byte()?;
        let with_fresh = (0..live.len)
            .filter(|&i| !fresh(p, &live.procs[i]).is_empty())
            .fold(0u64, |m, i| m | 1 << i);
        let slot = if s < PICK_ANY && with_fresh != 0 {
            nth_slot(with_fresh, s)
        } else {
            live.pick(s, true)
        };
        let pid = Pid(live.pids[slot]);
        let q = &live.procs[slot];
        let addr = page_in(r, p, q, &fresh(p, q), live)?;
        let op = if write {
            Op::Write {
                pid,
                addr,
                value: r.value()?,
            }
        } else {
            Op::Read { pid, addr }
        };
        live.apply(&op, p);
        ops.push(op);
    }
    marks[ops.len()] = r.bytes.len();
    let b = r.byte()?;
    let (pid, target) = victim?;
    let slot = live.slot(pid)?;
    let op = mutator(b, pid, target, p, kinds, maps, live, slot)?;
    if touches_stack(&op, p, live) {
        return None;
    }
    live.apply(&op, p);
    ops.push(op);
    let n = ops.len();
    marks[n] = r.bytes.len();
    let len = usize::from(r.byte()?) & MAX_SCHED_BYTES;
    let sched = r.bytes.get(..len)?.to_vec();
    r.bytes = &r.bytes[len..];
    Some(RawBlock { ops, sched, marks })
}

/// The mutator a byte `b` picks: the victim's exit, or a munmap or an
/// `mmap … replace` of the run of mapped pages around `target`.
#[allow(clippy::too_many_arguments)]
fn mutator(
    b: u8,
    pid: Pid,
    target: u64,
    p: &Params,
    kinds: OpKinds,
    maps: MapKinds,
    live: &Live,
    slot: usize,
) -> Option<Op> {
    let exit = live.len > 1 && kinds.contains(OpKinds::EXIT);
    let munmap = kinds.contains(OpKinds::MUNMAP);
    let n = 1 + u8::from(exit) + u8::from(munmap);
    let mut pick = b % n;
    if exit {
        if pick == 0 {
            return Some(Op::Exit { pid });
        }
        pick -= 1;
    }
    // The run of mapped pages around the target, at most max_len pages.
    let q = &live.procs[slot];
    let (addr, len) = match p.bit(target).filter(|&t| q.mapped.contains(t)) {
        Some(t) => {
            let lo = t - (0..t).rev().take_while(|&i| q.mapped.contains(i)).count() as u64;
            let hi = t + q.mapped.run_from(t);
            let lo = lo.max((t + 1).saturating_sub(p.max_len));
            (p.window_start + lo, (hi - lo).min(p.max_len))
        }
        None => (target, 1),
    };
    if munmap && pick == 0 {
        return Some(Op::Munmap { pid, addr, len });
    }
    let kd = b >> 2;
    let kind = match pick_weighted(kd & 0x3F, maps.bits().into(), &MAP_WEIGHTS)? {
        0 => Kind::Anon,
        1 => Kind::Shared,
        2 => Kind::File {
            file: b >> 6,
            off: 0,
        },
        _ => Kind::SFile {
            file: b >> 6,
            off: 0,
        },
    };
    Some(Op::Mmap {
        pid,
        addr,
        len,
        prot: Prot::Rw,
        kind,
        replace: true,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{DecodeConfig, Live, Params};
    use super::*;
    use crate::print::print_op;

    /// A parent that wrote one page of a two-page mapping and has an
    /// unwritten mapping elsewhere; its child wrote the other page.
    fn forked(p: &Params) -> Live {
        let mut live = Live::new();
        live.slots = true;
        let w = p.window_start;
        let ops = [
            Op::Mmap {
                pid: Pid(0),
                addr: w + 10,
                len: 2,
                prot: Prot::Rw,
                kind: Kind::Anon,
                replace: false,
            },
            Op::Write {
                pid: Pid(0),
                addr: w + 10,
                value: 1,
            },
            Op::Mmap {
                pid: Pid(0),
                addr: w + 20,
                len: 1,
                prot: Prot::Rw,
                kind: Kind::Anon,
                replace: false,
            },
            Op::Fork { pid: Pid(0) },
            Op::Write {
                pid: Pid(1),
                addr: w + 11,
                value: 2,
            },
        ];
        for op in &ops {
            live.apply(op, p);
        }
        live
    }

    fn block(bytes: &[u8], sh: u8) -> Vec<String> {
        let p = Params::new(&DecodeConfig::default());
        let mut live = forked(&p);
        let kinds = OpKinds::ALL;
        assert!(is_slot_block(sh, kinds, &p, &live));
        let mut r = Reader {
            bytes,
            wide: false,
            merged: false,
            aim: Default::default(),
        };
        let b = slot_block(&mut r, &p, kinds, MapKinds::ALL, &mut live, sh).expect("a block");
        assert!(r.bytes.is_empty());
        b.ops.iter().map(print_op).collect()
    }

    #[test]
    fn a_slot_block_frees_the_childs_own_page_while_a_fresh_mapping_faults() {
        let w = Params::new(&DecodeConfig::default()).window_start;
        // Walker: the child (the only fork child with own pages), its own
        // page 11 (not 10, inherited); fault: write, the first process with
        // an unwritten run (p0, page 20); mutator byte 0: the child's exit.
        let ops = block(&[0, 0, 1, 0, 0, 5, 0, 0], BLOCK_BACK);
        assert_eq!(
            ops,
            [
                format!("swapout p1 {}", w + 11),
                format!("write p0 {} 5", w + 20),
                "exit p1".to_string(),
            ]
        );
        // Mutator byte 1: a munmap of the run around the target; 2: an
        // mmap … replace of it. Shape bits 2-3 pick migrate.
        let ops = block(&[0, 0, 1, 0, 0, 5, 1, 0], BLOCK_BACK | 1 << 2);
        assert_eq!(ops[0], format!("migrate p1 {}", w + 11));
        assert_eq!(ops[2], format!("munmap p1 {} 2", w + 10));
        let ops = block(&[0, 0, 1, 0, 0, 5, 2, 0], BLOCK_BACK);
        assert_eq!(ops[2], format!("mmap p1 {} 2 rw anon replace", w + 10));
    }

    #[test]
    fn only_blocks_asking_for_an_impossible_move_back_with_the_bit_are_slot_blocks() {
        let p = Params::new(&DecodeConfig::default());
        let mut live = forked(&p);
        assert!(!is_slot_block(0x7F, OpKinds::ALL, &p, &live));
        assert!(is_slot_block(0x80, OpKinds::ALL, &p, &live));
        live.slots = false;
        assert!(!is_slot_block(0x80, OpKinds::ALL, &p, &live));
    }
}
