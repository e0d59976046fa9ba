//! The parser of the op language's text form (docs/op-language.md).
//!
//! Lines are split on `\n`; `#` starts a comment anywhere on a line; tokens
//! are separated by whitespace. The first non-comment line may be
//! `version 1` or `version 2`. Version 2 adds concurrent blocks (`par` ...
//! `end [sched SCHED]`, `OP || OP [@ SCHED]`) and `referenced`; in a
//! schedule, `#` belongs to the schedule (`#HEX`, step names like
//! `w1.visit#2`) and only a token starting with `#` after the schedule's
//! first token starts a comment. A parse error names the line and column
//! (1-based, in chars) of the offending token, or of the end of the line
//! (or of the `||` or `@` that ends an op) when something is missing; the
//! whole stream is rejected on the first error.

use std::fmt;
use std::str::FromStr;

use crate::{
    Advice, Block, Kind, MAX_ACTORS, MAX_PREEMPTIONS, MIN_ACTORS, MremapTo, NR_FILES, Op, Pid,
    Prot, RunItem, RunStop, Sched, Stream, is_label,
};

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
const EXPECTED_OP_V2: &str = "an op (mmap, munmap, mprotect, mremap, madvise, fork, exit, read, \
                              write, swapout, reclaim, migrate, referenced, fail-alloc, dump, \
                              exec-stack, exec-shift), `par` or `end`";
const EXPECTED_SCHED: &str = "a schedule (explore:C, pct:SEED:DEPTH, random:SEED, #HEX, or \
                              run-length items such as `A3 B..LABEL A*`, strict after `!`)";
const EXPECTED_PROT: &str = "a protection (none, r, rw, rx, rwx)";
const EXPECTED_KIND: &str = "a kind (anon, shared, file:F:OFF, sfile:F:OFF)";
const EXPECTED_ADVICE: &str = "an advice (dontneed, dontfork, dofork, wipeonfork, keeponfork)";
const EXPECTED_PID: &str = "a process (p0, p1, ...)";
const END_OF_LINE: &str = "end of line";

/// Parses the text form of an op stream.
pub fn parse(text: &str) -> Result<Stream, ParseError> {
    let mut p = Parser {
        stream: Stream::default(),
        seen_line: false,
        open: None,
    };
    for (i, raw) in text.split('\n').enumerate() {
        p.line(raw, i + 1)?;
    }
    if let Some(open) = &p.open {
        return Err(ParseError {
            line: open.line,
            col: open.col,
            expected: "`end` closing this `par`".to_string(),
            found: "end of file".to_string(),
        });
    }
    Ok(p.stream)
}

/// A `par` whose `end` has not been seen yet.
struct OpenBlock {
    line: usize,
    col: usize,
    first: usize,
}

struct Parser {
    stream: Stream,
    seen_line: bool,
    open: Option<OpenBlock>,
}

impl Parser {
    fn v2(&self) -> bool {
        self.stream.version >= 2
    }

    fn line(&mut self, raw: &str, line: usize) -> Result<(), ParseError> {
        let content = &raw[..comment_start(raw, self.v2())];
        let toks = tokens(content, line);
        let Some(first) = toks.first() else {
            return Ok(());
        };
        let is_first = !self.seen_line;
        self.seen_line = true;
        if first.text == "version" {
            let mut cur = Cursor::new(&toks[1..], line, first.end());
            if !is_first {
                return Err(first.error("an op (`version` may only be the first non-comment line)"));
            }
            let tok = cur.expect("a version number")?;
            self.stream.version = match number(&tok, "a version number") {
                Ok(1) => 1,
                Ok(2) => 2,
                _ => return Err(tok.error("version 1 or 2")),
            };
            return cur.finish();
        }
        if !self.v2() {
            v1_line(&toks)?;
            let op = segment_op(&toks, None, line, false, EXPECTED_OP)?;
            self.push_op(op, line);
            return Ok(());
        }
        match first.text {
            "par" => self.par(&toks, line),
            "end" => self.end(&toks, line),
            "sched" => Err(first.error("an op (`sched SCHED` follows `end`)")),
            _ => self.ops(&toks, line),
        }
    }

