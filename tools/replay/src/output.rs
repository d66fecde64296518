//! The stream handler of a replay: digest, flow files, or just counting.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use weft_reasm::tcp_state::{TcpTimestampCheck, TcpWindowCheck};
use weft_reasm::{
    ConnInfo, Context, Direction, Event, ScatterGather, Segment, Stream, StreamFactory,
};
use weft_wire::Seq;

use crate::digest::{hex, Conflict, HalfDigest};
use crate::flows::{file_ids, FileIds, FlowFile, FlowShared, SharedNamer};

/// What each stream produces.
#[derive(Clone, Debug, Default)]
pub struct OutputOptions {
    /// Compute per-direction digests.
    pub digest: bool,
    /// Write flow files into this directory.
    pub flows: Option<PathBuf>,
    /// Refuse segments that fail PAWS, as their receivers would
    /// ([`TcpTimestampCheck`]); counted as rejected. For the caller of
    /// [`ReplayFactory::new`] to honour with the [`Validators`] check.
    pub paws: bool,
    /// Refuse segments whose data starts past the window their receivers
    /// advertised, as Linux receivers do ([`TcpWindowCheck`]); counted
    /// as rejected. As `paws`, honoured with [`Validators`].
    pub window_check: bool,
    /// Report every overlap conflict ([`Report::Conflict`]).
    pub conflicts: bool,
    /// The input captures: a flow file that would be one of them (in its
    /// directory, by the same name) is not written, and reported, rather
    /// than truncate a capture that may be mapped and still read.
    pub inputs: Vec<PathBuf>,
}

/// A finished half-connection, a flow file that could not be written, or
/// an overlap conflict.
#[derive(Debug)]
pub enum Report {
    /// A digest.
    Digest(HalfDigest),
    /// An I/O error writing a flow file.
    FlowError(String),
    /// Copies of the same bytes that differed.
    Conflict(Conflict),
}

/// Per-connection handler of a replay.
///
/// The stream lives inside the reassembler's connection record, which every
/// packet of the connection touches: only the counters are kept inline (40
/// bytes), and everything a digest or flow-file run needs sits behind one
/// box, absent when only counting. With 10,000 live connections the record
/// shrank from 528 to 448 bytes this way.
#[derive(Debug)]
pub struct ReplayStream<C: Check = Everything> {
    bytes: [u64; 2],
    gaps: [u64; 2],
    /// Checksum of delivered bytes when nothing else is computed, so the
    /// work cannot be optimised away in benchmarks.
    sum: u64,
    out: Option<Box<Outputs>>,
    check: C,
}

/// What a replay's streams check each segment against before using it
/// ([`Stream::accept`]): nothing ([`Everything`]) or the validators the
/// options ask for ([`Validators`]). A type, not a flag, so that without
/// a check the reassembler's call compiles to nothing: a flag read per
/// segment cost 1.7 % more instructions (callgrind, inline) for the
/// arguments the call needs.
pub trait Check: std::fmt::Debug + Send + 'static {
    /// The check of a new connection under `opts`.
    fn new(opts: &OutputOptions) -> Self;
    /// Whether to use `seg`, travelling in `dir`, whose direction's next
    /// expected byte is `next_seq`.
    fn accept(&mut self, seg: &Segment<'_>, dir: Direction, next_seq: Option<Seq>) -> bool;
}

/// Every segment is used.
#[derive(Clone, Copy, Debug, Default)]
pub struct Everything;

impl Check for Everything {
    fn new(_: &OutputOptions) -> Self {
        Everything
    }

    #[inline(always)]
    fn accept(&mut self, _: &Segment<'_>, _: Direction, _: Option<Seq>) -> bool {
        true
    }
}

/// Segments that fail PAWS ([`TcpTimestampCheck`], with
/// [`OutputOptions::paws`]) or lie past their receiver's window
/// ([`TcpWindowCheck`], with [`OutputOptions::window_check`]) are
/// refused; boxed, so the connection record grows by a pointer only.
#[derive(Debug)]
pub struct Validators(Box<(Option<TcpTimestampCheck>, Option<TcpWindowCheck>)>);

impl Check for Validators {
    fn new(opts: &OutputOptions) -> Self {
        let paws = opts.paws.then(TcpTimestampCheck::new);
        let window = opts.window_check.then(TcpWindowCheck::new);
        Validators(Box::new((paws, window)))
    }

