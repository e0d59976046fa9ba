//! The `.ops` parser never panics, and what it accepts round-trips.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rmaplab::fuzz::parse_one(data));
