//! Evasion cases: every placement of an overlapping segment against a held
//! one, under every overlap policy, with the bytes each policy must deliver.
//!
//! The held (first) segment covers stream offsets [8, 16) with `o`. A second
//! segment with `n` bytes arrives before the hole [0, 8) is filled; then the
//! hole is filled with `.`. What a receiving host keeps follows the
//! target-based model of Novak & Sturges, "Target-Based TCP Stream
//! Reassembly" (2007), as implemented by IDS engines that follow it:
//!
//! * first / Windows Vista+: the earlier copy always;
//! * last: the later copy always;
//! * BSD, Windows (pre-Vista), macOS, HP-UX 10, IRIX: the later copy only
//!   where it starts before the held segment;
//! * Linux: as BSD, and also when it starts with the held segment and ends
//!   beyond it;
//! * old Linux: as Linux, and also on an exact overlap;
//! * Solaris, HP-UX 11: the later copy where it reaches the held segment's end
//!   (starting before or with it), or starts inside and ends beyond it.
//!
//! A last case overlaps data already delivered: no policy can take delivered
//! bytes back, so the earlier copy stands and the overlap is counted.

use std::net::IpAddr;

use weft_reasm::{
    Config, ConnInfo, Context, Event, OverlapPolicy, Reassembler, ScatterGather, Segment, Stream,
    StreamFactory,
};
use weft_wire::{FlowKey, Seq, TcpFlags, Timestamp};

use OverlapPolicy::*;

#[derive(Default)]
struct Out {
    bytes: Vec<u8>,
    conflicts: Vec<(u64, u32, bool)>,
}
struct S(std::rc::Rc<std::cell::RefCell<Out>>);
impl Stream for S {
    fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
        sg.copy_to(&mut self.0.borrow_mut().bytes);
    }
    fn event(&mut self, e: &Event, _: &Context) {
        if let Event::OverlapConflict {
            offset,
            len,
            new_won,
            ..
        } = e
        {
            self.0
                .borrow_mut()
                .conflicts
                .push((*offset, *len, *new_won));
        }
    }
}
struct Fac(std::rc::Rc<std::cell::RefCell<Out>>);
impl StreamFactory for Fac {
    type Stream = S;
    fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> S {
        S(self.0.clone())
    }
}

/// Client data after a SYN with ISN `u32::MAX - 4` (so offsets cross the
/// wrap): `parts` are (offset, bytes) in arrival order.
fn reassemble(policy: OverlapPolicy, parts: &[(u32, Vec<u8>)]) -> Out {
    let a: IpAddr = "203.0.113.9".parse().unwrap();
    let b: IpAddr = "198.51.100.80".parse().unwrap();
    let (key, dir) = FlowKey::new(a, 51000, b, 80, 0);
    let isn = u32::MAX - 4;
    let out = std::rc::Rc::new(std::cell::RefCell::new(Out::default()));
    let mut r = Reassembler::new(
        Config {
            overlap_policy: policy,
            ..Config::default()
        },
        Fac(out.clone()),
    );
    fn seg(
        key: FlowKey,
        dir: weft_wire::Dir,
        flags: TcpFlags,
        seq: u32,
        payload: &[u8],
    ) -> Segment<'_> {
        Segment::new(key, dir, Seq(seq), flags, payload, Timestamp(1))
    }
    r.process(&seg(key, dir, TcpFlags::SYN, isn, &[]));
    for (off, bytes) in parts {
        r.process(&seg(
            key,
            dir,
            TcpFlags::ACK,
            isn.wrapping_add(1).wrapping_add(*off),
            bytes,
        ));
        assert!(r.stats().balanced());
    }
    r.flush_all();
    assert!(r.stats().balanced());
    drop(r);
    std::rc::Rc::try_unwrap(out).ok().unwrap().into_inner()
}

