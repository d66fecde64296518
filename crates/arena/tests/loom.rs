//! Loom models of the arena protocols. Run with
//! `RUSTFLAGS="--cfg weft_loom -C debug_assertions" LOOM_MAX_PREEMPTIONS=2 cargo test -p weft-arena --release --test loom`.
//!
//! Page bytes are real memory, but every handle's access to them goes
//! through a loom cell in the page's header (loom build only), so a read
//! and a later write of a page not ordered by the refcount and the return
//! path fail the model; loom also checks the refcount, the remote stack,
//! the orphan count and the directory pointer, and loom's `Arc` leak check
//! (the core holds the monitor `Arc`) catches a core that is never freed.
//! crossbeam-epoch itself is not instrumented (it has its own loom cfg); the
//! models check our use of it: publish, retire while a reader is pinned.
#![cfg(weft_loom)]

use loom::thread;
use weft_arena::{Arena, ArenaConfig, PageRef};

fn arena(max_pages: usize, per_segment: usize) -> Arena {
    Arena::new(ArenaConfig {
        page_size: 64,
        pages_per_segment: per_segment,
        max_pages,
        huge_pages: false,
    })
    .unwrap()
}

/// Spawns a loom thread with a stack large enough for crossbeam-epoch's
/// per-thread registration (loom's default coroutine stack is 32 KiB).
fn spawn_big<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    thread::Builder::new().stack_size(1 << 20).spawn(f).unwrap()
}

/// Allocates every page and checks they are distinct and that the cap holds.
fn all_pages_distinct(a: &mut Arena, n: usize) {
    let pages: Vec<_> = (0..n).map(|_| a.alloc().expect("page lost")).collect();
    let mut addrs: Vec<_> = pages.iter().map(|p| p.as_ptr() as usize).collect();
    addrs.sort_unstable();
    addrs.dedup();
    assert_eq!(addrs.len(), n, "a page was handed out twice");
    assert!(a.alloc().is_none());
}

/// Two threads each drop a clone: the page is returned exactly once, to the
/// local list or the remote stack, whichever dropper is last.
#[test]
fn refcount_clone_drop_race() {
    loom::model(|| {
        let mut a = arena(2, 2);
        let p = a.alloc().unwrap().freeze();
        let q = p.clone();
        let t = thread::spawn(move || drop(q));
        drop(p);
        t.join().unwrap();
        a.reclaim();
        assert_eq!(a.stats().pages_in_use, 0);
        all_pages_distinct(&mut a, 2);
    });
}

/// A foreign thread drops the last handle while the owner, at the cap, keeps
/// allocating (draining the remote stack): the page is never handed out while
/// still referenced, and the foreign reader never sees it rewritten.
#[test]
fn foreign_last_drop_while_owner_allocates() {
    loom::model(|| {
        let mut a = arena(1, 1);
        let mut m = a.alloc().unwrap();
        m[0] = 7;
        let p: PageRef = m.freeze();
        let t = thread::spawn(move || {
            assert_eq!(p[0], 7);
            let q = p.clone();
            drop(p);
            assert_eq!(q[0], 7);
        });
        let mut again = loop {
            if let Some(page) = a.alloc() {
                break page;
            }
            thread::yield_now();
        };
        again[0] = 9;
        t.join().unwrap();
        assert!(a.stats().alloc_failures <= 4);
    });
}

/// Two foreign threads read a page and drop their handles, either one
/// last, while the owner waits to allocate it again and writes it: the
/// reads of the one that drops first must happen before that write too,
/// which only its Release decrement, met by the last dropper's Acquire
/// fence, gives (the page's bytes are a loom cell in this build).
#[test]
fn two_foreign_readers_then_the_owner_writes_again() {
    loom::model(|| {
        let mut a = arena(1, 1);
        let mut m = a.alloc().unwrap();
        m[0] = 7;
        let p: PageRef = m.freeze();
        let q = p.clone();
        let t1 = thread::spawn(move || {
            assert_eq!(p[0], 7);
            drop(p);
        });
        let t2 = thread::spawn(move || {
            assert_eq!(q[0], 7);
            drop(q);
        });
        let mut again = loop {
            if let Some(page) = a.alloc() {
                break page;
            }
            thread::yield_now();
        };
        again[0] = 9;
        t1.join().unwrap();
        t2.join().unwrap();
    });
}

