//! rmaplab: the op language, the reference model, the oracle, the
//! differential runner and the CLI's library half.
//!
//! Layout (wasmtime `crates/fuzzing` style): generators (`ops::decode`) and
//! oracles (`check`) live here; the fuzz targets in `fuzz/` are a few lines
//! of glue over [`fuzzing`].

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
pub mod ops;
pub mod report;
pub mod runner;
pub mod shrink;
pub mod zoo;
