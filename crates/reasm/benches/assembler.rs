//! The reassembler alone, on one core: 10,000 concurrent flows, segments
//! interleaved across flows as on a busy link, in order and with 5% of
//! segments swapped with their flow's next one. Each iteration runs the
//! whole life of every flow: SYN, data, FIN, close. Segments are decoded
//! beforehand; the stream handler only counts bytes.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::Factory;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weft_reasm::{Config, Reassembler, Segment};
use weft_wire::{FlowKey, Seq, TcpFlags, Timestamp};

const FLOWS: u32 = 10_000;
const SEGS_PER_FLOW: u32 = 20;
const PAYLOAD: usize = 512;

/// Segments of `FLOWS` flows, round-robin, with `reorder_pct` percent of
/// data segments swapped with the next segment of their flow.
fn traffic(payload: &'static [u8], reorder_pct: u32) -> Vec<Segment<'static>> {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut flows: Vec<Vec<Segment<'static>>> = Vec::with_capacity(FLOWS as usize);
    for f in 0..FLOWS {
        let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | f));
        let dst = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let (key, dir) = FlowKey::new(src, 1024 + (f % 60000) as u16, dst, 443, 0);
        let isn = (next() as u32) | 1;
        let hash = key.symmetric_hash();
        let mk = |flags: TcpFlags, seq: u32, payload: &'static [u8]| Segment {
            hash,
            ack: Seq(1),
            ..Segment::new(key, dir, Seq(seq), flags, payload, Timestamp(0))
        };
        let mut v = vec![mk(TcpFlags::SYN, isn, &[])];
        let mut seq = isn.wrapping_add(1);
        for _ in 0..SEGS_PER_FLOW {
            v.push(mk(TcpFlags::ACK, seq, payload));
            seq = seq.wrapping_add(payload.len() as u32);
        }
        v.push(mk(TcpFlags::FIN | TcpFlags::ACK, seq, &[]));
        for i in 1..v.len() - 2 {
            if (next() % 100) < reorder_pct as u64 {
                v.swap(i, i + 1);
            }
        }
        flows.push(v);
    }
    let mut out = Vec::with_capacity((FLOWS * (SEGS_PER_FLOW + 2)) as usize);
    for i in 0..(SEGS_PER_FLOW + 2) as usize {
        for (n, f) in flows.iter().enumerate() {
            let mut s = f[i];
            s.ts = Timestamp((i * FLOWS as usize + n) as u64 * 100);
            out.push(s);
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let payload: &'static [u8] = Box::leak(vec![0x5a; PAYLOAD].into_boxed_slice());
    let mut g = c.benchmark_group("reassembler");
    g.sample_size(10);
    for (name, pct) in [("in_order", 0), ("reorder_5pct", 5)] {
        let segs = traffic(payload, pct);
        g.throughput(Throughput::Elements(segs.len() as u64));
        g.bench_function(format!("{name}/segments"), |b| {
            b.iter(|| {
                let mut r = Reassembler::new(Config::default(), Factory);
                for s in &segs {
                    r.process(s);
                }
                r.flush_all();
                assert_eq!(
                    r.stats().delivered_bytes,
                    (FLOWS * SEGS_PER_FLOW) as u64 * PAYLOAD as u64
                );
            })
        });
        let bytes = (FLOWS * SEGS_PER_FLOW) as u64 * PAYLOAD as u64;
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(format!("{name}/payload"), |b| {
            b.iter(|| {
                let mut r = Reassembler::new(Config::default(), Factory);
                for s in &segs {
                    r.process(s);
                }
                r.flush_all();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
