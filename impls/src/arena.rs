//! Arenas with generational handles.
//!
//! Every object a design or the MMU frees stays addressable: its slot keeps a
//! generation number, so following a handle to a freed object is detected
//! (and reported as the `dangling` invariant) instead of reaching a recycled
//! object or panicking. Slots are recycled LIFO, as the kernel's per-CPU free
//! lists recycle frames (docs/linux-6.18.md §9), which makes use-after-free show
//! up as a generation mismatch rather than silently aliasing.

use std::fmt;

/// A generational handle into an [`Arena`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle {
    idx: u32,
    generation: u32,
}

impl Handle {
    /// Slot index (stable for the object's lifetime; reused after free).
    pub fn index(self) -> usize {
        self.idx as usize
    }
    pub fn generation(self) -> u32 {
        self.generation
    }
    /// A compact, deterministic name for traces: `#idx.gen`.
    pub fn raw(self) -> u64 {
        ((self.generation as u64) << 32) | self.idx as u64
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.idx, self.generation)
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// An arena of `T` addressed by [`Handle`].
pub struct Arena<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    live: usize,
    /// Mutating calls so far (see [`Arena::epoch`]).
    epoch: u64,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            epoch: 0,
        }
    }
}

impl<T: Clone> Clone for Arena<T> {
    fn clone(&self) -> Self {
        Arena {
            slots: self
                .slots
                .iter()
                .map(|s| Slot {
                    generation: s.generation,
                    value: s.value.clone(),
                })
                .collect(),
            free: self.free.clone(),
            live: self.live,
            epoch: self.epoch,
        }
    }
}

impl<T> Arena<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bumped by every call that can change the arena (`insert`, `remove`,
    /// `get_mut`): an unchanged epoch means unchanged contents.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Stores `value` and returns its handle.
    pub fn insert(&mut self, value: T) -> Handle {
        self.epoch += 1;
        self.live += 1;
        if let Some(idx) = self.free.pop() {
            let slot = &mut self.slots[idx as usize];
            slot.value = Some(value);
            Handle {
                idx,
                generation: slot.generation,
            }
        } else {
            let idx = self.slots.len() as u32;
            self.slots.push(Slot {
                generation: 0,
                value: Some(value),
            });
            Handle { idx, generation: 0 }
        }
    }

    /// Frees the object; `None` if the handle was already dangling.
    pub fn remove(&mut self, h: Handle) -> Option<T> {
        self.epoch += 1;
        let slot = self.slots.get_mut(h.index())?;
        if slot.generation != h.generation || slot.value.is_none() {
            return None;
        }
        slot.generation = slot.generation.wrapping_add(1);
        self.live -= 1;
        self.free.push(h.idx);
        slot.value.take()
    }

    pub fn contains(&self, h: Handle) -> bool {
        self.get(h).is_some()
    }

    pub fn get(&self, h: Handle) -> Option<&T> {
        let slot = self.slots.get(h.index())?;
        if slot.generation != h.generation {
            return None;
        }
        slot.value.as_ref()
    }

    pub fn get_mut(&mut self, h: Handle) -> Option<&mut T> {
        self.epoch += 1;
        let slot = self.slots.get_mut(h.index())?;
        if slot.generation != h.generation {
            return None;
        }
        slot.value.as_mut()
    }

    /// The live object in `h`'s slot, whatever its generation: what a
    /// reader that kept only the address sees once the slot was freed and
    /// reused (type-stable memory, `SLAB_TYPESAFE_BY_RCU`). `None` while
    /// the slot is free.
    pub fn occupant(&self, h: Handle) -> Option<Handle> {
        let slot = self.slots.get(h.index())?;
        slot.value.as_ref().map(|_| Handle {
            idx: h.idx,
            generation: slot.generation,
        })
    }

    /// The slot the next [`Arena::insert`] fills (LIFO reuse, else a new
    /// one).
    pub fn next_index(&self) -> usize {
        self.free.last().map_or(self.slots.len(), |&i| i as usize)
    }

    /// Number of live objects.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Number of slots, live or free: every handle's index is below it
    /// (sizes a [`SecondaryMap`] up front).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The live object in slot `index`, if any, with its handle.
    pub fn get_at(&self, index: usize) -> Option<(Handle, &T)> {
        let s = self.slots.get(index)?;
        let h = Handle {
            idx: index as u32,
            generation: s.generation,
        };
        s.value.as_ref().map(|v| (h, v))
    }

    /// Live objects in slot order (deterministic).
    pub fn iter(&self) -> impl Iterator<Item = (Handle, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.value.as_ref().map(|v| {
                (
                    Handle {
                        idx: i as u32,
                        generation: s.generation,
                    },
                    v,
                )
            })
        })
    }
}

