//! Engine behaviour under stress, failure and shutdown. Every test runs its
//! engine on a helper thread and fails (instead of hanging) after a timeout.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use weft_capture::Capture;
use weft_engine::{
    Backpressure, DispatchHash, Engine, EngineBuilder, EngineError, EngineReport, PipelineConfig,
};
use weft_gen::GenConfig;
use weft_reasm::{ConnInfo, Context, ScatterGather, Segment, Stream, StreamFactory};
use weft_wire::{LinkType, Timestamp};

/// Runs `f` on a thread; panics if it does not finish within `secs`.
fn bounded<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("engine test timed out (deadlock?)")
}

/// Traffic with every impairment the engine tests place flows through:
/// `conns` connections of 1 B to 8 KB each way, `concurrent` at once,
/// reordered, duplicated, overlapping, lossy, some IPv6, some behind VLAN
/// tags, some reset, 4-tuples reused from a pool of `tuple_pool`.
fn impaired(seed: u64, conns: u64, concurrent: usize, tuple_pool: u32) -> GenConfig {
    GenConfig {
        seed,
        conns,
        concurrent,
        min_bytes: 1,
        max_bytes: 8_000,
        reorder: 0.05,
        duplicate: 0.02,
        overlap: 0.02,
        loss: 0.01,
        ipv6_fraction: 0.2,
        vlan_fraction: 0.1,
        rst_fraction: 0.1,
        tuple_pool,
        ..GenConfig::default()
    }
}

fn trace(cfg: &GenConfig) -> Vec<u8> {
    let mut v = Vec::new();
    weft_gen::generate(cfg, &mut v).unwrap();
    v
}

/// Counts bytes; optionally panics on a connection or sleeps per delivery.
#[derive(Clone, Copy, Default)]
struct Behaviour {
    /// (worker, connection id within that worker) whose handler panics.
    panic_on: Option<(usize, u64)>,
    /// A worker whose streams panic when completed.
    panic_on_complete: Option<usize>,
    slow: bool,
}

#[derive(Clone, Default)]
struct Totals {
    delivered: Arc<AtomicU64>,
    completed: Arc<AtomicU64>,
    /// The sum of the dispatch hashes of every stream's first segment.
    hashes: Arc<AtomicU64>,
    /// The sum of every stream's hash of the bytes it was delivered, in
    /// order (so a run that delivers other bytes, or in another order, of
    /// the same length differs).
    content: Arc<AtomicU64>,
}

struct Counting {
    b: Behaviour,
    worker: usize,
    id: u64,
    bytes: u64,
    /// FNV-1a of the delivered bytes, both directions, in delivery order.
    hash: u64,
    totals: Totals,
}

