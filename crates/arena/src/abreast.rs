//! [`Abreast`]: readers of one memory-mapped capture, each on its own
//! thread (an engine's fanout workers), kept close together and stopped
//! at the same place.
//!
//! Why close: the first reader's read-ahead helper ([`Readahead`](crate::Readahead))
//! unmaps the pages far behind that reader; a reader further behind maps
//! them again, and those stay mapped to the end. Within a few MiB of each
//! other, readers also find much of what another just read in the cache
//! the cores share.
//!
//! Why the same place: on a stop request, each reader stopping where it
//! happens to be would leave the flows of each worker cut at a different
//! frame. [`Abreast::agree_stop`] makes them all stop after the same frame.
//!
//! Protocol: each reader publishes its position (`at`, bytes of input read
//! so far, the same sequence of frame boundaries for every reader) with
//! release stores; a reader more than `lag` ahead of the slowest live one
//! waits (acquire loads) until it is not, or a stop is asked. A finished
//! reader (or one whose thread unwound) sets `done` after its last
//! position, and nobody waits for it. On a stop, each reader publishes
//! where it saw it, once, and waits until every live reader has: the cut is
//! the furthest of those places and of the finished readers' last
//! positions. Every value it reads is final, so every reader computes the
//! same cut. Model checked with loom (`tests/loom.rs`).

use weft_sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Where each of a set of readers of one input got to; see the module
/// docs. `Send + Sync`: shared by reference among the readers' threads.
#[derive(Debug)]
pub struct Abreast {
    at: Vec<AtomicU64>,
    /// Finished (or its thread unwound): nobody waits for it.
    done: Vec<AtomicBool>,
    /// Where each saw a stop ([`NOT_STOPPED`] until then).
    stopped: Vec<AtomicU64>,
    lag: u64,
}

/// A [`Abreast::stopped`] entry of a reader that has not seen a stop.
const NOT_STOPPED: u64 = u64::MAX;

/// Marks a reader done when dropped, also when its thread unwinds, so
/// nobody waits for it ([`Abreast::leave_when_done`]).
#[derive(Debug)]
pub struct Done<'a>(&'a Abreast, usize);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.done[self.1].store(true, Ordering::Release);
    }
}

impl Abreast {
    /// `readers` readers, none to get more than `lag` bytes ahead of the
    /// slowest one still reading.
    pub fn new(readers: usize, lag: u64) -> Abreast {
        Abreast {
            at: (0..readers).map(|_| AtomicU64::new(0)).collect(),
            done: (0..readers).map(|_| AtomicBool::new(false)).collect(),
            stopped: (0..readers).map(|_| AtomicU64::new(NOT_STOPPED)).collect(),
            lag,
        }
    }

    /// A guard that marks reader `me` done when dropped: take it before
    /// reading, keep it until the last position was reported.
    pub fn leave_when_done(&self, me: usize) -> Done<'_> {
        Done(self, me)
    }

    /// Reader `me` got to byte `at`: waits while it is more than the lag
    /// ahead of the slowest reader still reading, or until `stop` is set.
    /// Every reader must be given the same `stop`: a reader waiting here
    /// for one that waits in [`agree_stop`](Self::agree_stop) is released
    /// by the flag that reader saw.
    pub fn keep_up(&self, me: usize, at: u64, stop: &AtomicBool) {
        self.at[me].store(at, Ordering::Release);
        let mut spins = 0u32;
        loop {
            let slowest = (0..self.at.len())
                .filter(|&i| !self.done[i].load(Ordering::Acquire))
                .map(|i| self.at[i].load(Ordering::Acquire))
                .min();
            let close = slowest.map_or(true, |s| at <= s.saturating_add(self.lag));
            if close || stop.load(Ordering::Relaxed) {
                return;
            }
            pause(&mut spins);
        }
    }

    /// Reader `me` saw a stop request at byte `at` (call it once): waits
    /// until every reader still reading saw it too, and returns where all
    /// stop, the same for every reader: the furthest of the places they
    /// saw it and of the finished readers' last positions. Each reader
    /// then reads up to exactly there.
    pub fn agree_stop(&self, me: usize, at: u64) -> u64 {
        // The last byte position stands for "not stopped": a stop there is
        // kept one below it (no input reaches either).
        let at = at.min(NOT_STOPPED - 1);
        self.stopped[me].store(at, Ordering::Release);
        let mut spins = 0u32;
        loop {
            let mut cut = at;
            let mut all = true;
            for i in 0..self.at.len() {
                // `done` first: a reader that agreed on a stop stored its
                // place before it could finish, so once it is seen done,
                // its place is seen too. Read the other way round, a reader
                // seen not stopped could agree, read on and finish before
                // `done` was read, and its last position would stand in
                // for its stop.
                let done = self.done[i].load(Ordering::Acquire);
                let s = self.stopped[i].load(Ordering::Acquire);
                if s != NOT_STOPPED {
                    cut = cut.max(s);
                } else if done {
                    cut = cut.max(self.at[i].load(Ordering::Acquire));
                } else {
                    all = false;
                }
            }
            if all {
                return cut;
            }
            pause(&mut spins);
        }
    }
}

