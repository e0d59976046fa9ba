//! The fuzz-byte decoder: totality and validity on random inputs, swarm
//! masks, coverage of every op kind, and `decode(encode(s)) == s`. (The
//! rmap shapes random inputs give are measured on the reference model, in
//! the `rmaplab` crate's tests.)

use std::collections::{BTreeMap, BTreeSet};

use rmaplab_ops::decode::{DecodeConfig, EncodeError, MapKinds, OpKinds, decode, encode};
use rmaplab_ops::print::print;
use rmaplab_ops::{
    Advice, Block, FILE_PAGES, Kind, MremapTo, NR_FILES, Op, Pid, Prot, Sched, Stream,
};

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
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
    /// Random bytes of a random length, mostly short, sometimes long.
    fn input(&mut self) -> Vec<u8> {
        let len = match self.below(4) {
            0 => self.below(8),
            1 => self.below(64),
            2 => self.below(400),
            _ => self.below(2000),
        };
        self.bytes(len as usize)
    }
}

const WIDE_MAGIC: &[u8] = b"rmW1";

fn configs() -> Vec<DecodeConfig> {
    vec![
        DecodeConfig::default(),
        DecodeConfig::live_kernel(),
        // A window wider than a byte: two-byte fields.
        DecodeConfig {
            window_start: 10,
            window_len: 300,
            max_len: 700,
            max_ops: 200,
            ..DecodeConfig::default()
        },
        DecodeConfig {
            window_start: 200,
            window_len: 56,
            max_len: 1,
            max_procs: 1,
            map_kinds: MapKinds::FILE | MapKinds::SFILE,
            ..DecodeConfig::default()
        },
        DecodeConfig {
            max_ops: 5,
            kinds: OpKinds::FORK | OpKinds::EXIT | OpKinds::DUMP,
            ..DecodeConfig::default()
        },
        DecodeConfig {
            kinds: OpKinds::MMAP | OpKinds::FORK | OpKinds::WRITE,
            max_procs: 64,
            max_ops: 500,
            ..DecodeConfig::default()
        },
        // Degenerate values are normalised, never a panic.
        DecodeConfig {
            window_start: u64::MAX,
            window_len: 0,
            max_len: 0,
            max_procs: 0,
            map_kinds: MapKinds::NONE,
            ..DecodeConfig::default()
        },
        DecodeConfig {
            window_start: u64::MAX - 5,
            window_len: u64::MAX,
            max_len: u64::MAX,
            max_procs: 1000,
            ..DecodeConfig::default()
        },
    ]
}

/// Checks, independently of the decoder, what every decoded stream must
/// satisfy; `narrow` adds the range properties (everything outside wide
/// mode). Returns the depth of the deepest fork chain.
fn check_valid(s: &Stream, cfg: &DecodeConfig, narrow: bool) -> usize {
    let ctx = || print(s);
    assert!(s.ops.len() <= cfg.max_ops, "{}", ctx());
    assert_eq!(s, &Stream::with_blocks(s.ops.clone(), s.blocks.clone()));
    if s.blocks.is_empty() {
        assert_eq!(s, &Stream::from_ops(s.ops.clone()));
    }
    check_blocks(s, cfg);
    let max_procs = cfg.max_procs.clamp(1, 64);
    let wlen = cfg.window_len.min(u64::MAX - cfg.window_start).max(1);
    let in_window = |a: u64| a >= cfg.window_start && a - cfg.window_start < wlen;
    let len_ok = |l: u64| (1..=cfg.max_len.max(1)).contains(&l);
    let map_kinds = if cfg.map_kinds.is_empty() {
        MapKinds::ALL
    } else {
        cfg.map_kinds
    };
    // Live processes and the depth of their fork chains.
    let mut live = BTreeMap::from([(0u32, 0usize)]);
    let mut next = 1;
    let mut deepest = 0;
    for op in &s.ops {
        assert!(cfg.kinds.contains(OpKinds::of(op)), "{op:?}\n{}", ctx());
        if let Some(pid) = op.pid() {
            assert!(live.contains_key(&pid.0), "{op:?} not live\n{}", ctx());
        }
        let (addrs, lens): (Vec<u64>, Vec<u64>) = match *op {
            Op::Mmap {
                addr, len, kind, ..
            } => {
                assert!(map_kinds.contains(MapKinds::of(&kind)), "{op:?}");
                if let Kind::File { file, off } | Kind::SFile { file, off } = kind {
                    assert!(file < NR_FILES, "{op:?}");
                    assert!(!narrow || off < FILE_PAGES + 8, "{op:?}");
                }
                (vec![addr], vec![len])
            }
            Op::Munmap { addr, len, .. }
            | Op::Mprotect { addr, len, .. }
            | Op::Madvise { addr, len, .. }
            | Op::ExecStack { addr, len, .. } => (vec![addr], vec![len]),
            Op::ExecShift { .. } => (vec![], vec![]),
            Op::Mremap {
                old,
                old_len,
                new_len,
                to,
                ..
            } => {
                let mut addrs = vec![old];
                addrs.extend(to.map(|t| t.new));
                (addrs, vec![old_len, new_len])
            }
            Op::Read { addr, .. }
            | Op::Write { addr, .. }
            | Op::Swapout { addr, .. }
            | Op::Migrate { addr, .. }
            | Op::Referenced { addr, .. } => (vec![addr], vec![]),
            Op::FailAlloc { n } => {
                assert!(!narrow || (1..=8).contains(&n), "{op:?}");
                (vec![], vec![])
            }
            Op::Fork { pid } => {
                assert!(live.len() < max_procs, "fork past max_procs\n{}", ctx());
                let depth = live[&pid.0] + 1;
                deepest = deepest.max(depth);
                live.insert(next, depth);
                next += 1;
                (vec![], vec![])
            }
            Op::Exit { pid } => {
                live.remove(&pid.0);
                (vec![], vec![])
            }
            Op::Reclaim | Op::Dump => (vec![], vec![]),
        };
        if narrow {
            assert!(addrs.iter().all(|&a| in_window(a)), "{op:?}\n{}", ctx());
            assert!(lens.iter().all(|&l| len_ok(l)), "{op:?}\n{}", ctx());
        }
    }
    deepest
}

