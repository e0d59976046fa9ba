//! The host's Linux kernel as one more machine to run streams on. This
//! module is the backend (below); [`diff`] compares a kernel run with the
//! designs' runs, [`report`] prints that comparison, [`fuzz`] is the fuzz
//! loop of `rmaplab kernel --fuzz`, [`bench`] the figures of `rmaplab
//! kernel --bench`, and [`export_c`] writes a stream as a C
//! program that replays it with real syscalls.
//!
//! The backend runs an op stream with real processes on the host's kernel
//! and reports the same observables as the emulator (design and pitfalls in
//! `docs/linux-6.18.md` §12).
//!
//! Every process of the stream is a puppet ([`puppet`]: the `rmaplab`
//! binary started as `rmaplab __puppet CPU`, or the optional
//! `rmaplab-puppet` binary) that does its own syscalls and memory accesses on command over a
//! `SOCK_SEQPACKET` socket. A *zygote* puppet is started once per [`Kernel`]
//! (fork + exec, re-exec with ASLR off) and every stream's `p0` is forked
//! from it; `fork` ops are real `fork()`s in the puppet named by the op, so
//! process trees and COW sharing are the kernel's own. The controller (the
//! calling thread) and every puppet run on one CPU (§3.3: per-CPU LRU
//! batches otherwise turn COW reuse into copies at random).
//!
//! At a `dump` the controller reads, per live puppet, `/proc/PID/maps`
//! (the VMAs in the window) and `/proc/PID/pagemap` (the PFN of every
//! present page), then `/proc/kpageflags` (the zero page is `KPF_ZERO_PAGE`)
//! and `/proc/kpagecount` (the map count) for each PFN. PFNs become
//! `FrameRef::Frame` identities, valid within that one snapshot (§12.5).
//!
//! Outcomes are decided as in the reference model where the kernel cannot
//! be asked: emulator-only ops (`swapout`, `reclaim`, `migrate`,
//! `fail-alloc`) are `unsupported`; an op naming a process that is not live
//! is `ESRCH`; an op whose range leaves the 256-page window is `EINVAL`;
//! neither is sent to a puppet. Two kernel errnos that the op language cannot name
//! are reported as the model reports them: `EBADF` and `EOVERFLOW` (a file
//! offset whose end does not fit) as `EINVAL`; a file offset whose byte
//! address does not fit in 64 bits is `EINVAL` without asking the kernel.
//! Any other errno, a puppet's death or a timeout is an error of the run.
//!
//! Needs Linux on x86_64, root (PFNs in pagemap need `CAP_SYS_ADMIN`) and
//! readable `/proc/kpagecount` and `/proc/kpageflags`; [`host_can_serve`]
//! says which is missing. [`puppet_command`] says which executable serves
//! as the puppet.

use rmaplab_impls::state::State;
use rmaplab_ops::Op;

pub mod bench;
pub mod diff;
pub mod export_c;
pub mod fuzz;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod linux;
mod proto;
pub mod puppet;
pub mod report;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use linux::{Kernel, PuppetCommand, puppet_command};

/// Set by [`running_exe_serves_as_puppet`].
static SELF_SERVES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Declares that the running executable serves as a puppet when started
/// as `EXE __puppet CPU` (the `rmaplab` binary's `main` does, so that
/// `rmaplab kernel` needs no second binary).
pub fn running_exe_serves_as_puppet() {
    SELF_SERVES.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the ELF file at `path` is statically linked (no `PT_INTERP`
/// program header); `None` when it cannot be read as 64-bit ELF.
///
/// A static puppet forks and exits faster (12 VMAs instead of 30: no
/// `ld.so`, `libc.so`, `libgcc_s.so` mappings to duplicate and tear down),
/// which `rmaplab kernel --bench` reports. Cargo cannot set
/// `crt-static` for one binary, so it is a separate, optional build:
/// `cargo rustc --release -p rmaplab --bin rmaplab-puppet -- -C target-feature=+crt-static`.
pub fn elf_is_static(path: &std::path::Path) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    let elf = std::fs::read(path).ok()?;
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    // 64-bit little-endian ELF only (the backend is x86_64).
    if elf.get(0..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        if u32_at(phoff.checked_add(i.checked_mul(phentsize)?)?)? == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}

/// What a stream did on the live kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelRun {
    /// One outcome per op, in stream order.
    pub outcomes: Vec<rmaplab_ops::Outcome>,
    /// One state per `dump` op, then the state after the last op unless
    /// the stream ends with `dump` (the numbering of `run::runner`), as the
    /// emulator reports them.
    pub dumps: Vec<State>,
}

impl KernelRun {
    /// The run as corpus-header lines: `measured (Linux RELEASE)` and, per
    /// recorded state, `dump N: pX vmas ...` and `dump N: pX pages ...` (or
    /// `final:` for the state after the last op), so a stream the emulator
    /// disagrees on becomes a corpus file that fails until the emulator
    /// shows what the kernel showed.
    pub fn header_lines(&self, stream: &rmaplab_ops::Stream) -> Vec<String> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let mut out = vec![format!("measured (Linux {release}): the dump lines below")];
        let dump_ops = stream.ops.iter().filter(|o| matches!(o, Op::Dump)).count();
        for (i, state) in self.dumps.iter().enumerate() {
            let at = if i < dump_ops {
                format!("dump {}", i + 1)
            } else {
                "final".to_string()
            };
            for p in crate::run::report::canonicalize(state) {
                let vmas: Vec<String> = p
                    .vmas
                    .iter()
                    .map(|(s, e, perms, kind, off)| {
                        rmaplab_ops::corpus::vma_text(*s, *e, perms, kind, *off)
                    })
                    .collect();
                out.push(format!("{at}: {} vmas {}", p.pid, vmas.join(" ")));
                if !p.pages.is_empty() {
                    let pages: Vec<String> = p
                        .pages
                        .iter()
                        .map(|(pg, c, n)| rmaplab_ops::corpus::page_text(*pg, c, *n))
                        .collect();
                    out.push(format!("{at}: {} pages {}", p.pid, pages.join(" ")));
                }
            }
        }
        out
    }
}