impl Stream for Counting {
    fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
        if self.b.panic_on == Some((self.worker, self.id)) {
            panic!("handler failure on purpose");
        }
        if self.b.slow {
            std::thread::sleep(Duration::from_micros(200));
        }
        self.bytes += sg.len() as u64;
        for c in sg.chunks() {
            for &b in c {
                self.hash = (self.hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    fn complete(&mut self, _: &Context) -> bool {
        if self.b.panic_on_complete == Some(self.worker) {
            panic!("completion failure on purpose");
        }
        self.totals.delivered.fetch_add(self.bytes, Relaxed);
        self.totals.content.fetch_add(self.hash, Relaxed);
        self.totals.completed.fetch_add(1, Relaxed);
        true
    }
}

struct Factory {
    b: Behaviour,
    worker: usize,
    totals: Totals,
}

impl StreamFactory for Factory {
    type Stream = Counting;
    fn new_stream(&mut self, c: &ConnInfo, seg: &Segment<'_>, _: &Context) -> Counting {
        self.totals.hashes.fetch_add(u64::from(seg.hash), Relaxed);
        Counting {
            b: self.b,
            worker: self.worker,
            id: c.id,
            bytes: 0,
            hash: 0xcbf2_9ce4_8422_2325,
            totals: self.totals.clone(),
        }
    }
}

struct Run {
    result: Result<EngineReport<Factory>, EngineError>,
    delivered: u64,
    completed: u64,
    hashes: u64,
    content: u64,
}

fn run(pcap: Vec<u8>, builder: EngineBuilder, b: Behaviour) -> Run {
    run_feeding(builder, b, |engine| dispatch_all(engine, pcap))
}

/// Dispatches every frame of `pcap`, copied.
fn dispatch_all(engine: &mut Engine<Factory>, pcap: Vec<u8>) {
    let mut cap = Capture::from_bytes(pcap, "mem").unwrap();
    while let Some(f) = cap.next_frame() {
        let f = f.unwrap();
        engine.dispatch(
            LinkType::from_raw(f.link_type),
            f.data,
            Timestamp(f.ts_nanos),
        );
    }
}

/// An engine of counting streams built by `builder`, and their totals.
fn counting(builder: EngineBuilder, b: Behaviour) -> (Engine<Factory>, Totals) {
    let totals = Totals::default();
    let t = totals.clone();
    let engine = builder
        .build(move |worker| Factory {
            b,
            worker,
            totals: t.clone(),
        })
        .unwrap();
    (engine, totals)
}

/// Builds an engine of counting streams, lets `feed` dispatch frames, and
/// finishes it.
fn run_feeding(
    builder: EngineBuilder,
    b: Behaviour,
    feed: impl FnOnce(&mut Engine<Factory>),
) -> Run {
    let (mut engine, totals) = counting(builder, b);
    feed(&mut engine);
    let result = engine.finish();
    Run {
        result,
        delivered: totals.delivered.load(Relaxed),
        completed: totals.completed.load(Relaxed),
        hashes: totals.hashes.load(Relaxed),
        content: totals.content.load(Relaxed),
    }
}

#[test]
fn tens_of_thousands_of_concurrent_flows_on_more_workers_than_cores() {
    // With rings (tiny ones), with fanout workers, and with a dispatcher
    // that runs a worker itself.
    let cfg = GenConfig {
        conns: 20_000,
        concurrent: 20_000,
        min_bytes: 1,
        max_bytes: 600,
        exchanges: 1,
        reorder: 0.02,
        ..GenConfig::default()
    };
    let pcap = trace(&cfg);
    let fanout_pcap = Arc::new(pcap.clone());
    let own_pcap = pcap.clone();
    let p = pcap.clone();
    let inline = bounded(120, move || {
        run(p, EngineBuilder::new().workers(0), Behaviour::default())
    });
    let inline_report = inline.result.unwrap();
    assert_eq!(inline.completed, 20_000);
    let many = bounded(120, move || {
        let b = EngineBuilder::new().workers(6).ring_capacity(8).batch(3);
        run(pcap, b, Behaviour::default())
    });
    let report = many.result.unwrap();
    assert_eq!(many.delivered, inline.delivered);
    assert_eq!(many.content, inline.content);
    assert_eq!(
        many.completed, 20_000,
        "each stream's complete exactly once"
    );
    let total = report.stats.reasm_total();
    assert_eq!(total.conns_created, 20_000);
    assert!(total.balanced());
    assert_eq!(
        total.delivered_bytes,
        inline_report.stats.reasm_total().delivered_bytes
    );
    let sent: u64 = report.stats.dispatch.sent.iter().sum();
    let processed: u64 = report.stats.frames.iter().map(|f| f.frames).sum();
    assert_eq!(sent, processed, "block mode loses nothing");
    // Six fanout workers on the same traffic, each reading all of it.
    let (fan, _) = bounded(120, move || {
        let b = EngineBuilder::new().workers(6).pin(false);
        run_fanout(b, Behaviour::default(), |e| {
            feed_mixed(e, &fanout_pcap, 1_000_000, 1_000_000)
        })
    });
    let fan_report = fan.result.unwrap();
    assert_eq!(fan.delivered, inline.delivered);
    assert_eq!(fan.content, inline.content);
    assert_eq!(fan.completed, 20_000, "each stream's complete exactly once");
    assert_eq!(fan_report.stats.reasm_total(), total);
    // Six workers, the dispatcher running the first, tiny rings to the rest.
    let p = own_pcap;
    let own = bounded(120, move || {
        let b = EngineBuilder::new()
            .workers(6)
            .ring_capacity(8)
            .batch(3)
            .dispatcher_works(true)
            .table_weights(vec![1, 2, 2, 2, 2, 2]);
        run(p, b, Behaviour::default())
    });
    let own_report = own.result.unwrap();
    assert_eq!(own.delivered, inline.delivered);
    assert_eq!(own.content, inline.content);
    assert_eq!(own.completed, 20_000, "each stream's complete exactly once");
    assert_eq!(own_report.stats.reasm_total(), total);
    received_is_processed_plus_dropped(&own_report);
}

/// Expects a worker panic of `worker` whose message contains `text`.
fn expect_panic_of(r: &Run, worker: usize, text: &str) {
    match &r.result {
        Err(EngineError::WorkerPanicked { worker: w, message }) => {
            assert_eq!(*w, worker, "{message}");
            assert!(message.contains(text), "{message}");
        }
        Err(e) => panic!("expected a worker panic, got {e}"),
        Ok(_) => panic!("expected a worker panic, got success"),
    }
}

/// 300 connections of 1 to 20 KB each way, 50 at once: enough to fill
/// small rings behind slow handlers.
fn bulky_trace() -> Vec<u8> {
    trace(&GenConfig {
        conns: 300,
        concurrent: 50,
        min_bytes: 1000,
        max_bytes: 20_000,
        ..GenConfig::default()
    })
}

/// Every worker received what it processed plus what its ring dropped.
fn received_is_processed_plus_dropped(report: &EngineReport<impl StreamFactory>) {
    let d = &report.stats.dispatch;
    for w in 0..d.sent.len() {
        assert_eq!(
            d.sent[w],
            report.stats.frames[w].frames + d.ring_drops[w],
            "worker {w}: received = processed + dropped"
        );
    }
}

/// `frames` laid end to end in one buffer, with each one's offset,
/// length and time: a block for `dispatch_in_block`.
fn one_block(frames: &[(Vec<u8>, Timestamp)]) -> (Vec<u8>, Vec<(usize, usize, Timestamp)>) {
    let mut bytes = Vec::new();
    let mut at = Vec::new();
    for (f, ts) in frames {
        at.push((bytes.len(), f.len(), *ts));
        bytes.extend_from_slice(f);
    }
    (bytes, at)
}

#[test]
fn drop_mode_accounts_for_every_frame() {
    let pcap = bulky_trace();
    let r = bounded(120, move || {
        let b = EngineBuilder::new()
            .workers(2)
            .ring_capacity(4)
            .batch(1)
            .backpressure(Backpressure::Drop);
        run(
            pcap,
            b,
            Behaviour {
                slow: true,
                ..Behaviour::default()
            },
        )
    });
    let report = r.result.unwrap();
    let d = &report.stats.dispatch;
    let drops: u64 = d.ring_drops.iter().sum();
    assert!(drops > 0, "a slow handler behind 4-slot rings must drop");
    received_is_processed_plus_dropped(&report);
    assert!(report.stats.reasm_total().balanced());
}

#[test]
fn a_panicking_handler_is_an_error_and_nothing_hangs() {
    let cfg = GenConfig {
        conns: 200,
        concurrent: 40,
        ..GenConfig::default()
    };
    let pcap = trace(&cfg);
    let r = bounded(60, move || {
        let b = EngineBuilder::new().workers(3).ring_capacity(16);
        run(
            pcap,
            b,
            Behaviour {
                panic_on: Some((1, 3)),
                ..Behaviour::default()
            },
        )
    });
    expect_panic_of(&r, 1, "on purpose");
    assert!(r.completed > 0, "the other workers finished their streams");
}

#[test]
fn finish_drains_what_is_still_in_the_rings() {
    let cfg = GenConfig {
        conns: 500,
        concurrent: 100,
        ..GenConfig::default()
    };
    let pcap = trace(&cfg);
    let p = pcap.clone();
    let inline = bounded(60, move || {
        run(p, EngineBuilder::new().workers(0), Behaviour::default())
    });
    // Large batches and rings: most frames are still queued when finish runs.
    let r = bounded(60, move || {
        let b = EngineBuilder::new()
            .workers(2)
            .ring_capacity(1 << 16)
            .batch(4096);
        run(pcap, b, Behaviour::default())
    });
    r.result.unwrap();
    assert_eq!(r.delivered, inline.delivered);
    assert_eq!(r.content, inline.content);
    assert_eq!(r.completed, inline.completed);
}

#[test]
fn stats_are_readable_while_running_and_pinning_is_reported() {
    let cfg = GenConfig {
        conns: 100,
        concurrent: 20,
        ..GenConfig::default()
    };
    let pcap = trace(&cfg);
    bounded(60, move || {
        let totals = Totals::default();
        let mut engine = EngineBuilder::new()
            .workers(2)
            .build(|worker| Factory {
                b: Behaviour::default(),
                worker,
                totals: totals.clone(),
            })
            .unwrap();
        dispatch_all(&mut engine, pcap);
        engine.flush();
        assert_eq!(engine.snapshot().len(), 2);
        let report = engine.finish().unwrap();
        assert_eq!(report.stats.pinned.len(), 2);
        assert!(report.stats.reasm_total().segments > 0);
    });
}

/// Feeds `pcap` mixing zero-copy frames, copied frames and block switches
/// (every `switch_every` frames the next of three blocks takes over: the same
/// capture behind 0, 1 or 2 bytes of padding, so a frame read from the wrong
/// block is garbage), as a reader of several files would.
fn run_mixed(pcap: Vec<u8>, builder: EngineBuilder, copy_every: usize, switch_every: usize) -> Run {
    run_feeding(builder, Behaviour::default(), |engine| {
        feed_mixed(engine, &pcap, copy_every, switch_every)
    })
}

/// [`run_mixed`]'s feeding, of one engine.
fn feed_mixed(engine: &mut Engine<Factory>, pcap: &[u8], copy_every: usize, switch_every: usize) {
    let mut cap = Capture::from_bytes(pcap.to_vec(), "mem").unwrap();
    let shared = cap.shared_bytes().expect("in-memory capture");
    let blocks: Vec<Arc<Vec<u8>>> = (0..3)
        .map(|pad| Arc::new([vec![0xee; pad], pcap.to_vec()].concat()))
        .collect();
    let mut pad = 0;
    engine.set_block(blocks[pad].clone());
    let mut i = 0usize;
    while let Some(f) = cap.next_frame() {
        let f = f.unwrap();
        let (link, ts) = (LinkType::from_raw(f.link_type), Timestamp(f.ts_nanos));
        if i % switch_every == switch_every - 1 {
            pad = (pad + 1) % blocks.len();
            engine.set_block(blocks[pad].clone());
        }
        if i % copy_every == 0 {
            engine.dispatch(link, f.data, ts);
        } else {
            let off = shared.offset_of(f.data).unwrap() + pad;
            engine.dispatch_in_block(link, off, f.data.len(), ts);
        }
        i += 1;
    }
}

/// Runs a fanout engine of counting streams, each worker fed by `feed`;
/// also returns what each worker saw of itself while running: its index,
/// the engine's worker count and the number of live snapshots.
fn run_fanout(
    builder: EngineBuilder,
    b: Behaviour,
    feed: impl Fn(&mut Engine<Factory>) + Sync,
) -> (Run, Vec<(Option<usize>, usize, usize)>) {
    let totals = Totals::default();
    let t = totals.clone();
    let result = builder.fanout(
        move |worker| Factory {
            b,
            worker,
            totals: t.clone(),
        },
        |engine| {
            feed(engine);
            (engine.index(), engine.workers(), engine.snapshot().len())
        },
    );
    let (result, seen) = match result {
        Ok((report, seen)) => (Ok(report), seen),
        Err(e) => (Err(e), Vec::new()),
    };
    let run = Run {
        result,
        delivered: totals.delivered.load(Relaxed),
        completed: totals.completed.load(Relaxed),
        hashes: totals.hashes.load(Relaxed),
        content: totals.content.load(Relaxed),
    };
    (run, seen)
}

/// Fanout workers, each reading every frame, keep exactly the flows a
/// dispatcher would send them (the same per-worker counts as an engine with
/// rings), process each kept frame once, and deliver what inline mode
/// delivers, whether frames come zero-copy, copied or across block
/// switches; each worker knows its index while it runs.
#[test]
fn fanout_workers_keep_exactly_the_flows_a_dispatcher_sends_them() {
    let pcap = Arc::new(trace(&impaired(9, 3_000, 1_000, 500)));
    let p = pcap.to_vec();
    let inline = bounded(120, move || {
        run(p, EngineBuilder::new().workers(0), Behaviour::default())
    });
    let want = inline.result.unwrap().stats;
    for workers in [1, 2, 3, 4, 8] {
        let p = pcap.to_vec();
        let rings = bounded(120, move || {
            let b = EngineBuilder::new().workers(workers).pin(false);
            run(p, b, Behaviour::default())
        });
        let ring_hashes = rings.hashes;
        assert_ne!(ring_hashes, 0);
        let rings = rings.result.unwrap().stats;
        for (copy_every, switch_every) in [(1_000_000, 1_000_000), (5, 37)] {
            let p = pcap.clone();
            let (fan, seen) = bounded(120, move || {
                let b = EngineBuilder::new().workers(workers).pin(false);
                run_fanout(b, Behaviour::default(), |e| {
                    feed_mixed(e, &p, copy_every, switch_every)
                })
            });
            let what = format!("{workers} workers, copy every {copy_every}");
            let got = fan.result.unwrap();
            assert_eq!(got.factories.len(), workers, "{what}");
            let d = &got.stats.dispatch;
            assert_eq!(d.frames, want.dispatch.frames, "{what}: every frame read");
            assert_eq!(d.sent, rings.dispatch.sent, "{what}: same flows per worker");
            for w in 0..workers {
                assert_eq!(got.stats.frames[w].frames, d.sent[w], "{what}: worker {w}");
            }
            assert_eq!(fan.delivered, inline.delivered, "{what}");
            assert_eq!(fan.content, inline.content, "{what}");
            assert_eq!(fan.completed, inline.completed, "{what}");
            assert_eq!(
                fan.hashes, ring_hashes,
                "{what}: segments carry the dispatch hash"
            );
            let total = got.stats.reasm_total();
            assert_eq!(total.delivered_bytes, want.reasm_total().delivered_bytes);
            assert_eq!(total.conns_created, want.reasm_total().conns_created);
            assert_eq!(total, rings.reasm_total(), "{what}");
            let expect: Vec<_> = (0..workers).map(|i| (Some(i), workers, workers)).collect();
            assert_eq!(seen, expect, "{what}");
        }
    }
}

/// Generated frames made awkward for the dispatcher's header peek: every
/// third plain IPv4 frame gets three VLAN tags (the peek takes two; the
/// full decoder more), and every third other one with payload is cut into
/// two IPv4 fragments (put back together by the dispatcher's
/// defragmenter, then hashed).
fn awkward(pcap: &[u8]) -> Vec<(Vec<u8>, Timestamp)> {
    let mut cap = Capture::from_bytes(pcap.to_vec(), "t").unwrap();
    let mut out = Vec::new();
    let mut i = 0u32;
    while let Some(f) = cap.next_frame() {
        let f = f.unwrap();
        let (data, ts) = (f.data.to_vec(), Timestamp(f.ts_nanos));
        let plain_v4 = data.len() > 34 && data[12..14] == [0x08, 0x00] && data[14] == 0x45;
        i += 1;
        if plain_v4 && i % 3 == 1 {
            let mut tagged = data[..12].to_vec();
            for vid in [5u8, 6, 7] {
                tagged.extend([0x81, 0x00, 0, vid]);
            }
            tagged.extend(&data[12..]);
            out.push((tagged, ts));
        } else if plain_v4 && i % 3 == 2 && data.len() > 14 + 20 + 40 {
            out.extend(two_fragments(&data).map(|f| (f, ts)));
        } else {
            out.push((data, ts));
        }
    }
    out
}

/// An Ethernet frame of an IPv4 datagram (a 20-byte header) cut into two
/// fragments 24 bytes into its payload (a multiple of 8, past the TCP
/// header's fixed part).
fn two_fragments(frame: &[u8]) -> [Vec<u8>; 2] {
    let (eth, ip) = (&frame[..14], &frame[14..]);
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).min(ip.len());
    let (head, body) = (&ip[..20], &ip[20..total]);
    let cut = 24;
    [(&body[..cut], 0u16, true), (&body[cut..], 3, false)].map(|(part, off, more)| {
        let mut h = head.to_vec();
        h[2..4].copy_from_slice(&((20 + part.len()) as u16).to_be_bytes());
        let flags = if more { 0x2000 } else { 0 } | off;
        h[6..8].copy_from_slice(&flags.to_be_bytes());
        [eth, &h, part].concat()
    })
}

/// Frames with their times, shared by the runs of a test.
type Frames = Arc<Vec<(Vec<u8>, Timestamp)>>;

/// Runs `frames` (copied, Ethernet) through `workers` workers: inline for
/// 0; otherwise with rings, then (in the list) with fanout and with a
/// dispatcher that runs worker 0.
fn run_frames(frames: &Frames, workers: usize) -> (Run, Vec<Run>) {
    run_frames_fed(frames, workers, false, PipelineConfig::default())
}

/// [`run_frames`], telling the engine each frame was `whole` (as long on
/// the wire as captured: `dispatch_wire`) or not (`dispatch`), with
/// pipelines of `cfg`.
fn run_frames_fed(
    frames: &Frames,
    workers: usize,
    whole: bool,
    cfg: PipelineConfig,
) -> (Run, Vec<Run>) {
    let feed = move |frames: Frames| {
        move |e: &mut Engine<Factory>| {
            for (f, ts) in frames.iter() {
                if whole {
                    e.dispatch_wire(LinkType::Ethernet, f, f.len() as u32, *ts);
                } else {
                    e.dispatch(LinkType::Ethernet, f, *ts);
                }
            }
        }
    };
    let builder = EngineBuilder::new()
        .workers(workers)
        .pin(false)
        .pipeline(cfg);
    let (f, b) = (frames.clone(), builder.clone());
    let first = bounded(60, move || run_feeding(b, Behaviour::default(), feed(f)));
    if workers == 0 {
        return (first, Vec::new());
    }
    let (f, b) = (frames.clone(), builder.clone());
    let (fan, _) = bounded(60, move || run_fanout(b, Behaviour::default(), feed(f)));
    let (f, b) = (frames.clone(), builder.dispatcher_works(true));
    let own = bounded(60, move || run_feeding(b, Behaviour::default(), feed(f)));
    (first, vec![fan, own])
}

/// Fanout workers place frames the header peek cannot (more VLAN tags than
/// it reads, IPv4 fragments) exactly as a dispatcher feeding rings does,
/// and deliver what inline mode delivers.
#[test]
fn fanout_workers_place_frames_the_peek_cannot_as_a_dispatcher_does() {
    let cfg = GenConfig {
        seed: 21,
        conns: 400,
        concurrent: 100,
        min_bytes: 100,
        max_bytes: 6_000,
        ..GenConfig::default()
    };
    let frames = Arc::new(awkward(&trace(&cfg)));
    let (inline, _) = run_frames(&frames, 0);
    let want = inline.result.unwrap().stats;
    assert!(want.dispatch.frames > 0);
    let reasm = want.reasm_total();
    assert!(
        want.frames_total().defragmented > 0,
        "fragments were put together"
    );
    assert_eq!(want.frames_total().undecodable(), 0, "three tags decode");
    for workers in [2, 3] {
        let (rings, others) = run_frames(&frames, workers);
        assert_eq!(others.len(), 2);
        let (rings_hashes, rings) = (rings.hashes, rings.result.unwrap().stats);
        assert!(rings.dispatch.defragmented > 0);
        for (k, fan) in others.into_iter().enumerate() {
            let what = format!("{workers} workers, run {k}");
            let got = fan.result.unwrap().stats;
            assert_eq!(rings.dispatch.undecodable + got.dispatch.undecodable, 0);
            assert_eq!(got.dispatch.defragmented, rings.dispatch.defragmented);
            assert_eq!(got.dispatch.sent, rings.dispatch.sent, "{what}");
            assert_eq!(got.reasm_total(), rings.reasm_total(), "{what}");
            assert_eq!(got.reasm_total().delivered_bytes, reasm.delivered_bytes);
            assert_eq!(fan.delivered, inline.delivered, "{what}");
            assert_eq!(fan.content, inline.content, "{what}");
            assert_eq!(fan.completed, inline.completed, "{what}");
            assert_eq!(fan.hashes, rings_hashes, "{what}");
        }
    }
}

/// A fragment stamped earlier than frames already seen (a merged capture)
/// meets the defragmenter's timeout at the newest packet time in every
/// mode: inline it completed a datagram that a dispatcher's tick (at the
/// newest time) had already let go, and the outputs differed.
#[test]
fn fragments_expire_alike_in_every_mode_when_time_goes_back() {
    let cfg = GenConfig {
        seed: 8,
        conns: 6,
        concurrent: 3,
        min_bytes: 2_000,
        max_bytes: 4_000,
        ..GenConfig::default()
    };
    let mut frames = awkward(&trace(&cfg));
    let is_first_fragment = |f: &[u8]| f.len() > 34 && f[12..14] == [8, 0] && f[20] == 0x20;
    let i = frames
        .iter()
        .position(|(f, _)| is_first_fragment(f))
        .expect("a fragment");
    let t0 = frames[i].1;
    // The datagram's first part at t0; then a frame of another flow 31 s
    // later (past the 30 s timeout); then the second part, stamped 29 s
    // after the first; the rest as they were (earlier still).
    let second = frames.remove(i + 1);
    let j = (i + 1..frames.len())
        .find(|&j| !is_first_fragment(&frames[j].0) && frames[j].0[20] & 0x3f == 0)
        .expect("a plain frame after it");
    let mut later = frames.remove(j);
    later.1 = Timestamp(t0.0 + 31_000_000_000);
    frames.insert(i + 1, later);
    frames.insert(i + 2, (second.0, Timestamp(t0.0 + 29_000_000_000)));
    let frames = Arc::new(frames);
    let (inline, _) = run_frames(&frames, 0);
    let want = inline.result.unwrap().stats;
    assert!(
        want.frames_total().defragmented > 0,
        "others were put together"
    );
    assert!(want.frames_total().defrag.timed_out > 0, "that one expired");
    let (rings, others) = run_frames(&frames, 2);
    for (k, got) in std::iter::once(rings).chain(others).enumerate() {
        let stats = got.result.unwrap().stats;
        assert_eq!(
            stats.dispatch.defragmented,
            want.frames_total().defragmented,
            "run {k}"
        );
        // Everything but the pages' peak (a sum of the workers' peaks).
        let (mut a, mut b) = (stats.reasm_total(), want.reasm_total());
        (a.pages_peak, b.pages_peak) = (0, 0);
        assert_eq!(a, b, "run {k}");
        assert_eq!(got.delivered, inline.delivered, "run {k}");
        assert_eq!(got.content, inline.content, "run {k}");
    }
}

/// Damaged frames (bytes of the headers overwritten at random, frames cut
/// short) reach the same verdicts inline, with rings and with fanout
/// workers: the same deliveries and statistics, and the same workers for
/// the same frames with rings and fanout.
#[test]
fn damaged_frames_reach_the_same_verdicts_in_every_mode() {
    let cfg = GenConfig {
        seed: 33,
        conns: 120,
        concurrent: 40,
        min_bytes: 1,
        max_bytes: 3_000,
        ipv6_fraction: 0.3,
        vlan_fraction: 0.3,
        reorder: 0.05,
        ..GenConfig::default()
    };
    let clean = awkward(&trace(&cfg));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut refused = 0;
    for round in 0..40 {
        let mut frames = clean.clone();
        for (f, _) in frames.iter_mut() {
            match next() % 8 {
                0 if !f.is_empty() => {
                    // A header byte (the first 80) overwritten.
                    let at = (next() as usize) % f.len().min(80);
                    f[at] = next() as u8;
                }
                1 => {
                    let keep = (next() as usize) % (f.len() + 1);
                    f.truncate(keep);
                }
                _ => {}
            }
        }
        let frames = Arc::new(frames);
        let (inline, _) = run_frames(&frames, 0);
        let want = inline.result.unwrap().stats;
        for workers in [2, 3] {
            let (rings, others) = run_frames(&frames, workers);
            let (rings_delivered, rings_content) = (rings.delivered, rings.content);
            let rings = rings.result.unwrap().stats;
            assert_eq!(others.len(), 2);
            for (k, fan) in others.into_iter().enumerate() {
                let what = format!("round {round}, {workers} workers, run {k}");
                let got = fan.result.unwrap().stats;
                assert_eq!(got.dispatch.sent, rings.dispatch.sent, "{what}");
                assert_eq!(got.dispatch.not_tcp, rings.dispatch.not_tcp, "{what}");
                assert_eq!(
                    got.dispatch.undecodable, rings.dispatch.undecodable,
                    "{what}"
                );
                assert_eq!(got.dispatch.refused, rings.dispatch.refused, "{what}");
                // What workers refused and could not decode, summed with
                // what the dispatcher did, is what inline mode counts.
                let (f, w) = (got.frames_total(), want.frames_total());
                assert_eq!(
                    (
                        f.refused + got.dispatch.refused,
                        f.undecodable() + got.dispatch.undecodable
                    ),
                    (w.refused, w.undecodable()),
                    "{what}: as inline"
                );
                refused += rings.dispatch.undecodable + rings.dispatch.not_tcp;
                assert_eq!(got.reasm_total(), rings.reasm_total(), "{what}");
                // (The peak of pages in use is per worker: their sum is not one
                // pipeline's peak.)
                let no_peak = |mut s: weft_reasm::Stats| {
                    s.pages_peak = 0;
                    s
                };
                assert_eq!(
                    no_peak(got.reasm_total()),
                    no_peak(want.reasm_total()),
                    "{what}: as inline"
                );
                assert_eq!(fan.delivered, inline.delivered, "{what}");
                assert_eq!(rings_delivered, inline.delivered, "{what}");
                assert_eq!(fan.content, inline.content, "{what}");
                assert_eq!(rings_content, inline.content, "{what}");
            }
        }
    }
    assert!(
        refused > 0,
        "the damage made some frames undecodable or not TCP"
    );
}

/// With the keyed hash, every fanout worker uses the same seed: each flow
/// is reassembled by exactly one of them (with a seed each, some flows
/// would be kept twice and some by nobody).
#[test]
fn keyed_fanout_workers_agree_on_every_flow() {
    let frames = Arc::new(aimed_at_one_worker(64));
    for round in 0..3 {
        let f = frames.clone();
        let (fan, _) = bounded(60, move || {
            let b = EngineBuilder::new()
                .workers(4)
                .pin(false)
                .dispatch_hash(DispatchHash::Keyed);
            run_fanout(b, Behaviour::default(), |engine| {
                for (i, f) in f.iter().enumerate() {
                    engine.dispatch(LinkType::Ethernet, f, Timestamp(i as u64 * 1000));
                }
            })
        });
        let report = fan.result.unwrap();
        assert_eq!(fan.delivered, 64 * 30, "round {round}: every flow once");
        assert_eq!(fan.completed, 64, "round {round}: a stream per connection");
        let processed: Vec<u64> = report.stats.frames.iter().map(|f| f.frames).collect();
        assert_eq!(processed.iter().sum::<u64>(), 4 * 64, "{processed:?}");
        assert_eq!(processed, report.stats.dispatch.sent);
        assert!(processed.iter().all(|&n| n > 0), "spread: {processed:?}");
    }
}

/// A handler panic on one fanout worker, or a panic in the feeding code,
/// comes back as that worker's error; the other workers finish their
/// streams and nothing hangs.
#[test]
fn a_panic_on_a_fanout_worker_is_its_error_and_the_others_finish() {
    let cfg = GenConfig {
        conns: 200,
        concurrent: 40,
        ..GenConfig::default()
    };
    let pcap = Arc::new(trace(&cfg));
    let p = pcap.clone();
    let (fan, _) = bounded(60, move || {
        let b = EngineBuilder::new().workers(3).pin(false);
        let bad = Behaviour {
            panic_on: Some((1, 3)),
            ..Behaviour::default()
        };
        run_fanout(b, bad, |e| feed_mixed(e, &p, 1_000_000, 1_000_000))
    });
    expect_panic_of(&fan, 1, "on purpose");
    assert!(
        fan.completed > 0,
        "the other workers finished their streams"
    );
    let p = pcap.clone();
    let (fan, _) = bounded(60, move || {
        let b = EngineBuilder::new().workers(2).pin(false);
        run_fanout(b, Behaviour::default(), |e| {
            feed_mixed(e, &p, 1_000_000, 1_000_000);
            assert_ne!(e.index(), Some(0), "reader failure on purpose");
        })
    });
    expect_panic_of(&fan, 0, "on purpose");
    assert!(fan.completed > 0, "worker 1 finished its streams");
}

/// Inline mode and workers process zero-copy frames a few frames late (their
/// connections are prefetched first): mixing them with copied frames and
/// block switches must still process every frame once, in capture order.
/// Out-of-order counts are order-sensitive, so they must match the
/// all-copies run exactly.
#[test]
fn zero_copy_and_copied_frames_keep_capture_order() {
    let cfg = GenConfig {
        seed: 5,
        conns: 300,
        concurrent: 100,
        min_bytes: 1,
        max_bytes: 20_000,
        reorder: 0.05,
        duplicate: 0.02,
        ..GenConfig::default()
    };
    let pcap = trace(&cfg);
    for workers in [0, 2] {
        let p = pcap.clone();
        let copies = bounded(60, move || {
            run(
                p,
                EngineBuilder::new().workers(workers),
                Behaviour::default(),
            )
        });
        let want = copies.result.unwrap().stats;
        // Connections are prefetched ahead (always, here: by default only
        // with many live flows) in every mixed run.
        let mut eager = PipelineConfig::default();
        eager.reasm.prefetch_min_bytes = 0;
        for (copy_every, switch_every) in [(1_000_000, 1_000_000), (5, 37), (2, 3), (7, 1)] {
            let p = pcap.clone();
            let b = EngineBuilder::new()
                .workers(workers)
                .pipeline(eager.clone());
            let mixed = bounded(60, move || run_mixed(p, b, copy_every, switch_every));
            let got = mixed.result.unwrap().stats;
            assert_eq!(mixed.delivered, copies.delivered);
            assert_eq!(mixed.content, copies.content);
            assert_eq!(mixed.completed, copies.completed);
            assert_eq!(
                got.reasm, want.reasm,
                "workers {workers}, copy every {copy_every}, switch every {switch_every}"
            );
            assert_eq!(got.frames_total(), want.frames_total());
        }
    }
}

/// The frames of a generated trace with VLANs on half the connections,
/// with their times.
fn vlan_frames(seed: u64, conns: u64, concurrent: usize) -> Vec<(Vec<u8>, Timestamp)> {
    let pcap = trace(&GenConfig {
        seed,
        conns,
        concurrent,
        vlan_fraction: 0.5,
        ..GenConfig::default()
    });
    let mut cap = Capture::from_bytes(pcap, "t").unwrap();
    let mut frames = Vec::new();
    while let Some(f) = cap.next_frame() {
        let f = f.unwrap();
        frames.push((f.data.to_vec(), Timestamp(f.ts_nanos)));
    }
    frames
}

/// A pipeline that prefetches whatever the number of flows, and its
/// stream counters.
fn eager_pipeline() -> (weft_engine::Pipeline<Factory>, Totals) {
    let mut cfg = PipelineConfig::default();
    cfg.reasm.prefetch_min_bytes = 0;
    let totals = Totals::default();
    let factory = Factory {
        b: Behaviour::default(),
        worker: 0,
        totals: totals.clone(),
    };
    (weft_engine::Pipeline::new(cfg, factory), totals)
}

/// The look-ahead schedule hands each frame its own look-ahead: frames of
/// many flows (and VLANs, so a wrong one decodes differently), more of them
/// than the schedule's window and not a multiple of it.
#[test]
fn each_frame_is_processed_with_its_own_look_ahead() {
    let frames = vlan_frames(11, 40, 20);
    let n = frames.len() - 3;
    let (mut p, _) = eager_pipeline();
    let own: Vec<_> = frames[..n]
        .iter()
        .map(|(f, _)| p.lookahead_frame(LinkType::Ethernet, f))
        .collect();
    assert!(own.iter().filter(|a| a.is_some()).count() > n / 2);
    let mut seen = Vec::new();
    p.run_ahead(
        n,
        |p, t| p.lookahead_frame(LinkType::Ethernet, &frames[t].0),
        |_, u, a| seen.push((u, a.copied())),
    );
    let want: Vec<_> = own.into_iter().enumerate().collect();
    assert_eq!(seen, want);
}

/// A frame processed with another frame's look-ahead (another flow, another
/// VLAN, another IP offset) comes out as if processed without one.
#[test]
fn a_look_ahead_of_another_frame_is_harmless() {
    let frames = vlan_frames(12, 30, 10);
    let (mut plain, plain_totals) = eager_pipeline();
    let (mut mixed, mixed_totals) = eager_pipeline();
    let link = LinkType::Ethernet;
    for (n, (f, ts)) in frames.iter().enumerate() {
        plain.process_frame(link, f, *ts);
        // Each frame gets the look-ahead of a frame 7 places on.
        let other = &frames[(n + 7) % frames.len()].0;
        let wrong = mixed.lookahead_frame(link, other);
        mixed.process_frame_ahead(link, f, *ts, wrong.as_ref());
    }
    plain.flush_all();
    mixed.flush_all();
    assert_eq!(plain.frame_stats(), mixed.frame_stats());
    assert_eq!(plain.reassembler().stats(), mixed.reassembler().stats());
    assert!(plain_totals.delivered.load(Relaxed) > 0);
    assert_eq!(
        plain_totals.delivered.load(Relaxed),
        mixed_totals.delivered.load(Relaxed)
    );
}

/// A frame processed with the look-ahead of its twin in another VLAN (the
/// same flow, the same offsets) comes out as if processed without one:
/// the twin's key differs only in the VLANs the look-ahead itself gives.
#[test]
fn a_look_ahead_of_the_same_flow_in_another_vlan_is_not_used() {
    let frames = vlan_frames(13, 30, 10);
    let (mut plain, plain_totals) = eager_pipeline();
    let (mut mixed, mixed_totals) = eager_pipeline();
    let link = LinkType::Ethernet;
    let mut twins = 0;
    for (n, (f, ts)) in frames.iter().enumerate() {
        plain.process_frame(link, f, *ts);
        let mut twin = f.clone();
        // Every other frame: a connection taken for its twin would be
        // split between the two.
        if n % 2 == 1 && twin.len() > 16 && twin[12..14] == [0x81, 0x00] {
            twin[15] ^= 0x01;
            twins += 1;
        }
        let other = mixed.lookahead_frame(link, &twin);
        mixed.process_frame_ahead(link, f, *ts, other.as_ref());
    }
    assert!(twins > 0, "frames behind a VLAN tag");
    plain.flush_all();
    mixed.flush_all();
    assert_eq!(plain.reassembler().stats(), mixed.reassembler().stats());
    assert_eq!(
        plain_totals.content.load(Relaxed),
        mixed_totals.content.load(Relaxed)
    );
}

/// A SYN and a data segment each way of `n` connections whose public
/// (Toeplitz) dispatch hashes all fall into one entry of the indirection
/// table: traffic aimed at one worker.
fn aimed_at_one_worker(n: usize) -> Vec<Vec<u8>> {
    use weft_gen::frame::{encode, flags, Endpoint, Pkt, Wire};
    let server = Endpoint {
        ip: "198.51.100.7".parse().unwrap(),
        port: 443,
    };
    let mut frames = Vec::new();
    let mut port = 1024u16;
    while frames.len() < 4 * n {
        port += 1;
        let client = Endpoint {
            ip: "203.0.113.9".parse().unwrap(),
            port,
        };
        let (key, _) = weft_wire::FlowKey::new(client.ip, port, server.ip, 443, 0);
        if key.symmetric_hash() as usize % weft_engine::RETA_SIZE != 5 {
            continue;
        }
        let pkt = |from_client, f, seq, ack, len| Pkt {
            from_client,
            flags: f,
            seq,
            ack,
            win: 65535,
            syn_opts: None,
            ts: None,
            off: 0,
            len,
            variant: 0,
            urg: 0,
        };
        let wire = |from_client: bool| Wire {
            src: if from_client { &client } else { &server },
            dst: if from_client { &server } else { &client },
            vlan: None,
            tunnel: None,
            vni: 0,
            ip_id: 1,
            key: u64::from(port) * 2 + u64::from(from_client),
        };
        for (c, p) in [
            (true, pkt(true, flags::SYN, 100, 0, 0)),
            (false, pkt(false, flags::SYN | flags::ACK, 500, 101, 0)),
            (true, pkt(true, flags::ACK, 101, 501, 10)),
            (false, pkt(false, flags::ACK, 501, 111, 20)),
        ] {
            let mut buf = Vec::new();
            encode(&mut buf, &p, &wire(c));
            frames.push(buf);
        }
    }
    frames
}

#[test]
fn keyed_dispatch_spreads_flows_aimed_at_one_worker() {
    let frames = aimed_at_one_worker(64);
    let sent = |hash: DispatchHash| {
        let frames = frames.clone();
        let builder = EngineBuilder::new()
            .workers(4)
            .pin(false)
            .dispatch_hash(hash);
        bounded(60, move || {
            let run = run_feeding(builder, Behaviour::default(), |engine| {
                for (i, f) in frames.iter().enumerate() {
                    engine.dispatch(LinkType::Ethernet, f, Timestamp(i as u64 * 1000));
                }
            });
            assert_eq!(run.delivered, 64 * 30, "every flow reassembled");
            run.result.unwrap().stats.dispatch.sent
        })
    };
    let public = sent(DispatchHash::Toeplitz);
    assert_eq!(
        public.iter().filter(|&&n| n > 0).count(),
        1,
        "the public hash sends them all to one worker: {public:?}"
    );
    let keyed = sent(DispatchHash::Keyed);
    assert!(
        keyed.iter().all(|&n| n > 0),
        "a keyed hash spreads them: {keyed:?}"
    );
    assert_eq!(keyed.iter().sum::<u64>(), 4 * 64);
}

/// A client port from `from` on whose connection to the test server the
/// default (Toeplitz) dispatch of `workers` workers picks `worker`.
fn port_for(workers: usize, worker: usize, from: u16) -> u16 {
    (from..)
        .find(|&port| {
            let (key, _) = weft_wire::FlowKey::new(
                "203.0.113.9".parse().unwrap(),
                port,
                "198.51.100.7".parse().unwrap(),
                443,
                0,
            );
            key.symmetric_hash() as usize % weft_engine::RETA_SIZE % workers == worker
        })
        .unwrap()
}

/// The frames of a connection from `port` to the test server: a
/// handshake at 0 s, then `(from_client, seq offset, len, secs)` data
/// segments (client ISN 100, server ISN 500).
fn conn_frames(port: u16, data: &[(bool, u32, u32, u64)]) -> Vec<(Vec<u8>, Timestamp)> {
    use weft_gen::frame::{encode, flags, Endpoint, Pkt, Wire};
    let server = Endpoint {
        ip: "198.51.100.7".parse().unwrap(),
        port: 443,
    };
    let client = Endpoint {
        ip: "203.0.113.9".parse().unwrap(),
        port,
    };
    let pkt = |from_client, f, seq, ack, len| Pkt {
        from_client,
        flags: f,
        seq,
        ack,
        win: 65535,
        syn_opts: None,
        ts: None,
        off: u64::from(seq.wrapping_sub(if from_client { 101 } else { 501 })),
        len,
        variant: 0,
        urg: 0,
    };
    let mut segs = vec![
        (pkt(true, flags::SYN, 100, 0, 0), 0),
        (pkt(false, flags::SYN | flags::ACK, 500, 101, 0), 0),
        (pkt(true, flags::ACK, 101, 501, 0), 0),
    ];
    for &(c, off, len, secs) in data {
        let (seq, ack) = if c {
            (101 + off, 501)
        } else {
            (501 + off, 101)
        };
        segs.push((pkt(c, flags::ACK, seq, ack, len), secs));
    }
    segs.into_iter()
        .map(|(p, secs)| {
            let wire = Wire {
                src: if p.from_client { &client } else { &server },
                dst: if p.from_client { &server } else { &client },
                vlan: None,
                tunnel: None,
                vni: 0,
                ip_id: 1,
                key: u64::from(port) * 2 + u64::from(p.from_client),
            };
            let mut buf = Vec::new();
            encode(&mut buf, &p, &wire);
            (buf, Timestamp(secs * 1_000_000_000))
        })
        .collect()
}

/// A frame the engine counts as not TCP (an IPv4 datagram of protocol
/// 17), at `secs`.
fn udp_frame(secs: u64) -> (Vec<u8>, Timestamp) {
    let (mut f, _) = conn_frames(9, &[]).remove(0);
    f[14 + 9] = 17;
    (f, Timestamp(secs * 1_000_000_000))
}

/// A ring worker that receives no frames still gets the dispatcher's
/// ticks at once (and the frames gathered for it): its flush timeout runs
/// while the other worker's flows carry packet time on, not at `finish`.
#[test]
fn a_worker_without_frames_still_meets_packet_time() {
    // Connection B, on worker 1: 10 bytes in order, then 10 behind a
    // hole, all at 0 s. Connection A, on worker 0: a segment a second
    // for 30 s, well past the 10 s flush timeout.
    let b = conn_frames(port_for(2, 1, 2000), &[(true, 0, 10, 0), (true, 20, 10, 0)]);
    let a_data: Vec<_> = (0..30).map(|s| (true, s as u32 * 10, 10, s + 1)).collect();
    let a = conn_frames(port_for(2, 0, 3000), &a_data);
    let delivered = bounded(60, move || {
        let builder = EngineBuilder::new().workers(2).pin(false);
        let (mut engine, _totals) = counting(builder, Behaviour::default());
        for (f, ts) in b.iter().chain(&a) {
            engine.dispatch(LinkType::Ethernet, f, *ts);
        }
        // Without `flush` or `finish`: worker 1 must have had B's frames
        // and the ticks past its flush timeout.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut seen = 0;
        while std::time::Instant::now() < deadline {
            seen = engine.snapshot()[1].delivered_bytes;
            if seen == 20 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        engine.finish().unwrap();
        seen
    });
    assert_eq!(delivered, 20, "worker 1 flushed B's waiting bytes on time");
}

/// Packet time is carried by every frame in every mode, not only by TCP
/// segments: a datagram a minute later runs the flush timeout inline as
/// it does on ring and fanout workers.
#[test]
fn every_mode_follows_packet_time_alike() {
    let mut frames = conn_frames(port_for(2, 0, 4000), &[(true, 0, 10, 0), (true, 20, 10, 0)]);
    frames.push(udp_frame(60));
    // Inline with the frames in place too (zero copy, one block).
    let (bytes, at) = one_block(&frames);
    let block: weft_engine::Block = Arc::new(bytes);
    let in_place = bounded(60, move || {
        run_feeding(EngineBuilder::new().workers(0), Behaviour::default(), |e| {
            e.set_block(block);
            for (off, len, ts) in at {
                e.dispatch_in_block(LinkType::Ethernet, off, len, ts);
            }
        })
    });
    let frames: Frames = Arc::new(frames);
    let mut runs = vec![in_place];
    for workers in [0, 1, 2] {
        let (first, fanout) = run_frames(&frames, workers);
        runs.extend(std::iter::once(first).chain(fanout));
    }
    for (k, run) in runs.into_iter().enumerate() {
        let st = run.result.unwrap().stats.reasm_total();
        assert_eq!(st.timeout_flushes, 1, "run {k}: {st:?}");
        assert_eq!(run.delivered, 20);
    }
}

/// Streams whose handler blocks while `stuck` is set.
struct Gate {
    stuck: Arc<std::sync::atomic::AtomicBool>,
}

impl Stream for Gate {
    fn reassembled(&mut self, _: &mut ScatterGather<'_>, _: &Context) {
        while self.stuck.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

struct GateFactory(Arc<std::sync::atomic::AtomicBool>);

impl StreamFactory for GateFactory {
    type Stream = Gate;
    fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Gate {
        Gate {
            stuck: self.0.clone(),
        }
    }
}

/// A drop-mode engine of 2 workers, rings of `ring` slots and `batch`,
/// whose handlers block while the returned flag is set.
fn gated(ring: usize, batch: usize) -> (Engine<GateFactory>, Arc<std::sync::atomic::AtomicBool>) {
    let stuck = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let s = stuck.clone();
    let engine = EngineBuilder::new()
        .workers(2)
        .pin(false)
        .ring_capacity(ring)
        .batch(batch)
        .backpressure(Backpressure::Drop)
        .build(move |_| GateFactory(s.clone()))
        .unwrap();
    (engine, stuck)
}

/// In drop mode a dispatcher never waits for a stuck worker, not even to
/// hand it ticks; received = processed + dropped.
#[test]
fn drop_mode_never_waits_on_a_stuck_worker() {
    let cfg = GenConfig {
        conns: 200,
        concurrent: 40,
        min_bytes: 1000,
        max_bytes: 20_000,
        ..GenConfig::default()
    };
    let pcap = trace(&cfg);
    let r = bounded(120, move || {
        let (mut engine, stuck) = gated(4, 2);
        // Every handler blocks until released: the rings fill and stay
        // full while the whole trace (many ticks) is dispatched.
        let mut cap = Capture::from_bytes(pcap, "mem").unwrap();
        let mut n = 0u64;
        while let Some(f) = cap.next_frame() {
            let f = f.unwrap();
            // A tick for (nearly) every frame.
            engine.dispatch(LinkType::Ethernet, f.data, Timestamp(n * 2_000_000));
            n += 1;
        }
        stuck.store(false, Relaxed);
        (n, engine.finish().unwrap())
    });
    let (n, report) = r;
    let d = &report.stats.dispatch;
    assert_eq!(d.sent.iter().sum::<u64>(), n);
    assert!(d.ring_drops.iter().sum::<u64>() > 0, "stuck workers drop");
    received_is_processed_plus_dropped(&report);
}

/// What a drop-mode dispatcher still holds at `finish` waits for room:
/// capture is over, and dropping it would lose frames for nothing. The
/// handlers are stuck until a while after `finish` starts, so the rings
/// are full then (frames were dropped before): every drop was made
/// before `finish`.
#[test]
fn drop_mode_finish_delivers_what_it_still_holds() {
    let cfg = GenConfig {
        conns: 20,
        concurrent: 10,
        min_bytes: 1000,
        max_bytes: 5_000,
        ..GenConfig::default()
    };
    let pcap = trace(&cfg);
    let (n, before, report) = bounded(120, move || {
        // One packet time (no ticks); batches of 3 into 8-slot rings.
        let (mut engine, stuck) = gated(8, 3);
        let mut cap = Capture::from_bytes(pcap, "mem").unwrap();
        let mut n = 0u64;
        while let Some(f) = cap.next_frame() {
            engine.dispatch(LinkType::Ethernet, f.unwrap().data, Timestamp(0));
            n += 1;
        }
        let before = engine.dispatch_stats().ring_drops.clone();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            stuck.store(false, Relaxed);
        });
        let report = engine.finish().unwrap();
        release.join().unwrap();
        (n, before, report)
    });
    let d = &report.stats.dispatch;
    assert!(
        before.iter().all(|&x| x > 0),
        "full rings dropped: {before:?}"
    );
    assert_eq!(d.ring_drops, before, "finish dropped nothing");
    let processed: u64 = report.stats.frames.iter().map(|f| f.frames).sum();
    assert_eq!(processed + before.iter().sum::<u64>(), n);
}

/// Drop backpressure refuses batches that do not fit in half a ring:
/// a batch larger than the ring lost frames on every push, the worker
/// idle or not.
#[test]
fn drop_mode_refuses_batches_larger_than_half_a_ring() {
    let build = |ring: usize, batch: usize, bp: Backpressure| {
        EngineBuilder::new()
            .workers(2)
            .pin(false)
            .ring_capacity(ring)
            .batch(batch)
            .backpressure(bp)
            .build(|_| GateFactory(Arc::new(std::sync::atomic::AtomicBool::new(false))))
    };
    let Err(e) = build(32, 64, Backpressure::Drop) else {
        panic!("a 64-frame batch into 32-slot rings was accepted")
    };
    assert!(e.to_string().contains("half a ring"), "{e}");
    // 20 slots round up to 32: 16 fit in half.
    assert!(build(20, 17, Backpressure::Drop).is_err());
    assert!(build(20, 16, Backpressure::Drop).is_ok());
    // Blocking waits for room instead: any batch.
    assert!(build(4, 64, Backpressure::Block).is_ok());
    // Without rings (a dispatcher whose only worker is its own), any too.
    assert!(EngineBuilder::new()
        .workers(1)
        .dispatcher_works(true)
        .ring_capacity(32)
        .batch(64)
        .backpressure(Backpressure::Drop)
        .build(|_| GateFactory(Arc::new(std::sync::atomic::AtomicBool::new(false))))
        .is_ok());
}

/// A frame outside its block panics (documented), also where its end
/// overflows, in every mode with a dispatcher; and an engine whose caller
/// catches that panic still has its block for the next frame.
#[test]
fn a_frame_outside_its_block_leaves_the_block_in_place() {
    let shapes = [
        EngineBuilder::new().workers(0),
        EngineBuilder::new().workers(2).pin(false),
        EngineBuilder::new()
            .workers(2)
            .pin(false)
            .dispatcher_works(true),
    ];
    for builder in shapes {
        let frames = conn_frames(port_for(2, 0, 5000), &[(true, 0, 10, 0)]);
        let run = bounded(60, move || {
            run_feeding(builder, Behaviour::default(), |e| {
                let (bytes, at) = one_block(&frames);
                let size = bytes.len();
                e.set_block(Arc::new(bytes));
                for (off, len) in [(size - 4, 64), (usize::MAX - 8, 64), (size + 1, 0)] {
                    let outside = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        e.dispatch_in_block(LinkType::Ethernet, off, len, Timestamp(0))
                    }));
                    let message = outside.expect_err("out of range panics");
                    let message = message.downcast_ref::<String>().map_or("", String::as_str);
                    assert!(message.contains("outside the block"), "{message}");
                }
                for (off, len, ts) in at {
                    e.dispatch_in_block(LinkType::Ethernet, off, len, ts);
                }
            })
        });
        run.result.unwrap();
        assert_eq!(run.delivered, 10);
    }
}

