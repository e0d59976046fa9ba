//! The parser of the op language's text form (docs/op-language.md).
//!
//! Lines are split on `\n`; `#` starts a comment anywhere on a line; tokens
//! are separated by whitespace. The first non-comment line may be
//! `version 1`. A parse error names the line and column (1-based, in chars)
//! of the offending token, or of the end of the line when something is
//! missing; the whole stream is rejected on the first error.

use std::fmt;
use std::str::FromStr;

use crate::{Advice, Kind, MremapTo, NR_FILES, Op, Pid, Prot, Stream};

/// Why a text did not parse, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in chars.
    pub col: usize,
    /// What the parser expected there.
    pub expected: String,
    /// What it found: a quoted token, or `end of line`.
    pub found: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: expected {}, found {}",
            self.line, self.col, self.expected, self.found
        )
    }
}

impl std::error::Error for ParseError {}

impl FromStr for Stream {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Stream, ParseError> {
        parse(text)
    }
}

const EXPECTED_OP: &str = "an op (mmap, munmap, mprotect, mremap, madvise, fork, exit, read, \
                           write, swapout, reclaim, migrate, fail-alloc, dump)";
const EXPECTED_PROT: &str = "a protection (none, r, rw, rx, rwx)";
const EXPECTED_KIND: &str = "a kind (anon, shared, file:F:OFF, sfile:F:OFF)";
const EXPECTED_ADVICE: &str = "an advice (dontneed, dontfork, dofork, wipeonfork, keeponfork)";
const EXPECTED_PID: &str = "a process (p0, p1, ...)";
const END_OF_LINE: &str = "end of line";

/// Parses the text form of an op stream.
pub fn parse(text: &str) -> Result<Stream, ParseError> {
    let mut stream = Stream::default();
    let mut seen_line = false;
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let content = raw.find('#').map_or(raw, |at| &raw[..at]);
        let mut cur = Cursor::new(content, line);
        let Some(first) = cur.next() else { continue };
        let is_first = !seen_line;
        seen_line = true;
        if first.text == "version" {
            if !is_first {
                return Err(first.error("an op (`version` may only be the first non-comment line)"));
            }
            let tok = cur.expect("a version number")?;
            if !matches!(number(&tok, "a version number"), Ok(1)) {
                return Err(tok.error("version 1 (the only version there is)"));
            }
            cur.finish()?;
            continue;
        }
        let op = parse_op(&first, &mut cur)?;
        stream.ops.push(op);
        stream.lines.push(line);
    }
    Ok(stream)
}

/// One whitespace-separated token and where it starts.
struct Tok<'a> {
    text: &'a str,
    line: usize,
    col: usize,
}

impl<'a> Tok<'a> {
    fn error(&self, expected: &str) -> ParseError {
        ParseError {
            line: self.line,
            col: self.col,
            expected: expected.to_string(),
            found: format!("{:?}", self.text),
        }
    }

    /// The part of this token starting at byte `start` and ending at `end`.
    fn sub(&self, start: usize, end: usize) -> Tok<'a> {
        Tok {
            text: &self.text[start..end],
            line: self.line,
            col: self.col + self.text[..start].chars().count(),
        }
    }
}

/// Splits one line (comment already removed) into tokens, tracking columns.
struct Cursor<'a> {
    rest: &'a str,
    line: usize,
    /// Column of the first char of `rest`.
    col: usize,
    /// Column just past the last token returned (where a missing one goes).
    end_col: usize,
}

impl<'a> Cursor<'a> {
    fn new(content: &'a str, line: usize) -> Self {
        Cursor {
            rest: content,
            line,
            col: 1,
            end_col: 1,
        }
    }

