//! Classic pcap: hand-built files in memory, on disk, gzipped and trickled.

mod common;

use std::io::{self, Write};
use std::path::PathBuf;

use common::{drain, Owned, PcapBuilder, Trickle};
use flate2::{write::GzEncoder, Compression};
use weft_capture::{Capture, ErrorKind, Format, Prefetch};

fn three_records(nanos: bool, big: bool) -> PcapBuilder {
    let mut b = PcapBuilder::new(nanos, big, 65535, 1);
    b.record(1_700_000_000, 999_999, b"first", 60);
    b.record(1_700_000_001, 5, &[0xab; 1514], 1514);
    b.record(u32::MAX, 123_456, b"", 0);
    b
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn trickled(bytes: Vec<u8>) -> Capture {
    Capture::from_reader(Box::new(Trickle::new(bytes)), "trickle").unwrap()
}

#[test]
fn micro_nano_both_byte_orders() {
    for (nanos, big) in [(false, false), (false, true), (true, false), (true, true)] {
        let b = three_records(nanos, big);
        let mut cap = Capture::from_bytes(b.bytes.clone(), "t.pcap").unwrap();
        assert_eq!(
            cap.format(),
            Format::Pcap {
                nanos,
                big_endian: big
            }
        );
        let (frames, err) = drain(&mut cap);
        assert_eq!(err, None);
        let scale = if nanos { 1 } else { 1_000 };
        let ts: Vec<u64> = frames.iter().map(|f| f.ts_nanos).collect();
        assert_eq!(
            ts,
            [
                1_700_000_000_000_000_000 + 999_999 * scale,
                1_700_000_001_000_000_000 + 5 * scale,
                u64::from(u32::MAX) * 1_000_000_000 + 123_456 * scale,
            ]
        );
        assert_eq!(frames[0].data, b"first");
        assert_eq!((frames[1].data.len(), frames[1].wire_len), (1514, 1514));
        assert_eq!(
            frames.iter().map(|f| f.offset).collect::<Vec<_>>(),
            [24, 45, 1575]
        );
        assert!(frames.iter().all(|f| f.link_type == 1 && f.interface == 0));
        assert_eq!(cap.bytes_read(), b.bytes.len() as u64);
        assert_eq!(cap.total_len(), Some(b.bytes.len() as u64));
        assert_eq!(drain(&mut trickled(b.bytes)).0, frames);
    }
}

#[test]
fn caplen_above_wire_len_is_tolerated() {
    let mut b = PcapBuilder::new(false, false, 65535, 1);
    b.record(1, 2, b"abcdef", 4);
    let (frames, err) = drain(&mut Capture::from_bytes(b.bytes, "t").unwrap());
    assert_eq!((frames[0].wire_len, err), (6, None));
}

#[test]
fn fcs_bits_are_masked_and_reported() {
    let mut b = PcapBuilder::new(false, true, 65535, 0x8400_0001);
    b.record(1, 2, b"abcd", 4);
    let mut cap = Capture::from_bytes(b.bytes, "t").unwrap();
    let h = cap.pcap_header().unwrap();
    assert_eq!(
        (h.link_type, h.fcs_len, h.snaplen, h.version),
        (1, Some(16), 65535, (2, 4))
    );
    assert_eq!(cap.next_frame().unwrap().unwrap().link_type, 1);
}

#[test]
fn truncated_record_header() {
    let mut b = three_records(false, false);
    let end = b.bytes.len() as u64;
    b.bytes.extend_from_slice(&[1; 10]);
    for mut cap in [
        Capture::from_bytes(b.bytes.clone(), "t.pcap").unwrap(),
        trickled(b.bytes.clone()),
    ] {
        let (frames, err) = drain(&mut cap);
        let err = err.unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(
            err.kind,
            ErrorKind::TruncatedRecordHeader {
                needed: 16,
                available: 10
            }
        );
        assert_eq!(err.offset, end);
    }
}

#[test]
fn truncated_record_data() {
    let mut b = three_records(true, true);
    let end = b.bytes.len() as u64;
    b.header(1, 2, 1514, 1514);
    b.bytes.extend_from_slice(&[7; 812]);
    let expect = ErrorKind::TruncatedRecordData {
        needed: 1514,
        available: 812,
    };
    for mut cap in [
        Capture::from_bytes(b.bytes.clone(), "capture.pcap").unwrap(),
        trickled(b.bytes.clone()),
    ] {
        let (frames, err) = drain(&mut cap);
        let err = err.unwrap();
        assert_eq!((frames.len(), err.kind, err.offset), (3, expect, end));
    }
    let err = drain(&mut Capture::from_bytes(b.bytes, "capture.pcap").unwrap())
        .1
        .unwrap();
    assert_eq!(
        err.to_string(),
        format!("capture.pcap: truncated packet record at byte {end} (header says 1514 bytes, 812 left)")
    );
}

#[test]
fn oversized_records() {
    // Beyond the absolute cap, with plenty of bytes following.
    let mut b = three_records(false, false);
    let end = b.bytes.len() as u64;
    b.header(1, 2, 300_000, 300_000);
    b.bytes.extend_from_slice(&vec![0; 300_000]);
    let (frames, err) = drain(&mut Capture::from_bytes(b.bytes, "t").unwrap());
    let err = err.unwrap();
    assert_eq!(frames.len(), 3);
    assert_eq!(
        (err.kind, err.offset),
        (
            ErrorKind::OversizedRecord {
                len: 300_000,
                limit: 131_070
            },
            end
        )
    );
    // Far beyond a small snaplen; the length is rejected before any read.
    let mut b = PcapBuilder::new(false, false, 1500, 1);
    b.header(1, 2, 0xffff_fff0, 60);
    let err = drain(&mut trickled(b.bytes)).1.unwrap();
    assert_eq!(
        (err.kind, err.offset),
        (
            ErrorKind::OversizedRecord {
                len: 0xffff_fff0,
                limit: 131_070
            },
            24
        )
    );
}

#[test]
fn bad_magic_empty_and_short_inputs() {
    let err = Capture::from_bytes(b"GIF89a-not-a-capture-at-all".to_vec(), "x.pcap").unwrap_err();
    assert_eq!(
        (err.kind, err.offset),
        (ErrorKind::BadMagic(0x4749_4638), 0)
    );
    assert!(
        err.to_string()
            .starts_with("x.pcap: bad magic number at byte 0"),
        "{err}"
    );
    let err = Capture::from_bytes(Vec::new(), "e.pcap").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Empty);
    let err = Capture::from_reader(Box::new(Trickle::new(Vec::new())), "s").unwrap_err();
    assert_eq!(err.kind, ErrorKind::Empty);
    let header = PcapBuilder::new(false, false, 0, 1).bytes;
    let err = Capture::from_bytes(header[..20].to_vec(), "h").unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::TruncatedRecordHeader {
            needed: 24,
            available: 20
        }
    );
    let path = temp_file("empty.pcap", b"");
    let err = Capture::open(&path).unwrap_err();
    assert_eq!(
        (err.kind, err.name),
        (ErrorKind::Empty, path.display().to_string())
    );
    let err =
        Capture::open(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("missing.pcap")).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Io(std::io::ErrorKind::NotFound));
}

