//! The canonical printer of the op language's text form.
//!
//! The canonical form is `version N` on the first line (the stream's
//! version, at least the one it needs), then one op per line with single
//! spaces and decimal numbers, except a `write` VALUE of `0x10000` or more,
//! which is printed as lowercase `0x` hex. A concurrent block (version 2) is
//! printed in the multi-line form: `par`, its ops indented by two spaces,
//! `end sched SCHED` with the schedule always named. Parsing the print of a
//! stream gives back its ops and blocks (as long as every file number is
//! below [`NR_FILES`](crate::NR_FILES) and every block is valid), with the
//! line numbers of [`Stream::renumber`], and printing a parsed stream is a
//! fixed point.

use std::fmt::{self, Write as _};

use crate::{Kind, MremapTo, Op, Stream};

/// `write` values from this one on are printed in hex.
const HEX_VALUES_FROM: u64 = 0x10000;

/// The canonical text of a stream (the same as its `Display`).
pub fn print(stream: &Stream) -> String {
    stream.to_string()
}

/// The canonical text of a stream after `# ` comment lines, one per line of
/// `header_lines` (for corpus files). A header line containing newlines
/// becomes several comment lines.
pub fn print_with_header(stream: &Stream, header_lines: &[String]) -> String {
    let mut out = String::new();
    for line in header_lines.iter().flat_map(|h| h.split('\n')) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&print(stream));
    out
}

/// The canonical text of one op, without a newline.
pub fn print_op(op: &Op) -> String {
    let mut out = String::new();
    // Writing to a `String` cannot fail.
    let _ = write_op(&mut out, op);
    out
}

/// Writes the canonical text of one op, without a newline.
pub fn write_op(out: &mut impl fmt::Write, op: &Op) -> fmt::Result {
    let kw = op.keyword();
    match *op {
        Op::Mmap {
            pid,
            addr,
            len,
            prot,
            kind,
            replace,
        } => {
            write!(out, "{kw} {pid} {addr} {len} {} ", prot.as_str())?;
            write_kind(out, kind)?;
            if replace {
                out.write_str(" replace")?;
            }
            Ok(())
        }
        Op::Munmap { pid, addr, len } => write!(out, "{kw} {pid} {addr} {len}"),
        Op::Mprotect {
            pid,
            addr,
            len,
            prot,
        } => write!(out, "{kw} {pid} {addr} {len} {}", prot.as_str()),
        Op::Mremap {
            pid,
            old,
            old_len,
            new_len,
            to,
        } => {
            write!(out, "{kw} {pid} {old} {old_len} {new_len}")?;
            if let Some(MremapTo { new, dontunmap }) = to {
                write!(out, " to {new}")?;
                if dontunmap {
                    out.write_str(" dontunmap")?;
                }
            }
            Ok(())
        }
        Op::Madvise {
            pid,
            addr,
            len,
            advice,
        } => write!(out, "{kw} {pid} {addr} {len} {}", advice.as_str()),
        Op::Fork { pid } | Op::Exit { pid } => write!(out, "{kw} {pid}"),
        Op::Read { pid, addr }
        | Op::Swapout { pid, addr }
        | Op::Migrate { pid, addr }
        | Op::Referenced { pid, addr } => write!(out, "{kw} {pid} {addr}"),
        Op::Write { pid, addr, value } if value >= HEX_VALUES_FROM => {
            write!(out, "{kw} {pid} {addr} {value:#x}")
        }
        Op::Write { pid, addr, value } => write!(out, "{kw} {pid} {addr} {value}"),
        Op::FailAlloc { n } => write!(out, "{kw} {n}"),
        Op::ExecStack { pid, addr, len } => write!(out, "{kw} {pid} {addr} {len}"),
        Op::ExecShift { pid, shift } => write!(out, "{kw} {pid} {shift}"),
        Op::Reclaim | Op::Dump => out.write_str(kw),
    }
}

fn write_kind(out: &mut impl fmt::Write, kind: Kind) -> fmt::Result {
    match kind {
        Kind::Anon => out.write_str("anon"),
        Kind::Shared => out.write_str("shared"),
        Kind::File { file, off } => write!(out, "file:{file}:{off}"),
        Kind::SFile { file, off } => write!(out, "sfile:{file}:{off}"),
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "version {}", self.version.max(self.needed_version()))?;
        let mut blocks = self.blocks.iter().peekable();
        for (i, op) in self.ops.iter().enumerate() {
            let in_block = blocks.peek().is_some_and(|b| b.ops().contains(&i));
            if blocks.peek().is_some_and(|b| b.first == i) {
                f.write_str("par\n")?;
            }
            if in_block {
                f.write_str("  ")?;
            }
            write_op(f, op)?;
            f.write_char('\n')?;
            if let Some(b) = blocks.next_if(|b| i + 1 == b.first + b.actors) {
                writeln!(f, "end sched {}", b.sched)?;
            }
        }
        Ok(())
    }
}
