//! What every fuzzing engine calls: raw bytes → the one decoder → every
//! configured design with the oracle after every op ([`check_bytes`]). The
//! libFuzzer and AFL targets in `fuzz/` are thin wrappers over it
//! ([`fuzz_one`], [`libfuzzer_mutate`]); the built-in engine
//! of `rmaplab fuzz` ([`run_engine`]) is here too: random and mutated
//! inputs (some mutations change only a block's schedule bytes, some the
//! ops of the decoded stream: [`super::mutate`]), a pool of
//! inputs that brought a new op kind, op-kind pair, fork depth, block
//! step or kernel path ([`Coverage`]; not code coverage: the engine is not
//! instrumented, the MMU notes the kernel paths it models), every
//! new failure shrunk and written as an `.ops` file.
//!
//! Whatever the engine, a failure ends up as a corpus file: the stream
//! after a header that says what it must do ([`corpus_file`]), ready for
//! `corpus/` as it is. A panic is a failure like any other (invariant
//! `panic`): the runner catches it per design run, and what would panic
//! outside a design's run (decoding, comparing the runs) is caught per
//! execution here.

use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use rmaplab_impls::designs::registry::{DesignSpec, canonical_specs};
use rmaplab_impls::mmu::MmuStats;

use super::features;
use super::merge_race::Ready;
use super::mutate::mutate_ops;
use super::shrink::{Signature, shrink, shrink_keeping};
use crate::oracle::check::invariant;
use crate::run::corpus::expect_lines;
use crate::run::panic::{Panic, catch};
use crate::run::runner::{RunOptions, run_all};
use rmaplab_ops::decode::schedule::mutate_schedule;
use rmaplab_ops::decode::{DECODED_OP_KINDS, DecodeConfig, decode, encode};
use rmaplab_ops::print::print_with_header;
use rmaplab_ops::{Op, Stream};

/// A failing input found by an engine.
#[derive(Clone, Debug)]
pub struct Finding {
    pub stream: Stream,
    pub signature: Signature,
    /// The failure as the runner reports it (op, invariant, detail).
    pub report: String,
}

/// Decodes `data` and runs it on `specs`; `Err` describes the first failure.
pub fn check_bytes(
    data: &[u8],
    cfg: &DecodeConfig,
    specs: &[DesignSpec],
) -> Result<(), Box<Finding>> {
    let stream = decode(data, cfg);
    check_stream(&stream, specs)
}

/// Runs `stream` on `specs` with the full oracle.
pub fn check_stream(stream: &Stream, specs: &[DesignSpec]) -> Result<(), Box<Finding>> {
    check_stream_stats(stream, specs, &mut MmuStats::default())
}

/// [`check_stream`]; when it passes, a block's trace has a walk racing
/// an mremap's move ([`walk_races_move`]) and the stream is one of the
/// racing streams it selects ([`explores_races`]: one in
/// [`TARGET_RACE_EVERY`], by a hash of the stream), the stream again with
/// its blocks explored ([`explore_races`], at most [`RACE_MAX_SCHEDULES`]
/// schedules per design): what the fuzz targets check, so that libFuzzer
/// and AFL try those interleavings as the built-in engine does. The choice
/// depends on the stream alone, so `rmaplab import` of an artifact gives
/// the AFL target's verdict (the libFuzzer target explores more:
/// [`fuzz_stream_counters`]). A failure found so is the explored stream's
/// (its blocks' `sched explore:2`).
pub fn check_stream_races(stream: &Stream, specs: &[DesignSpec]) -> Result<(), Box<Finding>> {
    check_races(stream, specs, &mut Choice::Hash)
}

/// The AFL target (and `rmaplab import`'s first verdict) explores one
/// racing stream in this many ([`explores_races`]): exploring each one
/// left libFuzzer a twentieth of its throughput. (The libFuzzer target
/// counts instead: [`Choice::Novel`].)
pub const TARGET_RACE_EVERY: u64 = 8;