/// `Ok` when this host can run streams on its kernel; otherwise which
/// requirement is missing (not Linux/x86_64, not root, PFNs hidden in
/// `/proc/PID/pagemap`, `/proc/kpagecount` or `/proc/kpageflags`
/// unreadable, or no puppet executable).
pub fn host_can_serve() -> Result<(), String> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        linux::host_can_serve()
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        Err("the live-kernel backend needs Linux on x86_64".into())
    }
}

/// Runs `ops` on the live kernel with this thread's [`Kernel`] (created,
/// with its zygote, on first use and dropped with the thread). `Err` means
/// the run itself failed (host unsuitable, a puppet died, an errno that
/// the op language cannot name); every puppet of the stream is gone either way.
pub fn run_on_kernel(ops: &[Op]) -> Result<KernelRun, String> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        linux::run_on_thread_kernel(ops)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = ops;
        Err("the live-kernel backend needs Linux on x86_64".into())
    }
}

/// `Linux 6.18.44` (the host's kernel release).
pub fn host_kernel_name() -> String {
    match std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        Ok(r) => format!("Linux {}", r.trim()),
        Err(_) => "the host kernel".into(),
    }
}

/// A small stream for `rmaplab kernel --bench` (about 20 ops, 3 processes,
/// a file mapping, 2 dumps), varied by `seed`.
pub fn bench_stream(seed: u64) -> Vec<Op> {
    use rmaplab_ops::{Advice, Kind, MremapTo, Pid, Prot};
    // xorshift64*, seeded away from zero.
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut rnd = |m: u64| {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) % m
    };
    let (p0, p1, p2) = (Pid(0), Pid(1), Pid(2));
    let w = |pid, addr, value| Op::Write { pid, addr, value };
    let file = rnd(4) as u8;
    let mut ops = vec![
        Op::Mmap {
            pid: p0,
            addr: 0,
            len: 16,
            prot: Prot::Rw,
            kind: Kind::Anon,
            replace: false,
        },
        Op::Mmap {
            pid: p0,
            addr: 32,
            len: 8,
            prot: Prot::Rw,
            kind: Kind::File { file, off: 0 },
            replace: false,
        },
    ];
    for _ in 0..4 {
        ops.push(w(p0, rnd(16), rnd(1000)));
    }
    ops.push(Op::Read {
        pid: p0,
        addr: 32 + rnd(8),
    });
    ops.push(Op::Fork { pid: p0 });
    ops.push(w(p1, rnd(16), 1));
    ops.push(w(p1, rnd(16), 2));
    ops.push(w(p0, rnd(16), 3));
    ops.push(Op::Mprotect {
        pid: p1,
        addr: 4,
        len: 4,
        prot: Prot::R,
    });
    ops.push(Op::Madvise {
        pid: p0,
        addr: 8,
        len: 4,
        advice: Advice::DontNeed,
    });
    ops.push(Op::Fork { pid: p1 });
    ops.push(Op::Mremap {
        pid: p2,
        old: 0,
        old_len: 4,
        new_len: 4,
        to: Some(MremapTo {
            new: 64,
            dontunmap: false,
        }),
    });
    ops.push(Op::Read {
        pid: p2,
        addr: 64 + rnd(4),
    });
    ops.push(Op::Dump);
    ops.push(Op::Exit { pid: p1 });
    ops.push(w(p0, rnd(16), 4));
    ops.push(w(p2, 64 + rnd(4), 5));
    ops
}
