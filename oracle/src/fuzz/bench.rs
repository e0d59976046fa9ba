//! `rmaplab bench`: throughput and cost figures, measured (never asserted
//! by tests; [`figures`]): executions per second of the differential check
//! on 64-op streams, RSS over many executions, and how the cost of an op
//! grows with stream length and with the number of live VMAs; with
//! `--without`, what the named checks cost ([`checks_cost`]).

use std::io::{self, Write};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use rmaplab_impls::designs::registry::DesignSpec;

use super::engine::{check_stream, check_stream_opts};
use crate::run::runner::{RunOptions, Without};
use rmaplab_impls::mmu::MmuStats;
use rmaplab_ops::decode::{DecodeConfig, decode};
use rmaplab_ops::{Kind, Op, Pid, Prot, Stream};

/// Random decoded streams of (nearly) `ops` ops each: [`stream_inputs`]
/// through the decoder.
pub fn streams(n: usize, ops: usize, seed: u64) -> Vec<Stream> {
    let cfg = DecodeConfig {
        max_ops: ops,
        ..DecodeConfig::default()
    };
    stream_inputs(n, ops, seed)
        .iter()
        .map(|bytes| decode(bytes, &cfg))
        .collect()
}

/// The raw fuzzer inputs behind [`streams`]: random bytes, enough for
/// `ops` ops. With `ops` = 64 (the decoder's default bound) the fuzz
/// targets decode them to exactly the streams `rmaplab bench` times, so
/// libFuzzer and AFL can be timed on the same work.
pub fn stream_inputs(n: usize, ops: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..ops * 12).map(|_| rng.random()).collect())
        .collect()
}

/// Executions per second of the full differential check over `streams`.
pub fn execs_per_sec(streams: &[Stream], specs: &[DesignSpec]) -> f64 {
    let t = Instant::now();
    for s in streams {
        let _ = check_stream(s, specs);
    }
    streams.len() as f64 / t.elapsed().as_secs_f64()
}

/// Resident set size of this process in KiB (Linux), if readable.
pub fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

/// A stream that maps `vmas` one-page VMAs which cannot merge (alternating
/// protections), faults each writable one, forks, then writes `work` pages
/// spread over them: per-op cost as a function of live VMAs.
pub fn vma_stream(vmas: u64, work: usize) -> Stream {
    let p0 = Pid(0);
    let mut ops = Vec::new();
    for i in 0..vmas {
        let prot = if i % 2 == 0 { Prot::Rw } else { Prot::R };
        ops.push(Op::Mmap {
            pid: p0,
            addr: i,
            len: 1,
            prot,
            kind: Kind::Anon,
            replace: false,
        });
        if prot == Prot::Rw {
            ops.push(Op::Write {
                pid: p0,
                addr: i,
                value: i,
            });
        }
    }
    ops.push(Op::Fork { pid: p0 });
    for k in 0..work {
        let addr = (k as u64 * 2) % vmas.max(2);
        ops.push(Op::Write {
            pid: Pid((k % 2) as u32),
            addr: addr - addr % 2,
            value: k as u64,
        });
    }
    Stream::from_ops(ops)
}

/// Nanoseconds per op of the differential check over `streams`.
pub fn ns_per_op(streams: &[Stream], specs: &[DesignSpec]) -> f64 {
    let ops: usize = streams.iter().map(|s| s.ops.len()).sum();
    let t = Instant::now();
    for s in streams {
        let _ = check_stream(s, specs);
    }
    t.elapsed().as_nanos() as f64 / ops.max(1) as f64
}

/// The figures of `rmaplab bench` for `specs`, written to `out` as they are
/// measured: execs/s on `execs` 64-op streams per design and all together,
/// per-op cost against stream length and against live VMAs, and with
/// `rss_execs > 0` the RSS over that many executions.
pub fn figures(
    out: &mut impl Write,
    specs: &[DesignSpec],
    execs: usize,
    rss_execs: usize,
) -> io::Result<()> {
    writeln!(
        out,
        "# rmaplab bench (one core; full oracle after every op)"
    )?;
    let batch = streams(execs, 64, 1);
    let avg_ops = batch.iter().map(|s| s.ops.len()).sum::<usize>() as f64 / batch.len() as f64;
    writeln!(
        out,
        "streams: {} decoded random streams, {avg_ops:.1} ops on average (max 64)",
        batch.len()
    )?;
    for s in specs {
        let r = execs_per_sec(&batch, std::slice::from_ref(s));
        writeln!(out, "execs/s {:<32} {r:>10.0}", s.label())?;
    }
    let all = execs_per_sec(&batch, specs);
    writeln!(out, "execs/s {:<32} {all:>10.0}", "all designs together")?;

    writeln!(out, "\n# per-op cost vs stream length (all designs)")?;
    for len in [16usize, 32, 64, 128, 256] {
        let b = streams((execs / 4).max(50), len, 2);
        let ops = b.iter().map(|s| s.ops.len()).sum::<usize>() as f64 / b.len() as f64;
        writeln!(
            out,
            "max_ops {len:>4} (avg {ops:>6.1} ops): {:>8.0} ns/op",
            ns_per_op(&b, specs)
        )?;
    }
    writeln!(
        out,
        "\n# per-op cost vs live VMAs (all designs; one-page VMAs, fork, writes)"
    )?;
    for vmas in [4u64, 16, 64, 128, 255] {
        let s = vec![vma_stream(vmas, 64); 20];
        writeln!(out, "{vmas:>4} VMAs: {:>9.0} ns/op", ns_per_op(&s, specs))?;
    }
    if rss_execs > 0 {
        writeln!(out, "\n# RSS over {rss_execs} execs (all designs)")?;
        let mut rng = SmallRng::seed_from_u64(3);
        let cfg = DecodeConfig::default();
        let step = (rss_execs / 10).max(1);
        for i in 0..rss_execs {
            let bytes: Vec<u8> = (0..rng.random_range(0..800))
                .map(|_| rng.random())
                .collect();
            let _ = check_stream(&decode(&bytes, &cfg), specs);
            if (i + 1) % step == 0 {
                writeln!(
                    out,
                    "after {:>8} execs: RSS {} KiB",
                    i + 1,
                    rss_kib().map_or("?".into(), |k| k.to_string())
                )?;
            }
        }
    }
    Ok(())
}

