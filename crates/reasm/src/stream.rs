//! What users implement: a stream factory and per-connection streams.

use weft_wire::{Dir, FlowKey, Seq, Timestamp};

use crate::sg::ScatterGather;
use crate::Segment;

/// Direction of a half-connection relative to the connection's client (the
/// side that sent the SYN or, when picked up midstream, the first segment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client to the server.
    ClientToServer,
    /// From the server to the client.
    ServerToClient,
}

impl Direction {
    /// The other direction.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }
}

/// Identity of a connection, given to the factory and kept for its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnInfo {
    /// The canonical flow key.
    pub key: FlowKey,
    /// The wire direction (within `key`) in which the client sends.
    pub client_dir: Dir,
    /// Sequential number of the connection in this reassembler, from 0.
    pub id: u64,
    /// Whether the connection was seen to open (a SYN or SYN-ACK).
    pub handshake: bool,
}

impl ConnInfo {
    /// Wire direction of a half-connection.
    pub fn wire_dir(&self, d: Direction) -> Dir {
        match d {
            Direction::ClientToServer => self.client_dir,
            Direction::ServerToClient => self.client_dir.reverse(),
        }
    }

    /// Client/server direction of a wire direction.
    pub fn direction(&self, d: Dir) -> Direction {
        direction_of(self.client_dir, d)
    }
}

/// Client/server direction of wire direction `d` when the client sends in
/// `client_dir` (connections keep only `client_dir` of their [`ConnInfo`]).
pub(crate) fn direction_of(client_dir: Dir, d: Dir) -> Direction {
    if d == client_dir {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    }
}

/// Why the reassembler is calling back, and at what packet time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    /// Packet time (of the segment being processed, or of the flush).
    pub ts: Timestamp,
    /// What triggered the callback.
    pub cause: Cause,
}

/// What triggered a delivery or completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// A segment arrived.
    Segment,
    /// Buffered data grew older than the flush timeout.
    FlushTimeout,
    /// The connection was idle longer than the idle timeout.
    IdleTimeout,
    /// A page limit or the memcap forced buffered data out.
    MemoryPressure,
    /// Evicted to make room at the connection limit.
    Evicted,
    /// Both directions finished with FIN.
    Fin,
    /// A RST ended the connection.
    Rst,
    /// A new SYN reused the 4-tuple of a finished connection.
    Reused,
    /// `flush_all` or `close_older_than` by the user.
    Explicit,
}

/// Something a stream may want to know besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Two copies of the same range carried different bytes (possible
    /// evasion or injection). `new_won` tells which copy the policy kept.
    /// One event covers a contiguous differing stretch of one segment, even
    /// when the held copy was in several pieces. A retransmission of data
    /// the stream already delivered is compared too where
    /// [`Config::retransmit_check`](crate::Config::retransmit_check) keeps
    /// it (`new_won` false; one event for each stretch between the holes
    /// the stream skipped): raised before the segment's new bytes, if
    /// any, are delivered.
    OverlapConflict {
        /// Direction of the data.
        dir: Direction,
        /// Stream offset of the first overlapping byte.
        offset: u64,
        /// Length of the overlap.
        len: u32,
        /// Whether the newer copy was kept.
        new_won: bool,
    },
    /// The stream reached the byte an urgent pointer marked, and took it
    /// out ([`UrgentPolicy::OutOfBand`](crate::UrgentPolicy::OutOfBand)):
    /// the receiving application does not read it in the stream. Raised
    /// just before the delivery it was taken from. `byte` is the
    /// reassembled stream's byte there; what a Linux receiver hands out
    /// of band is the copy that first covered the mark after the pointer
    /// came (the same, unless the copies differ), or nothing if that
    /// data was queued out of order before it.
    Urgent {
        /// Direction of the data.
        dir: Direction,
        /// Stream offset of the byte.
        offset: u64,
        /// The byte.
        byte: u8,
    },
    /// Bytes were dropped (see [`DropReason`](crate::DropReason)).
    Dropped {
        /// Direction of the data.
        dir: Direction,
        /// Why.
        reason: crate::DropReason,
        /// How many bytes.
        bytes: u32,
    },
}

/// Creates a [`Stream`] for each new connection (gopacket's `StreamFactory`).
pub trait StreamFactory {
    /// The per-connection handler.
    type Stream: Stream;
    /// A new connection starts with `seg`.
    fn new_stream(&mut self, conn: &ConnInfo, seg: &Segment<'_>, ctx: &Context) -> Self::Stream;
}

/// A connection's handler: sees its reassembled bytes, both directions.
pub trait Stream {
    /// Called for every segment before it is used; `false` drops it
    /// ([`DropReason::Rejected`](crate::DropReason::Rejected)). `next_seq`
    /// is the next expected sequence number of that direction, if known.
    /// The validators of [`tcp_state`](crate::tcp_state) fit here.
    fn accept(
        &mut self,
        seg: &Segment<'_>,
        dir: Direction,
        next_seq: Option<Seq>,
        ctx: &Context,
    ) -> bool {
        let _ = (seg, dir, next_seq, ctx);
        true
    }

    /// In-order bytes of one direction, possibly after a hole
    /// (`sg.info().skip`).
    fn reassembled(&mut self, sg: &mut ScatterGather<'_>, ctx: &Context);

    /// An event such as an overlap with different bytes.
    fn event(&mut self, event: &Event, ctx: &Context) {
        let _ = (event, ctx);
    }

    /// The connection is over; called exactly once, after its last
    /// `reassembled`. Return `true` to forget it now, `false` to keep it
    /// (closed) for [`Config::linger_ns`](crate::Config::linger_ns) past its
    /// last segment, so that stray segments are absorbed.
    fn complete(&mut self, ctx: &Context) -> bool {
        let _ = ctx;
        true
    }
}
