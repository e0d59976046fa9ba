//! Host kernel against emulator: one stream run on the live kernel (the
//! backend, [`super`]) and on the emulated designs, compared op by op and
//! at every dump, PFN-free (`docs/linux-6.18.md` §12.4–12.5).
//!
//! What is compared:
//!
//! - every op's outcome, including the value of every `read`, except ops
//!   the kernel reports `unsupported` (the emulator-only `swapout`,
//!   `reclaim`, `migrate`, `fail-alloc`), and nothing from the op in which
//!   an injected allocation failure fired on (the emulator's
//!   `injected_at`; `fail-alloc` is emulator-only, so a kernel stream has
//!   none);
//! - at every dump (one per `dump` op, then the state after the last op
//!   unless the stream ends with `dump`), per process, after
//!   [`canonicalize`] on both sides: which processes are live, their VMAs
//!   in the window (start, end, perms, kind, offset) and their present pages
//!   as frame classes (`Z`, `f0`, `f1`, ... by first appearance) with map
//!   counts. Classes are only compared within one dump (§12.5: PFNs are
//!   recycled).
//!
//! Two things are not compared, deliberately:
//!
//! - pages after the emulator has run a `swapout`: its PTEs became swap
//!   entries (not present) where the kernel, which cannot be made to
//!   reclaim that page, still has it mapped; from then on presence and
//!   sharing legitimately differ. Outcomes and layouts are still compared.
//!   (`migrate` and `reclaim` change no observable: a migrated page keeps
//!   its sharing and map count, and `reclaim` frees only unmapped pages.)
//! - layouts, when [`CompareOptions::layout_is_note`] is set (the 2004
//!   design's merge rules legitimately differ from Linux 6.18): a layout
//!   difference is then a note, and so is an `mremap` outcome that differs
//!   (it depends on VMA boundaries), after which the runs have diverged and
//!   nothing later is compared.

use std::fmt;

use rmaplab_impls::state::State;
use rmaplab_ops::{Op, Outcome};

use rmaplab_impls::designs::registry::{DesignSpec, VmaSemantics, canonical_specs};

use super::KernelRun;
use crate::run::report::{CanonProc, canonicalize};
use crate::run::runner::{RunOptions, RunReport, run_spec};
use rmaplab_ops::Stream;
use rmaplab_ops::print::print_op;

/// At most this many differing page cells are spelled out per process.
const MAX_CELLS_SHOWN: usize = 6;

/// What disagrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MismatchKind {
    /// An op's outcome or the value it read.
    Outcome,
    /// The set of live processes at a dump.
    Processes,
    /// A process's VMAs in the window at a dump.
    Layout,
    /// A process's present pages, their frame classes or map counts.
    Pages,
    /// The emulator's own oracle failed (the run stopped there, so the rest
    /// of the stream was not compared).
    EmulatorFailed,
}

impl MismatchKind {
    pub fn name(self) -> &'static str {
        match self {
            MismatchKind::Outcome => "outcome",
            MismatchKind::Processes => "processes",
            MismatchKind::Layout => "layout",
            MismatchKind::Pages => "pages",
            MismatchKind::EmulatorFailed => "emulator-failed",
        }
    }
}

/// One disagreement between the host kernel and an emulated design.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Source line of the op (of the last op for the final state).
    pub line: usize,
    /// Index of the op in the stream; `None` for the state after the last
    /// op (when the stream does not end with `dump`).
    pub op_index: Option<usize>,
    /// The op's text (`dump` for a dump, `(after the last op)` for the
    /// final state).
    pub op: String,
    pub kind: MismatchKind,
    /// The process the difference is about, if one (`p1`).
    pub pid: Option<String>,
    /// What the kernel said, readable (`ok 0x1`, `0-4 4-8`, `0:f0/2 1:Z/0`).
    pub kernel: String,
    /// What the emulator said, in the same form.
    pub emulator: String,
    /// A short pointer to the first differences (page cells), if useful.
    pub detail: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: `{}`: ", self.line, self.op)?;
        match (self.kind, &self.pid) {
            (MismatchKind::Outcome, _) => f.write_str("outcome")?,
            (MismatchKind::EmulatorFailed, _) => f.write_str("the emulator's own oracle failed")?,
            (k, Some(p)) => write!(f, "{p} {}", k.name())?,
            (k, None) => f.write_str(k.name())?,
        }
        write!(
            f,
            ": kernel `{}`, emulator `{}`",
            self.kernel, self.emulator
        )?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// How to compare.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompareOptions {
    /// Layout differences (and `mremap` outcomes that follow from them)
    /// are notes, not mismatches (for `single-list-2004`).
    pub layout_is_note: bool,
}

