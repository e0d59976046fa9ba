//! Counts over the machine for the oracle. What the runner checks after
//! every op: the references the page tables hold, kept by the machine at
//! its two PTE writers ([`Refs`]), against every frame and swap slot the
//! op changed ([`Mmu::check_refs`]), and the layout fingerprint kept from
//! them ([`Mmu::refs_fingerprint`]). The reference they replace on the
//! per-op path, which tests compare them with and which runs after the
//! teardown: a fingerprint of what a `dump` shows ([`Mmu::dump_fingerprint`])
//! and the recount of every map count and swap count from the page tables
//! ([`Mmu::check_map_counts`], with its delta passes). None of them changes
//! the machine; they reuse a caller's [`Census`] scratch so that running
//! them after every op allocates nothing.

use super::{Frame, FrameId, FrameKind, Mm, Mmu, Pte, SwapId, vm_flags::*};
use crate::rmap::Rmap;
use crate::state::MapKind;
use rmaplab_ops::Pid;

/// The census of one machine: per frame slot and per swap slot, a stamp
/// and values valid only under the current stamp (nothing is cleared
/// between calls), the frames the PTEs mapped at this pass and at the one
/// before, and per process what its page table held at its last scan (what
/// the caller does not [`Census::forget`] is not scanned again).
/// One `Census` follows one machine from op to op (a copy follows a copy
/// of the machine: a concurrent block's schedules).
#[derive(Debug, Default)]
pub struct Census {
    stamp: u32,
    /// Per frame slot: (stamp, class, PTEs counted, the frame's map count).
    frames: Vec<(u32, u32, u32, u32)>,
    /// Per swap slot: (stamp, swap entries counted).
    swaps: Vec<(u32, u32)>,
    seen: Vec<FrameId>,
    seen_before: Vec<FrameId>,
    /// Per process (by number): the hash of its maps lines and of its
    /// present pages, as of the last pass.
    procs: Vec<(u64, u64)>,
    /// Per process (by number): its last scan.
    scans: Vec<Scan>,
    /// Swap entries counted under the current stamp (the sum of the swap
    /// slots' counts), kept by [`Mmu::check_map_counts_delta`].
    swap_entries: u64,
    /// Frame and swap slots whose counts a delta pass changed.
    touched_frames: Vec<FrameId>,
    touched_swaps: Vec<SwapId>,
    /// Processes named by [`Census::forget`] or [`Census::forget_range`]
    /// since the last pass (`None` in the list: every process).
    pending: Vec<Option<u32>>,
    /// One past the last live process slot at the last pass (a delta pass
    /// visits the slots from there: a fork's children).
    known: usize,
    /// The swap arena's epoch when the last pass found the swap slots'
    /// counts adding up to the swap entries counted (`None`: no pass yet).
    /// An unchanged epoch means no slot changed since.
    swap_epoch: Option<u64>,
    /// Delta passes so far (never 0 once one ran), and per frame slot the
    /// pass and the frame's generation it was last checked in: a frame is
    /// checked once per delta pass however often it is named.
    delta: u32,
    checked: Vec<(u32, u32)>,
    /// The last pass, if it was a full one ([`Mmu::check_map_counts`])
    /// and no delta pass ran since: whether it took the fingerprint, and
    /// the frame and swap arenas' epochs then.
    full: Option<(bool, u64, u64)>,
    /// Scratch for [`Mmu::named_ranges_unchanged`]: the entries of a
    /// process's named ranges as scanned and as they are now.
    old: Vec<(u64, Entry)>,
    new: Vec<(u64, Entry)>,
    /// Scratch: a delta pass's copy of a process's dirty ranges.
    dirty: Vec<(u64, u64)>,
    /// Full passes that kept the last one's verdict (see
    /// [`Census::full_passes_kept`]).
    kept: u64,
    /// Fault passes that took the PTEs from the machine's notes directly
    /// (see [`Census::faults_direct`]).
    direct: u64,
    /// The checks on the counts kept at the page-table writes
    /// ([`Mmu::check_refs`]): what they carry from op to op.
    ledger: Ledger,
}

impl Clone for Census {
    /// The counts and scans; the scratch buffers start empty.
    fn clone(&self) -> Self {
        Census {
            stamp: self.stamp,
            frames: self.frames.clone(),
            swaps: self.swaps.clone(),
            seen: self.seen.clone(),
            seen_before: self.seen_before.clone(),
            procs: self.procs.clone(),
            scans: self.scans.clone(),
            swap_entries: self.swap_entries,
            pending: self.pending.clone(),
            known: self.known,
            swap_epoch: self.swap_epoch,
            delta: self.delta,
            full: self.full,
            kept: self.kept,
            direct: self.direct,
            ledger: self.ledger.clone(),
            ..Census::default()
        }
    }
}

impl Census {
    /// A copy for a copy of the machine that the caller checks next with a
    /// full pass over every process ([`Mmu::check_map_counts`] after
    /// [`Census::forget`] of every process: a concurrent block's schedule
    /// changes any PTE). It keeps what that pass reads of the last one (the
    /// frames the last pass found mapped, whose unmapped checks it owes, and
    /// the per-process hashes a later fingerprint folds) and leaves out the
    /// counts and scans the pass makes again, which a full [`Clone`] would
    /// copy for nothing. Any pass on the copy scans every process afresh.
    pub fn copy_for_full_pass(&self) -> Census {
        Census {
            stamp: self.stamp,
            seen: self.seen.clone(),
            procs: self.procs.clone(),
            pending: vec![None],
            delta: self.delta,
            kept: self.kept,
            direct: self.direct,
            ledger: self.ledger.clone(),
            ..Census::default()
        }
    }
}

/// What one process's page table held inside its VMAs at its last scan,
/// in address order, and the hash of its maps lines then.
#[derive(Clone, Debug, Default)]
struct Scan {
    current: bool,
    /// Address ranges whose PTEs may have changed since the scan.
    dirty: Vec<(u64, u64)>,
    vmas: u64,
    /// Whether `vmas` hashes the maps lines as they are.
    vmas_current: bool,
    entries: Vec<(u64, Entry)>,
}

/// A PTE that is not none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    Zero,
    Present(FrameId),
    Migration(FrameId),
    Swap(SwapId),
}

impl Census {
    /// Ready for another machine, keeping the memory it has (a run's
    /// census can be reused by the next run on the same thread).
    pub fn reset(&mut self) {
        // Bumping the stamp invalidates every per-slot entry.
        self.begin(0, 0);
        self.seen.clear();
        self.seen_before.clear();
        self.procs.clear();
        self.pending.clear();
        self.known = 0;
        self.swap_epoch = None;
        self.full = None;
        self.ledger.ready = false;
        for s in &mut self.scans {
            s.current = false;
            s.vmas_current = false;
            s.dirty.clear();
            s.entries.clear();
        }
    }

    /// How many full passes on this census found nothing changed since the
    /// last one and kept its verdict (tests show that path is taken).
    pub fn full_passes_kept(&self) -> u64 {
        self.kept
    }

    /// How many fault passes on this census looked up the machine's noted
    /// PTEs directly ([`Mmu::check_map_counts_after_fault`]; tests show
    /// that path is taken).
    pub fn faults_direct(&self) -> u64 {
        self.direct
    }

    /// Marks process `pid`'s page table and maps lines (`None`: every
    /// process's) as changed since its last scan: the next pass scans and
    /// hashes them again. The caller says which processes an op may have
    /// changed.
    pub fn forget(&mut self, pid: Option<Pid>) {
        self.forget_ptes(pid);
        match pid {
            Some(p) => {
                if let Some(s) = self.scans.get_mut(p.0 as usize) {
                    s.vmas_current = false;
                }
            }
            None => self.scans.iter_mut().for_each(|s| s.vmas_current = false),
        }
    }

