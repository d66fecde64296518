//! Counters and the byte-accounting invariant.

use core::fmt;

/// Why payload bytes were not delivered. Every dropped byte has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The stream handler's `accept` refused the segment.
    Rejected,
    /// No handshake was seen and midstream pickup is off.
    NoHandshake,
    /// Sequence numbers before the first byte of a stream picked up midstream.
    BeforeStart,
    /// Farther ahead of the next expected byte than `max_window`, or
    /// carried by a RST outside the RST window (a blind RST is ignored
    /// whole, its payload included).
    OutOfWindow,
    /// Arrived after the stream ended (FIN consumed, RST, or closed).
    AfterClose,
    /// Arrived for a range already skipped as a hole (late data).
    AfterSkip,
    /// No page could be had even after forcing buffered data out; or the
    /// segment's connection was over its page share with its pages mostly
    /// empty, and the segment would land past everything it may prune
    /// (see [`Pruned`](Self::Pruned)): a receiver drops such a segment.
    MemoryLimit,
    /// Data on a SYN that the peer's acknowledgment left out: a server
    /// without TCP Fast Open drops it, and the client sends it again (or,
    /// to evade, something else) after the handshake.
    SynRefused,
    /// Past where its direction stopped: the reassembly depth
    /// ([`Config::depth`](crate::Config::depth)), or where its stream
    /// handler stopped it ([`ScatterGather::stop`](crate::ScatterGather::stop)).
    Stopped,
    /// Carried by a segment without the ACK flag (but a SYN or a RST):
    /// every receiver drops such a segment whole, its FIN too (RFC 9293
    /// 3.10.7.4, fifth step), so its bytes are no one's stream.
    NoAck,
    /// Carried by an acceptable RST: the receiver resets the connection
    /// and reads none of it (a blind RST's payload counts as
    /// [`OutOfWindow`](Self::OutOfWindow)).
    OnRst,
    /// Waited out of order, the farthest ahead, when its connection went
    /// over its page share
    /// ([`Config::max_pages_per_conn`](crate::Config::max_pages_per_conn))
    /// with its pages mostly empty: a flood of small segments, each in a
    /// page of its own. As a receiver prunes its out-of-order queue from
    /// the far end when small segments overrun its buffer, the farthest
    /// data goes (the sender sends it again) and the hole before it stays
    /// open for the bytes the receiver reads there.
    Pruned,
}

impl DropReason {
    /// Number of reasons (the length of [`Stats::dropped`]).
    pub const COUNT: usize = 12;
    /// All reasons, in [`Stats::dropped`] index order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Rejected,
        DropReason::NoHandshake,
        DropReason::BeforeStart,
        DropReason::OutOfWindow,
        DropReason::AfterClose,
        DropReason::AfterSkip,
        DropReason::MemoryLimit,
        DropReason::SynRefused,
        DropReason::Stopped,
        DropReason::NoAck,
        DropReason::OnRst,
        DropReason::Pruned,
    ];

    /// Index into [`Stats::dropped`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Short snake_case name, for reports.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Rejected => "rejected",
            DropReason::NoHandshake => "no_handshake",
            DropReason::BeforeStart => "before_start",
            DropReason::OutOfWindow => "out_of_window",
            DropReason::AfterClose => "after_close",
            DropReason::AfterSkip => "after_skip",
            DropReason::MemoryLimit => "memory_limit",
            DropReason::SynRefused => "syn_refused",
            DropReason::Stopped => "stopped",
            DropReason::NoAck => "no_ack",
            DropReason::OnRst => "on_rst",
            DropReason::Pruned => "pruned",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counters of one reassembler. Plain data: `Send + Sync`.
