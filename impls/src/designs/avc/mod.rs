//! The anon_vma_chain core shared by `chain-2010` and `prealloc-2026`.
//!
//! Rik van Riel's anon_vma_chain design (`5beb49305251`, 2.6.34) as Linux
//! has kept it since: the objects, their arenas and everything the kernel
//! versions modelled here do alike. What differs between them — the
//! functions that create and tear down chains (`anon_vma_prepare`,
//! `anon_vma_fork`, `anon_vma_clone`, `dup_anon_vma`, `unlink_anon_vmas`)
//! and the era's merge rule — is a [`Variant`]: `chain_2010::Era` or
//! `prealloc_2026::Series`. [`AvcRmap`] puts the two together and is the
//! [`crate::rmap::Rmap`] the MMU drives.
//!
//! # Objects
//!
//! * `anon_vma { root, parent, refcount, counters, set }` lives in an
//!   [`Arena`]; `root` and `parent` point to itself for a root. Every
//!   non-root anon_vma pins its root with one reference
//!   (`get_anon_vma(anon_vma->root)` in `anon_vma_fork`, 2.6.36
//!   `76545066c852`), so a root may outlive its last AVC. `parent` is kept
//!   in every era (the kernel has it from 3.19) because the reuse counters
//!   need it.
//! * The reuse counters ([`Reuse`]): none (2.6.34 … 3.18), `degree` (3.19
//!   … 5.19, `7a3ef208e662`) or `num_children` + `num_active_vmas` (6.0+,
//!   `2555283eb40d`). The variants update them where the kernel does; the
//!   self-check recounts them.
//! * `anon_vma_chain { vma, anon_vma, key }` lives in its own arena and
//!   links one VMA to one anon_vma. A VMA's `same_vma` list is a `Vec`
//!   whose index 0 is the list head (`list_add` inserts there).
//! * The per-anon_vma set ([`AvcSet`]): the `same_anon_vma` list in
//!   insertion order, or from 3.7 (`bf181b9f9d8d`) the interval tree. The
//!   key `[vm_pgoff, vm_pgoff + pages - 1]` is computed from the VMA's
//!   geometry when the AVC is inserted and stored in the AVC; it changes
//!   ONLY in `anon_vma_interval_tree_pre/post_update_vma`, so a missed
//!   re-key is a stale key the walk really uses.
//! * Walks visit the set in order; with the tree only the AVCs whose stored
//!   interval covers the page index (`anon_vma_interval_tree_foreach`).
//! * Pages (`__folio_set_anon`): an exclusive new page goes to
//!   `vma->anon_vma` (`e8a03feb54ca`), a possibly shared one to the root
//!   (`ea90002b0fa7`, `288468c334e9`); `folio_move_anon_rmap` moves a
//!   reused page to `vma->anon_vma` (`c44b674323f4`).
//!
//! # Cost counters
//!
//! `bytes` = anon_vmas × `sizeof(struct anon_vma)` + AVCs ×
//! `sizeof(struct anon_vma_chain)` of the [`Model`] + 24 per VMA the design
//! has state for (the `anon_vma_chain` list head and `anon_vma` pointer in
//! `vm_area_struct`); sizes as docs/designs.md gives them for x86-64.

mod check;
mod describe;
mod design;
#[cfg(test)]
mod epoch_tests;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use design::{AvcRmap, Variant};
pub use tree::{AvcSet, Key};

use crate::arena::{Arena, Handle, SecondaryMap};
use crate::rmap::{AllocSchedule, AnonMapping, Counters, RmapError, TreeCounters, VmaId, VmaView};

/// Bytes rmap adds to every `vm_area_struct` (`anon_vma_chain` + pointer).
pub const VMA_DELTA_BYTES: u64 = 24;

/// The allocation sites of the anon_vma_chain designs (the names they give
/// [`AllocSchedule::alloc`]): the kernel function, then what it allocates.
pub(crate) const SITE_PREPARE_AVC: &str = "anon_vma_prepare:avc";
pub(crate) const SITE_PREPARE_AV: &str = "anon_vma_prepare:anon_vma";
pub(crate) const SITE_CLONE_AVC: &str = "anon_vma_clone:avc";
pub(crate) const SITE_FORK_AV: &str = "anon_vma_fork:anon_vma";
pub(crate) const SITE_FORK_AVC: &str = "anon_vma_fork:avc";

