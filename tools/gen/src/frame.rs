//! Packets as the generator plans them ([`Pkt`]), their payload bytes, and
//! their encoding: Ethernet (optionally 802.1Q), IPv4 or IPv6, TCP, and
//! classic pcap records around them.

use std::io::{self, Write};
use std::net::IpAddr;

use crate::rng::mix64;

/// TCP flag bits.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
}

/// One packet of a connection, before encoding. Payload is not stored: it
/// is a pure function of the direction's stream key, the variant and the
/// stream offset ([`fill_payload`]).
#[derive(Debug, Clone, Copy)]
pub struct Pkt {
    /// Sent by the client (else by the server).
    pub from_client: bool,
    /// TCP flags ([`flags`]).
    pub flags: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (0 without ACK).
    pub ack: u32,
    /// Raw (unscaled) window.
    pub win: u16,
    /// Carries SYN options: this window shift and this MSS.
    pub syn_opts: Option<(u8, u16)>,
    /// Carries the timestamp option: (TSval, TSecr).
    pub ts: Option<(u32, u32)>,
    /// Stream offset of the first payload byte.
    pub off: u64,
    /// Payload length.
    pub len: u32,
    /// Payload variant: 0 is the stream's own bytes, 1 the conflicting copy.
    pub variant: u8,
    /// Urgent pointer (with URG in `flags`).
    pub urg: u16,
}

/// An address and port with the MAC address that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// IP address.
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    fn mac(&self) -> [u8; 6] {
        let h = match self.ip {
            IpAddr::V4(a) => mix64(u64::from(u32::from(a))),
            IpAddr::V6(a) => mix64(u128::from(a) as u64 ^ (u128::from(a) >> 64) as u64),
        };
        let b = h.to_be_bytes();
        [0x02, b[0], b[1], b[2], b[3], b[4]]
    }
}

/// Writes the payload bytes `off..off + out.len()` of the stream `key`.
/// Random access: every 8-byte block is one mix of (key, block index).
pub fn fill_payload(key: u64, variant: u8, off: u64, out: &mut [u8]) {
    let key = key ^ u64::from(variant).wrapping_mul(0xa076_1d64_78bd_642f);
    let mut pos = 0usize;
    let mut block = off / 8;
    let skip = (off % 8) as usize;
    if skip != 0 {
        let b = mix64(key ^ block).to_le_bytes();
        let n = (8 - skip).min(out.len());
        out[..n].copy_from_slice(&b[skip..skip + n]);
        pos = n;
        block += 1;
    }
    let mut chunks = out[pos..].chunks_exact_mut(8);
    for c in &mut chunks {
        c.copy_from_slice(&mix64(key ^ block).to_le_bytes());
        block += 1;
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let b = mix64(key ^ block).to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&b[..n]);
    }
}

/// A tunnel a connection's frames travel in, over IPv4 and UDP between
/// two fixed tunnel endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tunnel {
    /// VXLAN (UDP 4789), the frame whole inside.
    Vxlan,
    /// Geneve (UDP 6081) with one 8-byte option, the frame whole inside.
    Geneve,
    /// GTP-U (UDP 2152), a G-PDU with a sequence number: the frame's IP
    /// packet inside (its VLAN tag, if any, moves to the outer frame).
    Gtpu,
}

/// What an encoded packet needs besides the [`Pkt`].
#[derive(Debug, Clone, Copy)]
pub struct Wire<'a> {
    /// Sender of the packet.
    pub src: &'a Endpoint,
    /// Receiver of the packet.
    pub dst: &'a Endpoint,
    /// 802.1Q VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// The tunnel the frame travels in, if any.
    pub tunnel: Option<Tunnel>,
    /// IPv4 identification field.
    pub ip_id: u16,
    /// Stream key of the sender's direction.
    pub key: u64,
    /// The VXLAN or Geneve network of the tunnel, if it is one.
    pub vni: u32,
}

