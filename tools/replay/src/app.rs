//! One replay run: captures → engine → outputs, with stats.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft_arena::Abreast;
use weft_capture::{BpfProgram, Capture, CaptureError, Prefetch, SharedBytes};
use weft_engine::{
    Backpressure, Engine, EngineBuilder, EngineError, EngineReport, EngineStats, PipelineConfig,
};
use weft_reasm::StreamFactory;
use weft_wire::{LinkType, Timestamp};

use crate::config::{Dispatch, EngineShape};
use crate::digest::{Conflict, HalfDigest};
use crate::output::{Check, Everything, OutputOptions, ReplayFactory, Report, Validators};
use std::sync::mpsc::Receiver;

/// Everything a run needs besides the capture paths.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// Pipeline (decoder and reassembler) options.
    pub pipeline: PipelineConfig,
    /// Engine shape.
    pub engine: EngineShape,
    /// What the streams produce.
    pub output: OutputOptions,
    /// Replay at the capture's own pace times this factor (`None`: as fast as possible).
    pub pace: Option<f64>,
    /// Do not map memory-mapped captures ahead of the reader on a helper
    /// thread ([`Capture::start_readahead`]).
    pub no_readahead: bool,
    /// Read capture files with ordinary reads, never mapping them
    /// ([`Capture::open_buffered`]): for files another process may still
    /// write, rotate or truncate.
    pub no_map: bool,
    /// A packet filter: frames it rejects are skipped, and one it returns
    /// a smaller length for is cut to it. Capture files: run by
    /// [`BpfProgram::run`] on every frame before dispatch (the rejected
    /// counted in [`Outcome::filtered`]), so it must run offline
    /// ([`BpfProgram::check_offline`], else [`RunError::Filter`]); by
    /// every fanout worker, as each reads every frame. One program for
    /// every frame, whatever its link type, and a rejected frame's time
    /// moves no timer, as if the captures had been filtered first. Live:
    /// the kernel runs it on each socket, unless [`LiveInput`]'s options
    /// name a filter of their own.
    pub filter: Option<BpfProgram>,
    /// Read the capture files as one, their frames in time order (each
    /// file's own order kept; of frames stamped alike, the file named
    /// first goes first), as captures of one link taken at several points
    /// are read: a tap's two directions in two files, or sensors' files
    /// of the same hours. Without it the files are read one after
    /// another. Frames are copied out of the files; no fanout workers.
    pub merge: bool,
}

/// The result of a run.
#[derive(Debug)]
pub struct Outcome {
    /// Digests of every half-connection (if asked).
    pub digests: Vec<HalfDigest>,
    /// Every overlap conflict (if asked), in no order.
    pub conflicts: Vec<Conflict>,
    /// Engine counters.
    pub stats: EngineStats,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The first capture error (the run goes on with the next capture).
    pub capture_errors: Vec<CaptureError>,
    /// Flow files that could not be written.
    pub flow_errors: Vec<String>,
    /// Reading was stopped by the caller (Ctrl-C).
    pub interrupted: bool,
    /// Bytes of capture read.
    pub bytes_read: u64,
    /// How frames reached the workers: `"inline"`, `"ring"`, `"fanout"` or `"hybrid"`.
    pub dispatch: &'static str,
    /// The read-ahead helpers' trials of reading the capture ahead, and
    /// how many reading ahead won ([`Capture::readahead_trials`]).
    pub readahead_trials: (u32, u32),
    /// A live capture's counters (the kernel's drops among them).
    pub live: Option<LiveReport>,
    /// Frames of capture files the BPF filter rejected
    /// ([`ReplayOptions::filter`]; a live capture's kernel counts none).
    pub filtered: u64,
}

/// What a live capture counted, and on which interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveReport {
    /// The interface captured on.
    pub interface: String,
    /// Its counters.
    #[cfg(target_os = "linux")]
    pub stats: weft_capture::LiveStats,
    /// The error that ended the capture (the device went down, for one).
    pub error: Option<String>,
}

