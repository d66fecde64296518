//! `--config FILE`: the engine and reassembler options, in TOML.
//!
//! ```toml
//! workers = 2            # 0 = inline
//! pin = true
//! ring_capacity = 4096
//! batch = 64
//! backpressure = "block" # or "drop"
//! dispatch_hash = "toeplitz" # or "keyed": flows cannot be aimed at one worker
//! dispatch = "auto"      # or "ring", "fanout" or "hybrid" (see `Dispatch`)
//! table_weights = [2, 5] # each worker's share of the flows (default: equal;
//!                        # hybrid: 2 for the dispatcher's worker, 5 for each other)
//! verify_checksums = false
//! drop_bad_checksums = false
//! drop_short_on_wire = false # frames recorded whole but short of their IP length
//! decode_tunnels = true  # IP-in-IP, 6in4, GRE, VXLAN, Geneve, GTP-U
//! vxlan_port = 4789      # 0: not VXLAN
//! geneve_port = 6081     # 0: not Geneve
//! gtpu_port = 2152       # 0: not GTP-U
//! key_vni = true         # VXLAN/Geneve/NVGRE network in the flow key
//! key_tunnel_ends = true # the innermost tunnel's outer addresses in the flow key
//! accept_source_routed = false # take source-routed packets (hosts refuse them)
//! take_zero_ip_length = true # an IP length of 0 is the frame's (false: refuse it)
//! vxlan_udp6_zero_csum_rx = false # with checksums verified, VXLAN over IPv6 with a
//!                        # zero UDP checksum is bad (true: as udp6zerocsumrx takes it)
//!
//! [reassembly]
//! overlap_policy = "first"
//! urgent = "inline"      # or "oob": the urgent byte leaves the stream
//! midstream = true
//! skip_acked_holes = true
//! max_pages = 262144
//! max_pages_per_conn = 8192
//! memcap = "1GiB"        # or a number of bytes
//! max_kept = "1MiB"      # bytes a handler may keep per direction; 0 = no limit
//! retransmit_check = 0   # delivered bytes kept per direction to compare
//!                        # retransmissions with ("64KiB"); 0 = off
//! depth = 0              # bytes reassembled per direction ("1MiB"); 0 = all
//! max_conns = 1048576
//! flush_timeout = "10s"  # or "off"
//! idle_timeout = "1h"
//! linger = "30s"
//! max_window = 1073741824
//! rst_window = 1048576
//! paws = false           # refuse segments with old timestamps (RFC 7323)
//! window_check = false   # refuse data past the receiver's window
//!
//! [defrag]
//! policy = "first"       # IPv4 overlaps: first, last, bsd, linux, windows,
//!                        # solaris or discard (IPv6: RFC 5722, or Linux's
//!                        # rules under discard)
//! max_datagrams = 4096   # in progress at once; 0: fragments are dropped, counted
//! memcap = "16MiB"       # buffered fragment bytes (at least 4 KiB)
//! timeout = "30s"        # after an IPv4 datagram's first fragment
//! ipv6_timeout = "60s"   # after an IPv6 one's
//!
//! [[host]]               # target-based: the policies of the hosts behind
//! net = "10.1.0.0/16"    # (the longest network naming a host wins)
//! overlap_policy = "linux" # TCP data sent to them
//! defrag_policy = "linux"  # datagrams sent to them
//! ```

use serde::Deserialize;
use weft_engine::{Backpressure, DispatchHash, PipelineConfig};
use weft_reasm::{OverlapPolicy, UrgentPolicy};

use crate::output::OutputOptions;

