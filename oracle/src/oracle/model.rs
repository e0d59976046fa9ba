//! The reference model: plain per-process memory with Linux 6.18 semantics.
//!
//! This is the oracle every emulated rmap design is compared with, so it is
//! deliberately naive: each process is a map from window page to what that
//! page maps (protection, madvise flags and its backing: private anonymous
//! value, private file page with an optional private copy, shared file page,
//! or shared-anonymous object page). There are no frames, no page tables, no
//! anon_vmas and no COW: a fork copies the values, which is exactly what COW
//! makes a user see.
//!
//! The only place where VMA boundaries matter for outcomes is `mremap`
//! (resizing must stay inside one VMA, growing in place needs the range to
//! reach the VMA's end). For that, [`Model::step`] takes the layout of the
//! machine under test before the op ([`Layout`]); without one it uses its own
//! *coarse* layout: maximal runs of pages that are adjacent and have the same
//! protection, the same madvise flags, the same kind and linear offsets. The
//! coarse layout may merge VMAs that Linux keeps apart (e.g. after a fork,
//! see `docs/linux-6.18.md` §4.5); it is only a fallback and is
//! also what [`Model::state`] reports.
//!
//! Conventions shared with the rest of the testbed (`docs/op-language.md`):
//! - an op naming a process that is not live gets `ESRCH`, checked first;
//! - an op whose range is not inside the window gets `EINVAL` and changes
//!   nothing. A range `[addr, addr + len)` is inside the window when
//!   `addr < WINDOW_PAGES` and `addr + len <= WINDOW_PAGES` (so even an empty
//!   range must start on a window page); a single-page op needs
//!   `addr < WINDOW_PAGES`.

use std::collections::BTreeMap;

use rmaplab_impls::state::{MapKind, ProcState, State, VmaLine};
use rmaplab_ops::{
    Advice, Errno, FILE_PAGES, Kind, MremapTo, NR_FILES, Op, Outcome, Pid, Prot, WINDOW_PAGES,
};

/// Where VMA boundaries are (only mremap outcomes depend on them).
pub trait Layout {
    /// The `[start, end)` of the VMA of process `pid` that contains `page`,
    /// or `None` if no VMA contains it.
    fn vma_bounds(&self, pid: Pid, page: u64) -> Option<(u64, u64)>;

    /// How many PTEs map the anonymous page `pid:page` maps (0 if none),
    /// if the layout knows: the page tables of the machine under test do,
    /// the model (which has no frames) does not. The expected outcome of
    /// `referenced`.
    fn anon_mappings(&self, _pid: Pid, _page: u64) -> Option<u64> {
        None
    }
}

/// What one mapped page is backed by, with the data a private page owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backing {
    /// `MAP_PRIVATE | MAP_ANONYMOUS`; `None` = never written since it was
    /// mapped or zapped (reads 0).
    Anon { value: Option<u64> },
    /// `MAP_PRIVATE` of file `file` at page offset `off`; `copy` is the
    /// private COW copy, `None` while the page still shows the file.
    File {
        file: u8,
        off: u64,
        copy: Option<u64>,
    },
    /// `MAP_SHARED` of file `file` at page offset `off`.
    SFile { file: u8, off: u64 },
    /// `MAP_SHARED | MAP_ANONYMOUS`: page `off` of shmem object `obj`.
    Shared { obj: u64, off: u64 },
}

impl Backing {
    /// The offset the page has in its file or object (`vm_pgoff` + index);
    /// `None` for private anonymous memory.
    fn offset(self) -> Option<u64> {
        match self {
            Backing::Anon { .. } => None,
            Backing::File { off, .. }
            | Backing::SFile { off, .. }
            | Backing::Shared { off, .. } => Some(off),
        }
    }

    /// The same mapping `delta` pages further on, with no private data:
    /// what a VMA grown by mremap maps there.
    fn continued(self, delta: u64) -> Option<Backing> {
        Some(match self {
            Backing::Anon { .. } => Backing::Anon { value: None },
            Backing::File { file, off, .. } => Backing::File {
                file,
                off: off.checked_add(delta)?,
                copy: None,
            },
            Backing::SFile { file, off } => Backing::SFile {
                file,
                off: off.checked_add(delta)?,
            },
            Backing::Shared { obj, off } => Backing::Shared {
                obj,
                off: off.checked_add(delta)?,
            },
        })
    }

    /// The page with its private data dropped (what `zap_page_range` leaves
    /// behind): private anon reads 0 again, a private file page shows the
    /// file again; shared pages keep showing their object.
    fn zapped(self) -> Backing {
        match self {
            Backing::Anon { .. } => Backing::Anon { value: None },
            Backing::File { file, off, .. } => Backing::File {
                file,
                off,
                copy: None,
            },
            b @ (Backing::SFile { .. } | Backing::Shared { .. }) => b,
        }
    }

