//! The controller half of the live-kernel backend (Linux, x86_64).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{CString, c_int};
use std::fs::File;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use rmaplab_impls::state::{FrameRef, MapKind, ProcState, State, VmaLine};
use rmaplab_ops::{
    Advice, Errno, FILE_PAGES, Kind, NR_FILES, Op, Outcome, Pid, Prot, WINDOW_PAGES,
};

use super::KernelRun;
use super::proto::*;
use rmaplab_ops::print::print_op;

/// How long a puppet may take to answer one command.
const REPLY_TIMEOUT_SECS: libc::time_t = 10;
/// How long a puppet may take to die after `exit` or `SIGKILL`.
const DEATH_TIMEOUT_MS: c_int = 10_000;
/// End of the window, as an address.
const WINDOW_END: u64 = WINDOW_BASE + WINDOW_PAGES * PAGE_SIZE;
/// pagemap: bit 63 = present, bits 0..=54 = PFN.
const PM_PRESENT: u64 = 1 << 63;
const PM_PFN_MASK: u64 = (1 << 55) - 1;
/// `/proc/kpageflags` bit of the shared zero page.
const KPF_ZERO_PAGE: u64 = 1 << 24;

fn os_err(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

fn errno() -> c_int {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Host checks

/// See [`super::host_can_serve`].
pub fn host_can_serve() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root: PFNs in /proc/PID/pagemap and /proc/kpagecount need root".into());
    }
    // A written stack word is certainly present.
    let probe = std::hint::black_box([0x5au8; 64]);
    let addr = probe.as_ptr() as u64;
    let pagemap = File::open("/proc/self/pagemap")
        .map_err(|e| format!("cannot open /proc/self/pagemap: {e}"))?;
    let entry = read_u64(&pagemap, addr / PAGE_SIZE * 8)
        .map_err(|e| format!("cannot read /proc/self/pagemap: {e}"))?;
    std::hint::black_box(&probe);
    if entry & PM_PRESENT == 0 {
        return Err("/proc/self/pagemap shows a touched page as not present".into());
    }
    let pfn = entry & PM_PFN_MASK;
    if pfn == 0 {
        return Err(
            "/proc/PID/pagemap hides PFNs (they need CAP_SYS_ADMIN in the initial user namespace)"
                .into(),
        );
    }
    let count = File::open("/proc/kpagecount")
        .and_then(|f| read_u64(&f, pfn * 8))
        .map_err(|e| format!("/proc/kpagecount is not readable: {e}"))?;
    if count == 0 {
        return Err("/proc/kpagecount says a mapped page has map count 0".into());
    }
    File::open("/proc/kpageflags")
        .and_then(|f| read_u64(&f, pfn * 8))
        .map_err(|e| format!("/proc/kpageflags is not readable: {e}"))?;
    puppet_command()?;
    Ok(())
}

/// How the backend starts a puppet: `program`, then `args`, then the CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PuppetCommand {
    pub program: PathBuf,
    /// `[]` for a `rmaplab-puppet` binary, `["__puppet"]` for `rmaplab`.
    pub args: Vec<&'static str>,
}

impl PuppetCommand {
    fn binary(program: PathBuf) -> PuppetCommand {
        PuppetCommand {
            program,
            args: Vec::new(),
        }
    }

    fn rmaplab(program: PathBuf) -> PuppetCommand {
        PuppetCommand {
            program,
            args: vec![super::puppet::SUBCOMMAND],
        }
    }
}

impl std::fmt::Display for PuppetCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.program.display())?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// The puppet to start: `$RMAPLAB_PUPPET` if set; else a `rmaplab-puppet`
/// binary next to the running executable (the optional, possibly static
/// build); else the running executable itself when it serves as a puppet
/// (the `rmaplab` binary, see [`super::running_exe_serves_as_puppet`]);
/// else `rmaplab-puppet` or `rmaplab` one directory up (integration tests
/// run from `target/*/deps/`).
pub fn puppet_command() -> Result<PuppetCommand, String> {
    if let Some(p) = std::env::var_os("RMAPLAB_PUPPET") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(PuppetCommand::binary(p))
        } else {
            Err(format!("RMAPLAB_PUPPET={} is not a file", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let here = exe.parent();
    if let Some(d) = here {
        let candidate = d.join("rmaplab-puppet");
        if candidate.is_file() {
            return Ok(PuppetCommand::binary(candidate));
        }
    }
    if super::SELF_SERVES.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(PuppetCommand::rmaplab(exe));
    }
    if let Some(d) = here.and_then(|d| d.parent()) {
        let candidate = d.join("rmaplab-puppet");
        if candidate.is_file() {
            return Ok(PuppetCommand::binary(candidate));
        }
        let candidate = d.join("rmaplab");
        if candidate.is_file() {
            return Ok(PuppetCommand::rmaplab(candidate));
        }
    }
    Err(format!(
        "no puppet for {}: neither rmaplab-puppet next to it nor rmaplab or rmaplab-puppet one \
         directory up (`cargo build -p rmaplab` builds both into target/debug), and \
         RMAPLAB_PUPPET is not set",
        exe.display()
    ))
}

fn read_u64(f: &File, offset: u64) -> io::Result<u64> {
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, offset)?;
    Ok(u64::from_ne_bytes(b))
}

