//! The canonical flow key and packet direction.
//!
//! A [`FlowKey`] names a TCP connection independently of which side sent a
//! packet: its two endpoints are stored in order, lower `(address, port)`
//! first, and [`Dir`] tells which way a given packet travelled.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The direction of a packet relative to its [`FlowKey`].
/// Plain data: `Send + Sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// From the lower endpoint to the higher one.
    LoToHi,
    /// From the higher endpoint to the lower one.
    HiToLo,
}

impl Dir {
    /// The opposite direction.
    pub const fn reverse(self) -> Dir {
        match self {
            Dir::LoToHi => Dir::HiToLo,
            Dir::HiToLo => Dir::LoToHi,
        }
    }
}

/// What tells equal 4-tuples apart: the folded VLAN IDs, the overlay
/// network and the tunnel the packet came out of ([`FlowKey::vlan`],
/// [`FlowKey::vni`], [`FlowKey::tunnel_ends`]). What an engine's
/// dispatcher hands a worker beside the innermost IP header it found, so
/// the worker's key is the dispatcher's. Plain data: `Send + Sync`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Zone {
    /// Folded VLAN IDs ([`FlowKey::vlan`]).
    pub vlan: u32,
    /// Virtual network ([`FlowKey::vni`]).
    pub vni: u32,
    /// The tunnels the packet came out of ([`FlowKey::tunnel_ends`]; 0
    /// outside tunnels).
    pub ends: u16,
}

impl Zone {
    /// VLAN IDs `vlan`, no overlay network, no tunnel.
    pub const fn vlan(vlan: u32) -> Zone {
        Zone {
            vlan,
            vni: 0,
            ends: 0,
        }
    }
}

/// The low byte of [`FlowKey::tunnel_ends`] for a tunnel between the
/// outer addresses `a` and `b` (either order; IPv4 in the first 4 bytes):
/// 8 bits of a hash of the two addresses in order.
pub fn tunnel_ends(a: &[u8; 16], b: &[u8; 16]) -> u8 {
    let (a, b) = (u128::from_be_bytes(*a), u128::from_be_bytes(*b));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    // Any mix spreading both addresses over the 8 bits will do: the value
    // tells tunnels at one depth apart; it is not a secret (the depth, not
    // the hash, keeps a tunnel inside the one the traffic is mirrored
    // through apart from the mirrored traffic itself).
    let fold = |v: u128| splitmix((v as u64) ^ ((v >> 64) as u64).rotate_left(32));
    (splitmix(fold(lo) ^ fold(hi).rotate_left(17)) >> 56) as u8
}

/// SplitMix64's finaliser: every input bit moves every output bit.
fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A canonical, direction-free TCP flow key.
///
/// Invariant: `(lo, lo_port) <= (hi, hi_port)` comparing address bytes then
/// port; IPv4 addresses occupy the first 4 bytes of `lo`/`hi` with the rest
/// zero and `v6 == false`. `vlan` folds up to two VLAN IDs,
/// `outer << 12 | inner` (just the ID for one tag, 0 untagged), so equal
/// 4-tuples on different VLANs are different flows. `vni` is the virtual
/// network of the innermost VXLAN, Geneve or NVGRE header the packet came
/// through (0 outside them, and for network 0), so equal 4-tuples in
/// different overlay networks (tenants' private address ranges, mirror
/// sessions) are different flows too (unless
/// [`DecodeOptions::key_vni`](crate::DecodeOptions::key_vni) is off).
/// Other tunnels' identifiers are not part of the key: a GTP-U TEID
/// differs between a connection's two directions. `tunnel_ends` tells a
/// packet that came out of tunnels (IP-in-IP, 6in4, GRE, VXLAN, Geneve,
/// GTP-U) by how many it came through and the innermost one's two outer
/// addresses (in either direction the same): a segment sent through a
/// tunnel is not of the connection its hosts hold outside it, which does
/// not take it, also where that connection is itself seen through a tunnel
/// (a mirror session: the segment is then one tunnel deeper) (unless
/// [`DecodeOptions::key_tunnel_ends`](crate::DecodeOptions::key_tunnel_ends)
/// is off).
///
/// 48 bytes, `Copy`, plain data: `Send + Sync`.
#[derive(Clone, Copy, Eq, Debug, PartialOrd, Ord)]
pub struct FlowKey {
    v6: bool,
    ends: u16,
    lo: [u8; 16],
    hi: [u8; 16],
    lo_port: u16,
    hi_port: u16,
    vlan: u32,
    vni: u32,
}