/// Whether the fuzz targets explore the racing blocks of `stream`: one
/// stream in [`TARGET_RACE_EVERY`], chosen by a hash of its text
/// (ops and schedules), so that the same stream always gets the same
/// choice (a crash artifact replays with `rmaplab import`).
pub fn explores_races(stream: &Stream) -> bool {
    let hash = rmaplab_ops::print::print(stream)
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    // A final mix (murmur3's): the bytes that differ between two racing
    // streams are often the last ones, which FNV-1a spreads little.
    let h = (hash ^ (hash >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    (h ^ (h >> 33)).is_multiple_of(TARGET_RACE_EVERY)
}

/// [`check_stream_explored`]: what `rmaplab import` and the libFuzzer
/// hunt replay a crash artifact with, as the libFuzzer target may have
/// explored any racing block or any block ([`Choice::Novel`]).
pub fn check_stream_explored(stream: &Stream, specs: &[DesignSpec]) -> Result<(), Box<Finding>> {
    check_races(stream, specs, &mut Choice::All)
}

/// Which blocks a fuzz target explores once a stream has passed.
enum Choice<'a> {
    /// A racing stream ([`racing_end`]) selected by
    /// [`explores_races`]: the AFL target's choice, from the stream alone
    /// (AFL forks a fresh process per input, so no state of the target's
    /// process would persist from one input to the next).
    Hash,
    /// The libFuzzer target's: the features of the run go to `emit`
    /// ([`super::features`]), and what to explore is the built-in engine's
    /// choice ([`block_exploration`]), made with this process's coverage
    /// ([`TARGET_STATE`]): every block when the blocks' traces reached a
    /// new (actor, step) pair or actor switch, else one racing stream in
    /// [`RACE_EVERY`].
    Novel(&'a mut dyn FnMut(u64)),
    /// Whatever [`Choice::Novel`] could have explored: the racing blocks,
    /// then every block (replaying an artifact).
    All,
}

/// What the libFuzzer target keeps from one input to the next in its
/// process ([`Choice::Novel`]): the built-in engine's coverage map of one
/// job, and the pool that engine would have kept, which
/// [`libfuzzer_mutate`] mutates as the built-in engine mutates its pool
/// (libFuzzer keeps an input only for new counters, which a racing input
/// rarely brings).
#[derive(Default)]
struct TargetState {
    cov: Coverage,
    /// Encoded inputs, at most [`TARGET_POOL_MAX`]; when full, a new one
    /// replaces one chosen by [`TargetState::kept`].
    pool: Vec<PoolEntry>,
    /// Inputs kept so far (chooses the one a full pool replaces).
    kept: u64,
    /// The bytes [`libfuzzer_mutate`] made last: libFuzzer runs each
    /// mutation it asks for right after it, and the typed target sees only
    /// the decoded stream, so the pool keeps these when they decode to the
    /// stream run (the raw input, whose swarm header and aims its
    /// mutations keep, as the built-in engine's pool does), else its
    /// encoding.
    last_mutant: Vec<u8>,
    /// Inputs whose end state offers a merging move, which
    /// [`libfuzzer_mutate`] races ([`Ready`]).
    ready: Ready,
}

static TARGET_STATE: Mutex<Option<TargetState>> = Mutex::new(None);

/// Most inputs [`TARGET_STATE`]'s pool holds (the built-in engine's job's).
const TARGET_POOL_MAX: usize = 4096;

/// The bytes of `stream`: `last_mutant` when it decodes to it (the raw
/// input, whose swarm header and aims its mutations keep), else its
/// encoding (`None`: it has none).
fn raw_or_encoded(last_mutant: &[u8], stream: &Stream) -> Option<Vec<u8>> {
    let cfg = DecodeConfig::default();
    if catch(|| decode(last_mutant, &cfg) == *stream).unwrap_or(false) {
        Some(last_mutant.to_vec())
    } else {
        encode(stream, &cfg).ok()
    }
}

impl TargetState {
    /// Keeps `stream` (encoded) for [`libfuzzer_mutate`]; once the pool is
    /// full, in place of an entry chosen by a hash of the count, so that
    /// the pool follows what the process reaches now.
    fn keep(&mut self, stream: &Stream) {
        let Some(bytes) = raw_or_encoded(&self.last_mutant, stream) else {
            return;
        };
        let entry = PoolEntry {
            bytes,
            blocks: !stream.blocks.is_empty(),
        };
        self.kept += 1;
        if self.pool.len() < TARGET_POOL_MAX {
            self.pool.push(entry);
        } else {
            let i =
                (self.kept.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % self.pool.len();
            self.pool[i] = entry;
        }
    }
}

/// What a passing stream with blocks gets explored with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exploration {
    None,
    /// Up to the end of its last racing block ([`explore_races`]).
    Races(usize),
    /// Up to the end of its last block, every block ([`explore_cut`], at
    /// most [`EXPLORE_MAX_SCHEDULES`] schedules per design).
    Blocks(usize),
}

/// The built-in engine's choice for a passing stream with blocks, which
/// the libFuzzer target makes too: every block when the blocks' traces
/// reached a `new` feature; else, when a block races (`cut`, the end of
/// the last racing block, [`racing_end`]), one such stream in
/// [`RACE_EVERY`] (counted in `cov`) up to `cut`.
fn block_exploration(cov: &mut Coverage, new: bool, cut: usize, stream: &Stream) -> Exploration {
    if new {
        return Exploration::Blocks(blocks_end(stream));
    }
    if cut == 0 {
        return Exploration::None;
    }
    // One racing block in RACE_EVERY is kept and explored: exploring
    // each one (and mutating the pool they fill) left the engine a
    // tenth of its throughput, most of it on shapes already explored.
    cov.races_skipped += 1;
    if cov.races_skipped < RACE_EVERY {
        return Exploration::None;
    }
    cov.races_skipped = 0;
    Exploration::Races(cut)
}

/// [`check_stream_races`] with the exploration `choice`. The explorations
/// run in one order whatever the choice (racing blocks, then every
/// block), so that [`Choice::All`] reports a failure whenever the target
/// could have.
fn check_races(
    stream: &Stream,
    specs: &[DesignSpec],
    choice: &mut Choice,
) -> Result<(), Box<Finding>> {
    let mut acc = MmuStats::default();
    if let Choice::Novel(emit) = choice {
        return check_novel(stream, specs, &mut acc, *emit);
    }
    let mut cut = 0;
    check_stream_with(stream, specs, &mut acc, &RunOptions::fuzzing(), &mut |r| {
        cut = cut.max(racing_end(r));
    })?;
    let (races, all) = match choice {
        Choice::Hash => (cut > 0 && explores_races(stream), false),
        _ => (cut > 0, !stream.blocks.is_empty()),
    };
    if races {
        explore_races(stream, cut, specs, &mut acc)?;
    }
    if all {
        explore_cut(
            stream,
            blocks_end(stream),
            EXPLORE_MAX_SCHEDULES,
            specs,
            &mut acc,
        )?;
    }
    Ok(())
}

/// [`Choice::Novel`]: one input of the libFuzzer target, as one execution
/// of the built-in engine's job ([`worker`], [`check_blocks`]) with this
/// process's [`TARGET_STATE`], every feature also going to `emit`.
fn check_novel(
    stream: &Stream,
    specs: &[DesignSpec],
    acc: &mut MmuStats,
    emit: &mut dyn FnMut(u64),
) -> Result<(), Box<Finding>> {
    let mut guard = TARGET_STATE.lock().unwrap_or_else(|e| e.into_inner());
    let st = guard.get_or_insert_with(TargetState::default);
    if st.cov.add_stream_with(stream, emit) {
        st.keep(stream);
    }
    let (mut new, mut new_paths, mut cut) = (false, false, 0);
    let mut state = Vec::new();
    let cov = &mut st.cov;
    let run = check_stream_with(stream, specs, acc, &path_opts(), &mut |r| {
        for b in &r.blocks {
            new |= cov.add_block_trace_with(&b.trace, emit);
        }
        new_paths |= cov.add_paths_with(stream, &r.paths, emit);
        new_paths |= cov.add_state_with(&r.state, emit);
        if r.state.iter().any(|&f| Ready::is_ready(f)) {
            state.extend_from_slice(&r.state);
        }
        cut = cut.max(racing_end(r));
    });
    if !state.is_empty() {
        let TargetState {
            ready, last_mutant, ..
        } = st;
        ready.offer(&state, || raw_or_encoded(last_mutant, stream));
    }
    if stream.blocks.is_empty() {
        // As the built-in engine: new kernel paths keep the input, failed
        // or not.
        if new_paths {
            st.keep(stream);
        }
        return run;
    }
    run?;
    if !new && new_paths {
        st.keep(stream);
    }
    let e = block_exploration(&mut st.cov, new, cut, stream);
    if e != Exploration::None {
        st.keep(stream);
    }
    drop(guard);
    match e {
        Exploration::None => Ok(()),
        Exploration::Races(cut) => explore_races(stream, cut, specs, acc),
        Exploration::Blocks(end) => explore_cut(stream, end, EXPLORE_MAX_SCHEDULES, specs, acc),
    }
}

/// The end (op index) of the last block of `stream` (0: none).
fn blocks_end(stream: &Stream) -> usize {
    stream
        .blocks
        .iter()
        .map(|b| b.first + b.actors)
        .max()
        .unwrap_or(0)
}

/// Whether `stream` fails on a non-empty `baseline`: as it is, or with
/// every block under `explore:3` (the whole stream, at most the runner's
/// default number of schedules per design), as the zoo's regression test
/// runs it: a finding must not be the baseline's own race, which a cheaper
/// exploration (two preemptions, 64 schedules) can miss; that one runs
/// first, as it rejects most of them. Only findings pay for it.
pub fn fails_baseline(stream: &Stream, baseline: &[DesignSpec]) -> bool {
    if baseline.is_empty() {
        return false;
    }
    if check_stream(stream, baseline).is_err() {
        return true;
    }
    if stream.blocks.is_empty() {
        return false;
    }
    // Cheap first (a baseline's own race usually shows there): up to the
    // last block, explore:2, a few schedules.
    let end = blocks_end(stream);
    let mut acc = MmuStats::default();
    if explore_cut(stream, end, RACE_MAX_SCHEDULES, baseline, &mut acc).is_err() {
        return true;
    }
    let mut explored = stream.clone();
    for b in &mut explored.blocks {
        b.sched = rmaplab_ops::Sched::Explore { preemptions: 3 };
    }
    check_stream(&explored, baseline).is_err()
}

/// The end (op index) of the last block of `r`'s path whose trace races
/// an mremap's move ([`walk_races_move`]), a merge ([`walk_races_merge`]),
/// a freed anon_vma slot ([`lookup_races`]) or a per-VMA-lock fault
/// ([`fault_races`]); 0 if none does.
fn racing_end(r: &crate::run::runner::RunReport) -> usize {
    r.blocks
        .iter()
        .filter(|b| {
            walk_races_move(&b.trace)
                || walk_races_merge(&b.trace)
                || lookup_races(&b.trace)
                || fault_races(&b.trace)
        })
        .map(|b| b.first + b.actors)
        .max()
        .unwrap_or(0)
}

/// Most schedules one design run of an exploration of racing blocks
/// ([`explore_races`]) starts.
pub const RACE_MAX_SCHEDULES: u64 = 64;

/// `stream` up to op `cut` (the end of its last racing block; 0: none),
/// with its blocks explored ([`explore_blocks`], at most
/// [`RACE_MAX_SCHEDULES`] schedules per design): the failure a schedule
/// of the racing blocks shows there, cheaply (the rest of the stream is
/// left out, as every schedule would run it again).
fn explore_races(
    stream: &Stream,
    cut: usize,
    specs: &[DesignSpec],
    acc: &mut MmuStats,
) -> Result<(), Box<Finding>> {
    explore_cut(stream, cut, RACE_MAX_SCHEDULES, specs, acc)
}

/// `stream` up to op `cut` (0: nothing to do) with its blocks explored,
/// at most `max_schedules` schedules per design run.
fn explore_cut(
    stream: &Stream,
    cut: usize,
    max_schedules: u64,
    specs: &[DesignSpec],
    acc: &mut MmuStats,
) -> Result<(), Box<Finding>> {
    if cut == 0 {
        return Ok(());
    }
    let ops = stream.ops[..cut].to_vec();
    let blocks = stream
        .blocks
        .iter()
        .filter(|b| b.first + b.actors <= cut)
        .cloned()
        .collect();
    let opts = RunOptions {
        max_schedules,
        ..RunOptions::fuzzing()
    };
    let cut = Stream::with_blocks(ops, blocks);
    check_stream_with(&explore_blocks(&cut), specs, acc, &opts, &mut |_| {})
}

/// [`check_stream`], adding what the MMUs did to `acc`.
pub fn check_stream_stats(
    stream: &Stream,
    specs: &[DesignSpec],
    acc: &mut MmuStats,
) -> Result<(), Box<Finding>> {
    check_stream_with(stream, specs, acc, &RunOptions::fuzzing(), &mut |_| {})
}

/// [`check_stream_stats`] with `opts` for the runs (`rmaplab bench
/// --without` times the fuzzing options against fewer checks).
pub fn check_stream_opts(
    stream: &Stream,
    specs: &[DesignSpec],
    opts: &RunOptions,
    acc: &mut MmuStats,
) -> Result<(), Box<Finding>> {
    check_stream_with(stream, specs, acc, opts, &mut |_| {})
}

/// [`check_stream_stats`] with `opts`, showing each design's run to
/// `observe` (the engine reads the blocks' traces).
pub fn check_stream_with(
    stream: &Stream,
    specs: &[DesignSpec],
    acc: &mut MmuStats,
    opts: &RunOptions,
    observe: &mut dyn FnMut(&crate::run::runner::RunReport),
) -> Result<(), Box<Finding>> {
    // A design's panic is its run's failure; one outside the runs (while
    // comparing them) is caught here.
    let (runs, cmp) = match catch(|| run_all(stream, specs, opts)) {
        Ok(r) => r,
        Err(p) => return Err(Box::new(outside_panic(stream.clone(), &p))),
    };
    for r in &runs {
        add_stats(acc, &r.stats.mmu);
        observe(r);
    }
    for (spec, run) in specs.iter().zip(&runs) {
        if let Some(f) = &run.failure {
            if !stream.blocks.is_empty() && spec.known_race(&f.broken.invariant).is_some() {
                acc.known_races += 1;
                continue;
            }
            return Err(Box::new(Finding {
                stream: stream.clone(),
                signature: Signature::new(spec.label(), &f.broken),
                report: format!("{}: {f}", spec.label()),
            }));
        }
    }
    if let Some(f) = cmp.failure {
        return Err(Box::new(Finding {
            stream: stream.clone(),
            signature: Signature::new(invariant::DIFFERENTIAL, &f.broken),
            report: f.to_string(),
        }));
    }
    Ok(())
}

/// A panic outside every design's run, as a finding.
fn outside_panic(stream: Stream, p: &Panic) -> Finding {
    Finding {
        stream,
        signature: Signature::outside(p),
        report: format!("{}: {}: {p}", super::shrink::RMAPLAB, invariant::PANIC),
    }
}

/// [`Signature::who`] of a panic in the decoder (no stream to show).
pub const DECODER: &str = "decoder";

/// The glue for libFuzzer and AFL: the canonical designs (or
/// `RMAPLAB_SPECS`) on the stream the default decoder makes of `data`
/// ([`fuzz_stream`]).
pub fn fuzz_one(data: &[u8]) {
    fuzz_stream(&decode(data, &DecodeConfig::default()));
}

/// Runs `stream` on the designs of `RMAPLAB_SPECS` (default: the canonical
/// ones) with the full oracle. On a failure, including a panic, prints the
/// stream as a corpus file ([`target_finding_file`], the same text
/// `rmaplab import` makes of the crash artifact) to standard error, then
/// panics, which libFuzzer and AFL record as a crash.
///
/// `RMAPLAB_SPECS` selects other designs, `;`-separated in the corpus
/// header's `[SPEC]` words (`chain-2010 era=2015;single-list-2004 bug=b01`);
/// a failure that fails on the designs of `RMAPLAB_BASELINE` too is not
/// reported ([`baseline_from_env`]).
pub fn fuzz_stream(stream: &Stream) {
    target_stream(stream, &mut Choice::Hash);
}

thread_local! {
    static TARGET_SPECS: Vec<DesignSpec> = specs_from_env();
    static TARGET_BASELINE: Vec<DesignSpec> = baseline_from_env();
}

/// The libFuzzer target: [`fuzz_stream`], setting the counter of each
/// feature of the run in `counters` ([`features::set_counter`]; the
/// target's `__libfuzzer_extra_counters` map, which libFuzzer clears
/// before each execution and reads after it) and exploring blocks as the
/// built-in engine does ([`Choice::Novel`]: every block of a stream whose
/// blocks reached a step or actor switch new to this process, one racing
/// stream in [`RACE_EVERY`]), keeping the inputs that engine keeps for
/// [`libfuzzer_mutate`]. Whether a stream was explored depends on what the
/// process ran before;
/// `rmaplab import` explores whatever this target could have
/// ([`check_stream_explored`]), so a crash artifact replays.
pub fn fuzz_stream_counters(stream: &Stream, counters: &[AtomicU8]) {
    target_stream(
        stream,
        &mut Choice::Novel(&mut |f| features::set_counter(counters, f)),
    );
}

/// [`fuzz_stream`] with the exploration `choice`.
fn target_stream(stream: &Stream, choice: &mut Choice) {
    TARGET_SPECS.with(|specs| {
        // The baseline runs the stream the failure is reported for (the
        // explored cut stream when an exploration found it), and first: a
        // failure it shares (b12's own race in a b08 hunt, say) is dropped
        // before the corpus file, which runs every design, is written.
        if let Some(f) = check_races(stream, specs, choice).err()
            && !TARGET_BASELINE.with(|b| fails_baseline(&f.stream, b))
        {
            let (text, failure) = finding_text(&f, specs);
            eprintln!(
                "\n==== rmaplab: the input as a corpus file (`rmaplab import` of the crash \
                 artifact gives the same) ====\n{text}==== end of the corpus file ====\n"
            );
            // Outside `catch`: the fuzzer's panic hook aborts the process.
            panic!("rmaplab: {failure}");
        }
    });
}

/// What a fuzz target prints for `stream` before it crashes: `None` when
/// the stream passes on `specs`, else the corpus file of the failure
/// ([`corpus_file`], not shrunk: AFL would count a crash that takes a
/// shrink's time as a hang, and `cargo fuzz tmin` runs a crash thousands of
/// times; `rmaplab shrink` shrinks the file).
pub fn target_finding_file(stream: &Stream, specs: &[DesignSpec]) -> Option<String> {
    target_finding(stream, specs, &mut Choice::Hash).map(|(text, _, _)| text)
}

/// [`target_finding_file`], the failure's first line and the failing
/// stream.
fn target_finding(
    stream: &Stream,
    specs: &[DesignSpec],
    choice: &mut Choice,
) -> Option<(String, String, Stream)> {
    let f = check_races(stream, specs, choice).err()?;
    let (text, failure) = finding_text(&f, specs);
    Some((text, failure, f.stream))
}

/// The corpus file of a fuzz target's finding `f` and its failure line.
fn finding_text(f: &Finding, specs: &[DesignSpec]) -> (String, String) {
    let shrink_cmd = match specs.iter().find(|s| s.label() == f.signature.who) {
        Some(s) => format!("rmaplab shrink FILE.ops {}", s.cli_flags()),
        None => "rmaplab shrink FILE.ops".to_string(),
    };
    let origin = format!("found by a fuzz target (libFuzzer or AFL); not shrunk: {shrink_cmd}");
    let text = corpus_file(&f.stream, &f.signature, specs, &origin);
    // The failure as the file states it (its line numbers are the file's).
    let failure = text
        .lines()
        .find_map(|l| l.strip_prefix("# failure: "))
        .unwrap_or(first_line(&f.report))
        .to_string();
    (text, failure)
}

/// `rmaplab import`: the stream the default decoder (the fuzz targets')
/// makes of `bytes`. When it fails on `specs`, the corpus file a fuzz
/// target prints for it ([`target_finding_file`]; when that passes, with
/// every exploration the libFuzzer target could have made,
/// [`check_stream_explored`]), else the stream after a line saying where
/// it came from.
pub fn import_file(bytes: &[u8], artifact: &Path, specs: &[DesignSpec]) -> String {
    let stream = decode(bytes, &DecodeConfig::default());
    target_finding_file(&stream, specs)
        .or_else(|| target_finding(&stream, specs, &mut Choice::All).map(|(text, _, _)| text))
        .unwrap_or_else(|| {
            let header = vec![format!(
                "imported from {} ({} bytes)",
                artifact.display(),
                bytes.len()
            )];
            print_with_header(&stream, &header)
        })
}

/// The libFuzzer custom mutator. When the input has a concurrent block, 1
/// time in 4 it changes only schedule bytes ([`mutate_schedule`]: the same
/// ops under another interleaving). Otherwise, [`BUILTIN_SHARE_NUM`] times
/// in [`BUILTIN_SHARE_DENOM`] an input as the built-in engine makes its
/// next one (half of the time a fresh random input of 0..=400 bytes, else
/// [`mutate`] of an entry of the pool the target keeps as that engine
/// does, [`TARGET_STATE`]); the rest of the time a mutation of the input
/// libFuzzer chose by its coverage: a third of the time op-level changes
/// ([`mutate_ops`], a splice with a pool entry), else libFuzzer's own
/// mutation (`default`, i.e. `LLVMFuzzerMutate`).
///
/// Coverage-guided mutation of short inputs alone was slow to assemble the
/// long fork/unmap sequences some bugs need (b16: 3 of 5 seeds within 90 s,
/// median 83 s); fresh whole streams from the decoder keep the op mix and
/// process-tree shapes it was designed for, and the built-in engine's pool
/// keeps the racing inputs and those with new block steps that libFuzzer,
/// keeping an input only for a new counter, drops; libFuzzer's own half
/// keeps what libFuzzer is good at. libFuzzer's byte mutations rarely keep
/// a block's ops while changing its schedule (an inserted or deleted byte
/// shifts every later field; the length byte must follow). `seed` is
/// libFuzzer's, so runs stay reproducible with `-seed=`.
pub fn libfuzzer_mutate(
    data: &mut [u8],
    size: usize,
    max_size: usize,
    seed: u32,
    default: fn(&mut [u8], usize, usize) -> usize,
) -> usize {
    let len = mutate_for_libfuzzer(data, size, max_size, seed, default);
    let mut state = TARGET_STATE.lock().unwrap_or_else(|e| e.into_inner());
    let last = &mut state.get_or_insert_with(TargetState::default).last_mutant;
    last.clear();
    last.extend_from_slice(&data[..len]);
    len
}

/// [`libfuzzer_mutate`]'s mutation.
fn mutate_for_libfuzzer(
    data: &mut [u8],
    size: usize,
    max_size: usize,
    seed: u32,
    default: fn(&mut [u8], usize, usize) -> usize,
) -> usize {
    let mut rng = SmallRng::seed_from_u64(u64::from(seed));
    let max_size = max_size.min(data.len());
    if rng.random_ratio(1, 4) {
        let mut v = data[..size.min(max_size)].to_vec();
        if mutate_schedule(&mut v, max_size, &DecodeConfig::default(), &mut || {
            rng.random()
        }) {
            data[..v.len()].copy_from_slice(&v);
            return v.len();
        }
    }
    let (entry, other) = {
        let state = TARGET_STATE.lock().unwrap_or_else(|e| e.into_inner());
        match state.as_ref().map(|s| &s.pool) {
            Some(pool) if !pool.is_empty() => {
                let e = &pool[rng.random_range(0..pool.len())];
                let o = &pool[rng.random_range(0..pool.len())];
                (
                    Some(PoolEntry {
                        bytes: e.bytes.clone(),
                        blocks: e.blocks,
                    }),
                    Some(o.bytes.clone()),
                )
            }
            _ => (None, None),
        }
    };
    // A merging move raced in an input whose end state offers one
    // ([`Ready::mutant`]), as often as the built-in engine races one.
    if entry.is_some() && rng.random_ratio(MERGE_RACE_NUM, MERGE_RACE_DENOM) {
        let state = TARGET_STATE.lock().unwrap_or_else(|e| e.into_inner());
        let spec = TARGET_SPECS.with(|s| s.first().cloned());
        if let (Some(st), Some(spec)) = (state.as_ref(), spec)
            && let Some(v) = st.ready.mutant(&mut rng, &DecodeConfig::default(), &spec)
            && v.len() <= max_size
        {
            data[..v.len()].copy_from_slice(&v);
            return v.len();
        }
    }
    if rng.random_ratio(BUILTIN_SHARE_NUM, BUILTIN_SHARE_DENOM) {
        // The built-in engine's next input ([`worker`]).
        let v = match &entry {
            Some(entry) if rng.random_bool(0.5) => {
                mutate(&mut rng, entry, other.as_deref(), &DecodeConfig::default())
            }
            _ => {
                let len = rng.random_range(0..=400);
                (0..len).map(|_| rng.random()).collect()
            }
        };
        let len = v.len().min(max_size);
        data[..len].copy_from_slice(&v[..len]);
        return len;
    }
    // A third of the rest, op-level changes of the input libFuzzer chose
    // by its coverage ([`mutate_ops`]; a splice with a pool entry).
    if rng.random_ratio(1, 3) {
        let input = &data[..size.min(max_size)];
        if let Some(v) = mutate_ops(&mut rng, input, other.as_deref(), &DecodeConfig::default())
            && v.len() <= max_size
        {
            data[..v.len()].copy_from_slice(&v);
            return v.len();
        }
    }
    default(data, size, max_size)
}

/// Of the custom mutator's inputs that are not schedule-only, this many
/// in [`BUILTIN_SHARE_DENOM`] are the built-in engine's
/// ([`libfuzzer_mutate`]).
pub const BUILTIN_SHARE_NUM: u32 = 1;
pub const BUILTIN_SHARE_DENOM: u32 = 2;

/// The designs named by `RMAPLAB_SPECS`, else the canonical ones. A bad
/// value aborts: a fuzzer must not silently test something else.
pub fn specs_from_env() -> Vec<DesignSpec> {
    try_specs_from_env().unwrap_or_else(|e| panic!("{e}"))
}

/// The designs of `RMAPLAB_BASELINE` (the syntax of `RMAPLAB_SPECS`;
/// unset: none): a failure that fails on them too does not crash the fuzz
/// target ([`EngineConfig::baseline`]).
pub fn baseline_from_env() -> Vec<DesignSpec> {
    specs_in_env("RMAPLAB_BASELINE")
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_default()
}

/// The `;`-separated design specs of environment variable `var` (corpus
/// header words), `None` when it is unset or blank; a bad spec is an
/// error naming the variable.
fn specs_in_env(var: &str) -> Result<Option<Vec<DesignSpec>>, String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v
            .split(';')
            .map(|w| {
                w.trim()
                    .parse::<DesignSpec>()
                    .map_err(|e| format!("{var}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Ok(None),
    }
}

/// [`specs_from_env`], a bad value an error.
pub fn try_specs_from_env() -> Result<Vec<DesignSpec>, String> {
    Ok(specs_in_env("RMAPLAB_SPECS")?.unwrap_or_else(canonical_specs))
}

/// The `.ops` text of a finding of the built-in engine ([`corpus_file`];
/// for a panic in the decoder, which leaves no stream, the input's bytes
/// in the header).
pub fn finding_file(f: &Finding, specs: &[DesignSpec]) -> String {
    if f.signature.who == DECODER {
        let header: Vec<String> = f.report.lines().map(str::to_string).collect();
        return print_with_header(&f.stream, &header);
    }
    corpus_file(
        &f.stream,
        &f.signature,
        specs,
        "found by rmaplab fuzz; shrunk",
    )
}

/// A panic in the decoder as a finding: no stream, the input's bytes in
/// hex in the report.
fn decoder_panic(input: &[u8], p: &Panic) -> Finding {
    let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
    Finding {
        stream: Stream::default(),
        signature: Signature {
            who: DECODER.into(),
            invariant: invariant::PANIC.into(),
            panic: Some(p.message.clone()),
        },
        report: format!(
            "{DECODER}: {}: {p}\nthe decoder panicked on this input (hex; `xxd -r -p` gives the \
             bytes, `rmaplab import` decodes them):\n{hex}",
            invariant::PANIC
        ),
    }
}

/// The corpus file of a failing stream, as every engine writes it: `origin`
/// (who found it), the failure, the command that replays it, then `expect`
/// lines for every run the corpus checker (`cargo test`) makes of it, so
/// that it passes the checker as it is: every canonical design and the
/// failing configuration, each `pass` or `fail INVARIANT` as it runs
/// (`panic` for a panic). Line numbers in the failure are the file's.
///
/// Not expressible in a header: the designs disagreeing (`differential`;
/// the checker reports `designs disagree`) and a panic outside every
/// design's run (the checker panics too), which stay failing files.
pub fn corpus_file(stream: &Stream, sig: &Signature, specs: &[DesignSpec], origin: &str) -> String {
    let failing = specs.iter().find(|s| s.label() == sig.who);
    let expects = expect_lines(stream, failing.cloned().as_slice());
    // A `layout` failure needs the design it was compared with: the
    // default run (every canonical design) has both.
    let replay = match failing {
        Some(s) if sig.invariant != crate::oracle::check::invariant::LAYOUT => {
            s.replay_command(Path::new("FILE.ops"))
        }
        _ => "rmaplab run FILE.ops".to_string(),
    };
    // The header is origin, failure, replay and the expects: the ops come
    // after it and `version 1`.
    let header_len = 3 + expects.len();
    let mut shifted = Stream::from_ops(stream.ops.clone());
    for l in &mut shifted.lines {
        *l += header_len;
    }
    if !stream.blocks.is_empty() {
        // Blocks keep their schedules; the text is reparsed for its lines.
        let text = print_with_header(stream, &vec![String::new(); header_len]);
        if let Ok(s) = rmaplab_ops::parse::parse(&text) {
            shifted = s;
        }
    }
    let failure = match check_stream(&shifted, specs) {
        Err(f) => first_line(&f.report).to_string(),
        Ok(()) => format!("{} {} (does not reproduce)", sig.who, sig.invariant),
    };
    let mut header = vec![
        origin.to_string(),
        format!("failure: {failure}"),
        format!("replay: {replay}"),
    ];
    header.extend(expects);
    print_with_header(&shifted, &header)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Adds `b` to `a`, counter by counter.
pub fn add_stats(a: &mut MmuStats, b: &MmuStats) {
    a.walks += b.walks;
    a.vmas_visited += b.vmas_visited;
    a.faults += b.faults;
    a.cow_copies += b.cow_copies;
    a.cow_reuses += b.cow_reuses;
    a.forks += b.forks;
    a.vma_splits += b.vma_splits;
    a.vma_merges += b.vma_merges;
    a.anon_vma_prepares += b.anon_vma_prepares;
    a.fault_around += b.fault_around;
    a.swapouts += b.swapouts;
    a.swapins += b.swapins;
    a.migrations += b.migrations;
    a.known_races += b.known_races;
}

/// Settings of the built-in engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Time budget (`u64::MAX`: none).
    pub seconds: u64,
    /// Stop after this many executions (all jobs together), if set. The
    /// budget is split between the jobs up front, so the same seed, jobs
    /// and budget give the same executions.
    pub max_execs: Option<u64>,
    pub jobs: usize,
    /// Job `j` draws from `seed + j * 0x9e3779b9`.
    pub seed: u64,
    pub decode: DecodeConfig,
    pub specs: Vec<DesignSpec>,
    /// Designs a failure must pass on to count (empty: none): for a bug
    /// that shows only with another one injected, that other alone, so
    /// that a race of the other is not taken for the bug's.
    pub baseline: Vec<DesignSpec>,
    /// Where shrunk failures are written (`None`: not written).
    pub out_dir: Option<PathBuf>,
    /// Seed inputs (encoded `.ops` streams).
    pub seeds: Vec<Vec<u8>>,
    /// Stop at the first failure.
    pub stop_on_failure: bool,
    /// Report progress: [`run_engine`] prints a line to standard error
    /// every 10 s, [`run_engine_with`] calls its observer about 5 times a
    /// second.
    pub progress: bool,
}

/// A snapshot of a running engine, for progress displays.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub elapsed: Duration,
    pub execs: u64,
    pub ops: u64,
    /// Op kinds executed at least once (of `Op::KINDS`).
    pub op_kinds: usize,
    /// Distinct pairs of consecutive op kinds executed (of `Op::KINDS` squared).
    pub op_pairs: usize,
    pub max_fork_depth: usize,
    /// Inputs the jobs added to their mutation pools (seeds not counted).
    pub kept_inputs: usize,
    /// Distinct failures (invariant and design) found so far.
    pub findings: usize,
}

impl Progress {
    /// `op kinds 15/15, op pairs 171/225, fork depth 9, kept inputs 93`:
    /// what the figures count, said in their names.
    pub fn reach(&self) -> String {
        format!(
            "op kinds {}/{}, op pairs {}/{}, fork depth {}, kept inputs {}",
            self.op_kinds,
            DECODED_OP_KINDS,
            self.op_pairs,
            DECODED_OP_KINDS * DECODED_OP_KINDS,
            self.max_fork_depth,
            self.kept_inputs
        )
    }
}

/// What a run of the built-in engine did.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    pub execs: u64,
    pub ops: u64,
    pub elapsed: Duration,
    /// Op kinds executed at least once.
    pub op_kinds: BTreeSet<&'static str>,
    /// Deepest fork chain seen (p0 = depth 0).
    pub max_fork_depth: usize,
    pub findings: Vec<(Finding, Option<PathBuf>)>,
    /// Distinct pairs of consecutive op kinds executed (of `Op::KINDS` squared).
    pub op_pairs: usize,
    /// Inputs the jobs added to their mutation pools because they brought
    /// a new op kind, op-kind pair, fork depth, block step or kernel-path
    /// feature (seeds not counted; each job's pool holds at most 4096).
    pub kept_inputs: usize,
    /// Distinct kernel-path features ([`Coverage::add_paths`]) the jobs
    /// reached (the sum of each job's).
    pub path_features: usize,
    /// What the MMUs did, summed over every execution and design.
    pub mmu: MmuStats,
    /// Executions until the first failure, if any.
    pub execs_to_first_failure: Option<u64>,
    pub time_to_first_failure: Option<Duration>,
}

/// The built-in engine's coverage map: the features of the executions a
/// job has seen ([`super::features`], the libFuzzer target's extra
/// counters too), an input being kept for its mutation pool when it brings
/// a new one.
#[derive(Default)]
pub struct Coverage {
    /// A fixed hasher (not `RandomState`): in the libFuzzer target, the
    /// set's probe sequences are instrumented code, whose edge counters
    /// would differ from one process to the next with random keys and make
    /// a `-seed=` run irreproducible.
    seen: HashSet<u64, BuildHasherDefault<DefaultHasher>>,
    /// Op kinds executed at least once.
    kinds: BTreeSet<&'static str>,
    /// Bit `a * Op::KINDS + b`: op kind `b` ran right after op kind `a`.
    pairs: [u64; PAIR_WORDS],
    max_depth: usize,
    /// Distinct [`Coverage::BLOCK_STEP`] features.
    block_steps: usize,
    /// Streams with a racing block seen since the last one explored.
    races_skipped: u32,
    /// Distinct [`Coverage::KIND_PATH`] and [`Coverage::PATH_SEQ`] features.
    path_features: usize,
    scratch: features::Scratch,
}

impl Coverage {
    /// [`features::PAIR`].
    pub const PAIR: u64 = features::PAIR;
    /// [`features::FORK_DEPTH`].
    pub const FORK_DEPTH: u64 = features::FORK_DEPTH;
    /// [`features::BLOCK_STEP`].
    pub const BLOCK_STEP: u64 = features::BLOCK_STEP;
    /// [`features::KIND_PATH`].
    pub const KIND_PATH: u64 = features::KIND_PATH;
    /// [`features::PATH_SEQ`].
    pub const PATH_SEQ: u64 = features::PATH_SEQ;

    /// Adds what the ops of `stream` reach: op kinds, pairs of consecutive
    /// kinds, fork depths ([`features::stream_features`]). Whether any of
    /// it is new.
    pub fn add_stream(&mut self, stream: &Stream) -> bool {
        let mut new = false;
        for op in &stream.ops {
            new |= self.kinds.insert(op.keyword());
        }
        let mut max = 0;
        let (seen, pairs) = (&mut self.seen, &mut self.pairs);
        features::stream_features(stream, &mut self.scratch, &mut |f| {
            if features::kind(f) == features::FORK_DEPTH {
                max = max.max((f & 0xFFFF_FFFF) as usize);
            }
            if seen.insert(f) {
                new = true;
                if features::kind(f) == features::PAIR {
                    pairs[f as usize / 64] |= 1 << (f % 64);
                }
            }
        });
        if max > self.max_depth {
            self.max_depth = max;
            new = true;
        }
        new
    }

    /// Adds one step of a block's trace: actor `actor` (0 for `A`) stopped
    /// at the yield point `step` ([`features::block_step`]). Whether the
    /// pair is new. (For the runner's per-block traces: inputs whose
    /// schedules reach new interleavings are then kept like those with new
    /// op pairs.)
    pub fn add_block_step(&mut self, actor: usize, step: &str) -> bool {
        self.add_block_feature(features::block_step(actor, step))
    }

    fn add_block_feature(&mut self, f: u64) -> bool {
        let new = self.seen.insert(f);
        self.block_steps += usize::from(new);
        new
    }

    /// Adds a block's labelled trace ([`features::block_trace_features`]:
    /// each (actor, step) pair and each switch between two actors' steps).
    /// Whether any of it is new.
    pub fn add_block_trace(&mut self, trace: &str) -> bool {
        let mut new = false;
        features::block_trace_features(trace, &mut |f, _| new |= self.add_block_feature(f));
        new
    }

    /// Adds the kernel paths a design's run of `stream` took
    /// ([`features::path_features`]: each (op kind, paths) and each
    /// (paths of the same process's previous such op, paths)). Whether any
    /// of it is new.
    pub fn add_paths(&mut self, stream: &Stream, paths: &[(u32, u32)]) -> bool {
        let mut fresh = 0;
        let seen = &mut self.seen;
        features::path_features(stream, paths, &mut self.scratch, &mut |f| {
            fresh += usize::from(seen.insert(f));
        });
        self.path_features += fresh;
        fresh > 0
    }

    /// [`Coverage::add_stream`], each feature also going to `emit` (the
    /// libFuzzer target's counters).
    fn add_stream_with(&mut self, stream: &Stream, emit: &mut dyn FnMut(u64)) -> bool {
        let mut new = false;
        for op in &stream.ops {
            new |= self.kinds.insert(op.keyword());
        }
        let mut max = 0;
        let (seen, pairs) = (&mut self.seen, &mut self.pairs);
        features::stream_features(stream, &mut self.scratch, &mut |f| {
            emit(f);
            if features::kind(f) == features::FORK_DEPTH {
                max = max.max((f & 0xFFFF_FFFF) as usize);
            }
            if seen.insert(f) {
                new = true;
                if features::kind(f) == features::PAIR {
                    pairs[f as usize / 64] |= 1 << (f % 64);
                }
            }
        });
        if max > self.max_depth {
            self.max_depth = max;
            new = true;
        }
        new
    }

    /// [`Coverage::add_block_trace`], each feature also going to `emit`.
    fn add_block_trace_with(&mut self, trace: &str, emit: &mut dyn FnMut(u64)) -> bool {
        let mut new = false;
        features::block_trace_features(trace, &mut |f, _| {
            emit(f);
            new |= self.add_block_feature(f);
        });
        new
    }

    /// [`Coverage::add_paths`], each feature also going to `emit`.
    fn add_paths_with(
        &mut self,
        stream: &Stream,
        paths: &[(u32, u32)],
        emit: &mut dyn FnMut(u64),
    ) -> bool {
        let mut fresh = 0;
        let seen = &mut self.seen;
        features::path_features(stream, paths, &mut self.scratch, &mut |f| {
            emit(f);
            fresh += usize::from(seen.insert(f));
        });
        self.path_features += fresh;
        fresh > 0
    }

    /// Adds the state features of a run's end ([`features::MERGE_PAIR`]),
    /// counted with the path features. Whether any is new.
    pub fn add_state(&mut self, state: &[u64]) -> bool {
        self.add_state_with(state, &mut |_| {})
    }

    /// [`Coverage::add_state`], each feature also going to `emit`.
    fn add_state_with(&mut self, state: &[u64], emit: &mut dyn FnMut(u64)) -> bool {
        let mut fresh = 0;
        for &f in state {
            emit(f);
            fresh += usize::from(self.seen.insert(f));
        }
        self.path_features += fresh;
        fresh > 0
    }

    /// Distinct kernel-path features added ([`Coverage::add_paths`]).
    pub fn path_features(&self) -> usize {
        self.path_features
    }

    /// Distinct (actor, step) pairs of block traces added.
    pub fn block_steps(&self) -> usize {
        self.block_steps
    }

    /// Deepest fork chain added.
    pub fn max_fork_depth(&self) -> usize {
        self.max_depth
    }

    /// Distinct pairs of consecutive op kinds added.
    pub fn op_pairs(&self) -> usize {
        self.pairs.iter().map(|w| w.count_ones() as usize).sum()
    }
}

/// Words of a bit map of op kind pairs.
const PAIR_WORDS: usize = (Op::KINDS * Op::KINDS).div_ceil(64);

/// Depth of the deepest fork chain in a stream.
pub fn fork_depth(stream: &Stream) -> usize {
    let mut depth = vec![0usize];
    let mut max = 0;
    for op in &stream.ops {
        if let Op::Fork { pid } = op {
            let d = depth.get(pid.0 as usize).copied().unwrap_or(0) + 1;
            depth.push(d);
            max = max.max(d);
        }
    }
    max
}

/// An input of a job's mutation pool.
struct PoolEntry {
    bytes: Vec<u8>,
    /// Whether it decodes to a stream with a concurrent block.
    blocks: bool,
}

/// Of the mutations that are not schedule-only, this many in
/// [`OP_MUTATION_DENOM`] are op-level ([`mutate_ops`]).
pub const OP_MUTATION_NUM: u32 = 1;
pub const OP_MUTATION_DENOM: u32 = 2;

/// Of the built-in engine's inputs made from the pool, this many in
/// [`MERGE_RACE_DENOM`] (once some input's end state offers a merging
/// move) race such a move: [`Ready::mutant`], on the first design's
/// machine; so are as many of the libFuzzer target's mutations that are
/// not schedule-only.
pub const MERGE_RACE_NUM: u32 = 1;
pub const MERGE_RACE_DENOM: u32 = 8;

/// A mutation of a pool entry: when it has a concurrent block, 1 time in 4
/// its schedule bytes only ([`mutate_schedule`]: the same ops under another
/// interleaving); otherwise, [`OP_MUTATION_NUM`] times in
/// [`OP_MUTATION_DENOM`] op-level changes of its stream ([`mutate_ops`],
/// with `other`, another entry, for a splice), else (or when those give
/// nothing) 1 to 4 byte edits anywhere.
fn mutate(
    rng: &mut SmallRng,
    entry: &PoolEntry,
    other: Option<&[u8]>,
    cfg: &DecodeConfig,
) -> Vec<u8> {
    if entry.blocks && rng.random_ratio(1, 4) {
        let mut v = entry.bytes.clone();
        if mutate_schedule(&mut v, usize::MAX, cfg, &mut || rng.random()) {
            return v;
        }
    }
    if rng.random_ratio(OP_MUTATION_NUM, OP_MUTATION_DENOM)
        && let Some(v) = mutate_ops(rng, &entry.bytes, other, cfg)
    {
        return v;
    }
    mutate_bytes(rng, &entry.bytes)
}

/// 1 to 4 byte edits of `input` (a byte set, a bit flipped, bytes inserted
/// or deleted, the tail replaced): the byte half of [`mutate`].
pub fn mutate_bytes(rng: &mut SmallRng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    let n = rng.random_range(1..=4);
    for _ in 0..n {
        match rng.random_range(0..5) {
            0 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] = rng.random();
            }
            1 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] ^= 1 << rng.random_range(0..8);
            }
            2 => {
                let i = rng.random_range(0..=v.len());
                let k = rng.random_range(1..=8);
                for _ in 0..k {
                    v.insert(i, rng.random());
                }
            }
            3 if v.len() > 2 => {
                let i = rng.random_range(0..v.len());
                let k = rng.random_range(1..=8).min(v.len() - i);
                v.drain(i..i + k);
            }
            _ => {
                let len = rng.random_range(0..=64);
                let start = v.len().saturating_sub(len);
                let tail: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                v.truncate(start);
                v.extend(tail);
            }
        }
    }
    v
}

