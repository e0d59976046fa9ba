//! Design 3: the 2026 preallocated-fork anon_vma (`prealloc-2026`).
//!
//! `chain-2010` era 2022 (Linux 6.18: the counters of `2555283eb40d`, the
//! 6.18.y merge rule) plus Lorenzo Stoakes' nine-patch series "[PATCH v3
//! 0/9] mm: clean up anon_vma implementation" (18 Jan 2026; docs/designs.md
//! has the linux-next ids). This file holds only what the series changes;
//! everything else — `anon_vma_prepare`, the counters, the interval tree,
//! the walk, the page rules, the merge rule, the self-check — is the
//! anon_vma_chain core's or `chain-2010`'s, called as they are.
//!
//! | # | patch | functions here |
//! |---|---|---|
//! | 1 | asserts in `anon_vma_clone`/`unlink_anon_vmas` | `check_anon_vma_clone`; the `VM_WARN_ON_ONCE` in `unlink_anon_vmas` |
//! | 2 | `anon_vma_fork` allocates anon_vma + AVC *before* cloning, frees them on reuse or error | `anon_vma_fork` (undone by `b23`: `anon_vma_fork_b23`) |
//! | 3 | clone and unlink return early for unfaulted VMAs | `anon_vma_clone`, `unlink_anon_vmas` |
//! | 4 | one root lock instead of the lock dance | `anon_vma_clone`, `unlink_anon_vmas` check INV-ROOT (`one-root`) on entry; in a block, every tree change must hold the root's lock for write (`lock-discipline`, the MMU's `check_set_writes`) |
//! | 5 | no `anon_vma_merge` | none: the MMU calls `unlink_anon_vmas` for the removed VMA |
//! | 6, 7 | prototypes internal; `vma_is_attached()` | none (see "Trait gaps") |
//! | 8 | AVCs allocated in a first pass (`anon_vma_chain_assign`), inserted in trees in a second | `anon_vma_clone`, `cleanup_partial_anon_vmas` |
//! | 9 | `enum vma_operation`, `maybe_reuse_anon_vma` (fork only), `VMA_OP_MERGE_UNFAULTED ⇒ singular src` | [`VmaOperation`], `maybe_reuse_anon_vma`, `check_anon_vma_clone`, `Series::dup_anon_vma` |
//!
//! # Reuse-candidate order
//!
//! The list operations are modelled as read in mainline (pass 1 walks
//! `src`'s chain forward with `list_add`, pass 2 walks `dst`'s backwards), so
//! every clone reverses the list and fork tries reuse candidates in `src`'s
//! `same_vma` order, head to tail: after a fork chain A → B → C → D the
//! list of D is `[D, B, A, C]` (test
//! `fork_chain_reuse_follows_the_source_list_order`; sources in
//! docs/designs.md).
//!
//! # Failure paths (`fail-alloc N`)
//!
//! Allocation sites, in the order the kernel allocates: `anon_vma_prepare:avc`
//! then `anon_vma_prepare:anon_vma` (only if no neighbour is reused);
//! `anon_vma_fork:anon_vma` then `anon_vma_fork:avc` (patch 2: before the
//! clone) then one `anon_vma_clone:avc` per source chain entry (patch 8: all
//! before any tree insertion). Every failure leaves the objects and the
//! `anon_vmas`/`avcs`/`bytes` counters as they were; `allocations` grows by
//! the allocations made before the failing one.
//!
//! # Re-injectable bug
//!
//! * `b23` (docs/bugs.md, synthetic, series-intermediate): patch 3 without
//!   patch 2. `anon_vma_fork` clones first and allocates afterwards; if an
//!   allocation fails it calls `unlink_anon_vmas(vma)` with `vma->anon_vma
//!   == NULL`, which patch 3 turns into an early return (its
//!   `VM_WARN_ON_ONCE` is deferred as the check `unlink_anon_vmas`). The
//!   cloned AVCs stay in the parent's trees pointing at the child VMA that
//!   `dup_mmap` frees; the next walk covering them, and the self-check,
//!   report `Dangling` for the VMA (the self-check puts structural failures
//!   before deferred warnings).
//!
//! # The series' merge assert and the merge rule
//!
//! Patch 9's `VMA_OP_MERGE_UNFAULTED ⇒ list_is_singular(src chain)` holds
//! only with `3b617fd3d317`, which the 6.18.y merge rule includes: an mremap
//! copy of a fork child no longer merges into an unfaulted neighbour.
//!
//! # Trait gaps
//!
//! * `check_anon_vma_clone`'s `op != VMA_OP_MERGE_UNFAULTED ⇒
//!   !vma_is_attached(dst)` (patches 7, 9) cannot be checked: [`VmaView`]
//!   does not say whether a VMA is linked into its mm yet.
//! * The kernel's tree descent reads `avc->vma->vm_pgoff` of every node on
//!   its path; the walk here dereferences only the VMAs of covering AVCs.