/// Which reuse bookkeeping the anon_vmas carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// 2.6.34 … 3.18: no reuse, no counters.
    Never,
    /// 3.19 … 5.19: `degree` ("linked vmas and directly descending
    /// anon_vmas", `7a3ef208e662`).
    Degree,
    /// 6.0 …: `num_children` / `num_active_vmas` (`2555283eb40d`).
    Counters,
}

/// What a kernel version's objects look like: the set kind, the reuse
/// counters and the struct sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Model {
    /// The per-anon_vma set is the 3.7 interval tree (else the list).
    pub tree: bool,
    pub reuse: Reuse,
    /// `sizeof(struct anon_vma)`.
    pub anon_vma_bytes: u64,
    /// `sizeof(struct anon_vma_chain)`.
    pub avc_bytes: u64,
}

impl Model {
    /// Linux 6.0 … 6.18: interval tree, `num_children`/`num_active_vmas`,
    /// 96-byte anon_vma `{root, rwsem, refcount, num_children,
    /// num_active_vmas, parent, rb_root_cached}`, 64-byte AVC.
    pub const LINUX_6_18: Model = Model {
        tree: true,
        reuse: Reuse::Counters,
        anon_vma_bytes: 96,
        avc_bytes: 64,
    };
}

/// `struct anon_vma` (the rwsem is not modelled).
#[derive(Clone, Debug)]
pub struct AnonVma {
    pub(crate) root: Handle,
    pub(crate) parent: Handle,
    pub(crate) refcount: u64,
    /// [`Reuse::Degree`].
    pub(crate) degree: u64,
    /// [`Reuse::Counters`].
    pub(crate) num_children: u64,
    /// [`Reuse::Counters`].
    pub(crate) num_active_vmas: u64,
    pub(crate) set: AvcSet,
}

/// `struct anon_vma_chain`.
#[derive(Clone, Copy, Debug)]
pub struct Avc {
    pub(crate) vma: VmaId,
    pub(crate) anon_vma: Handle,
    /// `Some` while the AVC is in its anon_vma's set.
    pub(crate) key: Option<Key>,
}

/// A design's per-VMA state: `vma->anon_vma` and `vma->anon_vma_chain`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmaState {
    pub(crate) anon_vma: Option<Handle>,
    /// `same_vma` list; index 0 is the list head.
    pub(crate) chain: Vec<Handle>,
}

/// The objects of one anon_vma_chain design and the kernel helpers every
/// version shares.
#[derive(Clone)]
pub struct Core {
    pub(crate) model: Model,
    pub(crate) anon_vmas: Arena<AnonVma>,
    pub(crate) avcs: Arena<Avc>,
    /// Only VMAs with an anon_vma or a non-empty chain have an entry.
    pub(crate) vmas: SecondaryMap<VmaState>,
    pub(crate) alloc: AllocSchedule,
    /// Re-injected bugs (ids of the design's `KNOWN_BUGS`).
    pub(crate) bugs: BTreeSet<&'static str>,
    /// Next interval-tree insertion sequence number.
    seq: u64,
    /// The first failure met where the kernel only warns, or inside a hook
    /// that cannot return one (pre/post update); reported by `self_check`.
    pub(crate) deferred: Option<RmapError>,
    /// Trees and lists changed while recording
    /// ([`crate::rmap::Rmap::record_set_writes`]).
    pub(crate) set_writes: Option<Vec<crate::rmap::SetWrite>>,
    /// Prepare at link time (`eager-2010`).
    pub(crate) eager: bool,
    /// The `root` each freed anon_vma slot kept (type-stable memory: the
    /// next occupant reads it until `anon_vma_fork` writes its own).
    pub(crate) ghost_roots: Vec<Option<Handle>>,
    /// `anon_vma_fork` stops after allocating the child's anon_vma
    /// ([`crate::rmap::Rmap::anon_vma_fork_alloc`]); its tail waits in
    /// `pending_fork`.
    pub(crate) fork_split: bool,
    /// `(child, parent's anon_vma, child's anon_vma, its AVC)` between the
    /// two halves of a split `anon_vma_fork`.
    pub(crate) pending_fork: Option<(VmaId, Handle, Handle, Handle)>,
}

