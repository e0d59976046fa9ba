//! The oracle's invariants (`docs/op-language.md`, "Invariants every design
//! must keep"), each one function returning which check failed and why.
//!
//! They read the MMU and ask the design to walk; they never trust the
//! design's own account of what it maps.

use std::fmt;

use rmaplab_impls::mmu::{AnonPte, Census, Mmu, Violation};
use rmaplab_impls::rmap::{Rmap, RmapError};
use rmaplab_ops::Pid;

/// Names of the invariants, as reports spell them.
pub mod invariant {
    pub const FINDABILITY: &str = "findability";
    pub const DANGLING: &str = "dangling";
    pub const SEMANTICS: &str = "semantics";
    pub const LEAK: &str = "leak";
    pub const FAILED_OP_TRACE: &str = "failed-op-trace";
    pub const BOUND: &str = "bound";
    pub const DIFFERENTIAL: &str = "differential";
    /// A panic while running the stream (rmaplab's own code or a design's).
    pub const PANIC: &str = "panic";
    pub const LAYOUT: &str = "layout";
    pub const MAPCOUNT: &str = "mapcount";
    /// Concurrent blocks (version 2): after a migration finished, a PTE
    /// still holds a migration entry for its old page.
    pub const STALE_MIGRATION_ENTRY: &str = "stale-migration-entry";
    /// A walk left the page's map count at 0 but a PTE still maps it.
    pub const UNMAP_SUCCESS_BUT_MAPPED: &str = "unmap-success-but-mapped";
    /// A tree, list, `vma->anon_vma` or PTE changed without the lock the
    /// era requires; an actor finished holding a lock.
    pub const LOCK_DISCIPLINE: &str = "lock-discipline";
    /// A lockset rule: an anon_vma's list or tree changed without its
    /// lock while another actor holds that lock (eras with type-stable
    /// anon_vma slots, where a walker can lock a slot an allocation
    /// reuses).
    pub const DATA_RACE: &str = "data-race";
    /// No actor of a block can run and some are unfinished.
    pub const DEADLOCK: &str = "deadlock";
    /// A PTE allows more than its VMA: writable without `VM_WRITE`, or
    /// accessible in a `PROT_NONE` VMA.
    pub const PTE_PROT: &str = "pte-prot";
    /// Not an invariant: a strict schedule that cannot be followed as
    /// written (bad input).
    pub const SCHEDULE: &str = "schedule";
}

/// A broken invariant: its name, where (process and page when known), and
/// a readable account including the design structures involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    pub invariant: String,
    pub pid: Option<Pid>,
    pub page: Option<u64>,
    pub detail: String,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.invariant)?;
        match (self.pid, self.page) {
            (Some(p), Some(pg)) => write!(f, " at {p} page {pg}")?,
            (Some(p), None) => write!(f, " at {p}")?,
            _ => {}
        }
        write!(f, ": {}", self.detail)
    }
}

impl Broken {
    pub fn new(invariant: &str, detail: impl Into<String>) -> Broken {
        Broken {
            invariant: invariant.to_string(),
            pid: None,
            page: None,
            detail: detail.into(),
        }
    }
    fn at(mut self, pid: Pid, page: u64) -> Broken {
        self.pid = Some(pid);
        self.page = Some(page);
        self
    }
}

/// Maps an error raised inside a design hook to the invariant it breaks.
pub fn from_rmap_error(e: &RmapError) -> Broken {
    match e {
        RmapError::Dangling { .. } => Broken::new(invariant::DANGLING, e.to_string()),
        RmapError::Check { name, detail } => Broken::new(name, detail.clone()),
        // An allocation failure is an outcome (ENOMEM), not a violation; if
        // one escapes to here the MMU failed to propagate it.
        RmapError::NoMem { site } => Broken::new(
            invariant::FAILED_OP_TRACE,
            format!("allocation failure at {site} escaped the op"),
        ),
    }
}

