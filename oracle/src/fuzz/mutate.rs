//! Structure-aware mutation: a pool entry decoded into its op stream,
//! changed op by op, and encoded back ([`rmaplab_ops::decode::encode`],
//! exact: the bytes decode to the mutated stream).
//!
//! Byte mutations rarely keep every earlier step of a long shape while
//! changing the one that is wrong: an inserted or deleted byte shifts every
//! later field, and most address bytes pick a page by the decoder's memory
//! of the ops before, which a change upstream rewrites. Here each mutation
//! changes one thing and keeps the rest of the stream as it was:
//!
//! - an argument (address, length, destination, protection, process) of
//!   one op set to a value taken from another op of the same stream (a
//!   dictionary of its addresses, ends and lengths, as AFL's dictionaries
//!   are), or one off it;
//! - a fresh op or block inserted: the stream before that point encoded,
//!   random bytes appended and decoded, so the new op is drawn with the
//!   decoder's memory of exactly those ops (its aims: a mapped page, a gap,
//!   a neighbour's protection, a block moving a range back);
//! - an op or a whole block deleted, duplicated or moved;
//! - two pool entries spliced (a prefix of one, a suffix of the other).
//!
//! After the changes, ops naming a process that is not live at that point
//! are dropped (a deleted `fork` renumbers the children after it), and a
//! stream the encoder refuses (a block it cannot express) gives `None`:
//! the caller mutates bytes instead. Deterministic: every choice is drawn
//! from the caller's RNG.

use rand::Rng;
use rand::rngs::SmallRng;
use rmaplab_ops::decode::{DecodeConfig, decode, encode};
use rmaplab_ops::{Block, MremapTo, Op, Pid, Stream};

/// One op outside blocks, or a whole concurrent block (its ops, and the
/// block with `first` relative to them).
#[derive(Clone)]
pub(super) struct Item {
    pub(super) ops: Vec<Op>,
    pub(super) block: Option<Block>,
}

pub(super) fn items(s: &Stream) -> Vec<Item> {
    let mut out = Vec::with_capacity(s.ops.len());
    let mut blocks = s.blocks.iter().peekable();
    let mut i = 0;
    while i < s.ops.len() {
        if let Some(b) = blocks.next_if(|b| b.first == i) {
            let mut block = b.clone();
            block.first = 0;
            out.push(Item {
                ops: s.ops[b.ops()].to_vec(),
                block: Some(block),
            });
            i += b.actors;
        } else {
            out.push(Item {
                ops: vec![s.ops[i]],
                block: None,
            });
            i += 1;
        }
    }
    out
}

/// The stream of `items`, its ops naming processes that are not live (or
/// forking past `max_procs`) dropped (a block with one such op, whole),
/// cut at `max_ops`.
pub(super) fn stream(items: &[Item], cfg: &DecodeConfig) -> Stream {
    let mut ops = Vec::new();
    let mut blocks = Vec::new();
    let mut live: Vec<u32> = vec![0];
    let mut next = 1u32;
    'items: for it in items {
        if ops.len() + it.ops.len() > cfg.max_ops {
            break;
        }
        let (saved_live, saved_next) = (live.clone(), next);
        for op in &it.ops {
            let Some(Pid(p)) = op.pid() else { continue };
            if !live.contains(&p) {
                live = saved_live;
                next = saved_next;
                continue 'items;
            }
            match op {
                Op::Fork { .. } if live.len() >= cfg.max_procs => {
                    live = saved_live;
                    next = saved_next;
                    continue 'items;
                }
                Op::Fork { .. } => {
                    live.push(next);
                    next += 1;
                }
                Op::Exit { .. } => live.retain(|&q| q != p),
                _ => {}
            }
        }
        if let Some(b) = &it.block {
            let mut b = b.clone();
            b.first = ops.len();
            blocks.push(b);
        }
        ops.extend_from_slice(&it.ops);
    }
    Stream::with_blocks(ops, blocks)
}

/// The values a dictionary mutation draws from: every address, end and
/// length of the stream's ops.
fn dictionary(items: &[Item]) -> Vec<u64> {
    let mut d = Vec::new();
    for op in items.iter().flat_map(|it| &it.ops) {
        match *op {
            Op::Mmap { addr, len, .. }
            | Op::Munmap { addr, len, .. }
            | Op::Mprotect { addr, len, .. }
            | Op::Madvise { addr, len, .. } => d.extend([addr, addr + len, len]),
            Op::Mremap {
                old,
                old_len,
                new_len,
                to,
                ..
            } => {
                d.extend([old, old + old_len, old_len, new_len]);
                if let Some(t) = to {
                    d.extend([t.new, t.new + new_len]);
                }
            }
            Op::Read { addr, .. }
            | Op::Write { addr, .. }
            | Op::Swapout { addr, .. }
            | Op::Migrate { addr, .. }
            | Op::Referenced { addr, .. } => d.push(addr),
            _ => {}
        }
    }
    d
}

