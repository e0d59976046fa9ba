//! The differential runner: one stream on each design on the emulated MMU,
//! op by op: the reference model's expected outcome (`run/reference.rs`),
//! the op applied, the outcomes compared, the oracle's checks
//! ([`crate::oracle::check`]); then teardown and the leak check. The
//! designs' runs are compared with each other at the end ([`compare_runs`]).
//! A panic anywhere in one design's run (the design, the MMU, the model,
//! the checks) ends that run with a `panic` failure at the op it happened
//! in ([`super::panic`]); the other designs still run.

use std::fmt;

use std::cell::Cell;
use std::rc::Rc;

use rmaplab_impls::designs::registry::{DesignSpec, VmaSemantics};
use rmaplab_impls::mmu::{ActorOutcome, Census, Mmu, MmuStats, ScheduleRun};
use rmaplab_impls::rmap::{CloneRmap, Counters, Rmap};
use rmaplab_impls::sched::{Item, RunLen, Schedule};
use rmaplab_impls::state::{FrameRef, ProcState, State};
use rmaplab_ops::{Block, RunStop, Sched};
use rmaplab_ops::{Errno, Op, Outcome};

use super::panic::catch;
use super::reference::{Reference, SharedModel, expect_on};
use crate::oracle::check::{self, Broken, invariant};
use crate::oracle::model::Model;
use rmaplab_ops::{Stream, print::print_op};

/// How much a run records.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Record every outcome and dump (reports); off for fuzzing.
    pub record: bool,
    /// Run the oracle's checks after every op (off only for benchmarks that
    /// measure the checks' cost).
    pub check: bool,
    /// The command that replays the stream, quoted in failure details.
    pub replay: Option<String>,
    /// The slow, obviously complete oracle: the full structural checks
    /// after every op, even after an op that changed nothing they read
    /// ([`Mmu::last_op_pure`]) or whose changes the incremental check
    /// covers ([`Mmu::last_op_pte_delta`]); a failed-op-trace snapshot
    /// before every op that may fail, even one that cannot reach an
    /// allocation ([`Mmu::may_allocate`]); and, in [`run_all`], a reference
    /// model of its own for every design. Off by default; the tests turn it
    /// on to show that none of these savings changes a verdict or a report.
    pub recheck_pure_ops: bool,
    /// The most schedules of concurrent blocks one design run starts
    /// ([`DEFAULT_MAX_SCHEDULES`] by default): once reached, no block
    /// explores a further schedule (a path already begun runs to the end
    /// of the stream, its later blocks on their first schedule), and the
    /// report says the run was capped ([`RunReport::capped`]).
    pub max_schedules: u64,
    /// Checks left out to measure what they cost (`rmaplab bench
    /// --without`); none by default, and no engine leaves any out.
    pub without: Without,
    /// Keep the kernel paths of each op outside blocks
    /// ([`RunReport::paths`]; the built-in engine's coverage).
    pub paths: bool,
}

/// The oracle's checks a benchmark can leave out ([`RunOptions::without`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Without {
    /// The `layout` differential: no run records or compares fingerprints.
    pub layout: bool,
    /// The `mapcount` checks (of the counts kept at the page-table writes
    /// after every op, the recount at the end of the stream and the census
    /// after the teardown); with `layout` still on, its fingerprint's
    /// pages are still kept after every op.
    pub mapcount: bool,
}

impl Without {
    /// Parses `layout,mapcount` (either, both, comma separated).
    pub fn parse(text: &str) -> Result<Without, String> {
        let mut w = Without::default();
        for name in text.split(',').map(str::trim) {
            match name {
                "layout" => w.layout = true,
                "mapcount" => w.mapcount = true,
                _ => {
                    return Err(format!(
                        "--without: unknown check `{name}` (expected layout, mapcount or \
                         layout,mapcount)"
                    ));
                }
            }
        }
        Ok(w)
    }

    /// Whether no check is left out.
    pub fn none(&self) -> bool {
        *self == Without::default()
    }
}

impl fmt::Display for Without {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.layout, self.mapcount) {
            (true, true) => write!(f, "layout,mapcount"),
            (true, false) => write!(f, "layout"),
            (false, true) => write!(f, "mapcount"),
            (false, false) => write!(f, "nothing"),
        }
    }
}

/// The default cap on the schedules of one design run of a stream.
pub const DEFAULT_MAX_SCHEDULES: u64 = 4096;

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            record: true,
            check: true,
            replay: None,
            recheck_pure_ops: false,
            max_schedules: DEFAULT_MAX_SCHEDULES,
            without: Without::default(),
            paths: false,
        }
    }
}

impl RunOptions {
    /// What the fuzz loop uses: checks on, no recording.
    pub fn fuzzing() -> RunOptions {
        RunOptions {
            record: false,
            ..RunOptions::default()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpRecord {
    pub index: usize,
    pub line: usize,
    pub op: Op,
    pub outcome: Outcome,
    /// The actor's letter when the op ran in a concurrent block.
    pub actor: Option<char>,
    /// A walker in a block that left the page mapped (`busy`, legal there);
    /// `outcome` then means nothing.
    pub busy: bool,
}

impl OpRecord {
    /// The outcome as reports print it (`busy` for a busy walker).
    pub fn outcome_text(&self) -> String {
        if self.busy {
            "busy".to_string()
        } else {
            self.outcome.to_string()
        }
    }
}

/// One concurrent block as it ran on the path a report shows (the first
/// schedule of every block when the run passed, the failing path when it
/// failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRun {
    /// The line of the block's `par` (what `--sched LINE=...` names).
    pub line: usize,
    /// The stream index of actor `A`, and the number of actors.
    pub first: usize,
    pub actors: usize,
    /// The schedule of this path, strict run-length form with step names
    /// (`! A..copy_vma B* A*`): pasted as the block's `sched`, it replays
    /// exactly this interleaving.
    pub schedule: String,
    /// Its steps, `A:copy_vma B:w1.lock ...`.
    pub trace: String,
    /// Per actor, its outcome (`None`: it did not finish).
    pub outcomes: Vec<Option<ActorOutcome>>,
    /// Schedules of this block run from this path's pre-block state (each
    /// followed by the rest of the stream).
    pub schedules: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpRecord {
    pub line: usize,
    pub state: State,
}

/// Where and how a run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Index of the op in the stream (0-based); `None` for end-of-stream
    /// checks (leak).
    pub op_index: Option<usize>,
    /// Source line of that op (0 if the failure is after the last op).
    pub line: usize,
    pub broken: Broken,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op_index {
            Some(i) => write!(f, "op {} (line {}): {}", i, self.line, self.broken),
            None => write!(f, "after the last op: {}", self.broken),
        }
    }
}

/// One fork tree's cost at the end of a run: its objects, and how many
/// candidate VMAs a walk of each of its mapped pages visits (the rmap scan
/// cost of reclaim and migration).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeStat {
    pub root: String,
    pub anon_vmas: u64,
    pub avcs: u64,
    pub bytes: u64,
    pub vmas: u64,
    /// Distinct anonymous pages of the tree that are mapped.
    pub pages: u64,
    /// VMAs visited per walk: total over `pages` walks, and the maximum.
    pub visited_total: u64,
    pub visited_max: u64,
}

/// Counters at the end of a run (before teardown) and their peaks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub final_counters: Counters,
    pub peak_anon_vmas: u64,
    pub peak_avcs: u64,
    pub peak_bytes: u64,
    pub peak_vmas: u64,
    pub mmu: MmuStats,
    /// Per fork tree, at the end of the stream (recorded runs only).
    pub trees: Vec<TreeStat>,
}

/// One design's execution of a stream.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub design: String,
    pub config: Vec<(String, String)>,
    pub outcomes: Vec<OpRecord>,
    pub dumps: Vec<DumpRecord>,
    pub failure: Option<Failure>,
    /// Index of the op in which an injected allocation failure fired; the
    /// semantics comparison stops there.
    pub injected_at: Option<usize>,
    pub stats: RunStats,
    /// Number of ops executed (the run stops at the first failure).
    pub executed: usize,
    /// The design's allocation sites this run reached (fault injection).
    pub alloc_sites: Vec<&'static str>,
    /// The site where the injected allocation failure fired, if it did.
    pub failed_site: Option<&'static str>,
    /// The concurrent blocks on the path this report shows, in stream
    /// order (the failing block last when a block failed).
    pub blocks: Vec<BlockRun>,
    /// Schedules of concurrent blocks run in all (0 without blocks).
    pub schedules: u64,
    /// The schedule cap ([`RunOptions::max_schedules`]) stopped an
    /// exploration: a run without failure was not explored in full.
    pub capped: bool,
    /// With [`RunOptions::paths`]: `(op index, path bits)` of each op
    /// outside blocks that took a kernel path
    /// (`rmaplab_impls::mmu::path`), in stream order.
    pub paths: Vec<(u32, u32)>,
    /// With [`RunOptions::paths`]: the state features at the end of the
    /// stream (`crate::fuzz::features::merge_pair_features`; with blocks,
    /// of the first schedule's run, whose report the run keeps).
    pub state: Vec<u64>,
}

