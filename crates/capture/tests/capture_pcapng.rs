//! pcapng: hand-built sections, interfaces, packet blocks and damage.

mod common;

use common::{drain, NgBuilder, Owned, Trickle};
use weft_capture::{Capture, CaptureError, ErrorKind, Format, Interface};

const TS9: u64 = 1_700_000_000_123_456_789;

/// Reads `bytes` whole and trickled; both must agree. Returns the first.
fn read_both(bytes: &[u8]) -> (Vec<Owned>, Option<CaptureError>) {
    let whole = drain(&mut Capture::from_bytes(bytes.to_vec(), "t.pcapng").unwrap());
    let stream = Box::new(Trickle::new(bytes.to_vec()));
    let trickled = drain(&mut Capture::from_reader(stream, "t.pcapng").unwrap());
    assert_eq!(whole, trickled);
    whole
}

/// SHB, two interfaces, EPBs, an unknown block, an SPB and an obsolete PB.
fn two_interfaces() -> (NgBuilder, Vec<u64>) {
    let mut b = NgBuilder::new();
    b.section(false);
    // if 0: Ethernet, nanosecond resolution, plus a comment and an unknown option.
    b.interface(1, 0, &[(1, b"eth0 comment"), (0x7777, b"xyz"), (9, &[9])]);
    // if 1: Linux SLL, 2^-6 s resolution, an offset of 100 s, snaplen 96.
    let off = 100i64.to_le_bytes();
    b.interface(113, 96, &[(9, &[0x86]), (14, &off), (13, &[4])]);
    let mut at = vec![b.epb(
        0,
        TS9,
        b"ether-frame",
        64,
        &[(2, &[0, 0, 0, 1]), (0x5555, b"?")],
    )];
    b.block(0x0bad_cafe, b"an unknown block, skipped");
    at.push(b.epb(1, 65, &[0x11; 33], 1500, &[]));
    at.push(b.spb(b"simple", 6));
    at.push(b.pb(1, 128, b"old", 3));
    (b, at)
}

#[test]
fn interfaces_resolutions_and_block_kinds() {
    let (b, at) = two_interfaces();
    let mut cap = Capture::from_bytes(b.bytes.clone(), "t.pcapng").unwrap();
    assert_eq!(cap.format(), Format::PcapNg);
    assert!(cap.pcap_header().is_none());
    let (frames, err) = drain(&mut cap);
    assert_eq!(err, None);
    let ifaces = cap.interfaces();
    assert_eq!(ifaces.len(), 2);
    assert_eq!(
        ifaces[1],
        Interface {
            link_type: 113,
            snaplen: 96,
            tsresol: 0x86,
            tsoffset: 100,
            fcs_len: Some(4)
        }
    );
    assert_eq!((ifaces[0].tsresol, ifaces[0].fcs_len), (9, None));
    let got: Vec<_> = frames
        .iter()
        .map(|f| (f.interface, f.link_type, f.ts_nanos, f.wire_len, f.offset))
        .collect();
    assert_eq!(
        got,
        [
            (0, 1, TS9, 64, at[0]),
            (1, 113, 101_015_625_000, 1500, at[1]),
            (0, 1, 101_015_625_000, 6, at[2]),
            (1, 113, 102_000_000_000, 3, at[3]),
        ]
    );
    assert_eq!(frames[0].data, b"ether-frame");
    assert_eq!(frames[1].data, [0x11; 33]);
    assert_eq!(frames[2].data, b"simple");
    assert_eq!(frames[3].data, b"old");
    assert_eq!(cap.bytes_read(), b.bytes.len() as u64);
    assert_eq!(read_both(&b.bytes), (frames, None));
}

#[test]
fn several_sections_in_both_byte_orders() {
    let mut b = NgBuilder::new();
    b.section(true);
    b.interface(228, 0, &[(9, &[3])]);
    b.epb(0, 5_000, b"be", 2, &[]);
    b.section(false);
    b.interface(1, 0, &[]);
    b.epb(0, 7, b"le", 2, &[]);
    let (frames, err) = read_both(&b.bytes);
    assert_eq!(err, None);
    let got: Vec<_> = frames
        .iter()
        .map(|f| (f.data.clone(), f.link_type, f.ts_nanos))
        .collect();
    assert_eq!(
        got,
        [
            (b"be".to_vec(), 228, 5_000_000_000),
            (b"le".to_vec(), 1, 7_000)
        ]
    );
}

#[test]
fn simple_packet_respects_snaplen() {
    let mut b = NgBuilder::new();
    b.section(true);
    b.interface(1, 4, &[]);
    b.spb(b"abcdefgh", 1000);
    let (frames, err) = read_both(&b.bytes);
    assert_eq!(
        (frames[0].data.as_slice(), frames[0].wire_len, err),
        (&b"abcd"[..], 1000, None)
    );
}

