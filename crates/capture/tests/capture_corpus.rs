//! The real captures of the shared corpus: every file opens and yields the
//! number of records MANIFEST.tsv lists; mapped, buffered and trickled reads
//! agree; an independent parser (pcap-parser) agrees on counts and lengths.

mod common;

use std::fs::{self, File};
use std::path::Path;

use common::{drain, Trickle};
use pcap_parser::pcapng::Block;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};
use weft_capture::{Capture, ErrorKind, Format};

/// The capture whose last record is cut short.
const DAMAGED: &str = "pgsql-5000-results-large.pcap";

/// (file, format, packets) from MANIFEST.tsv.
fn manifest(dir: &Path) -> Vec<(String, String, u64)> {
    let text = fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (file, format, packets) = (col("file"), col("format"), col("packets"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[file].to_string(),
                f[format].to_string(),
                f[packets].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_capture_yields_its_manifest_count() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let entries = manifest(&dir);
    assert!(
        entries.len() >= 80,
        "manifest lists {} captures",
        entries.len()
    );
    let mut failures = Vec::new();
    for (file, format, packets) in &entries {
        let path = dir.join(file);
        let mut cap = Capture::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(cap.is_mapped());
        assert_eq!(cap.format() == Format::PcapNg, format == "pcapng", "{file}");
        let (frames, err) = drain(&mut cap);
        let n = frames.len() as u64;
        let ok = match (file.as_str(), &err) {
            (DAMAGED, Some(e)) => {
                let cut = matches!(
                    e.kind,
                    ErrorKind::TruncatedRecordHeader { .. } | ErrorKind::TruncatedRecordData { .. }
                );
                eprintln!("{file}: {n} records, then: {e}");
                cut && e.offset == cap.bytes_read() && n == *packets
            }
            (_, None) => n == *packets && Some(cap.bytes_read()) == cap.total_len(),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{file}: {n} records (manifest {packets}), error {err:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn damaged_capture_reports_its_cut() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let path = dir.join(DAMAGED);
    let len = fs::metadata(&path).unwrap().len();
    let (frames, err) = drain(&mut Capture::open(&path).unwrap());
    let err = err.unwrap();
    let last = frames.last().unwrap();
    let end_of_last = last.offset + 16 + last.data.len() as u64;
    assert_eq!(err.offset, end_of_last);
    let left = (len - end_of_last) as u32;
    assert_eq!(
        err.kind,
        ErrorKind::TruncatedRecordHeader {
            needed: 16,
            available: left
        }
    );
    assert!(err.to_string().contains(DAMAGED));
}

#[test]
fn multi_interface_pcapng() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let mut cap =
        Capture::open(dir.join("pcapng-multi-interface-sll-ether-truncated.pcapng")).unwrap();
    let (frames, err) = drain(&mut cap);
    assert_eq!((frames.len(), err), (159, None));
    let mut links: Vec<u32> = frames.iter().map(|f| f.link_type).collect();
    links.sort_unstable();
    links.dedup();
    assert_eq!(links, [1, 113]);
    assert!(
        frames.iter().any(|f| (f.data.len() as u32) < f.wire_len),
        "snaplen-truncated frames"
    );
    assert!(frames.windows(2).all(|w| w[0].offset < w[1].offset));
}

#[test]
fn mapped_buffered_and_trickled_reads_agree() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    for (file, _, _) in manifest(&dir) {
        let path = dir.join(&file);
        let mapped = drain(&mut Capture::open(&path).unwrap());
        let buffered = drain(&mut Capture::open_buffered(&path).unwrap());
        assert!(
            mapped == buffered,
            "{file}: mapped and buffered reads differ"
        );
        if fs::metadata(&path).unwrap().len() < 64 * 1024 {
            let stream = Box::new(Trickle::new(fs::read(&path).unwrap()));
            let trickled =
                drain(&mut Capture::from_reader(stream, path.display().to_string()).unwrap());
            assert!(mapped == trickled, "{file}: trickled read differs");
        }
    }
}

/// Packets and captured bytes according to pcap-parser.
fn oracle(path: &Path) -> (u64, u64) {
    let mut reader = create_reader(1 << 20, File::open(path).unwrap()).unwrap();
    let (mut n, mut bytes, mut stalls) = (0u64, 0u64, 0);
    loop {
        match reader.next() {
            Ok((used, block)) => {
                stalls = 0;
                let caplen = match block {
                    PcapBlockOwned::Legacy(b) => Some(b.caplen),
                    PcapBlockOwned::NG(Block::EnhancedPacket(b)) => Some(b.caplen),
                    _ => None,
                };
                if let Some(c) = caplen {
                    n += 1;
                    bytes += u64::from(c);
                }
                reader.consume(used);
            }
            Err(PcapError::Incomplete(_)) if stalls < 2 => {
                stalls += 1;
                if reader.refill().is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    (n, bytes)
}

#[test]
fn independent_parser_agrees() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    for (file, _, _) in manifest(&dir) {
        let path = dir.join(&file);
        let (frames, _) = drain(&mut Capture::open(&path).unwrap());
        let ours = (
            frames.len() as u64,
            frames.iter().map(|f| f.data.len() as u64).sum(),
        );
        assert_eq!(ours, oracle(&path), "{file}: (frames, captured bytes)");
    }
}