/// The `Dangling` error for a freed anon_vma reached from `ctx` (a UAF of an
/// `SLAB_TYPESAFE_BY_RCU` anon_vma in the kernel).
pub(crate) fn dangling_av(av: Handle, ctx: impl fmt::Display) -> RmapError {
    RmapError::Dangling {
        what: "anon_vma".into(),
        detail: format!("{ctx}: anon_vma {av} was freed"),
    }
}

/// The `Dangling` error for a freed anon_vma_chain reached from `ctx`.
pub(crate) fn dangling_avc(avc: Handle, ctx: impl fmt::Display) -> RmapError {
    RmapError::Dangling {
        what: "anon_vma_chain".into(),
        detail: format!("{ctx}: anon_vma_chain {avc} was freed"),
    }
}

/// The `Dangling` error for a VMA the MMU freed, reached from `ctx` (the
/// kernel's `avc->vma` UAF).
pub(crate) fn dangling_vma(vma: VmaId, ctx: impl fmt::Display) -> RmapError {
    RmapError::Dangling {
        what: "vma".into(),
        detail: format!("{ctx}: VMA {vma} was freed"),
    }
}

/// A named assertion or self-check failure (`VM_WARN_ON`/`BUG_ON`).
pub(crate) fn check(name: &'static str, detail: String) -> RmapError {
    RmapError::Check { name, detail }
}

/// A handle used only between `Arena::insert` and fixing up an anon_vma's
/// self-references (never observable: overwritten at once).
fn placeholder() -> Handle {
    Arena::<()>::new().insert(())
}

impl Core {
    /// No objects yet (a freshly booted kernel).
    pub(crate) fn new(model: Model, bugs: BTreeSet<&'static str>) -> Core {
        Core {
            model,
            anon_vmas: Arena::new(),
            avcs: Arena::new(),
            vmas: SecondaryMap::new(),
            alloc: AllocSchedule::default(),
            bugs,
            seq: 0,
            deferred: None,
            set_writes: None,
            eager: false,
            ghost_roots: Vec::new(),
            fork_split: false,
            pending_fork: None,
        }
    }

    /// Whether bug `id` is re-injected (gates the historical code paths).
    pub(crate) fn bug(&self, id: &str) -> bool {
        self.bugs.contains(id)
    }

    // ----- plain accessors -------------------------------------------------

    /// `vma->anon_vma`, not followed (the kernel's plain pointer read).
    pub(crate) fn anon_vma_of(&self, vma: VmaId) -> Option<Handle> {
        self.vmas.get(vma).and_then(|s| s.anon_vma)
    }

    /// Length of `vma->anon_vma_chain` (`list_is_singular` is `== 1`).
    pub(crate) fn chain_len(&self, vma: VmaId) -> usize {
        self.vmas.get(vma).map_or(0, |s| s.chain.len())
    }

    /// A copy of `vma`'s chain (empty without state), to walk while the
    /// chain changes.
    pub(crate) fn chain_of(&self, vma: VmaId) -> Vec<Handle> {
        self.vmas
            .get(vma)
            .map(|s| s.chain.clone())
            .unwrap_or_default()
    }

    /// `vma`'s state, which the caller created.
    pub(crate) fn state_mut(&mut self, vma: VmaId) -> &mut VmaState {
        self.vmas
            .get_mut(vma)
            .expect("caller created the VMA state")
    }

    /// Follows an anon_vma pointer: `Dangling` if it was freed.
    pub(crate) fn av(&self, h: Handle, ctx: impl fmt::Display) -> Result<&AnonVma, RmapError> {
        self.anon_vmas.get(h).ok_or_else(|| dangling_av(h, ctx))
    }

