//! Concurrent blocks through the runner: every schedule of a block is
//! followed by the rest of the stream and checked; the block invariants
//! are reported under their names; a failure's replay command re-runs
//! exactly the failing schedule; shrinking keeps it; `corpus/blocks/`
//! passes `explore:3` on every canonical design (or fails as its header
//! says).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Mutation, Wrap};
use rmaplab::fuzz::shrink::{shrink, signature};
use rmaplab::run::corpus::{Verdict, parse_corpus};
use rmaplab::run::runner::{RunOptions, RunReport, run_all, run_design, run_spec};
use rmaplab_impls::designs::chain_2010::{Chain2010, Era};
use rmaplab_impls::designs::registry::{Design, DesignSpec, canonical_specs};
use rmaplab_ops::parse::parse;
use rmaplab_ops::{Sched, Stream};

fn stream(text: &str) -> Stream {
    parse(text).expect("test stream parses")
}

fn invariant(r: &RunReport) -> Option<&str> {
    r.failure.as_ref().map(|f| f.broken.invariant.as_str())
}

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus/blocks")
        .join(name)
}

const FORK_MIGRATE: &str = "version 2
mmap p0 0 4 rw anon
write p0 1 0x11
par
  fork p0
  migrate p0 1
end sched explore:3
read p0 1
read p1 1
";

#[test]
fn every_schedule_is_followed_by_the_rest_of_the_stream() {
    let s = stream(FORK_MIGRATE);
    let spec = DesignSpec::new(Design::Chain2010);
    let r = run_spec(&s, &spec, &RunOptions::default());
    assert!(r.passed(), "{:?}", r.failure);
    assert!(!r.capped);
    assert!(r.schedules > 5, "{}", r.schedules);
    assert_eq!(r.blocks.len(), 1);
    assert_eq!(r.blocks[0].schedules, r.schedules);
    // The report shows the first schedule: letter order, no preemption.
    assert_eq!(r.blocks[0].schedule, "! A* B*");
    let actors: Vec<Option<char>> = r.outcomes.iter().map(|o| o.actor).collect();
    assert_eq!(actors, [None, None, Some('A'), Some('B'), None, None]);
    // Two blocks multiply.
    let two = stream(&format!(
        "{FORK_MIGRATE}par\n  munmap p1 0 4\n  migrate p0 1\nend sched explore:1\n"
    ));
    let r2 = run_spec(&two, &spec, &RunOptions::default());
    assert!(r2.passed(), "{:?}", r2.failure);
    assert!(
        r2.schedules > r.schedules * 2,
        "{} vs {}",
        r2.schedules,
        r.schedules
    );
}

#[test]
fn the_cap_is_reported_and_never_a_silent_pass() {
    let s = stream(FORK_MIGRATE);
    let spec = DesignSpec::new(Design::Chain2010);
    let opts = RunOptions {
        max_schedules: 3,
        ..RunOptions::default()
    };
    let r = run_spec(&s, &spec, &opts);
    assert!(r.passed());
    assert!(r.capped);
    assert_eq!(r.schedules, 3);
    let text = rmaplab::run::report::run_text(&r, false);
    assert!(text.contains("verdict: pass (capped"), "{text}");
}

#[test]
fn stale_migration_entry_fires_on_the_head_linked_single_list() {
    let s = stream(FORK_MIGRATE);
    let r = run_spec(
        &s,
        &DesignSpec::new(Design::SingleList2004),
        &RunOptions::default(),
    );
    assert_eq!(invariant(&r), Some("stale-migration-entry"));
    let b = r.failing_block().expect("the failure is in the block");
    assert!(b.schedule.starts_with("! "), "{}", b.schedule);
    assert!(b.trace.contains("A:fork.copy#0"), "{}", b.trace);
}

