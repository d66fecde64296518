//! # weft-reasm: single-core TCP stream reassembly
//!
//! A [`Reassembler`] takes TCP [`Segment`]s in capture order and hands each
//! connection's bytes, in sequence order, to a [`Stream`] that a
//! [`StreamFactory`] created for it — the model of gopacket's `reassembly`
//! package, with Rust names, and without threads or locks inside: one
//! reassembler belongs to one thread (the `weft-engine` crate runs one per
//! core and sends every flow to exactly one of them).
//!
//! ## What it does
//!
//! * **Zero-copy in-order path.** Payload that arrives in order is delivered
//!   straight from the frame. Out-of-order payload is copied into pages from
//!   a [`PagePool`] and delivered, as one [`ScatterGather`], once the hole
//!   before it closes.
//! * **Sequence numbers become 64-bit stream offsets** on arrival, so the
//!   2^32 wrap is harmless everywhere (ordering, overlaps, gaps, FIN).
//! * **Overlaps.** Retransmissions of delivered bytes are stripped and
//!   counted; overlapping buffered copies are resolved by an
//!   [`OverlapPolicy`] (first, last, or target-based: BSD, Linux, Windows,
//!   Solaris…), and copies that differ raise [`Event::OverlapConflict`].
//! * **Urgent data.** The byte an urgent pointer marks stays in the stream
//!   ([`UrgentPolicy::Inline`]) or leaves it as the receiving socket takes
//!   it out of band ([`UrgentPolicy::OutOfBand`], [`Event::Urgent`]).
//! * **Holes.** Bytes the receiver acknowledged but the capture never saw
//!   are skipped once the sender's next segment does not fill them, or at
//!   once when its FIN is acknowledged ([`Config::skip_acked_holes`]); other holes wait
//!   until a limit, a timeout, or the end of the connection forces progress.
//!   A direction's lost tail (acknowledged, with the same setting, or behind
//!   its sender's RST, with nothing after it) is a hole at the close. Every
//!   skip is reported exactly in [`Info::skip`].
//! * **Bounded memory.** Page limits per connection and in total, a byte
//!   memcap, a connection limit, and a limit on what a handler keeps
//!   ([`Config::max_kept_bytes`]). A limit never aborts: the oldest
//!   buffered data is delivered past its hole (a counted gap), and only if
//!   nothing can be freed is new data dropped — counted. Over its own
//!   share, a connection first packs runs of small contiguous pieces into
//!   full pages; if its pages are still mostly empty (small segments with
//!   holes between them), it keeps its hole open and prunes its farthest
//!   data instead, as its receiver does ([`DropReason::Pruned`]), and
//!   drops a segment that would land past all it may prune.
//! * **Hostile orders cost O(log n).** Out-of-order pieces are indexed by
//!   offset and by arrival, so overlaps, the oldest piece (memory pressure)
//!   and the pieces past the flush timeout are found without a scan; a
//!   differing copy over many held pieces raises one event per stretch.
//! * **Packet time.** Flush and idle timeouts run on capture timestamps. A
//!   connection closes at the first time advance past its last packet plus
//!   the idle timeout, and the connection limit evicts the one idle the
//!   longest; nothing is done per packet, and expiry costs O(log n) per
//!   expired connection, not O(connections).
//! * **Accounting.** [`Stats::balanced`] holds at any moment: every payload
//!   byte received is delivered, a duplicate, an overlap, dropped for a
//!   [`DropReason`], taken out of band as urgent, or still buffered.
//! * **Validators** for [`Stream::accept`], in [`tcp_state`]: a TCP state
//!   machine and option/window checks (gopacket's), PAWS
//!   ([`tcp_state::TcpTimestampCheck`], RFC 7323) and the receive window
//!   as Linux enforces it ([`tcp_state::TcpWindowCheck`]): what a receiver
//!   would drop for an old timestamp, or for lying past its window, does
//!   not reach the stream.
//!
//! ## Example
//!
//! ```
//! use weft_reasm::{Config, ConnInfo, Context, Reassembler, ScatterGather, Segment, Stream, StreamFactory};
//! use weft_wire::{FlowKey, Seq, TcpFlags, Timestamp};
//!
//! #[derive(Default)]
//! struct Collect(Vec<u8>);
//! impl Stream for Collect {
//!     fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
//!         sg.copy_to(&mut self.0);
//!     }
//! }
//! #[derive(Default)]
//! struct Factory(usize);
//! impl StreamFactory for Factory {
//!     type Stream = Collect;
//!     fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Collect {
//!         self.0 += 1;
//!         Collect::default()
//!     }
//! }
//!
//! let (key, dir) = FlowKey::new("10.0.0.1".parse().unwrap(), 40000, "10.0.0.2".parse().unwrap(), 80, 0);
//! let seg = |seq: u32, payload: &'static [u8]| {
//!     Segment::new(key, dir, Seq(seq), TcpFlags::ACK, payload, Timestamp(0))
//! };
//! let mut r = Reassembler::new(Config::default(), Factory::default());
//! r.process(&seg(1000, b"hello "));
//! r.process(&seg(1011, b"!"));      // out of order: waits in a page
//! r.process(&seg(1006, b"world"));  // closes the hole
//! assert_eq!(r.stats().delivered_bytes, 12);
//! assert!(r.stats().balanced());
//! r.flush_all();
//! ```
//!
//! ## Thread safety
//!
//! [`Reassembler`] is `Send` when its factory, streams and pool are, and is
//! never shared: all methods take `&mut self`. Everything else here is plain
//! data (`Send + Sync`), except [`ScatterGather`], which borrows the frame
//! and the pages for the duration of one callback.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod data;
mod half;
mod index;
mod policy;
mod pool;
mod reassembler;
mod segment;
mod sg;
mod stats;
mod stream;
mod table;
pub mod tcp_state;

pub use config::Config;
pub use policy::{OverlapPolicy, UnknownPolicy, UnknownUrgentPolicy, UrgentPolicy};
pub use pool::{DefaultPage, DefaultPool, HeapPool, PagePool};
pub use reassembler::{Lookahead, Reassembler};
pub use segment::Segment;
pub use sg::{CaptureInfo, Info, ScatterGather, SgStats};
pub use stats::{DropReason, Stats};
pub use stream::{Cause, ConnInfo, Context, Direction, Event, Stream, StreamFactory};

/// How many segments apart callers issue the two prefetch stages
/// ([`Reassembler::prefetch_index`], [`Reassembler::prefetch_conn`]) and the
/// processing: far enough to cover a miss behind the work of the segments in
/// between, near enough that the lines are still cached.
pub const PREFETCH_DISTANCE: usize = 4;

#[cfg(test)]
mod tests;
