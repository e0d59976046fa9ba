//! `rmaplab export-c`: an op stream as a standalone C11 program that
//! replays it with real syscalls on Linux and prints every outcome — a
//! reproducer a kernel developer can build and run anywhere, as syzkaller's
//! C repros are (only libc and Linux headers; no root needed).
//!
//! The program does what the live-kernel backend ([`crate::kernel`]) does,
//! in one file:
//!
//! - it creates the four test files as memfds `rmaplab-f0..3` (tmpfs, 64
//!   pages each, fully written: page O of file F starts with `F << 32 | O`),
//!   pins itself to CPU 0 (or the first CPU it may use; every process
//!   inherits it, so COW reuse is deterministic, `docs/linux-6.18.md` §3.3) and
//!   sets `PR_SET_THP_DISABLE`;
//! - every `pN` of the stream is a real process: `p0` is forked by the
//!   program (the *controller*), and `fork pN` is a real `fork()` in `pN`.
//!   Each process waits on its own command pipe, does the op it is sent
//!   (every syscall and every memory access is its own, with SIGSEGV and
//!   SIGBUS caught by `sigsetjmp`/`siglongjmp`) and answers on its reply
//!   pipe, so the ops happen in stream order. `exit` waits until the
//!   process is gone (a pidfd), so its mappings are torn down before the
//!   next op;
//! - the controller's `main` has one statement per op, with the op's text,
//!   and prints one line per op: `line N: OP => OUTCOME` in the op
//!   language's words (`ok`, `ok 0x..`, `segv`, `sigbus`, `err ENOMEM`,
//!   `unsupported` for the emulator-only ops); at every `dump`, and after
//!   the last op unless the stream ends with one, each live process prints
//!   its `/proc/self/maps` lines inside the window as `  pN LINE` and its
//!   present pages as `  pN pages PAGE:pfn=0x../COUNT ...` (`PAGE:zero` for
//!   the zero page; without root, which hides PFNs, `PAGE:excl` or
//!   `PAGE:shared` from pagemap's exclusively-mapped bit).
//!
//! Outcomes the backend decides without asking the kernel are decided the
//! same way here: an op naming a process that is not live is `err ESRCH`;
//! an op whose range leaves the 256-page window, a file number above 3 or a
//! file offset whose byte address overflows is `err EINVAL` (decided when
//! the C is generated, and said so in a comment); `EBADF` and `EOVERFLOW`
//! print as `err EINVAL` (the op language cannot name them).

use std::fmt::Write as _;

use rmaplab_ops::{Advice, Kind, NR_FILES, Op, Prot, WINDOW_PAGES};

use rmaplab_ops::Stream;
use rmaplab_ops::print::print_op;

const PAGE: u64 = 4096;

/// The C program for `stream`; `source` names where it came from (for the
/// header comment).
pub fn export_c(stream: &Stream, source: &str) -> String {
    export_c_annotated(stream, source, None)
}

