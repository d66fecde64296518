//! One direction of a connection: where its stream stands and what waits.
//!
//! Sequence numbers are turned into absolute 64-bit stream offsets on
//! arrival (offset 0 is the first byte after the SYN, or the first byte seen
//! when picked up midstream). Everything after that is plain integer
//! arithmetic, so the 2^32 wrap cannot confuse ordering, overlaps or gaps.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::Range;

use weft_wire::{Seq, Timestamp};

use crate::sg::PieceBytes;
use crate::table::bound_stale;

/// A run of buffered out-of-order bytes in one page.
///
/// Invariant: `len <= page size`; the bytes of `[start, start + len)` are
/// `page[..len]`; `[seg_start, seg_end)` is the segment the bytes came from
/// (the overlap policies decide by segment bounds, not piece bounds), or
/// the union of those of contiguous pieces packed into one
/// ([`Half::collapse`]).
#[derive(Debug)]
pub(crate) struct Piece<Pg> {
    pub start: u64,
    pub len: u32,
    pub seg_start: u64,
    pub seg_end: u64,
    pub ts: Timestamp,
    pub page: Pg,
}

impl<Pg> Piece<Pg> {
    pub fn end(&self) -> u64 {
        self.start + self.len as u64
    }
}

impl<Pg: AsRef<[u8]>> PieceBytes for Vec<Piece<Pg>> {
    fn piece_bytes(&self, idx: usize) -> &[u8] {
        let p = &self[idx];
        &p.page.as_ref()[..p.len as usize]
    }
}

/// What few halves need, boxed on first use: the bytes a handler kept
/// ([`ScatterGather::keep_from`](crate::ScatterGather::keep_from)), a
/// pending urgent mark, and the delivered bytes the retransmission check
/// keeps (every half has the box while that check is on).
#[derive(Debug)]
pub(crate) struct Aside {
    /// The kept bytes are `bytes[start..]`: a keep that drops the head of
    /// what was kept moves `start` and leaves the rest in place until the
    /// dropped head is as long as it (then it moves once), so dropping a
    /// little at a time from much kept costs the bytes dropped, not the
    /// bytes kept, each time.
    pub bytes: Vec<u8>,
    pub start: usize,
    /// Timestamp of the newest kept byte.
    pub ts: Timestamp,
    /// Offset of the byte an urgent pointer marked, not reached yet
    /// ([`NO_URGENT`] if none; see [`Half::urgent_mark`]).
    urgent: u64,
    /// The last bytes the stream delivered, for the retransmission check
    /// ([`Config::retransmit_check`](crate::Config::retransmit_check)): a
    /// ring holding the stream's offsets `[recent_end - held,
    /// recent_end)`, the byte at offset `o` in `recent[o % recent.len()]`,
    /// so each delivered byte is copied once. It grows by doubling up to
    /// the check's window as a direction delivers more. (Written with
    /// streaming stores past the cache, the replay of README's 1.1 GB trace
    /// with the check on took 1.14x the time of plain copies: the stores
    /// held the line buffers the packet path's prefetches need.)
    recent: Vec<u8>,
    held: usize,
    recent_end: u64,
    /// Packet time of the last delivery recorded.
    recent_ts: Timestamp,
    /// Holes the stream skipped within the recent bytes (see
    /// [`Aside::record`]).
    holes: Vec<(u64, u64)>,
    /// The box serves the retransmission check: it stays with the half.
    pub checks: bool,
    /// Where the stream handler stopped the direction
    /// ([`ScatterGather::stop`](crate::ScatterGather::stop)), [`NO_STOP`]
    /// until then: bytes from here on are dropped.
    stop_at: u64,
    /// Where the segment that carried the pending FIN began, when it
    /// carried data ([`NO_STOP`] otherwise: a bare FIN begins where it
    /// stands); see [`Half::pending_fin_from`].
    fin_from: u64,
}

/// [`Aside::stop_at`] of a direction not stopped.
pub(crate) const NO_STOP: u64 = u64::MAX;

impl Default for Aside {
    fn default() -> Aside {
        Aside {
            bytes: Vec::new(),
            start: 0,
            ts: Timestamp::default(),
            urgent: NO_URGENT,
            recent: Vec::new(),
            held: 0,
            recent_end: 0,
            recent_ts: Timestamp(0),
            holes: Vec::new(),
            checks: false,
            stop_at: NO_STOP,
            fin_from: NO_STOP,
        }
    }
}

impl Aside {
    /// The box of a half under the retransmission check.
    pub fn checking() -> Aside {
        Aside {
            checks: true,
            ..Aside::default()
        }
    }
    /// The stream offsets `[from, to)` the retransmission check holds.
    pub fn recent_range(&self) -> (u64, u64) {
        (self.recent_end - self.held as u64, self.recent_end)
    }

    /// The bytes held at offsets `[from, to)`, within
    /// [`recent_range`](Self::recent_range): in two pieces where the ring
    /// wraps.
    pub fn recent_bytes(&self, from: u64, to: u64) -> [&[u8]; 2] {
        let ring = &self.recent;
        let n = ring.len() as u64;
        if from >= to {
            return [&[], &[]];
        }
        let (a, len) = ((from % n) as usize, (to - from) as usize);
        let first = len.min(ring.len() - a);
        [&ring[a..a + first], &ring[..len - first]]
    }

    /// Bytes allocated for kept and recent bytes: what the memcap counts.
    pub fn alloc(&self) -> usize {
        self.bytes.capacity() + self.recent_alloc()
    }

    /// Bytes allocated for recent bytes: the ring, and the list of holes.
    pub fn recent_alloc(&self) -> usize {
        self.recent.capacity() + self.holes.capacity() * std::mem::size_of::<(u64, u64)>()
    }

