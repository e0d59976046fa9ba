//! The differential runner: one stream, executed by the reference model and
//! by each design on the emulated MMU, with the oracle's checks after every
//! op, and the designs' outcomes compared with each other.

use std::fmt;

use rmaplab_impls::mmu::{Mmu, MmuStats};
use rmaplab_impls::rmap::{Counters, Rmap};
use rmaplab_impls::state::State;
use rmaplab_ops::{Op, Outcome, Pid};

use crate::check::{self, Broken, invariant};
use crate::design::DesignSpec;
use crate::model::{Layout, Model};
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
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// The design's layout before an op, as the reference model asks for it
/// (only `mremap` outcomes depend on VMA boundaries).
struct MmuLayout<'a, R: Rmap>(&'a Mmu<R>);

impl<R: Rmap> Layout for MmuLayout<'_, R> {
    fn vma_bounds(&self, pid: Pid, page: u64) -> Option<(u64, u64)> {
        self.0.vma_bounds(pid, page)
    }
}

/// Runs `stream` on the reference model alone (no design, no checks but
/// the model's own): what `rmaplab run --design reference` prints.
pub fn run_reference(stream: &Stream) -> RunReport {
    let mut model = Model::new();
    let mut outcomes = Vec::new();
    let mut dumps = Vec::new();
    for (i, op) in stream.ops.iter().enumerate() {
        let outcome = model.step(op, None);
        outcomes.push(OpRecord {
            index: i,
            line: stream.lines[i],
            op: *op,
            outcome,
        });
        if matches!(op, Op::Dump) {
            dumps.push(DumpRecord {
                line: stream.lines[i],
                state: model.state(),
            });
        }
    }
    if !matches!(stream.ops.last(), Some(Op::Dump)) {
        dumps.push(DumpRecord {
            line: stream.lines.last().copied().unwrap_or(0),
            state: model.state(),
        });
    }
    RunReport {
        design: "reference".into(),
        config: Vec::new(),
        outcomes,
        dumps,
        failure: None,
        injected_at: None,
        stats: RunStats::default(),
        executed: stream.ops.len(),
        alloc_sites: Vec::new(),
        failed_site: None,
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

/// [`run_design`], with the reference model recorded into or replayed
/// from `shared` as its mode says (see [`run_all`]).
pub(crate) fn run_design_shared<R: Rmap>(
    stream: &Stream,
    rmap: R,
    spec: &DesignSpec,
    opts: &RunOptions,
    shared: &mut SharedModel,
) -> RunReport {
    // The design's effective configuration (ops-v1's example: a default
    // chain-2010 run reports `"config": {"era": "2022"}`).
    let config = rmap
        .config()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let mut mmu = Mmu::new(rmap);
    // The reference model is shared between the designs of one `run_all`:
    // the first design records each op's outcome and the layout queries
    // (mremap only) with their answers; the others reuse an outcome when
    // their own layout gives the same answers, and otherwise rebuild the
    // model by replaying the recorded ops and go on live.
    let mode = shared.mode;
    let mut model: Option<Model> = (mode != ShareMode::Replay).then(Model::new);
    let mut report = RunReport {
        design: spec.design.name().to_string(),
        config,
        outcomes: Vec::new(),
        dumps: Vec::new(),
        failure: None,
        injected_at: None,
        stats: RunStats::default(),
        executed: 0,
        alloc_sites: Vec::new(),
        failed_site: None,
    };
    let fail = |report: &mut RunReport, i: Option<usize>, line: usize, mut b: Broken| {
        if let Some(cmd) = &opts.replay {
            b.detail = format!("{}\nreplay: {cmd}", b.detail);
        }
        report.failure = Some(Failure {
            op_index: i,
            line,
            broken: b,
        });
    };

    for (i, op) in stream.ops.iter().enumerate() {
        let line = stream.lines[i];
        let expected = match (&mut model, mode) {
            (Some(m), ShareMode::Record) => {
                let rl = RecordingLayout {
                    mmu: &mmu,
                    log: Default::default(),
                };
                let o = m.step(op, Some(&rl));
                shared.record.push((o, rl.log.into_inner()));
                o
            }
            (Some(m), _) => m.step(op, Some(&MmuLayout(&mmu))),
            (None, _) => {
                let (o, queries) = &shared.record[i];
                if queries
                    .iter()
                    .all(|&(pid, page, ans)| mmu.vma_bounds(pid, page) == ans)
                {
                    *o
                } else {
                    // Diverged: rebuild the model up to op i from the record.
                    let mut m = Model::new();
                    for (op, (_, queries)) in stream.ops[..i].iter().zip(&shared.record) {
                        m.step(op, Some(&ReplayLayout(queries)));
                    }
                    let o = m.step(op, Some(&MmuLayout(&mmu)));
                    model = Some(m);
                    o
                }
            }
        };
        let pending = mmu.rmap_mut().alloc_schedule().pending();
        // failed-op-trace: what a failing fork or fault must leave unchanged.
        let before = (pending
            && opts.check
            && leaves_no_trace(op)
            && (opts.recheck_pure_ops || mmu.may_allocate(op)))
        .then(|| (mmu.rmap().counters(), mmu.state()));
        let epoch0 = mmu.rmap().epoch();
        let got = match mmu.apply(op) {
            Ok(o) => o,
            Err(v) => {
                report.executed = i + 1;
                fail(&mut report, Some(i), line, check::from_violation(&v));
                return finish(report, &mut mmu);
            }
        };
        report.executed = i + 1;
        let fired = pending && !mmu.rmap_mut().alloc_schedule().pending();
        if fired && report.injected_at.is_none() {
            report.injected_at = Some(i);
        }
        debug_assert!(
            !(fired && opts.check && leaves_no_trace(op) && before.is_none()),
            "may_allocate said no but the op reached an allocation"
        );
        if fired
            && got == Outcome::Err(rmaplab_ops::Errno::ENOMEM)
            && let Some((c0, s0)) = &before
            && let Err(b) = check_no_trace(&mmu, c0, s0)
        {
            fail(&mut report, Some(i), line, b);
            return finish(report, &mut mmu);
        }
        if opts.record {
            report.outcomes.push(OpRecord {
                index: i,
                line,
                op: *op,
                outcome: got,
            });
        }
        if report.injected_at.is_none() && got != expected {
            let b = Broken::new(
                invariant::SEMANTICS,
                format!(
                    "`{}` gave `{got}` but the reference model (plain memory, Linux 6.18 \
                     semantics) gives `{expected}`",
                    print_op(op)
                ),
            );
            let b = match op.pid() {
                Some(p) => Broken { pid: Some(p), ..b },
                None => b,
            };
            fail(&mut report, Some(i), line, b);
            return finish(report, &mut mmu);
        }
        track_peaks(&mut report.stats, &mmu);
        if opts.check
            && let Err(b) = if mmu.last_op_pure() && !opts.recheck_pure_ops {
                // Nothing the structural checks read has changed since
                // they last passed: only the bound (peaks move) is new.
                check::check_bound(&mmu, report.stats.peak_vmas)
            } else {
                check_after_op_incremental(&mmu, opts, epoch0, report.stats.peak_vmas)
            }
        {
            fail(&mut report, Some(i), line, b);
            return finish(report, &mut mmu);
        }
        if opts.record && matches!(op, Op::Dump) {
            report.dumps.push(DumpRecord {
                line,
                state: mmu.state(),
            });
        }
    }
    // The last dump is the state after the last op (ops-v1), so a stream
    // ending with `dump` gets no extra one.
    if opts.record && !matches!(stream.ops.last(), Some(Op::Dump)) {
        report.dumps.push(DumpRecord {
            line: stream.lines.last().copied().unwrap_or(0),
            state: mmu.state(),
        });
    }
    report.stats.final_counters = mmu.rmap().counters();
    if opts.record {
        report.stats.trees = tree_stats(&mmu);
    }

    // Teardown: every process still alive exits, checked like any op, then
    // nothing may be left.
    for pid in mmu.live_pids() {
        let epoch0 = mmu.rmap().epoch();
        match mmu.apply(&Op::Exit { pid }) {
            Ok(_) => {}
            Err(v) => {
                let mut b = check::from_violation(&v);
                b.detail = format!("during teardown (exit {pid}): {}", b.detail);
                fail(&mut report, None, 0, b);
                return finish(report, &mut mmu);
            }
        }
        if opts.check
            && let Err(mut b) =
                check_after_op_incremental(&mmu, opts, epoch0, report.stats.peak_vmas)
        {
            b.detail = format!("during teardown (exit {pid}): {}", b.detail);
            fail(&mut report, None, 0, b);
            return finish(report, &mut mmu);
        }
    }
    if opts.check
        && let Err(b) = check::check_leak(&mmu)
    {
        fail(&mut report, None, 0, b);
    }
    finish(report, &mut mmu)
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

fn finish<R: Rmap>(mut report: RunReport, mmu: &mut Mmu<R>) -> RunReport {
    report.stats.mmu = mmu.stats();
    report.alloc_sites = mmu.rmap_mut().alloc_schedule().sites().to_vec();
    report.failed_site = mmu.rmap_mut().alloc_schedule().failed_at();
    report
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
/// model ([`SharedModel`]) unless `opts.recheck_pure_ops` asks for one each.
pub fn run_all(
    stream: &Stream,
    specs: &[DesignSpec],
    opts: &RunOptions,
) -> (Vec<RunReport>, Comparison) {
    let share = !opts.recheck_pure_ops;
    let mut shared = SharedModel::default();
    let mut recorded = false;
    let mut runs: Vec<RunReport> = Vec::with_capacity(specs.len());
    for (k, s) in specs.iter().enumerate() {
        shared.mode = match (share, k, recorded) {
            (false, _, _) => ShareMode::Off,
            (true, 0, _) => ShareMode::Record,
            (true, _, true) => ShareMode::Replay,
            (true, _, false) => ShareMode::Off,
        };
        let r = s.run_shared(stream, opts, &mut shared);
        // The record covers the whole stream only if design 0 ran it all
        // (the reference model records nothing).
        if k == 0 {
            recorded = share
                && r.executed == stream.ops.len()
                && r.failure.is_none()
                && shared.record.len() == stream.ops.len();
        }
        runs.push(r);
    }
    let cmp = compare_runs(&runs);
    (runs, cmp)
}

/// What a design run does with the [`SharedModel`].
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub(crate) enum ShareMode {
    /// A model of its own; the record is untouched.
    #[default]
    Off,
    /// A model of its own, each op's outcome and queries appended.
    Record,
    /// The record's outcomes where this design's layout answers alike.
    Replay,
}

/// A layout query of the model: process, page, the VMA bounds answered.
type Query = (Pid, u64, Option<(u64, u64)>);

/// The reference model's record shared by the designs of one [`run_all`]:
/// per op, the model's outcome and the layout queries it asked with their
/// answers.
#[derive(Default)]
pub(crate) struct SharedModel {
    mode: ShareMode,
    record: Vec<(Outcome, Vec<Query>)>,
}

/// The design's layout, each answer logged for the record.
struct RecordingLayout<'a, R: Rmap> {
    mmu: &'a Mmu<R>,
    log: std::cell::RefCell<Vec<Query>>,
}

impl<R: Rmap> Layout for RecordingLayout<'_, R> {
    fn vma_bounds(&self, pid: Pid, page: u64) -> Option<(u64, u64)> {
        let a = self.mmu.vma_bounds(pid, page);
        self.log.borrow_mut().push((pid, page, a));
        a
    }
}

/// Answers layout queries from a record (same queries, same order).
struct ReplayLayout<'a>(&'a [Query]);

impl Layout for ReplayLayout<'_> {
    fn vma_bounds(&self, pid: Pid, page: u64) -> Option<(u64, u64)> {
        self.0
            .iter()
            .find(|q| q.0 == pid && q.1 == page)
            .and_then(|q| q.2)
    }
}
