//! Where the bytes come from: a whole buffer (a memory map or caller-owned
//! bytes) or a stream read into one reusable buffer.
//!
//! Both present the same cursor API to the parsers: `fill(n)` makes up to `n`
//! bytes visible, `peek` shows them, `take(n)` consumes them and returns a
//! [`Span`] that stays valid until the next `fill` or `skip`.

use std::io::{self, Read};
use std::sync::Arc;

use weft_arena::{prefetch, BlockPool};

use crate::pcap::{self, PcapHeader};
use crate::raw::Mapping;
use crate::Prefetch;

/// Initial size of a stream's buffer; it grows only to hold one record.
const STREAM_BUF: usize = 256 * 1024;

/// Buffers a stream keeps for reuse once its readers let go.
const SPARE_BUFFERS: usize = 64;

/// Consumed bytes, in the coordinates of the input's current buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: usize,
    len: usize,
}

impl Span {
    /// `len` bytes at input position `start` (of a whole input).
    #[inline]
    pub(crate) fn new(start: usize, len: usize) -> Span {
        Span { start, len }
    }

    /// Where the span ends, in input coordinates.
    #[inline]
    pub(crate) fn end(self) -> usize {
        self.start + self.len
    }

    /// The part of this span `at..at + len`; the caller keeps it inside.
    pub(crate) fn sub(self, at: usize, len: usize) -> Span {
        debug_assert!(at + len <= self.len);
        Span {
            start: self.start + at,
            len,
        }
    }
}

/// Bytes held whole in memory.
#[derive(Debug)]
pub(crate) enum Whole {
    /// A memory-mapped file: frames borrow the page cache directly.
    Mapped(Arc<Mapping>),
    /// Bytes handed in by the caller.
    Shared(Arc<[u8]>),
    /// A stream's buffer, shared (only inside [`SharedBytes`]).
    Block(Arc<Vec<u8>>),
}

impl Whole {
    /// A shared handle on the same bytes.
    pub(crate) fn shared(&self) -> SharedBytes {
        match self {
            Whole::Mapped(m) => SharedBytes(Whole::Mapped(m.clone())),
            Whole::Shared(b) => SharedBytes(Whole::Shared(b.clone())),
            Whole::Block(b) => SharedBytes(Whole::Block(b.clone())),
        }
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        match self {
            Whole::Mapped(m) => m.bytes(),
            Whole::Shared(b) => b,
            Whole::Block(b) => b,
        }
    }
}

/// The whole input of a capture held in memory (a memory map or bytes
/// handed in), or one buffer of a streamed capture, shared: cloning is a reference-count increment, and the bytes
/// stay valid as long as any clone lives, whatever happens to the
/// [`Capture`](crate::Capture). This is what lets other threads read frames
/// without copying them. `Send + Sync`.
#[derive(Debug)]
pub struct SharedBytes(pub(crate) Whole);

impl Clone for SharedBytes {
    fn clone(&self) -> Self {
        self.0.shared()
    }
}

impl std::ops::Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.bytes()
    }
}

impl SharedBytes {
    /// Where `part` (a slice of these bytes, such as a [`Frame`](crate::Frame)'s
    /// data) starts within them; `None` if it is not inside.
    pub fn offset_of(&self, part: &[u8]) -> Option<usize> {
        let base = self.0.bytes().as_ptr() as usize;
        let at = (part.as_ptr() as usize).checked_sub(base)?;
        (at + part.len() <= self.0.bytes().len()).then_some(at)
    }
}

