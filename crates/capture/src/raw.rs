//! `unsafe` code for files (the live capture's ring has its own, in
//! `live`): mapping a capture file read-only, and unmapping pages of it
//! that were read ([`Mapping::drop_behind`]).
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
        // only valid while nothing truncates or rewrites the file. We map
        // read-only (`MAP_SHARED`, `PROT_READ`: `drop_behind` relies on both)
        // and never hand out `&mut`, and this crate never writes a file.
        // That the file stays as it is while mapped is a condition this code
        // cannot enforce: it is an accepted condition of `Capture::open`,
        // stated in its docs (as every reader of memory-mapped files states
        // it), with `Capture::open_buffered` for files that may change.
        // Truncation by anyone raises SIGBUS on a page past the new end (the
        // process dies; no memory is read out of bounds). A write under a
        // `&[u8]` breaks the promise `&[u8]` makes to the compiler, which may
        // read a checked length again: not guarded against, only excluded
        // by that condition.
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
        // As in `drop_behind`: memmap2 does not check the sum.
        if !offset
            .checked_add(len)
            .is_some_and(|end| end <= self.map.len())
        {
            return Err(io::ErrorKind::InvalidInput.into());
        }
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

    /// Unmaps the pages of `len` bytes from `offset` from this process
    /// (`MADV_DONTNEED`) without touching the file or the page cache: the
    /// bytes stay readable, and a later read maps them again from the page
    /// cache. Lets a reader that has gone past a region give its page
    /// table entries back as it goes, instead of in one long `munmap` at
    /// the end (and keeps the resident set small).
    pub(crate) fn drop_behind(&self, offset: usize, len: usize) -> io::Result<()> {
        // memmap2 checks `offset` and `len` against the mapping one by one,
        // not their sum: a range past the end is refused here.
        if !offset
            .checked_add(len)
            .is_some_and(|end| end <= self.map.len())
        {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        #[cfg(target_os = "linux")]
        // SAFETY: memmap2 marks `MADV_DONTNEED` unsafe because on private
        // anonymous (or copy-on-write) memory it replaces the contents with
        // zeros under live borrows. This mapping is a shared, read-only
        // mapping of a file (`MmapOptions::map`: `MAP_SHARED`, `PROT_READ`),
        // which this process never writes: for such a mapping the kernel
        // only drops the page-table entries, and the next access maps the
        // same page-cache page again (madvise(2): "repopulating the memory
        // contents from the up-to-date contents of the underlying mapped
        // file"). Every `&[u8]` into it therefore keeps reading the same
        // bytes; the only hazard is the one every mapping of this module
        // has, another process changing the file (see the module docs). The
        // range lies inside the mapping (checked above).
        return unsafe {
            self.map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len)
        };
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
