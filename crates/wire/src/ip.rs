//! IPv4 (RFC 791) and IPv6 (RFC 8200) headers, as far as dispatch needs.
//!
//! Lengths: the captured packet ends at the smaller of the frame end and
//! the IP length (trailing Ethernet padding is dropped); a zero IPv4 total
//! length or IPv6 payload length (segmentation-offload and "BIG TCP"
//! captures, IPv6 jumbograms) takes the length from the frame.

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
    let (ip, header) = v4_header(frame, at, ctx.opts.verify_checksums)?;
    if header.len() > V4_MIN_HEADER {
        v4_options(&header[V4_MIN_HEADER..], ctx.opts.accept_source_routed)?;
    }
    let proto = header[field::V4_PROTO];
    let word = field16(header, field::V4_FRAG);
    if word & (V4_MF | V4_OFFSET_MASK) != 0 {
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
/// packet (RFC 791): each option but the one-byte ones (end of list,
/// no-operation) has a length of at least 2 that stays within the
/// header, or the packet is dropped ([`DecodeError::BadOptions`]); a
/// loose or strict source route drops it too, unless `accept_source_routed`
/// ([`DecodeError::Refused`]). Options past the end of the list are not
/// read, as hosts do not read them.
fn v4_options(options: &[u8], accept_source_routed: bool) -> Result<(), DecodeError> {
    const END: u8 = 0;
    const NOP: u8 = 1;
    const LSRR: u8 = 0x83;
    const SSRR: u8 = 0x89;
    let bad = DecodeError::BadOptions { layer: Layer::Ipv4 };
    let mut at = 0;
    while let Some(&kind) = options.get(at) {
        match kind {
            END => break,
            NOP => at += 1,
            _ => {
                let len = usize::from(*options.get(at + 1).ok_or(bad)?);
                if len < 2 || at + len > options.len() {
                    return Err(bad);
                }
                if (kind == LSRR || kind == SSRR) && !accept_source_routed {
                    return Err(DecodeError::Refused {
                        why: "IPv4 source route",
                    });
                }
                at += len;
            }
        }
    }
    Ok(())
}

/// Checks the options of an IPv6 Hop-by-Hop (`hop_by_hop`) or Destination
/// Options header (RFC 8200 §4.2), the bytes after its first two: each
/// but Pad1 fits within the header, or the packet is dropped
/// ([`DecodeError::BadOptions`]), and one the host does not know whose
/// type's two high bits ask for the packet to be discarded drops it
/// ([`DecodeError::Refused`]). Known, as Linux knows them: Pad1, PadN,
/// the jumbo payload (Hop-by-Hop) and the home address (Destination);
/// every other option in use has the high bits clear (skip it).
fn v6_options(options: &[u8], hop_by_hop: bool) -> Result<(), DecodeError> {
    const PAD1: u8 = 0;
    const PADN: u8 = 1;
    const JUMBO: u8 = 0xc2;
    const HOME_ADDRESS: u8 = 0xc9;
    let bad = DecodeError::BadOptions {
        layer: Layer::Ipv6Ext,
    };
    let mut at = 0;
    while let Some(&kind) = options.get(at) {
        if kind == PAD1 {
            at += 1;
            continue;
        }
        let len = 2 + usize::from(*options.get(at + 1).ok_or(bad)?);
        if at + len > options.len() {
            return Err(bad);
        }
        let known = match kind {
            PADN => true,
            JUMBO => hop_by_hop,
            HOME_ADDRESS => !hop_by_hop,
            _ => false,
        };
        if !known && kind >> 6 != 0 {
            return Err(DecodeError::Refused {
                why: "unknown IPv6 option to be discarded",
            });
        }
        at += len;
    }
    Ok(())
}

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
        checksum_ok: ip.header_ok,
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
            0 | 60 => v6_options(&ext[2..], next == 0)?,
            43 => {
                // Type 0 with segments left: RFC 5095 forbids processing
                // it, so no host takes the packet.
                if ext[2] == 0 && ext[3] != 0 && !ctx.opts.accept_source_routed {
                    return Err(DecodeError::Refused {
                        why: "IPv6 type 0 routing header",
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
                let data = frame.get(ip.payload..).unwrap_or(&[]);
                let header = frame.get(ip.offset..at).unwrap_or(&[]);
                return Ok(fragment(&ip, ctx, frag, data, header));
            }
            // An atomic fragment (RFC 6946): decode straight through.
        }
        next = ext[0];
    }
}
