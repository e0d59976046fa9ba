//! MMU tests on a toy design ([`toy::Toy`]).
//!
//! - Every case measured on Linux 6.18 (`corpus/live-kernel/`, read with
//!   the op language's parser) replayed on the emulated MMU: the layouts,
//!   page sharing and map counts its header records, its stated outcomes,
//!   the MMU's bookkeeping after every op, nothing left after every process
//!   exits ([`every_measured_case_on_the_toy_design`]).
//! - What some of those cases show that a header cannot record, checked
//!   while replaying them: which frame a page maps across dumps (COW reuse
//!   in place, pages moving with mremap), whether a VMA has an anon_vma,
//!   values read back.
//! - The MMU's own behaviour beyond the measured cases: errors and partial
//!   effects, madvise fork flags, fault injection, swap and migration, the
//!   violation report of a design whose walks miss pages.
//!
//! Section numbers (§3.2, ...) are those of docs/linux-6.18.md.

mod replay;
mod toy;

use replay::{Machine, live_kernel_dir, ops, ops_files};
use toy::Toy;

use super::*;
use crate::state::FrameRef;

// ---------------------------------------------------------------------------
// The measured cases

#[test]
fn every_measured_case_on_the_toy_design() {
    let files = ops_files(&live_kernel_dir());
    assert!(files.len() >= 84, "only {} measured cases", files.len());
    for f in &files {
        Machine::file(f).finish();
    }
}

/// E1 (§3.1): reads map the zero page and give the VMA no anon_vma, which
/// is why the fork copies no PTE.
#[test]
fn e1_zero_pages_give_no_anon_vma() {
    let mut c = Machine::case("e1-zero-page");
    c.run_to_dump(1);
    assert!(!c.has_anon_vma(0, 0));
    c.finish();
}

/// E3 (§3.2): a write fault reuses the page in place iff its map count is
/// 1: the same frame stays mapped.
#[test]
fn e3_cow_reuse_keeps_the_frame() {
    let mut c = Machine::case("e3-cow-reuse");
    c.run_to_dump(1);
    let a = c.frame(0, 0);
    // A: the child writes first and gets a copy; the parent then reuses.
    c.run_to_dump(2);
    assert_ne!(c.frame(1, 0), a);
    assert_eq!(c.mapcount(a), 1);
    c.run_to_dump(3);
    assert_eq!(c.frame(0, 0), a);
    // C: the parent writes first and copies; the child then reuses.
    let b = c.frame(0, 1);
    c.run_to_dump(4);
    assert_ne!(c.frame(0, 1), b);
    assert_eq!(c.frame(1, 1), b);
    c.run_to_dump(5);
    assert_eq!(c.frame(1, 1), b);
    // A read after fork changes nothing.
    let page2 = c.frame(0, 2);
    c.run_to_dump(6);
    assert_eq!(c.peek(1, 2), 3);
    assert_eq!(c.mapcount(page2), 2);
    // B: after the child's exit the parent's write reuses.
    c.run_to_dump(8);
    assert_eq!(c.frame(0, 2), page2);
    assert_eq!((c.peek(0, 0), c.peek(0, 1)), (8, 9));
    let s = c.m.stats();
    assert_eq!(s.cow_copies, 2);
    assert!(s.cow_reuses >= 3);
    c.finish();
}

/// E9 (§3.2): the last of three mappers reuses the page; a grandchild
/// reuses its page once its parent has exited.
#[test]
fn e9_the_last_mapper_reuses_the_frame() {
    let mut c = Machine::case("e9-three-sharers");
    c.run_to_dump(1);
    let a = c.frame(0, 0);
    assert_eq!(c.mapcount(a), 3);
    c.run_to_dump(2);
    assert_eq!(c.mapcount(a), 2);
    c.run_to_dump(3);
    assert_ne!(c.frame(0, 0), a);
    assert_eq!(c.mapcount(a), 1);
    c.run_to_dump(4);
    assert_eq!(c.frame(2, 0), a, "P2, the last mapper, reuses");
    let (d, b) = (c.frame(1, 0), c.frame(1, 1));
    c.run_to_dump(5);
    assert_eq!((c.mapcount(d), c.mapcount(b)), (2, 4));
    c.run_to_dump(6);
    assert_eq!(c.mapcount(d), 1);
    c.run_to_dump(7);
    assert_eq!(c.frame(3, 0), d);
    assert_ne!(c.frame(3, 1), b);
    assert_eq!(c.mapcount(b), 2);
    c.finish();
}

/// E8 (§3.2, §8): after the other mapper's DONTNEED the page is the sole
/// mapper's and its write reuses it; the anon_vma survives DONTNEED.
#[test]
fn e8_dontneed_leaves_a_sole_mapper_that_reuses() {
    let mut c = Machine::case("e8-dontneed-after-fork");
    c.run_to_dump(1);
    let b1 = c.frame(1, 1);
    c.run_to_dump(2);
    assert_eq!(c.frame(1, 1), b1, "sole mapper after DONTNEED reuses");
    c.run_to_dump(3);
    assert!(c.has_anon_vma(1, 0));
    c.finish();
}

/// E5c (§3.2, §5): COW follows the page, not the address.
#[test]
fn e5c_cow_follows_the_moved_page() {
    let mut c = Machine::case("e5c-mremap-in-child");
    c.run_to_dump(1);
    let (a, b) = (c.frame(0, 0), c.frame(0, 1));
    assert_eq!((c.frame(1, 10), c.frame(1, 11)), (a, b));
    assert_eq!(c.mapcount(a), 2);
    c.run_to_dump(2);
    assert_ne!(c.frame(0, 0), a);
    assert_ne!(c.frame(1, 11), b);
    c.run_to_dump(3);
    assert_eq!(c.frame(1, 10), a, "COW follows the page");
    c.run_to_dump(5);
    assert_eq!(c.frame(0, 1), b);
    c.finish();
}

/// E5b (§5): a move keeps the frames (zero page included); the range a
/// DONTUNMAP move leaves behind reads as zero and takes new pages.
#[test]
fn e5b_moved_pages_keep_their_frames() {
    let mut c = Machine::case("e5b-mremap-fixed-dontunmap");
    c.run_to_dump(1);
    let (a, b) = (c.frame(0, 0), c.frame(0, 1));
    c.run_to_dump(2);
    assert_eq!((c.frame(0, 20), c.frame(0, 21)), (a, b));
    c.run_to_dump(3);
    assert_eq!((c.frame(0, 40), c.frame(0, 41)), (a, b));
    c.run_to_dump(5);
    assert_eq!((c.peek(0, 20), c.peek(0, 21)), (0, 4));
    assert_eq!((c.peek(0, 40), c.peek(0, 41)), (1, 2));
    c.finish();
}

