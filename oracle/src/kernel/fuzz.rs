//! The fuzz loop of `rmaplab kernel --fuzz`: random decoder streams
//! (without emulator-only ops) on the host kernel and on the designs, each
//! mismatching stream shrunk (ops dropped one at a time, bounded) and
//! written as an `.ops` file. Each worker thread has its own backend,
//! pinned to its own CPU. No pool of inputs is kept: every stream is fresh
//! random bytes through the live-kernel decoder.
//!
//! A panic is a finding too: in a design's run it is that run's `panic`
//! failure (a mismatch: the emulator's oracle failed), shrunk while the same
//! design panics with the same message, and the file's header expects
//! `fail panic` of it (and of every other run the corpus checker makes that
//! fails); anywhere else in one stream's check (the diff, the backend) it
//! is caught per stream, shrunk the same way and written with the panic in
//! the header. Either way the loop goes on.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rmaplab_impls::designs::registry::DesignSpec;

use super::diff::{KernelDiff, MismatchKind, compare_specs, run_and_compare};
use crate::oracle::check::invariant;
use crate::run::corpus::expect_lines;
use crate::run::panic::{Panic, catch};
use rmaplab_ops::Stream;
use rmaplab_ops::decode::{DecodeConfig, decode};

/// Settings of the loop.
#[derive(Clone, Debug)]
pub struct KernelFuzzConfig {
    pub seconds: u64,
    pub seed: u64,
    /// Where mismatching streams are written.
    pub out: PathBuf,
    pub specs: Vec<DesignSpec>,
    /// Worker threads, each with its own backend on its own CPU.
    pub jobs: usize,
    /// Stop after this many streams (all jobs together), if set.
    pub execs: Option<u64>,
    /// The decoder's settings (`DecodeConfig::live_kernel` and the window).
    pub decode: DecodeConfig,
}

/// What a run of the loop did.
#[derive(Clone, Debug, Default)]
pub struct KernelFuzzStats {
    pub streams: u64,
    pub ops: u64,
    pub elapsed: Duration,
    /// Per mismatching stream (or failed kernel run): the first mismatch
    /// or the error, and the file written.
    pub findings: Vec<(String, Option<PathBuf>)>,
}