/// Why a run failed as a whole.
#[derive(Debug)]
pub enum RunError {
    /// A capture could not be opened.
    Open(CaptureError),
    /// The engine failed (a handler panicked, a thread could not start).
    Engine(EngineError),
    /// Fanout dispatch was asked for an input every worker cannot read
    /// itself (standard input, a compressed capture, merged captures), with no workers, or with
    /// drop backpressure (fanout workers have no ring to drop from: a slow
    /// one holds the others back).
    NoFanout,
    /// A live capture could not be opened (no such interface, no
    /// permission, not Linux).
    Live(String),
    /// The packet filter cannot run on capture files (it loads a kernel
    /// extension only a live capture has).
    Filter(weft_capture::bpf::BpfError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Open(e) => e.fmt(f),
            RunError::Engine(e) => e.fmt(f),
            RunError::Filter(e) => write!(f, "the packet filter, on capture files: {e}"),
            RunError::NoFanout => f.write_str(
                "fanout dispatch needs at least one worker, blocking backpressure, and input \
                 every worker can read itself (files it can map, or a live interface; not \
                 standard input, compressed files or merged captures)",
            ),
            RunError::Live(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for RunError {}

/// Progress callback: bytes read so far, total (if known), frames so far.
/// With fanout workers it is called from the first worker's thread.
pub type Progress<'a> = &'a mut (dyn FnMut(u64, Option<u64>, u64) + Send);

/// A memory-mapped capture as an engine block.
struct MappedBlock(SharedBytes);

impl AsRef<[u8]> for MappedBlock {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Where a block's bytes lie in memory: their address and length.
#[derive(Clone, Copy)]
struct Span {
    base: usize,
    len: usize,
}

impl Span {
    fn of(bytes: &[u8]) -> Span {
        Span {
            base: bytes.as_ptr() as usize,
            len: bytes.len(),
        }
    }

    /// Where `part` starts within the block, if it lies inside it (as
    /// [`SharedBytes::offset_of`]).
    #[inline]
    fn offset_of(self, part: &[u8]) -> Option<usize> {
        let at = (part.as_ptr() as usize).checked_sub(self.base)?;
        (at.checked_add(part.len())? <= self.len).then_some(at)
    }
}

/// Once three stream buffers in a row carried fewer frames than this, the
/// stream is copied frame by frame rather than shared buffer by buffer (see
/// [`feed`]).
const MIN_FRAMES_PER_BLOCK: u32 = 16;

/// Replays `captures` in order through one engine: a dispatcher feeding
/// workers through rings, inline, or fanout workers that each read every
/// capture (see [`Dispatch`]).
pub fn replay(
    captures: &[PathBuf],
    opts: &ReplayOptions,
    stop: &AtomicBool,
    progress: Progress<'_>,
) -> Result<Outcome, RunError> {
    // Open everything first: a missing file is a usage problem, found before work.
    if let Some(f) = &opts.filter {
        f.check_offline().map_err(RunError::Filter)?;
    }
    let mut opened = Vec::with_capacity(captures.len());
    for p in captures {
        let cap = if opts.no_map && p.as_os_str() != "-" {
            Capture::open_buffered(p)
        } else {
            Capture::open(p)
        };
        opened.push(cap.map_err(RunError::Open)?);
    }
    run_input(Input::Files(opened), opts, stop, progress)
}

/// Reassembles what a live capture on `live.interface` brings, until
/// `stop` is set (Ctrl-C), `live.duration` passed, `live.count` frames
/// came or a reader failed. Fanout workers (where they would run on
/// files) each read a socket of their own, in a fanout group: the kernel
/// divides the flows. Otherwise a dispatcher (this thread) reads one
/// socket's blocks in place and hands their frames to the workers (or
/// reassembles them itself, inline). While no traffic comes, packet time
/// follows the clock, so connections still time out. Linux only (`AF_PACKET`); capturing takes
/// `CAP_NET_RAW`. `opened` is called once the capture is open, before
/// the engine starts: packets from then on are seen. An error that ends
/// the capture is in [`Outcome::live`].
pub fn replay_live(
    live: &LiveInput,
    opts: &ReplayOptions,
    stop: &AtomicBool,
    progress: Progress<'_>,
    opened: &mut dyn FnMut(),
) -> Result<Outcome, RunError> {
    #[cfg(target_os = "linux")]
    {
        // Fanout workers, where they would run on files: each reads a
        // socket of its own, the kernel dividing flows among them.
        let (workers, cores) = worker_count(opts);
        let shape = Shape {
            workers,
            cores,
            mapped: true,
            paced: opts.pace.is_some(),
            backpressure: opts.engine.backpressure,
        };
        let weighted = opts.engine.table_weights.is_some();
        let (fanout, _) = match opts.engine.dispatch {
            // The kernel divides flows evenly: weights need a table.
            Dispatch::Auto if weighted => (false, false),
            Dispatch::Fanout if weighted => {
                return Err(RunError::Engine(EngineError::Setting(
                    "table weights with fanout workers on a live interface: the kernel \
                     divides the flows evenly among their sockets"
                        .to_owned(),
                )))
            }
            dispatch => shape.choose(dispatch)?,
        };
        let mut options = live.options.clone();
        if options.filter.is_none() {
            options.filter.clone_from(&opts.filter);
        }
        let caps = if fanout {
            // A group of its own: no other capture shares its packets.
            weft_capture::Live::open_group(&live.interface, &options, workers)
        } else {
            weft_capture::Live::open(&live.interface, &options).map(|c| vec![c])
        };
        let caps = caps.map_err(|e| RunError::Live(format!("{}: {e}", live.interface)))?;
        opened();
        let input = Input::Live {
            caps,
            what: live,
            divided: fanout,
        };
        run_input(input, opts, stop, progress)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (opts, stop, progress, opened);
        Err(RunError::Live(format!(
            "{}: live capture needs Linux (AF_PACKET)",
            live.interface
        )))
    }
}

/// A live capture to reassemble ([`replay_live`]).
#[derive(Clone, Debug, Default)]
pub struct LiveInput {
    /// The network interface, e.g. `eth0`.
    pub interface: String,
    /// The ring's shape and the device's mode.
    #[cfg(target_os = "linux")]
    pub options: weft_capture::LiveOptions,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many frames.
    pub count: Option<u64>,
}

/// Where a run's frames come from.
enum Input<'a> {
    /// Capture files (or standard input), opened, read in turn.
    Files(Vec<Capture>),
    /// A live capture: one socket, or one per fanout worker (`divided`:
    /// members of one `AF_PACKET` fanout group), and when to stop it.
    #[cfg(target_os = "linux")]
    Live {
        caps: Vec<weft_capture::Live>,
        what: &'a LiveInput,
        divided: bool,
    },
    #[cfg(not(target_os = "linux"))]
    #[allow(dead_code)]
    Never(std::marker::PhantomData<&'a ()>),
}

/// How many workers `opts` ask for, and the cores there are: not given,
/// as many as there are table weights, or one per core.
fn worker_count(opts: &ReplayOptions) -> (usize, usize) {
    let e = &opts.engine;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = e
        .workers
        .unwrap_or_else(|| e.table_weights.as_ref().map_or(cores, Vec::len));
    (workers, cores)
}

/// Runs `input` through a factory of the streams `opts` asks for.
fn run_input(
    input: Input<'_>,
    opts: &ReplayOptions,
    stop: &AtomicBool,
    progress: Progress<'_>,
) -> Result<Outcome, RunError> {
    // Two instantiations of the engine: without validators the streams'
    // check compiles to nothing ([`Check`]).
    if opts.output.paws || opts.output.window_check {
        run(
            ReplayFactory::<Validators>::new(opts.output.clone()),
            input,
            opts,
            stop,
            progress,
        )
    } else {
        let factory = ReplayFactory::<Everything>::new(opts.output.clone());
        run(factory, input, opts, stop, progress)
    }
}

/// [`replay`] or [`replay_live`] with the input opened, through
/// `factory`'s streams.
fn run<C: Check>(
    (factory, rx): (ReplayFactory<C>, Receiver<Report>),
    input: Input<'_>,
    opts: &ReplayOptions,
    stop: &AtomicBool,
    progress: Progress<'_>,
) -> Result<Outcome, RunError> {
    let (total, mapped) = match &input {
        // Merged captures have one reader, which copies their frames.
        Input::Files(opened) => (
            opened.iter().map(Capture::total_len).sum(),
            !opts.merge && opened.iter().all(Capture::is_mapped),
        ),
        // Fanout workers read sockets of their own: there is one each.
        #[cfg(target_os = "linux")]
        Input::Live { divided, .. } => (None, *divided),
        #[cfg(not(target_os = "linux"))]
        Input::Never(_) => (None, false),
    };
    let e = &opts.engine;
    let (workers, cores) = worker_count(opts);
    let shape = Shape {
        workers,
        cores,
        mapped,
        paced: opts.pace.is_some(),
        backpressure: e.backpressure,
    };
    let (fanout, hybrid) = shape.choose(e.dispatch)?;
    let builder = EngineBuilder::new()
        .workers(workers)
        .pin(e.pin)
        .ring_capacity(e.ring_capacity)
        .batch(e.batch)
        .backpressure(e.backpressure)
        .dispatch_hash(e.dispatch_hash)
        .dispatcher_works(hybrid)
        .pipeline(opts.pipeline.clone());
    // Weights place flows on workers: inline there is one place.
    let builder = match (&e.table_weights, hybrid) {
        (Some(w), _) if workers > 0 => builder.table_weights(w.clone()),
        (None, true) => builder.table_weights(hybrid_weights(workers)),
        _ => builder,
    };
    let start = Instant::now();
    let mut out = Outcome {
        digests: Vec::new(),
        conflicts: Vec::new(),
        stats: EngineStats::default(),
        elapsed: Duration::ZERO,
        capture_errors: Vec::new(),
        flow_errors: Vec::new(),
        interrupted: false,
        bytes_read: 0,
        dispatch: match (workers, fanout, hybrid) {
            (0, _, _) => "inline",
            (_, true, _) => "fanout",
            (_, false, true) => "hybrid",
            (_, false, false) => "ring",
        },
        readahead_trials: (0, 0),
        live: None,
        filtered: 0,
    };
    let report = match (fanout, input) {
        (true, Input::Files(opened)) => {
            // Worker 0 reads the captures opened above; the others read them
            // again through the same mappings, so a page is faulted in once for
            // all, and worker 0 (its read-ahead helper, or itself without a
            // core to spare) keeps the mapped window small for all.
            let mut readers = Vec::with_capacity(workers);
            for _ in 1..workers {
                let again: Result<Vec<Capture>, CaptureError> = opened
                    .iter()
                    .map(|c| c.reopen().unwrap_or_else(|| unreachable!("mapped")))
                    .collect();
                readers.push(Some(again.map_err(RunError::Open)?));
            }
            readers.insert(0, Some(opened));
            let readers = Mutex::new(readers);
            let abreast = Abreast::new(workers, FANOUT_LAG);
            let paging = if opts.no_readahead {
                Paging::None
            } else {
                Paging::of(core_to_spare(workers, cores, true), true)
            };
            let progress = Mutex::new(progress);
            let (report, fed) = builder
                .fanout(
                    |_| factory.for_worker(),
                    |engine| {
                        // Only the first worker reports progress and errors:
                        // every worker reads the same captures.
                        let i = engine.index().unwrap_or(0);
                        let _done = abreast.leave_when_done(i);
                        let caps = lock(&readers)[i].take().unwrap_or_default();
                        let me = Reading {
                            paging: if i == 0 { paging } else { Paging::None },
                            pace: opts.pace,
                            stop,
                            group: Some((i, &abreast)),
                            filter: opts.filter.as_ref(),
                            merge: false,
                        };
                        me.feed_all(engine, caps, &mut |read, frames| {
                            if i == 0 {
                                lock(&progress)(read, total, frames);
                            }
                        })
                    },
                )
                .map_err(RunError::Engine)?;
            drop(factory);
            // All stopped at the same frame if any did (a worker that had
            // finished is not interrupted): errors and counts are worker 0's.
            let interrupted = fed.iter().any(|f| f.interrupted);
            let mut fed = fed.into_iter().next().unwrap_or_default();
            fed.interrupted = interrupted;
            lock(&progress)(fed.bytes, total, fed.frames);
            fed.into_outcome(&mut out);
            report
        }
        #[cfg(target_os = "linux")]
        (true, Input::Live { caps, what, .. }) => {
            let report = live_fanout(
                builder,
                |_| factory.for_worker(),
                caps,
                what,
                stop,
                progress,
                &mut out,
            )?;
            drop(factory);
            report
        }
        (_, input) => {
            let engine = builder
                .build(|_| factory.for_worker())
                .map_err(RunError::Engine)?;
            drop(factory);
            let reading = Reading {
                paging: if opts.no_readahead {
                    Paging::None
                } else {
                    Paging::of(core_to_spare(workers, cores, hybrid), false)
                },
                pace: opts.pace,
                stop,
                group: None,
                filter: opts.filter.as_ref(),
                merge: opts.merge,
            };
            let live = &mut out.live;
            let feed = |engine: &mut Engine<_>| match input {
                Input::Files(opened) => reading.feed_all(engine, opened, &mut |read, frames| {
                    progress(read, total, frames)
                }),
                #[cfg(target_os = "linux")]
                Input::Live { caps, what, .. } => {
                    let mut cap = caps.into_iter().next().expect("a capture");
                    let shared = LiveShared::default();
                    let until = shared.end(what, stop);
                    let mut error = None;
                    let fed = feed_live(
                        engine,
                        &mut cap,
                        what,
                        &until,
                        &mut error,
                        &mut |read, frames| progress(read, None, frames),
                    );
                    *live = Some(LiveReport {
                        interface: what.interface.clone(),
                        stats: cap.stats(),
                        error,
                    });
                    fed
                }
                #[cfg(not(target_os = "linux"))]
                Input::Never(_) => Fed::default(),
            };
            // Stream handlers run on this thread inline and on the worker 0 of
            // a dispatcher that runs it; with rings, only on worker threads.
            let (fed, report) = if workers == 0 || hybrid {
                run_on_this_thread(engine, feed)?
            } else {
                let mut engine = engine;
                let fed = feed(&mut engine);
                (fed, engine.finish())
            };
            progress(fed.bytes, total, fed.frames);
            fed.into_outcome(&mut out);
            report.map_err(RunError::Engine)?
        }
    };
    out.elapsed = start.elapsed();
    out.stats = report.stats;
    drop(report.factories);
    for r in rx.try_iter() {
        match r {
            Report::Digest(d) => out.digests.push(d),
            Report::Conflict(c) => out.conflicts.push(c),
            Report::FlowError(e) => out.flow_errors.push(e),
        }
    }
    Ok(out)
}

/// Fanout workers over a live capture's fanout group, `caps` (a socket
/// each: the kernel divided the flows among them), until `what` says
/// stop; what they read and the capture's counters go to `out`.
#[cfg(target_os = "linux")]
fn live_fanout<F: StreamFactory + Send>(
    builder: EngineBuilder,
    make: impl FnMut(usize) -> F,
    caps: Vec<weft_capture::Live>,
    what: &LiveInput,
    stop: &AtomicBool,
    progress: Progress<'_>,
    out: &mut Outcome,
) -> Result<EngineReport<F>, RunError> {
    let caps: Vec<Mutex<Option<weft_capture::Live>>> =
        caps.into_iter().map(|c| Mutex::new(Some(c))).collect();
    let shared = LiveShared::default();
    let until = shared.end(what, stop);
    let progress = Mutex::new(progress);
    let (report, ended) = builder
        .divided(true)
        .fanout(make, |engine| {
            let i = engine.index().unwrap_or(0);
            let Some(mut cap) = lock(&caps[i]).take() else {
                return (Fed::default(), None, None);
            };
            let mut error = None;
            let fed = feed_live(
                engine,
                &mut cap,
                what,
                &until,
                &mut error,
                // Whoever is free to: every reader's totals.
                &mut |read, frames| {
                    if let Ok(mut p) = progress.try_lock() {
                        p(read, None, frames);
                    }
                },
            );
            (fed, Some(cap.stats()), error)
        })
        .map_err(RunError::Engine)?;
    let mut stats = weft_capture::LiveStats::default();
    let (mut error, mut frames) = (None, 0);
    for (fed, s, e) in ended {
        out.bytes_read += fed.bytes;
        frames += fed.frames;
        stats.merge(&s.unwrap_or_default());
        error = error.or(e);
    }
    lock(&progress)(out.bytes_read, None, frames);
    out.live = Some(LiveReport {
        interface: what.interface.clone(),
        stats,
        error,
    });
    Ok(report)
}

/// Runs `feed` on `engine`, then finishes it, where its stream handlers
/// run on this thread (inline, or worker 0 of a dispatcher that runs it):
/// a handler's panic, while fed or while finishing (the last deliveries
/// and `complete`s), comes back as worker 0's error with the panic's
/// message, as one on a worker thread does, once the other workers
/// stopped, instead of unwinding through the caller. A panic elsewhere
/// (the engine was not poisoned by it) is a bug of this program: it goes
/// on unwinding, after the engine finished.
fn run_on_this_thread<F: StreamFactory, T>(
    mut engine: Engine<F>,
    feed: impl FnOnce(&mut Engine<F>) -> T,
) -> Result<(T, Result<EngineReport<F>, EngineError>), RunError> {
    use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
    let handler_panic = |payload: Box<dyn std::any::Any + Send>| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a stream handler panicked".to_owned());
        RunError::Engine(EngineError::WorkerPanicked { worker: 0, message })
    };
    match catch_unwind(AssertUnwindSafe(|| feed(&mut engine))) {
        Ok(t) => match catch_unwind(AssertUnwindSafe(|| engine.finish())) {
            Ok(report) => Ok((t, report)),
            // Only handlers run code that can panic in `finish`.
            Err(payload) => Err(handler_panic(payload)),
        },
        // Poisoned by a handler, finishing only stops and joins the other
        // workers, and says so.
        Err(payload) => match engine.finish() {
            Err(EngineError::WorkerPanicked { worker: 0, .. }) => Err(handler_panic(payload)),
            _ => resume_unwind(payload),
        },
    }
}

/// Locks `m`, whether or not a thread panicked holding it (what it guards
/// stays usable: a vector of readers, a progress callback).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Frames between two looks at the stop flag (and reports of a fanout
/// worker's position)...
const CHECK_EVERY: u64 = 1024;

/// ... or bytes, whichever comes first: with large frames, 1,024 of them
/// could span more than [`FANOUT_LAG`].
const CHECK_BYTES: u64 = 1 << 20;

/// Frames between two calls of the progress callback.
const PROGRESS_EVERY: u64 = 8192;

/// How far apart fanout workers may drift, in bytes of capture.
///
/// The first worker (or its read-ahead helper, with a core to spare)
/// unmaps the pages 64 MiB behind it: a worker further behind maps them
/// again, and those stay mapped to
/// the end (peak resident sets up to 685 MiB on the 1.1 GB capture without
/// a bound, at most 153 MiB with this one). Measured on that capture, 2
/// workers: with bounds of 4, 16 or 64 MiB, or none, 0.97-0.99x the time
/// of the code before it (7 pairs each): keeping abreast costs nothing
/// measurable; 4 MiB took 0.98x the time of 16 MiB (11 pairs; 3 workers
/// on 2 cores 0.96x). Without a helper (a worker per core), 1 and 16 MiB
/// ran 1.00x of 4 MiB (11 pairs each).
const FANOUT_LAG: u64 = 4 << 20;

/// What happens to a memory-mapped capture's pages around its reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Paging {
    /// Nothing: pages fault in on the reader and stay mapped to the end
    /// (`--no-readahead`).
    None,
    /// The reader unmaps what it passed itself; pages fault in on it
    /// ([`Capture::start_unmapping_behind`]).
    Behind,
    /// A helper thread maps pages ahead of the reader and unmaps them
    /// behind it: page faults off the reading thread
    /// ([`Capture::start_readahead`]).
    Helper,
    /// ... and reads the bytes ahead into the shared cache
    /// ([`Capture::start_readahead_reading`]).
    HelperReading,
}

impl Paging {
    /// For a reader whose engine leaves a core to spare or not
    /// ([`core_to_spare`]), fanout or not. With a core to spare, a helper
    /// that reads. Without: fanout workers (one per core or more) unmap
    /// behind themselves, the first of them for all (2 workers on 2 cores:
    /// 0.97x the time with 2 MiB page-cache folios, 0.86x with 4 KiB pages,
    /// against a helper, whose mapping and wake-ups took time from both
    /// workers; 3 workers 0.99x); a dispatcher keeps a helper for its page
    /// faults (without one, 2 ring workers on 2 cores took 1.26x the time
    /// with 4 KiB pages).
    fn of(spare: bool, fanout: bool) -> Paging {
        match (spare, fanout) {
            (true, _) => Paging::HelperReading,
            (false, true) => Paging::Behind,
            (false, false) => Paging::Helper,
        }
    }
}

/// How one thread reads captures into an engine.
#[derive(Clone, Copy)]
struct Reading<'a> {
    /// What happens to memory-mapped captures' pages around this reader.
    paging: Paging,
    pace: Option<f64>,
    stop: &'a AtomicBool,
    /// Fanout workers reading the same captures: this one's index, and
    /// the others' whereabouts. `None` for the only reader.
    group: Option<(usize, &'a Abreast)>,
    /// Frames this rejects are not dispatched ([`ReplayOptions::filter`]).
    filter: Option<&'a BpfProgram>,
    /// The captures are read as one, in time order
    /// ([`ReplayOptions::merge`]).
    merge: bool,
}

/// What one thread's reading of the captures came to.
#[derive(Debug, Default)]
struct Fed {
    frames: u64,
    bytes: u64,
    /// The error that ended each capture early.
    errors: Vec<CaptureError>,
    interrupted: bool,
    /// [`Outcome::readahead_trials`] of the captures read.
    readahead_trials: (u32, u32),
    /// Frames the filter rejected.
    filtered: u64,
}

impl Fed {
    /// What the reading of the captures came to, into the run's outcome.
    fn into_outcome(self, out: &mut Outcome) {
        out.capture_errors = self.errors;
        out.interrupted = self.interrupted;
        out.readahead_trials = self.readahead_trials;
        out.bytes_read = self.bytes;
        out.filtered = self.filtered;
    }
}

impl Reading<'_> {
    /// Feeds every capture in turn to `engine`, calling `report(bytes read,
    /// frames)` every [`PROGRESS_EVERY`] frames; stops early when the stop
    /// flag is set (fanout workers all at the same frame).
    fn feed_all<F: StreamFactory>(
        &self,
        engine: &mut Engine<F>,
        captures: Vec<Capture>,
        report: &mut dyn FnMut(u64, u64),
    ) -> Fed {
        if self.merge {
            return self.feed_merged(engine, captures, report);
        }
        let mut fed = Fed::default();
        let mut pacer = Pacer::new(self.pace);
        let mut cut = u64::MAX;
        for mut cap in captures {
            if fed.bytes >= cut {
                // The agreed stop fell at the end of the previous capture.
                fed.interrupted = true;
                break;
            }
            // No-ops for streams.
            match self.paging {
                Paging::None => {}
                Paging::Behind => {
                    cap.start_unmapping_behind();
                }
                Paging::Helper => {
                    cap.start_readahead();
                }
                Paging::HelperReading => {
                    cap.start_readahead_reading();
                }
            }
            let ended = self.feed(engine, &mut cap, &mut pacer, &mut fed, &mut cut, report);
            fed.bytes += cap.bytes_read();
            let (held, won) = cap.readahead_trials();
            fed.readahead_trials.0 += held;
            fed.readahead_trials.1 += won;
            if let Some((me, group)) = self.group {
                group.keep_up(me, fed.bytes, self.stop);
            }
            match ended {
                Ok(true) => {}
                Ok(false) => {
                    fed.interrupted = true;
                    break;
                }
                Err(err) => fed.errors.push(err),
            }
        }
        fed
    }

    /// Feeds the frames of every capture to `engine` in time order
    /// ([`ReplayOptions::merge`]), calling `report(bytes read, frames)`
    /// every [`PROGRESS_EVERY`] frames; stops early when the stop flag is
    /// set. A capture that fails ends there, its error kept; the others
    /// go on. Frames are copied: one waits from each capture at a time,
    /// and a mapped capture's pages are unmapped behind its reader (a
    /// helper reading ahead of each would be a thread a file).
    fn feed_merged<F: StreamFactory>(
        &self,
        engine: &mut Engine<F>,
        mut caps: Vec<Capture>,
        report: &mut dyn FnMut(u64, u64),
    ) -> Fed {
        let mut fed = Fed::default();
        let mut pacer = Pacer::new(self.pace);
        let mut heads: Vec<Head> = caps.iter().map(|_| Head::new()).collect();
        // The earliest waiting frame first; of frames stamped alike, the
        // first capture's.
        let mut order = BinaryHeap::with_capacity(caps.len());
        for (i, (cap, head)) in caps.iter_mut().zip(&mut heads).enumerate() {
            if self.paging != Paging::None {
                cap.start_unmapping_behind();
            }
            cap.set_prefetch(Prefetch::Stream);
            if head.pull(cap, &mut fed.errors) {
                order.push(Reverse((head.ts, i)));
            }
        }
        let read = |caps: &[Capture]| caps.iter().map(Capture::bytes_read).sum::<u64>();
        while let Some(Reverse((ts, i))) = order.pop() {
            let head = &heads[i];
            if !pacer.wait(ts, self.stop) {
                // Stopped while pacing: the frame was not due yet.
                fed.interrupted = true;
                break;
            }
            let keep = match self.filter {
                Some(f) => head
                    .data
                    .len()
                    .min(f.run(&head.data, head.wire_len) as usize),
                None => head.data.len(),
            };
            fed.filtered += u64::from(keep == 0);
            if keep > 0 {
                engine.dispatch_wire(head.link, &head.data[..keep], head.wire_len, ts);
            }
            fed.frames += 1;
            if heads[i].pull(&mut caps[i], &mut fed.errors) {
                order.push(Reverse((heads[i].ts, i)));
            }
            if fed.frames % CHECK_EVERY != 0 {
                continue;
            }
            if fed.frames % PROGRESS_EVERY == 0 {
                report(read(&caps), fed.frames);
            }
            if self.stop.load(Ordering::Relaxed) {
                fed.interrupted = true;
                break;
            }
        }
        fed.bytes = read(&caps);
        fed
    }

    /// Feeds one capture's frames to `engine`, `fed` holding what the
    /// captures before it came to. `Ok(false)` if stopped early: at once
    /// for the only reader; fanout workers agree on where (`cut`, in bytes
    /// of all captures) and read up to there.
    fn feed<F: StreamFactory>(
        &self,
        engine: &mut Engine<F>,
        cap: &mut Capture,
        pacer: &mut Pacer,
        fed: &mut Fed,
        cut: &mut u64,
        report: &mut dyn FnMut(u64, u64),
    ) -> Result<bool, CaptureError> {
        let base = fed.bytes;
        let mut next_check = base.saturating_add(CHECK_BYTES);
        // Headers first, payloads later (or on a worker): see `Prefetch`.
        cap.set_prefetch(Prefetch::Stream);
        // Frames go to the engine as offsets into a shared block: the mapped
        // file, or the stream buffer they were read into (the reader then
        // moves on to another buffer instead of overwriting it, and reuses
        // it once the workers let go). Fetched again when a frame lies
        // outside it, i.e. once per stream buffer. A stream whose reads
        // bring only a few frames each (a trickling pipe) would move on at
        // nearly every frame: it is copied frame by frame instead.
        // The current block's address range, to place frames in it with
        // arithmetic alone (no call through the block per frame).
        let mut block: Option<Span> = None;
        let (mut stale, mut sharing, mut in_block, mut short) = (true, true, 0u32, 0u32);
        loop {
            if stale && sharing {
                let b = cap.current_block();
                block = Some(Span::of(&b));
                engine.set_block(Arc::new(MappedBlock(b)));
                in_block = 0;
            }
            stale = false;
            let Some(frame) = cap.next_frame() else {
                return Ok(true);
            };
            let frame = frame?;
            let ts = Timestamp(frame.ts_nanos);
            if !pacer.wait(ts, self.stop) && self.group.is_none() {
                // Stopped while pacing, the only reader: the frame was not
                // due yet, nor are those after it. (Fanout workers agree
                // on where to stop, below.)
                return Ok(false);
            }
            let link = LinkType::from_raw(frame.link_type);
            // The bytes the filter keeps: none, all, or the first so many.
            let keep = match self.filter {
                Some(f) => frame
                    .data
                    .len()
                    .min(f.run(frame.data, frame.wire_len) as usize),
                None => frame.data.len(),
            };
            fed.filtered += u64::from(keep == 0);
            match block.and_then(|s| s.offset_of(frame.data)) {
                Some(off) => {
                    if keep > 0 {
                        engine.dispatch_in_block_wire(link, off, keep, frame.wire_len, ts);
                    }
                    in_block += 1;
                }
                None => {
                    // The stream went on in another buffer: this one frame
                    // is copied, the next ones use the new buffer.
                    if keep > 0 {
                        engine.dispatch_wire(link, &frame.data[..keep], frame.wire_len, ts);
                    }
                    stale = true;
                    short = if in_block < MIN_FRAMES_PER_BLOCK {
                        short + 1
                    } else {
                        0
                    };
                    if short >= 3 {
                        sharing = false;
                        block = None;
                    }
                }
            }
            fed.frames += 1;
            let at = base + cap.bytes_read();
            if at >= *cut {
                return Ok(false);
            }
            // Every so many frames, or bytes (large frames), look around.
            if fed.frames % CHECK_EVERY != 0 && at < next_check {
                continue;
            }
            next_check = at.saturating_add(CHECK_BYTES);
            if fed.frames % PROGRESS_EVERY == 0 {
                report(at, fed.frames);
            }
            if let Some((me, group)) = self.group {
                group.keep_up(me, at, self.stop);
            }
            if self.stop.load(Ordering::Relaxed) && *cut == u64::MAX {
                let Some((me, group)) = self.group else {
                    return Ok(false);
                };
                *cut = group.agree_stop(me, at);
                if at >= *cut {
                    return Ok(false);
                }
            }
        }
    }
}

/// A capture's next frame, copied out of it, while merged captures wait
/// for their turns ([`Reading::feed_merged`]).
struct Head {
    ts: Timestamp,
    link: LinkType,
    wire_len: u32,
    data: Vec<u8>,
}

impl Head {
    fn new() -> Head {
        Head {
            ts: Timestamp(0),
            link: LinkType::Ethernet,
            wire_len: 0,
            data: Vec::new(),
        }
    }

