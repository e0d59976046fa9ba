//! A puppet: one emulated process of the live-kernel backend (design in
//! `docs/linux-6.18.md` §12). Two executables serve as one: the `rmaplab`
//! binary itself, started as `rmaplab __puppet CPU` ([`SUBCOMMAND`]), and
//! the optional `rmaplab-puppet` binary (`rmaplab-puppet CPU`), which can be
//! linked statically for faster forks. [`super::puppet_command`] picks one.
//!
//! It is started by the controller only, with an `AF_UNIX`/`SOCK_SEQPACKET`
//! socket on fd 3 and the four test files on fds 4..=7, and its last
//! argument is the CPU to pin to. Start-up (§12.1): pin to that CPU, re-exec
//! once with `personality(ADDR_NO_RANDOMIZE)` (same arguments), then
//! `PR_SET_THP_DISABLE`, `SIGCHLD` = `SIG_IGN` (children are reaped by the
//! kernel) and `SIGSEGV`/`SIGBUS` handlers. Then it serves the fixed-size
//! commands of `kernel/proto.rs`: every syscall and every memory access of
//! the stream is its own. After start-up it never allocates (no `String`,
//! no `Vec`, no formatting), so the heap never changes under the stream.
//!
//! Memory is touched by two tiny assembly routines. A fault in their one
//! load or store instruction is caught by the signal handler, which moves
//! the instruction pointer to the routine's return and puts the signal
//! number in the result register (the kernel's own exception-table trick),
//! so no `setjmp`/`longjmp` is needed and SIGSEGV and SIGBUS stay distinct.

/// The hidden first argument that makes the `rmaplab` binary a puppet
/// (`rmaplab __puppet CPU`); `main` checks it before parsing arguments.
pub const SUBCOMMAND: &str = "__puppet";

/// Runs as a puppet and never returns. `std::env::args()` must end with the
/// CPU to pin to; everything before it is kept for the re-exec.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub fn main() -> ! {
    imp::main()
}