impl RunReport {
    /// A report of `design` with `config` before anything ran.
    fn new(design: &str, config: Vec<(String, String)>) -> RunReport {
        RunReport {
            design: design.to_string(),
            config,
            outcomes: Vec::new(),
            dumps: Vec::new(),
            failure: None,
            injected_at: None,
            stats: RunStats::default(),
            executed: 0,
            alloc_sites: Vec::new(),
            failed_site: None,
            blocks: Vec::new(),
            paths: Vec::new(),
            state: Vec::new(),
            schedules: 0,
            capped: false,
        }
    }

    /// No invariant failed (a capped run may pass: see
    /// [`RunReport::capped`]).
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// The block whose schedule failed, if the failure is inside one.
    pub fn failing_block(&self) -> Option<&BlockRun> {
        let i = self.failure.as_ref()?.op_index?;
        self.blocks
            .last()
            .filter(|b| (b.first..b.first + b.actors).contains(&i))
    }
}

/// Runs `stream` on the reference model alone (no design, no checks but
/// the model's own): what `rmaplab run --design reference` prints.
pub fn run_reference(stream: &Stream) -> RunReport {
    let mut model = Model::new();
    let mut run = RunReport::new("reference", Vec::new());
    // Where a panic happened.
    let at = std::cell::Cell::new(At::AFTER_LAST_OP);
    let panicked = catch(|| {
        for (i, op) in stream.ops.iter().enumerate() {
            at.set(At {
                op: Some(i),
                line: stream.lines[i],
            });
            let outcome = model.step(op, None);
            run.outcomes.push(OpRecord {
                index: i,
                line: stream.lines[i],
                op: *op,
                outcome,
                actor: None,
                busy: false,
            });
            run.executed = i + 1;
            if matches!(op, Op::Dump) {
                run.dumps.push(DumpRecord {
                    line: stream.lines[i],
                    state: model.state(),
                });
            }
        }
        at.set(At::AFTER_LAST_OP);
        if !matches!(stream.ops.last(), Some(Op::Dump)) {
            run.dumps.push(DumpRecord {
                line: stream.lines.last().copied().unwrap_or(0),
                state: model.state(),
            });
        }
    });
    if let Err(p) = panicked {
        run.failure = Some(at.get().fail(Broken::new(invariant::PANIC, p.to_string())));
    }
    run
}

/// Runs `stream` with `spec` (the reference model alone for `reference`).
pub fn run_spec(stream: &Stream, spec: &DesignSpec, opts: &RunOptions) -> RunReport {
    match spec.build_cloneable() {
        None => run_reference(stream),
        Some(design) => run_design_shared(
            stream,
            design,
            spec,
            opts,
            &mut SharedModel::default(),
            LayoutRole::Off,
        ),
    }
}

/// Runs `stream` with one design on the MMU: every op on the reference
/// model (with the design's layout) and on the MMU, outcomes compared up to
/// the first injected allocation failure, the oracle's checks after every
/// op, then teardown of the remaining processes and the leak check. A
/// concurrent block runs its schedules, each on a copy of the machine
/// (hence `Clone`) followed by the rest of the stream.
pub fn run_design<R: Rmap + Clone>(
    stream: &Stream,
    rmap: R,
    spec: &DesignSpec,
    opts: &RunOptions,
) -> RunReport {
    run_design_shared(
        stream,
        rmap,
        spec,
        opts,
        &mut SharedModel::default(),
        LayoutRole::Off,
    )
}

/// [`run_design`], the expected outcomes from `shared`, the dumps recorded
/// or compared as `layout` says. A stream with concurrent blocks has a
/// reference model of its own ([`DesignRun::rest`]).
fn run_design_shared<R: Rmap + Clone>(
    stream: &Stream,
    rmap: R,
    spec: &DesignSpec,
    opts: &RunOptions,
    shared: &mut SharedModel,
    layout: LayoutRole<'_>,
) -> RunReport {
    let mut run = DesignRun::new(rmap, spec, opts, layout);
    let at = run.at.clone();
    // A panic leaves the MMU and the model half-updated: the run ends
    // there (the shared model's record is then incomplete, so the next
    // design runs a model of its own).
    let verdict = if stream.blocks.is_empty() {
        let mut reference = Reference::new(shared);
        catch(|| {
            run.ops(stream, &mut reference)
                .and_then(|()| run.end_of_stream(stream))
        })
    } else {
        let mut cx = Paths {
            schedules: 0,
            max: opts.max_schedules,
            capped: false,
        };
        let r = catch(|| run.rest(stream, 0, &mut Model::new(), &mut cx));
        run.report.schedules = cx.schedules;
        run.report.capped = cx.capped;
        r
    }
    .unwrap_or_else(|p| Err(at.get().fail(Broken::new(invariant::PANIC, p.to_string()))));
    run.finish(verdict)
}

/// The exploration of one design run's blocks: schedules run so far and
/// the cap.
struct Paths {
    schedules: u64,
    max: u64,
    capped: bool,
}

/// A schedule's text (`explore:3`, `! A..copy_vma B* A*`, ...), parsed by
/// the op language's own parser (as the schedule of a one-line block);
/// the error names the column in `text`.
pub fn parse_sched(text: &str) -> Result<Sched, String> {
    const HEAD: &str = "read p0 0 || read p0 0 @ ";
    let src = format!("version 2\n{HEAD}{text}\n");
    match rmaplab_ops::parse::parse(&src) {
        Ok(s) if s.blocks.len() == 1 && s.ops.len() == 2 => Ok(s.blocks[0].sched.clone()),
        Ok(_) => Err("not one schedule".to_string()),
        Err(e) => Err(format!(
            "column {}: expected {}, found {}",
            e.col.saturating_sub(HEAD.chars().count()),
            e.expected,
            e.found
        )),
    }
}

/// A block's `sched` as the scheduler takes it.
pub fn schedule_of(s: &Sched) -> Schedule {
    match s {
        Sched::Explore { preemptions } => Schedule::Explore {
            bound: u32::from(*preemptions),
        },
        Sched::Pct { seed, depth } => Schedule::Pct {
            seed: *seed,
            depth: *depth,
        },
        Sched::Random { seed } => Schedule::Random { seed: *seed },
        Sched::Bytes(b) => Schedule::Bytes(b.clone()),
        Sched::Steps { strict, items } => Schedule::Replay {
            items: items
                .iter()
                .map(|it| Item {
                    actor: usize::from(it.actor),
                    run: match &it.stop {
                        RunStop::Steps(n) => RunLen::Steps(u32::try_from(*n).unwrap_or(u32::MAX)),
                        RunStop::Until(l) => RunLen::Until(l.clone()),
                        RunStop::End => RunLen::Finish,
                    },
                })
                .collect(),
            strict: *strict,
        },
    }
}

/// Whether `op` is an rmap walk (its outcome in a block is not compared).
fn is_walker(op: &Op) -> bool {
    matches!(
        op,
        Op::Swapout { .. } | Op::Migrate { .. } | Op::Referenced { .. }
    )
}

/// Where a failure is: an op, or after the last op (teardown and leak).
#[derive(Clone, Copy)]
struct At {
    /// The op's index in the stream; `None` after the last op.
    op: Option<usize>,
    /// The op's source line (0 after the last op).
    line: usize,
}

impl At {
    const AFTER_LAST_OP: At = At { op: None, line: 0 };

    fn fail(self, broken: Broken) -> Failure {
        Failure {
            op_index: self.op,
            line: self.line,
            broken,
        }
    }
}

/// What applying one op gave.
struct Applied {
    outcome: Outcome,
    /// The design's epoch before the op (the incremental check's question:
    /// did anything the checks read change?).
    epoch0: Option<u64>,
}

thread_local! {
    /// The census of the last design run on this thread, whose memory the
    /// next run reuses (a run allocates none of it again).
    static CENSUS_POOL: std::cell::Cell<Census> = std::cell::Cell::default();
}

/// A design run's part in the layout differential ([`run_all`]): the
/// first run of a VMA semantics records the fingerprint of its dump after
/// every op (`Mmu::dump_fingerprint`), the later runs of the same semantics
/// compare theirs with it.
enum LayoutRole<'r> {
    Off,
    Record(&'r mut Vec<u64>),
    Compare(&'r [u64]),
}

/// The detail of a `layout` failure until [`run_all_with`] replaces it by
/// the first difference (it alone can rebuild the recording design).
const LAYOUT_PENDING: &str = "the dump differs from the recording design's";

/// One design's run of a stream: the MMU with the design, and the report
/// being filled.
struct DesignRun<'o, R: Rmap> {
    mmu: Mmu<R>,
    opts: &'o RunOptions,
    report: RunReport,
    /// Where the run is (where a panic happened; shared by the copies a
    /// concurrent block's schedules run on).
    at: Rc<Cell<At>>,
    layout: LayoutRole<'o>,
    /// The dump fingerprint after the last op (a pure op keeps it).
    fingerprint: Option<u64>,
    /// What the checks on the machine's kept counts carry from op to op
    /// (and the full census of the end of the stream).
    census: Census,
}

