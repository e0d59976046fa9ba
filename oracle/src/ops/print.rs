//! ops: print
