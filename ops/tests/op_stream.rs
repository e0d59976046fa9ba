//! `OpStream`, the typed fuzz targets' input: `Arbitrary` is the one
//! decoder on every byte (so a typed target sees exactly the stream
//! `decode` gives for the raw bytes the custom mutator works on, and that
//! `rmaplab import` gives for the crash artifact), and `Debug` is the
//! `.ops` text (`cargo fuzz fmt`).

use arbitrary::{Arbitrary, Unstructured};
use rmaplab_ops::decode::{DecodeConfig, decode, encode};
use rmaplab_ops::parse::parse;
use rmaplab_ops::print::print;
use rmaplab_ops::{OpStream, Stream};

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn bytes(&mut self) -> Vec<u8> {
        let len = (self.next() % 600) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn arbitrary_is_the_decoder_on_every_byte() {
    let cfg = DecodeConfig::default();
    let mut rng = Rng(5);
    let mut ops = 0;
    for _ in 0..2_000 {
        let bytes = rng.bytes();
        let want = decode(&bytes, &cfg);
        ops += want.ops.len();
        // As libfuzzer-sys calls it for `fuzz_target!(|s: OpStream| …)`.
        let got = OpStream::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
        assert_eq!(got.0, want);
        // As afl.rs and nested types call it: every byte is consumed.
        let mut u = Unstructured::new(&bytes);
        assert_eq!(OpStream::arbitrary(&mut u).unwrap().0, want);
        assert!(u.is_empty());
        assert_eq!(OpStream::from_bytes(&bytes), got);
    }
    assert!(ops > 10_000, "the inputs decode to real streams: {ops} ops");
    // Empty input: the empty stream (no early "not enough bytes" exit).
    assert_eq!(OpStream::size_hint(0).0, 0);
    assert_eq!(
        OpStream::arbitrary_take_rest(Unstructured::new(&[]))
            .unwrap()
            .0,
        Stream::from_ops(Vec::new())
    );
}

#[test]
fn debug_is_the_ops_text() {
    let text = "version 1\nmmap p0 0 8 rw anon\nwrite p0 1 0x70616e696321\nfork p0\n\
                mremap p1 0 2 2 to 20 dontunmap\nexit p1\n";
    let stream = parse(text).unwrap();
    let s = OpStream::from_bytes(&encode(&stream, &DecodeConfig::default()).unwrap());
    assert_eq!(s.ops, stream.ops);
    assert_eq!(format!("{s:?}"), text);
    // libfuzzer-sys writes `{:#?}` for `cargo fuzz fmt`.
    assert_eq!(format!("{s:#?}"), text);
    assert_eq!(format!("{s:#?}"), print(&s));
}
