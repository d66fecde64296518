//! IPv4 (RFC 791) and IPv6 (RFC 8200) headers, as far as dispatch needs.
//!
//! Lengths: the captured packet ends at the smaller of the frame end and
//! the IP length (trailing Ethernet padding is dropped); a zero IPv4 total
//! length or IPv6 payload length (segmentation-offload and "BIG TCP"
//! captures, IPv6 jumbograms) takes the length from the frame, unless
//! [`DecodeOptions::take_zero_ip_length`](crate::DecodeOptions::take_zero_ip_length)
//! is off (jumbograms aside).

use crate::bytes::{array, field16, Field};
use crate::checksum::internet_checksum;
use crate::decode::{transport, Ctx, IpInfo};
use crate::{DecodeError, Decoded, Fragment, Layer};

pub(crate) mod field {
    use super::Field;
    pub const V4_TOTAL_LEN: Field = 2..4;
    pub const V4_ID: Field = 4..6;
    pub const V4_FRAG: Field = 6..8;
    pub const V4_TTL: usize = 8;
    pub const V4_PROTO: usize = 9;
    pub const V4_SRC: usize = 12;
    pub const V4_DST: usize = 16;
    pub const V6_PAYLOAD_LEN: Field = 4..6;
    pub const V6_NEXT: usize = 6;
    pub const V6_HOP: usize = 7;
    pub const V6_SRC: usize = 8;
    pub const V6_DST: usize = 24;
}

/// IPv4 header without options.
pub const V4_MIN_HEADER: usize = 20;
/// IPv6 fixed header.
pub const V6_HEADER: usize = 40;

/// IPv4 "more fragments" flag in the flags/offset word.
pub(crate) const V4_MF: u16 = 0x2000;
/// IPv4 fragment offset mask (units of 8 bytes).
pub(crate) const V4_OFFSET_MASK: u16 = 0x1fff;

/// Decodes an IP header of either version, chosen by the version nibble.
pub(crate) fn decode_any<'a>(
    frame: &'a [u8],
    at: usize,
    ctx: &mut Ctx<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    match frame.get(at).map(|b| b >> 4) {
        Some(4) => decode_v4(frame, at, ctx),
        Some(6) => decode_v6(frame, at, ctx),
        Some(_) => Err(DecodeError::BadVersion),
        None => Err(DecodeError::Truncated { layer: Layer::Ip }),
    }
}

/// Captured end and promised end of a packet at `at` of length `total`.
fn bounds(frame: &[u8], at: usize, total: usize) -> (usize, usize) {
    let promised = at.saturating_add(total);
    (promised.min(frame.len()), promised)
}

/// Decodes an IPv4 header at `at`.
pub(crate) fn decode_v4<'a>(
    frame: &'a [u8],
    at: usize,
    ctx: &mut Ctx<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    let (mut ip, header) = v4_header(frame, at, ctx.opts.verify_checksums)?;
    if !ctx.opts.take_zero_ip_length && field16(header, field::V4_TOTAL_LEN) == 0 {
        return Err(ZERO_LENGTH);
    }
    if header.len() > V4_MIN_HEADER {
        let options = &header[V4_MIN_HEADER..];
        if let Some(dst) = v4_options(options, ctx.opts.accept_source_routed)? {
            ip.dst[..4].copy_from_slice(&dst);
        }
    }
    let proto = header[field::V4_PROTO];
    let word = field16(header, field::V4_FRAG);
    if word & (V4_MF | V4_OFFSET_MASK) != 0 {
        // Segmentation offload never makes fragments: one that claims no
        // length is refused whatever the option says.
        if field16(header, field::V4_TOTAL_LEN) == 0 {
            return Err(ZERO_LENGTH);
        }
        let frag = FragInfo {
            id: u32::from(ip.id),
            protocol: proto,
            offset: u32::from(word & V4_OFFSET_MASK) * 8,
            more: word & V4_MF != 0,
        };
        let data = frame.get(ip.payload..ip.end).unwrap_or(&[]);
        return Ok(fragment(&ip, ctx, frag, data, header));
    }
    transport(&frame[..ip.end], &ip, proto, ctx)
}

