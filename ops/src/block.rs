//! Concurrent blocks of version 2 of the op language (docs/op-language.md,
//! "Version 2"): which ops of a stream run at the same time, and the
//! schedule that interleaves them. The language only carries a schedule;
//! executing it (steps, locks, preemptions) is the MMU's.

use std::fmt;
use std::ops::Range;

/// Fewest actors a block has.
pub const MIN_ACTORS: usize = 2;
/// Most actors a block has (`A` to `H`).
pub const MAX_ACTORS: usize = 8;
/// Largest preemption bound of `explore:C`.
pub const MAX_PREEMPTIONS: u8 = 4;
/// The preemption bound when a block names no schedule (`explore:2`).
pub const DEFAULT_PREEMPTIONS: u8 = 2;

/// A concurrent block: ops `first..first + actors` of the stream (they stay
/// in [`Stream::ops`](crate::Stream), in letter order) are its actors `A`,
/// `B`, ... and run interleaved under `sched`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    /// Index in the stream's ops of actor `A`.
    pub first: usize,
    /// Number of actors, `MIN_ACTORS..=MAX_ACTORS`.
    pub actors: usize,
    pub sched: Sched,
    /// Line of the `par` that opens the block (of the one-line block).
    pub line: usize,
    /// Where the schedule's text starts (1-based line and column; where it
    /// would go when the text names none), for errors about the schedule.
    pub sched_line: usize,
    pub sched_col: usize,
}

impl Block {
    /// The indices in the stream's ops of the block's actors.
    pub fn ops(&self) -> Range<usize> {
        self.first..self.first + self.actors
    }

    /// The letter of actor `i` (`A` for 0).
    pub fn letter(i: usize) -> char {
        char::from(b'A' + i as u8)
    }
}

/// How a block's actors are interleaved (`SCHED` in the text form).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Sched {
    /// `explore:C`: every lock-respecting schedule with at most `C`
    /// preemptions (`C <= MAX_PREEMPTIONS`).
    Explore { preemptions: u8 },
    /// `pct:SEED:DEPTH`: one PCT schedule (`depth >= 1`).
    Pct { seed: u64, depth: u32 },
    /// `random:SEED`: one schedule, a uniform choice at each decision.
    Random { seed: u64 },
    /// `#HEX`: raw decision bytes (decision i takes byte i modulo the
    /// number of actors that may run; past the last byte, the lowest
    /// letter).
    Bytes(Vec<u8>),
    /// The run-length form (`A3 B..LABEL A*`), `! ...` when `strict`; at
    /// least one item.
    Steps { strict: bool, items: Vec<RunItem> },
}

impl Default for Sched {
    /// `explore:2`, what a block without `sched` runs.
    fn default() -> Sched {
        Sched::Explore {
            preemptions: DEFAULT_PREEMPTIONS,
        }
    }
}

/// One item of the run-length form: run `actor` (0 is `A`) until `stop`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RunItem {
    pub actor: u8,
    pub stop: RunStop,
}

/// How far a run-length item runs its actor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RunStop {
    /// `X<n>`: up to `n` steps (`n >= 1`).
    Steps(u64),
    /// `X..LABEL`: up to and including its first step named LABEL (a step
    /// name of the MMU's catalogue; the language only checks its shape,
    /// [`is_label`]).
    Until(String),
    /// `X*`: until it finishes.
    End,
}

/// Whether `text` can be a step name: an ASCII letter, digit or `_` first,
/// then letters, digits and `_ . # [ ] + -`.
pub fn is_label(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.#[]+-".contains(c))
}

impl fmt::Display for RunItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = Block::letter(usize::from(self.actor));
        match &self.stop {
            RunStop::Steps(n) => write!(f, "{letter}{n}"),
            RunStop::Until(label) => write!(f, "{letter}..{label}"),
            RunStop::End => write!(f, "{letter}*"),
        }
    }
}

/// The canonical text of a schedule: decimal numbers, lowercase hex.
impl fmt::Display for Sched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sched::Explore { preemptions } => write!(f, "explore:{preemptions}"),
            Sched::Pct { seed, depth } => write!(f, "pct:{seed}:{depth}"),
            Sched::Random { seed } => write!(f, "random:{seed}"),
            Sched::Bytes(bytes) => {
                f.write_str("#")?;
                bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
            Sched::Steps { strict, items } => {
                let mut sep = if *strict { "! " } else { "" };
                for item in items {
                    write!(f, "{sep}{item}")?;
                    sep = " ";
                }
                Ok(())
            }
        }
    }
}
