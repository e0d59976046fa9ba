//! Design 1: the 2004 single-list anon_vma (Linux 2.6.7).
