//! The one place that says which designs exist: their names, eras and
//! bugs, a configured design ([`DesignSpec`]: design + era + bugs) in the
//! spelling of the CLI and of corpus headers, its validation, and
//! [`DesignSpec::build`], which makes the design by name (as wasmtime's
//! fuzzing oracles build an engine by name). Designs and eras are described
//! in `docs/designs.md`, the bugs in `docs/bugs.md`.
//!
//! Each design module describes its own bugs once (`BUGS`, of type
//! [`Bug`]); the registry gathers them ([`catalogue`]). Adding a design
//! means a variant of [`Design`] (the compiler then lists every `match`
//! here to extend) and its module.
//!
//! [`VmaSemantics`] says which configurations lay out VMAs alike: the MMU
//! is the same Linux 6.18 code for every design, but the merge decisions
//! are the design's (`is_mergeable_anon_vma`), so runs with the same
//! semantics must agree on every layout and runs with different ones may
//! not.

pub mod bug;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

pub use bug::{Bug, Injection};

use super::chain_2010::{self, Chain2010};
use super::prealloc_2026::{self, Prealloc2026};
use super::single_list_2004::{self, SingleList2004};

/// A kernel era as `--era` spells it. Each design with eras offers some
/// ([`Design::eras`]): single-list-2004 2004 and 2006, chain-2010 2010,
/// 2015 and 2022.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Era {
    /// 2.6.7 (single-list-2004's default).
    E2004,
    /// 2.6.18 … 2.6.33 (single-list-2004 with migration entries).
    E2006,
    E2010,
    E2015,
    E2022,
}

impl Era {
    pub const ALL: [Era; 5] = [Era::E2004, Era::E2006, Era::E2010, Era::E2015, Era::E2022];

    /// The CLI spelling (`2015`).
    pub fn as_str(self) -> &'static str {
        match self {
            Era::E2004 => "2004",
            Era::E2006 => "2006",
            Era::E2010 => "2010",
            Era::E2015 => "2015",
            Era::E2022 => "2022",
        }
    }

    /// Parses the CLI spelling.
    pub fn from_name(s: &str) -> Option<Era> {
        Era::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// As chain-2010's era, if it is one.
    pub fn chain(self) -> Option<chain_2010::Era> {
        chain_2010::Era::from_name(self.as_str())
    }

    /// As single-list-2004's era, if it is one.
    pub fn single_list(self) -> Option<single_list_2004::Era> {
        single_list_2004::Era::from_name(self.as_str())
    }
}

impl From<chain_2010::Era> for Era {
    fn from(e: chain_2010::Era) -> Era {
        Era::from_name(e.as_str()).expect("every chain-2010 era is an era")
    }
}

impl From<single_list_2004::Era> for Era {
    fn from(e: single_list_2004::Era) -> Era {
        Era::from_name(e.as_str()).expect("every single-list-2004 era is an era")
    }
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
use crate::arena::Handle;
use crate::rmap::{
    AllocSchedule, AnonMapping, CloneOp, CloneRmap, Counters, MergeSrc, Rmap, RmapError,
    TreeCounters, VmaId, VmaView,
};

/// A design as the CLI names it (`--design NAME`, the first word of a
/// corpus header's `[SPEC]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Design {
    /// Not a design: the oracle's reference model alone (no MMU, no rmap);
    /// [`DesignSpec::build`] gives `None` for it.
    Reference,
    SingleList2004,
    Chain2010,
    Prealloc2026,
    /// Linus Torvalds' eager variant of the 2010 chain (7 Apr 2010): not
    /// canonical (no kernel shipped it); `rmaplab cost` compares it.
    Eager2010,
}

impl Design {
    /// Every name the CLI accepts, canonical designs first.
    pub const ALL: [Design; 5] = [
        Design::SingleList2004,
        Design::Chain2010,
        Design::Prealloc2026,
        Design::Eager2010,
        Design::Reference,
    ];