/// One step of waiting for another reader: short waits yield, long ones
/// sleep (the other may be far behind).
fn pause(spins: &mut u32) {
    *spins += 1;
    #[cfg(weft_loom)]
    weft_sync::thread::yield_now();
    #[cfg(not(weft_loom))]
    if *spins < 64 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

#[cfg(all(test, not(weft_loom)))]
mod tests {
    use super::Abreast;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    /// Runs `f` on a thread; `None` if it has not returned after `ms`.
    fn within<T: Send + 'static>(ms: u64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_millis(ms)).ok()
    }

    /// A reader more than the lag ahead waits for the slowest; it goes on
    /// once that one catches up, finishes, panics, or a stop is asked.
    #[test]
    fn readers_keep_abreast_and_never_wait_for_a_finished_one() {
        let a = Arc::new(Abreast::new(2, 100));
        let stop = Arc::new(AtomicBool::new(false));
        // Within the lag: no wait.
        a.keep_up(0, 100, &stop);
        // Ahead by more: waits until reader 1 catches up.
        let (a2, s2) = (a.clone(), stop.clone());
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            a2.keep_up(0, 500, &s2);
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "waits"
        );
        a.keep_up(1, 399, &stop);
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "still 101 ahead"
        );
        a.keep_up(1, 400, &stop);
        rx.recv_timeout(Duration::from_secs(10)).expect("caught up");
        waiter.join().unwrap();
        // A finished reader holds nobody back.
        let (a3, s3) = (a.clone(), stop.clone());
        drop(a.leave_when_done(1));
        assert!(within(10_000, move || a3.keep_up(0, 1 << 40, &s3)).is_some());
        // Nor does one whose thread panicked.
        let b = Arc::new(Abreast::new(2, 10));
        let b2 = b.clone();
        let _ = std::thread::spawn(move || {
            let _done = b2.leave_when_done(1);
            panic!("reader failure on purpose");
        })
        .join();
        let (b3, s4) = (b.clone(), stop.clone());
        assert!(within(10_000, move || b3.keep_up(0, 1_000, &s4)).is_some());
        // A stop ends any wait.
        let c = Arc::new(Abreast::new(2, 10));
        let (c2, s5) = (c.clone(), stop.clone());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            c2.keep_up(0, 1_000, &s5);
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "waits"
        );
        stop.store(true, Ordering::Relaxed);
        rx.recv_timeout(Duration::from_secs(10)).expect("stopped");
    }

    /// Readers that saw a stop at different places all stop at the
    /// furthest of them, or where a finished reader got to.
    #[test]
    fn readers_agree_where_to_stop() {
        let a = Arc::new(Abreast::new(3, 100));
        let a2 = a.clone();
        let early = std::thread::spawn(move || a2.agree_stop(0, 100));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!early.is_finished(), "waits for the others");
        let a3 = a.clone();
        let late = std::thread::spawn(move || a3.agree_stop(1, 300));
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            !early.is_finished() && !late.is_finished(),
            "reader 2 still reads"
        );
        a.keep_up(2, 500, &AtomicBool::new(true));
        drop(a.leave_when_done(2));
        assert_eq!(within(10_000, move || early.join().unwrap()), Some(500));
        assert_eq!(within(10_000, move || late.join().unwrap()), Some(500));
        let b = Abreast::new(2, 100);
        drop(b.leave_when_done(1));
        assert_eq!(
            b.agree_stop(0, 42),
            42,
            "a finished reader at 0 holds nothing"
        );
        // A stop seen at the last position is a stop, not "none yet": the
        // other reader does not wait for this one.
        let c = Arc::new(Abreast::new(2, 100));
        let c2 = c.clone();
        let last = std::thread::spawn(move || c2.agree_stop(0, u64::MAX));
        let other = within(10_000, move || c.agree_stop(1, 7));
        assert_eq!(other, Some(u64::MAX - 1));
        assert_eq!(
            within(10_000, move || last.join().unwrap()),
            Some(u64::MAX - 1)
        );
    }
}
