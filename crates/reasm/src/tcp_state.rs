//! Optional validators for [`Stream::accept`](crate::Stream::accept):
//! a simple TCP state machine and option/window checks (gopacket's
//! `TCPSimpleFSM` and `TCPOptionCheck`), protection against wrapped
//! sequence numbers by timestamps (PAWS, [`TcpTimestampCheck`]), and the
//! receive window as Linux enforces it ([`TcpWindowCheck`]).
//!
//! Follows RFC 9293 (TCP) for the state transitions and RFC 7323 for window
//! scaling and PAWS. The validators are plain per-connection data: `Send +
//! Sync`.

use core::fmt;

use weft_wire::{Seq, Timestamp};

use crate::stream::Direction;
use crate::Segment;

/// Connection states as a passive observer can track them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TcpState {
    /// Nothing seen yet.
    #[default]
    Closed,
    /// The client's SYN was seen.
    SynSent,
    /// The server's SYN-ACK was seen.
    SynReceived,
    /// The handshake completed (or was assumed, midstream).
    Established,
    /// One side sent FIN.
    Closing,
    /// A RST was seen.
    Reset,
}

/// A simple TCP state machine: refuses segments that make no sense in the
/// connection's state (data before the handshake, a SYN on an established
/// connection, anything after a RST).
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpSimpleFsm {
    state: TcpState,
    /// Accept a connection that was not seen to open (midstream).
    pub allow_missing_handshake: bool,
}

impl TcpSimpleFsm {
    /// A state machine; `allow_missing_handshake` permits midstream pickup.
    pub fn new(allow_missing_handshake: bool) -> TcpSimpleFsm {
        TcpSimpleFsm {
            state: TcpState::Closed,
            allow_missing_handshake,
        }
    }

    /// The current state.
    pub fn state(&self) -> TcpState {
        self.state
    }

    /// Whether `seg`, travelling in `dir`, is valid now; advances the state.
    pub fn check(&mut self, seg: &Segment<'_>, dir: Direction) -> bool {
        use TcpState::*;
        let f = seg.flags;
        if f.rst() {
            self.state = Reset;
            return true;
        }
        match self.state {
            Reset => false,
            Closed => {
                if f.syn() && !f.ack() && dir == Direction::ClientToServer {
                    self.state = SynSent;
                    true
                } else if self.allow_missing_handshake {
                    self.state = if f.fin() { Closing } else { Established };
                    true
                } else {
                    false
                }
            }
            SynSent => {
                if f.syn() && f.ack() && dir == Direction::ServerToClient {
                    self.state = SynReceived;
                    true
                } else {
                    // SYN retransmission from the client.
                    f.syn() && dir == Direction::ClientToServer
                }
            }
            SynReceived => {
                if f.syn() {
                    return true; // retransmitted SYN or SYN-ACK
                }
                if dir == Direction::ClientToServer && f.ack() {
                    self.state = if f.fin() { Closing } else { Established };
                    return true;
                }
                false
            }
            Established => {
                if f.syn() {
                    return f.ack() || self.allow_missing_handshake;
                }
                if f.fin() {
                    self.state = Closing;
                }
                true
            }
            Closing => !f.syn(),
        }
    }
}

/// Why [`TcpOptionCheck`] refused a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionError {
    /// The MSS option appeared outside a SYN, or is zero.
    BadMss,
    /// The window-scale shift exceeds 14 (RFC 7323 §2.3).
    BadWindowScale,
    /// The segment lies outside the receiver's advertised window.
    OutOfWindow {
        /// Bytes beyond the right edge of the window.
        excess: u64,
    },
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::BadMss => f.write_str("MSS option outside SYN or zero"),
            OptionError::BadWindowScale => f.write_str("window scale shift above 14"),
            OptionError::OutOfWindow { excess } => {
                write!(
                    f,
                    "segment ends {excess} bytes beyond the advertised window"
                )
            }
        }
    }
}

impl std::error::Error for OptionError {}

#[derive(Clone, Copy, Debug, Default)]
struct Side {
    scale: Option<u8>,
    /// Right edge of the window this side advertised (its ack + window).
    right_edge: Option<Seq>,
}

/// Checks TCP options and that data stays within the window the receiver
/// advertised, with window scaling negotiated on the handshake.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpOptionCheck {
    sides: [Side; 2],
}

fn idx(d: Direction) -> usize {
    match d {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

impl TcpOptionCheck {
    /// A checker with nothing learned yet.
    pub fn new() -> TcpOptionCheck {
        TcpOptionCheck::default()
    }

    /// Checks `seg` (travelling in `dir`) and learns from it.
    pub fn accept(&mut self, seg: &Segment<'_>, dir: Direction) -> Result<(), OptionError> {
        let o = &seg.options;
        if let Some(mss) = o.mss {
            if !seg.flags.syn() || mss == 0 {
                return Err(OptionError::BadMss);
            }
        }
        if let Some(ws) = o.window_scale {
            if ws > 14 {
                return Err(OptionError::BadWindowScale);
            }
        }
        if seg.flags.syn() {
            self.sides[idx(dir)].scale = o.window_scale;
        }
        // Data must fit the window the receiver advertised last.
        let rx = self.sides[idx(dir.reverse())];
        if let Some(edge) = rx.right_edge {
            let end = seg.data_seq() + seg.payload.len() as u32;
            let excess = end - edge;
            if excess > 0 && !seg.payload.is_empty() {
                return Err(OptionError::OutOfWindow {
                    excess: excess as u64,
                });
            }
        }
        if seg.flags.ack() {
            let both_scaled = self.sides.iter().all(|s| s.scale.is_some());
            let shift = if both_scaled && !seg.flags.syn() {
                self.sides[idx(dir)].scale.unwrap_or(0)
            } else {
                0
            };
            let window = (seg.window as u32) << shift;
            self.sides[idx(dir)].right_edge = Some(seg.ack + window);
        }
        Ok(())
    }
}

/// Why [`TcpTimestampCheck`] refused a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampError {
    /// PAWS (RFC 7323 §5.3): the segment's timestamp is older than the
    /// latest its receiver took from the left edge of its window.
    Old {
        /// The segment's TSval.
        tsval: u32,
        /// The receiver's TS.Recent for its sender.
        recent: u32,
    },
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimestampError::Old { tsval, recent } => {
                write!(f, "timestamp {tsval} older than {recent} (PAWS)")
            }
        }
    }
}