impl FlowKey {
    /// The key of a packet from `src:sport` to `dst:dport` on `vlan`, and
    /// the packet's direction.
    ///
    /// If one address is IPv4 and the other IPv6, the IPv4 one is mapped
    /// into IPv6 (`::ffff:a.b.c.d`). Equal endpoints give [`Dir::LoToHi`].
    pub fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, vlan: u32) -> (FlowKey, Dir) {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                FlowKey::from_v4(s.octets(), sport, d.octets(), dport, vlan)
            }
            (s, d) => FlowKey::from_v6(to_v6(s), sport, to_v6(d), dport, vlan),
        }
    }

    /// Like [`FlowKey::new`] for IPv4 address bytes (no conversion).
    pub fn from_v4(
        src: [u8; 4],
        sport: u16,
        dst: [u8; 4],
        dport: u16,
        vlan: u32,
    ) -> (FlowKey, Dir) {
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s[..4].copy_from_slice(&src);
        d[..4].copy_from_slice(&dst);
        FlowKey::ordered(false, s, sport, d, dport, vlan)
    }

    /// Like [`FlowKey::new`] for IPv6 address bytes.
    pub fn from_v6(
        src: [u8; 16],
        sport: u16,
        dst: [u8; 16],
        dport: u16,
        vlan: u32,
    ) -> (FlowKey, Dir) {
        FlowKey::ordered(true, src, sport, dst, dport, vlan)
    }

    #[inline]
    fn ordered(v6: bool, s: [u8; 16], sp: u16, d: [u8; 16], dp: u16, vlan: u32) -> (FlowKey, Dir) {
        // Byte arrays compare like their big-endian integers; as u128s the
        // comparison is two machine compares instead of a byte loop (every
        // packet is ordered twice on the inline path).
        let (sa, da) = (u128::from_be_bytes(s), u128::from_be_bytes(d));
        if (sa, sp) <= (da, dp) {
            let key = FlowKey {
                v6,
                ends: 0,
                lo: s,
                hi: d,
                lo_port: sp,
                hi_port: dp,
                vlan,
                vni: 0,
            };
            (key, Dir::LoToHi)
        } else {
            let key = FlowKey {
                v6,
                ends: 0,
                lo: d,
                hi: s,
                lo_port: dp,
                hi_port: sp,
                vlan,
                vni: 0,
            };
            (key, Dir::HiToLo)
        }
    }

    fn addr(&self, bytes: &[u8; 16]) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(*bytes))
        } else {
            IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
        }
    }

    /// The lower endpoint's address.
    pub fn lo_addr(&self) -> IpAddr {
        self.addr(&self.lo)
    }
    /// The lower endpoint's port.
    pub fn lo_port(&self) -> u16 {
        self.lo_port
    }
    /// The higher endpoint's address.
    pub fn hi_addr(&self) -> IpAddr {
        self.addr(&self.hi)
    }
    /// The higher endpoint's port.
    pub fn hi_port(&self) -> u16 {
        self.hi_port
    }
    /// The folded VLAN IDs (`outer << 12 | inner`, 0 untagged); priority
    /// tags (VID 0) are not VLANs and are left out.
    pub fn vlan(&self) -> u32 {
        self.vlan
    }
    /// The VXLAN, Geneve or NVGRE virtual network identifier (24 bits; 0
    /// outside them).
    pub fn vni(&self) -> u32 {
        self.vni
    }
    /// The tunnels the packet came out of: how many IP tunnels it came
    /// through in the high byte, [`tunnel_ends`] of the innermost one's
    /// outer addresses in the low byte; 0 outside tunnels.
    pub fn tunnel_ends(&self) -> u16 {
        self.ends
    }
    /// The VLAN IDs, virtual network and tunnel together.
    pub fn zone(&self) -> Zone {
        Zone {
            vlan: self.vlan,
            vni: self.vni,
            ends: self.ends,
        }
    }
    /// This key in virtual network `vni` (see [`FlowKey::vni`]).
    #[inline]
    pub fn with_vni(mut self, vni: u32) -> FlowKey {
        self.vni = vni;
        self
    }
    /// This key out of the tunnel `ends` (see [`FlowKey::tunnel_ends`]).
    #[inline]
    pub fn with_tunnel_ends(mut self, ends: u16) -> FlowKey {
        self.ends = ends;
        self
    }
    /// This key in network and tunnel of `zone` (its VLAN IDs are the
    /// key's own).
    #[inline]
    pub fn with_zone(self, zone: Zone) -> FlowKey {
        self.with_vni(zone.vni).with_tunnel_ends(zone.ends)
    }
    /// True for an IPv6 flow.
    pub fn is_ipv6(&self) -> bool {
        self.v6
    }
    /// The raw lower address bytes (IPv4 in the first 4).
    pub fn lo_bytes(&self) -> &[u8; 16] {
        &self.lo
    }
    /// The raw higher address bytes (IPv4 in the first 4).
    pub fn hi_bytes(&self) -> &[u8; 16] {
        &self.hi
    }

    /// The sender of a packet travelling in `dir`.
    pub fn src(&self, dir: Dir) -> (IpAddr, u16) {
        match dir {
            Dir::LoToHi => (self.lo_addr(), self.lo_port),
            Dir::HiToLo => (self.hi_addr(), self.hi_port),
        }
    }

    /// The receiver of a packet travelling in `dir`.
    pub fn dst(&self, dir: Dir) -> (IpAddr, u16) {
        self.src(dir.reverse())
    }
}

