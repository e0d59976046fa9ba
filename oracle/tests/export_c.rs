//! `rmaplab export-c`: the generated C reproducer compiles with
//! `cc -O0 -Wall -Werror` and, run on the host, prints for every op the
//! outcome the emulator gives (and at every dump the VMA layout the
//! emulator shows). Compiling needs Linux and a C compiler; running is done
//! only where the live-kernel backend can serve (the same hosts whose
//! kernel the corpus was measured against) — otherwise the test says why
//! and stops there.

use std::path::{Path, PathBuf};
use std::process::Command;

use rmaplab::kernel::export_c::export_c_annotated;
use rmaplab::kernel::host_can_serve;
use rmaplab::run::report::canonicalize;
use rmaplab::run::runner::{RunOptions, run_spec};
use rmaplab_impls::designs::registry::{Design, DesignSpec};
use rmaplab_ops::decode::{DecodeConfig, decode};
use rmaplab_ops::parse::parse;
use rmaplab_ops::print::{print, print_op};
use rmaplab_ops::{Op, Stream};

/// Corpus files replayed through C (layouts, COW, errors, files, shmem).
const CORPUS: &[&str] = &[
    "e3-cow-reuse.ops",
    "e9-three-sharers.ops",
    "e5b-mremap-fixed-dontunmap.ops",
    "mremap-errors.ops",
    "partial-mprotect.ops",
    "partial-dontneed.ops",
    "n10-mmap-in-forked-child.ops",
    "file/e6t-private-file.ops",
    "file/e7-shared-anon.ops",
    "file/multi-vma-move.ops",
];

/// What the backend decides itself, emulator-only ops, signals.
const EDGES: &str = "
mmap p0 0 4 rw anon
write p0 1 0x123456789
read p0 1
read p0 2
read p0 300
write p3 0 1
dump
swapout p0 1
reclaim
migrate p0 1
mmap p0 10 8 r file:1:60
read p0 13
read p0 14
write p0 10 5
mmap p0 20 2 none anon
read p0 20
read p0 30
fork p0
madvise p1 0 4 wipeonfork
fork p1
read p2 1
exit p1
exit p1
read p1 1
mremap p0 0 4 8
mremap p0 0 4 4 to 40 dontunmap
mmap p0 50 2 rwx sfile:3:1
write p0 51 9
read p2 51
mmap p0 60 1 rw file:2:70
read p0 60
fail-alloc 1
";

