//! The data path: trimming, in-order delivery, buffering, overlaps, holes.
//!
//! In-order payload is delivered straight from the frame. Out-of-order
//! payload is copied into pages; the overlap policy is applied where new
//! bytes land on buffered ones. When the hole before buffered data closes,
//! the segment that closed it and every contiguous piece go out in one
//! [`ScatterGather`].

use weft_wire::{Dir, Timestamp};

use crate::config::Config;
use crate::half::{Aside, Half, Piece};
use crate::policy::OverlapPolicy;
use crate::pool::PagePool;
use crate::sg::{take_byte, Info, PieceBytes, ScatterGather, SgStats, Span, Src};
use crate::stats::{DropReason, Stats};
use crate::stream::{direction_of, Cause, Context, Direction, Event, Stream};

/// Index of a wire direction in `Conn::halves`.
pub(crate) fn di(d: Dir) -> usize {
    match d {
        Dir::LoToHi => 0,
        Dir::HiToLo => 1,
    }
}

/// A tracked connection: its handler and both directions.
#[derive(Debug)]
pub(crate) struct Conn<S, Pg> {
    /// The wire direction in which the client sends. The rest of the
    /// [`ConnInfo`](crate::ConnInfo) the factory saw is not kept: the key is in the table's
    /// slot, and a smaller record means fewer cache lines per packet.
    pub client_dir: Dir,
    pub stream: S,
    pub halves: [Half<Pg>; 2],
    /// How overlaps of each direction's data are resolved (by wire
    /// direction): its receiver's policy ([`Config::policy_for`]). Beside
    /// the flag, not in the halves: there it cost the record a cache line
    /// in 20 (336 bytes instead of 320).
    pub policies: [OverlapPolicy; 2],
    /// `complete` was called; the connection lingers only to absorb strays.
    pub closed: bool,
}

impl<S, Pg> Conn<S, Pg> {
    /// Client/server direction of wire direction `d`.
    pub fn direction(&self, d: Dir) -> Direction {
        direction_of(self.client_dir, d)
    }

    /// Direction `d` taken apart: its client/server direction, the stream
    /// and the half, borrowed together.
    pub fn split(&mut self, d: Dir) -> (Direction, &mut S, &mut Half<Pg>) {
        let direction = direction_of(self.client_dir, d);
        (direction, &mut self.stream, &mut self.halves[di(d)])
    }

    pub fn pages(&self) -> usize {
        self.halves[0].piece_count() + self.halves[1].piece_count()
    }

    /// Time of the oldest buffered piece, if any.
    pub fn oldest_ts(&mut self) -> Option<Timestamp> {
        self.halves
            .iter_mut()
            .filter_map(Half::oldest_piece_ts)
            .min()
    }

    /// The direction holding the oldest buffered piece.
    pub fn oldest_dir(&mut self) -> Option<Dir> {
        let a = self.halves[0].oldest_piece_ts();
        let b = self.halves[1].oldest_piece_ts();
        match (a, b) {
            (Some(x), Some(y)) if y < x => Some(Dir::HiToLo),
            (Some(_), _) => Some(Dir::LoToHi),
            (None, Some(_)) => Some(Dir::HiToLo),
            (None, None) => None,
        }
    }
}

/// Spare capacity a half's kept bytes may carry beyond twice their length.
const KEPT_SLACK: usize = 4096;

/// What became of a segment's payload.
#[derive(Clone, Copy)]
pub(crate) enum Outcome<'a> {
    /// Delivered, buffered, or counted as duplicate or dropped.
    Done,
    /// Buffering needs this many more pages than the limits allow. The
    /// data is what is left to place once the parts already counted
    /// (before the stream, duplicates, past the FIN) are cut off: offer
    /// that again once there is room, so nothing is counted twice.
    NeedRoom(usize, Data<'a>),
}

/// Everything of a reassembler except its connections.
#[derive(Debug)]
pub(crate) struct Core<P: PagePool> {
    /// [`Config::depth`], `u64::MAX` for none.
    depth: u64,
    pub cfg: Config,
    pub pool: P,
    pub stats: Stats,
    spans: Vec<Span>,
    kept_scratch: Vec<u8>,
    /// Bytes allocated for kept bytes and recent bytes (the
    /// retransmission check's) across all halves (their vectors'
    /// capacities): what the memcap counts for them.
    kept_alloc: usize,
    /// Pieces taken out of a queue for the delivery being built.
    delivering: Vec<Piece<P::Page>>,
    /// Overlapped ranges of the segment being buffered.
    covered: Vec<(u64, u64)>,
    /// Bytes allocated for recent bytes across all halves (part of
    /// `kept_alloc`): at most half the memcap.
    recent_alloc: usize,
    /// Kept bytes moved to drop a head before them.
    #[cfg(test)]
    pub kept_moved: u64,
}

/// A segment's payload with its absolute bounds.
#[derive(Clone, Copy)]
pub(crate) struct Data<'a> {
    /// Offset of `bytes[0]` (may be negative before trimming).
    pub start: i64,
    pub bytes: &'a [u8],
    pub ts: Timestamp,
    /// The whole segment's payload, `[start, end)` clamped at 0: what the
    /// overlap policies judge, however much of it is left to place.
    pub bounds: (u64, u64),
}

impl<P: PagePool> Core<P> {
    pub fn new(cfg: Config, pool: P) -> Core<P> {
        Core {
            depth: if cfg.depth == 0 { u64::MAX } else { cfg.depth },
            cfg,
            pool,
            stats: Stats::default(),
            spans: Vec::new(),
            kept_scratch: Vec::new(),
            kept_alloc: 0,
            recent_alloc: 0,
            delivering: Vec::new(),
            covered: Vec::new(),
            #[cfg(test)]
            kept_moved: 0,
        }
    }

    /// Where direction `h` stops taking bytes: the depth, or where its
    /// handler stopped it (`u64::MAX`: nowhere).
    #[inline]
    pub fn stop_of(&self, h: &Half<P::Page>) -> u64 {
        self.depth.min(h.stopped_at())
    }

    /// [`Self::kept_alloc`].
    #[cfg(test)]
    pub fn aside_alloc(&self) -> usize {
        self.kept_alloc
    }

    /// A new connection's half: with its box, where the retransmission
    /// check is on (see [`Aside::checks`]).
    pub(crate) fn half(&self) -> Half<P::Page> {
        let mut h = Half::default();
        if self.cfg.retransmit_check != 0 {
            h.aside = Some(Box::new(Aside::checking()));
        }
        h
    }

