//! Decoding a typical Ethernet / IPv4 / TCP frame (with timestamps option
//! and 1400 bytes of payload), with and without checksum verification, and
//! a VLAN-tagged IPv6 frame.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use weft_wire::{decode, tcp_checksum_v4, DecodeOptions, Decoded, LinkType};

fn frame_v4() -> Vec<u8> {
    let (src, dst) = ([192, 168, 1, 10], [93, 184, 216, 34]);
    let mut tcp = vec![
        0xc3, 0x50, 0x01, 0xbb, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0x80, 0x18, 0x01, 0xf5,
    ];
    tcp.extend([0, 0, 0, 0, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    tcp.extend((0..1400).map(|i| i as u8));
    let c = tcp_checksum_v4(src, dst, &tcp);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let total = (20 + tcp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend(total.to_be_bytes());
    ip.extend([0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
    ip.extend(src);
    ip.extend(dst);
    let c = weft_wire::internet_checksum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00];
    f.extend(ip);
    f.extend(tcp);
    f
}

fn frame_vlan_v6() -> Vec<u8> {
    let mut tcp = vec![
        0xc3, 0x50, 0x01, 0xbb, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0x50, 0x10, 0x01, 0xf5,
    ];
    tcp.extend([0, 0, 0, 0]);
    tcp.extend([0u8; 100]);
    let mut f = vec![
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x81, 0x00, 0, 42, 0x86, 0xdd,
    ];
    f.extend([0x60, 0, 0, 0]);
    f.extend((tcp.len() as u16).to_be_bytes());
    f.extend([6, 64]);
    f.extend([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    f.extend([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    f.extend(tcp);
    f
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    let v4 = frame_v4();
    let v6 = frame_vlan_v6();
    let plain = DecodeOptions::default();
    let verify = DecodeOptions {
        verify_checksums: true,
        ..plain
    };
    assert!(
        matches!(decode(LinkType::Ethernet, &v4, &verify), Ok(Decoded::Tcp(p)) if p.checksum_ok == Some(true))
    );
    assert!(matches!(
        decode(LinkType::Ethernet, &v6, &plain),
        Ok(Decoded::Tcp(_))
    ));
    g.bench_function("eth_ipv4_tcp", |b| {
        b.iter(|| decode(LinkType::Ethernet, black_box(&v4), &plain))
    });
    g.bench_function("eth_ipv4_tcp_verify_checksums", |b| {
        b.iter(|| decode(LinkType::Ethernet, black_box(&v4), &verify))
    });
    g.bench_function("eth_vlan_ipv6_tcp", |b| {
        b.iter(|| decode(LinkType::Ethernet, black_box(&v6), &plain))
    });
    g.bench_function("eth_ipv4_tcp_symmetric_hash", |b| {
        b.iter(
            || match decode(LinkType::Ethernet, black_box(&v4), &plain) {
                Ok(Decoded::Tcp(p)) => p.key.symmetric_hash(),
                _ => 0,
            },
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