/// [`export_c`], with the comment lines of the stream's `.ops` text (`#
/// ...`, e.g. a corpus file's description and expected snapshots) carried
/// over as C comments before the op they precede.
pub fn export_c_annotated(stream: &Stream, source: &str, ops_text: Option<&str>) -> String {
    let comments: Vec<(usize, String)> = ops_text
        .map(|t| {
            t.lines()
                .enumerate()
                .filter_map(|(i, l)| {
                    let c = l.trim_start().strip_prefix('#')?;
                    Some((i + 1, comment_safe(c.trim())))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut next_comment = 0;
    // The comments before source line `line` not emitted yet.
    let mut comments_before = |line: usize| {
        let mut out = String::new();
        while let Some((l, c)) = comments.get(next_comment)
            && *l < line
        {
            if c.is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, "    /* {c} */");
            }
            next_comment += 1;
        }
        out
    };
    let nprocs = 1 + stream
        .ops
        .iter()
        .filter(|o| matches!(o, Op::Fork { .. }))
        .count();
    let mut body = String::new();
    for (i, op) in stream.ops.iter().enumerate() {
        let line = stream.lines.get(i).copied().unwrap_or(i + 1);
        body.push_str(&comments_before(line));
        body.push_str(&statement(line, op));
    }
    body.push_str(&comments_before(usize::MAX));
    if !matches!(stream.ops.last(), Some(Op::Dump)) {
        body.push_str("    final_state();\n");
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "{}",
        PRELUDE
            .replace("@SOURCE@", &comment_safe(source))
            .replace("@NPROCS@", &nprocs.to_string())
            .replace("@NOPS@", &stream.ops.len().to_string())
    );
    out.push_str("int main(void)\n{\n    setup();\n\n");
    out.push_str(&body);
    out.push_str("\n    teardown();\n    return 0;\n}\n");
    out
}

/// `*/` cannot appear inside the header comment.
fn comment_safe(s: &str) -> String {
    s.replace("*/", "* /")
}

/// A C string literal for op text.
fn c_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => {
                let _ = write!(out, "\\x{:02x}", c as u32 & 0xff);
            }
        }
    }
    out.push('"');
    out
}

/// The backend's window rule: `[addr, addr + len)` inside the window.
fn in_window(addr: u64, len: u64) -> bool {
    addr < WINDOW_PAGES && addr.checked_add(len).is_some_and(|end| end <= WINDOW_PAGES)
}

fn prot_c(p: Prot) -> &'static str {
    match p {
        Prot::None => "PROT_NONE",
        Prot::R => "PROT_READ",
        Prot::Rw => "PROT_READ | PROT_WRITE",
        Prot::Rx => "PROT_READ | PROT_EXEC",
        Prot::Rwx => "PROT_READ | PROT_WRITE | PROT_EXEC",
    }
}

fn advice_c(a: Advice) -> &'static str {
    match a {
        Advice::DontNeed => "MADV_DONTNEED",
        Advice::DontFork => "MADV_DONTFORK",
        Advice::DoFork => "MADV_DOFORK",
        Advice::WipeOnFork => "MADV_WIPEONFORK",
        Advice::KeepOnFork => "MADV_KEEPONFORK",
    }
}

