//! The emulated MMU (Linux 6.18 semantics), design-agnostic.
//!
//! It owns processes (an mm each: an ordered VMA tree and a page table of
//! the 256-page window), VMAs, frames (anonymous, page cache, shmem and the
//! zero page), shmem objects and swap slots, and calls the reverse-map
//! design through [`Rmap`] exactly where Linux 6.18 calls the matching
//! `mm/rmap.c` function. It never names a design.
//!
//! Layout of the submodules, named after the kernel files they follow:
//! - [`vma`] (`mm/vma.c`): `__split_vma`, the merge machinery
//!   (`vma_merge_new_range`, `vma_merge_existing_range`, `vma_expand`,
//!   `commit_merge`, `dup_anon_vma`), `vma_modify`, `do_vmi_munmap`,
//!   `__mmap_region`, `copy_vma`;
//! - [`fault`] (`mm/memory.c`): `do_anonymous_page`, `do_wp_page`,
//!   `wp_can_reuse_anon_folio`, `wp_page_copy`, `do_read_fault` with
//!   fault-around, `do_cow_fault`, `do_shared_fault`, `anon_vma_prepare`'s
//!   neighbour test (`anon_vma_compatible`);
//! - [`fork`] (`mm/mmap.c` `dup_mmap`, `mm/memory.c` `copy_page_range`,
//!   `exit_mmap`);
//! - [`mprotect`] (`mm/mprotect.c`), [`madvise`] (`mm/madvise.c`),
//!   [`mremap`] (`mm/mremap.c`, the 6.17+ `struct vma_remap_struct` code),
//!   [`swap`] (`mm/vmscan.c`/`mm/rmap.c` `try_to_unmap`, `mm/migrate.c`,
//!   `do_swap_page`);
//! - [`census`]: counts for the oracle: what the page tables reference,
//!   kept at the two PTE writers, the checks of map counts and the layout
//!   fingerprint on them, and the full recount from the page tables (the
//!   tests' reference).
//!
//! Addresses are window page numbers; the window base is 2 MiB aligned, so a
//! page number is also its PTE index within the page table page.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use crate::arena::{Arena, Handle, SecondaryMap};
use crate::rmap::{AnonMapping, Rmap, RmapError, VmaId, VmaInfo, VmaView};
use crate::state::{FrameRef, MapKind, ProcState, State, VmaLine};
use rmaplab_ops::{Errno, FILE_PAGES, Kind, NR_FILES, Op, Outcome, Pid, Prot, WINDOW_PAGES};

mod block;
mod census;
mod exec;
mod fault;
mod fork;
mod madvise;
mod mprotect;
mod mremap;
mod swap;
mod vma;

#[cfg(test)]
mod tests;

pub use block::{ActorOutcome, BlockFailure, BlockOutcome, ScheduleRun, StepName, step_names};
use block::{Next, SchedSlot};
pub use census::Census;
#[cfg(any(test, feature = "testkit"))]
pub use census::testkit_miss_pte_write;

/// A frame: a generational handle into the MMU's frame arena.
pub type FrameId = Handle;
/// A swap slot.
pub type SwapId = Handle;

/// `vm_flags` bits (the kernel's values).
pub mod vm_flags {
    pub const VM_READ: u32 = 0x0000_0001;
    pub const VM_WRITE: u32 = 0x0000_0002;
    pub const VM_EXEC: u32 = 0x0000_0004;
    pub const VM_SHARED: u32 = 0x0000_0008;
    pub const VM_MAYREAD: u32 = 0x0000_0010;
    pub const VM_MAYWRITE: u32 = 0x0000_0020;
    pub const VM_MAYEXEC: u32 = 0x0000_0040;
    pub const VM_MAYSHARE: u32 = 0x0000_0080;
    pub const VM_GROWSDOWN: u32 = 0x0000_0100;
    pub const VM_SEQ_READ: u32 = 0x0000_8000;
    pub const VM_RAND_READ: u32 = 0x0001_0000;
    /// exec's stack before `setup_arg_pages` is done with it (the two
    /// read-ahead hints, which a stack never has otherwise).
    pub const VM_STACK_INCOMPLETE_SETUP: u32 = VM_RAND_READ | VM_SEQ_READ;
    pub const VM_DONTCOPY: u32 = 0x0002_0000;
    pub const VM_ACCOUNT: u32 = 0x0010_0000;
    pub const VM_WIPEONFORK: u32 = 0x0200_0000;
    /// `VM_ACCESS_FLAGS`: what `anon_vma_compatible` ignores.
    pub const VM_ACCESS_FLAGS: u32 = VM_READ | VM_WRITE | VM_EXEC;
}
use vm_flags::*;

/// What a VMA maps besides anonymous memory (`vma->vm_file`). Private and
/// shared mappings of file F share one identity (one open file per F); every
/// `MAP_SHARED|MAP_ANONYMOUS` mmap is its own shmem object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileRef {
    File(u8),
    Shmem(Handle),
}

/// One VMA (`struct vm_area_struct` without the design's state, which the
/// design keeps keyed by [`VmaId`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vma {
    pub mm: Pid,
    pub start: u64,
    pub end: u64,
    /// `vm_pgoff`: the address at mmap for private anonymous memory, the
    /// file (or shmem object) offset otherwise.
    pub pgoff: u64,
    pub flags: u32,
    pub file: Option<FileRef>,
}

impl Vma {
    pub fn pages(&self) -> u64 {
        self.end - self.start
    }
    /// `linear_page_index`: the page index of `addr` in this VMA.
    pub fn linear_page_index(&self, addr: u64) -> u64 {
        addr - self.start + self.pgoff
    }
    /// `vma_address`: where a page of this index sits in this VMA, if inside.
    pub fn vma_address(&self, index: u64) -> Option<u64> {
        let a = self.start.checked_add(index.checked_sub(self.pgoff)?)?;
        (a < self.end).then_some(a)
    }
    /// `vma_is_anonymous`: no file and no shmem object.
    pub fn is_anonymous(&self) -> bool {
        self.file.is_none()
    }
    pub fn is_shared(&self) -> bool {
        self.flags & (VM_SHARED | VM_MAYSHARE) != 0
    }
    fn map_kind(&self) -> MapKind {
        match self.file {
            None => MapKind::Anon,
            Some(FileRef::Shmem(_)) => MapKind::Shared,
            Some(FileRef::File(f)) if self.is_shared() => MapKind::SFile(f),
            Some(FileRef::File(f)) => MapKind::File(f),
        }
    }
    fn perms(&self) -> String {
        let mut s = String::with_capacity(4);
        s.push(if self.flags & VM_READ != 0 { 'r' } else { '-' });
        s.push(if self.flags & VM_WRITE != 0 { 'w' } else { '-' });
        s.push(if self.flags & VM_EXEC != 0 { 'x' } else { '-' });
        s.push(if self.flags & VM_MAYSHARE != 0 {
            's'
        } else {
            'p'
        });
        s
    }
}

/// A page table entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pte {
    #[default]
    None,
    Present {
        frame: FrameId,
        writable: bool,
        /// Built under a `PROT_NONE` VMA's `vm_page_prot` (`PAGE_NONE`): the
        /// page cannot be accessed through it.
        protnone: bool,
    },
    /// A swap entry (`swp_entry_t`); the slot counts its entries.
    Swap(SwapId),
    /// A migration entry; exists only while a `migrate` runs (inside a
    /// concurrent block, other actors may meet it).
    Migration { frame: FrameId, writable: bool },
}

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// The shared zero page: never counted, mapcount 0.
    Zero,
    /// An anonymous page: `folio->mapping` (the design's handle) and
    /// `folio->index` (`linear_page_index` at its first mapping).
    Anon { mapping: AnonMapping, index: u64 },
    /// Page cache page of file `file` at offset `off`.
    PageCache { file: u8, off: u64 },
    /// Page of a shmem object (`MAP_SHARED|MAP_ANONYMOUS`).
    Shmem { obj: Handle, off: u64 },
}

