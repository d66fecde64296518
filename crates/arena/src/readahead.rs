//! A helper thread that maps a file's pages ahead of its reader and unmaps
//! them again behind it ([`Readahead`], over any [`Pager`]).
//!
//! Reading a memory-mapped file faults its pages in one by one (64 KB at a
//! time with the kernel's fault-around), on the thread that first touches
//! them: in the engine that is the dispatcher, which measured a third of its
//! time in page faults on a 1.1 GB capture. The helper asks the kernel to
//! map the pages ahead of the reader, so the faults are taken off the
//! reading thread, on whatever core has room; and it unmaps what the reader
//! passed long ago, so the resident set stays small and no long `munmap`
//! waits at the end (the page cache keeps the pages; a late reader maps
//! them again transparently).
//!
//! It can also read the bytes a little ahead of the reader ([`Window::warm`]),
//! so the reader finds them in the cache the cores share instead of waiting
//! for DRAM: the reader's thread then spends its time on the bytes, not on
//! fetching them. Where the two cores share no cache, that makes the reader
//! slower instead; a helper given a [`Judge`] times the reader both ways now
//! and then and stops reading ahead while it does.
//!
//! Protocol: the reader publishes how far it got (`progress`, relaxed: it is
//! a hint; the kernel, not this code, makes the mapped bytes visible) and
//! unparks the helper every `chunk` bytes; the helper maps up to `progress +
//! ahead`, reads what it mapped up to `progress + warm`, unmaps whole
//! requests up to `progress - behind`, publishes the progress it acted on
//! (`seen`), and parks.
//! `park`/`unpark` cannot lose a wake-up (an unpark before the park makes
//! the park return at once). Dropping the reader's handle sets `stop`,
//! unparks and joins, so the helper never outlives it. Mapping ahead is a
//! hint: if the kernel refuses it, the helper ends and pages fault in as
//! before; if it refuses to unmap, the helper stops unmapping. The protocol
//! is model checked with loom (`tests/loom.rs`).
//!
//! A helper with a core of its own can poll instead ([`Window::poll`]): it
//! parks for a short while at a time and looks at `progress` itself, and
//! the reader wakes it only when it lags two chunks behind. Waking a parked
//! thread is a system call and an interrupt to the other core; with a
//! report every megabyte it took 3-4 % of an inline replay's reading
//! thread (perf, 1.1 GB capture).

use std::io;

use weft_sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::Relaxed};
use weft_sync::thread::{self, JoinHandle};
use weft_sync::Arc;

use crate::judge::{Judge, Trials};

/// The distances the helper works with, in bytes. Both chunks must be
/// non-zero, and for a real mapping multiples of the page size.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// How far ahead of the reader pages are mapped.
    pub ahead: usize,
    /// Bytes mapped per request, and how often the reader reports progress.
    pub chunk: usize,
    /// How far behind the reader pages are unmapped again.
    pub behind: usize,
    /// Bytes unmapped per request.
    pub drop_chunk: usize,
    /// How far ahead of the reader the helper reads the mapped bytes into
    /// the cache (0: it does not). Reading adds about a quarter to the
    /// helper's time spent mapping (perf, 1.1 GB capture); worth it only
    /// when that core is otherwise idle. Bounded by `ahead`: only mapped
    /// bytes are read.
    pub warm: usize,
    /// With `warm`: `Some` to warm only while it pays, as the helper
    /// judges by timing the reader with and without it now and then (see
    /// [`Judge`]); `None` to warm always.
    pub judge: Option<Judge>,
    /// `None`: the reader wakes the helper at every report. `Some(d)`: the
    /// helper polls, parking for `d` at a time, and, once the reader has
    /// not moved for 16 of those, for twice as long each time up to 5 ms;
    /// the reader wakes it only if it lags two chunks behind. For a helper
    /// with a core to itself (polling costs that core a little; waking
    /// costs the reader's). Parks shorter than 1 µs count as 1 µs.
    pub poll: Option<std::time::Duration>,
}

