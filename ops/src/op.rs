//! The values of the op language (docs/op-language.md): what an op names
//! and what executing it reports. The MMU, the reference model and the
//! live-kernel backend all take these; the text form is in [`crate::parse`]
//! and [`crate::print`], the fuzz decoder in [`crate::decode`].

use std::fmt;
use std::str::FromStr;

/// Pages per process address window (page numbers `0..WINDOW_PAGES`).
pub const WINDOW_PAGES: u64 = 256;
/// Pages in each of the files `0..NR_FILES`.
pub const FILE_PAGES: u64 = 64;
/// Number of files (`file:F:OFF` takes `F < NR_FILES`).
pub const NR_FILES: u8 = 4;

/// A process, `pN` in the op language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(pub u32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// Protection of a mapping, as `mmap`/`mprotect` take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prot {
    None,
    R,
    Rw,
    Rx,
    Rwx,
}

impl Prot {
    pub const ALL: [Prot; 5] = [Prot::None, Prot::R, Prot::Rw, Prot::Rx, Prot::Rwx];
    pub fn readable(self) -> bool {
        !matches!(self, Prot::None)
    }
    pub fn writable(self) -> bool {
        matches!(self, Prot::Rw | Prot::Rwx)
    }
    pub fn executable(self) -> bool {
        matches!(self, Prot::Rx | Prot::Rwx)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Prot::None => "none",
            Prot::R => "r",
            Prot::Rw => "rw",
            Prot::Rx => "rx",
            Prot::Rwx => "rwx",
        }
    }
}

/// What a mapping maps (`KIND` in the op language).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `MAP_PRIVATE | MAP_ANONYMOUS`
    Anon,
    /// `MAP_SHARED | MAP_ANONYMOUS`: each mmap is its own shmem object.
    Shared,
    /// `MAP_PRIVATE` of file `file` at page offset `off`.
    File { file: u8, off: u64 },
    /// `MAP_SHARED` of file `file` at page offset `off`.
    SFile { file: u8, off: u64 },
}

/// `madvise` advice the op language knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Advice {
    DontNeed,
    DontFork,
    DoFork,
    WipeOnFork,
    KeepOnFork,
}

impl Advice {
    pub const ALL: [Advice; 5] = [
        Advice::DontNeed,
        Advice::DontFork,
        Advice::DoFork,
        Advice::WipeOnFork,
        Advice::KeepOnFork,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Advice::DontNeed => "dontneed",
            Advice::DontFork => "dontfork",
            Advice::DoFork => "dofork",
            Advice::WipeOnFork => "wipeonfork",
            Advice::KeepOnFork => "keeponfork",
        }
    }
}

/// Linux errno values an op can report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Errno {
    EINVAL,
    ENOMEM,
    EEXIST,
    EFAULT,
    ESRCH,
}

