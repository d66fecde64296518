//! The reassembler: connection lifecycle, timers and limits around the data
//! path of [`crate::data`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use weft_wire::{Dir, FlowKey, Packet, Seq, Timestamp};

use crate::config::Config;
use crate::data::{di, Conn, Core, Data, Outcome};
use crate::half::Half;
use crate::policy::UrgentPolicy;
use crate::pool::{DefaultPool, PagePool};
use crate::stats::{DropReason, Stats};
use crate::stream::{Cause, ConnInfo, Context, Stream, StreamFactory};
use crate::table::{bound_stale, Table, STALE_SLACK};
use crate::Segment;

/// A flow's place in one reassembler's connection table, between the two
/// prefetch stages ([`Reassembler::prefetch_index`]) and on to processing
/// ([`Reassembler::process_ahead`]), which then does not hash the key
/// again. Meaningless to any other reassembler (each table has its own hash
/// seed). Plain data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookahead {
    hash: u32,
    key: FlowKey,
    /// The table whose seed made `hash`.
    table: u64,
}

impl Lookahead {
    /// The flow key it was made for.
    pub fn key(&self) -> &FlowKey {
        &self.key
    }
}

/// [`Reassembler::queued`] of a connection with no entry in the heap.
const NOT_QUEUED: Timestamp = Timestamp(u64::MAX);

/// Heap entries of connections gone (or of a slot's previous connection)
/// one time advance may step over for idle expiry, and for the flush
/// timeout, before leaving the rest to the next: a few microseconds, where
/// dropping the entries most of a million closed connections left took
/// 103 ms in one packet. Closing, flushing and renewing the entries of
/// live connections are not counted. Expiry and flushing go on at the
/// next packet or tick, so after such a mass closing a connection may
/// outlive its idle timeout (or data its flush timeout) by up to one time
/// advance per 256 entries in the way.
pub(crate) const IDLE_STEPS: usize = 256;

type ConnOf<F, P> = Conn<<F as StreamFactory>::Stream, <P as PagePool>::Page>;

/// A single-threaded TCP reassembler (gopacket's `Assembler` and
/// `StreamPool` in one, without the locks): feed it segments in capture
/// order, it calls your streams with in-order bytes.
///
/// `Send` when the factory, its streams and the pool are; never `Sync`:
/// one thread owns it, which is what makes the packet path lock-free.
pub struct Reassembler<F: StreamFactory, P: PagePool = DefaultPool> {
    core: Core<P>,
    table: Table<ConnOf<F, P>>,
    factory: F,
    /// Connections with buffered data, by the time their oldest piece came
    /// (lazy: entries are checked against the connection when popped).
    buffered: BinaryHeap<Reverse<(Timestamp, u32, u32)>>,
    /// Per slot, the time its connection's live entry in `buffered` carries
    /// ([`NOT_QUEUED`] if none): an entry whose time differs is stale. A
    /// piece older than that time (capture timestamps out of order) queues
    /// the connection again, earlier.
    queued: Vec<Timestamp>,
    /// Connections that ended and linger, in the order they ended.
    lingering: std::collections::VecDeque<(Timestamp, u32, u32)>,
    /// The last SYN ignored on a slot ([`Reassembler::ignores_syn`]): its
    /// generation, direction and ISN. A SYN-ACK from the peer answering it
    /// shows the peer has no live connection there any more (a live one
    /// answers with a bare ACK): the tuple was used again after a close
    /// the capture lost, and the new connection starts.
    ignored_syns: hashbrown::HashMap<u32, (u32, Dir, Seq)>,
    /// Connections a bare SYN opened, oldest first, with their slots'
    /// generations: at the connection limit one still unanswered (the peer
    /// sent nothing, the opener nothing past its SYN) is evicted before
    /// any other, as a host's SYN backlog gives way before its
    /// established connections; so a flood of SYNs from forged sources
    /// evicts its own, not the live connections idle a while. Entries of
    /// connections since answered or gone are dropped as met, and once
    /// they outnumber the live connections.
    unanswered: std::collections::VecDeque<(u32, u32)>,
    /// Times a payload was offered to its half (once, plus once per
    /// round of making room).
    #[cfg(test)]
    placements: u64,
    now: Timestamp,
    /// No timer fires before this instant: the earliest a lingering
    /// connection, an idle one or buffered data can come due, or earlier
    /// (it is lowered as entries are queued, raised only when the timers
    /// run). Packet time moving below it runs nothing, in a few
    /// instructions: running the timers' checks on every segment cost an
    /// inline replay about 80 instructions a frame (callgrind).
    due: Timestamp,
    next_id: u64,
    /// Test builds: segments that took [`Reassembler::in_order`], and
    /// whether it is off (every segment on the general path).
    #[cfg(test)]
    pub(crate) predicted: (u64, bool),
}

impl<F: StreamFactory, P: PagePool> std::fmt::Debug for Reassembler<F, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reassembler")
            .field("connections", &self.table.len())
            .field("now", &self.now)
            .field("config", &self.core.cfg)
            .finish_non_exhaustive()
    }
}

impl<F: StreamFactory> Reassembler<F, DefaultPool> {
    /// A reassembler whose out-of-order pages come from an `mmap`'d arena
    /// ([`DefaultPool`]) capped at `config.max_pages`. Such a reassembler is
    /// bound to the thread that creates it; [`Reassembler::with_pool`] with a
    /// [`HeapPool`](crate::HeapPool) gives one that can move.
    pub fn new(config: Config, factory: F) -> Self {
        let pool = DefaultPool::new(crate::HeapPool::DEFAULT_PAGE_SIZE, config.max_pages);
        Reassembler::with_pool(config, factory, pool)
    }
}

impl<F: StreamFactory, P: PagePool> Reassembler<F, P> {
    /// A reassembler taking its pages from `pool`.
    pub fn with_pool(config: Config, factory: F, pool: P) -> Self {
        Reassembler {
            core: Core::new(config, pool),
            table: Table::new(),
            factory,
            buffered: BinaryHeap::new(),
            queued: Vec::new(),
            lingering: std::collections::VecDeque::new(),
            ignored_syns: hashbrown::HashMap::new(),
            unanswered: std::collections::VecDeque::new(),
            #[cfg(test)]
            placements: 0,
            now: Timestamp::default(),
            due: Timestamp::default(),
            next_id: 0,
            #[cfg(test)]
            predicted: (0, false),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.core.cfg
    }

    /// The factory (to read what its streams produced).
    pub fn factory(&self) -> &F {
        &self.factory
    }

    /// The factory, mutably.
    pub fn factory_mut(&mut self) -> &mut F {
        &mut self.factory
    }

    /// Consumes the reassembler (call [`flush_all`](Self::flush_all) first)
    /// and returns the factory.
    pub fn into_factory(self) -> F {
        self.factory
    }

    /// Connections tracked now.
    pub fn connections(&self) -> usize {
        self.table.len()
    }

    /// The latest packet time seen.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.core.stats.clone();
        s.conns_active = self.table.len() as u64;
        s.pages_in_use = self.core.pool.in_use() as u64;
        s
    }

    /// Whether prefetching connections ahead is worth its cost now: only
    /// once the live connection records outgrow a core's private caches
    /// ([`Config::prefetch_min_bytes`]). Below that they are mostly cached
    /// already and the look-ahead is pure overhead (measured in
    /// `benches/e2e.rs`, 2,000 live flows: 20 % slower inline with it).
    #[inline]
    pub fn prefetch_pays(&self) -> bool {
        self.table.record_bytes() >= self.core.cfg.prefetch_min_bytes
    }

    /// A hint that a segment of flow `key` will be processed soon: starts
    /// loading its connection into the cache and returns at once. It changes
    /// no state, so a wrong or stale hint costs only the lookup.
    ///
    /// With thousands of live flows, a lookup misses the cache twice in a
    /// row (index entry, then connection); [`prefetch_index`](Self::prefetch_index)
    /// and [`prefetch_conn`](Self::prefetch_conn) split those into two
    /// stages that a caller issues [`PREFETCH_DISTANCE`](crate::PREFETCH_DISTANCE)
    /// segments apart, so both waits overlap other segments' work. This
    /// method does both at once (the second stage then waits for the first).
    #[inline]
    pub fn prefetch(&self, key: &FlowKey) {
        let la = self.prefetch_index(key);
        self.prefetch_conn(la);
    }

