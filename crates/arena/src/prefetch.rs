//! Software prefetch: ask the CPU to start loading memory that will be read
//! soon.
//!
//! Reassembly touches one connection record per packet, chosen by the
//! packet's flow; with thousands of live flows those records are not in cache,
//! and each packet waits for DRAM. Prefetching the record of a packet a few
//! frames ahead overlaps those waits (measured on a 10,000-flow trace in the
//! weft-reasm and engine benchmarks). Stable Rust has no safe prefetch, so the
//! one `unsafe` call lives here, beside the arena's other memory primitives.
#![allow(unsafe_code)]

/// Cache line size assumed for stepping through a value.
const LINE: usize = 64;

/// Starts loading the first `max_bytes` bytes of `value` (at most its size)
/// into the cache. A hint only: it never faults, never changes memory, and
/// does nothing on targets without a prefetch instruction.
#[inline(always)]
pub fn prefetch<T: ?Sized>(value: &T, max_bytes: usize) {
    let len = core::mem::size_of_val(value).min(max_bytes);
    if len == 0 {
        return;
    }
    let start = (value as *const T).cast::<u8>();
    let addr = start as usize;
    // Each line the first `len` bytes touch, once.
    let mut at = addr & !(LINE - 1);
    let last = (addr + len - 1) & !(LINE - 1);
    while at <= last {
        line(start.wrapping_offset((at as isize).wrapping_sub(addr as isize)));
        at += LINE;
    }
}

#[inline(always)]
fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // `p` starts a cache line the value touches (the first may begin before
    // the value) and is made with `wrapping_offset`, never dereferenced.
    // SAFETY: `_mm_prefetch` only needs SSE, which every x86_64 CPU has; a
    // prefetch is a hint that reads nothing and never faults, even on an
    // invalid address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::prefetch;

    #[test]
    fn prefetching_changes_nothing() {
        let v = [7u8; 1000];
        prefetch(&v, 4096);
        prefetch(&v[..0], 64);
        prefetch(&v[3..], 100);
        assert!(v.iter().all(|&b| b == 7));
    }
}
