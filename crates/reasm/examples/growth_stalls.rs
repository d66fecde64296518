//! The longest any one segment waits while the connection table grows:
//! opens N connections (default 2,000,000, one SYN each, nothing ever
//! closed) on one reassembler and reports the slowest segment.
//!
//! A live worker's ring holds about a millisecond of its traffic, so a
//! segment that takes tens of milliseconds (the table doubling at once)
//! means dropped frames behind it. README quotes this example's figures.
//!
//! ```text
//! cargo run --release -p weft-reasm --example growth_stalls -- 2000000
//! ```

use std::net::IpAddr;
use std::time::{Duration, Instant};

use weft_reasm::{
    Config, ConnInfo, Context, Reassembler, ScatterGather, Segment, Stream, StreamFactory,
};
use weft_wire::{FlowKey, Seq, TcpFlags, Timestamp};

struct Sink;
impl Stream for Sink {
    fn reassembled(&mut self, _: &mut ScatterGather<'_>, _: &Context) {}
}
struct Factory;
impl StreamFactory for Factory {
    type Stream = Sink;
    fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Sink {
        Sink
    }
}

fn main() {
    let n: u32 = match std::env::args().nth(1).map(|v| v.parse()) {
        None => 2_000_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("usage: growth_stalls [CONNECTIONS]: {e}");
            std::process::exit(2);
        }
    };
    let cfg = Config {
        max_conns: 0, // no limit: the table only grows
        ..Config::default()
    };
    let mut r = Reassembler::new(cfg, Factory);
    let server = IpAddr::from([192, 168, 0, 1]);
    let (mut worst, mut worst_at, mut over_1ms) = (Duration::ZERO, 0, 0);
    let start = Instant::now();
    for i in 0..n {
        let client = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        let (key, dir) = FlowKey::new(client, 1024 + (i % 60000) as u16, server, 80, 0);
        let ts = Timestamp(1_000_000_000 + u64::from(i) * 1000);
        let syn = Segment::new(key, dir, Seq(i), TcpFlags::SYN, b"", ts);
        let t = Instant::now();
        r.process(&syn);
        let took = t.elapsed();
        if took > Duration::from_millis(1) {
            over_1ms += 1;
        }
        if took > worst {
            (worst, worst_at) = (took, i);
        }
    }
    println!(
        "{} connections in {:.3} s; slowest segment {:.2} ms (connection {worst_at}); \
         {over_1ms} segments over 1 ms",
        r.stats().conns_created,
        start.elapsed().as_secs_f64(),
        worst.as_secs_f64() * 1e3,
    );
}
