//! Loom models of the arena protocols. Run with
//! `RUSTFLAGS="--cfg weft_loom -C debug_assertions" LOOM_MAX_PREEMPTIONS=2 cargo test -p weft-arena --release --test loom`.
//!
//! Page bytes are real memory, not loom-tracked; loom checks the refcount, the
//! remote stack, the orphan count and the directory pointer, and loom's `Arc` leak
//! check (the core holds the monitor `Arc`) catches a core that is never freed.
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

/// The owner grows the arena (publishing a new segment directory and retiring the
/// old one through the epoch) while a monitor thread reads it.
#[test]
fn epoch_directory_retire_while_reading() {
    loom::model(|| {
        let mut a = arena(2, 1);
        let monitor = a.monitor();
        let t = spawn_big(move || {
            let s = monitor.stats();
            assert!(s.segments == 1 || s.segments == 2);
            assert_eq!(s.pages_total, s.segments);
        });
        let p1 = a.alloc().unwrap();
        let p2 = a.alloc().unwrap(); // maps segment 2, retires directory 1
        assert_eq!(a.stats().segments, 2);
        t.join().unwrap();
        drop((p1, p2));
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
