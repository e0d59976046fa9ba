//! The emulated MMU driving the real designs through the public API: the
//! live-kernel merge cases (6.18 layouts for chain-2010's 2022 era and
//! prealloc-2026, invariants for every design and era), and
//! seeded random streams with the oracle's per-op invariants (every
//! anonymous PTE found by the design's walk, its mapping alive, the
//! design's self-check) and the leak check after every process exits.

use std::path::Path;

use rmaplab_impls::designs::chain_2010::{Chain2010, Era};
use rmaplab_impls::designs::prealloc_2026::Prealloc2026;
use rmaplab_impls::designs::single_list_2004::SingleList2004;
use rmaplab_impls::mmu::Mmu;
use rmaplab_impls::rmap::Rmap;
use rmaplab_ops::corpus::{DumpRef, Header, parse_header, vma_text};
use rmaplab_ops::{Advice, Kind, MremapTo, Op, Outcome, Pid, Prot};

/// The oracle's per-op checks.
fn check<R: Rmap>(m: &Mmu<R>, what: &str) {
    for pte in m.anon_ptes() {
        assert!(
            m.rmap().mapping_alive(pte.mapping),
            "{what}: {}:{} maps a page whose mapping was freed",
            pte.pid,
            pte.page
        );
        let walk = m.rmap_walk(pte.mapping, pte.index).expect("walk");
        assert!(
            walk.found.contains(&(pte.pid, pte.page)),
            "{what}: walk misses {}:{}",
            pte.pid,
            pte.page
        );
    }
    m.rmap().self_check(m).expect("self-check");
}

fn teardown<R: Rmap>(m: &mut Mmu<R>, what: &str) {
    for p in m.live_pids() {
        m.apply(&Op::Exit { pid: p }).expect("exit");
        check(m, what);
    }
    let c = m.rmap().counters();
    assert_eq!(
        (c.anon_vmas, c.avcs),
        (0, 0),
        "{what}: design objects leaked"
    );
    assert_eq!(m.anon_frames_live(), 0, "{what}: pages leaked");
}

/// The header's general (Linux 6.18) `vmas` lines for dump `which`.
fn check_layouts<R: Rmap>(m: &Mmu<R>, header: &Header, which: DumpRef, what: &str) {
    let st = m.state();
    for exp in &header.dumps {
        if exp.spec.is_some() || exp.dump != which || exp.field != "vmas" {
            continue;
        }
        let got = st
            .procs
            .iter()
            .find(|(p, _)| p.to_string() == exp.pid)
            .map(|(_, p)| {
                p.vmas
                    .iter()
                    .map(|v| vma_text(v.start, v.end, &v.perms, &v.kind.name(), v.offset))
                    .collect::<Vec<_>>()
                    .join(" ")
            });
        assert_eq!(
            got.as_deref(),
            Some(exp.value.as_str()),
            "{what}: line {}: {} vmas at {which:?}",
            exp.line,
            exp.pid
        );
    }
}

