//! Unit tests of the reassembler's paths, hand-built segments.

use std::collections::HashMap;
use std::net::IpAddr;

use weft_wire::{Dir, FlowKey, Seq, TcpFlags, Timestamp};

use crate::*;

pub(crate) const S: u8 = TcpFlags::SYN.0;
pub(crate) const A: u8 = TcpFlags::ACK.0;
pub(crate) const F: u8 = TcpFlags::FIN.0;
pub(crate) const R: u8 = TcpFlags::RST.0;
pub(crate) const U: u8 = TcpFlags::URG.0;

/// What one connection's stream saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Seen {
    pub bytes: [Vec<u8>; 2],
    pub skips: [u64; 2],
    pub deliveries: [usize; 2],
    pub conflicts: usize,
    /// Each conflict: (direction slot, offset, length, new copy won).
    pub conflict_at: Vec<(usize, u64, u32, bool)>,
    pub dropped: u64,
    pub completed: usize,
    pub starts: [usize; 2],
    pub ends: [usize; 2],
    /// Each delivery's [`SgStats`], in order, both directions.
    pub sg_stats: Vec<SgStats>,
    /// Urgent bytes taken out: (direction slot, offset, byte).
    pub urgent: Vec<(usize, u64, u8)>,
    /// Urgent bytes the deliveries said they lacked.
    pub urgent_info: u64,
    /// Where each direction's next delivery must start (offset after the
    /// last one's new bytes, urgent bytes counted).
    pub next_offset: [u64; 2],
    /// Deliveries with bytes (`d<slot>:<bytes>`) and conflicts
    /// (`c<slot>:<offset>+<len>`), in order.
    pub log: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Rec {
    id: u64,
    seen: Seen,
    keep: Option<usize>,
    linger: bool,
    reject_odd: bool,
    stop_after: Option<usize>,
    out: std::rc::Rc<std::cell::RefCell<HashMap<u64, Seen>>>,
}

fn slot(d: Direction) -> usize {
    match d {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

impl Stream for Rec {
    fn accept(&mut self, seg: &Segment<'_>, _: Direction, _: Option<Seq>, _: &Context) -> bool {
        !(self.reject_odd && (seg.payload.len() as u32).wrapping_add(seg.ack.0) % 2 == 1)
    }
    fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
        let info = sg.info();
        let k = slot(info.dir);
        let (len, kept) = sg.lengths();
        let mut all = Vec::new();
        sg.copy_to(&mut all);
        assert_eq!(all.len(), len);
        assert_eq!(&*sg.fetch(len), &all[..]);
        self.seen.bytes[k].extend_from_slice(&all[kept..]);
        if len > kept {
            self.seen.log.push(format!("d{k}:{}", len - kept));
        }
        if info.start {
            self.seen.next_offset[k] = info.offset - info.skip;
        }
        assert_eq!(
            info.offset,
            self.seen.next_offset[k] + info.skip,
            "{info:?}"
        );
        self.seen.next_offset[k] = info.offset + (len - kept) as u64 + u64::from(info.urgent);
        self.seen.urgent_info += u64::from(info.urgent);
        self.seen.skips[k] += info.skip;
        self.seen.deliveries[k] += 1;
        self.seen.starts[k] += usize::from(info.start);
        self.seen.ends[k] += usize::from(info.end);
        self.seen.sg_stats.push(sg.stats());
        if let Some(n) = self.keep {
            sg.keep_from(len.saturating_sub(n));
        }
        if k == 0
            && self
                .stop_after
                .is_some_and(|n| self.seen.deliveries[0] >= n)
        {
            sg.stop();
        }
    }
    fn event(&mut self, ev: &Event, _: &Context) {
        match ev {
            Event::OverlapConflict {
                dir,
                offset,
                len,
                new_won,
            } => {
                self.seen.conflicts += 1;
                let c = (slot(*dir), *offset, *len, *new_won);
                self.seen.conflict_at.push(c);
                self.seen.log.push(format!("c{}:{offset}+{len}", c.0));
            }
            Event::Dropped { bytes, .. } => self.seen.dropped += *bytes as u64,
            Event::Urgent { dir, offset, byte } => {
                self.seen.urgent.push((slot(*dir), *offset, *byte));
            }
        }
    }
    fn complete(&mut self, _: &Context) -> bool {
        self.seen.completed += 1;
        self.out.borrow_mut().insert(self.id, self.seen.clone());
        !self.linger
    }
}

#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub out: std::rc::Rc<std::cell::RefCell<HashMap<u64, Seen>>>,
    pub keep: Option<usize>,
    pub linger: bool,
    /// Streams reject every segment whose payload length plus
    /// acknowledgment number is odd (pure ACKs too).
    pub reject_odd: bool,
    /// Streams stop their client-to-server direction after this many
    /// deliveries of it ([`ScatterGather::stop`]).
    pub stop_after: Option<usize>,
    pub created: u64,
}

impl StreamFactory for Recorder {
    type Stream = Rec;
    fn new_stream(&mut self, c: &ConnInfo, _: &Segment<'_>, _: &Context) -> Rec {
        self.created += 1;
        Rec {
            id: c.id,
            seen: Seen::default(),
            keep: self.keep,
            linger: self.linger,
            reject_odd: self.reject_odd,
            stop_after: self.stop_after,
            out: self.out.clone(),
        }
    }
}

pub(crate) fn key() -> (FlowKey, Dir) {
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "198.51.100.2".parse().unwrap();
    FlowKey::new(a, 40000, b, 80, 0)
}

/// The key of a connection from port `port` of another client to the
/// test server (the connection-limit tests' many connections).
fn client_key(port: u16) -> FlowKey {
    let client = "192.0.2.9".parse().unwrap();
    FlowKey::new(client, port, "198.51.100.2".parse().unwrap(), 80, 0).0
}

/// A client→server (`fwd`) or server→client segment.
pub(crate) fn seg(fwd: bool, flags: u8, seq: u32, ack: u32, payload: &[u8], t: u64) -> Segment<'_> {
    let (k, d) = key();
    let dir = if fwd { d } else { d.reverse() };
    let payload_ts = Timestamp(t * 1_000_000_000);
    Segment {
        ack: Seq(ack),
        ..Segment::new(k, dir, Seq(seq), TcpFlags(flags), payload, payload_ts)
    }
}

/// [`seg`] on another connection: 10.0.0.1:`port` to 10.0.0.1:80,
/// client to server, as tests with many connections build them.
pub(crate) fn seg_on(port: u16, flags: u8, seq: u32, payload: &[u8], t: u64) -> Segment<'_> {
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    let (k, d) = FlowKey::new(a, port, a, 80, 0);
    Segment {
        key: k,
        dir: d,
        hash: k.symmetric_hash(),
        ..seg(true, flags, seq, 1, payload, t)
    }
}

pub(crate) fn run(cfg: Config, segs: &[Segment<'_>]) -> (Seen, Stats, Reassembler<Recorder>) {
    run_with(cfg, Recorder::default(), segs)
}

pub(crate) fn run_with(
    cfg: Config,
    f: Recorder,
    segs: &[Segment<'_>],
) -> (Seen, Stats, Reassembler<Recorder>) {
    let mut r = Reassembler::new(cfg, f);
    for s in segs {
        r.process(s);
        assert!(
            r.stats().balanced(),
            "accounting after {s:?}: {:?}",
            r.stats()
        );
    }
    r.flush_all();
    let st = r.stats();
    assert!(st.balanced(), "{st:?}");
    assert_eq!(st.buffered_bytes, 0);
    let out = r.factory().out.borrow();
    let seen = out.get(&0).cloned().unwrap_or_default();
    drop(out);
    (seen, st, r)
}

fn handshake(isn_c: u32, isn_s: u32) -> Vec<Segment<'static>> {
    vec![
        seg(true, S, isn_c, 0, b"", 0),
        seg(false, S | A, isn_s, isn_c.wrapping_add(1), b"", 0),
        seg(
            true,
            A,
            isn_c.wrapping_add(1),
            isn_s.wrapping_add(1),
            b"",
            0,
        ),
    ]
}

/// A reassembler that has seen the handshake of [`key`] (ISNs 0 and 0).
fn opened(cfg: Config) -> Reassembler<Recorder> {
    let mut r = Reassembler::new(cfg, Recorder::default());
    for s in handshake(0, 0) {
        r.process(&s);
    }
    r
}

/// [`opened`], with a flush timeout of `secs` and holes the receiver
/// acknowledged skipped or not.
fn opened_flushing_after(secs: u64, skip_acked_holes: bool) -> Reassembler<Recorder> {
    opened(Config {
        skip_acked_holes,
        flush_timeout_ns: Some(secs * 1_000_000_000),
        ..Config::default()
    })
}

#[test]
fn in_order_both_directions_and_fin_close() {
    let mut v = handshake(100, 5000);
    v.push(seg(true, A, 101, 5001, b"GET / HTTP/1.0\r\n\r\n", 1));
    v.push(seg(false, A, 5001, 119, b"HTTP/1.0 200 OK\r\n\r\nbody", 1));
    v.push(seg(true, F | A, 119, 5024, b"", 2));
    v.push(seg(false, F | A, 5024, 120, b"", 2));
    v.push(seg(true, A, 120, 5025, b"", 2));
    let (seen, st, r) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(seen.bytes[1], b"HTTP/1.0 200 OK\r\n\r\nbody");
    assert_eq!(seen.completed, 1);
    assert_eq!(seen.starts, [1, 1]);
    assert_eq!(st.conns_closed_fin, 1);
    assert_eq!(
        st.conns_created, 1,
        "the final ACK must not create a connection"
    );
    assert_eq!(st.segments_no_conn, 1);
    assert_eq!(r.connections(), 0);
    assert_eq!(
        r.predicted.0, 3,
        "both data segments and the handshake's ACK take the fast path"
    );
}

/// A delivery's counts (gopacket's `TCPAssemblyStats`): spans, spans
/// from the frame, pieces that had waited and their bytes, bytes of the
/// segment over buffered data; kept bytes are a span of their own.
#[test]
fn each_delivery_counts_its_spans_pieces_and_overlap() {
    let sg = |chunks, packets, queued_pieces, queued_bytes, overlap_bytes| SgStats {
        chunks,
        packets,
        queued_pieces,
        queued_bytes,
        overlap_bytes,
    };
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1)); // in order: the frame alone
    v.push(seg(true, A, 7, 1, b"ghi", 1)); // waits behind a hole
    v.push(seg(true, A, 4, 1, b"def", 1)); // fills it: frame, then the piece
    v.push(seg(true, A, 13, 1, b"mno", 1)); // waits behind a hole
                                            // Fills [10, 13) and lies over the piece's first two bytes (equal
                                            // ones): the older copy wins them, then the rest of the piece.
    v.push(seg(true, A, 10, 1, b"jklmn", 1));
    let (seen, ..) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abcdefghijklmno");
    // The last is the end delivered at close: nothing in it.
    assert_eq!(
        seen.sg_stats,
        [
            sg(1, 1, 0, 0, 0),
            sg(2, 1, 1, 3, 0),
            sg(3, 1, 1, 1, 2),
            sg(0, 0, 0, 0, 0)
        ]
    );
    // A handler that keeps its last byte sees it as a span before the new
    // ones.
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(true, A, 4, 1, b"def", 1));
    let keeper = Recorder {
        keep: Some(1),
        ..Recorder::default()
    };
    let (seen, ..) = run_with(Config::default(), keeper, &v);
    assert_eq!(
        seen.sg_stats,
        [sg(1, 1, 0, 0, 0), sg(2, 1, 0, 0, 0), sg(1, 0, 0, 0, 0)]
    );
}

#[test]
fn out_of_order_waits_then_delivers_in_one_piece() {
    let mut v = handshake(1000, 9000);
    v.push(seg(true, A, 1011, 9001, b"world", 1));
    v.push(seg(true, A, 1016, 9001, b"!", 1));
    v.push(seg(true, A, 1001, 9001, b"hello, ", 1));
    v.push(seg(true, A, 1008, 9001, b"you", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"hello, youworld!");
    assert_eq!(st.out_of_order_segments, 2);
    assert_eq!(st.gap_bytes, 0);
}

#[test]
fn sequence_wraparound() {
    let isn = u32::MAX - 5;
    let mut v = handshake(isn, 7);
    let b = isn.wrapping_add(1);
    v.push(seg(true, A, b.wrapping_add(4), 8, b"efgh", 1)); // crosses 2^32
    v.push(seg(true, A, b.wrapping_add(8), 8, b"ijkl", 1)); // after the wrap
    v.push(seg(true, A, b, 8, b"abcd", 1)); // before the wrap
    v.push(seg(true, A, b.wrapping_add(2), 8, b"cdefgh", 1)); // retransmission
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abcdefghijkl");
    assert_eq!(st.duplicate_bytes, 6);
}

/// Data on a SYN the peer took is the stream's start; data on a RST is
/// read by no receiver (it resets the connection): dropped, counted.
#[test]
fn data_in_syn_is_delivered_and_rst_payload_is_not() {
    let v = vec![
        seg(true, S, 10, 0, b"tfo", 0),
        seg(false, S | A, 50, 14, b"", 0),
        seg(true, A, 14, 51, b"more", 0),
        seg(false, A, 51, 18, b"ok", 0),
        seg(false, R | A, 53, 18, b"bye", 1),
    ];
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"tfomore");
    assert_eq!(seen.bytes[1], b"ok");
    assert_eq!(st.dropped(DropReason::OnRst), 3);
    assert_eq!(st.conns_closed_rst, 1);
    assert_eq!(seen.completed, 1);
}

/// A receiver drops a segment without ACK (but a SYN or a RST) whole, so
/// its data is no one's stream and its FIN ends nothing: neither a decoy
/// in place of the real bytes, nor a FIN that would make them fall after
/// the close. Nor does such data open a connection.
#[test]
fn segments_without_ack_bring_no_data_and_no_fin() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"GET /a", 1));
    v.push(seg(true, F, 7, 0, b"", 1)); // a FIN without ACK
    v.push(seg(true, 0x08, 7, 0, b"DECOY", 1)); // data without ACK (PSH)
    v.push(seg(true, A, 7, 1, b"ATTACK", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"GET /aATTACK");
    assert_eq!(st.segments_no_ack, 2);
    assert_eq!(st.dropped(DropReason::NoAck), 5);
    assert_eq!(st.dropped(DropReason::AfterClose), 0);
    let v = vec![seg(true, 0x08, 1000, 0, b"stray", 0)];
    let (_, st, _) = run(Config::default(), &v);
    assert_eq!((st.conns_created, st.segments_no_ack), (0, 1));
    assert_eq!(st.dropped(DropReason::NoAck), 5);
}

/// A SYN with another ISN just before the stream's start, once the
/// handshake was seen, is not the stream's own SYN captured late: its
/// receiver drops it (and bytes before the start as old), so it moves
/// nothing; taken, it put a decoy ahead of the real request.
#[test]
fn a_syn_just_before_a_seen_start_moves_nothing() {
    let mut v = handshake(0, 0);
    v.push(seg(true, S, 0u32.wrapping_sub(100), 0, b"", 1));
    v.push(seg(true, A, 0u32.wrapping_sub(99), 1, b"DECOY", 1));
    v.push(seg(true, A, 1, 1, b"GET /evil", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"GET /evil");
    assert_eq!(st.syn_ignored, 1);
    assert_eq!(st.dropped(DropReason::BeforeStart), 5);
    // On the server's side, a SYN-ACK likewise.
    let mut v = handshake(0, 0);
    v.push(seg(false, S | A, 0u32.wrapping_sub(100), 1, b"", 1));
    v.push(seg(false, A, 0u32.wrapping_sub(99), 1, b"DECOY", 1));
    v.push(seg(false, A, 1, 1, b"200 OK", 1));
    let (seen, _, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[1], b"200 OK");
}

/// Data on a SYN that the SYN-ACK does not acknowledge was refused (a
/// server without TCP Fast Open): the bytes sent after the handshake are
/// the stream's, even when they differ.
#[test]
fn refused_syn_data_gives_way_to_what_follows_the_handshake() {
    let v = vec![
        seg(true, S, 10, 0, b"evil", 0),
        seg(true, S, 10, 0, b"evil", 0),   // the SYN again
        seg(false, S | A, 50, 11, b"", 0), // the SYN alone
        seg(true, A, 11, 51, b"good", 0),
        seg(false, A, 51, 15, b"", 0),
    ];
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"good");
    // The SYN's copy held once (the second counted as a duplicate), then
    // dropped.
    assert_eq!(st.dropped(DropReason::SynRefused), 4);
    assert_eq!(st.duplicate_bytes + st.overlap_bytes, 4);
    assert_eq!(st.gap_bytes, 0);
}

/// Once refused, SYN data stays refused: a SYN sent again brings none, and
/// what the client sends after the handshake is the stream, even where it
/// arrives before the SYN again or a later acknowledgment.
#[test]
fn a_refusal_holds_for_the_syns_sent_again() {
    let v = vec![
        seg(true, S, 10, 0, b"evil", 0),
        seg(false, S | A, 50, 11, b"", 0), // refused
        seg(true, S, 10, 0, b"evil", 0),   // sent again
        seg(true, A, 11, 51, b"good", 0),
        seg(false, A, 51, 15, b"", 0),
    ];
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"good");
    assert_eq!(st.dropped(DropReason::SynRefused), 8);
}