    /// [`Census::forget`] of the page table alone: for an op that changes
    /// PTEs but no VMA (a fault, swapout, migration, reclaim).
    #[inline]
    pub fn forget_ptes(&mut self, pid: Option<Pid>) {
        self.queue(pid.map(|p| p.0));
        match pid {
            Some(p) => {
                if let Some(s) = self.scans.get_mut(p.0 as usize) {
                    s.current = false;
                }
            }
            None => self.scans.iter_mut().for_each(|s| s.current = false),
        }
    }

    /// Marks the PTEs of `pid` in `[start, end)` as changed (the next pass
    /// scans that range again) and, with `vmas`, its maps lines.
    #[inline]
    pub fn forget_range(&mut self, pid: Pid, start: u64, end: u64, vmas: bool) {
        self.queue(Some(pid.0));
        if let Some(s) = self.scans.get_mut(pid.0 as usize) {
            if start < end {
                s.dirty.push((start, end));
            }
            if vmas {
                s.vmas_current = false;
            }
        }
    }

    /// Notes that the next pass visits process `pid` (`None`: every one),
    /// once however often an op names it.
    #[inline]
    fn queue(&mut self, pid: Option<u32>) {
        if !self.pending.contains(&pid) {
            self.pending.push(pid);
        }
    }

    /// A new stamp, with room for `frames` frame slots and `swaps` swap
    /// slots: every entry reads as unset.
    fn begin(&mut self, frames: usize, swaps: usize) {
        if self.stamp == u32::MAX {
            *self = Census::default();
        }
        self.stamp += 1;
        if self.frames.len() < frames {
            self.frames.resize(frames, (0, 0, 0, 0));
        }
        if self.swaps.len() < swaps {
            self.swaps.resize(swaps, (0, 0));
        }
        std::mem::swap(&mut self.seen, &mut self.seen_before);
        self.seen.clear();
        self.swap_entries = 0;
    }

    /// Counts one more PTE of `frame`, whose map count is `mapcount`;
    /// returns its class (order of first appearance in this pass) and its
    /// recorded map count.
    #[inline]
    fn count_frame(&mut self, frame: FrameId, mapcount: u32) -> (u32, &mut u32) {
        let e = &mut self.frames[frame.index()];
        if e.0 == self.stamp {
            e.2 += 1;
        } else {
            *e = (self.stamp, self.seen.len() as u32, 1, mapcount);
            self.seen.push(frame);
        }
        (e.1, &mut e.3)
    }

    /// PTEs counted for frame slot `i` in this pass.
    #[inline]
    fn frame_count(&self, i: usize) -> u32 {
        let (s, _, n, _) = self.frames[i];
        if s == self.stamp { n } else { 0 }
    }

    #[inline]
    fn count_swap(&mut self, i: usize) {
        self.swap_entries += 1;
        let (s, v) = self.swaps[i];
        self.swaps[i] = (self.stamp, if s == self.stamp { v + 1 } else { 1 });
    }

    #[inline]
    fn swap(&self, i: usize) -> u32 {
        let (s, v) = self.swaps[i];
        if s == self.stamp { v } else { 0 }
    }

    /// Takes back one entry a delta pass scans again or drops (counted by
    /// the last pass, under the current stamp).
    #[inline]
    fn uncount(&mut self, e: Entry) {
        match e {
            Entry::Zero => {}
            Entry::Present(f) | Entry::Migration(f) => {
                let slot = &mut self.frames[f.index()];
                if slot.0 == self.stamp && slot.2 > 0 {
                    slot.2 -= 1;
                }
                self.touched_frames.push(f);
            }
            Entry::Swap(s) => {
                let slot = &mut self.swaps[s.index()];
                if slot.0 == self.stamp && slot.1 > 0 {
                    slot.1 -= 1;
                    self.swap_entries -= 1;
                }
                self.touched_swaps.push(s);
            }
        }
    }
}