use std::collections::BTreeSet;
use std::fmt;

use super::avc::{
    AvcRmap, Core, Model, SITE_CLONE_AVC, SITE_FORK_AV, SITE_FORK_AVC, SITE_PREPARE_AV,
    SITE_PREPARE_AVC, Variant, VmaState, check, dangling_vma,
};
use super::chain_2010::{self, Ref};
use crate::arena::Handle;
use crate::rmap::{CloneOp, RmapError, VmaId, VmaView};

/// Every allocation site of this design, in kernel allocation order per
/// function.
pub const ALLOC_SITES: &[&str] = &[
    SITE_PREPARE_AVC,
    SITE_PREPARE_AV,
    SITE_FORK_AV,
    SITE_FORK_AVC,
    SITE_CLONE_AVC,
];

use super::registry::bug::{Bug, Injection, count_injectable, injectable};

/// The catalogued bugs of this design (`docs/bugs.md`), each described
/// once; the registry gathers them.
pub const BUGS: &[Bug] = &[Bug {
    id: "b23",
    title: "2026 series with patch 3 but not patch 2 (skip-unfaulted before prealloc-fork)",
    commit: "synthetic (series-intermediate)",
    years: "2026",
    era: None,
    invariant: "failed-op-trace",
    needs: &[],
    injection: Injection::Injected(
        "2026 series patch 3 without patch 2: anon_vma_fork allocates after the clone and its \
         error path's unlink_anon_vmas returns early, leaving AVCs of the freed child VMA in the \
         trees",
    ),
}];

/// The injectable ids of [`BUGS`] with how each is injected: what
/// [`Prealloc2026::with_bugs`] accepts.
pub const KNOWN_BUGS: &[(&str, &str)] = &injectable::<{ count_injectable(BUGS) }>(BUGS);

/// Why `anon_vma_clone` runs: the series' `enum vma_operation` (patch 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmaOperation {
    /// `VMA_OP_SPLIT` (`__split_vma`).
    Split,
    /// `VMA_OP_MERGE_UNFAULTED` (`dup_anon_vma`).
    MergeUnfaulted,
    /// `VMA_OP_REMAP` (`copy_vma`).
    Remap,
    /// `VMA_OP_FORK` (`anon_vma_fork`).
    Fork,
}

impl VmaOperation {
    /// The kernel's enumerator name (`enum vma_operation`, mm/internal.h
    /// after patch 9), used in `check_anon_vma_clone` reports.
    pub fn kernel_name(self) -> &'static str {
        match self {
            VmaOperation::Split => "VMA_OP_SPLIT",
            VmaOperation::MergeUnfaulted => "VMA_OP_MERGE_UNFAULTED",
            VmaOperation::Remap => "VMA_OP_REMAP",
            VmaOperation::Fork => "VMA_OP_FORK",
        }
    }
}

impl From<CloneOp> for VmaOperation {
    /// The trait's clone reasons map one-to-one onto patch 9's kinds (fork
    /// has its own hook); used by [`crate::rmap::Rmap::anon_vma_clone`].
    fn from(op: CloneOp) -> Self {
        match op {
            CloneOp::Split => VmaOperation::Split,
            CloneOp::MergeUnfaulted => VmaOperation::MergeUnfaulted,
            CloneOp::Remap => VmaOperation::Remap,
        }
    }
}

/// Design 3 (`prealloc-2026`): Linux 6.18's anon_vma_chain with the nine
/// patches of "mm: clean up anon_vma implementation" (January 2026).
pub type Prealloc2026 = AvcRmap<Series>;

/// The [`Variant`] of the 2026 series: `chain-2010` era 2022 where the
/// series changes nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Series;

impl Default for Prealloc2026 {
    fn default() -> Self {
        Prealloc2026::new()
    }
}

impl Prealloc2026 {
    /// A design with no re-injected bug and no objects.
    pub fn new() -> Self {
        Self::build(Series, Model::LINUX_6_18, BTreeSet::new())
    }