/// The live-kernel backend needs Linux on x86_64: exits with status 2.
#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
pub fn main() -> ! {
    eprintln!("rmaplab puppet: the live-kernel backend needs Linux on x86_64");
    std::process::exit(2);
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod imp {
    use std::ffi::{CString, c_int, c_void};
    use std::mem::{size_of, zeroed};
    use std::os::unix::ffi::OsStrExt;

    use super::super::proto::*;

    // The two memory-access routines (System V ABI). `rmaplab_puppet_load`
    // returns `{value, signal}` in rax:rdx, `rmaplab_puppet_store` returns
    // the signal in rax; the signal is 0 when the access succeeded.
    std::arch::global_asm!(
        ".pushsection .text.rmaplab_puppet_access,\"ax\",@progbits",
        ".globl rmaplab_puppet_load",
        ".globl rmaplab_puppet_load_insn",
        ".globl rmaplab_puppet_load_resume",
        ".globl rmaplab_puppet_store",
        ".globl rmaplab_puppet_store_insn",
        ".globl rmaplab_puppet_store_resume",
        ".type rmaplab_puppet_load,@function",
        "rmaplab_puppet_load:",
        "    xor edx, edx",
        "rmaplab_puppet_load_insn:",
        "    mov rax, qword ptr [rdi]",
        "rmaplab_puppet_load_resume:",
        "    ret",
        ".type rmaplab_puppet_store,@function",
        "rmaplab_puppet_store:",
        "    xor eax, eax",
        "rmaplab_puppet_store_insn:",
        "    mov qword ptr [rdi], rsi",
        "rmaplab_puppet_store_resume:",
        "    ret",
        ".popsection",
    );

    #[repr(C)]
    struct Loaded {
        value: u64,
        signal: u64,
    }

    unsafe extern "C" {
        fn rmaplab_puppet_load(addr: u64) -> Loaded;
        fn rmaplab_puppet_store(addr: u64, value: u64) -> u64;
        static rmaplab_puppet_load_insn: u8;
        static rmaplab_puppet_load_resume: u8;
        static rmaplab_puppet_store_insn: u8;
        static rmaplab_puppet_store_resume: u8;
    }

    /// `personality(2)` flag; `libc` types it as `c_int`.
    const ADDR_NO_RANDOMIZE: libc::c_ulong = libc::ADDR_NO_RANDOMIZE as libc::c_ulong;

    /// Writes `msg` to stderr and exits; start-up failures only.
    fn die(msg: &str) -> ! {
        let err = errno();
        let mut code = [0u8; 12];
        let digits = format_u32(err as u32, &mut code);
        for part in [
            b"rmaplab-puppet: ".as_slice(),
            msg.as_bytes(),
            b" (errno ",
            digits,
            b")\n",
        ] {
            // SAFETY: writes from a valid buffer of the given length to fd 2.
            unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
        }
        // SAFETY: _exit never returns and is always safe to call.
        unsafe { libc::_exit(101) }
    }

    fn format_u32(mut v: u32, buf: &mut [u8; 12]) -> &[u8] {
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        &buf[i..]
    }

    fn errno() -> c_int {
        // SAFETY: __errno_location returns this thread's errno slot.
        unsafe { *libc::__errno_location() }
    }

    /// SIGSEGV/SIGBUS handler: a fault of the load or store instruction
    /// resumes after it with the signal number as the result; any other
    /// fault restores the default action and returns, so the faulting
    /// instruction runs again and kills the puppet as usual.
    extern "C" fn on_fault(sig: c_int, _info: *mut libc::siginfo_t, ctx: *mut c_void) {
        // SAFETY: for an SA_SIGINFO handler the kernel passes a valid,
        // exclusively ours ucontext_t as the third argument.
        let uc = unsafe { &mut *ctx.cast::<libc::ucontext_t>() };
        let regs = &mut uc.uc_mcontext.gregs;
        let rip = regs[libc::REG_RIP as usize] as usize;
        let load_insn = (&raw const rmaplab_puppet_load_insn) as usize;
        let store_insn = (&raw const rmaplab_puppet_store_insn) as usize;
        if rip == load_insn {
            regs[libc::REG_RIP as usize] = (&raw const rmaplab_puppet_load_resume) as i64;
            regs[libc::REG_RAX as usize] = 0;
            regs[libc::REG_RDX as usize] = i64::from(sig);
        } else if rip == store_insn {
            regs[libc::REG_RIP as usize] = (&raw const rmaplab_puppet_store_resume) as i64;
            regs[libc::REG_RAX as usize] = i64::from(sig);
        } else {
            // SAFETY: signal() with SIG_DFL is async-signal-safe.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }

    pub fn main() -> ! {
        // Start-up: the only part that allocates.
        let args: Vec<CString> = std::env::args_os()
            .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
            .collect();
        let cpu = args
            .last()
            .filter(|_| args.len() >= 2)
            .and_then(|a| a.to_str().ok())
            .and_then(|a| a.parse::<usize>().ok())
            .unwrap_or_else(|| {
                die("usage: rmaplab-puppet CPU or rmaplab __puppet CPU (started by rmaplab::kernel only)")
            });
        if cpu >= libc::CPU_SETSIZE as usize {
            die("CPU number out of range");
        }
        // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { zeroed() };
        // SAFETY: `cpu` is below CPU_SETSIZE (checked above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a valid cpu_set_t of the size passed.
        if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) } != 0 {
            die("sched_setaffinity");
        }

        // SAFETY: 0xffffffff only queries the persona.
        let persona = unsafe { libc::personality(0xffff_ffff) };
        if persona < 0 {
            die("personality (query)");
        }
        let persona = persona as libc::c_ulong;
        if persona & ADDR_NO_RANDOMIZE == 0 {
            // SAFETY: sets a persona flag of this process only.
            if unsafe { libc::personality(persona | ADDR_NO_RANDOMIZE) } < 0 {
                die("personality (set ADDR_NO_RANDOMIZE)");
            }
            let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
            argv.push(std::ptr::null());
            // SAFETY: the path and argv are NUL-terminated and outlive the call.
            unsafe { libc::execv(c"/proc/self/exe".as_ptr(), argv.as_ptr()) };
            die("re-exec of /proc/self/exe");
        }
        drop(args);

        // SAFETY: sets an mm flag of this process (inherited by fork).
        if unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0 {
            die("prctl(PR_SET_THP_DISABLE)");
        }
        // SAFETY: ignoring SIGCHLD makes the kernel reap our children.
        if unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) } == libc::SIG_ERR {
            die("signal(SIGCHLD, SIG_IGN)");
        }
        for sig in [libc::SIGSEGV, libc::SIGBUS] {
            // SAFETY: sigaction is plain data; all-zero is a valid start.
            let mut sa: libc::sigaction = unsafe { zeroed() };
            sa.sa_sigaction = on_fault as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            // SAFETY: `sa` is initialised and `on_fault` has the SA_SIGINFO
            // signature; the old action is not wanted.
            if unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) } != 0 {
                die("sigaction");
            }
        }
        let mut ty: c_int = 0;
        let mut len = size_of::<c_int>() as libc::socklen_t;
        // SAFETY: `ty`/`len` are a valid out-buffer for an int option.
        let r = unsafe {
            libc::getsockopt(
                CONTROL_FD,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&raw mut ty).cast(),
                &mut len,
            )
        };
        if r != 0 || ty != libc::SOCK_SEQPACKET {
            die("fd 3 is not a SEQPACKET socket (the puppet is started by rmaplab::kernel)");
        }
        serve()
    }

    /// Replies `[kind, value, aux]`; a dead controller ends the puppet.
    fn reply(kind: u64, value: u64, aux: u64) {
        let msg: [u64; REPLY_WORDS] = [kind, value, aux];
        loop {
            // SAFETY: sends from a valid buffer of the given length.
            let n = unsafe {
                libc::send(
                    CONTROL_FD,
                    msg.as_ptr().cast(),
                    size_of::<[u64; REPLY_WORDS]>(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n >= 0 {
                return;
            }
            if errno() != libc::EINTR {
                // SAFETY: _exit is always safe.
                unsafe { libc::_exit(0) }
            }
        }
    }

    /// Replies `[REPLY_OK, value, 0]` with `fd` attached (`SCM_RIGHTS`).
    fn reply_with_fd(value: u64, fd: c_int) {
        let mut msg: [u64; REPLY_WORDS] = [REPLY_OK, value, 0];
        let mut iov = libc::iovec {
            iov_base: msg.as_mut_ptr().cast(),
            iov_len: size_of::<[u64; REPLY_WORDS]>(),
        };
        // u64 words keep the control buffer aligned for cmsghdr.
        let mut control = [0u64; 8];
        // SAFETY: msghdr is plain data; all-zero is a valid start.
        let mut hdr: libc::msghdr = unsafe { zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes a size.
        hdr.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<c_int>() as u32) } as usize;
        // SAFETY: the control buffer (64 bytes) holds CMSG_SPACE(4) = 24
        // bytes, so the first header and its data lie inside it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&hdr);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<c_int>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<c_int>(), fd);
        }
        loop {
            // SAFETY: `hdr` points at live buffers set up above.
            let n = unsafe { libc::sendmsg(CONTROL_FD, &hdr, libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return;
            }
            if errno() != libc::EINTR {
                // SAFETY: _exit is always safe.
                unsafe { libc::_exit(0) }
            }
        }
    }

    /// Replies with the result of a syscall that returns -1 and sets errno.
    fn reply_syscall(ret: libc::c_long) {
        if ret == -1 {
            reply(REPLY_ERRNO, errno() as u64, 0);
        } else {
            reply(REPLY_OK, 0, ret as u64);
        }
    }

    fn serve() -> ! {
        let mut cmd = [0u64; CMD_WORDS];
        loop {
            // SAFETY: receives into a valid buffer of the given length.
            let n = unsafe {
                libc::recv(
                    CONTROL_FD,
                    cmd.as_mut_ptr().cast(),
                    size_of::<[u64; CMD_WORDS]>(),
                    0,
                )
            };
            if n == 0 {
                // The controller closed its end: the stream is over.
                // SAFETY: _exit is always safe.
                unsafe { libc::_exit(0) }
            }
            if n < 0 {
                if errno() == libc::EINTR {
                    continue;
                }
                // SAFETY: _exit is always safe.
                unsafe { libc::_exit(102) }
            }
            if n as usize != size_of::<[u64; CMD_WORDS]>() {
                reply(REPLY_BAD_COMMAND, cmd[0], n as u64);
                continue;
            }
            let [code, a0, a1, a2, a3, a4, a5, _] = cmd;
            match code {
                CMD_PING => reply(REPLY_OK, 0, 0),
                CMD_MMAP => {
                    // The raw syscall passes the 64-bit byte offset unchanged;
                    // every argument is a full 64-bit word (no varargs
                    // promotion leaves upper bits undefined).
                    // SAFETY: mapping inside the window touches no Rust memory.
                    let r = unsafe { libc::syscall(libc::SYS_mmap, a0, a1, a2, a3, a4, a5) };
                    reply_syscall(r);
                }
                CMD_MUNMAP => {
                    // SAFETY: the window holds no Rust memory.
                    let r = unsafe { libc::munmap(a0 as *mut c_void, a1 as usize) };
                    reply_syscall(r.into());
                }
                CMD_MPROTECT => {
                    // SAFETY: the window holds no Rust memory.
                    let r = unsafe { libc::mprotect(a0 as *mut c_void, a1 as usize, a2 as c_int) };
                    reply_syscall(r.into());
                }
                CMD_MREMAP => {
                    // SAFETY: source and target are inside the window, which
                    // holds no Rust memory.
                    let r = unsafe { libc::syscall(libc::SYS_mremap, a0, a1, a2, a3, a4) };
                    reply_syscall(r);
                }
                CMD_MADVISE => {
                    // SAFETY: the window holds no Rust memory.
                    let r = unsafe { libc::madvise(a0 as *mut c_void, a1 as usize, a2 as c_int) };
                    reply_syscall(r.into());
                }
                CMD_READ => {
                    // SAFETY: the routine touches only `a0`; a fault there is
                    // turned into a result by `on_fault`.
                    let r = unsafe { rmaplab_puppet_load(a0) };
                    if r.signal == 0 {
                        reply(REPLY_OK, r.value, 0);
                    } else {
                        reply(REPLY_SIGNAL, r.signal, 0);
                    }
                }
                CMD_WRITE => {
                    // SAFETY: as for CMD_READ.
                    let sig = unsafe { rmaplab_puppet_store(a0, a1) };
                    if sig == 0 {
                        reply(REPLY_OK, 0, 0);
                    } else {
                        reply(REPLY_SIGNAL, sig, 0);
                    }
                }
                CMD_FORK => fork(),
                // SAFETY: _exit is always safe.
                CMD_EXIT => unsafe { libc::_exit(0) },
                other => reply(REPLY_BAD_COMMAND, other, 0),
            }
        }
    }

    /// `fork` (§12.1): a new socket pair; the child serves its end on fd 3,
    /// the parent hands the other end to the controller with the child's pid.
    fn fork() {
        let mut sv = [0 as c_int; 2];
        // SAFETY: `sv` is a valid out-array of two fds.
        if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, sv.as_mut_ptr()) } != 0
        {
            reply(REPLY_ERRNO, errno() as u64, 0);
            return;
        }
        // SAFETY: this process is single-threaded, so the child may go on
        // running ordinary code.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: fd operations on fds this process owns.
            unsafe {
                if libc::dup2(sv[1], CONTROL_FD) < 0 {
                    libc::_exit(103);
                }
                libc::close(sv[0]);
                libc::close(sv[1]);
            }
            return;
        }
        let err = errno();
        if pid < 0 {
            reply(REPLY_ERRNO, err as u64, 0);
        } else {
            reply_with_fd(pid as u64, sv[0]);
        }
        // SAFETY: closes fds this process owns and no longer uses.
        unsafe {
            libc::close(sv[0]);
            libc::close(sv[1]);
        }
    }
}
