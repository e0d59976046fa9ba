//! `rmaplab`: the command line. This file parses the arguments (clap) and
//! hands each subcommand to `cli/`, which calls the library and prints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use rmaplab_impls::designs::registry::Era;
use rmaplab_impls::designs::registry::{Design, DesignSpec, select};

mod cli;

#[derive(Parser)]
#[command(
    name = "rmaplab",
    version,
    about = "Differential testbed for Linux's anonymous reverse-map designs",
    long_about = "Runs op streams (.ops files, docs/op-language.md) on the reference model and \
                  on each reverse-map design on an emulated MMU, checking after every op that \
                  every mapped anonymous page is findable, nothing dangles and nothing leaks."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Which designs a command runs.
#[derive(clap::Args, Clone)]
struct DesignArgs {
    /// Design to run (repeatable; default: every canonical design).
    /// `reference` runs the reference model alone.
    #[arg(long = "design", value_name = "NAME")]
    designs: Vec<Design>,
    /// Era: 2010, 2015 or 2022 for chain-2010 (default 2022); 2004 or 2006
    /// for single-list-2004 (default 2004).
    #[arg(long, value_name = "YEAR")]
    era: Option<Era>,
    /// Re-inject a historical bug (repeatable; see `rmaplab bugs`).
    #[arg(long = "bug", value_name = "ID")]
    bugs: Vec<String>,
}

