//! rmaplab's op language, versions 1 and 2: the values of an op stream (processes,
//! protections, kinds, advice, errnos, outcomes), its text form ([`parse`],
//! [`print`]), the one decoder from raw fuzz bytes ([`decode`], with its
//! inverse [`decode::encode`]) and the comment header of corpus files
//! ([`corpus`]), and [`OpStream`], the decoder's stream as a typed fuzz
//! target's input (`arbitrary::Arbitrary` with the `arbitrary` feature).
//! docs/op-language.md describes the language; the ops model
//! the Linux 6.18 system calls `mmap`, `munmap`, `mprotect`, `mremap`,
//! `madvise`, `fork` and `exit`, page accesses, and the emulator-only
//! reclaim, migration and allocation-failure hooks.
//!
//! Nothing here executes ops: the emulated MMU (`rmaplab-impls`) and the
//! reference model and live-kernel backend (`rmaplab`) depend on this
//! crate, never the other way round.

mod block;
mod op;
mod op_stream;

pub use block::*;
pub use op::*;
pub use op_stream::OpStream;

pub mod corpus;
pub mod decode;
pub mod parse;
pub mod print;

/// A parsed or decoded op stream. `lines[i]` is the source line of `ops[i]`
/// (1-based); for a stream built in memory it is the line the op has when
/// the stream is printed.
///
/// Version 2's concurrent blocks are ranges over `ops`: the ops of a block
/// stay in `ops`, in letter order (actor `A` first), and `blocks` says which
/// ranges run interleaved and under which schedule. A consumer that ignores
/// `blocks` runs a block's ops one after the other in letter order, which is
/// the schedule "no preemption, letter order": the one a `dump` after the
/// block reports, and what the live kernel runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream {
    /// The version the text declares (1 when it has no version line); the
    /// printer writes at least [`Stream::needed_version`].
    pub version: u8,
    pub ops: Vec<Op>,
    pub lines: Vec<usize>,
    /// The concurrent blocks, in stream order, disjoint (version 2).
    pub blocks: Vec<Block>,
}

impl Default for Stream {
    /// The empty version 1 stream.
    fn default() -> Stream {
        Stream {
            version: 1,
            ops: Vec::new(),
            lines: Vec::new(),
            blocks: Vec::new(),
        }
    }
}

impl Stream {
    /// A stream without blocks whose line numbers are those of its
    /// canonical print.
    pub fn from_ops(ops: Vec<Op>) -> Stream {
        // The decoder's hot path: no blocks, one line per op.
        let lines = (1..=ops.len())
            .map(|i| i + CANONICAL_HEADER_LINES)
            .collect();
        let version = if ops.iter().any(|op| op.version() > 1) {
            2
        } else {
            1
        };
        Stream {
            version,
            ops,
            lines,
            blocks: Vec::new(),
        }
    }

    /// A stream with these blocks (disjoint ranges of `ops`, in order),
    /// whose line numbers and schedule positions are those of its canonical
    /// print, at the version it needs.
    pub fn with_blocks(ops: Vec<Op>, blocks: Vec<Block>) -> Stream {
        let mut s = Stream {
            version: 1,
            ops,
            lines: Vec::new(),
            blocks,
        };
        s.version = s.needed_version();
        s.renumber();
        s
    }

    /// The lowest version that has everything the stream uses.
    pub fn needed_version(&self) -> u8 {
        if !self.blocks.is_empty() || self.ops.iter().any(|op| op.version() > 1) {
            2
        } else {
            1
        }
    }

    /// Sets `lines` and the blocks' positions to those of the canonical
    /// print ([`crate::print`]): the version line, then one line per op, a
    /// block between a `par` line and an `end sched SCHED` line.
    pub fn renumber(&mut self) {
        self.lines.clear();
        let mut line = CANONICAL_HEADER_LINES;
        let mut blocks = self.blocks.iter_mut().peekable();
        for i in 0..self.ops.len() {
            let starts = blocks.peek().is_some_and(|b| b.first == i);
            if starts {
                line += 1;
                if let Some(b) = blocks.peek_mut() {
                    b.line = line;
                }
            }
            line += 1;
            self.lines.push(line);
            if let Some(b) = blocks.next_if(|b| i + 1 == b.first + b.actors) {
                line += 1;
                b.sched_line = line;
                b.sched_col = CANONICAL_SCHED_COL;
            }
        }
    }

    /// The block op `i` belongs to, if any.
    pub fn block_of(&self, i: usize) -> Option<&Block> {
        self.blocks.iter().find(|b| b.ops().contains(&i))
    }
}

/// Lines the canonical print puts before the first op (`version N`).
pub const CANONICAL_HEADER_LINES: usize = 1;

/// Column of the schedule in a canonical `end sched SCHED` line.
const CANONICAL_SCHED_COL: usize = "end sched ".len() + 1;