    fn next(&mut self) -> Option<Tok<'a>> {
        let trimmed = self.rest.trim_start();
        self.col += self.rest[..self.rest.len() - trimmed.len()].chars().count();
        self.rest = trimmed;
        if trimmed.is_empty() {
            return None;
        }
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let tok = Tok {
            text: &trimmed[..end],
            line: self.line,
            col: self.col,
        };
        self.col += tok.text.chars().count();
        self.end_col = self.col;
        self.rest = &trimmed[end..];
        Some(tok)
    }

    /// The next token, or an error at the end of the line.
    fn expect(&mut self, expected: &str) -> Result<Tok<'a>, ParseError> {
        self.next().ok_or_else(|| self.missing(expected))
    }

    fn missing(&self, expected: &str) -> ParseError {
        ParseError {
            line: self.line,
            col: self.end_col,
            expected: expected.to_string(),
            found: END_OF_LINE.to_string(),
        }
    }

    /// Succeeds when nothing but whitespace is left.
    fn finish(&mut self) -> Result<(), ParseError> {
        self.finish_or(END_OF_LINE)
    }

    fn finish_or(&mut self, expected: &str) -> Result<(), ParseError> {
        match self.next() {
            None => Ok(()),
            Some(tok) => Err(tok.error(expected)),
        }
    }

    fn pid(&mut self) -> Result<Pid, ParseError> {
        pid(&self.expect(EXPECTED_PID)?)
    }

    fn number(&mut self, what: &str) -> Result<u64, ParseError> {
        number(&self.expect(&number_expected(what))?, what)
    }

    fn prot(&mut self) -> Result<Prot, ParseError> {
        let tok = self.expect(EXPECTED_PROT)?;
        Prot::ALL
            .into_iter()
            .find(|p| p.as_str() == tok.text)
            .ok_or_else(|| tok.error(EXPECTED_PROT))
    }

    fn advice(&mut self) -> Result<Advice, ParseError> {
        let tok = self.expect(EXPECTED_ADVICE)?;
        Advice::ALL
            .into_iter()
            .find(|a| a.as_str() == tok.text)
            .ok_or_else(|| tok.error(EXPECTED_ADVICE))
    }

    fn kind(&mut self) -> Result<Kind, ParseError> {
        kind(&self.expect(EXPECTED_KIND)?)
    }
}

fn number_expected(what: &str) -> String {
    format!("{what} (a number, decimal or 0x hex)")
}

/// Parses the op whose keyword is `first`, up to the end of the line.
fn parse_op(first: &Tok<'_>, cur: &mut Cursor<'_>) -> Result<Op, ParseError> {
    let op = match first.text {
        "mmap" => {
            let pid = cur.pid()?;
            let addr = cur.number("ADDR")?;
            let len = cur.number("LEN")?;
            let prot = cur.prot()?;
            let kind = cur.kind()?;
            let replace = match cur.next() {
                None => false,
                Some(tok) if tok.text == "replace" => true,
                Some(tok) => return Err(tok.error("`replace` or end of line")),
            };
            Op::Mmap {
                pid,
                addr,
                len,
                prot,
                kind,
                replace,
            }
        }
        "munmap" => Op::Munmap {
            pid: cur.pid()?,
            addr: cur.number("ADDR")?,
            len: cur.number("LEN")?,
        },
        "mprotect" => Op::Mprotect {
            pid: cur.pid()?,
            addr: cur.number("ADDR")?,
            len: cur.number("LEN")?,
            prot: cur.prot()?,
        },
        "mremap" => {
            let pid = cur.pid()?;
            let old = cur.number("OLD")?;
            let old_len = cur.number("OLDLEN")?;
            let new_len = cur.number("NEWLEN")?;
            let to = match cur.next() {
                None => None,
                Some(tok) if tok.text == "to" => {
                    let new = cur.number("NEW")?;
                    let dontunmap = match cur.next() {
                        None => false,
                        Some(tok) if tok.text == "dontunmap" => true,
                        Some(tok) => return Err(tok.error("`dontunmap` or end of line")),
                    };
                    Some(MremapTo { new, dontunmap })
                }
                Some(tok) => return Err(tok.error("`to NEW` or end of line")),
            };
            Op::Mremap {
                pid,
                old,
                old_len,
                new_len,
                to,
            }
        }
        "madvise" => Op::Madvise {
            pid: cur.pid()?,
            addr: cur.number("ADDR")?,
            len: cur.number("LEN")?,
            advice: cur.advice()?,
        },
        "fork" => Op::Fork { pid: cur.pid()? },
        "exit" => Op::Exit { pid: cur.pid()? },
        "read" => Op::Read {
            pid: cur.pid()?,
            addr: cur.number("ADDR")?,
        },
        "write" => Op::Write {
            pid: cur.pid()?,
            addr: cur.number("ADDR")?,
            value: cur.number("VALUE")?,
        },
        "swapout" => Op::Swapout {
            pid: cur.pid()?,
            addr: cur.number("ADDR")?,
        },
        "reclaim" => Op::Reclaim,
        "migrate" => Op::Migrate {
            pid: cur.pid()?,
            addr: cur.number("ADDR")?,
        },
        "fail-alloc" => Op::FailAlloc {
            n: cur.number("N")?,
        },
        "dump" => Op::Dump,
        _ => return Err(first.error(EXPECTED_OP)),
    };
    cur.finish()?;
    Ok(op)
}

