//! # weft-engine: multi-core reassembly without sharing a flow
//!
//! Every frame is decoded, IP fragments are put back together, and TCP
//! segments go to a [`weft_reasm::Reassembler`]. [`Pipeline`] does that on
//! one thread (the engine's inline mode and every worker's loop).
//! [`Engine`] is the dispatcher: it hashes each frame's flow, picks a worker
//! through a 128-entry indirection table and hands the frame over an SPSC
//! ring as an offset into a shared block ([`Engine::dispatch_in_block`]),
//! or inline processes it on the calling thread. A dispatcher can also be
//! worker 0 itself ([`EngineBuilder::dispatcher_works`], with a smaller
//! share of the table: [`EngineBuilder::table_weights`]), and fanout
//! workers ([`EngineBuilder::fanout`]) each read every frame and need no
//! dispatcher at all.
//!
//! With many live flows, inline mode and workers prefetch each frame's
//! connection a few frames before processing it ([`Pipeline::run_ahead`],
//! [`weft_reasm::Reassembler::prefetch_index`]). Their look-ahead decodes
//! the frame, and processing reuses that packet when it is the decoding of
//! the very bytes being processed (the same slice); anything else is
//! decoded again. The output is the same.
//!
//! Every mode gives the same output, stream by stream, with two provisos.
//! The limits (`max_conns`, the memcap, pages) are divided among workers
//! by their share of the indirection table: a worker whose flows need more
//! than its share evicts or flushes where one thread holding them all
//! would not. And after a mass closing leaves stale timer entries, each
//! time advance steps over a bounded number of them (see
//! [`weft_reasm::Reassembler::advance_time`]): inline time advances at
//! every frame and a worker's at its own frames and at ticks, so a
//! timeout behind such a pile can fire at another point of a flow's
//! segments.
//!
//! Timer-driven callbacks (flush and idle timeouts) carry the same bytes
//! in every mode but not the same moment: inline they come at the first
//! frame past the deadline, on a worker at its next own frame or tick
//! (every [`EngineBuilder::tick_ns`] of packet time), so their
//! [`Context::ts`](weft_reasm::Context::ts) can be later, and a flush
//! timeout's runs of held data can come as fewer, longer deliveries.
//!
//! ```
//! use weft_engine::{Pipeline, PipelineConfig};
//! use weft_reasm::{ConnInfo, Context, ScatterGather, Segment, Stream, StreamFactory};
//! use weft_wire::{LinkType, Timestamp};
//!
//! struct Count(u64);
//! impl Stream for Count {
//!     fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
//!         self.0 += sg.lengths().0 as u64;
//!     }
//! }
//! struct Factory;
//! impl StreamFactory for Factory {
//!     type Stream = Count;
//!     fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Count {
//!         Count(0)
//!     }
//! }
//!
//! let mut p = Pipeline::new(PipelineConfig::default(), Factory);
//! p.process_frame(LinkType::Ethernet, &[0u8; 14], Timestamp(0)); // not TCP: counted
//! p.flush_all();
//! assert_eq!(p.frame_stats().frames, 1);
//! ```
//!
//! Thread safety: a [`Pipeline`] is owned by one thread. It is `Send` when
//! its factory, its streams and its page pool are: with a
//! [`HeapPool`](weft_reasm::HeapPool) (`Pipeline::with_pool`), not with
//! the default pool, whose arena is bound to the thread that mapped it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod engine;
mod pipeline;
mod stats;
mod worker;

pub use engine::{
    Backpressure, DispatchHash, Engine, EngineBuilder, EngineError, EngineReport,
    MAX_RING_CAPACITY, MAX_WORKERS, RETA_SIZE,
};
pub use pipeline::{FrameAhead, FrameStats, Pipeline, PipelineConfig};
pub use stats::{DispatchStats, EngineStats, WorkerCounters, WorkerSnapshot};
pub use worker::Block;
