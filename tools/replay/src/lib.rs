//! # weft-replay: run captures through weft
//!
//! The library half of the `weft-replay` command: reading captures into the
//! engine, and the digest and flow-file stream handlers. Tests and benches
//! use it directly.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod digest;
pub mod run;

pub use digest::{DigestStream, Digests, HalfDigest};
pub use run::{digest_file, feed, ReplayError};