    /// Follows an anon_vma pointer for writing: `Dangling` if it was freed.
    pub(crate) fn av_mut(
        &mut self,
        h: Handle,
        ctx: impl fmt::Display,
    ) -> Result<&mut AnonVma, RmapError> {
        self.anon_vmas.get_mut(h).ok_or_else(|| dangling_av(h, ctx))
    }

    /// Follows an AVC pointer: `Dangling` if it was freed.
    pub(crate) fn avc(&self, h: Handle, ctx: impl fmt::Display) -> Result<Avc, RmapError> {
        self.avcs
            .get(h)
            .copied()
            .ok_or_else(|| dangling_avc(h, ctx))
    }

    /// Checks that `vma` is alive in the view (every hook that acts on it).
    pub(crate) fn alive(
        &self,
        view: &dyn VmaView,
        vma: VmaId,
        ctx: impl fmt::Display,
    ) -> Result<(), RmapError> {
        match view.vma_info(vma) {
            Some(_) => Ok(()),
            None => Err(dangling_vma(vma, ctx)),
        }
    }

    /// Records the first deferred failure (a kernel `VM_WARN_ON`, or a
    /// failure inside a hook that cannot report one).
    pub(crate) fn defer(&mut self, e: RmapError) {
        if self.deferred.is_none() {
            self.deferred = Some(e);
        }
    }

    // ----- object lifetime (mm/rmap.c helpers) -------------------------------

    /// `anon_vma_alloc` (mm/rmap.c): a new root of itself with refcount 1;
    /// `degree = 1` "Reference for first vma" with [`Reuse::Degree`]
    /// (`7a3ef208e662`), zero counters otherwise. The caller has already
    /// passed the allocation schedule.
    pub(crate) fn anon_vma_alloc(&mut self) -> Handle {
        let degree = u64::from(self.model.reuse == Reuse::Degree);
        let h = self.anon_vmas.insert(AnonVma {
            root: placeholder(),
            parent: placeholder(),
            refcount: 1,
            degree,
            num_children: 0,
            num_active_vmas: 0,
            set: AvcSet::new(self.model.tree),
        });
        let a = self.anon_vmas.get_mut(h).expect("just inserted");
        a.root = h;
        a.parent = h;
        h
    }

    /// [`Core::anon_vma_alloc`] as the split `anon_vma_fork` sees it: a
    /// reused slot keeps the `root` its last occupant had (the cache's
    /// constructor runs once per slab object, not per allocation), so
    /// until the fork writes `root` a type-stable reader of the slot sees
    /// the old one.
    pub(crate) fn anon_vma_alloc_stale(&mut self) -> Handle {
        let h = self.anon_vma_alloc();
        if let Some(Some(old)) = self.ghost_roots.get(h.index()).copied() {
            self.anon_vmas.get_mut(h).expect("just allocated").root = old;
        }
        h
    }

    /// Frees `av`'s slot, remembering its `root` for the slot's next
    /// occupant (type-stable memory).
    fn free_anon_vma(&mut self, av: Handle) {
        if let Some(a) = self.anon_vmas.remove(av) {
            let i = av.index();
            if self.ghost_roots.len() <= i {
                self.ghost_roots.resize(i + 1, None);
            }
            self.ghost_roots[i] = Some(a.root);
        }
    }

    /// `put_anon_vma` → `__put_anon_vma` (mm/rmap.c, 2.6.36 `76545066c852`):
    /// drops one reference; the last one frees the anon_vma and then drops
    /// the reference it held on its root, keeping "a root outlives every
    /// anon_vma of its tree".
    pub(crate) fn put_anon_vma(&mut self, av: Handle) -> Result<(), RmapError> {
        let a = self.av_mut(av, "put_anon_vma")?;
        a.refcount = a.refcount.wrapping_sub(1);
        if a.refcount != 0 {
            return Ok(());
        }
        let root = a.root;
        self.free_anon_vma(av);
        if root != av {
            let r = self.av_mut(root, "__put_anon_vma (root)")?;
            r.refcount = r.refcount.wrapping_sub(1);
            if r.refcount == 0 {
                self.free_anon_vma(root);
            }
        }
        Ok(())
    }