/// The longest a polling helper parks while its reader does not move.
const POLL_MAX: std::time::Duration = std::time::Duration::from_millis(5);

/// Parks a polling helper takes at its first length with the reader not
/// moving, before they grow.
const POLL_STILL: u32 = 16;

impl Window {
    /// 32 MiB ahead in 2 MiB requests; 64 MiB behind in 16 MiB requests
    /// (chunks are multiples of any page size).
    ///
    /// Behind: far more than the frames an engine's rings usually hold at
    /// once (a few MB of ordinary frames), so workers seldom map a page
    /// twice. Rings deep in jumbo or offload-sized frames can hold more
    /// (4,096 slots of 64 KiB are 256 MiB a worker): workers then map some
    /// pages again, which costs time, not correctness, and those pages stay
    /// mapped to the end. Unmapping interrupts every core running this
    /// process (a TLB shootdown), so those requests are few and large.
    pub const DEFAULT: Window = Window {
        ahead: 32 << 20,
        chunk: 2 << 20,
        behind: 64 << 20,
        drop_chunk: 16 << 20,
        warm: 0,
        judge: None,
        poll: None,
    };

    /// [`DEFAULT`](Self::DEFAULT), and the bytes read 3 MiB ahead of the
    /// reader, with progress reported every 1 MiB. The lead is more than
    /// one core's L2 (1 MiB on the machine measured), so what the helper
    /// read has moved on to the shared L3 when the reader arrives, and
    /// about a tenth of that L3 (32 MiB), leaving the rest to the reader's
    /// own data.
    /// Measured in README (inline replay of a 1.1 GB capture: 0.93× the
    /// time with mapping alone; 2 MiB leads or 512 KiB reports did no
    /// better). The helper polls every 100 µs while the reader moves (it
    /// reads 1 MiB in about 200 µs there).
    pub const WARM: Window = Window {
        chunk: 1 << 20,
        warm: 3 << 20,
        judge: Some(Judge::DEFAULT),
        poll: Some(std::time::Duration::from_micros(100)),
        ..Window::DEFAULT
    };
}

/// What the helper does to the pages of a mapping (a capture file's, in
/// weft-capture; a recorder in the loom model). `Send + Sync`: the helper
/// thread calls it while the reader reads.
pub trait Pager: Send + Sync + 'static {
    /// Bytes mapped.
    fn mapped_len(&self) -> usize;
    /// Maps `len` bytes from `offset` now.
    fn populate(&self, offset: usize, len: usize) -> io::Result<()>;
    /// Unmaps `len` bytes from `offset` (they stay readable).
    fn drop_behind(&self, offset: usize, len: usize) -> io::Result<()>;
    /// Reads `len` mapped bytes from `offset` into the cache (a hint; only
    /// asked with a non-zero [`Window::warm`], of bytes already mapped).
    fn warm(&self, offset: usize, len: usize);
}

struct Shared {
    progress: AtomicUsize,
    /// The progress the helper last acted on.
    seen: AtomicUsize,
    stop: AtomicBool,
    /// Trials of warming ([`Judge`]) finished, and how many it won.
    trials: AtomicU32,
    won: AtomicU32,
}

/// The reader's handle on its helper thread: the thread stops when this is
/// dropped. `Send + Sync`; reporting progress takes `&mut self`, so one
/// reader at a time does it.
pub struct Readahead {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The next reader position at which to report progress.
    next_report: usize,
    chunk: usize,
    /// The helper polls: wake it only when it lags.
    polls: bool,
}

