//! rmaplab: the reference model, the oracle, the differential runner and
//! the CLI's library half (the op language is the `rmaplab-ops` crate).
//!
//! Layout (wasmtime `crates/fuzzing` style): the generator is
//! `rmaplab_ops::decode`, the oracles (`check`) live here; the fuzz targets
//! in `fuzz/` are a few lines of glue over [`fuzzing`].

pub mod bench;
pub mod bugs;
pub mod check;
pub mod cli;
pub mod corpus;
pub mod design;
pub mod export_c;
pub mod fuzzing;
pub mod kernel;
pub mod kernel_diff;
pub mod model;
pub mod report;
pub mod runner;
pub mod shrink;
pub mod zoo;