    /// Packet time of the last delivery recorded.
    pub fn recent_ts(&self) -> Timestamp {
        self.recent_ts
    }

    /// Records the bytes `chunks` the stream delivered from offset `start`
    /// up to `end`, at packet time `ts`, keeping the last `max` offsets'
    /// worth. A hole the stream skipped since the last delivery (`start`
    /// past what is held) is held as a hole (never compared), so that what
    /// came before it stays; a hole of `max` or more lets go of what lies
    /// before it, and past [`MAX_HOLES`] holes the oldest goes with what
    /// lies before it. The ring grows (for delivered bytes, not for holes)
    /// only within `room` bytes of allocation; one that cannot be made
    /// holds nothing. Returns how the allocation changed.
    pub fn record<'c>(
        &mut self,
        chunks: impl Iterator<Item = &'c [u8]>,
        (start, end): (u64, u64),
        max: usize,
        room: usize,
        ts: Timestamp,
    ) -> isize {
        let before = self.recent_alloc() as isize;
        self.recent_ts = ts;
        if start != self.recent_end {
            let gap = start.saturating_sub(self.recent_end);
            let (lo, _) = self.recent_range();
            // Nothing but a hole held (holes side by side are one).
            let all_hole = self
                .holes
                .first()
                .is_some_and(|h| h.0 <= lo && h.1 == self.recent_end);
            if start < self.recent_end || self.held == 0 || all_hole || gap >= max as u64 {
                self.held = 0;
                self.holes.clear();
            } else {
                match self.holes.last_mut() {
                    Some(h) if h.1 == self.recent_end => h.1 = start,
                    _ => self.holes.push((self.recent_end, start)),
                }
            }
        }
        // Offsets the delivery adds: from the hole's start, if one is held.
        let base = if self.held == 0 {
            start
        } else {
            self.recent_end
        };
        let span = (end - base) as usize;
        // The ring grows for bytes delivered, not for holes (a few segments
        // skipping far ahead would otherwise grow every ring to its most):
        // holes only make older bytes go sooner.
        let (lo, held_end) = self.recent_range();
        let in_holes: u64 = self
            .holes
            .iter()
            .map(|h| h.1.min(held_end).saturating_sub(h.0.max(lo)))
            .sum();
        let want = (self.held - in_holes as usize + (end - start) as usize).min(max);
        let n = self.recent.len();
        if want > n {
            let grown = n
                .saturating_mul(2)
                .max(want)
                .max(MIN_RING)
                .min(max)
                .min(room);
            if grown > n {
                self.regrow(grown);
            } else if n == 0 {
                // No room at first: nothing held, nothing compared.
                self.held = 0;
                self.holes.clear();
                self.recent_end = end;
                return self.recent_alloc() as isize - before;
            }
        }
        let n = self.recent.len();
        // The last `n` offsets of the delivery are written where they go.
        let from = start.max(end.saturating_sub(n as u64));
        let mut at = start;
        for c in chunks {
            let c_end = at + c.len() as u64;
            if c_end > from {
                let skip = from.saturating_sub(at) as usize;
                self.write_at(at + skip as u64, &c[skip..]);
            }
            at = c_end;
        }
        self.held = (self.held + span).min(n);
        self.recent_end = end;
        // Holes before what is held go; past MAX_HOLES, the oldest and
        // what precedes it.
        let (lo, _) = self.recent_range();
        self.holes.retain(|h| h.1 > lo);
        if self.holes.len() > MAX_HOLES {
            self.held = (end - self.holes.remove(0).1) as usize;
        }
        self.recent_alloc() as isize - before
    }

    /// Writes `bytes` at stream offset `at` of the ring (at most its
    /// length), wrapping.
    fn write_at(&mut self, at: u64, bytes: &[u8]) {
        write_ring(&mut self.recent, at, bytes);
    }

    /// Moves the ring to one of `n` bytes, the bytes held (their offsets
    /// fixed) where they go in it.
    fn regrow(&mut self, n: usize) {
        let (lo, end) = self.recent_range();
        let mut ring = vec![0u8; n];
        let [x, y] = self.recent_bytes(lo, end);
        write_ring(&mut ring, lo, x);
        write_ring(&mut ring, lo + x.len() as u64, y);
        self.recent = ring;
    }

    /// The holes the stream skipped among the recent bytes, `[from, to)`
    /// in stream offsets, in order.
    pub fn recent_holes(&self) -> &[(u64, u64)] {
        &self.holes
    }
}

/// The smallest ring of recent bytes: a first delivery of a few bytes
/// does not allocate less.
const MIN_RING: usize = 64;

/// Writes `bytes` (at most `ring`'s length) at stream offset `at` of a
/// ring holding the byte at offset `o` in `ring[o % ring.len()]`.
fn write_ring(ring: &mut [u8], at: u64, bytes: &[u8]) {
    let n = ring.len();
    let a = (at % n as u64) as usize;
    let first = bytes.len().min(n - a);
    ring[a..a + first].copy_from_slice(&bytes[..first]);
    ring[..bytes.len() - first].copy_from_slice(&bytes[first..]);
}

/// Most holes the recent bytes of a half hold: past them, the oldest hole
/// goes with the bytes before it (each hole is a skip: a timeout, or an
/// acknowledgment past it), rather than the list of holes growing with
/// the bytes held.
pub(crate) const MAX_HOLES: usize = 8;

/// [`Aside::urgent`] without a mark.
const NO_URGENT: u64 = u64::MAX;

/// [`Half::fin_at`] before a FIN is seen. Stream offsets count bytes seen
/// in one direction, so they never come near it.
const NO_FIN: u64 = u64::MAX;

/// The bit of [`Half::fin_at`] that marks a FIN seen ahead of `next` and
/// not reached yet (see [`Half::pending_fin`]); no stream offset has it.
const FIN_PENDING: u64 = 1 << 63;