/// The built-in engine: random and mutated byte strings through the one
/// decoder, `jobs` threads, shrinking and writing every new failure. With
/// `cfg.progress`, prints a line to standard error every 10 s.
pub fn run_engine(cfg: &EngineConfig) -> EngineStats {
    // Lines at 10 s, 20 s, … (not drifting with the observer's ticks).
    let mut next = 10;
    run_engine_with(cfg, |p| {
        if p.elapsed.as_secs() >= next {
            next = p.elapsed.as_secs() / 10 * 10 + 10;
            eprintln!("{}", progress_line(p));
        }
    })
}

/// `[  20s] execs 1234 (617/s), 45678 ops, failures 0; op kinds …`.
pub fn progress_line(p: &Progress) -> String {
    let secs = p.elapsed.as_secs_f64().max(1e-9);
    format!(
        "[{:>5}s] execs {} ({:.0}/s), {} ops, failures {}; {}",
        p.elapsed.as_secs(),
        p.execs,
        p.execs as f64 / secs,
        p.ops,
        p.findings,
        p.reach()
    )
}

/// Shared between the jobs and the progress observer.
struct Shared {
    stop: AtomicBool,
    execs: AtomicU64,
    ops: AtomicU64,
    kept: AtomicUsize,
    /// Bit `a * Op::KINDS + b`: op kind `b` ran right after op kind `a`.
    pairs: [AtomicU64; PAIR_WORDS],
    stats: Mutex<EngineStats>,
}

