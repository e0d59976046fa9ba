//! Kernel-path coverage: the MMU notes the kernel paths each op took
//! (`rmaplab_impls::mmu::path`), the runner keeps them with
//! `RunOptions::paths`, and the built-in engine's `Coverage` turns them
//! into features (op kind and paths; a process's previous paths and its
//! op's).

use rmaplab::fuzz::engine::Coverage;
use rmaplab::run::runner::{RunOptions, RunReport, run_spec};
use rmaplab_impls::designs::registry::{Design, DesignSpec};
use rmaplab_impls::mmu::path;
use rmaplab_ops::Stream;
use rmaplab_ops::parse::parse;

fn stream(text: &str) -> Stream {
    parse(text).expect("test stream parses")
}

fn run(s: &Stream, design: Design, paths: bool) -> RunReport {
    let opts = RunOptions {
        paths,
        ..RunOptions::fuzzing()
    };
    let r = run_spec(s, &DesignSpec::new(design), &opts);
    assert!(r.passed(), "{:?}", r.failure);
    r
}

/// The path bits of op `i` (0 if it took none).
fn at(r: &RunReport, i: u32) -> u32 {
    r.paths
        .iter()
        .find(|&&(j, _)| j == i)
        .map_or(0, |&(_, m)| m)
}

/// B08's first steps: a write faulting in an anon_vma, a second mapping
/// next to it (other protections) reusing it, an mprotect splitting, an
/// mremap moving the page next to a neighbour it merges with.
const PATHS: &str = "version 2
mmap p0 3 2 rw anon
write p0 3 1
mmap p0 5 2 rwx anon
write p0 5 2
mprotect p0 3 1 r
fork p0
write p0 5 3
mremap p0 6 1 1 to 10
munmap p1 3 4
read p0 3
";

#[test]
fn each_op_notes_the_kernel_paths_it_took() {
    let s = stream(PATHS);
    for design in [Design::Chain2010, Design::Prealloc2026] {
        let r = run(&s, design, true);
        assert_eq!(at(&r, 0), 0, "{design:?}: an mmap of nothing");
        assert_eq!(at(&r, 1), path::PREPARE_ALLOC, "{design:?}");
        assert_eq!(at(&r, 3), path::PREPARE_REUSED, "{design:?}");
        assert_ne!(at(&r, 4) & path::SPLIT, 0, "{design:?}");
        assert_ne!(at(&r, 5) & (path::FORK_ALLOC | path::FORK_REUSED), 0);
        assert_eq!(at(&r, 6), path::COW_COPY, "{design:?}");
        assert_ne!(at(&r, 7) & path::MOVE_VMA, 0, "{design:?}");
        assert_ne!(at(&r, 7) & (path::COPY_VMA_NEW | path::COPY_VMA_MERGED), 0);
        assert_eq!(at(&r, 9), 0, "{design:?}: a read of a present page");
        assert!(r.paths.windows(2).all(|w| w[0].0 < w[1].0), "stream order");
    }
}

#[test]
fn without_the_option_no_path_is_kept() {
    let r = run(&stream(PATHS), Design::Chain2010, false);
    assert!(r.paths.is_empty());
}

#[test]
fn coverage_counts_kind_path_and_sequence_features() {
    let s = stream(PATHS);
    let r = run(&s, Design::Chain2010, true);
    let mut cov = Coverage::default();
    assert!(cov.add_paths(&s, &r.paths));
    let n = cov.path_features();
    // Each op with a path brings its (kind, paths) and (previous, paths).
    assert!(n > r.paths.len(), "{n} features of {} ops", r.paths.len());
    // The same run again brings nothing new.
    assert!(!cov.add_paths(&s, &r.paths));
    assert_eq!(cov.path_features(), n);
    // The same paths in another order: new sequences only.
    let mut swapped = r.paths.clone();
    let (a, b) = (swapped[1].1, swapped[2].1);
    swapped[1].1 = b;
    swapped[2].1 = a;
    assert!(cov.add_paths(&s, &swapped));
    assert!(cov.path_features() > n);
}