    /// `anon_vma_chain_alloc` + the field assignments: a new AVC from `vma`
    /// to `av`, on no list and in no set yet. The caller has already passed
    /// the allocation schedule.
    pub(crate) fn avc_alloc(&mut self, vma: VmaId, av: Handle) -> Handle {
        self.avcs.insert(Avc {
            vma,
            anon_vma: av,
            key: None,
        })
    }

    /// `list_add(&avc->same_vma, &vma->anon_vma_chain)`: `avc` goes to the
    /// head of `vma`'s chain, which the caller created (the part of
    /// `anon_vma_chain_link` the 2026 series calls `anon_vma_chain_assign`).
    pub(crate) fn anon_vma_chain_assign(&mut self, vma: VmaId, avc: Handle) {
        self.state_mut(vma).chain.insert(0, avc);
    }

    /// `anon_vma_chain_link` (mm/rmap.c): a new AVC from `vma` to `av`, at
    /// the head of `vma`'s chain and in `av`'s set. The caller has already
    /// passed the allocation schedule and created `vma`'s state.
    pub(crate) fn anon_vma_chain_link(
        &mut self,
        view: &dyn VmaView,
        vma: VmaId,
        av: Handle,
    ) -> Result<(), RmapError> {
        self.av(av, "anon_vma_chain_link")?;
        let avc = self.avc_alloc(vma, av);
        self.anon_vma_chain_assign(vma, avc);
        self.anon_vma_interval_tree_insert(view, avc)
    }

    /// `anon_vma_chain_link` as `anon_vma_prepare` did it in 2.6.34–2.6.35:
    /// `list_add` to the head of `av`'s list (B08; `26ba0cb63cb8` made it
    /// `list_add_tail`). In the tree eras the same as the plain link.
    pub(crate) fn anon_vma_chain_link_head(
        &mut self,
        view: &dyn VmaView,
        vma: VmaId,
        av: Handle,
    ) -> Result<(), RmapError> {
        self.av(av, "anon_vma_chain_link")?;
        let avc = self.avc_alloc(vma, av);
        self.anon_vma_chain_assign(vma, avc);
        let info = view
            .vma_info(vma)
            .ok_or_else(|| dangling_vma(vma, "anon_vma_chain_link"))?;
        let key = Key {
            start: info.pgoff,
            last: info.pgoff_last(),
            seq: self.seq,
        };
        self.seq += 1;
        self.av_mut(av, "anon_vma_chain_link")?
            .set
            .insert_head(avc, key);
        self.avcs.get_mut(avc).expect("new").key = Some(key);
        Ok(())
    }

    /// `anon_vma_moveto_tail` (mm/rmap.c, 3.3 … 3.6): walking `vma`'s
    /// chain from its tail, each AVC leaves its anon_vma's list and is
    /// added back at the tail (under the root lock). No-op with the tree.
    pub(crate) fn anon_vma_moveto_tail(&mut self, vma: VmaId) {
        if self.model.tree {
            return;
        }
        for c in self.chain_of(vma).into_iter().rev() {
            let Some(a) = self.avcs.get(c) else { continue };
            let av = a.anon_vma;
            if let Some(x) = self.anon_vmas.get_mut(av) {
                x.set.move_to_tail(c);
                let root = x.root;
                self.note_set_write(av, root);
            }
        }
    }

    /// `anon_vma_interval_tree_insert` (mm/interval_tree.c, 3.7
    /// `bf181b9f9d8d`; list eras: `list_add_tail` of `same_anon_vma`,
    /// `26ba0cb63cb8`): puts `avc` in its anon_vma's set under its VMA's
    /// geometry now, after every equal start, and stores the key in the AVC.
    pub(crate) fn anon_vma_interval_tree_insert(
        &mut self,
        view: &dyn VmaView,
        avc: Handle,
    ) -> Result<(), RmapError> {
        let a = self.avc(avc, "anon_vma_interval_tree_insert")?;
        let info = view
            .vma_info(a.vma)
            .ok_or_else(|| dangling_vma(a.vma, "anon_vma_interval_tree_insert"))?;
        let key = Key {
            start: info.pgoff,
            last: info.pgoff_last(),
            seq: self.seq,
        };
        self.seq += 1;
        let x = self.av_mut(a.anon_vma, "anon_vma_interval_tree_insert")?;
        x.set.insert(avc, key);
        let root = x.root;
        self.note_set_write(a.anon_vma, root);
        self.avcs.get_mut(avc).expect("checked").key = Some(key);
        Ok(())
    }

