//! Frame decoding: from a captured frame to a TCP [`Packet`], an IP
//! [`Fragment`] to reassemble, or [`Decoded::Other`].
//!
//! Contract: no input panics; every index is checked. Nothing here
//! allocates: views borrow the frame. Truncated or malformed headers give a
//! [`DecodeError`]; a payload cut by the capture's snaplen is not an error
//! (the packet is returned with [`Packet::payload_missing`] set).
//!
//! VLANs: the first two 802.1Q/802.1ad tags met on the way down, outer
//! first, fold into [`FlowKey::vlan`] as `outer << 12 | inner` (tags inside
//! a VXLAN or GRE-bridged Ethernet count too, once the outer ones are
//! used up); later tags are skipped. Up to [`crate::link::MAX_VLAN_TAGS`]
//! tags per Ethernet header and [`MAX_NESTING`] encapsulations (MPLS,
//! IP-in-IP, GRE, VXLAN) are followed; deeper input is
//! [`DecodeError::Unsupported`].

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bytes::be16;
use crate::checksum::{tcp_checksum_v4, tcp_checksum_v6};
use crate::{ip, link, Dir, FlowKey, LinkType, TcpHeader};

/// Encapsulations (tunnels, MPLS stacks) followed before giving up.
pub const MAX_NESTING: u8 = 8;

/// Options for [`decode`]. Plain data: `Send + Sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Verify the IPv4 header and TCP checksums into
    /// [`Packet::checksum_ok`]. Default `false`.
    pub verify_checksums: bool,
    /// Decode through IP-in-IP, 6in4, GRE, VXLAN. Default `true`; when
    /// `false` such packets are [`Decoded::Other`].
    pub decode_tunnels: bool,
    /// The UDP destination port taken as VXLAN (0 disables). Default 4789.
    pub vxlan_port: u16,
}

impl Default for DecodeOptions {
    fn default() -> DecodeOptions {
        DecodeOptions {
            verify_checksums: false,
            decode_tunnels: true,
            vxlan_port: 4789,
        }
    }
}

/// The protocol layer an error refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// A link-layer pseudo-header: BSD null/loop, Linux SLL/SLL2, PPP.
    Link,
    /// Ethernet II.
    Ethernet,
    /// An 802.1Q / 802.1ad tag.
    Vlan,
    /// An MPLS label stack.
    Mpls,
    /// PPPoE session header.
    Pppoe,
    /// Linux NFLOG header and TLVs.
    Nflog,
    /// An IP header of either version (version nibble).
    Ip,
    /// IPv4 header.
    Ipv4,
    /// IPv6 fixed header.
    Ipv6,
    /// An IPv6 extension header.
    Ipv6Ext,
    /// TCP header.
    Tcp,
    /// UDP header.
    Udp,
    /// GRE header (and ERSPAN).
    Gre,
    /// VXLAN header.
    Vxlan,
}