/// Validates the IPv4 header at `at`; returns it and its dispatch info.
fn v4_header(frame: &[u8], at: usize, verify: bool) -> Result<(IpInfo, &[u8]), DecodeError> {
    let layer = Layer::Ipv4;
    let fixed = frame
        .get(at..at + V4_MIN_HEADER)
        .ok_or(DecodeError::Truncated { layer })?;
    if fixed[0] >> 4 != 4 {
        return Err(DecodeError::BadVersion);
    }
    let ihl = usize::from(fixed[0] & 0x0f) * 4;
    let total = match usize::from(field16(fixed, field::V4_TOTAL_LEN)) {
        0 => frame.len() - at,
        n => n,
    };
    if ihl < V4_MIN_HEADER || total < ihl {
        return Err(DecodeError::BadHeaderLen { layer });
    }
    let header = frame
        .get(at..at + ihl)
        .ok_or(DecodeError::Truncated { layer })?;
    let (end, promised_end) = bounds(frame, at, total);
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src[..4].copy_from_slice(&fixed[field::V4_SRC..field::V4_SRC + 4]);
    dst[..4].copy_from_slice(&fixed[field::V4_DST..field::V4_DST + 4]);
    let ip = IpInfo {
        version: 4,
        src,
        dst,
        offset: at,
        payload: at + ihl,
        end,
        promised_end,
        ttl: fixed[field::V4_TTL],
        id: field16(fixed, field::V4_ID),
        header_ok: verify.then(|| internet_checksum(header, 0) == 0),
    };
    Ok((ip, header))
}

/// Checks IPv4 options as a receiving host does before it takes the
/// packet (RFC 791, as Linux's `ip_options_compile` reads them): each
/// option but the one-byte ones (end of list, no-operation) has a length
/// of at least 2 that stays within the header; record route, timestamp,
/// router alert and source route options have the lengths and pointers
/// their kind asks for; there is at most one timestamp and one source
/// route. Otherwise the packet is dropped ([`DecodeError::BadOptions`]).
/// A loose or strict source route drops it too, unless
/// `accept_source_routed`, and so does a CIPSO label (a host that has not
/// configured its domain of interpretation drops it), as
/// [`DecodeError::Refused`]. Options past the end of the list are not
/// read, as hosts do not read them.
///
/// Returns the final destination of an accepted source route not yet
/// exhausted: its last address (the connection's end, which the TCP
/// pseudo-header uses), where the header's destination is the next hop.
fn v4_options(options: &[u8], accept_source_routed: bool) -> Result<Option<[u8; 4]>, DecodeError> {
    const END: u8 = 0;
    const NOP: u8 = 1;
    const RECORD_ROUTE: u8 = 7;
    const TIMESTAMP: u8 = 0x44;
    const LSRR: u8 = 0x83;
    const CIPSO: u8 = 0x86;
    const SSRR: u8 = 0x89;
    const ROUTER_ALERT: u8 = 0x94;
    let bad = DecodeError::BadOptions { layer: Layer::Ipv4 };
    let (mut timestamp, mut route) = (false, None::<&[u8]>);
    let mut at = 0;
    while let Some(&kind) = options.get(at) {
        match kind {
            END => break,
            NOP => {
                at += 1;
                continue;
            }
            _ => {}
        }
        let len = usize::from(*options.get(at + 1).ok_or(bad)?);
        let opt = options.get(at..at + len).filter(|_| len >= 2).ok_or(bad)?;
        // The pointer of the kinds that have one (1-based, into the option).
        let ptr = opt.get(2).map_or(0, |&p| usize::from(p));
        match kind {
            RECORD_ROUTE if len < 3 || ptr < 4 || (ptr <= len && ptr + 3 > len) => {
                return Err(bad);
            }
            TIMESTAMP => {
                if timestamp || len < 4 || ptr < 5 {
                    return Err(bad);
                }
                let (flags, overflow) = (opt[3] & 0x0f, opt[3] >> 4);
                // Room for a timestamp, or an address and one.
                let room = if flags == 1 || flags == 3 { 8 } else { 4 };
                if (ptr <= len && ptr + room - 1 > len) || (ptr > len && overflow == 15) {
                    return Err(bad);
                }
                timestamp = true;
            }
            LSRR | SSRR => {
                if route.is_some() || len < 3 || ptr < 4 {
                    return Err(bad);
                }
                if !accept_source_routed {
                    return Err(DecodeError::Refused {
                        why: "IPv4 source route",
                    });
                }
                route = Some(opt);
            }
            ROUTER_ALERT if len < 4 => return Err(bad),
            CIPSO => {
                return Err(DecodeError::Refused {
                    why: "IPv4 CIPSO label",
                })
            }
            _ => {}
        }
        at += len;
    }
    Ok(route.and_then(|r| {
        let ptr = usize::from(r[2]);
        let last = r
            .len()
            .checked_sub(4)
            .filter(|&l| l >= 3 && ptr <= r.len())?;
        r[last..].try_into().ok()
    }))
}

