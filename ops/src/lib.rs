//! rmaplab's op language, version 1: the values of an op stream (processes,
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

mod op;
mod op_stream;

pub use op::*;
pub use op_stream::OpStream;

pub mod corpus;
pub mod decode;
pub mod parse;
pub mod print;

/// A parsed or decoded op stream. `lines[i]` is the source line of `ops[i]`
/// (1-based); for a stream built in memory it is the line the op has when
/// the stream is printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    pub ops: Vec<Op>,
    pub lines: Vec<usize>,
}

impl Stream {
    /// A stream whose line numbers are those of its canonical print.
    pub fn from_ops(ops: Vec<Op>) -> Stream {
        let lines = (1..=ops.len())
            .map(|i| i + CANONICAL_HEADER_LINES)
            .collect();
        Stream { ops, lines }
    }
}

/// Lines the canonical print puts before the first op (`version 1`).
pub const CANONICAL_HEADER_LINES: usize = 1;
