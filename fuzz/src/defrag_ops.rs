//! The defragmenter driven by arbitrary fragment sequences, under every
//! overlap policy and small limits: up to four IPv4 and IPv6 datagrams at
//! once, overlapping, duplicated, malformed, timed out and evicted. After
//! every fragment the limits must hold; every datagram that completes
//! must decode, and each of its bytes must be the byte some fragment of
//! that datagram carried at that place (nothing invented, nothing moved).
//!
//! Input: a settings byte (policy, datagrams, bytes, the policy of a
//! second host), then 6-byte records `[flags, off_hi, off_lo, len, tick,
//! salt]`; flags: datagram (2 bits), IPv6, more fragments, length in
//! 8-byte units, offset anywhere, bytes shared with other fragments so
//! flagged (exact duplicates), to the second host.

use std::collections::HashMap;

use weft_wire::{
    decode_ip, DecodeOptions, Decoded, DefragConfig, DefragPolicy, Defragmenter, NetTable,
    Timestamp,
};

/// Capture-time nanoseconds after which a datagram is given up.
const TIMEOUT_NS: u64 = 100_000;

/// The byte fragment `op` carries at datagram offset `at`: fragments
/// (almost always) differ, so a byte tells where it came from.
fn fill(op: usize, salt: u8, at: usize) -> u8 {
    (op.wrapping_mul(131) ^ at.wrapping_mul(7)) as u8 ^ salt
}

/// An IPv4 or IPv6 fragment of datagram `id` to host `2 + host`: `data`
/// at byte `off`.
fn packet(v6: bool, host: u8, id: u8, off: u16, more: bool, data: &[u8]) -> Vec<u8> {
    let word = off / 8;
    if v6 {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend(((8 + data.len()) as u16).to_be_bytes());
        p.extend([44, 64]);
        p.extend([0x20, 1, 0xd, 0xb8].iter().chain(&[0; 11]).chain(&[1]));
        p.extend(
            [0x20, 1, 0xd, 0xb8]
                .iter()
                .chain(&[0; 11])
                .chain(&[2 + host]),
        );
        p.extend([17, 0]);
        p.extend(((word << 3) | u16::from(more)).to_be_bytes());
        p.extend(u32::from(id).to_be_bytes());
        p.extend(data);
        p
    } else {
        let mut p = vec![0x45, 0];
        p.extend(((20 + data.len()) as u16).to_be_bytes());
        p.extend(u16::from(id).to_be_bytes());
        p.extend((word | if more { 0x2000 } else { 0 }).to_be_bytes());
        p.extend([64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2 + host]);
        p.extend(data);
        p
    }
}

/// A fragment sent: its bytes' tag and salt (see [`fill`]), offset and
/// length.
type Sent = (usize, u8, usize, usize);

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    run_counted(data);
}

/// [`run`], returning how many datagrams completed (and were checked).
pub fn run_counted(data: &[u8]) -> u64 {
    let Some((&settings, ops)) = data.split_first() else {
        return 0;
    };
    let n = DefragPolicy::ALL.len();
    let policy = DefragPolicy::ALL[usize::from(settings) % n];
    // Host 10.0.0.3 (2001:db8::3) has a policy of its own.
    let mut by_host = NetTable::new();
    let other = DefragPolicy::ALL[usize::from(settings) / n % n];
    by_host.insert("10.0.0.3/32".parse().expect("network"), other);
    by_host.insert("2001:db8::3/128".parse().expect("network"), other);
    let cfg = DefragConfig {
        max_datagrams: 1 + usize::from(settings >> 3 & 3),
        max_bytes: 2048 << (settings >> 5 & 3),
        timeout_ns: TIMEOUT_NS,
        // Deadlines of two lengths in one heap.
        ipv6_timeout_ns: 2 * TIMEOUT_NS,
        policy,
        policy_by_host: by_host,
    };
    let mut d = Defragmenter::new(cfg.clone());
    let opts = DecodeOptions::default();
    // What each datagram (IPv6, host, ID) was sent since it last
    // completed.
    let mut sent: HashMap<(bool, u8, u8), Vec<Sent>> = HashMap::new();
    let mut now = 0u64;
    let mut completed = 0u64;
    for (op, r) in ops.chunks_exact(6).enumerate() {
        let [flags, hi, lo, len, tick, salt] = r.try_into().expect("six bytes");
        let (id, v6, more) = (flags & 3, flags & 4 != 0, flags & 8 != 0);
        let host = flags >> 7;
        let units = u16::from_be_bytes([hi, lo]);
        // Mostly small datagrams, so that fragments meet; sometimes
        // anywhere (too long, far apart).
        let units = if flags & 0x20 != 0 {
            units % 8192
        } else {
            units % 64
        };
        let off = units * 8;
        let len = usize::from(len) * if flags & 0x10 != 0 { 8 } else { 1 };
        now += u64::from(tick) * 1_000;
        // Bytes of its own, or (flag 0x40) those of every fragment flagged
        // so with the same salt: copies of each other where they meet.
        let tag = if flags & 0x40 != 0 { usize::MAX } else { op };
        let bytes: Vec<u8> = (0..len)
            .map(|i| fill(tag, salt, usize::from(off) + i))
            .collect();
        let pkt = packet(v6, host, id, off, more, &bytes);
        let Ok(Decoded::Fragment(f)) = decode_ip(&pkt, 0, &opts) else {
            continue;
        };
        let list = sent.entry((v6, host, id)).or_default();
        list.push((tag, salt, usize::from(off), len));
        if let Some(r) = d.push(&f, Timestamp(now)) {
            completed += 1;
            let header = if v6 { 40 } else { 20 };
            assert!(r.packet.len() >= header);
            let payload = &r.packet[header..];
            for (at, &b) in payload.iter().enumerate() {
                assert!(
                    list.iter().any(|&(o, s, start, n)| {
                        (start..start + n).contains(&at) && fill(o, s, at) == b
                    }),
                    "byte {at} of a datagram came from none of its fragments"
                );
            }
            list.clear();
            let again = decode_ip(&r.packet, 0, &opts);
            assert!(
                !matches!(again, Ok(Decoded::Fragment(_))),
                "a rebuilt datagram is still a fragment"
            );
        }
        assert!(d.in_progress() <= cfg.max_datagrams);
        assert!(d.buffered_bytes() <= cfg.max_bytes);
    }
    assert_eq!(d.stats().reassembled, completed);
    completed
}
