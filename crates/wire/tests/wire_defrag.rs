//! Defragmentation: in order, reversed, overlapping, duplicate, timeout,
//! limits, IPv4 and IPv6, and a random fragment flood.

mod common;

use common::*;
use proptest::prelude::*;
use std::net::IpAddr;
use weft_wire::{
    decode_ip, decode_ip_in, DecodeOptions, Decoded, DefragConfig, DefragPolicy, Defragmenter,
    Fragment, Reassembled, Timestamp, Zone,
};

/// IPv4 fragments of `pkt` (20-byte header) with `chunk`-byte pieces.
fn frag_v4(pkt: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let (h, data) = pkt.split_at(20);
    data.chunks(chunk)
        .enumerate()
        .map(|(i, c)| {
            let off = i * chunk;
            let more = off + c.len() < data.len();
            let word = (off / 8) as u16 | if more { 0x2000 } else { 0 };
            ipv4_full(A4, B4, h[9], &[], u16::from_be_bytes([h[4], h[5]]), word, c)
        })
        .collect()
}

/// IPv6 fragments of `pkt`, whose first `unfrag` bytes (fixed header plus
/// a hop-by-hop header when `unfrag > 40`) are repeated in each fragment.
fn frag_v6(pkt: &[u8], unfrag: usize, chunk: usize, id: u32) -> Vec<Vec<u8>> {
    let (h, data) = pkt.split_at(unfrag);
    let next = if unfrag > 40 { h[40] } else { h[6] };
    data.chunks(chunk)
        .enumerate()
        .map(|(i, c)| {
            let off = i * chunk;
            let more = off + c.len() < data.len();
            let mut f = h.to_vec();
            if unfrag > 40 {
                f[40] = 44;
            } else {
                f[6] = 44;
            }
            f.extend([next, 0]);
            f.extend((((off / 8) as u16) << 3 | more as u16).to_be_bytes());
            f.extend(id.to_be_bytes());
            f.extend(c);
            let plen = (f.len() - 40) as u16;
            f[4..6].copy_from_slice(&plen.to_be_bytes());
            f
        })
        .collect()
}

fn as_frag(pkt: &[u8]) -> Fragment<'_> {
    match decode_ip(pkt, 0, &DecodeOptions::default()) {
        Ok(Decoded::Fragment(f)) => f,
        other => panic!("not a fragment: {other:?}"),
    }
}

fn push_all(d: &mut Defragmenter, frags: &[Vec<u8>], t: u64) -> Option<Reassembled> {
    let mut out = None;
    for f in frags {
        if let Some(r) = d.push(&as_frag(f), Timestamp(t)) {
            assert!(out.is_none(), "completed twice");
            out = Some(r);
        }
    }
    out
}

fn v4_datagram(len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let seg = checksum_v4(A4, B4, tcp(1234, 80, 1, &[], &payload));
    ipv4_full(A4, B4, 6, &[], 0x7777, 0, &seg)
}

