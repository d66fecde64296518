//! # weft-replay: run captures through weft
//!
//! The library half of the `weft-replay` command: reading captures into the
//! engine ([`app::replay`]), or a live capture ([`app::replay_live`]), the digest, flow-file and counting stream
//! handlers, the TOML configuration, and the reports. Tests and benches use
//! it directly.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use weft_replay::app::{replay, ReplayOptions};
//!
//! let mut opts = ReplayOptions::default();
//! opts.output.digest = true;
//! let out = replay(&["capture.pcap".into()], &opts, &AtomicBool::new(false), &mut |_, _, _| {})
//!     .expect("replay");
//! for line in weft_replay::digest::lines(&out.digests) {
//!     println!("{line}");
//! }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod config;
pub mod digest;
pub mod flows;
pub mod output;
pub mod report;

pub use app::{digest_file, replay, ReplayOptions};
pub use digest::HalfDigest;
