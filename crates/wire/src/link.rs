//! Link layers and encapsulations: Ethernet with VLAN tags, MPLS, PPPoE,
//! PPP, BSD null/loop, Linux SLL/SLL2, NFLOG, and the tunnels GRE (with
//! ERSPAN), VXLAN, Geneve and GTP-U.

use crate::bytes::{be16, be32, u8_at};
use crate::decode::{need16, Ctx};
use crate::{ip, DecodeError, Decoded, Layer};

/// The link-layer header type of a capture (pcap `LINKTYPE_*` values).
/// Plain data: `Send + Sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// 0: BSD loopback, a 4-byte address family in host byte order (either
    /// byte order is accepted).
    Null,
    /// 1: Ethernet II.
    Ethernet,
    /// 9: PPP, optional `ff 03` address/control then the protocol.
    Ppp,
    /// 12: raw IP (some BSDs).
    RawBsd,
    /// 101: raw IP.
    Raw,
    /// 108: OpenBSD loopback, the address family in network byte order.
    Loop,
    /// 113: Linux cooked capture v1.
    LinuxSll,
    /// 228: raw IPv4.
    Ipv4,
    /// 229: raw IPv6.
    Ipv6,
    /// 239: Linux NFLOG.
    Nflog,
    /// 276: Linux cooked capture v2.
    LinuxSll2,
    /// Any other value (not decodable).
    Other(u32),
}

impl LinkType {
    /// The link type for a pcap `LINKTYPE_*` value.
    pub const fn from_raw(raw: u32) -> LinkType {
        match raw {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            9 => LinkType::Ppp,
            12 => LinkType::RawBsd,
            101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            239 => LinkType::Nflog,
            276 => LinkType::LinuxSll2,
            n => LinkType::Other(n),
        }
    }

    /// The pcap `LINKTYPE_*` value.
    pub const fn to_raw(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Ppp => 9,
            LinkType::RawBsd => 12,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::Nflog => 239,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(n) => n,
        }
    }
}

/// VLAN tags followed before giving up.
pub const MAX_VLAN_TAGS: usize = 8;
/// MPLS labels popped before giving up.
pub const MAX_MPLS_LABELS: usize = 16;

pub(crate) const ETH_HEADER: usize = 14;
const SLL_HEADER: usize = 16;
const SLL2_HEADER: usize = 20;

pub(crate) fn decode_link<'a>(
    link: LinkType,
    frame: &'a [u8],
    ctx: &mut Ctx<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    match link {
        LinkType::Ethernet => ethernet(frame, 0, ctx),
        LinkType::Null => null(frame, ctx, true),
        LinkType::Loop => null(frame, ctx, false),
        LinkType::Ppp => ppp(frame, ctx),
        LinkType::RawBsd | LinkType::Raw => ip::decode_any(frame, 0, ctx),
        LinkType::Ipv4 => ip::decode_v4(frame, 0, ctx),
        LinkType::Ipv6 => ip::decode_v6(frame, 0, ctx),
        LinkType::LinuxSll => sll(frame, 14, SLL_HEADER, ctx),
        LinkType::LinuxSll2 => sll(frame, 0, SLL2_HEADER, ctx),
        LinkType::Nflog => nflog(frame, ctx),
        LinkType::Other(_) => Err(DecodeError::Unsupported { what: "link type" }),
    }
}

/// Ethernet II at `at`.
pub(crate) fn ethernet<'a>(
    frame: &'a [u8],
    at: usize,
    ctx: &mut Ctx<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    let et = need16(frame, at + 12, Layer::Ethernet)?;
    ethertype(frame, et, at + ETH_HEADER, ctx)
}

/// Dispatches on an ethertype whose payload starts at `at`, first
/// stripping VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, legacy 0x9100).
pub(crate) fn ethertype<'a>(
    frame: &'a [u8],
    mut et: u16,
    mut at: usize,
    ctx: &mut Ctx<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    let mut tags = 0;
    while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(DecodeError::Unsupported {
                what: "too many VLAN tags",
            });
        }
        let tci = need16(frame, at, Layer::Vlan)?;
        et = need16(frame, at + 2, Layer::Vlan)?;
        ctx.push_vlan(tci);
        at += 4;
    }
    match et {
        0x0800 => ip::decode_v4(frame, at, ctx),
        0x86dd => ip::decode_v6(frame, at, ctx),
        0x8847 | 0x8848 => mpls(frame, at, ctx),
        0x8864 => pppoe(frame, at, ctx),
        _ => Ok(Decoded::Other),
    }
}

