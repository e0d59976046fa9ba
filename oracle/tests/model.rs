//! The reference model, rule by rule (ops built with the `Op` enum).

use rmaplab::oracle::model::{Layout, Model};
use rmaplab_impls::state::{MapKind, VmaLine};
use rmaplab_ops::{Advice, Errno, Kind, MremapTo, Op, Outcome, Pid, Prot};

const P0: Pid = Pid(0);
const P1: Pid = Pid(1);
const P2: Pid = Pid(2);

const OK: Outcome = Outcome::Ok;
const SEGV: Outcome = Outcome::Segv;
const SIGBUS: Outcome = Outcome::Sigbus;
const EINVAL: Outcome = Outcome::Err(Errno::EINVAL);
const ENOMEM: Outcome = Outcome::Err(Errno::ENOMEM);
const EEXIST: Outcome = Outcome::Err(Errno::EEXIST);
const EFAULT: Outcome = Outcome::Err(Errno::EFAULT);
const ESRCH: Outcome = Outcome::Err(Errno::ESRCH);

fn file_value(f: u64, off: u64) -> u64 {
    (f << 32) | off
}

fn mmap(pid: Pid, addr: u64, len: u64, prot: Prot, kind: Kind) -> Op {
    Op::Mmap {
        pid,
        addr,
        len,
        prot,
        kind,
        replace: false,
    }
}

fn mmap_replace(pid: Pid, addr: u64, len: u64, prot: Prot, kind: Kind) -> Op {
    Op::Mmap {
        pid,
        addr,
        len,
        prot,
        kind,
        replace: true,
    }
}

fn anon(pid: Pid, addr: u64, len: u64) -> Op {
    mmap(pid, addr, len, Prot::Rw, Kind::Anon)
}

fn munmap(pid: Pid, addr: u64, len: u64) -> Op {
    Op::Munmap { pid, addr, len }
}

fn mprotect(pid: Pid, addr: u64, len: u64, prot: Prot) -> Op {
    Op::Mprotect {
        pid,
        addr,
        len,
        prot,
    }
}

fn madvise(pid: Pid, addr: u64, len: u64, advice: Advice) -> Op {
    Op::Madvise {
        pid,
        addr,
        len,
        advice,
    }
}

fn mremap(pid: Pid, old: u64, old_len: u64, new_len: u64) -> Op {
    Op::Mremap {
        pid,
        old,
        old_len,
        new_len,
        to: None,
    }
}

fn mremap_to(pid: Pid, old: u64, old_len: u64, new_len: u64, new: u64, dontunmap: bool) -> Op {
    Op::Mremap {
        pid,
        old,
        old_len,
        new_len,
        to: Some(MremapTo { new, dontunmap }),
    }
}

fn fork(pid: Pid) -> Op {
    Op::Fork { pid }
}

fn exit(pid: Pid) -> Op {
    Op::Exit { pid }
}

fn read(pid: Pid, addr: u64) -> Op {
    Op::Read { pid, addr }
}

fn write(pid: Pid, addr: u64, value: u64) -> Op {
    Op::Write { pid, addr, value }
}

fn file(file: u8, off: u64) -> Kind {
    Kind::File { file, off }
}

fn sfile(file: u8, off: u64) -> Kind {
    Kind::SFile { file, off }
}

/// Run `ops` with the coarse layout, asserting each outcome.
fn run(m: &mut Model, steps: &[(Op, Outcome)]) {
    for (i, (op, want)) in steps.iter().enumerate() {
        let got = m.step(op, None);
        assert_eq!(got, *want, "step {i}: {op:?}");
    }
}

/// Run `ops` all expected to succeed.
fn ok(m: &mut Model, ops: &[Op]) {
    for op in ops {
        assert!(
            matches!(m.step(op, None), Outcome::Ok | Outcome::Value(_)),
            "{op:?} failed"
        );
    }
}

fn val(v: u64) -> Outcome {
    Outcome::Value(v)
}

/// `(start, end, perms, kind, offset)` of each VMA of `pid` in the coarse
/// layout.
fn vmas(m: &Model, pid: Pid) -> Vec<(u64, u64, String, MapKind, u64)> {
    m.state().procs[&pid]
        .vmas
        .iter()
        .map(|v: &VmaLine| (v.start, v.end, v.perms.clone(), v.kind, v.offset))
        .collect()
}

fn vma(
    start: u64,
    end: u64,
    perms: &str,
    kind: MapKind,
    offset: u64,
) -> (u64, u64, String, MapKind, u64) {
    (start, end, perms.to_string(), kind, offset)
}

/// A layout given as explicit VMAs (what a design's MMU would report).
struct Vmas(Vec<(Pid, u64, u64)>);

impl Layout for Vmas {
    fn vma_bounds(&self, pid: Pid, page: u64) -> Option<(u64, u64)> {
        self.0
            .iter()
            .find(|&&(p, s, e)| p == pid && s <= page && page < e)
            .map(|&(_, s, e)| (s, e))
    }
}

// ---------------------------------------------------------------------------
// Processes, ESRCH, window

#[test]
fn new_model_has_only_p0_with_nothing_mapped() {
    let m = Model::new();
    assert_eq!(m.live_pids(), vec![P0]);
    assert!(m.is_live(P0));
    assert!(!m.is_live(P1));
    assert!(vmas(&m, P0).is_empty());
    assert!(m.state().procs[&P0].pages.is_empty());
    assert_eq!(m.value_at(P0, 0), None);
}

#[test]
fn ops_on_dead_or_unknown_processes_are_esrch() {
    let mut m = Model::new();
    run(
        &mut m,
        &[
            (anon(P1, 0, 1), ESRCH),
            (fork(P0), OK),
            (exit(P1), OK),
            (anon(P1, 0, 1), ESRCH),
            (munmap(P1, 0, 1), ESRCH),
            (mprotect(P1, 0, 1, Prot::R), ESRCH),
            (madvise(P1, 0, 1, Advice::DontNeed), ESRCH),
            (mremap(P1, 0, 1, 2), ESRCH),
            (fork(P1), ESRCH),
            (exit(P1), ESRCH),
            (read(P1, 0), ESRCH),
            (write(P1, 0, 1), ESRCH),
            (Op::Swapout { pid: P1, addr: 0 }, ESRCH),
            (Op::Migrate { pid: P1, addr: 0 }, ESRCH),
        ],
    );
    assert_eq!(m.live_pids(), vec![P0]);
    assert_eq!(m.value_at(P1, 0), None);
}

