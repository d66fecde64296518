//! The connection table: a slab of connections, an index (`index.rs`), and an
//! intrusive activity list that makes idle expiry and eviction cost
//! O(expired).
//!
//! The list is kept lazily: a packet only stamps its connection's
//! `last_seen` (no pointer writes into neighbouring slots, which would cost
//! two cache misses per packet). Entries are ordered by `queued_at`, the time
//! they were last put at the head; when the tail turns out to have been
//! active since, it is moved to the head then. Each packet causes at most one
//! such move, so the cost stays amortised O(1), and an idle connection is
//! found at most one idle timeout after it became due.
//!
//! The index is keyed with a randomly seeded hash of the flow key, not with
//! the symmetric Toeplitz hash the dispatcher computes: the symmetric RSS key
//! repeats every 16 bits, so that hash carries at most 16 bits of entropy
//! (fine for picking one of a few workers, ruinous for a table of a million
//! flows: measured 250 k segments/s on 10,000 flows against millions with a
//! seeded hash), and its key is public, so an attacker could aim every flow
//! at one bucket. A per-table random seed makes collisions unpredictable.

use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;
use weft_wire::{FlowKey, Timestamp};

use crate::index::Index;

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Slot<C> {
    hash: u32,
    /// Bumped whenever the slot is reused, so stale timer entries are known.
    gen: u32,
    last_seen: Timestamp,
    /// When the slot was last put at the head of the activity list.
    queued_at: Timestamp,
    prev: u32,
    next: u32,
    item: Option<C>,
}

/// Connections by flow key, in order of last activity.
#[derive(Debug)]
pub(crate) struct Table<C> {
    hasher: DefaultHashBuilder,
    index: Index,
    /// The flow key of each slot, apart from the slots: a lookup compares
    /// keys in this dense array (44 bytes a flow, cache-friendly) and
    /// touches the slot itself only once found.
    keys: Vec<FlowKey>,
    slots: Vec<Slot<C>>,
    free: Vec<u32>,
    /// Most recently active.
    head: u32,
    /// Least recently active.
    tail: u32,
    len: usize,
}

impl<C> Table<C> {
    pub fn new() -> Table<C> {
        Table {
            hasher: DefaultHashBuilder::default(),
            index: Index::default(),
            keys: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes of connection records in use (slots and keys).
    pub fn record_bytes(&self) -> usize {
        self.len * (std::mem::size_of::<Slot<C>>() + std::mem::size_of::<FlowKey>())
    }

    /// The slot of `key`, whose table hash is `hash` (`self.hash(key)`,
    /// maybe computed by a look-ahead).
    #[inline]
    pub fn find_hashed(&self, hash: u32, key: &FlowKey) -> Option<u32> {
        debug_assert_eq!(hash, self.hash(key));
        let keys = &self.keys;
        self.index.find(hash, |i| keys[i as usize] == *key)
    }

    /// The table's (seeded) hash of `key`.
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u32 {
        let h = self.hasher.hash_one(key);
        (h ^ h >> 32) as u32
    }

    /// Starts loading the index entry where a lookup of `hash` begins.
    #[inline]
    pub fn prefetch_index(&self, hash: u32) {
        if let Some(e) = self.index.home(hash) {
            weft_arena::prefetch(e, 8);
        }
    }

    /// Starts loading the key and the connection that `hash` probably
    /// belongs to (the index entry should be cached by now).
    #[inline]
    pub fn prefetch_slot(&self, hash: u32) {
        if let Some(i) = self.index.candidate(hash) {
            weft_arena::prefetch(&self.keys[i as usize], 64);
            // The slot header and the hot start of the connection; a record
            // larger than this has its tail fetched on demand.
            weft_arena::prefetch(&self.slots[i as usize], 1024);
        }
    }

    pub fn get_mut(&mut self, i: u32) -> &mut C {
        self.slots[i as usize].item.as_mut().expect("live slot")
    }

    pub fn get(&self, i: u32) -> &C {
        self.slots[i as usize].item.as_ref().expect("live slot")
    }

    pub fn gen(&self, i: u32) -> u32 {
        self.slots[i as usize].gen
    }

    pub fn last_seen(&self, i: u32) -> Timestamp {
        self.slots[i as usize].last_seen
    }

    pub fn is_live(&self, i: u32, gen: u32) -> bool {
        self.slots
            .get(i as usize)
            .is_some_and(|s| s.gen == gen && s.item.is_some())
    }

    /// Adds `key`, whose table hash is `hash`, as the most recently active.
    pub fn insert_hashed(&mut self, hash: u32, key: FlowKey, now: Timestamp, item: C) -> u32 {
        debug_assert_eq!(hash, self.hash(&key));
        let i = match self.free.pop() {
            Some(i) => {
                self.keys[i as usize] = key;
                let s = &mut self.slots[i as usize];
                s.hash = hash;
                s.gen = s.gen.wrapping_add(1);
                s.item = Some(item);
                i
            }
            None => {
                let i = self.slots.len() as u32;
                self.keys.push(key);
                self.slots.push(Slot {
                    hash,
                    gen: 0,
                    last_seen: now,
                    queued_at: now,
                    prev: NIL,
                    next: NIL,
                    item: Some(item),
                });
                i
            }
        };
        self.index.insert(hash, i);
        self.slots[i as usize].last_seen = now;
        self.link_head(i, now);
        self.len += 1;
        i
    }

    pub fn remove(&mut self, i: u32) -> C {
        let removed = self.index.remove(self.slots[i as usize].hash, i);
        debug_assert!(removed, "a live slot is indexed");
        self.unlink(i);
        self.free.push(i);
        self.len -= 1;
        self.slots[i as usize].item.take().expect("live slot")
    }

    /// Marks `i` as active now.
    #[inline]
    pub fn touch(&mut self, i: u32, now: Timestamp) {
        self.slots[i as usize].last_seen = now;
    }

    /// The connection at the tail of the activity list, and when it was last
    /// active, after moving tails that were active since they were queued to
    /// the head (stamped `now`).
    pub fn oldest(&mut self, now: Timestamp) -> Option<(u32, Timestamp)> {
        loop {
            let t = self.tail;
            if t == NIL {
                return None;
            }
            let s = &self.slots[t as usize];
            if s.last_seen <= s.queued_at || self.head == t {
                return Some((t, s.last_seen));
            }
            self.unlink(t);
            self.link_head(t, now.max(self.slots[t as usize].last_seen));
        }
    }

    fn link_head(&mut self, i: u32, now: Timestamp) {
        let old = self.head;
        {
            let s = &mut self.slots[i as usize];
            s.prev = NIL;
            s.next = old;
            s.queued_at = now;
        }
        if old != NIL {
            self.slots[old as usize].prev = i;
        } else {
            self.tail = i;
        }
        self.head = i;
    }

    fn unlink(&mut self, i: u32) {
        let (p, n) = (self.slots[i as usize].prev, self.slots[i as usize].next);
        if p != NIL {
            self.slots[p as usize].next = n;
        } else if self.head == i {
            self.head = n;
        }
        if n != NIL {
            self.slots[n as usize].prev = p;
        } else if self.tail == i {
            self.tail = p;
        }
        let s = &mut self.slots[i as usize];
        s.prev = NIL;
        s.next = NIL;
    }
}