impl FlowKey {
    /// The fields beside the addresses, losslessly in two words: the
    /// ports and the VLANs; the network, the family and the tunnel.
    #[inline]
    fn rest(&self) -> (u64, u64) {
        let ports = u64::from(self.lo_port) | u64::from(self.hi_port) << 16;
        (
            ports | u64::from(self.vlan) << 32,
            u64::from(self.vni) | u64::from(self.v6) << 32 | u64::from(self.ends) << 40,
        )
    }
}

impl PartialEq for FlowKey {
    /// Every field, compared as four words (see the hash below): the
    /// connection table compares a key for every segment.
    #[inline]
    fn eq(&self, other: &FlowKey) -> bool {
        u128::from_ne_bytes(self.lo) == u128::from_ne_bytes(other.lo)
            && u128::from_ne_bytes(self.hi) == u128::from_ne_bytes(other.hi)
            && self.rest() == other.rest()
    }
}

impl core::hash::Hash for FlowKey {
    /// Every field, in four words: both addresses whole, then the ports
    /// and the VLANs, and the network and the family. A derived hash
    /// writes each field apart, the addresses as a length and a byte
    /// slice: the key is hashed for every segment (the connection table's
    /// seeded hash), and this way an inline replay ran fewer instructions
    /// with the network in the key than the derived hash without it
    /// (callgrind).
    #[inline]
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        let (a, b) = self.rest();
        state.write_u128(u128::from_ne_bytes(self.lo));
        state.write_u128(u128::from_ne_bytes(self.hi));
        state.write_u64(a);
        state.write_u64(b);
    }
}

fn to_v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

