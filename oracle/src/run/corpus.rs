//! Regression files: `.ops` streams whose comment header states what must
//! happen when they run. `cargo test` replays every file under `corpus/`
//! as its own test case.
//!
//! Header lines (comments anywhere in the file; the stream itself is the
//! rest of the file):
//!
//! ```text
//! # expect: pass                           every canonical design passes
//! # expect [chain-2010 era=2015]: fail findability
//! # expect [single-list-2004 bug=b01]: fail findability
//! # dump 1: p0 vmas 0-8 8-12:r--p          layout at the first `dump`
//! # dump 1 [single-list-2004]: p0 vmas 0-12   what that design shows instead
//! # dump 1: p1 pages 0:f0/2 1:Z/0 3:f2/1    present pages: class/mapcount
//! # final: p0 vmas 0-4                      the state after the last op
//! ```
//!
//! A `[SPEC]` is a design name followed by `era=YEAR` and `bug=ID` words
//! (a `DesignSpec` of the registry, as it spells itself).
//! `expect` lines without a spec apply to every canonical design; with a
//! spec they add a run of that configuration (or override the canonical
//! one). A VMA is `START-END[:PERMS[:KIND[:OFFSET]]]` with defaults `rw-p`,
//! `anon`, `0`; a page cell is `PAGE:CLASS/MAPCOUNT`, classes numbered over
//! the whole dump as reports do. `dump` expectations without a spec apply to
//! every run that passes; a spec-specific line replaces the general one for
//! that run. A file with no `expect` line is expected to pass.

use std::collections::BTreeMap;
use std::path::Path;

use rmaplab_impls::designs::registry::{DesignSpec, canonical_specs};

use super::report::canonicalize;
use super::runner::{RunOptions, RunReport, compare_runs, run_spec};
use crate::ops::{Stream, parse::parse};

/// What a run must end with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(String),
}

/// Which dump: the N-th `dump` op (1-based) or the state after the last op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DumpRef {
    Nth(usize),
    Final,
}

/// One expected field of one process at one dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpExpect {
    pub spec: Option<DesignSpec>,
    pub dump: DumpRef,
    pub pid: String,
    /// `vmas` or `pages`
    pub field: String,
    /// Normalised expected text.
    pub value: String,
    pub line: usize,
}

/// A parsed regression file.
#[derive(Clone, Debug)]
pub struct CorpusFile {
    pub stream: Stream,
    /// Runs to make and what each must give.
    pub expects: Vec<(DesignSpec, Verdict)>,
    pub dumps: Vec<DumpExpect>,
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
        out.push(format!("{s}-{e}:{perms}:{kind}:{off}"));
    }
    Ok(out.join(" "))
}

fn normalise_pages(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses a regression file's text.
pub fn parse_corpus(text: &str) -> Result<CorpusFile, String> {
    let stream = parse(text).map_err(|e| format!("{}:{}: {e}", e.line, e.col))?;
    let mut general: Option<Verdict> = None;
    let mut specific: Vec<(DesignSpec, Verdict)> = Vec::new();
    let mut dumps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let Some(body) = raw.trim_start().strip_prefix('#') else {
            continue;
        };
        let Some((key, spec, value)) = split_directive(body.trim()) else {
            continue;
        };
        let err = |m: String| format!("line {line}: {m}");
        let spec = spec
            .map(str::parse::<DesignSpec>)
            .transpose()
            .map_err(err)?;
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
            match spec {
                None => general = Some(verdict),
                Some(s) => specific.push((s, verdict)),
            }
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
            dumps.push(DumpExpect {
                spec,
                dump,
                pid,
                field,
                value,
                line,
            });
        }
    }
    let mut expects: Vec<(DesignSpec, Verdict)> = Vec::new();
    let general = general.unwrap_or(Verdict::Pass);
    for s in canonical_specs() {
        if !specific.iter().any(|(sp, _)| *sp == s) {
            expects.push((s, general.clone()));
        }
    }
    expects.extend(specific);
    Ok(CorpusFile {
        stream,
        expects,
        dumps,
    })
}

