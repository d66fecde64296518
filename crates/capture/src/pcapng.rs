//! pcapng: section header, interface description and packet blocks.
//!
//! Hand-written rather than built on `pcap-parser`: that crate decodes every
//! enhanced packet block's options into a freshly allocated `Vec`, and its
//! errors do not separate "truncated" from "bad length" at a byte offset. Here
//! a packet block costs a few bounds-checked integer reads, options are only
//! walked in interface descriptions (for `if_tsresol`, `if_tsoffset`,
//! `if_fcslen`), and the same code serves mapped files and streams.
//!
//! Block layout (all integers in the section's byte order):
//! `type: u32, total_len: u32, body[total_len - 12], total_len: u32`.

use crate::endian::Endian;
use crate::error::ErrorKind;
use crate::pcap::MAX_RECORD_LEN;

/// Section header block type (a palindrome: the same in both byte orders).
pub(crate) const SHB: u32 = 0x0a0d_0d0a;
/// Interface description block.
pub(crate) const IDB: u32 = 1;
/// Obsolete packet block.
pub(crate) const PB: u32 = 2;
/// Simple packet block.
pub(crate) const SPB: u32 = 3;
/// Enhanced packet block.
pub(crate) const EPB: u32 = 6;

/// Byte-order magic of a section header, read little-endian.
const BOM_LE: u32 = 0x1a2b_3c4d;
const BOM_BE: u32 = 0x4d3c_2b1a;

/// Largest packet block accepted: a maximal record plus 64 KiB of options.
pub(crate) const MAX_PACKET_BLOCK: u32 = MAX_RECORD_LEN + 64 * 1024;
/// Largest section header or interface description accepted (they are
/// buffered whole, so their length needs a bound too).
pub(crate) const MAX_META_BLOCK: u32 = 1024 * 1024;

const OPT_END: u16 = 0;
const IF_FCSLEN: u16 = 13;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

/// A capture interface declared by a pcapng interface description block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    /// The link type (LINKTYPE_*) of its packets.
    pub link_type: u32,
    /// Its snapshot length (0: unlimited).
    pub snaplen: u32,
    /// The raw `if_tsresol` byte: `n` means units of 10^-n s, `0x80 | n`
    /// units of 2^-n s. Default 6 (microseconds).
    pub tsresol: u8,
    /// `if_tsoffset`: seconds added to every timestamp. Default 0.
    pub tsoffset: i64,
    /// `if_fcslen` as written: the length of the frame check sequence at
    /// the end of each packet, in bits as the pcapng specification has it
    /// (32 for 4 bytes; some writers have put bytes). Unlike
    /// [`PcapHeader::fcs_len`](crate::PcapHeader::fcs_len), not converted.
    pub fcs_len: Option<u8>,
}

impl Interface {
    /// Converts a timestamp in this interface's units to nanoseconds since
    /// the Unix epoch: exact when a unit is a whole number of nanoseconds
    /// (10^-n s with n at most 9), rounded down for finer units and for
    /// units of 2^-n s; clamped to the `u64` range.
    pub fn to_nanos(&self, ticks: u64) -> u64 {
        let ticks = u128::from(ticks);
        let exp = u32::from(self.tsresol & 0x7f);
        let nanos = if self.tsresol & 0x80 != 0 {
            // ticks * 10^9 < 2^94: no overflow; exp <= 127 < 128.
            (ticks * 1_000_000_000) >> exp
        } else if exp <= 9 {
            ticks * 10u128.pow(9 - exp)
        } else if exp - 9 <= 38 {
            ticks / 10u128.pow(exp - 9)
        } else {
            0
        };
        let total = nanos as i128 + i128::from(self.tsoffset) * 1_000_000_000;
        total.clamp(0, i128::from(u64::MAX)) as u64
    }
}

/// What one block means to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    /// A new section (its byte order was applied while reading the header).
    Section,
    /// A new interface in the current section.
    Interface(Interface),
    /// A packet: `data_at` is the data's offset in the block.
    Packet(Packet),
}

/// A packet block, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packet {
    /// Interface index in the section.
    pub(crate) interface: u32,
    /// Timestamp in interface units; `None` for a simple packet block.
    pub(crate) ticks: Option<u64>,
    pub(crate) data_at: usize,
    pub(crate) caplen: u32,
    pub(crate) wire_len: u32,
}

