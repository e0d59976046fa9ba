//! rmaplab: the op language, the reference model, the oracle, the
//! differential runner and the CLI's library half.

pub mod kernel;
pub mod model;
pub mod ops;
