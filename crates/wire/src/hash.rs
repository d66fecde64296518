//! The Toeplitz hash used by NIC receive-side scaling (RSS), with the
//! symmetric key that makes both directions of a flow hash alike.
//!
//! Input layout (the RSS verification suite's): source address, destination
//! address, source port, destination port, all in network byte order; 12
//! bytes for IPv4, 36 for IPv6. Hashing `n` input bytes consumes `n + 4` key
//! bytes, so a 40-byte key covers the IPv6 4-tuple. NICs commonly hold 40- or
//! 52-byte keys; [`SYMMETRIC_RSS_KEY`] is given at the 52-byte register size
//! and only its first 40 bytes matter here.
//!
//! Why the symmetric key works: `0x6d5a` repeated makes the 32-bit key window
//! at bit `i` depend only on `i mod 16`. Swapping source and destination
//! moves each address by 32 (IPv4) or 128 (IPv6) bits and each port by 16,
//! all multiples of 16, so every set input bit meets the same window.
//!
//! Implementation: per input byte position, a 256-entry table of the XOR of
//! the key windows of that byte's set bits; hashing is one lookup and XOR per
//! input byte (36 tables × 256 × 4 bytes = 36 KiB). The bench in
//! `benches/hash.rs` compares it with the bit-serial [`toeplitz_reference`]:
//! on the shared 2-core build machine, about 3.7 ns against 63 ns for an
//! IPv4 tuple and 11 ns against 214 ns for IPv6, so the tables stay.
//!
//! Keys with a 16-bit period (the symmetric key) take a shorter road. The
//! hash is linear over GF(2) and every window depends only on the bit
//! position mod 16, so hashing the input equals hashing the XOR of its
//! 16-bit words: two table lookups for any tuple, and only 2 KiB of tables
//! in the cache of a dispatcher that also streams packets through it.

use core::fmt;
use std::sync::OnceLock;

use crate::FlowKey;

/// Input bytes of the longest tuple hashed (IPv6 addresses and ports).
pub const MAX_INPUT: usize = 36;

/// Key bytes needed for [`MAX_INPUT`] input bytes.
pub const KEY_LEN: usize = MAX_INPUT + 4;

/// The 40-byte key of the published RSS verification suite.
pub const MICROSOFT_RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The symmetric key: `0x6d5a` repeated, 52 bytes (a common NIC key size).
pub const SYMMETRIC_RSS_KEY: [u8; 52] = symmetric_key();

const fn symmetric_key() -> [u8; 52] {
    let mut k = [0u8; 52];
    let mut i = 0;
    while i < 52 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
}

/// A Toeplitz hasher with precomputed tables for one key.
///
/// Building one allocates 36 KiB; hashing never allocates. Immutable after
/// construction, so it is `Send + Sync` and can be shared by reference.
#[derive(Clone)]
pub struct Toeplitz {
    key: [u8; KEY_LEN],
    /// `tables[p][v]`: XOR of the key windows for the set bits of byte
    /// value `v` at input position `p`.
    tables: Box<[[u32; 256]; MAX_INPUT]>,
    /// The key repeats every 16 bits: hash the XOR-fold of the input's
    /// 16-bit words (module docs).
    period16: bool,
}

impl Toeplitz {
    /// Builds the tables for a 40-byte key.
    pub fn new(key: &[u8; KEY_LEN]) -> Toeplitz {
        let mut tables = Box::new([[0u32; 256]; MAX_INPUT]);
        for (p, table) in tables.iter_mut().enumerate() {
            let windows: [u32; 8] = core::array::from_fn(|b| window(key, p * 8 + b));
            for (v, slot) in table.iter_mut().enumerate() {
                *slot = (0..8)
                    .filter(|b| v & (0x80 >> b) != 0)
                    .fold(0, |acc, b| acc ^ windows[b]);
            }
        }
        let period16 = key.iter().enumerate().all(|(i, &b)| b == key[i % 2]);
        Toeplitz {
            key: *key,
            tables,
            period16,
        }
    }

    /// Builds from a key of at least 40 bytes (e.g. the 52-byte
    /// [`SYMMETRIC_RSS_KEY`]); only the first 40 bytes are used. `None` if
    /// the key is shorter.
    pub fn from_slice(key: &[u8]) -> Option<Toeplitz> {
        let key: &[u8; KEY_LEN] = key.get(..KEY_LEN)?.try_into().ok()?;
        Some(Toeplitz::new(key))
    }

    /// The (first 40 bytes of the) key.
    pub fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// Hashes up to 36 input bytes; bytes beyond the 36th are ignored.
    #[inline]
    pub fn hash_bytes(&self, input: &[u8]) -> u32 {
        if self.period16 {
            let mut words = input.chunks_exact(2);
            let mut x = (&mut words).fold(0u16, |x, w| x ^ u16::from_be_bytes([w[0], w[1]]));
            if let [last] = words.remainder() {
                x ^= u16::from(*last) << 8;
            }
            return self.fold16(x);
        }
        self.tables
            .iter()
            .zip(input)
            .fold(0, |h, (t, &b)| h ^ t[usize::from(b)])
    }

