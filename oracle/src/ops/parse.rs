//! ops: parse