/// The file's contents; every field optional (defaults apply).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Worker threads (0: inline).
    pub workers: Option<usize>,
    /// Pin workers to cores.
    pub pin: Option<bool>,
    /// Ring slots per worker.
    pub ring_capacity: Option<usize>,
    /// Frames per batch (with drop backpressure, at most half a ring).
    pub batch: Option<usize>,
    /// `block` or `drop`.
    pub backpressure: Option<String>,
    /// `toeplitz` or `keyed`.
    pub dispatch_hash: Option<String>,
    /// `auto`, `ring`, `fanout` or `hybrid`.
    pub dispatch: Option<String>,
    /// Each worker's weight in the indirection table.
    pub table_weights: Option<Vec<u32>>,
    /// A packet filter: a file of the text `tcpdump -ddd` prints, its path
    /// relative to this file's directory (see `--bpf`, which wins).
    pub bpf: Option<std::path::PathBuf>,
    /// Verify IPv4 and TCP checksums.
    pub verify_checksums: Option<bool>,
    /// Drop segments and IPv4 fragments with bad checksums (verifies
    /// them too).
    pub drop_bad_checksums: Option<bool>,
    /// Drop frames recorded whole whose IP length promises more.
    pub drop_short_on_wire: Option<bool>,
    /// Decode through tunnels.
    pub decode_tunnels: Option<bool>,
    /// The UDP port taken as VXLAN (0: none).
    pub vxlan_port: Option<u16>,
    /// The UDP port taken as Geneve (0: none).
    pub geneve_port: Option<u16>,
    /// The UDP port taken as GTP-U (0: none).
    pub gtpu_port: Option<u16>,
    /// The overlay network in the flow key.
    pub key_vni: Option<bool>,
    /// The innermost tunnel's outer addresses in the flow key.
    pub key_tunnel_ends: Option<bool>,
    /// Take source-routed packets.
    pub accept_source_routed: Option<bool>,
    /// An IP length of 0 is the frame's.
    pub take_zero_ip_length: Option<bool>,
    /// VXLAN over IPv6 with a zero UDP checksum is taken (as a Linux
    /// VXLAN device made with `udp6zerocsumrx`).
    pub vxlan_udp6_zero_csum_rx: Option<bool>,
    /// Reassembler options.
    #[serde(default)]
    pub reassembly: Reassembly,
    /// IP defragmentation options.
    #[serde(default)]
    pub defrag: Defrag,
    /// The policies of the hosts behind the sensor, by network.
    #[serde(default)]
    pub host: Vec<Host>,
}

/// A `[[host]]` entry: the policies of the hosts of one network.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// `ADDRESS/LENGTH`, or one address.
    pub net: String,
    /// How these hosts resolve overlapping TCP data sent to them.
    pub overlap_policy: Option<String>,
    /// How they rebuild overlapping IPv4 fragments sent to them.
    pub defrag_policy: Option<String>,
}

/// The `[defrag]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defrag {
    /// Which bytes win where IPv4 fragments overlap.
    pub policy: Option<String>,
    /// Datagrams in progress at once.
    pub max_datagrams: Option<usize>,
    /// Buffered fragment bytes ("16MiB" or a number).
    pub memcap: Option<toml::Value>,
    /// Time after an IPv4 datagram's first fragment ("30s").
    pub timeout: Option<String>,
    /// Time after an IPv6 datagram's first fragment ("60s").
    pub ipv6_timeout: Option<String>,
}

/// The `[reassembly]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reassembly {
    /// Overlap policy name.
    pub overlap_policy: Option<String>,
    /// Urgent policy name ("inline" or "oob").
    pub urgent: Option<String>,
    /// Midstream pickup.
    pub midstream: Option<bool>,
    /// Skip holes the receiver acknowledged.
    pub skip_acked_holes: Option<bool>,
    /// Total pages.
    pub max_pages: Option<usize>,
    /// Pages per connection.
    pub max_pages_per_conn: Option<usize>,
    /// Byte memcap ("512MiB" or a number).
    pub memcap: Option<toml::Value>,
    /// Bytes a handler may keep per direction ("1MiB" or a number).
    pub max_kept: Option<toml::Value>,
    /// Delivered bytes kept per direction to compare retransmissions
    /// with ("64KiB" or a number; 0: off).
    pub retransmit_check: Option<toml::Value>,
    /// Bytes reassembled per direction ("1MiB" or a number; 0: all).
    pub depth: Option<toml::Value>,
    /// Connections at once.
    pub max_conns: Option<usize>,
    /// Flush timeout ("10s", "500ms", "off").
    pub flush_timeout: Option<String>,
    /// Idle timeout.
    pub idle_timeout: Option<String>,
    /// Linger of closed connections.
    pub linger: Option<String>,
    /// Farthest buffered distance.
    pub max_window: Option<u32>,
    /// Acceptable RST distance.
    pub rst_window: Option<u32>,
    /// PAWS: refuse segments with old timestamps.
    pub paws: Option<bool>,
    /// Refuse data past the receiver's advertised window.
    pub window_check: Option<bool>,
}

/// The smallest `[defrag] memcap`: a few small datagrams in progress (each
/// costs its bytes and about 200 bytes of bookkeeping).
const MIN_DEFRAG_MEMCAP: usize = 4096;