/// A refusal drops the SYN's bytes only: data the capture showed past
/// them before the refusal waits on and is delivered after the bytes the
/// client sends again.
#[test]
fn a_refusal_keeps_the_data_past_the_syns() {
    let v = vec![
        seg(true, S, 10, 0, b"evil", 0),
        seg(true, A, 15, 51, b"more", 0), // seen before the SYN-ACK
        seg(false, S | A, 50, 11, b"", 0),
        seg(true, A, 11, 51, b"good", 0),
    ];
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"goodmore");
    assert_eq!(st.dropped(DropReason::SynRefused), 4);
}

/// A SYN with another ISN while the first one's data waits is a new
/// handshake: a new connection, whose own SYN data is held and taken.
#[test]
fn a_retried_syn_with_held_data_starts_a_new_connection() {
    let v = vec![
        seg(true, S, 1000, 0, b"evil", 0),
        seg(true, S, 7000, 0, b"good", 1),
        seg(false, S | A, 50, 7005, b"", 1),
        seg(true, A, 7005, 51, b"more", 1),
    ];
    let (_, st, r) = run(Config::default(), &v);
    let out = r.factory().out.borrow();
    assert_eq!(st.conns_created, 2);
    // The abandoned handshake's data, never answered, went out at its close.
    assert_eq!(out[&0].bytes[0], b"evil");
    assert_eq!(out[&1].bytes[0], b"goodmore");
}

/// A SYN-ACK that takes part of the SYN's data: the rest is the client's
/// to send again, and what it sends is the stream.
#[test]
fn a_partly_taken_syn_gives_way_where_the_peer_stopped() {
    let v = vec![
        seg(true, S, 10, 0, b"abcdef", 0),
        seg(false, S | A, 50, 14, b"", 0), // took "abc"
        seg(true, A, 14, 51, b"DEF", 0),
    ];
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abcDEF");
    assert_eq!(st.dropped(DropReason::SynRefused), 3);
}

/// Taken SYN data waits only for the first acknowledgment that covers it,
/// whichever segment carries it (here the SYN-ACK is not in the capture).
#[test]
fn taken_syn_data_goes_out_at_the_first_ack_past_it() {
    let v = vec![
        seg(true, S, 10, 0, b"tfo", 0),
        seg(false, A, 51, 14, b"resp", 0),
        seg(true, A, 14, 55, b"more", 0),
    ];
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"tfomore");
    assert_eq!(seen.bytes[1], b"resp");
    assert_eq!(st.dropped_total(), 0);
}

/// An acknowledgment before the SYN's data, or past it by more than a
/// window, answers nothing (blind, or broken): a blind one would have
/// dropped the data as refused half the time. The genuine one settles it.
#[test]
fn an_implausible_ack_does_not_settle_syn_data() {
    let v = vec![
        seg(true, S, 10, 0, b"tfo", 0),
        seg(false, A, 51, 10, b"", 0), // before the SYN's data
        seg(false, A, 51, 14u32.wrapping_add(1 << 31), b"", 0), // far past it
        seg(false, S | A, 50, 14, b"", 0), // takes it
        seg(true, A, 14, 51, b"more", 0),
    ];
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"tfomore");
    assert_eq!(st.dropped(DropReason::SynRefused), 0);
}

/// A segment the stream refuses does not settle SYN data: only an
/// accepted acknowledgment tells whether the peer took it.
#[test]
fn a_refused_segment_does_not_settle_syn_data() {
    // The stream refuses a segment whose payload length plus ACK is odd.
    let v = vec![
        seg(true, S, 10, 0, b"tfodat", 0),
        // Acknowledges the SYN alone (the data refused), but the stream
        // refuses it.
        seg(false, S | A, 50, 11, b"", 0),
        // Takes it (with a byte of its own, for the parity).
        seg(false, S | A, 50, 17, b"r", 0),
        seg(true, A, 17, 52, b"more", 0),
    ];
    let f = Recorder {
        reject_odd: true,
        ..Recorder::default()
    };
    let (seen, st, _) = run_with(Config::default(), f, &v);
    assert_eq!(seen.bytes[0], b"tfodatmore");
    assert_eq!(seen.bytes[1], b"r");
    assert_eq!(st.dropped(DropReason::SynRefused), 0);
    assert_eq!(st.segments_rejected, 1);
}

/// SYN data nobody answered is delivered at the close, as other waiting
/// data is.
#[test]
fn unanswered_syn_data_is_delivered_at_the_close() {
    let v = vec![seg(true, S, 10, 0, b"hello", 0)];
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"hello");
    assert_eq!((st.dropped_total(), st.gap_bytes), (0, 0));
}

#[test]
fn midstream_pickup_and_switch() {
    let v = [
        seg(true, A, 777, 1, b"abc", 0),
        seg(false, A, 1, 780, b"xyz", 0),
    ];
    let (seen, _, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes, [b"abc".to_vec(), b"xyz".to_vec()]);
    let cfg = Config {
        midstream: false,
        ..Config::default()
    };
    let (_, st, _) = run(cfg, &v);
    assert_eq!(st.dropped(DropReason::NoHandshake), 6);
    assert_eq!(st.conns_created, 0);
}

#[test]
fn acked_hole_is_skipped_at_once() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"aaaa", 1));
    // bytes 5..9 lost by the capture
    v.push(seg(true, A, 9, 1, b"cccc", 1));
    // the server acknowledges everything: the hole will never be filled
    v.push(seg(false, A, 1, 13, b"", 1));
    let mut r = Reassembler::new(Config::default(), Recorder::default());
    for s in &v {
        r.process(s);
    }
    assert_eq!(
        r.stats().delivered_bytes,
        4,
        "one segment of grace for a reordered capture"
    );
    // the client moves on without filling the hole: skip it now
    r.process(&seg(true, A, 13, 1, b"dd", 1));
    let st = r.stats();
    assert_eq!(st.delivered_bytes, 10, "delivered before any flush");
    assert_eq!(st.gap_bytes, 4);
    assert_eq!(st.acked_gaps, 1);
    r.flush_all();
    let seen = r.factory().out.borrow()[&0].clone();
    assert_eq!(seen.bytes[0], b"aaaaccccdd");
    assert_eq!(seen.skips[0], 4);
}

#[test]
fn acked_hole_filled_by_a_late_segment_loses_nothing() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"aaaa", 1));
    v.push(seg(true, A, 9, 1, b"cccc", 1));
    v.push(seg(false, A, 1, 13, b"", 1)); // the capture shows the ACK first
    v.push(seg(true, A, 5, 1, b"bbbb", 1)); // then the data it acknowledged
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"aaaabbbbcccc");
    assert_eq!(st.gap_bytes, 0);
}

/// The data an ACK covered, captured after it in several segments (a
/// retransmission cut in two): the grace lasts while each fills the
/// front of the hole. Skipping after the first dropped the second as late.
#[test]
fn acked_hole_filled_by_several_late_segments_loses_nothing() {
    let mut start = handshake(0, 0);
    start.push(seg(true, A, 1, 1, b"aaaa", 1));
    start.push(seg(true, A, 13, 1, b"dddd", 1));
    start.push(seg(false, A, 1, 17, b"", 1)); // the capture shows the ACK first
    start.push(seg(true, A, 5, 1, b"bbbb", 1)); // then the data, in two
    let mut v = start.clone();
    v.push(seg(true, A, 9, 1, b"cccc", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"aaaabbbbccccdddd");
    assert_eq!((st.gap_bytes, st.dropped_total()), (0, 0));
    // A segment that fills nothing still ends the grace.
    let mut v = start;
    v.push(seg(true, A, 17, 1, b"eeee", 1)); // past the ACK: no more fill
    let mut r = Reassembler::new(Config::default(), Recorder::default());
    for s in &v {
        r.process(s);
    }
    let st = r.stats();
    assert_eq!((st.delivered_bytes, st.gap_bytes), (16, 4));
}

#[test]
fn late_syn_of_the_same_stream_is_not_a_new_connection() {
    let v = [
        seg(false, S | A, 500, 11, b"", 0),
        seg(true, A, 11, 501, b"hello", 0),
        seg(true, S, 10, 0, b"", 0), // the SYN, captured late
        seg(true, A, 16, 501, b"!", 0),
    ];
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(st.conns_created, 1);
    assert_eq!(seen.bytes[0], b"hello!");
}

#[test]
fn blind_rst_outside_the_window_is_ignored() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(false, R, 50_000_000, 0, b"", 1)); // guessed sequence number
    v.push(seg(true, A, 4, 1, b"def", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abcdef");
    assert_eq!(st.rst_ignored, 1);
    assert_eq!(st.conns_closed_rst, 0);
}

/// The payload of a RST ignored as blind is not data: placed, it would be
/// delivered after the hole before it.
#[test]
fn an_ignored_rst_brings_no_data() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(true, R, 2_000_001, 1, b"EVIL", 1)); // past the RST window
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abc");
    assert_eq!(st.rst_ignored, 1);
    assert_eq!(st.dropped(DropReason::OutOfWindow), 4);
    assert_eq!(st.gap_bytes, 0);
}

/// A hole before a FIN, closed by the flush timeout: the connection ends
/// (cause FIN) then, not an idle timeout later.
#[test]
fn a_flush_that_reaches_the_last_fin_closes_the_connection() {
    let mut r = opened_flushing_after(10, true);
    r.process(&seg(true, A, 1, 1, b"aaaa", 0));
    r.process(&seg(true, A, 9, 1, b"cccc", 0)); // bytes 5-8 lost
    r.process(&seg(true, F | A, 13, 1, b"", 0));
    r.process(&seg(false, F | A, 1, 5, b"", 0)); // acks only what it saw
    r.process(&seg(true, A, 14, 2, b"", 0));
    assert_eq!(r.stats().conns_closed, 0);
    r.advance_time(Timestamp(12_000_000_000));
    let st = r.stats();
    assert_eq!(st.conns_closed_fin, 1, "{st:?}");
    assert_eq!(st.conns_closed_idle, 0);
    assert_eq!(st.gap_bytes, 4);
    let out = r.factory().out.borrow();
    let seen = &out[&0];
    assert_eq!(seen.bytes[0], b"aaaacccc");
    assert_eq!((seen.skips[0], seen.ends[0], seen.completed), (4, 1, 1));
}

/// The receiver acknowledging a FIN had every byte before it: a hole left
/// there was lost by the capture, skipped (and counted) at once, and the
/// connection ends with its last FIN.
#[test]
fn an_acknowledged_fin_skips_the_hole_before_it() {
    // Nothing waits after the hole; then with a piece after it.
    for extra in [&[][..], &[seg(true, A, 7, 1, b"gh", 0)][..]] {
        let mut r = opened(Config::default());
        r.process(&seg(true, A, 1, 1, b"abcd", 0));
        for s in extra {
            r.process(s);
        }
        r.process(&seg(true, F | A, 9, 1, b"", 0)); // bytes 5-8 lost
        r.process(&seg(false, F | A, 1, 10, b"", 0)); // acks the FIN
        r.process(&seg(true, A, 10, 2, b"", 0));
        let st = r.stats();
        assert_eq!(st.conns_closed_fin, 1, "{st:?}");
        assert_eq!(st.gap_bytes, 4 - 2 * extra.len() as u64);
        let out = r.factory().out.borrow();
        let seen = &out[&0];
        let want: &[u8] = if extra.is_empty() { b"abcd" } else { b"abcdgh" };
        assert_eq!(seen.bytes[0], want);
        assert_eq!(seen.skips[0], 4 - 2 * extra.len() as u64);
        assert_eq!((seen.ends[0], seen.completed), (1, 1));
    }
}

/// Every way a half that carried data ends is a delivery with `end` set:
/// a FIN right after the data, a RST, and a close (here by `flush_all`).
#[test]
fn each_way_a_stream_ends_is_an_end_delivery() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(true, F | A, 4, 1, b"", 1));
    let mut r = Reassembler::new(Config::default(), Recorder::default());
    for s in &v {
        r.process(s);
    }
    assert_eq!(r.factory().out.borrow().len(), 0, "still open");
    r.flush_all();
    let out = r.factory().out.borrow();
    assert_eq!(out[&0].ends, [1, 0], "the server sent nothing: no end");
    assert_eq!(out[&0].deliveries, [2, 0]);
    drop(out);
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(false, A, 1, 4, b"xy", 1));
    v.push(seg(true, R, 4, 0, b"", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(st.conns_closed_rst, 1);
    assert_eq!(seen.ends, [1, 1]);
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    let (seen, ..) = run(Config::default(), &v);
    assert_eq!((seen.ends, seen.deliveries), ([1, 0], [2, 0]));
    // A FIN after a hole nobody acknowledged: at close the hole is a skip,
    // counted, and delivered with the end.
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(true, F | A, 8, 1, b"", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!((seen.skips[0], seen.ends[0], st.gap_bytes), (4, 1, 4));
}

/// A RST stands where its sender had got to: data it sent before, that
/// the capture lost (here all of it), is a skipped hole at the close.
#[test]
fn a_rst_after_lost_data_reports_the_hole() {
    let mut v = handshake(0, 0);
    v.push(seg(false, A, 1, 94, b"", 1)); // the server had 93 bytes
    v.push(seg(true, R | A, 94, 1, b"", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(st.conns_closed_rst, 1);
    assert_eq!((seen.skips[0], seen.ends[0], st.gap_bytes), (93, 1, 93));
    assert!(seen.bytes[0].is_empty());
}

/// Bytes the receiver acknowledged that the capture never showed, at the
/// end of a direction (nothing of the sender follows them), are a hole at
/// the close: after a RST from the receiver, and after a close by
/// `flush_all`. (The RST, standing past 4 bytes of its sender's that were
/// lost too, is no FIN: the acknowledgment is taken whole.)
#[test]
fn an_acknowledged_tail_the_capture_lost_is_a_hole_at_the_close() {
    for rst in [true, false] {
        let mut v = handshake(0, 0);
        v.push(seg(true, A, 1, 1, b"abc", 1)); // then 5 bytes lost
        v.push(seg(false, A, 1, 9, b"", 1));
        if rst {
            v.push(seg(false, R | A, 5, 9, b"", 2));
        }
        let (seen, st, _) = run(Config::default(), &v);
        assert_eq!(st.conns_closed_rst, u64::from(rst));
        assert_eq!(seen.bytes[0], b"abc");
        assert_eq!((seen.skips[0], seen.ends[0]), (5, 1), "rst {rst}");
        let server = if rst { 4 } else { 0 };
        assert_eq!(
            (seen.skips[1], st.gap_bytes),
            (server, 5 + server),
            "rst {rst}"
        );
    }
}

/// An ACK on a segment that stands nowhere near its own sender's place (a
/// stray from an earlier use of the 4-tuple, or a blind one) does not make
/// the close skip bytes nobody sent.
#[test]
fn a_stray_ack_does_not_make_a_tail() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(false, A, 0x4000_0000, 0x1000, b"", 1)); // seq far off
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!((seen.skips[0], st.gap_bytes), (0, 0));
    // Where its sender is (its next byte, or a little past lost bytes
    // of its own), the same ACK counts.
    for seq in [1, 100] {
        let mut v = handshake(0, 0);
        v.push(seg(true, A, 1, 1, b"abc", 1));
        v.push(seg(false, A, seq, 0x1000, b"", 1));
        let (seen, st, _) = run(Config::default(), &v);
        assert_eq!((seen.skips[0], st.gap_bytes), (0xffc, 0xffc), "seq {seq}");
    }
}

/// In a graceful close whose one FIN the capture lost with the data
/// before it, the receiver's acknowledgment covers that FIN too: the
/// hole is the data alone.
#[test]
fn a_lost_fin_with_its_data_is_not_counted_as_data() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1)); // then "defgh" + FIN lost
    v.push(seg(false, A, 1, 10, b"", 1)); // acknowledges the FIN
    v.push(seg(false, F | A, 1, 10, b"", 2));
    v.push(seg(true, A, 10, 2, b"", 2));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!((seen.skips[0], seen.ends[0], st.gap_bytes), (5, 1, 5));
    assert_eq!(seen.ends[1], 0, "the server's half carried nothing");
}

/// An ACK the capture shows before the data it covers skips nothing: the
/// data comes, and is delivered.
#[test]
fn an_ack_ahead_of_its_data_leaves_no_hole() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(false, A, 1, 9, b"", 1));
    v.push(seg(true, A, 4, 1, b"defgh", 1));
    v.push(seg(false, R | A, 1, 9, b"", 2));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abcdefgh");
    assert_eq!((seen.skips[0], st.gap_bytes), (0, 0));
}

/// A RST beyond data waiting behind a hole stands where its sender got
/// to: the hole and the bytes after the waiting data are both counted.
#[test]
fn a_rst_past_waiting_data_counts_the_tail_too() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(true, A, 6, 1, b"xyz", 1)); // [3, 5) lost, waits at 5
    v.push(seg(true, R | A, 12, 1, b"", 2)); // [8, 11) lost too
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abcxyz");
    assert_eq!((seen.skips[0], st.gap_bytes), (5, 5));
    // A RST whose payload the capture cut, right past waiting data,
    // stands at its own sequence number: its payload, cut or not, is not
    // the stream's.
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(true, A, 6, 1, b"xyz", 1));
    let mut rst = seg(true, R | A, 9, 1, b"de", 2);
    rst.payload_missing = 3;
    v.push(rst);
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abcxyz");
    assert_eq!((seen.skips[0], st.gap_bytes), (2, 2));
    assert_eq!(st.dropped(DropReason::OnRst), 2);
    // A RST behind the waiting data only flushes it.
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(true, A, 6, 1, b"xyz", 1));
    v.push(seg(true, R | A, 5, 1, b"", 2));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abcxyz");
    assert_eq!((seen.skips[0], st.gap_bytes), (2, 2));
}