/// One op as one C statement (two lines when it needs a comment).
fn statement(line: usize, op: &Op) -> String {
    let text = c_string(&print_op(op));
    let einval = |pid: u32, why: &str| {
        format!("    /* {why}: EINVAL, nothing is done */\n    einval({line}, {text}, {pid});\n")
    };
    match *op {
        Op::Mmap {
            pid,
            addr,
            len,
            prot,
            kind,
            replace,
        } => {
            if !in_window(addr, len) {
                return einval(pid.0, "the range leaves the window");
            }
            let fixed = if replace {
                "MAP_FIXED"
            } else {
                "MAP_FIXED_NOREPLACE"
            };
            let (flags, fd, off) = match kind {
                Kind::Anon => ("MAP_PRIVATE | MAP_ANONYMOUS".to_string(), "-1".into(), 0),
                Kind::Shared => ("MAP_SHARED | MAP_ANONYMOUS".to_string(), "-1".into(), 0),
                Kind::File { file, off } | Kind::SFile { file, off } => {
                    if file >= NR_FILES {
                        return einval(pid.0, "no such file");
                    }
                    let Some(bytes) = off.checked_mul(PAGE) else {
                        return einval(pid.0, "the file offset overflows");
                    };
                    let share = if matches!(kind, Kind::File { .. }) {
                        "MAP_PRIVATE"
                    } else {
                        "MAP_SHARED"
                    };
                    (share.to_string(), format!("file_fd[{file}]"), bytes)
                }
            };
            format!(
                "    do_op({line}, {text}, {}, mmap_cmd({addr}, {len}, {}, {flags} | {fixed}, {fd}, \
                 {off:#x}ULL));\n",
                pid.0,
                prot_c(prot)
            )
        }
        Op::Munmap { pid, addr, len } => {
            if !in_window(addr, len) {
                return einval(pid.0, "the range leaves the window");
            }
            format!(
                "    do_op({line}, {text}, {}, munmap_cmd({addr}, {len}));\n",
                pid.0
            )
        }
        Op::Mprotect {
            pid,
            addr,
            len,
            prot,
        } => {
            if !in_window(addr, len) {
                return einval(pid.0, "the range leaves the window");
            }
            format!(
                "    do_op({line}, {text}, {}, mprotect_cmd({addr}, {len}, {}));\n",
                pid.0,
                prot_c(prot)
            )
        }
        Op::Madvise {
            pid,
            addr,
            len,
            advice,
        } => {
            if !in_window(addr, len) {
                return einval(pid.0, "the range leaves the window");
            }
            format!(
                "    do_op({line}, {text}, {}, madvise_cmd({addr}, {len}, {}));\n",
                pid.0,
                advice_c(advice)
            )
        }
        Op::Mremap {
            pid,
            old,
            old_len,
            new_len,
            to,
        } => {
            let target = to.map_or(old, |t| t.new);
            if !in_window(old, old_len) || !in_window(target, new_len) {
                return einval(pid.0, "a range leaves the window");
            }
            let (flags, new) = match to {
                None => ("0".to_string(), 0),
                Some(t) if t.dontunmap => (
                    "MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP".to_string(),
                    t.new,
                ),
                Some(t) => ("MREMAP_MAYMOVE | MREMAP_FIXED".to_string(), t.new),
            };
            format!(
                "    do_op({line}, {text}, {}, mremap_cmd({old}, {old_len}, {new_len}, {flags}, \
                 {new}));\n",
                pid.0
            )
        }
        Op::Read { pid, addr } => {
            if !in_window(addr, 1) {
                return einval(pid.0, "the page is outside the window");
            }
            format!("    do_op({line}, {text}, {}, read_cmd({addr}));\n", pid.0)
        }
        Op::Write { pid, addr, value } => {
            if !in_window(addr, 1) {
                return einval(pid.0, "the page is outside the window");
            }
            format!(
                "    do_op({line}, {text}, {}, write_cmd({addr}, {value:#x}ULL));\n",
                pid.0
            )
        }
        Op::Fork { pid } => format!("    do_fork({line}, {text}, {});\n", pid.0),
        Op::Exit { pid } => format!("    do_exit({line}, {text}, {});\n", pid.0),
        Op::Dump => format!("    do_dump({line}, {text});\n"),
        Op::Swapout { .. }
        | Op::Reclaim
        | Op::Migrate { .. }
        | Op::Referenced { .. }
        | Op::FailAlloc { .. }
        | Op::ExecStack { .. }
        | Op::ExecShift { .. } => {
            format!(
                "    /* emulator-only: a live kernel cannot be made to do exactly this */\n    \
                 unsupported({line}, {text});\n"
            )
        }
    }
}

/// Everything before `main`. `@SOURCE@`, `@NPROCS@` and `@NOPS@` are
/// substituted.
const PRELUDE: &str = r#"/*
 * Reproducer generated by `rmaplab export-c` from @SOURCE@ (@NOPS@ ops).
 *
 * Replays an op stream of rmaplab (docs/op-language.md) with real
 * syscalls on Linux. Every process pN of the stream is a real process: the
 * controller (main) forks p0, and `fork pN` is a real fork() in pN. Each
 * process does its own syscalls and memory accesses when the controller
 * sends it an op over a pipe, so ops happen in stream order. Everything
 * runs on one CPU (COW reuse of a page depends on per-CPU LRU batches) with
 * THP disabled. Addresses are pages of a 256-page window at 0x100000000000.
 *
 * Build and run (no root needed):  cc -O0 -Wall -o repro repro.c && ./repro
 * Output: one line per op, `line N: OP => OUTCOME`; at each dump (and at
 * the end), for every live process, its /proc/PID/maps lines in the window
 * and its present pages (PFN and map count when run as root).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_MAYMOVE