impl CompareOptions {
    /// The options for a design: layouts are notes for the 2004 design,
    /// whose merges legitimately differ from Linux 6.18's where fork is
    /// involved (its fork children share the parent's anon_vma).
    pub fn for_spec(spec: &DesignSpec) -> CompareOptions {
        CompareOptions {
            layout_is_note: spec.vma_semantics() == Some(VmaSemantics::Family2004),
        }
    }
}

/// The result of comparing one design's run with the kernel's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub mismatches: Vec<Mismatch>,
    /// Differences that are expected and not counted (layouts under
    /// `layout_is_note`, parts not compared and why).
    pub notes: Vec<String>,
    /// The layout differences behind the layout notes, in [`Mismatch`]
    /// form (for reports that show them at their dump).
    pub noted: Vec<Mismatch>,
    /// Ops whose outcomes were compared.
    pub ops_compared: usize,
    /// Ops skipped because the kernel reports them `unsupported`.
    pub ops_unsupported: usize,
    /// Dumps compared.
    pub dumps_compared: usize,
}

impl Diff {
    pub fn agrees(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Compares a kernel run with an emulator run of the same stream; every
/// disagreement, in stream order (outcomes first, then dumps).
pub fn compare(stream: &Stream, kernel: &KernelRun, emu: &RunReport) -> Vec<Mismatch> {
    compare_with(stream, kernel, emu, CompareOptions::default()).mismatches
}

/// [`compare`] with options, notes and counts.
pub fn compare_with(
    stream: &Stream,
    kernel: &KernelRun,
    emu: &RunReport,
    opts: CompareOptions,
) -> Diff {
    let mut diff = Diff::default();
    let line_of = |i: usize| stream.lines.get(i).copied().unwrap_or(0);
    let text_of = |i: usize| stream.ops.get(i).map(print_op).unwrap_or_default();

    // Nothing is compared from this op on: an injected allocation failure
    // fired there, or (layout_is_note) the runs diverged there.
    let mut limit = emu.injected_at.unwrap_or(usize::MAX);
    if let Some(i) = emu.injected_at {
        diff.notes.push(format!(
            "line {}: an injected allocation failure fired in the emulator at `{}`; nothing \
             from there on is compared",
            line_of(i),
            text_of(i)
        ));
    }

    // Outcomes.
    let n = stream.ops.len().min(kernel.outcomes.len());
    for i in 0..n.min(limit) {
        let k = kernel.outcomes[i];
        if k == Outcome::Unsupported {
            diff.ops_unsupported += 1;
            continue;
        }
        let Some(rec) = emu.outcomes.iter().find(|r| r.index == i) else {
            // The emulator stopped before this op (its failure is reported
            // below) or did not record outcomes.
            break;
        };
        diff.ops_compared += 1;
        if rec.outcome == k {
            continue;
        }
        let op = &stream.ops[i];
        if opts.layout_is_note && matches!(op, Op::Mremap { .. }) {
            diff.notes.push(format!(
                "line {}: `{}` gives `{k}` on the kernel but `{}` on {} (mremap outcomes depend \
                 on VMA boundaries, which differ); not compared further",
                line_of(i),
                print_op(op),
                rec.outcome,
                emu.design
            ));
            limit = i;
            break;
        }
        diff.mismatches.push(Mismatch {
            line: line_of(i),
            op_index: Some(i),
            op: print_op(op),
            kind: MismatchKind::Outcome,
            pid: op.pid().map(|p| p.to_string()),
            kernel: k.to_string(),
            emulator: rec.outcome.to_string(),
            detail: String::new(),
        });
    }

    // Dumps: the k-th `dump` op, then the final state.
    let first_swapout = stream
        .ops
        .iter()
        .position(|o| matches!(o, Op::Swapout { .. }));
    let mut positions: Vec<Option<usize>> = stream
        .ops
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Op::Dump))
        .map(|(i, _)| Some(i))
        .collect();
    if !matches!(stream.ops.last(), Some(Op::Dump)) {
        positions.push(None);
    }
    let mut swap_noted = false;
    for ((pos, kstate), edump) in positions.iter().zip(&kernel.dumps).zip(&emu.dumps) {
        let at = pos.unwrap_or(stream.ops.len());
        if at >= limit || (pos.is_none() && limit != usize::MAX) {
            break;
        }
        let (line, op) = match pos {
            Some(i) => (line_of(*i), text_of(*i)),
            None => (
                line_of(stream.ops.len().saturating_sub(1)),
                "(after the last op)".to_string(),
            ),
        };
        let pages_too = first_swapout.is_none_or(|s| s >= at);
        if !pages_too && !swap_noted {
            swap_noted = true;
            let s = first_swapout.unwrap_or(0);
            diff.notes.push(format!(
                "line {}: `{}` is emulator-only: from there on the emulator's pages are swapped \
                 out where the kernel's are still mapped, so pages are not compared at later \
                 dumps (outcomes and layouts are)",
                line_of(s),
                text_of(s)
            ));
        }
        diff.dumps_compared += 1;
        let cx = DumpCx {
            line,
            op_index: *pos,
            op: &op,
            design: &emu.design,
            pages: pages_too,
            opts,
        };
        cx.compare_states(kstate, &edump.state, &mut diff);
    }