/// A bare FIN sent ahead of the data at its own sequence number, and that
/// data, in either order, before the hole before them fills: the data
/// takes the FIN's place in a receiver's out-of-order queue (Linux
/// replaces the FIN's segment, or drops it whole as already held), and
/// the host reads on. Kept, the FIN cut the stream for the reassembler
/// alone: the rest fell after the close.
#[test]
fn data_at_a_bare_fin_sent_ahead_takes_its_place() {
    for fin_first in [true, false] {
        let mut v = handshake(0, 0);
        let fin = seg(true, F | A, 6, 1, b"", 1);
        let attack = seg(true, A, 6, 1, b"ATTACK", 1);
        if fin_first {
            v.extend([fin, attack]);
        } else {
            v.extend([attack, fin]);
        }
        v.push(seg(true, A, 1, 1, b"hello", 1));
        v.push(seg(true, A, 12, 1, b"!", 1));
        let (seen, st, _) = run(Config::default(), &v);
        assert_eq!(seen.bytes[0], b"helloATTACK!", "FIN first: {fin_first}");
        assert_eq!(st.dropped(DropReason::AfterClose), 0);
        assert_eq!(st.conns_closed_fin, 0);
    }
}

/// Of two FINs on data sent ahead, the one whose segment covers the
/// other's takes its place (the stream ends at the later FIN); data that
/// begins inside a FIN's segment leaves the FIN to end the stream where
/// it stands, as the receiver reads the FIN's segment first.
#[test]
fn a_fin_gives_way_only_to_a_segment_that_covers_its_own() {
    let mut v = handshake(0, 0);
    v.push(seg(true, F | A, 6, 1, b"AAAAA", 1)); // [5, 10), FIN at 10
    v.push(seg(true, F | A, 6, 1, b"AAAAABB", 1)); // [5, 12), FIN at 12
    v.push(seg(true, A, 1, 1, b"01234", 1));
    v.push(seg(false, F | A, 1, 1, b"", 1)); // the server's own FIN
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"01234AAAAABB");
    assert_eq!(st.conns_closed_fin, 1, "the client's FIN at 12 holds");
    assert_eq!(st.dropped(DropReason::AfterClose), 0);
    // Data that begins inside the FIN's segment: the FIN holds.
    let mut v = handshake(0, 0);
    v.push(seg(true, F | A, 4, 1, b"abc", 1)); // [3, 6), FIN at 6
    v.push(seg(true, A, 5, 1, b"xyzuvw", 1)); // [4, 10)
    v.push(seg(true, A, 1, 1, b"012", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"012abc");
    assert_eq!(seen.ends[0], 1);
    assert_eq!(st.dropped(DropReason::AfterClose), 4);
    // Two waiting segments cover a FIN's segment only together: the FIN
    // still waits (a receiver holds no one segment that spans it), and
    // holds where delivery reaches it; what waits past it is dropped.
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 4, 1, b"aaaaaaa", 1)); // [3, 10)
    v.push(seg(true, A, 11, 1, b"bbbbb", 1)); // [10, 15)
    v.push(seg(true, F | A, 4, 1, b"fffffff", 1)); // [3, 10), FIN at 10
    v.push(seg(true, A, 1, 1, b"012", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"012aaaaaaa");
    assert_eq!(st.dropped(DropReason::AfterClose), 5);
}

/// A FIN sent ahead inside data that began after its segment (the data
/// first, then the FIN's segment over its start): the receiver reads the
/// FIN's segment first, ends the stream at the FIN and purges the rest,
/// though the data waits as one piece across the FIN.
#[test]
fn a_fin_inside_later_data_ends_the_stream_there() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 8, 1, b"bbbbbbbb", 1)); // [7, 15)
    v.push(seg(true, F | A, 4, 1, b"fffffff", 1)); // [3, 10), FIN at 10
    v.push(seg(true, A, 1, 1, b"012", 1));
    v.push(seg(false, F | A, 1, 1, b"", 1)); // the server's own FIN
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"012ffffbbb");
    assert_eq!(st.dropped(DropReason::AfterClose), 5);
    assert_eq!(st.conns_closed_fin, 1, "the client's FIN at 10 holds");
}

/// A RST that also carries FIN and data ends the stream at its own
/// sequence number: its payload is dropped (on a RST), not also counted
/// as missing, as the FIN past it would have made it.
#[test]
fn a_rst_with_fin_and_data_ends_where_it_stands() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"xy", 1));
    v.push(seg(true, R | F | A, 3, 1, b"abc", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"xy");
    assert_eq!(st.dropped(DropReason::OnRst), 3);
    assert_eq!((seen.skips[0], st.gap_bytes), (0, 0));
    assert_eq!(st.conns_closed_rst, 1);
}

/// A FIN farther ahead than `max_window` is not the stream's: a close
/// does not skip gigabytes to reach it.
#[test]
fn a_fin_beyond_the_window_is_ignored() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(true, F | A, 0x7000_0001, 1, b"", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!((seen.skips[0], seen.ends[0], st.gap_bytes), (0, 1, 0));
}

/// A FIN on a segment the capture cut short sits after the missing bytes:
/// they are a skip, reported with the end.
#[test]
fn a_fin_on_a_cut_segment_ends_after_the_missing_bytes() {
    let mut v = handshake(0, 0);
    let mut s = seg(true, F | A, 1, 1, b"abc", 1);
    s.payload_missing = 7;
    v.push(s);
    v.push(seg(false, F | A, 1, 12, b"", 2));
    let mut r = Reassembler::new(Config::default(), Recorder::default());
    for s in &v {
        r.process(s);
    }
    let st = r.stats();
    assert_eq!(st.conns_closed_fin, 1, "{st:?}");
    let out = r.factory().out.borrow();
    let seen = &out[&0];
    assert_eq!(seen.bytes[0], b"abc");
    assert_eq!((seen.skips[0], seen.ends[0]), (7, 1));
}

#[test]
fn unacked_hole_waits_until_flush_timeout() {
    let mut r = opened_flushing_after(5, true);
    r.process(&seg(true, A, 1, 1, b"aa", 1));
    r.process(&seg(true, A, 5, 1, b"cc", 1));
    r.process(&seg(false, A, 1, 3, b"", 2)); // acks only what arrived
    assert_eq!(r.stats().delivered_bytes, 2);
    r.advance_time(Timestamp(5_000_000_000));
    assert_eq!(
        r.stats().delivered_bytes,
        2,
        "not yet older than the timeout"
    );
    r.advance_time(Timestamp(7_000_000_000));
    let st = r.stats();
    assert_eq!(st.delivered_bytes, 4);
    assert_eq!(st.gap_bytes, 2);
    assert_eq!(st.timeout_flushes, 1);
}

#[test]
fn flush_timeout_follows_the_oldest_piece_exactly() {
    let mut r = opened_flushing_after(10, false);
    let delivered = |r: &Reassembler<Recorder>| r.stats().delivered_bytes;
    let at = |ms: u64| Timestamp(ms * 1_000_000);
    // The piece nearest the hole (offset 3) is newer than the one after it
    // (offset 6): the older one decides when the hole is given up.
    r.process(&seg(true, A, 7, 1, b"cc", 1));
    r.process(&seg(true, A, 4, 1, b"bb", 5));
    r.advance_time(at(10_900));
    assert_eq!(delivered(&r), 0, "nothing waited 10 s yet");
    r.advance_time(at(11_100));
    assert_eq!(delivered(&r), 4, "the piece from t=1 s waited too long");
    assert_eq!(r.stats().gap_bytes, 4);
    // A piece leaves by delivery while a newer one stays: the flush goes by
    // the one that stays (t=14 s), not the one that left (t=12 s).
    r.process(&seg(true, A, 13, 1, b"ff", 12));
    r.process(&seg(true, A, 17, 1, b"hh", 14));
    r.process(&seg(true, A, 9, 1, b"dddd", 15));
    assert_eq!(delivered(&r), 10);
    r.advance_time(at(22_500));
    r.advance_time(at(23_900));
    assert_eq!(delivered(&r), 10, "the piece left waited under 10 s");
    r.advance_time(at(24_100));
    assert_eq!(delivered(&r), 12);
    assert_eq!(r.stats().gap_bytes, 6);
    assert_eq!(r.stats().timeout_flushes, 2);
}

/// A piece waits in one direction while only the other one sends (in
/// order, and out of order then filled): its flush timeout still goes by
/// its own time. Segments of the other direction do not queue the
/// connection; the piece's own segment did.
#[test]
fn a_piece_waiting_in_one_direction_is_flushed_on_time_while_the_other_sends() {
    let mut r = opened_flushing_after(10, false);
    let delivered = |r: &Reassembler<Recorder>| r.stats().delivered_bytes;
    r.process(&seg(true, A, 4, 1, b"bb", 1)); // client: a 3-byte hole first
    r.process(&seg(false, A, 1, 1, b"ab", 2));
    r.process(&seg(false, A, 5, 1, b"yy", 3)); // server: waits ...
    r.process(&seg(false, A, 3, 1, b"cd", 4)); // ... and is filled
    r.process(&seg(false, A, 7, 1, b"ef", 9));
    assert_eq!(delivered(&r), 8);
    r.advance_time(Timestamp(10_900_000_000));
    assert_eq!(delivered(&r), 8, "the client's piece waited under 10 s");
    r.advance_time(Timestamp(11_100_000_000));
    assert_eq!(delivered(&r), 10, "the client's piece from t=1 s is due");
    assert_eq!(r.stats().gap_bytes, 3);
    assert_eq!(r.stats().timeout_flushes, 1);
}

#[test]
fn a_piece_stamped_earlier_than_one_held_is_flushed_by_its_own_time() {
    // Capture timestamps out of order (a merged capture): the piece that
    // came second carries the earlier time, and the timeout goes by it.
    let mut r = opened_flushing_after(10, false);
    r.process(&seg(true, A, 7, 1, b"cc", 5));
    r.process(&seg(true, A, 4, 1, b"bb", 1));
    r.advance_time(Timestamp(10_900_000_000));
    assert_eq!(r.stats().delivered_bytes, 0);
    r.advance_time(Timestamp(11_100_000_000));
    assert_eq!(r.stats().delivered_bytes, 2, "the piece stamped 1 s is due");
    r.advance_time(Timestamp(15_100_000_000));
    assert_eq!(r.stats().delivered_bytes, 4, "and then the one stamped 5 s");
    assert_eq!(r.stats().timeout_flushes, 2);
}

#[test]
fn buffered_index_stays_within_the_live_connections_under_churn() {
    // Open, leave a piece out of order, reset: over and over, with no flush
    // timeout to pop the entries of the gone connections.
    let cfg = Config {
        flush_timeout_ns: None,
        ..Config::default()
    };
    let mut r = Reassembler::new(cfg, Recorder::default());
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "198.51.100.2".parse().unwrap();
    for port in 0..2_000u16 {
        let (k, d) = FlowKey::new(a, port, b, 80, 0);
        let t = Timestamp(u64::from(port) * 1_000);
        let mk = |seq: u32, flags: u8, p: &'static [u8]| {
            Segment::new(k, d, Seq(seq), TcpFlags(flags), p, t)
        };
        r.process(&mk(100, A, b"a"));
        r.process(&mk(102, A, b"c"));
        r.process(&mk(101, R, b""));
        // Bounded at each push; one connection may have gone since.
        assert!(
            r.buffered_entries() <= 2 * (r.connections() + 1) + 16,
            "{} entries for {} connections",
            r.buffered_entries(),
            r.connections()
        );
    }
    let st = r.stats();
    assert_eq!(st.conns_closed_rst, 2_000);
    assert!(st.balanced(), "{st:?}");
}

/// The linger queue stays within the live connections when connections
/// that lingered are replaced on their tuple, or evicted, faster than
/// packet time lets their entries expire: here time never moves at all.
#[test]
fn linger_queue_stays_within_the_live_connections_under_churn() {
    for max_conns in [0, 8] {
        let cfg = Config {
            max_conns,
            ..Config::default()
        };
        let f = Recorder {
            linger: true,
            ..Recorder::default()
        };
        let mut r = Reassembler::new(cfg, f);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "198.51.100.2".parse().unwrap();
        for n in 0..5_000u32 {
            // Two tuples in turn (each one's entry is not the last queued
            // when a new SYN replaces it), or 64 past the table's limit.
            let port = if max_conns == 0 {
                1 + (n % 2) as u16
            } else {
                (n % 64) as u16
            };
            let (k, d) = FlowKey::new(a, port, b, 80, 0);
            let t = Timestamp(1_000);
            let isn = n.wrapping_mul(7_919);
            r.process(&Segment::new(k, d, Seq(isn), TcpFlags(S), b"", t));
            if max_conns == 0 {
                r.process(&Segment::new(k, d, Seq(isn + 1), TcpFlags(R), b"", t));
            }
            assert!(
                r.linger_entries() <= 2 * r.connections() + 16 + 1,
                "{} linger entries for {} connections",
                r.linger_entries(),
                r.connections()
            );
        }
        let st = r.stats();
        assert!(st.balanced(), "{st:?}");
        assert!(st.conns_closed >= 4_000, "{st:?}");
    }
}

/// Entries that closed connections left in the buffered-data index are
/// dropped a bounded number per time advance, and a live connection's
/// piece behind them is still flushed, a few advances later.
#[test]
fn a_flush_check_drops_stale_entries_a_budget_at_a_time() {
    let cfg = Config {
        flush_timeout_ns: Some(1_000_000_000),
        idle_timeout_ns: None,
        ..Config::default()
    };
    let mut r = Reassembler::new(cfg, Recorder::default());
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "198.51.100.2".parse().unwrap();
    let at = |port: u16, seq: u32, flags: u8, p: &'static [u8], ts: u64| {
        let (k, d) = FlowKey::new(a, port, b, 80, 0);
        Segment::new(k, d, Seq(seq), TcpFlags(flags), p, Timestamp(ts))
    };
    // 1,000 connections, each with a piece waiting behind a hole, and
    // one whose piece is newer than all of theirs; then the 1,000 reset
    // (no push since, so nothing rebuilds the index).
    let n = 1_000u16;
    for port in 0..=n {
        let t = if port == n { 5_000 } else { u64::from(port) };
        r.process(&at(port, 100, A, b"a", t));
        r.process(&at(port, 102, A, b"c", t));
    }
    for port in 0..n {
        r.process(&at(port, 101, R, b"", 6_000));
    }
    let stale = r.buffered_entries() - 1;
    assert!(stale >= 500, "{stale} stale entries");
    // Past the flush timeout of everything: each advance drops at most
    // the budget of stale entries, and the live piece goes once they are
    // through.
    let mut advances = 0;
    while r.stats().timeout_flushes == 0 {
        let before = r.buffered_entries();
        advances += 1;
        r.advance_time(Timestamp(2_000_000_000 + advances));
        assert!(before - r.buffered_entries() <= crate::reassembler::IDLE_STEPS + 1);
        assert!(
            advances <= 1 + stale as u64 / crate::reassembler::IDLE_STEPS as u64,
            "{advances}"
        );
    }
    assert!(advances > 1, "the stale entries took more than one advance");
    assert_eq!(r.buffered_entries(), 0);
    assert!(r.stats().balanced());
}

/// Connection `n` of a test that needs many: 10.x.y.z:1234 to a server.
fn many(n: u32) -> (FlowKey, Dir) {
    let a = std::net::Ipv4Addr::from(0x0a00_0000 | n);
    FlowKey::new(a.into(), 1234, "198.51.100.2".parse().unwrap(), 80, 0)
}

/// Idle expiry's step budget counts only entries of connections gone:
/// closing is not charged (the closed connection's entry goes with it),
/// nor is renewing the entries of busy connections. With timestamps of a
/// second's resolution (few time advances), everything due closes on time.
#[test]
fn idle_expiry_keeps_up_with_many_due_and_many_busy_connections() {
    let s = 1_000_000_000u64;
    let cfg = Config {
        idle_timeout_ns: Some(10 * s),
        ..Config::default()
    };
    let data = |r: &mut Reassembler<Recorder>, n: u32, seq: u32, t: u64| {
        let (k, d) = many(n);
        r.process(&Segment::new(
            k,
            d,
            Seq(seq),
            TcpFlags(A),
            b"x",
            Timestamp(t),
        ));
    };
    // 1,000 connections due at one advance all close at it.
    let mut r = Reassembler::new(cfg.clone(), Recorder::default());
    for n in 0..1_000 {
        data(&mut r, n, 1, u64::from(n));
    }
    r.advance_time(Timestamp(20 * s));
    assert_eq!(r.connections(), 0);
    // 1,000 one-packet connections a second, stamped with the second: the
    // table holds the last 10 or 11 seconds' worth, not a growing backlog.
    let mut r = Reassembler::new(cfg.clone(), Recorder::default());
    for sec in 0..100u64 {
        for k in 0..1_000 {
            data(&mut r, sec as u32 * 1_000 + k, 1, sec * s);
        }
        assert!(r.connections() <= 11_000, "{} at {sec} s", r.connections());
    }
    // 5,000 busy connections sending every 5 s, and one idle from 50 s:
    // it closes at the first advance past 60 s.
    let mut r = Reassembler::new(cfg, Recorder::default());
    let mut seq = vec![1u32; 5_000];
    for sec in 0..100u64 {
        if sec == 50 {
            data(&mut r, 999_999, 1, sec * s);
        }
        for n in (0..5_000u32).filter(|n| u64::from(*n) % 5 == sec % 5) {
            data(&mut r, n, seq[n as usize], sec * s);
            seq[n as usize] += 1;
        }
        let closed = r.stats().conns_closed_idle;
        assert_eq!(closed, u64::from(sec > 60), "at {sec} s");
    }
}