impl<'o, R: Rmap> DesignRun<'o, R> {
    fn new(rmap: R, spec: &DesignSpec, opts: &'o RunOptions, layout: LayoutRole<'o>) -> Self {
        // The design's effective configuration (the example of
        // `docs/op-language.md`: a default chain-2010 run reports
        // `"config": {"era": "2022"}`).
        let config = rmap
            .config()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut mmu = Mmu::new(rmap);
        if !opts.check || (opts.without.mapcount && opts.without.layout) {
            // No check reads the counts kept at the PTE writers.
            mmu.keep_no_refs();
        }
        let mut census = CENSUS_POOL.with(|p| p.take());
        census.reset();
        // The machine before the first op, for a first op that is pure.
        let fingerprint = (!matches!(layout, LayoutRole::Off)).then(|| {
            // A new machine maps nothing: no count to check yet.
            let _ = check::check_refs_all(&mmu, &mut census, false);
            check::refs_fingerprint(&mmu, &census)
        });
        DesignRun {
            mmu,
            opts,
            report: RunReport::new(spec.design.name(), config),
            at: Rc::new(Cell::new(At::AFTER_LAST_OP)),
            layout,
            fingerprint,
            census,
        }
    }

    /// Every op of the stream, in four steps: the expected outcome, the op
    /// applied, the outcomes compared, the checks. The first failure ends
    /// the run.
    fn ops(&mut self, stream: &Stream, reference: &mut Reference<'_>) -> Result<(), Failure> {
        for (i, op) in stream.ops.iter().enumerate() {
            let at = At {
                op: Some(i),
                line: stream.lines[i],
            };
            self.at.set(at);
            // Asked before the op: the model reads the layout the op meets.
            let expected = reference.expect(stream, i, &self.mmu);
            self.op(i, op, expected, at)?;
        }
        Ok(())
    }

    /// One op outside a block, given its expected outcome: applied,
    /// compared, checked.
    #[inline(always)]
    fn op(&mut self, i: usize, op: &Op, expected: Outcome, at: At) -> Result<(), Failure> {
        self.report.executed = i + 1;
        let applied = self.apply(op, at)?;
        if self.opts.paths && self.mmu.last_op_paths() != 0 {
            self.report.paths.push((i as u32, self.mmu.last_op_paths()));
        }
        self.record_outcome(i, at.line, op, applied.outcome);
        self.compare(op, applied.outcome, expected, at)?;
        track_peaks(&mut self.report.stats, &self.mmu);
        self.check(op, applied.outcome, applied.epoch0, at)?;
        self.layout(i, at)?;
        if matches!(op, Op::Dump) {
            self.record_dump(at.line);
        }
        Ok(())
    }

    /// Keeps the op's outcome for the report (recorded runs only).
    fn record_outcome(&mut self, index: usize, line: usize, op: &Op, outcome: Outcome) {
        if self.opts.record {
            self.report.outcomes.push(OpRecord {
                index,
                line,
                op: *op,
                outcome,
                actor: None,
                busy: false,
            });
        }
    }

    /// Keeps the state for the report (recorded runs only), as of `line`.
    fn record_dump(&mut self, line: usize) {
        if self.opts.record {
            self.report.dumps.push(DumpRecord {
                line,
                state: self.mmu.state(),
            });
        }
    }

    /// The op on the MMU. The op in which an injected allocation failure
    /// fires is noted (outcomes are compared only before it); a fork or a
    /// fault it makes fail must leave no trace (failed-op-trace), so their
    /// state is kept before the op while a failure is pending.
    fn apply(&mut self, op: &Op, at: At) -> Result<Applied, Failure> {
        let opts = self.opts;
        let pending = self.mmu.rmap_mut().alloc_schedule().pending();
        let before = (pending
            && opts.check
            && leaves_no_trace(op)
            && (opts.recheck_pure_ops || self.mmu.may_allocate(op)))
        .then(|| (self.mmu.rmap().counters(), self.mmu.state()));
        let epoch0 = self.mmu.rmap().epoch();
        #[cfg(feature = "test-panic")]
        test_panic::maybe_panic(op, &self.report.design);
        let outcome = self
            .mmu
            .apply(op)
            .map_err(|v| at.fail(check::from_violation(&v)))?;
        let fired = pending && !self.mmu.rmap_mut().alloc_schedule().pending();
        if fired && self.report.injected_at.is_none() {
            self.report.injected_at = at.op;
        }
        debug_assert!(
            !(fired && opts.check && leaves_no_trace(op) && before.is_none()),
            "may_allocate said no but the op reached an allocation"
        );
        if fired
            && outcome == Outcome::Err(Errno::ENOMEM)
            && let Some((c0, s0)) = &before
        {
            check_no_trace(&self.mmu, c0, s0).map_err(|b| at.fail(b))?;
        }
        Ok(Applied { outcome, epoch0 })
    }

    /// The outcome against the reference model's, until an injected
    /// allocation failure has fired (after it the runs legitimately differ).
    fn compare(&self, op: &Op, got: Outcome, expected: Outcome, at: At) -> Result<(), Failure> {
        if self.report.injected_at.is_some() || got == expected {
            return Ok(());
        }
        let b = Broken::new(
            invariant::SEMANTICS,
            format!(
                "`{}` gave `{got}` but the reference model (plain memory, Linux 6.18 \
                 semantics) gives `{expected}`",
                print_op(op)
            ),
        );
        Err(at.fail(Broken { pid: op.pid(), ..b }))
    }

    /// The oracle's checks after an op. After a pure op (nothing the
    /// structural checks read has changed since they last passed) only the
    /// bound, whose peaks move, is new. After every other op, the map
    /// counts of what the op changed, against the counts the machine keeps
    /// at its page-table writes, and the layout fingerprint kept the same
    /// way ([`DesignRun::refs`]). With `recheck_pure_ops`, the full census
    /// recounting the page tables runs too.
    fn check(
        &mut self,
        op: &Op,
        outcome: Outcome,
        epoch0: Option<u64>,
        at: At,
    ) -> Result<(), Failure> {
        if !self.opts.check {
            return Ok(());
        }
        let peak = self.report.stats.peak_vmas;
        if self.mmu.last_op_pure() && !self.opts.recheck_pure_ops {
            return check::check_bound(&self.mmu, peak).map_err(|b| at.fail(b));
        }
        check_after_op_incremental(&self.mmu, self.opts, epoch0, peak).map_err(|b| at.fail(b))?;
        if self.opts.recheck_pure_ops && self.counts() {
            self.census.forget(None);
            check::check_map_counts(&self.mmu, &mut self.census, false, false)
                .map_err(|b| at.fail(b))?;
        }
        self.refs(Some((op, outcome)), at)
    }

    /// The map counts after an op (`op` and its outcome; `None`: a
    /// concurrent block, after which every slot is checked) from the
    /// machine's kept counts ([`check::check_refs`]), and when this run
    /// takes part in `layout`, its fingerprint: the maps lines of the
    /// process whose VMAs the op changed hashed again (a fork's child, an
    /// exit's process; none after a fault or a walk; every process after
    /// any other op that names none).
    fn refs(&mut self, op: Option<(&Op, Outcome)>, at: At) -> Result<(), Failure> {
        let layout = self.takes_fingerprint();
        let counts = self.counts();
        if !layout && !counts {
            return Ok(());
        }
        match op {
            Some(_) => check::check_refs(&self.mmu, &mut self.census, counts, layout),
            None => check::check_refs_all(&self.mmu, &mut self.census, counts),
        }
        .map_err(|b| at.fail(b))?;
        if !layout {
            return Ok(());
        }
        if let Some((op, outcome)) = op
            && let Some(pid) = vmas_changed_by(&self.mmu, op, outcome)
        {
            check::refs_vmas_of(&self.mmu, &mut self.census, pid);
        }
        self.fingerprint = Some(check::refs_fingerprint(&self.mmu, &self.census));
        Ok(())
    }

    /// Whether this run checks map counts (always, but in a benchmark of
    /// the checks' cost: [`RunOptions::without`]).
    fn counts(&self) -> bool {
        !self.opts.without.mapcount
    }

    /// Whether this run takes part in `layout` now (until an injected
    /// allocation failure fired).
    fn takes_fingerprint(&self) -> bool {
        !matches!(self.layout, LayoutRole::Off) && self.report.injected_at.is_none()
    }

    /// At the end of the stream, for a run that takes part in `layout`: its
    /// fingerprint compared once more (record slot `len`).
    fn end_checks(&mut self, len: usize) -> Result<(), Failure> {
        if !self.opts.check || matches!(self.layout, LayoutRole::Off) {
            return Ok(());
        }
        self.layout(len, At::AFTER_LAST_OP)
    }

    /// **Layout**: the dump after op `i` against the recording run's, until
    /// an injected allocation failure fires in either (after it the runs
    /// legitimately differ). A pure op keeps the last fingerprint.
    fn layout(&mut self, i: usize, at: At) -> Result<(), Failure> {
        if matches!(self.layout, LayoutRole::Off)
            || !self.opts.check
            || self.report.injected_at.is_some()
        {
            return Ok(());
        }
        // Set before the first op and by `check` after every op but a pure
        // one, which keeps it.
        let fp = self.fingerprint.expect("set before the first op");
        match &mut self.layout {
            LayoutRole::Off => {}
            LayoutRole::Record(v) => v.push(fp),
            LayoutRole::Compare(v) => {
                if v.get(i).is_some_and(|&want| want != fp) {
                    return Err(at.fail(Broken::new(invariant::LAYOUT, LAYOUT_PENDING)));
                }
            }
        }
        Ok(())
    }

