//! Where a decoded block's actors and schedule bytes are in the input
//! (`block_layout`), and the "schedule bytes only" mutation
//! (`mutate_schedule`): changing those bytes changes only the blocks'
//! schedules, never an op.

use rmaplab_ops::decode::schedule::mutate_schedule;
use rmaplab_ops::decode::{
    BlockBytes, DecodeConfig, MAX_SCHED_BYTES, block_layout, decode, encode,
};
use rmaplab_ops::{Sched, Stream};

/// splitmix64: a small deterministic PRNG for generated inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Random bytes with blocks switched on in the swarm header.
    fn input_with_blocks(&mut self) -> Vec<u8> {
        let len = 3 + self.below(400);
        let mut bytes: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
        bytes[1] |= 0x40;
        bytes[2] |= 0x10;
        bytes
    }
}

/// The default config and one with two-byte address fields.
fn configs() -> Vec<DecodeConfig> {
    vec![
        DecodeConfig::default(),
        DecodeConfig {
            window_start: 10,
            window_len: 300,
            max_len: 40,
            max_ops: 100,
            ..DecodeConfig::default()
        },
    ]
}

/// The block of `block_byte_format_is_stable` (tests/decode.rs): an mmap,
/// then a block of a mutator, two walkers and a fault, then a dump.
const BLOCK_INPUT: [u8; 28] = [
    0xFF, 0xFF, 0xFF, // swarm
    0, 0, 4, 5, 0, 0,    // mmap p0 4 6 rw anon
    42,   // par
    0x17, // shape
    7, 0, 0, 1, 0, // A: mprotect p0 4 2 r
    0, 2, // B: migrate p0 6
    0, 0xE9, // C: referenced p0 9
    1, 0, 0x61, 42,   // D: write p0 5 42
    0x22, // schedule length 2 (high bits ignored)
    0xAB, 0x01, // schedule
    54,   // dump
];

fn pinned(shift: usize, kind_start: usize) -> BlockBytes {
    let at = |i: usize| i + shift;
    BlockBytes {
        bytes: at(kind_start)..at(27),
        actors: vec![
            at(11)..at(16),
            at(16)..at(18),
            at(18)..at(20),
            at(20)..at(24),
        ],
        len_byte: at(24),
        sched: at(25)..at(27),
    }
}

/// Exact offsets, so that a range off by one fails.
#[test]
fn block_layout_pins_every_range() {
    let cfg = DecodeConfig::default();
    assert_eq!(block_layout(&BLOCK_INPUT, &cfg), vec![pinned(0, 9)]);
    // Wide mode: the magic counts, every offset moves by 4.
    let wide = [b"rmW1".as_slice(), &BLOCK_INPUT].concat();
    assert_eq!(decode(&wide, &cfg), decode(&BLOCK_INPUT, &cfg));
    assert_eq!(block_layout(&wide, &cfg), vec![pinned(4, 9)]);
    // With one process live, a kind byte may follow an `0xFF` (the last
    // process's exit escape): the block starts at the `0xFF`.
    let escaped = [&BLOCK_INPUT[..9], &[0xFF], &BLOCK_INPUT[9..]].concat();
    assert_eq!(decode(&escaped, &cfg), decode(&BLOCK_INPUT, &cfg));
    assert_eq!(block_layout(&escaped, &cfg), vec![pinned(1, 8)]);
    // Truncated inside the schedule: no block, no layout.
    assert!(block_layout(&BLOCK_INPUT[..26], &cfg).is_empty());
    // An empty schedule.
    let mut empty = BLOCK_INPUT;
    empty[24] = 0x20;
    let l = block_layout(&empty, &cfg);
    assert_eq!((l[0].sched.clone(), l[0].bytes.end), (25..25, 25));
    assert_eq!(decode(&empty, &cfg).blocks[0].sched, Sched::Bytes(vec![]));
}

/// What a layout must say of the stream it was computed for.
fn check_layout(bytes: &[u8], s: &Stream, layout: &[BlockBytes]) {
    assert_eq!(layout.len(), s.blocks.len());
    let mut end = 0;
    for (b, l) in s.blocks.iter().zip(layout) {
        assert!(end <= l.bytes.start, "blocks in order, disjoint");
        end = l.bytes.end;
        assert_eq!(b.sched, Sched::Bytes(bytes[l.sched.clone()].to_vec()));
        assert_eq!(
            usize::from(bytes[l.len_byte]) & MAX_SCHED_BYTES,
            l.sched.len()
        );
        assert_eq!(l.sched.start, l.len_byte + 1);
        assert_eq!(l.bytes.end, l.sched.end);
        assert_eq!(l.actors.len(), b.actors);
        // Kind byte (maybe after an 0xFF), shape byte, then the actors.
        let first = l.actors[0].start;
        assert!(
            first == l.bytes.start + 2
                || (first == l.bytes.start + 3 && bytes[l.bytes.start] == 0xFF),
            "{l:?}"
        );
        for w in l.actors.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        // Only a block's move back (shape bit 7) reads no byte.
        assert!(
            l.actors
                .iter()
                .zip(&s.ops[b.ops()])
                .all(|(a, op)| !a.is_empty() || matches!(op, rmaplab_ops::Op::Mremap { .. }))
        );
        assert_eq!(l.actors[l.actors.len() - 1].end, l.len_byte);
    }
}

/// `s` with block `i`'s schedule replaced.
fn with_sched(s: &Stream, i: usize, sched: &[u8]) -> Stream {
    let mut t = s.clone();
    t.blocks[i].sched = Sched::Bytes(sched.to_vec());
    t
}