/// Checks the options of an IPv6 Hop-by-Hop (`hop_by_hop`) or Destination
/// Options header (RFC 8200 §4.2), the bytes after its first two, as
/// Linux's `ip6_parse_tlv` does: each but Pad1 fits within the header; at
/// most 7 bytes of padding in a row, PadN's all zero; at most 8 options
/// other than padding; a router alert of 2 bytes; an in-situ OAM option
/// at a multiple of 4; a jumbo payload of 4 bytes at 4n + 2. Otherwise the
/// packet is dropped ([`DecodeError::BadOptions`]). A jumbo payload
/// length that is not one (65,535 or less, or beside a payload length),
/// a CALIPSO label (no domain of interpretation configured) and an option
/// the host does not know whose type's two high bits ask for the packet
/// to be discarded drop it too ([`DecodeError::Refused`]). Known in
/// Hop-by-Hop: the router alert, in-situ OAM, the jumbo payload and
/// CALIPSO; in Destination Options, none (a home address needs a
/// Mobile IPv6 binding, which hosts do not have: it is refused as
/// unknown). `base` is the offset of the first option from the IPv6
/// header (alignment is reckoned from there); `payload_len` the IPv6
/// header's payload length field. Returns whether the options make the
/// packet a jumbogram.
fn v6_options(
    options: &[u8],
    hop_by_hop: bool,
    base: usize,
    payload_len: u16,
) -> Result<bool, DecodeError> {
    const PAD1: u8 = 0;
    const PADN: u8 = 1;
    const ROUTER_ALERT: u8 = 5;
    const CALIPSO: u8 = 7;
    const IOAM: u8 = 0x31;
    const JUMBO: u8 = 0xc2;
    const MAX_OPTIONS: usize = 8;
    let bad = DecodeError::BadOptions {
        layer: Layer::Ipv6Ext,
    };
    let refused = |why| Err(DecodeError::Refused { why });
    let (mut at, mut padding, mut count, mut jumbogram) = (0, 0, 0, false);
    while let Some(&kind) = options.get(at) {
        if kind == PAD1 {
            padding += 1;
            if padding > 7 {
                return Err(bad);
            }
            at += 1;
            continue;
        }
        let len = 2 + usize::from(*options.get(at + 1).ok_or(bad)?);
        let opt = options.get(at..at + len).ok_or(bad)?;
        let data = &opt[2..];
        if kind == PADN {
            padding += len;
            if padding > 7 || data.iter().any(|&b| b != 0) {
                return Err(bad);
            }
            at += len;
            continue;
        }
        padding = 0;
        count += 1;
        if count > MAX_OPTIONS {
            return Err(bad);
        }
        let offset = base + at;
        match (hop_by_hop, kind) {
            (true, ROUTER_ALERT) if data.len() != 2 => return Err(bad),
            (true, ROUTER_ALERT) => {}
            (true, IOAM) if offset % 4 != 0 => return Err(bad),
            (true, IOAM) => {}
            (true, JUMBO) => {
                if data.len() != 4 || offset % 4 != 2 {
                    return Err(bad);
                }
                let jumbo = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                if jumbo <= 65_535 || payload_len != 0 {
                    return refused("IPv6 jumbo payload option without a jumbogram");
                }
                jumbogram = true;
            }
            (true, CALIPSO) => return refused("IPv6 CALIPSO label"),
            _ if kind >> 6 != 0 => return refused("unknown IPv6 option to be discarded"),
            _ => {}
        }
        at += len;
    }
    Ok(jumbogram)
}

