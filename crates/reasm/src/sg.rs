//! The view of newly reassembled bytes handed to a stream.

use std::borrow::Cow;
use std::fmt;

use weft_wire::{Dir, Timestamp};

use crate::stream::Direction;

/// Access to buffered pieces by index, without naming the page type.
pub(crate) trait PieceBytes {
    /// The bytes of piece `idx`.
    fn piece_bytes(&self, idx: usize) -> &[u8];
}

/// Where a span's bytes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Src {
    /// The bytes a handler kept from an earlier delivery.
    Kept,
    /// The frame being processed (zero copy).
    Frame,
    /// A buffered piece, by index in the half-connection's queue.
    Piece(u32),
}

/// One contiguous run of delivered bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub src: Src,
    pub off: u32,
    pub len: u32,
    pub ts: Timestamp,
}

/// Takes the byte at position `at` of a delivery out of its spans (the
/// span holding it split in two around it) and returns it. `at` must lie
/// within the spans, past the kept bytes.
pub(crate) fn take_byte(
    spans: &mut Vec<Span>,
    at: usize,
    frame: &[u8],
    pieces: &dyn PieceBytes,
) -> u8 {
    let mut start = 0usize;
    let j = spans
        .iter()
        .position(|s| {
            start += s.len as usize;
            at < start
        })
        .expect("the byte lies within the delivery");
    let s = spans[j];
    let k = (at - (start - s.len as usize)) as u32;
    let byte = match s.src {
        Src::Frame => frame[(s.off + k) as usize],
        Src::Piece(i) => pieces.piece_bytes(i as usize)[(s.off + k) as usize],
        Src::Kept => unreachable!("kept bytes were delivered before"),
    };
    let right = Span {
        off: s.off + k + 1,
        len: s.len - k - 1,
        ..s
    };
    spans[j].len = k;
    if right.len > 0 {
        spans.insert(j + 1, right);
    }
    if k == 0 {
        spans.remove(j);
    }
    byte
}

/// About a delivery: direction, hole before it, start and end of stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// Client/server direction.
    pub dir: Direction,
    /// Wire direction within the flow key.
    pub wire_dir: Dir,
    /// First delivery of this direction.
    pub start: bool,
    /// The direction ended (FIN reached, RST, or connection closing).
    /// Every direction that had a delivery gets exactly one delivery with
    /// `end` set (empty if nothing else is left to say); a direction that
    /// never carried data gets none.
    pub end: bool,
    /// Bytes missing right before the new bytes (a hole that was skipped).
    pub skip: u64,
    /// Of `skip`, the bytes past the reassembly depth or the handler's
    /// stop ([`ScatterGather::stop`]), passed over as the sender went on:
    /// not missing (counted as stopped where captured, never as gaps).
    /// `skip - passed` bytes were lost by the capture.
    pub passed: u64,
    /// Stream offset of the first new (not kept) byte, from the direction's
    /// first byte (after the SYN, or the first byte seen midstream).
    /// Offsets count sequence space, urgent bytes taken out included.
    pub offset: u64,
    /// Urgent bytes taken out of the new bytes
    /// ([`UrgentPolicy::OutOfBand`](crate::UrgentPolicy::OutOfBand), each
    /// also an [`Event::Urgent`](crate::Event::Urgent) just before this
    /// delivery): the new bytes cover offsets `offset` to `offset + new
    /// bytes + urgent`.
    pub urgent: u32,
}

/// Counts about one delivery (gopacket's `TCPAssemblyStats`). Where an
/// urgent byte was taken out ([`Info::urgent`]), `chunks` and `packets`
/// count the spans handed over, and the byte counts include the byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SgStats {
    /// Spans (contiguous runs) in the delivery, kept bytes included.
    pub chunks: usize,
    /// Spans that came straight from the current frame.
    pub packets: usize,
    /// Spans that had waited in pages.
    pub queued_pieces: usize,
    /// Bytes that had waited in pages.
    pub queued_bytes: usize,
    /// Bytes of the current segment that overlapped buffered data.
    pub overlap_bytes: usize,
}

/// Capture information of a delivered byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureInfo {
    /// Timestamp of the segment that carried the byte.
    pub ts: Timestamp,
}