/// Encodes `p` as an Ethernet frame into `buf` (cleared first), with valid
/// IPv4 header and TCP checksums.
pub fn encode(buf: &mut Vec<u8>, p: &Pkt, w: &Wire<'_>) {
    buf.clear();
    ethernet(buf, w, w.vlan);
    let syn_len = if p.syn_opts.is_some() { 12 } else { 0 };
    let opt_len = syn_len + if p.ts.is_some() { 12 } else { 0 };
    let tcp_len = 20 + opt_len + p.len as usize;
    match (w.src.ip, w.dst.ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            buf.extend_from_slice(&[0x08, 0x00]);
            ipv4(buf, tcp_len, w.ip_id, 6, (s.octets(), d.octets()));
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            buf.extend_from_slice(&[0x86, 0xdd]);
            buf.extend_from_slice(&[0x60, 0, 0, 0]);
            buf.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            buf.extend_from_slice(&[6, 64]);
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
        }
        _ => unreachable!("endpoints of one connection share an IP version"),
    }
    let tcp_start = buf.len();
    buf.extend_from_slice(&w.src.port.to_be_bytes());
    buf.extend_from_slice(&w.dst.port.to_be_bytes());
    buf.extend_from_slice(&p.seq.to_be_bytes());
    buf.extend_from_slice(&p.ack.to_be_bytes());
    buf.push((((20 + opt_len) / 4) as u8) << 4);
    buf.push(p.flags);
    buf.extend_from_slice(&p.win.to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&p.urg.to_be_bytes());
    if let Some((shift, mss)) = p.syn_opts {
        // MSS, NOP, window scale, SACK permitted, NOP, NOP.
        let [m0, m1] = mss.to_be_bytes();
        buf.extend_from_slice(&[2, 4, m0, m1, 1, 3, 3, shift, 4, 2, 1, 1]);
    }
    if let Some((tsval, tsecr)) = p.ts {
        // NOP, NOP, timestamps: the aligned layout stacks send.
        buf.extend_from_slice(&[1, 1, 8, 10]);
        buf.extend_from_slice(&tsval.to_be_bytes());
        buf.extend_from_slice(&tsecr.to_be_bytes());
    }
    let pay = buf.len();
    buf.resize(pay + p.len as usize, 0);
    fill_payload(w.key, p.variant, p.off, &mut buf[pay..]);
    let c = match (w.src.ip, w.dst.ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            weft_wire::tcp_checksum_v4(s.octets(), d.octets(), &buf[tcp_start..])
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            weft_wire::tcp_checksum_v6(s.octets(), d.octets(), &buf[tcp_start..])
        }
        _ => unreachable!("endpoints of one connection share an IP version"),
    };
    buf[tcp_start + 16..tcp_start + 18].copy_from_slice(&c.to_be_bytes());
    if let Some(t) = w.tunnel {
        wrap(buf, t, w);
    }
}

