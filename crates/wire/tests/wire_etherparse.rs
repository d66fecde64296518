//! Cross-checks `decode` against etherparse (strict and lax slicing) over
//! generated Ethernet (+VLAN, +QinQ) / IPv4 or IPv6 / TCP frames, clean,
//! randomly truncated and randomly corrupted; and checks that no input
//! panics, for every link type.
//!
//! Where weft deliberately differs from etherparse's strict mode, the check
//! narrows to what both must agree on:
//!
//! - IPv4 total length 0 (segmentation offload captures): weft takes the
//!   length from the frame, etherparse strict rejects. Not compared.
//! - A frame shorter than the IP length (snaplen): weft decodes with
//!   `payload_missing > 0`; etherparse strict rejects it (checked), and
//!   etherparse lax must then agree on the headers and captured payload.
//! - Protocols weft decodes further than etherparse (tunnels: IPIP, 6in4,
//!   GRE, VXLAN, MPLS) or etherparse further than weft (IPv4 AH, IPv6
//!   extension headers weft does not walk, an IPv6 hop-by-hop header not
//!   first, which etherparse rejects): not compared.

mod common;

use common::*;
use etherparse::{
    LaxNetSlice, LaxSlicedPacket, NetSlice, PacketBuilder, SlicedPacket, TransportSlice, VlanId,
};
use etherparse::{PacketBuilderStep, TcpSlice};
use proptest::prelude::*;
use std::net::IpAddr;
use weft_wire::{decode, DecodeError, DecodeOptions, Decoded, LinkType, Packet};

#[derive(Clone, Debug)]
struct Spec {
    vlans: Vec<u16>,
    v6: bool,
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: Vec<u8>,
    payload: Vec<u8>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::collection::vec(1u16..4095, 0..=2),
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()),
        (any::<u8>(), any::<u16>()),
        (0usize..=10).prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n * 4)),
        proptest::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(
            |(vlans, v6, src, dst, (sport, dport, seq, ack), (flags, window), options, payload)| {
                Spec {
                    vlans,
                    v6,
                    src,
                    dst,
                    sport,
                    dport,
                    seq,
                    ack,
                    flags,
                    window,
                    options,
                    payload,
                }
            },
        )
}

fn ip_step(s: &Spec) -> PacketBuilderStep<etherparse::IpHeaders> {
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let src4 = [s.src[0], s.src[1], s.src[2], s.src[3]];
    let dst4 = [s.dst[0], s.dst[1], s.dst[2], s.dst[3]];
    let id = |v: u16| VlanId::try_new(v).unwrap();
    match (s.vlans.as_slice(), s.v6) {
        ([], false) => eth.ipv4(src4, dst4, 64),
        ([], true) => eth.ipv6(s.src, s.dst, 64),
        ([a], false) => eth.single_vlan(id(*a)).ipv4(src4, dst4, 64),
        ([a], true) => eth.single_vlan(id(*a)).ipv6(s.src, s.dst, 64),
        ([a, b, ..], false) => eth.double_vlan(id(*a), id(*b)).ipv4(src4, dst4, 64),
        ([a, b, ..], true) => eth.double_vlan(id(*a), id(*b)).ipv6(s.src, s.dst, 64),
    }
}

fn build(s: &Spec) -> Vec<u8> {
    let mut t = ip_step(s).tcp(s.sport, s.dport, s.seq, s.window);
    let f = s.flags;
    if f & 0x01 != 0 {
        t = t.fin();
    }
    if f & 0x02 != 0 {
        t = t.syn();
    }
    if f & 0x04 != 0 {
        t = t.rst();
    }
    if f & 0x08 != 0 {
        t = t.psh();
    }
    if f & 0x10 != 0 {
        t = t.ack(s.ack);
    }
    if f & 0x20 != 0 {
        t = t.urg(7);
    }
    if f & 0x40 != 0 {
        t = t.ece();
    }
    if f & 0x80 != 0 {
        t = t.cwr();
    }
    let t = t.options_raw(&s.options).unwrap();
    let mut out = Vec::new();
    t.write(&mut out, &s.payload).unwrap();
    out
}

