//! The differential runner: one stream on each design on the emulated MMU,
//! op by op: the reference model's expected outcome (`run/reference.rs`),
//! the op applied, the outcomes compared, the oracle's checks
//! ([`crate::oracle::check`]); then teardown and the leak check. The
//! designs' runs are compared with each other at the end ([`compare_runs`]).
//! A panic anywhere in one design's run (the design, the MMU, the model,
//! the checks) ends that run with a `panic` failure at the op it happened
//! in ([`super::panic`]); the other designs still run.

use std::fmt;

use rmaplab_impls::designs::registry::DesignSpec;
use rmaplab_impls::mmu::{Mmu, MmuStats};
use rmaplab_impls::rmap::{Counters, Rmap};
use rmaplab_impls::state::State;
use rmaplab_ops::{Errno, Op, Outcome};

use super::panic::catch;
use super::reference::{Reference, SharedModel};
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
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            record: true,
            check: true,
            replay: None,
            recheck_pure_ops: false,
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
        }
    }

    pub fn passed(&self) -> bool {
        self.failure.is_none()
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
    run_spec_shared(stream, spec, opts, &mut SharedModel::default())
}

/// [`run_spec`], the expected outcomes from `shared` (see [`run_all`]).
fn run_spec_shared(
    stream: &Stream,
    spec: &DesignSpec,
    opts: &RunOptions,
    shared: &mut SharedModel,
) -> RunReport {
    match spec.build() {
        None => run_reference(stream),
        Some(design) => run_design_shared(stream, design, spec, opts, shared),
    }
}

/// Runs `stream` with one design on the MMU: every op on the reference
/// model (with the design's layout) and on the MMU, outcomes compared up to
/// the first injected allocation failure, the oracle's checks after every
/// op, then teardown of the remaining processes and the leak check.
pub fn run_design<R: Rmap>(
    stream: &Stream,
    rmap: R,
    spec: &DesignSpec,
    opts: &RunOptions,
) -> RunReport {
    run_design_shared(stream, rmap, spec, opts, &mut SharedModel::default())
}

/// [`run_design`], the expected outcomes from `shared`.
fn run_design_shared<R: Rmap>(
    stream: &Stream,
    rmap: R,
    spec: &DesignSpec,
    opts: &RunOptions,
    shared: &mut SharedModel,
) -> RunReport {
    let mut run = DesignRun::new(rmap, spec, opts);
    let mut reference = Reference::new(shared);
    // A panic leaves the MMU and the model half-updated: the run ends
    // there (the shared model's record is then incomplete, so the next
    // design runs a model of its own).
    let verdict = catch(|| {
        run.ops(stream, &mut reference)
            .and_then(|()| run.end_of_stream(stream))
    })
    .unwrap_or_else(|p| Err(run.at.fail(Broken::new(invariant::PANIC, p.to_string()))));
    run.finish(verdict)
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

/// One design's run of a stream: the MMU with the design, and the report
/// being filled.
struct DesignRun<'o, R: Rmap> {
    mmu: Mmu<R>,
    opts: &'o RunOptions,
    report: RunReport,
    /// Where the run is (where a panic happened).
    at: At,
}

impl<'o, R: Rmap> DesignRun<'o, R> {
    fn new(rmap: R, spec: &DesignSpec, opts: &'o RunOptions) -> Self {
        // The design's effective configuration (the example of
        // `docs/op-language.md`: a default chain-2010 run reports
        // `"config": {"era": "2022"}`).
        let config = rmap
            .config()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        DesignRun {
            mmu: Mmu::new(rmap),
            opts,
            report: RunReport::new(spec.design.name(), config),
            at: At::AFTER_LAST_OP,
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
            self.at = at;
            // Asked before the op: the model reads the layout the op meets.
            let expected = reference.expect(stream, i, &self.mmu);
            self.report.executed = i + 1;
            let applied = self.apply(op, at)?;
            self.record_outcome(i, at.line, op, applied.outcome);
            self.compare(op, applied.outcome, expected, at)?;
            track_peaks(&mut self.report.stats, &self.mmu);
            self.check(applied.epoch0, at)?;
            if matches!(op, Op::Dump) {
                self.record_dump(at.line);
            }
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
    /// bound, whose peaks move, is new.
    fn check(&self, epoch0: Option<u64>, at: At) -> Result<(), Failure> {
        if !self.opts.check {
            return Ok(());
        }
        let peak = self.report.stats.peak_vmas;
        if self.mmu.last_op_pure() && !self.opts.recheck_pure_ops {
            check::check_bound(&self.mmu, peak)
        } else {
            check_after_op_incremental(&self.mmu, self.opts, epoch0, peak)
        }
        .map_err(|b| at.fail(b))
    }

    /// After the last op: the final dump and counters, then teardown (every
    /// process still alive exits, checked like any op) and nothing may be
    /// left.
    fn end_of_stream(&mut self, stream: &Stream) -> Result<(), Failure> {
        self.at = At::AFTER_LAST_OP;
        // The last dump is the state after the last op
        // (`docs/op-language.md`), so a stream ending with `dump` gets no
        // extra one.
        if !matches!(stream.ops.last(), Some(Op::Dump)) {
            self.record_dump(stream.lines.last().copied().unwrap_or(0));
        }
        self.report.stats.final_counters = self.mmu.rmap().counters();
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
        let mut report = self.report;
        report.stats.mmu = self.mmu.stats();
        let alloc = self.mmu.rmap_mut().alloc_schedule();
        report.alloc_sites = alloc.sites().to_vec();
        report.failed_site = alloc.failed_at();
        report
    }
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
        let limit = [base.injected_at, other.injected_at]
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
/// each.
pub fn run_all(
    stream: &Stream,
    specs: &[DesignSpec],
    opts: &RunOptions,
) -> (Vec<RunReport>, Comparison) {
    let mut shared = SharedModel::new(!opts.recheck_pure_ops);
    let mut runs: Vec<RunReport> = Vec::with_capacity(specs.len());
    for (k, s) in specs.iter().enumerate() {
        shared.begin_design(k);
        let r = run_spec_shared(stream, s, opts, &mut shared);
        shared.end_design(k, r.executed, r.passed(), stream.ops.len());
        runs.push(r);
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
