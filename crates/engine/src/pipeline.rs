//! The per-core work: decode a frame, reassemble IP fragments, reassemble TCP.
//!
//! A [`Pipeline`] is what every worker runs, and what the engine runs on the
//! calling thread in inline mode (no rings, no threads).

use weft_reasm::{
    Config, DefaultPool, HeapPool, Lookahead, PagePool, Reassembler, Segment, StreamFactory,
    PREFETCH_DISTANCE,
};
use weft_wire::{
    decode, decode_ip, peek_key_at, peek_key_ip, DecodeError, DecodeOptions, Decoded, DefragConfig,
    Defragmenter, LinkType, Packet, Timestamp,
};

/// Frame-level counters (decoding and IP defragmentation). Plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Frames seen.
    pub frames: u64,
    /// Captured bytes of those frames.
    pub frame_bytes: u64,
    /// TCP segments handed to the reassembler (defragmented ones included).
    pub tcp_segments: u64,
    /// Frames that decoded fine but carry no TCP (UDP, ICMP, ARP, …).
    pub not_tcp: u64,
    /// Frames cut inside a header.
    pub truncated: u64,
    /// Frames with an impossible header length or IP version.
    pub malformed: u64,
    /// Frames of an encapsulation or link type not handled.
    pub unsupported: u64,
    /// TCP segments with a bad checksum (counted only when verifying).
    pub bad_checksum: u64,
    /// TCP segments dropped for a bad checksum (with `drop_bad_checksums`).
    pub bad_checksum_dropped: u64,
    /// IP fragments seen.
    pub fragments: u64,
    /// Datagrams rebuilt from fragments.
    pub defragmented: u64,
}

impl FrameStats {
    /// Frames that could not be decoded at all.
    pub fn undecodable(&self) -> u64 {
        self.truncated + self.malformed + self.unsupported
    }

    /// Adds another pipeline's counters.
    pub fn merge(&mut self, o: &FrameStats) {
        self.frames += o.frames;
        self.frame_bytes += o.frame_bytes;
        self.tcp_segments += o.tcp_segments;
        self.not_tcp += o.not_tcp;
        self.truncated += o.truncated;
        self.malformed += o.malformed;
        self.unsupported += o.unsupported;
        self.bad_checksum += o.bad_checksum;
        self.bad_checksum_dropped += o.bad_checksum_dropped;
        self.fragments += o.fragments;
        self.defragmented += o.defragmented;
    }

    fn count_error(&mut self, e: DecodeError) {
        match e {
            DecodeError::Truncated { .. } => self.truncated += 1,
            DecodeError::BadHeaderLen { .. } | DecodeError::BadVersion => self.malformed += 1,
            DecodeError::Unsupported { .. } => self.unsupported += 1,
            DecodeError::BadChecksum { .. } => self.bad_checksum += 1,
        }
    }
}

/// Options of a [`Pipeline`] (and of every engine worker). The default
/// neither verifies nor drops bad checksums.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PipelineConfig {
    /// The reassembler's configuration.
    pub reasm: Config,
    /// Decoder options.
    pub decode: DecodeOptions,
    /// Drop TCP segments whose checksum is wrong (needs
    /// `decode.verify_checksums`). Off by default: captures taken on a host
    /// with checksum offload carry wrong checksums on every sent segment.
    pub drop_bad_checksums: bool,
    /// IP defragmentation limits.
    pub defrag: DefragConfig,
}

/// What the look-ahead stage learned of a frame ([`Pipeline::lookahead_frame`]):
/// its flow's place in the connection table, and where its IP header
/// starts. Processing the frame with it ([`Pipeline::process_frame_ahead`])
/// skips the link layer and the table hash. Plain data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameAhead {
    la: Lookahead,
    ip_offset: u16,
    vlan: u32,
}

/// Decoding, defragmentation and reassembly on one thread.
///
/// `Send` when the factory, its streams and the pool are; not `Sync`.
#[derive(Debug)]
pub struct Pipeline<F: StreamFactory, P: PagePool = DefaultPool> {
    reasm: Reassembler<F, P>,
    defrag: Defragmenter,
    decode: DecodeOptions,
    drop_bad_checksums: bool,
    stats: FrameStats,
}

