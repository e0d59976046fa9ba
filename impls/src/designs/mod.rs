//! The reverse-map designs behind [`crate::rmap::Rmap`].

pub mod single_list_2004;