#[test]
fn esrch_is_checked_before_einval() {
    let mut m = Model::new();
    run(
        &mut m,
        &[
            (anon(P2, 300, 0), ESRCH),
            (read(P2, 1000), ESRCH),
            (mremap(P2, 0, 0, 0), ESRCH),
        ],
    );
}

#[test]
fn ops_reaching_outside_the_window_are_einval_and_change_nothing() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 250, 6), write(P0, 250, 7)]);
    let before = m.state();
    run(
        &mut m,
        &[
            (anon(P0, 0, 257), EINVAL),
            (mmap_replace(P0, 250, 7, Prot::R, Kind::Anon), EINVAL),
            (anon(P0, 256, 1), EINVAL),
            (anon(P0, u64::MAX, 2), EINVAL),
            (munmap(P0, 250, 7), EINVAL),
            (mprotect(P0, 250, 7, Prot::R), EINVAL),
            (mprotect(P0, 256, 0, Prot::R), EINVAL),
            (madvise(P0, 250, 7, Advice::DontNeed), EINVAL),
            (mremap(P0, 250, 6, 7), EINVAL),
            (mremap(P0, 250, 7, 6), EINVAL),
            (mremap_to(P0, 250, 6, 6, 251, false), EINVAL),
            (mremap_to(P0, 250, 2, 2, 255, false), EINVAL),
            (read(P0, 256), EINVAL),
            (write(P0, 256, 1), EINVAL),
            (Op::Swapout { pid: P0, addr: 256 }, EINVAL),
            (Op::Migrate { pid: P0, addr: 256 }, EINVAL),
        ],
    );
    assert_eq!(m.state(), before);
    assert_eq!(m.value_at(P0, 250), Some(7));
}

#[test]
fn emulator_only_ops_and_dump_are_ok_and_change_nothing() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 0, 2), write(P0, 0, 5)]);
    let before = m.state();
    run(
        &mut m,
        &[
            (Op::Swapout { pid: P0, addr: 0 }, OK),
            (Op::Swapout { pid: P0, addr: 100 }, OK),
            (Op::Migrate { pid: P0, addr: 0 }, OK),
            (Op::Reclaim, OK),
            (Op::FailAlloc { n: 0 }, OK),
            (Op::Dump, OK),
            (read(P0, 0), val(5)),
        ],
    );
    assert_eq!(m.state(), before);
}

// ---------------------------------------------------------------------------
// mmap / munmap

#[test]
fn mmap_len_zero_is_einval() {
    let mut m = Model::new();
    run(
        &mut m,
        &[
            (anon(P0, 0, 0), EINVAL),
            (mmap_replace(P0, 0, 0, Prot::Rw, Kind::Shared), EINVAL),
        ],
    );
    assert!(vmas(&m, P0).is_empty());
}

#[test]
fn mmap_noreplace_overlap_is_eexist_and_changes_nothing() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 4, 4), write(P0, 4, 9)]);
    run(
        &mut m,
        &[
            (anon(P0, 0, 5), EEXIST),
            (mmap(P0, 7, 3, Prot::R, sfile(0, 0)), EEXIST),
            (anon(P0, 0, 4), OK),
            (anon(P0, 8, 2), OK),
            (read(P0, 4), val(9)),
        ],
    );
    assert_eq!(vmas(&m, P0), vec![vma(0, 10, "rw-p", MapKind::Anon, 0)]);
}

#[test]
fn mmap_replace_discards_what_was_there() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            anon(P0, 0, 8),
            write(P0, 2, 1),
            write(P0, 3, 2),
            write(P0, 4, 3),
        ],
    );
    run(
        &mut m,
        &[
            (mmap_replace(P0, 2, 2, Prot::R, Kind::Anon), OK),
            (read(P0, 2), val(0)),
            (read(P0, 3), val(0)),
            (read(P0, 4), val(3)),
            (write(P0, 2, 1), SEGV),
        ],
    );
    assert_eq!(
        vmas(&m, P0),
        vec![
            vma(0, 2, "rw-p", MapKind::Anon, 0),
            vma(2, 4, "r--p", MapKind::Anon, 0),
            vma(4, 8, "rw-p", MapKind::Anon, 0),
        ]
    );
}

#[test]
fn mmap_kinds_show_in_maps_with_their_offsets() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            mmap(P0, 0, 2, Prot::Rx, Kind::Anon),
            mmap(P0, 10, 3, Prot::R, file(1, 5)),
            mmap(P0, 13, 2, Prot::Rwx, sfile(2, 8)),
            mmap(P0, 20, 4, Prot::Rw, Kind::Shared),
            mmap(P0, 24, 4, Prot::Rw, Kind::Shared),
            mmap(P0, 30, 1, Prot::None, Kind::Anon),
        ],
    );
    assert_eq!(
        vmas(&m, P0),
        vec![
            vma(0, 2, "r-xp", MapKind::Anon, 0),
            vma(10, 13, "r--p", MapKind::File(1), 5),
            vma(13, 15, "rwxs", MapKind::SFile(2), 8),
            // Each shared anonymous mmap is its own object: no merge.
            vma(20, 24, "rw-s", MapKind::Shared, 0),
            vma(24, 28, "rw-s", MapKind::Shared, 0),
            vma(30, 31, "---p", MapKind::Anon, 0),
        ]
    );
    // The coarse layout is also the model's Layout.
    assert_eq!(m.vma_bounds(P0, 11), Some((10, 13)));
    assert_eq!(m.vma_bounds(P0, 5), None);
}