impl<F: StreamFactory> Pipeline<F, DefaultPool> {
    /// A pipeline whose pages come from an `mmap`'d arena (heap pages if the
    /// arena cannot be mapped); bound to the thread that creates it.
    pub fn new(cfg: PipelineConfig, factory: F) -> Self {
        let pool = DefaultPool::new(HeapPool::DEFAULT_PAGE_SIZE, cfg.reasm.max_pages);
        Pipeline::with_pool(cfg, factory, pool)
    }
}

impl<F: StreamFactory, P: PagePool> Pipeline<F, P> {
    /// A pipeline taking its pages from `pool`.
    pub fn with_pool(cfg: PipelineConfig, factory: F, pool: P) -> Self {
        Pipeline {
            reasm: Reassembler::with_pool(cfg.reasm, factory, pool),
            defrag: Defragmenter::new(cfg.defrag),
            decode: cfg.decode,
            drop_bad_checksums: cfg.drop_bad_checksums,
            stats: FrameStats::default(),
        }
    }

    /// First prefetch stage for a frame that will be processed soon: finds
    /// its flow with a header peek and starts loading the table's index
    /// entry (see [`Reassembler::prefetch_index`]). `None` for frames the
    /// peek cannot place (they are simply not prefetched).
    #[inline]
    pub fn lookahead_frame(&self, link: LinkType, frame: &[u8]) -> Option<FrameAhead> {
        let p = peek_key_at(link, frame)?;
        Some(FrameAhead {
            la: self.reasm.prefetch_index(&p.key),
            ip_offset: p.ip_offset,
            vlan: p.vlan,
        })
    }

    /// [`lookahead_frame`](Self::lookahead_frame) for a frame whose IP
    /// header starts at `ip_offset`.
    #[inline]
    pub fn lookahead_ip(&self, frame: &[u8], ip_offset: usize, vlan: u32) -> Option<FrameAhead> {
        let key = peek_key_ip(frame.get(ip_offset..)?, vlan)?;
        Some(FrameAhead {
            la: self.reasm.prefetch_index(&key),
            ip_offset: u16::try_from(ip_offset).ok()?,
            vlan,
        })
    }

    /// Runs frames `0..n` through the look-ahead schedule every caller
    /// shares: at step `t`, `lookahead(self, t)` gives frame `t`'s first
    /// prefetch stage (see [`lookahead_frame`](Self::lookahead_frame)),
    /// frame `t - D` gets the second (its connection) and
    /// `process(self, t - 2D, ahead)` runs with what the look-ahead found,
    /// `D` being [`PREFETCH_DISTANCE`]; the memory waits of several flows
    /// overlap. `lookahead` is called in increasing order, `process` exactly
    /// once per frame in order. When prefetching does not pay
    /// ([`Reassembler::prefetch_pays`]) frames are processed directly, with
    /// no look-ahead, and `lookahead` is never called.
    pub fn run_ahead(
        &mut self,
        n: usize,
        mut lookahead: impl FnMut(&Self, usize) -> Option<FrameAhead>,
        mut process: impl FnMut(&mut Self, usize, Option<&FrameAhead>),
    ) {
        if !self.reasm.prefetch_pays() {
            (0..n).for_each(|u| process(self, u, None));
            return;
        }
        const D: usize = PREFETCH_DISTANCE;
        // Frame t's look-ahead sits in slot t % 2D until it is processed, at
        // step t + 2D, which then hands the slot to frame t + 2D: so at
        // each step the frame due is processed before the new one looks
        // ahead.
        let mut ahead = [None; 2 * D];
        for t in 0..n + 2 * D {
            if let Some(u) = t.checked_sub(2 * D).filter(|&u| u < n) {
                let a = ahead[u % (2 * D)].take();
                process(self, u, a.as_ref());
            }
            if t < n {
                ahead[t % (2 * D)] = lookahead(self, t);
            }
            if let Some(Some(a)) = t
                .checked_sub(D)
                .filter(|&u| u < n)
                .map(|u| ahead[u % (2 * D)])
            {
                self.reasm.prefetch_conn(a.la);
            }
        }
    }

    /// Processes one captured frame.
    pub fn process_frame(&mut self, link: LinkType, frame: &[u8], ts: Timestamp) {
        self.process_frame_ahead(link, frame, ts, None);
    }