/// Runs a stream in the corpus-file format on `rmap`: every op gives its
/// stated outcome (`ok` when none is stated) and keeps the invariants;
/// with `layouts`, every general `vmas` line holds; nothing leaks.
fn run<R: Rmap>(rmap: R, what: &str, text: &str, layouts: bool) {
    let stream = rmaplab_ops::parse::parse(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    let header = parse_header(text, &stream, |s| Ok(s.to_string()))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut m = Mmu::new(rmap);
    let mut dumps = 0;
    for (i, op) in stream.ops.iter().enumerate() {
        let at = format!("{what}:{}", stream.lines[i]);
        let o = m.apply(op).unwrap_or_else(|v| panic!("{at}: {v:?}"));
        match header.outcome_of(i) {
            Some(want) => assert_eq!(o, want, "{at}"),
            None => assert!(matches!(o, Outcome::Ok | Outcome::Value(_)), "{at}: {o}"),
        }
        check(&m, &at);
        if *op == Op::Dump {
            dumps += 1;
            if layouts {
                check_layouts(&m, &header, DumpRef::Nth(dumps), what);
            }
        }
    }
    if layouts {
        check_layouts(&m, &header, DumpRef::Final, what);
    }
    teardown(&mut m, what);
}

/// Measured cases (`corpus/live-kernel/`) where Linux 6.18 (and chain-2010's
/// 2022 era) lays VMAs out by the singular-chain rules of
/// docs/linux-6.18.md §4.5.
const CASES_6_18: &[&str] = &[
    "n04-mmap-between-two-anon-vmas",
    "n10-mmap-in-forked-child",
    "n15-child-mmap-between-inherited-and-own",
    "s04-split-two-anon-vmas-restore",
    "s05-middle-rwx-written-restore",
    "s12-split-then-fork-restore",
    "r03-move-unfaulted-next-to-faulted",
    "r04-move-faulted-next-to-unfaulted",
    "r06-move-half-away-and-back",
    "r08-grow-into-unfaulted-next",
    "r11b-dontunmap-unfaulted-adjacent",
    "f03-first-write-tries-next-first",
    "f05-child-first-write-no-reuse",
    "a01-anon-vma-survives-dontneed",
    "u02-refill-hole-in-child",
];

/// Not a measured case: a faulted VMA moved back next to an unfaulted
/// neighbour with linear pgoff merges into it (`vma_expand`'s
/// `dup_anon_vma(target, copied_from)`, 61f67c230a5e).
const COPIED_FROM: &str = "\
mmap p0 0 8 rw anon
write p0 4 1
write p0 5 2
mremap p0 4 4 4 to 20
munmap p0 0 4
mmap p0 0 4 rw anon
mremap p0 20 4 4 to 4 dontunmap
# final: p0 vmas 0-8 20-24
";

/// (name, text) of every case above.
fn cases_6_18() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/live-kernel");
    let mut out: Vec<(String, String)> = CASES_6_18
        .iter()
        .map(|name| {
            let path = dir.join(format!("{name}.ops"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name.to_string(), text)
        })
        .collect();
    out.push(("copied_from".into(), COPIED_FROM.into()));
    out
}

#[test]
fn chain_2010_era_2022_and_prealloc_2026_lay_out_as_linux_6_18() {
    for (name, text) in cases_6_18() {
        run(Chain2010::new(Era::E2022), &name, &text, true);
        run(
            Prealloc2026::new(),
            &format!("prealloc-2026 {name}"),
            &text,
            true,
        );
    }
}

#[test]
fn every_design_keeps_the_invariants_on_the_live_kernel_cases() {
    for (name, text) in cases_6_18() {
        run(SingleList2004::new(), &name, &text, false);
        for era in Era::ALL {
            run(Chain2010::new(era), &name, &text, false);
        }
        run(
            Prealloc2026::new(),
            &format!("prealloc-2026 {name}"),
            &text,
            false,
        );
    }
}

/// A small deterministic generator (xorshift) of op streams in a 16-page
/// window with up to 6 processes.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn op(&mut self, live: &[Pid]) -> Op {
        let pid = live[self.below(live.len() as u64) as usize];
        let addr = self.below(16);
        let len = 1 + self.below(6);
        let prot = Prot::ALL[self.below(5) as usize];
        match self.below(20) {
            0..=2 => Op::Mmap {
                pid,
                addr,
                len,
                prot: if self.below(3) == 0 { prot } else { Prot::Rw },
                kind: match self.below(8) {
                    0 => Kind::Shared,
                    1 => Kind::File {
                        file: self.below(4) as u8,
                        off: self.below(70),
                    },
                    2 => Kind::SFile {
                        file: self.below(4) as u8,
                        off: self.below(8),
                    },
                    _ => Kind::Anon,
                },
                replace: self.below(3) == 0,
            },
            3 => Op::Munmap { pid, addr, len },
            4 | 5 => Op::Mprotect {
                pid,
                addr,
                len,
                prot,
            },
            6 | 7 => Op::Mremap {
                pid,
                old: addr,
                old_len: len,
                new_len: 1 + self.below(6),
                to: (self.below(2) == 0).then(|| MremapTo {
                    new: 16 + self.below(16),
                    dontunmap: self.below(3) == 0,
                }),
            },
            8 => Op::Madvise {
                pid,
                addr,
                len,
                advice: Advice::ALL[self.below(5) as usize],
            },
            9 => Op::Fork { pid },
            10 if live.len() > 1 => Op::Exit { pid },
            11 | 12 => Op::Read { pid, addr },
            13..=16 => Op::Write {
                pid,
                addr,
                value: self.next(),
            },
            17 => Op::Swapout { pid, addr },
            18 => match self.below(3) {
                0 => Op::Reclaim,
                1 => Op::FailAlloc {
                    n: 1 + self.below(3),
                },
                _ => Op::Migrate { pid, addr },
            },
            _ => Op::Read { pid, addr },
        }
    }
}

fn random_streams<R: Rmap>(make: impl Fn() -> R, name: &str) {
    for seed in 1..=300u64 {
        let mut g = Gen(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut m = Mmu::new(make());
        for i in 0..64 {
            let live = m.live_pids();
            if live.is_empty() || live.len() > 6 {
                break;
            }
            let op = g.op(&live);
            let what = format!("{name} seed {seed} op {i} {op:?}");
            m.apply(&op).unwrap_or_else(|v| panic!("{what}: {v:?}"));
            check(&m, &what);
        }
        teardown(&mut m, &format!("{name} seed {seed}"));
    }
}

#[test]
fn random_streams_single_list_2004() {
    random_streams(SingleList2004::new, "single-list-2004");
}

#[test]
fn random_streams_chain_2010_every_era() {
    for era in Era::ALL {
        random_streams(|| Chain2010::new(era), era.as_str());
    }
}

#[test]
fn random_streams_prealloc_2026() {
    random_streams(Prealloc2026::new, "prealloc-2026");
}
