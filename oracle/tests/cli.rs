//! The `rmaplab` binary: outcomes and dumps in text, the JSON
//! schema, exit statuses, and clear errors for bad input.

use std::io::Write;
use std::process::{Command, Output};

use serde_json::Value;

const SAMPLE: &str = "\
version 1
mmap p0 0 8 rw anon
write p0 0 0x11
read p0 1
fork p0
write p1 0 0x22
read p0 0
write p1 300 1
exit p9
mprotect p1 2 2 r
dump
munmap p0 4 4
";

fn rmaplab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rmaplab"))
        .args(args)
        .output()
        .expect("rmaplab runs")
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rmaplab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::File::create(&p)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    p
}

#[test]
fn run_prints_outcomes_and_the_final_dump() {
    let f = temp_file("sample.ops", SAMPLE);
    let out = rmaplab(&["run", f.to_str().unwrap(), "--design", "single-list-2004"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("== single-list-2004"), "{text}");
    assert!(
        text.contains("read p0 0") && text.contains("ok 0x11"),
        "{text}"
    );
    assert!(text.contains("err EINVAL"), "{text}");
    assert!(text.contains("err ESRCH"), "{text}");
    assert!(text.contains("final state:"), "{text}");
    assert!(text.contains("pages 0:f0/1 1:Z/0"), "{text}");
    assert!(text.contains("verdict: pass"), "{text}");
}

#[test]
fn json_follows_the_ops_v1_schema() {
    let f = temp_file("sample-json.ops", SAMPLE);
    let out = rmaplab(&["run", f.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["version"], 1);
    assert_eq!(v["verdict"], "pass");
    let runs = v["runs"].as_array().unwrap();
    assert!(runs.len() >= 2, "every canonical design by default");
    for run in runs {
        assert!(run["design"].is_string());
        assert!(run["config"].is_object());
        assert_eq!(run["verdict"], "pass");
        let outcomes = run["outcomes"].as_array().unwrap();
        assert_eq!(outcomes.len(), 11);
        assert_eq!(outcomes[0]["line"], 2);
        assert_eq!(outcomes[0]["op"], "mmap p0 0 8 rw anon");
        assert_eq!(outcomes[0]["outcome"], "ok");
        assert_eq!(outcomes[2]["outcome"], "ok");
        assert_eq!(outcomes[2]["value"], 0);
        assert_eq!(outcomes[5]["value"], 0x11);
        assert_eq!(outcomes[6]["outcome"], "err");
        assert_eq!(outcomes[6]["errno"], "EINVAL");
        assert_eq!(outcomes[7]["errno"], "ESRCH");
        let dumps = run["dumps"].as_array().unwrap();
        assert_eq!(dumps.len(), 2, "the dump op and the final state");
        assert_eq!(dumps[0]["line"], 11);
        let p0 = &dumps[1]["processes"]["p0"];
        assert_eq!(p0["vmas"][0], serde_json::json!([0, 4, "rw-p", "anon", 0]));
        assert_eq!(p0["pages"]["0"], serde_json::json!(["f0", 1]));
        assert_eq!(p0["pages"]["1"], serde_json::json!(["Z", 0]));
    }
    // The effective configuration, as docs/op-language.md's example shows it.
    assert_eq!(runs[1]["design"], "chain-2010");
    assert_eq!(runs[1]["config"], serde_json::json!({"era": "2022"}));
    assert_eq!(runs[0]["config"], serde_json::json!({}));
}

#[test]
fn era_and_reference_runs_are_selectable() {
    let f = temp_file("sample-era.ops", SAMPLE);
    let out = rmaplab(&[
        "run",
        f.to_str().unwrap(),
        "--era",
        "2015",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["runs"][0]["design"], "chain-2010");
    assert_eq!(v["runs"][0]["config"]["era"], "2015");
    let out = rmaplab(&["run", f.to_str().unwrap(), "--design", "reference"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("== reference"));
}

#[test]
fn malformed_input_exits_2_with_line_and_column() {
    let f = temp_file("bad.ops", "mmap p0 0 4 rw anon\nmprotect p0 0 4 rq\n");
    let out = rmaplab(&["run", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.ops:2:17: expected a protection"), "{err}");
    assert!(err.contains("expected a protection"), "{err}");
    let out = rmaplab(&["check", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = rmaplab(&["run", "/nonexistent/x.ops"]);
    assert_eq!(out.status.code(), Some(2));
    let out = rmaplab(&["run", f.to_str().unwrap(), "--design", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    let out = rmaplab(&["run", f.to_str().unwrap(), "--bug", "b99"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn fmt_prints_the_canonical_form() {
    let f = temp_file(
        "fmt.ops",
        "# c\nmmap  p0 0x0 4 rw anon   # x\nwrite p0 0 0x11\n",
    );
    let out = rmaplab(&["fmt", f.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "version 1\nmmap p0 0 4 rw anon\nwrite p0 0 17\n"
    );
}

#[test]
fn bench_emits_its_throughput_streams_as_fuzzer_inputs() {
    let dir = std::env::temp_dir().join(format!("rmaplab-cli-inputs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = rmaplab(&[
        "bench",
        "--execs",
        "7",
        "--emit-inputs",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 7);
    // What a fuzz target decodes from them is what `bench` times.
    let cfg = rmaplab_ops::decode::DecodeConfig::default();
    let timed = rmaplab::fuzz::bench::streams(7, 64, 1);
    for (f, s) in files.iter().zip(&timed) {
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(&rmaplab_ops::decode::decode(&bytes, &cfg), s);
        assert_eq!(s.ops.len(), 64);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rmaplab kernel` needs no second binary: a copy of `rmaplab` alone in
/// a folder (no `rmaplab-puppet` next to it or one level up) serves as its
/// own puppet. Passes after saying why when the host cannot serve.
#[test]
fn kernel_runs_with_rmaplab_as_its_own_puppet() {
    if let Err(e) = rmaplab::kernel::host_can_serve() {
        println!("skipped, the host cannot run the live-kernel backend: {e}");
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rmaplab-cli-alone-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("rmaplab");
    // A hard link runs under its own path (as /proc/self/exe shows it).
    if std::fs::hard_link(env!("CARGO_BIN_EXE_rmaplab"), &exe).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_rmaplab"), &exe).unwrap();
    }
    let case = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../corpus/live-kernel/e3-cow-reuse.ops"
    );
    let out = Command::new(&exe)
        .args(["kernel", case])
        .env_remove("RMAPLAB_PUPPET")
        .output()
        .expect("rmaplab runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("verdict: agree"), "{text}");
    let out = Command::new(&exe)
        .args(["kernel", "--bench", "1"])
        .env_remove("RMAPLAB_PUPPET")
        .output()
        .expect("rmaplab runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("puppet: {} __puppet", exe.display())),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The hidden puppet mode is dispatched before argument parsing: without
/// its CPU argument it refuses with its usage line.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn puppet_mode_without_a_cpu_prints_its_usage() {
    let out = rmaplab(&["__puppet"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("usage: rmaplab-puppet CPU or rmaplab __puppet CPU"),
        "{err}"
    );
}

/// The seed `rmaplab fuzz` printed first (`seed N (repeat this run with
/// --seed N)`).
fn printed_seed(stderr: &str) -> u64 {
    let first = stderr.lines().next().unwrap_or_default();
    first
        .strip_prefix("seed ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no seed on the first line:\n{stderr}"))
}

/// `done: N execs in …, M ops, …` → (N, M).
fn execs_and_ops(stderr: &str) -> (u64, u64) {
    let done = stderr
        .lines()
        .find_map(|l| l.strip_prefix("done: "))
        .unwrap_or_else(|| panic!("no done line:\n{stderr}"));
    let execs = done.split_whitespace().next().unwrap().parse().unwrap();
    let ops = done
        .split(", ")
        .find_map(|p| p.strip_suffix(" ops"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no op count: {done}"));
    (execs, ops)
}

fn fuzz(extra: &[&str], out: &std::path::Path) -> String {
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus");
    let mut args = vec!["fuzz", "--jobs", "2", "--seeds", corpus];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    let o = rmaplab(&args);
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(o.status.success(), "{err}");
    err
}

#[test]
fn fuzz_without_seed_picks_a_fresh_one_and_a_seed_repeats_a_run() {
    let out = std::env::temp_dir().join(format!("rmaplab-cli-fuzz-{}", std::process::id()));
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| fuzz(&["--seconds", "5"], &out));
        let b = s.spawn(|| fuzz(&["--seconds", "5"], &out));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (sa, sb) = (printed_seed(&a), printed_seed(&b));
    assert_ne!(sa, sb, "two runs without --seed used the same seed");
    // The printed seed and an exec budget repeat a run: the same execs,
    // and the same streams (their op count).
    let seed = sa.to_string();
    let budget = ["--seed", &seed, "--execs", "300"];
    let first = fuzz(&budget, &out);
    let again = fuzz(&budget, &out);
    assert_eq!(printed_seed(&first), sa);
    let (n1, ops1) = execs_and_ops(&first);
    let (n2, ops2) = execs_and_ops(&again);
    assert_eq!(n1, 300, "{first}");
    assert_eq!((n1, ops1), (n2, ops2), "{first}\n{again}");
    // Another seed runs other streams.
    let other = fuzz(&["--seed", &(sa + 1).to_string(), "--execs", "300"], &out);
    assert_ne!(execs_and_ops(&other).1, ops1, "{other}");
    assert!(
        !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
        "the canonical designs failed"
    );
}

/// `rmaplab bugs` keeps its columns aligned however long an entry is: every
/// row's entries start where the header's do, and the commit and reason
/// lines under a title start where the title does.
#[test]
fn bugs_columns_stay_aligned() {
    let out = rmaplab(&["bugs"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let head: Vec<char> = lines.next().unwrap().chars().collect();
    let starts: Vec<usize> = (0..head.len())
        .filter(|&i| head[i] != ' ' && (i == 0 || head[i - 1] == ' '))
        .collect();
    // id, design, era, years, invariant, then "title / commit / injectable".
    assert!(starts.len() >= 6, "{text}");
    let title = starts[5];
    let mut rows = 0;
    let mut long_years = false;
    for line in lines {
        let l: Vec<char> = line.chars().collect();
        if l[0] == ' ' {
            assert!(
                l[..title].iter().all(|&c| c == ' ') && l[title] != ' ',
                "continuation not under the title:\n{line}\n{text}"
            );
            continue;
        }
        rows += 1;
        for &s in &starts[1..6] {
            assert!(
                l[s - 1] == ' ' && l[s] != ' ',
                "column at {s} misaligned:\n{}\n{line}",
                head.iter().collect::<String>()
            );
        }
        long_years |= line.contains("(2.6.34-rc1..rc3)");
    }
    assert!(rows >= 20, "{text}");
    assert!(long_years, "the long years entries are listed:\n{text}");
}

/// A binary file is not parsed as text: the error names the line, column
/// and byte offset of the first byte that is not UTF-8.
#[test]
fn a_binary_file_reports_where_its_first_invalid_byte_is() {
    let dir = std::env::temp_dir().join(format!("rmaplab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("binary.ops");
    std::fs::write(&f, b"version 1\nmmap p0 0 4 rw anon\nwr\xffte p0 0 1\n").unwrap();
    for cmd in ["run", "check", "fmt", "shrink"] {
        let out = rmaplab(&[cmd, f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains("binary.ops:3:3: not UTF-8: byte 0xff at offset 32"),
            "{cmd}: {err}"
        );
        assert!(!err.contains("stream did not contain valid UTF-8"), "{err}");
    }
    // Multi-byte characters before it count as one column each.
    std::fs::write(
        &f,
        "# é\u{2014}\u{fffd}x"
            .as_bytes()
            .iter()
            .copied()
            .chain([0xc3])
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let out = rmaplab(&["check", f.to_str().unwrap()]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("binary.ops:1:7: not UTF-8: byte 0xc3 at offset 11"),
        "{err}"
    );
}

/// `rmaplab hunt` writes its zoo file under `--out` only; `--update-zoo`
/// (which writes `corpus/zoo/`) refuses to run outside the repository's
/// root instead of creating a `corpus/` there.
#[test]
fn hunt_writes_only_under_its_output_folder() {
    let dir = std::env::temp_dir().join(format!("rmaplab-cli-hunt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let hunt = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rmaplab"))
            .current_dir(&dir)
            .args(["hunt", "--bug", "b01", "--seconds", "30"])
            .args(args)
            .output()
            .expect("rmaplab runs")
    };
    let out = hunt(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("wrote fuzz-failures/zoo/b01.ops"), "{text}");
    let zoo = std::fs::read_to_string(dir.join("fuzz-failures/zoo/b01.ops")).unwrap();
    assert!(
        zoo.contains("# expect [single-list-2004 bug=b01]: fail"),
        "{zoo}"
    );
    let top: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, ["fuzz-failures"]);
    let out = hunt(&["--out", "elsewhere"]);
    assert!(out.status.success());
    assert!(dir.join("elsewhere/zoo/b01.ops").is_file());
    let out = hunt(&["--update-zoo"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run it from the repository's root"), "{err}");
    assert!(!dir.join("corpus").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rmaplab steps`: one line per op kind with the step names the MMU
/// lists for it, then a meaning for every name those lines use.
#[test]
fn steps_lists_every_op_kind_and_explains_every_step_name() {
    let out = rmaplab(&["steps"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut sections = text.split("\n\n");
    let _intro = sections.next().unwrap();
    let kinds = sections.next().expect("the op kinds");
    let meanings = sections.next().expect("the meanings");
    let mut listed = Vec::new();
    for line in kinds.lines() {
        let mut words = line.split_whitespace();
        let kind = words.next().unwrap();
        let names: Vec<&str> = words.collect();
        assert!(!names.is_empty(), "`{kind}` lists no step");
        listed.push(kind);
        for name in names {
            // Atomic actors take one step named by their keyword.
            if name == kind {
                continue;
            }
            let explained = meanings.lines().any(|m| {
                // A meaning line starts with its names: `a`, or `a, b, c`.
                let mut heads = Vec::new();
                for w in m.split_whitespace() {
                    heads.push(w.trim_end_matches(','));
                    if !w.ends_with(',') {
                        break;
                    }
                }
                heads
                    .iter()
                    .any(|&h| h == name || h.strip_suffix('*').is_some_and(|p| name.starts_with(p)))
            });
            assert!(
                explained,
                "`{kind}` step `{name}` has no meaning line:\n{meanings}"
            );
        }
    }
    for kind in [
        "mmap",
        "munmap",
        "mprotect",
        "mremap",
        "madvise",
        "fork",
        "exit",
        "read",
        "write",
        "swapout",
        "migrate",
        "referenced",
        "reclaim",
    ] {
        assert!(listed.contains(&kind), "`{kind}` missing from:\n{kinds}");
    }
}
