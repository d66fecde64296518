//! Per half-connection digests: bytes, gap bytes and SHA-256 of the
//! delivered stream, in the format shared with the peer harnesses:
//!
//! `SRC_IP SRC_PORT DST_IP DST_PORT BYTES GAPBYTES SHA256HEX`, one line per
//! direction of each connection with data or gaps, sorted bytewise.

use std::net::IpAddr;

/// One finished half-connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HalfDigest {
    /// Sender address and port.
    pub src: (IpAddr, u16),
    /// Receiver address and port.
    pub dst: (IpAddr, u16),
    /// Bytes delivered.
    pub bytes: u64,
    /// Bytes skipped as missing.
    pub gap_bytes: u64,
    /// SHA-256 of the delivered bytes, lowercase hex.
    pub sha256: String,
}

/// The digest line: SRC_IP SRC_PORT DST_IP DST_PORT BYTES GAPBYTES SHA256.
impl Line for HalfDigest {
    fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {}",
            self.src.0, self.src.1, self.dst.0, self.dst.1, self.bytes, self.gap_bytes, self.sha256
        )
    }
}

/// Copies of the same bytes of one direction that differed
/// ([`weft_reasm::Event::OverlapConflict`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// Sender address and port.
    pub src: (IpAddr, u16),
    /// Receiver address and port.
    pub dst: (IpAddr, u16),
    /// Stream offset of the first byte of the overlap.
    pub offset: u64,
    /// Length of the overlap.
    pub len: u32,
    /// Whether the newer copy was kept.
    pub new_won: bool,
}

/// The conflict line: `conflict SRC_IP SRC_PORT DST_IP DST_PORT OFFSET
/// LEN KEPT`, KEPT being `first` or `new`.
impl Line for Conflict {
    fn line(&self) -> String {
        let kept = if self.new_won { "new" } else { "first" };
        format!(
            "conflict {} {} {} {} {} {} {kept}",
            self.src.0, self.src.1, self.dst.0, self.dst.1, self.offset, self.len
        )
    }
}

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

/// What prints as one line of a replay's output.
pub trait Line {
    /// The line, without newline.
    fn line(&self) -> String;
}

/// Sorted lines of `items` (digests or conflicts).
pub fn lines<T: Line>(items: &[T]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(Line::line).collect();
    v.sort_unstable();
    v
}
