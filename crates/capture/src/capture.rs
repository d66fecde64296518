//! [`Capture`]: opening an input, telling its format, yielding frames.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::Path;
use std::sync::Arc;

use flate2::bufread::GzDecoder;

use crate::endian::Endian;
use crate::error::{CaptureError, ErrorKind};
use crate::input::{Input, SharedBytes, Span, Whole};
use crate::pcap::{PcapHeader, FILE_HEADER_LEN};
use crate::pcapng::{self, Interface};
use crate::raw::Mapping;
use crate::readahead;
use crate::{Format, Frame, Prefetch};

/// The gzip magic number.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A packet source: a pcap or pcapng file, a gzip-compressed one, standard
/// input or any reader, yielding [`Frame`]s in file order.
///
/// Uncompressed files opened with [`Capture::open`] are memory-mapped and
/// frames borrow the mapping (no copy). Everything else is read into one
/// reusable buffer that frames borrow until the next call.
///
/// After the first error, [`next_frame`](Capture::next_frame) returns `None`.
///
/// `Capture` is `Send` (it owns its file, map or `Read + Send` reader and can
/// move to a reader thread) but not `Sync`: reading needs `&mut self`, and a
/// boxed reader need not be `Sync`.
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<weft_capture::Capture>();
/// ```
#[derive(Debug)]
pub struct Capture {
    name: String,
    input: Input,
    total_len: Option<u64>,
    compressed: bool,
    format: Format,
    state: State,
    /// Timestamp of the last frame, for pcapng simple packet blocks.
    last_ts: u64,
    done: bool,
    paging: Option<readahead::Paging>,
}

/// Per-format reading state.
#[derive(Debug)]
enum State {
    Pcap(PcapHeader),
    /// Current section's byte order and interfaces.
    PcapNg {
        endian: Endian,
        interfaces: Vec<Interface>,
    },
}

/// An error and the input offset it belongs to.
type Fault = (ErrorKind, u64);

/// A frame's metadata, with its data as a span of the input.
#[derive(Debug, Clone, Copy)]
struct Record {
    span: Span,
    wire_len: u32,
    ts_nanos: u64,
    link_type: u32,
    interface: u32,
    offset: u64,
}

impl Record {
    /// A classic pcap record (one interface) whose data is `span`, its
    /// header at input offset `offset`.
    #[inline]
    fn pcap(h: &PcapHeader, rec: &crate::pcap::Record, span: Span, offset: u64) -> Record {
        Record {
            span,
            wire_len: rec.wire_len,
            ts_nanos: rec.ts_nanos,
            link_type: h.link_type,
            interface: 0,
            offset,
        }
    }
}

impl Capture {
    /// Opens a capture file through a memory map, or standard input if
    /// `path` is `-`. A gzip file (told by its magic number, not its name)
    /// is decompressed as a stream instead of mapped.
    ///
    /// A mapped file must stay as it is while any frame or block of it is
    /// alive: truncated by anyone, it raises `SIGBUS` (see
    /// [`Capture::open_buffered`]); written, by another process or by this
    /// one (never by this crate), it changes bytes the reader and the
    /// compiler take to be immutable, which Rust does not allow. This
    /// condition is the caller's to keep, as with every memory-mapped
    /// reader: use [`open_buffered`](Capture::open_buffered) for files that
    /// may change. A file that cannot be mapped (on a file system without
    /// memory maps, or too large for the address space left) is read as
    /// `open_buffered` reads it.
    pub fn open(path: impl AsRef<Path>) -> Result<Capture, CaptureError> {
        let path = path.as_ref();
        if path.as_os_str() == "-" {
            return Capture::from_reader(Box::new(io::stdin()), "<stdin>");
        }
        let name = path.display().to_string();
        let (file, len) = open_file(path, &name)?;
        let Some(len) = len else {
            // A named pipe, a device: nothing to map, a stream to read.
            return Capture::from_reader(Box::new(file), name);
        };
        let Ok(map) = Mapping::new(&file, len) else {
            // A file system without memory maps (ENODEV), an address space
            // too small for the file (ENOMEM): the same bytes, read.
            return Capture::buffered(file, name, len);
        };
        if map.bytes().starts_with(&GZIP_MAGIC) {
            drop(map);
            return Capture::from_reader(Box::new(io::BufReader::new(file)), name);
        }
        map.advise_sequential();
        Capture::start(Input::whole(Whole::Mapped(Arc::new(map))), name, Some(len))
    }

