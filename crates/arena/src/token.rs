//! Thread identity for the owner check: which thread may use the local free list.

#[cfg(not(weft_loom))]
mod imp {
    use weft_sync::atomic::{AtomicU64, Ordering};

    /// A process-unique thread number (never reused, unlike thread-local addresses).
    pub(crate) type Token = u64;

    static NEXT: AtomicU64 = AtomicU64::new(1);

    std::thread_local! {
        // Relaxed: uniqueness needs only the RMW's atomicity.
        static ID: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }

    /// The calling thread's token. `u64` has no destructor, so this works even
    /// from other thread-local destructors.
    #[inline(always)]
    pub(crate) fn current() -> Token {
        ID.with(|id| *id)
    }
}

#[cfg(weft_loom)]
mod imp {
    /// Under loom, threads are loom's: use its thread ids.
    pub(crate) type Token = weft_sync::thread::ThreadId;

    pub(crate) fn current() -> Token {
        weft_sync::thread::current().id()
    }
}

pub(crate) use imp::{current, Token};
