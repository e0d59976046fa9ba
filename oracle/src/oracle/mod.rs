//! The oracle: what a correct run is. [`model`] is the reference model
//! (plain memory with Linux 6.18 semantics, the expected outcome of every
//! op); [`check`] holds the invariants every design must keep after every
//! op (findability, no dangling mapping, the design's self-check, bound,
//! no leak).

pub mod check;
pub mod model;
