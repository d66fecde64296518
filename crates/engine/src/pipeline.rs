//! The per-core work: decode a frame, reassemble IP fragments, reassemble TCP.
//!
//! A [`Pipeline`] is what every worker runs, and what the engine runs on the
//! calling thread in inline mode (no rings, no threads).

use weft_reasm::{
    Config, DefaultPool, HeapPool, Lookahead, PagePool, Reassembler, Segment, StreamFactory,
    PREFETCH_DISTANCE,
};
use weft_wire::{
    decode, decode_ip_in, peek_key_at, peek_key_ip, DecodeError, DecodeOptions, Decoded,
    DefragConfig, DefragStats, Defragmenter, LinkType, Packet, Timestamp, Zone,
};

/// Frame-level counters (decoding and IP defragmentation). Plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Frames seen.
    pub frames: u64,
    /// Captured bytes of those frames. On a ring worker, a frame the
    /// dispatcher decoded whole (one its header peek could not place:
    /// tunnels, MPLS, IPv6 extension headers...) counts what was sent on,
    /// its bytes up to the end of its IP packet, and a datagram the
    /// dispatcher put together from fragments counts as one frame of its
    /// length: totals over workers can differ from inline mode's.
    pub frame_bytes: u64,
    /// TCP segments handed to the reassembler (defragmented ones included).
    pub tcp_segments: u64,
    /// Frames that decoded fine but carry no TCP (UDP, ICMP, ARP, …).
    pub not_tcp: u64,
    /// Frames cut inside a header.
    pub truncated: u64,
    /// Frames with an impossible header length or IP version, or IP
    /// options that do not parse.
    pub malformed: u64,
    /// Frames of an encapsulation or link type not handled.
    pub unsupported: u64,
    /// Frames that decode but that their receiving host drops by rule
    /// (source-routed, an IPv6 option it must discard for:
    /// [`weft_wire::DecodeError::Refused`]). Where a dispatcher decodes a
    /// frame fully (one its header peek cannot place), it counts them in
    /// [`crate::DispatchStats::refused`].
    pub refused: u64,
    /// Frames recorded whole (as long as on the wire, by the capture's
    /// record) whose IP length promises more than they hold. Either the
    /// packet was that short on the wire, which a host drops (bytes meant
    /// for an IDS alone), or the capture lost the bytes and recorded the
    /// wrong length. Dropped with
    /// [`PipelineConfig::drop_short_on_wire`], else taken as cut by the
    /// snap length: a segment reassembled as far as it goes, a fragment
    /// other than the last dropped alone (see
    /// [`DefragStats::dropped_truncated`]). (Frames dispatched without
    /// their length on the wire are never counted. Where a dispatcher
    /// defragments, it counts the fragments in
    /// [`crate::DispatchStats::short_on_wire`].)
    pub short_on_wire: u64,
    /// TCP segments with a bad checksum, and IP fragments with a bad
    /// header checksum or out of a tunnel with one (counted only when
    /// verifying; where a dispatcher
    /// defragments, it counts the fragments in
    /// [`crate::DispatchStats::bad_checksum`]).
    pub bad_checksum: u64,
    /// Those dropped for it (with `drop_bad_checksums`), and the segments
    /// dropped for a tunnel's header.
    pub bad_checksum_dropped: u64,
    /// TCP segments out of tunnels with a bad checksum (an outer IPv4
    /// header's, GRE's, UDP's; counted only when verifying; where a
    /// dispatcher decodes
    /// the tunnels, it counts them in
    /// [`crate::DispatchStats::bad_tunnel_checksum`]): the tunnel's end
    /// drops them, so their receiver never sees them.
    pub bad_tunnel_checksum: u64,
    /// IP fragments seen.
    pub fragments: u64,
    /// Datagrams rebuilt from fragments.
    pub defragmented: u64,
    /// The defragmenter's own counters: what it dropped, and why.
    pub defrag: DefragStats,
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
        self.refused += o.refused;
        self.short_on_wire += o.short_on_wire;
        self.bad_checksum += o.bad_checksum;
        self.bad_checksum_dropped += o.bad_checksum_dropped;
        self.bad_tunnel_checksum += o.bad_tunnel_checksum;
        self.fragments += o.fragments;
        self.defragmented += o.defragmented;
        self.defrag.merge(&o.defrag);
    }

    fn count_error(&mut self, e: DecodeError) {
        match e {
            DecodeError::Truncated { .. } => self.truncated += 1,
            DecodeError::BadHeaderLen { .. }
            | DecodeError::BadVersion
            | DecodeError::BadOptions { .. } => self.malformed += 1,
            DecodeError::Unsupported { .. } => self.unsupported += 1,
            DecodeError::BadChecksum { .. } => self.bad_checksum += 1,
            DecodeError::Refused { .. } => self.refused += 1,
        }
    }
}

