//! `--write-flows`: one file per half-connection with its delivered bytes.
//!
//! Files are named like tcpflow's: `SRCIP.SRCPORT-DSTIP.DSTPORT` with IPv4
//! octets and ports zero-padded (`010.000.000.001.40000-...`), IPv6 as
//! written by RFC 5952 with `:` kept; a connection behind VLAN tags gets
//! `-v<ID>` (`-v<OUTER>.<INNER>` for two) after it, since the same 4-tuple
//! on two VLANs is two connections (which may be on two workers), and one
//! inside a overlay network `-vni<VNI>` after that, and one out of
//! tunnels `-t<DEPTH>.<XX>` (its
//! [`FlowKey::tunnel_ends`](weft_wire::FlowKey::tunnel_ends), the ends in
//! hex) after that, for the same reason. A
//! 4-tuple used again by a later connection gets `c1`, `c2`, … appended,
//! in the order their first bytes are written. Bytes are buffered per stream and
//! appended in 64 KiB writes, so thousands of concurrent streams need no
//! open file each; a half-connection that delivers nothing gets no file,
//! and no name: the table of names grows with the files written, not with
//! the connections seen (a SYN flood adds nothing to it). A worker's
//! buffers together hold at most [`WORKER_BUFFER_BUDGET`] (a stream's
//! buffer is freed once written): past it, each write goes straight to its
//! file, so many concurrent streams cannot hold 64 KiB each.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use weft_wire::Zone;

const FLUSH_AT: usize = 64 * 1024;

/// Bytes all the flow files of one worker may hold in their buffers.
pub const WORKER_BUFFER_BUDGET: usize = 64 * 1024 * 1024;

/// The file name of a half-connection in `zone` (folded VLAN IDs, VXLAN
/// or Geneve network), without reuse suffix.
pub fn flow_name(src: (IpAddr, u16), dst: (IpAddr, u16), zone: Zone) -> String {
    fn end(a: IpAddr, p: u16) -> String {
        match a {
            IpAddr::V4(v) => {
                let o = v.octets();
                format!("{:03}.{:03}.{:03}.{:03}.{p:05}", o[0], o[1], o[2], o[3])
            }
            IpAddr::V6(v) => format!("{v}.{p:05}"),
        }
    }
    let tuple = format!("{}-{}", end(src.0, src.1), end(dst.0, dst.1));
    let Zone { vlan, vni, ends } = zone;
    let tagged = match vlan {
        0 => tuple,
        1..=0xfff => format!("{tuple}-v{vlan}"),
        _ => format!("{tuple}-v{}.{}", vlan >> 12, vlan & 0xfff),
    };
    let networked = match vni {
        0 => tagged,
        _ => format!("{tagged}-vni{vni}"),
    };
    match ends {
        0 => networked,
        _ => format!("{networked}-t{}.{:02x}", ends >> 8, ends & 0xff),
    }
}

/// Gives each flow file its name, counting reuses of a tuple.
#[derive(Debug, Default)]
pub struct Namer {
    seen: HashMap<String, u32>,
}

/// What one worker's flow files share: the [`Namer`] (a file takes its
/// name when it first writes) and the count of bytes their buffers hold.
/// One worker's: never contended.
pub type SharedNamer = Arc<FlowShared>;

/// See [`SharedNamer`].
#[derive(Debug)]
pub struct FlowShared {
    names: Mutex<Namer>,
    /// Bytes buffered by the worker's flow files, not written yet.
    held: AtomicUsize,
    budget: usize,
    /// Files no flow file may be ([`FileIds`]).
    inputs: FileIds,
}

/// Files by device and inode: the input captures, which a flow file named
/// like one of them in its directory must not overwrite (a memory-mapped
/// capture must not change while it is read).
pub type FileIds = Arc<[(u64, u64)]>;

/// The device and inode of each of `paths` that exists (none off Unix).
pub fn file_ids(paths: &[PathBuf]) -> FileIds {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        paths
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| (m.dev(), m.ino()))
            .collect()
    }
    #[cfg(not(unix))]
    {
        let _ = paths;
        Arc::new([])
    }
}

impl Default for FlowShared {
    fn default() -> Self {
        FlowShared::with_budget(WORKER_BUFFER_BUDGET)
    }
}

impl FlowShared {
    /// Shared state whose files buffer at most `budget` bytes together.
    pub fn with_budget(budget: usize) -> FlowShared {
        FlowShared {
            names: Mutex::default(),
            held: AtomicUsize::new(0),
            budget,
            inputs: Arc::new([]),
        }
    }

    /// The default budget, and files no flow file may be.
    pub fn protecting(inputs: FileIds) -> FlowShared {
        FlowShared {
            inputs,
            ..FlowShared::default()
        }
    }