    /// First prefetch stage: hashes `key` and starts loading the table's
    /// index entry for it. Pass the result to [`prefetch_conn`](Self::prefetch_conn)
    /// a few segments later.
    #[inline]
    pub fn prefetch_index(&self, key: &FlowKey) -> Lookahead {
        let hash = self.table.hash(key);
        self.table.prefetch_index(hash);
        Lookahead {
            hash,
            key: *key,
            table: self.table.id(),
        }
    }

    /// Second prefetch stage: starts loading the connection the index entry
    /// points to (found by hash alone; a rare false match only loads the
    /// wrong lines).
    #[inline]
    pub fn prefetch_conn(&self, la: Lookahead) {
        self.table.prefetch_slot(la.hash);
    }

    /// Whether [`prefetch_aside`](Self::prefetch_aside) has work: the
    /// retransmission check is on ([`Config::retransmit_check`]).
    #[inline]
    pub fn prefetches_aside(&self) -> bool {
        self.core.cfg.retransmit_check != 0
    }

    /// Third prefetch stage, with the retransmission check on: starts
    /// loading the boxes of both halves of the connection
    /// [`prefetch_conn`](Self::prefetch_conn) loaded (it should be cached
    /// by now), which every delivery then reads. Without it each delivery
    /// of many live connections waited for its box.
    #[inline]
    pub fn prefetch_aside(&self, la: &Lookahead) {
        if let Some(conn) = self.table.candidate_item(la.hash) {
            for h in &conn.halves {
                if let Some(a) = h.aside.as_deref() {
                    weft_arena::prefetch(a, usize::MAX);
                }
            }
        }
    }

    /// Decodes nothing: takes a decoded packet and its capture time.
    pub fn process_packet(&mut self, p: &Packet<'_>, ts: Timestamp) {
        self.process(&Segment::from_packet(p, ts));
    }

    /// Processes one segment. Segments must come in capture order; time is
    /// taken from their timestamps (never from the clock).
    pub fn process(&mut self, seg: &Segment<'_>) {
        self.process_ahead(seg, None);
    }

    /// [`process`](Self::process) for a segment whose flow was prefetched:
    /// the look-ahead's table hash is used for the lookup when this
    /// reassembler made it, of this segment's key. Both are checked: any
    /// other look-ahead, or none, only costs a fresh hash.
    pub fn process_ahead(&mut self, seg: &Segment<'_>, la: Option<&Lookahead>) {
        let hash = match la {
            Some(la) if la.table == self.table.id() && la.key == seg.key => la.hash,
            _ => self.table.hash(&seg.key),
        };
        self.process_hashed(seg, hash);
    }

    /// `hash` is the table's hash of `seg.key`.
    fn process_hashed(&mut self, seg: &Segment<'_>, hash: u32) {
        let st = &mut self.core.stats;
        st.segments += 1;
        st.payload_bytes += seg.payload.len() as u64;
        st.truncated_bytes += seg.payload_missing as u64;
        self.advance_time(seg.ts);
        let ctx = Context {
            ts: seg.ts,
            cause: Cause::Segment,
        };
        let Some(i) = self.lookup_or_create(seg, hash, &ctx) else {
            return;
        };
        self.table.touch(i, self.now);
        if !self.in_order(i, seg, &ctx) {
            self.on_segment(i, seg, &ctx);
        }
        // Only a segment that leaves pieces waiting in its own direction can
        // need its connection queued (sooner) for the flush timeout: pieces
        // are buffered only here, in the segment's direction, and taking
        // pieces out (delivery, flushes, skips) only makes the oldest one
        // newer, so an entry queued before stays early enough. The heap's
        // own pops queue the connection again themselves. The record is in
        // cache after the segment; `queued[i]` mostly is not, and loading it
        // for every segment cost 4 % of an inline replay.
        let conn = self.table.try_get(i);
        if conn.is_some_and(|c| c.halves[di(seg.dir)].has_pieces()) {
            self.note_buffered(i, seg.ts);
        }
    }

    /// Finds the segment's connection, or starts one when the segment may
    /// open it. `None`: the segment was counted and ignored.
    fn lookup_or_create(&mut self, seg: &Segment<'_>, hash: u32, ctx: &Context) -> Option<u32> {
        if let Some(i) = self.table.find_hashed(hash, &seg.key) {
            if !seg.flags.syn() {
                // Most segments: no question of a new connection.
                if !self.table.get(i).closed {
                    return Some(i);
                }
                // Stray segment of a finished connection.
                let n = seg.payload.len() as u64;
                self.core.stats.dropped[DropReason::AfterClose.index()] += n;
                self.table.touch(i, self.now);
                return None;
            }
            let answered = self.answers_ignored_syn(i, seg);
            let quiet = self.quiet(i);
            let c = self.table.get(i);
            if !(c.closed || answered || self.is_reuse(c, seg, quiet)) {
                if self.ignores_syn(c, seg) {
                    if !seg.flags.ack() {
                        self.note_ignored_syn(i, seg);
                    }
                    let st = &mut self.core.stats;
                    st.syn_ignored += 1;
                    st.dropped[DropReason::OutOfWindow.index()] += seg.payload.len() as u64;
                    return None;
                }
                return Some(i);
            }
            self.close_and_forget(
                i,
                &Context {
                    cause: Cause::Reused,
                    ..*ctx
                },
            );
        }
        self.start_conn(seg, hash, ctx)
    }

    /// A segment of no live connection: starts one when it may open it.
    /// Out of line: once per connection, it kept the per-segment path
    /// longer inline (1 % more instructions, callgrind, once it looked
    /// up each direction's policy).
    #[inline(never)]
    fn start_conn(&mut self, seg: &Segment<'_>, hash: u32, ctx: &Context) -> Option<u32> {
        let syn = seg.flags.syn();
        if !syn && (seg.payload.is_empty() || seg.flags.rst()) {
            // Pure ACK/FIN/RST of an unknown connection: nothing to start.
            let st = &mut self.core.stats;
            st.segments_no_conn += 1;
            st.dropped[DropReason::AfterClose.index()] += seg.payload.len() as u64;
            return None;
        }
        if !syn && !seg.flags.ack() {
            // Data without ACK, which no receiver takes (`on_segment`).
            let st = &mut self.core.stats;
            st.segments_no_ack += 1;
            st.dropped[DropReason::NoAck.index()] += seg.payload.len() as u64;
            return None;
        }
        if !syn && !self.core.cfg.midstream {
            self.core.stats.dropped[DropReason::NoHandshake.index()] += seg.payload.len() as u64;
            return None;
        }
        let max = self.core.cfg.max_conns;
        if max != 0 && self.table.len() >= max {
            let victim = self.unanswered_victim().or_else(|| self.table.victim());
            if let Some(victim) = victim {
                self.core.stats.conns_evicted += 1;
                self.close_and_forget(
                    victim,
                    &Context {
                        cause: Cause::Evicted,
                        ..*ctx
                    },
                );
            }
        }
        // A SYN-ACK's sender is the server; any other opener is the client.
        let client_dir = if syn && seg.flags.ack() {
            seg.dir.reverse()
        } else {
            seg.dir
        };
        let info = ConnInfo {
            key: seg.key,
            client_dir,
            id: self.next_id,
            handshake: syn,
        };
        self.next_id += 1;
        let stream = self.factory.new_stream(&info, seg, ctx);
        // Each direction's data as its receiver resolves it.
        let policy = |d: Dir| self.core.cfg.policy_for(seg.key.dst(d).0);
        let policies = [policy(Dir::LoToHi), policy(Dir::HiToLo)];
        let conn = Conn {
            client_dir,
            stream,
            halves: [self.core.half(), self.core.half()],
            policies,
            closed: false,
        };
        self.core.stats.conns_created += 1;
        let i = self.table.insert_hashed(hash, seg.key, self.now, conn);
        if syn && !seg.flags.ack() && self.core.cfg.max_conns != 0 {
            self.unanswered.push_back((i, self.table.gen(i)));
            if self.unanswered.len() > 2 * self.table.len() + STALE_SLACK {
                let table = &self.table;
                self.unanswered.retain(|&(i, gen)| table.is_live(i, gen));
            }
        }
        if let Some(t) = self.core.cfg.idle_timeout_ns {
            self.note_due(self.now, t);
        }
        if self.queued.len() <= i as usize {
            self.queued.resize(i as usize + 1, NOT_QUEUED);
        }
        // A reused slot may still carry its last connection's mark (its
        // entry in `buffered` is stale and skipped when popped).
        self.queued[i as usize] = NOT_QUEUED;
        Some(i)
    }