/// The owner drops the arena while a foreign thread drops the last page: exactly
/// one of them frees the core (loom's leak check on the `Arc` it holds would
/// catch neither; a double free would crash).
#[test]
fn owner_leaves_while_foreign_drops() {
    loom::model(|| {
        let mut a = arena(2, 2);
        let p = a.alloc().unwrap().freeze();
        let keep = a.alloc().unwrap();
        let monitor = a.monitor();
        let t = thread::spawn(move || {
            assert_eq!(p.len(), 64);
            drop(p);
        });
        drop(keep); // local return
        drop(a);
        t.join().unwrap();
        let s = monitor.stats();
        assert_eq!(s.pages_in_use, 0);
    });
}

/// The owner drops the arena while two foreign threads each drop a page:
/// the owner's departure leaves pages out, so its count does not reach
/// zero and one of the foreign threads, whichever drops last, frees the
/// core; with one page out the owner's count always reached zero and this
/// branch went unexplored.
#[test]
fn owner_leaves_while_two_foreign_threads_drop() {
    loom::model(|| {
        let mut a = arena(2, 2);
        let p = a.alloc().unwrap().freeze();
        let q = a.alloc().unwrap().freeze();
        let monitor = a.monitor();
        let t1 = thread::spawn(move || drop(p));
        let t2 = thread::spawn(move || drop(q));
        drop(a);
        t1.join().unwrap();
        t2.join().unwrap();
        assert_eq!(monitor.stats().pages_in_use, 0);
    });
}

/// The owner grows the arena (publishing a new segment directory and retiring the
/// old one through the epoch, three times, so the epoch advances far enough
/// to reclaim) while a monitor thread reads it. Under loom a reclaimed
/// directory is marked, not freed, and the reader asserts that the one it
/// reads is not: loading the directory before pinning fails this model.
#[test]
fn epoch_directory_retire_while_reading() {
    loom::model(|| {
        let mut a = arena(4, 1);
        let monitor = a.monitor();
        let t = spawn_big(move || {
            let s = monitor.stats();
            assert!((1..=4).contains(&s.segments), "{s:?}");
            assert_eq!(s.pages_total, s.segments);
        });
        // Each allocation maps a segment and retires the directory before.
        let pages: Vec<_> = (0..4).map(|_| a.alloc().unwrap()).collect();
        assert_eq!(a.stats().segments, 4);
        t.join().unwrap();
        drop(pages);
    });
}

/// A buffer whose bytes are a loom cell: loom fails the model if a write to
/// it is not ordered after every read (or the reverse).
struct Buf(loom::cell::UnsafeCell<u32>);

// SAFETY: only for the model: every access goes through loom's cell, which
// checks that no two of them race; finding such a race is the point.
unsafe impl Sync for Buf {}

/// The stream reader's hand-off: a buffer is shared with a reading thread,
/// parked in the pool, and the writer keeps taking buffers from the pool
/// (or making new ones) and writing them. Whatever the interleaving, it gets
/// the shared buffer back only after the reader dropped it, and its write is
/// ordered after the reader's read.
#[test]
fn block_pool_reuses_a_buffer_only_after_its_reader() {
    use loom::sync::Arc;
    use weft_arena::BlockPool;
    loom::model(|| {
        let mut pool = BlockPool::new(2);
        let first = Arc::new(Buf(loom::cell::UnsafeCell::new(1)));
        let reader = first.clone();
        let t = thread::spawn(move || {
            // SAFETY: a loom cell read; loom reports it if it races a write.
            reader.0.with(|p| assert_eq!(unsafe { *p }, 1));
        });
        pool.recycle(first);
        for round in 2..5 {
            let b = pool
                .take()
                .unwrap_or_else(|| Buf(loom::cell::UnsafeCell::new(0)));
            // SAFETY: as above; `take` hands out only unshared buffers.
            b.0.with_mut(|p| unsafe { *p = round });
            pool.recycle(Arc::new(b));
        }
        t.join().unwrap();
    });
}