    /// Opens a capture file with ordinary reads into a reusable buffer
    /// instead of a memory map.
    ///
    /// Use this for files another process may still write, rotate or truncate:
    /// a mapped file that shrinks under the reader raises `SIGBUS`, which kills
    /// the process, whereas a shrinking file read this way ends in a
    /// truncation error. It costs one copy of each packet. `-` reads
    /// standard input, as with [`open`](Capture::open).
    pub fn open_buffered(path: impl AsRef<Path>) -> Result<Capture, CaptureError> {
        let path = path.as_ref();
        if path.as_os_str() == "-" {
            return Capture::from_reader(Box::new(io::stdin()), "<stdin>");
        }
        let name = path.display().to_string();
        let (file, len) = open_file(path, &name)?;
        match len {
            Some(len) => Capture::buffered(file, name, len),
            None => Capture::from_reader(Box::new(file), name),
        }
    }

    /// A regular file of `len` bytes, read into a reusable buffer.
    fn buffered(file: File, name: String, len: u64) -> Result<Capture, CaptureError> {
        let mut cap = Capture::from_reader(Box::new(file), name)?;
        if !cap.compressed {
            cap.total_len = Some(len);
        }
        Ok(cap)
    }

    /// Reads a capture from a stream (a pipe, a socket, a decompressor),
    /// handling short reads. Gzip input is detected and decompressed.
    pub fn from_reader(
        reader: Box<dyn Read + Send>,
        name: impl Into<String>,
    ) -> Result<Capture, CaptureError> {
        Capture::start(Input::stream(reader, &[]), name.into(), None)
    }

    /// Reads a capture held in memory (mostly for tests). Gzip input is
    /// detected and decompressed. A `Vec` is moved into a new `Arc` (one copy).
    pub fn from_bytes(
        bytes: impl Into<Arc<[u8]>>,
        name: impl Into<String>,
    ) -> Result<Capture, CaptureError> {
        let bytes = bytes.into();
        let len = bytes.len() as u64;
        if bytes.starts_with(&GZIP_MAGIC) {
            return Capture::from_reader(Box::new(io::Cursor::new(bytes)), name);
        }
        Capture::start(Input::whole(Whole::Shared(bytes)), name.into(), Some(len))
    }

    /// Tells the format from the magic number (unwrapping gzip) and reads
    /// the file header.
    fn start(mut input: Input, name: String, total: Option<u64>) -> Result<Capture, CaptureError> {
        let io_err = |e: io::Error| CaptureError::io(&e, &name, 0);
        let mut compressed = false;
        if input.fill(4).map_err(io_err)? >= 2 && input.peek().starts_with(&GZIP_MAGIC) {
            input = gunzip(input);
            input.fill(4).map_err(io_err)?;
            compressed = true;
        }
        let head = input.peek();
        if head.is_empty() {
            return Err(CaptureError::new(ErrorKind::Empty, name, 0));
        }
        let first4 = [0, 1, 2, 3].map(|i| head.get(i).copied().unwrap_or(0));
        let (format, state) = if u32::from_le_bytes(first4) == pcapng::SHB {
            read_section_magic(&mut input).map_err(|k| CaptureError::new(k, &name, 0))?
        } else {
            read_pcap_header(&mut input).map_err(|k| CaptureError::new(k, &name, 0))?
        };
        Ok(Capture {
            name,
            input,
            total_len: if compressed { None } else { total },
            compressed,
            format,
            state,
            last_ts: 0,
            done: false,
            paging: None,
        })
    }

    /// The whole input as shared bytes, for memory-mapped files and
    /// [`Capture::from_bytes`]; `None` for streams. Every frame's data then
    /// lies inside it ([`SharedBytes::offset_of`]), so a reader thread can
    /// hand frames to other threads as offsets, without copying.
    pub fn shared_bytes(&self) -> Option<SharedBytes> {
        self.input.shared()
    }