    /// Reads `cap`'s next frame into this head: false at its end, or at
    /// an error (kept in `errors`).
    fn pull(&mut self, cap: &mut Capture, errors: &mut Vec<CaptureError>) -> bool {
        match cap.next_frame() {
            None => false,
            Some(Err(e)) => {
                errors.push(e);
                false
            }
            Some(Ok(f)) => {
                self.ts = Timestamp(f.ts_nanos);
                self.link = LinkType::from_raw(f.link_type);
                self.wire_len = f.wire_len;
                self.data.clear();
                self.data.extend_from_slice(f.data);
                true
            }
        }
    }
}

/// When the readers of a live capture stop: the first of a deadline, a
/// count of frames taken by all of them, and the stop flag.
#[cfg(target_os = "linux")]
#[derive(Clone, Copy)]
struct LiveEnd<'a> {
    deadline: Option<Instant>,
    /// Frames taken so far (counted only with a count to reach).
    taken: &'a std::sync::atomic::AtomicU64,
    stop: &'a AtomicBool,
    /// A reader failed: the others stop too (with a fanout group, the
    /// kernel would hand its flows to them mid-connection).
    failed: &'a AtomicBool,
    /// Frames and bytes all readers read, for progress.
    seen: &'a [std::sync::atomic::AtomicU64; 2],
}