/// Why a frame could not be decoded. Small, `Copy`, no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The capture ends inside a header of `layer`.
    Truncated {
        /// The layer being read.
        layer: Layer,
    },
    /// A header length field is impossible (too small, or beyond the
    /// length the enclosing header announced).
    BadHeaderLen {
        /// The layer being read.
        layer: Layer,
    },
    /// An IP version nibble is not the one expected.
    BadVersion,
    /// Something this decoder does not handle (or refuses, like nesting
    /// deeper than [`MAX_NESTING`]).
    Unsupported {
        /// What it was.
        what: &'static str,
    },
    /// A checksum is wrong. [`decode`] does not return this (it reports
    /// [`Packet::checksum_ok`] instead); it is for callers that reject.
    BadChecksum {
        /// The layer whose checksum failed.
        layer: Layer,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { layer } => write!(f, "truncated {layer:?} header"),
            DecodeError::BadHeaderLen { layer } => write!(f, "bad {layer:?} header length"),
            DecodeError::BadVersion => f.write_str("bad IP version"),
            DecodeError::Unsupported { what } => write!(f, "unsupported: {what}"),
            DecodeError::BadChecksum { layer } => write!(f, "bad {layer:?} checksum"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The result of decoding a frame. Borrows the frame; `Send + Sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A TCP segment.
    Tcp(Packet<'a>),
    /// An IP fragment: feed it to a [`crate::Defragmenter`].
    Fragment(Fragment<'a>),
    /// Decoded fine, but not TCP (UDP, ICMP, ARP, unknown ethertypes, …).
    Other,
}

/// A decoded TCP segment, borrowing its frame. `Send + Sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The canonical flow key.
    pub key: FlowKey,
    /// Which way this segment went relative to `key`.
    pub dir: Dir,
    /// The TCP header.
    pub tcp: TcpHeader,
    /// The TCP payload, bounded by the capture and by the IP length
    /// (Ethernet padding is excluded).
    pub payload: &'a [u8],
    /// Payload bytes the IP length promised that the capture cut off
    /// (snaplen); 0 normally.
    pub payload_missing: u32,
    /// Offset of the innermost IP header within the frame.
    pub ip_offset: u16,
    /// Offset of the TCP header within the frame.
    pub tcp_offset: u16,
    /// 4 or 6.
    pub ip_version: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl_or_hop: u8,
    /// IPv4 identification; 0 for IPv6.
    pub ip_id: u16,
    /// With [`DecodeOptions::verify_checksums`]: `Some(false)` if the IPv4
    /// header or the TCP checksum is wrong, `Some(true)` if both are right.
    /// `None` when not asked, or when the TCP checksum cannot be checked
    /// because the capture cut the segment (and the IPv4 header was fine).
    pub checksum_ok: Option<bool>,
    /// True if decoded through a tunnel or MPLS (GRE, VXLAN, IPIP, 6in4, …).
    pub tunnel: bool,
}

/// An IP fragment, borrowing its frame. `Send + Sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// 4 or 6.
    pub ip_version: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// The upper-layer protocol (IPv6: the fragment header's next header).
    pub protocol: u8,
    /// Offset of `data` in the original datagram's payload, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// The fragment's data, bounded by the capture and the IP length.
    pub data: &'a [u8],
    /// Bytes of the fragment the IP length promised but the capture cut
    /// off (snap length); 0 normally.
    pub missing: u32,
    /// The IP header: IPv4 with options; for IPv6 the fixed header plus the
    /// extension headers before the fragment header.
    pub header: &'a [u8],
    /// Folded VLAN IDs, as in [`FlowKey::vlan`].
    pub vlan: u32,
}

/// Decoder state carried down the layers.
#[derive(Debug)]
pub(crate) struct Ctx<'o> {
    pub opts: &'o DecodeOptions,
    pub vlan: u32,
    vlan_tags: u8,
    pub tunnel: bool,
    depth: u8,
}

impl<'o> Ctx<'o> {
    pub fn new(opts: &'o DecodeOptions, vlan: u32) -> Ctx<'o> {
        let vlan_tags = match vlan {
            0 => 0,
            1..=0xfff => 1,
            _ => 2,
        };
        Ctx {
            opts,
            vlan,
            vlan_tags,
            tunnel: false,
            depth: 0,
        }
    }

    /// Folds a VLAN ID: the first two tags seen count, later ones do not.
    /// A priority tag (VID 0: a priority, no VLAN, 802.1Q) counts as no
    /// tag: so a folded value tells how many tags it holds, which decoding
    /// a rebuilt datagram from its IP header relies on (a VID 0 in front
    /// of a tunnel's inner tags once keyed its fragments differently from
    /// the rest of their connection).
    pub fn push_vlan(&mut self, id: u16) {
        if id & 0x0fff == 0 {
            return;
        }
        if self.vlan_tags < 2 {
            self.vlan = (self.vlan << 12) | u32::from(id & 0x0fff);
            self.vlan_tags += 1;
        }
    }

    /// Enters one more encapsulation.
    pub fn nest(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        self.tunnel = true;
        if self.depth > MAX_NESTING {
            return Err(DecodeError::Unsupported {
                what: "nesting too deep",
            });
        }
        Ok(())
    }
}

/// Decodes a captured frame of link type `link`.
///
/// ```
/// use weft_wire::{decode, Decoded, DecodeOptions, LinkType};
/// let frame = [0u8; 10];
/// assert!(decode(LinkType::Ethernet, &frame, &DecodeOptions::default()).is_err());
/// ```
pub fn decode<'a>(
    link: LinkType,
    frame: &'a [u8],
    opts: &DecodeOptions,
) -> Result<Decoded<'a>, DecodeError> {
    link::decode_link(link, frame, &mut Ctx::new(opts, 0))
}

/// Decodes starting at an IP header of either version (e.g. a datagram from
/// the [`crate::Defragmenter`]), with the VLAN IDs already folded.
pub fn decode_ip<'a>(
    packet: &'a [u8],
    vlan: u32,
    opts: &DecodeOptions,
) -> Result<Decoded<'a>, DecodeError> {
    ip::decode_any(packet, 0, &mut Ctx::new(opts, vlan))
}

