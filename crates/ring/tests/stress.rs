//! Stress: many items between two real threads, checked for order and loss.
//! Default sizes run in seconds; set `WEFT_STRESS_ITEMS` (e.g. `300000000`) for
//! the long run.
#![cfg(not(weft_loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use weft_ring::{channel, PopError};

fn items(default: u64) -> u64 {
    std::env::var("WEFT_STRESS_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn single(n: u64, cap: usize) {
    let (mut tx, mut rx) = channel::<u64>(cap);
    let t = thread::spawn(move || {
        for i in 0..n {
            tx.push_blocking(i).unwrap();
        }
    });
    let mut expect = 0;
    while let Ok(v) = rx.pop_blocking() {
        assert_eq!(v, expect);
        expect += 1;
    }
    assert_eq!(expect, n);
    t.join().unwrap();
}

fn batched(n: u64, cap: usize, batch: usize) {
    let (mut tx, mut rx) = channel::<u64>(cap);
    let t = thread::spawn(move || {
        let mut it = 0..n;
        let mut b = weft_sync::backoff::Backoff::new();
        while it.start < it.end {
            if tx.push_iter(&mut it) == 0 {
                b.snooze();
            } else {
                b.reset();
            }
        }
    });
    let mut expect = 0;
    let mut out = Vec::with_capacity(batch);
    let mut b = weft_sync::backoff::Backoff::new();
    loop {
        out.clear();
        match rx.pop_batch(&mut out, batch) {
            Ok(_) => {
                b.reset();
                for &v in &out {
                    assert_eq!(v, expect);
                    expect += 1;
                }
            }
            Err(PopError::Empty) => b.snooze(),
            Err(PopError::Closed) => break,
        }
    }
    assert_eq!(expect, n);
    t.join().unwrap();
}

#[test]
fn ten_million_single_items() {
    single(items(10_000_000), 1024);
}

#[test]
fn batches_of_64() {
    batched(items(10_000_000), 1024, 64);
}

#[test]
fn tiny_capacities() {
    let n = items(10_000_000) / 20;
    for cap in [1, 2, 4] {
        single(n, cap);
        batched(n, cap, 3);
    }
}

static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Tracked(#[allow(dead_code)] Box<u64>);
impl Tracked {
    fn new(v: u64) -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        Tracked(Box::new(v))
    }
}
impl Drop for Tracked {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[test]
fn drops_reconcile_after_abandon() {
    let stop = Arc::new(AtomicUsize::new(0));
    for round in 0..50u64 {
        let (mut tx, mut rx) = channel::<Tracked>(16);
        let s = stop.clone();
        let t = thread::spawn(move || {
            let mut i = 0;
            while tx.push(Tracked::new(i)).is_ok() || !tx.is_abandoned() {
                i += 1;
                if i > 10_000 {
                    break;
                }
            }
            s.fetch_add(1, Ordering::Relaxed);
        });
        for _ in 0..(round * 7) {
            let _ = rx.pop();
        }
        drop(rx);
        t.join().unwrap();
    }
    assert_eq!(stop.load(Ordering::Relaxed), 50);
    assert_eq!(LIVE.load(Ordering::Relaxed), 0);
}
