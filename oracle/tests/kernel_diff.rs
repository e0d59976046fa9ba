//! Host kernel against emulator (`rmaplab::kernel::diff`).
//!
//! - Every measured case under `corpus/live-kernel/` is run on the host
//!   kernel and on the default emulated designs; they must agree on every
//!   outcome and at every dump, and the kernel must also show the file's
//!   expected snapshots (its general `dump N:`/`final:` lines, which the
//!   corpus test checks against the emulator). Without a kernel that can
//!   serve, the emulator side is still checked against the snapshots.
//! - A fixed-seed batch of random decoder streams (the live-kernel decoder
//!   configuration, no emulator-only ops) agrees between kernel and
//!   emulator.
//! - `compare` on synthetic runs finds a differing outcome, class and map
//!   count, and skips what it must skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use rmaplab::kernel::diff::{
    CompareOptions, MismatchKind, compare, compare_specs, compare_with, default_specs,
    run_and_compare,
};
use rmaplab::kernel::{KernelRun, host_can_serve};
use rmaplab::run::corpus::{DumpRef, parse_corpus};
use rmaplab::run::report::canonicalize;
use rmaplab::run::runner::{DumpRecord, OpRecord, RunReport, RunStats, run_spec};
use rmaplab_impls::designs::registry::{Design, DesignSpec};
use rmaplab_impls::state::{FrameRef, MapKind, ProcState, State, VmaLine};
use rmaplab_ops::Stream;
use rmaplab_ops::decode::{DecodeConfig, decode};
use rmaplab_ops::parse::parse;
use rmaplab_ops::print::print;
use rmaplab_ops::{Errno, Op, Outcome, Pid};

