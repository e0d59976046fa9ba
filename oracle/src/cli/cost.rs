//! `rmaplab cost`: the cost comparison's command line (tables, CSV, JSON,
//! `.ops` files of the workloads).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use rmaplab::cost::{self, Class, Params, Row, WORKLOADS, Workload, parse_param, parse_sweep};
use rmaplab_impls::designs::registry::DesignSpec;

use super::usage_error;

/// Output formats of `rmaplab cost`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CostFormat {
    Table,
    Csv,
    Json,
}

/// The designs and eras `cost` compares by default: every design in every
/// era, and Linus Torvalds' eager variant.
pub const DEFAULT_SPECS: &[&str] = &[
    "single-list-2004",
    "chain-2010 era=2010",
    "chain-2010 era=2015",
    "chain-2010 era=2022",
    "prealloc-2026",
    "eager-2010",
];

/// The list of workloads and their parameters.
pub fn list() -> String {
    let mut s = String::new();
    for w in WORKLOADS {
        let _ = writeln!(s, "{}\n  {}", w.name, w.about);
        for (k, d, what) in w.params {
            let _ = writeln!(s, "  {k:<6} {what} (default {d})");
        }
    }
    s
}

/// Everything `rmaplab cost` was asked for.
pub struct CostArgs<'a> {
    /// The claims instead of one workload.
    pub claims: bool,
    pub plot: Option<&'a Path>,
    pub workload: &'a str,
    pub sweep: Option<&'a str>,
    pub params: &'a [String],
    pub specs: &'a [String],
    pub format: CostFormat,
    pub emit: Option<&'a Path>,
}

pub fn cost(a: &CostArgs<'_>) -> ExitCode {
    match cost_inner(a) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(&e),
    }
}

fn cost_inner(a: &CostArgs<'_>) -> Result<String, String> {
    if a.claims {
        return claims(a);
    }
    let w = cost::workload(a.workload).ok_or_else(|| {
        let names: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
        format!(
            "unknown workload `{}` (workloads: {})",
            a.workload,
            names.join(", ")
        )
    })?;
    let given: Vec<(String, u64)> = a
        .params
        .iter()
        .map(|p| parse_param(p))
        .collect::<Result<_, _>>()?;
    let points = points(w, a.sweep, &given)?;
    let spec_texts: Vec<&str> = if a.specs.is_empty() {
        DEFAULT_SPECS.to_vec()
    } else {
        a.specs.iter().map(String::as_str).collect()
    };
    let specs: Vec<DesignSpec> = spec_texts
        .iter()
        .map(|t| t.parse::<DesignSpec>())
        .collect::<Result<_, _>>()?;
    if let Some(dir) = a.emit {
        emit(w, &points, dir)?;
    }
    let rows = cost::run(w, &points, &specs)?;
    Ok(match a.format {
        CostFormat::Table => table(w, &rows),
        CostFormat::Csv => csv(w, &rows),
        CostFormat::Json => serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())? + "\n",
    })
}

/// The points of the sweep (or the one point of the parameters).
fn points(
    w: &Workload,
    sweep: Option<&str>,
    given: &[(String, u64)],
) -> Result<Vec<Params>, String> {
    let base = w.params(given)?;
    let Some(sweep) = sweep else {
        return Ok(vec![base]);
    };
    let (key, values) = parse_sweep(sweep)?;
    values
        .into_iter()
        .map(|v| {
            let mut g = given.to_vec();
            g.push((key.clone(), v));
            w.params(&g)
        })
        .collect()
}

/// One file name per point: `WORKLOAD-k1-v1-k2-v2.ops`.
fn point_name(w: &Workload, p: &Params) -> String {
    let mut s = w.name.to_string();
    for (k, v) in p {
        let _ = write!(s, "-{k}{v}");
    }
    s
}

