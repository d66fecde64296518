//! The connection table: a slab of connections, an index (`index.rs`), and a
//! lazily kept heap of activity that finds the least recently active
//! connection exactly, for idle expiry and eviction.
//!
//! A packet only stamps its connection's `last_seen`: no heap or list
//! operation (which would touch memory beyond the connection) on the packet
//! path. The heap holds one entry per live connection's slot, keyed no
//! later than the connection's `last_seen` (the time it was last known
//! active when the entry was pushed, or, for an entry the connection
//! adopted, see below, a time before it was opened). When an entry reaches
//! the top and its connection has been active since (or adopted it), it
//! goes back in with the connection's time; so the first entry at the top
//! whose key is current is the connection idle the longest, exactly, and a
//! connection expires at the first time advance after its last packet
//! plus the timeout (later just after a mass closing, by one time advance
//! per 256 entries of closed connections in the way: see
//! [`Table::idle_before`]). Each re-push follows activity of at least
//! a timeout's length, an adoption, or an eviction that found the
//! connection busy: O(log n) amortised, nothing per packet. One eviction
//! renews at most [`EVICTION_RENEWALS`] entries and then settles for the
//! idlest of the connections it renewed (see [`Table::victim`]): a table
//! of a million connections all active since they were queued made the
//! first eviction renew every entry, a 105 ms stall.
//!
//! A removed connection's entry stays where it is. The next connection in
//! the slot adopts it (its key is no later than that connection's first
//! activity, since time never goes back, so it is renewed for it when it
//! comes up; an eviction does not take such a renewal as evidence about
//! the other connections), and an entry that comes up for an empty slot is
//! dropped: the heap holds at most one entry per slot, whatever the churn.
//! Dropping entries only as they came up let short connections closed
//! behind long idle ones leave their entries buried: the heap grew to twice
//! a steady table and was then rebuilt in one go, a 12 ms stall at a
//! million connections.
//!
//! Nor is the heap rebuilt when the table shrinks: slots are never given
//! back, and an entry (16 bytes) is small beside its slot (296 bytes with
//! the replay tool's stream), so a rebuild would save little memory, for a
//! pause of 12 ms when most of a million connections close at once (the
//! rebuild once ran when the heap held more than twice the live
//! connections). The entries of freed slots go when they come up, or are
//! adopted; an expiry check drops a bounded number of them at a time (see
//! [`Table::idle_before`]).
//!
//! (An intrusive list ordered by the time a connection was queued did this
//! in O(1) but not exactly: a connection found active at the tail was
//! queued again at the current time, so it expired up to two timeouts after
//! its last packet, and eviction could pick a connection that was not the
//! least recently active one.)
//!
//! The index is keyed with a randomly seeded hash of the flow key, not with
//! the symmetric Toeplitz hash the dispatcher computes: the symmetric RSS key
//! repeats every 16 bits, so that hash carries at most 16 bits of entropy
//! (fine for picking one of a few workers, ruinous for a table of a million
//! flows: measured 250 k segments/s on 10,000 flows against millions with a
//! seeded hash), and its key is public, so an attacker could aim every flow
//! at one bucket. A per-table random seed makes collisions unpredictable.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hashbrown::DefaultHashBuilder;
use weft_wire::{FlowKey, Timestamp};

use crate::index::Index;

/// `repr(C)`: the key and the header fill the slot's first 64 bytes, which
/// a lookup compares, and the connection follows. Not `align(64)`: padding
/// slots to a multiple of the line made the stride 512 bytes here, which
/// put every slot's first line into one eighth of the cache sets
/// (reassembler bench: 17.6 → 12.2 M segments/s).
#[derive(Debug)]
#[repr(C)]
struct Slot<C> {
    /// The flow key (48 bytes).
    key: FlowKey,
    hash: u32,
    /// Bumped whenever the slot is reused, so stale timer entries are known.
    gen: u32,
    /// The slot has its entry in the activity heap (for its connection, or
    /// left by the last one, for the next to adopt).
    queued: bool,
    last_seen: Timestamp,
    item: Option<C>,
}

impl<C> Slot<C> {
    /// Whether the slot holds the connection of generation `gen`.
    fn holds(&self, gen: u32) -> bool {
        self.gen == gen && self.item.is_some()
    }
}

