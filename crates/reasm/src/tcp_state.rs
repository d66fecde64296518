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