/// [`Input::prefetch_next`] for whole input `bytes` whose cursor is at
/// `pos`, hinted up to `fetched` so far; `stream`: [`Prefetch::Stream`].
#[inline]
fn hint_next(bytes: &[u8], pos: usize, fetched: &mut usize, stream: bool) {
    if !stream {
        // The next record's header, and a line two full-size frames on
        // (a header two or three frames ahead); 3 KB measured best.
        prefetch(bytes.get(pos..).unwrap_or(&[]), 1);
        prefetch(bytes.get(pos + 64..).unwrap_or(&[]), 1);
        prefetch(bytes.get(pos + 3072..).unwrap_or(&[]), 1);
        return;
    }
    // Every line from where the last call stopped up to WINDOW bytes
    // ahead: a dense, in-order stream of hints, so the record headers a
    // few frames on are in cache when parsed.
    let end = (pos + WINDOW).min(bytes.len());
    let at = (*fetched).max(pos);
    if at < end {
        prefetch(&bytes[at..end], WINDOW);
        *fetched = end;
    }
}

/// A reader plus the buffer frames borrow from.
///
/// The buffer can be shared ([`Input::shared`]) so that other threads read
/// frames in place; it is written only while unshared. When it must be
/// written while shared, the reader moves the unconsumed bytes to another
/// buffer (one a [`BlockPool`] gives back once every reader let go, or a new
/// one) and continues there.
pub(crate) struct Stream {
    reader: Box<dyn Read + Send>,
    // Invariant: start <= end <= buf.len(); buf[start..end] is unconsumed input.
    buf: Arc<Vec<u8>>,
    pool: BlockPool<Vec<u8>>,
    start: usize,
    end: usize,
    eof: bool,
}

/// How far ahead of the cursor [`Prefetch::Stream`] hints.
const WINDOW: usize = 4096;

/// A cursor over the input.
pub(crate) enum Input {
    /// All bytes at hand; `pos` is the cursor.
    Whole {
        data: Whole,
        pos: usize,
        /// Bytes up to here were prefetched.
        fetched: usize,
        /// Prefetch every line ahead ([`Prefetch::Stream`]).
        stream: bool,
    },
    /// Bytes read on demand.
    Stream {
        stream: Stream,
        /// Input offset of `stream.buf[stream.start]`.
        consumed: u64,
    },
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Whole { data, pos, .. } => f
                .debug_struct("Whole")
                .field("len", &data.bytes().len())
                .field("pos", pos)
                .finish(),
            Input::Stream { stream, consumed } => f
                .debug_struct("Stream")
                .field("buffered", &(stream.end - stream.start))
                .field("consumed", consumed)
                .finish(),
        }
    }
}

impl Input {
    /// A cursor at the start of `data`.
    pub(crate) fn whole(data: Whole) -> Input {
        Input::Whole {
            data,
            pos: 0,
            fetched: 0,
            stream: false,
        }
    }

    /// A cursor at the start of `reader`, with `prefix` already read from it.
    pub(crate) fn stream(reader: Box<dyn Read + Send>, prefix: &[u8]) -> Input {
        let mut buf = vec![0; STREAM_BUF.max(prefix.len())];
        buf[..prefix.len()].copy_from_slice(prefix);
        let stream = Stream {
            reader,
            buf: Arc::new(buf),
            pool: BlockPool::new(SPARE_BUFFERS),
            start: 0,
            end: prefix.len(),
            eof: false,
        };
        Input::Stream {
            stream,
            consumed: 0,
        }
    }

    /// Turns a stream back into its reader plus the bytes buffered but not
    /// consumed (to wrap it in a decompressor). `None` for whole inputs.
    pub(crate) fn into_reader(self) -> Option<(Box<dyn Read + Send>, Vec<u8>)> {
        match self {
            Input::Whole { .. } => None,
            Input::Stream { stream: s, .. } => Some((s.reader, s.buf[s.start..s.end].to_vec())),
        }
    }

    /// The whole input, shared, when it is held in memory.
    pub(crate) fn shared(&self) -> Option<SharedBytes> {
        match self {
            Input::Whole { data, .. } => Some(data.shared()),
            Input::Stream { .. } => None,
        }
    }

    /// The buffer the latest bytes were taken from, shared: the whole input,
    /// or a stream's current buffer (which the stream then stops writing).
    pub(crate) fn current_block(&self) -> SharedBytes {
        match self {
            Input::Whole { data, .. } => data.shared(),
            Input::Stream { stream, .. } => SharedBytes(Whole::Block(stream.buf.clone())),
        }
    }