#define MREMAP_MAYMOVE 1
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#endif
#ifndef MADV_KEEPONFORK
#define MADV_KEEPONFORK 19
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef PR_SET_THP_DISABLE
#define PR_SET_THP_DISABLE 41
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define WINDOW 0x100000000000ULL
#define PAGE 4096ULL
#define WINDOW_PAGES 256
#define NR_FILES 4
#define FILE_PAGES 64
#define NPROCS @NPROCS@ /* p0 and one per fork op */
#define REPLY_TIMEOUT_MS 10000

enum { C_MMAP = 1, C_MUNMAP, C_MPROTECT, C_MREMAP, C_MADVISE, C_READ, C_WRITE,
       C_FORK, C_EXIT, C_DUMP };
enum { REPLY_OK, REPLY_ERRNO, REPLY_SIGNAL };

struct cmd {
    int code;
    int arg; /* C_FORK: the child's process number */
    uint64_t a[6];
};

struct reply {
    int kind;      /* REPLY_OK, REPLY_ERRNO (err = errno), REPLY_SIGNAL (err = signal) */
    int err;
    uint64_t value; /* read: the value; fork: the child's pid */
};

static int file_fd[NR_FILES];
static int cmd_pipe[NPROCS][2], reply_pipe[NPROCS][2];
static pid_t pids[NPROCS];
static int pidfds[NPROCS];
static int alive[NPROCS];
static int next_proc = 1;
static char outbuf[1 << 16];

static void die(const char *what)
{
    fprintf(stderr, "repro: %s: %s\n", what, strerror(errno));
    exit(100);
}

static void write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(101);
        p += n;
        len -= (size_t)n;
    }
}

/* 0 when `len` bytes were read, -1 at end of file or error. */
static int read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- the process side ---------------------------------------------- */

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_armed;

static void on_fault(int sig)
{
    if (!fault_armed) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    fault_armed = 0;
    siglongjmp(fault_jmp, sig);
}

/* An 8-byte load or store at `addr`; a SIGSEGV or SIGBUS is the outcome. */
static struct reply access_page(uint64_t addr, int is_write, uint64_t value)
{
    struct reply r = { REPLY_OK, 0, 0 };
    volatile uint64_t loaded = 0;
    int sig = sigsetjmp(fault_jmp, 1);
    if (sig == 0) {
        fault_armed = 1;
        if (is_write)
            *(volatile uint64_t *)(uintptr_t)addr = value;
        else
            loaded = *(volatile uint64_t *)(uintptr_t)addr;
        fault_armed = 0;
        r.value = loaded;
    } else {
        r.kind = REPLY_SIGNAL;
        r.err = sig;
    }
    return r;
}

static void syscall_result(struct reply *r, long ret)
{
    if (ret == -1) {
        r->kind = REPLY_ERRNO;
        r->err = errno;
    }
}

/* Prints this process's /proc/self/maps lines inside the window. */
static void print_maps(int me)
{
    static char buf[1 << 16];
    size_t len = 0;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("open /proc/self/maps");
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    printf("  p%d maps:\n", me);
    for (char *line = buf; *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        unsigned long long start = strtoull(line, NULL, 16);
        if (start >= WINDOW && start < WINDOW + WINDOW_PAGES * PAGE)
            printf("  p%d %s\n", me, line);
        if (!end)
            break;
        line = end + 1;
    }
    fflush(stdout);
}

/* Prints this process's present pages in the window: `PAGE:pfn=0x../N`
   (N: the map count from /proc/kpagecount), `PAGE:zero` for the zero page,
   or without root (PFNs hidden) `PAGE:excl` / `PAGE:shared` from pagemap's
   exclusively-mapped bit. */