use loom::sync::atomic::Ordering::SeqCst;
use std::io;
use std::sync::Mutex;
use weft_arena::{Pager, Readahead, Window};

/// Records what the helper asked for, and checks each request.
struct Recorder {
    len: usize,
    /// The furthest position the reader reports in this model.
    last: usize,
    behind: usize,
    populated: Mutex<Vec<(usize, usize)>>,
    dropped: Mutex<Vec<(usize, usize)>>,
    /// Where the helper's last read ahead ended.
    warmed_to: Mutex<usize>,
    /// How far the helper has mapped, for a reader that waits on it. An
    /// atomic polled with `yield_now`, not a mutex and condvar: loom drops
    /// a thread's park token when that thread blocks on a loom mutex, which
    /// would report a deadlock the real `park` cannot have. A reader that
    /// waits forever exceeds loom's branch limit instead.
    mapped_to: loom::sync::atomic::AtomicUsize,
}

impl Pager for Recorder {
    fn mapped_len(&self) -> usize {
        self.len
    }
    fn populate(&self, offset: usize, len: usize) -> io::Result<()> {
        assert!(
            len > 0 && offset + len <= self.len,
            "populate {offset}+{len}"
        );
        self.populated.lock().unwrap().push((offset, len));
        self.mapped_to.store(offset + len, SeqCst);
        Ok(())
    }
    fn drop_behind(&self, offset: usize, len: usize) -> io::Result<()> {
        // Only what the reader has passed by `behind`.
        assert!(
            offset + len + self.behind <= self.last,
            "drop {offset}+{len}"
        );
        self.dropped.lock().unwrap().push((offset, len));
        Ok(())
    }
    fn warm(&self, offset: usize, len: usize) {
        // Mapped bytes only, each once, going forward; never one a
        // previous read already covered.
        assert!(
            len > 0 && offset + len <= self.mapped_to.load(SeqCst),
            "warm {offset}+{len}"
        );
        let mut to = self.warmed_to.lock().unwrap();
        assert!(offset >= *to, "warm {offset}+{len} after {}", *to);
        *to = offset + len;
    }
}

/// The reader starts the helper at `start`, reports `reports`, and, if
/// `wait`, waits until the helper has mapped as far as the last report
/// asks before dropping it: that needs every report's wake-up to arrive
/// (or, for a helper that `poll`s, the helper to look again by itself).
fn readahead_model(start: usize, reports: &'static [usize], wait: bool, poll: bool) {
    loom::model(move || {
        let w = Window {
            ahead: 2,
            chunk: 2,
            behind: 2,
            drop_chunk: 2,
            warm: 1,
            // Judging reads the clock: a model must not.
            judge: None,
            poll: poll.then_some(std::time::Duration::from_micros(1)),
        };
        let last = reports.iter().copied().max().unwrap_or(start);
        let rec = std::sync::Arc::new(Recorder {
            len: 8,
            last,
            behind: w.behind,
            populated: Mutex::new(Vec::new()),
            dropped: Mutex::new(Vec::new()),
            warmed_to: Mutex::new(0),
            mapped_to: loom::sync::atomic::AtomicUsize::new(0),
        });
        let mut ra = Readahead::start(rec.clone(), start, w).expect("spawn");
        for &pos in reports {
            ra.advance(pos);
        }
        if wait {
            let target = (last + w.ahead).min(rec.len);
            while rec.mapped_to.load(SeqCst) < target {
                thread::yield_now();
            }
        }
        // Stops and joins whatever the helper is doing.
        drop(ra);
        // Requests go forward, each range once, from the start of the
        // chunk the reader was in when the helper started.
        let from = start / w.chunk * w.chunk;
        for ops in [&rec.populated, &rec.dropped] {
            let ops = ops.lock().unwrap();
            let mut at = from;
            for &(offset, len) in ops.iter() {
                assert_eq!(offset, at, "{ops:?}");
                at += len;
            }
        }
    });
}

