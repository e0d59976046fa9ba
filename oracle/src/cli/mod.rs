//! The subcommands of the `rmaplab` binary: each turns its parsed arguments
//! into calls of the library and prints the result. Exit statuses follow
//! `docs/op-language.md`: 0 pass, 1 a failed invariant, 2 bad input (and 3
//! for `rmaplab kernel` when the host cannot serve).

use std::path::Path;
use std::process::ExitCode;

use rmaplab_ops::{Stream, parse::parse};

pub mod fuzz;
pub mod kernel;
pub mod run;

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
    parse(&text).map_err(|e| {
        format!(
            "{}:{}:{}: expected {}, found {}",
            path.display(),
            e.line,
            e.col,
            e.expected,
            e.found
        )
    })
}

/// Writes `text` to `out`, or prints it.
pub fn write_or_print(out: Option<&Path>, text: &str) -> ExitCode {
    match out {
        Some(p) => match std::fs::write(p, text) {
            Ok(()) => {
                eprintln!("wrote {}", p.display());
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(&format!("{}: cannot write: {e}", p.display())),
        },
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
    }
}