/// `frame` (Ethernet, IPv4) carried in GRE over an outer IPv4 header,
/// with a 4-byte trailer after the outer packet; the inner IP length
/// claims `extra` bytes more than the outer packet holds.
fn in_gre(frame: &[u8], extra: u16) -> Vec<u8> {
    let mut inner = frame[14..].to_vec();
    let claimed = u16::from_be_bytes([inner[2], inner[3]]) + extra;
    inner[2..4].copy_from_slice(&claimed.to_be_bytes());
    let outer_len = (20 + 4 + inner.len()) as u16;
    let mut f = frame[..14].to_vec();
    f.extend([0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 47, 0, 0]);
    f[14 + 2..14 + 4].copy_from_slice(&outer_len.to_be_bytes());
    f.extend([192, 0, 2, 1, 192, 0, 2, 2]);
    f.extend([0, 0, 0x08, 0x00]);
    f.extend(inner);
    f.extend([0xde, 0xad, 0xbe, 0xef]);
    f
}

/// A tunnelled segment is bounded by its outer packet in every mode: a
/// worker decoding again from the inner IP header gets the frame cut
/// where the dispatcher's decode found the segment's end, so neither a
/// trailer after the outer packet nor an inner length past it turns into
/// payload there.
#[test]
fn tunnelled_segments_keep_their_outer_bound_on_workers() {
    let frames: Vec<_> = conn_frames(port_for(2, 1, 6000), &[(true, 0, 10, 0), (true, 10, 10, 0)])
        .into_iter()
        .enumerate()
        .map(|(i, (f, ts))| (in_gre(&f, if i == 3 { 6 } else { 0 }), ts))
        .collect();
    let frames: Frames = Arc::new(frames);
    let (inline, _) = run_frames(&frames, 0);
    let want = inline.result.unwrap().stats.reasm_total();
    assert_eq!(want.truncated_bytes, 6, "{want:?}");
    for workers in [1, 2] {
        let (rings, others) = run_frames(&frames, workers);
        assert_eq!(others.len(), 2);
        for run in std::iter::once(rings).chain(others) {
            let got = run.result.unwrap().stats.reasm_total();
            assert_eq!(got.payload_bytes, want.payload_bytes, "{workers}: {got:?}");
            assert_eq!(got.truncated_bytes, 6, "{workers}: {got:?}");
            assert_eq!(run.delivered, inline.delivered, "{workers} workers");
            assert_eq!(run.content, inline.content, "{workers} workers");
        }
    }
}

