//! [`OpStream`]: an op stream as a typed fuzz target receives it
//! (`fuzz_target!(|s: OpStream| …)`): the stream the one decoder
//! ([`crate::decode`], default settings) makes of the input's bytes, all of
//! them. Its `Debug` is the stream's `.ops` text, so `cargo fuzz fmt
//! TARGET ARTIFACT` prints an artifact as the stream it is.
//!
//! With the `arbitrary` feature it implements `arbitrary::Arbitrary` by
//! handing the bytes to that decoder: the hand-written decoder steers bytes
//! towards rmap shapes and has an exact inverse ([`crate::decode::encode`],
//! for seeding from `corpus/`), which a derived `Arbitrary` would not give
//! (nor a byte consumption that stays the same across `arbitrary` 1.x
//! releases), and the same bytes keep meaning the same stream for every
//! engine, `rmaplab import` and the byte-level custom mutator.

use std::fmt;
use std::ops::Deref;

use crate::Stream;
use crate::decode::{DecodeConfig, decode};

/// The decoder's stream of a fuzz input.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OpStream(pub Stream);

impl OpStream {
    /// What the fuzz targets see for `bytes`: the default decoder's stream.
    pub fn from_bytes(bytes: &[u8]) -> OpStream {
        OpStream(decode(bytes, &DecodeConfig::default()))
    }
}

impl Deref for OpStream {
    type Target = Stream;
    fn deref(&self) -> &Stream {
        &self.0
    }
}

impl From<OpStream> for Stream {
    fn from(s: OpStream) -> Stream {
        s.0
    }
}

impl fmt::Debug for OpStream {
    /// The canonical `.ops` text (`{:?}` and `{:#?}` alike).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for OpStream {
    /// Decodes every byte left (an op stream is read to the end of its
    /// input, as the decoder reads it).
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = u.len();
        Ok(OpStream::from_bytes(u.bytes(n)?))
    }

    fn arbitrary_take_rest(u: arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(OpStream::from_bytes(u.take_rest()))
    }
}