    fn map_kind(self) -> MapKind {
        match self {
            Backing::Anon { .. } => MapKind::Anon,
            Backing::File { file, .. } => MapKind::File(file),
            Backing::SFile { file, .. } => MapKind::SFile(file),
            Backing::Shared { .. } => MapKind::Shared,
        }
    }

    /// `VM_SHARED | VM_MAYSHARE`: a `MAP_SHARED` mapping.
    fn is_shared(self) -> bool {
        matches!(self, Backing::SFile { .. } | Backing::Shared { .. })
    }

    /// Whether `next` continues `self` in one VMA of the coarse layout: the
    /// same object and a linear offset (anonymous memory is always linear).
    fn continues_into(self, next: Backing) -> bool {
        match (self, next) {
            (Backing::Anon { .. }, Backing::Anon { .. }) => true,
            (
                Backing::File {
                    file: f, off: o, ..
                },
                Backing::File {
                    file: g, off: p, ..
                },
            )
            | (Backing::SFile { file: f, off: o }, Backing::SFile { file: g, off: p }) => {
                f == g && o.checked_add(1) == Some(p)
            }
            (Backing::Shared { obj: a, off: o }, Backing::Shared { obj: b, off: p }) => {
                a == b && o.checked_add(1) == Some(p)
            }
            _ => false,
        }
    }
}

/// Whether a page's VMA is exec's stack (`VM_GROWSDOWN`, which never
/// merges with a mapping `mmap` makes), and whether `setup_arg_pages` has
/// moved it yet (`VM_STACK_INCOMPLETE_SETUP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stack {
    No,
    Temporary,
    SetUp,
}

/// One mapped page: its VMA's attributes and its backing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Page {
    prot: Prot,
    stack: Stack,
    /// `VM_DONTCOPY` (`MADV_DONTFORK`).
    dontfork: bool,
    /// `VM_WIPEONFORK` (`MADV_WIPEONFORK`).
    wipeonfork: bool,
    backing: Backing,
}

impl Page {
    /// Same VMA attributes (the coarse layout's merge test, without
    /// adjacency).
    fn same_vma_as(&self, next: &Page) -> bool {
        self.prot == next.prot
            && self.stack == next.stack
            && self.dontfork == next.dontfork
            && self.wipeonfork == next.wipeonfork
            && self.backing.continues_into(next.backing)
    }
}

/// A shmem object made by one `mmap(MAP_SHARED | MAP_ANONYMOUS)`.
#[derive(Clone, Debug, Default)]
struct ShmObject {
    /// Size in pages (the mmap length); access at or past it is SIGBUS.
    size: u64,
    /// Written pages; others read 0.
    values: BTreeMap<u64, u64>,
}