/// What the checks `without` names cost (`rmaplab bench --without`): the
/// `execs` 64-op throughput streams of [`figures`], all designs together,
/// timed with every check (the fuzzing options) and without those checks,
/// alternately in ten rounds of a tenth of the streams each (which of the
/// two goes first alternates too), so that the machine's drift falls on
/// both alike. Timed in this thread's CPU time (Linux), which the other
/// jobs of a shared machine do not inflate. Under callgrind, the calls of
/// [`timed_with_every_check`] and [`timed_without`] give the instructions
/// of each.
pub fn checks_cost(
    out: &mut impl Write,
    specs: &[DesignSpec],
    execs: usize,
    without: Without,
) -> io::Result<()> {
    writeln!(
        out,
        "# rmaplab bench --without {without} (one core, thread CPU time; the same streams \
         with every check and without {without}, alternately)"
    )?;
    let batch = streams(execs, 64, 1);
    let avg_ops =
        batch.iter().map(|s| s.ops.len()).sum::<usize>() as f64 / batch.len().max(1) as f64;
    writeln!(
        out,
        "streams: {} decoded random streams, {avg_ops:.1} ops on average (max 64)",
        batch.len()
    )?;
    let every = RunOptions::fuzzing();
    let fewer = RunOptions {
        without,
        ..RunOptions::fuzzing()
    };
    let (mut t_every, mut t_fewer) = (Duration::ZERO, Duration::ZERO);
    let chunk = batch.len().div_ceil(10).max(1);
    for (round, part) in batch.chunks(chunk).enumerate() {
        if round % 2 == 0 {
            t_every += timed_with_every_check(part, specs, &every);
            t_fewer += timed_without(part, specs, &fewer);
        } else {
            t_fewer += timed_without(part, specs, &fewer);
            t_every += timed_with_every_check(part, specs, &every);
        }
    }
    let rate = |t: Duration| batch.len() as f64 / t.as_secs_f64().max(1e-9);
    let (every_rate, fewer_rate) = (rate(t_every), rate(t_fewer));
    writeln!(out, "execs/s {:<32} {every_rate:>10.0}", "with every check")?;
    writeln!(
        out,
        "execs/s {:<32} {fewer_rate:>10.0}",
        format!("without {without}")
    )?;
    writeln!(
        out,
        "{without} cost {:+.1}% time per exec (execs/s {:+.1}%)",
        (t_every.as_secs_f64() / t_fewer.as_secs_f64().max(1e-9) - 1.0) * 100.0,
        (every_rate / fewer_rate - 1.0) * 100.0
    )
}

/// The time of `streams` on `specs` with every check.
#[inline(never)]
pub fn timed_with_every_check(
    streams: &[Stream],
    specs: &[DesignSpec],
    opts: &RunOptions,
) -> Duration {
    // A distinct body: the linker must not fold the two timed functions
    // into one (callgrind would then charge both to one name).
    timed(std::hint::black_box(streams), specs, opts)
}

/// The time of `streams` on `specs` with the checks `opts` leaves out left
/// out.
#[inline(never)]
pub fn timed_without(streams: &[Stream], specs: &[DesignSpec], opts: &RunOptions) -> Duration {
    timed(streams, specs, opts)
}

fn timed(streams: &[Stream], specs: &[DesignSpec], opts: &RunOptions) -> Duration {
    let mut stats = MmuStats::default();
    let t = cpu_time();
    for s in streams {
        let _ = check_stream_opts(s, specs, opts, &mut stats);
    }
    cpu_time().saturating_sub(t)
}

/// The CPU time this thread has used (Linux `CLOCK_THREAD_CPUTIME_ID`);
/// elsewhere, or should the clock fail, the time since an arbitrary start.
fn cpu_time() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec for the call to fill.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}
