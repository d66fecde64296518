//! Classic pcap: the 24-byte file header and 16-byte record headers.
//!
//! Hand-written rather than taken from `pcap-parser`: the format is two fixed
//! headers, this is the per-packet hot path, and owning it lets every record
//! be checked against our own limits with an exact error offset.

use crate::endian::Endian;
use crate::error::ErrorKind;

/// Length of the classic pcap file header.
pub(crate) const FILE_HEADER_LEN: usize = 24;
/// Length of a classic pcap record header.
pub(crate) const RECORD_HEADER_LEN: usize = 16;
/// Length of a record header of the modified ("Kuznetzov") format: the
/// classic 16 bytes, then the interface index (4), the protocol (2), the
/// packet type (1) and a pad byte, none of which weft needs.
const MODIFIED_RECORD_HEADER_LEN: usize = 24;

/// Largest captured length accepted for one record (256 KiB). Real captures
/// top out at 64 KiB (or 256 KiB with some big-segment offloads); anything
/// beyond is a corrupt length field, and nothing is allocated from it.
pub const MAX_RECORD_LEN: u32 = 256 * 1024;

/// Magic numbers, as read little-endian from the first four bytes.
const MAGIC_MICRO: u32 = 0xa1b2_c3d4;
const MAGIC_MICRO_SWAPPED: u32 = 0xd4c3_b2a1;
const MAGIC_NANO: u32 = 0xa1b2_3c4d;
const MAGIC_NANO_SWAPPED: u32 = 0x4d3c_b2a1;
/// The modified format of Alexey Kuznetzov's patched libpcap for Linux
/// (microseconds, 24-byte record headers), which libpcap reads.
const MAGIC_MODIFIED: u32 = 0xa1b2_cd34;
const MAGIC_MODIFIED_SWAPPED: u32 = 0x34cd_b2a1;

/// Bit flagging that the FCS length field of the link-type word is valid.
const FCS_PRESENT: u32 = 0x0400_0000;

/// The classic pcap file header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapHeader {
    /// Format version, `(major, minor)`: 2.4 in practice; 2.0 to 2.3,
    /// and DG/UX's 543.0, store a record's two lengths the other way
    /// round, and are read as libpcap reads them.
    pub version: (u16, u16),
    /// The largest captured length the writer promised (0: unknown).
    pub snaplen: u32,
    /// The link type (LINKTYPE_*), with the FCS bits masked off.
    pub link_type: u32,
    /// Bytes of frame check sequence at the end of each packet, when the
    /// header's link-type word says so (its upper bits).
    pub fcs_len: Option<u8>,
    /// Timestamps carry nanoseconds (magic `a1b23c4d`) rather than microseconds.
    pub nanos: bool,
    /// The file is big-endian.
    pub big_endian: bool,
    /// Where a record header keeps the captured length.
    lengths: Lengths,
    /// Bytes of each record header: 16, or 24 in the modified format.
    record_len: u8,
}

/// The order of a record header's two lengths, by version: the fields
/// were interchanged at 2.3 to match BPF's header, but some writers put
/// 2.3 in files of the old order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lengths {
    /// Captured length, then length on the wire (2.4).
    Captured,
    /// Length on the wire first (2.0 to 2.2, and DG/UX's 543.0).
    Wire,
    /// 2.3: the old order when the first is the larger, since a captured
    /// length never exceeds the wire's.
    Either,
}

impl PcapHeader {
    /// Tells the format of a file from its first four bytes:
    /// `Some((nanos, big_endian))` for a classic pcap magic (the modified
    /// format's too).
    pub(crate) fn sniff(first4: [u8; 4]) -> Option<(bool, bool)> {
        match u32::from_le_bytes(first4) {
            MAGIC_MICRO | MAGIC_MODIFIED => Some((false, false)),
            MAGIC_MICRO_SWAPPED | MAGIC_MODIFIED_SWAPPED => Some((false, true)),
            MAGIC_NANO => Some((true, false)),
            MAGIC_NANO_SWAPPED => Some((true, true)),
            _ => None,
        }
    }

    /// Bytes of each record header before its frame: 16, or 24 in the
    /// modified format.
    #[inline]
    pub(crate) fn record_len(&self) -> usize {
        usize::from(self.record_len)
    }

    /// Whether the file is of the modified format (24-byte record headers).
    pub fn modified(&self) -> bool {
        self.record_len() == MODIFIED_RECORD_HEADER_LEN
    }

