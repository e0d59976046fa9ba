//! Version 2 of the text form: concurrent blocks (`par` ... `end`, the
//! one-line form), every schedule form, `referenced`, their canonical print
//! and round trip, the errors with line and column, and version 1's
//! rejection of the version 2 syntax.

use rmaplab_ops::parse::{ParseError, check_round_trip, parse};
use rmaplab_ops::print::print;
use rmaplab_ops::{Block, Op, Pid, RunItem, RunStop, Sched, Stream};

fn ok(text: &str) -> Stream {
    match parse(text) {
        Ok(s) => s,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn err(text: &str) -> ParseError {
    match parse(text) {
        Ok(s) => panic!("{text:?} parsed: {s:?}"),
        Err(e) => e,
    }
}

fn assert_err(text: &str, line: usize, col: usize, expected: &str, found: &str) {
    let e = err(text);
    assert_eq!((e.line, e.col), (line, col), "{text:?}: {e}");
    assert!(e.expected.contains(expected), "{text:?}: {e}");
    assert!(e.found.contains(found), "{text:?}: {e}");
}

/// parse(print(s)) == s at canonical lines, print a fixed point, and the
/// fuzz target's check passes.
fn assert_round_trip(s: &Stream) {
    let text = print(s);
    let back = ok(&text);
    let mut expected = s.clone();
    expected.renumber();
    assert_eq!(back, expected, "{text}");
    assert_eq!(print(&back), text);
    check_round_trip(text.as_bytes());
}

const P0: Pid = Pid(0);

fn sched_of(line: &str) -> Sched {
    let s = ok(&format!(
        "version 2\nmmap p0 0 8 rw anon\nread p0 1 || migrate p0 2 || swapout p0 3 {line}"
    ));
    assert_eq!(s.blocks.len(), 1);
    s.blocks[0].sched.clone()
}

#[test]
fn multi_line_block() {
    let text = "\
version 2
mmap p0 0 8 rw anon
write p0 2 0x22
par
  mremap p0 0 8 8 to 100   # actor A
  migrate p0 2             # actor B
end sched explore:2
read p0 102
";
    let s = ok(text);
    assert_eq!(s.version, 2);
    assert_eq!(s.ops.len(), 5);
    assert_eq!(s.lines, vec![2, 3, 5, 6, 8]);
    assert_eq!(
        s.blocks,
        vec![Block {
            first: 2,
            actors: 2,
            sched: Sched::Explore { preemptions: 2 },
            line: 4,
            sched_line: 7,
            sched_col: 11,
        }]
    );
    assert_eq!(s.ops[3], Op::Migrate { pid: P0, addr: 2 });
    assert_eq!(s.block_of(3), Some(&s.blocks[0]));
    assert_eq!(s.block_of(4), None);
    let printed = print(&s);
    assert_eq!(
        printed,
        "version 2\nmmap p0 0 8 rw anon\nwrite p0 2 34\npar\n  mremap p0 0 8 8 to 100\n  \
         migrate p0 2\nend sched explore:2\nread p0 102\n"
    );
    // The canonical print's lines are those of renumber().
    let mut r = s.clone();
    r.renumber();
    assert_eq!(ok(&printed), r);
    assert_round_trip(&s);
}

#[test]
fn one_line_block_is_the_same_block() {
    let multi = ok(
        "version 2\nmmap p0 0 8 rw anon\npar\nmremap p0 0 8 8 to 100\nmigrate p0 2\n\
                    end sched A1 B* A*\n",
    );
    let one =
        ok("version 2\nmmap p0 0 8 rw anon\nmremap p0 0 8 8 to 100 || migrate p0 2 @ A1 B* A*");
    assert_eq!(multi.ops, one.ops);
    assert_eq!(multi.blocks[0].sched, one.blocks[0].sched);
    assert_eq!((one.blocks[0].line, one.blocks[0].sched_line), (3, 3));
    assert_eq!(one.blocks[0].sched_col, 42);
    assert_eq!(one.lines, vec![2, 3, 3]);
    assert_eq!(print(&multi), print(&one));
    // Without `@`: explore:2, its position the end of the line.
    let s = ok("version 2\nread p0 1 || read p0 2 || read p0 3");
    assert_eq!(s.blocks[0].sched, Sched::default());
    assert_eq!(s.blocks[0].actors, 3);
    assert_eq!((s.blocks[0].sched_line, s.blocks[0].sched_col), (2, 36));
    // `end` alone is explore:2 too.
    let s = ok("version 2\npar\nread p0 1\nread p0 2\nend");
    assert_eq!(s.blocks[0].sched, Sched::Explore { preemptions: 2 });
    assert_eq!(
        print(&s),
        "version 2\npar\n  read p0 1\n  read p0 2\nend sched explore:2\n"
    );
    // Eight actors, the most; every op but fail-alloc and dump may be one.
    let eight = "version 2\nmmap p0 0 1 r anon || munmap p0 0 1 || mprotect p0 0 1 r || \
                 mremap p0 0 1 1 || madvise p0 0 1 dontneed || fork p0 || exit p1 || reclaim";
    assert_eq!(ok(eight).blocks[0].actors, 8);
    let s = ok("version 2\nwrite p0 1 5 || referenced p0 1 || swapout p0 1 || migrate p0 1 @ #01");
    assert_round_trip(&s);
}

#[test]
fn every_schedule_form() {
    let cases: Vec<(&str, Sched, &str)> = vec![
        ("", Sched::Explore { preemptions: 2 }, "explore:2"),
        (
            "@ explore:0",
            Sched::Explore { preemptions: 0 },
            "explore:0",
        ),
        (
            "@ explore:4",
            Sched::Explore { preemptions: 4 },
            "explore:4",
        ),
        (
            "@ explore:0x3",
            Sched::Explore { preemptions: 3 },
            "explore:3",
        ),
        (
            "@ pct:0x10:3",
            Sched::Pct { seed: 16, depth: 3 },
            "pct:16:3",
        ),
        (
            "@ pct:18446744073709551615:1",
            Sched::Pct {
                seed: u64::MAX,
                depth: 1,
            },
            "pct:18446744073709551615:1",
        ),
        ("@ random:7", Sched::Random { seed: 7 }, "random:7"),
        ("@ #", Sched::Bytes(vec![]), "#"),
        (
            "@ #00FFa1 # a comment",
            Sched::Bytes(vec![0, 0xFF, 0xA1]),
            "#00ffa1",
        ),
        (
            "@ A3 B..w1.visit#2 C* # comment",
            Sched::Steps {
                strict: false,
                items: vec![
                    RunItem {
                        actor: 0,
                        stop: RunStop::Steps(3),
                    },
                    RunItem {
                        actor: 1,
                        stop: RunStop::Until("w1.visit#2".to_string()),
                    },
                    RunItem {
                        actor: 2,
                        stop: RunStop::End,
                    },
                ],
            },
            "A3 B..w1.visit#2 C*",
        ),
        (
            "@ ! B..move_ptes[0] A02",
            Sched::Steps {
                strict: true,
                items: vec![
                    RunItem {
                        actor: 1,
                        stop: RunStop::Until("move_ptes[0]".to_string()),
                    },
                    RunItem {
                        actor: 0,
                        stop: RunStop::Steps(2),
                    },
                ],
            },
            "! B..move_ptes[0] A2",
        ),
    ];
    for (line, sched, canonical) in cases {
        assert_eq!(sched_of(line), sched, "{line}");
        assert_eq!(sched.to_string(), canonical);
        // The same in the multi-line form, and printed canonically.
        let multi = format!(
            "version 2\nmmap p0 0 8 rw anon\npar\nread p0 1\nmigrate p0 2\nswapout p0 3\nend sched {}",
            line.strip_prefix("@ ").unwrap_or("explore:2")
        );
        let s = ok(&multi);
        assert_eq!(s.blocks[0].sched, sched, "{multi}");
        assert!(print(&s).ends_with(&format!("end sched {canonical}\n")));
        assert_round_trip(&s);
    }
}

#[test]
fn referenced_and_version_2_without_blocks() {
    let s = ok("version 2\nmmap p0 0 1 rw anon\nreferenced p0 0x0");
    assert_eq!(s.ops[1], Op::Referenced { pid: P0, addr: 0 });
    assert!(s.blocks.is_empty());
    assert_eq!(
        print(&s),
        "version 2\nmmap p0 0 1 rw anon\nreferenced p0 0\n"
    );
    assert_round_trip(&s);
    // A version 2 file keeps its version even if it uses nothing new.
    let s = ok("version 2\ndump");
    assert_eq!((s.version, s.needed_version()), (2, 1));
    assert_eq!(print(&s), "version 2\ndump\n");
    // A v1 file means the same as version 2.
    let v1 = ok("mmap p0 0 1 rw anon # x\nwrite p0 0 5#y");
    let v2 = ok("version 2\nmmap p0 0 1 rw anon # x\nwrite p0 0 5#y");
    assert_eq!(v1.ops, v2.ops);
    // Built in memory, a stream prints at the version it needs.
    let s = Stream::from_ops(vec![Op::Referenced { pid: P0, addr: 3 }]);
    assert_eq!(s.version, 2);
    assert_eq!(print(&s), "version 2\nreferenced p0 3\n");
}

#[test]
fn version_1_rejects_version_2_syntax() {
    let v2 = "is version 2";
    for text in ["", "version 1\n"] {
        let at = 1 + usize::from(!text.is_empty());
        assert_err(&format!("{text}par"), at, 1, v2, "\"par\"");
        assert_err(
            &format!("{text}  end sched explore:1"),
            at,
            3,
            v2,
            "\"end\"",
        );
        assert_err(&format!("{text}sched A*"), at, 1, v2, "\"sched\"");
        assert_err(
            &format!("{text}referenced p0 1"),
            at,
            1,
            v2,
            "\"referenced\"",
        );
        assert_err(
            &format!("{text}read p0 1 || read p0 2"),
            at,
            11,
            v2,
            "\"||\"",
        );
        assert_err(&format!("{text}read p0 1 @ A*"), at, 11, v2, "\"@\"");
        assert_err(&format!("{text}read p0 || read"), at, 9, v2, "\"||\"");
    }
    // In version 1, `#` starts a comment anywhere, as before.
    assert_eq!(ok("read p0 1 #|| read p0 2").ops.len(), 1);
    // Only versions 1 and 2 exist.
    assert_err("version 3", 1, 9, "version 1 or 2", "\"3\"");
}

#[test]
fn block_errors_name_line_and_column() {
    let h = "version 2\n";
    // Nesting, stray `end`, unclosed `par`.
    assert_err(
        &format!("{h}par\nread p0 1\n par"),
        4,
        2,
        "do not nest",
        "\"par\"",
    );
    assert_err(
        &format!("{h}read p0 1\nend"),
        3,
        1,
        "none is open",
        "\"end\"",
    );
    assert_err(
        &format!("{h}read p0 1\n  par  \nread p0 1\nread p0 2\n"),
        3,
        3,
        "`end` closing",
        "end of file",
    );
    assert_err(&format!("{h}par x"), 2, 5, "end of line", "\"x\"");
    // Too few, too many actors.
    assert_err(
        &format!("{h}par\nread p0 1\nend"),
        4,
        1,
        "2 to 8 actors",
        "\"end\"",
    );
    assert_err(&format!("{h}par\nend"), 3, 1, "2 to 8 actors", "\"end\"");
    let nine = (0..9).map(|i| format!("read p0 {i}\n")).collect::<String>();
    assert_err(
        &format!("{h}par\n{nine}end"),
        11,
        1,
        "at most 8 actors",
        "\"read\"",
    );
    let nine = (0..9)
        .map(|i| format!("read p0 {i}"))
        .collect::<Vec<_>>()
        .join(" || ");
    assert_err(&format!("{h}{nine}"), 2, 102, "at most 8 actors", "\"||\"");
    assert_err(
        &format!("{h}read p0 1 @ A*"),
        2,
        11,
        "`||` and another op",
        "\"@\"",
    );
    // Ops a block may not have.
    assert_err(
        &format!("{h}par\nread p0 1\n  dump\nend"),
        4,
        3,
        "may run in a block",
        "\"dump\"",
    );
    assert_err(
        &format!("{h}read p0 1 || fail-alloc 1"),
        2,
        14,
        "may run in a block",
        "\"fail-alloc\"",
    );
    // `||` and `@` inside par ... end.
    assert_err(
        &format!("{h}par\nread p0 1 || read p0 2\n"),
        3,
        11,
        "one op",
        "\"||\"",
    );
    assert_err(
        &format!("{h}par\nread p0 1 @ A*\n"),
        3,
        11,
        "one op",
        "\"@\"",
    );
    // Missing ops around `||`, missing operands before `||` and `@`.
    assert_err(&format!("{h}|| read p0 1"), 2, 1, "an op", "\"||\"");
    assert_err(&format!("{h}read p0 1 ||"), 2, 13, "an op", "end of line");
    assert_err(
        &format!("{h}read p0 1 || || read p0 2"),
        2,
        14,
        "an op",
        "\"||\"",
    );
    assert_err(&format!("{h}read p0 || read p0 1"), 2, 9, "ADDR", "\"||\"");
    assert_err(
        &format!("{h}read p0 1 || read p0 @ A*"),
        2,
        22,
        "ADDR",
        "\"@\"",
    );
    assert_err(
        &format!("{h}mmap p0 0 1 r anon x || read p0 1"),
        2,
        20,
        "`replace` or `||`, `@`",
        "\"x\"",
    );
    assert_err(
        &format!("{h}frob p0 || read p0 1"),
        2,
        1,
        "referenced",
        "\"frob\"",
    );
    // `end` followed by something else than `sched`, a stray `sched`.
    assert_err(
        &format!("{h}par\nread p0 1\nread p0 2\nend explore:2"),
        5,
        5,
        "`sched SCHED`",
        "\"explore:2\"",
    );
    assert_err(&format!("{h}sched A*"), 2, 1, "follows `end`", "\"sched\"");
}

#[test]
fn schedule_errors_name_line_and_column() {
    let h = "version 2\nread p0 1 || read p0 2 @";
    assert_err(h, 2, 25, "a schedule", "end of line");
    assert_err(
        "version 2\npar\nread p0 1\nread p0 2\nend sched",
        5,
        10,
        "a schedule",
        "end of line",
    );
    assert_err(&format!("{h} explore:5"), 2, 34, "0..=4", "\"5\"");
    assert_err(&format!("{h} explore:"), 2, 34, "0..=4", "\"\"");
    assert_err(&format!("{h} explore:2 A*"), 2, 36, "one token", "\"A*\"");
    assert_err(&format!("{h} pct:1"), 2, 26, "pct:SEED:DEPTH", "\"pct:1\"");
    assert_err(&format!("{h} pct:x:1"), 2, 30, "SEED", "\"x\"");
    assert_err(
        &format!("{h} pct:1:0"),
        2,
        32,
        "DEPTH of at least 1",
        "\"0\"",
    );
    assert_err(
        &format!("{h} pct:1:4294967296"),
        2,
        32,
        "DEPTH of at least 1",
        "\"4294967296\"",
    );
    assert_err(&format!("{h} random:-1"), 2, 33, "SEED", "\"-1\"");
    assert_err(
        &format!("{h} #abc"),
        2,
        27,
        "hex digits in pairs",
        "\"abc\"",
    );
    assert_err(&format!("{h} #zz"), 2, 27, "hex digits in pairs", "\"zz\"");
    assert_err(&format!("{h} # comment"), 2, 28, "one token", "\"comment\"");
    assert_err(
        &format!("{h} C*"),
        2,
        26,
        "an actor of this block (A to B)",
        "\"C\"",
    );
    assert_err(&format!("{h} A* c2"), 2, 29, "a run-length item", "\"c2\"");
    assert_err(&format!("{h} frob"), 2, 26, "a schedule", "\"frob\"");
    assert_err(&format!("{h} A"), 2, 27, "a step count", "\"\"");
    assert_err(&format!("{h} A0"), 2, 27, "at least 1", "\"0\"");
    assert_err(&format!("{h} Ax"), 2, 27, "a step count", "\"x\"");
    assert_err(&format!("{h} A..a b"), 2, 31, "a run-length item", "\"b\"");
    assert_err(&format!("{h} A..+x"), 2, 29, "a step name", "\"+x\"");
    assert_err(&format!("{h} A.."), 2, 29, "a step name", "\"\"");
    assert_err(&format!("{h} !"), 2, 27, "after `!`", "end of line");
    assert_err(&format!("{h} ! !"), 2, 28, "a run-length item", "\"!\"");
}

#[test]
fn round_trip_of_generated_blocks() {
    // Schedules of every form around blocks of every size, between ops.
    let scheds = [
        Sched::Explore { preemptions: 0 },
        Sched::Pct { seed: 99, depth: 7 },
        Sched::Random { seed: u64::MAX },
        Sched::Bytes((0..=255).collect()),
        Sched::Steps {
            strict: true,
            items: vec![RunItem {
                actor: 1,
                stop: RunStop::Until("f.prepare.link".to_string()),
            }],
        },
    ];
    for (i, sched) in scheds.into_iter().enumerate() {
        for actors in 2..=8 {
            let mut ops = vec![Op::Dump];
            ops.extend((0..actors).map(|a| Op::Referenced {
                pid: Pid(a as u32),
                addr: i as u64,
            }));
            ops.push(Op::Reclaim);
            let block = Block {
                first: 1,
                actors,
                sched: sched.clone(),
                line: 0,
                sched_line: 0,
                sched_col: 0,
            };
            let s = Stream::with_blocks(ops, vec![block]);
            assert_eq!(s.lines[0], 2);
            assert_eq!(s.blocks[0].line, 3);
            assert_eq!(s.blocks[0].sched_line, actors + 4);
            assert_eq!(*s.lines.last().unwrap(), actors + 5);
            assert_round_trip(&s);
        }
    }
}

#[test]
fn exec_stack_and_exec_shift_are_version_2_ops() {
    let s = ok("version 2\nexec-stack p0 20 4\nexec-shift p0 0x8");
    assert_eq!(
        s.ops,
        vec![
            Op::ExecStack {
                pid: P0,
                addr: 20,
                len: 4
            },
            Op::ExecShift { pid: P0, shift: 8 },
        ]
    );
    assert_eq!(
        print(&s),
        "version 2\nexec-stack p0 20 4\nexec-shift p0 8\n"
    );
    assert_round_trip(&s);
    assert!(s.ops.iter().all(Op::emulator_only));
    // In a block, as the mutator.
    let s = ok("version 2\nexec-shift p0 8 || migrate p0 21 @ explore:2");
    assert_round_trip(&s);
    for text in ["", "version 1\n"] {
        let at = 1 + usize::from(!text.is_empty());
        assert_err(
            &format!("{text}exec-stack p0 1 2"),
            at,
            1,
            "is version 2",
            "\"exec-stack\"",
        );
        assert_err(
            &format!("{text}exec-shift p0 1"),
            at,
            1,
            "is version 2",
            "\"exec-shift\"",
        );
    }
    assert_err("version 2\nexec-shift p0", 2, 14, "SHIFT", "end of line");
    assert_err("version 2\nexec-stack p0 1 x", 2, 17, "LEN", "\"x\"");
}