/// What the defragmenter gives up is counted where the engine reports:
/// in the pipeline's frame counters inline, in the dispatcher's with
/// rings.
#[test]
fn dropped_datagrams_are_reported() {
    let first_of = |id: u8, secs: u64| {
        let (mut f, _) = conn_frames(7000, &[(true, 0, 20, 0)]).remove(3);
        f[14 + 5] = id;
        f[14 + 6] = 0x20; // more fragments follow, offset 0
        (f, Timestamp(secs * 1_000_000_000))
    };
    let frames: Frames = Arc::new(vec![first_of(1, 0), first_of(2, 60)]);
    let (inline, _) = run_frames(&frames, 0);
    let st = inline.result.unwrap().stats;
    assert_eq!(st.frames_total().defrag.timed_out, 1, "{st:?}");
    let (rings, _) = run_frames(&frames, 2);
    let st = rings.result.unwrap().stats;
    assert_eq!(st.dispatch.defrag.timed_out, 1, "{st:?}");
    assert_eq!(st.dispatch.defrag.dropped(), 1);
    // Time carried by any frame expires it, as inline: here a datagram.
    let frames: Frames = Arc::new(vec![first_of(1, 0), udp_frame(60)]);
    let (inline, _) = run_frames(&frames, 0);
    let want = inline.result.unwrap().stats.frames_total().defrag;
    assert_eq!(want.timed_out, 1);
    let (rings, _) = run_frames(&frames, 2);
    let st = rings.result.unwrap().stats;
    assert_eq!(st.dispatch.defrag, want, "{st:?}");
}

