//! The reverse-map designs behind [`crate::rmap::Rmap`].
//!
//! `single_list_2004` stands alone; `chain_2010` and `prealloc_2026` are
//! variants of the anon_vma_chain core in `avc`, and `prealloc_2026` reuses
//! `chain_2010`'s era-2022 functions where the 2026 series left them alone
//! (dependencies: `avc` ← `chain_2010` ← `prealloc_2026`).

use std::collections::BTreeSet;

pub mod avc;
pub mod chain_2010;
pub mod prealloc_2026;
pub mod registry;
pub mod single_list_2004;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

/// The bugs `bugs` names (ids of the design's `known` table,
/// case-insensitive), or an error naming the first id `design` cannot
/// re-inject.
fn bug_set(
    design: &str,
    known: &[(&'static str, &str)],
    bugs: &[&str],
) -> Result<BTreeSet<&'static str>, String> {
    let mut set = BTreeSet::new();
    for b in bugs {
        let lower = b.to_ascii_lowercase();
        match known.iter().find(|(id, _)| *id == lower) {
            Some((id, _)) => {
                set.insert(*id);
            }
            None => {
                let ids: Vec<&str> = known.iter().map(|(id, _)| *id).collect();
                return Err(format!(
                    "bug {b} is not re-injectable in {design} (known: {})",
                    ids.join(", ")
                ));
            }
        }
    }
    Ok(set)
}
