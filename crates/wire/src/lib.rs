//! weft-wire: zero-copy decoding of captured frames down to TCP, the
//! canonical flow key, the symmetric Toeplitz hash, and IP defragmentation.
//!
//! What this crate owns:
//!
//! - [`decode()`]: from a frame of a pcap [`LinkType`] (Ethernet with any
//!   VLAN/QinQ stack, MPLS, PPPoE, PPP, BSD null/loop, Linux SLL/SLL2,
//!   NFLOG, raw IP) through IPv4/IPv6 (options, extension headers) and
//!   tunnels (IP-in-IP, 6in4, GRE, NVGRE, ERSPAN, VXLAN, Geneve, GTP-U) to a TCP [`Packet`] that
//!   borrows the frame, an IP [`Fragment`], or [`Decoded::Other`].
//! - [`FlowKey`]: both directions of a connection map to one key; [`Dir`]
//!   says which way a packet went. Equal 4-tuples on two VLANs, or in two
//!   VXLAN, Geneve or NVGRE networks, are two keys ([`Zone`]).
//! - [`Toeplitz`]: the RSS hash; with [`SYMMETRIC_RSS_KEY`] both
//!   directions hash alike, so software dispatch agrees with a NIC's.
//! - [`Defragmenter`]: bounded IP reassembly, the one allocating part.
//! - [`Seq`], [`Timestamp`], [`TcpFlags`], [`TcpOptions`], checksums.
//!
//! Contract: no function panics on any input; truncated or malformed
//! headers give a [`DecodeError`], never a panic. The decode path does not
//! allocate. Every type is plain data, `Send + Sync`.
//!
//! ```
//! use weft_wire::{decode, Decoded, DecodeOptions, Dir, LinkType};
//!
//! // Ethernet / IPv4 10.0.0.1:1234 -> 10.0.0.2:80 / TCP SYN+ACK, payload "hi".
//! let mut f = vec![0u8; 12];
//! f.extend([0x08, 0x00]);
//! f.extend([0x45, 0, 0, 42, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
//! f.extend([0x04, 0xd2, 0, 80, 0, 0, 0, 7, 0, 0, 0, 9, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0]);
//! f.extend(*b"hi");
//!
//! let Ok(Decoded::Tcp(p)) = decode(LinkType::Ethernet, &f, &DecodeOptions::default()) else {
//!     panic!("not TCP");
//! };
//! assert_eq!(p.payload, b"hi");
//! assert_eq!(p.tcp.flags.to_string(), "SA");
//! assert_eq!(p.dir, Dir::LoToHi);
//! assert_eq!(p.key.to_string(), "10.0.0.1:1234 <-> 10.0.0.2:80");
//! // Both directions share the key, hence the symmetric hash.
//! let _worker = p.key.symmetric_hash() % 4;
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bytes;
pub mod checksum;
pub mod decode;
pub mod defrag;
pub mod flow;
pub mod hash;
mod ip;
pub mod link;
pub mod net;
pub mod peek;
pub mod seq;
pub mod tcp;
pub mod time;

pub use checksum::{internet_checksum, tcp_checksum_v4, tcp_checksum_v6};
pub use decode::{
    decode, decode_ip, decode_ip_in, DecodeError, DecodeOptions, Decoded, Fragment, Layer, Packet,
    MAX_NESTING,
};
pub use defrag::{DefragConfig, DefragPolicy, DefragStats, Defragmenter, Reassembled};
pub use flow::{Dir, FlowKey, Zone};
pub use hash::{Toeplitz, MICROSOFT_RSS_KEY, SYMMETRIC_RSS_KEY};
pub use link::LinkType;
pub use net::{IpNet, NetTable};
pub use peek::{peek_key, peek_key_at, peek_key_ip, peek_tcp, FlowPeek, KeyPeek};
pub use seq::Seq;
pub use tcp::{TcpFlags, TcpHeader, TcpOptions};
pub use time::Timestamp;

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn all_types_are_send_sync() {
        assert_send_sync::<crate::Packet<'static>>();
        assert_send_sync::<crate::Fragment<'static>>();
        assert_send_sync::<crate::Toeplitz>();
        assert_send_sync::<crate::Defragmenter>();
        assert_send_sync::<crate::DecodeError>();
        assert_send_sync::<crate::FlowKey>();
    }
}