/// Maps a violation the MMU detected during an op.
pub fn from_violation(v: &Violation) -> Broken {
    match v {
        Violation::Rmap(e) => from_rmap_error(e),
        Violation::Findability { pid, page, detail } => {
            Broken::new(invariant::FINDABILITY, detail.clone()).at(*pid, *page)
        }
        Violation::PteProt { pid, page, detail } => {
            Broken::new(invariant::PTE_PROT, detail.clone()).at(*pid, *page)
        }
        #[allow(unreachable_patterns)]
        other => Broken::new("mmu", format!("{other:?}")),
    }
}

/// **Findability** and **dangling** for every present anonymous PTE: the
/// page's `mapping` is alive, and the design's walk from it reaches this
/// process's VMA at the address of the PTE.
pub fn check_findability<R: Rmap>(mmu: &Mmu<R>) -> Result<(), Broken> {
    /// The PTEs to check and the PTEs a walk found.
    type Scratch = (Vec<AnonPte>, Vec<(Pid, u64)>);
    thread_local! {
        // Scratch buffers reused by every call (this runs after most ops).
        static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
    }
    SCRATCH.with(|s| {
        let (ptes, found) = &mut *s.borrow_mut();
        findability_in(mmu, ptes, found)
    })
}

fn findability_in<R: Rmap>(
    mmu: &Mmu<R>,
    ptes: &mut Vec<AnonPte>,
    found: &mut Vec<(Pid, u64)>,
) -> Result<(), Broken> {
    // One walk per (mapping, index): every PTE of a frame must be found by it.
    mmu.anon_ptes_into(ptes);
    ptes.sort_unstable_by_key(|p| (p.mapping.raw(), p.index, p.frame, p.pid, p.page));
    for ptes in ptes.chunk_by(|a, b| (a.mapping, a.index, a.frame) == (b.mapping, b.index, b.frame))
    {
        let first = &ptes[0];
        if !mmu.rmap().mapping_alive(first.mapping) {
            return Err(freed_mapping(mmu, first, ptes.len()));
        }
        let visited = mmu
            .rmap_walk_into(first.mapping, first.index, found)
            .map_err(|e| from_rmap_error(&e).at(first.pid, first.page))?;
        for pte in ptes {
            if !found.iter().any(|&(p, pg)| p == pte.pid && pg == pte.page) {
                return Err(not_reached(mmu, pte, visited, found));
            }
        }
    }
    Ok(())
}

/// **Dangling**: `pte` (one of `nptes` mapping its page) names a freed
/// mapping.
fn freed_mapping<R: Rmap>(mmu: &Mmu<R>, pte: &AnonPte, nptes: usize) -> Broken {
    Broken::new(
        invariant::DANGLING,
        format!(
            "page index {:#x} mapped by {nptes} PTE(s) has mapping {} which was freed\n{}",
            pte.index,
            pte.mapping,
            mmu.rmap().describe(mmu, Some(pte.mapping), &[pte.vma])
        ),
    )
    .at(pte.pid, pte.page)
}

/// **Findability**: the walk of `pte`'s page visited `visited` VMAs and
/// found the PTEs `found`, not `pte`.
fn not_reached<R: Rmap>(
    mmu: &Mmu<R>,
    pte: &AnonPte,
    visited: usize,
    found: &[(Pid, u64)],
) -> Broken {
    let found: Vec<String> = found.iter().map(|(p, pg)| format!("{p}:{pg}")).collect();
    Broken::new(
        invariant::FINDABILITY,
        format!(
            "{}:{} maps an anonymous page (mapping {}, index {:#x}, mapcount {}) that the \
             reverse-map walk does not reach; the walk visited {visited} VMA(s) and found [{}]\n{}",
            pte.pid,
            pte.page,
            pte.mapping,
            pte.index,
            pte.mapcount,
            found.join(", "),
            mmu.rmap().describe(mmu, Some(pte.mapping), &[pte.vma])
        ),
    )
    .at(pte.pid, pte.page)
}

/// The design's own structural self-check (chain sets, counters, roots...).
pub fn check_design<R: Rmap>(mmu: &Mmu<R>) -> Result<(), Broken> {
    mmu.rmap().self_check(mmu).map_err(|e| {
        let mut b = from_rmap_error(&e);
        b.detail = format!("{}\n{}", b.detail, mmu.rmap().describe(mmu, None, &[]));
        b
    })
}

