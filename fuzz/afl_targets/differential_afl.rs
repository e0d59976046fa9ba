//! The AFL twin of `differential`: the same bytes, the same decoder; a
//! failure, a panic included, is printed as a corpus file before the crash.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    afl::fuzz!(|data: &[u8]| rmaplab::fuzz::fuzz_one(data));
}