static void print_pages(int me)
{
    static uint64_t entries[WINDOW_PAGES];
    static char line[WINDOW_PAGES * 40 + 64];
    size_t len = 0;
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pm < 0)
        die("open /proc/self/pagemap");
    if (pread(pm, entries, sizeof entries, (off_t)(WINDOW / PAGE * 8)) != (ssize_t)sizeof entries)
        die("read /proc/self/pagemap");
    close(pm);
    int counts = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
    int flags = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
    len += (size_t)snprintf(line + len, sizeof line - len, "  p%d pages", me);
    for (int pg = 0; pg < WINDOW_PAGES; pg++) {
        uint64_t e = entries[pg];
        if (!(e >> 63 & 1))
            continue;
        uint64_t pfn = e & ((1ULL << 55) - 1);
        uint64_t count = 0, kflags = 0;
        if (pfn == 0 || counts < 0 || flags < 0 ||
            pread(counts, &count, 8, (off_t)(pfn * 8)) != 8 ||
            pread(flags, &kflags, 8, (off_t)(pfn * 8)) != 8)
            len += (size_t)snprintf(line + len, sizeof line - len, " %d:%s", pg,
                                    e >> 56 & 1 ? "excl" : "shared");
        else if (kflags >> 24 & 1) /* KPF_ZERO_PAGE */
            len += (size_t)snprintf(line + len, sizeof line - len, " %d:zero", pg);
        else
            len += (size_t)snprintf(line + len, sizeof line - len, " %d:pfn=0x%llx/%llu", pg,
                                    (unsigned long long)pfn, (unsigned long long)count);
    }
    if (counts >= 0)
        close(counts);
    if (flags >= 0)
        close(flags);
    printf("%s\n", line);
    fflush(stdout);
}

/* Process `me` does what it is sent until it exits. */
static void serve(int me)
{
    for (;;) {
        struct cmd c;
        struct reply r = { REPLY_OK, 0, 0 };
        if (read_full(cmd_pipe[me][0], &c, sizeof c) != 0)
            _exit(0); /* the controller is gone */
        switch (c.code) {
        case C_MMAP: {
            void *want = (void *)(uintptr_t)c.a[0];
            void *p = mmap(want, c.a[1], (int)c.a[2], (int)c.a[3], (int)(int64_t)c.a[4],
                           (off_t)c.a[5]);
            if (p == MAP_FAILED) {
                r.kind = REPLY_ERRNO;
                r.err = errno;
            } else if (p != want) {
                /* A kernel before 4.17 ignores MAP_FIXED_NOREPLACE and
                   treats the address as a hint: it was taken. */
                munmap(p, c.a[1]);
                r.kind = REPLY_ERRNO;
                r.err = EEXIST;
            }
            break;
        }
        case C_MUNMAP:
            syscall_result(&r, munmap((void *)(uintptr_t)c.a[0], c.a[1]));
            break;
        case C_MPROTECT:
            syscall_result(&r, mprotect((void *)(uintptr_t)c.a[0], c.a[1], (int)c.a[2]));
            break;
        case C_MREMAP:
            syscall_result(&r, syscall(SYS_mremap, c.a[0], c.a[1], c.a[2], c.a[3], c.a[4]));
            break;
        case C_MADVISE:
            syscall_result(&r, madvise((void *)(uintptr_t)c.a[0], c.a[1], (int)c.a[2]));
            break;
        case C_READ:
            r = access_page(c.a[0], 0, 0);
            break;
        case C_WRITE:
            r = access_page(c.a[0], 1, c.a[1]);
            break;
        case C_FORK: {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                me = c.arg; /* the child serves as the new process */
                continue;
            }
            if (pid < 0) {
                r.kind = REPLY_ERRNO;
                r.err = errno;
            } else {
                r.value = (uint64_t)pid;
            }
            break;
        }
        case C_EXIT:
            _exit(0);
        case C_DUMP:
            print_maps(me);
            print_pages(me);
            break;
        }
        write_full(reply_pipe[me][1], &r, sizeof r);
    }
}

/* ---- the controller side ------------------------------------------- */

/* (`static inline`: a stream need not use every helper.) */

static void print_outcome(int line, const char *text, const char *outcome)
{
    printf("line %d: %s => %s\n", line, text, outcome);
    fflush(stdout);
}

