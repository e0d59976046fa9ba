//! `rmaplab fuzz`, `import`, `shrink`, `seeds`, `bench`, `hunt` and
//! `hunt-table`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rmaplab::fuzz::bench;
use rmaplab::fuzz::engine::{
    EngineConfig, Finding, check_stream, collect_ops, finding_file, import_file, run_engine,
    seeds_from_dir, try_specs_from_env,
};
use rmaplab::fuzz::shrink::{self, signature};
use rmaplab::fuzz::zoo::{self, Engine};
use rmaplab_impls::designs::registry::{DesignSpec, canonical_specs, catalogue, select};
use rmaplab_ops::decode::{DecodeConfig, encode};

use super::{EXIT_FAIL, load, usage_error, write_or_print};

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
    if a.window == 0 || a.window > rmaplab_ops::WINDOW_PAGES {
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
                Some(s) => println!("  replay: {}", s.replay_command(p)),
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
/// the cargo-fuzz and AFL targets use); a failing artifact (on the designs
/// of `RMAPLAB_SPECS`, as the targets read it) becomes the corpus file the
/// target printed.
pub fn import(artifact: &Path, out: Option<&Path>) -> ExitCode {
    let bytes = match std::fs::read(artifact) {
        Ok(b) => b,
        Err(e) => return usage_error(&format!("{}: cannot read: {e}", artifact.display())),
    };
    let specs = match try_specs_from_env() {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    write_or_print(out, &import_file(&bytes, artifact, &specs))
}

/// `rmaplab shrink`: delta debugging that keeps the same failing invariant.
pub fn shrink(path: &Path, specs: &[DesignSpec], out: Option<&Path>) -> ExitCode {
    let stream = match load(path) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    let Some(sig) = signature(&stream, specs) else {
        return usage_error(&format!(
            "{} passes on the selected designs: nothing to shrink",
            path.display()
        ));
    };
    let small = shrink::shrink(&stream, specs, &sig, 20_000);
    eprintln!(
        "{}: {} fails {}; shrunk {} -> {} ops",
        path.display(),
        sig.who,
        sig.invariant,
        stream.ops.len(),
        small.ops.len()
    );
    let report = check_stream(&small, specs)
        .err()
        .map(|f| f.report)
        .unwrap_or_default();
    let finding = Finding {
        stream: small,
        signature: sig,
        report,
    };
    let text = finding_file(&finding, specs);
    write_or_print(out, &text)
}

/// `rmaplab seeds`: encode `.ops` files as seed inputs for libFuzzer/AFL.
pub fn seeds(dir: &Path, out: &Path) -> ExitCode {
    let cfg = DecodeConfig::default();
    let mut files = Vec::new();
    collect_ops(dir, &mut files);
    if let Err(e) = std::fs::create_dir_all(out) {
        return usage_error(&format!("{}: {e}", out.display()));
    }
    let (mut ok, mut skipped) = (0, 0);
    for f in &files {
        let enc = load(f).ok().and_then(|s| encode(&s, &cfg).ok());
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

/// `rmaplab bench`: the figures, measured here (or, with `--emit-inputs`,
/// the throughput streams written as fuzzer inputs, nothing measured).
pub fn bench(
    specs: &[DesignSpec],
    execs: usize,
    rss_execs: usize,
    emit_inputs: Option<&Path>,
) -> ExitCode {
    if let Some(dir) = emit_inputs {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return usage_error(&format!("{}: {e}", dir.display()));
        }
        for (i, bytes) in bench::stream_inputs(execs, 64, 1).iter().enumerate() {
            let path = dir.join(format!("bench-{i:06}"));
            if let Err(e) = std::fs::write(&path, bytes) {
                eprintln!("rmaplab: {}: {e}", path.display());
                return ExitCode::from(EXIT_FAIL);
            }
        }
        println!(
            "{execs} inputs written to {} (the 64-op streams of `rmaplab bench --execs {execs}`); \
             time libFuzzer on them with\n  \
             fuzz/target/x86_64-unknown-linux-gnu/release/differential -runs=0 -print_final_stats=1 {}",
            dir.display(),
            dir.display()
        );
        return ExitCode::SUCCESS;
    }
    match bench::figures(&mut std::io::stdout().lock(), specs, execs, rss_execs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rmaplab: {e}");
            ExitCode::from(EXIT_FAIL)
        }
    }
}

/// Arguments of `rmaplab hunt`.
#[derive(Clone, Debug)]
pub struct HuntArgs {
    pub bug: String,
    pub engine: String,
    pub seconds: u64,
    pub seed: u64,
    /// Where the zoo file goes (`corpus/zoo/ID.ops`); `None`: not written.
    pub zoo: Option<PathBuf>,
}

/// `rmaplab hunt`: fuzz one re-injected bug until the oracle fails, report
/// time and execs to the first failure, shrink, and write a zoo file that
/// must fail under the bug and pass on every canonical design.
pub fn hunt(a: &HuntArgs) -> ExitCode {
    let specs = match select(&[], None, std::slice::from_ref(&a.bug)) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    let engine: Engine = match a.engine.parse() {
        Ok(e) => e,
        Err(e) => return usage_error(&e),
    };
    let hunt = match zoo::hunt(engine, &specs, a.seconds, a.seed) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("rmaplab hunt: {e}");
            return ExitCode::from(EXIT_FAIL);
        }
    };
    let Some(found) = hunt.found.clone() else {
        println!(
            "{} {} seed {}: NOT FOUND in {:.1}s ({} execs)",
            a.bug, a.engine, a.seed, hunt.seconds, hunt.execs
        );
        return ExitCode::from(EXIT_FAIL);
    };
    println!(
        "{} {} seed {}: found after {:.2}s, {} execs: {}",
        a.bug, a.engine, a.seed, hunt.seconds, hunt.execs, found.report
    );
    let canonical = canonical_specs();
    if let Err(f) = check_stream(&found.stream, &canonical) {
        eprintln!(
            "the shrunk stream also fails a canonical design — not the injected bug alone:\n{}",
            f.report
        );
        return ExitCode::from(EXIT_FAIL);
    }
    if let Some(path) = &a.zoo {
        let text = zoo::zoo_file(&a.bug, &specs[0], &found, &hunt, &a.engine, a.seed);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(path, text) {
            return usage_error(&format!("{}: cannot write: {e}", path.display()));
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

/// `rmaplab hunt-table`: per bug and engine, the median and worst
/// time-to-detect over seeds 1..=N on one core, as a Markdown table (the
/// README's table).
pub fn hunt_table(bugs: &[String], engines: &[String], seeds: u64, seconds: u64) -> ExitCode {
    let bugs: Vec<String> = if bugs.is_empty() {
        catalogue()
            .iter()
            .filter(|(_, b)| b.is_injectable())
            .map(|(_, b)| b.id.to_string())
            .collect()
    } else {
        bugs.to_vec()
    };
    let engines: Vec<Engine> = match engines.iter().map(|e| e.parse()).collect() {
        Ok(e) => e,
        Err(e) => return usage_error(&e),
    };
    println!(
        "| bug | design (era) | invariant | engine | found | median s | worst s | median execs |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for bug in &bugs {
        let specs = match select(&[], None, std::slice::from_ref(bug)) {
            Ok(s) => s,
            Err(e) => return usage_error(&e),
        };
        for &engine in &engines {
            let row = zoo::hunt_row(engine, &specs, seeds.max(1), seconds, |seed, h| {
                let status = match h {
                    Ok(h) => match &h.found {
                        Some(_) => format!("{:.2}s", h.seconds),
                        None => format!("not found in {seconds}s"),
                    },
                    Err(e) => {
                        eprintln!("{bug} {engine} seed {seed}: {e}");
                        format!("not found in {seconds}s")
                    }
                };
                eprintln!("{bug} {engine} seed {seed}: {status}");
            });
            let fmt = |t: f64| {
                if t.is_finite() {
                    format!("{t:.2}")
                } else {
                    format!(">{seconds}")
                }
            };
            println!(
                "| {bug} | {} | {} | {engine} | {}/{seeds} | {} | {} | {} |",
                specs[0].label(),
                row.invariant,
                row.found,
                fmt(row.median_time()),
                fmt(row.worst_time()),
                row.median_execs()
            );
        }
    }
    ExitCode::SUCCESS
}