    /// How many times a stream went on in a buffer its readers had let go
    /// (instead of a new one).
    pub(crate) fn buffers_reused(&self) -> u64 {
        match self {
            Input::Whole { .. } => 0,
            Input::Stream { stream, .. } => stream.pool.reused(),
        }
    }

    /// Input offset of the cursor.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        match self {
            Input::Whole { pos, .. } => *pos as u64,
            Input::Stream { consumed, .. } => *consumed,
        }
    }

    /// The reader's fast path: the classic pcap record at the cursor of a
    /// whole input, if it lies wholly inside: its header, its input offset
    /// and where its data is; the cursor moves past it and the next bytes
    /// are hinted ([`prefetch_next`](Self::prefetch_next)). `None` (nothing
    /// moved) for streams, the end of input and every fault: the general
    /// path reads the same record again. One look at the bytes serves both
    /// (each look is a match on where they live).
    #[inline]
    pub(crate) fn next_pcap_whole(
        &mut self,
        h: &PcapHeader,
    ) -> Option<(pcap::Record, usize, Span)> {
        let Input::Whole {
            data,
            pos,
            fetched,
            stream,
        } = self
        else {
            return None;
        };
        let bytes = data.bytes();
        let offset = *pos;
        let rest = bytes.get(offset..)?;
        let rec = h.parse_record(rest.first_chunk()?).ok()?;
        let start = offset + h.record_len();
        let len = rec.caplen as usize;
        if rest.len() < h.record_len() + len {
            return None;
        }
        *pos = start + len;
        hint_next(bytes, *pos, fetched, *stream);
        Some((rec, offset, Span::new(start, len)))
    }

    /// Makes at least `n` bytes visible if the input has them; returns how many
    /// are visible (fewer than `n` only at the end of input). `n` must be
    /// bounded by the caller: a stream's buffer grows to hold it.
    #[inline]
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<usize> {
        match self {
            Input::Whole { data, pos, .. } => Ok(data.bytes().len() - *pos),
            Input::Stream { stream, .. } => stream.fill(n),
        }
    }

    /// The visible, unconsumed bytes.
    #[inline]
    pub(crate) fn peek(&self) -> &[u8] {
        match self {
            Input::Whole { data, pos, .. } => &data.bytes()[*pos..],
            Input::Stream { stream: s, .. } => &s.buf[s.start..s.end],
        }
    }

    /// Consumes `n` visible bytes.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Span {
        debug_assert!(n <= self.peek().len());
        let cursor = match self {
            Input::Whole { pos, .. } => pos,
            Input::Stream { stream, consumed } => {
                *consumed += n as u64;
                &mut stream.start
            }
        };
        let start = *cursor;
        *cursor += n;
        Span { start, len: n }
    }

    /// Chooses how [`prefetch_next`](Self::prefetch_next) hints (whole
    /// inputs only).
    pub(crate) fn set_prefetch(&mut self, p: Prefetch) {
        if let Input::Whole { stream, .. } = self {
            *stream = p == Prefetch::Stream;
        }
    }

    /// Asks the CPU to start loading what the reader needs next: see
    /// [`Prefetch`] for the two ways and what they measured. Hand-written
    /// because no crate offers a prefetch hint.
    #[inline]
    pub(crate) fn prefetch_next(&mut self) {
        if let Input::Whole {
            data,
            pos,
            fetched,
            stream,
        } = self
        {
            hint_next(data.bytes(), *pos, fetched, *stream);
        }
    }

    /// The bytes of a span taken since the last `fill` or `skip`.
    #[inline]
    pub(crate) fn get(&self, span: Span) -> &[u8] {
        let all = match self {
            Input::Whole { data, .. } => data.bytes(),
            Input::Stream { stream, .. } => &stream.buf,
        };
        &all[span.start..span.start + span.len]
    }

    /// Consumes `n` bytes without keeping them; returns how many there were
    /// (fewer than `n` only at the end of input).
    pub(crate) fn skip(&mut self, n: u64) -> io::Result<u64> {
        match self {
            Input::Whole { data, pos, .. } => {
                let left = (data.bytes().len() - *pos) as u64;
                let k = n.min(left);
                *pos += k as usize; // k <= left, which is a usize
                Ok(k)
            }
            Input::Stream { stream, consumed } => {
                let k = stream.skip(n)?;
                *consumed += k;
                Ok(k)
            }
        }
    }
}

