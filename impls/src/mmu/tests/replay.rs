//! Running op text on the emulated MMU with the toy design. The text is
//! read by the op language's own parser and corpus-header reader
//! (`rmaplab_ops`), so a corpus file under `corpus/live-kernel/` and a
//! test's inline script are read the same way. After every op the
//! [`Machine`] checks what the oracle checks (every anonymous PTE found by
//! the design's walk, its mapping alive, the design's self-check) and the
//! MMU's own bookkeeping (map counts equal to the PTEs, no PTE outside a
//! VMA, no writable PTE of a shared private page, no leaked frame); it
//! checks the op's outcome against the header's `outcome` line (`ok` when
//! there is none), and at every `dump` and at the end the header's general
//! `vmas` and `pages` lines (the Linux 6.18 results; `[SPEC]` lines are for
//! other designs).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rmaplab_ops::corpus::{DumpRef, Header, Verdict, page_text, parse_header, vma_text};
use rmaplab_ops::{Op, Outcome, Pid, Stream};

use super::toy::Toy;
use crate::mmu::{FrameId, FrameKind, Mmu, Pte, VM_WRITE};
use crate::rmap::{Rmap, VmaView};
use crate::state::FrameRef;

/// Where the cases measured on Linux 6.18 live.
pub(super) fn live_kernel_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/live-kernel")
}

/// Every `.ops` file under `dir`, sorted, subfolders included.
pub(super) fn ops_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(ops_files(&p));
        } else if p.extension().is_some_and(|x| x == "ops") {
            out.push(p);
        }
    }
    out
}