#[test]
fn munmap_len_zero_is_einval_and_holes_are_fine() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 2, 2), anon(P0, 6, 2), write(P0, 3, 1)]);
    run(
        &mut m,
        &[
            (munmap(P0, 2, 0), EINVAL),
            (munmap(P0, 100, 10), OK),
            (munmap(P0, 3, 4), OK),
            (read(P0, 2), val(0)),
            (read(P0, 3), SEGV),
            (read(P0, 6), SEGV),
            (read(P0, 7), val(0)),
        ],
    );
    assert_eq!(
        vmas(&m, P0),
        vec![
            vma(2, 3, "rw-p", MapKind::Anon, 0),
            vma(7, 8, "rw-p", MapKind::Anon, 0)
        ]
    );
}

// ---------------------------------------------------------------------------
// Access: values, segv, sigbus

#[test]
fn private_anon_reads_zero_until_written() {
    let mut m = Model::new();
    run(
        &mut m,
        &[
            (anon(P0, 0, 2), OK),
            (read(P0, 0), val(0)),
            (write(P0, 0, 0xdead), OK),
            (read(P0, 0), val(0xdead)),
            (read(P0, 1), val(0)),
        ],
    );
    assert_eq!(m.value_at(P0, 0), Some(0xdead));
}

#[test]
fn access_to_unmapped_page_is_segv() {
    let mut m = Model::new();
    run(&mut m, &[(read(P0, 5), SEGV), (write(P0, 5, 1), SEGV)]);
}

#[test]
fn protection_decides_segv() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            mmap(P0, 0, 1, Prot::None, Kind::Anon),
            mmap(P0, 1, 1, Prot::R, Kind::Anon),
            mmap(P0, 2, 1, Prot::Rx, Kind::Anon),
            mmap(P0, 3, 1, Prot::Rw, Kind::Anon),
            mmap(P0, 4, 1, Prot::Rwx, Kind::Anon),
            mmap(P0, 5, 1, Prot::None, file(0, 0)),
            mmap(P0, 6, 1, Prot::R, sfile(0, 0)),
        ],
    );
    run(
        &mut m,
        &[
            (read(P0, 0), SEGV),
            (write(P0, 0, 1), SEGV),
            (read(P0, 1), val(0)),
            (write(P0, 1, 1), SEGV),
            (read(P0, 2), val(0)),
            (write(P0, 2, 1), SEGV),
            (write(P0, 3, 1), OK),
            (write(P0, 4, 1), OK),
            (read(P0, 5), SEGV),
            (write(P0, 6, 1), SEGV),
            (read(P0, 6), val(file_value(0, 0))),
        ],
    );
    // value_at ignores protection.
    assert_eq!(m.value_at(P0, 0), Some(0));
}

#[test]
fn file_access_past_eof_is_sigbus_and_prot_segv_wins() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            mmap(P0, 0, 8, Prot::Rw, file(3, 60)),
            mmap(P0, 10, 2, Prot::Rw, sfile(1, 63)),
            mmap(P0, 20, 1, Prot::None, file(3, 64)),
        ],
    );
    run(
        &mut m,
        &[
            (read(P0, 3), val(file_value(3, 63))),
            (read(P0, 4), SIGBUS),
            (write(P0, 7, 1), SIGBUS),
            (read(P0, 7), SIGBUS),
            (write(P0, 11, 1), SIGBUS),
            (read(P0, 10), val(file_value(1, 63))),
            (read(P0, 20), SEGV),
        ],
    );
    assert_eq!(m.value_at(P0, 4), None);
    assert_eq!(m.value_at(P0, 3), Some(file_value(3, 63)));
}

#[test]
fn shared_file_writes_are_seen_by_every_process_and_private_file_until_it_copies() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            mmap(P0, 0, 4, Prot::Rw, file(2, 0)),
            fork(P0), // p1
            mmap(P1, 10, 4, Prot::Rw, sfile(2, 0)),
        ],
    );
    run(
        &mut m,
        &[
            (read(P0, 1), val(file_value(2, 1))),
            // A private copy in p0 at offset 2.
            (write(P0, 2, 100), OK),
            (read(P1, 2), val(file_value(2, 2))),
            // p1 writes the file through its shared mapping.
            (write(P1, 11, 111), OK),
            (write(P1, 12, 112), OK),
            // Private pages without a copy see the file's current content...
            (read(P0, 1), val(111)),
            (read(P1, 1), val(111)),
            // ...but a private copy hides it.
            (read(P0, 2), val(100)),
            (read(P1, 2), val(112)),
            // dontneed drops the copy: the file shows through again.
            (madvise(P0, 2, 1, Advice::DontNeed), OK),
            (read(P0, 2), val(112)),
        ],
    );
}

#[test]
fn shared_anon_is_one_object_per_mmap() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            mmap(P0, 0, 4, Prot::Rw, Kind::Shared),
            mmap(P0, 4, 4, Prot::Rw, Kind::Shared),
        ],
    );
    run(
        &mut m,
        &[
            (read(P0, 0), val(0)),
            (write(P0, 1, 5), OK),
            (read(P0, 1), val(5)),
            (read(P0, 5), val(0)),
            // dontneed keeps shmem contents.
            (madvise(P0, 0, 8, Advice::DontNeed), OK),
            (read(P0, 1), val(5)),
        ],
    );
}

// ---------------------------------------------------------------------------
// mprotect

#[test]
fn mprotect_len_zero_is_ok_even_on_a_hole() {
    let mut m = Model::new();
    run(&mut m, &[(mprotect(P0, 5, 0, Prot::R), OK)]);
}

#[test]
fn mprotect_changes_protection() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 0, 8), write(P0, 3, 4)]);
    run(
        &mut m,
        &[
            (mprotect(P0, 2, 2, Prot::R), OK),
            (write(P0, 3, 5), SEGV),
            (read(P0, 3), val(4)),
            (mprotect(P0, 2, 2, Prot::Rw), OK),
            (write(P0, 3, 5), OK),
        ],
    );
    assert_eq!(vmas(&m, P0), vec![vma(0, 8, "rw-p", MapKind::Anon, 0)]);
}

#[test]
fn mprotect_starting_in_a_hole_is_enomem_and_changes_nothing() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 2, 4)]);
    let before = m.state();
    run(&mut m, &[(mprotect(P0, 0, 6, Prot::R), ENOMEM)]);
    assert_eq!(m.state(), before);
}