impl std::error::Error for TimestampError {}

/// How long a TS.Recent stays valid without being renewed: 2,147 seconds,
/// less than half the wrap of a microsecond timestamp clock (Linux's
/// `TCP_PAWS_WRAP` since 6.7, for senders with `tcp_usec_ts`; RFC 7323
/// §5.5's 24 days hold for millisecond clocks only). Past it a segment is
/// taken afresh, whatever its timestamp.
pub const PAWS_IDLE_NS: u64 = 2_147 * 1_000_000_000;

#[derive(Clone, Copy, Debug, Default)]
struct TsSide {
    /// TS.Recent for the segments this side sends, and the packet time it
    /// was taken at.
    recent: Option<(u32, Timestamp)>,
    /// The furthest acknowledgment this side sent that the check accepted
    /// (never moved back, nor past `next`): Last.ACK.sent, for the other
    /// side's segments.
    last_ack: Option<Seq>,
    /// The next byte the reassembler expects of this side, as far as its
    /// segments tell: no acknowledgment of this side's bytes past it is
    /// learnt.
    next: Option<Seq>,
    /// A segment of this side was accepted: a SYN now is not its first.
    seen: bool,
}

/// Whether `a` is at or before `b`, modulo 2^32.
fn not_after(a: Seq, b: Seq) -> bool {
    b - a >= 0
}

/// Whether `at` lies in the `len` sequence numbers from `seq`.
fn spans(seq: Seq, len: u32, at: Seq) -> bool {
    let into = at - seq;
    into >= 0 && (into as u32) < len
}

/// PAWS, protection against wrapped sequences (RFC 7323 §5), as the
/// receivers would apply it: a segment whose timestamp is older than the
/// newest one its receiver took is refused, so an old duplicate, or a
/// segment forged with a stale timestamp that the receiver would drop, does
/// not reach the reassembled bytes.
///
/// As the RFC has it, from what an observer sees of both sides:
/// * Timestamps are in use unless a side's first segment is a SYN or
///   SYN-ACK without the option (a connection picked up midstream uses
///   them once they appear; a SYN after a side's first segment changes
///   nothing, as a receiver answers it with a challenge ACK).
/// * TS.Recent of a direction is taken from its first SYN, then from the
///   newest TSval of its segments that cover the left edge of the
///   receiver's window (start at or before it and reach past it; a segment
///   without data, at it): the next byte the reassembler expects of that
///   direction (`next_seq`), or the receiver's last acknowledgment
///   (Last.ACK.sent) where that is earlier. Out-of-order segments, old
///   ones wholly behind the edge, and any segment while the reassembler
///   expects nothing yet of that direction leave it as it is.
///   Acknowledgments count only moving forward and up to the byte the
///   reassembler expects next of the side they acknowledge, and the edge
///   is never past the reassembler's next byte, so a forged acknowledgment
///   cannot set it back, or far ahead, for a forged timestamp to be taken
///   at it, nor pin it.
/// * A segment with a timestamp older than TS.Recent (modulo 2^32) is
///   refused, unless it carries RST or SYN, TS.Recent is 0 (some stacks
///   send a zero TSval on SYNs; Linux accepts anything then), or TS.Recent
///   is over [`PAWS_IDLE_NS`] old in packet time (then it is taken
///   afresh).
/// * A segment without the option is accepted, as Linux does (the RFC
///   lets a receiver drop it).
///
/// Stricter than Linux in one case: Linux exempts duplicate pure ACKs
/// whose timestamp lags a little (`tcp_disordered_ack`); here they are
/// refused, so their acknowledgment does not skip a hole
/// ([`Config::skip_acked_holes`](crate::Config::skip_acked_holes)); they
/// carry nothing to reassemble.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpTimestampCheck {
    sides: [TsSide; 2],
    /// A SYN or SYN-ACK came without timestamps: no checks.
    off: bool,
}

impl TcpTimestampCheck {
    /// A checker with nothing learned yet.
    pub fn new() -> TcpTimestampCheck {
        TcpTimestampCheck::default()
    }

    /// Whether timestamps are checked (no side's first segment was a SYN
    /// or SYN-ACK without them).
    pub fn in_use(&self) -> bool {
        !self.off
    }

    /// Checks `seg` (travelling in `dir`) and learns from it if accepted;
    /// `next_seq` is the next byte the reassembler expects of that
    /// direction, if known (as [`Stream::accept`](crate::Stream::accept)
    /// is given it).
    pub fn accept(
        &mut self,
        seg: &Segment<'_>,
        dir: Direction,
        next_seq: Option<Seq>,
    ) -> Result<(), TimestampError> {
        let f = seg.flags;
        let (me, peer) = (idx(dir), idx(dir.reverse()));
        let first = !self.sides[me].seen;
        if f.syn() && seg.options.timestamp.is_none() && first {
            self.off = true;
        }
        if self.off {
            return Ok(());
        }
        // The sequence space the segment occupies: SYN, data, FIN.
        let len = seg.payload.len() as u32 + u32::from(f.syn()) + u32::from(f.fin());
        if let Some((tsval, _)) = seg.options.timestamp {
            if let Some((recent, at)) = self.sides[me].recent {
                let older = (tsval.wrapping_sub(recent) as i32) < 0;
                let stale = seg.ts.0.saturating_sub(at.0) > PAWS_IDLE_NS;
                if stale {
                    self.sides[me].recent = None;
                } else if older && recent != 0 && !f.rst() && !f.syn() {
                    return Err(TimestampError::Old { tsval, recent });
                }
            }
            // Any value replaces a zero TS.Recent, as Linux's does.
            let newer = self.sides[me].recent.map_or(true, |(recent, _)| {
                recent == 0 || (tsval.wrapping_sub(recent) as i32) >= 0
            });
            let edge = match (self.sides[peer].last_ack, next_seq) {
                (Some(ack), Some(next)) if not_after(ack, next) => Some(ack),
                (_, next) => next,
            };
            // A segment without data covers the edge by sitting at it.
            let covers =
                edge.is_some_and(|edge| spans(seg.seq, len, edge) || len == 0 && edge == seg.seq);
            // A SYN sets it only as its side's first segment: on a
            // connection under way a receiver does not take one (RFC
            // 5961), and a forged SYN with a far-ahead timestamp would
            // otherwise blind the check to every genuine segment after it.
            let take = if f.syn() { first } else { newer && covers };
            if take {
                self.sides[me].recent = Some((tsval, seg.ts));
            }
        }
        let bound = self.sides[peer].next;
        let side = &mut self.sides[me];
        side.seen = true;
        // The reassembler's next byte after this segment: past it if it
        // was in order (or a side's SYN), as it was otherwise.
        let in_order = next_seq.map_or(f.syn(), |n| spans(seg.seq, len, n));
        if in_order {
            side.next = Some(seg.seq + len);
        } else if next_seq.is_some() {
            side.next = next_seq;
        }
        let forward = side.last_ack.map_or(true, |a| not_after(a, seg.ack));
        if f.ack() && forward && bound.is_some_and(|n| not_after(seg.ack, n)) {
            side.last_ack = Some(seg.ack);
        }
        Ok(())
    }
}

