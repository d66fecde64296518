//! The dispatcher's fast path: just enough of a frame to pick its worker.
//!
//! [`peek_tcp`] reads the link header, up to two VLAN tags, an IPv4 or IPv6
//! header and the TCP ports, and returns the symmetric flow hash, where the
//! IP header starts and the folded VLAN IDs — the same values a full
//! [`decode`](crate::decode()) gives. Anything less plain (fragments, IPv6
//! extension headers, tunnels, MPLS, PPPoE, other link types, anything
//! truncated, IPv4 options) returns `None`, and the caller decodes in
//! full. No payload bound is checked here: the worker decodes the frame
//! from the IP header and validates it.

use crate::bytes::{be16, u8_at};
use crate::hash::Toeplitz;
use crate::{FlowKey, LinkType};

/// What the dispatcher needs of a TCP frame. Plain data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowPeek {
    /// Symmetric Toeplitz hash of the 4-tuple (as [`FlowKey::symmetric_hash`](crate::FlowKey::symmetric_hash)).
    pub hash: u32,
    /// Offset of the IP header in the frame.
    pub ip_offset: u16,
    /// Folded VLAN IDs (as [`FlowKey::vlan`](crate::FlowKey::vlan)).
    pub vlan: u32,
}

/// The flow hash, IP offset and VLAN IDs of a plain TCP frame, or `None`
/// when the frame needs the full decoder. Never panics.
#[inline]
pub fn peek_tcp(link: LinkType, frame: &[u8]) -> Option<FlowPeek> {
    let (at, vlan, version) = locate_ip(link, frame)?;
    let t = Toeplitz::symmetric();
    let hash = match tuple_at(frame, at, version)? {
        Tuple::V4(src, dst, sp, dp) => t.hash_v4(src, dst, sp, dp),
        Tuple::V6(src, dst, sp, dp) => t.hash_v6(src, dst, sp, dp),
    };
    Some(FlowPeek {
        hash,
        ip_offset: u16::try_from(at).ok()?,
        vlan,
    })
}

/// The flow key of a plain TCP frame (same rules as [`peek_tcp`]), for
/// prefetching its connection before the frame is decoded in full. Never
/// panics.
#[inline]
pub fn peek_key(link: LinkType, frame: &[u8]) -> Option<FlowKey> {
    peek_key_at(link, frame).map(|p| p.key)
}

/// What [`peek_key_at`] finds of a plain TCP frame. Plain data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPeek {
    /// The flow key (as the full decoder gives it).
    pub key: FlowKey,
    /// Offset of the IP header in the frame.
    pub ip_offset: u16,
    /// Folded VLAN IDs (as [`FlowKey::vlan`](crate::FlowKey::vlan)).
    pub vlan: u32,
}

/// [`peek_key`], with where the IP header starts: a caller that prefetched
/// the flow can then decode the frame from its IP header
/// ([`decode_ip`](crate::decode_ip)) and skip the link layer, with the same
/// result (tested). Never panics.
#[inline]
pub fn peek_key_at(link: LinkType, frame: &[u8]) -> Option<KeyPeek> {
    let (at, vlan, version) = locate_ip(link, frame)?;
    Some(KeyPeek {
        key: key_of(tuple_at(frame, at, version)?, vlan)?,
        ip_offset: u16::try_from(at).ok()?,
        vlan,
    })
}

/// [`peek_key`] for a frame whose IP header starts at `ip` (the
/// dispatcher located it), with folded VLAN IDs `vlan`.
#[inline]
pub fn peek_key_ip(ip: &[u8], vlan: u32) -> Option<FlowKey> {
    key_of(tuple_at(ip, 0, 0)?, vlan)
}

/// Addresses and ports of a TCP packet.
enum Tuple {
    V4([u8; 4], [u8; 4], u16, u16),
    V6([u8; 16], [u8; 16], u16, u16),
}

fn key_of(t: Tuple, vlan: u32) -> Option<FlowKey> {
    Some(match t {
        Tuple::V4(s, d, sp, dp) => FlowKey::from_v4(s, sp, d, dp, vlan).0,
        Tuple::V6(s, d, sp, dp) => FlowKey::from_v6(s, sp, d, dp, vlan).0,
    })
}

