//! Every parser crash the nightly job imported (`corpus/parse-crashes/`)
//! replayed through the `parse` fuzz target's check: the parser must not
//! panic and what it accepts must round-trip.

use std::path::Path;

#[test]
fn imported_parse_crashes_no_longer_fail() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/parse-crashes");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus/parse-crashes exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| rmaplab_ops::parse::check_round_trip(&bytes));
        assert!(
            outcome.is_ok(),
            "{} still fails the parse check",
            path.display()
        );
        replayed += 1;
    }
    eprintln!("{replayed} imported parse crash(es) replayed");
}
