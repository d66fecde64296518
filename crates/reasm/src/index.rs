//! The connection table's index: flow hash → slot number.
//!
//! Hand-written instead of `hashbrown::HashTable` because of what a profile
//! of 10,000 live flows showed: with a gigabyte of payload streaming through
//! the caches, a lookup missed three times in a row (control bytes, bucket,
//! key), a quarter of the whole run. Prefetching needs the address of the
//! bucket before the lookup, which `HashTable` does not expose. Here an
//! entry is 8 bytes, the 32-bit hash beside the slot number, probed
//! linearly from `hash & mask`: one cache line holds the whole probe
//! sequence of almost every lookup, its address is known from the hash
//! alone, and a matching entry names the slot to prefetch next without
//! touching the key.
//!
//! The load factor stays at or below one half, so probe sequences are short;
//! removal shifts later entries back (no tombstones), so a table that sees
//! millions of connections come and go never degrades. The hash is seeded
//! per table (see `table.rs`), so nobody can aim flows at one cluster.

/// An unused entry (slot numbers never reach `u32::MAX`).
const EMPTY: u64 = u64::MAX;

/// Open-addressing map from a 32-bit hash to a slot number; keys are
/// compared by the caller.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// `hash << 32 | slot`, or `EMPTY`. Length a power of two (or 0).
    entries: Vec<u64>,
    len: usize,
}

fn pack(hash: u32, slot: u32) -> u64 {
    u64::from(hash) << 32 | u64::from(slot)
}

fn hash_of(e: u64) -> u32 {
    (e >> 32) as u32
}

fn slot_of(e: u64) -> u32 {
    e as u32
}

impl Index {
    fn mask(&self) -> usize {
        self.entries.len().wrapping_sub(1)
    }

    /// The slot of the first entry with `hash` for which `eq` holds.
    #[inline]
    pub fn find(&self, hash: u32, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.entries.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut i = hash as usize & mask;
        loop {
            let e = self.entries[i];
            if e == EMPTY {
                return None;
            }
            if hash_of(e) == hash && eq(slot_of(e)) {
                return Some(slot_of(e));
            }
            i = (i + 1) & mask;
        }
    }

    /// The first slot whose entry carries `hash`, without comparing keys
    /// (for prefetching: a false match costs only a useless prefetch).
    #[inline]
    pub fn candidate(&self, hash: u32) -> Option<u32> {
        self.find(hash, |_| true)
    }

    /// The entry where a lookup of `hash` starts, to prefetch it.
    #[inline]
    pub fn home(&self, hash: u32) -> Option<&u64> {
        self.entries.get(hash as usize & self.mask())
    }

    /// Adds `slot` under `hash` (the caller knows it is not present).
    pub fn insert(&mut self, hash: u32, slot: u32) {
        debug_assert!(slot != u32::MAX);
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        self.place(pack(hash, slot));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mask = self.mask();
        let mut i = hash_of(e) as usize & mask;
        while self.entries[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.entries[i] = e;
    }

    fn grow(&mut self) {
        let cap = (self.entries.len() * 2).max(16);
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; cap]);
        for e in old.into_iter().filter(|&e| e != EMPTY) {
            self.place(e);
        }
    }

    /// Removes the entry of `slot` filed under `hash`; false if absent.
    pub fn remove(&mut self, hash: u32, slot: u32) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let mask = self.mask();
        let target = pack(hash, slot);
        let mut hole = hash as usize & mask;
        loop {
            match self.entries[hole] {
                EMPTY => return false,
                e if e == target => break,
                _ => hole = (hole + 1) & mask,
            }
        }
        // Backward-shift deletion: move up every later entry of the cluster
        // whose home does not lie (cyclically) between the hole and it.
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.entries[j];
            if e == EMPTY {
                break;
            }
            let home = hash_of(e) as usize & mask;
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.entries[hole] = e;
                hole = j;
            }
        }
        self.entries[hole] = EMPTY;
        self.len -= 1;
        true
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::Index;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn empty_index_finds_nothing() {
        let mut ix = Index::default();
        assert_eq!(ix.find(7, |_| true), None);
        assert_eq!(ix.candidate(7), None);
        assert!(ix.home(7).is_none());
        assert!(!ix.remove(7, 1));
    }

    #[test]
    fn colliding_hashes_are_told_apart_by_the_caller() {
        let mut ix = Index::default();
        for slot in 0..100 {
            ix.insert(42, slot);
        }
        for slot in 0..100 {
            assert_eq!(ix.find(42, |s| s == slot), Some(slot));
        }
        for slot in (0..100).step_by(3) {
            assert!(ix.remove(42, slot));
        }
        for slot in 0..100 {
            let want = (slot % 3 != 0).then_some(slot);
            assert_eq!(ix.find(42, |s| s == slot), want);
        }
    }

    proptest! {
        /// Against a map, with hashes drawn from a small range so clusters
        /// wrap around the end of the table and deletions shift them.
        #[test]
        fn behaves_like_a_map(ops in prop::collection::vec((any::<bool>(), 0u32..64, 0u32..40), 1..400)) {
            let mut ix = Index::default();
            let mut model: HashMap<u32, u32> = HashMap::new(); // slot -> hash
            for (add, h, slot) in ops {
                let hash = h.wrapping_mul(0x9e37_79b9) | (h & 1) << 31;
                if add && !model.contains_key(&slot) {
                    ix.insert(hash, slot);
                    model.insert(slot, hash);
                } else if !add {
                    let had = model.get(&slot) == Some(&hash);
                    prop_assert_eq!(ix.remove(hash, slot), had);
                    if had {
                        model.remove(&slot);
                    }
                }
                prop_assert_eq!(ix.len(), model.len());
                for (&s, &hh) in &model {
                    prop_assert_eq!(ix.find(hh, |x| x == s), Some(s));
                }
            }
        }
    }
}