/// An MPLS label stack: pop to bottom of stack, then IP by version nibble.
fn mpls<'a>(frame: &'a [u8], mut at: usize, ctx: &mut Ctx<'_>) -> Result<Decoded<'a>, DecodeError> {
    ctx.nest()?;
    for _ in 0..MAX_MPLS_LABELS {
        let label = be32(frame, at).ok_or(DecodeError::Truncated { layer: Layer::Mpls })?;
        at += 4;
        if label & 0x100 != 0 {
            return match u8_at(frame, at).map(|b| b >> 4) {
                Some(4) => ip::decode_v4(frame, at, ctx),
                Some(6) => ip::decode_v6(frame, at, ctx),
                Some(_) => Ok(Decoded::Other),
                None => Err(DecodeError::Truncated { layer: Layer::Mpls }),
            };
        }
    }
    Err(DecodeError::Unsupported {
        what: "MPLS label stack too deep",
    })
}

/// PPPoE session stage (RFC 2516): 6-byte header, then a PPP protocol, of
/// one byte when protocol-field compression (RFC 1661 §6.5) made it odd.
fn pppoe<'a>(frame: &'a [u8], at: usize, ctx: &mut Ctx<'_>) -> Result<Decoded<'a>, DecodeError> {
    match u8_at(frame, at + 6) {
        Some(b) if b & 1 == 1 => ppp_protocol(frame, u16::from(b), at + 7, ctx),
        Some(_) => ppp_protocol(frame, need16(frame, at + 6, Layer::Pppoe)?, at + 8, ctx),
        None => Err(DecodeError::Truncated {
            layer: Layer::Pppoe,
        }),
    }
}

fn ppp_protocol<'a>(
    frame: &'a [u8],
    proto: u16,
    at: usize,
    ctx: &mut Ctx<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    match proto {
        0x0021 => ip::decode_v4(frame, at, ctx),
        0x0057 => ip::decode_v6(frame, at, ctx),
        0x0281 | 0x0283 => mpls(frame, at, ctx),
        _ => Ok(Decoded::Other),
    }
}

/// PPP (link type 9): optional `ff 03`, then a 2-byte protocol, or a
/// 1-byte one when protocol-field compression made it odd.
fn ppp<'a>(frame: &'a [u8], ctx: &mut Ctx<'_>) -> Result<Decoded<'a>, DecodeError> {
    let at = if frame.starts_with(&[0xff, 0x03]) {
        2
    } else {
        0
    };
    match u8_at(frame, at) {
        Some(b) if b & 1 == 1 => ppp_protocol(frame, u16::from(b), at + 1, ctx),
        Some(_) => ppp_protocol(frame, need16(frame, at, Layer::Link)?, at + 2, ctx),
        None => Err(DecodeError::Truncated { layer: Layer::Link }),
    }
}

/// BSD null (host byte order, so both orders are tried) or loop (network
/// order): a 4-byte address family. AF_INET is 2 everywhere; AF_INET6 is
/// 10 (Linux), 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS).
fn null<'a>(
    frame: &'a [u8],
    ctx: &mut Ctx<'_>,
    any_order: bool,
) -> Result<Decoded<'a>, DecodeError> {
    let raw: [u8; 4] =
        crate::bytes::array(frame, 0).ok_or(DecodeError::Truncated { layer: Layer::Link })?;
    let be = u32::from_be_bytes(raw);
    let le = u32::from_le_bytes(raw);
    let is = |f: fn(u32) -> bool| f(be) || (any_order && f(le));
    if is(|af| af == 2) {
        ip::decode_v4(frame, 4, ctx)
    } else if is(|af| matches!(af, 10 | 24 | 28 | 30)) {
        ip::decode_v6(frame, 4, ctx)
    } else {
        Ok(Decoded::Other)
    }
}

/// Linux cooked capture: the protocol (an ethertype) at `proto_at`,
/// payload after `header` bytes.
fn sll<'a>(
    frame: &'a [u8],
    proto_at: usize,
    header: usize,
    ctx: &mut Ctx<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    if frame.len() < header {
        return Err(DecodeError::Truncated { layer: Layer::Link });
    }
    let proto = need16(frame, proto_at, Layer::Link)?;
    ethertype(frame, proto, header, ctx)
}

