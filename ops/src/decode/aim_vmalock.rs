//! The per-VMA-lock aims (bit 5 of the swarm header's `k0 ^ k1 ^ m`):
//! blocks whose mutator changes the anon_vma of a VMA a fault of the same
//! block is looking up or holding under its VMA read lock, the shape of
//! the 6.4 races (docs/bugs.md B18):
//!
//! - a *merge into an unfaulted VMA*: an `mprotect` that gives a faulted
//!   range the protection of its unfaulted neighbour, so that the merge
//!   sets the neighbour's anon_vma (`dup_anon_vma`), while the fault is on
//!   the neighbour's pages;
//! - a *dontunmap move of a faulted mapping*: `mremap … dontunmap` of the
//!   whole mapping (at most `max_len` pages), which unlinks the source's
//!   anon_vma, while a write fault is on the source.
//!
//! "Faulted" is the decoder's ANON memory ([`Proc::anon`]): the pages of
//! mappings a write has given an anon_vma, which splits and protections
//! keep and a merge spreads; WRITTEN alone cannot tell a VMA that never
//! had an anon_vma from one whose written pages are elsewhere.
//!
//! Everything here is gated on bytes [`encode`](super::encode) never
//! writes (an mprotect PROT byte with bit 3 set, an mremap shape byte with
//! bit 4 set), so direct-form streams decode as before.

use super::{PageSet, Params, Proc, Reader, SET_PAGES};
use crate::{MremapTo, Op, Pid, Prot};

/// The bit of `k0 ^ k1 ^ m` that switches the per-VMA-lock aims on.
pub(super) const VMALOCK_BIT: u8 = 0x20;
/// A block mutator's mprotect PROT byte with this bit set merges a faulted
/// range into an unfaulted neighbour ([`merge_into_unfaulted`]), when one
/// is next to the anchor.
const MERGE_PR: u8 = 0x08;
/// A block mutator's mremap shape byte with this bit set, and a
/// `dontunmap` shape (4 or 6), moves the whole faulted mapping at the
/// anchor ([`dontunmap_whole`]).
const WHOLE_SH: u8 = 0x10;
/// A fault target byte below this one picks among the pages the aimed
/// mutator made the race on ([`Aim::dst`]).
const AIMED: u8 = 0xC0;

/// What the aims remember within one block.
#[derive(Clone, Copy, Default)]
pub(super) struct Aim {
    /// The mode is on (bit [`VMALOCK_BIT`] of the header).
    pub on: bool,
    /// The fault read before the mutator (a mutator last in its block):
    /// the mutator anchors on its page.
    pub fault: Option<(Pid, u64)>,
    /// The aimed mutator's process, the pages a fault should race on
    /// (the unfaulted merge destination, or a dontunmap source) and
    /// whether the fault must write (it must prepare an anon_vma).
    pub dst: Option<(Pid, PageSet, bool)>,
}

impl Aim {
    /// The anchor page of a mutator of `pid` whose own address is `addr`:
    /// the page of a fault read before it, in the same process.
    fn anchor(&self, pid: Pid, addr: u64) -> u64 {
        match self.fault {
            Some((f, a)) if f == pid => a,
            _ => addr,
        }
    }
}

/// Whether any page of `[lo, hi)` is in `set`.
fn touches(set: &PageSet, lo: u64, hi: u64) -> bool {
    set.intersects(&PageSet::range(lo, hi))
}

/// The merge into an unfaulted VMA across the boundary at bit `hi` of
/// `q` (the mapping ending there and the one starting there, with other
/// protections, one faulted and one not): the faulted one's bits, the
/// unfaulted one's, and the unfaulted one's protection.
type Merge = ((u64, u64), (u64, u64), Prot);

fn merge_at(q: &Proc, hi: u64) -> Option<Merge> {
    let left = q.mapping_at(hi.checked_sub(1)?)?;
    let right = q.mapping_at(hi)?;
    let (lp, rp) = (q.prot_at(left.0)?, q.prot_at(right.0)?);
    if lp == rp {
        return None;
    }
    match (
        touches(&q.anon, left.0, left.1),
        touches(&q.anon, right.0, right.1),
    ) {
        (true, false) => Some((left, right, rp)),
        (false, true) => Some((right, left, lp)),
        _ => None,
    }
}

