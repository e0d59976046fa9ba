//! The one decoder from raw fuzz bytes to an always-valid op stream, used by
//! every fuzzing engine, and its inverse [`encode`] (to seed fuzzers from
//! `.ops` corpus files).
//!
//! [`decode`] is total: every byte string gives a stream in which every op
//! names a process that is live at that point, there are at most
//! `max_ops` ops, only kinds enabled in the config occur, and (outside wide
//! mode, below) every address is in the sub-window
//! `[window_start, window_start + window_len)` and every length in
//! `1..=max_len`. Running out of bytes ends the stream; a partly read op is
//! dropped.
//!
//! # Byte format
//!
//! ```text
//! input  = ["rmW1"] swarm op*
//! swarm  = k0 k1 m            3 bytes
//! op     = kind-byte args     args depend on the kind
//! ```
//!
//! - **Wide mode.** An input starting with the magic `rmW1` is in wide mode:
//!   in it, a value field (below) whose first byte is `0xFF` is followed by
//!   an unsigned LEB128 varint (at most 10 bytes) that gives the raw value,
//!   unreduced: addresses, lengths, values, file offsets and `fail-alloc`
//!   counts outside the sub-window can be expressed. [`encode`] uses wide
//!   mode only when a stream needs it.
//! - **Swarm.** `k0 | k1 << 8` switches op kinds on (bit `i` is kind `i` in
//!   the order mmap, munmap, mprotect, mremap, madvise, fork, exit, read,
//!   write, swapout, reclaim, migrate, fail-alloc, dump), and bits 14 and
//!   15 switch mmap and fork on as well (so that these two, without which
//!   little happens, are on in 3/4 of the inputs); the low 4 bits of `m`
//!   switch map kinds (anon, shared, file, sfile) on. Each mask is
//!   intersected with the config's; an empty intersection means the
//!   config's set. Other bits are ignored. Fewer than 3 bytes: empty stream.
//! - **Kind byte.** The kinds allowed for this op are the enabled ones,
//!   minus `fork` when `max_procs` processes are live, minus `exit` when
//!   only one process is, minus every kind that names a process when none
//!   is. The byte modulo the sum of their weights picks one by weight
//!   (mmap 6, munmap 3, mprotect 3, mremap 4, madvise 3, fork 4, exit 2,
//!   read 3, write 4, swapout 3, reclaim 1, migrate 2, fail-alloc 1,
//!   dump 1). Exception: when exactly one process is live and `exit` is
//!   enabled, the byte `0xFF` is `exit` of that process (no `P` byte
//!   follows), so that the last process exits rarely and an input is not
//!   spent on ops that cannot name a process. No allowed kind: the stream
//!   ends.
//! - **Arguments**, in the order of the text form:
//!   - `P` (one byte `s`): `s >= 0xC0` picks the newest live process,
//!     otherwise `live[s % live_count]` in creation order. A fork's child
//!     is the next unused number.
//!   - value field `range(n)`: one byte `b`, `b % n`, when `n <= 256`;
//!     otherwise two bytes, `u16::from_le_bytes([b0, b1]) % n`. Then
//!     ADDR/OLD/NEW = `window_start + range(window_len)`,
//!     LEN/OLDLEN/NEWLEN = `1 + range(max_len)`, OFF = `range(72)`
//!     (file pages 64, plus some past the end), fail-alloc N = `1 + range(8)`.
//!   - VALUE (one byte `b`): `b < 0x80` gives `b`; `0x80..=0xBF` gives the
//!     initial contents of a file page, `((b >> 4) & 3) << 32 | (b & 0xF)`;
//!     `0xC0..=0xFE` gives `0xC0DE_0000_0000_0000 | b`; `0xFF` gives
//!     `u64::MAX`.
//!   - mmap: `P ADDR LEN pr kd [OFF]`: PROT = `pr % 5` (none, r, rw, rx,
//!     rwx), `replace` when `(pr / 5) % 4 == 3`; KIND by weight (anon 4,
//!     shared 1, file 2, sfile 1) from `(kd & 0x3F) % total` over the
//!     enabled map kinds, file number `kd >> 6`; OFF only for file kinds.
//!   - mremap: `P sh OLD OLDLEN [NEWLEN] [NEW]` with `sh % 8`: 0..=2 in
//!     place (NEWLEN read); 3 and 7 `to NEW` with NEWLEN = OLDLEN; 4 the
//!     same with `dontunmap`; 5 `to NEW` (NEWLEN read); 6 the same with
//!     `dontunmap`.
//!   - mprotect `P ADDR LEN pr` (PROT `pr % 5`); madvise `P ADDR LEN ad`
//!     (ADVICE `ad % 5`: dontneed, dontfork, dofork, wipeonfork,
//!     keeponfork); munmap `P ADDR LEN`; fork, exit `P`; read, swapout,
//!     migrate `P ADDR`; write `P ADDR VALUE`; fail-alloc `N`; reclaim and
//!     dump take nothing.

