//! Engine counters, readable while the engine runs.
//!
//! Each worker owns a [`WorkerCounters`] block that only it writes, with
//! `Relaxed` stores once per batch (one writer, so no read-modify-write and
//! no ordering needed: a reader wants recent values, not a consistent cut).
//! The dispatcher's counters live on the dispatching thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

use crate::pipeline::FrameStats;
use weft_reasm::Stats;

/// Live counters of one worker, published after every batch. `Send + Sync`.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    frames: AtomicU64,
    frame_bytes: AtomicU64,
    segments: AtomicU64,
    delivered_bytes: AtomicU64,
    out_of_order: AtomicU64,
    flows_active: AtomicU64,
    flows_created: AtomicU64,
    flows_closed: AtomicU64,
    pages_in_use: AtomicU64,
    memcap_flushes: AtomicU64,
    pinned: AtomicBool,
}

impl WorkerCounters {
    pub(crate) fn publish(&self, f: &FrameStats, r: &Stats) {
        self.frames.store(f.frames, Relaxed);
        self.frame_bytes.store(f.frame_bytes, Relaxed);
        self.segments.store(r.segments, Relaxed);
        self.delivered_bytes.store(r.delivered_bytes, Relaxed);
        self.out_of_order.store(r.out_of_order_segments, Relaxed);
        self.flows_active.store(r.conns_active, Relaxed);
        self.flows_created.store(r.conns_created, Relaxed);
        self.flows_closed.store(r.conns_closed, Relaxed);
        self.pages_in_use.store(r.pages_in_use, Relaxed);
        self.memcap_flushes
            .store(r.memcap_flushes + r.memcap_prunes, Relaxed);
    }

    pub(crate) fn set_pinned(&self, pinned: bool) {
        self.pinned.store(pinned, Relaxed);
    }

    /// A snapshot.
    pub fn snapshot(&self) -> WorkerSnapshot {
        WorkerSnapshot {
            frames: self.frames.load(Relaxed),
            frame_bytes: self.frame_bytes.load(Relaxed),
            segments: self.segments.load(Relaxed),
            delivered_bytes: self.delivered_bytes.load(Relaxed),
            out_of_order: self.out_of_order.load(Relaxed),
            flows_active: self.flows_active.load(Relaxed),
            flows_created: self.flows_created.load(Relaxed),
            flows_closed: self.flows_closed.load(Relaxed),
            pages_in_use: self.pages_in_use.load(Relaxed),
            memcap_flushes: self.memcap_flushes.load(Relaxed),
            pinned: self.pinned.load(Relaxed),
        }
    }
}

/// What a worker had done at the time of a snapshot. Plain data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerSnapshot {
    /// Frames processed.
    pub frames: u64,
    /// Captured bytes of those frames.
    pub frame_bytes: u64,
    /// TCP segments reassembled.
    pub segments: u64,
    /// Payload bytes delivered to streams.
    pub delivered_bytes: u64,
    /// Segments that arrived out of order.
    pub out_of_order: u64,
    /// Connections tracked now.
    pub flows_active: u64,
    /// Connections created.
    pub flows_created: u64,
    /// Connections closed.
    pub flows_closed: u64,
    /// Pages holding out-of-order data now.
    pub pages_in_use: u64,
    /// Times a page limit or the memcap was met: forced flushes, and
    /// prunes of a connection's farthest data
    /// ([`Stats::memcap_prunes`](weft_reasm::Stats::memcap_prunes)).
    pub memcap_flushes: u64,
    /// Whether the worker's thread is pinned to its core.
    pub pinned: bool,
}

/// Per-worker shared state: counters on their own cache line.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub counters: CachePadded<WorkerCounters>,
}