/// A block mutator's mprotect of `pid` at `addr` with PROT byte `pr`, in
/// the mode: when bit [`MERGE_PR`] is set and `pid` has a faulted mapping
/// next to an unfaulted one with another protection, the faulted one's
/// pages next to the other (at most `max_len`) get the unfaulted one's
/// protection, ADDR\* and LEN\* notwithstanding. The pair is the one at
/// the anchor's mapping (its end first when bit 0 of `pr` is clear) if
/// it is one, else pair number `pr >> 4` of the process in address order.
/// The merge then sets the unfaulted VMA's anon_vma (`dup_anon_vma`, from
/// `vma_merge_existing_range`), which the fault after it races. Records
/// the unfaulted pages in `aim.dst`.
pub(super) fn merge_into_unfaulted(
    aim: &mut Aim,
    pid: Pid,
    addr: u64,
    pr: u8,
    p: &Params,
    q: &Proc,
) -> Option<Op> {
    if !aim.on || pr & MERGE_PR == 0 || q.anon.is_empty() {
        return None;
    }
    let here = p
        .bit(aim.anchor(pid, addr))
        .and_then(|b| q.mapping_at(b))
        .and_then(|(lo, hi)| {
            let ends = if pr & 1 == 0 { [hi, lo] } else { [lo, hi] };
            ends.into_iter().find_map(|e| merge_at(q, e))
        });
    let ((flo, fhi), (dlo, dhi), prot) = match here {
        Some(m) => m,
        None => {
            let pairs = || (1..p.set_pages()).filter_map(|e| merge_at(q, e));
            let n = pairs().count();
            if n == 0 {
                return None;
            }
            pairs().nth(usize::from(pr >> 4) % n)?
        }
    };
    // The faulted range, on the side of the unfaulted one.
    let (a, b) = if flo < dlo {
        (flo.max(fhi.saturating_sub(p.max_len)), fhi)
    } else {
        (flo, fhi.min(flo.saturating_add(p.max_len)))
    };
    aim.dst = Some((pid, PageSet::range(dlo, dhi), false));
    Some(Op::Mprotect {
        pid,
        addr: p.window_start + a,
        len: b - a,
        prot,
    })
}

/// A block mutator's mremap of `pid` with shape byte `sh` and source
/// `old`, in the mode: for a `dontunmap` shape (4, 6) with bit
/// [`WHOLE_SH`] set, when `pid` has a faulted mapping, the move of the
/// whole mapping at the anchor if it is faulted, else of the one holding
/// faulted page number `sh >> 5` (at most `max_len` pages) with `dontunmap`, its
/// length unchanged; the destination is read as NEW\*. `mremap`'s
/// `MREMAP_DONTUNMAP` unlinks the source's anon_vma (`unlink_anon_vmas`
/// in `move_vma`), which a write fault on it races. Records the source
/// pages in `aim.dst`. `None` reads nothing more.
pub(super) fn dontunmap_whole(
    r: &mut Reader<'_>,
    pid: Pid,
    sh: u8,
    old: u64,
    p: &Params,
    q: &Proc,
) -> Option<Option<Op>> {
    if !r.aim.on || sh & WHOLE_SH == 0 || !matches!(sh % 8, 4 | 6) {
        return Some(None);
    }
    if q.anon.is_empty() {
        return Some(None);
    }
    let Some((lo, hi)) = p
        .bit(r.aim.anchor(pid, old))
        .and_then(|b| q.mapping_at(b))
        .filter(|&(lo, hi)| touches(&q.anon, lo, hi))
        .or_else(|| q.mapping_at(q.anon.nth(u64::from(sh >> 5) % q.anon.count())))
    else {
        return Some(None);
    };
    let hi = hi.min(lo.saturating_add(p.max_len));
    let len = hi - lo;
    let new = r.dest(p, &q.mapped, len)?;
    r.aim.dst = Some((pid, PageSet::range(lo, hi), true));
    Some(Some(Op::Mremap {
        pid,
        old: p.window_start + lo,
        old_len: len,
        new_len: len,
        to: Some(MremapTo {
            new,
            dontunmap: true,
        }),
    }))
}

/// The process of a block's fault after an aimed mutator: a selector
/// below `0x80` picks the mutator's (the races are within one mm).
pub(super) fn fault_pid(aim: &Aim, s: u8) -> Option<Pid> {
    aim.dst
        .filter(|_| s < super::PICK_ANY)
        .map(|(pid, _, _)| pid)
}