/// Stale activity entries one eviction renews at most before it settles
/// for the idlest connection among them (see [`Table::victim`]).
pub(crate) const EVICTION_RENEWALS: usize = 64;

/// What [`Table::settle_top`] found at the top of the activity heap.
enum Top {
    /// The entry of an empty slot (dropped).
    Gone,
    /// An entry the slot's connection adopted, queued again with its time:
    /// says nothing about how idle the connections still queued are.
    Adopted,
    /// Connection `.0` was active since; queued again at `.1`.
    Renewed(u32, Timestamp),
    /// Connection `.0`, last active at `.1`, is idle the longest.
    Current(u32, Timestamp),
}

/// Activity heap entry: (last known activity, slot, generation of the
/// connection it was pushed for), least first. An entry belongs to its slot
/// (the next connection there adopts it); the generation tells an adopted
/// entry from its connection's own.
type Activity = Reverse<(Timestamp, u32, u32)>;

/// Stale entries a lazily kept heap may hold beyond twice its live ones
/// before [`bound_stale`] rebuilds it.
pub(crate) const STALE_SLACK: usize = 16;

/// Bounds a heap whose entries go stale in place (a half's pieces by
/// time, the reassembler's buffered-data index; not this table's activity
/// heap, which holds at most one entry per slot): once it holds more than
/// twice `live` entries plus [`STALE_SLACK`], it is rebuilt with only the
/// entries `keep` accepts. O(entries), so amortised O(1) per push.
pub(crate) fn bound_stale<T: Ord>(
    heap: &mut BinaryHeap<T>,
    live: usize,
    keep: impl FnMut(&T) -> bool,
) {
    if heap.len() > 2 * live + STALE_SLACK {
        let mut entries = std::mem::take(heap).into_vec();
        entries.retain(keep);
        // The memory goes too, not only the entries: a heap that once held
        // many (a half's pieces after an out-of-order burst) would keep
        // its peak allocation, uncounted by any memory limit.
        entries.shrink_to(2 * entries.len() + STALE_SLACK);
        *heap = BinaryHeap::from(entries);
    }
}

/// Connections by flow key, and by last activity.
#[derive(Debug)]
pub(crate) struct Table<C> {
    hasher: DefaultHashBuilder,
    index: Index,
    slots: Vec<Slot<C>>,
    free: Vec<u32>,
    /// See the module docs.
    activity: BinaryHeap<Activity>,
    len: usize,
    /// Tells this table from every other in the process, so a hash made
    /// with another table's seed is never used here.
    id: u64,
}