#[test]
fn mprotect_stops_at_the_first_hole_keeping_the_changed_prefix() {
    let mut m = Model::new();
    // docs/linux-6.18.md "partial effects": mmap 0 4 rw ; mprotect 2 4 r.
    ok(&mut m, &[anon(P0, 0, 4), anon(P0, 8, 2)]);
    run(&mut m, &[(mprotect(P0, 2, 8, Prot::R), ENOMEM)]);
    assert_eq!(
        vmas(&m, P0),
        vec![
            vma(0, 2, "rw-p", MapKind::Anon, 0),
            vma(2, 4, "r--p", MapKind::Anon, 0),
            // Behind the hole: untouched.
            vma(8, 10, "rw-p", MapKind::Anon, 0),
        ]
    );
}

#[test]
fn mprotect_write_on_shared_file_is_allowed() {
    let mut m = Model::new();
    ok(&mut m, &[mmap(P0, 0, 1, Prot::R, sfile(0, 0))]);
    run(
        &mut m,
        &[
            (mprotect(P0, 0, 1, Prot::Rw), OK),
            (write(P0, 0, 3), OK),
            (read(P0, 0), val(3)),
        ],
    );
}

// ---------------------------------------------------------------------------
// madvise

#[test]
fn madvise_len_zero_is_ok_even_on_a_hole() {
    let mut m = Model::new();
    run(&mut m, &[(madvise(P0, 9, 0, Advice::WipeOnFork), OK)]);
}

#[test]
fn madvise_on_nothing_mapped_is_enomem() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 10, 2)]);
    for advice in Advice::ALL {
        run(&mut m, &[(madvise(P0, 0, 10, advice), ENOMEM)]);
    }
}

#[test]
fn dontneed_zaps_private_data_only() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            anon(P0, 0, 1),
            mmap(P0, 1, 1, Prot::Rw, file(0, 1)),
            mmap(P0, 2, 1, Prot::Rw, sfile(0, 2)),
            mmap(P0, 3, 1, Prot::Rw, Kind::Shared),
            write(P0, 0, 10),
            write(P0, 1, 11),
            write(P0, 2, 12),
            write(P0, 3, 13),
        ],
    );
    run(
        &mut m,
        &[
            (madvise(P0, 0, 4, Advice::DontNeed), OK),
            (read(P0, 0), val(0)),
            (read(P0, 1), val(file_value(0, 1))),
            (read(P0, 2), val(12)),
            (read(P0, 3), val(13)),
        ],
    );
}

#[test]
fn dontneed_over_a_hole_zaps_the_mapped_part_and_is_enomem() {
    let mut m = Model::new();
    // docs/linux-6.18.md: mmap 10 4 ; w 10 ; w 13 ; dontneed 12 4 -> ENOMEM, 13 zapped.
    ok(
        &mut m,
        &[anon(P0, 10, 4), write(P0, 10, 1), write(P0, 13, 2)],
    );
    run(
        &mut m,
        &[
            (madvise(P0, 12, 4, Advice::DontNeed), ENOMEM),
            (read(P0, 10), val(1)),
            (read(P0, 13), val(0)),
        ],
    );
}

#[test]
fn madvise_continues_past_holes() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            anon(P0, 0, 2),
            anon(P0, 4, 2),
            anon(P0, 8, 2),
            write(P0, 1, 1),
            write(P0, 4, 2),
            write(P0, 9, 3),
        ],
    );
    run(
        &mut m,
        &[
            // A hole at the start, in the middle and at the end.
            (madvise(P0, 1, 10, Advice::DontNeed), ENOMEM),
            (read(P0, 1), val(0)),
            (read(P0, 4), val(0)),
            (read(P0, 9), val(0)),
            (madvise(P0, 0, 10, Advice::DontFork), ENOMEM),
            (fork(P0), OK),
        ],
    );
    // Every mapped page got VM_DONTCOPY despite the holes.
    assert!(vmas(&m, P1).is_empty());
}

#[test]
fn wipeonfork_on_shared_or_file_is_einval_after_changing_earlier_vmas() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            anon(P0, 0, 2),
            mmap(P0, 3, 2, Prot::Rw, Kind::Shared),
            anon(P0, 5, 2),
            mmap(P0, 10, 1, Prot::Rw, file(0, 0)),
            mmap(P0, 11, 1, Prot::Rw, sfile(0, 0)),
            write(P0, 0, 1),
            write(P0, 5, 2),
        ],
    );
    run(
        &mut m,
        &[
            // The hole at 2 does not matter: the error wins.
            (madvise(P0, 0, 7, Advice::WipeOnFork), EINVAL),
            (madvise(P0, 10, 1, Advice::WipeOnFork), EINVAL),
            (madvise(P0, 11, 1, Advice::WipeOnFork), EINVAL),
            // keeponfork is fine on any kind.
            (madvise(P0, 10, 2, Advice::KeepOnFork), OK),
            (fork(P0), OK),
            // [0,2) was changed before the walk reached the shared VMA...
            (read(P1, 0), val(0)),
            // ...[5,7) after it was not.
            (read(P1, 5), val(2)),
            (read(P0, 0), val(1)),
        ],
    );
}

// ---------------------------------------------------------------------------
// fork / exit

#[test]
fn fork_numbers_children_and_never_reuses_numbers() {
    let mut m = Model::new();
    run(
        &mut m,
        &[
            (fork(P0), OK), // p1
            (fork(P1), OK), // p2
            (exit(P2), OK),
            (fork(P0), OK), // p3, not p2
            (fork(P2), ESRCH),
            (fork(P0), OK), // p4: failed forks consume no number
        ],
    );
    assert_eq!(m.live_pids(), vec![P0, P1, Pid(3), Pid(4)]);
}

