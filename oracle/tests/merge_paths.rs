//! The files of `corpus/merge/` each cover one path of the 6.18 MMU that
//! copies anon_vma state (a `vma_merge` case that runs `dup_anon_vma`, a
//! split or an mremap path that runs `anon_vma_clone`); their `# hooks:`
//! line says which hook the path must reach, and with what. This test runs
//! each file on both 6.18 designs, logging the hooks, and checks that the
//! path was taken: `dup_anon_vma import` is a `dup_anon_vma` whose
//! destination had no anon_vma and whose source had one (the importer
//! step); `anon_vma_clone split` / `remap` an `anon_vma_clone` of that kind
//! from a VMA with an anon_vma. (The layouts are checked by the corpus
//! test, against the live kernel's in each header.)

mod common;

use std::path::Path;

use common::{Event, Mutation, Wrap};
use rmaplab::run::runner::{RunOptions, run_design};
use rmaplab_impls::designs::chain_2010::{Chain2010, Era};
use rmaplab_impls::designs::prealloc_2026::Prealloc2026;
use rmaplab_impls::designs::registry::{Design, DesignSpec};
use rmaplab_impls::rmap::{CloneOp, Rmap};

/// The events a `# hooks:` item asks for.
fn wanted(item: &str) -> Box<dyn Fn(&Event) -> bool> {
    match item.trim() {
        "dup_anon_vma import" => Box::new(|e| {
            *e == Event::DupAnonVma {
                dst_had: false,
                src_had: true,
            }
        }),
        "anon_vma_clone split" => Box::new(|e| {
            *e == Event::Clone {
                op: CloneOp::Split,
                src_had: true,
            }
        }),
        "anon_vma_clone remap" => Box::new(|e| {
            *e == Event::Clone {
                op: CloneOp::Remap,
                src_had: true,
            }
        }),
        other => panic!("unknown hooks item `{other}`"),
    }
}

fn check_file<R: Rmap + Clone>(path: &Path, design: R, spec: &DesignSpec) {
    let text = std::fs::read_to_string(path).unwrap();
    let hooks = text
        .lines()
        .find_map(|l| l.strip_prefix("# hooks:"))
        .unwrap_or_else(|| panic!("{}: no `# hooks:` line", path.display()));
    assert!(
        text.lines().any(|l| l.starts_with("# covers:")),
        "{}: no `# covers:` line",
        path.display()
    );
    let stream = rmaplab_ops::parse::parse(&text).unwrap();
    let wrap = Wrap::new(design, Mutation::None);
    let log = wrap.log.clone();
    let r = run_design(&stream, wrap, spec, &RunOptions::default());
    assert!(r.passed(), "{}: {:?}", path.display(), r.failure);
    let log = log.borrow();
    for item in hooks.split(',') {
        let want = wanted(item);
        assert!(
            log.iter().any(&want),
            "{} with {}: no `{}` among {:?}",
            path.display(),
            spec.label(),
            item.trim(),
            log
        );
    }
}

#[test]
fn every_merge_corpus_file_takes_the_path_its_header_names() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/merge");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ops"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    let imports = files
        .iter()
        .filter(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("# hooks: dup_anon_vma import")
        })
        .count();
    assert_eq!(imports, 8, "one file per dup_anon_vma merge case");
    for f in &files {
        check_file(
            f,
            Chain2010::new(Era::E2022),
            &DesignSpec::new(Design::Chain2010),
        );
        check_file(
            f,
            Prealloc2026::new(),
            &DesignSpec::new(Design::Prealloc2026),
        );
    }
}

/// The check itself can fail: a file whose path never imports is caught.
#[test]
fn a_stream_without_an_import_is_told_apart() {
    let stream =
        rmaplab_ops::parse::parse("mmap p0 0 4 rw anon\nwrite p0 0 1\nmmap p0 4 4 rw anon\n")
            .unwrap();
    let wrap = Wrap::new(Chain2010::new(Era::E2022), Mutation::None);
    let log = wrap.log.clone();
    let r = run_design(
        &stream,
        wrap,
        &DesignSpec::new(Design::Chain2010),
        &RunOptions::default(),
    );
    assert!(r.passed());
    let want = wanted("dup_anon_vma import");
    assert!(!log.borrow().iter().any(&want), "{:?}", log.borrow());
}
