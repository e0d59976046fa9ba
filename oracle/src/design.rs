//! Naming and building the designs the CLI and the fuzzers run
//! (ops-v1 "Names the CLI accepts").

use std::fmt;
use std::str::FromStr;

use rmaplab_impls::designs::chain_2010::{Chain2010, Era};
use rmaplab_impls::designs::prealloc_2026::Prealloc2026;
use rmaplab_impls::designs::single_list_2004::SingleList2004;

use crate::runner::{RunOptions, RunReport, SharedModel, run_design_shared, run_reference};
use rmaplab_ops::Stream;

/// A design as the CLI names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DesignName {
    /// The reference model alone (no MMU, no design).
    Reference,
    SingleList2004,
    Chain2010,
    Prealloc2026,
}

impl DesignName {
    pub fn name(self) -> &'static str {
        match self {
            DesignName::Reference => "reference",
            DesignName::SingleList2004 => "single-list-2004",
            DesignName::Chain2010 => "chain-2010",
            DesignName::Prealloc2026 => "prealloc-2026",
        }
    }

    /// The designs built so far, in the order runs are reported.
    pub fn canonical() -> &'static [DesignName] {
        &[
            DesignName::SingleList2004,
            DesignName::Chain2010,
            DesignName::Prealloc2026,
        ]
    }

    pub fn is_built(self) -> bool {
        self == DesignName::Reference || Self::canonical().contains(&self)
    }
}

impl fmt::Display for DesignName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DesignName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "reference" => DesignName::Reference,
            "single-list-2004" => DesignName::SingleList2004,
            "chain-2010" => DesignName::Chain2010,
            "prealloc-2026" => DesignName::Prealloc2026,
            _ => {
                return Err(format!(
                    "unknown design `{s}` (expected single-list-2004, chain-2010, \
                     prealloc-2026 or reference)"
                ));
            }
        })
    }
}

/// Eras of `chain-2010` (`--era`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EraName {
    E2010,
    E2015,
    E2022,
}

impl EraName {
    pub fn name(self) -> &'static str {
        match self {
            EraName::E2010 => "2010",
            EraName::E2015 => "2015",
            EraName::E2022 => "2022",
        }
    }
}

impl FromStr for EraName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "2010" => Ok(EraName::E2010),
            "2015" => Ok(EraName::E2015),
            "2022" => Ok(EraName::E2022),
            _ => Err(format!("unknown era `{s}` (expected 2010, 2015 or 2022)")),
        }
    }
}

/// One configured design: what a run is of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesignSpec {
    pub design: DesignName,
    pub era: Option<EraName>,
    pub bugs: Vec<String>,
}

impl DesignSpec {
    pub fn new(design: DesignName) -> DesignSpec {
        DesignSpec {
            design,
            era: None,
            bugs: Vec::new(),
        }
    }

    /// Checks that the spec names something that exists.
    pub fn validate(&self) -> Result<(), String> {
        if !self.design.is_built() {
            return Err(format!("design `{}` is not built yet", self.design));
        }
        if self.era.is_some() && self.design != DesignName::Chain2010 {
            return Err(format!("--era applies to chain-2010, not {}", self.design));
        }
        for b in &self.bugs {
            if !crate::bugs::applies(b, self) {
                return Err(format!(
                    "bug `{b}` cannot be injected into {} (see `rmaplab bugs`)",
                    self.label()
                ));
            }
        }
        Ok(())
    }

    /// `(key, value)` pairs for the report's `config`.
    pub fn config_pairs(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        if let Some(e) = self.era {
            v.push(("era".to_string(), e.name().to_string()));
        }
        if !self.bugs.is_empty() {
            v.push(("bugs".to_string(), self.bugs.join(",")));
        }
        v
    }

    /// `chain-2010 (era 2015, bugs b16)`-style label.
    pub fn label(&self) -> String {
        let pairs = self.config_pairs();
        if pairs.is_empty() {
            self.design.name().to_string()
        } else {
            let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!("{} ({})", self.design, inner.join(", "))
        }
    }

