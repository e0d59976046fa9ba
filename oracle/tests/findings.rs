//! Every engine's failure is a corpus file that `cargo test` accepts as it
//! is, and a panic is a finding like any other (invariant `panic`):
//!
//! - what the libFuzzer and AFL targets print before they crash
//!   (`target_finding_file`), and `rmaplab import` of the crash artifact,
//!   give the same text, which the corpus checker accepts without edits;
//! - a panic inside a design's run (the `test-panic` feature of rmaplab's
//!   own tests: a `write` of a magic value panics in prealloc-2026's run)
//!   is reported `FAIL … panic` by `rmaplab run`, is shrunk and written by
//!   the built-in engine, which goes on fuzzing, and is printed as a
//!   corpus file by the fuzz targets' glue.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rmaplab::fuzz::engine::{
    EngineConfig, check_stream, check_stream_explored, explores_races, fails_baseline,
    finding_file, import_file, run_engine, target_finding_file,
};
use rmaplab::run::corpus::check_corpus;
use rmaplab::run::runner::test_panic;
use rmaplab_impls::designs::registry::{DesignSpec, canonical_specs};
use rmaplab_ops::decode::{DecodeConfig, decode, encode};
use rmaplab_ops::parse::parse;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rmaplab-findings-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rmaplab(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rmaplab"));
    c.args(args).current_dir(root());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("rmaplab runs")
}

/// Writes `text` to `dir/name` and runs the corpus checker on it.
fn checked(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    check_corpus(&p)
}

/// A crash artifact of `RMAPLAB_SPECS='chain-2010 era=2015' cargo fuzz run
/// -s none -O --no-trace-compares differential -- -seed=1` (CVE-2022-42703,
/// b16, found within a minute), and the corpus file the target printed
/// before it crashed,
/// kept as it was printed in `corpus/found/` (so `cargo test` replays it as
/// it is). Decoder bytes keep their meaning: a decoder change that breaks
/// this is a change of the byte format.
const B16_ARTIFACT: &str = "oracle/tests/data/libfuzzer-b16-era2015.crash";
const B16_PRINTED: &str = "corpus/found/libfuzzer-b16-era2015.ops";

fn era_2015() -> Vec<DesignSpec> {
    vec!["chain-2010 era=2015".parse().unwrap()]
}