#[test]
fn lock_discipline_fires_when_a_step_changes_trees_without_the_anon_vma_lock() {
    // The wrapper tells the lock model of no `vma->anon_vma`: the merge
    // back changes anon_vma trees in steps that take no anon_vma lock.
    let s = stream(
        "version 2
mmap p0 0 8 rw anon
write p0 2 0x22
mremap p0 2 2 2 to 102
par
  mremap p0 102 2 2 to 2
  migrate p0 102
end sched explore:0
",
    );
    let spec = DesignSpec::new(Design::Chain2010);
    let good = run_design(
        &s,
        Wrap::new(Chain2010::new(Era::E2022), Mutation::None),
        &spec,
        &RunOptions::default(),
    );
    assert!(good.passed(), "{:?}", good.failure);
    let bad = run_design(
        &s,
        Wrap::new(Chain2010::new(Era::E2022), Mutation::HideAnonVma),
        &spec,
        &RunOptions::default(),
    );
    assert_eq!(
        invariant(&bad),
        Some("lock-discipline"),
        "{:?}",
        bad.failure
    );
}

#[test]
fn lock_discipline_fires_when_a_walk_changes_anon_vma_structures() {
    // The wrapper's rmap_walk moves the design's epoch: a walk step that
    // holds the anon_vma lock for read changed what it guards.
    let s = stream(
        "version 2
mmap p0 0 8 rw anon
write p0 2 0x22
par
  mprotect p0 4 2 r
  swapout p0 2
end sched explore:0
",
    );
    let spec = DesignSpec::new(Design::Chain2010);
    for (mutation, want) in [
        (Mutation::None, None),
        (Mutation::WalkChanges, Some("lock-discipline")),
    ] {
        let r = run_design(
            &s,
            Wrap::new(Chain2010::new(Era::E2022), mutation),
            &spec,
            &RunOptions::default(),
        );
        assert_eq!(invariant(&r), want, "{:?}", r.failure);
        if want.is_some() {
            let f = format!("{:?}", r.failure);
            assert!(
                f.contains("actor B's walk step lock changed anon_vma"),
                "{f}"
            );
        }
    }
}

#[test]
fn mutators_are_compared_with_the_model_in_the_order_they_finished() {
    // B's write finishes before A's read in the schedule `B* A*`: the
    // model steps the write first, so the read sees its value.
    let s = stream(
        "version 2
mmap p0 0 4 rw anon
par
  read p0 1
  write p0 1 7
end sched B* A*
",
    );
    for spec in canonical_specs() {
        let r = run_spec(&s, &spec, &RunOptions::default());
        assert!(r.passed(), "{}: {:?}", spec.label(), r.failure);
        let read = r.outcomes.iter().find(|o| o.actor == Some('A')).unwrap();
        assert_eq!(read.outcome, rmaplab_ops::Outcome::Value(7));
    }
}

fn rmaplab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rmaplab"))
        .args(args)
        .output()
        .expect("rmaplab runs")
}

/// `a 'b c' d` as shell words (single quotes only, as replay lines use).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn line_with<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in\n{text}"))
}