fn emit(w: &Workload, points: &[Params], dir: &Path) -> Result<(), String> {
    if w.name == "random" {
        return Err(
            "`--emit` writes the named workloads; `random` is the decoder's streams".into(),
        );
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for p in points {
        let plan = w.plan(p)?;
        let mut text = format!("# rmaplab cost workload {}", w.name);
        for (k, v) in p {
            let _ = write!(text, " {k}={v}");
        }
        text.push_str("\n# expect: pass\n");
        text.push_str(&rmaplab_ops::print::print(&plan.stream()));
        let path = dir.join(format!("{}.ops", point_name(w, p)));
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The walk classes present in `rows`, in [`Class::ALL`] order.
fn classes(rows: &[Row]) -> Vec<Class> {
    Class::ALL
        .into_iter()
        .filter(|c| {
            rows.iter()
                .any(|r| r.measure.walks.contains_key(c.as_str()))
        })
        .collect()
}

fn csv(w: &Workload, rows: &[Row]) -> String {
    let classes = classes(rows);
    let mut s = String::from("workload,design");
    for (k, _, _) in w.params {
        let _ = write!(s, ",{k}");
    }
    s.push_str(
        ",ops,vmas,anon_vmas,avcs,bytes,allocations,freed_unused,walks,visited_mean,visited_max",
    );
    for c in &classes {
        let _ = write!(s, ",{0}_walks,{0}_mean,{0}_max", c.as_str());
    }
    s.push_str(",ns_per_op\n");
    for r in rows {
        let m = &r.measure;
        let all = m.all_walks();
        let _ = write!(s, "{},{}", r.workload, r.design);
        for (k, _, _) in w.params {
            let _ = write!(s, ",{}", r.params[k]);
        }
        let _ = write!(
            s,
            ",{},{},{},{},{},{},{},{},{:.3},{}",
            m.ops,
            m.vmas,
            m.anon_vmas,
            m.avcs,
            m.bytes,
            m.allocations,
            m.freed_unused,
            all.walks,
            all.mean(),
            all.max
        );
        for c in &classes {
            let x = m.walks.get(c.as_str()).copied().unwrap_or_default();
            let _ = write!(s, ",{},{:.3},{}", x.walks, x.mean(), x.max);
        }
        let _ = writeln!(s, ",{:.0}", m.ns_per_op());
    }
    s
}

fn table(w: &Workload, rows: &[Row]) -> String {
    let classes = classes(rows);
    let mut s = format!("workload {}: {}\n\n", w.name, w.about);
    let mut head = format!("{:<22} {:<14}", "design", "point");
    head.push_str(&format!(
        " {:>6} {:>8} {:>7} {:>9} {:>7} {:>6} {:>14}",
        "vmas", "anon_vmas", "avcs", "bytes", "allocs", "unused", "visited avg/max"
    ));
    for c in &classes {
        head.push_str(&format!(" {:>14}", format!("{} avg/max", c.as_str())));
    }
    head.push_str(&format!(" {:>8}\n", "ns/op"));
    s.push_str(&head);
    for r in rows {
        let m = &r.measure;
        let all = m.all_walks();
        let point: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(
            s,
            "{:<22} {:<14} {:>6} {:>8} {:>7} {:>9} {:>7} {:>6} {:>14}",
            r.design,
            point.join(","),
            m.vmas,
            m.anon_vmas,
            m.avcs,
            m.bytes,
            m.allocations,
            m.freed_unused,
            format!("{:.2}/{}", all.mean(), all.max)
        );
        for c in &classes {
            let x = m.walks.get(c.as_str()).copied().unwrap_or_default();
            let _ = write!(s, " {:>14}", format!("{:.2}/{}", x.mean(), x.max));
        }
        let _ = writeln!(s, " {:>8.0}", m.ns_per_op());
    }
    s
}

/// `--claims`: every claim's sweep; the claims table (markdown), or every
/// row as CSV/JSON; `--plot DIR` writes one chart per claim.
fn claims(a: &CostArgs<'_>) -> Result<String, String> {
    use rmaplab::cost::claims::CLAIMS;
    if let Some(dir) = a.plot {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut out = String::new();
    let mut all_rows = Vec::new();
    if a.format == CostFormat::Table {
        out.push_str("| # | claim | source | workload | measured | holds? | command |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
    }
    for c in CLAIMS {
        let rows = c.measure()?;
        if let Some(dir) = a.plot {
            let p = rmaplab::cost::plot::chart(c, &rows, dir)?;
            eprintln!("wrote {}", p.display());
        }
        let (measured, holds) = (c.verdict)(&rows);
        if a.format == CostFormat::Table {
            let _ = writeln!(
                out,
                "| {} | {}: {} | `{}` | {} | {} | {} | `{}` |",
                c.id,
                c.who,
                c.claim,
                c.source,
                c.workload,
                measured,
                holds.as_str(),
                c.command()
            );
        }
        all_rows.extend(rows);
    }
    match a.format {
        CostFormat::Table => Ok(out),
        CostFormat::Json => {
            Ok(serde_json::to_string_pretty(&all_rows).map_err(|e| e.to_string())? + "\n")
        }
        CostFormat::Csv => {
            // One CSV per workload: a header line before each.
            let mut s = String::new();
            for w in WORKLOADS {
                let rows: Vec<Row> = all_rows
                    .iter()
                    .filter(|r| r.workload == w.name)
                    .cloned()
                    .collect();
                if !rows.is_empty() {
                    s.push_str(&csv(w, &rows));
                }
            }
            Ok(s)
        }
    }
}
