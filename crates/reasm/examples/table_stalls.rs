//! The longest any one segment waits while the connection table grows and
//! shrinks: opens N connections (default 2,000,000, one SYN each) on one
//! reassembler, closes all but ten (one RST each), then, past the idle
//! timeout, opens 10,000 more (each check for idle connections meets the
//! entries the closed ones left), and reports the slowest segment of each
//! phase.
//!
//! A live worker's ring holds about a millisecond of its traffic, so a
//! segment that takes tens of milliseconds (the table doubling at once, or
//! rebuilding a structure when it shrinks) means dropped frames behind it.
//! README quotes this example's figures.
//!
//! ```text
//! cargo run --release -p weft-reasm --example table_stalls -- 2000000
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

/// The slowest segment of a phase, where it came, and how many took over
/// a millisecond.
#[derive(Default)]
struct Slowest {
    took: Duration,
    at: u32,
    over_1ms: u32,
}

impl Slowest {
    fn note(&mut self, took: Duration, at: u32) {
        if took > Duration::from_millis(1) {
            self.over_1ms += 1;
        }
        if took > self.took {
            (self.took, self.at) = (took, at);
        }
    }
}

/// Sends connection `i`'s segment with `flags` and `seq` at `ts` and notes
/// how long it took.
fn send(r: &mut Reassembler<Factory>, i: u32, flags: TcpFlags, seq: u32, ts: u64, s: &mut Slowest) {
    let client = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
    let server = IpAddr::from([192, 168, 0, 1]);
    let (key, dir) = FlowKey::new(client, 1024 + (i % 60000) as u16, server, 80, 0);
    let seg = Segment::new(key, dir, Seq(seq), flags, b"", Timestamp(ts));
    let t = Instant::now();
    r.process(&seg);
    s.note(t.elapsed(), i);
}

fn main() {
    let n: u32 = match std::env::args().nth(1).map(|v| v.parse()) {
        None => 2_000_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("usage: table_stalls [CONNECTIONS]: {e}");
            std::process::exit(2);
        }
    };
    let cfg = Config {
        max_conns: 0, // no limit: the table only grows, then empties
        ..Config::default()
    };
    let mut r = Reassembler::new(cfg, Factory);
    let t0 = 1_000_000_000;
    let (mut open, mut close, mut after) = Default::default();
    let start = Instant::now();
    for i in 0..n {
        send(
            &mut r,
            i,
            TcpFlags::SYN,
            i,
            t0 + u64::from(i) * 1000,
            &mut open,
        );
    }
    let opened = start.elapsed();
    let t1 = t0 + u64::from(n) * 1000;
    let keep = n.min(10);
    for i in keep..n {
        let ts = t1 + u64::from(i) * 1000;
        send(&mut r, i, TcpFlags::RST, i.wrapping_add(1), ts, &mut close);
    }
    let closed = start.elapsed() - opened;
    let st = r.stats();
    let (created, closed_n) = (st.conns_created, st.conns_closed);
    // Past the idle timeout (an hour by default) of everything so far.
    let t2 = t1 + u64::from(n) * 1000 + 3_700_000_000_000;
    for k in 0..10_000u32 {
        let ts = t2 + u64::from(k) * 1000;
        send(&mut r, n + k, TcpFlags::SYN, k, ts, &mut after);
    }
    let later = start.elapsed() - opened - closed;
    for (what, count, took, s) in [
        ("opened", created, opened, &open),
        ("closed", closed_n, closed, &close),
        ("then opened", 10_000, later, &after),
    ] {
        println!(
            "{what} {count} connections in {:.3} s; slowest segment {:.2} ms (connection {}); \
             {} segments over 1 ms",
            took.as_secs_f64(),
            s.took.as_secs_f64() * 1e3,
            s.at,
            s.over_1ms,
        );
    }
}
