//! The reference model: plain per-process memory with Linux 6.18 semantics.