/// The read-ahead helper: loom explores every interleaving of the
/// reader's progress reports and wake-ups, the helper's loads and parks,
/// and the final stop. A wake-up lost, from a report or from the stop,
/// would leave the helper parked and the reader (waiting for the mapping,
/// or joining) blocked, which loom reports as a deadlock; each request the
/// helper makes is checked on the way.
#[test]
fn readahead_reader_runs_to_the_end_and_drops_the_helper() {
    readahead_model(0, &[2, 4, 6], true, false);
}

#[test]
fn readahead_dropped_mid_read() {
    readahead_model(0, &[3], false, false);
}

#[test]
fn readahead_started_mid_chunk() {
    readahead_model(3, &[5, 7], true, false);
}

/// A polling helper: the reader wakes it only when it lags two chunks
/// (timed parks are yields in the model). The same requests, each checked,
/// and a stop that ends it.
#[test]
fn readahead_polling_helper_keeps_up_and_stops() {
    readahead_model(0, &[2, 4, 6], true, true);
}

#[test]
fn readahead_polling_helper_dropped_mid_read() {
    readahead_model(3, &[5], false, true);
}

/// Two readers see a stop at different places, concurrently: both stop at
/// the furthest of them.
#[test]
fn abreast_readers_agree_where_to_stop() {
    use weft_arena::Abreast;
    loom::model(|| {
        let a = loom::sync::Arc::new(Abreast::new(2, 10));
        let a2 = a.clone();
        let t = thread::spawn(move || a2.agree_stop(1, 300));
        let mine = a.agree_stop(0, 100);
        let theirs = t.join().unwrap();
        assert_eq!((mine, theirs), (300, 300));
    });
}

/// A reader that finished counts with its last position: the one that
/// stops later stops there, wherever the finish falls.
#[test]
fn abreast_a_finished_reader_sets_the_cut() {
    use loom::sync::atomic::AtomicBool;
    use weft_arena::Abreast;
    loom::model(|| {
        let a = loom::sync::Arc::new(Abreast::new(2, 1_000));
        let a2 = a.clone();
        let t = thread::spawn(move || {
            let done = a2.leave_when_done(1);
            a2.keep_up(1, 500, &AtomicBool::new(false));
            drop(done);
        });
        let cut = a.agree_stop(0, 100);
        t.join().unwrap();
        assert_eq!(cut, 500);
    });
}

/// A reader that agreed on a stop and then finished counts with its stop
/// place, not its last reported position: both agree on one cut however
/// the other reads the two.
#[test]
fn abreast_a_reader_that_agreed_then_finished_keeps_its_stop() {
    use loom::sync::atomic::AtomicBool;
    use weft_arena::Abreast;
    loom::model(|| {
        let a = loom::sync::Arc::new(Abreast::new(2, 1_000));
        let a2 = a.clone();
        let t = thread::spawn(move || {
            let done = a2.leave_when_done(1);
            a2.keep_up(1, 200, &AtomicBool::new(false));
            let cut = a2.agree_stop(1, 300);
            drop(done);
            cut
        });
        let mine = a.agree_stop(0, 100);
        let theirs = t.join().unwrap();
        assert_eq!((mine, theirs), (300, 300));
    });
}

/// A reader more than the lag ahead waits until the other catches up or
/// finishes, and then goes on: it never waits forever, and never for a
/// finished reader.
#[test]
fn abreast_a_reader_ahead_waits_then_goes_on() {
    use loom::sync::atomic::AtomicBool;
    use weft_arena::Abreast;
    loom::model(|| {
        let a = loom::sync::Arc::new(Abreast::new(2, 10));
        let a2 = a.clone();
        let t = thread::spawn(move || {
            let done = a2.leave_when_done(1);
            a2.keep_up(1, 5, &AtomicBool::new(false));
            drop(done);
        });
        a.keep_up(0, 100, &AtomicBool::new(false));
        t.join().unwrap();
    });
}