/// A packet that claims no length, refused where
/// [`DecodeOptions::take_zero_ip_length`](crate::DecodeOptions::take_zero_ip_length)
/// is off.
const ZERO_LENGTH: DecodeError = DecodeError::Refused {
    why: "IP length of 0",
};

/// The fragmentation fields of an IPv4 header or IPv6 fragment header.
struct FragInfo {
    id: u32,
    protocol: u8,
    offset: u32,
    more: bool,
}

fn fragment<'a>(
    ip: &IpInfo,
    ctx: &Ctx<'_>,
    frag: FragInfo,
    data: &'a [u8],
    header: &'a [u8],
) -> Decoded<'a> {
    Decoded::Fragment(Fragment {
        ip_version: ip.version,
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        id: frag.id,
        protocol: frag.protocol,
        offset: frag.offset,
        more: frag.more,
        data,
        missing: u32::try_from(ip.promised_end.saturating_sub(ip.end)).unwrap_or(u32::MAX),
        header,
        vlan: ctx.vlan,
        vni: ctx.vni,
        ends: ctx.ends,
        checksum_ok: match (ip.header_ok, ctx.outer_ok) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (None, None) => None,
            _ => Some(true),
        },
    })
}

/// Decodes an IPv6 header and its extension headers at `at`.
pub(crate) fn decode_v6<'a>(
    frame: &'a [u8],
    at: usize,
    ctx: &mut Ctx<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    let layer = Layer::Ipv6;
    let fixed = frame
        .get(at..at + V6_HEADER)
        .ok_or(DecodeError::Truncated { layer })?;
    if fixed[0] >> 4 != 6 {
        return Err(DecodeError::BadVersion);
    }
    let total = match usize::from(field16(fixed, field::V6_PAYLOAD_LEN)) {
        0 => frame.len() - at,
        n => V6_HEADER + n,
    };
    let jumbo_next = fixed[field::V6_NEXT] == 0;
    if !ctx.opts.take_zero_ip_length && field16(fixed, field::V6_PAYLOAD_LEN) == 0 && !jumbo_next {
        return Err(ZERO_LENGTH);
    }
    let (end, promised_end) = bounds(frame, at, total);
    let ip = IpInfo {
        version: 6,
        src: array(fixed, field::V6_SRC).unwrap_or_default(),
        dst: array(fixed, field::V6_DST).unwrap_or_default(),
        offset: at,
        payload: at + V6_HEADER,
        end,
        promised_end,
        ttl: fixed[field::V6_HOP],
        id: 0,
        header_ok: None,
    };
    ext_headers(&frame[..end], ip, fixed[field::V6_NEXT], ctx)
}

/// The destination a routing header with segments left sends the packet
/// on to at last (RFC 8200 §8.1: the TCP pseudo-header uses it, and it is
/// the connection's end, so the flow key does too): the last address of a
/// type 0 or type 2 header, the first of a segment routing header (type 4,
/// RFC 8754: its list is in reverse order). `None` when no segment is left
/// (the header's destination is the final one) or for other types (RPL's
/// compressed addresses).
fn final_destination(ext: &[u8]) -> Option<[u8; 16]> {
    let (&kind, &left) = (ext.get(2)?, ext.get(3)?);
    if left == 0 {
        return None;
    }
    let addresses = ext.get(8..)?;
    let at = match kind {
        0 | 2 => (addresses.len() / 16).checked_sub(1)? * 16,
        4 => 0,
        _ => return None,
    };
    addresses.get(at..at + 16)?.try_into().ok()
}

