//! Damage everywhere: every truncation point and seeded random corruption of
//! small captures. Nothing may panic; whole and trickled reads must agree;
//! frames before the damage are yielded unchanged.

mod common;

use common::{drain, NgBuilder, Owned, PcapBuilder, Trickle};
use weft_capture::{Capture, CaptureError};

fn pcap_sample() -> Vec<u8> {
    let mut b = PcapBuilder::new(false, true, 65535, 1);
    b.record(1, 2, b"first frame", 60);
    b.record(3, 4, &[9; 70], 70);
    b.record(5, 6, b"x", 1);
    b.bytes
}

fn pcapng_sample() -> Vec<u8> {
    let mut b = NgBuilder::new();
    b.section(false);
    b.interface(1, 0, &[(9, &[9])]);
    b.epb(0, 10, b"enhanced", 8, &[(1, b"comment")]);
    b.block(0x4242, b"unknown");
    b.spb(b"simple", 6);
    b.section(true);
    b.interface(113, 64, &[(9, &[0x83])]);
    b.pb(0, 16, b"obsolete", 8);
    b.bytes
}

/// Reads whole and trickled (`None` when opening fails); both must agree.
fn read(bytes: &[u8]) -> Option<(Vec<Owned>, Option<CaptureError>)> {
    let whole = Capture::from_bytes(bytes.to_vec(), "t");
    let stream = Capture::from_reader(Box::new(Trickle::new(bytes.to_vec())), "t");
    match (whole, stream) {
        (Ok(mut w), Ok(mut s)) => {
            let (a, b) = (drain(&mut w), drain(&mut s));
            assert_eq!(a, b);
            Some(a)
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            None
        }
        (w, s) => panic!("whole {w:?} vs stream {s:?}"),
    }
}

/// Offsets where a record or block ends: cutting there is a clean end.
fn boundaries(sample: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    if sample.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let (mut pos, mut big) = (0, false);
        while pos < sample.len() {
            if sample[pos..pos + 4] == [0x0a, 0x0d, 0x0d, 0x0a] {
                big = sample[pos + 8] == 0x1a;
            }
            let l: [u8; 4] = sample[pos + 4..pos + 8].try_into().unwrap();
            pos += if big {
                u32::from_be_bytes(l)
            } else {
                u32::from_le_bytes(l)
            } as usize;
            out.push(pos as u64);
        }
    } else {
        let mut pos = 24;
        out.push(24);
        while pos < sample.len() {
            pos += 16 + u32::from_be_bytes(sample[pos + 8..pos + 12].try_into().unwrap()) as usize;
            out.push(pos as u64);
        }
    }
    out
}

#[test]
fn every_truncation_point() {
    for sample in [pcap_sample(), pcapng_sample()] {
        let (full, err) = read(&sample).unwrap();
        assert_eq!((full.len(), err), (3, None));
        let boundaries = boundaries(&sample);
        for cut in 1..sample.len() {
            let Some((frames, err)) = read(&sample[..cut]) else {
                continue;
            };
            assert_eq!(frames, full[..frames.len()], "cut {cut}");
            let clean = boundaries.contains(&(cut as u64));
            assert_eq!(err.is_none(), clean, "cut {cut}: {err:?}");
        }
    }
}

#[test]
fn seeded_random_corruption() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for sample in [pcap_sample(), pcapng_sample()] {
        for _ in 0..2000 {
            let mut bytes = sample.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            read(&bytes);
        }
    }
}