    pub(crate) fn drop_bytes<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        reason: DropReason,
        bytes: u64,
        ctx: &Context,
    ) {
        if bytes == 0 {
            return;
        }
        self.stats.dropped[reason.index()] += bytes;
        if reason == DropReason::Stopped {
            // The handler, or the depth, asked for none of these: no event
            // per segment of what may be a long download.
            return;
        }
        let ev = Event::Dropped {
            dir: conn.direction(d),
            reason,
            bytes: bytes.min(u32::MAX as u64) as u32,
        };
        conn.stream.event(&ev, ctx);
    }

    /// Pages a payload of `len` bytes may need.
    fn pages_for(&self, len: usize) -> usize {
        len.div_ceil(self.pool.page_size())
    }

    /// Pages that buffering `[s, e)` in `h` takes: each stretch not already
    /// held gets pages of its own (as [`Core::buffer`] copies them), so a
    /// segment laid over many small pieces needs a page per gap between
    /// them, not its length in pages. O(log n + pieces overlapped), the
    /// walk buffering does anyway.
    /// `lo` is `h.overlap_start(s)`.
    /// Also says whether any held piece lies over `[s, e)` (every piece
    /// the walk meets does), so buffering can skip its own walk when none
    /// does: most out-of-order segments overlap nothing, and a hostile
    /// order paid for each walk in tree descents.
    fn pages_to_buffer(&self, h: &Half<P::Page>, lo: u64, s: u64, e: u64) -> (usize, bool) {
        let mut cursor = s;
        let mut pages = 0;
        let mut overlaps = false;
        for p in h.pieces_in(lo..e) {
            overlaps = true;
            if p.start > cursor {
                pages += self.pages_for((p.start.min(e) - cursor) as usize);
            }
            cursor = cursor.max(p.end());
        }
        if cursor < e {
            pages += self.pages_for((e - cursor) as usize);
        }
        (pages, overlaps)
    }

    /// Whether `extra` more pages fit every limit for this connection.
    pub fn room_for<S>(&self, conn: &Conn<S, P::Page>, extra: usize) -> (bool, bool) {
        let c = &self.cfg;
        let per_conn = c.max_pages_per_conn == 0 || conn.pages() + extra <= c.max_pages_per_conn;
        let in_use = self.pool.in_use() + extra;
        let bytes = in_use * self.pool.page_size() + self.kept_alloc;
        let global =
            (c.max_pages == 0 || in_use <= c.max_pages) && (c.memcap == 0 || bytes <= c.memcap);
        (per_conn, global)
    }

    /// Handles the payload of one segment of direction `d`.
    pub fn data<'a, S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        data: Data<'a>,
        ctx: &Context,
    ) -> Outcome<'a> {
        let len = data.bytes.len() as i64;
        let mut s = data.start;
        let mut bytes = data.bytes;
        if s < 0 {
            let cut = (-s).min(len);
            self.drop_bytes(conn, d, DropReason::BeforeStart, cut as u64, ctx);
            bytes = &bytes[cut as usize..];
            s = 0;
        }
        let h = &conn.halves[di(d)];
        let next = h.next as i64;
        let stop = self.stop_of(h);
        if s < next {
            let cut = (next - s).min(bytes.len() as i64);
            // Behind `next` but past the stop: bytes a stopped half passed
            // over following its sender, stopped like the others.
            let past = ((s + cut) as u64).saturating_sub(stop.max(s as u64)) as i64;
            let (dup, late) = h.split_late(s as u64, (s + cut - past) as u64);
            self.stats.duplicate_bytes += dup;
            if self.cfg.retransmit_check != 0 && cut > past {
                // One byte just behind `next`, the whole segment: shaped
                // as a keep-alive probe.
                let probe = data.bounds.1 - data.bounds.0 == 1 && s == next - 1;
                let old = (s as u64, &bytes[..(cut - past) as usize]);
                self.recheck(conn, d, old, dup, (probe, data.ts), ctx);
            }
            self.drop_bytes(conn, d, DropReason::AfterSkip, late, ctx);
            self.drop_bytes(conn, d, DropReason::Stopped, past as u64, ctx);
            bytes = &bytes[cut as usize..];
            s = next;
        }
        let h = &conn.halves[di(d)];
        let mut end = s + bytes.len() as i64;
        if let Some(fin) = h.fin() {
            let fin = fin as i64;
            if end > fin {
                let cut = (end - fin.max(s)) as usize;
                self.drop_bytes(conn, d, DropReason::AfterClose, cut as u64, ctx);
                bytes = &bytes[..bytes.len() - cut];
                end = s + bytes.len() as i64;
            }
        }
        let mut beyond = None;
        if end as u64 > stop {
            // Past the depth, or where the handler stopped: dropped as they
            // come, never buffered.
            let cut = (end as u64 - stop.max(s as u64)) as usize;
            self.drop_bytes(conn, d, DropReason::Stopped, cut as u64, ctx);
            bytes = &bytes[..bytes.len() - cut];
            beyond = Some(end as u64);
        }
        if bytes.is_empty() {
            if let Some(to) = beyond {
                self.follow(conn, d, stop, to, ctx);
            }
            return Outcome::Done;
        }
        let h = &conn.halves[di(d)];
        if h.closed {
            self.drop_bytes(conn, d, DropReason::AfterClose, bytes.len() as u64, ctx);
            return Outcome::Done;
        }
        let s = s as u64;
        let bounds = data.bounds;
        if s == h.next && !h.syn_hold {
            self.deliver(conn, d, Some((s, bytes, bounds)), data.ts, ctx);
            if let Some(to) = beyond {
                self.follow(conn, d, stop, to, ctx);
            }
            return Outcome::Done;
        }
        if s - h.next > self.cfg.max_window as u64 {
            self.drop_bytes(conn, d, DropReason::OutOfWindow, bytes.len() as u64, ctx);
            return Outcome::Done;
        }
        let _ = end;
        let lo = h.overlap_start(s);
        let (need, overlaps) = self.pages_to_buffer(h, lo, s, s + bytes.len() as u64);
        match self.room_for(conn, need) {
            (true, true) => {
                self.stats.out_of_order_segments += 1;
                self.buffer(conn, d, (lo, s, overlaps), bytes, bounds, data.ts, ctx);
                Outcome::Done
            }
            _ => Outcome::NeedRoom(
                need,
                Data {
                    start: s as i64,
                    bytes,
                    ..data
                },
            ),
        }
    }

    /// A half whose delivery reached where it stops (`stop`) follows its
    /// sender: `next` moves on to `to`, the end of the bytes just dropped
    /// past the stop, so that its RST, FIN and acknowledgments are judged
    /// where the sender is, as before the stop; the stream is told the
    /// bytes passed over as its next delivery's skip, no gap. A FIN this
    /// reaches closes the half, as one reached by delivery does.
    #[cold]
    fn follow<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        stop: u64,
        to: u64,
        ctx: &Context,
    ) {
        let h = &mut conn.halves[di(d)];
        if h.closed || h.next < stop || to <= h.next {
            return;
        }
        h.pending_skip += to - h.next;
        h.next = to;
        h.settle_pending_fin(to);
        if h.fin() == Some(to) {
            self.deliver(conn, d, None, ctx.ts, ctx);
        }
    }

    /// The FIN of direction `d` sits at `fin`: bytes waiting at or past it
    /// can never be delivered. They are dropped now, counted as
    /// [`DropReason::AfterClose`] (as the same bytes arriving after the
    /// FIN are), and their pages go back: delivering them, as a flush
    /// would, let bytes sent before a FIN but placed after it reach the
    /// stream, depending on arrival order alone. A receiver purges its
    /// out-of-order queue on FIN too.
    pub fn drop_past_fin<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        fin: u64,
        ctx: &Context,
    ) {
        let (tail, cut) = conn.halves[di(d)].cut_from(fin);
        self.drop_cut(conn, d, tail, cut, DropReason::AfterClose, ctx);
    }

    /// Drops `pieces` taken out of direction `d`, and `cut` more bytes cut
    /// off a piece that stays, counted as `reason`; returns their pages.
    fn drop_cut<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        pieces: Vec<Piece<P::Page>>,
        cut: u64,
        reason: DropReason,
        ctx: &Context,
    ) {
        let mut n = cut;
        for p in pieces {
            n += u64::from(p.len);
            self.pool.free(p.page);
        }
        self.stats.buffered_bytes -= n;
        self.note_pages();
        self.drop_bytes(conn, d, reason, n, ctx);
    }

    /// Drops the waiting bytes of direction `d` in `[from, to)` (the part
    /// of its SYN's data the peer did not take, and what arrived over it),
    /// counted as [`DropReason::SynRefused`], and returns their pages;
    /// waiting bytes outside it (data the capture showed before the
    /// acknowledgment) wait on.
    pub fn drop_held_syn<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        (from, to): (u64, u64),
        ctx: &Context,
    ) {
        let h = &mut conn.halves[di(d)];
        let (tail, cut_at_to) = h.cut_from(to);
        let (middle, cut_at_from) = h.cut_from(from);
        for p in tail {
            h.insert_piece(p);
        }
        let cut = cut_at_to + cut_at_from;
        self.drop_cut(conn, d, middle, cut, DropReason::SynRefused, ctx);
    }

    /// Whether connection `conn`'s pages are less than a quarter full:
    /// most of what it holds is page, not data (pieces of small
    /// segments). A full-size segment fills about 70 % of its page; a
    /// flood of one-byte segments, 1/2048.
    pub fn sparse<S>(&self, conn: &Conn<S, P::Page>) -> bool {
        let held = conn.halves[0].held_bytes() + conn.halves[1].held_bytes();
        let room = conn.pages() as u64 * self.pool.page_size() as u64;
        held * 4 < room
    }

    /// Collapses direction `d`'s runs of contiguous pieces
    /// ([`Half::collapse`]) when enough came since the last time; returns
    /// how many pages went back. Only under the policies that resolve
    /// overlaps without segment bounds (first and last copy wins: a
    /// merged piece's union of bounds would change what the others
    /// decide, so the bytes kept would depend on the reassembler's
    /// memory), and never while a FIN waits ahead (the FIN rules read the
    /// bounds and stop delivery at piece edges).
    pub fn collapse<S>(&mut self, conn: &mut Conn<S, P::Page>, d: Dir) -> usize {
        let bounds_free = matches!(
            conn.policies[di(d)],
            OverlapPolicy::First | OverlapPolicy::Last
        );
        let h = &mut conn.halves[di(d)];
        if !bounds_free || h.pending_fin().is_some() || !h.collapse_due() {
            return 0;
        }
        let emptied = h.collapse(self.pool.page_size());
        let n = emptied.len();
        for page in emptied {
            self.pool.free(page);
        }
        self.note_pages();
        n
    }

    /// Prunes direction `d`'s farthest waiting pieces, those that start at
    /// or past `at`, at most `most` of them, and a pending FIN among them
    /// or past them all (never what the receiver acknowledged), as a
    /// receiver prunes its out-of-order queue from the far end down to the
    /// segment it makes room for; counted as
    /// [`DropReason::Pruned`]. Returns how many pieces went.
    pub fn prune<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        at: u64,
        most: usize,
        ctx: &Context,
    ) -> usize {
        let h = &mut conn.halves[di(d)];
        // Bytes the receiver acknowledged reached it: never pruned.
        let at = at.max(h.acked_hole).max(h.acked_to);
        let tail = h.last_piece_end().unwrap_or(0);
        let pieces = h.take_last_pieces(at, most);
        let n = pieces.len();
        // A FIN ahead goes with its segment, when that starts at or past
        // `at` and the pruning reached it, or first of all when it lies
        // past every piece (the queue's last segment).
        let low = pieces.last().map_or(u64::MAX, |p| p.start);
        if let Some((p, from)) = h.pending_fin_from() {
            if from >= at && (from >= low || p >= tail) {
                h.drop_pending_fin();
            }
        }
        if n > 0 {
            self.stats.memcap_prunes += 1;
            self.drop_cut(conn, d, pieces, 0, DropReason::Pruned, ctx);
        }
        n
    }

    /// Drops a payload that could not be given room.
    pub fn drop_for_memory<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        bytes: u64,
        ctx: &Context,
    ) {
        self.drop_bytes(conn, d, DropReason::MemoryLimit, bytes, ctx);
    }

    /// Copies out-of-order bytes `[s, s + bytes.len())` into pages, resolving
    /// overlaps with what is already buffered by the policy. `lo` is
    /// [`Half::overlap_start`] of `s`; `overlaps`, whether a held piece lies
    /// over the bytes ([`Self::pages_to_buffer`]).
    #[allow(clippy::too_many_arguments)]
    fn buffer<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        (lo, s, overlaps): (u64, u64, bool),
        bytes: &[u8],
        (ns, ne): (u64, u64),
        ts: Timestamp,
        ctx: &Context,
    ) {
        let e = s + bytes.len() as u64;
        let page_size = self.pool.page_size() as u64;
        let policy = conn.policies[di(d)];
        let (direction, stream, h) = conn.split(d);
        // Phase 1: resolve overlaps with held pieces (O(log n + k) with the
        // ordered map; a sorted array made hostile orders quadratic).
        let covered = &mut self.covered;
        covered.clear();
        let mut conflicts = Conflicts::default();
        // No held piece over the bytes: no walk (not even an empty one,
        // which still descends the tree).
        if overlaps {
            for p in h.pieces_in_mut(lo..e) {
                let (os, oe) = (s.max(p.start), e.min(p.end()));
                if os >= oe {
                    continue;
                }
                let new = &bytes[(os - s) as usize..(oe - s) as usize];
                let po = (os - p.start) as usize;
                let old = &mut p.page.as_mut()[po..po + new.len()];
                let new_wins = policy.new_wins(ns, ne, p.seg_start, p.seg_end);
                self.stats.overlap_bytes += new.len() as u64;
                let at = (direction, os);
                if conflicts.note(&mut self.stats, stream, ctx, at, new, old, new_wins) && new_wins
                {
                    old.copy_from_slice(new);
                }
                covered.push((os, oe));
            }
        }
        conflicts.flush(&mut self.stats, stream, ctx);
        // Phase 2: copy the uncovered parts into new pages.
        let mut cursor = s;
        let mut lost = 0u64;
        for (cs, ce) in covered.iter().copied().chain(std::iter::once((e, e))) {
            while cursor < cs {
                let len = (cs - cursor).min(page_size);
                let Some(mut page) = self.pool.alloc() else {
                    // The pool's own cap is below the configured limits.
                    lost += cs - cursor;
                    cursor = cs;
                    break;
                };
                let src = &bytes[(cursor - s) as usize..(cursor - s + len) as usize];
                page.as_mut()[..src.len()].copy_from_slice(src);
                let piece = Piece {
                    start: cursor,
                    len: len as u32,
                    seg_start: ns,
                    seg_end: ne,
                    ts,
                    page,
                };
                h.insert_piece(piece);
                self.stats.buffered_bytes += len;
                cursor += len;
            }
            cursor = cursor.max(ce);
        }
        self.note_pages();
        self.drop_bytes(conn, d, DropReason::MemoryLimit, lost, ctx);
    }

    fn note_pages(&mut self) {
        let n = self.pool.in_use() as u64;
        self.stats.pages_in_use = n;
        self.stats.pages_peak = self.stats.pages_peak.max(n);
    }

    /// Takes out of the queue every piece the delivery at `next` consumes:
    /// those the in-order segment (ending at `inline_end`) overlaps or
    /// touches, then every piece contiguous after them. They go to
    /// `self.delivering`, in order. Returns the offset after them.
    ///
    /// Inlined into [`deliver`](Self::deliver) even where two stream types
    /// instantiate it (the replay tool's, with and without PAWS): out of
    /// line, an inline replay ran 1.1 % more instructions (callgrind).
    #[inline(always)]
    fn take_run(&mut self, h: &mut Half<P::Page>, inline_end: Option<u64>) -> u64 {
        self.delivering.clear();
        let mut cursor = inline_end.unwrap_or(h.next);
        if !h.has_pieces() {
            // In order with nothing waiting: the common delivery.
            return cursor;
        }
        if inline_end.is_some() {
            while let Some(p) = h.take_first_piece_if(|p| p.start < cursor) {
                self.delivering.push(p);
            }
            if let Some(last) = self.delivering.last() {
                cursor = cursor.max(last.end());
            }
        }
        // A FIN pending where a piece ends holds there: the receiver takes
        // the segment that carried it before the data queued after it, and
        // the FIN ends the stream (see `Half::pending_fin`).
        let stop = h.pending_fin();
        while let Some(p) = h.take_first_piece_if(|p| p.start == cursor && stop != Some(cursor)) {
            cursor = p.end();
            self.delivering.push(p);
        }
        cursor
    }

    /// Builds the span list of a delivery starting at `next`: kept bytes,
    /// then the in-order segment (composed, by the overlap policy, with any
    /// buffered pieces it overlaps), then the contiguous pieces that follow.
    /// The pieces are those [`Self::take_run`] took out.
    fn compose<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        inline: Option<(u64, &[u8], (u64, u64))>,
        ts: Timestamp,
        ctx: &Context,
    ) -> SgStats {
        let policy = conn.policies[di(d)];
        let (direction, stream, h) = conn.split(d);
        let h = &*h;
        let spans = &mut self.spans;
        let pieces = &self.delivering;
        spans.clear();
        let mut st = SgStats::default();
        let (kept, kept_ts) = h.kept();
        if !kept.is_empty() {
            spans.push(Span {
                src: Src::Kept,
                off: 0,
                len: kept.len() as u32,
                ts: kept_ts,
            });
        }
        if let (Some((s, data, _)), true) = (inline, pieces.is_empty() && kept.is_empty()) {
            // In order, nothing waiting, nothing kept (most deliveries):
            // the segment is the one span, as the walk below would find.
            debug_assert_eq!(s, h.next);
            if !data.is_empty() {
                spans.push(Span {
                    src: Src::Frame,
                    off: 0,
                    len: data.len() as u32,
                    ts,
                });
                st.packets = 1;
            }
            st.chunks = spans.len();
            return st;
        }
        let mut cursor = h.next;
        let mut i = 0usize;
        let mut conflicts = Conflicts::default();
        if let Some((s, data, (ns, ne))) = inline {
            debug_assert_eq!(s, cursor);
            let e = s + data.len() as u64;
            while cursor < e {
                if i < pieces.len() && pieces[i].start <= cursor {
                    let p = &pieces[i];
                    let ov_end = e.min(p.end());
                    let new = &data[(cursor - s) as usize..(ov_end - s) as usize];
                    let po = (cursor - p.start) as usize;
                    let old = &p.page.as_ref()[po..po + new.len()];
                    let new_wins = policy.new_wins(ns, ne, p.seg_start, p.seg_end);
                    st.overlap_bytes += new.len();
                    conflicts.note(
                        &mut self.stats,
                        stream,
                        ctx,
                        (direction, cursor),
                        new,
                        old,
                        new_wins,
                    );
                    let span = if new_wins {
                        Span {
                            src: Src::Frame,
                            off: (cursor - s) as u32,
                            len: new.len() as u32,
                            ts,
                        }
                    } else {
                        Span {
                            src: Src::Piece(i as u32),
                            off: po as u32,
                            len: new.len() as u32,
                            ts: p.ts,
                        }
                    };
                    push_span(spans, span);
                    cursor = ov_end;
                    if p.end() > e {
                        let off = (e - p.start) as u32;
                        let span = Span {
                            src: Src::Piece(i as u32),
                            off,
                            len: p.len - off,
                            ts: p.ts,
                        };
                        push_span(spans, span);
                        st.queued_bytes += (p.len - off) as usize;
                        cursor = p.end();
                    }
                    st.queued_pieces += 1;
                    i += 1;
                } else {
                    let stop = if i < pieces.len() {
                        e.min(pieces[i].start)
                    } else {
                        e
                    };
                    let span = Span {
                        src: Src::Frame,
                        off: (cursor - s) as u32,
                        len: (stop - cursor) as u32,
                        ts,
                    };
                    push_span(spans, span);
                    st.packets += 1;
                    cursor = stop;
                }
            }
        }
        conflicts.flush(&mut self.stats, stream, ctx);
        for (j, p) in pieces.iter().enumerate().skip(i) {
            debug_assert_eq!(p.start, cursor);
            spans.push(Span {
                src: Src::Piece(j as u32),
                off: 0,
                len: p.len,
                ts: p.ts,
            });
            st.queued_pieces += 1;
            st.queued_bytes += p.len as usize;
            cursor = p.end();
        }
        st.chunks = spans.len();
        self.stats.overlap_bytes += st.overlap_bytes as u64;
        st
    }

    /// Of the `skip` bytes right before `next`, those past the depth or
    /// the stop: passed over, not missing (see `skip_to` and `follow`).
    /// Out of line: nearly every delivery skips nothing.
    #[inline]
    fn passed(&self, h: &Half<P::Page>, skip: u64) -> u64 {
        if skip == 0 {
            return 0;
        }
        self.passed_cold(h, skip)
    }

    #[cold]
    #[inline(never)]
    fn passed_cold(&self, h: &Half<P::Page>, skip: u64) -> u64 {
        h.next - (h.next - skip).max(self.stop_of(h).min(h.next))
    }

    /// A run taken up to `cursor` that went through a pending FIN inside a
    /// piece whose segment began after the FIN's: the receiver reads the
    /// FIN's segment first (it begins first), ends the stream there and
    /// purges what waits past it (see `Half::pending_fin_from`). The run
    /// is cut at the FIN, and the bytes past it in the pieces taken are
    /// dropped after close; returns where the run now ends.
    #[cold]
    fn end_at_fin_inside<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        cursor: u64,
        ctx: &Context,
    ) -> u64 {
        let Some((fin, from)) = conn.halves[di(d)].pending_fin_from() else {
            return cursor;
        };
        if cursor <= fin {
            return cursor;
        }
        let Some(k) = self
            .delivering
            .iter()
            .position(|p| p.start < fin && p.end() > fin && p.seg_start > from)
        else {
            return cursor;
        };
        let cut = self.delivering[k].end() - fin;
        self.delivering[k].len -= cut as u32;
        let past: Vec<_> = self.delivering.drain(k + 1..).collect();
        let mut n = cut;
        for p in past {
            n += u64::from(p.len);
            self.pool.free(p.page);
        }
        self.stats.buffered_bytes -= n;
        self.note_pages();
        self.drop_bytes(conn, d, DropReason::AfterClose, n, ctx);
        fin
    }

    /// Delivers everything now contiguous at `next` (see [`Self::compose`]),
    /// then frees what was consumed and keeps what the handler asked for.
    pub fn deliver<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        inline: Option<(u64, &[u8], (u64, u64))>,
        ts: Timestamp,
        ctx: &Context,
    ) {
        let inline_end = inline.map(|(s, b, _)| s + b.len() as u64);
        let mut cursor = self.take_run(&mut conn.halves[di(d)], inline_end);
        if conn.halves[di(d)].fin_seen() {
            cursor = self.end_at_fin_inside(conn, d, cursor, ctx);
        }
        let st = self.compose(conn, d, inline, ts, ctx);
        let frame: &[u8] = inline.map(|(_, b, _)| b).unwrap_or(&[]);
        let urgent = if conn.halves[di(d)].aside.is_some() {
            self.aside_work(conn, d, cursor, frame, ctx)
        } else {
            false
        };
        let h = &mut conn.halves[di(d)];
        let settled = h.settle_pending_fin(cursor);
        let fin_reached = h.fin().is_some_and(|f| cursor >= f);
        let skip = h.pending_skip;
        // Nothing new, nothing skipped and no end: no delivery. (A half
        // being closed gets its end even with nothing else to say.)
        if cursor == h.next && skip == 0 && !fin_reached && !h.closed {
            return;
        }
        let kept = h.kept().0;
        let kept_len = kept.len();
        let info = Info {
            dir: direction_of(conn.client_dir, d),
            wire_dir: d,
            start: !h.started,
            end: fin_reached || h.closed,
            skip,
            passed: self.passed(h, skip),
            offset: h.next,
            urgent: 0,
        };
        let total = kept_len + (cursor - h.next) as usize;
        let mut sg = ScatterGather {
            kept,
            frame,
            pieces: &self.delivering,
            spans: &self.spans,
            len: total,
            kept_len,
            info,
            stats: st,
            keep: None,
            stop: false,
        };
        if urgent {
            // Set here, not above: threaded through the delivery the
            // count cost every delivery instructions (0.3 % of an inline
            // replay's, callgrind).
            sg.len -= 1;
            sg.info.urgent = 1;
            sg.stats.chunks = self.spans.len();
            sg.stats.packets = self.spans.iter().filter(|s| s.src == Src::Frame).count();
        }
        conn.stream.reassembled(&mut sg, ctx);
        let stop = sg.stop;
        // Nothing kept before and nothing asked to keep (most deliveries):
        // no kept bytes to move, no allocation to account (a half that
        // keeps nothing holds no allocation).
        if sg.keep.is_some() || kept_len > 0 {
            let total = sg.len;
            let max = self.cfg.max_kept_bytes;
            let keep = match sg.keep {
                Some(k) if (max != 0 && total - k > max) || self.keep_over_memcap(h, total - k) => {
                    // Over a limit nothing is kept; the next delivery's
                    // `lengths` show it.
                    self.stats.kept_truncated_bytes += (total - k) as u64;
                    None
                }
                k => k,
            };
            // Keep what the handler asked for before the frame and pages go. A
            // keep that starts within the bytes kept before drops their head in
            // place (moving what stays) and appends the new bytes: a handler that
            // keeps all until a delimiter comes pays for the new bytes, not for
            // copying everything it kept again.
            let in_place = keep.filter(|&k| k <= kept_len && kept_len > 0);
            self.kept_scratch.clear();
            if let Some(k) = keep {
                let from = if in_place.is_some() { kept_len } else { k };
                let mut at = 0usize;
                for c in sg.chunks() {
                    let lo = from.saturating_sub(at).min(c.len());
                    self.kept_scratch.extend_from_slice(&c[lo..]);
                    at += c.len();
                }
            }
            self.store_kept(&mut conn.halves[di(d)], in_place, kept_len, ts);
        }
        let h = &mut conn.halves[di(d)];
        self.stats.deliveries += 1;
        self.stats.delivered_bytes = self.stats.delivered_bytes.wrapping_add(cursor - h.next);
        for p in self.delivering.drain(..) {
            self.stats.buffered_bytes -= p.len as u64;
            self.pool.free(p.page);
        }
        self.note_pages();
        h.next = cursor;
        h.pending_skip = 0;
        h.started = true;
        if fin_reached {
            h.closed = true;
        }
        if let Some(fin) = settled.filter(|_| h.has_pieces()) {
            // Reached, the FIN ends the stream: what waits past it never
            // comes (see `drop_past_fin`).
            self.drop_past_fin(conn, d, fin, ctx);
        }
        if stop {
            self.stop_half(conn, d, cursor, ctx);
        }
    }

    /// The handler stopped direction `d` after a delivery up to `at`:
    /// bytes from there on are dropped, those waiting now and those to
    /// come ([`ScatterGather::stop`](crate::ScatterGather::stop)).
    #[cold]
    fn stop_half<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        at: u64,
        ctx: &Context,
    ) {
        let h = &mut conn.halves[di(d)];
        if h.closed || h.stopped_at() <= at {
            return;
        }
        h.stop_at(at);
        if h.has_pieces() {
            let (tail, cut) = h.cut_from(at);
            self.drop_cut(conn, d, tail, cut, DropReason::Stopped, ctx);
        }
    }

    /// What a delivery up to `cursor` does where the half's box exists (a
    /// mark, bytes a handler kept, or the retransmission check on, which
    /// gives every half one): cold and out of line, so the deliveries of
    /// halves without (most, with the check off, the default) stay short.
    /// Holds the delivered bytes for the check (before the urgent byte
    /// leaves the spans: the check compares sequence space), then
    /// [`take_urgent`](Self::take_urgent).
    #[cold]
    #[inline(never)]
    fn aside_work<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        cursor: u64,
        frame: &[u8],
        ctx: &Context,
    ) -> bool {
        let h = &mut conn.halves[di(d)];
        if let Some(a) = h.aside.as_deref_mut().filter(|a| a.checks) {
            let cap = self.cfg.memcap;
            let room = if cap == 0 {
                usize::MAX
            } else {
                // Within the memcap, and within half of it for all halves'
                // recent bytes, so that they alone never take the room
                // out-of-order data waits in (they stay until their
                // connection closes).
                let own = a.recent_alloc();
                let all = cap.saturating_sub(self.held_but(own));
                all.min((cap / 2).saturating_sub(self.recent_alloc - own))
            };
            let pieces = &self.delivering;
            let chunks = self.spans.iter().filter_map(|s| {
                let (off, len) = (s.off as usize, s.len as usize);
                match s.src {
                    Src::Kept => None,
                    Src::Frame => Some(&frame[off..off + len]),
                    Src::Piece(i) => Some(&pieces.piece_bytes(i as usize)[off..off + len]),
                }
            });
            let max = self.cfg.retransmit_check;
            let grew = a.record(chunks, (h.next, cursor), max, room, ctx.ts);
            self.kept_alloc = self.kept_alloc.wrapping_add_signed(grew);
            self.recent_alloc = self.recent_alloc.wrapping_add_signed(grew);
        }
        self.take_urgent(conn, d, cursor, frame, ctx)
    }

    /// Compares `bytes`, a segment's copy of delivered data from offset
    /// `s` (`dup` of them not in a skipped hole), with the copy the stream
    /// delivered, where the half still holds it
    /// ([`Config::retransmit_check`]): copies that differ raise
    /// [`Event::OverlapConflict`], the delivered copy having won. A
    /// segment shaped as a keep-alive probe (`probe`, stamped `ts`) is one
    /// when the half delivered nothing for [`KEEPALIVE_IDLE_NS`]: it is
    /// not compared.
    #[cold]
    #[inline(never)]
    fn recheck<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        (s, bytes): (u64, &[u8]),
        dup: u64,
        (probe, ts): (bool, Timestamp),
        ctx: &Context,
    ) {
        let (direction, stream, h) = conn.split(d);
        let aside = h.aside.as_deref();
        if probe && aside.is_some_and(|a| ts.0.saturating_sub(a.recent_ts().0) >= KEEPALIVE_IDLE_NS)
        {
            return;
        }
        // A closed half gave its box back: nothing is held.
        let (lo, end) = aside.map_or((0, 0), Aside::recent_range);
        let (from, to) = (s.max(lo), (s + bytes.len() as u64).min(end));
        let holes = aside.map_or(&[][..], Aside::recent_holes);
        let mut compared = 0;
        // Each stretch between the holes held, compared alone: one event
        // for each that differs (the ring's two pieces where it wraps are
        // one stretch).
        let mut at = from;
        for (a, b) in holes.iter().copied().chain([(to, to)]) {
            if at >= to {
                break;
            }
            let a = a.min(to);
            if let (true, Some(held)) = (a > at, aside) {
                let mut p = (at - s) as usize;
                let mut differs = false;
                for old in held.recent_bytes(at, a) {
                    differs |= &bytes[p..p + old.len()] != old;
                    p += old.len();
                }
                if differs {
                    self.stats.overlap_conflicts += 1;
                    let e = Event::OverlapConflict {
                        dir: direction,
                        offset: at,
                        len: (a - at).min(u64::from(u32::MAX)) as u32,
                        new_won: false,
                    };
                    stream.event(&e, ctx);
                }
                compared += a - at;
            }
            at = at.max(b);
        }
        self.stats.rechecked_bytes += compared;
        self.stats.unchecked_bytes += dup - compared;
    }

    /// If a delivery up to `cursor` reached the urgent mark of direction
    /// `d` (or skipped over it, as a hole), the mark is spent, and a
    /// reached byte is taken out of the delivery's spans and announced.
    /// Returns whether a byte was taken. Called wherever the half's box
    /// exists (few deliveries reach a mark).
    fn take_urgent<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        cursor: u64,
        frame: &[u8],
        ctx: &Context,
    ) -> bool {
        let h = &mut conn.halves[di(d)];
        let Some(mark) = h.urgent_mark().filter(|&m| m < cursor) else {
            return false;
        };
        h.set_urgent_mark(None);
        if mark < h.next {
            return false;
        }
        let at = h.kept().0.len() + (mark - h.next) as usize;
        let byte = take_byte(&mut self.spans, at, frame, &self.delivering);
        self.stats.urgent_bytes += 1;
        // The delivery adds its whole range, this byte's too, as
        // delivered (wrapping: it may not have been added yet).
        self.stats.delivered_bytes = self.stats.delivered_bytes.wrapping_sub(1);
        let event = Event::Urgent {
            dir: direction_of(conn.client_dir, d),
            offset: mark,
            byte,
        };
        conn.stream.event(&event, ctx);
        true
    }

    /// Whether keeping `want` bytes in half `h` would take the memory the
    /// memcap counts past it: the pages left once this delivery's go back,
    /// every other half's kept bytes, the recent bytes of all (this one's
    /// too), and these. Without this test kept bytes were bounded only per
    /// half (`max_kept_bytes`), so handlers waiting for a delimiter on
    /// many connections could hold that much on each.
    fn keep_over_memcap(&self, h: &Half<P::Page>, want: usize) -> bool {
        let cap = self.cfg.memcap;
        if cap == 0 {
            return false;
        }
        let own = h.aside.as_deref().map_or(0, |kb| kb.bytes.capacity());
        self.held_but(own) + want > cap
    }

    /// Bytes the memcap counts once this delivery's pages go back, but
    /// `own` (part of the kept or recent bytes): the pages in use and
    /// every half's kept and recent bytes.
    fn held_but(&self, own: usize) -> usize {
        let pages = self.pool.in_use().saturating_sub(self.delivering.len());
        pages * self.pool.page_size() + self.kept_alloc - own
    }

    /// Makes the bytes gathered in `kept_scratch` the half's kept bytes:
    /// appended after the first `in_place` dropped, or in place of them;
    /// accounts their allocation and count (`kept_len` were kept before).
    fn store_kept(
        &mut self,
        h: &mut Half<P::Page>,
        in_place: Option<usize>,
        kept_len: usize,
        ts: Timestamp,
    ) {
        let last_ts = self.spans.last().map(|s| s.ts).unwrap_or(ts);
        let alloc_before = h.aside.as_deref().map_or(0, |kb| kb.bytes.capacity());
        if let (Some(k), Some(kb)) = (in_place, h.aside.as_deref_mut()) {
            kb.start += k;
            if kb.start > kb.bytes.len() - kb.start {
                #[cfg(test)]
                {
                    self.kept_moved += (kb.bytes.len() - kb.start) as u64;
                }
                kb.bytes.drain(..kb.start);
                kb.start = 0;
            }
            kb.bytes.extend_from_slice(&self.kept_scratch);
            kb.ts = last_ts;
        } else if !self.kept_scratch.is_empty() || h.aside.is_some() {
            // The box, once made, stays with the half; the two vectors
            // trade places, so keeping allocates only as buffers grow.
            let kb = h.aside.get_or_insert_with(Box::default);
            std::mem::swap(&mut kb.bytes, &mut self.kept_scratch);
            kb.start = 0;
            kb.ts = last_ts;
        }
        let mut alloc_after = 0;
        if let Some(kb) = h.aside.as_deref_mut() {
            // Vectors trade places between connections: keep each one's
            // allocation near what it holds (nothing when it holds nothing);
            // the memcap counts the allocations.
            if kb.bytes.len() == kb.start {
                kb.bytes = Vec::new();
                kb.start = 0;
            } else if kb.bytes.capacity() > 2 * kb.bytes.len() + KEPT_SLACK {
                kb.bytes.shrink_to(kb.bytes.len());
            }
            alloc_after = kb.bytes.capacity();
        }
        self.kept_alloc = self.kept_alloc + alloc_after - alloc_before;
        let kept = h.kept().0.len() as u64;
        self.stats.kept_bytes = self.stats.kept_bytes + kept - kept_len as u64;
    }

    /// Skips the hole before the first buffered piece and delivers the run
    /// that follows it. Returns `false` when nothing is buffered.
    pub fn flush_run<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        ctx: &Context,
    ) -> bool {
        let h = &mut conn.halves[di(d)];
        let Some(start) = h.first_piece_start() else {
            return false;
        };
        // Held SYN data goes out with the rest (a timeout or a limit).
        h.syn_hold = false;
        self.skip_to(h, start);
        self.deliver(conn, d, None, ctx.ts, ctx);
        true
    }

    /// Marks `[next, to)` as a skipped hole. The stream is told all of it
    /// (its next delivery's skip); the stats count as a gap only what lies
    /// before where the direction stopped (past it, bytes were dropped as
    /// they came, or never wanted).
    fn skip_to(&mut self, h: &mut Half<P::Page>, to: u64) -> u64 {
        if to <= h.next {
            return 0;
        }
        let gap = to.min(self.stop_of(h).max(h.next)) - h.next;
        h.pending_skip += to - h.next;
        h.skipped = (h.next, to);
        h.next = to;
        self.stats.gap_bytes += gap;
        self.stats.gaps += u64::from(gap > 0);
        if h.pending_fin().is_some_and(|p| to > p) {
            // Skipped past: the FIN is no longer where the stream ends.
            h.settle_pending_fin(to);
        }
        gap
    }

    /// Skips a hole of `n` bytes at `next` that is known to be lost (the
    /// capture cut the segment short).
    pub fn skip_lost(&mut self, h: &mut Half<P::Page>, n: u64) {
        let to = h.next + n;
        // Buffered data inside the range stays: it is delivered by the next run.
        let to = h.first_piece_start().map_or(to, |p| to.min(p));
        self.skip_to(h, to);
    }

    /// The receiver acknowledged up to `ack`: holes below it were lost by the
    /// capture. Skips them and delivers what follows, as far as data reaches.
    pub fn skip_acked<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        ack: u64,
        ctx: &Context,
    ) {
        loop {
            let h = &conn.halves[di(d)];
            match h.first_piece_start() {
                Some(start) if start <= ack && h.next < ack => {
                    self.stats.acked_gaps += 1;
                    self.flush_run(conn, d, ctx);
                }
                _ => return,
            }
        }
    }

    /// The FIN of direction `d` is known to have reached the receiver: skips
    /// whatever is still missing before it (no piece waits there any more
    /// once the runs up to it went out) and delivers the end.
    pub fn skip_to_fin<S: Stream>(&mut self, conn: &mut Conn<S, P::Page>, d: Dir, ctx: &Context) {
        let h = &mut conn.halves[di(d)];
        let Some(fin) = h.fin() else {
            return;
        };
        if h.closed {
            return;
        }
        if self.skip_to(h, fin) > 0 {
            self.stats.acked_gaps += 1;
        }
        self.deliver(conn, d, None, ctx.ts, ctx);
    }

    /// Delivers buffered runs until no piece older than `cutoff` remains.
    pub fn flush_older<S: Stream>(
        &mut self,
        conn: &mut Conn<S, P::Page>,
        d: Dir,
        cutoff: Timestamp,
        ctx: &Context,
    ) -> bool {
        // Runs go out from the first piece on until none older than
        // `cutoff` is left (with the younger pieces before the last of
        // them); the oldest is found in O(log n) each time.
        let mut flushed = false;
        while conn.halves[di(d)]
            .oldest_piece_ts()
            .is_some_and(|ts| ts < cutoff)
        {
            flushed |= self.flush_run(conn, d, ctx);
        }
        flushed
    }

    /// Delivers everything buffered (skipping holes) and ends the direction.
    pub fn close_half<S: Stream>(&mut self, conn: &mut Conn<S, P::Page>, d: Dir, ctx: &Context) {
        while self.flush_run(conn, d, ctx) {}
        let h = &mut conn.halves[di(d)];
        if let Some(p) = h.pending_fin().filter(|&p| p > h.next) {
            // Never reached nor passed: the furthest the sender said it
            // went, as a FIN seen in order would be.
            h.set_fin(p);
        }
        if !h.closed {
            // Bytes missing before a FIN were lost by the capture: they are
            // a skip like any other hole.
            let acked = h.acked_to.max(h.acked_hole);
            if let Some(fin) = h.fin() {
                self.skip_to(h, fin);
            } else if acked > h.next {
                // So were bytes the receiver acknowledged and the capture
                // never showed. The acknowledgment covers the sender's FIN
                // too if it sent one: when the other side closed with a
                // FIN and no RST ends the connection (a graceful close,
                // where both send one), the last acknowledged number is
                // taken for that FIN's. One sequence number is all this
                // can be wrong by, in corners: a half-close whose other
                // side's lost tail ends the capture counts one short; a
                // FIN lost and then a RST from the peer, one too many.
                let graceful =
                    ctx.cause != Cause::Rst && conn.halves[di(d.reverse())].fin().is_some();
                let h = &mut conn.halves[di(d)];
                let end = acked - u64::from(graceful);
                if end > h.next {
                    self.skip_to(h, end);
                }
            }
            let h = &mut conn.halves[di(d)];
            h.closed = true;
            // The end of a half that carried data is a delivery (with the
            // skip, if any); a half that never did gets none.
            if h.pending_skip > 0 || h.started {
                self.deliver(conn, d, None, ctx.ts, ctx);
            }
        }
        let h = &mut conn.halves[di(d)];
        self.stats.kept_bytes -= h.kept().0.len() as u64;
        self.kept_alloc -= h.aside.as_deref().map_or(0, Aside::alloc);
        self.recent_alloc -= h.aside.as_deref().map_or(0, Aside::recent_alloc);
        h.aside = None;
    }
}