/// Runs the loop with `cfg.jobs` threads until the time or the stream
/// budget is spent; a progress line goes to standard error every second.
pub fn run(cfg: &KernelFuzzConfig) -> KernelFuzzStats {
    let jobs = cfg.jobs.max(1);
    let streams = AtomicU64::new(0);
    let ops = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    // (first mismatch or error, path written)
    let findings: Mutex<Vec<(String, Option<PathBuf>)>> = Mutex::new(Vec::new());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(cfg.seconds);
    let worker = |job: usize| {
        pin_thread_to_nth_cpu(job);
        let mut rng = SmallRng::seed_from_u64(cfg.seed.wrapping_add(job as u64 * 0x9e37_79b9));
        let mut local = 0u64;
        loop {
            if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
                break;
            }
            if let Some(m) = cfg.execs
                && streams.load(Ordering::Relaxed) >= m
            {
                break;
            }
            let len = rng.random_range(0..=400);
            let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let stream = decode(&bytes, &cfg.decode);
            local += 1;
            streams.fetch_add(1, Ordering::Relaxed);
            ops.fetch_add(stream.ops.len() as u64, Ordering::Relaxed);
            let origin = format!(
                "found by rmaplab kernel --fuzz (seed {}, job {job}, stream {local})",
                cfg.seed
            );
            let finding = catch(|| check_one(cfg, &stream, &origin))
                .unwrap_or_else(|p| Some(panic_finding(cfg, &stream, &origin, &p)));
            if let Some(finding) = finding {
                findings.lock().expect("findings lock").push(finding);
            }
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
            let done = Instant::now() >= deadline || cfg.execs.is_some_and(|m| n >= m);
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
    let findings = findings.into_inner().expect("findings lock");
    KernelFuzzStats {
        streams: streams.load(Ordering::Relaxed),
        ops: ops.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        findings,
    }
}

/// Runs one stream on the kernel and the designs; on a mismatch (or a
/// failed kernel run) writes the stream, shrunk while the first mismatch
/// keeps its design and kind, and says what and where.
fn check_one(
    cfg: &KernelFuzzConfig,
    stream: &Stream,
    origin: &str,
) -> Option<(String, Option<PathBuf>)> {
    let kd = match run_and_compare(stream, &cfg.specs) {
        Ok(kd) => kd,
        Err(e) => {
            let header = vec![
                format!("{origin}; not shrunk"),
                format!("kernel run failed: {e}"),
            ];
            let path = write_kernel_finding(&cfg.out, stream, "kernel", "error", header).ok();
            return Some((format!("kernel run failed: {e}"), path));
        }
    };
    let sig = mismatch_signature(&kd)?;
    let small = shrink_by_dropping(stream, 300, |s| {
        run_and_compare(s, &cfg.specs)
            .ok()
            .is_some_and(|k| mismatch_signature(&k).as_ref() == Some(&sig))
    });
    let (mut small, small_kd) = match run_and_compare(&small, &cfg.specs) {
        Ok(k) if !k.agrees() => (small, k),
        _ => (stream.clone(), kd),
    };
    // A design's run that panicked: the file expects it (and whatever else
    // the corpus checker would see fail).
    let panicked: Vec<DesignSpec> = small_kd
        .per_spec
        .iter()
        .filter(|d| {
            d.run
                .failure
                .as_ref()
                .is_some_and(|f| f.broken.invariant == invariant::PANIC)
        })
        .map(|d| d.spec.clone())
        .collect();
    let expects = if panicked.is_empty() {
        Vec::new()
    } else {
        expect_lines(&small, &panicked)
    };
    // What the kernel showed, as dump expectations: the file fails in
    // `cargo test` until the emulator agrees (a panic file expects the
    // panic instead).
    let measured = if panicked.is_empty() {
        small_kd.kernel.header_lines(&small)
    } else {
        Vec::new()
    };
    // Line numbers as in the file written: after the header.
    let n = small_kd.mismatches().len();
    let header_lines = 1 + n.min(10) + usize::from(n > 10) + expects.len() + measured.len();
    for l in &mut small.lines {
        *l += header_lines;
    }
    let per_spec = compare_specs(&small, &small_kd.kernel, &cfg.specs);
    let small_kd = KernelDiff {
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
    header.extend(expects);
    header.extend(measured);
    let first = ms
        .first()
        .map(|(who, m)| format!("{who}: {m}"))
        .unwrap_or_default();
    let what = if sig.2.is_some() {
        invariant::PANIC
    } else {
        sig.1
    };
    let path = write_kernel_finding(&cfg.out, &small, &sig.0, what, header).ok();
    Some((first, path))
}

/// A panic while checking `stream` outside the designs' runs (the diff,
/// the backend): the stream shrunk while checking it panics with the same
/// message, written with the panic in its header.
fn panic_finding(
    cfg: &KernelFuzzConfig,
    stream: &Stream,
    origin: &str,
    p: &Panic,
) -> (String, Option<PathBuf>) {
    let small = shrink_by_dropping(stream, 300, |s| {
        catch(|| run_and_compare(s, &cfg.specs)).is_err_and(|q| q.message == p.message)
    });
    let what = format!("panic while comparing with the kernel: {p}");
    let header = vec![
        format!(
            "{origin}; shrunk from {} to {} ops",
            stream.ops.len(),
            small.ops.len()
        ),
        what.clone(),
    ];
    let path = write_kernel_finding(&cfg.out, &small, "rmaplab", invariant::PANIC, header).ok();
    (what, path)
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
/// and kind, and when that design's run panicked, the panic's message.
fn mismatch_signature(kd: &KernelDiff) -> Option<(String, &'static str, Option<String>)> {
    let ms = kd.mismatches();
    let (who, m) = ms.first()?;
    let panic = (m.kind == MismatchKind::EmulatorFailed)
        .then(|| kd.per_spec.iter().find(|d| d.spec.label() == *who))
        .flatten()
        .and_then(|d| d.run.failure.as_ref())
        .filter(|f| f.broken.invariant == invariant::PANIC)
        .map(|f| Panic::message_of(&f.broken.detail).to_string());
    Some((who.clone(), m.kind.name(), panic))
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

/// Drops ops one at a time (from the end backwards, repeatedly) while
/// `still_fails` holds, at most `max_runs` calls; the smaller stream.
pub fn shrink_by_dropping(
    stream: &Stream,
    max_runs: usize,
    mut still_fails: impl FnMut(&Stream) -> bool,
) -> Stream {
    let mut ops = stream.ops.clone();
    let mut runs = 0;
    loop {
        let mut changed = false;
        let mut i = ops.len();
        while i > 0 {
            i -= 1;
            if runs >= max_runs {
                return Stream::from_ops(ops);
            }
            let mut candidate = ops.clone();
            candidate.remove(i);
            runs += 1;
            if still_fails(&Stream::from_ops(candidate.clone())) {
                ops = candidate;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    Stream::from_ops(ops)
}

#[cfg(all(test, feature = "test-panic"))]
mod tests {
    use super::*;
    use crate::kernel::diff::default_specs;
    use crate::run::corpus::check_corpus;
    use crate::run::runner::test_panic;

    /// A design's run that panics on the stream (the `test-panic` write) is
    /// a mismatch, shrunk while the same design panics with the same
    /// message, written with `expect [DESIGN]: fail panic`; the file passes
    /// the corpus checker as it is.
    #[test]
    fn a_panic_in_a_design_run_is_written_as_a_corpus_file() {
        if let Err(e) = crate::kernel::host_can_serve() {
            println!("skipped, the host cannot run the live-kernel backend: {e}");
            return;
        }
        let out = std::env::temp_dir().join(format!("rmaplab-kfuzz-panic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let cfg = KernelFuzzConfig {
            seconds: 0,
            seed: 0,
            out: out.clone(),
            specs: default_specs(),
            jobs: 1,
            execs: None,
            decode: DecodeConfig::live_kernel(),
        };
        let stream = rmaplab_ops::parse::parse(&format!(
            "mmap p0 0 8 rw anon\nwrite p0 1 5\nfork p0\nwrite p0 2 {:#x}\nwrite p1 3 7\n\
             exit p1\n",
            test_panic::VALUE
        ))
        .unwrap();
        let (first, path) = check_one(&cfg, &stream, "test").expect("a mismatch");
        assert!(first.starts_with(test_panic::DESIGN), "{first}");
        assert!(first.contains(test_panic::MESSAGE), "{first}");
        let path = path.expect("written");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(name.starts_with("prealloc-2026-panic-"), "{name}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&format!(
                "\n# expect [{}]: fail panic\n",
                test_panic::DESIGN
            )),
            "{text}"
        );
        // Shrunk to the write (the panic comes before the op runs).
        assert_eq!(
            text.lines().filter(|l| l.starts_with("write ")).count(),
            1,
            "{text}"
        );
        check_corpus(&path).expect("the file passes the checker as it is");
        let _ = std::fs::remove_dir_all(&out);
    }
}