/// What the readers of one live capture share: the counters and the flag
/// of their [`LiveEnd`].
#[cfg(target_os = "linux")]
#[derive(Default)]
struct LiveShared {
    taken: std::sync::atomic::AtomicU64,
    failed: AtomicBool,
    seen: [std::sync::atomic::AtomicU64; 2],
}

#[cfg(target_os = "linux")]
impl LiveShared {
    /// When readers of `what` stop, from now.
    fn end<'a>(&'a self, what: &LiveInput, stop: &'a AtomicBool) -> LiveEnd<'a> {
        LiveEnd {
            deadline: what.duration.map(|d| Instant::now() + d),
            taken: &self.taken,
            stop,
            failed: &self.failed,
            seen: &self.seen,
        }
    }
}

/// Sets `failed` if its reader unwinds (a stream handler panicked).
#[cfg(target_os = "linux")]
struct FailOnUnwind<'a>(&'a AtomicBool);

#[cfg(target_os = "linux")]
impl Drop for FailOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// The longest a live capture's reader waits for a block before it looks
/// at the stop flag and the clock again.
#[cfg(target_os = "linux")]
const LIVE_POLL: Duration = Duration::from_millis(100);

/// Feeds the blocks of a live capture to `engine`, each shared with the
/// workers in place, until `stop` is set, `what.duration` passed or
/// `what.count` frames went; calls `report(bytes, frames)` after each
/// block. While no block comes, packet time is moved on to the clock
/// (less what a block may still be holding back), so connections time
/// out and held data flushes without traffic. Stopping is this input's
/// normal end: the run is not marked interrupted.
#[cfg(target_os = "linux")]
fn feed_live<F: StreamFactory>(
    engine: &mut Engine<F>,
    cap: &mut weft_capture::Live,
    what: &LiveInput,
    until: &LiveEnd<'_>,
    error: &mut Option<String>,
    report: &mut dyn FnMut(u64, u64),
) -> Fed {
    let mut fed = Fed::default();
    let link = LinkType::from_raw(cap.link_type());
    let LiveEnd {
        deadline,
        taken,
        stop,
        failed,
        seen,
    } = *until;
    let _fail = FailOnUnwind(failed);
    let count = what.count.unwrap_or(u64::MAX);
    // A packet may wait in a block this long before the kernel hands it
    // over: idle time stays that far (and a margin) behind the clock, so
    // no frame comes stamped before a time already told.
    let lag = (what.options.block_timeout * 2 + Duration::from_millis(50)).as_nanos() as u64;
    while taken.load(Ordering::Relaxed) < count
        && !stop.load(Ordering::Relaxed)
        && !failed.load(Ordering::Relaxed)
    {
        let wait = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(LIVE_POLL),
                _ => break,
            },
            None => LIVE_POLL,
        };
        match cap.next_block(wait) {
            Ok(Some(block)) => {
                let before = (fed.frames, fed.bytes);
                let block = Arc::new(block);
                engine.set_block(block.clone());
                for f in block.frames() {
                    // Shared by the readers of a fanout group: the count
                    // is of all their frames.
                    if what.count.is_some() && taken.fetch_add(1, Ordering::Relaxed) >= count {
                        break;
                    }
                    let ts = Timestamp(f.ts_nanos);
                    engine.dispatch_in_block_wire(link, f.offset, f.len, f.wire_len, ts);
                    fed.frames += 1;
                    fed.bytes += f.len as u64;
                }
                // Everyone's, for progress.
                let (frames, bytes) = (fed.frames - before.0, fed.bytes - before.1);
                let frames = seen[0].fetch_add(frames, Ordering::Relaxed) + frames;
                let bytes = seen[1].fetch_add(bytes, Ordering::Relaxed) + bytes;
                report(bytes, frames);
            }
            Ok(None) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                engine.advance_time(Timestamp(now.saturating_sub(lag)));
            }
            Err(e) => {
                *error = Some(e.to_string());
                failed.store(true, Ordering::Relaxed);
                break;
            }
        }
    }
    fed
}