fn cc() -> Result<String, String> {
    if !cfg!(target_os = "linux") {
        return Err("the reproducer is Linux C".into());
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    match Command::new(&cc).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(cc),
        _ => Err(format!("no working C compiler `{cc}`")),
    }
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rmaplab-export-c-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Writes and compiles the reproducer of `stream`; the binary's path.
fn compile(cc: &str, dir: &Path, name: &str, stream: &Stream, text: &str) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    let c = export_c_annotated(stream, name, Some(text));
    std::fs::write(&src, c).expect("write C");
    let out = Command::new(cc)
        .args(["-std=c11", "-O0", "-Wall", "-Werror", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "{name}: cc failed:\n{}\n(source in {})",
        String::from_utf8_lossy(&out.stderr),
        src.display()
    );
    bin
}

/// What the reproducer printed: per op `(line, text, outcome)`, and per
/// dump (each `dump` op, then `final state:`) the maps lines per process
/// as `(pid, "start-end perms")` in window pages and the page cells per
/// process as `(pid, page, cell)` (`pfn=0x../N`, `zero`, `excl`, `shared`).
struct Printed {
    outcomes: Vec<(usize, String, String)>,
    dumps: Vec<Vec<(String, String)>>,
    pages: Vec<Vec<(String, u64, String)>>,
}

/// The printed page cells of one dump with classes as reports number them
/// (`Z`, `f0`, `f1`, ... by first appearance, processes by number, pages
/// ascending) and map counts, as `(pid, "page:class/count")`; `None` when
/// PFNs were hidden.
fn printed_classes(cells: &[(String, u64, String)]) -> Option<Vec<(String, String)>> {
    let mut classes: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (pid, page, cell) in cells {
        let text = if cell == "zero" {
            "Z/0".to_string()
        } else {
            let (pfn, count) = cell.strip_prefix("pfn=")?.split_once('/')?;
            let n = classes.iter().position(|c| c == pfn).unwrap_or_else(|| {
                classes.push(pfn.to_string());
                classes.len() - 1
            });
            format!("f{n}/{count}")
        };
        out.push((pid.clone(), format!("{page}:{text}")));
    }
    Some(out)
}

fn parse_output(text: &str) -> Printed {
    let mut p = Printed {
        outcomes: Vec::new(),
        dumps: Vec::new(),
        pages: Vec::new(),
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("line ") {
            let (num, rest) = rest.split_once(": ").expect("`line N: ...`");
            let (op, outcome) = rest.rsplit_once(" => ").expect("`OP => OUTCOME`");
            p.outcomes
                .push((num.parse().expect("line number"), op.into(), outcome.into()));
            if op == "dump" {
                p.dumps.push(Vec::new());
                p.pages.push(Vec::new());
            }
        } else if line == "final state:" {
            p.dumps.push(Vec::new());
            p.pages.push(Vec::new());
        } else if let Some(rest) = line.strip_prefix("  p") {
            let (pid, maps) = rest.split_once(' ').expect("`  pN ...`");
            if maps == "maps:" {
                continue;
            }
            if let Some(cells) = maps.strip_prefix("pages") {
                let dump = p.pages.last_mut().expect("pages after a dump line");
                for c in cells.split_whitespace() {
                    let (page, cell) = c.split_once(':').expect("PAGE:CELL");
                    dump.push((format!("p{pid}"), page.parse().expect("page"), cell.into()));
                }
                continue;
            }
            let mut f = maps.split_whitespace();
            let range = f.next().expect("range");
            let perms = f.next().expect("perms");
            let (s, e) = range.split_once('-').expect("start-end");
            let page =
                |h: &str| (u64::from_str_radix(h, 16).expect("hex") - 0x1000_0000_0000) / 4096;
            p.dumps.last_mut().expect("maps after a dump line").push((
                format!("p{pid}"),
                format!("{}-{} {perms}", page(s), page(e)),
            ));
        }
    }
    p
}

/// Compiles, runs and compares one stream; the problems found.
fn check_stream(cc: &str, dir: &Path, name: &str, text: &str, run: bool) -> Vec<String> {
    let stream = &parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let bin = compile(cc, dir, name, stream, text);
    if !run {
        return Vec::new();
    }
    let out = Command::new(&bin).output().expect("run the reproducer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return vec![format!(
            "{name}: exit {:?}\n{}\n{stdout}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )];
    }
    let printed = parse_output(&stdout);
    // chain-2010 is Linux 6.18's design (its 2022 era, the 6.18 merge rule).
    let spec = DesignSpec::new(Design::Chain2010);
    let emu = run_spec(stream, &spec, &RunOptions::default());
    let mut problems = Vec::new();
    if let Some(f) = &emu.failure {
        problems.push(format!("{name}: the emulator failed: {f}"));
    }
    if printed.outcomes.len() != stream.ops.len() {
        problems.push(format!(
            "{name}: {} outcome lines for {} ops:\n{stdout}",
            printed.outcomes.len(),
            stream.ops.len()
        ));
    }
    for ((i, op), (line, text, got)) in stream.ops.iter().enumerate().zip(&printed.outcomes) {
        if *line != stream.lines[i] || *text != print_op(op) {
            problems.push(format!("{name}: op {i} printed as `line {line}: {text}`"));
            continue;
        }
        let Some(rec) = emu.outcomes.iter().find(|r| r.index == i) else {
            continue;
        };
        // The emulator performs emulator-only ops; the reproducer cannot.
        let want = if op.emulator_only() {
            "unsupported".to_string()
        } else {
            rec.outcome.to_string()
        };
        if *got != want {
            problems.push(format!(
                "{name}: line {line} `{text}`: C prints `{got}`, the emulator gives `{want}`"
            ));
        }
    }
    if printed.dumps.len() != emu.dumps.len() {
        problems.push(format!(
            "{name}: {} dumps printed, the emulator has {}",
            printed.dumps.len(),
            emu.dumps.len()
        ));
    }
    for (k, (got, want)) in printed.dumps.iter().zip(&emu.dumps).enumerate() {
        let want: Vec<(String, String)> = canonicalize(&want.state)
            .into_iter()
            .flat_map(|p| {
                let pid = p.pid.clone();
                p.vmas
                    .into_iter()
                    .map(move |(s, e, perms, _, _)| (pid.clone(), format!("{s}-{e} {perms}")))
            })
            .collect();
        if *got != want {
            problems.push(format!(
                "{name}: dump {}: C prints {got:?}, the emulator shows {want:?}",
                k + 1
            ));
        }
    }
    // Pages: classes and map counts where PFNs are visible (root), up to
    // the first `swapout` (emulator-only: its pages are swapped out where
    // the kernel's are still mapped, as `kernel_diff` says).
    let swapout = stream
        .ops
        .iter()
        .position(|o| matches!(o, Op::Swapout { .. }));
    let mut dump_at: Vec<usize> = (0..stream.ops.len())
        .filter(|&i| matches!(stream.ops[i], Op::Dump))
        .collect();
    dump_at.push(stream.ops.len());
    for (k, (cells, want)) in printed.pages.iter().zip(&emu.dumps).enumerate() {
        if swapout.is_some_and(|s| s < dump_at[k]) {
            continue;
        }
        let want: Vec<(String, String)> = canonicalize(&want.state)
            .into_iter()
            .flat_map(|p| {
                let pid = p.pid.clone();
                p.pages
                    .into_iter()
                    .map(move |(pg, c, n)| (pid.clone(), format!("{pg}:{c}/{n}")))
            })
            .collect();
        match printed_classes(cells) {
            Some(got) if got != want => problems.push(format!(
                "{name}: dump {}: C pages {got:?}, the emulator shows {want:?}",
                k + 1
            )),
            Some(_) => {}
            None => {
                let got: Vec<(String, u64)> =
                    cells.iter().map(|(p, pg, _)| (p.clone(), *pg)).collect();
                let want: Vec<(String, u64)> = want
                    .iter()
                    .map(|(p, cell)| {
                        let pg = cell.split(':').next().unwrap_or_default();
                        (p.clone(), pg.parse().unwrap_or(u64::MAX))
                    })
                    .collect();
                if got != want {
                    problems.push(format!(
                        "{name}: dump {}: C present pages {got:?}, the emulator's {want:?}",
                        k + 1
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn reproducers_compile_and_print_the_emulators_outcomes() {
    let cc = match cc() {
        Ok(cc) => cc,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let run = match host_can_serve() {
        Ok(()) => true,
        Err(why) => {
            println!("reproducers compiled but not run (the host cannot serve: {why})");
            false
        }
    };
    let dir = scratch_dir("corpus");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/live-kernel");
    let mut problems = Vec::new();
    for f in CORPUS {
        let text = std::fs::read_to_string(root.join(f)).expect("corpus file");
        let name = f.replace(['/', '.'], "_");
        problems.extend(check_stream(&cc, &dir, &name, &text, run));
    }
    problems.extend(check_stream(&cc, &dir, "edges", EDGES, run));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reproducers_of_random_streams_agree_with_the_emulator() {
    let cc = match cc() {
        Ok(cc) => cc,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    if let Err(why) = host_can_serve() {
        println!("skipped: the host cannot serve: {why}");
        return;
    }
    let dir = scratch_dir("random");
    let cfg = DecodeConfig::live_kernel();
    let mut problems = Vec::new();
    // A few fixed inputs: xorshift bytes.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for n in 0..6 {
        let bytes: Vec<u8> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let text = print(&decode(&bytes, &cfg));
        problems.extend(check_stream(&cc, &dir, &format!("random{n}"), &text, true));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn export_c_cli_writes_the_program() {
    let dir = scratch_dir("cli");
    let ops = dir.join("s.ops");
    std::fs::write(&ops, "mmap p0 0 1 rw anon\nwrite p0 0 3\n").expect("write");
    let out_c = dir.join("s.c");
    let status = Command::new(env!("CARGO_BIN_EXE_rmaplab"))
        .arg("export-c")
        .arg(&ops)
        .arg("-o")
        .arg(&out_c)
        .status()
        .expect("run rmaplab");
    assert!(status.success());
    let c = std::fs::read_to_string(&out_c).expect("written");
    assert!(c.contains("int main(void)"));
    assert!(c.contains("do_op(2, \"write p0 0 3\", 0, write_cmd(0, 0x3ULL));"));
    std::fs::write(&ops, "mmap p0 0 1 rw nonsense\n").expect("write");
    let status = Command::new(env!("CARGO_BIN_EXE_rmaplab"))
        .arg("export-c")
        .arg(&ops)
        .status()
        .expect("run rmaplab");
    assert_eq!(status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// PIDs of running processes of the executable `bin`.
fn processes_of(bin: &Path) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == bin))
        .collect()
}

#[test]
fn stream_processes_exit_when_the_controller_dies() {
    let cc = match cc() {
        Ok(cc) => cc,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let dir = scratch_dir("orphans");
    let text = "mmap p0 0 1 rw anon\nfork p0\nfork p1\ndump\nwrite p2 0 1\n";
    let stream = parse(text).expect("parses");
    let bin = compile(&cc, &dir, "orphans", &stream, text);
    let bin = bin.canonicalize().expect("path");
    let mut child = Command::new(&bin)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run the reproducer");
    // Let it start, then kill the controller: p0, p1 and p2 must notice.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 8];
    std::io::Read::read_exact(&mut stdout, &mut first).expect("some output");
    child.kill().expect("kill the controller");
    child.wait().expect("reap the controller");
    drop(stdout);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut left = processes_of(&bin);
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        left = processes_of(&bin);
    }
    for &pid in &left {
        // SAFETY: signals a process of our own reproducer, found above.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    assert!(left.is_empty(), "stream processes left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