/// NFLOG: a 4-byte header (family, version, resource id), then TLVs
/// (length and type little-endian in practice, length including the 4-byte
/// TLV header, each padded to 4 bytes). Type 9 (NFULA_PAYLOAD) holds the
/// IP packet.
fn nflog<'a>(frame: &'a [u8], ctx: &mut Ctx<'_>) -> Result<Decoded<'a>, DecodeError> {
    let layer = Layer::Nflog;
    let family = u8_at(frame, 0).ok_or(DecodeError::Truncated { layer })?;
    let mut at = 4;
    while at < frame.len() {
        let b = frame
            .get(at..at + 4)
            .ok_or(DecodeError::Truncated { layer })?;
        let len = usize::from(u16::from_le_bytes([b[0], b[1]]));
        let kind = u16::from_le_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 {
            return Err(DecodeError::BadHeaderLen { layer });
        }
        let end = at + len;
        if end > frame.len() {
            return Err(DecodeError::Truncated { layer });
        }
        if kind == 9 {
            let inner = &frame[..end];
            return match family {
                2 => ip::decode_v4(inner, at + 4, ctx),
                10 => ip::decode_v6(inner, at + 4, ctx),
                _ => ip::decode_any(inner, at + 4, ctx),
            };
        }
        at = end.saturating_add(3) & !3;
    }
    Ok(Decoded::Other)
}

/// GRE version 0 (RFC 2784, RFC 2890 key and sequence) at `at`. Bridged
/// Ethernet with a key is NVGRE's (RFC 7637): the key's upper 24 bits, the
/// virtual subnet, are the flow's network, as a VXLAN VNI is.
pub(crate) fn gre<'a>(
    frame: &'a [u8],
    at: usize,
    ctx: &mut Ctx<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    ctx.nest()?;
    let flags = need16(frame, at, Layer::Gre)?;
    let proto = need16(frame, at + 2, Layer::Gre)?;
    if flags & 0x4007 != 0 {
        // Version 1 (PPTP) or source routing: not followed.
        return Ok(Decoded::Other);
    }
    let seq = flags & 0x1000 != 0;
    let optional = [0x8000, 0x2000, 0x1000]
        .iter()
        .filter(|&&b| flags & b != 0)
        .count();
    let inner = at + 4 + 4 * optional;
    if inner > frame.len() {
        return Err(DecodeError::Truncated { layer: Layer::Gre });
    }
    match proto {
        0x6558 => {
            if flags & 0x2000 != 0 {
                let key_at = at + 4 + if flags & 0x8000 != 0 { 4 } else { 0 };
                let key =
                    be32(frame, key_at).ok_or(DecodeError::Truncated { layer: Layer::Gre })?;
                ctx.set_vni(key >> 8);
            }
            ethernet(frame, inner, ctx)
        }
        // ERSPAN type II carries an 8-byte header (type I, without a
        // sequence number, none).
        0x88be => ethernet(frame, inner + if seq { 8 } else { 0 }, ctx),
        0x22eb => erspan3(frame, inner, ctx),
        _ => ethertype(frame, proto, inner, ctx),
    }
}

/// ERSPAN type III: 12-byte header, plus 8 when the O bit is set; frame
/// type 0 is Ethernet.
fn erspan3<'a>(frame: &'a [u8], at: usize, ctx: &mut Ctx<'_>) -> Result<Decoded<'a>, DecodeError> {
    let word = be16(frame, at + 10).ok_or(DecodeError::Truncated { layer: Layer::Gre })?;
    if (word >> 10) & 0x1f != 0 {
        return Ok(Decoded::Other);
    }
    let extra = if word & 1 != 0 { 8 } else { 0 };
    ethernet(frame, at + 12 + extra, ctx)
}

/// UDP: followed only to [`crate::DecodeOptions::vxlan_port`], as VXLAN
/// (RFC 7348: an 8-byte header with the I flag, then Ethernet), to
/// [`crate::DecodeOptions::geneve_port`], as Geneve, and to
/// [`crate::DecodeOptions::gtpu_port`], as GTP-U (a port given for two of
/// them is VXLAN's, then Geneve's); other UDP is [`Decoded::Other`].
pub(crate) fn udp<'a>(
    frame: &'a [u8],
    at: usize,
    ctx: &mut Ctx<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    if frame.len() < at + 8 {
        return Err(DecodeError::Truncated { layer: Layer::Udp });
    }
    let dport = need16(frame, at + 2, Layer::Udp)?;
    let port = |p: u16| p != 0 && dport == p;
    // VXLAN first: a port named for two tunnels stays what it was before
    // the others were followed.
    if !port(ctx.opts.vxlan_port) {
        if port(ctx.opts.geneve_port) {
            return geneve(frame, at + 8, ctx);
        }
        if port(ctx.opts.gtpu_port) {
            return gtpu(frame, at + 8, ctx);
        }
        return Ok(Decoded::Other);
    }
    ctx.nest()?;
    let flags = u8_at(frame, at + 8).ok_or(DecodeError::Truncated {
        layer: Layer::Vxlan,
    })?;
    if frame.len() < at + 16 {
        return Err(DecodeError::Truncated {
            layer: Layer::Vxlan,
        });
    }
    if flags & 0x08 == 0 {
        return Ok(Decoded::Other);
    }
    ctx.set_vni(u32::from_be_bytes([
        0,
        frame[at + 12],
        frame[at + 13],
        frame[at + 14],
    ]));
    ethernet(frame, at + 16, ctx)
}

