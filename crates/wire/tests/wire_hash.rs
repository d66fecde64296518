//! Toeplitz: the published RSS verification-suite values, the tables
//! against the bit-serial definition, and symmetry of the symmetric key.

use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};
use weft_wire::hash::toeplitz_reference;
use weft_wire::{FlowKey, Toeplitz, MICROSOFT_RSS_KEY, SYMMETRIC_RSS_KEY};

fn v4(s: &str) -> [u8; 4] {
    s.parse::<Ipv4Addr>().unwrap().octets()
}

fn v6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

// The verification suite's tables list the destination first; the hash
// input is source address, destination address, source port, destination
// port. These rows are written source -> destination, and they match only
// with that input order (checked below by the swapped order not matching).
const V4_VECTORS: [(&str, u16, &str, u16, u32); 5] = [
    ("66.9.149.187", 2794, "161.142.100.80", 1766, 0x51cc_c178),
    ("199.92.111.2", 14230, "65.69.140.83", 4739, 0xc626_b0ea),
    ("24.19.198.95", 12898, "12.22.207.184", 38024, 0x5c2b_394a),
    ("38.27.205.30", 48228, "209.142.163.6", 2217, 0xafc7_327f),
    ("153.39.163.191", 44251, "202.188.127.2", 1303, 0x10e8_28a2),
];

const V6_VECTORS: [(&str, u16, &str, u16, u32); 3] = [
    (
        "3ffe:2501:200:1fff::7",
        2794,
        "3ffe:2501:200:3::1",
        1766,
        0x4020_7d3d,
    ),
    (
        "3ffe:501:8::260:97ff:fe40:efab",
        14230,
        "ff02::1",
        4739,
        0xdde5_1bbf,
    ),
    (
        "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
        44251,
        "fe80::200:f8ff:fe21:67cf",
        38024,
        0x02d1_feef,
    ),
];

#[test]
fn microsoft_verification_suite_v4() {
    let t = Toeplitz::new(&MICROSOFT_RSS_KEY);
    for (src, sp, dst, dp, want) in V4_VECTORS {
        assert_eq!(
            t.hash_v4(v4(src), v4(dst), sp, dp),
            want,
            "{src}:{sp} -> {dst}:{dp}"
        );
        assert_ne!(t.hash_v4(v4(dst), v4(src), dp, sp), want);
    }
}

#[test]
fn microsoft_verification_suite_v6() {
    let t = Toeplitz::new(&MICROSOFT_RSS_KEY);
    for (src, sp, dst, dp, want) in V6_VECTORS {
        assert_eq!(
            t.hash_v6(v6(src), v6(dst), sp, dp),
            want,
            "{src}:{sp} -> {dst}:{dp}"
        );
    }
}

#[test]
fn flow_key_hash_uses_canonical_order() {
    let t = Toeplitz::new(&MICROSOFT_RSS_KEY);
    // 161.142.100.80 > 66.9.149.187, so the key's low end is the source.
    let (k, _) = FlowKey::from_v4(v4("66.9.149.187"), 2794, v4("161.142.100.80"), 1766, 0);
    assert_eq!(k.hash_with(&t), 0x51cc_c178);
}

