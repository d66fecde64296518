//! weft-sync: the one switch between `std` and `loom` synchronisation primitives.
//!
//! Every atomic protocol in weft (the SPSC ring, the page arena) is written once
//! against this crate and built two ways:
//!
//! * normally, every name here is the `std` primitive (or a zero-cost wrapper);
//! * with `RUSTFLAGS="--cfg weft_loom"`, every name is loom's model-checked mock, so
//!   `tests/loom.rs` in `weft-ring` and `weft-arena` explore all interleavings.
//!
//! This is the only file of the loom-checked crates (ring, arena) that names `loom`
//! or `std::sync::atomic` (plain counters elsewhere use `std` directly). The cfg
//! is `weft_loom`, not `loom`, so published dependencies that check `cfg(loom)`
//! are not flipped by accident.
//!
//! Contents: [`atomic`], [`Arc`], [`thread`], [`hint`], [`cell::UnsafeCell`] (with
//! loom's closure-based `with`/`with_mut` API in both builds), [`CachePadded`], and
//! [`backoff::Backoff`], the spin → yield → park wait strategy.
//!
//! This crate dereferences nothing: the `std` [`cell::UnsafeCell`] wrapper only hands
//! out raw pointers (safe to create); dereferencing them is the caller's business,
//! in the crates allowed to do so (ring, arena).
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(weft_loom)]
pub use loom::{
    hint,
    sync::{atomic, Arc},
    thread,
};
#[cfg(not(weft_loom))]
pub use std::{
    hint,
    sync::{atomic, Arc},
    thread,
};

/// Pads and aligns a value to the length of a cache line (128 bytes on x86-64,
/// covering the adjacent-line prefetcher), so two hot indices never share a line.
pub use crossbeam_utils::CachePadded;

/// `std` atomics in both builds, which loom neither schedules nor checks.
///
/// For markers that model tests set from code whose synchronisation loom
/// cannot see: crossbeam-epoch runs its own `std` atomics, so a loom atomic
/// written from a deferred reclamation would be reported as unordered with
/// the value's creation even when the epoch ordered them. Never for the
/// protocols themselves.
pub mod untracked {
    pub use std::sync::atomic::AtomicBool;
}

/// `UnsafeCell` with the closure API of loom, so one source serves both builds.
pub mod cell {
    #[cfg(weft_loom)]
    pub use loom::cell::UnsafeCell;

    /// A thin wrapper over [`core::cell::UnsafeCell`] exposing loom's API:
    /// access goes through [`with`](Self::with) / [`with_mut`](Self::with_mut),
    /// which loom instruments to detect unsynchronised (racy) accesses.
    #[cfg(not(weft_loom))]
    #[derive(Debug, Default)]
    pub struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

    #[cfg(not(weft_loom))]
    impl<T> UnsafeCell<T> {
        /// Wraps `data`.
        #[inline]
        pub const fn new(data: T) -> Self {
            Self(core::cell::UnsafeCell::new(data))
        }

        /// Calls `f` with a shared raw pointer to the contents.
        #[inline(always)]
        pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Calls `f` with a mutable raw pointer to the contents.
        #[inline(always)]
        pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }

        /// Consumes the cell, returning the contents.
        #[inline]
        pub fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }
}

/// The wait strategy shared by weft's blocking operations.
pub mod backoff {
    use super::{hint, thread};

    /// Number of exponential spin rounds (`2^0 .. 2^SPIN_LIMIT` pause hints).
    const SPIN_LIMIT: u32 = 6;
    /// Rounds of `yield_now` after spinning, before parking.
    const YIELD_LIMIT: u32 = 10;

    /// Spin with [`hint::spin_loop`], then [`thread::yield_now`], then park the
    /// thread with a short, growing timeout (50 µs doubling to 800 µs, or to
    /// the cap given to [`with_max_park`](Self::with_max_park)).
    ///
    /// Parking uses `park_timeout`, so no waker is needed: the other side of a
    /// channel never pays for a wake-up handshake while data flows. Under
    /// `--cfg weft_loom` every step is `loom::thread::yield_now`, which loom needs
    /// in every spin loop.
    #[derive(Debug, Clone)]
    pub struct Backoff {
        step: u32,
        /// The longest park, in microseconds.
        max_park: u64,
    }

    impl Default for Backoff {
        fn default() -> Self {
            Self::new()
        }
    }

    /// The longest park of [`Backoff::new`], in microseconds.
    const MAX_PARK_MICROS: u64 = 50 << 4;

    impl Backoff {
        /// A fresh backoff, starting with the shortest spin.
        #[inline]
        pub const fn new() -> Self {
            Self {
                step: 0,
                max_park: MAX_PARK_MICROS,
            }
        }