/// (name, new segment [start, end), policies where the new copy wins)
const CASES: &[(&str, u32, u32, &[OverlapPolicy])] = &[
    (
        "starts before, ends before held start (no overlap)",
        2,
        6,
        &[],
    ),
    (
        "starts before, ends inside",
        4,
        12,
        &[Last, Bsd, Windows, Linux, OldLinux],
    ),
    (
        "starts before, ends at held end",
        4,
        16,
        &[Last, Bsd, Windows, Linux, OldLinux, Solaris],
    ),
    (
        "starts before, ends after",
        4,
        20,
        &[Last, Bsd, Windows, Linux, OldLinux, Solaris],
    ),
    ("same start, ends inside", 8, 12, &[Last]),
    ("exact duplicate", 8, 16, &[Last, OldLinux, Solaris]),
    (
        "same start, ends after",
        8,
        20,
        &[Last, Linux, OldLinux, Solaris],
    ),
    ("starts inside, ends inside", 10, 14, &[Last]),
    ("starts inside, ends at held end", 10, 16, &[Last]),
    ("starts inside, ends after", 10, 20, &[Last, Solaris]),
    ("starts at held end (adjacent, no overlap)", 16, 20, &[]),
];

/// The policies under which the new copy wins in the placement `name`.
fn winners_of(name: &str) -> &'static [OverlapPolicy] {
    CASES
        .iter()
        .find(|c| c.0 == name)
        .expect("a placement of the table")
        .3
}

#[test]
fn every_placement_under_every_policy() {
    for &(name, ns, ne, winners) in CASES {
        for policy in OverlapPolicy::ALL {
            let held = (8u32, vec![b'o'; 8]);
            let new = (ns, vec![b'n'; (ne - ns) as usize]);
            let out = reassemble(policy, &[held, new, (0, vec![b'.'; 8])]);
            // Expected: '.' for [0,8) unless the new segment covers it (it
            // arrived before the filler, so first-come there), then per byte
            // the held copy or the new copy where they overlap.
            let end = ne.max(16) as usize;
            let mut want = vec![b'.'; end];
            for (i, w) in want.iter_mut().enumerate() {
                let i = i as u32;
                let in_held = (8..16).contains(&i);
                let in_new = (ns..ne).contains(&i);
                *w = match (in_held, in_new) {
                    (true, true) => {
                        if winners.contains(&policy) {
                            b'n'
                        } else {
                            b'o'
                        }
                    }
                    (true, false) => b'o',
                    // new before the filler: first copy wins except under
                    // Last and the policies where a later copy starting
                    // before the earlier wins (the filler starts at 0 < ns)
                    (false, true) => {
                        // The filler [0, 8) against the new copy: it starts
                        // before it, and ends inside it or after it; who
                        // wins is the table's own row for that placement
                        // (not the policy code under test).
                        let placement = if ne > 8 {
                            "starts before, ends inside"
                        } else {
                            "starts before, ends after"
                        };
                        let filler_wins = i < 8 && winners_of(placement).contains(&policy);
                        if filler_wins {
                            b'.'
                        } else {
                            b'n'
                        }
                    }
                    (false, false) => b'.',
                };
            }
            assert_eq!(
                String::from_utf8_lossy(&out.bytes),
                String::from_utf8_lossy(&want),
                "{name} under {policy}"
            );
            let overlaps = ns < 16 && ne > 8;
            if overlaps {
                let c = out
                    .conflicts
                    .iter()
                    .find(|c| c.0 >= 8)
                    .expect("conflict reported");
                assert_eq!(
                    c.2,
                    winners.contains(&policy),
                    "{name} under {policy}: event says who won"
                );
            }
        }
    }
}

#[test]
fn overlap_with_delivered_data_keeps_what_was_delivered() {
    for policy in OverlapPolicy::ALL {
        let out = reassemble(
            policy,
            &[(0, b"GET /index".to_vec()), (4, b"/evil.html".to_vec())],
        );
        // bytes 4..10 were delivered as "/index"; only "html" (10..14) is new
        assert_eq!(out.bytes, b"GET /indexhtml", "{policy}");
    }
}
