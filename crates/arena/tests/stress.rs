//! Stress: pages handed between many threads and dropped anywhere; afterwards
//! every page is back and the counters reconcile. Default sizes run in about a
//! second; set `WEFT_STRESS_ITEMS` for a long run.
#![cfg(not(weft_loom))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use weft_arena::{Arena, ArenaConfig, PageRef};

fn items(default: usize) -> usize {
    std::env::var("WEFT_STRESS_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const WORKERS: usize = 4;

fn config() -> ArenaConfig {
    ArenaConfig {
        page_size: 256,
        pages_per_segment: 64,
        max_pages: 1024,
        huge_pages: false,
    }
}

/// A page with the item number it was stamped with.
type Item = (u64, PageRef);

/// Workers check that a page still holds the stamp of the item it was sent
/// as (a page reused while referenced holds another item's, or a torn one),
/// sometimes forward a clone to the next worker, and drop. Returns after all
/// channels close.
fn spawn_workers() -> (Vec<mpsc::Sender<Item>>, Vec<thread::JoinHandle<u64>>) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..WORKERS).map(|_| mpsc::channel::<Item>()).unzip();
    let mut handles = Vec::new();
    for (i, rx) in rxs.into_iter().enumerate() {
        let next = (i + 1 < WORKERS).then(|| txs[i + 1].clone());
        handles.push(thread::spawn(move || {
            let mut seen = 0u64;
            for (item, page) in rx {
                let stamp = u64::from_le_bytes(page[..8].try_into().unwrap());
                assert!(
                    stamp == item && page[8..16].iter().all(|&b| b == item as u8),
                    "page reused while referenced: item {item}, stamp {stamp}"
                );
                seen += 1;
                if let Some(next) = &next {
                    if item % 3 == 0 {
                        next.send((item, page.clone())).unwrap();
                    }
                }
            }
            seen
        }));
    }
    (txs, handles)
}

/// Deliveries `n` items make: each reaches its worker, and every third
/// is forwarded down the chain to the last worker.
fn deliveries(n: u64) -> u64 {
    let w = WORKERS as u64;
    (0..n).map(|i| if i % 3 == 0 { w - i % w } else { 1 }).sum()
}

fn stamp(page: &mut [u8], n: u64) {
    page[..8].copy_from_slice(&n.to_le_bytes());
    page[8..16].fill(n as u8);
}

#[test]
fn pages_cross_threads_and_come_back() {
    let n = items(10_000_000) / 50;
    let mut arena = Arena::new(config()).unwrap();
    let monitor = arena.monitor();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let s = monitor.stats();
                assert!(s.pages_total <= 1024 && s.pages_in_use <= s.pages_total);
                assert_eq!(s.pages_total, s.segments * 64);
                reads += 1;
                thread::yield_now();
            }
            reads
        })
    };
    let (txs, handles) = spawn_workers();
    let mut local_kept: Vec<PageRef> = Vec::new();
    let mut sent = 0u64;
    for i in 0..n as u64 {
        let mut page = loop {
            match arena.alloc() {
                Some(p) => break p,
                None => {
                    local_kept.clear(); // owner-side drops: local return path
                    thread::yield_now();
                }
            }
        };
        stamp(&mut page, i);
        let page = page.freeze();
        if i % 4 == 0 {
            local_kept.push(page.clone());
            if local_kept.len() > 64 {
                local_kept.drain(..32);
            }
        }
        txs[(i as usize) % WORKERS].send((i, page)).unwrap();
        sent += 1;
    }
    drop(txs);
    let seen: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(seen, deliveries(sent));
    drop(local_kept);
    stop.store(true, Ordering::Relaxed);
    assert!(watcher.join().unwrap() > 0);
    arena.reclaim();
    let s = arena.stats();
    assert_eq!(s.pages_in_use, 0, "{s:?}");
    assert!(s.pages_total <= 1024);
    assert!(s.returned_remote > 0);
    // Every page is back: the whole cap can be allocated, all distinct.
    let all: Vec<_> = std::iter::from_fn(|| arena.alloc()).collect();
    assert_eq!(all.len(), 1024);
    let mut addrs: Vec<_> = all.iter().map(|p| p.as_ptr() as usize).collect();
    addrs.sort_unstable();
    addrs.dedup();
    assert_eq!(addrs.len(), 1024);
}

/// The owner drops its arena while other threads still hold pages; the last of
/// them frees the mappings. Repeated to hit different orders.
#[test]
fn arena_dropped_while_pages_live_elsewhere() {
    let rounds = (items(10_000_000) / 50_000).max(10);
    for round in 0..rounds {
        let mut arena = Arena::new(config()).unwrap();
        let monitor = arena.monitor();
        let pages: Vec<PageRef> = (0..32)
            .map(|i| {
                let mut p = arena.alloc().unwrap();
                stamp(&mut p, i);
                p.freeze()
            })
            .collect();
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let mine: Vec<PageRef> = pages.iter().skip(w).step_by(WORKERS).cloned().collect();
                thread::spawn(move || {
                    for p in mine {
                        let stamp = u64::from_le_bytes(p[..8].try_into().unwrap());
                        assert!(p[8..16].iter().all(|&b| b == stamp as u8));
                    }
                })
            })
            .collect();
        if round % 2 == 0 {
            drop(arena);
            drop(pages);
        } else {
            drop(pages);
            drop(arena);
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(monitor.stats().pages_in_use, 0);
    }
}