/// An Ethernet header from `w`'s sender to its receiver, with an 802.1Q
/// tag if `vlan` (the ethertype after it is the caller's).
fn ethernet(buf: &mut Vec<u8>, w: &Wire<'_>, vlan: Option<u16>) {
    buf.extend_from_slice(&w.dst.mac());
    buf.extend_from_slice(&w.src.mac());
    if let Some(vid) = vlan {
        buf.extend_from_slice(&[0x81, 0x00]);
        buf.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
}

/// An IPv4 header (no options, DF, TTL 64, a valid checksum) for
/// `payload_len` bytes of protocol `proto` from `ends.0` to `ends.1`.
fn ipv4(buf: &mut Vec<u8>, payload_len: usize, id: u16, proto: u8, ends: ([u8; 4], [u8; 4])) {
    let ip_start = buf.len();
    buf.extend_from_slice(&[0x45, 0]);
    buf.extend_from_slice(&((20 + payload_len) as u16).to_be_bytes());
    buf.extend_from_slice(&id.to_be_bytes());
    buf.extend_from_slice(&[0x40, 0x00, 64, proto, 0, 0]);
    buf.extend_from_slice(&ends.0);
    buf.extend_from_slice(&ends.1);
    let c = weft_wire::internet_checksum(&buf[ip_start..ip_start + 20], 0);
    buf[ip_start + 10..ip_start + 12].copy_from_slice(&c.to_be_bytes());
}

/// Puts the frame in `buf` inside tunnel `t`: outer Ethernet, IPv4 from
/// 192.0.2.1 to 192.0.2.2 (or back, by the sender's side), UDP to the
/// tunnel's port (no checksum, as tunnels send it), the tunnel header.
fn wrap(buf: &mut Vec<u8>, t: Tunnel, w: &Wire<'_>) {
    let [_, v0, v1, v2] = w.vni.to_be_bytes();
    let vxlan = [0x08, 0, 0, 0, v0, v1, v2, 0];
    let geneve = [
        2, 0, 0x65, 0x58, v0, v1, v2, 0, 0x01, 0x02, 0x03, 0x01, 0, 0, 0, 7,
    ];
    let (port, header, inner): (u16, &[u8], &[u8]) = match t {
        Tunnel::Vxlan => (4789, &vxlan, &buf[..]),
        Tunnel::Geneve => (6081, &geneve, &buf[..]),
        Tunnel::Gtpu => {
            // The IP packet, after the frame's Ethernet header and tag.
            let ip_at = if w.vlan.is_some() { 18 } else { 14 };
            (
                2152,
                &[0x32, 0xff, 0, 0, 0, 0, 0, 7, 0, 1, 0, 0],
                &buf[ip_at..],
            )
        }
    };
    let mut out = Vec::with_capacity(buf.len() + 64);
    ethernet(&mut out, w, w.vlan.filter(|_| t == Tunnel::Gtpu));
    out.extend_from_slice(&[0x08, 0x00]);
    let udp_len = 8 + header.len() + inner.len();
    let (a, b) = ([192, 0, 2, 1], [192, 0, 2, 2]);
    let ends = if w.src.port < w.dst.port {
        (a, b)
    } else {
        (b, a)
    };
    ipv4(&mut out, udp_len, w.ip_id, 17, ends);
    // A source port from the flow, as tunnel endpoints spread flows.
    let sport = 49152 | (w.key as u16 & 0x3fff);
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&(udp_len as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    let gtp_len = out.len() + 2;
    out.extend_from_slice(header);
    if t == Tunnel::Gtpu {
        // The length counts what follows the first 8 bytes.
        let n = (header.len() - 8 + inner.len()) as u16;
        out[gtp_len..gtp_len + 2].copy_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(inner);
    *buf = out;
}

/// A classic pcap stream (Ethernet link type), little-endian.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    nanos: bool,
    bytes: u64,
}

/// Snapshot length written in the pcap header.
pub const SNAPLEN: u32 = 262_144;

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, nanos: bool) -> io::Result<Self> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&magic.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            nanos,
            bytes: 24,
        })
    }

    /// Writes one record at `ts_ns` (nanoseconds since the epoch).
    pub fn record(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        let sec = (ts_ns / 1_000_000_000) as u32;
        let frac = if self.nanos {
            (ts_ns % 1_000_000_000) as u32
        } else {
            (ts_ns % 1_000_000_000 / 1000) as u32
        };
        let len = frame.len() as u32;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&sec.to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(frame)?;
        self.bytes += 16 + u64::from(len);
        Ok(())
    }

    /// Bytes written so far, header included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_random_access() {
        let mut whole = vec![0u8; 100];
        fill_payload(42, 0, 3, &mut whole);
        for start in 0..100 {
            for len in 0..(100 - start).min(20) {
                let mut part = vec![0u8; len];
                fill_payload(42, 0, 3 + start as u64, &mut part);
                assert_eq!(part, whole[start..start + len]);
            }
        }
        let mut other = vec![0u8; 100];
        fill_payload(42, 1, 3, &mut other);
        assert_ne!(other, whole);
    }
}