    /// The designs, in the order runs are reported (what runs when no
    /// design is named).
    pub fn canonical() -> &'static [Design] {
        &[
            Design::SingleList2004,
            Design::Chain2010,
            Design::Prealloc2026,
        ]
    }

    /// The designs every corpus file is checked on: the canonical ones and
    /// `eager-2010`, a design the engines do not fuzz by default (headers
    /// list where its layouts differ).
    pub fn corpus_checked() -> &'static [Design] {
        &[
            Design::SingleList2004,
            Design::Chain2010,
            Design::Prealloc2026,
            Design::Eager2010,
        ]
    }

    /// The name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Design::Reference => "reference",
            Design::SingleList2004 => "single-list-2004",
            Design::Chain2010 => "chain-2010",
            Design::Prealloc2026 => "prealloc-2026",
            Design::Eager2010 => "eager-2010",
        }
    }

    /// One line on what it is.
    pub fn summary(self) -> &'static str {
        match self {
            Design::Reference => "the reference model alone: plain memory, Linux 6.18 semantics",
            Design::SingleList2004 => {
                "one anon_vma and one VMA list per fork family (Linux 2.6.7 + the 2.6.8 importer fix)"
            }
            Design::Chain2010 => {
                "anon_vma + anon_vma_chain (Linux 2.6.34 ... 6.18), in eras 2010, 2015 and 2022"
            }
            Design::Prealloc2026 => {
                "Linux 6.18's anon_vma_chain with the January 2026 series \"mm: clean up anon_vma \
                 implementation\""
            }
            Design::Eager2010 => {
                "chain-2010 era 2010 preparing the anon_vma when a private VMA is linked, not at \
                 its first anonymous fault (Linus Torvalds' variant, 7 Apr 2010; never shipped)"
            }
        }
    }

    /// The eras `--era` may select, oldest first; empty for a design that
    /// has only one.
    pub fn eras(self) -> &'static [Era] {
        match self {
            Design::SingleList2004 => &[Era::E2004, Era::E2006],
            Design::Chain2010 => &[Era::E2010, Era::E2015, Era::E2022],
            Design::Reference | Design::Prealloc2026 | Design::Eager2010 => &[],
        }
    }

    /// The era a run gets without `--era` (`None`: the design has none).
    pub fn default_era(self) -> Option<Era> {
        match self {
            Design::SingleList2004 => Some(single_list_2004::Era::default().into()),
            Design::Chain2010 => Some(chain_2010::Era::default().into()),
            Design::Reference | Design::Prealloc2026 | Design::Eager2010 => None,
        }
    }

    /// The catalogued bugs this design's module describes.
    pub fn bugs(self) -> &'static [Bug] {
        match self {
            Design::Reference => &[],
            Design::SingleList2004 => single_list_2004::BUGS,
            Design::Chain2010 => chain_2010::BUGS,
            Design::Prealloc2026 => prealloc_2026::BUGS,
            Design::Eager2010 => &[],
        }
    }

    /// The designs that have `era`, for messages (`chain-2010`).
    fn with_era(era: Era) -> String {
        let names: Vec<&str> = Design::ALL
            .iter()
            .filter(|d| d.eras().contains(&era))
            .map(|d| d.name())
            .collect();
        names.join(", ")
    }
}

impl fmt::Display for Design {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Design {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Design::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Design::canonical().iter().map(|d| d.name()).collect();
                format!(
                    "unknown design `{s}` (expected {} or {})",
                    names.join(", "),
                    Design::Reference
                )
            })
    }
}

impl FromStr for Era {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Era::from_name(s).ok_or_else(|| {
            let names: Vec<&str> = Era::ALL.iter().map(|e| e.as_str()).collect();
            let (last, rest) = names.split_last().expect("eras exist");
            format!("unknown era `{s}` (expected {} or {last})", rest.join(", "))
        })
    }
}

/// Which VMA layouts a configuration produces: the merge rule its design
/// answers `is_mergeable_anon_vma` with, over its kind of anon_vma. Runs
/// with the same semantics lay out every stream alike; across semantics,
/// layouts (and the `mremap` outcomes that depend on them) may differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmaSemantics {
    /// Linux 6.18.y: `879bca0a2c4f` (2025) and the January 2026 stable
    /// fixes (a fork child's anon_vma does not spread by merging).
    /// chain-2010 era 2022 and prealloc-2026; what the host kernel does.
    Linux618,
    /// 3.0 ... 6.14: the singular-target rule of `965f55dea0e3`, which also
    /// refuses faulted-into-unfaulted merges (B20). chain-2010 era 2015.
    SingularTarget,
    /// 2.6.34 ... 2.6.39: `!a || !b || a == b` over per-process
    /// anon_vmas. chain-2010 era 2010.
    AnyOrEqual2010,
    /// 2.6.7 ... 2.6.33: `!a || !b || a == b` over one anon_vma per fork
    /// family, so a child's VMAs merge where the chain designs' do not:
    /// layouts differ where fork is involved. single-list-2004.
    Family2004,
    /// The 2010 rule over anon_vmas every private VMA has from its
    /// creation: two mappings made apart never merge. eager-2010.
    Eager2010,
}

