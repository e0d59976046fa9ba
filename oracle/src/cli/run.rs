//! `rmaplab run`, `check`, `fmt` and `bugs`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rmaplab::run::report;
use rmaplab::run::runner::{RunOptions, run_all};
use rmaplab_impls::designs::registry::{DesignSpec, catalogue};
use rmaplab_ops::Stream;
use rmaplab_ops::print::print;

use super::{EXIT_BAD_INPUT, EXIT_FAIL, load, usage_error};

/// `rmaplab run`.
pub fn run(path: &Path, specs: &[DesignSpec], json: bool, stats: bool) -> ExitCode {
    let stream = match load(path) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    // One run_all, as the engines run them (designs of the same VMA
    // semantics are compared after every op: `layout`).
    let (mut runs, cmp) = run_all(&stream, specs, &RunOptions::default());
    for (spec, r) in specs.iter().zip(&mut runs) {
        if let Some(f) = &mut r.failure {
            f.broken.detail = format!(
                "{}\nreplay: {}",
                f.broken.detail,
                replay(path, spec, specs, &f.broken.invariant)
            );
        }
    }
    let note = letter_order_note(&stream);
    if json {
        let mut v = report::report_json(&runs, &cmp, stats);
        v.schedule = note.map(str::to_string);
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("JSON values always serialise")
        );
    } else {
        if let Some(note) = note {
            println!("schedule: {note}");
        }
        print!("{}", report::report_text(&runs, &cmp, stats));
    }
    if runs.iter().all(|r| r.passed()) && cmp.failure.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAIL)
    }
}

/// What a run of a stream with concurrent blocks did with them: until the
/// runner interleaves blocks, every consumer runs a block's ops in letter
/// order (the schedule with no preemption), and the report says so rather
/// than claim the block was explored.
fn letter_order_note(stream: &Stream) -> Option<&'static str> {
    (!stream.blocks.is_empty()).then_some("letter order (blocks not explored yet)")
}

/// The command that replays `spec`'s failure of `invariant`: `spec` alone,
/// or for `layout` with the designs of the same semantics it was compared
/// with.
fn replay(path: &Path, spec: &DesignSpec, specs: &[DesignSpec], invariant: &str) -> String {
    if invariant != rmaplab::oracle::check::invariant::LAYOUT {
        return spec.replay_command(path);
    }
    let designs: Vec<String> = specs
        .iter()
        .filter(|s| s.vma_semantics() == spec.vma_semantics())
        .map(|s| format!("--design {}", s.design))
        .collect();
    format!("rmaplab run {} {}", path.display(), designs.join(" "))
}

/// `rmaplab check`: parse only.
pub fn check(files: &[PathBuf]) -> ExitCode {
    let mut bad = false;
    for f in files {
        match load(f) {
            Ok(s) => println!("{}: ok, {} ops", f.display(), s.ops.len()),
            Err(e) => {
                eprintln!("{e}");
                bad = true;
            }
        }
    }
    if bad {
        ExitCode::from(EXIT_BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    }
}

/// `rmaplab fmt`: canonical print.
pub fn fmt(path: &Path) -> ExitCode {
    match load(path) {
        Ok(s) => {
            print!("{}", print(&s));
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(&e),
    }
}

/// `rmaplab bugs`: one row per bug, columns as wide as their longest
/// entry; the commit and the reason a bug cannot be injected go under the
/// title.
pub fn bugs() -> ExitCode {
    print!("{}", bugs_table());
    ExitCode::SUCCESS
}

fn bugs_table() -> String {
    let catalogue = catalogue();
    let rows: Vec<_> = catalogue
        .iter()
        .map(|(design, b)| {
            (
                [
                    b.id.to_string(),
                    design.name().to_string(),
                    b.era.unwrap_or("-").to_string(),
                    b.years.to_string(),
                    b.invariant.to_string(),
                ],
                b,
            )
        })
        .collect();
    let head = ["id", "design", "era", "years", "invariant"];
    let mut widths = head.map(|h| h.chars().count());
    for (cols, _) in &rows {
        for (w, c) in widths.iter_mut().zip(cols) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[&str], last: &str| {
        let mut l = String::new();
        for (c, w) in cols.iter().zip(widths) {
            l.push_str(&format!("{c:<w$}  "));
        }
        l.push_str(last);
        l.push('\n');
        l
    };
    let blank = [""; 5];
    let mut out = line(&head, "title / commit / injectable");
    for (cols, b) in &rows {
        let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
        out.push_str(&line(&cols, b.title));
        out.push_str(&line(&blank, &format!("commit {}", b.commit)));
        if let Some(why) = b.why_not() {
            out.push_str(&line(&blank, &format!("not injectable: {why}")));
        }
    }
    out
}
