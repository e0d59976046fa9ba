//! Fuzzing: raw bytes through the one decoder into every configured design
//! with the oracle after every op ([`engine`]: the glue of the libFuzzer and
//! AFL targets and the built-in engine), shrinking failures ([`shrink`]),
//! hunting re-injected bugs for the bug zoo ([`zoo`]) and the throughput
//! figures of `rmaplab bench` ([`mod@bench`]).

pub mod bench;
pub mod engine;
pub mod features;
pub mod merge_race;
pub mod mutate;
pub mod shrink;
pub mod zoo;

pub use engine::{fuzz_one, fuzz_stream, fuzz_stream_counters, libfuzzer_mutate};