/// Whether a frame of `len` captured bytes was as long on the wire as
/// `wire_len` says. (The capture readers report a damaged record, with
/// less on the wire than captured, as long on the wire as captured: it
/// counts as whole.)
pub(crate) fn captured_whole(len: usize, wire_len: u32) -> bool {
    len == wire_len as usize
}

/// Options of a [`Pipeline`] (and of every engine worker). The default
/// neither verifies nor drops bad checksums.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PipelineConfig {
    /// The reassembler's configuration.
    pub reasm: Config,
    /// Decoder options.
    pub decode: DecodeOptions,
    /// Drop TCP segments whose checksum is wrong, or one of their
    /// tunnel's, and IP fragments whose header checksum (or one of their
    /// tunnel's) is (turns on `decode.verify_checksums` too).
    /// Off by default: captures taken on a host with checksum offload
    /// carry wrong checksums on every sent segment.
    pub drop_bad_checksums: bool,
    /// IP defragmentation limits.
    pub defrag: DefragConfig,
    /// Drop frames recorded whole whose IP length promises more than they
    /// hold (see [`FrameStats::short_on_wire`]), as the receiving host
    /// does. Off by default: it holds only where records tell the length
    /// on the wire truly (a live interface, a capture no tool edited). Of
    /// the shared corpus, `tcp-rexmit-inconsistency-evasion-http.pcap`
    /// records 5 frames 8 or 20 bytes short of their IP length as whole,
    /// and the receiver acknowledges their data: the capture lost those
    /// bytes, not the wire.
    pub drop_short_on_wire: bool,
}

/// What the look-ahead stage learned of a frame ([`Pipeline::lookahead_frame`]):
/// its flow's place in the connection table, and where its IP header
/// starts. Processing the frame with it ([`Pipeline::process_frame_ahead`])
/// skips the link layer and the table hash. Plain data: it remembers the
/// frame by its address and length, and serves only the frame at that
/// place (refill a buffer between the two calls and the frame there is
/// taken for the one looked at).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameAhead {
    la: Lookahead,
    ip_offset: u16,
    zone: Zone,
    /// The frame looked at: its address and length.
    frame: (usize, usize),
}

/// Where `frame` is, to know it again.
fn place(frame: &[u8]) -> (usize, usize) {
    (frame.as_ptr() as usize, frame.len())
}

/// A frame the look-ahead stage decoded whole ([`Pipeline::prepare_frame`]):
/// processing it ([`Pipeline::process_prepared`]) neither peeks nor decodes
/// again. Plain data borrowing the frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prepared<'a> {
    la: Lookahead,
    packet: Packet<'a>,
    /// The frame (or, for a worker, its bytes from the IP header on) that
    /// was decoded: processing uses the packet only for these very bytes.
    bytes: &'a [u8],
}

impl Prepared<'_> {
    /// The packet and its look-ahead, if the packet was decoded from
    /// `bytes` (the same slice, not equal contents): a look-ahead that
    /// tracked the wrong buffer costs a decode, never a wrong segment.
    fn of(&self, bytes: &[u8]) -> Option<(&Packet<'_>, &Lookahead)> {
        core::ptr::eq(self.bytes, bytes).then_some((&self.packet, &self.la))
    }
}

