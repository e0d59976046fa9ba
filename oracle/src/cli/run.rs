//! `rmaplab run`, `check`, `fmt`, `bugs` and `steps`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rmaplab::oracle::check::invariant;
use rmaplab::run::report;
use rmaplab::run::runner::{RunOptions, RunReport, run_all};
use rmaplab_impls::designs::registry::{DesignSpec, catalogue};
use rmaplab_ops::Stream;
use rmaplab_ops::print::print;

use super::{EXIT_BAD_INPUT, EXIT_FAIL, load, usage_error};

/// Exit status of a run that failed nothing but was not explored in full
/// (the schedule cap stopped it): never 0, so that no script takes it for
/// a full pass.
pub const EXIT_CAPPED: u8 = 4;

/// What `rmaplab run` does beyond the file and the designs.
#[derive(Clone, Debug, Default)]
pub struct RunArgs {
    pub json: bool,
    pub stats: bool,
    /// `--sched LINE=SCHED`: the block whose `par` is on LINE runs SCHED
    /// instead of its own.
    pub scheds: Vec<String>,
    /// `--max-schedules N`.
    pub max_schedules: Option<u64>,
}

/// `rmaplab run`.
pub fn run(path: &Path, specs: &[DesignSpec], args: &RunArgs) -> ExitCode {
    let mut stream = match load(path) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    for o in &args.scheds {
        if let Err(e) = pin_schedule(&mut stream, o) {
            return usage_error(&format!("--sched {o}: {e}"));
        }
    }
    let mut opts = RunOptions::default();
    if let Some(n) = args.max_schedules {
        opts.max_schedules = n.max(1);
    }
    // One run_all, as the engines run them (designs of the same VMA
    // semantics are compared after every op: `layout`).
    let (mut runs, cmp) = run_all(&stream, specs, &opts);
    // A strict schedule that cannot be followed is bad input.
    if let Some(f) = runs
        .iter()
        .filter_map(|r| r.failure.as_ref())
        .find(|f| f.broken.invariant == invariant::SCHEDULE)
    {
        return usage_error(&format!(
            "{}:{}: {}",
            path.display(),
            f.line,
            f.broken.detail
        ));
    }
    for (spec, r) in specs.iter().zip(&mut runs) {
        let cmd = replay(path, spec, specs, r);
        if let Some(f) = &mut r.failure {
            f.broken.detail = format!("{}\nreplay: {cmd}", f.broken.detail);
        }
    }
    if args.json {
        let v = report::report_json_version(&runs, &cmp, args.stats, stream.version);
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("JSON values always serialise")
        );
    } else {
        print!("{}", report::report_text(&runs, &cmp, args.stats));
    }
    if !runs.iter().all(|r| r.passed()) || cmp.failure.is_some() {
        ExitCode::from(EXIT_FAIL)
    } else if runs.iter().any(|r| r.capped) {
        ExitCode::from(EXIT_CAPPED)
    } else {
        ExitCode::SUCCESS
    }
}

/// Applies `--sched LINE=SCHED`: the block whose `par` (or one-line
/// block) is on LINE runs SCHED.
pub fn pin_schedule(stream: &mut Stream, arg: &str) -> Result<(), String> {
    let (line, text) = arg
        .split_once('=')
        .ok_or("expected LINE=SCHED (LINE: the line of the block's `par`)")?;
    let line: usize = line
        .trim()
        .parse()
        .map_err(|_| format!("`{line}` is not a line number"))?;
    let sched = rmaplab::run::runner::parse_sched(text)?;
    let b = stream
        .blocks
        .iter_mut()
        .find(|b| b.line == line)
        .ok_or_else(|| format!("no block opens at line {line}"))?;
    b.sched = sched;
    Ok(())
}

/// The command that replays `run`'s failure: `spec` alone, or for
/// `layout` with the designs of the same semantics it was compared with;
/// every block on the failing path pinned to the schedule it ran
/// (`--sched LINE='...'`).
fn replay(path: &Path, spec: &DesignSpec, specs: &[DesignSpec], run: &RunReport) -> String {
    let layout = run
        .failure
        .as_ref()
        .is_some_and(|f| f.broken.invariant == invariant::LAYOUT);
    let mut cmd = if !layout {
        spec.replay_command(path)
    } else {
        let designs: Vec<String> = specs
            .iter()
            .filter(|s| s.vma_semantics() == spec.vma_semantics())
            .map(|s| format!("--design {}", s.design))
            .collect();
        format!("rmaplab run {} {}", path.display(), designs.join(" "))
    };
    for b in &run.blocks {
        cmd.push_str(&format!(" --sched {}='{}'", b.line, b.schedule));
    }
    cmd
}

/// `rmaplab steps`: the step names each op kind can produce in a block.
pub fn steps() -> ExitCode {
    print!("{}", steps_text());
    ExitCode::SUCCESS
}