#[test]
fn header_only_file_is_empty_capture() {
    let b = PcapBuilder::new(true, false, 0, 101);
    let mut cap = Capture::from_bytes(b.bytes, "t").unwrap();
    assert!(cap.next_frame().is_none());
    assert!(cap.next_frame().is_none());
}

#[test]
fn mapped_and_buffered_files_agree() {
    let mut b = three_records(false, true);
    b.header(9, 9, 100, 100);
    b.bytes.extend_from_slice(&[0; 40]);
    let path = temp_file("three.pcap", &b.bytes);
    let mut mapped = Capture::open(&path).unwrap();
    assert!(mapped.is_mapped() && !mapped.is_compressed());
    assert_eq!(mapped.total_len(), Some(b.bytes.len() as u64));
    let mut buffered = Capture::open_buffered(&path).unwrap();
    assert!(!buffered.is_mapped());
    assert_eq!(buffered.total_len(), Some(b.bytes.len() as u64));
    let (a, ea) = drain(&mut mapped);
    let (b2, eb) = drain(&mut buffered);
    assert_eq!(a, b2);
    assert_eq!(ea, eb);
    let ea = ea.unwrap();
    assert_eq!((a.len(), ea.name), (3, path.display().to_string()));
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn gzip_detected_by_magic() {
    let b = three_records(true, false);
    let plain: Vec<Owned> = drain(&mut Capture::from_bytes(b.bytes.clone(), "p").unwrap()).0;
    let gz = gzip(&b.bytes);
    let mut cap = Capture::from_bytes(gz.clone(), "t.bin").unwrap();
    assert!(cap.is_compressed() && !cap.is_mapped());
    assert_eq!(
        cap.format(),
        Format::Pcap {
            nanos: true,
            big_endian: false
        }
    );
    assert_eq!(cap.total_len(), None);
    assert_eq!(drain(&mut cap), (plain.clone(), None));
    let path = temp_file("gz-without-suffix.pcap", &gz);
    for mut cap in [
        Capture::open(&path).unwrap(),
        Capture::open_buffered(&path).unwrap(),
        trickled(gz.clone()),
    ] {
        assert!(cap.is_compressed());
        assert_eq!(drain(&mut cap), (plain.clone(), None));
    }
    // A truncated gzip stream ends in an error, after the frames it held.
    let cut = &gz[..gz.len() - 30];
    let (frames, err) = drain(&mut Capture::from_bytes(cut.to_vec(), "cut.gz").unwrap());
    assert!(frames.len() < 3 && err.is_some());
}

/// A gzip stream damaged midway ends the capture at the same frame, with
/// the same error, whatever the reads that bring it, and the error says
/// the data is invalid. (The decompressor drops what it decompressed in
/// the call that meets the damage: fed as the source's reads fell, a
/// whole buffer or a pipe's few bytes, it stopped at different frames.
/// The fuzz corpus's `gzip-damaged-*` inputs are two where it did.)
#[test]
fn damaged_gzip_ends_at_the_same_frame_however_it_is_read() {
    // The frames, and the error's kind and place (its name is the input's).
    let read = |mut cap: Capture| {
        let (frames, err) = drain(&mut cap);
        (frames, err.map(|e| (e.kind, e.offset)))
    };
    let mut b = PcapBuilder::new(false, false, 65535, 1);
    for i in 0..400u32 {
        let data: Vec<u8> = (0..600u32).map(|j| (i * 31 + j * 7 % 251) as u8).collect();
        b.record(i, 0, &data, 600);
    }
    let clean = gzip(&b.bytes);
    // Damage the second half until the decompressor itself refuses it (a
    // flipped bit often decodes to other bytes instead).
    let (gz, whole) = (clean.len() / 2..clean.len() - 8)
        .step_by(97)
        .find_map(|at| {
            let mut gz = clean.clone();
            gz[at] ^= 0x5a;
            let whole = read(Capture::from_bytes(gz.clone(), "d.gz").unwrap());
            let refused = whole
                .1
                .is_some_and(|(k, _)| k == ErrorKind::Io(io::ErrorKind::InvalidData));
            (refused && whole.0.len() < 400).then_some((gz, whole))
        })
        .expect("some damage the decompressor refuses midway");
    assert!(
        !whole.0.is_empty(),
        "the frames before the damage come first"
    );
    assert_eq!(read(trickled(gz.clone())), whole);
    let one_by_one = Box::new(io::BufReader::with_capacity(1, io::Cursor::new(gz)));
    assert_eq!(
        read(Capture::from_reader(one_by_one, "d.gz").unwrap()),
        whole
    );
}

/// Gzip members follow one another; zero bytes after one are padding (as
/// `gzip -d` takes them), skipped up to the next member or the end, which
/// ends the input cleanly, while other bytes after it are an error, after
/// every frame.
#[test]
fn gzip_members_then_padding_or_garbage() {
    let b = three_records(false, false);
    let plain = drain(&mut Capture::from_bytes(b.bytes.clone(), "p").unwrap()).0;
    let (head, tail) = b.bytes.split_at(40);
    let mut gz = gzip(head);
    gz.extend(gzip(tail));
    let padded = [gz.clone(), vec![0; 10_000]].concat();
    for bytes in [gz.clone(), padded] {
        assert_eq!(
            drain(&mut Capture::from_bytes(bytes.clone(), "m.gz").unwrap()),
            (plain.clone(), None)
        );
        assert_eq!(drain(&mut trickled(bytes)), (plain.clone(), None));
    }
    // Zeros between members, of lengths falling anywhere in the 8 KiB
    // chunks the decompressor is fed: skipped, the next member read.
    let (first, second) = (gzip(head), gzip(tail));
    for zeros in [1, 5, 8192 - first.len(), 8192, 9000, 20_000] {
        let bytes = [first.clone(), vec![0; zeros], second.clone()].concat();
        let want = (plain.clone(), None);
        assert_eq!(
            drain(&mut Capture::from_bytes(bytes.clone(), "z.gz").unwrap()),
            want,
            "{zeros}"
        );
        assert_eq!(drain(&mut trickled(bytes)), want, "{zeros}");
    }
    let garbage = [gz, vec![0, 0, 7]].concat();
    let (frames, err) = drain(&mut Capture::from_bytes(garbage, "g.gz").unwrap());
    assert_eq!(frames, plain);
    assert_eq!(
        err.expect("an error").kind,
        ErrorKind::Io(io::ErrorKind::InvalidData)
    );
}

/// A classic pcap file of a major version other than 2 (all there is) is
/// refused at its header, as libpcap refuses it.
#[test]
fn an_unknown_major_version_is_refused() {
    let mut b = PcapBuilder::new(false, false, 65535, 1);
    b.record(1, 0, b"frame", 5);
    b.bytes[4..6].copy_from_slice(&3u16.to_le_bytes());
    let err = Capture::from_bytes(b.bytes, "v3.pcap").unwrap_err();
    assert_eq!(
        (err.kind, err.offset),
        (ErrorKind::UnsupportedVersion { major: 3, minor: 4 }, 0)
    );
}

/// Files of versions 2.0 to 2.3, and DG/UX's 543.0, keep a record's
/// length on the wire before its captured length; 2.3 files were written
/// in both orders, told apart as libpcap tells them (a captured length
/// is never the larger). Read whole, mapped and trickled, every frame
/// comes out whole, with its length on the wire; 2.5 is read as 2.4. (A
/// writer's captured length above the wire's, tolerated in the other
/// versions, cannot be told apart in 2.3, by libpcap either: left out.)
#[test]
fn old_versions_keep_the_lengths_the_other_way_round() {
    let frames = [
        (&[0x11u8; 60][..], 1514u32),
        (&[0x22; 68][..], 68),
        (&[0x33; 40][..], 90),
        (&[0x44; 70][..], 64),
    ];
    for (major, minor, wire_first) in [
        (2, 0, [true; 4]),
        (2, 2, [true; 4]),
        (543, 0, [true; 4]),
        (2, 3, [true, false, true, false]),
        (2, 3, [false; 4]),
        (2, 4, [false; 4]),
        (2, 5, [false; 4]),
    ] {
        let frames = &frames[..if minor == 3 { 3 } else { 4 }];
        for big in [false, true] {
            let mut b = PcapBuilder::new(false, big, 68, 1);
            let v = |x: u16| {
                if big {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                }
            };
            b.bytes[4..6].copy_from_slice(&v(major));
            b.bytes[6..8].copy_from_slice(&v(minor));
            for (i, (data, wire)) in frames.iter().enumerate() {
                let cap = data.len() as u32;
                let (one, two) = if wire_first[i] {
                    (*wire, cap)
                } else {
                    (cap, *wire)
                };
                b.header(7, i as u32, one, two);
                b.bytes.extend_from_slice(data);
            }
            let name = format!("v{major}.{minor}-{big}.pcap");
            let mut cap = Capture::from_bytes(b.bytes.clone(), &name).unwrap();
            assert_eq!(cap.pcap_header().unwrap().version, (major, minor));
            let (got, err) = drain(&mut cap);
            assert_eq!(err, None, "{name}");
            let want: Vec<(Vec<u8>, u32)> = frames
                .iter()
                .map(|(d, w)| (d.to_vec(), (*w).max(d.len() as u32)))
                .collect();
            let seen: Vec<(Vec<u8>, u32)> =
                got.iter().map(|f| (f.data.clone(), f.wire_len)).collect();
            assert_eq!(seen, want, "{name}");
            let path = temp_file(&name, &b.bytes);
            assert_eq!(
                drain(&mut Capture::open(&path).unwrap()).0,
                got,
                "{name} mapped"
            );
            assert_eq!(drain(&mut trickled(b.bytes)).0, got, "{name} trickled");
        }
    }
    // libpcap reads 543 only as 543.0.
    let mut b = PcapBuilder::new(false, false, 65535, 1);
    b.bytes[4..6].copy_from_slice(&543u16.to_le_bytes());
    b.bytes[6..8].copy_from_slice(&1u16.to_le_bytes());
    let err = Capture::from_bytes(b.bytes, "v543.1.pcap").unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::UnsupportedVersion {
            major: 543,
            minor: 1
        }
    );
}

