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
//! a tunnel count too, once the outer ones are used up: in a VXLAN, Geneve
//! or GRE-bridged Ethernet, or a Geneve or GRE payload that is a tagged
//! frame); later tags are skipped. Up to
//! [`crate::link::MAX_VLAN_TAGS`] tags per Ethernet header and
//! [`MAX_NESTING`] encapsulations (MPLS, IP-in-IP, GRE, VXLAN, Geneve,
//! GTP-U) are followed; deeper input is
//! [`DecodeError::Unsupported`].

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bytes::{array, be16, field16};
use crate::checksum::{fold, internet_checksum, sum_words, tcp_checksum_v4, tcp_checksum_v6};
use crate::ip::field;
use crate::{ip, link, Dir, FlowKey, LinkType, TcpHeader, Zone};

/// Encapsulations (tunnels, MPLS stacks) followed before giving up.
pub const MAX_NESTING: u8 = 8;

/// Options for [`decode`]. Plain data: `Send + Sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Verify the IPv4 header and TCP checksums into
    /// [`Packet::checksum_ok`], the checksums of the tunnels a packet came
    /// out of (their IPv4 headers', GRE's where present, UDP's where not
    /// zero, and VXLAN's over IPv6 where zero, see
    /// [`vxlan_udp6_zero_csum_rx`](Self::vxlan_udp6_zero_csum_rx);
    /// ERSPAN's, a mirror's, aside) into
    /// [`Packet::tunnel_checksum_ok`], and an IPv4 fragment's header
    /// checksum, and its tunnels', into [`Fragment::checksum_ok`]. Default
    /// `false`.
    pub verify_checksums: bool,
    /// Decode through IP-in-IP, 6in4, GRE, VXLAN, Geneve, GTP-U. Default `true`; when
    /// `false` such packets are [`Decoded::Other`].
    pub decode_tunnels: bool,
    /// The UDP destination port taken as VXLAN (0 disables). Default 4789.
    pub vxlan_port: u16,
    /// The UDP destination port taken as Geneve (RFC 8926; 0 disables).
    /// Default 6081.
    pub geneve_port: u16,
    /// The UDP destination port taken as GTP-U (3GPP TS 29.281, the user
    /// plane of mobile networks; 0 disables). Default 2152. A port given
    /// for two tunnels is taken as VXLAN, then as Geneve.
    pub gtpu_port: u16,
    /// Put the network of the innermost VXLAN, Geneve or NVGRE header in
    /// the flow key ([`FlowKey::vni`]), so equal 4-tuples in two overlay
    /// networks are two connections. Default `true`. Turn it off where one
    /// connection's two directions travel in different networks (routing
    /// between segments with asymmetric EVPN IRB, some Geneve logical
    /// routers): keyed by network, each direction would be a connection of
    /// its own. Any bridged GRE with a key is taken for NVGRE: keyed Linux
    /// gretap or Open vSwitch GRE tunnels whose two ends use different
    /// keys split the same way (and keys below 256 all fall in network 0).
    pub key_vni: bool,
    /// Put the innermost tunnel's outer addresses in the flow key
    /// ([`FlowKey::tunnel_ends`]), so a segment that came out of a tunnel
    /// (IP-in-IP, 6in4, GRE, VXLAN, Geneve, GTP-U) is never of the
    /// connection its hosts hold outside it: they do not take it (unless
    /// they end the tunnel), and keyed alike it would join their stream.
    /// Default `true`. Turn it off where one connection's two directions
    /// come out of tunnels with different ends (each direction mirrored by
    /// another switch, traffic going through a tunnel one way only).
    pub key_tunnel_ends: bool,
    /// Take source-routed packets: IPv4 with a loose or strict source
    /// route option, IPv6 with a type 0 routing header that has segments
    /// left. Default `false`: receiving hosts drop them (IPv4: Linux's
    /// `accept_source_route` is off on hosts, and the BSDs and Windows
    /// refuse them as well, against RFC 1122's ask; IPv6 type 0: RFC 5095
    /// forbids processing it), so bytes in them reach no stream and an
    /// IDS that took them would see what no host did
    /// ([`DecodeError::Refused`]). Turn it on for a network whose hosts
    /// accept source routes.
    pub accept_source_routed: bool,
    /// Take an IPv4 total length or IPv6 payload length of 0 (an IPv6
    /// jumbogram aside) as "as long as the frame". Default `true`: captures
    /// taken on a sending host carry such lengths for segmentation offload
    /// ("BIG TCP"). `false` refuses such packets ([`DecodeError::Refused`])
    /// as a receiving host does, for captures taken on the wire, where a
    /// packet claiming no length is a forgery a host drops. (An IPv4
    /// fragment claiming no length is refused either way: offload never
    /// makes fragments.)
    pub take_zero_ip_length: bool,
    /// With `verify_checksums`, take VXLAN packets over IPv6 whose UDP
    /// checksum is zero, as a Linux VXLAN device made with
    /// `udp6zerocsumrx` does (and Open vSwitch's VXLAN ports). Default
    /// `false`: without that flag the device drops them (IPv6 makes the
    /// UDP checksum mandatory, RFC 8200; tunnels may waive it only where
    /// both ends agree, RFC 6935), so they are judged bad
    /// ([`Packet::tunnel_checksum_ok`]), cut by the capture or not. One
    /// setting for every tunnel end. Linux's Geneve and GTP-U devices take
    /// a zero checksum by default, and so does weft.
    pub vxlan_udp6_zero_csum_rx: bool,
}

