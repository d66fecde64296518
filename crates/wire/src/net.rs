//! IP networks, and values by network with the longest matching prefix
//! winning: the settings of the hosts behind an IDS, such as the overlap
//! policy each one's stack follows (its target-based policy).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP network: an address with its host bits cleared, and a prefix
/// length. Plain data: `Send + Sync`.
///
/// ```
/// use weft_wire::IpNet;
/// let net: IpNet = "10.1.2.3/16".parse().unwrap();
/// assert_eq!(net.to_string(), "10.1.0.0/16");
/// assert!(net.contains("10.1.200.7".parse().unwrap()));
/// assert!(!net.contains("10.2.0.1".parse().unwrap()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    len: u8,
}

impl IpNet {
    /// The network of `addr` with a `len`-bit prefix (at most 32 for
    /// IPv4, 128 for IPv6); the host bits of `addr` are cleared.
    pub fn new(addr: IpAddr, len: u8) -> Result<IpNet, String> {
        let bits = bits_of(addr);
        if len > bits {
            return Err(format!("prefix /{len} is longer than {bits} bits"));
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(len)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(len)).into()),
        };
        Ok(IpNet { addr, len })
    }

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `a` lies in the network (an IPv4 network holds no IPv6
    /// address, and the reverse).
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & mask32(self.len) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & mask128(self.len) == u128::from(n),
            _ => false,
        }
    }
}

fn bits_of(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl FromStr for IpNet {
    type Err = String;

    /// `ADDRESS/LENGTH`, or an address alone (the host itself).
    fn from_str(s: &str) -> Result<IpNet, String> {
        let bad = |why: String| format!("bad network {s:?}: {why}");
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|e| bad(format!("{e}")))?;
        let len = match len {
            Some(l) => l
                .trim()
                .parse::<u8>()
                .map_err(|_| bad(format!("prefix {l:?} is not a length")))?,
            None => bits_of(addr),
        };
        IpNet::new(addr, len).map_err(bad)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Values by IP network: a lookup gives the value of the longest network
/// holding the address. Meant for a site's list of hosts and networks
/// (tens of entries), looked up once per connection or datagram, not per
/// packet: a lookup scans the entries, longest prefix first. `Send +
/// Sync` when `T` is.
///
/// ```
/// use weft_wire::NetTable;
/// let mut t = NetTable::new();
/// t.insert("10.0.0.0/8".parse().unwrap(), "lab");
/// t.insert("10.9.0.0/16".parse().unwrap(), "servers");
/// assert_eq!(t.get("10.9.1.1".parse().unwrap()), Some("servers"));
/// assert_eq!(t.get("10.1.1.1".parse().unwrap()), Some("lab"));
/// assert_eq!(t.get("192.0.2.1".parse().unwrap()), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetTable<T> {
    /// Longest prefix first; one entry per network.
    entries: Vec<(IpNet, T)>,
}

impl<T> Default for NetTable<T> {
    fn default() -> Self {
        NetTable {
            entries: Vec::new(),
        }
    }
}

impl<T: Copy> NetTable<T> {
    /// An empty table.
    pub fn new() -> NetTable<T> {
        NetTable::default()
    }

    /// Sets the value of `net` (replacing the one it had).
    pub fn insert(&mut self, net: IpNet, value: T) {
        match self.entries.iter_mut().find(|(n, _)| *n == net) {
            Some(e) => e.1 = value,
            None => {
                let at = self
                    .entries
                    .partition_point(|(n, _)| n.prefix_len() >= net.prefix_len());
                self.entries.insert(at, (net, value));
            }
        }
    }

    /// The value of the longest network holding `a`, if any.
    pub fn get(&self, a: IpAddr) -> Option<T> {
        self.entries
            .iter()
            .find(|(n, _)| n.contains(a))
            .map(|&(_, v)| v)
    }

    /// Whether the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, longest prefix first.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, T)> + '_ {
        self.entries.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_mask_and_hold_their_own_family() {
        assert_eq!(net("192.0.2.77/24").to_string(), "192.0.2.0/24");
        assert_eq!(net("192.0.2.77").to_string(), "192.0.2.77/32");
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(net("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(net("::/0").prefix_len(), 0);
        assert!(net("0.0.0.0/0").contains("203.0.113.9".parse().unwrap()));
        assert!(!net("0.0.0.0/0").contains("2001:db8::1".parse().unwrap()));
        assert!(net("::/0").contains("2001:db8::1".parse().unwrap()));
        assert!(!net("10.0.0.0/8").contains("11.0.0.0".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/x", "host"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_longest_network_wins_whatever_the_order_of_insertion() {
        let mut t = NetTable::new();
        t.insert(net("10.9.8.0/24"), 3);
        t.insert(net("0.0.0.0/0"), 0);
        t.insert(net("10.0.0.0/8"), 1);
        t.insert(net("10.9.0.0/16"), 2);
        t.insert(net("2001:db8::/32"), 6);
        let get = |a: &str| t.get(a.parse().unwrap());
        assert_eq!(get("10.9.8.7"), Some(3));
        assert_eq!(get("10.9.9.7"), Some(2));
        assert_eq!(get("10.1.1.1"), Some(1));
        assert_eq!(get("192.0.2.1"), Some(0));
        assert_eq!(get("2001:db8::5"), Some(6));
        assert_eq!(get("2001:db9::5"), None);
        t.insert(net("10.0.0.0/8"), 9);
        assert_eq!(t.get("10.1.1.1".parse().unwrap()), Some(9));
        assert_eq!(t.iter().count(), 5);
    }
}