    /// The oldest connection a bare SYN opened that is still unanswered
    /// (see `unanswered`), taken off the queue; `None` if none is.
    fn unanswered_victim(&mut self) -> Option<u32> {
        while let Some((i, gen)) = self.unanswered.pop_front() {
            if !self.table.is_live(i, gen) {
                continue;
            }
            let c = self.table.get(i);
            let opener = &c.halves[di(c.client_dir)];
            let peer = &c.halves[di(c.client_dir.reverse())];
            let silent = peer.base.is_none() && peer.isn.is_none() && !peer.fin_seen();
            if silent && opener.next == 0 && !opener.has_pieces() && !opener.fin_seen() {
                return Some(i);
            }
        }
        None
    }

    /// Remembers the SYN ignored on slot `i` (see `ignored_syns`); entries
    /// of slots since reused go once they outnumber the live connections.
    fn note_ignored_syn(&mut self, i: u32, seg: &Segment<'_>) {
        self.ignored_syns
            .insert(i, (self.table.gen(i), seg.dir, seg.seq));
        if self.ignored_syns.len() > 2 * self.table.len() + STALE_SLACK {
            let table = &self.table;
            self.ignored_syns
                .retain(|&i, &mut (gen, ..)| table.is_live(i, gen));
        }
    }

    /// Whether `seg` is the peer's SYN-ACK to the SYN last ignored on
    /// connection `i`.
    fn answers_ignored_syn(&mut self, i: u32, seg: &Segment<'_>) -> bool {
        if !seg.flags.ack() {
            return false;
        }
        let gen = self.table.gen(i);
        let answers = self.ignored_syns.get(&i).is_some_and(|&(g, dir, isn)| {
            g == gen && dir == seg.dir.reverse() && seg.ack == isn + 1
        });
        if answers {
            self.ignored_syns.remove(&i);
        }
        answers
    }

    /// Whether connection `i` saw nothing for [`SYN_QUIET_NS`] before the
    /// segment being processed (its activity is not updated yet).
    fn quiet(&self, i: u32) -> bool {
        self.now.0.saturating_sub(self.table.last_seen(i).0) >= SYN_QUIET_NS
    }

    /// A SYN that opens a new connection on the tuple of a live one: a
    /// different initial sequence number after the old one finished, or
    /// carried data and then fell quiet (its FIN or RST lost), or while
    /// the data on its own SYN waits unanswered (a retried handshake).
    /// `seg` is a SYN (a SYN-ACK never opens one).
    fn is_reuse(&self, c: &ConnOf<F, P>, seg: &Segment<'_>, quiet: bool) -> bool {
        if seg.flags.ack() {
            return false;
        }
        let h = &c.halves[di(seg.dir)];
        !is_same_syn(h, seg) && (closing(c) || h.syn_hold || (h.next > 0 && quiet))
    }

    /// A SYN with a new initial sequence number in the middle of a live
    /// connection, which its receiver would answer with an ACK and drop
    /// (RFC 5961 §4), or a SYN-ACK with another ISN than its side's first
    /// (the client took that one): it is ignored too, whole, rather than
    /// taken to start the stream anew. Taken, one forged SYN made every
    /// later byte of the real stream fall before the new start or out of
    /// window: the stream went unseen from there on. A new ISN still
    /// starts anew once the connection is closing, carried data and fell
    /// quiet, or when nothing was heard from the peer yet (a handshake
    /// retried before any answer); see [`is_reuse`](Self::is_reuse) and
    /// `on_syn`. `seg` is a SYN.
    fn ignores_syn(&self, c: &ConnOf<F, P>, seg: &Segment<'_>) -> bool {
        // Quiet or not: a quiet connection that carried data was taken as
        // reused before; one that carried none, with the peer's answer
        // seen, gets the receiver's answer to a SYN (a challenge ACK), and
        // a restarted client's RST then closes it.
        if closing(c) {
            return false;
        }
        let h = &c.halves[di(seg.dir)];
        if h.syn_hold || is_same_syn(h, seg) {
            return false;
        }
        if seg.flags.ack() {
            // A SYN-ACK with another ISN than the one its side sent: the
            // client took the first that answered its SYN and drops the
            // others (taken, a forged one moved the server's stream).
            return h.isn.is_some() || h.base.is_some();
        }
        let peer = &c.halves[di(seg.dir.reverse())];
        h.next > 0 || h.has_pieces() || peer.base.is_some()
    }

    /// Header prediction, as TCP stacks do it: the two segments most
    /// segments are (data with ACK and no other control flag, at exactly
    /// the next byte its direction expects, before any FIN; and the pure
    /// ACK) take the steps [`on_segment`](Self::on_segment) would take for
    /// them, without the general path's tests for what cannot apply.
    /// Returns false, having changed nothing, for any other segment, and
    /// while the other direction's SYN data waits (the general path
    /// settles it first).
    #[inline]
    fn in_order(&mut self, i: u32, seg: &Segment<'_>, ctx: &Context) -> bool {
        #[cfg(test)]
        if self.predicted.1 {
            return false;
        }
        // URG too (one mask test with the others): the general path takes
        // its urgent pointer.
        let f = seg.flags;
        if !f.ack() || f.syn() || f.fin() || f.rst() || f.urg() || seg.payload_missing != 0 {
            return false;
        }
        let d = seg.dir;
        let conn = self.table.get_mut(i);
        if conn.halves[di(d.reverse())].syn_hold {
            return false;
        }
        if seg.payload.is_empty() {
            return self.pure_ack(i, seg, ctx);
        }
        let h = &conn.halves[di(d)];
        let next_seq = h.next_seq();
        if next_seq != Some(seg.seq) || h.closed || h.fin_seen() || h.syn_hold {
            return false;
        }
        if h.next + seg.payload.len() as u64 > self.core.stop_of(h) {
            // Across the depth or a stop: the general path cuts it.
            return false;
        }
        let direction = conn.direction(d);
        if !conn.stream.accept(seg, direction, next_seq, ctx) {
            self.core.stats.dropped[DropReason::Rejected.index()] += seg.payload.len() as u64;
            self.core.stats.segments_rejected += 1;
            return true;
        }
        let s = conn.halves[di(d)].next;
        let bounds = (s, s + seg.payload.len() as u64);
        self.core
            .deliver(conn, d, Some((s, seg.payload, bounds)), seg.ts, ctx);
        #[cfg(test)]
        {
            self.predicted.0 += 1;
        }
        // As on the general path; a delivery without a FIN closes nothing.
        self.skip_acked_hole(i, d, s, ctx);
        if self.core.cfg.skip_acked_holes {
            self.on_ack(i, seg, ctx);
        }
        true
    }

    /// A pure ACK (no other flag, no payload), with no SYN data waiting
    /// for it: the general path's steps for it. A third of the segments
    /// of a bulk transfer; on the general path they cost an inline replay
    /// 3 % more instructions (callgrind).
    #[inline]
    fn pure_ack(&mut self, i: u32, seg: &Segment<'_>, ctx: &Context) -> bool {
        let d = seg.dir;
        let conn = self.table.get_mut(i);
        let direction = conn.direction(d);
        let next_seq = conn.halves[di(d)].next_seq();
        if conn.stream.accept(seg, direction, next_seq, ctx) {
            if self.core.cfg.skip_acked_holes {
                self.on_ack(i, seg, ctx);
            }
            // The ACK of a FIN may have ended the connection's last half.
            self.close_if_finished(i, ctx);
            #[cfg(test)]
            {
                self.predicted.0 += 1;
            }
        } else {
            self.core.stats.segments_rejected += 1;
        }
        true
    }