/// Sleeps so that frames go out at the capture's pace times a factor.
struct Pacer {
    factor: Option<f64>,
    /// Capture time and wall time the pace counts from.
    base: Option<(Timestamp, Instant)>,
    /// The previous frame's capture time.
    last: Timestamp,
}

/// A step of the capture's clock larger than this, or backwards, is a
/// jump (a clock reset, a frame stamped 1970, captures of different
/// days): pacing starts again from the frame after it instead of
/// sleeping the difference out.
const PACE_JUMP_NS: u64 = 60_000_000_000;

/// Longest single sleep while pacing: the stop flag is looked at between.
const PACE_SLICE: Duration = Duration::from_millis(50);

impl Pacer {
    fn new(factor: Option<f64>) -> Pacer {
        Pacer {
            factor: factor.filter(|f| *f > 0.0),
            base: None,
            last: Timestamp::default(),
        }
    }

    /// Waits until frame time `ts` is due, or `stop` is set.
    /// Returns false if `stop` cut the wait short (the frame is not due).
    /// Inline, with the pacing out of line: called for every frame, it
    /// cost an unpaced replay 1.3 % more instructions out of line.
    #[inline]
    fn wait(&mut self, ts: Timestamp, stop: &AtomicBool) -> bool {
        match self.factor {
            None => true,
            Some(factor) => self.wait_paced(factor, ts, stop),
        }
    }