#[derive(Clone, Debug)]
pub struct Frame {
    pub kind: FrameKind,
    /// PTEs mapping this frame, system-wide (`/proc/kpagecount`).
    pub mapcount: u32,
    /// The first 8 bytes of the page.
    pub value: u64,
    /// `PageAnonExclusive`.
    pub exclusive: bool,
    /// The swap slot whose swap cache holds this page.
    pub swap: Option<SwapId>,
}

impl Frame {
    fn anon(&self) -> Option<(AnonMapping, u64)> {
        match self.kind {
            FrameKind::Anon { mapping, index } => Some((mapping, index)),
            _ => None,
        }
    }
}

/// A shmem object: its size (the mmap length) and the pages allocated so far.
#[derive(Clone, Debug)]
struct ShmemObj {
    size: u64,
    pages: Vec<Option<FrameId>>,
    /// VMAs referencing it (`get_file`/`fput`).
    users: u32,
}

/// A swap slot: what was written to it, how many swap PTEs reference it,
/// and the swap cache page, if any.
#[derive(Clone, Debug)]
struct SwapSlot {
    value: u64,
    count: u32,
    cache: Option<FrameId>,
    /// `pte_swp_exclusive`: the page was `PageAnonExclusive` when unmapped.
    exclusive: bool,
}

/// One process's mm.
#[derive(Clone, Debug)]
struct Mm {
    /// The VMA tree: start page -> VMA.
    vmas: BTreeMap<u64, VmaId>,
    /// The page table of the window.
    pt: Box<[Pte]>,
}

impl Mm {
    fn new() -> Mm {
        Mm {
            vmas: BTreeMap::new(),
            pt: vec![Pte::None; WINDOW_PAGES as usize].into_boxed_slice(),
        }
    }
}

/// Counters of what the MMU did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuStats {
    /// Reverse-map walks (oracle checks, swapout, migration).
    pub walks: u64,
    /// Candidate VMAs the designs returned over all walks.
    pub vmas_visited: u64,
    /// Page faults taken (read, write, write-protect, swap-in).
    pub faults: u64,
    /// Write faults that copied a page (`wp_page_copy`).
    pub cow_copies: u64,
    /// Write faults that reused a page in place.
    pub cow_reuses: u64,
    /// Successful forks.
    pub forks: u64,
    /// `__split_vma` calls that succeeded.
    pub vma_splits: u64,
    /// Merges committed (`commit_merge`).
    pub vma_merges: u64,
    /// `anon_vma_prepare` calls that reached the design.
    pub anon_vma_prepares: u64,
    /// PTEs mapped by fault-around.
    pub fault_around: u64,
    /// Pages swapped out / swapped in / migrated.
    pub swapouts: u64,
    pub swapins: u64,
    pub migrations: u64,
    /// Runs of a configuration as its era shipped that failed in a
    /// concurrent block with a race its kernel had
    /// (`DesignSpec::known_race`): counted by the engines, not reported.
    pub known_races: u64,
}

/// Kernel paths an op took ([`Mmu::last_op_paths`]), one bit each: what
/// kcov would tell a fuzzer of the functions the MMU models, in a form the
/// built-in engine's coverage reads cheaply.
pub mod path {
    /// `vma_merge`/`commit_merge` grew `prev` over the range.
    pub const MERGE_PREV: u32 = 1 << 0;
    /// The merge grew `next` down over the range (or, before 4.8, the
    /// middle over `next`).
    pub const MERGE_NEXT: u32 = 1 << 1;
    /// `prev` grew over the range and `next`: both merged.
    pub const MERGE_BOTH: u32 = 1 << 2;
    /// `dup_anon_vma`: an importer without an anon_vma took its source's.
    pub const DUP_ANON_VMA: u32 = 1 << 3;
    /// `anon_vma_prepare` reused a neighbour's anon_vma
    /// (`find_mergeable_anon_vma` found one).
    pub const PREPARE_REUSED: u32 = 1 << 4;
    /// `anon_vma_prepare` allocated an anon_vma.
    pub const PREPARE_ALLOC: u32 = 1 << 5;
    /// `copy_vma` merged the moved range into a neighbour.
    pub const COPY_VMA_MERGED: u32 = 1 << 6;
    /// `copy_vma` made a new VMA (`anon_vma_clone` of the source).
    pub const COPY_VMA_NEW: u32 = 1 << 7;
    /// `__split_vma` (its `anon_vma_clone`).
    pub const SPLIT: u32 = 1 << 8;
    /// `anon_vma_fork` reused an anon_vma of the parent's chain.
    pub const FORK_REUSED: u32 = 1 << 9;
    /// `anon_vma_fork` allocated the child's own anon_vma.
    pub const FORK_ALLOC: u32 = 1 << 10;
    /// `unlink_anon_vmas` freed an anon_vma.
    pub const UNLINK_FREED: u32 = 1 << 11;
    /// `mremap`'s `move_vma`.
    pub const MOVE_VMA: u32 = 1 << 12;
    /// A write fault copied the page (`wp_page_copy`).
    pub const COW_COPY: u32 = 1 << 13;
    /// A write fault reused the page in place (`wp_page_reuse`).
    pub const COW_REUSE: u32 = 1 << 14;
    /// `do_swap_page`: a page swapped in.
    pub const SWAP_IN: u32 = 1 << 15;
    /// `try_to_migrate`: migration entries installed.
    pub const MIGRATION_INSTALL: u32 = 1 << 16;
    /// `remove_migration_ptes`: migration entries replaced.
    pub const MIGRATION_REMOVE: u32 = 1 << 17;
    /// A new anon_vma took a slot an earlier one had freed (the
    /// type-stable slab reuse a racing lookup can meet).
    pub const SLOT_REUSED: u32 = 1 << 18;
    /// exec's `setup_arg_pages` stack (`exec-stack`).
    pub const EXEC_STACK: u32 = 1 << 19;
    /// exec's `shift_arg_pages` (`relocate_vma_down`: `exec-shift`).
    pub const EXEC_SHIFT: u32 = 1 << 20;
    /// A page swapped out (`try_to_unmap`).
    pub const SWAP_OUT: u32 = 1 << 21;
    /// Number of path bits.
    pub const COUNT: u32 = 22;
}

/// An invariant broken during an op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A hook reported a dangling reference or a failed design check.
    Rmap(RmapError),
    /// A PTE mapping an anonymous page that the design's walk did not reach
    /// (found by swapout or migration).
    Findability { pid: Pid, page: u64, detail: String },
    /// A PTE that allows more than its VMA's flags (`pte-prot`).
    PteProt { pid: Pid, page: u64, detail: String },
}

/// Result of a reverse-map walk of one page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    /// `(process, page)` of every PTE the walk reached that maps a frame
    /// with the walked `mapping` and `index`.
    pub found: Vec<(Pid, u64)>,
    /// Candidate VMAs the design returned.
    pub visited: usize,
}

/// A present PTE mapping an anonymous frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnonPte {
    pub pid: Pid,
    pub page: u64,
    pub vma: VmaId,
    /// The frame's identity (unique over the run).
    pub frame: u64,
    pub mapping: AnonMapping,
    pub index: u64,
    pub mapcount: u32,
}

/// Why an op stopped: an injected allocation failure (reported `ENOMEM`) or
/// a broken invariant.
#[derive(Debug)]
pub(crate) enum Fail {
    NoMem,
    Violation(Violation),
    /// An invariant of concurrent blocks (`stale-migration-entry`,
    /// `deadlock`, `lock-discipline`, ...); only inside a block.
    Block {
        invariant: &'static str,
        detail: String,
    },
}

impl From<RmapError> for Fail {
    fn from(e: RmapError) -> Fail {
        match e {
            RmapError::NoMem { .. } => Fail::NoMem,
            e => Fail::Violation(Violation::Rmap(e)),
        }
    }
}

impl From<Violation> for Fail {
    fn from(v: Violation) -> Fail {
        Fail::Violation(v)
    }
}

pub(crate) type KResult<T> = Result<T, Fail>;

