//! The CLI's subcommands, as library functions (the binary only parses
//! arguments). Exit statuses follow ops-v1: 0 pass, 1 a failed invariant,
//! 2 bad input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::bugs::CATALOGUE;
use crate::design::DesignSpec;
use crate::report;
use crate::runner::{RunOptions, run_all};
use rmaplab_ops::{Stream, parse::parse, print::print};

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
    use rmaplab_ops::decode::DecodeConfig;
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
    let stream = rmaplab_ops::decode::decode(&bytes, &rmaplab_ops::decode::DecodeConfig::default());
    let header = vec![format!(
        "imported from {} ({} bytes)",
        artifact.display(),
        bytes.len()
    )];
    let text = rmaplab_ops::print::print_with_header(&stream, &header);
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
    let report = crate::fuzzing::check_stream(&small, specs)
        .err()
        .map(|f| f.report)
        .unwrap_or_default();
    let finding = crate::fuzzing::Finding {
        stream: small,
        signature: sig,
        report,
    };
    let text = crate::fuzzing::finding_file(&finding, specs);
    write_or_print(out, &text)
}

/// `rmaplab seeds`: encode `.ops` files as seed inputs for libFuzzer/AFL.
pub fn seeds(dir: &Path, out: &Path) -> ExitCode {
    let cfg = rmaplab_ops::decode::DecodeConfig::default();
    let mut files = Vec::new();
    crate::fuzzing::collect_ops(dir, &mut files);
    if let Err(e) = std::fs::create_dir_all(out) {
        return usage_error(&format!("{}: {e}", out.display()));
    }
    let (mut ok, mut skipped) = (0, 0);
    for f in &files {
        let enc = load(f)
            .ok()
            .and_then(|s| rmaplab_ops::decode::encode(&s, &cfg).ok());
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

// ---------------------------------------------------------------------------
// `rmaplab kernel` and `rmaplab export-c` (issue 8)

/// Exit status of `rmaplab kernel` when the host cannot run streams on its
/// kernel (not Linux/x86_64, not root, PFNs hidden, no puppet binary).
pub const EXIT_HOST_CANNOT_SERVE: u8 = 3;

/// The designs `rmaplab kernel` compares with: the default set
/// ([`crate::kernel_diff::default_specs`]) unless `--design`, `--era` or
/// `--bug` selects others.
pub fn kernel_specs(
    designs: &[crate::design::DesignName],
    era: Option<crate::design::EraName>,
    bugs: &[String],
) -> Result<Vec<DesignSpec>, String> {
    if designs.is_empty() && era.is_none() && bugs.is_empty() {
        Ok(crate::kernel_diff::default_specs())
    } else {
        crate::design::select(designs, era, bugs)
    }
}

/// `Err(status 3)` after saying why, when the host cannot serve.
fn host_serves() -> Result<(), ExitCode> {
    crate::kernel::host_can_serve().map_err(|why| {
        eprintln!("rmaplab: this host cannot run streams on its kernel: {why}");
        ExitCode::from(EXIT_HOST_CANNOT_SERVE)
    })
}

/// `Linux 6.18.44` (the host's kernel release).
fn host_kernel_name() -> String {
    match std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        Ok(r) => format!("Linux {}", r.trim()),
        Err(_) => "the host kernel".into(),
    }
}

/// `rmaplab kernel FILE.ops`: the stream on the host kernel and on each
/// design, every outcome side by side, a diff at every dump.
pub fn kernel(path: &Path, specs: &[DesignSpec]) -> ExitCode {
    use crate::kernel_diff::{MismatchKind, run_and_compare};
    use rmaplab_ops::{Op, Outcome};
    let stream = match load(path) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    if let Err(code) = host_serves() {
        return code;
    }
    let kd = match run_and_compare(&stream, specs) {
        Ok(kd) => kd,
        Err(e) => {
            eprintln!("rmaplab: the kernel run failed: {e}");
            return ExitCode::from(EXIT_FAIL);
        }
    };
    let labels: Vec<String> = specs.iter().map(DesignSpec::label).collect();
    println!(
        "{}: {} ops on {} (this host) against {}",
        path.display(),
        stream.ops.len(),
        host_kernel_name(),
        labels.join(", ")
    );
    let mut head = format!("{:>5}  {:<36} {:<14}", "line", "op", "kernel");
    for l in &labels {
        head.push_str(&format!(" {l:<14}"));
    }
    println!("{}", head.trim_end());
    // The dump mismatches of one dump position (`None`: the final state).
    let dump_report = |pos: Option<usize>, state: &rmaplab_impls::state::State| {
        for line in report::state_text(state).lines() {
            println!("       {line}");
        }
        for sd in &kd.per_spec {
            let ms: Vec<_> = sd
                .diff
                .mismatches
                .iter()
                .filter(|m| {
                    m.op_index == pos
                        && !matches!(m.kind, MismatchKind::Outcome | MismatchKind::EmulatorFailed)
                })
                .collect();
            let noted: Vec<_> = sd.diff.noted.iter().filter(|m| m.op_index == pos).collect();
            if ms.is_empty() && noted.is_empty() {
                println!("       = {}: same", sd.spec.label());
            }
            for m in noted {
                let who = m
                    .pid
                    .as_deref()
                    .map(|p| format!("{p} "))
                    .unwrap_or_default();
                println!(
                    "       ~ {}: {who}{} (a note, not a mismatch: its merge rules are not \
                     Linux 6.18's): kernel {}, emulator {}",
                    sd.spec.label(),
                    m.kind.name(),
                    m.kernel,
                    m.emulator
                );
            }
            for m in ms {
                let who = m
                    .pid
                    .as_deref()
                    .map(|p| format!("{p} "))
                    .unwrap_or_default();
                println!(
                    "       ≠ {}: {who}{}: kernel {}, emulator {}",
                    sd.spec.label(),
                    m.kind.name(),
                    m.kernel,
                    m.emulator
                );
                if !m.detail.is_empty() {
                    println!("           {}", m.detail);
                }
            }
        }
    };
    let mut kdumps = kd.kernel.dumps.iter();
    for (i, op) in stream.ops.iter().enumerate() {
        let k = kd.kernel.outcomes.get(i).copied();
        let mut row = format!(
            "{:>5}  {:<36} {:<14}",
            stream.lines[i],
            rmaplab_ops::print::print_op(op),
            k.map_or("-".into(), |o| o.to_string())
        );
        let mut differs = false;
        for sd in &kd.per_spec {
            let e = sd.run.outcomes.iter().find(|r| r.index == i);
            row.push_str(&format!(
                " {:<14}",
                e.map_or("-".into(), |r| r.outcome.to_string())
            ));
            differs |= sd
                .diff
                .mismatches
                .iter()
                .any(|m| m.op_index == Some(i) && m.kind == MismatchKind::Outcome);
        }
        if k == Some(Outcome::Unsupported) {
            row.push_str(" (skipped: emulator-only)");
        } else if differs {
            row.push_str(" <- differs");
        }
        println!("{}", row.trim_end());
        if matches!(op, Op::Dump)
            && let Some(state) = kdumps.next()
        {
            dump_report(Some(i), state);
        }
    }
    if !matches!(stream.ops.last(), Some(Op::Dump))
        && let Some(state) = kdumps.next()
    {
        println!("final state (kernel):");
        dump_report(None, state);
    }
    println!();
    for sd in &kd.per_spec {
        let d = &sd.diff;
        if d.agrees() {
            println!(
                "{}: agrees with the kernel ({} outcome(s) and {} dump(s) compared, {} \
                 emulator-only op(s) skipped)",
                sd.spec.label(),
                d.ops_compared,
                d.dumps_compared,
                d.ops_unsupported
            );
        } else {
            println!("{}: {} mismatch(es)", sd.spec.label(), d.mismatches.len());
            for m in &d.mismatches {
                println!("  {m}");
            }
        }
        for n in &d.notes {
            println!("  note: {n}");
        }
    }
    if kd.agrees() {
        println!("verdict: agree");
        ExitCode::SUCCESS
    } else {
        println!("verdict: MISMATCH");
        ExitCode::from(EXIT_FAIL)
    }
}

/// Arguments of `rmaplab kernel --fuzz`.
#[derive(Clone, Debug)]
pub struct KernelFuzzArgs {
    pub seconds: u64,
    pub seed: u64,
    pub out: PathBuf,
    pub specs: Vec<DesignSpec>,
    /// Worker threads, each with its own backend on its own CPU.
    pub jobs: usize,
    /// Stop after this many streams (all jobs together), if set.
    pub execs: Option<u64>,
    pub max_ops: usize,
    /// Pages of the sub-window that ops address.
    pub window: u64,
    /// Longest range an op names, in pages.
    pub max_len: u64,
}

/// Pins the calling thread to the `n`-th CPU it may run on (modulo their
/// number), so that a live-kernel backend created on it uses that CPU.
fn pin_thread_to_nth_cpu(n: usize) {
    #[cfg(target_os = "linux")]
    // SAFETY: cpu_set_t is plain data (all-zero is the empty set); the
    // affinity calls get valid pointers of the size passed, and CPU_ISSET /
    // CPU_SET are given indices below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect();
        let Some(&cpu) = cpus.get(n % cpus.len().max(1)) else {
            return;
        };
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = n;
}

/// The signature a shrunk mismatch must keep: the first mismatch's design
/// and kind.
fn mismatch_signature(kd: &crate::kernel_diff::KernelDiff) -> Option<(String, &'static str)> {
    kd.mismatches()
        .first()
        .map(|(who, m)| (who.clone(), m.kind.name()))
}

/// FNV-1a of a text, for file names.
fn text_hash(text: &str) -> u32 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }) as u32
}

