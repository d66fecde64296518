//! The capture side of the read-ahead helper ([`weft_arena::Readahead`]):
//! a [`Mapping`] is what it maps ahead of the reader and unmaps behind it.

use std::io;
use std::sync::Arc;

use weft_arena::{DropBehind, Pager, Readahead, Window};

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

/// How a mapped capture's pages are handled as its reader goes: by a helper
/// thread ([`start`]) or by the reader itself ([`behind`]).
#[derive(Debug)]
pub(crate) enum Paging {
    Helper(Readahead),
    Behind(Arc<Mapping>, DropBehind),
}

impl Paging {
    /// The reader reached byte `pos`.
    #[inline]
    pub(crate) fn advance(&mut self, pos: usize) {
        match self {
            Paging::Helper(r) => r.advance(pos),
            Paging::Behind(map, d) => d.advance(&**map, pos),
        }
    }
}

/// Unmapping behind the reader at `pos` on its own thread, nothing mapped
/// ahead (the helper's distances); `None` where mappings cannot be advised.
pub(crate) fn behind(map: Arc<Mapping>, pos: usize) -> Option<Paging> {
    if !Mapping::CAN_POPULATE {
        return None;
    }
    DropBehind::new(pos, Window::DEFAULT).map(|d| Paging::Behind(map, d))
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

        // The reader unmapping behind itself: at 16 MiB, 4 MiB kept.
        let map = Arc::new(map);
        map.populate(0, bytes.len()).expect("populate");
        let w = Window {
            behind: 4 * MB,
            drop_chunk: 2 * MB,
            ..Window::DEFAULT
        };
        let mut paging = behind(map.clone(), 0).expect("mapped files unmap behind on Linux");
        let Paging::Behind(_, d) = &mut paging else {
            panic!("no helper asked for");
        };
        *d = DropBehind::new(0, w).expect("a drop chunk");
        paging.advance(16 * MB);
        let Paging::Behind(_, d) = &paging else {
            unreachable!()
        };
        assert_eq!(d.dropped(), 12 * MB);
        let left = resident(addr);
        assert!(left <= 4 * MB + MB / 2, "still resident: {left}");
        assert!(map.bytes() == &bytes[..]);
    }
}
