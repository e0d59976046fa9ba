//! The comment header of a corpus file: the `.ops` text of a stream whose
//! comments state what must happen when it runs (docs/op-language.md,
//! "Corpus files"). This module reads the header; running the stream and
//! checking it is the caller's (the oracle runs every design, the MMU tests
//! run the emulator on a toy design).
//!
//! Directives are comment lines of the form `# KEY [SPEC]: VALUE`; any
//! other comment is free text:
//!
//! ```text
//! # expect: pass                           every canonical design passes
//! # expect [chain-2010 era=2015]: fail findability
//! # expect [single-list-2004 bug=b01]: fail findability
//! # dump 1: p0 vmas 0-8 8-12:r--p          layout at the first `dump`
//! # dump 1 [single-list-2004]: p0 vmas 0-12   what that design shows instead
//! # dump 1: p1 pages 0:f0/2 1:Z/0 3:f2/1    present pages: class/mapcount
//! # final: p0 vmas 0-4                      the state after the last op
//! # outcome: err ENOMEM                     the outcome of the op above
//! ```
//!
//! A `[SPEC]` names a design configuration; this module keeps its text and
//! hands it to the caller's spec parser. A VMA is
//! `START-END[:PERMS[:KIND[:OFFSET]]]` with defaults `rw-p`, `anon`, `0`; a
//! page cell is `PAGE:CLASS/MAPCOUNT`, classes numbered over the whole dump
//! (`Z` for the zero page, `f0`, `f1`, ... by first appearance, processes
//! by number, pages ascending). An `outcome` line states the outcome of the
//! nearest op above it, written as reports write it (`ok`, `ok VALUE`,
//! `segv`, `sigbus`, `err ERRNO`, `unsupported`); ops without one are not
//! constrained by the header.

use crate::{Outcome, Stream};

/// What a run must end with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Fails with this invariant.
    Fail(String),
}

/// Which dump: the N-th `dump` op (1-based) or the state after the last op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DumpRef {
    Nth(usize),
    Final,
}

/// One expected field of one process at one dump. `S` is the caller's
/// parsed design spec (`String` when it keeps the text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpExpect<S = String> {
    /// The configuration the line is for; `None` for every run.
    pub spec: Option<S>,
    pub dump: DumpRef,
    /// `p0`, `p1`, ...
    pub pid: String,
    /// `vmas` or `pages`
    pub field: String,
    /// Normalised expected text: every VMA written in full
    /// ([`vma_text`]), page cells separated by single spaces.
    pub value: String,
    /// The header line (1-based).
    pub line: usize,
}

/// The stated outcome of one op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutcomeExpect {
    /// Index of the op in the stream.
    pub op: usize,
    pub outcome: Outcome,
    /// The header line (1-based).
    pub line: usize,
}

/// A corpus file's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header<S = String> {
    /// The verdict of the last `expect` line without a spec, if any.
    pub general: Option<Verdict>,
    /// `expect [SPEC]` lines, in file order.
    pub specific: Vec<(S, Verdict)>,
    pub dumps: Vec<DumpExpect<S>>,
    /// At most one per op, in op order.
    pub outcomes: Vec<OutcomeExpect>,
}

impl<S> Header<S> {
    /// The stated outcome of op `index`, if any.
    pub fn outcome_of(&self, index: usize) -> Option<Outcome> {
        self.outcomes
            .iter()
            .find(|o| o.op == index)
            .map(|o| o.outcome)
    }
}