/// Writes a stream that the kernel and the emulator disagree on (or that
/// the kernel could not run) as `DIR/<who>-<what>-<hash>.ops`.
fn write_kernel_finding(
    dir: &Path,
    stream: &Stream,
    who: &str,
    what: &str,
    header: Vec<String>,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let text = rmaplab_ops::print::print_with_header(stream, &header);
    let who: String = who
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let path = dir.join(format!(
        "{}-{what}-{:08x}.ops",
        who.trim_matches('-'),
        text_hash(&text)
    ));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// `rmaplab kernel --fuzz`: random decoder streams (without emulator-only
/// ops) on the host kernel and the designs; every mismatching stream is
/// shrunk (ops dropped one at a time, bounded) and saved.
pub fn kernel_fuzz(a: &KernelFuzzArgs) -> ExitCode {
    use crate::kernel_diff::{run_and_compare, shrink_by_dropping};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use rmaplab_ops::decode::{DecodeConfig, decode};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    if let Err(code) = host_serves() {
        return code;
    }
    if a.window == 0 || a.window > rmaplab_ops::WINDOW_PAGES {
        return usage_error("--window must be 1..=256 pages");
    }
    let decode_cfg = DecodeConfig {
        max_ops: a.max_ops,
        window_len: a.window,
        max_len: a.max_len.max(1),
        ..DecodeConfig::live_kernel()
    };
    let jobs = a.jobs.max(1);
    let labels: Vec<String> = a.specs.iter().map(DesignSpec::label).collect();
    eprintln!(
        "rmaplab kernel --fuzz: {} against {} for {}s on {jobs} job(s), seed {}, ≤{} ops per \
         stream, window {} pages, ranges ≤{} pages, mismatches to {}",
        host_kernel_name(),
        labels.join(", "),
        a.seconds,
        a.seed,
        a.max_ops,
        a.window,
        decode_cfg.max_len,
        a.out.display()
    );
    let streams = AtomicU64::new(0);
    let ops = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    // (first mismatch or error, path written)
    let findings: Mutex<Vec<(String, Option<PathBuf>)>> = Mutex::new(Vec::new());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.seconds);
    let worker = |job: usize| {
        pin_thread_to_nth_cpu(job);
        let mut rng = SmallRng::seed_from_u64(a.seed.wrapping_add(job as u64 * 0x9e37_79b9));
        let mut local = 0u64;
        loop {
            if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                break;
            }
            if let Some(m) = a.execs
                && streams.load(Ordering::Relaxed) >= m
            {
                break;
            }
            let len = rng.random_range(0..=400);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let stream = decode(&bytes, &decode_cfg);
            local += 1;
            streams.fetch_add(1, Ordering::Relaxed);
            ops.fetch_add(stream.ops.len() as u64, Ordering::Relaxed);
            let origin = format!(
                "found by rmaplab kernel --fuzz (seed {}, job {job}, stream {local})",
                a.seed
            );
            let kd = match run_and_compare(&stream, &a.specs) {
                Ok(kd) => kd,
                Err(e) => {
                    let header = vec![
                        format!("{origin}; not shrunk"),
                        format!("kernel run failed: {e}"),
                    ];
                    let path =
                        write_kernel_finding(&a.out, &stream, "kernel", "error", header).ok();
                    findings
                        .lock()
                        .expect("findings lock")
                        .push((format!("kernel run failed: {e}"), path));
                    continue;
                }
            };
            let Some(sig) = mismatch_signature(&kd) else {
                continue;
            };
            let small = shrink_by_dropping(&stream, 300, |s| {
                run_and_compare(s, &a.specs)
                    .ok()
                    .is_some_and(|k| mismatch_signature(&k).as_ref() == Some(&sig))
            });
            let (mut small, small_kd) = match run_and_compare(&small, &a.specs) {
                Ok(k) if !k.agrees() => (small, k),
                _ => (stream.clone(), kd),
            };
            // Line numbers as in the file written: after the header.
            let n = small_kd.mismatches().len();
            let header_lines = 1 + n.min(10) + usize::from(n > 10);
            for l in &mut small.lines {
                *l += header_lines;
            }
            let per_spec = crate::kernel_diff::compare_specs(&small, &small_kd.kernel, &a.specs);
            let small_kd = crate::kernel_diff::KernelDiff {
                kernel: small_kd.kernel,
                per_spec,
            };
            let mut header = vec![format!(
                "{origin}; shrunk from {} to {} ops",
                stream.ops.len(),
                small.ops.len()
            )];
            let ms = small_kd.mismatches();
            for (who, m) in ms.iter().take(10) {
                header.push(format!("mismatch: {who}: {m}"));
            }
            if ms.len() > 10 {
                header.push(format!("mismatch: ... {} more", ms.len() - 10));
            }
            let first = ms
                .first()
                .map(|(who, m)| format!("{who}: {m}"))
                .unwrap_or_default();
            let path = write_kernel_finding(&a.out, &small, &sig.0, sig.1, header).ok();
            findings.lock().expect("findings lock").push((first, path));
        }
    };
    std::thread::scope(|scope| {
        for job in 0..jobs {
            let worker = &worker;
            scope.spawn(move || worker(job));
        }
        let mut last = (Instant::now(), 0u64);
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let n = streams.load(Ordering::Relaxed);
            let done = Instant::now() >= deadline || a.execs.is_some_and(|m| n >= m);
            if last.0.elapsed() >= Duration::from_secs(1) || done {
                let secs = last.0.elapsed().as_secs_f64().max(1e-9);
                eprintln!(
                    "[{:>4}s] streams {:>8} ({:>5.0}/s)  ops {:>9}  mismatches {}",
                    start.elapsed().as_secs(),
                    n,
                    (n - last.1) as f64 / secs,
                    ops.load(Ordering::Relaxed),
                    findings.lock().expect("findings lock").len()
                );
                last = (Instant::now(), n);
            }
            if done {
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
    });
    let n = streams.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let findings = findings.into_inner().expect("findings lock");
    eprintln!(
        "done: {n} streams, {} ops in {secs:.1}s ({:.0} streams/s, {:.0}/s per job); {} \
         disagreed",
        ops.load(Ordering::Relaxed),
        n as f64 / secs,
        n as f64 / secs / jobs as f64,
        findings.len()
    );
    if findings.is_empty() {
        eprintln!("every stream agreed");
        return ExitCode::SUCCESS;
    }
    for (what, path) in &findings {
        println!("MISMATCH {what}");
        if let Some(p) = path {
            println!("  replay: rmaplab kernel {}", p.display());
        }
    }
    ExitCode::from(EXIT_FAIL)
}