/// One step of the fingerprint's hash (a multiply-rotate mix: fast, and
/// the comparison it serves re-derives any difference it reports).
#[inline]
fn mix(h: u64, x: u64) -> u64 {
    (h.rotate_left(23) ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// `ranges` sorted and merged where they overlap or touch.
fn merge_ranges(ranges: &mut Vec<(u64, u64)>) {
    if ranges.len() < 2 {
        return;
    }
    ranges.sort_unstable();
    let mut w = 0;
    for k in 1..ranges.len() {
        if ranges[k].0 <= ranges[w].1 {
            ranges[w].1 = ranges[w].1.max(ranges[k].1);
        } else {
            w += 1;
            ranges[w] = ranges[k];
        }
    }
    ranges.truncate(w + 1);
}

/// Whether `a` is in one of `ranges` (sorted and merged).
#[inline]
fn in_ranges(a: u64, ranges: &[(u64, u64)]) -> bool {
    let k = ranges.partition_point(|&(s, _)| s <= a);
    k > 0 && a < ranges[k - 1].1
}

#[inline]
fn kind_code(k: MapKind) -> u64 {
    match k {
        MapKind::Anon => 1,
        MapKind::Shared => 2,
        MapKind::File(f) => 0x100 | u64::from(f),
        MapKind::SFile(f) => 0x200 | u64::from(f),
    }
}

impl<R: Rmap> Mmu<R> {
    /// A hash of what a `dump` would show ([`Mmu::state`]): every live
    /// process's maps lines (range, permissions, kind, offset) and present
    /// pages with their map counts, frames named by order of first
    /// appearance (the dump's `f0`, `f1`, ... classes) so that two machines
    /// whose dumps print alike hash alike, whatever their frame handles.
    pub fn dump_fingerprint(&self, c: &mut Census) -> u64 {
        c.forget(None);
        c.begin(self.m.frames.slots(), self.m.swap.slots());
        self.pass(c, true).unwrap_or(0)
    }

    /// [`Mmu::dump_fingerprint`] with `pid`'s maps lines hashed again (a
    /// process that is gone drops out, a new one enters with no pages) and
    /// everything else as the last pass on `c` (which must have asked for
    /// the fingerprint) left it: after an op that changed only `pid`'s VMAs,
    /// or the pages too when the caller compares pages at the next pass.
    pub fn dump_fingerprint_vmas_of(&self, c: &mut Census, pid: Pid) -> u64 {
        let i = pid.0 as usize;
        if c.procs.len() <= i {
            c.procs.resize(i + 1, (0, 0));
        }
        if let Some(mm) = self.m.mm(pid)
            && let Some(e) = c.procs.get_mut(i)
        {
            e.0 = self.vmas_hash(pid.0 as usize, mm);
            if let Some(s) = c.scans.get_mut(pid.0 as usize) {
                s.vmas = e.0;
                s.vmas_current = true;
            }
        }
        self.fold(c)
    }

    /// The hash of process `i`'s maps lines.
    fn vmas_hash(&self, i: usize, mm: &Mm) -> u64 {
        let mut h = mix(0, 0x1_0000_0000 | i as u64);
        for &vid in mm.vmas.values() {
            let v = self.m.vma(vid);
            let perms = v.flags & (VM_READ | VM_WRITE | VM_EXEC | VM_MAYSHARE);
            let offset = if v.is_anonymous() { 0 } else { v.pgoff };
            // Addresses and offsets are window pages (below 2^16).
            h = mix(h, v.start << 32 | v.end);
            h = mix(
                h,
                u64::from(perms) << 48 | kind_code(v.map_kind()) << 32 | (offset & 0xffff_ffff),
            );
        }
        h
    }

    /// The fingerprint from the per-process hashes of the live processes.
    #[inline]
    fn fold(&self, c: &Census) -> u64 {
        let mut h = 0;
        for (i, mm) in self.m.procs.iter().enumerate() {
            if mm.is_some() {
                let (v, p) = c.procs.get(i).copied().unwrap_or_default();
                h = mix(mix(h, v), p);
            }
        }
        h
    }

    /// **Map counts** recounted from the page tables of every live
    /// process's VMAs: every frame a PTE (present or migration) maps is
    /// alive and its map count is the number of such PTEs; every swap
    /// slot's count is the number of swap entries naming it and its
    /// swap-cache page names it back; a frame no PTE maps has map count 0,
    /// and an anonymous one lives only as a swap-cache page that swap
    /// entries still need. The unmapped frames checked are those the
    /// previous call on this census found mapped (so a page an op unmapped
    /// is checked after that op; a frame mapped by no PTE before or after an
    /// op keeps its count unless a bug counts a mapping that was never
    /// made), or with `all_frames` every frame (at the end of a stream).
    /// Only what [`Census::forget`] and [`Census::forget_range`] named
    /// since the last scan is scanned again; the rest is counted as
    /// scanned.
    /// `Err` says what differs, where; `Ok` carries
    /// [`Mmu::dump_fingerprint`] if `fingerprint` asks for it (0
    /// otherwise), computed in the same pass.
    pub fn check_map_counts(
        &self,
        c: &mut Census,
        all_frames: bool,
        fingerprint: bool,
    ) -> Result<u64, String> {
        if !all_frames && let Some(h) = self.unchanged_since_full(c, fingerprint) {
            return Ok(h);
        }
        c.full = None;
        c.begin(self.m.frames.slots(), self.m.swap.slots());
        let h = self.pass(c, fingerprint)?;
        for &id in &c.seen {
            let (_, _, ptes, mapcount) = c.frames[id.index()];
            if mapcount != ptes {
                return Err(self.miscounted(id, ptes));
            }
        }
        if all_frames {
            for (id, f) in self.m.frames.iter() {
                self.census_check_unmapped(c, id, f)?;
            }
        } else {
            for &id in &c.seen_before {
                if let Some(f) = self.m.frames.get(id) {
                    self.census_check_unmapped(c, id, f)?;
                }
            }
        }
        for (id, _) in self.m.swap.iter() {
            self.check_swap_slot(c, id)?;
        }
        // Every slot's count is its entries': the sum is theirs.
        c.swap_epoch = Some(self.m.swap.epoch());
        c.full = Some((fingerprint, self.m.frames.epoch(), self.m.swap.epoch()));
        Ok(h)
    }

    /// The full pass's verdict when nothing it reads changed since the last
    /// full pass on `c`, which passed: no frame and no swap slot changed
    /// (the arenas' epochs: every change to either bumps them), the same
    /// processes are alive, and the ranges named since hold the entries
    /// they held.
    /// Then every count, frame and slot the full pass would check is what
    /// it was, and so is its verdict: `Some` with the fingerprint (maps
    /// lines hashed again where named, pages as they were), the census
    /// left as a full pass would leave it. `None`: run the full pass.
    fn unchanged_since_full(&self, c: &mut Census, fingerprint: bool) -> Option<u64> {
        let (fp, frames, swaps) = c.full?;
        // The same processes: each live one scanned, no other (a fork's
        // child is not scanned yet, an exited process still is).
        let same_procs = self.m.procs.len() <= c.scans.len()
            && self
                .m
                .procs
                .iter()
                .zip(&c.scans)
                .all(|(mm, scan)| mm.is_some() == scan.current);
        if (fingerprint && !fp)
            || frames != self.m.frames.epoch()
            || swaps != self.m.swap.epoch()
            || c.pending.contains(&None)
            || !same_procs
        {
            return None;
        }
        let mut scans = std::mem::take(&mut c.scans);
        let same = c.pending.iter().all(|&p| {
            let i = p.expect("not every process") as usize;
            match (self.m.procs.get(i), scans.get(i)) {
                (Some(Some(mm)), Some(scan)) if scan.current => {
                    self.named_ranges_unchanged(mm, scan, &mut c.old, &mut c.new)
                }
                _ => false,
            }
        });
        if same {
            for &p in &c.pending {
                scans[p.expect("not every process") as usize].dirty.clear();
            }
            c.pending.clear();
        }
        c.scans = scans;
        if !same {
            return None;
        }
        c.kept += 1;
        if !fingerprint {
            return Some(0);
        }
        for (i, mm) in self.m.procs.iter().enumerate() {
            if let Some(mm) = mm
                && !c.scans[i].vmas_current
            {
                c.scans[i].vmas = self.vmas_hash(i, mm);
                c.scans[i].vmas_current = true;
                c.procs[i].0 = c.scans[i].vmas;
            }
        }
        Some(self.fold(c))
    }

    /// Whether the entries in `scan`'s dirty ranges are those `mm` holds
    /// there now (`old`, `new`: scratch).
    fn named_ranges_unchanged(
        &self,
        mm: &Mm,
        scan: &Scan,
        old: &mut Vec<(u64, Entry)>,
        new: &mut Vec<(u64, Entry)>,
    ) -> bool {
        let in_dirty = |a: u64| scan.dirty.iter().any(|&(s, e)| s <= a && a < e);
        old.clear();
        old.extend(scan.entries.iter().filter(|&&(a, _)| in_dirty(a)));
        new.clear();
        for &(s, e) in &scan.dirty {
            for (_, &vid) in mm.vmas.range(..e).rev() {
                let v = self.m.vma(vid);
                if v.end <= s {
                    break;
                }
                self.scan_range(mm, v.start.max(s), v.end.min(e), new);
            }
        }
        new.sort_unstable_by_key(|&(a, _)| a);
        new.dedup_by_key(|&mut (a, _)| a);
        old == new
    }

    /// [`Mmu::check_map_counts`] after one op, at the cost of what it
    /// changed: the ranges [`Census::forget_range`] named are scanned
    /// again, a process the census has not scanned (a fork's child, or one
    /// [`Census::forget`] named) is scanned whole, and a process that is
    /// gone drops its entries; the counts of the frames and swap slots those
    /// entries name move. Checked as the full pass checks them: those frames
    /// and slots, and every frame the op made, changed or freed (the
    /// machine notes each), so that a map count moved without its PTE is
    /// caught too; the swap slots' counts must add up to the swap entries
    /// counted. The counts stay those of the last pass updated, so the next
    /// full or delta pass goes on from them; the fingerprint's classes do
    /// not, and a fingerprint waits for the next full pass.
    ///
    /// ASSUMPTIONS: one op ran since the last pass on `c` (the machine's
    /// notes of frames are per op), and every PTE it changed is in a range
    /// or process the caller named, as for the full pass.
    pub fn check_map_counts_delta(&self, c: &mut Census) -> Result<(), String> {
        if c.stamp == 0 {
            return self.check_map_counts(c, false, false).map(|_| ());
        }
        self.begin_delta(c);
        // Process slots never go away on one machine and a reset census
        // holds no entries, so no slot from `n` on holds any.
        let n = self.m.procs.len();
        // The processes named since the last pass and the ones added since.
        let pending = std::mem::take(&mut c.pending);
        let known = c.known.min(n);
        c.known = self.known_procs();
        let mut scans = std::mem::take(&mut c.scans);
        let mut visit = |i: usize, c: &mut Census| -> Result<(), String> {
            let Some(scan) = scans.get_mut(i) else {
                return Ok(());
            };
            if self.unchanged(i, scan) {
                return Ok(());
            }
            self.delta_scan(i, scan, c)
        };
        let r = if pending.contains(&None) {
            (0..n).try_for_each(|i| visit(i, c))
        } else {
            pending
                .iter()
                .map(|&p| p.expect("not every process") as usize)
                .chain(known..n)
                .try_for_each(|i| visit(i, c))
        };
        c.scans = scans;
        c.pending = pending;
        c.pending.clear();
        r?;
        self.end_delta(c)
    }

    /// [`Mmu::check_map_counts_delta`] after an op whose every PTE change
    /// the machine noted ([`Mmu::last_op_changed_ptes`]: a fault), naming
    /// those PTEs itself: when nothing else was named since the last pass
    /// and no process was added since, each noted PTE is looked up and its
    /// entry replaced in place, without queueing its process and range
    /// ([`Census::forget_range`]) for the delta pass to find; otherwise
    /// they are named and the delta pass runs. The same counts, the same
    /// checks.
    ///
    /// ASSUMPTIONS: as for [`Mmu::check_map_counts_delta`]; the op changed
    /// no PTE the machine did not note.
    pub fn check_map_counts_after_fault(&self, c: &mut Census) -> Result<(), String> {
        let n = self.m.procs.len();
        let direct = c.stamp != 0
            && c.pending.is_empty()
            && c.scans.len() >= n
            && (c.known.min(n)..n).all(|i| self.unchanged(i, &c.scans[i]))
            && self.last_op_changed_ptes().all(|(p, _)| {
                let i = p.0 as usize;
                self.m.procs.get(i).is_some_and(Option::is_some)
                    && c.scans[i].current
                    && c.scans[i].dirty.is_empty()
            });
        if !direct {
            for (p, a) in self.last_op_changed_ptes() {
                c.forget_range(p, a, a + 1, false);
            }
            return self.check_map_counts_delta(c);
        }
        self.begin_delta(c);
        c.direct += 1;
        c.known = self.known_procs();
        let mut scans = std::mem::take(&mut c.scans);
        let r = self.last_op_changed_ptes().try_for_each(|(p, a)| {
            let i = p.0 as usize;
            let mm = self.m.procs[i].as_ref().expect("checked alive");
            self.delta_pte(i, mm, &mut scans[i], a, c)
        });
        c.scans = scans;
        r?;
        self.end_delta(c)
    }

    /// Whether process slot `i` has nothing a delta pass would count again:
    /// alive with its scan current and nothing named, or gone with nothing
    /// counted.
    #[inline]
    fn unchanged(&self, i: usize, scan: &Scan) -> bool {
        if matches!(self.m.procs.get(i), Some(Some(_))) {
            scan.current && scan.dirty.is_empty()
        } else {
            scan.entries.is_empty()
        }
    }

    /// The start of a delta pass: room for every slot, a new pass number.
    fn begin_delta(&self, c: &mut Census) {
        c.full = None;
        c.touched_frames.clear();
        c.touched_swaps.clear();
        if c.frames.len() < self.m.frames.slots() {
            c.frames.resize(self.m.frames.slots(), (0, 0, 0, 0));
        }
        if c.checked.len() < self.m.frames.slots() {
            c.checked.resize(self.m.frames.slots(), (0, 0));
        }
        c.delta = c.delta.wrapping_add(1);
        if c.delta == 0 {
            c.checked.fill((0, 0));
            c.delta = 1;
        }
        if c.swaps.len() < self.m.swap.slots() {
            c.swaps.resize(self.m.swap.slots(), (0, 0));
        }
        let n = self.m.procs.len();
        if c.scans.len() < n {
            c.scans.resize_with(n, Scan::default);
        }
    }

    /// The end of a delta pass: the frames and swap slots it touched and
    /// those the op changed, checked.
    fn end_delta(&self, c: &mut Census) -> Result<(), String> {
        // The frames whose PTEs changed, and those the op made, changed or
        // freed (a count moved without its PTE is caught here).
        let touched = std::mem::take(&mut c.touched_frames);
        let r = self
            .check_touched(c, &touched)
            .and_then(|()| self.check_touched(c, &self.m.dirty_frames));
        c.touched_frames = touched;
        r?;
        for &id in &c.touched_swaps {
            self.check_swap_slot(c, id)?;
        }
        // The sum of the slots' counts: unless no swap entry moved and no
        // slot changed (the arena's epoch) since the last pass found it
        // equal to the entries counted.
        if !c.touched_swaps.is_empty() || c.swap_epoch != Some(self.m.swap.epoch()) {
            let swap_counts: u64 = self.m.swap.iter().map(|(_, sl)| u64::from(sl.count)).sum();
            if swap_counts != c.swap_entries {
                // A slot whose entries the op did not touch: the full pass
                // says which.
                let entries = c.swap_entries;
                self.check_map_counts(c, true, false)?;
                return Err(format!(
                    "the swap slots' counts add up to {swap_counts} but {entries} swap entries \
                     name them"
                ));
            }
            c.swap_epoch = Some(self.m.swap.epoch());
        }
        Ok(())
    }

    /// One past the last live process slot: a slot above it is new to the
    /// next delta pass even if it exists now (a failed fork's child slot is
    /// made and then reused by the next fork).
    fn known_procs(&self) -> usize {
        self.m
            .procs
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1)
    }

    /// Process `i`'s part of a delta pass: its changed entries uncounted
    /// and counted again.
    fn delta_scan(&self, i: usize, scan: &mut Scan, c: &mut Census) -> Result<(), String> {
        let mm = self.m.procs.get(i).and_then(|m| m.as_ref());
        let Some(mm) = mm else {
            // Gone (or never there): what it mapped is mapped no more.
            for &(_, e) in &scan.entries {
                c.uncount(e);
            }
            scan.entries.clear();
            scan.dirty.clear();
            scan.current = false;
            scan.vmas_current = false;
            return Ok(());
        };
        if !scan.current {
            for &(_, e) in &scan.entries {
                c.uncount(e);
            }
            self.scan(mm, scan);
            return self.count_delta(i, &scan.entries, c);
        }
        if scan.dirty.is_empty() {
            return Ok(());
        }
        if scan.dirty.iter().all(|&(s, e)| e == s + 1) {
            // Single PTEs (a fault's): each looked up and replaced in place.
            let dirty = std::mem::take(&mut scan.dirty);
            for &(a, _) in &dirty {
                self.delta_pte(i, mm, scan, a, c)?;
            }
            scan.dirty = dirty;
            scan.dirty.clear();
            return Ok(());
        }
        merge_ranges(&mut scan.dirty);
        for &(a, e) in &scan.entries {
            if in_ranges(a, &scan.dirty) {
                c.uncount(e);
            }
        }
        let mut dirty = std::mem::take(&mut c.dirty);
        dirty.clone_from(&scan.dirty);
        self.rescan_dirty(mm, scan);
        let r = scan
            .entries
            .iter()
            .filter(|&&(a, _)| in_ranges(a, &dirty))
            .try_for_each(|&(a, e)| self.count_entry(i, a, e, c));
        c.dirty = dirty;
        r
    }

    /// Process `i`'s PTE at `a` looked up and its entry replaced in place
    /// in `scan`: the old one uncounted, the new one counted.
    #[inline]
    fn delta_pte(
        &self,
        i: usize,
        mm: &Mm,
        scan: &mut Scan,
        a: u64,
        c: &mut Census,
    ) -> Result<(), String> {
        let now = self.entry_at(mm, a);
        match (scan.entries.binary_search_by_key(&a, |&(x, _)| x), now) {
            (Ok(k), Some(e)) => {
                c.uncount(scan.entries[k].1);
                scan.entries[k].1 = e;
                self.count_entry(i, a, e, c)
            }
            (Ok(k), None) => {
                c.uncount(scan.entries.remove(k).1);
                Ok(())
            }
            (Err(k), Some(e)) => {
                scan.entries.insert(k, (a, e));
                self.count_entry(i, a, e, c)
            }
            (Err(_), None) => Ok(()),
        }
    }

    /// Counts `entries` of process `i` (a delta pass).
    fn count_delta(
        &self,
        i: usize,
        entries: &[(u64, Entry)],
        c: &mut Census,
    ) -> Result<(), String> {
        for &(a, e) in entries {
            self.count_entry(i, a, e, c)?;
        }
        Ok(())
    }

    /// Counts one entry of process `i` at `a` (a delta pass).
    #[inline]
    fn count_entry(&self, i: usize, a: u64, e: Entry, c: &mut Census) -> Result<(), String> {
        match e {
            Entry::Zero => {}
            Entry::Present(frame) | Entry::Migration(frame) => {
                let n = self.live_frame(i, a, frame)?;
                *c.count_frame(frame, n).1 = n;
                c.touched_frames.push(frame);
            }
            Entry::Swap(s) => {
                if !self.m.swap.contains(s) {
                    return Err(format!(
                        "p{i}:{a} is a swap entry for slot {s}, which was freed"
                    ));
                }
                c.count_swap(s.index());
                c.touched_swaps.push(s);
            }
        }
        Ok(())
    }

    /// Swap slot `id`: its count is the number of swap entries counted, its
    /// swap-cache page names it back, and it is freed once nothing needs it
    /// (a freed slot is named by no entry).
    fn check_swap_slot(&self, c: &Census, id: SwapId) -> Result<(), String> {
        self.check_swap_entries(id, c.swap(id.index()))
    }

    /// Swap slot `id`, named by `entries` swap entries: as
    /// [`Mmu::check_swap_slot`] says.
    fn check_swap_entries(&self, id: SwapId, entries: u32) -> Result<(), String> {
        let Some(slot) = self.m.swap.get(id) else {
            if entries != 0 {
                return Err(format!(
                    "swap slot {id} was freed but {entries} swap entr{} name it",
                    if entries == 1 { "y" } else { "ies" }
                ));
            }
            return Ok(());
        };
        if slot.count != entries {
            return Err(format!(
                "swap slot {id} has count {} but {entries} swap entr{} name it",
                slot.count,
                if entries == 1 { "y" } else { "ies" }
            ));
        }
        match slot.cache {
            Some(f) if self.m.frames.get(f).and_then(|fr| fr.swap) != Some(id) => Err(format!(
                "swap slot {id}'s swap cache holds frame {f}, which does not name the slot"
            )),
            None if slot.count == 0 => Err(format!(
                "swap slot {id} is named by no swap entry and caches no page, yet it was not \
                 freed"
            )),
            _ => Ok(()),
        }
    }

    /// The frames a delta pass counted or uncounted, checked as the full
    /// pass checks mapped and unmapped frames.
    /// A frame named twice in one delta pass is checked once (the marks).
    fn check_touched(&self, c: &mut Census, touched: &[FrameId]) -> Result<(), String> {
        for &id in touched {
            let i = id.index();
            let mark = (c.delta, id.generation());
            if c.checked[i] == mark {
                continue;
            }
            c.checked[i] = mark;
            let ptes = c.frame_count(i);
            let Some(f) = self.m.frames.get(id) else {
                if ptes != 0 {
                    return Err(format!(
                        "frame {id} was freed but {ptes} PTE(s) still map it{}",
                        self.mappers(id)
                    ));
                }
                continue;
            };
            if ptes == 0 {
                self.census_check_unmapped(c, id, f)?;
            } else if f.mapcount != ptes {
                return Err(self.miscounted(id, ptes));
            }
        }
        Ok(())
    }

    /// The pass over every live process's VMAs: PTEs counted per frame and
    /// swap slot into `c`, the fingerprint folded if asked for.
    fn pass(&self, c: &mut Census, fingerprint: bool) -> Result<u64, String> {
        let n = self.m.procs.len();
        if c.procs.len() < n {
            c.procs.resize(n, (0, 0));
        }
        if c.scans.len() < n {
            c.scans.resize_with(n, Scan::default);
        }
        // Everything is counted again: a delta pass later goes on from here.
        c.pending.clear();
        c.known = self.known_procs();
        let mut scans = std::mem::take(&mut c.scans);
        let r: Result<(), String> = self
            .m
            .procs
            .iter()
            .zip(scans.iter_mut())
            .enumerate()
            .try_for_each(|(i, (mm, scan))| {
                let Some(mm) = mm else {
                    // Gone: nothing of it is counted.
                    scan.entries.clear();
                    scan.dirty.clear();
                    scan.current = false;
                    scan.vmas_current = false;
                    return Ok(());
                };
                if !scan.current {
                    self.scan(mm, scan);
                } else if !scan.dirty.is_empty() {
                    self.rescan_dirty(mm, scan);
                }
                if fingerprint && !scan.vmas_current {
                    scan.vmas = self.vmas_hash(i, mm);
                    scan.vmas_current = true;
                }
                let h = self.count(i, scan, c, fingerprint)?;
                if fingerprint {
                    c.procs[i] = (scan.vmas, h);
                }
                Ok(())
            });
        c.scans = scans;
        r?;
        Ok(if fingerprint { self.fold(c) } else { 0 })
    }

    /// A process's PTEs inside its VMAs, into `scan`.
    fn scan(&self, mm: &Mm, scan: &mut Scan) {
        scan.entries.clear();
        for &vid in mm.vmas.values() {
            let v = self.m.vma(vid);
            self.scan_range(mm, v.start, v.end, &mut scan.entries);
        }
        scan.dirty.clear();
        scan.current = true;
    }

    /// The dirty ranges of `scan` scanned again, inside the VMAs that
    /// overlap them now.
    fn rescan_dirty(&self, mm: &Mm, scan: &mut Scan) {
        let mut dirty = std::mem::take(&mut scan.dirty);
        merge_ranges(&mut dirty);
        scan.entries.retain(|&(a, _)| !in_ranges(a, &dirty));
        for &(s, e) in &dirty {
            for (_, &vid) in mm.vmas.range(..e).rev() {
                let v = self.m.vma(vid);
                if v.end <= s {
                    break;
                }
                self.scan_range(mm, v.start.max(s), v.end.min(e), &mut scan.entries);
            }
        }
        scan.entries.sort_unstable_by_key(|&(a, _)| a);
        scan.entries.dedup_by_key(|&mut (a, _)| a);
        scan.dirty = dirty;
        scan.dirty.clear();
    }

    /// The entry of `mm`'s PTE at `a`, if it is not none and inside a VMA
    /// (what a scan would record there).
    #[inline]
    fn entry_at(&self, mm: &Mm, a: u64) -> Option<Entry> {
        let e = self.entry(&mm.pt[a as usize])?;
        let (_, &vid) = mm.vmas.range(..=a).next_back()?;
        (self.m.vma(vid).end > a).then_some(e)
    }

    /// The PTEs of `mm` in `[start, end)` that are not none, appended.
    fn scan_range(&self, mm: &Mm, start: u64, end: u64, out: &mut Vec<(u64, Entry)>) {
        for (a, pte) in (start..).zip(&mm.pt[start as usize..end as usize]) {
            if let Some(e) = self.entry(pte) {
                out.push((a, e));
            }
        }
    }

    /// What a scan records of `pte`, if it is not none.
    #[inline]
    fn entry(&self, pte: &Pte) -> Option<Entry> {
        Some(match *pte {
            Pte::None => return None,
            Pte::Present { frame, .. } if frame == self.m.zero => Entry::Zero,
            Pte::Present { frame, .. } => Entry::Present(frame),
            Pte::Migration { frame, .. } => Entry::Migration(frame),
            Pte::Swap(s) => Entry::Swap(s),
        })
    }

    /// Counts process `i`'s entries into `c`; returns the hash of its
    /// present pages if `fingerprint` asks for it.
    fn count(
        &self,
        i: usize,
        scan: &Scan,
        c: &mut Census,
        fingerprint: bool,
    ) -> Result<u64, String> {
        let mut h = 0u64;
        for &(a, e) in &scan.entries {
            match e {
                Entry::Zero => {
                    if fingerprint {
                        h = mix(h, a << 40 | 0xff_ffff_ffff);
                    }
                }
                Entry::Present(frame) => {
                    let n = self.live_frame(i, a, frame)?;
                    let (class, _) = c.count_frame(frame, n);
                    if fingerprint {
                        h = mix(h, a << 40 | u64::from(class) << 16 | u64::from(n));
                    }
                }
                Entry::Migration(frame) => {
                    let n = self.live_frame(i, a, frame)?;
                    c.count_frame(frame, n);
                }
                Entry::Swap(s) => {
                    if !self.m.swap.contains(s) {
                        return Err(format!(
                            "p{i}:{a} is a swap entry for slot {s}, which was freed"
                        ));
                    }
                    c.count_swap(s.index());
                }
            }
        }
        Ok(h)
    }

    /// The map count of `frame`, mapped at `pid:addr`, which must be alive.
    #[inline]
    fn live_frame(&self, pid: usize, addr: u64, frame: FrameId) -> Result<u32, String> {
        match self.m.frames.get(frame) {
            Some(f) => Ok(f.mapcount),
            None => Err(format!("p{pid}:{addr} maps frame {frame}, which was freed")),
        }
    }

    /// Frame `id` (alive) if no PTE of the last pass maps it: map count 0,
    /// no stale swap-cache link, not an anonymous page nothing needs.
    fn census_check_unmapped(&self, c: &Census, id: FrameId, f: &Frame) -> Result<(), String> {
        self.check_unmapped_frame(id, f, c.frame_count(id.index()))
    }

    /// Frame `id` (alive), mapped by `ptes` PTEs: if none, as
    /// [`Mmu::census_check_unmapped`] says.
    fn check_unmapped_frame(&self, id: FrameId, f: &Frame, ptes: u32) -> Result<(), String> {
        if id == self.m.zero {
            if f.mapcount != 0 {
                return Err(format!("the zero page has map count {}", f.mapcount));
            }
            return Ok(());
        }
        if let Some(s) = f.swap
            && self.m.swap.get(s).and_then(|slot| slot.cache) != Some(id)
        {
            return Err(format!(
                "frame {id} is in the swap cache of slot {s}, which does not hold it"
            ));
        }
        if ptes != 0 {
            return Ok(());
        }
        if f.mapcount != 0 {
            return Err(self.miscounted(id, 0));
        }
        if matches!(f.kind, FrameKind::Anon { .. }) {
            let needed = f
                .swap
                .and_then(|s| self.m.swap.get(s))
                .is_some_and(|slot| slot.count > 0);
            if !needed {
                return Err(format!(
                    "anonymous frame {id} is mapped by no PTE and no swap entry needs it, yet \
                     it was not freed"
                ));
            }
        }
        Ok(())
    }

    /// The report of frame `id` whose map count is not the `ptes` PTEs
    /// counted.
    fn miscounted(&self, id: FrameId, ptes: u32) -> String {
        let f = self.m.frame(id);
        format!(
            "frame {id} ({}) has map count {} but {ptes} PTE(s) map it{}",
            frame_kind(&f.kind),
            f.mapcount,
            self.mappers(id)
        )
    }

    /// `; PTEs at p0:3 p1:3`, for a map-count report.
    fn mappers(&self, frame: FrameId) -> String {
        let at: Vec<String> = self
            .ptes_mapping(frame)
            .iter()
            .map(|(p, a)| format!("{p}:{a}"))
            .collect();
        if at.is_empty() {
            String::new()
        } else {
            format!("; PTEs at {}", at.join(" "))
        }
    }
}

fn frame_kind(k: &FrameKind) -> String {
    match k {
        FrameKind::Zero => "the zero page".into(),
        FrameKind::Anon { mapping, index } => {
            format!("anonymous, mapping {mapping} index {index:#x}")
        }
        FrameKind::PageCache { file, off } => format!("page cache of file {file} at {off}"),
        FrameKind::Shmem { off, .. } => format!("shmem page {off}"),
    }
}

/// What the page tables reference, kept at the only two places a PTE is
/// written ([`Machine::set_pte`] and [`Machine::take_pte`]: the old entry
/// counted out, the new one in). Part of the machine, so a copy of the
/// machine (a concurrent block's schedule) carries its counts.
///
/// [`Machine::set_pte`]: super::Machine
/// [`Machine::take_pte`]: super::Machine
#[derive(Clone, Debug, Default)]
pub(crate) struct Refs {
    /// Per frame slot: the PTEs naming it.
    frames: Vec<FrameRefs>,
    /// Per swap slot: the swap entries naming it, and the last slot handle
    /// an entry named there (for a report on a freed slot).
    swaps: Vec<(u32, Option<SwapId>)>,
    /// The sum of [`mapper`] over the present PTEs that map the zero page.
    zero: u64,
    /// Bumped by every swap entry written or cleared.
    swap_epoch: u64,
    /// Nothing is kept: no check reads the counts ([`Mmu::keep_no_refs`]).
    pub(super) off: bool,
}

/// The PTEs naming one frame slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FrameRefs {
    /// Present PTEs and migration entries: what its map count must be.
    ptes: u32,
    /// Present PTEs alone: the pages a dump shows it at.
    present: u32,
    /// The sum of [`mapper`] over those present PTEs: which pages share
    /// it, whatever the order they were mapped in.
    mappers: u64,
}