    /// The general path, for every segment header prediction does not
    /// take. Out of line: inlined, it made the entry around the fast path
    /// too large to inline into the engine's per-segment code, and an
    /// inline replay ran 1.06-1.09x the time (callgrind: 2.3 % more
    /// instructions; 1.6 % more with it out of line, for the FIN, RST and
    /// ACK fixes it grew by).
    #[inline(never)]
    fn on_segment(&mut self, i: u32, seg: &Segment<'_>, ctx: &Context) {
        let d = seg.dir;
        // Judge a RST by where it stood before anything of it is taken: a
        // blind one is ignored whole, before the stream's `accept` (where
        // a validator would take it for the end of the connection) and
        // before its payload could be placed as data.
        if seg.flags.rst() && !self.rst_acceptable(i, seg) {
            let st = &mut self.core.stats;
            st.rst_ignored += 1;
            st.dropped[DropReason::OutOfWindow.index()] += seg.payload.len() as u64;
            return;
        }
        // A receiver drops a segment without ACK whole, but a SYN or a RST
        // (RFC 9293 3.10.7.4, fifth step; a client awaiting its SYN-ACK
        // too): taken, its bytes stood for a stream the host never read,
        // and its FIN ended one it went on reading. Before the stream's
        // `accept`, so no validator takes it either.
        if !seg.flags.ack() && !seg.flags.syn() && !seg.flags.rst() {
            let st = &mut self.core.stats;
            st.segments_no_ack += 1;
            st.dropped[DropReason::NoAck.index()] += seg.payload.len() as u64;
            return;
        }
        let conn = self.table.get_mut(i);
        let direction = conn.direction(d);
        let next_seq = conn.halves[di(d)].next_seq();
        if !conn.stream.accept(seg, direction, next_seq, ctx) {
            self.core.stats.dropped[DropReason::Rejected.index()] += seg.payload.len() as u64;
            self.core.stats.segments_rejected += 1;
            return;
        }
        // Only a segment the stream accepted tells whether the peer took
        // the data on its SYN.
        if seg.flags.ack() && conn.halves[di(d.reverse())].syn_hold {
            self.settle_syn_data(i, d.reverse(), seg.ack, ctx);
        }
        let conn = self.table.get_mut(i);
        let h = &mut conn.halves[di(d)];
        // Where the stream stood: whether the segment fills an acknowledged hole.
        let from = h.next;
        let mut refused = false;
        if seg.flags.syn() {
            let first = h.isn.is_none();
            on_syn(h, seg);
            // Data on the opening SYN waits for the peer to say whether it
            // took it (TCP Fast Open): taken at once, a refused SYN's data
            // and the different bytes sent after the handshake would both
            // claim the stream's first bytes, and the first would win. Only
            // the first SYN's: once refused, a SYN sent again brings none.
            if !seg.flags.ack() && !seg.payload.is_empty() {
                if h.syn_refused {
                    refused = true;
                } else if first && h.next == 0 && !h.started {
                    h.syn_hold = true;
                    h.syn_len = u32::try_from(seg.payload.len()).unwrap_or(u32::MAX);
                }
            }
        } else if h.base.is_none() && (!seg.payload.is_empty() || seg.flags.fin()) {
            // First data (or FIN) of this direction without a SYN: start
            // here. A pure ACK says nothing about where the data starts: it
            // may have been sent after data the capture shows later.
            h.base = Some(seg.seq);
        }
        // As the receiver, the urgent pointer before the segment's FIN
        // and data (RFC 9293 3.10.7.4, sixth step).
        if seg.flags.urg() && self.core.cfg.urgent == UrgentPolicy::OutOfBand {
            let max_window = self.core.cfg.max_window;
            note_urgent(&mut self.table.get_mut(i).halves[di(d)], seg, max_window);
        }
        // A RST's FIN is not taken: the receiver resets first (and its
        // payload is dropped below), so the RST marks the end itself.
        if seg.flags.fin() && !seg.flags.rst() {
            self.on_fin(i, seg, ctx);
        }
        if refused {
            let len = seg.payload.len() as u64;
            let conn = self.table.get_mut(i);
            self.core
                .drop_bytes(conn, d, DropReason::SynRefused, len, ctx);
        } else if seg.flags.rst() && !seg.payload.is_empty() {
            // The receiver resets the connection and reads none of it:
            // delivered, a RST could carry bytes the host never saw.
            let len = seg.payload.len() as u64;
            let conn = self.table.get_mut(i);
            self.core.drop_bytes(conn, d, DropReason::OnRst, len, ctx);
        } else if !seg.payload.is_empty() {
            self.on_data(i, seg, ctx);
        }
        if !seg.payload.is_empty() || seg.flags.fin() {
            if self.core.cfg.skip_acked_holes {
                self.acked_before(i, seg);
            }
            self.skip_acked_hole(i, d, from, ctx);
        }
        if seg.flags.ack() && self.core.cfg.skip_acked_holes {
            self.on_ack(i, seg, ctx);
        }
        if seg.flags.rst() {
            // A RST stands where its sender had got to: bytes between what
            // was delivered (or waits) and it were sent but never
            // captured. Marked like a FIN, the close counts them as a
            // skipped hole, after the waiting data is flushed past its
            // holes. (Data waiting beyond the RST is only flushed.)
            let conn = self.table.get_mut(i);
            let h = &mut conn.halves[di(d)];
            if let Some(start) = h.offset_of(seg.data_seq()) {
                // At its own sequence number: its payload, captured or
                // not, is not the stream's (dropped above). A RST one past
                // a pending FIN follows that FIN, which took the sequence
                // number before it: the data ended at the FIN.
                let mut end = start;
                if h.pending_fin().is_some_and(|p| end == p as i64 + 1) {
                    end -= 1;
                }
                let beyond = |e: u64| e <= end as u64;
                let open =
                    h.fin().is_none() && !h.closed && h.last_piece_end().map_or(true, beyond);
                if open && end > h.next as i64 {
                    h.set_fin(end as u64);
                }
            }
            self.core.stats.conns_closed_rst += 1;
            self.close(
                i,
                &Context {
                    cause: Cause::Rst,
                    ..*ctx
                },
            );
            return;
        }
        self.close_if_finished(i, ctx);
    }

    /// Closes connection `i` (cause [`Cause::Fin`]) if both its halves
    /// reached their FIN: on a segment, or when a flush, a memory flush or
    /// an acknowledged FIN delivered up to the FIN of the second.
    fn close_if_finished(&mut self, i: u32, ctx: &Context) {
        let c = self.table.get(i);
        if c.halves[0].closed && c.halves[1].closed && !c.closed {
            self.core.stats.conns_closed_fin += 1;
            self.close(
                i,
                &Context {
                    cause: Cause::Fin,
                    ..*ctx
                },
            );
        }
    }

    /// A RST ends the connection only if its sequence number is where the
    /// receiver expects the sender's next byte (RFC 5961 §3 accepts an exact
    /// match and challenges anything else in the window; a passive observer
    /// cannot see the challenge, so it allows the window it can vouch for:
    /// from one byte before the next expected byte to `rst_window` after).
    /// A blind RST with a guessed sequence number cannot tear the stream down.
    fn rst_acceptable(&self, i: u32, seg: &Segment<'_>) -> bool {
        let h = &self.table.get(i).halves[di(seg.dir)];
        match h.offset_of(seg.seq) {
            None => true,
            Some(off) => {
                let next = h.next as i64;
                off >= next - 1 && off <= next + self.core.cfg.rst_window as i64
            }
        }
    }