#[test]
fn idle_connections_close_in_packet_time() {
    let cfg = Config {
        idle_timeout_ns: Some(10_000_000_000),
        ..Config::default()
    };
    let mut r = Reassembler::new(cfg, Recorder::default());
    r.process(&seg(true, A, 1, 1, b"x", 0));
    r.advance_time(Timestamp(9_000_000_000));
    assert_eq!(r.connections(), 1);
    r.advance_time(Timestamp(11_000_000_000));
    assert_eq!(r.connections(), 0);
    assert_eq!(r.stats().conns_closed_idle, 1);
    assert_eq!(r.factory().out.borrow()[&0].completed, 1);
}

/// A connection closes at the first time advance past its last packet plus
/// the idle timeout, whatever the others do: here `a` was active at 9 s
/// and `b` opened at 9.5 s, so at 19.2 s only `a` is due.
#[test]
fn idle_expiry_is_exact() {
    let cfg = Config {
        idle_timeout_ns: Some(10_000_000_000),
        ..Config::default()
    };
    let ms = |ms: u64| Timestamp(ms * 1_000_000);
    let (ka, da) = key();
    let kb = FlowKey::new(
        "192.0.2.7".parse().unwrap(),
        1,
        "198.51.100.2".parse().unwrap(),
        80,
        0,
    )
    .0;
    let at = |k: FlowKey, seq: u32, t: u64| Segment::new(k, da, Seq(seq), TcpFlags(A), b"x", ms(t));
    let mut r = Reassembler::new(cfg, Recorder::default());
    r.process(&at(ka, 1, 0));
    r.process(&at(ka, 2, 9_000));
    r.process(&at(kb, 1, 9_500));
    r.advance_time(ms(10_100));
    assert_eq!(r.connections(), 2);
    r.advance_time(ms(19_000));
    assert_eq!(
        r.connections(),
        2,
        "not idle for longer than the timeout yet"
    );
    r.advance_time(ms(19_200));
    assert_eq!(r.connections(), 1, "a: last packet at 9 s, timeout 10 s");
    r.advance_time(ms(19_600));
    assert_eq!(r.connections(), 0);
    assert_eq!(r.stats().conns_closed_idle, 2);
}

/// At the connection limit the one idle the longest makes room: here `x`
/// (last active at 3), though `t` (at 5) arrived later and `y` was first.
#[test]
fn eviction_takes_the_least_recently_active() {
    let cfg = Config {
        max_conns: 3,
        ..Config::default()
    };
    let d = key().1;
    let k = client_key;
    let at = |port: u16, seq: u32, t: u64| {
        Segment::new(k(port), d, Seq(seq), TcpFlags(A), b"x", Timestamp(t))
    };
    let (y, x, t, z) = (1, 2, 3, 4);
    let mut r = Reassembler::new(cfg, Recorder::default());
    for (port, seq, ts) in [
        (y, 1, 0),
        (x, 1, 1),
        (x, 2, 3),
        (t, 1, 5),
        (y, 2, 6),
        (z, 1, 7),
    ] {
        r.process(&at(port, seq, ts));
    }
    assert_eq!(r.stats().conns_evicted, 1);
    // Connection ids follow creation: y 0, x 1, t 2, z 3.
    let out = r.factory().out.borrow();
    let completed = |id: u64| out.get(&id).map_or(0, |s| s.completed);
    assert_eq!([0, 1, 2, 3].map(completed), [0, 1, 0, 0]);
}

/// At the limit, connections a bare SYN opened that are still
/// unanswered make room first, oldest first, however recently they came:
/// a flood of SYNs from forged sources evicts its own, not a live
/// connection idle a while (which the least recently active rule took).
/// One answered, or that sent data, is evicted by that rule only.
#[test]
fn eviction_takes_unanswered_syns_first() {
    let cfg = Config {
        max_conns: 3,
        ..Config::default()
    };
    let d = key().1;
    let k = client_key;
    let seg_at = |port: u16, dir: Dir, f: u8, seq: u32, ack: u32, data: &'static [u8], t: u64| {
        let mut s = Segment::new(k(port), dir, Seq(seq), TcpFlags(f), data, Timestamp(t));
        s.ack = Seq(ack);
        s
    };
    let mut r = Reassembler::new(cfg, Recorder::default());
    // An established connection (port 1), idle from t = 1.
    r.process(&seg_at(1, d, S, 100, 0, b"", 0));
    r.process(&seg_at(1, d.reverse(), S | A, 500, 101, b"", 0));
    r.process(&seg_at(1, d, A, 101, 501, b"hello", 1));
    // A SYN the server answered (port 2), then a flood of bare SYNs.
    r.process(&seg_at(2, d, S, 100, 0, b"", 2));
    r.process(&seg_at(2, d.reverse(), S | A, 700, 101, b"", 2));
    for (n, port) in (10..20).enumerate() {
        r.process(&seg_at(port, d, S, 100, 0, b"", 3 + n as u64));
    }
    let st = r.stats();
    assert_eq!(st.conns_evicted, 9, "{st:?}");
    // Ids: port 1 is 0, port 2 is 1, the flood 2 to 11. The established
    // connection and the answered one live on; the flood evicted itself.
    let out = r.factory().out.borrow();
    let completed = |id: u64| out.get(&id).map_or(0, |s| s.completed);
    assert_eq!([0, 1].map(completed), [0, 0]);
    assert_eq!((2..11).map(completed).sum::<usize>(), 9);
    drop(out);
    assert_eq!(r.connections(), 3);
}

/// A connection that takes over the slot of one that had data waiting
/// (evicted here) still has its own waiting data flushed on time.
#[test]
fn a_reused_slot_starts_with_nothing_buffered() {
    let cfg = Config {
        max_conns: 1,
        flush_timeout_ns: Some(1_000_000_000),
        ..Config::default()
    };
    let d = key().1;
    let k = client_key;
    let ms = |ms: u64| Timestamp(ms * 1_000_000);
    let at = |port: u16, seq: u32, data: &'static [u8], t: u64| {
        Segment::new(k(port), d, Seq(seq), TcpFlags(A), data, ms(t))
    };
    let mut r = Reassembler::new(cfg, Recorder::default());
    // A: "ab" in order, "xy" after a hole, waiting.
    r.process(&at(1, 1, b"ab", 0));
    r.process(&at(1, 10, b"xy", 0));
    // B evicts A (which flushes A) and takes its slot; B's "xy" waits.
    r.process(&at(2, 1, b"ab", 100));
    r.process(&at(2, 10, b"xy", 200));
    assert_eq!(r.stats().conns_evicted, 1);
    assert_eq!(r.stats().delivered_bytes, 6);
    r.advance_time(ms(1_500));
    let st = r.stats();
    assert_eq!(st.timeout_flushes, 1, "B's waiting data flushed on time");
    assert_eq!(st.delivered_bytes, 8);
}

/// A look-ahead made by another reassembler (another hash seed) is not
/// trusted: the connection is still found.
#[test]
fn a_foreign_look_ahead_costs_only_a_hash() {
    let mut r = Reassembler::new(Config::default(), Recorder::default());
    let other = Reassembler::new(Config::default(), Recorder::default());
    let first = seg(true, A, 1, 1, b"ab", 0);
    r.process(&first);
    let foreign = other.prefetch_index(&first.key);
    let own = r.prefetch_index(&first.key);
    r.process_ahead(&seg(true, A, 3, 1, b"cd", 0), Some(&foreign));
    r.process_ahead(&seg(true, A, 5, 1, b"ef", 0), Some(&own));
    assert_eq!((r.connections(), r.stats().conns_created), (1, 1));
    assert_eq!(r.stats().delivered_bytes, 6);
}

#[test]
fn retransmission_of_delivered_data_is_a_duplicate() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abcdef", 1));
    v.push(seg(true, A, 1, 1, b"abcdef", 1));
    v.push(seg(true, A, 4, 1, b"defghi", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abcdefghi");
    assert_eq!(st.duplicate_bytes, 9);
}

#[test]
fn keep_from_offers_bytes_again() {
    let f = Recorder {
        keep: Some(2),
        ..Recorder::default()
    };
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abcd", 1));
    v.push(seg(true, A, 5, 1, b"ef", 1));
    let (seen, st, _) = run_with(Config::default(), f, &v);
    assert_eq!(seen.bytes[0], b"abcdef", "kept bytes are not new bytes");
    assert_eq!(st.delivered_bytes, 6);
    assert_eq!(st.kept_bytes, 0, "kept bytes are released at close");
}

/// A handler that drops a little from the head of much kept, delivery
/// after delivery, costs the bytes it drops: what stays is moved only once
/// the dropped head is as long as it. (Each drop moved all of it.)
#[test]
fn dropping_a_little_of_much_kept_moves_little() {
    let f = Recorder {
        keep: Some(60_000),
        ..Recorder::default()
    };
    let cfg = Config {
        max_kept_bytes: 0,
        ..Config::default()
    };
    let mut r = Reassembler::new(cfg, f);
    for s in handshake(0, 0) {
        r.process(&s);
    }
    let chunk = [b'k'; 1000];
    for n in 0..400u32 {
        r.process(&seg(true, A, 1 + n * 1000, 1, &chunk, 1));
    }
    // 400 deliveries; past 60 KB each drops 1,000 bytes from the head.
    let st = r.stats();
    assert_eq!(st.kept_bytes, 60_000);
    assert!(
        r.kept_moved() < 400 * 1_000,
        "{} bytes moved",
        r.kept_moved()
    );
}

#[test]
fn kept_bytes_stop_at_their_limit() {
    // A handler that keeps everything, as one waiting for a delimiter that
    // never comes would.
    let f = Recorder {
        keep: Some(usize::MAX),
        ..Recorder::default()
    };
    let cfg = Config {
        max_kept_bytes: 8,
        ..Config::default()
    };
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abcd", 1));
    v.push(seg(true, A, 5, 1, b"efgh", 1)); // 8 kept: at the limit
    v.push(seg(true, A, 9, 1, b"ijkl", 1)); // 12 asked: nothing kept
    v.push(seg(true, A, 13, 1, b"mn", 1)); // 2 kept
    let (seen, st, _) = run_with(cfg, f, &v);
    assert_eq!(
        seen.bytes[0], b"abcdefghijklmn",
        "kept bytes are not new bytes"
    );
    assert_eq!(seen.deliveries[0], 5, "four with data, the end at close");
    assert_eq!(st.kept_truncated_bytes, 12);
    assert_eq!(st.kept_bytes, 0, "kept bytes are released at close");
}

/// The memcap bounds kept bytes across connections, not only each half's
/// limit: handlers keeping everything on many connections get their keeps
/// refused (counted) once the kept bytes would pass it.
#[test]
fn kept_bytes_across_connections_stay_within_the_memcap() {
    const MEMCAP: usize = 64 * 1024;
    let f = Recorder {
        keep: Some(usize::MAX),
        ..Recorder::default()
    };
    let cfg = Config {
        max_kept_bytes: 0,
        memcap: MEMCAP,
        ..Config::default()
    };
    let mut r = Reassembler::new(cfg, f);
    let chunk = [b'k'; 1000];
    let mut peak = 0;
    for round in 0..10u32 {
        for port in 1..=50u16 {
            r.process(&seg_on(port, A, 100 + round * 1000, &chunk, 1));
            peak = peak.max(r.stats().kept_bytes);
        }
    }
    let st = r.stats();
    assert!(peak <= MEMCAP as u64, "{peak} bytes kept");
    assert!(st.kept_truncated_bytes > 0, "{st:?}");
    assert_eq!(st.delivered_bytes, 500 * 1000, "{st:?}");
    assert!(st.balanced(), "{st:?}");
}

/// Keeps chosen from a fixed cycle, checked against a model of what each
/// delivery must offer first: what was kept from the one before.
#[derive(Debug, Default)]
struct KeepModel {
    kept: Vec<u8>,
    n: usize,
    max: usize,
    truncated: u64,
}

impl Stream for KeepModel {
    fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
        let (len, kept) = sg.lengths();
        let mut all = Vec::new();
        sg.copy_to(&mut all);
        assert_eq!(&all[..kept], &self.kept[..], "delivery {}", self.n);
        let new = len - kept;
        let k = match self.n % 16 {
            0..=8 => 0,                  // keep everything, until over the limit
            9 => kept,                   // keep only the new bytes
            10 => kept / 2,              // from within the kept bytes
            11 => kept + new / 2,        // from within the new bytes
            12 => len,                   // keep nothing
            13 => len.saturating_sub(3), // the last 3
            _ => 1.min(len),             // all but the first
        };
        sg.keep_from(k);
        self.kept = if k >= len {
            Vec::new()
        } else if len - k > self.max {
            self.truncated += (len - k) as u64;
            Vec::new()
        } else {
            all[k..].to_vec()
        };
        self.n += 1;
    }
}

#[test]
fn kept_bytes_follow_every_kind_of_keep() {
    type Seen = std::rc::Rc<std::cell::Cell<(usize, u64, usize)>>;
    struct F(Seen);
    struct Keeper(KeepModel, Seen);
    impl Stream for Keeper {
        fn reassembled(&mut self, sg: &mut ScatterGather<'_>, ctx: &Context) {
            self.0.reassembled(sg, ctx);
            self.1.set((self.0.n, self.0.truncated, self.0.kept.len()));
        }
    }
    impl StreamFactory for F {
        type Stream = Keeper;
        fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Keeper {
            let model = KeepModel {
                max: 40,
                ..KeepModel::default()
            };
            Keeper(model, self.0.clone())
        }
    }
    let seen = std::rc::Rc::new(std::cell::Cell::new((0, 0, 0)));
    let cfg = Config {
        max_kept_bytes: 40,
        ..Config::default()
    };
    let mut r = Reassembler::new(cfg, F(seen.clone()));
    let (k, d) = key();
    r.process(&Segment::new(k, d, Seq(0), TcpFlags(S), b"", Timestamp(0)));
    let data: Vec<u8> = (0..2_000u32).map(|i| (i % 251) as u8).collect();
    let mut off = 0usize;
    let mut i = 0usize;
    while off < data.len() {
        let n = (1 + i * 7 % 13).min(data.len() - off);
        let seq = Seq(1 + off as u32);
        r.process(&Segment::new(
            k,
            d,
            seq,
            TcpFlags(A),
            &data[off..off + n],
            Timestamp(1),
        ));
        off += n;
        i += 1;
    }
    let st = r.stats();
    let (deliveries, truncated, kept) = seen.get();
    assert_eq!(deliveries, i, "a delivery per segment");
    assert_eq!(st.kept_truncated_bytes, truncated);
    assert!(truncated > 0, "the cycle went over the limit");
    assert_eq!(st.kept_bytes, kept as u64);
    r.flush_all();
    assert_eq!(r.stats().kept_bytes, 0, "released at close");
}

/// The default configuration with a page share of `pages` a connection.
fn share(pages: usize) -> Config {
    Config {
        max_pages_per_conn: pages,
        ..Config::default()
    }
}

/// Pages mostly full (600 bytes of 2,048 each): over its share a
/// connection flushes its oldest run, past its hole, as a capture that
/// lost a segment of a large window needs.
#[test]
fn per_connection_page_limit_forces_the_oldest_run_out() {
    let cfg = share(2);
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1_001, 1, &[b'B'; 600], 1));
    v.push(seg(true, A, 2_001, 1, &[b'C'; 600], 2));
    v.push(seg(true, A, 3_001, 1, &[b'D'; 600], 3)); // third page: the run at 1000 goes out
    v.push(seg(true, A, 1, 1, b"late", 4)); // before the skipped hole
    let (seen, st, _) = run(cfg, &v);
    let want: Vec<u8> = [b'B', b'C', b'D'].iter().flat_map(|&c| [c; 600]).collect();
    assert_eq!(seen.bytes[0], want);
    assert_eq!((st.memcap_flushes, st.memcap_prunes), (1, 0));
    assert_eq!(st.dropped(DropReason::AfterSkip), 4);
    assert_eq!(st.gap_bytes, 1_000 + 400 + 400);
}

/// Pages mostly empty (a byte each): over its share a connection keeps
/// its hole open, as its receiver does, so the bytes that fill it are
/// delivered; flushing past it (as for full pages) dropped them as late,
/// for the price of a few one-byte segments. Sent in rising order, each
/// new piece lies past all the others: dropped, as a receiver drops a
/// segment that would land last in its pruned queue.
#[test]
fn small_segments_over_the_share_keep_the_hole_open() {
    let cfg = share(64);
    let mut v = handshake(0, 0);
    for n in 0..200u32 {
        v.push(seg(true, A, 11 + 2 * n, 1, b"x", 1));
    }
    v.push(seg(true, A, 1, 1, b"0123456789", 2)); // the hole's bytes
    let (seen, st, _) = run(cfg, &v);
    assert!(
        seen.bytes[0].starts_with(b"0123456789x"),
        "{:?}",
        seen.bytes[0]
    );
    assert_eq!(seen.bytes[0].len(), 10 + 64);
    assert_eq!(st.dropped(DropReason::MemoryLimit), 200 - 64);
    assert_eq!(st.dropped(DropReason::AfterSkip), 0);
    assert_eq!((st.memcap_flushes, st.pages_peak), (0, 64));
}