impl Shared {
    fn op_pairs(&self) -> usize {
        self.pairs
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
            .sum()
    }
}

/// [`run_engine`], calling `observe` with a [`Progress`] snapshot about 5
/// times a second while it runs (when `cfg.progress` is set).
pub fn run_engine_with(cfg: &EngineConfig, mut observe: impl FnMut(&Progress)) -> EngineStats {
    let shared = Shared {
        stop: AtomicBool::new(false),
        execs: AtomicU64::new(0),
        ops: AtomicU64::new(0),
        kept: AtomicUsize::new(0),
        pairs: Default::default(),
        stats: Mutex::new(EngineStats::default()),
    };
    let start = Instant::now();
    let deadline = start.checked_add(Duration::from_secs(cfg.seconds));
    let jobs = cfg.jobs.max(1);
    let snapshot = |shared: &Shared| {
        let st = shared.stats.lock().expect("stats lock");
        Progress {
            elapsed: start.elapsed(),
            execs: shared.execs.load(Ordering::Relaxed),
            ops: shared.ops.load(Ordering::Relaxed),
            op_kinds: st.op_kinds.len(),
            op_pairs: shared.op_pairs(),
            max_fork_depth: st.max_fork_depth,
            kept_inputs: shared.kept.load(Ordering::Relaxed),
            findings: st.findings.len(),
        }
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|job| {
                let budget = cfg
                    .max_execs
                    .map(|m| m / jobs as u64 + u64::from((job as u64) < m % jobs as u64));
                let shared = &shared;
                scope.spawn(move || worker(cfg, job, budget, start, deadline, shared))
            })
            .collect();
        if cfg.progress {
            while !workers.iter().all(|w| w.is_finished()) {
                std::thread::sleep(Duration::from_millis(200));
                observe(&snapshot(&shared));
            }
        }
    });
    let mut st = std::mem::take(&mut *shared.stats.lock().expect("stats lock"));
    st.execs = shared.execs.load(Ordering::Relaxed);
    st.ops = shared.ops.load(Ordering::Relaxed);
    st.op_pairs = shared.op_pairs();
    st.kept_inputs = shared.kept.load(Ordering::Relaxed);
    st.elapsed = start.elapsed();
    st
}

