//! The op language of `shared/spec/ops-v1.md`: streams, their text form
//! (`parse`, `print`), and the one decoder from raw fuzz bytes (`decode`,
//! with its inverse `encode`).

pub use rmaplab_impls::op::*;

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

pub mod decode;
pub mod parse;
pub mod print;
