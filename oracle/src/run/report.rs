//! Reports: the text a person reads and the JSON other tools read
//! (`docs/op-language.md`, "Machine-readable report"; the types of
//! [`super::json`]). Frame identities
//! become classes here: `Z` for the zero page, otherwise `f0`, `f1`, ... in
//! order of first appearance, processes by number, pages ascending.

use std::collections::HashMap;
use std::fmt::Write as _;

use rmaplab_impls::state::{FrameRef, State};
use rmaplab_ops::Outcome;

use super::json::{self, Object, OutcomeName};
use super::runner::{Comparison, Failure, OpRecord, RunReport};
use rmaplab_ops::print::print_op;

/// A dump with frame classes instead of frame identities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonProc {
    pub pid: String,
    /// `[start, end, perms, kind, offset]`
    pub vmas: Vec<(u64, u64, String, String, u64)>,
    /// page -> (class, mapcount)
    pub pages: Vec<(u64, String, u32)>,
}

/// Assigns frame classes over a whole state.
pub fn canonicalize(state: &State) -> Vec<CanonProc> {
    let mut classes: HashMap<FrameRef, String> = HashMap::new();
    let mut out = Vec::new();
    for (pid, p) in &state.procs {
        let vmas = p
            .vmas
            .iter()
            .map(|v| (v.start, v.end, v.perms.clone(), v.kind.name(), v.offset))
            .collect();
        let mut pages = Vec::new();
        for (&page, &(frame, count)) in &p.pages {
            let class = match frame {
                FrameRef::Zero => "Z".to_string(),
                f => {
                    let n = classes.len();
                    classes.entry(f).or_insert_with(|| format!("f{n}")).clone()
                }
            };
            pages.push((page, class, count));
        }
        out.push(CanonProc {
            pid: pid.to_string(),
            vmas,
            pages,
        });
    }
    out
}

fn outcome_json(r: &OpRecord) -> json::OpOutcome {
    let (outcome, value, errno) = match &r.outcome {
        _ if r.busy => (OutcomeName::Busy, None, None),
        Outcome::Ok => (OutcomeName::Ok, None, None),
        Outcome::Value(v) => (OutcomeName::Ok, Some(*v), None),
        Outcome::Segv => (OutcomeName::Segv, None, None),
        Outcome::Sigbus => (OutcomeName::Sigbus, None, None),
        Outcome::Err(e) => (OutcomeName::Err, None, Some(e.as_str().to_string())),
        Outcome::Unsupported => (OutcomeName::Unsupported, None, None),
    };
    json::OpOutcome {
        line: r.line,
        actor: r.actor,
        op: print_op(&r.op),
        outcome,
        value,
        errno,
    }
}

/// The `processes` object of one dump.
pub fn state_json(state: &State) -> Object<String, json::Process> {
    Object(
        canonicalize(state)
            .into_iter()
            .map(|p| {
                let pages = p
                    .pages
                    .into_iter()
                    .map(|(page, class, count)| (page, (class, count)))
                    .collect();
                let process = json::Process {
                    vmas: p.vmas,
                    pages: Object(pages),
                };
                (p.pid, process)
            })
            .collect(),
    )
}

fn verdict_json(f: Option<&Failure>) -> json::Verdict {
    match f {
        None => json::Verdict::Pass,
        Some(f) => json::Verdict::Fail(json::Fail {
            line: f.line,
            invariant: f.broken.invariant.clone(),
            detail: f.broken.to_string(),
        }),
    }
}

/// One run as the JSON report has it (version 1).
pub fn run_json(run: &RunReport, stats: bool) -> json::Run {
    run_json_version(run, stats, 1)
}

/// One run as the JSON report of a stream of `version` has it: version 2
/// adds the schedules, the failing schedule and the blocks' path.
pub fn run_json_version(run: &RunReport, stats: bool, version: u8) -> json::Run {
    let v2 = version >= 2;
    json::Run {
        schedules: v2.then_some(run.schedules),
        schedule: run.failing_block().map(|b| b.schedule.clone()),
        capped: run.capped,
        blocks: run
            .blocks
            .iter()
            .map(|b| json::BlockPath {
                line: b.line,
                schedule: b.schedule.clone(),
                schedules: b.schedules,
            })
            .collect(),
        design: run.design.clone(),
        config: Object(run.config.clone()),
        outcomes: run.outcomes.iter().map(outcome_json).collect(),
        dumps: run
            .dumps
            .iter()
            .map(|d| json::Dump {
                line: d.line,
                processes: state_json(&d.state),
            })
            .collect(),
        verdict: verdict_json(run.failure.as_ref()),
        stats: stats.then(|| stats_json(run)),
    }
}