/// The shape of every decoded block: a mutator first or last, one or two
/// walkers, an optional fault, raw schedule bytes; blocks only where the
/// config enables them.
fn check_blocks(s: &Stream, cfg: &DecodeConfig) {
    let mut end = 0;
    for b in &s.blocks {
        assert!(cfg.kinds.contains(OpKinds::PAR), "{}", print(s));
        assert!(b.first >= end && (2..=4).contains(&b.actors), "{b:?}");
        end = b.first + b.actors;
        let ops = &s.ops[b.ops()];
        let mutator = |op: &Op| OpKinds::MUTATORS.contains(OpKinds::of(op));
        let rest = if mutator(&ops[0]) {
            &ops[1..]
        } else {
            assert!(mutator(&ops[ops.len() - 1]), "{}", print(s));
            &ops[..ops.len() - 1]
        };
        let walkers = rest
            .iter()
            .take_while(|op| OpKinds::WALKERS.contains(OpKinds::of(op)))
            .count();
        assert!((1..=2).contains(&walkers), "{}", print(s));
        assert!(
            rest[walkers..]
                .iter()
                .all(|op| matches!(op, Op::Read { .. } | Op::Write { .. }))
                && rest.len() - walkers <= 1,
            "{}",
            print(s)
        );
        assert!(matches!(&b.sched, Sched::Bytes(x) if x.len() <= 31));
    }
    assert!(end <= s.ops.len());
    assert_eq!(s.version, if s.needed_version() > 1 { 2 } else { 1 });
}

/// `s` without the ops the encoder refuses for changing a temporary stack
/// (the decoder never generates them), one at a time: what a random
/// generator of ops can give [`assert_encodes`].
fn without_stack_changes(mut s: Stream, cfg: &DecodeConfig) -> Stream {
    while let Err(EncodeError::TouchesStack { index, .. }) = encode(&s, cfg) {
        assert!(s.blocks.is_empty(), "generated streams have no blocks");
        s.ops.remove(index);
        s = Stream::from_ops(s.ops);
    }
    s
}

/// decode(encode(s)) == s, with canonical line numbers.
fn assert_encodes(s: &Stream, cfg: &DecodeConfig) -> Vec<u8> {
    let bytes = match encode(s, cfg) {
        Ok(bytes) => bytes,
        Err(e) => panic!("{e}\n{}", print(s)),
    };
    assert_eq!(
        decode(&bytes, cfg),
        Stream::with_blocks(s.ops.clone(), s.blocks.clone()),
        "{bytes:?}"
    );
    bytes
}

#[test]
fn any_bytes_decode_to_a_valid_stream() {
    let mut rng = Rng(10);
    let cfgs = configs();
    let mut inputs = 0;
    for cfg in &cfgs {
        for _ in 0..4_000 {
            let bytes = rng.input();
            let narrow = !bytes.starts_with(WIDE_MAGIC);
            check_valid(&decode(&bytes, cfg), cfg, narrow);
            inputs += 1;
        }
    }
    assert!(inputs >= 32_000);
}

#[test]
fn wide_mode_inputs_decode_to_live_streams() {
    let mut rng = Rng(11);
    for cfg in &configs() {
        for _ in 0..1_000 {
            let mut bytes = WIDE_MAGIC.to_vec();
            bytes.extend(rng.input());
            check_valid(&decode(&bytes, cfg), cfg, false);
        }
    }
}

#[test]
fn short_inputs() {
    let cfg = DecodeConfig::default();
    assert_eq!(decode(&[], &cfg), Stream::default());
    assert_eq!(decode(&[0xFF, 0xFF], &cfg), Stream::default());
    assert_eq!(decode(WIDE_MAGIC, &cfg), Stream::default());
    assert_eq!(decode(&[0xFF; 3], &cfg), Stream::default());
    let none = DecodeConfig {
        kinds: OpKinds::NONE,
        ..cfg
    };
    assert_eq!(decode(&[0xFF; 100], &none), Stream::default());
    let zero = DecodeConfig { max_ops: 0, ..cfg };
    assert_eq!(decode(&[0xFF; 100], &zero), Stream::default());
}

/// Pins the byte format: corpus seeds must keep decoding the same way.
#[test]
fn byte_format_is_stable() {
    let cfg = DecodeConfig::default();
    let bytes = [
        0xFF,
        0xFF,
        0xFF, // swarm: everything
        // Nothing mapped (weights 16 1 1 1 1 3 - 1 ...): mmap is 0..16.
        0,
        0,
        4,
        5,
        0,
        0, // mmap p0 4 6 rw anon
        // Nothing written (6 1 3 2 1 3 - 4 16 ...): write is 20..36.
        20,
        0,
        2,
        42, // write p0 6 42: the 2nd of mapped pages 4..=9
        // One process (9 2 5 3 2 9 - 5 13 ...): fork is 21..30.
        21,
        0, // fork p0
        // Two processes (7 2 6 3 2 7 5 6 15 2 1 2 1 1): write is 38..53.
        38,
        0xC0,
        0x60,
        0x91, // write p1 (newest) 6 (written) 0x100000001
        38,
        0,
        0xC0,
        0xC5, // write p0 6 (the last address) 0xc0de..c5
        0,
        0,
        0x40 + 12, // direct (below 0x40: the gap after a run, page 10)
        2,
        14 | 3 << 4,
        5 | 2 << 6,
        70, // mmap p0 12 3 rx file:2:70 replace
        9,
        0x81,
        1,
        2,
        0, // mprotect p1 5 3 r: 1st mapped page, run 5..=9
        32,
        0xC0,
        0xE0 + 20, // read p1 20: direct
        27,
        0, // exit p0
        // One process: 0xFF then another byte is that kind byte; mremap
        // is 16..19.
        0xFF,
        16,
        0,
        3,
        0x61,
        1,
        0x60 + 14, // mremap p1 6 2 2 to 14 (direct: 0x60 + page)
        // Page 6 moved to 14 and stays written (9 2 5 3 2 9 - 5 13 2 1 2
        // ...): fail-alloc is 53.
        53,
        3, // fail-alloc 4
        0xFF,
        0xFF, // exit p1 (the last process)
        2,    // dump (reclaim 0, fail-alloc 1, dump 2)
    ];
    let s = decode(&bytes, &cfg);
    assert_eq!(
        print(&s),
        "version 1\nmmap p0 4 6 rw anon\nwrite p0 6 42\nfork p0\nwrite p1 6 0x100000001\n\
         write p0 6 0xc0de0000000000c5\nmmap p0 12 3 rx file:2:70 replace\nmprotect p1 5 3 r\n\
         read p1 20\nexit p0\nmremap p1 6 2 2 to 14\nfail-alloc 4\nexit p1\ndump\n"
    );
    assert_eq!(encode(&s, &cfg).map(|b| decode(&b, &cfg)), Ok(s));
}

