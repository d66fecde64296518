//! The pcapng block loop of [`Capture`]: read a block header, then either
//! buffer and decode the block (sections, interfaces, packets) or skip it.

use std::io;

use super::{Capture, Fault, Record, State};
use crate::endian::Endian;
use crate::error::ErrorKind;
use crate::pcapng::{self, Block};

/// Block type and leading length.
const BLOCK_HEADER_LEN: usize = 8;
/// Block header plus a section header's byte-order magic.
const SECTION_HEADER_LEN: usize = 12;

/// Interfaces one pcapng section may declare. Real captures declare a
/// handful (one per capture interface); the limit bounds what a stream of
/// description blocks, which bring no frame, can make the reader hold.
pub(crate) const MAX_INTERFACES: usize = 65_536;

impl Capture {
    /// Reads blocks until a packet block, the clean end of input or an error.
    pub(super) fn next_pcapng(&mut self) -> Result<Option<Record>, Fault> {
        loop {
            let offset = self.input.offset();
            let Some((btype, len)) = self.block_header(offset)? else {
                return Ok(None);
            };
            match pcapng::check_len(btype, len).map_err(|k| (k, offset))? {
                None => self.skip_block(offset, len)?,
                Some(_) => {
                    if let Some(rec) = self.read_block(offset, btype, len)? {
                        return Ok(Some(rec));
                    }
                }
            }
        }
    }

    /// The current section's byte order.
    fn endian(&self) -> Endian {
        match self.state {
            State::PcapNg { endian, .. } => endian,
            State::Pcap(_) => unreachable!("pcapng reader on a classic pcap"),
        }
    }

    /// Reads a block's type and leading length, first adopting the byte order
    /// of a section header. `None` at a clean end of input.
    fn block_header(&mut self, offset: u64) -> Result<Option<(u32, u32)>, Fault> {
        let avail = self
            .input
            .fill(SECTION_HEADER_LEN)
            .map_err(io_fault(offset))?;
        if avail == 0 {
            return Ok(None);
        }
        let truncated = |needed: usize| {
            let (needed, available) = (needed as u32, avail as u32);
            (
                ErrorKind::TruncatedRecordHeader { needed, available },
                offset,
            )
        };
        let head = self.input.peek();
        let first: [u8; 4] = *head
            .first_chunk()
            .ok_or_else(|| truncated(BLOCK_HEADER_LEN))?;
        if avail < BLOCK_HEADER_LEN {
            return Err(truncated(BLOCK_HEADER_LEN));
        }
        if u32::from_le_bytes(first) == pcapng::SHB {
            let bom = head
                .get(8..12)
                .ok_or_else(|| truncated(SECTION_HEADER_LEN))?;
            let e = pcapng::section_endian([bom[0], bom[1], bom[2], bom[3]]);
            if let State::PcapNg { endian, .. } = &mut self.state {
                *endian = e.map_err(|k| (k, offset))?;
            }
        }
        let e = self.endian();
        let head = self.input.peek();
        Ok(Some((e.u32(head, 0), e.u32(head, 4))))
    }

    /// Buffers a whole block of a known type `btype`, checks and decodes it;
    /// returns the frame of a packet block.
    fn read_block(&mut self, offset: u64, btype: u32, len: u32) -> Result<Option<Record>, Fault> {
        let at = |k| (k, offset);
        let n = len as usize; // bounded by pcapng::check_len
        let avail = self.input.fill(n).map_err(io_fault(offset))?;
        if avail < n {
            let available = avail as u64;
            return Err(at(ErrorKind::TruncatedRecordData {
                needed: len,
                available,
            }));
        }
        let State::PcapNg { endian, interfaces } = &mut self.state else {
            unreachable!("pcapng reader on a classic pcap");
        };
        let block = &self.input.peek()[..n];
        pcapng::check_trailer(block, len, *endian).map_err(at)?;
        let snaplen0 = interfaces.first().map(|i| i.snaplen);
        let decoded = pcapng::decode(btype, block, *endian, snaplen0).map_err(at)?;
        let span = self.input.take(n);
        let p = match decoded {
            Block::Section => {
                interfaces.clear();
                return Ok(None);
            }
            Block::Interface(iface) => {
                if interfaces.len() >= MAX_INTERFACES {
                    return Err(at(ErrorKind::TooManyInterfaces(MAX_INTERFACES as u32)));
                }
                interfaces.push(iface);
                return Ok(None);
            }
            Block::Packet(p) => p,
        };
        let iface = interfaces
            .get(p.interface as usize)
            .ok_or(at(ErrorKind::UnknownInterface(p.interface)))?;
        Ok(Some(Record {
            span: span.sub(p.data_at, p.caplen as usize),
            wire_len: p.wire_len,
            ts_nanos: p.ticks.map_or(self.last_ts, |t| iface.to_nanos(t)),
            link_type: iface.link_type,
            interface: p.interface,
            offset,
        }))
    }

    /// Skips a block of an unknown type without buffering it, then checks
    /// its trailing length.
    fn skip_block(&mut self, offset: u64, len: u32) -> Result<(), Fault> {
        let truncated = |available| {
            let kind = ErrorKind::TruncatedRecordData {
                needed: len,
                available,
            };
            (kind, offset)
        };
        let body = u64::from(len) - 4;
        let skipped = self.input.skip(body).map_err(io_fault(offset))?;
        if skipped < body {
            return Err(truncated(skipped));
        }
        let avail = self.input.fill(4).map_err(io_fault(offset))?;
        if avail < 4 {
            return Err(truncated(skipped + avail as u64));
        }
        let trailer = self.endian().u32(self.input.peek(), 0);
        if trailer != len {
            return Err((ErrorKind::BadBlockLength { len, trailer }, offset));
        }
        self.input.take(4);
        Ok(())
    }
}

/// Maps a read failure to a fault at `offset`.
fn io_fault(offset: u64) -> impl Fn(io::Error) -> Fault {
    move |e| (ErrorKind::Io(e.kind()), offset)
}