/// Out-of-order pieces of one direction, by offset and by arrival.
///
/// Invariant: `pieces` maps each piece's `start` to it, pieces do not
/// overlap, and every piece starts strictly after its half's `next`
/// (contiguous data is delivered at once, so the first piece always sits
/// behind a hole); there is at least one. `by_time` holds `(ts, start)` of
/// every piece, and entries of pieces delivered since (stale, known by no
/// piece at `start` with that time: a delivered offset never holds a piece
/// again): in all, at most twice as many entries as pieces plus a slack,
/// checked whenever a piece leaves.
#[derive(Debug)]
pub(crate) struct Waiting<Pg> {
    /// Out-of-order bytes waiting for the hole before them to close.
    pub pieces: BTreeMap<u64, Piece<Pg>>,
    /// The same pieces by arrival, least first, kept lazily: so the oldest
    /// and those past the flush timeout are found in O(log n). Scanning
    /// `pieces` instead cost O(n) a segment when a flood kept pieces
    /// expiring one by one, or kept the page cap hit (2.1 M segments of an
    /// out-of-order flood at the default limits took 114 s). A heap whose
    /// entries go stale on delivery, not an ordered set that removes each:
    /// pieces mostly come in time order, so a push rarely moves, and
    /// delivering costs nothing here; the set's insert and remove per
    /// piece had cost hostile segment orders a third of their speed.
    by_time: BinaryHeap<Reverse<(Timestamp, u64)>>,
    /// Bytes the pieces hold, together: how full their pages are.
    bytes: u64,
    /// Pieces inserted, and that count at the last
    /// [`Half::collapse`]: a collapse waits for enough new pieces to be
    /// worth its pass over all of them.
    inserted: u64,
    collapsed_at: u64,
}

impl<Pg> Waiting<Pg> {
    /// Drops stale entries from the top, so the top is the oldest piece's.
    fn settle(&mut self) {
        while let Some(&entry) = self.by_time.peek() {
            if held(&self.pieces, entry) {
                break;
            }
            self.by_time.pop();
        }
    }
}

/// Whether an arrival entry is that of a piece `pieces` still hold (not
/// stale).
fn held<Pg>(
    pieces: &BTreeMap<u64, Piece<Pg>>,
    Reverse((ts, start)): Reverse<(Timestamp, u64)>,
) -> bool {
    pieces.get(&start).is_some_and(|p| p.ts == ts)
}

/// State of one direction.
#[derive(Debug)]
pub(crate) struct Half<Pg> {
    /// Sequence number of stream offset 0, once known.
    pub base: Option<Seq>,
    /// Sequence number of the SYN, if one was seen.
    pub isn: Option<Seq>,
    /// Offset of the next byte to deliver.
    pub next: u64,
    /// Offset where the FIN sits, [`NO_FIN`] until one is seen (read it
    /// through [`Half::fin`]). Sentinels instead of `Option`s here and
    /// below keep both halves of a connection in fewer cache lines.
    fin_at: u64,
    /// No more data will be delivered (FIN reached, RST, or closed).
    pub closed: bool,
    /// A first delivery was made.
    pub started: bool,
    /// The SYN carried data, and no acknowledgment from the peer has said
    /// yet whether it took it: data at `next` waits, buffered, instead of
    /// being delivered (see [`DropReason::SynRefused`](crate::DropReason::SynRefused)).
    pub syn_hold: bool,
    /// The peer refused the SYN's data: a SYN sent again brings none.
    pub syn_refused: bool,
    /// Bytes of data the first SYN carried (what a refusal drops).
    pub syn_len: u32,
    /// Bytes skipped since the last delivery.
    pub pending_skip: u64,
    /// The most recent range `[a, b)` skipped as a hole (empty before the
    /// first): late data for it is counted as
    /// [`DropReason::AfterSkip`](crate::DropReason::AfterSkip).
    pub skipped: (u64, u64),
    /// The receiver acknowledged up to here, past a hole (0: no such ACK;
    /// an acknowledged hole ends past `next`, so never at 0): the hole is
    /// skipped when the sender's next segment does not fill it (one segment
    /// of grace absorbs a capture that shows the ACK before the data,
    /// renewed while each segment fills more of the hole from its front).
    pub acked_hole: u64,
    /// The furthest the receiver acknowledged while nothing waited and no
    /// FIN was known (0: never past `next`). Left alone during the
    /// connection (the capture may show an ACK before the data it covers);
    /// still past `next` at the close, it ends the half: those bytes were
    /// sent and received, and the capture lost them.
    pub acked_to: u64,
    /// The pieces waiting behind a hole: made with the first, dropped with
    /// the last, so `None` is "nothing waits" without a look behind the
    /// pointer. Most halves never hold a piece, and the two maps inline
    /// took 48 bytes of each half: the connection record was 80 bytes and
    /// more than a cache line larger.
    waiting: Option<Box<Waiting<Pg>>>,
    /// What the handler kept from its last delivery ([`Half::kept`]) and
    /// the urgent mark ([`Half::urgent_mark`]), boxed on first use: most
    /// halves need neither, and a pointer here instead of a vector, a time
    /// and an offset keeps the connection record at five cache lines.
    pub aside: Option<Box<Aside>>,
}

impl<Pg> Default for Half<Pg> {
    fn default() -> Self {
        Half {
            base: None,
            isn: None,
            next: 0,
            fin_at: NO_FIN,
            closed: false,
            started: false,
            syn_hold: false,
            syn_refused: false,
            syn_len: 0,
            pending_skip: 0,
            skipped: (0, 0),
            acked_hole: 0,
            acked_to: 0,
            waiting: None,
            aside: None,
        }
    }
}

