//! weft-arena: `mmap`'d page arenas with reference-counted pages and a lock-free
//! return path to the owning core.
//!
//! Each worker owns one [`Arena`]: one or more anonymous memory mappings
//! (*segments*, optionally advised to use transparent huge pages) carved into
//! fixed-size pages (default 2048 bytes: a full 1500-byte MTU payload fits). The
//! worker allocates with a plain pop from a local free list. A page comes out as a
//! unique, writable [`PageMut`]; [`PageMut::freeze`] turns it into a shared,
//! read-only [`PageRef`] whose handles may be cloned and sent to other threads.
//!
//! # Contract
//!
//! * A page is never handed out again while any handle to it exists.
//! * Every page comes back exactly once: the owner's local free list when the last
//!   handle dies on the owner thread, a lock-free stack otherwise.
//! * [`Arena::alloc`] never grows past `max_pages`: at the cap it returns `None`
//!   and counts an allocation failure. It never aborts.
//! * Dropping the `Arena` while handles live elsewhere is safe: the mappings stay
//!   until the last page comes back, and whoever returns it unmaps them.
//!
//! # Protocols and memory orderings
//!
//! **Reference count.** Each page has a header (in a header array beside the
//! pages, not in the page bytes) with an atomic `refs`. `PageRef::clone` does
//! `fetch_add(Relaxed)` (a handle is made from a handle; nothing is published).
//! Drop does `fetch_sub(Release)` so this handle's reads happen-before the reuse;
//! the dropper that sees 1 issues an `Acquire` fence so every other handle's reads
//! happen-before it returns the page. Writing requires a count of 1, checked with
//! `Acquire` ([`PageRef::get_mut`]).
//!
//! **Return path.** Owner identity is a process-unique thread token captured at
//! creation; `Arena` is `!Send`, so the owner never changes. A last drop on the
//! owner thread pushes onto the local free list (no atomics). A last drop on any
//! other thread pushes the page header onto the arena's intrusive Treiber stack
//! with a `Release` CAS. The owner takes the whole stack with one `Acquire` swap
//! (during `alloc` when the local list is empty, or in [`Arena::reclaim`]). Since
//! the stack is only ever emptied whole, there is no ABA problem.
//!
//! **Teardown.** When the `Arena` is dropped it drains the stack; if every page is
//! back it frees the core at once. Otherwise it stores the number of pages still
//! out in `orphan_left` and swaps an *orphan mark* into the stack head (`AcqRel`:
//! publishes the count, takes the pages pushed meanwhile). A later remote dropper
//! that loads the mark (`Acquire`) decrements `orphan_left` (`AcqRel`) instead of
//! pushing; the thread that takes it to zero unmaps the segments and frees the
//! core. A pusher touches the core last in its successful CAS, and the core is
//! freed only once every page is accounted for, so nobody touches freed memory.
//!
//! **Epoch-protected directory.** The list of segments (address, size, huge-page
//! status) is published as an immutable directory behind an atomic pointer, read
//! lock-free by [`ArenaMonitor`]s on other threads (the engine's statistics
//! thread). When the arena grows, the owner publishes a new directory (a
//! `SeqCst` store, at least `Release`) and retires the old one with
//! `crossbeam_epoch::Guard::defer_unchecked`. A monitor pins an epoch guard
//! before loading the pointer (`SeqCst`, at least `Acquire`), so a
//! retired directory is freed only after every guard pinned before its retirement
//! is dropped. (Contract: no directory is freed while a `Guard` pinned before its
//! retirement is alive.) Page handles do not use the directory: they point at their
//! header, which never moves while the core lives.
//!
//! Beside the arena: [`BlockPool`], which hands a buffer out again only once
//! every reader let go of it (a capture stream's read buffers);
//! [`Readahead`], a helper thread that maps a file's pages ahead of its
//! reader and unmaps them behind it (a capture file's mapping);
//! [`Abreast`], which keeps several readers of one mapping (fanout
//! workers) within a few MiB of each other and stops them all at the same
//! place; and [`prefetch`], the cache hint.
//!
//! All `unsafe` code is in the private `raw` module (and the one prefetch
//! instruction); the protocols are model checked with loom (`tests/loom.rs`,
//! `--cfg weft_loom`).
//!
//! ```
//! use weft_arena::{Arena, ArenaConfig};
//!
//! let mut arena = Arena::new(ArenaConfig::default()).unwrap();
//! let mut page = arena.alloc().unwrap();
//! page[..5].copy_from_slice(b"hello");
//! let shared = page.freeze();
//! let other = shared.clone();
//! let t = std::thread::spawn(move || assert_eq!(&other[..5], b"hello"));
//! t.join().unwrap(); // `other` dropped remotely; `shared` is still alive
//! drop(shared); // the last handle: back on the owner's list
//! arena.reclaim();
//! assert_eq!(arena.stats().pages_in_use, 0);
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

