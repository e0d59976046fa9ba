//! The claims that drove each redesign, measured: each claim runs its
//! workload sweep on the designs it compares, says what was measured and
//! whether the claim holds on the emulator, and names the command that
//! reproduces it.

use rmaplab_impls::designs::registry::DesignSpec;

use super::{Params, Row, run, workload};

/// One claim of the project's sources and its measurement.
pub struct Claim {
    pub id: u8,
    pub who: &'static str,
    pub claim: &'static str,
    pub source: &'static str,
    pub workload: &'static str,
    /// The swept parameter and its values; fixed parameters.
    pub sweep: (&'static str, &'static [u64]),
    pub fixed: &'static [(&'static str, u64)],
    pub specs: &'static [&'static str],
    /// The chart's y value of a row, and its axis name.
    pub y: (fn(&Row) -> f64, &'static str),
    /// What was measured, and whether the claim holds.
    pub verdict: fn(&[Row]) -> (String, Holds),
}

/// Whether a claim holds on the emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    Yes,
    No,
    /// Holds for what it argues, not for every word of it.
    Partly,
}

impl Holds {
    pub fn as_str(self) -> &'static str {
        match self {
            Holds::Yes => "yes",
            Holds::No => "no",
            Holds::Partly => "partly",
        }
    }
}

const DOUBLING: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256];

fn at<'a>(rows: &'a [Row], spec: &str, key: &str, v: u64) -> &'a Row {
    rows.iter()
        .find(|r| r.design == spec && r.params.get(key) == Some(&v))
        .expect("the claim's sweep has this point")
}

