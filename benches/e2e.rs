//! End-to-end throughput: capture bytes in memory → decode → dispatch →
//! reassemble → a stream handler that reads every delivered byte once.
//!
//! Traffic (generated in memory by weft-gen, stated in each group name):
//! * `inorder`: 4,000 TCP connections, 2,000 open at once, 500 B–50 KB per
//!   direction, MSS 1448, no impairment;
//! * `reorder1`: the same with 1 % of segments reordered (as the peers'
//!   reference trace).
//!
//! Compared with the floor: reading the same frames from the same buffer and
//! touching every byte once (`floor`), and with the dispatcher alone
//! (decode, symmetric hash, indirection table: `dispatch_only`).
//!
//! Engines: `inline` (one thread), `workers/N` (a dispatcher on the bench's
//! thread feeding N workers through rings), `fanout/N` (N workers, each
//! reading every frame and keeping its own flows) and `hybrid/N` (N
//! workers, the dispatcher on the bench's thread being worker 0, with 2
//! shares of the flows to the others' 5, as `weft-replay --dispatch
//! hybrid`).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weft::capture::{Capture, Prefetch};
use weft::engine::{Engine, EngineBuilder, RETA_SIZE};
use weft::wire::{decode, peek_tcp, DecodeOptions, Decoded, LinkType, Timestamp};
use weft::{ConnInfo, Context, ScatterGather, Segment, Stream, StreamFactory};
// The same byte-touching sum as the replay tool, so the floor and the
// handlers here do exactly the work of `weft-replay --read-only` and its
// counting stream.
use weft_replay::output::sum8;

struct Touch(u64);
impl Stream for Touch {
    fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
        for c in sg.chunks() {
            self.0 = self.0.wrapping_add(sum8(c));
        }
    }
    fn complete(&mut self, _: &Context) -> bool {
        // Nobody reads the sum: keep the optimiser from dropping the loop.
        std::hint::black_box(self.0);
        true
    }
}
struct Factory;
impl StreamFactory for Factory {
    type Stream = Touch;
    fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Touch {
        Touch(0)
    }
}

struct Trace {
    name: &'static str,
    bytes: Arc<[u8]>,
    frames: u64,
}

fn trace(name: &'static str, reorder: f64) -> Trace {
    generated(name, 4_000, 2_000, 50_000, reorder)
}

/// `conns` connections, `concurrent` open at once, 500 B to `max_bytes`
/// each way.
fn generated(
    name: &'static str,
    conns: u64,
    concurrent: usize,
    max_bytes: u32,
    reorder: f64,
) -> Trace {
    let cfg = weft_gen::GenConfig {
        seed: 5,
        conns,
        concurrent,
        min_bytes: 500,
        max_bytes,
        exchanges: 1,
        reorder,
        ..weft_gen::GenConfig::default()
    };
    let mut v = Vec::new();
    let truth = weft_gen::generate(&cfg, &mut v).unwrap();
    Trace {
        name,
        bytes: v.into(),
        frames: truth.summary().packets,
    }
}

/// Runs the whole trace through an engine with `workers` workers (with
/// rings, or inline for 0).
fn run(t: &Trace, workers: usize) -> u64 {
    run_built(t, EngineBuilder::new().workers(workers))
}

/// Runs the whole trace through `workers` workers, the first on the
/// dispatcher's (the bench's) thread.
fn run_hybrid(t: &Trace, workers: usize) -> u64 {
    let mut weights = vec![5; workers];
    weights[0] = 2;
    let b = EngineBuilder::new()
        .workers(workers)
        .dispatcher_works(true)
        .table_weights(weights);
    run_built(t, b)
}

fn run_built(t: &Trace, b: EngineBuilder) -> u64 {
    let mut e = b.build(|_| Factory).unwrap();
    feed(&mut e, t);
    e.finish().unwrap().stats.reasm_total().delivered_bytes
}

/// Runs the whole trace through `workers` fanout workers, each reading it
/// all (from the same bytes in memory).
fn run_fanout(t: &Trace, workers: usize) -> u64 {
    let (report, _) = EngineBuilder::new()
        .workers(workers)
        .fanout(|_| Factory, |e| feed(e, t))
        .unwrap();
    report.stats.reasm_total().delivered_bytes
}

