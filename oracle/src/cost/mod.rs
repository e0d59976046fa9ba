//! `rmaplab cost`: what each design spends on the same work.
//!
//! A workload is a named, parametric, deterministic op stream plus the
//! rmap walks it makes on purpose (`referenced` ops, the walk reclaim does
//! per page, each tagged with the class of page it walks). It runs on the
//! bare MMU with one design, with no oracle: every walk counted is the
//! workload's own. Per run it measures the design's live metadata at the
//! end (anon_vmas, AVCs, bytes by the era's struct sizes), the allocations
//! it made and those it freed unused, and the VMAs each walk visited.

pub mod claims;
pub mod plot;

use std::collections::BTreeMap;
use std::time::Instant;

use rmaplab_impls::designs::registry::DesignSpec;
use rmaplab_impls::mmu::Mmu;
use rmaplab_impls::rmap::Rmap;
use rmaplab_ops::decode::{DecodeConfig, decode};
use rmaplab_ops::{Kind, MremapTo, Op, Outcome, Pid, Prot, Stream};
use serde::Serialize;

/// The class of page a walk is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// A page still shared by the parent and its children (never COWed).
    Shared,
    /// The parent's own page after every child copied it.
    Parent,
    /// A child's private copy.
    Child,
    /// A page of a workload without classes.
    Any,
}

impl Class {
    pub const ALL: [Class; 4] = [Class::Shared, Class::Parent, Class::Child, Class::Any];
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Shared => "shared",
            Class::Parent => "parent",
            Class::Child => "child",
            Class::Any => "any",
        }
    }
}

/// A workload at one point: the ops, and which of them are its walks.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub ops: Vec<Op>,
    /// Op index of each walk the workload makes, with its page class.
    pub walks: Vec<(usize, Class)>,
}

impl Plan {
    fn op(&mut self, op: Op) {
        self.ops.push(op);
    }
    fn walk(&mut self, pid: Pid, addr: u64, class: Class) {
        self.walks.push((self.ops.len(), class));
        self.ops.push(Op::Referenced { pid, addr });
    }
    fn mmap(&mut self, pid: Pid, addr: u64, len: u64, prot: Prot, kind: Kind) {
        self.op(Op::Mmap {
            pid,
            addr,
            len,
            prot,
            kind,
            replace: false,
        });
    }
    fn write(&mut self, pid: Pid, addr: u64) {
        self.op(Op::Write {
            pid,
            addr,
            value: (u64::from(pid.0) << 16) | addr,
        });
    }
    /// The plan as an op stream (`--emit`).
    pub fn stream(&self) -> Stream {
        Stream::from_ops(self.ops.clone())
    }
}

/// One named workload: its parameters (name, default, meaning) and its
/// plan builder.
pub struct Workload {
    pub name: &'static str,
    pub about: &'static str,
    pub params: &'static [(&'static str, u64, &'static str)],
    build: fn(&Params) -> Result<Plan, String>,
}

/// Parameter values of one point.
pub type Params = BTreeMap<&'static str, u64>;

/// The workloads, by name.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "fork-server",
        about: "a parent with a K-page heap forks N children; each child writes (COWs) \
                COW% of the pages; then a reclaim walk of every page of the parent and of \
                every child (claim 1: O(N) vs O(1) walks)",
        params: &[
            ("n", 16, "children"),
            ("k", 8, "heap pages"),
            ("cow", 100, "percent of the pages each child writes"),
        ],
        build: fork_server,
    },
    Workload {
        name: "fork-chain",
        about: "a fork/exit chain of depth D: each process writes its K pages, forks, and \
                exits, its child going on (claim 4: growth without reuse)",
        params: &[
            ("d", 16, "depth"),
            ("k", 4, "pages"),
            (
                "write",
                1,
                "1: each generation writes its pages; 0: only the first",
            ),
        ],
        build: fork_chain,
    },
    Workload {
        name: "mprotect-frag",
        about: "S mprotect splits of a faulted region, then F forks, each child writing \
                its pages",
        params: &[
            ("s", 8, "splits (every other page made read-only)"),
            ("f", 4, "forks"),
        ],
        build: mprotect_frag,
    },
    Workload {
        name: "file-mix",
        about: "F read-only private file mappings and A anonymous mappings, two pages \
                each, every anonymous page written and every file page read (claim 3: \
                what preparing at link time costs)",
        params: &[
            ("f", 8, "read-only private file mappings"),
            ("a", 8, "anonymous mappings"),
        ],
        build: file_mix,
    },
    Workload {
        name: "mremap-churn",
        about: "a forked 8-page region moved M times between two places, with a write \
                after each move",
        params: &[("m", 16, "moves"), ("f", 2, "forks before the moves")],
        build: mremap_churn,
    },
    Workload {
        name: "random",
        about: "S random streams of the fuzz decoder (its default configuration), each \
                run on its own machine; counts are summed over the streams",
        params: &[("s", 100, "streams"), ("seed", 1, "first seed")],
        build: |_| Err("`random` is run stream by stream".into()),
    },
];

