//! The merge aim (bit 6 of the swarm bytes' XOR): a block's mutator that
//! moves the boundary between two adjacent mappings of one process, raced
//! by migrations of the pages whose VMA changes.
//!
//! `vma_merge` changes VMA bounds in three ways an `mprotect` reaches:
//! the whole middle mapping joins the one after it (case 8 in 4.8's
//! numbering: B21, a PTE rebuilt with the old VMA's protection), a head
//! of a mapping joins the mapping before it (case 5: `vma_adjust` grows
//! `prev` and shrinks `next`), a tail joins the mapping after it (case 4:
//! `next` grows down). A walk that visits the two VMAs while the boundary
//! moves looks for a moved page on the wrong side (X1, `vma_adjust`
//! without the anon_vma lock in 2.6.34–2.6.35). Random mprotects rarely
//! end exactly at a boundary with the neighbour's protection; the aim
//! builds that range from the decoder's memory (the mappings as runs of
//! one protection, [`Proc::mapping_at`]) and lets the fuzzer choose the
//! process, the boundary, the shape and the length.

use super::{Live, Op, OpKinds, PageSet, Params, Pid, Proc, Reader, touches_stack, whole_to_next};

/// The bit of `k0 ^ k1 ^ m` that switches the merge aim on (half of the
/// inputs, and the `FF FF FF` header [`super::encode`] writes: the aim
/// only reads kind bytes the encoder never writes, [`MERGE_KIND`]).
pub(super) const MERGE_BIT: u8 = 0x40;

/// In an input with [`MERGE_BIT`], a block mutator's kind byte from this
/// one on makes the mutator a merging `mprotect` ([`mutator`]), when
/// `mprotect` is on and a live process has two adjacent mappings with
/// different protections. The encoder writes the smallest byte of each
/// kind, always below it (the weights of a row sum to less).
const MERGE_KIND: u8 = 0x80;

/// A length byte below this one ends the range right after (or starts it
/// right at) a written page of the moving part, when there is one.
const ON_WRITTEN: u8 = 0x80;

/// The boundaries of `q`: bits `i` with `i - 1` and `i` both mapped with
/// different protections (two mappings as the decoder sees them).
fn boundaries(q: &Proc) -> PageSet {
    let mut out = PageSet::default();
    if q.mapped.is_empty() {
        return out;
    }
    let mut prev = q.prot_at(0);
    for i in 1..super::SET_PAGES {
        let cur = q.prot_at(i);
        if prev.is_some() && cur.is_some() && prev != cur {
            out.insert(&PageSet::range(i, i + 1));
        }
        prev = cur;
    }
    out
}

/// The shapes of a merging mutator, by the low 2 bits of its choice byte.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The mapping before the boundary (its last `max_len` pages) to the
    /// protection of the one after it: `vma_merge` case 8 (B21).
    Whole,
    /// A head of the mapping after the boundary to the protection of the
    /// one before it: case 5, `prev` grows over it.
    Head,
    /// A tail of the mapping before the boundary to the protection of the
    /// one after it: case 4, `next` grows down over it.
    Tail,
}

/// The part of the mappings around boundary `i` that `shape` moves (at
/// most `max_len` pages; a strict part of its mapping for [`Shape::Head`]
/// and [`Shape::Tail`] when the mapping has more than one page), as bits
/// `[lo, hi)`, and the pages a walker should race: the written pages of
/// the mapping that is taken over ([`Shape::Whole`], where the rebuilt
/// PTE gets the wrong protection) or of the moving part.
fn span(p: &Params, q: &Proc, i: u64, shape: Shape) -> Option<((u64, u64), PageSet)> {
    let (plo, _) = q.mapping_at(i - 1)?;
    let (_, nhi) = q.mapping_at(i)?;
    let strict = |n: u64| if n > 1 { n - 1 } else { n }.min(p.max_len);
    let (lo, hi, raced) = match shape {
        Shape::Whole => {
            let lo = plo.max(i.saturating_sub(p.max_len));
            (lo, i, PageSet::range(i, nhi))
        }
        Shape::Head => {
            let hi = i + strict(nhi - i);
            (i, hi, PageSet::range(i, hi))
        }
        Shape::Tail => {
            let lo = i - strict(i - plo);
            (lo, i, PageSet::range(lo, i))
        }
    };
    let mut raced = raced;
    raced.and(&q.written);
    Some(((lo, hi), raced))
}

/// A block's mutator in an input with [`MERGE_BIT`], from its kind byte
/// `b`: `None` when the aim does not apply (nothing read), `Some(None)`
/// when the bytes ran out, otherwise the `mprotect` and the pages its
/// walkers race (for [`super::Reader::target`]'s raced choice).
///
/// Reads: a process byte (`s % k` of the `k` live processes with a
/// boundary, in creation order), a choice byte `c` (shape by `c & 3`: 0
/// and 1 [`Shape::Whole`], 2 [`Shape::Head`], 3 [`Shape::Tail`]; boundary
/// `(c >> 2) % n` of the `n` boundaries whose racing pages are not empty,
/// of all of them when none has any), and for a head or a tail a length
/// byte `l`: below [`ON_WRITTEN`], the range reaches the `l % w`-th of the
/// `w` written pages of the part it may take, when there are any; else
/// `1 + l % m` pages, `m` the most it may take.
pub(super) fn mutator(
    b: u8,
    r: &mut Reader<'_>,
    p: &Params,
    kinds: OpKinds,
    live: &Live,
) -> Option<Option<(Op, PageSet)>> {
    if !live.merge_aim || b < MERGE_KIND || !kinds.contains(OpKinds::MPROTECT) {
        return None;
    }
    let mut slots = [0usize; super::MAX_PROCS_LIMIT];
    let mut k = 0;
    for i in 0..live.len {
        if !boundaries(&live.procs[i]).is_empty() {
            slots[k] = i;
            k += 1;
        }
    }
    if k == 0 {
        return None;
    }
    Some(decode_merge(r, p, live, &slots[..k]))
}

