//! The only module of weft-arena with `unsafe` code: page headers, the shared
//! arena core, the page handles and the epoch-protected segment directory.
//! Everything it exports is a safe API; see the crate docs for the protocols.
//!
//! Invariants:
//! * A [`Header`]'s `refs` is 0 exactly while its page is free: on the owner's
//!   local free list, on the remote-return stack, or never handed out.
//! * A page with `refs > 0` is reachable only through handles; a [`PageMut`] is
//!   the only handle to its page (so `refs == 1`).
//! * `Shared` is freed exactly once, when the owner `Arena` is gone *and* every
//!   page is back (see `Arena::drop` and `release_remote`).
//! * Headers and mappings never move and are never unmapped while `Shared` lives.
#![allow(unsafe_code)]

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};
use std::io;

use memmap2::{Advice, MmapMut};
use weft_sync::atomic::{fence, AtomicPtr, AtomicUsize, Ordering};
use weft_sync::cell::UnsafeCell;
use weft_sync::{Arc, CachePadded};

use crate::token::{self, Token};
use crate::{ArenaConfig, ArenaStats};

/// Per-page metadata, kept in a header array beside (not inside) the page bytes.
pub(crate) struct Header {
    /// Live handles; 0 while the page is free.
    refs: AtomicUsize,
    /// Link in the remote-return stack; meaningful only while on that stack.
    next: AtomicPtr<Header>,
    /// First byte of the page. Immutable.
    data: *mut u8,
    /// The arena core the page returns to. Immutable.
    home: *const Shared,
    /// Loom build only: stands for the page's bytes, so the models see
    /// every read and write of them (a handle's `as_slice`, `as_mut_slice`,
    /// `get_mut`) and fail on any two not ordered by the counts and the
    /// return path (a foreign reader and the owner writing the page again).
    #[cfg(weft_loom)]
    bytes_seen: UnsafeCell<()>,
}

impl Header {
    #[inline(always)]
    fn shared(&self) -> &Shared {
        // SAFETY: `home` outlives every header: `Shared` owns the header arrays and
        // is freed only after every page is back (invariant 3), and a caller holding
        // a `&Header` of a handed-out page keeps that page from being back.
        unsafe { &*self.home }
    }
}

/// Marks the remote stack of an arena whose owner is gone. Never a real header.
#[inline(always)]
fn orphan_mark() -> *mut Header {
    NonNull::<Header>::dangling().as_ptr()
}

/// One mapping and its headers.
struct Segment {
    _map: MmapMut,
    /// The header array, owned: a `Box` leaked into a raw pointer at once,
    /// so the pointers to its elements (free list, remote stack, handles),
    /// all derived from this one, stay valid when the segment moves (moving
    /// a `Box` would assert it unique and, by Rust's aliasing model,
    /// invalidate them).
    headers: NonNull<[Header]>,
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: `headers` came from `Box::leak` in `Shared::grow` and is
        // freed only here, once; segments are dropped only with the core,
        // when no page (so no header pointer) is in use any more.
        drop(unsafe { Box::from_raw(self.headers.as_ptr()) });
    }
}

/// State only the owner thread touches (through `Shared::local`).
struct Local {
    free: Vec<NonNull<Header>>,
    segments: Vec<Segment>,
    config: ArenaConfig,
    pages_total: usize,
    /// Pages handed out and not yet back on `free`.
    out: usize,
    /// Remote returns taken off the stack so far.
    drained: usize,
    alloc_failures: usize,
    /// Every segment so far got the huge-page advice accepted.
    huge: bool,
    /// Set when the `Arena` is dropped; the local return path is closed then.
    owner_gone: bool,
}

/// The arena core: shared by the owner and every page handle.
pub(crate) struct Shared {
    /// Head of the remote-return stack (intrusive through `Header::next`), or
    /// `orphan_mark()` once the owner is gone. Pushed by any thread with CAS,
    /// emptied only by whole-list `swap` (so no ABA).
    remote: CachePadded<AtomicPtr<Header>>,
    /// Pages still out when the owner left; the thread taking it to 0 frees `Shared`.
    orphan_left: AtomicUsize,
    page_size: usize,
    owner: Token,
    meta: Arc<Meta>,
    /// Owner-only state; see `with_local`.
    local: UnsafeCell<Local>,
}