/// A value for a field: from the dictionary, one off it 1 time in 4.
fn pick(rng: &mut SmallRng, dict: &[u64], min: u64) -> Option<u64> {
    let v = *dict.get(rng.random_range(0..dict.len().max(1)))?;
    let v = match rng.random_range(0..8) {
        0 => v.saturating_sub(1),
        1 => v + 1,
        _ => v,
    };
    (v >= min).then_some(v)
}

/// Sets one field of `op` from the dictionary (addresses, lengths, a
/// destination), another op's protection or another op's process.
/// Returns whether it changed something.
fn set_field(rng: &mut SmallRng, op: &mut Op, dict: &[u64], prots: &[Op], pids: &[Pid]) -> bool {
    let before = *op;
    let which = rng.random_range(0..4u8);
    let prot = || {
        prots.iter().find_map(|o| match *o {
            Op::Mmap { prot, .. } | Op::Mprotect { prot, .. } => Some(prot),
            _ => None,
        })
    };
    if which == 3 {
        // The process of another op.
        let p = pids[rng
            .random_range(0..pids.len().max(1))
            .min(pids.len().saturating_sub(1))];
        // exec's ops keep theirs: `exec_stack` and the `exec_shift` that
        // ends its set-up are one exec of one process, which moving one of
        // them alone would break.
        if !matches!(op, Op::ExecStack { .. } | Op::ExecShift { .. })
            && let Some(pid) = op.pid_mut()
        {
            *pid = p;
        }
        return *op != before;
    }
    match op {
        Op::Mmap {
            addr, len, prot: p, ..
        }
        | Op::Mprotect {
            addr, len, prot: p, ..
        } => match which {
            0 => *addr = pick(rng, dict, 0).unwrap_or(*addr),
            1 => *len = pick(rng, dict, 1).unwrap_or(*len),
            _ => *p = prot().unwrap_or(*p),
        },
        Op::Munmap { addr, len, .. } | Op::Madvise { addr, len, .. } => match which {
            0 => *addr = pick(rng, dict, 0).unwrap_or(*addr),
            _ => *len = pick(rng, dict, 1).unwrap_or(*len),
        },
        Op::Mremap {
            old,
            old_len,
            new_len,
            to,
            ..
        } => match (which, rng.random_range(0..3u8)) {
            (0, _) => *old = pick(rng, dict, 0).unwrap_or(*old),
            (1, 0) => *old_len = pick(rng, dict, 1).unwrap_or(*old_len),
            (1, 1) => *new_len = pick(rng, dict, 1).unwrap_or(*new_len),
            (1, _) => {
                let l = pick(rng, dict, 1).unwrap_or(*old_len);
                *old_len = l;
                *new_len = l;
            }
            _ => {
                let new = pick(rng, dict, 0).unwrap_or(*old);
                let dontunmap = to.is_some_and(|t| t.dontunmap);
                *to = Some(MremapTo { new, dontunmap });
            }
        },
        Op::Read { addr, .. }
        | Op::Write { addr, .. }
        | Op::Swapout { addr, .. }
        | Op::Migrate { addr, .. }
        | Op::Referenced { addr, .. } => *addr = pick(rng, dict, 0).unwrap_or(*addr),
        _ => {}
    }
    *op != before
}

/// A fresh item drawn by the decoder after `prefix` (the stream of those
/// items encoded, random bytes appended); `None` when the bytes end before
/// a whole op or the prefix has no encoding.
fn fresh(rng: &mut SmallRng, prefix: &[Item], cfg: &DecodeConfig) -> Option<Item> {
    let s = stream(prefix, cfg);
    let mut bytes = encode(&s, cfg).ok()?;
    let n = rng.random_range(2..=32);
    bytes.extend((0..n).map(|_| rng.random::<u8>()));
    let t = decode(&bytes, cfg);
    let have = s.ops.len();
    items(&t)
        .into_iter()
        .scan(0, |at, it| {
            let start = *at;
            *at += it.ops.len();
            Some((start, it))
        })
        .find(|(start, _)| *start >= have)
        .map(|(_, it)| it)
}

