//! A worker: one thread, one ring, one pipeline.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use weft_reasm::StreamFactory;
use weft_ring::{Consumer, PopError};
use weft_sync::backoff::Backoff;
use weft_wire::{Timestamp, Zone};

use crate::pipeline::{FrameStats, Pipeline, PipelineConfig};
use crate::stats::Shared;
use weft_reasm::Stats;

/// Bytes that frames point into: a memory-mapped capture, or any buffer.
/// Workers keep the current block alive; it is released once the next
/// block replaced it and the batch of ring messages that carried the switch
/// was processed (after every frame that points into it, since the ring
/// delivers in order).
pub type Block = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A frame located in the worker's current block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Desc {
    pub off: u64,
    pub len: u32,
    pub ip_off: u16,
    /// The dispatcher's key's VLANs and network: the worker's decode from
    /// `ip_off` gives the same key.
    pub zone: Zone,
    pub hash: u32,
    pub ts: Timestamp,
    /// The frame is as long as it was on the wire (see
    /// [`crate::FrameStats::short_on_wire`]).
    pub whole: bool,
}

/// A frame the dispatcher had to own: a copy, or a defragmented datagram
/// (then `ip_off` is 0 and `link` is unused).
#[derive(Debug)]
pub(crate) struct Owned {
    pub data: Box<[u8]>,
    pub desc: Desc,
}

/// What travels through a worker's ring.
pub(crate) enum Msg {
    /// A frame in the current block.
    Frame(Desc),
    /// A frame with its own bytes.
    Owned(Box<Owned>),
    /// From now on, frames point into this block.
    Block(Block),
    /// Packet time has reached this point (for idle workers' timers).
    Tick(Timestamp),
}

/// What a worker hands back when it is done.
pub(crate) struct Done<F> {
    pub factory: F,
    pub frames: FrameStats,
    pub reasm: Stats,
}

/// Runs a worker until its ring is closed and drained, then closes every
/// connection. A panic in a stream handler is caught and returned; the
/// ring's consumer is dropped first so the dispatcher stops waiting on it.
pub(crate) fn run<F: StreamFactory>(
    mut rx: Consumer<Msg>,
    cfg: PipelineConfig,
    factory: F,
    shared: Arc<Shared>,
    pin: Option<core_affinity::CoreId>,
    idle_sleep: Duration,
) -> Result<Done<F>, String> {
    let pinned = pin.is_some_and(core_affinity::set_for_current);
    shared.counters.set_pinned(pinned);
    let mut p = Pipeline::new(cfg, factory);
    let result = catch_unwind(AssertUnwindSafe(|| {
        drain(&mut rx, &mut p, &shared, idle_sleep);
        p.flush_all();
    }));
    drop(rx);
    match result {
        Ok(()) => {
            shared
                .counters
                .publish(p.frame_stats(), &p.reassembler().stats());
            let frames = p.frame_stats().clone();
            let reasm = p.reassembler().stats();
            Ok(Done {
                factory: p.into_factory(),
                frames,
                reasm,
            })
        }
        Err(e) => Err(panic_message(e)),
    }
}

/// The default longest sleep of an idle worker between looks at its ring
/// (see [`crate::EngineBuilder::idle_sleep`]).
pub(crate) const IDLE_SLEEP: Duration = Duration::from_micros(200);

