//! Where a design run's expected outcomes come from: the reference model
//! ([`crate::oracle::model`]), shared between the designs of one
//! [`run_all`](super::runner::run_all).
//!
//! The model is stepped once per op, not once per design: the first design
//! records each op's outcome and the layout questions the model asked
//! (`mremap` only) with the answers that design's MMU gave; the others reuse
//! a recorded outcome when their own layout gives the same answers, and
//! otherwise rebuild the model by replaying the record up to that op and go
//! on live. `RunOptions::recheck_pure_ops` turns sharing off (a model per
//! design), which the tests compare against.

use std::cell::RefCell;

use rmaplab_impls::mmu::Mmu;
use rmaplab_impls::rmap::Rmap;
use rmaplab_ops::{Outcome, Pid};

use crate::oracle::model::{Layout, Model};
use rmaplab_ops::Stream;

/// A layout question of the model with the answer the design's MMU gave:
/// the VMA bounds at a page, or the PTEs mapping its anonymous page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Query {
    Bounds(Pid, u64, Option<(u64, u64)>),
    Mappings(Pid, u64, u64),
}

impl Query {
    /// Whether `mmu` answers the question the same way.
    fn holds<R: Rmap>(&self, mmu: &Mmu<R>) -> bool {
        match *self {
            Query::Bounds(pid, page, ans) => mmu.vma_bounds(pid, page) == ans,
            Query::Mappings(pid, page, n) => mmu.anon_mappings(pid, page) == n,
        }
    }
}

/// What one design run does with the [`SharedModel`].
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
enum ShareMode {
    /// A model of its own; the record is untouched.
    #[default]
    Off,
    /// A model of its own, each op's outcome and queries appended.
    Record,
    /// The record's outcomes where this design's layout answers alike.
    Replay,
}

/// The reference model's record shared by the designs of one `run_all`:
/// per op, the model's outcome and the layout questions it asked with their
/// answers.
#[derive(Default)]
pub(crate) struct SharedModel {
    /// Whether the designs share the record at all.
    share: bool,
    mode: ShareMode,
    /// Whether the record covers the whole stream (then later designs
    /// replay it).
    complete: bool,
    record: Vec<(Outcome, Vec<Query>)>,
}

impl SharedModel {
    /// A record for the designs of one `run_all` (`share`), or none: every
    /// design runs a model of its own.
    pub(crate) fn new(share: bool) -> SharedModel {
        SharedModel {
            share,
            ..SharedModel::default()
        }
    }

    /// Before the `k`-th design's run: the first records, the others replay
    /// if the record is complete.
    pub(crate) fn begin_design(&mut self, k: usize) {
        self.mode = match (self.share, k, self.complete) {
            (false, _, _) => ShareMode::Off,
            (true, 0, _) => ShareMode::Record,
            (true, _, true) => ShareMode::Replay,
            (true, _, false) => ShareMode::Off,
        };
    }

    /// After the `k`-th design's run, which executed `executed` of the
    /// stream's `len` ops and `passed` or not: the record covers the whole
    /// stream only if design 0 ran it all (the reference model alone
    /// records nothing).
    pub(crate) fn end_design(&mut self, k: usize, executed: usize, passed: bool, len: usize) {
        if k == 0 {
            self.complete = self.share && executed == len && passed && self.record.len() == len;
        }
    }
}

/// One design run's view of the reference model: live, recording, or
/// replaying the [`SharedModel`]'s record.
pub(crate) struct Reference<'s> {
    shared: &'s mut SharedModel,
    /// The live model; `None` while the record is replayed.
    model: Option<Model>,
}

impl<'s> Reference<'s> {
    pub(crate) fn new(shared: &'s mut SharedModel) -> Reference<'s> {
        let model = (shared.mode != ShareMode::Replay).then(Model::new);
        Reference { shared, model }
    }

    /// The outcome the reference model gives op `i` of `stream`, asked
    /// before the op runs on `mmu` (whose layout answers the model's
    /// questions: it is the layout the op meets).
    pub(crate) fn expect<R: Rmap>(&mut self, stream: &Stream, i: usize, mmu: &Mmu<R>) -> Outcome {
        let op = &stream.ops[i];
        match &mut self.model {
            Some(m) if self.shared.mode == ShareMode::Record => {
                let layout = RecordingLayout {
                    mmu,
                    log: RefCell::default(),
                };
                let o = m.step(op, Some(&layout));
                self.shared.record.push((o, layout.log.into_inner()));
                o
            }
            Some(m) => m.step(op, Some(&MmuLayout(mmu))),
            None => {
                let (o, queries) = &self.shared.record[i];
                if queries.iter().all(|q| q.holds(mmu)) {
                    return *o;
                }
                // Diverged: rebuild the model up to op i from the record,
                // then go on live.
                let mut m = Model::new();
                for (op, (_, queries)) in stream.ops[..i].iter().zip(&self.shared.record) {
                    m.step(op, Some(&ReplayLayout(queries)));
                }
                let o = m.step(op, Some(&MmuLayout(mmu)));
                self.model = Some(m);
                o
            }
        }
    }
}

/// The outcome `model` gives `op` on the layout of `mmu` (a model of one
/// design run's own: streams with concurrent blocks).
pub(crate) fn expect_on<R: Rmap>(model: &mut Model, op: &rmaplab_ops::Op, mmu: &Mmu<R>) -> Outcome {
    model.step(op, Some(&MmuLayout(mmu)))
}

/// The design's layout before an op, as the reference model asks for it
/// (only `mremap` outcomes depend on VMA boundaries).
struct MmuLayout<'a, R: Rmap>(&'a Mmu<R>);

impl<R: Rmap> Layout for MmuLayout<'_, R> {
    fn vma_bounds(&self, pid: Pid, page: u64) -> Option<(u64, u64)> {
        self.0.vma_bounds(pid, page)
    }

    fn anon_mappings(&self, pid: Pid, page: u64) -> Option<u64> {
        Some(self.0.anon_mappings(pid, page))
    }
}

/// The design's layout, each answer logged for the record.
struct RecordingLayout<'a, R: Rmap> {
    mmu: &'a Mmu<R>,
    log: RefCell<Vec<Query>>,
}

impl<R: Rmap> Layout for RecordingLayout<'_, R> {
    fn vma_bounds(&self, pid: Pid, page: u64) -> Option<(u64, u64)> {
        let a = self.mmu.vma_bounds(pid, page);
        self.log.borrow_mut().push(Query::Bounds(pid, page, a));
        a
    }

    fn anon_mappings(&self, pid: Pid, page: u64) -> Option<u64> {
        let n = self.mmu.anon_mappings(pid, page);
        self.log.borrow_mut().push(Query::Mappings(pid, page, n));
        Some(n)
    }
}

/// Answers layout questions from a record (same questions, same order).
struct ReplayLayout<'a>(&'a [Query]);

impl Layout for ReplayLayout<'_> {
    fn vma_bounds(&self, pid: Pid, page: u64) -> Option<(u64, u64)> {
        self.0.iter().find_map(|q| match *q {
            Query::Bounds(p, g, ans) if (p, g) == (pid, page) => Some(ans),
            _ => None,
        })?
    }

    fn anon_mappings(&self, pid: Pid, page: u64) -> Option<u64> {
        self.0.iter().find_map(|q| match *q {
            Query::Mappings(p, g, n) if (p, g) == (pid, page) => Some(n),
            _ => None,
        })
    }
}