/// Sent in falling order, each new piece lies before the others: the
/// farthest go, an eighth of the share at a time, counted as pruned, and
/// the nearest wait with the hole before them.
#[test]
fn small_segments_over_the_share_prune_the_farthest() {
    let cfg = share(64);
    let mut v = handshake(0, 0);
    for n in (0..200u32).rev() {
        v.push(seg(true, A, 11 + 2 * n, 1, b"x", 1));
    }
    v.push(seg(true, A, 1, 1, b"0123456789", 2));
    let (seen, st, _) = run(cfg, &v);
    assert!(seen.bytes[0].starts_with(b"0123456789x"));
    let kept = seen.bytes[0].len() as u64 - 10;
    assert!((56..=64).contains(&kept), "{kept} pieces kept");
    assert_eq!(st.dropped(DropReason::Pruned), 200 - kept);
    assert_eq!(st.dropped(DropReason::MemoryLimit), 0);
    assert!(
        st.memcap_prunes >= 1 && st.memcap_prunes <= 200 / 8,
        "{st:?}"
    );
    // The nearest pieces stayed: delivered up to the first one pruned.
    assert_eq!(st.gap_bytes, kept - 1);
    assert!(st.pages_peak <= 64);
}

/// Data the receiver acknowledged reached it: pruning never takes it,
/// even with pages mostly empty (the acknowledged hole is skipped after
/// the sender's next segment, and those bytes are delivered).
#[test]
fn pruning_spares_what_the_receiver_acknowledged() {
    let cfg = share(64);
    let mut v = handshake(0, 0);
    for n in (0..64u32).rev() {
        v.push(seg(true, A, 11 + 2 * n, 1, b"x", 1));
    }
    v.push(seg(false, A, 1, 201, b"", 2)); // acknowledges all of it
    v.push(seg(true, A, 3, 1, b"q", 2)); // in the hole, over the share
    let (seen, st, _) = run(cfg, &v);
    assert_eq!(st.dropped(DropReason::Pruned), 0);
    assert_eq!(
        st.dropped(DropReason::MemoryLimit),
        1,
        "the q: nothing to prune"
    );
    assert_eq!(st.memcap_flushes, 0);
    assert_eq!(seen.bytes[0].iter().filter(|&&b| b == b'x').count(), 64);
}

/// Small segments that follow each other behind a hole are packed into
/// full pages when the connection goes over its share, as a receiver
/// collapses its queue: nothing is dropped, and the hole's bytes, once
/// they come, are followed by every byte.
#[test]
fn small_contiguous_segments_over_the_share_are_packed() {
    let cfg = share(64);
    let mut v = handshake(0, 0);
    for n in 0..5_000u32 {
        v.push(seg(true, A, 11 + n, 1, b"x", 1));
    }
    v.push(seg(true, A, 1, 1, b"0123456789", 2));
    let (seen, st, _) = run(cfg, &v);
    assert_eq!(seen.bytes[0].len(), 5_010);
    assert!(seen.bytes[0].starts_with(b"0123456789x"));
    assert_eq!((st.dropped_total(), st.gap_bytes), (0, 0), "{st:?}");
    assert_eq!((st.memcap_flushes, st.memcap_prunes), (0, 0));
    assert!(st.pages_peak <= 64);
}

/// Packing merges segment bounds, so it is left to the policies that
/// read none: under BSD's, a copy that starts inside a run of small held
/// segments still wins over each later one, over the share as below it.
#[test]
fn packing_leaves_bounded_policies_their_segments() {
    let cfg = Config {
        overlap_policy: OverlapPolicy::Bsd,
        ..share(64)
    };
    let mut v = handshake(0, 0);
    for n in 0..64u32 {
        v.push(seg(true, A, 11 + n, 1, b"x", 1));
    }
    v.push(seg(true, A, 101, 1, b"z", 2)); // over the share: no packing
    v.push(seg(true, A, 16, 1, &[b'N'; 15], 3)); // [15, 30)
    v.push(seg(true, A, 1, 1, b"0123456789", 4));
    let (seen, st, _) = run(cfg, &v);
    let mut want = b"0123456789xxxxxx".to_vec(); // 15 stays: same start
    want.extend_from_slice(&[b'N'; 14]);
    want.extend_from_slice(&[b'x'; 74 - 30]);
    assert_eq!(seen.bytes[0], want);
    assert_eq!(st.dropped(DropReason::MemoryLimit), 1, "the z");
}

/// Nor are pieces packed while a FIN waits ahead: the stream still ends
/// at the FIN, and what was sent past it is dropped after the close.
#[test]
fn packing_waits_while_a_fin_waits_ahead() {
    let cfg = share(64);
    let mut v = handshake(0, 0);
    v.push(seg(true, A | F, 11, 1, b"ffffffffff", 1)); // [10, 20), FIN at 20
    for n in 0..70u32 {
        v.push(seg(true, A, 21 + n, 1, b"x", 1));
    }
    v.push(seg(true, A, 1, 1, b"0123456789", 2));
    let (seen, st, _) = run(cfg, &v);
    assert_eq!(seen.bytes[0], b"0123456789ffffffffff");
    assert_eq!(st.dropped(DropReason::AfterClose), 63, "{st:?}");
}

/// When the other direction holds most of the share and its receiver
/// acknowledged all of it, that direction's run is flushed (its hole was
/// lost), never the incoming direction's, whose hole stays open even
/// when its own data waits the longest.
#[test]
fn an_acknowledged_flood_of_the_other_direction_is_flushed_not_the_hole() {
    let cfg = share(64);
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 11, 1, b"later", 0)); // behind a hole, the oldest piece
    for n in 0..63u32 {
        v.push(seg(false, A, 11 + 2 * n, 1, b"y", 1));
    }
    v.push(seg(true, A, 1, 300, b"", 2)); // acknowledges all the server sent
    v.push(seg(true, A, 21, 300, b"after", 3)); // over the share
    v.push(seg(true, A, 1, 300, b"0123456789", 4)); // the hole's bytes
    let (seen, st, _) = run(cfg, &v);
    assert_eq!(seen.bytes[0], b"0123456789laterafter");
    assert_eq!(st.dropped(DropReason::AfterSkip), 0, "{st:?}");
    assert!(st.memcap_flushes > 0, "{st:?}");
}

/// A flood of small segments in one direction gives way to the other
/// direction's data: the flooding direction, holding most of the share,
/// loses its farthest pieces, and the other's wait in the room made.
#[test]
fn small_segments_of_one_direction_give_way_to_the_other() {
    let cfg = share(64);
    let mut v = handshake(0, 0);
    for n in 0..64u32 {
        v.push(seg(false, A, 11 + 2 * n, 1, b"y", 1));
    }
    v.push(seg(true, A, 11, 1, b"later", 2)); // out of order: waits
    v.push(seg(true, A, 1, 1, b"0123456789", 3));
    let (seen, st, _) = run(cfg, &v);
    assert_eq!(seen.bytes[0], b"0123456789later");
    assert_eq!(
        st.dropped(DropReason::Pruned),
        9,
        "an eighth of the share and one"
    );
    assert_eq!(st.memcap_flushes, 0);
}

#[test]
fn a_segment_over_many_small_pieces_counts_a_page_per_gap() {
    // 40 one-byte pieces with one-byte gaps between them, then one segment
    // over all of it: each gap is copied into a page of its own, so the
    // segment needs 40 pages, not one, and the limit of 64 holds.
    let cfg = share(64);
    let mut v = handshake(0, 0);
    let one: &'static [u8] = b"p";
    for i in 0..40u32 {
        v.push(seg(true, A, 3 + 2 * i, 1, one, 1));
    }
    v.push(seg(true, A, 2, 1, &[b'q'; 80], 2));
    let (seen, st, _) = run(cfg, &v);
    assert!(st.pages_peak <= 64, "{} pages", st.pages_peak);
    // Pages a byte full: the farthest pieces gave way to the segment.
    assert!(st.memcap_prunes > 0);
    assert!(st.dropped(DropReason::Pruned) > 0);
    assert_eq!(seen.bytes[0].len() as u64 + st.gap_bytes, 81);
}

#[test]
fn global_page_limit_flushes_the_oldest_connection() {
    let cfg = Config {
        max_pages: 2,
        ..Config::default()
    };
    let mut r = Reassembler::new(cfg, Recorder::default());
    for port in 1..=3u16 {
        let mut s = seg_on(port, A, 100, b"z", port as u64);
        r.process(&s); // starts the stream at 100
        s.seq = Seq(200);
        r.process(&s); // out of order: one page
    }
    let st = r.stats();
    assert_eq!(st.pages_in_use, 2);
    assert_eq!(st.memcap_flushes, 1);
    assert_eq!(
        st.delivered_bytes, 4,
        "three in-order bytes and the oldest flushed page"
    );
    assert!(st.balanced());
}

/// A segment laid over many pieces of its connection, when the pool is
/// full of one-page runs of other connections, is placed after one round
/// of making room for all the pages it needs: not one round per page freed,
/// each of which walked every piece the segment overlaps again.
#[test]
fn making_room_for_a_segment_over_many_pieces_takes_one_round() {
    const OTHERS: u16 = 600;
    const PIECES: u32 = 200;
    let cfg = Config {
        max_pages: OTHERS as usize + PIECES as usize,
        max_pages_per_conn: 0,
        flush_timeout_ns: None,
        ..Config::default()
    };
    let mut r = Reassembler::new(cfg, Recorder::default());
    let at = |r: &mut Reassembler<Recorder>, port: u16, seq: u32, p: &[u8], t: u64| {
        r.process(&seg_on(port, A, seq, p, t));
    };
    for port in 1..=OTHERS {
        at(&mut r, port, 100, b"z", 1); // starts the stream at 100
        at(&mut r, port, 200, b"z", 2); // out of order: one page
    }
    // One connection's pieces, a byte each with a byte between them.
    let port = OTHERS + 1;
    at(&mut r, port, 100, b"z", 3);
    for n in 0..PIECES {
        at(&mut r, port, 200 + 2 * n, b"p", 4);
    }
    assert_eq!(
        r.stats().pages_in_use,
        u64::from(OTHERS) + u64::from(PIECES)
    );
    let flushes = r.stats().memcap_flushes;
    let before = r.placements();
    // Over all of them, still out of order (101..150 missing).
    at(&mut r, port, 150, &[b'x'; 500], 5);
    let st = r.stats();
    let rounds = r.placements() - before;
    assert!(rounds <= 2, "{rounds} rounds for one segment");
    assert!(st.memcap_flushes - flushes >= PIECES as u64 / 2, "{st:?}");
    assert_eq!(st.dropped_total(), 0, "{st:?}");
    assert!(st.balanced(), "{st:?}");
}

/// The same over a connection's own share: its runs wholly before the
/// segment are flushed in one round of making room (they do not change
/// what the segment overlaps), and the bytes before it are skipped, not
/// the segment's. (Pages of 64 bytes, a third full: pages mostly empty
/// would be pruned from the far end instead.)
#[test]
fn making_room_within_a_connections_share_takes_one_round() {
    const BELOW: u32 = 150;
    const PIECES: u32 = 100;
    const LEN: u32 = 20;
    const STRIDE: u32 = 2 * LEN;
    let cfg = Config {
        max_pages_per_conn: (BELOW + PIECES) as usize,
        flush_timeout_ns: None,
        ..Config::default()
    };
    let mut r = Reassembler::with_pool(cfg, Recorder::default(), HeapPool::new(64, 0));
    let mut at = |seq: u32, p: &[u8]| r.process(&seg(true, A, seq, 1, p, 1));
    at(100, b"z"); // starts the stream at 100
    for n in 0..BELOW {
        at(1_000 + STRIDE * n, &[b'b'; LEN as usize]);
    }
    for n in 0..PIECES {
        at(10_000 + STRIDE * n, &[b'p'; LEN as usize]);
    }
    let over = 10 + STRIDE * PIECES;
    at(9_990, &vec![b'x'; over as usize]);
    let rounds = r.placements() - (1 + u64::from(BELOW + PIECES));
    let st = r.stats();
    assert!(rounds <= 2, "{rounds} rounds for one segment");
    assert!(st.memcap_flushes >= u64::from(PIECES) / 2, "{st:?}");
    assert_eq!(st.memcap_prunes, 0, "{st:?}");
    assert_eq!(st.dropped_total(), 0, "{st:?}");
    assert!(st.balanced(), "{st:?}");
    r.flush_all();
    let st = r.stats();
    assert_eq!(
        st.delivered_bytes,
        1 + u64::from(BELOW * LEN + over),
        "{st:?}"
    );
}

#[test]
fn connection_limit_evicts_least_recently_active() {
    let cfg = Config {
        max_conns: 2,
        ..Config::default()
    };
    let mut r = Reassembler::new(cfg, Recorder::default());
    for port in 1..=3u16 {
        r.process(&seg_on(port, A, 1, b"z", port as u64));
    }
    assert_eq!(r.connections(), 2);
    assert_eq!(r.stats().conns_evicted, 1);
    assert!(
        r.factory().out.borrow().contains_key(&0),
        "the first one was evicted"
    );
}

/// A SYN with a new ISN in the middle of a live connection is ignored,
/// as its receiver ignores it: the real stream goes on being delivered.
/// Taken as a new connection, it made every later byte of the real one
/// fall before the forged start.
#[test]
fn a_forged_syn_mid_stream_is_ignored() {
    let mut v = handshake(100, 500);
    v.push(seg(true, A, 101, 501, b"abc", 1));
    v.push(seg(true, S, 101 + (1 << 31), 0, b"fake", 1));
    v.push(seg(true, A, 104, 501, b"def", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abcdef");
    assert_eq!((st.conns_created, st.syn_ignored), (1, 1));
    assert_eq!(st.dropped(DropReason::OutOfWindow), 4);
}

/// Before any data, once the peer answered the handshake: a SYN with
/// another ISN neither moves the stream's start nor brings its data.
#[test]
fn a_forged_syn_after_the_handshake_does_not_move_the_start() {
    let mut v = handshake(100, 500);
    v.push(seg(true, S, 200, 0, b"fake", 0));
    v.push(seg(true, A, 101, 501, b"real", 0));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"real");
    assert_eq!(st.syn_ignored, 1);
    assert_eq!(st.gap_bytes, 0);
}

/// A SYN ignored as mid-connection that the peer answers with a SYN-ACK
/// starts the new connection after all: a live peer would have answered
/// with a bare ACK, so the old connection's close was lost by the capture
/// and the tuple is in use again, less than a second later.
#[test]
fn a_syn_ack_to_an_ignored_syn_starts_the_new_connection() {
    let mut v = handshake(100, 500);
    v.push(seg(true, A, 101, 501, b"old", 0));
    v.push(seg(true, S, 7000, 0, b"", 0)); // ignored: the old one looks live
    v.push(seg(false, S | A, 800, 7001, b"", 0)); // the server answers it
    v.push(seg(true, A, 7001, 801, b"new", 0));
    let (_, st, r) = run(Config::default(), &v);
    let out = r.factory().out.borrow();
    assert_eq!(st.conns_created, 2, "{st:?}");
    assert_eq!(out[&0].bytes[0], b"old");
    assert_eq!(out[&1].bytes[0], b"new");
    assert_eq!(st.syn_ignored, 1);
}

/// A second SYN-ACK with another ISN, before the server's data: the
/// client took the first and drops it, and so does the reassembler
/// (taken, it moved the server's stream, whose real bytes then fell
/// before it).
#[test]
fn a_second_syn_ack_with_another_isn_is_ignored() {
    let mut v = handshake(100, 500);
    v.push(seg(false, S | A, 9000, 101, b"", 0));
    v.push(seg(false, A, 501, 101, b"real", 0));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[1], b"real");
    assert_eq!(st.syn_ignored, 1);
}

/// What a new ISN still starts: a handshake retried before any answer,
/// and a new connection on a tuple whose old one fell quiet (its FIN
/// lost by the capture).
#[test]
fn a_new_isn_starts_anew_before_an_answer_or_after_quiet() {
    let v = vec![
        seg(true, S, 100, 0, b"", 0),
        seg(true, S, 9000, 0, b"", 0), // retried, nothing heard back
        seg(false, S | A, 500, 9001, b"", 0),
        seg(true, A, 9001, 501, b"one", 0),
    ];
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"one");
    assert_eq!(st.syn_ignored, 0);

    let mut v = handshake(100, 500);
    v.push(seg(true, A, 101, 501, b"old", 1));
    // Two seconds later, no FIN seen: the tuple is used again.
    v.extend(handshake(7000, 800).into_iter().map(|mut s| {
        s.ts = Timestamp(3_000_000_000);
        s
    }));
    v.push(seg(true, A, 7001, 801, b"new", 3));
    let (_, st, r) = run(Config::default(), &v);
    let out = r.factory().out.borrow();
    assert_eq!(st.conns_created, 2);
    assert_eq!(out[&0].bytes[0], b"old");
    assert_eq!(out[&1].bytes[0], b"new");
    assert_eq!(st.syn_ignored, 0);
}

#[test]
fn new_syn_after_close_starts_a_new_stream() {
    let mut v = handshake(100, 500);
    v.push(seg(true, A, 101, 501, b"one", 1));
    v.push(seg(true, R, 104, 0, b"", 2));
    v.extend(handshake(9000, 800));
    v.push(seg(true, A, 9001, 801, b"two", 3));
    let (_, st, r) = run(Config::default(), &v);
    let out = r.factory().out.borrow();
    assert_eq!(out[&0].bytes[0], b"one");
    assert_eq!(out[&1].bytes[0], b"two");
    assert_eq!(st.conns_created, 2);
    assert_eq!(out[&0].completed + out[&1].completed, 2);
}