/// The modified format (magic `a1b2cd34`, from a patched libpcap for
/// Linux) puts 8 more bytes in each record header (interface index,
/// protocol, packet type, pad): read whole, mapped and trickled, in
/// either byte order, every frame comes out whole at its offset, with
/// microsecond times; a file cut inside a 24-byte header is a truncated
/// header, not a short frame.
#[test]
fn modified_format_has_24_byte_record_headers() {
    for big in [false, true] {
        let mut b = PcapBuilder::new(false, big, 65535, 1);
        let magic = 0xa1b2_cd34u32;
        b.bytes[0..4].copy_from_slice(&if big {
            magic.to_be_bytes()
        } else {
            magic.to_le_bytes()
        });
        for (i, data) in [&[0x11u8; 60][..], &[0x22; 1514], b"x"].iter().enumerate() {
            b.header(1_700_000_000 + i as u32, 999_999, data.len() as u32, 1514);
            b.bytes.extend_from_slice(&[2, 0, 0, 0, 8, 0, 4, 0xee]);
            b.bytes.extend_from_slice(data);
        }
        let name = format!("modified-{big}.pcap");
        let mut cap = Capture::from_bytes(b.bytes.clone(), &name).unwrap();
        assert!(cap.pcap_header().unwrap().modified());
        let (got, err) = drain(&mut cap);
        assert_eq!(err, None, "{name}");
        let seen: Vec<(usize, u8, u64, u64)> = got
            .iter()
            .map(|f| (f.data.len(), f.data[0], f.offset, f.ts_nanos))
            .collect();
        let t = |i: u64| (1_700_000_000 + i) * 1_000_000_000 + 999_999_000;
        assert_eq!(
            seen,
            [
                (60, 0x11, 24, t(0)),
                (1514, 0x22, 24 + 24 + 60, t(1)),
                (1, b'x', 24 + 2 * 24 + 60 + 1514, t(2)),
            ],
            "{name}"
        );
        let path = temp_file(&name, &b.bytes);
        assert_eq!(
            drain(&mut Capture::open(&path).unwrap()).0,
            got,
            "{name} mapped"
        );
        assert_eq!(
            drain(&mut trickled(b.bytes.clone())).0,
            got,
            "{name} trickled"
        );
        // Cut 20 bytes into a fourth record's 24-byte header.
        b.header(7, 0, 4, 4);
        b.bytes.extend_from_slice(&[0; 4]);
        for cap in [
            Capture::from_bytes(b.bytes.clone(), &name).unwrap(),
            trickled(b.bytes.clone()),
        ] {
            let mut cap = cap;
            let (frames, err) = drain(&mut cap);
            assert_eq!(frames, got);
            let err = err.expect("a truncated header");
            assert_eq!(
                err.kind,
                ErrorKind::TruncatedRecordHeader {
                    needed: 24,
                    available: 20
                },
                "{name}"
            );
        }
    }
}