/// Parses "1GiB", "512MiB", "64KiB", "1000000", "2G", "10M".
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(format!("bad size unit in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} too large"))
}

/// A memcap below one page would let nothing out of order wait: every
/// such byte dropped. 0 is no limit.
pub fn check_memcap(memcap: usize) -> Result<(), String> {
    if memcap != 0 && memcap < weft_reasm::HeapPool::DEFAULT_PAGE_SIZE {
        return Err(format!(
            "memcap {memcap} is below one page ({} bytes): nothing out of order could wait; 0 is no limit",
            weft_reasm::HeapPool::DEFAULT_PAGE_SIZE
        ));
    }
    Ok(())
}

/// A timeout that, at zero, would end every connection at once: "off" or
/// above zero.
fn timeout(name: &str, s: &str) -> Result<Option<u64>, String> {
    match parse_duration(s)? {
        Some(0) => Err(format!(
            "{name} of zero would end every connection at once; use \"off\" for none"
        )),
        t => Ok(t),
    }
}

/// A size given as a number of bytes or a string such as "64MiB".
fn size_value(name: &str, v: &toml::Value) -> Result<usize, String> {
    match v {
        toml::Value::Integer(n) if *n >= 0 => Ok(*n as usize),
        toml::Value::String(s) => parse_size(s),
        other => Err(format!("{name}: expected a size, got {other}")),
    }
}

/// Parses "10s", "500ms", "2m", "1h", "250us", or "off" (`None`).
pub fn parse_duration(s: &str) -> Result<Option<u64>, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let ns: u64 = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" | "" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(format!("bad duration unit in {s:?}")),
    };
    n.checked_mul(ns)
        .map(Some)
        .ok_or_else(|| format!("duration {s:?} too large"))
}

/// How frames reach the workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dispatch {
    /// `fanout` where it can run and is not asked to do something only
    /// rings do (every capture memory-mapped, no pacing, blocking
    /// backpressure, at least one worker); otherwise `hybrid` where no
    /// core is left for a dispatcher thread (as many workers as cores or
    /// more; again no pacing, blocking backpressure); `ring` otherwise.
    #[default]
    Auto,
    /// A dispatcher on the main thread reads the captures and hands each
    /// frame to its flow's worker through an SPSC ring.
    Ring,
    /// Every worker reads the whole capture itself and keeps the frames of
    /// its own flows ([`weft_engine::EngineBuilder::fanout`]): no
    /// dispatcher thread, no rings. Needs memory-mapped captures.
    Fanout,
    /// As `ring`, but the main thread is also worker 0
    /// ([`weft_engine::EngineBuilder::dispatcher_works`]), with a smaller
    /// share of the flows: `n` workers keep `n` threads busy, not `n + 1`.
    /// For captures that cannot be mapped (standard input, `--no-map`)
    /// on a machine with no core to spare.
    Hybrid,
}

impl std::str::FromStr for Dispatch {
    type Err = String;
    fn from_str(s: &str) -> Result<Dispatch, String> {
        match s {
            "auto" => Ok(Dispatch::Auto),
            "ring" => Ok(Dispatch::Ring),
            "fanout" => Ok(Dispatch::Fanout),
            "hybrid" => Ok(Dispatch::Hybrid),
            _ => Err(format!(
                "dispatch must be auto, ring, fanout or hybrid, not {s:?}"
            )),
        }
    }
}

/// Engine shape from the file (CLI flags override it afterwards).
#[derive(Clone, Debug)]
pub struct EngineShape {
    /// Workers (0: inline); `None`: one per core.
    pub workers: Option<usize>,
    /// Pin to cores.
    pub pin: bool,
    /// Ring slots.
    pub ring_capacity: usize,
    /// Batch size.
    pub batch: usize,
    /// Backpressure.
    pub backpressure: Backpressure,
    /// How flows are hashed to workers.
    pub dispatch_hash: DispatchHash,
    /// How frames reach the workers.
    pub dispatch: Dispatch,
    /// Each worker's weight in the indirection table (`None`: equal, or
    /// the dispatcher's lighter share in `hybrid`); without `workers`,
    /// also how many workers; ignored inline.
    pub table_weights: Option<Vec<u32>>,
}

impl Default for EngineShape {
    fn default() -> Self {
        EngineShape {
            workers: None,
            pin: true,
            ring_capacity: 4096,
            batch: 64,
            backpressure: Backpressure::Block,
            dispatch_hash: DispatchHash::Toeplitz,
            dispatch: Dispatch::Auto,
            table_weights: None,
        }
    }
}