static inline void print_reply(int line, const char *text, const struct reply *r, int is_read)
{
    char out[64];
    switch (r->kind) {
    case REPLY_OK:
        if (is_read)
            snprintf(out, sizeof out, "ok 0x%llx", (unsigned long long)r->value);
        else
            snprintf(out, sizeof out, "ok");
        break;
    case REPLY_SIGNAL:
        snprintf(out, sizeof out, "%s", r->err == SIGBUS ? "sigbus" : "segv");
        break;
    default:
        switch (r->err) {
        case EINVAL:
        case EBADF:     /* the op language cannot name it; the backend says EINVAL */
        case EOVERFLOW: /* likewise */
            snprintf(out, sizeof out, "err EINVAL");
            break;
        case ENOMEM:
            snprintf(out, sizeof out, "err ENOMEM");
            break;
        case EEXIST:
            snprintf(out, sizeof out, "err EEXIST");
            break;
        case EFAULT:
            snprintf(out, sizeof out, "err EFAULT");
            break;
        case ESRCH:
            snprintf(out, sizeof out, "err ESRCH");
            break;
        default:
            snprintf(out, sizeof out, "err errno=%d (%s)", r->err, strerror(r->err));
        }
    }
    print_outcome(line, text, out);
}

/* Waits until process `p` is gone (its mm torn down). */
static void wait_gone(int p)
{
    if (pidfds[p] >= 0) {
        struct pollfd pfd = { pidfds[p], POLLIN, 0 };
        while (poll(&pfd, 1, REPLY_TIMEOUT_MS) < 0)
            if (errno != EINTR)
                die("poll(pidfd)");
        close(pidfds[p]);
        pidfds[p] = -1;
    } else if (p != 0) {
        /* No pidfds (Linux < 5.3): the parent reaps it automatically. */
        while (kill(pids[p], 0) == 0)
            usleep(100);
    }
    if (p == 0) /* the controller's own child */
        while (waitpid(pids[0], NULL, 0) < 0 && errno == EINTR)
            ;
    alive[p] = 0;
}

static void send_cmd(int p, const struct cmd *c)
{
    write_full(cmd_pipe[p][1], c, sizeof *c);
}

static struct reply recv_reply(int p)
{
    struct reply r;
    struct pollfd pfd = { reply_pipe[p][0], POLLIN, 0 };
    int n;
    while ((n = poll(&pfd, 1, REPLY_TIMEOUT_MS)) < 0 && errno == EINTR)
        ;
    if (n == 0) {
        fprintf(stderr, "repro: p%d did not answer within %d ms\n", p, REPLY_TIMEOUT_MS);
        exit(102);
    }
    if (read_full(reply_pipe[p][0], &r, sizeof r) != 0)
        die("reading a reply");
    return r;
}

static inline int live(int line, const char *text, int p)
{
    if (p < 0 || p >= NPROCS || !alive[p]) {
        print_outcome(line, text, "err ESRCH");
        return 0;
    }
    return 1;
}

/* One op of process p. */
static inline void do_op(int line, const char *text, int p, struct cmd c)
{
    if (!live(line, text, p))
        return;
    send_cmd(p, &c);
    struct reply r = recv_reply(p);
    print_reply(line, text, &r, c.code == C_READ);
}

static inline void do_fork(int line, const char *text, int p)
{
    if (!live(line, text, p))
        return;
    int child = next_proc;
    struct cmd c = { C_FORK, child, { 0 } };
    send_cmd(p, &c);
    struct reply r = recv_reply(p);
    if (r.kind == REPLY_OK) {
        next_proc++;
        pids[child] = (pid_t)r.value;
        pidfds[child] = (int)syscall(SYS_pidfd_open, pids[child], 0);
        alive[child] = 1;
    }
    print_reply(line, text, &r, 0);
}