use std::fmt;
use std::ops::{BitAnd, BitOr, Sub};

use super::print::print_op;
use super::{Advice, FILE_PAGES, Kind, MremapTo, NR_FILES, Op, Pid, Prot, Stream};

/// Op keywords in bit order of [`OpKinds`].
const OP_KEYWORDS: [&str; 14] = [
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "fork",
    "exit",
    "read",
    "write",
    "swapout",
    "reclaim",
    "migrate",
    "fail-alloc",
    "dump",
];

/// Relative frequency of each op kind, in bit order.
const OP_WEIGHTS: [u8; 14] = [6, 3, 3, 4, 3, 4, 2, 3, 4, 3, 1, 2, 1, 1];

/// Relative frequency of each map kind: anon, shared, file, sfile.
const MAP_WEIGHTS: [u8; 4] = [4, 1, 2, 1];

/// Prefix that switches escapes to raw varints on.
const WIDE_MAGIC: [u8; 4] = *b"rmW1";
/// In wide mode, a value field starting with this byte is a raw varint.
const ESCAPE: u8 = 0xFF;
/// With one process live, this kind byte is its `exit`.
const LAST_EXIT: u8 = 0xFF;
/// Process selector bytes from this one on pick the newest live process.
const PICK_NEWEST: u8 = 0xC0;
/// File offsets are drawn from `0..FILE_OFF_RANGE`.
const FILE_OFF_RANGE: u64 = FILE_PAGES + 8;
/// `fail-alloc N` takes `N` in `1..=FAIL_ALLOC_MAX`.
const FAIL_ALLOC_MAX: u64 = 8;
/// Upper bound on `max_procs` (the live set lives on the stack).
pub const MAX_PROCS_LIMIT: usize = 64;
/// Base of the distinctive write values.
const VALUE_TAG: u64 = 0xC0DE_0000_0000_0000;
/// The `replace` group of the mmap protection byte.
const REPLACE_GROUP: u8 = 3;

/// A set of op kinds (bit `i` is the `i`-th keyword of the op language).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpKinds(u16);

impl OpKinds {
    pub const MMAP: OpKinds = OpKinds(1 << 0);
    pub const MUNMAP: OpKinds = OpKinds(1 << 1);
    pub const MPROTECT: OpKinds = OpKinds(1 << 2);
    pub const MREMAP: OpKinds = OpKinds(1 << 3);
    pub const MADVISE: OpKinds = OpKinds(1 << 4);
    pub const FORK: OpKinds = OpKinds(1 << 5);
    pub const EXIT: OpKinds = OpKinds(1 << 6);
    pub const READ: OpKinds = OpKinds(1 << 7);
    pub const WRITE: OpKinds = OpKinds(1 << 8);
    pub const SWAPOUT: OpKinds = OpKinds(1 << 9);
    pub const RECLAIM: OpKinds = OpKinds(1 << 10);
    pub const MIGRATE: OpKinds = OpKinds(1 << 11);
    pub const FAIL_ALLOC: OpKinds = OpKinds(1 << 12);
    pub const DUMP: OpKinds = OpKinds(1 << 13);
    pub const NONE: OpKinds = OpKinds(0);
    pub const ALL: OpKinds = OpKinds((1 << 14) - 1);
    /// The kinds only the emulator can perform.
    pub const EMULATOR_ONLY: OpKinds =
        OpKinds(Self::SWAPOUT.0 | Self::RECLAIM.0 | Self::MIGRATE.0 | Self::FAIL_ALLOC.0);
    /// The kinds that name no process.
    pub const PIDLESS: OpKinds = OpKinds(Self::RECLAIM.0 | Self::FAIL_ALLOC.0 | Self::DUMP.0);