/// Offset of the IP header, the folded VLAN IDs, and the IP version the
/// link layer announces (4 or 6; 0 when the version nibble decides), for
/// the plain link layers: Ethernet with up to two VLAN tags, and raw IP.
#[inline]
fn locate_ip(link: LinkType, frame: &[u8]) -> Option<(usize, u32, u8)> {
    match link {
        LinkType::Ethernet => {
            let mut et = be16(frame, 12)?;
            let (mut at, mut vlan) = (14usize, 0u32);
            let mut tags = 0;
            while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
                if tags == 2 {
                    return None;
                }
                // As the decoder folds: a priority tag (VID 0) is no VLAN.
                let vid = u32::from(be16(frame, at)? & 0x0fff);
                if vid != 0 {
                    vlan = (vlan << 12) | vid;
                }
                et = be16(frame, at + 2)?;
                at += 4;
                tags += 1;
            }
            match et {
                0x0800 => Some((at, vlan, 4)),
                0x86dd => Some((at, vlan, 6)),
                _ => None,
            }
        }
        LinkType::Raw | LinkType::RawBsd => Some((0, 0, 0)),
        LinkType::Ipv4 => Some((0, 0, 4)),
        LinkType::Ipv6 => Some((0, 0, 6)),
        _ => None,
    }
}

/// The TCP 4-tuple of an unfragmented IPv4 or extension-free IPv6 packet
/// starting at `at`, whose version must be `version` unless that is 0 (the
/// decoder rejects an IPv6 header behind an IPv4 ethertype, so the peek
/// must not route it as IPv6).
#[inline]
fn tuple_at(frame: &[u8], at: usize, version: u8) -> Option<Tuple> {
    let v = u8_at(frame, at)? >> 4;
    if version != 0 && v != version {
        return None;
    }
    match v {
        4 => {
            let ihl = usize::from(u8_at(frame, at)? & 0x0f) * 4;
            let flags_frag = be16(frame, at + 6)?;
            // Options go to the full decoder: it checks them, and an
            // accepted source route names another destination.
            if ihl != 20 || u8_at(frame, at + 9)? != 6 || flags_frag & 0x3fff != 0 {
                return None;
            }
            let ports = frame.get(at + ihl..at + ihl + 4)?;
            let src: [u8; 4] = frame.get(at + 12..at + 16)?.try_into().ok()?;
            let dst: [u8; 4] = frame.get(at + 16..at + 20)?.try_into().ok()?;
            Some(Tuple::V4(src, dst, port(ports, 0), port(ports, 2)))
        }
        6 => {
            if u8_at(frame, at + 6)? != 6 {
                return None;
            }
            let ports = frame.get(at + 40..at + 44)?;
            let src: [u8; 16] = frame.get(at + 8..at + 24)?.try_into().ok()?;
            let dst: [u8; 16] = frame.get(at + 24..at + 40)?.try_into().ok()?;
            Some(Tuple::V6(src, dst, port(ports, 0), port(ports, 2)))
        }
        _ => None,
    }
}