    /// Decodes the 24-byte file header.
    pub(crate) fn parse(b: &[u8; FILE_HEADER_LEN]) -> Result<PcapHeader, ErrorKind> {
        let first4 = [b[0], b[1], b[2], b[3]];
        let (nanos, big_endian) =
            Self::sniff(first4).ok_or(ErrorKind::BadMagic(u32::from_be_bytes(first4)))?;
        let e = endian(big_endian);
        let (major, minor) = (e.u16(b, 4), e.u16(b, 6));
        let lengths = match (major, minor) {
            (2, 0..=2) | (543, 0) => Lengths::Wire,
            (2, 3) => Lengths::Either,
            // libpcap refuses minors past 4; read as 2.4 here.
            (2, _) => Lengths::Captured,
            // libpcap reads no other version either.
            _ => return Err(ErrorKind::UnsupportedVersion { major, minor }),
        };
        let modified = matches!(
            u32::from_le_bytes(first4),
            MAGIC_MODIFIED | MAGIC_MODIFIED_SWAPPED
        );
        let record_len = if modified {
            MODIFIED_RECORD_HEADER_LEN
        } else {
            RECORD_HEADER_LEN
        };
        let word = e.u32(b, 20);
        let fcs_len = (word & FCS_PRESENT != 0).then(|| ((word >> 28) as u8) * 2);
        Ok(PcapHeader {
            version: (major, minor),
            snaplen: e.u32(b, 16),
            link_type: word & 0xffff,
            fcs_len,
            nanos,
            big_endian,
            lengths,
            record_len: record_len as u8,
        })
    }

    /// Largest captured length accepted for a record: twice the snaplen
    /// (at least twice 65535, as some writers put a small or zero snaplen in
    /// the header), and never more than [`MAX_RECORD_LEN`].
    #[inline]
    pub(crate) fn record_limit(&self) -> u32 {
        self.snaplen
            .max(65_535)
            .saturating_mul(2)
            .min(MAX_RECORD_LEN)
    }

    /// Decodes a 16-byte record header, rejecting absurd lengths.
    #[inline]
    pub(crate) fn parse_record(&self, b: &[u8; RECORD_HEADER_LEN]) -> Result<Record, ErrorKind> {
        let e = endian(self.big_endian);
        let (secs, frac) = (u64::from(e.u32(b, 0)), u64::from(e.u32(b, 4)));
        let (first, second) = (e.u32(b, 8), e.u32(b, 12));
        let (caplen, wire_len) = match self.lengths {
            Lengths::Captured => (first, second),
            Lengths::Either if first <= second => (first, second),
            Lengths::Wire | Lengths::Either => (second, first),
        };
        let limit = self.record_limit();
        if caplen > limit {
            return Err(ErrorKind::OversizedRecord { len: caplen, limit });
        }
        // Cannot overflow: 2^32 * 10^9 + 2^32 * 10^3 < 2^63.
        let frac_nanos = if self.nanos { frac } else { frac * 1_000 };
        Ok(Record {
            ts_nanos: secs * 1_000_000_000 + frac_nanos,
            caplen,
            // A writer that records caplen > wire length is wrong but harmless.
            wire_len: wire_len.max(caplen),
        })
    }
}

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) ts_nanos: u64,
    pub(crate) caplen: u32,
    pub(crate) wire_len: u32,
}

fn endian(big: bool) -> Endian {
    if big {
        Endian::Big
    } else {
        Endian::Little
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, big: bool, link: u32) -> [u8; 24] {
        let mut h = [0u8; 24];
        let put = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        h[0..4].copy_from_slice(&put(magic));
        h[4..6].copy_from_slice(&if big {
            2u16.to_be_bytes()
        } else {
            2u16.to_le_bytes()
        });
        h[16..20].copy_from_slice(&put(1500));
        h[20..24].copy_from_slice(&put(link));
        h
    }

    #[test]
    fn magics_and_fcs_bits() {
        let h = PcapHeader::parse(&header(MAGIC_MICRO, true, 1)).unwrap();
        assert!(h.big_endian && !h.nanos);
        assert_eq!(
            (h.version.0, h.snaplen, h.link_type, h.fcs_len),
            (2, 1500, 1, None)
        );
        let h = PcapHeader::parse(&header(MAGIC_NANO, false, 0x8400_0001)).unwrap();
        assert!(!h.big_endian && h.nanos);
        assert_eq!((h.link_type, h.fcs_len), (1, Some(16)));
        let h = PcapHeader::parse(&header(MAGIC_NANO, true, 0x2400_0069)).unwrap();
        assert_eq!((h.link_type, h.fcs_len), (105, Some(4)));
        assert_eq!(
            PcapHeader::parse(&header(0x1234_5678, false, 1)),
            Err(ErrorKind::BadMagic(0x7856_3412))
        );
    }

    #[test]
    fn record_limit_is_bounded() {
        let mut h = PcapHeader::parse(&header(MAGIC_MICRO, false, 1)).unwrap();
        assert_eq!(h.record_limit(), 131_070);
        h.snaplen = u32::MAX;
        assert_eq!(h.record_limit(), MAX_RECORD_LEN);
    }
}