    /// [`process_frame`](Self::process_frame) with what the look-ahead
    /// found of this frame, if anything: the frame is then decoded from its
    /// IP header, and its flow found without hashing the key again.
    pub fn process_frame_ahead(
        &mut self,
        link: LinkType,
        frame: &[u8],
        ts: Timestamp,
        ahead: Option<&FrameAhead>,
    ) {
        self.stats.frames += 1;
        self.stats.frame_bytes += frame.len() as u64;
        if let Some(a) = ahead {
            // Decoding from the IP header the peek found gives what decoding
            // the whole frame gives (tested in weft-wire). The key check
            // makes a look-ahead of some other frame harmless: the frame is
            // then decoded from the start.
            let ip = frame.get(usize::from(a.ip_offset)..).unwrap_or(&[]);
            if let Ok(Decoded::Tcp(p)) = decode_ip(ip, a.vlan, &self.decode) {
                if p.key == *a.la.key() {
                    // The dispatch hash is informational; inline, nothing
                    // computed it.
                    return self.segment(&p, ts, None, Some(&a.la));
                }
            }
        }
        let decoded = decode(link, frame, &self.decode);
        self.handle(decoded, ts, None, ahead.map(|a| &a.la));
    }

    /// Processes a frame whose innermost IP header starts at `ip_offset`
    /// (the dispatcher found it), with the flow hash already computed, and
    /// what the look-ahead found of it, if anything.
    pub fn process_ip(
        &mut self,
        frame: &[u8],
        ip_offset: usize,
        vlan: u32,
        ts: Timestamp,
        hash: u32,
        ahead: Option<&FrameAhead>,
    ) {
        self.stats.frames += 1;
        self.stats.frame_bytes += frame.len() as u64;
        let Some(ip) = frame.get(ip_offset..) else {
            self.stats.malformed += 1;
            return;
        };
        let decoded = decode_ip(ip, vlan, &self.decode);
        self.handle(decoded, ts, Some(hash), ahead.map(|a| &a.la));
    }

    fn handle(
        &mut self,
        decoded: Result<Decoded<'_>, DecodeError>,
        ts: Timestamp,
        hash: Option<u32>,
        la: Option<&Lookahead>,
    ) {
        match decoded {
            Ok(Decoded::Tcp(p)) => self.segment(&p, ts, hash, la),
            Ok(Decoded::Fragment(f)) => {
                self.stats.fragments += 1;
                if let Some(whole) = self.defrag.push(&f, ts) {
                    self.stats.defragmented += 1;
                    match decode_ip(&whole.packet, whole.vlan, &self.decode) {
                        Ok(Decoded::Tcp(p)) => self.segment(&p, ts, None, None),
                        Ok(_) => self.stats.not_tcp += 1,
                        Err(e) => self.stats.count_error(e),
                    }
                }
            }
            Ok(Decoded::Other) => self.stats.not_tcp += 1,
            Err(e) => self.stats.count_error(e),
        }
    }

    fn segment(
        &mut self,
        p: &Packet<'_>,
        ts: Timestamp,
        hash: Option<u32>,
        la: Option<&Lookahead>,
    ) {
        if p.checksum_ok == Some(false) {
            self.stats.bad_checksum += 1;
            if self.drop_bad_checksums {
                self.stats.bad_checksum_dropped += 1;
                return;
            }
        }
        self.stats.tcp_segments += 1;
        // Inline, nothing needs the dispatch hash: the table hashes on its own.
        let hash = hash.unwrap_or(0);
        self.reasm
            .process_ahead(&Segment::from_packet_hashed(p, ts, hash), la);
    }

    /// Moves packet time forward without a packet (timeouts, fragment expiry).
    pub fn advance_time(&mut self, now: Timestamp) {
        self.reasm.advance_time(now);
        self.defrag.expire(now);
    }

    /// Closes every connection (see [`Reassembler::flush_all`]).
    pub fn flush_all(&mut self) -> usize {
        self.reasm.flush_all()
    }

    /// Frame-level counters.
    pub fn frame_stats(&self) -> &FrameStats {
        &self.stats
    }

    /// The reassembler.
    pub fn reassembler(&self) -> &Reassembler<F, P> {
        &self.reasm
    }

    /// The reassembler, mutably.
    pub fn reassembler_mut(&mut self) -> &mut Reassembler<F, P> {
        &mut self.reasm
    }

    /// Consumes the pipeline, returning the factory.
    pub fn into_factory(self) -> F {
        self.reasm.into_factory()
    }
}
