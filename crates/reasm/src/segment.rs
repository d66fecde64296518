//! The reassembler's input: one TCP segment with its flow and time.

use weft_wire::{Dir, FlowKey, Packet, Seq, TcpFlags, TcpOptions, Timestamp};

/// One TCP segment as the reassembler sees it. Borrows its payload from the
/// frame; plain data otherwise (`Send + Sync` when the frame is).
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// The connection, canonical (both directions alike).
    pub key: FlowKey,
    /// Which way this segment travels within `key`.
    pub dir: Dir,
    /// The flow hash the dispatcher picked the worker by (the symmetric
    /// Toeplitz hash of `key`, or the engine's keyed hash;
    /// [`Segment::from_packet`] computes the Toeplitz one; 0 when nothing
    /// dispatched the segment). Informational: the connection table uses
    /// its own seeded hash of `key`.
    pub hash: u32,
    /// Sequence number.
    pub seq: Seq,
    /// Acknowledgment number (meaningful when `flags.ack()`).
    pub ack: Seq,
    /// TCP flags.
    pub flags: TcpFlags,
    /// Advertised window (unscaled).
    pub window: u16,
    /// Urgent pointer (meaningful when `flags.urg()`; see
    /// [`UrgentPolicy`](crate::UrgentPolicy)).
    pub urgent: u16,
    /// Parsed TCP options.
    pub options: TcpOptions,
    /// Captured payload.
    pub payload: &'a [u8],
    /// Payload bytes the IP length promised beyond what was captured.
    pub payload_missing: u32,
    /// Capture timestamp.
    pub ts: Timestamp,
}

impl<'a> Segment<'a> {
    /// A segment from the fields that matter most, for callers that decode
    /// packets themselves: no acknowledgment, a 65,535-byte window, no
    /// urgent pointer, no options, nothing cut by the capture, no dispatch hash. Set the other
    /// public fields directly where they matter (`ack` for acknowledged-hole
    /// skipping, `options` for the validators).
    pub fn new(
        key: FlowKey,
        dir: Dir,
        seq: Seq,
        flags: TcpFlags,
        payload: &'a [u8],
        ts: Timestamp,
    ) -> Segment<'a> {
        Segment {
            key,
            dir,
            hash: 0,
            seq,
            ack: Seq(0),
            flags,
            window: 65535,
            urgent: 0,
            options: TcpOptions::default(),
            payload,
            payload_missing: 0,
            ts,
        }
    }

    /// A segment from a decoded packet, computing the symmetric hash.
    pub fn from_packet(p: &Packet<'a>, ts: Timestamp) -> Segment<'a> {
        Segment::from_packet_hashed(p, ts, p.key.symmetric_hash())
    }

    /// A segment from a decoded packet whose flow hash is already known.
    pub fn from_packet_hashed(p: &Packet<'a>, ts: Timestamp, hash: u32) -> Segment<'a> {
        Segment {
            key: p.key,
            dir: p.dir,
            hash,
            seq: p.tcp.seq,
            ack: p.tcp.ack,
            flags: p.tcp.flags,
            window: p.tcp.window,
            urgent: p.tcp.urgent,
            options: p.tcp.options,
            payload: p.payload,
            payload_missing: p.payload_missing,
            ts,
        }
    }

    /// Sequence number of the first payload byte (a SYN occupies one number).
    pub fn data_seq(&self) -> Seq {
        if self.flags.syn() {
            self.seq + 1
        } else {
            self.seq
        }
    }
}
