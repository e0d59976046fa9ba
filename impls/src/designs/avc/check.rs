//! The structural self-check of an anon_vma_chain design and the recount
//! of its reuse counters: what the kernel's `validate_mm`,
//! `anon_vma_interval_tree_verify` and the asserts of the 2026 series check,
//! generalised to the whole design and run after every op.

use super::{Core, Reuse, check, dangling_vma};
use crate::arena::{Handle, SecondaryMap};
use crate::rmap::{RmapError, VmaId, VmaView};
use rmaplab_ops::Pid;

impl Core {
    /// INV-ROOT for one chain, where the 2026 series relies on it: every
    /// anon_vma on `vma`'s chain has the same root, so the one root lock
    /// that `anon_vma_clone` and `unlink_anon_vmas` take (patch 4, "remove
    /// unnecessary root lock dance") covers every tree they touch.
    /// `one-root` names the first anon_vma whose root differs.
    pub(crate) fn check_chain_one_root(&self, vma: VmaId, ctx: &str) -> Result<(), RmapError> {
        let mut root = None;
        for c in self.chain_of(vma) {
            let av = self.avc(c, ctx)?.anon_vma;
            let r = self.av(av, ctx)?.root;
            match root {
                None => root = Some(r),
                Some(first) if first == r => {}
                Some(first) => {
                    return Err(check(
                        "one-root",
                        format!(
                            "{ctx}: VMA {vma}'s chain mixes roots {first} and {r} (anon_vma {av}); \
                             one root lock does not cover it"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The recomputed counters of every live anon_vma (INV-COUNT), as
    /// `(num_children, num_active_vmas, refcount)`: children are the live
    /// anon_vmas whose parent it is, plus the self-parent link of a root
    /// while its set is non-empty; active VMAs are those whose `anon_vma` it
    /// is; the refcount is its own reference while its set is non-empty plus,
    /// for a root, one per live non-root anon_vma of its tree. `degree` is
    /// children + active (the 2015 definition, "linked vmas and directly
    /// descending anon_vmas").
    pub(crate) fn recount_all(&self) -> SecondaryMap<(u64, u64, u64)> {
        let mut m = SecondaryMap::with_slots(self.anon_vmas.slots());
        for (h, a) in self.anon_vmas.iter() {
            let linked = u64::from(!a.set.is_empty());
            let self_link = if a.root == h { linked } else { 0 };
            m.insert(h, (self_link, 0, linked));
        }
        for (h, a) in self.anon_vmas.iter() {
            if a.parent != h
                && let Some(p) = m.get_mut(a.parent)
            {
                p.0 += 1;
            }
            if a.root != h
                && let Some(r) = m.get_mut(a.root)
            {
                r.2 += 1;
            }
        }
        for (_, st) in self.vmas.iter() {
            if let Some(av) = st.anon_vma
                && let Some(e) = m.get_mut(av)
            {
                e.1 += 1;
            }
        }
        m
    }

    /// The structural checks, in this order: per VMA, its chain
    /// (`chain-sets`: AVCs point back, each on one chain, no anon_vma twice),
    /// one root (`one-root`, INV-ROOT), every AVC in its set keyed by the
    /// VMA's current interval (`interval-tree`), `vma->anon_vma` in its own
    /// chain (`anon-vma-in-chain`); per anon_vma, root/parent sanity
    /// (`one-root`), set entries pointing back to live VMAs that chain them
    /// (`interval-tree`, `Dangling`), no orphan (`empty-anon-vma`), recounted
    /// refcounts and reuse counters (`counters`, INV-COUNT); no AVC outside
    /// every chain (`leaked-avc`); VMAs of one mm sharing an anon_vma link
    /// the same set (`chain-sets`, INV-CHAIN). Every pointer must be alive
    /// (`Dangling`). Set entries come before `leaked-avc` so that AVCs left
    /// on a freed VMA (B23) are reported as the dangling VMA they reach.
    pub(crate) fn structural_check(&self, view: &dyn VmaView) -> Result<(), RmapError> {
        let tree = self.model.tree;
        let mut chained_avcs = 0usize;
        // The anon_vmas of the VMA being checked, in chain order (chains are
        // short: a scratch vector beats a set on this hot path).
        let mut set: Vec<Handle> = Vec::new();
        // AVCs seen on a chain (each must be on exactly one: its VMA's).
        let mut on_chain: SecondaryMap<()> = SecondaryMap::with_slots(self.avcs.slots());
        for (vma, st) in self.vmas.iter() {
            let Some(info) = view.vma_info(vma) else {
                return Err(dangling_vma(vma, "rmap state kept for"));
            };
            chained_avcs += st.chain.len();
            set.clear();
            let mut root = None;
            for &c in &st.chain {
                let a = self.avc(c, format_args!("VMA {vma}'s chain"))?;
                if a.vma != vma {
                    return Err(check(
                        "chain-sets",
                        format!("AVC {c} on VMA {vma}'s chain belongs to VMA {}", a.vma),
                    ));
                }
                if on_chain.insert(c, ()).is_some() {
                    return Err(check(
                        "chain-sets",
                        format!("AVC {c} is on VMA {vma}'s chain twice"),
                    ));
                }
                let av = self.av(a.anon_vma, format_args!("AVC {c} of VMA {vma}"))?;
                if set.contains(&a.anon_vma) {
                    return Err(check(
                        "chain-sets",
                        format!("VMA {vma} links anon_vma {} twice", a.anon_vma),
                    ));
                }
                set.push(a.anon_vma);
                match root {
                    None => root = Some(av.root),
                    Some(r) if r == av.root => {}
                    Some(r) => {
                        return Err(check(
                            "one-root",
                            format!(
                                "VMA {vma}'s chain mixes roots {r} and {} (anon_vma {})",
                                av.root, a.anon_vma
                            ),
                        ));
                    }
                }
                match a.key {
                    Some(k) if av.set.contains(c, k) => {
                        if tree && (k.start != info.pgoff || k.last != info.pgoff_last()) {
                            return Err(check(
                                "interval-tree",
                                format!(
                                    "AVC {c} of VMA {vma} keyed [{}, {}] but the VMA covers [{}, {}]",
                                    k.start,
                                    k.last,
                                    info.pgoff,
                                    info.pgoff_last()
                                ),
                            ));
                        }
                    }
                    _ => {
                        return Err(check(
                            "interval-tree",
                            format!(
                                "AVC {c} of VMA {vma} is not in anon_vma {}'s set",
                                a.anon_vma
                            ),
                        ));
                    }
                }
            }
            match st.anon_vma {
                Some(av) => {
                    self.av(av, format_args!("VMA {vma}->anon_vma"))?;
                    if !set.contains(&av) {
                        return Err(check(
                            "anon-vma-in-chain",
                            format!("VMA {vma}'s anon_vma {av} is not in its chain"),
                        ));
                    }
                }
                None if !st.chain.is_empty() => {
                    return Err(check(
                        "anon-vma-in-chain",
                        format!("VMA {vma} has a chain but no anon_vma"),
                    ));
                }
                None => {}
            }
        }
        self.check_anon_vmas(view, &on_chain)?;
        if chained_avcs != self.avcs.len() {
            return Err(check(
                "leaked-avc",
                format!(
                    "{} live AVCs but {chained_avcs} on VMA chains",
                    self.avcs.len()
                ),
            ));
        }
        self.check_chain_sets(view)
    }

    /// The per-anon_vma part of [`Core::structural_check`]; `on_chain` holds
    /// the AVCs found on VMA chains.
    fn check_anon_vmas(
        &self,
        view: &dyn VmaView,
        on_chain: &SecondaryMap<()>,
    ) -> Result<(), RmapError> {
        let recounted = self.recount_all();
        for (h, a) in self.anon_vmas.iter() {
            let root = self.av(a.root, format_args!("anon_vma {h}->root"))?;
            if root.root != a.root {
                return Err(check(
                    "one-root",
                    format!("anon_vma {h}'s root {} is not a root", a.root),
                ));
            }
            let parent = self.av(a.parent, format_args!("anon_vma {h}->parent"))?;
            if parent.root != a.root {
                return Err(check(
                    "one-root",
                    format!(
                        "anon_vma {h} and its parent {} have different roots",
                        a.parent
                    ),
                ));
            }
            for c in a.set.all() {
                let avc = self.avc(c, format_args!("anon_vma {h}'s set"))?;
                if avc.anon_vma != h || avc.key.is_none_or(|k| !a.set.contains(c, k)) {
                    return Err(check(
                        "interval-tree",
                        format!("AVC {c} in anon_vma {h}'s set does not point back"),
                    ));
                }
                if view.vma_info(avc.vma).is_none() {
                    return Err(dangling_vma(
                        avc.vma,
                        format_args!("AVC {c} in anon_vma {h}'s set"),
                    ));
                }
                // Chained AVCs point back to the VMA whose chain holds them
                // (checked above), so "on a chain" is "on its VMA's chain".
                if on_chain.get(c).is_none() {
                    return Err(check(
                        "interval-tree",
                        format!(
                            "AVC {c} in anon_vma {h}'s set is not on VMA {}'s chain",
                            avc.vma
                        ),
                    ));
                }
            }
            let (children, active, refcount) = *recounted.get(h).expect("recounted every anon_vma");
            if a.set.is_empty() && refcount == 0 {
                return Err(check(
                    "empty-anon-vma",
                    format!("anon_vma {h} is alive with an empty set and nothing pinning it"),
                ));
            }
            if a.refcount != refcount {
                return Err(check(
                    "counters",
                    format!(
                        "anon_vma {h} refcount {} but {refcount} expected",
                        a.refcount
                    ),
                ));
            }
            let bad = match self.model.reuse {
                Reuse::Never => None,
                Reuse::Degree => (a.degree != children + active)
                    .then(|| format!("degree {} but {} expected", a.degree, children + active)),
                Reuse::Counters => (a.num_children != children || a.num_active_vmas != active)
                    .then(|| {
                        format!(
                            "num_children {} / num_active_vmas {} but {children} / {active} expected",
                            a.num_children, a.num_active_vmas
                        )
                    }),
            };
            if let Some(d) = bad {
                return Err(check("counters", format!("anon_vma {h}: {d}")));
            }
        }
        Ok(())
    }

    /// INV-CHAIN: VMAs of one mm sharing `->anon_vma` have the same chain
    /// set. Each VMA's set is stored sorted in one flat buffer; the VMAs are
    /// then grouped by (mm, anon_vma) (stable: in VMA order) and each is
    /// compared with the first of its group. Runs after the per-VMA checks
    /// (every VMA and AVC alive).
    fn check_chain_sets(&self, view: &dyn VmaView) -> Result<(), RmapError> {
        let mut sets: Vec<Handle> = Vec::new();
        let mut groups: Vec<((Pid, Handle), VmaId, usize, usize)> = Vec::new();
        for (vma, st) in self.vmas.iter() {
            let Some(av) = st.anon_vma else { continue };
            let mm = view.vma_info(vma).expect("checked above").mm;
            let start = sets.len();
            sets.extend(
                st.chain
                    .iter()
                    .map(|&c| self.avcs.get(c).expect("checked above").anon_vma),
            );
            sets[start..].sort_unstable();
            groups.push(((mm, av), vma, start, sets.len()));
        }
        groups.sort_by_key(|g| g.0);
        for family in groups.chunk_by(|a, b| a.0 == b.0) {
            let &((mm, av), first, s, e) = &family[0];
            for &(_, vma, start, end) in &family[1..] {
                if sets[s..e] != sets[start..end] {
                    return Err(check(
                        "chain-sets",
                        format!(
                            "{mm}: VMAs {first} and {vma} share anon_vma {av} but their chains differ ({:?} vs {:?})",
                            &sets[s..e],
                            &sets[start..end]
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