impl Refs {
    #[inline]
    fn slot(&mut self, f: FrameId) -> &mut FrameRefs {
        let i = f.index();
        if i >= self.frames.len() {
            self.frames.resize(i + 1, FrameRefs::default());
        }
        &mut self.frames[i]
    }

    /// A present PTE of `f` at `pid:addr` counted in (`add`) or out.
    #[inline]
    pub(super) fn present(&mut self, f: FrameId, pid: Pid, addr: u64, add: bool) {
        let h = mapper(pid, addr);
        let r = self.slot(f);
        if add {
            r.ptes = r.ptes.wrapping_add(1);
            r.present = r.present.wrapping_add(1);
            r.mappers = r.mappers.wrapping_add(h);
        } else {
            r.ptes = r.ptes.wrapping_sub(1);
            r.present = r.present.wrapping_sub(1);
            r.mappers = r.mappers.wrapping_sub(h);
        }
    }

    /// A migration entry of `f` counted in or out.
    #[inline]
    pub(super) fn migration(&mut self, f: FrameId, add: bool) {
        let r = self.slot(f);
        r.ptes = if add {
            r.ptes.wrapping_add(1)
        } else {
            r.ptes.wrapping_sub(1)
        };
    }

    /// A present PTE of the zero page at `pid:addr` counted in or out.
    #[inline]
    pub(super) fn zero(&mut self, pid: Pid, addr: u64, add: bool) {
        let h = mapper(pid, addr);
        self.zero = if add {
            self.zero.wrapping_add(h)
        } else {
            self.zero.wrapping_sub(h)
        };
    }

