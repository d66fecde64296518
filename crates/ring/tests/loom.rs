//! Loom models of the ring protocol. Run with
//! `RUSTFLAGS="--cfg weft_loom -C debug_assertions" LOOM_MAX_PREEMPTIONS=2 cargo test -p weft-ring --release --test loom`.
#![cfg(weft_loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use weft_ring::{channel, PopError, PushError};

/// Push with a loom-friendly spin (yield between attempts).
fn push_spin<T>(tx: &mut weft_ring::Producer<T>, mut v: T) {
    loop {
        match tx.push(v) {
            Ok(()) => return,
            Err(PushError::Full(back)) => {
                v = back;
                thread::yield_now();
            }
            Err(PushError::Closed(_)) => panic!("consumer vanished"),
        }
    }
}

/// Three items through a ring of two: the third push wraps onto slot 0 while the
/// consumer may still be reading it. Order and values must survive.
#[test]
fn push_pop_across_wrap() {
    loom::model(|| {
        let (mut tx, mut rx) = channel::<usize>(2);
        let t = thread::spawn(move || {
            for i in 0..3 {
                push_spin(&mut tx, i);
            }
        });
        let mut expect = 0;
        while expect < 3 {
            match rx.pop() {
                Ok(v) => {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => panic!("closed before drained"),
            }
        }
        t.join().unwrap();
    });
}

/// Batch push and batch pop, each one index update, across the wrap.
#[test]
fn batches_across_wrap() {
    loom::model(|| {
        let (mut tx, mut rx) = channel::<usize>(2);
        let t = thread::spawn(move || {
            let mut it = 0..3;
            while it.len() > 0 {
                if tx.push_iter(&mut it) == 0 {
                    thread::yield_now();
                }
            }
        });
        let mut out = Vec::new();
        loop {
            match rx.pop_batch(&mut out, 2) {
                Ok(_) => {}
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => break,
            }
        }
        assert_eq!(out, [0, 1, 2]);
        t.join().unwrap();
    });
}

/// Batches that start at the last slot and end at the first: one single
/// push and pop first put both indices at an odd place, so every batch of
/// two through a ring of two straddles the end of the slot array, on the
/// producer's side and on the consumer's.
#[test]
fn batches_straddling_the_end_of_the_slots() {
    loom::model(|| {
        let (mut tx, mut rx) = channel::<usize>(2);
        let t = thread::spawn(move || {
            push_spin(&mut tx, 0);
            let mut it = 1..5;
            while it.len() > 0 {
                if tx.push_iter(&mut it) == 0 {
                    thread::yield_now();
                }
            }
        });
        let first = loop {
            match rx.pop() {
                Ok(v) => break v,
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => panic!("closed before the first item"),
            }
        };
        let mut out = vec![first];
        loop {
            match rx.pop_batch(&mut out, 2) {
                Ok(_) => {}
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => break,
            }
        }
        assert_eq!(out, [0, 1, 2, 3, 4]);
        t.join().unwrap();
    });
}

/// A ring asked for no room holds one item (the smallest ring): every push
/// waits for the pop before it, and order and values survive.
#[test]
fn a_ring_of_one() {
    loom::model(|| {
        let (mut tx, mut rx) = channel::<usize>(0);
        let t = thread::spawn(move || {
            for i in 0..3 {
                push_spin(&mut tx, i);
            }
        });
        let mut out = Vec::new();
        loop {
            match rx.pop_batch(&mut out, 4) {
                Ok(n) => assert_eq!(n, 1, "one slot"),
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => break,
            }
        }
        assert_eq!(out, [0, 1, 2]);
        t.join().unwrap();
    });
}

struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The producer leaves with items in flight: the consumer drains them all, then
/// sees `Closed`; every item is dropped exactly once.
#[test]
fn producer_leaves_consumer_drains() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = channel::<Counted>(2);
        let d = drops.clone();
        let t = thread::spawn(move || {
            let _ = tx.push(Counted(d.clone()));
            let _ = tx.push(Counted(d));
        });
        let mut got = 0;
        loop {
            match rx.pop() {
                Ok(v) => {
                    drop(v);
                    got += 1;
                }
                Err(PopError::Empty) => thread::yield_now(),
                Err(PopError::Closed) => break,
            }
        }
        assert_eq!(got, 2);
        t.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// Both handles drop concurrently with items inside: whoever is last drops the
/// remaining items; together with items returned by failed pushes, each of the
/// three is dropped exactly once.
#[test]
fn disconnect_with_items_in_flight() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = channel::<Counted>(2);
        let d = drops.clone();
        let t = thread::spawn(move || {
            for _ in 0..3 {
                if let Err(e) = tx.push(Counted(d.clone())) {
                    drop(e.into_inner());
                }
            }
        });
        if let Ok(v) = rx.pop() {
            drop(v);
        }
        drop(rx);
        t.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    });
}

/// The consumer leaves: the producer learns it and gets its item back, and
/// once it has seen the ring closed, it never sees it open again.
#[test]
fn consumer_leaves_producer_learns() {
    loom::model(|| {
        let (mut tx, rx) = channel::<usize>(2);
        let t = thread::spawn(move || drop(rx));
        let mut closed = false;
        for i in 0..3 {
            match tx.push(i) {
                Ok(()) => assert!(!closed, "push {i} went in after a closed push"),
                Err(PushError::Closed(v)) => {
                    assert_eq!(v, i);
                    closed = true;
                }
                Err(PushError::Full(v)) => {
                    assert!(!closed, "push {i} saw a full ring after a closed one");
                    assert_eq!(v, i);
                }
            }
        }
        t.join().unwrap();
        assert!(tx.is_abandoned());
        assert!(matches!(tx.push(9), Err(PushError::Closed(9))));
    });
}
