//! The lock model of one design/era: which kernel's locking rules a
//! concurrent block follows. One value per design/era; a `--bug` that
//! re-injects a locking bug flips one field.

/// Which object an anon_vma lock names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockObj {
    /// The anon_vma itself (2.6.7 … 2.6.35).
    Own,
    /// The root of its fork tree (2.6.36+, `012f18004da3`).
    Root,
}

/// Where `anon_vma_prepare` links a VMA that reuses an anon_vma.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Insert {
    /// `list_add` (2.6.7 … 2.6.17; chain 2.6.34–35 reuse path, B08).
    Head,
    /// `list_add_tail` (2.6.18+, `0697212a411c`; chain 2.6.36, `26ba0cb63cb8`).
    Tail,
}

/// How much of a move `move_page_tables` does under one PTL: one step of
/// a split mutator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// `move_one_page` per PTE (2.6.7 … 2.6.14).
    PerPte,
    /// `move_ptes` per `LATENCY_LIMIT` (64 PTEs) chunk (2.6.15 … 4.17).
    Chunk64,
    /// One PMD extent (4.18+, `LATENCY_LIMIT` removed): the whole window.
    Pmd,
}

impl Granularity {
    /// Pages moved per step.
    pub fn pages(self) -> u64 {
        match self {
            Granularity::PerPte => 1,
            Granularity::Chunk64 => 64,
            Granularity::Pmd => u64::MAX,
        }
    }
}

/// Which lock a page fault holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultLock {
    /// `mmap_lock` for read.
    MmapRead,
    /// The per-VMA lock (6.4+, `5e31275cc997`), `mmap_lock` as fallback.
    PerVma,
}

