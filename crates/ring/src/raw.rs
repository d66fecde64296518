//! The only module of weft-ring with `unsafe` code: slot storage and the index
//! protocol that makes each slot exclusively owned by one side at a time.
//!
//! Invariant (checked by `debug_assert!` before every slot access):
//! `head <= tail <= head + capacity` (in wrapping arithmetic), where `head` is the
//! consumer's index and `tail` the producer's. Slots `head..tail` (mod capacity)
//! hold initialised values owned by the consumer side; the rest are uninitialised
//! and owned by the producer side. A side only touches slots it owns, and hands a
//! slot over with a `Release` store of its index, taken over by the other side's
//! `Acquire` load of that index.
#![allow(unsafe_code)]

use core::cell::Cell;
use core::marker::PhantomData;
use core::mem::MaybeUninit;

use weft_sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use weft_sync::cell::UnsafeCell;
use weft_sync::{Arc, CachePadded};

/// The shared part of a ring: indices, close flags and slots.
pub(crate) struct Ring<T> {
    /// Consumer index: next slot to read. Stored only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Producer index: next slot to write. Stored only by the producer.
    tail: CachePadded<AtomicUsize>,
    /// Read-mostly line: written once each, when a handle is dropped.
    flags: CachePadded<Flags>,
    /// `capacity - 1`; capacity is a power of two.
    mask: usize,
    /// The slots; see the module invariant for who owns which.
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

struct Flags {
    producer_gone: AtomicBool,
    consumer_gone: AtomicBool,
}

// SAFETY: a `Ring<T>` is shared by exactly one `ProducerEnd` and one `ConsumerEnd`
// (the only constructor is `pair`). Values of `T` move from the producer's thread to
// the consumer's (hence `T: Send`), and each slot is accessed by one side at a time
// under the index protocol above; no `&T` is ever shared between threads, so
// `T: Sync` is not required.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as for `Send`: shared access goes only through atomics or through slots
// owned exclusively by one side at a time.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    #[inline(always)]
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Moves `value` into slot `index`.
    ///
    /// # Safety
    /// The caller is the producer and owns the slot: `tail_of_caller == index` or
    /// later, and `index - head < capacity` for a head value it has `Acquire`-loaded.
    #[inline(always)]
    unsafe fn write(&self, index: usize, value: T) {
        let slot = &self.slots[index & self.mask];
        // SAFETY: the caller owns the slot (see `# Safety`), so no other access to it
        // can be concurrent; it is uninitialised, so overwriting leaks nothing.
        slot.with_mut(|p| unsafe { (*p).write(value) });
    }

    /// Moves the value out of slot `index`.
    ///
    /// # Safety
    /// The caller is the consumer and owns the slot: `head <= index < tail` for a
    /// tail value it has `Acquire`-loaded; the slot is initialised and is read once.
    #[inline(always)]
    unsafe fn read(&self, index: usize) -> T {
        let slot = &self.slots[index & self.mask];
        // SAFETY: the slot is initialised and owned by the caller (see `# Safety`);
        // the caller advances `head` past it, so it is never read again.
        slot.with(|p| unsafe { (*p).assume_init_read() })
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // Relaxed: we are the last owner; the `Arc` drop already synchronised with
        // both handles' final accesses.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        debug_assert!(tail.wrapping_sub(head) <= self.capacity());
        let mut i = head;
        while i != tail {
            // SAFETY: `head..tail` are exactly the initialised slots (module
            // invariant), each read once here; no handle remains to touch them.
            drop(unsafe { self.read(i) });
            i = i.wrapping_add(1);
        }
    }
}

