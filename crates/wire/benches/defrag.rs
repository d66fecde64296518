//! IPv4 defragmentation, per fragment: a 64 KiB datagram in 8-byte
//! fragments in order (the longest ordinary datagram), and hostile
//! patterns against a datagram that already holds that many pieces, whose
//! cost must not grow with what the datagram holds (FragmentSmack,
//! CVE-2018-5391, was a fragment queue walked in full for each fragment):
//!
//! * `front_churn`: under a policy where later fragments win, fragments
//!   at the front of a datagram held as 8,100 owners alternately split
//!   one owner in two and join the two again;
//! * `scattered_overwrite`: a datagram whose 1,000 8-byte pieces arrived
//!   in reverse (each one a stretch held apart), overwritten one piece at
//!   a time.
//!
//! Each fragment of the hostile patterns is a real one: its datagram never
//! completes, it stays for the 30 s timeout, and nothing else limits how
//! many such fragments a sender may send it.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::net::{IpAddr, Ipv4Addr};
use weft_wire::{DefragConfig, DefragPolicy, Defragmenter, Fragment, Timestamp};

/// An IPv4 header for the fragments (its fields are not read here).
const HEADER: [u8; 20] = [
    0x45, 0, 0, 28, 0, 1, 0x20, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1,
];

/// A fragment of datagram 1 at byte `offset`, with more to follow.
fn frag(offset: u32, data: &[u8]) -> Fragment<'_> {
    Fragment {
        ip_version: 4,
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
        id: 1,
        protocol: 17,
        offset,
        more: true,
        data,
        missing: 0,
        header: &HEADER,
        vlan: 0,
        vni: 0,
        ends: 0,
        checksum_ok: None,
    }
}

fn defragmenter(policy: DefragPolicy) -> Defragmenter {
    Defragmenter::new(DefragConfig {
        policy,
        ..DefragConfig::default()
    })
}

/// 8-byte pieces `0..n` of datagram 1, in order.
fn in_order(d: &mut Defragmenter, n: u32, data: &[u8]) {
    for k in 0..n {
        assert!(d.push(&frag(k * 8, &data[..8]), Timestamp(0)).is_none());
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("defrag");
    let bytes: Vec<u8> = (0..=255).cycle().take(65_536).collect();
    let pieces = 8100u32;

    g.throughput(Throughput::Elements(u64::from(pieces) + 1));
    for policy in [DefragPolicy::First, DefragPolicy::Last] {
        g.bench_function(format!("in_order_64k/{policy}"), |b| {
            b.iter_batched(
                || defragmenter(policy),
                |mut d| {
                    in_order(&mut d, pieces, &bytes);
                    let mut last = frag(pieces * 8, &bytes[..8]);
                    last.more = false;
                    black_box(d.push(&last, Timestamp(0)).expect("whole"))
                },
                BatchSize::LargeInput,
            )
        });
    }

    // Later fragments win; each piece its own owner (the data differs
    // from piece to piece, so no two neighbours join).
    let mut d = defragmenter(DefragPolicy::Last);
    in_order(&mut d, pieces, &bytes);
    let (split, join) = (frag(0, &bytes[8..16]), frag(0, &bytes[16..32]));
    g.throughput(Throughput::Elements(2));
    g.bench_function("front_churn/last", |b| {
        b.iter(|| {
            d.push(black_box(&join), Timestamp(0));
            d.push(black_box(&split), Timestamp(0))
        })
    });
    assert!(d.stats().replaced_overlap > 0);

    // 1,000 pieces in reverse: 1,000 stretches held apart.
    let mut d = defragmenter(DefragPolicy::Last);
    let stretches = 1000u32;
    for k in (0..stretches).rev() {
        d.push(
            &frag(k * 8, &bytes[k as usize..k as usize + 8]),
            Timestamp(0),
        );
    }
    let mut at = 0u32;
    g.throughput(Throughput::Elements(1));
    g.bench_function("scattered_overwrite/last", |b| {
        b.iter(|| {
            at = (at + 397) % stretches;
            d.push(black_box(&frag(at * 8, &bytes[64..72])), Timestamp(0))
        })
    });
    assert_eq!(d.stats().dropped_limit, 0);
    assert_eq!(d.in_progress(), 1);
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