///
/// Invariant, true between any two calls:
/// `payload_bytes == delivered_bytes + duplicate_bytes + overlap_bytes
///  + dropped_total() + buffered_bytes + urgent_bytes`
/// (see [`Stats::balanced`]). Kept bytes offered again are not counted twice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// TCP segments handed to the reassembler.
    pub segments: u64,
    /// Payload bytes of those segments (as captured).
    pub payload_bytes: u64,
    /// Bytes delivered to stream handlers, each stream position once.
    pub delivered_bytes: u64,
    /// Bytes of retransmissions of already delivered data.
    pub duplicate_bytes: u64,
    /// Bytes of overlapping copies that lost to the overlap policy (one
    /// copy of every overlapping byte).
    pub overlap_bytes: u64,
    /// Overlaps where the copies carried different bytes: buffered ones,
    /// and retransmissions of delivered data
    /// ([`Config::retransmit_check`](crate::Config::retransmit_check)).
    pub overlap_conflicts: u64,
    /// Bytes of retransmitted delivered data compared with the copy the
    /// stream delivered ([`Config::retransmit_check`](crate::Config::retransmit_check)).
    pub rechecked_bytes: u64,
    /// Bytes of retransmitted delivered data, with the check on, that
    /// could not be compared: delivered longer ago than the check keeps,
    /// in a hole the stream skipped, or not kept (for want of memory).
    /// With it on, the two add up to `duplicate_bytes` less one-byte
    /// keep-alive probes.
    pub unchecked_bytes: u64,
    /// Bytes now waiting in pages.
    pub buffered_bytes: u64,
    /// Urgent bytes taken out of their streams
    /// ([`UrgentPolicy::OutOfBand`](crate::UrgentPolicy::OutOfBand)).
    pub urgent_bytes: u64,
    /// Dropped bytes, indexed by [`DropReason::index`].
    pub dropped: [u64; DropReason::COUNT],
    /// Bytes skipped as missing (holes), never received.
    pub gap_bytes: u64,
    /// Holes skipped.
    pub gaps: u64,
    /// Holes skipped because the receiver's ACK covered them.
    pub acked_gaps: u64,
    /// Payload bytes promised by the IP length but cut by the capture's snap length.
    pub truncated_bytes: u64,
    /// Segments that arrived ahead of the next expected byte.
    pub out_of_order_segments: u64,
    /// Connections created.
    pub conns_created: u64,
    /// Connections closed (complete called).
    pub conns_closed: u64,
    /// Connections closed by FIN in both directions.
    pub conns_closed_fin: u64,
    /// Connections closed by RST.
    pub conns_closed_rst: u64,
    /// Connections closed for being idle.
    pub conns_closed_idle: u64,
    /// Connections evicted at `max_conns`.
    pub conns_evicted: u64,
    /// Connections now tracked.
    pub conns_active: u64,
    /// RSTs ignored for a sequence number outside the acceptable range.
    pub rst_ignored: u64,
    /// SYNs with a new initial sequence number ignored in the middle of a
    /// live connection, as its receiver drops them (RFC 5961 §4); their
    /// payload counts as [`DropReason::OutOfWindow`]. Once the connection
    /// is closing, or its SYN's sender sent data and then fell quiet for a
    /// second, such a SYN starts a new one.
    pub syn_ignored: u64,
    /// Segments the stream's `accept` refused (a validator such as PAWS):
    /// their payload is dropped as [`DropReason::Rejected`], and the pure
    /// ACKs among them, which carry none, count only here.
    pub segments_rejected: u64,
    /// Segments without payload that matched no connection (ignored).
    pub segments_no_conn: u64,
    /// Segments without the ACK flag (but SYNs and RSTs) ignored whole,
    /// as their receiver drops them: their payload counts as
    /// [`DropReason::NoAck`], and a FIN among them ends nothing.
    pub segments_no_ack: u64,
    /// Forced flushes because a page limit or the memcap was reached.
    pub memcap_flushes: u64,
    /// Times a connection over its page share, its pages less than a
    /// quarter full, pruned its farthest out-of-order data instead of
    /// flushing past its first hole (see [`DropReason::Pruned`]).
    pub memcap_prunes: u64,
    /// Forced flushes because buffered data grew older than the flush timeout.
    pub timeout_flushes: u64,
    /// Calls to stream handlers' `reassembled`.
    pub deliveries: u64,
    /// Pages now held.
    pub pages_in_use: u64,
    /// Most pages held at once.
    pub pages_peak: u64,
    /// Bytes kept by handlers (`keep_from`) now.
    pub kept_bytes: u64,
    /// Bytes handlers asked to keep in keeps larger than
    /// [`Config::max_kept_bytes`](crate::Config::max_kept_bytes), which
    /// kept nothing.
    pub kept_truncated_bytes: u64,
}

impl Stats {
    /// Sum of all dropped bytes.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Dropped bytes for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Whether the byte-accounting invariant holds.
    pub fn balanced(&self) -> bool {
        self.payload_bytes
            == self.delivered_bytes
                + self.duplicate_bytes
                + self.overlap_bytes
                + self.dropped_total()
                + self.buffered_bytes
                + self.urgent_bytes
    }

    /// Adds another reassembler's counters (peaks and gauges are summed too).
    pub fn merge(&mut self, o: &Stats) {
        macro_rules! add {
            ($($f:ident),*) => { $( self.$f += o.$f; )* };
        }
        add!(
            segments,
            payload_bytes,
            delivered_bytes,
            duplicate_bytes,
            overlap_bytes,
            overlap_conflicts,
            rechecked_bytes,
            unchecked_bytes,
            buffered_bytes,
            urgent_bytes,
            gap_bytes,
            gaps,
            acked_gaps,
            truncated_bytes,
            out_of_order_segments,
            conns_created,
            conns_closed,
            conns_closed_fin,
            conns_closed_rst,
            rst_ignored,
            syn_ignored,
            segments_rejected,
            conns_closed_idle,
            conns_evicted,
            conns_active,
            segments_no_conn,
            segments_no_ack,
            memcap_flushes,
            memcap_prunes,
            timeout_flushes,
            deliveries,
            pages_in_use,
            pages_peak,
            kept_bytes,
            kept_truncated_bytes
        );
        for (a, b) in self.dropped.iter_mut().zip(o.dropped.iter()) {
            *a += b;
        }
    }
}
