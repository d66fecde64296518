//! What to generate: [`GenConfig`] and the hostile modes.

use std::fmt;
use std::str::FromStr;

/// A hostile traffic shape (`--hostile`). Each applies to a fraction
/// ([`GenConfig::hostile_fraction`]) of the connections; the rest are
/// ordinary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// Every message of two segments or more carries one conflicting
    /// retransmission: segment X, sent out of order ahead of a hole (the
    /// segment before it, delayed), is re-sent with *different* bytes
    /// before the hole is filled. First-wins keeps the first copy
    /// ([`Truth::lines`](crate::Truth::lines)), last-wins the second
    /// ([`Truth::last_lines`](crate::Truth::last_lines)).
    Conflict,
    /// Every message of two segments or more sends one of them again,
    /// with *different* bytes, after the segment that follows it: the
    /// receiver took the first copy (it, and every segment of the message
    /// before the second copy, kept from reordering, loss and
    /// duplication), so both truths keep it. What an injected segment
    /// raced ahead of the genuine one looks like, and a decoy sent before
    /// the real bytes: only a reassembler that compares retransmissions
    /// with what it delivered sees the second copy differ.
    Rexmit,
    /// The client's first data segment is withheld forever (neither in the
    /// capture nor ever acknowledged), then
    /// [`GenConfig::flood_segments`] small segments follow, all out of
    /// order: the memory-cap attack. A receiver delivers nothing on that
    /// direction while the hole lasts, so it has no truth line; a
    /// reassembler that flushes past the hole at the close (weft does,
    /// reporting the hole) prints a line of its own for it, which the
    /// truth does not check.
    OooFlood,
    /// SYNs from random sources (half of them answered by a SYN-ACK), no
    /// handshake completed, no data.
    SynFlood,
    /// Data in 1-byte segments.
    TinySegments,
    /// Window scale 14 and every window at its maximum (1 GiB); in each
    /// message the last segment the receiver's window admits is sent
    /// first, up to a whole message ahead (a SYN-ACK's window is never
    /// scaled, so a first request's far segment stays within 64 KiB).
    HugeWindow,
}

impl Hostile {
    /// The command-line name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            Hostile::Conflict => "conflict",
            Hostile::Rexmit => "rexmit",
            Hostile::OooFlood => "ooo-flood",
            Hostile::SynFlood => "syn-flood",
            Hostile::TinySegments => "tiny-segments",
            Hostile::HugeWindow => "huge-window",
        }
    }
}

impl fmt::Display for Hostile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown hostile mode name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownHostile;

impl fmt::Display for UnknownHostile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "unknown hostile mode (conflict, rexmit, ooo-flood, syn-flood, tiny-segments, huge-window)",
        )
    }
}

impl std::error::Error for UnknownHostile {}

impl FromStr for Hostile {
    type Err = UnknownHostile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "conflict" => Hostile::Conflict,
            "rexmit" => Hostile::Rexmit,
            "ooo-flood" => Hostile::OooFlood,
            "syn-flood" => Hostile::SynFlood,
            "tiny-segments" => Hostile::TinySegments,
            "huge-window" => Hostile::HugeWindow,
            _ => return Err(UnknownHostile),
        })
    }
}

