//! Readable accounts of an anon_vma_chain design's objects: `describe` for
//! failure reports, `structure` for `Debug` and the tests' before/after
//! comparisons.

use std::fmt::Write as _;

use super::{AnonVma, Core, Reuse};
use crate::arena::Handle;
use crate::rmap::{AnonMapping, VmaId, VmaView};

impl Core {
    /// One VMA with its geometry (or "FREED VMA" for a dangling id).
    fn vma_line(&self, view: &dyn VmaView, vma: VmaId) -> String {
        match view.vma_info(vma) {
            Some(i) => format!("{vma} {} [{}, {}) pgoff {}", i.mm, i.start, i.end, i.pgoff),
            None => format!("{vma} (FREED VMA)"),
        }
    }

    /// The reuse counters of `a` as the model has them.
    fn counters_text(&self, a: &AnonVma) -> String {
        match self.model.reuse {
            Reuse::Never => String::new(),
            Reuse::Degree => format!(" degree {}", a.degree),
            Reuse::Counters => format!(
                " num_children {} num_active_vmas {}",
                a.num_children, a.num_active_vmas
            ),
        }
    }

    /// `header`, the bugs and the deferred failure, then the families (root
    /// and descendants) of `mapping` and of the `vmas`' anon_vmas — each
    /// anon_vma with its parent, counters and set in walk order — then each
    /// VMA's anon_vma and chain.
    pub(crate) fn describe(
        &self,
        header: &str,
        view: &dyn VmaView,
        mapping: Option<AnonMapping>,
        vmas: &[VmaId],
    ) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{header}");
        if !self.bugs.is_empty() {
            let bugs: Vec<&str> = self.bugs.iter().copied().collect();
            let _ = writeln!(s, "  bugs: {}", bugs.join(","));
        }
        if let Some(e) = &self.deferred {
            let _ = writeln!(s, "  deferred failure: {e}");
        }
        let tag = |h: Handle| {
            if Some(h) == mapping {
                " (page->mapping)"
            } else {
                ""
            }
        };
        let mut wanted: Vec<Handle> = mapping.into_iter().collect();
        wanted.extend(vmas.iter().filter_map(|&v| self.anon_vma_of(v)));
        let mut roots: Vec<Handle> = Vec::new();
        for av in wanted {
            match self.anon_vmas.get(av) {
                None => {
                    let _ = writeln!(s, "  anon_vma {av}{}: FREED", tag(av));
                }
                Some(a) if !roots.contains(&a.root) => roots.push(a.root),
                Some(_) => {}
            }
        }
        for root in roots {
            let _ = writeln!(s, "  family of root {root}:");
            for (h, a) in self.anon_vmas.iter().filter(|(_, a)| a.root == root) {
                let _ = writeln!(
                    s,
                    "    anon_vma {h}{}: parent {} refcount {}{}, {} AVC(s):",
                    tag(h),
                    a.parent,
                    a.refcount,
                    self.counters_text(a),
                    a.set.len()
                );
                for c in a.set.all() {
                    match self.avcs.get(c) {
                        Some(avc) => {
                            let key = avc
                                .key
                                .map_or("-".to_string(), |k| format!("[{}, {}]", k.start, k.last));
                            let _ = writeln!(s, "      {key} {}", self.vma_line(view, avc.vma));
                        }
                        None => {
                            let _ = writeln!(s, "      AVC {c} FREED");
                        }
                    }
                }
            }
        }
        for &v in vmas {
            let Some(st) = self.vmas.get(v) else {
                let _ = writeln!(s, "  {}: no rmap state", self.vma_line(view, v));
                continue;
            };
            let chain: Vec<String> = st
                .chain
                .iter()
                .map(|&c| {
                    self.avcs
                        .get(c)
                        .map_or(format!("FREED AVC {c}"), |a| a.anon_vma.to_string())
                })
                .collect();
            let _ = writeln!(
                s,
                "  {}: anon_vma {} chain (head first) [{}]",
                self.vma_line(view, v),
                st.anon_vma.map_or("none".to_string(), |h| h.to_string()),
                chain.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "  live: {} anon_vma(s), {} AVC(s)",
            self.anon_vmas.len(),
            self.avcs.len()
        );
        s
    }

    /// A deterministic rendering of every live object (anon_vmas with their
    /// counters and sets in order, AVCs, VMA states), without allocation
    /// history or the next sequence number: two designs with equal
    /// `structure()` have the same objects.
    pub(crate) fn structure(&self) -> String {
        let mut s = String::new();
        for (h, a) in self.anon_vmas.iter() {
            let set: Vec<String> = a
                .set
                .all()
                .map(|c| match self.avcs.get(c).and_then(|a| a.key) {
                    Some(k) => format!("{c}@{}..{}#{}", k.start, k.last, k.seq),
                    None => format!("{c}@-"),
                })
                .collect();
            let _ = writeln!(
                s,
                "av {h}: root {} parent {} ref {} degree {} children {} active {} set [{}]",
                a.root,
                a.parent,
                a.refcount,
                a.degree,
                a.num_children,
                a.num_active_vmas,
                set.join(" ")
            );
        }
        for (h, a) in self.avcs.iter() {
            let _ = writeln!(s, "avc {h}: {} -> {}", a.vma, a.anon_vma);
        }
        for (v, st) in self.vmas.iter() {
            let _ = writeln!(
                s,
                "vma {v}: anon_vma {:?} chain {:?}",
                st.anon_vma, st.chain
            );
        }
        s
    }
}