#[test]
fn swarm_mask_switches_kinds() {
    let mut rng = Rng(12);
    let mut execs = 0;
    let cfg = DecodeConfig::default();
    let only = |bytes: &[u8], allowed: &[&str]| {
        let s = decode(bytes, &cfg);
        for op in &s.ops {
            assert!(
                allowed.contains(&op.keyword()),
                "{op:?} for {:?}",
                &bytes[..3]
            );
        }
        s
    };
    for _ in 0..500 {
        let tail = rng.bytes(300);
        let with = |head: [u8; 3]| [&head[..], &tail].concat();
        // Only mmap (always on), only anon.
        let s = only(&with([0x01, 0x00, 0x01]), &["mmap"]);
        assert!(!s.ops.is_empty());
        for op in &s.ops {
            assert!(
                matches!(
                    op,
                    Op::Mmap {
                        kind: Kind::Anon,
                        ..
                    }
                ),
                "{op:?}"
            );
        }
        only(&with([0x00, 0x00, 0x00]), &["mmap"]);
        // Bit 14 and bit 4 of m switch fork on, bit 15 and bit 5 of m
        // write, bits 6 and 7 of m read and exit.
        let s = only(&with([0x01, 0x40, 0x0F]), &["mmap", "fork"]);
        assert!(s.ops.iter().any(|op| matches!(op, Op::Mmap { .. })));
        only(&with([0x01, 0x00, 0x1F]), &["mmap", "fork"]);
        only(&with([0x01, 0x80, 0x0F]), &["mmap", "write"]);
        only(&with([0x01, 0x00, 0x2F]), &["mmap", "write"]);
        only(&with([0x01, 0x00, 0x4F]), &["mmap", "read"]);
        only(&with([0x21, 0x00, 0x8F]), &["mmap", "fork", "exit"]);
        // Bit 0 of k0 ^ k1 ^ m switches exec's ops on.
        let s = only(
            &with([0x00, 0x00, 0x01]),
            &["mmap", "exec-stack", "exec-shift"],
        );
        execs += s.ops.iter().filter(|op| op.keyword() != "mmap").count();
        // Only swapout, which the live-kernel config disables: only mmap
        // is left.
        let live = DecodeConfig::live_kernel();
        let bytes = with([0x00, 0x02, 0x00]);
        assert!(
            decode(&bytes, &live)
                .ops
                .iter()
                .all(|op| matches!(op, Op::Mmap { .. }))
        );
        // Only swapout where mmap is not enabled either: the intersection
        // is empty, so every enabled kind may occur.
        let fed = DecodeConfig {
            kinds: OpKinds::FORK | OpKinds::EXIT | OpKinds::DUMP,
            ..cfg
        };
        let s = decode(&bytes, &fed);
        check_valid(&s, &fed, true);
        assert!(s.ops.iter().any(|op| matches!(op, Op::Fork { .. })));
    }
    assert!(execs >= 100, "{execs} exec ops");
}

#[test]
fn truncated_input_decodes_to_a_prefix() {
    let mut rng = Rng(17);
    let cfg = DecodeConfig::default();
    for _ in 0..200 {
        let bytes = rng.bytes(200);
        let full = decode(&bytes, &cfg);
        for k in 0..=bytes.len() {
            let part = decode(&bytes[..k], &cfg);
            assert_eq!(part.ops[..], full.ops[..part.ops.len()]);
        }
    }
}

#[test]
fn live_kernel_config_has_no_emulator_only_ops() {
    let mut rng = Rng(13);
    let cfg = DecodeConfig::live_kernel();
    for _ in 0..2_000 {
        let s = decode(&rng.input(), &cfg);
        assert!(s.ops.iter().all(|op| !op.emulator_only()), "{}", print(&s));
    }
}

#[test]
fn decoder_reaches_every_kind_and_deep_fork_chains() {
    let mut rng = Rng(14);
    let cfg = DecodeConfig::default();
    let mut kinds = BTreeSet::new();
    let mut maps = MapKinds::NONE;
    let (mut moves, mut dontunmap, mut replace, mut in_place) = (false, false, false, false);
    let mut deepest = 0;
    for _ in 0..2_000 {
        let s = decode(&rng.bytes(300), &cfg);
        deepest = deepest.max(check_valid(&s, &cfg, true));
        if !s.blocks.is_empty() {
            kinds.insert("par");
        }
        for op in &s.ops {
            kinds.insert(op.keyword());
            match *op {
                Op::Mmap {
                    kind, replace: r, ..
                } => {
                    maps = maps | MapKinds::of(&kind);
                    replace |= r;
                }
                Op::Mremap { to: None, .. } => in_place = true,
                Op::Mremap { to: Some(t), .. } => {
                    moves = true;
                    dontunmap |= t.dontunmap;
                }
                _ => {}
            }
        }
    }
    let all: BTreeSet<_> = OpKinds::ALL.keywords().collect();
    assert_eq!(kinds, all);
    assert_eq!(maps, MapKinds::ALL);
    assert!(moves && dontunmap && replace && in_place);
    assert!(deepest >= 4, "deepest fork chain {deepest}");
}

#[test]
fn encode_inverts_decode() {
    let mut rng = Rng(15);
    for cfg in &configs() {
        for _ in 0..2_500 {
            let s = decode(&rng.input(), cfg);
            let bytes = assert_encodes(&s, cfg);
            assert!(!bytes.starts_with(WIDE_MAGIC), "narrow streams stay narrow");
        }
        for _ in 0..500 {
            let mut bytes = WIDE_MAGIC.to_vec();
            bytes.extend(rng.input());
            assert_encodes(&decode(&bytes, cfg), cfg);
        }
    }
}

fn p(n: u32) -> Pid {
    Pid(n)
}