/// Source of [`Table::id`]s.
static NEXT_TABLE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl<C> Table<C> {
    pub fn new() -> Table<C> {
        Table {
            hasher: DefaultHashBuilder::default(),
            index: Index::default(),
            slots: Vec::new(),
            free: Vec::new(),
            activity: BinaryHeap::new(),
            len: 0,
            id: NEXT_TABLE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// This table's identity (unique in the process).
    #[inline]
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes of connection records in use.
    pub fn record_bytes(&self) -> usize {
        self.len * std::mem::size_of::<Slot<C>>()
    }

    /// The slot of `key`, whose table hash is `hash` (`self.hash(key)`,
    /// maybe computed by a look-ahead).
    #[inline]
    pub fn find_hashed(&self, hash: u32, key: &FlowKey) -> Option<u32> {
        debug_assert_eq!(hash, self.hash(key));
        let slots = &self.slots;
        self.index.find(hash, |i| slots[i as usize].key == *key)
    }

    /// The table's (seeded) hash of `key`.
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u32 {
        key.seeded_hash(&self.hasher)
    }

    /// Starts loading the index entry where a lookup of `hash` begins.
    #[inline]
    pub fn prefetch_index(&self, hash: u32) {
        if let Some(e) = self.index.home(hash) {
            weft_arena::prefetch(e, 8);
        }
        if let Some(e) = self.index.old_home(hash) {
            weft_arena::prefetch(e, 8);
        }
    }

    /// Starts loading the key and the connection that `hash` probably
    /// belongs to (the index entry should be cached by now).
    #[inline]
    pub fn prefetch_slot(&self, hash: u32) {
        if let Some(i) = self.index.candidate(hash) {
            // The slot header and the hot start of the connection; a record
            // larger than this has its tail fetched on demand.
            weft_arena::prefetch(&self.slots[i as usize], 1024);
        }
    }

    /// The item `hash` probably belongs to (see [`prefetch_slot`](Self::prefetch_slot)),
    /// to prefetch what it points to once it is loaded.
    #[inline]
    pub fn candidate_item(&self, hash: u32) -> Option<&C> {
        let i = self.index.candidate(hash)?;
        self.slots[i as usize].item.as_ref()
    }

    pub fn get_mut(&mut self, i: u32) -> &mut C {
        self.slots[i as usize].item.as_mut().expect("live slot")
    }

    pub fn get(&self, i: u32) -> &C {
        self.slots[i as usize].item.as_ref().expect("live slot")
    }

    /// Slot `i`'s item, `None` once it was removed.
    pub fn try_get(&self, i: u32) -> Option<&C> {
        self.slots[i as usize].item.as_ref()
    }

    pub fn gen(&self, i: u32) -> u32 {
        self.slots[i as usize].gen
    }

    pub fn last_seen(&self, i: u32) -> Timestamp {
        self.slots[i as usize].last_seen
    }

    pub fn is_live(&self, i: u32, gen: u32) -> bool {
        self.slots.get(i as usize).is_some_and(|s| s.holds(gen))
    }

    /// Adds `key`, whose table hash is `hash`, as the most recently active.
    /// `now`, like the times given to [`touch`](Self::touch), never goes
    /// back: an adopted entry must not be later than the connection's time.
    pub fn insert_hashed(&mut self, hash: u32, key: FlowKey, now: Timestamp, item: C) -> u32 {
        debug_assert_eq!(hash, self.hash(&key));
        let i = match self.free.pop() {
            Some(i) => {
                let s = &mut self.slots[i as usize];
                s.key = key;
                s.hash = hash;
                s.gen = s.gen.wrapping_add(1);
                s.last_seen = now;
                s.item = Some(item);
                i
            }
            None => {
                let i = self.slots.len() as u32;
                self.slots.push(Slot {
                    key,
                    hash,
                    gen: 0,
                    queued: false,
                    last_seen: now,
                    item: Some(item),
                });
                i
            }
        };
        self.index.insert(hash, i);
        self.len += 1;
        let s = &mut self.slots[i as usize];
        if !s.queued {
            // Otherwise the entry the slot's last connection left is
            // adopted (see the module docs).
            s.queued = true;
            self.activity.push(Reverse((now, i, s.gen)));
        }
        i
    }

    pub fn remove(&mut self, i: u32) -> C {
        let removed = self.index.remove(self.slots[i as usize].hash, i);
        debug_assert!(removed, "a live slot is indexed");
        self.free.push(i);
        self.len -= 1;
        let s = &mut self.slots[i as usize];
        let item = s.item.take().expect("live slot");
        // Its activity entry goes at once if it is on top (a connection
        // just found idle, or evicted), else when it comes up, or is
        // adopted.
        if let Some(&Reverse((_, top, gen))) = self.activity.peek() {
            if top == i && gen == s.gen {
                self.activity.pop();
                s.queued = false;
            }
        }
        item
    }

    /// Marks `i` as active now.
    #[inline]
    pub fn touch(&mut self, i: u32, now: Timestamp) {
        self.slots[i as usize].last_seen = now;
    }

    /// Every connection, least recently active first: for closing them
    /// all at once, which popping [`oldest`](Self::oldest) would do in
    /// O(n log n) heap steps spread over the connections' own work (a
    /// third of a 500,000-connection replay's time went there).
    pub fn by_age(&mut self) -> Vec<u32> {
        let slots = &self.slots;
        let mut live: Vec<(Timestamp, u32)> = self
            .activity
            .iter()
            .filter_map(|&Reverse((_, i, _))| {
                // One entry per slot: each live connection once.
                let s = &slots[i as usize];
                s.item.is_some().then_some((s.last_seen, i))
            })
            .collect();
        live.sort_unstable();
        live.into_iter().map(|(_, i)| i).collect()
    }

    /// The time of the activity heap's first entry (stale or not): no
    /// connection has been idle since before it.
    pub fn first_activity(&self) -> Option<Timestamp> {
        self.activity.peek().map(|&Reverse((at, ..))| at)
    }

    /// The connection idle the longest, if its last activity came before
    /// `cutoff`. While the heap's least key (no later than any connection's
    /// last activity) is at or after the cutoff, nothing can be due and no
    /// connection is looked at: the cheap test an expiry check per packet
    /// needs.
    ///
    /// Finding it may take heap steps over entries that belong to no one
    /// (those of freed slots, dropped, and those a slot's next connection
    /// adopted, renewed for it): each takes one of `steps`, and with none
    /// left the answer is `None`, so the caller goes on at its next check.
    /// Most of a million connections closing at once left a million
    /// entries to drop at the first expiry check past their time: 103 ms
    /// in one packet. Renewing the entry of a connection active since is
    /// not charged (that is each connection's bookkeeping, at most once a
    /// timeout), nor is closing one: its entry goes with it (see
    /// [`Table::remove`]).
    pub fn idle_before(&mut self, cutoff: Timestamp, steps: &mut usize) -> Option<u32> {
        loop {
            let Reverse((at, _, _)) = *self.activity.peek()?;
            if at >= cutoff {
                return None;
            }
            match self.settle_top()? {
                Top::Current(i, _) => return Some(i),
                Top::Renewed(..) => {}
                Top::Gone | Top::Adopted => *steps = steps.checked_sub(1)?,
            }
        }
    }

    /// The connection to evict: the one idle the longest, as
    /// [`Table::oldest`], unless finding it would renew more than
    /// [`EVICTION_RENEWALS`] entries; then the idlest of the connections
    /// renewed so far. One eviction never stalls (renewing a million
    /// entries took 105 ms, and a live capture drops packets meanwhile); the
    /// renewed entries stay renewed, so later evictions go on where it
    /// stopped and are exact again once the stale entries are through.
    pub fn victim(&mut self) -> Option<u32> {
        let mut best: Option<(Timestamp, u32)> = None;
        for _ in 0..EVICTION_RENEWALS {
            match self.settle_top()? {
                // The least key of all (renewed ones included): idle the
                // longest, exactly.
                Top::Current(i, _) => return Some(i),
                Top::Renewed(i, seen) => {
                    if best.map_or(true, |(t, _)| seen < t) {
                        best = Some((seen, i));
                    }
                }
                // A connection younger than the entry it took over: as an
                // entry of a removed one, no evidence about the others.
                Top::Gone | Top::Adopted => {}
            }
        }
        best.map(|(_, i)| i)
            .or_else(|| self.oldest().map(|(i, _)| i))
    }

    /// The connection idle the longest and when it was last active (see
    /// the module docs), or `None` when the table is empty.
    pub fn oldest(&mut self) -> Option<(u32, Timestamp)> {
        loop {
            if let Top::Current(i, at) = self.settle_top()? {
                return Some((i, at));
            }
        }
    }

    /// One step at the top of the activity heap: the entry of an empty
    /// slot is dropped, one whose connection was active since (or that the
    /// slot's last connection left) is pushed back with the connection's
    /// time, a current one is reported and left.
    fn settle_top(&mut self) -> Option<Top> {
        let Reverse((at, i, gen)) = *self.activity.peek()?;
        let s = &mut self.slots[i as usize];
        Some(if s.item.is_none() {
            s.queued = false;
            self.activity.pop();
            Top::Gone
        } else if s.gen != gen {
            let seen = s.last_seen;
            self.activity.pop();
            self.activity.push(Reverse((seen, i, s.gen)));
            Top::Adopted
        } else if s.last_seen > at {
            let seen = s.last_seen;
            self.activity.pop();
            self.activity.push(Reverse((seen, i, gen)));
            Top::Renewed(i, seen)
        } else {
            Top::Current(i, at)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(n: u16) -> FlowKey {
        FlowKey::from_v4([10, 0, 0, 1], n, [10, 0, 0, 2], 80, 0).0
    }

    /// A connection record with a stream of 48 bytes (the replay tool's)
    /// and heap pages: the size that sets how many cache lines each packet
    /// loads. The out-of-order maps live behind one pointer, made when a
    /// piece first waits; inline they made this 376 bytes. (296 before
    /// each half kept where the receiver's acknowledgments reached, 312
    /// before the key held the VXLAN or Geneve network.)
    #[test]
    fn a_connection_record_with_a_48_byte_stream_is_320_bytes() {
        type Record = Slot<crate::data::Conn<[u64; 6], Box<[u8]>>>;
        assert_eq!(std::mem::size_of::<Record>(), 320);
    }

    /// A rebuild gives back the memory of the stale entries too.
    #[test]
    fn a_rebuilt_heap_gives_back_its_memory() {
        let mut heap: BinaryHeap<u32> = (0..10_000).collect();
        bound_stale(&mut heap, 10, |&e| e < 10);
        assert_eq!(heap.len(), 10);
        assert!(
            heap.capacity() <= 2 * 10 + STALE_SLACK,
            "{}",
            heap.capacity()
        );
        // Within the bound nothing is rebuilt.
        let cap = heap.capacity();
        bound_stale(&mut heap, 10, |_| false);
        assert_eq!((heap.len(), heap.capacity()), (10, cap));
    }

    /// Opens connection `n` (its item is `n`) at time `at`; its slot.
    fn open(t: &mut Table<u16>, n: u16, at: u64) -> u32 {
        let k = key(n);
        t.insert_hashed(t.hash(&k), k, Timestamp(at), n)
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Activity of connection n (inserted if absent) at the next time.
        Touch(u16),
        /// Connection n ends.
        Remove(u16),
        /// The least recently active one is evicted.
        Evict,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u16..40).prop_map(Op::Touch),
            2 => (0u16..40).prop_map(Op::Remove),
            1 => Just(Op::Evict),
        ]
    }

    /// Connections that come and go behind one that stays idle: each takes
    /// the slot, and the entry, the last one left, so the heap stays at one
    /// entry per slot.
    #[test]
    fn churn_behind_an_idle_connection_stays_bounded() {
        let mut t: Table<u16> = Table::new();
        open(&mut t, 0, 0);
        for n in 1..5_000u16 {
            let i = open(&mut t, n, u64::from(n));
            t.remove(i);
            assert!(t.activity.len() <= 2 * t.len() + STALE_SLACK);
        }
        assert_eq!(
            t.oldest().map(|(i, at)| (*t.get(i), at)),
            Some((0, Timestamp(0)))
        );
    }

    /// Short connections opened and closed behind long idle ones: each
    /// takes the slot the last one left, with its entry, so the heap never
    /// holds more entries than there are slots, and is never rebuilt (it
    /// grew to twice the table and was rebuilt in one go, 12 ms at a
    /// million connections, when entries were dropped only as they came
    /// up). Idle order stays exact through it: the slot's entry, keyed
    /// before every idle connection, is renewed for the connection that
    /// adopted it.
    #[test]
    fn churn_behind_idle_connections_reuses_their_entries() {
        let mut t: Table<u16> = Table::new();
        let churn_slot = open(&mut t, 3_000, 0);
        for n in 0..1_000u16 {
            open(&mut t, n, 1 + u64::from(n));
        }
        t.remove(churn_slot);
        for c in 0..5_000u64 {
            let i = open(&mut t, 1_000 + (c % 7) as u16, 1_001 + c);
            assert_eq!(i, churn_slot);
            assert_entries(&t);
            assert!(t.activity.len() <= t.slots.len());
            t.remove(i);
        }
        assert_eq!(t.slots.len(), 1_001);
        // Opened last, on an entry keyed 0: found idle last.
        open(&mut t, 2_000, 9_000);
        assert_eq!(
            t.oldest().map(|(i, at)| (*t.get(i), at)),
            Some((0, Timestamp(1)))
        );
        let mut order = Vec::new();
        while let Some(i) = t.victim() {
            order.push(t.remove(i));
        }
        assert_eq!(order.len(), 1_001);
        assert_eq!(order.last(), Some(&2_000));
        assert!(order[..1_000].windows(2).all(|w| w[0] < w[1]));
    }

    /// An adopted entry renewed by an eviction says nothing about how idle
    /// the other connections are: busy connections keep the keys of their
    /// opening, short ones take their slots and entries (the table does
    /// not shrink enough for a rebuild), and the eviction still finds the
    /// connection idle the longest.
    #[test]
    fn an_eviction_is_not_misled_by_adopted_entries() {
        let mut t: Table<u16> = Table::new();
        let busy: Vec<u32> = (0..100u16).map(|n| open(&mut t, n, u64::from(n))).collect();
        open(&mut t, 500, 100);
        for n in 0..300u16 {
            open(&mut t, 600 + n, 110 + u64::from(n));
        }
        for &i in &busy {
            t.touch(i, Timestamp(450));
        }
        for &i in &busy {
            t.remove(i);
        }
        for n in 0..100u16 {
            let i = open(&mut t, 1_000 + n, 502 + u64::from(n));
            assert!(busy.contains(&i));
        }
        assert_eq!(t.activity.len(), t.len(), "no rebuild: every entry is live");
        let i = t.victim().unwrap();
        assert_eq!(*t.get(i), 500, "the connection idle since t=100");
        assert_entries(&t);
    }

    /// A table that shrinks keeps the entries of its freed slots (one per
    /// slot, no rebuild) unless one is on top when its connection goes:
    /// they go as they come up, or connections that take the slots again
    /// adopt them, and the oldest and the order by age are those of the
    /// live connections.
    #[test]
    fn a_shrunk_table_keeps_one_entry_per_slot_until_they_come_up() {
        let mut t: Table<u16> = Table::new();
        let slots: Vec<u32> = (0..40u16).map(|n| open(&mut t, n, u64::from(n))).collect();
        // The 30 newest: none is on top (connection 0 is).
        for &i in &slots[10..] {
            t.remove(i);
            assert_entries(&t);
        }
        assert_eq!(t.activity.len(), 40, "no rebuild");
        // The one on top goes with its connection.
        t.remove(slots[0]);
        assert_entries(&t);
        assert_eq!(t.activity.len(), 39);
        for n in 100..110u16 {
            open(&mut t, n, u64::from(n));
            assert_entries(&t);
        }
        assert_eq!(
            t.oldest().map(|(i, at)| (*t.get(i), at)),
            Some((1, Timestamp(1)))
        );
        let aged: Vec<u16> = t.by_age().into_iter().map(|i| *t.get(i)).collect();
        let want: Vec<u16> = (1..10).chain(100..110).collect();
        assert_eq!(aged, want);
    }

    /// An expiry check takes at most its budget of steps over entries of
    /// connections gone: the entries of many closed connections on top
    /// are dropped a budget at a time, and the idle connection behind them
    /// is found once they are through.
    #[test]
    fn an_expiry_check_drops_stale_entries_a_budget_at_a_time() {
        let mut t: Table<u16> = Table::new();
        let slots: Vec<u32> = (0..101u16).map(|n| open(&mut t, n, u64::from(n))).collect();
        let idle = open(&mut t, 1000, 500);
        // Newest first, so only the last one's entry is on top when it
        // goes: 100 stale entries stay.
        for &i in slots.iter().rev() {
            t.remove(i);
        }
        assert_eq!(t.activity.len(), 101);
        let mut checks = 0;
        let found = loop {
            let mut steps = 30;
            checks += 1;
            if let Some(i) = t.idle_before(Timestamp(1000), &mut steps) {
                break i;
            }
            assert_eq!(steps, 0, "a check ends early only with its budget spent");
            assert!(checks < 10, "stale entries are dropped as checks go on");
        };
        assert_eq!((found, checks), (idle, 4), "100 stale entries, 30 a check");
        // Nothing is due before the idle connection's time, at no cost.
        let mut steps = 0;
        assert_eq!(t.idle_before(Timestamp(500), &mut steps), None);
        assert_entries(&t);
    }

    /// At most one heap entry per slot, exactly for the slots marked
    /// queued; one for every live connection (its own or one it adopted),
    /// keyed no later than its last activity.
    fn assert_entries(t: &Table<u16>) {
        let mut slots: Vec<u32> = t.activity.iter().map(|Reverse((_, i, _))| *i).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), t.activity.len(), "two entries for a slot");
        for (i, s) in t.slots.iter().enumerate() {
            let queued = slots.binary_search(&(i as u32)).is_ok();
            assert_eq!(s.queued, queued, "slot {i}'s flag");
            assert!(s.item.is_none() || queued, "live slot {i} without an entry");
        }
        for Reverse((at, i, _)) in t.activity.iter() {
            let s = &t.slots[*i as usize];
            assert!(s.item.is_none() || *at <= s.last_seen);
        }
    }

    /// A million-connection table whose connections were all active since
    /// they were queued made one eviction renew every entry (105 ms): an
    /// eviction renews at most `EVICTION_RENEWALS`, and picks the idlest
    /// of those.
    #[test]
    fn an_eviction_renews_a_bounded_number_of_entries() {
        let mut t: Table<u16> = Table::new();
        let n = 1_000u16;
        for c in 0..n {
            open(&mut t, c, u64::from(c));
        }
        // All active again, the newest first: the idlest is now c = n - 1.
        for c in (0..n).rev() {
            let k = key(c);
            let i = t.find_hashed(t.hash(&k), &k).unwrap();
            t.touch(i, Timestamp(u64::from(n) + u64::from(n - 1 - c)));
        }
        let renewed = |t: &Table<u16>| {
            let cut = Timestamp(u64::from(n));
            t.activity
                .iter()
                .filter(|Reverse((at, _, _))| *at >= cut)
                .count()
        };
        let i = t.victim().unwrap();
        assert_eq!(renewed(&t), EVICTION_RENEWALS);
        // The idlest of the renewed ones: connections 0..64 were renewed,
        // of which 63 was active first.
        assert_eq!(*t.get(i), EVICTION_RENEWALS as u16 - 1);
        t.remove(i);
        // Later evictions go on renewing; the one that renews the idlest
        // of all evicts it, and from then on eviction is exact again.
        let mut last = 0;
        while renewed(&t) < t.len() {
            let i = t.victim().unwrap();
            last = *t.get(i);
            t.remove(i);
        }
        assert_eq!(last, n - 1, "the idlest, once its entry was renewed");
        let exact = t.oldest().map(|(i, _)| *t.get(i));
        assert_eq!(t.victim().map(|i| *t.get(i)), exact);
        assert_eq!(exact, Some(n - 2));
    }

    proptest! {
        /// Against a plain map of last activity: `oldest` is always the
        /// connection whose last activity is the earliest (ties: any of
        /// them), with that time; and the heap stays bounded.
        #[test]
        fn oldest_is_exactly_the_least_recently_active(ops in prop::collection::vec(op(), 1..1000)) {
            let mut t: Table<u16> = Table::new();
            let mut model: std::collections::HashMap<u16, u64> = Default::default();
            for (n, op) in ops.into_iter().enumerate() {
                // Two operations per time step: ties happen.
                let now = n as u64 / 2;
                match op {
                    Op::Touch(n) => {
                        let k = key(n);
                        let h = t.hash(&k);
                        match t.find_hashed(h, &k) {
                            Some(i) => t.touch(i, Timestamp(now)),
                            None => {
                                t.insert_hashed(h, k, Timestamp(now), n);
                            }
                        }
                        model.insert(n, now);
                    }
                    Op::Remove(n) => {
                        let k = key(n);
                        if let Some(i) = t.find_hashed(t.hash(&k), &k) {
                            prop_assert_eq!(t.remove(i), n);
                            model.remove(&n);
                        }
                    }
                    Op::Evict => {
                        // Fewer connections than the renewal budget: the
                        // victim is exactly the least recently active.
                        let least = model.values().min().copied();
                        if let Some(i) = t.victim() {
                            let n = t.remove(i);
                            prop_assert_eq!(model.remove(&n), least);
                        }
                    }
                }
                let least = model.values().min().copied();
                match t.oldest() {
                    None => prop_assert!(model.is_empty()),
                    Some((i, at)) => {
                        prop_assert_eq!(Some(at.0), least);
                        prop_assert_eq!(model[t.get(i)], at.0);
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                prop_assert!(t.activity.len() <= t.slots.len());
                assert_entries(&t);
                // Every connection once, in order of last activity.
                let aged: Vec<u64> = t.by_age().into_iter().map(|i| model[t.get(i)]).collect();
                prop_assert_eq!(aged.len(), model.len());
                prop_assert!(aged.windows(2).all(|w| w[0] <= w[1]), "{:?}", aged);
                let mut ids: Vec<u16> = t.by_age().into_iter().map(|i| *t.get(i)).collect();
                ids.sort_unstable();
                ids.dedup();
                prop_assert_eq!(ids.len(), model.len());
            }
        }
    }
}