#[test]
fn symmetric_key_shape() {
    assert_eq!(SYMMETRIC_RSS_KEY.len(), 52);
    assert!(SYMMETRIC_RSS_KEY.chunks(2).all(|c| c == [0x6d, 0x5a]));
    assert!(Toeplitz::from_slice(&SYMMETRIC_RSS_KEY[..39]).is_none());
    let t = Toeplitz::from_slice(&SYMMETRIC_RSS_KEY).unwrap();
    assert_eq!(t.key()[..], SYMMETRIC_RSS_KEY[..40]);
    assert!(format!("{t:?}").starts_with("Toeplitz"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tables_match_reference(input in proptest::collection::vec(any::<u8>(), 0..=36),
                              key in proptest::array::uniform32(any::<u8>()),
                              tail in proptest::array::uniform8(any::<u8>())) {
        let mut full = [0u8; 40];
        full[..32].copy_from_slice(&key);
        full[32..].copy_from_slice(&tail);
        let t = Toeplitz::new(&full);
        prop_assert_eq!(t.hash_bytes(&input), toeplitz_reference(&full, &input));
    }

    /// Keys with a 16-bit period take the XOR-fold road; it must agree
    /// with the bit-serial definition for every input length (odd ones too).
    #[test]
    fn periodic_keys_match_reference(input in proptest::collection::vec(any::<u8>(), 0..=36),
                                     pair in any::<[u8; 2]>()) {
        let full: [u8; 40] = core::array::from_fn(|i| pair[i % 2]);
        let t = Toeplitz::new(&full);
        prop_assert_eq!(t.hash_bytes(&input), toeplitz_reference(&full, &input));
        let sym = Toeplitz::symmetric();
        prop_assert_eq!(sym.hash_bytes(&input), toeplitz_reference(&SYMMETRIC_RSS_KEY[..40], &input));
    }

    /// `hash_v4`'s own road for periodic keys (three 32-bit words folded)
    /// agrees with the definition on the 12-byte input, for any such key.
    #[test]
    fn v4_tuples_match_reference(a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), pa in any::<u16>(),
                                 pb in any::<u16>(), pair in any::<[u8; 2]>()) {
        let mut input = [0u8; 12];
        input[..4].copy_from_slice(&a);
        input[4..8].copy_from_slice(&b);
        input[8..10].copy_from_slice(&pa.to_be_bytes());
        input[10..].copy_from_slice(&pb.to_be_bytes());
        let periodic: [u8; 40] = core::array::from_fn(|i| pair[i % 2]);
        for key in [&periodic[..], &SYMMETRIC_RSS_KEY[..40], &MICROSOFT_RSS_KEY[..]] {
            let t = Toeplitz::from_slice(key).unwrap();
            prop_assert_eq!(t.hash_v4(a, b, pa, pb), toeplitz_reference(key, &input));
        }
    }

    /// The same for `hash_v6` and its 36-byte input.
    #[test]
    fn v6_tuples_match_reference(a in any::<[u8; 16]>(), b in any::<[u8; 16]>(), pa in any::<u16>(),
                                 pb in any::<u16>(), pair in any::<[u8; 2]>()) {
        let mut input = [0u8; 36];
        input[..16].copy_from_slice(&a);
        input[16..32].copy_from_slice(&b);
        input[32..34].copy_from_slice(&pa.to_be_bytes());
        input[34..].copy_from_slice(&pb.to_be_bytes());
        let periodic: [u8; 40] = core::array::from_fn(|i| pair[i % 2]);
        for key in [&periodic[..], &SYMMETRIC_RSS_KEY[..40], &MICROSOFT_RSS_KEY[..]] {
            let t = Toeplitz::from_slice(key).unwrap();
            prop_assert_eq!(t.hash_v6(a, b, pa, pb), toeplitz_reference(key, &input));
        }
    }

    #[test]
    fn symmetric_v4(a in any::<[u8; 4]>(), b in any::<[u8; 4]>(), pa in any::<u16>(), pb in any::<u16>()) {
        let t = Toeplitz::symmetric();
        prop_assert_eq!(t.hash_v4(a, b, pa, pb), t.hash_v4(b, a, pb, pa));
        let (k1, _) = FlowKey::from_v4(a, pa, b, pb, 0);
        prop_assert_eq!(k1.symmetric_hash(), t.hash_v4(a, b, pa, pb));
    }

    #[test]
    fn symmetric_v6(a in any::<[u8; 16]>(), b in any::<[u8; 16]>(), pa in any::<u16>(), pb in any::<u16>()) {
        let t = Toeplitz::symmetric();
        prop_assert_eq!(t.hash_v6(a, b, pa, pb), t.hash_v6(b, a, pb, pa));
        let (k1, _) = FlowKey::from_v6(a, pa, b, pb, 3);
        let (k2, _) = FlowKey::from_v6(b, pb, a, pa, 3);
        prop_assert_eq!(k1.symmetric_hash(), k2.symmetric_hash());
        prop_assert_eq!(k1.symmetric_hash(), t.hash_v6(b, a, pb, pa));
    }
}