/// One configured design: what a run is of.
///
/// Spelled `chain-2010 era=2015 bug=b16` ([`fmt::Display`], [`FromStr`],
/// the corpus header's `[SPEC]`) or `--design chain-2010 --era 2015 --bug
/// b16` ([`DesignSpec::cli_flags`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesignSpec {
    pub design: Design,
    /// `None`: the design's default era (and the label says none).
    pub era: Option<Era>,
    /// Bug ids as given (lower case in the catalogue).
    pub bugs: Vec<String>,
}

impl DesignSpec {
    /// Why this configuration, as its era shipped (no re-injected bug),
    /// fails `invariant` under some interleaving of a concurrent block:
    /// a race its kernel had, which the engines count apart instead of
    /// reporting it as a finding again and again (`rmaplab run` still fails
    /// it, and corpus headers say `fail` with the reason). `None`: a failure
    /// of `invariant` in a block is a finding. A re-injected bug makes
    /// every failure a finding, except one under another invariant than
    /// the bug's own (b02, a `data-race`, leaves single-list-2004's
    /// migration race known).
    pub fn known_race(&self, invariant: &str) -> Option<&'static str> {
        let may_show = |b: &String| {
            find_bug(b)
                .is_none_or(|(_, bug)| bug.invariant == invariant || bug.invariant.starts_with('('))
        };
        if self.bugs.iter().any(may_show) {
            return None;
        }
        match (self.design, invariant) {
            // docs/designs.md, "Lock model per era": one list per family,
            // nothing orders a VMA that fork or a merging copy_vma adds
            // against a walk already past it (the order fixes came with the
            // chain: tail insertion, anon_vma_moveto_tail, need_rmap_locks).
            (Design::SingleList2004, "stale-migration-entry") => Some(
                "the single anon_vma list does not order a VMA that fork or a merging \
                 mremap adds against a remove_migration_ptes walk already past it",
            ),
            _ => None,
        }
    }

    /// `design` in its default configuration.
    pub fn new(design: Design) -> DesignSpec {
        DesignSpec {
            design,
            era: None,
            bugs: Vec::new(),
        }
    }

    /// Checks that the spec names something that exists: an era of its
    /// design, bugs that design can re-inject.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(era) = self.era
            && !self.design.eras().contains(&era)
        {
            return Err(format!(
                "--era {era} applies to {}, not {}",
                Design::with_era(era),
                self.design
            ));
        }
        for b in &self.bugs {
            let ok = self
                .design
                .bugs()
                .iter()
                .any(|bug| bug.id == b && bug.is_injectable());
            if !ok {
                return Err(format!(
                    "bug `{b}` cannot be injected into {} (see `rmaplab bugs`)",
                    self.label()
                ));
            }
        }
        Ok(())
    }

    /// The era the run has: the spec's; else, when it names bugs, the era
    /// the first of them shipped in (as [`select`] picks for `--bug`
    /// without `--era`, so a corpus header `[chain-2010 bug=b12]` runs
    /// what `--design chain-2010 --bug b12` runs); else the design's
    /// default.
    pub fn effective_era(&self) -> Option<Era> {
        self.era
            .or_else(|| {
                self.bugs.iter().find_map(|b| {
                    find_bug(b)
                        .filter(|(d, _)| *d == self.design)
                        .and_then(|(d, bug)| bug_era(d, bug))
                })
            })
            .or(self.design.default_era())
    }

    /// The VMA semantics of this configuration (`None` for the reference
    /// model, whose coarse layout is no kernel's).
    pub fn vma_semantics(&self) -> Option<VmaSemantics> {
        Some(match (self.design, self.effective_era()) {
            (Design::Reference, _) => return None,
            (Design::SingleList2004, _) => VmaSemantics::Family2004,
            (Design::Chain2010, Some(Era::E2010)) => VmaSemantics::AnyOrEqual2010,
            (Design::Chain2010, Some(Era::E2015)) => VmaSemantics::SingularTarget,
            (Design::Chain2010, _) | (Design::Prealloc2026, _) => VmaSemantics::Linux618,
            (Design::Eager2010, _) => VmaSemantics::Eager2010,
        })
    }

    /// `(key, value)` pairs of the configuration the spec names.
    fn config_pairs(&self) -> Vec<(&'static str, String)> {
        let mut v = Vec::new();
        if let Some(e) = self.era {
            v.push(("era", e.as_str().to_string()));
        }
        if !self.bugs.is_empty() {
            v.push(("bugs", self.bugs.join(",")));
        }
        v
    }

    /// `chain-2010 (era 2015, bugs b16)`-style label (reports, failure
    /// signatures).
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
            s.push_str(&format!(" --era {e}"));
        }
        for b in &self.bugs {
            s.push_str(&format!(" --bug {b}"));
        }
        s
    }

    /// The command that replays the stream in `path` with this spec.
    pub fn replay_command(&self, path: &Path) -> String {
        format!("rmaplab run {} {}", path.display(), self.cli_flags())
    }

    /// The design, configured; `None` for the reference model. Panics on a
    /// spec [`DesignSpec::validate`] rejects.
    pub fn build(&self) -> Option<Box<dyn Rmap>> {
        self.build_cloneable().map(|d| d as Box<dyn Rmap>)
    }

    /// [`DesignSpec::build`], as a design an `Mmu` can be cloned with (to
    /// explore the schedules of a concurrent block).
    pub fn build_cloneable(&self) -> Option<Box<dyn CloneRmap>> {
        let bugs: Vec<&str> = self.bugs.iter().map(String::as_str).collect();
        Some(match self.design {
            Design::Reference => return None,
            Design::SingleList2004 => Box::new(SingleList2004::with_era_and_bugs(
                self.effective_era()
                    .and_then(Era::single_list)
                    .unwrap_or_default(),
                &bugs,
            )),
            Design::Chain2010 => Box::new(Chain2010::with_bugs(
                self.effective_era()
                    .and_then(Era::chain)
                    .unwrap_or_default(),
                &bugs,
            )),
            Design::Prealloc2026 => Box::new(Prealloc2026::with_bugs(&bugs)),
            Design::Eager2010 => Box::new(Chain2010::eager_2010()),
        })
    }
}

