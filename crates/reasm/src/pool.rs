//! Where out-of-order bytes wait: the page-pool interface.
//!
//! The reassembler copies out-of-order payload into fixed-size pages taken
//! from a [`PagePool`]. [`HeapPool`] is the plain implementation (boxed pages
//! on a free list); the memory-mapped arena of `weft-arena` implements the
//! same trait, so a worker can switch without touching the reassembler.

/// A source of fixed-size, uniquely owned, writable pages.
///
/// Every page handed out by [`alloc`](PagePool::alloc) is given back with
/// [`free`](PagePool::free) once its bytes were delivered (or dropped when the
/// reassembler itself is dropped).
pub trait PagePool {
    /// A page: `page_size()` bytes, readable and writable while held.
    type Page: AsRef<[u8]> + AsMut<[u8]>;
    /// A fresh page, or `None` when the pool is at its cap.
    fn alloc(&mut self) -> Option<Self::Page>;
    /// Returns a page to the pool.
    fn free(&mut self, page: Self::Page);
    /// Size of every page in bytes.
    fn page_size(&self) -> usize;
    /// Pages currently handed out.
    fn in_use(&self) -> usize;
}

/// Pages from the heap, recycled through a free list. `Send`, not shared.
#[derive(Debug)]
pub struct HeapPool {
    page_size: usize,
    max_pages: usize,
    free: Vec<Box<[u8]>>,
    in_use: usize,
}

impl HeapPool {
    /// Default page size: holds a full-size Ethernet segment's payload.
    pub const DEFAULT_PAGE_SIZE: usize = 2048;

    /// A pool of `page_size`-byte pages, at most `max_pages` out at once
    /// (`0`: no cap).
    pub fn new(page_size: usize, max_pages: usize) -> HeapPool {
        HeapPool {
            page_size: page_size.max(64),
            max_pages,
            free: Vec::new(),
            in_use: 0,
        }
    }
}

impl Default for HeapPool {
    fn default() -> HeapPool {
        HeapPool::new(HeapPool::DEFAULT_PAGE_SIZE, 0)
    }
}

impl PagePool for HeapPool {
    type Page = Box<[u8]>;

    fn alloc(&mut self) -> Option<Box<[u8]>> {
        if self.max_pages != 0 && self.in_use >= self.max_pages {
            return None;
        }
        self.in_use += 1;
        Some(
            self.free
                .pop()
                .unwrap_or_else(|| vec![0u8; self.page_size].into_boxed_slice()),
        )
    }

    fn free(&mut self, page: Box<[u8]>) {
        self.in_use -= 1;
        // Keep a bounded reserve so a burst does not pin its peak forever.
        if self.free.len() < 4096 {
            self.free.push(page);
        }
    }

    fn page_size(&self) -> usize {
        self.page_size
    }

    fn in_use(&self) -> usize {
        self.in_use
    }
}
