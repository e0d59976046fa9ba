//! The live-kernel backend against the measurements of
//! `docs/linux-6.18.md`: each test is one of its experiments
//! written in the op language, asserting what the note measured on Linux
//! 6.18. Every test prints a line and passes when the host cannot serve
//! (not root, PFNs hidden, not Linux/x86_64): the backend needs the real
//! kernel, CI machines without it still run everything else.
//!
//! Frame identities are PFNs, valid within one dump (§12.5); comparing them
//! across dumps is only done where the note's claim makes it sound: a page
//! reused in place keeps its PFN, and a copy made while the old frame is
//! still mapped elsewhere cannot have the old frame's PFN.

use std::collections::BTreeMap;

use rmaplab::kernel::{KernelRun, bench_stream, host_can_serve, run_on_kernel};
use rmaplab::oracle::model::Model;
use rmaplab_impls::state::{FrameRef, MapKind, State};
use rmaplab_ops::parse::parse;
use rmaplab_ops::{Errno, Outcome, Pid};

/// Runs `text` on the kernel, or `None` (after saying why) when the host
/// cannot serve.
fn run(text: &str) -> Option<KernelRun> {
    if let Err(e) = host_can_serve() {
        println!("skipped, the host cannot run the live-kernel backend: {e}");
        return None;
    }
    let stream = parse(text).unwrap_or_else(|e| panic!("bad test stream: {e}"));
    let run = run_on_kernel(&stream.ops).unwrap_or_else(|e| panic!("kernel run failed: {e}"));
    assert_eq!(run.outcomes.len(), stream.ops.len());
    Some(run)
}

fn p(n: u32) -> Pid {
    Pid(n)
}