/// A stream that uses values no narrow field can carry.
fn wide_stream() -> Stream {
    Stream::from_ops(vec![
        Op::Mmap {
            pid: p(0),
            addr: 255,
            len: 0,
            prot: Prot::Rwx,
            kind: Kind::SFile {
                file: 3,
                off: 1 << 40,
            },
            replace: true,
        },
        Op::Fork { pid: p(0) },
        Op::Write {
            pid: p(1),
            addr: u64::MAX,
            value: 0xdead_beef_cafe,
        },
        Op::Write {
            pid: p(1),
            addr: 3,
            value: u64::MAX,
        },
        Op::Mremap {
            pid: p(1),
            old: 300,
            old_len: 1000,
            new_len: 1000,
            to: Some(MremapTo {
                new: 0x7fff_ffff,
                dontunmap: true,
            }),
        },
        Op::Mremap {
            pid: p(0),
            old: 1,
            old_len: 1,
            new_len: 9,
            to: None,
        },
        Op::Madvise {
            pid: p(0),
            addr: 23,
            len: 8,
            advice: Advice::WipeOnFork,
        },
        Op::Exit { pid: p(0) },
        Op::FailAlloc { n: 0 },
        Op::FailAlloc { n: 1000 },
        Op::Mprotect {
            pid: p(1),
            addr: 1 << 63,
            len: u64::MAX,
            prot: Prot::None,
        },
        Op::Exit { pid: p(1) },
        Op::Reclaim,
        Op::Dump,
    ])
}

#[test]
fn encode_carries_wide_values() {
    let s = wide_stream();
    for cfg in &configs()[..2] {
        let cfg = &DecodeConfig {
            kinds: OpKinds::ALL,
            ..*cfg
        };
        let bytes = assert_encodes(&s, cfg);
        assert!(bytes.starts_with(WIDE_MAGIC));
    }
    // Random streams of arbitrary values round-trip through wide mode.
    let mut rng = Rng(16);
    let cfg = DecodeConfig {
        max_ops: 1000,
        ..DecodeConfig::default()
    };
    for _ in 0..2_000 {
        let narrow = decode(&rng.bytes(200), &cfg);
        let ops = narrow
            .ops
            .into_iter()
            .map(|op| widen(&mut rng, op))
            .collect();
        assert_encodes(&without_stack_changes(Stream::from_ops(ops), &cfg), &cfg);
    }
}

/// Replaces the op's numbers with arbitrary ones, often out of range.
fn widen(rng: &mut Rng, mut op: Op) -> Op {
    let mut v = || match rng.below(4) {
        0 => rng.below(300),
        1 => u64::MAX - rng.below(2),
        2 => 0xFF,
        _ => rng.next() >> rng.below(64),
    };
    match &mut op {
        Op::Mmap {
            addr, len, kind, ..
        } => {
            (*addr, *len) = (v(), v());
            if let Kind::File { off, .. } | Kind::SFile { off, .. } = kind {
                *off = v();
            }
        }
        Op::Munmap { addr, len, .. }
        | Op::Mprotect { addr, len, .. }
        | Op::Madvise { addr, len, .. }
        | Op::ExecStack { addr, len, .. } => (*addr, *len) = (v(), v()),
        Op::ExecShift { shift, .. } => *shift = v(),
        Op::Mremap {
            old,
            old_len,
            new_len,
            to,
            ..
        } => {
            (*old, *old_len, *new_len) = (v(), v(), v());
            if let Some(t) = to {
                t.new = v();
            }
        }
        Op::Read { addr, .. }
        | Op::Swapout { addr, .. }
        | Op::Migrate { addr, .. }
        | Op::Referenced { addr, .. } => *addr = v(),
        Op::Write { addr, value, .. } => (*addr, *value) = (v(), v()),
        Op::FailAlloc { n } => *n = v(),
        Op::Fork { .. } | Op::Exit { .. } | Op::Reclaim | Op::Dump => {}
    }
    op
}

#[test]
fn encode_errors_say_why() {
    let cfg = DecodeConfig::default();
    let enc = |ops: Vec<Op>, cfg: &DecodeConfig| encode(&Stream::from_ops(ops), cfg);
    assert_eq!(
        enc(vec![Op::Dump; 65], &cfg),
        Err(EncodeError::TooManyOps {
            ops: 65,
            max_ops: 64
        })
    );
    let swapout = Op::Swapout { pid: p(0), addr: 0 };
    assert_eq!(
        enc(vec![swapout], &DecodeConfig::live_kernel()),
        Err(EncodeError::KindDisabled {
            index: 0,
            op: swapout
        })
    );
    let read = Op::Read { pid: p(0), addr: 0 };
    assert_eq!(
        enc(vec![Op::Exit { pid: p(0) }, read], &cfg),
        Err(EncodeError::NotLive { index: 1, op: read })
    );
    let fork = Op::Fork { pid: p(2) };
    assert_eq!(
        enc(vec![Op::Fork { pid: p(0) }, fork], &cfg),
        Err(EncodeError::NotLive { index: 1, op: fork })
    );
    let one = DecodeConfig {
        max_procs: 1,
        ..cfg
    };
    let fork = Op::Fork { pid: p(0) };
    let err = enc(vec![fork], &one);
    assert_eq!(
        err,
        Err(EncodeError::TooManyProcesses {
            index: 0,
            op: fork,
            max_procs: 1
        })
    );
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err("op 0 (`fork p0`) cannot be encoded: 1 processes are live already".to_string())
    );
    let mmap = |kind| Op::Mmap {
        pid: p(0),
        addr: 0,
        len: 1,
        prot: Prot::R,
        kind,
        replace: false,
    };
    let anon_only = DecodeConfig {
        map_kinds: MapKinds::ANON,
        ..cfg
    };
    assert_eq!(
        enc(vec![mmap(Kind::Shared)], &anon_only),
        Err(EncodeError::MapKindDisabled {
            index: 0,
            op: mmap(Kind::Shared)
        })
    );
    let bad_file = mmap(Kind::File { file: 4, off: 0 });
    assert_eq!(
        enc(vec![bad_file], &cfg),
        Err(EncodeError::BadFile {
            index: 0,
            op: bad_file
        })
    );
    // Pid-less ops stay encodable once every process has exited.
    let s = Stream::from_ops(vec![
        Op::Exit { pid: p(0) },
        Op::FailAlloc { n: 3 },
        Op::Reclaim,
        Op::Dump,
    ]);
    assert_encodes(&s, &cfg);
}