    /// Another reader of the same capture from its first frame, for a
    /// capture held whole in memory (a memory-mapped file, bytes handed
    /// in): it shares the mapping, so pages one reader brought in are
    /// there for the other, and it reads on its own cursor. Readers on
    /// several threads walk one file this way (an engine's fanout workers).
    /// `None` for streams, which only one reader can consume.
    ///
    /// A read-ahead helper ([`start_readahead`](Self::start_readahead)) is
    /// not shared: one reader's helper maps and unmaps the shared mapping
    /// around that reader. A reader far from it takes the page faults
    /// itself (its bytes stay correct: pages are unmapped, never changed),
    /// and what it maps behind the helper's unmapping stays mapped until
    /// the mapping is dropped: keep the readers close together (the replay
    /// tool keeps them within 4 MiB).
    pub fn reopen(&self) -> Option<Result<Capture, CaptureError>> {
        let SharedBytes(whole) = self.input.shared()?;
        Some(Capture::start(
            Input::whole(whole),
            self.name.clone(),
            self.total_len,
        ))
    }

    /// The buffer the latest frame lies in, shared, so that other threads can
    /// read frames in place ([`SharedBytes::offset_of`] locates a frame in
    /// it).
    ///
    /// For a file or bytes in memory this is the whole input (as
    /// [`shared_bytes`](Capture::shared_bytes)). For a stream it is the
    /// buffer the reader fills: while any clone of it lives, the reader does
    /// not write it again but moves on to another buffer, one whose clones
    /// are all gone if it has one ([`weft_arena::BlockPool`]), a new one
    /// otherwise. So a frame read later may lie in a newer buffer: when
    /// `offset_of` says it is not inside, fetch the block again.
    pub fn current_block(&self) -> SharedBytes {
        self.input.current_block()
    }

    /// How many times a stream went on in a buffer whose readers had all let
    /// go, instead of a new one (0 for whole inputs).
    pub fn buffers_reused(&self) -> u64 {
        self.input.buffers_reused()
    }

