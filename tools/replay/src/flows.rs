//! `--write-flows`: one file per half-connection with its delivered bytes.
//!
//! Files are named like tcpflow's: `SRCIP.SRCPORT-DSTIP.DSTPORT` with IPv4
//! octets and ports zero-padded (`010.000.000.001.40000-...`), IPv6 as
//! written by RFC 5952 with `:` kept. A 4-tuple used again by a later
//! connection gets `c1`, `c2`, … appended, in the order the connections
//! start. Bytes are buffered per stream and appended in 64 KiB writes, so
//! thousands of concurrent streams need no open file each.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const FLUSH_AT: usize = 64 * 1024;

/// The file name of a half-connection (without reuse suffix).
pub fn flow_name(src: (IpAddr, u16), dst: (IpAddr, u16)) -> String {
    fn end(a: IpAddr, p: u16) -> String {
        match a {
            IpAddr::V4(v) => {
                let o = v.octets();
                format!("{:03}.{:03}.{:03}.{:03}.{p:05}", o[0], o[1], o[2], o[3])
            }
            IpAddr::V6(v) => format!("{v}.{p:05}"),
        }
    }
    format!("{}-{}", end(src.0, src.1), end(dst.0, dst.1))
}

/// Gives each new connection its file names, counting reuses of a tuple.
#[derive(Debug, Default)]
pub struct Namer {
    seen: HashMap<String, u32>,
}

impl Namer {
    /// Name for this connection's half `src → dst`, `c<N>` for the N-th reuse.
    pub fn name(&mut self, src: (IpAddr, u16), dst: (IpAddr, u16)) -> String {
        let base = flow_name(src, dst);
        let n = self.seen.entry(base.clone()).or_insert(0);
        let name = if *n == 0 { base } else { format!("{base}c{n}") };
        *n += 1;
        name
    }
}

/// Buffered appends to one flow file.
#[derive(Debug)]
pub struct FlowFile {
    path: PathBuf,
    buf: Vec<u8>,
    created: bool,
    /// First I/O error, reported when the stream completes.
    pub error: Option<std::io::Error>,
}

impl FlowFile {
    /// A flow file `dir/name`, created on the first write.
    pub fn new(dir: &Path, name: &str) -> FlowFile {
        FlowFile {
            path: dir.join(name),
            buf: Vec::new(),
            created: false,
            error: None,
        }
    }

    /// Appends bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Writes what is buffered.
    pub fn flush(&mut self) {
        if self.error.is_some() || (self.buf.is_empty() && self.created) {
            return;
        }
        let res = OpenOptions::new()
            .create(true)
            .append(self.created)
            .write(true)
            .truncate(!self.created)
            .open(&self.path)
            .and_then(|mut f| f.write_all(&self.buf));
        self.created = true;
        self.buf.clear();
        if let Err(e) = res {
            self.error = Some(e);
        }
    }
}
