//! The engine: a dispatcher on the caller's thread feeding pinned workers.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use weft_reasm::{HeapPool, StreamFactory};
use weft_ring::{channel, Producer};

use weft_wire::{
    decode, decode_ip_in, peek_key_at, peek_tcp, Decoded, Defragmenter, FlowKey, LinkType,
    Timestamp, Zone,
};

use crate::pipeline::{captured_whole, Pipeline, PipelineConfig};
use crate::stats::{DispatchStats, EngineStats, Shared, WorkerSnapshot};
use crate::worker::{self, Block, Desc, Done, Msg, Owned};

/// Entries of the indirection table from flow hash to worker, as a NIC's RETA.
pub const RETA_SIZE: usize = 128;

/// The most workers an engine runs: one per entry of the indirection
/// table (a worker past it would get no flow).
pub const MAX_WORKERS: usize = RETA_SIZE;

/// The largest ring, in slots (each a frame descriptor of a few dozen
/// bytes): 4 Mi slots hold seconds of traffic at any rate a core takes.
pub const MAX_RING_CAPACITY: usize = 1 << 22;

/// How the dispatcher hashes a flow to pick its worker. Both are symmetric
/// (the two directions of a connection go to the same worker), and the
/// output is the same either way while no memory limit binds; only the
/// spread of flows over workers differs (and with it where a worker's
/// share of the limits is reached: see the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DispatchHash {
    /// The symmetric Toeplitz hash NICs use for RSS, with its well-known
    /// key, so software dispatch agrees with the hardware's. Anyone can
    /// compute it, so traffic can be crafted to land on one worker: its
    /// flows are then served by one core while the others idle.
    #[default]
    Toeplitz,
    /// A hash of the canonical flow key under a seed drawn when the engine
    /// is built (the seeded hash the connection tables use), so an outsider
    /// cannot aim flows at a worker. For captures with nothing to agree with.
    Keyed,
}

/// What the dispatcher does when a worker's ring is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backpressure {
    /// Wait for room: nothing is lost (replaying files).
    #[default]
    Block,
    /// Drop the frame and count it: never stall the capture (live traffic).
    /// The dispatcher never waits, not even to hand a worker its ticks or
    /// block switches (only the newest of each is kept for it until its
    /// ring has room). At [`Engine::finish`] what is still gathered waits
    /// for room: capture is over.
    Drop,
}

/// Why an engine could not be built or finished.
#[derive(Debug)]
pub enum EngineError {
    /// A worker thread could not be started.
    Spawn(std::io::Error),
    /// A setting outside what the engine can do (more workers than
    /// [`MAX_WORKERS`], a ring larger than [`MAX_RING_CAPACITY`]).
    Setting(String),
    /// A stream handler panicked on a worker; the other workers finished.
    WorkerPanicked {
        /// Which worker.
        worker: usize,
        /// The panic message.
        message: String,
    },
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Spawn(e) => write!(f, "cannot start a worker thread: {e}"),
            EngineError::Setting(s) => f.write_str(s),
            EngineError::WorkerPanicked { worker, message } => {
                write!(f, "worker {worker} panicked: {message}")
            }
        }
    }
}

impl std::error::Error for EngineError {}

/// Configures and starts an [`Engine`].
#[derive(Clone, Debug)]
pub struct EngineBuilder {
    workers: usize,
    cores: Option<Vec<usize>>,
    pin: bool,
    ring_capacity: usize,
    batch: usize,
    backpressure: Backpressure,
    pipeline: PipelineConfig,
    tick_ns: u64,
    dispatch_hash: DispatchHash,
    idle_sleep: std::time::Duration,
    dispatcher_works: bool,
    weights: Option<Vec<u32>>,
    divided: bool,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cores: None,
            pin: true,
            ring_capacity: 4096,
            batch: 64,
            backpressure: Backpressure::Block,
            pipeline: PipelineConfig::default(),
            tick_ns: 1_000_000,
            dispatch_hash: DispatchHash::Toeplitz,
            idle_sleep: worker::IDLE_SLEEP,
            dispatcher_works: false,
            weights: None,
            divided: false,
        }
    }
}

impl EngineBuilder {
    /// A builder with the defaults: one pinned worker per core, 4096-slot
    /// rings, batches of 64, blocking backpressure.
    pub fn new() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Number of worker threads; `0` runs everything on the calling thread
    /// (inline mode). Default: one per available core. At most
    /// [`MAX_WORKERS`], or building fails.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Core ids to pin workers to, in worker order (cycled if shorter).
    /// Default: worker `i` on the `i`-th core the system reports.
    pub fn cores(mut self, cores: Vec<usize>) -> Self {
        self.cores = Some(cores);
        self
    }