// SAFETY: `Shared` is reached from any thread through page handles. Its shared
// fields are atomics or immutable; `local` is touched only by the owner thread
// (`with_local` checks the thread token, and the `Arena` handle is `!Send`), or by
// the single thread that frees `Shared` after the owner is gone.
unsafe impl Send for Shared {}
// SAFETY: see `Send` above.
unsafe impl Sync for Shared {}

impl Shared {
    /// Runs `f` on the owner-only state. Callers are the `Arena` (on its own
    /// thread, it is `!Send`) and `try_local_return` (after a token check); no
    /// caller re-enters, so the `&mut` is unique.
    #[inline(always)]
    fn with_local<R>(&self, f: impl FnOnce(&mut Local) -> R) -> R {
        debug_assert!(token::current() == self.owner);
        // SAFETY: only the owner thread gets here (see above) and it never nests
        // calls, so no other reference to `Local` exists during `f`.
        self.local.with_mut(|l| f(unsafe { &mut *l }))
    }

    /// Return path for a page whose last handle dies on the owner thread while
    /// the owner `Arena` is alive: a plain push onto the local free list.
    #[inline]
    fn try_local_return(&self, hdr: NonNull<Header>) -> bool {
        if token::current() != self.owner {
            return false;
        }
        self.with_local(|l| {
            if l.owner_gone {
                return false;
            }
            debug_assert!(l.free.len() < l.free.capacity());
            l.free.push(hdr);
            l.out -= 1;
            self.meta.publish(l);
            true
        })
    }

    /// Takes the whole remote stack and puts its pages on the local free list.
    fn drain_remote(&self, l: &mut Local) -> usize {
        // Acquire: pairs with each pusher's Release CAS (a release sequence through
        // later pushers' CASes), so their page accesses and `next` links are visible.
        let mut p = self.remote.swap(ptr::null_mut(), Ordering::Acquire);
        debug_assert!(p != orphan_mark());
        let mut n = 0;
        while let Some(h) = NonNull::new(p) {
            // SAFETY: every pointer on the stack is a header of this arena (pushed by
            // `release_remote`), alive while `Shared` is.
            let hdr = unsafe { h.as_ref() };
            debug_assert_eq!(hdr.refs.load(Ordering::Relaxed), 0);
            // Relaxed: made visible by the Acquire swap above.
            p = hdr.next.load(Ordering::Relaxed);
            l.free.push(h);
            n += 1;
        }
        l.out -= n;
        l.drained += n;
        self.meta.publish(l);
        n
    }

    /// Maps one more segment, up to the cap. `Ok(false)` at the cap.
    /// `home` is this core as `Arena::create` leaked it: the headers keep
    /// it to return pages and, for the last one after the owner left, to
    /// free the core, which needs a pointer with the allocation's own
    /// rights (not one made from `&self`, which may only read).
    fn grow(&self, l: &mut Local, home: NonNull<Shared>) -> io::Result<bool> {
        let c = &l.config;
        let pages = c.pages_per_segment.min(c.max_pages - l.pages_total);
        if pages == 0 {
            return Ok(false);
        }
        let mut map = MmapMut::map_anon(pages * self.page_size)?;
        let huge = c.huge_pages && map.advise(Advice::HugePage).is_ok();
        let base = map.as_mut_ptr();
        let home = home.as_ptr() as *const Shared;
        let headers: Box<[Header]> = (0..pages)
            .map(|i| Header {
                refs: AtomicUsize::new(0),
                next: AtomicPtr::new(ptr::null_mut()),
                data: base.wrapping_add(i * self.page_size),
                home,
                #[cfg(weft_loom)]
                bytes_seen: UnsafeCell::new(()),
            })
            .collect();
        let headers = NonNull::from(Box::leak(headers));
        let first = headers.cast::<Header>();
        l.free.reserve_exact(l.pages_total + pages - l.free.len());
        // Lowest address first out of the free list.
        // SAFETY: `i < pages`, the array's length: each pointer is to one of
        // its elements, derived from the array's own pointer.
        l.free
            .extend((0..pages).rev().map(|i| unsafe { first.add(i) }));
        l.pages_total += pages;
        l.huge &= huge;
        let info = SegmentInfo {
            base: base as usize,
            pages,
            huge,
        };
        l.segments.push(Segment { _map: map, headers });
        self.meta.add_segment(info);
        self.meta.publish(l);
        Ok(true)
    }