/// One line per op kind, then what each step name means.
pub fn steps_text() -> String {
    use rmaplab_ops::Op;
    let examples = [
        "mmap p0 0 1 rw anon",
        "munmap p0 0 1",
        "mprotect p0 0 1 r",
        "mremap p0 0 1 1",
        "madvise p0 0 1 dontneed",
        "fork p0",
        "exit p0",
        "read p0 0",
        "write p0 0 1",
        "swapout p0 0",
        "migrate p0 0",
        "referenced p0 0",
        "reclaim",
        "exec-stack p0 0 1",
        "exec-shift p0 1",
    ];
    let mut out = String::from(
        "Step names per op kind in a concurrent block (`#i` numbers a family: #0, #1, ...).\n\
         Schedules name them in `X..LABEL`; reports print them in traces.\n\n",
    );
    for text in examples {
        let stream: Stream = format!("version 2\n{text}\n")
            .parse()
            .expect("the examples parse");
        let op: Op = stream.ops[0];
        let names = rmaplab_impls::mmu::step_names(&op);
        out.push_str(&format!("{:<11} {}\n", op.keyword(), names.join(" ")));
    }
    out.push('\n');
    for (name, what) in STEP_MEANINGS {
        out.push_str(&format!("{name:<17} {what}\n"));
    }
    out
}

/// What each step name means (the split mutator's yield points, the walk
/// steps, the atomic actors).
const STEP_MEANINGS: &[(&str, &str)] = &[
    (
        "mremap.lookup",
        "mremap up to write-locking its source VMA (eras with per-VMA locks, 6.4+)",
    ),
    (
        "merge.lookup",
        "a merge up to write-locking the VMAs it changes (per-VMA-lock eras)",
    ),
    (
        "merge.publish",
        "a merge's dup_anon_vma sets dst->anon_vma (per-VMA-lock eras; b18b: before dst is write-locked)",
    ),
    (
        "merge.clone",
        "a merge's dup_anon_vma links dst to src's anon_vmas (anon_vma_clone, MERGE_UNFAULTED)",
    ),
    (
        "split.lookup",
        "a split up to write-locking the VMA it cuts (per-VMA-lock eras)",
    ),
    (
        "unmap.gather",
        "munmap up to write-locking the VMAs it detaches (per-VMA-lock eras)",
    ),
    (
        "modify.lookup",
        "mprotect/madvise up to write-locking the VMA whose flags change (per-VMA-lock eras)",
    ),
    (
        "fork.lookup",
        "fork up to write-locking the parent's VMAs (per-VMA-lock eras)",
    ),
    (
        "merge.prepare",
        "a merge's dup_anon_vma, before the VMA bounds change (only where vma_adjust ran unlocked: x1)",
    ),
    (
        "merge.commit",
        "a merge's commit: VMA bounds and anon_vma set under the anon_vma lock",
    ),
    (
        "merge.remove#i",
        "a VMA the merge absorbed is removed (unlinked from its anon_vmas)",
    ),
    (
        "unmap.zap#i",
        "the page tables of one VMA being unmapped are zapped (PTLs only)",
    ),
    (
        "unmap.unlink#i",
        "one unmapped VMA is unlinked from its anon_vmas and freed",
    ),
    (
        "copy_vma",
        "mremap's new VMA is made and linked to the anon_vmas (copy_vma)",
    ),
    (
        "move_ptes#i",
        "one extent of page tables moved (move_ptes; the era's granularity)",
    ),
    (
        "move_ptes.clear#i",
        "a migration entry cleared at its old place, not yet set at the new (PTL held; eras that peek before the PTL)",
    ),
    (
        "exec.lookup",
        "exec-shift write-locks the stack VMA (vma_start_write; per-VMA-lock eras)",
    ),
    (
        "exec.expand",
        "exec-shift's vma_expand: the stack covers old and new range, pgoff kept (anon_vma lock)",
    ),
    (
        "exec.shrink",
        "exec-shift's vma_shrink to the new range, after its page tables moved (anon_vma lock)",
    ),
    (
        "fork.alloc#i",
        "anon_vma_fork's first half: clone the chain, allocate the child's anon_vma (type-stable eras: a reused slot keeps its old root)",
    ),
    (
        "fork.anon_vma#i",
        "fork links one child VMA to the parent's anon_vmas (anon_vma_fork; type-stable eras: sets the root, links)",
    ),
    (
        "fork.copy#i",
        "fork copies one VMA's page tables (copy_page_range)",
    ),
    (
        "end",
        "the split mutator's last step, from its last yield point to the end of the op",
    ),
    (
        "lookup",
        "swapout reads page->mapping and page_mapped under RCU, before locking (type-stable eras)",
    ),
    ("lock", "a walk takes the anon_vma lock of its era"),
    (
        "visit#i",
        "a walk visits one candidate VMA under its page-table lock",
    ),
    ("unlock", "a walk drops the anon_vma lock"),
    (
        "w1.*, w2.*",
        "migration's first walk (install migration entries) and second (remove_migration_ptes)",
    ),
    (
        "copy",
        "migration copies the page between its two walks (the page lock held)",
    ),
    (
        "read, write, reclaim",
        "a fault (eras without per-VMA locks) or reclaim, and any further mutator (its keyword): one step",
    ),
    (
        "fault.lookup",
        "a fault finds its VMA without mmap_lock (lock_vma_under_rcu; b18a: and tests vma->anon_vma)",
    ),
    (
        "fault.lock",
        "the fault takes the VMA read lock, or falls back to mmap_lock if the VMA is write-locked or gone",
    ),
    (
        "fault.prepare",
        "a write fault gives the VMA an anon_vma: mmap_read_trylock, else retry under mmap_lock",
    ),
    (
        "fault.install",
        "the fault maps its page under the VMA read lock and the page-table lock, then drops both",
    ),
    (
        "fault.mmap",
        "the whole fault under mmap_lock for read (the fallback)",
    ),
];

