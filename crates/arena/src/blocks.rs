//! Recycled buffers for handing streamed bytes to other threads without
//! copying them.
//!
//! A reader fills a buffer, shares it (`Arc` clones go to the threads that
//! read from it) and goes on in another buffer. [`BlockPool`] keeps the
//! buffers it moved away from and gives one back once every other handle is
//! gone, so a steady stream cycles through a few buffers instead of
//! allocating.
//!
//! # Protocol
//!
//! A buffer is written only while its `Arc` is unique: taken from the pool
//! with [`Arc::try_unwrap`] (or new), filled, then wrapped and shared. A
//! reader's drop decrements the count with `Release`; `try_unwrap` succeeds
//! only after loading the count with `Acquire` and finding one handle, so
//! every read of the old contents happens-before the buffer is written again.
//! No lock, no epoch: the reference count is the whole protocol, and the
//! pool's logic on top of it is model-checked with loom (`tests/loom.rs`,
//! where the buffer bytes are loom cells, so a write racing a read fails).

use weft_sync::Arc;

/// Buffers moved away from, waiting for their readers to let go.
///
/// Owned by the one thread that writes buffers (`Send` when `T` is `Send +
/// Sync`, not shared); the shared buffers themselves go anywhere.
#[derive(Debug)]
pub struct BlockPool<T> {
    spare: Vec<Arc<T>>,
    max_spare: usize,
    reused: u64,
}

impl<T> BlockPool<T> {
    /// A pool keeping at most `max_spare` buffers for reuse.
    pub fn new(max_spare: usize) -> BlockPool<T> {
        BlockPool {
            spare: Vec::with_capacity(max_spare),
            max_spare,
            reused: 0,
        }
    }

    /// A spare buffer that no other handle points to any more, owned again
    /// (ready to write), or `None` if every spare is still being read.
    pub fn take(&mut self) -> Option<T> {
        let i = self
            .spare
            .iter_mut()
            .position(|b| Arc::get_mut(b).is_some())?;
        let block = Arc::try_unwrap(self.spare.swap_remove(i)).ok()?;
        self.reused += 1;
        Some(block)
    }

    /// Keeps `block`, which readers may still hold, for a later
    /// [`take`](Self::take); with `max_spare` kept already it is dropped
    /// instead (its memory goes when its last reader lets go).
    pub fn recycle(&mut self, block: Arc<T>) {
        if self.spare.len() < self.max_spare {
            self.spare.push(block);
        }
    }

    /// How many times [`take`](Self::take) gave a buffer back.
    pub fn reused(&self) -> u64 {
        self.reused
    }
}

#[cfg(all(test, not(weft_loom)))]
mod tests {
    use super::BlockPool;
    use std::sync::Arc;

    #[test]
    fn a_buffer_comes_back_only_once_its_readers_let_go() {
        let mut pool = BlockPool::new(2);
        assert_eq!(pool.take(), None::<Vec<u8>>);
        let a = Arc::new(vec![1u8; 4]);
        let reader = a.clone();
        pool.recycle(a);
        assert_eq!(pool.take(), None, "still read");
        let t = std::thread::spawn(move || reader.iter().map(|&b| u32::from(b)).sum::<u32>());
        assert_eq!(t.join().unwrap(), 4);
        assert_eq!(pool.take(), Some(vec![1u8; 4]));
        assert_eq!(pool.reused(), 1);
        assert_eq!(pool.take(), None);
    }

    #[test]
    fn at_most_max_spare_are_kept() {
        let mut pool = BlockPool::new(1);
        pool.recycle(Arc::new(1));
        pool.recycle(Arc::new(2));
        assert_eq!(pool.take(), Some(1));
        assert_eq!(pool.take(), None);
    }
}