    /// Frees the core: unmaps every segment, frees the headers.
    ///
    /// # Safety
    /// `this` came from `Arena::new`'s `Box`, the owner `Arena` is gone and every
    /// page is back (or is being discarded with the arena); the caller is the one
    /// thread chosen to free it and has Acquire-synchronised with every other
    /// thread's last access (see `Arena::drop`, `release_remote`).
    unsafe fn destroy(this: *const Shared) {
        // SAFETY: per `# Safety`, nobody else can reach `*this` any more.
        drop(unsafe { Box::from_raw(this as *mut Shared) });
    }
}

/// Return path for the last handle of a page dying off the owner thread (or
/// after the owner is gone): push onto the lock-free remote stack, or, if the
/// owner has left, count down and free the core if this was the last page.
#[cold]
fn release_remote(h: NonNull<Header>) {
    // SAFETY: the page is not yet returned, so its header and `Shared` are alive.
    let hdr = unsafe { h.as_ref() };
    let shared = hdr.shared();
    // Relaxed: a statistic.
    shared.meta.returned_remote.fetch_add(1, Ordering::Relaxed);
    // Acquire: if we see the orphan mark, we must see `orphan_left` stored before it.
    let mut cur = shared.remote.load(Ordering::Acquire);
    loop {
        if cur == orphan_mark() {
            // AcqRel: Release orders our page accesses before the free; Acquire lets
            // the thread that reaches 0 see every other thread's accesses.
            if shared.orphan_left.fetch_sub(1, Ordering::AcqRel) == 1 {
                // `home` is the pointer `Arena::create` leaked (see `grow`), so it
                // may free the allocation. Read out first: `hdr` and `shared`
                // point into what it frees, and neither is used after.
                let home = hdr.home;
                // SAFETY: the owner is gone (mark set) and this was the last page;
                // the AcqRel chain on `orphan_left` synchronised with all others.
                unsafe { Shared::destroy(home) };
            }
            return;
        }
        // Relaxed: published by the Release CAS below.
        hdr.next.store(cur, Ordering::Relaxed);
        // Release: our (and, through the refcount's Acquire fence, every other
        // holder's) accesses to the page happen-before its reuse by the owner.
        // Acquire on failure: as for the load above.
        match shared.remote.compare_exchange_weak(
            cur,
            h.as_ptr(),
            Ordering::Release,
            Ordering::Acquire,
        ) {
            Ok(_) => return, // Last touch of `Shared`: the owner may free it now.
            Err(now) => cur = now,
        }
    }
}

/// Called when a page's last handle is gone (`refs == 0`, Acquire done).
#[inline]
fn release_last(h: NonNull<Header>) {
    // SAFETY: as in `release_remote`.
    let shared = unsafe { h.as_ref() }.shared();
    if !shared.try_local_return(h) {
        release_remote(h);
    }
}

/// The owner's handle; see [`crate::Arena`] for the public docs.
pub struct Arena {
    shared: NonNull<Shared>,
    /// `!Send` and `!Sync`: the local free list belongs to the creating thread.
    _owner_thread: PhantomData<*const ()>,
}

impl Arena {
    pub(crate) fn create(config: ArenaConfig) -> io::Result<Arena> {
        let shared = Box::new(Shared {
            remote: CachePadded::new(AtomicPtr::new(ptr::null_mut())),
            orphan_left: AtomicUsize::new(0),
            page_size: config.page_size,
            owner: token::current(),
            meta: Arc::new(Meta::new(config.huge_pages)),
            local: UnsafeCell::new(Local {
                free: Vec::new(),
                segments: Vec::new(),
                config,
                pages_total: 0,
                out: 0,
                drained: 0,
                alloc_failures: 0,
                huge: config.huge_pages,
                owner_gone: false,
            }),
        });
        let arena = Arena {
            shared: NonNull::from(Box::leak(shared)),
            _owner_thread: PhantomData,
        };
        let shared = arena.shared();
        shared.with_local(|l| shared.grow(l, arena.shared))?;
        Ok(arena)
    }