impl DesignArgs {
    fn specs(&self) -> Result<Vec<DesignSpec>, String> {
        select(&self.designs, self.era, &self.bugs)
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a stream on the designs and check every invariant after every op.
    Run {
        /// The `.ops` stream to run.
        file: PathBuf,
        #[command(flatten)]
        designs: DesignArgs,
        /// Report format: text, or the JSON report of docs/op-language.md.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Print per-design counters (anon_vmas, chains, bytes, walks).
        #[arg(long)]
        stats: bool,
        /// Pin the schedule of the block whose `par` is on LINE (repeatable):
        /// `--sched 12='! A..copy_vma B* A*'` (what a failure's replay
        /// command gives).
        #[arg(long = "sched", value_name = "LINE=SCHED")]
        scheds: Vec<String>,
        /// Most schedules of concurrent blocks per design run (default
        /// 4096); a run stopped by it says so and exits 4.
        #[arg(long, value_name = "N")]
        max_schedules: Option<u64>,
    },
    /// List the step names each op kind can produce in a concurrent block
    /// (what `X..LABEL` schedules and traces name).
    Steps,
    /// Parse files without running them.
    Check {
        /// The `.ops` files to parse.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print a stream in canonical form.
    Fmt {
        /// The `.ops` file to print.
        file: PathBuf,
    },
    /// List the historical bugs that can be re-injected with --bug.
    Bugs,
    /// Fuzz with the built-in engine (stable Rust, no instrumentation):
    /// random and mutated bytes through the one decoder, every failure
    /// shrunk and written as an `.ops` file.
    Fuzz {
        /// Stop after this many seconds (default 60; no time limit when
        /// only --execs is given).
        #[arg(long)]
        seconds: Option<u64>,
        /// Worker threads (default: all cores).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Stop after this many executions, all jobs together (split
        /// between them up front: the same seed, jobs and execs give the
        /// same run).
        #[arg(long, value_name = "N")]
        execs: Option<u64>,
        /// RNG seed (default: a fresh one per run, printed first; give it
        /// again to repeat a run).
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        designs: DesignArgs,
        /// Folder the shrunk failures are written to (the only thing
        /// written).
        #[arg(long, value_name = "DIR", default_value = "fuzz-failures")]
        out: PathBuf,
        /// Seed the mutation pool with the `.ops` files under this folder.
        #[arg(long, value_name = "DIR", default_value = "corpus")]
        seeds: PathBuf,
        /// Pages of the sub-window that ops address (small: ops collide).
        #[arg(long, value_name = "PAGES", default_value_t = 24)]
        window: u64,
        /// Ops per stream at most.
        #[arg(long, value_name = "N", default_value_t = 64)]
        max_ops: usize,
        /// Keep fuzzing after the first failure.
        #[arg(long)]
        keep_going: bool,
    },
    /// Turn a fuzzer artifact (raw bytes) into an `.ops` stream; a failing
    /// one (on the designs of `RMAPLAB_SPECS`, as the fuzz targets read it)
    /// into the corpus file the target printed.
    Import {
        /// The raw input bytes (a libFuzzer `crash-…` file, an AFL crash).
        artifact: PathBuf,
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Shrink a failing `.ops` file while it keeps failing the same way.
    Shrink {
        /// The failing `.ops` file.
        file: PathBuf,
        #[command(flatten)]
        designs: DesignArgs,
        /// Write the shrunk stream here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Fuzz one re-injected bug until the oracle fails: time and execs to
    /// the first failure, shrink, and write the zoo file OUT/zoo/ID.ops
    /// (corpus/zoo/ID.ops too with --update-zoo).
    Hunt {
        /// The bug to hunt (an injectable id of `rmaplab bugs`, e.g. b16),
        /// injected in the design and era it shipped in.
        #[arg(long, value_name = "ID")]
        bug: String,
        /// builtin or libfuzzer (needs cargo-fuzz).
        #[arg(long, default_value = "builtin")]
        engine: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// RNG seed (libFuzzer's -seed= with --engine libfuzzer); the zoo
        /// file's header records it.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Folder the zoo file is written to, as DIR/zoo/ID.ops.
        #[arg(long, value_name = "DIR", default_value = "fuzz-failures")]
        out: PathBuf,
        /// Also write corpus/zoo/ID.ops (from the repository's root), the
        /// regression file `cargo test` replays.
        #[arg(long)]
        update_zoo: bool,
    },
    /// The time-to-detect table: every injectable bug, seeds 1..=N, one core.
    HuntTable {
        /// Bugs to hunt (repeatable; default: every injectable one).
        #[arg(long = "bug", value_name = "ID")]
        bugs: Vec<String>,
        /// Engines: builtin, libfuzzer (repeatable).
        #[arg(long = "engine", value_name = "ENGINE", default_values_t = [String::from("builtin"), String::from("libfuzzer")])]
        engines: Vec<String>,
        /// Hunts per bug and engine, with seeds 1..=N.
        #[arg(long, value_name = "N", default_value_t = 5)]
        seeds: u64,
        /// Give up on one hunt after this many seconds.
        #[arg(long, default_value_t = 120)]
        seconds: u64,
    },
    /// Measure execs/s, RSS and per-op cost (figures, not tests).
    Bench {
        #[command(flatten)]
        designs: DesignArgs,
        /// Streams per throughput measurement.
        #[arg(long, value_name = "N", default_value_t = 20_000)]
        execs: usize,
        /// Executions for the RSS measurement (0: skip).
        #[arg(long, value_name = "N", default_value_t = 0)]
        rss_execs: usize,
        /// Measure nothing: write the `--execs` 64-op throughput streams
        /// as raw fuzzer inputs under this folder, to time libFuzzer or
        /// AFL on the same streams (`differential -runs=0 DIR`).
        #[arg(long, value_name = "DIR")]
        emit_inputs: Option<PathBuf>,
        /// Measure only what these checks cost (`layout`, `mapcount` or
        /// `layout,mapcount`): the --execs throughput streams, all designs
        /// together, timed with every check and without these, alternately;
        /// prints both execs/s and the ratio. Every engine runs every check.
        #[arg(long, value_name = "CHECKS", conflicts_with = "emit_inputs")]
        without: Option<String>,
    },
    /// Compare what the designs spend on the same work: named, parametric
    /// workloads (`--list`) run on each design and era, measuring live
    /// anon_vmas, AVCs and bytes, allocations (and those freed unused),
    /// and the VMAs each of the workload's own rmap walks visited, by page
    /// class. No oracle runs: every walk counted is the workload's.
    Cost {
        /// The workload (see `--list`).
        #[arg(long, short, required_unless_present_any = ["list", "claims"])]
        workload: Option<String>,
        /// Measure the claims behind each redesign instead (docs/cost.md):
        /// prints the claims table (or every row as CSV/JSON).
        #[arg(long, conflicts_with_all = ["workload", "sweep", "params", "specs", "emit"])]
        claims: bool,
        /// With --claims: write one SVG chart per claim under this folder.
        #[arg(long, value_name = "DIR", requires = "claims")]
        plot: Option<PathBuf>,
        /// List the workloads and their parameters.
        #[arg(long)]
        list: bool,
        /// One parameter swept: `KEY=V1,V2,...`, `KEY=LO..HI*F` (doubling
        /// with F=2: `n=1..256*2`) or `KEY=LO..HI+S`.
        #[arg(long, value_name = "KEY=VALUES")]
        sweep: Option<String>,
        /// A fixed parameter (repeatable).
        #[arg(long = "param", short, value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// A design spec as corpus headers write it, e.g. `chain-2010
        /// era=2015` (repeatable; default: single-list-2004, chain-2010 eras
        /// 2010, 2015, 2022, prealloc-2026, eager-2010).
        #[arg(long = "spec", value_name = "SPEC")]
        specs: Vec<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: cli::cost::CostFormat,
        /// Also write each point's ops as an `.ops` file under this folder.
        #[arg(long, value_name = "DIR")]
        emit: Option<PathBuf>,
    },
    /// Encode the `.ops` files under a folder as fuzzer seed inputs.
    Seeds {
        /// Folder of `.ops` files (searched recursively).
        #[arg(default_value = "corpus")]
        dir: PathBuf,
        /// Folder to write one NAME.bin input per encodable file to
        /// (created if missing).
        #[arg(long, short, value_name = "DIR")]
        out: PathBuf,
    },
    /// Run a stream on the host's Linux kernel and on the emulator and diff
    /// them: every outcome and value, and at every dump the VMA layout,
    /// frame classes and map counts. Default designs: those with Linux
    /// 6.18's VMA semantics (chain-2010 and prealloc-2026).
    /// Exit 0 all agree, 1 mismatch, 2 bad input, 3 the host cannot serve
    /// (needs Linux/x86_64, root and readable PFNs).
    #[command(mut_arg("designs", |a| a.help(
        "Design to compare with (repeatable; default: chain-2010 and prealloc-2026, \
         the designs with Linux 6.18's VMA semantics). `reference` compares the \
         reference model, which has outcomes and values but no pages")))]
    Kernel {
        /// The stream (absent with --fuzz or --bench).
        #[arg(required_unless_present_any = ["fuzz", "bench"])]
        file: Option<PathBuf>,
        #[command(flatten)]
        designs: DesignArgs,
        /// Random decoder streams (without emulator-only ops) on the kernel
        /// and the designs; every mismatch shrunk and saved as `.ops`.
        #[arg(long, conflicts_with_all = ["file", "bench"])]
        fuzz: bool,
        /// How long --fuzz runs, in seconds.
        #[arg(long, default_value_t = 60, requires = "fuzz")]
        seconds: u64,
        /// RNG seed of --fuzz (default: a fresh one per run, printed
        /// first; give it again to repeat a run).
        #[arg(long, requires = "fuzz")]
        seed: Option<u64>,
        /// Folder --fuzz writes mismatching streams to.
        #[arg(
            long,
            value_name = "DIR",
            default_value = "kernel-mismatches",
            requires = "fuzz"
        )]
        out: PathBuf,
        /// --fuzz worker threads, each with its own CPU.
        #[arg(long, value_name = "N", default_value_t = 1, requires = "fuzz")]
        jobs: usize,
        /// Stop --fuzz after this many streams.
        #[arg(long, value_name = "N", requires = "fuzz")]
        execs: Option<u64>,
        /// Ops per --fuzz stream at most.
        #[arg(long, value_name = "N", default_value_t = 64, requires = "fuzz")]
        max_ops: usize,
        /// Pages of the sub-window that --fuzz ops address.
        #[arg(long, value_name = "PAGES", default_value_t = 24, requires = "fuzz")]
        window: u64,
        /// Longest range a --fuzz op names, in pages.
        #[arg(long, value_name = "PAGES", default_value_t = 8, requires = "fuzz")]
        max_len: u64,
        /// Measure streams per second on the host kernel with N streams.
        #[arg(long, value_name = "N", conflicts_with = "file")]
        bench: Option<usize>,
    },
    /// Write a stream as a standalone C program that replays it with real
    /// syscalls and prints every outcome (a reproducer for kernel
    /// developers).
    ExportC {
        /// The `.ops` stream to export.
        file: PathBuf,
        /// Write here instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// mimalloc: the oracle allocates and frees many small objects per op
/// (PTE lists, walk results, per-check maps); glibc malloc was ~10% of a
/// fuzzing exec.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `rmaplab __puppet CPU`: a process of `rmaplab kernel`'s streams
    // (rmaplab::kernel::puppet), before anything else runs.
    if std::env::args_os().nth(1).as_deref() == Some(rmaplab::kernel::puppet::SUBCOMMAND.as_ref()) {
        rmaplab::kernel::puppet::main();
    }
    rmaplab::kernel::running_exe_serves_as_puppet();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run {
            file,
            designs,
            format,
            stats,
            scheds,
            max_schedules,
        } => match designs.specs() {
            Ok(specs) => cli::run::run(
                &file,
                &specs,
                &cli::run::RunArgs {
                    json: matches!(format, Format::Json),
                    stats,
                    scheds,
                    max_schedules,
                },
            ),
            Err(e) => cli::usage_error(&e),
        },
        Cmd::Steps => cli::run::steps(),
        Cmd::Check { files } => cli::run::check(&files),
        Cmd::Fmt { file } => cli::run::fmt(&file),
        Cmd::Bugs => cli::run::bugs(),
        Cmd::Fuzz {
            seconds,
            jobs,
            execs,
            seed,
            designs,
            out,
            seeds,
            window,
            max_ops,
            keep_going,
        } => match designs.specs() {
            Ok(specs) => cli::fuzz::fuzz(&cli::fuzz::FuzzArgs {
                seconds,
                jobs,
                execs,
                seed,
                specs,
                out,
                seeds,
                window,
                max_ops,
                keep_going,
            }),
            Err(e) => cli::usage_error(&e),
        },
        Cmd::Import { artifact, out } => cli::fuzz::import(&artifact, out.as_deref()),
        Cmd::Shrink { file, designs, out } => match designs.specs() {
            Ok(specs) => cli::fuzz::shrink(&file, &specs, out.as_deref()),
            Err(e) => cli::usage_error(&e),
        },
        Cmd::Seeds { dir, out } => cli::fuzz::seeds(&dir, &out),
        Cmd::HuntTable {
            bugs,
            engines,
            seeds,
            seconds,
        } => cli::fuzz::hunt_table(&bugs, &engines, seeds, seconds),
        Cmd::Hunt {
            bug,
            engine,
            seconds,
            seed,
            out,
            update_zoo,
        } => cli::fuzz::hunt(&cli::fuzz::HuntArgs {
            bug,
            engine,
            seconds,
            seed,
            out,
            update_zoo,
        }),
        Cmd::Cost {
            workload,
            claims,
            plot,
            list,
            sweep,
            params,
            specs,
            format,
            emit,
        } => {
            if list {
                print!("{}", cli::cost::list());
                return ExitCode::SUCCESS;
            }
            cli::cost::cost(&cli::cost::CostArgs {
                claims,
                plot: plot.as_deref(),
                workload: workload.as_deref().unwrap_or_default(),
                sweep: sweep.as_deref(),
                params: &params,
                specs: &specs,
                format,
                emit: emit.as_deref(),
            })
        }
        Cmd::Bench {
            designs,
            execs,
            rss_execs,
            emit_inputs,
            without,
        } => match designs.specs() {
            Ok(specs) => cli::fuzz::bench(
                &specs,
                execs,
                rss_execs,
                emit_inputs.as_deref(),
                without.as_deref(),
            ),
            Err(e) => cli::usage_error(&e),
        },
        Cmd::Kernel {
            file,
            designs,
            fuzz,
            seconds,
            seed,
            out,
            jobs,
            execs,
            max_ops,
            window,
            max_len,
            bench,
        } => {
            let specs =
                match cli::kernel::kernel_specs(&designs.designs, designs.era, &designs.bugs) {
                    Ok(s) => s,
                    Err(e) => return cli::usage_error(&e),
                };
            match (file, bench) {
                (_, Some(n)) => cli::kernel::kernel_bench(n),
                (Some(f), None) => cli::kernel::kernel(&f, &specs),
                (None, None) if fuzz => cli::kernel::kernel_fuzz(&cli::kernel::KernelFuzzArgs {
                    seconds,
                    seed,
                    out,
                    specs,
                    jobs,
                    execs,
                    max_ops,
                    window,
                    max_len,
                }),
                (None, None) => cli::usage_error("give a FILE.ops, --fuzz or --bench N"),
            }
        }
        Cmd::ExportC { file, out } => cli::kernel::export_c(&file, out.as_deref()),
    }
}