#[test]
fn fork_copies_private_memory_and_shares_shared_memory() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            anon(P0, 0, 2),
            mmap(P0, 2, 2, Prot::Rw, file(1, 0)),
            mmap(P0, 4, 2, Prot::Rw, sfile(1, 4)),
            mmap(P0, 6, 2, Prot::Rw, Kind::Shared),
            write(P0, 0, 10),
            write(P0, 2, 12),
            write(P0, 4, 14),
            write(P0, 6, 16),
            fork(P0),
        ],
    );
    assert_eq!(vmas(&m, P1), vmas(&m, P0));
    run(
        &mut m,
        &[
            (read(P1, 0), val(10)),
            (read(P1, 2), val(12)),
            (read(P1, 3), val(file_value(1, 1))),
            (read(P1, 4), val(14)),
            (read(P1, 6), val(16)),
            // Private: each side writes its own copy.
            (write(P1, 0, 20), OK),
            (write(P0, 2, 22), OK),
            (read(P0, 0), val(10)),
            (read(P1, 2), val(12)),
            // Shared: one copy.
            (write(P1, 5, 25), OK),
            (write(P1, 7, 27), OK),
            (read(P0, 5), val(25)),
            (read(P0, 7), val(27)),
            // The child's exit leaves the parent's memory alone.
            (exit(P1), OK),
            (read(P0, 0), val(10)),
            (read(P0, 7), val(27)),
        ],
    );
}

#[test]
fn dontfork_and_wipeonfork_in_the_child() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            anon(P0, 0, 6),
            write(P0, 0, 1),
            write(P0, 2, 3),
            write(P0, 4, 5),
            madvise(P0, 0, 2, Advice::DontFork),
            madvise(P0, 2, 2, Advice::WipeOnFork),
            fork(P0), // p1
        ],
    );
    run(
        &mut m,
        &[
            (read(P1, 0), SEGV),
            (read(P1, 2), val(0)),
            (read(P1, 4), val(5)),
            (read(P0, 0), val(1)),
            (read(P0, 2), val(3)),
        ],
    );
    // The child keeps VM_WIPEONFORK: its grandchild gets wiped memory too.
    ok(&mut m, &[write(P1, 2, 7), fork(P1)]); // p2
    run(&mut m, &[(read(P2, 2), val(0)), (read(P1, 2), val(7))]);
    // dofork / keeponfork undo the flags.
    ok(
        &mut m,
        &[
            madvise(P0, 0, 4, Advice::DoFork),
            madvise(P0, 0, 4, Advice::KeepOnFork),
            fork(P0), // p3
        ],
    );
    run(
        &mut m,
        &[(read(Pid(3), 0), val(1)), (read(Pid(3), 2), val(3))],
    );
    // Pages whose flags differ are different VMAs in the coarse layout.
    assert_eq!(
        vmas(&m, P1),
        vec![
            vma(2, 4, "rw-p", MapKind::Anon, 0),
            vma(4, 6, "rw-p", MapKind::Anon, 0)
        ]
    );
}

// ---------------------------------------------------------------------------
// mremap without a target

#[test]
fn mremap_new_len_zero_is_einval() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 0, 4)]);
    run(
        &mut m,
        &[
            (mremap(P0, 0, 4, 0), EINVAL),
            (mremap_to(P0, 0, 4, 0, 10, false), EINVAL),
            // new_len 0 is checked before the source is looked up.
            (mremap(P0, 100, 4, 0), EINVAL),
        ],
    );
}

#[test]
fn mremap_of_an_unmapped_address_is_efault() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 4, 4)]);
    run(
        &mut m,
        &[
            (mremap(P0, 0, 4, 4), EFAULT),
            (mremap(P0, 0, 4, 2), EFAULT),
            (mremap(P0, 0, 4, 8), EFAULT),
            (mremap_to(P0, 0, 4, 2, 20, false), EFAULT),
            (mremap_to(P0, 0, 2, 4, 20, false), EFAULT),
        ],
    );
}

#[test]
fn mremap_same_size_in_place_is_a_noop() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 0, 4), write(P0, 1, 1)]);
    let before = m.state();
    run(&mut m, &[(mremap(P0, 0, 4, 4), OK), (read(P0, 1), val(1))]);
    assert_eq!(m.state(), before);
}

#[test]
fn mremap_shrink_unmaps_the_tail() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 0, 8), write(P0, 2, 2), write(P0, 5, 5)]);
    run(
        &mut m,
        &[
            (mremap(P0, 0, 8, 3), OK),
            (read(P0, 2), val(2)),
            (read(P0, 3), SEGV),
            (read(P0, 5), SEGV),
        ],
    );
    assert_eq!(vmas(&m, P0), vec![vma(0, 3, "rw-p", MapKind::Anon, 0)]);
}

#[test]
fn mremap_shrink_may_unmap_across_vmas_and_holes() {
    let mut m = Model::new();
    // [0,4) anon, [4,6) sfile, hole, [8,10) anon: shrinking [0,10) to 2
    // only needs [0,2) inside one VMA.
    ok(
        &mut m,
        &[
            anon(P0, 0, 4),
            mmap(P0, 4, 2, Prot::Rw, sfile(0, 0)),
            anon(P0, 8, 2),
        ],
    );
    run(&mut m, &[(mremap(P0, 0, 10, 2), OK)]);
    assert_eq!(vmas(&m, P0), vec![vma(0, 2, "rw-p", MapKind::Anon, 0)]);
}

#[test]
fn mremap_grow_in_place() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 0, 4), write(P0, 3, 3)]);
    run(
        &mut m,
        &[
            (mremap(P0, 0, 4, 8), OK),
            (read(P0, 3), val(3)),
            (read(P0, 7), val(0)),
            (write(P0, 7, 7), OK),
        ],
    );
    assert_eq!(vmas(&m, P0), vec![vma(0, 8, "rw-p", MapKind::Anon, 0)]);
}

#[test]
fn mremap_grow_of_a_suffix_reaching_the_vma_end() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 0, 4), write(P0, 1, 1)]);
    run(&mut m, &[(mremap(P0, 2, 2, 6), OK), (read(P0, 1), val(1))]);
    assert_eq!(vmas(&m, P0), vec![vma(0, 8, "rw-p", MapKind::Anon, 0)]);
}

