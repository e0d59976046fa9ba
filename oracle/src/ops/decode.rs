//! ops: decode
