//! Packet sources for weft: classic pcap and pcapng captures, read from a
//! memory-mapped file, a gzip-compressed file, standard input or any reader;
//! and, on Linux, live capture from a network interface ([`Live`]: an
//! `AF_PACKET` socket's `TPACKET_V3` ring, its blocks lent out in place;
//! several sockets in a fanout group divide a device's flows among
//! readers, as RSS queues do).
//!
//! # What this crate owns
//!
//! Turning capture bytes into [`Frame`]s: the captured bytes of one packet,
//! its wire length, its timestamp in nanoseconds since the Unix epoch, its
//! link type (raw `LINKTYPE_*` value) and interface, and the byte offset of
//! its record in the input. It knows nothing of Ethernet, IP or TCP; other
//! weft crates take it from there.
//!
//! # How
//!
//! * Uncompressed files are memory-mapped and frames borrow the mapping: no
//!   packet byte is copied. The mapping is one of the crate's two homes of
//!   `unsafe` (module `raw`; the live capture's ring is the other); a
//!   mapped file truncated by another process while read raises `SIGBUS`,
//!   so [`Capture::open_buffered`] reads instead of mapping.
//! * Streams (standard input, pipes, gzip, which is told by its magic number
//!   and not by the file name) are read into a reusable buffer; frames
//!   borrow it until the next call, hence the lending
//!   [`Capture::next_frame`] rather than an `Iterator`. To hand frames to
//!   other threads without copying, share the buffer
//!   ([`Capture::current_block`]): the reader then never writes it again,
//!   moves on to another one, and reuses it once every clone is dropped.
//! * A memory-mapped file can have its pages mapped ahead of the reader, and
//!   unmapped again behind it, on a helper thread
//!   ([`Capture::start_readahead`]); that helper can also read the bytes a
//!   few MiB ahead into the cache the cores share
//!   ([`Capture::start_readahead_reading`]). A reader with no core to
//!   spare for a helper can unmap behind itself instead
//!   ([`Capture::start_unmapping_behind`]). The reader can hint
//!   the CPU about the records ahead in two ways ([`Prefetch`]).
//! * Packet filters: classic BPF programs as `tcpdump -ddd` prints them
//!   ([`BpfProgram`], module [`bpf`]), run by the kernel on a live
//!   capture's socket ([`LiveOptions::filter`]) or here on frames read
//!   from files ([`BpfProgram::run`]).
//! * Both parsers are hand-written and share one cursor over the input, so a
//!   mapped file and the same bytes through a pipe yield identical frames
//!   and identical errors.
//!
//! # Contract
//!
//! * Every record before damage is yielded; then exactly one
//!   [`CaptureError`] names the input and the byte offset of the damaged
//!   record, and nothing follows. A file that ends on a record boundary
//!   ends cleanly. Damage to gzip-compressed bytes is found by the
//!   decompressor, which drops what it decoded from the chunk of
//!   compressed input (8 KiB) it met the damage in: the frames decoded
//!   from that chunk are lost with it, and the error names the offset
//!   (in the decompressed input) of the first frame not yielded.
//! * No input makes the reader panic, and no length read from the input is
//!   allocated without a bound: records are capped at
//!   [`MAX_RECORD_LEN`] (256 KiB; a classic pcap's at twice the larger of
//!   its snaplen and 65,535 when that is less), pcapng packet blocks at
//!   320 KiB, other buffered pcapng blocks at 1 MiB; unknown pcapng blocks
//!   are skipped without buffering.
//!
//! # Example
//!
//! ```
//! use weft_capture::{Capture, Format};
//!
//! // A classic little-endian microsecond pcap with one 4-byte Ethernet frame.
//! let mut file = Vec::new();
//! file.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
//! file.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
//! file.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
//! file.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
//! for field in [1_700_000_000u32, 250_000, 4, 60] {
//!     file.extend_from_slice(&field.to_le_bytes());
//! }
//! file.extend_from_slice(b"abcd");
//!
//! let mut cap = Capture::from_bytes(file, "example.pcap")?;
//! assert_eq!(cap.format(), Format::Pcap { nanos: false, big_endian: false });
//! let mut count = 0;
//! while let Some(frame) = cap.next_frame() {
//!     let frame = frame?;
//!     assert_eq!(frame.data, b"abcd");
//!     assert_eq!(frame.wire_len, 60);
//!     assert_eq!(frame.ts_nanos, 1_700_000_000_250_000_000);
//!     assert_eq!(frame.link_type, 1);
//!     assert_eq!(frame.offset, 24);
//!     count += 1;
//! }
//! assert_eq!(count, 1);
//! # Ok::<(), weft_capture::CaptureError>(())
//! ```
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod bpf;
mod capture;
mod endian;
mod error;
mod input;
#[cfg(target_os = "linux")]
mod live;
mod pcap;
mod pcapng;
mod raw;
mod readahead;

pub use bpf::BpfProgram;
pub use capture::Capture;
pub use error::{CaptureError, ErrorKind};
pub use input::SharedBytes;
#[cfg(target_os = "linux")]
pub use live::{Live, LiveBlock, LiveFrame, LiveOptions, LiveStats};
pub use pcap::{PcapHeader, MAX_RECORD_LEN};
pub use pcapng::Interface;

/// One captured packet, borrowed from its [`Capture`].
///
/// `Send` and `Sync` (plain borrowed data); it lives until the next call to
/// [`Capture::next_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The captured bytes (possibly fewer than `wire_len`).
    pub data: &'a [u8],
    /// The packet's length on the wire; at least `data.len()`.
    pub wire_len: u32,
    /// Capture time in nanoseconds since the Unix epoch. A pcapng simple
    /// packet block carries none: its frame has the time of the frame
    /// before it (0 for the first).
    pub ts_nanos: u64,
    /// The raw pcap `LINKTYPE_*` value of the frame's interface.
    pub link_type: u32,
    /// The pcapng interface index within its section (0 for classic pcap).
    pub interface: u32,
    /// Byte offset of the frame's record (pcap) or block (pcapng) in the
    /// (decompressed) input.
    pub offset: u64,
}

/// How a capture held whole (memory-mapped or in memory) asks the CPU to
/// load what comes next ([`Capture::set_prefetch`]). Streams ignore it.
///
/// Where the next record starts is known only once the current header is
/// read, so a reader that looks at headers only waits on memory for each
/// frame, one at a time; records ~1 KB apart are a stride the hardware
/// prefetcher does not follow. A reader of every byte streams through the
/// file and the hardware prefetcher keeps up on its own. Measured on
/// `benches/e2e.rs` (1 % reordering, frames in memory): a dispatcher reading
/// headers did 16 M frames/s with `Next` and 24–30 M with `Stream`; a
/// reader that only sums every byte did ~28 M with `Next` and ~24.5 M with
/// `Stream` (the hints cost more than they save); inline reassembly, which
/// reads headers first and payloads a little later, gained ~3 % with
/// `Stream`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Prefetch {
    /// The next record's first two lines and one line 3 KB on. The default:
    /// for plain sequential readers of every byte.
    #[default]
    Next,
    /// Every cache line up to 4 KB ahead: for readers that look at headers
    /// before payloads (an engine's dispatcher, inline reassembly).
    Stream,
}

/// The container format of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic pcap (libpcap / tcpdump).
    Pcap {
        /// Timestamps carry nanoseconds rather than microseconds.
        nanos: bool,
        /// The file is big-endian.
        big_endian: bool,
    },
    /// pcapng (sections may differ in byte order).
    PcapNg,
}
