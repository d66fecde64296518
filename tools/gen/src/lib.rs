//! weft-gen: synthetic TCP traffic with exact ground truth, for weft's
//! tests and benchmarks.
//!
//! [`generate`] writes a classic pcap (Ethernet, optional 802.1Q tags,
//! IPv4 with valid header checksums or IPv6, TCP with valid checksums) and
//! returns the [`Truth`]: one digest line per half-connection with data,
//! in the format of weft-replay's `--digest`
//! (`SRC_IP SRC_PORT DST_IP DST_PORT BYTES GAPBYTES SHA256HEX`, sorted by
//! plain byte order, IPv6 in RFC 5952 form).
//!
//! How a trace is made:
//!
//! - Connections open [`GenConfig::concurrent`] at a time; each packet of
//!   the trace comes from one open connection picked at random, so their
//!   packets interleave. Each connection makes a 3-way handshake, 1 to
//!   [`GenConfig::exchanges`] request/response exchanges, then closes with
//!   FINs from both sides or one RST.
//! - A connection is planned one message at a time, and payload bytes are
//!   a pure function of (direction key, offset), so memory is bounded by
//!   the open connections, not by the trace: multi-gigabyte traces stream
//!   through a `BufWriter`.
//! - Impairments (reordering, duplicates, overlapping retransmissions,
//!   capture loss) and the [`Hostile`] modes change the capture order of
//!   data segments; the receiver's ACKs follow the data it holds (see the
//!   `conn::message` module), so they stay plausible.
//! - Every random choice comes from a seeded, hand-written PRNG
//!   ([`rng::Rng`]): the same [`GenConfig`] gives byte-identical output.
//!
//! Truth is exact by construction: BYTES counts the stream's bytes present
//! in the capture, GAPBYTES those of segments the capture lost (the
//! receiver acknowledged them), and the SHA-256 covers the present bytes
//! in sequence order. With [`Hostile::Conflict`], [`Truth::lines`] is what
//! a first-wins overlap policy delivers and [`Truth::last_lines`] what
//! last-wins delivers.
//!
//! ```
//! use weft_gen::{generate, GenConfig};
//!
//! let cfg = GenConfig { conns: 4, max_bytes: 3000, ..GenConfig::default() };
//! let mut pcap = Vec::new();
//! let truth = generate(&cfg, &mut pcap).unwrap();
//! assert_eq!(truth.summary().connections, 4);
//! assert_eq!(truth.summary().pcap_bytes, pcap.len() as u64);
//! for line in truth.lines() {
//!     assert_eq!(line.split(' ').count(), 7);
//! }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod conn;
pub mod frame;
pub mod rng;

use std::collections::HashSet;
use std::fmt;
use std::io::{self, BufWriter, Write};

pub use config::{ConfigError, GenConfig, Hostile, UnknownHostile};

use conn::Conn;
use frame::{encode, Endpoint, PcapWriter, Wire};
use rng::Rng;

/// Counts of what a trace holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Connections generated.
    pub connections: u64,
    /// Packets written.
    pub packets: u64,
    /// TCP payload bytes written (copies and retransmissions included).
    pub payload_bytes: u64,
    /// Bytes of the pcap, file header included.
    pub pcap_bytes: u64,
    /// Stream bytes lost from the capture (the sum of GAPBYTES).
    pub lost_bytes: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} connections, {} packets, {} payload bytes, {} pcap bytes, {} bytes lost",
            self.connections, self.packets, self.payload_bytes, self.pcap_bytes, self.lost_bytes
        )
    }
}

/// The ground truth of a trace: sorted digest lines and a [`Summary`].
/// Plain owned data (`Send + Sync`).
#[derive(Debug, Clone, Default)]
pub struct Truth {
    lines: Vec<String>,
    /// Last-wins lines, only when they can differ (conflict mode).
    last: Option<Vec<String>>,
    summary: Summary,
}

impl Truth {
    /// Digest lines (first-wins overlap policy), sorted, without newlines.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Digest lines under a last-wins overlap policy; the same as
    /// [`lines`](Self::lines) unless the trace has conflicting overlaps.
    pub fn last_lines(&self) -> &[String] {
        self.last.as_deref().unwrap_or(&self.lines)
    }