/// Up to 3 op-level changes of the stream `bytes` decode to (and with
/// `other`, another pool entry, sometimes a splice of the two), encoded.
/// `None` when nothing changed or the result has no encoding.
pub fn mutate_ops(
    rng: &mut SmallRng,
    bytes: &[u8],
    other: Option<&[u8]>,
    cfg: &DecodeConfig,
) -> Option<Vec<u8>> {
    let s = decode(bytes, cfg);
    let mut its = items(&s);
    let mut changed = false;
    let n = rng.random_range(1..=3);
    for _ in 0..n {
        let len = its.len();
        match rng.random_range(0..12u8) {
            // An argument from the dictionary.
            0..=4 if len > 0 => {
                let dict = dictionary(&its);
                let all: Vec<Op> = its.iter().flat_map(|it| it.ops.clone()).collect();
                let prots: Vec<Op> = (0..2)
                    .map(|_| all[rng.random_range(0..all.len())])
                    .collect();
                let pids: Vec<Pid> = all.iter().filter_map(Op::pid).collect();
                if pids.is_empty() {
                    continue;
                }
                let i = rng.random_range(0..len);
                let j = rng.random_range(0..its[i].ops.len());
                let mut op = its[i].ops[j];
                if set_field(rng, &mut op, &dict, &prots, &pids) {
                    its[i].ops[j] = op;
                    changed = true;
                }
            }
            // A fresh op or block.
            5..=7 => {
                let at = rng.random_range(0..=len);
                if let Some(it) = fresh(rng, &its[..at], cfg) {
                    its.insert(at, it);
                    changed = true;
                }
            }
            8 if len > 0 => {
                its.remove(rng.random_range(0..len));
                changed = true;
            }
            9 if len > 0 => {
                let it = its[rng.random_range(0..len)].clone();
                its.insert(rng.random_range(0..=len), it);
                changed = true;
            }
            10 if len > 1 => {
                let it = its.remove(rng.random_range(0..len));
                its.insert(rng.random_range(0..len), it);
                changed = true;
            }
            11 => {
                let Some(o) = other else { continue };
                let b = items(&decode(o, cfg));
                let i = rng.random_range(0..=len);
                let j = rng.random_range(0..=b.len());
                its.truncate(i);
                its.extend_from_slice(&b[j..]);
                changed = true;
            }
            _ => {}
        }
    }
    if !changed {
        return None;
    }
    let out = stream(&its, cfg);
    if out.ops.is_empty() || (out.ops == s.ops && out.blocks == s.blocks) {
        return None;
    }
    encode(&out, cfg).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn random_input(rng: &mut SmallRng) -> Vec<u8> {
        let len = rng.random_range(0..=400);
        (0..len).map(|_| rng.random()).collect()
    }

    /// A mutation decodes to a stream that encodes back to the same
    /// bytes; it differs from the input; it is the same for the same seed.
    #[test]
    fn op_mutations_are_exact_changed_and_deterministic() {
        let cfg = DecodeConfig::default();
        let mut rng = SmallRng::seed_from_u64(3);
        let (mut made, mut blocks) = (0, 0);
        for _ in 0..400 {
            let a = random_input(&mut rng);
            let b = random_input(&mut rng);
            let seed: u64 = rng.random();
            let m = mutate_ops(&mut SmallRng::seed_from_u64(seed), &a, Some(&b), &cfg);
            let again = mutate_ops(&mut SmallRng::seed_from_u64(seed), &a, Some(&b), &cfg);
            assert_eq!(m, again);
            let Some(m) = m else { continue };
            made += 1;
            let s = decode(&m, &cfg);
            assert_eq!(encode(&s, &cfg).unwrap(), m);
            assert_ne!(s.ops, decode(&a, &cfg).ops, "{m:?}");
            blocks += usize::from(!s.blocks.is_empty());
        }
        assert!(made > 300 && blocks > 10, "{made} {blocks}");
    }

    /// The cost of one mutation, op-level against byte edits, on fresh
    /// inputs (`cargo test --release -p rmaplab --lib mutation_cost --
    /// --ignored --nocapture`).
    #[test]
    #[ignore = "a measurement"]
    fn mutation_cost() {
        let cfg = DecodeConfig::default();
        let mut rng = SmallRng::seed_from_u64(9);
        let inputs: Vec<Vec<u8>> = (0..2000).map(|_| random_input(&mut rng)).collect();
        let t = std::time::Instant::now();
        let mut n = 0usize;
        for (i, a) in inputs.iter().enumerate() {
            let b = &inputs[(i * 7 + 1) % inputs.len()];
            n += mutate_ops(&mut rng, a, Some(b), &cfg).map_or(0, |v| v.len());
        }
        let ops = t.elapsed() / inputs.len() as u32;
        let t = std::time::Instant::now();
        for a in &inputs {
            n += crate::fuzz::engine::mutate_bytes(&mut rng, a).len();
        }
        let bytes = t.elapsed() / inputs.len() as u32;
        let t = std::time::Instant::now();
        for a in &inputs {
            n += decode(a, &cfg).ops.len();
        }
        let dec = t.elapsed() / inputs.len() as u32;
        eprintln!("per input: op-level {ops:?}, byte edits {bytes:?}, one decode {dec:?} ({n})");
    }

    /// Inserting a fresh item keeps every op before and after it.
    #[test]
    fn a_fresh_item_keeps_the_rest() {
        let cfg = DecodeConfig::default();
        let mut rng = SmallRng::seed_from_u64(5);
        let mut kept = 0;
        for _ in 0..200 {
            let s = decode(&random_input(&mut rng), &cfg);
            let its = items(&s);
            if its.len() < 4 {
                continue;
            }
            let at = its.len() / 2;
            let Some(it) = fresh(&mut rng, &its[..at], &cfg) else {
                continue;
            };
            let mut with = its.clone();
            with.insert(at, it.clone());
            let out = stream(&with, &cfg);
            let before: Vec<Op> = its[..at].iter().flat_map(|i| i.ops.clone()).collect();
            assert_eq!(out.ops[..before.len()], before[..]);
            assert_eq!(
                out.ops[before.len()..before.len() + it.ops.len()],
                it.ops[..]
            );
            kept += 1;
        }
        assert!(kept > 50, "{kept}");
    }
}