/// Feeds every frame of the trace to `e`, zero-copy, as weft-replay does.
fn feed(e: &mut Engine<Factory>, t: &Trace) {
    let mut cap = Capture::from_bytes(t.bytes.clone(), "bench").unwrap();
    // As weft-replay does (see `Prefetch`).
    cap.set_prefetch(Prefetch::Stream);
    let shared = cap.shared_bytes().unwrap();
    struct Block(weft::capture::SharedBytes);
    impl AsRef<[u8]> for Block {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }
    e.set_block(Arc::new(Block(shared.clone())));
    while let Some(f) = cap.next_frame() {
        let f = f.unwrap();
        let off = shared.offset_of(f.data).unwrap();
        e.dispatch_in_block(
            LinkType::from_raw(f.link_type),
            off,
            f.data.len(),
            Timestamp(f.ts_nanos),
        );
    }
}

fn bench(c: &mut Criterion) {
    // Many flows: 10,000 open at once, as in the peers' reference trace, so
    // the connection records (~4.5 MB) outgrow the caches and the
    // look-ahead prefetching runs. Under `cargo test` (no `--bench`), where
    // each function runs once as a check, a tenth of it.
    let full = std::env::args().any(|a| a == "--bench");
    let (conns, concurrent) = if full {
        (20_000, 10_000)
    } else {
        (2_000, 1_000)
    };
    let traces = [
        trace("inorder", 0.0),
        trace("reorder1", 0.01),
        generated("manyflows_reorder1", conns, concurrent, 5_000, 0.01),
    ];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for t in &traces {
        let mut g = c.benchmark_group(format!("e2e_{}", t.name));
        g.sample_size(10);
        g.throughput(Throughput::Elements(t.frames));
        g.bench_function("floor", |b| {
            b.iter(|| {
                let mut cap = Capture::from_bytes(t.bytes.clone(), "bench").unwrap();
                let mut s = 0u64;
                while let Some(f) = cap.next_frame() {
                    s = s.wrapping_add(sum8(f.unwrap().data));
                }
                s
            })
        });
        g.bench_function("dispatch_only", |b| {
            let opts = DecodeOptions::default();
            b.iter(|| {
                let mut cap = Capture::from_bytes(t.bytes.clone(), "bench").unwrap();
                cap.set_prefetch(Prefetch::Stream);
                let mut per_worker = [0u64; RETA_SIZE];
                while let Some(f) = cap.next_frame() {
                    let f = f.unwrap();
                    let link = LinkType::from_raw(f.link_type);
                    // What the engine's dispatcher does: the fast path, else a full decode.
                    let hash = match peek_tcp(link, f.data) {
                        Some(p) => Some(p.hash),
                        None => match decode(link, f.data, &opts) {
                            Ok(Decoded::Tcp(p)) => Some(p.key.symmetric_hash()),
                            _ => None,
                        },
                    };
                    if let Some(h) = hash {
                        per_worker[h as usize % RETA_SIZE] += 1;
                    }
                }
                per_worker
            })
        });
        g.bench_function("inline", |b| b.iter(|| run(t, 0)));
        for w in 1..=cores.max(2) {
            g.bench_with_input(BenchmarkId::new("workers", w), &w, |b, &w| {
                b.iter(|| run(t, w))
            });
        }
        let delivered = run(t, 0);
        for w in 1..=cores.max(2) {
            assert_eq!(run_fanout(t, w), delivered, "fanout, {w} workers");
            g.bench_with_input(BenchmarkId::new("fanout", w), &w, |b, &w| {
                b.iter(|| run_fanout(t, w))
            });
        }
        for w in 2..=cores.max(2) {
            assert_eq!(run_hybrid(t, w), delivered, "hybrid, {w} workers");
            g.bench_with_input(BenchmarkId::new("hybrid", w), &w, |b, &w| {
                b.iter(|| run_hybrid(t, w))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