#[test]
fn the_printed_replay_command_reruns_exactly_the_failing_schedule() {
    let file = corpus("k04-fork-vs-migrate.ops");
    let o = rmaplab(&[
        "run",
        file.to_str().unwrap(),
        "--design",
        "single-list-2004",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let first = String::from_utf8(o.stdout).unwrap();
    let replay = line_with(&first, "replay: ");
    assert!(replay.contains("--sched 8='! "), "{replay}");
    let argv = words(replay);
    assert_eq!(argv[0], "rmaplab");
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let o = rmaplab(&args);
    assert_eq!(o.status.code(), Some(1));
    let again = String::from_utf8(o.stdout).unwrap();
    for key in ["trace: ", "failing schedule ", "verdict: FAIL "] {
        assert_eq!(line_with(&first, key), line_with(&again, key), "{key}");
    }
    assert!(again.contains("1 schedule(s)"), "{again}");
    // The schedule pasted into the file as the block's `sched` does the same.
    let sched = line_with(&first, "failing schedule (block at line 8): ");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("end sched explore:3", &format!("end sched {sched}"));
    let pasted = std::env::temp_dir().join(format!("rmaplab-blocks-{}.ops", std::process::id()));
    std::fs::write(&pasted, text).unwrap();
    let o = rmaplab(&[
        "run",
        pasted.to_str().unwrap(),
        "--design",
        "single-list-2004",
    ]);
    let _ = std::fs::remove_file(&pasted);
    let third = String::from_utf8(o.stdout).unwrap();
    assert_eq!(line_with(&first, "trace: "), line_with(&third, "trace: "));
}

#[test]
fn a_strict_schedule_that_cannot_run_is_bad_input_and_the_cap_exits_4() {
    let file = corpus("k04-fork-vs-migrate.ops");
    let f = file.to_str().unwrap();
    let o = rmaplab(&[
        "run",
        f,
        "--design",
        "chain-2010",
        "--sched",
        "8=! B* A2 A9",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.contains("cannot run as written"), "{err}");
    let o = rmaplab(&["run", f, "--design", "chain-2010", "--sched", "7=explore:1"]);
    assert_eq!(o.status.code(), Some(2), "no block opens at line 7");
    let o = rmaplab(&["run", f, "--design", "chain-2010", "--max-schedules", "2"]);
    assert_eq!(o.status.code(), Some(4));
    let o = rmaplab(&["run", f, "--design", "chain-2010"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn json_reports_of_version_2_carry_actors_schedules_and_the_failing_schedule() {
    let file = corpus("k04-fork-vs-migrate.ops");
    let o = rmaplab(&["run", file.to_str().unwrap(), "--format", "json"]);
    let v: rmaplab::run::json::Report = serde_json::from_slice(&o.stdout).expect("typed report");
    assert_eq!(v.version, 2);
    let single = &v.runs[0];
    assert!(
        single
            .schedule
            .as_deref()
            .is_some_and(|s| s.starts_with("! "))
    );
    let chain = &v.runs[1];
    assert!(chain.schedules.is_some_and(|n| n > 5));
    assert_eq!(chain.schedule, None);
    let actors: Vec<Option<char>> = chain.outcomes.iter().map(|o| o.actor).collect();
    assert!(actors.contains(&Some('A')) && actors.contains(&Some('B')));
    // A version 1 stream's report is unchanged: version 1, no v2 fields.
    let v1 = corpus("../live-kernel/e3-cow-reuse.ops");
    let o = rmaplab(&["run", v1.to_str().unwrap(), "--format", "json"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("\"version\": 1"));
    assert!(
        !text.contains("schedules") && !text.contains("actor"),
        "{text}"
    );
}

#[test]
fn shrinking_keeps_the_failing_schedule_and_the_result_replays() {
    let text = "version 2
mmap p0 0 4 rw anon
mmap p0 10 2 rw anon
write p0 10 5
write p0 1 0x11
read p0 10
par
  fork p0
  migrate p0 1
  read p0 11
end sched explore:3
read p0 1
";
    let s = stream(text);
    let specs = canonical_specs();
    let want = signature(&s, &specs).expect("it fails");
    assert_eq!(want.invariant, "stale-migration-entry");
    let small = shrink(&s, &specs, &want, 2000);
    assert!(
        small.ops.len() < s.ops.len(),
        "{}",
        rmaplab_ops::print::print(&small)
    );
    assert_eq!(small.blocks.len(), 1);
    assert!(
        matches!(&small.blocks[0].sched, Sched::Steps { strict: true, .. }),
        "{}",
        rmaplab_ops::print::print(&small)
    );
    // The printed result parses back and fails the same way on the one
    // pinned schedule.
    let again = stream(&rmaplab_ops::print::print(&small));
    assert_eq!(signature(&again, &specs), Some(want));
    let (runs, _) = run_all(&again, &specs, &RunOptions::default());
    assert_eq!(runs[0].schedules, 1);
}

/// The `.ops` files of `corpus/DIR`, sorted.
fn corpus_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ops"))
        .collect();
    files.sort();
    files
}

/// Runs the file at `path` with every block under `explore:3` on each
/// configuration its header names, and checks the header's verdict, the
/// exploration complete. With `known_race_passes`, a configuration's
/// known race counts as the header's pass (a pinned schedule need not
/// take it). Whether the file has blocks (a file
/// without any is not run).
fn verdicts_under_explore_3(path: &Path, known_race_passes: bool) -> bool {
    let text = std::fs::read_to_string(path).unwrap();
    let mut file = parse_corpus(&text).unwrap();
    if file.stream.blocks.is_empty() {
        return false;
    }
    for b in &mut file.stream.blocks {
        b.sched = Sched::Explore { preemptions: 3 };
    }
    for (spec, want) in &file.expects {
        let start = std::time::Instant::now();
        let r = run_spec(&file.stream, spec, &RunOptions::default());
        let got = match &r.failure {
            None => Verdict::Pass,
            Some(f)
                if known_race_passes
                    && *want == Verdict::Pass
                    && spec.known_race(&f.broken.invariant).is_some() =>
            {
                Verdict::Pass
            }
            Some(f) => Verdict::Fail(f.broken.invariant.clone()),
        };
        assert_eq!(
            &got,
            want,
            "{} {}: {:?}",
            path.display(),
            spec.label(),
            r.failure
        );
        assert!(!r.capped, "{} {}", path.display(), spec.label());
        eprintln!(
            "{} {}: {} schedule(s), {:?}",
            path.file_name().unwrap().to_string_lossy(),
            spec.label(),
            r.schedules,
            start.elapsed()
        );
    }
    true
}

/// Every block of `corpus/blocks/` under `explore:3` on every canonical
/// design: the verdict its header states, the exploration complete.
#[test]
fn corpus_blocks_pass_explore_3_on_every_canonical_design() {
    let files = corpus_files("blocks");
    assert!(files.len() >= 5);
    for path in files {
        assert!(verdicts_under_explore_3(&path, false), "{}", path.display());
    }
}

/// Every zoo file with blocks (`corpus/zoo/`, written by `rmaplab hunt`)
/// under `explore:3`: its bug's configuration still fails as its header
/// says, and every canonical design gives its header's verdict (where
/// that is pass, the known race of its era counts as one: the pinned
/// schedule need not take it), the exploration complete.
#[test]
fn zoo_files_with_blocks_keep_their_verdicts_under_explore_3() {
    let mut with_blocks = 0;
    for path in corpus_files("zoo") {
        with_blocks += usize::from(verdicts_under_explore_3(&path, true));
    }
    assert!(with_blocks >= 1);
}

/// The eras with type-stable anon_vma slots (chain-2010 era 2010,
/// single-list-2004 era 2006: the walk's page lookup a step of its own,
/// slot-named anon_vma locks, `anon_vma_fork` in two steps, faults taking
/// what `anon_vma_prepare` locks) run every block of `corpus/blocks/` and
/// `corpus/races/` under `explore:3` without a failure their kernels did
/// not have: none at all in era 2010, at most the single list's known
/// race (`DesignSpec::known_race`) in era 2006, the exploration complete.
#[test]
fn type_stable_eras_pass_the_block_corpus_under_explore_3() {
    let specs: Vec<DesignSpec> = ["chain-2010 era=2010", "single-list-2004 era=2006"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let mut files = corpus_files("blocks");
    files.extend(corpus_files("races"));
    assert!(files.len() >= 8);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut file = parse_corpus(&text).unwrap();
        if file.stream.blocks.is_empty() {
            continue;
        }
        for b in &mut file.stream.blocks {
            b.sched = Sched::Explore { preemptions: 3 };
        }
        for spec in &specs {
            let r = run_spec(&file.stream, spec, &RunOptions::default());
            if let Some(f) = &r.failure {
                assert!(
                    spec.known_race(&f.broken.invariant).is_some(),
                    "{} {}: {}",
                    path.display(),
                    spec.label(),
                    f.broken
                );
            }
            assert!(!r.capped, "{} {}", path.display(), spec.label());
        }
    }
}