impl<Pg> Half<Pg> {
    /// Stream offset of `seq` (negative: before the stream's first byte).
    pub fn offset_of(&self, seq: Seq) -> Option<i64> {
        let base = self.base?;
        let next_seq = base + self.next as u32;
        Some(self.next as i64 + (seq - next_seq) as i64)
    }

    /// Sequence number of the next expected byte.
    pub fn next_seq(&self) -> Option<Seq> {
        self.base.map(|b| b + self.next as u32)
    }

    /// The bytes kept from the last delivery (empty if none) and the time
    /// of the newest.
    pub fn kept(&self) -> (&[u8], Timestamp) {
        self.aside
            .as_deref()
            .map_or((&[], Timestamp::default()), |k| (&k.bytes[k.start..], k.ts))
    }

    /// Offset of the byte the current urgent pointer marks, while the
    /// stream has not reached it.
    #[inline]
    pub fn urgent_mark(&self) -> Option<u64> {
        self.aside
            .as_deref()
            .map(|a| a.urgent)
            .filter(|&u| u != NO_URGENT)
    }

    /// Marks the byte at `at` urgent (or clears the mark: `None`). A
    /// cleared mark gives back the box when it holds no kept bytes, so a
    /// peer's urgent pointers hold at most a mark's box per half, and only
    /// while the mark waits.
    pub fn set_urgent_mark(&mut self, at: Option<u64>) {
        match (at, self.aside.as_deref_mut()) {
            (Some(at), Some(a)) => a.urgent = at,
            (Some(at), None) => {
                self.aside = Some(Box::new(Aside {
                    urgent: at,
                    ..Aside::default()
                }))
            }
            (None, Some(a))
                if a.bytes.capacity() == 0
                    && !a.checks
                    && a.stop_at == NO_STOP
                    && a.fin_from == NO_STOP =>
            {
                self.aside = None
            }
            (None, Some(a)) => a.urgent = NO_URGENT,
            (None, None) => {}
        }
    }

    /// Where the stream handler stopped the direction ([`NO_STOP`] if it
    /// did not).
    #[inline]
    pub fn stopped_at(&self) -> u64 {
        self.aside.as_deref().map_or(NO_STOP, |a| a.stop_at)
    }

    /// The stream handler stopped the direction at `at` (its box keeps
    /// the place until the half closes).
    pub fn stop_at(&mut self, at: u64) {
        let a = self.aside.get_or_insert_with(Box::default);
        a.stop_at = a.stop_at.min(at);
    }

    /// Whether out-of-order pieces wait.
    #[inline]
    pub fn has_pieces(&self) -> bool {
        self.waiting.is_some()
    }

    /// Where the last waiting piece ends, if any waits.
    pub fn last_piece_end(&self) -> Option<u64> {
        let w = self.waiting.as_ref()?;
        w.pieces.last_key_value().map(|(_, p)| p.end())
    }

    /// How many pieces wait.
    pub fn piece_count(&self) -> usize {
        self.waiting.as_ref().map_or(0, |w| w.pieces.len())
    }

    /// The pieces that start in `range`, by offset.
    pub fn pieces_in(&self, range: Range<u64>) -> impl Iterator<Item = &Piece<Pg>> {
        let w = self.waiting.as_deref();
        w.into_iter()
            .flat_map(move |w| w.pieces.range(range.clone()).map(|(_, p)| p))
    }

    /// [`pieces_in`](Self::pieces_in), to change their bytes.
    pub fn pieces_in_mut(&mut self, range: Range<u64>) -> impl Iterator<Item = &mut Piece<Pg>> {
        let w = self.waiting.as_deref_mut();
        w.into_iter()
            .flat_map(move |w| w.pieces.range_mut(range.clone()).map(|(_, p)| p))
    }

    /// Bytes the waiting pieces hold, together.
    pub fn held_bytes(&self) -> u64 {
        self.waiting.as_ref().map_or(0, |w| w.bytes)
    }

    /// Where the first piece starts.
    pub fn first_piece_start(&self) -> Option<u64> {
        let w = self.waiting.as_deref()?;
        w.pieces.first_key_value().map(|(&start, _)| start)
    }

    /// When the piece that waits the longest came (O(log n) amortised:
    /// stale entries met on the way are dropped).
    pub fn oldest_piece_ts(&mut self) -> Option<Timestamp> {
        let w = self.waiting.as_deref_mut()?;
        w.settle();
        w.by_time.peek().map(|&Reverse((ts, _))| ts)
    }

    /// Buffers `piece`, in both indexes.
    pub fn insert_piece(&mut self, piece: Piece<Pg>) {
        let w = self.waiting.get_or_insert_with(|| {
            Box::new(Waiting {
                pieces: BTreeMap::new(),
                by_time: BinaryHeap::new(),
                bytes: 0,
                inserted: 0,
                collapsed_at: 0,
            })
        });
        w.bytes += u64::from(piece.len);
        w.inserted += 1;
        w.by_time.push(Reverse((piece.ts, piece.start)));
        w.pieces.insert(piece.start, piece);
    }

    /// Takes the first piece (by offset) out, if `take` accepts it; its
    /// arrival entry goes stale.
    pub fn take_first_piece_if(
        &mut self,
        take: impl FnOnce(&Piece<Pg>) -> bool,
    ) -> Option<Piece<Pg>> {
        let w = self.waiting.as_deref_mut()?;
        let entry = w.pieces.first_entry()?;
        if !take(entry.get()) {
            return None;
        }
        let p = entry.remove();
        w.bytes -= u64::from(p.len);
        if w.pieces.is_empty() {
            self.waiting = None;
        } else {
            let pieces = &w.pieces;
            bound_stale(&mut w.by_time, pieces.len(), |&e| held(pieces, e));
        }
        Some(p)
    }

