//! The bug zoo: hunting re-injected historical bugs with the fuzzing
//! engines (the generator, never a hand-written trigger, must find them),
//! the time-to-detect table over seeds, and the regression files that
//! record what was found (`corpus/zoo/ID.ops`).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use rmaplab_impls::designs::registry::{DesignSpec, bug_era, era_ships_bug, find_bug, select};

use super::engine::{EngineConfig, Finding, check_stream, check_stream_explored, run_engine};
use super::shrink::{shrink, shrink_keeping, signature};
use rmaplab_ops::decode::{DecodeConfig, decode};
use rmaplab_ops::print::print_with_header;

/// The bugs a hunt of `bug` injects: `bug`, then those it needs to show
/// ([`rmaplab_impls::designs::registry::Bug::needs`]: b08 needs b12).
pub fn hunt_bugs(bug: &str) -> Vec<String> {
    let mut v = vec![bug.to_string()];
    if let Some((_, b)) = find_bug(bug) {
        v.extend(b.needs.iter().map(|n| n.to_string()));
    }
    v
}

/// The designs a finding of a hunt of `bug` must pass on: when the bug
/// needs others to show ([`hunt_bugs`]), those others alone, so that a
/// race they show by themselves is not taken for the bug's; otherwise its
/// design in its era as that era shipped, when that is not a canonical
/// configuration (era 2015 ships B16's counters: a b21 or b13 hunt must
/// not take B16's failure for its own). Empty when neither applies.
pub fn hunt_baseline(bug: &str) -> Vec<DesignSpec> {
    let bugs = hunt_bugs(bug);
    if bugs.len() >= 2 {
        return select(&[], None, &bugs[1..]).unwrap_or_default();
    }
    let Some((design, b)) = find_bug(bug) else {
        return Vec::new();
    };
    let Some(era) = bug_era(design, b) else {
        return Vec::new();
    };
    if era_ships_bug(design, era, bug) || design.default_era() == Some(era) {
        return Vec::new();
    }
    let mut shipped = DesignSpec::new(design);
    shipped.era = Some(era);
    vec![shipped]
}

/// What one hunt did.
#[derive(Clone, Debug)]
pub struct Hunt {
    /// Seconds and executions until the first failure (or until giving up).
    pub seconds: f64,
    pub execs: u64,
    /// The shrunk failing stream.
    pub found: Option<Finding>,
}

/// Hunts with the built-in engine on one core, from an empty pool.
/// A finding must pass on `baseline` ([`hunt_baseline`]).
pub fn hunt_builtin(
    specs: &[DesignSpec],
    baseline: &[DesignSpec],
    seconds: u64,
    seed: u64,
) -> Result<Hunt, String> {
    let st = run_engine(&EngineConfig {
        seconds,
        max_execs: None,
        jobs: 1,
        seed,
        decode: DecodeConfig::default(),
        specs: specs.to_vec(),
        baseline: baseline.to_vec(),
        out_dir: None,
        seeds: Vec::new(),
        stop_on_failure: true,
        progress: false,
    });
    Ok(match st.findings.into_iter().next() {
        Some((f, _)) => Hunt {
            seconds: st
                .time_to_first_failure
                .map_or(st.elapsed.as_secs_f64(), |t| t.as_secs_f64()),
            execs: st.execs_to_first_failure.unwrap_or(st.execs),
            found: Some(f),
        },
        None => Hunt {
            seconds: st.elapsed.as_secs_f64(),
            execs: st.execs,
            found: None,
        },
    })
}