    /// Whether `path` is one of the files no flow file may be.
    fn is_input(&self, path: &Path) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            !self.inputs.is_empty()
                && std::fs::metadata(path).is_ok_and(|m| self.inputs.contains(&(m.dev(), m.ino())))
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            false
        }
    }

    /// Bytes the files hold in their buffers now.
    pub fn held(&self) -> usize {
        self.held.load(Relaxed)
    }
}

impl Namer {
    /// Name for this connection's half `src → dst` in `zone`, `c<N>` for
    /// the N-th reuse.
    pub fn name(&mut self, src: (IpAddr, u16), dst: (IpAddr, u16), zone: Zone) -> String {
        let base = flow_name(src, dst, zone);
        let n = self.seen.entry(base.clone()).or_insert(0);
        let name = if *n == 0 { base } else { format!("{base}c{n}") };
        *n += 1;
        name
    }

    /// Names handed out so far, counting reuses once.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

/// Who a flow file is for, until it takes its name.
#[derive(Debug)]
struct Naming {
    dir: Arc<Path>,
    namer: SharedNamer,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    zone: Zone,
}

/// Buffered appends to one flow file.
#[derive(Debug)]
pub struct FlowFile {
    naming: Naming,
    /// Set at the first write: `dir/name`.
    path: Option<PathBuf>,
    buf: Vec<u8>,
    /// First I/O error, reported when the stream completes.
    pub error: Option<std::io::Error>,
}

impl FlowFile {
    /// The flow file of the half-connection `src → dst` in `zone`, in
    /// `dir`: named by `namer` and created on the first write.
    pub fn new(
        dir: Arc<Path>,
        namer: SharedNamer,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        zone: Zone,
    ) -> FlowFile {
        FlowFile {
            naming: Naming {
                dir,
                namer,
                src,
                dst,
                zone,
            },
            path: None,
            buf: Vec::new(),
            error: None,
        }
    }

    /// Appends bytes (dropped once writing failed: the error is reported,
    /// and nothing piles up in memory behind it). Written out at once when
    /// the buffer reaches 64 KiB, or the worker's buffers their budget.
    pub fn write(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.buf.extend_from_slice(bytes);
        let shared = &self.naming.namer;
        let held = shared.held.fetch_add(bytes.len(), Relaxed) + bytes.len();
        if self.buf.len() >= FLUSH_AT || held > shared.budget {
            self.flush();
        }
    }

    /// Writes what is buffered (nothing, and no file, if nothing is) and
    /// frees the buffer.
    pub fn flush(&mut self) {
        if self.error.is_some() || self.buf.is_empty() {
            return;
        }
        let created = self.path.is_some();
        let path = self.path.get_or_insert_with(|| {
            let n = &self.naming;
            let name = n
                .namer
                .names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .name(n.src, n.dst, n.zone);
            n.dir.join(name)
        });
        if !created && self.naming.namer.is_input(path) {
            self.release();
            self.error = Some(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "an input capture has this name: not overwritten",
            ));
            return;
        }
        let res = OpenOptions::new()
            .create(true)
            .append(created)
            .write(true)
            .truncate(!created)
            .open(&*path)
            .and_then(|mut f| f.write_all(&self.buf));
        self.release();
        if let Err(e) = res {
            self.error = Some(e);
        }
    }

    /// The file's path, once it was named (at its first write).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Drops the buffer and its allocation (a connection that lingers, or
    /// writes again much later, holds nothing meanwhile).
    fn release(&mut self) {
        self.naming.namer.held.fetch_sub(self.buf.len(), Relaxed);
        self.buf = Vec::new();
    }
}

impl Drop for FlowFile {
    /// A file dropped unflushed (its stream never completed) gives its
    /// bytes back to the budget.
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same 4-tuple on two VLANs, or in two overlay networks,
    /// is two connections: two names, so neither truncates the other's
    /// file (they may be on two workers).
    #[test]
    fn names_carry_the_vlan_and_the_network() {
        let a = ("10.0.0.1".parse().unwrap(), 40000);
        let b = ("10.0.0.2".parse().unwrap(), 80);
        let flow_name = |a, b, vlan| flow_name(a, b, Zone::vlan(vlan));
        assert_eq!(
            super::flow_name(
                a,
                b,
                Zone {
                    vlan: 42,
                    vni: 7,
                    ends: 0
                }
            ),
            format!("{}-vni7", flow_name(a, b, 42))
        );
        assert_eq!(
            super::flow_name(
                a,
                b,
                Zone {
                    vlan: 0,
                    vni: 5000,
                    ends: 0
                }
            ),
            format!("{}-vni5000", flow_name(a, b, 0))
        );
        assert_eq!(
            super::flow_name(
                a,
                b,
                Zone {
                    vlan: 3,
                    vni: 5,
                    ends: 0x019a
                }
            ),
            format!("{}-vni5-t1.9a", flow_name(a, b, 3))
        );
        assert_eq!(
            flow_name(a, b, 0),
            "010.000.000.001.40000-010.000.000.002.00080"
        );
        assert_eq!(
            flow_name(a, b, 42),
            "010.000.000.001.40000-010.000.000.002.00080-v42"
        );
        assert_eq!(
            flow_name(a, b, 10 << 12 | 20),
            format!("{}-v10.20", flow_name(a, b, 0))
        );
        let mut n = Namer::default();
        let mut name = |vlan, vni| n.name(a, b, Zone { vlan, vni, ends: 0 });
        assert_eq!(name(42, 0), flow_name(a, b, 42));
        assert_eq!(name(0, 0), flow_name(a, b, 0), "another VLAN is no reuse");
        assert_eq!(
            name(0, 3),
            format!("{}-vni3", flow_name(a, b, 0)),
            "nor another network"
        );
        assert_eq!(name(42, 0), format!("{}c1", flow_name(a, b, 42)));
    }

