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
//!
//! Behind the reader the helper also unmaps what was read more than
//! `BEHIND` (64 MiB) ago (`MADV_DONTNEED`: the page cache keeps the pages,
//! and a late reader, a worker still holding an old frame, maps them again
//! transparently). Without it every page of the file stays mapped until the
//! end, the process's resident set grows to the file's size, and the final
//! `munmap` (measured: 5 % of an inline replay of a 1.1 GB capture) runs on
//! the reading thread.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::raw::Mapping;

/// How far ahead of the reader pages are mapped.
const AHEAD: usize = 32 << 20;
/// Bytes mapped per request, and how often the reader reports progress.
const CHUNK: usize = 2 << 20;
/// How far behind the reader pages are unmapped again. Far more than the
/// frames an engine's rings usually hold at once (a few MB of ordinary
/// frames), so workers seldom map a page twice. Rings deep in jumbo or
/// offload-sized frames can hold more (4,096 slots of 64 KiB are 256 MiB a
/// worker): workers then map some pages again, which costs time, not
/// correctness, and those pages stay mapped to the end.
const BEHIND: usize = 64 << 20;
/// Bytes unmapped per request. Each request interrupts every core running
/// this process (a TLB shootdown), so requests are few and large.
const DROP_CHUNK: usize = 16 << 20;

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
    /// Starts the helper for `map`, whose reader is at byte `pos` (what
    /// lies before it is neither mapped ahead nor unmapped); `None` if the
    /// thread cannot be started or the platform cannot populate mappings.
    pub(crate) fn start(map: Arc<Mapping>, pos: usize) -> Option<Readahead> {
        if !Mapping::CAN_POPULATE {
            return None;
        }
        let shared = Arc::new(Shared {
            progress: AtomicUsize::new(pos),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let from = pos / CHUNK * CHUNK;
        let thread = std::thread::Builder::new()
            .name("weft-readahead".into())
            .spawn(move || run(&map, &s, from))
            .ok()?;
        Some(Readahead {
            shared,
            thread: Some(thread),
            next_report: pos,
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

/// The helper's loop; `from` (a multiple of `CHUNK`) is where the reader
/// was when it started.
fn run(map: &Mapping, s: &Shared, from: usize) {
    let len = map.bytes().len();
    let (mut done, mut dropped) = (from, from);
    let mut drop_ok = true;
    while !s.stop.load(Relaxed) {
        let progress = s.progress.load(Relaxed);
        let want = progress.saturating_add(AHEAD).min(len);
        while done < want && !s.stop.load(Relaxed) {
            let n = CHUNK.min(len - done);
            if map.populate(done, n).is_err() {
                return;
            }
            done += n;
        }
        if drop_ok {
            drop_ok = unmap_behind(map, &mut dropped, progress, DROP_CHUNK, BEHIND);
        }
        std::thread::park();
    }
}

/// Unmaps whole chunks from `*dropped` up to `behind` bytes before
/// `progress`; false once the kernel refuses (then the caller stops
/// trying). `*dropped` stays a multiple of `chunk`, which is a multiple of
/// the page size.
fn unmap_behind(
    map: &Mapping,
    dropped: &mut usize,
    progress: usize,
    chunk: usize,
    behind: usize,
) -> bool {
    while *dropped + chunk + behind <= progress {
        if map.drop_behind(*dropped, chunk).is_err() {
            return false;
        }
        *dropped += chunk;
    }
    true
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;

    /// Resident bytes of the mapping that contains `addr`, from
    /// /proc/self/smaps.
    fn resident(addr: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) =
                        (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                    {
                        inside = (lo..hi).contains(&addr);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(kb) = line.strip_prefix("Rss:") {
                    let kb = kb.trim().trim_end_matches("kB").trim();
                    return kb.parse::<usize>().expect("Rss in kB") * 1024;
                }
            }
        }
        panic!("no mapping contains {addr:#x}");
    }

    #[test]
    fn pages_behind_the_reader_are_unmapped_and_read_the_same_again() {
        const MB: usize = 1 << 20;
        let bytes: Vec<u8> = (0..16 * MB).map(|i| (i % 251) as u8).collect();
        let path = std::env::temp_dir().join(format!("weft-behind-{}.bin", std::process::id()));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .expect("temp file");
        let file = std::fs::File::open(&path).expect("open");
        let map = Mapping::new(&file, bytes.len() as u64).expect("map");
        let _ = std::fs::remove_file(&path);
        let addr = map.bytes().as_ptr() as usize;
        if let Err(e) = map.populate(0, bytes.len()) {
            // Kernels before 5.14 have no MADV_POPULATE_READ.
            eprintln!("skipped: cannot populate mappings here ({e})");
            return;
        }
        assert!(resident(addr) >= 15 * MB, "populated: {}", resident(addr));

        // The reader is at 12 MiB: all but the last 4 MiB before it go.
        let mut dropped = 0;
        assert!(unmap_behind(&map, &mut dropped, 12 * MB, MB, 4 * MB));
        assert_eq!(dropped, 8 * MB);
        let left = resident(addr);
        assert!(left <= 8 * MB + MB / 2, "still resident: {left}");
        // Nothing more until the reader moves on a whole chunk.
        assert!(unmap_behind(
            &map,
            &mut dropped,
            12 * MB + MB - 1,
            MB,
            4 * MB
        ));
        assert_eq!(dropped, 8 * MB);

        // The unmapped bytes read the same (mapped again from the cache).
        assert!(map.bytes() == &bytes[..]);
    }
}