/// R9 (§4.3): a shrink frees the pages past the new end.
#[test]
fn r9_shrink_frees_the_pages() {
    let mut c = Machine::case("r09-shrink");
    c.rest();
    assert_eq!(c.m.anon_frames_live(), 1);
    c.finish();
}

/// R11 (§4.3): the whole VMA moved with DONTUNMAP, so the old one lost its
/// anon_vma links; it reads as zero, the pages are at the new place.
#[test]
fn r11_dontunmap_leaves_an_empty_vma_without_anon_vma() {
    let mut c = Machine::case("r11-dontunmap-faulted");
    c.rest();
    assert!(!c.has_anon_vma(0, 0));
    assert_eq!((c.peek(0, 20), c.peek(0, 0)), (1, 0));
    c.finish();
}

/// E6t (§6): page-cache pages are shared by offset; a MAP_SHARED write is
/// seen through every mapping of the file.
#[test]
fn e6t_file_pages_hold_the_file_and_shared_writes() {
    let mut c = Machine::case("file/e6t-private-file");
    c.run_to_dump(1);
    assert_eq!(c.peek(0, 3), 3, "file 0 page 3 holds 0 << 32 | 3");
    c.run_to_dump(5);
    assert_eq!(c.frame(0, 0), c.frame(1, 0), "the page-cache page again");
    c.run_to_dump(6);
    assert_eq!(c.peek(1, 4), 4, "a shared write is seen by everyone");
    c.finish();
}

/// E6c (§6): a private write fault gives the file VMA an anon_vma; the
/// pages mapped by fault-around hold the file.
#[test]
fn e6c_private_write_gives_an_anon_vma() {
    let mut c = Machine::case("file/e6c-fault-around");
    c.run_to_dump(3);
    assert!(c.has_anon_vma(0, 200));
    c.run_to_dump(4);
    assert_eq!(c.peek(0, 241), 1 << 32 | 63);
    c.finish();
}

/// E7 (§7): shared anonymous pages are never COWed, and stay in the
/// object across DONTNEED (same frame, same data); they are not anonymous
/// frames.
#[test]
fn e7_shared_anon_pages_stay_in_the_object() {
    let mut c = Machine::case("file/e7-shared-anon");
    c.run_to_dump(1);
    let a = c.frame(0, 0);
    c.run_to_dump(4);
    assert_eq!(c.frame(1, 0), a, "never COW");
    assert_eq!(c.peek(0, 0), 5);
    c.run_to_dump(5);
    assert_eq!(c.frame(0, 5), c.frame(1, 5));
    assert_eq!(c.peek(0, 5), 7);
    assert_eq!(c.mapcount(a), 1);
    c.run_to_dump(6);
    assert_eq!(c.frame(0, 0), a);
    assert_eq!(c.peek(0, 0), 5);
    c.run_to_dump(7);
    assert_eq!(c.mapcount(a), 1);
    assert_eq!(c.m.anon_frames_live(), 0, "shmem pages are not anonymous");
    c.finish();
}

/// E5 shared anon grown past its object (§5, §13): the object keeps its
/// offsets; it dies with its last mapping, not before.
#[test]
fn e5_shared_anon_object_dies_with_its_last_mapping() {
    let mut c = Machine::case("file/e5-shared-anon-grow");
    c.run_to_dump(1);
    assert_eq!(c.peek(0, 40), 1);
    c.rest();
    c.run("munmap p0 0 2");
    assert_eq!(c.m.m.shmem.len(), 1);
    c.run("munmap p0 40 6");
    assert_eq!(c.m.m.shmem.len(), 0);
    c.teardown();
}

// ---------------------------------------------------------------------------
// Errors and partial effects