    /// Once a write failed, bytes are dropped rather than held: a full
    /// disk must not turn into a full memory. The error names the file.
    #[test]
    fn a_failed_flow_file_holds_nothing_more() {
        let dir = std::env::temp_dir().join(format!("weft-no-such-{}", std::process::id()));
        let (a, b) = (
            ("10.0.0.1".parse().unwrap(), 1),
            ("10.0.0.2".parse().unwrap(), 2),
        );
        let namer = SharedNamer::default();
        let mut f = FlowFile::new(dir.join("missing").into(), namer, a, b, Zone::default());
        f.write(&vec![1u8; FLUSH_AT]);
        assert!(f.error.is_some(), "the directory does not exist");
        for _ in 0..100 {
            f.write(&vec![2u8; FLUSH_AT]);
        }
        assert!(f.buf.capacity() <= 2 * FLUSH_AT, "{}", f.buf.capacity());
        let path = f.path().expect("named at the first write");
        assert!(path.ends_with(format!("missing/{}", flow_name(a, b, Zone::default()))));
    }

    /// A worker's files together buffer no more than their budget (plus
    /// the write that crosses it), and every byte still reaches its file;
    /// a written buffer's allocation goes, and so does a dropped file's
    /// count.
    #[test]
    fn a_workers_files_buffer_within_their_budget() {
        let dir: std::sync::Arc<Path> = std::env::temp_dir()
            .join(format!("weft-budget-{}", std::process::id()))
            .into();
        std::fs::create_dir_all(&dir).unwrap();
        let shared: SharedNamer = Arc::new(FlowShared::with_budget(100_000));
        let mut files: Vec<FlowFile> = (0..50u16)
            .map(|p| {
                let (a, b) = (
                    ("10.0.0.1".parse().unwrap(), p),
                    ("10.0.0.2".parse().unwrap(), 80),
                );
                FlowFile::new(dir.clone(), shared.clone(), a, b, Zone::default())
            })
            .collect();
        for round in 0..8u8 {
            for f in &mut files {
                f.write(&[round; 3_000]);
                assert!(shared.held() <= 100_000 + 3_000, "{}", shared.held());
            }
        }
        assert!(
            files.iter().any(|f| f.buf.capacity() == 0),
            "written buffers are freed"
        );
        for f in &mut files[..25] {
            f.flush();
        }
        drop(files.split_off(25));
        assert_eq!(shared.held(), 0);
        for f in &files {
            let bytes = std::fs::read(f.path().expect("written")).unwrap();
            assert_eq!(bytes.len(), 8 * 3_000);
        }
        let _ = std::fs::remove_dir_all(&*dir);
    }

    /// A file takes its name at its first write: one that never writes
    /// creates nothing and takes no name (the table does not grow with
    /// connections that deliver nothing, as in a SYN flood), and reuse
    /// numbers count only the files written, in the order they are.
    #[test]
    fn files_are_named_at_their_first_write() {
        let dir: std::sync::Arc<Path> = std::env::temp_dir()
            .join(format!("weft-names-{}", std::process::id()))
            .into();
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (
            ("10.0.0.1".parse().unwrap(), 1),
            ("10.0.0.2".parse().unwrap(), 2),
        );
        let namer = SharedNamer::default();
        let file = || FlowFile::new(dir.clone(), namer.clone(), a, b, Zone::default());
        let mut silent: Vec<FlowFile> = (0..1000).map(|_| file()).collect();
        for f in &mut silent {
            f.flush();
            assert!(f.path().is_none());
        }
        assert_eq!(
            namer.names.lock().unwrap().len(),
            0,
            "no names for silent files"
        );
        let (mut first, mut second) = (file(), file());
        second.write(b"second");
        second.flush();
        first.write(b"first");
        first.flush();
        let base = flow_name(a, b, Zone::default());
        assert_eq!(second.path(), Some(&*dir.join(&base)));
        assert_eq!(first.path(), Some(&*dir.join(format!("{base}c1"))));
        assert_eq!(std::fs::read(dir.join(&base)).unwrap(), b"second");
        assert_eq!(namer.names.lock().unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&*dir);
    }
}
