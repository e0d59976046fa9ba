//! Regression files: `.ops` streams whose comment header states what must
//! happen when they run. `cargo test` replays every file under `corpus/`
//! as its own test case.
//!
//! The header format (`expect`, `dump N`, `final` and `outcome` lines) is
//! read by `rmaplab_ops::corpus`; this module gives its `[SPEC]`s their
//! meaning (a design name followed by `era=YEAR` and `bug=ID` words), runs
//! the stream on the designs and checks every expectation.
//!
//! `expect` lines without a spec apply to every canonical design; with a
//! spec they add a run of that configuration (or override the canonical
//! one). `dump` expectations without a spec apply to every run that passes;
//! a spec-specific line replaces the general one for that run. `outcome`
//! lines apply to every run that passes. A file with no `expect` line is
//! expected to pass.
//!
//! [`expect_lines`] writes the `expect` lines of a new file (a fuzzing
//! engine's finding) so that it passes this check as it is.

use std::collections::BTreeMap;
use std::path::Path;

use rmaplab_impls::designs::registry::{DesignSpec, canonical_specs, corpus_specs};
use rmaplab_ops::corpus::{OutcomeExpect, page_text, parse_header, vma_text};
use rmaplab_ops::{Stream, parse::parse};

pub use rmaplab_ops::corpus::{DumpRef, Verdict};

use super::report::canonicalize;
use super::runner::{RunOptions, RunReport, compare_runs, run_all, run_spec};
use crate::oracle::check::invariant;

/// One expected field of one process at one dump, for every run or for one
/// design configuration.
pub type DumpExpect = rmaplab_ops::corpus::DumpExpect<DesignSpec>;

/// A parsed regression file.
#[derive(Clone, Debug)]
pub struct CorpusFile {
    pub stream: Stream,
    /// Runs to make and what each must give.
    pub expects: Vec<(DesignSpec, Verdict)>,
    pub dumps: Vec<DumpExpect>,
    /// Stated op outcomes, for every run that passes.
    pub outcomes: Vec<OutcomeExpect>,
}

/// Parses a regression file's text.
pub fn parse_corpus(text: &str) -> Result<CorpusFile, String> {
    let stream = parse(text).map_err(|e| format!("{}:{}: {e}", e.line, e.col))?;
    let header = parse_header(text, &stream, |s| s.parse::<DesignSpec>())?;
    let mut expects: Vec<(DesignSpec, Verdict)> = Vec::new();
    let general = header.general.unwrap_or(Verdict::Pass);
    for s in corpus_specs() {
        if !header.specific.iter().any(|(sp, _)| *sp == s) {
            expects.push((s, general.clone()));
        }
    }
    // A `[SPEC]` validated as it was parsed.
    expects.extend(header.specific);
    Ok(CorpusFile {
        stream,
        expects,
        dumps: header.dumps,
        outcomes: header.outcomes,
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
            .map(|(s, e, perms, kind, off)| vma_text(*s, *e, perms, kind, *off))
            .collect();
        let pages: Vec<String> = p
            .pages
            .iter()
            .map(|(pg, c, n)| page_text(*pg, c, *n))
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
        let run = run_expecting(&file.stream, spec, want, &opts);
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
            check_outcomes(&file, spec, &run, &mut problems);
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

/// The run of `spec` a file's expectation `want` is checked against: a
/// `layout` failure shows only next to another design of the same VMA
/// semantics, so for `fail layout` the canonical design that shares
/// `spec`'s semantics runs first (as in every engine) and `spec`'s run is
/// the one compared with it; any other expectation is one run of `spec`.
fn run_expecting(
    stream: &Stream,
    spec: &DesignSpec,
    want: &Verdict,
    opts: &RunOptions,
) -> RunReport {
    let partner = canonical_specs()
        .into_iter()
        .find(|c| c.design != spec.design && c.vma_semantics() == spec.vma_semantics());
    match partner {
        Some(p) if *want == Verdict::Fail(invariant::LAYOUT.into()) => {
            let (mut runs, _) = run_all(stream, &[p, spec.clone()], opts);
            runs.pop().expect("two runs")
        }
        _ => run_spec(stream, spec, opts),
    }
}

fn check_outcomes(
    file: &CorpusFile,
    spec: &DesignSpec,
    run: &RunReport,
    problems: &mut Vec<String>,
) {
    for exp in &file.outcomes {
        let got = run
            .outcomes
            .iter()
            .find(|r| r.index == exp.op)
            .map(|r| r.outcome);
        if got != Some(exp.outcome) {
            let got = got.map_or("nothing (not executed)".to_string(), |o| o.to_string());
            problems.push(format!(
                "{}: line {}: expected outcome {}, got {got}",
                spec.label(),
                exp.line,
                exp.outcome
            ));
        }
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
            .filter(|o| matches!(o, rmaplab_ops::Op::Dump))
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

/// The `expect` lines of a corpus file of `stream`: `expect: pass`, then
/// `expect [SPEC]: fail INVARIANT` for every run the corpus checker makes
/// that fails: every canonical design, and the configurations `extra` (each
/// overriding its canonical twin).
pub fn expect_lines(stream: &Stream, extra: &[DesignSpec]) -> Vec<String> {
    let canonical = canonical_specs();
    let checked = canonical.iter().filter(|c| !extra.contains(c)).chain(extra);
    let mut expects = vec!["expect: pass".to_string()];
    for s in checked {
        // As the checker runs it (recording, which walks every page at
        // the end).
        if let Some(f) = run_spec(stream, s, &RunOptions::default()).failure {
            expects.push(format!("expect [{s}]: fail {}", f.broken.invariant));
        }
    }
    expects
}