/// The reference model (see the module documentation).
#[derive(Clone, Debug)]
pub struct Model {
    /// Live processes and their mapped pages.
    procs: BTreeMap<Pid, BTreeMap<u64, Page>>,
    /// The number the next successful fork gives its child.
    next_pid: u32,
    /// Contents of files `0..NR_FILES` (all fully cached, never resized).
    files: Vec<Vec<u64>>,
    /// Shmem objects by id. Objects are never freed: one that no page maps
    /// any more is unreachable, which is all "dies with its last mapping"
    /// means semantically.
    objects: BTreeMap<u64, ShmObject>,
    next_object: u64,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

/// Result of an op's body: `Ok(outcome)` or an errno.
type OpResult = Result<Outcome, Errno>;

fn in_window(addr: u64, len: u64) -> bool {
    addr < WINDOW_PAGES && addr.checked_add(len).is_some_and(|end| end <= WINDOW_PAGES)
}

fn window(addr: u64, len: u64) -> Result<(), Errno> {
    if in_window(addr, len) {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}

impl Model {
    /// `p0` live with an empty address space; files hold their initial
    /// contents (`F << 32 | O`).
    pub fn new() -> Model {
        let files = (0..u64::from(NR_FILES))
            .map(|f| (0..FILE_PAGES).map(|o| (f << 32) | o).collect())
            .collect();
        let mut procs = BTreeMap::new();
        procs.insert(Pid(0), BTreeMap::new());
        Model {
            procs,
            next_pid: 1,
            files,
            objects: BTreeMap::new(),
            next_object: 0,
        }
    }

    /// Execute one op. `layout` is the VMA layout of the machine under test
    /// before this op; `None` uses the model's own coarse layout.
    pub fn step(&mut self, op: &Op, layout: Option<&dyn Layout>) -> Outcome {
        if let Some(pid) = op.pid()
            && !self.is_live(pid)
        {
            return Outcome::Err(Errno::ESRCH);
        }
        let result = match *op {
            Op::Mmap {
                pid,
                addr,
                len,
                prot,
                kind,
                replace,
            } => self.mmap(pid, addr, len, prot, kind, replace),
            Op::Munmap { pid, addr, len } => self.munmap(pid, addr, len),
            Op::Mprotect {
                pid,
                addr,
                len,
                prot,
            } => self.mprotect(pid, addr, len, prot),
            Op::Madvise {
                pid,
                addr,
                len,
                advice,
            } => self.madvise(pid, addr, len, advice),
            Op::Mremap {
                pid,
                old,
                old_len,
                new_len,
                to,
            } => self.mremap(pid, old, old_len, new_len, to, layout),
            Op::Fork { pid } => Ok(self.fork(pid)),
            Op::Exit { pid } => {
                self.procs.remove(&pid);
                Ok(Outcome::Ok)
            }
            Op::Read { pid, addr } => window(addr, 1).map(|()| self.read(pid, addr)),
            Op::Write { pid, addr, value } => {
                window(addr, 1).map(|()| self.write(pid, addr, value))
            }
            // Emulator-only ops never change what a user sees.
            Op::Swapout { addr, .. } | Op::Migrate { addr, .. } => {
                window(addr, 1).map(|()| Outcome::Ok)
            }
            // A complete walk finds every PTE that maps the page; without
            // page tables to count them in, the model cannot say.
            Op::Referenced { pid, addr } => window(addr, 1).map(|()| {
                layout
                    .and_then(|l| l.anon_mappings(pid, addr))
                    .map_or(Outcome::Unsupported, Outcome::Value)
            }),
            Op::Reclaim | Op::FailAlloc { .. } | Op::Dump => Ok(Outcome::Ok),
            Op::ExecStack { pid, addr, len } => self.exec_stack(pid, addr, len),
            Op::ExecShift { pid, shift } => self.exec_shift(pid, shift, layout),
        };
        result.unwrap_or_else(Outcome::Err)
    }

    /// Per live process, its VMAs in the model's coarse layout. The model
    /// has no frames, so `pages` is always empty.
    pub fn state(&self) -> State {
        let procs = self
            .procs
            .keys()
            .map(|&pid| {
                let vmas = self
                    .runs(pid)
                    .into_iter()
                    .map(|(start, end)| {
                        let page = &self.procs[&pid][&start];
                        VmaLine {
                            start,
                            end,
                            perms: perms(page),
                            kind: page.backing.map_kind(),
                            offset: page.backing.offset().unwrap_or(0),
                        }
                    })
                    .collect();
                (
                    pid,
                    ProcState {
                        vmas,
                        pages: BTreeMap::new(),
                    },
                )
            })
            .collect();
        State { procs }
    }

    pub fn is_live(&self, pid: Pid) -> bool {
        self.procs.contains_key(&pid)
    }

    pub fn live_pids(&self) -> Vec<Pid> {
        self.procs.keys().copied().collect()
    }

    /// What a read of `pid:page` would return if the protection allowed it;
    /// `None` if the page is unmapped, the process is not live, or the
    /// access would be SIGBUS.
    pub fn value_at(&self, pid: Pid, page: u64) -> Option<u64> {
        let p = self.procs.get(&pid)?.get(&page)?;
        self.load(p.backing)
    }

    // ----------------------------------------------------------------------
    // Memory access

    /// The value a page's backing holds; `None` past EOF / the object size.
    fn load(&self, backing: Backing) -> Option<u64> {
        match backing {
            Backing::Anon { value } => Some(value.unwrap_or(0)),
            Backing::File { file, off, copy } => {
                let shown = self.file_page(file, off)?;
                Some(copy.unwrap_or(shown))
            }
            Backing::SFile { file, off } => self.file_page(file, off),
            Backing::Shared { obj, off } => {
                let o = &self.objects[&obj];
                (off < o.size).then(|| o.values.get(&off).copied().unwrap_or(0))
            }
        }
    }

    fn file_page(&self, file: u8, off: u64) -> Option<u64> {
        let off = usize::try_from(off).ok()?;
        self.files[usize::from(file)].get(off).copied()
    }

    /// A user load. Protection is checked before the backing
    /// (`do_user_addr_fault`: `access_error` gives SIGSEGV before the fault
    /// handler can find the page past EOF and give SIGBUS).
    fn read(&self, pid: Pid, addr: u64) -> Outcome {
        let Some(page) = self.procs[&pid].get(&addr) else {
            return Outcome::Segv;
        };
        if !page.prot.readable() {
            return Outcome::Segv;
        }
        match self.load(page.backing) {
            Some(v) => Outcome::Value(v),
            None => Outcome::Sigbus,
        }
    }

    /// A user store: a private anon page takes the value; a private file page
    /// gets its private copy (`do_cow_fault` / `wp_page_copy`); a shared file
    /// page writes the page cache, seen by every mapping of the file that has
    /// no private copy there; a shared anon page writes the shmem object.
    fn write(&mut self, pid: Pid, addr: u64, value: u64) -> Outcome {
        let Some(page) = self.procs[&pid].get(&addr).copied() else {
            return Outcome::Segv;
        };
        if !page.prot.writable() {
            return Outcome::Segv;
        }
        if self.load(page.backing).is_none() {
            return Outcome::Sigbus;
        }
        match page.backing {
            Backing::Anon { .. } => {
                self.set_backing(pid, addr, Backing::Anon { value: Some(value) })
            }
            Backing::File { file, off, .. } => self.set_backing(
                pid,
                addr,
                Backing::File {
                    file,
                    off,
                    copy: Some(value),
                },
            ),
            Backing::SFile { file, off } => {
                self.files[usize::from(file)][off as usize] = value;
            }
            Backing::Shared { obj, off } => {
                self.objects
                    .get_mut(&obj)
                    .expect("mapped object")
                    .values
                    .insert(off, value);
            }
        }
        Outcome::Ok
    }

    fn set_backing(&mut self, pid: Pid, addr: u64, backing: Backing) {
        self.procs
            .get_mut(&pid)
            .and_then(|pages| pages.get_mut(&addr))
            .expect("mapped page")
            .backing = backing;
    }

    // ----------------------------------------------------------------------
    // Address-space ops

    fn pages_mut(&mut self, pid: Pid) -> &mut BTreeMap<u64, Page> {
        self.procs.get_mut(&pid).expect("live process")
    }

    fn is_mapped(&self, pid: Pid, page: u64) -> bool {
        self.procs[&pid].contains_key(&page)
    }

    fn any_mapped(&self, pid: Pid, addr: u64, len: u64) -> bool {
        self.procs[&pid].range(addr..addr + len).next().is_some()
    }

    /// Remove every page of `[addr, addr + len)` (`do_vmi_munmap`; holes are
    /// fine).
    fn unmap(&mut self, pid: Pid, addr: u64, len: u64) {
        let pages = self.pages_mut(pid);
        let doomed: Vec<u64> = pages.range(addr..addr + len).map(|(&p, _)| p).collect();
        for p in doomed {
            pages.remove(&p);
        }
    }

    /// `mmap` with `MAP_FIXED_NOREPLACE` (`EEXIST` on any overlap,
    /// `do_mmap`) or `MAP_FIXED` (the range is unmapped first, `mmap_region`).
    /// A file mapping may reach past EOF; access there is SIGBUS. Each shared
    /// anonymous mmap is a new shmem object of `len` pages
    /// (`shmem_zero_setup`).
    ///
    /// Not representable in the op language's errno set, reported as `EINVAL`: a file
    /// number `>= NR_FILES` (Linux: `EBADF`), an offset whose end overflows
    /// and a mapping ending past `MAX_LFS_FILESIZE` (Linux: `EOVERFLOW`).
    fn mmap(
        &mut self,
        pid: Pid,
        addr: u64,
        len: u64,
        prot: Prot,
        kind: Kind,
        replace: bool,
    ) -> OpResult {
        window(addr, len)?;
        if replace {
            self.no_temporary_stack(pid, addr, len)?;
        }
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let first = match kind {
            Kind::Anon => Backing::Anon { value: None },
            Kind::File { file, off } | Kind::SFile { file, off } => {
                if file >= NR_FILES || off.checked_add(len).is_none() {
                    return Err(Errno::EINVAL);
                }
                if matches!(kind, Kind::File { .. }) {
                    Backing::File {
                        file,
                        off,
                        copy: None,
                    }
                } else {
                    Backing::SFile { file, off }
                }
            }
            Kind::Shared => Backing::Shared {
                obj: self.next_object,
                off: 0,
            },
        };
        if !replace && self.any_mapped(pid, addr, len) {
            return Err(Errno::EEXIST);
        }
        // file_mmap_ok (after EEXIST in do_mmap): a tmpfs file's last mapped
        // byte must be below MAX_LFS_FILESIZE; Linux says EOVERFLOW.
        if let Kind::File { off, .. } | Kind::SFile { off, .. } = kind {
            const MAX_LFS_FILESIZE: u128 = i64::MAX as u128;
            let bytes = len as u128 * 4096;
            if bytes > MAX_LFS_FILESIZE || off as u128 > (MAX_LFS_FILESIZE - bytes) >> 12 {
                return Err(Errno::EINVAL);
            }
        }
        if let Kind::Shared = kind {
            self.objects.insert(
                self.next_object,
                ShmObject {
                    size: len,
                    values: BTreeMap::new(),
                },
            );
            self.next_object += 1;
        }
        self.unmap(pid, addr, len);
        let pages = self.pages_mut(pid);
        for i in 0..len {
            let backing = first.continued(i).expect("offset checked above");
            pages.insert(
                addr + i,
                Page {
                    prot,
                    stack: Stack::No,
                    dontfork: false,
                    wipeonfork: false,
                    backing,
                },
            );
        }
        Ok(Outcome::Ok)
    }

    /// `exec-stack`: an anonymous `rw` stack in its set-up state; `EINVAL`
    /// for length 0 or while the process has a temporary stack, `EEXIST`
    /// if any page of the range is mapped.
    fn exec_stack(&mut self, pid: Pid, addr: u64, len: u64) -> OpResult {
        window(addr, len)?;
        if len == 0 || self.temporary_stack(pid).is_some() {
            return Err(Errno::EINVAL);
        }
        if self.any_mapped(pid, addr, len) {
            return Err(Errno::EEXIST);
        }
        let pages = self.pages_mut(pid);
        for p in addr..addr + len {
            pages.insert(
                p,
                Page {
                    prot: Prot::Rw,
                    stack: Stack::Temporary,
                    dontfork: false,
                    wipeonfork: false,
                    backing: Backing::Anon { value: None },
                },
            );
        }
        Ok(Outcome::Ok)
    }

    /// `EFAULT` when a page of `[addr, addr + len)` is a temporary stack's:
    /// that VMA is exec's new mm in the kernel, out of the caller's reach
    /// until `setup_arg_pages` ends, so `mmap` over it, `munmap`,
    /// `mprotect`, `madvise` and `mremap` (source or target) fail before
    /// changing anything.
    fn no_temporary_stack(&self, pid: Pid, addr: u64, len: u64) -> Result<(), Errno> {
        if self.procs[&pid]
            .range(addr..addr + len)
            .any(|(_, page)| page.stack == Stack::Temporary)
        {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    /// The lowest page of `pid`'s temporary stack.
    fn temporary_stack(&self, pid: Pid) -> Option<u64> {
        self.procs[&pid]
            .iter()
            .find(|(_, page)| page.stack == Stack::Temporary)
            .map(|(&p, _)| p)
    }

    /// `exec-shift`: the temporary stack's VMA (the machine's bounds when
    /// known, else its coarse run) moves down by `shift` pages with its
    /// contents and is set up. `EINVAL` without a temporary stack or when
    /// the new place leaves the window; `EFAULT` when something is mapped
    /// between the new place and the old.
    fn exec_shift(&mut self, pid: Pid, shift: u64, layout: Option<&dyn Layout>) -> OpResult {
        let Some(page) = self.temporary_stack(pid) else {
            return Err(Errno::EINVAL);
        };
        let (start, end) = match layout.and_then(|l| l.vma_bounds(pid, page)) {
            Some(b) => b,
            None => self
                .runs(pid)
                .into_iter()
                .find(|&(s, e)| (s..e).contains(&page))
                .expect("a mapped page is in a run"),
        };
        if shift > 0 {
            if shift > start || !in_window(start - shift, end - start) {
                return Err(Errno::EINVAL);
            }
            if self.any_mapped(pid, start - shift, shift) {
                return Err(Errno::EFAULT);
            }
            self.move_pages(pid, start, end - start, start - shift, false);
        }
        let pages = self.pages_mut(pid);
        for (_, p) in pages.range_mut(start - shift..end - shift) {
            p.stack = Stack::SetUp;
        }
        Ok(Outcome::Ok)
    }

    /// `munmap`: `EINVAL` for length 0 (`do_vmi_munmap`), holes are fine.
    fn munmap(&mut self, pid: Pid, addr: u64, len: u64) -> OpResult {
        window(addr, len)?;
        self.no_temporary_stack(pid, addr, len)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        self.unmap(pid, addr, len);
        Ok(Outcome::Ok)
    }

    /// `mprotect` (`do_mprotect_pkey`): length 0 does nothing; `ENOMEM` if
    /// the first page is unmapped; otherwise VMAs are changed in address
    /// order and the walk stops with `ENOMEM` at the first hole, keeping the
    /// changes before it. Every KIND here allows every PROT (`VM_MAY*` are
    /// all set: anonymous memory, and files opened read-write).
    fn mprotect(&mut self, pid: Pid, addr: u64, len: u64, prot: Prot) -> OpResult {
        window(addr, len)?;
        self.no_temporary_stack(pid, addr, len)?;
        let pages = self.pages_mut(pid);
        for p in addr..addr + len {
            match pages.get_mut(&p) {
                Some(page) => page.prot = prot,
                None => return Err(Errno::ENOMEM),
            }
        }
        Ok(Outcome::Ok)
    }

    /// `madvise` (`madvise_walk_vmas` calling `madvise_vma_behavior` per VMA
    /// in address order). Length 0 does nothing. Holes are skipped and make
    /// the call return `ENOMEM` at the end (so a range with nothing mapped is
    /// `ENOMEM`), after the advice was applied to every mapped part. An error
    /// from a VMA stops the walk at once and is returned, whatever holes came
    /// before: `MADV_WIPEONFORK` on a VMA with a file (shared anonymous
    /// memory is a shmem file) or `VM_SHARED` is `EINVAL`, with the VMAs
    /// before it already changed.
    ///
    /// `MADV_DONTNEED` (`madvise_dontneed_free` → `zap_page_range_single`)
    /// drops private data only; dontfork/dofork toggle `VM_DONTCOPY`,
    /// wipeonfork/keeponfork toggle `VM_WIPEONFORK`.
    fn madvise(&mut self, pid: Pid, addr: u64, len: u64, advice: Advice) -> OpResult {
        window(addr, len)?;
        self.no_temporary_stack(pid, addr, len)?;
        let mut hole = false;
        let pages = self.pages_mut(pid);
        for p in addr..addr + len {
            let Some(page) = pages.get_mut(&p) else {
                hole = true;
                continue;
            };
            match advice {
                Advice::DontNeed => page.backing = page.backing.zapped(),
                Advice::DontFork => page.dontfork = true,
                Advice::DoFork => page.dontfork = false,
                Advice::WipeOnFork => {
                    if !matches!(page.backing, Backing::Anon { .. }) {
                        return Err(Errno::EINVAL);
                    }
                    page.wipeonfork = true;
                }
                Advice::KeepOnFork => page.wipeonfork = false,
            }
        }
        if hole {
            Err(Errno::ENOMEM)
        } else {
            Ok(Outcome::Ok)
        }
    }

    /// `fork` (`dup_mmap`): the child gets the next number and a copy of
    /// every page except `VM_DONTCOPY` ones. `VM_WIPEONFORK` pages are in
    /// the child (the flag too) but without their private data (no
    /// `copy_page_range`, no anon_vma), so they read 0. Private values are
    /// copied (COW is invisible here); shared files and shmem objects are
    /// shared.
    fn fork(&mut self, pid: Pid) -> Outcome {
        // Clone the (already sorted) map and fix it up in place: cheaper
        // than collecting a filtered iterator, which rebuilds the tree.
        let mut child: BTreeMap<u64, Page> = self.procs[&pid].clone();
        child.retain(|_, page| !page.dontfork);
        for page in child.values_mut() {
            if page.wipeonfork {
                page.backing = page.backing.zapped();
            }
        }
        let cpid = Pid(self.next_pid);
        self.next_pid += 1;
        self.procs.insert(cpid, child);
        Outcome::Ok
    }

    // ----------------------------------------------------------------------
    // mremap

    /// The VMA containing `page`: the design's layout when given (and
    /// consistent with the model about `page` being mapped), else the coarse
    /// layout. `None` for an unmapped page.
    fn bounds(&self, pid: Pid, page: u64, layout: Option<&dyn Layout>) -> Option<(u64, u64)> {
        if !self.is_mapped(pid, page) {
            return None;
        }
        if let Some(l) = layout
            && let Some((s, e)) = l.vma_bounds(pid, page)
            && s <= page
            && page < e
        {
            return Some((s, e));
        }
        self.coarse_bounds(pid, page)
    }

    /// `mremap` in page units, following `do_mremap` of Linux 6.18:
    ///
    /// 1. `check_mremap_params`: new length 0 is `EINVAL`; with a target
    ///    (`MREMAP_MAYMOVE | MREMAP_FIXED`), `MREMAP_DONTUNMAP` with
    ///    `old_len != new_len` is `EINVAL`, then overlapping old and new
    ///    ranges (`vrm_overlaps`) are `EINVAL`.
    /// 2. With a target and `old_len == new_len` (`vrm_move_only`):
    ///    `remap_move`, which may span several VMAs and holes.
    /// 3. Otherwise `vma_lookup(old)` (none: `EFAULT`), `check_prep_vma`,
    ///    then `mremap_to` with a target or `mremap_at` without.
    ///
    /// The window rule comes first: the old range, and the new range (at
    /// `NEW` with a target, else `[old, old + new_len)`), must be inside it;
    /// then the old range and the target must not touch a temporary stack
    /// (`EFAULT`).
    fn mremap(
        &mut self,
        pid: Pid,
        old: u64,
        old_len: u64,
        new_len: u64,
        to: Option<MremapTo>,
        layout: Option<&dyn Layout>,
    ) -> OpResult {
        window(old, old_len)?;
        match to {
            Some(t) => window(t.new, new_len)?,
            None => window(old, new_len)?,
        }
        self.no_temporary_stack(pid, old, old_len)?;
        if let Some(t) = to {
            self.no_temporary_stack(pid, t.new, new_len)?;
        }
        // check_mremap_params
        if new_len == 0 {
            return Err(Errno::EINVAL);
        }
        if let Some(t) = to {
            if t.dontunmap && old_len != new_len {
                return Err(Errno::EINVAL);
            }
            // vrm_overlaps: [old, old+old_len) and [new, new+new_len) overlap.
            if old + old_len > t.new && t.new + new_len > old {
                return Err(Errno::EINVAL);
            }
            if old_len == new_len {
                return self.remap_move(pid, old, old_len, t, layout);
            }
        }

        // vma_lookup + check_prep_vma
        let Some((_, vma_end)) = self.bounds(pid, old, layout) else {
            return Err(Errno::EFAULT);
        };
        let template = self.procs[&pid][&old];
        let expand = new_len > old_len;
        let will_map_new = expand || to.is_some();
        if will_map_new {
            // Duplicating a private mapping with old_len == 0 is refused.
            if old_len == 0 && !template.backing.is_shared() {
                return Err(Errno::EINVAL);
            }
            // A shrink may unmap across VMAs; only the kept part must fit.
            let checked_len = old_len.min(new_len);
            if checked_len > vma_end - old {
                return Err(Errno::EFAULT);
            }
            // pgoff + new_len must not wrap.
            if expand
                && let Some(off) = template.backing.offset()
                && off.checked_add(new_len).is_none()
            {
                return Err(Errno::EINVAL);
            }
        }

        match to {
            Some(t) => {
                // mremap_to: MREMAP_FIXED unmaps the target first, then looks
                // the source up again.
                self.unmap(pid, t.new, new_len);
                if !self.is_mapped(pid, old) {
                    return Err(Errno::EFAULT);
                }
                let mut moved_len = old_len;
                if new_len < old_len {
                    // shrink_vma, then move what is left.
                    self.unmap(pid, old + new_len, old_len - new_len);
                    moved_len = new_len;
                }
                // move_vma (copy_vma + move_page_tables + unmap_source_vma).
                // With old_len == 0 (a shared mapping) nothing moves and the
                // source stays: the new range is a second mapping of it.
                self.move_pages(pid, old, moved_len, t.new, false);
                self.extend(
                    pid,
                    t.new + moved_len,
                    new_len - moved_len,
                    template,
                    old_len,
                );
                Ok(Outcome::Ok)
            }
            None => {
                // mremap_at
                if new_len < old_len {
                    // shrink_vma: unmap the tail, whatever it holds.
                    self.unmap(pid, old + new_len, old_len - new_len);
                } else if expand {
                    // expand_vma → vrm_can_expand_in_place: the range must
                    // end at the VMA's end and the pages after it must be
                    // free (vma_expandable); without MREMAP_MAYMOVE there is
                    // no other way: ENOMEM.
                    let delta = new_len - old_len;
                    if vma_end - old != old_len || self.any_mapped(pid, vma_end, delta) {
                        return Err(Errno::ENOMEM);
                    }
                    // vma_merge_extend: the VMA continues linearly.
                    self.extend(pid, vma_end, delta, template, vma_end - old);
                }
                Ok(Outcome::Ok)
            }
        }
    }

    /// `remap_move` (6.17+): every VMA piece of `[old, old + len)` is moved
    /// to the same distance from `new` (gaps are kept), one `mremap_to` per
    /// piece, each unmapping only its own destination first. No VMA in the
    /// range, or a range that starts in a hole, is `EFAULT` with nothing
    /// done. (`vma_multi_allowed` holds for every KIND here: anonymous
    /// memory, shmem and tmpfs files.) With `MREMAP_DONTUNMAP`
    /// (`dontunmap_complete`) the old pieces stay mapped but lose their
    /// pages: private anon reads 0, private file shows the file again,
    /// shared mappings still show their object.
    fn remap_move(
        &mut self,
        pid: Pid,
        old: u64,
        len: u64,
        to: MremapTo,
        layout: Option<&dyn Layout>,
    ) -> OpResult {
        let end = old + len;
        let mut pieces = Vec::new();
        let mut p = old;
        while p < end {
            match self.bounds(pid, p, layout) {
                Some((_, e)) => {
                    let piece_end = e.min(end);
                    pieces.push((p, piece_end));
                    p = piece_end;
                }
                None => p += 1,
            }
        }
        match pieces.first() {
            Some(&(start, _)) if start == old => {}
            _ => return Err(Errno::EFAULT),
        }
        for (a, b) in pieces {
            let dest = to.new + (a - old);
            self.unmap(pid, dest, b - a);
            self.move_pages(pid, a, b - a, dest, to.dontunmap);
        }
        Ok(Outcome::Ok)
    }

    /// Move the mapped pages of `[src, src + len)` (attributes, backing and
    /// private data) to the same places from `dst` (`move_page_tables`).
    /// Without `keep_source` the source pages are unmapped; with it they
    /// stay, zapped.
    fn move_pages(&mut self, pid: Pid, src: u64, len: u64, dst: u64, keep_source: bool) {
        let pages = self.pages_mut(pid);
        let moving: Vec<(u64, Page)> = pages
            .range(src..src + len)
            .map(|(&p, &page)| (p, page))
            .collect();
        for &(p, page) in &moving {
            if keep_source {
                pages.insert(
                    p,
                    Page {
                        backing: page.backing.zapped(),
                        ..page
                    },
                );
            } else {
                pages.remove(&p);
            }
        }
        for (p, page) in moving {
            pages.insert(dst + (p - src), page);
        }
    }

    /// Map `count` new pages from `at`, continuing the VMA whose page
    /// `template` sits `first_delta` pages before `at`: same attributes, the
    /// same object at linear offsets, no private data. Past a shmem object's
    /// size (objects never grow) or a file's end, access is SIGBUS.
    fn extend(&mut self, pid: Pid, at: u64, count: u64, template: Page, first_delta: u64) {
        let pages = self.pages_mut(pid);
        for i in 0..count {
            let backing = template
                .backing
                .continued(first_delta + i)
                .expect("pgoff overflow checked");
            pages.insert(
                at + i,
                Page {
                    backing,
                    ..template
                },
            );
        }
    }

    // ----------------------------------------------------------------------
    // Coarse layout

    /// Maximal runs of adjacent pages with the same VMA attributes.
    fn runs(&self, pid: Pid) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut prev: Option<(u64, Page)> = None;
        for (&p, page) in &self.procs[&pid] {
            match (prev, runs.last_mut()) {
                (Some((q, prev_page)), Some(run)) if q + 1 == p && prev_page.same_vma_as(page) => {
                    run.1 = p + 1;
                }
                _ => runs.push((p, p + 1)),
            }
            prev = Some((p, *page));
        }
        runs
    }

    fn coarse_bounds(&self, pid: Pid, page: u64) -> Option<(u64, u64)> {
        let pages = self.procs.get(&pid)?;
        let here = pages.get(&page)?;
        let mut start = page;
        let mut cur = *here;
        while let Some(prev) = start.checked_sub(1).and_then(|q| pages.get(&q)) {
            if !prev.same_vma_as(&cur) {
                break;
            }
            cur = *prev;
            start -= 1;
        }
        let mut end = page + 1;
        let mut cur = *here;
        while let Some(next) = pages.get(&end) {
            if !cur.same_vma_as(next) {
                break;
            }
            cur = *next;
            end += 1;
        }
        Some((start, end))
    }
}

/// The model's own coarse layout (see the module documentation); designs
/// pass theirs to [`Model::step`] instead.
impl Layout for Model {
    fn vma_bounds(&self, pid: Pid, page: u64) -> Option<(u64, u64)> {
        self.coarse_bounds(pid, page)
    }
}

/// `/proc/PID/maps` permissions: `r`/`w`/`x` or `-`, then `p` or `s`.
fn perms(page: &Page) -> String {
    let prot = page.prot;
    let mut s = String::with_capacity(4);
    s.push(if prot.readable() { 'r' } else { '-' });
    s.push(if prot.writable() { 'w' } else { '-' });
    s.push(if prot.executable() { 'x' } else { '-' });
    s.push(if page.backing.is_shared() { 's' } else { 'p' });
    s
}
