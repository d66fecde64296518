//! Fixed-width integer reads in a file's byte order.
//!
//! Callers check lengths first; these helpers take exact-size arrays so a
//! wrong offset is a compile-time or slice-bounds fault, never a silent one.

/// Byte order of a pcap file or a pcapng section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endian {
    Little,
    Big,
}

impl Endian {
    /// Reads a `u16` at `at`. `b` must hold `at + 2` bytes.
    #[inline]
    pub(crate) fn u16(self, b: &[u8], at: usize) -> u16 {
        let a = [b[at], b[at + 1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }

    /// Reads a `u32` at `at`. `b` must hold `at + 4` bytes.
    #[inline]
    pub(crate) fn u32(self, b: &[u8], at: usize) -> u32 {
        let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }

    /// Reads a `u64` at `at`. `b` must hold `at + 8` bytes.
    #[inline]
    pub(crate) fn u64(self, b: &[u8], at: usize) -> u64 {
        let (hi, lo) = match self {
            Endian::Little => (self.u32(b, at + 4), self.u32(b, at)),
            Endian::Big => (self.u32(b, at), self.u32(b, at + 4)),
        };
        (u64::from(hi) << 32) | u64::from(lo)
    }
}