/// Everything that shapes a trace. The same configuration (seed included)
/// always gives byte-identical output.
///
/// Fractions are probabilities in `0.0..=1.0`: per connection for
/// `rst_fraction`, `ipv6_fraction`, `vlan_fraction`, `hostile_fraction`;
/// per direction for `wrap_fraction`; per data segment for the
/// impairments `reorder`, `duplicate`, `overlap`, `loss`.
///
/// Plain data: `Send + Sync`, so one configuration can drive generators on
/// several threads.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Connections in the trace.
    pub conns: u64,
    /// Connections open at once (their packets interleave).
    pub concurrent: usize,
    /// Smallest message (one request or one response), in bytes.
    pub min_bytes: u32,
    /// Largest message, in bytes.
    pub max_bytes: u32,
    /// Each connection makes 1 to `exchanges` request/response exchanges.
    pub exchanges: u32,
    /// Connections closed by a RST instead of FINs from both sides.
    pub rst_fraction: f64,
    /// Ordinary connections closed by FINs whose first FIN rides on the
    /// last segment of a final message from the closing side (as HTTP/1.0
    /// servers send it), impaired like any message: the FIN may come
    /// ahead of a hole, twice, or be lost with its data (then only the
    /// peer's acknowledgment tells where the stream ended). 0 draws nothing,
    /// so traces made before this setting stay the same.
    pub fin_data: f64,
    /// Ordinary connections whose SYN carries the first bytes of the
    /// first request (TCP Fast Open, the server taking them: its SYN-ACK
    /// acknowledges them). 0 draws nothing.
    pub syn_data: f64,
    /// Every segment carries the TCP timestamp option (RFC 7323): TSval
    /// from its sender's clock, one tick a packet, in the order it was
    /// sent (a reordered segment keeps the older value it left with, a
    /// network duplicate its original's), TSecr the peer's clock. A PAWS
    /// check then refuses no byte of the truth through reordering, loss,
    /// duplicates and sequence wrap (it may refuse duplicates that come
    /// after newer segments: their bytes came first). Not with
    /// overlapping retransmissions or the conflict mode: a retransmission
    /// sent after a segment it overtakes would make a receiver drop that
    /// segment, and the trace has no second retransmission for it. `false`
    /// draws nothing, so traces made before this setting stay the same.
    pub timestamps: bool,
    /// Connections over IPv6 instead of IPv4.
    pub ipv6_fraction: f64,
    /// When non-zero, each connection takes its 4-tuple from a pool of this
    /// many, so 4-tuples are reused by later connections (never by two open
    /// at once: a clash moves the client port).
    pub tuple_pool: u32,
    /// Connections carrying an 802.1Q VLAN tag.
    pub vlan_fraction: f64,
    /// Connections whose frames travel in a tunnel over IPv4 and UDP:
    /// VXLAN, Geneve or GTP-U, one of the three per connection. 0 draws
    /// nothing, so traces made without it are unchanged.
    pub tunnel_fraction: f64,
    /// When non-zero, each VXLAN or Geneve connection draws its network
    /// (VNI) from 1 to this, and a 4-tuple may be open in two networks at
    /// once (with [`tuple_pool`](Self::tuple_pool) they meet often): a
    /// reassembler must key flows by network to give the truth. 0 draws
    /// nothing: every tunnel is network 42, as before.
    pub networks: u32,
    /// Directions whose ISN lies within 8 KiB below 2^32, so that data
    /// crosses the sequence wrap.
    pub wrap_fraction: f64,
    /// Payload bytes per full segment.
    pub mss: u16,
    /// Mean gap between consecutive packets of the trace, in nanoseconds
    /// (each gap is uniform in `gap_ns/2 ..= gap_ns*3/2`).
    pub gap_ns: u64,
    /// Timestamp of the first packet, nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// Each packet's timestamp moves by up to this many nanoseconds either
    /// way, so timestamps go back now and then, as in a capture merged
    /// from several interfaces (the packets keep their order). 0 draws
    /// nothing, so traces made before this setting stay the same.
    pub jitter_ns: u64,
    /// Nanosecond pcap timestamps instead of microseconds.
    pub nanos: bool,
    /// Data segments displaced later among their message's segments.
    pub reorder: f64,
    /// How far (in segments, at least 1) a reordered segment moves.
    pub reorder_window: u32,
    /// Data segments followed by an exact duplicate.
    pub duplicate: f64,
    /// Data segments retransmitted as a range overlapping both neighbours
    /// (up to two segments long), with the same bytes.
    pub overlap: f64,
    /// Data segments sent with URG and an urgent pointer anywhere from 0
    /// to half a segment past their end. The truth keeps urgent bytes in
    /// the stream (a receiver with `SO_OOBINLINE`).
    pub urgent: f64,
    /// Data segments missing from the capture although the receiver got
    /// and acknowledged them (capture loss), the last of a message too
    /// (then only the acknowledgment, the next message, a FIN or a RST
    /// tells where the stream went on).
    pub loss: f64,
    /// Hostile traffic, if any.
    pub hostile: Option<Hostile>,
    /// Fraction of the connections that are hostile when `hostile` is set.
    pub hostile_fraction: f64,
    /// Out-of-order segments per [`Hostile::OooFlood`] connection.
    pub flood_segments: u64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 1,
            conns: 100,
            concurrent: 10,
            min_bytes: 1,
            max_bytes: 10_000,
            exchanges: 3,
            rst_fraction: 0.1,
            fin_data: 0.0,
            syn_data: 0.0,
            timestamps: false,
            ipv6_fraction: 0.1,
            tuple_pool: 0,
            vlan_fraction: 0.1,
            tunnel_fraction: 0.0,
            networks: 0,
            wrap_fraction: 0.1,
            mss: 1448,
            gap_ns: 5_000,
            start_ns: 1_700_000_000_000_000_000,
            jitter_ns: 0,
            nanos: false,
            reorder: 0.0,
            reorder_window: 4,
            duplicate: 0.0,
            overlap: 0.0,
            urgent: 0.0,
            loss: 0.0,
            hostile: None,
            hostile_fraction: 1.0,
            flood_segments: 100_000,
        }
    }
}