    fn on_data(&mut self, i: u32, seg: &Segment<'_>, ctx: &Context) {
        let d = seg.dir;
        let conn = self.table.get_mut(i);
        let Some(start) = conn.halves[di(d)].offset_of(seg.data_seq()) else {
            return;
        };
        let end = start + seg.payload.len() as i64;
        let h = &mut conn.halves[di(d)];
        if let Some((p, from)) = h.pending_fin_from() {
            // Data that begins no later than the pending FIN's segment and
            // goes past the FIN takes its place, as in a receiver's
            // out-of-order queue: the FIN is dropped and the data read on
            // (kept, a FIN sent ahead of it cut the stream for the
            // reassembler alone). Only data within the window counts.
            let reach = end + i64::from(seg.payload_missing);
            let window = i64::from(self.core.cfg.max_window);
            if start <= from as i64 && reach > p as i64 && reach - (h.next as i64) <= window {
                h.drop_pending_fin();
            }
        }
        let mut data = Data {
            start,
            bytes: seg.payload,
            ts: seg.ts,
            bounds: (start.max(0) as u64, end.max(0) as u64),
        };
        // Each round either settles the payload or forces buffered data out
        // (strictly fewer pages), so the loop ends. A round that needs room
        // hands back what it has not counted yet, and only that is offered
        // again (or dropped): each byte is counted once.
        loop {
            #[cfg(test)]
            {
                self.placements += 1;
            }
            let conn = self.table.get_mut(i);
            match self.core.data(conn, d, data, ctx) {
                Outcome::Done => break,
                Outcome::NeedRoom(pages, rest) => {
                    data = rest;
                    if !self.make_room(i, d, rest.start, pages, ctx) {
                        let conn = self.table.get_mut(i);
                        let n = rest.bytes.len() as u64;
                        self.core.drop_for_memory(conn, d, n, ctx);
                        break;
                    }
                }
            }
        }
        if seg.payload_missing > 0 {
            let conn = self.table.get_mut(i);
            let h = &mut conn.halves[di(d)];
            if end == h.next as i64 {
                self.core.skip_lost(h, seg.payload_missing as u64);
                let at_fin = |f: Option<u64>| f == Some(h.next);
                if (at_fin(h.fin()) || at_fin(h.pending_fin())) && !h.closed {
                    // The capture cut the segment that carried the FIN:
                    // the skip is reported with the end.
                    self.core.deliver(conn, d, None, seg.ts, ctx);
                }
            }
        }
    }

    /// Frees pages for `need` more, for data of connection `i`'s direction
    /// `d` starting at stream offset `at`: while the connection is over its
    /// share, the pages its contiguous pieces free when packed
    /// ([`Core::collapse`]), then its farthest data when its pages are
    /// mostly empty (see [`Self::prune_for`]), else runs of its oldest
    /// buffered data; when only the global limits are met, the globally
    /// oldest buffered data, one run at a time until there is room. Returns
    /// early, for the caller to place the data again, once a flush of `d`
    /// reached `at`: among flushes only that changes what the data
    /// overlaps (a flush of `d` that stays below `at` took pieces wholly
    /// before it), so only then can it need fewer pages or none. (A
    /// packing changes no stretch the data needs pages for; a prune of
    /// pieces the data overlaps makes it need more, which the next
    /// placement asks for.) Making room one run per call instead cost a walk over every piece the data overlaps per run: a
    /// segment laid over thousands of pieces, with the pool full of
    /// one-page runs, took a third of a second. `false`: nothing is left
    /// to flush and there is still no room, or the data lies past all a
    /// pruned connection could give up ([`Prune::Refuse`]).
    fn make_room(&mut self, i: u32, d: Dir, at: i64, need: usize, ctx: &Context) -> bool {
        let ctx = Context {
            cause: Cause::MemoryPressure,
            ..*ctx
        };
        loop {
            let (per_conn, global) = self.core.room_for(self.table.get(i), need);
            if per_conn && global {
                return true;
            }
            let mut own = None;
            if !per_conn {
                // Runs of small contiguous pieces packed first, as a
                // receiver collapses its queue before it prunes any of it.
                let conn = self.table.get_mut(i);
                if self.core.collapse(conn, d) + self.core.collapse(conn, d.reverse()) > 0 {
                    continue;
                }
                if self.core.sparse(self.table.get(i)) {
                    match self.prune_for(i, d, at, need, &ctx) {
                        Prune::Again => continue,
                        Prune::Refuse => return false,
                        Prune::Flush(o) => own = Some(o),
                    }
                }
            }
            let (j, dj) = match own.map(|o| (i, o)) {
                Some(jd) => jd,
                None => match per_conn.then(|| self.oldest_buffered()).flatten() {
                    Some(jd) => jd,
                    // Over its own share, or nothing else indexed: this
                    // connection's own oldest data, if any.
                    None => match self.table.get_mut(i).oldest_dir() {
                        Some(di) => (i, di),
                        None => return false,
                    },
                },
            };
            let conn = self.table.get_mut(j);
            self.core.stats.memcap_flushes += 1;
            self.core.flush_run(conn, dj, &ctx);
            if j != i {
                // The flush may have reached the last FIN of `j` (`i`'s own
                // segment closes it when done).
                self.close_if_finished(j, &ctx);
            }
            // Taken off the index, it goes back on with what it still holds.
            self.note_buffered(j, self.now);
            if j == i && dj == d {
                // Reached the data, or ended the half before it (a FIN
                // the flush reached): placing it again settles it either way.
                let h = &self.table.get(i).halves[di(d)];
                if h.next as i64 >= at || h.closed || h.fin().is_some() {
                    return true;
                }
            }
        }
    }

    /// Connection `i` is over its page share with its pages less than a
    /// quarter full: a flood of small segments, each in a page of its
    /// own, holds it there. Flushing its oldest run, as for a connection
    /// whose pages are full, would skip the hole before it: the bytes
    /// that fill it later, the ones its receiver reads, would be dropped
    /// as late, for the few thousand one-byte segments it takes to fill a
    /// share. A receiver whose buffer small segments overrun prunes its
    /// out-of-order queue from the far end instead, down to the segment
    /// it makes room for, and drops that segment when pruning is not
    /// enough: the hole stays open, the sender sends the pruned data again.
    ///
    /// So the direction holding more of the share gives up its farthest
    /// pieces, an eighth of the share at a time: `d`'s only those past
    /// `at`; none of what the receiver acknowledged.
    #[cold]
    #[inline(never)]
    fn prune_for(&mut self, i: u32, d: Dir, at: i64, need: usize, ctx: &Context) -> Prune {
        let share = self.core.cfg.max_pages_per_conn;
        let conn = self.table.get_mut(i);
        let pages = conn.pages();
        let most = (pages + need).saturating_sub(share - share / 8).max(1);
        let o = d.reverse();
        let victim = if conn.halves[di(o)].piece_count() > conn.halves[di(d)].piece_count() {
            o
        } else {
            d
        };
        let from = if victim == d { at.max(0) as u64 } else { 0 };
        let pruned = self.core.prune(conn, victim, from, most, ctx);
        self.note_buffered(i, self.now);
        match (pruned, victim == d) {
            (0, true) => Prune::Refuse,
            (0, false) => Prune::Flush(o),
            _ => Prune::Again,
        }
    }

    /// Takes the connection with the oldest buffered data off the
    /// buffered-data index, with the direction to flush; `None` when
    /// nothing indexed holds data. Stale entries met on the way go.
    fn oldest_buffered(&mut self) -> Option<(u32, Dir)> {
        while let Some(Reverse((ts, j, gen))) = self.buffered.pop() {
            if !self.is_queued(ts, j, gen) {
                continue;
            }
            self.queued[j as usize] = NOT_QUEUED;
            if let Some(d) = self.table.get_mut(j).oldest_dir() {
                return Some((j, d));
            }
        }
        None
    }

    #[inline]
    fn on_ack(&mut self, i: u32, seg: &Segment<'_>, ctx: &Context) {
        let o = seg.dir.reverse();
        let max_window = self.core.cfg.max_window as i64;
        let conn = self.table.get_mut(i);
        let h = &conn.halves[di(o)];
        // Held SYN data was settled first (header prediction leaves such
        // segments to the general path, which does), unless the ACK was
        // no answer (see `settle_syn_data`): then it acknowledges nothing.
        if h.syn_hold {
            return;
        }
        let Some(ack) = h.offset_of(seg.ack) else {
            return;
        };
        // Mostly the ACK is of bytes delivered already: nothing to do.
        if ack <= h.next as i64 || ack - (h.next as i64) > max_window {
            return;
        }
        self.ack_past_next(i, seg, ack as u64, ctx);
    }