impl fmt::Display for DesignSpec {
    /// The corpus header's words: `chain-2010 era=2015 bug=b16`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.design.name())?;
        if let Some(e) = self.era {
            write!(f, " era={e}")?;
        }
        for b in &self.bugs {
            write!(f, " bug={b}")?;
        }
        Ok(())
    }
}

impl FromStr for DesignSpec {
    type Err = String;
    /// Parses the corpus header's words (a design name, then `era=YEAR`
    /// and `bug=ID`) and validates the result.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut words = text.split_whitespace();
        let design: Design = words
            .next()
            .ok_or_else(|| "empty design spec".to_string())?
            .parse()?;
        let mut spec = DesignSpec::new(design);
        for w in words {
            if let Some(e) = w.strip_prefix("era=") {
                spec.era = Some(e.parse()?);
            } else if let Some(b) = w.strip_prefix("bug=") {
                spec.bugs.push(b.to_string());
            } else {
                return Err(format!(
                    "unknown spec word `{w}` (expected era=YEAR or bug=ID)"
                ));
            }
        }
        spec.validate()?;
        Ok(spec)
    }
}

/// The canonical designs, each in its default configuration.
/// The designs, at their default eras, every corpus file is checked on
/// ([`Design::corpus_checked`]).
pub fn corpus_specs() -> Vec<DesignSpec> {
    Design::corpus_checked()
        .iter()
        .map(|&d| DesignSpec::new(d))
        .collect()
}

pub fn canonical_specs() -> Vec<DesignSpec> {
    Design::canonical()
        .iter()
        .map(|&d| DesignSpec::new(d))
        .collect()
}