/// Everything but the design: processes, VMAs, frames, page cache, shmem
/// objects, swap. It is the [`VmaView`] the hooks get.
#[derive(Clone)]
pub(crate) struct Machine {
    procs: Vec<Option<Mm>>,
    next_pid: u32,
    vmas: Arena<Vma>,
    frames: Arena<Frame>,
    zero: FrameId,
    page_cache: Vec<Option<FrameId>>,
    shmem: Arena<ShmemObj>,
    swap: Arena<SwapSlot>,
    nr_anon_frames: usize,
    /// VMAs unlinked, freed or resized since the start of the current op.
    dirty_vmas: Vec<VmaId>,
    /// PTEs set present since the start of the current op.
    dirty_ptes: Vec<(Pid, u64)>,
    /// PTEs [`Machine::set_pte`] set to something not present (none, a
    /// swap or migration entry) since the start of the current op: with
    /// `dirty_ptes`, every PTE it wrote, for the map-count census.
    cleared_ptes: Vec<(Pid, u64)>,
    /// Frames made, changed (through [`Machine::frame_mut`], the only way
    /// to change one) or freed since the start of the current op, and those
    /// whose PTEs it wrote (their kept counts moved: [`Machine::refs`]),
    /// for the map-count checks.
    dirty_frames: Vec<FrameId>,
    /// Pages a walk in progress holds a reference to (a migration's source
    /// and destination, a page being reclaimed): their last unmap does not
    /// free them, the walk's end does ([`Machine::release_pinned`]).
    pinned: Vec<FrameId>,
    /// Processes whose PTEs the running step of a concurrent block changed
    /// (`None` outside a block), for `lock-discipline`.
    pte_log: Option<Vec<Pid>>,
    /// What the page tables reference, kept by `set_pte` and `take_pte`
    /// (the map-count check and the layout fingerprint read it).
    refs: census::Refs,
}

impl VmaView for Machine {
    fn vma_info(&self, vma: VmaId) -> Option<VmaInfo> {
        self.vmas.get(vma).map(|v| VmaInfo {
            mm: v.mm,
            start: v.start,
            end: v.end,
            pgoff: v.pgoff,
        })
    }
    fn live_vmas(&self) -> Vec<VmaId> {
        self.procs
            .iter()
            .flatten()
            .flat_map(|mm| mm.vmas.values().copied())
            .collect()
    }
}

impl Machine {
    fn new() -> Machine {
        let mut frames = Arena::new();
        let zero = frames.insert(Frame {
            kind: FrameKind::Zero,
            mapcount: 0,
            value: 0,
            exclusive: false,
            swap: None,
        });
        Machine {
            procs: vec![Some(Mm::new())],
            next_pid: 1,
            vmas: Arena::new(),
            frames,
            zero,
            page_cache: vec![None; (NR_FILES as u64 * FILE_PAGES) as usize],
            shmem: Arena::new(),
            swap: Arena::new(),
            nr_anon_frames: 0,
            dirty_vmas: Vec::new(),
            dirty_ptes: Vec::new(),
            cleared_ptes: Vec::new(),
            dirty_frames: Vec::new(),
            pinned: Vec::new(),
            pte_log: None,
            refs: census::Refs::default(),
        }
    }

    fn mm(&self, pid: Pid) -> Option<&Mm> {
        self.procs.get(pid.0 as usize).and_then(|m| m.as_ref())
    }
    fn mm_mut(&mut self, pid: Pid) -> &mut Mm {
        self.procs[pid.0 as usize]
            .as_mut()
            .expect("mm of a live process")
    }
    fn alive(&self, pid: Pid) -> bool {
        self.mm(pid).is_some()
    }

    /// The VMA behind a live handle (an MMU invariant: the MMU never keeps a
    /// freed handle).
    pub(crate) fn vma(&self, id: VmaId) -> &Vma {
        self.vmas.get(id).expect("live VMA")
    }
    fn vma_mut(&mut self, id: VmaId) -> &mut Vma {
        self.vmas.get_mut(id).expect("live VMA")
    }

    /// `vma_lookup`: the VMA containing `addr`.
    fn vma_lookup(&self, pid: Pid, addr: u64) -> Option<VmaId> {
        let mm = self.mm(pid)?;
        let (_, &id) = mm.vmas.range(..=addr).next_back()?;
        (self.vma(id).end > addr).then_some(id)
    }
    /// `find_vma`: the first VMA ending after `addr`.
    fn find_vma(&self, pid: Pid, addr: u64) -> Option<VmaId> {
        self.vma_lookup(pid, addr)
            .or_else(|| self.vma_from(pid, addr))
    }
    /// The first VMA starting at or after `addr`.
    fn vma_from(&self, pid: Pid, addr: u64) -> Option<VmaId> {
        self.mm(pid)?.vmas.range(addr..).next().map(|(_, &id)| id)
    }
    /// The last VMA starting before `addr`.
    fn vma_before(&self, pid: Pid, addr: u64) -> Option<VmaId> {
        self.mm(pid)?
            .vmas
            .range(..addr)
            .next_back()
            .map(|(_, &id)| id)
    }
    /// `vma_prev`: the VMA before `id` in its mm.
    fn vma_prev(&self, id: VmaId) -> Option<VmaId> {
        let v = self.vma(id);
        self.vma_before(v.mm, v.start)
    }
    /// The VMA starting exactly at `id`'s end (the adjacent next VMA).
    fn vma_next_adjacent(&self, id: VmaId) -> Option<VmaId> {
        let v = self.vma(id);
        let n = self.vma_from(v.mm, v.end)?;
        (self.vma(n).start == v.end).then_some(n)
    }

    /// Inserts a VMA into its mm's tree (`vma_iter_store`).
    fn link(&mut self, id: VmaId) {
        let (mm, start) = {
            let v = self.vma(id);
            (v.mm, v.start)
        };
        let old = self.mm_mut(mm).vmas.insert(start, id);
        debug_assert!(old.is_none(), "VMA tree slot {start} taken");
    }
    /// Removes a VMA from its mm's tree.
    fn unlink_tree(&mut self, id: VmaId) {
        self.dirty_vmas.push(id);
        let (mm, start) = {
            let v = self.vma(id);
            (v.mm, v.start)
        };
        let old = self.mm_mut(mm).vmas.remove(&start);
        debug_assert_eq!(old, Some(id));
    }
    /// `vma_set_range`, keeping the tree keyed by start.
    fn set_range(&mut self, id: VmaId, start: u64, end: u64, pgoff: u64) {
        self.dirty_vmas.push(id);
        let (mm, old_start) = {
            let v = self.vma(id);
            (v.mm, v.start)
        };
        if old_start != start {
            let t = &mut self.mm_mut(mm).vmas;
            if t.get(&old_start) == Some(&id) {
                t.remove(&old_start);
            }
            t.insert(start, id);
        }
        let v = self.vma_mut(id);
        v.start = start;
        v.end = end;
        v.pgoff = pgoff;
    }

    /// A new, unlinked VMA (`vm_area_alloc`/`vm_area_dup`), taking a file
    /// reference (`get_file`).
    fn vma_alloc(&mut self, v: Vma) -> VmaId {
        self.file_get(v.file);
        self.vmas.insert(v)
    }
    /// Frees an unlinked VMA (`vm_area_free` + `fput`).
    fn vma_free(&mut self, id: VmaId) {
        self.dirty_vmas.push(id);
        let v = self.vmas.remove(id).expect("live VMA");
        self.file_put(v.file);
    }

    fn file_get(&mut self, f: Option<FileRef>) {
        if let Some(FileRef::Shmem(o)) = f {
            self.shmem.get_mut(o).expect("live shmem object").users += 1;
        }
    }
    /// `fput`: the last reference to a shmem object frees it and its pages.
    fn file_put(&mut self, f: Option<FileRef>) {
        if let Some(FileRef::Shmem(o)) = f {
            let obj = self.shmem.get_mut(o).expect("live shmem object");
            obj.users -= 1;
            if obj.users == 0 {
                let obj = self.shmem.remove(o).expect("live shmem object");
                for fr in obj.pages.into_iter().flatten() {
                    debug_assert_eq!(self.frames.get(fr).map(|f| f.mapcount), Some(0));
                    self.dirty_frames.push(fr);
                    self.frames.remove(fr);
                }
            }
        }
    }