/// Hunts with libFuzzer (`cargo fuzz run -s none -O --no-trace-compares
/// differential -- -entropic=0`, the
/// target selecting the designs from `RMAPLAB_SPECS`), from an empty
/// corpus; the crash artifact is decoded with the same decoder and shrunk.
pub fn hunt_libfuzzer(
    specs: &[DesignSpec],
    baseline: &[DesignSpec],
    seconds: u64,
    seed: u64,
) -> Result<Hunt, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = std::env::temp_dir().join(format!("rmaplab-hunt-{}-{seed}", std::process::id()));
    let corpus = work.join("corpus");
    std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
    let env: Vec<String> = specs.iter().map(DesignSpec::to_string).collect();
    let start = Instant::now();
    let out = Command::new("cargo")
        .current_dir(&root)
        .env("RMAPLAB_SPECS", env.join(";"))
        .env(
            "RMAPLAB_BASELINE",
            baseline
                .iter()
                .map(DesignSpec::to_string)
                .collect::<Vec<_>>()
                .join(";"),
        )
        .args([
            "fuzz",
            "run",
            "-s",
            "none",
            "-O",
            "--no-trace-compares",
            "differential",
        ])
        .arg(&corpus)
        .arg("--")
        .arg(format!("-seed={seed}"))
        // libFuzzer's entropic schedule updates a frequency per feature of
        // every execution, and the target has many: two thirds of the
        // process's time in a profile of a b09 hunt (docs/fuzzing.md,
        // "The libFuzzer target decides as the built-in engine").
        .arg("-entropic=0")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", work.display()))
        .output()
        .map_err(|e| format!("cannot run cargo fuzz (cargo install cargo-fuzz): {e}"))?;
    let elapsed = start.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    let execs = log
        .lines()
        .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .next_back()
        .unwrap_or(0);
    // The time to the crash: libFuzzer's last progress line before it.
    let crash_time = log
        .lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| {
            let n: u64 = l[1..].split_whitespace().next()?.parse().ok()?;
            let rate: f64 = l
                .split("exec/s: ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            (rate > 0.0).then_some(n as f64 / rate)
        })
        .next_back();
    let artifact = std::fs::read_dir(&work)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("crash-"))
        });
    let Some(artifact) = artifact else {
        if !out.status.success() {
            return Err(format!(
                "cargo fuzz failed without a crash artifact:\n{}",
                log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
            ));
        }
        std::fs::remove_dir_all(&work).ok();
        return Ok(Hunt {
            seconds: elapsed,
            execs,
            found: None,
        });
    };
    let bytes = std::fs::read(&artifact).map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&work).ok();
    // The target may have found it with the blocks explored
    // (check_stream_explored: whatever it could have explored).
    let stream = match check_stream_explored(&decode(&bytes, &DecodeConfig::default()), specs) {
        Err(f) => f.stream,
        Ok(()) => decode(&bytes, &DecodeConfig::default()),
    };
    let Some(sig) = signature(&stream, specs) else {
        return Err("the libFuzzer artifact does not reproduce with this build".into());
    };
    if super::engine::fails_baseline(&stream, baseline) {
        return Err("the libFuzzer artifact fails on the baseline too (its own race)".into());
    }
    // With a baseline, every smaller stream must still pass there.
    let small = if baseline.is_empty() {
        shrink(&stream, specs, &sig, 20_000)
    } else {
        shrink_keeping(&stream, specs, &sig, 20_000, &|s| {
            !super::engine::fails_baseline(s, baseline)
        })
    };
    let small = if super::engine::fails_baseline(&small, baseline) {
        stream
    } else {
        small
    };
    let report = check_stream(&small, specs)
        .err()
        .map(|f| f.report)
        .unwrap_or_default();
    Ok(Hunt {
        seconds: crash_time.unwrap_or(elapsed).min(elapsed),
        execs,
        found: Some(Finding {
            stream: small,
            signature: sig,
            report,
        }),
    })
}

/// The zoo file: must fail with the invariant under the bug, and pass on
/// every canonical design.
pub fn zoo_file(
    bug: &str,
    spec: &DesignSpec,
    f: &Finding,
    h: &Hunt,
    engine: &str,
    seed: u64,
) -> String {
    let title = find_bug(bug).map_or("", |(_, b)| b.title);
    let also = hunt_bugs(bug);
    let with = if also.len() > 1 {
        format!(" (with {}, which it needs to show)", also[1..].join(", "))
    } else {
        String::new()
    };
    let header = vec![
        format!("zoo: {bug} — {title}"),
        format!(
            "found by `rmaplab hunt --bug {bug} --engine {engine} --seed {seed}`{with} after \
             {:.2}s, {} execs, then shrunk; no op was written by hand",
            h.seconds, h.execs
        ),
        format!("failure: {}", f.report.lines().next().unwrap_or_default()),
        "expect: pass".to_string(),
        format!("expect [{spec}]: fail {}", f.signature.invariant),
    ];
    let mut header = header;
    let stream = zoo_stream(spec, f);
    // A canonical design whose era had the race the stream interleaves
    // fails it too, as its kernel did (`DesignSpec::known_race`).
    if !stream.blocks.is_empty() {
        for c in rmaplab_impls::designs::registry::canonical_specs() {
            let run = crate::run::runner::run_spec(
                &stream,
                &c,
                &crate::run::runner::RunOptions::fuzzing(),
            );
            if let Some(fail) = &run.failure
                && let Some(why) = c.known_race(&fail.broken.invariant)
            {
                header.push(format!("{c} as shipped: {why}"));
                header.push(format!("expect [{c}]: fail {}", fail.broken.invariant));
            }
        }
    }
    print_with_header(&stream, &header)
}