#[test]
fn mremap_grow_keeps_attributes_and_continues_file_offsets() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            mmap(P0, 0, 2, Prot::R, file(1, 10)),
            madvise(P0, 0, 2, Advice::DontFork),
            mmap(P0, 20, 2, Prot::Rw, sfile(2, 62)),
        ],
    );
    run(
        &mut m,
        &[
            (mremap(P0, 0, 2, 4), OK),
            (read(P0, 3), val(file_value(1, 13))),
            (write(P0, 3, 1), SEGV),
            (mremap(P0, 20, 2, 3), OK),
            (read(P0, 21), val(file_value(2, 63))),
            (read(P0, 22), SIGBUS),
            (fork(P0), OK),
        ],
    );
    assert_eq!(
        vmas(&m, P0),
        vec![
            vma(0, 4, "r--p", MapKind::File(1), 10),
            vma(20, 23, "rw-s", MapKind::SFile(2), 62),
        ]
    );
    // The grown part is VM_DONTCOPY too.
    assert_eq!(
        vmas(&m, P1),
        vec![vma(20, 23, "rw-s", MapKind::SFile(2), 62)]
    );
}

#[test]
fn mremap_grow_blocked_by_the_next_vma_is_enomem() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[anon(P0, 0, 4), mmap(P0, 6, 2, Prot::R, Kind::Anon)],
    );
    let before = m.state();
    run(&mut m, &[(mremap(P0, 0, 4, 8), ENOMEM)]);
    assert_eq!(m.state(), before);
    run(&mut m, &[(mremap(P0, 0, 4, 6), OK)]);
}

#[test]
fn mremap_grow_past_the_window_is_einval() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 250, 4)]);
    run(
        &mut m,
        &[(mremap(P0, 250, 4, 7), EINVAL), (mremap(P0, 250, 4, 6), OK)],
    );
}

#[test]
fn mremap_grow_of_a_range_not_reaching_the_vma_end_is_enomem() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 0, 8)]);
    let before = m.state();
    run(&mut m, &[(mremap(P0, 0, 4, 6), ENOMEM)]);
    assert_eq!(m.state(), before);
}

#[test]
fn mremap_resize_across_vmas_is_efault() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[anon(P0, 0, 4), mmap(P0, 4, 4, Prot::R, Kind::Anon)],
    );
    let before = m.state();
    run(
        &mut m,
        &[
            (mremap(P0, 2, 4, 8), EFAULT),
            (mremap_to(P0, 2, 4, 8, 20, false), EFAULT),
            // Shrinking with a target: the kept part [2,5) crosses too.
            (mremap_to(P0, 2, 6, 3, 20, false), EFAULT),
        ],
    );
    assert_eq!(m.state(), before);
}

#[test]
fn mremap_uses_the_given_layout_for_vma_boundaries() {
    // Two adjacent rw anon VMAs that Linux keeps apart (e.g. after a fork)
    // look like one VMA in the coarse layout.
    let mut coarse = Model::new();
    ok(&mut coarse, &[anon(P0, 0, 4), anon(P0, 4, 4)]);
    let mut designed = coarse.clone();
    let split = Vmas(vec![(P0, 0, 4), (P0, 4, 8)]);

    // Resizing across the two: fine for the coarse layout, EFAULT for a
    // design that has two VMAs.
    assert_eq!(coarse.clone().step(&mremap(P0, 2, 4, 8), None), ENOMEM);
    assert_eq!(coarse.clone().step(&mremap(P0, 2, 6, 8), None), OK);
    assert_eq!(
        designed.clone().step(&mremap(P0, 2, 6, 8), Some(&split)),
        EFAULT
    );
    // Growing [0,4) in place: the coarse VMA does not end at 4, the
    // design's does but the next pages are taken.
    assert_eq!(coarse.step(&mremap(P0, 0, 4, 6), None), ENOMEM);
    assert_eq!(designed.step(&mremap(P0, 0, 4, 6), Some(&split)), ENOMEM);
    // Shrinking [4,8) with a target: coarse sees [4,6) inside [0,8), the
    // design inside [4,8): both fine.
    assert_eq!(
        designed.step(&mremap_to(P0, 4, 4, 2, 20, false), Some(&split)),
        OK
    );
    assert_eq!(designed.value_at(P0, 20), Some(0));
    assert_eq!(designed.value_at(P0, 4), None);
}

#[test]
fn mremap_grow_of_shared_anon_past_its_object_is_sigbus() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            mmap(P0, 0, 4, Prot::Rw, Kind::Shared),
            write(P0, 3, 3),
            fork(P0),
        ],
    );
    run(
        &mut m,
        &[
            (mremap(P0, 0, 4, 6), OK),
            (read(P0, 3), val(3)),
            (read(P0, 4), SIGBUS),
            (write(P0, 5, 1), SIGBUS),
        ],
    );
    assert_eq!(vmas(&m, P0), vec![vma(0, 6, "rw-s", MapKind::Shared, 0)]);
    assert_eq!(m.value_at(P0, 4), None);
    // docs/linux-6.18.md §5: shared anon grown with a move, `2 2 6 fixed=40`:
    // VMA 40-46 at offset 2, SIGBUS from offset 4 on.
    run(
        &mut m,
        &[
            (mremap_to(P1, 2, 2, 6, 40, false), OK),
            (read(P1, 41), val(3)),
            (read(P1, 42), SIGBUS),
            (write(P1, 41, 4), OK),
            (read(P0, 3), val(4)),
        ],
    );
    assert_eq!(
        vmas(&m, P1),
        vec![
            vma(0, 2, "rw-s", MapKind::Shared, 0),
            vma(40, 46, "rw-s", MapKind::Shared, 2)
        ]
    );
}