    fn pte(&self, pid: Pid, addr: u64) -> Pte {
        // Outside the window nothing is mapped (a block's lock needs are
        // asked before the op checks its address).
        self.mm(pid)
            .and_then(|mm| mm.pt.get(addr as usize).copied())
            .unwrap_or(Pte::None)
    }
    /// Writes a PTE. With [`Machine::take_pte`], the only writer of a
    /// page table: both keep the reference counts ([`Machine::refs`]).
    fn set_pte(&mut self, pid: Pid, addr: u64, pte: Pte) {
        let noted = if matches!(pte, Pte::Present { .. }) {
            &mut self.dirty_ptes
        } else {
            &mut self.cleared_ptes
        };
        noted.push((pid, addr));
        self.note_pte_write(pid);
        let off = self.refs.off || census::missed_pte_write();
        let slot = &mut self.mm_mut(pid).pt[addr as usize];
        if off {
            *slot = pte;
            return;
        }
        let old = std::mem::replace(slot, pte);
        if old != pte {
            self.pte_refs(pid, addr, old, false);
            self.pte_refs(pid, addr, pte, true);
        }
    }
    /// Clears a PTE, returning what it held (`ptep_get_and_clear`).
    fn take_pte(&mut self, pid: Pid, addr: u64) -> Pte {
        let pte = std::mem::take(&mut self.mm_mut(pid).pt[addr as usize]);
        if pte != Pte::None {
            self.note_pte_write(pid);
            self.pte_refs(pid, addr, pte, false);
        }
        pte
    }
    /// `pte` at `pid:addr` counted in (`add`) or out of [`Machine::refs`];
    /// a frame whose counts move is noted in `dirty_frames`.
    #[inline]
    fn pte_refs(&mut self, pid: Pid, addr: u64, pte: Pte, add: bool) {
        if self.refs.off {
            return;
        }
        let frame = match pte {
            Pte::None => return,
            Pte::Swap(s) => return self.refs.swap(s, add),
            Pte::Present { frame, .. } if frame == self.zero => {
                return self.refs.zero(pid, addr, add);
            }
            Pte::Present { frame, .. } => {
                self.refs.present(frame, pid, addr, add);
                frame
            }
            Pte::Migration { frame, .. } => {
                self.refs.migration(frame, add);
                frame
            }
        };
        if self.dirty_frames.last() != Some(&frame) {
            self.dirty_frames.push(frame);
        }
    }
    #[inline]
    fn note_pte_write(&mut self, pid: Pid) {
        if let Some(log) = &mut self.pte_log
            && log.last() != Some(&pid)
        {
            log.push(pid);
        }
    }

    pub(crate) fn frame(&self, id: FrameId) -> &Frame {
        self.frames.get(id).expect("live frame")
    }
    fn frame_mut(&mut self, id: FrameId) -> &mut Frame {
        // The same frame changed twice in a row is noted once.
        if self.dirty_frames.last() != Some(&id) {
            self.dirty_frames.push(id);
        }
        self.frames.get_mut(id).expect("live frame")
    }
    /// Makes a frame (every frame is made here).
    fn insert_frame(&mut self, f: Frame) -> FrameId {
        let id = self.frames.insert(f);
        self.dirty_frames.push(id);
        id
    }
    fn frame_value(&self, id: FrameId) -> u64 {
        self.frame(id).value
    }

    /// A new anonymous frame with no mappings yet.
    fn alloc_anon_frame(&mut self, mapping: AnonMapping, index: u64, value: u64) -> FrameId {
        self.nr_anon_frames += 1;
        self.insert_frame(Frame {
            kind: FrameKind::Anon { mapping, index },
            mapcount: 0,
            value,
            exclusive: true,
            swap: None,
        })
    }
    fn free_frame(&mut self, id: FrameId) {
        self.dirty_frames.push(id);
        let f = self.frames.remove(id).expect("live frame");
        if matches!(f.kind, FrameKind::Anon { .. }) {
            self.nr_anon_frames -= 1;
        }
    }

    /// The page cache page of file `file` at `off` (all file pages are in
    /// the page cache; the frame object is made on first use).
    fn page_cache_frame(&mut self, file: u8, off: u64) -> FrameId {
        let slot = (file as u64 * FILE_PAGES + off) as usize;
        if let Some(f) = self.page_cache[slot] {
            return f;
        }
        let f = self.insert_frame(Frame {
            kind: FrameKind::PageCache { file, off },
            mapcount: 0,
            value: (file as u64) << 32 | off,
            exclusive: false,
            swap: None,
        });
        self.page_cache[slot] = Some(f);
        f
    }

    /// Size in pages of what a file-backed VMA maps (EOF / shmem size).
    fn file_size(&self, f: FileRef) -> u64 {
        match f {
            FileRef::File(_) => FILE_PAGES,
            FileRef::Shmem(o) => self.shmem.get(o).expect("live shmem object").size,
        }
    }

    /// `filemap_get_folio` for fault-around: the page at `off` if it is in
    /// the cache (files: always below EOF; shmem: only once allocated).
    fn file_page_present(&mut self, f: FileRef, off: u64) -> Option<FrameId> {
        match f {
            FileRef::File(file) => (off < FILE_PAGES).then(|| self.page_cache_frame(file, off)),
            FileRef::Shmem(o) => {
                let obj = self.shmem.get(o).expect("live shmem object");
                obj.pages.get(off as usize).copied().flatten()
            }
        }
    }

    /// `shmem_get_folio`/`filemap_fault`: the page at `off`, allocating a
    /// shmem page on first touch; `None` past EOF (SIGBUS).
    fn file_page_get(&mut self, f: FileRef, off: u64) -> Option<FrameId> {
        if off >= self.file_size(f) {
            return None;
        }
        match f {
            FileRef::File(file) => Some(self.page_cache_frame(file, off)),
            FileRef::Shmem(o) => {
                if let Some(p) = self.shmem.get(o).expect("live shmem").pages[off as usize] {
                    return Some(p);
                }
                let p = self.insert_frame(Frame {
                    kind: FrameKind::Shmem { obj: o, off },
                    mapcount: 0,
                    value: 0,
                    exclusive: false,
                    swap: None,
                });
                self.shmem.get_mut(o).expect("live shmem").pages[off as usize] = Some(p);
                Some(p)
            }
        }
    }

    /// `folio_remove_rmap_pte` plus the freeing that follows the last
    /// unmap (`free_pages_and_swap_cache`): an anonymous page dies with its
    /// last mapping unless swap entries still need its swap cache copy;
    /// page cache and shmem pages stay in their object.
    fn remove_rmap(&mut self, id: FrameId) {
        if id == self.zero {
            return;
        }
        let f = self.frame_mut(id);
        debug_assert!(f.mapcount > 0);
        f.mapcount -= 1;
        let last = f.mapcount == 0 && matches!(f.kind, FrameKind::Anon { .. });
        // A walk's reference keeps the page (folio_put frees it later).
        if last && !self.pinned.contains(&id) {
            self.free_unmapped_anon(id);
        }
    }

    /// The last reference of an unmapped anonymous page dropped: it dies
    /// unless swap entries still need its swap cache copy.
    fn free_unmapped_anon(&mut self, id: FrameId) {
        match self.frame(id).swap {
            None => self.free_frame(id),
            Some(s) => {
                // free_swap_cache: drop the swap cache copy once no swap
                // entry needs it.
                if self.swap.get(s).expect("live slot").count == 0 {
                    self.swap.remove(s);
                    self.free_frame(id);
                }
            }
        }
    }

    /// A walk takes a reference to page `id` (`folio_get`).
    fn pin(&mut self, id: FrameId) {
        self.pinned.push(id);
    }

    /// Whether a walk in progress holds page `id` (and its folio lock).
    fn is_pinned(&self, id: FrameId) -> bool {
        self.pinned.contains(&id)
    }

    /// A walk drops its reference to page `id`, whose fate it settles
    /// itself (a migrated source).
    fn unpin(&mut self, id: FrameId) {
        if let Some(i) = self.pinned.iter().position(|&p| p == id) {
            self.pinned.swap_remove(i);
        }
    }

