//! The fuzz-byte decoder: totality and validity on random inputs, swarm
//! masks, coverage of every op kind, and `decode(encode(s)) == s`.

use std::collections::{BTreeMap, BTreeSet};

use rmaplab::ops::decode::{DecodeConfig, EncodeError, MapKinds, OpKinds, decode, encode};
use rmaplab::ops::print::print;
use rmaplab::ops::{Advice, FILE_PAGES, Kind, MremapTo, NR_FILES, Op, Pid, Prot, Stream};

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
    assert_eq!(s, &Stream::from_ops(s.ops.clone()));
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
            | Op::Madvise { addr, len, .. } => (vec![addr], vec![len]),
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
            | Op::Migrate { addr, .. } => (vec![addr], vec![]),
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

/// decode(encode(s)) == s, with canonical line numbers.
fn assert_encodes(s: &Stream, cfg: &DecodeConfig) -> Vec<u8> {
    let bytes = match encode(s, cfg) {
        Ok(bytes) => bytes,
        Err(e) => panic!("{e}\n{}", print(s)),
    };
    assert_eq!(
        decode(&bytes, cfg),
        Stream::from_ops(s.ops.clone()),
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
    assert!(inputs >= 20_000);
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
        0,
        0,
        0,
        3,
        2 + 15,
        0, // mmap p0 0 4 rw anon replace
        19,
        0, // fork p0
        28,
        0xC0,
        5,
        0x91, // write p1 5 (file 1, page 1)
        12,
        1,
        3,
        2,
        1,
        30, // mremap p1 2 2 2 to 6 (the window is 24)
        5,
        0x01,
        1,
        2,
        3 + 5 * 26,
        5 | 2 << 6,
        70, // mmap p1 1 3 rx file:2:70
        40 + 38,
        3,  // fail-alloc 4 (weights sum to 40)
        39, // dump
    ];
    let s = decode(&bytes, &cfg);
    assert_eq!(
        print(&s),
        "version 1\nmmap p0 0 4 rw anon replace\nfork p0\nwrite p1 5 0x100000001\n\
         mremap p1 2 2 2 to 6\nmmap p1 1 3 rx file:2:70\nfail-alloc 4\ndump\n"
    );
    assert_eq!(encode(&s, &cfg).map(|b| decode(&b, &cfg)), Ok(s));
}

#[test]
fn swarm_mask_switches_kinds() {
    let mut rng = Rng(12);
    let cfg = DecodeConfig::default();
    for _ in 0..500 {
        // Only mmap, only anon.
        let mut bytes = vec![0x01, 0x00, 0x01];
        bytes.extend(rng.bytes(300));
        let s = decode(&bytes, &cfg);
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
        // Bit 14 switches mmap on too, bit 15 fork.
        let mut bytes = vec![0x00, 0x40 | 0x80, 0x0F];
        bytes.extend(rng.bytes(300));
        let s = decode(&bytes, &cfg);
        assert!(s.ops.iter().any(|op| matches!(op, Op::Mmap { .. })));
        for op in &s.ops {
            assert!(matches!(op, Op::Mmap { .. } | Op::Fork { .. }), "{op:?}");
        }
        // Only swapout, which the live-kernel config disables: the
        // intersection is empty, so every enabled kind may occur.
        let mut bytes = vec![0x00, 0x02, 0x00];
        bytes.extend(rng.bytes(300));
        let live = DecodeConfig::live_kernel();
        check_valid(&decode(&bytes, &live), &live, true);
    }
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
        assert_encodes(&Stream::from_ops(ops), &cfg);
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
        | Op::Madvise { addr, len, .. } => (*addr, *len) = (v(), v()),
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
        Op::Read { addr, .. } | Op::Swapout { addr, .. } | Op::Migrate { addr, .. } => *addr = v(),
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