// ---------------------------------------------------------------------------
// CPU pinning

fn current_affinity() -> Result<libc::cpu_set_t, String> {
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { zeroed() };
    // SAFETY: `set` is a valid out-buffer of the size passed.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Err(os_err("sched_getaffinity"));
    }
    Ok(set)
}

fn first_allowed_cpu() -> Result<usize, String> {
    let set = current_affinity()?;
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below CPU_SETSIZE, the size of `set`.
        .find(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .ok_or_else(|| "this thread may run on no CPU".into())
}

/// Pins the calling thread to one CPU and restores its affinity on drop.
struct PinGuard {
    old: libc::cpu_set_t,
}

impl PinGuard {
    fn pin(cpu: usize) -> Result<PinGuard, String> {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(format!("CPU {cpu} out of range"));
        }
        let old = current_affinity()?;
        // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
        let mut set: libc::cpu_set_t = unsafe { zeroed() };
        // SAFETY: `cpu` is below CPU_SETSIZE (checked above).
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a valid cpu_set_t of the size passed.
        if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) } != 0 {
            return Err(os_err(&format!("sched_setaffinity(CPU {cpu})")));
        }
        Ok(PinGuard { old })
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        // SAFETY: `old` is the valid set read in `pin`.
        unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.old) };
    }
}

// ---------------------------------------------------------------------------
// Sockets and process handles

fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), String> {
    let mut sv = [0 as c_int; 2];
    let ty = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: `sv` is a valid out-array of two fds.
    if unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, sv.as_mut_ptr()) } != 0 {
        return Err(os_err("socketpair"));
    }
    // SAFETY: socketpair returned two fresh fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) })
}

fn set_reply_timeout(fd: &OwnedFd) -> Result<(), String> {
    let tv = libc::timeval {
        tv_sec: REPLY_TIMEOUT_SECS,
        tv_usec: 0,
    };
    // SAFETY: passes a valid timeval of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(os_err("setsockopt(SO_RCVTIMEO)"));
    }
    Ok(())
}

