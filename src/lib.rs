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
//! | [`engine`] | `weft-engine` | the inline pipeline and the multi-core engine (dispatcher, rings, pinned workers; fanout workers) |
//! | [`capture`] | `weft-capture` | pcap and pcapng sources, memory-mapped or streamed; live capture on Linux |
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
//! ## Example: fanout workers, no dispatcher
//!
//! Where every worker can read the input itself (a memory-mapped file,
//! bytes in memory), [`engine::EngineBuilder::fanout`] runs the workers
//! without a dispatcher: each worker's thread feeds an engine every frame
//! and keeps the frames of its own flows (the same hash and indirection
//! table, so the same output). [`capture::Capture::reopen`] gives each
//! worker a reader of one shared mapping.
//!
//! ```
//! # use weft::capture::{Capture, CaptureError};
//! # use weft::engine::EngineBuilder;
//! # use weft::wire::{LinkType, Timestamp};
//! # use weft::{ConnInfo, Context, ScatterGather, Segment, Stream, StreamFactory};
//! # struct Count(u64);
//! # impl Stream for Count {
//! #     fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
//! #         self.0 += sg.lengths().0 as u64;
//! #     }
//! # }
//! # struct Counter;
//! # impl StreamFactory for Counter {
//! #     type Stream = Count;
//! #     fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Count {
//! #         Count(0)
//! #     }
//! # }
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample.pcap");
//! let capture = Capture::open(path)?;
//! // A reader per worker, over the one mapping (a `Capture` is not `Sync`).
//! let readers: Vec<Capture> = (0..2)
//!     .map(|_| capture.reopen().expect("a mapped file"))
//!     .collect::<Result<_, _>>()?;
//! let readers = std::sync::Mutex::new(readers);
//! let (report, read) = EngineBuilder::new().workers(2).fanout(
//!     |_worker| Counter,
//!     |engine| -> Result<u64, CaptureError> {
//!         let mut mine = readers.lock().unwrap().pop().expect("one each");
//!         let mut frames = 0;
//!         while let Some(frame) = mine.next_frame() {
//!             let frame = frame?;
//!             let ts = Timestamp(frame.ts_nanos);
//!             engine.dispatch(LinkType::from_raw(frame.link_type), frame.data, ts);
//!             frames += 1;
//!         }
//!         Ok(frames)
//!     },
//! )?;
//! for frames in read {
//!     assert_eq!(frames?, report.stats.dispatch.frames); // each read them all
//! }
//! assert!(report.stats.reasm_total().balanced());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Example: live capture, a socket per worker
//!
//! On Linux, [`capture::Live::open_group`] opens a socket per worker in
//! one `AF_PACKET` fanout group: the kernel divides the flows among them
//! (both directions of a connection to one socket), so fanout workers need
//! no dispatcher and keep every flow they read
//! ([`engine::EngineBuilder::divided`]). Each block of frames is lent to
//! the engine in place and goes back to the kernel once the workers are
//! done with it. (Not run here: capturing takes `CAP_NET_RAW`.)
//!
//! ```no_run
//! # use weft::engine::EngineBuilder;
//! # use weft::wire::{LinkType, Timestamp};
//! # use weft::{ConnInfo, Context, ScatterGather, Segment, Stream, StreamFactory};
//! # struct Count(u64);
//! # impl Stream for Count {
//! #     fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
//! #         self.0 += sg.lengths().0 as u64;
//! #     }
//! # }
//! # struct Counter;
//! # impl StreamFactory for Counter {
//! #     type Stream = Count;
//! #     fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Count {
//! #         Count(0)
//! #     }
//! # }
//! # #[cfg(target_os = "linux")] {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use weft::capture::{Live, LiveOptions};
//!
//! let sockets = Live::open_group("eth0", &LiveOptions::default(), 2)?;
//! let sockets = std::sync::Mutex::new(sockets);
//! let (report, ended) = EngineBuilder::new().workers(2).divided(true).fanout(
//!     |_worker| Counter,
//!     |engine| -> std::io::Result<()> {
//!         let mut live = sockets.lock().unwrap().pop().expect("one each");
//!         let link = LinkType::from_raw(live.link_type());
//!         for _ in 0..600 {
//!             // About a minute; a sensor runs until told to stop.
//!             let Some(block) = live.next_block(Duration::from_millis(100))? else {
//!                 // Quiet: packet time follows the clock (a little
//!                 // behind, for blocks still filling), so idle
//!                 // connections time out all the same.
//!                 let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
//!                 let ns = now.map_or(0, |d| d.as_nanos() as u64);
//!                 engine.advance_time(Timestamp(ns.saturating_sub(100_000_000)));
//!                 continue;
//!             };
//!             let block = Arc::new(block);
//!             engine.set_block(block.clone());
//!             for f in block.frames() {
//!                 let ts = Timestamp(f.ts_nanos);
//!                 engine.dispatch_in_block_wire(link, f.offset, f.len, f.wire_len, ts);
//!             }
//!         }
//!         Ok(())
//!     },
//! )?;
//! for e in ended {
//!     e?; // a socket's error (the device went down)
//! }
//! println!("{} bytes", report.stats.reasm_total().delivered_bytes);
//! # }
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