/// Walks IPv6 extension headers, then dispatches on the upper layer.
///
/// As many as the packet holds, as a host takes them (RFC 8200 §4.1: a
/// count limit made a segment behind 16 Destination Options headers
/// undecodable here while its receiver took it). Each header is at least 8
/// bytes, so the walk is bounded by the packet's length.
fn ext_headers<'a>(
    frame: &'a [u8],
    mut ip: IpInfo,
    mut next: u8,
    ctx: &mut Ctx<'_>,
) -> Result<Decoded<'a>, DecodeError> {
    let layer = Layer::Ipv6Ext;
    let mut jumbogram = false;
    loop {
        let at = ip.payload;
        let len = match next {
            0 | 43 | 60 => frame.get(at + 1).map(|&l| (usize::from(l) + 1) * 8),
            51 => frame.get(at + 1).map(|&l| (usize::from(l) + 2) * 4),
            44 => Some(8),
            59 => return Ok(Decoded::Other),
            _ => return transport(frame, &ip, next, ctx),
        };
        let len = len.ok_or(DecodeError::Truncated { layer })?;
        if at + len > ip.promised_end {
            return Err(DecodeError::BadHeaderLen { layer });
        }
        let ext = frame
            .get(at..at + len)
            .ok_or(DecodeError::Truncated { layer })?;
        ip.payload = at + len;
        match next {
            0 if at != ip.offset + V6_HEADER => {
                // RFC 8200 §4.1: right after the IPv6 header only.
                return Err(DecodeError::Refused {
                    why: "IPv6 Hop-by-Hop header not first",
                });
            }
            0 | 60 => {
                let payload_len = frame
                    .get(ip.offset..)
                    .map_or(0, |h| field16(h, field::V6_PAYLOAD_LEN));
                let jumbo = v6_options(&ext[2..], next == 0, at + 2 - ip.offset, payload_len)?;
                if next == 0 && payload_len == 0 && !jumbo && !ctx.opts.take_zero_ip_length {
                    return Err(ZERO_LENGTH);
                }
                jumbogram |= jumbo;
            }
            43 => {
                let (kind, left) = (ext[2], ext[3]);
                // Type 0 with segments left: RFC 5095 forbids processing
                // it, so no host takes the packet. A type not known, with
                // segments left: RFC 8200 §4.4 has it discarded.
                if left != 0 && kind == 0 && !ctx.opts.accept_source_routed {
                    return Err(DecodeError::Refused {
                        why: "IPv6 type 0 routing header",
                    });
                }
                if left != 0 && !matches!(kind, 0 | 2 | 3 | 4) {
                    return Err(DecodeError::Refused {
                        why: "IPv6 routing header of an unknown type",
                    });
                }
                if let Some(dst) = final_destination(ext) {
                    ip.dst = dst;
                }
            }
            _ => {}
        }
        if next == 44 {
            let word = field16(ext, 2..4);
            let frag = FragInfo {
                id: u32::from_be_bytes([ext[4], ext[5], ext[6], ext[7]]),
                protocol: ext[0],
                offset: u32::from(word >> 3) * 8,
                more: word & 1 != 0,
            };
            if frag.offset != 0 || frag.more {
                if jumbogram {
                    // RFC 2675 §3: a jumbogram is never fragmented.
                    return Err(DecodeError::Refused {
                        why: "IPv6 jumbogram fragment",
                    });
                }
                let data = frame.get(ip.payload..).unwrap_or(&[]);
                let header = frame.get(ip.offset..at).unwrap_or(&[]);
                return Ok(fragment(&ip, ctx, frag, data, header));
            }
            // An atomic fragment (RFC 6946): decode straight through.
        }
        next = ext[0];
    }
}