/// Builds the shared ring and its two ends. `capacity` must be a power of two.
pub(crate) fn pair<T>(capacity: usize) -> (ProducerEnd<T>, ConsumerEnd<T>) {
    assert!(capacity.is_power_of_two());
    let slots = (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let ring = Arc::new(Ring {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        flags: CachePadded::new(Flags {
            producer_gone: AtomicBool::new(false),
            consumer_gone: AtomicBool::new(false),
        }),
        mask: capacity - 1,
        slots,
    });
    let producer = ProducerEnd {
        ring: ring.clone(),
        tail: 0,
        cached_head: 0,
        _not_sync: PhantomData,
    };
    let consumer = ConsumerEnd {
        ring,
        head: 0,
        cached_tail: 0,
        _not_sync: PhantomData,
    };
    (producer, consumer)
}

/// The producer's side: owns the tail index, caches the consumer's head.
pub(crate) struct ProducerEnd<T> {
    ring: Arc<Ring<T>>,
    /// Authoritative tail (the shared copy equals it after every publish).
    tail: usize,
    /// Last head value seen; never ahead of the real head.
    cached_head: usize,
    /// `Cell` makes the end `!Sync` while keeping it `Send`.
    _not_sync: PhantomData<Cell<()>>,
}

impl<T> ProducerEnd<T> {
    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Free slots, refreshing the cached head only if fewer than `want` are known
    /// free. Steady state (enough cached room) touches no shared line.
    #[inline(always)]
    pub(crate) fn reserve(&mut self, want: usize) -> usize {
        let cap = self.ring.capacity();
        let mut free = cap - self.tail.wrapping_sub(self.cached_head);
        if free < want {
            // Acquire: the consumer's reads of the slots it freed happen-before our
            // overwriting them.
            self.cached_head = self.ring.head.load(Ordering::Acquire);
            free = cap - self.tail.wrapping_sub(self.cached_head);
        }
        debug_assert!(free <= cap);
        free
    }

    /// Publishes `n` slots written since the last publish.
    #[inline(always)]
    fn publish(&mut self, n: usize) {
        self.tail = self.tail.wrapping_add(n);
        // Release: the slot writes happen-before the consumer's Acquire load of tail.
        self.ring.tail.store(self.tail, Ordering::Release);
    }

    /// Pushes one value, or hands it back if the ring is full.
    #[inline]
    pub(crate) fn try_push(&mut self, value: T) -> Result<(), T> {
        if self.reserve(1) == 0 {
            return Err(value);
        }
        debug_assert!(self.tail.wrapping_sub(self.cached_head) < self.capacity());
        // SAFETY: `reserve` saw a free slot at `tail` against an Acquire-loaded head,
        // so the consumer has finished with it and we own it.
        unsafe { self.ring.write(self.tail, value) };
        self.publish(1);
        Ok(())
    }

    /// Moves up to `max` values from `iter` into the ring with one index update.
    /// Returns how many were moved. If `iter` panics, values already written are
    /// leaked (never dropped twice, never exposed).
    pub(crate) fn push_from<I: Iterator<Item = T>>(&mut self, iter: &mut I, max: usize) -> usize {
        let want = max.min(iter.size_hint().0.max(1));
        let free = self.reserve(want).min(max);
        let mut n = 0;
        while n < free {
            let Some(value) = iter.next() else { break };
            debug_assert!(
                self.tail.wrapping_add(n).wrapping_sub(self.cached_head) < self.capacity()
            );
            // SAFETY: slot `tail + n` lies in the `free` slots `reserve` found against
            // an Acquire-loaded head; it is ours until we publish.
            unsafe { self.ring.write(self.tail.wrapping_add(n), value) };
            n += 1;
        }
        if n > 0 {
            self.publish(n);
        }
        n
    }

    /// Items in the ring right now (may be stale by the time it returns).
    pub(crate) fn len(&self) -> usize {
        // Acquire: pairs with the consumer's Release; only a snapshot is needed, but
        // Acquire keeps the value from running ahead of our own tail.
        self.tail
            .wrapping_sub(self.ring.head.load(Ordering::Acquire))
    }

    /// Whether the consumer has been dropped.
    #[inline(always)]
    pub(crate) fn peer_gone(&self) -> bool {
        // Relaxed: no data is received from the consumer through this flag.
        self.ring.flags.consumer_gone.load(Ordering::Relaxed)
    }
}

impl<T> Drop for ProducerEnd<T> {
    fn drop(&mut self) {
        // Release: every tail publish happens-before a consumer that Acquire-loads
        // the flag, so after seeing it one more tail load finds the final tail.
        self.ring.flags.producer_gone.store(true, Ordering::Release);
    }
}

/// The consumer's side: owns the head index, caches the producer's tail.
pub(crate) struct ConsumerEnd<T> {
    ring: Arc<Ring<T>>,
    /// Authoritative head.
    head: usize,
    /// Last tail value seen; never ahead of the real tail.
    cached_tail: usize,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T> ConsumerEnd<T> {
    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Items ready, refreshing the cached tail only if fewer than `want` are known.
    #[inline(always)]
    pub(crate) fn available(&mut self, want: usize) -> usize {
        let mut ready = self.cached_tail.wrapping_sub(self.head);
        if ready < want {
            // Acquire: the producer's slot writes happen-before our reads.
            self.cached_tail = self.ring.tail.load(Ordering::Acquire);
            ready = self.cached_tail.wrapping_sub(self.head);
        }
        debug_assert!(ready <= self.capacity());
        ready
    }

    #[inline(always)]
    fn release(&mut self, n: usize) {
        self.head = self.head.wrapping_add(n);
        // Release: our reads of the freed slots happen-before the producer reuses them.
        self.ring.head.store(self.head, Ordering::Release);
    }

    /// Pops one value if any is ready.
    #[inline]
    pub(crate) fn try_pop(&mut self) -> Option<T> {
        if self.available(1) == 0 {
            return None;
        }
        debug_assert!(self.head != self.cached_tail);
        // SAFETY: `head < tail` for an Acquire-loaded tail: the slot is initialised,
        // ours, and read once because `release` advances past it.
        let value = unsafe { self.ring.read(self.head) };
        self.release(1);
        Some(value)
    }

    /// Moves up to `max` ready values to the end of `out` with one index update.
    pub(crate) fn pop_into(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        let n = self.available(max).min(max);
        out.reserve(n);
        for i in 0..n {
            debug_assert!(i < self.cached_tail.wrapping_sub(self.head));
            // SAFETY: `head + i < tail` for an Acquire-loaded tail; each slot is read
            // once, and `release(n)` below advances past all of them. `reserve` above
            // means `push` cannot panic mid-way (so no slot is read twice).
            out.push(unsafe { self.ring.read(self.head.wrapping_add(i)) });
        }
        if n > 0 {
            self.release(n);
        }
        n
    }

    /// Items in the ring right now.
    pub(crate) fn len(&self) -> usize {
        // Acquire: pairs with the producer's Release publish.
        self.ring
            .tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head)
    }

    /// Whether the producer has been dropped. After this returns `true`, one more
    /// [`available`](Self::available) call sees every item it pushed.
    #[inline]
    pub(crate) fn peer_gone(&self) -> bool {
        // Acquire: pairs with the producer's Release in its drop (see there).
        self.ring.flags.producer_gone.load(Ordering::Acquire)
    }
}

impl<T> Drop for ConsumerEnd<T> {
    fn drop(&mut self) {
        // Relaxed: the producer only needs to learn the fact; remaining items are
        // dropped by whoever drops the ring last, synchronised by the `Arc`.
        self.ring.flags.consumer_gone.store(true, Ordering::Relaxed);
    }
}