impl std::fmt::Debug for Readahead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readahead")
            .field("progress", &self.shared.progress.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl Readahead {
    /// Starts the helper for `pager`, whose reader is at byte `pos`: it
    /// works from the start of the chunk holding `pos` (nothing before that
    /// is mapped ahead or unmapped). `None` if the thread cannot be started,
    /// the window has a zero chunk, or its judge times legs of no bytes
    /// (a trial would then end, and another begin, at every look).
    pub fn start<P: Pager>(
        pager: std::sync::Arc<P>,
        pos: usize,
        window: Window,
    ) -> Option<Readahead> {
        if window.chunk == 0 || window.drop_chunk == 0 {
            return None;
        }
        if window.judge.is_some_and(|j| j.timed == 0) {
            return None;
        }
        let shared = Arc::new(Shared {
            progress: AtomicUsize::new(pos),
            seen: AtomicUsize::new(pos),
            stop: AtomicBool::new(false),
            trials: AtomicU32::new(0),
            won: AtomicU32::new(0),
        });
        let s = shared.clone();
        let from = pos / window.chunk * window.chunk;
        let thread = thread::Builder::new()
            .name("weft-readahead".into())
            .spawn(move || run(&*pager, &s, from, window))
            .ok()?;
        Some(Readahead {
            shared,
            thread: Some(thread),
            next_report: pos,
            chunk: window.chunk,
            polls: window.poll.is_some(),
        })
    }

    /// The reader reached byte `pos`: cheap, it tells the helper only every
    /// `chunk` bytes.
    #[inline]
    pub fn advance(&mut self, pos: usize) {
        if pos >= self.next_report {
            self.next_report = pos.saturating_add(self.chunk);
            self.shared.progress.store(pos, Relaxed);
            let lags = || {
                pos >= self
                    .shared
                    .seen
                    .load(Relaxed)
                    .saturating_add(self.chunk.saturating_mul(2))
            };
            if !self.polls || lags() {
                if let Some(t) = &self.thread {
                    t.thread().unpark();
                }
            }
        }
    }
}

impl Readahead {
    /// Trials of warming the helper finished so far ([`Window::judge`]),
    /// and how many warming won.
    pub fn warm_trials(&self) -> (u32, u32) {
        (
            self.shared.trials.load(Relaxed),
            self.shared.won.load(Relaxed),
        )
    }
}

impl Drop for Readahead {
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// The helper's loop; `from` (a multiple of the window's chunk) is where
/// the reader was when it started.
fn run<P: Pager>(pager: &P, s: &Shared, from: usize, w: Window) {
    // Not on the core of a pinned reader that started it.
    crate::raw::float_current_thread();
    let len = pager.mapped_len();
    let (mut done, mut dropped, mut warmed) = (from, from, from);
    let mut drop_ok = true;
    // Warming judged by the reader's pace: only then is the clock read.
    let mut trials = w
        .judge
        .filter(|_| w.warm > 0)
        .map(|j| (Trials::new(j, from), std::time::Instant::now()));
    // Polling: wake-ups since the reader last moved, and where it was.
    let (mut still, mut last) = (0u32, usize::MAX);
    while !s.stop.load(Relaxed) {
        let progress = s.progress.load(Relaxed);
        // Read with the progress it times (mapping below may block).
        let seen_at = trials
            .as_ref()
            .map(|(_, clock)| u64::try_from(clock.elapsed().as_nanos()).unwrap_or(u64::MAX));
        let want = progress.saturating_add(w.ahead).min(len);
        while done < want && !s.stop.load(Relaxed) {
            let n = w.chunk.min(len - done);
            if pager.populate(done, n).is_err() {
                return;
            }
            done += n;
        }
        let warm = match (&mut trials, seen_at) {
            (Some((t, _)), Some(now)) => {
                let held = t.held;
                let warm = t.observe(progress, now);
                if t.held != held {
                    s.trials.store(t.held, Relaxed);
                    s.won.store(t.won, Relaxed);
                }
                warm
            }
            _ => true,
        };
        if warm {
            warm_ahead(pager, &mut warmed, progress, done, w.warm);
        }
        if drop_ok {
            drop_ok = unmap_behind(pager, &mut dropped, progress, w.drop_chunk, w.behind);
        }
        s.seen.store(progress, Relaxed);
        match w.poll {
            Some(first) => {
                let first = first.max(std::time::Duration::from_micros(1));
                // Short parks while the reader moves (it reports once a
                // chunk, so several parks may pass between reports);
                // growing ones once it has not moved for a while (it
                // wakes the helper if it gets far ahead meanwhile).
                still = if progress == last {
                    still.saturating_add(1)
                } else {
                    0
                };
                last = progress;
                let grown = first.saturating_mul(1 << still.saturating_sub(POLL_STILL).min(16));
                weft_sync::backoff::park_for(grown.min(POLL_MAX.max(first)));
            }
            None => thread::park(),
        }
    }
}

/// Unmapping behind a reader on the reader's own thread, without a helper:
/// for readers that leave no core for one (fanout workers, one per core),
/// where the helper's mapping ahead and the wake-ups it takes cost the busy
/// cores more than the page faults it saves (README, "Against the peers").
/// Pages fault in on the reader as it goes (a no-op for pages another
/// reader of the same mapping already faulted in); every [`Window::drop_chunk`]
/// of progress the pages more than [`Window::behind`] back are unmapped
/// (`MADV_DONTNEED` through [`Pager::drop_behind`]), so the resident set
/// stays bounded, as with the helper. Nothing is mapped ahead.
///
/// `Send` and `Sync` (plain numbers); one reader calls [`advance`](Self::advance).
#[derive(Clone, Copy, Debug)]
pub struct DropBehind {
    /// Unmapped up to here (a multiple of `chunk`).
    dropped: usize,
    /// The reader position at which to look again.
    next: usize,
    behind: usize,
    chunk: usize,
    /// The kernel refused once: unmapping stopped.
    refused: bool,
}

impl DropBehind {
    /// For a reader at byte `pos`, with [`Window::behind`] and
    /// [`Window::drop_chunk`] of `window` (nothing before the chunk holding
    /// `pos` is unmapped). `None` for a zero `drop_chunk`.
    pub fn new(pos: usize, window: Window) -> Option<DropBehind> {
        let chunk = window.drop_chunk;
        if chunk == 0 {
            return None;
        }
        Some(DropBehind {
            dropped: pos / chunk * chunk,
            next: pos,
            behind: window.behind,
            chunk,
            refused: false,
        })
    }

    /// The reader reached byte `pos`: unmaps what is now far enough behind
    /// it, looking only once a chunk. After the kernel refuses once, does
    /// nothing.
    #[inline]
    pub fn advance<P: Pager + ?Sized>(&mut self, pager: &P, pos: usize) {
        if pos >= self.next {
            self.next = pos.saturating_add(self.chunk);
            self.unmap(pager, pos);
        }
    }

    #[cold]
    fn unmap<P: Pager + ?Sized>(&mut self, pager: &P, pos: usize) {
        if !self.refused {
            self.refused = !unmap_behind(pager, &mut self.dropped, pos, self.chunk, self.behind);
        }
    }

    /// Bytes unmapped so far, from the start of the chunk the reader began in.
    pub fn dropped(&self) -> usize {
        self.dropped
    }
}

/// Reads the mapped bytes (below `done`) from `*warmed`, or from the
/// reader if it is past that, up to `warm` bytes ahead of the reader; each
/// byte at most once, and none the reader has passed.
pub(crate) fn warm_ahead<P: Pager>(
    pager: &P,
    warmed: &mut usize,
    progress: usize,
    done: usize,
    warm: usize,
) {
    if warm == 0 {
        return;
    }
    let from = (*warmed).max(progress);
    let to = progress.saturating_add(warm).min(done);
    if to > from {
        pager.warm(from, to - from);
        *warmed = to;
    }
}

/// Unmaps whole chunks from `*dropped` up to `behind` bytes before
/// `progress`; false once the kernel refuses (then the caller stops
/// trying). `*dropped` moves in steps of `chunk` from where it started (a
/// multiple of the mapping chunk), so it stays page-aligned: both are
/// multiples of the page size.
pub(crate) fn unmap_behind<P: Pager + ?Sized>(
    pager: &P,
    dropped: &mut usize,
    progress: usize,
    chunk: usize,
    behind: usize,
) -> bool {
    // Saturating: a huge `behind` means "never", not a wrapped bound.
    while progress.saturating_sub(behind).saturating_sub(*dropped) >= chunk {
        if pager.drop_behind(*dropped, chunk).is_err() {
            return false;
        }
        *dropped += chunk;
    }
    true
}

#[cfg(all(test, not(weft_loom)))]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Log(Mutex<Vec<(usize, usize)>>);
    impl Pager for Log {
        fn mapped_len(&self) -> usize {
            usize::MAX
        }
        fn populate(&self, _: usize, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn drop_behind(&self, offset: usize, len: usize) -> io::Result<()> {
            self.0.lock().unwrap().push((offset, len));
            Ok(())
        }
        fn warm(&self, offset: usize, len: usize) {
            self.0.lock().unwrap().push((offset, len));
        }
    }

    /// Records how far the helper mapped.
    struct Mapped(std::sync::atomic::AtomicUsize);
    impl Pager for Mapped {
        fn mapped_len(&self) -> usize {
            1 << 30
        }
        fn populate(&self, offset: usize, len: usize) -> io::Result<()> {
            self.0
                .store(offset + len, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        }
        fn drop_behind(&self, _: usize, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn warm(&self, _: usize, _: usize) {}
    }

    /// A reader's reports near the end of the address space, with chunks
    /// as large as a `Window` may hold, saturate instead of overflowing.
    #[test]
    fn reports_near_the_end_of_the_address_space_saturate() {
        let w = Window {
            ahead: 4096,
            chunk: usize::MAX / 2 + 1,
            behind: usize::MAX,
            drop_chunk: usize::MAX,
            warm: 0,
            judge: None,
            poll: Some(std::time::Duration::from_secs(3600)),
        };
        let mapped = std::sync::Arc::new(Mapped(std::sync::atomic::AtomicUsize::new(0)));
        let mut ra = Readahead::start(mapped, 0, w).expect("helper");
        ra.advance(usize::MAX / 2 + 1);
        ra.advance(usize::MAX - 1);
        ra.advance(usize::MAX);
    }

    /// A helper that judges warming runs trials as its reader goes and
    /// reports them; it warms before the first (warming is what was asked).
    #[test]
    fn a_judging_helper_runs_trials_and_reports_them() {
        use std::time::{Duration, Instant};
        let log = std::sync::Arc::new(Log(Mutex::new(Vec::new())));
        let w = Window {
            ahead: 8,
            chunk: 2,
            behind: usize::MAX,
            drop_chunk: 2,
            warm: 4,
            judge: Some(Judge {
                first: 8,
                settle: 2,
                timed: 4,
                keep: 16,
                margin_pct: 5,
            }),
            poll: None,
        };
        let mut ra = Readahead::start(log.clone(), 0, w).expect("helper");
        assert_eq!(ra.warm_trials(), (0, 0));
        let t = Instant::now();
        // Its first round, the reader still at 0: warmed.
        while log.0.lock().unwrap().is_empty() {
            assert!(t.elapsed() < Duration::from_secs(20), "never warmed");
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut pos = 0;
        while ra.warm_trials().0 < 2 {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "at {pos}: {:?}",
                ra.warm_trials()
            );
            pos += 2;
            ra.advance(pos);
            std::thread::sleep(Duration::from_micros(200));
        }
        drop(ra);
        // Warmed from the start, never a byte twice, and not while a trial
        // went without: the bytes the reader passed then were never read.
        let warmed = log.0.lock().unwrap().clone();
        assert_eq!(warmed.first(), Some(&(0, 4)), "{warmed:?}");
        assert!(
            warmed.windows(2).all(|p| p[0].0 + p[0].1 <= p[1].0),
            "{warmed:?}"
        );
        assert!(
            warmed.windows(2).any(|p| p[0].0 + p[0].1 < p[1].0),
            "{warmed:?}"
        );
    }

    /// A polling helper is woken by a reader that gets two chunks ahead of
    /// what it last saw, and not before: with parks of an hour, the
    /// helper maps ahead again within seconds only because it was woken.
    #[test]
    fn a_polling_helper_is_woken_when_it_lags_two_chunks() {
        use std::sync::atomic::Ordering::SeqCst;
        use std::time::{Duration, Instant};
        let map = std::sync::Arc::new(Mapped(0.into()));
        let w = Window {
            ahead: 4,
            chunk: 2,
            behind: 1 << 20,
            drop_chunk: 2,
            warm: 0,
            judge: None,
            poll: Some(Duration::from_secs(3600)),
        };
        let mapped_to = |want: usize| {
            let t = Instant::now();
            while map.0.load(SeqCst) < want {
                assert!(
                    t.elapsed() < Duration::from_secs(20),
                    "mapped {}",
                    map.0.load(SeqCst)
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        let mut ra = Readahead::start(map.clone(), 0, w).expect("helper");
        mapped_to(4); // its first round, then an hour's park
        ra.advance(2); // one chunk past what it saw: not woken
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(map.0.load(SeqCst), 4, "woken before it lagged");
        ra.advance(4); // two chunks: woken, maps to 4 + 4
        mapped_to(8);
        drop(ra); // and the stop wakes it too: this returns
    }

    /// Records how many CPUs the helper thread may run on.
    struct Where(Mutex<Option<usize>>);
    impl Pager for Where {
        fn mapped_len(&self) -> usize {
            1
        }
        fn populate(&self, _: usize, _: usize) -> io::Result<()> {
            let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
            *self.0.lock().unwrap() = Some(cpus);
            Ok(())
        }
        fn drop_behind(&self, _: usize, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn warm(&self, _: usize, _: usize) {}
    }

    /// A helper started from a thread pinned to one core does not stay on
    /// that core (it would take the reader's own CPU time).
    #[test]
    fn a_helper_started_by_a_pinned_thread_may_run_on_every_core() {
        let all = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        if all < 2 || cores.len() < 2 || !cfg!(target_os = "linux") {
            eprintln!("SKIPPED: needs two cores and Linux ({all} available)");
            return;
        }
        let seen = std::thread::spawn(move || {
            assert!(core_affinity::set_for_current(cores[1]));
            assert_eq!(std::thread::available_parallelism().unwrap().get(), 1);
            let pager = std::sync::Arc::new(Where(Mutex::new(None)));
            let helper = Readahead::start(pager.clone(), 0, Window::DEFAULT).expect("started");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while pager.0.lock().unwrap().is_none() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            drop(helper);
            let seen = *pager.0.lock().unwrap();
            seen
        })
        .join()
        .unwrap();
        assert_eq!(seen, Some(all), "the helper's CPUs");
    }

    #[test]
    fn reads_ahead_of_the_reader_each_byte_once_and_only_mapped_ones() {
        let log = Log(Mutex::new(Vec::new()));
        let mut warmed = 0;
        // Reader at 0, 3 ahead wanted, 8 mapped.
        warm_ahead(&log, &mut warmed, 0, 8, 3);
        assert_eq!(warmed, 3);
        // The reader moved 1 on: only the new byte.
        warm_ahead(&log, &mut warmed, 1, 8, 3);
        // The reader overtook what was read: from the reader, not behind it.
        warm_ahead(&log, &mut warmed, 10, 16, 3);
        // Only up to what is mapped.
        warm_ahead(&log, &mut warmed, 20, 21, 3);
        // Nothing new, and nothing with a zero lead.
        warm_ahead(&log, &mut warmed, 20, 21, 3);
        warm_ahead(&log, &mut warmed, 30, 40, 0);
        assert_eq!(warmed, 21);
        assert_eq!(*log.0.lock().unwrap(), [(0, 3), (3, 1), (10, 3), (20, 1)]);
    }

    #[test]
    fn unmaps_whole_chunks_the_reader_passed_by_behind() {
        let log = Log(Mutex::new(Vec::new()));
        let mut dropped = 0;
        // The reader at 12: all but the last 4 before it, in chunks of 2.
        assert!(unmap_behind(&log, &mut dropped, 12, 2, 4));
        assert_eq!(dropped, 8);
        // Nothing more until the reader moves on a whole chunk.
        assert!(unmap_behind(&log, &mut dropped, 13, 2, 4));
        assert_eq!(dropped, 8);
        assert!(unmap_behind(&log, &mut dropped, 14, 2, 4));
        assert_eq!(
            *log.0.lock().unwrap(),
            [(0, 2), (2, 2), (4, 2), (6, 2), (8, 2)]
        );
        // A margin beyond the reader unmaps nothing.
        let mut none = 0;
        assert!(unmap_behind(&log, &mut none, 12, 2, usize::MAX));
        assert_eq!(none, 0);
    }

    /// Allows as many unmappings as its count, logging them, then refuses.
    struct Refusing(Mutex<(usize, Vec<(usize, usize)>)>);
    impl Pager for Refusing {
        fn mapped_len(&self) -> usize {
            usize::MAX
        }
        fn populate(&self, _: usize, _: usize) -> io::Result<()> {
            unreachable!("nothing is mapped ahead")
        }
        fn drop_behind(&self, offset: usize, len: usize) -> io::Result<()> {
            let mut l = self.0.lock().unwrap();
            if l.0 == 0 {
                return Err(io::ErrorKind::Unsupported.into());
            }
            l.0 -= 1;
            l.1.push((offset, len));
            Ok(())
        }
        fn warm(&self, _: usize, _: usize) {
            unreachable!("nothing is read ahead")
        }
    }

    #[test]
    fn drops_behind_on_the_reader_once_a_chunk_and_stops_when_refused() {
        let w = Window {
            behind: 8,
            drop_chunk: 4,
            ..Window::DEFAULT
        };
        let pager = Refusing(Mutex::new((3, Vec::new())));
        let log = |p: &Refusing| p.0.lock().unwrap().1.clone();
        // A reader starting at 5 leaves the chunk before it alone.
        let mut d = DropBehind::new(5, w).expect("a drop chunk");
        assert_eq!(d.dropped(), 4);
        d.advance(&pager, 15);
        assert!(
            log(&pager).is_empty(),
            "only 7 bytes behind the first chunk"
        );
        d.advance(&pager, 16);
        assert!(log(&pager).is_empty(), "looked at 15: next at 19");
        d.advance(&pager, 19);
        assert_eq!(log(&pager), [(4, 4)]);
        // A long stride unmaps every whole chunk passed at once.
        d.advance(&pager, 40);
        assert_eq!(log(&pager), [(4, 4), (8, 4), (12, 4)]);
        // The fourth was refused there: no more requests after that.
        assert_eq!(d.dropped(), 16);
        d.advance(&pager, 60);
        d.advance(&pager, 100);
        assert_eq!(d.dropped(), 16);
        pager.0.lock().unwrap().0 = 10;
        d.advance(&pager, 200);
        assert_eq!(log(&pager).len(), 3);
        assert!(DropBehind::new(0, Window { drop_chunk: 0, ..w }).is_none());
    }

    #[test]
    fn a_window_with_a_zero_chunk_is_refused() {
        let log = std::sync::Arc::new(Log(Mutex::new(Vec::new())));
        for (chunk, drop_chunk) in [(0, 1), (1, 0)] {
            let w = Window {
                chunk,
                drop_chunk,
                ..Window::DEFAULT
            };
            assert!(Readahead::start(log.clone(), 0, w).is_none());
        }
        // A judge that would time legs of no bytes.
        let judge = crate::judge::Judge {
            timed: 0,
            ..crate::judge::Judge::DEFAULT
        };
        let w = Window {
            judge: Some(judge),
            ..Window::DEFAULT
        };
        assert!(Readahead::start(log.clone(), 0, w).is_none());
        let w = Window {
            judge: Some(crate::judge::Judge::DEFAULT),
            ..Window::DEFAULT
        };
        assert!(Readahead::start(log, 0, w).is_some());
    }
}

/// `Send + Sync`, as documented.
#[allow(dead_code)]
fn readahead_is_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Readahead>();
    both::<DropBehind>();
}