    /// Takes out every waiting byte at or past `at`: the pieces that start
    /// there or later are returned (for their pages to go back), and a
    /// piece that crosses `at` is cut short in place. Also returns how
    /// many bytes the cut removed.
    pub fn cut_from(&mut self, at: u64) -> (Vec<Piece<Pg>>, u64) {
        let Some(w) = self.waiting.as_deref_mut() else {
            return (Vec::new(), 0);
        };
        let mut cut = 0;
        if let Some((_, p)) = w.pieces.range_mut(..at).next_back() {
            if p.end() > at {
                cut = p.end() - at;
                p.len = (at - p.start) as u32;
            }
        }
        let tail: Vec<_> = w.pieces.split_off(&at).into_values().collect();
        w.bytes -= cut + tail.iter().map(|p| u64::from(p.len)).sum::<u64>();
        if w.pieces.is_empty() {
            self.waiting = None;
        } else {
            let pieces = &w.pieces;
            bound_stale(&mut w.by_time, pieces.len(), |&e| held(pieces, e));
        }
        (tail, cut)
    }

    /// Takes out the last pieces (by offset), farthest first, while they
    /// start at or past `at` and fewer than `most` were taken: what a
    /// receiver prunes from its out-of-order queue (see
    /// [`DropReason::Pruned`](crate::DropReason::Pruned)).
    pub fn take_last_pieces(&mut self, at: u64, most: usize) -> Vec<Piece<Pg>> {
        let mut taken = Vec::new();
        let Some(w) = self.waiting.as_deref_mut() else {
            return taken;
        };
        while taken.len() < most {
            let Some(entry) = w.pieces.last_entry() else {
                break;
            };
            if *entry.key() < at {
                break;
            }
            let p = entry.remove();
            w.bytes -= u64::from(p.len);
            taken.push(p);
        }
        if w.pieces.is_empty() {
            self.waiting = None;
        } else {
            let pieces = &w.pieces;
            bound_stale(&mut w.by_time, pieces.len(), |&e| held(pieces, e));
        }
        taken
    }

    /// Whether enough pieces came since the last [`collapse`](Self::collapse)
    /// (an eighth of those waiting, at least 16) for another to be worth
    /// its pass: so a flood that leaves nothing to collapse costs a pass
    /// per many segments, not one per segment.
    pub fn collapse_due(&self) -> bool {
        self.waiting
            .as_deref()
            .is_some_and(|w| w.inserted - w.collapsed_at >= (w.pieces.len() as u64 / 8).max(16))
    }

    /// Packs runs of contiguous pieces, as a receiver collapses its
    /// out-of-order queue before it prunes any of it: each small segment
    /// took a page of its own. A piece that fits whole in the tail of the
    /// page before it (its run's) moves there and gives its page back, so
    /// each byte copied frees a page, and full pages stay as they are. A
    /// merged piece spans the segments it took bytes from (their union,
    /// as a receiver's collapsed buffer is one segment: only for the
    /// policies that look at no bounds, see `Core::collapse`),
    /// and dates from the oldest. Returns the pages emptied, for the pool.
    /// O(n log n) in the pieces, and the bytes moved.
    pub fn collapse(&mut self, page_size: usize) -> Vec<Pg>
    where
        Pg: AsRef<[u8]> + AsMut<[u8]>,
    {
        let mut emptied = Vec::new();
        let Some(w) = self.waiting.as_deref_mut() else {
            return emptied;
        };
        w.collapsed_at = w.inserted;
        // Mostly nothing packs (small segments with holes between them):
        // a look, not a rebuild of both indexes (a third of a flood's time).
        let mut prev: Option<(u64, usize)> = None;
        let packs = w.pieces.values().any(|p| {
            let fits =
                prev.is_some_and(|(end, l)| end == p.start && l + p.len as usize <= page_size);
            prev = Some((p.end(), p.len as usize));
            fits
        });
        if !packs {
            return emptied;
        }
        let mut out: Vec<Piece<Pg>> = Vec::with_capacity(w.pieces.len());
        for (_, p) in std::mem::take(&mut w.pieces) {
            if let Some(last) = out.last_mut() {
                let (l, k) = (last.len as usize, p.len as usize);
                if last.end() == p.start && l + k <= page_size {
                    last.page.as_mut()[l..l + k].copy_from_slice(&p.page.as_ref()[..k]);
                    last.len += k as u32;
                    last.seg_start = last.seg_start.min(p.seg_start);
                    last.seg_end = last.seg_end.max(p.seg_end);
                    last.ts = last.ts.min(p.ts);
                    emptied.push(p.page);
                    continue;
                }
            }
            out.push(p);
        }
        w.by_time = out.iter().map(|p| Reverse((p.ts, p.start))).collect();
        w.pieces = out.into_iter().map(|p| (p.start, p)).collect();
        emptied
    }

    /// Where a walk over the pieces that overlap `[s, …)` starts: the
    /// piece that holds `s`, if one does, else `s`.
    pub fn overlap_start(&self, s: u64) -> u64 {
        let Some(w) = self.waiting.as_deref() else {
            return s;
        };
        let before = w.pieces.range(..=s).next_back();
        before.filter(|(_, p)| p.end() > s).map_or(s, |(&k, _)| k)
    }

    /// Offset where the FIN sits, once it holds: seen at the next byte,
    /// reached by delivery, or acknowledged.
    pub fn fin(&self) -> Option<u64> {
        (self.fin_at < FIN_PENDING).then_some(self.fin_at)
    }

    /// Records the FIN at offset `at`.
    pub fn set_fin(&mut self, at: u64) {
        debug_assert!(at < FIN_PENDING, "a FIN offset beyond any stream");
        self.fin_at = at;
    }