/// What a look-ahead stage hands the second prefetch stage.
pub(crate) trait Staged {
    fn lookahead(&self) -> Lookahead;
}

impl Staged for FrameAhead {
    fn lookahead(&self) -> Lookahead {
        self.la
    }
}

impl Staged for Prepared<'_> {
    fn lookahead(&self) -> Lookahead {
        self.la
    }
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
    drop_short_on_wire: bool,
    stats: FrameStats,
    /// Frames processed with the packet their look-ahead decoded.
    #[cfg(test)]
    prepared_used: u64,
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
            decode: DecodeOptions {
                verify_checksums: cfg.decode.verify_checksums || cfg.drop_bad_checksums,
                ..cfg.decode
            },
            drop_bad_checksums: cfg.drop_bad_checksums,
            drop_short_on_wire: cfg.drop_short_on_wire,
            stats: FrameStats::default(),
            #[cfg(test)]
            prepared_used: 0,
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
            zone: Zone::vlan(p.vlan),
            frame: place(frame),
        })
    }

    /// [`lookahead_frame`](Self::lookahead_frame) for a frame whose IP
    /// header starts at `ip_offset`, in `zone` (the VLANs and network of
    /// the key a dispatcher decoded).
    #[inline]
    pub fn lookahead_ip(&self, frame: &[u8], ip_offset: usize, zone: Zone) -> Option<FrameAhead> {
        let key = peek_key_ip(frame.get(ip_offset..)?, zone.vlan)?.with_zone(zone);
        Some(FrameAhead {
            la: self.reasm.prefetch_index(&key),
            ip_offset: u16::try_from(ip_offset).ok()?,
            zone,
            frame: place(frame),
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
        lookahead: impl FnMut(&Self, usize) -> Option<FrameAhead>,
        process: impl FnMut(&mut Self, usize, Option<&FrameAhead>),
    ) {
        self.run_staged(n, lookahead, process);
    }

    /// [`run_ahead`](Self::run_ahead) for any look-ahead result.
    pub(crate) fn run_staged<A: Staged>(
        &mut self,
        n: usize,
        mut lookahead: impl FnMut(&Self, usize) -> Option<A>,
        mut process: impl FnMut(&mut Self, usize, Option<&A>),
    ) {
        if !self.reasm.prefetch_pays() {
            (0..n).for_each(|u| process(self, u, None));
            return;
        }
        const D: usize = PREFETCH_DISTANCE;
        let aside = self.reasm.prefetches_aside();
        // Frame t's look-ahead sits in slot t % 2D until it is processed, at
        // step t + 2D, which then hands the slot to frame t + 2D: so at
        // each step the frame due is processed before the new one looks
        // ahead.
        let mut ahead: [Option<A>; 2 * D] = std::array::from_fn(|_| None);
        for t in 0..n + 2 * D {
            if let Some(u) = t.checked_sub(2 * D).filter(|&u| u < n) {
                // Read in place: frame t takes the slot just below.
                process(self, u, ahead[u % (2 * D)].as_ref());
            }
            if t < n {
                ahead[t % (2 * D)] = lookahead(self, t);
            }
            if let Some(Some(a)) = t
                .checked_sub(D)
                .filter(|&u| u < n)
                .map(|u| &ahead[u % (2 * D)])
            {
                self.reasm.prefetch_conn(a.lookahead());
            }
            // Halfway from the connection's prefetch to its processing.
            if let Some(Some(a)) = t
                .checked_sub(D + D / 2)
                .filter(|&u| aside && u < n)
                .map(|u| &ahead[u % (2 * D)])
            {
                self.reasm.prefetch_aside(&a.lookahead());
            }
        }
    }

    /// The look-ahead stage of inline mode: decodes a TCP frame whole and
    /// starts loading its flow's index entry. `None` for any other frame
    /// (processing then decodes it again, and counts or defragments it).
    /// Measured against a header peek followed by a second decode at
    /// processing: the peek's instructions were the cost.
    #[inline]
    pub(crate) fn prepare_frame<'a>(
        &self,
        link: LinkType,
        frame: &'a [u8],
    ) -> Option<Prepared<'a>> {
        self.prepared(decode(link, frame, &self.decode), frame)
    }

    /// What the look-ahead keeps of `bytes` decoded: a TCP packet, with
    /// its flow's index entry on the way. Not one out of a tunnel whose
    /// header checksum is wrong: decoded again when its turn comes, it is
    /// judged there before its length ([`dropped_short`](Self::dropped_short)),
    /// and the prepared path needs no check of its own.
    #[inline]
    fn prepared<'a>(
        &self,
        decoded: Result<Decoded<'a>, DecodeError>,
        bytes: &'a [u8],
    ) -> Option<Prepared<'a>> {
        match decoded {
            Ok(Decoded::Tcp(packet)) if packet.tunnel_checksum_ok != Some(false) => {
                Some(Prepared {
                    la: self.reasm.prefetch_index(&packet.key),
                    packet,
                    bytes,
                })
            }
            _ => None,
        }
    }

    /// Processes a frame [`prepare_frame`](Self::prepare_frame) may have
    /// decoded; without a packet decoded from these very bytes, decodes it
    /// here.
    /// `hash`: the dispatch hash of a fanout worker's frame, for its
    /// segment (`None` inline).
    /// `whole`: the frame is as long as it was on the wire (see
    /// [`FrameStats::short_on_wire`]).
    /// Always inlined: the tunnel check in its decoding branch tipped the
    /// compiler into calling it, and an inline replay ran 1.9 % more
    /// instructions (callgrind).
    #[inline(always)]
    pub(crate) fn process_prepared(
        &mut self,
        link: LinkType,
        frame: &[u8],
        ts: Timestamp,
        hash: Option<u32>,
        whole: bool,
        prepared: Option<&Prepared<'_>>,
    ) {
        match prepared.and_then(|pr| pr.of(frame)) {
            Some((packet, la)) => self.prepared_segment(frame, packet, la, ts, hash, whole),
            None => {
                // As `process_frame`, keeping the hash.
                self.count_frame(frame);
                let decoded = decode(link, frame, &self.decode);
                if !self.dropped_short(&decoded, whole, ts) {
                    self.handle(decoded, ts, hash, None);
                }
            }
        }
    }

    /// [`prepare_frame`](Self::prepare_frame) for a worker: the frame's IP
    /// header starts at `ip_offset`.
    #[inline]
    pub(crate) fn prepare_ip<'a>(
        &self,
        frame: &'a [u8],
        ip_offset: usize,
        zone: Zone,
    ) -> Option<Prepared<'a>> {
        let ip = frame.get(ip_offset..)?;
        self.prepared(decode_ip_in(ip, zone, &self.decode), ip)
    }

    /// [`process_ip`](Self::process_ip) for a frame
    /// [`prepare_ip`](Self::prepare_ip) may have decoded.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn process_prepared_ip(
        &mut self,
        frame: &[u8],
        ip_offset: usize,
        zone: Zone,
        ts: Timestamp,
        hash: u32,
        whole: bool,
        prepared: Option<&Prepared<'_>>,
    ) {
        let ip = frame.get(ip_offset..).unwrap_or(&[]);
        match prepared.and_then(|pr| pr.of(ip)) {
            Some((packet, la)) => self.prepared_segment(frame, packet, la, ts, Some(hash), whole),
            None => self.ip_frame(frame, ip_offset, zone, ts, hash, whole, None),
        }
    }

    /// A frame whose look-ahead decoded it (`packet`, `la`).
    fn prepared_segment(
        &mut self,
        frame: &[u8],
        packet: &Packet<'_>,
        la: &Lookahead,
        ts: Timestamp,
        hash: Option<u32>,
        whole: bool,
    ) {
        #[cfg(test)]
        {
            self.prepared_used += 1;
        }
        self.count_frame(frame);
        if packet.payload_missing > 0 && whole && self.short_on_wire(ts) {
            return;
        }
        self.segment(packet, ts, hash, Some(la));
    }

    /// Frames processed with the packet their look-ahead decoded.
    #[cfg(test)]
    pub(crate) fn prepared_used(&self) -> u64 {
        self.prepared_used
    }

    /// Processes one captured frame (one the capture may have cut: an IP
    /// length beyond its end is taken as cut by the snap length, see
    /// [`process_frame_wire`](Self::process_frame_wire)).
    pub fn process_frame(&mut self, link: LinkType, frame: &[u8], ts: Timestamp) {
        self.process_frame_ahead(link, frame, ts, None);
    }

    /// Processes one captured frame that was `wire_len` bytes long on the
    /// wire: captured whole, an IP length beyond its end is a packet that
    /// short on the wire, which a host drops, and so is it here (counted in
    /// [`FrameStats::short_on_wire`]).
    pub fn process_frame_wire(
        &mut self,
        link: LinkType,
        frame: &[u8],
        wire_len: u32,
        ts: Timestamp,
    ) {
        self.frame_ahead(link, frame, ts, captured_whole(frame.len(), wire_len), None);
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
        self.frame_ahead(link, frame, ts, false, ahead);
    }

    /// [`process_frame_ahead`](Self::process_frame_ahead) for a frame
    /// that may be known to be `whole` (as long as on the wire).
    pub(crate) fn frame_ahead(
        &mut self,
        link: LinkType,
        frame: &[u8],
        ts: Timestamp,
        whole: bool,
        ahead: Option<&FrameAhead>,
    ) {
        self.count_frame(frame);
        if let Some(a) = ahead.filter(|a| a.frame == place(frame)) {
            // Decoding from the IP header the peek found gives what decoding
            // the whole frame gives (tested in weft-wire). A look-ahead of
            // another frame is not used: the same flow in another VLAN
            // would pass the key check, the key being made with the
            // look-ahead's VLANs. The key check still guards a buffer
            // refilled in place with another flow's frame.
            let ip = frame.get(usize::from(a.ip_offset)..).unwrap_or(&[]);
            if let Ok(Decoded::Tcp(p)) = decode_ip_in(ip, a.zone, &self.decode) {
                if p.key == *a.la.key() {
                    // The dispatch hash is informational; inline, nothing
                    // computed it.
                    if p.payload_missing > 0 && whole && self.short_on_wire(ts) {
                        return;
                    }
                    return self.segment(&p, ts, None, Some(&a.la));
                }
            }
        }
        let decoded = decode(link, frame, &self.decode);
        if !self.dropped_short(&decoded, whole, ts) {
            self.handle(decoded, ts, None, ahead.map(|a| &a.la));
        }
    }

    /// Processes a frame whose innermost IP header starts at `ip_offset`
    /// (the dispatcher found it) in `zone` (the VLANs and network of the
    /// dispatcher's key), with the flow hash already computed, and what the
    /// look-ahead found of it, if anything.
    pub fn process_ip(
        &mut self,
        frame: &[u8],
        ip_offset: usize,
        zone: Zone,
        ts: Timestamp,
        hash: u32,
        ahead: Option<&FrameAhead>,
    ) {
        self.ip_frame(frame, ip_offset, zone, ts, hash, false, ahead);
    }

    /// [`process_ip`](Self::process_ip) for a frame that may be known to
    /// be `whole` (as long as on the wire).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ip_frame(
        &mut self,
        frame: &[u8],
        ip_offset: usize,
        zone: Zone,
        ts: Timestamp,
        hash: u32,
        whole: bool,
        ahead: Option<&FrameAhead>,
    ) {
        self.count_frame(frame);
        let Some(ip) = frame.get(ip_offset..) else {
            self.stats.malformed += 1;
            return;
        };
        let decoded = decode_ip_in(ip, zone, &self.decode);
        if !self.dropped_short(&decoded, whole, ts) {
            self.handle(decoded, ts, Some(hash), ahead.map(|a| &a.la));
        }
    }

    /// Counts a frame that came in, whatever becomes of it.
    fn count_frame(&mut self, frame: &[u8]) {
        self.stats.frames += 1;
        self.stats.frame_bytes += frame.len() as u64;
    }

    /// Every frame moves packet time: a segment through the reassembler,
    /// any other (not TCP, undecodable, a fragment that completes nothing)
    /// here, so timers run on the pipeline's own frames as they run on a
    /// worker that its dispatcher's ticks reach.
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
                if f.checksum_ok == Some(false) && self.bad_checksum(ts) {
                    return;
                }
                // Expiry at the newest packet time seen, not this frame's
                // (older in a merged capture): a dispatcher's ticks expire
                // datagrams at the newest time, and a fragment must not
                // complete here a datagram they already let go.
                let whole = self.defrag.push(&f, ts.max(self.reasm.now()));
                self.stats.defrag = self.defrag.stats();
                if let Some(whole) = whole {
                    self.stats.defragmented += 1;
                    let zone = whole.zone();
                    match decode_ip_in(&whole.packet, zone, &self.decode) {
                        Ok(Decoded::Tcp(p)) if self.dropped_tunnel(&p, ts) => return,
                        Ok(Decoded::Tcp(p)) => return self.segment(&p, ts, None, None),
                        Ok(_) => self.stats.not_tcp += 1,
                        Err(e) => self.stats.count_error(e),
                    }
                }
                self.reasm.advance_time(ts);
            }
            Ok(Decoded::Other) => {
                self.stats.not_tcp += 1;
                self.advance_time(ts);
            }
            Err(e) => {
                self.stats.count_error(e);
                self.advance_time(ts);
            }
        }
    }

    fn segment(
        &mut self,
        p: &Packet<'_>,
        ts: Timestamp,
        hash: Option<u32>,
        la: Option<&Lookahead>,
    ) {
        if p.checksum_ok == Some(false) && self.bad_checksum(ts) {
            return;
        }
        self.stats.tcp_segments += 1;
        // Inline, nothing needs the dispatch hash: the table hashes on its own.
        let hash = hash.unwrap_or(0);
        self.reasm
            .process_ahead(&Segment::from_packet_hashed(p, ts, hash), la);
    }

    /// Whether `p` came out of a tunnel whose IPv4 header checksum is
    /// wrong and is dropped; counted either way. Before anything else of
    /// the segment, as its tunnel's end checks the header before anything
    /// sees the packet inside (and as a dispatcher checks it before its
    /// worker sees the inner packet).
    #[inline]
    fn dropped_tunnel(&mut self, p: &Packet<'_>, ts: Timestamp) -> bool {
        p.tunnel_checksum_ok == Some(false) && self.bad_tunnel_checksum(ts)
    }

    /// Whether `decoded`, from a frame recorded `whole`, is dropped out of
    /// a bad tunnel ([`dropped_tunnel`](Self::dropped_tunnel)), or short on
    /// the wire (a segment or fragment whose IP length promises more than
    /// the frame holds); counted either way (see
    /// [`short_on_wire`](Self::short_on_wire)).
    #[inline]
    fn dropped_short(
        &mut self,
        decoded: &Result<Decoded<'_>, DecodeError>,
        whole: bool,
        ts: Timestamp,
    ) -> bool {
        if let Ok(Decoded::Tcp(p)) = decoded {
            if self.dropped_tunnel(p, ts) {
                return true;
            }
        }
        let (missing, fragment) = match decoded {
            Ok(Decoded::Tcp(p)) if whole => (p.payload_missing, false),
            Ok(Decoded::Fragment(f)) if whole => (f.missing, true),
            _ => (0, false),
        };
        let dropped = missing > 0 && self.short_on_wire(ts);
        // Seen all the same, as a dispatcher counts it.
        self.stats.fragments += u64::from(dropped && fragment);
        dropped
    }

    /// Counts a segment or fragment with a bad checksum; true if it is
    /// dropped (`drop_bad_checksums`), its time then taken.
    #[cold]
    #[inline(never)]
    fn bad_checksum(&mut self, ts: Timestamp) -> bool {
        self.stats.bad_checksum += 1;
        self.drops_for_checksum(ts)
    }

    /// Counts a segment out of a tunnel with a bad checksum;
    /// true if it is dropped (`drop_bad_checksums`), its time then taken.
    #[cold]
    #[inline(never)]
    fn bad_tunnel_checksum(&mut self, ts: Timestamp) -> bool {
        self.stats.bad_tunnel_checksum += 1;
        self.drops_for_checksum(ts)
    }

    /// Whether a frame with a bad checksum (its own or its tunnel's) is
    /// dropped (`drop_bad_checksums`): counted, and its time taken, if so.
    fn drops_for_checksum(&mut self, ts: Timestamp) -> bool {
        if self.drop_bad_checksums {
            self.stats.bad_checksum_dropped += 1;
            self.advance_time(ts);
        }
        self.drop_bad_checksums
    }

    /// Counts a frame short on the wire (see [`FrameStats::short_on_wire`]);
    /// true if it is dropped (a host never holds it), its time then
    /// taken. Off the per-frame path.
    #[cold]
    #[inline(never)]
    fn short_on_wire(&mut self, ts: Timestamp) -> bool {
        self.stats.short_on_wire += 1;
        if self.drop_short_on_wire {
            self.advance_time(ts);
        }
        self.drop_short_on_wire
    }

    /// Moves packet time forward without a packet (timeouts, fragment expiry).
    pub fn advance_time(&mut self, now: Timestamp) {
        self.reasm.advance_time(now);
        if self.defrag.in_progress() > 0 {
            self.defrag.expire(now);
            self.stats.defrag = self.defrag.stats();
        }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use weft_reasm::{ConnInfo, Context, ScatterGather, Stream};

    /// Sums every delivered byte into the factory's total.
    #[derive(Default)]
    pub(crate) struct Summing(std::rc::Rc<std::cell::Cell<u64>>);

    pub(crate) struct Sum(std::rc::Rc<std::cell::Cell<u64>>);

    impl Stream for Sum {
        fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
            let s: u64 = sg.chunks().flatten().map(|&b| u64::from(b)).sum();
            self.0.set(self.0.get() + s + sg.len() as u64);
        }
    }

    impl StreamFactory for Summing {
        type Stream = Sum;
        fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Sum {
            Sum(self.0.clone())
        }
    }

    /// Frames of many flows, half of them behind VLAN tags (so their IP
    /// headers start at different offsets), with their times.
    pub(crate) fn frames() -> Vec<(Vec<u8>, Timestamp)> {
        let cfg = weft_gen::GenConfig {
            seed: 3,
            conns: 40,
            concurrent: 20,
            vlan_fraction: 0.5,
            reorder: 0.05,
            ..weft_gen::GenConfig::default()
        };
        let mut pcap = Vec::new();
        weft_gen::generate(&cfg, &mut pcap).unwrap();
        let mut cap = weft_capture::Capture::from_bytes(pcap, "t").unwrap();
        let mut out = Vec::new();
        while let Some(f) = cap.next_frame() {
            let f = f.unwrap();
            out.push((f.data.to_vec(), Timestamp(f.ts_nanos)));
        }
        out
    }

    pub(crate) fn pipeline(
        checksums: bool,
    ) -> (Pipeline<Summing>, std::rc::Rc<std::cell::Cell<u64>>) {
        let mut cfg = PipelineConfig::default();
        cfg.reasm.prefetch_min_bytes = 0;
        cfg.decode.verify_checksums = checksums;
        cfg.drop_bad_checksums = checksums;
        let f = Summing::default();
        let total = f.0.clone();
        (Pipeline::new(cfg, f), total)
    }

    /// Dropping bad checksums verifies them, even when verification was
    /// not asked for separately (it used to drop nothing then).
    #[test]
    fn dropping_bad_checksums_verifies_them() {
        let cfg = PipelineConfig {
            drop_bad_checksums: true,
            ..PipelineConfig::default()
        };
        assert!(!cfg.decode.verify_checksums);
        let mut p = Pipeline::new(cfg, Summing::default());
        let mut frames = frames();
        let damaged = frames
            .iter_mut()
            .step_by(7)
            .map(|(f, _)| *f.last_mut().unwrap() ^= 0x5a);
        assert!(damaged.count() > 0);
        for (f, ts) in &frames {
            p.process_frame(LinkType::Ethernet, f, *ts);
        }
        let st = p.frame_stats();
        assert!(st.bad_checksum_dropped > 0, "{st:?}");
        assert_eq!(st.bad_checksum, st.bad_checksum_dropped);
    }

    /// Processing a frame with its own decoded look-ahead, with another
    /// frame's, or with one decoded from a copy of its bytes (equal
    /// contents, another buffer) all come out as processing it plainly,
    /// and only a look-ahead of these very bytes is used. Through both
    /// entry points, the inline one (whole frames) and the workers' (from
    /// the IP header the dispatcher found); and with checksums verified and
    /// bad ones dropped (every seventh frame's last byte is flipped).
    #[test]
    fn a_prepared_frame_is_used_only_for_its_own_bytes() {
        let mut frames = frames();
        for (f, _) in frames.iter_mut().step_by(7) {
            *f.last_mut().unwrap() ^= 0x5a;
        }
        let link = LinkType::Ethernet;
        // Where the dispatcher would find each frame's IP header.
        let at =
            |f: &[u8]| peek_key_at(link, f).map(|k| (usize::from(k.ip_offset), Zone::vlan(k.vlan)));
        let tcp = frames
            .iter()
            .filter(|(f, _)| {
                matches!(
                    decode(link, f, &DecodeOptions::default()),
                    Ok(Decoded::Tcp(_))
                )
            })
            .count() as u64;
        for (workers_way, checksums) in [(false, false), (true, false), (false, true), (true, true)]
        {
            let (mut plain, plain_sum) = pipeline(checksums);
            for (f, ts) in &frames {
                match at(f) {
                    Some((ip, vlan)) if workers_way => plain.process_ip(f, ip, vlan, *ts, 0, None),
                    _ => plain.process_frame(link, f, *ts),
                }
            }
            plain.flush_all();
            assert!(plain_sum.get() > 0);
            assert_eq!(plain.frame_stats().bad_checksum > 0, checksums);
            for lag in [0, 7] {
                for copy in [false, true] {
                    let (mut p, sum) = pipeline(checksums);
                    for (n, (f, ts)) in frames.iter().enumerate() {
                        let other = &frames[(n + lag) % frames.len()].0;
                        let copied = other.clone();
                        let bytes = if copy { &copied } else { other };
                        match (at(f), at(bytes)) {
                            (Some((ip, vlan)), Some((o_ip, o_vlan))) if workers_way => {
                                let pr = p.prepare_ip(bytes, o_ip, o_vlan);
                                p.process_prepared_ip(f, ip, vlan, *ts, 0, false, pr.as_ref());
                            }
                            (Some((ip, vlan)), None) if workers_way => {
                                p.process_prepared_ip(f, ip, vlan, *ts, 0, false, None);
                            }
                            _ => {
                                let pr = p.prepare_frame(link, bytes);
                                p.process_prepared(link, f, *ts, None, false, pr.as_ref());
                            }
                        }
                    }
                    p.flush_all();
                    let what = format!(
                        "workers' way {workers_way}, checksums {checksums}, lag {lag}, copy {copy}"
                    );
                    assert_eq!(p.frame_stats(), plain.frame_stats(), "{what}");
                    assert_eq!(
                        p.reassembler().stats(),
                        plain.reassembler().stats(),
                        "{what}"
                    );
                    assert_eq!(sum.get(), plain_sum.get(), "{what}");
                    let own = lag == 0 && !copy;
                    assert_eq!(p.prepared_used, if own { tcp } else { 0 }, "{what}");
                }
            }
        }
    }
}
