//! Hand-built frames through every link layer, encapsulation and IP/TCP
//! corner case `decode` handles.

mod common;

use common::*;
use std::net::IpAddr;
use weft_wire::{
    decode, decode_ip, decode_ip_in, DecodeError, DecodeOptions, Decoded, Dir, Layer, LinkType,
    Packet,
};

fn opts() -> DecodeOptions {
    DecodeOptions::default()
}

fn verify() -> DecodeOptions {
    DecodeOptions {
        verify_checksums: true,
        ..DecodeOptions::default()
    }
}

fn tcp_of(link: LinkType, frame: &[u8]) -> Packet<'_> {
    match decode(link, frame, &verify()) {
        Ok(Decoded::Tcp(p)) => p,
        other => panic!("expected TCP, got {other:?}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn check_v4(p: &Packet<'_>, payload: &[u8]) {
    assert_eq!(p.key.lo_addr(), ip("10.0.0.1"));
    assert_eq!(p.key.hi_addr(), ip("10.0.0.2"));
    assert_eq!((p.key.lo_port(), p.key.hi_port()), (1234, 80));
    assert_eq!(p.dir, Dir::LoToHi);
    assert_eq!(p.payload, payload);
    assert_eq!(p.payload_missing, 0);
    assert_eq!(p.ip_version, 4);
    assert_eq!(p.checksum_ok, Some(true));
}

fn check_v6(p: &Packet<'_>, payload: &[u8]) {
    assert_eq!(p.key.lo_addr(), ip("2001:db8::1"));
    assert!(p.key.is_ipv6());
    assert_eq!(p.payload, payload);
    assert_eq!(p.ip_version, 6);
    assert_eq!(p.ip_id, 0);
    assert_eq!(p.ttl_or_hop, 55);
    assert_eq!(p.checksum_ok, Some(true));
}

#[test]
fn ethernet_ipv4_tcp() {
    let f = eth(0x0800, &tcp4(b"hello"));
    let p = tcp_of(LinkType::Ethernet, &f);
    check_v4(&p, b"hello");
    assert_eq!((p.ip_offset, p.tcp_offset), (14, 34));
    assert_eq!(p.tcp.seq.0, 1000);
    assert_eq!(p.tcp.ack.0, 77);
    assert_eq!(p.tcp.window, 1000);
    assert_eq!(p.ip_id, 0x1234);
    assert_eq!(p.ttl_or_hop, 64);
    assert!(!p.tunnel);
    assert_eq!(p.key.vlan(), 0);
}

#[test]
fn ethernet_padding_is_ignored() {
    let mut f = eth(0x0800, &tcp4(b""));
    f.extend([0u8; 6]); // 60-byte minimum frame
    let p = tcp_of(LinkType::Ethernet, &f);
    assert_eq!(p.payload, b"");
    assert_eq!(p.checksum_ok, Some(true));
}

#[test]
fn vlan_and_qinq() {
    let f = eth(0x8100, &tag(0x2005, 0x0800, &tcp4(b"x")));
    let p = tcp_of(LinkType::Ethernet, &f);
    check_v4(&p, b"x");
    assert_eq!(p.key.vlan(), 5);
    assert_eq!(p.ip_offset, 18);

    let inner = tag(7, 0x0800, &tcp4(b"x"));
    let f = eth(0x88a8, &tag(100, 0x8100, &inner));
    let p = tcp_of(LinkType::Ethernet, &f);
    assert_eq!(p.key.vlan(), 100 << 12 | 7);
    // A third tag does not change the fold.
    let f3 = eth(0x9100, &tag(100, 0x8100, &tag(7, 0x8100, &inner)));
    assert_eq!(tcp_of(LinkType::Ethernet, &f3).key.vlan(), 100 << 12 | 7);
    // Same 4-tuple, different VLANs: different flows.
    let g = eth(0x88a8, &tag(101, 0x8100, &inner));
    assert_ne!(tcp_of(LinkType::Ethernet, &g).key, p.key);
}

#[test]
fn too_many_vlan_tags() {
    let mut body = tcp4(b"");
    let mut next = 0x0800;
    for _ in 0..9 {
        body = tag(1, next, &body);
        next = 0x8100;
    }
    let f = eth(0x8100, &body);
    assert_eq!(
        decode(LinkType::Ethernet, &f, &opts()),
        Err(DecodeError::Unsupported {
            what: "too many VLAN tags"
        })
    );
    // Truncated inside a tag.
    assert_eq!(
        decode(LinkType::Ethernet, &f[..16], &opts()),
        Err(DecodeError::Truncated { layer: Layer::Vlan })
    );
}

#[test]
fn mpls_stack() {
    let mut labels = vec![0x00, 0x01, 0x00, 0x40]; // label 16, not bottom
    labels.extend([0x00, 0x02, 0x01, 0x40]); // bottom of stack
    labels.extend(tcp6(b"mpls"));
    let frame = eth(0x8847, &labels);
    let p = tcp_of(LinkType::Ethernet, &frame);
    check_v6(&p, b"mpls");
    assert!(p.tunnel);
    assert_eq!(p.ip_offset, 22);
    // No bottom-of-stack bit before the end.
    assert_eq!(
        decode(LinkType::Ethernet, &eth(0x8848, &labels[..4]), &opts()),
        Err(DecodeError::Truncated { layer: Layer::Mpls })
    );
}

#[test]
fn pppoe_session() {
    let mut s = vec![0x11, 0x00, 0x12, 0x34, 0, 0];
    s.extend(0x0021u16.to_be_bytes());
    s.extend(tcp4(b"ppp"));
    check_v4(&tcp_of(LinkType::Ethernet, &eth(0x8864, &s)), b"ppp");
    s[6..8].copy_from_slice(&0xc021u16.to_be_bytes()); // LCP
    assert_eq!(
        decode(LinkType::Ethernet, &eth(0x8864, &s), &opts()),
        Ok(Decoded::Other)
    );
    // Protocol-field compression: a one-byte (odd) protocol 0x21.
    let mut c = vec![0x11, 0x00, 0x12, 0x34, 0, 0, 0x21];
    c.extend(tcp4(b"pfc"));
    check_v4(&tcp_of(LinkType::Ethernet, &eth(0x8864, &c)), b"pfc");
}

#[test]
fn linux_sll_and_sll2() {
    let mut f = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
    f.extend(0x86ddu16.to_be_bytes());
    f.extend(tcp6(b"sll"));
    let p = tcp_of(LinkType::LinuxSll, &f);
    check_v6(&p, b"sll");
    assert_eq!(p.ip_offset, 16);

    let mut f = 0x0800u16.to_be_bytes().to_vec();
    f.extend([0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
    f.extend(tcp4(b"sll2"));
    let p = tcp_of(LinkType::LinuxSll2, &f);
    check_v4(&p, b"sll2");
    assert_eq!(p.ip_offset, 20);
    assert_eq!(
        decode(LinkType::LinuxSll2, &f[..19], &opts()),
        Err(DecodeError::Truncated { layer: Layer::Link })
    );
}

#[test]
fn nflog() {
    let pkt = tcp4(b"nflog!");
    let mut f = vec![2, 0, 0, 1];
    // A prefix TLV (type 10) of 5 bytes, padded to 8.
    f.extend([5, 0, 10, 0, b'a', 0, 0, 0]);
    f.extend(((pkt.len() + 4) as u16).to_le_bytes());
    f.extend(9u16.to_le_bytes());
    f.extend(&pkt);
    let p = tcp_of(LinkType::Nflog, &f);
    check_v4(&p, b"nflog!");
    assert_eq!(p.ip_offset, 16);
    // A TLV length below 4 is malformed.
    let bad = [2, 0, 0, 1, 2, 0, 9, 0];
    assert_eq!(
        decode(LinkType::Nflog, &bad, &opts()),
        Err(DecodeError::BadHeaderLen {
            layer: Layer::Nflog
        })
    );
    // No payload TLV: nothing to decode.
    assert_eq!(
        decode(LinkType::Nflog, &f[..12], &opts()),
        Ok(Decoded::Other)
    );
}

#[test]
fn null_both_byte_orders_and_loop() {
    for family in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
        let mut f = family.to_vec();
        f.extend(tcp4(b"lo"));
        check_v4(&tcp_of(LinkType::Null, &f), b"lo");
    }
    for af in [10u32, 24, 28, 30] {
        for family in [af.to_le_bytes(), af.to_be_bytes()] {
            let mut f = family.to_vec();
            f.extend(tcp6(b"lo6"));
            check_v6(&tcp_of(LinkType::Null, &f), b"lo6");
        }
    }
    let mut f = 24u32.to_be_bytes().to_vec();
    f.extend(tcp6(b"loop"));
    check_v6(&tcp_of(LinkType::Loop, &f), b"loop");
    // Loop is network order only.
    f[..4].copy_from_slice(&24u32.to_le_bytes());
    assert_eq!(decode(LinkType::Loop, &f, &opts()), Ok(Decoded::Other));
}

#[test]
fn ppp_and_raw() {
    let mut f = vec![0xff, 0x03, 0x00, 0x21];
    f.extend(tcp4(b"ppp"));
    check_v4(&tcp_of(LinkType::Ppp, &f), b"ppp");
    let mut f = vec![0x57]; // compressed protocol field
    f.extend(tcp6(b"ppp6"));
    check_v6(&tcp_of(LinkType::Ppp, &f), b"ppp6");
    for link in [LinkType::Raw, LinkType::RawBsd, LinkType::Ipv4] {
        check_v4(&tcp_of(link, &tcp4(b"raw")), b"raw");
    }
    check_v6(&tcp_of(LinkType::Ipv6, &tcp6(b"raw")), b"raw");
    assert_eq!(
        decode(LinkType::Ipv6, &tcp4(b""), &opts()),
        Err(DecodeError::BadVersion)
    );
    assert_eq!(
        decode(LinkType::Raw, &[0x50; 40], &opts()),
        Err(DecodeError::BadVersion)
    );
    assert_eq!(
        decode(LinkType::Other(147), &[0; 40], &opts()),
        Err(DecodeError::Unsupported { what: "link type" })
    );
}

#[test]
fn link_type_raw_values_round_trip() {
    for raw in [0, 1, 9, 12, 101, 108, 113, 228, 229, 239, 276, 147] {
        assert_eq!(LinkType::from_raw(raw).to_raw(), raw);
    }
    assert_eq!(LinkType::from_raw(276), LinkType::LinuxSll2);
}

#[test]
fn ipv4_options_and_errors() {
    let seg = checksum_v4(A4, B4, tcp(1234, 80, 1000, &[], b"opt"));
    let pkt = ipv4_full(A4, B4, 6, &[0x94, 4, 0, 0], 1, 0, &seg);
    let p = tcp_of(LinkType::Raw, &pkt);
    check_v4(&p, b"opt");
    assert_eq!(p.tcp_offset, 24);

    let mut bad = pkt.clone();
    bad[0] = 0x44; // IHL 16
    assert_eq!(
        decode(LinkType::Raw, &bad, &opts()),
        Err(DecodeError::BadHeaderLen { layer: Layer::Ipv4 })
    );
    let mut bad = pkt.clone();
    bad[2..4].copy_from_slice(&10u16.to_be_bytes()); // total < IHL
    assert_eq!(
        decode(LinkType::Raw, &bad, &opts()),
        Err(DecodeError::BadHeaderLen { layer: Layer::Ipv4 })
    );
    assert_eq!(
        decode(LinkType::Raw, &pkt[..22], &opts()),
        Err(DecodeError::Truncated { layer: Layer::Ipv4 })
    );
    // A bad header checksum is reported, not an error.
    let mut bad = pkt.clone();
    bad[8] = 1;
    let p = tcp_of(LinkType::Raw, &bad);
    assert_eq!(p.checksum_ok, Some(false));
    // Without verification no verdict.
    match decode(LinkType::Raw, &bad, &opts()) {
        Ok(Decoded::Tcp(p)) => assert_eq!(p.checksum_ok, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_tcp_checksum_reported() {
    let mut pkt = tcp4(b"data");
    let last = pkt.len() - 1;
    pkt[last] ^= 1;
    assert_eq!(tcp_of(LinkType::Raw, &pkt).checksum_ok, Some(false));
    let mut pkt = tcp6(b"data");
    let last = pkt.len() - 1;
    pkt[last] ^= 1;
    assert_eq!(tcp_of(LinkType::Raw, &pkt).checksum_ok, Some(false));
}

#[test]
fn tso_total_length_zero() {
    let mut pkt = tcp4(&[7u8; 3000]);
    pkt[2..4].copy_from_slice(&[0, 0]);
    let p = tcp_of(LinkType::Raw, &pkt);
    assert_eq!(p.payload.len(), 3000);
    assert_eq!(p.payload_missing, 0);
    let mut pkt6 = tcp6(&[7u8; 3000]);
    pkt6[4..6].copy_from_slice(&[0, 0]);
    assert_eq!(tcp_of(LinkType::Raw, &pkt6).payload.len(), 3000);
    // From the wire, a receiving host drops both: so does the decoder
    // where told to, from Ethernet and from the IP header alike.
    let refuse = DecodeOptions {
        take_zero_ip_length: false,
        ..opts()
    };
    let zero = Err(DecodeError::Refused {
        why: "IP length of 0",
    });
    for (pkt, ethertype) in [(&pkt, 0x0800), (&pkt6, 0x86dd)] {
        assert_eq!(decode(LinkType::Raw, pkt, &refuse), zero);
        assert_eq!(
            decode(LinkType::Ethernet, &eth(ethertype, pkt), &refuse),
            zero
        );
        assert_eq!(decode_ip(pkt, 0, &refuse), zero);
    }
    // A fragment claiming no length is refused by default too: offload
    // never makes fragments.
    let mut frag = ipv4_full(A4, B4, 6, &[], 1, 0x2000, &[7; 16]);
    frag[2..4].fill(0);
    assert_eq!(decode(LinkType::Raw, &frag, &opts()), zero);
    // A Hop-by-Hop header without a jumbo payload option does not make
    // it a jumbogram.
    let seg = checksum_v6(A6, B6, tcp(1234, 80, 1000, &[], b"hbh"));
    let mut rest = vec![6, 0, 1, 4, 0, 0, 0, 0];
    rest.extend(&seg);
    let mut hbh = ipv6(A6, B6, 0, &rest);
    hbh[4..6].copy_from_slice(&[0, 0]);
    assert_eq!(decode(LinkType::Raw, &hbh, &refuse), zero);
    assert!(matches!(
        decode(LinkType::Raw, &hbh, &opts()),
        Ok(Decoded::Tcp(_))
    ));
}

/// A jumbogram (RFC 2675): a payload length of 0 and a jumbo payload
/// option over 65,535 bytes; its length is the frame's.
#[test]
fn ipv6_jumbo_hop_by_hop() {
    let payload = vec![b'j'; 70_000];
    let seg = checksum_v6(A6, B6, tcp(1234, 80, 1000, &[], &payload));
    let mut hbh = vec![6, 0, 0xc2, 4];
    hbh.extend(((seg.len() + 8) as u32).to_be_bytes());
    hbh.extend(&seg);
    let mut pkt = ipv6(A6, B6, 0, &hbh);
    pkt[4..6].copy_from_slice(&[0, 0]);
    let p = tcp_of(LinkType::Raw, &pkt);
    assert_eq!(p.payload, &payload[..]);
    assert_eq!(p.tcp_offset, 48);
    // Its length is no forgery: taken where zero lengths are refused.
    let refuse = DecodeOptions {
        take_zero_ip_length: false,
        ..verify()
    };
    assert!(matches!(
        decode(LinkType::Raw, &pkt, &refuse),
        Ok(Decoded::Tcp(_))
    ));
    // But never fragmented (RFC 2675 §3).
    let mut hbh = vec![44, 0, 0xc2, 4];
    hbh.extend(((seg.len() + 16) as u32).to_be_bytes());
    hbh.extend([6, 0, 0, 1, 0, 0, 0, 9]); // offset 0, more to follow
    hbh.extend(&seg);
    let mut pkt = ipv6(A6, B6, 0, &hbh);
    pkt[4..6].copy_from_slice(&[0, 0]);
    assert_eq!(
        decode(LinkType::Raw, &pkt, &opts()),
        Err(DecodeError::Refused {
            why: "IPv6 jumbogram fragment"
        })
    );
}

#[test]
fn snaplen_truncation() {
    let f = eth(0x0800, &tcp4(&[9u8; 100]));
    let p = tcp_of(LinkType::Ethernet, &f[..f.len() - 40]);
    assert_eq!(p.payload.len(), 60);
    assert_eq!(p.payload_missing, 40);
    assert_eq!(p.checksum_ok, None); // cannot verify a cut segment
                                     // Cut inside the TCP header.
    assert_eq!(
        decode(LinkType::Ethernet, &f[..14 + 20 + 10], &opts()),
        Err(DecodeError::Truncated { layer: Layer::Tcp })
    );
    let f6 = tcp6(&[9u8; 100]);
    let p = tcp_of(LinkType::Raw, &f6[..f6.len() - 1]);
    assert_eq!(p.payload_missing, 1);
}

#[test]
fn bad_data_offset() {
    let mut pkt = tcp4(b"abc");
    pkt[20 + 12] = 4 << 4;
    assert_eq!(
        decode(LinkType::Raw, &pkt, &opts()),
        Err(DecodeError::BadHeaderLen { layer: Layer::Tcp })
    );
    pkt[20 + 12] = 15 << 4; // 60 bytes > 23-byte segment
    assert_eq!(
        decode(LinkType::Raw, &pkt, &opts()),
        Err(DecodeError::BadHeaderLen { layer: Layer::Tcp })
    );
}

#[test]
fn tcp_options_through_decode() {
    let opts_bytes = [
        2, 4, 0x05, 0xb4, 4, 2, 3, 3, 7, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2,
    ];
    let seg = checksum_v4(A4, B4, tcp(1234, 80, 1, &opts_bytes, b""));
    let frame = ipv4(A4, B4, 6, &seg);
    let p = tcp_of(LinkType::Raw, &frame);
    let o = p.tcp.options;
    assert_eq!(
        (o.mss, o.window_scale, o.sack_permitted),
        (Some(1460), Some(7), true)
    );
    assert_eq!(o.timestamp, Some((1, 2)));
    assert!(!o.malformed);
    assert_eq!(p.tcp.header_len, 40);
    // A malformed option flags the options, the packet still decodes.
    let seg = checksum_v4(A4, B4, tcp(1234, 80, 1, &[2, 4, 0, 1, 8, 0], b"m"));
    let frame = ipv4(A4, B4, 6, &seg);
    let p = tcp_of(LinkType::Raw, &frame);
    assert!(p.tcp.options.malformed);
    assert_eq!(p.tcp.options.mss, Some(1));
    assert_eq!(p.payload, b"m");
}

#[test]
fn ipv6_extension_headers() {
    let seg = checksum_v6(A6, B6, tcp(1234, 80, 1000, &[], b"ext"));
    let mut rest = vec![60, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop, PadN
    rest.extend([43, 0, 0, 0, 0, 0, 0, 0]); // destination options
    rest.extend([51, 0, 4, 0, 0, 0, 0, 0]); // routing, type 4, 0 segments left
    rest.extend([6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]); // AH, 12 bytes
    rest.extend(&seg);
    let pkt = ipv6(A6, B6, 0, &rest);
    let p = tcp_of(LinkType::Raw, &pkt);
    check_v6(&p, b"ext");
    assert_eq!(p.tcp_offset, 40 + 36);
    // No next header.
    let pkt = ipv6(A6, B6, 59, &[1, 2, 3]);
    assert_eq!(decode(LinkType::Raw, &pkt, &opts()), Ok(Decoded::Other));
    // Extension header running past the payload length.
    let pkt = ipv6(A6, B6, 60, &[6, 3, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        decode(LinkType::Raw, &pkt, &opts()),
        Err(DecodeError::BadHeaderLen {
            layer: Layer::Ipv6Ext
        })
    );
}

/// With segments left, a routing header names the final destination: the
/// TCP checksum covers it (RFC 8200 §8.1), and it is the connection's end,
/// so the flow key has it too and both directions meet in one flow.
#[test]
fn ipv6_routing_header_final_destination() {
    let w: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99];
    // IPv6 from A6 to `w` with a routing header of `kind`, `left`
    // segments left and `addrs`, carrying `seg`.
    let routed = |kind: u8, left: u8, addrs: &[[u8; 16]], seg: &[u8]| {
        let mut rest = vec![6, (2 * addrs.len()) as u8, kind, left, 0, 0, 0, 0];
        addrs.iter().for_each(|a| rest.extend(a));
        rest.extend(seg);
        ipv6(A6, w, 43, &rest)
    };
    let seg = checksum_v6(A6, B6, tcp(1234, 80, 1000, &[], b"srh"));
    // Segment routing (type 4; its list in reverse order: B6 final, `w`
    // next), type 2 (one address), type 0 (the last of the list: taken
    // only where source routes are accepted, see below).
    let accept = DecodeOptions {
        accept_source_routed: true,
        ..verify()
    };
    for (kind, addrs) in [(4u8, vec![B6, w]), (2, vec![B6]), (0, vec![w, B6])] {
        let pkt = routed(kind, 1, &addrs, &seg);
        let Ok(Decoded::Tcp(p)) = decode(LinkType::Raw, &pkt, &accept) else {
            panic!("type {kind}");
        };
        check_v6(&p, b"srh");
        assert_eq!(p.key.hi_addr(), ip("2001:db8::2"), "type {kind}");
    }
    // No segment left: the header's destination is the final one.
    let seg = checksum_v6(A6, w, tcp(1234, 80, 1000, &[], b"srh"));
    let pkt = routed(4, 0, &[B6, w], &seg);
    let p = tcp_of(LinkType::Raw, &pkt);
    assert_eq!(p.checksum_ok, Some(true));
    assert_eq!(p.key.hi_addr(), ip("2001:db8::99"));
}

/// Source-routed packets are refused as receiving hosts refuse them,
/// unless accepted: IPv4 loose and strict source routes (wherever they sit
/// among the options), IPv6 type 0 routing headers with segments left
/// (RFC 5095). Other options and routing types pass; a type 0 header with
/// no segment left is ignored, as hosts ignore it.
#[test]
fn source_routed_packets_are_refused_unless_accepted() {
    let accept = DecodeOptions {
        accept_source_routed: true,
        ..verify()
    };
    let refused = |pkt: &[u8], why: &'static str| {
        assert_eq!(
            decode(LinkType::Raw, pkt, &verify()),
            Err(DecodeError::Refused { why }),
            "{why}"
        );
        // Also where the one-step decoders run (no checksums verified):
        // from Ethernet, and from the IP header as workers decode.
        let ethertype = if pkt[0] >> 4 == 4 { 0x0800 } else { 0x86dd };
        let framed = eth(ethertype, pkt);
        for got in [
            decode(LinkType::Ethernet, &framed, &opts()),
            decode_ip(pkt, 0, &opts()),
        ] {
            assert_eq!(got, Err(DecodeError::Refused { why }), "{why}");
        }
        assert!(
            matches!(decode(LinkType::Raw, pkt, &accept), Ok(Decoded::Tcp(_))),
            "{why}"
        );
    };
    let seg = checksum_v4(A4, B4, tcp(1234, 80, 1000, &[], b"sr"));
    let route = [7u8, 7, 4, 10, 0, 0, 9]; // a hop, then the destination
    for kind in [0x83u8, 0x89] {
        let mut o = vec![kind];
        o.extend(&route[1..]);
        o.push(0); // end of options
        refused(&ipv4_full(A4, B4, 6, &o, 1, 0, &seg), "IPv4 source route");
        // Accepted, on its way to the hop: the connection's end is the
        // route's last address, which the checksum covers.
        let hop = [10, 0, 0, 9];
        let mut to_b = vec![kind, 7, 4];
        to_b.extend(B4);
        to_b.push(0);
        let pkt = ipv4_full(A4, hop, 6, &to_b, 1, 0, &seg);
        let Ok(Decoded::Tcp(p)) = decode(LinkType::Raw, &pkt, &accept) else {
            panic!("accepted");
        };
        check_v4(&p, b"sr");
        // A second source route is malformed.
        let mut twice = to_b[..7].to_vec();
        twice.extend(&to_b[..7]);
        twice.extend([0, 0]);
        assert_eq!(
            decode(
                LinkType::Raw,
                &ipv4_full(A4, B4, 6, &twice, 1, 0, &seg),
                &accept
            ),
            Err(DecodeError::BadOptions { layer: Layer::Ipv4 })
        );
        // Behind a no-operation and a timestamp option.
        let mut o2 = vec![1, 0x44, 4, 5, 0];
        o2.push(kind);
        o2.extend(&route[1..]);
        o2.extend([0, 0, 0, 0]);
        refused(&ipv4_full(A4, B4, 6, &o2, 1, 0, &seg), "IPv4 source route");
        // After the end of the options: not read.
        let mut late = vec![0u8, 0, 0, 0];
        late.extend([kind, 7, 4, 10, 0, 0, 9, 0]);
        check_v4(
            &tcp_of(LinkType::Raw, &ipv4_full(A4, B4, 6, &late, 1, 0, &seg)),
            b"sr",
        );
    }
    // Record route passes.
    let rr = [7u8, 7, 4, 0, 0, 0, 0, 0];
    check_v4(
        &tcp_of(LinkType::Raw, &ipv4_full(A4, B4, 6, &rr, 1, 0, &seg)),
        b"sr",
    );
    // An IPv4 fragment with a source route is refused before it is kept.
    let frag = ipv4_full(
        A4,
        B4,
        6,
        &[0x83, 7, 4, 10, 0, 0, 9, 0],
        1,
        0x2000,
        &seg[..16],
    );
    refused_fragment(&frag);

    let seg6 = checksum_v6(A6, B6, tcp(1234, 80, 1000, &[], b"sr"));
    let mut rest = vec![6, 2, 0, 1, 0, 0, 0, 0];
    rest.extend(B6);
    rest.extend(&seg6);
    refused(&ipv6(A6, B6, 43, &rest), "IPv6 type 0 routing header");
    rest[3] = 0; // no segment left
    let seg6 = checksum_v6(A6, B6, tcp(1234, 80, 1000, &[], b"sr"));
    rest.truncate(24);
    rest.extend(&seg6);
    check_v6(&tcp_of(LinkType::Raw, &ipv6(A6, B6, 43, &rest)), b"sr");
}

/// A fragment the decoder refuses (it never reaches the defragmenter).
fn refused_fragment(frag: &[u8]) {
    assert!(matches!(
        decode(LinkType::Raw, frag, &verify()),
        Err(DecodeError::Refused { .. })
    ));
}

/// IPv4 options and the options of IPv6 Hop-by-Hop and Destination
/// Options headers must parse, or the host drops the packet; an IPv6
/// option the host does not know drops it where its type says discard.
#[test]
fn options_that_do_not_parse_or_must_be_discarded_drop_the_packet() {
    let bad = |pkt: &[u8], layer: Layer| {
        assert_eq!(
            decode(LinkType::Raw, pkt, &opts()),
            Err(DecodeError::BadOptions { layer }),
            "{pkt:x?}"
        );
    };
    let seg = checksum_v4(A4, B4, tcp(1234, 80, 1000, &[], b"o"));
    // A length under 2, a length past the header, a kind with no length.
    for o in [[0x44u8, 1, 0, 0], [0x44, 5, 0, 0], [1, 1, 1, 0x44]] {
        bad(&ipv4_full(A4, B4, 6, &o, 1, 0, &seg), Layer::Ipv4);
    }
    // Options of a known kind with lengths or pointers their kind does
    // not allow (as Linux's `ip_options_compile`): record route with a
    // pointer under 4 or no room for an address, a timestamp with a
    // pointer under 5, no room for its entry or its overflow count full,
    // two timestamps, a router alert under 4 bytes.
    for o in [
        vec![7u8, 7, 3, 0, 0, 0, 0, 0],
        vec![7, 6, 4, 0, 0, 0, 0, 0],
        vec![0x44, 8, 4, 0, 0, 0, 0, 0],
        vec![0x44, 8, 5, 1, 0, 0, 0, 0],
        vec![0x44, 4, 5, 0xf0],
        vec![0x44, 4, 5, 0, 0x44, 4, 5, 0],
        vec![0x94, 3, 0, 0],
    ] {
        bad(&ipv4_full(A4, B4, 6, &o, 1, 0, &seg), Layer::Ipv4);
    }
    // A timestamp with room, and a full one not yet overflowed, pass.
    for o in [
        [0x44u8, 8, 5, 0, 0, 0, 0, 0],
        [0x44, 8, 9, 0x10, 0, 0, 0, 0],
    ] {
        check_v4(
            &tcp_of(LinkType::Raw, &ipv4_full(A4, B4, 6, &o, 1, 0, &seg)),
            b"o",
        );
    }
    // A CIPSO label: no host without its domain configured takes it.
    assert_eq!(
        decode(
            LinkType::Raw,
            &ipv4_full(A4, B4, 6, &[0x86, 6, 0, 0, 0, 1, 0, 0], 1, 0, &seg),
            &opts()
        ),
        Err(DecodeError::Refused {
            why: "IPv4 CIPSO label"
        })
    );
    // Unknown kinds whose lengths fit pass, as hosts skip them.
    check_v4(
        &tcp_of(
            LinkType::Raw,
            &ipv4_full(A4, B4, 6, &[0x9e, 4, 1, 2], 1, 0, &seg),
        ),
        b"o",
    );

    let seg6 = checksum_v6(A6, B6, tcp(1234, 80, 1000, &[], b"o"));
    // `next` (0: Hop-by-Hop, 60: Destination Options) with `options` (8n
    // + 6 bytes), then TCP.
    let with = |next: u8, options: &[u8]| {
        assert_eq!(options.len() % 8, 6);
        let mut rest = vec![6, (options.len() / 8) as u8];
        rest.extend(options);
        rest.extend(&seg6);
        ipv6(A6, B6, next, &rest)
    };
    let refused = |pkt: &[u8], why: &'static str| {
        assert_eq!(
            decode(LinkType::Raw, pkt, &opts()),
            Err(DecodeError::Refused { why })
        );
    };
    let unknown = "unknown IPv6 option to be discarded";
    for next in [0u8, 60] {
        // PadN, Pad1s, an unknown option to skip (high bits 00).
        for o in [
            [1, 4, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [0x3e, 0, 1, 2, 0, 0],
        ] {
            check_v6(&tcp_of(LinkType::Raw, &with(next, &o)), b"o");
        }
        // Unknown ones to discard (01, 10, 11).
        for kind in [0x4e, 0x8e, 0xee] {
            refused(&with(next, &[kind, 0, 1, 2, 0, 0]), unknown);
        }
        // Lengths past the header.
        bad(&with(next, &[1, 5, 0, 0, 0, 0]), Layer::Ipv6Ext);
        bad(&with(next, &[0, 0, 0, 0, 0, 1]), Layer::Ipv6Ext);
        // As Linux's `ip6_parse_tlv`: 8 bytes of padding in a row, PadN
        // that is not all zero, 9 options besides padding.
        let mut long_pad = [0u8; 14];
        long_pad[8..].copy_from_slice(&[0x3e, 0, 1, 2, 0, 0]);
        bad(&with(next, &long_pad), Layer::Ipv6Ext);
        bad(&with(next, &[1, 4, 0, 0, 1, 0]), Layer::Ipv6Ext);
        let mut nine = [0x3e, 0].repeat(9);
        nine.extend([1, 2, 0, 0]);
        bad(&with(next, &nine), Layer::Ipv6Ext);
        nine[16..18].copy_from_slice(&[1, 0]); // eight, and padding
        check_v6(&tcp_of(LinkType::Raw, &with(next, &nine)), b"o");
    }
    // Hop-by-Hop knows the router alert (2 bytes), in-situ OAM (at 4n),
    // the jumbo payload (4 bytes at 4n + 2, a length over 65,535 with a
    // payload length of 0) and CALIPSO (refused without its domain).
    check_v6(&tcp_of(LinkType::Raw, &with(0, &[5, 2, 0, 0, 1, 0])), b"o");
    bad(&with(0, &[5, 1, 0, 0, 0, 0]), Layer::Ipv6Ext);
    check_v6(
        &tcp_of(LinkType::Raw, &with(0, &[1, 0, 0x31, 0, 1, 0])),
        b"o",
    );
    bad(&with(0, &[0x31, 0, 1, 2, 0, 0]), Layer::Ipv6Ext);
    refused(&with(0, &[7, 4, 0, 0, 0, 1]), "IPv6 CALIPSO label");
    let jumbo = [0xc2, 4, 0, 1, 0, 0];
    let no_jumbogram = "IPv6 jumbo payload option without a jumbogram";
    refused(&with(0, &jumbo), no_jumbogram);
    let mut jumbogram = with(0, &jumbo);
    jumbogram[4..6].fill(0); // the payload length a jumbogram has
    check_v6(&tcp_of(LinkType::Raw, &jumbogram), b"o");
    jumbogram[42..48].copy_from_slice(&[0xc2, 4, 0, 0, 0xff, 0xff]);
    refused(&jumbogram, no_jumbogram);
    bad(&with(0, &[1, 0, 0xc2, 4, 0, 1]), Layer::Ipv6Ext); // at 4n
                                                           // Destination Options knows none of them: the jumbo payload and the
                                                           // home address (no Mobile IPv6 binding) are refused there.
    refused(&with(60, &jumbo), unknown);
    let mut home = vec![0xc9, 16];
    home.extend(B6);
    home.extend([1, 2, 0, 0]);
    refused(&with(60, &home), unknown);
    // Hop-by-Hop anywhere but first (RFC 8200 §4.1).
    let mut rest = vec![0, 0, 1, 4, 0, 0, 0, 0];
    rest.extend([6, 0, 1, 4, 0, 0, 0, 0]);
    rest.extend(&seg6);
    refused(&ipv6(A6, B6, 60, &rest), "IPv6 Hop-by-Hop header not first");
    // A routing header of a type not known, with segments left (RFC 8200
    // §4.4); with none left it is skipped.
    let mut rest = vec![6, 2, 9, 1, 0, 0, 0, 0];
    rest.extend(B6);
    rest.extend(&seg6);
    refused(
        &ipv6(A6, B6, 43, &rest),
        "IPv6 routing header of an unknown type",
    );
    rest[3] = 0;
    check_v6(&tcp_of(LinkType::Raw, &ipv6(A6, B6, 43, &rest)), b"o");
}

/// Extension headers are followed as far as the packet goes (no count
/// limit, as a host takes them): 20 of them and then TCP decode; 20 that
/// announce one more than the packet holds end truncated.
#[test]
fn ipv6_extension_headers_as_far_as_the_packet_goes() {
    let mut rest = Vec::new();
    for _ in 0..20 {
        rest.extend([60, 0, 1, 4, 0, 0, 0, 0]);
    }
    let pkt = ipv6(A6, B6, 60, &rest);
    assert!(matches!(
        decode(LinkType::Raw, &pkt, &opts()),
        Err(DecodeError::Truncated { .. })
    ));
    let last = rest.len() - 8;
    rest[last] = 6;
    rest.extend(checksum_v6(A6, B6, tcp(1234, 80, 1000, &[], b"deep")));
    check_v6(&tcp_of(LinkType::Raw, &ipv6(A6, B6, 60, &rest)), b"deep");
}

#[test]
fn ipv6_fragments() {
    let seg = checksum_v6(A6, B6, tcp(1234, 80, 1000, &[], b"atomic"));
    let mut rest = vec![6, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
    rest.extend(&seg);
    check_v6(&tcp_of(LinkType::Raw, &ipv6(A6, B6, 44, &rest)), b"atomic");
    rest[2..4].copy_from_slice(&((16u16 << 3) | 1).to_be_bytes());
    let pkt = ipv6(A6, B6, 44, &rest);
    match decode(LinkType::Raw, &pkt, &opts()) {
        Ok(Decoded::Fragment(f)) => {
            assert_eq!((f.ip_version, f.id, f.protocol), (6, 0xdeadbeef, 6));
            assert_eq!((f.offset, f.more), (128, true));
            assert_eq!(f.data, &seg[..]);
            assert_eq!(f.header, &pkt[..40]);
            assert_eq!(f.src, ip("2001:db8::1"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ipv4_fragment() {
    let pkt = ipv4_full(A4, B4, 6, &[], 0x4242, 0x2000 | 3, &[1u8; 16]);
    let f = eth(0x8100, &tag(9, 0x0800, &pkt));
    match decode(LinkType::Ethernet, &f, &opts()) {
        Ok(Decoded::Fragment(fr)) => {
            assert_eq!((fr.ip_version, fr.id, fr.protocol), (4, 0x4242, 6));
            assert_eq!((fr.offset, fr.more, fr.vlan), (24, true, 9));
            assert_eq!(fr.data, &[1u8; 16]);
            assert_eq!(fr.header, &pkt[..20]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn gre_variants() {
    // Plain GRE carrying IPv4.
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend(tcp4(b"gre"));
    let outer = ipv4(B4, A4, 47, &gre);
    let p = tcp_of(LinkType::Raw, &outer);
    check_v4(&p, b"gre");
    assert!(p.tunnel);
    assert_eq!(p.ip_offset, 24);
    // Checksum + key + sequence, transparent Ethernet bridging.
    let mut gre = vec![0xb0, 0, 0x65, 0x58, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1];
    gre.extend(eth(0x86dd, &tcp6(b"teb")));
    let frame = ipv4(B4, A4, 47, &gre);
    let p = tcp_of(LinkType::Raw, &frame);
    check_v6(&p, b"teb");
    assert_eq!(p.ip_offset, 20 + 16 + 14);
    // Bridged with a key: NVGRE, the key's upper 24 bits the network (the
    // key after the checksum when there is one); key 5 is network 0.
    assert_eq!(p.key.vni(), 0);
    let mut nvgre = vec![0x20, 0, 0x65, 0x58, 0x12, 0x34, 0x56, 0x07];
    nvgre.extend(eth(0x0800, &tcp4(b"nvgre")));
    let nvgre_frame = ipv4(B4, A4, 47, &nvgre);
    let p = tcp_of(LinkType::Raw, &nvgre_frame);
    check_v4(&p, b"nvgre");
    assert_eq!(p.key.vni(), 0x12_3456);
    let mut summed = vec![0xa0, 0, 0x65, 0x58, 0xff, 0xff, 0, 0, 0, 1, 0, 9];
    summed.extend(eth(0x0800, &tcp4(b"nvgre")));
    assert_eq!(
        tcp_of(LinkType::Raw, &ipv4(B4, A4, 47, &summed)).key.vni(),
        0x100
    );
    let cut = ipv4(B4, A4, 47, &nvgre[..6]);
    assert_eq!(
        decode(LinkType::Raw, &cut, &opts()),
        Err(DecodeError::Truncated { layer: Layer::Gre })
    );
    // ERSPAN type II.
    let mut gre = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 1];
    gre.extend([0x10, 0, 0, 1, 0, 0, 0, 0]);
    gre.extend(eth(0x0800, &tcp4(b"erspan")));
    check_v4(&tcp_of(LinkType::Raw, &ipv6(B6, A6, 47, &gre)), b"erspan");
    // Truncated optional fields.
    let gre = [0xb0, 0, 0x08, 0x00, 0, 0];
    assert_eq!(
        decode(LinkType::Raw, &ipv4(B4, A4, 47, &gre), &opts()),
        Err(DecodeError::Truncated { layer: Layer::Gre })
    );
}

#[test]
fn vxlan() {
    let mut udp = vec![0xc0, 0x00, 0x12, 0xb5, 0, 0, 0, 0];
    udp.extend([0x08, 0, 0, 0, 0, 0, 42, 0]);
    udp.extend(eth(0x8100, &tag(3, 0x0800, &tcp4(b"vxlan"))));
    let outer = eth(0x0800, &ipv4(B4, A4, 17, &udp));
    let p = tcp_of(LinkType::Ethernet, &outer);
    check_v4(&p, b"vxlan");
    assert!(p.tunnel);
    assert_eq!(p.key.vlan(), 3);
    // The network is part of the key, and a worker decoding from the
    // inner IP header in the dispatcher's zone finds the same key.
    assert_eq!(p.key.vni(), 42);
    assert_ne!(p.key.tunnel_ends(), 0);
    let shown = p.key.to_string();
    assert!(shown.contains(" vlan 3 vni 42 tunnel "), "{shown}");
    let inner = &outer[usize::from(p.ip_offset)..];
    match decode_ip_in(inner, p.key.zone(), &opts()) {
        Ok(Decoded::Tcp(q)) => assert_eq!(q.key, p.key),
        other => panic!("{other:?}"),
    }
    match decode_ip(inner, 3, &opts()) {
        Ok(Decoded::Tcp(q)) => assert_ne!(q.key, p.key, "outside the network"),
        other => panic!("{other:?}"),
    }
    // Other port: just UDP.
    let no = DecodeOptions {
        vxlan_port: 8472,
        ..opts()
    };
    assert_eq!(decode(LinkType::Ethernet, &outer, &no), Ok(Decoded::Other));
    // Tunnels off.
    let off = DecodeOptions {
        decode_tunnels: false,
        ..opts()
    };
    assert_eq!(decode(LinkType::Ethernet, &outer, &off), Ok(Decoded::Other));
}

/// A segment out of a tunnel is not of the connection its inner addresses
/// hold outside it (its hosts do not take it unless they end the tunnel):
/// the innermost tunnel's outer addresses are in the key, the same for
/// both directions of the tunnel, for every kind of tunnel; with
/// `key_tunnel_ends` off the key is the native one.
#[test]
fn a_tunnel_keeps_its_segments_apart_from_native_ones() {
    let native = tcp_of(LinkType::Raw, &tcp4(b"x")).key;
    assert_eq!(native.tunnel_ends(), 0);
    let gre = |outer_src, outer_dst| {
        let mut g = vec![0, 0, 0x08, 0x00];
        g.extend(tcp4(b"x"));
        ipv4(outer_src, outer_dst, 47, &g)
    };
    let ipip = |outer_src, outer_dst| ipv4(outer_src, outer_dst, 4, &tcp4(b"x"));
    let third = [192, 0, 2, 77];
    for (kind, make) in [("gre", &gre as &dyn Fn(_, _) -> Vec<u8>), ("ipip", &ipip)] {
        let there = tcp_of(LinkType::Raw, &make(A4, B4)).key;
        let back = tcp_of(LinkType::Raw, &make(B4, A4)).key;
        let other = tcp_of(LinkType::Raw, &make(A4, third)).key;
        assert_ne!(there, native, "{kind}");
        assert_ne!(there.tunnel_ends(), 0, "{kind}");
        assert_eq!(there, back, "{kind}: both directions of one tunnel");
        assert_ne!(there, other, "{kind}: another tunnel");
        let off = DecodeOptions {
            key_tunnel_ends: false,
            ..opts()
        };
        match decode(LinkType::Raw, &make(A4, B4), &off) {
            Ok(Decoded::Tcp(p)) => assert_eq!(p.key, native, "{kind}, off"),
            other => panic!("{other:?}"),
        }
    }
    // Tunnels with other ends are told apart (8 bits: most pairs), one
    // deep.
    let ends: Vec<u16> = (0..64u8)
        .map(|i| {
            tcp_of(LinkType::Raw, &gre([10, 9, 8, i], B4))
                .key
                .tunnel_ends()
        })
        .collect();
    assert!(ends.iter().all(|&e| e >> 8 == 1), "{ends:?}");
    let distinct: std::collections::HashSet<u16> = ends.into_iter().collect();
    assert!(distinct.len() > 40, "{} values of 64", distinct.len());
}

/// Where the connections themselves are seen through a tunnel (a mirror
/// session in VXLAN), a segment sent through a tunnel of its own inside
/// it is one tunnel deeper: never of their connection, whatever the two
/// tunnels' ends hash to.
#[test]
fn a_tunnel_inside_the_mirror_stays_apart_from_the_mirrored_traffic() {
    let vxlan = |inner_ip: &[u8]| {
        let mut udp = vec![0xc0, 0x00, 0x12, 0xb5, 0, 0, 0, 0];
        udp.extend([0x08, 0, 0, 0, 0, 0, 42, 0]);
        udp.extend(eth(0x0800, inner_ip));
        eth(0x0800, &ipv4(B4, A4, 17, &udp))
    };
    let mirrored = tcp_of(LinkType::Ethernet, &vxlan(&tcp4(b"x"))).key;
    assert_eq!(mirrored.tunnel_ends() >> 8, 1);
    for i in 0..=255u8 {
        let inner = ipv4([198, 51, 100, i], A4, 4, &tcp4(b"x"));
        let forged = tcp_of(LinkType::Ethernet, &vxlan(&inner)).key;
        assert_eq!(forged.tunnel_ends() >> 8, 2);
        assert_ne!(forged, mirrored, "outer source {i}");
    }
}

/// A Geneve header (version 0) naming `proto`, with `options` (a multiple
/// of 4 bytes) and `flags` (O, C), inside UDP to `port`, then `inner`.
fn geneve(port: u16, flags: u8, proto: u16, options: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut udp = vec![0xc0, 0x00];
    udp.extend(port.to_be_bytes());
    udp.extend([0, 0, 0, 0]);
    udp.push((options.len() / 4) as u8);
    udp.push(flags);
    udp.extend(proto.to_be_bytes());
    udp.extend([0, 0, 42, 0]);
    udp.extend(options);
    udp.extend(inner);
    udp
}

/// Geneve (RFC 8926) to port 6081: Ethernet (with its VLAN tag folded),
/// IPv4 or IPv6 inside, options skipped; the critical-option flag does not
/// matter to a reader.
#[test]
fn geneve_carries_ethernet_and_ip() {
    let opt = [0x01, 0x02, 0x80, 0x01, 0xde, 0xad, 0xbe, 0xef];
    let udp = geneve(
        6081,
        0x40,
        0x6558,
        &opt,
        &eth(0x8100, &tag(5, 0x0800, &tcp4(b"gen-eth"))),
    );
    let outer = eth(0x0800, &ipv4(B4, A4, 17, &udp));
    let p = tcp_of(LinkType::Ethernet, &outer);
    check_v4(&p, b"gen-eth");
    assert!(p.tunnel);
    assert_eq!(p.key.vlan(), 5);
    assert_eq!(p.key.vni(), 42);
    let v4_in_v6 = ipv6(B6, A6, 17, &geneve(6081, 0, 0x0800, &[], &tcp4(b"gen4")));
    let p = tcp_of(LinkType::Raw, &v4_in_v6);
    check_v4(&p, b"gen4");
    assert!(p.tunnel);
    let v6_in_v4 = ipv4(B4, A4, 17, &geneve(6081, 0, 0x86dd, &opt, &tcp6(b"gen6")));
    check_v6(&tcp_of(LinkType::Raw, &v6_in_v4), b"gen6");
    // Any EtherType the Ethernet decoder follows, as for GRE: a VLAN tag
    // (folded into the key), an MPLS label.
    let tagged = ipv4(
        B4,
        A4,
        17,
        &geneve(6081, 0, 0x8100, &[], &tag(9, 0x0800, &tcp4(b"tag"))),
    );
    let p = tcp_of(LinkType::Raw, &tagged);
    check_v4(&p, b"tag");
    assert_eq!(p.key.vlan(), 9);
    let mut label = vec![0x00, 0x01, 0x41, 0x40]; // label 20, bottom of stack
    label.extend(tcp6(b"mpls"));
    let labelled = ipv4(B4, A4, 17, &geneve(6081, 0, 0x8847, &opt, &label));
    let p = tcp_of(LinkType::Raw, &labelled);
    check_v6(&p, b"mpls");
    assert!(p.tunnel);
    // Another port, or none: just UDP.
    for geneve_port in [7000, 0] {
        let no = DecodeOptions {
            geneve_port,
            ..opts()
        };
        assert_eq!(decode(LinkType::Ethernet, &outer, &no), Ok(Decoded::Other));
    }
    let moved = eth(
        0x0800,
        &ipv4(B4, A4, 17, &geneve(7000, 0, 0x0800, &[], &tcp4(b"7000"))),
    );
    let to = DecodeOptions {
        geneve_port: 7000,
        ..verify()
    };
    match decode(LinkType::Ethernet, &moved, &to) {
        Ok(Decoded::Tcp(p)) => check_v4(&p, b"7000"),
        other => panic!("{other:?}"),
    }
    let off = DecodeOptions {
        decode_tunnels: false,
        ..opts()
    };
    assert_eq!(decode(LinkType::Ethernet, &outer, &off), Ok(Decoded::Other));
}

/// What Geneve does not carry to a reader: control (OAM) packets, other
/// versions and protocols; cut headers and options are truncated.
#[test]
fn geneve_control_other_versions_and_truncation() {
    let inner = tcp4(b"x");
    let frame = |udp: Vec<u8>| ipv4(B4, A4, 17, &udp);
    let oam = frame(geneve(6081, 0x80, 0x0800, &[], &inner));
    assert_eq!(decode(LinkType::Raw, &oam, &opts()), Ok(Decoded::Other));
    let mut v1 = geneve(6081, 0, 0x0800, &[], &inner);
    v1[8] |= 0x40;
    assert_eq!(
        decode(LinkType::Raw, &frame(v1), &opts()),
        Ok(Decoded::Other)
    );
    let arp = frame(geneve(6081, 0, 0x0806, &[], &inner));
    assert_eq!(decode(LinkType::Raw, &arp, &opts()), Ok(Decoded::Other));
    let truncated = Err(DecodeError::Truncated {
        layer: Layer::Geneve,
    });
    // The header cut, and options longer than what follows (the IP
    // length still covers the frame, so the cut is Geneve's).
    let whole = frame(geneve(6081, 0, 0x0800, &[], &[]));
    assert_eq!(
        decode(
            LinkType::Raw,
            &frame(geneve(6081, 0, 0x0800, &[], &[])[..12].to_vec()),
            &opts()
        ),
        truncated
    );
    let mut long = geneve(6081, 0, 0x0800, &[], &[0; 8]);
    long[8] = 3; // 12 bytes of options, 8 there
    assert_eq!(decode(LinkType::Raw, &frame(long), &opts()), truncated);
    assert_eq!(
        decode(LinkType::Raw, &whole, &opts()),
        Err(DecodeError::Truncated { layer: Layer::Ipv4 })
    );
}

/// A GTP-U header (`flags`: version and PT bits set by the caller,
/// message type `message`) with `optional` (the 4 bytes after the
/// header, if any) and `extensions`, inside UDP to port 2152, then `inner`.
fn gtpu(flags: u8, message: u8, optional: &[u8], extensions: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut udp = vec![0x08, 0x68, 0x08, 0x68, 0, 0, 0, 0];
    udp.extend([flags, message]);
    udp.extend(((optional.len() + extensions.len() + inner.len()) as u16).to_be_bytes());
    udp.extend([0, 0, 0, 7]);
    udp.extend(optional);
    udp.extend(extensions);
    udp.extend(inner);
    udp
}

/// GTP-U to port 2152: the G-PDU's IP packet, behind the optional fields
/// and a chain of extension headers (a PDU session container, then one
/// more), over IPv4 or IPv6.
#[test]
fn gtpu_carries_ip() {
    let plain = ipv4(B4, A4, 17, &gtpu(0x30, 0xff, &[], &[], &tcp4(b"gtp")));
    let p = tcp_of(LinkType::Raw, &plain);
    check_v4(&p, b"gtp");
    assert!(p.tunnel);
    // S: a sequence number (and the other two optional bytes; without E
    // the next-extension type is not read).
    let seq = ipv6(
        B6,
        A6,
        17,
        &gtpu(0x32, 0xff, &[0, 9, 0, 0x85], &[], &tcp6(b"gtp6")),
    );
    check_v6(&tcp_of(LinkType::Raw, &seq), b"gtp6");
    // E: a PDU session container (4 bytes), then a 8-byte extension.
    let ext = [1, 0x10, 0x05, 0xc0, 2, 0, 0, 0, 0, 0, 0, 0];
    let chained = eth(
        0x0800,
        &ipv4(
            B4,
            A4,
            17,
            &gtpu(0x34, 0xff, &[0, 0, 0, 0x85], &ext, &tcp4(b"ext")),
        ),
    );
    check_v4(&tcp_of(LinkType::Ethernet, &chained), b"ext");
    // PN alone: the optional fields are there too.
    let pn = ipv4(
        B4,
        A4,
        17,
        &gtpu(0x31, 0xff, &[0, 0, 5, 0], &[], &tcp4(b"pn")),
    );
    check_v4(&tcp_of(LinkType::Raw, &pn), b"pn");
    // The longest chain followed: 16 extension headers.
    let sixteen = [1u8, 0, 0, 0x85].repeat(15);
    let sixteen = [&sixteen[..], &[1, 0, 0, 0]].concat();
    let long = ipv4(
        B4,
        A4,
        17,
        &gtpu(0x34, 0xff, &[0, 0, 0, 0x85], &sixteen, &tcp4(b"16")),
    );
    check_v4(&tcp_of(LinkType::Raw, &long), b"16");
    let off = DecodeOptions {
        gtpu_port: 0,
        ..opts()
    };
    assert_eq!(
        decode(LinkType::Ethernet, &chained, &off),
        Ok(Decoded::Other)
    );
    // Another port: the capture's 2152 is just UDP, and that port is GTP-U.
    let mut moved = gtpu(0x30, 0xff, &[], &[], &tcp4(b"7000"));
    moved[2..4].copy_from_slice(&7000u16.to_be_bytes());
    let moved = ipv4(B4, A4, 17, &moved);
    let to = DecodeOptions {
        gtpu_port: 7000,
        ..verify()
    };
    assert_eq!(decode(LinkType::Raw, &plain, &to), Ok(Decoded::Other));
    match decode(LinkType::Raw, &moved, &to) {
        Ok(Decoded::Tcp(p)) => check_v4(&p, b"7000"),
        other => panic!("{other:?}"),
    }
    // A port given for two tunnels is VXLAN's (as before the others).
    let both = DecodeOptions {
        vxlan_port: 2152,
        ..opts()
    };
    assert_eq!(decode(LinkType::Raw, &plain, &both), Ok(Decoded::Other));
}

/// What GTP-U does not carry to a reader: other messages, GTP', other
/// versions, a payload that is not IP; cut or malformed chains.
#[test]
fn gtpu_other_messages_and_bad_chains() {
    let inner = tcp4(b"x");
    // Whether the frame is other traffic (`Ok(false)`: TCP), or the error.
    let raw = |udp: Vec<u8>| {
        decode(LinkType::Raw, &ipv4(B4, A4, 17, &udp), &opts()).map(|d| d == Decoded::Other)
    };
    let echo = gtpu(0x32, 1, &[0, 1, 0, 0], &[], &[]);
    assert_eq!(raw(echo), Ok(true));
    assert_eq!(raw(gtpu(0x20, 0xff, &[], &[], &inner)), Ok(true)); // GTP'
    assert_eq!(raw(gtpu(0x50, 0xff, &[], &[], &inner)), Ok(true)); // version 2
    assert_eq!(raw(gtpu(0x30, 0xff, &[], &[], &[0x00; 24])), Ok(true));
    let truncated = Err(DecodeError::Truncated { layer: Layer::Gtpu });
    assert_eq!(raw(gtpu(0x30, 0xff, &[], &[], &[])), truncated);
    assert_eq!(raw(gtpu(0x34, 0xff, &[0, 0], &[], &[])), truncated);
    // An extension longer than what follows, and one of length 0.
    assert_eq!(
        raw(gtpu(0x34, 0xff, &[0, 0, 0, 0x85], &[3, 0, 0, 0], &[])),
        truncated
    );
    assert_eq!(
        raw(gtpu(0x34, 0xff, &[0, 0, 0, 0x85], &[0, 0, 0, 0], &inner)),
        Err(DecodeError::BadHeaderLen { layer: Layer::Gtpu })
    );
    // A chain that does not end within 16 headers.
    let endless: Vec<u8> = [1u8, 0, 0, 0x85].repeat(17);
    assert!(matches!(
        raw(gtpu(0x34, 0xff, &[0, 0, 0, 0x85], &endless, &inner)),
        Err(DecodeError::Unsupported { .. })
    ));
}

#[test]
fn ip_in_ip_and_6in4() {
    let frame = ipv4(B4, A4, 4, &tcp4(b"ipip"));
    let p = tcp_of(LinkType::Raw, &frame);
    check_v4(&p, b"ipip");
    assert!(p.tunnel);
    assert_eq!(p.ip_offset, 20);
    let frame = ipv4(B4, A4, 41, &tcp6(b"6in4"));
    let p = tcp_of(LinkType::Raw, &frame);
    check_v6(&p, b"6in4");
    let frame = ipv6(B6, A6, 4, &tcp4(b"4in6"));
    let p = tcp_of(LinkType::Raw, &frame);
    check_v4(&p, b"4in6");
}

/// With checksums verified, the IPv4 header of a tunnel is checked too (its
/// end drops the packet if wrong, so the receiver never sees it): the
/// verdict is the packet's `tunnel_checksum_ok`, the inner one stays its
/// own; a fragment out of such a tunnel is bad as a whole.
#[test]
fn a_tunnels_ipv4_header_checksum_is_checked() {
    let good = ipv4(B4, A4, 4, &tcp4(b"ipip"));
    let p = tcp_of(LinkType::Raw, &good);
    assert_eq!(
        (p.tunnel_checksum_ok, p.checksum_ok),
        (Some(true), Some(true))
    );
    let mut bad = good.clone();
    bad[10] ^= 1; // the outer header's checksum
    let p = tcp_of(LinkType::Raw, &bad);
    assert_eq!(
        (p.tunnel_checksum_ok, p.checksum_ok),
        (Some(false), Some(true))
    );
    match decode(LinkType::Raw, &bad, &opts()) {
        Ok(Decoded::Tcp(p)) => assert_eq!(p.tunnel_checksum_ok, None, "not asked"),
        other => panic!("{other:?}"),
    }
    // Two tunnels deep, either bad; none outside an IPv4 header of its own.
    let mut two = ipv4(B4, A4, 4, &good);
    assert_eq!(tcp_of(LinkType::Raw, &two).tunnel_checksum_ok, Some(true));
    two[20 + 10] ^= 1;
    assert_eq!(tcp_of(LinkType::Raw, &two).tunnel_checksum_ok, Some(false));
    let four_in_six = ipv6(B6, A6, 4, &tcp4(b"4in6"));
    assert_eq!(tcp_of(LinkType::Raw, &four_in_six).tunnel_checksum_ok, None);
    assert_eq!(
        tcp_of(LinkType::Raw, &tcp4(b"plain")).tunnel_checksum_ok,
        None
    );
    // A fragment, good itself, out of a bad tunnel.
    let frag = ipv4_full(A4, B4, 6, &[], 0x4242, 0x2000, &[1u8; 16]);
    let mut outer = ipv4(B4, A4, 4, &frag);
    let fragment_ok = |f: &[u8]| match decode(LinkType::Raw, f, &verify()) {
        Ok(Decoded::Fragment(fr)) => fr.checksum_ok,
        other => panic!("{other:?}"),
    };
    assert_eq!(fragment_ok(&outer), Some(true));
    outer[10] ^= 1;
    assert_eq!(fragment_ok(&outer), Some(false));
    // ERSPAN carries a mirror's copies: its outer header is the mirror's,
    // not on the way to the receiver, and is not judged; GRE otherwise is.
    for kind in [[0x88, 0xbe], [0x22, 0xeb], [0x08, 0x00]] {
        let mut gre = vec![0x10, 0, kind[0], kind[1], 0, 0, 0, 1];
        match kind {
            [0x88, 0xbe] => gre.extend([0x10, 0, 0, 1, 0, 0, 0, 0]),
            [0x22, 0xeb] => gre.extend([0; 12]),
            _ => {}
        }
        if kind == [0x08, 0x00] {
            gre.extend(tcp4(b"gre"));
        } else {
            gre.extend(eth(0x0800, &tcp4(b"mirrored")));
        }
        let mut frame = ipv4(B4, A4, 47, &gre);
        frame[10] ^= 1;
        let want = (kind == [0x08, 0x00]).then_some(false);
        assert_eq!(
            tcp_of(LinkType::Raw, &frame).tunnel_checksum_ok,
            want,
            "{kind:x?}"
        );
    }
}

/// With checksums verified, the checksums tunnels' own headers carry are
/// judged as their ends judge them: GRE's where its C bit says it has
/// one, UDP's (VXLAN here) where it is not zero.
#[test]
fn gre_and_udp_tunnel_checksums_are_checked() {
    use weft_wire::internet_checksum;
    // GRE with a checksum.
    let mut gre = vec![0x80, 0, 0x08, 0x00, 0, 0, 0, 0];
    gre.extend(tcp4(b"gre csum"));
    let sum = internet_checksum(&gre, 0);
    gre[4..6].copy_from_slice(&sum.to_be_bytes());
    let mut frame = ipv4(B4, A4, 47, &gre);
    assert_eq!(tcp_of(LinkType::Raw, &frame).tunnel_checksum_ok, Some(true));
    // Cut by the capture, it cannot be judged: the bytes it covers are
    // not all there.
    match decode(LinkType::Raw, &frame[..frame.len() - 3], &verify()) {
        Ok(Decoded::Tcp(p)) => assert_eq!(p.tunnel_checksum_ok, Some(true)),
        other => panic!("{other:?}"),
    }
    frame[20 + 4] ^= 1;
    let p = tcp_of(LinkType::Raw, &frame);
    assert_eq!(
        (p.tunnel_checksum_ok, p.checksum_ok),
        (Some(false), Some(true))
    );
    // VXLAN with a UDP checksum, over the IPv4 pseudo-header.
    let mut udp = vec![0xc0, 0x00, 0x12, 0xb5, 0, 0, 0, 0];
    udp.extend([0x08, 0, 0, 0, 0, 0, 42, 0]);
    udp.extend(eth(0x0800, &tcp4(b"vxlan csum")));
    let len = udp.len() as u16;
    udp[4..6].copy_from_slice(&len.to_be_bytes());
    let pseudo = [&B4[..], &A4[..], &[0, 17], &len.to_be_bytes()[..]].concat();
    let sum = internet_checksum(&[&pseudo[..], &udp[..]].concat(), 0);
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    let mut frame = ipv4(B4, A4, 17, &udp);
    assert_eq!(tcp_of(LinkType::Raw, &frame).tunnel_checksum_ok, Some(true));
    frame[20 + 7] ^= 1;
    assert_eq!(
        tcp_of(LinkType::Raw, &frame).tunnel_checksum_ok,
        Some(false)
    );
    // A zero UDP checksum is none: only the IPv4 header is judged.
    frame[20 + 6..20 + 8].copy_from_slice(&[0, 0]);
    assert_eq!(tcp_of(LinkType::Raw, &frame).tunnel_checksum_ok, Some(true));
    // Cut by the capture, the UDP checksum cannot be judged.
    let mut udp_cut = frame.clone();
    udp_cut[20 + 6..20 + 8].copy_from_slice(&sum.to_be_bytes());
    udp_cut[20 + 7] ^= 1;
    udp_cut.truncate(udp_cut.len() - 3);
    match decode(LinkType::Raw, &udp_cut, &verify()) {
        Ok(Decoded::Tcp(p)) => assert_eq!(p.tunnel_checksum_ok, Some(true)),
        other => panic!("{other:?}"),
    }
}

/// VXLAN over IPv6 with a zero UDP checksum is dropped by a Linux VXLAN
/// device unless made with `udp6zerocsumrx`: judged bad unless told, cut
/// by the capture or not. Geneve's and GTP-U's devices take it; a
/// checksum over IPv6 is judged over its pseudo-header.
#[test]
fn a_zero_udp_checksum_over_ipv6_is_judged_as_vxlan_judges_it() {
    use weft_wire::internet_checksum;
    let tunnel = |dport: u16, inner: Vec<u8>, sum: bool| {
        let mut udp = vec![0xc0, 0x00, 0, 0, 0, 0, 0, 0];
        udp[2..4].copy_from_slice(&dport.to_be_bytes());
        udp.extend(inner);
        let len = udp.len() as u16;
        udp[4..6].copy_from_slice(&len.to_be_bytes());
        if sum {
            let pseudo = [
                &B6[..],
                &A6[..],
                &[0, 0],
                &len.to_be_bytes()[..],
                &[0, 0, 0, 17],
            ]
            .concat();
            let sum = internet_checksum(&[&pseudo[..], &udp[..]].concat(), 0);
            udp[6..8].copy_from_slice(&sum.to_be_bytes());
        }
        ipv6(B6, A6, 17, &udp)
    };
    let vxlan = || {
        [
            &[0x08, 0, 0, 0, 0, 0, 42, 0][..],
            &eth(0x0800, &tcp4(b"vxlan6")),
        ]
        .concat()
    };
    let geneve = || {
        [
            &[0, 0, 0x65, 0x58, 0, 0, 42, 0][..],
            &eth(0x0800, &tcp4(b"geneve6")),
        ]
        .concat()
    };
    let gtpu = || {
        let inner = tcp4(b"gtpu6");
        let mut h = vec![0x30, 0xff, 0, 0, 0, 0, 0, 1];
        h[2..4].copy_from_slice(&(inner.len() as u16).to_be_bytes());
        [h, inner].concat()
    };
    let zero = tunnel(4789, vxlan(), false);
    assert_eq!(tcp_of(LinkType::Raw, &zero).tunnel_checksum_ok, Some(false));
    let cut = &zero[..zero.len() - 3];
    match decode(LinkType::Raw, cut, &verify()) {
        Ok(Decoded::Tcp(p)) => assert_eq!(p.tunnel_checksum_ok, Some(false)),
        other => panic!("{other:?}"),
    }
    let told = DecodeOptions {
        vxlan_udp6_zero_csum_rx: true,
        ..verify()
    };
    match decode(LinkType::Raw, &zero, &told) {
        Ok(Decoded::Tcp(p)) => assert_eq!(p.tunnel_checksum_ok, None),
        other => panic!("{other:?}"),
    }
    match decode(LinkType::Raw, &zero, &opts()) {
        Ok(Decoded::Tcp(p)) => assert_eq!(p.tunnel_checksum_ok, None, "not asked"),
        other => panic!("{other:?}"),
    }
    let summed = tunnel(4789, vxlan(), true);
    assert_eq!(
        tcp_of(LinkType::Raw, &summed).tunnel_checksum_ok,
        Some(true)
    );
    for (port, inner) in [(6081, geneve()), (2152, gtpu())] {
        let zero = tunnel(port, inner, false);
        assert_eq!(
            tcp_of(LinkType::Raw, &zero).tunnel_checksum_ok,
            None,
            "{port}"
        );
    }
    // What is VXLAN is what the decoder follows as VXLAN: not with its
    // port turned off (then Geneve's, here), and first where a port is
    // named for both.
    let shared = tunnel(6081, vxlan(), false);
    let vxlan_on = |vxlan_port: u16| DecodeOptions {
        vxlan_port,
        ..verify()
    };
    match decode(LinkType::Raw, &shared, &vxlan_on(6081)) {
        Ok(Decoded::Tcp(p)) => assert_eq!(p.tunnel_checksum_ok, Some(false)),
        other => panic!("{other:?}"),
    }
    let geneve_zero = tunnel(6081, geneve(), false);
    match decode(LinkType::Raw, &geneve_zero, &vxlan_on(0)) {
        Ok(Decoded::Tcp(p)) => assert_eq!(p.tunnel_checksum_ok, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nesting_is_bounded() {
    let mut pkt = tcp4(b"deep");
    for _ in 0..8 {
        pkt = ipv4(B4, A4, 4, &pkt);
    }
    assert!(matches!(
        decode(LinkType::Raw, &pkt, &opts()),
        Ok(Decoded::Tcp(_))
    ));
    pkt = ipv4(B4, A4, 4, &pkt);
    assert_eq!(
        decode(LinkType::Raw, &pkt, &opts()),
        Err(DecodeError::Unsupported {
            what: "nesting too deep"
        })
    );
}

#[test]
fn not_tcp_is_other() {
    let udp = ipv4(A4, B4, 17, &[0, 53, 0, 53, 0, 8, 0, 0]);
    assert_eq!(decode(LinkType::Raw, &udp, &opts()), Ok(Decoded::Other));
    let arp = eth(0x0806, &[0u8; 28]);
    assert_eq!(
        decode(LinkType::Ethernet, &arp, &opts()),
        Ok(Decoded::Other)
    );
    assert_eq!(
        decode(LinkType::Ethernet, &arp[..13], &opts()),
        Err(DecodeError::Truncated {
            layer: Layer::Ethernet
        })
    );
}

#[test]
fn decode_ip_keeps_vlan_and_reverse_direction() {
    let seg = checksum_v4(B4, A4, tcp(80, 1234, 5, &[], b"back"));
    let pkt = ipv4(B4, A4, 6, &seg);
    match decode_ip(&pkt, 77, &verify()) {
        Ok(Decoded::Tcp(p)) => {
            assert_eq!(p.dir, Dir::HiToLo);
            assert_eq!(p.key.vlan(), 77);
            assert_eq!(p.key.src(p.dir), (ip("10.0.0.2"), 80));
            assert_eq!(p.checksum_ok, Some(true));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_display() {
    let e = DecodeError::Truncated { layer: Layer::Tcp };
    assert_eq!(e.to_string(), "truncated Tcp header");
    let _: &dyn std::error::Error = &e;
}

#[test]
fn erspan_type3_and_gre_not_followed() {
    // ERSPAN III: 12-byte header with the O bit, then an 8-byte subheader.
    let mut gre = vec![0x10, 0, 0x22, 0xeb, 0, 0, 0, 1];
    gre.extend([0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    gre.extend([0u8; 8]);
    gre.extend(eth(0x0800, &tcp4(b"e3")));
    let frame = ipv4(B4, A4, 47, &gre);
    check_v4(&tcp_of(LinkType::Raw, &frame), b"e3");
    // GRE version 1 (PPTP) and routing-present GRE are not followed.
    for flags in [0x3001u16, 0x4000] {
        let mut g = flags.to_be_bytes().to_vec();
        g.extend([0x88, 0x0b, 0, 0, 0, 0]);
        let frame = ipv4(B4, A4, 47, &g);
        assert_eq!(decode(LinkType::Raw, &frame, &opts()), Ok(Decoded::Other));
    }
}

#[test]
fn vxlan_without_i_flag_is_other() {
    let mut udp = vec![0xc0, 0x00, 0x12, 0xb5, 0, 0, 0, 0];
    udp.extend([0, 0, 0, 0, 0, 0, 42, 0]);
    udp.extend(eth(0x0800, &tcp4(b"vxlan")));
    let frame = ipv4(B4, A4, 17, &udp);
    assert_eq!(decode(LinkType::Raw, &frame, &opts()), Ok(Decoded::Other));
    assert_eq!(
        decode(LinkType::Raw, &frame[..20 + 12], &opts()),
        Err(DecodeError::Truncated {
            layer: Layer::Vxlan
        })
    );
}

#[test]
fn ppp_carrying_mpls() {
    let mut f = vec![0xff, 0x03, 0x02, 0x81, 0x00, 0x01, 0x01, 0x40];
    f.extend(tcp4(b"pm"));
    let p = tcp_of(LinkType::Ppp, &f);
    check_v4(&p, b"pm");
    assert!(p.tunnel);
}

#[test]
fn truncated_ip_headers() {
    let v6 = tcp6(b"");
    assert_eq!(
        decode(LinkType::Raw, &v6[..39], &opts()),
        Err(DecodeError::Truncated { layer: Layer::Ipv6 })
    );
    assert_eq!(
        decode(LinkType::Raw, &[], &opts()),
        Err(DecodeError::Truncated { layer: Layer::Ip })
    );
    // IHL 24 bytes, capture ends at 22.
    let seg = tcp(1, 2, 3, &[], b"");
    let v4 = ipv4_full(A4, B4, 6, &[1, 1, 1, 1], 0, 0, &seg);
    assert_eq!(
        decode(LinkType::Raw, &v4[..22], &opts()),
        Err(DecodeError::Truncated { layer: Layer::Ipv4 })
    );
}

/// The key's network is the innermost VXLAN or Geneve header's: equal
/// inner 4-tuples in two networks are two flows. GTP-U's TEID (one per
/// direction) and GRE are not part of it.
#[test]
fn the_key_holds_the_innermost_overlay_network() {
    let vxlan = |vni: [u8; 3], inner: &[u8]| {
        let mut udp = vec![0xc0, 0x00, 0x12, 0xb5, 0, 0, 0, 0];
        udp.extend([0x08, 0, 0, 0, vni[0], vni[1], vni[2], 0]);
        udp.extend(eth(0x0800, inner));
        udp
    };
    let fa = ipv4(B4, A4, 17, &vxlan([0, 0, 1], &tcp4(b"x")));
    let fb = ipv4(B4, A4, 17, &vxlan([0xab, 0xcd, 0xef], &tcp4(b"x")));
    let (a, b) = (tcp_of(LinkType::Raw, &fa), tcp_of(LinkType::Raw, &fb));
    assert_eq!((a.key.vni(), b.key.vni()), (1, 0xab_cdef));
    assert_ne!(a.key, b.key);
    assert_eq!(a.key, b.key.with_vni(1));
    // VXLAN (network 7) inside Geneve (network 42): 7.
    let inner = ipv4(B4, A4, 17, &vxlan([0, 0, 7], &tcp4(b"nested")));
    let nested = ipv4(B4, A4, 17, &geneve(6081, 0, 0x0800, &[], &inner));
    let p = tcp_of(LinkType::Raw, &nested);
    check_v4(&p, b"nested");
    assert_eq!(p.key.vni(), 7);
    // Plain, GRE and GTP-U: no network.
    assert_eq!(tcp_of(LinkType::Raw, &tcp4(b"plain")).key.vni(), 0);
    let gtp = ipv4(B4, A4, 17, &gtpu(0x30, 0xff, &[], &[], &tcp4(b"gtp")));
    assert_eq!(tcp_of(LinkType::Raw, &gtp).key.vni(), 0);
    // Not keyed by network when asked: the same flow in both.
    let unkeyed = DecodeOptions {
        key_vni: false,
        ..opts()
    };
    for f in [&fa, &fb, &nested] {
        match decode(LinkType::Raw, f, &unkeyed) {
            Ok(Decoded::Tcp(p)) => assert_eq!(p.key.vni(), 0),
            other => panic!("{other:?}"),
        }
    }
}