    /// PAWS first, as a receiver checks it before the sequence numbers: a
    /// segment it refuses teaches the window check nothing.
    #[inline]
    fn accept(&mut self, seg: &Segment<'_>, dir: Direction, next_seq: Option<Seq>) -> bool {
        let (paws, window) = &mut *self.0;
        paws.as_mut()
            .map_or(true, |p| p.accept(seg, dir, next_seq).is_ok())
            && window
                .as_mut()
                .map_or(true, |w| w.accept(seg, dir, next_seq).is_ok())
    }
}

/// What a digest or flow-file run keeps per connection.
#[derive(Debug)]
struct Outputs {
    info: ConnInfo,
    sha: Option<[Sha256; 2]>,
    files: Option<[FlowFile; 2]>,
    /// Report overlap conflicts.
    conflicts: bool,
    sink: Sender<Report>,
}

fn ix(d: Direction) -> usize {
    match d {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

impl<C: Check> Stream for ReplayStream<C> {
    #[inline]
    fn accept(
        &mut self,
        seg: &Segment<'_>,
        dir: Direction,
        next_seq: Option<Seq>,
        _: &Context,
    ) -> bool {
        self.check.accept(seg, dir, next_seq)
    }

    fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
        let info = sg.info();
        let k = ix(info.dir);
        // Bytes passed over past a depth or a stop are not missing.
        self.gaps[k] += info.skip - info.passed;
        self.bytes[k] += sg.len() as u64;
        match self.out.as_deref_mut() {
            // Nothing takes the bytes (none, or only conflicts are
            // listed): they are summed, as in a plain run.
            Some(Outputs {
                sha: None,
                files: None,
                ..
            })
            | None => {
                for c in sg.chunks() {
                    self.sum = self.sum.wrapping_add(sum8(c));
                }
            }
            Some(out) => {
                for c in sg.chunks() {
                    if let Some(sha) = &mut out.sha {
                        sha[k].update(c);
                    }
                    if let Some(files) = &mut out.files {
                        files[k].write(c);
                    }
                }
            }
        }
    }

    fn event(&mut self, ev: &Event, _: &Context) {
        let (
            Some(out),
            Event::OverlapConflict {
                dir,
                offset,
                len,
                new_won,
            },
        ) = (&self.out, *ev)
        else {
            return;
        };
        if out.conflicts {
            let wire = out.info.wire_dir(dir);
            let _ = out.sink.send(Report::Conflict(Conflict {
                src: out.info.key.src(wire),
                dst: out.info.key.dst(wire),
                offset,
                len,
                new_won,
            }));
        }
    }

    fn complete(&mut self, _: &Context) -> bool {
        // The sum is read by nobody: this keeps the optimiser (fat LTO sees
        // the whole program) from dropping the loop that touches the bytes.
        std::hint::black_box(self.sum);
        let Some(out) = &mut self.out else {
            // Linger: strays after FIN/RST are absorbed, not a new connection.
            return false;
        };
        for d in [Direction::ClientToServer, Direction::ServerToClient] {
            let k = ix(d);
            if let Some(files) = &mut out.files {
                files[k].flush();
                if let Some(e) = files[k].error.take() {
                    let path = files[k].path().unwrap_or(std::path::Path::new("?"));
                    let e = format!("{}: {e}", path.display());
                    let _ = out.sink.send(Report::FlowError(e));
                }
            }
            if self.bytes[k] == 0 && self.gaps[k] == 0 {
                continue;
            }
            if let Some(sha) = &mut out.sha {
                let wire = out.info.wire_dir(d);
                let _ = out.sink.send(Report::Digest(HalfDigest {
                    src: out.info.key.src(wire),
                    dst: out.info.key.dst(wire),
                    bytes: self.bytes[k],
                    gap_bytes: self.gaps[k],
                    sha256: hex(&std::mem::take(&mut sha[k]).finalize()),
                }));
            }
        }
        // Linger: strays after FIN/RST are absorbed, not a new connection.
        false
    }
}

/// Sum of `bytes` read as little-endian u64 words (the tail zero-padded):
/// touches every byte once, cheaply, so the work cannot be optimised away.
///
/// Four independent lanes of 32-byte blocks, so the compiler can keep them
/// in one vector register: a single running sum is a chain of dependent
/// adds, and was a ninth of the instructions of an inline replay.
pub fn sum8(bytes: &[u8]) -> u64 {
    let mut blocks = bytes.chunks_exact(32);
    let mut lanes = [0u64; 4];
    for b in &mut blocks {
        for (lane, w) in lanes.iter_mut().zip(b.chunks_exact(8)) {
            *lane = lane.wrapping_add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
    }
    let mut words = blocks.remainder().chunks_exact(8);
    let mut s = lanes.iter().fold(0u64, |s, &l| s.wrapping_add(l));
    for w in &mut words {
        s = s.wrapping_add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    s.wrapping_add(u64::from_le_bytes(tail))
}

/// Makes [`ReplayStream`]s checking segments with `C`; one per worker,
/// all reporting to one channel. [`OutputOptions::paws`] and
/// [`OutputOptions::window_check`] are for the caller to honour by
/// choosing `C` ([`Validators`]).
#[derive(Debug)]
pub struct ReplayFactory<C: Check = Everything> {
    opts: Arc<OutputOptions>,
    /// The flow-file directory, shared by every file's path.
    dir: Option<Arc<std::path::Path>>,
    names: SharedNamer,
    /// The input captures, which no flow file may overwrite.
    inputs: FileIds,
    sink: Sender<Report>,
    check: PhantomData<fn() -> C>,
}

impl<C: Check> ReplayFactory<C> {
    /// A factory and the receiving end of its reports.
    pub fn new(opts: OutputOptions) -> (ReplayFactory<C>, Receiver<Report>) {
        let (sink, rx) = channel();
        let dir = opts.flows.as_deref().map(Arc::from);
        let inputs = file_ids(&opts.inputs);
        let f = ReplayFactory {
            opts: Arc::new(opts),
            dir,
            names: Arc::new(FlowShared::protecting(inputs.clone())),
            inputs,
            sink,
            check: PhantomData,
        };
        (f, rx)
    }

    /// A factory for another worker, sharing the options and the report
    /// channel. Each worker names its own connections' files: a 4-tuple on
    /// one VLAN and network always lands on the same worker (whichever
    /// dispatch hash), and names carry the VLAN and network, so reuse
    /// counting stays per name and the names are the same for any worker
    /// count.
    pub fn for_worker(&self) -> ReplayFactory<C> {
        ReplayFactory {
            opts: self.opts.clone(),
            dir: self.dir.clone(),
            names: Arc::new(FlowShared::protecting(self.inputs.clone())),
            inputs: self.inputs.clone(),
            sink: self.sink.clone(),
            check: PhantomData,
        }
    }
}

impl<C: Check> StreamFactory for ReplayFactory<C> {
    type Stream = ReplayStream<C>;
    fn new_stream(&mut self, conn: &ConnInfo, _: &Segment<'_>, _: &Context) -> ReplayStream<C> {
        let zone = conn.key.zone();
        let files = self.dir.as_ref().map(|dir| {
            let file = |d: Direction| {
                let w = conn.wire_dir(d);
                let (src, dst) = (conn.key.src(w), conn.key.dst(w));
                FlowFile::new(dir.clone(), self.names.clone(), src, dst, zone)
            };
            [
                file(Direction::ClientToServer),
                file(Direction::ServerToClient),
            ]
        });
        let sha = self.opts.digest.then(|| [Sha256::new(), Sha256::new()]);
        let conflicts = self.opts.conflicts;
        let out = (sha.is_some() || files.is_some() || conflicts).then(|| {
            Box::new(Outputs {
                info: *conn,
                sha,
                files,
                conflicts,
                sink: self.sink.clone(),
            })
        });
        ReplayStream {
            bytes: [0; 2],
            gaps: [0; 2],
            sum: 0,
            out,
            check: C::new(&self.opts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sum8;

    /// The word-by-word definition `sum8` must match at every length and
    /// alignment of the tail.
    fn reference(bytes: &[u8]) -> u64 {
        bytes.chunks(8).fold(0u64, |s, w| {
            let mut word = [0u8; 8];
            word[..w.len()].copy_from_slice(w);
            s.wrapping_add(u64::from_le_bytes(word))
        })
    }

    #[test]
    fn sum8_is_the_sum_of_zero_padded_words() {
        let bytes: Vec<u8> = (0..300u32).map(|i| (i * 167 + 13) as u8 | 0x80).collect();
        for start in 0..9 {
            for end in start..bytes.len() {
                assert_eq!(sum8(&bytes[start..end]), reference(&bytes[start..end]));
            }
        }
        assert_eq!(sum8(&[0xff; 64]), 8u64.wrapping_mul(u64::MAX));
    }
}