    /// After the last op: the final dump and counters, then teardown (every
    /// process still alive exits, checked like any op) and nothing may be
    /// left.
    fn end_of_stream(&mut self, stream: &Stream) -> Result<(), Failure> {
        self.at.set(At::AFTER_LAST_OP);
        self.end_checks(stream.ops.len())?;
        // The last dump is the state after the last op
        // (`docs/op-language.md`), so a stream ending with `dump` gets no
        // extra one.
        if !matches!(stream.ops.last(), Some(Op::Dump)) {
            self.record_dump(stream.lines.last().copied().unwrap_or(0));
        }
        self.report.stats.final_counters = self.mmu.rmap().counters();
        if self.opts.paths {
            let state = &mut self.report.state;
            crate::fuzz::features::merge_pair_features(&self.mmu, &mut |f| state.push(f));
        }
        if self.opts.record {
            self.report.stats.trees = tree_stats(&self.mmu);
        }
        for pid in self.mmu.live_pids() {
            let in_teardown = |mut b: Broken| {
                b.detail = format!("during teardown (exit {pid}): {}", b.detail);
                At::AFTER_LAST_OP.fail(b)
            };
            let epoch0 = self.mmu.rmap().epoch();
            self.mmu
                .apply(&Op::Exit { pid })
                .map_err(|v| in_teardown(check::from_violation(&v)))?;
            if self.opts.check {
                let peak = self.report.stats.peak_vmas;
                check_after_op_incremental(&self.mmu, self.opts, epoch0, peak)
                    .map_err(in_teardown)?;
            }
        }
        if self.opts.check {
            // With every process gone, every frame's map count is 0 (the
            // full census after the teardown's exits, once), and so is every
            // count kept at the PTE writers (the recount of page tables that
            // are all empty now): the safety net for a PTE written around
            // those writers, which leaves a count no zap can balance.
            if self.counts() {
                self.census.forget(None);
                check::check_map_counts(&self.mmu, &mut self.census, true, false)
                    .map_err(|b| At::AFTER_LAST_OP.fail(b))?;
                check::check_refs_recount(&self.mmu).map_err(|b| At::AFTER_LAST_OP.fail(b))?;
            }
            check::check_leak(&self.mmu).map_err(|b| At::AFTER_LAST_OP.fail(b))?;
        }
        Ok(())
    }

    /// The report, with the verdict (a failure's detail ends with the
    /// command that replays it) and what the MMU and the allocator saw.
    fn finish(mut self, verdict: Result<(), Failure>) -> RunReport {
        if let Err(mut f) = verdict {
            if let Some(cmd) = &self.opts.replay {
                f.broken.detail = format!("{}\nreplay: {cmd}", f.broken.detail);
            }
            self.report.failure = Some(f);
        }
        let census = std::mem::take(&mut self.census);
        CENSUS_POOL.with(|p| p.replace(census));
        let mut report = self.report;
        report.stats.mmu = self.mmu.stats();
        let alloc = self.mmu.rmap_mut().alloc_schedule();
        report.alloc_sites = alloc.sites().to_vec();
        report.failed_site = alloc.failed_at();
        report
    }
}

/// Concurrent blocks: each schedule of a block runs on a copy of the whole
/// design run (machine, census, report so far, reference model) and is
/// followed by the rest of the stream, depth first; the first failure ends
/// everything. The path a report shows is the first one (every block on
/// its first schedule: letter order, no preemption) or the failing one.
impl<'o, R: Rmap + Clone> DesignRun<'o, R> {
    /// A copy of this run to try one schedule on; it takes the `layout`
    /// role when `first` (only the first path takes part in `layout`).
    fn fork(&mut self, first: bool) -> Self {
        DesignRun {
            mmu: self.mmu.clone(),
            opts: self.opts,
            report: self.report.clone(),
            at: self.at.clone(),
            layout: if first {
                std::mem::replace(&mut self.layout, LayoutRole::Off)
            } else {
                LayoutRole::Off
            },
            fingerprint: self.fingerprint,
            // The schedule may change any PTE: the copy's census is
            // checked next over every slot (`after_schedule`), so the full
            // census's counts and scans are not copied.
            census: self.census.copy_for_full_pass(),
        }
    }

    /// Ops `start..` of a stream with blocks, then the end of the stream:
    /// ops outside blocks as in [`DesignRun::ops`], with `model` (this
    /// path's own reference model) asked for their outcomes; at a block,
    /// [`DesignRun::block`] (which runs the rest of the stream itself).
    fn rest(
        &mut self,
        stream: &Stream,
        start: usize,
        model: &mut Model,
        cx: &mut Paths,
    ) -> Result<(), Failure> {
        for i in start..stream.ops.len() {
            if let Some(k) = stream.blocks.iter().position(|b| b.first == i) {
                return self.block(stream, k, model, cx);
            }
            let op = &stream.ops[i];
            let at = At {
                op: Some(i),
                line: stream.lines[i],
            };
            self.at.set(at);
            let expected = expect_on(model, op, &self.mmu);
            self.op(i, op, expected, at)?;
        }
        self.end_of_stream(stream)
    }

    /// Block `k` of `stream`: each of its schedules on a copy of this run,
    /// checked, then the rest of the stream on that copy. Leaves this run
    /// as the failing copy, or else the first.
    fn block(
        &mut self,
        stream: &Stream,
        k: usize,
        model: &mut Model,
        cx: &mut Paths,
    ) -> Result<(), Failure> {
        let blk = &stream.blocks[k];
        let ops = &stream.ops[blk.ops()];
        let at = At {
            op: Some(blk.first),
            line: stream.lines[blk.first],
        };
        self.at.set(at);
        let schedule = schedule_of(&blk.sched);
        let horizon = match schedule {
            // PCT places its change points over the steps of one run.
            Schedule::Pct { .. } => {
                let mut dry = self.mmu.clone();
                let (r, _) = dry.run_schedule(ops, Schedule::Explore { bound: 0 }.strategy(0));
                r.map_or(1, |r| r.trace.0.len())
            }
            _ => 0,
        };
        let mut strategy = schedule.strategy(horizon);
        let mut first: Option<(Self, Model)> = None;
        let mut count = 0u64;
        loop {
            if count > 0 && cx.schedules >= cx.max {
                cx.capped = true;
                break;
            }
            let mut child = self.fork(first.is_none());
            let pending = child.mmu.rmap_mut().alloc_schedule().pending();
            let (run, s) = child.mmu.run_schedule(ops, strategy);
            strategy = s;
            let Some(run) = run else {
                if first.is_none() {
                    self.layout = std::mem::replace(&mut child.layout, LayoutRole::Off);
                }
                break;
            };
            cx.schedules += 1;
            count += 1;
            let mut m = model.clone();
            let r = child
                .after_schedule(stream, blk, &run, &self.mmu, &mut m, pending)
                .and_then(|()| child.rest(stream, blk.first + blk.actors, &mut m, cx));
            if let Err(f) = r {
                if let Some(b) = child.report.blocks.get_mut(k) {
                    b.schedules = count;
                }
                *self = child;
                *model = m;
                return Err(f);
            }
            if first.is_none() {
                first = Some((child, m));
            }
        }
        let (child, m) = first.expect("a block runs at least one schedule");
        *self = child;
        *model = m;
        if let Some(b) = self.report.blocks.get_mut(k) {
            b.schedules = count;
        }
        Ok(())
    }

