//! The emulated MMU driving the real designs through the public API: the
//! live-kernel merge cases (6.18 layouts for chain-2010's 2022 era and
//! prealloc-2026, invariants for every design and era), and
//! seeded random streams with the oracle's per-op invariants (every
//! anonymous PTE found by the design's walk, its mapping alive, the
//! design's self-check) and the leak check after every process exits.

use rmaplab_impls::designs::chain_2010::{Chain2010, Era};
use rmaplab_impls::designs::prealloc_2026::Prealloc2026;
use rmaplab_impls::designs::single_list_2004::SingleList2004;
use rmaplab_impls::mmu::Mmu;
use rmaplab_impls::op::{Advice, Kind, MremapTo, Op, Outcome, Pid, Prot};
use rmaplab_impls::rmap::Rmap;

fn parse(line: &str) -> Op {
    let w: Vec<&str> = line.split_whitespace().collect();
    let pid = |s: &str| Pid(s.trim_start_matches('p').parse().unwrap());
    let n = |s: &str| s.parse::<u64>().unwrap();
    let prot = |s: &str| match s {
        "none" => Prot::None,
        "r" => Prot::R,
        "rw" => Prot::Rw,
        "rx" => Prot::Rx,
        _ => Prot::Rwx,
    };
    match w[0] {
        "mmap" => Op::Mmap {
            pid: pid(w[1]),
            addr: n(w[2]),
            len: n(w[3]),
            prot: prot(w[4]),
            kind: Kind::Anon,
            replace: false,
        },
        "munmap" => Op::Munmap {
            pid: pid(w[1]),
            addr: n(w[2]),
            len: n(w[3]),
        },
        "mprotect" => Op::Mprotect {
            pid: pid(w[1]),
            addr: n(w[2]),
            len: n(w[3]),
            prot: prot(w[4]),
        },
        "mremap" => Op::Mremap {
            pid: pid(w[1]),
            old: n(w[2]),
            old_len: n(w[3]),
            new_len: n(w[4]),
            to: (w.get(5) == Some(&"to")).then(|| MremapTo {
                new: n(w[6]),
                dontunmap: w.get(7) == Some(&"dontunmap"),
            }),
        },
        "dontneed" => Op::Madvise {
            pid: pid(w[1]),
            addr: n(w[2]),
            len: n(w[3]),
            advice: Advice::DontNeed,
        },
        "fork" => Op::Fork { pid: pid(w[1]) },
        "exit" => Op::Exit { pid: pid(w[1]) },
        "r" => Op::Read {
            pid: pid(w[1]),
            addr: n(w[2]),
        },
        "w" => Op::Write {
            pid: pid(w[1]),
            addr: n(w[2]),
            value: 7,
        },
        o => panic!("op {o}"),
    }
}

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

