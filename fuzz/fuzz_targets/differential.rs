//! Every canonical design (or those of `RMAPLAB_SPECS`) + the reference
//! model + the oracle, on the stream rmaplab's one decoder makes of the
//! input (`OpStream`'s `Arbitrary` is that decoder on every byte). A
//! failure, a panic included, is printed as a corpus file before the
//! target crashes; `cargo fuzz fmt differential ARTIFACT` prints the
//! stream.
#![no_main]

use rmaplab_ops::OpStream;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

libfuzzer_sys::fuzz_target!(|s: OpStream| rmaplab::fuzz::fuzz_stream(&s));

// The mutator works on the raw bytes, which the target then decodes; on an
// input with a concurrent block it sometimes changes only schedule bytes.
libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    rmaplab::fuzz::libfuzzer_mutate(data, size, max_size, seed, libfuzzer_sys::fuzzer_mutate)
});