impl fmt::Display for FlowKey {
    /// `a:port <-> b:port`, IPv6 addresses in brackets, then ` vlan N` when
    /// tagged, ` vni N` inside a overlay network and ` tunnel D.XX` out of
    /// D tunnels (XX: the innermost's ends).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lo, hi) = (self.lo_addr(), self.hi_addr());
        if self.v6 {
            write!(f, "[{lo}]:{} <-> [{hi}]:{}", self.lo_port, self.hi_port)?;
        } else {
            write!(f, "{lo}:{} <-> {hi}:{}", self.lo_port, self.hi_port)?;
        }
        if self.vlan != 0 {
            write!(f, " vlan {}", self.vlan)?;
        }
        if self.vni != 0 {
            write!(f, " vni {}", self.vni)?;
        }
        if self.ends != 0 {
            write!(f, " tunnel {}.{:02x}", self.ends >> 8, self.ends & 0xff)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn canonical_both_ways() {
        let (k1, d1) = FlowKey::new(ip("10.0.0.2"), 80, ip("10.0.0.1"), 5000, 7);
        let (k2, d2) = FlowKey::new(ip("10.0.0.1"), 5000, ip("10.0.0.2"), 80, 7);
        assert_eq!(k1, k2);
        assert_eq!(d1, Dir::HiToLo);
        assert_eq!(d2, Dir::LoToHi);
        assert_eq!(d1.reverse(), d2);
        assert_eq!(k1.lo_addr(), ip("10.0.0.1"));
        assert_eq!(k1.lo_port(), 5000);
        assert_eq!(k1.hi_addr(), ip("10.0.0.2"));
        assert_eq!(k1.hi_port(), 80);
        assert_eq!(k1.src(d1), (ip("10.0.0.2"), 80));
        assert_eq!(k1.dst(d1), (ip("10.0.0.1"), 5000));
        assert_eq!(k1.vlan(), 7);
        assert!(!k1.is_ipv6());
        assert_eq!(k1.to_string(), "10.0.0.1:5000 <-> 10.0.0.2:80 vlan 7");
    }

    /// Every field counts in equality and in the hash, which agree with
    /// the derived order: over every key made of a few values per field
    /// (IPv4 ones meeting IPv6 ones with the same leading bytes, values
    /// with high bits set), keys are equal exactly when they order equal,
    /// and equal keys hash equal.
    #[test]
    fn equality_and_hash_agree_with_the_order_on_every_field() {
        use std::hash::BuildHasher;
        let seed = std::hash::RandomState::new();
        let mut keys = Vec::new();
        for v6 in [false, true] {
            for a in 0u8..3 {
                for b in 0u8..2 {
                    for port in [0u16, 0x8000] {
                        for vlan in [0u32, 5, 1 << 31, u32::MAX] {
                            for vni in [0u32, 7, 1 << 31] {
                                let (mut s, mut d) = ([0u8; 16], [0u8; 16]);
                                s[0] = a;
                                d[0] = b;
                                let k = if v6 {
                                    FlowKey::from_v6(s, port, d, 1, vlan).0
                                } else {
                                    let (s4, d4) = ([a, 0, 0, 0], [b, 0, 0, 0]);
                                    FlowKey::from_v4(s4, port, d4, 1, vlan).0
                                };
                                keys.push(k.with_vni(vni));
                            }
                        }
                    }
                }
            }
        }
        let mut equal = 0;
        for x in &keys {
            for y in &keys {
                assert_eq!(x == y, x.cmp(y) == std::cmp::Ordering::Equal, "{x:?} {y:?}");
                if x == y {
                    assert_eq!(seed.hash_one(x), seed.hash_one(y));
                    equal += 1;
                }
            }
        }
        // Only each key with itself, and the pairs whose endpoints the
        // canonical order swapped into the same key (a = b collapse none
        // here: the ports differ).
        assert_eq!(equal, keys.len());
    }

    #[test]
    fn same_address_orders_by_port_and_vlan_separates() {
        let (k, d) = FlowKey::new(ip("::1"), 9000, ip("::1"), 22, 0);
        assert_eq!(d, Dir::HiToLo);
        assert_eq!(k.lo_port(), 22);
        assert!(k.is_ipv6());
        assert_eq!(k.to_string(), "[::1]:22 <-> [::1]:9000");
        let (k2, _) = FlowKey::new(ip("::1"), 9000, ip("::1"), 22, 1);
        assert_ne!(k, k2);
        let (k3, d3) = FlowKey::new(ip("::1"), 22, ip("::1"), 22, 0);
        assert_eq!(d3, Dir::LoToHi);
        assert_eq!(k3.src(d3), k3.dst(d3));
    }

    #[test]
    fn mixed_families_map_to_v6() {
        let (k, _) = FlowKey::new(ip("1.2.3.4"), 1, ip("::2"), 2, 0);
        assert!(k.is_ipv6());
        assert_eq!(k.hi_addr(), ip("::ffff:1.2.3.4"));
    }

    proptest::proptest! {
        /// The lower endpoint is the smaller (address bytes, port) pair in
        /// lexicographic order, whatever the comparison is made of.
        #[test]
        fn lower_endpoint_is_the_lexicographically_smaller(
            s in proptest::array::uniform16(0u8..4),
            d in proptest::array::uniform16(0u8..4),
            sp in 0u16..4,
            dp in 0u16..4,
        ) {
            let (k, dir) = FlowKey::from_v6(s, sp, d, dp, 0);
            let lower = (s, sp) <= (d, dp);
            proptest::prop_assert_eq!(dir, if lower { Dir::LoToHi } else { Dir::HiToLo });
            let (lo, lo_port) = if lower { (s, sp) } else { (d, dp) };
            proptest::prop_assert_eq!(k.lo_addr(), IpAddr::V6(Ipv6Addr::from(lo)));
            proptest::prop_assert_eq!(k.lo_port(), lo_port);
        }
    }
}