fn damaged(edit: impl FnOnce(&mut NgBuilder) -> u64) -> (usize, CaptureError, u64) {
    let (mut b, _) = two_interfaces();
    let at = edit(&mut b);
    let (frames, err) = read_both(&b.bytes);
    (frames.len(), err.expect("an error"), at)
}

#[test]
fn bad_block_lengths() {
    // Not a multiple of 4.
    let (n, err, at) = damaged(|b| {
        let at = b.epb(0, 1, b"x", 1, &[]);
        b.bytes[at as usize + 4] += 1;
        at
    });
    assert_eq!(
        (n, err.kind, err.offset),
        (
            4,
            ErrorKind::BadBlockLength {
                len: 37,
                trailer: 37
            },
            at
        )
    );
    // Trailing copy differs, in a packet block and in a skipped block.
    for btype in [6, 0x4242] {
        let (n, err, at) = damaged(|b| {
            let at = b.block(btype, &[0; 20]);
            let end = b.bytes.len();
            b.bytes[end - 4] = 99;
            at
        });
        assert_eq!(
            (n, err.kind, err.offset),
            (
                4,
                ErrorKind::BadBlockLength {
                    len: 32,
                    trailer: 99
                },
                at
            )
        );
    }
    // Shorter than the block type needs, and captured length past the block.
    let (_, err, at) = damaged(|b| b.block(6, &[0; 8]));
    assert_eq!(
        (err.kind, err.offset),
        (
            ErrorKind::BadBlockLength {
                len: 20,
                trailer: 20
            },
            at
        )
    );
    let (_, err, at) = damaged(|b| {
        let at = b.epb(0, 1, b"abcd", 4, &[]);
        b.bytes[at as usize + 20] = 9; // caplen 9 > 4 bytes of data
        at
    });
    assert_eq!(
        (err.kind, err.offset),
        (
            ErrorKind::BadBlockLength {
                len: 36,
                trailer: 36
            },
            at
        )
    );
    assert!(
        err.to_string().contains("bad block length at byte"),
        "{err}"
    );
}

#[test]
fn oversized_and_undeclared() {
    let (_, err, at) = damaged(|b| {
        let at = b.epb(0, 1, b"abcd", 4, &[]);
        b.bytes[at as usize + 20..at as usize + 24].copy_from_slice(&400_000u32.to_le_bytes());
        at
    });
    assert_eq!(
        (err.kind, err.offset),
        (
            ErrorKind::OversizedRecord {
                len: 400_000,
                limit: 262_144
            },
            at
        )
    );
    let (_, err, at) = damaged(|b| {
        let at = b.bytes.len() as u64;
        b.bytes.extend_from_slice(&6u32.to_le_bytes());
        b.bytes.extend_from_slice(&0x1000_0000u32.to_le_bytes());
        at
    });
    assert_eq!(
        (err.kind, err.offset),
        (
            ErrorKind::OversizedRecord {
                len: 0x1000_0000,
                limit: 327_680
            },
            at
        )
    );
    let (_, err, at) = damaged(|b| b.epb(7, 1, b"abcd", 4, &[]));
    assert_eq!((err.kind, err.offset), (ErrorKind::UnknownInterface(7), at));
}

#[test]
fn truncated_blocks() {
    let (n, err, at) = damaged(|b| {
        let at = b.epb(0, 1, &[5; 100], 100, &[]);
        b.bytes.truncate(at as usize + 50);
        at
    });
    let expect = ErrorKind::TruncatedRecordData {
        needed: 132,
        available: 50,
    };
    assert_eq!((n, err.kind, err.offset), (4, expect, at));
    let (_, err, at) = damaged(|b| {
        let at = b.block(0x4242, &[0; 1000]);
        b.bytes.truncate(at as usize + 600);
        at
    });
    let expect = ErrorKind::TruncatedRecordData {
        needed: 1012,
        available: 600,
    };
    assert_eq!((err.kind, err.offset), (expect, at));
    let (_, err, at) = damaged(|b| {
        let at = b.bytes.len() as u64;
        b.bytes.extend_from_slice(&[6, 0, 0, 0, 32]);
        at
    });
    let expect = ErrorKind::TruncatedRecordHeader {
        needed: 8,
        available: 5,
    };
    assert_eq!((err.kind, err.offset), (expect, at));
}

#[test]
fn bad_byte_order_magic() {
    let mut b = NgBuilder::new();
    b.section(false);
    b.bytes[8] = 0;
    let err = Capture::from_bytes(b.bytes, "t").unwrap_err();
    assert_eq!(
        (err.kind, err.offset),
        (ErrorKind::BadByteOrder(0x003c_2b1a), 0)
    );
    // A later section with a bad magic: frames before it, then the error.
    let (n, err, at) = damaged(|b| {
        let at = b.bytes.len();
        b.section(true);
        b.bytes[at + 9] = 0;
        at as u64
    });
    assert!(matches!(err.kind, ErrorKind::BadByteOrder(_)));
    assert_eq!((n, err.offset), (4, at));
    assert!(err.to_string().contains("byte-order magic"), "{err}");
}

