//! Every JSON report the CLI prints (`rmaplab run --format json`, the only
//! command that prints JSON) is an instance of the report's types
//! (`rmaplab::run::json`, which refuse unknown fields): for every corpus
//! file, on the canonical designs, with `--stats`, on the reference model,
//! and on each configuration its header names (the failing ones included),
//! plus a run that panics. Each report reads back into the types, prints
//! back to the very bytes the CLI printed, and its verdicts match the exit
//! status and the header.

use std::path::{Path, PathBuf};
use std::process::Command;

use rmaplab::run::json::{OutcomeName, Report, Verdict};
use rmaplab::run::runner::test_panic;
use rmaplab_impls::designs::registry::DesignSpec;
use rmaplab_ops::corpus::{self, parse_header};
use rmaplab_ops::parse::parse;

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "ops") {
            out.push(p);
        }
    }
}

/// Runs `rmaplab run FILE --format json ARGS`; the report, read into the
/// types and checked to print back to the same bytes, and the exit status.
fn report(file: &Path, args: &[String]) -> (Report, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_rmaplab"))
        .arg("run")
        .arg(file)
        .args(["--format", "json"])
        .args(args)
        .output()
        .expect("rmaplab runs");
    let what = format!("{} {}", file.display(), args.join(" "));
    let code = out.status.code().expect("an exit status");
    assert!(
        code == 0 || code == 1,
        "{what}: exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let report: Report =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not a report: {e}\n{text}"));
    assert_eq!(
        serde_json::to_string_pretty(&report).unwrap() + "\n",
        text,
        "{what}: the types print the same report"
    );
    // The stream's version: 1, or 2 (whose runs carry the v2 fields).
    let version = parse(&std::fs::read_to_string(file).unwrap())
        .unwrap()
        .version;
    assert_eq!(report.version, u32::from(version), "{what}");
    for run in &report.runs {
        assert_eq!(run.schedules.is_some(), version >= 2, "{what}");
    }
    let pass = report.verdict == Verdict::Pass;
    assert_eq!(pass, code == 0, "{what}: verdict and exit status");
    for run in &report.runs {
        for o in &run.outcomes {
            assert_eq!(
                o.value.is_some(),
                (o.op.starts_with("read ") || o.op.starts_with("referenced "))
                    && o.outcome == OutcomeName::Ok
            );
            assert_eq!(o.errno.is_some(), o.outcome == OutcomeName::Err, "{what}");
        }
        if run.verdict == Verdict::Pass {
            assert!(
                !run.dumps.is_empty(),
                "{what}: a passing run ends with its final state"
            );
        }
        assert_eq!(run.stats.is_some(), args.iter().any(|a| a == "--stats"));
    }
    (report, code)
}

#[test]
fn every_json_report_reads_into_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut files = Vec::new();
    collect(&root, &mut files);
    assert!(files.len() > 50, "{} corpus files", files.len());
    let (mut reports, mut failing) = (0, 0);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let stream = parse(&text).unwrap();
        let header = parse_header(&text, &stream, |s| s.parse::<DesignSpec>()).unwrap();
        for args in [vec![], vec!["--stats".to_string()]] {
            let (r, _) = report(f, &args);
            assert_eq!(r.runs.len(), 3, "the canonical designs");
            reports += 1;
        }
        let (r, code) = report(f, &["--design".into(), "reference".into()]);
        assert_eq!((r.runs.len(), code), (1, 0));
        reports += 1;
        for (spec, want) in &header.specific {
            let args: Vec<String> = spec
                .cli_flags()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            let (r, _) = report(f, &args);
            reports += 1;
            let got = match &r.runs[0].verdict {
                Verdict::Pass => corpus::Verdict::Pass,
                Verdict::Fail(fail) => {
                    failing += 1;
                    corpus::Verdict::Fail(fail.invariant.clone())
                }
            };
            assert_eq!(&got, want, "{} [{spec}]", f.display());
        }
    }
    assert!(failing >= 10, "{failing} failing reports");
    println!("{reports} reports, {failing} failing");
}

#[test]
fn a_panicking_run_reports_invariant_panic() {
    let dir = std::env::temp_dir().join(format!("rmaplab-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("panic.ops");
    std::fs::write(
        &f,
        format!(
            "mmap p0 0 4 rw anon\nwrite p0 1 {:#x}\nread p0 1\n",
            test_panic::VALUE
        ),
    )
    .unwrap();
    let (r, code) = report(&f, &[]);
    assert_eq!(code, 1);
    let Verdict::Fail(fail) = &r.verdict else {
        panic!("{r:?}")
    };
    assert_eq!((fail.line, fail.invariant.as_str()), (2, "panic"));
    assert!(
        fail.detail
            .starts_with(&format!("panic: {}", test_panic::MESSAGE))
    );
    let panicked: Vec<&str> = r
        .runs
        .iter()
        .filter(|run| run.verdict != Verdict::Pass)
        .map(|run| run.design.as_str())
        .collect();
    assert_eq!(panicked, [test_panic::DESIGN]);
}
