//! Per half-connection digests: bytes, gap bytes and SHA-256 of the
//! delivered stream, in the format shared with the peer harnesses:
//!
//! `SRC_IP SRC_PORT DST_IP DST_PORT BYTES GAPBYTES SHA256HEX`, one line per
//! direction of each connection with data or gaps, sorted bytewise.

use std::net::IpAddr;
use std::sync::mpsc::{channel, Receiver, Sender};

use sha2::{Digest, Sha256};
use weft_reasm::{ConnInfo, Context, Direction, ScatterGather, Segment, Stream, StreamFactory};
use weft_wire::Dir;

/// One finished half-connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HalfDigest {
    /// Sender address and port.
    pub src: (IpAddr, u16),
    /// Receiver address and port.
    pub dst: (IpAddr, u16),
    /// Bytes delivered.
    pub bytes: u64,
    /// Bytes skipped as missing.
    pub gap_bytes: u64,
    /// SHA-256 of the delivered bytes, lowercase hex.
    pub sha256: String,
}

impl HalfDigest {
    /// The digest line (without newline).
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {}",
            self.src.0, self.src.1, self.dst.0, self.dst.1, self.bytes, self.gap_bytes, self.sha256
        )
    }
}

/// Hashes both directions of a connection as they are delivered and
/// sends their digests to its [`Digests`] collector when complete.
#[derive(Debug)]
pub struct DigestStream {
    info: ConnInfo,
    halves: [Sha256; 2],
    bytes: [u64; 2],
    gaps: [u64; 2],
    sink: Sender<HalfDigest>,
}

fn ix(d: Direction) -> usize {
    match d {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

impl Stream for DigestStream {
    fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
        let info = sg.info();
        let k = ix(info.dir);
        self.gaps[k] += info.skip;
        for c in sg.chunks() {
            self.halves[k].update(c);
        }
        self.bytes[k] += sg.len() as u64;
    }

    fn complete(&mut self, _: &Context) -> bool {
        for d in [Direction::ClientToServer, Direction::ServerToClient] {
            let k = ix(d);
            if self.bytes[k] == 0 && self.gaps[k] == 0 {
                continue;
            }
            let wire: Dir = self.info.wire_dir(d);
            let sha = std::mem::take(&mut self.halves[k]).finalize();
            // The collector outlives every stream unless the run is torn down.
            let _ = self.sink.send(HalfDigest {
                src: self.info.key.src(wire),
                dst: self.info.key.dst(wire),
                bytes: self.bytes[k],
                gap_bytes: self.gaps[k],
                sha256: hex(&sha),
            });
        }
        // Linger closed: stray segments after FIN or RST are absorbed (and
        // counted) instead of starting a midstream connection.
        false
    }
}

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

/// A stream factory computing digests; completed half-connections arrive
/// on a channel, so factories of several workers can share one collector.
#[derive(Debug, Clone)]
pub struct Digests {
    sink: Sender<HalfDigest>,
}

impl Digests {
    /// A factory and the receiving end of its collector.
    pub fn new() -> (Digests, Receiver<HalfDigest>) {
        let (sink, rx) = channel();
        (Digests { sink }, rx)
    }

    /// Another factory reporting to the same collector.
    pub fn with_sink(sink: Sender<HalfDigest>) -> Digests {
        Digests { sink }
    }
}

impl StreamFactory for Digests {
    type Stream = DigestStream;
    fn new_stream(&mut self, conn: &ConnInfo, _: &Segment<'_>, _: &Context) -> DigestStream {
        DigestStream {
            info: *conn,
            halves: [Sha256::new(), Sha256::new()],
            bytes: [0; 2],
            gaps: [0; 2],
            sink: self.sink.clone(),
        }
    }
}

/// Sorted digest lines of `digests`.
pub fn lines(digests: &[HalfDigest]) -> Vec<String> {
    let mut v: Vec<String> = digests.iter().map(HalfDigest::line).collect();
    v.sort_unstable();
    v
}