/// How long (packet time) a direction must have delivered nothing for a
/// one-byte segment just behind its next byte to be taken as a
/// keep-alive probe, whose byte is any, and not compared with what was
/// delivered. Stacks probe after minutes or hours idle (Linux and Windows:
/// two hours by default); sooner, the byte is compared, so a decoy sent a
/// byte at a time, each followed by the genuine byte, is not passed off as
/// probes.
pub(crate) const KEEPALIVE_IDLE_NS: u64 = 10_000_000_000;

/// The overlaps of one segment whose copies differ, merged while they are
/// contiguous and the same copy won: a segment laid over many held pieces
/// raises one [`Event::OverlapConflict`] per differing stretch, not one per
/// piece (which let one segment fan out into thousands of events).
#[derive(Default)]
struct Conflicts(Option<(Direction, u64, u32, bool)>);

impl Conflicts {
    /// Compares the copies of the overlap at `(dir, offset)`; returns
    /// whether they differ (and notes the stretch if so).
    #[allow(clippy::too_many_arguments)]
    fn note<S: Stream>(
        &mut self,
        stats: &mut Stats,
        stream: &mut S,
        ctx: &Context,
        (dir, offset): (Direction, u64),
        new: &[u8],
        old: &[u8],
        new_won: bool,
    ) -> bool {
        if old == new {
            return false;
        }
        let len = new.len() as u32;
        match &mut self.0 {
            Some((d, o, l, w)) if *d == dir && *o + u64::from(*l) == offset && *w == new_won => {
                *l = l.saturating_add(len);
            }
            _ => {
                self.flush(stats, stream, ctx);
                self.0 = Some((dir, offset, len, new_won));
            }
        }
        true
    }

    /// Raises the event for the stretch noted last, if any.
    fn flush<S: Stream>(&mut self, stats: &mut Stats, stream: &mut S, ctx: &Context) {
        if let Some((dir, offset, len, new_won)) = self.0.take() {
            stats.overlap_conflicts += 1;
            let e = Event::OverlapConflict {
                dir,
                offset,
                len,
                new_won,
            };
            stream.event(&e, ctx);
        }
    }
}

/// Appends a span, merging it with the previous one when contiguous in the
/// same source.
fn push_span(spans: &mut Vec<Span>, s: Span) {
    if s.len == 0 {
        return;
    }
    if let Some(last) = spans.last_mut() {
        if last.src == s.src && last.off + last.len == s.off && last.src == Src::Frame {
            last.len += s.len;
            return;
        }
    }
    spans.push(s);
}