#[test]
fn a_fuzz_target_crash_prints_a_corpus_file_the_checker_accepts() {
    let bytes = std::fs::read(root().join(B16_ARTIFACT)).unwrap();
    let stream = decode(&bytes, &DecodeConfig::default());
    let text = target_finding_file(&stream, &era_2015()).expect("b16 fails on era 2015");
    assert_eq!(
        text,
        std::fs::read_to_string(root().join(B16_PRINTED)).unwrap(),
        "what the target prints for the artifact"
    );
    assert!(
        text.contains("\n# expect [chain-2010 era=2015]: fail chain-sets\n"),
        "{text}"
    );
    assert!(text.starts_with("# found by a fuzz target"), "{text}");
    assert!(
        text.contains("\n# replay: rmaplab run FILE.ops --design chain-2010 --era 2015\n"),
        "{text}"
    );
    let dir = temp_dir("b16");
    checked(&dir, "b16.ops", &text).expect("the printed file passes the checker as it is");
    // The failure's line is the op's line in the file.
    let failure = text.lines().find(|l| l.starts_with("# failure: ")).unwrap();
    let line: usize = failure
        .split("(line ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .expect("a line number");
    let op = failure
        .split(": op ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let idx: usize = op.parse().unwrap();
    assert_eq!(
        text.lines().nth(line - 1).unwrap(),
        rmaplab_ops::print::print_op(&stream.ops[idx]),
        "{text}"
    );
    // `rmaplab import` of the artifact gives the same text, in the
    // library and through the CLI.
    let artifact = root().join(B16_ARTIFACT);
    assert_eq!(import_file(&bytes, &artifact, &era_2015()), text);
    let out = rmaplab(
        &["import", B16_ARTIFACT],
        &[("RMAPLAB_SPECS", "chain-2010 era=2015")],
    );
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
    // On the canonical designs the same bytes pass: the stream as before.
    let plain = import_file(&bytes, Path::new("crash-x"), &canonical_specs());
    assert_eq!(
        plain,
        rmaplab_ops::print::print_with_header(
            &stream,
            &["imported from crash-x (253 bytes)".into()]
        )
    );
    let out = rmaplab(&["import", B16_ARTIFACT], &[("RMAPLAB_SPECS", "nope")]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad RMAPLAB_SPECS is bad input"
    );
}

/// The AFL target explores the racing blocks of one stream in
/// `TARGET_RACE_EVERY`, chosen from the stream alone: on b12's zoo stream
/// under one-byte schedules that pass as pinned, a selected variant fails
/// once explored, unselected ones pass even where exploring them fails,
/// and `rmaplab import` of each variant's input gives exactly what
/// the target printed, so an artifact replays as the target saw it. Where
/// the target printed nothing, import gives the failure of every
/// exploration the libFuzzer target could have made
/// (`check_stream_explored`: it explores blocks with steps new to its
/// process too), else the stream as it is.
#[test]
fn import_reproduces_the_targets_choice_to_explore_a_racing_input() {
    let text = std::fs::read_to_string(root().join("corpus/zoo/b12.ops")).unwrap();
    let zoo = parse(&text).unwrap();
    let specs: Vec<DesignSpec> = vec!["chain-2010 era=2010 bug=b12".parse().unwrap()];
    let cfg = DecodeConfig::default();
    let (mut selected, mut skipped) = (0, 0);
    for x in 0..=255u8 {
        let mut s = zoo.clone();
        s.blocks[0].sched = rmaplab_ops::Sched::Bytes(vec![x]);
        let bytes = encode(&s, &cfg).unwrap();
        let s = decode(&bytes, &cfg);
        if check_stream(&s, &specs).is_err() {
            continue;
        }
        let printed = target_finding_file(&s, &specs);
        let imported = import_file(&bytes, Path::new("crash-x"), &specs);
        // Explored whatever the hash says (a baseline check: explore:3).
        let fails_explored = fails_baseline(&s, &specs);
        match &printed {
            Some(p) => {
                assert_eq!(&imported, p, "schedule #{x:02x}");
                assert!(p.contains("sched explore:2"), "{p}");
                assert!(explores_races(&s) && fails_explored, "schedule #{x:02x}");
                selected += 1;
            }
            None => {
                match check_stream_explored(&s, &specs) {
                    Ok(()) => assert!(
                        imported.starts_with("# imported from crash-x"),
                        "{imported}"
                    ),
                    Err(f) => {
                        assert!(imported.contains("sched explore:2"), "{imported}");
                        assert!(
                            imported.contains(&format!("failure: {}", f.signature.who)),
                            "{imported}"
                        );
                    }
                }
                // Unselected, it passes where exploring it fails.
                skipped += usize::from(fails_explored && !explores_races(&s));
            }
        }
    }
    assert!(
        selected >= 2 && skipped > 3 * selected,
        "{selected} explored, {skipped} not"
    );
}

#[test]
fn a_passing_stream_prints_nothing() {
    let s = parse("mmap p0 0 4 rw anon\nwrite p0 1 1\nfork p0\nwrite p1 1 2\n").unwrap();
    assert_eq!(target_finding_file(&s, &canonical_specs()), None);
}

/// A stream whose `write` panics in prealloc-2026's run (test builds only).
fn panicking_stream() -> String {
    format!(
        "version 1\nmmap p0 0 8 rw anon\nwrite p0 1 5\nfork p0\nwrite p0 2 {:#x}\nwrite p1 3 7\n\
         read p1 1\nmprotect p0 0 2 r\nexit p1\nread p0 3\n",
        test_panic::VALUE
    )
}

#[test]
fn rmaplab_run_reports_a_panic_as_a_failure() {
    let dir = temp_dir("run");
    let f = dir.join("panic.ops");
    std::fs::write(&f, panicking_stream()).unwrap();
    let out = rmaplab(&["run", f.to_str().unwrap()], &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "verdict: FAIL op 3 (line 5): panic: {} (at oracle/src/run/runner.rs:",
            test_panic::MESSAGE
        )),
        "{stdout}"
    );
    assert!(stdout.contains("== single-list-2004"), "{stdout}");
    assert!(
        !stderr.contains("panicked"),
        "the caught panic is not printed: {stderr}"
    );
    // The other designs ran to the end and passed.
    assert_eq!(stdout.matches("verdict: pass").count(), 2, "{stdout}");
    let out = rmaplab(&["run", f.to_str().unwrap(), "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"]["fail"]["invariant"], "panic");
    assert_eq!(v["verdict"]["fail"]["line"], 5);
    // The corpus checker can expect it.
    let text = format!(
        "# expect [{}]: fail panic\n{}",
        test_panic::DESIGN,
        panicking_stream()
    );
    checked(&dir, "expected.ops", &text).unwrap();
    let err = checked(&dir, "unexpected.ops", &panicking_stream()).unwrap_err();
    assert!(err.contains("expected Pass, got Fail(\"panic\")"), "{err}");
}