fn port(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, decode_ip, DecodeOptions, Decoded};
    use proptest::prelude::*;

    fn agrees(link: LinkType, frame: &[u8]) {
        if let Some(p) = peek_tcp(link, frame) {
            // A worker decodes from the IP header the peek found; inline
            // mode decodes the whole frame. Both must reach one verdict.
            let opts = DecodeOptions::default();
            let at = usize::from(p.ip_offset);
            let from_ip = decode_ip(&frame[at..], p.vlan, &opts);
            match (decode(link, frame, &opts), from_ip) {
                (Ok(Decoded::Tcp(a)), Ok(Decoded::Tcp(b))) => {
                    assert_eq!(
                        (a.key, a.dir, a.tcp, a.payload),
                        (b.key, b.dir, b.tcp, b.payload)
                    );
                    assert_eq!(a.payload_missing, b.payload_missing);
                    assert_eq!(usize::from(a.ip_offset), at + usize::from(b.ip_offset));
                }
                (a, b) => assert_eq!(a, b, "frame {frame:02x?}"),
            }
            // The fast path does not validate; the worker's full decode
            // rejects such frames. Only the routing must be consistent.
            if let Ok(Decoded::Tcp(full)) = decode(link, frame, &DecodeOptions::default()) {
                assert_eq!(p.hash, full.key.symmetric_hash());
                assert_eq!(p.vlan, full.key.vlan());
                assert_eq!(usize::from(p.ip_offset), usize::from(full.ip_offset));
                assert_eq!(peek_key(link, frame), Some(full.key));
                let at = peek_key_at(link, frame).expect("peek_tcp answered");
                assert_eq!((at.ip_offset, at.vlan), (p.ip_offset, p.vlan));
                let ip = &frame[usize::from(p.ip_offset)..];
                assert_eq!(peek_key_ip(ip, p.vlan), Some(full.key));
            }
        }
    }

    fn tcp_v4(vlans: &[u16], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for &v in vlans {
            f.extend(0x8100u16.to_be_bytes());
            f.extend(v.to_be_bytes());
        }
        f.extend(0x0800u16.to_be_bytes());
        let mut ip = vec![
            0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip.extend(sport.to_be_bytes());
        ip.extend(dport.to_be_bytes());
        ip.extend([
            0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0, b'a', b'b', b'c', b'd',
        ]);
        f.extend(ip);
        f
    }

    #[test]
    fn plain_frames_match_the_full_decoder() {
        for vlans in [&[][..], &[42], &[10, 20]] {
            let f = tcp_v4(vlans, 40000, 80);
            let p = peek_tcp(LinkType::Ethernet, &f).expect("plain TCP");
            assert_eq!(p.ip_offset as usize, 14 + 4 * vlans.len());
            agrees(LinkType::Ethernet, &f);
        }
        // both directions land on the same worker
        let a = peek_tcp(LinkType::Ethernet, &tcp_v4(&[], 40000, 80)).unwrap();
        let mut rev = tcp_v4(&[], 80, 40000);
        rev.swap(26, 30); // swap the last octet of the addresses
        let b = peek_tcp(LinkType::Ethernet, &rev).unwrap();
        assert_eq!(a.hash, b.hash);
    }

    /// Ethernet carrying a TCP-in-IPv6 packet under `ethertype`.
    fn tcp_v6(ethertype: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend(ethertype.to_be_bytes());
        f.extend([0x60, 0, 0, 0, 0, 24, 6, 64]);
        f.extend([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f.extend([
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff,
        ]);
        f.extend([0, 0, 0, 0, b'a', b'b', b'c', b'd']);
        f
    }

    #[test]
    fn the_ip_version_must_be_the_one_the_link_announces() {
        let opts = DecodeOptions::default();
        let good = tcp_v6(0x86dd);
        assert!(peek_tcp(LinkType::Ethernet, &good).is_some());
        agrees(LinkType::Ethernet, &good);
        // IPv6 behind the IPv4 ethertype: the decoder rejects the frame,
        // so the peek must not send it to a worker, which would decode it
        // from the IP header and accept it.
        let bad = tcp_v6(0x0800);
        assert!(decode(LinkType::Ethernet, &bad, &opts).is_err());
        assert_eq!(peek_tcp(LinkType::Ethernet, &bad), None);
        assert_eq!(peek_key(LinkType::Ethernet, &bad), None);
        assert_eq!(peek_tcp(LinkType::Ipv4, &bad[14..]), None);
        assert!(peek_tcp(LinkType::Raw, &bad[14..]).is_some());
    }

    #[test]
    fn anything_unusual_goes_to_the_full_decoder() {
        let mut frag = tcp_v4(&[], 1, 2);
        frag[14 + 6] = 0x20; // more fragments
        assert_eq!(peek_tcp(LinkType::Ethernet, &frag), None);
        let mut udp = tcp_v4(&[], 1, 2);
        udp[14 + 9] = 17;
        assert_eq!(peek_tcp(LinkType::Ethernet, &udp), None);
        assert_eq!(peek_tcp(LinkType::Ethernet, &tcp_v4(&[], 1, 2)[..30]), None);
        assert_eq!(peek_tcp(LinkType::LinuxSll, &tcp_v4(&[], 1, 2)), None);
        assert_eq!(
            peek_tcp(LinkType::Ethernet, &tcp_v4(&[1, 2, 3], 1, 2)),
            None
        );
    }

    /// Priority tags (VID 0) fold as no VLAN in the peek as in the decoder,
    /// wherever they stand.
    #[test]
    fn priority_tags_fold_as_the_decoder_folds_them() {
        for tags in [&[0u16][..], &[0, 9], &[7, 0], &[0, 0]] {
            let f = tcp_v4(tags, 1234, 443);
            agrees(LinkType::Ethernet, &f);
            let want = tags
                .iter()
                .filter(|&&t| t != 0)
                .fold(0u32, |v, &t| v << 12 | u32::from(t));
            assert_eq!(
                peek_tcp(LinkType::Ethernet, &f).map(|p| p.vlan),
                Some(want),
                "{tags:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_agrees_when_it_answers(link in 0u32..300, bytes in prop::collection::vec(any::<u8>(), 0..120)) {
            agrees(LinkType::from_raw(link), &bytes);
        }

        #[test]
        fn mutated_frames_agree(vl in 0usize..3, pos in 0usize..70, byte in any::<u8>()) {
            let mut f = tcp_v4(&[7, 9][..vl.min(2)], 1234, 443);
            if pos < f.len() {
                f[pos] = byte;
            }
            agrees(LinkType::Ethernet, &f);
        }
    }
}