    /// An ACK past what direction `seg.dir.reverse()` delivered (`ack`, as
    /// an offset). Out of line: the ACK path stays small enough to inline
    /// (inlined, an inline replay ran 0.5 % more instructions, callgrind).
    #[inline(never)]
    fn ack_past_next(&mut self, i: u32, seg: &Segment<'_>, ack: u64, ctx: &Context) {
        let o = seg.dir.reverse();
        let max_window = self.core.cfg.max_window as i64;
        let conn = self.table.get_mut(i);
        let h = &conn.halves[di(o)];
        if let Some(p) = h.pending_fin().filter(|&p| ack > p) {
            let h = &mut conn.halves[di(o)];
            if ack == p + 1 {
                // The receiver took the FIN it had queued: it acknowledges
                // that one number past it.
                h.set_fin(p);
                if h.has_pieces() {
                    self.core.drop_past_fin(conn, o, p, ctx);
                }
            } else {
                // It took data past the FIN: the FIN was dropped as old.
                h.settle_pending_fin(ack);
            }
        }
        let conn = self.table.get_mut(i);
        let h = &conn.halves[di(o)];
        if h.fin().is_some_and(|fin| ack > fin) && !h.closed {
            self.fin_acked(i, o, ctx);
        } else if h.has_pieces() {
            let h = &mut conn.halves[di(o)];
            h.acked_hole = h.acked_hole.max(ack);
        } else if h.fin().is_none() {
            // Taken only from a segment standing where its own sender is
            // (as a RST must): a stray from an earlier use of the 4-tuple,
            // or a blind one, would otherwise make the close skip up to
            // `max_window` bytes nobody sent.
            let sender = &conn.halves[di(seg.dir)];
            let at = sender
                .offset_of(seg.seq)
                .map(|off| off - sender.next as i64);
            if at.is_some_and(|at| at >= -max_window && at <= self.core.cfg.rst_window as i64) {
                let h = &mut conn.halves[di(o)];
                h.acked_to = h.acked_to.max(ack);
            }
        }
    }

    /// The peer acknowledged up to `ack` while direction `o`'s SYN data
    /// waited: past the SYN, it took the data, which goes out now; at the
    /// SYN itself, it refused it, and the data is dropped
    /// ([`DropReason::SynRefused`]): the client sends the stream's first
    /// bytes again after the handshake. An acknowledgment before the SYN's
    /// data, or farther past it than a window, is no answer (a blind or
    /// broken one): the data keeps waiting. Rare: off the packet path.
    #[cold]
    #[inline(never)]
    fn settle_syn_data(&mut self, i: u32, o: Dir, ack: Seq, ctx: &Context) {
        let window = i64::from(self.core.cfg.max_window.min(i32::MAX as u32));
        let conn = self.table.get_mut(i);
        let h = &mut conn.halves[di(o)];
        let len = u64::from(h.syn_len);
        let Some(at) = h
            .offset_of(ack)
            .filter(|&a| (0..=len as i64 + window).contains(&a))
        else {
            return;
        };
        h.syn_hold = false;
        // How much of it the peer took (TCP Fast Open takes all or none;
        // a part is possible, and the client sends the rest again).
        let taken = at.min(len as i64) as u64;
        if taken == 0 {
            h.syn_refused = true;
        }
        if taken < len {
            self.core.drop_held_syn(conn, o, (taken, len), ctx);
        }
        if taken > 0 {
            self.core.flush_run(conn, o, ctx);
        }
    }

    /// The receiver acknowledged the FIN of direction `o`, so it had every
    /// byte before it: the holes left were lost by the capture, and no
    /// segment of the sender may come to end the grace. Skips them now, up
    /// to the FIN (which closes the half). Rare: kept off the ACK path.
    #[cold]
    #[inline(never)]
    fn fin_acked(&mut self, i: u32, o: Dir, ctx: &Context) {
        let conn = self.table.get_mut(i);
        if let Some(fin) = conn.halves[di(o)].fin() {
            self.core.skip_acked(conn, o, fin, ctx);
            self.core.skip_to_fin(conn, o, ctx);
        }
    }

    /// The sender moved on after the receiver acknowledged past a hole:
    /// the hole was lost by the capture. Skip it and deliver what follows.
    ///
    /// The test is inline and the skip out of line: this runs on every
    /// in-order delivery, and left whole to the inliner it once went out
    /// of line (1 % more instructions in an inline replay, callgrind).
    #[inline]
    /// `from` is where the direction's stream stood before the segment.
    fn skip_acked_hole(&mut self, i: u32, d: Dir, from: u64, ctx: &Context) {
        if self.table.get_mut(i).halves[di(d)].acked_hole != 0 {
            self.skip_acked_hole_now(i, d, from, ctx);
        }
    }

    /// The receiver acknowledged up to `acked_to` while nothing waited, and
    /// `seg`'s data, at or past that point, now waits behind a hole: the
    /// hole was lost by the capture, as one an acknowledgment covers while
    /// data waits (`acked_hole`), and this segment is the one of grace.
    /// (Left waiting, the data was still held when the sender sent part of
    /// it again, and a last-wins policy took that copy, which the receiver
    /// had not.)
    fn acked_before(&mut self, i: u32, seg: &Segment<'_>) {
        let h = &mut self.table.get_mut(i).halves[di(seg.dir)];
        if h.acked_to > h.next
            && h.has_pieces()
            && h.offset_of(seg.data_seq())
                .is_some_and(|s| s >= h.acked_to as i64)
        {
            h.acked_hole = h.acked_hole.max(h.acked_to);
        }
    }

    /// [`skip_acked_hole`](Self::skip_acked_hole)'s skip.
    #[cold]
    #[inline(never)]
    fn skip_acked_hole_now(&mut self, i: u32, d: Dir, from: u64, ctx: &Context) {
        let conn = self.table.get_mut(i);
        let h = &mut conn.halves[di(d)];
        if h.next > from && h.next < h.acked_hole && h.has_pieces() {
            // The segment filled the front of the hole, not all of it: the
            // capture shows the data after the ACK, maybe in several
            // segments (a retransmission, resegmented). The grace goes on
            // while each fills more; skipping now dropped the rest as late.
            return;
        }
        let ack = std::mem::take(&mut h.acked_hole);
        self.core.skip_acked(conn, d, ack, ctx);
    }

    fn on_fin(&mut self, i: u32, seg: &Segment<'_>, ctx: &Context) {
        let conn = self.table.get_mut(i);
        let h = &mut conn.halves[di(seg.dir)];
        let Some(start) = h.offset_of(seg.data_seq()) else {
            return;
        };
        // The FIN follows the whole payload, captured or not.
        let fin = start + seg.payload.len() as i64 + i64::from(seg.payload_missing);
        if fin < h.next as i64 || h.fin().is_some() {
            return;
        }
        if fin - h.next as i64 > self.core.cfg.max_window as i64 {
            // Farther ahead than any data may be: not this stream's FIN
            // (data that far is dropped too). Taken, it would close the
            // half behind a hole of gigabytes.
            return;
        }
        if start > h.next as i64 {
            // On a segment ahead of the next byte: the FIN holds only once
            // delivery reaches it exactly (see `Half::pending_fin`). Taken
            // at once, a FIN sent ahead of data the receiver then took cut
            // the stream there for the reassembler alone. (On a segment at
            // the next byte, its data is taken and the FIN with it.) As in
            // a receiver's out-of-order queue: a FIN whose whole segment
            // waiting data already holds is dropped (every byte present);
            // one whose segment covers the pending FIN's takes its place;
            // else the nearest holds (reached first, it ends the stream).
            let (from, fin) = (start as u64, fin as u64);
            if h.one_segment_covers(from, fin + 1) {
                return;
            }
            let take = match h.pending_fin_from() {
                None => true,
                Some((p, s)) => fin < p || from <= s,
            };
            if take {
                h.set_pending_fin(fin, from);
            }
            return;
        }
        h.set_fin(fin as u64);
        if h.has_pieces() {
            self.core.drop_past_fin(conn, seg.dir, fin as u64, ctx);
        }
        let h = &mut conn.halves[di(seg.dir)];
        if fin as u64 == h.next {
            if h.started {
                // A FIN right at the next byte: its half's end is a
                // delivery of its own (a FIN with data ends with it).
                self.core.deliver(conn, seg.dir, None, seg.ts, ctx);
            } else {
                h.closed = true;
            }
        }
    }