    #[inline(always)]
    fn shared(&self) -> &Shared {
        // SAFETY: `Shared` lives at least until this handle's `drop` has run.
        unsafe { self.shared.as_ref() }
    }

    pub(crate) fn alloc_page(&mut self) -> Option<PageMut> {
        let home = self.shared;
        let shared = self.shared();
        shared.with_local(|l| {
            let h = match l.free.pop() {
                Some(h) => h,
                None => {
                    shared.drain_remote(l);
                    match l.free.pop() {
                        Some(h) => h,
                        None => {
                            if !matches!(shared.grow(l, home), Ok(true)) {
                                l.alloc_failures += 1;
                                shared.meta.publish(l);
                                return None;
                            }
                            l.free.pop()?
                        }
                    }
                }
            };
            // SAFETY: headers on the free list belong to this arena and are alive.
            let hdr = unsafe { h.as_ref() };
            debug_assert_eq!(hdr.refs.load(Ordering::Relaxed), 0);
            // Relaxed: the page is ours alone; it became ours by owner-local steps or
            // by the Acquire swap in `drain_remote`.
            hdr.refs.store(1, Ordering::Relaxed);
            l.out += 1;
            shared.meta.publish(l);
            Some(PageMut { hdr: h })
        })
    }

    pub(crate) fn reclaim_remote(&mut self) -> usize {
        let shared = self.shared();
        shared.with_local(|l| shared.drain_remote(l))
    }

    pub(crate) fn local_stats(&self) -> ArenaStats {
        let shared = self.shared();
        shared.with_local(|l| {
            // Relaxed: a statistic; a stale value only overstates pages in use.
            let returned = shared.meta.returned_remote.load(Ordering::Relaxed);
            ArenaStats {
                pages_total: l.pages_total,
                pages_in_use: l.out - returned.saturating_sub(l.drained).min(l.out),
                returned_remote: returned,
                alloc_failures: l.alloc_failures,
                segments: l.segments.len(),
                huge_pages: l.huge,
            }
        })
    }

    pub(crate) fn page_len(&self) -> usize {
        self.shared().page_size
    }

    pub(crate) fn meta(&self) -> Arc<Meta> {
        self.shared().meta.clone()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        let ptr = self.shared.as_ptr() as *const Shared;
        let shared = self.shared();
        let out = shared.with_local(|l| {
            shared.drain_remote(l);
            l.owner_gone = true;
            l.out
        });
        if out == 0 {
            // SAFETY: every page is back and drained (our Acquire swap saw every
            // push); pushers do not touch `Shared` after their CAS.
            unsafe { Shared::destroy(ptr) };
            return;
        }
        // Relaxed: published by the Release half of the swap below.
        shared.orphan_left.store(out, Ordering::Relaxed);
        // AcqRel: Release publishes `orphan_left` and `owner_gone` to droppers that
        // see the mark; Acquire takes the pages pushed since the drain above.
        let mut p = shared.remote.swap(orphan_mark(), Ordering::AcqRel);
        let mut n = 0;
        while let Some(h) = NonNull::new(p) {
            // SAFETY: stack entries are live headers of this arena; `Shared` cannot
            // be freed before we subtract `n` (the count cannot reach 0 without us).
            p = unsafe { h.as_ref() }.next.load(Ordering::Relaxed);
            n += 1;
        }
        // AcqRel: as in `release_remote`.
        if n > 0 && shared.orphan_left.fetch_sub(n, Ordering::AcqRel) == n {
            // SAFETY: we took the count to 0: every page is back, and the AcqRel chain
            // synchronised with every other dropper.
            unsafe { Shared::destroy(ptr) };
        }
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("stats", &self.local_stats())
            .finish()
    }
}

/// The unique, writable handle to a page; see the crate docs.
pub struct PageMut {
    hdr: NonNull<Header>,
}

/// A shared, read-only, reference-counted handle to a page; see the crate docs.
pub struct PageRef {
    hdr: NonNull<Header>,
}