    /// A swap entry for slot `s` counted in or out.
    #[inline]
    pub(super) fn swap(&mut self, s: SwapId, add: bool) {
        self.swap_epoch += 1;
        let i = s.index();
        if i >= self.swaps.len() {
            self.swaps.resize(i + 1, (0, None));
        }
        let e = &mut self.swaps[i];
        e.0 = if add {
            e.0.wrapping_add(1)
        } else {
            e.0.wrapping_sub(1)
        };
        e.1 = Some(s);
    }

    /// The counts of frame slot `i`.
    #[inline]
    fn frame(&self, i: usize) -> FrameRefs {
        self.frames.get(i).copied().unwrap_or_default()
    }

    /// The swap entries naming swap slot `i`.
    #[inline]
    fn swap_entries(&self, i: usize) -> u32 {
        self.swaps.get(i).map_or(0, |e| e.0)
    }
}

#[cfg(any(test, feature = "testkit"))]
thread_local! {
    /// PTE writes on this thread still to count before the one the kept
    /// counts miss ([`testkit_miss_pte_write`]).
    static MISS_PTE_WRITE: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Makes the kept counts miss the `n`th next PTE that `set_pte` writes on
/// this thread (0: the next one), as if that write bypassed them: the
/// tests that prove the checks on the kept counts fire (the `testkit`
/// feature; never in normal builds or fuzzing).
#[cfg(any(test, feature = "testkit"))]
pub fn testkit_miss_pte_write(n: u64) {
    MISS_PTE_WRITE.with(|c| c.set(Some(n)));
}

/// Whether the kept counts miss this PTE write ([`testkit_miss_pte_write`]).
#[cfg(any(test, feature = "testkit"))]
pub(super) fn missed_pte_write() -> bool {
    MISS_PTE_WRITE.with(|c| match c.get() {
        Some(0) => {
            c.set(None);
            true
        }
        Some(n) => {
            c.set(Some(n - 1));
            false
        }
        None => false,
    })
}

/// Never outside the tests.
#[cfg(not(any(test, feature = "testkit")))]
#[inline(always)]
pub(super) fn missed_pte_write() -> bool {
    false
}

/// A 64-bit finaliser (`splitmix64`'s): the terms the fingerprint sums
/// must not cancel or collide by structure.
#[inline]
fn fmix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The hash of the page `pid:addr`, summed over the PTEs that map a frame.
#[inline]
fn mapper(pid: Pid, addr: u64) -> u64 {
    fmix(u64::from(pid.0) << 32 | addr | 0x8000_0000)
}

/// What the checks on the kept counts carry from op to op, in a run's
/// [`Census`]: the layout fingerprint's parts and the swap slots' state
/// at the last check.
#[derive(Clone, Debug, Default)]
struct Ledger {
    /// The parts below hold (a reset census or a fresh one: not yet).
    ready: bool,
    /// Per frame slot: its term in `pages` (0: no present PTE maps it).
    terms: Vec<u64>,
    /// The sum of the frames' terms: which pages share a frame, and the
    /// frame's map count, as a dump shows them.
    pages: u64,
    /// Per process slot: the hash of its maps lines (0: gone).
    vmas: Vec<u64>,
    /// Their sum.
    maps: u64,
    /// The swap arena's and the swap entries' epochs at the last check.
    swap_epochs: Option<(u64, u64)>,
    /// Per swap slot: the frame its swap cache held at the last check.
    caches: Vec<Option<FrameId>>,
    /// Per frame slot: the pass that last checked it (a slot noted twice
    /// in one op is checked once).
    marks: Vec<u32>,
    mark: u32,
}

impl<R: Rmap> Mmu<R> {
    /// Stops keeping the counts [`Mmu::check_refs`] reads, for a run in
    /// which no check reads them (a benchmark without `mapcount` and
    /// `layout`: what keeping them costs is then measured with the checks).
    /// Before the first op only: the counts stay as they are, wrong once a
    /// PTE is written.
    pub fn keep_no_refs(&mut self) {
        self.m.refs.off = true;
    }

    /// **Map counts** and the layout fingerprint's pages after one op, at
    /// the cost of what the op changed, from the counts the machine keeps
    /// at its page-table writes ([`Refs`]): every frame the op noted
    /// (its PTEs counted in or out, or the frame made, changed or freed)
    /// is checked as [`Mmu::check_map_counts`] checks it, with the kept
    /// count in place of a recount; every swap slot when a swap entry or a
    /// slot changed (the epochs), with the frames their swap caches held
    /// then and now. With `layout`, those frames' terms in the fingerprint
    /// move ([`Mmu::refs_fingerprint`]).
    ///
    /// Exact by induction: after the previous op every kept count equalled
    /// its map count (both start at 0); a frame whose two counts differ now
    /// had one of them change in this op, and either change notes the
    /// frame. The same holds for the frame and swap-slot states the other
    /// checks read.
    ///
    /// ASSUMPTIONS: the last check on `c` followed the previous op on this
    /// machine (the machine's notes of frames are per op, or per
    /// concurrent block), or `c` is fresh or reset (then every slot is
    /// checked: [`Mmu::check_refs_all`]).
    pub fn check_refs(&self, c: &mut Census, counts: bool, layout: bool) -> Result<(), String> {
        if !c.ledger.ready {
            return self.check_refs_all(c, counts);
        }
        let l = &mut c.ledger;
        let n = self.m.frames.slots();
        if l.marks.len() < n {
            l.marks.resize(n, 0);
        }
        if l.terms.len() < n {
            l.terms.resize(n, 0);
        }
        l.mark = l.mark.wrapping_add(1);
        if l.mark == 0 {
            l.marks.fill(0);
            l.mark = 1;
        }
        for &id in &self.m.dirty_frames {
            let i = id.index();
            if l.marks[i] == l.mark {
                continue;
            }
            l.marks[i] = l.mark;
            if layout {
                let t = self.term(i);
                l.pages = l.pages.wrapping_sub(l.terms[i]).wrapping_add(t);
                l.terms[i] = t;
            }
            if counts {
                self.check_frame_slot(i)?;
            }
        }
        if counts && l.swap_epochs != Some(self.swap_epochs()) {
            self.check_swaps(l)?;
        }
        Ok(())
    }

    /// [`Mmu::check_refs`] over every frame and swap slot, its parts of the
    /// fingerprint made afresh (every process's maps lines hashed): for a
    /// fresh census, and after a concurrent block.
    pub fn check_refs_all(&self, c: &mut Census, counts: bool) -> Result<(), String> {
        let l = &mut c.ledger;
        let n = self.m.frames.slots().max(self.m.refs.frames.len());
        l.terms.clear();
        l.terms.resize(n, 0);
        l.pages = 0;
        for i in 0..n {
            let t = self.term(i);
            l.terms[i] = t;
            l.pages = l.pages.wrapping_add(t);
        }
        l.vmas.clear();
        l.maps = 0;
        l.ready = true;
        l.swap_epochs = None;
        l.caches.clear();
        self.refs_vmas_of(c, None);
        if counts {
            for i in 0..n {
                self.check_frame_slot(i)?;
            }
            self.check_swaps(&mut c.ledger)?;
        }
        Ok(())
    }

    /// The layout fingerprint's maps lines: those of `pid` (`None`: every
    /// process's) hashed again, a process that is gone dropping out.
    pub fn refs_vmas_of(&self, c: &mut Census, pid: Option<Pid>) {
        let l = &mut c.ledger;
        let n = self.m.procs.len();
        if l.vmas.len() < n {
            l.vmas.resize(n, 0);
        }
        let mut one = |i: usize| {
            // Finalised: the sum must not let two processes' hashes cancel.
            let h = match self.m.procs.get(i) {
                Some(Some(mm)) => fmix(self.vmas_hash(i, mm)),
                _ => 0,
            };
            if let Some(old) = l.vmas.get_mut(i) {
                l.maps = l.maps.wrapping_sub(*old).wrapping_add(h);
                *old = h;
            }
        };
        match pid {
            Some(p) => one(p.0 as usize),
            None => (0..n).for_each(one),
        }
    }

    /// The layout fingerprint as the checks on `c` left it: equal for two
    /// machines whose dumps print alike (the same processes and maps lines,
    /// the same pages present, sharing frames alike, with the same map
    /// counts, and the same zero-page mappings), whatever their frame
    /// handles; a sum of one term per frame, so it depends on how pages
    /// share frames, not on which slots the frames sit in. A dump shows no
    /// swap or migration entry, and neither does the fingerprint.
    ///
    /// ASSUMPTIONS: [`Mmu::check_refs`] with `layout` followed the last op,
    /// and [`Mmu::refs_vmas_of`] named every process whose VMAs it changed.
    pub fn refs_fingerprint(&self, c: &Census) -> u64 {
        let l = &c.ledger;
        mix(mix(mix(0, l.pages), fmix(self.m.refs.zero)), l.maps)
    }

    /// The term of frame slot `i` in the fingerprint: the pages mapping it
    /// and its map count, 0 if no present PTE maps it.
    #[inline]
    fn term(&self, i: usize) -> u64 {
        let r = self.m.refs.frame(i);
        if r.present == 0 {
            return 0;
        }
        let n = self
            .m
            .frames
            .get_at(i)
            .map_or(u64::MAX, |(_, f)| u64::from(f.mapcount));
        fmix(r.mappers ^ fmix(n ^ 0x6a09_e667_f3bc_c908))
    }

    /// The swap arena's epoch and the swap entries' (see [`Refs`]).
    fn swap_epochs(&self) -> (u64, u64) {
        (self.m.swap.epoch(), self.m.refs.swap_epoch)
    }

    /// Frame slot `i` against its kept count: a freed frame is mapped by
    /// nothing, a live one by as many PTEs as its map count says (if none,
    /// [`Mmu::check_unmapped_frame`]).
    fn check_frame_slot(&self, i: usize) -> Result<(), String> {
        let ptes = self.m.refs.frame(i).ptes;
        match self.m.frames.get_at(i) {
            None if ptes == 0 => Ok(()),
            None => {
                let (id, at) = self.slot_mappers(i);
                Err(match id {
                    Some(id) => format!("frame {id} was freed but {ptes} PTE(s) still map it{at}"),
                    None => format!("a freed frame is counted as mapped by {ptes} PTE(s)"),
                })
            }
            Some((id, f)) if ptes == 0 => self.check_unmapped_frame(id, f, 0),
            Some((id, f)) if f.mapcount != ptes => Err(self.miscounted(id, ptes)),
            Some(_) => Ok(()),
        }
    }

    /// A frame handle in slot `i` that a PTE names, and `; PTEs at ...`
    /// for the PTEs naming that slot (a report on a freed frame).
    fn slot_mappers(&self, i: usize) -> (Option<FrameId>, String) {
        let mut id = None;
        let mut at = Vec::new();
        for (p, mm) in self.m.procs.iter().enumerate() {
            let Some(mm) = mm else { continue };
            for (a, pte) in mm.pt.iter().enumerate() {
                if let Pte::Present { frame, .. } | Pte::Migration { frame, .. } = *pte
                    && frame.index() == i
                {
                    id.get_or_insert(frame);
                    at.push(format!("p{p}:{a}"));
                }
            }
        }
        let at = if at.is_empty() {
            String::new()
        } else {
            format!("; PTEs at {}", at.join(" "))
        };
        (id, at)
    }

    /// Every swap slot against its kept count ([`Mmu::check_swap_entries`]),
    /// a freed one named by no entry, and the frames the swap caches held
    /// at the last check and hold now ([`Mmu::check_frame_slot`]).
    fn check_swaps(&self, l: &mut Ledger) -> Result<(), String> {
        let n = self.m.swap.slots().max(self.m.refs.swaps.len());
        if l.caches.len() < n {
            l.caches.resize(n, None);
        }
        for i in 0..n {
            let entries = self.m.refs.swap_entries(i);
            let now = match self.m.swap.get_at(i) {
                Some((id, slot)) => {
                    self.check_swap_entries(id, entries)?;
                    slot.cache
                }
                None => {
                    if entries != 0 {
                        let id = self.m.refs.swaps[i].1.expect("an entry named the slot");
                        return Err(format!(
                            "swap slot {id} was freed but {entries} swap entr{} name it",
                            if entries == 1 { "y" } else { "ies" }
                        ));
                    }
                    None
                }
            };
            let before = std::mem::replace(&mut l.caches[i], now);
            for f in before.into_iter().chain(now) {
                self.check_frame_slot(f.index())?;
            }
        }
        l.swap_epochs = Some(self.swap_epochs());
        Ok(())
    }

    /// The kept counts against a recount of every live process's page
    /// table (all of it, inside VMAs or not): `Err` names the first slot
    /// that differs. The safety net at the end of a stream: a PTE written
    /// around `set_pte` and `take_pte` shows here.
    pub fn check_refs_recount(&self) -> Result<(), String> {
        let mut fresh = Refs::default();
        for (p, mm) in self.m.procs.iter().enumerate() {
            let Some(mm) = mm else { continue };
            let pid = Pid(p as u32);
            for (a, pte) in (0..).zip(mm.pt.iter()) {
                match *pte {
                    Pte::None => {}
                    Pte::Swap(s) => fresh.swap(s, true),
                    Pte::Present { frame, .. } if frame == self.m.zero => fresh.zero(pid, a, true),
                    Pte::Present { frame, .. } => fresh.present(frame, pid, a, true),
                    Pte::Migration { frame, .. } => fresh.migration(frame, true),
                }
            }
        }
        let kept = &self.m.refs;
        let n = kept.frames.len().max(fresh.frames.len());
        for i in 0..n {
            let (k, f) = (kept.frame(i), fresh.frame(i));
            if k != f {
                let (id, at) = self.slot_mappers(i);
                let name = id.map_or(format!("slot {i}"), |id| id.to_string());
                return Err(format!(
                    "frame {name} is mapped by {} PTE(s){at} but the count kept at the \
                     page-table writes says {}",
                    f.ptes, k.ptes
                ));
            }
        }
        let n = kept.swaps.len().max(fresh.swaps.len());
        for i in 0..n {
            let (k, f) = (kept.swap_entries(i), fresh.swap_entries(i));
            if k != f {
                return Err(format!(
                    "swap slot {i} is named by {f} swap entries but the count kept at the \
                     page-table writes says {k}"
                ));
            }
        }
        if kept.zero != fresh.zero {
            return Err(
                "the zero page's mappings differ from those kept at the page-table writes".into(),
            );
        }
        Ok(())
    }
}

/// Corruption hooks for the tests that prove the map-count check fires
/// (the `testkit` feature; never in normal builds or fuzzing).
#[cfg(any(test, feature = "testkit"))]
impl<R: Rmap> Mmu<R> {
    /// Adds `delta` to the map count of the frame `pid:page` maps.
    pub fn testkit_add_mapcount(&mut self, pid: Pid, page: u64, delta: i32) {
        let Pte::Present { frame, .. } = self.pte(pid, page) else {
            panic!("{pid}:{page} maps no frame");
        };
        let f = self.m.frame_mut(frame);
        f.mapcount = f.mapcount.checked_add_signed(delta).expect("map count");
    }

    /// Adds `delta` to the count of the swap slot `pid:page`'s swap entry
    /// names.
    pub fn testkit_add_swap_count(&mut self, pid: Pid, page: u64, delta: i32) {
        let Pte::Swap(s) = self.pte(pid, page) else {
            panic!("{pid}:{page} is no swap entry");
        };
        let slot = self.m.swap.get_mut(s).expect("live slot");
        slot.count = slot.count.checked_add_signed(delta).expect("swap count");
    }

    /// Counts the PTE at `pid:page` out of the kept counts as if a write
    /// had missed it (the frame noted as `set_pte` notes it).
    pub fn testkit_uncount_pte(&mut self, pid: Pid, page: u64) {
        let pte = self.pte(pid, page);
        assert!(pte != Pte::None, "{pid}:{page} is none");
        self.m.pte_refs(pid, page, pte, false);
    }

    /// Writes `pte` at `pid:page` around the choke points: no count kept,
    /// nothing noted, no map count changed.
    pub fn testkit_write_pte_uncounted(&mut self, pid: Pid, page: u64, pte: Pte) {
        self.m.mm_mut(pid).pt[page as usize] = pte;
    }
}