    /// The set with these bits (bits beyond the 14 kinds are dropped).
    pub const fn from_bits_truncate(bits: u16) -> OpKinds {
        OpKinds(bits & Self::ALL.0)
    }
    pub const fn bits(self) -> u16 {
        self.0
    }
    pub const fn contains(self, other: OpKinds) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The kind of one op.
    pub fn of(op: &Op) -> OpKinds {
        OpKinds(1 << op_index(op))
    }
    /// The kind with this keyword (`mmap`, ..., `fail-alloc`, `dump`).
    pub fn from_keyword(keyword: &str) -> Option<OpKinds> {
        let i = OP_KEYWORDS.iter().position(|&k| k == keyword)?;
        Some(OpKinds(1 << i))
    }
    /// The keywords of the kinds in the set, in bit order.
    pub fn keywords(self) -> impl Iterator<Item = &'static str> {
        OP_KEYWORDS
            .into_iter()
            .enumerate()
            .filter(move |&(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, k)| k)
    }
}

impl BitOr for OpKinds {
    type Output = OpKinds;
    fn bitor(self, rhs: OpKinds) -> OpKinds {
        OpKinds(self.0 | rhs.0)
    }
}

impl BitAnd for OpKinds {
    type Output = OpKinds;
    fn bitand(self, rhs: OpKinds) -> OpKinds {
        OpKinds(self.0 & rhs.0)
    }
}

impl Sub for OpKinds {
    type Output = OpKinds;
    fn sub(self, rhs: OpKinds) -> OpKinds {
        OpKinds(self.0 & !rhs.0)
    }
}

/// A set of mapping kinds: anon, shared, file, sfile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapKinds(u8);

impl MapKinds {
    pub const ANON: MapKinds = MapKinds(1 << 0);
    pub const SHARED: MapKinds = MapKinds(1 << 1);
    pub const FILE: MapKinds = MapKinds(1 << 2);
    pub const SFILE: MapKinds = MapKinds(1 << 3);
    pub const NONE: MapKinds = MapKinds(0);
    pub const ALL: MapKinds = MapKinds(0xF);

    /// The set with these bits (bits beyond the 4 kinds are dropped).
    pub const fn from_bits_truncate(bits: u8) -> MapKinds {
        MapKinds(bits & Self::ALL.0)
    }
    pub const fn bits(self) -> u8 {
        self.0
    }
    pub const fn contains(self, other: MapKinds) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The map kind of a `KIND`.
    pub fn of(kind: &Kind) -> MapKinds {
        MapKinds(1 << map_index(kind))
    }
}

impl BitOr for MapKinds {
    type Output = MapKinds;
    fn bitor(self, rhs: MapKinds) -> MapKinds {
        MapKinds(self.0 | rhs.0)
    }
}

impl BitAnd for MapKinds {
    type Output = MapKinds;
    fn bitand(self, rhs: MapKinds) -> MapKinds {
        MapKinds(self.0 & rhs.0)
    }
}

impl Sub for MapKinds {
    type Output = MapKinds;
    fn sub(self, rhs: MapKinds) -> MapKinds {
        MapKinds(self.0 & !rhs.0)
    }
}

/// What the decoder may generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DecodeConfig {
    /// First page of the sub-window addresses are drawn from.
    pub window_start: u64,
    /// Pages in the sub-window (0 counts as 1).
    pub window_len: u64,
    /// Most ops in a stream.
    pub max_ops: usize,
    /// Longest length, in pages (0 counts as 1).
    pub max_len: u64,
    /// Op kinds that may occur.
    pub kinds: OpKinds,
    /// Map kinds `mmap` may use (empty means all).
    pub map_kinds: MapKinds,
    /// Most processes live at once (clamped to `1..=MAX_PROCS_LIMIT`).
    pub max_procs: usize,
}

impl Default for DecodeConfig {
    /// A small window so that ops collide; every op kind (`dump` rarely).
    fn default() -> Self {
        DecodeConfig {
            window_start: 0,
            window_len: 24,
            max_ops: 64,
            max_len: 8,
            kinds: OpKinds::ALL,
            map_kinds: MapKinds::ALL,
            max_procs: 8,
        }
    }
}

impl DecodeConfig {
    /// The default without the ops a live kernel cannot perform.
    pub fn live_kernel() -> Self {
        DecodeConfig {
            kinds: OpKinds::ALL - OpKinds::EMULATOR_ONLY,
            ..DecodeConfig::default()
        }
    }
}

