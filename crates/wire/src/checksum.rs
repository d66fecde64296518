//! The Internet checksum (RFC 1071) and the TCP pseudo-header sums
//! (RFC 9293 §3.1 for IPv4, RFC 8200 §8.1 for IPv6).

/// The one's-complement sum of `data` (big-endian 16-bit words, an odd last
/// byte padded with zero) added to `initial`, folded and complemented.
///
/// `initial` is an unfolded partial sum, e.g. of a pseudo-header. Verifying a
/// block that contains its own checksum field gives 0 when it is correct.
pub fn internet_checksum(data: &[u8], initial: u32) -> u16 {
    !fold(sum_words(data, u64::from(initial)))
}

/// Adds the 16-bit words of `data` to `acc` without folding.
pub(crate) fn sum_words(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 48) + ((w >> 32) & 0xffff) + ((w >> 16) & 0xffff) + (w & 0xffff);
    }
    let mut words = chunks.remainder().chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a wide sum to 16 bits (end-around carry).
pub(crate) fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The TCP checksum of `tcp_segment` (header and payload, with whatever is
/// in its checksum field) over the IPv4 pseudo-header.
///
/// Computing it over a segment whose checksum field is zero gives the value
/// to store; over a segment with a correct checksum it gives 0.
pub fn tcp_checksum_v4(src: [u8; 4], dst: [u8; 4], tcp_segment: &[u8]) -> u16 {
    let mut acc = sum_words(&src, 0);
    acc = sum_words(&dst, acc);
    acc += 6 + tcp_segment.len() as u64;
    internet_checksum_wide(tcp_segment, acc)
}

/// The TCP checksum of `tcp_segment` over the IPv6 pseudo-header; see
/// [`tcp_checksum_v4`].
pub fn tcp_checksum_v6(src: [u8; 16], dst: [u8; 16], tcp_segment: &[u8]) -> u16 {
    let mut acc = sum_words(&src, 0);
    acc = sum_words(&dst, acc);
    acc += 6 + tcp_segment.len() as u64;
    internet_checksum_wide(tcp_segment, acc)
}

fn internet_checksum_wide(data: &[u8], acc: u64) -> u16 {
    !fold(sum_words(data, acc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data, 0), !0xddf2);
        assert_eq!(
            internet_checksum(&data[..7], 0),
            !fold(0x0001 + 0xf203 + 0xf4f5 + 0xf600)
        );
    }

    #[test]
    fn ipv4_header_verifies_to_zero() {
        let mut h = [
            0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0,
            0xc7,
        ];
        let c = internet_checksum(&h, 0);
        assert_eq!(c, 0xb861);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(internet_checksum(&h, 0), 0);
    }
}