fn send_cmd(fd: &OwnedFd, cmd: &[u64; CMD_WORDS]) -> Result<(), String> {
    loop {
        // SAFETY: sends from a valid buffer of the given length.
        let n = unsafe {
            libc::send(
                fd.as_raw_fd(),
                cmd.as_ptr().cast(),
                size_of::<[u64; CMD_WORDS]>(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n == size_of::<[u64; CMD_WORDS]>() as isize {
            return Ok(());
        }
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        return Err(if n < 0 {
            os_err("sending a command (the puppet has died?)")
        } else {
            format!("short send ({n} bytes)")
        });
    }
}

/// Receives one reply and the fd it carries, if any.
fn recv_reply(fd: &OwnedFd) -> Result<([u64; REPLY_WORDS], Option<OwnedFd>), String> {
    let mut msg = [0u64; REPLY_WORDS];
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: msg.as_mut_ptr().cast(),
        iov_len: size_of::<[u64; REPLY_WORDS]>(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid start.
    let mut hdr: libc::msghdr = unsafe { zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.as_mut_ptr().cast();
    hdr.msg_controllen = size_of::<[u64; 8]>();
    let n = loop {
        // SAFETY: `hdr` points at live buffers of the sizes it states.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut hdr, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        break n;
    };
    let err = errno();
    // Take ownership of every passed fd first, so none leaks on error.
    let mut passed: Vec<OwnedFd> = Vec::new();
    if n >= 0 {
        // SAFETY: the kernel filled `control` with `msg_controllen` bytes of
        // well-formed cmsgs; the CMSG_* walk stays inside them.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&hdr);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg).cast::<c_int>();
                    let len = (*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize;
                    for i in 0..len / size_of::<c_int>() {
                        // Each passed fd is new in this process and ours.
                        passed.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&hdr, cmsg);
            }
        }
    }
    if n < 0 {
        return Err(if err == libc::EAGAIN || err == libc::EWOULDBLOCK {
            format!("no reply within {REPLY_TIMEOUT_SECS} s")
        } else {
            format!("receiving a reply: {}", io::Error::from_raw_os_error(err))
        });
    }
    if n == 0 {
        return Err("the puppet died (its socket closed)".into());
    }
    if n as usize != size_of::<[u64; REPLY_WORDS]>()
        || hdr.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0
    {
        return Err(format!(
            "malformed reply ({n} bytes, flags {:#x})",
            hdr.msg_flags
        ));
    }
    if passed.len() > 1 {
        return Err(format!("reply carries {} fds", passed.len()));
    }
    Ok((msg, passed.pop()))
}

fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, String> {
    // SAFETY: pidfd_open takes a pid and flags, nothing else.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(os_err(&format!("pidfd_open({pid})")));
    }
    // SAFETY: pidfd_open returned a fresh (close-on-exec) fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Waits until the process of `pidfd` has exited (its mm is gone).
fn wait_dead(pidfd: &OwnedFd) -> Result<(), String> {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: polls one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, DEATH_TIMEOUT_MS) };
        if r > 0 {
            return Ok(());
        }
        if r == 0 {
            return Err(format!("a puppet did not die within {DEATH_TIMEOUT_MS} ms"));
        }
        if errno() != libc::EINTR {
            return Err(os_err("poll(pidfd)"));
        }
    }
}

fn kill_pidfd(pidfd: &OwnedFd) {
    // SAFETY: sends SIGKILL through a pidfd we own; ESRCH (already dead) is fine.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}

/// One live process of a stream.
struct Puppet {
    os_pid: libc::pid_t,
    sock: OwnedFd,
    pidfd: OwnedFd,
    /// Opened at the first dump. §12.1 asks for the open to follow the
    /// puppet's re-exec (a pagemap fd pins the mm current at open time):
    /// stream puppets are forked from the zygote after its re-exec and
    /// never exec, so their mm is final from the moment `fork` returned.
    pagemap: Option<File>,
    /// `/proc/PID/maps`, opened at the first dump and re-read from offset
    /// 0 at each later one (seq_file restarts at 0), which saves an
    /// open/close pair per process and dump.
    maps: Option<File>,
}

impl Puppet {
    /// Takes over the child a `fork` reported. The pid is turned into a
    /// pidfd at once; the child cannot have been reaped (and its pid
    /// reused) before, short of something outside killing it within
    /// microseconds of its birth.
    fn adopt(os_pid: libc::pid_t, sock: OwnedFd) -> Result<Puppet, String> {
        let pidfd = pidfd_open(os_pid)?;
        set_reply_timeout(&sock)?;
        Ok(Puppet {
            os_pid,
            sock,
            pidfd,
            pagemap: None,
            maps: None,
        })
    }

    /// Sends a command and returns the reply and the fd it carries.
    fn call_raw(
        &self,
        cmd: [u64; CMD_WORDS],
    ) -> Result<([u64; REPLY_WORDS], Option<OwnedFd>), String> {
        send_cmd(&self.sock, &cmd)?;
        recv_reply(&self.sock)
    }

    /// Sends a command whose reply carries no fd.
    fn call(&self, cmd: [u64; CMD_WORDS]) -> Result<[u64; REPLY_WORDS], String> {
        match self.call_raw(cmd)? {
            (reply, None) => Ok(reply),
            (_, Some(_)) => Err("unexpected fd in a reply".into()),
        }
    }

    /// The whole text of `/proc/PID/maps` now, into `buf`.
    fn read_maps(&mut self, buf: &mut Vec<u8>) -> Result<(), String> {
        let path = || format!("/proc/{}/maps", self.os_pid);
        if self.maps.is_none() {
            self.maps = Some(File::open(path()).map_err(|e| format!("{}: {e}", path()))?);
        }
        let Some(f) = &self.maps else {
            return Err("maps not open".into());
        };
        buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            match f.read_at(&mut chunk, buf.len() as u64) {
                Ok(0) => return Ok(()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("{}: {e}", path())),
            }
        }
    }

    fn pagemap(&mut self) -> Result<&File, String> {
        if self.pagemap.is_none() {
            let path = format!("/proc/{}/pagemap", self.os_pid);
            let f = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            self.pagemap = Some(f);
        }
        self.pagemap
            .as_ref()
            .ok_or_else(|| "pagemap not open".into())
    }
}

/// The live processes of one stream; dropping it kills them all.
struct Tree {
    procs: BTreeMap<Pid, Puppet>,
    next: u32,
}

impl Tree {
    /// Kills every puppet and waits until all are gone.
    fn teardown(&mut self) -> Result<(), String> {
        let procs = std::mem::take(&mut self.procs);
        for p in procs.values() {
            kill_pidfd(&p.pidfd);
        }
        let mut result = Ok(());
        for (pid, p) in &procs {
            if let Err(e) = wait_dead(&p.pidfd) {
                result = Err(format!("{pid} (pid {}): {e}", p.os_pid));
            }
        }
        result
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// The template puppet every stream's `p0` is forked from.
struct Zygote {
    child: Child,
    sock: OwnedFd,
}

impl Drop for Zygote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The backend

/// A live-kernel backend: a zygote puppet pinned to one CPU and the four
/// test files. Reusable for any number of streams; dropping it kills the
/// zygote (a stream's puppets never outlive [`Kernel::run`]).
pub struct Kernel {
    cpu: usize,
    puppet: PuppetCommand,
    /// memfds `rmaplab-f0..3`, created here so that every puppet maps the
    /// same `struct file` (as one process tree would) and so that the
    /// controller can restore their contents between streams.
    files: Vec<File>,
    /// Bit `f`: a stream mapped file `f` `MAP_SHARED` and may have written
    /// to it; it is rewritten before the next stream.
    files_dirty: u8,
    zygote: Option<Zygote>,
    kpagecount: File,
    kpageflags: File,
    zero_pfn: Option<u64>,
}

impl Kernel {
    /// A backend on the first CPU the calling thread may run on.
    pub fn new() -> Result<Kernel, String> {
        Kernel::on_cpu(first_allowed_cpu()?)
    }

    /// A backend whose controller (the thread calling [`Kernel::run`]) and
    /// puppets all run on `cpu`. Independent backends on different CPUs can
    /// run streams in parallel.
    pub fn on_cpu(cpu: usize) -> Result<Kernel, String> {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(format!("CPU {cpu} out of range"));
        }
        let puppet = puppet_command()?;
        let open = |path: &str| File::open(path).map_err(|e| format!("{path}: {e}"));
        let kpagecount = open("/proc/kpagecount")?;
        let kpageflags = open("/proc/kpageflags")?;
        let files = (0..NR_FILES)
            .map(create_file)
            .collect::<Result<Vec<File>, String>>()?;
        Ok(Kernel {
            cpu,
            puppet,
            files,
            files_dirty: 0,
            zygote: None,
            kpagecount,
            kpageflags,
            zero_pfn: None,
        })
    }

    /// The CPU this backend runs on.
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// Runs one stream in a fresh process tree forked from the zygote.
    pub fn run(&mut self, ops: &[Op]) -> Result<KernelRun, String> {
        let _pin = PinGuard::pin(self.cpu)?;
        if self.files_dirty != 0 {
            self.restore_files()?;
        }
        let root = self.fork_root()?;
        let mut tree = Tree {
            procs: BTreeMap::from([(Pid(0), root)]),
            next: 1,
        };
        let mut outcomes = Vec::with_capacity(ops.len());
        let mut dumps = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let outcome = self
                .step(&mut tree, op, &mut dumps)
                .map_err(|e| format!("op {} (`{}`): {e}", i + 1, print_op(op)))?;
            outcomes.push(outcome);
        }
        // docs/op-language.md / the runner: the state after the last op, unless the
        // stream's last op was a `dump` that already reported it.
        if !matches!(ops.last(), Some(Op::Dump)) {
            dumps.push(
                self.dump(&mut tree)
                    .map_err(|e| format!("final dump: {e}"))?,
            );
        }
        tree.teardown()?;
        Ok(KernelRun { outcomes, dumps })
    }

    fn spawn_zygote(&self) -> Result<Zygote, String> {
        let (ours, theirs) = seqpacket_pair()?;
        let mut srcs = [0 as RawFd; 1 + NR_FILES as usize];
        srcs[0] = theirs.as_raw_fd();
        for (i, f) in self.files.iter().enumerate() {
            srcs[1 + i] = f.as_raw_fd();
        }
        let mut cmd = Command::new(&self.puppet.program);
        cmd.args(&self.puppet.args)
            .arg(self.cpu.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // SAFETY: the closure runs in the forked child before exec and only
        // calls the async-signal-safe fcntl/dup2/close on fds that the
        // parent keeps open until `spawn` returns.
        unsafe {
            cmd.pre_exec(move || {
                // Move every source above the targets first, so that no
                // dup2 overwrites a source still to be moved.
                let mut high = [0 as RawFd; 1 + NR_FILES as usize];
                for (h, &s) in high.iter_mut().zip(&srcs) {
                    *h = libc::fcntl(s, libc::F_DUPFD, 64);
                    if *h < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                for (i, &h) in high.iter().enumerate() {
                    if libc::dup2(h, CONTROL_FD + i as RawFd) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    libc::close(h);
                }
                Ok(())
            })
        };
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.puppet))?;
        drop(theirs);
        let zygote = Zygote { child, sock: ours };
        set_reply_timeout(&zygote.sock)?;
        send_cmd(&zygote.sock, &cmd_words(CMD_PING, [0; 6]))
            .and_then(|()| recv_reply(&zygote.sock))
            .and_then(|(reply, fd)| match (reply[0], fd) {
                (REPLY_OK, None) => Ok(()),
                _ => Err(format!("bad ping reply {reply:?}")),
            })
            .map_err(|e| format!("zygote {}: {e}", self.puppet))?;
        Ok(zygote)
    }

    /// A fresh `p0`: forked from the zygote (started, or restarted once if
    /// it has died).
    fn fork_root(&mut self) -> Result<Puppet, String> {
        let mut last_err = String::new();
        for _ in 0..2 {
            if self.zygote.is_none() {
                self.zygote = Some(self.spawn_zygote()?);
            }
            let Some(z) = &self.zygote else { continue };
            let forked = send_cmd(&z.sock, &cmd_words(CMD_FORK, [0; 6]))
                .and_then(|()| recv_reply(&z.sock))
                .and_then(|(reply, fd)| match (reply[0], fd) {
                    (REPLY_OK, Some(fd)) => Puppet::adopt(reply[1] as libc::pid_t, fd),
                    (REPLY_ERRNO, _) => Err(format!(
                        "fork: {}",
                        io::Error::from_raw_os_error(reply[1] as i32)
                    )),
                    _ => Err(format!("bad fork reply {reply:?}")),
                });
            match forked {
                Ok(p) => return Ok(p),
                Err(e) => {
                    last_err = format!("forking p0 from the zygote: {e}");
                    self.zygote = None;
                }
            }
        }
        Err(last_err)
    }

    fn restore_files(&mut self) -> Result<(), String> {
        for (f, file) in self.files.iter().enumerate() {
            if self.files_dirty & (1 << f) != 0 {
                file.write_all_at(&file_image(f as u8), 0)
                    .map_err(|e| format!("restoring file {f}: {e}"))?;
            }
        }
        self.files_dirty = 0;
        Ok(())
    }

    /// One op; `Err` only when the run cannot go on.
    fn step(
        &mut self,
        tree: &mut Tree,
        op: &Op,
        dumps: &mut Vec<State>,
    ) -> Result<Outcome, String> {
        if op.emulator_only() {
            return Ok(Outcome::Unsupported);
        }
        if let Op::Dump = op {
            dumps.push(self.dump(tree)?);
            return Ok(Outcome::Ok);
        }
        let Some(pid) = op.pid() else {
            return Err("op without a process".into());
        };
        let Some(puppet) = tree.procs.get(&pid) else {
            return Ok(Outcome::Err(Errno::ESRCH));
        };
        let page = |p: u64| WINDOW_BASE + p * PAGE_SIZE;
        let bytes = |n: u64| n * PAGE_SIZE;
        let einval = Ok(Outcome::Err(Errno::EINVAL));
        match *op {
            Op::Mmap {
                addr,
                len,
                prot,
                kind,
                replace,
                ..
            } => {
                if !in_window(addr, len) {
                    return einval;
                }
                let (share, fd, off) = match kind {
                    Kind::Anon => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0),
                    Kind::Shared => (libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0),
                    Kind::File { file, off } | Kind::SFile { file, off } => {
                        if file >= NR_FILES {
                            return einval;
                        }
                        let Some(off) = off.checked_mul(PAGE_SIZE) else {
                            return einval;
                        };
                        let share = if matches!(kind, Kind::File { .. }) {
                            libc::MAP_PRIVATE
                        } else {
                            self.files_dirty |= 1 << file;
                            libc::MAP_SHARED
                        };
                        (share, FIRST_FILE_FD + i32::from(file), off)
                    }
                };
                let fixed = if replace {
                    libc::MAP_FIXED
                } else {
                    libc::MAP_FIXED_NOREPLACE
                };
                let cmd = cmd_words(
                    CMD_MMAP,
                    [
                        page(addr),
                        bytes(len),
                        prot_bits(prot) as u64,
                        (share | fixed) as u64,
                        i64::from(fd) as u64,
                        off,
                    ],
                );
                let reply = puppet.call(cmd)?;
                if reply[0] == REPLY_OK && reply[2] != page(addr) {
                    return Err(format!(
                        "mmap returned {:#x}, not {:#x}",
                        reply[2],
                        page(addr)
                    ));
                }
                outcome(reply)
            }
            Op::Munmap { addr, len, .. } => {
                if !in_window(addr, len) {
                    return einval;
                }
                outcome(puppet.call(cmd_words(CMD_MUNMAP, [page(addr), bytes(len), 0, 0, 0, 0]))?)
            }
            Op::Mprotect {
                addr, len, prot, ..
            } => {
                if !in_window(addr, len) {
                    return einval;
                }
                let args = [page(addr), bytes(len), prot_bits(prot) as u64, 0, 0, 0];
                outcome(puppet.call(cmd_words(CMD_MPROTECT, args))?)
            }
            Op::Madvise {
                addr, len, advice, ..
            } => {
                if !in_window(addr, len) {
                    return einval;
                }
                let args = [page(addr), bytes(len), advice_bits(advice) as u64, 0, 0, 0];
                outcome(puppet.call(cmd_words(CMD_MADVISE, args))?)
            }
            Op::Mremap {
                old,
                old_len,
                new_len,
                to,
                ..
            } => {
                let target = to.map_or(old, |t| t.new);
                if !in_window(old, old_len) || !in_window(target, new_len) {
                    return einval;
                }
                let (flags, new) = match to {
                    None => (0, 0),
                    Some(t) => {
                        let mut flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
                        if t.dontunmap {
                            flags |= libc::MREMAP_DONTUNMAP;
                        }
                        (flags, page(t.new))
                    }
                };
                let args = [
                    page(old),
                    bytes(old_len),
                    bytes(new_len),
                    flags as u64,
                    new,
                    0,
                ];
                let reply = puppet.call(cmd_words(CMD_MREMAP, args))?;
                let expect = if to.is_some() { new } else { page(old) };
                if reply[0] == REPLY_OK && reply[2] != expect {
                    return Err(format!(
                        "mremap moved the range to {:#x}, not {expect:#x}",
                        reply[2]
                    ));
                }
                outcome(reply)
            }
            Op::Read { addr, .. } => {
                if !in_window(addr, 1) {
                    return einval;
                }
                let reply = puppet.call(cmd_words(CMD_READ, [page(addr), 0, 0, 0, 0, 0]))?;
                match reply[0] {
                    REPLY_OK => Ok(Outcome::Value(reply[1])),
                    _ => outcome(reply),
                }
            }
            Op::Write { addr, value, .. } => {
                if !in_window(addr, 1) {
                    return einval;
                }
                outcome(puppet.call(cmd_words(CMD_WRITE, [page(addr), value, 0, 0, 0, 0]))?)
            }
            Op::Fork { .. } => {
                let (reply, fd) = puppet.call_raw(cmd_words(CMD_FORK, [0; 6]))?;
                match (reply[0], fd) {
                    (REPLY_OK, Some(fd)) => {
                        let child = Puppet::adopt(reply[1] as libc::pid_t, fd)?;
                        tree.procs.insert(Pid(tree.next), child);
                        tree.next += 1;
                        Ok(Outcome::Ok)
                    }
                    (REPLY_OK, None) => Err("fork reply without the child's socket".into()),
                    (_, None) => outcome(reply),
                    (_, Some(_)) => Err(format!("bad fork reply {reply:?}")),
                }
            }
            Op::Exit { .. } => {
                let Some(p) = tree.procs.remove(&pid) else {
                    return Ok(Outcome::Err(Errno::ESRCH));
                };
                let sent = send_cmd(&p.sock, &cmd_words(CMD_EXIT, [0; 6]));
                let died = wait_dead(&p.pidfd);
                if died.is_err() {
                    kill_pidfd(&p.pidfd);
                    let _ = wait_dead(&p.pidfd);
                }
                sent.and(died)?;
                Ok(Outcome::Ok)
            }
            Op::Swapout { .. }
            | Op::Reclaim
            | Op::Migrate { .. }
            | Op::Referenced { .. }
            | Op::FailAlloc { .. }
            | Op::ExecStack { .. }
            | Op::ExecShift { .. }
            | Op::Dump => Ok(Outcome::Unsupported),
        }
    }

    /// The observable state of every live puppet.
    fn dump(&mut self, tree: &mut Tree) -> Result<State, String> {
        let mut frames: HashMap<u64, (FrameRef, u32)> = HashMap::new();
        let mut state = State::default();
        let mut text = Vec::new();
        for (&pid, p) in tree.procs.iter_mut() {
            p.read_maps(&mut text).map_err(|e| format!("{pid}: {e}"))?;
            let maps = std::str::from_utf8(&text)
                .map_err(|e| format!("{pid}: /proc/{}/maps: {e}", p.os_pid))?;
            let vmas = parse_maps(maps).map_err(|e| format!("{pid}: {e}"))?;
            let mut entries = [0u8; WINDOW_PAGES as usize * 8];
            p.pagemap()?
                .read_exact_at(&mut entries, WINDOW_BASE / PAGE_SIZE * 8)
                .map_err(|e| format!("{pid}: reading pagemap: {e}"))?;
            let mut pages = BTreeMap::new();
            for v in &vmas {
                for page in v.start..v.end.min(WINDOW_PAGES) {
                    let i = page as usize * 8;
                    let mut word = [0u8; 8];
                    word.copy_from_slice(&entries[i..i + 8]);
                    let entry = u64::from_ne_bytes(word);
                    if entry & PM_PRESENT == 0 {
                        continue;
                    }
                    let pfn = entry & PM_PFN_MASK;
                    if pfn == 0 {
                        return Err("pagemap hides PFNs (not root?)".into());
                    }
                    let frame = match frames.get(&pfn) {
                        Some(&f) => f,
                        None => {
                            let f = self.frame(pfn)?;
                            frames.insert(pfn, f);
                            f
                        }
                    };
                    pages.insert(page, frame);
                }
            }
            state.procs.insert(pid, ProcState { vmas, pages });
        }
        Ok(state)
    }

    /// What PFN `pfn` is: the zero page (map count 0) or a frame and its
    /// map count.
    fn frame(&mut self, pfn: u64) -> Result<(FrameRef, u32), String> {
        if self.zero_pfn == Some(pfn) {
            return Ok((FrameRef::Zero, 0));
        }
        if self.zero_pfn.is_none() {
            let flags = read_u64(&self.kpageflags, pfn * 8)
                .map_err(|e| format!("/proc/kpageflags at PFN {pfn:#x}: {e}"))?;
            if flags & KPF_ZERO_PAGE != 0 {
                self.zero_pfn = Some(pfn);
                return Ok((FrameRef::Zero, 0));
            }
        }
        let count = read_u64(&self.kpagecount, pfn * 8)
            .map_err(|e| format!("/proc/kpagecount at PFN {pfn:#x}: {e}"))?;
        let count =
            u32::try_from(count).map_err(|_| format!("map count {count} of PFN {pfn:#x}"))?;
        Ok((FrameRef::Frame(pfn), count))
    }
}