    #[inline(never)]
    fn wait_paced(&mut self, factor: f64, ts: Timestamp, stop: &AtomicBool) -> bool {
        let jump = ts < self.last || ts.0 - self.last.0 > PACE_JUMP_NS;
        self.last = ts;
        if jump || self.base.is_none() {
            self.base = Some((ts, Instant::now()));
        }
        let Some((t0, i0)) = self.base else {
            return true;
        };
        let due = Duration::from_nanos((ts.0.saturating_sub(t0.0) as f64 / factor) as u64);
        while let Some(left) = due.checked_sub(i0.elapsed()).filter(|d| !d.is_zero()) {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep(left.min(PACE_SLICE));
        }
        true
    }
}

/// Digests of one capture reassembled inline with `cfg`, with the frame and
/// reassembly counters and the capture error that ended reading early, if
/// any (everything before it was processed).
pub fn digest_file(
    path: &std::path::Path,
    cfg: PipelineConfig,
) -> Result<
    (
        Vec<HalfDigest>,
        weft_engine::FrameStats,
        weft_reasm::Stats,
        Option<CaptureError>,
    ),
    RunError,
> {
    let mut opts = ReplayOptions {
        pipeline: cfg,
        ..ReplayOptions::default()
    };
    opts.engine.workers = Some(0);
    opts.output.digest = true;
    let mut out = replay(
        &[path.to_path_buf()],
        &opts,
        &AtomicBool::new(false),
        &mut |_, _, _| {},
    )?;
    let frames = out.stats.frames_total();
    let reasm = out.stats.reasm_total();
    Ok((out.digests, frames, reasm, out.capture_errors.pop()))
}

/// What [`read_only`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadOnly {
    /// Frames read.
    pub frames: u64,
    /// Their captured bytes.
    pub bytes: u64,
    /// [`sum8`](crate::output::sum8) of every frame, so no read is optimised away.
    pub checksum: u64,
}

/// What decides how frames reach the workers.
#[derive(Clone, Copy, Debug)]
struct Shape {
    workers: usize,
    cores: usize,
    /// Every capture is memory-mapped.
    mapped: bool,
    /// Replayed at the capture's pace.
    paced: bool,
    backpressure: Backpressure,
}