/// Per-handle side data for objects owned by another arena (a design's state
/// for each MMU VMA, say). A stale handle never reads a newer object's entry.
pub struct SecondaryMap<T> {
    slots: Vec<Option<(u32, T)>>,
    epoch: u64,
}

impl<T> Default for SecondaryMap<T> {
    fn default() -> Self {
        SecondaryMap {
            slots: Vec::new(),
            epoch: 0,
        }
    }
}

impl<T: Clone> Clone for SecondaryMap<T> {
    fn clone(&self) -> Self {
        SecondaryMap {
            slots: self.slots.clone(),
            epoch: self.epoch,
        }
    }
}

impl<T> SecondaryMap<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with room for handles of index below `slots`.
    pub fn with_slots(slots: usize) -> Self {
        let mut v = Vec::with_capacity(slots);
        v.resize_with(slots, || None);
        SecondaryMap { slots: v, epoch: 0 }
    }

    /// As [`Arena::epoch`]: bumped by `insert`, `remove` and `get_mut`.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn insert(&mut self, h: Handle, value: T) -> Option<T> {
        self.epoch += 1;
        if self.slots.len() <= h.index() {
            self.slots.resize_with(h.index() + 1, || None);
        }
        let old = self.slots[h.index()].take();
        self.slots[h.index()] = Some((h.generation, value));
        match old {
            Some((g, v)) if g == h.generation => Some(v),
            _ => None,
        }
    }

    pub fn get(&self, h: Handle) -> Option<&T> {
        match self.slots.get(h.index()) {
            Some(Some((g, v))) if *g == h.generation => Some(v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, h: Handle) -> Option<&mut T> {
        self.epoch += 1;
        match self.slots.get_mut(h.index()) {
            Some(Some((g, v))) if *g == h.generation => Some(v),
            _ => None,
        }
    }

    pub fn remove(&mut self, h: Handle) -> Option<T> {
        self.epoch += 1;
        let slot = self.slots.get_mut(h.index())?;
        match slot {
            Some((g, _)) if *g == h.generation => slot.take().map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Handle, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.as_ref().map(|(g, v)| {
                (
                    Handle {
                        idx: i as u32,
                        generation: *g,
                    },
                    v,
                )
            })
        })
    }

    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_handles_dangle_even_when_the_slot_is_reused() {
        let mut a = Arena::new();
        let h1 = a.insert(1);
        assert_eq!(a.remove(h1), Some(1));
        let h2 = a.insert(2);
        assert_eq!(h1.index(), h2.index());
        assert!(a.get(h1).is_none());
        assert_eq!(a.get(h2), Some(&2));
        assert_eq!(a.remove(h1), None);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn occupant_reads_a_reused_slot_whatever_the_generation() {
        let mut a = Arena::new();
        let h1 = a.insert(1);
        let h0 = a.insert(0);
        assert_eq!(a.next_index(), 2);
        a.remove(h0);
        a.remove(h1);
        // LIFO: the last slot freed is the next filled.
        assert_eq!(a.next_index(), h1.index());
        assert_eq!(a.occupant(h1), None);
        let h2 = a.insert(2);
        assert_eq!(a.occupant(h1), Some(h2));
        assert_ne!(h1, h2);
        assert_eq!(a.next_index(), h0.index());
    }

    #[test]
    fn secondary_map_ignores_stale_handles() {
        let mut a = Arena::new();
        let mut m = SecondaryMap::new();
        let h1 = a.insert(());
        m.insert(h1, "one");
        a.remove(h1);
        let h2 = a.insert(());
        assert_eq!(m.get(h2), None);
        m.insert(h2, "two");
        assert_eq!(m.get(h1), None);
        assert_eq!(m.get(h2), Some(&"two"));
    }
}
