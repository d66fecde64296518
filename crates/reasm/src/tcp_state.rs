//! Optional validators for [`Stream::accept`](crate::Stream::accept):
//! a simple TCP state machine and option/window checks (gopacket's
//! `TCPSimpleFSM` and `TCPOptionCheck`).
//!
//! Follows RFC 9293 (TCP) for the state transitions and RFC 7323 for window
//! scaling. Both validators are plain per-connection data: `Send + Sync`.

use core::fmt;

use weft_wire::Seq;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{seg, A, F, R, S};

    const C2S: Direction = Direction::ClientToServer;
    const S2C: Direction = Direction::ServerToClient;

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