/// Changing, inserting or deleting schedule bytes (the length byte
/// following) changes only that block's schedule; changing the length
/// byte's low bits, one byte before the range, always changes the stream.
#[test]
fn only_schedule_bytes_change_only_the_schedule() {
    let mut rng = Rng(7);
    for cfg in configs() {
        let mut blocks = 0;
        for _ in 0..3_000 {
            let bytes = rng.input_with_blocks();
            let s = decode(&bytes, &cfg);
            let layout = block_layout(&bytes, &cfg);
            check_layout(&bytes, &s, &layout);
            for (i, l) in layout.iter().enumerate() {
                blocks += 1;
                // Overwrite every schedule byte.
                let mut b = bytes.clone();
                for x in &mut b[l.sched.clone()] {
                    *x = rng.next() as u8;
                }
                assert_eq!(decode(&b, &cfg), with_sched(&s, i, &b[l.sched.clone()]));
                // The length byte's high 3 bits are ignored.
                let mut b = bytes.clone();
                b[l.len_byte] ^= 0xE0;
                assert_eq!(decode(&b, &cfg), s);
                // Its low bits are the length: any other length is another
                // stream (a longer or shorter schedule, or no block).
                let mut b = bytes.clone();
                b[l.len_byte] ^= 1 + rng.below(MAX_SCHED_BYTES) as u8;
                assert_ne!(decode(&b, &cfg), s);
                // A new schedule of any length, spliced in.
                let new: Vec<u8> = (0..rng.below(MAX_SCHED_BYTES + 1))
                    .map(|_| rng.next() as u8)
                    .collect();
                let mut b = bytes.clone();
                b[l.len_byte] = (b[l.len_byte] & 0xE0) | new.len() as u8;
                b.splice(l.sched.clone(), new.iter().copied());
                let t = decode(&b, &cfg);
                assert_eq!(t, with_sched(&s, i, &new));
                assert_eq!(decode(&encode(&t, &cfg).expect("encodes"), &cfg), t);
            }
        }
        assert!(blocks > 1_000, "{blocks} blocks");
        // A swarm header without blocks: none, whatever follows.
        for _ in 0..1_000 {
            let mut bytes = rng.input_with_blocks();
            bytes[1 + rng.below(2)] &= !0x50;
            assert!(decode(&bytes, &cfg).blocks.is_empty());
            assert!(block_layout(&bytes, &cfg).is_empty());
        }
    }
}

/// `mutate_schedule` changes one block's schedule and nothing else, keeps
/// within its size limits, and does change schedules.
#[test]
fn mutate_schedule_changes_one_schedule_only() {
    let mut rng = Rng(11);
    let (mut mutated, mut changed, mut grew, mut shrank) = (0, 0, 0, 0);
    for cfg in configs() {
        for _ in 0..2_000 {
            let bytes = rng.input_with_blocks();
            let s = decode(&bytes, &cfg);
            let mut seed = rng.next();
            let mut rand = move || {
                seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let z = (seed ^ (seed >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z ^ (z >> 32)
            };
            let max_size = bytes.len() + rng.below(8);
            let mut b = bytes.clone();
            if !mutate_schedule(&mut b, max_size, &cfg, &mut rand) {
                // No block, or one with no decision byte and no room.
                let stuck = |b: &rmaplab_ops::Block| sched_bytes(&b.sched).is_empty();
                assert!(
                    s.blocks.is_empty() || (max_size == bytes.len() && s.blocks.iter().any(stuck))
                );
                assert_eq!(b, bytes);
                continue;
            }
            mutated += 1;
            assert!(b.len() <= max_size);
            let t = decode(&b, &cfg);
            assert_eq!(t.ops, s.ops);
            assert_eq!(t.blocks.len(), s.blocks.len());
            let diff: Vec<usize> = (0..s.blocks.len())
                .filter(|&i| t.blocks[i] != s.blocks[i])
                .collect();
            assert!(diff.len() <= 1, "{diff:?}");
            for &i in &diff {
                assert_eq!(t, with_sched(&s, i, sched_bytes(&t.blocks[i].sched)));
                let (old, new) = (
                    sched_bytes(&s.blocks[i].sched).len(),
                    sched_bytes(&t.blocks[i].sched).len(),
                );
                assert!(new <= MAX_SCHED_BYTES);
                changed += 1;
                grew += usize::from(new > old);
                shrank += usize::from(new < old);
            }
            assert_eq!(decode(&encode(&t, &cfg).expect("encodes"), &cfg), t);
        }
    }
    assert!(mutated > 1_000, "{mutated}");
    assert!(changed * 10 > mutated * 8, "{changed} of {mutated} changed");
    assert!(grew > 100 && shrank > 100, "grew {grew}, shrank {shrank}");
    // No block, no mutation.
    let mut b = BLOCK_INPUT[..9].to_vec();
    assert!(!mutate_schedule(
        &mut b,
        100,
        &DecodeConfig::default(),
        &mut || 3
    ));
    assert_eq!(b, &BLOCK_INPUT[..9]);
    // No room for a first decision byte: nothing to do.
    let mut empty = BLOCK_INPUT.to_vec();
    empty[24] = 0;
    empty.drain(25..27);
    let len = empty.len();
    assert!(!mutate_schedule(
        &mut empty,
        len,
        &DecodeConfig::default(),
        &mut || 0
    ));
    // Room for one: an insertion of one byte.
    assert!(mutate_schedule(
        &mut empty,
        len + 1,
        &DecodeConfig::default(),
        &mut || 0
    ));
    assert_eq!(
        decode(&empty, &DecodeConfig::default()).blocks[0].sched,
        Sched::Bytes(vec![0])
    );
}

fn sched_bytes(s: &Sched) -> &[u8] {
    match s {
        Sched::Bytes(b) => b,
        other => panic!("decoded schedules are bytes, not {other:?}"),
    }
}