impl Default for DecodeOptions {
    fn default() -> DecodeOptions {
        DecodeOptions {
            verify_checksums: false,
            decode_tunnels: true,
            vxlan_port: 4789,
            geneve_port: 6081,
            gtpu_port: 2152,
            key_vni: true,
            key_tunnel_ends: true,
            accept_source_routed: false,
            take_zero_ip_length: true,
            vxlan_udp6_zero_csum_rx: false,
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
    /// Geneve header and its options.
    Geneve,
    /// GTP-U header and its extension headers.
    Gtpu,
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
    /// Options that do not parse: an IPv4 option, or an option of an IPv6
    /// Hop-by-Hop or Destination Options header, whose length is too
    /// small or runs past its header. A receiving host drops the packet.
    BadOptions {
        /// The layer whose options they are.
        layer: Layer,
    },
    /// A packet that parses, but that its receiving host drops by rule:
    /// source-routed (see [`DecodeOptions::accept_source_routed`]), or
    /// carrying an IPv6 option the host does not know whose type says to
    /// discard the packet (RFC 8200 §4.2; known here: Pad1, PadN, the
    /// jumbo payload and the home address).
    Refused {
        /// Why.
        why: &'static str,
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
            DecodeError::BadOptions { layer } => write!(f, "bad {layer:?} options"),
            DecodeError::Refused { why } => write!(f, "refused as a host refuses it: {why}"),
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
    /// True if decoded through a tunnel or MPLS (GRE, VXLAN, Geneve, GTP-U, IPIP, 6in4, …).
    pub tunnel: bool,
    /// With [`DecodeOptions::verify_checksums`], for a packet that came
    /// out of tunnels: `Some(false)` if a checksum of theirs is wrong (an
    /// IPv4 header's outside the innermost one, a GRE header's, a UDP
    /// tunnel's not zero, a VXLAN one's over IPv6 that is zero unless
    /// [`DecodeOptions::vxlan_udp6_zero_csum_rx`]; the tunnel's end drops
    /// the packet, so its receiver never sees it), `Some(true)` if all
    /// those checked are right. `None` when not asked, or with none to
    /// check (IPv6 outer headers have none; the capture cut what a GRE or
    /// UDP checksum covers).
    pub tunnel_checksum_ok: Option<bool>,
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
    /// The virtual network, as in [`FlowKey::vni`].
    pub vni: u32,
    /// The tunnels it came out of, as in [`FlowKey::tunnel_ends`].
    pub ends: u16,
    /// With [`DecodeOptions::verify_checksums`], for IPv4: whether the
    /// header checksum is right (a host drops the fragment if not; the
    /// datagram's TCP checksum is checked once it is whole), and whether
    /// those of the IPv4 headers of tunnels it came out of are (their
    /// ends drop it if not). `None` when not asked, and for IPv6 out of no
    /// IPv4 tunnel (no header checksum).
    pub checksum_ok: Option<bool>,
}

/// Decoder state carried down the layers.
#[derive(Debug)]
pub(crate) struct Ctx<'o> {
    pub opts: &'o DecodeOptions,
    pub vlan: u32,
    /// The innermost VXLAN, Geneve or NVGRE header's network ([`FlowKey::vni`]).
    pub vni: u32,
    /// The tunnels entered ([`FlowKey::tunnel_ends`]).
    pub ends: u16,
    vlan_tags: u8,
    pub tunnel: bool,
    /// With `verify_checksums`: whether the IPv4 headers of the tunnels
    /// entered have right checksums (`None`: none checked).
    pub outer_ok: Option<bool>,
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
            vni: 0,
            ends: 0,
            vlan_tags,
            tunnel: false,
            outer_ok: None,
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

    /// Puts the flow in overlay network `vni` (see
    /// [`DecodeOptions::key_vni`]); an inner one replaces an outer one.
    pub fn set_vni(&mut self, vni: u32) {
        if self.opts.key_vni {
            self.vni = vni;
        }
    }

    /// Enters a tunnel whose outer IP header is `ip` (see
    /// [`DecodeOptions::key_tunnel_ends`]): one more deep, and its ends
    /// replace an outer one's; the header's checksum verdict, if checked,
    /// joins [`Ctx::outer_ok`] unless `mirror` (a mirror's copy: its outer
    /// header is the mirror's, not on the way to the receiver).
    pub fn set_ends(&mut self, ip: &IpInfo, mirror: bool) {
        if let (Some(ok), false) = (ip.header_ok, mirror) {
            self.judge_outer(ok);
        }
        if self.opts.key_tunnel_ends {
            let depth = ((self.ends >> 8) + 1).min(0xff);
            self.ends = depth << 8 | u16::from(crate::flow::tunnel_ends(&ip.src, &ip.dst));
        }
    }

    /// Joins a tunnel header's checksum verdict to [`Ctx::outer_ok`].
    fn judge_outer(&mut self, ok: bool) {
        self.outer_ok = Some(self.outer_ok.unwrap_or(true) && ok);
    }

    /// With `verify_checksums`, judges the checksum a tunnel's own header
    /// carries over the packet inside it, as the tunnel's end checks it:
    /// GRE's where its C bit says it has one, UDP's where it is not zero
    /// (`datagram` is the IP payload, as far as captured), not where the
    /// capture cut what they cover; and a zero one of VXLAN over IPv6 as
    /// bad (see [`DecodeOptions::vxlan_udp6_zero_csum_rx`]), cut or not.
    fn judge_tunnel(&mut self, ip: &IpInfo, proto: u8, datagram: &[u8]) {
        if !self.opts.verify_checksums {
            return;
        }
        // A zero checksum needs none of the bytes it would cover.
        if let (17, 6, [_, _, d0, d1, _, _, 0, 0, ..]) = (proto, ip.version, datagram) {
            let vxlan = self.opts.vxlan_port;
            if vxlan != 0
                && u16::from_be_bytes([*d0, *d1]) == vxlan
                && !self.opts.vxlan_udp6_zero_csum_rx
            {
                self.judge_outer(false);
            }
            return;
        }
        if ip.end != ip.promised_end {
            return;
        }
        match (proto, datagram) {
            (47, [flags, ..]) if flags & 0x80 != 0 => {
                self.judge_outer(internet_checksum(datagram, 0) == 0);
            }
            (17, [_, _, _, _, l0, l1, c0, c1, ..]) if [*c0, *c1] != [0, 0] => {
                let len = usize::from(u16::from_be_bytes([*l0, *l1]));
                let Some(datagram) = datagram.get(..len).filter(|_| len >= 8) else {
                    return;
                };
                let addrs = if ip.version == 4 { 4 } else { 16 };
                let mut acc = sum_words(&ip.src[..addrs], 17 + len as u64);
                acc = sum_words(&ip.dst[..addrs], acc);
                self.judge_outer(!fold(sum_words(datagram, acc)) == 0);
            }
            _ => {}
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
#[inline]
pub fn decode<'a>(
    link: LinkType,
    frame: &'a [u8],
    opts: &DecodeOptions,
) -> Result<Decoded<'a>, DecodeError> {
    if link == LinkType::Ethernet && !opts.verify_checksums {
        if let Some(p) = ethernet_tcp(frame) {
            return Ok(Decoded::Tcp(p));
        }
    }
    link::decode_link(link, frame, &mut Ctx::new(opts, 0))
}

/// The frames most frames are (Ethernet II with at most one VLAN tag,
/// then TCP in an unfragmented IPv4 datagram or right after an IPv6
/// header) decoded in one step, as the layer-by-layer decoder decodes
/// them; `None` for any other frame, and for one the layers would report
/// an error (the caller then takes them). The layers pass their results up
/// as `Result<Decoded>`s through a call each, with the addresses in
/// 16-byte arrays for either version: an inline replay spent about 370
/// instructions a frame decoding, this about 110 (callgrind).
#[inline]
fn ethernet_tcp(frame: &[u8]) -> Option<Packet<'_>> {
    let (et, at, vlan) = match be16(frame, 12)? {
        0x8100 => {
            let tci = be16(frame, 14)?;
            // A priority tag (VLAN 0) is no tag (see `Ctx::push_vlan`).
            (
                be16(frame, 16)?,
                link::ETH_HEADER + 4,
                u32::from(tci & 0x0fff),
            )
        }
        et => (et, link::ETH_HEADER, 0),
    };
    match et {
        0x0800 => v4_tcp(frame, at, vlan),
        0x86dd => v6_tcp(frame, at, vlan),
        _ => None,
    }
}

/// [`ethernet_tcp`] from an IPv4 header at `at`: a well-formed,
/// unfragmented datagram with a length.
#[inline]
fn v4_tcp(frame: &[u8], at: usize, vlan: u32) -> Option<Packet<'_>> {
    let fixed: &[u8; ip::V4_MIN_HEADER] = frame.get(at..at + ip::V4_MIN_HEADER)?.try_into().ok()?;
    let ihl = usize::from(fixed[0] & 0x0f) * 4;
    let total = usize::from(field16(fixed, field::V4_TOTAL_LEN));
    let frag = field16(fixed, field::V4_FRAG);
    // A length of 0 (segmentation offload), options and fragments take
    // the layers.
    if fixed[0] >> 4 != 4
        || ihl != ip::V4_MIN_HEADER
        || total < ihl
        || frag & (ip::V4_MF | ip::V4_OFFSET_MASK) != 0
        || fixed[field::V4_PROTO] != 6
        || frame.len() < at + ihl
    {
        return None;
    }
    let (s, d) = (field::V4_SRC, field::V4_DST);
    let src = [fixed[s], fixed[s + 1], fixed[s + 2], fixed[s + 3]];
    let dst = [fixed[d], fixed[d + 1], fixed[d + 2], fixed[d + 3]];
    let ip = Placed {
        at,
        payload: at + ihl,
        promised_end: at + total,
        version: 4,
        ttl: fixed[field::V4_TTL],
        id: field16(fixed, field::V4_ID),
    };
    tcp_at(frame, ip, |sp, dp| FlowKey::from_v4(src, sp, dst, dp, vlan))
}

/// [`ethernet_tcp`] from an IPv6 header at `at`, with a payload length
/// and TCP next.
#[inline]
fn v6_tcp(frame: &[u8], at: usize, vlan: u32) -> Option<Packet<'_>> {
    let fixed: &[u8; ip::V6_HEADER] = frame.get(at..at + ip::V6_HEADER)?.try_into().ok()?;
    let len = usize::from(field16(fixed, field::V6_PAYLOAD_LEN));
    if fixed[0] >> 4 != 6 || len == 0 || fixed[field::V6_NEXT] != 6 {
        return None;
    }
    let src: [u8; 16] = array(fixed, field::V6_SRC)?;
    let dst: [u8; 16] = array(fixed, field::V6_DST)?;
    let ip = Placed {
        at,
        payload: at + ip::V6_HEADER,
        promised_end: at + ip::V6_HEADER + len,
        version: 6,
        ttl: fixed[field::V6_HOP],
        id: 0,
    };
    tcp_at(frame, ip, |sp, dp| FlowKey::from_v6(src, sp, dst, dp, vlan))
}