use core::fmt;

mod abreast;
mod blocks;
mod judge;
mod prefetch;
mod raw;
mod readahead;
mod token;

pub use abreast::{Abreast, Done};
pub use blocks::BlockPool;
pub use judge::Judge;
pub use prefetch::prefetch;
pub use raw::{Arena, PageMut, PageRef};
pub use readahead::{DropBehind, Pager, Readahead, Window};

/// Default page size: holds a full 1500-byte MTU segment payload.
pub const DEFAULT_PAGE_SIZE: usize = 2048;

#[cfg(not(weft_loom))]
const DEFAULT_PAGES_PER_SEGMENT: usize = 1024; // 2 MiB: one huge page
#[cfg(weft_loom)]
const DEFAULT_PAGES_PER_SEGMENT: usize = 2;
#[cfg(not(weft_loom))]
const DEFAULT_MAX_PAGES: usize = 64 * 1024; // 128 MiB
#[cfg(weft_loom)]
const DEFAULT_MAX_PAGES: usize = 4;

/// How an [`Arena`] is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaConfig {
    /// Bytes per page; a power of two (default [`DEFAULT_PAGE_SIZE`]).
    pub page_size: usize,
    /// Pages per mapping; the arena grows one segment at a time (default 1024).
    pub pages_per_segment: usize,
    /// Cap on pages over all segments (default 65536).
    pub max_pages: usize,
    /// Ask for transparent huge pages (`madvise(MADV_HUGEPAGE)`) on each segment;
    /// if refused the arena falls back to normal pages and reports it in
    /// [`ArenaStats::huge_pages`].
    pub huge_pages: bool,
}

impl Default for ArenaConfig {
    fn default() -> Self {
        ArenaConfig {
            page_size: DEFAULT_PAGE_SIZE,
            pages_per_segment: DEFAULT_PAGES_PER_SEGMENT,
            max_pages: DEFAULT_MAX_PAGES,
            huge_pages: false,
        }
    }
}

/// Why an arena could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArenaError {
    /// `page_size` is not a power of two, or a count is zero.
    BadConfig,
    /// The first segment could not be mapped.
    Map(std::io::ErrorKind),
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArenaError::BadConfig => f.write_str("invalid arena configuration"),
            ArenaError::Map(kind) => write!(f, "mapping an arena segment failed: {kind}"),
        }
    }
}

impl std::error::Error for ArenaError {}

/// A snapshot of an arena's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaStats {
    /// Pages mapped so far (over all segments).
    pub pages_total: usize,
    /// Pages handed out and not yet returned (a page dropped on another thread
    /// counts as returned as soon as it is pushed back).
    pub pages_in_use: usize,
    /// Pages whose last handle died on another thread, since creation.
    pub returned_remote: usize,
    /// `alloc` calls that returned `None`.
    pub alloc_failures: usize,
    /// Segments mapped.
    pub segments: usize,
    /// Huge pages were requested and every segment accepted the advice.
    pub huge_pages: bool,
}

impl Arena {
    /// Creates an arena and maps its first segment.
    ///
    /// The arena belongs to the calling thread: `Arena` is neither `Send` nor
    /// `Sync`, so create it on the worker thread that will allocate from it.
    ///
    /// ```
    /// use weft_arena::{Arena, ArenaConfig, ArenaError};
    /// let a = Arena::new(ArenaConfig { page_size: 4096, ..Default::default() }).unwrap();
    /// assert_eq!(a.page_size(), 4096);
    /// let bad = ArenaConfig { page_size: 1000, ..Default::default() };
    /// assert_eq!(Arena::new(bad).unwrap_err(), ArenaError::BadConfig);
    /// ```
    pub fn new(config: ArenaConfig) -> Result<Arena, ArenaError> {
        if !config.page_size.is_power_of_two()
            || config.pages_per_segment == 0
            || config.max_pages == 0
            || config
                .page_size
                .checked_mul(config.pages_per_segment)
                .is_none()
        {
            return Err(ArenaError::BadConfig);
        }
        Arena::create(config).map_err(|e| ArenaError::Map(e.kind()))
    }