/// A configuration value out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub &'static str);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl GenConfig {
    /// Checks the ranges [`generate`](crate::generate) relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.concurrent == 0 {
            return Err(ConfigError("concurrent must be at least 1"));
        }
        if self.tuple_pool > 0 && self.concurrent > 60_000 {
            return Err(ConfigError("tuple-pool needs concurrent at most 60,000"));
        }
        if self.mss == 0 || self.mss > 32_000 {
            return Err(ConfigError(
                "mss must be in 1..=32,000 (an overlapping retransmission spans two segments in one packet)",
            ));
        }
        if self.min_bytes > self.max_bytes {
            return Err(ConfigError("min-bytes exceeds max-bytes"));
        }
        if self.max_bytes > 1 << 30 {
            return Err(ConfigError("max-bytes above 1 GiB"));
        }
        if self.exchanges == 0 || self.exchanges > 1 << 20 {
            return Err(ConfigError("exchanges must be in 1..=2^20"));
        }
        if u64::from(self.exchanges) * u64::from(self.max_bytes) > 1 << 31 {
            return Err(ConfigError(
                "exchanges * max-bytes above 2^31 (half the sequence space)",
            ));
        }
        if self.reorder_window == 0 {
            return Err(ConfigError("reorder-window must be at least 1"));
        }
        if self.jitter_ns > 3_600_000_000_000 {
            return Err(ConfigError("jitter above an hour"));
        }
        if self.gap_ns > 3_600_000_000_000 {
            // The clock must stay far from wrapping over a whole trace.
            return Err(ConfigError("gap above an hour"));
        }
        if self.timestamps && (self.overlap > 0.0 || self.hostile == Some(Hostile::Conflict)) {
            return Err(ConfigError(
                "timestamps do not go with overlapping retransmissions or the conflict mode (a receiver checking them would drop segments the truth counts)",
            ));
        }
        if self.flood_segments > 50_000_000 {
            return Err(ConfigError("flood-segments above 50,000,000"));
        }
        let fractions = [
            self.rst_fraction,
            self.fin_data,
            self.syn_data,
            self.ipv6_fraction,
            self.vlan_fraction,
            self.tunnel_fraction,
            self.wrap_fraction,
            self.reorder,
            self.duplicate,
            self.overlap,
            self.loss,
            self.hostile_fraction,
        ];
        if fractions.iter().any(|f| !(0.0..=1.0).contains(f)) {
            return Err(ConfigError("fractions must lie in 0..=1"));
        }
        Ok(())
    }
}