/// A regular file that cannot be mapped is read instead: sysfs refuses
/// memory maps (ENODEV), and its file's bytes reach the format check, which
/// tells they are no capture (before, the map's refusal was the error).
#[test]
fn a_file_that_cannot_be_mapped_is_read() {
    let path = std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled");
    if !path.is_file() {
        eprintln!(
            "SKIPPED: no {} to try an unmappable file with",
            path.display()
        );
        return;
    }
    let err = Capture::open(path).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::BadMagic(_)), "{err}");
}

#[test]
fn capture_is_send() {
    fn send<T: Send>() {}
    send::<Capture>();
    send::<weft_capture::CaptureError>();
}

#[test]
fn shared_bytes_hold_every_frame_and_outlive_the_capture() {
    let mut b = PcapBuilder::new(false, false, 65535, 1);
    b.record(1, 0, b"abcdef", 6);
    b.record(2, 0, b"ghij", 4);
    let path = temp_file("shared.pcap", &b.bytes);
    let mut cap = Capture::open(&path).unwrap();
    assert!(cap.is_mapped());
    let shared = cap.shared_bytes().expect("in memory");
    let mut offsets = Vec::new();
    while let Some(f) = cap.next_frame() {
        let f = f.unwrap();
        let at = shared.offset_of(f.data).expect("inside");
        assert_eq!(&shared[at..at + f.data.len()], f.data);
        offsets.push((at, f.data.len()));
    }
    drop(cap);
    assert_eq!(&shared[offsets[1].0..offsets[1].0 + 4], b"ghij");
    assert_eq!(shared.offset_of(b"elsewhere"), None);
}