    /// Hashes an IPv4 4-tuple: `src, dst, sport, dport`.
    #[inline]
    pub fn hash_v4(&self, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> u32 {
        let ports = u32::from(sport) << 16 | u32::from(dport);
        if self.period16 {
            // The XOR-fold of the six 16-bit words, from three 32-bit ones
            // (what `hash_bytes` folds two bytes at a time).
            let x = u32::from_be_bytes(src) ^ u32::from_be_bytes(dst) ^ ports;
            return self.fold16((x >> 16) as u16 ^ x as u16);
        }
        let mut input = [0u8; 12];
        input[..4].copy_from_slice(&src);
        input[4..8].copy_from_slice(&dst);
        input[8..].copy_from_slice(&ports.to_be_bytes());
        self.hash_bytes(&input)
    }

    /// The hash of any input whose 16-bit words XOR to `x`, for a key with
    /// a 16-bit period.
    #[inline]
    fn fold16(&self, x: u16) -> u32 {
        let [hi, lo] = x.to_be_bytes();
        self.tables[0][usize::from(hi)] ^ self.tables[1][usize::from(lo)]
    }

    /// Hashes an IPv6 4-tuple: `src, dst, sport, dport`.
    #[inline]
    pub fn hash_v6(&self, src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> u32 {
        let ports = u32::from(sport) << 16 | u32::from(dport);
        if self.period16 {
            // As for IPv4: the fold of nine 32-bit words.
            let x = u128::from_be_bytes(src) ^ u128::from_be_bytes(dst);
            let x = (x >> 64) as u64 ^ x as u64;
            let x = (x >> 32) as u32 ^ x as u32 ^ ports;
            return self.fold16((x >> 16) as u16 ^ x as u16);
        }
        let mut input = [0u8; MAX_INPUT];
        input[..16].copy_from_slice(&src);
        input[16..32].copy_from_slice(&dst);
        input[32..].copy_from_slice(&ports.to_be_bytes());
        self.hash_bytes(&input)
    }

    /// The hasher for [`SYMMETRIC_RSS_KEY`], built once per process.
    pub fn symmetric() -> &'static Toeplitz {
        static SYMMETRIC: OnceLock<Toeplitz> = OnceLock::new();
        SYMMETRIC.get_or_init(|| {
            Toeplitz::from_slice(&SYMMETRIC_RSS_KEY).unwrap_or_else(|| Toeplitz::new(&[0; 40]))
        })
    }
}

impl fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Toeplitz")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The 32 key bits starting at bit `bit` (MSB-first), zeros past the end.
fn window(key: &[u8], bit: usize) -> u32 {
    let byte = bit / 8;
    let wide = (0..5).fold(0u64, |acc, i| {
        (acc << 8) | u64::from(key.get(byte + i).copied().unwrap_or(0))
    });
    (wide >> (8 - bit % 8)) as u32
}

/// The bit-serial Toeplitz hash, the textbook definition: for each set
/// input bit (MSB first) XOR in the current 32-bit key window, then slide the
/// window one bit. Slow; kept as the reference the tables are tested and
/// benchmarked against. Key bits past the end of `key` read as zero.
pub fn toeplitz_reference(key: &[u8], input: &[u8]) -> u32 {
    let mut h = 0u32;
    for (i, &byte) in input.iter().enumerate() {
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                h ^= window(key, i * 8 + b);
            }
        }
    }
    h
}

impl FlowKey {
    /// The Toeplitz hash of this flow as sent from the lower endpoint to the
    /// higher one (`lo, hi, lo_port, hi_port`). With a symmetric key this
    /// equals the hash a NIC computes for either direction. The VLAN is not
    /// hashed (NICs do not hash it either).
    pub fn hash_with(&self, t: &Toeplitz) -> u32 {
        let (lo, hi) = (self.lo_bytes(), self.hi_bytes());
        if self.is_ipv6() {
            t.hash_v6(*lo, *hi, self.lo_port(), self.hi_port())
        } else {
            let lo4 = [lo[0], lo[1], lo[2], lo[3]];
            let hi4 = [hi[0], hi[1], hi[2], hi[3]];
            t.hash_v4(lo4, hi4, self.lo_port(), self.hi_port())
        }
    }

    /// [`FlowKey::hash_with`] the [`SYMMETRIC_RSS_KEY`] hasher.
    pub fn symmetric_hash(&self) -> u32 {
        self.hash_with(Toeplitz::symmetric())
    }

    /// The key (VLANs included) hashed by a seeded hasher, folded to 32
    /// bits high half into low, so tables and indirection tables that read
    /// the low bits see all of it. Symmetric, since the key is canonical;
    /// unpredictable without the seed, unlike the Toeplitz hash.
    pub fn seeded_hash(&self, seed: &impl std::hash::BuildHasher) -> u32 {
        let h = seed.hash_one(self);
        (h ^ h >> 32) as u32
    }
}