    /// Records a change to `av`'s set for the MMU's lock check.
    fn note_set_write(&mut self, av: Handle, root: Handle) {
        if let Some(w) = &mut self.set_writes {
            w.push(crate::rmap::SetWrite { anon_vma: av, root });
        }
    }

    /// `anon_vma_interval_tree_remove` (list eras: `list_del` of
    /// `same_anon_vma`): takes `avc` out of its anon_vma's set if it is in
    /// (its stored key locates it).
    pub(crate) fn anon_vma_interval_tree_remove(&mut self, avc: Handle) -> Result<(), RmapError> {
        let a = self.avc(avc, "anon_vma_interval_tree_remove")?;
        if let Some(key) = a.key {
            let x = self.av_mut(a.anon_vma, "anon_vma_interval_tree_remove")?;
            x.set.remove(avc, key);
            let root = x.root;
            self.note_set_write(a.anon_vma, root);
            self.avcs.get_mut(avc).expect("checked").key = None;
        }
        Ok(())
    }

    /// `anon_vma_interval_tree_pre_update_vma` (mm/vma.c, 3.7
    /// `bf181b9f9d8d`): every AVC of `vma` leaves its tree before the MMU
    /// changes `vm_start`, `vm_end` or `vm_pgoff`. No-op with the list.
    pub(crate) fn anon_vma_interval_tree_pre_update_vma(&mut self, vma: VmaId) {
        if !self.model.tree {
            return;
        }
        let chain = self.chain_of(vma);
        for c in chain {
            if let Err(e) = self.anon_vma_interval_tree_remove(c) {
                self.defer(e);
            }
        }
    }

    /// `anon_vma_interval_tree_post_update_vma` (mm/vma.c): re-inserts every
    /// AVC of `vma` (chain order) under its new geometry, keeping "every AVC
    /// is keyed by its VMA's current interval". An AVC still in its tree (no
    /// pre-update) is a deferred `interval-tree` failure — the kernel would
    /// corrupt its rbtree. No-op with the list.
    pub(crate) fn anon_vma_interval_tree_post_update_vma(
        &mut self,
        view: &dyn VmaView,
        vma: VmaId,
    ) {
        if !self.model.tree {
            return;
        }
        let chain = self.chain_of(vma);
        for c in chain {
            match self.avcs.get(c).copied() {
                None => self.defer(dangling_avc(c, "post_update")),
                Some(a) if a.key.is_some() => self.defer(check(
                    "interval-tree",
                    format!(
                        "post_update of VMA {vma}: AVC {c} is still in its tree (no pre_update)"
                    ),
                )),
                Some(_) => {
                    if let Err(e) = self.anon_vma_interval_tree_insert(view, c) {
                        self.defer(e);
                    }
                }
            }
        }
    }

    // ----- merge rules (mm/vma.c) ------------------------------------------

    /// `vma_is_fork_child` (6.18.y; `vma_had_uncowed_parents` in
    /// `879bca0a2c4f`): the VMA has an anon_vma and a non-singular chain, i.e.
    /// it was forked (or cloned from a forked VMA) and may hold CoW pages.
    pub(crate) fn vma_is_fork_child(&self, v: Option<VmaId>) -> bool {
        v.is_some_and(|v| self.anon_vma_of(v).is_some() && self.chain_len(v) != 1)
    }