    /// Keeps the buffered-data index up to date for connection `i`, whose
    /// newest pieces (if any) are stamped `at`: queued by its oldest piece,
    /// or earlier.
    fn note_buffered(&mut self, i: u32, at: Timestamp) {
        let q = self.queued[i as usize];
        if q != NOT_QUEUED && at >= q {
            // Queued no later than anything buffered since: nothing to do,
            // and no lookup of the oldest piece (the common case for a
            // connection with pieces).
            return;
        }
        let gen = self.table.gen(i);
        if !self.table.is_live(i, gen) {
            return;
        }
        let Some(ts) = self.table.get_mut(i).oldest_ts() else {
            return;
        };
        // The last instant stands for "not queued".
        let ts = ts.min(Timestamp(NOT_QUEUED.0 - 1));
        let q = &mut self.queued[i as usize];
        if ts < *q {
            *q = ts;
            self.buffered.push(Reverse((ts, i, gen)));
            if let Some(t) = self.core.cfg.flush_timeout_ns {
                self.note_due(ts, t);
            }
            self.bound_buffered();
        }
    }

    /// Whether a popped entry is its connection's live one.
    fn is_queued(&self, ts: Timestamp, i: u32, gen: u32) -> bool {
        live_entry(&self.table, &self.queued, (ts, i, gen))
    }

    /// Entries in the buffered-data heap, stale ones included.
    #[cfg(test)]
    pub(crate) fn buffered_entries(&self) -> usize {
        self.buffered.len()
    }

    /// Drops the stale entries (of connections that are gone, or queued
    /// again earlier) once they outnumber the live connections (plus
    /// slack): a live connection has one live entry, so the heap stays
    /// within twice the table, and the rebuild is amortised O(1) per push.
    /// Without it, connections opened, given an out-of-order segment and
    /// reset, over and over, grew the heap by an entry each until their
    /// entries came up at the flush timeout (or never, with no timeout).
    fn bound_buffered(&mut self) {
        let (table, queued) = (&self.table, &self.queued);
        bound_stale(&mut self.buffered, table.len(), |&Reverse(e)| {
            live_entry(table, queued, e)
        });
    }

    /// Ends connection `i`: everything buffered is delivered (holes skipped
    /// and counted), then `complete` is called once. The connection is
    /// forgotten or, if the stream asks, lingers closed.
    fn close(&mut self, i: u32, ctx: &Context) -> bool {
        let conn = self.table.get_mut(i);
        if conn.closed {
            return false;
        }
        for d in [conn.client_dir, conn.client_dir.reverse()] {
            self.core.close_half(conn, d, ctx);
        }
        conn.closed = true;
        self.core.stats.conns_closed += 1;
        let forget = conn.stream.complete(ctx);
        if forget {
            self.table.remove(i);
        } else {
            self.lingering.push_back((ctx.ts, i, self.table.gen(i)));
            self.note_due(ctx.ts, self.core.cfg.linger_ns);
            self.bound_lingering();
        }
        forget
    }

    /// Closes connection `i` (if still open) and forgets it either way;
    /// the linger entry `close` just queued for it goes too.
    fn close_and_forget(&mut self, i: u32, ctx: &Context) {
        if !self.close(i, ctx) {
            let gen = self.table.gen(i);
            if self
                .lingering
                .back()
                .is_some_and(|&(_, j, g)| (j, g) == (i, gen))
            {
                self.lingering.pop_back();
            }
            self.table.remove(i);
        }
    }

    /// Drops the linger entries of connections that are gone (forgotten
    /// at once, replaced by a new connection on the same tuple, evicted)
    /// once they outnumber the live connections twice over (plus slack):
    /// a lingering connection has one live entry, so the queue stays within
    /// twice the table, amortised O(1) per close. Without it, entries left
    /// only as packet time passed the linger time, so a connection churn
    /// under stalled timestamps (a SYN and a RST on one tuple, over and
    /// over) grew the queue by one each, without limit.
    fn bound_lingering(&mut self) {
        let live = self.table.len();
        if self.lingering.len() > 2 * live + STALE_SLACK {
            let table = &self.table;
            self.lingering
                .retain(|&(_, i, gen)| table.is_live(i, gen) && table.get(i).closed);
            self.lingering
                .shrink_to(2 * self.lingering.len() + STALE_SLACK);
        }
    }

    /// Bytes allocated for kept and recent bytes (see `Core`).
    #[cfg(test)]
    pub(crate) fn aside_alloc(&self) -> usize {
        self.core.aside_alloc()
    }

    /// Kept bytes moved to drop a head before them (see `Core`).
    #[cfg(test)]
    pub(crate) fn kept_moved(&self) -> u64 {
        self.core.kept_moved
    }

    /// Times a payload was offered to its half (see `placements`).
    #[cfg(test)]
    pub(crate) fn placements(&self) -> u64 {
        self.placements
    }

    /// Entries in the linger queue, stale ones included.
    #[cfg(test)]
    pub(crate) fn linger_entries(&self) -> usize {
        self.lingering.len()
    }

    /// Moves packet time to `now` (never backwards) and runs the configured
    /// flush and idle timeouts. The engine calls this on idle workers with
    /// the dispatcher's time watermark. One call steps over at most 256
    /// stale timer entries (of connections gone) and leaves the rest to
    /// the next calls: after a mass closing, a timeout behind them fires
    /// that many calls late.
    #[inline]
    pub fn advance_time(&mut self, now: Timestamp) {
        if now <= self.now {
            return;
        }
        self.now = now;
        if now >= self.due {
            self.run_timers(now);
        }
    }

    /// An entry stamped `at` was queued for a timer of `timeout_ns`: it
    /// comes due when packet time passes `at + timeout_ns`.
    #[inline]
    fn note_due(&mut self, at: Timestamp, timeout_ns: u64) {
        self.due = self.due.min(due_after(at, timeout_ns));
    }

    /// Runs the timers that came due at `now`, then sets when the next may.
    #[inline(never)]
    fn run_timers(&mut self, now: Timestamp) {
        let linger = Timestamp(now.0.saturating_sub(self.core.cfg.linger_ns));
        while let Some(&(closed_at, i, gen)) = self.lingering.front() {
            if closed_at >= linger {
                break;
            }
            self.lingering.pop_front();
            if self.table.is_live(i, gen) && self.table.get(i).closed {
                // Strays refresh a lingering connection (FIN retransmissions
                // can go on for minutes).
                let seen = self.table.last_seen(i);
                if seen >= linger {
                    self.lingering.push_back((seen, i, gen));
                } else {
                    self.table.remove(i);
                }
            }
        }
        if let Some(t) = self.core.cfg.idle_timeout_ns {
            let cutoff = Timestamp(now.0.saturating_sub(t));
            let n = self.close_idle_before(cutoff, Cause::IdleTimeout, IDLE_STEPS);
            self.core.stats.conns_closed_idle += n as u64;
        }
        if let Some(t) = self.core.cfg.flush_timeout_ns {
            let cutoff = Timestamp(now.0.saturating_sub(t));
            self.flush_before(cutoff, Cause::FlushTimeout, IDLE_STEPS);
        }
        // From what is left at the heads of the queues (work cut short by
        // the step limits is due at once).
        let cfg = &self.core.cfg;
        let mut due = Timestamp(u64::MAX);
        if let Some(&(closed_at, ..)) = self.lingering.front() {
            due = due.min(due_after(closed_at, cfg.linger_ns));
        }
        if let (Some(t), Some(at)) = (cfg.idle_timeout_ns, self.table.first_activity()) {
            due = due.min(due_after(at, t));
        }
        if let (Some(t), Some(&Reverse((since, ..)))) = (cfg.flush_timeout_ns, self.buffered.peek())
        {
            due = due.min(due_after(since, t));
        }
        self.due = due;
    }

