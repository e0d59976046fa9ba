//! Running streams: one stream on the reference model and on each design
//! on the emulated MMU ([`runner`]), the expected outcomes from a reference
//! model shared by the designs of one run (`reference`), the reports a
//! person or a tool reads ([`report`], the JSON report's types in
//! [`json`]), the regression files whose
//! headers say what a run must give ([`corpus`]), and a panic during a run
//! caught as a finding ([`mod@panic`]).

pub mod corpus;
pub mod json;
pub mod panic;
mod reference;
pub mod report;
pub mod runner;