static inline void do_exit(int line, const char *text, int p)
{
    if (!live(line, text, p))
        return;
    struct cmd c = { C_EXIT, 0, { 0 } };
    send_cmd(p, &c);
    wait_gone(p);
    print_outcome(line, text, "ok");
}

static inline void dump_all(void)
{
    int any = 0;
    for (int p = 0; p < NPROCS; p++) {
        if (!alive[p])
            continue;
        struct cmd c = { C_DUMP, 0, { 0 } };
        send_cmd(p, &c);
        recv_reply(p);
        any = 1;
    }
    if (!any)
        printf("  (no live process)\n");
    fflush(stdout);
}

static inline void do_dump(int line, const char *text)
{
    print_outcome(line, text, "ok");
    dump_all();
}

static inline void final_state(void)
{
    printf("final state:\n");
    dump_all();
}

/* An op the generator found invalid (window, file number, offset). */
static inline void einval(int line, const char *text, int p)
{
    if (live(line, text, p))
        print_outcome(line, text, "err EINVAL");
}

static inline void unsupported(int line, const char *text)
{
    print_outcome(line, text, "unsupported");
}

static inline struct cmd mmap_cmd(uint64_t page, uint64_t pages, int prot, int flags,
                                  int fd, uint64_t off)
{
    struct cmd c = { C_MMAP, 0, { WINDOW + page * PAGE, pages * PAGE, (uint64_t)prot,
                                  (uint64_t)flags, (uint64_t)(int64_t)fd, off } };
    return c;
}

static inline struct cmd munmap_cmd(uint64_t page, uint64_t pages)
{
    struct cmd c = { C_MUNMAP, 0, { WINDOW + page * PAGE, pages * PAGE } };
    return c;
}

static inline struct cmd mprotect_cmd(uint64_t page, uint64_t pages, int prot)
{
    struct cmd c = { C_MPROTECT, 0, { WINDOW + page * PAGE, pages * PAGE, (uint64_t)prot } };
    return c;
}

static inline struct cmd madvise_cmd(uint64_t page, uint64_t pages, int advice)
{
    struct cmd c = { C_MADVISE, 0, { WINDOW + page * PAGE, pages * PAGE, (uint64_t)advice } };
    return c;
}

static inline struct cmd mremap_cmd(uint64_t old, uint64_t old_pages, uint64_t new_pages,
                                    int flags, uint64_t new_page)
{
    struct cmd c = { C_MREMAP, 0, { WINDOW + old * PAGE, old_pages * PAGE, new_pages * PAGE,
                                    (uint64_t)flags, flags ? WINDOW + new_page * PAGE : 0 } };
    return c;
}

static inline struct cmd read_cmd(uint64_t page)
{
    struct cmd c = { C_READ, 0, { WINDOW + page * PAGE } };
    return c;
}

static inline struct cmd write_cmd(uint64_t page, uint64_t value)
{
    struct cmd c = { C_WRITE, 0, { WINDOW + page * PAGE, value } };
    return c;
}

/* memfd `rmaplab-fF`, 64 pages, page O starting with F << 32 | O. */
static int create_file(int f)
{
    static char image[FILE_PAGES * PAGE];
    char name[32];
    snprintf(name, sizeof name, "rmaplab-f%d", f);
    /* MFD_EXEC keeps PROT_EXEC mappings allowed whatever vm.memfd_noexec
       says; kernels before 6.3 reject it. */
    int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_EXEC);
    if (fd < 0 && errno == EINVAL)
        fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC);
    if (fd < 0)
        die("memfd_create");
    memset(image, 0, sizeof image);
    for (uint64_t o = 0; o < FILE_PAGES; o++) {
        uint64_t tag = (uint64_t)f << 32 | o;
        memcpy(image + o * PAGE, &tag, sizeof tag);
    }
    for (size_t done = 0; done < sizeof image;) {
        ssize_t n = pwrite(fd, image + done, sizeof image - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("writing a file");
        done += (size_t)n;
    }
    return fd;
}