fn v6_datagram(len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    let seg = checksum_v6(A6, B6, tcp(1234, 80, 1, &[], &payload));
    let mut rest = vec![6, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop
    rest.extend(seg);
    ipv6(A6, B6, 0, &rest)
}

fn check_tcp(r: &Reassembled, len: usize) {
    let opts = DecodeOptions {
        verify_checksums: true,
        ..DecodeOptions::default()
    };
    match decode_ip(&r.packet, r.vlan, &opts) {
        Ok(Decoded::Tcp(p)) => {
            assert_eq!(p.payload.len(), len);
            assert_eq!(p.checksum_ok, Some(true));
        }
        other => panic!("{other:?}"),
    }
}

/// Fragments with equal addresses and ID in two VXLAN or Geneve networks
/// belong to two datagrams, each rebuilt in its own network.
#[test]
fn fragments_of_two_networks_stay_apart() {
    let pkt = v4_datagram(1000);
    let frags = frag_v4(&pkt, 256);
    let mut d = Defragmenter::new(DefragConfig::default());
    let mut done = Vec::new();
    for f in &frags {
        for vni in [1, 2] {
            let frag = Fragment { vni, ..as_frag(f) };
            done.extend(d.push(&frag, Timestamp(1)));
        }
    }
    assert_eq!(done.len(), 2, "one datagram a network");
    assert_eq!((done[0].vni, done[1].vni), (1, 2));
    assert!(done.iter().all(|r| r.packet == pkt));
    assert_eq!(
        done[1].zone(),
        Zone {
            vlan: 0,
            vni: 2,
            ends: 0
        }
    );
    match decode_ip_in(&done[1].packet, done[1].zone(), &DecodeOptions::default()) {
        Ok(Decoded::Tcp(p)) => assert_eq!(p.key.vni(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.stats().dropped_overlap, 0);
}

#[test]
fn v4_in_order_and_reversed() {
    let pkt = v4_datagram(1000);
    let frags = frag_v4(&pkt, 256);
    assert_eq!(frags.len(), 4);
    let mut d = Defragmenter::new(DefragConfig::default());
    let r = push_all(&mut d, &frags, 1).expect("complete");
    assert_eq!(r.packet, pkt);
    check_tcp(&r, 1000);
    let rev: Vec<_> = frags.iter().rev().cloned().collect();
    assert_eq!(push_all(&mut d, &rev, 2).expect("complete").packet, pkt);
    let s = d.stats();
    assert_eq!((s.fragments, s.reassembled, s.dropped_overlap), (8, 2, 0));
    assert_eq!(d.in_progress(), 0);
    assert_eq!(d.buffered_bytes(), 0);
}

#[test]
fn v6_in_order_and_shuffled() {
    let pkt = v6_datagram(2000);
    for unfrag in [40, 48] {
        let pkt = if unfrag == 40 {
            // No hop-by-hop header: TCP right after the fixed header.
            let seg = checksum_v6(A6, B6, tcp(1234, 80, 1, &[], &[3u8; 2000]));
            ipv6(A6, B6, 6, &seg)
        } else {
            pkt.clone()
        };
        let mut frags = frag_v6(&pkt, unfrag, 512, 99);
        let mut d = Defragmenter::new(DefragConfig::default());
        let r = push_all(&mut d, &frags, 1).expect("complete");
        assert_eq!(r.packet, pkt);
        check_tcp(&r, 2000);
        frags.swap(0, 2);
        frags.swap(1, 3);
        assert_eq!(push_all(&mut d, &frags, 1).expect("complete").packet, pkt);
    }
}

/// IPv6 fragments of one packet may name different next headers (RFC
/// 8200 §4.5: the offset-0 fragment's counts): they are one datagram, as
/// for the receiving host, whichever fragment comes first. (Keyed by the
/// next header too, they were two datagrams that never completed.)
#[test]
fn v6_fragments_naming_other_next_headers_are_one_datagram() {
    let seg = checksum_v6(A6, B6, tcp(1234, 80, 1, &[], &[5u8; 1500]));
    let pkt = ipv6(A6, B6, 6, &seg);
    let mut frags = frag_v6(&pkt, 40, 512, 7);
    for f in &mut frags[1..] {
        f[40] = 17; // the fragment header's next header: UDP
    }
    for reversed in [false, true] {
        if reversed {
            frags.reverse();
        }
        let mut d = Defragmenter::new(DefragConfig::default());
        let r = push_all(&mut d, &frags, 1).expect("complete");
        assert_eq!(r.packet, pkt, "reversed: {reversed}");
        check_tcp(&r, 1500);
    }
}

#[test]
fn overlap_first_wins() {
    let pkt = v4_datagram(64);
    let frags = frag_v4(&pkt, 48); // 84-byte payload: 48 + 36
    let mut d = Defragmenter::new(DefragConfig::default());
    assert!(d.push(&as_frag(&frags[0]), Timestamp(0)).is_none());
    // A forged fragment rewriting bytes 40..56 with 0xee.
    let forged = ipv4_full(A4, B4, 6, &[], 0x7777, 0x2000 | 5, &[0xee; 16]);
    assert!(d.push(&as_frag(&forged), Timestamp(0)).is_none());
    let r = d.push(&as_frag(&frags[1]), Timestamp(0)).expect("complete");
    // Bytes 40..48 came first from the real fragment; 48..56 first from
    // the forged one.
    assert_eq!(&r.packet[20 + 40..20 + 48], &pkt[20 + 40..20 + 48]);
    assert_eq!(&r.packet[20 + 48..20 + 56], &[0xee; 8]);
    assert_eq!(d.stats().dropped_overlap, 2);
}

/// IPv6 forbids overlapping fragments (RFC 5722): an overlap abandons the
/// datagram, as the host does, so nothing reassembled differs from what
/// it accepted. An exact duplicate is only dropped.
#[test]
fn v6_overlaps_abandon_the_datagram_but_duplicates_do_not() {
    let pkt = v6_datagram(200);
    let frags = frag_v6(&pkt, 48, 64, 7);
    let mut d = Defragmenter::new(DefragConfig::default());
    assert!(d.push(&as_frag(&frags[0]), Timestamp(0)).is_none());
    assert!(d.push(&as_frag(&frags[0]), Timestamp(0)).is_none());
    assert_eq!(d.in_progress(), 1, "an exact duplicate keeps the datagram");
    // Bytes 56..72 of the payload rewritten: overlaps the first fragment.
    let mut forged = frags[1].clone();
    let at = 48; // the fragment header, after the fixed and hop-by-hop ones
    forged[at + 2..at + 4].copy_from_slice(&((56u16 / 8) << 3 | 1).to_be_bytes());
    forged.truncate(at + 8 + 16);
    let plen = (forged.len() - 40) as u16;
    forged[4..6].copy_from_slice(&plen.to_be_bytes());
    assert!(d.push(&as_frag(&forged), Timestamp(0)).is_none());
    assert_eq!(d.stats().abandoned_overlap, 1);
    assert!(
        d.buffered_bytes() <= 128,
        "its buffers went: {}",
        d.buffered_bytes()
    );
    // The datagram's other fragments go with it: no new datagram that
    // would be counted again when it timed out.
    assert!(push_all(&mut d, &frags, 0).is_none());
    d.expire(Timestamp(u64::MAX));
    assert_eq!((d.stats().dropped(), d.in_progress()), (1, 0));
    // An overlapping last fragment abandons it too (before any length
    // test could merely reject the fragment).
    let mut d = Defragmenter::new(DefragConfig::default());
    assert!(d.push(&as_frag(&frags[0]), Timestamp(0)).is_none());
    let mut last = forged.clone();
    last[at + 2..at + 4].copy_from_slice(&((8u16 / 8) << 3).to_be_bytes());
    assert!(d.push(&as_frag(&last), Timestamp(0)).is_none());
    assert_eq!(d.stats().abandoned_overlap, 1);
    // A fragment inside bytes already held, with other bytes: an overlap
    // too, not a duplicate.
    let mut d = Defragmenter::new(DefragConfig::default());
    assert!(d.push(&as_frag(&frags[0]), Timestamp(0)).is_none());
    let mut inside = frags[0].clone();
    inside[at + 2..at + 4].copy_from_slice(&((8u16 / 8) << 3 | 1).to_be_bytes());
    inside.truncate(at + 8 + 16);
    inside[at + 8..].fill(0xee);
    let plen = (inside.len() - 40) as u16;
    inside[4..6].copy_from_slice(&plen.to_be_bytes());
    assert!(d.push(&as_frag(&inside), Timestamp(0)).is_none());
    assert_eq!(d.stats().abandoned_overlap, 1);
    // Without the forgery, the same fragments (one twice) complete it.
    let mut d = Defragmenter::new(DefragConfig::default());
    let mut twice = frags.clone();
    twice.insert(2, frags[1].clone());
    assert_eq!(push_all(&mut d, &twice, 0).expect("complete").packet, pkt);
    assert_eq!(d.stats().abandoned_overlap, 0);
}

/// A last fragment the capture cut short rebuilds a datagram whose
/// headers promise the whole length over the bytes captured: decoded, the
/// segment reports the tail as missing. Any other cut fragment is dropped
/// alone (counted): its datagram times out, unless that part comes whole
/// (a fragment whose IP length lies, which a host drops, must not take the
/// genuine fragments with it: it used to abandon the datagram, blinding
/// the reassembly to it for the timeout).
#[test]
fn fragments_cut_by_the_capture() {
    let pkt = v4_datagram(300);
    let frags = frag_v4(&pkt, 160);
    assert_eq!(frags.len(), 2);
    let cut = &frags[1][..frags[1].len() - 30];
    let mut d = Defragmenter::new(DefragConfig::default());
    assert!(d.push(&as_frag(&frags[0]), Timestamp(0)).is_none());
    let r = d.push(&as_frag(cut), Timestamp(0)).expect("complete");
    match decode_ip(&r.packet, 0, &DecodeOptions::default()) {
        Ok(Decoded::Tcp(p)) => {
            assert_eq!(p.payload.len(), 270);
            assert_eq!(p.payload_missing, 30);
        }
        other => panic!("{other:?}"),
    }
    // Cut at any length (here not a multiple of 8): dropped alone; the
    // datagram times out.
    let cut = &frags[0][..frags[0].len() - 13];
    assert!(d.push(&as_frag(cut), Timestamp(0)).is_none());
    assert!(d.push(&as_frag(&frags[1]), Timestamp(0)).is_none());
    d.expire(Timestamp(u64::MAX));
    let st = d.stats();
    assert_eq!((st.dropped_truncated, st.timed_out), (1, 1), "{st:?}");
    assert_eq!(d.in_progress(), 0);
    // The same fragment then whole (a lie before it, or the capture's cut
    // and a retransmission): the datagram completes.
    let mut d = Defragmenter::new(DefragConfig::default());
    assert!(d.push(&as_frag(cut), Timestamp(0)).is_none());
    assert!(d.push(&as_frag(&frags[0]), Timestamp(0)).is_none());
    let r = d.push(&as_frag(&frags[1]), Timestamp(0)).expect("complete");
    assert_eq!(r.packet, pkt);
    assert_eq!(d.stats().dropped_truncated, 1);
}

/// One fragment stamped far in the future does not hold back the expiry
/// of the datagrams that begin after it.
#[test]
fn a_fragment_from_the_future_does_not_stop_timeouts() {
    let cfg = DefragConfig {
        timeout_ns: 1_000,
        ..DefragConfig::default()
    };
    let mut d = Defragmenter::new(cfg);
    let first = |id| ipv4_full(A4, B4, 6, &[], id, 0x2000, &[0; 8]);
    assert!(d.push(&as_frag(&first(1)), Timestamp(1 << 62)).is_none());
    assert!(d.push(&as_frag(&first(2)), Timestamp(10)).is_none());
    d.expire(Timestamp(5_000));
    assert_eq!(d.stats().timed_out, 1);
    assert_eq!(d.in_progress(), 1);
}

#[test]
fn duplicates_are_harmless() {
    let pkt = v4_datagram(500);
    let frags = frag_v4(&pkt, 128);
    let mut d = Defragmenter::new(DefragConfig::default());
    for f in &frags[..frags.len() - 1] {
        assert!(d.push(&as_frag(f), Timestamp(0)).is_none());
        assert!(d.push(&as_frag(f), Timestamp(0)).is_none());
    }
    let r = d
        .push(&as_frag(frags.last().unwrap()), Timestamp(0))
        .unwrap();
    assert_eq!(r.packet, pkt);
    assert_eq!(d.stats().dropped_overlap, frags.len() as u64 - 1);
}

#[test]
fn timeout_discards() {
    let pkt = v4_datagram(300);
    let frags = frag_v4(&pkt, 160);
    let cfg = DefragConfig {
        timeout_ns: 1_000,
        ..DefragConfig::default()
    };
    let mut d = Defragmenter::new(cfg);
    assert!(d.push(&as_frag(&frags[0]), Timestamp(0)).is_none());
    d.expire(Timestamp(1_000));
    assert_eq!(d.in_progress(), 1);
    d.expire(Timestamp(1_001));
    assert_eq!(d.in_progress(), 0);
    assert_eq!(d.stats().timed_out, 1);
    assert!(d.push(&as_frag(&frags[1]), Timestamp(1_002)).is_none());
    // The late fragment started a new datagram, which also times out.
    assert!(d.push(&as_frag(&frags[0]), Timestamp(5_000)).is_none());
    assert_eq!(d.stats().timed_out, 2);
}

#[test]
fn datagram_count_limit_evicts_oldest() {
    let cfg = DefragConfig {
        max_datagrams: 4,
        ..DefragConfig::default()
    };
    let mut d = Defragmenter::new(cfg);
    for id in 0..10u16 {
        let f = ipv4_full(A4, B4, 6, &[], id, 0x2000, &[0; 8]);
        assert!(d.push(&as_frag(&f), Timestamp(u64::from(id))).is_none());
        assert!(d.in_progress() <= 4);
    }
    assert_eq!(d.stats().dropped_limit, 6);
    // The newest survive: completing id 9 works, id 0 does not.
    let last = |id| ipv4_full(A4, B4, 6, &[], id, 1, &[0; 8]);
    assert!(d.push(&as_frag(&last(9)), Timestamp(20)).is_some());
    assert!(d.push(&as_frag(&last(0)), Timestamp(20)).is_none());
}

#[test]
fn byte_limit_holds() {
    let cfg = DefragConfig {
        max_bytes: 10_000,
        ..DefragConfig::default()
    };
    let mut d = Defragmenter::new(cfg);
    for id in 0..50u16 {
        let f = ipv4_full(A4, B4, 6, &[], id, 0x2000 | 100, &[0; 800]);
        d.push(&as_frag(&f), Timestamp(0));
        assert!(d.buffered_bytes() <= 10_000, "{}", d.buffered_bytes());
    }
    assert!(d.stats().dropped_limit > 0);
    // One fragment larger than the whole budget is refused.
    let held = d.in_progress();
    let f = ipv4_full(A4, B4, 6, &[], 999, 0x2000, &[0; 12_000]);
    assert!(d.push(&as_frag(&f), Timestamp(0)).is_none());
    assert_eq!(d.in_progress(), held);
    assert!(d.buffered_bytes() <= 10_000, "{}", d.buffered_bytes());
}

#[test]
fn a_tiny_fragment_far_into_a_datagram_costs_its_own_size() {
    // 8 bytes at offset 65,000: a datagram buffer filled up to the offset
    // would cost 64 KiB of zeroes (on the dispatcher's thread) and a
    // 16 MiB budget would hold 250 such datagrams.
    let mut d = Defragmenter::new(DefragConfig::default());
    for id in 0..1_000u16 {
        let f = ipv4_full(A4, B4, 6, &[], id, 0x2000 | (65_000 / 8), &[7; 8]);
        assert!(d.push(&as_frag(&f), Timestamp(0)).is_none());
    }
    assert_eq!(d.in_progress(), 1_000, "none evicted");
    // Its data, header, ranges, a leaf of its run tree and the fixed
    // overhead: about 330 bytes.
    assert!(
        d.buffered_bytes() < 1_000 * 512,
        "{} bytes for 1,000 fragments of 8",
        d.buffered_bytes()
    );
    assert_eq!(d.stats().dropped_limit, 0);
}

#[test]
fn invalid_fragments() {
    let mut d = Defragmenter::new(DefragConfig::default());
    // Beyond 65535 bytes.
    let f = ipv4_full(A4, B4, 6, &[], 1, 8190, &[0; 16]);
    assert!(d.push(&as_frag(&f), Timestamp(0)).is_none());
    // Non-last fragment not a multiple of 8.
    let f = ipv4_full(A4, B4, 6, &[], 2, 0x2000, &[0; 12]);
    assert!(d.push(&as_frag(&f), Timestamp(0)).is_none());
    // Two different ends.
    let a = ipv4_full(A4, B4, 6, &[], 3, 2, &[0; 8]);
    let b = ipv4_full(A4, B4, 6, &[], 3, 3, &[0; 8]);
    assert!(d.push(&as_frag(&a), Timestamp(0)).is_none());
    assert!(d.push(&as_frag(&b), Timestamp(0)).is_none());
    assert_eq!(d.stats().dropped_invalid, 3);
    // Too long once the header is added: offset 65512 + 16 = 65528 payload
    // plus a 20-byte header.
    let mut d = Defragmenter::new(DefragConfig::default());
    let hi = ipv4_full(A4, B4, 6, &[], 4, 8189, &[0; 16]);
    assert!(d.push(&as_frag(&hi), Timestamp(0)).is_none());
    let mut offset = 0;
    while offset < 65512 {
        let f = ipv4_full(A4, B4, 6, &[], 4, 0x2000 | (offset / 8) as u16, &[0; 1480]);
        assert!(d.push(&as_frag(&f), Timestamp(0)).is_none());
        offset += 1480;
    }
    assert!(d.stats().dropped_invalid >= 1);
    assert_eq!(d.stats().reassembled, 0);
}

fn any_frag() -> impl Strategy<Value = (u16, u16, bool, usize, bool)> {
    (
        0u16..6,
        0u16..8192,
        any::<bool>(),
        0usize..200,
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A random flood, under any policy: never panics, limits always hold.
    #[test]
    fn flood_respects_limits(
        frags in proptest::collection::vec(any_frag(), 1..300),
        policy in proptest::sample::select(DefragPolicy::ALL.to_vec()),
    ) {
        let cfg = DefragConfig { max_datagrams: 3, max_bytes: 40_000, timeout_ns: 50, policy, ..DefragConfig::default() };
        let mut d = Defragmenter::new(cfg);
        for (i, (id, off, more, len, v6)) in frags.into_iter().enumerate() {
            let word = off | if more { 0x2000 } else { 0 };
            let pkt = if v6 {
                let mut rest = vec![6, 0];
                rest.extend(((off << 3) | more as u16).to_be_bytes());
                rest.extend(u32::from(id).to_be_bytes());
                rest.extend(vec![1u8; len]);
                ipv6(A6, B6, 44, &rest)
            } else {
                ipv4_full(A4, B4, 6, &[], id, word, &vec![1u8; len])
            };
            if let Ok(Decoded::Fragment(f)) = decode_ip(&pkt, 0, &DecodeOptions::default()) {
                if let Some(r) = d.push(&f, Timestamp(i as u64)) {
                    prop_assert!(r.packet.len() <= 65535 + 40);
                    let _ = decode_ip(&r.packet, r.vlan, &DecodeOptions::default());
                }
            }
            prop_assert!(d.in_progress() <= 3);
            prop_assert!(d.buffered_bytes() <= 40_000);
        }
        let _ = IpAddr::from(A4);
    }
}

#[test]
fn vlan_is_carried_through_reassembly() {
    use weft_wire::{decode, LinkType};
    let pkt = v4_datagram(100);
    let frames: Vec<_> = frag_v4(&pkt, 64)
        .iter()
        .map(|f| eth(0x8100, &tag(12, 0x0800, f)))
        .collect();
    fn fragment(f: &[u8]) -> weft_wire::Fragment<'_> {
        match decode(LinkType::Ethernet, f, &DecodeOptions::default()) {
            Ok(Decoded::Fragment(fr)) => fr,
            other => panic!("{other:?}"),
        }
    }
    let mut d = Defragmenter::new(DefragConfig::default());
    let (last, rest) = frames.split_last().unwrap();
    for f in rest {
        assert!(d.push(&fragment(f), Timestamp(0)).is_none());
    }
    // The same first fragment on another VLAN, while VLAN 12's datagram is
    // in progress: another datagram, which neither completes nor spoils it.
    let other = eth(0x8100, &tag(13, 0x0800, &frag_v4(&pkt, 64)[0]));
    assert!(d.push(&fragment(&other), Timestamp(0)).is_none());
    assert_eq!(d.in_progress(), 2);
    assert_eq!(
        d.stats().dropped_overlap,
        0,
        "not taken for a copy of VLAN 12's"
    );
    let r = d.push(&fragment(last), Timestamp(0)).expect("complete");
    assert_eq!((r.vlan, &r.packet), (12, &pkt));
    match decode_ip(&r.packet, r.vlan, &DecodeOptions::default()) {
        Ok(Decoded::Tcp(p)) => assert_eq!(p.key.vlan(), 12),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.in_progress(), 1, "VLAN 13's datagram still waits");
}

/// Fragments of one IPv4 datagram of `units` × 8 payload bytes: a tiling
/// (cut at `cuts`) plus `extras` overlapping it, each with bytes of its own,
/// pushed in the order `order` picks. `(offset, bytes, more)` each.
fn overlapping(units: u16, cuts: &[u16], extras: &[(u16, u16)]) -> Vec<(u16, Vec<u8>, bool)> {
    let mut bounds: Vec<u16> = cuts.iter().map(|c| c % units).filter(|&c| c > 0).collect();
    // Cut at 1 too: a fragment at offset 0 that is also the last would be
    // a whole datagram, not a fragment.
    bounds.extend([0, 1, units]);
    bounds.sort_unstable();
    bounds.dedup();
    let mut spans: Vec<(u16, u16)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    for &(s, l) in extras {
        let s = s % units;
        let e = (s + 1 + l % (units - s)).min(units);
        spans.push((s, if s == 0 && e == units { units - 1 } else { e }));
    }
    spans
        .iter()
        .enumerate()
        .map(|(k, &(a, b))| {
            let bytes = (a * 8..b * 8)
                .map(|i| (i as usize * 31 + k * 97) as u8)
                .collect();
            (a * 8, bytes, b < units)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Overlapping fragments in any order, under every policy: the
    /// datagram comes out once, complete, each byte from the fragment the
    /// policy favours over every other that carried it (a byte-by-byte
    /// model: first-wins keeps the first, the others replace a byte where
    /// `later_wins` favours the newcomer over the byte's owner); under
    /// `discard`, the first overlap abandons the datagram.
    #[test]
    fn overlapping_fragments_reassemble_by_the_policy(
        units in 2u16..120,
        cuts in proptest::collection::vec(any::<u16>(), 0..12),
        extras in proptest::collection::vec((any::<u16>(), any::<u16>()), 0..8),
        order in any::<u64>(),
        policy in proptest::sample::select(DefragPolicy::ALL.to_vec()),
    ) {
        check_policy(units, &cuts, &extras, order, policy)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The same with hundreds of fragments held at once (as many owners
    /// and runs: several levels of their trees).
    #[test]
    fn many_fragments_reassemble_by_the_policy(
        units in 200u16..2000,
        cuts in proptest::collection::vec(any::<u16>(), 100..400),
        extras in proptest::collection::vec((any::<u16>(), any::<u16>()), 0..60),
        order in any::<u64>(),
        policy in proptest::sample::select(DefragPolicy::ALL.to_vec()),
    ) {
        check_policy(units, &cuts, &extras, order, policy)?;
    }
}

/// The check of the policy proptests: `overlapping(units, cuts, extras)`
/// shuffled by `order`, against a byte-by-byte model under `policy`.
fn check_policy(
    units: u16,
    cuts: &[u16],
    extras: &[(u16, u16)],
    order: u64,
    policy: DefragPolicy,
) -> Result<(), TestCaseError> {
    let mut frags = overlapping(units, cuts, extras);
    // A reproducible shuffle.
    let mut x = order | 1;
    for i in (1..frags.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        frags.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let total = usize::from(units) * 8;
    if policy == DefragPolicy::Discard {
        return check_linux_queue(&frags, total, order);
    }
    // Each byte, and the fragment it came from; each fragment's span
    // as the host holds it: trimmed to start past a fragment that took
    // its front, and at its first byte kept.
    let mut model: Vec<Option<(u8, usize)>> = vec![None; total];
    let mut spans: Vec<(u32, u32)> = Vec::new();
    let mut overlapped = false;
    let cfg = DefragConfig {
        policy,
        ..DefragConfig::default()
    };
    let mut d = Defragmenter::new(cfg);
    let mut done = None;
    for (k, (off, bytes, more)) in frags.iter().enumerate() {
        let word = (off / 8) | if *more { 0x2000 } else { 0 };
        let pkt = ipv4_full(A4, B4, 17, &[], 9, word, bytes);
        let (a, b) = (u32::from(*off), u32::from(*off) + bytes.len() as u32);
        let (mut beaten, mut first) = (Vec::new(), None);
        for (i, &byte) in bytes.iter().enumerate() {
            let at = usize::from(*off) + i;
            let wins = match model[at] {
                Some((_, o)) => {
                    overlapped = true;
                    let w = policy.later_wins((a, b), spans[o]);
                    if w {
                        beaten.push(o);
                    }
                    w
                }
                None => true,
            };
            if wins {
                model[at] = Some((byte, k));
                first.get_or_insert(at as u32);
            }
        }
        beaten.sort_unstable();
        beaten.dedup();
        for o in beaten {
            let left = model.iter().position(|m| m.is_some_and(|(_, f)| f == o));
            if left.map_or(true, |p| p as u32 >= b) {
                spans[o].0 = spans[o].0.max(b);
            }
        }
        spans.push((first.unwrap_or(a), b));
        if let Some(r) = d.push(&as_frag(&pkt), Timestamp(0)) {
            done = Some(r);
            break;
        }
    }
    let _ = overlapped;
    let r = done.expect("the tiling covers the datagram");
    let want: Vec<u8> = model.iter().map(|b| b.expect("covered").0).collect();
    prop_assert_eq!(&r.packet[20..], &want[..]);
    prop_assert_eq!(r.packet.len(), 20 + total);
    Ok(())
}

/// The policy check under `discard`, against a model of Linux's fragment
/// queue (`ip_frag_queue`, `inet_frag_queue_insert`): first the lengths (a
/// last fragment ending short of what the queue reached or other than an
/// earlier last one, or a fragment past an earlier last one, kills the
/// queue), then the runs of fragments, each continuing the one that ended
/// highest (the tail): a fragment past the tail's end overlaps if it
/// starts before it; one inside a run is a duplicate, dropped alone; one
/// touching a run otherwise overlaps, and the queue is killed (the next
/// fragment starts a new one). The datagram comes out when a fragment
/// that is not a duplicate completes what was kept since the last kill.
/// `order` also flips the "more fragments" flag of some fragments (a
/// last one that is a duplicate, lengths that contradict).
fn check_linux_queue(
    frags: &[(u16, Vec<u8>, bool)],
    total: usize,
    order: u64,
) -> Result<(), TestCaseError> {
    let mut d = Defragmenter::new(DefragConfig {
        policy: DefragPolicy::Discard,
        ..DefragConfig::default()
    });
    let (mut runs, mut tail) = (Vec::<(u32, u32)>::new(), None::<(u32, u32)>);
    let (mut bytes, mut reached, mut last) = (vec![None::<u8>; total], 0u32, None::<u32>);
    let (mut kills, mut duplicates, mut invalid) = (0u64, 0u64, 0u64);
    for (k, (off, data, more)) in frags.iter().enumerate() {
        // (Never offset 0 without more to follow: that is no fragment.)
        let flip = (order.rotate_left(k as u32 * 7) & 0x1f) == 3;
        let more = (*more ^ flip) || *off == 0;
        let word = (off / 8) | if more { 0x2000 } else { 0 };
        let pkt = ipv4_full(A4, B4, 17, &[], 9, word, data);
        let (a, b) = (u32::from(*off), u32::from(*off) + data.len() as u32);
        let contradicts = if more {
            last.is_some_and(|t| b > t)
        } else {
            b < reached || last.is_some_and(|t| t != b)
        };
        let verdict = if contradicts {
            "invalid"
        } else {
            if more {
                reached = reached.max(b);
            } else {
                (reached, last) = (b, Some(b));
            }
            let touching = runs.iter().position(|&(s, e)| s < b && a < e);
            match tail {
                Some((ts, te)) if te < b => {
                    if a < te {
                        "overlap"
                    } else {
                        let start = if a == te { ts } else { a };
                        runs.retain(|&(s, _)| s != start);
                        runs.push((start, b));
                        tail = Some((start, b));
                        "new"
                    }
                }
                Some(_) => match touching {
                    None => {
                        runs.push((a, b));
                        "new"
                    }
                    Some(i) if runs[i].0 <= a && b <= runs[i].1 => "duplicate",
                    Some(_) => "overlap",
                },
                None => {
                    runs.push((a, b));
                    tail = Some((a, b));
                    "new"
                }
            }
        };
        match verdict {
            "new" => {
                for (i, &byte) in data.iter().enumerate() {
                    prop_assert!(bytes[a as usize + i].is_none(), "new bytes only");
                    bytes[a as usize + i] = Some(byte);
                }
            }
            "duplicate" => duplicates += 1,
            _ => {
                if verdict == "invalid" {
                    invalid += 1;
                } else {
                    kills += 1;
                }
                (runs, tail) = (Vec::new(), None);
                (bytes, reached, last) = (vec![None; total], 0, None);
            }
        }
        let r = d.push(&as_frag(&pkt), Timestamp(0));
        // As long as its last fragment says (a flipped one may end early).
        let held = last.map_or(&[][..], |t| &bytes[..t as usize]);
        let whole = last.is_some() && held.iter().all(Option::is_some);
        prop_assert_eq!(
            r.is_some(),
            verdict == "new" && whole,
            "{} at {}..{}",
            verdict,
            a,
            b
        );
        if let Some(r) = r {
            let want: Vec<u8> = held.iter().map(|b| b.unwrap_or_default()).collect();
            prop_assert_eq!(&r.packet[20..], &want[..]);
            break;
        }
    }
    let s = d.stats();
    prop_assert_eq!(
        (s.abandoned_overlap, s.dropped_overlap, s.dropped_invalid),
        (kills, duplicates, invalid)
    );
    Ok(())
}

/// The fragments of Novak's paper (and of the IDS test suites after it):
/// nine, then eight overlapping them, each of one letter; the datagram
/// each policy rebuilds, as the paper measured the hosts of each.
#[test]
fn the_papers_overlaps_come_out_as_each_host_rebuilds_them() {
    let frags: [(char, u16, u16); 17] = [
        ('A', 0, 24),
        ('B', 32, 16),
        ('C', 48, 24),
        ('D', 80, 8),
        ('E', 104, 16),
        ('F', 120, 24),
        ('G', 144, 16),
        ('H', 160, 16),
        ('I', 176, 8),
        ('J', 8, 32),
        ('K', 48, 24),
        ('L', 72, 24),
        ('M', 96, 24),
        ('N', 128, 8),
        ('O', 152, 8),
        ('P', 160, 8),
        ('Q', 176, 16),
    ];
    let packet = |i: usize| lettered(&frags, i, 1);
    // Each 8-byte unit's letter.
    let cases = [
        (DefragPolicy::First, "AAAJBBCCCLDLMEEFFFGGHHIQ", (8, 0)),
        (DefragPolicy::Last, "AJJJJBKKKLLLMMMFNFGOPHQQ", (0, 8)),
        (DefragPolicy::Bsd, "AAAJJBCCCLLLMMMFFFGGHHIQ", (6, 3)),
        (DefragPolicy::Linux, "AAAJJBKKKLLLMMMFFFGGPHQQ", (3, 6)),
        (DefragPolicy::Windows, "AAAJBBCCCLLLMEEFFFGGHHIQ", (7, 1)),
        (DefragPolicy::Solaris, "AAAJBBCCCLLLMMMFFFGGHHIQ", (6, 2)),
    ];
    for (policy, want, (lost, won)) in cases {
        let mut d = Defragmenter::new(DefragConfig {
            policy,
            ..DefragConfig::default()
        });
        let mut out = None;
        for (i, &(c, ..)) in frags.iter().enumerate() {
            out = d.push(&as_frag(&packet(i)), Timestamp(0));
            assert_eq!(out.is_some(), i + 1 == frags.len(), "{policy} {c}");
        }
        let r = out.unwrap();
        let got: String = r.packet[20..].chunks(8).map(|u| u[0] as char).collect();
        assert_eq!(got, want, "{policy}");
        assert!(r.packet[20..]
            .chunks(8)
            .all(|u| u.iter().all(|&b| b == u[0])));
        let s = d.stats();
        assert_eq!(
            (s.dropped_overlap, s.replaced_overlap),
            (lost, won),
            "{policy}"
        );
    }
    // Discard: the first overlapping fragment (J) abandons the datagram.
    let mut d = Defragmenter::new(DefragConfig {
        policy: DefragPolicy::Discard,
        ..DefragConfig::default()
    });
    for i in 0..frags.len() {
        assert!(d.push(&as_frag(&packet(i)), Timestamp(0)).is_none());
    }
    assert_eq!(d.stats().abandoned_overlap, 1);
}

/// IPv6 datagrams wait 60 s for their fragments (RFC 8200 §4.5), IPv4
/// ones 30 s, each by default; in one heap, each meets its own deadline.
#[test]
fn each_family_waits_its_own_time() {
    let v4 = frag_v4(&v4_datagram(1000), 256);
    let v6 = frag_v6(&v6_datagram(1000), 48, 256, 7);
    let s = 1_000_000_000;
    for (late, v4_done, v6_done) in [(29, true, true), (45, false, true), (61, false, false)] {
        let mut d = Defragmenter::new(DefragConfig::default());
        // The IPv6 datagram starts first, the IPv4 one a second later.
        assert!(d.push(&as_frag(&v6[0]), Timestamp(0)).is_none());
        assert!(d.push(&as_frag(&v4[0]), Timestamp(s)).is_none());
        let at = Timestamp((late + 1) * s);
        let done4 = v4[1..]
            .iter()
            .filter_map(|f| d.push(&as_frag(f), at))
            .count();
        let done6 = v6[1..]
            .iter()
            .filter_map(|f| d.push(&as_frag(f), at))
            .count();
        assert_eq!((done4 == 1, done6 == 1), (v4_done, v6_done), "{late} s");
    }
}

/// Fragments of one letter each: `(letter, offset, length)`.
type Lettered<'a> = &'a [(char, u16, u16)];

/// Fragment `i` of `frags` (IPv4 ID `id`), all of its letter; the last
/// one ends the datagram.
fn lettered(frags: Lettered<'_>, i: usize, id: u16) -> Vec<u8> {
    let (c, off, len) = frags[i];
    let word = (off / 8) | if i + 1 < frags.len() { 0x2000 } else { 0 };
    ipv4_full(A4, B4, 17, &[], id, word, &vec![c as u8; len.into()])
}

/// Target-based per host: a datagram is rebuilt by the policy of the host
/// it goes to (the longest network naming it), others by `policy`.
#[test]
fn each_datagram_follows_its_destinations_policy() {
    let frags: [(char, u16, u16); 3] = [('A', 0, 16), ('B', 8, 16), ('C', 24, 8)];
    let dst = std::net::Ipv4Addr::from(B4);
    let cases = [
        (vec![], "AABC"),
        (vec![(format!("{dst}/32"), DefragPolicy::Last)], "ABBC"),
        (vec![(format!("{dst}/8"), DefragPolicy::Last)], "ABBC"),
        (
            vec![("192.0.2.0/24".to_owned(), DefragPolicy::Last)],
            "AABC",
        ),
        (
            vec![
                ("0.0.0.0/0".to_owned(), DefragPolicy::Last),
                (format!("{dst}/32"), DefragPolicy::First),
            ],
            "AABC",
        ),
    ];
    for (hosts, want) in cases {
        let mut cfg = DefragConfig::default();
        for (net, p) in &hosts {
            cfg.policy_by_host.insert(net.parse().unwrap(), *p);
        }
        let mut d = Defragmenter::new(cfg);
        let mut out = None;
        for i in 0..frags.len() {
            out = d.push(&as_frag(&lettered(&frags, i, 4)), Timestamp(0));
        }
        let r = out.expect("complete");
        let got: String = r.packet[20..].chunks(8).map(|u| u[0] as char).collect();
        assert_eq!(got, want, "{hosts:?}");
    }
}

/// A fragment is compared with what is left of each held one, as the
/// hosts trim what they hold: B takes A's front, so A then starts at 32
/// and C (from 24) takes the rest of it under BSD and Linux; N, trimmed
/// by P to start at 32, loses what is left of it to X (from 24). Compared
/// with the fragments' first offsets instead, A and N would have kept
/// their bytes.
#[test]
fn fragments_meet_what_is_left_of_those_held() {
    let cases: [(Lettered<'_>, &str); 2] = [
        (
            &[('A', 16, 32), ('B', 0, 32), ('C', 24, 24), ('Z', 48, 8)],
            "BBBBCCZ",
        ),
        (
            &[('P', 0, 32), ('N', 16, 48), ('X', 24, 56), ('Z', 80, 8)],
            "PPPPXXXXXXZ",
        ),
    ];
    for policy in [DefragPolicy::Bsd, DefragPolicy::Linux] {
        for (frags, want) in cases {
            let mut d = Defragmenter::new(DefragConfig {
                policy,
                ..DefragConfig::default()
            });
            let mut out = None;
            for i in 0..frags.len() {
                out = d.push(&as_frag(&lettered(frags, i, 3)), Timestamp(0));
            }
            let r = out.expect("complete");
            let got: String = r.packet[20..].chunks(8).map(|u| u[0] as char).collect();
            assert_eq!(got, want, "{policy}");
        }
    }
}

/// In-order fragments of 8 bytes, as many as the longest datagram holds,
/// reassemble under every policy (each fragment owns its bytes), as the
/// host reassembles them.
#[test]
fn eight_byte_fragments_in_order_reassemble_under_every_policy() {
    let pkt = v4_datagram(8000 * 8 - 40);
    let frags = frag_v4(&pkt, 8);
    assert!(frags.len() > 7900);
    for policy in DefragPolicy::ALL {
        let mut d = Defragmenter::new(DefragConfig {
            policy,
            ..DefragConfig::default()
        });
        let r = push_all(&mut d, &frags, 0).expect("complete");
        assert_eq!(r.packet, pkt, "{policy}");
    }
}

/// IPv6 follows RFC 5722 whatever the IPv4 policy: an overlap abandons
/// the datagram even where the policy would let the later bytes win; and
/// under `discard` an IPv4 duplicate is dropped alone, as IPv6's is.
#[test]
fn ipv6_ignores_the_ipv4_policy_and_discard_keeps_duplicates_apart() {
    let pkt = v6_datagram(1000);
    let frags = frag_v6(&pkt, 48, 256, 5);
    let mut changed = frags[1].clone();
    let last = changed.len() - 1;
    changed[last] ^= 0xff;
    let mut d = Defragmenter::new(DefragConfig {
        policy: DefragPolicy::Last,
        ..DefragConfig::default()
    });
    let sent = [&frags[0], &frags[1], &changed, &frags[2], &frags[3]];
    assert!(sent
        .iter()
        .all(|f| d.push(&as_frag(f), Timestamp(0)).is_none()));
    assert_eq!(d.stats().abandoned_overlap, 1);
    // An exact IPv6 duplicate is dropped alone, and replaces nothing.
    let mut d = Defragmenter::new(DefragConfig {
        policy: DefragPolicy::Last,
        ..DefragConfig::default()
    });
    let sent = [&frags[0], &frags[1], &frags[1], &frags[2], &frags[3]];
    let out = sent.iter().find_map(|f| d.push(&as_frag(f), Timestamp(0)));
    assert_eq!(out.expect("a duplicate is no overlap").packet, pkt);
    assert_eq!(d.stats().replaced_overlap, 0);

    let pkt = v4_datagram(1000);
    let frags = frag_v4(&pkt, 256);
    let mut d = Defragmenter::new(DefragConfig {
        policy: DefragPolicy::Discard,
        ..DefragConfig::default()
    });
    let dup = [&frags[0], &frags[1], &frags[1], &frags[2], &frags[3]];
    let mut out = None;
    for f in dup {
        out = d.push(&as_frag(f), Timestamp(0)).or(out);
    }
    assert_eq!(out.expect("a duplicate is no overlap").packet, pkt);
    assert_eq!(d.stats().abandoned_overlap, 0);
}

/// Policy names: each parses back from its own, case aside; others are an
/// error naming every policy.
#[test]
fn policy_names_round_trip() {
    for p in DefragPolicy::ALL {
        assert_eq!(p.name().parse::<DefragPolicy>(), Ok(p));
        assert_eq!(p.to_string().to_uppercase().parse::<DefragPolicy>(), Ok(p));
    }
    let e = "vista".parse::<DefragPolicy>().unwrap_err();
    assert!(
        e.contains("first, last, bsd, linux, windows, solaris, discard"),
        "{e}"
    );
}

/// A datagram rebuilt from fragments keys as its unfragmented siblings do,
/// VLAN tags included: a priority tag (VID 0) before a tunnel whose inner
/// frame carries two tags once made the rebuilt packet fold one tag more.
#[test]
fn a_rebuilt_datagram_keys_as_its_unfragmented_siblings() {
    use weft_wire::{decode, LinkType};
    let payload = [9u8; 120];
    let inner_ip = ipv4(
        A4,
        B4,
        6,
        &checksum_v4(A4, B4, tcp(1234, 80, 1, &[], &payload)),
    );
    let inner = eth(0x8100, &tag(100, 0x8100, &tag(200, 0x0800, &inner_ip)));
    let mut gre = vec![0, 0, 0x65, 0x58];
    gre.extend(inner);
    let outer = ipv4_full(A4, B4, 47, &[], 0x4242, 0, &gre);
    let framed = |ip: &[u8]| eth(0x8100, &tag(0, 0x0800, ip));
    let opts = DecodeOptions::default();
    let whole = framed(&outer);
    let key = match decode(LinkType::Ethernet, &whole, &opts) {
        Ok(Decoded::Tcp(p)) => p.key,
        other => panic!("{other:?}"),
    };
    assert_eq!(key.vlan(), 100 << 12 | 200);
    let mut d = Defragmenter::new(DefragConfig::default());
    let mut rebuilt = None;
    for f in frag_v4(&outer, 64) {
        let frame = framed(&f);
        match decode(LinkType::Ethernet, &frame, &opts) {
            Ok(Decoded::Fragment(f)) => rebuilt = rebuilt.or(d.push(&f, Timestamp(0))),
            other => panic!("{other:?}"),
        }
    }
    let r = rebuilt.expect("complete");
    match decode_ip(&r.packet, r.vlan, &opts) {
        Ok(Decoded::Tcp(p)) => assert_eq!(p.key, key),
        other => panic!("{other:?}"),
    }
}

/// Tiny fragments sent in reverse merge into one received range but each
/// is held apart: past `MAX_RUNS` of them the datagram is dropped (a
/// counted limit), so a duplicate never compares itself with thousands of
/// stretches. Under the limit, the same reversal completes.
#[test]
fn tiny_fragments_in_reverse_stop_at_the_run_limit() {
    use weft_wire::defrag::MAX_RUNS;
    for (units, completes) in [(MAX_RUNS / 2, true), (MAX_RUNS + 50, false)] {
        let pkt = v6_datagram(units * 8 - 20);
        let frags = frag_v6(&pkt, 48, 8, 9);
        assert_eq!(frags.len(), units);
        let rev: Vec<_> = frags.iter().rev().cloned().collect();
        let mut d = Defragmenter::new(DefragConfig::default());
        let done = push_all(&mut d, &rev, 1);
        assert_eq!(done.is_some(), completes, "{units} fragments");
        if let Some(r) = done {
            assert_eq!(r.packet, pkt);
        } else {
            // The fragments after the drop start the datagram again.
            assert_eq!(d.stats().dropped_limit, 1);
            assert!(d.buffered_bytes() < 50 * 64, "{}", d.buffered_bytes());
        }
    }
}

/// `max_datagrams` 0 holds no datagram: every fragment is dropped and
/// counted (defragmentation off), as documented.
#[test]
fn no_datagrams_allowed_drops_every_fragment() {
    let cfg = DefragConfig {
        max_datagrams: 0,
        ..DefragConfig::default()
    };
    let mut d = Defragmenter::new(cfg);
    let frags = frag_v4(&v4_datagram(1000), 256);
    assert!(push_all(&mut d, &frags, 1).is_none());
    assert_eq!(d.in_progress(), 0);
    assert_eq!(d.stats().dropped_limit, frags.len() as u64);
}

/// The bytes counted for datagrams in progress cover what they hold: each
/// datagram under a policy that tracks owners holds a leaf of its run tree
/// and one of its owner tree from its first fragment on (about 148 and
/// 236 bytes), so a flood of first fragments meets the byte limit by
/// them, not by their 8 bytes of data alone.
#[test]
fn counted_bytes_cover_each_datagrams_trees() {
    let mut d = Defragmenter::new(DefragConfig {
        policy: DefragPolicy::Last,
        max_bytes: 64 << 10,
        ..DefragConfig::default()
    });
    for id in 0..1000u16 {
        let pkt = ipv4_full(A4, B4, 17, &[], id, 0x2000, &[7; 8]);
        assert!(d.push(&as_frag(&pkt), Timestamp(0)).is_none());
    }
    let held = d.in_progress();
    assert!(d.buffered_bytes() <= 64 << 10);
    assert!(
        d.buffered_bytes() >= held * (8 + 20 + 148 + 236),
        "{} bytes counted for {held} datagrams",
        d.buffered_bytes()
    );
    assert!(held < 160, "{held} datagrams held in 64 KiB");
}

/// Under `discard`, as Linux since 4.19 in both families: a fragment
/// inside a run held (here, a changed copy of one) is dropped alone; one
/// across two runs discards the datagram, which is then forgotten, so
/// its fragments sent again make it whole. IPv6 under any other policy
/// follows RFC 5722 strictly: the changed copy abandons the datagram, and
/// its resent fragments stay dropped until it times out.
#[test]
fn discard_rules_fragments_as_linux_queues_them() {
    let v4 = v4_datagram(1000);
    let v6 = v6_datagram(1000);
    for (pkt, frags) in [(&v4, frag_v4(&v4, 256)), (&v6, frag_v6(&v6, 48, 256, 5))] {
        let mut changed = frags[1].clone();
        let last = changed.len() - 1;
        changed[last] ^= 0xff;
        let push_all = |d: &mut Defragmenter, sent: &[&Vec<u8>]| {
            sent.iter()
                .filter_map(|f| d.push(&as_frag(f), Timestamp(0)))
                .last()
        };
        let discard = || {
            Defragmenter::new(DefragConfig {
                policy: DefragPolicy::Discard,
                ..DefragConfig::default()
            })
        };
        // In order, frags 0 and 1 make one run: the changed copy of 1
        // lies inside it.
        let mut d = discard();
        let sent = [&frags[0], &frags[1], &changed, &frags[2], &frags[3]];
        let out = push_all(&mut d, &sent).expect("the copy dropped alone");
        assert_eq!(&out.packet, pkt);
        assert_eq!(
            (d.stats().dropped_overlap, d.stats().abandoned_overlap),
            (1, 0)
        );
        // 1 then 0: two runs; a fragment across both discards the
        // datagram, and the fragments sent again complete a new one.
        let mut d = discard();
        let joined = [&frags[0][..], &frags[1][frags[1].len() - 8..]].concat();
        let across = if pkt[0] >> 4 == 4 {
            // Fragment 0 with 8 more bytes: it reaches into fragment 1.
            let mut f = joined.clone();
            let len = u16::from_be_bytes([f[2], f[3]]) + 8;
            f[2..4].copy_from_slice(&len.to_be_bytes());
            f
        } else {
            let mut f = joined.clone();
            let len = u16::from_be_bytes([f[4], f[5]]) + 8;
            f[4..6].copy_from_slice(&len.to_be_bytes());
            f
        };
        let sent = [&frags[1], &frags[0], &across];
        assert!(push_all(&mut d, &sent).is_none());
        assert_eq!(d.stats().abandoned_overlap, 1);
        assert_eq!(d.in_progress(), 0, "forgotten");
        let again: Vec<_> = frags.iter().collect();
        assert_eq!(&push_all(&mut d, &again).expect("sent again").packet, pkt);
        if pkt[0] >> 4 == 6 {
            // RFC 5722 strictly: the changed copy abandons the datagram,
            // and the resent fragments stay dropped.
            let mut d = Defragmenter::new(DefragConfig::default());
            let sent = [&frags[0], &frags[1], &changed];
            assert!(push_all(&mut d, &sent).is_none());
            assert_eq!(d.stats().abandoned_overlap, 1);
            assert!(push_all(&mut d, &again).is_none());
        }
    }
}

/// Linux takes an IPv4 fragment other than the last whose length is not a
/// multiple of 8 as far as its last multiple (`linux`, `discard`); other
/// policies drop it as RFC 791 says no such fragment exists, and so does
/// every policy for IPv6 (RFC 8200).
#[test]
fn linux_trims_a_fragment_that_is_not_a_multiple_of_8() {
    let pkt = v4_datagram(64);
    let payload = &pkt[20..];
    // 12 bytes with more to follow (4 beyond a multiple of 8, their bytes
    // garbage), then the rest from byte 8.
    let mut first_bytes = payload[..8].to_vec();
    first_bytes.extend([0xee; 4]);
    let first = ipv4_full(A4, B4, pkt[9], &[], 3, 0x2000, &first_bytes);
    let rest = ipv4_full(A4, B4, pkt[9], &[], 3, 1, &payload[8..]);
    for policy in DefragPolicy::ALL {
        let mut d = Defragmenter::new(DefragConfig {
            policy,
            ..DefragConfig::default()
        });
        assert!(d.push(&as_frag(&first), Timestamp(0)).is_none());
        let out = d.push(&as_frag(&rest), Timestamp(0));
        let linux = matches!(policy, DefragPolicy::Linux | DefragPolicy::Discard);
        assert_eq!(out.is_some(), linux, "{policy}");
        if let Some(r) = out {
            assert_eq!(&r.packet[20..], payload, "{policy}");
        } else {
            assert_eq!(d.stats().dropped_invalid, 1, "{policy}");
        }
        // IPv6: 12-byte fragments with more to follow, all dropped.
        let v6 = v6_datagram(64);
        let mut d = Defragmenter::new(DefragConfig {
            policy,
            ..DefragConfig::default()
        });
        let frags = frag_v6(&v6, 48, 12, 9);
        assert!(frags
            .iter()
            .all(|f| d.push(&as_frag(f), Timestamp(0)).is_none()));
        assert_eq!(
            d.stats().dropped_invalid,
            frags.len() as u64 - 1,
            "{policy}"
        );
    }
}

/// Under `discard`, as Linux kills its queue: a last fragment whose end
/// contradicts the datagram's, or a fragment of no bytes, discards and
/// forgets the datagram; other policies drop such a fragment alone and
/// keep the datagram.
#[test]
fn discard_forgets_a_datagram_a_contradicting_fragment_names() {
    let pkt = v4_datagram(1000);
    let frags = frag_v4(&pkt, 256);
    let last = frags.len() - 1;
    // A second last fragment ending 8 bytes early, and one of no bytes.
    let mut short_end = frags[last].clone();
    let len = u16::from_be_bytes([short_end[2], short_end[3]]) - 8;
    short_end[2..4].copy_from_slice(&len.to_be_bytes());
    short_end.truncate(usize::from(len));
    let empty = ipv4_full(A4, B4, pkt[9], &[], 0x7777, 0x2000 | 8, &[]);
    for (bad, counted_by_first) in [(&short_end, true), (&empty, false)] {
        for policy in [DefragPolicy::Discard, DefragPolicy::First] {
            let mut d = Defragmenter::new(DefragConfig {
                policy,
                ..DefragConfig::default()
            });
            for f in [&frags[0], &frags[last], bad] {
                assert!(d.push(&as_frag(f), Timestamp(0)).is_none());
            }
            let forgotten = policy == DefragPolicy::Discard;
            assert_eq!(d.in_progress(), usize::from(!forgotten), "{policy}");
            // (A fragment of no bytes adds nothing: the others let it be.)
            let counted = forgotten || counted_by_first;
            assert_eq!(d.stats().dropped_invalid, u64::from(counted), "{policy}");
            // The rest: a forgotten datagram cannot complete from it.
            let out = frags[1..last]
                .iter()
                .find_map(|f| d.push(&as_frag(f), Timestamp(0)));
            assert_eq!(out.is_some(), !forgotten, "{policy}");
        }
    }
}

/// Linux's queue, case by case, under `discard`: a duplicate that is the
/// last fragment does not complete the datagram (Linux drops it before it
/// looks); an IPv4 fragment other than the last trimmed to no bytes kills
/// the queue, and so does a last fragment ending short of a fragment
/// queued past 65,535 bytes, so the fragments sent again make the
/// datagram out of their own bytes; the whole copy of a last fragment the
/// capture cut is a duplicate, not a contradiction.
#[test]
fn discard_follows_linux_on_duplicates_lengths_and_cut_fragments() {
    let discard = || {
        Defragmenter::new(DefragConfig {
            policy: DefragPolicy::Discard,
            ..DefragConfig::default()
        })
    };
    let f = |off: u16, more: bool, data: &[u8]| {
        ipv4_full(
            A4,
            B4,
            17,
            &[],
            5,
            (off / 8) | if more { 0x2000 } else { 0 },
            data,
        )
    };
    let push = |d: &mut Defragmenter, p: &[u8]| d.push(&as_frag(p), Timestamp(0));
    // [0,8) and [8,16) with more to follow, then [8,16) as the last.
    let mut d = discard();
    assert!(push(&mut d, &f(0, true, b"AAAAAAAA")).is_none());
    assert!(push(&mut d, &f(8, true, b"BBBBBBBB")).is_none());
    assert!(push(&mut d, &f(8, false, b"BBBBBBBB")).is_none());
    assert_eq!((d.stats().dropped_overlap, d.in_progress()), (1, 1));
    // X at 0, a fragment of 4 bytes with more to follow (trimmed to
    // none: the queue dies), then Y at 0 and the rest: Y's datagram.
    let mut d = discard();
    assert!(push(&mut d, &f(0, true, b"XXXXXXXX")).is_none());
    assert!(push(&mut d, &f(8, true, b"tiny")).is_none());
    assert!(push(&mut d, &f(0, true, b"YYYYYYYY")).is_none());
    let r = push(&mut d, &f(8, false, b"rest")).expect("a new datagram");
    assert_eq!(&r.packet[20..], b"YYYYYYYYrest");
    // X at 0, a fragment reaching past 65,535 bytes, Y at 0 (inside X's
    // run: dropped), the last: short of the far one, the queue dies; sent
    // again, Y's datagram.
    let mut d = discard();
    assert!(push(&mut d, &f(0, true, b"XXXXXXXX")).is_none());
    assert!(push(&mut d, &f(65_528, true, &[0; 16])).is_none());
    assert!(push(&mut d, &f(0, true, b"YYYYYYYY")).is_none());
    assert!(push(&mut d, &f(8, false, b"rest")).is_none());
    assert_eq!(d.in_progress(), 0, "killed");
    assert!(push(&mut d, &f(0, true, b"YYYYYYYY")).is_none());
    let r = push(&mut d, &f(8, false, b"rest")).expect("sent again");
    assert_eq!(&r.packet[20..], b"YYYYYYYYrest");
    // Other policies drop the far fragment alone and rebuild X's.
    let mut d = Defragmenter::new(DefragConfig::default());
    assert!(push(&mut d, &f(0, true, b"XXXXXXXX")).is_none());
    assert!(push(&mut d, &f(65_528, true, &[0; 16])).is_none());
    let r = push(&mut d, &f(8, false, b"rest")).expect("the far one dropped");
    assert_eq!(&r.packet[20..], b"XXXXXXXXrest");
    // The last fragment cut by the capture (4 of its 8 bytes), then its
    // whole copy: a duplicate, and the datagram is the cut one's.
    let mut d = discard();
    let whole = f(8, false, b"last8byt");
    let mut cut = whole.clone();
    cut.truncate(cut.len() - 4);
    assert!(push(&mut d, &cut).is_none());
    assert!(push(&mut d, &whole).is_none());
    assert_eq!(
        (d.stats().dropped_overlap, d.stats().dropped_invalid),
        (1, 0)
    );
    let r = push(&mut d, &f(0, true, b"firstpt.")).expect("complete");
    assert_eq!(&r.packet[20..], b"firstpt.last");
    // Cut to no bytes at all, it is still a fragment of 8 to the host:
    // not one of no bytes, which would have discarded the datagram.
    let mut d = discard();
    let mut gone = whole.clone();
    gone.truncate(gone.len() - 8);
    assert!(push(&mut d, &gone).is_none());
    assert_eq!(d.in_progress(), 1);
    let r = push(&mut d, &f(0, true, b"firstpt.")).expect("complete");
    assert_eq!(&r.packet[20..], b"firstpt.");
    assert_eq!(u16::from_be_bytes([r.packet[2], r.packet[3]]), 20 + 16);
    // A cut last fragment whose whole bytes are held already (a
    // duplicate): the datagram is as long as they reach, nothing missing.
    let mut d = discard();
    assert!(push(&mut d, &f(8, true, b"BBBBBBBB")).is_none());
    assert!(push(&mut d, &f(16, true, b"CCCCCCCC")).is_none());
    let mut cut_last = f(16, false, b"CCCCCCCC");
    cut_last.truncate(cut_last.len() - 4);
    assert!(push(&mut d, &cut_last).is_none());
    let r = push(&mut d, &f(0, true, b"AAAAAAAA")).expect("complete");
    assert_eq!(&r.packet[20..], b"AAAAAAAABBBBBBBBCCCCCCCC");
    assert_eq!(u16::from_be_bytes([r.packet[2], r.packet[3]]), 20 + 24);
    // Under any policy, a last fragment whose promised end passes 65,535
    // is invalid, cut short by the capture or not: dropped alone, it does
    // not set the datagram's end.
    for policy in [DefragPolicy::First, DefragPolicy::Discard] {
        let mut d = Defragmenter::new(DefragConfig {
            policy,
            ..DefragConfig::default()
        });
        assert!(push(&mut d, &f(0, true, b"XXXXXXXX")).is_none());
        let mut far = f(65_528, false, &[0; 16]);
        far.truncate(far.len() - 12);
        assert!(push(&mut d, &far).is_none());
        if policy == DefragPolicy::First {
            assert_eq!(d.stats().dropped_invalid, 1);
            let r = push(&mut d, &f(8, false, b"rest")).expect("complete");
            assert_eq!(&r.packet[20..], b"XXXXXXXXrest");
        } else {
            // IPv4 under Linux's rules: queued, it is the datagram's end,
            // so the genuine last fragment contradicts it and kills it.
            assert!(push(&mut d, &f(8, false, b"rest")).is_none());
            assert_eq!(d.in_progress(), 0);
        }
    }
}