    fn par(&mut self, toks: &[Tok<'_>], line: usize) -> Result<(), ParseError> {
        let first = &toks[0];
        if let Some(open) = &self.open {
            return Err(first.error(&format!(
                "an op or `end` (blocks do not nest: the `par` of line {} is open)",
                open.line
            )));
        }
        Cursor::new(&toks[1..], line, first.end()).finish()?;
        self.open = Some(OpenBlock {
            line,
            col: first.col,
            first: self.stream.ops.len(),
        });
        Ok(())
    }

    fn end(&mut self, toks: &[Tok<'_>], line: usize) -> Result<(), ParseError> {
        let first = &toks[0];
        let Some(open) = self.open.take() else {
            return Err(first.error("an op (`end` closes a `par` block, and none is open)"));
        };
        let actors = self.stream.ops.len() - open.first;
        if actors < MIN_ACTORS {
            return Err(first.error(&format!(
                "another op before `end` (a block has {MIN_ACTORS} to {MAX_ACTORS} actors)"
            )));
        }
        let (sched, at) = match toks.get(1) {
            None => (Sched::default(), (line, first.end())),
            Some(kw) if kw.text == "sched" => {
                let missing = (line, kw.end(), END_OF_LINE.to_string());
                let at = toks.get(2).map_or((line, kw.end()), |t| (t.line, t.col));
                (parse_sched(&toks[2..], actors, missing)?, at)
            }
            Some(tok) => return Err(tok.error("`sched SCHED` or end of line")),
        };
        self.push_block(open.first, actors, sched, open.line, at);
        Ok(())
    }

    fn push_block(
        &mut self,
        first: usize,
        actors: usize,
        sched: Sched,
        line: usize,
        (sched_line, sched_col): (usize, usize),
    ) {
        self.stream.blocks.push(Block {
            first,
            actors,
            sched,
            line,
            sched_line,
            sched_col,
        });
    }

    /// A line of ops: one op, or a one-line block `OP || OP ... [@ SCHED]`.
    fn ops(&mut self, toks: &[Tok<'_>], line: usize) -> Result<(), ParseError> {
        let (ops_toks, sched_toks) = match toks.iter().position(|t| t.text == "@") {
            Some(at) => (&toks[..at], Some((&toks[at], &toks[at + 1..]))),
            None => (toks, None),
        };
        let mut segments = Vec::new();
        let mut start = 0;
        for (i, t) in ops_toks.iter().enumerate() {
            if t.text == "||" {
                segments.push((&ops_toks[start..i], Some(t)));
                start = i + 1;
            }
        }
        // What ends the last op: the `@`, or the end of the line.
        segments.push((&ops_toks[start..], sched_toks.map(|(at, _)| at)));
        if let Some(open) = &self.open {
            if let Some(sep) = segments[0].1 {
                return Err(sep.error(&format!(
                    "end of line (inside `par` ... `end` each line is one op; the `par` of \
                     line {} is open)",
                    open.line
                )));
            }
            if self.stream.ops.len() - open.first == MAX_ACTORS {
                return Err(
                    toks[0].error(&format!("`end` (a block has at most {MAX_ACTORS} actors)"))
                );
            }
            let op = segment_op(segments[0].0, None, line, false, EXPECTED_OP_V2)?;
            return self.push_block_op(op, &toks[0], line);
        }
        if segments.len() == 1 {
            if let Some((at, _)) = sched_toks {
                return Err(at.error(&format!(
                    "`||` and another op before `@` (a block has {MIN_ACTORS} to {MAX_ACTORS} \
                     actors)"
                )));
            }
            let op = segment_op(segments[0].0, None, line, false, EXPECTED_OP_V2)?;
            self.push_op(op, line);
            return Ok(());
        }
        let first = self.stream.ops.len();
        for (i, &(seg, end)) in segments.iter().enumerate() {
            let Some(head) = seg.first() else {
                let sep = end.map_or_else(
                    || (line, ops_toks[ops_toks.len() - 1].end()),
                    |t| (t.line, t.col),
                );
                return Err(ParseError {
                    line: sep.0,
                    col: sep.1,
                    expected: "an op".to_string(),
                    found: end.map_or(END_OF_LINE.to_string(), |t| format!("{:?}", t.text)),
                });
            };
            if i == MAX_ACTORS {
                return Err(segments[i - 1].1.expect("a separator").error(&format!(
                    "`@` or end of line (a block has at most {MAX_ACTORS} actors)"
                )));
            }
            let op = segment_op(seg, end, line, true, EXPECTED_OP_V2)?;
            self.push_block_op(op, head, line)?;
        }
        let actors = segments.len();
        let (sched, at) = match sched_toks {
            None => (Sched::default(), (line, toks[toks.len() - 1].end())),
            Some((at, rest)) => {
                let missing = (line, at.end(), END_OF_LINE.to_string());
                let pos = rest.first().map_or((line, at.end()), |t| (t.line, t.col));
                (parse_sched(rest, actors, missing)?, pos)
            }
        };
        self.push_block(first, actors, sched, line, at);
        Ok(())
    }

    fn push_op(&mut self, op: Op, line: usize) {
        self.stream.ops.push(op);
        self.stream.lines.push(line);
    }

    /// An op that is an actor of a block.
    fn push_block_op(&mut self, op: Op, head: &Tok<'_>, line: usize) -> Result<(), ParseError> {
        if !op.may_run_in_block() {
            return Err(
                head.error("an op that may run in a block (every op but `fail-alloc` and `dump`)")
            );
        }
        self.push_op(op, line);
        Ok(())
    }
}

/// Where the comment of a line starts (its length if it has none). In
/// version 1, at the first `#`. In version 2 the same, except in a
/// schedule (after `end sched` or `@`): its first token is whole (`#HEX`
/// starts with `#`), and later ones are whole unless they start with `#`.
fn comment_start(raw: &str, v2: bool) -> usize {
    let cut = raw.find('#').unwrap_or(raw.len());
    if !v2 {
        return cut;
    }
    let mut in_sched = false;
    let mut sched_first = false;
    let mut index = 0;
    let mut first_is_end = false;
    let mut rest = raw;
    let mut offset = 0;
    loop {
        let trimmed = rest.trim_start();
        offset += rest.len() - trimmed.len();
        if trimmed.is_empty() {
            return raw.len();
        }
        let len = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let tok = &trimmed[..len];
        if sched_first {
            sched_first = false;
        } else if in_sched {
            if tok.starts_with('#') {
                return offset;
            }
        } else if let Some(at) = tok.find('#') {
            return offset + at;
        } else if tok == "@" || (index == 1 && first_is_end && tok == "sched") {
            in_sched = true;
            sched_first = true;
        }
        first_is_end |= index == 0 && tok == "end";
        index += 1;
        offset += len;
        rest = &trimmed[len..];
    }
}

/// Splits one line (comment already removed) into tokens with columns.
fn tokens(content: &str, line: usize) -> Vec<Tok<'_>> {
    let mut toks = Vec::new();
    let mut rest = content;
    let mut col = 1;
    loop {
        let trimmed = rest.trim_start();
        col += rest[..rest.len() - trimmed.len()].chars().count();
        if trimmed.is_empty() {
            return toks;
        }
        let end = trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
        let tok = Tok {
            text: &trimmed[..end],
            line,
            col,
        };
        col += tok.text.chars().count();
        toks.push(tok);
        rest = &trimmed[end..];
    }
}

/// Keywords of version 2 that start a line.
const V2_KEYWORDS: [&str; 6] = [
    "par",
    "end",
    "sched",
    "referenced",
    "exec-stack",
    "exec-shift",
];
/// Separators of version 2 (one-line blocks).
const V2_SEPARATORS: [&str; 2] = ["||", "@"];

/// Rejects the version 2 syntax on a line of a version 1 file.
fn v1_line(toks: &[Tok<'_>]) -> Result<(), ParseError> {
    let v2 = |what: &str, tok: &Tok<'_>| {
        tok.error(&format!(
            "{what} (`{}` is version 2: start the file with `version 2`)",
            tok.text
        ))
    };
    if V2_KEYWORDS.contains(&toks[0].text) {
        return Err(v2(EXPECTED_OP, &toks[0]));
    }
    match toks.iter().find(|t| V2_SEPARATORS.contains(&t.text)) {
        Some(tok) => Err(v2(END_OF_LINE, tok)),
        None => Ok(()),
    }
}

/// The op of one segment of a line (`toks` non-empty), ended by `end` (a
/// `||` or `@`) or by the end of the line.
fn segment_op(
    toks: &[Tok<'_>],
    end: Option<&Tok<'_>>,
    line: usize,
    in_line_block: bool,
    expected_op: &str,
) -> Result<Op, ParseError> {
    let first = &toks[0];
    let mut cur = Cursor::new(&toks[1..], line, first.end());
    if let Some(end) = end {
        cur.stop = Some((end.col, format!("{:?}", end.text)));
    }
    if in_line_block {
        cur.end_what = "`||`, `@` or end of line";
    }
    parse_op(first, &mut cur, expected_op)
}

/// A schedule from its tokens (those after `sched` or `@`), for a block of
/// `actors` actors; `missing` is where an absent schedule is reported.
fn parse_sched(
    toks: &[Tok<'_>],
    actors: usize,
    missing: (usize, usize, String),
) -> Result<Sched, ParseError> {
    let Some(first) = toks.first() else {
        return Err(ParseError {
            line: missing.0,
            col: missing.1,
            expected: EXPECTED_SCHED.to_string(),
            found: missing.2,
        });
    };
    let single = |sched: Sched| match toks.get(1) {
        None => Ok(sched),
        Some(tok) => Err(tok.error("end of line (this schedule is one token)")),
    };
    let t = first.text;
    if let Some(hex) = t.strip_prefix('#') {
        let sub = first.sub(1, t.len());
        if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(sub.error("hex digits in pairs (one byte each) after `#`"));
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
            .collect();
        return single(Sched::Bytes(bytes));
    }
    if t.starts_with("explore:") {
        let sub = first.sub("explore:".len(), t.len());
        let expected = format!("a preemption bound C in 0..={MAX_PREEMPTIONS}");
        let c = number(&sub, "C")
            .ok()
            .filter(|&c| c <= u64::from(MAX_PREEMPTIONS))
            .ok_or_else(|| sub.error(&expected))?;
        return single(Sched::Explore {
            preemptions: c as u8,
        });
    }
    if let Some(rest) = t.strip_prefix("pct:") {
        let base = "pct:".len();
        let Some((seed, _)) = rest.split_once(':') else {
            return Err(first.error("pct:SEED:DEPTH"));
        };
        let seed_end = base + seed.len();
        let seed = number(&first.sub(base, seed_end), "SEED")?;
        let depth_tok = first.sub(seed_end + 1, t.len());
        let depth = number(&depth_tok, "DEPTH")?;
        let depth = u32::try_from(depth)
            .ok()
            .filter(|&d| d >= 1)
            .ok_or_else(|| depth_tok.error("a DEPTH of at least 1 (32 bits)"))?;
        return single(Sched::Pct { seed, depth });
    }
    if t.starts_with("random:") {
        let seed = number(&first.sub("random:".len(), t.len()), "SEED")?;
        return single(Sched::Random { seed });
    }
    let (strict, items) = match t {
        "!" => (true, &toks[1..]),
        _ => (false, toks),
    };
    if items.is_empty() {
        return Err(ParseError {
            line: first.line,
            col: first.end(),
            expected: "a run-length item (X<n>, X..LABEL or X*) after `!`".to_string(),
            found: END_OF_LINE.to_string(),
        });
    }
    let items = items
        .iter()
        .map(|tok| run_item(tok, actors, tok.col == first.col))
        .collect::<Result<_, _>>()?;
    Ok(Sched::Steps { strict, items })
}

/// One run-length item: `X<n>`, `X..LABEL` or `X*`. The first token of a
/// schedule that is no item is reported as a bad schedule.
fn run_item(tok: &Tok<'_>, actors: usize, first: bool) -> Result<RunItem, ParseError> {
    let last = Block::letter(actors - 1);
    let letter = tok.text.chars().next().expect("a token is not empty");
    let actor = match letter {
        'A'..='H' if (letter as usize - 'A' as usize) < actors => letter as u8 - b'A',
        'A'..='Z' => {
            return Err(tok
                .sub(0, 1)
                .error(&format!("an actor of this block (A to {last})")));
        }
        _ if first => return Err(tok.error(EXPECTED_SCHED)),
        _ => {
            return Err(tok.error(&format!(
                "a run-length item (X<n>, X..LABEL or X*, X from A to {last})"
            )));
        }
    };
    let rest = &tok.text[1..];
    let stop = if rest == "*" {
        RunStop::End
    } else if let Some(label) = rest.strip_prefix("..") {
        if !is_label(label) {
            return Err(tok.sub(3, tok.text.len()).error(
                "a step name (a letter, digit or `_`, then letters, digits and `_ . # [ ] + -`)",
            ));
        }
        RunStop::Until(label.to_string())
    } else if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return Err(tok
            .sub(1, tok.text.len())
            .error("a step count, `..LABEL` or `*`"));
    } else {
        let n_tok = tok.sub(1, tok.text.len());
        let n = number(&n_tok, "a step count")?;
        if n == 0 {
            return Err(n_tok.error("a step count of at least 1"));
        }
        RunStop::Steps(n)
    };
    Ok(RunItem { actor, stop })
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

    /// The column just past the token.
    fn end(&self) -> usize {
        self.col + self.text.chars().count()
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

/// The operand tokens of one op, tracking where a missing one goes.
struct Cursor<'t, 'a> {
    toks: &'t [Tok<'a>],
    line: usize,
    /// Column just past the last token returned (where a missing one goes).
    end_col: usize,
    /// The `||` or `@` that ends the op (column, quoted text), if any: a
    /// missing operand is reported there.
    stop: Option<(usize, String)>,
    /// What may follow the op.
    end_what: &'static str,
}

impl<'t, 'a> Cursor<'t, 'a> {
    fn new(toks: &'t [Tok<'a>], line: usize, end_col: usize) -> Self {
        Cursor {
            toks,
            line,
            end_col,
            stop: None,
            end_what: END_OF_LINE,
        }
    }

    fn next(&mut self) -> Option<Tok<'a>> {
        let (tok, rest) = self.toks.split_first()?;
        self.toks = rest;
        self.end_col = tok.end();
        Some(Tok { ..*tok })
    }

    /// The next token, or an error at the end of the line.
    fn expect(&mut self, expected: &str) -> Result<Tok<'a>, ParseError> {
        self.next().ok_or_else(|| self.missing(expected))
    }

    fn missing(&self, expected: &str) -> ParseError {
        let (col, found) = match &self.stop {
            Some((col, text)) => (*col, text.clone()),
            None => (self.end_col, END_OF_LINE.to_string()),
        };
        ParseError {
            line: self.line,
            col,
            expected: expected.to_string(),
            found,
        }
    }

    /// Succeeds when nothing is left.
    fn finish(&mut self) -> Result<(), ParseError> {
        self.finish_or(self.end_what)
    }

    fn finish_or(&mut self, expected: &str) -> Result<(), ParseError> {
        match self.next() {
            None => Ok(()),
            Some(tok) => Err(tok.error(expected)),
        }
    }

    /// `word`, if the next token is it; `Ok(false)` at the end; otherwise
    /// an error expecting `word` or the end.
    fn optional(&mut self, word: &str) -> Result<bool, ParseError> {
        match self.next() {
            None => Ok(false),
            Some(tok) if tok.text == word => Ok(true),
            Some(tok) => Err(tok.error(&format!("`{word}` or {}", self.end_what))),
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
fn parse_op(
    first: &Tok<'_>,
    cur: &mut Cursor<'_, '_>,
    expected_op: &str,
) -> Result<Op, ParseError> {
    let op = match first.text {
        "mmap" => {
            let pid = cur.pid()?;
            let addr = cur.number("ADDR")?;
            let len = cur.number("LEN")?;
            let prot = cur.prot()?;
            let kind = cur.kind()?;
            let replace = cur.optional("replace")?;
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
                    let dontunmap = cur.optional("dontunmap")?;
                    Some(MremapTo { new, dontunmap })
                }
                Some(tok) => return Err(tok.error(&format!("`to NEW` or {}", cur.end_what))),
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
        "referenced" => Op::Referenced {
            pid: cur.pid()?,
            addr: cur.number("ADDR")?,
        },
        "exec-stack" => Op::ExecStack {
            pid: cur.pid()?,
            addr: cur.number("ADDR")?,
            len: cur.number("LEN")?,
        },
        "exec-shift" => Op::ExecShift {
            pid: cur.pid()?,
            shift: cur.number("SHIFT")?,
        },
        "fail-alloc" => Op::FailAlloc {
            n: cur.number("N")?,
        },
        "dump" => Op::Dump,
        _ => return Err(first.error(expected_op)),
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
/// prints to a stream that parses back to the same version, ops, blocks and
/// schedules (at the canonical lines) and prints the same again (the
/// canonical print is a fixed point).
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
        assert_eq!(again.version, s.version, "print/parse changed the version");
        let mut renumbered = s.clone();
        renumbered.renumber();
        assert_eq!(
            again, renumbered,
            "print/parse round trip changed the blocks or schedules"
        );
        assert_eq!(
            crate::print::print(&again),
            printed,
            "print is not canonical"
        );
    }
}