    /// What the trace holds.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Writes [`lines`](Self::lines), one per line.
    pub fn write_to<W: Write>(&self, w: W) -> io::Result<()> {
        write_lines(&self.lines, w)
    }

    /// Writes [`last_lines`](Self::last_lines), one per line.
    pub fn write_last_to<W: Write>(&self, w: W) -> io::Result<()> {
        write_lines(self.last_lines(), w)
    }
}

fn write_lines<W: Write>(lines: &[String], w: W) -> io::Result<()> {
    let mut w = BufWriter::new(w);
    for l in lines {
        w.write_all(l.as_bytes())?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Generates the trace of `cfg` as a pcap stream into `pcap_out` (buffered
/// internally) and returns its truth.
///
/// Errors: `InvalidInput` for a configuration that fails
/// [`GenConfig::validate`], or the writer's error.
pub fn generate<W: Write>(cfg: &GenConfig, pcap_out: W) -> io::Result<Truth> {
    cfg.validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut pcap = PcapWriter::new(BufWriter::with_capacity(1 << 20, pcap_out), cfg.nanos)?;
    let mut rng = Rng::new(cfg.seed);
    let mut active: Vec<Conn> = Vec::with_capacity(cfg.concurrent.min(1 << 20));
    // 4-tuples of the open connections, by network: never two at once.
    let mut open: HashSet<(Endpoint, Endpoint, u32)> = HashSet::new();
    let mut started = 0u64;
    let mut clock = cfg.start_ns;
    let (mut frame, mut scratch) = (Vec::with_capacity(2048), Vec::new());
    let mut pairs = Vec::new();
    let mut summary = Summary::default();
    loop {
        while active.len() < cfg.concurrent && started < cfg.conns {
            let mut c = Conn::new(cfg, rng.next_u64());
            while !open.insert((c.client, c.server, c.network)) {
                c.client.port = c.client.port.checked_add(1).unwrap_or(1024);
            }
            active.push(c);
            started += 1;
        }
        if active.is_empty() {
            break;
        }
        let i = rng.below(active.len() as u64) as usize;
        let c = &mut active[i];
        let Some(p) = c.next_packet(cfg, &mut scratch) else {
            let c = active.swap_remove(i);
            open.remove(&(c.client, c.server, c.network));
            c.truth_lines(&mut pairs);
            continue;
        };
        let (src, dst) = if p.from_client {
            (&c.client, &c.server)
        } else {
            (&c.server, &c.client)
        };
        let (src, dst) = (*src, *dst);
        let wire = Wire {
            src: &src,
            dst: &dst,
            vlan: c.vlan,
            tunnel: c.tunnel,
            vni: c.vni(),
            ip_id: c.next_ip_id(p.from_client),
            key: c.key(p.from_client),
        };
        encode(&mut frame, &p, &wire);
        clock += rng.range(cfg.gap_ns / 2, cfg.gap_ns + cfg.gap_ns / 2);
        let ts = match cfg.jitter_ns {
            0 => clock,
            j => (clock + rng.below(2 * j + 1)).saturating_sub(j),
        };
        pcap.record(ts, &frame)?;
        summary.packets += 1;
        summary.payload_bytes += u64::from(p.len);
    }
    summary.connections = started;
    summary.pcap_bytes = pcap.bytes();
    pcap.finish()?;
    Ok(truth_from(
        pairs,
        summary,
        cfg.hostile == Some(Hostile::Conflict),
    ))
}

fn truth_from(pairs: Vec<(String, String)>, mut summary: Summary, conflict: bool) -> Truth {
    summary.lost_bytes = pairs
        .iter()
        .map(|(l, _)| {
            l.split(' ')
                .nth(5)
                .and_then(|g| g.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    let (mut lines, mut last): (Vec<String>, Vec<String>) = pairs.into_iter().unzip();
    lines.sort_unstable();
    let last = conflict.then(|| {
        last.sort_unstable();
        last
    });
    Truth {
        lines,
        last,
        summary,
    }
}
