//! Unit tests of the arena on one or two threads.

use super::*;
use std::collections::HashSet;

fn small(max: usize, per_seg: usize) -> Arena {
    Arena::new(ArenaConfig {
        page_size: 64,
        pages_per_segment: per_seg,
        max_pages: max,
        huge_pages: false,
    })
    .unwrap()
}

#[test]
fn grows_to_cap_and_no_further() {
    let mut a = small(10, 4);
    let pages: Vec<_> = (0..10).map(|_| a.alloc().unwrap()).collect();
    let addrs: HashSet<_> = pages.iter().map(|p| p.as_ptr() as usize).collect();
    assert_eq!(addrs.len(), 10);
    assert!(a.alloc().is_none());
    let s = a.stats();
    assert_eq!(
        (s.pages_total, s.segments, s.alloc_failures, s.pages_in_use),
        (10, 3, 1, 10)
    );
    drop(pages);
    assert_eq!(a.stats().pages_in_use, 0);
}

#[test]
fn refcount_and_get_mut() {
    let mut a = small(2, 2);
    let mut p = a.alloc().unwrap().freeze();
    assert!(p.get_mut().is_some());
    let q = p.clone();
    assert_eq!(q.ref_count(), 2);
    assert!(p.get_mut().is_none());
    let p = p.try_into_mut().unwrap_err();
    drop(q);
    let mut m = p.try_into_mut().unwrap();
    m[0] = 1;
    assert_eq!(a.stats().pages_in_use, 1);
}

#[test]
fn remote_drop_then_arena_drop_first() {
    let mut a = small(4, 4);
    let p = a.alloc().unwrap().freeze();
    let q = p.clone();
    let m = a.monitor();
    drop(a); // pages still out: the core stays mapped
    assert_eq!(m.stats().pages_in_use, 1);
    let t = std::thread::spawn(move || {
        assert_eq!(q.len(), 64);
        drop(q);
    });
    t.join().unwrap();
    drop(p); // last one: frees the core on this (owner) thread via the orphan path
}

#[test]
fn huge_page_request_reports_result() {
    let a = Arena::new(ArenaConfig {
        huge_pages: true,
        ..Default::default()
    })
    .unwrap();
    let s = a.stats();
    assert_eq!(s, a.monitor().stats());
}