/// Reads a section header's byte-order magic (bytes 8..12 of the block).
pub(crate) fn section_endian(bom: [u8; 4]) -> Result<Endian, ErrorKind> {
    match u32::from_le_bytes(bom) {
        BOM_LE => Ok(Endian::Little),
        BOM_BE => Ok(Endian::Big),
        _ => Err(ErrorKind::BadByteOrder(u32::from_be_bytes(bom))),
    }
}

/// Minimum total length of a block of `btype`, header and trailer included.
fn min_len(btype: u32) -> u32 {
    match btype {
        SHB => 28,
        IDB => 20,
        SPB => 16,
        EPB | PB => 32,
        _ => 12,
    }
}

/// Checks a block's leading length against its type; returns the largest
/// length that may be buffered for it (`None`: skip the block unread).
pub(crate) fn check_len(btype: u32, len: u32) -> Result<Option<u32>, ErrorKind> {
    if len % 4 != 0 || len < min_len(btype) {
        return Err(ErrorKind::BadBlockLength { len, trailer: len });
    }
    let limit = match btype {
        EPB | PB | SPB => MAX_PACKET_BLOCK,
        SHB | IDB => MAX_META_BLOCK,
        _ => return Ok(None),
    };
    if len > limit {
        return Err(ErrorKind::OversizedRecord { len, limit });
    }
    Ok(Some(limit))
}

/// Checks the trailing copy of the length `len` that [`check_len`]
/// accepted (`block` is the whole block, `len` bytes).
pub(crate) fn check_trailer(block: &[u8], len: u32, e: Endian) -> Result<(), ErrorKind> {
    let trailer = e.u32(block, block.len() - 4);
    if trailer != len {
        return Err(ErrorKind::BadBlockLength { len, trailer });
    }
    Ok(())
}

/// Decodes a whole, length-checked block of type `btype`, which
/// `check_len` accepted. The type is the one read for that check, passed
/// in rather than read again (as the checked length is to
/// [`check_trailer`]), so a block is decoded as the type its length was
/// checked for.
/// `snaplen0` is interface 0's snaplen, for simple packet blocks.
pub(crate) fn decode(
    btype: u32,
    block: &[u8],
    e: Endian,
    snaplen0: Option<u32>,
) -> Result<Block, ErrorKind> {
    let body = &block[8..block.len() - 4];
    match btype {
        SHB => match (e.u16(body, 4), e.u16(body, 6)) {
            (1, _) => Ok(Block::Section),
            (major, minor) => Err(ErrorKind::UnsupportedVersion { major, minor }),
        },
        IDB => interface(body, e).map(Block::Interface),
        EPB => packet(body, e, e.u32(body, 0)).map(Block::Packet),
        PB => packet(body, e, u32::from(e.u16(body, 0))).map(Block::Packet),
        SPB => simple(body, e, snaplen0).map(Block::Packet),
        _ => unreachable!("check_len only admits the types above"),
    }
}

/// An interface description body: link type, snaplen, options. An option
/// list that runs past the block is an error: it may hide the resolution
/// or offset every timestamp of the interface depends on.
fn interface(body: &[u8], e: Endian) -> Result<Interface, ErrorKind> {
    let mut iface = Interface {
        link_type: u32::from(e.u16(body, 0)),
        snaplen: e.u32(body, 4),
        tsresol: 6,
        tsoffset: 0,
        fcs_len: None,
    };
    for_each_option(&body[8..], e, |code, value| match (code, value.len()) {
        (IF_TSRESOL, 1) => iface.tsresol = value[0],
        (IF_FCSLEN, 1) => iface.fcs_len = Some(value[0]),
        (IF_TSOFFSET, 8) => iface.tsoffset = e.u64(value, 0) as i64,
        _ => {}
    })?;
    Ok(iface)
}

/// Calls `f(code, value)` for each option until the end marker or the end
/// of `opts` (the marker may be left out); an option whose value runs past
/// `opts` is [`ErrorKind::BadOptions`].
fn for_each_option(
    mut opts: &[u8],
    e: Endian,
    mut f: impl FnMut(u16, &[u8]),
) -> Result<(), ErrorKind> {
    while opts.len() >= 4 {
        let (code, len) = (e.u16(opts, 0), usize::from(e.u16(opts, 2)));
        if code == OPT_END {
            return Ok(());
        }
        if 4 + len > opts.len() {
            return Err(ErrorKind::BadOptions { code });
        }
        f(code, &opts[4..4 + len]);
        let padded = (4 + len + 3) & !3;
        opts = &opts[padded.min(opts.len())..];
    }
    Ok(())
}