/// The runs of the built-in engine: the fuzzing options, with each op's
/// kernel paths kept for [`Coverage::add_paths`].
fn path_opts() -> RunOptions {
    RunOptions {
        paths: true,
        ..RunOptions::fuzzing()
    }
}

/// One job: `budget` executions at most (its share of `max_execs`).
fn worker(
    cfg: &EngineConfig,
    job: usize,
    budget: Option<u64>,
    start: Instant,
    deadline: Option<Instant>,
    shared: &Shared,
) {
    let mut rng = SmallRng::seed_from_u64(cfg.seed.wrapping_add(job as u64 * 0x9e37_79b9));
    let mut pool: Vec<PoolEntry> = cfg
        .seeds
        .iter()
        .map(|s| PoolEntry {
            blocks: catch(|| !decode(s, &cfg.decode).blocks.is_empty()).unwrap_or(false),
            bytes: s.clone(),
        })
        .collect();
    let mut cov = Coverage::default();
    let mut ready = Ready::default();
    let mut seen_sigs: Vec<Signature> = Vec::new();
    let mut local_execs = 0u64;
    let mut mmu = MmuStats::default();
    while !shared.stop.load(Ordering::Relaxed) {
        if local_execs.is_multiple_of(64) && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if budget.is_some_and(|b| local_execs >= b) {
            break;
        }
        let from_pool = !pool.is_empty() && rng.random_bool(0.5);
        let raced =
            (from_pool && !ready.is_empty() && rng.random_ratio(MERGE_RACE_NUM, MERGE_RACE_DENOM))
                .then(|| ready.mutant(&mut rng, &cfg.decode, cfg.specs.first()?))
                .flatten();
        let input = if let Some(v) = raced {
            v
        } else if from_pool {
            let i = rng.random_range(0..pool.len());
            let other = &pool[rng.random_range(0..pool.len())].bytes;
            mutate(&mut rng, &pool[i], Some(other), &cfg.decode)
        } else {
            let len = rng.random_range(0..=400);
            (0..len).map(|_| rng.random()).collect()
        };
        local_execs += 1;
        let n = shared.execs.fetch_add(1, Ordering::Relaxed) + 1;
        let stream = match catch(|| decode(&input, &cfg.decode)) {
            Ok(s) => s,
            Err(p) => {
                let f = decoder_panic(&input, &p);
                if !seen_sigs.contains(&f.signature) {
                    seen_sigs.push(f.signature.clone());
                    record_finding(cfg, shared, f, n, start.elapsed());
                }
                continue;
            }
        };
        shared
            .ops
            .fetch_add(stream.ops.len() as u64, Ordering::Relaxed);
        if cov.add_stream(&stream) && pool.len() < 4096 {
            pool.push(PoolEntry {
                bytes: input.clone(),
                blocks: !stream.blocks.is_empty(),
            });
            shared.kept.fetch_add(1, Ordering::Relaxed);
        }
        let result = if stream.blocks.is_empty() {
            // New kernel paths keep the input too (after the run, which
            // reports them): whether or not it failed, as above.
            let mut new = false;
            let r = check_stream_with(&stream, &cfg.specs, &mut mmu, &path_opts(), &mut |r| {
                new |= cov.add_paths(&stream, &r.paths);
                new |= cov.add_state(&r.state);
                ready.offer(&r.state, || Some(input.clone()));
            });
            if new && pool.len() < 4096 {
                pool.push(PoolEntry {
                    bytes: input.clone(),
                    blocks: false,
                });
                shared.kept.fetch_add(1, Ordering::Relaxed);
            }
            r
        } else {
            check_blocks(cfg, &stream, &input, &mut cov, &mut pool, &mut mmu, shared)
                .map(|state| ready.offer(&state, || Some(input.clone())))
        };
        if let Err(f) = result {
            if seen_sigs.contains(&f.signature) || fails_baseline(&f.stream, &cfg.baseline) {
                continue;
            }
            seen_sigs.push(f.signature.clone());
            let found_at = start.elapsed();
            // The same design failing the same invariant (a panic: with
            // the same message), and still passing on the baseline (else
            // the stream as found).
            // With a baseline, every smaller stream must still pass there.
            let small = if cfg.baseline.is_empty() {
                shrink(&f.stream, &cfg.specs, &f.signature, 4000)
            } else {
                shrink_keeping(&f.stream, &cfg.specs, &f.signature, 4000, &|s| {
                    !fails_baseline(s, &cfg.baseline)
                })
            };
            let small = if fails_baseline(&small, &cfg.baseline) {
                f.stream.clone()
            } else {
                small
            };
            let report = check_stream(&small, &cfg.specs)
                .err()
                .map(|g| g.report)
                .unwrap_or(f.report.clone());
            let finding = Finding {
                stream: small,
                signature: f.signature.clone(),
                report,
            };
            record_finding(cfg, shared, finding, n, found_at);
        }
        if local_execs.is_multiple_of(256) {
            publish(shared, &cov);
        }
    }
    publish(shared, &cov);
    let mut st = shared.stats.lock().expect("stats lock");
    add_stats(&mut st.mmu, &mmu);
    st.path_features += cov.path_features;
}