    /// After one schedule of block `blk` ran on this copy (`pre` is the
    /// machine before the block; `pending`: an injected allocation failure
    /// was pending before it): the actors' outcomes recorded, a failure of
    /// the block's own invariants reported, the outcomes of mutators and
    /// faults compared with the reference model in the order they
    /// finished, then every v1 check in full on the schedule's state.
    fn after_schedule(
        &mut self,
        stream: &Stream,
        blk: &Block,
        run: &ScheduleRun,
        pre: &Mmu<R>,
        model: &mut Model,
        pending: bool,
    ) -> Result<(), Failure> {
        let ops = &stream.ops[blk.ops()];
        let last = blk.first + blk.actors;
        let at = |a: usize| At {
            op: Some(blk.first + a),
            line: stream.lines[blk.first + a],
        };
        if pending
            && !self.mmu.rmap_mut().alloc_schedule().pending()
            && self.report.injected_at.is_none()
        {
            self.report.injected_at = Some(blk.first);
        }
        for (a, o) in run.outcomes.iter().enumerate() {
            let Some(o) = o else { continue };
            if self.opts.record {
                let (outcome, busy) = match o {
                    ActorOutcome::Op(o) => (*o, false),
                    ActorOutcome::Busy => (Outcome::Ok, true),
                };
                self.report.outcomes.push(OpRecord {
                    index: blk.first + a,
                    line: stream.lines[blk.first + a],
                    op: ops[a],
                    outcome,
                    actor: Some(Block::letter(a)),
                    busy,
                });
            }
        }
        self.report.blocks.push(BlockRun {
            line: blk.line,
            first: blk.first,
            actors: blk.actors,
            schedule: run.trace.render_strict(),
            trace: run.trace.labelled(),
            outcomes: run.outcomes.clone(),
            schedules: 1,
        });
        if let Some(f) = &run.failure {
            let a = f
                .actor
                .map_or(0, |c| usize::from(c as u8 - b'A'))
                .min(blk.actors - 1);
            self.report.executed = blk.first + a + 1;
            let mut broken = match &f.violation {
                Some(v) => check::from_violation(v),
                None => Broken::new(&f.invariant, f.detail.clone()),
            };
            if let Some(c) = f.actor {
                broken.detail = format!("actor {c}: {}", broken.detail);
            }
            return Err(at(a).fail(broken));
        }
        self.report.executed = last;
        // Mutators and faults in the order they finished; walkers change
        // nothing the model holds and may answer `busy`.
        let finished: Vec<usize> = run
            .trace
            .0
            .iter()
            .filter(|e| e.last)
            .map(|e| e.actor)
            .collect();
        for (n, &a) in finished.iter().enumerate() {
            let op = &ops[a];
            if is_walker(op) {
                continue;
            }
            let expected = if matches!(op, Op::Mremap { .. }) {
                let layout = layout_met(pre, ops, run, &finished[..n], a);
                expect_on(model, op, layout.as_ref().unwrap_or(pre))
            } else {
                expect_on(model, op, pre)
            };
            if let Some(ActorOutcome::Op(got)) = run.outcomes[a] {
                self.compare(op, got, expected, at(a))?;
            }
        }
        let end = at(blk.actors - 1);
        track_peaks(&mut self.report.stats, &self.mmu);
        if self.opts.check {
            let peak = self.report.stats.peak_vmas;
            check::check_after_op(&self.mmu, peak).map_err(|b| end.fail(b))?;
            self.refs(None, end)?;
        }
        for i in blk.ops() {
            self.layout(i, end)?;
        }
        Ok(())
    }
}

/// The layout mutator `a` of a block met when its first step began: the
/// machine before the block with the non-walker actors that finished
/// before that step (`before`, in finish order) applied one by one; `None`
/// when none did (the pre-block machine). An actor that changes the VMAs
/// of `a`'s process holds its `mmap_lock` for write across all its steps,
/// so those ran whole before `a` began; walkers and faults move no VMA
/// boundary.
fn layout_met<R: Rmap + Clone>(
    pre: &Mmu<R>,
    ops: &[Op],
    run: &ScheduleRun,
    before: &[usize],
    a: usize,
) -> Option<Mmu<R>> {
    let start = run.trace.0.iter().position(|e| e.actor == a)?;
    let done: Vec<usize> = before
        .iter()
        .copied()
        .filter(|&b| {
            !is_walker(&ops[b])
                && run
                    .trace
                    .0
                    .iter()
                    .position(|e| e.actor == b && e.last)
                    .is_some_and(|p| p < start)
        })
        .collect();
    if done.is_empty() {
        return None;
    }
    let mut m = pre.clone();
    for b in done {
        let _ = m.apply(&ops[b]);
    }
    Some(m)
}

