//! Every canonical design (or those of `RMAPLAB_SPECS`) + the reference
//! model + the oracle, on the stream rmaplab's one decoder makes of the
//! input (`OpStream`'s `Arbitrary` is that decoder on every byte). A
//! failure, a panic included, is printed as a corpus file before the
//! target crashes (the engine's features go to libFuzzer's extra
//! counters, below); `cargo fuzz fmt differential ARTIFACT` prints the
//! stream.
#![no_main]

use std::sync::atomic::AtomicU8;

use rmaplab_ops::OpStream;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// libFuzzer's extra coverage counters: libFuzzer finds the section by the
/// linker's `__start_`/`__stop_` symbols, clears it before each execution
/// and takes each non-zero byte as a feature after it, as it does its own
/// edge counters. The target sets a byte per feature of the built-in
/// engine (op-kind pairs, fork depths, kernel paths, block steps: see
/// `rmaplab::fuzz::features`), so that libFuzzer keeps the inputs the
/// built-in engine keeps. Aligned and sized in words: libFuzzer clears it
/// a word at a time.
#[repr(C, align(64))]
struct ExtraCounters([AtomicU8; rmaplab::fuzz::features::COUNTERS]);

#[used]
#[unsafe(link_section = "__libfuzzer_extra_counters")]
static EXTRA_COUNTERS: ExtraCounters =
    ExtraCounters([const { AtomicU8::new(0) }; rmaplab::fuzz::features::COUNTERS]);

libfuzzer_sys::fuzz_target!(|s: OpStream| rmaplab::fuzz::fuzz_stream_counters(
    &s,
    &EXTRA_COUNTERS.0
));

// The mutator works on the raw bytes, which the target then decodes; on an
// input with a concurrent block it sometimes changes only schedule bytes.
libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    rmaplab::fuzz::libfuzzer_mutate(data, size, max_size, seed, libfuzzer_sys::fuzzer_mutate)
});