thread_local! {
    static THREAD_KERNEL: RefCell<Option<Kernel>> = const { RefCell::new(None) };
}

/// [`super::run_on_kernel`]: runs on this thread's backend.
pub fn run_on_thread_kernel(ops: &[Op]) -> Result<KernelRun, String> {
    THREAD_KERNEL.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| "run_on_kernel called re-entrantly".to_string())?;
        if slot.is_none() {
            host_can_serve()?;
            *slot = Some(Kernel::new()?);
        }
        match slot.as_mut() {
            Some(k) => k.run(ops),
            None => Err("no backend".into()),
        }
    })
}

// ---------------------------------------------------------------------------
// Helpers

/// The model's window rule: `[addr, addr + len)` with `addr` a window page
/// and the end inside the window.
fn in_window(addr: u64, len: u64) -> bool {
    addr < WINDOW_PAGES && addr.checked_add(len).is_some_and(|end| end <= WINDOW_PAGES)
}

fn cmd_words(code: u64, args: [u64; 6]) -> [u64; CMD_WORDS] {
    let [a0, a1, a2, a3, a4, a5] = args;
    [code, a0, a1, a2, a3, a4, a5, 0]
}

fn prot_bits(prot: Prot) -> c_int {
    match prot {
        Prot::None => libc::PROT_NONE,
        Prot::R => libc::PROT_READ,
        Prot::Rw => libc::PROT_READ | libc::PROT_WRITE,
        Prot::Rx => libc::PROT_READ | libc::PROT_EXEC,
        Prot::Rwx => libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
    }
}