/// `rmaplab kernel --bench N`: streams per second on the host kernel.
pub fn kernel_bench(n: usize) -> ExitCode {
    use crate::kernel_diff::{default_specs, run_and_compare};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use rmaplab_ops::decode::{DecodeConfig, decode};
    use std::time::Instant;
    if let Err(code) = host_serves() {
        return code;
    }
    let n = n.max(1);
    println!("{}, one CPU, {n} streams each:", host_kernel_name());
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    if let Ok(p) = crate::kernel::puppet_path() {
        match crate::kernel::elf_is_static(&p) {
            Some(true) => println!("  puppet: {} (statically linked)", p.display()),
            _ => println!(
                "  puppet: {} (dynamically linked; `cargo rustc --release -p rmaplab --bin rmaplab-puppet \
                 -- -C target-feature=+crt-static` builds a faster static one)",
                p.display()
            ),
        }
    }
    let bench: Vec<Stream> = (0..n as u64)
        .map(|s| Stream::from_ops(crate::kernel::bench_stream(s)))
        .collect();
    let mut rng = SmallRng::seed_from_u64(1);
    let cfg = DecodeConfig::live_kernel();
    let random: Vec<Stream> = (0..n)
        .map(|_| {
            let len = rng.random_range(0..=400);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            decode(&bytes, &cfg)
        })
        .collect();
    let avg_ops = random.iter().map(|s| s.ops.len()).sum::<usize>() as f64 / n as f64;
    let specs = default_specs();
    let labels: Vec<String> = specs.iter().map(DesignSpec::label).collect();
    let compared = format!("kernel + {} compared", labels.join(" + "));
    let random_what = format!("random decoder streams (~{avg_ops:.0} ops)");
    let kernel_only = |s: &Stream| crate::kernel::run_on_kernel(&s.ops).map(drop);
    let and_designs = |s: &Stream| run_and_compare(s, &specs).map(drop);
    type Run<'a> = &'a dyn Fn(&Stream) -> Result<(), String>;
    let rows: [(&str, &str, &[Stream], Run); 4] = [
        (
            "kernel only",
            "bench streams (~20 ops, 3 processes, 2 dumps)",
            &bench,
            &kernel_only,
        ),
        ("kernel only", &random_what, &random, &kernel_only),
        (&compared, "bench streams", &bench, &and_designs),
        (&compared, &random_what, &random, &and_designs),
    ];
    for (who, what, streams, run) in rows {
        // One warm-up stream, then the timed batch.
        let timed = run(&streams[0]).and_then(|()| {
            let t = Instant::now();
            streams.iter().try_for_each(run)?;
            Ok(streams.len() as f64 / t.elapsed().as_secs_f64().max(1e-9))
        });
        match timed {
            Ok(rate) => println!("  {who}, {what}: {rate:>7.0} streams/s"),
            Err(e) => {
                eprintln!("rmaplab: the benchmark failed: {e}");
                return ExitCode::from(EXIT_FAIL);
            }
        }
    }
    ExitCode::SUCCESS
}