/// Most schedules one design run of an [`explore_blocks`] exploration
/// starts.
pub const EXPLORE_MAX_SCHEDULES: u64 = 256;

/// The built-in engine keeps and explores one stream in this many whose
/// block raced a move without reaching a new block feature.
pub const RACE_EVERY: u32 = 8;

/// Runs a stream with blocks; when its blocks' traces reach a new
/// feature ([`Coverage::add_block_trace`]: an (actor, step) pair or an
/// actor switch between two steps) and it passes, the input joins the
/// pool and the same stream, up to the end of its last block, runs again
/// with every block under `explore:2` ([`explore_blocks`], at most
/// [`EXPLORE_MAX_SCHEDULES`] schedules per design), so that an
/// interleaving its schedule bytes missed is still tried. Otherwise, when
/// a block's trace has a racing shape ([`racing_end`]: a walk racing a
/// move or a merge, a slot lookup, a fault racing a mutator), the input
/// joins the pool too (mutations of its other ops try the shapes around
/// it) and the stream up to that block is explored ([`explore_races`]) —
/// one such stream in [`RACE_EVERY`] ([`block_exploration`], the choice
/// the libFuzzer target makes too). Returns the run's end-state features
/// ([`RunReport::state`](crate::run::runner::RunReport::state)) for the
/// job's [`Ready`] inputs.
fn check_blocks(
    cfg: &EngineConfig,
    stream: &Stream,
    input: &[u8],
    cov: &mut Coverage,
    pool: &mut Vec<PoolEntry>,
    mmu: &mut MmuStats,
    shared: &Shared,
) -> Result<Vec<u64>, Box<Finding>> {
    let (mut new, mut new_paths, mut cut) = (false, false, 0);
    let mut state = Vec::new();
    check_stream_with(stream, &cfg.specs, mmu, &path_opts(), &mut |r| {
        for b in &r.blocks {
            new |= cov.add_block_trace(&b.trace);
        }
        new_paths |= cov.add_paths(stream, &r.paths);
        new_paths |= cov.add_state(&r.state);
        state.extend_from_slice(&r.state);
        cut = cut.max(racing_end(r));
    })?;
    if !new && new_paths && pool.len() < 4096 {
        // New kernel paths of the ops outside the blocks: kept for
        // mutation, not explored (the blocks' steps are not new).
        pool.push(PoolEntry {
            bytes: input.to_vec(),
            blocks: true,
        });
        shared.kept.fetch_add(1, Ordering::Relaxed);
    }
    let e = block_exploration(cov, new, cut, stream);
    if e != Exploration::None && pool.len() < 4096 {
        pool.push(PoolEntry {
            bytes: input.to_vec(),
            blocks: true,
        });
        shared.kept.fetch_add(1, Ordering::Relaxed);
    }
    match e {
        Exploration::None => Ok(()),
        Exploration::Races(cut) => explore_races(stream, cut, &cfg.specs, mmu),
        // Up to the end of the last block: every schedule would run the
        // rest of the stream again, and what follows the blocks ran once
        // above.
        Exploration::Blocks(end) => {
            explore_cut(stream, end, EXPLORE_MAX_SCHEDULES, &cfg.specs, mmu)
        }
    }
    .map(|()| state)
}