/// The claims, in the order of docs/cost.md.
pub const CLAIMS: &[Claim] = &[
    Claim {
        id: 1,
        who: "Rik van Riel, 2010",
        claim: "with the single list a fork server whose N children COW their pages walks O(N) \
                VMAs per page; with anon_vma_chain \"O(1) for the pages of the child processes, \
                O(N) for at most 1/N pages\", average \"from O(N) to 2\"",
        source: "5beb49305251",
        workload: "fork-server",
        sweep: ("n", DOUBLING),
        fixed: &[("k", 8)],
        specs: &["single-list-2004", "chain-2010 era=2010"],
        y: (
            |r| r.measure.all_walks().mean(),
            "VMAs visited per walk (mean)",
        ),
        verdict: |rows| {
            let l = at(rows, "single-list-2004", "n", 256).measure.all_walks();
            let c = &at(rows, "chain-2010 era=2010", "n", 256).measure;
            let child = c.walks.get("child").copied().unwrap_or_default();
            let all = c.all_walks();
            let holds = l.mean() >= 256.0 && child.max == 1 && all.mean() <= 2.0;
            (
                format!(
                    "N = 256: single list {:.0} VMAs per walk; chain {:.2} on average, {} for \
                     every child page, {} for the parent's",
                    l.mean(),
                    all.mean(),
                    child.max,
                    c.walks.get("parent").map_or(0, |p| p.max)
                ),
                if holds { Holds::Yes } else { Holds::No },
            )
        },
    },
    Claim {
        id: 2,
        who: "Minchan Kim, 2010",
        claim: "the chain's memory \"will increase 3 times more than only anon_vma\"",
        source: "review of 5beb49305251",
        workload: "fork-server",
        sweep: ("n", DOUBLING),
        fixed: &[("k", 8)],
        specs: &["single-list-2004", "chain-2010 era=2010"],
        y: (|r| r.measure.bytes as f64, "rmap metadata bytes"),
        verdict: |rows| {
            let ratio = |n| {
                at(rows, "chain-2010 era=2010", "n", n).measure.bytes as f64
                    / at(rows, "single-list-2004", "n", n).measure.bytes as f64
            };
            let (lo, hi) = (ratio(1), ratio(256));
            (
                format!(
                    "chain / single list bytes: {lo:.1}x at N = 1, {hi:.1}x at N = 256 \
                     (each era's struct sizes and the VMA fields each design adds)"
                ),
                if (2.0..=4.0).contains(&hi) {
                    Holds::Yes
                } else {
                    Holds::No
                },
            )
        },
    },
    Claim {
        id: 3,
        who: "Linus Torvalds, 7 Apr 2010",
        claim: "preparing the anon_vma at vma_link time instead of at the first anonymous fault \
                gives \"about twice as many anon_vma entries\", since \"about half of the vma's \
                never need an anon_vma entry, probably because they end up being read-only file \
                mappings\"",
        source: "rmap: make anon_vma_prepare link in all the anon_vmas of a mergeable VMA (-v2 thread)",
        workload: "file-mix",
        sweep: ("a", &[1, 2, 4, 8, 16, 32]),
        fixed: &[("f", 8)],
        specs: &["chain-2010 era=2010", "eager-2010"],
        y: (|r| r.measure.anon_vmas as f64, "live anon_vmas"),
        verdict: |rows| {
            // Half of the VMAs read-only file mappings: a = f = 8.
            let lazy = at(rows, "chain-2010 era=2010", "a", 8).measure.anon_vmas;
            let eager = at(rows, "eager-2010", "a", 8).measure.anon_vmas;
            let ratio = eager as f64 / lazy as f64;
            (
                format!(
                    "half the VMAs read-only file mappings (8 + 8): {eager} anon_vmas eager \
                     against {lazy} lazy, x{ratio:.2}"
                ),
                if (1.5..=2.5).contains(&ratio) {
                    Holds::Yes
                } else {
                    Holds::No
                },
            )
        },
    },
    Claim {
        id: 4,
        who: "Konstantin Khlebnikov, 2015",
        claim: "with reuse the number of anon_vmas is \"no more than two times bigger than\" the \
                number of VMAs; without it a fork/exit chain grows without bound",
        source: "7a3ef208e662",
        workload: "fork-chain",
        sweep: ("d", &[1, 2, 4, 8, 16, 32, 64, 128, 256]),
        fixed: &[("k", 4)],
        specs: &[
            "chain-2010 era=2010",
            "chain-2010 era=2015",
            "chain-2010 era=2022",
        ],
        y: (
            |r| r.measure.anon_vmas as f64,
            "live anon_vmas (1 VMA left)",
        ),
        verdict: |rows| {
            let grow = at(rows, "chain-2010 era=2010", "d", 256).measure.anon_vmas;
            let r15 = &at(rows, "chain-2010 era=2015", "d", 256).measure;
            let r22 = &at(rows, "chain-2010 era=2022", "d", 256).measure;
            let bounded =
                r15.anon_vmas == at(rows, "chain-2010 era=2015", "d", 4).measure.anon_vmas;
            let twice = r15.anon_vmas <= 2 * r15.vmas && r22.anon_vmas <= 2 * r22.vmas;
            (
                format!(
                    "depth 256: {grow} anon_vmas without reuse (2010), {} (2015) and {} (2022) \
                     with it, for {} VMA",
                    r15.anon_vmas, r22.anon_vmas, r15.vmas
                ),
                match (grow > 256 && bounded, twice) {
                    (true, true) => Holds::Yes,
                    (true, false) => Holds::Partly,
                    _ => Holds::No,
                },
            )
        },
    },
    Claim {
        id: 5,
        who: "Lorenzo Stoakes, 2026",
        claim: "allocating the anon_vma and AVC before cloning and freeing them when reuse \
                happens is \"not egregious\" in time or memory",
        source: "mm: clean up anon_vma implementation, patch 2/9",
        workload: "fork-chain",
        sweep: ("d", &[1, 2, 4, 8, 16, 32, 64, 128, 256]),
        fixed: &[("k", 4)],
        specs: &["chain-2010 era=2022", "prealloc-2026"],
        y: (|r| r.measure.allocations as f64, "allocations made"),
        verdict: |rows| {
            let a = &at(rows, "chain-2010 era=2022", "d", 256).measure;
            let b = &at(rows, "prealloc-2026", "d", 256).measure;
            let extra = b.allocations as f64 / a.allocations as f64;
            (
                format!(
                    "depth 256: {} allocations against {} (x{extra:.2}), {} freed unused; live \
                     bytes {} against {} (nothing extra stays)",
                    b.allocations, a.allocations, b.freed_unused, b.bytes, a.bytes
                ),
                // "Not egregious", made checkable: nothing extra stays
                // live, and even where every fork reuses (this sweep) the
                // allocations at most double.
                if b.bytes == a.bytes && extra <= 2.0 {
                    Holds::Yes
                } else {
                    Holds::No
                },
            )
        },
    },
];

impl Claim {
    /// The sweep's points.
    pub fn points(&self) -> Result<Vec<Params>, String> {
        let w = workload(self.workload).expect("a claim names a workload");
        self.sweep
            .1
            .iter()
            .map(|&v| {
                let mut g: Vec<(String, u64)> = self
                    .fixed
                    .iter()
                    .map(|&(k, v)| (k.to_string(), v))
                    .collect();
                g.push((self.sweep.0.to_string(), v));
                w.params(&g)
            })
            .collect()
    }

    /// Runs the claim's sweep on its designs.
    pub fn measure(&self) -> Result<Vec<Row>, String> {
        let w = workload(self.workload).expect("a claim names a workload");
        let specs: Vec<DesignSpec> = self
            .specs
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()?;
        run(w, &self.points()?, &specs)
    }

    /// The command that reproduces the claim's rows.
    pub fn command(&self) -> String {
        let mut s = format!("rmaplab cost -w {}", self.workload);
        for (k, v) in self.fixed {
            s.push_str(&format!(" -p {k}={v}"));
        }
        let vals: Vec<String> = self.sweep.1.iter().map(u64::to_string).collect();
        s.push_str(&format!(" --sweep {}={}", self.sweep.0, vals.join(",")));
        for spec in self.specs {
            s.push_str(&format!(" --spec '{spec}'"));
        }
        s
    }
}