#[test]
fn partial_effects() {
    let mut m = Machine::new();
    m.run("mmap p0 0 4 rw anon");
    assert_eq!(m.one("mprotect p0 2 4 r"), Outcome::Err(Errno::ENOMEM));
    assert_eq!(m.layout(0), "0-2 2-4(r--p)");
    m.run("mmap p0 10 4 rw anon\nwrite p0 10 1\nwrite p0 13 2");
    assert_eq!(
        m.one("madvise p0 12 4 dontneed"),
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(m.cells(&[(0, 10, 14)]), ["a:1 - - -"]);
    // mprotect starting in a hole changes nothing
    assert_eq!(m.one("mprotect p0 8 4 r"), Outcome::Err(Errno::ENOMEM));
    assert_eq!(m.layout(0), "0-2 2-4(r--p) 10-14");
    // mprotect across a hole changes the part before it
    m.run("mmap p0 20 4 rw anon");
    assert_eq!(m.one("mprotect p0 10 14 r"), Outcome::Err(Errno::ENOMEM));
    assert_eq!(m.layout(0), "0-2 2-4(r--p) 10-14(r--p) 20-24");
    // madvise over a hole still visits everything after it
    m.run("write p0 20 3\nwrite p0 23 4");
    assert_eq!(
        m.one("madvise p0 14 10 dontneed"),
        Outcome::Err(Errno::ENOMEM)
    );
    assert_eq!(m.cells(&[(0, 20, 24)]), ["- - - -"]);
    // madvise with no VMA at or after start
    assert_eq!(
        m.one("madvise p0 100 4 dontneed"),
        Outcome::Err(Errno::ENOMEM)
    );
    // window and process checks
    assert_eq!(m.one("mmap p0 250 8 rw anon"), Outcome::Err(Errno::EINVAL));
    assert_eq!(m.one("munmap p0 0 0"), Outcome::Err(Errno::EINVAL));
    assert_eq!(m.one("read p3 0"), Outcome::Err(Errno::ESRCH));
    assert_eq!(m.one("read p0 256"), Outcome::Err(Errno::EINVAL));
    assert_eq!(m.one("read p0 30"), Outcome::Segv);
    assert_eq!(m.one("write p0 2 1"), Outcome::Segv);
    m.run("mmap p0 30 1 none anon");
    assert_eq!(m.one("read p0 30"), Outcome::Segv);
    // munmap never merges; a hole is fine
    m.run("munmap p0 0 40");
    assert_eq!(m.layout(0), "");
    m.teardown();
}

/// Multi-VMA moves (§5) carry anonymous and shared pages, also with
/// DONTUNMAP; the return codes around them on this layout (with a shared
/// VMA, unlike mremap-errors.ops).
#[test]
fn multi_vma_move_and_errors() {
    let mut m = Machine::new();
    m.run(
        "mmap p0 20 2 rw anon\nwrite p0 20 5\nmmap p0 23 2 r anon\nmmap p0 25 1 rw shared\n\
         write p0 25 6",
    );
    assert_eq!(m.one("mremap p0 19 6 6 to 40"), Outcome::Err(Errno::EFAULT));
    assert_eq!(m.one("mremap p0 20 4 6 to 40"), Outcome::Err(Errno::EFAULT));
    assert_eq!(m.one("mremap p0 20 6 6 to 22"), Outcome::Err(Errno::EINVAL));
    assert_eq!(
        m.one("mremap p0 20 6 8 to 40 dontunmap"),
        Outcome::Err(Errno::EINVAL)
    );
    m.run("mremap p0 20 6 6 to 40");
    assert_eq!(m.layout(0), "40-42 43-45(r--p) 45-46(rw-s)");
    assert_eq!(m.value(0, 40), 5);
    assert_eq!(m.value(0, 45), 6);
    // and with DONTUNMAP
    m.run("mremap p0 40 6 6 to 60 dontunmap");
    assert_eq!(
        m.layout(0),
        "40-42 43-45(r--p) 45-46(rw-s) 60-62 63-65(r--p) 65-66(rw-s)"
    );
    assert_eq!(m.value(0, 60), 5);
    assert_eq!(m.value(0, 65), 6);
    assert_eq!(m.value(0, 45), 6, "shmem pages stay in the object");
    m.teardown();
}

#[test]
fn zero_lengths_follow_linux() {
    let mut m = Machine::new();
    m.run("mmap p0 0 4 rw shared\nwrite p0 1 5\nmmap p0 8 4 rw anon");
    assert_eq!(m.one("mmap p0 20 0 rw anon"), Outcome::Err(Errno::EINVAL));
    assert_eq!(m.one("munmap p0 0 0"), Outcome::Err(Errno::EINVAL));
    assert_eq!(m.one("mprotect p0 100 0 r"), Outcome::Ok);
    assert_eq!(m.one("madvise p0 100 0 dontneed"), Outcome::Ok);
    assert_eq!(
        m.one("madvise p0 256 0 dontneed"),
        Outcome::Err(Errno::EINVAL)
    );
    assert_eq!(m.one("mremap p0 0 4 0"), Outcome::Err(Errno::EINVAL));
    // old_len 0: a private mapping cannot be duplicated ...
    assert_eq!(m.one("mremap p0 8 0 2 to 40"), Outcome::Err(Errno::EINVAL));
    assert_eq!(m.one("mremap p0 8 0 2"), Outcome::Err(Errno::EINVAL));
    // ... a shared one can: a second mapping of the same object.
    m.run("mremap p0 1 0 2 to 40");
    assert_eq!(m.layout(0), "0-4(rw-s) 8-12 40-42(rw-s)");
    assert_eq!(m.value(0, 40), 5);
    assert_eq!(m.frame(0, 40), m.frame(0, 1));
    m.teardown();
}

#[test]
fn fork_flags_dontfork_wipeonfork() {
    let mut m = Machine::new();
    m.run(
        "mmap p0 0 4 rw anon\nwrite p0 0 1\nmmap p0 4 4 r anon\nmmap p0 8 4 rw anon\n\
         write p0 8 2\nmadvise p0 0 4 dontfork\nmadvise p0 8 2 wipeonfork",
    );
    assert_eq!(m.layout(0), "0-4 4-8(r--p) 8-10 10-12");
    assert_eq!(
        m.one("madvise p0 0 12 wipeonfork"),
        Outcome::Ok,
        "anon VMAs accept WIPEONFORK"
    );
    m.run("madvise p0 0 12 keeponfork\nmadvise p0 8 2 wipeonfork\nfork p0");
    assert_eq!(m.layout(1), "4-8(r--p) 8-10 10-12");
    assert_eq!(m.cells(&[(1, 8, 12)]), ["- - - -"]);
    assert!(!m.has_anon_vma(1, 8));
    assert_eq!(m.value(1, 8), 0, "wiped");
    m.run("mmap p0 20 4 rw file:1:0");
    assert_eq!(
        m.one("madvise p0 8 16 wipeonfork"),
        Outcome::Err(Errno::EINVAL)
    );
    // The walk set WIPEONFORK on [10,12) (merging it into [8,10)) before
    // it reached the file VMA.
    assert_eq!(m.layout(0), "0-4 4-8(r--p) 8-12 20-24");
    m.run("madvise p0 0 4 dofork");
    assert_eq!(m.layout(0), "0-4 4-8(r--p) 8-12 20-24");
    m.teardown();
}

/// A private write fault past EOF prepares the anon_vma before the file
/// read fails (`do_cow_fault`: `anon_vma_prepare`, then `__do_fault`).
#[test]
fn private_write_past_eof_prepares_the_anon_vma_then_sigbus() {
    let mut m = Machine::new();
    m.run("mmap p0 250 4 rw file:3:62");
    assert_eq!(m.one("write p0 252 1"), Outcome::Sigbus);
    assert!(m.has_anon_vma(0, 250));
    m.teardown();
}

/// A faulted VMA moved next to an unfaulted neighbour with linear pgoff
/// merges into it, and the neighbour must get the anon_vma: `vma_expand`'s
/// `dup_anon_vma(target, copied_from)` (61f67c230a5e, in 6.18.y). With
/// DONTUNMAP the source then drops its links; the pages must stay findable.
#[test]
fn copy_vma_merge_into_unfaulted_neighbour_dups_the_anon_vma() {
    for dontunmap in ["", " dontunmap"] {
        let mut m = Machine::new();
        m.run(&format!(
            "mmap p0 0 8 rw anon\nwrite p0 4 1\nwrite p0 5 2\nmremap p0 4 4 4 to 20\n\
             munmap p0 0 4\nmmap p0 0 4 rw anon\nmremap p0 20 4 4 to 4{dontunmap}"
        ));
        assert_eq!(
            m.layout(0),
            if dontunmap.is_empty() {
                "0-8"
            } else {
                "0-8 20-24"
            }
        );
        assert!(m.has_anon_vma(0, 0));
        assert_eq!((m.value(0, 4), m.value(0, 5)), (1, 2));
        m.run("swapout p0 4\nmigrate p0 5\nread p0 4");
        m.teardown();
    }
}

// ---------------------------------------------------------------------------
// Fault injection

#[test]
fn failed_fork_leaves_no_trace() {
    let mut m = Machine::new();
    m.run(
        "mmap p0 0 4 rw anon\nwrite p0 0 1\nmmap p0 8 4 r anon\nmmap p0 12 4 rw anon\n\
         write p0 12 2",
    );
    let before = m.m.rmap().counters();
    m.run("fail-alloc 2");
    assert_eq!(m.one("fork p0"), Outcome::Err(Errno::ENOMEM));
    assert_eq!(m.m.live_pids(), [Pid(0)]);
    assert_eq!(m.m.rmap().counters(), before);
    assert_eq!(m.cells(&[(0, 0, 1), (0, 12, 13)]), ["a:1", "b:1"]);
    m.run("fork p0");
    assert_eq!(m.m.live_pids(), [Pid(0), Pid(1)], "no pid consumed");
    m.teardown();
}

#[test]
fn failed_fault_and_split() {
    let mut m = Machine::new();
    m.run("mmap p0 0 8 rw anon\nfail-alloc 1");
    assert_eq!(m.one("write p0 0 1"), Outcome::Err(Errno::ENOMEM));
    assert_eq!(m.m.pte(Pid(0), 0), Pte::None);
    m.run("write p0 0 1\nfail-alloc 1");
    assert_eq!(m.one("mprotect p0 2 2 r"), Outcome::Err(Errno::ENOMEM));
    assert_eq!(m.layout(0), "0-8");
    // the second split fails: the first stays, as in Linux
    m.run("fail-alloc 2");
    assert_eq!(m.one("mprotect p0 2 2 r"), Outcome::Err(Errno::ENOMEM));
    assert_eq!(m.layout(0), "0-2 2-8");
    // a failed munmap split changes nothing
    m.run("fail-alloc 1");
    assert_eq!(m.one("munmap p0 4 1"), Outcome::Err(Errno::ENOMEM));
    assert_eq!(m.layout(0), "0-2 2-8");
    m.teardown();
}

#[test]
fn failed_copy_vma_is_enomem_with_nothing_moved() {
    let mut m = Machine::new();
    m.run("mmap p0 0 4 rw anon\nwrite p0 0 3\nfail-alloc 1");
    assert_eq!(m.one("mremap p0 0 4 4 to 20"), Outcome::Err(Errno::ENOMEM));
    assert_eq!(m.layout(0), "0-4");
    assert_eq!(m.value(0, 0), 3);
    m.teardown();
}

// ---------------------------------------------------------------------------
// Swap and migration

#[test]
fn swapout_swapin_reclaim() {
    let mut m = Machine::new();
    m.run("mmap p0 0 4 rw anon\nwrite p0 0 41\nwrite p0 1 42\nfork p0\nswapout p0 0");
    assert_eq!(m.cells(&[(0, 0, 2), (1, 0, 2)]), ["S a:2", "S a:2"]);
    assert_eq!(
        m.m.anon_frames_live(),
        2,
        "the page stays in the swap cache"
    );
    // swap cache hit: the same page comes back
    let cached = m.m.m.swap.iter().next().unwrap().1.cache.unwrap();
    assert_eq!(m.value(1, 0), 41);
    assert_eq!(m.frame(1, 0), cached);
    m.run("reclaim");
    assert_eq!(m.m.anon_frames_live(), 2, "mapped: not reclaimed");
    assert_eq!(m.value(0, 0), 41);
    assert_eq!(m.frame(0, 0), cached);
    // both mapped again, slot gone once the last entry went
    m.run("swapout p1 0\nreclaim");
    assert_eq!(m.m.anon_frames_live(), 1);
    assert_eq!(m.value(0, 0), 41);
    assert_ne!(m.frame(0, 0), cached);
    // the write: p1 still holds the entry, so p0 copies
    m.run("write p0 0 43");
    assert_eq!(m.value(1, 0), 41);
    m.run("write p1 0 44");
    assert_eq!(m.value(0, 0), 43);
    m.teardown();

    // exclusive page: swap-in on write maps it writable, no copy
    let mut m = Machine::new();
    m.run("mmap p0 0 2 rw anon\nwrite p0 0 5\nswapout p0 0\nreclaim\nwrite p0 0 6");
    assert_eq!(m.m.stats().cow_copies, 0);
    assert_eq!(m.value(0, 0), 6);
    m.run("swapout p0 0\nexit p0");
    assert_eq!(m.m.anon_frames_live(), 0);
    assert_eq!(m.m.m.swap.len(), 0);
}

#[test]
fn migrate_moves_every_mapping() {
    let mut m = Machine::new();
    m.run("mmap p0 0 4 rw anon\nwrite p0 1 9\nfork p0\nfork p1\nmigrate p2 1");
    let f = m.frame(0, 1);
    assert_eq!((m.frame(1, 1), m.frame(2, 1)), (f, f));
    assert_eq!(m.mapcount(f), 3);
    assert_eq!(m.m.stats().migrations, 1);
    assert_eq!(m.value(2, 1), 9);
    m.run("swapout p0 1\nmigrate p0 1");
    m.teardown();
}

/// A design whose walks find nothing: swapout and migration report the
/// page they could not reach.
#[test]
fn blind_walk_is_reported() {
    for last in ["swapout p0 0", "migrate p0 0"] {
        let mut m = Mmu::new(Toy::blind());
        for op in ops("mmap p0 0 4 rw anon\nwrite p0 0 1") {
            m.apply(&op).unwrap();
        }
        let [op] = ops(last)[..] else { unreachable!() };
        match m.apply(&op) {
            Err(Violation::Findability { pid, page, .. }) => {
                assert_eq!((pid, page), (Pid(0), 0), "{last}")
            }
            other => panic!("{last}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// The machine itself

#[test]
fn state_reports_perms_kinds_offsets() {
    let mut m = Machine::new();
    m.run(
        "mmap p0 0 2 rx anon\nmmap p0 4 2 r file:1:7\nmmap p0 8 2 rw sfile:2:3\n\
         mmap p0 12 2 rwx shared\nmmap p0 16 2 none anon",
    );
    let st = m.m.state();
    let got: Vec<(String, MapKind, u64)> = st.procs[&Pid(0)]
        .vmas
        .iter()
        .map(|v| (v.perms.clone(), v.kind, v.offset))
        .collect();
    assert_eq!(
        got,
        [
            ("r-xp".to_string(), MapKind::Anon, 0),
            ("r--p".to_string(), MapKind::File(1), 7),
            ("rw-s".to_string(), MapKind::SFile(2), 3),
            ("rwxs".to_string(), MapKind::Shared, 0),
            ("---p".to_string(), MapKind::Anon, 0),
        ]
    );
    m.run("read p0 0");
    assert_eq!(m.m.state().procs[&Pid(0)].pages[&0], (FrameRef::Zero, 0));
    m.teardown();
}

#[test]
fn clone_is_independent() {
    let mut m = Machine::new();
    m.run("mmap p0 0 4 rw anon\nwrite p0 0 1");
    let snap = m.m.clone();
    m.run("write p0 0 2\nfork p0");
    let mut s = Machine::new();
    s.m = snap;
    assert_eq!(s.value(0, 0), 1);
    assert_eq!(s.m.live_pids(), [Pid(0)]);
}

// ---------------------------------------------------------------------------
// lock-discipline for page tables

/// A walk whose visits take no PTL changes PTEs unlocked: the block fails
/// `lock-discipline` at that visit; with the PTL it passes.
#[test]
fn a_walk_changing_ptes_without_the_ptl_fails_lock_discipline() {
    use crate::designs::chain_2010::{Chain2010, Era};
    use crate::sched::Schedule;
    let setup = "mmap p0 0 8 rw anon\nwrite p0 2 0x22\nmremap p0 2 2 2 to 102\n";
    let block = ops("mremap p0 102 2 2 to 2\nmigrate p0 102\n");
    for broken in [false, true] {
        let mut m = Mmu::new(Chain2010::new(Era::E2010));
        for op in ops(setup) {
            m.apply(&op).expect("setup op");
        }
        swap::tests_knob::VISIT_WITHOUT_PTL.set(broken);
        let o = m.run_block(&block, &Schedule::Explore { bound: 1 }, 1000);
        swap::tests_knob::VISIT_WITHOUT_PTL.set(false);
        let o = o.expect("a valid block");
        if !broken {
            assert!(o.failure.is_none(), "{:?}", o.failure);
            continue;
        }
        let f = o.failure.expect("lock-discipline");
        assert_eq!(f.invariant, "lock-discipline", "{f:?}");
        assert_eq!(f.actor, Some('B'));
        assert!(
            f.detail
                .contains("walk step w1.visit#0 changed a PTE of p0 without ptl(p0)"),
            "{}",
            f.detail
        );
    }
}

/// Runs `block` after `setup` on `rmap` under `explore:bound`, with the
/// lock-model knob `knob` set (the knobs of `swap::tests_knob`).
fn block_with_knob<R: Rmap + Clone>(
    rmap: R,
    setup: &str,
    block: &str,
    bound: u32,
    knob: &'static std::thread::LocalKey<std::cell::Cell<bool>>,
    on: bool,
) -> crate::mmu::BlockOutcome {
    let mut m = Mmu::new(rmap);
    for op in ops(setup) {
        m.apply(&op).expect("setup op");
    }
    knob.set(on);
    let o = m.run_block(
        &ops(block),
        &crate::sched::Schedule::Explore { bound },
        100_000,
    );
    knob.set(false);
    o.expect("a valid block")
}

/// A swapout whose `try_to_unmap_one` drops the map count but leaves the
/// PTE: the walk ends with the count at 0 and the page still mapped.
#[test]
fn an_unmap_that_leaves_the_pte_fails_unmap_success_but_mapped() {
    use crate::designs::prealloc_2026::Prealloc2026;
    let setup = "mmap p0 0 4 rw anon\nwrite p0 2 0x22\n";
    let block = "mprotect p0 0 1 r\nswapout p0 2\n";
    let knob = &swap::tests_knob::UNMAP_KEEPS_PTE;
    let o = block_with_knob(Prealloc2026::new(), setup, block, 2, knob, false);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    let o = block_with_knob(Prealloc2026::new(), setup, block, 2, knob, true);
    let f = o.failure.expect("unmap-success-but-mapped");
    assert_eq!(f.invariant, "unmap-success-but-mapped", "{f:?}");
    assert_eq!(f.actor, Some('B'));
    assert!(
        f.detail.contains("PTEs still map it: [p0:2]"),
        "{}",
        f.detail
    );
}

/// `move_ptes` taking the anon_vma lock while it holds the PTL (in the
/// eras whose `remove_migration_pte` peeks, the PTL is held across the
/// move of a migration entry), against `try_to_migrate` holding the
/// anon_vma lock and waiting for the PTL to visit the VMA `copy_vma` made:
/// neither can go on.
#[test]
fn rmap_locks_taken_after_the_ptl_deadlock_against_a_walk() {
    use crate::designs::single_list_2004::{Era, SingleList2004};
    use crate::sched::{Item, RunLen, Schedule};
    let setup = "mmap p0 0 4 rw anon\nwrite p0 2 0x22\n";
    let block = ops("mremap p0 0 4 4 to 100\nmigrate p0 2\n");
    let until = |actor, l: &str| Item {
        actor,
        run: RunLen::Until(l.into()),
    };
    let sched = Schedule::Replay {
        items: vec![
            until(0, "copy_vma"),
            until(1, "w1.visit#0"),
            until(0, "move_ptes.clear#2"),
            Item {
                actor: 1,
                run: RunLen::Finish,
            },
        ],
        strict: false,
    };
    let knob = &swap::tests_knob::RMAP_LOCKS_AFTER_PTL;
    let run = |on: bool| {
        let mut m = Mmu::new(SingleList2004::with_era_and_bugs(Era::E2006, &[]));
        for op in ops(setup) {
            m.apply(&op).expect("setup op");
        }
        knob.set(on);
        let o = m.run_block(&block, &sched, 1);
        knob.set(false);
        o.expect("a valid block")
    };
    // In the era's order the walk waits for the PTL, the move goes on and
    // the walk then finds the entry at its new place.
    let o = run(false);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    let f = run(true).failure.expect("deadlock");
    assert_eq!(f.invariant, "deadlock", "{f:?}");
    assert!(
        f.detail.contains("A holds [mmap(p0), ptl(p0)]") && f.detail.contains("B holds ["),
        "{}",
        f.detail
    );
}

// ---------------------------------------------------------------------------
// per-VMA-lock faults (6.4+ eras)

/// Blocks where a per-VMA-lock fault races each kind of VMA change on its
/// own VMA or a neighbour: `(setup, block)`.
const VMA_LOCK_RACES: &[(&str, &str)] = &[
    // A merge into an unfaulted prev (dup_anon_vma) vs a read fault on it.
    (
        "mmap p0 4 4 rw anon\nwrite p0 5 1\nmprotect p0 4 4 r\nmmap p0 0 4 rw anon\n",
        "mprotect p0 4 4 rw\nswapout p0 5\nread p0 1\n",
    ),
    // ... vs a write fault on it (anon_vma_prepare).
    (
        "mmap p0 4 4 rw anon\nwrite p0 5 1\nmprotect p0 4 4 r\nmmap p0 0 4 rw anon\n",
        "mprotect p0 4 4 rw\nswapout p0 5\nwrite p0 1 7\n",
    ),
    // mremap DONTUNMAP drops the source's anon_vma vs a write fault there.
    (
        "mmap p0 0 4 rw anon\nwrite p0 1 1\n",
        "mremap p0 0 4 4 to 20 dontunmap\nswapout p0 21\nwrite p0 2 7\n",
    ),
    // A split vs a write fault on the VMA split.
    (
        "mmap p0 0 4 rw anon\nwrite p0 1 1\n",
        "mprotect p0 0 2 r\nmigrate p0 1\nwrite p0 3 7\n",
    ),
    // munmap vs a fault in the VMA unmapped; fork vs a write in the parent.
    (
        "mmap p0 0 4 rw anon\nwrite p0 1 1\nmmap p0 4 4 rw anon\n",
        "munmap p0 2 4\nswapout p0 1\nwrite p0 5 7\n",
    ),
    (
        "mmap p0 0 4 rw anon\nwrite p0 1 1\n",
        "fork p0\nmigrate p0 1\nwrite p0 1 9\n",
    ),
];

/// Runs `block` after `setup` on `m` under `explore:bound`.
fn explore_block<R: Rmap + Clone>(
    mut m: Mmu<R>,
    setup: &str,
    block: &str,
    bound: u32,
) -> crate::mmu::BlockOutcome {
    for op in ops(setup) {
        m.apply(&op).expect("setup op");
    }
    m.run_block(
        &ops(block),
        &crate::sched::Schedule::Explore { bound },
        100_000,
    )
    .expect("a valid block")
}

#[test]
fn per_vma_lock_faults_race_vma_changes_safely_on_the_6_18_designs() {
    use crate::designs::chain_2010::{Chain2010, Era};
    use crate::designs::prealloc_2026::Prealloc2026;
    for (setup, block) in VMA_LOCK_RACES {
        let o = explore_block(Mmu::new(Prealloc2026::new()), setup, block, 3);
        assert!(
            o.failure.is_none(),
            "prealloc-2026: {block}: {:?}",
            o.failure
        );
        assert!(!o.capped && o.schedules > 1, "{block}");
        let o = explore_block(Mmu::new(Chain2010::new(Era::E2022)), setup, block, 3);
        assert!(
            o.failure.is_none(),
            "chain-2010 2022: {block}: {:?}",
            o.failure
        );
    }
}

/// The VMA write lock of `dup_anon_vma`'s destination (Jann Horn's July
/// 2023 fix) is what keeps faults out of a merge into an unfaulted VMA,
/// on prealloc-2026 as on 6.18: without it (the lock taken after the
/// clone, as 6.4 did) the merge publishes `dst->anon_vma` under a fault's
/// read lock.
#[test]
fn a_merge_publishing_anon_vma_under_a_faults_read_lock_fails_lock_discipline() {
    use crate::designs::prealloc_2026::Prealloc2026;
    let (setup, block) = VMA_LOCK_RACES[0];
    let mut m = Mmu::new(Prealloc2026::new());
    let mut locks = m.lock_model();
    assert!(locks.dup_anon_vma_locks_dst);
    locks.dup_anon_vma_locks_dst = false;
    m.set_lock_model(locks);
    let o = explore_block(m, setup, block, 1);
    let f = o.failure.expect("lock-discipline");
    assert_eq!(f.invariant, "lock-discipline", "{f:?}");
    assert_eq!(f.actor, Some('A'));
    assert!(
        f.detail.contains("changed the anon_vma of VMA") && f.detail.contains("actor C holds vma("),
        "{}",
        f.detail
    );
}

/// A per-VMA-lock fault may prepare an anon_vma only under `mmap_lock`;
/// a model that lets it do so under the VMA lock alone (6.4 before
/// `657b5146955e`, after a lockless `vma->anon_vma` test) fails when the
/// VMA loses its anon_vma between the test and the lock.
#[test]
fn a_fault_preparing_an_anon_vma_without_mmap_lock_fails_lock_discipline() {
    use crate::designs::prealloc_2026::Prealloc2026;
    let (setup, block) = VMA_LOCK_RACES[2];
    let mut m = Mmu::new(Prealloc2026::new());
    let mut locks = m.lock_model();
    locks.anon_check_under_vma_lock = false;
    m.set_lock_model(locks);
    let o = explore_block(m, setup, block, 2);
    let f = o.failure.expect("lock-discipline");
    assert_eq!(f.invariant, "lock-discipline", "{f:?}");
    assert_eq!(f.actor, Some('C'));
    assert!(
        f.detail
            .contains("holding only its VMA read lock, not mmap_lock"),
        "{}",
        f.detail
    );
}

/// A fault that takes no VMA read lock installs through a VMA the mutator
/// has write-locked (munmap holds them from its gather to its end).
#[test]
fn a_fault_without_its_vma_lock_fails_lock_discipline() {
    use crate::designs::prealloc_2026::Prealloc2026;
    let (setup, block) = VMA_LOCK_RACES[4];
    let knob = &block::tests_knob::FAULT_SKIPS_VMA_LOCK;
    let o = block_with_knob(Prealloc2026::new(), setup, block, 2, knob, false);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    let o = block_with_knob(Prealloc2026::new(), setup, block, 2, knob, true);
    let f = o.failure.expect("lock-discipline");
    assert_eq!(f.invariant, "lock-discipline", "{f:?}");
    assert!(
        f.detail.contains("installs through VMA") && f.detail.contains("for write"),
        "{}",
        f.detail
    );
}

/// Patch 8/9 of the 2026 series clones unlocked into a destination no
/// fault or walk can reach: a fork that attaches the child's VMA first
/// breaks that.
#[test]
fn a_clone_into_an_attached_vma_fails_lock_discipline() {
    use crate::designs::prealloc_2026::Prealloc2026;
    let (setup, block) = VMA_LOCK_RACES[5];
    let knob = &block::tests_knob::FORK_LINKS_BEFORE_CLONE;
    let o = block_with_knob(Prealloc2026::new(), setup, block, 1, knob, false);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    let o = block_with_knob(Prealloc2026::new(), setup, block, 1, knob, true);
    let f = o.failure.expect("lock-discipline");
    assert_eq!(f.invariant, "lock-discipline", "{f:?}");
    assert!(
        f.detail.contains("fork clone's destination VMA") && f.detail.contains("is attached"),
        "{}",
        f.detail
    );
}

/// Jann Horn's July 2023 scenario on prealloc-2026: if a merge published
/// `dst->anon_vma` before write-locking `dst`, a fault could map a page
/// through it before the chain clone: no walk reaches the page
/// (`findability` at the fault's install); and when the clone then fails
/// (ENOMEM), `dst` is unfaulted again while the page stays mapped. The
/// series' pass-1 argument ("we hold the mmap write lock") does not cover
/// this; the write lock of `dst` does.
#[test]
fn prealloc_2026_needs_dup_anon_vma_to_write_lock_dst_first() {
    use crate::designs::prealloc_2026::Prealloc2026;
    use crate::sched::{Item, RunLen, Schedule};
    let setup = "mmap p0 4 4 rw anon\nwrite p0 5 1\nmprotect p0 4 4 r\nmmap p0 0 4 rw anon\n\
                 fail-alloc 1\n";
    let block = ops("mprotect p0 4 4 rw\nswapout p0 5\nwrite p0 1 9\n");
    let item = |actor, run| Item { actor, run };
    let sched = Schedule::Replay {
        items: vec![
            item(0, RunLen::Until("merge.publish".into())),
            item(2, RunLen::Finish),
            item(0, RunLen::Finish),
            item(1, RunLen::Finish),
        ],
        strict: false,
    };
    let run = |locks_dst: bool| {
        let mut m = Mmu::new(Prealloc2026::new());
        let mut l = m.lock_model();
        l.dup_anon_vma_locks_dst = locks_dst;
        m.set_lock_model(l);
        for op in ops(setup) {
            m.apply(&op).expect("setup op");
        }
        let o = m.run_block(&block, &sched, 1).expect("a valid block");
        (m, o)
    };
    // With the lock: the fault falls back to mmap_lock and waits; the merge
    // fails on the clone's allocation and every page stays reachable.
    let (m, o) = run(true);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert_eq!(
        o.outcomes[0],
        Some(ActorOutcome::Op(Outcome::Err(rmaplab_ops::Errno::ENOMEM)))
    );
    for p in m.anon_ptes() {
        let w = m.rmap_walk(p.mapping, p.index).expect("a walk");
        assert!(w.found.contains(&(p.pid, p.page)), "{p:?}");
    }
    // Without it: the write fault maps p0:1 through the published anon_vma
    // while prev has no chain yet.
    let (_, o) = run(false);
    let f = o.failure.expect("findability");
    assert_eq!(f.invariant, "findability", "{f:?}");
    assert_eq!(f.actor, Some('C'));
    assert!(f.detail.contains("does not reach it"), "{}", f.detail);
}

/// The 2026 series' "remove unnecessary root lock dance" takes one root
/// lock for a whole clone because every anon_vma of a chain shares that
/// root. A mutant that locks each VMA's own anon_vma instead (pass 2
/// locking `src->anon_vma`, not its root) inserts the fork's AVCs into
/// the root's tree without the root's lock: `lock-discipline`, on every
/// design whose era locks the root, with no preemption needed. The
/// process forking is itself a fork child that wrote after its fork, so
/// its VMA's anon_vma is not the root.
#[test]
fn a_clone_that_locks_its_own_anon_vma_not_the_root_fails_lock_discipline() {
    use crate::designs::chain_2010::{Chain2010, Era};
    use crate::designs::prealloc_2026::Prealloc2026;
    let setup = "mmap p0 0 4 rw anon\nwrite p0 0 0x11\nfork p0\nwrite p1 1 0x22\n";
    let block = "version 2\nfork p1\nreferenced p1 1\n";
    let knob = &swap::tests_knob::LOCK_OWN_NOT_ROOT;
    let check = |o: crate::mmu::BlockOutcome, on: bool, design: &str| {
        if !on {
            assert!(o.failure.is_none(), "{design}: {:?}", o.failure);
            return;
        }
        let f = o.failure.expect("lock-discipline");
        assert_eq!(f.invariant, "lock-discipline", "{design}: {f:?}");
        assert_eq!(f.actor, Some('A'), "{design}: {f:?}");
        assert!(
            f.detail.contains("tree without anon_vma(") && f.detail.contains("for write"),
            "{design}: {}",
            f.detail
        );
    };
    for on in [false, true] {
        let o = block_with_knob(Prealloc2026::new(), setup, block, 1, knob, on);
        check(o, on, "prealloc-2026");
        for era in [Era::E2010, Era::E2015, Era::E2022] {
            let o = block_with_knob(Chain2010::new(era), setup, block, 1, knob, on);
            check(o, on, &format!("chain-2010 {era:?}"));
        }
    }
}

/// Every anon_vma tree change inside a block is checked against the lock
/// the era names for it: the single list's own anon_vma lock passes the
/// same fork, which links the child's VMA into the family's one list.
#[test]
fn a_fork_in_a_block_holds_the_lock_of_every_list_it_links() {
    use crate::designs::single_list_2004::{Era, SingleList2004};
    let setup = "mmap p0 0 4 rw anon\nwrite p0 0 0x11\nfork p0\nwrite p1 1 0x22\n";
    let block = "version 2\nfork p1\nreferenced p1 1\n";
    for era in [Era::E2004, Era::E2006] {
        let knob = &swap::tests_knob::LOCK_OWN_NOT_ROOT;
        let o = block_with_knob(
            SingleList2004::with_era_and_bugs(era, &[]),
            setup,
            block,
            2,
            knob,
            true,
        );
        assert!(o.failure.is_none(), "{era:?}: {:?}", o.failure);
    }
}

/// `pte-prot` and B21: a page of a `PROT_NONE` VMA being migrated while
/// mprotect turns the read-only VMA before it to `PROT_NONE` too, so the
/// two merge (vma_merge case 8). With the 4.8 bug the merged VMA is the
/// middle one, still read-only when `remove_migration_pte` rebuilds the
/// page's PTE from it, and `change_protection` then covers only the
/// middle's range: an accessible PTE in a `PROT_NONE` VMA. Since
/// `e86f15ee64d8` next grows down instead and the PTE is rebuilt from its
/// flags.
#[test]
fn b21_case_8_rebuilds_a_pte_from_the_middles_old_flags() {
    use crate::designs::chain_2010::{Chain2010, Era};
    let setup = "mmap p0 0 8 rw anon\nwrite p0 1 0x11\nwrite p0 5 0x55\n\
                 mprotect p0 0 4 r\nmprotect p0 4 4 none\n";
    let block = "version 2\nmprotect p0 0 4 none\nmigrate p0 5\n";
    let run = |d: Chain2010| {
        let mut m = Mmu::new(d);
        for op in ops(setup) {
            m.apply(&op).expect("setup op");
        }
        let o = m
            .run_block(
                &ops(block),
                &crate::sched::Schedule::Explore { bound: 3 },
                1000,
            )
            .expect("a valid block");
        (o, m)
    };
    for era in [Era::E2010, Era::E2015, Era::E2022] {
        let (o, _) = run(Chain2010::new(era));
        assert!(o.failure.is_none(), "{era:?}: {:?}", o.failure);
    }
    let (o, _) = run(Chain2010::with_bugs(Era::E2015, &["b21"]));
    let f = o.failure.expect("pte-prot");
    assert_eq!(f.invariant, "pte-prot", "{f:?}");
    assert!(
        f.detail
            .contains("the PTE at p0:5 is accessible, but its VMA [0, 8) is none"),
        "{}",
        f.detail
    );
}

/// `pte-prot` after a sequential op: a PTE left writable in a VMA that
/// lost `VM_WRITE` (a `change_protection` that skipped it) is reported
/// with the process and page.
#[test]
fn a_writable_pte_in_a_read_only_vma_fails_pte_prot() {
    let mut m = Mmu::new(Toy::default());
    for op in ops("mmap p0 0 4 rw anon\nwrite p0 2 0x22\nmprotect p0 0 4 r\n") {
        m.apply(&op).expect("op");
    }
    assert!(m.check_pte_prot(true).is_ok());
    let Pte::Present { frame, .. } = m.m.pte(Pid(0), 2) else {
        panic!("present")
    };
    m.m.set_pte(
        Pid(0),
        2,
        Pte::Present {
            frame,
            writable: true,
            protnone: false,
        },
    );
    match m.check_pte_prot(true) {
        Err(Violation::PteProt { pid, page, detail }) => {
            assert_eq!((pid, page), (Pid(0), 2));
            assert!(
                detail.contains("is writable, but its VMA [0, 4) is r"),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Type-stable anon_vma slots (chain-2010 era 2010): a swapout looks its
/// page up; the page's VMA is unmapped, which frees its anon_vma (a fork
/// child's, whose root is the parent's); a fault's `anon_vma_prepare`
/// reuses the slot as a root of its own. A walker that locked the old
/// root and reads the slot's root again to unlock (the knob: no
/// `page_mapped` re-check either) releases a lock it does not hold. The
/// 2.6.36 walker re-checks `page_mapped` and releases what it took; eras
/// without type-stable slots look the page up and lock in one step.
#[test]
fn an_unlock_that_rereads_a_reused_slots_root_fails_lock_discipline() {
    use crate::designs::chain_2010::{Chain2010, Era};
    let setup = "mmap p0 0 4 rw anon\nmmap p0 10 4 rw anon\nwrite p0 1 0x11\nfork p0\n\
                 write p1 1 0x22\n";
    let block = "munmap p1 0 4\nswapout p1 1\nwrite p1 11 0x33\n";
    let knob = &swap::tests_knob::UNLOCK_REREADS_ROOT;
    for era in [Era::E2010, Era::E2015, Era::E2022] {
        let o = block_with_knob(Chain2010::new(era), setup, block, 3, knob, false);
        assert!(o.failure.is_none(), "{era:?}: {:?}", o.failure);
    }
    let o = block_with_knob(Chain2010::new(Era::E2010), setup, block, 3, knob, true);
    let f = o.failure.expect("lock-discipline");
    assert_eq!(f.invariant, "lock-discipline", "{f:?}");
    assert_eq!(f.actor, Some('B'), "{f:?}");
    assert!(f.detail.contains("which it does not hold"), "{}", f.detail);
    for era in [Era::E2015, Era::E2022] {
        let o = block_with_knob(Chain2010::new(era), setup, block, 3, knob, true);
        assert!(o.failure.is_none(), "{era:?}: {:?}", o.failure);
    }
}

/// The same walker against a fork (chain-2010 era 2010): the page's
/// process exits, freeing its anon_vma (a root), and the fork's
/// `anon_vma_fork` reuses the slot: between its allocation and its link
/// (`fork.alloc#0`) the slot still names its old root, which the walker
/// locks; the fork then sets the parent's root, and an unlock that reads
/// it again releases the parent's root lock, which it does not hold.
#[test]
fn a_fork_reusing_the_walked_slot_switches_its_root_under_the_walker() {
    use crate::designs::chain_2010::{Chain2010, Era};
    let setup = "mmap p0 0 4 rw anon\nfork p0\nwrite p1 1 0x22\nwrite p0 1 0x11\n";
    let block = "fork p0\nexit p1\nswapout p1 1\n";
    let knob = &swap::tests_knob::UNLOCK_REREADS_ROOT;
    let o = block_with_knob(Chain2010::new(Era::E2010), setup, block, 3, knob, false);
    assert!(o.failure.is_none(), "{:?}", o.failure);
    let o = block_with_knob(Chain2010::new(Era::E2010), setup, block, 3, knob, true);
    let f = o.failure.expect("lock-discipline");
    assert_eq!(f.invariant, "lock-discipline", "{f:?}");
    assert_eq!(f.actor, Some('C'), "{f:?}");
    assert!(f.detail.contains("which it does not hold"), "{}", f.detail);
    let steps: Vec<&str> = o.trace.0.iter().map(|s| s.name.as_str()).collect();
    assert!(steps.contains(&"fork.alloc#0"), "{steps:?}");
}

/// `data-race`: a swapout looks its page up, the page's process exits
/// (its anon_vma, a root, is freed) and the walker locks the slot; a
/// fault in another process allocates a fresh anon_vma, which reuses the
/// slot, and (the knob) links its VMA without that anon_vma's lock while
/// the walker holds it. Since `d9d332e0874f` the fault takes the lock and
/// waits for the walker. In chain-2010 era 2010 the walker re-checks
/// `page_mapped` under the lock and drops it at once (`f18194275c39`), so
/// the same knob finds no window there.
#[test]
fn a_fault_linking_a_fresh_anon_vma_unlocked_fails_data_race() {
    use crate::designs::chain_2010::{Chain2010, Era};
    use crate::designs::single_list_2004::{Era as SlEra, SingleList2004};
    let setup = "mmap p0 0 4 rw anon\nfork p0\nwrite p1 1 0x22\n";
    let block = "exit p1\nswapout p1 1\nwrite p0 2 0x11\n";
    let knob = &block::tests_knob::PREPARE_FRESH_UNLOCKED;
    let check = |o: crate::mmu::BlockOutcome, on: bool, design: &str| {
        if !on {
            assert!(o.failure.is_none(), "{design}: {:?}", o.failure);
            return;
        }
        let f = o.failure.expect("data-race");
        assert_eq!(f.invariant, "data-race", "{design}: {f:?}");
        assert_eq!(f.actor, Some('C'), "{design}: {f:?}");
        assert!(
            f.detail.contains("which actor B holds"),
            "{design}: {}",
            f.detail
        );
    };
    for on in [false, true] {
        let sl = SingleList2004::with_era_and_bugs(SlEra::E2006, &[]);
        check(
            block_with_knob(sl, setup, block, 3, knob, on),
            on,
            "single-list-2004 2006",
        );
        let c = Chain2010::new(Era::E2010);
        let o = block_with_knob(c, setup, block, 3, knob, on);
        assert!(o.failure.is_none(), "chain-2010 2010: {:?}", o.failure);
    }
}