/// A reopened capture reads every frame again from the first, on its own
/// cursor, through the same mapping (frames at the same addresses), while
/// the original reads on; it ends in the same error; streams cannot be
/// reopened.
#[test]
fn reopened_captures_read_the_same_frames_from_the_same_mapping() {
    let mut b = three_records(false, false);
    b.header(9, 9, 100, 100);
    let path = temp_file("reopen.pcap", &b.bytes);
    let mut first = Capture::open(&path).unwrap();
    let f0 = first.next_frame().unwrap().unwrap().data.as_ptr();
    let mut again = first.reopen().expect("mapped").unwrap();
    assert_eq!(again.name(), first.name());
    assert_eq!(again.total_len(), first.total_len());
    assert!(again.is_mapped());
    let g0 = again.next_frame().unwrap().unwrap().data.as_ptr();
    assert_eq!(f0, g0, "one mapping, not a copy");
    let (rest_first, e1) = drain(&mut first);
    let mut fresh = Capture::open(&path).unwrap();
    let (all, e3) = drain(&mut fresh);
    let mut third = fresh.reopen().expect("mapped").unwrap();
    let (all_again, e4) = drain(&mut third);
    assert_eq!(all.len(), 3);
    assert_eq!(all_again, all, "reopened after the end: from the start");
    assert_eq!(rest_first, all[1..]);
    let (rest_again, e2) = drain(&mut again);
    assert_eq!(rest_again, all[1..]);
    assert_eq!(e1, e2);
    assert_eq!(e3, e4);
    assert!(e1.is_some(), "the bad record's error");
    let in_memory = Capture::from_bytes(b.bytes.clone(), "mem").unwrap();
    assert!(in_memory.reopen().is_some());
    assert!(trickled(b.bytes).reopen().is_none());
}