/// A random stream of `cfg`'s kinds that names only live processes and
/// never has more than `max_procs` live: the decoder's ranges for `narrow`,
/// arbitrary numbers otherwise. Unlike decoded streams, its addresses
/// ignore what is mapped.
fn live_stream(rng: &mut Rng, cfg: &DecodeConfig, narrow: bool) -> Stream {
    let max_procs = cfg.max_procs.clamp(1, 64);
    // Narrow fields of more than 256 values carry 16 bits.
    let wlen = cfg
        .window_len
        .min(u64::MAX - cfg.window_start)
        .clamp(1, 1 << 16);
    let max_len = cfg.max_len.clamp(1, 1 << 16);
    let mut live = vec![0u32];
    let mut next = 1;
    let mut ops = Vec::new();
    let kinds: Vec<&str> = cfg.kinds.keywords().collect();
    let maps: Vec<Kind> = [
        Kind::Anon,
        Kind::Shared,
        Kind::File { file: 0, off: 0 },
        Kind::SFile { file: 0, off: 0 },
    ]
    .into_iter()
    .filter(|k| cfg.map_kinds.is_empty() || cfg.map_kinds.contains(MapKinds::of(k)))
    .collect();
    let wide = |rng: &mut Rng| rng.next() >> rng.below(64);
    for _ in 0..rng.below(cfg.max_ops as u64 + 1) {
        let addr = |rng: &mut Rng| match narrow || rng.below(3) > 0 {
            true => cfg.window_start + rng.below(wlen),
            false => wide(rng),
        };
        let len = |rng: &mut Rng| match narrow || rng.below(3) > 0 {
            true => 1 + rng.below(max_len),
            false => wide(rng),
        };
        let kind = rng.pick(&kinds);
        if live.is_empty() && !matches!(kind, "reclaim" | "fail-alloc" | "dump") {
            continue;
        }
        let pid = Pid(if live.is_empty() { 0 } else { rng.pick(&live) });
        let op = match kind {
            "mmap" => Op::Mmap {
                pid,
                addr: addr(rng),
                len: len(rng),
                prot: rng.pick(&Prot::ALL),
                kind: match rng.pick(&maps) {
                    Kind::File { .. } | Kind::SFile { .. } if rng.below(2) == 0 => Kind::File {
                        file: rng.below(u64::from(NR_FILES)) as u8,
                        off: if narrow { rng.below(72) } else { wide(rng) },
                    },
                    Kind::File { .. } | Kind::SFile { .. } => Kind::SFile {
                        file: rng.below(u64::from(NR_FILES)) as u8,
                        off: if narrow { rng.below(72) } else { wide(rng) },
                    },
                    k => k,
                },
                replace: rng.below(2) == 0,
            },
            "munmap" => Op::Munmap {
                pid,
                addr: addr(rng),
                len: len(rng),
            },
            "mprotect" => Op::Mprotect {
                pid,
                addr: addr(rng),
                len: len(rng),
                prot: rng.pick(&Prot::ALL),
            },
            "mremap" => {
                let old_len = len(rng);
                let to = (rng.below(2) == 0).then(|| MremapTo {
                    new: addr(rng),
                    dontunmap: rng.below(2) == 0,
                });
                let new_len = if rng.below(2) == 0 { old_len } else { len(rng) };
                Op::Mremap {
                    pid,
                    old: addr(rng),
                    old_len,
                    new_len,
                    to,
                }
            }
            "madvise" => Op::Madvise {
                pid,
                addr: addr(rng),
                len: len(rng),
                advice: rng.pick(&Advice::ALL),
            },
            "fork" if live.len() < max_procs => {
                live.push(next);
                next += 1;
                Op::Fork { pid }
            }
            "fork" => continue,
            "exit" => {
                live.retain(|&p| p != pid.0);
                Op::Exit { pid }
            }
            "read" => Op::Read {
                pid,
                addr: addr(rng),
            },
            "write" => Op::Write {
                pid,
                addr: addr(rng),
                value: if narrow {
                    let small = rng.below(0x80);
                    rng.pick(&[small, 2 << 32 | 7, 0xC0DE_0000_0000_00C3, u64::MAX])
                } else {
                    wide(rng)
                },
            },
            "swapout" => Op::Swapout {
                pid,
                addr: addr(rng),
            },
            "migrate" => Op::Migrate {
                pid,
                addr: addr(rng),
            },
            "exec-stack" => Op::ExecStack {
                pid,
                addr: addr(rng),
                len: len(rng),
            },
            "exec-shift" => Op::ExecShift {
                pid,
                shift: if narrow { rng.below(wlen) } else { wide(rng) },
            },
            "reclaim" => Op::Reclaim,
            "fail-alloc" => Op::FailAlloc {
                n: if narrow { 1 + rng.below(8) } else { wide(rng) },
            },
            _ => Op::Dump,
        };
        ops.push(op);
    }
    Stream::from_ops(ops)
}

#[test]
fn encode_inverts_decode_on_any_live_stream() {
    let mut rng = Rng(19);
    for cfg in &configs() {
        for _ in 0..1_000 {
            let s = without_stack_changes(live_stream(&mut rng, cfg, true), cfg);
            let bytes = assert_encodes(&s, cfg);
            assert!(!bytes.starts_with(WIDE_MAGIC), "narrow streams stay narrow");
            let s = without_stack_changes(live_stream(&mut rng, cfg, false), cfg);
            assert_encodes(&s, cfg);
        }
    }
}

/// Pins the byte format of a block (version 2).
#[test]
fn block_byte_format_is_stable() {
    let cfg = DecodeConfig::default();
    let bytes = [
        0xFF,
        0xFF,
        0xFF, // swarm: everything, blocks and referenced too
        0,
        0,
        4,
        5,
        0,
        0, // mmap p0 4 6 rw anon
        // Nothing written, one process (6 1 3 2 1 3 - 4 16 1 1 1 1 1 1 2):
        // par is 42..44.
        42,
        // Shape: two walkers (migrate, referenced), a fault, mutator first.
        0x01 | 1 << 2 | 2 << 4 | 0x02,
        7,
        0,
        0,
        1,
        0, // mutator: mprotect p0 4 2 r
        0,
        2, // migrate p0 6: the 3rd mapped page (nothing written)
        0,
        0xE0 + 9, // referenced p0 9: direct
        1,
        0,
        0x61,
        42, // write p0 5 42
        0x22,
        0xAB,
        0x01, // schedule: 2 bytes
        54,   // dump (1 process, something written)
    ];
    let s = decode(&bytes, &cfg);
    assert_eq!(
        print(&s),
        "version 2\nmmap p0 4 6 rw anon\npar\n  mprotect p0 4 2 r\n  migrate p0 6\n  \
         referenced p0 9\n  write p0 5 42\nend sched #ab01\ndump\n"
    );
    assert_eq!(s.blocks[0].sched, Sched::Bytes(vec![0xAB, 0x01]));
    assert_eq!(s.lines, vec![2, 4, 5, 6, 7, 9]);
    let enc = encode(&s, &cfg).expect("encodable");
    assert_eq!(decode(&enc, &cfg), s);
    // Truncated inside the block: the stream ends before it.
    assert_eq!(decode(&bytes[..20], &cfg).ops.len(), 1);
    // The same bytes with the blocks bit of the swarm off decode as v1.
    let mut v1 = bytes;
    v1[1] &= !0x40;
    assert!(decode(&v1, &cfg).blocks.is_empty());
}