/// The era's locking rules, as the interleaving model uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LockModel {
    /// The object a walk (and a tree/list writer) locks.
    pub walk_lock: LockObj,
    /// Walkers take the lock shared (the 3.8+ rwsem); before, it is a
    /// spinlock or mutex and walkers exclude each other.
    pub shared_readers: bool,
    /// `anon_vma_prepare`'s link position.
    pub prepare_insert: Insert,
    /// `anon_vma_moveto_tail` after a merging `copy_vma` (3.3 … 3.6,
    /// Andrea Arcangeli's B12 fix).
    pub moveto_tail: bool,
    /// `move_ptes` takes the rmap locks when `copy_vma` merged into a VMA
    /// at or before the source in the walk order (`need_rmap_locks`, 3.7+,
    /// `38a76013ad80`).
    pub need_rmap_locks: bool,
    /// `remove_migration_pte` reads the PTE before taking its PTL (≤ 3.0;
    /// `486cf46f3f9b` took the PTL first).
    pub peek_before_ptl: bool,
    /// One `move_page_tables` step.
    pub move_granularity: Granularity,
    pub fault_lock: FaultLock,
    /// The VMAs that stay mapped when munmap splits one keep their object
    /// (and so their place on an anon_vma list): until 6.5 `do_munmap`
    /// split the start with `new_below = 0` and the end with `new_below =
    /// 1`, so the new VMA was the piece unmapped. 6.6 reversed both (Liam
    /// Howlett, "mm/mmap: change vma iteration order in
    /// do_vmi_align_munmap()"), so the pieces that stay are new VMAs,
    /// cloned after (in list order: behind) everything else.
    pub unmap_keeps_original: bool,
    /// A merge changes VMA bounds under the anon_vma lock (`vma_adjust`;
    /// 2.6.33 and before, and again from 2.6.36, `012f18004da3`). 2.6.34
    /// and 2.6.35 did it unlocked (`5beb49305251`; bug `x1`): the bounds
    /// then change in a step of their own, `merge.prepare` to
    /// `merge.commit`, that takes no anon_vma lock.
    pub adjust_locked: bool,
    /// Migration's walks skip exec's temporary stack
    /// (`vma_is_temporary_stack`, Mel Gorman's `a8bef8ff6ea1`, 2.6.34; bug
    /// `b09` without it): between `setup_arg_pages`' expand and its page
    /// table move, `vma_address` points where nothing is mapped yet.
    pub migrate_skips_temp_stack: bool,
    /// `vma_merge` case 8 (a range ending where `next` starts, the whole
    /// middle VMA changing to `next`'s flags) extends the middle over
    /// `next` and removes `next`, so for a moment the merged VMA has the
    /// middle's old flags over `next`'s pages (before 4.8; bug `b21`,
    /// fixed by Andrea Arcangeli's `e86f15ee64d8`, which extends `next`
    /// down instead, as 6.18 does).
    pub merge_next_extends_middle: bool,
    /// Per-VMA-lock faults (`fault_lock` [`FaultLock::PerVma`]) read
    /// `vma->anon_vma` only under the VMA read lock, and prepare an
    /// anon_vma only under `mmap_lock` (6.18 `__vmf_anon_prepare`). 6.4's
    /// `lock_vma_under_rcu` tested `vma->anon_vma` before `vma_start_read`
    /// and then let the fault prepare one under the VMA lock alone (bug
    /// `b18a`, fixed by `657b5146955e`).
    pub anon_check_under_vma_lock: bool,
    /// `dup_anon_vma` write-locks `dst` before publishing
    /// `dst->anon_vma` (Jann Horn, July 2023, "mm: lock VMA in
    /// dup_anon_vma() before setting ->anon_vma"); before, `dst` was
    /// write-locked only after the chain clone (bug `b18b`).
    pub dup_anon_vma_locks_dst: bool,
    /// anon_vmas live in type-stable memory (`SLAB_DESTROY_BY_RCU`, later
    /// `SLAB_TYPESAFE_BY_RCU`) and a walker finds its anon_vma through
    /// `page->mapping` under RCU (`page_lock_anon_vma`): in a block, the
    /// walk's page lookup is a step of its own, a freed slot is reused
    /// LIFO by the next allocation, the walker resolves the slot (not the
    /// object) at `lock`, a reused slot keeps its old `root` until
    /// `anon_vma_fork` writes it (fork allocates and links in two steps),
    /// and an anon_vma lock belongs to the slot. On in chain-2010 era 2010
    /// and single-list-2004 era 2006, whose walkers lock what the slot
    /// says; sequential runs are unchanged.
    pub typesafe_slots: bool,
    /// `page_lock_anon_vma` re-checks `page_mapped` after taking the lock
    /// and backs out (unlocking what it locked) if the page went
    /// (`f18194275c39`, 2.6.36); bug `b10` without it: the walk goes on
    /// and `page_unlock_anon_vma` reads `anon_vma->root` again. Only read
    /// with [`LockModel::typesafe_slots`].
    pub recheck_mapped_after_lock: bool,
    /// `anon_vma_prepare` takes the lock of an anon_vma it allocated, not
    /// only of one it reused (`d9d332e0874f`, 2.6.28); bug `b02` without
    /// it. Only read with [`LockModel::typesafe_slots`].
    pub lock_fresh_anon_vma: bool,
}

impl LockModel {
    /// Linux 6.18 (chain-2010 era 2022, prealloc-2026): root rwsem,
    /// interval tree, `need_rmap_locks`, PMD-extent moves, per-VMA-lock
    /// faults.
    pub const LINUX_6_18: LockModel = LockModel {
        walk_lock: LockObj::Root,
        shared_readers: true,
        prepare_insert: Insert::Tail,
        moveto_tail: false,
        need_rmap_locks: true,
        peek_before_ptl: false,
        move_granularity: Granularity::Pmd,
        fault_lock: FaultLock::PerVma,
        unmap_keeps_original: false,
        adjust_locked: true,
        migrate_skips_temp_stack: true,
        merge_next_extends_middle: false,
        anon_check_under_vma_lock: true,
        dup_anon_vma_locks_dst: true,
        typesafe_slots: false,
        recheck_mapped_after_lock: true,
        lock_fresh_anon_vma: true,
    };

