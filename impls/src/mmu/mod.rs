//! The emulated MMU (Linux 6.18 semantics), design-agnostic.