/// The dispatcher's counters. Plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DispatchStats {
    /// Frames offered to the engine.
    pub frames: u64,
    /// Frames that decoded but carry no TCP (not sent to any worker).
    pub not_tcp: u64,
    /// Frames that could not be decoded (not sent).
    pub undecodable: u64,
    /// Frames that decode but that their receiving host drops by rule
    /// (not sent; see [`FrameStats::refused`](crate::FrameStats::refused),
    /// where workers count those the header peek placed).
    pub refused: u64,
    /// IP fragments recorded whole whose IP length promises more than
    /// they hold, where the dispatcher defragments (rings, fanout, its own
    /// worker 0; inline, the pipeline counts them): see
    /// [`FrameStats::short_on_wire`](crate::FrameStats::short_on_wire),
    /// where workers count such TCP segments.
    pub short_on_wire: u64,
    /// IP fragments (kept by the dispatcher until their datagram is whole).
    pub fragments: u64,
    /// IP fragments with a bad header checksum, or out of a tunnel with
    /// one (counted only when verifying; the dispatcher defragments, so
    /// it checks them).
    pub bad_checksum: u64,
    /// Those dropped for it (with `drop_bad_checksums`), and the segments
    /// dropped for a tunnel's header.
    pub bad_checksum_dropped: u64,
    /// TCP segments out of tunnels with a bad checksum (an outer IPv4
    /// header's, GRE's, UDP's; counted only when verifying; the dispatcher
    /// decodes the tunnels, and hands workers the innermost packet; a
    /// datagram it rebuilt goes whole, and its worker counts tunnels
    /// inside it): the tunnel's end drops them, so their receiver never
    /// sees them (see [`weft_wire::Packet::tunnel_checksum_ok`]).
    pub bad_tunnel_checksum: u64,
    /// Datagrams rebuilt from fragments and sent on.
    pub defragmented: u64,
    /// The dispatcher's defragmenter's own counters: what it dropped, and
    /// why.
    pub defrag: weft_wire::DefragStats,
    /// Frames sent to each worker (including those then dropped).
    pub sent: Vec<u64>,
    /// Frames dropped at a full ring (drop mode), or pushed for a worker
    /// that had died (its handler panicked; any mode), per worker. Frames
    /// still in a dead worker's ring are counted nowhere: [`finish`]
    /// returns that worker's error instead of stats.
    ///
    /// [`finish`]: crate::Engine::finish
    pub ring_drops: Vec<u64>,
    /// Times the dispatcher found a worker's ring full and waited (block mode).
    pub ring_full_waits: Vec<u64>,
    /// Frames copied because their source could not be shared.
    pub copied: u64,
}

impl DispatchStats {
    /// Adds `o`'s counts to these (per-worker ones worker by worker).
    pub fn merge(&mut self, o: &DispatchStats) {
        // Every field named: a new counter does not compile until merged.
        let DispatchStats {
            frames,
            not_tcp,
            undecodable,
            refused,
            short_on_wire,
            fragments,
            bad_checksum,
            bad_checksum_dropped,
            bad_tunnel_checksum,
            defragmented,
            defrag,
            sent,
            ring_drops,
            ring_full_waits,
            copied,
        } = o;
        for (mine, theirs) in [
            (&mut self.frames, frames),
            (&mut self.not_tcp, not_tcp),
            (&mut self.undecodable, undecodable),
            (&mut self.refused, refused),
            (&mut self.short_on_wire, short_on_wire),
            (&mut self.fragments, fragments),
            (&mut self.bad_checksum, bad_checksum),
            (&mut self.bad_checksum_dropped, bad_checksum_dropped),
            (&mut self.bad_tunnel_checksum, bad_tunnel_checksum),
            (&mut self.defragmented, defragmented),
            (&mut self.copied, copied),
        ] {
            *mine += theirs;
        }
        self.defrag.merge(defrag);
        for (mine, theirs) in [
            (&mut self.sent, sent),
            (&mut self.ring_drops, ring_drops),
            (&mut self.ring_full_waits, ring_full_waits),
        ] {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), 0);
            }
            mine.iter_mut().zip(theirs).for_each(|(m, t)| *m += t);
        }
    }

    /// Counts a frame the dispatcher's decoder refused.
    pub(crate) fn count_error(&mut self, e: weft_wire::DecodeError) {
        match e {
            weft_wire::DecodeError::Refused { .. } => self.refused += 1,
            _ => self.undecodable += 1,
        }
    }
}

/// Everything an engine run counted. Plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// The dispatcher's counters (all zero in inline mode but `frames`).
    pub dispatch: DispatchStats,
    /// Each worker's frame counters (one entry in inline mode).
    pub frames: Vec<FrameStats>,
    /// Each worker's reassembly counters (one entry in inline mode).
    pub reasm: Vec<Stats>,
    /// Whether each worker was pinned to its core.
    pub pinned: Vec<bool>,
}

impl EngineStats {
    /// Frame counters summed over workers.
    pub fn frames_total(&self) -> FrameStats {
        let mut t = FrameStats::default();
        self.frames.iter().for_each(|f| t.merge(f));
        t
    }

    /// Reassembly counters summed over workers.
    pub fn reasm_total(&self) -> Stats {
        let mut t = Stats::default();
        self.reasm.iter().for_each(|s| t.merge(s));
        t
    }
}