#[test]
fn syn_with_new_isn_on_finished_lingering_connection_reuses_tuple() {
    let f = Recorder {
        linger: true,
        ..Recorder::default()
    };
    let mut v = handshake(100, 500);
    v.push(seg(true, F | A, 101, 501, b"a", 1));
    v.push(seg(false, F | A, 501, 103, b"b", 1));
    v.push(seg(true, A, 103, 503, b"", 1)); // absorbed by the lingering connection
    v.extend(handshake(7000, 100));
    v.push(seg(true, A, 7001, 101, b"c", 2));
    let (_, st, r) = run_with(Config::default(), f, &v);
    let out = r.factory().out.borrow();
    assert_eq!(out.len(), 2);
    assert_eq!(out[&0].bytes, [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(out[&1].bytes[0], b"c");
    assert_eq!(st.conns_created, 2);
}

/// A closed connection lingers `linger_ns` past its last segment (strays
/// refresh it), then is forgotten: the tuple's next segment is a new
/// connection, with packet time alone moving it on.
#[test]
fn a_lingering_connection_is_forgotten_when_its_time_is_up() {
    let f = Recorder {
        linger: true,
        ..Recorder::default()
    };
    let cfg = Config {
        linger_ns: 5_000_000_000,
        ..Config::default()
    };
    let mut v = handshake(100, 500);
    v.push(seg(true, F | A, 101, 501, b"a", 1));
    v.push(seg(false, F | A, 501, 103, b"b", 1));
    v.push(seg(true, A, 103, 503, b"", 3)); // a stray: lingers until 8 s
    v.push(seg(true, A, 103, 503, b"late", 8)); // still absorbed
    v.push(seg(false, A, 503, 103, b"new", 14)); // gone: picked up anew
    let (_, st, r) = run_with(cfg, f, &v);
    let out = r.factory().out.borrow();
    assert_eq!(out.len(), 2);
    assert_eq!(out[&0].bytes, [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(out[&1].bytes.concat(), b"new");
    assert_eq!(st.conns_created, 2);
    assert_eq!(st.dropped(DropReason::AfterClose), 4);
}

#[test]
fn data_after_fin_is_dropped_and_counted() {
    let mut v = handshake(0, 0);
    v.push(seg(true, F | A, 1, 1, b"end", 1));
    v.push(seg(true, A, 4, 1, b"extra", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"end");
    assert_eq!(st.dropped(DropReason::AfterClose), 5);
    assert_eq!(seen.ends[0], 1);
}

/// Bytes that wait past the place a later FIN names are dropped as the
/// same bytes arriving after the FIN are: what the stream sees must not
/// depend on whether junk came before or after the FIN.
#[test]
fn data_waiting_past_a_fin_is_dropped_whatever_the_order() {
    // Right after the FIN's own payload, cut across a piece, and past a
    // hole before the FIN.
    let cases: [(&[Segment<'static>], &[u8], u64); 3] = [
        (
            &[
                seg(true, A, 6, 1, b"junk", 1),
                seg(true, F | A, 1, 1, b"hello", 1),
            ],
            b"hello",
            4,
        ),
        (
            &[
                seg(true, A, 4, 1, b"lo-junk", 1),
                seg(true, F | A, 1, 1, b"hello", 1),
            ],
            b"hello",
            5,
        ),
        (
            &[
                seg(true, A, 11, 1, b"junk", 1),
                seg(true, F | A, 4, 1, b"lo", 1),
                seg(true, A, 1, 1, b"hel", 1),
            ],
            b"hello",
            4,
        ),
    ];
    for (segs, want, after_close) in cases {
        let mut v = handshake(0, 0);
        v.extend_from_slice(segs);
        v.push(seg(false, F | A, 1, 7, b"", 2));
        let (seen, st, _) = run(Config::default(), &v);
        assert_eq!(seen.bytes[0], want, "{segs:?}");
        assert_eq!(st.dropped(DropReason::AfterClose), after_close, "{segs:?}");
        assert_eq!(seen.ends[0], 1, "one end: {segs:?}");
        assert_eq!(seen.skips[0], 0, "no hole past the FIN: {segs:?}");
        assert_eq!(st.pages_in_use, 0, "the pages went back: {segs:?}");
    }
}

/// A payload that needs room it cannot get is counted once, also with a
/// FIN waiting ahead (not trimmed there: the FIN does not hold until the
/// stream reaches it), and with a piece waiting whose forced flush makes
/// the loop offer the payload again (counting it again on every try
/// unbalanced the books).
#[test]
fn a_payload_refused_for_memory_is_counted_once() {
    let cfg = Config {
        max_pages_per_conn: 1,
        ..Config::default()
    };
    let mut v = handshake(0, 0);
    v.push(seg(true, F | A, 3001, 1, b"", 1));
    let big = vec![7u8; 3000];
    v.push(seg(true, A, 11, 1, &big, 1));
    let (_, st, _) = run(cfg.clone(), &v);
    assert_eq!(st.dropped(DropReason::AfterClose), 0);
    assert_eq!(st.dropped(DropReason::MemoryLimit), 3000);
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 5, 1, b"wait", 1));
    v.push(seg(true, F | A, 3001, 1, b"", 1));
    v.push(seg(true, A, 11, 1, &big, 1));
    let (seen, st, _) = run(cfg, &v);
    assert_eq!(st.dropped(DropReason::MemoryLimit), 3000);
    assert_eq!(seen.bytes[0], b"wait");
    assert!(st.balanced(), "{st:?}");
}

/// A FIN sent ahead of data does not cut the stream where the data then
/// goes past it: its receiver, taking the data first, drops the queued
/// FIN as old, and the stream goes on. A FIN the data reaches exactly
/// holds, and what waits beyond it is dropped then; a FIN never reached
/// ends the stream at the close, its missing bytes a hole.
#[test]
fn a_fin_ahead_of_the_data_holds_only_where_the_data_ends() {
    // Passed: all 12 bytes, no end until the real FIN.
    let mut v = handshake(0, 0);
    v.push(seg(true, F | A, 6, 1, b"", 1)); // FIN claimed at offset 5
    v.push(seg(true, A, 1, 1, b"hello world!", 1));
    v.push(seg(true, F | A, 13, 1, b"", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"hello world!");
    assert_eq!(st.dropped_total(), 0, "{st:?}");
    assert_eq!(seen.ends[0], 1);

    // Reached exactly: it holds, and the data waiting past it is dropped.
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 9, 1, b"junk", 1));
    v.push(seg(true, F | A, 6, 1, b"", 1));
    v.push(seg(true, A, 1, 1, b"hello", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"hello");
    assert_eq!(st.dropped(DropReason::AfterClose), 4);
    assert_eq!(seen.ends[0], 1);
    assert_eq!(st.pages_in_use, 0);

    // Reached through the queue: the FIN came on data ending there, and
    // what was queued after it is dropped, whatever arrived first.
    let mut v = handshake(0, 0);
    v.push(seg(true, F | A, 4, 1, b"lo", 1)); // "lo" at 3..5, FIN at 5
    v.push(seg(true, A, 6, 1, b"junk", 1));
    v.push(seg(true, A, 1, 1, b"hel", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"hello");
    assert_eq!(st.dropped(DropReason::AfterClose), 4);

    // An acknowledgment past it says the receiver took data beyond it: the
    // FIN was dropped, and the data goes on.
    let mut v = handshake(0, 0);
    v.push(seg(true, F | A, 6, 1, b"", 1));
    v.push(seg(true, A, 4, 1, b"lo world", 1)); // 3..11, the hole 0..3 lost
    v.push(seg(false, A, 1, 12, b"", 1));
    v.push(seg(true, A, 12, 1, b"!", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"lo world!");
    assert_eq!(st.dropped(DropReason::AfterClose), 0);

    // Never reached: the close ends the stream there, the bytes before it
    // a hole.
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"he", 1));
    v.push(seg(true, F | A, 6, 1, b"", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"he");
    assert_eq!(seen.skips[0], 3);
    assert_eq!(st.gap_bytes, 3);

    // A RST right after it follows it (the FIN took the sequence number
    // before the RST's): the same 3 bytes are the hole, not 4. A RST
    // further on says the sender went past it.
    for (rst_seq, hole) in [(7, 3), (8, 5)] {
        let mut v = handshake(0, 0);
        v.push(seg(true, A, 1, 1, b"he", 1));
        v.push(seg(true, F | A, 6, 1, b"", 1));
        v.push(seg(true, R | A, rst_seq, 1, b"", 2));
        let (seen, st, _) = run(Config::default(), &v);
        assert_eq!(seen.bytes[0], b"he");
        assert_eq!(seen.skips[0], hole, "RST at {rst_seq}");
        assert_eq!(st.gap_bytes, hole);
        assert_eq!(st.conns_closed_rst, 1);
        assert!(st.balanced(), "{st:?}");
    }
}

#[test]
fn truncated_segment_skips_the_missing_bytes() {
    let mut v = handshake(0, 0);
    let mut s = seg(true, A, 1, 1, b"abc", 1);
    s.payload_missing = 7;
    v.push(s);
    v.push(seg(true, A, 11, 1, b"next", 1));
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abcnext");
    assert_eq!(seen.skips[0], 7);
    assert_eq!(st.truncated_bytes, 7);
    assert_eq!(st.out_of_order_segments, 0);
}

#[test]
fn far_future_segment_is_out_of_window() {
    let cfg = Config {
        max_window: 1000,
        ..Config::default()
    };
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 5000, 1, b"far", 1));
    let (_, st, _) = run(cfg, &v);
    assert_eq!(st.dropped(DropReason::OutOfWindow), 3);
}

#[test]
fn rejected_segments_are_counted() {
    struct No;
    impl Stream for No {
        fn accept(&mut self, _: &Segment<'_>, _: Direction, _: Option<Seq>, _: &Context) -> bool {
            false
        }
        fn reassembled(&mut self, _: &mut ScatterGather<'_>, _: &Context) {
            unreachable!()
        }
    }
    struct Nf;
    impl StreamFactory for Nf {
        type Stream = No;
        fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> No {
            No
        }
    }
    let mut r = Reassembler::new(Config::default(), Nf);
    r.process(&seg(true, A, 1, 1, b"abc", 0));
    assert_eq!(r.stats().dropped(DropReason::Rejected), 3);
    assert!(r.stats().balanced());
}

/// Client data of a connection: `[(seq offset from ISN+1, bytes)]` in
/// arrival order, after a handshake with ISN `isn`.
fn stream_of(policy: OverlapPolicy, isn: u32, parts: &[(u32, &[u8])]) -> (Vec<u8>, Stats, usize) {
    let mut v = handshake(isn, 0);
    for &(off, b) in parts {
        v.push(seg(true, A, isn.wrapping_add(1).wrapping_add(off), 1, b, 1));
    }
    let cfg = Config {
        overlap_policy: policy,
        ..Config::default()
    };
    let (seen, st, _) = run(cfg, &v);
    (seen.bytes[0].clone(), st, seen.conflicts)
}

/// The classic target-based test: a hole at the start, then overlapping
/// out-of-order segments with different bytes, then the hole is filled.
/// Expected outputs follow the policy definitions of Novak & Sturges.
#[test]
fn overlap_policies_differ_where_they_should() {
    // held: [4,8)="BBBB"; new segments against it:
    type Case<'a> = (&'a str, (u32, &'a [u8]), &'a [(OverlapPolicy, &'a [u8])]);
    let cases: &[Case<'_>] = &[
        // new starts before and ends inside
        (
            "before-inside",
            (2, b"xxxx"),
            &[
                (OverlapPolicy::First, b"aaxxBBBB"),
                (OverlapPolicy::Last, b"aaxxxxBB"),
                (OverlapPolicy::Bsd, b"aaxxxxBB"),
                (OverlapPolicy::Linux, b"aaxxxxBB"),
                (OverlapPolicy::Solaris, b"aaxxBBBB"),
            ],
        ),
        // same start, ends after
        (
            "same-after",
            (4, b"yyyyyy"),
            &[
                (OverlapPolicy::First, b"aaaaBBBByy"),
                (OverlapPolicy::Last, b"aaaayyyyyy"),
                (OverlapPolicy::Bsd, b"aaaaBBBByy"),
                (OverlapPolicy::Linux, b"aaaayyyyyy"),
                (OverlapPolicy::Solaris, b"aaaayyyyyy"),
            ],
        ),
        // exact duplicate with other bytes
        (
            "exact",
            (4, b"zzzz"),
            &[
                (OverlapPolicy::First, b"aaaaBBBB"),
                (OverlapPolicy::Last, b"aaaazzzz"),
                (OverlapPolicy::Bsd, b"aaaaBBBB"),
                (OverlapPolicy::Linux, b"aaaaBBBB"),
                (OverlapPolicy::OldLinux, b"aaaazzzz"),
                (OverlapPolicy::Solaris, b"aaaazzzz"),
            ],
        ),
        // starts inside, ends after
        (
            "inside-after",
            (6, b"wwww"),
            &[
                (OverlapPolicy::First, b"aaaaBBBBww"),
                (OverlapPolicy::Last, b"aaaaBBwwww"),
                (OverlapPolicy::Linux, b"aaaaBBBBww"),
                (OverlapPolicy::Solaris, b"aaaaBBwwww"),
            ],
        ),
    ];
    for (name, new, expect) in cases {
        for &(policy, want) in *expect {
            // [4,8) held, then the new one, then the hole [0,4) (or [0,2)) filled
            // the filler closes the hole up to the first held byte only
            let fill = &b"aaaa"[..new.0.min(4) as usize];
            let (got, st, conflicts) =
                stream_of(policy, u32::MAX - 3, &[(4, b"BBBB"), *new, (0, fill)]);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(want),
                "{name} under {policy}"
            );
            assert!(conflicts >= 1, "{name} under {policy}: conflict reported");
            assert!(st.overlap_conflicts >= 1);
        }
    }
}

/// Target-based per host: the client's data is resolved as the server
/// (its receiver) resolves it, the server's as the client does; a host no
/// network names follows `overlap_policy`. Here a held segment meets a
/// copy with other bytes: first-wins keeps it, last-wins takes the copy.
#[test]
fn each_direction_follows_its_receivers_policy() {
    let isn = 1000;
    let mut v = handshake(isn, 0);
    for (off, b) in [(4, b"BBBB"), (4, b"zzzz"), (0, b"aaaa")] {
        v.push(seg(true, A, isn + 1 + off, 1, b, 1));
        v.push(seg(false, A, 1 + off, isn + 1, b, 1));
    }
    let (kept, copy) = (&b"aaaaBBBB"[..], &b"aaaazzzz"[..]);
    let server = "198.51.100.2/32";
    // Networks and their policies; what each direction delivers.
    type Case<'a> = (&'a [(&'a str, OverlapPolicy)], [&'a [u8]; 2]);
    let cases: [Case<'_>; 4] = [
        (&[], [kept, kept]),
        (&[(server, OverlapPolicy::Last)], [copy, kept]),
        (&[("192.0.2.0/24", OverlapPolicy::Last)], [kept, copy]),
        (
            &[
                ("0.0.0.0/0", OverlapPolicy::Last),
                (server, OverlapPolicy::First),
            ],
            [kept, copy],
        ),
    ];
    for (hosts, want) in cases {
        let mut cfg = Config::default();
        for &(net, p) in hosts {
            cfg.overlap_by_host.insert(net.parse().unwrap(), p);
        }
        let (seen, _, _) = run(cfg, &v);
        assert_eq!(seen.bytes[0], want[0], "client's data, {hosts:?}");
        assert_eq!(seen.bytes[1], want[1], "server's data, {hosts:?}");
    }
    // Where the in-order segment that fills the hole overlaps the held
    // one (the delivery composes them), the receiver's policy too.
    let mut v = handshake(isn, 0);
    v.push(seg(true, A, isn + 5, 1, b"BBBB", 1));
    v.push(seg(true, A, isn + 1, 1, b"aaaaaa", 1));
    let mut cfg = Config::default();
    cfg.overlap_by_host
        .insert(server.parse().unwrap(), OverlapPolicy::Last);
    let (seen, _, _) = run(cfg, &v);
    assert_eq!(seen.bytes[0], b"aaaaaaBB");
}

/// The in-order segment that fills a hole overlaps a held segment: the
/// policy decides there too, without copying the in-order bytes.
#[test]
fn policy_applies_when_the_filling_segment_overlaps() {
    for (policy, want) in [
        (OverlapPolicy::First, &b"aaaaBBBB"[..]),
        (OverlapPolicy::Last, b"aaaaaaBB"),
        (OverlapPolicy::Bsd, b"aaaaaaBB"),
    ] {
        let (got, _, c) = stream_of(policy, 0, &[(4, b"BBBB"), (0, b"aaaaaa")]);
        assert_eq!(got, want, "{policy}");
        assert_eq!(c, 1);
    }
}

#[test]
fn identical_overlaps_are_not_conflicts() {
    let (got, st, c) = stream_of(
        OverlapPolicy::Last,
        0,
        &[(4, b"efgh"), (2, b"cdef"), (0, b"abcdefgh")],
    );
    assert_eq!(got, b"abcdefgh");
    assert_eq!(c, 0);
    assert_eq!(st.overlap_bytes, 2 + 6);
}

#[test]
fn stats_merge_adds() {
    let mut a = Stats {
        payload_bytes: 3,
        delivered_bytes: 3,
        ..Stats::default()
    };
    let b = a.clone();
    a.merge(&b);
    assert_eq!(a.payload_bytes, 6);
    assert!(a.balanced());
}

/// A differing copy of several adjacent held pieces is one conflict: the
/// stretch, not each piece (a segment over thousands of one-byte pieces
/// raised thousands of events).
#[test]
fn a_conflict_across_adjacent_pieces_is_one_event() {
    let mut v = handshake(0, 0);
    for k in 0..6u32 {
        v.push(seg(true, A, 3 + k, 1, b"x", 1)); // held: offsets 2..8, a piece each
    }
    v.push(seg(true, A, 3, 1, b"abcdef", 2)); // out of order, differs at all six
    v.push(seg(true, A, 5, 1, b"xx", 2)); // the same bytes: no conflict
    v.push(seg(true, A, 1, 1, b"01", 3)); // fills the hole
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.conflicts, 1);
    assert_eq!(st.overlap_conflicts, 1);
    assert_eq!(seen.bytes[0], b"01xxxxxx");
}

/// Every conflict in one delivery is reported, however many there are.
#[test]
fn every_conflict_of_one_delivery_is_an_event() {
    let mut v = handshake(0, 0);
    for k in 0..6u32 {
        v.push(seg(true, A, 2 + 2 * k, 1, b"x", 1)); // held: offsets 1, 3, …, 11
    }
    v.push(seg(true, A, 1, 1, b"abcdefghijkl", 1)); // in order, differs at each
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.conflicts, 6);
    assert_eq!(st.overlap_conflicts, 6);
    assert_eq!(seen.bytes[0], b"axcxexgxixkx");
}

/// A client segment with URG set and urgent pointer `ptr`.
fn urg(seq: u32, ptr: u16, payload: &[u8]) -> Segment<'_> {
    Segment {
        urgent: ptr,
        ..seg(true, A | U, seq, 1, payload, 1)
    }
}

fn oob() -> Config {
    Config {
        urgent: UrgentPolicy::OutOfBand,
        ..Config::default()
    }
}

/// The segments of the corpus's `tcp-urgent-pointer-2byte-http` request:
/// "XY" sent as urgent data, the pointer after the Y. The server's reply
/// in that capture names the path it read: "/malicXious".
#[test]
fn an_urgent_byte_leaves_the_stream_out_of_band_and_stays_inline() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"GET /malic", 1));
    v.push(urg(11, 2, b"XY"));
    v.push(seg(true, A, 13, 1, b"ious HTTP/1.1\r\n", 1));
    let (seen, st, r) = run(oob(), &v);
    assert_eq!(seen.bytes[0], b"GET /malicXious HTTP/1.1\r\n");
    assert_eq!(seen.urgent, [(0, 11, b'Y')]);
    assert_eq!((st.urgent_bytes, seen.urgent_info), (1, 1));
    assert_eq!(st.delivered_bytes, 26);
    assert_eq!(
        r.predicted.0, 3,
        "the handshake's ACK and the plain data take the fast path"
    );
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"GET /malicXYious HTTP/1.1\r\n");
    assert!(seen.urgent.is_empty());
    assert_eq!(st.urgent_bytes, 0);
}