impl ConfigFile {
    /// Reads and parses a TOML file.
    pub fn load(path: &std::path::Path) -> Result<ConfigFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Applies the file onto a pipeline configuration, engine shape and
    /// stream outputs.
    pub fn apply(
        &self,
        p: &mut PipelineConfig,
        e: &mut EngineShape,
        o: &mut OutputOptions,
    ) -> Result<(), String> {
        if let Some(w) = self.workers {
            e.workers = Some(w);
        }
        e.pin = self.pin.unwrap_or(e.pin);
        e.ring_capacity = self.ring_capacity.unwrap_or(e.ring_capacity);
        e.batch = self.batch.unwrap_or(e.batch);
        if e.ring_capacity == 0 || e.batch == 0 {
            return Err("ring_capacity and batch must be at least 1".into());
        }
        if let Some(b) = &self.backpressure {
            e.backpressure = match b.as_str() {
                "block" => Backpressure::Block,
                "drop" => Backpressure::Drop,
                _ => return Err(format!("backpressure must be block or drop, not {b:?}")),
            };
        }
        if let Some(h) = &self.dispatch_hash {
            e.dispatch_hash = match h.as_str() {
                "toeplitz" => DispatchHash::Toeplitz,
                "keyed" => DispatchHash::Keyed,
                _ => {
                    return Err(format!(
                        "dispatch_hash must be toeplitz or keyed, not {h:?}"
                    ))
                }
            };
        }
        if let Some(d) = &self.dispatch {
            e.dispatch = d.parse()?;
        }
        if let Some(w) = &self.table_weights {
            if w.is_empty() {
                return Err("table_weights needs one weight per worker, not none".into());
            }
            e.table_weights = Some(w.clone());
        }
        p.decode.verify_checksums = self.verify_checksums.unwrap_or(p.decode.verify_checksums);
        p.drop_bad_checksums = self.drop_bad_checksums.unwrap_or(p.drop_bad_checksums);
        p.drop_short_on_wire = self.drop_short_on_wire.unwrap_or(p.drop_short_on_wire);
        let d = &mut p.decode;
        d.decode_tunnels = self.decode_tunnels.unwrap_or(d.decode_tunnels);
        d.vxlan_port = self.vxlan_port.unwrap_or(d.vxlan_port);
        d.geneve_port = self.geneve_port.unwrap_or(d.geneve_port);
        d.gtpu_port = self.gtpu_port.unwrap_or(d.gtpu_port);
        d.key_vni = self.key_vni.unwrap_or(d.key_vni);
        d.key_tunnel_ends = self.key_tunnel_ends.unwrap_or(d.key_tunnel_ends);
        d.accept_source_routed = self.accept_source_routed.unwrap_or(d.accept_source_routed);
        d.take_zero_ip_length = self.take_zero_ip_length.unwrap_or(d.take_zero_ip_length);
        d.vxlan_udp6_zero_csum_rx = self
            .vxlan_udp6_zero_csum_rx
            .unwrap_or(d.vxlan_udp6_zero_csum_rx);
        let r = &self.reassembly;
        let c = &mut p.reasm;
        if let Some(s) = &r.overlap_policy {
            c.overlap_policy = s.parse::<OverlapPolicy>().map_err(|e| e.to_string())?;
        }
        if let Some(s) = &r.urgent {
            c.urgent = s.parse::<UrgentPolicy>().map_err(|e| e.to_string())?;
        }
        c.midstream = r.midstream.unwrap_or(c.midstream);
        o.paws = r.paws.unwrap_or(o.paws);
        o.window_check = r.window_check.unwrap_or(o.window_check);
        c.skip_acked_holes = r.skip_acked_holes.unwrap_or(c.skip_acked_holes);
        c.max_pages = r.max_pages.unwrap_or(c.max_pages);
        c.max_pages_per_conn = r.max_pages_per_conn.unwrap_or(c.max_pages_per_conn);
        c.max_conns = r.max_conns.unwrap_or(c.max_conns);
        c.max_window = r.max_window.unwrap_or(c.max_window);
        c.rst_window = r.rst_window.unwrap_or(c.rst_window);
        if let Some(m) = &r.memcap {
            c.memcap = size_value("memcap", m)?;
        }
        if let Some(m) = &r.max_kept {
            c.max_kept_bytes = size_value("max_kept", m)?;
        }
        if let Some(m) = &r.retransmit_check {
            c.retransmit_check = size_value("retransmit_check", m)?;
        }
        if let Some(m) = &r.depth {
            c.depth = size_value("depth", m)? as u64;
        }
        if let Some(t) = &r.flush_timeout {
            c.flush_timeout_ns = timeout("flush_timeout", t)?;
        }
        if let Some(t) = &r.idle_timeout {
            c.idle_timeout_ns = timeout("idle_timeout", t)?;
        }
        if let Some(t) = &r.linger {
            c.linger_ns = parse_duration(t)?.unwrap_or(0);
        }
        let (f, d) = (&self.defrag, &mut p.defrag);
        if let Some(s) = &f.policy {
            d.policy = s.parse()?;
        }
        d.max_datagrams = f.max_datagrams.unwrap_or(d.max_datagrams);
        if let Some(m) = &f.memcap {
            d.max_bytes = size_value("defrag memcap", m)?;
            if d.max_bytes < MIN_DEFRAG_MEMCAP {
                return Err(format!(
                    "defrag memcap {} is below {MIN_DEFRAG_MEMCAP} bytes: it would drop \
                     nearly every fragment (there is no \"no limit\"; max_datagrams = 0 \
                     turns defragmentation off)",
                    d.max_bytes
                ));
            }
        }
        for h in &self.host {
            let net: weft_wire::IpNet = h.net.parse()?;
            if h.overlap_policy.is_none() && h.defrag_policy.is_none() {
                return Err(format!("[[host]] {net} names no policy"));
            }
            if let Some(s) = &h.overlap_policy {
                let policy = s.parse::<OverlapPolicy>().map_err(|e| e.to_string())?;
                p.reasm.overlap_by_host.insert(net, policy);
            }
            if let Some(s) = &h.defrag_policy {
                d.policy_by_host.insert(net, s.parse()?);
            }
        }
        let timeout = |t: &str| match parse_duration(t)? {
            Some(ns) if ns > 0 => Ok(ns),
            _ => Err(format!("defrag timeouts must be above zero, not {t:?}")),
        };
        if let Some(t) = &f.timeout {
            d.timeout_ns = timeout(t)?;
        }
        if let Some(t) = &f.ipv6_timeout {
            d.ipv6_timeout_ns = timeout(t)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("12"), Ok(12));
        assert!(parse_size("12 parsecs").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Some(500_000_000)));
        assert_eq!(parse_duration("off"), Ok(None));
        assert_eq!(parse_duration("1h"), Ok(Some(3_600_000_000_000)));
    }

    #[test]
    fn file_applies_and_rejects_unknown_keys() {
        let f: ConfigFile = toml::from_str(
            "workers = 3\nbackpressure = \"drop\"\ndispatch_hash = \"keyed\"\ndispatch = \"ring\"\ngeneve_port = 7000\nvxlan_port = 0\ngtpu_port = 0\n[reassembly]\noverlap_policy = \"linux\"\nmemcap = \"64MiB\"\nmax_kept = 4096\nretransmit_check = \"8KiB\"\ndepth = \"1MiB\"\nflush_timeout = \"off\"\n",
        )
        .unwrap();
        let (mut p, mut e) = (PipelineConfig::default(), EngineShape::default());
        let mut o = OutputOptions::default();
        f.apply(&mut p, &mut e, &mut o).unwrap();
        assert!(!o.paws);
        assert!(p.decode.key_vni);
        assert!(p.decode.key_tunnel_ends);
        assert!(!p.decode.accept_source_routed);
        assert!(p.decode.take_zero_ip_length);
        assert_eq!(e.workers, Some(3));
        assert_eq!(e.backpressure, Backpressure::Drop);
        assert_eq!(e.dispatch_hash, DispatchHash::Keyed);
        assert_eq!(e.dispatch, Dispatch::Ring);
        assert_eq!((p.decode.geneve_port, p.decode.vxlan_port), (7000, 0));
        assert_eq!(p.decode.gtpu_port, 0);
        assert!(p.decode.decode_tunnels);
        assert!(toml::from_str::<ConfigFile>("dispatch = \"both\"")
            .unwrap()
            .apply(&mut p, &mut e, &mut o)
            .is_err());
        toml::from_str::<ConfigFile>(
            "key_vni = false\nkey_tunnel_ends = false\naccept_source_routed = true\ntake_zero_ip_length = false\nvxlan_udp6_zero_csum_rx = true\ntable_weights = [2, 5, 5]\ndispatch = \"hybrid\"\n[reassembly]\npaws = true\nurgent = \"oob\"\nwindow_check = true",
        )
        .unwrap()
        .apply(&mut p, &mut e, &mut o)
        .unwrap();
        assert!(o.paws && o.window_check);
        assert_eq!(p.reasm.urgent, UrgentPolicy::OutOfBand);
        assert_eq!(e.table_weights, Some(vec![2, 5, 5]));
        assert_eq!(e.dispatch, Dispatch::Hybrid);
        assert!(!p.decode.key_vni);
        assert!(p.decode.accept_source_routed);
        assert!(!p.decode.take_zero_ip_length);
        assert!(p.decode.vxlan_udp6_zero_csum_rx);
        assert!(!p.decode.key_tunnel_ends);
        assert_eq!(p.reasm.overlap_policy, OverlapPolicy::Linux);
        assert_eq!(p.reasm.memcap, 64 << 20);
        assert_eq!(p.reasm.max_kept_bytes, 4096);
        assert_eq!(p.reasm.retransmit_check, 8192);
        assert_eq!(p.reasm.depth, 1 << 20);
        assert_eq!(p.reasm.flush_timeout_ns, None);
        assert!(toml::from_str::<ConfigFile>("wrokers = 1").is_err());
        assert_eq!(p.defrag, weft_wire::DefragConfig::default());
        assert!(!p.drop_short_on_wire);
        toml::from_str::<ConfigFile>(
            "drop_short_on_wire = true\n[defrag]\nipv6_timeout = \"90s\"\npolicy = \"bsd\"\nmax_datagrams = 9\nmemcap = \"1MiB\"\ntimeout = \"60s\"",
        )
        .unwrap()
        .apply(&mut p, &mut e, &mut o)
        .unwrap();
        assert!(p.drop_short_on_wire);
        let d = p.defrag.clone();
        assert_eq!(
            (d.policy, d.max_datagrams),
            (weft_wire::DefragPolicy::Bsd, 9)
        );
        assert_eq!((d.max_bytes, d.timeout_ns), (1 << 20, 60_000_000_000));
        assert_eq!(d.ipv6_timeout_ns, 90_000_000_000);
        for bad in [
            "memcap = 0",
            "memcap = 4095",
            "policy = \"vista\"",
            "timeout = \"off\"",
            "timeout = \"0s\"",
            "ipv6_timeout = \"off\"",
        ] {
            let f = toml::from_str::<ConfigFile>(&format!("[defrag]\n{bad}")).unwrap();
            assert!(f.apply(&mut p, &mut e, &mut o).is_err(), "{bad}");
        }
        toml::from_str::<ConfigFile>(concat!(
            "[[host]]\nnet = \"10.1.0.0/16\"\noverlap_policy = \"last\"\ndefrag_policy = \"bsd\"\n",
            "[[host]]\nnet = \"2001:db8::1\"\noverlap_policy = \"windows\"\n",
        ))
        .unwrap()
        .apply(&mut p, &mut e, &mut o)
        .unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(p.reasm.policy_for(ip("10.1.2.3")), OverlapPolicy::Last);
        assert_eq!(
            p.reasm.policy_for(ip("2001:db8::1")),
            OverlapPolicy::Windows
        );
        assert_eq!(p.reasm.policy_for(ip("10.2.0.1")), OverlapPolicy::Linux);
        let bsd = weft_wire::DefragPolicy::Bsd;
        assert_eq!(p.defrag.policy_for(ip("10.1.2.3")), bsd);
        assert_eq!(p.defrag.policy_for(ip("10.2.0.1")), p.defrag.policy);
        for bad in [
            "[[host]]\nnet = \"10.0.0.0/40\"\noverlap_policy = \"last\"",
            "[[host]]\nnet = \"10.0.0.0/8\"",
            "[[host]]\nnet = \"10.0.0.0/8\"\ndefrag_policy = \"vista\"",
        ] {
            let f = toml::from_str::<ConfigFile>(bad).unwrap();
            assert!(f.apply(&mut p, &mut e, &mut o).is_err(), "{bad}");
        }
        assert!(toml::from_str::<ConfigFile>("[[host]]\nnet = \"::/0\"\nos = 1").is_err());
    }
}
