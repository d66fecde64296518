//! The crate's only `unsafe`: mapping a capture file read-only.
//!
//! Everything else sees a [`Mapping`] as a plain `&[u8]`.
//!
//! # The SIGBUS hazard
//!
//! A memory map is only as stable as the file under it. If another process
//! truncates (or the file system shrinks) the file while it is mapped, the
//! pages past the new end no longer exist: touching them does not return an
//! error but raises `SIGBUS`, which by default kills the whole process. Rust
//! cannot turn that into a `Result`, and no check done at open time can rule
//! it out. Writes by another process to a mapped region are also visible
//! through the slice, breaking the "immutable while borrowed" promise of `&[u8]`
//! (the parser re-validates every length it reads, so this can corrupt
//! frames but not memory safety of our own bounds checks).
//!
//! The mapping is therefore right for captures that are finished and not being
//! rotated, truncated or rewritten — the common case for offline analysis.
//! For a file that may still be written to or truncated (a live `tcpdump -w`
//! target, a ring-buffer capture), use
//! [`Capture::open_buffered`](crate::Capture::open_buffered), which reads with
//! ordinary `read` calls and reports a shrinking file as a truncation error.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::{Mmap, MmapOptions};

/// A read-only mapping of a whole file.
///
/// `Send` and `Sync` like `memmap2::Mmap`: it is immutable memory.
#[derive(Debug)]
pub(crate) struct Mapping {
    map: Mmap,
}

impl Mapping {
    /// Maps `file` read-only. `len` is the size the caller observed and must be
    /// non-zero (mapping an empty file fails on some platforms).
    pub(crate) fn new(file: &File, len: u64) -> io::Result<Mapping> {
        debug_assert!(len > 0, "empty files are rejected before mapping");
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "file too large to map"))?;
        // SAFETY: `MmapOptions::map` is unsafe because the returned slice is
        // only valid while no other process truncates or rewrites the file.
        // We map read-only and never hand out `&mut`. Nothing in this process
        // writes to the file. Another process may still truncate it; touching
        // a page past the new end then raises SIGBUS (the process dies, no
        // memory is read out of bounds), and a concurrent write changes bytes
        // under a `&[u8]`, which our parser tolerates because it bounds-checks
        // every length it reads. The module docs tell users to call
        // `Capture::open_buffered` for files that may change while read.
        let map = unsafe { MmapOptions::new().len(len).map(file)? };
        Ok(Mapping { map })
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Whether [`Mapping::populate`] can work on this platform.
    pub(crate) const CAN_POPULATE: bool = cfg!(target_os = "linux");

    /// Asks the kernel to map `len` bytes from `offset` now (read faults
    /// taken up front); an error if it cannot (old kernels, other systems).
    pub(crate) fn populate(&self, offset: usize, len: usize) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        return self
            .map
            .advise_range(memmap2::Advice::PopulateRead, offset, len);
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (offset, len);
            Err(io::ErrorKind::Unsupported.into())
        }
    }

    /// Tells the kernel we read front to back (a hint; failures are ignored).
    pub(crate) fn advise_sequential(&self) {
        #[cfg(unix)]
        let _ = self.map.advise(memmap2::Advice::Sequential);
    }
}