/// Newly reassembled bytes of one direction, as a list of contiguous chunks:
/// bytes kept from the previous delivery first, then new bytes in stream
/// order. Chunks borrow the current frame (zero copy) or buffered pages.
///
/// Valid only during [`Stream::reassembled`](crate::Stream::reassembled);
/// bytes needed later are kept with [`keep_from`](Self::keep_from) or copied.
pub struct ScatterGather<'a> {
    pub(crate) kept: &'a [u8],
    pub(crate) frame: &'a [u8],
    pub(crate) pieces: &'a dyn PieceBytes,
    pub(crate) spans: &'a [Span],
    pub(crate) len: usize,
    pub(crate) kept_len: usize,
    pub(crate) info: Info,
    pub(crate) stats: SgStats,
    pub(crate) keep: Option<usize>,
    pub(crate) stop: bool,
}

impl fmt::Debug for ScatterGather<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScatterGather")
            .field("len", &self.len)
            .field("kept_len", &self.kept_len)
            .field("info", &self.info)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<'a> ScatterGather<'a> {
    fn span_bytes(&self, s: &Span) -> &'a [u8] {
        let (off, len) = (s.off as usize, s.len as usize);
        match s.src {
            Src::Kept => &self.kept[off..off + len],
            Src::Frame => &self.frame[off..off + len],
            Src::Piece(i) => &self.pieces.piece_bytes(i as usize)[off..off + len],
        }
    }

    /// `(total bytes, of which kept from the previous delivery)`.
    pub fn lengths(&self) -> (usize, usize) {
        (self.len, self.kept_len)
    }

    /// Total bytes, kept ones included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bytes (a delivery can carry only a skip or an end).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks, in stream order.
    pub fn chunks(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.spans.iter().map(|s| self.span_bytes(s))
    }

    /// The first `n` bytes (all of them if `n` is larger): borrowed when they
    /// lie in one chunk, copied otherwise.
    pub fn fetch(&self, n: usize) -> Cow<'a, [u8]> {
        let n = n.min(self.len);
        if let Some(first) = self.spans.first() {
            if first.len as usize >= n {
                return Cow::Borrowed(&self.span_bytes(first)[..n]);
            }
        } else {
            return Cow::Borrowed(&[]);
        }
        let mut out = Vec::with_capacity(n);
        for c in self.chunks() {
            let take = (n - out.len()).min(c.len());
            out.extend_from_slice(&c[..take]);
            if out.len() == n {
                break;
            }
        }
        Cow::Owned(out)
    }

    /// Appends every byte to `out`.
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len);
        for c in self.chunks() {
            out.extend_from_slice(c);
        }
    }

    /// Keep the bytes from `offset` to the end: they are offered again, first,
    /// with the next delivery of this direction. Calling it again replaces
    /// the earlier choice; an offset at or past the end keeps nothing. A
    /// keep of more than [`Config::max_kept_bytes`](crate::Config::max_kept_bytes)
    /// keeps nothing: the next delivery's [`lengths`](Self::lengths) tell
    /// how many bytes were kept. Keeping from within the bytes kept before
    /// (`offset <= lengths().1`) moves the kept bytes after `offset` and
    /// copies the new ones: keeping all (`offset` 0) costs only the new bytes.
    pub fn keep_from(&mut self, offset: usize) {
        self.keep = if offset < self.len {
            Some(offset)
        } else {
            None
        };
    }

    /// This direction's bytes are no longer wanted: from the end of this
    /// delivery on they are dropped as they come (counted as
    /// [`DropReason::Stopped`](crate::DropReason::Stopped)), and those
    /// waiting out of order are dropped now, their pages given back. The
    /// connection is tracked to its end as before: its close still comes
    /// as one more delivery (with [`Info::end`](crate::Info)) and
    /// `complete` is called once; that delivery's skip covers the bytes
    /// past the stop ([`Info::passed`]), which the stats do not count as
    /// gaps. For a
    /// handler that has seen what it needs (a TLS handshake done, a
    /// protocol it does not inspect): the reassembly depth of
    /// [`Config::depth`](crate::Config::depth), chosen per stream. The
    /// other direction goes on.
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Capture information of the byte at `offset`.
    pub fn capture_info(&self, offset: usize) -> Option<CaptureInfo> {
        let mut at = 0usize;
        for s in self.spans {
            if offset < at + s.len as usize {
                return Some(CaptureInfo { ts: s.ts });
            }
            at += s.len as usize;
        }
        None
    }

    /// Direction, skip, start and end of this delivery.
    pub fn info(&self) -> Info {
        self.info
    }

    /// Counts about this delivery.
    pub fn stats(&self) -> SgStats {
        self.stats
    }
}
