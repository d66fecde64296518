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
//!
//! Growing never stops the packet path for long. Doubling the array at
//! once (allocating and filling the new one, then placing every entry)
//! took 7 ms at half a million connections and 26 ms at a million, while
//! a live worker's ring holds about 1 ms of its traffic. Instead the new
//! array is allocated zeroed (an empty entry is 0, so the allocator hands
//! over untouched pages, faulted in as they are first written), and the
//! entries move over a few at a time, [`MOVES_PER_INSERT`] positions with
//! each insertion or removal, while lookups and removals look in both
//! arrays (and prefetching loads the entry a lookup starts at in each). What
//! is left is freeing the old array once it is empty: 1.2-1.5 ms at a million
//! connections (the `table_stalls` example).

/// An unused entry. Entries store `slot + 1` (slot numbers never reach
/// `u32::MAX`), so no used entry is 0 and a zeroed array is empty.
const EMPTY: u64 = 0;

/// Positions of the old array moved over with each insertion or removal
/// while the index grows. Growing doubles the array when it is half full,
/// so the next growth comes after at least half as many insertions as the
/// old array has positions: two or more per insertion would finish moving
/// in time (and a growth finishes any move still under way first). More
/// keep the move short, since a lookup of an entry not moved yet probes
/// both arrays: 32 positions (about 16 entries) take a microsecond or two,
/// and a move ends after a sixteenth as many insertions as the table
/// holds.
const MOVES_PER_INSERT: usize = 32;

/// Open-addressing map from a 32-bit hash to a slot number; keys are
/// compared by the caller.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// `hash << 32 | slot + 1`, or `EMPTY`. Length a power of two (or 0).
    entries: Vec<u64>,
    /// The array before the last growth, while its entries move over.
    old: Option<Old>,
    /// Entries in both arrays.
    len: usize,
}

/// An array whose entries are moving to a larger one, in position order
/// from `start` (a position that was empty when moving began, so no probe
/// sequence runs across it). Positions `start .. start + done` (cyclically)
/// are moved and empty; an entry still here whose home lies among them is
/// found by probing from the first position not moved.
#[derive(Debug)]
struct Old {
    entries: Vec<u64>,
    start: usize,
    done: usize,
}

fn pack(hash: u32, slot: u32) -> u64 {
    u64::from(hash) << 32 | (u64::from(slot) + 1)
}

fn hash_of(e: u64) -> u32 {
    (e >> 32) as u32
}

fn slot_of(e: u64) -> u32 {
    (e as u32).wrapping_sub(1)
}

/// Probes `entries` for `hash` from position `from`; the position of the
/// first entry with `hash` whose slot `eq` accepts.
#[inline]
fn probe(
    entries: &[u64],
    hash: u32,
    from: usize,
    eq: &mut impl FnMut(u32) -> bool,
) -> Option<usize> {
    let mask = entries.len().wrapping_sub(1);
    let mut i = from;
    loop {
        let e = entries[i];
        if e == EMPTY {
            return None;
        }
        if hash_of(e) == hash && eq(slot_of(e)) {
            return Some(i);
        }
        i = (i + 1) & mask;
    }
}

/// Places `e` at the first empty position from its home.
fn place(entries: &mut [u64], e: u64) {
    let mask = entries.len() - 1;
    let mut i = hash_of(e) as usize & mask;
    while entries[i] != EMPTY {
        i = (i + 1) & mask;
    }
    entries[i] = e;
}

/// Empties position `hole` of `entries`, moving up every later entry of its
/// cluster whose home does not lie (cyclically) between the hole and it
/// (backward-shift deletion: no tombstones).
fn delete_at(entries: &mut [u64], mut hole: usize) {
    let mask = entries.len() - 1;
    let mut j = hole;
    loop {
        j = (j + 1) & mask;
        let e = entries[j];
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
            entries[hole] = e;
            hole = j;
        }
    }
    entries[hole] = EMPTY;
}

impl Old {
    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// Where a probe for `hash` starts: its home, or the first position
    /// not moved if the home was moved already.
    fn probe_start(&self, hash: u32) -> usize {
        let mask = self.mask();
        let home = hash as usize & mask;
        if (home.wrapping_sub(self.start) & mask) < self.done {
            (self.start + self.done) & mask
        } else {
            home
        }
    }