#[test]
fn mremap_old_len_zero_duplicates_shared_mappings_only() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            anon(P0, 0, 4),
            mmap(P0, 10, 4, Prot::Rw, Kind::Shared),
            write(P0, 11, 11),
        ],
    );
    let before = m.state();
    run(
        &mut m,
        &[
            // Private: refused (remap_is_valid / check_prep_vma).
            (mremap(P0, 0, 0, 2), EINVAL),
            (mremap_to(P0, 0, 0, 2, 20, false), EINVAL),
            // Shared, in place: cannot expand (the empty range does not end
            // at the VMA's end) and there is no MREMAP_MAYMOVE.
            (mremap(P0, 10, 0, 2), ENOMEM),
        ],
    );
    assert_eq!(m.state(), before);
    // Shared with a target: a second mapping of the same object from the
    // offset at OLD; the source stays.
    run(
        &mut m,
        &[
            (mremap_to(P0, 11, 0, 4, 20, false), OK),
            (read(P0, 20), val(11)),
            (read(P0, 23), SIGBUS),
            (write(P0, 21, 12), OK),
            (read(P0, 12), val(12)),
            (read(P0, 11), val(11)),
        ],
    );
    assert_eq!(vmas(&m, P0)[2], vma(20, 24, "rw-s", MapKind::Shared, 1));
    // A target starting at OLD does not overlap the empty old range; its
    // unmapping removes the source, which the lookup then misses: EFAULT,
    // with the target already unmapped.
    run(&mut m, &[(mremap_to(P0, 20, 0, 2, 20, false), EFAULT)]);
    assert_eq!(m.value_at(P0, 20), None);
    assert_eq!(m.value_at(P0, 22), Some(0));
}

// ---------------------------------------------------------------------------
// mremap to a target

#[test]
fn mremap_to_overlapping_ranges_is_einval() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 0, 8)]);
    let before = m.state();
    run(
        &mut m,
        &[
            (mremap_to(P0, 0, 4, 4, 2, false), EINVAL),
            (mremap_to(P0, 4, 4, 4, 2, false), EINVAL),
            (mremap_to(P0, 0, 4, 8, 3, false), EINVAL),
            (mremap_to(P0, 0, 4, 4, 0, true), EINVAL),
            // Overlap is decided before the source is looked up.
            (mremap_to(P0, 100, 4, 4, 102, false), EINVAL),
        ],
    );
    assert_eq!(m.state(), before);
    // Adjacent is not overlapping.
    run(&mut m, &[(mremap_to(P0, 0, 4, 4, 4, false), OK)]);
    assert_eq!(vmas(&m, P0), vec![vma(4, 8, "rw-p", MapKind::Anon, 0)]);
}

#[test]
fn mremap_to_moves_values_and_unmaps_the_target_first() {
    let mut m = Model::new();
    // docs/linux-6.18.md §5: `0 4 4 fixed=20` onto an existing mapping.
    ok(
        &mut m,
        &[
            anon(P0, 0, 4),
            write(P0, 0, 1),
            write(P0, 1, 2),
            mmap(P0, 20, 4, Prot::R, sfile(0, 0)),
        ],
    );
    run(
        &mut m,
        &[
            (mremap_to(P0, 0, 4, 4, 20, false), OK),
            (read(P0, 0), SEGV),
            (read(P0, 20), val(1)),
            (read(P0, 21), val(2)),
            (read(P0, 22), val(0)),
            (write(P0, 23, 4), OK),
        ],
    );
    assert_eq!(vmas(&m, P0), vec![vma(20, 24, "rw-p", MapKind::Anon, 0)]);
}

#[test]
fn mremap_to_with_resize() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            mmap(P0, 0, 4, Prot::Rw, file(0, 8)),
            write(P0, 1, 100),
            anon(P0, 10, 4),
            write(P0, 10, 1),
            write(P0, 13, 4),
            mmap(P0, 30, 10, Prot::R, Kind::Anon),
        ],
    );
    run(
        &mut m,
        &[
            // Grow while moving: the new part continues the file.
            (mremap_to(P0, 0, 4, 6, 20, false), OK),
            (read(P0, 21), val(100)),
            (read(P0, 22), val(file_value(0, 10))),
            (read(P0, 25), val(file_value(0, 13))),
            (read(P0, 0), SEGV),
            // Shrink while moving, onto part of an existing VMA.
            (mremap_to(P0, 10, 4, 2, 32, false), OK),
            (read(P0, 32), val(1)),
            (read(P0, 33), val(0)),
            (read(P0, 13), SEGV),
        ],
    );
    assert_eq!(
        vmas(&m, P0),
        vec![
            vma(20, 26, "rw-p", MapKind::File(0), 8),
            vma(30, 32, "r--p", MapKind::Anon, 0),
            vma(32, 34, "rw-p", MapKind::Anon, 0),
            vma(34, 40, "r--p", MapKind::Anon, 0),
        ]
    );
}

#[test]
fn mremap_multi_vma_move_keeps_the_gaps() {
    let mut m = Model::new();
    // docs/linux-6.18.md §5: [20,22) rw, gap, [23,25) r, [25,26) shared,
    // `20 6 6 fixed=40` -> 40-42 43-45 45-46.
    ok(
        &mut m,
        &[
            anon(P0, 20, 2),
            mmap(P0, 23, 2, Prot::R, Kind::Anon),
            mmap(P0, 25, 1, Prot::Rw, Kind::Shared),
            write(P0, 21, 21),
            write(P0, 25, 25),
            fork(P0),
        ],
    );
    run(
        &mut m,
        &[
            (mremap_to(P0, 20, 6, 6, 40, false), OK),
            (read(P0, 41), val(21)),
            (read(P0, 42), SEGV),
            (read(P0, 43), val(0)),
            (read(P0, 45), val(25)),
            (write(P0, 45, 26), OK),
            (read(P1, 25), val(26)),
        ],
    );
    assert_eq!(
        vmas(&m, P0),
        vec![
            vma(40, 42, "rw-p", MapKind::Anon, 0),
            vma(43, 45, "r--p", MapKind::Anon, 0),
            vma(45, 46, "rw-s", MapKind::Shared, 0),
        ]
    );
}

#[test]
fn mremap_multi_vma_move_unmaps_only_the_pieces_destinations() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            anon(P0, 0, 2),
            anon(P0, 3, 1),
            mmap(P0, 20, 6, Prot::R, Kind::Anon),
        ],
    );
    // Pieces [0,2) -> [20,22) and [3,4) -> [23,24); 22 (the gap's
    // destination) and [24,26) (past the last piece) keep their mapping.
    run(&mut m, &[(mremap_to(P0, 0, 6, 6, 20, false), OK)]);
    assert_eq!(
        vmas(&m, P0),
        vec![
            vma(20, 22, "rw-p", MapKind::Anon, 0),
            vma(22, 23, "r--p", MapKind::Anon, 0),
            vma(23, 24, "rw-p", MapKind::Anon, 0),
            vma(24, 26, "r--p", MapKind::Anon, 0),
        ]
    );
}

