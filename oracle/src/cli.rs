//! The CLI's subcommands, as library functions (the binary only parses
//! arguments). Exit statuses follow ops-v1: 0 pass, 1 a failed invariant,
//! 2 bad input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::bugs::CATALOGUE;
use crate::design::DesignSpec;
use crate::ops::{Stream, parse::parse, print::print};
use crate::report;
use crate::runner::{RunOptions, run_all};

/// Exit status for a failed invariant.
pub const EXIT_FAIL: u8 = 1;
/// Exit status for bad input (unreadable or malformed file, bad arguments).
pub const EXIT_BAD_INPUT: u8 = 2;

/// Prints a usage error and returns status 2.
pub fn usage_error(msg: &str) -> ExitCode {
    eprintln!("rmaplab: {msg}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// Reads and parses a `.ops` file; the error is ready to print
/// (`FILE:LINE:COL: ...`).
pub fn load(path: &Path) -> Result<Stream, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}:{}:{}: {}", path.display(), e.line, e.col, e))
}

/// The command that replays `path` with `specs`.
pub fn replay_command(path: &Path, spec: &DesignSpec) -> String {
    format!("rmaplab run {} {}", path.display(), spec.cli_flags())
}

/// `rmaplab run`.
pub fn run(path: &Path, specs: &[DesignSpec], json: bool, stats: bool) -> ExitCode {
    let stream = match load(path) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    let mut runs = Vec::new();
    for spec in specs {
        let opts = RunOptions {
            replay: Some(replay_command(path, spec)),
            ..RunOptions::default()
        };
        runs.push(spec.run(&stream, &opts));
    }
    let cmp = crate::runner::compare_runs(&runs);
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
    for b in CATALOGUE {
        println!(
            "{:<5} {:<17} {:<6} {:<12} {:<12} {}",
            b.id,
            b.design.name(),
            b.era.map(|e| e.name()).unwrap_or("-"),
            b.years,
            b.invariant,
            b.title
        );
        println!("{:<56} commit {}", "", b.commit);
        if let Err(why) = b.injectable {
            println!("{:<56} not injectable: {why}", "");
        }
    }
    ExitCode::SUCCESS
}

/// Runs `stream` on every spec and says whether everything passed.
pub fn passes(stream: &Stream, specs: &[DesignSpec]) -> bool {
    let (runs, cmp) = run_all(stream, specs, &RunOptions::fuzzing());
    runs.iter().all(|r| r.passed()) && cmp.failure.is_none()
}
