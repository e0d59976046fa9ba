//! The AFL twin of `differential`: the same bytes, the same decoder.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    afl::fuzz!(|data: &[u8]| rmaplab::fuzz::fuzz_one(data));
}