    /// A design with the named bugs re-injected (ids of [`KNOWN_BUGS`],
    /// case-insensitive), as the oracle builds it for `--bug`. Panics on an
    /// id this design does not know: callers validate user input first (the
    /// oracle's catalogue, or [`Prealloc2026::try_with_bugs`]).
    pub fn with_bugs(bugs: &[&str]) -> Self {
        Self::try_with_bugs(bugs).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Prealloc2026::with_bugs`], with an unknown id as an error naming
    /// it.
    pub fn try_with_bugs(bugs: &[&str]) -> Result<Self, String> {
        let bugs = super::bug_set("prealloc-2026", KNOWN_BUGS, bugs)?;
        Ok(Self::build(Series, Model::LINUX_6_18, bugs))
    }
}

/// Drops `vma`'s entry when it holds neither an anon_vma nor a chain,
/// keeping "only VMAs with rmap state have an entry" (so a failed op leaves
/// no trace).
fn tidy(core: &mut Core, vma: VmaId) {
    if core
        .vmas
        .get(vma)
        .is_some_and(|s| s.anon_vma.is_none() && s.chain.is_empty())
    {
        core.vmas.remove(vma);
    }
}

/// `check_anon_vma_clone` (mm/rmap.c, patches 1 and 9): the clone's
/// preconditions as `VM_WARN_ON_ONCE`s, reported as the check
/// `check_anon_vma_clone` before anything changes. Called first by
/// `anon_vma_clone`.
fn check_anon_vma_clone(
    core: &Core,
    view: &dyn VmaView,
    dst: VmaId,
    src: VmaId,
    op: VmaOperation,
) -> Result<(), RmapError> {
    let d = view
        .vma_info(dst)
        .ok_or_else(|| dangling_vma(dst, "anon_vma_clone (dst)"))?;
    let s = view
        .vma_info(src)
        .ok_or_else(|| dangling_vma(src, "anon_vma_clone (src)"))?;
    let fail = |what: &dyn fmt::Display| {
        Err(check(
            "check_anon_vma_clone",
            format!("{} clone {src} -> {dst}: {what}", op.kernel_name()),
        ))
    };
    let fork = op == VmaOperation::Fork;
    let (src_av, dst_av) = (core.anon_vma_of(src), core.anon_vma_of(dst));
    if !fork && d.mm != s.mm {
        return fail(&format_args!(
            "not a fork but dst is in {} and src in {}",
            d.mm, s.mm
        ));
    }
    if src_av.is_none() && core.chain_len(src) != 0 {
        return fail(&"src has no anon_vma but a non-empty anon_vma_chain");
    }
    if src_av.is_none() && dst_av.is_some() {
        return fail(&"src has no anon_vma but dst has one");
    }
    if core.chain_len(dst) != 0 {
        return fail(&"dst's anon_vma_chain is not empty");
    }
    if let Some(a) = dst_av
        && Some(a) != src_av
    {
        return fail(&format_args!("dst->anon_vma {a} is not src->anon_vma"));
    }
    if !fork && src_av.is_some() && dst_av.is_none() {
        return fail(&"dst->anon_vma is not set for a non-fork clone");
    }
    if op == VmaOperation::MergeUnfaulted && core.chain_len(src) != 1 {
        return fail(&format_args!(
            "src's anon_vma_chain has {} entries, not one (a fork child)",
            core.chain_len(src)
        ));
    }
    // `op != VMA_OP_MERGE_UNFAULTED ⇒ !vma_is_attached(dst)`: not
    // observable through VmaView (module docs, "Trait gaps").
    Ok(())
}

/// `maybe_reuse_anon_vma` (mm/rmap.c, patch 9; the test of `2555283eb40d`):
/// on fork, `dst` adopts `av` if it has no anon_vma yet and `av` has no VMA
/// and at most one child, keeping anon_vmas bounded under fork/exit loops.
/// Called by `anon_vma_clone`'s second pass for `VMA_OP_FORK`.
fn maybe_reuse_anon_vma(core: &mut Core, dst: VmaId, av: Handle) -> Result<(), RmapError> {
    if core.anon_vma_of(dst).is_some() {
        return Ok(());
    }
    let a = core.av(av, "maybe_reuse_anon_vma")?;
    if a.num_active_vmas > 0 || a.num_children > 1 {
        return Ok(());
    }
    chain_2010::ref_get(core, av, Ref::Vma)?;
    core.state_mut(dst).anon_vma = Some(av);
    Ok(())
}

/// `anon_vma_clone(dst, src, operation)` (mm/rmap.c after patches 3, 8, 9):
/// after `check_anon_vma_clone`, an unfaulted `src` is a no-op (patch 3);
/// else pass 1 allocates one AVC per `src` chain entry (walking `src`
/// forward, `list_add` to `dst`, no tree yet) and on failure frees them all
/// (`cleanup_partial_anon_vmas`); pass 2 walks `dst`'s list backwards
/// inserting each AVC in its tree and, for fork only, trying
/// `maybe_reuse_anon_vma`; a non-fork clone counts `dst` in its
/// anon_vma's `num_active_vmas`. Keeps "dst links exactly src's anon_vmas".
/// The caller has set up `dst`'s state as `vm_area_dup`, `dup_anon_vma` or
/// fork leave it.
fn anon_vma_clone(
    core: &mut Core,
    view: &dyn VmaView,
    dst: VmaId,
    src: VmaId,
    op: VmaOperation,
) -> Result<(), RmapError> {
    check_anon_vma_clone(core, view, dst, src, op)?;
    core.check_chain_one_root(src, "anon_vma_clone")?;
    let Some(active) = core.anon_vma_of(src) else {
        return Ok(());
    };
    core.av(active, "anon_vma_clone: src->anon_vma")?;
    let mut targets = Vec::new();
    for p in core.chain_of(src) {
        let av = core.avc(p, "anon_vma_clone: src chain")?.anon_vma;
        core.av(av, "anon_vma_clone: src chain")?;
        targets.push(av);
    }
    if core.vmas.get(dst).is_none() {
        core.vmas.insert(dst, VmaState::default());
    }
    // Pass 1: allocate, unlocked, no tree insertion (patch 8).
    for av in targets {
        if let Err(e) = core.alloc.alloc(SITE_CLONE_AVC) {
            cleanup_partial_anon_vmas(core, dst);
            return Err(e);
        }
        let h = core.avc_alloc(dst, av);
        core.anon_vma_chain_assign(dst, h);
    }
    // Pass 2: one root lock (patch 4), reverse walk of dst (patches 8, 9).
    let dst_chain = core.state_mut(dst).chain.clone();
    for &h in dst_chain.iter().rev() {
        core.anon_vma_interval_tree_insert(view, h)?;
        if op == VmaOperation::Fork {
            let av = core.avc(h, "anon_vma_clone pass 2")?.anon_vma;
            maybe_reuse_anon_vma(core, dst, av)?;
        }
    }
    if op != VmaOperation::Fork {
        let d = core
            .anon_vma_of(dst)
            .expect("check_anon_vma_clone: dst->anon_vma set");
        chain_2010::ref_get(core, d, Ref::Vma)?;
    }
    Ok(())
}

/// `cleanup_partial_anon_vmas` (mm/rmap.c, patch 8): frees every AVC on
/// `dst`'s list (none is in a tree yet) and resets `dst->anon_vma`, keeping
/// "a failed clone leaves no trace".
fn cleanup_partial_anon_vmas(core: &mut Core, dst: VmaId) {
    if let Some(s) = core.vmas.get_mut(dst) {
        let chain = std::mem::take(&mut s.chain);
        s.anon_vma = None;
        for h in chain {
            core.avcs.remove(h);
        }
    }
    tidy(core, dst);
}

/// `unlink_anon_vmas` (mm/rmap.c after patches 1, 3): an unfaulted VMA
/// returns at once (patch 3; a non-empty chain there is patch 1's
/// `VM_WARN_ON_ONCE`, deferred, and the AVCs stay where they are — B23);
/// else `chain-2010`'s two passes, unchanged. Called for munmap, exit, the
/// VMA a merge removes (patch 5), and B23's fork error path.
fn unlink_anon_vmas(core: &mut Core, vma: VmaId) -> Result<(), RmapError> {
    if let Some(st) = core.vmas.get(vma)
        && st.anon_vma.is_none()
    {
        if !st.chain.is_empty() {
            let detail = format!(
                "VM_WARN_ON_ONCE: VMA {vma} has no anon_vma but {} AVC(s) on its chain; \
                 they stay in their trees",
                st.chain.len()
            );
            core.defer(check("unlink_anon_vmas", detail));
        }
        // The list head lives in the vm_area_struct the caller frees.
        core.vmas.remove(vma);
        return Ok(());
    }
    core.check_chain_one_root(vma, "unlink_anon_vmas")?;
    chain_2010::unlink_anon_vmas(core, vma)
}

/// `anon_vma_fork` after patch 2 (mm/rmap.c): with the parent faulted,
/// allocate the child's anon_vma and AVC first, then clone the parent's
/// chain (`VMA_OP_FORK`); on a clone error or a reuse the preallocated
/// objects are put/freed, else the child gets its own anon_vma (the tail of
/// `chain-2010`'s fork). Keeps "a failed fork changes nothing and never
/// unlinks a half-built VMA".
fn anon_vma_fork(
    core: &mut Core,
    view: &dyn VmaView,
    child: VmaId,
    parent: VmaId,
) -> Result<(), RmapError> {
    let Some(pav) = chain_2010::fork_parent_anon_vma(core, view, child, parent)? else {
        return Ok(());
    };
    if core.vmas.get(child).is_some() {
        return Err(check(
            "check_anon_vma_clone",
            format!("VMA_OP_FORK clone {parent} -> {child}: the child already has rmap state"),
        ));
    }
    if core.bug("b23") {
        return anon_vma_fork_b23(core, view, child, parent, pav);
    }
    core.alloc.alloc(SITE_FORK_AV)?;
    let av = core.anon_vma_alloc();
    if let Err(e) = core.alloc.alloc(SITE_FORK_AVC) {
        core.put_anon_vma(av)?;
        return Err(e);
    }
    let avc = core.avc_alloc(child, av);
    // "Drop inherited anon_vma, we'll reuse existing or allocate new."
    core.vmas.insert(child, VmaState::default());
    let rc = anon_vma_clone(core, view, child, parent, VmaOperation::Fork);
    if rc.is_err() || core.anon_vma_of(child).is_some() {
        core.put_anon_vma(av)?;
        core.avcs.remove(avc);
        core.alloc.freed_unused(2);
        tidy(core, child);
        return rc;
    }
    chain_2010::ref_get(core, av, Ref::Vma)?;
    chain_2010::fork_own_anon_vma(core, view, child, pav, av, avc)
}

/// `anon_vma_fork` with `b23` (patch 3 applied, patch 2 not): clone first,
/// then allocate; an allocation failure after a successful clone calls
/// `unlink_anon_vmas` with `vma->anon_vma == NULL`, which returns early
/// and leaves the cloned AVCs in the parent's trees.
fn anon_vma_fork_b23(
    core: &mut Core,
    view: &dyn VmaView,
    child: VmaId,
    parent: VmaId,
    pav: Handle,
) -> Result<(), RmapError> {
    core.vmas.insert(child, VmaState::default());
    if let Err(e) = anon_vma_clone(core, view, child, parent, VmaOperation::Fork) {
        tidy(core, child);
        return Err(e);
    }
    if core.anon_vma_of(child).is_some() {
        return Ok(());
    }
    if let Err(e) = core.alloc.alloc(SITE_FORK_AV) {
        unlink_anon_vmas(core, child)?;
        return Err(e);
    }
    let av = core.anon_vma_alloc();
    if let Err(e) = core.alloc.alloc(SITE_FORK_AVC) {
        core.put_anon_vma(av)?;
        unlink_anon_vmas(core, child)?;
        return Err(e);
    }
    let avc = core.avc_alloc(child, av);
    chain_2010::ref_get(core, av, Ref::Vma)?;
    chain_2010::fork_own_anon_vma(core, view, child, pav, av, avc)
}

impl Variant for Series {
    const NAME: &'static str = "prealloc-2026";
    const TYPE_NAME: &'static str = "Prealloc2026";
    const ALLOC_SITES: &'static [&'static str] = ALLOC_SITES;
    /// A walk meeting B23's AVCs reports the freed VMA itself.
    const WALK_CHECKS_VMAS: bool = true;

    fn describe_header(&self, _core: &Core) -> String {
        "prealloc-2026 (Linux 6.18 + \"mm: clean up anon_vma implementation\" v3)".into()
    }

    /// Unchanged by the series: `chain-2010`'s.
    fn anon_vma_prepare(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        vma: VmaId,
        next: Option<VmaId>,
        prev: Option<VmaId>,
    ) -> Result<(), RmapError> {
        chain_2010::anon_vma_prepare(core, view, vma, next, prev, crate::sched::Insert::Tail)
    }

    /// The module's `anon_vma_fork` (patch 2).
    fn anon_vma_fork(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        child: VmaId,
        parent: VmaId,
    ) -> Result<(), RmapError> {
        anon_vma_fork(core, view, child, parent)
    }

    /// `__split_vma` (`VMA_OP_SPLIT`) and `copy_vma` (`VMA_OP_REMAP`): `dst`,
    /// fresh from `vm_area_dup`, carries `src`'s anon_vma pointer and an
    /// empty chain, then `anon_vma_clone`; on failure it is left without
    /// state.
    fn anon_vma_clone(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
        op: CloneOp,
    ) -> Result<(), RmapError> {
        core.alive(view, dst, "anon_vma_clone (dst)")?;
        if core.vmas.get(dst).is_some() {
            return Err(check(
                "check_anon_vma_clone",
                format!("{op:?} clone {src} -> {dst}: dst is not fresh from vm_area_dup"),
            ));
        }
        if let Some(sav) = core.anon_vma_of(src) {
            // vm_area_dup copied src->anon_vma; INIT_LIST_HEAD(anon_vma_chain).
            let st = VmaState {
                anon_vma: Some(sav),
                chain: Vec::new(),
            };
            core.vmas.insert(dst, st);
        }
        let r = anon_vma_clone(core, view, dst, src, op.into());
        if r.is_err() {
            core.vmas.remove(dst);
        }
        r
    }

    /// `dup_anon_vma` (mm/vma.c), first half: an unfaulted `dst` taking
    /// over pages of a faulted `src` gets `src->anon_vma`. A no-op if `src`
    /// is unfaulted or `dst` faulted.
    fn dup_anon_vma_publish(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<bool, RmapError> {
        let Some(sav) = chain_2010::dup_anon_vma_source(core, view, dst, src)? else {
            return Ok(false);
        };
        let mut st = core.vmas.get(dst).cloned().unwrap_or_default();
        st.anon_vma = Some(sav);
        core.vmas.insert(dst, st);
        Ok(true)
    }

    /// `dup_anon_vma`, second half: a clone of `src`'s chain
    /// (`VMA_OP_MERGE_UNFAULTED`, patch 9); on failure `dst` is unfaulted
    /// again (`cleanup_partial_anon_vmas` reset it).
    fn dup_anon_vma_clone(
        &self,
        core: &mut Core,
        view: &dyn VmaView,
        dst: VmaId,
        src: VmaId,
    ) -> Result<(), RmapError> {
        let r = anon_vma_clone(core, view, dst, src, VmaOperation::MergeUnfaulted);
        if r.is_err() {
            // ENOMEM or a failed assert: dst has no rmap state, exactly as
            // before the publish (an unfaulted VMA has none).
            core.vmas.remove(dst);
        }
        r
    }

    /// The module's `unlink_anon_vmas` (patches 1, 3).
    fn unlink_anon_vmas(&self, core: &mut Core, vma: VmaId) -> Result<(), RmapError> {
        unlink_anon_vmas(core, vma)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::designs::testkit::{Sim, check_name, random_stream};
    use crate::rmap::{MergeSrc, Rmap, VmaInfo};

    fn sim() -> Sim<Prealloc2026> {
        Sim::new(Prealloc2026::new())
    }

    /// The reuse-candidate order (module docs): candidates are tried in the
    /// source's list order, which after a fork chain is [D, B, A, C].
    #[test]
    fn fork_chain_reuse_follows_the_source_list_order() {
        let mut s = sim();
        let v0 = s.mmap(0, 0, 4);
        s.fault(v0);
        let v1 = s.fork(1, v0);
        let v2 = s.fork(2, v1);
        let v3 = s.fork(3, v2);
        let (a, b, c, dd) = (s.av(v0), s.av(v1), s.av(v2), s.av(v3));
        assert_eq!(s.node(b).parent, a);
        assert_eq!(s.node(c).parent, b);
        assert_eq!(s.node(dd).parent, c);
        // Each clone reverses the list; the own anon_vma goes to the head.
        assert_eq!(s.chain(v1), vec![b, a]);
        assert_eq!(s.chain(v2), vec![c, a, b]);
        assert_eq!(s.chain(v3), vec![dd, b, a, c]);
        // The root is pinned by every descendant.
        assert_eq!(s.counts(a), (2, 1, 4));
        for v in [v0, v1, v2] {
            s.exit(v);
        }
        assert_eq!(s.counts(a), (2, 0, 4));
        assert_eq!(s.counts(b), (1, 0, 1));
        assert_eq!(s.counts(c), (1, 0, 1));
        assert_eq!(s.counts(dd), (0, 1, 1));
        s.check();
        // B and C are both reusable; v3's list order D, B, A, C tries B first
        // ("newest first" would pick C).
        let v4 = s.fork(4, v3);
        assert_eq!(s.av(v4), b);
        assert_eq!(s.counts(b), (1, 1, 1));
        let live = s.d.counters().anon_vmas;
        assert_eq!(live, 4, "reuse allocates nothing that stays");
        assert_eq!(s.chain(v4), vec![c, a, b, dd]);
        s.check();
        // Once v3 is gone, C and D are reusable; v4's order C, A, B, D picks C.
        s.exit(v3);
        let v5 = s.fork(5, v4);
        assert_eq!(s.av(v5), c);
        s.check();
        // Fork of an unfaulted VMA links nothing.
        let u = s.mmap(4, 10, 12);
        let uc = s.fork(6, u);
        assert!(!s.d.has_anon_vma(uc));
        assert!(s.d.core.vmas.get(uc).is_none());
        s.check();
    }

    #[test]
    fn dup_anon_vma_imports_a_singular_chain_and_is_a_no_op_otherwise() {
        let mut s = sim();
        let prev = s.mmap(0, 0, 4);
        let next = s.mmap(0, 4, 8);
        s.fault(next);
        let a = s.av(next);
        assert!(s.d.is_mergeable_anon_vma(prev, MergeSrc::Existing(next)));
        s.d.dup_anon_vma(&s.view, prev, next).unwrap();
        assert_eq!(s.av(prev), a);
        assert_eq!(s.counts(a), (1, 2, 1));
        // Faulted dst or unfaulted src: nothing to do.
        s.d.dup_anon_vma(&s.view, prev, next).unwrap();
        let u = s.mmap(0, 8, 12);
        s.d.dup_anon_vma(&s.view, prev, u).unwrap();
        assert_eq!(s.counts(a), (1, 2, 1));
        // The merge removes next (patch 5: plain unlink).
        s.update(prev, 0, 8, 0);
        s.exit(next);
        assert_eq!(s.counts(a), (1, 1, 1));
        assert_eq!(s.walk(a, 6), vec![prev]);
        // anon_vma_clone(MergeUnfaulted) is the same path.
        let w = s.mmap(0, 12, 16);
        s.d.anon_vma_clone(&s.view, w, prev, CloneOp::MergeUnfaulted)
            .unwrap();
        assert_eq!(s.av(w), a);
        s.check();
    }

    /// The merge rule refuses to import a fork child's chain into an
    /// unfaulted VMA (also for an mremap copy, 6.18.y); if a caller did it
    /// anyway, the series' `VMA_OP_MERGE_UNFAULTED` assert would catch it
    /// and nothing would change.
    #[test]
    fn merge_unfaulted_from_a_fork_child_trips_the_assert() {
        let mut s = sim();
        let p = s.mmap(0, 0, 4);
        s.fault(p);
        let c = s.fork(1, p);
        let u = s.mmap(1, 4, 8);
        assert!(!s.d.is_mergeable_anon_vma(u, MergeSrc::Existing(c)));
        assert!(!s.d.is_mergeable_anon_vma(u, MergeSrc::Copy(c)));
        let before = s.structure();
        let r = s.d.dup_anon_vma(&s.view, u, c);
        assert_eq!(check_name(r), "check_anon_vma_clone");
        assert_eq!(s.structure(), before);
        assert!(!s.d.has_anon_vma(u));
        s.check();
    }

    #[test]
    fn check_anon_vma_clone_rejects_inconsistent_clones() {
        let mut s = sim();
        let v = s.mmap(0, 0, 8);
        s.fault(v);
        let before = s.structure();
        // A split piece in another mm.
        let other = s.mmap(1, 0, 4);
        let r = s.d.anon_vma_clone(&s.view, other, v, CloneOp::Split);
        assert_eq!(check_name(r), "check_anon_vma_clone");
        assert!(s.d.core.vmas.get(other).is_none());
        // A dst that already has rmap state.
        let w = s.mmap(0, 20, 24);
        s.fault(w);
        let before_w = s.structure();
        let r = s.d.anon_vma_clone(&s.view, w, v, CloneOp::Remap);
        assert_eq!(check_name(r), "check_anon_vma_clone");
        assert_eq!(
            check_name(s.d.anon_vma_fork(&s.view, w, v)),
            "check_anon_vma_clone"
        );
        assert_eq!(s.structure(), before_w);
        assert_ne!(s.structure(), before);
        s.check();
    }

    #[test]
    fn root_is_pinned_until_its_descendants_go() {
        let mut s = sim();
        let v0 = s.mmap(0, 0, 4);
        s.fault(v0);
        let a = s.av(v0);
        let v1 = s.fork(1, v0);
        let v2 = s.fork(2, v1);
        let (b, c) = (s.av(v1), s.av(v2));
        // The parent exits: its anon_vma stays, linked from the children.
        s.exit(v0);
        assert!(s.d.mapping_alive(a));
        assert_eq!(s.walk(a, 1), vec![v1, v2]);
        s.exit(v1);
        assert!(s.d.mapping_alive(a) && s.d.mapping_alive(b));
        assert_eq!(s.counts(a), (2, 0, 3));
        // v2's list is [C, A, B]: unlink's second pass puts A before B.
        // A only survives that because B (and C) pin it.
        assert_eq!(s.chain(v2), vec![c, a, b]);
        let mut pinned = s.d.clone();
        pinned.core.put_anon_vma(a).unwrap();
        let alive = pinned.mapping_alive(a);
        assert!(alive, "own reference gone, pinned by B and C");
        pinned.core.put_anon_vma(c).unwrap();
        assert!(pinned.mapping_alive(a));
        pinned.core.put_anon_vma(b).unwrap();
        assert!(!pinned.mapping_alive(a), "last descendant freed the root");
        // The real unlink frees everything.
        s.exit(v2);
        assert!(!s.d.mapping_alive(a) && !s.d.mapping_alive(b) && !s.d.mapping_alive(c));
        let made = s.d.core.alloc.made();
        assert_eq!(
            s.d.counters(),
            crate::rmap::Counters {
                allocations: made,
                ..Default::default()
            }
        );
        // Unlinking an unfaulted VMA is a no-op.
        let u = s.mmap(0, 0, 1);
        s.exit(u);
        s.check();
    }

    /// B23: patch 3 without patch 2. An allocation failure in anon_vma_fork
    /// after the clone leaves the child's AVCs in the parent's trees; the
    /// MMU frees the child; the next walk meets a freed VMA.
    #[test]
    fn b23_leaves_avcs_pointing_at_a_freed_vma() {
        for fail_at in 1..=3 {
            for bug in [false, true] {
                let mut s = sim();
                if bug {
                    s.d = Prealloc2026::with_bugs(&["B23"]);
                    assert_eq!(s.d.config(), vec![("bugs", "b23".to_string())]);
                }
                let p = s.mmap(0, 0, 4);
                s.fault(p);
                let a = s.av(p);
                let before = (s.structure(), s.d.counters().avcs);
                let c = s.view.vmas.insert(VmaInfo {
                    mm: rmaplab_ops::Pid(1),
                    ..s.info(p)
                });
                s.d.alloc_schedule().fail_nth(fail_at);
                let site = match s.d.anon_vma_fork(&s.view, c, p) {
                    Err(RmapError::NoMem { site }) => site,
                    other => panic!("{other:?}"),
                };
                // dup_mmap: fail_nomem_anon_vma_fork frees the child, no unlink.
                s.view.vmas.remove(c).unwrap();
                // b23 allocates after the clone: clone AVC, anon_vma, AVC.
                let leaks = bug && fail_at > 1;
                let expect = match (bug, fail_at) {
                    (false, 1) => SITE_FORK_AV,
                    (false, 2) => SITE_FORK_AVC,
                    (false, _) => SITE_CLONE_AVC,
                    (true, 1) => SITE_CLONE_AVC,
                    (true, 2) => SITE_FORK_AV,
                    (true, _) => SITE_FORK_AVC,
                };
                assert_eq!(site, expect, "bug {bug} fail_at {fail_at}");
                let mut out = Vec::new();
                let w = s.d.rmap_walk(&s.view, a, 1, &mut out);
                if !leaks {
                    assert_eq!(w, Ok(()));
                    assert_eq!(out, vec![p]);
                    assert_eq!(s.structure(), before.0);
                    s.check();
                    continue;
                }
                assert_eq!(s.d.counters().avcs, before.1 + 1, "one AVC left behind");
                match w {
                    Err(RmapError::Dangling { what, detail }) => {
                        assert_eq!(what, "vma");
                        assert!(detail.contains(&c.to_string()), "{detail}");
                    }
                    other => panic!("walk after b23: {other:?}"),
                }
                // The self-check names the dangling VMA (B23's catalogued
                // invariant) before patch 3's deferred warning.
                let r = s.d.self_check(&s.view);
                assert!(matches!(r, Err(RmapError::Dangling { .. })));
                let deferred = &s.d.core.deferred;
                let name =
                    |n| matches!(deferred, Some(RmapError::Check { name, .. }) if *name == n);
                assert!(name("unlink_anon_vmas"), "{deferred:?}");
                let text = s.d.describe(&s.view, Some(a), &[p]);
                assert!(text.contains("FREED VMA"), "{text}");
            }
        }
        assert!(Prealloc2026::try_with_bugs(&["b16"]).is_err());
        assert!(std::panic::catch_unwind(|| Prealloc2026::with_bugs(&["b16"])).is_err());
    }

    /// Every page stays findable, the self-check holds after every step and
    /// nothing leaks, with failures injected; with `b23` the same streams
    /// report (never panic) the AVCs left on a freed VMA.
    #[test]
    fn random_streams_with_allocation_failures_keep_every_page_findable() {
        let mut failures = 0;
        for seed in 1..=300 {
            failures += random_stream(Prealloc2026::new(), seed, 120, true).unwrap();
        }
        assert!(
            failures > 100,
            "failure injection reached only {failures} times"
        );
        let found: Vec<String> = (1..=300)
            .filter_map(|seed| {
                random_stream(Prealloc2026::with_bugs(&["b23"]), seed, 120, true).err()
            })
            .collect();
        assert!(!found.is_empty(), "b23 never detected");
        let named = |e: &String| e.contains("unlink_anon_vmas") || e.contains("dangling");
        assert!(found.iter().all(named), "{found:?}");
    }

    #[test]
    fn clone_debug_name_and_config() {
        let mut s = sim();
        let a = s.mmap(0, 0, 4);
        s.fault(a);
        let snapshot = s.d.clone();
        s.exit(a);
        assert_eq!(snapshot.counters().anon_vmas, 1);
        assert_eq!(s.d.counters().anon_vmas, 0);
        assert!(format!("{snapshot:?}").contains("Prealloc2026"));
        assert_eq!(s.d.name(), "prealloc-2026");
        assert!(s.d.config().is_empty());
        assert_eq!(s.d.claimed_bound(), None);
        let remap = VmaOperation::from(CloneOp::Remap).kernel_name();
        assert_eq!(remap, "VMA_OP_REMAP");
        assert_eq!(s.d.bugs().count(), 0);
    }
}
