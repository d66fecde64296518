//! Shared helpers for weft-capture's integration tests: the corpus lookup,
//! in-memory capture builders and a reader that returns short reads.
#![allow(dead_code)]

use std::env;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use weft_capture::{Capture, CaptureError};

/// The real-capture corpus: `$WEFT_CORPUS`, else `shared/corpus` next to the
/// workspace. `None` (after a visible SKIPPED line on stderr) when absent,
/// unless `WEFT_REQUIRE_CORPUS=1`, which turns absence into a panic.
pub fn corpus_dir() -> Option<PathBuf> {
    let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
    let dir = env::var_os("WEFT_CORPUS").map_or_else(|| PathBuf::from(default), PathBuf::from);
    if dir.join("MANIFEST.tsv").is_file() {
        return Some(dir);
    }
    if env::var("WEFT_REQUIRE_CORPUS").as_deref() == Ok("1") {
        panic!(
            "corpus not found at {} (WEFT_REQUIRE_CORPUS=1)",
            dir.display()
        );
    }
    // Straight to the process's stderr: libtest captures `eprintln!`, and a
    // skipped corpus must be visible without `--nocapture`.
    let line = format!(
        "SKIPPED: corpus not found at {} (set WEFT_CORPUS)\n",
        dir.display()
    );
    let _ = io::stderr().write_all(line.as_bytes());
    None
}

/// A frame copied out of its capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    pub data: Vec<u8>,
    pub wire_len: u32,
    pub ts_nanos: u64,
    pub link_type: u32,
    pub interface: u32,
    pub offset: u64,
}

/// Reads a capture to the end: its frames and the error that ended it, if any.
pub fn drain(cap: &mut Capture) -> (Vec<Owned>, Option<CaptureError>) {
    let mut frames = Vec::new();
    while let Some(next) = cap.next_frame() {
        match next {
            Ok(f) => frames.push(Owned {
                data: f.data.to_vec(),
                wire_len: f.wire_len,
                ts_nanos: f.ts_nanos,
                link_type: f.link_type,
                interface: f.interface,
                offset: f.offset,
            }),
            Err(e) => {
                assert!(cap.next_frame().is_none(), "nothing may follow an error");
                return (frames, Some(e));
            }
        }
    }
    (frames, None)
}

/// A reader returning between 1 and 7 bytes per read.
pub struct Trickle {
    inner: io::Cursor<Vec<u8>>,
    step: usize,
}

impl Trickle {
    pub fn new(bytes: Vec<u8>) -> Trickle {
        Trickle {
            inner: io::Cursor::new(bytes),
            step: 0,
        }
    }
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.step = self.step % 7 + 1;
        let n = buf.len().min(self.step);
        self.inner.read(&mut buf[..n])
    }
}

/// Builds a classic pcap file.
pub struct PcapBuilder {
    pub big: bool,
    pub nanos: bool,
    pub bytes: Vec<u8>,
}

impl PcapBuilder {
    pub fn new(nanos: bool, big: bool, snaplen: u32, link_word: u32) -> PcapBuilder {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut b = PcapBuilder {
            big,
            nanos,
            bytes: Vec::new(),
        };
        b.u32(magic);
        b.u16(2);
        b.u16(4);
        b.u32(0);
        b.u32(0);
        b.u32(snaplen);
        b.u32(link_word);
        b
    }

    pub fn u16(&mut self, v: u16) {
        let a = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&a);
    }

    pub fn u32(&mut self, v: u32) {
        let a = if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&a);
    }

    /// A record header claiming `caplen` bytes, without data.
    pub fn header(&mut self, secs: u32, frac: u32, caplen: u32, wire_len: u32) -> &mut Self {
        for v in [secs, frac, caplen, wire_len] {
            self.u32(v);
        }
        self
    }

    /// A complete record.
    pub fn record(&mut self, secs: u32, frac: u32, data: &[u8], wire_len: u32) -> &mut Self {
        self.header(secs, frac, data.len() as u32, wire_len);
        self.bytes.extend_from_slice(data);
        self
    }
}

/// Builds a pcapng file, one section at a time.
pub struct NgBuilder {
    pub big: bool,
    pub bytes: Vec<u8>,
}

impl NgBuilder {
    pub fn new() -> NgBuilder {
        NgBuilder {
            big: false,
            bytes: Vec::new(),
        }
    }

    fn put16(&self, out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }

    fn put32(&self, out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }

    /// Options list (code, value) with padding and the end marker.
    pub fn options(&self, opts: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (code, value) in opts {
            self.put16(&mut out, *code);
            self.put16(&mut out, value.len() as u16);
            out.extend_from_slice(value);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        if !opts.is_empty() {
            out.extend_from_slice(&[0; 4]);
        }
        out
    }

    /// Appends a block with `body` padded to 4 bytes; returns its offset.
    pub fn block(&mut self, btype: u32, body: &[u8]) -> u64 {
        let at = self.bytes.len() as u64;
        let len = 12 + body.len().next_multiple_of(4) as u32;
        let mut out = Vec::new();
        self.put32(&mut out, btype);
        self.put32(&mut out, len);
        out.extend_from_slice(body);
        out.resize(out.len().next_multiple_of(4), 0);
        self.put32(&mut out, len);
        self.bytes.extend_from_slice(&out);
        at
    }

    /// Starts a section in the given byte order.
    pub fn section(&mut self, big: bool) -> &mut Self {
        self.big = big;
        let mut body = Vec::new();
        self.put32(&mut body, 0x1a2b_3c4d);
        self.put16(&mut body, 1);
        self.put16(&mut body, 0);
        body.extend_from_slice(&[0xff; 8]); // section length: unknown
        let opts = self.options(&[(1, b"weft test section")]);
        body.extend_from_slice(&opts);
        self.block(0x0a0d_0d0a, &body);
        self
    }

    pub fn interface(&mut self, link: u16, snaplen: u32, opts: &[(u16, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        self.put16(&mut body, link);
        self.put16(&mut body, 0);
        self.put32(&mut body, snaplen);
        let opts = self.options(opts);
        body.extend_from_slice(&opts);
        self.block(1, &body);
        self
    }

    /// An enhanced packet block; returns its offset.
    pub fn epb(
        &mut self,
        iface: u32,
        ticks: u64,
        data: &[u8],
        wire: u32,
        opts: &[(u16, &[u8])],
    ) -> u64 {
        let mut body = Vec::new();
        for v in [
            iface,
            (ticks >> 32) as u32,
            ticks as u32,
            data.len() as u32,
            wire,
        ] {
            self.put32(&mut body, v);
        }
        body.extend_from_slice(data);
        body.resize(body.len().next_multiple_of(4), 0);
        let opts = self.options(opts);
        body.extend_from_slice(&opts);
        self.block(6, &body)
    }

    /// A simple packet block; returns its offset.
    pub fn spb(&mut self, data: &[u8], wire: u32) -> u64 {
        let mut body = Vec::new();
        self.put32(&mut body, wire);
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    /// An obsolete packet block (type 2); returns its offset.
    pub fn pb(&mut self, iface: u16, ticks: u64, data: &[u8], wire: u32) -> u64 {
        let mut body = Vec::new();
        self.put16(&mut body, iface);
        self.put16(&mut body, 0);
        for v in [(ticks >> 32) as u32, ticks as u32, data.len() as u32, wire] {
            self.put32(&mut body, v);
        }
        body.extend_from_slice(data);
        self.block(2, &body)
    }
}
