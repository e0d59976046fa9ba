//! `rmaplab fuzz`, `import`, `shrink`, `seeds`, `bench`, `hunt` and
//! `hunt-table`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use rmaplab::fuzz::bench;
use rmaplab::fuzz::engine::{
    EngineConfig, Finding, Progress, check_stream, collect_ops, corpus_file, finding_file,
    import_file, run_engine, run_engine_with, seeds_from_dir, try_specs_from_env,
};
use rmaplab::fuzz::shrink::{self, signature};
use rmaplab::fuzz::zoo::{self, Engine};
use rmaplab_impls::designs::registry::{DesignSpec, canonical_specs, catalogue, select};
use rmaplab_ops::decode::{DecodeConfig, encode};

use super::{EXIT_FAIL, fresh_seed, load, usage_error, write_or_print};

/// Arguments of `rmaplab fuzz`.
#[derive(Clone, Debug)]
pub struct FuzzArgs {
    /// `None`: 60 s, or no time limit when `execs` is set.
    pub seconds: Option<u64>,
    pub jobs: Option<usize>,
    pub execs: Option<u64>,
    /// `None`: a fresh seed, printed first.
    pub seed: Option<u64>,
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
    let seed = a.seed.unwrap_or_else(fresh_seed);
    eprintln!("seed {seed} (repeat this run with --seed {seed})");
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let seconds = a
        .seconds
        .unwrap_or(if a.execs.is_some() { u64::MAX } else { 60 });
    let seeds = seeds_from_dir(&a.seeds, &decode);
    let labels: Vec<String> = a.specs.iter().map(DesignSpec::label).collect();
    let budget = match (seconds, a.execs) {
        (u64::MAX, Some(n)) => format!("{n} execs"),
        (s, Some(n)) => format!("{s}s or {n} execs"),
        (s, None) => format!("{s}s"),
    };
    eprintln!(
        "rmaplab fuzz: {} for {budget} on {jobs} job(s), {} seed input(s) from {}, window {} \
         pages, ≤{} ops, failures to {}",
        labels.join(", "),
        seeds.len(),
        a.seeds.display(),
        a.window,
        a.max_ops,
        a.out.display()
    );
    let cfg = EngineConfig {
        seconds,
        max_execs: a.execs,
        jobs,
        seed,
        decode,
        specs: a.specs.clone(),
        baseline: Vec::new(),
        out_dir: Some(a.out.clone()),
        seeds,
        stop_on_failure: !a.keep_going,
        progress: true,
    };
    let st = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(1000).with_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        let st = run_engine_with(&cfg, |p| {
            let (done, left) = budget_used(p, seconds, a.execs);
            bar.set_position((done * 1000.0) as u64);
            bar.set_message(format!(
                "{} left, {:.0} execs/s, findings {}, execs {}, kept inputs {}",
                left.map_or("?".into(), |d| format!("{}s", d.as_secs())),
                p.execs as f64 / p.elapsed.as_secs_f64().max(1e-9),
                p.findings,
                p.execs,
                p.kept_inputs
            ));
        });
        bar.finish_and_clear();
        st
    } else {
        // A plain line every 10 s.
        run_engine(&cfg)
    };
    let secs = st.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "done: {} execs in {:.1}s ({:.0}/s, {:.0}/s per job), {} ops, op kinds {}/{} [{}], \
         op pairs {}/{}, deepest fork chain {}, kept inputs {}, kernel-path features {}",
        st.execs,
        secs,
        st.execs as f64 / secs,
        st.execs as f64 / secs / jobs as f64,
        st.ops,
        st.op_kinds.len(),
        rmaplab_ops::decode::DECODED_OP_KINDS,
        st.op_kinds.iter().copied().collect::<Vec<_>>().join(" "),
        st.op_pairs,
        rmaplab_ops::decode::DECODED_OP_KINDS * rmaplab_ops::decode::DECODED_OP_KINDS,
        st.max_fork_depth,
        st.kept_inputs,
        st.path_features
    );
    if st.mmu.known_races > 0 {
        eprintln!(
            "known races: {} run(s) of a configuration as its era shipped failed in a block \
             with a race its kernel had (not findings; see `DesignSpec::known_race`, \
             docs/designs.md)",
            st.mmu.known_races
        );
    }
    if st.findings.is_empty() {
        eprintln!("no failure");
        return ExitCode::SUCCESS;
    }
    for (f, path) in &st.findings {
        println!("FAIL {}", f.report.lines().next().unwrap_or_default());
        if let Some(p) = path {
            // A `layout` failure replays with the design it was compared
            // with: the default run has every canonical design.
            let spec = a
                .specs
                .iter()
                .find(|s| s.label() == f.signature.who)
                .filter(|_| f.signature.invariant != rmaplab::oracle::check::invariant::LAYOUT);
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

/// How much of the budget `p` has used (0..=1) and the time left: by the
/// clock, or by the exec rate so far when an exec budget ends sooner.
fn budget_used(p: &Progress, seconds: u64, execs: Option<u64>) -> (f64, Option<Duration>) {
    let elapsed = p.elapsed.as_secs_f64();
    let mut used = 0.0f64;
    let mut left: Option<f64> = None;
    if seconds != u64::MAX {
        used = elapsed / seconds.max(1) as f64;
        left = Some((seconds as f64 - elapsed).max(0.0));
    }
    if let Some(n) = execs {
        let fraction = p.execs as f64 / n.max(1) as f64;
        used = used.max(fraction);
        if p.execs > 0 {
            let rate = p.execs as f64 / elapsed.max(1e-9);
            let by_execs = (n.saturating_sub(p.execs)) as f64 / rate;
            left = Some(left.map_or(by_execs, |l| l.min(by_execs)));
        }
    }
    (used.min(1.0), left.map(Duration::from_secs_f64))
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
/// Each file that is not written is named with the reason.
pub fn seeds(dir: &Path, out: &Path) -> ExitCode {
    let cfg = DecodeConfig::default();
    let mut files = Vec::new();
    collect_ops(dir, &mut files);
    if files.is_empty() {
        return usage_error(&format!("{}: no .ops files", dir.display()));
    }
    if let Err(e) = std::fs::create_dir_all(out) {
        return usage_error(&format!("{}: {e}", out.display()));
    }
    let (mut ok, mut skipped) = (0, 0);
    for f in &files {
        let bytes = load(f).and_then(|s| {
            encode(&s, &cfg).map_err(|e| {
                format!(
                    "{}: not encodable with the default decoder settings: {e}",
                    f.display()
                )
            })
        });
        let written = bytes.and_then(|bytes| {
            let name = f.file_stem().map(|s| s.to_string_lossy().to_string());
            let p = out.join(format!("{}.bin", name.unwrap_or_default()));
            std::fs::write(&p, bytes).map_err(|e| format!("{}: cannot write: {e}", p.display()))
        });
        match written {
            Ok(()) => ok += 1,
            Err(why) => {
                eprintln!("skipped {why}");
                skipped += 1;
            }
        }
    }
    eprintln!(
        "{ok} seed(s) written to {}, {skipped} file(s) skipped",
        out.display()
    );
    ExitCode::SUCCESS
}

/// `rmaplab bench`: the figures, measured here (or, with `--emit-inputs`,
/// the throughput streams written as fuzzer inputs, nothing measured; with
/// `--without`, only what the named checks cost).
pub fn bench(
    specs: &[DesignSpec],
    execs: usize,
    rss_execs: usize,
    emit_inputs: Option<&Path>,
    without: Option<&str>,
) -> ExitCode {
    if let Some(names) = without {
        let without = match rmaplab::run::runner::Without::parse(names) {
            Ok(w) => w,
            Err(e) => return usage_error(&e),
        };
        return match bench::checks_cost(&mut std::io::stdout().lock(), specs, execs, without) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rmaplab: {e}");
                ExitCode::from(EXIT_FAIL)
            }
        };
    }
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
    /// The zoo file is written to `out/zoo/ID.ops`.
    pub out: PathBuf,
    /// Also write `corpus/zoo/ID.ops` (relative to the current folder,
    /// which must be the repository's root).
    pub update_zoo: bool,
}

/// `rmaplab hunt`: fuzz one re-injected bug until the oracle fails, report
/// time and execs to the first failure, shrink, and write a zoo file that
/// must fail under the bug and pass on every canonical design.
pub fn hunt(a: &HuntArgs) -> ExitCode {
    let zoo_dir = Path::new("corpus/zoo");
    if a.update_zoo && !zoo_dir.is_dir() {
        return usage_error(&format!(
            "--update-zoo writes {}/{}.ops: run it from the repository's root",
            zoo_dir.display(),
            a.bug
        ));
    }
    let bugs = zoo::hunt_bugs(&a.bug);
    let specs = match select(&[], None, &bugs) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    if bugs.len() > 1 {
        println!(
            "{} shows only with {} injected too: hunting {}",
            a.bug,
            bugs[1..].join(", "),
            specs[0].label()
        );
    }
    let engine: Engine = match a.engine.parse() {
        Ok(e) => e,
        Err(e) => return usage_error(&e),
    };
    let baseline = zoo::hunt_baseline(&a.bug);
    let hunt = match zoo::hunt(engine, &specs, &baseline, a.seconds, a.seed) {
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
    let zoo_stream = zoo::zoo_stream(&specs[0], &found);
    if let Err(f) = check_stream(&zoo_stream, &canonical) {
        eprintln!(
            "the shrunk stream also fails a canonical design — not the injected bug alone:\n{}",
            f.report
        );
        // A finding of its own: kept as a corpus file to replay and shrink.
        let origin = format!(
            "found by `rmaplab hunt --bug {} --engine {} --seed {}` (shrunk for the bug); it \
             fails a canonical design too",
            a.bug, a.engine, a.seed
        );
        let text = corpus_file(&f.stream, &f.signature, &canonical, &origin);
        let path = a
            .out
            .join("found")
            .join(format!("hunt-{}-{}-seed{}.ops", a.bug, a.engine, a.seed));
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &text));
        match written {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(e) => eprintln!("{}: cannot write: {e}", path.display()),
        }
        return ExitCode::from(EXIT_FAIL);
    }
    let text = zoo::zoo_file(&a.bug, &specs[0], &found, &hunt, &a.engine, a.seed);
    let mut paths = vec![a.out.join("zoo").join(format!("{}.ops", a.bug))];
    if a.update_zoo {
        paths.push(zoo_dir.join(format!("{}.ops", a.bug)));
    }
    for path in &paths {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, &text));
        if let Err(e) = written {
            return usage_error(&format!("{}: cannot write: {e}", path.display()));
        }
        println!("wrote {}", path.display());
    }
    if !a.update_zoo {
        println!(
            "(`--update-zoo` writes it to {}/{}.ops, the regression file `cargo test` replays)",
            zoo_dir.display(),
            a.bug
        );
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
        let specs = match select(&[], None, &zoo::hunt_bugs(bug)) {
            Ok(s) => s,
            Err(e) => return usage_error(&e),
        };
        for &engine in &engines {
            let baseline = zoo::hunt_baseline(bug);
            let row = zoo::hunt_row(
                engine,
                &specs,
                &baseline,
                seeds.max(1),
                seconds,
                |seed, h| {
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
                },
            );
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