/// Where [`ethernet_tcp`] found an IP header and what it read there.
struct Placed {
    at: usize,
    payload: usize,
    /// The end the IP length promises (the capture may end sooner).
    promised_end: usize,
    version: u8,
    ttl: u8,
    id: u16,
}

/// The TCP segment of the IP header `ip`; `key` orders the addresses
/// with the ports.
#[inline]
fn tcp_at(
    frame: &[u8],
    ip: Placed,
    key: impl FnOnce(u16, u16) -> (FlowKey, Dir),
) -> Option<Packet<'_>> {
    let end = ip.promised_end.min(frame.len());
    let segment = frame.get(ip.payload..end)?;
    let tcp = TcpHeader::parse_inline(segment, ip.promised_end - ip.payload).ok()?;
    let (key, dir) = key(tcp.src_port, tcp.dst_port);
    Some(Packet {
        key,
        dir,
        payload: segment.get(usize::from(tcp.header_len)..).unwrap_or(&[]),
        tcp,
        payload_missing: u32::try_from(ip.promised_end - end).unwrap_or(u32::MAX),
        ip_offset: u16::try_from(ip.at).ok()?,
        tcp_offset: u16::try_from(ip.payload).ok()?,
        ip_version: ip.version,
        ttl_or_hop: ip.ttl,
        ip_id: ip.id,
        checksum_ok: None,
        tunnel: false,
        tunnel_checksum_ok: None,
    })
}