/// **Bounded metadata**, where the design claims a bound: live anon_vmas ≤
/// bound × the largest number of VMAs alive at once so far in the run.
///
/// Measured against the peak, not the current count: a chain of live forks
/// whose ancestors then exit legitimately keeps one anon_vma per level for
/// one surviving VMA (every level may still hold unCOWed pages), but no
/// fork/exit history, however long, may make the count grow past a
/// multiple of the VMA population it ever had (Khlebnikov, `7a3ef208e662`).
pub fn check_bound<R: Rmap>(mmu: &Mmu<R>, peak_vmas: u64) -> Result<(), Broken> {
    let Some(k) = mmu.rmap().claimed_bound() else {
        return Ok(());
    };
    let avs = mmu.rmap().counters().anon_vmas;
    if avs > k * peak_vmas {
        return Err(Broken::new(
            invariant::BOUND,
            format!(
                "{avs} live anon_vmas exceed the claimed bound {k} x {peak_vmas} (the most VMAs \
                 alive at once so far)\n{}",
                mmu.rmap().describe(mmu, None, &[])
            ),
        ));
    }
    Ok(())
}

/// The structural checks after an op (`peak_vmas`: see [`check_bound`]);
/// the runner adds [`check_map_counts`] and, between designs, `layout`.
pub fn check_after_op<R: Rmap>(mmu: &Mmu<R>, peak_vmas: u64) -> Result<(), Broken> {
    check_findability(mmu)?;
    check_design(mmu)?;
    check_bound(mmu, peak_vmas)
}

/// **Map counts**: every frame's map count is the number of PTEs that map
/// it and every swap slot's count the number of swap entries naming it,
/// recounted from the page tables (`Mmu::check_map_counts`, with the
/// run's `census`; `all_frames` adds every frame no PTE maps). What `dump`
/// shows as `/N` (`/proc/kpagecount`) must be what the page tables say.
/// `Ok` carries the dump fingerprint if `fingerprint` asks for it (same
/// pass).
pub fn check_map_counts<R: Rmap>(
    mmu: &Mmu<R>,
    census: &mut Census,
    all_frames: bool,
    fingerprint: bool,
) -> Result<u64, Broken> {
    mmu.check_map_counts(census, all_frames, fingerprint)
        .map_err(|d| Broken::new(invariant::MAPCOUNT, d))
}

/// [`check_map_counts`] after an op that changed few PTEs, at the cost of
/// what it changed (`Mmu::check_map_counts_delta`).
pub fn check_map_counts_delta<R: Rmap>(mmu: &Mmu<R>, census: &mut Census) -> Result<(), Broken> {
    mmu.check_map_counts_delta(census)
        .map_err(|d| Broken::new(invariant::MAPCOUNT, d))
}

/// [`check_map_counts_delta`] after a fault, whose changed PTEs the census
/// takes from the machine's notes (`Mmu::check_map_counts_after_fault`).
pub fn check_map_counts_after_fault<R: Rmap>(
    mmu: &Mmu<R>,
    census: &mut Census,
) -> Result<(), Broken> {
    mmu.check_map_counts_after_fault(census)
        .map_err(|d| Broken::new(invariant::MAPCOUNT, d))
}

/// The fingerprint of what a `dump` would show now
/// (`Mmu::dump_fingerprint`): equal for two machines whose dumps print
/// alike.
pub fn dump_fingerprint<R: Rmap>(mmu: &Mmu<R>, census: &mut Census) -> u64 {
    mmu.dump_fingerprint(census)
}

/// [`dump_fingerprint`] after an op that changed no PTE and only `pid`'s
/// VMAs, from the hashes the last census pass left in `census`
/// (`Mmu::dump_fingerprint_vmas_of`).
pub fn dump_fingerprint_vmas_of<R: Rmap>(mmu: &Mmu<R>, census: &mut Census, pid: Pid) -> u64 {
    mmu.dump_fingerprint_vmas_of(census, pid)
}