/// `rmaplab check`: parse only.
pub fn check(files: &[PathBuf]) -> ExitCode {
    let mut bad = false;
    for f in files {
        match load(f) {
            Ok(s) => println!("{}: ok, {} ops", f.display(), s.ops.len()),
            Err(e) => {
                eprintln!("{e}");
                bad = true;
            }
        }
    }
    if bad {
        ExitCode::from(EXIT_BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    }
}

/// `rmaplab fmt`: canonical print.
pub fn fmt(path: &Path) -> ExitCode {
    match load(path) {
        Ok(s) => {
            print!("{}", print(&s));
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(&e),
    }
}

/// `rmaplab bugs`: one row per bug, columns as wide as their longest
/// entry; the commit and the reason a bug cannot be injected go under the
/// title.
pub fn bugs() -> ExitCode {
    print!("{}", bugs_table());
    ExitCode::SUCCESS
}

fn bugs_table() -> String {
    let catalogue = catalogue();
    let rows: Vec<_> = catalogue
        .iter()
        .map(|(design, b)| {
            (
                [
                    b.id.to_string(),
                    design.name().to_string(),
                    b.era.unwrap_or("-").to_string(),
                    b.years.to_string(),
                    b.invariant.to_string(),
                ],
                b,
            )
        })
        .collect();
    let head = ["id", "design", "era", "years", "invariant"];
    let mut widths = head.map(|h| h.chars().count());
    for (cols, _) in &rows {
        for (w, c) in widths.iter_mut().zip(cols) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[&str], last: &str| {
        let mut l = String::new();
        for (c, w) in cols.iter().zip(widths) {
            l.push_str(&format!("{c:<w$}  "));
        }
        l.push_str(last);
        l.push('\n');
        l
    };
    let blank = [""; 5];
    let mut out = line(&head, "title / commit / injectable");
    for (cols, b) in &rows {
        let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
        out.push_str(&line(&cols, b.title));
        out.push_str(&line(&blank, &format!("commit {}", b.commit)));
        if !b.needs.is_empty() {
            out.push_str(&line(
                &blank,
                &format!(
                    "with {}: shows only with it injected too (`hunt --bug {}` injects it)",
                    b.needs.join(", "),
                    b.id
                ),
            ));
        }
        if let Some(why) = b.why_not() {
            out.push_str(&line(&blank, &format!("not injectable: {why}")));
        }
    }
    out
}

#[cfg(test)]
mod steps_tests {
    use super::STEP_MEANINGS;
    use rmaplab_ops::{Op, Stream};

    /// Every step `rmaplab steps` lists for an op kind has a meaning: an
    /// entry of its name, its `#i` family, or a group (`w1.*, w2.*`,
    /// `read, write, reclaim`).
    #[test]
    fn every_listed_step_has_a_meaning() {
        let means = |name: &str| {
            STEP_MEANINGS.iter().any(|(key, what)| {
                !what.is_empty()
                    && key.split(", ").any(|k| {
                        k == name || k.strip_suffix('*').is_some_and(|p| name.starts_with(p))
                    })
            })
        };
        let text = "version 2\nmmap p0 0 1 rw anon\nmunmap p0 0 1\nmprotect p0 0 1 r\n\
                    mremap p0 0 1 1\nmadvise p0 0 1 dontneed\nfork p0\nexit p0\nread p0 0\n\
                    write p0 0 1\nswapout p0 0\nmigrate p0 0\nreferenced p0 0\nreclaim\n";
        let s: Stream = text.parse().expect("parses");
        let ops: &[Op] = &s.ops;
        assert_eq!(ops.len(), 13);
        for op in ops {
            for name in rmaplab_impls::mmu::step_names(op) {
                assert!(means(name), "{}: step {name} has no meaning", op.keyword());
            }
        }
    }
}