impl Errno {
    pub const ALL: [Errno; 5] = [
        Errno::EINVAL,
        Errno::ENOMEM,
        Errno::EEXIST,
        Errno::EFAULT,
        Errno::ESRCH,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Errno::EINVAL => "EINVAL",
            Errno::ENOMEM => "ENOMEM",
            Errno::EEXIST => "EEXIST",
            Errno::EFAULT => "EFAULT",
            Errno::ESRCH => "ESRCH",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The destination of a moving `mremap` (`MREMAP_MAYMOVE | MREMAP_FIXED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MremapTo {
    pub new: u64,
    /// `MREMAP_DONTUNMAP`
    pub dontunmap: bool,
}

/// One op of a stream. Addresses and lengths are in pages, relative to the
/// window start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Mmap {
        pid: Pid,
        addr: u64,
        len: u64,
        prot: Prot,
        kind: Kind,
        /// `MAP_FIXED` instead of `MAP_FIXED_NOREPLACE`.
        replace: bool,
    },
    Munmap {
        pid: Pid,
        addr: u64,
        len: u64,
    },
    Mprotect {
        pid: Pid,
        addr: u64,
        len: u64,
        prot: Prot,
    },
    Mremap {
        pid: Pid,
        old: u64,
        old_len: u64,
        new_len: u64,
        to: Option<MremapTo>,
    },
    Madvise {
        pid: Pid,
        addr: u64,
        len: u64,
        advice: Advice,
    },
    Fork {
        pid: Pid,
    },
    Exit {
        pid: Pid,
    },
    Read {
        pid: Pid,
        addr: u64,
    },
    Write {
        pid: Pid,
        addr: u64,
        value: u64,
    },
    Swapout {
        pid: Pid,
        addr: u64,
    },
    Reclaim,
    Migrate {
        pid: Pid,
        addr: u64,
    },
    /// `folio_referenced` of the anonymous page at `pid:addr` (version 2):
    /// an rmap walk that only reads (and clears accessed bits); its outcome
    /// is `ok N` ([`Outcome::Value`]) with N the mappings it found.
    Referenced {
        pid: Pid,
        addr: u64,
    },
    FailAlloc {
        n: u64,
    },
    Dump,
    /// exec's temporary stack (version 2): an anonymous, writable,
    /// grows-down VMA at `[addr, addr + len)` in its set-up state
    /// (`VM_STACK_INCOMPLETE_SETUP`, as `__bprm_mm_init` makes it).
    ExecStack {
        pid: Pid,
        addr: u64,
        len: u64,
    },
    /// `setup_arg_pages` moving the temporary stack down by `shift` pages
    /// (`shift_arg_pages`, 6.x `relocate_vma_down`: expand down, move the
    /// page tables, shrink), then ending its set-up state (version 2).
    ExecShift {
        pid: Pid,
        shift: u64,
    },
}

impl Op {
    /// The process the op names, if any.
    pub fn pid(&self) -> Option<Pid> {
        match *self {
            Op::Mmap { pid, .. }
            | Op::Munmap { pid, .. }
            | Op::Mprotect { pid, .. }
            | Op::Mremap { pid, .. }
            | Op::Madvise { pid, .. }
            | Op::Fork { pid }
            | Op::Exit { pid }
            | Op::Read { pid, .. }
            | Op::Write { pid, .. }
            | Op::Swapout { pid, .. }
            | Op::Migrate { pid, .. }
            | Op::Referenced { pid, .. }
            | Op::ExecStack { pid, .. }
            | Op::ExecShift { pid, .. } => Some(pid),
            Op::Reclaim | Op::FailAlloc { .. } | Op::Dump => None,
        }
    }

    /// The process the op names, if any, to change it.
    pub fn pid_mut(&mut self) -> Option<&mut Pid> {
        match self {
            Op::Mmap { pid, .. }
            | Op::Munmap { pid, .. }
            | Op::Mprotect { pid, .. }
            | Op::Mremap { pid, .. }
            | Op::Madvise { pid, .. }
            | Op::Fork { pid }
            | Op::Exit { pid }
            | Op::Read { pid, .. }
            | Op::Write { pid, .. }
            | Op::Swapout { pid, .. }
            | Op::Migrate { pid, .. }
            | Op::Referenced { pid, .. }
            | Op::ExecStack { pid, .. }
            | Op::ExecShift { pid, .. } => Some(pid),
            Op::Reclaim | Op::FailAlloc { .. } | Op::Dump => None,
        }
    }

    /// Ops that only the emulator can perform (the live kernel reports them
    /// `unsupported`); they never change the reference semantics.
    pub fn emulator_only(&self) -> bool {
        matches!(
            self,
            Op::Swapout { .. }
                | Op::Reclaim
                | Op::Migrate { .. }
                | Op::Referenced { .. }
                | Op::FailAlloc { .. }
                | Op::ExecStack { .. }
                | Op::ExecShift { .. }
        )
    }

    /// The op's keyword, also its kind name for coverage reports.
    pub fn keyword(&self) -> &'static str {
        match self {
            Op::Mmap { .. } => "mmap",
            Op::Munmap { .. } => "munmap",
            Op::Mprotect { .. } => "mprotect",
            Op::Mremap { .. } => "mremap",
            Op::Madvise { .. } => "madvise",
            Op::Fork { .. } => "fork",
            Op::Exit { .. } => "exit",
            Op::Read { .. } => "read",
            Op::Write { .. } => "write",
            Op::Swapout { .. } => "swapout",
            Op::Reclaim => "reclaim",
            Op::Migrate { .. } => "migrate",
            Op::Referenced { .. } => "referenced",
            Op::FailAlloc { .. } => "fail-alloc",
            Op::Dump => "dump",
            Op::ExecStack { .. } => "exec-stack",
            Op::ExecShift { .. } => "exec-shift",
        }
    }
}

impl Op {
    /// How many op kinds there are ([`Op::kind_index`] is below it).
    pub const KINDS: usize = 18;

    /// The op's kind as a small number, in the order the fuzz decoder's
    /// weights table lists the kinds (coverage maps index by it).
    pub fn kind_index(&self) -> usize {
        match self {
            Op::Mmap { .. } => 0,
            Op::Munmap { .. } => 1,
            Op::Mprotect { .. } => 2,
            Op::Mremap { .. } => 3,
            Op::Madvise { .. } => 4,
            Op::Fork { .. } => 5,
            Op::Exit { .. } => 6,
            Op::Read { .. } => 7,
            Op::Write { .. } => 8,
            Op::Swapout { .. } => 9,
            Op::Reclaim => 10,
            Op::Migrate { .. } => 11,
            Op::FailAlloc { .. } => 12,
            Op::Dump => 13,
            Op::Referenced { .. } => 14,
            // 15 is the decoder's `par`.
            Op::ExecStack { .. } => 16,
            Op::ExecShift { .. } => 17,
        }
    }

    /// The language version that has this op (`referenced`, `exec-stack`
    /// and `exec-shift` are version 2).
    pub fn version(&self) -> u8 {
        if matches!(
            self,
            Op::Referenced { .. } | Op::ExecStack { .. } | Op::ExecShift { .. }
        ) {
            2
        } else {
            1
        }
    }

    /// Whether the op may be an actor of a concurrent block (every op but
    /// `fail-alloc` and `dump`).
    pub fn may_run_in_block(&self) -> bool {
        !matches!(self, Op::FailAlloc { .. } | Op::Dump)
    }
}

/// What executing one op reports (docs/op-language.md, "What executing a
/// stream reports").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    /// `ok VALUE`: the value a read loads, or the number of mappings a
    /// `referenced` walk found.
    Value(u64),
    Segv,
    Sigbus,
    Err(Errno),
    Unsupported,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Value(v) => write!(f, "ok {v:#x}"),
            Outcome::Segv => f.write_str("segv"),
            Outcome::Sigbus => f.write_str("sigbus"),
            Outcome::Err(e) => write!(f, "err {e}"),
            Outcome::Unsupported => f.write_str("unsupported"),
        }
    }
}

/// Reads what [`Outcome`]'s `Display` writes; a read's value may be decimal
/// or `0x` hex.
impl FromStr for Outcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Outcome, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let bad = || {
            format!(
                "expected an outcome (ok, ok VALUE, segv, sigbus, err ERRNO, unsupported), \
                 found `{text}`"
            )
        };
        Ok(match words[..] {
            ["ok"] => Outcome::Ok,
            ["ok", v] => Outcome::Value(
                match v.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => v.parse(),
                }
                .map_err(|_| bad())?,
            ),
            ["segv"] => Outcome::Segv,
            ["sigbus"] => Outcome::Sigbus,
            ["unsupported"] => Outcome::Unsupported,
            ["err", e] => Outcome::Err(
                Errno::ALL
                    .into_iter()
                    .find(|x| x.as_str() == e)
                    .ok_or_else(bad)?,
            ),
            _ => return Err(bad()),
        })
    }
}