/// Walks every mapped anonymous page once and charges the VMAs visited to
/// its fork tree.
fn tree_stats<R: Rmap>(mmu: &Mmu<R>) -> Vec<TreeStat> {
    let mut trees: Vec<TreeStat> = mmu
        .rmap()
        .fork_trees()
        .iter()
        .map(|t| TreeStat {
            root: t.root.to_string(),
            anon_vmas: t.anon_vmas,
            avcs: t.avcs,
            bytes: t.bytes,
            vmas: t.vmas,
            ..TreeStat::default()
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for pte in mmu.anon_ptes() {
        if !seen.insert(pte.frame) {
            continue;
        }
        let Some(root) = mmu.rmap().tree_of(pte.mapping) else {
            continue;
        };
        let Ok(walk) = mmu.rmap_walk(pte.mapping, pte.index) else {
            continue;
        };
        let root = root.to_string();
        if let Some(t) = trees.iter_mut().find(|t| t.root == root) {
            t.pages += 1;
            t.visited_total += walk.visited as u64;
            t.visited_max = t.visited_max.max(walk.visited as u64);
        }
    }
    trees
}

/// The checks after an op that was not pure: only the PTEs it set present
/// when the design's epoch did not move and no VMA it tracks was unlinked,
/// freed or resized (`Mmu::last_op_pte_delta`), else everything.
/// `recheck_pure_ops` asks for everything always (the tests compare).
fn check_after_op_incremental<R: Rmap>(
    mmu: &Mmu<R>,
    opts: &RunOptions,
    epoch0: Option<u64>,
    peak_vmas: u64,
) -> Result<(), Broken> {
    let unchanged = !opts.recheck_pure_ops && epoch0.is_some() && mmu.rmap().epoch() == epoch0;
    if unchanged && let Some(ptes) = mmu.last_op_pte_delta() {
        check::check_findability_delta(mmu, ptes)?;
        check::check_bound(mmu, peak_vmas)
    } else {
        check::check_after_op(mmu, peak_vmas)
    }
}

/// Tells the census what `op` may have changed in the page tables (the
/// next census scans only that again): an op on a process changes its own
/// PTEs only, inside the op's range for `mmap`, `munmap`, `madvise` and
/// `mremap` (old and new ranges); a fault, swapout, migration and reclaim
/// change the PTEs the machine noted them writing
/// (`Mmu::last_op_changed_ptes`);
/// `mprotect` changes maps lines but no PTE a dump shows; a fork leaves the
/// parent's PTEs mapping what they mapped (the child is scanned whole), an
/// exit leaves no page table (what it mapped is uncounted). The tests'
/// reference: the runner checks the counts kept at the page-table writes.
#[cfg(test)]
fn forget_changed<R: Rmap>(census: &mut Census, mmu: &Mmu<R>, op: &Op) {
    let end = |addr: u64, len: u64| addr.saturating_add(len).min(rmaplab_ops::WINDOW_PAGES);
    match *op {
        Op::Mmap { pid, addr, len, .. }
        | Op::Munmap { pid, addr, len }
        | Op::Madvise { pid, addr, len, .. } => {
            census.forget_range(pid, addr, end(addr, len), true)
        }
        Op::Mremap {
            pid,
            old,
            old_len,
            new_len,
            to,
        } => {
            census.forget_range(pid, old, end(old, old_len.max(new_len)), true);
            if let Some(t) = to {
                census.forget_range(pid, t.new, end(t.new, new_len), true);
            }
        }
        Op::Mprotect { pid, .. } => census.forget_range(pid, 0, 0, true),
        // Faults and walks: the PTEs they wrote (the machine notes every
        // PTE they write).
        Op::Read { .. }
        | Op::Write { .. }
        | Op::Swapout { .. }
        | Op::Migrate { .. }
        | Op::Reclaim => {
            for (p, a) in mmu.last_op_changed_ptes() {
                census.forget_range(p, a, a + 1, false);
            }
        }
        // A fork's child is new to the census (scanned whole); the parent's
        // entries stay what they were.
        Op::Fork { .. } => {}
        // An exit drops the process's page table.
        Op::Exit { pid } => census.forget(Some(pid)),
        // `folio_referenced` only reads the page tables.
        Op::Referenced { .. } => {}
        Op::FailAlloc { .. } | Op::Dump => census.forget(None),
        Op::ExecStack { pid, addr, len } => census.forget_range(pid, addr, end(addr, len), true),
        // The stack's PTEs move.
        Op::ExecShift { pid, .. } => census.forget(Some(pid)),
    }
}

/// The process whose VMAs `op` (which gave `outcome`) may have changed:
/// `None` for a fault or a walk (no VMA), `Some(None)` when it names no
/// process (every one is hashed again). An op changes its own process's
/// VMAs only; a fork's are the child's.
fn vmas_changed_by<R: Rmap>(
    mmu: &Mmu<R>,
    op: &Op,
    outcome: Outcome,
) -> Option<Option<rmaplab_ops::Pid>> {
    match *op {
        Op::Read { .. }
        | Op::Write { .. }
        | Op::Swapout { .. }
        | Op::Migrate { .. }
        | Op::Reclaim
        | Op::Referenced { .. } => None,
        Op::Fork { pid } if outcome == Outcome::Ok => {
            Some(Some(mmu.last_live_pid().unwrap_or(pid)))
        }
        Op::Mmap { pid, .. }
        | Op::Munmap { pid, .. }
        | Op::Mprotect { pid, .. }
        | Op::Madvise { pid, .. }
        | Op::Mremap { pid, .. }
        | Op::Fork { pid }
        | Op::Exit { pid }
        | Op::ExecStack { pid, .. }
        | Op::ExecShift { pid, .. } => Some(Some(pid)),
        _ => Some(None),
    }
}

/// Ops that Linux undoes completely when an allocation fails: a fork (as
/// if it never happened) and a fault (nothing mapped). Splits, merges and
/// moves may legitimately leave part of their work (the first split of an
/// mprotect stays when the second fails).
fn leaves_no_trace(op: &Op) -> bool {
    matches!(op, Op::Fork { .. } | Op::Read { .. } | Op::Write { .. })
}

/// **Failed ops leave no trace**: the design's objects (by count and size)
/// and everything a user can observe are what they were before the op.
fn check_no_trace<R: Rmap>(mmu: &Mmu<R>, c0: &Counters, s0: &State) -> Result<(), Broken> {
    let c1 = mmu.rmap().counters();
    if (c1.anon_vmas, c1.avcs, c1.bytes) != (c0.anon_vmas, c0.avcs, c0.bytes) {
        return Err(Broken::new(
            invariant::FAILED_OP_TRACE,
            format!(
                "the op failed with an injected ENOMEM but changed the design's objects: \
                 {} anon_vma(s), {} chain(s), {} bytes before; {}, {}, {} after\n{}",
                c0.anon_vmas,
                c0.avcs,
                c0.bytes,
                c1.anon_vmas,
                c1.avcs,
                c1.bytes,
                mmu.rmap().describe(mmu, None, &[])
            ),
        ));
    }
    if &mmu.state() != s0 {
        return Err(Broken::new(
            invariant::FAILED_OP_TRACE,
            "the op failed with an injected ENOMEM but changed the processes' mappings or pages",
        ));
    }
    Ok(())
}

fn track_peaks<R: Rmap>(stats: &mut RunStats, mmu: &Mmu<R>) {
    let c = mmu.rmap().counters();
    stats.peak_anon_vmas = stats.peak_anon_vmas.max(c.anon_vmas);
    stats.peak_avcs = stats.peak_avcs.max(c.avcs);
    stats.peak_bytes = stats.peak_bytes.max(c.bytes);
    stats.peak_vmas = stats.peak_vmas.max(mmu.vma_count() as u64);
}

/// The order in which a block's mutators and faults finished on a run's
/// path (their linearization order; walkers are left out), as letters.
fn finish_order(run: &RunReport, b: &BlockRun) -> String {
    let walker = |a: usize| {
        run.outcomes
            .iter()
            .find(|o| o.index == b.first + a)
            .is_some_and(|o| {
                matches!(
                    o.op,
                    Op::Swapout { .. } | Op::Migrate { .. } | Op::Referenced { .. }
                )
            })
    };
    let steps: Vec<char> = b
        .trace
        .split_whitespace()
        .filter_map(|t| t.chars().next())
        .collect();
    let mut last: Vec<(usize, char)> = (0..b.actors)
        .filter(|&a| !walker(a))
        .filter_map(|a| {
            let l = (b'A' + a as u8) as char;
            steps.iter().rposition(|&c| c == l).map(|i| (i, l))
        })
        .collect();
    last.sort();
    last.into_iter().map(|(_, l)| l).collect()
}

/// The first block (its line) both runs' paths ran whose mutators and
/// faults finished in different orders, with the two orders. The same
/// schedule can order them differently where the eras' step machines
/// differ (a fault is one step under `mmap_lock`, several under a
/// per-VMA lock), and then the ops after the block legitimately differ.
fn diverging_block(a: &RunReport, b: &RunReport) -> Option<(usize, String, String)> {
    for ba in &a.blocks {
        let Some(bb) = b.blocks.iter().find(|x| x.line == ba.line) else {
            continue;
        };
        let (oa, ob) = (finish_order(a, ba), finish_order(b, bb));
        if oa != ob {
            return Some((ba.line, oa, ob));
        }
    }
    None
}

/// Compares the designs' runs op by op. Outcomes must agree up to the first
/// injected failure; a disagreement on an op whose outcome depends on VMA
/// boundaries (mremap) where the layouts differ is reported as a layout
/// difference, not a failure, and ends the comparison (the runs diverge).
pub fn compare_runs(runs: &[RunReport]) -> Comparison {
    let mut cmp = Comparison::default();
    if runs.len() < 2 {
        return cmp;
    }
    let base = &runs[0];
    for other in &runs[1..] {
        let diverged = diverging_block(base, other);
        if let Some((line, a, b)) = &diverged {
            cmp.notes.push(format!(
                "block at line {line}: its mutators and faults finished in the order {a} with {} \
                 but {b} with {} (the designs' eras split faults into different steps); runs not \
                 compared from the block on",
                base.design, other.design
            ));
        }
        let limit = [
            base.injected_at,
            other.injected_at,
            diverged.and_then(|(line, _, _)| {
                base.blocks.iter().find(|b| b.line == line).map(|b| b.first)
            }),
        ]
        .into_iter()
        .flatten()
        .min();
        for (a, b) in base.outcomes.iter().zip(&other.outcomes) {
            if limit.is_some_and(|l| a.index >= l) {
                break;
            }
            if a.outcome != b.outcome {
                if matches!(a.op, Op::Mremap { .. }) {
                    cmp.notes.push(format!(
                        "line {}: `{}` gives `{}` with {} but `{}` with {} (mremap outcomes \
                         depend on VMA boundaries, which differ); runs not compared further",
                        a.line,
                        print_op(&a.op),
                        a.outcome,
                        base.design,
                        b.outcome,
                        other.design
                    ));
                } else {
                    cmp.failure.get_or_insert(Failure {
                        op_index: Some(a.index),
                        line: a.line,
                        broken: Broken::new(
                            invariant::DIFFERENTIAL,
                            format!(
                                "`{}` gives `{}` with {} but `{}` with {}",
                                print_op(&a.op),
                                a.outcome,
                                base.design,
                                b.outcome,
                                other.design
                            ),
                        ),
                    });
                }
                break;
            }
        }
        for (da, db) in base.dumps.iter().zip(&other.dumps) {
            for (pid, pa) in &da.state.procs {
                let Some(pb) = db.state.procs.get(pid) else {
                    continue;
                };
                if pa.vmas != pb.vmas {
                    cmp.notes.push(format!(
                        "dump at line {}: {} lays out {pid} as {} but {} as {}",
                        da.line,
                        base.design,
                        layout_line(&pa.vmas),
                        other.design,
                        layout_line(&pb.vmas)
                    ));
                }
            }
        }
    }
    cmp
}

/// `0-8 8-12(r)`-style compact layout.
pub fn layout_line(vmas: &[rmaplab_impls::state::VmaLine]) -> String {
    vmas.iter()
        .map(|v| {
            if v.perms.starts_with("rw") {
                format!("{}-{}", v.start, v.end)
            } else {
                format!("{}-{}({})", v.start, v.end, v.perms)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The result of comparing runs.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    pub failure: Option<Failure>,
    /// Layout differences and other expected divergences, for the report.
    pub notes: Vec<String>,
}

/// Runs every spec, then compares them. The specs share one reference
/// model (`run/reference.rs`) unless `opts.recheck_pure_ops` asks for one
/// each. Specs that claim the same VMA semantics
/// ([`DesignSpec::vma_semantics`]) must agree on every dump after every op
/// (the `layout` invariant, see [`run_all_with`]).
pub fn run_all(
    stream: &Stream,
    specs: &[DesignSpec],
    opts: &RunOptions,
) -> (Vec<RunReport>, Comparison) {
    run_all_with(stream, specs, &|k| specs[k].build_cloneable(), opts)
}

/// [`run_all`] with the designs made by `make(k)` for `specs[k]` (`None`:
/// the reference model alone), which gives each run its label and its VMA
/// semantics: a test can run a design broken on purpose under a spec's name.
///
/// **Layout**: the first run of each VMA semantics that two or more specs
/// claim records the fingerprint of its dump after every op; each later run
/// of that semantics compares its own after the same op, up to the first
/// injected allocation failure of either, and the first difference fails
/// it with `layout`, naming both designs and what each shows there. The
/// reference model takes no part: its layout is a coarse stand-in (no VMA
/// boundaries of its own, no frames), and what it does model, the values a
/// process reads, every run is already compared with (`semantics`).
pub fn run_all_with(
    stream: &Stream,
    specs: &[DesignSpec],
    make: &dyn Fn(usize) -> Option<Box<dyn CloneRmap>>,
    opts: &RunOptions,
) -> (Vec<RunReport>, Comparison) {
    // Blocks: the designs' finish orders differ (their eras lock
    // differently), so each design has a model of its own.
    let mut shared = SharedModel::new(!opts.recheck_pure_ops && stream.blocks.is_empty());
    let semantics: Vec<Option<VmaSemantics>> = specs.iter().map(|s| s.vma_semantics()).collect();
    // Per spec: the index of the first spec of its semantics, if another
    // spec claims it too.
    let recorder: Vec<Option<usize>> = semantics
        .iter()
        .map(|&sem| {
            let same = |k: &usize| sem.is_some() && semantics[*k] == sem;
            if opts.without.layout {
                return None;
            }
            let mut ks = (0..specs.len()).filter(same);
            let first = ks.next()?;
            ks.next().map(|_| first)
        })
        .collect();
    let mut records: Vec<Vec<u64>> = vec![Vec::new(); specs.len()];
    let mut runs: Vec<RunReport> = Vec::with_capacity(specs.len());
    for (k, spec) in specs.iter().enumerate() {
        shared.begin_design(k);
        let r = match make(k) {
            None => run_reference(stream),
            Some(design) => {
                let (before, rest) = records.split_at_mut(k);
                let role = match recorder[k] {
                    None => LayoutRole::Off,
                    Some(r) if r == k => LayoutRole::Record(&mut rest[0]),
                    Some(r) => LayoutRole::Compare(&before[r]),
                };
                run_design_shared(stream, design, spec, opts, &mut shared, role)
            }
        };
        shared.end_design(k, r.executed, r.passed(), stream.ops.len());
        runs.push(r);
    }
    for (k, run) in runs.iter_mut().enumerate() {
        if let (Some(r), Some(f)) = (recorder[k], run.failure.as_mut())
            && f.broken.invariant == invariant::LAYOUT
            && let Some(i) = f.op_index.or(stream.ops.len().checked_sub(1))
        {
            let (a, b) = (
                state_after(stream, make(r), i),
                state_after(stream, make(k), i),
            );
            let what = first_difference(&specs[r].label(), &a, &specs[k].label(), &b);
            let sem = semantics[k].map_or(String::new(), |s| format!("{s:?}"));
            f.broken.detail = f.broken.detail.replacen(
                LAYOUT_PENDING,
                &format!(
                    "after `{}`, {} and {} both claim {sem} VMA semantics but their dumps \
                     differ: {what}",
                    print_op(&stream.ops[i]),
                    specs[r].label(),
                    specs[k].label()
                ),
                1,
            );
            f.broken.pid = what_pid(&a, &b);
        }
    }
    let cmp = compare_runs(&runs);
    (runs, cmp)
}

/// Test builds only (the `test-panic` feature, which rmaplab's own tests
/// turn on and nothing else does): a way to make a design's run panic, so
/// that the tests can show what every engine does with a panic.
#[cfg(feature = "test-panic")]
pub mod test_panic {
    use rmaplab_ops::Op;

    /// The `write` value that panics (`"panic!"` in ASCII): the decoder
    /// gives it only in wide mode, as a 7-byte varint, so no other test
    /// meets it.
    pub const VALUE: u64 = 0x7061_6e69_6321;
    /// The design whose run panics (the others pass, so a finding's header
    /// must name the one that fails).
    pub const DESIGN: &str = "prealloc-2026";
    /// The panic's message.
    pub const MESSAGE: &str = "test-panic: a write of the test value";

    pub(super) fn maybe_panic(op: &Op, design: &str) {
        if matches!(op, Op::Write { value: VALUE, .. }) && design == DESIGN {
            panic!("{MESSAGE}");
        }
    }
}

/// The state a design shows after op `i` of `stream`, replayed without
/// checks (for the report of a `layout` failure).
fn state_after(stream: &Stream, design: Option<Box<dyn CloneRmap>>, i: usize) -> State {
    let Some(design) = design else {
        return State::default();
    };
    let mut mmu = Mmu::new(design);
    for op in &stream.ops[..=i] {
        if mmu.apply(op).is_err() {
            break;
        }
    }
    mmu.state()
}

/// Frames renamed by first appearance (process, then page order), as the
/// dump's `f0`, `f1`, ... classes.
fn canonical(st: &State) -> State {
    let mut names = std::collections::BTreeMap::new();
    let mut out = st.clone();
    for ps in out.procs.values_mut() {
        for (f, _) in ps.pages.values_mut() {
            if let FrameRef::Frame(raw) = *f {
                let n = names.len() as u64;
                *f = FrameRef::Frame(*names.entry(raw).or_insert(n));
            }
        }
    }
    out
}

/// The first process whose dump differs between `a` and `b`.
fn what_pid(a: &State, b: &State) -> Option<rmaplab_ops::Pid> {
    let (a, b) = (canonical(a), canonical(b));
    let pids: std::collections::BTreeSet<_> = a.procs.keys().chain(b.procs.keys()).collect();
    pids.into_iter()
        .find(|p| a.procs.get(p) != b.procs.get(p))
        .copied()
}

/// The first difference between design `x`'s dump `a` and design `y`'s dump
/// `b`: a process alive in one only, a maps line (the address range where
/// the layouts part and what each has there), or a page (its frame class
/// and map count in each).
pub fn first_difference(x: &str, a: &State, y: &str, b: &State) -> String {
    let (a, b) = (canonical(a), canonical(b));
    let empty = ProcState::default();
    let pids: std::collections::BTreeSet<_> = a.procs.keys().chain(b.procs.keys()).collect();
    for pid in pids {
        let (pa, pb) = match (a.procs.get(pid), b.procs.get(pid)) {
            (Some(pa), Some(pb)) => (pa, pb),
            (Some(_), None) => return format!("{pid} is alive with {x} but not with {y}"),
            (None, Some(_)) => return format!("{pid} is alive with {y} but not with {x}"),
            (None, None) => (&empty, &empty),
        };
        if pa.vmas != pb.vmas {
            let n = pa
                .vmas
                .iter()
                .zip(&pb.vmas)
                .take_while(|(u, v)| u == v)
                .count();
            let (la, lb) = (
                &pa.vmas[n.min(pa.vmas.len())..],
                &pb.vmas[n.min(pb.vmas.len())..],
            );
            let start = la.iter().chain(lb).map(|v| v.start).min().unwrap_or(0);
            // The range up to the first boundary both layouts share again.
            let ends_a: std::collections::BTreeSet<u64> = la.iter().map(|v| v.end).collect();
            let end = lb
                .iter()
                .map(|v| v.end)
                .find(|e| ends_a.contains(e))
                .or_else(|| la.iter().chain(lb).map(|v| v.end).max())
                .unwrap_or(start);
            let within = |vs: &[rmaplab_impls::state::VmaLine]| {
                let mut s = maps_lines(
                    &vs.iter()
                        .filter(|v| v.start < end && v.end > start)
                        .cloned()
                        .collect::<Vec<_>>(),
                );
                if s.is_empty() {
                    s = "no VMA".into();
                }
                s
            };
            return format!(
                "{pid} [{start}, {end}): {x} has {} but {y} has {}",
                within(la),
                within(lb)
            );
        }
        let pages: std::collections::BTreeSet<u64> =
            pa.pages.keys().chain(pb.pages.keys()).copied().collect();
        for page in pages {
            let (ea, eb) = (pa.pages.get(&page), pb.pages.get(&page));
            if ea != eb {
                let show = |e: Option<&(FrameRef, u32)>| match e {
                    None => "nothing".to_string(),
                    Some((FrameRef::Zero, _)) => "the zero page".to_string(),
                    Some((FrameRef::Frame(f), n)) => format!("f{f} (map count {n})"),
                };
                return format!(
                    "{pid} page {page}: {x} maps {} but {y} maps {} (frames named by first \
                     appearance)",
                    show(ea),
                    show(eb)
                );
            }
        }
    }
    "the fingerprints differ but the dumps print alike".into()
}

/// Maps lines with kind and offset: `0-4 rw-p anon, 4-8 r--p file:1@4`.
fn maps_lines(vmas: &[rmaplab_impls::state::VmaLine]) -> String {
    vmas.iter()
        .map(|v| {
            let off = if v.offset != 0 {
                format!("@{}", v.offset)
            } else {
                String::new()
            };
            format!("{}-{} {} {}{off}", v.start, v.end, v.perms, v.kind.name())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmaplab_impls::designs::chain_2010::{Chain2010, Era};
    use rmaplab_impls::mmu::Pte;

    /// What [`forget_changed`] names is all an op changed: after every op of
    /// random streams, a full pass that scans again only what was named
    /// gives the fingerprint of a census that scans everything afresh.
    #[test]
    fn the_census_scans_again_all_an_op_changed() {
        let mut passes = 0;
        for s in crate::fuzz::bench::streams(150, 64, 11) {
            let mut mmu = Mmu::new(Chain2010::new(Era::E2022));
            let mut c = Census::default();
            check::check_map_counts(&mmu, &mut c, false, true).unwrap();
            for op in &s.ops {
                if mmu.apply(op).is_err() {
                    break;
                }
                if mmu.last_op_pure() {
                    continue;
                }
                forget_changed(&mut c, &mmu, op);
                let kept = check::check_map_counts(&mmu, &mut c, false, true).unwrap();
                let fresh = check::dump_fingerprint(&mmu, &mut Census::default());
                assert_eq!(kept, fresh, "after `{}`", print_op(op));
                passes += 1;
            }
        }
        assert!(passes > 1000, "{passes} passes");
    }

    /// The census a concurrent block's schedule copy gets
    /// (`Census::copy_for_full_pass`), checked by a full pass over every
    /// process as `DesignRun::after_schedule` does, gives the verdicts and
    /// fingerprints of a full copy, then and at every op after; a map
    /// count made wrong fails both alike.
    #[test]
    fn a_schedule_copy_of_the_census_checks_as_a_full_copy() {
        let (mut copies, mut broken) = (0, 0);
        for spec in rmaplab_impls::designs::registry::canonical_specs() {
            for s in crate::fuzz::bench::streams(40, 64, 23) {
                let Some(design) = spec.build_cloneable() else {
                    continue;
                };
                let mut mmu = Mmu::new(design);
                let mut full = Census::default();
                check::check_map_counts(&mmu, &mut full, false, true).unwrap();
                let mut copy = full.clone();
                for (k, op) in s.ops.iter().enumerate() {
                    if mmu.apply(op).is_err() {
                        break;
                    }
                    if mmu.last_op_pure() {
                        continue;
                    }
                    if k % 5 == 0 {
                        // A schedule's end: every PTE may have changed.
                        copy = full.copy_for_full_pass();
                        copy.forget(None);
                        full.forget(None);
                        // A writable page: never the zero page, whose
                        // count only the delta census's changed frames show.
                        let present = (0..rmaplab_ops::WINDOW_PAGES).find(|&a| {
                            matches!(
                                mmu.pte(rmaplab_ops::Pid(0), a),
                                Pte::Present { writable: true, .. }
                            )
                        });
                        if let Some(a) = present {
                            let mut bad = mmu.clone();
                            bad.testkit_add_mapcount(rmaplab_ops::Pid(0), a, 1);
                            let (mut cf, mut cc) = (full.clone(), copy.copy_for_full_pass());
                            let ef = check::check_map_counts(&bad, &mut cf, false, true);
                            let ec = check::check_map_counts(&bad, &mut cc, false, true);
                            assert!(ef.is_err(), "{} after `{}`", spec.label(), print_op(op));
                            assert_eq!(ef, ec, "{} after `{}`", spec.label(), print_op(op));
                            broken += 1;
                        }
                        let rf = check::check_map_counts(&mmu, &mut full, false, true);
                        let rc = check::check_map_counts(&mmu, &mut copy, false, true);
                        assert_eq!(rf, rc, "{} after `{}`", spec.label(), print_op(op));
                        copies += 1;
                        continue;
                    }
                    let rf = census_after(&mmu, &mut full, op, true);
                    let rc = census_after(&mmu, &mut copy, op, true);
                    assert_eq!(rf, rc, "{} after `{}`", spec.label(), print_op(op));
                    if rf.is_err() {
                        break;
                    }
                }
            }
        }
        assert!(
            copies > 500 && broken > 200,
            "{copies} copies, {broken} broken"
        );
    }

    /// One op's census as the runner takes it (`DesignRun::check`), the
    /// fault's through `Mmu::check_map_counts_after_fault` when `direct`,
    /// else its PTEs named and the delta pass: `Some` fingerprint after a
    /// full pass.
    fn census_after<R: Rmap>(
        mmu: &Mmu<R>,
        c: &mut Census,
        op: &Op,
        direct: bool,
    ) -> Result<Option<u64>, String> {
        if direct && matches!(op, Op::Read { .. } | Op::Write { .. }) {
            return mmu.check_map_counts_after_fault(c).map(|()| None);
        }
        forget_changed(c, mmu, op);
        match op {
            Op::Read { .. }
            | Op::Write { .. }
            | Op::Fork { .. }
            | Op::Exit { .. }
            | Op::Mmap { replace: true, .. } => mmu.check_map_counts_delta(c).map(|()| None),
            Op::Mprotect { .. } | Op::Mmap { .. } => Ok(None),
            _ => mmu.check_map_counts(c, false, true).map(Some),
        }
    }

    /// The fault census that reads the machine's notes itself gives, on
    /// every design after every op of random streams, the verdicts,
    /// reports and later fingerprints of the PTEs named and the delta pass
    /// (its path taken thousands of times); a map count made wrong after a
    /// fault fails both alike.
    #[test]
    fn the_fault_census_checks_what_the_named_delta_checks() {
        let (mut faults, mut broken) = (0, 0);
        let mut direct = 0;
        for spec in rmaplab_impls::designs::registry::canonical_specs() {
            for s in crate::fuzz::bench::streams(60, 64, 17) {
                let Some(design) = spec.build_cloneable() else {
                    continue;
                };
                let mut mmu = Mmu::new(design);
                let (mut a, mut b) = (Census::default(), Census::default());
                check::check_map_counts(&mmu, &mut a, false, true).unwrap();
                check::check_map_counts(&mmu, &mut b, false, true).unwrap();
                for op in &s.ops {
                    if mmu.apply(op).is_err() {
                        break;
                    }
                    if mmu.last_op_pure() {
                        continue;
                    }
                    let fault = matches!(op, Op::Read { .. } | Op::Write { .. });
                    let present = mmu
                        .last_op_changed_ptes()
                        .find(|&(p, addr)| matches!(mmu.pte(p, addr), Pte::Present { .. }));
                    if fault && let Some((p, addr)) = present {
                        // The same census on a machine whose faulted page's
                        // count is off by one.
                        let mut bad = mmu.clone();
                        bad.testkit_add_mapcount(p, addr, 1);
                        let (mut ca, mut cb) = (a.clone(), b.clone());
                        let ea = census_after(&bad, &mut ca, op, true);
                        let eb = census_after(&bad, &mut cb, op, false);
                        assert!(ea.is_err(), "{} after `{}`", spec.label(), print_op(op));
                        assert_eq!(ea, eb, "{} after `{}`", spec.label(), print_op(op));
                        broken += 1;
                    }
                    let ra = census_after(&mmu, &mut a, op, true);
                    let rb = census_after(&mmu, &mut b, op, false);
                    assert_eq!(ra, rb, "{} after `{}`", spec.label(), print_op(op));
                    if ra.is_err() {
                        break;
                    }
                    faults += usize::from(fault);
                }
                direct += a.faults_direct();
                let fa = check::check_map_counts(&mmu, &mut a, false, true);
                let fb = check::check_map_counts(&mmu, &mut b, false, true);
                assert_eq!(fa, fb, "{} at the end", spec.label());
            }
        }
        assert!(
            faults > 1500 && direct > 1000 && broken > 1000,
            "{faults} faults, {direct} direct, {broken} broken"
        );
    }
}

/// The counts the machine keeps at its page-table writes and the layout
/// fingerprint kept with them, against the full census they replace on the
/// per-op path.
#[cfg(test)]
mod kept_counts {
    use super::*;
    use rmaplab_impls::designs::registry::{Design, canonical_specs};
    use std::collections::HashMap;

    /// Every canonical design and eager-2010.
    fn specs() -> Vec<DesignSpec> {
        let mut v = canonical_specs();
        v.push(DesignSpec::new(Design::Eager2010));
        v
    }

    /// After every op of several hundred random streams, on every design:
    /// the kept counts equal a recount of the page tables, the checks on
    /// them pass where the full census passes, the fingerprint kept op by
    /// op equals one made afresh, and two states' kept fingerprints are
    /// equal exactly when their full dump fingerprints are (over every
    /// design, stream and op: frames allocated in different slot orders
    /// by different designs still agree).
    #[test]
    fn the_kept_counts_and_fingerprint_follow_a_full_recount() {
        let mut kept_to_dump: HashMap<u64, u64> = HashMap::new();
        let mut dump_to_kept: HashMap<u64, u64> = HashMap::new();
        let (mut ops, mut shared) = (0usize, 0usize);
        for spec in specs() {
            for s in crate::fuzz::bench::streams(300, 64, 41) {
                let Some(design) = spec.build_cloneable() else {
                    continue;
                };
                let mut mmu = Mmu::new(design);
                let mut c = Census::default();
                check::check_refs(&mmu, &mut c, true, true).unwrap();
                for op in &s.ops {
                    let Ok(outcome) = mmu.apply(op) else { break };
                    let what = || format!("{} after `{}`", spec.label(), print_op(op));
                    mmu.check_refs_recount()
                        .unwrap_or_else(|e| panic!("{}: {e}", what()));
                    let full = check::check_map_counts(&mmu, &mut Census::default(), true, false);
                    let kept = check::check_refs(&mmu, &mut c, true, true);
                    assert_eq!(full.is_ok(), kept.is_ok(), "{}: {full:?} {kept:?}", what());
                    if kept.is_err() {
                        break;
                    }
                    // The maps lines the runner hashes again (`DesignRun::refs`).
                    if let Some(pid) = vmas_changed_by(&mmu, op, outcome) {
                        check::refs_vmas_of(&mmu, &mut c, pid);
                    }
                    let fp = check::refs_fingerprint(&mmu, &c);
                    let mut fresh = Census::default();
                    check::check_refs_all(&mmu, &mut fresh, false).unwrap();
                    assert_eq!(fp, check::refs_fingerprint(&mmu, &fresh), "{}", what());
                    let dump = check::dump_fingerprint(&mmu, &mut Census::default());
                    let a = *kept_to_dump.entry(fp).or_insert(dump);
                    let b = *dump_to_kept.entry(dump).or_insert(fp);
                    assert_eq!((a, b), (dump, fp), "{}", what());
                    ops += 1;
                }
            }
        }
        // Many states are reached by more than one design or stream.
        shared += ops - kept_to_dump.len();
        assert!(
            ops > 50_000 && shared > 5_000,
            "{ops} ops, {shared} shared states"
        );
    }
}