impl Stream {
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        while self.end - self.start < n && !self.eof {
            if self.buf.len() - self.start < n {
                self.make_room(n);
            }
            // Non-empty: end - start < n <= buf.len() - start.
            self.unshare();
            let buf = Arc::make_mut(&mut self.buf); // unshared: copies nothing
            let got = read_some(&mut self.reader, &mut buf[self.end..])?;
            if got == 0 {
                self.eof = true;
            }
            self.end += got;
        }
        Ok(self.end - self.start)
    }

    /// Makes the buffer writable: if readers hold it, the unconsumed bytes
    /// move to a buffer nobody reads (see [`Stream`]).
    fn unshare(&mut self) {
        if Arc::get_mut(&mut self.buf).is_none() {
            let mut next = self.pool.take().unwrap_or_default();
            if next.len() < self.buf.len() {
                next.resize(self.buf.len(), 0);
            }
            let live = self.end - self.start;
            next[..live].copy_from_slice(&self.buf[self.start..self.end]);
            (self.start, self.end) = (0, live);
            let shared = std::mem::replace(&mut self.buf, Arc::new(next));
            self.pool.recycle(shared);
        }
    }

    /// Moves the unconsumed bytes to the front and grows the buffer to `n`.
    fn make_room(&mut self, n: usize) {
        self.unshare();
        let (start, end) = (self.start, self.end);
        let buf = Arc::make_mut(&mut self.buf); // unshared: copies nothing
        buf.copy_within(start..end, 0);
        if buf.len() < n {
            buf.resize(n, 0);
        }
        (self.start, self.end) = (0, end - start);
    }

    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let buffered = (self.end - self.start) as u64;
        if n <= buffered {
            self.start += n as usize; // n <= buffered, a usize
            return Ok(n);
        }
        let mut done = buffered;
        (self.start, self.end) = (0, 0);
        while done < n && !self.eof {
            self.unshare();
            let buf = Arc::make_mut(&mut self.buf); // unshared: copies nothing
            let want = usize::try_from(n - done).map_or(buf.len(), |w| w.min(buf.len()));
            let got = read_some(&mut self.reader, &mut buf[..want])?;
            self.eof = got == 0;
            done += got as u64;
        }
        Ok(done)
    }
}

/// One `read`, retried on `Interrupted`.
fn read_some(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns at most 3 bytes per read.
    struct Trickle(io::Cursor<Vec<u8>>);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn stream_fill_take_skip() {
        let data: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let mut input = Input::stream(
            Box::new(Trickle(io::Cursor::new(data[2..].to_vec()))),
            &data[..2],
        );
        assert!(input.fill(10).unwrap() >= 10);
        let a = input.take(4);
        assert_eq!(input.get(a), &data[..4]);
        assert_eq!(input.skip(500).unwrap(), 500);
        assert_eq!(input.offset(), 504);
        assert!(input.fill(8).unwrap() >= 8);
        let b = input.take(8);
        assert_eq!(input.get(b), &data[504..512]);
        assert_eq!(input.skip(10_000).unwrap(), 488);
        assert_eq!(input.fill(1).unwrap(), 0);
    }

    #[test]
    fn whole_fill_take_skip() {
        let data: Arc<[u8]> = (0..100u8).collect::<Vec<_>>().into();
        let mut input = Input::whole(Whole::Shared(data));
        assert_eq!(input.fill(4).unwrap(), 100);
        let s = input.take(4).sub(1, 2);
        assert_eq!(input.get(s), &[1, 2]);
        assert_eq!(input.skip(200).unwrap(), 96);
        assert_eq!(input.offset(), 100);
    }
}
