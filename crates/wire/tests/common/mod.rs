//! Hand-built frames for the decode and defragmentation tests.
#![allow(dead_code)]

use weft_wire::{internet_checksum, tcp_checksum_v4, tcp_checksum_v6};

pub const A4: [u8; 4] = [10, 0, 0, 1];
pub const B4: [u8; 4] = [10, 0, 0, 2];
pub const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const B6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// A TCP segment (checksum 0): flags PSH|ACK, data offset from `options`
/// (padded to 4 bytes with NOPs).
pub fn tcp(sport: u16, dport: u16, seq: u32, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut opts = options.to_vec();
    while opts.len() % 4 != 0 {
        opts.push(1);
    }
    let mut t = Vec::new();
    t.extend(sport.to_be_bytes());
    t.extend(dport.to_be_bytes());
    t.extend(seq.to_be_bytes());
    t.extend(77u32.to_be_bytes());
    t.push((((20 + opts.len()) / 4) << 4) as u8);
    t.push(0x18);
    t.extend(1000u16.to_be_bytes());
    t.extend([0, 0, 0, 0]);
    t.extend(opts);
    t.extend(payload);
    t
}

/// Fills in the TCP checksum of `seg` for IPv4 addresses.
pub fn checksum_v4(src: [u8; 4], dst: [u8; 4], mut seg: Vec<u8>) -> Vec<u8> {
    seg[16..18].copy_from_slice(&[0, 0]);
    let c = tcp_checksum_v4(src, dst, &seg);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    seg
}

/// Fills in the TCP checksum of `seg` for IPv6 addresses.
pub fn checksum_v6(src: [u8; 16], dst: [u8; 16], mut seg: Vec<u8>) -> Vec<u8> {
    seg[16..18].copy_from_slice(&[0, 0]);
    let c = tcp_checksum_v6(src, dst, &seg);
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    seg
}

/// An IPv4 header (with `options`, correct length and checksum) + payload.
pub fn ipv4_full(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    options: &[u8],
    id: u16,
    frag: u16,
    payload: &[u8],
) -> Vec<u8> {
    let ihl = 20 + options.len();
    let total = (ihl + payload.len()) as u16;
    let mut h = vec![0x40 | (ihl / 4) as u8, 0];
    h.extend(total.to_be_bytes());
    h.extend(id.to_be_bytes());
    h.extend(frag.to_be_bytes());
    h.extend([64, proto, 0, 0]);
    h.extend(src);
    h.extend(dst);
    h.extend(options);
    let c = internet_checksum(&h, 0);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend(payload);
    h
}

pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_full(src, dst, proto, &[], 0x1234, 0x4000, payload)
}

/// An IPv6 header + `rest` (extension headers and upper layer).
pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, rest: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend((rest.len() as u16).to_be_bytes());
    h.extend([next, 55]);
    h.extend(src);
    h.extend(dst);
    h.extend(rest);
    h
}

/// A v4 TCP packet 10.0.0.1:1234 -> 10.0.0.2:80 with `payload`.
pub fn tcp4(payload: &[u8]) -> Vec<u8> {
    ipv4(
        A4,
        B4,
        6,
        &checksum_v4(A4, B4, tcp(1234, 80, 1000, &[], payload)),
    )
}

/// A v6 TCP packet [2001:db8::1]:1234 -> [2001:db8::2]:80 with `payload`.
pub fn tcp6(payload: &[u8]) -> Vec<u8> {
    ipv6(
        A6,
        B6,
        6,
        &checksum_v6(A6, B6, tcp(1234, 80, 1000, &[], payload)),
    )
}

/// Ethernet II around `payload`.
pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    f.extend(ethertype.to_be_bytes());
    f.extend(payload);
    f
}

/// A VLAN tag's TCI followed by the next ethertype and payload (the TPID
/// is the ethertype before it).
pub fn tag(id: u16, next: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = id.to_be_bytes().to_vec();
    f.extend(next.to_be_bytes());
    f.extend(payload);
    f
}