/// A pointer past its segment marks a byte still to come: it goes when
/// it comes, in a segment without URG, on the fast path too. A pointer
/// of 0 marks the segment's first byte (as Linux reads it).
#[test]
fn an_urgent_pointer_marks_a_byte_of_a_later_segment_or_its_own_first() {
    for keep in [None, Some(2)] {
        let mut v = handshake(0, 0);
        v.push(urg(1, 5, b"abc")); // marks offset 4: 'e'
        v.push(seg(true, A, 4, 1, b"defg", 1));
        v.push(urg(8, 0, b"hij")); // marks 'h'
        let f = Recorder {
            keep,
            ..Recorder::default()
        };
        let (seen, st, _) = run_with(oob(), f, &v);
        assert_eq!(seen.bytes[0], b"abcdfgij", "keep {keep:?}");
        assert_eq!(seen.urgent, [(0, 4, b'e'), (0, 7, b'h')]);
        assert_eq!(st.urgent_bytes, 2);
    }
}

/// One mark at a time: a later pointer replaces a mark not reached yet,
/// an earlier or equal one is ignored, and a mark behind the next
/// expected byte (a retransmission) is ignored.
#[test]
fn a_later_urgent_pointer_replaces_the_mark_and_an_earlier_one_does_not() {
    let mut v = handshake(0, 0);
    v.push(urg(1, 10, b"abc")); // marks offset 9
    v.push(urg(4, 10, b"def")); // marks 12: replaces 9
    v.push(urg(7, 2, b"ghi")); // marks 7: not past 12, ignored
    v.push(seg(true, A, 10, 1, b"jklmnop", 1));
    // Wholly delivered: its receiver drops it before looking at its
    // pointer, though the pointer marks a byte still to come ('t').
    v.push(urg(1, 20, b"abc"));
    v.push(seg(true, A, 17, 1, b"qrst", 1));
    let (seen, st, _) = run(oob(), &v);
    assert_eq!(seen.bytes[0], b"abcdefghijklnopqrst");
    assert_eq!(seen.urgent, [(0, 12, b'm')]);
    assert_eq!(st.urgent_bytes, 1);
    assert_eq!(st.duplicate_bytes, 3);
}

/// A marked byte that waited out of order goes when the hole closes; a
/// mark in a hole that is skipped is spent without taking anything.
#[test]
fn an_urgent_byte_is_taken_from_waiting_data_and_a_skipped_mark_is_spent() {
    let mut v = handshake(0, 0);
    v.push(urg(4, 2, b"def")); // waits; marks offset 4: 'e'
    v.push(seg(true, A, 1, 1, b"abc", 1));
    let (seen, st, _) = run(oob(), &v);
    assert_eq!(seen.bytes[0], b"abcdf");
    assert_eq!(seen.urgent, [(0, 4, b'e')]);
    assert!(st.balanced());

    let mut r = opened(Config {
        skip_acked_holes: false,
        flush_timeout_ns: Some(1_000_000_000),
        ..oob()
    });
    r.process(&seg(true, A, 1, 1, b"abc", 1));
    r.process(&urg(4, 1, b"")); // marks offset 3, never captured
    r.process(&seg(true, A, 6, 1, b"fgh", 1)); // waits behind the hole
    r.process(&seg(true, A, 9, 1, b"ij", 3)); // past the timeout: skipped
    r.process(&urg(11, 2, b"kl")); // marks offset 11: 'l'
    r.flush_all();
    let out = r.factory().out.borrow();
    let seen = &out[&0];
    assert_eq!(seen.bytes[0], b"abcfghijk");
    assert_eq!(seen.urgent, [(0, 11, b'l')]);
    assert_eq!(seen.skips[0], 2);
    assert!(r.stats().balanced());
}

/// A Linux client reads the urgent pointer of the SYN-ACK that finds it
/// waiting (RFC 9293's SYN-SENT processing goes on to the URG step):
/// pointer 6 marks the server's data offset 4.
#[test]
fn the_urgent_pointer_of_a_syn_ack_marks_the_servers_data() {
    let mut v = handshake(0, 0);
    v[1].flags = TcpFlags(S | A | U);
    v[1].urgent = 6;
    v.push(seg(false, A, 1, 1, b"abcdefgh", 1));
    let (seen, st, _) = run(oob(), &v);
    assert_eq!(seen.bytes[1], b"abcdfgh");
    assert_eq!(seen.urgent, [(1, 4, b'e')]);
    assert_eq!(st.urgent_bytes, 1);
}

/// Segments a Linux receiver discards before their urgent pointer leave
/// the mark alone: one without ACK (it would have replaced the mark of
/// 'j' with one of 'm'), one sent before a retried SYN moved the
/// stream's start, and one sent while the SYN's data awaits its answer.
#[test]
fn urgent_pointers_the_receiver_never_reads_leave_the_mark_alone() {
    let mut v = handshake(0, 0);
    v.push(urg(1, 10, b"abc")); // marks offset 9: 'j'
    let mut no_ack = urg(4, 10, b"");
    no_ack.flags = TcpFlags(U);
    v.push(no_ack);
    v.push(seg(true, A, 4, 1, b"defghijklmnop", 1));
    let (seen, _, _) = run(oob(), &v);
    assert_eq!(seen.bytes[0], b"abcdefghiklmnop");
    assert_eq!(seen.urgent, [(0, 9, b'j')]);

    let v = vec![
        seg(true, S, 0, 0, b"", 0),
        urg(1, 5, b""), // would mark offset 4 of the first start
        seg(true, S, 1000, 0, b"", 0),
        seg(false, S | A, 0, 1001, b"", 0),
        seg(true, A, 1001, 1, b"abcdefgh", 1),
    ];
    let (seen, st, _) = run(oob(), &v);
    assert_eq!(seen.bytes[0], b"abcdefgh");
    assert_eq!(st.urgent_bytes, 0);

    let v = vec![
        seg(true, S, 0, 0, b"abc", 0), // TCP Fast Open data
        urg(1, 2, b""),                // before the answer: would mark 'b'
        seg(false, S | A, 0, 4, b"", 0),
        seg(true, A, 4, 1, b"def", 1),
    ];
    let (seen, st, _) = run(oob(), &v);
    assert_eq!(seen.bytes[0], b"abcdef");
    assert_eq!(st.urgent_bytes, 0);
}

/// A delivery an urgent byte was taken from counts the spans it hands
/// over: a frame split in two is two chunks from the frame.
#[test]
fn a_delivery_split_by_an_urgent_byte_counts_its_spans() {
    let mut v = handshake(0, 0);
    v.push(urg(1, 3, b"abcde")); // marks 'c'
    let (seen, ..) = run(oob(), &v);
    assert_eq!(seen.bytes[0], b"abde");
    let st = seen.sg_stats[0];
    assert_eq!((st.chunks, st.packets), (2, 2));
}

/// URG on a SYN or a RST never reaches the receiver's urgent handling,
/// nor does a pointer of a segment beyond the window.
#[test]
fn urgent_pointers_of_syns_rsts_and_segments_beyond_the_window_are_ignored() {
    // Data on the SYN (TCP Fast Open), taken by the server's SYN-ACK.
    let mut syn = seg(true, S | U, 0, 0, b"abc", 0);
    syn.urgent = 2; // would mark 'a'
    let v = vec![
        syn,
        seg(false, S | A, 0, 4, b"", 0),
        seg(true, A, 4, 1, b"def", 1),
    ];
    let (seen, st, _) = run(oob(), &v);
    assert_eq!(seen.bytes[0], b"abcdef");
    assert_eq!(st.urgent_bytes, 0);

    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    let cfg = Config {
        max_window: 10,
        ..oob()
    };
    v.push(urg(20, 1, b"zz")); // beyond the window: dropped, would mark 19
    v.push(seg(true, A, 4, 1, b"defghijkl", 1));
    v.push(seg(true, A, 13, 1, b"mnopqrstu", 1));
    let mut rst = urg(22, 1, b"vw"); // would mark 'v'
    rst.flags = TcpFlags(R | A | U);
    v.push(rst);
    let (seen, st, _) = run(cfg, &v);
    assert_eq!(seen.bytes[0], b"abcdefghijklmnopqrstu");
    assert_eq!(st.dropped(DropReason::OnRst), 2);
    assert!(seen.urgent.is_empty());
    assert_eq!(st.urgent_bytes, 0);
    assert_eq!(st.dropped(DropReason::OutOfWindow), 2);
}

/// Header prediction ([`Reassembler::in_order`]) changes nothing: random
/// segments of one connection, in both directions (in order, sent again,
/// ahead of a hole, with every flag, acknowledging past holes, cut by the
/// capture), through a stream that keeps bytes or rejects segments,
/// replayed with the fast path on and off, give the same deliveries,
/// events and statistics.
mod prediction {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    struct Op {
        fwd: bool,
        flags: u8,
        /// 0: at the direction's send cursor; 1: sent again, before it;
        /// 2: ahead of it, leaving a hole; 3: at the start of the oldest
        /// hole left (filling it in order, up to what waits behind it).
        at: u8,
        back_or_gap: u8,
        len: u8,
        ack_slack: i8,
        missing: bool,
        secs: u8,
    }

    fn op() -> impl Strategy<Value = Op> {
        let flags = prop_oneof![
            12 => Just(A),
            1 => Just(A | 0x08), // PSH
            1 => Just(0),
            1 => Just(S),
            1 => Just(S | A),
            1 => Just(F | A),
            1 => Just(R | A),
            1 => Just(R),
            1 => Just(A | U),
        ];
        (
            any::<bool>(),
            flags,
            prop_oneof![8 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 2 => Just(3u8)],
            1u8..40,
            0u8..24,
            -3i8..4,
            prop::bool::weighted(0.05),
            prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(4u8)],
        )
            .prop_map(
                |(fwd, flags, at, back_or_gap, len, ack_slack, missing, secs)| Op {
                    fwd,
                    flags,
                    at,
                    back_or_gap,
                    len,
                    ack_slack,
                    missing,
                    secs,
                },
            )
    }

    /// The segments `ops` describe: ISNs near the 2^32 wrap, payload bytes
    /// a function of their stream offset (so copies agree).
    fn segments(ops: &[Op]) -> Vec<(Segment<'static>, Vec<u8>)> {
        const ISN: [u32; 2] = [u32::MAX - 40, 7];
        let mut sent = [1u64, 1u64]; // after the SYN
        let mut holes: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
        let mut t = 0u64;
        ops.iter()
            .map(|o| {
                let d = usize::from(!o.fwd);
                let len = u64::from(o.len);
                let off = match o.at {
                    0 => sent[d],
                    1 => sent[d].saturating_sub(u64::from(o.back_or_gap)).max(1),
                    2 => {
                        holes[d].push(sent[d]);
                        sent[d] + u64::from(o.back_or_gap) + 1
                    }
                    _ if holes[d].is_empty() => sent[d],
                    _ => holes[d].remove(0),
                };
                let flags = o.flags;
                // A SYN stands at the ISN; its data (TCP Fast Open, on
                // every other SYN here) is the stream's first bytes.
                let syn = flags & S != 0;
                let (seq, off, len) = match (syn, o.back_or_gap % 2) {
                    (true, 0) => (0, 1, len),
                    (true, _) => (0, 1, 0),
                    (false, _) => (off, off, len),
                };
                let payload: Vec<u8> = (off..off + len).map(|x| (x * 7 + d as u64) as u8).collect();
                sent[d] = sent[d].max(off + len);
                let ack =
                    (ISN[1 - d] as u64 + sent[1 - d]).wrapping_add_signed(i64::from(o.ack_slack));
                t += u64::from(o.secs);
                let mut s = seg(
                    o.fwd,
                    flags,
                    ISN[d].wrapping_add(seq as u32),
                    ack as u32,
                    b"",
                    t,
                );
                s.payload_missing = if o.missing { 3 } else { 0 };
                s.urgent = u16::from(o.back_or_gap);
                (s, payload)
            })
            .collect()
    }

    fn replay(
        cfg: &Config,
        keep: Option<usize>,
        reject_odd: bool,
        segs: &[(Segment<'static>, Vec<u8>)],
        general_only: bool,
    ) -> (String, Stats, u64) {
        let f = Recorder {
            keep,
            reject_odd,
            ..Recorder::default()
        };
        let mut r = Reassembler::new(cfg.clone(), f);
        r.predicted.1 = general_only;
        for (s, payload) in segs {
            r.process(&Segment { payload, ..*s });
        }
        r.flush_all();
        let out = r.factory().out.borrow();
        let mut seen: Vec<_> = out.iter().map(|(id, s)| format!("{id}: {s:?}")).collect();
        seen.sort();
        (seen.join("\n"), r.stats(), r.predicted.0)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        #[test]
        fn the_fast_path_is_the_general_path(
            ops in prop::collection::vec(op(), 1..120),
            keep in prop::option::of(0usize..6),
            reject_odd in prop::bool::weighted(0.2),
            skip_acked_holes in any::<bool>(),
            flush in prop::option::of(1u64..5),
            urgent in prop::sample::select(&UrgentPolicy::ALL[..]),
        ) {
            let cfg = Config {
                skip_acked_holes,
                flush_timeout_ns: flush.map(|s| s * 1_000_000_000),
                urgent,
                ..Config::default()
            };
            let segs = segments(&ops);
            let (fast, fast_stats, _) = replay(&cfg, keep, reject_odd, &segs, false);
            let (general, general_stats, none) = replay(&cfg, keep, reject_odd, &segs, true);
            prop_assert_eq!(none, 0);
            prop_assert_eq!(fast, general);
            prop_assert_eq!(fast_stats, general_stats);
        }
    }

    /// The random segments above do reach the fast path, often.
    #[test]
    fn random_segments_reach_the_fast_path() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let ops = prop::collection::vec(op(), 100)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let (_, _, predicted) = replay(&Config::default(), None, false, &segments(&ops), false);
        assert!(predicted >= 10, "{predicted} of 100");
    }
}

/// Config with the retransmission check keeping `n` bytes.
fn checking(n: usize) -> Config {
    Config {
        retransmit_check: n,
        ..Config::default()
    }
}