#[test]
fn the_fuzz_targets_print_a_panic_as_a_corpus_file() {
    let stream = parse(&panicking_stream()).unwrap();
    let specs = canonical_specs();
    let f = check_stream(&stream, &specs).unwrap_err();
    assert_eq!(f.signature.who, test_panic::DESIGN);
    assert_eq!(f.signature.invariant, "panic");
    assert_eq!(f.signature.panic.as_deref(), Some(test_panic::MESSAGE));
    let text = target_finding_file(&stream, &specs).unwrap();
    assert!(
        text.contains(&format!(
            "\n# expect [{}]: fail panic\n",
            test_panic::DESIGN
        )),
        "{text}"
    );
    checked(&temp_dir("target"), "panic.ops", &text).unwrap();
    let bytes = encode(&stream, &DecodeConfig::default()).unwrap();
    assert_eq!(import_file(&bytes, Path::new("a"), &specs), text);
}

#[test]
fn the_builtin_engine_shrinks_a_panic_writes_it_and_goes_on() {
    let out = temp_dir("engine");
    let seed = encode(
        &parse(&panicking_stream()).unwrap(),
        &DecodeConfig::default(),
    )
    .unwrap();
    let execs = 1_500;
    let st = run_engine(&EngineConfig {
        seconds: 600,
        max_execs: Some(execs),
        jobs: 1,
        seed: 3,
        decode: DecodeConfig::default(),
        specs: canonical_specs(),
        baseline: Vec::new(),
        out_dir: Some(out.clone()),
        seeds: vec![seed],
        stop_on_failure: false,
        progress: false,
    });
    assert!(st.execs >= execs, "the engine went on: {} execs", st.execs);
    assert_eq!(st.findings.len(), 1, "{:?}", st.findings);
    let (f, path) = &st.findings[0];
    assert_eq!(f.signature.invariant, "panic");
    assert_eq!(f.signature.panic.as_deref(), Some(test_panic::MESSAGE));
    // Shrunk to the write alone (the panic happens before the op runs).
    assert_eq!(
        f.stream.ops.len(),
        1,
        "{}",
        rmaplab_ops::print::print(&f.stream)
    );
    let path = path.as_ref().expect("written");
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(text, finding_file(f, &canonical_specs()));
    assert!(
        text.starts_with("# found by rmaplab fuzz; shrunk\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\n# expect [{}]: fail panic\n",
            test_panic::DESIGN
        )),
        "{text}"
    );
    check_corpus(path).expect("the written file passes the checker as it is");
}

#[test]
fn the_fuzz_command_is_quiet_about_caught_panics() {
    let dir = temp_dir("cli-fuzz");
    let seeds = dir.join("seeds");
    std::fs::create_dir_all(&seeds).unwrap();
    std::fs::write(seeds.join("panic.ops"), panicking_stream()).unwrap();
    let out_dir = dir.join("out");
    let out = rmaplab(
        &[
            "fuzz",
            "--jobs",
            "1",
            "--execs",
            "1500",
            "--seed",
            "3",
            "--keep-going",
            "--seeds",
            seeds.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stdout.contains("FAIL prealloc-2026: op 0 (line 2): panic: "),
        "{stdout}"
    );
    let files: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
    assert_eq!(files.len(), 1);
}