/// Why a stream has no encoding under a config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The stream has more ops than `max_ops`.
    TooManyOps { ops: usize, max_ops: usize },
    /// Op `index` is of a kind the config does not enable.
    KindDisabled { index: usize, op: Op },
    /// Op `index` maps a kind the config does not enable.
    MapKindDisabled { index: usize, op: Op },
    /// Op `index` names a process that is not live at that point.
    NotLive { index: usize, op: Op },
    /// Op `index` forks while `max_procs` processes are live (or no process
    /// number is left).
    TooManyProcesses {
        index: usize,
        op: Op,
        max_procs: usize,
    },
    /// Op `index` maps a file number past the last file.
    BadFile { index: usize, op: Op },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (index, op, why) = match self {
            EncodeError::TooManyOps { ops, max_ops } => {
                return write!(f, "the stream has {ops} ops, more than max_ops {max_ops}");
            }
            EncodeError::KindDisabled { index, op } => {
                (index, op, "its kind is not enabled".to_string())
            }
            EncodeError::MapKindDisabled { index, op } => {
                (index, op, "its map kind is not enabled".to_string())
            }
            EncodeError::NotLive { index, op } => {
                (index, op, "its process is not live".to_string())
            }
            EncodeError::TooManyProcesses {
                index,
                op,
                max_procs,
            } => (index, op, format!("{max_procs} processes are live already")),
            EncodeError::BadFile { index, op } => {
                (index, op, format!("files are 0..={}", NR_FILES - 1))
            }
        };
        write!(
            f,
            "op {index} (`{}`) cannot be encoded: {why}",
            print_op(op)
        )
    }
}

impl std::error::Error for EncodeError {}

/// The config with its degenerate values normalised.
#[derive(Clone, Copy)]
struct Params {
    window_start: u64,
    window_len: u64,
    max_len: u64,
    max_ops: usize,
    max_procs: usize,
    kinds: OpKinds,
    map_kinds: MapKinds,
}

impl Params {
    fn new(cfg: &DecodeConfig) -> Params {
        Params {
            window_start: cfg.window_start,
            // The window must not wrap around the address space.
            window_len: cfg.window_len.min(u64::MAX - cfg.window_start).max(1),
            max_len: cfg.max_len.max(1),
            max_ops: cfg.max_ops,
            max_procs: cfg.max_procs.clamp(1, MAX_PROCS_LIMIT),
            kinds: cfg.kinds & OpKinds::ALL,
            map_kinds: if cfg.map_kinds.is_empty() {
                MapKinds::ALL
            } else {
                cfg.map_kinds & MapKinds::ALL
            },
        }
    }

    /// The kinds and map kinds an input's swarm header enables.
    fn swarm(&self, k0: u8, k1: u8, m: u8) -> (OpKinds, MapKinds) {
        let bits = u16::from_le_bytes([k0, k1]);
        let mut on = OpKinds::from_bits_truncate(bits);
        if bits & (1 << 14) != 0 {
            on = on | OpKinds::MMAP;
        }
        if bits & (1 << 15) != 0 {
            on = on | OpKinds::FORK;
        }
        let kinds = self.kinds & on;
        let maps = self.map_kinds & MapKinds::from_bits_truncate(m);
        (
            if kinds.is_empty() { self.kinds } else { kinds },
            if maps.is_empty() {
                self.map_kinds
            } else {
                maps
            },
        )
    }
}

/// The processes live at a point of the stream, in creation order.
struct Live {
    pids: [u32; MAX_PROCS_LIMIT],
    len: usize,
    next: u32,
}

impl Live {
    fn new() -> Live {
        Live {
            pids: [0; MAX_PROCS_LIMIT],
            len: 1,
            next: 1,
        }
    }

    fn as_slice(&self) -> &[u32] {
        &self.pids[..self.len]
    }

    fn can_fork(&self, max_procs: usize) -> bool {
        self.len < max_procs && self.next < u32::MAX
    }

    /// The kinds allowed for the next op.
    fn allowed(&self, enabled: OpKinds, max_procs: usize) -> OpKinds {
        let mut allowed = enabled;
        if !self.can_fork(max_procs) {
            allowed = allowed - OpKinds::FORK;
        }
        if self.len <= 1 {
            // The last process's exit has its own byte, [`LAST_EXIT`].
            allowed = allowed - OpKinds::EXIT;
        }
        if self.len == 0 {
            allowed = allowed & OpKinds::PIDLESS;
        }
        allowed
    }

