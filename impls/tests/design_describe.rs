//! The first line of a design's `describe` (the account of its objects in
//! a failure report) names the design and what configures it: for
//! chain-2010 the era and the anon_vma reuse rule it follows, so a report
//! says which rule was in force.

use rmaplab_impls::designs::chain_2010::{Chain2010, Era};
use rmaplab_impls::designs::prealloc_2026::Prealloc2026;
use rmaplab_impls::mmu::Mmu;
use rmaplab_impls::rmap::Rmap;

fn header<R: Rmap>(rmap: R) -> String {
    let m = Mmu::new(rmap);
    let text = m.rmap().describe(&m, None, &[]);
    text.lines().next().unwrap_or_default().to_string()
}

#[test]
fn chain_2010_names_its_era_and_reuse_rule() {
    assert_eq!(
        header(Chain2010::new(Era::E2010)),
        "chain-2010 era 2010 (reuse Never)"
    );
    assert_eq!(
        header(Chain2010::new(Era::E2015)),
        "chain-2010 era 2015 (reuse Degree)"
    );
    assert_eq!(
        header(Chain2010::new(Era::E2022)),
        "chain-2010 era 2022 (reuse Counters)"
    );
}

#[test]
fn prealloc_2026_names_the_series() {
    assert_eq!(
        header(Prealloc2026::default()),
        "prealloc-2026 (Linux 6.18 + \"mm: clean up anon_vma implementation\" v3)"
    );
}