/// A block fault's target after an aimed mutator, for its process `pid`
/// and first byte `b` of a choice: below [`AIMED`], a page of the aimed
/// pages still mapped.
pub(super) fn fault_page(aim: &Aim, pid: Pid, b: u8, p: &Params, q: &Proc) -> Option<u64> {
    let (m, mut set, _) = aim.dst?;
    if m != pid || b >= AIMED {
        return None;
    }
    set.and(&q.mapped);
    (!set.is_empty()).then(|| p.window_start + set.nth(u64::from(b) % set.count()))
}

/// Whether a block's fault after an aimed mutator must write.
pub(super) fn fault_writes(aim: &Aim) -> bool {
    aim.dst.is_some_and(|(_, _, w)| w)
}

/// Keeps [`Proc::anon`] for `op`, before the op changes the rest of `q`:
/// mmap and munmap clear their range, a write marks its whole mapping
/// (the VMA that gets the anon_vma), an mprotect marks the whole mapping
/// its range joins when that holds a faulted page (a merge shares the
/// anon_vma), a move carries the marks to its destination and clears its
/// source (`dontunmap` unlinks the source's anon_vma), an in-place growth
/// extends them, and exec's stack moves with its marks.
pub(super) fn track(q: &mut Proc, op: &Op, p: &Params) {
    let range = |addr, len| {
        let (lo, hi) = p.bits(addr, len);
        PageSet::range(lo, hi)
    };
    match *op {
        Op::Mmap {
            addr, len, replace, ..
        } => {
            let pages = range(addr, len);
            if replace || !q.mapped.intersects(&pages) {
                q.anon.remove(&pages);
            }
        }
        Op::Munmap { addr, len, .. } => q.anon.remove(&range(addr, len)),
        Op::Write { addr, .. } => {
            // A write to a read-only mapping faults with EFAULT.
            if let Some((lo, hi)) = p
                .bit(addr)
                .filter(|&b| q.prot_at(b).is_some_and(Prot::writable))
                .and_then(|b| q.mapping_at(b))
            {
                q.anon.insert(&PageSet::range(lo, hi));
            }
        }
        Op::Mprotect {
            addr, len, prot, ..
        } => {
            // The protections as they will be.
            let mut after = *q;
            let mut pages = range(addr, len);
            pages.and(&q.mapped);
            after.set_prot(&pages, prot);
            if let Some((lo, hi)) = p.bit(addr).and_then(|b| after.mapping_at(b))
                && touches(&q.anon, lo, hi)
            {
                q.anon.insert(&PageSet::range(lo, hi));
            }
        }
        Op::Mremap {
            old,
            old_len,
            new_len,
            to,
            ..
        } => {
            let Some(ob) = p.bit(old).filter(|&b| q.mapped.contains(b)) else {
                return;
            };
            match to {
                None if new_len < old_len => {
                    q.anon
                        .remove(&range(old.saturating_add(new_len), old_len - new_len));
                }
                None => {
                    let grown = range(old.saturating_add(old_len), new_len - old_len);
                    if q.anon.contains(ob) && !q.mapped.intersects(&grown) {
                        q.anon.insert(&grown);
                    }
                }
                Some(t) => {
                    let mut moved = PageSet::default();
                    for i in 0..old_len.min(new_len).min(SET_PAGES) {
                        if let (Some(a), Some(b)) =
                            (p.bit(old.saturating_add(i)), p.bit(t.new.saturating_add(i)))
                            && q.anon.contains(a)
                        {
                            moved.insert(&PageSet::range(b, b + 1));
                        }
                    }
                    q.anon.remove(&range(old, old_len));
                    q.anon.remove(&range(t.new, new_len));
                    q.anon.insert(&moved);
                }
            }
        }
        Op::ExecStack { addr, len, .. } if q.stack.is_none() && len > 0 => {
            q.anon.remove(&range(addr, len));
        }
        Op::ExecShift { shift, .. } => {
            let Some((lo, hi)) = q.stack else {
                return;
            };
            let (lo, hi) = (u64::from(lo), u64::from(hi));
            // As the move itself: nothing moves past the window's start or
            // onto mapped pages.
            if shift == 0 || shift > lo || q.mapped.intersects(&PageSet::range(lo - shift, lo)) {
                return;
            }
            let mut moved = PageSet::default();
            for b in lo..hi {
                if q.anon.contains(b) {
                    moved.insert(&PageSet::range(b - shift, b - shift + 1));
                }
            }
            q.anon.remove(&PageSet::range(lo, hi));
            q.anon.insert(&moved);
        }
        _ => {}
    }
}