/// Processes the ring's messages until it is closed and drained. With the
/// ring empty it spins briefly, then yields, then sleeps for growing spells
/// of at most `idle_sleep` (with `idle_sleep` zero it keeps yielding).
fn drain<F: StreamFactory>(
    rx: &mut Consumer<Msg>,
    p: &mut Pipeline<F>,
    shared: &Shared,
    idle_sleep: Duration,
) {
    let mut batch = Vec::with_capacity(256);
    // The blocks of the batch in hand (see below); kept across batches for
    // its allocation.
    let mut blocks: Vec<Option<Block>> = Vec::new();
    let mut block: Option<Block> = None;
    let mut idle = if idle_sleep.is_zero() {
        Backoff::never_parking()
    } else {
        Backoff::with_max_park(idle_sleep)
    };
    loop {
        match rx.pop_batch(&mut batch, 256) {
            Ok(_) => idle.reset(),
            Err(PopError::Closed) => return,
            Err(PopError::Empty) => {
                // Costs nothing while data flows, little while it is idle.
                idle.snooze();
                continue;
            }
        }
        // Frames point into the block as of their place in the batch; the
        // look-ahead stage runs ahead of processing, so it tracks its own,
        // among the batch's blocks (held here while its decoded frames
        // borrow them).
        blocks.push(block.clone());
        blocks.extend(batch.iter().filter_map(|m| match m {
            Msg::Block(b) => Some(Some(b.clone())),
            _ => None,
        }));
        let mut peek_block = 0;
        p.run_staged(
            batch.len(),
            |p, t| match &batch[t] {
                Msg::Frame(f) => {
                    // The frame was read on the dispatcher's core: start
                    // pulling it here too, headers and the payload the
                    // handler reads (measured: 2 workers 0.84x the time
                    // on the 1.1 GB trace, 1 worker 0.81x).
                    let frame = frame_of(&blocks[peek_block], f);
                    weft_arena::prefetch(frame, 2048);
                    p.prepare_ip(frame, usize::from(f.ip_off), f.zone)
                }
                Msg::Block(_) => {
                    peek_block += 1;
                    None
                }
                Msg::Owned(_) | Msg::Tick(_) => None,
            },
            |p, u, a| match &batch[u] {
                Msg::Frame(f) => {
                    let frame = frame_of(&block, f);
                    let ip_off = usize::from(f.ip_off);
                    p.process_prepared_ip(frame, ip_off, f.zone, f.ts, f.hash, f.whole, a);
                }
                Msg::Owned(o) => {
                    let f = o.desc;
                    let ip_off = usize::from(f.ip_off);
                    p.ip_frame(&o.data, ip_off, f.zone, f.ts, f.hash, f.whole, None);
                }
                Msg::Block(b) => block = Some(b.clone()),
                Msg::Tick(ts) => p.advance_time(*ts),
            },
        );
        batch.clear();
        blocks.clear();
        shared
            .counters
            .publish(p.frame_stats(), &p.reassembler().stats());
    }
}

/// The bytes of frame `d` in `block` (empty if it lies outside: the
/// dispatcher never sends such a frame).
fn frame_of<'b>(block: &'b Option<Block>, d: &Desc) -> &'b [u8] {
    let bytes = block.as_ref().map_or(&[][..], |b| (**b).as_ref());
    bytes
        .get(d.off as usize..d.off as usize + d.len as usize)
        .unwrap_or(&[])
}

pub(crate) fn panic_message(e: Box<dyn Any + Send>) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::tests::{frames, pipeline};
    use weft_wire::{decode, peek_key_at, DecodeOptions, Decoded, LinkType};

    /// A worker fed frames spread over many blocks, switched mid-batch
    /// (batches of 256 messages, blocks of 1 to 64 frames at shifted
    /// offsets), processes them as a plain pipeline does, and uses the
    /// packet its look-ahead decoded for every TCP frame: the look-ahead
    /// tracks the right block through every switch.
    #[test]
    fn a_worker_uses_its_look_ahead_across_block_switches() {
        let link = LinkType::Ethernet;
        let placed: Vec<_> = frames()
            .into_iter()
            .filter_map(|(f, ts)| {
                let k = peek_key_at(link, &f)?;
                Some((f, ts, k.ip_offset, k.vlan))
            })
            .collect();
        let tcp = placed
            .iter()
            .filter(|(f, ..)| {
                matches!(
                    decode(link, f, &DecodeOptions::default()),
                    Ok(Decoded::Tcp(_))
                )
            })
            .count() as u64;
        let (mut plain, plain_sum) = pipeline(false);
        for (f, ts, ip, vlan) in &placed {
            plain.process_ip(f, usize::from(*ip), Zone::vlan(*vlan), *ts, 0, None);
        }
        plain.flush_all();
        let mut msgs = Vec::new();
        let (mut n, mut k) = (0, 0);
        while n < placed.len() {
            let take = [1, 5, 17, 3, 64, 2][k % 6].min(placed.len() - n);
            let mut bytes = vec![0xee; k % 3];
            let mut descs = Vec::new();
            for (f, ts, ip, vlan) in &placed[n..n + take] {
                descs.push(Desc {
                    off: bytes.len() as u64,
                    len: f.len() as u32,
                    ip_off: *ip,
                    zone: Zone::vlan(*vlan),
                    hash: 0,
                    ts: *ts,
                    whole: false,
                });
                bytes.extend_from_slice(f);
            }
            msgs.push(Msg::Block(Arc::new(bytes)));
            msgs.extend(descs.into_iter().map(Msg::Frame));
            n += take;
            k += 1;
        }
        assert!(k > 50, "{k} blocks");
        let (mut tx, mut rx) = weft_ring::channel(msgs.len().next_power_of_two());
        for m in msgs {
            assert!(tx.push(m).is_ok());
        }
        drop(tx);
        let (mut p, sum) = pipeline(false);
        drain(&mut rx, &mut p, &Shared::default(), IDLE_SLEEP);
        p.flush_all();
        assert_eq!(p.frame_stats(), plain.frame_stats());
        assert_eq!(p.reassembler().stats(), plain.reassembler().stats());
        assert_eq!(sum.get(), plain_sum.get());
        assert_eq!(p.prepared_used(), tcp);
    }
}