#[test]
fn mremap_move_starting_in_a_hole_is_efault_and_changes_nothing() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 2, 4), anon(P0, 20, 4)]);
    let before = m.state();
    run(
        &mut m,
        &[
            (mremap_to(P0, 0, 6, 6, 20, false), EFAULT),
            (mremap_to(P0, 0, 6, 6, 20, true), EFAULT),
            (mremap_to(P0, 10, 4, 4, 30, false), EFAULT),
        ],
    );
    assert_eq!(m.state(), before);
}

#[test]
fn mremap_move_within_one_vma_of_the_design_layout() {
    let mut m = Model::new();
    // The design has [0,2) and [2,4) as separate VMAs that the coarse layout
    // merges; a pure move is the same either way.
    ok(&mut m, &[anon(P0, 0, 4), write(P0, 0, 1), write(P0, 3, 4)]);
    let layout = Vmas(vec![(P0, 0, 2), (P0, 2, 4)]);
    assert_eq!(
        m.step(&mremap_to(P0, 0, 4, 4, 10, false), Some(&layout)),
        OK
    );
    assert_eq!(m.value_at(P0, 10), Some(1));
    assert_eq!(m.value_at(P0, 13), Some(4));
    assert_eq!(vmas(&m, P0), vec![vma(10, 14, "rw-p", MapKind::Anon, 0)]);
}

#[test]
fn mremap_dontunmap_leaves_empty_old_mappings() {
    let mut m = Model::new();
    ok(
        &mut m,
        &[
            anon(P0, 0, 2),
            mmap(P0, 2, 2, Prot::Rw, file(1, 0)),
            mmap(P0, 4, 2, Prot::Rw, Kind::Shared),
            mmap(P0, 6, 2, Prot::Rw, sfile(2, 6)),
            write(P0, 0, 10),
            write(P0, 2, 12),
            write(P0, 4, 14),
            write(P0, 6, 16),
            madvise(P0, 0, 2, Advice::WipeOnFork),
        ],
    );
    run(
        &mut m,
        &[
            (mremap_to(P0, 0, 8, 8, 20, true), OK),
            // The pages moved.
            (read(P0, 20), val(10)),
            (read(P0, 22), val(12)),
            (read(P0, 23), val(file_value(1, 1))),
            (read(P0, 24), val(14)),
            (read(P0, 26), val(16)),
            // The old private mappings are empty...
            (read(P0, 0), val(0)),
            (read(P0, 2), val(file_value(1, 0))),
            // ...the shared ones still show their object.
            (read(P0, 4), val(14)),
            (read(P0, 6), val(16)),
            // And both sides are still mapped and independent for private.
            (write(P0, 0, 1), OK),
            (read(P0, 20), val(10)),
            (write(P0, 25, 15), OK),
            (read(P0, 5), val(15)),
        ],
    );
    let layout = vec![
        vma(0, 2, "rw-p", MapKind::Anon, 0),
        vma(2, 4, "rw-p", MapKind::File(1), 0),
        vma(4, 6, "rw-s", MapKind::Shared, 0),
        vma(6, 8, "rw-s", MapKind::SFile(2), 6),
    ];
    let moved: Vec<_> = layout
        .iter()
        .map(|(s, e, p, k, o)| (s + 20, e + 20, p.clone(), *k, *o))
        .collect();
    assert_eq!(vmas(&m, P0), [layout, moved].concat());
    // VM_WIPEONFORK stays on the old range and moves with the pages.
    ok(&mut m, &[fork(P0)]);
    assert_eq!(m.value_at(P1, 0), Some(0));
    assert_eq!(m.value_at(P1, 20), Some(0));
}

#[test]
fn mremap_dontunmap_with_resize_is_einval() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 0, 4)]);
    let before = m.state();
    run(
        &mut m,
        &[
            (mremap_to(P0, 0, 4, 2, 20, true), EINVAL),
            (mremap_to(P0, 0, 2, 4, 20, true), EINVAL),
            // Checked before the overlap test and the source lookup.
            (mremap_to(P0, 100, 2, 4, 100, true), EINVAL),
        ],
    );
    assert_eq!(m.state(), before);
}

#[test]
fn mremap_to_past_the_window_is_einval() {
    let mut m = Model::new();
    ok(&mut m, &[anon(P0, 0, 4)]);
    run(
        &mut m,
        &[
            (mremap_to(P0, 0, 4, 4, 253, false), EINVAL),
            (mremap_to(P0, 0, 4, 4, 256, true), EINVAL),
            (mremap_to(P0, 0, 4, 4, 252, false), OK),
        ],
    );
}

/// `file_mmap_ok`: a file mapping may not end past `MAX_LFS_FILESIZE`
/// (Linux `EOVERFLOW`, reported `EINVAL`), but `EEXIST` is checked first.
#[test]
fn file_mappings_past_max_lfs_filesize_are_einval() {
    let mut m = rmaplab::oracle::model::Model::new();
    let mmap = |addr, len, off| Op::Mmap {
        pid: Pid(0),
        addr,
        len,
        prot: Prot::R,
        kind: Kind::File { file: 0, off },
        replace: false,
    };
    assert_eq!(m.step(&mmap(0, 1, 0x7_ffff_ffff_fffe), None), Outcome::Ok);
    assert_eq!(
        m.step(&mmap(10, 1, 0x7_ffff_ffff_ffff), None),
        Outcome::Err(Errno::EINVAL)
    );
    assert_eq!(
        m.step(&mmap(20, 2, 0x7_ffff_ffff_fffe), None),
        Outcome::Err(Errno::EINVAL)
    );
    assert_eq!(
        m.step(&mmap(0, 1, 0x7_ffff_ffff_ffff), None),
        Outcome::Err(Errno::EEXIST)
    );
}
