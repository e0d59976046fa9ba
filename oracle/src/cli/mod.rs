//! The subcommands of the `rmaplab` binary: each turns its parsed arguments
//! into calls of the library and prints the result. Exit statuses follow
//! `docs/op-language.md`: 0 pass, 1 a failed invariant, 2 bad input (and 3
//! for `rmaplab kernel` when the host cannot serve).

use std::path::Path;
use std::process::ExitCode;

use rmaplab_ops::{Stream, parse::parse};

pub mod cost;
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
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let text = utf8(&bytes).map_err(|e| format!("{}:{e}", path.display()))?;
    parse(text).map_err(|e| {
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

/// `bytes` as text, or where the first byte that is not UTF-8 is:
/// `LINE:COL: not UTF-8: byte 0xff at offset N` (line and column 1-based,
/// the column in chars as the parser counts them).
pub fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        // The prefix up to `at` is valid UTF-8.
        let before = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        format!(
            "{}:{}: not UTF-8: byte 0x{:02x} at offset {at} (a binary file? `rmaplab import` \
             turns fuzzer inputs into .ops text)",
            before.matches('\n').count() + 1,
            before[line_start..].chars().count() + 1,
            bytes[at]
        )
    })
}

/// A seed from OS entropy, for runs given no `--seed` (printed so that
/// the run can be repeated).
pub fn fresh_seed() -> u64 {
    u64::from(rand::random::<u32>())
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