/// **Map counts** after one op from the counts the machine keeps at its
/// page-table writes (`Mmu::check_refs`): every frame and swap slot the op
/// changed, checked as [`check_map_counts`] checks it (with `counts`), and
/// the layout fingerprint's pages moved (with `layout`). Exact by
/// induction over the ops; what the runner checks after every op.
pub fn check_refs<R: Rmap>(
    mmu: &Mmu<R>,
    census: &mut Census,
    counts: bool,
    layout: bool,
) -> Result<(), Broken> {
    mmu.check_refs(census, counts, layout)
        .map_err(|d| Broken::new(invariant::MAPCOUNT, d))
}

/// [`check_refs`] over every frame and swap slot, the fingerprint's parts
/// made afresh (`Mmu::check_refs_all`): after a concurrent block.
pub fn check_refs_all<R: Rmap>(
    mmu: &Mmu<R>,
    census: &mut Census,
    counts: bool,
) -> Result<(), Broken> {
    mmu.check_refs_all(census, counts)
        .map_err(|d| Broken::new(invariant::MAPCOUNT, d))
}

/// The kept counts against a recount of the page tables
/// (`Mmu::check_refs_recount`): at the end of a stream, the safety net for
/// a PTE written around the machine's two PTE writers.
pub fn check_refs_recount<R: Rmap>(mmu: &Mmu<R>) -> Result<(), Broken> {
    mmu.check_refs_recount()
        .map_err(|d| Broken::new(invariant::MAPCOUNT, d))
}

/// The maps lines of `pid` (`None`: every process) hashed again for the
/// layout fingerprint (`Mmu::refs_vmas_of`): after an op that changed them.
pub fn refs_vmas_of<R: Rmap>(mmu: &Mmu<R>, census: &mut Census, pid: Option<Pid>) {
    mmu.refs_vmas_of(census, pid)
}

/// The layout fingerprint that [`check_refs`] and [`refs_vmas_of`] keep
/// (`Mmu::refs_fingerprint`): equal for two machines whose dumps print
/// alike.
pub fn refs_fingerprint<R: Rmap>(mmu: &Mmu<R>, census: &Census) -> u64 {
    mmu.refs_fingerprint(census)
}

/// **Nothing leaked**: with every process gone, no design object and no
/// anonymous page is left.
pub fn check_leak<R: Rmap>(mmu: &Mmu<R>) -> Result<(), Broken> {
    let c = mmu.rmap().counters();
    let frames = mmu.anon_frames_live();
    if c.anon_vmas != 0 || c.avcs != 0 || frames != 0 {
        return Err(Broken::new(
            invariant::LEAK,
            format!(
                "after every process exited: {} anon_vma(s), {} anon_vma_chain(s), {} anonymous \
                 page(s) still alive\n{}",
                c.anon_vmas,
                c.avcs,
                frames,
                mmu.rmap().describe(mmu, None, &[])
            ),
        ));
    }
    Ok(())
}

/// **Findability** and **dangling** for the PTEs an op set present, when
/// the design ([`Rmap::epoch`]) and the VMA geometry it tracks are
/// unchanged (`Mmu::last_op_pte_delta`): every other PTE is found exactly
/// as it was after the previous op, when the full check passed.
pub fn check_findability_delta<R: Rmap>(mmu: &Mmu<R>, ptes: &[(Pid, u64)]) -> Result<(), Broken> {
    let mut found = Vec::new();
    for &(pid, page) in ptes {
        let Some(pte) = mmu.anon_pte_at(pid, page) else {
            continue;
        };
        if !mmu.rmap().mapping_alive(pte.mapping) {
            return Err(freed_mapping(mmu, &pte, 1));
        }
        let visited = mmu
            .rmap_walk_into(pte.mapping, pte.index, &mut found)
            .map_err(|e| from_rmap_error(&e).at(pid, page))?;
        if !found.iter().any(|&(p, pg)| p == pid && pg == page) {
            return Err(not_reached(mmu, &pte, visited, &found));
        }
    }
    Ok(())
}