/// Why [`TcpWindowCheck`] refused a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowError {
    /// The segment's data starts at or past the right edge of the window
    /// its receiver advertised.
    Beyond {
        /// How far past the edge it starts (0: at it).
        past: u32,
    },
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowError::Beyond { past } => {
                write!(f, "data starts {past} bytes past the receiver's window")
            }
        }
    }
}

impl std::error::Error for WindowError {}

/// The receive window as a Linux receiver enforces it: a segment whose
/// data starts at or past the right edge of the window the receiver
/// advertised is refused (`tcp_sequence`, and `tcp_data_queue` for data at
/// the edge of a closed window), so data a sender puts beyond the window,
/// which the receiver drops, cannot take the place of what it sends again
/// once the window opens. A segment that starts inside and ends beyond is
/// taken whole, as Linux takes it. So is a FIN without data: refused past
/// the edge, or at it unless it is the next byte expected (a FIN into a
/// closed window).
///
/// From what an observer sees of both sides:
/// * The right edge of a side's window is the furthest `ack + window` of
///   its segments with ACK whose acknowledgment does not pass what the
///   other side was seen to send (Linux discards an ACK of data never
///   sent), so neither a window update the capture shows late nor a
///   forged one can move it back. (Linux moves it back only with
///   `tcp_shrink_window`; then this check is the more lenient.)
/// * The window is scaled by the shift its sender announced on its SYN
///   when both SYNs announced one (RFC 7323 2.2), a shift past 14 as 14,
///   unscaled when either SYN did not; a SYN's own window is never
///   scaled. A side's SYN counts until that side sends a segment without
///   SYN: a SYN after that (answered with a challenge ACK) changes
///   nothing. Until both sides' SYNs were seen (a connection picked up
///   midstream, a capture that missed one), nothing is refused.
/// * RSTs are not judged (the reassembler has its own window for them,
///   `Config::rst_window`).
///
/// What it cannot tell: a capture that lost the receiver's latest window
/// updates shows genuine data past the edge it knows, and that data is
/// refused; for captures of both directions without loss. A sender who
/// can forge the receiver's segments can open the window it sees (not
/// narrow it).
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpWindowCheck {
    /// Each side's SYN: `None` until seen, then its window shift option.
    syn_shift: [Option<Option<u8>>; 2],
    /// A side sent a segment without SYN: its handshake is over.
    settled: [bool; 2],
    /// The furthest sequence number each side's accepted segments reached
    /// (SYN, data and FIN counted).
    reach: [Option<Seq>; 2],
    /// The furthest right edge each side advertised.
    edge: [Option<Seq>; 2],
}

/// The later of `a` and `b` (modulo 2^32), `b` if `a` is unknown.
fn furthest(a: Option<Seq>, b: Seq) -> Seq {
    a.filter(|&a| a - b > 0).unwrap_or(b)
}

impl TcpWindowCheck {
    /// A checker with nothing learned yet.
    pub fn new() -> TcpWindowCheck {
        TcpWindowCheck::default()
    }

    /// The right edge of the window `dir`'s receiver advertised, once
    /// known.
    pub fn edge(&self, dir: Direction) -> Option<Seq> {
        self.edge[idx(dir.reverse())]
    }