/// Geneve (RFC 8926) at `at`: a version 0 header, its options skipped,
/// then the protocol it names: Ethernet (0x6558), or, as for GRE, any
/// EtherType the Ethernet decoder follows (IPv4, IPv6, VLAN tags, MPLS,
/// PPPoE). An OAM (control) packet, another version or another protocol
/// is [`Decoded::Other`].
fn geneve<'a>(frame: &'a [u8], at: usize, ctx: &mut Ctx<'_>) -> Result<Decoded<'a>, DecodeError> {
    ctx.nest()?;
    let layer = Layer::Geneve;
    let Some(head) = frame.get(at..at + 8) else {
        return Err(DecodeError::Truncated { layer });
    };
    let (version, options) = (head[0] >> 6, usize::from(head[0] & 0x3f) * 4);
    if version != 0 || head[1] & 0x80 != 0 {
        return Ok(Decoded::Other);
    }
    let inner = at + 8 + options;
    if frame.len() < inner {
        return Err(DecodeError::Truncated { layer });
    }
    ctx.set_vni(u32::from_be_bytes([0, head[4], head[5], head[6]]));
    match u16::from_be_bytes([head[2], head[3]]) {
        0x6558 => ethernet(frame, inner, ctx),
        proto => ethertype(frame, proto, inner, ctx),
    }
}

/// GTP-U extension headers followed before giving up.
pub const MAX_GTPU_EXTENSIONS: usize = 16;

/// GTP-U (3GPP TS 29.281) at `at`: a version 1 G-PDU (message type 255),
/// its optional fields and extension headers skipped, then the IP packet
/// it carries. Other messages (echo, error indication, end marker),
/// GTP' and other versions are [`Decoded::Other`], as is a payload that
/// is not IP.
fn gtpu<'a>(frame: &'a [u8], at: usize, ctx: &mut Ctx<'_>) -> Result<Decoded<'a>, DecodeError> {
    ctx.nest()?;
    let layer = Layer::Gtpu;
    let truncated = DecodeError::Truncated { layer };
    let head = frame.get(at..at + 8).ok_or(truncated)?;
    let (flags, message) = (head[0], head[1]);
    // Version 1, protocol type GTP (not GTP'), a G-PDU.
    if flags >> 5 != 1 || flags & 0x10 == 0 || message != 0xff {
        return Ok(Decoded::Other);
    }
    let mut inner = at + 8;
    // E, S or PN: a sequence number, an N-PDU number and the type of
    // the first extension header follow (all three, whichever is set).
    if flags & 0x07 != 0 {
        let next = u8_at(frame, inner + 3).ok_or(truncated)?;
        inner += 4;
        let mut next = if flags & 0x04 != 0 { next } else { 0 };
        let mut seen = 0;
        while next != 0 {
            seen += 1;
            if seen > MAX_GTPU_EXTENSIONS {
                return Err(DecodeError::Unsupported {
                    what: "too many GTP-U extension headers",
                });
            }
            // Length in 4-byte units, the length and next-type bytes
            // included; the next type is the header's last byte.
            let len = usize::from(u8_at(frame, inner).ok_or(truncated)?) * 4;
            if len == 0 {
                return Err(DecodeError::BadHeaderLen { layer });
            }
            next = u8_at(frame, inner + len - 1).ok_or(truncated)?;
            inner += len;
        }
    }
    match u8_at(frame, inner).map(|b| b >> 4) {
        Some(4) => ip::decode_v4(frame, inner, ctx),
        Some(6) => ip::decode_v6(frame, inner, ctx),
        Some(_) => Ok(Decoded::Other),
        None => Err(truncated),
    }
}