fn stats_json(run: &RunReport) -> json::Stats {
    let s = &run.stats;
    json::Stats {
        anon_vmas: s.final_counters.anon_vmas,
        avcs: s.final_counters.avcs,
        bytes: s.final_counters.bytes,
        allocations: s.final_counters.allocations,
        peak_anon_vmas: s.peak_anon_vmas,
        peak_avcs: s.peak_avcs,
        peak_bytes: s.peak_bytes,
        walks: s.mmu.walks,
        vmas_visited: s.mmu.vmas_visited,
        fork_trees: s
            .trees
            .iter()
            .map(|t| json::ForkTree {
                root: t.root.clone(),
                anon_vmas: t.anon_vmas,
                avcs: t.avcs,
                bytes: t.bytes,
                vmas: t.vmas,
                pages: t.pages,
                vmas_visited_per_walk: if t.pages == 0 {
                    0.0
                } else {
                    t.visited_total as f64 / t.pages as f64
                },
                vmas_visited_max: t.visited_max,
            })
            .collect(),
    }
}

/// The whole report (`rmaplab run --format json`): `{"version": 1,
/// "runs": [...], "verdict": ...}`, as [`json::Report`] (print it with
/// `serde_json`). The verdict is the first failing run's, else the
/// comparison's.
pub fn report_json(runs: &[RunReport], cmp: &Comparison, stats: bool) -> json::Report {
    report_json_version(runs, cmp, stats, 1)
}

/// [`report_json`] of a stream of `version` (`"version": 2` and the v2
/// fields for a version 2 stream).
pub fn report_json_version(
    runs: &[RunReport],
    cmp: &Comparison,
    stats: bool,
    version: u8,
) -> json::Report {
    let failed = runs.iter().find_map(|r| r.failure.as_ref());
    json::Report {
        version: u32::from(version.max(1)),
        runs: runs
            .iter()
            .map(|r| run_json_version(r, stats, version))
            .collect(),
        notes: cmp.notes.clone(),
        verdict: verdict_json(failed.or(cmp.failure.as_ref())),
    }
}

/// The text of one dump, indented.
pub fn state_text(state: &State) -> String {
    let mut s = String::new();
    for p in canonicalize(state) {
        let _ = writeln!(s, "  {}", p.pid);
        for (st, en, perms, kind, off) in &p.vmas {
            let _ = writeln!(s, "    {st:>3}-{en:<3} {perms} {kind} {off}");
        }
        if !p.pages.is_empty() {
            let cells: Vec<String> = p
                .pages
                .iter()
                .map(|(pg, c, n)| format!("{pg}:{c}/{n}"))
                .collect();
            let _ = writeln!(s, "    pages {}", cells.join(" "));
        }
    }
    if state.procs.is_empty() {
        s.push_str("  (no live process)\n");
    }
    s
}