fn flags_of(t: &TcpSlice<'_>) -> u8 {
    [
        t.fin(),
        t.syn(),
        t.rst(),
        t.psh(),
        t.ack(),
        t.urg(),
        t.ece(),
        t.cwr(),
    ]
    .iter()
    .enumerate()
    .fold(0, |acc, (i, &b)| acc | (u8::from(b) << i))
}

/// The fields both decoders report must agree.
fn same_tcp(
    p: &Packet<'_>,
    net: &NetSlice<'_>,
    t: &TcpSlice<'_>,
    payload: &[u8],
) -> Result<(), TestCaseError> {
    let (src, dst) = match net {
        NetSlice::Ipv4(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        NetSlice::Ipv6(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
    };
    prop_assert_eq!(p.key.src(p.dir), (src, t.source_port()));
    prop_assert_eq!(p.key.dst(p.dir), (dst, t.destination_port()));
    prop_assert_eq!(p.tcp.seq.0, t.sequence_number());
    prop_assert_eq!(p.tcp.ack.0, t.acknowledgment_number());
    prop_assert_eq!(p.tcp.flags.0, flags_of(t));
    prop_assert_eq!(p.tcp.window, t.window_size());
    prop_assert_eq!(p.tcp.urgent, t.urgent_pointer());
    prop_assert_eq!(p.tcp.checksum, t.checksum());
    prop_assert_eq!(
        usize::from(p.tcp.header_len),
        usize::from(t.data_offset()) * 4
    );
    prop_assert_eq!(p.payload, payload);
    Ok(())
}

/// True where etherparse follows a header weft does not: IPv4 AH.
/// (Both walk the same IPv6 extension headers.)
fn exempt(e: &Result<SlicedPacket<'_>, etherparse::err::packet::SliceError>) -> bool {
    match e {
        Ok(sp) => matches!(&sp.net, Some(NetSlice::Ipv4(ip)) if !ip.extensions().is_empty()),
        Err(_) => false,
    }
}

fn cross_check(frame: &[u8]) -> Result<(), TestCaseError> {
    let mine = decode(LinkType::Ethernet, frame, &DecodeOptions::default());
    let strict = SlicedPacket::from_ethernet(frame);
    if let Ok(Decoded::Tcp(p)) = &mine {
        if p.tunnel {
            return Ok(());
        }
        let ip = usize::from(p.ip_offset);
        let len_field = if p.ip_version == 4 { ip + 2 } else { ip + 4 };
        if frame.get(len_field..len_field + 2) == Some(&[0, 0]) {
            return Ok(()); // IP length 0: taken from the frame.
        }
        if p.payload_missing > 0 {
            prop_assert!(
                strict.is_err(),
                "strict accepted a frame shorter than its IP length"
            );
            return check_lax(p, frame);
        }
    }
    if exempt(&strict) {
        return Ok(());
    }
    match (&mine, &strict) {
        (Ok(Decoded::Tcp(p)), Ok(sp)) => match (&sp.net, &sp.transport) {
            (Some(net), Some(TransportSlice::Tcp(t))) => same_tcp(p, net, t, t.payload())?,
            _ => prop_assert!(
                false,
                "weft found TCP, etherparse did not: {:?}",
                sp.transport
            ),
        },
        (Ok(Decoded::Tcp(_)), Err(e)) => prop_assert!(
            matches!(e, etherparse::err::packet::SliceError::Ipv6Exts(_)),
            "weft accepted, etherparse rejected: {e:?}"
        ),
        (Ok(Decoded::Fragment(_)), r) => {
            // Fragmented, or inside a tunnel etherparse does not follow
            // (IP-in-IP, 6in4, GRE, UDP), where weft found the fragment.
            let tunnelled = |sp: &SlicedPacket<'_>| {
                sp.net
                    .as_ref()
                    .and_then(|n| n.ip_payload_ref())
                    .is_some_and(|p| matches!(p.ip_number.0, 4 | 41 | 47 | 17))
            };
            prop_assert!(r
                .as_ref()
                .map_or(true, |sp| sp.is_ip_payload_fragmented() || tunnelled(sp)))
        }
        // weft checks IP options as the receiving host does; etherparse
        // reads past them.
        (Err(DecodeError::BadOptions { .. } | DecodeError::Refused { .. }), Ok(_)) => {}
        (_, Ok(sp)) => {
            let tcp = matches!(sp.transport, Some(TransportSlice::Tcp(_)));
            prop_assert!(!tcp, "etherparse found TCP, weft gave {mine:?}");
        }
        (_, Err(_)) => {}
    }
    Ok(())
}

/// A snaplen-cut frame: etherparse lax mode, when it reaches TCP, must see
/// the same addresses, header fields and captured payload.
fn check_lax(p: &Packet<'_>, frame: &[u8]) -> Result<(), TestCaseError> {
    // weft read the whole TCP header, so the lax parser must reach it too.
    let lax = LaxSlicedPacket::from_ethernet(frame);
    let Ok(lax) = lax else {
        prop_assert!(false, "weft found TCP, etherparse lax failed: {lax:?}");
        unreachable!()
    };
    let (Some(net), Some(TransportSlice::Tcp(t))) = (&lax.net, &lax.transport) else {
        prop_assert!(
            false,
            "weft found TCP, etherparse lax did not: {:?}",
            lax.transport
        );
        unreachable!()
    };
    let src: IpAddr = match net {
        LaxNetSlice::Ipv4(ip) => ip.header().source_addr().into(),
        LaxNetSlice::Ipv6(ip) => ip.header().source_addr().into(),
    };
    prop_assert_eq!(p.key.src(p.dir), (src, t.source_port()));
    prop_assert_eq!(p.tcp.seq.0, t.sequence_number());
    prop_assert_eq!(p.tcp.flags.0, flags_of(t));
    prop_assert_eq!(p.payload, t.payload());
    Ok(())
}

#[derive(Clone, Debug)]
enum Mutation {
    None,
    Cut(usize),
    Corrupt(Vec<(usize, u8)>, Option<usize>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::None),
        any::<usize>().prop_map(Mutation::Cut),
        (
            proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            any::<Option<usize>>()
        )
            .prop_map(|(c, cut)| Mutation::Corrupt(c, cut)),
    ]
}