    if let Some(f) = &emu.failure {
        let i = f.op_index;
        diff.mismatches.push(Mismatch {
            line: f.line,
            op_index: i,
            op: i.map(text_of).unwrap_or_else(|| "(teardown)".into()),
            kind: MismatchKind::EmulatorFailed,
            pid: f.broken.pid.map(|p| p.to_string()),
            kernel: "-".into(),
            emulator: f.broken.to_string(),
            detail: String::new(),
        });
    }
    diff
}

/// Where one dump is, for its mismatches.
struct DumpCx<'a> {
    line: usize,
    op_index: Option<usize>,
    op: &'a str,
    design: &'a str,
    pages: bool,
    opts: CompareOptions,
}

impl DumpCx<'_> {
    fn mismatch(&self, kind: MismatchKind, pid: Option<&str>, k: String, e: String) -> Mismatch {
        Mismatch {
            line: self.line,
            op_index: self.op_index,
            op: self.op.to_string(),
            kind,
            pid: pid.map(str::to_string),
            kernel: k,
            emulator: e,
            detail: String::new(),
        }
    }

    fn compare_states(&self, kernel: &State, emu: &State, diff: &mut Diff) {
        let kc = canonicalize(kernel);
        let ec = canonicalize(emu);
        let names = |c: &[CanonProc]| c.iter().map(|p| p.pid.clone()).collect::<Vec<_>>();
        if names(&kc) != names(&ec) {
            diff.mismatches.push(self.mismatch(
                MismatchKind::Processes,
                None,
                names(&kc).join(" "),
                names(&ec).join(" "),
            ));
        }
        for k in &kc {
            let Some(e) = ec.iter().find(|e| e.pid == k.pid) else {
                continue;
            };
            if k.vmas != e.vmas {
                let (kt, et) = (vmas_text(&k.vmas), vmas_text(&e.vmas));
                if self.opts.layout_is_note {
                    diff.notes.push(format!(
                        "line {} `{}`: {} lays out {} as {et}, the kernel as {kt}",
                        self.line, self.op, self.design, k.pid
                    ));
                    diff.noted
                        .push(self.mismatch(MismatchKind::Layout, Some(&k.pid), kt, et));
                } else {
                    diff.mismatches
                        .push(self.mismatch(MismatchKind::Layout, Some(&k.pid), kt, et));
                }
            }
            if self.pages && k.pages != e.pages {
                let mut m = self.mismatch(
                    MismatchKind::Pages,
                    Some(&k.pid),
                    pages_text(&k.pages),
                    pages_text(&e.pages),
                );
                m.detail = cell_diff(&k.pages, &e.pages);
                diff.mismatches.push(m);
            }
        }
    }
}

/// `0-4 4-8:r--p 8-12:rw-s:shared:0` (the corpus header notation).
pub fn vmas_text(vmas: &[(u64, u64, String, String, u64)]) -> String {
    let v: Vec<String> = vmas
        .iter()
        .map(|(s, e, perms, kind, off)| {
            if kind == "anon" && *off == 0 {
                if perms == "rw-p" {
                    format!("{s}-{e}")
                } else {
                    format!("{s}-{e}:{perms}")
                }
            } else {
                format!("{s}-{e}:{perms}:{kind}:{off}")
            }
        })
        .collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(" ")
    }
}

