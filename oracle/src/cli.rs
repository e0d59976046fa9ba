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

/// Arguments of `rmaplab fuzz`.
#[derive(Clone, Debug)]
pub struct FuzzArgs {
    pub seconds: u64,
    pub jobs: Option<usize>,
    pub execs: Option<u64>,
    pub seed: u64,
    pub specs: Vec<DesignSpec>,
    pub out: PathBuf,
    pub seeds: PathBuf,
    pub window: u64,
    pub max_ops: usize,
    pub keep_going: bool,
}

/// `rmaplab fuzz`: the built-in engine.
pub fn fuzz(a: &FuzzArgs) -> ExitCode {
    use crate::fuzzing::{EngineConfig, run_engine, seeds_from_dir};
    use crate::ops::decode::DecodeConfig;
    if a.window == 0 || a.window > rmaplab_impls::op::WINDOW_PAGES {
        return usage_error("--window must be 1..=256 pages");
    }
    let decode = DecodeConfig {
        window_len: a.window,
        max_ops: a.max_ops,
        ..DecodeConfig::default()
    };
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let seeds = seeds_from_dir(&a.seeds, &decode);
    let labels: Vec<String> = a.specs.iter().map(DesignSpec::label).collect();
    eprintln!(
        "rmaplab fuzz: {} for {}s on {jobs} job(s), seed {}, {} seed input(s), window {} pages, \
         ≤{} ops",
        labels.join(", "),
        a.seconds,
        a.seed,
        seeds.len(),
        a.window,
        a.max_ops
    );
    let cfg = EngineConfig {
        seconds: a.seconds,
        max_execs: a.execs,
        jobs,
        seed: a.seed,
        decode,
        specs: a.specs.clone(),
        out_dir: Some(a.out.clone()),
        seeds,
        stop_on_failure: !a.keep_going,
        progress: true,
    };
    let st = run_engine(&cfg);
    let secs = st.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "done: {} execs in {:.1}s ({:.0}/s, {:.0}/s per job), {} ops, op kinds {}/14 [{}], \
         deepest fork chain {}",
        st.execs,
        secs,
        st.execs as f64 / secs,
        st.execs as f64 / secs / jobs as f64,
        st.ops,
        st.op_kinds.len(),
        st.op_kinds.iter().copied().collect::<Vec<_>>().join(" "),
        st.max_fork_depth
    );
    if st.findings.is_empty() {
        eprintln!("no failure");
        return ExitCode::SUCCESS;
    }
    for (f, path) in &st.findings {
        println!("FAIL {}", f.report.lines().next().unwrap_or_default());
        if let Some(p) = path {
            let spec = a.specs.iter().find(|s| s.label() == f.signature.who);
            match spec {
                Some(s) => println!("  replay: {}", replay_command(p, s)),
                None => println!("  replay: rmaplab run {}", p.display()),
            }
        }
    }
    if let (Some(n), Some(t)) = (st.execs_to_first_failure, st.time_to_first_failure) {
        eprintln!("first failure after {n} execs, {:.2}s", t.as_secs_f64());
    }
    ExitCode::from(EXIT_FAIL)
}

/// `rmaplab import`: fuzzer bytes → `.ops` (default decoder settings, as
/// the cargo-fuzz and AFL targets use).
pub fn import(artifact: &Path, out: Option<&Path>) -> ExitCode {
    let bytes = match std::fs::read(artifact) {
        Ok(b) => b,
        Err(e) => return usage_error(&format!("{}: cannot read: {e}", artifact.display())),
    };
    let stream = crate::ops::decode::decode(&bytes, &crate::ops::decode::DecodeConfig::default());
    let header = vec![format!(
        "imported from {} ({} bytes)",
        artifact.display(),
        bytes.len()
    )];
    let text = crate::ops::print::print_with_header(&stream, &header);
    write_or_print(out, &text)
}

fn write_or_print(out: Option<&Path>, text: &str) -> ExitCode {
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

/// `rmaplab shrink`: delta debugging that keeps the same failing invariant.
pub fn shrink(path: &Path, specs: &[DesignSpec], out: Option<&Path>) -> ExitCode {
    let stream = match load(path) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    let Some(sig) = crate::shrink::signature(&stream, specs) else {
        return usage_error(&format!(
            "{} passes on the selected designs: nothing to shrink",
            path.display()
        ));
    };
    let small = crate::shrink::shrink(&stream, specs, &sig, 20_000);
    eprintln!(
        "{}: {} fails {}; shrunk {} -> {} ops",
        path.display(),
        sig.who,
        sig.invariant,
        stream.ops.len(),
        small.ops.len()
    );
    let finding = crate::fuzzing::Finding {
        stream: small,
        signature: sig,
        report: String::new(),
    };
    let text = crate::fuzzing::finding_file(&finding, specs);
    write_or_print(out, &text)
}

/// `rmaplab seeds`: encode `.ops` files as seed inputs for libFuzzer/AFL.
pub fn seeds(dir: &Path, out: &Path) -> ExitCode {
    let cfg = crate::ops::decode::DecodeConfig::default();
    let mut files = Vec::new();
    crate::fuzzing::collect_ops(dir, &mut files);
    if let Err(e) = std::fs::create_dir_all(out) {
        return usage_error(&format!("{}: {e}", out.display()));
    }
    let (mut ok, mut skipped) = (0, 0);
    for f in &files {
        let enc = load(f)
            .ok()
            .and_then(|s| crate::ops::decode::encode(&s, &cfg).ok());
        match enc {
            Some(bytes) => {
                let name = f.file_stem().map(|s| s.to_string_lossy().to_string());
                let p = out.join(format!("{}.bin", name.unwrap_or_default()));
                if std::fs::write(&p, bytes).is_ok() {
                    ok += 1;
                }
            }
            None => skipped += 1,
        }
    }
    eprintln!(
        "{ok} seed(s) written to {}, {skipped} file(s) skipped (unparsable or not encodable)",
        out.display()
    );
    ExitCode::SUCCESS
}
