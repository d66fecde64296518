//! Mapping a capture's pages ahead of the reader, on a helper thread.
//!
//! Reading a memory-mapped file faults its pages in one by one (64 KB at a
//! time with the kernel's fault-around), on the thread that first touches
//! them: in the engine that is the dispatcher, which measured a third of its
//! time in page faults on a 1.1 GB capture. A helper thread asks the kernel
//! to map the next 32 MiB ahead of the reader (`MADV_POPULATE_READ`, Linux
//! 5.14 and later), so the faults are taken off the reading thread, on
//! whatever core has room.
//!
//! Protocol: the reader publishes how far it got (`progress`, relaxed: it is
//! a hint; the kernel, not this code, makes the mapped bytes visible) and
//! unparks the helper every 2 MiB; the helper maps up to `progress + AHEAD`
//! and parks. `park`/`unpark` cannot lose a wake-up (an unpark before the
//! park makes the park return at once). Dropping the reader sets `stop`,
//! unparks and joins, so the helper never outlives the capture; the mapping
//! it holds is an `Arc` shared with the reader anyway. Populating is a hint:
//! if the kernel refuses it, the helper ends and pages fault in as before.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::raw::Mapping;

/// How far ahead of the reader pages are mapped.
const AHEAD: usize = 32 << 20;
/// Bytes mapped per request, and how often the reader reports progress.
const CHUNK: usize = 2 << 20;

#[derive(Default)]
struct Shared {
    progress: AtomicUsize,
    stop: AtomicBool,
}

/// The reader's handle on its helper thread.
pub(crate) struct Readahead {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The next reader position at which to report progress.
    next_report: usize,
}

impl std::fmt::Debug for Readahead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readahead")
            .field("progress", &self.shared.progress.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl Readahead {
    /// Starts the helper for `map`; `None` if the thread cannot be started
    /// or the platform cannot populate mappings.
    pub(crate) fn start(map: Arc<Mapping>) -> Option<Readahead> {
        if !Mapping::CAN_POPULATE {
            return None;
        }
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("weft-readahead".into())
            .spawn(move || run(&map, &s))
            .ok()?;
        Some(Readahead {
            shared,
            thread: Some(thread),
            next_report: 0,
        })
    }

    /// The reader reached byte `pos`.
    #[inline]
    pub(crate) fn advance(&mut self, pos: usize) {
        if pos >= self.next_report {
            self.next_report = pos + CHUNK;
            self.shared.progress.store(pos, Relaxed);
            if let Some(t) = &self.thread {
                t.thread().unpark();
            }
        }
    }
}

impl Drop for Readahead {
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn run(map: &Mapping, s: &Shared) {
    let len = map.bytes().len();
    let mut done = 0;
    while done < len && !s.stop.load(Relaxed) {
        let want = s.progress.load(Relaxed).saturating_add(AHEAD).min(len);
        while done < want && !s.stop.load(Relaxed) {
            let n = CHUNK.min(len - done);
            if map.populate(done, n).is_err() {
                return;
            }
            done += n;
        }
        if done < len {
            std::thread::park();
        }
    }
}