    /// Whether the kind byte [`LAST_EXIT`] is the last process's exit.
    fn last_exit(&self, enabled: OpKinds) -> bool {
        self.len == 1 && enabled.contains(OpKinds::EXIT)
    }

    /// The process a selector byte picks (there must be one).
    fn pick(&self, s: u8) -> Pid {
        let live = self.as_slice();
        let i = if s >= PICK_NEWEST {
            live.len() - 1
        } else {
            usize::from(s) % live.len()
        };
        Pid(live[i])
    }

    /// A selector byte that picks `pid`, if it is live.
    fn selector(&self, pid: Pid) -> Option<u8> {
        let i = self.as_slice().iter().position(|&p| p == pid.0)?;
        u8::try_from(i).ok()
    }

    /// Applies a fork or exit (the op's process is live).
    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Fork { .. } => {
                self.pids[self.len] = self.next;
                self.len += 1;
                self.next += 1;
            }
            Op::Exit { pid } => {
                if let Some(i) = self.as_slice().iter().position(|&p| p == pid.0) {
                    self.pids.copy_within(i + 1..self.len, i);
                    self.len -= 1;
                }
            }
            _ => {}
        }
    }
}

fn op_index(op: &Op) -> usize {
    match op {
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
    }
}

fn map_index(kind: &Kind) -> usize {
    match kind {
        Kind::Anon => 0,
        Kind::Shared => 1,
        Kind::File { .. } => 2,
        Kind::SFile { .. } => 3,
    }
}

/// Picks the index of an allowed entry by weight.
fn pick_weighted(b: u8, allowed: u16, weights: &[u8]) -> Option<usize> {
    let on = |i: usize| allowed & (1 << i) != 0;
    let total: u32 = (0..weights.len())
        .filter(|&i| on(i))
        .map(|i| u32::from(weights[i]))
        .sum();
    if total == 0 {
        return None;
    }
    let mut r = u32::from(b) % total;
    for (i, &w) in weights.iter().enumerate().filter(|&(i, _)| on(i)) {
        if r < u32::from(w) {
            return Some(i);
        }
        r -= u32::from(w);
    }
    None
}

/// The smallest byte that [`pick_weighted`] maps to `index`.
fn weighted_byte(index: usize, allowed: u16, weights: &[u8]) -> u8 {
    let start: u32 = (0..index)
        .filter(|&i| allowed & (1 << i) != 0)
        .map(|i| u32::from(weights[i]))
        .sum();
    // Weights sum to less than 256.
    start as u8
}

/// A value field as read: reduced into its range, or raw from an escape.
enum Field {
    Narrow(u64),
    Wide(u64),
}

struct Reader<'a> {
    bytes: &'a [u8],
    wide: bool,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(b)
    }

    /// Unsigned LEB128, at most 10 bytes (bits past 64 are dropped).
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F).checked_shl(7 * i).unwrap_or(0);
            if b & 0x80 == 0 {
                break;
            }
        }
        Some(v)
    }

    /// A value field: `range(n)` of the format, or an escaped raw value.
    fn field(&mut self, n: u64) -> Option<Field> {
        let b0 = self.byte()?;
        if self.wide && b0 == ESCAPE {
            return self.varint().map(Field::Wide);
        }
        if n <= 256 {
            return Some(Field::Narrow(u64::from(b0) % n));
        }
        let b1 = self.byte()?;
        Some(Field::Narrow(u64::from(u16::from_le_bytes([b0, b1])) % n))
    }

    fn addr(&mut self, p: &Params) -> Option<u64> {
        Some(match self.field(p.window_len)? {
            Field::Narrow(v) => p.window_start + v,
            Field::Wide(v) => v,
        })
    }

    /// A length, an offset or a count: `base + range(n)`.
    fn offset_field(&mut self, base: u64, n: u64) -> Option<u64> {
        Some(match self.field(n)? {
            Field::Narrow(v) => base + v,
            Field::Wide(v) => v,
        })
    }

    fn len(&mut self, p: &Params) -> Option<u64> {
        self.offset_field(1, p.max_len)
    }

    fn value(&mut self) -> Option<u64> {
        let b = self.byte()?;
        if self.wide && b == ESCAPE {
            return self.varint();
        }
        Some(value_of(b))
    }
}