    /// Pin workers to cores (default `true`). A failed pin is not an
    /// error: the worker runs unpinned and [`EngineStats::pinned`] says so.
    pub fn pin(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// Settings no engine can run with.
    fn check(&self) -> Result<(), EngineError> {
        if self.workers > MAX_WORKERS {
            return Err(EngineError::Setting(format!(
                "{} workers: at most {MAX_WORKERS} (one per entry of the indirection table)",
                self.workers
            )));
        }
        if self.ring_capacity > MAX_RING_CAPACITY {
            return Err(EngineError::Setting(format!(
                "a ring of {} slots: at most {MAX_RING_CAPACITY}",
                self.ring_capacity
            )));
        }
        if let Some(w) = &self.weights {
            if w.len() != self.workers.max(1) {
                return Err(EngineError::Setting(format!(
                    "{} table weights for {} workers: one per worker",
                    w.len(),
                    self.workers.max(1)
                )));
            }
            if w.iter().all(|&x| x == 0) {
                return Err(EngineError::Setting(
                    "every table weight is 0: no worker would get a flow".to_owned(),
                ));
            }
            if self.divided {
                // They would divide the limits, not the flows.
                return Err(EngineError::Setting(
                    "table weights with a divided source: its divider places the flows".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// Ring settings no engine with rings can run with: with drop
    /// backpressure, a batch must fit in half a ring, or frames are
    /// dropped while their worker is idle (a batch larger than the ring
    /// never fits). Engines without rings (inline, fanout, a dispatcher
    /// whose only worker is its own) take any.
    fn check_rings(&self) -> Result<(), EngineError> {
        let rings = self.workers - usize::from(self.dispatcher_works && self.workers > 0);
        let slots = self.ring_capacity.next_power_of_two();
        if self.backpressure == Backpressure::Drop && rings > 0 && self.batch > slots / 2 {
            return Err(EngineError::Setting(format!(
                "drop backpressure with batches of {} frames into rings of {slots} slots: \
                 a batch must fit in half a ring (at most {} frames), or frames are \
                 dropped while their worker is idle",
                self.batch,
                slots / 2
            )));
        }
        Ok(())
    }

    /// Each worker's pipeline configuration: the engine's, with its memory
    /// limits divided among the workers, equally or, with table weights,
    /// in proportion to each worker's entries in the table (its share of
    /// the flows).
    fn worker_configs(&self) -> Vec<PipelineConfig> {
        let n = self.workers.max(1);
        match &self.weights {
            Some(w) if w.len() == n => {
                let counts = shares(
                    &w.iter().map(|&x| u64::from(x)).collect::<Vec<_>>(),
                    RETA_SIZE,
                );
                split_limits(&self.pipeline, n, |v, i| {
                    (v as u128 * counts[i] as u128 / RETA_SIZE as u128) as usize
                })
            }
            _ => split_limits(&self.pipeline, n, |v, _| v / n),
        }
    }

    /// The indirection table: worker `i` gets a share of the entries in
    /// proportion to its weight (equal shares without weights), at least
    /// one if its weight is not zero, and the entries of each worker are
    /// spread over the table rather than bunched (smooth weighted round
    /// robin), so that flows hashing close together still spread.
    fn reta(&self) -> [u16; RETA_SIZE] {
        let n = self.workers.max(1);
        let mut reta = [0u16; RETA_SIZE];
        let weights: Vec<u64> = match &self.weights {
            Some(w) if w.len() == n => w.iter().map(|&x| u64::from(x)).collect(),
            _ => {
                // Equal shares: round robin, as a NIC's default table.
                for (i, r) in reta.iter_mut().enumerate() {
                    *r = (i % n) as u16;
                }
                return reta;
            }
        };
        let counts = shares(&weights, RETA_SIZE);
        let mut credit = vec![0i64; n];
        let total = RETA_SIZE as i64;
        for r in reta.iter_mut() {
            for (c, &k) in credit.iter_mut().zip(&counts) {
                *c += k as i64;
            }
            let best = (0..n)
                .max_by_key(|&i| (credit[i], std::cmp::Reverse(i)))
                .unwrap_or(0);
            credit[best] -= total;
            *r = best as u16;
        }
        reta
    }

    /// Slots in each worker's ring (rounded up to a power of two; at most
    /// [`MAX_RING_CAPACITY`], or building fails).
    pub fn ring_capacity(mut self, n: usize) -> Self {
        self.ring_capacity = n.max(2);
        self
    }

    /// Frames gathered per worker before one push into its ring (0 is
    /// taken as 1). With [`Backpressure::Drop`] at most half the ring's
    /// (rounded) capacity, or building fails: a larger batch would not
    /// fit a ring its worker had just emptied, and frames would be
    /// dropped while the worker idles.
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// What to do when a ring is full.
    pub fn backpressure(mut self, b: Backpressure) -> Self {
        self.backpressure = b;
        self
    }

    /// Each worker's pipeline configuration. Memory limits are per engine:
    /// they are divided among the workers (in proportion to their shares
    /// of the table, with [`table_weights`](Self::table_weights)).
    pub fn pipeline(mut self, cfg: PipelineConfig) -> Self {
        self.pipeline = cfg;
        self
    }

    /// How often (packet time) workers are told the time, so their timers
    /// run whether their own flows carry time or not. Each tick goes into
    /// every ring at once, with the frames gathered for it. Default 1 ms.
    pub fn tick_ns(mut self, ns: u64) -> Self {
        self.tick_ns = ns.max(1);
        self
    }

    /// How flows are hashed to workers (default [`DispatchHash::Toeplitz`]).
    pub fn dispatch_hash(mut self, h: DispatchHash) -> Self {
        self.dispatch_hash = h;
        self
    }

    /// The longest a worker whose ring is empty sleeps before looking
    /// again (default 200 µs). An idle worker spins briefly, yields, then
    /// sleeps for spells growing from 50 µs up to this; `Duration::ZERO`
    /// keeps it yielding instead, for cores given to the engine alone.
    ///
    /// Durations under 1 µs count as 1 µs, and the kernel may add its
    /// timer slack (50 µs by default) to each sleep.
    ///
    /// A ring must hold what arrives while its worker sleeps: at the
    /// default, a burst of 4 M frames/s to one worker right after a quiet
    /// spell fills 800 of a 4,096-slot ring (the default) before the worker
    /// looks, about 1,000 with the timer slack.
    /// Idle, each worker wakes a few thousand times a second: on the
    /// 2-vCPU machine of README two idle workers used 7-9 % of a core
    /// each, against a whole core each when yielding (the
    /// `idle_workers` test).
    pub fn idle_sleep(mut self, max: std::time::Duration) -> Self {
        self.idle_sleep = max;
        self
    }

    /// Runs worker 0 on the dispatcher's own thread (default `false`): the
    /// frames of its flows never cross a ring or a core, and it needs no
    /// thread; workers 1 and on run on their own threads as usual. For a
    /// machine with no core to spare for a dispatcher: `n` workers then
    /// keep `n` cores busy, not `n + 1`. Give worker 0 a smaller share of
    /// the flows ([`table_weights`](Self::table_weights)), since its
    /// thread also reads and hashes every frame.
    ///
    /// Worker 0 then behaves as inline mode does: a stream handler that
    /// panics on it unwinds through the dispatch call that processed its
    /// frame, and [`Engine::finish`] returns that as an error once the
    /// other workers finished; an engine dropped without `finish` does
    /// not complete worker 0's open streams (ring workers complete
    /// theirs, with every frame dispatched to them). The dispatcher's thread is not pinned (it is the
    /// caller's). Under [`Backpressure::Drop`] the dispatcher still never
    /// waits for a ring, but it does take the time of worker 0's frames:
    /// for live capture, where that time is the capture's, prefer a
    /// dispatcher that does nothing else. With [`workers`](Self::workers)
    /// `0` this changes nothing (inline mode), nor does it for
    /// [`fanout`](Self::fanout) engines (they have no dispatcher).
    ///
    /// ```
    /// use weft_engine::EngineBuilder;
    /// use weft_reasm::{ConnInfo, Context, ScatterGather, Segment, Stream, StreamFactory};
    /// use weft_wire::{LinkType, Timestamp};
    ///
    /// struct Count(u64);
    /// impl Stream for Count {
    ///     fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
    ///         self.0 += sg.lengths().0 as u64;
    ///     }
    /// }
    /// struct Factory;
    /// impl StreamFactory for Factory {
    ///     type Stream = Count;
    ///     fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Count {
    ///         Count(0)
    ///     }
    /// }
    ///
    /// // Two workers on two cores: this thread reads, dispatches and is
    /// // worker 0 (2 shares of the flows); worker 1 has a thread (5 shares).
    /// let mut engine = EngineBuilder::new()
    ///     .workers(2)
    ///     .dispatcher_works(true)
    ///     .table_weights(vec![2, 5])
    ///     .build(|_| Factory)
    ///     .unwrap();
    /// for _ in 0..10 {
    ///     engine.dispatch(LinkType::Ethernet, &[0u8; 60], Timestamp(0)); // stand-ins
    /// }
    /// let report = engine.finish().unwrap();
    /// assert_eq!(report.stats.dispatch.frames, 10);
    /// assert_eq!(report.factories.len(), 2);
    /// assert!(!report.stats.pinned[0]); // the caller's thread
    /// ```
    pub fn dispatcher_works(mut self, yes: bool) -> Self {
        self.dispatcher_works = yes;
        self
    }

    /// For [`fanout`](Self::fanout): the source is already divided among
    /// the workers by flow, each reading its own part (a NIC's RSS queues,
    /// an `AF_PACKET` fanout group hashing flows symmetrically), so each
    /// keeps every flow it reads instead of picking its share of every
    /// frame; and as the workers read different frames, the report's
    /// dispatch counters are their sum. Each connection must reach one
    /// worker only, both directions and every fragment: the divider's
    /// business. Default `false`.
    pub fn divided(mut self, yes: bool) -> Self {
        self.divided = yes;
        self
    }

    /// Relative weights of the workers in the indirection table, one per
    /// worker (default: equal). Worker `i` gets about `weights[i] / sum`
    /// of the table's [`RETA_SIZE`] entries, so about that share of the
    /// flows; a worker of weight `0` gets none. Building fails if the
    /// count differs from [`workers`](Self::workers) (one for inline mode,
    /// where it changes nothing) or every weight is `0`.
    pub fn table_weights(mut self, weights: Vec<u32>) -> Self {
        self.weights = Some(weights);
        self
    }

    /// Starts the engine; `factory(i)` makes worker `i`'s stream factory.
    pub fn build<F, M>(self, mut factory: M) -> Result<Engine<F>, EngineError>
    where
        F: StreamFactory + Send + 'static,
        M: FnMut(usize) -> F,
    {
        self.check()?;
        self.check_rings()?;
        if self.workers == 0 {
            let inline = Inline::new(self.pipeline.clone(), factory(0));
            let keyed = self.dispatch_hash.seed();
            return Ok(Engine::new(
                self,
                Mode::Inline(Box::new(inline)),
                Vec::new(),
                keyed,
            ));
        }
        let n = self.workers;
        let cfgs = self.worker_configs();
        let core_ids = core_affinity::get_core_ids().unwrap_or_default();
        let mut workers = Vec::with_capacity(n);
        let mut shared = Vec::with_capacity(n);
        let mut local = None;
        for (i, cfg) in cfgs.into_iter().enumerate() {
            let sh = Arc::new(Shared::default());
            if i == 0 && self.dispatcher_works {
                // Worker 0 on this thread.
                local = Some(Box::new(Fanout::new(cfg, factory(0), 0)));
                // Its slot holds no ring and no thread.
                workers.push(WorkerHandle {
                    tx: None,
                    pending: Vec::new(),
                    handle: None,
                    told: Timestamp(0),
                });
                shared.push(sh);
                continue;
            }
            let (tx, rx) = channel::<Msg>(self.ring_capacity);
            let pin = self.pin_for(i, &core_ids);
            let (f, s) = (factory(i), sh.clone());
            let idle = self.idle_sleep;
            let handle = std::thread::Builder::new()
                .name(format!("weft-worker-{i}"))
                .spawn(move || worker::run(rx, cfg, f, s, pin, idle))
                .map_err(EngineError::Spawn)?;
            workers.push(WorkerHandle {
                tx: Some(tx),
                pending: Vec::new(),
                handle: Some(handle),
                told: Timestamp(0),
            });
            shared.push(sh);
        }
        let keyed = self.dispatch_hash.seed();
        let mut engine = Engine::new(self, Mode::Workers(workers), shared, keyed);
        engine.local = local;
        Ok(engine)
    }

    /// Runs a fanout engine: every worker reads the whole input itself,
    /// through `read`, and keeps only the frames of its own flows; there is
    /// no dispatcher thread and no ring.
    ///
    /// For inputs every worker can read at once: a memory-mapped capture
    /// (each worker walks it from the start), bytes in memory, or a live
    /// source that hands every worker its own copy. Each worker's thread
    /// calls `read` with an [`Engine`] to feed exactly as any engine is fed
    /// ([`set_block`](Engine::set_block), [`dispatch_in_block`](Engine::dispatch_in_block),
    /// [`dispatch`](Engine::dispatch)); it hashes every frame as a
    /// dispatcher would (same hash, same indirection table, same
    /// defragmentation, same time ticks) and processes, through inline
    /// mode's look-ahead batches, only the frames the table gives to it,
    /// their segments carrying the dispatch hash as a ring worker's do. So
    /// each connection is still reassembled on exactly one worker, with the
    /// same output as the other modes, provided every worker is fed the
    /// same frames in the same order.
    ///
    /// Against a dispatcher feeding rings, each worker pays for reading and
    /// hashing every frame, and saves the hand-over of its own frames from
    /// another core, and the dispatcher's core. Measured on 2 cores (the
    /// 1.1 GB capture of README, 10,000 live flows) with the file in the
    /// page cache as 2 MiB folios: 2 fanout workers took 0.81-0.85x the
    /// time of 2 workers with rings and 0.70x that of inline mode; 1 fanout
    /// worker 1.07-1.08x inline (it also hashes every frame). As 4 KiB pages, where
    /// reading a mapping costs twice as much and each worker pays it:
    /// 1.12x rings and 1.12x inline. With a worker per core, leave the
    /// capture's page handling to the readers themselves (one of them
    /// calling `weft_capture::Capture::start_unmapping_behind`) rather than
    /// a read-ahead helper thread, which takes its time from the workers:
    /// 0.97x the time (2 MiB folios) and 0.86x (4 KiB pages).
    ///
    /// `factory(i)` makes worker `i`'s stream factory (on the calling
    /// thread); `read` runs on the workers' threads, so it and the factories
    /// must be shareable and sendable. [`workers`](Self::workers) `0` runs
    /// one worker. Memory limits are divided among the workers as for
    /// workers with rings; each worker's dispatcher part defragments every
    /// IP fragment it reads (so each holds up to the defragmenter's limits).
    ///
    /// Returns the report, with the dispatcher counters of worker 0 (the
    /// others count the same, when fed the same frames; their sum for a
    /// [`divided`](Self::divided) source) and each worker's
    /// own counters, and what `read` returned on each worker, in worker
    /// order. A panic on a worker (in a stream handler or in `read`) is
    /// returned as [`EngineError::WorkerPanicked`] once the other workers
    /// finished. The threads start reading only once all of them were
    /// started; if one cannot be, none reads and the error is
    /// [`EngineError::Spawn`].
    ///
    /// ```
    /// use weft_engine::EngineBuilder;
    /// use weft_reasm::{ConnInfo, Context, ScatterGather, Segment, Stream, StreamFactory};
    /// use weft_wire::{LinkType, Timestamp};
    ///
    /// struct Count(u64);
    /// impl Stream for Count {
    ///     fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
    ///         self.0 += sg.lengths().0 as u64;
    ///     }
    /// }
    /// struct Factory;
    /// impl StreamFactory for Factory {
    ///     type Stream = Count;
    ///     fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Count {
    ///         Count(0)
    ///     }
    /// }
    ///
    /// let frames: Vec<Vec<u8>> = vec![vec![0u8; 60]; 10]; // stand-ins for a capture's frames
    /// let (report, seen) = EngineBuilder::new()
    ///     .workers(2)
    ///     .fanout(|_| Factory, |engine| {
    ///         for f in &frames {
    ///             engine.dispatch(LinkType::Ethernet, f, Timestamp(0));
    ///         }
    ///         frames.len()
    ///     })
    ///     .unwrap();
    /// assert_eq!(seen, vec![10, 10]); // each worker read every frame
    /// assert_eq!(report.stats.dispatch.frames, 10);
    /// assert_eq!(report.factories.len(), 2);
    /// ```
    pub fn fanout<F, M, R, W>(
        self,
        mut factory: M,
        read: W,
    ) -> Result<(EngineReport<F>, Vec<R>), EngineError>
    where
        F: StreamFactory + Send,
        M: FnMut(usize) -> F,
        R: Send,
        W: Fn(&mut Engine<F>) -> R + Sync,
    {
        self.check()?;
        let n = self.workers.max(1);
        let cfgs = self.worker_configs();
        let this_divided = self.divided;
        // One seed for all: every worker must agree on every flow's worker.
        let keyed = self.dispatch_hash.seed();
        let core_ids = core_affinity::get_core_ids().unwrap_or_default();
        let shared: Vec<Arc<Shared>> = (0..n).map(|_| Arc::new(Shared::default())).collect();
        let factories: Vec<F> = (0..n).map(&mut factory).collect();
        let this = &self;
        // Every thread waits at this gate until all were started: if one
        // cannot be, none reads (a reader may wait for the others, as the
        // replay tool's workers keep abreast, and would wait forever).
        let gate = Gate::default();
        let (results, spawn_error) = std::thread::scope(|scope| {
            let mut handles = Vec::with_capacity(n);
            let mut spawn_error = None;
            for ((i, f), cfg) in factories.into_iter().enumerate().zip(cfgs) {
                let shared = shared.clone();
                let pin = this.pin_for(i, &core_ids);
                let (read, gate) = (&read, &gate);
                let run = move || -> Option<Result<(EngineReport<F>, R), String>> {
                    if !gate.wait() {
                        return None;
                    }
                    let work = || {
                        let pinned = pin.is_some_and(core_affinity::set_for_current);
                        shared[i].counters.set_pinned(pinned);
                        let mode = Mode::Fanout(Box::new(Fanout::new(cfg, f, i)));
                        let mut engine = Engine::new(this.clone(), mode, shared, keyed);
                        if this.divided {
                            // Every flow it reads is its own.
                            engine.reta = [i as u16; RETA_SIZE];
                        }
                        let r = read(&mut engine);
                        engine.finish().map(|report| (report, r))
                    };
                    let done = catch_unwind(AssertUnwindSafe(work));
                    Some(
                        done.map_err(worker::panic_message)
                            .and_then(|done| done.map_err(|e| e.to_string())),
                    )
                };
                match std::thread::Builder::new()
                    .name(format!("weft-fanout-{i}"))
                    .spawn_scoped(scope, run)
                {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        spawn_error = Some(e);
                        break;
                    }
                }
            }
            gate.open(spawn_error.is_none());
            let results: Vec<_> = handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|e| Some(Err(worker::panic_message(e))))
                })
                .collect();
            (results, spawn_error)
        });
        if let Some(e) = spawn_error {
            return Err(EngineError::Spawn(e));
        }
        let mut report = EngineReport {
            factories: Vec::with_capacity(n),
            stats: EngineStats::default(),
        };
        let mut out = Vec::with_capacity(n);
        for (i, r) in results.into_iter().enumerate() {
            let r = r.unwrap_or_else(|| Err("not started".to_owned()));
            let (mut part, r) =
                r.map_err(|message| EngineError::WorkerPanicked { worker: i, message })?;
            if this_divided {
                report.stats.dispatch.merge(&part.stats.dispatch);
            } else if i == 0 {
                // Every worker read the same frames: its counters are all.
                report.stats.dispatch = std::mem::take(&mut part.stats.dispatch);
            }
            report.stats.frames.append(&mut part.stats.frames);
            report.stats.reasm.append(&mut part.stats.reasm);
            report.stats.pinned.append(&mut part.stats.pinned);
            report.factories.append(&mut part.factories);
            out.push(r);
        }
        Ok((report, out))
    }

    fn pin_for(&self, i: usize, ids: &[core_affinity::CoreId]) -> Option<core_affinity::CoreId> {
        if !self.pin || ids.is_empty() {
            return None;
        }
        match &self.cores {
            Some(c) if !c.is_empty() => {
                let want = c[i % c.len()];
                ids.iter().copied().find(|id| id.id == want)
            }
            _ => Some(ids[i % ids.len()]),
        }
    }
}

/// A plain TCP frame's dispatch hash (the symmetric Toeplitz one, or the
/// keyed one under `seed`), IP header offset and folded VLAN IDs, from the
/// header peek; `None` for frames that need the full decoder.
#[inline]
fn peek_dispatch(
    seed: Option<&hashbrown::DefaultHashBuilder>,
    link: LinkType,
    frame: &[u8],
) -> Option<(u32, u16, u32)> {
    match seed {
        None => peek_tcp(link, frame).map(|p| (p.hash, p.ip_offset, p.vlan)),
        Some(seed) => {
            peek_key_at(link, frame).map(|p| (p.key.seeded_hash(seed), p.ip_offset, p.vlan))
        }
    }
}

/// Where fanout threads wait until every one of them was started.
#[derive(Default)]
struct Gate {
    /// `None` while closed; then whether to go on.
    open: std::sync::Mutex<Option<bool>>,
    changed: std::sync::Condvar,
}

impl Gate {
    /// Opens the gate: waiting threads go on if `go`, else give up.
    fn open(&self, go: bool) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = Some(go);
        self.changed.notify_all();
    }

    /// Waits until the gate opens; whether to go on.
    fn wait(&self) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(go) = *open {
                return go;
            }
            open = self.changed.wait(open).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Divides `total` entries among workers in proportion to `weights`:
/// each gets its exact share rounded down, what is left goes one at a
/// time to whoever is furthest below its exact share, and then every
/// non-zero weight still without an entry takes one from whoever is
/// furthest above its own, while one has more than one. Every weight
/// zero: all to the first.
fn shares(weights: &[u64], total: usize) -> Vec<usize> {
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    let mut counts = vec![0usize; weights.len()];
    if sum == 0 {
        if let Some(first) = counts.first_mut() {
            *first = total;
        }
        return counts;
    }
    let t = total as u128;
    // How far worker i is above its exact share, in units of 1 / sum.
    let above = |counts: &[usize], i: usize| {
        (counts[i] as u128 * sum) as i128 - (u128::from(weights[i]) * t) as i128
    };
    for (c, &w) in counts.iter_mut().zip(weights) {
        *c = (u128::from(w) * t / sum) as usize;
    }
    for _ in counts.iter().sum::<usize>()..total {
        let Some(i) = (0..weights.len())
            .filter(|&i| weights[i] > 0)
            .min_by_key(|&i| (above(&counts, i), i))
        else {
            break;
        };
        counts[i] += 1;
    }
    for i in 0..weights.len() {
        if weights[i] > 0 && counts[i] == 0 {
            let most = (0..weights.len())
                .filter(|&j| counts[j] > 1)
                .max_by_key(|&j| (above(&counts, j), std::cmp::Reverse(j)));
            if let Some(j) = most {
                counts[j] -= 1;
                counts[i] = 1;
            }
        }
    }
    counts
}

/// Divides engine-wide memory limits among `n` workers, worker `i` taking
/// `part(v, i)` of a limit `v` (0, no limit, stays 0; others at least 1).
fn split_limits(
    cfg: &PipelineConfig,
    n: usize,
    part: impl Fn(usize, usize) -> usize,
) -> Vec<PipelineConfig> {
    (0..n)
        .map(|i| {
            let mut c = cfg.clone();
            let r = &mut c.reasm;
            let div = |v: usize| if v == 0 { 0 } else { part(v, i).max(1) };
            r.max_pages = div(r.max_pages);
            r.memcap = div(r.memcap);
            r.max_conns = div(r.max_conns);
            c
        })
        .collect()
}

struct WorkerHandle<F> {
    tx: Option<Producer<Msg>>,
    pending: Vec<Msg>,
    handle: Option<JoinHandle<Result<Done<F>, String>>>,
    /// The latest packet time a tick gave it (see [`Engine::send`]).
    told: Timestamp,
}

/// A worker's thread never outlives its handle: dropped with the thread
/// still running (a `build` that fails part way, a spawn error or a
/// panicking factory), the handle closes the ring, so the worker
/// completes its streams and ends, and joins it. The engine's own paths
/// close and join their workers first, all rings at once.
impl<F> Drop for WorkerHandle<F> {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

enum Mode<F: StreamFactory> {
    Inline(Box<Inline<F>>),
    Workers(Vec<WorkerHandle<F>>),
    Fanout(Box<Fanout<F>>),
}

/// One worker of [`EngineBuilder::fanout`], or worker 0 of a dispatcher
/// that runs it ([`EngineBuilder::dispatcher_works`]): the dispatcher's
/// work for every frame, and inline mode's for the frames whose flows are
/// its own, on one thread. Kept frames of the current block gather as inline mode's do and
/// go through the pipeline's look-ahead a batch at a time; anything else
/// kept (a frame to copy, a defragmented datagram) and the time ticks are
/// processed at once, after the frames gathered before them.
///
/// (Gathering ring messages and running them as a worker does instead:
/// 1.03x the time with 2 workers on the 1.1 GB capture of README.)
struct Fanout<F: StreamFactory> {
    inline: Inline<F>,
    /// This worker's index.
    me: usize,
    /// The latest packet time its pipeline was moved to by a tick or a
    /// catch-up (see [`Engine::send`]).
    told: Timestamp,
}

impl<F: StreamFactory> Fanout<F> {
    /// Worker `me`, with a pipeline of `cfg` and `factory`.
    fn new(cfg: PipelineConfig, factory: F, me: usize) -> Self {
        Fanout {
            inline: Inline::new(cfg, factory),
            me,
            told: Timestamp(0),
        }
    }

    /// Before a frame stamped `ts` while packet time is `now`: if time went
    /// back and the pipeline has not been told `now`, moves it there, after
    /// the frames gathered so far (see [`Engine::send`]).
    #[inline]
    fn catch_up(&mut self, block: &Option<Block>, ts: Timestamp, now: Timestamp) {
        if ts < now && self.told < now {
            self.catch_up_to(block, now);
        }
    }

    /// [`catch_up`](Self::catch_up)'s work: only for time going back, off
    /// the per-frame path.
    #[cold]
    #[inline(never)]
    fn catch_up_to(&mut self, block: &Option<Block>, now: Timestamp) {
        self.inline.run(block);
        self.inline.alone(|p| p.advance_time(now));
        self.told = now;
    }

    /// Takes a frame of its own that is not gathered (a copy, or a frame
    /// the header peek could not place): processed now, after the frames
    /// gathered before it.
    #[allow(clippy::too_many_arguments)]
    fn take_now(
        &mut self,
        block: &Option<Block>,
        packet: &[u8],
        ip_off: u16,
        zone: Zone,
        ts: Timestamp,
        hash: u32,
        whole: bool,
        now: Timestamp,
    ) {
        self.inline.run(block);
        self.catch_up(block, ts, now);
        let ip_off = usize::from(ip_off);
        self.inline
            .alone(|p| p.ip_frame(packet, ip_off, zone, ts, hash, whole, None));
    }

    /// Moves its pipeline to packet time `ts`, where a ring worker meets a
    /// tick, after the frames gathered so far; publishes the counters
    /// then too, so those of a worker whose flows are idle stay current.
    fn tick(&mut self, block: &Option<Block>, ts: Timestamp, shared: &Shared) {
        self.inline.run(block);
        self.inline.alone(|p| p.advance_time(ts));
        self.told = self.told.max(ts);
        self.publish(shared);
    }

    /// Gathers a frame of the current block for its next batch.
    #[inline]
    fn gather(&mut self, block: &Option<Block>, a: Ahead, now: Timestamp, shared: &Shared) {
        self.catch_up(block, a.ts, now);
        self.inline.ahead.push(a);
        if self.inline.ahead.len() >= INLINE_BATCH {
            self.run(block, shared);
        }
    }

    /// Processes the gathered frames and publishes the counters.
    fn run(&mut self, block: &Option<Block>, shared: &Shared) {
        self.inline.run(block);
        self.publish(shared);
    }

    /// Publishes the counters for readers on other threads.
    fn publish(&self, shared: &Shared) {
        let p = &self.inline.p;
        shared
            .counters
            .publish(p.frame_stats(), &p.reassembler().stats());
    }
}

/// Inline mode's pipeline, and frames of the current block accepted but not
/// yet processed: every [`INLINE_BATCH`] of them go through the pipeline's
/// look-ahead schedule (as [`Pipeline::run_ahead`], decoding each frame in
/// the look-ahead), like a worker's batch, so the memory waits of several
/// flows overlap.
struct Inline<F: StreamFactory> {
    p: Pipeline<F, HeapPool>,
    ahead: Vec<Ahead>,
    /// A batch is being processed. Still set when `run` is entered again,
    /// it means the last batch unwound (a stream handler panicked and the
    /// caller caught it): the pipeline may be mid-delivery and the batch
    /// half processed, so the engine is poisoned, as a `Mutex` is.
    running: bool,
}

/// Frames inline mode gathers before running them through the pipeline.
const INLINE_BATCH: usize = 64;

/// A frame of the current block waiting in inline mode.
struct Ahead {
    link: LinkType,
    off: usize,
    len: usize,
    ts: Timestamp,
    /// The dispatch hash, for a fanout worker's frame (its segments carry
    /// it, as a ring worker's do); `None` inline, where nothing hashed it.
    hash: Option<u32>,
    /// As long as on the wire (see [`crate::FrameStats::short_on_wire`]).
    whole: bool,
}

impl<F: StreamFactory> Inline<F> {
    /// A pipeline of `cfg` and `factory` over heap pages, so the engine
    /// stays `Send` (an arena is bound to the thread that maps it; ring
    /// workers map theirs on their own thread).
    fn new(cfg: PipelineConfig, factory: F) -> Self {
        let pool = HeapPool::new(HeapPool::DEFAULT_PAGE_SIZE, cfg.reasm.max_pages);
        Inline {
            p: Pipeline::with_pool(cfg, factory, pool),
            ahead: Vec::with_capacity(INLINE_BATCH),
            running: false,
        }
    }

    /// Processes every waiting frame.
    ///
    /// # Panics
    /// If an earlier batch unwound: a stream handler panicked and the
    /// caller caught it (see `running`). The engine is not used again, so
    /// no frame of the half-processed batch is processed twice.
    fn run(&mut self, block: &Option<Block>) {
        assert!(!self.running, "{POISONED}");
        self.running = true;
        let Inline { p, ahead, .. } = self;
        let bytes = block.as_ref().map_or(&[][..], |b| (**b).as_ref());
        let frame = |a: &Ahead| &bytes[a.off..a.off + a.len];
        // Kept inline in the schedule's loop: left to itself, the compiler
        // made calls of these (+3.7 % instructions inline, callgrind).
        p.run_staged(
            ahead.len(),
            #[inline(always)]
            |p, t| p.prepare_frame(ahead[t].link, frame(&ahead[t])),
            #[inline(always)]
            |p, u, pre| {
                let a = &ahead[u];
                p.process_prepared(a.link, frame(a), a.ts, a.hash, a.whole, pre)
            },
        );
        ahead.clear();
        self.running = false;
    }

    /// Runs `f` on the pipeline outside a batch (one frame processed at
    /// once), guarded as a batch is: a handler panic in it poisons the
    /// engine too.
    fn alone(&mut self, f: impl FnOnce(&mut Pipeline<F, HeapPool>)) {
        assert!(!self.running, "{POISONED}");
        self.running = true;
        f(&mut self.p);
        self.running = false;
    }
}

/// What an inline engine says when used after a stream handler panicked.
const POISONED: &str = "the engine was used after a stream handler panicked on the caller's thread";

/// What [`Engine::finish`] says of worker 0 run by the dispatcher after a
/// stream handler panicked on it (the panic itself went to the caller).
const PANICKED_HERE: &str = "a stream handler panicked on the dispatcher's thread";

/// Reassembles frames on pinned workers, each connection on exactly one of
/// them (chosen by the symmetric flow hash through a 128-entry indirection
/// table), or inline on the calling thread.
///
/// The engine itself is the dispatcher: its methods run on the caller's
/// thread, and so do worker 0's stream handlers when the dispatcher runs
/// it ([`EngineBuilder::dispatcher_works`]). It is `Send` when the factory
/// and its streams are (an inline engine, or a dispatcher that works, holds
/// streams on the caller's thread; it can then be moved to a reader
/// thread) but not `Sync`.
///
/// ```
/// fn send<T: Send>() {}
/// send::<weft_engine::Engine<weft_replay_free::Never>>();
/// # mod weft_replay_free {
/// #     pub struct Never;
/// #     pub struct S;
/// #     impl weft_reasm::Stream for S {
/// #         fn reassembled(&mut self, _: &mut weft_reasm::ScatterGather<'_>, _: &weft_reasm::Context) {}
/// #     }
/// #     impl weft_reasm::StreamFactory for Never {
/// #         type Stream = S;
/// #         fn new_stream(&mut self, _: &weft_reasm::ConnInfo, _: &weft_reasm::Segment<'_>, _: &weft_reasm::Context) -> S { S }
/// #     }
/// # }
/// ```
pub struct Engine<F: StreamFactory> {
    mode: Mode<F>,
    /// With workers and [`EngineBuilder::dispatcher_works`]: worker 0, run
    /// on the dispatcher's thread (its slot in the workers has no ring).
    local: Option<Box<Fanout<F>>>,
    shared: Vec<Arc<Shared>>,
    reta: [u16; RETA_SIZE],
    /// The seed of [`DispatchHash::Keyed`]; `None` for Toeplitz.
    keyed: Option<hashbrown::DefaultHashBuilder>,
    batch: usize,
    backpressure: Backpressure,
    decode: weft_wire::DecodeOptions,
    defrag: Defragmenter,
    /// [`PipelineConfig::drop_short_on_wire`], for the fragments the
    /// dispatcher defragments.
    drop_short_on_wire: bool,
    /// [`PipelineConfig::drop_bad_checksums`], for the same.
    drop_bad_checksums: bool,
    stats: DispatchStats,
    block: Option<Block>,
    /// The length of `block`'s bytes (0 without one).
    block_len: usize,
    tick_ns: u64,
    last_tick: Timestamp,
    now: Timestamp,
}

impl<F: StreamFactory> fmt::Debug for Engine<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("workers", &self.shared.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// What a finished engine returns: every worker's factory and the stats.
#[derive(Debug)]
pub struct EngineReport<F> {
    /// Worker `i`'s factory (one in inline mode).
    pub factories: Vec<F>,
    /// Counters of the whole run.
    pub stats: EngineStats,
}

impl DispatchHash {
    /// The seed of a keyed hash, drawn now; `None` for Toeplitz.
    fn seed(self) -> Option<hashbrown::DefaultHashBuilder> {
        match self {
            DispatchHash::Toeplitz => None,
            DispatchHash::Keyed => Some(hashbrown::DefaultHashBuilder::default()),
        }
    }
}

impl<F: StreamFactory> Engine<F> {
    fn new(
        b: EngineBuilder,
        mode: Mode<F>,
        shared: Vec<Arc<Shared>>,
        keyed: Option<hashbrown::DefaultHashBuilder>,
    ) -> Self {
        let reta = b.reta();
        let stats = DispatchStats {
            sent: vec![0; shared.len()],
            ring_drops: vec![0; shared.len()],
            ring_full_waits: vec![0; shared.len()],
            ..DispatchStats::default()
        };
        Engine {
            mode,
            local: None,
            shared,
            reta,
            keyed,
            batch: b.batch,
            backpressure: b.backpressure,
            // As a pipeline's: dropping bad checksums verifies them (here,
            // fragments' IPv4 headers: the dispatcher defragments).
            decode: weft_wire::DecodeOptions {
                verify_checksums: b.pipeline.decode.verify_checksums
                    || b.pipeline.drop_bad_checksums,
                ..b.pipeline.decode
            },
            defrag: Defragmenter::new(b.pipeline.defrag),
            drop_short_on_wire: b.pipeline.drop_short_on_wire,
            drop_bad_checksums: b.pipeline.drop_bad_checksums,
            stats,
            block: None,
            block_len: 0,
            tick_ns: b.tick_ns,
            last_tick: Timestamp(0),
            now: Timestamp(0),
        }
    }

    /// Number of workers (0 in inline mode).
    pub fn workers(&self) -> usize {
        self.shared.len()
    }

    /// Which worker this engine is, for an engine that
    /// [`EngineBuilder::fanout`] handed to one of its workers; `None` for
    /// a dispatcher or an inline engine.
    pub fn index(&self) -> Option<usize> {
        match &self.mode {
            Mode::Fanout(l) => Some(l.me),
            Mode::Inline(_) | Mode::Workers(_) => None,
        }
    }

    /// Live counters of every worker, read without stopping them.
    pub fn snapshot(&self) -> Vec<WorkerSnapshot> {
        self.shared.iter().map(|s| s.counters.snapshot()).collect()
    }

    /// The dispatcher's counters so far.
    pub fn dispatch_stats(&self) -> &DispatchStats {
        &self.stats
    }

    /// Makes `block` the buffer that [`dispatch_in_block`](Self::dispatch_in_block)
    /// frames point into (for instance a memory-mapped capture). Workers
    /// keep it alive until every frame pointing into it was processed.
    pub fn set_block(&mut self, block: Block) {
        match &mut self.mode {
            Mode::Workers(ws) => {
                if let Some(l) = &mut self.local {
                    l.run(&self.block, &self.shared[l.me]);
                }
                for w in ws.iter_mut().filter(|w| w.tx.is_some()) {
                    // A worker that got no frame since the last block needs
                    // only this one: replaced, not added, so a worker that
                    // gets no frames does not hold every buffer (which then
                    // cannot be reused) while packet time stands still and
                    // no tick pushes its list into its ring.
                    match w.pending.last_mut() {
                        Some(Msg::Block(last)) => *last = block.clone(),
                        _ => w.pending.push(Msg::Block(block.clone())),
                    }
                }
            }
            Mode::Inline(i) => i.run(&self.block),
            Mode::Fanout(l) => l.run(&self.block, &self.shared[l.me]),
        }
        self.block_len = (*block).as_ref().len();
        self.block = Some(block);
    }

    /// Dispatches the frame at `block[off..off + len]` of the current block
    /// without copying it. Its length on the wire is not known: an IP
    /// length beyond its end is taken as cut by the capture's snap length
    /// (see [`dispatch_in_block_wire`](Self::dispatch_in_block_wire)).
    ///
    /// # Panics
    /// If no block was set, or the range is outside it.
    #[inline]
    pub fn dispatch_in_block(&mut self, link: LinkType, off: usize, len: usize, ts: Timestamp) {
        self.in_block(link, off, len, false, ts);
    }

    /// [`dispatch_in_block`](Self::dispatch_in_block) for a frame that was
    /// `wire_len` bytes long on the wire, by its capture record. Recorded
    /// whole, a frame whose IP length promises more than it holds was that
    /// short on the wire (a host drops it), or its capture lost bytes: it
    /// is counted ([`crate::FrameStats::short_on_wire`],
    /// [`DispatchStats::short_on_wire`]), and dropped with
    /// [`PipelineConfig::drop_short_on_wire`]. Else, and cut by the snap
    /// length, it is reassembled as far as it goes.
    ///
    /// # Panics
    /// As [`dispatch_in_block`](Self::dispatch_in_block).
    #[inline]
    pub fn dispatch_in_block_wire(
        &mut self,
        link: LinkType,
        off: usize,
        len: usize,
        wire_len: u32,
        ts: Timestamp,
    ) {
        self.in_block(link, off, len, captured_whole(len, wire_len), ts);
    }

    #[inline]
    fn in_block(&mut self, link: LinkType, off: usize, len: usize, whole: bool, ts: Timestamp) {
        let missing = "set_block before dispatch_in_block";
        match &mut self.mode {
            Mode::Inline(i) => {
                // Only the range is checked now, against the length kept
                // at `set_block` (no call through the block per frame);
                // the bytes are read in `run`.
                assert!(self.block.is_some(), "{missing}");
                if !off
                    .checked_add(len)
                    .is_some_and(|end| end <= self.block_len)
                {
                    outside_block(off, len, self.block_len);
                }
                self.stats.frames += 1;
                i.ahead.push(Ahead {
                    link,
                    off,
                    len,
                    ts,
                    hash: None,
                    whole,
                });
                if i.ahead.len() >= INLINE_BATCH {
                    i.run(&self.block);
                }
                // No ticks inline: every frame's time reaches the
                // reassembler, in order, from the pipeline itself.
            }
            Mode::Workers(_) if self.local.is_none() => {
                // Taken out for the call rather than cloned: no reference
                // count traffic per frame (dispatching to rings does not
                // read `self.block`).
                let block = self.block.take().expect(missing);
                let Some(frame) = (*block).as_ref().get(off..off.saturating_add(len)) else {
                    // Put back first: a caller that catches the panic
                    // still has its block.
                    self.block = Some(block);
                    outside_block(off, len, self.block_len);
                };
                self.dispatch_at(link, frame, Some(off as u64), whole, ts);
                self.block = Some(block);
            }
            Mode::Workers(_) => {
                if !self.own_in_block::<true>(link, off, len, whole, ts) {
                    self.decode_in_block(link, off, len, whole, ts);
                }
            }
            Mode::Fanout(_) => {
                if !self.own_in_block::<false>(link, off, len, whole, ts) {
                    self.decode_in_block(link, off, len, whole, ts);
                }
            }
        }
    }

    /// A frame of the current block the header peek cannot place, where
    /// this thread has a worker of its own: the full decoder, with the
    /// block cloned (rare), since that worker may read it.
    fn decode_in_block(
        &mut self,
        link: LinkType,
        off: usize,
        len: usize,
        whole: bool,
        ts: Timestamp,
    ) {
        let block = self
            .block
            .clone()
            .expect("set_block before dispatch_in_block");
        let frame = in_block(&block, off, len);
        self.stats.frames += 1;
        self.dispatch_decoded(link, frame, Some(off as u64), whole, ts);
        self.note_time(ts);
    }

    /// The path for a plain TCP frame of the current block where this
    /// thread has a worker of its own (a fanout worker, or a dispatcher
    /// that runs worker 0): hashed and counted as a dispatcher does, then
    /// gathered for that worker's next batch if its flow is the worker's,
    /// else handed to its worker's ring (a fanout worker leaves it to the
    /// worker that reads it too). `false` (nothing done) for a frame the
    /// header peek cannot place, or without a worker of its own. `RINGS`:
    /// the dispatcher's worker 0 (else a fanout worker), a constant so
    /// each keeps only its own branch on this per-frame path.
    #[inline]
    fn own_in_block<const RINGS: bool>(
        &mut self,
        link: LinkType,
        off: usize,
        len: usize,
        whole: bool,
        ts: Timestamp,
    ) -> bool {
        let Engine {
            mode,
            local,
            block,
            keyed,
            reta,
            stats,
            shared,
            now,
            batch,
            backpressure,
            ..
        } = self;
        let (l, rings) = match mode {
            Mode::Fanout(l) if !RINGS => (&mut **l, None),
            Mode::Workers(ws) if RINGS => match local {
                Some(l) => (&mut **l, Some(ws)),
                None => return false,
            },
            _ => return false,
        };
        // Not `in_block`: its saturating range cost about 14 instructions a
        // frame more here (callgrind, fanout). A wrapped end falls below
        // `off`, which the range check refuses as indexing would.
        let bytes = (**block.as_ref().expect("set_block before dispatch_in_block")).as_ref();
        let Some(frame) = bytes.get(off..off.wrapping_add(len)) else {
            outside_block(off, len, bytes.len())
        };
        let Some((hash, ip_off, vlan)) = peek_dispatch(keyed.as_ref(), link, frame) else {
            return false;
        };
        stats.frames += 1;
        let w = usize::from(reta[hash as usize % RETA_SIZE]);
        stats.sent[w] += 1;
        if w == l.me {
            let hash = Some(hash);
            let a = Ahead {
                link,
                off,
                len,
                ts,
                hash,
                whole,
            };
            l.gather(block, a, *now, &shared[l.me]);
        } else if let Some(ws) = rings.filter(|_| RINGS) {
            let desc = Desc {
                off: off as u64,
                len: len as u32,
                ip_off,
                zone: Zone::vlan(vlan),
                hash,
                ts,
                whole,
            };
            let ring = (*batch, *backpressure);
            push_msg(&mut ws[w], w, Msg::Frame(desc), ts, *now, ring, stats);
        }
        self.note_time(ts);
        true
    }

    /// Dispatches a frame that the engine must copy (its buffer is reused by
    /// the caller). Inline, fanout workers and a dispatcher's own worker 0
    /// copy nothing: they process the frame before returning (so
    /// [`DispatchStats::copied`] counts only frames for ring workers).
    /// Its length on the wire is not known (see
    /// [`dispatch_in_block`](Self::dispatch_in_block)).
    pub fn dispatch(&mut self, link: LinkType, frame: &[u8], ts: Timestamp) {
        self.dispatch_at(link, frame, None, false, ts);
    }

    /// [`dispatch`](Self::dispatch) for a frame that was `wire_len` bytes
    /// long on the wire (see
    /// [`dispatch_in_block_wire`](Self::dispatch_in_block_wire)).
    pub fn dispatch_wire(&mut self, link: LinkType, frame: &[u8], wire_len: u32, ts: Timestamp) {
        let whole = captured_whole(frame.len(), wire_len);
        self.dispatch_at(link, frame, None, whole, ts);
    }

    fn dispatch_at(
        &mut self,
        link: LinkType,
        frame: &[u8],
        off: Option<u64>,
        whole: bool,
        ts: Timestamp,
    ) {
        self.stats.frames += 1;
        if let Mode::Inline(i) = &mut self.mode {
            i.run(&self.block);
            i.alone(|p| p.frame_ahead(link, frame, ts, whole, None));
            return;
        }
        // Fast path: plain TCP needs only its hash, IP offset and VLANs.
        match peek_dispatch(self.keyed.as_ref(), link, frame) {
            Some((hash, ip_off, vlan)) => {
                let zone = Zone::vlan(vlan);
                self.send_frame(frame, off, ip_off, zone, hash, whole, ts)
            }
            None => self.dispatch_decoded(link, frame, off, whole, ts),
        }
        self.note_time(ts);
    }

    /// Packet time reached `ts`: tells every worker when a tick is due.
    fn note_time(&mut self, ts: Timestamp) {
        if ts > self.now {
            self.now = ts;
        }
        if ts.0.saturating_sub(self.last_tick.0) >= self.tick_ns {
            self.tick(ts);
        }
    }

    /// Whether a frame with a bad checksum (its own or its tunnel's) is
    /// dropped (`drop_bad_checksums`), counted if so.
    fn drops_for_checksum(&mut self) -> bool {
        self.stats.bad_checksum_dropped += u64::from(self.drop_bad_checksums);
        self.drop_bad_checksums
    }

    /// The full decoder, for frames the fast path leaves alone.
    fn dispatch_decoded(
        &mut self,
        link: LinkType,
        frame: &[u8],
        off: Option<u64>,
        whole: bool,
        ts: Timestamp,
    ) {
        match decode(link, frame, &self.decode) {
            Ok(Decoded::Tcp(p)) => {
                // As a pipeline checks it (`Pipeline::dropped_tunnel`): the
                // worker decodes from the innermost header, out of its sight.
                if p.tunnel_checksum_ok == Some(false) {
                    self.stats.bad_tunnel_checksum += 1;
                    if self.drops_for_checksum() {
                        return;
                    }
                }
                let hash = self.flow_hash(&p.key);
                // Cut where the decode found the segment's end: a worker
                // decodes again from the innermost IP header, where an
                // outer header's bound (a tunnel's length, a trailer
                // after it) is no longer in sight.
                let end =
                    usize::from(p.tcp_offset) + usize::from(p.tcp.header_len) + p.payload.len();
                let frame = frame.get(..end).unwrap_or(frame);
                self.send_frame(frame, off, p.ip_offset, p.key.zone(), hash, whole, ts);
            }
            Ok(Decoded::Fragment(f)) => {
                self.stats.fragments += 1;
                // (A TCP segment short on the wire is its worker's to
                // count: frames the peek places reach it the same way.)
                if whole && f.missing > 0 {
                    self.stats.short_on_wire += 1;
                    if self.drop_short_on_wire {
                        return;
                    }
                }
                // As a pipeline checks them (`Pipeline::handle`).
                if f.checksum_ok == Some(false) {
                    self.stats.bad_checksum += 1;
                    if self.drops_for_checksum() {
                        return;
                    }
                }
                // At the newest packet time, as ticks and inline mode
                // expire datagrams (see `Pipeline::handle`).
                let done = self.defrag.push(&f, ts.max(self.now));
                self.stats.defrag = self.defrag.stats();
                if let Some(whole) = done {
                    self.stats.defragmented += 1;
                    let zone = whole.zone();
                    // Counted as inline mode counts it (`Pipeline::handle`).
                    match decode_ip_in(&whole.packet, zone, &self.decode) {
                        Ok(Decoded::Tcp(p)) => {
                            let hash = self.flow_hash(&p.key);
                            // Rebuilt: its fragments were checked one by one.
                            let data = whole.packet.into_boxed_slice();
                            self.send_owned(data, 0, zone, hash, false, ts);
                        }
                        Ok(_) => self.stats.not_tcp += 1,
                        Err(e) => self.stats.count_error(e),
                    }
                }
            }
            Ok(Decoded::Other) => self.stats.not_tcp += 1,
            Err(e) => self.stats.count_error(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn send_frame(
        &mut self,
        frame: &[u8],
        off: Option<u64>,
        ip_off: u16,
        zone: Zone,
        hash: u32,
        whole: bool,
        ts: Timestamp,
    ) {
        let w = self.worker_of(hash);
        let fanout = matches!(self.mode, Mode::Fanout(_));
        let mine = this_threads_worker(&mut self.mode, &mut self.local);
        if let Some(l) = mine.filter(|l| l.me == w) {
            // Counted; this thread's own worker's processed here, from
            // the caller's bytes (never copied).
            self.stats.sent[w] += 1;
            l.take_now(&self.block, frame, ip_off, zone, ts, hash, whole, self.now);
            return;
        }
        if fanout {
            // Another fanout worker's: counted only.
            self.stats.sent[w] += 1;
            return;
        }
        match off {
            Some(off) => {
                let len = frame.len() as u32;
                self.send(
                    hash,
                    ts,
                    Msg::Frame(Desc {
                        off,
                        len,
                        ip_off,
                        zone,
                        hash,
                        ts,
                        whole,
                    }),
                );
            }
            None => {
                self.stats.copied += 1;
                self.send_owned(frame.into(), ip_off, zone, hash, whole, ts);
            }
        }
    }

    /// Sends bytes the worker will own (a copy, or a rebuilt datagram).
    fn send_owned(
        &mut self,
        data: Box<[u8]>,
        ip_off: u16,
        zone: Zone,
        hash: u32,
        whole: bool,
        ts: Timestamp,
    ) {
        let desc = Desc {
            off: 0,
            len: data.len() as u32,
            ip_off,
            zone,
            hash,
            ts,
            whole,
        };
        self.send(hash, ts, Msg::Owned(Box::new(Owned { data, desc })));
    }

    /// Worker of a flow hash, through the indirection table.
    pub fn worker_of(&self, hash: u32) -> usize {
        self.reta[hash as usize % RETA_SIZE] as usize
    }

    /// The dispatch hash of a flow (see [`DispatchHash`]).
    pub fn flow_hash(&self, key: &FlowKey) -> u32 {
        match &self.keyed {
            None => key.symmetric_hash(),
            Some(seed) => key.seeded_hash(seed),
        }
    }

    /// Sends `msg`, stamped `ts`, to the worker of `hash`.
    ///
    /// A frame stamped before one dispatched earlier (time going back, as
    /// in captures merged from several interfaces) reaches a worker whose
    /// time has seen the later one: a tick to the dispatcher's packet time
    /// goes first, unless one already did. Inline, the reassembler's time
    /// never goes back either, so every timeout fires before the same
    /// segments of its flow in every mode and their output is the same.
    /// (Without it a worker's time could lag by up to a tick, and a flush
    /// timeout fire after a segment inline took after it.) Fanout workers
    /// catch up the same way ([`Fanout::catch_up`]).
    fn send(&mut self, hash: u32, ts: Timestamp, msg: Msg) {
        let w = self.worker_of(hash);
        self.stats.sent[w] += 1;
        let now = self.now;
        let mine = this_threads_worker(&mut self.mode, &mut self.local);
        if let Some(l) = mine.filter(|l| l.me == w) {
            // A defragmented datagram (only those are sent): after the
            // frames gathered before it.
            debug_assert!(matches!(msg, Msg::Owned(_)), "only datagrams come this way");
            if let Msg::Owned(o) = msg {
                let d = o.desc;
                l.take_now(
                    &self.block,
                    &o.data,
                    d.ip_off,
                    d.zone,
                    d.ts,
                    d.hash,
                    d.whole,
                    now,
                );
            }
            return;
        }
        if let Mode::Workers(ws) = &mut self.mode {
            let ring = (self.batch, self.backpressure);
            push_msg(&mut ws[w], w, msg, ts, now, ring, &mut self.stats);
        }
    }

    /// Tells every worker the packet time (so idle workers expire timers).
    fn tick(&mut self, ts: Timestamp) {
        self.tick_with(ts, self.backpressure);
    }

    /// [`tick`](Self::tick), pushing into the rings by `bp`.
    fn tick_with(&mut self, ts: Timestamp, bp: Backpressure) {
        self.last_tick = ts;
        // The dispatcher's own defragmenter keeps time too (inline, the
        // pipeline's does, on every frame).
        if self.defrag.in_progress() > 0 {
            self.defrag.expire(ts);
            self.stats.defrag = self.defrag.stats();
        }
        match &mut self.mode {
            Mode::Workers(ws) => {
                if let Some(l) = &mut self.local {
                    l.tick(&self.block, ts, &self.shared[l.me]);
                }
                // Into every ring now, with what each worker has gathered:
                // a worker that receives no frames would otherwise meet
                // its ticks (and block switches) only at `flush` or
                // `finish`, its timers stopped and its pending list
                // growing by a tick a millisecond of packet time.
                for (i, w) in ws.iter_mut().enumerate() {
                    if w.tx.is_none() {
                        continue;
                    }
                    w.pending.push(Msg::Tick(ts));
                    w.told = w.told.max(ts);
                    flush_worker(w, i, bp, &mut self.stats);
                }
            }
            Mode::Fanout(l) => l.tick(&self.block, ts, &self.shared[l.me]),
            // Every frame's time reaches the pipeline itself.
            Mode::Inline(_) => {}
        }
    }

    /// Moves packet time forward to `now` without a frame, on every
    /// worker: a live source calls it while no traffic comes, so
    /// connections still time out and data held out of order is still
    /// flushed on time. Frames gathered before are processed first. Packet
    /// time never goes back: a `now` not past the latest frame's or call's
    /// time does nothing.
    pub fn advance_time(&mut self, now: Timestamp) {
        if now <= self.now {
            return;
        }
        self.now = now;
        match &mut self.mode {
            Mode::Inline(i) => {
                i.run(&self.block);
                // Timers call handlers (`complete`): guarded as a batch.
                i.alone(|p| p.advance_time(now));
            }
            Mode::Workers(_) | Mode::Fanout(_) => self.tick(now),
        }
    }

    /// Pushes every gathered frame into the rings now.
    /// In inline mode, and for a dispatcher that runs worker 0, processes
    /// the frames waiting in the look-ahead.
    pub fn flush(&mut self) {
        self.flush_with(self.backpressure);
    }

    /// [`flush`](Self::flush), pushing into the rings by `bp`.
    fn flush_with(&mut self, bp: Backpressure) {
        match &mut self.mode {
            Mode::Workers(ws) => {
                if let Some(l) = &mut self.local {
                    l.run(&self.block, &self.shared[l.me]);
                }
                for (i, w) in ws.iter_mut().enumerate() {
                    flush_worker(w, i, bp, &mut self.stats);
                }
            }
            Mode::Inline(i) => i.run(&self.block),
            Mode::Fanout(l) => l.run(&self.block, &self.shared[l.me]),
        }
    }

    /// Drains the rings, closes every connection (each open stream's
    /// `complete` is called once), joins the workers and returns their
    /// factories and the stats. A handler panic on one worker is returned
    /// as an error after the other workers finished; inline, a panic in
    /// the handlers `finish` itself runs (the last batch, timers, the
    /// completions) is returned as worker 0's.
    ///
    /// An engine dropped without `finish` stops its ring workers as
    /// `finish` does (each is told the last packet time and completes its
    /// streams, every frame dispatched to it processed), but returns
    /// nothing; an inline engine, or worker 0 of a dispatcher that works,
    /// dropped so completes no streams: their handlers would run inside
    /// `drop`.
    pub fn finish(mut self) -> Result<EngineReport<F>, EngineError> {
        if let Mode::Inline(i) = &self.mode {
            if i.running {
                // A handler panicked inline and the caller went on.
                return Err(EngineError::WorkerPanicked {
                    worker: 0,
                    message: POISONED.to_owned(),
                });
            }
        }
        // The same on a worker run by the dispatcher: the others still
        // finish (and their streams complete); its own are dropped.
        // It is finished apart (below), so that a panic in its last
        // deliveries comes back as an error too.
        let mut failure = None;
        let mut local = self.local.take();
        if local.as_ref().is_some_and(|l| l.inline.running) {
            local = None;
            failure = Some(EngineError::WorkerPanicked {
                worker: 0,
                message: PANICKED_HERE.to_owned(),
            });
        }
        // Capture is over: what is gathered waits for room even in drop
        // mode (dropping it would lose frames for no one's sake).
        let now = self.now;
        if let Mode::Inline(_) = self.mode {
            // Inline, the handlers run here: the last batch, the timers
            // and every stream's completion. A panic in them comes back
            // as the error, as from a worker.
            let last = || {
                self.tick_with(now, Backpressure::Block);
                self.flush_with(Backpressure::Block);
                if let Mode::Inline(i) = &mut self.mode {
                    i.p.flush_all();
                }
            };
            if let Err(e) = catch_unwind(AssertUnwindSafe(last)) {
                return Err(EngineError::WorkerPanicked {
                    worker: 0,
                    message: worker::panic_message(e),
                });
            }
        } else {
            self.tick_with(now, Backpressure::Block);
            self.flush_with(Backpressure::Block);
        }
        let mut report = EngineReport {
            factories: Vec::new(),
            stats: EngineStats::default(),
        };
        report.stats.dispatch = std::mem::take(&mut self.stats);
        let mode = std::mem::replace(&mut self.mode, Mode::Workers(Vec::new()));
        match mode {
            Mode::Inline(i) => {
                let p = &i.p;
                report.stats.frames.push(p.frame_stats().clone());
                report.stats.reasm.push(p.reassembler().stats());
                report.stats.pinned.push(false);
                report.factories.push(i.p.into_factory());
                Ok(report)
            }
            Mode::Fanout(mut l) => {
                l.inline.p.flush_all();
                let sh = &self.shared[l.me];
                l.publish(sh);
                let p = l.inline.p;
                report.stats.frames.push(p.frame_stats().clone());
                report.stats.reasm.push(p.reassembler().stats());
                report.stats.pinned.push(sh.counters.snapshot().pinned);
                report.factories.push(p.into_factory());
                Ok(report)
            }
            Mode::Workers(mut ws) => {
                // Close every ring first, so all workers drain in parallel
                // (and with this one's own worker).
                ws.iter_mut().for_each(|w| drop(w.tx.take()));
                let mut own = None;
                if let Some(mut l) = local {
                    // A handler panic here comes back as the error, once
                    // the other workers finished.
                    let shared = &self.shared[l.me];
                    let last = || {
                        l.tick(&self.block, now, shared);
                        l.inline.p.flush_all();
                    };
                    match catch_unwind(AssertUnwindSafe(last)) {
                        Ok(()) => {
                            l.publish(&self.shared[l.me]);
                            let p = l.inline.p;
                            let stats = (p.frame_stats().clone(), p.reassembler().stats());
                            own = Some((stats, p.into_factory()));
                        }
                        Err(e) => {
                            failure.get_or_insert(EngineError::WorkerPanicked {
                                worker: l.me,
                                message: worker::panic_message(e),
                            });
                        }
                    }
                }
                for (i, w) in ws.iter_mut().enumerate() {
                    if w.handle.is_none() {
                        if let Some(((frames, reasm), factory)) = own.take() {
                            report.stats.frames.push(frames);
                            report.stats.reasm.push(reasm);
                            report.factories.push(factory);
                            report.stats.pinned.push(false);
                            continue;
                        }
                    }
                    let joined = w.handle.take().map(JoinHandle::join);
                    match joined {
                        Some(Ok(Ok(done))) => {
                            report.stats.frames.push(done.frames);
                            report.stats.reasm.push(done.reasm);
                            report.factories.push(done.factory);
                        }
                        Some(Ok(Err(message))) => {
                            failure
                                .get_or_insert(EngineError::WorkerPanicked { worker: i, message });
                        }
                        Some(Err(_)) | None => {
                            failure.get_or_insert(EngineError::WorkerPanicked {
                                worker: i,
                                message: "worker thread died".to_owned(),
                            });
                        }
                    }
                    report
                        .stats
                        .pinned
                        .push(self.shared[i].counters.snapshot().pinned);
                }
                match failure {
                    Some(e) => Err(e),
                    None => Ok(report),
                }
            }
        }
    }
}

impl<F: StreamFactory> Drop for Engine<F> {
    fn drop(&mut self) {
        // An engine dropped without `finish` still stops its threads,
        // after pushing what each gathered and the last packet time, as
        // `finish` does (unless unwinding: a full ring must not hold up a
        // panic), so ring workers fire the timers due by then and complete
        // their streams with every frame dispatched to them.
        if let Mode::Workers(_) = self.mode {
            if !std::thread::panicking() {
                // Worker 0 of a dispatcher that works is not finished
                // (documented): only the rings are told.
                let local = self.local.take();
                let now = self.now;
                self.tick_with(now, Backpressure::Block);
                self.local = local;
            }
        }
        if let Mode::Workers(ws) = &mut self.mode {
            if !std::thread::panicking() {
                for (i, w) in ws.iter_mut().enumerate() {
                    flush_worker(w, i, Backpressure::Block, &mut self.stats);
                }
            }
            ws.iter_mut().for_each(|w| drop(w.tx.take()));
            for w in ws.iter_mut() {
                if let Some(h) = w.handle.take() {
                    let _ = h.join();
                }
            }
        }
    }
}

/// The worker whose frames this thread processes itself: a fanout
/// worker's own, or worker 0 of a dispatcher that runs it.
fn this_threads_worker<'a, F: StreamFactory>(
    mode: &'a mut Mode<F>,
    local: &'a mut Option<Box<Fanout<F>>>,
) -> Option<&'a mut Fanout<F>> {
    match mode {
        Mode::Fanout(l) => Some(l),
        _ => local.as_deref_mut(),
    }
}

/// The panic of a frame range outside the current block (of `size` bytes).
#[cold]
#[inline(never)]
#[track_caller]
fn outside_block(off: usize, len: usize, size: usize) -> ! {
    panic!("frame {off}+{len} outside the block of {size} bytes")
}

/// `block[off..off + len]`.
///
/// # Panics
/// If the range is outside the block.
#[inline]
fn in_block(block: &Block, off: usize, len: usize) -> &[u8] {
    let bytes = (**block).as_ref();
    match bytes.get(off..off.saturating_add(len)) {
        Some(frame) => frame,
        None => outside_block(off, len, bytes.len()),
    }
}

/// Gathers `msg`, stamped `ts` while packet time is `now`, for worker `i`
/// (see [`Engine::send`]), and pushes its gathered messages into its ring
/// once there are `ring.0` of them, by backpressure `ring.1`.
#[inline]
fn push_msg<F>(
    w: &mut WorkerHandle<F>,
    i: usize,
    msg: Msg,
    ts: Timestamp,
    now: Timestamp,
    ring: (usize, Backpressure),
    st: &mut DispatchStats,
) {
    if ts < now && w.told < now {
        w.pending.push(Msg::Tick(now));
        w.told = now;
    }
    w.pending.push(msg);
    if w.pending.len() >= ring.0 {
        flush_worker(w, i, ring.1, st);
    }
}

/// Moves a worker's gathered messages into its ring.
fn flush_worker<F>(w: &mut WorkerHandle<F>, i: usize, bp: Backpressure, st: &mut DispatchStats) {
    let Some(tx) = w.tx.as_mut() else {
        w.pending.clear();
        return;
    };
    if w.pending.is_empty() {
        return;
    }
    let mut it = w.pending.drain(..).peekable();
    let mut waited = false;
    let mut spins = 0u32;
    while it.peek().is_some() {
        if tx.push_iter(&mut it) > 0 {
            continue;
        }
        if tx.is_abandoned() {
            // The worker is gone (its handler panicked): count, move on.
            st.ring_drops[i] += it
                .filter(|m| matches!(m, Msg::Frame(_) | Msg::Owned(_)))
                .count() as u64;
            return;
        }
        match bp {
            Backpressure::Block => {
                if !waited {
                    st.ring_full_waits[i] += 1;
                    waited = true;
                }
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            Backpressure::Drop => {
                // Frames are dropped (counted). Control messages must still
                // reach the worker, but never by waiting: only the newest
                // block switch and the newest tick matter (the frames
                // before them are gone), so they stay, at most one of
                // each, at the head of the list for the next flush.
                let (mut block, mut tick) = (None, None);
                for m in it {
                    match m {
                        Msg::Frame(_) | Msg::Owned(_) => st.ring_drops[i] += 1,
                        Msg::Block(b) => block = Some(Msg::Block(b)),
                        Msg::Tick(t) => tick = Some(Msg::Tick(t)),
                    }
                }
                w.pending.extend(block.into_iter().chain(tick));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{shares, EngineBuilder, Gate, PipelineConfig, RETA_SIZE};
    use std::sync::mpsc;
    use std::time::Duration;

    /// Threads at the gate wait until it opens, and all learn whether to go.
    #[test]
    fn a_gate_holds_every_thread_until_it_opens() {
        for go in [true, false] {
            let gate = Gate::default();
            let (tx, rx) = mpsc::channel();
            std::thread::scope(|s| {
                for _ in 0..3 {
                    let (gate, tx) = (&gate, tx.clone());
                    s.spawn(move || tx.send(gate.wait()).unwrap());
                }
                assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "held");
                gate.open(go);
                for _ in 0..3 {
                    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(go));
                }
            });
            assert!(gate.wait() == go, "a late arrival passes at once");
        }
    }

    /// Entries follow the weights (largest remainders), every non-zero
    /// weight gets one, a zero weight none, and all are given out.
    #[test]
    fn table_shares_follow_the_weights() {
        assert_eq!(shares(&[1, 1], 128), vec![64, 64]);
        assert_eq!(shares(&[1, 1, 1], 128), vec![43, 43, 42]);
        assert_eq!(shares(&[2, 5], 128), vec![37, 91]);
        assert_eq!(shares(&[0, 1, 3], 128), vec![0, 32, 96]);
        assert_eq!(shares(&[1, 1_000_000], 128), vec![1, 127]);
        assert_eq!(shares(&[1_000_000, 1, 1], 128), vec![126, 1, 1]);
        assert_eq!(shares(&[0, 0], 128), vec![128, 0]);
        // Left-overs go to whoever is furthest below its exact share
        // (0.9 and 127.1 here); the ones tiny weights are given come from
        // the one furthest above.
        assert_eq!(shares(&[9, 1271], 128), vec![1, 127]);
        assert_eq!(shares(&[3, 3, 3, 1000], 128), vec![1, 1, 1, 125]);
        let mut one_big = vec![1u64; 128];
        one_big[0] = 1_000_000;
        assert_eq!(shares(&one_big, 128), vec![1; 128]);
        // More workers than entries: the first 128 get one each.
        let many = shares(&[1; 130], 128);
        assert_eq!(many.iter().sum::<usize>(), 128);
        assert!(many.iter().all(|&c| c <= 1));
        for w in [
            [3u64, 7, 1, 0, 9],
            [1, 2, 3, 4, 5],
            [u32::MAX as u64, 1, 0, 7, 7],
        ] {
            let c = shares(&w, RETA_SIZE);
            assert_eq!(c.iter().sum::<usize>(), RETA_SIZE, "{w:?}");
            let sum: u64 = w.iter().sum();
            let exact = |wi: u64| wi as f64 * RETA_SIZE as f64 / sum as f64;
            // Entries given to weights too small for one of their own.
            let given = w.iter().filter(|&&wi| wi > 0 && exact(wi) < 1.0).count() as f64;
            for (i, (&wi, &ci)) in w.iter().zip(&c).enumerate() {
                assert_eq!(wi == 0, ci == 0, "{w:?}: worker {i}");
                if wi > 0 && exact(wi) < 1.0 {
                    assert_eq!(ci, 1, "{w:?}: {c:?}");
                } else {
                    // Less than one entry from the exact share, or below
                    // it by what went to the tiny weights.
                    let off = ci as f64 - exact(wi);
                    assert!(off < 1.0 && off > -1.0 - given, "{w:?}: {c:?}");
                }
            }
        }
    }

    /// The table holds each worker's share, spread out: no worker's
    /// entries come in a run longer than its share makes necessary.
    #[test]
    fn a_weighted_table_spreads_each_worker() {
        for weights in [vec![2, 5], vec![2, 5, 5, 5], vec![1, 1, 6], vec![0, 3, 1]] {
            let n = weights.len();
            let b = EngineBuilder::new()
                .workers(n)
                .table_weights(weights.clone());
            b.check().unwrap();
            let reta = b.reta();
            let want = shares(
                &weights.iter().map(|&w| u64::from(w)).collect::<Vec<_>>(),
                RETA_SIZE,
            );
            for (i, &c) in want.iter().enumerate() {
                let got = reta.iter().filter(|&&r| usize::from(r) == i).count();
                assert_eq!(got, c, "{weights:?}: worker {i}");
            }
            // The longest run of one worker: at most the ceiling of its
            // share of the others' entries plus one.
            let mut run = (0u16, 0usize);
            for &r in &reta {
                run = if r == run.0 { (r, run.1 + 1) } else { (r, 1) };
                let mine = want[usize::from(r)];
                let others = RETA_SIZE - mine;
                let bound = if others == 0 {
                    RETA_SIZE
                } else {
                    mine.div_ceil(others) + 1
                };
                assert!(run.1 <= bound, "{weights:?}: {reta:?}");
            }
        }
        // Without weights: round robin, as before weights existed.
        let reta = EngineBuilder::new().workers(3).reta();
        assert!(reta
            .iter()
            .enumerate()
            .all(|(i, &r)| usize::from(r) == i % 3));
    }

    /// Weights must come one per worker and not all be zero.
    #[test]
    fn table_weights_are_checked() {
        let b = || EngineBuilder::new().workers(2);
        assert!(b().table_weights(vec![1]).check().is_err());
        assert!(b().table_weights(vec![1, 2, 3]).check().is_err());
        assert!(b().table_weights(vec![0, 0]).check().is_err());
        assert!(b().table_weights(vec![0, 1]).check().is_ok());
        let inline = EngineBuilder::new().workers(0);
        assert!(inline.clone().table_weights(vec![1]).check().is_ok());
        assert!(inline.table_weights(vec![1, 1]).check().is_err());
    }

    /// Memory limits are divided among the workers equally, or by their
    /// shares of the table; no limit stays none, and a tiny one leaves
    /// each worker at least 1.
    #[test]
    fn limits_follow_each_workers_share_of_the_table() {
        let mut cfg = PipelineConfig::default();
        cfg.reasm.memcap = 1_280_000;
        cfg.reasm.max_pages = 1_280;
        cfg.reasm.max_conns = 3;
        cfg.reasm.max_pages_per_conn = 0;
        let limits = |b: EngineBuilder| -> Vec<(usize, usize, usize)> {
            b.pipeline(cfg.clone())
                .worker_configs()
                .iter()
                .map(|c| (c.reasm.memcap, c.reasm.max_pages, c.reasm.max_conns))
                .collect()
        };
        let b = || EngineBuilder::new().workers(2);
        assert_eq!(limits(b()), vec![(640_000, 640, 1), (640_000, 640, 1)]);
        // 32 and 96 of the 128 entries.
        assert_eq!(
            limits(b().table_weights(vec![1, 3])),
            vec![(320_000, 320, 1), (960_000, 960, 2)]
        );
        let inline = limits(EngineBuilder::new().workers(0));
        assert_eq!(inline, vec![(1_280_000, 1_280, 3)]);
        let mut unlimited = cfg.clone();
        unlimited.reasm.memcap = 0;
        let c = EngineBuilder::new()
            .workers(3)
            .table_weights(vec![1, 1, 5])
            .pipeline(unlimited)
            .worker_configs();
        assert!(c
            .iter()
            .all(|c| c.reasm.memcap == 0 && c.reasm.max_pages_per_conn == 0));
    }
}