static void setup(void)
{
    setvbuf(stdout, outbuf, _IOLBF, sizeof outbuf);
    /* Everything on one CPU: CPU 0, or the first one allowed. */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        die("sched_getaffinity");
    int cpu = 0;
    while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &set))
        cpu++;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        die("sched_setaffinity");
    if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0)
        die("prctl(PR_SET_THP_DISABLE)");
    for (int f = 0; f < NR_FILES; f++)
        file_fd[f] = create_file(f);
    for (int p = 0; p < NPROCS; p++) {
        if (pipe2(cmd_pipe[p], O_CLOEXEC) != 0 || pipe2(reply_pipe[p], O_CLOEXEC) != 0)
            die("pipe2");
        pidfds[p] = -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        /* p0: children of stream processes are reaped by the kernel. Only
           the controller keeps the command pipes' write ends (and the reply
           pipes' read ends), so that if it dies every stream process reads
           end-of-file and exits instead of waiting forever. */
        signal(SIGCHLD, SIG_IGN);
        for (int p = 0; p < NPROCS; p++) {
            close(cmd_pipe[p][1]);
            close(reply_pipe[p][0]);
        }
        serve(0);
    }
    pids[0] = pid;
    pidfds[0] = (int)syscall(SYS_pidfd_open, pid, 0);
    alive[0] = 1;
}

static void teardown(void)
{
    for (int p = 0; p < NPROCS; p++) {
        if (!alive[p])
            continue;
        struct cmd c = { C_EXIT, 0, { 0 } };
        send_cmd(p, &c);
        wait_gone(p);
    }
}

"#;

#[cfg(test)]
mod tests {
    use super::*;
    use rmaplab_ops::parse::parse;

    #[test]
    fn one_statement_per_op_with_its_text() {
        let s = parse(
            "mmap p0 0 4 rw anon\nwrite p0 1 0x10000\nfork p0\nswapout p1 1\nread p0 300\n\
             mmap p0 8 2 r file:2:3 replace\nmremap p0 0 4 4 to 16 dontunmap\ndump\n",
        )
        .unwrap();
        let c = export_c(&s, "x.ops");
        assert!(c.contains("#define NPROCS 2 "));
        assert!(c.contains(
            "do_op(1, \"mmap p0 0 4 rw anon\", 0, mmap_cmd(0, 4, PROT_READ | PROT_WRITE, \
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0x0ULL));"
        ));
        assert!(c.contains("do_op(2, \"write p0 1 0x10000\", 0, write_cmd(1, 0x10000ULL));"));
        assert!(c.contains("do_fork(3, \"fork p0\", 0);"));
        assert!(c.contains("unsupported(4, \"swapout p1 1\");"));
        assert!(c.contains("einval(5, \"read p0 300\", 0);"));
        assert!(c.contains("MAP_PRIVATE | MAP_FIXED, file_fd[2], 0x3000ULL"));
        assert!(c.contains("MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, 16));"));
        assert!(c.contains("do_dump(8, \"dump\");"));
        assert!(!c.contains("final_state();\n\n"));
        let s = parse("mmap p0 0 1 rw anon\n").unwrap();
        assert!(export_c(&s, "y").contains("    final_state();\n"));
    }

    #[test]
    fn ops_comments_become_c_comments() {
        let text = "# case: X */ y\nmmap p0 0 1 rw anon\n# then write\n#\nwrite p0 0 1\n# end\n";
        let s = parse(text).unwrap();
        let c = export_c_annotated(&s, "x.ops", Some(text));
        let main = &c[c.find("int main(void)").unwrap()..];
        let a = main.find("/* case: X * / y */").unwrap();
        let b = main.find("do_op(2,").unwrap();
        let d = main.find("/* then write */").unwrap();
        let e = main.find("do_op(5,").unwrap();
        let f = main.find("/* end */").unwrap();
        assert!(a < b && b < d && d < e && e < f, "{main}");
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(c_string("a \"b\" \\"), "\"a \\\"b\\\" \\\\\"");
        assert_eq!(comment_safe("a*/b"), "a* /b");
    }
}
