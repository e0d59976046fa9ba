//! rmaplab's library: the oracle, running streams on the
//! designs, fuzzing, and the live-kernel side. The `rmaplab` binary
//! (`main.rs`, `cli/`) parses arguments and calls into it; the fuzz targets
//! in `fuzz/` are a few lines of glue over [`fuzz`].
//!
//! Modules by role, each depending only on those above it (and on the
//! `rmaplab-ops` crate, the op language, and the `rmaplab-impls` crate, whose
//! `designs::registry` names and builds the designs):
//!
//! - [`oracle`]: what a correct run is: the reference model and the checks;
//! - [`run`]: one stream on the reference model and each design, compared
//!   and checked after every op; reports; corpus files;
//! - [`fuzz`]: the fuzzing engine, shrinking, the bug zoo, `bench`;
//! - [`kernel`]: the host's Linux kernel as one more machine: the backend,
//!   the kernel-vs-emulator diff and its fuzz loop, and the C exporter;
//! - [`cost`]: named workloads run on each design to compare what they
//!   spend (`rmaplab cost`).

pub mod oracle;

pub mod run;

pub mod fuzz;

pub mod kernel;

pub mod cost;
