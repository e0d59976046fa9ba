//! rmaplab's machines: an emulated MMU that behaves like Linux 6.18 for the
//! op language, the [`rmap::Rmap`] trait through which it calls a reverse-map
//! design, and the designs themselves.

pub mod arena;
pub mod designs;
pub mod mmu;
pub mod rmap;
pub mod sched;
pub mod state;
