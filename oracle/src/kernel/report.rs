//! The text of `rmaplab kernel FILE`: every op's outcome on the host kernel
//! and on each design side by side, at every dump the kernel's state and
//! per design what differs (or `same`), then a summary per design and the
//! verdict.

use std::fmt::Write as _;

use rmaplab_impls::designs::registry::DesignSpec;
use rmaplab_impls::state::State;
use rmaplab_ops::{Op, Outcome};

use super::diff::{KernelDiff, MismatchKind};
use crate::run::report::state_text;
use rmaplab_ops::Stream;
use rmaplab_ops::print::print_op;

/// The report of `kd`, the run of `stream` (read from `file`) on `host`
/// and on `specs`.
pub fn report_text(
    file: &str,
    host: &str,
    stream: &Stream,
    specs: &[DesignSpec],
    kd: &KernelDiff,
) -> String {
    let mut out = String::new();
    let labels: Vec<String> = specs.iter().map(DesignSpec::label).collect();
    let _ = writeln!(
        out,
        "{}: {} ops on {} (this host) against {}",
        file,
        stream.ops.len(),
        host,
        labels.join(", ")
    );
    let mut head = format!("{:>5}  {:<36} {:<14}", "line", "op", "kernel");
    for l in &labels {
        head.push_str(&format!(" {l:<14}"));
    }
    let _ = writeln!(out, "{}", head.trim_end());
    let mut kdumps = kd.kernel.dumps.iter();
    for (i, op) in stream.ops.iter().enumerate() {
        let k = kd.kernel.outcomes.get(i).copied();
        let mut row = format!(
            "{:>5}  {:<36} {:<14}",
            stream.lines[i],
            print_op(op),
            k.map_or("-".into(), |o| o.to_string())
        );
        let mut differs = false;
        for sd in &kd.per_spec {
            let e = sd.run.outcomes.iter().find(|r| r.index == i);
            row.push_str(&format!(
                " {:<14}",
                e.map_or("-".into(), |r| r.outcome.to_string())
            ));
            differs |= sd
                .diff
                .mismatches
                .iter()
                .any(|m| m.op_index == Some(i) && m.kind == MismatchKind::Outcome);
        }
        if k == Some(Outcome::Unsupported) {
            row.push_str(" (skipped: emulator-only)");
        } else if differs {
            row.push_str(" <- differs");
        }
        let _ = writeln!(out, "{}", row.trim_end());
        if matches!(op, Op::Dump)
            && let Some(state) = kdumps.next()
        {
            dump_text(&mut out, kd, Some(i), state);
        }
    }
    if !matches!(stream.ops.last(), Some(Op::Dump))
        && let Some(state) = kdumps.next()
    {
        let _ = writeln!(out, "final state (kernel):");
        dump_text(&mut out, kd, None, state);
    }
    out.push('\n');
    for sd in &kd.per_spec {
        let d = &sd.diff;
        if d.agrees() {
            let _ = writeln!(
                out,
                "{}: agrees with the kernel ({} outcome(s) and {} dump(s) compared, {} \
                 emulator-only op(s) skipped)",
                sd.spec.label(),
                d.ops_compared,
                d.dumps_compared,
                d.ops_unsupported
            );
        } else {
            let _ = writeln!(
                out,
                "{}: {} mismatch(es)",
                sd.spec.label(),
                d.mismatches.len()
            );
            for m in &d.mismatches {
                let _ = writeln!(out, "  {m}");
            }
        }
        for n in &d.notes {
            let _ = writeln!(out, "  note: {n}");
        }
    }
    if kd.agrees() {
        out.push_str("verdict: agree\n");
    } else {
        out.push_str("verdict: MISMATCH\n");
    }
    out
}

/// A dump position's state (`None`: the final state) and, per design,
/// what differs there.
fn dump_text(out: &mut String, kd: &KernelDiff, pos: Option<usize>, state: &State) {
    for line in state_text(state).lines() {
        let _ = writeln!(out, "       {line}");
    }
    for sd in &kd.per_spec {
        let ms: Vec<_> = sd
            .diff
            .mismatches
            .iter()
            .filter(|m| {
                m.op_index == pos
                    && !matches!(m.kind, MismatchKind::Outcome | MismatchKind::EmulatorFailed)
            })
            .collect();
        let noted: Vec<_> = sd.diff.noted.iter().filter(|m| m.op_index == pos).collect();
        if ms.is_empty() && noted.is_empty() {
            let _ = writeln!(out, "       = {}: same", sd.spec.label());
        }
        for m in noted {
            let who = m
                .pid
                .as_deref()
                .map(|p| format!("{p} "))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "       ~ {}: {who}{} (a note, not a mismatch: its merge rules are not \
                 Linux 6.18's): kernel {}, emulator {}",
                sd.spec.label(),
                m.kind.name(),
                m.kernel,
                m.emulator
            );
        }
        for m in ms {
            let who = m
                .pid
                .as_deref()
                .map(|p| format!("{p} "))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "       ≠ {}: {who}{}: kernel {}, emulator {}",
                sd.spec.label(),
                m.kind.name(),
                m.kernel,
                m.emulator
            );
            if !m.detail.is_empty() {
                let _ = writeln!(out, "           {}", m.detail);
            }
        }
    }
}