#[test]
fn decoded_blocks_have_every_shape_and_round_trip() {
    let mut rng = Rng(21);
    let cfg = DecodeConfig::default();
    let (mut blocks, mut last, mut two, mut fault) = (0, false, false, false);
    let mut walkers = BTreeSet::new();
    for _ in 0..3_000 {
        let mut bytes = rng.bytes(300);
        // Blocks on.
        bytes[1] |= 0x40;
        bytes[2] |= 0x10;
        let s = decode(&bytes, &cfg);
        check_valid(&s, &cfg, true);
        assert_encodes(&s, &cfg);
        for b in &s.blocks {
            blocks += 1;
            let ops = &s.ops[b.ops()];
            last |= !OpKinds::MUTATORS.contains(OpKinds::of(&ops[0]));
            fault |= matches!(ops[ops.len() - 1], Op::Read { .. } | Op::Write { .. });
            let w: Vec<_> = ops
                .iter()
                .filter(|op| OpKinds::WALKERS.contains(OpKinds::of(op)))
                .collect();
            two |= w.len() == 2;
            walkers.extend(w.iter().map(|op| op.keyword()));
        }
    }
    assert!(blocks > 1_000, "{blocks} blocks");
    assert!(last && two && fault);
    assert_eq!(walkers.len(), 3, "{walkers:?}");
    // Without the swarm bits, never a block; the live-kernel config never
    // has one.
    for _ in 0..1_000 {
        let mut bytes = rng.bytes(300);
        bytes[1] &= !0x40;
        assert!(decode(&bytes, &cfg).blocks.is_empty());
        bytes[1] |= 0x40;
        bytes[2] |= 0x10;
        assert!(
            decode(&bytes, &DecodeConfig::live_kernel())
                .blocks
                .is_empty()
        );
    }
}

#[test]
fn blocks_the_decoder_cannot_make_are_encode_errors() {
    let cfg = DecodeConfig::default();
    let mmap = Op::Mmap {
        pid: p(0),
        addr: 0,
        len: 2,
        prot: Prot::Rw,
        kind: Kind::Anon,
        replace: false,
    };
    let swapout = Op::Swapout { pid: p(0), addr: 0 };
    let read = Op::Read { pid: p(0), addr: 1 };
    let block = |first, actors, sched| Block {
        first,
        actors,
        sched,
        line: 0,
        sched_line: 0,
        sched_col: 0,
    };
    let bytes = Sched::Bytes(vec![1, 2]);
    let enc = |ops: Vec<Op>, b: Block| encode(&Stream::with_blocks(ops, vec![b]), &cfg);
    let why = |r: Result<Vec<u8>, EncodeError>| match r {
        Err(EncodeError::BadBlock { why, .. }) => why,
        other => panic!("{other:?}"),
    };
    assert!(
        why(enc(
            vec![mmap, mmap, swapout],
            block(1, 2, Sched::default())
        ))
        .contains("#HEX")
    );
    assert!(
        why(enc(
            vec![mmap, mmap, swapout],
            block(1, 2, Sched::Bytes(vec![0; 32]))
        ))
        .contains("31")
    );
    assert!(why(enc(vec![mmap, swapout, read], block(1, 2, bytes.clone()))).contains("mutator"));
    assert!(why(enc(vec![mmap, mmap, read], block(1, 2, bytes.clone()))).contains("walkers"));
    assert!(why(enc(vec![mmap, swapout], block(0, 2, bytes.clone()))).contains("mapped"));
    // What the decoder makes encodes: mutator last, two walkers, a fault.
    let ops = vec![
        mmap,
        swapout,
        Op::Referenced { pid: p(0), addr: 1 },
        read,
        mmap,
    ];
    let s = Stream::with_blocks(ops, vec![block(1, 4, bytes)]);
    assert_encodes(&s, &cfg);
}

/// An mremap destination byte below 0x60 picks a page next to a mapping
/// (where `copy_vma` may merge); moved pages stay written; a walker's
/// choice after a mutator reaches the pages that mutator moved away.
#[test]
fn mremap_destinations_and_walkers_aim_at_merges() {
    let cfg = DecodeConfig::default();
    let parse = |t: &str| rmaplab_ops::parse::parse(t).expect("parses");
    let s = parse("mmap p0 0 4 rw anon\nwrite p0 1 1\nmremap p0 0 4 4 to 10\nread p0 11\n");
    let mut bytes = encode(&s, &cfg).expect("encodable");
    // The destination's direct form is its last byte but the read's three.
    let at = bytes.len() - 4;
    assert_eq!(bytes[at], 0x60 + 10);
    // A choice: the only edge of pages 0..4 for 4 pages is page 4.
    bytes[at] = 0x05;
    let t = decode(&bytes, &cfg);
    assert_eq!(
        rmaplab_ops::print::print_op(&t.ops[2]),
        "mremap p0 0 4 4 to 4"
    );
    // The block: mremap back next to page 0..4's old place, migrate after
    // it in letter order. Its target choices are the pages written after
    // the mremap (3, where the page goes) and before it (11, where it is
    // when the block starts).
    let s = parse(
        "version 2\nmmap p0 0 4 rw anon\nwrite p0 1 1\nmremap p0 0 4 4 to 10\nmmap p0 0 2 rw anon\n\
         par\n  mremap p0 10 4 4 to 2\n  migrate p0 11\nend sched #00\n",
    );
    let mut bytes = encode(&s, &cfg).expect("encodable");
    let layout = rmaplab_ops::decode::block_layout(&bytes, &cfg);
    let walker = layout[0].actors[1].clone();
    assert_eq!(bytes[walker.start + 1], 0xE0 + 11);
    let target = |bytes: &[u8]| rmaplab_ops::print::print_op(&decode(bytes, &cfg).ops[5]);
    // Below 0xC0: the pages the mutator took away (11); from 0xC0 on, the
    // union of both.
    bytes[walker.start + 1] = 0;
    assert_eq!(target(&bytes), "migrate p0 11");
    bytes[walker.start + 1] = 0xBF;
    assert_eq!(target(&bytes), "migrate p0 11");
    bytes[walker.start + 1] = 0xC0;
    assert_eq!(target(&bytes), "migrate p0 3");
    bytes[walker.start + 1] = 0xC1;
    assert_eq!(target(&bytes), "migrate p0 11");
}