    /// A FIN was seen, holding or pending.
    #[inline]
    pub fn fin_seen(&self) -> bool {
        self.fin_at != NO_FIN
    }

    /// A FIN seen ahead of `next`, not reached yet: a receiver queues it
    /// with the out-of-order data and takes it only if its data ends
    /// exactly there; data it takes first that goes past it makes it an
    /// old segment, dropped. Until then bytes past it are data like any.
    pub fn pending_fin(&self) -> Option<u64> {
        (self.fin_at != NO_FIN && self.fin_at >= FIN_PENDING).then_some(self.fin_at & !FIN_PENDING)
    }

    /// Records a FIN at offset `at`, ahead of `next`: pending, carried
    /// by a segment that began at `from` (`at` for a bare FIN; one that
    /// carried data keeps the place in the half's box).
    pub fn set_pending_fin(&mut self, at: u64, from: u64) {
        debug_assert!(at < FIN_PENDING, "a FIN offset beyond any stream");
        self.fin_at = at | FIN_PENDING;
        if from < at {
            self.aside.get_or_insert_with(Box::default).fin_from = from;
        } else if let Some(a) = self.aside.as_deref_mut() {
            a.fin_from = NO_STOP;
        }
    }

    /// The pending FIN and where the segment that carried it began:
    /// `(fin, from)`. As a receiver's out-of-order queue does, data that
    /// begins no later than that segment and goes past the FIN takes its
    /// place (the FIN is dropped), and a FIN whose segment the waiting
    /// data covers whole is dropped; data that begins inside the
    /// segment leaves the FIN to end the stream where it stands.
    pub fn pending_fin_from(&self) -> Option<(u64, u64)> {
        let p = self.pending_fin()?;
        let from = self.aside.as_deref().map_or(NO_STOP, |a| a.fin_from);
        Some((p, from.min(p)))
    }

    /// Forgets the pending FIN (data took its place).
    pub fn drop_pending_fin(&mut self) {
        debug_assert!(self.pending_fin().is_some());
        self.fin_at = NO_FIN;
        self.forget_fin_from();
    }

    /// The pending FIN's segment start is no longer needed: a box kept
    /// for it alone can go.
    fn forget_fin_from(&mut self) {
        if let Some(a) = self.aside.as_deref_mut() {
            a.fin_from = NO_STOP;
            if a.bytes.capacity() == 0 && !a.checks && a.stop_at == NO_STOP && a.urgent == NO_URGENT
            {
                self.aside = None;
            }
        }
    }

    /// Whether one segment whose bytes wait here spanned all of `[from,
    /// to)`: as a receiver's out-of-order queue holds a new segment as a
    /// duplicate only when a queued segment covers it, not when several
    /// overlapping ones do together.
    pub fn one_segment_covers(&self, from: u64, to: u64) -> bool {
        self.pieces_in(self.overlap_start(from)..to)
            .any(|p| p.seg_start <= from && p.seg_end >= to)
    }

    /// What delivery up to `cursor` makes of a pending FIN: it holds when
    /// the delivered bytes end exactly at it, and is dropped when they go
    /// past it. Returns where it now holds, if it just came to.
    #[inline]
    pub fn settle_pending_fin(&mut self, cursor: u64) -> Option<u64> {
        let p = self.pending_fin()?;
        self.settle_pending_fin_at(p, cursor)
    }

    /// [`settle_pending_fin`](Self::settle_pending_fin) of a FIN pending
    /// at `p`: rare, out of line.
    #[cold]
    #[inline(never)]
    fn settle_pending_fin_at(&mut self, p: u64, cursor: u64) -> Option<u64> {
        if cursor == p {
            self.fin_at = p;
            self.forget_fin_from();
            return Some(p);
        }
        if cursor > p {
            self.fin_at = NO_FIN;
            self.forget_fin_from();
        }
        None
    }