/// A frame whose IP length promises 100 bytes more than it holds: told it
/// was captured whole (`dispatch_wire`), every mode counts it, and with
/// `drop_short_on_wire` drops it as a host does; else, or not told, every
/// mode takes it as cut by the snap length and delivers its bytes. Its
/// fragments alike: the last one lying and dropped, the datagram never
/// completes.
#[test]
fn a_frame_short_on_the_wire_is_dropped_alike_in_every_mode() {
    let mut frames = conn_frames(7000, &[(true, 0, 40, 0), (true, 40, 40, 0)]);
    let (mut lying, ts) = frames.remove(4);
    let total = u16::from_be_bytes([lying[16], lying[17]]) + 100;
    lying[16..18].copy_from_slice(&total.to_be_bytes());
    let (second, _) = conn_frames(7001, &[(true, 0, 40, 0)]).remove(3);
    let [head, mut tail] = two_fragments(&second);
    let total = u16::from_be_bytes([tail[16], tail[17]]) + 100;
    tail[16..18].copy_from_slice(&total.to_be_bytes());
    frames.extend([(lying, ts), (head, ts), (tail, ts)]);
    let frames: Frames = Arc::new(frames);
    for (whole, drop) in [(true, true), (true, false), (false, true)] {
        let cfg = PipelineConfig {
            drop_short_on_wire: drop,
            ..PipelineConfig::default()
        };
        for (k, run) in in_every_mode(&frames, whole, cfg).into_iter().enumerate() {
            let st = run.result.unwrap().stats;
            let short = st.frames_total().short_on_wire + st.dispatch.short_on_wire;
            let case = format!("run {k}, whole {whole}, drop {drop}");
            assert_eq!(short, if whole { 2 } else { 0 }, "{case}: {st:?}");
            let fragments = st.frames_total().fragments + st.dispatch.fragments;
            assert_eq!(fragments, 2, "{case}: seen, dropped or not");
            if whole && drop {
                assert_eq!(run.delivered, 40, "{case}: the genuine segment only");
            } else {
                assert_eq!(run.delivered, 80 + 40, "{case}: and both cut ones");
            }
        }
    }
}

/// [`run_frames_fed`] inline, then with 2 workers in every way frames
/// reach them: inline's run first.
fn in_every_mode(frames: &Frames, whole: bool, cfg: PipelineConfig) -> Vec<Run> {
    let (inline, _) = run_frames_fed(frames, 0, whole, cfg.clone());
    let (rings, others) = run_frames_fed(frames, 2, whole, cfg);
    [inline, rings].into_iter().chain(others).collect()
}

/// Sets the IPv4 header checksum of an Ethernet frame right (over the
/// header's length, options included).
fn fix_ip_checksum(f: &mut [u8]) {
    let end = 14 + usize::from(f[14] & 0x0f) * 4;
    f[24..26].copy_from_slice(&[0, 0]);
    let sum = weft_wire::internet_checksum(&f[14..end], 0);
    f[24..26].copy_from_slice(&sum.to_be_bytes());
}

