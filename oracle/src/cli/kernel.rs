//! `rmaplab kernel` (a stream on the host's kernel against the designs, its
//! `--fuzz` loop and `--bench`) and `rmaplab export-c`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rmaplab::kernel::diff::{default_specs, run_and_compare};
use rmaplab::kernel::export_c::export_c_annotated;
use rmaplab::kernel::fuzz::KernelFuzzConfig;
use rmaplab::kernel::report::report_text;
use rmaplab::kernel::{self, host_can_serve, host_kernel_name};
use rmaplab_impls::designs::registry::Era;
use rmaplab_impls::designs::registry::{Design, DesignSpec, select};
use rmaplab_ops::WINDOW_PAGES;
use rmaplab_ops::decode::DecodeConfig;

use super::{EXIT_FAIL, fresh_seed, load, usage_error, write_or_print};

/// Exit status of `rmaplab kernel` when the host cannot run streams on its
/// kernel (not Linux/x86_64, not root, PFNs hidden, no puppet binary).
pub const EXIT_HOST_CANNOT_SERVE: u8 = 3;

/// The designs `rmaplab kernel` compares with: the default set
/// ([`default_specs`]) unless `--design`, `--era` or
/// `--bug` selects others.
pub fn kernel_specs(
    designs: &[Design],
    era: Option<Era>,
    bugs: &[String],
) -> Result<Vec<DesignSpec>, String> {
    if designs.is_empty() && era.is_none() && bugs.is_empty() {
        Ok(default_specs())
    } else {
        select(designs, era, bugs)
    }
}

/// `Err(status 3)` after saying why, when the host cannot serve.
fn host_serves() -> Result<(), ExitCode> {
    host_can_serve().map_err(|why| {
        eprintln!("rmaplab: this host cannot run streams on its kernel: {why}");
        ExitCode::from(EXIT_HOST_CANNOT_SERVE)
    })
}

/// `rmaplab kernel FILE.ops`: the stream on the host kernel and on each
/// design, every outcome side by side, a diff at every dump.
pub fn kernel(path: &Path, specs: &[DesignSpec]) -> ExitCode {
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
    let file = path.display().to_string();
    print!(
        "{}",
        report_text(&file, &host_kernel_name(), &stream, specs, &kd)
    );
    if kd.agrees() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAIL)
    }
}

/// Arguments of `rmaplab kernel --fuzz`.
#[derive(Clone, Debug)]
pub struct KernelFuzzArgs {
    pub seconds: u64,
    /// `None`: a fresh seed, printed first.
    pub seed: Option<u64>,
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

/// `rmaplab kernel --fuzz`: random decoder streams (without emulator-only
/// ops) on the host kernel and the designs; every mismatching stream is
/// shrunk and saved.
pub fn kernel_fuzz(a: &KernelFuzzArgs) -> ExitCode {
    if let Err(code) = host_serves() {
        return code;
    }
    if a.window == 0 || a.window > WINDOW_PAGES {
        return usage_error("--window must be 1..=256 pages");
    }
    let seed = a.seed.unwrap_or_else(fresh_seed);
    eprintln!("seed {seed} (repeat this run with --seed {seed})");
    let cfg = KernelFuzzConfig {
        seconds: a.seconds,
        seed,
        out: a.out.clone(),
        specs: a.specs.clone(),
        jobs: a.jobs.max(1),
        execs: a.execs,
        decode: DecodeConfig {
            max_ops: a.max_ops,
            window_len: a.window,
            max_len: a.max_len.max(1),
            ..DecodeConfig::live_kernel()
        },
    };
    let jobs = cfg.jobs;
    let labels: Vec<String> = a.specs.iter().map(DesignSpec::label).collect();
    eprintln!(
        "rmaplab kernel --fuzz: {} against {} for {}s on {jobs} job(s), seed {}, ≤{} ops per \
         stream, window {} pages, ranges ≤{} pages, mismatches to {}",
        host_kernel_name(),
        labels.join(", "),
        a.seconds,
        seed,
        a.max_ops,
        a.window,
        cfg.decode.max_len,
        a.out.display()
    );
    let st = kernel::fuzz::run(&cfg);
    let n = st.streams;
    let secs = st.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "done: {n} streams, {} ops in {secs:.1}s ({:.0} streams/s, {:.0}/s per job); {} \
         disagreed",
        st.ops,
        n as f64 / secs,
        n as f64 / secs / jobs as f64,
        st.findings.len()
    );
    if st.findings.is_empty() {
        eprintln!("every stream agreed");
        return ExitCode::SUCCESS;
    }
    for (what, path) in &st.findings {
        println!("MISMATCH {what}");
        if let Some(p) = path {
            println!("  replay: rmaplab kernel {}", p.display());
        }
    }
    ExitCode::from(EXIT_FAIL)
}

/// `rmaplab kernel --bench N`: streams per second on the host kernel.
pub fn kernel_bench(n: usize) -> ExitCode {
    if let Err(code) = host_serves() {
        return code;
    }
    match kernel::bench::figures(&mut std::io::stdout().lock(), &host_kernel_name(), n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rmaplab: the benchmark failed: {e}");
            ExitCode::from(EXIT_FAIL)
        }
    }
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
    let c = export_c_annotated(&stream, &name, text.as_deref());
    write_or_print(out, &c)
}
