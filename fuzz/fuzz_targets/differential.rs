//! Every canonical design + the reference model + the oracle, on bytes
//! decoded by rmaplab's one decoder.
#![no_main]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| rmaplab::fuzz::fuzz_one(data));

libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    rmaplab::fuzz::libfuzzer_mutate(data, size, max_size, seed, libfuzzer_sys::fuzzer_mutate)
});
