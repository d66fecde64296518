//! weft-ring: a bounded, lock-free single-producer single-consumer ring.
//!
//! The dispatcher hands each worker its packet descriptors through one of these.
//! [`channel`] returns a [`Producer`] and a [`Consumer`]; each is `Send` (when
//! `T: Send`) and neither is `Sync`, so exactly one thread pushes and one pops.
//!
//! # Algorithm
//!
//! A power-of-two array of slots and two free-running `usize` indices: `head`
//! (next slot to read, stored only by the consumer) and `tail` (next slot to
//! write, stored only by the producer); slot `i` is `slots[i & mask]`. Each index
//! sits on its own cache line ([`weft_sync::CachePadded`]). Each side keeps a
//! private *cached copy* of the other's index and reloads it only when the cached
//! value says the ring is full (producer) or empty (consumer), so in steady state a
//! push or pop touches no cache line the other core writes — just its own index
//! line and the slot. Batch operations move many items with one index update.
//!
//! # Memory-ordering protocol
//!
//! * Producer: write slot(s), then `tail.store(Release)`. Consumer:
//!   `tail.load(Acquire)`, then read the slot(s). So a value's bytes happen-before
//!   its pop.
//! * Consumer: read slot(s), then `head.store(Release)`. Producer:
//!   `head.load(Acquire)` before overwriting. So a slot is never overwritten while
//!   the consumer may still be reading it.
//! * There is no read-modify-write anywhere on the data path: only loads and stores.
//! * Producer drop: `producer_gone.store(Release)` after its last tail store. A
//!   consumer that finds the ring empty loads the flag (`Acquire`); if set, it
//!   reloads `tail` once more, so it drains every item before reporting
//!   [`PopError::Closed`].
//! * Consumer drop: `consumer_gone.store(Relaxed)`; the producer checks it
//!   (`Relaxed`) on each push and hands the item back in [`PushError::Closed`].
//! * The ring's storage is shared through an `Arc`; whoever drops the last handle
//!   drops the items still in it, each exactly once.
//!
//! All `unsafe` code lives in the private `raw` module. The protocol is model
//! checked with loom (`tests/loom.rs`, run with `--cfg weft_loom`).
//!
//! # Waiting
//!
//! [`Producer::push`] and [`Consumer::pop`] never block. The `_blocking` variants
//! wait with [`weft_sync::backoff::Backoff`]: spin, then yield, then
//! `park_timeout` with a short growing timeout. No wake-up handshake is used, so a
//! flowing ring pays nothing for the possibility of a sleeping peer.
//!
//! ```
//! let (mut tx, mut rx) = weft_ring::channel::<u32>(3); // rounded up to 4
//! assert_eq!(tx.capacity(), 4);
//! std::thread::spawn(move || {
//!     for i in 0..100 {
//!         tx.push_blocking(i).unwrap();
//!     }
//! });
//! let mut sum = 0;
//! while let Ok(v) = rx.pop_blocking() {
//!     sum += v;
//! }
//! assert_eq!(sum, 4950);
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod raw;

pub use error::{PopError, PushError};
use weft_sync::backoff::Backoff;

/// Smallest capacity handed out (a ring of one slot is legal but pointless).
const MIN_CAPACITY: usize = 1;

/// Creates a ring holding at least `capacity` items: the capacity is rounded up to
/// the next power of two (and to at least 1).
///
/// # Panics
/// If the rounded capacity overflows `usize`.
///
/// ```
/// let (tx, rx) = weft_ring::channel::<u8>(1000);
/// assert_eq!(tx.capacity(), 1024);
/// assert_eq!(rx.capacity(), 1024);
/// ```
pub fn channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cap = capacity
        .max(MIN_CAPACITY)
        .checked_next_power_of_two()
        .expect("weft-ring: capacity overflows usize");
    let (p, c) = raw::pair(cap);
    (Producer { end: p }, Consumer { end: c })
}

/// The sending half of a ring. `Send` when `T: Send`, not `Sync`: the producer
/// index is owned by one thread at a time.
pub struct Producer<T> {
    end: raw::ProducerEnd<T>,
}

/// The receiving half of a ring. `Send` when `T: Send`, not `Sync`.
pub struct Consumer<T> {
    end: raw::ConsumerEnd<T>,
}