    /// chain-2010 era 2015 (3.19 … 5.19): as 6.18 but faults under
    /// `mmap_lock` only, and munmap's split keeps the original VMAs.
    pub const ERA_2015: LockModel = LockModel {
        fault_lock: FaultLock::MmapRead,
        unmap_keeps_original: true,
        ..LockModel::LINUX_6_18
    };

    /// chain-2010 era 2010: the final state of the list era (2.6.36 root
    /// lock and tail insertion, 3.1 PTL before the migration-entry check,
    /// 3.3 `anon_vma_moveto_tail`), a mutex (walkers exclusive), 64-PTE
    /// move chunks, no `need_rmap_locks`.
    pub const LIST_ERA_2010: LockModel = LockModel {
        walk_lock: LockObj::Root,
        shared_readers: false,
        prepare_insert: Insert::Tail,
        moveto_tail: true,
        need_rmap_locks: false,
        peek_before_ptl: false,
        move_granularity: Granularity::Chunk64,
        fault_lock: FaultLock::MmapRead,
        unmap_keeps_original: true,
        adjust_locked: true,
        migrate_skips_temp_stack: true,
        merge_next_extends_middle: false,
        anon_check_under_vma_lock: true,
        dup_anon_vma_locks_dst: true,
        typesafe_slots: true,
        recheck_mapped_after_lock: true,
        lock_fresh_anon_vma: true,
    };

    /// single-list-2004 era 2004 (2.6.7 + the 2.6.8 importer fix): the
    /// family's own anon_vma spinlock, head insertion, per-PTE moves
    /// (`move_one_page`). It predates migration entries (2.6.18), so a
    /// `migrate` in a block runs under the 2.6.18 rules of
    /// [`LockModel::SINGLE_LIST_2006`] except the list order: the
    /// `remove_migration_pte` peek and head insertion.
    pub const SINGLE_LIST_2004: LockModel = LockModel {
        walk_lock: LockObj::Own,
        shared_readers: false,
        prepare_insert: Insert::Head,
        moveto_tail: false,
        need_rmap_locks: false,
        peek_before_ptl: true,
        move_granularity: Granularity::PerPte,
        fault_lock: FaultLock::MmapRead,
        unmap_keeps_original: true,
        adjust_locked: true,
        migrate_skips_temp_stack: false,
        merge_next_extends_middle: false,
        anon_check_under_vma_lock: true,
        dup_anon_vma_locks_dst: true,
        typesafe_slots: false,
        // The single list's page_lock_anon_vma locks the anon_vma the slot
        // holds, no root to switch: no re-check until 2.6.36.
        recheck_mapped_after_lock: false,
        lock_fresh_anon_vma: true,
    };

    /// single-list-2004 era 2006 (2.6.18 … 2.6.33): migration entries and
    /// every link at the list tail (`0697212a411c`), `move_ptes` in 64-PTE
    /// chunks, and `remove_migration_pte` still peeks before the PTL; no
    /// ordering fix for a merging `copy_vma` ever reached this design, nor
    /// the temporary-stack skip of 2.6.34 (`shift_arg_pages` moves the
    /// stack since 2.6.23).
    pub const SINGLE_LIST_2006: LockModel = LockModel {
        prepare_insert: Insert::Tail,
        move_granularity: Granularity::Chunk64,
        typesafe_slots: true,
        ..LockModel::SINGLE_LIST_2004
    };

    /// The mode walkers take the anon_vma lock in.
    pub fn walk_mode(&self) -> super::Mode {
        if self.shared_readers {
            super::Mode::Shared
        } else {
            super::Mode::Exclusive
        }
    }
}

impl Default for LockModel {
    fn default() -> LockModel {
        LockModel::LINUX_6_18
    }
}
