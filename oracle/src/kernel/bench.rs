//! `rmaplab kernel --bench N`: streams per second on the host kernel, alone
//! and compared with the default designs, on small fixed streams
//! ([`super::bench_stream`]) and on random live-kernel decoder streams.

use std::io::Write;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rmaplab_impls::designs::registry::DesignSpec;

use super::diff::{default_specs, run_and_compare};
use super::{bench_stream, run_on_kernel};
use rmaplab_ops::Stream;
use rmaplab_ops::decode::{DecodeConfig, decode};

/// Measures `n` streams of each kind on `host` (its name, for the first
/// line) and writes one line per figure to `out` as it is measured. `Err`
/// when a run fails (the figures so far are written).
pub fn figures(out: &mut impl Write, host: &str, n: usize) -> Result<(), String> {
    let n = n.max(1);
    writeln!(out, "{host}, one CPU, {n} streams each:").map_err(|e| e.to_string())?;
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    if let Ok(p) = super::puppet_command() {
        match super::elf_is_static(&p.program) {
            Some(true) => writeln!(out, "  puppet: {p} (statically linked)"),
            _ => writeln!(
                out,
                "  puppet: {p} (dynamically linked; `cargo rustc --release -p rmaplab --bin \
                 rmaplab-puppet -- -C target-feature=+crt-static` builds a faster static one)"
            ),
        }
        .map_err(|e| e.to_string())?;
    }
    let bench: Vec<Stream> = (0..n as u64)
        .map(|s| Stream::from_ops(bench_stream(s)))
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
    let kernel_only = |s: &Stream| run_on_kernel(&s.ops).map(drop);
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
        writeln!(out, "  {who}, {what}: {:>7.0} streams/s", timed?).map_err(|e| e.to_string())?;
    }
    Ok(())
}