/// The write value a narrow VALUE byte stands for.
fn value_of(b: u8) -> u64 {
    match b {
        0x00..=0x7F => u64::from(b),
        0x80..=0xBF => (u64::from((b >> 4) & 3) << 32) | u64::from(b & 0xF),
        0xC0..=0xFE => VALUE_TAG | u64::from(b),
        0xFF => u64::MAX,
    }
}

/// A narrow VALUE byte for `v`, if there is one.
fn value_byte(v: u64) -> Option<u8> {
    if v < 0x80 {
        return u8::try_from(v).ok();
    }
    let (file, off) = (v >> 32, v & 0xFFFF_FFFF);
    if file < 4 && off < 16 {
        return u8::try_from(0x80 | (file << 4) | off).ok();
    }
    if v == u64::MAX {
        return Some(0xFF);
    }
    match v.checked_sub(VALUE_TAG).and_then(|b| u8::try_from(b).ok()) {
        Some(b) if b >= 0xC0 => Some(b),
        _ => None,
    }
}

/// Decodes fuzz bytes into a valid stream (see the module doc).
pub fn decode(bytes: &[u8], cfg: &DecodeConfig) -> Stream {
    let p = Params::new(cfg);
    let mut r = match bytes.strip_prefix(&WIDE_MAGIC) {
        Some(rest) => Reader {
            bytes: rest,
            wide: true,
        },
        None => Reader { bytes, wide: false },
    };
    let mut ops = Vec::with_capacity(p.max_ops.min(r.bytes.len()));
    if let (Some(k0), Some(k1), Some(m)) = (r.byte(), r.byte(), r.byte()) {
        let (kinds, maps) = p.swarm(k0, k1, m);
        let mut live = Live::new();
        while ops.len() < p.max_ops {
            let Some(op) = decode_op(&mut r, &p, kinds, maps, &live) else {
                break;
            };
            live.apply(&op);
            ops.push(op);
        }
    }
    Stream::from_ops(ops)
}

fn decode_op(
    r: &mut Reader<'_>,
    p: &Params,
    kinds: OpKinds,
    maps: MapKinds,
    live: &Live,
) -> Option<Op> {
    let b = r.byte()?;
    if b == LAST_EXIT && live.last_exit(kinds) {
        return Some(Op::Exit {
            pid: Pid(live.pids[0]),
        });
    }
    let allowed = live.allowed(kinds, p.max_procs);
    let kind = pick_weighted(b, allowed.bits(), &OP_WEIGHTS)?;
    if kind == 10 {
        return Some(Op::Reclaim);
    }
    if kind == 12 {
        return Some(Op::FailAlloc {
            n: r.offset_field(1, FAIL_ALLOC_MAX)?,
        });
    }
    if kind == 13 {
        return Some(Op::Dump);
    }
    let pid = live.pick(r.byte()?);
    Some(match kind {
        0 => {
            let addr = r.addr(p)?;
            let len = r.len(p)?;
            let pr = r.byte()?;
            let kd = r.byte()?;
            let file = kd >> 6;
            let kind = match pick_weighted(kd & 0x3F, maps.bits().into(), &MAP_WEIGHTS)? {
                0 => Kind::Anon,
                1 => Kind::Shared,
                2 => Kind::File {
                    file,
                    off: r.offset_field(0, FILE_OFF_RANGE)?,
                },
                _ => Kind::SFile {
                    file,
                    off: r.offset_field(0, FILE_OFF_RANGE)?,
                },
            };
            Op::Mmap {
                pid,
                addr,
                len,
                prot: Prot::ALL[usize::from(pr % 5)],
                kind,
                replace: (pr / 5) % 4 == REPLACE_GROUP,
            }
        }
        1 => Op::Munmap {
            pid,
            addr: r.addr(p)?,
            len: r.len(p)?,
        },
        2 => Op::Mprotect {
            pid,
            addr: r.addr(p)?,
            len: r.len(p)?,
            prot: Prot::ALL[usize::from(r.byte()? % 5)],
        },
        3 => {
            let shape = r.byte()? % 8;
            let old = r.addr(p)?;
            let old_len = r.len(p)?;
            let (moves, same_len, dontunmap) = match shape {
                0..=2 => (false, false, false),
                3 | 7 => (true, true, false),
                4 => (true, true, true),
                5 => (true, false, false),
                _ => (true, false, true),
            };
            let new_len = if same_len { old_len } else { r.len(p)? };
            let to = if moves {
                Some(MremapTo {
                    new: r.addr(p)?,
                    dontunmap,
                })
            } else {
                None
            };
            Op::Mremap {
                pid,
                old,
                old_len,
                new_len,
                to,
            }
        }
        4 => Op::Madvise {
            pid,
            addr: r.addr(p)?,
            len: r.len(p)?,
            advice: Advice::ALL[usize::from(r.byte()? % 5)],
        },
        5 => Op::Fork { pid },
        6 => Op::Exit { pid },
        7 => Op::Read {
            pid,
            addr: r.addr(p)?,
        },
        8 => Op::Write {
            pid,
            addr: r.addr(p)?,
            value: r.value()?,
        },
        9 => Op::Swapout {
            pid,
            addr: r.addr(p)?,
        },
        _ => Op::Migrate {
            pid,
            addr: r.addr(p)?,
        },
    })
}