/// `rmaplab export-c FILE.ops`: a standalone C reproducer.
pub fn export_c(path: &Path, out: Option<&Path>) -> ExitCode {
    let stream = match load(path) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    let text = std::fs::read_to_string(path).ok();
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    let c = crate::export_c::export_c_annotated(&stream, &name, text.as_deref());
    write_or_print(out, &c)
}
/// `rmaplab bench`: the figures issue reports quote, measured here.
pub fn bench(
    specs: &[DesignSpec],
    execs: usize,
    rss_execs: usize,
    emit_inputs: Option<&Path>,
) -> ExitCode {
    use crate::bench::{execs_per_sec, ns_per_op, rss_kib, stream_inputs, streams, vma_stream};
    if let Some(dir) = emit_inputs {
        // The throughput streams as fuzzer inputs, nothing measured.
        if let Err(e) = std::fs::create_dir_all(dir) {
            return usage_error(&format!("{}: {e}", dir.display()));
        }
        for (i, bytes) in stream_inputs(execs, 64, 1).iter().enumerate() {
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
    println!("# rmaplab bench (one core; full oracle after every op)");
    let batch = streams(execs, 64, 1);
    let avg_ops = batch.iter().map(|s| s.ops.len()).sum::<usize>() as f64 / batch.len() as f64;
    println!(
        "streams: {} decoded random streams, {avg_ops:.1} ops on average (max 64)",
        batch.len()
    );
    for s in specs {
        let r = execs_per_sec(&batch, std::slice::from_ref(s));
        println!("execs/s {:<32} {r:>10.0}", s.label());
    }
    let all = execs_per_sec(&batch, specs);
    println!("execs/s {:<32} {all:>10.0}", "all designs together");

    println!("\n# per-op cost vs stream length (all designs)");
    for len in [16usize, 32, 64, 128, 256] {
        let b = streams((execs / 4).max(50), len, 2);
        let ops = b.iter().map(|s| s.ops.len()).sum::<usize>() as f64 / b.len() as f64;
        println!(
            "max_ops {len:>4} (avg {ops:>6.1} ops): {:>8.0} ns/op",
            ns_per_op(&b, specs)
        );
    }
    println!("\n# per-op cost vs live VMAs (all designs; one-page VMAs, fork, writes)");
    for vmas in [4u64, 16, 64, 128, 255] {
        let s = vec![vma_stream(vmas, 64); 20];
        println!("{vmas:>4} VMAs: {:>9.0} ns/op", ns_per_op(&s, specs));
    }
    if rss_execs > 0 {
        println!("\n# RSS over {rss_execs} execs (all designs)");
        let mut rng = SmallRng::seed_from_u64(3);
        let cfg = rmaplab_ops::decode::DecodeConfig::default();
        let step = (rss_execs / 10).max(1);
        for i in 0..rss_execs {
            let bytes: Vec<u8> = (0..rng.random_range(0..800))
                .map(|_| rng.random())
                .collect();
            let _ = crate::fuzzing::check_stream(&rmaplab_ops::decode::decode(&bytes, &cfg), specs);
            if (i + 1) % step == 0 {
                println!(
                    "after {:>8} execs: RSS {} KiB",
                    i + 1,
                    rss_kib().map_or("?".into(), |k| k.to_string())
                );
            }
        }
    }
    ExitCode::SUCCESS
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
    let specs = match crate::design::select(&[], None, std::slice::from_ref(&a.bug)) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    let result = match a.engine.as_str() {
        "builtin" => crate::zoo::hunt_builtin(&specs, a.seconds, a.seed),
        "libfuzzer" => crate::zoo::hunt_libfuzzer(&specs, a.seconds, a.seed),
        e => return usage_error(&format!("unknown engine `{e}` (builtin or libfuzzer)")),
    };
    let hunt = match result {
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
    let canonical = crate::design::canonical_specs();
    if let Err(f) = crate::fuzzing::check_stream(&found.stream, &canonical) {
        eprintln!(
            "the shrunk stream also fails a canonical design — not the injected bug alone:\n{}",
            f.report
        );
        return ExitCode::from(EXIT_FAIL);
    }
    if let Some(path) = &a.zoo {
        let text = crate::zoo::zoo_file(&a.bug, &specs[0], &found, &hunt, &a.engine, a.seed);
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
        CATALOGUE
            .iter()
            .filter(|b| b.injectable.is_ok())
            .map(|b| b.id.to_string())
            .collect()
    } else {
        bugs.to_vec()
    };
    println!(
        "| bug | design (era) | invariant | engine | found | median s | worst s | median execs |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for bug in &bugs {
        let specs = match crate::design::select(&[], None, std::slice::from_ref(bug)) {
            Ok(s) => s,
            Err(e) => return usage_error(&e),
        };
        for engine in engines {
            let mut times = Vec::new();
            let mut execs = Vec::new();
            let mut invariant = String::from("-");
            let mut found = 0;
            for seed in 1..=seeds {
                let h = match engine.as_str() {
                    "builtin" => crate::zoo::hunt_builtin(&specs, seconds, seed),
                    "libfuzzer" => crate::zoo::hunt_libfuzzer(&specs, seconds, seed),
                    e => return usage_error(&format!("unknown engine `{e}`")),
                };
                match h {
                    Ok(h) => {
                        if let Some(f) = &h.found {
                            found += 1;
                            invariant = f.signature.invariant.clone();
                            times.push(h.seconds);
                        } else {
                            times.push(f64::INFINITY);
                        }
                        execs.push(h.execs);
                    }
                    Err(e) => {
                        eprintln!("{bug} {engine} seed {seed}: {e}");
                        times.push(f64::INFINITY);
                    }
                }
                eprintln!(
                    "{bug} {engine} seed {seed}: {}",
                    times.last().map_or("?".into(), |t| if t.is_finite() {
                        format!("{t:.2}s")
                    } else {
                        format!("not found in {seconds}s")
                    })
                );
            }
            times.sort_by(f64::total_cmp);
            execs.sort_unstable();
            let fmt = |t: f64| {
                if t.is_finite() {
                    format!("{t:.2}")
                } else {
                    format!(">{seconds}")
                }
            };
            println!(
                "| {bug} | {} | {invariant} | {engine} | {found}/{seeds} | {} | {} | {} |",
                specs[0].label(),
                fmt(times[times.len() / 2]),
                fmt(*times.last().unwrap_or(&f64::INFINITY)),
                execs.get(execs.len() / 2).copied().unwrap_or(0)
            );
        }
    }
    ExitCode::SUCCESS
}