    /// The CLI flags that select this spec.
    pub fn cli_flags(&self) -> String {
        let mut s = format!("--design {}", self.design);
        if let Some(e) = self.era {
            s.push_str(&format!(" --era {}", e.name()));
        }
        for b in &self.bugs {
            s.push_str(&format!(" --bug {b}"));
        }
        s
    }

    /// Runs `stream` with this design.
    pub fn run(&self, stream: &Stream, opts: &RunOptions) -> RunReport {
        self.run_shared(stream, opts, &mut SharedModel::default())
    }

    /// [`DesignSpec::run`] with a reference model shared by the designs of
    /// one `run_all`.
    pub(crate) fn run_shared(
        &self,
        stream: &Stream,
        opts: &RunOptions,
        shared: &mut SharedModel,
    ) -> RunReport {
        match self.design {
            DesignName::Reference => run_reference(stream),
            DesignName::SingleList2004 => {
                let d = SingleList2004::with_bugs(&self.bug_refs());
                run_design_shared(stream, d, self, opts, shared)
            }
            DesignName::Chain2010 => {
                let era = match self.era.unwrap_or(EraName::E2022) {
                    EraName::E2010 => Era::E2010,
                    EraName::E2015 => Era::E2015,
                    EraName::E2022 => Era::E2022,
                };
                let d = Chain2010::with_bugs(era, &self.bug_refs());
                run_design_shared(stream, d, self, opts, shared)
            }
            DesignName::Prealloc2026 => {
                let d = Prealloc2026::with_bugs(&self.bug_refs());
                run_design_shared(stream, d, self, opts, shared)
            }
        }
    }

    fn bug_refs(&self) -> Vec<&str> {
        self.bugs.iter().map(String::as_str).collect()
    }
}

/// The canonical designs, each in its default configuration.
pub fn canonical_specs() -> Vec<DesignSpec> {
    DesignName::canonical()
        .iter()
        .map(|&d| DesignSpec::new(d))
        .collect()
}

/// Turns `--design`, `--era` and `--bug` into specs. With no `--design`:
/// the design the bugs belong to if bugs are named, chain-2010 if an era is,
/// else every canonical design.
pub fn select(
    designs: &[DesignName],
    era: Option<EraName>,
    bugs: &[String],
) -> Result<Vec<DesignSpec>, String> {
    for b in bugs {
        if crate::bugs::find(b).is_none() {
            return Err(format!("unknown bug `{b}` (see `rmaplab bugs`)"));
        }
    }
    let names: Vec<DesignName> = if !designs.is_empty() {
        designs.to_vec()
    } else if !bugs.is_empty() {
        let mut v = Vec::new();
        for b in bugs {
            let d = crate::bugs::find(b).map(|bug| bug.design);
            if let Some(d) = d
                && !v.contains(&d)
            {
                v.push(d);
            }
        }
        v
    } else if era.is_some() {
        vec![DesignName::Chain2010]
    } else {
        DesignName::canonical().to_vec()
    };
    let mut specs = Vec::new();
    for d in names {
        let mut s = DesignSpec::new(d);
        s.bugs = bugs
            .iter()
            .filter(|b| crate::bugs::find(b).is_some_and(|bug| bug.design == d))
            .cloned()
            .collect();
        if d == DesignName::Chain2010 {
            // A bug lives in its era: without --era, run it there.
            s.era = era.or_else(|| {
                s.bugs
                    .iter()
                    .filter_map(|b| crate::bugs::find(b).and_then(|bug| bug.era))
                    .next()
            });
        }
        s.validate()?;
        specs.push(s);
    }
    for b in bugs {
        if !specs.iter().any(|s| s.bugs.contains(b)) {
            return Err(format!(
                "bug `{b}` belongs to none of the selected designs (see `rmaplab bugs`)"
            ));
        }
    }
    if era.is_some() && !specs.iter().any(|s| s.design == DesignName::Chain2010) {
        return Err("--era applies to chain-2010, which is not selected".into());
    }
    Ok(specs)
}