/// Why one encoding attempt failed.
enum Fail {
    /// The stream has no encoding at all.
    Error(EncodeError),
    /// A value needs an escape: retry in wide mode.
    NeedsWide,
}

impl From<EncodeError> for Fail {
    fn from(e: EncodeError) -> Fail {
        Fail::Error(e)
    }
}

/// Encodes a stream into bytes that [`decode`] turns back into it.
///
/// Succeeds for every stream with at most `max_ops` ops, of kinds and map
/// kinds the config enables, whose ops name only live processes, that never
/// has more than `max_procs` processes live, and whose file numbers are
/// valid. Values outside the decoder's ranges are carried in wide mode.
pub fn encode(stream: &Stream, cfg: &DecodeConfig) -> Result<Vec<u8>, EncodeError> {
    match encode_mode(stream, cfg, false) {
        Ok(bytes) => Ok(bytes),
        Err(Fail::Error(e)) => Err(e),
        Err(Fail::NeedsWide) => match encode_mode(stream, cfg, true) {
            Ok(bytes) => Ok(bytes),
            Err(Fail::Error(e)) => Err(e),
            // Wide mode can carry any value.
            Err(Fail::NeedsWide) => unreachable!("wide mode needs no escape"),
        },
    }
}

struct Writer {
    out: Vec<u8>,
    wide: bool,
}

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// Writes `value` as a field of `range(n)` standing for `base + v`.
    fn field(&mut self, value: u64, base: u64, n: u64) -> Result<(), Fail> {
        let narrow = value.checked_sub(base).filter(|&v| v < n);
        let bytes = match narrow {
            Some(v) if n <= 256 => u8::try_from(v).ok().map(|b| [b, 0]).map(|b| (b, 1)),
            Some(v) => u16::try_from(v).ok().map(|v| (v.to_le_bytes(), 2)),
            None => None,
        };
        match bytes {
            Some((b, len)) if !(self.wide && b[0] == ESCAPE) => {
                self.out.extend_from_slice(&b[..len]);
                Ok(())
            }
            _ => self.escape(value),
        }
    }

    fn escape(&mut self, value: u64) -> Result<(), Fail> {
        if !self.wide {
            return Err(Fail::NeedsWide);
        }
        self.out.push(ESCAPE);
        self.varint(value);
        Ok(())
    }

    fn addr(&mut self, addr: u64, p: &Params) -> Result<(), Fail> {
        self.field(addr, p.window_start, p.window_len)
    }

    fn len(&mut self, len: u64, p: &Params) -> Result<(), Fail> {
        self.field(len, 1, p.max_len)
    }

    fn value(&mut self, value: u64) -> Result<(), Fail> {
        match value_byte(value) {
            Some(b) if !(self.wide && b == ESCAPE) => {
                self.out.push(b);
                Ok(())
            }
            _ => self.escape(value),
        }
    }
}

fn encode_mode(stream: &Stream, cfg: &DecodeConfig, wide: bool) -> Result<Vec<u8>, Fail> {
    let p = Params::new(cfg);
    if stream.ops.len() > p.max_ops {
        return Err(EncodeError::TooManyOps {
            ops: stream.ops.len(),
            max_ops: p.max_ops,
        }
        .into());
    }
    let mut w = Writer {
        out: Vec::new(),
        wide,
    };
    if wide {
        w.out.extend_from_slice(&WIDE_MAGIC);
    }
    // Switch on every kind the config enables.
    w.out.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
    let (kinds, maps) = p.swarm(0xFF, 0xFF, 0xFF);
    let mut live = Live::new();
    for (index, op) in stream.ops.iter().enumerate() {
        encode_op(&mut w, &p, kinds, maps, &live, index, op)?;
        live.apply(op);
    }
    Ok(w.out)
}