/// A section of a major version this reader does not know (only 1
/// exists) is not read: an error at its header, after the frames before.
#[test]
fn an_unknown_major_version_is_refused() {
    let (n, err, at) = damaged(|b| {
        let at = b.bytes.len();
        b.section(false);
        b.bytes[at + 12..at + 14].copy_from_slice(&2u16.to_le_bytes());
        at as u64
    });
    assert_eq!(
        (n, err.kind, err.offset),
        (4, ErrorKind::UnsupportedVersion { major: 2, minor: 0 }, at)
    );
    let shown = err.to_string();
    assert!(
        shown.contains("unsupported format version") && shown.ends_with("(2.0)"),
        "{shown}"
    );
}

/// A section may declare many interfaces, but not without end: a stream of
/// description blocks (which bring no frame) is stopped with an error
/// instead of growing the reader's memory.
#[test]
fn interfaces_per_section_are_bounded() {
    let mut b = NgBuilder::new();
    b.section(false);
    for _ in 0..65_536 {
        b.interface(1, 0, &[]);
    }
    let ok_len = b.bytes.len() as u64;
    b.epb(65_535, 1, b"last one declared", 17, &[]);
    b.interface(1, 0, &[]);
    let (frames, err) = drain(&mut Capture::from_bytes(b.bytes, "t.pcapng").unwrap());
    assert_eq!(frames.len(), 1);
    let err = err.expect("an error");
    assert_eq!(err.kind, ErrorKind::TooManyInterfaces(65_536));
    assert!(err.offset > ok_len, "at the 65,537th: {}", err.offset);
}

/// An interface description whose options run past the block is an error
/// at that block: read on, its packets would take the default resolution
/// (microseconds) and every time would be wrong. Options that simply end
/// with the block, without the end marker, are fine.
#[test]
fn interface_options_past_the_block_are_an_error() {
    let mut b = NgBuilder::new();
    b.section(false);
    let idb = b.bytes.len() as u64;
    b.interface(1, 0, &[(2, b"eth0"), (9, &[9])]);
    b.epb(0, 1_000_000_000, b"frame", 5, &[]);
    // The first option's length (after the 8-byte block header, link type,
    // reserved and snaplen, and the option's code) now claims 64 bytes.
    let at = idb as usize + 8 + 8 + 2;
    b.bytes[at..at + 2].copy_from_slice(&64u16.to_le_bytes());
    let (frames, err) = read_both(&b.bytes);
    let err = err.expect("an error");
    assert_eq!(frames.len(), 0);
    assert_eq!(
        (err.kind, err.offset),
        (ErrorKind::BadOptions { code: 2 }, idb)
    );
    assert!(err.to_string().contains("options run past"), "{err}");

    let mut b = NgBuilder::new();
    b.section(false);
    let mut body = vec![1, 0, 0, 0, 0, 0, 0, 0]; // Ethernet, snaplen 0
    body.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]); // if_tsresol 9, no end marker
    b.block(1, &body);
    b.epb(0, 1_000_000_000, b"frame", 5, &[]);
    let (frames, err) = read_both(&b.bytes);
    assert_eq!(err, None);
    assert_eq!(frames[0].ts_nanos, 1_000_000_000);
}

/// A simple packet block's data is its original length cut to interface
/// 0's snaplen, and the block must hold it: a shorter block is damaged (its
/// padding is never handed out as data), and data beyond the record limit
/// is refused as other packet blocks' is, not cut.
#[test]
fn simple_packet_blocks_that_cannot_hold_their_data() {
    let mut b = NgBuilder::new();
    b.section(false);
    b.interface(1, 0, &[]);
    b.spb(b"fits", 4);
    let short = b.spb(b"hello", 100); // 5 bytes, padded to 8, of 100
    let (frames, err) = read_both(&b.bytes);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].data, b"fits");
    let err = err.expect("an error");
    assert_eq!(
        (err.kind, err.offset),
        (
            ErrorKind::BadBlockLength {
                len: 24,
                trailer: 24
            },
            short
        )
    );

    let mut b = NgBuilder::new();
    b.section(false);
    b.interface(1, 0, &[]);
    let big = b.spb(&vec![0x42; 300_000], 300_000);
    let (frames, err) = read_both(&b.bytes);
    assert_eq!(frames.len(), 0);
    let err = err.expect("an error");
    assert_eq!(
        (err.kind, err.offset),
        (
            ErrorKind::OversizedRecord {
                len: 300_000,
                limit: 262_144
            },
            big
        )
    );

    // Cut by the snaplen, the same data fits.
    let mut b = NgBuilder::new();
    b.section(false);
    b.interface(1, 1000, &[]);
    b.spb(&vec![0x42; 1000], 300_000);
    let (frames, err) = read_both(&b.bytes);
    assert_eq!(err, None);
    assert_eq!((frames[0].data.len(), frames[0].wire_len), (1000, 300_000));
}
