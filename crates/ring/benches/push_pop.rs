//! Two-thread throughput: weft-ring vs rtrb vs crossbeam ArrayQueue, single items
//! and batches of 64. Run: `cargo bench -p weft-ring --bench push_pop`.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const CAP: usize = 4096;
const BATCH: usize = 64;

/// Runs `consume` on a second thread and `produce` here, both released by a
/// barrier; returns the time until the consumer has seen `n` items.
fn two_threads<P, C>(n: u64, produce: P, consume: C) -> Duration
where
    P: FnOnce(u64),
    C: FnOnce(u64) + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    let t = thread::spawn(move || {
        b.wait();
        consume(n);
    });
    barrier.wait();
    let start = Instant::now();
    produce(n);
    t.join().unwrap();
    start.elapsed()
}

fn weft_single(n: u64) -> Duration {
    let (mut tx, mut rx) = weft_ring::channel::<u64>(CAP);
    two_threads(
        n,
        move |n| {
            for i in 0..n {
                let mut v = i;
                while let Err(e) = tx.push(v) {
                    v = e.into_inner();
                    std::hint::spin_loop();
                }
            }
        },
        move |n| {
            let mut got = 0;
            while got < n {
                if let Ok(v) = rx.pop() {
                    black_box(v);
                    got += 1;
                }
            }
        },
    )
}

fn weft_batch(n: u64) -> Duration {
    let (mut tx, mut rx) = weft_ring::channel::<u64>(CAP);
    two_threads(
        n,
        move |n| {
            let mut it = 0..n;
            while it.start < n {
                let take = (n - it.start).min(BATCH as u64);
                let mut chunk = it.start..it.start + take;
                let pushed = tx.push_iter(&mut chunk) as u64;
                it.start += pushed;
            }
        },
        move |n| {
            let mut out = Vec::with_capacity(BATCH);
            let mut got = 0u64;
            while got < n {
                out.clear();
                if let Ok(k) = rx.pop_batch(&mut out, BATCH) {
                    black_box(&out);
                    got += k as u64;
                }
            }
        },
    )
}

fn rtrb_single(n: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
    two_threads(
        n,
        move |n| {
            for i in 0..n {
                while tx.push(i).is_err() {
                    std::hint::spin_loop();
                }
            }
        },
        move |n| {
            let mut got = 0;
            while got < n {
                if let Ok(v) = rx.pop() {
                    black_box(v);
                    got += 1;
                }
            }
        },
    )
}

fn rtrb_batch(n: u64) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAP);
    two_threads(
        n,
        move |n| {
            let mut next = 0u64;
            while next < n {
                let want = ((n - next) as usize).min(BATCH);
                let k = want.min(tx.slots());
                if k == 0 {
                    continue;
                }
                let chunk = tx.write_chunk_uninit(k).unwrap();
                let written = chunk.fill_from_iter(next..next + k as u64);
                next += written as u64;
            }
        },
        move |n| {
            let mut got = 0u64;
            while got < n {
                let k = rx.slots().min(BATCH);
                if k == 0 {
                    continue;
                }
                let chunk = rx.read_chunk(k).unwrap();
                for v in chunk {
                    black_box(v);
                }
                got += k as u64;
            }
        },
    )
}

fn crossbeam_single(n: u64) -> Duration {
    let q = Arc::new(crossbeam_queue::ArrayQueue::<u64>::new(CAP));
    let q2 = q.clone();
    two_threads(
        n,
        move |n| {
            for i in 0..n {
                while q.push(i).is_err() {
                    std::hint::spin_loop();
                }
            }
        },
        move |n| {
            let mut got = 0;
            while got < n {
                if let Some(v) = q2.pop() {
                    black_box(v);
                    got += 1;
                }
            }
        },
    )
}

fn bench(c: &mut Criterion) {
    let mut single = c.benchmark_group("spsc_single");
    single.throughput(Throughput::Elements(1));
    single.bench_function("weft_ring", |b| b.iter_custom(weft_single));
    single.bench_function("rtrb", |b| b.iter_custom(rtrb_single));
    single.bench_function("crossbeam_array_queue", |b| b.iter_custom(crossbeam_single));
    single.finish();

    let mut batch = c.benchmark_group("spsc_batch64");
    batch.throughput(Throughput::Elements(1));
    batch.bench_function("weft_ring", |b| b.iter_custom(weft_batch));
    batch.bench_function("rtrb", |b| b.iter_custom(rtrb_batch));
    batch.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