/// The ops of a text, read by the op language's parser.
pub(super) fn ops(text: &str) -> Vec<Op> {
    rmaplab_ops::parse::parse(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .ops
}

/// A stream with its header, and how far it has run.
struct Script {
    name: String,
    stream: Stream,
    header: Header,
    /// The next op to run.
    next: usize,
    /// `dump` ops run so far.
    dumps: usize,
}

impl Script {
    fn read(name: &str, text: &str) -> Script {
        let stream = rmaplab_ops::parse::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let header = parse_header(text, &stream, |spec| Ok(spec.to_string()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            matches!(header.general, None | Some(Verdict::Pass)),
            "{name}: the MMU tests replay only streams every design passes"
        );
        Script {
            name: name.to_string(),
            stream,
            header,
            next: 0,
            dumps: 0,
        }
    }

    fn done(&self) -> bool {
        self.next == self.stream.ops.len()
    }
}

pub(super) type T = Mmu<Toy>;

/// The MMU on the toy design, running one script at a time.
pub(super) struct Machine {
    pub m: T,
    script: Script,
}

impl Machine {
    pub fn new() -> Machine {
        Machine::with(Toy::default())
    }

    pub fn with(toy: Toy) -> Machine {
        Machine {
            m: Mmu::new(toy),
            script: Script::read("(empty)", ""),
        }
    }

    /// A corpus file under `corpus/live-kernel/`, by its name without
    /// `.ops` (`e3-cow-reuse`, `file/e7-shared-anon`), ready to run.
    pub fn case(name: &str) -> Machine {
        Machine::file(&live_kernel_dir().join(format!("{name}.ops")))
    }

    pub fn file(path: &Path) -> Machine {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.strip_prefix(live_kernel_dir()).unwrap_or(path);
        let mut m = Machine::new();
        m.load(&name.display().to_string(), &text);
        m
    }

    fn load(&mut self, name: &str, text: &str) {
        assert!(
            self.script.done(),
            "{}: ops left when `{name}` was loaded",
            self.script.name
        );
        self.script = Script::read(name, text);
    }

    /// Runs the next op of the script and checks it.
    pub fn step(&mut self) -> Outcome {
        let s = &self.script;
        let i = s.next;
        let op = s.stream.ops[i];
        let at = format!("{}:{}: {op:?}", s.name, s.stream.lines[i]);
        let got = self.m.apply(&op).unwrap_or_else(|v| panic!("{at}: {v:?}"));
        check(&self.m);
        match s.header.outcome_of(i) {
            Some(want) => assert_eq!(got, want, "{at}: outcome"),
            None => assert!(
                matches!(got, Outcome::Ok | Outcome::Value(_)),
                "{at}: gave {got}"
            ),
        }
        self.script.next += 1;
        if op == Op::Dump {
            self.script.dumps += 1;
            self.check_dump(DumpRef::Nth(self.script.dumps));
        }
        got
    }

    /// Runs the script up to and including its `n`-th `dump` op.
    pub fn run_to_dump(&mut self, n: usize) {
        while self.script.dumps < n {
            assert!(!self.script.done(), "{}: no dump {n}", self.script.name);
            self.step();
        }
    }

    /// Runs the rest of the script, then checks its `final` lines and that
    /// every dump it has lines for happened.
    pub fn rest(&mut self) {
        while !self.script.done() {
            self.step();
        }
        self.check_dump(DumpRef::Final);
        let s = &self.script;
        for d in &s.header.dumps {
            if let DumpRef::Nth(n) = d.dump {
                assert!(
                    n <= s.dumps,
                    "{}: line {}: the stream has no dump {n}",
                    s.name,
                    d.line
                );
            }
        }
    }

    /// Runs the rest of the script, then every process exits; nothing may
    /// be left.
    pub fn finish(mut self) {
        self.rest();
        self.teardown();
    }

    /// Runs `text` (ops and header lines, as in a corpus file) to the end;
    /// returns the outcomes.
    pub fn run(&mut self, text: &str) -> Vec<Outcome> {
        self.load("(inline)", text);
        let mut out = Vec::new();
        while !self.script.done() {
            out.push(self.step());
        }
        self.rest();
        out
    }

    /// Runs one op, whatever its outcome, and checks the machine.
    pub fn one(&mut self, line: &str) -> Outcome {
        let [op] = ops(line)[..] else {
            panic!("`{line}` is not one op")
        };
        let o = self
            .m
            .apply(&op)
            .unwrap_or_else(|v| panic!("{line}: {v:?}"));
        check(&self.m);
        o
    }

    /// Every process exits; nothing may be left.
    pub fn teardown(&mut self) {
        for p in self.m.live_pids() {
            self.run(&format!("exit p{}", p.0));
        }
        let m = &self.m;
        assert_eq!(m.anon_frames_live(), 0, "anonymous frames leaked");
        assert_eq!(m.rmap().counters().anon_vmas, 0, "families leaked");
        assert_eq!(m.m.vmas.len(), 0);
        assert_eq!(m.m.swap.len(), 0, "swap slots leaked");
        assert_eq!(m.m.shmem.len(), 0, "shmem objects leaked");
    }

    fn check_dump(&self, which: DumpRef) {
        let s = &self.script;
        let got = observed(&self.m);
        for exp in s.header.dumps.iter().filter(|d| d.spec.is_none()) {
            if exp.dump != which {
                continue;
            }
            let key = (exp.pid.clone(), exp.field.clone());
            let got = got.get(&key).map_or("(no such process)", String::as_str);
            assert_eq!(
                got, exp.value,
                "{}: line {}: {} {} at {which:?}",
                s.name, exp.line, exp.pid, exp.field
            );
        }
    }

    /// `0-4 4-8(r--p)`: a compact layout (rw-p omitted), `dead` for a
    /// process that does not exist.
    pub fn layout(&self, p: u32) -> String {
        let st = self.m.state();
        let Some(ps) = st.procs.get(&Pid(p)) else {
            return "dead".into();
        };
        ps.vmas
            .iter()
            .map(|v| {
                if v.perms == "rw-p" {
                    format!("{}-{}", v.start, v.end)
                } else {
                    format!("{}-{}({})", v.start, v.end, v.perms)
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// For each `(pid, start, end)`, one cell per page: `-` (no PTE), `S`
    /// (swap entry), `Z:0` (zero page), or a frame label (by first
    /// appearance over all ranges) with its map count.
    pub fn cells(&self, ranges: &[(u32, u64, u64)]) -> Vec<String> {
        let m = &self.m;
        let mut labels: HashMap<FrameId, char> = HashMap::new();
        let mut next = b'a';
        ranges
            .iter()
            .map(|&(p, s, e)| {
                (s..e)
                    .map(|a| match m.pte(Pid(p), a) {
                        Pte::Present { frame, .. } if frame == m.m.zero => "Z:0".to_string(),
                        Pte::Present { frame, .. } => {
                            let l = *labels.entry(frame).or_insert_with(|| {
                                let c = next as char;
                                next += 1;
                                c
                            });
                            format!("{l}:{}", m.m.frame(frame).mapcount)
                        }
                        Pte::Swap(_) => "S".to_string(),
                        _ => "-".to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// The frame mapped at `p:a`, which must be present.
    pub fn frame(&self, p: u32, a: u64) -> FrameId {
        match self.m.pte(Pid(p), a) {
            Pte::Present { frame, .. } => frame,
            other => panic!("p{p}:{a} is {other:?}"),
        }
    }

    pub fn mapcount(&self, f: FrameId) -> u32 {
        self.m.m.frame(f).mapcount
    }

    /// Reads `p:a` (a `read` op on the machine).
    pub fn value(&mut self, p: u32, a: u64) -> u64 {
        match self.one(&format!("read p{p} {a}")) {
            Outcome::Value(v) => v,
            o => panic!("read p{p} {a}: {o}"),
        }
    }

    /// What a read of `p:a` would give, read on a copy of the machine (so
    /// the script's own state is not touched).
    pub fn peek(&self, p: u32, a: u64) -> u64 {
        let mut copy = self.m.clone();
        match copy.apply(&Op::Read {
            pid: Pid(p),
            addr: a,
        }) {
            Ok(Outcome::Value(v)) => v,
            o => panic!("read p{p} {a}: {o:?}"),
        }
    }

    /// Whether the VMA at `p:a` has an anon_vma.
    pub fn has_anon_vma(&self, p: u32, a: u64) -> bool {
        let (vma, _) = self
            .m
            .vma_at(Pid(p), a)
            .unwrap_or_else(|| panic!("no VMA at p{p}:{a}"));
        self.m.rmap().has_anon_vma(vma)
    }
}

/// The normalised `vmas` and `pages` text of every process, keyed by
/// (pid, field), as corpus headers write them.
fn observed(m: &T) -> HashMap<(String, String), String> {
    let st = m.state();
    let mut classes: HashMap<FrameRef, String> = HashMap::new();
    let mut out = HashMap::new();
    for (pid, p) in &st.procs {
        let vmas: Vec<String> = p
            .vmas
            .iter()
            .map(|v| vma_text(v.start, v.end, &v.perms, &v.kind.name(), v.offset))
            .collect();
        let pages: Vec<String> = p
            .pages
            .iter()
            .map(|(&page, &(frame, count))| {
                let class = match frame {
                    FrameRef::Zero => "Z".to_string(),
                    f => {
                        let n = classes.len();
                        classes.entry(f).or_insert_with(|| format!("f{n}")).clone()
                    }
                };
                page_text(page, &class, count)
            })
            .collect();
        out.insert((pid.to_string(), "vmas".into()), vmas.join(" "));
        out.insert((pid.to_string(), "pages".into()), pages.join(" "));
    }
    out
}

/// The checks the oracle makes after every op, plus the MMU's own
/// bookkeeping: every anonymous PTE found by its walk, every mapping
/// alive, every frame's mapcount equal to the PTEs mapping it, no PTE
/// outside a VMA, no anonymous frame left unmapped outside the swap cache.
pub(super) fn check(m: &T) {
    for pte in m.anon_ptes() {
        assert!(m.rmap().mapping_alive(pte.mapping), "dead mapping {pte:?}");
        let w = m.rmap_walk(pte.mapping, pte.index).expect("walk");
        assert!(
            w.found.contains(&(pte.pid, pte.page)),
            "walk misses {}:{} ({pte:?})",
            pte.pid,
            pte.page
        );
    }
    m.rmap().self_check(m).expect("toy self-check");
    let mut counts: HashMap<FrameId, u32> = HashMap::new();
    for (i, mm) in m.m.procs.iter().enumerate() {
        let Some(mm) = mm else { continue };
        for (a, pte) in mm.pt.iter().enumerate() {
            if *pte == Pte::None {
                continue;
            }
            assert!(
                m.m.vma_lookup(Pid(i as u32), a as u64).is_some(),
                "p{i}:{a} has a PTE outside any VMA"
            );
            if let Pte::Present {
                frame, writable, ..
            } = *pte
            {
                if frame != m.m.zero {
                    *counts.entry(frame).or_default() += 1;
                }
                if writable {
                    let f = m.m.frame(frame);
                    let v = m.m.vma(m.m.vma_lookup(Pid(i as u32), a as u64).unwrap());
                    assert!(
                        v.flags & VM_WRITE != 0,
                        "p{i}:{a} writable in a read-only VMA"
                    );
                    if !v.is_shared() {
                        assert!(
                            f.exclusive && f.mapcount == 1,
                            "p{i}:{a} writable shared page"
                        );
                    }
                }
            }
        }
    }
    for (id, f) in m.m.frames.iter() {
        if id == m.m.zero {
            continue;
        }
        assert_eq!(
            f.mapcount,
            counts.get(&id).copied().unwrap_or(0),
            "mapcount of {id} ({:?})",
            f.kind
        );
        if matches!(f.kind, FrameKind::Anon { .. }) && f.mapcount == 0 {
            assert!(f.swap.is_some(), "unmapped anonymous frame {id} leaked");
        }
    }
    // Every VMA in a tree is in the arena exactly once.
    assert_eq!(m.live_vmas().len(), m.m.vmas.len());
}
