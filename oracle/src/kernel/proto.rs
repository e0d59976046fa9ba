//! The wire protocol between the live-kernel controller (`linux.rs`) and
//! the `rmaplab-puppet` binary. Shared verbatim by both (the puppet includes
//! this file with `#[path]`), so it holds only constants and plain arrays.
//!
//! Every message is one `SOCK_SEQPACKET` datagram of native-endian `u64`s:
//! a command is [`CMD_WORDS`] words (`[code, a0, a1, a2, a3, a4, a5, 0]`), a
//! reply [`REPLY_WORDS`] words (`[kind, value, aux]`). A `CMD_FORK` reply
//! carries the parent's end of the child's socket as `SCM_RIGHTS`.

#![allow(dead_code)]

/// Start of the op language's address window: page `N` is at
/// `WINDOW_BASE + N * PAGE_SIZE`, far from the puppet's own mappings
/// (`docs/linux-6.18.md` §12.2).
pub const WINDOW_BASE: u64 = 0x1000_0000_0000;
pub const PAGE_SIZE: u64 = 4096;

/// The puppet's control socket.
pub const CONTROL_FD: i32 = 3;
/// Files `0..NR_FILES` are the fds `FIRST_FILE_FD + F` in every puppet.
pub const FIRST_FILE_FD: i32 = 4;

pub const CMD_WORDS: usize = 8;
pub const REPLY_WORDS: usize = 3;

/// `[]` → `[REPLY_OK, 0, 0]`.
pub const CMD_PING: u64 = 1;
/// `[addr, len, prot, flags, fd (as i64), offset]`, bytes → raw `mmap`.
pub const CMD_MMAP: u64 = 2;
/// `[addr, len]`.
pub const CMD_MUNMAP: u64 = 3;
/// `[addr, len, prot]`.
pub const CMD_MPROTECT: u64 = 4;
/// `[old, old_len, new_len, flags, new]`.
pub const CMD_MREMAP: u64 = 5;
/// `[addr, len, advice]`.
pub const CMD_MADVISE: u64 = 6;
/// `[addr]`: 8-byte load → `[REPLY_OK, value, 0]` or `[REPLY_SIGNAL, signo, 0]`.
pub const CMD_READ: u64 = 7;
/// `[addr, value]`: 8-byte store.
pub const CMD_WRITE: u64 = 8;
/// `[]` → `[REPLY_OK, child pid, 0]` with the child's socket attached.
pub const CMD_FORK: u64 = 9;
/// `[]`: `_exit(0)` without a reply.
pub const CMD_EXIT: u64 = 10;

pub const REPLY_OK: u64 = 0;
/// `value` is the errno.
pub const REPLY_ERRNO: u64 = 1;
/// `value` is the signal (`SIGSEGV` or `SIGBUS`) the access raised.
pub const REPLY_SIGNAL: u64 = 2;
/// The puppet did not understand the command (`value`: the code).
pub const REPLY_BAD_COMMAND: u64 = 3;