fn advice_bits(advice: Advice) -> c_int {
    match advice {
        Advice::DontNeed => libc::MADV_DONTNEED,
        Advice::DontFork => libc::MADV_DONTFORK,
        Advice::DoFork => libc::MADV_DOFORK,
        Advice::WipeOnFork => libc::MADV_WIPEONFORK,
        Advice::KeepOnFork => libc::MADV_KEEPONFORK,
    }
}

/// The outcome a puppet's reply stands for.
fn outcome(reply: [u64; REPLY_WORDS]) -> Result<Outcome, String> {
    match reply[0] {
        REPLY_OK => Ok(Outcome::Ok),
        REPLY_ERRNO => {
            let e = reply[1] as c_int;
            Ok(Outcome::Err(match e {
                libc::EINVAL => Errno::EINVAL,
                libc::ENOMEM => Errno::ENOMEM,
                libc::EEXIST => Errno::EEXIST,
                libc::EFAULT => Errno::EFAULT,
                libc::ESRCH => Errno::ESRCH,
                // As the reference model reports them (module docs).
                libc::EBADF | libc::EOVERFLOW => Errno::EINVAL,
                _ => {
                    return Err(format!(
                        "errno the op language cannot name: {}",
                        io::Error::from_raw_os_error(e)
                    ));
                }
            }))
        }
        REPLY_SIGNAL => match reply[1] as c_int {
            libc::SIGSEGV => Ok(Outcome::Segv),
            libc::SIGBUS => Ok(Outcome::Sigbus),
            s => Err(format!("access raised signal {s}")),
        },
        _ => Err(format!("the puppet refused the command (reply {reply:?})")),
    }
}

