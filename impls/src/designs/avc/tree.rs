//! The per-anon_vma set of AVCs: `anon_vma->head` (the `same_anon_vma`
//! list of 2.6.34 … 3.6) or `anon_vma->rb_root` (the interval tree of 3.7,
//! `bf181b9f9d8d`).
//!
//! The tree is modelled as a map keyed by `(vm_pgoff, insertion sequence)`:
//! the kernel's tree is ordered by the start pgoff "with ties resolved in
//! tree insertion order" (`38a76013ad80`). The list keeps insertion order
//! (tail insertion, 2.6.36 `26ba0cb63cb8`).

use std::collections::BTreeMap;

use crate::arena::Handle;

/// An AVC's position in its anon_vma's set: the interval
/// `[vm_pgoff, vm_pgoff + pages - 1]` as inserted (`avc_start_pgoff`,
/// `avc_last_pgoff`) and the insertion sequence number (the tie-break, and
/// the AVC's identity in the map).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub start: u64,
    pub last: u64,
    pub seq: u64,
}

/// The per-anon_vma AVC set: `head` (list eras) or `rb_root` (3.7+).
#[derive(Clone, Debug)]
pub enum AvcSet {
    /// Insertion order (tail insertion).
    List(Vec<Handle>),
    /// Keyed by `(vm_pgoff, seq)`.
    Tree(BTreeMap<(u64, u64), Handle>),
}

impl AvcSet {
    /// An empty set of the given kind.
    pub fn new(tree: bool) -> AvcSet {
        if tree {
            AvcSet::Tree(BTreeMap::new())
        } else {
            AvcSet::List(Vec::new())
        }
    }

    /// `RB_EMPTY_ROOT` / `list_empty`: what `unlink_anon_vmas` tests.
    pub fn is_empty(&self) -> bool {
        match self {
            AvcSet::List(l) => l.is_empty(),
            AvcSet::Tree(t) => t.is_empty(),
        }
    }

    /// Number of AVCs in the set.
    pub fn len(&self) -> usize {
        match self {
            AvcSet::List(l) => l.len(),
            AvcSet::Tree(t) => t.len(),
        }
    }

    /// Every AVC in walk order.
    pub fn all(&self) -> impl Iterator<Item = Handle> + '_ {
        let (list, tree) = match self {
            AvcSet::List(l) => (l.as_slice(), None),
            AvcSet::Tree(t) => (&[][..], Some(t)),
        };
        list.iter()
            .copied()
            .chain(tree.into_iter().flat_map(|t| t.values().copied()))
    }

    /// Tail insertion (list) or insertion under `(start, seq)` (tree).
    pub fn insert(&mut self, avc: Handle, key: Key) {
        match self {
            AvcSet::List(l) => l.push(avc),
            AvcSet::Tree(t) => {
                t.insert((key.start, key.seq), avc);
            }
        }
    }

    /// `list_add` at the head (the list eras' `anon_vma_prepare` before
    /// 2.6.36, B08). The tree has no head: it orders by `key` as
    /// [`AvcSet::insert`] does.
    pub fn insert_head(&mut self, avc: Handle, key: Key) {
        match self {
            AvcSet::List(l) => l.insert(0, avc),
            AvcSet::Tree(_) => self.insert(avc, key),
        }
    }

    /// `list_del` + `list_add_tail` (`anon_vma_moveto_tail`): `avc` goes to
    /// the tail of the list. No-op in the tree, whose order is by key.
    pub fn move_to_tail(&mut self, avc: Handle) {
        if let AvcSet::List(l) = self
            && let Some(p) = l.iter().position(|&a| a == avc)
        {
            l.remove(p);
            l.push(avc);
        }
    }

    /// Removes `avc` (inserted with `key`); false if it was not there.
    pub fn remove(&mut self, avc: Handle, key: Key) -> bool {
        match self {
            AvcSet::List(l) => match l.iter().position(|&a| a == avc) {
                Some(p) => {
                    l.remove(p);
                    true
                }
                None => false,
            },
            AvcSet::Tree(t) => match t.get(&(key.start, key.seq)) {
                Some(&a) if a == avc => {
                    t.remove(&(key.start, key.seq));
                    true
                }
                _ => false,
            },
        }
    }

    /// Whether `avc` is in the set under `key`.
    pub fn contains(&self, avc: Handle, key: Key) -> bool {
        match self {
            AvcSet::List(l) => l.contains(&avc),
            AvcSet::Tree(t) => t.get(&(key.start, key.seq)) == Some(&avc),
        }
    }
}