/// A same-length move whose shape byte has bit 3 set moves the process's
/// last moved range back where it came from, reading nothing more; the
/// encoder never sets that bit.
#[test]
fn mremap_moves_back() {
    let cfg = DecodeConfig::default();
    let parse = |t: &str| rmaplab_ops::parse::parse(t).expect("parses");
    let s =
        parse("mmap p0 0 8 rw anon\nwrite p0 5 1\nmremap p0 4 4 4 to 16\nmremap p0 17 2 2 to 20\n");
    let mut bytes = encode(&s, &cfg).expect("encodable");
    // The last op: kind, P, shape, OLD, OLDLEN, NEW.
    let sh = bytes.len() - 4;
    assert_eq!(bytes[sh], 3);
    let last = |bytes: &[u8]| {
        let t = decode(bytes, &cfg);
        rmaplab_ops::print::print_op(&t.ops[t.ops.len() - 1])
    };
    assert_eq!(last(&bytes), "mremap p0 17 2 2 to 20");
    bytes[sh] = 3 | 0x08;
    bytes.truncate(sh + 1);
    assert_eq!(last(&bytes), "mremap p0 16 4 4 to 4");
    bytes[sh] = 4 | 0x08;
    assert_eq!(last(&bytes), "mremap p0 16 4 4 to 4 dontunmap");
    // Not for a move of another length, nor when the moved pages are gone.
    bytes[sh] = 5 | 0x08;
    assert_ne!(last(&bytes), "mremap p0 16 4 4 to 4");
    let s = parse(
        "mmap p0 0 8 rw anon\nmremap p0 4 4 4 to 16\nmunmap p0 17 1\nmremap p0 0 2 2 to 20\n",
    );
    let mut bytes = encode(&s, &cfg).expect("encodable");
    let sh = bytes.len() - 4;
    bytes[sh] = 3 | 0x08;
    assert_eq!(last(&bytes), "mremap p0 0 2 2 to 20");
}

/// An mmap address byte below 0x40 fills the gap after a run of mapped
/// pages (its length at most the gap's); an address choice in 0xA0..0xC0
/// is a page mapped but not written; in a two-protection input (bit 1 of
/// the swarm bytes' XOR clear), a PROT byte picks `rw` or the input's
/// other protection by bit 0, the usual table with bit 7 set; an mprotect
/// PROT byte with bits 5 and 6 set takes a neighbour's protection.
#[test]
fn gaps_unwritten_pages_and_two_protections() {
    let cfg = DecodeConfig::default();
    let parse = |t: &str| rmaplab_ops::parse::parse(t).expect("parses");
    let text = "mmap p0 0 4 rw anon\nmmap p0 8 4 rw anon\nwrite p0 1 1\nmmap p0 4 4 rwx anon\n\
                write p0 5 1\nmprotect p0 8 2 rwx\n";
    let s = parse(text);
    let bytes = encode(&s, &cfg).expect("encodable");
    assert_eq!(&bytes[..3], &[0xFF, 0xFF, 0xFF]);
    // Where op `k` starts: after the encoding of the ops before it.
    let at = |k: usize| {
        let prefix = rmaplab_ops::Stream::from_ops(s.ops[..k].to_vec());
        encode(&prefix, &cfg).expect("encodable").len()
    };
    let op = |bytes: &[u8], k: usize| rmaplab_ops::print::print_op(&decode(bytes, &cfg).ops[k]);
    // The third mmap: kind, P, GADDR, LEN, PROT, KIND.
    let m = at(3);
    assert_eq!(bytes[m + 2], 0x40 + 4, "direct: 0x40 + page");
    let mut b = bytes.clone();
    b[m + 2] = 0; // gap 0: page 4, up to page 8
    b[m + 3] = 7; // 8 pages, clipped to the gap's 4
    assert_eq!(op(&b, 3), "mmap p0 4 4 rwx anon");
    b[m + 2] = 1; // gap 1: page 12, nothing mapped above
    assert_eq!(op(&b, 3), "mmap p0 12 8 rwx anon");
    b[m + 2] = 0x44; // direct, 8 pages
    assert_eq!(op(&b, 3), "mmap p0 4 8 rwx anon");
    // The second write: kind, P, ADDR*, VALUE. Mapped but not written:
    // pages 0 and 2..=11 (page 1 is written); 0xA0 % 11 = 6: page 7.
    let w = at(4);
    let mut b = bytes.clone();
    b[w + 2] = 0xA0;
    assert_eq!(op(&b, 4), "write p0 7 1");
    b[w + 2] = 0x9F; // written pages: page 1
    assert_eq!(op(&b, 4), "write p0 1 1");
    // The mprotect: kind, P, ADDR*, LEN*, PROT. Bits 5 and 6 of PROT: the
    // protection of the page below the range (7, of the rwx mapping);
    // bit 6 alone: the table (0x40 % 8 = 0: r).
    let mp = at(5) + 4;
    let mut b = bytes.clone();
    b[mp] = 0x60;
    assert_eq!(op(&b, 5), "mprotect p0 8 2 rwx");
    b[mp] = 0x40;
    assert_eq!(op(&b, 5), "mprotect p0 8 2 r");
    // Two protections, the other one `rwx` (bits 2-3 of 0xF1 are 0).
    let mut b = bytes.clone();
    b[2] = 0xF1;
    let pr = at(3) + 4;
    assert_eq!(op(&b, 3), "mmap p0 4 4 rw anon", "the encoded byte is 10");
    b[pr] = 1;
    assert_eq!(op(&b, 3), "mmap p0 4 4 rwx anon");
    b[pr] = 0x80 | 13; // the table: r
    assert_eq!(op(&b, 3), "mmap p0 4 4 r anon");
    b[mp] = 0x81;
    assert_eq!(op(&b, 5), "mprotect p0 8 2 rw");
    b[mp] = 0x01;
    assert_eq!(op(&b, 5), "mprotect p0 8 2 rwx");
    b[mp] = 0x00;
    assert_eq!(op(&b, 5), "mprotect p0 8 2 rw");
    // Bit 1 of the XOR set: one protection table, as encoded.
    b[2] = 0xF3;
    b[mp] = 0x01;
    assert_eq!(op(&b, 5), "mprotect p0 8 2 rw");
    b[mp] = 0x04;
    assert_eq!(op(&b, 5), "mprotect p0 8 2 rwx");
}

