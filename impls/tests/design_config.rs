//! A design built for an era says which one it follows, through its
//! getter and through `Rmap::config` (the words of a failure report's
//! header and of `--stats`): a design that forgot its era would report
//! the default one while running another kernel's code.

use rmaplab_impls::designs::single_list_2004::{Era, SingleList2004};
use rmaplab_impls::rmap::Rmap;

#[test]
fn single_list_2004_reports_the_era_it_was_built_for() {
    for era in Era::ALL {
        let d = SingleList2004::with_era_and_bugs(era, &[]);
        assert_eq!(d.era(), era);
        let words: Vec<(&str, String)> = d.config();
        // Only an era other than the default is spelled out.
        let expect: Vec<(&str, String)> = if era == Era::default() {
            Vec::new()
        } else {
            vec![("era", era.as_str().to_string())]
        };
        assert_eq!(words, expect, "era {}", era.as_str());
    }
    let d = SingleList2004::with_era_and_bugs(Era::E2006, &["b01"]);
    assert_eq!(d.era(), Era::E2006);
    assert_eq!(
        d.config(),
        [("era", "2006".to_string()), ("bugs", "b01".to_string())]
    );
}