/// Every catalogued bug with the design whose module describes it, in id
/// order.
pub fn catalogue() -> Vec<(Design, &'static Bug)> {
    let mut v: Vec<(Design, &'static Bug)> = Design::ALL
        .iter()
        .flat_map(|&d| d.bugs().iter().map(move |b| (d, b)))
        .collect();
    v.sort_by_key(|(_, b)| b.id);
    v
}

/// Looks a bug up by id (`b01`), with its design.
pub fn find_bug(id: &str) -> Option<(Design, &'static Bug)> {
    Design::ALL
        .iter()
        .find_map(|&d| d.bugs().iter().find(|b| b.id == id).map(|b| (d, b)))
}

/// Whether `design` in `era`, as that era shipped, already has `bug`:
/// re-injecting it there changes nothing (chain-2010 era 2015 uses the
/// `degree` counters of B16).
pub fn era_ships_bug(design: Design, era: Era, bug: &str) -> bool {
    matches!((design, era, bug), (Design::Chain2010, Era::E2015, "b16"))
}

/// The era bug `bug` of `design` lived in.
pub fn bug_era(design: Design, bug: &Bug) -> Option<Era> {
    let era = bug.era?;
    design.eras().iter().copied().find(|e| e.as_str() == era)
}

/// Turns `--design`, `--era` and `--bug` into specs. With no `--design`:
/// the designs the bugs belong to if bugs are named, the designs with eras
/// if an era is, else every canonical design. A design with eras runs a
/// named bug in the bug's era unless `--era` says otherwise.
pub fn select(
    designs: &[Design],
    era: Option<Era>,
    bugs: &[String],
) -> Result<Vec<DesignSpec>, String> {
    for b in bugs {
        if find_bug(b).is_none() {
            return Err(format!("unknown bug `{b}` (see `rmaplab bugs`)"));
        }
    }
    let names: Vec<Design> = if !designs.is_empty() {
        designs.to_vec()
    } else if !bugs.is_empty() {
        let mut v = Vec::new();
        for b in bugs {
            if let Some((d, _)) = find_bug(b)
                && !v.contains(&d)
            {
                v.push(d);
            }
        }
        v
    } else if let Some(era) = era {
        Design::canonical()
            .iter()
            .copied()
            .filter(|d| d.eras().contains(&era))
            .collect()
    } else {
        Design::canonical().to_vec()
    };
    let mut specs = Vec::new();
    for d in names {
        let mut s = DesignSpec::new(d);
        s.bugs = bugs
            .iter()
            .filter(|b| find_bug(b).is_some_and(|(bd, _)| bd == d))
            .cloned()
            .collect();
        if !d.eras().is_empty() {
            // A bug lives in its era: without --era, run it there. An era
            // applies to the selected designs that have it.
            s.era = era.filter(|e| d.eras().contains(e)).or_else(|| {
                s.bugs
                    .iter()
                    .filter_map(|b| find_bug(b).and_then(|(bd, bug)| bug_era(bd, bug)))
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
    if let Some(era) = era
        && !specs.iter().any(|s| s.design.eras().contains(&era))
    {
        return Err(format!(
            "--era {era} applies to {}, which is not selected",
            Design::with_era(era)
        ));
    }
    Ok(specs)
}

/// A built design behind a box is a design: every hook, including the
/// defaulted ones, goes to the boxed design's own.
impl<R: Rmap + ?Sized> Rmap for Box<R> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn config(&self) -> Vec<(&'static str, String)> {
        (**self).config()
    }
    fn has_anon_vma(&self, vma: VmaId) -> bool {
        (**self).has_anon_vma(vma)
    }
    fn anon_vma_prepare(
        &mut self,
        view: &dyn VmaView,
        vma: VmaId,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<(), RmapError> {
        (**self).anon_vma_prepare(view, vma, next, prev)
    }
    fn anon_vma_fork(
        &mut self,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<(), RmapError> {
        (**self).anon_vma_fork(view, child, parent)
    }
    fn anon_vma_fork_alloc(
        &mut self,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<bool, RmapError> {
        (**self).anon_vma_fork_alloc(view, child, parent)
    }
    fn anon_vma_fork_link(&mut self, view: &dyn VmaView, child: VmaId) -> Result<(), RmapError> {
        (**self).anon_vma_fork_link(view, child)
    }
    fn anon_vma_clone(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        op: CloneOp,
    ) -> Result<(), RmapError> {
        (**self).anon_vma_clone(view, dst, src, op)
    }
    fn dup_anon_vma(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<(), RmapError> {
        (**self).dup_anon_vma(view, dst, src)
    }
    fn dup_anon_vma_publish(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<bool, RmapError> {
        (**self).dup_anon_vma_publish(view, dst, src)
    }
    fn dup_anon_vma_clone(
        &mut self,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        published: bool,
    ) -> Result<(), RmapError> {
        (**self).dup_anon_vma_clone(view, dst, src, published)
    }
    fn unlink_anon_vmas(&mut self, view: &dyn VmaView, vma: VmaId) -> Result<(), RmapError> {
        (**self).unlink_anon_vmas(view, vma)
    }
    fn is_mergeable_anon_vma(&self, tgt: VmaId, src: MergeSrc) -> bool {
        (**self).is_mergeable_anon_vma(tgt, src)
    }
    fn is_mergeable_anon_vma_extend(&self, tgt: VmaId, src: VmaId) -> bool {
        (**self).is_mergeable_anon_vma_extend(tgt, src)
    }
    fn anon_vmas_compatible(&self, prev: VmaId, next: VmaId) -> bool {
        (**self).anon_vmas_compatible(prev, next)
    }
    fn vma_pre_update(&mut self, vma: VmaId) {
        (**self).vma_pre_update(vma)
    }
    fn vma_post_update(&mut self, view: &dyn VmaView, vma: VmaId) {
        (**self).vma_post_update(view, vma)
    }
    fn anon_vma_moveto_tail(&mut self, vma: VmaId) {
        (**self).anon_vma_moveto_tail(vma)
    }
    fn folio_add_new_anon_rmap(
        &mut self,
        vma: VmaId,
        exclusive: bool,
    ) -> Result<AnonMapping, RmapError> {
        (**self).folio_add_new_anon_rmap(vma, exclusive)
    }
    fn folio_move_anon_rmap(
        &mut self,
        vma: VmaId,
        current: AnonMapping,
    ) -> Result<AnonMapping, RmapError> {
        (**self).folio_move_anon_rmap(vma, current)
    }
    fn rmap_walk(
        &self,
        view: &dyn VmaView,
        mapping: AnonMapping,
        index: u64,
        out: &mut Vec<VmaId>,
    ) -> Result<(), RmapError> {
        (**self).rmap_walk(view, mapping, index, out)
    }
    fn mapping_alive(&self, mapping: AnonMapping) -> bool {
        (**self).mapping_alive(mapping)
    }
    fn tracks_vma(&self, vma: VmaId) -> bool {
        (**self).tracks_vma(vma)
    }
    fn epoch(&self) -> Option<u64> {
        (**self).epoch()
    }
    fn prepares_at_link(&self) -> bool {
        (**self).prepares_at_link()
    }
    fn record_set_writes(&mut self, on: bool) {
        (**self).record_set_writes(on)
    }
    fn take_set_writes(&mut self, out: &mut Vec<crate::rmap::SetWrite>) {
        (**self).take_set_writes(out)
    }
    fn counters(&self) -> Counters {
        (**self).counters()
    }
    fn fork_trees(&self) -> Vec<TreeCounters> {
        (**self).fork_trees()
    }
    fn lock_model(&self) -> crate::sched::LockModel {
        (**self).lock_model()
    }
    fn vma_anon_vma(&self, vma: VmaId) -> Option<Handle> {
        (**self).vma_anon_vma(vma)
    }
    fn tree_of(&self, mapping: AnonMapping) -> Option<Handle> {
        (**self).tree_of(mapping)
    }
    fn slot_occupant(&self, mapping: AnonMapping) -> Option<AnonMapping> {
        (**self).slot_occupant(mapping)
    }
    fn slot_root(&self, mapping: AnonMapping) -> Option<Handle> {
        (**self).slot_root(mapping)
    }
    fn next_anon_vma_slot(&self) -> Option<usize> {
        (**self).next_anon_vma_slot()
    }
    fn claimed_bound(&self) -> Option<u64> {
        (**self).claimed_bound()
    }
    fn self_check(&self, view: &dyn VmaView) -> Result<(), RmapError> {
        (**self).self_check(view)
    }
    fn alloc_sites(&self) -> &'static [&'static str] {
        (**self).alloc_sites()
    }
    fn alloc_schedule(&mut self) -> &mut AllocSchedule {
        (**self).alloc_schedule()
    }
    fn describe(&self, view: &dyn VmaView, mapping: Option<AnonMapping>, vmas: &[VmaId]) -> String {
        (**self).describe(view, mapping, vmas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_b00_to_b23_each_once_with_its_design_and_era() {
        let ids: Vec<&str> = catalogue().iter().map(|(_, b)| b.id).collect();
        // b12p: the peek half of B12, injectable on its own; x1: a race of
        // 2.6.34-35 the catalogue's history did not list; B18 as b18a and
        // b18b.
        let mut want: Vec<String> = (0..24).map(|i| format!("b{i:02}")).collect();
        want.insert(13, "b12p".to_string());
        // B18 is two races, re-injected one at a time.
        let b18 = want.iter().position(|b| b == "b18").expect("b18");
        want.splice(b18..=b18, ["b18a".to_string(), "b18b".to_string()]);
        want.push("x1".to_string());
        assert_eq!(ids, want);
        for (d, b) in catalogue() {
            assert_eq!(find_bug(b.id).map(|(fd, _)| fd), Some(d));
            match b.era {
                Some(e) => assert!(
                    bug_era(d, b).is_some(),
                    "{}: era {e} is not an era of {d}",
                    b.id
                ),
                // No era: the design's default (or it has none).
                None => assert!(
                    d.eras().is_empty() || d.default_era().is_some(),
                    "{}: {d} needs an era",
                    b.id
                ),
            }
        }
    }

    /// Every injectable bug builds into its design, and the design's own
    /// table (`KNOWN_BUGS`, what its constructor accepts) is exactly the
    /// injectable part of its `BUGS`.
    #[test]
    fn every_injectable_bug_builds_and_the_constructors_agree() {
        let known: [(Design, &[(&str, &str)]); 3] = [
            (Design::SingleList2004, single_list_2004::KNOWN_BUGS),
            (Design::Chain2010, chain_2010::KNOWN_BUGS),
            (Design::Prealloc2026, prealloc_2026::KNOWN_BUGS),
        ];
        for (d, table) in known {
            let ids: Vec<&str> = table.iter().map(|(id, _)| *id).collect();
            let injectable: Vec<&str> = d
                .bugs()
                .iter()
                .filter(|b| b.is_injectable())
                .map(|b| b.id)
                .collect();
            assert_eq!(ids, injectable, "{d}");
        }
        for (d, b) in catalogue() {
            let mut s = DesignSpec::new(d);
            s.bugs.push(b.id.to_string());
            s.era = bug_era(d, b);
            assert_eq!(s.validate().is_ok(), b.is_injectable(), "{}", b.id);
            if b.is_injectable() {
                let built = s.build().expect("a design");
                assert_eq!(built.name(), d.name());
                let bugs = built.config().into_iter().find(|(k, _)| *k == "bugs");
                assert_eq!(bugs.map(|(_, v)| v), Some(b.id.to_string()));
            }
        }
    }

    #[test]
    fn specs_round_trip_through_their_spelling() {
        for text in [
            "chain-2010",
            "chain-2010 era=2015 bug=b16",
            "single-list-2004 bug=b01",
            "prealloc-2026 bug=b23",
            "reference",
        ] {
            let s: DesignSpec = text.parse().unwrap();
            assert_eq!(s.to_string(), text);
        }
        let s: DesignSpec = "chain-2010 era=2010 bug=b03".parse().unwrap();
        assert_eq!(s.label(), "chain-2010 (era 2010, bugs b03)");
        assert_eq!(s.cli_flags(), "--design chain-2010 --era 2010 --bug b03");
        assert_eq!(
            s.replay_command(Path::new("x.ops")),
            "rmaplab run x.ops --design chain-2010 --era 2010 --bug b03"
        );
        for bad in ["", "nosuch", "chain-2010 era=1999", "chain-2010 x=1"] {
            assert!(bad.parse::<DesignSpec>().is_err(), "{bad}");
        }
        assert_eq!(
            "single-list-2004 era=2015".parse::<DesignSpec>(),
            Err("--era 2015 applies to chain-2010, not single-list-2004".to_string())
        );
        assert_eq!(
            "prealloc-2026 era=2006".parse::<DesignSpec>(),
            Err("--era 2006 applies to single-list-2004, not prealloc-2026".to_string())
        );
        let s: DesignSpec = "single-list-2004 era=2006".parse().unwrap();
        assert_eq!(s.to_string(), "single-list-2004 era=2006");
        assert_eq!(s.effective_era(), Some(Era::E2006));
        let built = s.build().unwrap();
        assert_eq!(built.config(), vec![("era", "2006".to_string())]);
        assert_eq!(
            DesignSpec::new(Design::SingleList2004).effective_era(),
            Some(Era::E2004)
        );
        assert_eq!(
            "chain-2010 era=2010 bug=b08 bug=b12"
                .parse::<DesignSpec>()
                .unwrap()
                .label(),
            "chain-2010 (era 2010, bugs b08,b12)"
        );
        assert_eq!(
            "chain-2010 bug=b01".parse::<DesignSpec>(),
            Err(
                "bug `b01` cannot be injected into chain-2010 (bugs b01) (see `rmaplab bugs`)"
                    .to_string()
            )
        );
        assert_eq!(
            "x".parse::<Design>(),
            Err(
                "unknown design `x` (expected single-list-2004, chain-2010, prealloc-2026 or \
                 reference)"
                    .to_string()
            )
        );
        assert_eq!(
            "1999".parse::<Era>(),
            Err("unknown era `1999` (expected 2004, 2006, 2010, 2015 or 2022)".to_string())
        );
    }

    #[test]
    fn selection_follows_the_bugs_and_the_era() {
        let b = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(select(&[], None, &[]).unwrap(), canonical_specs());
        let s = select(&[], None, &b(&["b16"])).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].to_string(), "chain-2010 era=2015 bug=b16");
        let s = select(&[], Some(Era::E2022), &b(&["b16"])).unwrap();
        assert_eq!(s[0].to_string(), "chain-2010 era=2022 bug=b16");
        let s = select(&[], Some(Era::E2010), &[]).unwrap();
        assert_eq!(s[0].to_string(), "chain-2010 era=2010");
        assert!(select(&[], None, &b(&["b99"])).is_err());
        // A catalogued bug that cannot be injected (b11 needs KSM).
        assert!(select(&[], None, &b(&["b11"])).is_err());
        // b02 lives in single-list-2004's era 2006.
        let s = select(&[], None, &b(&["b02"])).unwrap();
        assert_eq!(s[0].to_string(), "single-list-2004 era=2006 bug=b02");
        let s = select(&[], None, &b(&["b10"])).unwrap();
        assert_eq!(s[0].to_string(), "chain-2010 era=2010 bug=b10");
        assert!(select(&[Design::Prealloc2026], None, &b(&["b16"])).is_err());
        assert_eq!(
            select(&[Design::Prealloc2026], Some(Era::E2010), &[]),
            Err("--era 2010 applies to chain-2010, which is not selected".to_string())
        );
        // An era selects the designs that have it, and applies to those
        // of the named designs that have it.
        let s = select(&[], Some(Era::E2006), &[]).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].to_string(), "single-list-2004 era=2006");
        let s = select(
            &[Design::SingleList2004, Design::Chain2010],
            Some(Era::E2015),
            &[],
        );
        let s: Vec<String> = s.unwrap().iter().map(|s| s.to_string()).collect();
        assert_eq!(s, ["single-list-2004", "chain-2010 era=2015"]);
        assert!(select(&[Design::SingleList2004], Some(Era::E2010), &[]).is_err());
        let s = select(&[], None, &b(&["b08", "b12"])).unwrap();
        assert_eq!(s[0].to_string(), "chain-2010 era=2010 bug=b08 bug=b12");
        // A header without an era runs a named bug in its shipped era, as
        // `--bug` without `--era` does; an explicit era stays.
        for (text, era) in [
            ("chain-2010 bug=b12", Era::E2010),
            ("chain-2010 bug=b16", Era::E2015),
            ("chain-2010 era=2022 bug=b12", Era::E2022),
            ("chain-2010", Era::E2022),
        ] {
            let spec: DesignSpec = text.parse().unwrap();
            assert_eq!(spec.effective_era(), Some(era), "{text}");
        }
        let cli = &select(&[], None, &b(&["b12"])).unwrap()[0];
        let header: DesignSpec = "chain-2010 bug=b12".parse().unwrap();
        assert_eq!(cli.effective_era(), header.effective_era());
        assert_eq!(
            cli.build().unwrap().lock_model(),
            header.build().unwrap().lock_model()
        );
    }

    #[test]
    fn vma_semantics_group_the_configurations() {
        let sem = |t: &str| t.parse::<DesignSpec>().unwrap().vma_semantics();
        assert_eq!(sem("chain-2010"), sem("prealloc-2026"));
        assert_eq!(sem("chain-2010 era=2022"), Some(VmaSemantics::Linux618));
        assert_eq!(
            sem("chain-2010 era=2015"),
            Some(VmaSemantics::SingularTarget)
        );
        assert_eq!(
            sem("chain-2010 era=2010"),
            Some(VmaSemantics::AnyOrEqual2010)
        );
        assert_eq!(sem("single-list-2004"), Some(VmaSemantics::Family2004));
        assert_eq!(sem("reference"), None);
    }
}