impl<T> core::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl<T> core::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl<T> Producer<T> {
    /// Pushes `value` without blocking.
    ///
    /// Returns [`PushError::Full`] if there is no free slot and
    /// [`PushError::Closed`] if the consumer is gone; both hand `value` back.
    ///
    /// ```
    /// use weft_ring::PushError;
    /// let (mut tx, rx) = weft_ring::channel(1);
    /// tx.push(1).unwrap();
    /// assert_eq!(tx.push(2), Err(PushError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.push(3), Err(PushError::Closed(3)));
    /// ```
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        if self.end.peer_gone() {
            return Err(PushError::Closed(value));
        }
        self.end.try_push(value).map_err(PushError::Full)
    }

    /// Pushes `value`, waiting (spin, yield, timed park) while the ring is full.
    /// Fails only with [`PushError::Closed`], handing `value` back.
    ///
    /// ```
    /// let (mut tx, mut rx) = weft_ring::channel(2);
    /// tx.push_blocking("a").unwrap();
    /// assert_eq!(rx.pop(), Ok("a"));
    /// ```
    pub fn push_blocking(&mut self, mut value: T) -> Result<(), PushError<T>> {
        let mut backoff = Backoff::new();
        loop {
            match self.push(value) {
                Err(PushError::Full(v)) => {
                    value = v;
                    backoff.snooze();
                }
                done => return done,
            }
        }
    }

    /// Moves as many items from `iter` as fit (at most [`slots`](Self::slots))
    /// into the ring, publishing them with one index update; returns the count.
    /// Items not taken stay in `iter`. Returns 0 if the consumer is gone.
    ///
    /// If `iter` panics, the items it already yielded in this call are leaked
    /// (never dropped twice, never seen by the consumer).
    ///
    /// ```
    /// let (mut tx, mut rx) = weft_ring::channel(4);
    /// let mut it = 0..10;
    /// assert_eq!(tx.push_iter(&mut it), 4);
    /// assert_eq!(it.next(), Some(4));
    /// let mut out = Vec::new();
    /// assert_eq!(rx.pop_batch(&mut out, 64), Ok(4));
    /// assert_eq!(out, [0, 1, 2, 3]);
    /// ```
    pub fn push_iter<I: Iterator<Item = T>>(&mut self, iter: &mut I) -> usize {
        if self.end.peer_gone() {
            return 0;
        }
        self.end.push_from(iter, usize::MAX)
    }

    /// Copies as many items from the front of `items` as fit, with one index
    /// update; returns the count. Returns 0 if the consumer is gone.
    ///
    /// ```
    /// let (mut tx, rx) = weft_ring::channel(4);
    /// assert_eq!(tx.push_slice(&[1, 2, 3, 4, 5, 6]), 4);
    /// assert_eq!(rx.len(), 4);
    /// ```
    pub fn push_slice(&mut self, items: &[T]) -> usize
    where
        T: Copy,
    {
        if self.end.peer_gone() {
            return 0;
        }
        self.end.push_from(&mut items.iter().copied(), items.len())
    }

    /// Free slots right now (reloads the consumer's index).
    ///
    /// ```
    /// let (mut tx, _rx) = weft_ring::channel(8);
    /// tx.push(0u8).unwrap();
    /// assert_eq!(tx.slots(), 7);
    /// ```
    pub fn slots(&mut self) -> usize {
        self.end.reserve(usize::MAX)
    }

    /// Items in the ring right now (a snapshot).
    ///
    /// ```
    /// let (mut tx, _rx) = weft_ring::channel(8);
    /// tx.push(0u8).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.end.len()
    }

    /// Whether the ring is empty right now (a snapshot).
    ///
    /// ```
    /// let (tx, _rx) = weft_ring::channel::<u8>(8);
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ring's capacity (a power of two).
    ///
    /// ```
    /// assert_eq!(weft_ring::channel::<u8>(5).0.capacity(), 8);
    /// ```
    pub fn capacity(&self) -> usize {
        self.end.capacity()
    }

    /// Whether the consumer has been dropped.
    ///
    /// ```
    /// let (tx, rx) = weft_ring::channel::<u8>(1);
    /// drop(rx);
    /// assert!(tx.is_abandoned());
    /// ```
    pub fn is_abandoned(&self) -> bool {
        self.end.peer_gone()
    }
}

impl<T> Consumer<T> {
    /// Pops the oldest item without blocking.
    ///
    /// Returns [`PopError::Empty`] if nothing is ready, and [`PopError::Closed`]
    /// only when the producer is gone *and* every item it pushed has been popped.
    ///
    /// ```
    /// use weft_ring::PopError;
    /// let (mut tx, mut rx) = weft_ring::channel(2);
    /// assert_eq!(rx.pop(), Err(PopError::Empty));
    /// tx.push(7).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.pop(), Ok(7));
    /// assert_eq!(rx.pop(), Err(PopError::Closed));
    /// ```
    #[inline]
    pub fn pop(&mut self) -> Result<T, PopError> {
        if let Some(v) = self.end.try_pop() {
            return Ok(v);
        }
        self.closed_or_empty()?;
        // The producer left after pushing more: the reload in `closed_or_empty`
        // cannot have failed to see it, so this pop finds it.
        self.end.try_pop().ok_or(PopError::Empty)
    }