    /// The next frame, `None` at the end of input or after an error.
    ///
    /// The frame borrows the capture: from the memory map for mapped files,
    /// from the read buffer otherwise, until the next call.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, CaptureError>> {
        if self.done {
            return None;
        }
        // The common case, kept short: a classic pcap record lying wholly
        // inside an in-memory input. Reading a frame took 403 instructions
        // through the general path's buffering and error plumbing (a fifth
        // of an inline replay's), 244 with a fast path of its own, and
        // fewer since that path also hints the next bytes.
        if let State::Pcap(h) = &self.state {
            if let Some((rec, offset, span)) = self.input.next_pcap_whole(h) {
                let link_type = h.link_type;
                self.last_ts = rec.ts_nanos;
                if let Some(p) = &mut self.paging {
                    p.advance(span.end());
                }
                return Some(Ok(Frame {
                    data: self.input.get(span),
                    wire_len: rec.wire_len,
                    ts_nanos: rec.ts_nanos,
                    link_type,
                    interface: 0,
                    offset: offset as u64,
                }));
            }
        }
        let rec = match self.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err((kind, offset)) => {
                self.done = true;
                return Some(Err(CaptureError::new(kind, self.name.clone(), offset)));
            }
        };
        self.last_ts = rec.ts_nanos;
        self.input.prefetch_next();
        if let Some(p) = &mut self.paging {
            p.advance(self.input.offset() as usize);
        }
        Some(Ok(Frame {
            data: self.input.get(rec.span),
            wire_len: rec.wire_len,
            ts_nanos: rec.ts_nanos,
            link_type: rec.link_type,
            interface: rec.interface,
            offset: rec.offset,
        }))
    }

    /// Chooses how the reader prefetches (see [`Prefetch`]); the default
    /// is [`Prefetch::Next`].
    pub fn set_prefetch(&mut self, p: Prefetch) {
        self.input.set_prefetch(p);
    }

    /// For a memory-mapped file: starts a helper thread that maps the file's
    /// pages ahead of the reader (32 MiB), so the page faults of a first
    /// read happen there instead of on the reading thread, and unmaps them
    /// again 64 MiB behind it (the page cache keeps them; a frame read late
    /// is mapped again transparently), so the resident set stays small and
    /// no long `munmap` waits at the end. Returns whether
    /// it runs (not for streams, in-memory bytes or systems other than
    /// Linux; a kernel without `MADV_POPULATE_READ` ends the helper at its
    /// first attempt). The thread stops when the capture is dropped.
    ///
    /// Worth it when the reader's thread is the bottleneck (an engine's
    /// dispatcher) and another core has room: measured on a 1.1 GB capture
    /// in README.
    pub fn start_readahead(&mut self) -> bool {
        self.start_helper(false)
    }

    /// As [`start_readahead`](Self::start_readahead), and the helper also
    /// reads the bytes 3 MiB ahead of the reader, so they wait in the cache
    /// the cores share rather than in DRAM. For a reader whose thread does
    /// all the work (inline reassembly) while the helper has a core to
    /// itself: there it took 0.93× the time on a 1.1 GB capture. Where all
    /// cores are busy (an engine with a worker per core) the helper's reads
    /// slow the others more than they save (1.03–1.06× there). Where the
    /// helper's core does not share a cache with the reader's, they slow
    /// the reader down (1.2–1.3×), so the helper times the reader with and
    /// without them now and then and reads ahead only while that is faster
    /// ([`weft_arena::Judge`], [`readahead_trials`](Self::readahead_trials)).
    ///
    /// A helper already running (started by either call) is kept as it is.
    pub fn start_readahead_reading(&mut self) -> bool {
        self.start_helper(true)
    }

    /// The read-ahead helper's trials of reading ahead so far, and how
    /// many reading ahead won (see
    /// [`start_readahead_reading`](Self::start_readahead_reading)); `(0,
    /// 0)` without a helper that reads.
    pub fn readahead_trials(&self) -> (u32, u32) {
        match &self.paging {
            Some(readahead::Paging::Helper(r)) => r.warm_trials(),
            _ => (0, 0),
        }
    }

    /// For a memory-mapped file: the reading thread itself unmaps the pages
    /// it passed, 64 MiB behind it, 16 MiB at a time, as the read-ahead
    /// helper would; nothing is mapped ahead, so pages fault in on the
    /// reader. For readers that leave no core for a helper: two fanout
    /// workers on two cores took 0.97x the time this way (2 MiB page-cache
    /// folios) and 0.86x (4 KiB pages) against a helper started by the
    /// first, whose mapping and wake-ups took time from both (README,
    /// "Against the peers"). Returns whether it unmaps (not for streams,
    /// in-memory bytes or systems other than Linux).
    ///
    /// A helper already started is kept, and neither start call replaces
    /// this.
    pub fn start_unmapping_behind(&mut self) -> bool {
        if self.paging.is_none() {
            if let Some(m) = self.mapping() {
                self.paging = readahead::behind(m, self.input.offset() as usize);
            }
        }
        self.paging.is_some()
    }

    /// Whether a helper thread maps this capture ahead of the reader.
    fn has_readahead_helper(&self) -> bool {
        matches!(self.paging, Some(readahead::Paging::Helper(_)))
    }

    fn start_helper(&mut self, read: bool) -> bool {
        if self.paging.is_none() {
            if let Some(m) = self.mapping() {
                self.paging = readahead::start(m, self.input.offset() as usize, read)
                    .map(readahead::Paging::Helper);
            }
        }
        self.has_readahead_helper()
    }

    /// The memory map of a mapped file.
    fn mapping(&self) -> Option<std::sync::Arc<crate::raw::Mapping>> {
        match &self.input {
            Input::Whole {
                data: Whole::Mapped(m),
                ..
            } => Some(m.clone()),
            _ => None,
        }
    }

    /// The input's name, as given when opened (`<stdin>` for standard input).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Bytes of the (decompressed) input consumed so far: the offset just
    /// past the last frame or skipped block.
    pub fn bytes_read(&self) -> u64 {
        self.input.offset()
    }

    /// The input's size in bytes when known in advance (uncompressed files,
    /// mapped or [read in a buffer](Capture::open_buffered), and in-memory
    /// bytes), for progress and ETA next to
    /// [`bytes_read`](Capture::bytes_read). `None` for other streams and
    /// gzip input.
    pub fn total_len(&self) -> Option<u64> {
        self.total_len
    }

    /// Whether the input was gzip-compressed.
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// Whether frames borrow a memory map of the file (no copy).
    pub fn is_mapped(&self) -> bool {
        matches!(
            self.input,
            Input::Whole {
                data: Whole::Mapped(_),
                ..
            }
        )
    }

    /// The classic pcap file header; `None` for pcapng.
    pub fn pcap_header(&self) -> Option<PcapHeader> {
        match &self.state {
            State::Pcap(h) => Some(*h),
            State::PcapNg { .. } => None,
        }
    }

    /// The interfaces declared so far in the current pcapng section (empty
    /// for classic pcap). Grows as blocks are read.
    pub fn interfaces(&self) -> &[Interface] {
        match &self.state {
            State::Pcap(_) => &[],
            State::PcapNg { interfaces, .. } => interfaces,
        }
    }

    /// Reads up to the next frame.
    #[inline]
    fn next_record(&mut self) -> Result<Option<Record>, Fault> {
        match self.state {
            State::Pcap(h) => self.next_pcap(h),
            State::PcapNg { .. } => self.next_pcapng(),
        }
    }

    fn next_pcap(&mut self, h: PcapHeader) -> Result<Option<Record>, Fault> {
        let offset = self.input.offset();
        let fail = |k| (k, offset);
        let io = |e: io::Error| (ErrorKind::Io(e.kind()), offset);
        let head_len = h.record_len();
        let avail = self.input.fill(head_len).map_err(io)?;
        if avail == 0 {
            return Ok(None);
        }
        let truncated = ErrorKind::TruncatedRecordHeader {
            needed: head_len as u32,
            available: avail as u32,
        };
        if avail < head_len {
            return Err(fail(truncated));
        }
        let head = self
            .input
            .peek()
            .first_chunk()
            .ok_or_else(|| fail(truncated))?;
        let rec = h.parse_record(head).map_err(fail)?;
        let total = head_len + rec.caplen as usize;
        let avail = self.input.fill(total).map_err(io)?;
        if avail < total {
            return Err(fail(ErrorKind::TruncatedRecordData {
                needed: rec.caplen,
                available: (avail - head_len) as u64,
            }));
        }
        let span = self.input.take(total).sub(head_len, rec.caplen as usize);
        Ok(Some(Record::pcap(&h, &rec, span, offset)))
    }
}