    /// Delivers, skipping holes, all buffered data older than `cutoff`,
    /// dropping at most `steps` stale entries on the way (see
    /// [`IDLE_STEPS`]).
    fn flush_before(&mut self, cutoff: Timestamp, cause: Cause, mut steps: usize) -> usize {
        let ctx = Context {
            ts: self.now,
            cause,
        };
        let mut n = 0;
        while let Some(&Reverse((since, i, gen))) = self.buffered.peek() {
            if since >= cutoff {
                break;
            }
            if !self.is_queued(since, i, gen) {
                // Stale (the connection is gone, or queued again earlier).
                let Some(left) = steps.checked_sub(1) else {
                    break;
                };
                steps = left;
                self.buffered.pop();
                continue;
            }
            self.buffered.pop();
            self.queued[i as usize] = NOT_QUEUED;
            let conn = self.table.get_mut(i);
            let mut flushed = false;
            for d in [Dir::LoToHi, Dir::HiToLo] {
                flushed |= self.core.flush_older(conn, d, cutoff, &ctx);
            }
            if flushed {
                n += 1;
                if cause == Cause::FlushTimeout {
                    self.core.stats.timeout_flushes += 1;
                }
                self.close_if_finished(i, &ctx);
            }
            self.note_buffered(i, self.now);
        }
        n
    }

    /// Delivers buffered data that arrived before `t`, skipping the holes
    /// before it (gopacket's `FlushWithOptions{T}`). Returns the number of
    /// connections flushed.
    pub fn flush_older_than(&mut self, t: Timestamp) -> usize {
        self.flush_before(t, Cause::Explicit, usize::MAX)
    }

    /// Closes connections idle since before `t` (gopacket's
    /// `FlushCloseOlderThan`). Returns how many were closed.
    pub fn close_older_than(&mut self, t: Timestamp) -> usize {
        self.close_idle_before(t, Cause::Explicit, usize::MAX)
    }

    /// Closes and forgets connections idle since before `cutoff`, the
    /// idlest first, taking at most `steps` heap steps that close nothing
    /// (see [`Table::idle_before`]); returns how many were still open.
    fn close_idle_before(&mut self, cutoff: Timestamp, cause: Cause, mut steps: usize) -> usize {
        let ctx = Context {
            ts: self.now,
            cause,
        };
        let mut n = 0;
        while let Some(i) = self.table.idle_before(cutoff, &mut steps) {
            n += usize::from(!self.table.get(i).closed);
            self.close_and_forget(i, &ctx);
        }
        n
    }

    /// Closes every connection: buffered data is delivered (holes skipped)
    /// and each open stream's `complete` is called exactly once. Returns how
    /// many were closed.
    pub fn flush_all(&mut self) -> usize {
        let ctx = Context {
            ts: self.now,
            cause: Cause::Explicit,
        };
        let mut n = 0;
        for i in self.table.by_age() {
            n += usize::from(!self.table.get(i).closed);
            self.close_and_forget(i, &ctx);
        }
        debug_assert_eq!(self.table.len(), 0);
        self.buffered.clear();
        self.lingering.clear();
        self.ignored_syns.clear();
        self.queued.iter_mut().for_each(|q| *q = NOT_QUEUED);
        n
    }
}

/// The first instant at which an entry stamped `at` is past a timeout of
/// `timeout_ns`: the timers fire for `at < now - timeout_ns`.
fn due_after(at: Timestamp, timeout_ns: u64) -> Timestamp {
    Timestamp(at.0.saturating_add(timeout_ns).saturating_add(1))
}

/// Whether buffered-heap entry `(ts, slot, generation)` is the live one of
/// its connection (`queued` holds the time each slot's live entry carries).
fn live_entry<C>(
    table: &Table<C>,
    queued: &[Timestamp],
    (ts, i, gen): (Timestamp, u32, u32),
) -> bool {
    table.is_live(i, gen) && queued[i as usize] == ts
}

/// A SYN (or SYN-ACK) fixes where the direction's stream starts.
/// Packet time a connection whose SYN's sender sent data must have been
/// quiet before a SYN with a new initial sequence number may start it anew
/// while it is not closing (see [`Reassembler::is_reuse`]; one that sent
/// nothing gets it ignored, [`Reassembler::ignores_syn`]): a tuple is used again only after the
/// side that closed first left TIME_WAIT (a minute, or a second with
/// Linux's `tcp_tw_reuse`), and a handshake is retried after its SYN went
/// unanswered for a second or more, so a capture that lost the end of the
/// old connection still sees the new one.
pub(crate) const SYN_QUIET_NS: u64 = 1_000_000_000;

/// Takes a segment's urgent pointer as a Linux receiver takes it
/// (`tcp_check_urg`, reading the pointer as the BSDs do): the marked byte
/// is the one before `seq + pointer` (the first, for a pointer of 0). A
/// mark behind the next expected byte, or not past the current one, is
/// ignored, as is a segment the receiver discards before its urgent
/// pointer: one without ACK, a RST, one wholly before the next expected
/// byte or beyond the window, a SYN other than the SYN-ACK that finds its
/// receiver still waiting for it (whose data offsets start one past the
/// SYN), and one sent while the sender's SYN data awaits its answer.
fn note_urgent<Pg>(h: &mut Half<Pg>, seg: &Segment<'_>, max_window: u32) {
    let f = seg.flags;
    if !f.ack() || f.rst() || h.syn_hold {
        return;
    }
    let Some(start) = h.offset_of(seg.seq) else {
        return;
    };
    let next = h.next as i64;
    if f.syn() {
        if h.started || h.next != 0 || h.has_pieces() {
            return;
        }
    } else {
        let end = start + seg.payload.len() as i64 + i64::from(seg.payload_missing);
        if end < next || start > next + i64::from(max_window.min(i32::MAX as u32)) {
            return;
        }
    }
    let mark = start + i64::from(seg.urgent.saturating_sub(1));
    if mark < next || h.urgent_mark().is_some_and(|m| mark as u64 <= m) {
        return;
    }
    h.set_urgent_mark(Some(mark as u64));
}

/// A late or retransmitted SYN of this very stream: its ISN is the one
/// seen, or, for a stream picked up from its data before any SYN of it
/// was seen, sits just before the stream's first byte (a capture that
/// shows the SYN after data it preceded on the wire). Once a SYN was
/// seen, one with another ISN just before it is not the same: taken, it
/// moved the stream's start back over bytes sent ahead of the real ones,
/// which the receiver drops as old.
fn is_same_syn<Pg>(h: &Half<Pg>, seg: &Segment<'_>) -> bool {
    match h.isn {
        Some(isn) => isn == seg.seq,
        None => h
            .offset_of(seg.seq + 1)
            .is_some_and(|off| (-(1 << 20)..=0).contains(&off)),
    }
}

/// Either side sent a FIN, or a half is closed.
fn closing<S, Pg>(c: &Conn<S, Pg>) -> bool {
    c.halves.iter().any(|h| h.fin().is_some() || h.closed)
}

fn on_syn<Pg>(h: &mut Half<Pg>, seg: &Segment<'_>) {
    match h.isn {
        Some(isn) if isn == seg.seq => {}
        // A different ISN before any data: the handshake was retried.
        _ if h.next == 0 && !h.has_pieces() => {
            h.isn = Some(seg.seq);
            h.base = Some(seg.seq + 1);
            // A mark read against the old start means nothing now.
            h.set_urgent_mark(None);
        }
        _ => {}
    }
}

/// What [`Reassembler::prune_for`] made of a connection over its share.
enum Prune {
    /// Pieces went: look for room again.
    Again,
    /// The incoming direction holds the most and nothing past the data
    /// could go: the data is dropped, as a receiver drops a segment that
    /// would land past everything it pruned.
    Refuse,
    /// The other direction holds the most and nothing of it could go
    /// (its receiver acknowledged it all): that direction's oldest run is
    /// flushed, its hole skipped as the acknowledgment says it was lost
    /// (never the incoming direction's hole, which stays open).
    Flush(Dir),
}
