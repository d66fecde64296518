//! `weft-gen`: write a synthetic TCP trace (pcap) and its ground truth.

#![forbid(unsafe_code)]

use std::fs::File;
use std::io;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use weft_gen::{generate, GenConfig, Hostile};

/// Synthetic TCP traffic with exact ground truth (pcap + digest lines).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Pcap output file (`-`: standard output).
    #[arg(short, long, default_value = "-")]
    out: PathBuf,
    /// Truth file (digest lines; first-wins under --hostile conflict).
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Last-wins truth file (differs from --truth only with --hostile conflict).
    #[arg(long)]
    truth_last: Option<PathBuf>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Connections in the trace.
    #[arg(long, default_value_t = 100)]
    conns: u64,
    /// Connections open at once.
    #[arg(long, default_value_t = 10)]
    concurrent: usize,
    /// Smallest message (request or response), bytes.
    #[arg(long, default_value_t = 1)]
    min_bytes: u32,
    /// Largest message, bytes.
    #[arg(long, default_value_t = 10_000)]
    max_bytes: u32,
    /// Most request/response exchanges per connection (each makes 1..=N).
    #[arg(long, default_value_t = 3)]
    exchanges: u32,
    /// Fraction of connections closed by RST instead of FINs.
    #[arg(long, default_value_t = 0.1)]
    rst_fraction: f64,
    /// Fraction of connections closed by FINs whose first FIN rides on the
    /// last data segment of a final message.
    #[arg(long, default_value_t = 0.0)]
    fin_data: f64,
    /// Fraction of connections whose SYN carries the first request bytes
    /// (TCP Fast Open).
    #[arg(long, default_value_t = 0.0)]
    syn_data: f64,
    /// Every segment carries the TCP timestamp option, TSval in the order
    /// its sender sent it (for PAWS checks; not with --overlap).
    #[arg(long)]
    timestamps: bool,
    /// Fraction of connections over IPv6.
    #[arg(long, default_value_t = 0.1)]
    ipv6_fraction: f64,
    /// Draw 4-tuples from a pool of N, so later connections reuse them (0: no pool).
    #[arg(long, default_value_t = 0)]
    tuple_pool: u32,
    /// Fraction of connections with an 802.1Q tag.
    #[arg(long, default_value_t = 0.1)]
    vlan_fraction: f64,
    /// Fraction of connections carried in a tunnel (VXLAN, Geneve or GTP-U
    /// over IPv4/UDP, one per connection).
    #[arg(long, default_value_t = 0.0)]
    tunnel_fraction: f64,
    /// VXLAN and Geneve connections draw their network from 1..=N, and a
    /// 4-tuple may be open in two networks at once (0: all in network 42).
    #[arg(long, default_value_t = 0)]
    networks: u32,
    /// Fraction of directions whose ISN is within 8 KiB below 2^32.
    #[arg(long, default_value_t = 0.1)]
    wrap_fraction: f64,
    /// Payload bytes per full segment.
    #[arg(long, default_value_t = 1448)]
    mss: u16,
    /// Mean gap between packets, nanoseconds.
    #[arg(long, default_value_t = 5000)]
    gap_ns: u64,
    /// Move each timestamp by up to this many nanoseconds either way (they
    /// then go back now and then, as in merged captures).
    #[arg(long, default_value_t = 0)]
    jitter_ns: u64,
    /// Nanosecond pcap timestamps.
    #[arg(long)]
    nanos: bool,
    /// Fraction of data segments reordered.
    #[arg(long, default_value_t = 0.0)]
    reorder: f64,
    /// How many segments later a reordered segment may go.
    #[arg(long, default_value_t = 4)]
    reorder_window: u32,
    /// Fraction of data segments duplicated.
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    /// Fraction of data segments retransmitted overlapping their neighbours.
    #[arg(long, default_value_t = 0.0)]
    overlap: f64,
    /// Fraction of data segments sent with URG and an urgent pointer (the
    /// truth keeps urgent bytes inline).
    #[arg(long, default_value_t = 0.0)]
    urgent: f64,
    /// Fraction of data segments lost by the capture (ACKed by the receiver).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Hostile traffic: conflict, rexmit, ooo-flood, syn-flood, tiny-segments, huge-window.
    #[arg(long)]
    hostile: Option<Hostile>,
    /// Fraction of connections that are hostile.
    #[arg(long, default_value_t = 1.0)]
    hostile_fraction: f64,
    /// Out-of-order segments per ooo-flood connection.
    #[arg(long, default_value_t = 100_000)]
    flood_segments: u64,
}

impl Args {
    fn config(&self) -> GenConfig {
        GenConfig {
            seed: self.seed,
            conns: self.conns,
            concurrent: self.concurrent,
            min_bytes: self.min_bytes,
            max_bytes: self.max_bytes,
            exchanges: self.exchanges,
            rst_fraction: self.rst_fraction,
            fin_data: self.fin_data,
            syn_data: self.syn_data,
            timestamps: self.timestamps,
            ipv6_fraction: self.ipv6_fraction,
            tuple_pool: self.tuple_pool,
            vlan_fraction: self.vlan_fraction,
            tunnel_fraction: self.tunnel_fraction,
            networks: self.networks,
            wrap_fraction: self.wrap_fraction,
            mss: self.mss,
            gap_ns: self.gap_ns,
            jitter_ns: self.jitter_ns,
            nanos: self.nanos,
            reorder: self.reorder,
            reorder_window: self.reorder_window,
            duplicate: self.duplicate,
            overlap: self.overlap,
            urgent: self.urgent,
            loss: self.loss,
            hostile: self.hostile,
            hostile_fraction: self.hostile_fraction,
            flood_segments: self.flood_segments,
            ..GenConfig::default()
        }
    }
}

fn create(path: &PathBuf) -> anyhow::Result<File> {
    File::create(path).with_context(|| format!("creating {}", path.display()))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg = args.config();
    cfg.validate()?;
    let truth = if args.out.as_os_str() == "-" {
        generate(&cfg, io::stdout().lock()).context("writing the pcap to stdout")?
    } else {
        let f = create(&args.out)?;
        generate(&cfg, f).with_context(|| format!("writing {}", args.out.display()))?
    };
    if let Some(p) = &args.truth {
        truth
            .write_to(create(p)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &args.truth_last {
        truth
            .write_last_to(create(p)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    eprintln!("weft-gen: {}", truth.summary());
    Ok(())
}