// SAFETY: a `PageMut` is the only handle to its page; moving it to another thread
// moves that exclusive access. Its last drop there takes the remote return path.
unsafe impl Send for PageMut {}
// SAFETY: `&PageMut` only gives `&[u8]`.
unsafe impl Sync for PageMut {}
// SAFETY: `PageRef` gives only `&[u8]` (or `&mut [u8]` when provably unique), and
// its count is atomic; the last drop on any thread returns the page safely.
unsafe impl Send for PageRef {}
// SAFETY: as for `Send`; shared access is read-only.
unsafe impl Sync for PageRef {}

#[inline(always)]
fn header(h: &NonNull<Header>) -> &Header {
    // SAFETY: a live handle keeps its page out, so the header is alive.
    unsafe { h.as_ref() }
}

#[inline(always)]
fn bytes(h: &NonNull<Header>) -> *mut [u8] {
    let hdr = header(h);
    ptr::slice_from_raw_parts_mut(hdr.data, hdr.shared().page_size)
}

impl PageMut {
    /// The page's bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        debug_assert_eq!(header(&self.hdr).refs.load(Ordering::Relaxed), 1);
        #[cfg(weft_loom)]
        header(&self.hdr).bytes_seen.with(|_| ());
        // SAFETY: the mapping lives while the page is out; no `&mut` to it exists
        // while `&self` is borrowed (we are the only handle).
        unsafe { &*bytes(&self.hdr) }
    }

    /// The page's bytes, writable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        debug_assert_eq!(header(&self.hdr).refs.load(Ordering::Relaxed), 1);
        #[cfg(weft_loom)]
        header(&self.hdr).bytes_seen.with_mut(|_| ());
        // SAFETY: we are the only handle to the page and hold `&mut self`.
        unsafe { &mut *bytes(&self.hdr) }
    }

    /// Turns this unique handle into a shared one (no atomic operation).
    #[inline]
    pub fn freeze(self) -> PageRef {
        let page = PageRef { hdr: self.hdr };
        core::mem::forget(self);
        page
    }
}

impl Drop for PageMut {
    fn drop(&mut self) {
        // Relaxed: we are the only handle; the return path publishes with Release.
        header(&self.hdr).refs.store(0, Ordering::Relaxed);
        release_last(self.hdr);
    }
}

impl PageRef {
    /// The page's bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        #[cfg(weft_loom)]
        header(&self.hdr).bytes_seen.with(|_| ());
        // SAFETY: the mapping lives while the page is out; writes happen only
        // through `get_mut`/`PageMut`, which need this to be the only handle.
        unsafe { &*bytes(&self.hdr) }
    }

    /// Writable bytes if this is the only handle to the page.
    #[inline]
    pub fn get_mut(&mut self) -> Option<&mut [u8]> {
        // Acquire: other handles' reads, ended by their Release decrements,
        // happen-before our writes.
        if header(&self.hdr).refs.load(Ordering::Acquire) != 1 {
            return None;
        }
        #[cfg(weft_loom)]
        header(&self.hdr).bytes_seen.with_mut(|_| ());
        // SAFETY: refs == 1 is us; no other handle can appear without cloning us,
        // which `&mut self` prevents for the borrow's lifetime.
        Some(unsafe { &mut *bytes(&self.hdr) })
    }

    /// Back to a unique handle if this is the only one.
    #[inline]
    pub fn try_into_mut(self) -> Result<PageMut, PageRef> {
        // Acquire: as in `get_mut`.
        if header(&self.hdr).refs.load(Ordering::Acquire) != 1 {
            return Err(self);
        }
        let page = PageMut { hdr: self.hdr };
        core::mem::forget(self);
        Ok(page)
    }

    /// Number of live handles to this page (a snapshot).
    #[inline]
    pub fn ref_count(&self) -> usize {
        // Relaxed: a snapshot for diagnostics.
        header(&self.hdr).refs.load(Ordering::Relaxed)
    }

    /// Whether two handles refer to the same page.
    #[inline]
    pub fn ptr_eq(a: &PageRef, b: &PageRef) -> bool {
        a.hdr == b.hdr
    }
}

impl Clone for PageRef {
    #[inline]
    fn clone(&self) -> Self {
        // Relaxed: a new handle is made from an existing one, which already keeps
        // the page alive; no data is published by the increment.
        let old = header(&self.hdr).refs.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            std::process::abort(); // 2^63 clones: only reachable by leaking handles.
        }
        PageRef { hdr: self.hdr }
    }
}