fn apply(mut frame: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let cut = |f: &mut Vec<u8>, at: usize| {
        let n = at % (f.len() + 1);
        f.truncate(n);
    };
    match m {
        Mutation::None => {}
        Mutation::Cut(at) => cut(&mut frame, *at),
        Mutation::Corrupt(bytes, at) => {
            let len = frame.len();
            for &(i, v) in bytes {
                frame[i % len] = v;
            }
            if let Some(at) = at {
                cut(&mut frame, *at);
            }
        }
    }
    frame
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn agrees_with_etherparse(s in spec(), m in mutation()) {
        let frame = build(&s);
        if matches!(m, Mutation::None) {
            // Clean frames always decode, with the generated values.
            match decode(LinkType::Ethernet, &frame, &DecodeOptions { verify_checksums: true, ..Default::default() }) {
                Ok(Decoded::Tcp(p)) => {
                    prop_assert_eq!(p.payload, &s.payload[..]);
                    prop_assert_eq!(p.checksum_ok, Some(true));
                    let vlan = s.vlans.iter().fold(0u32, |acc, &v| acc << 12 | u32::from(v));
                    prop_assert_eq!(p.key.vlan(), vlan);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
        cross_check(&apply(frame, &m))?;
    }
}

const LINKS: [u32; 12] = [0, 1, 9, 12, 101, 108, 113, 228, 229, 239, 276, 147];

/// Frames of every kind the decoder follows, to mutate.
fn corpus() -> Vec<(LinkType, Vec<u8>)> {
    let mut gre = vec![0xb0, 0, 0x65, 0x58, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1];
    gre.extend(eth(0x86dd, &tcp6(b"teb")));
    let mut vx = vec![
        0xc0, 0x00, 0x12, 0xb5, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 42, 0,
    ];
    vx.extend(eth(0x8100, &tag(3, 0x0800, &tcp4(b"vxlan"))));
    let mut mpls = vec![0, 1, 0, 0x40, 0, 2, 1, 0x40];
    mpls.extend(tcp4(b"m"));
    let mut pppoe = vec![0x11, 0, 0, 1, 0, 0, 0, 0x57];
    pppoe.extend(tcp6(b"p"));
    let mut nflog = vec![10, 0, 0, 1];
    let p6 = tcp6(b"nf");
    nflog.extend(((p6.len() + 4) as u16).to_le_bytes());
    nflog.extend([9, 0]);
    nflog.extend(&p6);
    let mut sll2 = 0x0800u16.to_be_bytes().to_vec();
    sll2.extend([0u8; 18]);
    sll2.extend(ipv4(B4, A4, 4, &tcp4(b"ipip")));
    let mut ext = vec![
        60, 0, 1, 4, 0, 0, 0, 0, 44, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 1,
    ];
    ext.extend(tcp(
        1,
        2,
        3,
        &[2, 4, 5, 0xb4, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2],
        b"x",
    ));
    vec![
        (LinkType::Ethernet, eth(0x0800, &ipv4(B4, A4, 47, &gre))),
        (
            LinkType::Ethernet,
            eth(
                0x88a8,
                &tag(1, 0x8100, &tag(2, 0x0800, &ipv4(B4, A4, 17, &vx))),
            ),
        ),
        (LinkType::Ethernet, eth(0x8847, &mpls)),
        (LinkType::Ethernet, eth(0x8864, &pppoe)),
        (LinkType::Nflog, nflog),
        (LinkType::LinuxSll2, sll2),
        (LinkType::Raw, ipv6(A6, B6, 0, &ext)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// Arbitrary bytes under every link type: never a panic, and a TCP
    /// result always lies inside the frame.
    #[test]
    fn arbitrary_bytes_never_panic(link in proptest::sample::select(&LINKS[..]),
                                   bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                   verify in any::<bool>()) {
        let opts = DecodeOptions { verify_checksums: verify, ..Default::default() };
        check_inside(&bytes, decode(LinkType::from_raw(link), &bytes, &opts))?;
    }

    /// Mutated valid frames of every encapsulation: never a panic.
    #[test]
    fn mutated_frames_never_panic(which in 0usize..7, m in mutation(), verify in any::<bool>()) {
        let (link, frame) = corpus().swap_remove(which);
        let frame = apply(frame, &m);
        let opts = DecodeOptions { verify_checksums: verify, ..Default::default() };
        check_inside(&frame, decode(link, &frame, &opts))?;
    }
}

fn check_inside(
    frame: &[u8],
    r: Result<Decoded<'_>, weft_wire::DecodeError>,
) -> Result<(), TestCaseError> {
    if let Ok(Decoded::Tcp(p)) = r {
        let start = p.payload.as_ptr() as usize - frame.as_ptr() as usize;
        prop_assert!(start + p.payload.len() <= frame.len());
        prop_assert!(usize::from(p.tcp_offset) + usize::from(p.tcp.header_len) == start);
        prop_assert!(p.ip_offset < p.tcp_offset);
    }
    Ok(())
}

#[test]
fn corpus_decodes_clean() {
    for (link, frame) in corpus() {
        let r = decode(link, &frame, &DecodeOptions::default());
        assert!(
            matches!(r, Ok(Decoded::Tcp(_)) | Ok(Decoded::Fragment(_))),
            "{link:?}: {r:?}"
        );
    }
}