fn layout<R: Rmap>(m: &Mmu<R>, p: u32) -> String {
    m.state().procs[&Pid(p)]
        .vmas
        .iter()
        .map(|v| {
            if v.perms == "rw-p" {
                format!("{}-{}", v.start, v.end)
            } else {
                format!("{}-{}({})", v.start, v.end, v.perms)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn run<R: Rmap>(rmap: R, script: &str, p: u32) -> String {
    let mut m = Mmu::new(rmap);
    for line in script.split(';').map(str::trim) {
        let o = m.apply(&parse(line)).expect(line);
        assert!(matches!(o, Outcome::Ok | Outcome::Value(_)), "{line}: {o}");
        check(&m, line);
    }
    let l = layout(&m, p);
    teardown(&mut m, script);
    l
}

/// Cases where Linux 6.18 (and chain-2010's 2022 era, and prealloc-2026)
/// lays VMAs out by the singular-chain rules of docs/linux-6.18.md §4.5.
const CASES_6_18: &[(&str, &str, u32, &str)] = &[
    (
        "N4",
        "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; w p0 8; mmap p0 4 4 rw",
        0,
        "0-8 8-12",
    ),
    (
        "N10",
        "mmap p0 0 4 rw; w p0 0; fork p0; mmap p1 4 4 rw; mmap p0 4 4 rw",
        1,
        "0-4 4-8",
    ),
    (
        "N15",
        "mmap p0 0 4 rw; w p0 0; fork p0; mmap p1 8 4 rw; w p1 8; mmap p1 4 4 rw",
        1,
        "0-4 4-12",
    ),
    (
        "S4",
        "mmap p0 0 8 rw; mprotect p0 2 2 r; w p0 0; w p0 5; mprotect p0 2 2 rw",
        0,
        "0-4 4-8",
    ),
    (
        "S5",
        "mmap p0 0 8 rw; mprotect p0 2 2 rwx; w p0 2; mprotect p0 2 2 rw",
        0,
        "0-8",
    ),
    (
        "S12",
        "mmap p0 0 4 rw; w p0 0; mprotect p0 2 2 r; fork p0; mprotect p1 2 2 rw",
        1,
        "0-2 2-4",
    ),
    (
        "R3",
        "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; mremap p0 8 4 4 to 4",
        0,
        "0-8",
    ),
    (
        "R4",
        "mmap p0 0 4 rw; mmap p0 8 4 rw; w p0 8; mremap p0 8 4 4 to 4",
        0,
        "0-4 4-8",
    ),
    (
        "R6",
        "mmap p0 0 8 rw; w p0 0; w p0 5; mremap p0 4 4 4 to 20; mremap p0 20 4 4 to 4",
        0,
        "0-8",
    ),
    (
        "R8",
        "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; mremap p0 0 4 8",
        0,
        "0-12",
    ),
    (
        "copied_from",
        "mmap p0 0 8 rw; w p0 4; w p0 5; mremap p0 4 4 4 to 20; munmap p0 0 4; \
         mmap p0 0 4 rw; mremap p0 20 4 4 to 4 dontunmap",
        0,
        "0-8 20-24",
    ),
    (
        "R11b",
        "mmap p0 0 4 rw; mremap p0 0 4 4 to 4 dontunmap",
        0,
        "0-8",
    ),
    (
        "F3",
        "mmap p0 0 4 rw; w p0 0; mmap p0 8 4 rw; w p0 8; mmap p0 4 4 rwx; w p0 4; \
         mprotect p0 4 4 rw",
        0,
        "0-4 4-12",
    ),
    (
        "F5",
        "mmap p0 0 4 rw; w p0 0; fork p0; mmap p1 4 4 rwx; w p1 4; mprotect p1 4 4 rw",
        1,
        "0-4 4-8",
    ),
    (
        "A1",
        "mmap p0 0 4 rw; w p0 0; dontneed p0 0 4; mremap p0 0 4 4 to 20; mmap p0 24 4 rw",
        0,
        "20-24 24-28",
    ),
    (
        "U2",
        "mmap p0 0 12 rw; w p0 0; w p0 11; munmap p0 4 4; fork p0; mmap p1 4 4 rw",
        1,
        "0-4 4-8 8-12",
    ),
];

#[test]
fn chain_2010_era_2022_and_prealloc_2026_lay_out_as_linux_6_18() {
    for (id, script, p, want) in CASES_6_18 {
        assert_eq!(
            run(Chain2010::new(Era::E2022), script, *p),
            *want,
            "chain-2010 {id}: {script}"
        );
        assert_eq!(
            run(Prealloc2026::new(), script, *p),
            *want,
            "prealloc-2026 {id}: {script}"
        );
    }
}

#[test]
fn every_design_keeps_the_invariants_on_the_live_kernel_cases() {
    for (_, script, p, _) in CASES_6_18 {
        run(SingleList2004::new(), script, *p);
        for era in Era::ALL {
            run(Chain2010::new(era), script, *p);
        }
        run(Prealloc2026::new(), script, *p);
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