/// The initial contents of file `f`: page `o` starts with `f << 32 | o`.
fn file_image(f: u8) -> Vec<u8> {
    let mut image = vec![0u8; (FILE_PAGES * PAGE_SIZE) as usize];
    for o in 0..FILE_PAGES {
        let at = (o * PAGE_SIZE) as usize;
        image[at..at + 8].copy_from_slice(&((u64::from(f) << 32) | o).to_ne_bytes());
    }
    image
}

/// memfd `rmaplab-fF` (tmpfs, so small folios and no fault-in from disk),
/// written in full so that every page is in the page cache.
fn create_file(f: u8) -> Result<File, String> {
    let name = CString::new(format!("rmaplab-f{f}")).map_err(|e| e.to_string())?;
    // MFD_EXEC keeps PROT_EXEC mappings allowed whatever vm.memfd_noexec
    // says; kernels older than 6.3 reject it, so retry without.
    // SAFETY: `name` is NUL-terminated; flags are plain bits.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_EXEC) };
    if fd < 0 && errno() == libc::EINVAL {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    }
    if fd < 0 {
        return Err(os_err("memfd_create"));
    }
    // SAFETY: memfd_create returned a fresh fd that nothing else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    file.write_all_at(&file_image(f), 0)
        .map_err(|e| format!("writing file {f}: {e}"))?;
    Ok(file)
}

