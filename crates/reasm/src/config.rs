//! Reassembler configuration.

use weft_wire::NetTable;

use crate::policy::{OverlapPolicy, UrgentPolicy};

/// Every tunable of a [`Reassembler`](crate::Reassembler).
///
/// `Config::default()` is what a passive IDS usually wants: midstream pickup on,
/// first-copy-wins overlaps, holes the receiver acknowledged skipped without
/// waiting for a timeout, bounded memory. Plain data: `Send + Sync`.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Start streams that were not seen to open with a SYN (default `true`,
    /// as analysts expect from capture tools). When `false`, payload of a
    /// connection without a handshake is dropped and counted
    /// ([`DropReason::NoHandshake`](crate::DropReason::NoHandshake)).
    pub midstream: bool,
    /// Which copy of overlapping out-of-order data is kept, where
    /// `overlap_by_host` names no policy for the receiving host.
    pub overlap_policy: OverlapPolicy,
    /// The overlap policy of each receiving host, by its address (the
    /// longest matching network's): a connection's data is resolved as
    /// the host it goes to resolves it, each direction by its own
    /// receiver, chosen when the connection starts. Empty by default.
    pub overlap_by_host: NetTable<OverlapPolicy>,
    /// Whether the byte an urgent pointer marks stays in the stream
    /// (default [`UrgentPolicy::Inline`]) or is taken out as the
    /// receiving socket takes it ([`UrgentPolicy::OutOfBand`]).
    pub urgent: UrgentPolicy,
    /// When the peer's ACK covers bytes that were never captured, they were
    /// lost by the capture and will not come: skip them once the sender's
    /// next segment does not fill them (one segment of grace, for a capture
    /// that shows an ACK before its data, renewed while each segment fills
    /// more of the hole from its front), or at once when the ACK covers
    /// the sender's FIN, instead of holding what follows until a timeout;
    /// and count a lost tail at the close (default `true`).
    pub skip_acked_holes: bool,
    /// Pages that all connections together may hold (`0`: no limit).
    pub max_pages: usize,
    /// Pages one connection may hold, both directions together (`0`: no
    /// limit). Over it, a connection first packs runs of contiguous
    /// pieces into fewer pages (under the first- and last-copy overlap
    /// policies, which read no segment bounds); then one whose pages are
    /// mostly full flushes its oldest run past its hole, and one whose
    /// pages are less than a quarter full (small segments with holes
    /// between them, a page each) prunes its farthest out-of-order data
    /// instead and keeps the hole open
    /// ([`DropReason::Pruned`](crate::DropReason::Pruned)).
    pub max_pages_per_conn: usize,
    /// Bytes of buffered and kept data (pages × page size + the memory
    /// holding bytes kept by handlers) above which the oldest buffered data
    /// is forced out (`0`: no limit). Below one page (2 KiB) nothing out of
    /// order can wait: every such segment forces out what waits, or is
    /// dropped as over the limit. A handler's keep that would take the
    /// total past it keeps nothing, as one over
    /// [`max_kept_bytes`](Self::max_kept_bytes) does.
    pub memcap: usize,
    /// Most bytes a handler may keep in one direction with
    /// [`ScatterGather::keep_from`](crate::ScatterGather::keep_from)
    /// (`0`: no limit). A keep of more keeps nothing (the next delivery's
    /// `lengths` show no kept bytes) and is counted in
    /// [`Stats::kept_truncated_bytes`](crate::Stats::kept_truncated_bytes),
    /// so a handler waiting for a delimiter that never comes cannot hold
    /// memory without bound. The default, 1 MiB, is far more than protocol
    /// headers need.
    pub max_kept_bytes: usize,
    /// Bytes of delivered data each direction keeps to compare
    /// retransmissions with (`0`: none, the default). A segment that
    /// carries again bytes the stream already delivered, held among the
    /// last `retransmit_check` of them, is compared with them: where the
    /// copies differ it raises [`Event::OverlapConflict`](crate::Event::OverlapConflict)
    /// with `new_won: false` (a receiver keeps what it took first), as a
    /// packet injected ahead of the genuine one shows (QUANTUM-INSERT
    /// style), or an evasion that sends a decoy first. Bytes compared are
    /// counted in [`Stats::rechecked_bytes`](crate::Stats::rechecked_bytes),
    /// the others in [`Stats::unchecked_bytes`](crate::Stats::unchecked_bytes):
    /// delivered before the last `retransmit_check` offsets, or not held
    /// for want of memory (holes the stream skipped are held as holes,
    /// whose bytes are never compared; a hole as long as the window lets
    /// go of what came before it, and a ninth the oldest and what came
    /// before that). A closed connection
    /// keeps nothing (its late segments are dropped as after the close).
    /// A one-byte segment just behind the next byte, after the direction
    /// delivered nothing for 10 s of packet time, is a keep-alive probe,
    /// whose byte is any: it is not compared.
    ///
    /// Costs a copy of every delivered byte, up to this many bytes for
    /// each direction that carried data (a ring, grown as it delivers),
    /// held until its connection closes, and a box of about 100 bytes for
    /// every direction (bounded by [`max_conns`](Self::max_conns), as the
    /// connection records are). The rings count against the
    /// [`memcap`](Self::memcap) and take at most half of it, so that they
    /// alone never take the room out-of-order data waits in; a ring grows
    /// for delivered bytes (not for holes), one that cannot grow keeps its
    /// last bytes, one that cannot be made holds none. Replaying README's 1.1 GB trace (10,000 live flows) took 2.4x
    /// the time with 2 KiB, 3.3x with 16 KiB: a few KiB catch an injected
    /// segment raced ahead of the genuine one.
    pub retransmit_check: usize,
    /// Bytes of each direction reassembled at most, from its first byte
    /// (`0`: all, the default): the reassembly depth of an IDS, which
    /// spends its work on the start of each stream, where protocols put
    /// what they are told by. Bytes past it are dropped as they come,
    /// counted as [`DropReason::Stopped`](crate::DropReason::Stopped),
    /// neither buffered nor delivered; the connection is tracked to its
    /// end as before (its FIN, RST or timeout closes it, and `complete` is
    /// called once, its last delivery's skip covering the bytes past the
    /// depth, as [`Info::passed`](crate::Info::passed) says), and holes
    /// past the depth are not gaps. A handler can
    /// stop a direction sooner ([`ScatterGather::stop`](crate::ScatterGather::stop)).
    pub depth: u64,
    /// Most connections tracked at once (`0`: no limit). At the limit a
    /// connection a bare SYN opened that is still unanswered (the oldest
    /// such) is closed (flushed, `complete` called) to make room, else the
    /// connection idle the longest: least-recently-active eviction, after
    /// a host's SYN backlog, which gives way first. (Exactly, unless finding
    /// it would take more than 64 steps through connections active since
    /// they were last queued; then the idlest of those, so that one
    /// eviction never stalls the packet path.)
    pub max_conns: usize,
    /// Buffered data older than this (packet time, nanoseconds) is delivered,
    /// skipping the hole before it (`None`: only limits and closing flush).
    pub flush_timeout_ns: Option<u64>,
    /// Connections idle longer than this (packet time, nanoseconds) are
    /// closed (`None`: only `flush_all`, limits and FIN/RST close). TCP
    /// connections may legitimately idle for a long time; the default is an
    /// hour, as IDS engines use for established connections.
    pub idle_timeout_ns: Option<u64>,
    /// How long a connection that ended (FIN both ways, RST) and whose stream
    /// asked to linger (`complete` returned `false`) keeps absorbing stray
    /// segments, packet time in nanoseconds.
    pub linger_ns: u64,
    /// Largest distance (bytes) ahead of the next expected byte at which a
    /// segment is still buffered; farther ones are dropped as out of window
    /// ([`DropReason::OutOfWindow`](crate::DropReason::OutOfWindow)). TCP's
    /// largest scaled window is 2^30. Sequence numbers tell ahead from
    /// behind within half their space, so values above 2^31 − 1 act as
    /// 2^31 − 1.
    pub max_window: u32,
    /// How far (bytes) beyond the next expected byte a RST's sequence number
    /// may lie and still end the connection; farther ones are ignored and
    /// counted (`rst_ignored`), so a blind RST cannot blind the reassembler.
    /// As `max_window`, at most 2^31 − 1 in effect.
    pub rst_window: u32,
    /// Callers that process segments in batches (the engine) prefetch
    /// connections ahead once the live connection records take this many
    /// bytes: a core's L2 cache (1 MiB on the build machine), below which
    /// they are mostly cached and the look-ahead only costs
    /// ([`Reassembler::prefetch_pays`](crate::Reassembler::prefetch_pays)).
    /// With 2 MiB, two workers of 5,000 live connections each (384-byte
    /// records) went without it and ran 1.05× the time.
    /// `0`: always; `usize::MAX`: never. Speed only; output is the same.
    pub prefetch_min_bytes: usize,
}

impl Config {
    /// The overlap policy of the host at `receiver`.
    pub fn policy_for(&self, receiver: std::net::IpAddr) -> OverlapPolicy {
        if self.overlap_by_host.is_empty() {
            return self.overlap_policy;
        }
        self.overlap_by_host
            .get(receiver)
            .unwrap_or(self.overlap_policy)
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            midstream: true,
            overlap_policy: OverlapPolicy::First,
            overlap_by_host: NetTable::new(),
            urgent: UrgentPolicy::Inline,
            skip_acked_holes: true,
            max_pages: 262_144,
            max_pages_per_conn: 8_192,
            memcap: 1 << 30,
            max_kept_bytes: 1 << 20,
            retransmit_check: 0,
            depth: 0,
            max_conns: 1 << 20,
            flush_timeout_ns: Some(10_000_000_000),
            idle_timeout_ns: Some(3_600_000_000_000),
            linger_ns: 30_000_000_000,
            max_window: 1 << 30,
            rst_window: 1 << 20,
            prefetch_min_bytes: 1 << 20,
        }
    }
}