/// Opens a file; for a regular file, checks it is not empty and returns
/// its length. Anything else (a named pipe, `/dev/stdin`, a process
/// substitution) has no length: it is read as a stream, where an empty
/// one is reported when its header does not come.
fn open_file(path: &Path, name: &str) -> Result<(File, Option<u64>), CaptureError> {
    let file = File::open(path).map_err(|e| CaptureError::io(&e, name, 0))?;
    let meta = file.metadata().map_err(|e| CaptureError::io(&e, name, 0))?;
    if !meta.is_file() {
        return Ok((file, None));
    }
    if meta.len() == 0 {
        return Err(CaptureError::new(ErrorKind::Empty, name, 0));
    }
    Ok((file, Some(meta.len())))
}

/// Wraps a stream that starts with a gzip header in a decompressor.
fn gunzip(input: Input) -> Input {
    let (reader, prefix) = match input {
        Input::Whole { .. } => unreachable!("whole gzip inputs are opened as streams"),
        stream => stream.into_reader().expect("a stream"),
    };
    let chained = io::Cursor::new(prefix).chain(reader);
    Input::stream(Box::new(Gunzip::new(Chunks::new(chained))), &[])
}

/// Decompresses gzip members one after another, as `gzip -d` does: zero
/// bytes after a member (padding, as tape and block devices leave) are
/// skipped, up to the next member or the end, which ends the input
/// cleanly; anything else after a member is an error. Errors read as what they
/// are: the decompressor calls damaged data an invalid input parameter.
/// (flate2's `MultiGzDecoder` takes the zero padding for a damaged next
/// member.)
struct Gunzip<R> {
    member: Option<GzDecoder<R>>,
}

impl<R: BufRead> Gunzip<R> {
    fn new(input: R) -> Self {
        Gunzip {
            member: Some(GzDecoder::new(input)),
        }
    }
}

