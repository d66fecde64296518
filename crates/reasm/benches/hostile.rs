//! Segment patterns that make a naive out-of-order queue quadratic, at two
//! sizes: if the cost per segment stays flat when the pattern doubles, the
//! queue is near linear. One flow, a hole at its start that is filled last.
//!
//! * `scatter`: out-of-order segments in bit-reversed order, so each lands in
//!   the middle of what is queued;
//! * `descending`: from the far end backwards;
//! * `overlap_storm`: every segment re-sent as three overlapping copies;
//! * `memcap_flood`: eight flows, each sending `n` segments with a hole
//!   before every one, under a page cap of a quarter of that: past the cap
//!   every segment forces the oldest buffered run out;
//! * `timeout_flood`: the same with no page cap and a flush timeout of
//!   `n / 4` segments' time: past it every segment expires the oldest piece
//!   of each flow. Both were quadratic while the oldest piece of a
//!   connection was found by scanning its pieces;
//! * `prune_falling`, `prune_rising`, `collapse_run`: eight flows, each
//!   sending `n` one-byte segments behind a hole, over a page share per
//!   connection of `n / 4`: with a byte between each two, in falling order
//!   (the farthest pieces are pruned, an eighth of the share at a time) or
//!   rising (each new one lands past the rest and is dropped); or one after
//!   another (runs are packed into full pages, nothing is lost).

mod common;

use std::net::IpAddr;

use common::Factory;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weft_reasm::{Config, HeapPool, Reassembler, Segment};
use weft_wire::{Dir, FlowKey, Seq, TcpFlags, Timestamp};

const SEG: u32 = 100;

fn order(pattern: &str, n: u32) -> Vec<(u32, u32)> {
    // (offset, len) of segments 1..n; segment 0 (the hole) comes last
    let bits = 32 - n.leading_zeros();
    let mut v: Vec<(u32, u32)> = match pattern {
        "scatter" => (0..1u32 << bits)
            .map(|i| i.reverse_bits() >> (32 - bits))
            .filter(|&i| i >= 1 && i < n)
            .map(|i| (i * SEG, SEG))
            .collect(),
        "descending" => (1..n).rev().map(|i| (i * SEG, SEG)).collect(),
        _ => (1..n)
            .flat_map(|i| [(i * SEG, SEG), (i * SEG + 10, SEG), (i * SEG - 10, SEG)])
            .collect(),
    };
    v.push((0, SEG));
    v
}

/// A reassembler (256-byte heap pages) that saw each of `flows` open with
/// a SYN at sequence number 0.
fn opened(cfg: Config, flows: &[(FlowKey, Dir)]) -> Reassembler<Factory, HeapPool> {
    let mut r = Reassembler::with_pool(cfg, Factory, HeapPool::new(256, 0));
    for &(key, dir) in flows {
        r.process(&Segment::new(
            key,
            dir,
            Seq(0),
            TcpFlags::SYN,
            &[],
            Timestamp(0),
        ));
    }
    r
}

/// `flows` each send `n` segments, one per millisecond, with a hole before
/// each one, so nothing is delivered until a limit or the timeout says so.
fn flood(cfg: Config, flows: &[(FlowKey, Dir)], n: u32, payload: &'static [u8]) {
    let mut r = opened(cfg, flows);
    for i in 0..n {
        let t = Timestamp(u64::from(i + 1) * 1_000_000);
        let seq = Seq(1 + SEG + 2 * i * SEG);
        for &(key, dir) in flows {
            r.process(&Segment::new(
                key,
                dir,
                seq,
                TcpFlags::ACK,
                &payload[..SEG as usize],
                t,
            ));
        }
    }
    r.flush_all();
}

/// `flows` each send `n` one-byte segments behind a hole at their start:
/// `step` apart (2: a byte between each two; 1: one after another), in
/// falling or rising order.
fn small_flood(cfg: Config, flows: &[(FlowKey, Dir)], n: u32, step: u32, falling: bool) {
    let mut r = opened(cfg, flows);
    for i in 0..n {
        let k = if falling { n - 1 - i } else { i };
        let t = Timestamp(u64::from(i + 1) * 1_000);
        for &(key, dir) in flows {
            r.process(&Segment::new(
                key,
                dir,
                Seq(2 + step * k),
                TcpFlags::ACK,
                b"x",
                t,
            ));
        }
    }
    r.flush_all();
}

fn bench(c: &mut Criterion) {
    let payload: &'static [u8] = Box::leak(vec![7u8; 2 * SEG as usize].into_boxed_slice());
    let a: IpAddr = "10.1.1.1".parse().unwrap();
    let (key, dir) = FlowKey::new(a, 1000, a, 2000, 0);
    let mut g = c.benchmark_group("hostile_patterns");
    g.sample_size(10);
    for pattern in ["scatter", "descending", "overlap_storm"] {
        for n in [2_000u32, 4_000, 8_000, 16_000] {
            let segs = order(pattern, n);
            g.throughput(Throughput::Elements(segs.len() as u64));
            g.bench_with_input(BenchmarkId::new(pattern, n), &segs, |b, segs| {
                b.iter(|| {
                    let cfg = Config {
                        max_pages_per_conn: 0,
                        ..Config::default()
                    };
                    let mut r = Reassembler::with_pool(cfg, Factory, HeapPool::new(256, 0));
                    let mk = |flags: TcpFlags, seq: u32, p: &'static [u8]| {
                        Segment::new(key, dir, Seq(seq), flags, p, Timestamp(1))
                    };
                    r.process(&mk(TcpFlags::SYN, 0, &[]));
                    for &(off, len) in segs {
                        r.process(&mk(TcpFlags::ACK, 1 + off, &payload[..len as usize]));
                    }
                    r.flush_all();
                })
            });
        }
    }
    for n in [2_000u32, 4_000, 8_000, 16_000] {
        let flows: Vec<_> = (0..8)
            .map(|f| FlowKey::new(a, 1000 + f, a, 2000, 0))
            .collect();
        let segments = n * flows.len() as u32;
        g.throughput(Throughput::Elements(u64::from(segments)));
        let memcap = Config {
            max_pages_per_conn: 0,
            max_pages: segments as usize / 4,
            ..Config::default()
        };
        let timeout = Config {
            max_pages_per_conn: 0,
            flush_timeout_ns: Some(u64::from(n / 4) * 1_000_000),
            ..Config::default()
        };
        for (name, cfg) in [("memcap_flood", memcap), ("timeout_flood", timeout)] {
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
                b.iter(|| flood(cfg.clone(), &flows, n, payload))
            });
        }
        let share = Config {
            max_pages_per_conn: n as usize / 4,
            ..Config::default()
        };
        for (name, step, falling) in [
            ("prune_falling", 2, true),
            ("prune_rising", 2, false),
            ("collapse_run", 1, false),
        ] {
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
                b.iter(|| small_flood(share.clone(), &flows, n, step, falling))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