/// The human-readable report of one run.
pub fn run_text(run: &RunReport, stats: bool) -> String {
    let mut s = String::new();
    let cfg: Vec<String> = run.config.iter().map(|(k, v)| format!("{k} {v}")).collect();
    if cfg.is_empty() {
        let _ = writeln!(s, "== {}", run.design);
    } else {
        let _ = writeln!(s, "== {} ({})", run.design, cfg.join(", "));
    }
    let mut dumps = run.dumps.iter().peekable();
    let mut blocks = run.blocks.iter().peekable();
    for (n, r) in run.outcomes.iter().enumerate() {
        match r.actor {
            None => {
                let _ = writeln!(s, "{:>5}  {:<40} {}", r.line, print_op(&r.op), r.outcome);
            }
            Some(a) => {
                let _ = writeln!(
                    s,
                    "{:>5}  {a}| {:<37} {}",
                    r.line,
                    print_op(&r.op),
                    r.outcome_text()
                );
            }
        }
        // After a block's last recorded actor: how it was explored.
        let next_in_block = run.outcomes.get(n + 1).is_some_and(|x| x.actor.is_some())
            && blocks
                .peek()
                .is_some_and(|b| run.outcomes[n + 1].index < b.first + b.actors);
        if r.actor.is_some()
            && !next_in_block
            && let Some(b) = blocks.next()
        {
            s.push_str(&block_text(b));
        }
        if matches!(r.op, rmaplab_ops::Op::Dump)
            && let Some(d) = dumps.next_if(|d| d.line == r.line)
        {
            s.push_str(&state_text(&d.state));
        }
    }
    for b in blocks {
        s.push_str(&block_text(b));
    }
    if let Some(last) = dumps.last() {
        let _ = writeln!(s, "final state:");
        s.push_str(&state_text(&last.state));
    }
    if let Some(i) = run.injected_at {
        let _ = writeln!(
            s,
            "note: an injected allocation failure fired at op {i}; outcomes after it are not \
             compared"
        );
    }
    if stats {
        let st = &run.stats;
        let _ = writeln!(
            s,
            "stats: {} anon_vma(s), {} anon_vma_chain(s), {} bytes at the end; peaks {} / {} / {} \
             bytes; {} allocation(s); {} walk(s) visiting {} VMA(s)",
            st.final_counters.anon_vmas,
            st.final_counters.avcs,
            st.final_counters.bytes,
            st.peak_anon_vmas,
            st.peak_avcs,
            st.peak_bytes,
            st.final_counters.allocations,
            st.mmu.walks,
            st.mmu.vmas_visited
        );
        for t in &st.trees {
            let per = if t.pages == 0 {
                0.0
            } else {
                t.visited_total as f64 / t.pages as f64
            };
            let _ = writeln!(
                s,
                "  fork tree {}: {} anon_vma(s), {} chain(s), {} bytes, {} VMA(s) linked; {} mapped \
                 page(s), walk visits {per:.2} VMA(s) on average, {} at most",
                t.root, t.anon_vmas, t.avcs, t.bytes, t.vmas, t.pages, t.visited_max
            );
        }
    }
    if run.capped {
        let _ = writeln!(
            s,
            "capped: the schedule cap stopped the exploration after {} schedule(s); the blocks \
             were not explored in full (raise it with --max-schedules)",
            run.schedules
        );
    }
    match &run.failure {
        None if run.capped => {
            let _ = writeln!(s, "verdict: pass (capped: not explored in full)");
        }
        None => {
            let _ = writeln!(s, "verdict: pass");
        }
        Some(f) => {
            if let Some(b) = run.failing_block() {
                let _ = writeln!(
                    s,
                    "failing schedule (block at line {}): {}",
                    b.line, b.schedule
                );
                let _ = writeln!(s, "  trace: {}", b.trace);
            }
            let earlier = run.blocks.len() - usize::from(run.failing_block().is_some());
            if earlier > 0 {
                let _ = writeln!(s, "schedules of the blocks before it on this path:");
                for b in &run.blocks[..earlier] {
                    let _ = writeln!(s, "  line {}: {}", b.line, b.schedule);
                }
            }
            let _ = writeln!(s, "verdict: FAIL {f}");
        }
    }
    s
}

/// A block's line in the text report: its schedules and the one shown.
fn block_text(b: &super::runner::BlockRun) -> String {
    let unfinished: Vec<String> = b
        .outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.is_none())
        .map(|(a, _)| rmaplab_ops::Block::letter(a).to_string())
        .collect();
    let mut s = format!(
        "       block at line {}: {} schedule(s); shown: {}\n",
        b.line, b.schedules, b.schedule
    );
    if !unfinished.is_empty() {
        let _ = writeln!(s, "       unfinished: {}", unfinished.join(" "));
    }
    s
}

/// The human-readable report of a set of runs.
pub fn report_text(runs: &[RunReport], cmp: &Comparison, stats: bool) -> String {
    let mut s = String::new();
    for r in runs {
        s.push_str(&run_text(r, stats));
        s.push('\n');
    }
    for n in &cmp.notes {
        let _ = writeln!(s, "note: {n}");
    }
    if let Some(f) = &cmp.failure {
        let _ = writeln!(s, "verdict: FAIL {f}");
    } else if runs.iter().all(|r| r.passed()) && runs.iter().any(|r| r.capped) {
        let _ = writeln!(s, "verdict: pass (capped: not explored in full)");
    } else if runs.iter().all(|r| r.passed()) {
        let _ = writeln!(s, "verdict: pass");
    } else {
        let _ = writeln!(s, "verdict: FAIL");
    }
    s
}