/// Reads the header of a corpus file whose ops `stream` are (parsed from
/// the same `text`). `spec` parses the text between `[` and `]`; its error
/// is reported with the line number, as every other header error.
pub fn parse_header<S>(
    text: &str,
    stream: &Stream,
    spec: impl Fn(&str) -> Result<S, String>,
) -> Result<Header<S>, String> {
    let mut header = Header {
        general: None,
        specific: Vec::new(),
        dumps: Vec::new(),
        outcomes: Vec::new(),
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let Some(body) = raw.trim_start().strip_prefix('#') else {
            continue;
        };
        let Some((key, spec_text, value)) = split_directive(body.trim()) else {
            continue;
        };
        let err = |m: String| format!("line {line}: {m}");
        let parsed_spec = spec_text.map(&spec).transpose().map_err(err)?;
        if key == "expect" {
            let verdict = if value == "pass" {
                Verdict::Pass
            } else if let Some(inv) = value.strip_prefix("fail ") {
                Verdict::Fail(inv.trim().to_string())
            } else {
                return Err(err(format!(
                    "expected `pass` or `fail INVARIANT`, found `{value}`"
                )));
            };
            match parsed_spec {
                None => header.general = Some(verdict),
                Some(s) => header.specific.push((s, verdict)),
            }
        } else if key == "outcome" {
            if spec_text.is_some() {
                return Err(err("an outcome holds for every design: no [SPEC]".into()));
            }
            // The nearest op above this line.
            let op = stream
                .lines
                .partition_point(|&l| l < line)
                .checked_sub(1)
                .ok_or_else(|| err("an outcome line must follow an op".into()))?;
            if header.outcomes.last().is_some_and(|o| o.op == op) {
                return Err(err("a second outcome for the same op".into()));
            }
            let outcome = value.parse::<Outcome>().map_err(err)?;
            header.outcomes.push(OutcomeExpect { op, outcome, line });
        } else if let Some(d) = key
            .strip_prefix("dump ")
            .map(str::trim)
            .or(if key == "final" { Some("final") } else { None })
        {
            let dump = if d == "final" {
                DumpRef::Final
            } else {
                DumpRef::Nth(
                    d.parse()
                        .map_err(|_| err(format!("bad dump number `{d}`")))?,
                )
            };
            let mut words = value.splitn(3, char::is_whitespace);
            let pid = words.next().unwrap_or_default().to_string();
            let field = words.next().unwrap_or_default().to_string();
            let rest = words.next().unwrap_or_default();
            let value = match field.as_str() {
                "vmas" => normalise_vmas(rest).map_err(err)?,
                "pages" => normalise_pages(rest),
                _ => return Err(err(format!("expected `vmas` or `pages`, found `{field}`"))),
            };
            header.dumps.push(DumpExpect {
                spec: parsed_spec,
                dump,
                pid,
                field,
                value,
                line,
            });
        }
    }
    Ok(header)
}

/// One VMA as a normalised `vmas` expectation writes it:
/// `START-END:PERMS:KIND:OFFSET`, `KIND` being `anon`, `shared`, `file:F`
/// or `sfile:F`.
pub fn vma_text(start: u64, end: u64, perms: &str, kind: &str, offset: u64) -> String {
    format!("{start}-{end}:{perms}:{kind}:{offset}")
}

/// One page cell as a `pages` expectation writes it: `PAGE:CLASS/COUNT`.
pub fn page_text(page: u64, class: &str, count: u32) -> String {
    format!("{page}:{class}/{count}")
}

/// Splits `KEY [SPEC]: VALUE` into (key, spec, value).
fn split_directive(body: &str) -> Option<(&str, Option<&str>, &str)> {
    let (head, value) = body.split_once(':')?;
    let head = head.trim();
    if let Some(open) = head.find('[') {
        let close = head.rfind(']')?;
        Some((
            head[..open].trim(),
            Some(&head[open + 1..close]),
            value.trim(),
        ))
    } else {
        Some((head, None, value.trim()))
    }
}

/// Normalises a `vmas` expectation: every VMA written in full.
fn normalise_vmas(text: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for tok in text.split_whitespace() {
        let mut parts = tok.split(':');
        let range = parts.next().unwrap_or_default();
        let (s, e) = range
            .split_once('-')
            .ok_or_else(|| format!("bad VMA `{tok}` (expected START-END)"))?;
        let s: u64 = s.parse().map_err(|_| format!("bad VMA start in `{tok}`"))?;
        let e: u64 = e.parse().map_err(|_| format!("bad VMA end in `{tok}`"))?;
        let perms = parts.next().unwrap_or("rw-p");
        let mut kind = parts.next().unwrap_or("anon").to_string();
        let rest: Vec<&str> = parts.collect();
        // `file:1:3` splits into kind `file`, then `1`, then the offset.
        let off = if kind == "file" || kind == "sfile" {
            let f = rest
                .first()
                .ok_or_else(|| format!("`{tok}`: file kind needs F"))?;
            kind = format!("{kind}:{f}");
            rest.get(1).copied().unwrap_or("0")
        } else {
            rest.first().copied().unwrap_or("0")
        };
        let off: u64 = off.parse().map_err(|_| format!("bad offset in `{tok}`"))?;
        out.push(vma_text(s, e, perms, &kind, off));
    }
    Ok(out.join(" "))
}

