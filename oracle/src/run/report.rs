//! Reports: the text a person reads and the JSON other tools read
//! (`docs/op-language.md`, "Machine-readable report"). Frame identities
//! become classes here: `Z` for the zero page, otherwise `f0`, `f1`, ... in
//! order of first appearance, processes by number, pages ascending.

use std::collections::HashMap;
use std::fmt::Write as _;

use rmaplab_impls::state::{FrameRef, State};
use rmaplab_ops::Outcome;
use serde_json::{Map, Value, json};

use super::runner::{Comparison, Failure, RunReport};
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

fn outcome_json(line: usize, op: &str, o: &Outcome) -> Value {
    let mut m = Map::new();
    m.insert("line".into(), json!(line));
    m.insert("op".into(), json!(op));
    match o {
        Outcome::Ok => {
            m.insert("outcome".into(), json!("ok"));
        }
        Outcome::Value(v) => {
            m.insert("outcome".into(), json!("ok"));
            m.insert("value".into(), json!(v));
        }
        Outcome::Segv => {
            m.insert("outcome".into(), json!("segv"));
        }
        Outcome::Sigbus => {
            m.insert("outcome".into(), json!("sigbus"));
        }
        Outcome::Err(e) => {
            m.insert("outcome".into(), json!("err"));
            m.insert("errno".into(), json!(e.as_str()));
        }
        Outcome::Unsupported => {
            m.insert("outcome".into(), json!("unsupported"));
        }
    }
    Value::Object(m)
}

/// The `processes` object of one dump.
pub fn state_json(state: &State) -> Value {
    let mut procs = Map::new();
    for p in canonicalize(state) {
        let vmas: Vec<Value> = p
            .vmas
            .iter()
            .map(|(s, e, perms, kind, off)| json!([s, e, perms, kind, off]))
            .collect();
        let mut pages = Map::new();
        for (page, class, count) in &p.pages {
            pages.insert(page.to_string(), json!([class, count]));
        }
        procs.insert(p.pid, json!({"vmas": vmas, "pages": pages}));
    }
    Value::Object(procs)
}

fn verdict_json(f: Option<&Failure>) -> Value {
    match f {
        None => json!("pass"),
        Some(f) => json!({"fail": {
            "line": f.line,
            "invariant": f.broken.invariant,
            "detail": f.broken.to_string(),
        }}),
    }
}

/// The JSON object of one run.
pub fn run_json(run: &RunReport, stats: bool) -> Value {
    let mut config = Map::new();
    for (k, v) in &run.config {
        config.insert(k.clone(), json!(v));
    }
    let outcomes: Vec<Value> = run
        .outcomes
        .iter()
        .map(|r| outcome_json(r.line, &print_op(&r.op), &r.outcome))
        .collect();
    let dumps: Vec<Value> = run
        .dumps
        .iter()
        .map(|d| json!({"line": d.line, "processes": state_json(&d.state)}))
        .collect();
    let mut m = Map::new();
    m.insert("design".into(), json!(run.design));
    m.insert("config".into(), Value::Object(config));
    m.insert("outcomes".into(), json!(outcomes));
    m.insert("dumps".into(), json!(dumps));
    m.insert("verdict".into(), verdict_json(run.failure.as_ref()));
    if stats {
        m.insert("stats".into(), stats_json(run));
    }
    Value::Object(m)
}

fn stats_json(run: &RunReport) -> Value {
    let s = &run.stats;
    json!({
        "anon_vmas": s.final_counters.anon_vmas,
        "avcs": s.final_counters.avcs,
        "bytes": s.final_counters.bytes,
        "allocations": s.final_counters.allocations,
        "peak_anon_vmas": s.peak_anon_vmas,
        "peak_avcs": s.peak_avcs,
        "peak_bytes": s.peak_bytes,
        "walks": s.mmu.walks,
        "vmas_visited": s.mmu.vmas_visited,
        "fork_trees": s.trees.iter().map(|t| json!({
            "root": t.root,
            "anon_vmas": t.anon_vmas,
            "avcs": t.avcs,
            "bytes": t.bytes,
            "vmas": t.vmas,
            "pages": t.pages,
            "vmas_visited_per_walk": if t.pages == 0 { 0.0 } else { t.visited_total as f64 / t.pages as f64 },
            "vmas_visited_max": t.visited_max,
        })).collect::<Vec<_>>(),
    })
}

/// The whole report: `{"version": 1, "runs": [...], "verdict": ...}`.
pub fn report_json(runs: &[RunReport], cmp: &Comparison, stats: bool) -> Value {
    let failed = runs.iter().find_map(|r| r.failure.as_ref());
    let verdict = verdict_json(failed.or(cmp.failure.as_ref()));
    let mut m = Map::new();
    m.insert("version".into(), json!(1));
    m.insert(
        "runs".into(),
        json!(runs.iter().map(|r| run_json(r, stats)).collect::<Vec<_>>()),
    );
    if !cmp.notes.is_empty() {
        m.insert("notes".into(), json!(cmp.notes));
    }
    m.insert("verdict".into(), verdict);
    Value::Object(m)
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
    for r in &run.outcomes {
        let _ = writeln!(s, "{:>5}  {:<40} {}", r.line, print_op(&r.op), r.outcome);
        if matches!(r.op, rmaplab_ops::Op::Dump)
            && let Some(d) = dumps.next_if(|d| d.line == r.line)
        {
            s.push_str(&state_text(&d.state));
        }
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
    match &run.failure {
        None => {
            let _ = writeln!(s, "verdict: pass");
        }
        Some(f) => {
            let _ = writeln!(s, "verdict: FAIL {f}");
        }
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
    } else if runs.iter().all(|r| r.passed()) {
        let _ = writeln!(s, "verdict: pass");
    } else {
        let _ = writeln!(s, "verdict: FAIL");
    }
    s
}
