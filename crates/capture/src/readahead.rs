//! The capture side of the read-ahead helper ([`weft_arena::Readahead`]):
//! a [`Mapping`] is what it maps ahead of the reader and unmaps behind it.

use std::io;
use std::sync::Arc;

use weft_arena::{Pager, Readahead, Window};

use crate::raw::Mapping;

impl Pager for Mapping {
    fn mapped_len(&self) -> usize {
        self.bytes().len()
    }
    fn populate(&self, offset: usize, len: usize) -> io::Result<()> {
        Mapping::populate(self, offset, len)
    }
    fn drop_behind(&self, offset: usize, len: usize) -> io::Result<()> {
        Mapping::drop_behind(self, offset, len)
    }
    fn warm(&self, offset: usize, len: usize) {
        let Some(bytes) = self.bytes().get(offset..offset.saturating_add(len)) else {
            return;
        };
        // One load a cache line is enough to bring each in; the fold keeps
        // the loads from being optimised away.
        let mut fold = 0u8;
        for line in bytes.chunks(64) {
            fold ^= line[0];
        }
        std::hint::black_box(fold);
    }
}

/// Starts the helper for `map`, whose reader is at byte `pos`, reading the
/// bytes ahead too if `read`; `None` where mappings cannot be populated or
/// the thread cannot be started.
pub(crate) fn start(map: Arc<Mapping>, pos: usize, read: bool) -> Option<Readahead> {
    if !Mapping::CAN_POPULATE {
        return None;
    }
    let window = if read { Window::WARM } else { Window::DEFAULT };
    Readahead::start(map, pos, window)
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

        // The reader passed 8 MiB long ago: those pages go.
        map.drop_behind(0, 8 * MB).expect("unmap");
        let left = resident(addr);
        assert!(left <= 8 * MB + MB / 2, "still resident: {left}");

        // The unmapped bytes read the same (mapped again from the cache).
        assert!(map.bytes() == &bytes[..]);
    }
}