/// Whether a block's trace has an mremap that moved page tables
/// (`copy_vma`, then `move_ptes`) and a walk of another actor that visited
/// a VMA: the shape of the mremap races (the walk can see the moved range
/// on neither or both sides), whose interleaving the schedule bytes rarely
/// hit even when the ops are right, so it is explored whether or not the
/// trace is new.
fn walk_races_move(trace: &str) -> bool {
    let mut mover = None;
    let mut moved = false;
    let mut walkers = 0u8;
    for (a, step) in trace_steps(trace) {
        if step == "copy_vma" {
            mover = Some(a);
        } else if step.starts_with("move_ptes#") && mover == Some(a) {
            moved = true;
        } else if step.contains("visit#") {
            walkers |= actor_bit(a);
        }
    }
    moved && mover.is_some_and(|m| walkers & !actor_bit(m) != 0)
}

/// The (actor letter, step name) items of a block's trace (`A:copy_vma
/// B:w1.visit#0 …`), as the racing predicates read them.
fn trace_steps(trace: &str) -> impl Iterator<Item = (u8, &str)> {
    trace.split_whitespace().filter_map(|item| {
        let (actor, step) = item.split_once(':')?;
        Some((actor.bytes().next().unwrap_or(b'A'), step))
    })
}

/// An actor's bit in the predicates' actor sets (eight actors at most).
fn actor_bit(actor: u8) -> u8 {
    1 << (actor.wrapping_sub(b'A') & 7)
}

/// Whether a block's trace has an actor that changed VMA bounds
/// (`merge.prepare`, `merge.commit`, `merge.remove#i`: `vma_adjust`) and a
/// walk of another actor that visited a VMA: the shape of the merge races
/// (X1's walk between the two VMAs of a moving boundary, B21's migration
/// rebuilding a PTE in the VMA a merge took over), explored like a move's.
fn walk_races_merge(trace: &str) -> bool {
    let (mut mergers, mut walkers) = (0u8, 0u8);
    for (actor, step) in trace_steps(trace) {
        let bit = actor_bit(actor);
        if step == "merge.prepare" || step == "merge.commit" || step.starts_with("merge.remove#") {
            mergers |= bit;
        } else if step.contains("visit#") {
            walkers |= bit;
        }
    }
    mergers != 0 && walkers & !mergers != 0
}

/// Whether a trace has a walk that looked its page up in a step of its
/// own (`lookup`: the eras with type-stable anon_vma slots) with another
/// actor's step before its `lock`: the window in which the page's
/// anon_vma can be freed and its slot reused (B10, B02), which one
/// byte-driven schedule rarely hits.
fn lookup_races(trace: &str) -> bool {
    let mut open = 0u8;
    for (actor, step) in trace_steps(trace) {
        let bit = actor_bit(actor);
        if step == "lookup" {
            open |= bit;
        } else if step == "lock" {
            open &= !bit;
        } else if open & !bit != 0 {
            return true;
        }
    }
    false
}

/// Whether a trace has a fault of the per-VMA-lock eras (`fault.lookup`
/// … `fault.install`, or its `fault.mmap` fallback) and another actor's
/// mutator overlapping it: a mutator step inside the fault's window, or a
/// fault step between a mutator's first step and its `end`. The shape of
/// the 6.4 races: a VMA's anon_vma changed between `lock_vma_under_rcu`'s
/// test and the fault's use of it (B18a, 657b5146955e), or a merge's
/// `dup_anon_vma` publishing `dst->anon_vma` before write-locking `dst`
/// under a fault that holds `dst` or maps a page before the clone (B18b).
fn fault_races(trace: &str) -> bool {
    let (mut faulting, mut mutating) = (0u8, 0u8);
    for (actor, step) in trace_steps(trace) {
        let bit = actor_bit(actor);
        if let Some(fault) = step.strip_prefix("fault.") {
            if mutating & !bit != 0 {
                return true;
            }
            match fault {
                "lookup" => faulting |= bit,
                "install" | "mmap" => faulting &= !bit,
                _ => {}
            }
        } else if is_mutator_step(step) {
            if faulting & !bit != 0 {
                return true;
            }
            if step == "end" {
                mutating &= !bit;
            } else {
                mutating |= bit;
            }
        }
    }
    false
}

/// Whether a block step is a VMA mutator's (`rmaplab steps`: mremap,
/// mmap, munmap, mprotect, madvise, fork, exit, exec), not a walk's or a
/// fault's.
fn is_mutator_step(step: &str) -> bool {
    const PREFIXES: [&str; 9] = [
        "mremap.",
        "split.",
        "merge.",
        "unmap.",
        "modify.",
        "fork.",
        "exec.",
        "copy_vma",
        "move_ptes",
    ];
    step == "end" || PREFIXES.iter().any(|p| step.starts_with(p))
}

/// `stream` with every block's schedule `explore:2`.
pub fn explore_blocks(stream: &Stream) -> Stream {
    let mut s = stream.clone();
    for b in &mut s.blocks {
        b.sched = rmaplab_ops::Sched::Explore { preemptions: 2 };
    }
    s
}

/// Adds one job's reach to the shared figures.
fn publish(shared: &Shared, cov: &Coverage) {
    for (w, &p) in shared.pairs.iter().zip(&cov.pairs) {
        w.fetch_or(p, Ordering::Relaxed);
    }
    let mut st = shared.stats.lock().expect("stats lock");
    st.op_kinds.extend(cov.kinds.iter().copied());
    st.max_fork_depth = st.max_fork_depth.max(cov.max_depth);
}

/// Writes a new finding (when the engine has an output folder) and adds it
/// to the shared stats.
fn record_finding(
    cfg: &EngineConfig,
    shared: &Shared,
    finding: Finding,
    n: u64,
    found_at: Duration,
) {
    let path = cfg
        .out_dir
        .as_ref()
        .and_then(|dir| write_finding(dir, &finding, &cfg.specs).ok());
    let mut st = shared.stats.lock().expect("stats lock");
    if st.execs_to_first_failure.is_none() {
        st.execs_to_first_failure = Some(n);
        st.time_to_first_failure = Some(found_at);
    }
    if !st
        .findings
        .iter()
        .any(|(g, _)| g.signature == finding.signature)
    {
        st.findings.push((finding, path));
    }
    if cfg.stop_on_failure {
        shared.stop.store(true, Ordering::Relaxed);
    }
}

/// Writes a finding as `DIR/<design>-<invariant>-<hash>.ops`.
pub fn write_finding(dir: &Path, f: &Finding, specs: &[DesignSpec]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let text = finding_file(f, specs);
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let who: String = f
        .signature
        .who
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let path = dir.join(format!(
        "{}-{}-{:08x}.ops",
        who.trim_matches('-'),
        f.signature.invariant,
        hash as u32
    ));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Encodes the `.ops` files under `dir` as seed inputs (files that do not
/// fit the decoder's configuration are skipped).
pub fn seeds_from_dir(dir: &Path, cfg: &DecodeConfig) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    collect_ops(dir, &mut files);
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|t| rmaplab_ops::parse::parse(&t).ok())
        .filter_map(|s| encode(&s, cfg).ok())
        .collect()
}