/// `0:f0/2 1:Z/0` (the corpus header notation).
pub fn pages_text(pages: &[(u64, String, u32)]) -> String {
    if pages.is_empty() {
        return "(none)".into();
    }
    pages
        .iter()
        .map(|(p, c, n)| format!("{p}:{c}/{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first differing cells: `page 1: kernel f1/1, emulator f1/2; page 3:
/// kernel absent, emulator Z/0`.
fn cell_diff(k: &[(u64, String, u32)], e: &[(u64, String, u32)]) -> String {
    use std::collections::BTreeMap;
    let km: BTreeMap<u64, (&str, u32)> = k.iter().map(|(p, c, n)| (*p, (c.as_str(), *n))).collect();
    let em: BTreeMap<u64, (&str, u32)> = e.iter().map(|(p, c, n)| (*p, (c.as_str(), *n))).collect();
    let mut pages: Vec<u64> = km.keys().chain(em.keys()).copied().collect();
    pages.sort_unstable();
    pages.dedup();
    let cell = |c: Option<&(&str, u32)>| match c {
        Some((class, n)) => format!("{class}/{n}"),
        None => "absent".into(),
    };
    let diffs: Vec<String> = pages
        .iter()
        .filter(|p| km.get(p) != em.get(p))
        .map(|p| {
            format!(
                "page {p}: kernel {}, emulator {}",
                cell(km.get(p)),
                cell(em.get(p))
            )
        })
        .collect();
    let more = diffs.len().saturating_sub(MAX_CELLS_SHOWN);
    let mut s = diffs
        .into_iter()
        .take(MAX_CELLS_SHOWN)
        .collect::<Vec<_>>()
        .join("; ");
    if more > 0 {
        s.push_str(&format!("; {more} more"));
    }
    s
}

/// One design's run of a stream and its comparison with the kernel's.
#[derive(Clone, Debug)]
pub struct SpecDiff {
    pub spec: DesignSpec,
    pub run: RunReport,
    pub diff: Diff,
}

/// A stream run on the kernel and on each design.
#[derive(Clone, Debug)]
pub struct KernelDiff {
    pub kernel: KernelRun,
    pub per_spec: Vec<SpecDiff>,
}

impl KernelDiff {
    pub fn agrees(&self) -> bool {
        self.per_spec.iter().all(|s| s.diff.agrees())
    }

    /// Every mismatch, labelled with its design.
    pub fn mismatches(&self) -> Vec<(String, &Mismatch)> {
        self.per_spec
            .iter()
            .flat_map(|s| s.diff.mismatches.iter().map(|m| (s.spec.label(), m)))
            .collect()
    }
}

/// Runs `stream` on each design (recording outcomes and dumps, with the
/// oracle on) and compares each run with `kernel`.
pub fn compare_specs(stream: &Stream, kernel: &KernelRun, specs: &[DesignSpec]) -> Vec<SpecDiff> {
    specs
        .iter()
        .map(|spec| {
            let run = run_spec(stream, spec, &RunOptions::default());
            let diff = compare_with(stream, kernel, &run, CompareOptions::for_spec(spec));
            SpecDiff {
                spec: spec.clone(),
                run,
                diff,
            }
        })
        .collect()
}

/// Runs `stream` on the host kernel (this thread's backend,
/// [`super::run_on_kernel`]) and on each design; the mismatches per
/// design. `Err` when the kernel run itself failed (host cannot serve, a
/// puppet died, an errno the op language cannot name).
pub fn run_and_compare(stream: &Stream, specs: &[DesignSpec]) -> Result<KernelDiff, String> {
    let kernel = super::run_on_kernel(&stream.ops)?;
    let per_spec = compare_specs(stream, &kernel, specs);
    Ok(KernelDiff { kernel, per_spec })
}

/// The designs `rmaplab kernel` compares with by default: every canonical
/// design whose default configuration has Linux 6.18's VMA semantics (the
/// host's), i.e. chain-2010 (era 2022) and prealloc-2026.
pub fn default_specs() -> Vec<DesignSpec> {
    canonical_specs()
        .into_iter()
        .filter(|s| s.vma_semantics() == Some(VmaSemantics::Linux618))
        .collect()
}