#[test]
fn a_differing_retransmission_of_delivered_data_is_a_conflict() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abcdef", 1));
    v.push(seg(true, A, 1, 1, b"abcdef", 1)); // the same: no conflict
    v.push(seg(true, A, 1, 1, b"abXdef", 1));
    v.push(seg(true, A, 4, 1, b"dXfghi", 1)); // partly new
    let (seen, st, _) = run(checking(64), &v);
    assert_eq!(seen.bytes[0], b"abcdefghi");
    assert_eq!(seen.conflict_at, vec![(0, 0, 6, false), (0, 3, 3, false)]);
    assert_eq!(st.overlap_conflicts, 2);
    assert_eq!((st.rechecked_bytes, st.unchecked_bytes), (15, 0));
    assert_eq!(st.duplicate_bytes, 15);
    // Off (the default), nothing is compared.
    let (seen, st, _) = run(Config::default(), &v);
    assert_eq!(seen.bytes[0], b"abcdefghi");
    assert_eq!(seen.conflicts, 0);
    assert_eq!((st.rechecked_bytes, st.unchecked_bytes), (0, 0));
}

#[test]
fn a_conflict_is_raised_before_the_new_bytes_are_delivered() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abc", 1));
    v.push(seg(true, A, 1, 1, b"aXcdef", 1));
    let (seen, _, _) = run(checking(64), &v);
    assert_eq!(seen.bytes[0], b"abcdef");
    // The conflict came between the two deliveries.
    assert_eq!(seen.log, vec!["d0:3", "c0:0+3", "d0:3"]);
}

#[test]
fn only_the_last_bytes_kept_are_compared() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abcdef", 1));
    v.push(seg(true, A, 1, 1, b"Xbcdef", 1)); // X was delivered too long ago
    v.push(seg(true, A, 1, 1, b"abcdeX", 1));
    let (seen, st, _) = run(checking(4), &v);
    assert_eq!(seen.conflict_at, vec![(0, 2, 4, false)]);
    assert_eq!((st.rechecked_bytes, st.unchecked_bytes), (8, 4));
    // Deliveries larger than what is kept keep their tail.
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abcdefghij", 1));
    v.push(seg(true, A, 8, 1, b"Xij", 1));
    v.push(seg(true, A, 6, 1, b"fXh", 1));
    let (seen, st, _) = run(checking(4), &v);
    assert_eq!(seen.conflict_at, vec![(0, 7, 3, false), (0, 6, 2, false)]);
    assert_eq!((st.rechecked_bytes, st.unchecked_bytes), (5, 1));
}

#[test]
fn a_keep_alive_probe_is_not_compared() {
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abcdef", 1));
    v.push(seg(true, A, 6, 1, &[0], 20)); // the probe: one byte before next, idle
    v.push(seg(true, A, 1, 1, b"X", 40)); // one byte elsewhere: compared
    v.push(seg(true, A, 5, 1, b"eX", 40)); // two bytes: compared
    let (seen, st, _) = run(checking(64), &v);
    assert_eq!(seen.conflict_at, vec![(0, 0, 1, false), (0, 4, 2, false)]);
    assert_eq!((st.rechecked_bytes, st.unchecked_bytes), (3, 0));
    assert_eq!(st.duplicate_bytes, 4);
}

/// A decoy sent a byte at a time, each byte followed at once by the
/// genuine one: shaped as keep-alive probes, but the stream was not idle,
/// so every byte is compared.
#[test]
fn a_decoy_a_byte_at_a_time_is_not_taken_for_probes() {
    let mut v = handshake(0, 0);
    for (i, (decoy, real)) in b"EVIL".iter().zip(b"REAL").enumerate() {
        let seq = 1 + i as u32;
        v.push(seg(true, A, seq, 1, std::slice::from_ref(decoy), 1));
        v.push(seg(true, A, seq, 1, std::slice::from_ref(real), 1));
    }
    let (seen, st, _) = run(checking(64), &v);
    assert_eq!(seen.bytes[0], b"EVIL");
    assert_eq!(seen.conflicts, 3, "{:?}", seen.conflict_at); // L is L
    assert_eq!((st.rechecked_bytes, st.unchecked_bytes), (4, 0));
}

#[test]
fn the_check_compares_both_directions_and_sequence_space() {
    // The server's bytes are checked apart from the client's, and an
    // urgent byte taken out of band is still compared where it was sent.
    let mut v = handshake(0, 0);
    v.push(seg(true, A | U, 1, 1, b"abc", 1));
    v[3].urgent = 2; // marks b
    v.push(seg(false, A, 1, 4, b"xyz", 1));
    v.push(seg(true, A, 1, 1, b"abc", 2));
    v.push(seg(false, A, 1, 4, b"xYz", 2));
    v.push(seg(true, A, 2, 1, b"X", 2)); // the urgent byte, changed
    let cfg = Config {
        urgent: UrgentPolicy::OutOfBand,
        ..checking(64)
    };
    let (seen, st, _) = run(cfg, &v);
    assert_eq!(seen.bytes[0], b"ac");
    assert_eq!(seen.urgent, vec![(0, 1, b'b')]);
    assert_eq!(seen.conflict_at, vec![(1, 0, 3, false), (0, 1, 1, false)]);
    assert_eq!((st.rechecked_bytes, st.unchecked_bytes), (7, 0));
}

/// Bytes a handler keeps are offered again ahead of each delivery; the
/// check holds each stream byte once, where it was sent.
#[test]
fn bytes_a_handler_keeps_do_not_shift_what_is_compared() {
    let f = Recorder {
        keep: Some(2),
        ..Recorder::default()
    };
    let mut v = handshake(0, 0);
    v.push(seg(true, A, 1, 1, b"abcd", 1));
    v.push(seg(true, A, 5, 1, b"efgh", 1));
    v.push(seg(true, A, 3, 1, b"cdef", 1)); // the same bytes
    v.push(seg(true, A, 3, 1, b"cdXf", 1));
    let (seen, st, _) = run_with(checking(64), f, &v);
    assert_eq!(seen.bytes[0], b"abcdefgh");
    assert_eq!(seen.conflict_at, vec![(0, 2, 4, false)]);
    assert_eq!((st.rechecked_bytes, st.unchecked_bytes), (8, 0));
}

/// A hole the stream skipped does not let go of what came before it:
/// a copy across it is compared on both sides (two events), the hole's
/// bytes never. With a window of 4 bytes, the hole and what follows push
/// out what came before.
#[test]
fn what_came_before_a_hole_is_still_compared() {
    let run_with_hole = |keep: usize, copies: &[(u32, &[u8])]| {
        let mut r = opened(Config {
            flush_timeout_ns: Some(1_000_000_000),
            ..checking(keep)
        });
        r.process(&seg(true, A, 1, 1, b"abc", 1));
        r.process(&seg(true, A, 7, 1, b"ghi", 1));
        r.process(&seg(false, A, 1, 1, b"", 5)); // the flush skips the hole
        for &(seq, bytes) in copies {
            r.process(&seg(true, A, seq, 1, bytes, 5));
        }
        r.flush_all();
        let st = r.stats();
        let out = r.factory().out.borrow();
        let s = out.get(&0).expect("completed").clone();
        assert_eq!(s.skips[0], 3);
        (s.conflict_at, st.rechecked_bytes, st.unchecked_bytes)
    };
    let copies: &[(u32, &[u8])] = &[(1, b"Xbc"), (7, b"gXi"), (3, b"cDEFgH")];
    let (conflicts, checked, unchecked) = run_with_hole(64, copies);
    assert_eq!(
        conflicts,
        vec![(0, 0, 3, false), (0, 6, 3, false), (0, 6, 2, false)]
    );
    // The hole's 3 bytes are late data for it, not compared.
    assert_eq!((checked, unchecked), (9, 0));
    let (conflicts, _, _) = run_with_hole(64, &[(3, b"XDEFgh")]);
    assert_eq!(conflicts, vec![(0, 2, 1, false)]);
    // A window of 4 bytes: the end of the hole and what follows fill it.
    let (conflicts, checked, unchecked) = run_with_hole(4, copies);
    assert_eq!(conflicts, vec![(0, 6, 3, false), (0, 6, 2, false)]);
    assert_eq!((checked, unchecked), (5, 4));
}

#[test]
fn recent_bytes_stay_within_half_the_memcap_and_go_with_their_connections() {
    const MEMCAP: usize = 64 * 1024;
    let cfg = Config {
        memcap: MEMCAP,
        max_conns: 40,
        ..checking(4096)
    };
    let mut r = Reassembler::new(cfg, Recorder::default());
    let chunk = [b'k'; 1000];
    let mut peak = 0;
    for round in 0..10u32 {
        for port in 1..=30u16 {
            r.process(&seg_on(port, A, 100 + round * 1000, &chunk, 1));
            peak = peak.max(r.aside_alloc());
        }
    }
    assert!(peak <= MEMCAP / 2, "{peak} bytes held");
    assert!(peak > MEMCAP / 4, "{peak} bytes held");
    // Out-of-order data still waits in the other half of the memcap.
    for port in 1..=10u16 {
        r.process(&seg_on(port, A, 100 + 11 * 1000, &chunk, 2));
    }
    let st = r.stats();
    assert_eq!(st.buffered_bytes, 10 * 1000, "{st:?}");
    assert_eq!(st.memcap_flushes, 0, "{st:?}");
    // Retransmissions of every connection's last 2,000 bytes: rings that
    // could not grow past the memcap's half still hold the last 1,000 or
    // more (compared), not all of them.
    let two = [b'k'; 2000];
    for port in 1..=30u16 {
        r.process(&seg_on(port, A, 100 + 8 * 1000, &two, 2));
    }
    let st = r.stats();
    assert_eq!(st.rechecked_bytes + st.unchecked_bytes, 30 * 2000, "{st:?}");
    assert!(
        st.rechecked_bytes >= 30 * 1000 && st.unchecked_bytes > 0,
        "{st:?}"
    );
    assert_eq!(st.overlap_conflicts, 0);
    // Each connection's go with it: closed by a RST, evicted by new
    // connections past `max_conns`, or at the end.
    let before = r.aside_alloc();
    r.process(&seg_on(1, R | A, 100 + 10 * 1000, b"", 3));
    assert!(r.aside_alloc() < before);
    for port in 100..=140u16 {
        r.process(&seg_on(port, A, 100, b"x", 4));
    }
    assert!(r.stats().conns_evicted > 0);
    let held_by_new = r.aside_alloc();
    assert!(held_by_new <= 40 * 64, "{held_by_new} bytes held"); // the smallest rings
    r.flush_all();
    assert_eq!(r.aside_alloc(), 0);
}

/// The client's data of [`depth_and_stop`]'s connection (ISNs 100 and
/// 5000): `(offset, bytes)` segments, then FINs at `fin` (client) and
/// after the server's `"hello"`, both acknowledged.
fn depth_and_stop(
    cfg: Config,
    f: Recorder,
    client: &[(u32, &'static [u8])],
    fin: u32,
) -> (Seen, Stats) {
    let mut v = handshake(100, 5000);
    for &(off, bytes) in client {
        v.push(seg(true, A, 101 + off, 5001, bytes, 1));
    }
    v.push(seg(false, A, 5001, 101, b"hello", 1));
    v.push(seg(true, F | A, 101 + fin, 5006, b"", 2));
    v.push(seg(false, F | A, 5006, 102 + fin, b"", 2));
    v.push(seg(true, A, 102 + fin, 5007, b"", 2));
    let (seen, st, _) = run_with(cfg, f, &v);
    (seen, st)
}

#[test]
fn the_depth_ends_reassembly_of_each_direction_and_the_close_comes_as_before() {
    let cfg = Config {
        depth: 10,
        ..Config::default()
    };
    // Out of order past the depth (never buffered), then in order across it.
    let client: &[(u32, &[u8])] = &[(16, b"cccccccc"), (0, b"aaaaaaaa"), (8, b"bbbbbbbb")];
    let (seen, st) = depth_and_stop(cfg, Recorder::default(), client, 24);
    assert_eq!(seen.bytes[0], b"aaaaaaaabb");
    assert_eq!(seen.bytes[1], b"hello");
    assert_eq!(st.dropped(DropReason::Stopped), 14);
    assert_eq!(st.out_of_order_segments, 0, "nothing past the depth waits");
    assert_eq!(st.pages_peak, 0);
    // The bytes past the depth were no gap; the close came at the FINs,
    // its skip telling the stream what it did not get.
    assert_eq!((st.gap_bytes, st.gaps, seen.skips), (0, 0, [14, 0]));
    assert_eq!((seen.completed, seen.ends), (1, [1, 1]));
    assert_eq!(st.conns_closed_fin, 1);
}

#[test]
fn a_hole_before_the_depth_is_a_gap_as_far_as_the_depth() {
    let cfg = Config {
        depth: 15,
        ..Config::default()
    };
    // 10..20 never captured; 20..30 past the depth.
    let client: &[(u32, &[u8])] = &[(0, b"aaaaaaaaaa"), (20, b"cccccccccc")];
    let (seen, st) = depth_and_stop(cfg, Recorder::default(), client, 30);
    assert_eq!(seen.bytes[0], b"aaaaaaaaaa");
    assert_eq!(st.dropped(DropReason::Stopped), 10);
    assert_eq!((st.gap_bytes, seen.skips[0]), (5, 20));
    assert_eq!((seen.completed, seen.ends), (1, [1, 1]));
}

#[test]
fn a_handler_that_stops_its_direction_frees_what_waits_and_drops_what_comes() {
    let f = Recorder {
        stop_after: Some(1),
        ..Recorder::default()
    };
    // 20..28 waits behind a hole; 0..10 is delivered and the handler
    // stops there; then 10..20 comes.
    let client: &[(u32, &[u8])] = &[(20, b"cccccccc"), (0, b"aaaaaaaaaa"), (10, b"bbbbbbbbbb")];
    let (seen, st) = depth_and_stop(Config::default(), f, client, 28);
    assert_eq!(seen.bytes[0], b"aaaaaaaaaa");
    assert_eq!(seen.bytes[1], b"hello", "the other direction goes on");
    assert_eq!(st.dropped(DropReason::Stopped), 18);
    assert_eq!(st.out_of_order_segments, 1);
    assert_eq!((st.pages_peak, st.buffered_bytes), (1, 0));
    assert_eq!((st.gap_bytes, seen.skips), (0, [18, 0]));
    // The first delivery, then the end.
    assert_eq!(
        (seen.deliveries[0], seen.completed, seen.ends),
        (2, 1, [1, 1])
    );
    // Without the stop, all of it.
    let (seen, st) = depth_and_stop(Config::default(), Recorder::default(), client, 28);
    assert_eq!(seen.bytes[0], b"aaaaaaaaaabbbbbbbbbbcccccccc");
    assert_eq!(st.dropped(DropReason::Stopped), 0);
}

/// A stopped half follows its sender: its RST, however far past the
/// depth, is in the window and closes the connection; its FIN, with no
/// acknowledgment captured and acknowledged holes not skipped, closes its
/// half at once.
#[test]
fn a_half_past_its_depth_closes_by_its_rst_or_its_fin_as_before() {
    static CHUNK: [u8; 1000] = [7; 1000];
    let cfg = Config {
        depth: 10,
        rst_window: 1000,
        skip_acked_holes: false,
        ..Config::default()
    };
    let with = |last: Segment<'static>| {
        let mut v = handshake(100, 5000);
        for k in 0..5u32 {
            v.push(seg(true, A, 101 + k * 1000, 5001, &CHUNK, 1));
        }
        v.push(last);
        v
    };
    let (seen, st, _) = run(cfg.clone(), &with(seg(true, R | A, 5101, 5001, b"", 2)));
    assert_eq!(seen.bytes[0].len(), 10);
    assert_eq!((st.conns_closed_rst, st.rst_ignored), (1, 0), "{st:?}");
    assert_eq!(st.dropped(DropReason::Stopped), 4990);
    assert_eq!((st.gap_bytes, st.acked_gaps), (0, 0));
    // A FIN, not acknowledged in the capture: the client's half ends at
    // once; the server's FIN then closes the connection.
    let mut v = with(seg(true, F | A, 5101, 5001, b"", 2));
    v.push(seg(false, F | A, 5001, 5101, b"", 2));
    let mut r = Reassembler::new(cfg, Recorder::default());
    for s in &v {
        r.process(s);
    }
    let st = r.stats();
    assert_eq!(st.conns_closed_fin, 1, "closed without flush_all: {st:?}");
    let seen = r.factory().out.borrow()[&0].clone();
    // (The server sent no data: its half gets no end delivery.)
    assert_eq!((seen.ends, seen.skips[0]), ([1, 0], 4990));
}

/// The receiver acknowledged bytes the capture lost while nothing waited;
/// the sender's next data, past them, waits behind that hole only until
/// it is placed (it is the segment of grace): a copy of it sent again
/// with other bytes then finds it delivered, as the receiver had it, and
/// a last-wins policy keeps the first copy too.
#[test]
fn data_past_a_hole_acknowledged_before_it_does_not_wait_for_its_copy() {
    let mut v = handshake(100, 5000);
    v.push(seg(true, A, 101, 5001, &[b'a'; 100], 1));
    // [100, 200) lost by the capture; the receiver acknowledges it.
    v.push(seg(false, A, 5001, 301, b"", 1));
    v.push(seg(true, A, 301, 5001, &[b'c'; 100], 1));
    // The same range again, other bytes, once the receiver took it.
    v.push(seg(false, A, 5001, 401, b"", 1));
    v.push(seg(true, A, 301, 5001, &[b'X'; 100], 1));
    for policy in [OverlapPolicy::First, OverlapPolicy::Last] {
        let cfg = Config {
            overlap_policy: policy,
            ..Config::default()
        };
        let (seen, st, _) = run(cfg, &v);
        let mut want = vec![b'a'; 100];
        want.extend_from_slice(&[b'c'; 100]);
        assert_eq!(seen.bytes[0], want, "{policy:?}");
        assert_eq!((st.gap_bytes, seen.skips[0]), (100, 100), "{policy:?}");
    }
}
