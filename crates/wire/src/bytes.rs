//! Checked big-endian reads: every index is checked, nothing panics.

/// A header field: a byte range inside a header.
pub(crate) type Field = core::ops::Range<usize>;

/// The byte at `at`, if present.
#[inline]
pub(crate) fn u8_at(data: &[u8], at: usize) -> Option<u8> {
    data.get(at).copied()
}

/// A big-endian `u16` at `at`, if both bytes are present.
#[inline]
pub(crate) fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// A big-endian `u32` at `at`, if all four bytes are present.
#[inline]
pub(crate) fn be32(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A big-endian `u16` field of a header already checked to be long enough.
#[inline]
pub(crate) fn field16(header: &[u8], f: Field) -> u16 {
    match header.get(f) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

/// A big-endian `u32` field of a header already checked to be long enough.
#[inline]
pub(crate) fn field32(header: &[u8], f: Field) -> u32 {
    match header.get(f) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// An array copied out of `data` at `at`, if present.
#[inline]
pub(crate) fn array<const N: usize>(data: &[u8], at: usize) -> Option<[u8; N]> {
    data.get(at..at.checked_add(N)?)?.try_into().ok()
}