/// An enhanced (or obsolete) packet block body: the two share a layout once
/// the interface id is read.
fn packet(body: &[u8], e: Endian, interface: u32) -> Result<Packet, ErrorKind> {
    let caplen = e.u32(body, 12);
    check_caplen(caplen, body, 20)?;
    Ok(Packet {
        interface,
        ticks: Some((u64::from(e.u32(body, 4)) << 32) | u64::from(e.u32(body, 8))),
        data_at: 8 + 20,
        caplen,
        wire_len: e.u32(body, 16).max(caplen),
    })
}

/// A simple packet block body: original length then data, on interface 0.
/// The block has no captured length: the data is the original length cut
/// to interface 0's snaplen, and the block must hold it (what follows is
/// padding, never data).
fn simple(body: &[u8], e: Endian, snaplen0: Option<u32>) -> Result<Packet, ErrorKind> {
    let snaplen = snaplen0.ok_or(ErrorKind::UnknownInterface(0))?;
    let wire_len = e.u32(body, 0);
    let caplen = match snaplen {
        0 => wire_len,
        cut => wire_len.min(cut),
    };
    check_caplen(caplen, body, 4)?;
    Ok(Packet {
        interface: 0,
        ticks: None,
        data_at: 8 + 4,
        caplen,
        wire_len,
    })
}

/// A packet block's captured length: within the record limit, and held
/// by its `body` after `fields` bytes of fixed fields.
fn check_caplen(caplen: u32, body: &[u8], fields: usize) -> Result<(), ErrorKind> {
    if caplen > MAX_RECORD_LEN {
        return Err(ErrorKind::OversizedRecord {
            len: caplen,
            limit: MAX_RECORD_LEN,
        });
    }
    if caplen as usize > body.len() - fields {
        let len = (body.len() + 12) as u32;
        return Err(ErrorKind::BadBlockLength { len, trailer: len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(tsresol: u8, tsoffset: i64) -> Interface {
        Interface {
            link_type: 1,
            snaplen: 0,
            tsresol,
            tsoffset,
            fcs_len: None,
        }
    }

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(iface(6, 0).to_nanos(1_500_000), 1_500_000_000);
        assert_eq!(iface(9, 0).to_nanos(123), 123);
        assert_eq!(iface(12, 0).to_nanos(123_456), 123);
        assert_eq!(iface(0x80 | 6, 0).to_nanos(65), 1_015_625_000);
        assert_eq!(iface(0x80 | 127, 0).to_nanos(u64::MAX), 0);
        assert_eq!(iface(127, 0).to_nanos(u64::MAX), 0);
        assert_eq!(iface(0, 0).to_nanos(u64::MAX), u64::MAX);
        assert_eq!(iface(9, 10).to_nanos(5), 10_000_000_005);
        assert_eq!(iface(9, -10).to_nanos(5), 0);
    }

    #[test]
    fn options_walk_reports_a_length_past_the_list() {
        let e = Endian::Little;
        let mut seen = Vec::new();
        // code 2 len 3 (padded to 4), code 9 len 1, then a length overrunning the list.
        let opts = [
            2, 0, 3, 0, b'a', b'b', b'c', 0, 9, 0, 1, 0, 9, 0, 0, 0, 7, 0, 200, 0,
        ];
        let walked = for_each_option(&opts, e, |c, v| seen.push((c, v.to_vec())));
        assert_eq!(walked, Err(ErrorKind::BadOptions { code: 7 }));
        assert_eq!(seen, vec![(2, b"abc".to_vec()), (9, vec![9])]);
        // The end marker ends the walk, whatever follows it.
        let ended = [9, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 7, 0, 200, 0];
        seen.clear();
        let walked = for_each_option(&ended, e, |c, v| seen.push((c, v.to_vec())));
        assert_eq!((walked, seen), (Ok(()), vec![(9, vec![6])]));
    }

    #[test]
    fn block_length_rules() {
        assert!(check_len(EPB, 30).is_err());
        assert!(check_len(EPB, 28).is_err());
        assert_eq!(check_len(0x99, 12), Ok(None));
        assert!(matches!(
            check_len(EPB, 1 << 30),
            Err(ErrorKind::OversizedRecord { .. })
        ));
    }
}
