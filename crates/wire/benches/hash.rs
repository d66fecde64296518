//! Toeplitz hashing: the per-byte lookup tables against the bit-serial
//! definition, for IPv4 (12 input bytes) and IPv6 (36) 4-tuples.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use weft_wire::hash::toeplitz_reference;
use weft_wire::{FlowKey, Toeplitz, SYMMETRIC_RSS_KEY};

fn bench(c: &mut Criterion) {
    let t = Toeplitz::symmetric();
    let key = &SYMMETRIC_RSS_KEY[..40];
    let v4 = [192, 168, 1, 10, 93, 184, 216, 34, 0xc3, 0x50, 0x01, 0xbb];
    let mut v6 = [0u8; 36];
    v6.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = (i * 37) as u8);
    let (k, _) = FlowKey::from_v4([192, 168, 1, 10], 50000, [93, 184, 216, 34], 443, 0);

    let mut g = c.benchmark_group("toeplitz");
    g.throughput(Throughput::Elements(1));
    g.bench_function("v4_tables", |b| b.iter(|| t.hash_bytes(black_box(&v4))));
    g.bench_function("v4_bitwise", |b| {
        b.iter(|| toeplitz_reference(key, black_box(&v4)))
    });
    g.bench_function("v6_tables", |b| b.iter(|| t.hash_bytes(black_box(&v6))));
    g.bench_function("v6_bitwise", |b| {
        b.iter(|| toeplitz_reference(key, black_box(&v6)))
    });
    g.bench_function("flow_key_symmetric_hash", |b| {
        b.iter(|| black_box(&k).symmetric_hash())
    });
    g.bench_function("build_tables", |b| {
        b.iter(|| Toeplitz::new(black_box(&[0x6d; 40])))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