/// With `drop_bad_checksums`, an IPv4 fragment whose header checksum is
/// wrong is dropped as a host drops it, in every mode (a dispatcher
/// defragments for its ring workers): a forged copy ahead of the genuine
/// fragment cannot put its bytes into the datagram. Only verifying, it
/// is counted and, first to come, its bytes win.
#[test]
fn a_fragment_with_a_bad_header_checksum_is_dropped_alike_in_every_mode() {
    let mut frames = conn_frames(7000, &[(true, 0, 40, 0)]);
    let (data, ts) = frames.remove(3);
    let [mut head, mut tail] = two_fragments(&data);
    fix_ip_checksum(&mut head);
    fix_ip_checksum(&mut tail);
    let mut forged = tail.clone();
    *forged.last_mut().unwrap() ^= 0xff;
    forged[24] ^= 1; // the header checksum
    let genuine: Frames =
        Arc::new([frames.clone(), vec![(head.clone(), ts), (tail.clone(), ts)]].concat());
    frames.extend([(head, ts), (forged, ts), (tail, ts)]);
    let frames: Frames = Arc::new(frames);
    let want = run_frames(&genuine, 0).0.content;
    for drop in [true, false] {
        let mut cfg = PipelineConfig {
            drop_bad_checksums: drop,
            ..PipelineConfig::default()
        };
        // Dropping verifies them by itself.
        cfg.decode.verify_checksums = !drop;
        for (k, run) in in_every_mode(&frames, false, cfg).into_iter().enumerate() {
            let st = run.result.unwrap().stats;
            let f = st.frames_total();
            let bad = f.bad_checksum + st.dispatch.bad_checksum;
            let dropped = f.bad_checksum_dropped + st.dispatch.bad_checksum_dropped;
            let case = format!("run {k}, drop {drop}");
            assert_eq!(run.delivered, 40, "{case}");
            if drop {
                assert_eq!((bad, dropped), (1, 1), "{case}: {st:?}");
                assert_eq!(run.content, want, "{case}: the genuine bytes");
            } else {
                // The fragment, and the datagram's TCP checksum its bytes
                // broke; a dispatcher counts the fragment, inline its
                // pipeline.
                assert_eq!((bad, dropped), (2, 0), "{case}: {st:?}");
                let by_dispatcher = u64::from(k > 0);
                assert_eq!(st.dispatch.bad_checksum, by_dispatcher, "{case}");
                assert_ne!(run.content, want, "{case}: the forged bytes");
            }
        }
    }
}

/// An Ethernet/IPv4 frame carried in IP-in-IP from 192.0.2.1 to
/// 192.0.2.2, the outer header's checksum right.
fn in_ipip(frame: &[u8]) -> Vec<u8> {
    let inner = &frame[14..];
    let total = (20 + inner.len()) as u16;
    let mut f = frame[..14].to_vec();
    f.extend([0x45, 0]);
    f.extend(total.to_be_bytes());
    f.extend([0, 0, 0x40, 0, 64, 4, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2]);
    f.extend(inner);
    fix_ip_checksum(&mut f);
    f
}

/// A segment out of a tunnel whose outer IPv4 header checksum is wrong
/// never reaches its receiver (the tunnel's end drops it): with
/// `drop_bad_checksums` a forged copy sent so, ahead of the genuine
/// segment, is dropped alike in every mode (a dispatcher decodes the
/// tunnel, its workers see only the inner packet), and only verifying,
/// it is counted alike and, first to come, its bytes win.
#[test]
fn a_segment_out_of_a_tunnel_with_a_bad_outer_checksum_is_dropped_alike_in_every_mode() {
    let plain = conn_frames(7100, &[(true, 0, 40, 0)]);
    let mut frames: Vec<_> = plain.iter().map(|(f, ts)| (in_ipip(f), *ts)).collect();
    let genuine: Frames = Arc::new(frames.clone());
    let (data, ts) = frames[3].clone();
    let mut forged = data;
    *forged.last_mut().unwrap() ^= 0xff; // (its TCP checksum wrong too)
    forged[24] ^= 1; // the outer header's checksum
    frames.insert(3, (forged, ts));
    let frames: Frames = Arc::new(frames);
    let want = run_frames(&genuine, 0).0.content;
    for drop in [true, false] {
        let mut cfg = PipelineConfig {
            drop_bad_checksums: drop,
            ..PipelineConfig::default()
        };
        cfg.decode.verify_checksums = !drop;
        for (k, run) in in_every_mode(&frames, false, cfg).into_iter().enumerate() {
            let st = run.result.unwrap().stats;
            let f = st.frames_total();
            let tunnel = f.bad_tunnel_checksum + st.dispatch.bad_tunnel_checksum;
            let inner = f.bad_checksum + st.dispatch.bad_checksum;
            let dropped = f.bad_checksum_dropped + st.dispatch.bad_checksum_dropped;
            let case = format!("run {k}, drop {drop}");
            assert_eq!(run.delivered, 40, "{case}");
            if drop {
                assert_eq!((tunnel, inner, dropped), (1, 0, 1), "{case}: {st:?}");
                assert_eq!(run.content, want, "{case}: the genuine bytes");
            } else {
                assert_eq!((tunnel, inner, dropped), (1, 1, 0), "{case}: {st:?}");
                let by_dispatcher = u64::from(k > 0);
                assert_eq!(st.dispatch.bad_tunnel_checksum, by_dispatcher, "{case}");
                assert_ne!(run.content, want, "{case}: the forged bytes");
            }
        }
    }
    // The tunnel's header is judged before the inner packet's length, in
    // every mode: a forged copy whose inner IP length also promises more
    // than it holds, recorded whole.
    let mut frames = (*genuine).clone();
    let (data, ts) = frames[3].clone();
    let mut forged = data;
    let inner_len = u16::from_be_bytes([forged[36], forged[37]]) + 100;
    forged[36..38].copy_from_slice(&inner_len.to_be_bytes());
    forged[24] ^= 1; // the outer header's checksum (the inner one's is off too)
    frames.insert(3, (forged, ts));
    let frames: Frames = Arc::new(frames);
    for drop in [true, false] {
        let cfg = PipelineConfig {
            drop_bad_checksums: drop,
            drop_short_on_wire: true,
            decode: weft_wire::DecodeOptions {
                verify_checksums: true,
                ..Default::default()
            },
            ..PipelineConfig::default()
        };
        for (k, run) in in_every_mode(&frames, true, cfg).into_iter().enumerate() {
            let st = run.result.unwrap().stats;
            let f = st.frames_total();
            let tunnel = f.bad_tunnel_checksum + st.dispatch.bad_tunnel_checksum;
            let short = f.short_on_wire + st.dispatch.short_on_wire;
            let dropped = f.bad_checksum_dropped + st.dispatch.bad_checksum_dropped;
            let case = format!("run {k}, drop {drop}, whole");
            let want = if drop { (1, 0, 1) } else { (1, 1, 0) };
            assert_eq!((tunnel, short, dropped), want, "{case}: {st:?}");
            assert_eq!(run.content, run_frames(&genuine, 0).0.content, "{case}");
        }
    }
}

/// An Ethernet/IPv4 frame with IPv4 `options` put into its header (a
/// multiple of 4 bytes): its header length, IP length and header
/// checksum set to match.
fn with_ip_options(frame: &[u8], options: &[u8]) -> Vec<u8> {
    let mut f = [&frame[..34], options, &frame[34..]].concat();
    f[14] = 0x40 | ((20 + options.len()) / 4) as u8;
    let total = u16::from_be_bytes([f[16], f[17]]) + options.len() as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ip_checksum(&mut f);
    f
}

/// A source-routed segment and a source-routed fragment (IPv4 loose
/// source route) are refused as a host refuses them, counted alike in
/// every mode (the dispatcher counts the fragment it decodes, the workers
/// or the dispatcher the segment), and their bytes reach no stream;
/// accepted, every mode delivers them.
#[test]
fn source_routed_frames_are_refused_alike_in_every_mode() {
    // The route's last address, the connection's end, is the server.
    let lsrr = [0x83, 7, 4, 198, 51, 100, 7, 0];
    let mut frames = conn_frames(7000, &[(true, 0, 40, 0), (true, 40, 40, 0)]);
    let (routed, ts) = frames.remove(4);
    let (second, _) = conn_frames(7001, &[(true, 0, 40, 0)]).remove(3);
    let [head, tail] = two_fragments(&second);
    frames.extend([
        (with_ip_options(&routed, &lsrr), ts),
        (with_ip_options(&head, &lsrr), ts),
        (tail, ts),
    ]);
    let frames: Frames = Arc::new(frames);
    for accept in [false, true] {
        let mut cfg = PipelineConfig::default();
        cfg.decode.accept_source_routed = accept;
        for (k, run) in in_every_mode(&frames, false, cfg).into_iter().enumerate() {
            let st = run.result.unwrap().stats;
            let refused = st.frames_total().refused + st.dispatch.refused;
            let case = format!("run {k}, accept {accept}");
            if accept {
                assert_eq!(refused, 0, "{case}: {st:?}");
                assert_eq!(run.delivered, 80 + 40, "{case}");
            } else {
                assert_eq!(refused, 2, "{case}: {st:?}");
                assert_eq!(run.delivered, 40, "{case}: the unrouted segment only");
            }
        }
    }
}

/// Accepted, a segment on its way to the next hop of a loose source route
/// belongs to the connection of the route's last address: the dispatcher
/// places it by that connection (its header peek leaves IPv4 options to
/// the full decoder), so every mode reassembles it there. Several hops,
/// so that some hash to the other worker than the connection.
#[test]
fn an_accepted_source_route_is_reassembled_on_its_connections_worker() {
    let mut cfg = PipelineConfig::default();
    cfg.decode.accept_source_routed = true;
    for hop in 1..=8u8 {
        let mut frames = conn_frames(7000, &[(true, 0, 40, 0), (true, 40, 40, 0)]);
        let (plain, ts) = frames.remove(4);
        let mut routed = with_ip_options(&plain, &[0x83, 7, 4, 198, 51, 100, 7, 0]);
        routed[30..34].copy_from_slice(&[192, 0, 2, hop]);
        fix_ip_checksum(&mut routed);
        frames.insert(4, (routed, ts));
        let frames: Frames = Arc::new(frames);
        let (inline, _) = run_frames_fed(&frames, 0, false, cfg.clone());
        assert_eq!(inline.delivered, 80, "hop {hop}");
        let (rings, others) = run_frames_fed(&frames, 2, false, cfg.clone());
        for (k, run) in std::iter::once(rings).chain(others).enumerate() {
            assert_eq!(run.delivered, 80, "hop {hop}, run {k}");
            assert_eq!(run.content, inline.content, "hop {hop}, run {k}");
        }
    }
}

/// A datagram put back together that turns out undecodable (a TCP header
/// length under 20) is counted as such in every mode, not as "not TCP"
/// by a dispatcher.
#[test]
fn an_undecodable_datagram_is_counted_alike_in_every_mode() {
    let (mut f, ts) = conn_frames(7000, &[(true, 0, 40, 0)]).remove(3);
    f[14 + 20 + 12] = 0x30; // a TCP header of 12 bytes
    let frames: Frames = Arc::new(two_fragments(&f).map(|f| (f, ts)).to_vec());
    let (inline, _) = run_frames(&frames, 0);
    let want = inline.result.unwrap().stats.frames_total();
    assert_eq!(
        (want.defragmented, want.undecodable(), want.not_tcp),
        (1, 1, 0)
    );
    let (rings, others) = run_frames(&frames, 2);
    for (k, run) in std::iter::once(rings).chain(others).enumerate() {
        let d = run.result.unwrap().stats.dispatch;
        assert_eq!(
            (d.defragmented, d.undecodable, d.not_tcp),
            (1, 1, 0),
            "run {k}"
        );
    }
}