impl Drop for PageRef {
    #[inline]
    fn drop(&mut self) {
        // Release: our reads of the page happen-before whoever frees it.
        if header(&self.hdr).refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Acquire: every other handle's Release decrement happens-before the reuse.
        fence(Ordering::Acquire);
        release_last(self.hdr);
    }
}

impl Deref for PageMut {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}
impl DerefMut for PageMut {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}
impl Deref for PageRef {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// Where a segment lives, as published in the directory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SegmentInfo {
    pub(crate) base: usize,
    pub(crate) pages: usize,
    pub(crate) huge: bool,
}

struct Directory {
    segments: Vec<SegmentInfo>,
    /// Loom build only: reclamation marks a retired directory instead of
    /// freeing it (loom cannot see a read of freed memory; it can see this
    /// flag), and a reader asserts it is not marked while it reads.
    /// Not a loom atomic: it is written from the epoch's reclamation,
    /// whose ordering loom cannot see.
    #[cfg(weft_loom)]
    reclaimed: weft_sync::untracked::AtomicBool,
}

impl Directory {
    fn new(segments: Vec<SegmentInfo>) -> *mut Directory {
        Box::into_raw(Box::new(Directory {
            segments,
            #[cfg(weft_loom)]
            reclaimed: weft_sync::untracked::AtomicBool::new(false),
        }))
    }

    /// Frees a directory no reader can reach (under loom: marks it).
    ///
    /// # Safety
    /// `dir` came from [`Directory::new`], is unlinked, and no reader that
    /// loaded it is still pinned; it is reclaimed once.
    unsafe fn reclaim(dir: *mut Directory) {
        #[cfg(not(weft_loom))]
        // SAFETY: the caller's contract: an unreachable `Box` from `new`.
        drop(unsafe { Box::from_raw(dir) });
        #[cfg(weft_loom)]
        // SAFETY: as above; the model leaks the box so that a premature
        // reclamation shows as a marked directory, not undefined behaviour.
        unsafe { &*dir }.reclaimed.store(true, Ordering::SeqCst);
    }
}

/// What monitors on other threads can read: the epoch-protected segment
/// directory and counters the owner publishes with plain stores.
pub(crate) struct Meta {
    /// Address of the current `Box<Directory>`; never 0. Replaced by the owner on
    /// growth; the old one is retired through crossbeam-epoch.
    dir: AtomicUsize,
    /// Owner-published counters (stores only, no RMW).
    out: CachePadded<AtomicUsize>,
    drained: AtomicUsize,
    alloc_failures: AtomicUsize,
    /// Incremented by remote droppers.
    pub(crate) returned_remote: CachePadded<AtomicUsize>,
    /// Whether huge pages were asked for. Immutable.
    huge_requested: bool,
    /// This arena's own epoch domain (not the global one: loom has no cheap
    /// globals, and a per-arena domain keeps one arena's garbage from waiting on
    /// unrelated threads). Each reader registers for the duration of one read.
    epoch: crossbeam_epoch::Collector,
}

impl Meta {
    fn new(huge_requested: bool) -> Self {
        let dir = Directory::new(Vec::new());
        Meta {
            dir: AtomicUsize::new(dir as usize),
            out: CachePadded::new(AtomicUsize::new(0)),
            drained: AtomicUsize::new(0),
            alloc_failures: AtomicUsize::new(0),
            returned_remote: CachePadded::new(AtomicUsize::new(0)),
            huge_requested,
            epoch: crossbeam_epoch::Collector::new(),
        }
    }

    /// Owner: publish counters for monitors.
    #[inline(always)]
    fn publish(&self, l: &Local) {
        // Relaxed: independent statistics; monitors tolerate skew between them.
        self.out.store(l.out, Ordering::Relaxed);
        self.drained.store(l.drained, Ordering::Relaxed);
        self.alloc_failures
            .store(l.alloc_failures, Ordering::Relaxed);
    }