/// The read-ahead helper maps pages on another thread: frames must be the
/// same with it, it must run on mapped files only, and dropping a capture
/// in the middle (helper parked or busy) must end it without hanging.
#[test]
fn readahead_changes_nothing_and_stops_with_the_capture() {
    let mut b = PcapBuilder::new(false, false, 65535, 1);
    for i in 0..6_000u32 {
        let payload: Vec<u8> = (0..1_400u32).map(|j| (i ^ j) as u8).collect();
        b.record(1_700_000_000 + i, i, &payload, 1_400);
    }
    let path = temp_file("readahead.pcap", &b.bytes); // ~8.5 MB: several chunks
    let mut plain = Capture::open(&path).unwrap();
    let mut ahead = Capture::open(&path).unwrap();
    // The other prefetch policy as well: hints change no frame.
    ahead.set_prefetch(Prefetch::Stream);
    assert_eq!(ahead.start_readahead(), cfg!(target_os = "linux"));
    assert_eq!(
        ahead.start_readahead(),
        cfg!(target_os = "linux"),
        "idempotent"
    );
    // And a helper that reads the bytes ahead as well.
    let mut reading = Capture::open(&path).unwrap();
    reading.set_prefetch(Prefetch::Stream);
    assert_eq!(reading.start_readahead_reading(), cfg!(target_os = "linux"));
    // And a reader unmapping behind itself, which a helper does not replace.
    let mut behind = Capture::open(&path).unwrap();
    assert_eq!(behind.start_unmapping_behind(), cfg!(target_os = "linux"));
    assert_eq!(
        behind.start_unmapping_behind(),
        cfg!(target_os = "linux"),
        "idempotent"
    );
    assert!(!behind.start_readahead(), "no helper beside it");
    assert!(!behind.start_readahead_reading());
    assert_eq!(behind.readahead_trials(), (0, 0));
    let (a, ea) = drain(&mut plain);
    let (b2, eb) = drain(&mut ahead);
    let (r, er) = drain(&mut reading);
    let (d, ed) = drain(&mut behind);
    assert_eq!(a.len(), 6_000);
    assert_eq!(a, b2);
    assert_eq!(a, r);
    assert_eq!(a, d);
    assert!(ea.is_none() && eb.is_none() && er.is_none() && ed.is_none());

    for (i, stop_after) in [0, 1, 700, 3_000, 0, 1, 700, 3_000].into_iter().enumerate() {
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let mut cap = Capture::open(&p).unwrap();
            if i < 4 {
                cap.start_readahead();
            } else {
                cap.start_readahead_reading();
            }
            for _ in 0..stop_after {
                cap.next_frame().unwrap().unwrap();
            }
            drop(cap);
            tx.send(()).unwrap();
        });
        rx.recv_timeout(std::time::Duration::from_secs(30))
            .expect("dropping a capture with read-ahead hangs");
    }

    let mut mem = Capture::from_bytes(b.bytes.clone(), "mem").unwrap();
    assert!(!mem.start_readahead(), "only memory-mapped files");
    assert!(!mem.start_readahead_reading());
    assert!(!mem.start_unmapping_behind());
    mem.set_prefetch(Prefetch::Stream);
    let (m, _) = drain(&mut mem);
    assert_eq!(m, a);
    let mut stream = trickled(b.bytes[..1000].to_vec());
    assert!(!stream.start_readahead());
    assert!(!stream.start_unmapping_behind());
}

