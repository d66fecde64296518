//! The one error type of the crate: what went wrong, in which input, where.

use std::fmt;
use std::io;

/// What went wrong while opening or reading a capture.
///
/// A small `Copy` enum without heap data; the input's name and the byte
/// offset live in [`CaptureError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input holds no bytes at all.
    Empty,
    /// The input ends inside a record (or block) header.
    TruncatedRecordHeader {
        /// Bytes the header needs.
        needed: u32,
        /// Bytes that were left in the input.
        available: u32,
    },
    /// The input ends inside a record's (or block's) data.
    TruncatedRecordData {
        /// Bytes the header announced.
        needed: u32,
        /// Bytes that were left in the input.
        available: u64,
    },
    /// The file does not start with a pcap, pcapng or gzip magic number.
    BadMagic(u32),
    /// A pcapng section header's byte-order magic is neither `1a2b3c4d`
    /// nor its byte swap (read big-endian here).
    BadByteOrder(u32),
    /// A pcapng block length is not a multiple of 4, is too short for its
    /// block type (or for the captured length its packet claims: then
    /// `trailer` equals `len`), or its trailing copy differs from the
    /// leading one.
    BadBlockLength {
        /// The leading block length.
        len: u32,
        /// The trailing block length (equal to `len` unless that is the fault).
        trailer: u32,
    },
    /// A record claims more captured bytes than any sane capture holds; the
    /// length is not trusted and nothing is allocated from it.
    OversizedRecord {
        /// The length claimed: a pcap record's or pcapng packet's captured
        /// length, or a pcapng block's total length.
        len: u32,
        /// The largest accepted length for this input.
        limit: u32,
    },
    /// The file's (pcap) or a section's (pcapng) major format version is
    /// not one this reader knows (2 for pcap, 1 for pcapng): what follows
    /// may be laid out otherwise, so it is not read.
    UnsupportedVersion {
        /// The major version.
        major: u16,
        /// The minor version.
        minor: u16,
    },
    /// A pcapng interface description's options run past the end of the
    /// block (its timestamp resolution or offset may be lost with them).
    BadOptions {
        /// The code of the option whose value runs past the block.
        code: u16,
    },
    /// A pcapng packet names an interface that no description block declared.
    UnknownInterface(u32),
    /// A pcapng section declares more interfaces than the limit (a stream
    /// of description blocks would otherwise grow memory without a frame).
    TooManyInterfaces(u32),
    /// Reading the input failed (including a corrupt gzip stream).
    Io(io::ErrorKind),
}

/// An error while opening or reading a capture: the kind, the input's name
/// and the byte offset of the damaged record (or of the read that failed).
///
/// For compressed input the offset counts decompressed bytes. Once a
/// [`Capture`](crate::Capture) reports an error it yields nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The input's name: the path as given, `-` / `<stdin>`, or the caller's name.
    pub name: String,
    /// Byte offset in the (decompressed) input of the record at fault.
    pub offset: u64,
}

impl CaptureError {
    /// Builds an error.
    pub fn new(kind: ErrorKind, name: impl Into<String>, offset: u64) -> CaptureError {
        CaptureError {
            kind,
            name: name.into(),
            offset,
        }
    }

    /// Builds an [`ErrorKind::Io`] error from an I/O failure.
    pub fn io(err: &io::Error, name: impl Into<String>, offset: u64) -> CaptureError {
        CaptureError::new(ErrorKind::Io(err.kind()), name, offset)
    }
}

impl ErrorKind {
    /// The short description, without numbers.
    fn headline(&self) -> &'static str {
        match self {
            ErrorKind::Empty => "empty input, not a capture file",
            ErrorKind::TruncatedRecordHeader { .. } => "truncated record header",
            ErrorKind::TruncatedRecordData { .. } => "truncated packet record",
            ErrorKind::BadMagic(_) => "bad magic number",
            ErrorKind::BadByteOrder(_) => "bad pcapng byte-order magic",
            ErrorKind::BadBlockLength { .. } => "bad block length",
            ErrorKind::OversizedRecord { .. } => "oversized record",
            ErrorKind::UnsupportedVersion { .. } => "unsupported format version",
            ErrorKind::BadOptions { .. } => "options run past the end of the block",
            ErrorKind::UnknownInterface(_) => "packet names an undeclared interface",
            ErrorKind::TooManyInterfaces(_) => "too many interfaces in one section",
            ErrorKind::Io(_) => "read error",
        }
    }

    /// The numbers, written as ` (...)`.
    fn write_detail(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ErrorKind::Empty => Ok(()),
            ErrorKind::TruncatedRecordHeader { needed, available } => {
                write!(f, " (needs {needed} bytes, {available} left)")
            }
            ErrorKind::TruncatedRecordData { needed, available } => {
                write!(f, " (header says {needed} bytes, {available} left)")
            }
            ErrorKind::BadMagic(m) => write!(f, " ({m:#010x}: not pcap, pcapng or gzip)"),
            ErrorKind::BadByteOrder(m) => write!(f, " ({m:#010x})"),
            ErrorKind::BadBlockLength { len, trailer } if len == trailer => write!(f, " ({len})"),
            ErrorKind::BadBlockLength { len, trailer } => {
                write!(f, " ({len}, trailing copy says {trailer})")
            }
            ErrorKind::OversizedRecord { len, limit } => {
                write!(f, " ({len} bytes, limit {limit})")
            }
            ErrorKind::UnsupportedVersion { major, minor } => write!(f, " ({major}.{minor})"),
            ErrorKind::BadOptions { code } => write!(f, " (option {code})"),
            ErrorKind::UnknownInterface(id) => write!(f, " (interface {id})"),
            ErrorKind::TooManyInterfaces(limit) => write!(f, " (limit {limit})"),
            ErrorKind::Io(kind) => write!(f, " ({})", io::Error::from(kind)),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.headline())?;
        self.write_detail(f)
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, head) = (&self.name, self.kind.headline());
        write!(f, "{name}: {head} at byte {}", self.offset)?;
        self.kind.write_detail(f)
    }
}

impl std::error::Error for CaptureError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_and_offset() {
        let e = CaptureError::new(
            ErrorKind::TruncatedRecordData {
                needed: 1514,
                available: 812,
            },
            "capture.pcap",
            3_276_000,
        );
        assert_eq!(
            e.to_string(),
            "capture.pcap: truncated packet record at byte 3276000 \
             (header says 1514 bytes, 812 left)"
        );
        let e = CaptureError::new(ErrorKind::Empty, "x", 0);
        assert_eq!(
            e.to_string(),
            "x: empty input, not a capture file at byte 0"
        );
    }
}