        /// A fresh backoff whose parks grow to `max` (at least 1 µs) rather
        /// than 800 µs: shorter for a waiter that must notice work sooner
        /// (at the cost of waking more often while idle), longer for one
        /// that may be slow to notice.
        pub fn with_max_park(max: std::time::Duration) -> Self {
            let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
            Self {
                step: 0,
                max_park: micros.max(1),
            }
        }

        /// A fresh backoff that never parks: once it has spun it keeps
        /// yielding, for a thread with a core to itself.
        pub const fn never_parking() -> Self {
            Self {
                step: 0,
                max_park: 0,
            }
        }

        /// Forget past waits: the next [`snooze`](Self::snooze) spins briefly again.
        #[inline]
        pub fn reset(&mut self) {
            self.step = 0;
        }

        /// Whether the strategy has progressed to parking the thread.
        #[inline]
        pub fn is_parking(&self) -> bool {
            self.step > SPIN_LIMIT + YIELD_LIMIT
        }

        /// How long the next [`snooze`](Self::snooze) parks the thread;
        /// `None` while it still spins or yields (or, with no parks at
        /// all, yields for good).
        pub fn next_park(&self) -> Option<std::time::Duration> {
            if self.max_park == 0 {
                return None;
            }
            let parked = self.step.checked_sub(SPIN_LIMIT + YIELD_LIMIT + 1)?;
            let micros = (50u64 << parked.min(24)).min(self.max_park);
            Some(std::time::Duration::from_micros(micros))
        }

        /// Wait a little; each call waits longer than the last, up to a cap.
        pub fn snooze(&mut self) {
            #[cfg(weft_loom)]
            {
                let _ = hint::spin_loop;
                thread::yield_now();
            }
            #[cfg(not(weft_loom))]
            {
                if self.step <= SPIN_LIMIT {
                    for _ in 0..(1u32 << self.step) {
                        hint::spin_loop();
                    }
                } else if let Some(park) = self.next_park() {
                    park_for(park);
                } else {
                    thread::yield_now();
                }
            }
            self.step = self
                .step
                .saturating_add(1)
                .min(SPIN_LIMIT + YIELD_LIMIT + 1 + 24);
        }
    }

    /// One step of a spin loop: a pause hint normally, a yield under loom.
    #[inline(always)]
    pub fn spin_loop() {
        #[cfg(weft_loom)]
        thread::yield_now();
        #[cfg(not(weft_loom))]
        hint::spin_loop();
    }

    /// Give the rest of this time slice to another thread.
    #[inline]
    pub fn yield_now() {
        thread::yield_now();
    }

    /// Parks the thread for at most `d` (an unpark ends it sooner). Under
    /// `--cfg weft_loom` a yield: loom has no timed park, and a park that
    /// returns at once is one a timeout ended early, which callers of a
    /// timed park must expect anyway.
    #[inline]
    pub fn park_for(d: std::time::Duration) {
        #[cfg(weft_loom)]
        {
            let _ = d;
            thread::yield_now();
        }
        #[cfg(not(weft_loom))]
        thread::park_timeout(d);
    }
}

#[cfg(all(test, not(weft_loom)))]
mod tests {
    use super::{backoff::Backoff, cell::UnsafeCell};

    #[test]
    fn cell_round_trip() {
        let c = UnsafeCell::new(5u32);
        // Both accessors hand out the same location; no dereference needed.
        let (a, b) = (c.with(|p| p as usize), c.with_mut(|p| p as usize));
        assert_eq!(a, b);
        assert_eq!(c.into_inner(), 5);
    }

    #[test]
    fn backoff_reaches_parking() {
        let mut b = Backoff::new();
        for _ in 0..20 {
            b.snooze();
        }
        assert!(b.is_parking());
        b.reset();
        assert!(!b.is_parking());
    }

    /// Parks grow from 50 µs to 800 µs, or to the cap given.
    #[test]
    fn parks_grow_up_to_their_cap() {
        use std::time::Duration;
        let us = Duration::from_micros;
        for (mut b, cap) in [
            (Backoff::new(), us(800)),
            (Backoff::with_max_park(us(100)), us(100)),
            (Backoff::with_max_park(us(3200)), us(3200)),
            (Backoff::with_max_park(Duration::ZERO), us(1)),
        ] {
            let mut parks = Vec::new();
            for _ in 0..30 {
                if let Some(p) = b.next_park() {
                    parks.push(p);
                }
                b.snooze();
            }
            assert_eq!(parks.first(), Some(&us(50).min(cap)));
            assert_eq!(parks.iter().max(), Some(&cap));
            assert!(parks.windows(2).all(|w| w[0] <= w[1]), "{parks:?}");
        }
        // No parks at all: it yields for good once it has spun.
        let mut b = Backoff::never_parking();
        for _ in 0..30 {
            assert_eq!(b.next_park(), None);
            b.snooze();
        }
    }
}
