//! The reverse-map designs behind [`crate::rmap::Rmap`].

pub mod chain_2010;
pub mod single_list_2004;
