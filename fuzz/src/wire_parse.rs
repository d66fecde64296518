//! The frame decoder on arbitrary bytes: the first byte picks the link type
//! (and whether checksums are verified, source routes accepted and IP
//! lengths of 0 taken), the
//! rest is the frame. Must not panic; a decoded payload lies inside the
//! frame. The same bytes from the IP header on: `decode_ip` (its one-step
//! path first) gives what raw IP decoding through the layers gives. And a
//! TCP packet decoded again from its innermost IP header in its key's zone
//! (VLANs, VXLAN or Geneve network), as an engine's worker does, has the
//! same key.

use weft_wire::{decode, decode_ip, decode_ip_in, DecodeOptions, Decoded, LinkType};

const LINKS: [u32; 12] = [0, 1, 9, 12, 101, 108, 113, 228, 229, 239, 276, 147];

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let link = LinkType::from_raw(LINKS[sel as usize % LINKS.len()]);
    let opts = DecodeOptions {
        verify_checksums: sel & 0x80 != 0,
        accept_source_routed: sel & 0x40 != 0,
        take_zero_ip_length: sel & 0x20 == 0,
        vxlan_udp6_zero_csum_rx: sel & 0x10 != 0,
        ..DecodeOptions::default()
    };
    if let Ok(Decoded::Tcp(p)) = decode(link, frame, &opts) {
        let start = frame.as_ptr() as usize;
        let at = p.payload.as_ptr() as usize;
        assert!(
            p.payload.is_empty() || (at >= start && at + p.payload.len() <= start + frame.len())
        );
        assert!((p.tcp_offset as usize) < frame.len());
        let end = usize::from(p.tcp_offset) + usize::from(p.tcp.header_len) + p.payload.len();
        let cut = frame.get(..end).unwrap_or(frame);
        if let Some(inner) = cut.get(usize::from(p.ip_offset)..) {
            if let Ok(Decoded::Tcp(q)) = decode_ip_in(inner, p.key.zone(), &opts) {
                assert_eq!(q.key, p.key);
                assert_eq!(q.dir, p.dir);
            }
        }
    }
    assert_eq!(
        decode_ip(frame, 0, &opts),
        decode(LinkType::Raw, frame, &opts)
    );
}