/// An IP header, decoded far enough to dispatch on its payload.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IpInfo {
    pub version: u8,
    /// IPv4 addresses use the first 4 bytes.
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Absolute offsets in the frame: header start, payload start, end of
    /// the captured packet, and end as the IP length promised.
    pub offset: usize,
    pub payload: usize,
    pub end: usize,
    pub promised_end: usize,
    pub ttl: u8,
    pub id: u16,
    /// IPv4 header checksum result (verify only).
    pub header_ok: Option<bool>,
}

impl IpInfo {
    pub fn src_addr(&self) -> IpAddr {
        addr(self.version, &self.src)
    }
    pub fn dst_addr(&self) -> IpAddr {
        addr(self.version, &self.dst)
    }
}

fn addr(version: u8, b: &[u8; 16]) -> IpAddr {
    if version == 4 {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*b))
    }
}

/// Dispatches on the IP payload protocol. `frame` ends at `ip.end`.
pub(crate) fn transport<'a>(
    frame: &'a [u8],
    ip: &IpInfo,
    proto: u8,
    ctx: &mut Ctx<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    let tunnels = ctx.opts.decode_tunnels;
    match proto {
        6 => tcp(frame, ip, ctx),
        4 if tunnels => {
            ctx.nest()?;
            ip::decode_v4(frame, ip.payload, ctx)
        }
        41 if tunnels => {
            ctx.nest()?;
            ip::decode_v6(frame, ip.payload, ctx)
        }
        47 if tunnels => link::gre(frame, ip.payload, ctx),
        17 if tunnels => link::udp(frame, ip.payload, ctx),
        _ => Ok(Decoded::Other),
    }
}

fn offset16(at: usize) -> Result<u16, DecodeError> {
    u16::try_from(at).map_err(|_| DecodeError::Unsupported {
        what: "header beyond 64 KiB",
    })
}

fn tcp<'a>(frame: &'a [u8], ip: &IpInfo, ctx: &Ctx<'_>) -> Result<Decoded<'a>, DecodeError> {
    let segment = frame.get(ip.payload..ip.end).unwrap_or(&[]);
    let promised = ip.promised_end.saturating_sub(ip.payload);
    let tcp = TcpHeader::parse(segment, promised)?;
    let payload = segment.get(usize::from(tcp.header_len)..).unwrap_or(&[]);
    let missing = ip.promised_end.saturating_sub(ip.end);
    let (key, dir) = if ip.version == 4 {
        let s = [ip.src[0], ip.src[1], ip.src[2], ip.src[3]];
        let d = [ip.dst[0], ip.dst[1], ip.dst[2], ip.dst[3]];
        FlowKey::from_v4(s, tcp.src_port, d, tcp.dst_port, ctx.vlan)
    } else {
        FlowKey::from_v6(ip.src, tcp.src_port, ip.dst, tcp.dst_port, ctx.vlan)
    };
    let checksum_ok = if ctx.opts.verify_checksums {
        verify(ip, segment, missing)
    } else {
        None
    };
    Ok(Decoded::Tcp(Packet {
        key,
        dir,
        tcp,
        payload,
        payload_missing: u32::try_from(missing).unwrap_or(u32::MAX),
        ip_offset: offset16(ip.offset)?,
        tcp_offset: offset16(ip.payload)?,
        ip_version: ip.version,
        ttl_or_hop: ip.ttl,
        ip_id: ip.id,
        checksum_ok,
        tunnel: ctx.tunnel,
    }))
}

fn verify(ip: &IpInfo, segment: &[u8], missing: usize) -> Option<bool> {
    if ip.header_ok == Some(false) {
        return Some(false);
    }
    if missing > 0 {
        return None;
    }
    let sum = if ip.version == 4 {
        let s = [ip.src[0], ip.src[1], ip.src[2], ip.src[3]];
        let d = [ip.dst[0], ip.dst[1], ip.dst[2], ip.dst[3]];
        tcp_checksum_v4(s, d, segment)
    } else {
        tcp_checksum_v6(ip.src, ip.dst, segment)
    };
    Some(sum == 0)
}

/// Reads a big-endian u16 or reports `layer` truncated.
pub(crate) fn need16(frame: &[u8], at: usize, layer: Layer) -> Result<u16, DecodeError> {
    be16(frame, at).ok_or(DecodeError::Truncated { layer })
}