    fn find(&self, hash: u32, eq: &mut impl FnMut(u32) -> bool) -> Option<usize> {
        probe(&self.entries, hash, self.probe_start(hash), eq)
    }
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
        if let Some(i) = probe(&self.entries, hash, hash as usize & self.mask(), &mut eq) {
            return Some(slot_of(self.entries[i]));
        }
        let old = self.old.as_ref()?;
        old.find(hash, &mut eq).map(|i| slot_of(old.entries[i]))
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

    /// While entries move to a grown array, where a lookup of `hash` goes
    /// on in the old one, to prefetch it too.
    #[inline]
    pub fn old_home(&self, hash: u32) -> Option<&u64> {
        let old = self.old.as_ref()?;
        old.entries.get(old.probe_start(hash))
    }

    /// Adds `slot` under `hash` (the caller knows it is not present).
    pub fn insert(&mut self, hash: u32, slot: u32) {
        debug_assert!(slot != u32::MAX);
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        place(&mut self.entries, pack(hash, slot));
        self.len += 1;
        self.move_some(MOVES_PER_INSERT);
    }

    /// Starts moving to an array twice as large (finishing any move still
    /// under way first).
    fn grow(&mut self) {
        self.move_some(usize::MAX);
        let cap = (self.entries.len() * 2).max(16);
        // Zeroed, so its pages stay untouched until written.
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; cap]);
        if self.len == 0 {
            return;
        }
        // At most half full, so an empty position comes soon.
        let start = old.iter().position(|&e| e == EMPTY).unwrap_or(0);
        self.old = Some(Old {
            entries: old,
            start,
            done: 0,
        });
    }

    /// Moves the entries of up to `n` positions of the old array over;
    /// drops the old array once all are.
    fn move_some(&mut self, n: usize) {
        let Some(old) = &mut self.old else {
            return;
        };
        let mask = old.mask();
        let end = old.entries.len().min(old.done.saturating_add(n));
        while old.done < end {
            let p = (old.start + old.done) & mask;
            let e = std::mem::replace(&mut old.entries[p], EMPTY);
            if e != EMPTY {
                place(&mut self.entries, e);
            }
            old.done += 1;
        }
        if old.done == old.entries.len() {
            self.old = None;
        }
    }

    /// Removes the entry of `slot` filed under `hash`; false if absent.
    pub fn remove(&mut self, hash: u32, slot: u32) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let mut is = |s: u32| s == slot;
        if let Some(i) = probe(&self.entries, hash, hash as usize & self.mask(), &mut is) {
            delete_at(&mut self.entries, i);
        } else if let Some(i) = self.old.as_ref().and_then(|o| o.find(hash, &mut is)) {
            // Shifting within the old array never moves an entry into the
            // moved positions: the hole is past them, and a shifted entry
            // only moves back towards its home.
            if let Some(old) = &mut self.old {
                delete_at(&mut old.entries, i);
            }
        } else {
            return false;
        }
        self.len -= 1;
        self.move_some(MOVES_PER_INSERT);
        true
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether entries are still moving to a grown array.
    #[cfg(test)]
    fn moving(&self) -> bool {
        self.old.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::{Index, MOVES_PER_INSERT};
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

    /// Entries are found and removed while they move to a grown array,
    /// from either array, and moving ends before the next growth.
    #[test]
    fn entries_stay_found_while_moving_to_a_grown_array() {
        let mut ix = Index::default();
        let hash = |slot: u32| slot.wrapping_mul(0x9e37_79b9) >> 3;
        let mut live: Vec<u32> = Vec::new();
        let mut moves_seen = 0;
        for slot in 0..5000u32 {
            let before = ix.entries.len();
            ix.insert(hash(slot), slot);
            live.push(slot);
            if ix.entries.len() != before && before >= 64 {
                // Just grown: every entry found, wherever it sits now.
                assert!(ix.moving(), "entries of {before} positions to move");
                moves_seen += 1;
                for &s in &live {
                    assert_eq!(ix.find(hash(s), |x| x == s), Some(s), "slot {s}");
                }
                // Remove every third (some still in the old array).
                let (gone, kept): (Vec<u32>, Vec<u32>) = live.iter().partition(|&&s| s % 3 == 0);
                for s in gone {
                    assert!(ix.remove(hash(s), s), "slot {s}");
                    assert!(!ix.remove(hash(s), s), "slot {s} twice");
                }
                live = kept;
                for &s in &live {
                    assert_eq!(ix.find(hash(s), |x| x == s), Some(s), "slot {s}");
                }
            }
            assert_eq!(ix.len(), live.len());
        }
        assert!(moves_seen >= 4, "{moves_seen} growths");
        // Moving ends after a few insertions, not at the next growth.
        for slot in 5000..5000 + (ix.entries.len() / 2 / MOVES_PER_INSERT) as u32 + 1 {
            ix.insert(hash(slot), slot);
            live.push(slot);
        }
        assert!(!ix.moving());
        for &s in &live {
            assert_eq!(ix.find(hash(s), |x| x == s), Some(s), "slot {s}");
        }
    }

    /// Moving starts at an empty position: a cluster that wraps around
    /// the end of the old array is found whole while its wrapped part has
    /// moved and its first part not yet.
    #[test]
    fn a_cluster_wrapping_around_the_old_array_stays_found() {
        let mut ix = Index::default();
        // 60 entries whose home is position 250 of a 256- and a 512-entry
        // array: in the 256 one they fill 250..255 and wrap to 0..53,
        // past the positions the growing insertion moves.
        let wrapped = |k: u32| 250 | (k << 9);
        let spread = |k: u32| (60 + 2 * k) | (1 << 20);
        let mut all = Vec::new();
        for k in 0..60 {
            all.push((wrapped(k), k));
        }
        for k in 0..69 {
            all.push((spread(k), 100 + k));
        }
        for (n, &(h, slot)) in all.iter().enumerate() {
            ix.insert(h, slot);
            if n == 127 {
                assert_eq!(ix.entries.len(), 256);
                assert!(!ix.moving());
            }
        }
        // The last insert grew the array to 512 and moved some positions,
        // fewer than the wrapped part of the cluster.
        assert_eq!(ix.entries.len(), 512);
        assert!(ix.moving());
        const { assert!(MOVES_PER_INSERT < 54) };
        for &(h, slot) in &all {
            assert_eq!(ix.find(h, |x| x == slot), Some(slot), "slot {slot}");
        }
    }

    /// A grown array is allocated zeroed, not filled: empty is 0.
    #[test]
    fn an_empty_entry_is_zero_and_no_entry_is() {
        assert_eq!(super::EMPTY, 0);
        assert_ne!(super::pack(0, 0), 0);
        assert_eq!(super::slot_of(super::pack(7, u32::MAX - 1)), u32::MAX - 1);
        assert_eq!(super::hash_of(super::pack(u32::MAX, 3)), u32::MAX);
    }

    proptest! {
        /// Against a map, many entries under few hashes, so the index grows
        /// several times with long clusters, and inserts, finds and
        /// removals land while entries move between arrays.
        #[test]
        fn behaves_like_a_map_while_growing(ops in prop::collection::vec((0u8..3, 0u32..48, 0u32..400), 1..1200)) {
            let mut ix = Index::default();
            let mut model: HashMap<u32, u32> = HashMap::new(); // slot -> hash
            for (n, (op, h, slot)) in ops.into_iter().enumerate() {
                let hash = h.wrapping_mul(0x9e37_79b9) | (h & 1) << 31;
                if op > 0 && !model.contains_key(&slot) {
                    ix.insert(hash, slot);
                    model.insert(slot, hash);
                } else if op == 0 {
                    let had = model.get(&slot) == Some(&hash);
                    prop_assert_eq!(ix.remove(hash, slot), had);
                    if had {
                        model.remove(&slot);
                    }
                }
                prop_assert_eq!(ix.len(), model.len());
                prop_assert_eq!(ix.find(hash, |x| x == slot), model.get(&slot).filter(|&&x| x == hash).map(|_| slot));
                if n % 16 == 0 {
                    for (&s, &hh) in &model {
                        prop_assert_eq!(ix.find(hh, |x| x == s), Some(s));
                    }
                }
            }
            for (&s, &hh) in &model {
                prop_assert_eq!(ix.find(hh, |x| x == s), Some(s));
            }
        }

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