/// Every `.ops` file under `dir`, sorted.
pub fn collect_ops(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_ops(&p, out);
        } else if p.extension().is_some_and(|e| e == "ops") {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A walk whose page lookup and lock another actor's step separates
    /// is a race worth exploring; back to back, or another walker's own
    /// steps, are not.
    #[test]
    fn lookup_races_needs_another_actor_between_lookup_and_lock() {
        assert!(lookup_races(
            "B:lookup A:unmap.gather A:end B:lock B:unlock"
        ));
        assert!(lookup_races("C:lookup B:write C:lock C:unlock A:end"));
        assert!(!lookup_races("B:lookup B:lock A:unmap.gather B:unlock"));
        assert!(!lookup_races("A:unmap.gather A:end B:lookup B:lock"));
        assert!(!lookup_races("A:copy_vma B:w1.lock B:w1.unlock"));
    }

    /// A merge (a bounds change) with another actor's walk visiting a VMA
    /// is a race worth exploring; a merge alone, a walk alone, or a walk
    /// by the merging actor itself, are not.
    #[test]
    fn walk_races_merge_needs_a_merge_and_another_actors_visit() {
        assert!(walk_races_merge(
            "B:merge.prepare A:w2.lock A:w2.visit#0 B:merge.commit"
        ));
        assert!(walk_races_merge("A:merge.remove#0 B:w1.visit#1 A:end"));
        assert!(!walk_races_merge("A:merge.lookup B:w1.visit#0 A:end"));
        assert!(!walk_races_merge("A:merge.prepare A:merge.commit A:end"));
        assert!(!walk_races_merge("A:merge.prepare A:visit#0"));
        assert!(!walk_races_merge("A:copy_vma A:move_ptes#0 B:visit#0"));
    }

    /// A fault overlapping another actor's mutator is a race worth
    /// exploring: a mutator step between the fault's lookup and install
    /// (B18a's move), or the whole fault between a merge's steps (B18b's
    /// publish … clone); a fault before or after the mutator, the
    /// mutator's own fault, or a walk inside the fault's window, are not.
    #[test]
    fn fault_races_needs_a_fault_and_another_actors_mutator_overlapping() {
        assert!(fault_races(
            "A:fault.lookup B:mremap.lookup B:copy_vma B:end A:fault.lock A:fault.install"
        ));
        assert!(fault_races(
            "A:fault.lookup A:fault.lock B:merge.publish A:fault.install B:end"
        ));
        assert!(fault_races(
            "D:merge.lookup D:merge.publish C:fault.lookup C:fault.lock C:fault.install \
             D:merge.clone D:end"
        ));
        assert!(fault_races(
            "B:split.lookup A:fault.lookup A:fault.mmap B:end"
        ));
        assert!(!fault_races(
            "A:fault.lookup A:fault.lock A:fault.install B:mremap.lookup B:end"
        ));
        assert!(!fault_races(
            "B:merge.lookup B:merge.commit B:end A:fault.lookup A:fault.lock A:fault.install"
        ));
        assert!(!fault_races(
            "A:fault.lookup A:fault.mmap B:copy_vma B:move_ptes#0 B:end"
        ));
        assert!(!fault_races(
            "A:fault.lookup B:w1.lock B:w1.visit#0 A:fault.lock A:fault.install"
        ));
        assert!(!fault_races("A:merge.lookup A:fault.lookup A:end"));
        assert!(!fault_races("A:write B:copy_vma B:end"));
    }

    /// A decoder panic leaves no stream: its file keeps the input's bytes,
    /// and `rmaplab import` of them (after `xxd -r -p`) reproduces it.
    #[test]
    fn a_decoder_panic_is_written_with_its_input_bytes() {
        let p = Panic {
            message: "boom".into(),
            location: Some("ops/src/decode.rs:1:2".into()),
        };
        let f = decoder_panic(&[0x00, 0xab, 0x10], &p);
        assert_eq!(f.signature.who, DECODER);
        assert_eq!(f.signature.panic.as_deref(), Some("boom"));
        let text = finding_file(&f, &canonical_specs());
        assert_eq!(
            text,
            "# decoder: panic: boom (at ops/src/decode.rs:1:2)\n# the decoder panicked on this \
             input (hex; `xxd -r -p` gives the bytes, `rmaplab import` decodes them):\n# 00ab10\n\
             version 1\n"
        );
        assert!(crate::run::corpus::parse_corpus(&text).is_ok());
    }

    /// Op pairs and fork depths count once each; block steps are their
    /// own features, one per (actor, step name).
    #[test]
    fn the_coverage_map_counts_each_feature_once() {
        let s = rmaplab_ops::parse::parse(
            "mmap p0 0 2 rw anon\nfork p0\nfork p1\nwrite p2 0 1\nwrite p2 1 1\n",
        )
        .expect("parses");
        let mut cov = Coverage::default();
        assert!(cov.add_stream(&s));
        // mmap-fork, fork-fork, fork-write, write-write; depths 1 and 2.
        assert_eq!((cov.op_pairs(), cov.max_fork_depth()), (4, 2));
        assert_eq!(cov.seen.len(), 6);
        assert!(!cov.add_stream(&s));
        let t = rmaplab_ops::parse::parse("mmap p0 0 2 rw anon\nread p0 0\n").expect("parses");
        assert!(cov.add_stream(&t));
        assert_eq!(cov.op_pairs(), 5);
        assert!(cov.add_block_step(0, "anon_vma_lock"));
        assert!(cov.add_block_step(1, "anon_vma_lock"));
        assert!(cov.add_block_step(0, "rmap_walk"));
        assert!(!cov.add_block_step(1, "anon_vma_lock"));
        assert_eq!((cov.block_steps(), cov.seen.len()), (3, 10));
        assert!(!cov.add_stream(&t));
    }

    /// The engine's mutation of a pool entry with a block changes only its
    /// schedule about 1 time in 4; an entry without one is never
    /// schedule-mutated.
    #[test]
    fn the_engine_mutates_schedules_of_entries_with_blocks() {
        let cfg = DecodeConfig::default();
        let bytes = vec![
            0xFF, 0xFF, 0xFF, 0, 0, 4, 5, 0, 0, 42, 0x17, 7, 0, 0, 1, 0, 0, 2, 0, 0xE9, 1, 0, 0x61,
            42, 0x22, 0xAB, 0x01, 54,
        ];
        let before = decode(&bytes, &cfg);
        let same_ops = |v: &[u8]| {
            let after = decode(v, &cfg);
            after.ops == before.ops
                && after.blocks.len() == 1
                && after.blocks[0].ops() == before.blocks[0].ops()
        };
        let mut rng = SmallRng::seed_from_u64(5);
        let entry = PoolEntry {
            bytes: bytes.clone(),
            blocks: true,
        };
        let sched_only = (0..1000)
            .filter(|_| same_ops(&mutate(&mut rng, &entry, None, &cfg)))
            .count();
        // 1/4, plus byte edits that happen to keep the ops (in the schedule
        // bytes, the length byte's high bits, or after the block).
        assert!((200..=400).contains(&sched_only), "{sched_only} of 1000");
        let flagless = PoolEntry {
            bytes,
            blocks: false,
        };
        let kept = (0..1000)
            .filter(|_| same_ops(&mutate(&mut rng, &flagless, None, &cfg)))
            .count();
        assert!(kept + 150 < sched_only, "{kept} against {sched_only}");
    }

    /// The exploration both engines choose: every block on a new feature,
    /// else the racing blocks of one racing stream in `RACE_EVERY` (by
    /// count), else nothing.
    #[test]
    fn block_exploration_explores_new_features_and_one_racing_stream_in_n() {
        let s = rmaplab_ops::parse::parse(
            "version 2\nmmap p0 0 4 rw anon\nwrite p0 1 1\n\
             par\n  write p0 1 2\n  migrate p0 1\nend sched #01\nread p0 1\n",
        )
        .unwrap();
        let end = blocks_end(&s);
        assert!(end > 0);
        let mut cov = Coverage::default();
        assert_eq!(
            block_exploration(&mut cov, true, 0, &s),
            Exploration::Blocks(end)
        );
        assert_eq!(block_exploration(&mut cov, false, 0, &s), Exploration::None);
        let chosen: Vec<bool> = (0..2 * RACE_EVERY)
            .map(|_| block_exploration(&mut cov, false, 3, &s) == Exploration::Races(3))
            .collect();
        let at: Vec<usize> = (0..chosen.len()).filter(|&i| chosen[i]).collect();
        let n = RACE_EVERY as usize;
        assert_eq!(at, vec![n - 1, 2 * n - 1]);
    }

    /// The libFuzzer target's pool keeps the bytes the mutator made when
    /// they decode to the stream run (their swarm header and aims kept),
    /// else the stream's encoding.
    #[test]
    fn the_target_pool_keeps_the_raw_mutant() {
        let cfg = DecodeConfig::default();
        let raw: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
        let s = decode(&raw, &cfg);
        let mut st = TargetState {
            last_mutant: raw.clone(),
            ..TargetState::default()
        };
        st.keep(&s);
        assert_eq!(st.pool[0].bytes, raw);
        assert_ne!(encode(&s, &cfg).unwrap(), raw);
        let other = decode(&[0xFF, 0xFF, 0xFF, 0, 0, 4, 5], &cfg);
        st.keep(&other);
        assert_eq!(st.pool[1].bytes, encode(&other, &cfg).unwrap());
        assert_eq!(decode(&st.pool[1].bytes, &cfg), other);
    }
}