    /// Owner: publish a new directory with one more segment; retire the old one.
    fn add_segment(&self, info: SegmentInfo) {
        let handle = self.epoch.register();
        let guard = handle.pin();
        // Relaxed: only the owner stores `dir`, so it reads its own last store.
        let old = self.dir.load(Ordering::Relaxed);
        // SAFETY: `old` is the live current directory; only we could retire it.
        let mut segments = unsafe { &*(old as *const Directory) }.segments.clone();
        segments.push(info);
        let new = Directory::new(segments);
        // SeqCst (Release would do on hardware): the new directory's contents
        // happen-before a monitor's load, which is SeqCst for the model's sake.
        self.dir.store(new as usize, Ordering::SeqCst);
        // SAFETY: `old` is unlinked (no new reader can load it); readers that loaded
        // it did so while pinned, and epoch defers the free until they all unpin.
        // The closure captures only an address and frees a `Box` it alone owns.
        unsafe {
            guard.defer_unchecked(move || Directory::reclaim(old as *mut Directory));
        }
        guard.flush();
    }

    /// Any thread: a consistent view of the directory plus the counters.
    pub(crate) fn snapshot(&self) -> ArenaStats {
        let handle = self.epoch.register();
        let guard = handle.pin();
        // SeqCst: pairs with the store in `add_segment`, and in the loom model
        // it reads the newest directory, as the epoch's SeqCst fences (which
        // loom does not see) guarantee on hardware.
        let dir = self.dir.load(Ordering::SeqCst) as *const Directory;
        // Loom switches threads only at its own operations: let the owner run
        // between the load and the read, where a premature reclamation bites.
        #[cfg(weft_loom)]
        weft_sync::thread::yield_now();
        // SAFETY: `dir` is non-null and was current while we were pinned; the owner
        // frees a retired directory only through epoch, after our guard is gone.
        let d = unsafe { &*dir };
        let pages_total = d.segments.iter().map(|s| s.pages).sum();
        debug_assert!(d.segments.iter().all(|s| s.base != 0));
        let huge =
            self.huge_requested && !d.segments.is_empty() && d.segments.iter().all(|s| s.huge);
        let segments = d.segments.len();
        #[cfg(weft_loom)]
        assert!(
            !d.reclaimed.load(Ordering::SeqCst),
            "a directory was reclaimed while a pinned reader used it"
        );
        drop(guard);
        // Relaxed: statistics.
        let out = self.out.load(Ordering::Relaxed);
        let drained = self.drained.load(Ordering::Relaxed);
        let returned = self.returned_remote.load(Ordering::Relaxed);
        ArenaStats {
            pages_total,
            pages_in_use: out - returned.saturating_sub(drained).min(out),
            returned_remote: returned,
            alloc_failures: self.alloc_failures.load(Ordering::Relaxed),
            segments,
            huge_pages: huge,
        }
    }
}

impl Drop for Meta {
    fn drop(&mut self) {
        // Relaxed: the last `Arc` holder is alone (the `Arc` drop synchronised).
        let dir = self.dir.load(Ordering::Relaxed) as *mut Directory;
        // SAFETY: the current directory is owned by `Meta` and never retired. The
        // retired ones are freed when `epoch` (the collector) is dropped next, at
        // the latest: no participant is left by then.
        drop(unsafe { Box::from_raw(dir) });
    }
}

/// Lets the calling thread run on every CPU the process's main thread may
/// use, whatever the thread that spawned it was pinned to: a helper thread
/// started from a pinned worker would otherwise share that worker's one
/// core (measured: a fanout worker whose read-ahead helper inherited its
/// pinning took 1.3x the time of an unpinned reader). Best effort: on
/// failure, or off Linux, the thread keeps what it inherited.
pub(crate) fn float_current_thread() {
    #[cfg(all(target_os = "linux", not(weft_loom)))]
    {
        // (pid 0 is the calling thread; the process id, the main thread.)
        // SAFETY: `cpu_set_t` is plain bits (all-zero: the empty set); both
        // calls get its exact size and a live local's address, kept by neither.
        unsafe {
            let mut set: libc::cpu_set_t = core::mem::zeroed();
            let size = core::mem::size_of::<libc::cpu_set_t>();
            if libc::sched_getaffinity(libc::getpid(), size, &mut set) == 0 {
                libc::sched_setaffinity(0, size, &set);
            }
        }
    }
}
