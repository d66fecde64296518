//! Where out-of-order bytes wait: the page-pool interface.
//!
//! The reassembler copies out-of-order payload into fixed-size pages taken
//! from a [`PagePool`]. Three implementations:
//!
//! * [`weft_arena::Arena`]: pages carved from `mmap`'d segments, with an
//!   atomically refcounted, lock-free return path. Bound to the thread that
//!   created it (not `Send`).
//! * [`HeapPool`]: boxed pages on a free list; `Send`.
//! * [`DefaultPool`], the default of [`Reassembler::new`](crate::Reassembler::new):
//!   an arena, or heap pages if the arena cannot be mapped.

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

/// Arena pages: a page goes back to its arena when dropped.
impl PagePool for weft_arena::Arena {
    type Page = weft_arena::PageMut;

    fn alloc(&mut self) -> Option<weft_arena::PageMut> {
        weft_arena::Arena::alloc(self)
    }

    fn free(&mut self, page: weft_arena::PageMut) {
        drop(page);
    }

    fn page_size(&self) -> usize {
        weft_arena::Arena::page_size(self)
    }

    fn in_use(&self) -> usize {
        self.stats().pages_in_use
    }
}

/// The default pool: an `mmap`'d [`weft_arena::Arena`], or [`HeapPool`] when
/// no arena can be mapped (say, under a tight address-space limit).
///
/// Not `Send` when it holds an arena: create it on the thread that uses it
/// (the engine does, on each worker). Use [`HeapPool`] for a reassembler that
/// must move between threads.
#[derive(Debug)]
pub enum DefaultPool {
    /// Arena pages.
    Arena(weft_arena::Arena),
    /// Heap pages.
    Heap(HeapPool),
}

/// A page of a [`DefaultPool`].
#[derive(Debug)]
pub enum DefaultPage {
    /// From the arena.
    Arena(weft_arena::PageMut),
    /// From the heap.
    Heap(Box<[u8]>),
}

impl AsRef<[u8]> for DefaultPage {
    fn as_ref(&self) -> &[u8] {
        match self {
            DefaultPage::Arena(p) => p.as_ref(),
            DefaultPage::Heap(p) => p,
        }
    }
}

impl AsMut<[u8]> for DefaultPage {
    fn as_mut(&mut self) -> &mut [u8] {
        match self {
            DefaultPage::Arena(p) => p.as_mut(),
            DefaultPage::Heap(p) => p,
        }
    }
}

impl DefaultPool {
    /// An arena of `max_pages` pages of `page_size` bytes (`0`: the arena's
    /// default cap), or heap pages if mapping fails.
    pub fn new(page_size: usize, max_pages: usize) -> DefaultPool {
        let cfg = weft_arena::ArenaConfig {
            page_size,
            max_pages: if max_pages == 0 {
                usize::MAX / page_size.max(1) / 2
            } else {
                max_pages
            },
            ..weft_arena::ArenaConfig::default()
        };
        match weft_arena::Arena::new(cfg) {
            Ok(a) => DefaultPool::Arena(a),
            Err(_) => DefaultPool::Heap(HeapPool::new(page_size, max_pages)),
        }
    }

    /// Whether the pages come from an arena.
    pub fn is_arena(&self) -> bool {
        matches!(self, DefaultPool::Arena(_))
    }
}

impl PagePool for DefaultPool {
    type Page = DefaultPage;

    fn alloc(&mut self) -> Option<DefaultPage> {
        match self {
            DefaultPool::Arena(a) => a.alloc().map(DefaultPage::Arena),
            DefaultPool::Heap(h) => h.alloc().map(DefaultPage::Heap),
        }
    }

    fn free(&mut self, page: DefaultPage) {
        match (self, page) {
            (DefaultPool::Heap(h), DefaultPage::Heap(p)) => h.free(p),
            // An arena page returns to its arena when dropped.
            (_, page) => drop(page),
        }
    }

    fn page_size(&self) -> usize {
        match self {
            DefaultPool::Arena(a) => a.page_size(),
            DefaultPool::Heap(h) => h.page_size(),
        }
    }

    fn in_use(&self) -> usize {
        match self {
            DefaultPool::Arena(a) => a.stats().pages_in_use,
            DefaultPool::Heap(h) => h.in_use(),
        }
    }
}