    /// A walk drops its reference to page `id` (`folio_put`): freed if it
    /// is anonymous, alive and no longer mapped (a process unmapped it while
    /// the walk held it), as its last unmap would have.
    fn release_pinned(&mut self, id: FrameId) {
        self.unpin(id);
        if self.pinned.contains(&id) {
            return;
        }
        let Some(f) = self.frames.get(id) else { return };
        if f.mapcount == 0 && matches!(f.kind, FrameKind::Anon { .. }) {
            self.free_unmapped_anon(id);
        }
    }

    /// `swap_free` of one swap entry (`free_swap_and_cache`).
    fn swap_entry_free(&mut self, s: SwapId) {
        let slot = self.swap.get_mut(s).expect("live slot");
        slot.count -= 1;
        if slot.count > 0 {
            return;
        }
        match slot.cache {
            None => {
                self.swap.remove(s);
            }
            Some(f) => {
                if self.frame(f).mapcount == 0 && !self.pinned.contains(&f) {
                    self.swap.remove(s);
                    self.free_frame(f);
                }
            }
        }
    }

    /// `zap_pte_range`: clears every PTE of `pid` in `[start, end)`.
    fn zap_pte_range(&mut self, pid: Pid, start: u64, end: u64) {
        for a in start..end {
            let pte = self.take_pte(pid, a);
            match pte {
                Pte::None => {}
                Pte::Present { frame, .. } => self.remove_rmap(frame),
                // The migration took the mapping's count when it installed
                // the entry (try_to_migrate_one); zapping it drops nothing.
                Pte::Migration { .. } => {}
                Pte::Swap(s) => self.swap_entry_free(s),
            }
        }
    }

    /// Maps `frame` at `pid:addr` (`set_pte_at` + rmap add for an existing
    /// page).
    fn map_frame(&mut self, pid: Pid, addr: u64, frame: FrameId, writable: bool) {
        debug_assert_eq!(self.pte(pid, addr), Pte::None);
        if frame != self.zero {
            self.frame_mut(frame).mapcount += 1;
        }
        self.set_pte(
            pid,
            addr,
            Pte::Present {
                frame,
                writable,
                protnone: false,
            },
        );
    }

    /// `anon_vma_compatible(a, b)`: `a` directly below `b`, same file,
    /// flags equal but for read/write/exec, linear pgoff.
    fn anon_vma_compatible(&self, a: VmaId, b: VmaId) -> bool {
        let (a, b) = (self.vma(a), self.vma(b));
        a.end == b.start
            && a.file == b.file
            && (a.flags ^ b.flags) & !VM_ACCESS_FLAGS == 0
            && b.pgoff == a.pgoff + (b.start - a.start)
    }
}

/// The emulated MMU with one reverse-map design.
#[derive(Clone)]
pub struct Mmu<R: Rmap> {
    rmap: R,
    m: Machine,
    stats: Cell<MmuStats>,
    /// The candidate buffer of `walk_candidates`, kept between walks so the
    /// oracle's walk of every mapped page does not allocate (never holds
    /// anything between calls).
    walk_scratch: RefCell<Vec<VmaId>>,
    /// Did the last [`Mmu::apply`] end on a path known to change nothing the
    /// oracle's structural checks read (VMAs, PTEs, frames' `mapping` and
    /// `index`, the design's objects)? Set only on those paths; any other
    /// path, including every fault, leaves it `false`.
    last_op_pure: bool,
    /// The era's locking rules (the design's, unless a test replaced them).
    locks: crate::sched::LockModel,
    /// The scheduler of the concurrent block running, if any (none in
    /// sequential runs: every yield point is then one branch).
    sched: SchedSlot,
    /// A block is running (also while its scheduler is out of `sched`).
    in_block: bool,
    /// A per-VMA-lock fault of a block is running holding its VMA read
    /// lock but not `mmap_lock` (where `anon_vma_prepare` must not run).
    fault_vma_only: bool,
    /// The [`path`] bits of the op running (reset by [`Mmu::apply`]).
    paths: Cell<u32>,
    /// Past the highest anon_vma slot seen taken (for
    /// [`path::SLOT_REUSED`]).
    slot_hwm: Cell<usize>,
    /// How and when each VMA got its anon_vma ([`Mmu::anon_link`]).
    links: SecondaryMap<AnonLink>,
    /// Anon_vma links made so far (the next [`AnonLink::seq`]).
    link_seq: u32,
}

/// How a VMA got its anon_vma, and when: the [`path`] bit of the event
/// (`PREPARE_ALLOC`, `PREPARE_REUSED`, `FORK_ALLOC`, `FORK_REUSED`,
/// `SPLIT`, `COPY_VMA_NEW`, `DUP_ANON_VMA`) and how many such events came
/// before it in the run. The designs' walk order follows these events
/// (tail insertion) except where an era inserts at the head; the fuzzers
/// read it as state coverage, never the oracle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnonLink {
    pub how: u32,
    pub seq: u32,
}

impl<R: Rmap> VmaView for Mmu<R> {
    fn vma_info(&self, vma: VmaId) -> Option<VmaInfo> {
        self.m.vma_info(vma)
    }
    fn live_vmas(&self) -> Vec<VmaId> {
        self.m.live_vmas()
    }
}

/// `calc_vm_prot_bits`.
fn prot_bits(p: Prot) -> u32 {
    let mut f = 0;
    if p.readable() {
        f |= VM_READ;
    }
    if p.writable() {
        f |= VM_WRITE;
    }
    if p.executable() {
        f |= VM_EXEC;
    }
    f
}