/// Decodes starting at an IP header of either version (e.g. a datagram from
/// the [`crate::Defragmenter`]), with the VLAN IDs already folded, outside
/// any overlay network ([`decode_ip_in`] for one).
pub fn decode_ip<'a>(
    packet: &'a [u8],
    vlan: u32,
    opts: &DecodeOptions,
) -> Result<Decoded<'a>, DecodeError> {
    decode_ip_in(packet, Zone::vlan(vlan), opts)
}

/// [`decode_ip`] in `zone`: VLAN IDs already folded, and the network of
/// the VXLAN, Geneve or NVGRE header the packet came out of ([`FlowKey::vni`]; 0
/// for none). What the engine's workers decode, from the innermost IP
/// header a dispatcher found, with the zone of the dispatcher's key.
pub fn decode_ip_in<'a>(
    packet: &'a [u8],
    zone: Zone,
    opts: &DecodeOptions,
) -> Result<Decoded<'a>, DecodeError> {
    let Zone { vlan, vni, ends } = zone;
    if !opts.verify_checksums {
        // What workers decode: the one step, from the IP header.
        let one = match packet.first().map(|b| b >> 4) {
            Some(4) => v4_tcp(packet, 0, vlan),
            Some(6) => v6_tcp(packet, 0, vlan),
            _ => None,
        };
        if let Some(mut p) = one {
            p.key = p.key.with_zone(zone);
            return Ok(Decoded::Tcp(p));
        }
    }
    let mut ctx = Ctx::new(opts, vlan);
    ctx.vni = vni;
    ctx.ends = ends;
    ip::decode_any(packet, 0, &mut ctx)
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
            ctx.set_ends(ip, false);
            ip::decode_v4(frame, ip.payload, ctx)
        }
        41 if tunnels => {
            ctx.nest()?;
            ctx.set_ends(ip, false);
            ip::decode_v6(frame, ip.payload, ctx)
        }
        47 if tunnels => {
            // ERSPAN (types II and III) carries a mirror's copies.
            let kind = frame.get(ip.payload + 2..ip.payload + 4);
            let mirror = matches!(kind, Some([0x88, 0xbe] | [0x22, 0xeb]));
            ctx.set_ends(ip, mirror);
            if !mirror {
                ctx.judge_tunnel(ip, 47, frame.get(ip.payload..).unwrap_or(&[]));
            }
            link::gre(frame, ip.payload, ctx)
        }
        // Plain UDP ends as `Other` whatever `ends` says.
        17 if tunnels => {
            ctx.set_ends(ip, false);
            ctx.judge_tunnel(ip, 17, frame.get(ip.payload..).unwrap_or(&[]));
            link::udp(frame, ip.payload, ctx)
        }
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
    let key = key.with_vni(ctx.vni).with_tunnel_ends(ctx.ends);
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
        tunnel_checksum_ok: ctx.outer_ok,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A TCP frame to build: VLAN tags `(TPID, TCI)`, IPv4 (header words,
    /// total length given or computed, flags and offset, protocol) or
    /// IPv6 (next header), TCP header words and options, payload.
    #[derive(Clone, Debug)]
    struct Frame {
        tags: Vec<(u16, u16)>,
        v6: bool,
        ihl: u8,
        total: Option<u16>,
        frag: u16,
        proto: u8,
        options: Vec<u8>,
        payload: Vec<u8>,
        fill: u8,
    }

    fn frame() -> impl Strategy<Value = Frame> {
        let tag = (
            prop::sample::select(&[0x8100u16, 0x8100, 0x88a8, 0x9100][..]),
            prop_oneof![Just(0u16), 1u16..0xffff],
        );
        let options = prop_oneof![
            Just(Vec::new()),
            any::<[u8; 8]>().prop_map(|t| [&[1, 1, 8, 10][..], &t].concat()),
            (0usize..4).prop_flat_map(|n| prop::collection::vec(any::<u8>(), n * 4)),
        ];
        (
            prop::collection::vec(tag, 0..3),
            any::<bool>(),
            5u8..8,
            prop_oneof![3 => Just(None), 1 => any::<u16>().prop_map(Some), 1 => Just(Some(0))],
            prop_oneof![3 => Just(0u16), 1 => Just(0x4000), 1 => any::<u16>()],
            prop_oneof![6 => Just(6u8), 1 => any::<u8>()],
            options,
            prop::collection::vec(any::<u8>(), 0..40),
            any::<u8>(),
        )
            .prop_map(
                |(tags, v6, ihl, total, frag, proto, options, payload, fill)| Frame {
                    tags,
                    v6,
                    ihl,
                    total,
                    frag,
                    proto,
                    options,
                    payload,
                    fill,
                },
            )
    }

    fn build(f: &Frame) -> Vec<u8> {
        let mut tcp = vec![f.fill; 20];
        tcp[12] = ((5 + f.options.len() / 4) << 4) as u8;
        tcp.extend(&f.options);
        tcp.extend(&f.payload);
        let mut out = vec![f.fill; 12];
        for &(tpid, tci) in &f.tags {
            out.extend(tpid.to_be_bytes());
            out.extend(tci.to_be_bytes());
        }
        if f.v6 {
            out.extend(0x86ddu16.to_be_bytes());
            let len = f.total.unwrap_or(tcp.len() as u16);
            out.extend([0x60, 0, 0, 0]);
            out.extend(len.to_be_bytes());
            out.extend([f.proto, 64]);
            out.extend((0..32).map(|i| f.fill ^ i));
        } else {
            out.extend(0x0800u16.to_be_bytes());
            let hl = usize::from(f.ihl) * 4;
            let total = f.total.unwrap_or((hl + tcp.len()) as u16);
            out.extend([0x40 | f.ihl, 0]);
            out.extend(total.to_be_bytes());
            out.extend([f.fill, 1]);
            out.extend(f.frag.to_be_bytes());
            out.extend([64, f.proto, 0, 0]);
            out.extend((0..8).map(|i| f.fill ^ i));
            out.resize(out.len() + hl - 20, 0);
        }
        out.extend(tcp);
        out
    }

    /// IPv6 takes any number of extension headers, as its receiver does:
    /// a count limit made the segment behind 16 Destination Options
    /// headers undecodable.
    #[test]
    fn any_number_of_ipv6_extension_headers_reach_tcp() {
        for n in [1usize, 15, 16, 17, 200] {
            let mut ext = Vec::new();
            for i in 0..n {
                let next = if i + 1 == n { 6 } else { 60 };
                ext.extend([next, 0, 1, 4, 0, 0, 0, 0]); // PadN
            }
            let mut tcp = vec![0u8; 20];
            tcp[..4].copy_from_slice(&[0x30, 0x39, 0, 80]);
            tcp[12] = 5 << 4;
            tcp.extend(b"payload");
            let mut f = vec![0u8; 12];
            f.extend(0x86ddu16.to_be_bytes());
            f.extend([0x60, 0, 0, 0]);
            f.extend(((ext.len() + tcp.len()) as u16).to_be_bytes());
            f.extend([60, 64]);
            f.extend((0..32u8).map(|i| i + 1));
            f.extend(&ext);
            f.extend(&tcp);
            match decode(LinkType::Ethernet, &f, &DecodeOptions::default()) {
                Ok(Decoded::Tcp(p)) => {
                    assert_eq!(p.payload, b"payload", "{n} headers");
                    assert_eq!(usize::from(p.tcp_offset), 14 + 40 + ext.len());
                }
                other => panic!("{n} headers: {other:?}"),
            }
        }
    }

    fn layered<'a>(frame: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
        let opts = DecodeOptions::default();
        link::decode_link(LinkType::Ethernet, frame, &mut Ctx::new(&opts, 0))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        /// The one-step decode gives what the layers give, for any frame
        /// it takes; clean frames of the shapes it covers it takes.
        #[test]
        fn one_step_decodes_as_the_layers_do(
            f in frame(),
            flips in prop::collection::vec((0usize..100, prop_oneof![Just(0u8), Just(6), Just(0x45), any::<u8>()]), 0..3),
            cut in prop::option::weighted(0.2, any::<prop::sample::Index>()),
        ) {
            let mut bytes = build(&f);
            let clean = flips.is_empty() && cut.is_none();
            for &(at, v) in &flips {
                let n = bytes.len();
                bytes[at % n] = v;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            let one = ethernet_tcp(&bytes);
            if let Some(p) = one {
                prop_assert_eq!(layered(&bytes), Ok(Decoded::Tcp(p)));
            }
            prop_assert_eq!(decode(LinkType::Ethernet, &bytes, &DecodeOptions::default()), layered(&bytes));
            let covered = f.proto == 6
                && match &f.tags[..] {
                    [] => true,
                    [(tpid, _)] => *tpid == 0x8100,
                    _ => false,
                }
                && if f.v6 {
                    // A given length must hold the TCP header at least.
                    f.total.map_or(true, |t| usize::from(t) >= 20 + f.options.len())
                } else {
                    // IPv4 options take the layers, which check them.
                    f.frag & 0x3fff == 0 && f.total.is_none() && f.ihl == 5
                };
            if clean && covered {
                prop_assert!(one.is_some(), "{:?}", layered(&bytes));
            }
            // From the IP header on (a worker's decode), with the tags
            // folded as the dispatcher folds them.
            let at = 14 + 4 * f.tags.len();
            if let Some(ip) = bytes.get(at..) {
                let vlan = u32::from(f.fill) << 4;
                let opts = DecodeOptions::default();
                let from_ip = ip::decode_any(ip, 0, &mut Ctx::new(&opts, vlan));
                prop_assert_eq!(decode_ip(ip, vlan, &opts), from_ip);
                if clean && covered {
                    prop_assert!(matches!(decode_ip(ip, vlan, &opts), Ok(Decoded::Tcp(_))));
                }
            }
        }
    }
}