/// Inline, a handler panic comes back to the caller. The engine is then
/// poisoned, as a `Mutex` is: a caller that catches the panic and goes on
/// is stopped at the next batch, and `finish` reports the panic, instead
/// of a half-processed batch being processed again.
#[test]
fn an_inline_engine_is_poisoned_by_a_caught_handler_panic() {
    use std::sync::atomic::AtomicBool;
    static ARMED: AtomicBool = AtomicBool::new(true);
    struct Once;
    impl Stream for Once {
        fn reassembled(&mut self, _: &mut ScatterGather<'_>, _: &Context) {
            if ARMED.swap(false, Relaxed) {
                panic!("the first delivery fails");
            }
        }
    }
    struct OnceFactory;
    impl StreamFactory for OnceFactory {
        type Stream = Once;
        fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Once {
            Once
        }
    }
    let data: Vec<_> = (0..20).map(|s| (true, s as u32 * 10, 10, 0)).collect();
    let frames = conn_frames(8000, &data);
    let (bytes, at) = one_block(&frames);
    let mut e = EngineBuilder::new()
        .workers(0)
        .build(|_| OnceFactory)
        .unwrap();
    e.set_block(Arc::new(bytes));
    for &(off, len, ts) in &at {
        e.dispatch_in_block(LinkType::Ethernet, off, len, ts);
    }
    let panic_text = |r: std::thread::Result<()>| {
        let e = r.expect_err("a panic");
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    };
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| e.flush()));
    assert_eq!(panic_text(first), "the first delivery fails");
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| e.flush()));
    assert!(panic_text(again).contains("after a stream handler panicked"));
    match e.finish() {
        Err(EngineError::WorkerPanicked { message, .. }) => {
            assert!(
                message.contains("after a stream handler panicked"),
                "{message}"
            )
        }
        other => panic!("{:?}", other.map(|r| r.stats)),
    }
}

/// Inline, the handlers `finish` runs (the last, unfilled batch and every
/// open stream's completion) may panic too: the panic comes back as
/// worker 0's error, as from any worker, not as an unwinding `finish`.
#[test]
fn an_inline_finish_returns_a_handler_panic_as_an_error() {
    // Two connections left open, in a block: fewer frames than a batch,
    // so they are first processed inside `finish`.
    let mut open = Vec::new();
    for port in [6000, 6001] {
        let data: Vec<_> = (0..4).map(|k| (k % 2 == 0, (k / 2) * 10, 10, 0)).collect();
        open.extend(conn_frames(port, &data));
    }
    for (bad, text) in [
        (
            Behaviour {
                panic_on: Some((0, 1)),
                ..Behaviour::default()
            },
            "handler failure on purpose",
        ),
        (
            Behaviour {
                panic_on_complete: Some(0),
                ..Behaviour::default()
            },
            "completion failure on purpose",
        ),
    ] {
        let (bytes, at) = one_block(&open);
        let r = bounded(60, move || {
            run_feeding(EngineBuilder::new().workers(0), bad, |e| {
                e.set_block(Arc::new(bytes));
                for &(off, len, ts) in &at {
                    e.dispatch_in_block(LinkType::Ethernet, off, len, ts);
                }
            })
        });
        expect_panic_of(&r, 0, text);
    }
}

/// A dispatcher that runs worker 0 itself keeps exactly the flows the
/// table gives worker 0 and hands the rest on as a dispatcher feeding
/// rings does (the same per-worker counts, statistics and dispatch hashes
/// as rings with the same table weights), whether frames come zero-copy,
/// copied or across block switches, and delivers what inline mode
/// delivers. Its worker is not pinned (the thread is the caller's).
#[test]
fn a_working_dispatcher_keeps_its_flows_and_hands_on_the_rest() {
    let pcap = Arc::new(trace(&impaired(19, 2_000, 600, 400)));
    let p = pcap.to_vec();
    let inline = bounded(120, move || {
        run(p, EngineBuilder::new().workers(0), Behaviour::default())
    });
    let want = inline.result.unwrap().stats;
    for workers in [1, 2, 3, 4, 8] {
        // Equal shares, and worker 0 given a third of another's.
        let light: Vec<u32> = (0..workers).map(|i| if i == 0 { 1 } else { 3 }).collect();
        for weights in [None, Some(light)] {
            let builder = || {
                let b = EngineBuilder::new().workers(workers).pin(false);
                match &weights {
                    Some(w) => b.table_weights(w.clone()),
                    None => b,
                }
            };
            let (p, b) = (pcap.to_vec(), builder());
            let rings = bounded(120, move || run(p, b, Behaviour::default()));
            let ring_hashes = rings.hashes;
            let rings = rings.result.unwrap().stats;
            for (copy_every, switch_every) in [(1_000_000, 1_000_000), (5, 37)] {
                let (p, b) = (pcap.clone(), builder().dispatcher_works(true));
                let own = bounded(120, move || {
                    run_feeding(b, Behaviour::default(), |e| {
                        feed_mixed(e, &p, copy_every, switch_every)
                    })
                });
                let what = format!("{workers} workers, {weights:?}, copy every {copy_every}");
                let got = own.result.unwrap();
                assert_eq!(got.factories.len(), workers, "{what}");
                let d = &got.stats.dispatch;
                assert_eq!(d.frames, want.dispatch.frames, "{what}: every frame read");
                assert_eq!(d.sent, rings.dispatch.sent, "{what}: same flows per worker");
                assert!(d.sent[0] > 0, "{what}: worker 0 has flows");
                for w in 0..workers {
                    assert_eq!(got.stats.frames[w].frames, d.sent[w], "{what}: worker {w}");
                }
                if workers == 1 {
                    // Every flow is worker 0's: nothing is copied.
                    assert_eq!(d.copied, 0, "{what}");
                }
                assert!(!got.stats.pinned[0], "{what}: the caller's thread");
                assert_eq!(own.delivered, inline.delivered, "{what}");
                assert_eq!(own.content, inline.content, "{what}");
                assert_eq!(own.completed, inline.completed, "{what}");
                assert_eq!(
                    own.hashes, ring_hashes,
                    "{what}: segments carry the dispatch hash"
                );
                assert_eq!(got.stats.reasm_total(), rings.reasm_total(), "{what}");
            }
        }
    }
}

/// A handler panic on the worker a dispatcher runs unwinds through the
/// dispatch call that processed the frame, as inline; the caller catches
/// it and finishes: worker 0's error comes back once the other workers
/// finished their streams. A panic while worker 0 completes its streams
/// at `finish` is its error too; a panic on a ring worker is that
/// worker's, and worker 0's streams complete. Nothing hangs.
#[test]
fn a_panic_on_the_dispatchers_worker_is_its_error_and_the_others_finish() {
    let cfg = GenConfig {
        conns: 300,
        concurrent: 60,
        ..GenConfig::default()
    };
    let pcap = trace(&cfg);
    let hybrid = || {
        EngineBuilder::new()
            .workers(3)
            .pin(false)
            .dispatcher_works(true)
    };
    let p = pcap.clone();
    let b = hybrid();
    let r = bounded(60, move || {
        let bad = Behaviour {
            panic_on: Some((0, 3)),
            ..Behaviour::default()
        };
        run_feeding(b, bad, |e| {
            let fed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch_all(e, p)));
            let e = fed.expect_err("the panic reached the caller");
            assert_eq!(
                e.downcast_ref::<&str>(),
                Some(&"handler failure on purpose")
            );
        })
    });
    expect_panic_of(&r, 0, "panicked on the dispatcher's thread");
    assert!(r.completed > 0, "workers 1 and 2 finished their streams");

    // Connections still open at the end (no FIN), one for each worker:
    // worker 0's streams complete, and panic, inside `finish`.
    let mut open = Vec::new();
    for w in 0..3 {
        let data: Vec<_> = (0..4).map(|k| (k % 2 == 0, (k / 2) * 10, 10, 0)).collect();
        open.extend(conn_frames(port_for(3, w, 6000), &data));
    }
    let b = hybrid();
    let r = bounded(60, move || {
        let bad = Behaviour {
            panic_on_complete: Some(0),
            ..Behaviour::default()
        };
        run_feeding(b, bad, |e| {
            for (f, ts) in &open {
                e.dispatch(LinkType::Ethernet, f, *ts);
            }
        })
    });
    expect_panic_of(&r, 0, "completion failure on purpose");
    assert_eq!(r.completed, 2, "workers 1 and 2 finished their streams");

    let b = hybrid();
    let r = bounded(60, move || {
        let bad = Behaviour {
            panic_on: Some((1, 3)),
            ..Behaviour::default()
        };
        run(pcap, b, bad)
    });
    expect_panic_of(&r, 1, "on purpose");
    assert!(r.completed > 0, "workers 0 and 2 finished their streams");
}

/// Drop backpressure with a working dispatcher: frames for the ring
/// workers are dropped when their rings are full, never worker 0's (the
/// dispatcher processes them itself), and every worker received what it
/// processed plus what was dropped for it. Live counters cover worker 0.
#[test]
fn a_working_dispatcher_drops_only_at_full_rings() {
    let pcap = bulky_trace();
    let r = bounded(120, move || {
        let b = EngineBuilder::new()
            .workers(3)
            .pin(false)
            .ring_capacity(4)
            .batch(1)
            .dispatcher_works(true)
            .backpressure(Backpressure::Drop);
        let slow = Behaviour {
            slow: true,
            ..Behaviour::default()
        };
        run_feeding(b, slow, |e| {
            dispatch_all(e, pcap);
            e.flush();
            let live = e.snapshot();
            assert_eq!(live.len(), 3);
            assert!(
                live[0].frames > 0 && live[0].delivered_bytes > 0,
                "{live:?}"
            );
            assert!(!live[0].pinned);
        })
    });
    let report = r.result.unwrap();
    let d = &report.stats.dispatch;
    assert_eq!(d.ring_drops[0], 0, "worker 0 has no ring");
    assert!(
        d.ring_drops[1] + d.ring_drops[2] > 0,
        "slow handlers behind 4-slot rings drop"
    );
    received_is_processed_plus_dropped(&report);
    assert!(report.stats.reasm_total().balanced());
}

/// The shape of an engine, drawn by the property below.
#[derive(Clone, Debug)]
struct Drawn {
    workers: usize,
    weights: Option<Vec<u32>>,
    dispatcher_works: bool,
    fanout: bool,
    ring: usize,
    batch: usize,
    copy_every: usize,
    switch_every: usize,
}