/// The stream a zoo file holds: the finding's, its pinned schedules in the
/// lenient run-length form when that fails alike (it runs the same steps
/// where the strict form could, and stays a valid input for a canonical
/// era that cannot take one of them).
pub fn zoo_stream(spec: &DesignSpec, f: &Finding) -> rmaplab_ops::Stream {
    let mut stream = f.stream.clone();
    for b in &mut stream.blocks {
        b.sched = super::shrink::lenient(&b.sched);
    }
    if signature(&stream, std::slice::from_ref(spec)).as_ref() == Some(&f.signature) {
        stream
    } else {
        f.stream.clone()
    }
}

/// The engines a hunt can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The built-in engine ([`hunt_builtin`]).
    Builtin,
    /// libFuzzer through `cargo fuzz` ([`hunt_libfuzzer`]).
    LibFuzzer,
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "builtin" => Ok(Engine::Builtin),
            "libfuzzer" => Ok(Engine::LibFuzzer),
            e => Err(format!("unknown engine `{e}` (builtin or libfuzzer)")),
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Builtin => "builtin",
            Engine::LibFuzzer => "libfuzzer",
        })
    }
}

/// Hunts with `engine`.
pub fn hunt(
    engine: Engine,
    specs: &[DesignSpec],
    baseline: &[DesignSpec],
    seconds: u64,
    seed: u64,
) -> Result<Hunt, String> {
    match engine {
        Engine::Builtin => hunt_builtin(specs, baseline, seconds, seed),
        Engine::LibFuzzer => hunt_libfuzzer(specs, baseline, seconds, seed),
    }
}

/// One row of the time-to-detect table: one bug hunted with one engine on
/// seeds 1..=N.
#[derive(Clone, Debug, Default)]
pub struct HuntRow {
    /// Seeds that found it.
    pub found: u64,
    /// The invariant the last finding broke (`-` if none).
    pub invariant: String,
    /// Seconds to the first failure per seed (infinite: not found or the
    /// hunt failed), sorted.
    pub times: Vec<f64>,
    /// Executions per seed whose hunt ran, sorted.
    pub execs: Vec<u64>,
}

impl HuntRow {
    pub fn median_time(&self) -> f64 {
        self.times[self.times.len() / 2]
    }
    pub fn worst_time(&self) -> f64 {
        *self.times.last().unwrap_or(&f64::INFINITY)
    }
    pub fn median_execs(&self) -> u64 {
        self.execs.get(self.execs.len() / 2).copied().unwrap_or(0)
    }
}

/// Hunts with `engine` on seeds 1..=`seeds` (`seeds >= 1`), one core,
/// `seconds` each; `each(seed, hunt)` is called after every seed.
pub fn hunt_row(
    engine: Engine,
    specs: &[DesignSpec],
    baseline: &[DesignSpec],
    seeds: u64,
    seconds: u64,
    mut each: impl FnMut(u64, &Result<Hunt, String>),
) -> HuntRow {
    let mut row = HuntRow {
        invariant: "-".into(),
        ..HuntRow::default()
    };
    for seed in 1..=seeds {
        let h = hunt(engine, specs, baseline, seconds, seed);
        match &h {
            Ok(h) => {
                if let Some(f) = &h.found {
                    row.found += 1;
                    row.invariant = f.signature.invariant.clone();
                    row.times.push(h.seconds);
                } else {
                    row.times.push(f64::INFINITY);
                }
                row.execs.push(h.execs);
            }
            Err(_) => row.times.push(f64::INFINITY),
        }
        each(seed, &h);
    }
    row.times.sort_by(f64::total_cmp);
    row.execs.sort_unstable();
    row
}
