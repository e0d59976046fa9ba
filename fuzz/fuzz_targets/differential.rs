//! Every canonical design + the reference model + the oracle, on bytes
//! decoded by rmaplab's one decoder.
#![no_main]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| rmaplab::fuzzing::fuzz_one(data));