    /// After finding the ring empty: `Err(Closed)` if the producer is gone and
    /// nothing is left, `Err(Empty)` if it is alive, `Ok` if items arrived.
    #[cold]
    fn closed_or_empty(&mut self) -> Result<(), PopError> {
        if !self.end.peer_gone() {
            return Err(PopError::Empty);
        }
        // The flag was Acquire-loaded after the producer's last publish: this
        // reload sees every item it pushed.
        if self.end.available(1) == 0 {
            Err(PopError::Closed)
        } else {
            Ok(())
        }
    }

    /// Pops the oldest item, waiting (spin, yield, timed park) while the ring is
    /// empty. Fails only with [`PopError::Closed`], after every item was drained.
    ///
    /// ```
    /// let (mut tx, mut rx) = weft_ring::channel(2);
    /// tx.push(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.pop_blocking(), Ok(1));
    /// assert!(rx.pop_blocking().is_err());
    /// ```
    pub fn pop_blocking(&mut self) -> Result<T, PopError> {
        let mut backoff = Backoff::new();
        loop {
            match self.pop() {
                Err(PopError::Empty) => backoff.snooze(),
                done => return done,
            }
        }
    }

    /// Appends up to `max` ready items to `out`, releasing their slots with one
    /// index update. Returns `Ok(n)` with `n >= 1` (or `Ok(0)` if `max == 0`),
    /// otherwise the same errors as [`pop`](Self::pop).
    ///
    /// ```
    /// let (mut tx, mut rx) = weft_ring::channel(8);
    /// tx.push_slice(&[1, 2, 3]);
    /// let mut out = Vec::new();
    /// assert_eq!(rx.pop_batch(&mut out, 2), Ok(2));
    /// assert_eq!(rx.pop_batch(&mut out, 2), Ok(1));
    /// assert_eq!(out, [1, 2, 3]);
    /// ```
    pub fn pop_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<usize, PopError> {
        if max == 0 {
            return Ok(0);
        }
        let n = self.end.pop_into(out, max);
        if n > 0 {
            return Ok(n);
        }
        self.closed_or_empty()?;
        Ok(self.end.pop_into(out, max))
    }

    /// Items ready to pop right now (reloads the producer's index).
    ///
    /// ```
    /// let (mut tx, mut rx) = weft_ring::channel(8);
    /// tx.push(1u8).unwrap();
    /// assert_eq!(rx.slots(), 1);
    /// ```
    pub fn slots(&mut self) -> usize {
        self.end.available(usize::MAX)
    }

    /// Items in the ring right now (a snapshot).
    ///
    /// ```
    /// let (mut tx, rx) = weft_ring::channel(8);
    /// tx.push(1u8).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.end.len()
    }

    /// Whether the ring is empty right now (a snapshot).
    ///
    /// ```
    /// let (_tx, rx) = weft_ring::channel::<u8>(8);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ring's capacity (a power of two).
    ///
    /// ```
    /// assert_eq!(weft_ring::channel::<u8>(8).1.capacity(), 8);
    /// ```
    pub fn capacity(&self) -> usize {
        self.end.capacity()
    }

    /// Whether the producer has been dropped (items may still be left to pop).
    ///
    /// ```
    /// let (tx, rx) = weft_ring::channel::<u8>(1);
    /// drop(tx);
    /// assert!(rx.is_abandoned());
    /// ```
    pub fn is_abandoned(&self) -> bool {
        self.end.peer_gone()
    }
}

#[cfg(all(test, not(weft_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn assert_send<T: Send>() {}

    #[test]
    fn handles_are_send() {
        assert_send::<Producer<u32>>();
        assert_send::<Consumer<String>>();
    }

    #[test]
    fn wraps_around() {
        let (mut tx, mut rx) = channel(4);
        for i in 0..100u32 {
            tx.push(i).unwrap();
            tx.push(i + 1000).unwrap();
            assert_eq!(rx.pop(), Ok(i));
            assert_eq!(rx.pop(), Ok(i + 1000));
        }
        assert_eq!(rx.pop(), Err(PopError::Empty));
    }

    static DROPS: AtomicUsize = AtomicUsize::new(0);
    struct D;
    impl Drop for D {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn leftovers_dropped_once() {
        let (mut tx, mut rx) = channel(8);
        for _ in 0..6 {
            assert!(tx.push(D).is_ok());
        }
        drop(rx.pop().unwrap());
        drop(tx);
        drop(rx);
        assert_eq!(DROPS.load(Ordering::Relaxed), 6);
    }
}