    /// Linux 6.18.y's `is_mergeable_anon_vma` for a range carrying
    /// `src_anon` onto `tgt` (`middle` = `vmg->middle`, `copied_from` =
    /// `vmg->copied_from`): `879bca0a2c4f` ("mm/vma: fix incorrectly
    /// disallowed anonymous VMA merges", 2025) plus the Jan 2026 stable fixes
    /// `61f67c230a5e` and `3b617fd3d317` ("enforce VMA fork limit on
    /// unfaulted,faulted mremap merge too"). Only the source faulted →
    /// neither the middle nor the copied-from VMA may be a fork child; only
    /// the target faulted → the target must not be one; else the anon_vmas
    /// must be equal. (6.18.0 had no `copied_from` test for mremap copies.)
    /// Keeps "a merge never joins VMAs whose chains differ".
    pub(crate) fn is_mergeable_anon_vma(
        &self,
        tgt: VmaId,
        src_anon: Option<Handle>,
        middle: Option<VmaId>,
        copied_from: Option<VmaId>,
    ) -> bool {
        match (self.anon_vma_of(tgt), src_anon) {
            (None, Some(_)) => {
                !self.vma_is_fork_child(middle) && !self.vma_is_fork_child(copied_from)
            }
            (Some(_), None) => !self.vma_is_fork_child(Some(tgt)),
            (t, s) => t == s,
        }
    }

    /// The prev/next check of a three-way merge: `!a || !b || a == b` in
    /// every era (3.0–6.2 `is_mergeable_anon_vma(prev, next, NULL)`; 6.18
    /// `can_vma_merge_right`, formerly `are_anon_vmas_compatible`).
    pub(crate) fn anon_vmas_compatible(&self, prev: VmaId, next: VmaId) -> bool {
        let a = self.anon_vma_of(prev);
        let b = self.anon_vma_of(next);
        a.is_none() || b.is_none() || a == b
    }

    // ----- pages and walks (mm/rmap.c) -------------------------------------

    /// `__folio_set_anon`: an exclusive new page goes to `vma->anon_vma`, a
    /// possibly shared one to the root, so every VMA that may map it can
    /// reach it. Called by `folio_add_new_anon_rmap`.
    pub(crate) fn folio_add_new_anon_rmap(
        &self,
        vma: VmaId,
        exclusive: bool,
    ) -> Result<AnonMapping, RmapError> {
        let Some(av) = self.anon_vma_of(vma) else {
            return Err(check(
                "no-anon-vma",
                format!("folio_add_new_anon_rmap in VMA {vma} which has no anon_vma"),
            ));
        };
        let root = self.av(av, "__folio_set_anon")?.root;
        if exclusive {
            return Ok(av);
        }
        self.av(root, "__folio_set_anon (root)")?;
        Ok(root)
    }

    /// `folio_move_anon_rmap` (`c44b674323f4`, 2010): an exclusively owned
    /// page reused by a write fault moves to `vma->anon_vma`, the most
    /// specific anon_vma that reaches `vma`.
    pub(crate) fn folio_move_anon_rmap(&self, vma: VmaId) -> Result<AnonMapping, RmapError> {
        let Some(av) = self.anon_vma_of(vma) else {
            return Err(check(
                "no-anon-vma",
                format!("folio_move_anon_rmap in VMA {vma} which has no anon_vma"),
            ));
        };
        self.av(av, "folio_move_anon_rmap")?;
        Ok(av)
    }

