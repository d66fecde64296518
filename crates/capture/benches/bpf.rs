//! The BPF interpreter on one frame: tcpdump's programs for `tcp` (a few
//! instructions) and `tcp port 80` on an IPv4 frame to another port (the
//! longest way through: the header length read, both ports compared).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use weft_capture::BpfProgram;

/// `tcpdump -ddd 'tcp'`.
const TCP: &str = "12\n40 0 0 12\n21 0 2 2048\n48 0 0 23\n21 6 7 6\n21 0 6 34525\n\
    48 0 0 20\n21 3 0 6\n21 0 3 44\n48 0 0 54\n21 0 1 6\n6 0 0 262144\n6 0 0 0\n";

fn frame() -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 20 + 1400];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[23] = 6;
    f[34..36].copy_from_slice(&50_000u16.to_be_bytes());
    f[36..38].copy_from_slice(&443u16.to_be_bytes());
    f
}

fn bench(c: &mut Criterion) {
    let port80 = include_str!("../../../tests/data/tcp-port-80.bpf");
    let f = frame();
    let mut g = c.benchmark_group("bpf");
    g.throughput(Throughput::Elements(1));
    for (name, text) in [("tcp", TCP), ("tcp_port_80_miss", port80)] {
        let p = BpfProgram::parse(text).unwrap();
        g.bench_function(name, |b| b.iter(|| p.run(black_box(&f), black_box(1454))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