impl<R: BufRead> Read for Gunzip<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let invalid = |e: io::Error| match e.kind() {
            io::ErrorKind::InvalidInput => io::Error::new(io::ErrorKind::InvalidData, e),
            _ => e,
        };
        loop {
            let Some(member) = &mut self.member else {
                return Ok(0);
            };
            let n = member.read(out).map_err(invalid)?;
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
            // The member ended: another follows, or padding, or the end.
            let mut rest = self.member.take().expect("a member").into_inner();
            loop {
                let buf = rest.fill_buf()?;
                match buf.iter().position(|&b| b != 0) {
                    None if buf.is_empty() => return Ok(0),
                    None => {
                        let n = buf.len();
                        rest.consume(n);
                    }
                    Some(0) if buf[0] == 0x1f => {
                        self.member = Some(GzDecoder::new(rest));
                        break;
                    }
                    // Zeros, then something: look at it from its start
                    // (wherever the chunks fell).
                    Some(zeros) if zeros > 0 => rest.consume(zeros),
                    Some(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "bytes after the last gzip member",
                        ))
                    }
                }
            }
        }
    }
}

/// Compressed input handed to the decompressor in chunks of the same size
/// whatever the reads that brought it (the last one excepted). The
/// decompressor drops what it decompressed in a call that meets damage,
/// so where the frames before damage end depended on how the source's
/// reads fell (a file, a pipe): with fixed chunks it does not, and what
/// is lost before the error is what one chunk (8 KiB of compressed input)
/// decoded to. Hand-written: `BufReader` fills with one read of the source.
struct Chunks<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    /// A read error met after some bytes were gathered: reported once
    /// those are consumed.
    error: Option<io::Error>,
}

impl<R: Read> Chunks<R> {
    const SIZE: usize = 8192;

    fn new(inner: R) -> Self {
        Chunks {
            inner,
            buf: vec![0; Self::SIZE].into_boxed_slice(),
            pos: 0,
            filled: 0,
            error: None,
        }
    }
}

impl<R: Read> Read for Chunks<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Chunks<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.filled {
            if let Some(e) = self.error.take() {
                return Err(e);
            }
            let (mut at, buf) = (0, &mut self.buf);
            while at < buf.len() {
                match self.inner.read(&mut buf[at..]) {
                    Ok(0) => break,
                    Ok(n) => at += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if at == 0 => return Err(e),
                    Err(e) => {
                        self.error = Some(e);
                        break;
                    }
                }
            }
            (self.pos, self.filled) = (0, at);
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.filled);
    }
}

/// Reads the classic pcap file header.
fn read_pcap_header(input: &mut Input) -> Result<(Format, State), ErrorKind> {
    let avail = input
        .fill(FILE_HEADER_LEN)
        .map_err(|e| ErrorKind::Io(e.kind()))?;
    let head = input.peek();
    if let Some(first4) = head.first_chunk::<4>() {
        if PcapHeader::sniff(*first4).is_none() {
            return Err(ErrorKind::BadMagic(u32::from_be_bytes(*first4)));
        }
    }
    let head = head.first_chunk().ok_or(ErrorKind::TruncatedRecordHeader {
        needed: FILE_HEADER_LEN as u32,
        available: avail as u32,
    })?;
    let h = PcapHeader::parse(head)?;
    input.take(FILE_HEADER_LEN);
    let format = Format::Pcap {
        nanos: h.nanos,
        big_endian: h.big_endian,
    };
    Ok((format, State::Pcap(h)))
}

/// Checks the first section header's byte-order magic; the block itself is
/// read by the block loop like any later section header.
fn read_section_magic(input: &mut Input) -> Result<(Format, State), ErrorKind> {
    let avail = input.fill(12).map_err(|e| ErrorKind::Io(e.kind()))?;
    let bom = input
        .peek()
        .get(8..12)
        .ok_or(ErrorKind::TruncatedRecordHeader {
            needed: 12,
            available: avail as u32,
        })?;
    let endian = pcapng::section_endian([bom[0], bom[1], bom[2], bom[3]])?;
    let state = State::PcapNg {
        endian,
        interfaces: Vec::new(),
    };
    Ok((Format::PcapNg, state))
}

mod ng;
