//! The AFL twin of `differential`: the same bytes, the same decoder.

fn main() {
    afl::fuzz!(|data: &[u8]| rmaplab::fuzzing::fuzz_one(data));
}
