//! The machine-readable report of `rmaplab run --format json`, as types:
//! the schema of `docs/op-language.md` ("Machine-readable report"), which
//! [`super::report::report_json`] fills and serde prints. Other tools may
//! read a report back into them (`serde_json::from_str::<Report>`); unknown
//! fields are refused, so the types are the whole schema.
//!
//! Beyond the schema, a report may carry `notes` (expected differences
//! between the designs, such as layouts) and, with `--stats`, a `stats`
//! object per run.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The whole report: `{"version": 1, "runs": [...], "verdict": ...}`
/// (`"version": 2` for a version 2 stream, whose runs carry the v2 fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The op language's version of the stream: 1, or 2.
    pub version: u32,
    /// One per design run, in the order they ran.
    pub runs: Vec<Run>,
    /// Expected divergences between the runs (layouts, and `mremap`
    /// outcomes that follow from them); absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Fails if any run fails or the runs disagree.
    pub verdict: Verdict,
}

/// One design's run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    pub design: String,
    /// The design's effective configuration (`era`, `bugs`); `{}` when it
    /// has none.
    pub config: Object<String, String>,
    /// One per op executed (a failed run stops at its failing op).
    pub outcomes: Vec<OpOutcome>,
    /// One per `dump` op, then the state after the last op unless the
    /// stream ends with `dump`.
    pub dumps: Vec<Dump>,
    pub verdict: Verdict,
    /// Counters (`--stats` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    /// Version 2: schedules of concurrent blocks run (0 without blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedules: Option<u64>,
    /// Version 2, a failure inside a block: the failing schedule, strict
    /// run-length form with step names (`! A..copy_vma B* A*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Version 2: the schedule cap stopped the exploration (the run was
    /// not explored in full); absent when it did not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capped: bool,
    /// Version 2: the blocks on the path the run shows (the first
    /// schedule of each when it passed, the failing path when it failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<BlockPath>,
}

/// One concurrent block on the path a run shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockPath {
    /// The line of its `par`.
    pub line: usize,
    /// Its schedule on this path, strict run-length form.
    pub schedule: String,
    /// Schedules of it run from this path's pre-block state.
    pub schedules: u64,
}

/// One op's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpOutcome {
    /// The op's line in the file.
    pub line: usize,
    /// Its actor's letter when it ran in a concurrent block (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<char>,
    /// The op in canonical text form.
    pub op: String,
    pub outcome: OutcomeName,
    /// The value a read gave (`outcome` is `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u64>,
    /// The errno's name (`outcome` is `err`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
}

/// `ok`, `segv`, `sigbus`, `err` or `unsupported`; `busy` for a walker in
/// a concurrent block that left the page mapped (version 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeName {
    Ok,
    Segv,
    Sigbus,
    Err,
    Unsupported,
    Busy,
}

/// The state at a `dump` (or after the last op).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dump {
    /// The `dump` op's line (the last op's for the final state).
    pub line: usize,
    /// Every live process (`p0`, `p1`, ... by number).
    pub processes: Object<String, Process>,
}

/// One process at a dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// Its VMAs in the window, ascending.
    pub vmas: Vec<Vma>,
    /// Its present pages, ascending (keys are page numbers as strings).
    pub pages: Object<u64, PageCell>,
}

/// `[start, end, perms, kind, offset]`: pages, end exclusive; `perms` as in
/// `/proc/PID/maps`; `kind` `anon`, `shared`, `file:F` or `sfile:F`;
/// `offset` in pages.
pub type Vma = (u64, u64, String, String, u64);

/// `[class, mapcount]`: `Z` or `f0`, `f1`, ...; the frame's map count.
pub type PageCell = (String, u32);

/// `"pass"` or `{"fail": {"line": N, "invariant": NAME, "detail": TEXT}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail(Fail),
}

/// Where and how a run failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fail {
    /// The failing op's line (0 after the last op: teardown, leaks).
    pub line: usize,
    /// `findability`, `dangling`, `semantics`, `leak`, `failed-op-trace`,
    /// `bound`, `differential`, `layout`, `mapcount`, `panic`, a design
    /// self-check's name, or (version 2) `stale-migration-entry`,
    /// `unmap-success-but-mapped`, `lock-discipline`, `data-race`,
    /// `deadlock`, `pte-prot`.
    pub invariant: String,
    pub detail: String,
}

/// A run's counters (`--stats`): at the end of the stream, before
/// teardown, and their peaks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub anon_vmas: u64,
    pub avcs: u64,
    pub bytes: u64,
    pub allocations: u64,
    pub peak_anon_vmas: u64,
    pub peak_avcs: u64,
    pub peak_bytes: u64,
    pub walks: u64,
    pub vmas_visited: u64,
    pub fork_trees: Vec<ForkTree>,
}

/// One fork tree's objects and walk cost at the end of the stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkTree {
    pub root: String,
    pub anon_vmas: u64,
    pub avcs: u64,
    pub bytes: u64,
    pub vmas: u64,
    pub pages: u64,
    pub vmas_visited_per_walk: f64,
    pub vmas_visited_max: u64,
}

/// A JSON object whose entries keep their order (pages ascending,
/// processes by number), which a map keyed by strings would not (`"10"`
/// sorts before `"9"`). Integer keys are written as strings, as JSON
/// requires, and read back as integers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object<K, V>(pub Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Object<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Object<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for Entries<K, V> {
            type Value = Object<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(a.size_hint().unwrap_or(0));
                while let Some(e) = a.next_entry()? {
                    entries.push(e);
                }
                Ok(Object(entries))
            }
        }
        d.deserialize_map(Entries(PhantomData))
    }
}