    /// `rmap_walk_anon`: takes the root's lock (root alive), then visits the
    /// VMAs of the page's anon_vma set in order; with the tree only those
    /// whose stored interval covers `index`. `Dangling` for a freed
    /// anon_vma or AVC; with `vmas_checked` also for a covering AVC whose
    /// VMA the MMU freed (which the MMU reports as well when it follows the
    /// returned id).
    pub(crate) fn rmap_walk_anon(
        &self,
        view: &dyn VmaView,
        mapping: AnonMapping,
        index: u64,
        out: &mut Vec<VmaId>,
        vmas_checked: bool,
    ) -> Result<(), RmapError> {
        let a = self.av(mapping, "rmap walk from folio->mapping")?;
        // Between a split anon_vma_fork's allocation and its link the root
        // field is a reused slot's old value (type-stable memory): the
        // walker locked that slot, whose memory stays an anon_vma.
        let unset = self.pending_fork.is_some_and(|(_, _, av, _)| av == mapping);
        if !unset {
            self.av(a.root, "rmap walk: anon_vma->root (lock)")?;
        }
        match &a.set {
            AvcSet::List(l) => {
                for &c in l {
                    out.push(self.avc(c, "rmap walk")?.vma);
                }
            }
            AvcSet::Tree(t) => {
                for (_, &c) in t.range(..=(index, u64::MAX)) {
                    let avc = self.avc(c, "rmap walk")?;
                    if avc.key.is_some_and(|k| k.last >= index) {
                        if vmas_checked && view.vma_info(avc.vma).is_none() {
                            return Err(dangling_vma(
                                avc.vma,
                                format_args!(
                                    "rmap walk of anon_vma {mapping} index {index}: AVC {c}"
                                ),
                            ));
                        }
                        out.push(avc.vma);
                    }
                }
            }
        }
        Ok(())
    }

    // ----- accounting --------------------------------------------------------

    /// Mutation counts of every container the self-check and the walk read.
    pub(crate) fn epoch(&self) -> u64 {
        self.anon_vmas.epoch()
            + self.avcs.epoch()
            + self.vmas.epoch()
            + u64::from(self.deferred.is_some())
    }

    /// Live anon_vmas and AVCs, bytes by the model's sizes plus 24 per VMA
    /// with rmap state, successful allocations so far.
    pub(crate) fn counters(&self) -> Counters {
        let anon_vmas = self.anon_vmas.len() as u64;
        let avcs = self.avcs.len() as u64;
        let vmas = self.vmas.len() as u64;
        Counters {
            anon_vmas,
            avcs,
            bytes: anon_vmas * self.model.anon_vma_bytes
                + avcs * self.model.avc_bytes
                + vmas * VMA_DELTA_BYTES,
            allocations: self.alloc.made(),
        }
    }

    /// One tree per root anon_vma (`anon_vma->root`, the lock a walk takes):
    /// its anon_vmas, the AVCs in their sets, bytes by the model's sizes plus
    /// 24 per VMA linked into the tree, and those VMAs (each once), in
    /// root-handle order.
    pub(crate) fn fork_trees(&self) -> Vec<TreeCounters> {
        let mut trees: BTreeMap<Handle, (TreeCounters, BTreeSet<VmaId>)> = BTreeMap::new();
        for (_, a) in self.anon_vmas.iter() {
            let (t, vmas) = trees.entry(a.root).or_insert_with(|| {
                (
                    TreeCounters {
                        root: a.root,
                        anon_vmas: 0,
                        avcs: 0,
                        bytes: 0,
                        vmas: 0,
                    },
                    BTreeSet::new(),
                )
            });
            t.anon_vmas += 1;
            t.bytes += self.model.anon_vma_bytes;
            for c in a.set.all() {
                t.avcs += 1;
                t.bytes += self.model.avc_bytes;
                if let Some(avc) = self.avcs.get(c) {
                    vmas.insert(avc.vma);
                }
            }
        }
        trees
            .into_values()
            .map(|(mut t, vmas)| {
                t.vmas = vmas.len() as u64;
                t.bytes += t.vmas * VMA_DELTA_BYTES;
                t
            })
            .collect()
    }

    /// A page's tree is its anon_vma's root (a page may move between
    /// anon_vmas of one tree, never across trees).
    pub(crate) fn tree_of(&self, mapping: AnonMapping) -> Option<Handle> {
        self.anon_vmas.get(mapping).map(|a| a.root)
    }

    /// The `root` field of `mapping`'s slot, read as type-stable memory:
    /// the occupant's (stale right after a split fork's allocation) or
    /// what a free slot kept.
    pub(crate) fn slot_root(&self, mapping: AnonMapping) -> Option<Handle> {
        match self.anon_vmas.occupant(mapping) {
            Some(h) => self.anon_vmas.get(h).map(|a| a.root),
            None => self.ghost_roots.get(mapping.index()).copied().flatten(),
        }
    }
}