/// The workload named `name`.
pub fn workload(name: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name)
}

impl Workload {
    /// `params` completed with the defaults; an unknown name is an error.
    pub fn params(&self, given: &[(String, u64)]) -> Result<Params, String> {
        let mut p: Params = self.params.iter().map(|&(k, v, _)| (k, v)).collect();
        for (k, v) in given {
            let Some(&(name, _, _)) = self.params.iter().find(|(n, _, _)| n == k) else {
                let known: Vec<&str> = self.params.iter().map(|p| p.0).collect();
                return Err(format!(
                    "workload {} has no parameter `{k}` (it has {})",
                    self.name,
                    known.join(", ")
                ));
            };
            p.insert(name, *v);
        }
        Ok(p)
    }

    /// The plan at `params` (not for `random`).
    pub fn plan(&self, params: &Params) -> Result<Plan, String> {
        (self.build)(params)
    }
}

const WINDOW: u64 = rmaplab_ops::WINDOW_PAGES;

fn get(p: &Params, k: &str) -> u64 {
    p[k]
}

fn fork_server(p: &Params) -> Result<Plan, String> {
    let (n, k, cow) = (get(p, "n"), get(p, "k"), get(p, "cow"));
    if k == 0 || k > WINDOW || cow > 100 || n > 4096 {
        return Err("fork-server needs 1 <= k <= 256, cow <= 100, n <= 4096".into());
    }
    let cowed = k * cow / 100;
    let mut plan = Plan::default();
    let p0 = Pid(0);
    plan.mmap(p0, 0, k, Prot::Rw, Kind::Anon);
    for a in 0..k {
        plan.write(p0, a);
    }
    for _ in 0..n {
        plan.op(Op::Fork { pid: p0 });
    }
    for c in 1..=n {
        for a in 0..cowed {
            plan.write(Pid(c as u32), a);
        }
    }
    for a in 0..k {
        let class = if a < cowed && n > 0 {
            Class::Parent
        } else {
            Class::Shared
        };
        plan.walk(p0, a, class);
    }
    for c in 1..=n {
        for a in 0..cowed {
            plan.walk(Pid(c as u32), a, Class::Child);
        }
    }
    Ok(plan)
}

fn fork_chain(p: &Params) -> Result<Plan, String> {
    let (d, k, write) = (get(p, "d"), get(p, "k"), get(p, "write"));
    if k == 0 || k > WINDOW || d > 4096 {
        return Err("fork-chain needs 1 <= k <= 256, d <= 4096".into());
    }
    let mut plan = Plan::default();
    plan.mmap(Pid(0), 0, k, Prot::Rw, Kind::Anon);
    for g in 0..=d {
        let pid = Pid(g as u32);
        if g == 0 || write != 0 {
            for a in 0..k {
                plan.write(pid, a);
            }
        }
        if g < d {
            plan.op(Op::Fork { pid });
            plan.op(Op::Exit { pid });
        }
    }
    for a in 0..k {
        plan.walk(Pid(d as u32), a, Class::Any);
    }
    Ok(plan)
}

fn mprotect_frag(p: &Params) -> Result<Plan, String> {
    let (s, f) = (get(p, "s"), get(p, "f"));
    let k = 2 * s + 1;
    if k > WINDOW || f > 1024 {
        return Err("mprotect-frag needs 2s+1 <= 256, f <= 1024".into());
    }
    let mut plan = Plan::default();
    let p0 = Pid(0);
    plan.mmap(p0, 0, k, Prot::Rw, Kind::Anon);
    for a in 0..k {
        plan.write(p0, a);
    }
    for i in 0..s {
        plan.op(Op::Mprotect {
            pid: p0,
            addr: 2 * i + 1,
            len: 1,
            prot: Prot::R,
        });
    }
    for c in 1..=f {
        plan.op(Op::Fork { pid: p0 });
        for i in 0..=s {
            plan.write(Pid(c as u32), 2 * i);
        }
    }
    for a in 0..k {
        plan.walk(p0, a, Class::Any);
    }
    Ok(plan)
}