/// Streams hand out their buffer for other threads to read frames in place:
/// a held buffer is never written again (every frame taken from it keeps
/// its bytes), frames are those of a plain read, and buffers come back for
/// reuse once their holders let go.
#[test]
fn stream_buffers_are_shared_without_being_overwritten() {
    let mut b = PcapBuilder::new(false, false, 65535, 1);
    for i in 0..3_000u32 {
        let payload: Vec<u8> = (0..(i % 1_500)).map(|j| (i * 7 + j) as u8).collect();
        b.record(1_700_000_000 + i, i, &payload, i % 1_500);
    }
    let pcap = b.bytes;
    let (want, _) = drain(&mut Capture::from_bytes(pcap.clone(), "mem").unwrap());
    let cursor = |bytes: &Vec<u8>| {
        Capture::from_reader(Box::new(std::io::Cursor::new(bytes.clone())), "r").unwrap()
    };
    // Large reads put many frames in each buffer; a trickle (1 to 7 bytes a
    // read) moves on at nearly every frame, but must stay correct.
    for (mut cap, large_reads) in [(cursor(&pcap), true), (trickled(pcap.clone()), false)] {
        // Every block stays held, with each frame found in it.
        let mut held = Vec::new();
        let mut block = cap.current_block();
        let (mut stale, mut n) = (false, 0);
        loop {
            if stale {
                block = cap.current_block();
                stale = false;
            }
            let Some(f) = cap.next_frame() else { break };
            let f = f.unwrap();
            assert_eq!(f.data, &want[n].data[..]);
            match block.offset_of(f.data) {
                Some(off) => held.push((block.clone(), off, f.data.to_vec())),
                None => stale = true,
            }
            n += 1;
        }
        assert_eq!(n, want.len());
        for (blk, off, data) in &held {
            assert_eq!(&blk[*off..*off + data.len()], &data[..], "overwritten");
        }
        if large_reads {
            assert!(held.len() > n / 2, "{} of {n} found in place", held.len());
        }
    }
    // Holding only the newest block (as an engine's workers do), the reader
    // reuses buffers instead of allocating.
    let mut cap = cursor(&pcap);
    let mut block = cap.current_block();
    let mut stale = false;
    loop {
        if stale {
            block = cap.current_block();
        }
        let Some(f) = cap.next_frame() else { break };
        stale = block.offset_of(f.unwrap().data).is_none();
    }
    drop(block);
    assert!(cap.buffers_reused() > 0);
}

/// A path that is not a regular file (a named pipe, `/dev/stdin`, a shell's
/// `<(zcat x.pcap.gz)`) is read as a stream, not refused as empty.
#[test]
fn a_named_pipe_is_read_as_a_stream() {
    let bytes = three_records(false, false).bytes;
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fifo.pcap");
    let _ = std::fs::remove_file(&path);
    let made = std::process::Command::new("mkfifo").arg(&path).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: mkfifo is not available here");
        return;
    }
    let writer = {
        let (path, bytes) = (path.clone(), bytes.clone());
        std::thread::spawn(move || std::fs::write(path, bytes).unwrap())
    };
    let got = drain(&mut Capture::open(&path).unwrap());
    writer.join().unwrap();
    let want = drain(&mut Capture::from_bytes(bytes, "mem").unwrap());
    assert_eq!(got.0, want.0);
    assert!(got.1.is_none(), "{:?}", got.1);
    std::fs::remove_file(&path).unwrap();
}