fn drawn() -> impl proptest::strategy::Strategy<Value = Drawn> {
    use proptest::prelude::*;
    (1usize..=6).prop_flat_map(|workers| {
        (
            Just(workers),
            proptest::option::of(proptest::collection::vec(0u32..=5, workers)),
            any::<bool>(),
            any::<bool>(),
            2usize..=64,
            1usize..=16,
            1usize..=9,
            1usize..=200,
        )
            .prop_map(
                |(workers, weights, dispatcher_works, fanout, ring, batch, copy, switch)| {
                    // At least one worker with flows.
                    let weights = weights.map(|mut w| {
                        if w.iter().all(|&x| x == 0) {
                            w[workers - 1] = 1;
                        }
                        w
                    });
                    Drawn {
                        workers,
                        weights,
                        dispatcher_works,
                        fanout,
                        ring,
                        batch,
                        copy_every: copy,
                        switch_every: switch,
                    }
                },
            )
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// Whatever the engine's shape (workers, table weights, the
    /// dispatcher running worker 0 or not, fanout, ring and batch sizes,
    /// frames zero-copy, copied or across block switches), every stream
    /// gets what inline mode gives it, the counters agree, and each worker
    /// received exactly what the table sends it.
    #[test]
    fn every_engine_shape_delivers_what_inline_delivers(seed in 0u64..1_000, d in drawn()) {
        let pcap = Arc::new(trace(&impaired(seed, 120, 40, 60)));
        let p = pcap.to_vec();
        let inline = bounded(60, move || run(p, EngineBuilder::new().workers(0), Behaviour::default()));
        let want = inline.result.unwrap().stats.reasm_total();
        let mut b = EngineBuilder::new()
            .workers(d.workers)
            .pin(false)
            .ring_capacity(d.ring)
            .batch(d.batch)
            .dispatcher_works(d.dispatcher_works);
        if let Some(w) = &d.weights {
            b = b.table_weights(w.clone());
        }
        let (copy, switch) = (d.copy_every, d.switch_every);
        let got = if d.fanout {
            bounded(60, move || {
                run_fanout(b, Behaviour::default(), |e| feed_mixed(e, &pcap, copy, switch)).0
            })
        } else {
            bounded(60, move || {
                run_feeding(b, Behaviour::default(), |e| feed_mixed(e, &pcap, copy, switch))
            })
        };
        let report = got.result.unwrap();
        proptest::prop_assert_eq!(got.delivered, inline.delivered, "{:?}", d);
        proptest::prop_assert_eq!(got.content, inline.content, "{:?}", d);
        proptest::prop_assert_eq!(got.completed, inline.completed, "{:?}", d);
        let no_peak = |mut s: weft_reasm::Stats| {
            s.pages_peak = 0;
            s
        };
        proptest::prop_assert_eq!(no_peak(report.stats.reasm_total()), no_peak(want), "{:?}", d);
        let sent = &report.stats.dispatch.sent;
        for w in 0..d.workers {
            proptest::prop_assert_eq!(report.stats.frames[w].frames, sent[w], "{:?}: worker {}", d, w);
            if d.weights.as_ref().is_some_and(|ws| ws[w] == 0) {
                proptest::prop_assert_eq!(sent[w], 0, "{:?}: weight 0, no flows", d);
            }
        }
    }
}

/// A worker that gets no frames holds no old blocks: with packet time
/// standing still no tick pushes its list into its ring, and each block
/// switch used to add one more to that list (a stream reader's buffers
/// then could not be reused until `finish`).
#[test]
fn an_idle_worker_holds_only_the_current_block() {
    let pcap = trace(&GenConfig {
        conns: 1,
        concurrent: 1,
        ..GenConfig::default()
    });
    let mut cap = Capture::from_bytes(pcap, "mem").unwrap();
    let frame = cap.next_frame().unwrap().unwrap().data.to_vec();
    let alive = bounded(60, move || {
        // Every flow to worker 0; worker 1 gets nothing.
        let mut engine = EngineBuilder::new()
            .workers(2)
            .pin(false)
            .batch(1)
            .table_weights(vec![1, 0])
            .build(|_| GateFactory(Arc::new(std::sync::atomic::AtomicBool::new(false))))
            .unwrap();
        let mut old = Vec::new();
        for _ in 0..200 {
            let block = Arc::new(frame.clone());
            old.push(Arc::downgrade(&block));
            engine.set_block(block);
            engine.dispatch_in_block(LinkType::Ethernet, 0, frame.len(), Timestamp(0));
        }
        // Worker 0 lets go of each block once its frame is processed.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let alive = loop {
            let alive = old[..190].iter().filter(|w| w.upgrade().is_some()).count();
            if alive == 0 || std::time::Instant::now() > deadline {
                break alive;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        engine.finish().unwrap();
        alive
    });
    assert_eq!(alive, 0, "old blocks still held");
}

/// A live source with no traffic moves packet time on itself
/// ([`Engine::advance_time`]): connections left open close on their idle
/// timeout, on every worker, before `finish` and without another frame,
/// and not before it.
#[test]
fn advancing_time_without_frames_times_out_idle_connections() {
    let cfg = GenConfig {
        seed: 31,
        conns: 300,
        concurrent: 60,
        min_bytes: 100,
        max_bytes: 3_000,
        ..GenConfig::default()
    };
    let mut cap = Capture::from_bytes(trace(&cfg), "mem").unwrap();
    let mut frames = Vec::new();
    while let Some(f) = cap.next_frame() {
        let f = f.unwrap();
        frames.push((f.data.to_vec(), Timestamp(f.ts_nanos)));
    }
    // The first half: many connections are still open where it stops.
    frames.truncate(frames.len() / 2);
    let frames = Arc::new(frames);
    const IDLE: u64 = 30_000_000_000;
    for workers in [0, 1, 3] {
        let frames = Arc::clone(&frames);
        bounded(60, move || {
            let mut pipeline = PipelineConfig::default();
            pipeline.reasm.idle_timeout_ns = Some(IDLE);
            let builder = EngineBuilder::new()
                .workers(workers)
                .pin(false)
                .pipeline(pipeline);
            let (mut engine, totals) = counting(builder, Behaviour::default());
            for (f, ts) in frames.iter() {
                engine.dispatch(LinkType::Ethernet, f, *ts);
            }
            engine.flush();
            let last = frames.last().unwrap().1;
            let completed = || totals.completed.load(Relaxed);
            let settle = |engine: &Engine<Factory>| {
                // Workers publish after each batch: wait for every frame.
                while engine.snapshot().iter().map(|s| s.frames).sum::<u64>()
                    < frames.len() as u64 * u64::from(workers > 0)
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
            };
            settle(&engine);
            let open_then = completed();
            // Time going back does nothing; time short of the idle
            // timeout closes nothing.
            engine.advance_time(Timestamp(last.0 - 1));
            engine.advance_time(Timestamp(last.0 + IDLE / 2));
            settle(&engine);
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(completed(), open_then, "{workers} workers");
            engine.advance_time(Timestamp(last.0 + IDLE + 1_000_000_000));
            let before_finish = if workers == 0 {
                completed()
            } else {
                // Each worker closes its connections when the tick
                // reaches it; none stays active.
                while engine
                    .snapshot()
                    .iter()
                    .map(|s| s.flows_active)
                    .sum::<u64>()
                    > 0
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                completed()
            };
            let report = engine.finish().unwrap();
            let stats = report.stats.reasm_total();
            assert!(stats.conns_closed_idle > 0, "{workers} workers: {stats:?}");
            assert_eq!(
                before_finish,
                completed(),
                "{workers} workers: every stream was complete before finish"
            );
            assert!(before_finish > open_then, "{workers} workers");
        });
    }
}

/// An engine dropped without `finish` stops its ring workers after
/// pushing what it had gathered for them: they complete their streams
/// with every frame dispatched, as `finish` would.
#[test]
fn dropping_the_engine_completes_ring_workers_streams_whole() {
    let pcap = trace(&impaired(41, 300, 40, 0));
    let finished = bounded(60, {
        let pcap = pcap.clone();
        move || {
            run(
                pcap,
                EngineBuilder::new().workers(2).pin(false),
                Behaviour::default(),
            )
        }
    });
    let dropped = bounded(60, move || {
        let builder = EngineBuilder::new().workers(2).pin(false);
        let (mut engine, totals) = counting(builder, Behaviour::default());
        dispatch_all(&mut engine, pcap);
        drop(engine);
        (
            totals.delivered.load(Relaxed),
            totals.completed.load(Relaxed),
            totals.content.load(Relaxed),
        )
    });
    assert!(finished.delivered > 0);
    assert_eq!(
        dropped,
        (finished.delivered, finished.completed, finished.content)
    );
}

/// Fanout workers over a source already divided by flow
/// ([`EngineBuilder::divided`]: each reads its own part, as sockets of an
/// `AF_PACKET` fanout group do) keep every flow they read, and together
/// deliver what inline mode delivers; the dispatch counters are the sum
/// of every worker's.
#[test]
fn divided_fanout_workers_keep_every_flow_they_read() {
    let pcap = trace(&impaired(17, 2_000, 500, 300));
    let mut cap = Capture::from_bytes(pcap.clone(), "mem").unwrap();
    let n = 3;
    let mut parts: Vec<Vec<(Vec<u8>, Timestamp)>> = vec![Vec::new(); n];
    let opts = weft_wire::DecodeOptions::default();
    while let Some(f) = cap.next_frame() {
        let f = f.unwrap();
        // A divider of its own: not the engine's table.
        let part = match weft_wire::decode(LinkType::Ethernet, f.data, &opts) {
            Ok(weft_wire::Decoded::Tcp(p)) => (p.key.symmetric_hash() >> 7) as usize % n,
            _ => 0,
        };
        parts[part].push((f.data.to_vec(), Timestamp(f.ts_nanos)));
    }
    assert!(
        parts.iter().all(|p| p.len() > 100),
        "every worker gets flows"
    );
    let sizes: Vec<u64> = parts.iter().map(|p| p.len() as u64).collect();
    let inline = bounded(60, move || {
        run(pcap, EngineBuilder::new().workers(0), Behaviour::default())
    });
    let parts = Arc::new(parts);
    let (divided, seen) = bounded(60, move || {
        run_fanout(
            EngineBuilder::new().workers(n).pin(false).divided(true),
            Behaviour::default(),
            move |engine| {
                for (f, ts) in &parts[engine.index().unwrap()] {
                    engine.dispatch(LinkType::Ethernet, f, *ts);
                }
            },
        )
    });
    assert_eq!(seen.len(), n);
    let stats = divided.result.unwrap().stats;
    let per_worker: Vec<u64> = stats.frames.iter().map(|f| f.frames).collect();
    assert_eq!(per_worker, sizes, "each worker processed all it read");
    assert_eq!(stats.dispatch.frames, sizes.iter().sum::<u64>());
    assert_eq!(stats.dispatch.sent, sizes);
    assert!(inline.delivered > 0);
    assert_eq!(
        (divided.delivered, divided.completed, divided.content),
        (inline.delivered, inline.completed, inline.content)
    );
    // Weights would divide the limits where the divider placed the flows.
    let weighted = EngineBuilder::new()
        .workers(2)
        .divided(true)
        .table_weights(vec![1, 3])
        .fanout(
            |_| Factory {
                b: Behaviour::default(),
                worker: 0,
                totals: Totals::default(),
            },
            |_| (),
        );
    assert!(matches!(weighted, Err(EngineError::Setting(_))));
}

/// A `build` that fails part way (here the factory of the third worker
/// panics) leaves no thread behind: the workers already started are
/// closed and joined before the panic leaves `build`, so their factories
/// are gone by then (each takes a while to drop, so a detached thread
/// would still hold its own).
#[test]
fn a_failed_build_joins_the_workers_it_started() {
    static DROPPED: AtomicU64 = AtomicU64::new(0);
    struct Slow;
    impl Drop for Slow {
        fn drop(&mut self) {
            std::thread::sleep(Duration::from_millis(200));
            DROPPED.fetch_add(1, Relaxed);
        }
    }
    struct Quiet;
    impl Stream for Quiet {
        fn reassembled(&mut self, _: &mut ScatterGather<'_>, _: &Context) {}
    }
    struct SlowFactory(#[allow(dead_code)] Slow);
    impl StreamFactory for SlowFactory {
        type Stream = Quiet;
        fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Quiet {
            Quiet
        }
    }
    let built = bounded(60, || {
        std::panic::catch_unwind(|| {
            EngineBuilder::new().workers(3).pin(false).build(|i| {
                assert!(i < 2, "the third factory fails");
                SlowFactory(Slow)
            })
        })
        .is_err()
    });
    assert!(built, "the factory's panic leaves build");
    assert_eq!(DROPPED.load(Relaxed), 2, "both started workers joined");
}

/// Dropped without `finish`, ring workers are still told the last packet
/// time before their rings close, as `finish` tells them: a connection
/// idle past its timeout by then completes as timed out, not as flushed.
/// (Ticks are set too far apart to come while frames are dispatched.)
#[test]
fn a_dropped_engine_tells_its_workers_the_last_packet_time() {
    use std::sync::Mutex;
    use weft_reasm::Cause;
    type Causes = Arc<Mutex<Vec<(u16, Cause)>>>;
    struct Noting(u16, Causes);
    impl Stream for Noting {
        fn reassembled(&mut self, _: &mut ScatterGather<'_>, _: &Context) {}
        fn complete(&mut self, ctx: &Context) -> bool {
            self.1.lock().unwrap().push((self.0, ctx.cause));
            true
        }
    }
    struct NotingFactory(Causes);
    impl StreamFactory for NotingFactory {
        type Stream = Noting;
        fn new_stream(&mut self, c: &ConnInfo, _: &Segment<'_>, _: &Context) -> Noting {
            let port = c.key.hi_port();
            Noting(port, self.0.clone())
        }
    }
    // One connection on each worker: the first idle from 1 s, the second
    // sending at 100 s.
    let (idle, busy) = (port_for(2, 0, 7000), port_for(2, 1, 7000));
    let mut frames = conn_frames(idle, &[(true, 0, 10, 1)]);
    frames.extend(conn_frames(busy, &[(true, 0, 10, 100)]).split_off(3));
    frames.sort_by_key(|f| f.1);
    let mut cfg = PipelineConfig::default();
    cfg.reasm.idle_timeout_ns = Some(10_000_000_000);
    let causes = |finish: bool| {
        let frames = frames.clone();
        let cfg = cfg.clone();
        bounded(60, move || {
            let seen = Causes::default();
            let s = seen.clone();
            let mut e = EngineBuilder::new()
                .workers(2)
                .pin(false)
                .tick_ns(1_000_000_000_000)
                .pipeline(cfg)
                .build(move |_| NotingFactory(s.clone()))
                .unwrap();
            for (f, ts) in &frames {
                e.dispatch(LinkType::Ethernet, f, *ts);
            }
            if finish {
                e.finish().unwrap();
            } else {
                drop(e);
            }
            let mut seen = seen.lock().unwrap().clone();
            seen.sort_by_key(|c| c.0);
            seen
        })
    };
    let finished = causes(true);
    assert!(
        finished.contains(&(idle, Cause::IdleTimeout)),
        "{finished:?}"
    );
    assert_eq!(causes(false), finished);
}