fn file_mix(p: &Params) -> Result<Plan, String> {
    let (f, a) = (get(p, "f"), get(p, "a"));
    // Two pages and a gap of one per mapping.
    if 3 * (f + a) > WINDOW {
        return Err("file-mix needs 3(f+a) <= 256".into());
    }
    let mut plan = Plan::default();
    let p0 = Pid(0);
    let mut at = 0;
    for i in 0..f.max(a) {
        if i < f {
            let file = (i % u64::from(rmaplab_ops::NR_FILES)) as u8;
            let off = (i / u64::from(rmaplab_ops::NR_FILES)) * 2;
            plan.mmap(p0, at, 2, Prot::R, Kind::File { file, off });
            plan.op(Op::Read { pid: p0, addr: at });
            plan.op(Op::Read {
                pid: p0,
                addr: at + 1,
            });
            at += 3;
        }
        if i < a {
            plan.mmap(p0, at, 2, Prot::Rw, Kind::Anon);
            plan.write(p0, at);
            plan.write(p0, at + 1);
            plan.walk(p0, at, Class::Any);
            at += 3;
        }
    }
    Ok(plan)
}

fn mremap_churn(p: &Params) -> Result<Plan, String> {
    let (m, f) = (get(p, "m"), get(p, "f"));
    if m > 4096 || f > 256 {
        return Err("mremap-churn needs m <= 4096, f <= 256".into());
    }
    let mut plan = Plan::default();
    let p0 = Pid(0);
    plan.mmap(p0, 0, 8, Prot::Rw, Kind::Anon);
    for a in 0..8 {
        plan.write(p0, a);
    }
    for _ in 0..f {
        plan.op(Op::Fork { pid: p0 });
    }
    let mut at = 0;
    for i in 0..m {
        let to = if at == 0 { 100 } else { 0 };
        plan.op(Op::Mremap {
            pid: p0,
            old: at,
            old_len: 8,
            new_len: 8,
            to: Some(MremapTo {
                new: to,
                dontunmap: false,
            }),
        });
        at = to;
        plan.write(p0, at + i % 8);
    }
    for a in 0..8 {
        plan.walk(p0, at + a, Class::Any);
    }
    Ok(plan)
}