/// The normalised `vmas` and `pages` text of every process at a dump.
fn observed(
    run: &RunReport,
    dump: DumpRef,
    dump_ops: usize,
) -> Option<BTreeMap<(String, String), String>> {
    let d = match dump {
        DumpRef::Final => run.dumps.last()?,
        // Recorded dumps are one per `dump` op, then the final state unless
        // the stream ends with `dump`.
        DumpRef::Nth(n) => {
            if n == 0 || n > dump_ops {
                return None;
            }
            run.dumps.get(n - 1)?
        }
    };
    let mut m = BTreeMap::new();
    for p in canonicalize(&d.state) {
        let vmas: Vec<String> = p
            .vmas
            .iter()
            .map(|(s, e, perms, kind, off)| format!("{s}-{e}:{perms}:{kind}:{off}"))
            .collect();
        let pages: Vec<String> = p
            .pages
            .iter()
            .map(|(pg, c, n)| format!("{pg}:{c}/{n}"))
            .collect();
        m.insert((p.pid.clone(), "vmas".into()), vmas.join(" "));
        m.insert((p.pid.clone(), "pages".into()), pages.join(" "));
    }
    Some(m)
}

/// Runs a regression file and checks every expectation; the error lists
/// every mismatch.
pub fn check_corpus(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let file = parse_corpus(&text)?;
    let mut problems = Vec::new();
    let mut passing_runs = Vec::new();
    for (spec, want) in &file.expects {
        let opts = RunOptions {
            replay: Some(spec.replay_command(path)),
            ..RunOptions::default()
        };
        let run = run_spec(&file.stream, spec, &opts);
        let got = match &run.failure {
            None => Verdict::Pass,
            Some(f) => Verdict::Fail(f.broken.invariant.clone()),
        };
        if &got != want {
            let detail = run
                .failure
                .as_ref()
                .map(|f| format!("\n  {f}"))
                .unwrap_or_default();
            problems.push(format!(
                "{}: expected {want:?}, got {got:?}{detail}",
                spec.label()
            ));
            continue;
        }
        if got == Verdict::Pass {
            check_dumps(&file, spec, &run, &mut problems);
            if spec.bugs.is_empty() {
                passing_runs.push(run);
            }
        }
    }
    let cmp = compare_runs(&passing_runs);
    if let Some(f) = cmp.failure {
        problems.push(format!("designs disagree: {f}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn check_dumps(file: &CorpusFile, spec: &DesignSpec, run: &RunReport, problems: &mut Vec<String>) {
    // For each (dump, pid, field): the spec-specific line if any, else the
    // general one.
    let mut chosen: BTreeMap<(DumpRef, String, String), &DumpExpect> = BTreeMap::new();
    for d in &file.dumps {
        let key = (d.dump, d.pid.clone(), d.field.clone());
        match &d.spec {
            Some(s) if s == spec => {
                chosen.insert(key, d);
            }
            Some(_) => {}
            None => {
                chosen.entry(key).or_insert(d);
            }
        }
    }
    for ((dump, pid, field), exp) in chosen {
        let dump_ops = file
            .stream
            .ops
            .iter()
            .filter(|o| matches!(o, crate::ops::Op::Dump))
            .count();
        let Some(obs) = observed(run, dump, dump_ops) else {
            problems.push(format!(
                "{}: line {}: the stream has no {dump:?}",
                spec.label(),
                exp.line
            ));
            continue;
        };
        let got = obs
            .get(&(pid.clone(), field.clone()))
            .cloned()
            .unwrap_or_else(|| "(no such process)".into());
        if got != exp.value {
            problems.push(format!(
                "{}: line {}: {pid} {field} at {dump:?}\n  expected {}\n  got      {}",
                spec.label(),
                exp.line,
                exp.value,
                got
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