    /// Checks `seg` (travelling in `dir`) and learns from it if accepted;
    /// `next_seq` is the next byte the reassembler expects of that
    /// direction, if known (as [`Stream::accept`](crate::Stream::accept)
    /// is given it).
    pub fn accept(
        &mut self,
        seg: &Segment<'_>,
        dir: Direction,
        next_seq: Option<Seq>,
    ) -> Result<(), WindowError> {
        let f = seg.flags;
        let (me, peer) = (idx(dir), idx(dir.reverse()));
        let data = seg.payload.len() as u64 + u64::from(seg.payload_missing);
        let both = self.syn_shift.iter().all(Option::is_some);
        if f.syn() {
            if !self.settled[me] {
                self.syn_shift[me] = Some(seg.options.window_scale.map(|s| s.min(14)));
            }
        } else if !f.rst() && both && (data > 0 || f.fin() && next_seq != Some(seg.seq)) {
            if let Some(edge) = self.edge[peer] {
                let past = seg.seq - edge;
                if past >= 0 {
                    return Err(WindowError::Beyond { past: past as u32 });
                }
            }
        }
        if f.rst() {
            return Ok(());
        }
        let len = data as u32 + u32::from(f.syn()) + u32::from(f.fin());
        self.reach[me] = Some(furthest(self.reach[me], seg.seq + len));
        if !f.syn() {
            self.settled[me] = true;
        }
        let sent = self.reach[peer].map_or(true, |r| seg.ack - r <= 0);
        if f.ack() && sent {
            let shift = match (f.syn(), self.syn_shift) {
                (true, _) => Some(0),
                (false, [Some(Some(_)), Some(Some(_))]) => {
                    self.syn_shift[me].flatten().map(u32::from)
                }
                (false, [Some(_), Some(_)]) => Some(0),
                _ => None,
            };
            if let Some(shift) = shift {
                let edge = seg.ack + (u32::from(seg.window) << shift);
                self.edge[me] = Some(furthest(self.edge[me], edge));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{seg, A, F, R, S};

    const C2S: Direction = Direction::ClientToServer;
    const S2C: Direction = Direction::ServerToClient;

    /// A segment of `len` bytes from the client (`fwd`) or the server,
    /// advertising `window` and, on a SYN, window shift `ws`.
    fn win_seg(
        fwd: bool,
        flags: u8,
        seq: u32,
        ack: u32,
        window: u16,
        ws: Option<u8>,
        len: usize,
    ) -> Segment<'static> {
        const DATA: [u8; 64] = [7; 64];
        let mut sg = seg(fwd, flags, seq, ack, &DATA[..len], 0);
        sg.window = window;
        sg.options.window_scale = ws;
        sg
    }

    #[test]
    fn window_check_refuses_data_that_starts_past_the_advertised_edge() {
        let mut w = TcpWindowCheck::new();
        assert_eq!(
            w.accept(&win_seg(true, S, 0, 0, 1000, Some(2), 0), C2S, None),
            Ok(())
        );
        // The SYN-ACK's window is not scaled: the edge is 1 + 100.
        assert_eq!(
            w.accept(&win_seg(false, S | A, 0, 1, 100, Some(3), 0), S2C, None),
            Ok(())
        );
        assert_eq!(w.edge(C2S), Some(Seq(101)));
        assert_eq!(
            w.accept(&win_seg(true, A, 1, 1, 1000, None, 50), C2S, None),
            Ok(())
        );
        let beyond = w.accept(&win_seg(true, A, 101, 1, 1000, None, 10), C2S, None);
        assert_eq!(beyond, Err(WindowError::Beyond { past: 0 }));
        assert_eq!(
            w.accept(&win_seg(true, A, 130, 1, 1000, None, 1), C2S, None),
            Err(WindowError::Beyond { past: 29 })
        );
        // Starting inside, it is taken whole.
        assert_eq!(
            w.accept(&win_seg(true, A, 100, 1, 1000, None, 10), C2S, None),
            Ok(())
        );
        // No data, or a RST: not judged.
        assert_eq!(
            w.accept(&win_seg(true, A, 500, 1, 1000, None, 0), C2S, None),
            Ok(())
        );
        assert_eq!(
            w.accept(&win_seg(true, R | A, 500, 1, 1000, None, 0), C2S, None),
            Ok(())
        );
        // Later windows are scaled by the server's shift (3): 51 + 800.
        assert_eq!(
            w.accept(&win_seg(false, A, 1, 51, 100, None, 0), S2C, None),
            Ok(())
        );
        assert_eq!(w.edge(C2S), Some(Seq(851)));
        assert_eq!(
            w.accept(&win_seg(true, A, 500, 1, 1000, None, 5), C2S, None),
            Ok(())
        );
        assert!(w
            .accept(&win_seg(true, A, 851, 1, 1000, None, 5), C2S, None)
            .is_err());
        // An older, narrower window shown late narrows nothing.
        assert_eq!(
            w.accept(&win_seg(false, A, 1, 51, 10, None, 0), S2C, None),
            Ok(())
        );
        assert_eq!(w.edge(C2S), Some(Seq(851)));
        // The client's own window (scaled by its shift, 2) bounds the
        // server's data: 1 + 1000 × 4 from its first segment with ACK.
        assert_eq!(w.edge(S2C), Some(Seq(4001)));
        assert_eq!(
            w.accept(&win_seg(false, A, 4000, 51, 100, None, 1), S2C, None),
            Ok(())
        );
        assert!(w
            .accept(&win_seg(false, A, 4001, 51, 100, None, 1), S2C, None)
            .is_err());
    }

    /// What a review found a first version refusing that Linux takes,
    /// or taking that Linux refuses.
    #[test]
    fn window_check_holds_against_missed_syns_late_syns_forged_acks_and_fins() {
        // The client's SYN missed: the SYN-ACK's unscaled edge must not
        // judge data the scaled windows after it admit.
        let mut w = TcpWindowCheck::new();
        w.accept(&win_seg(false, S | A, 0, 1, 1000, Some(7), 0), S2C, None)
            .unwrap();
        w.accept(&win_seg(true, A, 1, 1, 1000, None, 0), C2S, None)
            .unwrap();
        w.accept(&win_seg(false, A, 1, 1, 500, None, 0), S2C, None)
            .unwrap();
        assert_eq!(
            w.accept(&win_seg(true, A, 1001, 1, 1000, None, 9), C2S, None),
            Ok(())
        );

        // Scaled by 7 both ways; then a SYN without the option, once the
        // client sent segments without SYN, changes nothing.
        let mut w = TcpWindowCheck::new();
        w.accept(&win_seg(true, S, 0, 0, 1000, Some(7), 0), C2S, None)
            .unwrap();
        w.accept(&win_seg(false, S | A, 0, 1, 1000, Some(7), 0), S2C, None)
            .unwrap();
        w.accept(&win_seg(true, A, 1, 1, 1000, None, 50), C2S, None)
            .unwrap();
        w.accept(&win_seg(true, S, 0, 0, 1000, None, 0), C2S, None)
            .unwrap();
        w.accept(&win_seg(false, A, 1, 51, 500, None, 0), S2C, None)
            .unwrap();
        assert_eq!(w.edge(C2S), Some(Seq(51 + (500 << 7))));

        // Forged acknowledgments of data never sent teach nothing: two
        // of them could otherwise walk the edge back through the wrap.
        let edge = w.edge(C2S).unwrap();
        w.accept(
            &win_seg(false, A, 1, edge.0.wrapping_add(0x7FFF_0000), 0, None, 0),
            S2C,
            None,
        )
        .unwrap();
        w.accept(
            &win_seg(false, A, 1, edge.0.wrapping_add(0xFFFE_0000), 0, None, 0),
            S2C,
            None,
        )
        .unwrap();
        assert_eq!(w.edge(C2S), Some(edge));
        assert_eq!(
            w.accept(&win_seg(true, A, 51, 1, 1000, None, 9), C2S, None),
            Ok(())
        );

        // A FIN without data at the edge is refused, unless it is the
        // next byte expected (into a closed window); a segment whose
        // bytes the capture cut off is judged as data.
        let mut w = TcpWindowCheck::new();
        w.accept(&win_seg(true, S, 0, 0, 1000, None, 0), C2S, None)
            .unwrap();
        w.accept(&win_seg(false, S | A, 0, 1, 10, None, 0), S2C, None)
            .unwrap();
        assert!(w
            .accept(
                &win_seg(true, F | A, 11, 1, 1000, None, 0),
                C2S,
                Some(Seq(1))
            )
            .is_err());
        assert_eq!(
            w.accept(
                &win_seg(true, F | A, 11, 1, 1000, None, 0),
                C2S,
                Some(Seq(11))
            ),
            Ok(())
        );
        let mut cut = win_seg(true, A, 11, 1, 1000, None, 0);
        cut.payload_missing = 100;
        assert!(w.accept(&cut, C2S, Some(Seq(1))).is_err());
    }

    #[test]
    fn window_check_scales_only_what_both_syns_agreed_and_waits_for_them() {
        // Midstream: the scale is unknown, nothing is refused.
        let mut w = TcpWindowCheck::new();
        assert_eq!(
            w.accept(&win_seg(false, A, 1, 1, 1, None, 0), S2C, None),
            Ok(())
        );
        assert_eq!(w.edge(C2S), None);
        assert_eq!(
            w.accept(&win_seg(true, A, 5000, 1, 1, None, 9), C2S, None),
            Ok(())
        );
        // One SYN without the option: windows are not scaled.
        let mut w = TcpWindowCheck::new();
        w.accept(&win_seg(true, S, 0, 0, 1000, Some(7), 0), C2S, None)
            .unwrap();
        w.accept(&win_seg(false, S | A, 0, 1, 1000, None, 0), S2C, None)
            .unwrap();
        w.accept(&win_seg(false, A, 1, 1, 100, None, 0), S2C, None)
            .unwrap();
        assert_eq!(
            w.edge(C2S),
            Some(Seq(1001)),
            "the SYN-ACK's edge stays the furthest"
        );
        w.accept(&win_seg(true, A, 1, 1, 1000, None, 50), C2S, None)
            .unwrap();
        w.accept(&win_seg(false, A, 1, 51, 1000, None, 0), S2C, None)
            .unwrap();
        assert_eq!(w.edge(C2S), Some(Seq(1051)));
        // A shift past 14 counts as 14 (RFC 7323 2.3), as Linux takes it.
        let mut w = TcpWindowCheck::new();
        w.accept(&win_seg(true, S, 0, 0, 1000, Some(40), 0), C2S, None)
            .unwrap();
        w.accept(&win_seg(false, S | A, 0, 1, 1000, Some(200), 0), S2C, None)
            .unwrap();
        w.accept(&win_seg(false, A, 1, 1, 1, None, 0), S2C, None)
            .unwrap();
        assert_eq!(w.edge(C2S), Some(Seq(1 + (1 << 14))));
        // Across the 2^32 wrap.
        let mut w = TcpWindowCheck::new();
        w.accept(
            &win_seg(true, S, u32::MAX - 10, 0, 1000, None, 0),
            C2S,
            None,
        )
        .unwrap();
        w.accept(
            &win_seg(false, S | A, 0, u32::MAX - 9, 100, None, 0),
            S2C,
            None,
        )
        .unwrap();
        assert_eq!(w.edge(C2S), Some(Seq(90)));
        assert_eq!(
            w.accept(&win_seg(true, A, 80, 1, 1000, None, 5), C2S, None),
            Ok(())
        );
        assert!(w
            .accept(&win_seg(true, A, 90, 1, 1000, None, 5), C2S, None)
            .is_err());
    }

    #[test]
    fn fsm_follows_a_handshake_and_close() {
        let mut m = TcpSimpleFsm::new(false);
        assert!(m.check(&seg(true, S, 10, 0, b"", 0), C2S));
        assert_eq!(m.state(), TcpState::SynSent);
        assert!(m.check(&seg(false, S | A, 50, 11, b"", 0), S2C));
        assert_eq!(m.state(), TcpState::SynReceived);
        assert!(m.check(&seg(true, A, 11, 51, b"", 0), C2S));
        assert_eq!(m.state(), TcpState::Established);
        assert!(m.check(&seg(true, A, 11, 51, b"data", 0), C2S));
        assert!(m.check(&seg(true, F | A, 15, 51, b"", 0), C2S));
        assert_eq!(m.state(), TcpState::Closing);
        assert!(
            !m.check(&seg(true, S, 99, 0, b"", 0), C2S),
            "SYN while closing"
        );
        assert!(m.check(&seg(false, R, 51, 0, b"", 0), S2C));
        assert!(
            !m.check(&seg(true, A, 16, 51, b"late", 0), C2S),
            "anything after RST"
        );
    }

    #[test]
    fn fsm_refuses_data_before_a_handshake_unless_midstream() {
        let mut strict = TcpSimpleFsm::new(false);
        assert!(!strict.check(&seg(true, A, 1, 1, b"x", 0), C2S));
        let mut lax = TcpSimpleFsm::new(true);
        assert!(lax.check(&seg(true, A, 1, 1, b"x", 0), C2S));
        assert_eq!(lax.state(), TcpState::Established);
        // a SYN-ACK straight after a SYN from the wrong side is refused
        let mut m = TcpSimpleFsm::new(false);
        assert!(m.check(&seg(true, S, 10, 0, b"", 0), C2S));
        assert!(!m.check(&seg(true, A, 11, 0, b"early", 0), C2S));
    }

    #[test]
    fn option_check_enforces_mss_scale_and_window() {
        let mut c = TcpOptionCheck::new();
        let mut syn = seg(true, S, 0, 0, b"", 0);
        syn.options.window_scale = Some(2);
        syn.options.mss = Some(1460);
        assert_eq!(c.accept(&syn, C2S), Ok(()));
        let mut synack = seg(false, S | A, 0, 1, b"", 0);
        synack.options.window_scale = Some(15);
        assert_eq!(c.accept(&synack, S2C), Err(OptionError::BadWindowScale));
        synack.options.window_scale = Some(1);
        assert_eq!(c.accept(&synack, S2C), Ok(()));
        let mut bad = seg(true, A, 1, 1, b"x", 0);
        bad.options.mss = Some(536);
        assert_eq!(c.accept(&bad, C2S), Err(OptionError::BadMss));
        // the server advertises 100 << 1 = 200 bytes from ack 1
        let mut ack = seg(false, A, 1, 1, b"", 0);
        ack.window = 100;
        assert_eq!(c.accept(&ack, S2C), Ok(()));
        assert_eq!(c.accept(&seg(true, A, 1, 1, &[0; 200], 0), C2S), Ok(()));
        assert_eq!(
            c.accept(&seg(true, A, 1, 1, &[0; 210], 0), C2S),
            Err(OptionError::OutOfWindow { excess: 10 })
        );
    }

    /// `seg` with the timestamp option `tsval` (TSecr 0).
    fn ts(mut s: Segment<'_>, tsval: u32) -> Segment<'_> {
        s.options.timestamp = Some((tsval, 0));
        s
    }

    #[test]
    fn paws_refuses_old_timestamps_and_learns_from_the_left_edge() {
        // `next` is the next byte the reassembler expects of the direction.
        let mut c = TcpTimestampCheck::new();
        let mut at = |s: Segment<'_>, d, next: Option<u32>| c.accept(&s, d, next.map(Seq));
        assert_eq!(at(ts(seg(true, S, 0, 0, b"", 0), 100), C2S, None), Ok(()));
        assert_eq!(
            at(ts(seg(false, S | A, 0, 1, b"", 0), 7), S2C, None),
            Ok(())
        );
        assert_eq!(
            at(ts(seg(true, A, 1, 1, b"abc", 0), 101), C2S, Some(1)),
            Ok(())
        );
        // The server acknowledges 4: the client's left edge.
        assert_eq!(at(ts(seg(false, A, 1, 4, b"", 0), 8), S2C, Some(1)), Ok(()));
        // Out of order, past the left edge: accepted, TS.Recent stays 101.
        assert_eq!(
            at(ts(seg(true, A, 10, 1, b"late", 0), 120), C2S, Some(4)),
            Ok(())
        );
        // The hole's filler, sent before it, is newer than 101: accepted
        // (had the out-of-order segment moved TS.Recent, it would not be),
        // and it covers the edge: TS.Recent 110.
        assert_eq!(
            at(ts(seg(true, A, 4, 1, b"hole!!", 0), 110), C2S, Some(4)),
            Ok(())
        );
        // An old duplicate, or data forged with a stale timestamp: refused,
        // at the left edge or anywhere.
        let old = Err(TimestampError::Old {
            tsval: 90,
            recent: 110,
        });
        assert_eq!(
            at(ts(seg(true, A, 4, 1, b"forged", 0), 90), C2S, Some(14)),
            old
        );
        assert_eq!(at(ts(seg(true, A, 1, 1, b"", 0), 90), C2S, Some(14)), old);
        // A RST or SYN with an old timestamp is not PAWS's to refuse, and
        // a SYN on a connection under way does not move TS.Recent.
        assert_eq!(
            at(ts(seg(true, R, 14, 0, b"", 0), 1), C2S, Some(14)),
            Ok(())
        );
        assert_eq!(at(ts(seg(true, S, 0, 0, b"", 0), 1), C2S, Some(14)), Ok(()));
        assert_eq!(
            at(
                ts(seg(true, S, 0, 0, b"", 0), 110 + (1 << 30)),
                C2S,
                Some(14)
            ),
            Ok(()),
            "forged far ahead: taken, it would refuse every genuine segment"
        );
        // A segment without timestamps passes, as Linux lets it.
        assert_eq!(at(seg(true, A, 14, 1, b"x", 0), C2S, Some(14)), Ok(()));
        // The other direction has its own TS.Recent: 9 from the server's
        // segment at its edge (the client acknowledged 1).
        assert_eq!(
            at(ts(seg(false, A, 1, 4, b"ok", 0), 9), S2C, Some(1)),
            Ok(())
        );
        assert_eq!(
            at(ts(seg(false, A, 3, 4, b"no", 0), 8), S2C, Some(3)),
            Err(TimestampError::Old {
                tsval: 8,
                recent: 9
            })
        );
        // A refused segment's acknowledgment is not learnt: the client's
        // last one stays 1, so the server's edge stays 1 and its segment at
        // 3 leaves TS.Recent at 9; one at 5, sent before it, passes. (Had
        // the forged ACK of 3 counted, 40 would be TS.Recent.)
        assert_eq!(at(ts(seg(true, A, 15, 3, b"", 0), 90), C2S, Some(15)), old);
        assert_eq!(
            at(ts(seg(false, A, 3, 4, b"yy", 0), 40), S2C, Some(3)),
            Ok(())
        );
        assert_eq!(
            at(ts(seg(false, A, 5, 4, b"zz", 0), 30), S2C, Some(5)),
            Ok(())
        );
        // Once the client acknowledges 7, the server's next segment there
        // sets it.
        assert_eq!(
            at(ts(seg(true, A, 15, 7, b"", 0), 111), C2S, Some(15)),
            Ok(())
        );
        assert_eq!(
            at(ts(seg(false, A, 7, 4, b"!", 0), 41), S2C, Some(7)),
            Ok(())
        );
        assert!(at(ts(seg(false, A, 8, 4, b"?", 0), 40), S2C, Some(8)).is_err());
    }

    #[test]
    fn paws_wraps_expires_and_stays_off_without_timestamps_on_a_syn() {
        // TSval wraps: 5 is newer than 2^32 - 16.
        let mut c = TcpTimestampCheck::new();
        let top = u32::MAX - 15;
        assert_eq!(
            c.accept(&ts(seg(true, A, 1, 1, b"a", 0), top), C2S, Some(Seq(1))),
            Ok(())
        );
        assert_eq!(
            c.accept(&ts(seg(true, A, 2, 1, b"b", 0), 5), C2S, Some(Seq(2))),
            Ok(())
        );
        assert_eq!(
            c.accept(&ts(seg(true, A, 3, 1, b"c", 0), top), C2S, Some(Seq(3))),
            Err(TimestampError::Old {
                tsval: top,
                recent: 5
            }),
            "picked up midstream, checked from the first in-order timestamp"
        );
        // TS.Recent idle over 2,147 s is taken afresh (packet time, seconds:
        // a microsecond clock runs through half its range in that time).
        let idle = PAWS_IDLE_NS / 1_000_000_000;
        let mut c = TcpTimestampCheck::new();
        assert_eq!(
            c.accept(&ts(seg(true, A, 1, 1, b"a", 0), 1000), C2S, Some(Seq(1))),
            Ok(())
        );
        let again = |t| ts(seg(true, A, 2, 1, b"b", t), 10);
        assert!(
            c.accept(&again(idle), C2S, Some(Seq(2))).is_err(),
            "2,147 s: still valid"
        );
        assert_eq!(c.accept(&again(idle + 1), C2S, Some(Seq(2))), Ok(()));
        assert!(c
            .accept(&ts(seg(true, A, 3, 1, b"c", idle + 2), 9), C2S, None)
            .is_err());
        // A zero TS.Recent (a SYN's TSval of 0, as some stacks send) lets
        // anything through, as Linux does: the side's real clock may start
        // anywhere.
        let mut c = TcpTimestampCheck::new();
        assert_eq!(
            c.accept(&ts(seg(true, S, 0, 0, b"", 0), 0), C2S, None),
            Ok(())
        );
        let late = ts(seg(true, A, 1, 1, b"x", 0), 0x9000_0000);
        assert_eq!(c.accept(&late, C2S, Some(Seq(1))), Ok(()));
        // ... and once a real one is taken, the check is on again.
        assert!(c
            .accept(
                &ts(seg(true, A, 2, 1, b"y", 0), 0x9000_0000 - 5),
                C2S,
                Some(Seq(2))
            )
            .is_err());
        // One-sided, picked up on a segment that turns out to be out of
        // order (the reassembler knew nothing yet): it does not set
        // TS.Recent, so the earlier data, sent before it with an older
        // timestamp, passes; the first segment to cover the edge the
        // reassembler reports sets it.
        let mut c = TcpTimestampCheck::new();
        let first = ts(seg(false, A | 0x08, 1418, 1, &[0; 65], 0), 793);
        assert_eq!(c.accept(&first, S2C, None), Ok(()));
        let earlier = ts(seg(false, A, 0, 1, &[0; 1396], 0), 772);
        assert_eq!(c.accept(&earlier, S2C, Some(Seq(1483))), Ok(()));
        let next = ts(seg(false, A, 1483, 1, &[0; 10], 0), 800);
        assert_eq!(c.accept(&next, S2C, Some(Seq(1483))), Ok(()));
        let old = ts(seg(false, A, 1493, 1, &[0; 10], 0), 799);
        assert!(c.accept(&old, S2C, Some(Seq(1493))).is_err());
        // A SYN-ACK without timestamps: none are in use, nothing refused.
        let mut c = TcpTimestampCheck::new();
        assert_eq!(
            c.accept(&ts(seg(true, S, 0, 0, b"", 0), 100), C2S, None),
            Ok(())
        );
        assert_eq!(
            c.accept(&seg(false, S | A, 0, 1, b"", 0), S2C, None),
            Ok(())
        );
        assert!(!c.in_use());
        assert_eq!(
            c.accept(&ts(seg(true, A, 1, 1, b"x", 0), 200), C2S, None),
            Ok(())
        );
        assert_eq!(
            c.accept(&ts(seg(true, A, 2, 1, b"y", 0), 1), C2S, None),
            Ok(())
        );
    }

    /// Forged segments cannot blind the check (make it refuse the genuine
    /// segments after them) nor turn it off: a timestamp far ahead is taken
    /// only from a segment that covers the window's edge, which a blind
    /// forger cannot place; forged acknowledgments cannot move the edge
    /// back, or beyond what the other side sent; a SYN or SYN-ACK without
    /// timestamps on a connection under way changes nothing.
    /// (`next_seq` as the reassembler would pass it.)
    #[test]
    fn paws_is_not_blinded_by_forged_segments() {
        let mut c = TcpTimestampCheck::new();
        let ok = |c: &mut TcpTimestampCheck, s: Segment<'_>, d, n| c.accept(&s, d, n).is_ok();
        assert!(ok(&mut c, ts(seg(true, S, 0, 0, b"", 0), 100), C2S, None));
        assert!(ok(
            &mut c,
            ts(seg(false, S | A, 0, 1, b"", 0), 7),
            S2C,
            None
        ));
        assert!(ok(
            &mut c,
            ts(seg(true, A, 1, 1, b"abcd", 0), 101),
            C2S,
            Some(Seq(1))
        ));
        assert!(ok(
            &mut c,
            ts(seg(false, A, 1, 5, b"", 0), 8),
            S2C,
            Some(Seq(1))
        ));
        // The client's edge is 5 (acknowledged, and the next byte). Far
        // from it, in both halves of the sequence space, with timestamps
        // far ahead: accepted (newer) but not taken.
        let far = 1u32 << 31;
        for (seq, tsval) in [
            (5 + far, 101 + far - 1),
            (5 + far, 101 + (1 << 30)),
            (5u32.wrapping_sub(far - 1), 101 + (1 << 30)),
        ] {
            assert!(ok(
                &mut c,
                ts(seg(true, A, seq, 1, b"x", 0), tsval),
                C2S,
                Some(Seq(5))
            ));
        }
        // A forged server ACK back at 1, then a forged segment covering 1:
        // the edge stays at 5, so its timestamp is not taken either.
        assert!(ok(
            &mut c,
            ts(seg(false, A, 1, 1, b"", 0), 9),
            S2C,
            Some(Seq(1))
        ));
        assert!(ok(
            &mut c,
            ts(seg(true, A, 1, 1, b"abcd", 0), 101 + (1 << 30)),
            C2S,
            Some(Seq(5))
        ));
        // A forged server ACK far beyond what the client sent, and a
        // segment there: nothing taken (the edge stays at the
        // reassembler's next byte).
        assert!(ok(
            &mut c,
            ts(seg(false, A, 1, 5 + 1000, b"", 0), 9),
            S2C,
            Some(Seq(1))
        ));
        assert!(ok(
            &mut c,
            ts(seg(true, A, 1005, 1, b"", 0), 101 + (1 << 30)),
            C2S,
            Some(Seq(5))
        ));
        // A SYN-ACK without timestamps now: still in use.
        assert!(ok(
            &mut c,
            seg(false, S | A, 77, 1, b"", 0),
            S2C,
            Some(Seq(1))
        ));
        assert!(c.in_use());
        // The genuine next segment passes; a stale one is refused.
        assert!(ok(
            &mut c,
            ts(seg(true, A, 5, 1, b"efgh", 0), 102),
            C2S,
            Some(Seq(5))
        ));
        assert_eq!(
            c.accept(&ts(seg(true, A, 9, 1, b"stale", 0), 50), C2S, Some(Seq(9))),
            Err(TimestampError::Old {
                tsval: 50,
                recent: 102
            })
        );
    }

    /// A side seen once (midstream, pure ACKs only) is past its first
    /// segment: a forged SYN without timestamps then switches nothing off.
    /// An acknowledgment past what the other side was seen to send is not
    /// learnt, so a forged one far ahead cannot pin the edge: genuine ones
    /// after it still move it.
    #[test]
    fn paws_after_a_sides_first_segment_and_acks_past_the_data() {
        let mut c = TcpTimestampCheck::new();
        let mut at = |s: Segment<'_>, d, next: Option<u32>| c.accept(&s, d, next.map(Seq));
        // Midstream: the server sends data, the client only acknowledges.
        assert!(at(ts(seg(false, A, 100, 1, b"abcd", 0), 50), S2C, None).is_ok());
        assert!(at(ts(seg(true, A, 1, 104, b"", 0), 900), C2S, None).is_ok());
        assert!(at(seg(true, S, 0, 0, b"", 0), C2S, None).is_ok());
        assert!(c.in_use(), "a forged SYN after the client's first segment");
        let mut at = |s: Segment<'_>, d, next: Option<u32>| c.accept(&s, d, next.map(Seq));
        // The server's next byte is 104. A forged client ACK far past it is
        // not learnt; the genuine ACK of 108 is, once the server sent it.
        let far = 104u32.wrapping_add((1 << 31) - 2);
        assert!(at(ts(seg(true, A, 1, far, b"", 0), 901), C2S, None).is_ok());
        assert!(at(ts(seg(false, A, 104, 1, b"efgh", 0), 51), S2C, Some(104)).is_ok());
        assert!(at(ts(seg(true, A, 1, 108, b"", 0), 902), C2S, None).is_ok());
        // The server's segment at 108 covers the edge (108, acknowledged):
        // its timestamp is taken. The one at 110 does not (the client
        // acknowledged 108 only; had the forged ACK pinned the learnt one,
        // the edge would be the reassembler's 110 and 70 taken), so one
        // at 112 sent between them passes; an older one is refused.
        assert!(at(ts(seg(false, A, 108, 1, b"ij", 0), 60), S2C, Some(108)).is_ok());
        assert!(at(ts(seg(false, A, 110, 1, b"kl", 0), 70), S2C, Some(110)).is_ok());
        assert!(at(ts(seg(false, A, 112, 1, b"mn", 0), 65), S2C, Some(112)).is_ok());
        assert_eq!(
            at(ts(seg(false, A, 114, 1, b"op", 0), 55), S2C, Some(114)),
            Err(TimestampError::Old {
                tsval: 55,
                recent: 60
            })
        );
    }

    /// Data forged with a stale timestamp, ahead of the genuine segment at
    /// the same place: the receiver drops it (PAWS), so with the check in
    /// `accept` the stream gets the genuine bytes; without it, the forged
    /// ones (the first policy keeps what came first).
    #[test]
    fn paws_in_accept_keeps_forged_stale_data_out() {
        use crate::{
            Config, ConnInfo, Context, Reassembler, ScatterGather, Segment, Stream, StreamFactory,
        };
        use weft_wire::Seq;
        struct Paws(Option<TcpTimestampCheck>, Vec<u8>);
        impl Stream for Paws {
            fn accept(
                &mut self,
                s: &Segment<'_>,
                d: Direction,
                n: Option<Seq>,
                _: &Context,
            ) -> bool {
                self.0.as_mut().map_or(true, |c| c.accept(s, d, n).is_ok())
            }
            fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
                if sg.info().dir == Direction::ClientToServer {
                    for c in sg.chunks() {
                        self.1.extend_from_slice(c);
                    }
                }
            }
            fn complete(&mut self, _: &Context) -> bool {
                OUT.with(|o| o.borrow_mut().push(std::mem::take(&mut self.1)));
                true
            }
        }
        thread_local! {
            static OUT: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        struct Fac(bool);
        impl StreamFactory for Fac {
            type Stream = Paws;
            fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Paws {
                Paws(self.0.then(TcpTimestampCheck::new), Vec::new())
            }
        }
        for check in [true, false] {
            let mut r = Reassembler::new(Config::default(), Fac(check));
            r.process(&ts(seg(true, S, 0, 0, b"", 0), 100));
            r.process(&ts(seg(false, S | A, 0, 1, b"", 0), 7));
            r.process(&ts(seg(true, A, 1, 1, b"", 0), 101));
            r.process(&ts(seg(true, A, 1, 1, b"GET ", 0), 102));
            r.process(&ts(seg(true, A, 5, 1, b"/evil", 0), 50));
            r.process(&ts(seg(true, A, 5, 1, b"/good", 0), 103));
            // A stale pure ACK: refused too, counted as a segment only.
            r.process(&ts(seg(true, A, 10, 1, b"", 0), 60));
            r.process(&ts(seg(true, F | A, 10, 1, b"", 0), 104));
            r.flush_all();
            let got = OUT.with(|o| o.borrow_mut().pop()).expect("completed");
            let want: &[u8] = if check { b"GET /good" } else { b"GET /evil" };
            assert_eq!(got, want, "check {check}");
            let rejected = r.stats().dropped(crate::DropReason::Rejected);
            assert_eq!(rejected, if check { 5 } else { 0 });
            assert_eq!(r.stats().segments_rejected, 2 * u64::from(check));
        }
    }

    #[test]
    fn validators_plug_into_accept() {
        use crate::{
            Config, ConnInfo, Context, Reassembler, ScatterGather, Segment, Stream, StreamFactory,
        };
        use weft_wire::Seq;
        struct Strict(TcpSimpleFsm, u64);
        impl Stream for Strict {
            fn accept(
                &mut self,
                s: &Segment<'_>,
                d: Direction,
                _: Option<Seq>,
                _: &Context,
            ) -> bool {
                self.0.check(s, d)
            }
            fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
                self.1 += sg.len() as u64;
            }
        }
        struct Fac;
        impl StreamFactory for Fac {
            type Stream = Strict;
            fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Strict {
                Strict(TcpSimpleFsm::new(false), 0)
            }
        }
        let mut r = Reassembler::new(Config::default(), Fac);
        r.process(&seg(true, A, 1, 1, b"no handshake", 0));
        assert_eq!(r.stats().dropped(crate::DropReason::Rejected), 12);
        assert!(r.stats().balanced());
        // A blind RST (far outside the RST window) never reaches the
        // validator, which would take it for the end of the connection
        // and refuse every later segment.
        let mut r = Reassembler::new(Config::default(), Fac);
        r.process(&seg(true, S, 0, 0, b"", 0));
        r.process(&seg(false, S | A, 0, 1, b"", 0));
        r.process(&seg(true, A, 1, 1, b"", 0));
        r.process(&seg(true, A, 1, 1, b"abc", 0));
        r.process(&seg(false, R, 50_000_000, 0, b"", 0));
        r.process(&seg(true, A, 4, 1, b"def", 0));
        let st = r.stats();
        assert_eq!(st.rst_ignored, 1);
        assert_eq!(st.dropped(crate::DropReason::Rejected), 0);
        assert_eq!(st.delivered_bytes, 6);
    }
}