fn serves() -> bool {
    match host_can_serve() {
        Ok(()) => true,
        Err(e) => {
            println!("host kernel not compared (the host cannot serve: {e})");
            false
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    rmaplab::fuzz::engine::collect_ops(dir, out);
}

/// The normalised `vmas`/`pages` text of every process at every dump, as
/// corpus headers state them.
fn observed(state: &State) -> BTreeMap<(String, String), String> {
    let mut m = BTreeMap::new();
    for p in canonicalize(state) {
        let vmas: Vec<String> = p
            .vmas
            .iter()
            .map(|(s, e, perms, kind, off)| format!("{s}-{e}:{perms}:{kind}:{off}"))
            .collect();
        let pages: Vec<String> = p
            .pages
            .iter()
            .map(|(pg, c, n)| format!("{pg}:{c}/{n}"))
            .collect();
        m.insert((p.pid.clone(), "vmas".into()), vmas.join(" "));
        m.insert((p.pid.clone(), "pages".into()), pages.join(" "));
    }
    m
}

/// The general (Linux 6.18) snapshot lines of a corpus file that the
/// kernel's dumps contradict.
fn snapshot_problems(text: &str, kernel: &KernelRun) -> Vec<String> {
    let file = match parse_corpus(text) {
        Ok(f) => f,
        Err(e) => return vec![format!("bad corpus header: {e}")],
    };
    let dump_ops = file
        .stream
        .ops
        .iter()
        .filter(|o| matches!(o, Op::Dump))
        .count();
    let mut problems = Vec::new();
    for exp in file.dumps.iter().filter(|d| d.spec.is_none()) {
        let state = match exp.dump {
            DumpRef::Final => kernel.dumps.last(),
            DumpRef::Nth(n) if n >= 1 && n <= dump_ops => kernel.dumps.get(n - 1),
            DumpRef::Nth(_) => None,
        };
        let Some(state) = state else {
            problems.push(format!("line {}: no such dump", exp.line));
            continue;
        };
        let got = observed(state)
            .get(&(exp.pid.clone(), exp.field.clone()))
            .cloned()
            .unwrap_or_else(|| "(no such process)".into());
        if got != exp.value {
            problems.push(format!(
                "line {}: kernel {} {} at {:?}\n    expected {}\n    got      {}",
                exp.line, exp.pid, exp.field, exp.dump, exp.value, got
            ));
        }
    }
    problems
}

#[test]
fn measured_cases_agree_with_the_host_kernel() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/live-kernel");
    let mut files = Vec::new();
    collect(&root, &mut files);
    assert!(
        files.len() >= 80,
        "only {} files under {}",
        files.len(),
        root.display()
    );
    let specs = default_specs();
    assert!(specs.iter().any(|s| s.design == Design::Chain2010));
    let on_kernel = serves();
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).expect("readable corpus file");
        let stream = parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        if !on_kernel {
            // The emulator against the snapshots is the corpus test's job;
            // here: every default design runs it without an oracle failure.
            for spec in &specs {
                let run = run_spec(&stream, spec, &Default::default());
                if let Some(f) = &run.failure {
                    failures.push(format!("{name}: {}: {f}", spec.label()));
                }
            }
            continue;
        }
        let kd = match run_and_compare(&stream, &specs) {
            Ok(kd) => kd,
            Err(e) => {
                failures.push(format!("{name}: the kernel run failed: {e}"));
                continue;
            }
        };
        for (who, m) in kd.mismatches() {
            failures.push(format!("{name}: {who}: {m}"));
        }
        for p in snapshot_problems(&text, &kd.kernel) {
            failures.push(format!("{name}: snapshot: {p}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s) in {} files:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    if on_kernel {
        println!(
            "{} measured cases agree (host kernel and emulator)",
            files.len()
        );
    } else {
        println!(
            "{} measured cases run on the emulator without failure (host kernel not compared)",
            files.len()
        );
    }
}

/// Linux's `file_mmap_ok` for a shmem file: the mapping's end, in bytes,
/// must not exceed `MAX_LFS_FILESIZE` (2^63 - 1), else `EOVERFLOW`.
fn file_mapping_fits(off: u64, len: u64) -> bool {
    const MAX_LFS_FILESIZE: u64 = i64::MAX as u64;
    let Some(len_bytes) = len.checked_mul(4096).filter(|&b| b <= MAX_LFS_FILESIZE) else {
        return false;
    };
    off <= (MAX_LFS_FILESIZE - len_bytes) >> 12
}

/// Linux refuses a file mapping whose end lies past `MAX_LFS_FILESIZE`
/// (2^63 - 1 bytes; `file_mmap_ok` in `do_mmap` gives `EOVERFLOW`, which
/// the op language reports as `EINVAL`). Found by `rmaplab kernel --fuzz` in wide
/// mode; the reference model and the MMU now implement the rule. The
/// boundary, measured: `file:0:0x7fffffffffffe` with LEN 1 maps,
/// `0x7ffffffffffff` does not.
#[test]
fn file_offsets_past_max_lfs_filesize_are_einval() {
    assert!(file_mapping_fits(0x7_ffff_ffff_fffe, 1));
    assert!(!file_mapping_fits(0x7_ffff_ffff_ffff, 1));
    assert!(!file_mapping_fits(0x7_ffff_ffff_fffe, 2));
    if !serves() {
        return;
    }
    let s = parse(
        "mmap p0 0 1 r file:0:0x7fffffffffffe\n\
         mmap p0 10 1 r file:0:0x7ffffffffffff\n\
         mmap p0 20 1 r sfile:1:0x7ffffffffffff\n",
    )
    .expect("parses");
    let kd = run_and_compare(&s, &default_specs()).expect("kernel run");
    let einval = Outcome::Err(Errno::EINVAL);
    assert_eq!(kd.kernel.outcomes, vec![Outcome::Ok, einval, einval]);
    for sd in &kd.per_spec {
        let emu: Vec<Outcome> = sd.run.outcomes.iter().map(|r| r.outcome).collect();
        assert_eq!(emu, kd.kernel.outcomes, "{}", sd.spec.label());
        assert!(sd.diff.agrees(), "{:?}", sd.diff.mismatches);
    }
}

#[test]
fn random_streams_agree_with_the_host_kernel() {
    if !serves() {
        return;
    }
    const STREAMS: usize = 400;
    let cfg = DecodeConfig::live_kernel();
    let specs = default_specs();
    let mut rng = SmallRng::seed_from_u64(0x6b65_726e_656c);
    let mut failures = Vec::new();
    let mut agreed = 0;
    let (mut ops, mut compared, mut dumps, mut procs) = (0, 0, 0, 0);
    for n in 0..STREAMS {
        let len = rng.random_range(0..=400);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let stream = decode(&bytes, &cfg);
        assert!(!stream.ops.iter().any(Op::emulator_only));
        match run_and_compare(&stream, &specs) {
            Err(e) => failures.push(format!(
                "stream {n}: kernel run failed: {e}\n{}",
                print(&stream)
            )),
            Ok(kd) if kd.agrees() => {
                agreed += 1;
                ops += stream.ops.len();
                compared += kd.per_spec[0].diff.ops_compared;
                dumps += kd.per_spec[0].diff.dumps_compared;
                procs += kd.kernel.dumps.iter().map(|d| d.procs.len()).sum::<usize>();
            }
            Ok(kd) => {
                let ms: Vec<String> = kd
                    .mismatches()
                    .iter()
                    .map(|(who, m)| format!("  {who}: {m}"))
                    .collect();
                failures.push(format!(
                    "stream {n}:\n{}\n{}",
                    ms.join("\n"),
                    print(&stream)
                ));
            }
        }
    }
    println!(
        "{agreed} of {STREAMS} random streams agree ({ops} ops, {compared} outcomes and {dumps} dumps with {procs} process states compared \
         per design)"
    );
    assert!(
        failures.is_empty(),
        "{} of {STREAMS} streams disagree:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// compare() on synthetic runs

fn vma(start: u64, end: u64) -> VmaLine {
    VmaLine {
        start,
        end,
        perms: "rw-p".into(),
        kind: MapKind::Anon,
        offset: 0,
    }
}

/// One process `p0` with `vmas` and pages `(page, frame id, mapcount)`
/// (frame id 0 is the zero page).
fn state(vmas: Vec<VmaLine>, pages: &[(u64, u64, u32)]) -> State {
    let mut s = State::default();
    s.procs.insert(
        Pid(0),
        ProcState {
            vmas,
            pages: pages
                .iter()
                .map(|&(p, f, n)| {
                    let f = if f == 0 {
                        FrameRef::Zero
                    } else {
                        FrameRef::Frame(f)
                    };
                    (p, (f, n))
                })
                .collect(),
        },
    );
    s
}

fn emu_report(stream: &Stream, outcomes: &[Outcome], dumps: Vec<State>) -> RunReport {
    let last = stream.lines.last().copied().unwrap_or(0);
    let dump_lines: Vec<usize> = stream
        .ops
        .iter()
        .zip(&stream.lines)
        .filter(|(o, _)| matches!(o, Op::Dump))
        .map(|(_, &l)| l)
        .chain(std::iter::once(last))
        .collect();
    RunReport {
        blocks: Vec::new(),
        schedules: 0,
        capped: false,
        paths: Vec::new(),
        state: Vec::new(),
        design: "synthetic".into(),
        config: Vec::new(),
        outcomes: stream
            .ops
            .iter()
            .zip(outcomes)
            .enumerate()
            .map(|(i, (op, o))| OpRecord {
                index: i,
                line: stream.lines[i],
                op: *op,
                outcome: *o,
                actor: None,
                busy: false,
            })
            .collect(),
        dumps: dumps
            .into_iter()
            .zip(dump_lines)
            .map(|(state, line)| DumpRecord { line, state })
            .collect(),
        failure: None,
        injected_at: None,
        stats: RunStats::default(),
        executed: stream.ops.len(),
        alloc_sites: Vec::new(),
        failed_site: None,
    }
}

fn synthetic_stream() -> Stream {
    parse(
        "mmap p0 0 4 rw anon\n\
         write p0 0 1\n\
         read p0 0\n\
         read p0 1\n\
         swapout p0 0\n\
         dump\n",
    )
    .expect("parses")
}

fn ok_outcomes() -> Vec<Outcome> {
    vec![
        Outcome::Ok,
        Outcome::Ok,
        Outcome::Value(1),
        Outcome::Value(0),
        Outcome::Unsupported,
        Outcome::Ok,
    ]
}

fn ok_state() -> State {
    state(vec![vma(0, 4)], &[(0, 7, 1), (1, 0, 0)])
}

#[test]
fn compare_agrees_on_equal_runs_and_ignores_frame_identities() {
    let s = synthetic_stream();
    // The emulator's outcome for the emulator-only op is its own (`ok`):
    // skipped, as the kernel reports it `unsupported`. The emulator's page
    // 0 was swapped out: pages after a swapout are not compared.
    let mut emu_out = ok_outcomes();
    emu_out[4] = Outcome::Ok;
    let emu = emu_report(&s, &emu_out, vec![state(vec![vma(0, 4)], &[(1, 0, 0)])]);
    let kernel = KernelRun {
        outcomes: ok_outcomes(),
        dumps: vec![ok_state()],
    };
    let d = compare_with(&s, &kernel, &emu, CompareOptions::default());
    assert!(d.mismatches.is_empty(), "{:?}", d.mismatches);
    assert_eq!(d.ops_unsupported, 1);
    assert_eq!(d.ops_compared, 5);
    assert_eq!(d.dumps_compared, 1);
    assert!(
        d.notes.iter().any(|n| n.contains("swapout")),
        "{:?}",
        d.notes
    );

    // Without the swapout, the same states with other frame ids agree.
    let s = parse("mmap p0 0 4 rw anon\nwrite p0 0 1\nread p0 1\n").expect("parses");
    let out = [Outcome::Ok, Outcome::Ok, Outcome::Value(0)];
    let emu = emu_report(
        &s,
        &out,
        vec![state(vec![vma(0, 4)], &[(0, 1234, 1), (1, 0, 0)])],
    );
    let kernel = KernelRun {
        outcomes: out.to_vec(),
        dumps: vec![state(vec![vma(0, 4)], &[(0, 0x9_9999, 1), (1, 0, 0)])],
    };
    assert_eq!(compare(&s, &kernel, &emu), vec![]);
}

#[test]
fn compare_finds_a_different_outcome_and_value() {
    let s = synthetic_stream();
    let kernel = KernelRun {
        outcomes: ok_outcomes(),
        dumps: vec![ok_state()],
    };
    let mut out = ok_outcomes();
    out[2] = Outcome::Value(2);
    out[1] = Outcome::Err(Errno::ENOMEM);
    let emu = emu_report(&s, &out, vec![ok_state()]);
    let ms = compare(&s, &kernel, &emu);
    assert_eq!(ms.len(), 2, "{ms:?}");
    assert_eq!(ms[0].kind, MismatchKind::Outcome);
    assert_eq!(ms[0].line, 2);
    assert_eq!(ms[0].op, "write p0 0 1");
    assert_eq!(
        (ms[0].kernel.as_str(), ms[0].emulator.as_str()),
        ("ok", "err ENOMEM")
    );
    assert_eq!(
        (ms[1].kernel.as_str(), ms[1].emulator.as_str()),
        ("ok 0x1", "ok 0x2")
    );
    let text = ms[1].to_string();
    assert!(
        text.contains("line 3") && text.contains("read p0 0"),
        "{text}"
    );
    assert!(
        text.contains("kernel `ok 0x1`, emulator `ok 0x2`"),
        "{text}"
    );
}

#[test]
fn compare_finds_a_different_class_and_map_count() {
    let s = parse("mmap p0 0 4 rw anon\nwrite p0 0 1\nwrite p0 1 1\ndump\n").expect("parses");
    let out = [Outcome::Ok; 4];
    let kernel = KernelRun {
        outcomes: out.to_vec(),
        dumps: vec![state(vec![vma(0, 4)], &[(0, 5, 1), (1, 6, 1)])],
    };
    // Same frame for both pages: a class differs.
    let emu = emu_report(
        &s,
        &out,
        vec![state(vec![vma(0, 4)], &[(0, 5, 1), (1, 5, 1)])],
    );
    let ms = compare(&s, &kernel, &emu);
    assert_eq!(ms.len(), 1, "{ms:?}");
    assert_eq!(ms[0].kind, MismatchKind::Pages);
    assert_eq!(ms[0].pid.as_deref(), Some("p0"));
    assert_eq!(ms[0].kernel, "0:f0/1 1:f1/1");
    assert_eq!(ms[0].emulator, "0:f0/1 1:f0/1");
    assert!(
        ms[0].detail.contains("page 1: kernel f1/1, emulator f0/1"),
        "{}",
        ms[0].detail
    );
    // A map count differs.
    let emu = emu_report(
        &s,
        &out,
        vec![state(vec![vma(0, 4)], &[(0, 5, 2), (1, 6, 1)])],
    );
    let ms = compare(&s, &kernel, &emu);
    assert_eq!(ms.len(), 1, "{ms:?}");
    assert_eq!(ms[0].kind, MismatchKind::Pages);
    assert!(
        ms[0].detail.contains("page 0: kernel f0/1, emulator f0/2"),
        "{}",
        ms[0].detail
    );
    // A page present on one side only.
    let emu = emu_report(&s, &out, vec![state(vec![vma(0, 4)], &[(0, 5, 1)])]);
    let ms = compare(&s, &kernel, &emu);
    assert!(
        ms[0]
            .detail
            .contains("page 1: kernel f1/1, emulator absent"),
        "{}",
        ms[0].detail
    );
}

#[test]
fn compare_finds_layout_and_process_differences_and_notes_them_for_2004() {
    let s = parse("mmap p0 0 4 rw anon\nfork p0\ndump\n").expect("parses");
    let out = [Outcome::Ok; 3];
    let two = |a: Vec<VmaLine>, b: Vec<VmaLine>| {
        let mut st = state(a, &[]);
        st.procs.insert(
            Pid(1),
            ProcState {
                vmas: b,
                pages: BTreeMap::new(),
            },
        );
        st
    };
    let kernel = KernelRun {
        outcomes: out.to_vec(),
        dumps: vec![two(vec![vma(0, 4)], vec![vma(0, 2), vma(2, 4)])],
    };
    let emu = emu_report(&s, &out, vec![two(vec![vma(0, 4)], vec![vma(0, 4)])]);
    let ms = compare(&s, &kernel, &emu);
    assert_eq!(ms.len(), 1, "{ms:?}");
    assert_eq!(ms[0].kind, MismatchKind::Layout);
    assert_eq!(
        (ms[0].kernel.as_str(), ms[0].emulator.as_str()),
        ("0-2 2-4", "0-4")
    );
    let spec = DesignSpec::new(Design::SingleList2004);
    let d = compare_with(&s, &kernel, &emu, CompareOptions::for_spec(&spec));
    assert!(d.mismatches.is_empty());
    assert_eq!(d.notes.len(), 1, "{:?}", d.notes);
    // A process missing on one side.
    let emu = emu_report(&s, &out, vec![state(vec![vma(0, 4)], &[])]);
    let ms = compare(&s, &kernel, &emu);
    assert_eq!(ms[0].kind, MismatchKind::Processes);
    assert_eq!(
        (ms[0].kernel.as_str(), ms[0].emulator.as_str()),
        ("p0 p1", "p0")
    );
}

#[test]
fn compare_stops_at_an_injected_failure() {
    let s = parse("mmap p0 0 4 rw anon\nwrite p0 0 1\nread p0 0\n").expect("parses");
    let kernel = KernelRun {
        outcomes: vec![Outcome::Ok, Outcome::Ok, Outcome::Value(1)],
        dumps: vec![state(vec![vma(0, 4)], &[(0, 1, 1)])],
    };
    let mut emu = emu_report(
        &s,
        &[Outcome::Ok, Outcome::Err(Errno::ENOMEM), Outcome::Segv],
        vec![state(vec![], &[])],
    );
    emu.injected_at = Some(1);
    let d = compare_with(&s, &kernel, &emu, CompareOptions::default());
    assert!(d.mismatches.is_empty(), "{:?}", d.mismatches);
    assert_eq!(d.ops_compared, 1);
    assert_eq!(d.dumps_compared, 0);
}

#[test]
fn compare_specs_runs_the_designs() {
    // A kernel run written by hand for a tiny stream: what Linux does.
    let s = parse("mmap p0 0 2 rw anon\nwrite p0 0 5\nread p0 0\nread p0 1\n").expect("parses");
    let kernel = KernelRun {
        outcomes: vec![
            Outcome::Ok,
            Outcome::Ok,
            Outcome::Value(5),
            Outcome::Value(0),
        ],
        dumps: vec![state(vec![vma(0, 2)], &[(0, 77, 1), (1, 0, 0)])],
    };
    let per = compare_specs(&s, &kernel, &default_specs());
    assert!(!per.is_empty());
    for sd in &per {
        assert!(
            sd.diff.agrees(),
            "{}: {:?}",
            sd.spec.label(),
            sd.diff.mismatches
        );
        assert_eq!(sd.diff.dumps_compared, 1);
    }
    // And a wrong "kernel" is caught by every design.
    let mut wrong = kernel.clone();
    wrong.outcomes[3] = Outcome::Segv;
    for sd in compare_specs(&s, &wrong, &default_specs()) {
        assert_eq!(sd.diff.mismatches.len(), 1, "{}", sd.spec.label());
    }
}