impl Shape {
    /// Whether to run fanout workers, and whether the dispatcher is
    /// worker 0 (neither: rings, or inline without workers), for
    /// `dispatch`; fanout asked where it cannot run is an error.
    fn choose(self, dispatch: Dispatch) -> Result<(bool, bool), RunError> {
        let Shape { workers, .. } = self;
        let blocking = self.backpressure == Backpressure::Block;
        // What only a dispatcher of its own gives: pacing, and never
        // stalling the capture (drop backpressure).
        let plain = workers > 0 && !self.paced && blocking;
        Ok(match dispatch {
            Dispatch::Ring => (false, false),
            Dispatch::Hybrid => (false, workers > 0),
            Dispatch::Fanout if !self.mapped || workers == 0 || !blocking => {
                return Err(RunError::NoFanout)
            }
            Dispatch::Fanout => (true, false),
            Dispatch::Auto if plain && self.mapped => (true, false),
            // No core for a dispatcher thread of its own.
            Dispatch::Auto => (false, plain && workers >= self.cores),
        })
    }
}

/// Table weights of a dispatcher that runs worker 0 among `workers`:
/// worker 0 gets 2 shares to the others' 5, as its thread also reads and
/// hashes every frame. Measured with 2 workers on the 1.1 GB capture of
/// `benches/README.md`, in pairs against rings: 2:5 0.86x the time, 4:5
/// 0.95x; against fanout workers: 2:5 1.16x, 1:5 1.31x.
fn hybrid_weights(workers: usize) -> Vec<u32> {
    let mut w = vec![5; workers];
    if let Some(first) = w.first_mut() {
        *first = 2;
    }
    w
}

/// Whether `cores` leave one for the read-ahead helper beside the busy
/// threads of an engine with `workers` (inline: the one reading thread;
/// with rings the dispatcher and each worker; fanout, or a dispatcher
/// that is worker 0 (`reader_works`): each worker, with one helper for
/// all), so it can read the capture's bytes ahead as well as map them
/// ([`Capture::start_readahead_reading`]).
fn core_to_spare(workers: usize, cores: usize, reader_works: bool) -> bool {
    let busy = match (workers, reader_works) {
        (0, _) => 1,
        (n, true) => n,
        (n, false) => n + 1,
    };
    cores > busy
}

/// The floor of a replay: opens the captures as a replay does, reads every
/// frame and touches each of its bytes once, and nothing else (no decoding,
/// no reassembly). A capture error ends that capture and the next is read,
/// as in a replay; the first is returned with the counts of all.
pub fn read_only(
    captures: &[PathBuf],
    readahead: bool,
    no_map: bool,
) -> (ReadOnly, Result<(), CaptureError>) {
    let mut r = ReadOnly::default();
    // Opened first, as a replay opens them; a damaged capture ends there
    // and the next is read, as in a replay (the first error is returned).
    let mut opened = Vec::with_capacity(captures.len());
    for p in captures {
        let cap = if no_map && p.as_os_str() != "-" {
            Capture::open_buffered(p)
        } else {
            Capture::open(p)
        };
        match cap {
            Ok(c) => opened.push(c),
            Err(e) => return (r, Err(e)),
        }
    }
    let mut first_error = Ok(());
    for mut cap in opened {
        if readahead {
            cap.start_readahead();
        }
        while let Some(frame) = cap.next_frame() {
            match frame {
                Ok(f) => {
                    r.frames += 1;
                    r.bytes += f.data.len() as u64;
                    r.checksum = r.checksum.wrapping_add(crate::output::sum8(f.data));
                }
                Err(e) => {
                    if first_error.is_ok() {
                        first_error = Err(e);
                    }
                    break;
                }
            }
        }
    }
    (r, first_error)
}

#[cfg(test)]
mod tests {
    use super::{
        core_to_spare, replay, Backpressure, Dispatch, Pacer, Paging, ReplayOptions, Shape, Span,
    };
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    use weft_wire::Timestamp;

    /// A block's span places exactly the slices inside it, as
    /// `SharedBytes::offset_of` does.
    #[test]
    fn a_span_places_only_what_lies_inside() {
        let bytes = [0u8; 64];
        let (block, other) = (&bytes[8..40], &bytes[..]);
        let span = Span::of(block);
        assert_eq!(span.offset_of(block), Some(0));
        assert_eq!(span.offset_of(&block[5..9]), Some(5));
        assert_eq!(span.offset_of(&block[32..]), Some(32), "empty, at the end");
        assert_eq!(span.offset_of(&other[..8]), None, "before");
        assert_eq!(span.offset_of(&other[30..42]), None, "running past the end");
        assert_eq!(span.offset_of(&other[41..]), None, "after");
    }

