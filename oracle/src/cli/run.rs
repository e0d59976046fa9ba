//! `rmaplab run`, `check`, `fmt` and `bugs`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rmaplab::run::report;
use rmaplab::run::runner::{RunOptions, run_all};
use rmaplab_impls::designs::registry::{DesignSpec, catalogue};
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
    if json {
        let v = report::report_json(&runs, &cmp, stats);
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("JSON values always serialise")
        );
    } else {
        print!("{}", report::report_text(&runs, &cmp, stats));
    }
    if runs.iter().all(|r| r.passed()) && cmp.failure.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAIL)
    }
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

/// `rmaplab bugs`.
pub fn bugs() -> ExitCode {
    println!(
        "{:<5} {:<17} {:<6} {:<12} {:<12} title / commit / injectable",
        "id", "design", "era", "years", "invariant"
    );
    for (design, b) in catalogue() {
        println!(
            "{:<5} {:<17} {:<6} {:<12} {:<12} {}",
            b.id,
            design.name(),
            b.era.unwrap_or("-"),
            b.years,
            b.invariant,
            b.title
        );
        println!("{:<56} commit {}", "", b.commit);
        if let Some(why) = b.why_not() {
            println!("{:<56} not injectable: {why}", "");
        }
    }
    ExitCode::SUCCESS
}