/// The VMAs of a `/proc/PID/maps` text that start inside the window.
fn parse_maps(text: &str) -> Result<Vec<VmaLine>, String> {
    let mut vmas = Vec::new();
    for line in text.lines() {
        let bad = || format!("unexpected maps line `{line}`");
        let (range, rest) = line.split_once(' ').ok_or_else(bad)?;
        let (s, e) = range.split_once('-').ok_or_else(bad)?;
        let start = u64::from_str_radix(s, 16).map_err(|_| bad())?;
        let end = u64::from_str_radix(e, 16).map_err(|_| bad())?;
        if !(WINDOW_BASE..WINDOW_END).contains(&start) {
            continue;
        }
        let mut fields = rest.splitn(5, ' ');
        let perms = fields.next().ok_or_else(bad)?;
        let offset = fields.next().ok_or_else(bad)?;
        let _dev = fields.next().ok_or_else(bad)?;
        let _inode = fields.next().ok_or_else(bad)?;
        let name = fields.next().unwrap_or("").trim();
        let offset = u64::from_str_radix(offset, 16).map_err(|_| bad())? / PAGE_SIZE;
        let shared = match perms.as_bytes().get(3) {
            Some(b's') => true,
            Some(b'p') => false,
            _ => return Err(bad()),
        };
        let (kind, offset) = if name.is_empty() && !shared {
            (MapKind::Anon, 0)
        } else if name.starts_with("/dev/zero") && shared {
            (MapKind::Shared, offset)
        } else if let Some(f) = name
            .strip_prefix("/memfd:rmaplab-f")
            .and_then(|r| r.split(' ').next())
            .and_then(|d| d.parse::<u8>().ok())
            .filter(|&f| f < NR_FILES)
        {
            let kind = if shared {
                MapKind::SFile(f)
            } else {
                MapKind::File(f)
            };
            (kind, offset)
        } else {
            return Err(format!("a mapping the op language cannot make: `{line}`"));
        };
        vmas.push(VmaLine {
            start: (start - WINDOW_BASE) / PAGE_SIZE,
            end: (end - WINDOW_BASE) / PAGE_SIZE,
            perms: perms.to_string(),
            kind,
            offset,
        });
    }
    Ok(vmas)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_maps_lines_in_the_window() {
        let text = "\
555555554000-555555556000 r--p 00000000 08:01 123    /usr/bin/x
100000000000-100000004000 rw-p 00000000 00:00 0 
100000004000-100000006000 rw-s 00002000 00:01 77     /dev/zero (deleted)
100000008000-10000000a000 r--p 00003000 00:01 78     /memfd:rmaplab-f2 (deleted)
10000000a000-10000000b000 rwxs 00000000 00:01 79     /memfd:rmaplab-f3 (deleted)
7ffff7fc1000-7ffff7fc5000 r--p 00000000 00:00 0      [vvar]
";
        let v = parse_maps(text).unwrap();
        let got: Vec<_> = v
            .iter()
            .map(|l| (l.start, l.end, l.perms.as_str(), l.kind, l.offset))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 4, "rw-p", MapKind::Anon, 0),
                (4, 6, "rw-s", MapKind::Shared, 2),
                (8, 10, "r--p", MapKind::File(2), 3),
                (10, 11, "rwxs", MapKind::SFile(3), 0),
            ]
        );
        assert!(parse_maps("100000000000-100000001000 rw-p 00000000 00:00 0  [heap]\n").is_err());
    }

    #[test]
    fn window_rule_matches_the_model() {
        assert!(in_window(0, 256));
        assert!(in_window(255, 1));
        assert!(in_window(255, 0));
        assert!(!in_window(256, 0));
        assert!(!in_window(200, 57));
        assert!(!in_window(1, u64::MAX));
    }

    #[test]
    fn file_image_holds_the_page_tags() {
        let img = file_image(3);
        let at = |o: usize| u64::from_ne_bytes(img[o * 4096..o * 4096 + 8].try_into().unwrap());
        assert_eq!(at(0), 3 << 32);
        assert_eq!(at(63), (3 << 32) | 63);
        assert_eq!(img[8], 0);
    }
}