/// `0-4:rw-p 4-8:r--p` (file kinds add `:file:F@OFF`).
fn layout(s: &State, pid: u32) -> String {
    s.procs[&p(pid)]
        .vmas
        .iter()
        .map(|v| match v.kind {
            MapKind::Anon => format!("{}-{}:{}", v.start, v.end, v.perms),
            k => format!(
                "{}-{}:{}:{}@{}",
                v.start,
                v.end,
                v.perms,
                k.name(),
                v.offset
            ),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Just the ranges: `0-4 4-8`.
fn ranges(s: &State, pid: u32) -> String {
    s.procs[&p(pid)]
        .vmas
        .iter()
        .map(|v| format!("{}-{}", v.start, v.end))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The frame and map count at `pid:page`, `None` if not present.
fn at(s: &State, pid: u32, page: u64) -> Option<(FrameRef, u32)> {
    s.procs[&p(pid)].pages.get(&page).copied()
}

/// The PFN identity at `pid:page` (panics for none or the zero page).
fn frame(s: &State, pid: u32, page: u64) -> u64 {
    match at(s, pid, page) {
        Some((FrameRef::Frame(f), _)) => f,
        other => panic!("p{pid}:{page} is {other:?}, not a frame"),
    }
}

fn count(s: &State, pid: u32, page: u64) -> u32 {
    at(s, pid, page)
        .unwrap_or_else(|| panic!("p{pid}:{page} not present"))
        .1
}

fn present(s: &State, pid: u32) -> Vec<u64> {
    s.procs[&p(pid)].pages.keys().copied().collect()
}

/// Cells in the note's notation with the reports' classes (`Z`, `f0`, ... in
/// order of first appearance, processes by number, pages ascending):
/// `{pid: "0:f0/2 1:Z/0"}`.
fn cells(s: &State) -> BTreeMap<u32, String> {
    let mut classes: BTreeMap<u64, usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (pid, ps) in &s.procs {
        let mut line = Vec::new();
        for (page, (f, c)) in &ps.pages {
            let class = match f {
                FrameRef::Zero => "Z".to_string(),
                FrameRef::Frame(id) => {
                    let n = classes.len();
                    format!("f{}", classes.entry(*id).or_insert(n))
                }
            };
            line.push(format!("{page}:{class}/{c}"));
        }
        out.insert(pid.0, line.join(" "));
    }
    out
}

const EINVAL: Outcome = Outcome::Err(Errno::EINVAL);
const ENOMEM: Outcome = Outcome::Err(Errno::ENOMEM);
const EEXIST: Outcome = Outcome::Err(Errno::EEXIST);
const EFAULT: Outcome = Outcome::Err(Errno::EFAULT);
const ESRCH: Outcome = Outcome::Err(Errno::ESRCH);

#[test]
fn controller_answers_window_pid_and_emulator_only_ops() {
    let Some(r) = run("
        mmap p0 250 10 rw anon
        read p0 256
        write p0 300 1
        mremap p0 0 1 300
        mprotect p0 256 0 r
        write p7 0 1
        swapout p0 0
        reclaim
        migrate p0 0
        fail-alloc 1
        fork p0
        exit p1
        read p1 0
        mmap p0 0 0 rw anon
        munmap p0 0 0
        mprotect p0 0 0 r
        dump
    ") else {
        return;
    };
    use Outcome::*;
    assert_eq!(
        r.outcomes,
        vec![
            EINVAL,
            EINVAL,
            EINVAL,
            EINVAL,
            EINVAL,
            ESRCH,
            Unsupported,
            Unsupported,
            Unsupported,
            Unsupported,
            Ok,
            Ok,
            ESRCH,
            EINVAL,
            EINVAL,
            Ok,
            Ok,
        ]
    );
    // One dump per `dump`; the stream ends with one, so no extra final one.
    assert_eq!(r.dumps.len(), 1);
    assert_eq!(
        r.dumps[0].procs.keys().copied().collect::<Vec<_>>(),
        vec![p(0)]
    );
    let Some(r) = run("mmap p0 0 1 rw anon\ndump\nwrite p0 0 1") else {
        return;
    };
    assert_eq!(r.dumps.len(), 2, "the state after the last op comes last");
    assert_eq!(present(&r.dumps[0], 0), Vec::<u64>::new());
    assert_eq!(present(&r.dumps[1], 0), vec![0]);
}

/// §3.1, E1: a read maps the zero page (count 0); a fork of a VMA holding
/// only zero pages (no anon_vma) copies no PTEs; once the VMA has an
/// anon_vma, zero-page PTEs are copied too.
#[test]
fn e1_zero_page() {
    let Some(r) = run("
        mmap p0 0 4 rw anon
        read p0 0
        read p0 1
        dump
        fork p0
        dump
        read p1 0
        write p1 1 9
        dump
        write p0 0 1
        read p0 2
        fork p0
        dump
    ") else {
        return;
    };
    assert_eq!(r.outcomes[1], Outcome::Value(0));
    let d = &r.dumps;
    assert_eq!(cells(&d[0])[&0], "0:Z/0 1:Z/0");
    assert_eq!(cells(&d[1])[&0], "0:Z/0 1:Z/0");
    assert_eq!(cells(&d[1])[&1], "", "no PTEs copied");
    assert_eq!(layout(&d[1], 1), "0-4:rw-p");
    assert_eq!(cells(&d[2])[&1], "0:Z/0 1:f0/1");
    let c = cells(&d[3]);
    assert_eq!(c[&0], "0:f0/2 1:Z/0 2:Z/0");
    assert_eq!(c[&2], "0:f0/2 1:Z/0 2:Z/0", "zero-page PTEs are copied");
}

/// §3.2, E3: COW reuse cases A (child first, the parent reuses), C (parent
/// first, the child reuses), a read after fork, and B (after the child's
/// exit the parent reuses).
#[test]
fn e3_cow_reuse() {
    let Some(r) = run("
        mmap p0 0 6 rw anon
        write p0 0 10
        write p0 1 11
        write p0 2 12
        write p0 3 13
        write p0 4 14
        write p0 5 15
        fork p0
        dump
        write p1 0 20
        dump
        write p0 0 30
        dump
        write p0 1 31
        dump
        write p1 1 21
        dump
        read p1 2
        dump
        exit p1
        dump
        write p0 2 32
        dump
        read p0 0
        read p0 1
        read p0 2
        read p0 3
    ") else {
        return;
    };
    let d = &r.dumps;
    // After the fork every page is shared: a..f with count 2 in both.
    let c = cells(&d[0]);
    assert_eq!(c[&0], "0:f0/2 1:f1/2 2:f2/2 3:f3/2 4:f4/2 5:f5/2");
    assert_eq!(c[&1], c[&0]);
    let orig: Vec<u64> = (0..6).map(|pg| frame(&d[0], 0, pg)).collect();
    // A: the child's write copies; the parent's page drops to 1 ...
    assert_ne!(frame(&d[1], 1, 0), orig[0]);
    assert_eq!(count(&d[1], 1, 0), 1);
    assert_eq!((frame(&d[1], 0, 0), count(&d[1], 0, 0)), (orig[0], 1));
    // ... and the parent's write reuses it in place.
    assert_eq!((frame(&d[2], 0, 0), count(&d[2], 0, 0)), (orig[0], 1));
    // C: the parent writes first (copy), the child keeps b and reuses it.
    assert_ne!(frame(&d[3], 0, 1), orig[1]);
    assert_eq!((frame(&d[3], 1, 1), count(&d[3], 1, 1)), (orig[1], 1));
    assert_eq!((frame(&d[4], 1, 1), count(&d[4], 1, 1)), (orig[1], 1));
    // A read after fork changes nothing (the PTE is present, read-only).
    assert_eq!(r.outcomes[17], Outcome::Value(12));
    assert_eq!(d[5], d[4]);
    assert_eq!((frame(&d[5], 1, 2), count(&d[5], 1, 2)), (orig[2], 2));
    // B: after the child's exit every page is the parent's alone ...
    assert_eq!(d[6].procs.len(), 1);
    assert!(d[6].procs[&p(0)].pages.values().all(|&(_, c)| c == 1));
    // ... and its write reuses the page.
    assert_eq!((frame(&d[7], 0, 2), count(&d[7], 0, 2)), (orig[2], 1));
    let reads: Vec<Outcome> = r.outcomes[r.outcomes.len() - 4..].to_vec();
    assert_eq!(
        reads,
        [30, 31, 32, 13].map(Outcome::Value).to_vec(),
        "the parent sees its own writes"
    );
}

/// §3.2, E9: three sharers; the last mapper reuses; a grandchild.
#[test]
fn e9_three_sharers() {
    let Some(r) = run("
        mmap p0 0 3 rw anon
        write p0 0 1
        write p0 1 2
        write p0 2 3
        fork p0
        fork p0
        dump
        write p1 0 10
        dump
        write p0 0 20
        dump
        write p2 0 30
        dump
        fork p1
        dump
        exit p1
        dump
        write p3 0 40
        write p3 1 41
        dump
    ") else {
        return;
    };
    let d = &r.dumps;
    let a = frame(&d[0], 0, 0);
    let b = frame(&d[0], 0, 1);
    for pid in 0..3 {
        assert_eq!((frame(&d[0], pid, 0), count(&d[0], pid, 0)), (a, 3));
    }
    // P1 copies, a drops to 2.
    assert_ne!(frame(&d[1], 1, 0), a);
    assert_eq!(count(&d[1], 0, 0), 2);
    // P0 copies, a drops to 1 (P2 alone).
    assert_ne!(frame(&d[2], 0, 0), a);
    assert_eq!((frame(&d[2], 2, 0), count(&d[2], 2, 0)), (a, 1));
    // P2, the last mapper, reuses a.
    assert_eq!((frame(&d[3], 2, 0), count(&d[3], 2, 0)), (a, 1));
    // P1 (owning d:1) forks P3: d:2 shared; b is mapped 4 times.
    let dd = frame(&d[4], 1, 0);
    assert_eq!((frame(&d[4], 3, 0), count(&d[4], 3, 0)), (dd, 2));
    assert_eq!(count(&d[4], 3, 1), 4);
    // P1 exits: d:1 in P3, b:3.
    assert_eq!((frame(&d[5], 3, 0), count(&d[5], 3, 0)), (dd, 1));
    assert_eq!(count(&d[5], 3, 1), 3);
    // P3's write to page 0 reuses d; to page 1 copies b (still 3 mappers).
    assert_eq!((frame(&d[6], 3, 0), count(&d[6], 3, 0)), (dd, 1));
    assert_ne!(frame(&d[6], 3, 1), b);
    assert_eq!(count(&d[6], 3, 1), 1);
    assert_eq!((frame(&d[6], 0, 1), count(&d[6], 0, 1)), (b, 2));
}

/// §4.1 N4 (faulted neighbours with different anon_vmas: merge with prev
/// only) and N5 (unfaulted: three-way merge).
#[test]
fn n4_n5_merge_on_mmap() {
    let Some(r) = run("
        mmap p0 0 4 rw anon
        write p0 0 1
        mmap p0 8 4 rw anon
        write p0 8 1
        mmap p0 4 4 rw anon
        dump
        mmap p0 20 4 rw anon
        mmap p0 28 4 rw anon
        mmap p0 24 4 rw anon
        dump
    ") else {
        return;
    };
    assert_eq!(ranges(&r.dumps[0], 0), "0-8 8-12");
    assert_eq!(ranges(&r.dumps[1], 0), "0-8 8-12 20-32");
}

/// §4.1 N10: after a fork the child's VMA has a non-singular chain and does
/// not merge; the parent's does.
#[test]
fn n10_child_does_not_merge() {
    let Some(r) = run("
        mmap p0 0 4 rw anon
        write p0 0 1
        fork p0
        mmap p1 4 4 rw anon
        mmap p0 4 4 rw anon
        dump
    ") else {
        return;
    };
    assert_eq!(ranges(&r.dumps[0], 1), "0-4 4-8");
    assert_eq!(ranges(&r.dumps[0], 0), "0-8");
}

/// §5 / Appendix B: partial mprotect and DONTNEED over a hole (ENOMEM with
/// the part before the hole changed), EEXIST, and MAP_FIXED replace (§13).
#[test]
fn partial_effects_eexist_and_replace() {
    let Some(r) = run("
        mmap p0 0 4 rw anon
        mprotect p0 2 4 r
        mmap p0 10 4 rw anon
        write p0 10 1
        write p0 13 2
        madvise p0 12 4 dontneed
        mmap p0 11 4 rw anon
        dump
        mmap p0 20 8 rw anon
        write p0 20 1
        write p0 22 2
        write p0 23 3
        write p0 27 4
        mmap p0 22 2 rw anon replace
        dump
        mmap p0 25 2 r anon replace
        dump
        read p0 22
    ") else {
        return;
    };
    use Outcome::Ok;
    assert_eq!(r.outcomes[..7], [Ok, ENOMEM, Ok, Ok, Ok, ENOMEM, EEXIST]);
    let d = &r.dumps;
    assert_eq!(layout(&d[0], 0), "0-2:rw-p 2-4:r--p 10-14:rw-p");
    assert_eq!(present(&d[0], 0), vec![10], "page 13 zapped");
    // Replace in a single process: merges back, pages 22-23 gone.
    assert_eq!(ranges(&d[1], 0), "0-2 2-4 10-14 20-28");
    assert_eq!(present(&d[1], 0), vec![10, 20, 27]);
    // A different prot splits.
    assert_eq!(
        layout(&d[2], 0),
        "0-2:rw-p 2-4:r--p 10-14:rw-p 20-25:rw-p 25-27:r--p 27-28:rw-p"
    );
    assert_eq!(r.outcomes[17], Outcome::Value(0));
}

/// §5: a multi-VMA `mremap` move keeps the gaps and the frames; a range
/// starting in a gap is EFAULT; overlapping ranges are EINVAL; DONTUNMAP
/// leaves the old VMA empty.
#[test]
fn multi_vma_mremap_move() {
    let Some(r) = run("
        mmap p0 20 2 rw anon
        mmap p0 23 2 r anon
        mmap p0 25 1 rw shared
        write p0 20 7
        write p0 25 8
        dump
        mremap p0 20 6 6 to 40
        dump
        mremap p0 42 3 3 to 60
        mremap p0 40 6 6 to 43
        mremap p0 40 2 2 to 80 dontunmap
        dump
        read p0 80
        read p0 40
        read p0 45
        mremap p0 40 2 4 to 90
    ") else {
        return;
    };
    use Outcome::*;
    assert_eq!(
        r.outcomes[5..],
        [
            Ok,
            Ok,
            Ok,
            EFAULT,
            EINVAL,
            Ok,
            Ok,
            Value(7),
            Value(0),
            Value(8),
            Ok
        ]
    );
    let d = &r.dumps;
    assert_eq!(ranges(&d[1], 0), "40-42 43-45 45-46");
    assert_eq!(frame(&d[1], 0, 40), frame(&d[0], 0, 20));
    assert_eq!(frame(&d[1], 0, 45), frame(&d[0], 0, 25));
    assert_eq!(d[1].procs[&p(0)].vmas[2].kind, MapKind::Shared);
    assert_eq!(ranges(&d[2], 0), "40-42 43-45 45-46 80-82");
    assert_eq!(present(&d[2], 0), vec![45, 80]);
}

/// §6: MAP_PRIVATE tmpfs file, fault-around on the aligned 16-page virtual
/// block (clipped to the VMA and EOF), page-cache frames shared by offset,
/// a write copies into a private page; access past EOF is SIGBUS.
#[test]
fn private_file_fault_around_and_cow() {
    let Some(r) = run("
        mmap p0 0 40 r file:0:0
        read p0 20
        mmap p0 103 37 r file:0:3
        read p0 120
        dump
        mmap p0 200 6 rw file:1:0
        read p0 200
        write p0 200 5
        dump
        read p0 200
        read p0 201
        fork p0
        dump
        mmap p0 240 8 rw file:2:60
        read p0 240
        dump
        read p0 243
        read p0 244
        write p0 245 1
    ") else {
        return;
    };
    use Outcome::*;
    let o = &r.outcomes;
    assert_eq!(o[1], Value(20));
    assert_eq!(o[3], Value(20), "page 120 is file page 20");
    assert_eq!(o[9..11], [Value(5), Value((1 << 32) | 1)]);
    assert_eq!(o[16..], [Value((2 << 32) | 63), Sigbus, Sigbus]);
    let d = &r.dumps;
    assert_eq!(layout(&d[0], 0), "0-40:r--p:file:0@0 103-140:r--p:file:0@3");
    let mut want: Vec<u64> = (16..32).collect();
    want.extend(112..128);
    assert_eq!(present(&d[0], 0), want);
    // Page 120 of the second VMA is file page 20, the frame of page 20.
    assert_eq!(frame(&d[0], 0, 120), frame(&d[0], 0, 20));
    assert_eq!(count(&d[0], 0, 20), 2);
    // The read faulted 200..205 around; the write replaced 200 by a copy.
    assert_eq!(count(&d[1], 0, 200), 1);
    assert_eq!(count(&d[1], 0, 201), 1);
    assert_eq!(present(&d[1], 0)[32..], [200, 201, 202, 203, 204, 205]);
    // The file VMA has an anon_vma: fork copies every PTE of it, but not
    // those of the read-only file VMAs (never written, no anon_vma).
    assert_eq!(present(&d[2], 1), vec![200, 201, 202, 203, 204, 205]);
    assert_eq!(count(&d[2], 1, 200), 2);
    assert_eq!(count(&d[2], 1, 201), 2);
    // EOF: fault-around stops at the file's end (offset 64 = page 244).
    assert_eq!(present(&d[3], 0)[38..], [240, 241, 242, 243]);
}

/// §7: MAP_SHARED anonymous: no PTEs copied by fork, fault-around over
/// the object's present pages, never COW; DONTNEED keeps the page.
#[test]
fn shared_anon_basics() {
    let Some(r) = run("
        mmap p0 0 20 rw shared
        write p0 0 1
        write p0 1 2
        write p0 2 3
        write p0 17 4
        fork p0
        dump
        read p1 1
        dump
        write p1 0 9
        read p0 0
        write p1 5 6
        read p0 5
        madvise p0 0 1 dontneed
        dump
        read p0 0
        dump
        mmap p0 30 2 rw shared
        mmap p0 32 2 rw shared
        dump
    ") else {
        return;
    };
    use Outcome::*;
    let o = &r.outcomes;
    assert_eq!(o[7], Value(2));
    assert_eq!(o[10], Value(9), "never COW");
    assert_eq!(o[12], Value(6));
    assert_eq!(o[15], Value(9));
    let d = &r.dumps;
    assert_eq!(layout(&d[0], 0), "0-20:rw-s:shared@0");
    assert_eq!(present(&d[0], 0), vec![0, 1, 2, 17]);
    assert_eq!(present(&d[0], 1), Vec::<u64>::new());
    // Fault-around maps the object's pages 0-2 (17 is another block).
    assert_eq!(present(&d[1], 1), vec![0, 1, 2]);
    for pg in 0..3 {
        assert_eq!(frame(&d[1], 1, pg), frame(&d[1], 0, pg));
        assert_eq!(count(&d[1], 1, pg), 2);
    }
    assert_eq!(count(&d[2], 1, 0), 1);
    assert!(at(&d[2], 0, 0).is_none());
    assert_eq!(frame(&d[3], 0, 0), frame(&d[3], 1, 0), "same page again");
    assert_eq!(count(&d[3], 0, 0), 2);
    // Each shared mmap is its own object: no merge.
    assert_eq!(ranges(&d[4], 0), "0-20 30-32 32-34");
}

/// §13: SIGBUS past EOF of a file (private and shared) and past the end of a
/// shared-anonymous object grown by mremap; SIGSEGV for no VMA or no
/// permission.
#[test]
fn sigbus_and_segv() {
    let Some(r) = run("
        mmap p0 0 8 rw file:3:60
        read p0 3
        read p0 4
        write p0 5 1
        mmap p0 16 8 rw sfile:3:60
        write p0 19 7
        read p0 20
        mmap p0 32 2 rw shared
        mremap p0 32 2 4
        write p0 33 1
        write p0 34 1
        read p0 100
        mmap p0 40 1 r anon
        write p0 40 1
        mmap p0 41 1 none anon
        read p0 41
        read p0 3
    ") else {
        return;
    };
    use Outcome::*;
    assert_eq!(
        r.outcomes,
        vec![
            Ok,
            Value((3 << 32) | 63),
            Sigbus,
            Sigbus,
            Ok,
            Ok,
            Sigbus,
            Ok,
            Ok,
            Ok,
            Sigbus,
            Segv,
            Ok,
            Segv,
            Ok,
            Segv,
            Value(7),
        ]
    );
}

/// madvise DONTFORK / WIPEONFORK act at the next fork.
#[test]
fn dontfork_and_wipeonfork() {
    let Some(r) = run("
        mmap p0 0 2 rw anon
        write p0 0 5
        write p0 1 6
        madvise p0 0 1 wipeonfork
        madvise p0 1 1 dontfork
        fork p0
        read p1 0
        read p1 1
        dump
        mmap p0 4 1 rw shared
        madvise p0 4 1 wipeonfork
    ") else {
        return;
    };
    use Outcome::*;
    assert_eq!(r.outcomes[6..8], [Value(0), Segv]);
    assert_eq!(ranges(&r.dumps[0], 1), "0-1");
    assert_eq!(r.outcomes[10], EINVAL);
}

/// The outcomes of generated streams (the benchmark's) equal the
/// reference model's; files are restored between streams (every stream
/// reads the initial file contents).
#[test]
fn outcomes_match_the_reference_model() {
    if let Err(e) = host_can_serve() {
        println!("skipped, the host cannot run the live-kernel backend: {e}");
        return;
    }
    let shared_write = parse("mmap p0 0 1 rw sfile:2:5\nread p0 0\nwrite p0 0 99\nread p0 0")
        .unwrap()
        .ops;
    for seed in 0..12 {
        let ops = if seed % 3 == 0 {
            shared_write.clone()
        } else {
            bench_stream(seed)
        };
        let r = run_on_kernel(&ops).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let mut model = Model::new();
        let want: Vec<Outcome> = ops.iter().map(|op| model.step(op, None)).collect();
        let want: Vec<Outcome> = want
            .into_iter()
            .zip(&ops)
            .map(|(o, op)| {
                if op.emulator_only() {
                    Outcome::Unsupported
                } else {
                    o
                }
            })
            .collect();
        assert_eq!(r.outcomes, want, "seed {seed}");
    }
}

#[test]
fn elf_is_static_reads_pt_interp() {
    use rmaplab::kernel::elf_is_static;
    // This test binary is dynamically linked (cargo's default on gnu).
    let me = std::env::current_exe().unwrap();
    assert_eq!(elf_is_static(&me), Some(false));
    // Not ELF at all.
    let dir = std::env::temp_dir().join(format!("rmaplab-elf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("x.txt");
    std::fs::write(&text, "not an ELF file").unwrap();
    assert_eq!(elf_is_static(&text), None);
    // A 64-bit ELF header with no program headers has no interpreter.
    let mut elf = vec![0u8; 64];
    elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
    let bare = dir.join("bare");
    std::fs::write(&bare, &elf).unwrap();
    assert_eq!(elf_is_static(&bare), Some(true));
    // Truncated program header table: unreadable, not "static".
    elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
    elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
    std::fs::write(&bare, &elf).unwrap();
    assert_eq!(elf_is_static(&bare), None);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A kernel run written as corpus-header lines (what `kernel --fuzz` adds
/// to a mismatch file) is accepted by the corpus checker when the emulator
/// agrees, and fails it when one measured line differs.
#[test]
fn measured_header_lines_make_a_corpus_file() {
    let text = "mmap p0 0 8 rw anon\nwrite p0 0 1\nfork p0\nwrite p1 0 2\ndump\nmunmap p0 2 2\n";
    let Some(k) = run(text) else { return };
    let stream = rmaplab_ops::parse::parse(text).unwrap();
    let header = k.header_lines(&stream);
    assert!(
        header.iter().any(|l| l.starts_with("dump 1: p1 vmas ")),
        "{header:?}"
    );
    assert!(
        header.iter().any(|l| l.starts_with("final: p0 vmas ")),
        "{header:?}"
    );
    let dir = std::env::temp_dir().join(format!("rmaplab-measured-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.ops");
    std::fs::write(
        &good,
        rmaplab_ops::print::print_with_header(&stream, &header),
    )
    .unwrap();
    rmaplab::run::corpus::check_corpus(&good).expect("the emulator agrees with the kernel here");
    let wrong: Vec<String> = header
        .iter()
        .map(|l| {
            if l.starts_with("final: p0 vmas ") {
                "final: p0 vmas 0-1".to_string()
            } else {
                l.clone()
            }
        })
        .collect();
    let bad = dir.join("bad.ops");
    std::fs::write(&bad, rmaplab_ops::print::print_with_header(&stream, &wrong)).unwrap();
    let err = check_corpus_err(&bad);
    assert!(err.contains("p0 vmas"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

fn check_corpus_err(path: &std::path::Path) -> String {
    rmaplab::run::corpus::check_corpus(path).expect_err("a measured line differs")
}