/// `pN` with `N` a decimal `u32`.
fn pid(tok: &Tok<'_>) -> Result<Pid, ParseError> {
    let digits = tok.text.strip_prefix('p').unwrap_or("");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(tok.error(EXPECTED_PID));
    }
    let n = digits
        .bytes()
        .try_fold(0u32, |n, d| {
            n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })
        .ok_or_else(|| too_large(tok, "a process number of at most 32 bits"))?;
    Ok(Pid(n))
}

/// A decimal or `0x` hex `u64`; `what` names the operand for the error.
fn number(tok: &Tok<'_>, what: &str) -> Result<u64, ParseError> {
    let (digits, radix) = match tok.text.strip_prefix("0x") {
        Some(hex) => (hex, 16),
        None => (tok.text, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(tok.error(&number_expected(what)));
    }
    digits
        .chars()
        .try_fold(0u64, |n, c| {
            n.checked_mul(u64::from(radix))?
                .checked_add(u64::from(c.to_digit(radix)?))
        })
        .ok_or_else(|| too_large(tok, &format!("{what} (a number of at most 64 bits)")))
}

fn too_large(tok: &Tok<'_>, expected: &str) -> ParseError {
    let mut err = tok.error(expected);
    err.found.push_str(" (number too large)");
    err
}

/// `anon`, `shared`, `file:F:OFF` or `sfile:F:OFF`.
fn kind(tok: &Tok<'_>) -> Result<Kind, ParseError> {
    match tok.text {
        "anon" => return Ok(Kind::Anon),
        "shared" => return Ok(Kind::Shared),
        _ => {}
    }
    let (head, rest) = tok
        .text
        .split_once(':')
        .ok_or_else(|| tok.error(EXPECTED_KIND))?;
    let shared = match head {
        "file" => false,
        "sfile" => true,
        _ => return Err(tok.error(EXPECTED_KIND)),
    };
    let file_start = head.len() + 1;
    let (file, _) = rest
        .split_once(':')
        .ok_or_else(|| tok.error(EXPECTED_KIND))?;
    let file_end = file_start + file.len();
    let file_tok = tok.sub(file_start, file_end);
    let expected_file = format!("a file number (0..={})", NR_FILES - 1);
    let file = number(&file_tok, "F")
        .ok()
        .and_then(|f| u8::try_from(f).ok())
        .filter(|&f| f < NR_FILES)
        .ok_or_else(|| file_tok.error(&expected_file))?;
    let off = number(&tok.sub(file_end + 1, tok.text.len()), "OFF")?;
    Ok(if shared {
        Kind::SFile { file, off }
    } else {
        Kind::File { file, off }
    })
}

/// The property the `parse` fuzz target checks on any bytes: text either
/// parses or fails with a [`ParseError`] (never a panic), and what parses
/// prints to a stream that parses back to the same ops and prints the same
/// again (the canonical print is a fixed point).
pub fn check_round_trip(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = parse(text) {
        let printed = crate::print::print(&s);
        let again = parse(&printed)
            .unwrap_or_else(|e| panic!("printed stream does not parse: {e}\n{printed}"));
        assert_eq!(
            again.ops, s.ops,
            "print/parse round trip changed the stream"
        );
        assert_eq!(
            crate::print::print(&again),
            printed,
            "print is not canonical"
        );
    }
}