fn encode_op(
    w: &mut Writer,
    p: &Params,
    kinds: OpKinds,
    maps: MapKinds,
    live: &Live,
    index: usize,
    op: &Op,
) -> Result<(), Fail> {
    let kind = OpKinds::of(op);
    if !kinds.contains(kind) {
        return Err(EncodeError::KindDisabled { index, op: *op }.into());
    }
    let selector = match op.pid() {
        Some(pid) => Some(
            live.selector(pid)
                .ok_or(EncodeError::NotLive { index, op: *op })?,
        ),
        None => None,
    };
    if matches!(op, Op::Exit { .. }) && live.last_exit(kinds) {
        w.out.push(LAST_EXIT);
        return Ok(());
    }
    let allowed = live.allowed(kinds, p.max_procs);
    if !allowed.contains(kind) {
        return Err(EncodeError::TooManyProcesses {
            index,
            op: *op,
            max_procs: p.max_procs,
        }
        .into());
    }
    w.out
        .push(weighted_byte(op_index(op), allowed.bits(), &OP_WEIGHTS));
    w.out.extend(selector);
    match *op {
        Op::Mmap {
            addr,
            len,
            prot,
            kind,
            replace,
            ..
        } => {
            w.addr(addr, p)?;
            w.len(len, p)?;
            let group = if replace { REPLACE_GROUP } else { 0 };
            w.out.push(prot_index(prot) + 5 * group);
            if !maps.contains(MapKinds::of(&kind)) {
                return Err(EncodeError::MapKindDisabled { index, op: *op }.into());
            }
            let kd = weighted_byte(map_index(&kind), maps.bits().into(), &MAP_WEIGHTS);
            match kind {
                Kind::Anon | Kind::Shared => w.out.push(kd),
                Kind::File { file, off } | Kind::SFile { file, off } => {
                    if file >= NR_FILES {
                        return Err(EncodeError::BadFile { index, op: *op }.into());
                    }
                    w.out.push(kd | (file << 6));
                    w.field(off, 0, FILE_OFF_RANGE)?;
                }
            }
        }
        Op::Munmap { addr, len, .. } => {
            w.addr(addr, p)?;
            w.len(len, p)?;
        }
        Op::Mprotect {
            addr, len, prot, ..
        } => {
            w.addr(addr, p)?;
            w.len(len, p)?;
            w.out.push(prot_index(prot));
        }
        Op::Mremap {
            old,
            old_len,
            new_len,
            to,
            ..
        } => {
            let same = old_len == new_len;
            let shape = match to {
                None => 0,
                Some(t) => match (same, t.dontunmap) {
                    (true, false) => 3,
                    (true, true) => 4,
                    (false, false) => 5,
                    (false, true) => 6,
                },
            };
            w.out.push(shape);
            w.addr(old, p)?;
            w.len(old_len, p)?;
            if !(to.is_some() && same) {
                w.len(new_len, p)?;
            }
            if let Some(t) = to {
                w.addr(t.new, p)?;
            }
        }
        Op::Madvise {
            addr, len, advice, ..
        } => {
            w.addr(addr, p)?;
            w.len(len, p)?;
            w.out.push(advice_index(advice));
        }
        Op::Read { addr, .. } | Op::Swapout { addr, .. } | Op::Migrate { addr, .. } => {
            w.addr(addr, p)?;
        }
        Op::Write { addr, value, .. } => {
            w.addr(addr, p)?;
            w.value(value)?;
        }
        Op::FailAlloc { n } => w.field(n, 1, FAIL_ALLOC_MAX)?,
        Op::Fork { .. } | Op::Exit { .. } | Op::Reclaim | Op::Dump => {}
    }
    Ok(())
}

fn prot_index(prot: Prot) -> u8 {
    match prot {
        Prot::None => 0,
        Prot::R => 1,
        Prot::Rw => 2,
        Prot::Rx => 3,
        Prot::Rwx => 4,
    }
}

fn advice_index(advice: Advice) -> u8 {
    match advice {
        Advice::DontNeed => 0,
        Advice::DontFork => 1,
        Advice::DoFork => 2,
        Advice::WipeOnFork => 3,
        Advice::KeepOnFork => 4,
    }
}
