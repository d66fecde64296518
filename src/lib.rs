//! # weft: TCP stream reassembly for intrusion-detection pipelines
//!
//! weft turns captured packets back into the byte streams the endpoints
//! exchanged, fast enough for the fast path of an IDS and without the locks
//! of a shared connection pool: every flow belongs to one core for its whole
//! life.
//!
//! This crate re-exports the workspace's public API:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`wire`] | `weft-wire` | zero-copy decoding, flow keys, symmetric Toeplitz hash, IP defragmentation |
//! | [`reasm`] (and the root) | `weft-reasm` | the single-core reassembler: streams, overlaps, gaps, limits, timers |
//! | [`engine`] | `weft-engine` | the inline pipeline and the multi-core engine (dispatcher, rings, pinned workers) |
//! | [`capture`] | `weft-capture` | pcap and pcapng sources, memory-mapped or streamed |
//!
//! ## Example: the bytes of every connection in a capture
//!
//! ```
//! use weft::capture::Capture;
//! use weft::engine::{EngineBuilder, PipelineConfig};
//! use weft::wire::{LinkType, Timestamp};
//! use weft::{ConnInfo, Context, ScatterGather, Segment, Stream, StreamFactory};
//!
//! /// Counts the bytes of one connection, both directions.
//! struct Count(u64);
//! impl Stream for Count {
//!     fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
//!         for chunk in sg.chunks() {
//!             self.0 += chunk.len() as u64; // an IDS would parse here
//!         }
//!     }
//! }
//!
//! struct Counter;
//! impl StreamFactory for Counter {
//!     type Stream = Count;
//!     fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Count {
//!         Count(0)
//!     }
//! }
//!
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample.pcap");
//! let mut capture = Capture::open(path)?;
//! // Two workers, each with its own factory; 0 would run inline.
//! let mut engine = EngineBuilder::new()
//!     .workers(2)
//!     .pipeline(PipelineConfig::default())
//!     .build(|_worker| Counter)?;
//! while let Some(frame) = capture.next_frame() {
//!     let frame = frame?;
//!     engine.dispatch(LinkType::from_raw(frame.link_type), frame.data, Timestamp(frame.ts_nanos));
//! }
//! let report = engine.finish()?;
//! let total = report.stats.reasm_total();
//! assert!(total.balanced());
//! println!("{} bytes delivered in {} connections", total.delivered_bytes, total.conns_created);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Thread safety
//!
//! A [`Reassembler`] and an [`engine::Pipeline`] belong to one thread
//! (`Send`, not `Sync`). The [`engine::Engine`] is the dispatcher: it runs
//! on the caller's thread and owns its workers; streams live and die on the
//! worker that owns their flow, so handlers need not be `Send` themselves —
//! only the factory moves to its worker.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use weft_reasm::*;

/// Packet decoding, flow keys, hashing, defragmentation (`weft-wire`).
pub mod wire {
    pub use weft_wire::*;
}

/// The single-core reassembler (`weft-reasm`), also re-exported at the root.
pub mod reasm {
    pub use weft_reasm::*;
}

/// Inline pipeline and multi-core engine (`weft-engine`).
pub mod engine {
    pub use weft_engine::*;
}

/// Packet sources (`weft-capture`).
pub mod capture {
    pub use weft_capture::*;
}