    /// Takes a free page: local free list, else pages returned by other threads,
    /// else a new segment (up to the cap). `None` at the cap (counted in
    /// [`ArenaStats::alloc_failures`]). The page's bytes are not cleared.
    ///
    /// ```
    /// use weft_arena::{Arena, ArenaConfig};
    /// let cfg = ArenaConfig { max_pages: 1, pages_per_segment: 1, ..Default::default() };
    /// let mut a = Arena::new(cfg).unwrap();
    /// let p = a.alloc().unwrap();
    /// assert!(a.alloc().is_none());
    /// drop(p);
    /// assert!(a.alloc().is_some());
    /// assert_eq!(a.stats().alloc_failures, 1);
    /// ```
    #[inline]
    pub fn alloc(&mut self) -> Option<PageMut> {
        self.alloc_page()
    }

    /// Moves pages returned by other threads to the local free list; returns how
    /// many. `alloc` does this by itself when the local list runs dry.
    ///
    /// ```
    /// use weft_arena::{Arena, ArenaConfig};
    /// let mut a = Arena::new(ArenaConfig::default()).unwrap();
    /// let p = a.alloc().unwrap().freeze();
    /// std::thread::spawn(move || drop(p)).join().unwrap();
    /// assert_eq!(a.reclaim(), 1);
    /// ```
    pub fn reclaim(&mut self) -> usize {
        self.reclaim_remote()
    }

    /// Current counters (owner thread; a few plain loads).
    ///
    /// ```
    /// use weft_arena::{Arena, ArenaConfig};
    /// let mut a = Arena::new(ArenaConfig::default()).unwrap();
    /// let _p = a.alloc();
    /// let s = a.stats();
    /// assert_eq!((s.pages_in_use, s.segments), (1, 1));
    /// ```
    pub fn stats(&self) -> ArenaStats {
        self.local_stats()
    }

    /// Bytes per page.
    ///
    /// ```
    /// let a = weft_arena::Arena::new(Default::default()).unwrap();
    /// assert_eq!(a.page_size(), weft_arena::DEFAULT_PAGE_SIZE);
    /// ```
    pub fn page_size(&self) -> usize {
        self.page_len()
    }

    /// A `Send + Sync` handle for reading this arena's statistics from other
    /// threads (lock-free, epoch-protected).
    ///
    /// ```
    /// let mut a = weft_arena::Arena::new(Default::default()).unwrap();
    /// let m = a.monitor();
    /// let _p = a.alloc();
    /// let s = std::thread::spawn(move || m.stats()).join().unwrap();
    /// assert_eq!(s.pages_in_use, 1);
    /// ```
    pub fn monitor(&self) -> ArenaMonitor {
        ArenaMonitor { meta: self.meta() }
    }
}

/// Reads an arena's statistics from any thread; outlives the arena harmlessly.
/// `Send + Sync + Clone`.
#[derive(Clone)]
pub struct ArenaMonitor {
    meta: weft_sync::Arc<raw::Meta>,
}

impl ArenaMonitor {
    /// A snapshot of the counters and the segment directory. Counters may be
    /// slightly stale relative to each other; the segment fields are consistent.
    ///
    /// ```
    /// let a = weft_arena::Arena::new(Default::default()).unwrap();
    /// assert_eq!(a.monitor().stats().segments, 1);
    /// ```
    pub fn stats(&self) -> ArenaStats {
        self.meta.snapshot()
    }
}

impl fmt::Debug for ArenaMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaMonitor")
            .field("stats", &self.stats())
            .finish()
    }
}

impl fmt::Debug for PageMut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageMut").field("len", &self.len()).finish()
    }
}

impl fmt::Debug for PageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageRef")
            .field("len", &self.len())
            .field("refs", &self.ref_count())
            .finish()
    }
}

impl AsRef<[u8]> for PageMut {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsMut<[u8]> for PageMut {
    fn as_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl AsRef<[u8]> for PageRef {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

#[cfg(all(test, not(weft_loom)))]
mod tests;
