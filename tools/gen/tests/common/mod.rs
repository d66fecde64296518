//! A tiny pcap reader, etherparse decoding, and an independent
//! re-derivation of the truth from the parsed packets.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::IpAddr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use sha2::{Digest, Sha256};

/// One parsed TCP packet.
#[derive(Debug, Clone)]
pub struct P {
    pub ts_ns: u64,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub has_ack: bool,
    pub win: u16,
    pub wscale: Option<u8>,
    pub vlan: bool,
    pub payload: Vec<u8>,
}

/// Reads a classic little-endian pcap; checks the checksums of every
/// packet (panics on a bad one).
pub fn read_pcap(data: &[u8]) -> (bool, Vec<P>) {
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let nanos = match magic {
        0xa1b2_c3d4 => false,
        0xa1b2_3c4d => true,
        m => panic!("bad magic {m:x}"),
    };
    assert_eq!(
        u32::from_le_bytes(data[20..24].try_into().unwrap()),
        1,
        "link type"
    );
    let mut at = 24;
    let mut out = Vec::new();
    while at < data.len() {
        let h = &data[at..at + 16];
        let sec = u64::from(u32::from_le_bytes(h[0..4].try_into().unwrap()));
        let frac = u64::from(u32::from_le_bytes(h[4..8].try_into().unwrap()));
        let incl = u32::from_le_bytes(h[8..12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(h[12..16].try_into().unwrap()) as usize;
        assert_eq!(incl, orig);
        assert!(frac < if nanos { 1_000_000_000 } else { 1_000_000 });
        let ts_ns = sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        let frame = &data[at + 16..at + 16 + incl];
        out.push(parse_frame(ts_ns, frame));
        at += 16 + incl;
    }
    assert_eq!(at, data.len());
    (nanos, out)
}

fn parse_frame(ts_ns: u64, frame: &[u8]) -> P {
    let s = SlicedPacket::from_ethernet(frame).expect("etherparse");
    let Some(TransportSlice::Tcp(tcp)) = &s.transport else {
        panic!("not TCP")
    };
    let (src, dst, sum) = match s.net.as_ref().expect("ip") {
        NetSlice::Ipv4(ip) => {
            let h = ip.header();
            assert_eq!(
                h.to_header().calc_header_checksum(),
                h.header_checksum(),
                "IPv4 checksum"
            );
            assert_eq!(
                usize::from(h.total_len()),
                frame.len() - if s.vlan.is_some() { 18 } else { 14 }
            );
            let sum = tcp.calc_checksum_ipv4(h.source(), h.destination()).unwrap();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                sum,
            )
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header();
            let sum = tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                sum,
            )
        }
    };
    assert_eq!(sum, tcp.checksum(), "TCP checksum");
    let hdr = tcp.to_header();
    let wscale = hdr.options_iterator().find_map(|o| match o {
        Ok(etherparse::TcpOptionElement::WindowScale(w)) => Some(w),
        _ => None,
    });
    P {
        ts_ns,
        src,
        sport: tcp.source_port(),
        dst,
        dport: tcp.destination_port(),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        syn: tcp.syn(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        has_ack: tcp.ack(),
        win: tcp.window_size(),
        wscale,
        vlan: s.vlan.is_some(),
        payload: tcp.payload().to_vec(),
    }
}

type Tuple = (IpAddr, u16, IpAddr, u16);

/// What the capture shows of one direction of one connection.
#[derive(Debug, Default)]
pub struct Dir {
    pub isn: Option<u32>,
    /// Byte map by stream offset: (first copy, last copy).
    pub bytes: Vec<Option<(u8, u8)>>,
    /// Stream offset of the FIN, if any.
    pub fin: Option<u64>,
    /// Highest stream offset the peer acknowledged.
    pub max_acked: u64,
}

/// One connection instance: directions 0 (client side) and 1.
#[derive(Debug, Default)]
pub struct Conn {
    pub tuple: Option<Tuple>,
    pub dirs: [Dir; 2],
}

pub fn off(isn: u32, seq: u32) -> u64 {
    u64::from(seq.wrapping_sub(isn.wrapping_add(1)))
}

/// Groups packets into connection instances (a SYN without ACK starts a
/// new one) and builds each direction's byte map.
pub fn connections(pkts: &[P]) -> Vec<Conn> {
    let mut conns: Vec<Conn> = Vec::new();
    let mut open: HashMap<Tuple, usize> = HashMap::new();
    for p in pkts {
        let fwd = (p.src, p.sport, p.dst, p.dport);
        let rev = (p.dst, p.dport, p.src, p.sport);
        if p.syn && !p.has_ack {
            open.insert(fwd, conns.len());
            conns.push(Conn {
                tuple: Some(fwd),
                ..Conn::default()
            });
        }
        let (ci, d) = match (open.get(&fwd), open.get(&rev)) {
            (Some(&c), _) => (c, 0),
            (None, Some(&c)) => (c, 1),
            _ => panic!("packet of no connection"),
        };
        let c = &mut conns[ci];
        if p.syn {
            c.dirs[d].isn = Some(p.seq);
            if p.payload.is_empty() {
                continue;
            }
        }
        let isn = c.dirs[d].isn.expect("data before SYN");
        if p.has_ack {
            if let Some(peer_isn) = c.dirs[1 - d].isn {
                let a = off(peer_isn, p.ack);
                let m = &mut c.dirs[1 - d].max_acked;
                *m = (*m).max(a);
            }
        }
        // A SYN's data starts after the SYN's own sequence number.
        let o = off(isn, p.seq.wrapping_add(u32::from(p.syn))) as usize;
        let dir = &mut c.dirs[d];
        if p.fin {
            dir.fin = Some((o + p.payload.len()) as u64);
        }
        if !p.payload.is_empty() && dir.bytes.len() < o + p.payload.len() {
            dir.bytes.resize(o + p.payload.len(), None);
        }
        for (i, &b) in p.payload.iter().enumerate() {
            let slot = &mut dir.bytes[o + i];
            *slot = Some(match *slot {
                None => (b, b),
                Some((f, _)) => (f, b),
            });
        }
    }
    conns
}

/// Digest lines re-derived from the capture: the stream's length comes
/// from the FIN or the peer's highest ACK; bytes absent are gaps. `last`
/// picks the last copy of overlapping bytes instead of the first.
pub fn derive_truth(pkts: &[P], last: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for c in connections(pkts) {
        let (a, ap, b, bp) = c.tuple.unwrap();
        for (d, dir) in c.dirs.iter().enumerate() {
            let len = dir.fin.unwrap_or(dir.max_acked) as usize;
            assert!(
                dir.bytes.len() <= len,
                "bytes beyond the stream end: {} > {len} fin {:?} acked {} {:?} d{d}",
                dir.bytes.len(),
                dir.fin,
                dir.max_acked,
                c.tuple
            );
            let mut h = Sha256::new();
            let (mut n, mut gap) = (0u64, 0u64);
            for i in 0..len {
                match dir.bytes.get(i).copied().flatten() {
                    Some((f, l)) => {
                        h.update([if last { l } else { f }]);
                        n += 1;
                    }
                    None => gap += 1,
                }
            }
            if n == 0 && gap == 0 {
                continue;
            }
            let (s, sp, t, tp) = if d == 0 {
                (a, ap, b, bp)
            } else {
                (b, bp, a, ap)
            };
            lines.push(format!("{s} {sp} {t} {tp} {n} {gap} {:x}", h.finalize()));
        }
    }
    lines.sort();
    lines
}