    /// Runs `f` on a thread; `None` if it has not returned after `ms`.
    fn within<T: Send + 'static>(ms: u64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_millis(ms)).ok()
    }

    /// Pacing sleeps out the capture's gaps, but not a jump of its clock
    /// (a frame stamped decades later), and a stop ends a wait at once,
    /// saying so (the frame is not due: the reader stops before it).
    #[test]
    fn pacing_skips_clock_jumps_and_stops_when_told() {
        let never = AtomicBool::new(false);
        let mut p = Pacer::new(Some(1.0));
        let t = Instant::now();
        assert!(p.wait(Timestamp(0), &never));
        assert!(p.wait(Timestamp(1_700_000_000 * 1_000_000_000), &never));
        assert!(p.wait(
            Timestamp(1_700_000_000 * 1_000_000_000 + 20_000_000),
            &never,
        ));
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(20),
            "the gap after the jump is paced"
        );
        assert!(
            took < Duration::from_secs(10),
            "the jump is not slept out: {took:?}"
        );
        // A 30 s gap (not a jump), cut short by a stop.
        let stop = AtomicBool::new(false);
        let mut p = Pacer::new(Some(1.0));
        p.wait(Timestamp(0), &stop);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                stop.store(true, Ordering::Relaxed);
            });
            let t = Instant::now();
            assert!(!p.wait(Timestamp(30_000_000_000), &stop), "cut short");
            assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        });
    }

    /// A run of fanout workers stopped midway: every worker stops at the
    /// same frame, so together they processed each frame read once.
    #[test]
    fn a_stopped_fanout_run_stops_every_worker_at_the_same_frame() {
        let cfg = weft_gen::GenConfig {
            seed: 3,
            conns: 4_000,
            concurrent: 500,
            min_bytes: 500,
            max_bytes: 8_000,
            ..weft_gen::GenConfig::default()
        };
        let path = std::env::temp_dir().join(format!("weft-stop-{}.pcap", std::process::id()));
        weft_gen::generate(&cfg, std::fs::File::create(&path).unwrap()).unwrap();
        for workers in [2, 3] {
            let mut opts = ReplayOptions::default();
            opts.engine.workers = Some(workers);
            opts.engine.pin = false;
            let p = path.clone();
            let out = within(60_000, move || {
                let stop = AtomicBool::new(false);
                replay(&[p], &opts, &stop, &mut |_, _, _| {
                    stop.store(true, Ordering::Relaxed)
                })
                .unwrap()
            })
            .expect("a stopped run hung");
            assert_eq!(out.dispatch, "fanout");
            assert!(out.interrupted, "{workers} workers");
            let read = out.stats.dispatch.frames;
            let processed: u64 = out.stats.frames.iter().map(|f| f.frames).sum();
            assert_eq!(processed, read, "{workers} workers: each frame read once");
            let all = cfg.conns;
            assert!(read < all * 10, "stopped early: {read} frames");
        }
        let _ = std::fs::remove_file(&path);
    }

    /// A stream handler panic on the reading thread (inline, or worker 0
    /// of a dispatcher that runs it), while fed or in `finish`'s last
    /// deliveries, comes back as worker 0's error with the panic's
    /// message, after the other workers stopped; a panic that did not
    /// come from a handler goes on unwinding; a run without one gives the
    /// report.
    #[test]
    fn a_handler_panic_on_the_reading_thread_is_an_error() {
        use super::{run_on_this_thread, RunError};
        use weft_engine::{Engine, EngineBuilder, EngineError};
        use weft_reasm::{ConnInfo, Context, ScatterGather, Segment, Stream, StreamFactory};
        /// Panics on its first delivery, or (`at_end`) when completed.
        struct Boom(bool);
        impl Stream for Boom {
            fn reassembled(&mut self, _: &mut ScatterGather<'_>, _: &Context) {
                assert!(self.0, "handler failure on purpose");
            }
            fn complete(&mut self, _: &Context) -> bool {
                panic!("handler failure on purpose, at the end");
            }
        }
        struct Booms(bool);
        impl StreamFactory for Booms {
            type Stream = Boom;
            fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Boom {
                Boom(self.0)
            }
        }
        let pcap = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/sample.pcap"
        ))
        .unwrap();
        // The first `frames` frames, then a flush or not.
        let feeder = move |frames: usize, flush: bool| {
            let pcap = pcap.clone();
            move |e: &mut Engine<Booms>| {
                let mut cap = weft_capture::Capture::from_bytes(pcap, "mem").unwrap();
                for _ in 0..frames {
                    let Some(f) = cap.next_frame() else { break };
                    let f = f.unwrap();
                    let link = weft_wire::LinkType::from_raw(f.link_type);
                    e.dispatch(link, f.data, Timestamp(f.ts_nanos));
                }
                if flush {
                    e.flush();
                }
            }
        };
        for hybrid in [false, true] {
            // Deliveries while fed; then only `complete`s, of connections
            // still open after 20 frames, in `finish`.
            for (frames, flush, at_end) in [(usize::MAX, true, false), (20, false, true)] {
                let workers = if hybrid { 2 } else { 0 };
                let b = EngineBuilder::new().workers(workers).pin(false);
                let engine = b.dispatcher_works(hybrid).build(|_| Booms(at_end)).unwrap();
                let feed = feeder(frames, flush);
                let ran = within(30_000, move || {
                    run_on_this_thread(engine, feed)
                        .and_then(|(_, report)| report.map(|_| ()).map_err(RunError::Engine))
                });
                let what = format!("hybrid {hybrid}, {frames} frames, flush {flush}");
                match ran.expect("nothing hangs") {
                    Err(RunError::Engine(EngineError::WorkerPanicked { worker, message })) => {
                        assert_eq!(worker, 0, "{what}");
                        assert!(
                            message.contains("handler failure on purpose"),
                            "{what}: {message}"
                        );
                    }
                    _ => panic!("{what}: expected worker 0's panic"),
                }
            }
        }
        // Not a handler's: unwinds on, with its own payload.
        let engine = EngineBuilder::new()
            .workers(0)
            .build(|_| Booms(true))
            .unwrap();
        let bug = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_on_this_thread(engine, |_| panic!("a reading bug"))
        }));
        let payload = bug.err().expect("unwound");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"a reading bug"));
        let engine = EngineBuilder::new()
            .workers(0)
            .build(|_| Booms(true))
            .unwrap();
        let (n, report) = run_on_this_thread(engine, |_| 7).ok().unwrap();
        assert_eq!(n, 7);
        assert!(report.is_ok());
    }

    /// Auto picks fanout for mapped captures, else a working dispatcher
    /// when no core is left for one of its own, else rings; pacing and
    /// drop backpressure keep a dispatcher of its own. Asked for, each
    /// mode runs where it can.
    #[test]
    fn auto_picks_fanout_then_a_working_dispatcher_then_rings() {
        let base = Shape {
            workers: 2,
            cores: 2,
            mapped: true,
            paced: false,
            backpressure: Backpressure::Block,
        };
        let auto = |s: Shape| s.choose(Dispatch::Auto).ok();
        const FANOUT: Option<(bool, bool)> = Some((true, false));
        const HYBRID: Option<(bool, bool)> = Some((false, true));
        const RING: Option<(bool, bool)> = Some((false, false));
        assert_eq!(auto(base), FANOUT);
        let unmapped = Shape {
            mapped: false,
            ..base
        };
        assert_eq!(auto(unmapped), HYBRID);
        assert_eq!(
            auto(Shape {
                workers: 3,
                ..unmapped
            }),
            HYBRID
        );
        assert_eq!(
            auto(Shape {
                cores: 4,
                ..unmapped
            }),
            RING
        );
        assert_eq!(
            auto(Shape {
                workers: 0,
                ..unmapped
            }),
            RING
        );
        assert_eq!(
            auto(Shape {
                paced: true,
                ..unmapped
            }),
            RING
        );
        assert_eq!(
            auto(Shape {
                paced: true,
                ..base
            }),
            RING
        );
        let dropping = Shape {
            backpressure: Backpressure::Drop,
            ..base
        };
        assert_eq!(auto(dropping), RING);
        assert_eq!(
            auto(Shape {
                mapped: false,
                ..dropping
            }),
            RING
        );
        // Asked for.
        assert_eq!(base.choose(Dispatch::Ring).ok(), RING);
        assert_eq!(base.choose(Dispatch::Hybrid).ok(), HYBRID);
        assert_eq!(dropping.choose(Dispatch::Hybrid).ok(), HYBRID);
        assert_eq!(
            Shape { workers: 0, ..base }.choose(Dispatch::Hybrid).ok(),
            RING
        );
        assert_eq!(base.choose(Dispatch::Fanout).ok(), FANOUT);
        assert!(unmapped.choose(Dispatch::Fanout).is_err());
        assert!(dropping.choose(Dispatch::Fanout).is_err());
        assert!(Shape { workers: 0, ..base }
            .choose(Dispatch::Fanout)
            .is_err());
    }

    /// The helper reads ahead only beside threads that leave it a core:
    /// inline on two cores, not 1 or 2 workers there (their dispatcher
    /// makes the third thread), 2 workers on four.
    #[test]
    fn the_helper_reads_ahead_only_with_a_core_to_spare() {
        assert!(core_to_spare(0, 2, false));
        assert!(!core_to_spare(0, 1, false));
        assert!(!core_to_spare(1, 2, false));
        assert!(!core_to_spare(2, 2, false));
        assert!(!core_to_spare(2, 3, false));
        assert!(core_to_spare(2, 4, false));
        // Fanout, or a working dispatcher: none beside the workers.
        assert!(core_to_spare(1, 2, true));
        assert!(!core_to_spare(2, 2, true));
        assert!(core_to_spare(2, 3, true));
        // Without a core to spare, fanout workers unmap behind themselves.
        assert_eq!(Paging::of(true, true), Paging::HelperReading);
        assert_eq!(Paging::of(true, false), Paging::HelperReading);
        assert_eq!(Paging::of(false, true), Paging::Behind);
        assert_eq!(Paging::of(false, false), Paging::Helper);
    }
}