fn decode_merge(
    r: &mut Reader<'_>,
    p: &Params,
    live: &Live,
    slots: &[usize],
) -> Option<(Op, PageSet)> {
    let slot = slots[usize::from(r.byte()?) % slots.len()];
    let (pid, q) = (Pid(live.pids[slot]), &live.procs[slot]);
    let c = r.byte()?;
    let shape = match c & 3 {
        0 | 1 => Shape::Whole,
        2 => Shape::Head,
        _ => Shape::Tail,
    };
    let all = boundaries(q);
    let mut good = PageSet::default();
    for j in 0..all.count() {
        let i = all.nth(j);
        if span(p, q, i, shape).is_some_and(|(_, raced)| !raced.is_empty()) {
            good.insert(&PageSet::range(i, i + 1));
        }
    }
    let set = if good.is_empty() { all } else { good };
    let i = set.nth(u64::from(c >> 2) % set.count());
    let ((lo, hi), _) = span(p, q, i, shape)?;
    let op = match shape {
        Shape::Whole => whole_to_next(pid, p.window_start + lo, p, q)?,
        Shape::Head | Shape::Tail => {
            let l = r.byte()?;
            let mut written = PageSet::range(lo, hi);
            written.and(&q.written);
            let most = hi - lo;
            let len = if l < ON_WRITTEN && !written.is_empty() {
                let w = written.nth(u64::from(l) % written.count());
                if shape == Shape::Head {
                    w + 1 - lo
                } else {
                    hi - w
                }
            } else {
                1 + u64::from(l) % most
            };
            let (lo, hi) = if shape == Shape::Head {
                (lo, lo + len)
            } else {
                (hi - len, hi)
            };
            // The protection of the mapping the range joins.
            let prot = q.prot_at(if shape == Shape::Head { lo - 1 } else { hi })?;
            Op::Mprotect {
                pid,
                addr: p.window_start + lo,
                len: hi - lo,
                prot,
            }
        }
    };
    if touches_stack(&op, p, live) {
        return None;
    }
    let Op::Mprotect { addr, len, .. } = op else {
        return None;
    };
    let (lo, hi) = p.bits(addr, len);
    let raced = match shape {
        // The mapping taken over.
        Shape::Whole => span(p, q, i, shape)?.1,
        _ => {
            let mut moving = PageSet::range(lo, hi);
            moving.and(&q.written);
            moving
        }
    };
    Some((op, raced))
}

#[cfg(test)]
mod tests {
    use super::super::{DecodeConfig, block_layout, decode, encode};
    use crate::parse::parse;
    use crate::{Op, Prot};

    /// A stream with two mappings of one process (pages 4..8 `rw` with a
    /// written page 6, then 8..12 `r` with written pages 8 and 9) and a
    /// block whose mutator is an mprotect; with its kind byte set from
    /// `0x80` on (the encoder's header has bit 6 set), each choice byte
    /// gives an mprotect that ends or starts at the boundary (page 8) with
    /// the protection of the mapping on its other side, and the walker
    /// migrates a page the shape moves or takes over.
    #[test]
    fn a_merge_kind_byte_moves_a_boundary() {
        let text = "version 2\nmmap p0 4 8 rw anon\nwrite p0 6 1\nwrite p0 8 1\nwrite p0 9 1\n\
                    mprotect p0 8 4 r\npar\n  mprotect p0 4 1 r\n  migrate p0 6\nend sched #00\n";
        let s = parse(text).unwrap();
        let cfg = DecodeConfig::default();
        let bytes = encode(&s, &cfg).unwrap();
        assert_eq!(decode(&bytes, &cfg), s);
        let layout = block_layout(&bytes, &cfg);
        let mutator = layout[0].actors[0].start;
        for c in 0..4u8 {
            let mut b = bytes[..mutator].to_vec();
            // Kind byte, process, choice, length (below 0x80: up to a
            // written page), then a walker selector below 0x80 and a
            // raced target choice.
            b.extend_from_slice(&[0x80, 0, c, 0, 0, 0, 0]);
            let d = decode(&b, &cfg);
            let ops = &d.ops[d.blocks[0].ops()];
            let Op::Mprotect {
                addr, len, prot, ..
            } = ops[0]
            else {
                panic!("{:?}", ops[0]);
            };
            let (lo, hi) = (addr, addr + len);
            match c {
                // The whole `rw` mapping to `r`: it joins the next.
                0 | 1 => assert_eq!((lo, hi, prot), (4, 8, Prot::R)),
                // A head of the `r` mapping (up to written page 8) to `rw`.
                2 => assert_eq!((lo, hi, prot), (8, 9, Prot::Rw)),
                // A tail of the `rw` mapping (from written page 6) to `r`.
                _ => assert_eq!((lo, hi, prot), (6, 8, Prot::R)),
            }
            let Op::Migrate { addr: page, .. } = ops[1] else {
                panic!("{:?}", ops[1]);
            };
            let raced = if c < 2 { 8..12 } else { lo..hi };
            assert!(raced.contains(&page), "{c}: {page} not in {raced:?}");
        }
    }
}