/// Does `[addr, addr + len)` lie inside the window? An empty range must
/// still start on a window page.
/// `r`, `rw`, `rwx`, `none` ... of a VMA's flags, for reports.
fn flags_text(flags: u32) -> String {
    let mut s = String::new();
    for (bit, c) in [(VM_READ, 'r'), (VM_WRITE, 'w'), (VM_EXEC, 'x')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    if s.is_empty() {
        s.push_str("none");
    }
    s
}

fn range_ok(addr: u64, len: u64) -> bool {
    addr < WINDOW_PAGES && len <= WINDOW_PAGES - addr
}

impl<R: Rmap> Mmu<R> {
    /// A machine with `p0` alive and empty.
    pub fn new(rmap: R) -> Self {
        Mmu {
            locks: rmap.lock_model(),
            rmap,
            m: Machine::new(),
            stats: Cell::new(MmuStats::default()),
            walk_scratch: RefCell::new(Vec::new()),
            last_op_pure: false,
            sched: SchedSlot::default(),
            in_block: false,
            fault_vma_only: false,
            paths: Cell::new(0),
            slot_hwm: Cell::new(0),
            links: SecondaryMap::new(),
            link_seq: 0,
        }
    }

    /// The lock model concurrent blocks follow.
    pub fn lock_model(&self) -> crate::sched::LockModel {
        self.locks
    }

    /// Replaces the design's lock model (to show what a locking rule
    /// prevents, by running without it).
    pub fn set_lock_model(&mut self, locks: crate::sched::LockModel) {
        self.locks = locks;
    }

    /// Whether the last op took a path that changed no VMA, PTE, frame
    /// mapping or design object: an error found before any work (`ESRCH`,
    /// `EINVAL`, an empty range), a `segv`, a `dump`, a read of a present
    /// page, a write through a writable PTE. The oracle's structural checks
    /// (findability, dangling, self-check) are pure functions of that state,
    /// so after such an op they would repeat the verdict of the previous op
    /// exactly; the runner skips them then.
    pub fn last_op_pure(&self) -> bool {
        self.last_op_pure
    }

    /// The PTEs the last op set present, if it unlinked, freed or resized
    /// no VMA the design tracks. With the design's [`Rmap::epoch`] also
    /// unchanged, every other present PTE is found by the walk exactly as
    /// after the previous op, so only these need a findability check.
    pub fn last_op_pte_delta(&self) -> Option<&[(Pid, u64)]> {
        self.m
            .dirty_vmas
            .iter()
            .all(|&v| !self.rmap.tracks_vma(v))
            .then_some(&self.m.dirty_ptes[..])
    }

    /// Every PTE the last op wrote through `set_pte`, which faults and rmap
    /// walks write every PTE with (the zap and mremap's move, the only other
    /// writers, run only in `munmap`, `mmap`, `madvise`, `mremap`, `exit`
    /// and a failed fork's teardown of its child): what the map-count census
    /// scans again after a fault or a walk.
    pub fn last_op_changed_ptes(&self) -> impl Iterator<Item = (Pid, u64)> + '_ {
        self.m
            .dirty_ptes
            .iter()
            .chain(&self.m.cleared_ptes)
            .copied()
    }

    /// `pte-prot`: no PTE allows more than its VMA does. A writable PTE or
    /// migration entry needs `VM_WRITE`; a present PTE that is not
    /// `PROT_NONE` needs some access right. `all`: every PTE; else the PTEs
    /// the last op wrote and every PTE of the VMAs it changed, the only
    /// places an op can break it.
    pub fn check_pte_prot(&self, all: bool) -> Result<(), Violation> {
        let check = |pid: Pid, a: u64| -> Result<(), Violation> {
            let (writable, present_access) = match self.m.pte(pid, a) {
                Pte::Present {
                    writable, protnone, ..
                } => (writable, !protnone),
                Pte::Migration { writable, .. } => (writable, false),
                Pte::None | Pte::Swap(_) => return Ok(()),
            };
            let Some(v) = self.m.vma_lookup(pid, a) else {
                return Ok(());
            };
            let (flags, start, end) = {
                let v = self.m.vma(v);
                (v.flags, v.start, v.end)
            };
            let why = if writable && flags & VM_WRITE == 0 {
                "writable"
            } else if present_access && flags & VM_ACCESS_FLAGS == 0 {
                "accessible"
            } else {
                return Ok(());
            };
            Err(Violation::PteProt {
                pid,
                page: a,
                detail: format!(
                    "the PTE at {pid}:{a} is {why}, but its VMA [{start}, {end}) is {}",
                    flags_text(flags)
                ),
            })
        };
        if all {
            for (i, mm) in self.m.procs.iter().enumerate() {
                let Some(mm) = mm else { continue };
                for (a, pte) in mm.pt.iter().enumerate() {
                    if *pte != Pte::None {
                        check(Pid(i as u32), a as u64)?;
                    }
                }
            }
            return Ok(());
        }
        for (pid, a) in self.last_op_changed_ptes() {
            check(pid, a)?;
        }
        for &v in &self.m.dirty_vmas {
            let Some(v) = self.m.vmas.get(v) else {
                continue;
            };
            for a in v.start..v.end {
                check(v.mm, a)?;
            }
        }
        Ok(())
    }

    /// Whether `op` can reach one of the design's allocation sites
    /// (`anon_vma_prepare`, `anon_vma_clone`, `anon_vma_fork`)? Reads never
    /// do; a write only in a VMA without an anon_vma; a fork only if one of
    /// the parent's copied VMAs has one. Other ops: assume yes.
    pub fn may_allocate(&self, op: &Op) -> bool {
        match *op {
            Op::Read { .. } | Op::Referenced { .. } => false,
            Op::Write { pid, addr, .. } => {
                addr < WINDOW_PAGES
                    && self
                        .m
                        .vma_lookup(pid, addr)
                        .is_some_and(|v| !self.rmap.has_anon_vma(v))
            }
            Op::Fork { pid } => self.m.mm(pid).is_some_and(|mm| {
                mm.vmas.values().any(|&v| {
                    self.m.vma(v).flags & (vm_flags::VM_DONTCOPY | vm_flags::VM_WIPEONFORK) == 0
                        && self.rmap.has_anon_vma(v)
                })
            }),
            _ => true,
        }
    }

    /// The anonymous PTE at `pid:page`, if any.
    pub fn anon_pte_at(&self, pid: Pid, page: u64) -> Option<AnonPte> {
        let mm = self.m.mm(pid)?;
        self.anon_pte_in(pid, mm, self.m.vma_lookup(pid, page)?, page)
    }

    /// `pid:page`, in VMA `vma` of `pid`'s `mm`, if it maps an anonymous
    /// frame present.
    fn anon_pte_in(&self, pid: Pid, mm: &Mm, vma: VmaId, page: u64) -> Option<AnonPte> {
        let Pte::Present { frame, .. } = mm.pt[page as usize] else {
            return None;
        };
        let f = self.m.frame(frame);
        let FrameKind::Anon { mapping, index } = f.kind else {
            return None;
        };
        Some(AnonPte {
            pid,
            page,
            vma,
            frame: frame.raw(),
            mapping,
            index,
            mapcount: f.mapcount,
        })
    }

    /// Returns `o` from a path that changed nothing (see
    /// [`Mmu::last_op_pure`]).
    pub(super) fn pure(&mut self, o: Outcome) -> KResult<Outcome> {
        self.last_op_pure = true;
        Ok(o)
    }

    pub fn rmap(&self) -> &R {
        &self.rmap
    }
    pub fn rmap_mut(&mut self) -> &mut R {
        &mut self.rmap
    }

    pub fn stats(&self) -> MmuStats {
        self.stats.get()
    }
    /// The [`path`] bits the last op (or the block's ops, since the last
    /// [`Mmu::take_paths`]) took.
    pub fn last_op_paths(&self) -> u32 {
        self.paths.get()
    }

    /// [`Mmu::last_op_paths`], cleared.
    pub fn take_paths(&self) -> u32 {
        self.paths.replace(0)
    }

    /// Notes that the op took the [`path`] `p`.
    #[inline(always)]
    fn path(&self, p: u32) {
        self.paths.set(self.paths.get() | p);
    }

    /// Notes an anon_vma allocation's slot: [`path::SLOT_REUSED`] when an
    /// earlier anon_vma had taken it. `slot` is the design's
    /// [`Rmap::next_anon_vma_slot`] before the allocation.
    fn note_slot(&self, slot: Option<usize>) {
        if let Some(s) = slot {
            if s < self.slot_hwm.get() {
                self.path(path::SLOT_REUSED);
            }
            self.slot_hwm.set(self.slot_hwm.get().max(s + 1));
        }
    }

    fn bump(&self, f: impl FnOnce(&mut MmuStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    /// The highest live process number ([`Mmu::live_pids`]'s last), without
    /// collecting them.
    pub fn last_live_pid(&self) -> Option<Pid> {
        self.m
            .procs
            .iter()
            .rposition(Option::is_some)
            .map(|i| Pid(i as u32))
    }

    /// Live processes, by number.
    pub fn live_pids(&self) -> Vec<Pid> {
        self.m
            .procs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.is_some())
            .map(|(i, _)| Pid(i as u32))
            .collect()
    }

    /// The bounds of the VMA of `pid` containing `page`.
    pub fn vma_bounds(&self, pid: Pid, page: u64) -> Option<(u64, u64)> {
        let id = self.m.vma_lookup(pid, page)?;
        let v = self.m.vma(id);
        Some((v.start, v.end))
    }

    /// How many PTEs map the anonymous page `pid:page` maps, counted in the
    /// page tables (0 if it maps none): what a complete rmap walk of that
    /// page finds.
    pub fn anon_mappings(&self, pid: Pid, page: u64) -> u64 {
        if page >= WINDOW_PAGES || self.m.mm(pid).is_none() {
            return 0;
        }
        match self.m.pte(pid, page) {
            Pte::Present { frame, .. } if self.m.frame(frame).anon().is_some() => {
                self.ptes_mapping(frame).len() as u64
            }
            _ => 0,
        }
    }

    /// The VMA of `pid` containing `page`, for tests and reports.
    pub fn vma_at(&self, pid: Pid, page: u64) -> Option<(VmaId, Vma)> {
        let id = self.m.vma_lookup(pid, page)?;
        Some((id, self.m.vma(id).clone()))
    }

    /// How and when `vma` got its anon_vma, if the MMU saw it get one.
    pub fn anon_link(&self, vma: VmaId) -> Option<AnonLink> {
        self.links.get(vma).copied()
    }

    /// Records that `vma` got its anon_vma by the event `how`.
    fn note_link(&mut self, vma: VmaId, how: u32) {
        let seq = self.link_seq;
        self.link_seq += 1;
        self.links.insert(vma, AnonLink { how, seq });
    }

    /// The VMAs of `pid` in address order (none for a process that is not
    /// live), for the fuzzers' state-guided mutations and for reports.
    pub fn vmas_of(&self, pid: Pid) -> impl Iterator<Item = (VmaId, &Vma)> + '_ {
        self.m
            .mm(pid)
            .into_iter()
            .flat_map(|mm| mm.vmas.values())
            .map(|&id| (id, self.m.vma(id)))
    }

    /// The PTE of `pid` at `page`.
    pub fn pte(&self, pid: Pid, page: u64) -> Pte {
        if page >= WINDOW_PAGES {
            return Pte::None;
        }
        self.m.pte(pid, page)
    }

    /// Number of live VMAs in every process (`live_vmas().len()` without
    /// building the list; the runner tracks its peak after every op).
    pub fn vma_count(&self) -> usize {
        self.m.vmas.len()
    }

    /// Anonymous frames alive, including swap-cache pages (leak check).
    pub fn anon_frames_live(&self) -> usize {
        self.m.nr_anon_frames
    }

    /// Every present PTE, in any process, that maps an anonymous frame.
    pub fn anon_ptes(&self) -> Vec<AnonPte> {
        let mut out = Vec::new();
        self.anon_ptes_into(&mut out);
        out
    }

    /// [`Mmu::anon_ptes`] into a caller's buffer (cleared first), so that
    /// the oracle's check after every op allocates nothing.
    pub fn anon_ptes_into(&self, out: &mut Vec<AnonPte>) {
        out.clear();
        for (i, mm) in self.m.procs.iter().enumerate() {
            let Some(mm) = mm else { continue };
            for &vid in mm.vmas.values() {
                let v = self.m.vma(vid);
                out.extend(
                    (v.start..v.end).filter_map(|a| self.anon_pte_in(Pid(i as u32), mm, vid, a)),
                );
            }
        }
    }

    /// `rmap_walk_anon`: asks the design for the candidate VMAs of
    /// `(mapping, index)`, computes `vma_address` in each and reports the
    /// PTEs there that map a frame with this mapping and index. A candidate
    /// the MMU already freed is a dangling pointer.
    pub fn rmap_walk(&self, mapping: AnonMapping, index: u64) -> Result<Walk, RmapError> {
        let mut found = Vec::new();
        let visited = self.rmap_walk_into(mapping, index, &mut found)?;
        Ok(Walk { found, visited })
    }

    /// [`Mmu::rmap_walk`] into a caller's buffer (cleared first): the
    /// `(pid, address)` of each PTE found; returns the VMAs visited.
    pub fn rmap_walk_into(
        &self,
        mapping: AnonMapping,
        index: u64,
        found: &mut Vec<(Pid, u64)>,
    ) -> Result<usize, RmapError> {
        found.clear();
        self.walk_candidates(mapping, index, |pid, addr, pte, m| {
            if let Pte::Present { frame, .. } = pte
                && m.frame(frame).anon() == Some((mapping, index))
            {
                found.push((pid, addr));
            }
        })
    }

    /// The walk itself: calls `visit(pid, address, pte)` for every candidate
    /// VMA whose `vma_address` of `index` lies inside it.
    fn walk_candidates(
        &self,
        mapping: AnonMapping,
        index: u64,
        visit: impl FnMut(Pid, u64, Pte, &Machine),
    ) -> Result<usize, RmapError> {
        let mut cands = self.walk_scratch.take();
        cands.clear();
        let r = self.walk_each(mapping, index, &mut cands, visit);
        self.walk_scratch.replace(cands);
        r
    }

    /// The body of [`Mmu::walk_candidates`], with the candidate buffer.
    fn walk_each(
        &self,
        mapping: AnonMapping,
        index: u64,
        cands: &mut Vec<VmaId>,
        mut visit: impl FnMut(Pid, u64, Pte, &Machine),
    ) -> Result<usize, RmapError> {
        self.rmap.rmap_walk(&self.m, mapping, index, cands)?;
        for &c in cands.iter() {
            let Some(v) = self.m.vmas.get(c) else {
                return Err(RmapError::Dangling {
                    what: "vma".into(),
                    detail: format!(
                        "the walk of mapping {mapping} index {index:#x} returned VMA {c}, \
                         which the MMU freed"
                    ),
                });
            };
            if let Some(a) = v.vma_address(index) {
                visit(v.mm, a, self.m.pte(v.mm, a), &self.m);
            }
        }
        self.bump(|s| {
            s.walks += 1;
            s.vmas_visited += cands.len() as u64;
        });
        Ok(cands.len())
    }

    /// What a user sees: maps lines and present pages of every process.
    pub fn state(&self) -> State {
        let mut st = State::default();
        for (i, mm) in self.m.procs.iter().enumerate() {
            let Some(mm) = mm else { continue };
            let mut ps = ProcState::default();
            for &vid in mm.vmas.values() {
                let v = self.m.vma(vid);
                ps.vmas.push(VmaLine {
                    start: v.start,
                    end: v.end,
                    perms: v.perms(),
                    kind: v.map_kind(),
                    offset: if v.is_anonymous() { 0 } else { v.pgoff },
                });
                for a in v.start..v.end {
                    if let Pte::Present { frame, .. } = mm.pt[a as usize] {
                        let e = if frame == self.m.zero {
                            (FrameRef::Zero, 0)
                        } else {
                            (FrameRef::Frame(frame.raw()), self.m.frame(frame).mapcount)
                        };
                        ps.pages.insert(a, e);
                    }
                }
            }
            st.procs.insert(Pid(i as u32), ps);
        }
        st
    }

    /// Executes one op. An injected allocation failure becomes
    /// `err ENOMEM` after the op undid what Linux undoes; a dangling
    /// reference or failed design check is a [`Violation`].
    pub fn apply(&mut self, op: &Op) -> Result<Outcome, Violation> {
        self.last_op_pure = false;
        self.paths.set(0);
        self.m.dirty_vmas.clear();
        self.m.dirty_ptes.clear();
        self.m.cleared_ptes.clear();
        self.m.dirty_frames.clear();
        let r = match self.dispatch(op) {
            Ok(o) => Ok(o),
            Err(Fail::NoMem) => Ok(Outcome::Err(Errno::ENOMEM)),
            Err(Fail::Violation(v)) => Err(v),
            // Block invariants fail only inside blocks, which do not come
            // through here; named like a design check should one escape.
            Err(Fail::Block { invariant, detail }) => Err(Violation::Rmap(RmapError::Check {
                name: invariant,
                detail,
            })),
        }?;
        if !self.last_op_pure {
            self.check_pte_prot(false)?;
        }
        Ok(r)
    }

    /// The op's code (sequential, or the split mutator of a block).
    fn dispatch(&mut self, op: &Op) -> KResult<Outcome> {
        match *op {
            Op::Mmap {
                pid,
                addr,
                len,
                prot,
                kind,
                replace,
            } => self.op_mmap(pid, addr, len, prot, kind, replace),
            Op::Munmap { pid, addr, len } => self.op_munmap(pid, addr, len),
            Op::Mprotect {
                pid,
                addr,
                len,
                prot,
            } => self.op_mprotect(pid, addr, len, prot),
            Op::Mremap {
                pid,
                old,
                old_len,
                new_len,
                to,
            } => self.op_mremap(pid, old, old_len, new_len, to),
            Op::Madvise {
                pid,
                addr,
                len,
                advice,
            } => self.op_madvise(pid, addr, len, advice),
            Op::Fork { pid } => self.op_fork(pid),
            Op::Exit { pid } => self.op_exit(pid),
            Op::Read { pid, addr } => self.op_read(pid, addr),
            Op::Write { pid, addr, value } => self.op_write(pid, addr, value),
            Op::Swapout { pid, addr } => self.op_swapout(pid, addr),
            Op::Reclaim => self.op_reclaim(),
            Op::Migrate { pid, addr } => self.op_migrate(pid, addr),
            Op::Referenced { pid, addr } => self.op_referenced(pid, addr),
            Op::FailAlloc { n } => {
                // Arms the schedule only: no object changes yet.
                self.rmap.alloc_schedule().fail_nth(n);
                self.pure(Outcome::Ok)
            }
            Op::Dump => self.pure(Outcome::Ok),
            Op::ExecStack { pid, addr, len } => self.op_exec_stack(pid, addr, len),
            Op::ExecShift { pid, shift } => self.op_exec_shift(pid, shift),
        }
    }

    /// `referenced P ADDR` (op language v2): `folio_referenced` of the
    /// anonymous page at `pid:addr`; `ok N` (as `Outcome::Value(N)`) with N
    /// the mappings the walk found.
    pub fn referenced(&mut self, pid: Pid, addr: u64) -> Result<Outcome, Violation> {
        self.last_op_pure = false;
        self.paths.set(0);
        self.m.dirty_vmas.clear();
        self.m.dirty_ptes.clear();
        self.m.cleared_ptes.clear();
        self.m.dirty_frames.clear();
        match self.op_referenced(pid, addr) {
            Ok(o) => Ok(o),
            Err(Fail::Violation(v)) => Err(v),
            Err(Fail::NoMem) => Ok(Outcome::Err(Errno::ENOMEM)),
            Err(Fail::Block { invariant, detail }) => Err(Violation::Rmap(RmapError::Check {
                name: invariant,
                detail,
            })),
        }
    }

    /// Checks common to ops on a range: `ESRCH` for a dead process, `EINVAL`
    /// for a range reaching outside the window.
    fn check_range(&self, pid: Pid, addr: u64, len: u64) -> Option<Outcome> {
        if !self.m.alive(pid) {
            return Some(Outcome::Err(Errno::ESRCH));
        }
        if !range_ok(addr, len) {
            return Some(Outcome::Err(Errno::EINVAL));
        }
        None
    }

    fn op_mmap(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        prot: Prot,
        kind: Kind,
        replace: bool,
    ) -> KResult<Outcome> {
        if let Some(o) = self.check_range(pid, addr, len) {
            return self.pure(o);
        }
        if replace && let Some(o) = self.temporary_stack_in(pid, addr, len) {
            return self.pure(o);
        }
        if len == 0 {
            // do_mmap
            return self.pure(Outcome::Err(Errno::EINVAL));
        }
        self.do_mmap(pid, addr, len, prot, kind, replace)
    }

    fn op_munmap(&mut self, pid: Pid, addr: u64, len: u64) -> KResult<Outcome> {
        if let Some(o) = self.check_range(pid, addr, len) {
            return self.pure(o);
        }
        if let Some(o) = self.temporary_stack_in(pid, addr, len) {
            return self.pure(o);
        }
        if len == 0 {
            // do_vmi_munmap
            return self.pure(Outcome::Err(Errno::EINVAL));
        }
        self.do_vmi_munmap(pid, addr, addr + len)?;
        Ok(Outcome::Ok)
    }

    fn op_mprotect(&mut self, pid: Pid, addr: u64, len: u64, prot: Prot) -> KResult<Outcome> {
        if let Some(o) = self.check_range(pid, addr, len) {
            return self.pure(o);
        }
        if let Some(o) = self.temporary_stack_in(pid, addr, len) {
            return self.pure(o);
        }
        if len == 0 {
            // do_mprotect_pkey: nothing to do.
            return self.pure(Outcome::Ok);
        }
        self.do_mprotect_pkey(pid, addr, addr + len, prot)
    }

    fn op_madvise(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        advice: rmaplab_ops::Advice,
    ) -> KResult<Outcome> {
        if let Some(o) = self.check_range(pid, addr, len) {
            return self.pure(o);
        }
        if let Some(o) = self.temporary_stack_in(pid, addr, len) {
            return self.pure(o);
        }
        if len == 0 {
            // do_madvise: an empty range is a successful no-op.
            return self.pure(Outcome::Ok);
        }
        self.madvise_walk_vmas(pid, addr, addr + len, advice)
    }

    fn op_fork(&mut self, pid: Pid) -> KResult<Outcome> {
        if !self.m.alive(pid) {
            return self.pure(Outcome::Err(Errno::ESRCH));
        }
        self.dup_mmap(pid)
    }

    fn op_exit(&mut self, pid: Pid) -> KResult<Outcome> {
        if !self.m.alive(pid) {
            return self.pure(Outcome::Err(Errno::ESRCH));
        }
        self.exit_mmap(pid)?;
        Ok(Outcome::Ok)
    }

    fn op_read(&mut self, pid: Pid, addr: u64) -> KResult<Outcome> {
        if let Some(o) = self.check_range(pid, addr, 1) {
            return self.pure(o);
        }
        self.handle_read(pid, addr)
    }

    fn op_write(&mut self, pid: Pid, addr: u64, value: u64) -> KResult<Outcome> {
        if let Some(o) = self.check_range(pid, addr, 1) {
            return self.pure(o);
        }
        self.handle_write(pid, addr, value)
    }

    /// `anon_vma_prepare`: gives `vma` an anon_vma on its first anonymous
    /// fault, offering the design the neighbours `find_mergeable_anon_vma`
    /// may reuse (next first, then prev) when they pass
    /// `anon_vma_compatible` (`mm/rmap.c` `__anon_vma_prepare`).
    fn anon_vma_prepare(&mut self, vma: VmaId) -> KResult<()> {
        if self.rmap.has_anon_vma(vma) {
            return Ok(());
        }
        if self.fault_vma_only {
            // __anon_vma_prepare's mmap_assert_locked: find_mergeable_anon_vma
            // reads the neighbours, which only mmap_lock keeps alive.
            return Err(Fail::Block {
                invariant: "lock-discipline",
                detail: format!(
                    "a fault ran anon_vma_prepare on VMA {vma} holding only its VMA read lock, \
                     not mmap_lock"
                ),
            });
        }
        let next = self
            .m
            .vma_next_adjacent(vma)
            .filter(|&n| self.m.anon_vma_compatible(vma, n));
        let prev = self
            .m
            .vma_prev(vma)
            .filter(|&p| self.m.anon_vma_compatible(p, vma));
        self.bump(|s| s.anon_vma_prepares += 1);
        let (n0, slot) = (
            self.rmap.counters().anon_vmas,
            self.rmap.next_anon_vma_slot(),
        );
        self.rmap.anon_vma_prepare(&self.m, vma, next, prev)?;
        let how = self.noted_alloc(n0, slot, path::PREPARE_ALLOC, path::PREPARE_REUSED);
        self.note_link(vma, how);
        Ok(())
    }

    /// After an `anon_vma_prepare` or `anon_vma_fork` that began with `n0`
    /// live anon_vmas and `slot` next: `alloc` if it allocated one (and
    /// the slot's reuse), else `reused`.
    fn noted_alloc(&self, n0: u64, slot: Option<usize>, alloc: u32, reused: u32) -> u32 {
        if self.rmap.counters().anon_vmas > n0 {
            self.path(alloc);
            self.note_slot(slot);
            alloc
        } else {
            self.path(reused);
            reused
        }
    }

    /// `unlink_anon_vmas` for a VMA that is going away (or, for
    /// `MREMAP_DONTUNMAP`, losing its anon_vma).
    fn unlink_anon_vmas(&mut self, vma: VmaId) -> KResult<()> {
        let n0 = self.rmap.counters().anon_vmas;
        self.rmap.unlink_anon_vmas(&self.m, vma)?;
        if self.rmap.counters().anon_vmas < n0 {
            self.path(path::UNLINK_FREED);
        }
        Ok(())
    }

    /// Every PTE of any process that maps `frame` (for reports of PTEs a
    /// walk missed).
    fn ptes_mapping(&self, frame: FrameId) -> Vec<(Pid, u64)> {
        let mut out = Vec::new();
        for (i, mm) in self.m.procs.iter().enumerate() {
            let Some(mm) = mm else { continue };
            for (a, pte) in mm.pt.iter().enumerate() {
                match *pte {
                    Pte::Present { frame: f, .. } | Pte::Migration { frame: f, .. }
                        if f == frame =>
                    {
                        out.push((Pid(i as u32), a as u64))
                    }
                    _ => {}
                }
            }
        }
        out
    }
}