/// exec's ops: an exec-stack address byte below 0x40 puts the stack at
/// the top of a hole of its process (a run of free pages), a page left
/// below it; an exec-shift byte below 0xE0 shifts it within the free
/// pages below it; a block's mutator can be the exec-shift, and a walker
/// target below 0xC0 picks among the stack pages it moved away.
#[test]
fn exec_stacks_go_in_holes_and_shift_into_room() {
    let cfg = DecodeConfig::default();
    let parse = |t: &str| rmaplab_ops::parse::parse(t).expect("parses");
    let text = "version 2\nmmap p0 0 4 rw anon\nmmap p0 6 2 rw anon\nexec-stack p0 16 4\n\
                write p0 17 1\nwrite p0 18 2\nexec-shift p0 8\n";
    let s = parse(text);
    let bytes = encode(&s, &cfg).expect("encodable");
    assert_eq!(decode(&bytes, &cfg), s);
    let at = |k: usize| {
        let prefix = rmaplab_ops::Stream::from_ops(s.ops[..k].to_vec());
        encode(&prefix, &cfg).expect("encodable").len()
    };
    let op = |bytes: &[u8], k: usize| rmaplab_ops::print::print_op(&decode(bytes, &cfg).ops[k]);
    // The exec-stack: kind, P, address, LEN. Holes start at pages 4 (2
    // free pages) and 8 (16 up to the window's end).
    let e = at(2);
    assert_eq!(bytes[e + 2], 0x40 + 16, "direct: 0x40 + page");
    let mut b = bytes.clone();
    b[e + 2] = 0;
    assert_eq!(op(&b, 2), "exec-stack p0 5 1", "a page left below");
    b[e + 2] = 1;
    assert_eq!(op(&b, 2), "exec-stack p0 20 4", "at the top");
    // The exec-shift: kind, P, SHIFT. Free below page 16: pages 8..16.
    let x = at(5);
    assert_eq!(bytes[x + 2], 0xE0 + 8, "direct");
    let mut b = bytes.clone();
    b[x + 2] = 0;
    assert_eq!(op(&b, 5), "exec-shift p0 1");
    b[x + 2] = 7;
    assert_eq!(op(&b, 5), "exec-shift p0 8");
    b[x + 2] = 8;
    assert_eq!(op(&b, 5), "exec-shift p0 1");
    // A block: the exec-shift its mutator, a migration after it. Below
    // 0xC0 the target is the page the shift moved away (17); from 0xC0 on
    // a written page, before the shift or after it (9, 10, 13, 17).
    let s = parse(&format!(
        "{text}exec-stack p0 16 4\nwrite p0 17 1\npar\n  exec-shift p0 4\n  migrate p0 17\nend sched #00\n"
    ));
    let mut bytes = encode(&s, &cfg).expect("encodable");
    assert_eq!(
        decode(&bytes, &cfg),
        Stream::with_blocks(s.ops.clone(), s.blocks.clone())
    );
    let layout = rmaplab_ops::decode::block_layout(&bytes, &cfg);
    let walker = layout[0].actors[1].clone();
    let target = |bytes: &[u8]| rmaplab_ops::print::print_op(&decode(bytes, &cfg).ops[9]);
    bytes[walker.start + 1] = 0;
    assert_eq!(target(&bytes), "migrate p0 17");
    bytes[walker.start + 1] = 0xC2;
    assert_eq!(target(&bytes), "migrate p0 13");
    bytes[walker.start + 1] = 0xC3;
    assert_eq!(target(&bytes), "migrate p0 17");
}

/// Nothing but exec touches a temporary stack until its exec-shift: the
/// decoder drops an op that would split, move, unmap or replace its pages
/// (and reads the next kind byte), the encoder refuses one; after the
/// shift the stack is an ordinary mapping.
#[test]
fn ops_leave_a_temporary_stack_alone() {
    let cfg = DecodeConfig::default();
    let parse = |t: &str| rmaplab_ops::parse::parse(t).expect("parses");
    let print_ops = |s: &Stream| rmaplab_ops::print::print(s);
    let head = "version 2\nexec-stack p0 16 4\nwrite p0 17 1\n";
    for (op, index) in [
        ("mprotect p0 17 1 r", 2),
        ("munmap p0 10 7", 2),
        ("madvise p0 19 2 dontfork", 2),
        ("mremap p0 16 2 2 to 4", 2),
        ("mremap p0 4 2 2 to 18", 3),
        ("mmap p0 12 6 rw anon replace", 2),
    ] {
        let text = if index == 3 {
            format!("{head}mmap p0 4 2 rw anon\n{op}\n")
        } else {
            format!("{head}{op}\n")
        };
        match encode(&parse(&text), &cfg) {
            Err(e @ EncodeError::TouchesStack { .. }) => {
                assert!(e.to_string().contains("temporary stack"), "{e}");
            }
            other => panic!("{op}: {other:?}"),
        }
        // After the shift, or next to the stack, the same ops are fine.
        let shifted = text.replacen("write p0 17 1\n", "write p0 17 1\nexec-shift p0 0\n", 1);
        let s = parse(&shifted);
        assert_eq!(decode(&encode(&s, &cfg).expect("encodable"), &cfg), s);
    }
    let s = parse(&format!(
        "{head}mprotect p0 10 6 r\nmmap p0 12 2 rw anon\nfork p0\n"
    ));
    assert_eq!(decode(&encode(&s, &cfg).expect("encodable"), &cfg), s);
    // The decoder drops such an op: an mprotect of a stack page, then a
    // fork; the mprotect's bytes are read and give nothing.
    let s = parse(&format!("{head}fork p0\n"));
    let mut bytes = encode(&s, &cfg).expect("encodable");
    let fork = bytes.split_off(bytes.len() - 2);
    let m = parse("version 2\nexec-stack p0 16 4\nwrite p0 17 1\nmprotect p0 0 1 r\n");
    let mp = encode(&m, &cfg).expect("encodable");
    let mut mprotect = mp[bytes.len()..].to_vec();
    // Its ADDR* (direct, the window has 24 pages): page 17.
    mprotect[2] = 0xE0 + 17;
    bytes.extend(&mprotect);
    bytes.extend(&fork);
    assert_eq!(print_ops(&decode(&bytes, &cfg)), print_ops(&s));
}