    /// Classifies bytes `[from, to)` below `next` that arrive again: how
    /// many fall in the last skipped hole (late) versus delivered data.
    /// (Before any hole, `skipped` is empty and nothing is late.)
    pub fn split_late(&self, from: u64, to: u64) -> (u64, u64) {
        let (a, b) = self.skipped;
        let late = to.min(b).saturating_sub(from.max(a));
        (to - from - late, late)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(start: u64, len: u32, ts: u64) -> Piece<Vec<u8>> {
        Piece {
            start,
            len,
            seg_start: start,
            seg_end: start + u64::from(len),
            ts: Timestamp(ts),
            page: vec![0; len as usize],
        }
    }

    /// Collapsing packs each contiguous run into full pages (the last
    /// piece of a run cut where the page before it filled, its bytes moved
    /// to the front of its own page), leaves pieces apart alone, keeps the
    /// bytes and their order, and indexes the merged pieces by their
    /// oldest arrival.
    #[test]
    fn collapse_packs_contiguous_runs_into_full_pages() {
        const PAGE: usize = 8;
        let mut h: Half<Vec<u8>> = Half::default();
        let mut want = Vec::new();
        // A run of five 3-byte pieces at 10..25, then one apart at 30.
        for (n, at) in [10u64, 13, 16, 19, 22, 30].into_iter().enumerate() {
            let mut p = piece(at, 3, 100 - n as u64);
            p.page = vec![0; PAGE];
            for (k, b) in p.page[..3].iter_mut().enumerate() {
                *b = (at as u8) + k as u8;
            }
            want.extend_from_slice(&p.page[..3]);
            h.insert_piece(p);
        }
        assert!(!h.collapse_due(), "fewer than 16 pieces came");
        let emptied = h.collapse(PAGE);
        // Whole pieces only: two 3-byte pieces fill 6 of a page of 8, the
        // next starts a page of its own. Two of the five go.
        assert_eq!(emptied.len(), 2);
        let got: Vec<(u64, u32)> = h.pieces_in(0..u64::MAX).map(|p| (p.start, p.len)).collect();
        assert_eq!(got, [(10, 6), (16, 6), (22, 3), (30, 3)]);
        let bytes: Vec<u8> = h
            .pieces_in(0..u64::MAX)
            .flat_map(|p| p.page[..p.len as usize].to_vec())
            .collect();
        assert_eq!(bytes, want);
        assert_eq!(h.held_bytes(), 18);
        let first = h.pieces_in(0..11).next().unwrap();
        assert_eq!((first.seg_start, first.seg_end), (10, 16));
        // The oldest arrival is the apart piece's (ts 95), then that of
        // the last of the run (ts 96), then the merged 16..22 (97).
        assert_eq!(h.oldest_piece_ts(), Some(Timestamp(95)));
        h.take_last_pieces(22, 2);
        assert_eq!(h.oldest_piece_ts(), Some(Timestamp(97)));
        for n in 0..16 {
            assert!(!h.collapse_due(), "{n} pieces came since");
            h.insert_piece(piece(100 + 2 * n, 1, 1));
        }
        assert!(h.collapse_due());
    }

    /// A spent mark gives its box back unless kept bytes live in it.
    #[test]
    fn a_spent_urgent_mark_gives_back_its_box() {
        let mut h: Half<Vec<u8>> = Half::default();
        h.set_urgent_mark(Some(7));
        assert_eq!(h.urgent_mark(), Some(7));
        h.set_urgent_mark(None);
        assert!(h.aside.is_none());
        h.aside = Some(Box::new(Aside {
            bytes: vec![1, 2],
            ..Aside::default()
        }));
        h.set_urgent_mark(Some(9));
        h.set_urgent_mark(None);
        assert_eq!((h.urgent_mark(), h.kept().0), (None, &[1u8, 2][..]));
    }

    /// The maps exist while a piece waits and only then: a half with
    /// nothing waiting answers without a look behind the pointer, and the
    /// answers agree with the pieces held.
    #[test]
    fn waiting_pieces_are_made_with_the_first_and_dropped_with_the_last() {
        let mut h: Half<Vec<u8>> = Half::default();
        assert!(!h.has_pieces() && h.waiting.is_none());
        assert_eq!((h.piece_count(), h.first_piece_start()), (0, None));
        assert_eq!(h.oldest_piece_ts(), None);
        assert_eq!(h.overlap_start(5), 5);

        h.insert_piece(piece(30, 10, 2));
        h.insert_piece(piece(10, 10, 5));
        assert!(h.has_pieces());
        assert_eq!((h.piece_count(), h.first_piece_start()), (2, Some(10)));
        assert_eq!(h.oldest_piece_ts(), Some(Timestamp(2)));
        assert_eq!(h.overlap_start(15), 10);
        let starts: Vec<u64> = h.pieces_in(0..35).map(|p| p.start).collect();
        assert_eq!(starts, [10, 30]);
        for p in h.pieces_in_mut(25..100) {
            p.page[0] = 7;
        }
        assert_eq!(h.pieces_in(30..31).next().map(|p| p.page[0]), Some(7));

        assert!(h.take_first_piece_if(|p| p.start > 10).is_none());
        assert_eq!(h.take_first_piece_if(|_| true).map(|p| p.start), Some(10));
        assert!(h.has_pieces());
        assert_eq!(h.oldest_piece_ts(), Some(Timestamp(2)));
        assert_eq!(h.take_first_piece_if(|_| true).map(|p| p.start), Some(30));
        assert!(
            !h.has_pieces() && h.waiting.is_none(),
            "dropped with the last"
        );
        assert!(h.take_first_piece_if(|_| true).is_none());
    }
}

#[cfg(test)]
mod arrival {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the arrival times (capture timestamps can go back) and
        /// however many pieces are delivered, the oldest piece answered is
        /// the oldest held, and stale entries stay within twice the pieces
        /// plus the slack.
        #[test]
        fn the_oldest_is_exact_and_stale_entries_stay_bounded(
            ops in prop::collection::vec((any::<bool>(), 0u64..50), 1..400),
        ) {
            let mut h: Half<Vec<u8>> = Half::default();
            let mut start = 0u64;
            let mut model: BTreeMap<u64, u64> = BTreeMap::new();
            for (deliver, ts) in ops {
                if deliver {
                    let got = h.take_first_piece_if(|_| true).map(|p| p.start);
                    prop_assert_eq!(got, model.pop_first().map(|(s, _)| s));
                } else {
                    start += 10;
                    h.insert_piece(Piece {
                        start,
                        len: 5,
                        seg_start: start,
                        seg_end: start + 5,
                        ts: Timestamp(ts),
                        page: Vec::new(),
                    });
                    model.insert(start, ts);
                }
                let oldest = model.values().min().map(|&t| Timestamp(t));
                prop_assert_eq!(h.oldest_piece_ts(), oldest);
                prop_assert_eq!(h.piece_count(), model.len());
                let held = h.waiting.as_ref().map_or(0, |w| w.by_time.len());
                prop_assert!(held <= 2 * model.len() + 16, "{} entries for {}", held, model.len());
            }
        }
    }
}

#[cfg(test)]
mod recent {
    use super::*;
    use proptest::prelude::*;

    /// The holes of a model of recent bytes (`None`: a hole's placeholder)
    /// ending at offset `end`.
    fn runs(model: &[Option<u8>], end: u64) -> Vec<(u64, u64)> {
        let lo = end - model.len() as u64;
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (i, b) in model.iter().enumerate() {
            let at = lo + i as u64;
            match (b, out.last_mut()) {
                (None, Some(r)) if r.1 == at => r.1 = at + 1,
                (None, _) => out.push((at, at + 1)),
                _ => {}
            }
        }
        out
    }