fn normalise_pages(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Errno;
    use crate::parse::parse;

    #[test]
    fn vma_shorthand_expands() {
        assert_eq!(
            normalise_vmas("0-8 8-12:r--p 20-24:r--p:file:1:3 30-31:rw-s:shared:2").unwrap(),
            "0-8:rw-p:anon:0 8-12:r--p:anon:0 20-24:r--p:file:1:3 30-31:rw-s:shared:2"
        );
    }

    #[test]
    fn directives_split() {
        assert_eq!(
            split_directive("expect [chain-2010 era=2015]: fail findability"),
            Some(("expect", Some("chain-2010 era=2015"), "fail findability"))
        );
        assert_eq!(
            split_directive("dump 2: p0 vmas 0-4"),
            Some(("dump 2", None, "p0 vmas 0-4"))
        );
    }

    fn header(text: &str) -> Result<Header, String> {
        let stream = parse(text).expect("stream parses");
        parse_header(text, &stream, |s| Ok(s.to_string()))
    }

    #[test]
    fn outcomes_belong_to_the_op_above() {
        let h = header(
            "# outcome is free text here\nmmap p0 0 4 rw anon\n\nmprotect p0 2 4 r\n\
             # a comment\n# outcome: err ENOMEM\nread p0 0\n# outcome: ok 0x0\nread p0 9\n\
             # outcome: segv\n",
        )
        .unwrap();
        assert_eq!(
            h.outcomes,
            [
                OutcomeExpect {
                    op: 1,
                    outcome: Outcome::Err(Errno::ENOMEM),
                    line: 6
                },
                OutcomeExpect {
                    op: 2,
                    outcome: Outcome::Value(0),
                    line: 8
                },
                OutcomeExpect {
                    op: 3,
                    outcome: Outcome::Segv,
                    line: 10
                },
            ]
        );
        assert_eq!(h.outcome_of(1), Some(Outcome::Err(Errno::ENOMEM)));
        assert_eq!(h.outcome_of(0), None);
    }

    #[test]
    fn bad_outcome_lines_are_errors() {
        assert_eq!(
            header("# outcome: ok\nmmap p0 0 4 rw anon\n").unwrap_err(),
            "line 1: an outcome line must follow an op"
        );
        assert_eq!(
            header("mmap p0 0 4 rw anon\n# outcome: ok\n# outcome: ok\n").unwrap_err(),
            "line 3: a second outcome for the same op"
        );
        assert!(
            header("mmap p0 0 4 rw anon\n# outcome: err ENOPE\n")
                .unwrap_err()
                .starts_with("line 2: ")
        );
        assert!(header("mmap p0 0 4 rw anon\n# outcome [chain-2010]: ok\n").is_err());
    }

    #[test]
    fn specs_go_through_the_callers_parser() {
        let text = "# expect [bad]: pass\nmmap p0 0 4 rw anon\n";
        let stream = parse(text).unwrap();
        let err = parse_header(text, &stream, |s| Err::<(), _>(format!("no design `{s}`")));
        assert_eq!(err.unwrap_err(), "line 1: no design `bad`");
        let h = header(
            "# expect: fail leak\n# expect [x y=1]: pass\nmmap p0 0 4 rw anon\ndump\n\
             # dump 1 [x y=1]: p0 vmas 0-4:r--p\n# final: p0 pages 0:Z/0  1:f0/1\n",
        )
        .unwrap();
        assert_eq!(h.general, Some(Verdict::Fail("leak".into())));
        assert_eq!(h.specific, [("x y=1".to_string(), Verdict::Pass)]);
        assert_eq!(h.dumps[0].spec.as_deref(), Some("x y=1"));
        assert_eq!(h.dumps[0].value, "0-4:r--p:anon:0");
        assert_eq!(
            (h.dumps[1].dump, h.dumps[1].value.as_str()),
            (DumpRef::Final, "0:Z/0 1:f0/1")
        );
    }
}