/// `KEY=V1,V2,...`, `KEY=LO..HI*F` (LO, LO*F, ... up to HI) or
/// `KEY=LO..HI+S` (LO, LO+S, ...).
pub fn parse_sweep(text: &str) -> Result<(String, Vec<u64>), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected KEY=VALUES"))?;
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{text}`: `{s}` is not a number"))
    };
    let values = if let Some((lo, rest)) = v.split_once("..") {
        let (hi, step, mul) = if let Some((hi, f)) = rest.split_once('*') {
            (num(hi)?, num(f)?, true)
        } else if let Some((hi, s)) = rest.split_once('+') {
            (num(hi)?, num(s)?, false)
        } else {
            (num(rest)?, 1, false)
        };
        let mut x = num(lo)?;
        if (mul && (step < 2 || x == 0)) || (!mul && step == 0) {
            return Err(format!("`{text}`: the range never grows"));
        }
        let mut out = Vec::new();
        while x <= hi {
            out.push(x);
            x = if mul { x * step } else { x + step };
        }
        out
    } else {
        v.split(',').map(num).collect::<Result<Vec<_>, _>>()?
    };
    if values.is_empty() || values.len() > 1000 {
        return Err(format!("`{text}`: 1 to 1000 values"));
    }
    Ok((k.to_string(), values))
}

/// `KEY=V`.
pub fn parse_param(text: &str) -> Result<(String, u64), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected KEY=VALUE"))?;
    let v = v
        .parse()
        .map_err(|_| format!("`{text}`: `{v}` is not a number"))?;
    Ok((k.to_string(), v))
}

/// Walk cost of one class: walks, VMAs visited in all, the most in one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WalkCost {
    pub walks: u64,
    pub visited: u64,
    pub max: u64,
}

impl WalkCost {
    fn add(&mut self, visited: u64) {
        self.walks += 1;
        self.visited += visited;
        self.max = self.max.max(visited);
    }
    fn merge(&mut self, o: &WalkCost) {
        self.walks += o.walks;
        self.visited += o.visited;
        self.max = self.max.max(o.max);
    }
    /// VMAs visited per walk.
    pub fn mean(&self) -> f64 {
        if self.walks == 0 {
            0.0
        } else {
            self.visited as f64 / self.walks as f64
        }
    }
}

/// What one design spent on one workload point.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Measure {
    pub ops: u64,
    /// Live VMAs at the end (every process).
    pub vmas: u64,
    pub anon_vmas: u64,
    pub avcs: u64,
    pub bytes: u64,
    pub allocations: u64,
    pub freed_unused: u64,
    /// Walk cost by page class (classes the workload walked).
    pub walks: BTreeMap<&'static str, WalkCost>,
    /// Wall time of the whole run, nanoseconds (not deterministic).
    pub nanos: u64,
}

impl Measure {
    fn merge(&mut self, o: &Measure) {
        self.ops += o.ops;
        self.vmas += o.vmas;
        self.anon_vmas += o.anon_vmas;
        self.avcs += o.avcs;
        self.bytes += o.bytes;
        self.allocations += o.allocations;
        self.freed_unused += o.freed_unused;
        for (k, w) in &o.walks {
            self.walks.entry(k).or_default().merge(w);
        }
        self.nanos += o.nanos;
    }

    /// All walks together.
    pub fn all_walks(&self) -> WalkCost {
        let mut t = WalkCost::default();
        for w in self.walks.values() {
            t.merge(w);
        }
        t
    }

    /// Nanoseconds per op.
    pub fn ns_per_op(&self) -> f64 {
        if self.ops == 0 {
            0.0
        } else {
            self.nanos as f64 / self.ops as f64
        }
    }
}

/// Runs `plan` on a fresh machine with `spec`'s design. `strict`: an op
/// that fails is an error (the named workloads never fail an op; random
/// streams do).
pub fn measure(spec: &DesignSpec, plan: &Plan, strict: bool) -> Result<Measure, String> {
    let rmap = spec
        .build()
        .ok_or_else(|| "the reference model has no reverse map to measure".to_string())?;
    let mut mmu = Mmu::new(rmap);
    let classes: BTreeMap<usize, Class> = plan.walks.iter().copied().collect();
    let mut m = Measure::default();
    let t = Instant::now();
    for (i, op) in plan.ops.iter().enumerate() {
        let before = mmu.stats();
        let text = || rmaplab_ops::print::print_op(op);
        match mmu.apply(op) {
            Ok(Outcome::Err(e)) if strict => {
                return Err(format!("op {i} `{}` failed: {e}", text()));
            }
            Ok(_) => {}
            Err(v) => return Err(format!("op {i} `{}`: {v:?}", text())),
        }
        let after = mmu.stats();
        let walks = after.walks - before.walks;
        // A migration walks twice: each counts, with the mean of both.
        if let Some(per) = (after.vmas_visited - before.vmas_visited).checked_div(walks) {
            let class = classes.get(&i).copied().unwrap_or(Class::Any);
            for _ in 0..walks {
                m.walks.entry(class.as_str()).or_default().add(per);
            }
        }
    }
    m.nanos = t.elapsed().as_nanos() as u64;
    m.ops = plan.ops.len() as u64;
    let c = mmu.rmap().counters();
    m.vmas = mmu.vma_count() as u64;
    m.anon_vmas = c.anon_vmas;
    m.avcs = c.avcs;
    m.bytes = c.bytes;
    m.allocations = c.allocations;
    m.freed_unused = mmu.rmap_mut().alloc_schedule().unused();
    Ok(m)
}

/// The `random` workload: `s` decoder streams from seeds `seed..`, each
/// on its own machine (a block's ops run in letter order), summed.
pub fn measure_random(spec: &DesignSpec, params: &Params) -> Result<Measure, String> {
    use rand::{RngCore, SeedableRng};
    let (s, seed) = (get(params, "s"), get(params, "seed"));
    let cfg = DecodeConfig::default();
    let mut total = Measure::default();
    for i in 0..s {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed.wrapping_add(i));
        let mut bytes = vec![0u8; 512];
        rng.fill_bytes(&mut bytes);
        let plan = Plan {
            ops: decode(&bytes, &cfg).ops,
            walks: Vec::new(),
        };
        total.merge(&measure(spec, &plan, false)?);
    }
    Ok(total)
}

/// One row of a cost report.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub workload: &'static str,
    pub design: String,
    pub params: Params,
    #[serde(flatten)]
    pub measure: Measure,
}

/// Runs `workload` at every point of `points` on every spec.
pub fn run(
    workload: &Workload,
    points: &[Params],
    specs: &[DesignSpec],
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for params in points {
        for spec in specs {
            let measure = if workload.name == "random" {
                measure_random(spec, params)?
            } else {
                measure(spec, &workload.plan(params)?, true)?
            };
            rows.push(Row {
                workload: workload.name,
                design: spec.to_string(),
                params: params.clone(),
                measure,
            });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_lists_doublings_and_steps() {
        assert_eq!(parse_sweep("n=1,2,5").unwrap(), ("n".into(), vec![1, 2, 5]));
        assert_eq!(
            parse_sweep("n=1..256*2").unwrap().1,
            vec![1, 2, 4, 8, 16, 32, 64, 128, 256]
        );
        assert_eq!(parse_sweep("d=0..9+3").unwrap().1, vec![0, 3, 6, 9]);
        assert_eq!(parse_sweep("d=2..4").unwrap().1, vec![2, 3, 4]);
        for bad in [
            "n", "n=", "n=1,x", "n=0..8*2", "n=1..8*1", "n=1..8+0", "n=9..1",
        ] {
            assert!(parse_sweep(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_param("k=8").unwrap(), ("k".into(), 8));
        assert!(parse_param("k").is_err() && parse_param("k=-1").is_err());
    }
}