    /// A ring that wrapped while it could not grow keeps every byte where
    /// it belongs once it grows.
    #[test]
    fn a_wrapped_ring_grows_with_its_bytes_in_place() {
        let mut a = Aside::checking();
        let bytes: Vec<u8> = (0..=255).collect();
        let t = Timestamp(0);
        a.record([&bytes[..64]].into_iter(), (0, 64), 1000, usize::MAX, t);
        assert_eq!(a.recent_alloc(), 64);
        a.record([&bytes[64..100]].into_iter(), (64, 100), 1000, 64, t);
        assert_eq!((a.recent_alloc(), a.recent_range()), (64, (36, 100)));
        a.record(
            [&bytes[100..101]].into_iter(),
            (100, 101),
            1000,
            usize::MAX,
            t,
        );
        assert_eq!((a.recent_alloc(), a.recent_range()), (128, (36, 101)));
        let [x, y] = a.recent_bytes(36, 101);
        assert_eq!([x, y].concat(), &bytes[36..101]);
    }

    /// Holes do not grow a ring: a byte, then a byte far past it (the
    /// hole between kept), leaves the smallest ring, holding both.
    #[test]
    fn a_hole_does_not_grow_the_ring() {
        let mut a = Aside::checking();
        let t = Timestamp(0);
        let max = 16384;
        a.record([&b"x"[..]].into_iter(), (0, 1), max, usize::MAX, t);
        a.record([&b"y"[..]].into_iter(), (16000, 16001), max, usize::MAX, t);
        assert_eq!(a.recent.len(), MIN_RING);
        // The ring, smaller than the hole, keeps the newest byte.
        assert_eq!(a.recent_range(), (16001 - MIN_RING as u64, 16001));
        assert_eq!(a.recent_bytes(16000, 16001)[0], b"y");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// Deliveries of any size, in up to four chunks, some after holes
        /// of any size, some with no room to grow: what is held is the
        /// last offsets' worth a ring of at most `max` bytes holds (all of
        /// them up to `max` where it had room to grow), since a hole as
        /// long as `max` or the ninth hole, with the holes in it as
        /// placeholders, ending where the stream is (the allocation
        /// counted as it changes).
        #[test]
        fn the_last_bytes_delivered_are_held_within_the_limit(
            max in prop_oneof![1usize..64, 64usize..300],
            deliveries in prop::collection::vec(
                (
                    prop_oneof![4 => 0usize..4, 1 => 0usize..100],
                    prop::collection::vec(0usize..100, 0..3),
                    prop_oneof![3 => 0u64..8, 1 => 0u64..80],
                    0u8..4,
                ),
                1..80,
            ),
        ) {
            let mut a = Aside::checking();
            let mut model: Vec<Option<u8>> = Vec::new();
            let (mut next, mut byte, mut alloc) = (0u64, 0u8, 0isize);
            for (len, mut cuts, hole, tight) in deliveries {
                // A hole half the time, of 1 to 40 bytes.
                if hole % 2 == 0 {
                    let gap = hole / 2 + 1;
                    next += gap;
                    if model.iter().all(Option::is_none) || gap >= max as u64 {
                        model.clear();
                    } else {
                        model.extend((0..gap).map(|_| None));
                    }
                }
                let bytes: Vec<u8> = (0..len).map(|_| { byte = byte.wrapping_add(1); byte }).collect();
                cuts.iter_mut().for_each(|c| *c %= len + 1);
                cuts.extend([0, len]);
                cuts.sort_unstable();
                let chunks = cuts.windows(2).map(|w| &bytes[w[0]..w[1]]);
                // No room to grow, a little, or all it wants.
                let room = match tight {
                    0 => a.recent_alloc(),
                    1 => a.recent_alloc() + len / 2,
                    _ => usize::MAX,
                };
                let t = Timestamp(next);
                let grew = a.record(chunks, (next, next + len as u64), max, room, t);
                alloc += grew;
                next += len as u64;
                model.extend(bytes.iter().copied().map(Some));
                let n = a.recent.len();
                prop_assert!(n <= max && n <= room, "{} for {}", n, max);
                if room == usize::MAX {
                    // Room to grow: no delivered byte of the window lost
                    // (holes do not make it grow).
                    let real = model.iter().flatten().count();
                    prop_assert!(n >= real.min(max), "{} for {}", n, real);
                }
                // What a ring of `n` holds; past MAX_HOLES, from the oldest
                // hole's end.
                if model.len() > n {
                    model.drain(..model.len() - n);
                }
                if runs(&model, next).len() > MAX_HOLES {
                    let first = runs(&model, next)[0].1;
                    let lo = next - model.len() as u64;
                    model.drain(..(first - lo) as usize);
                }
                prop_assert_eq!(alloc, a.recent_alloc() as isize);
                prop_assert_eq!(a.recent_ts(), t);
                let (lo, end) = a.recent_range();
                prop_assert_eq!(end, next);
                prop_assert_eq!((end - lo) as usize, model.len());
                let holes: Vec<(u64, u64)> =
                    a.recent_holes().iter().map(|&(x, y)| (x.max(lo), y)).collect();
                prop_assert_eq!(&holes, &runs(&model, next));
                for (i, b) in model.iter().enumerate() {
                    let at = lo + i as u64;
                    if let Some(b) = b {
                        let [x, y] = a.recent_bytes(at, at + 1);
                        prop_assert_eq!(x.first().or(y.first()), Some(b), "at {}", at);
                    }
                }
                // Two pieces, in order, the whole range.
                let [x, y] = a.recent_bytes(lo, end);
                prop_assert_eq!(x.len() + y.len(), model.len());
            }
        }
    }
}
