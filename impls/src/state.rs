//! What a user can observe of a machine at a `dump` (docs/op-language.md, "What executing
//! a stream reports"): `/proc/PID/maps` lines inside the window and, per
//! present page, the frame it maps and that frame's map count. Frames are
//! named by an identity private to the producer; the report turns them into
//! classes `f0`, `f1`, ... (`Z` for the zero page).

use std::collections::BTreeMap;

use rmaplab_ops::Pid;

/// The mapping kind as `/proc/PID/maps` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MapKind {
    Anon,
    Shared,
    File(u8),
    SFile(u8),
}

impl MapKind {
    pub fn name(self) -> String {
        match self {
            MapKind::Anon => "anon".into(),
            MapKind::Shared => "shared".into(),
            MapKind::File(f) => format!("file:{f}"),
            MapKind::SFile(f) => format!("sfile:{f}"),
        }
    }
}

/// One line of `/proc/PID/maps`, in window pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmaLine {
    pub start: u64,
    pub end: u64,
    /// `rw-p`, `r--s`, ...
    pub perms: String,
    pub kind: MapKind,
    /// File or shmem offset in pages; 0 for private anonymous memory.
    pub offset: u64,
}

/// What a present PTE maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameRef {
    /// The shared zero page (map count 0).
    Zero,
    /// Any other frame, by an identity unique within one snapshot.
    Frame(u64),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcState {
    pub vmas: Vec<VmaLine>,
    /// Present pages: page number -> (frame, map count).
    pub pages: BTreeMap<u64, (FrameRef, u32)>,
}

/// The observable state of every live process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub procs: BTreeMap<Pid, ProcState>,
}
