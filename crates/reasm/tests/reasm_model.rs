//! Property tests against a reference model: a naive byte map.
//!
//! Random streams are cut into random segments, duplicated, overlapped,
//! reordered and partly lost, with initial sequence numbers anywhere,
//! including just below the 2^32 wrap. The reassembler's output must equal
//! the byte map's, and the byte accounting must balance after every segment.
//! Urgent pointers among them must take out of band the bytes a model of
//! Linux's receiver (`tcp_check_urg`, a reader that keeps up) takes.

use std::net::IpAddr;

use proptest::prelude::*;
use weft_reasm::{
    Config, ConnInfo, Context, Event, OverlapPolicy, Reassembler, ScatterGather, Segment, Stats,
    Stream, StreamFactory, UrgentPolicy,
};
use weft_wire::{FlowKey, Seq, TcpFlags, Timestamp};

#[derive(Default)]
struct Out {
    bytes: Vec<u8>,
    skip: u64,
    /// (stream offset, bytes) of every delivery.
    runs: Vec<(u64, Vec<u8>)>,
    /// (offset, byte) of every urgent byte taken out.
    urgent: Vec<(u64, u8)>,
    /// (offset, length, new copy won) of every overlap conflict.
    conflicts: Vec<(u64, u32, bool)>,
}

struct Sink(std::rc::Rc<std::cell::RefCell<Out>>);
impl Stream for Sink {
    fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
        let mut o = self.0.borrow_mut();
        o.skip += sg.info().skip;
        let (_, kept) = sg.lengths();
        let mut v = Vec::new();
        sg.copy_to(&mut v);
        o.bytes.extend_from_slice(&v[kept..]);
        o.runs.push((sg.info().offset, v[kept..].to_vec()));
    }
    fn event(&mut self, ev: &Event, _: &Context) {
        match *ev {
            Event::Urgent { offset, byte, .. } => self.0.borrow_mut().urgent.push((offset, byte)),
            Event::OverlapConflict {
                offset,
                len,
                new_won,
                ..
            } => self.0.borrow_mut().conflicts.push((offset, len, new_won)),
            _ => {}
        }
    }
}
struct Factory(std::rc::Rc<std::cell::RefCell<Out>>);
impl StreamFactory for Factory {
    type Stream = Sink;
    fn new_stream(&mut self, _: &ConnInfo, _: &Segment<'_>, _: &Context) -> Sink {
        Sink(self.0.clone())
    }
}

/// One transmitted segment: offset into the stream, its bytes, and its
/// urgent pointer if URG is set.
#[derive(Clone, Debug)]
struct Tx {
    off: u32,
    data: Vec<u8>,
    urg: Option<u16>,
}

/// Runs the client side of one connection; returns output and stats.
fn reassemble(isn: u32, txs: &[Tx], cfg: Config) -> (Out, Stats) {
    let a: IpAddr = "2001:db8::1".parse().unwrap();
    let b: IpAddr = "2001:db8::2".parse().unwrap();
    let (key, dir) = FlowKey::new(a, 5555, b, 443, 0);
    fn mk(
        key: FlowKey,
        dir: weft_wire::Dir,
        flags: TcpFlags,
        seq: u32,
        payload: &[u8],
    ) -> Segment<'_> {
        Segment {
            ack: Seq(1),
            ..Segment::new(key, dir, Seq(seq), flags, payload, Timestamp(1))
        }
    }
    let seg = |flags, seq, payload| mk(key, dir, flags, seq, payload);
    let out = std::rc::Rc::new(std::cell::RefCell::new(Out::default()));
    let mut r = Reassembler::new(cfg, Factory(out.clone()));
    r.process(&seg(TcpFlags::SYN, isn, &[]));
    for t in txs {
        let flags = if t.urg.is_some() {
            TcpFlags::ACK | TcpFlags::URG
        } else {
            TcpFlags::ACK
        };
        r.process(&Segment {
            urgent: t.urg.unwrap_or(0),
            ..seg(flags, isn.wrapping_add(1).wrapping_add(t.off), &t.data)
        });
        assert!(r.stats().balanced(), "{:?}", r.stats());
    }
    r.flush_all();
    let st = r.stats();
    assert!(st.balanced(), "{st:?}");
    assert_eq!(st.buffered_bytes, 0);
    assert_eq!(st.pages_in_use, 0);
    drop(r);
    let o = std::rc::Rc::try_unwrap(out).ok().unwrap().into_inner();
    (o, st)
}

/// First-copy-wins byte map over arrival order; holes skipped.
fn model_first(txs: &[Tx]) -> (Vec<u8>, u64) {
    let end = txs
        .iter()
        .map(|t| t.off as usize + t.data.len())
        .max()
        .unwrap_or(0);
    let mut map: Vec<Option<u8>> = vec![None; end];
    for t in txs {
        for (i, &b) in t.data.iter().enumerate() {
            let slot = &mut map[t.off as usize + i];
            if slot.is_none() {
                *slot = Some(b);
            }
        }
    }
    let last = map.iter().rposition(|b| b.is_some()).map_or(0, |p| p + 1);
    let bytes: Vec<u8> = map[..last].iter().flatten().copied().collect();
    let gaps = (last - bytes.len()) as u64;
    (bytes, gaps)
}

/// What a Linux receiver without `SO_OOBINLINE`, read as data comes,
/// makes of lossless segments arriving in order `txs`: the stream
/// without the urgent bytes, and those bytes with their offsets. Its
/// urgent pointer rules (`tcp_check_urg`): a segment wholly before the
/// next expected byte is dropped unread; the mark is the byte before
/// `seq + pointer` (the first for a pointer of 0); a mark behind the next
/// expected byte, or not past the current one, is ignored; the reader
/// skips the marked byte when it gets there.
fn model_urgent(stream: &[u8], txs: &[Tx]) -> (Vec<u8>, Vec<(u64, u8)>) {
    let mut have = vec![false; stream.len()];
    let (mut next, mut mark) = (0usize, None::<usize>);
    let mut taken = Vec::new();
    for t in txs {
        let (off, end) = (t.off as usize, t.off as usize + t.data.len());
        if end < next {
            continue;
        }
        if let Some(p) = t.urg {
            let m = off + usize::from(p.max(1)) - 1;
            if m >= next && mark.map_or(true, |c| m > c) {
                mark = Some(m);
            }
        }
        have[off..end].iter_mut().for_each(|h| *h = true);
        while next < stream.len() && have[next] {
            next += 1;
        }
        if let Some(m) = mark.filter(|&m| m < next) {
            taken.push((m as u64, stream[m]));
            mark = None;
        }
    }
    let bytes = (0..stream.len())
        .filter(|i| !taken.iter().any(|t| t.0 == *i as u64))
        .map(|i| stream[i])
        .collect();
    (bytes, taken)
}

/// What the retransmission check keeping `keep` bytes makes of
/// segments `txs` that each start at or before the next expected byte (so
/// nothing waits): the conflicts it raises (offset, length), and the bytes
/// it compares and cannot compare. The stream holds the first copy of
/// every byte; a segment's copy of delivered bytes is compared over the
/// last `keep` delivered (all, one-byte segments just behind the next
/// byte too: they all come at one time, never after the stream idled, so
/// none is a keep-alive probe).
fn model_recheck(txs: &[Tx], keep: usize) -> (Vec<(u64, u32)>, u64, u64) {
    let mut delivered: Vec<u8> = Vec::new();
    let (mut conflicts, mut checked, mut unchecked) = (Vec::new(), 0, 0);
    for t in txs {
        let (off, next) = (t.off as usize, delivered.len());
        assert!(off <= next, "in order");
        let old = (off + t.data.len()).min(next);
        if old > off {
            let from = off.max(next.saturating_sub(keep));
            if from < old {
                if t.data[from - off..old - off] != delivered[from..old] {
                    conflicts.push((from as u64, (old - from) as u32));
                }
                checked += (old - from) as u64;
            }
            unchecked += (from.min(old) - off) as u64;
        }
        delivered.extend_from_slice(&t.data[old - off..]);
    }
    (conflicts, checked, unchecked)
}

fn isn() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (0u32..4096).prop_map(|d| u32::MAX - d)]
}

/// A stream, cut into segments, plus duplicates and same-bytes overlaps,
/// shuffled.
fn lossless() -> impl Strategy<Value = (Vec<u8>, Vec<Tx>)> {
    (
        prop::collection::vec(any::<u8>(), 1..3000),
        prop::collection::vec((0usize..3000, 1usize..600), 0..12),
    )
        .prop_flat_map(|(stream, extra)| {
            let n = stream.len();
            let cuts = prop::collection::vec(1usize..n.max(2), 0..40);
            (Just(stream), Just(extra), cuts)
        })
        .prop_flat_map(|(stream, extra, mut cuts)| {
            let n = stream.len();
            cuts.push(0);
            cuts.push(n);
            cuts.sort_unstable();
            cuts.dedup();
            let mut txs: Vec<Tx> = cuts
                .windows(2)
                .map(|w| Tx {
                    off: w[0] as u32,
                    data: stream[w[0]..w[1]].to_vec(),
                    urg: None,
                })
                .collect();
            for (s, l) in extra {
                let s = s % n;
                let e = (s + l).min(n);
                txs.push(Tx {
                    off: s as u32,
                    data: stream[s..e].to_vec(),
                    urg: None,
                });
            }
            (Just(stream), Just(txs).prop_shuffle())
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Lossless traffic with identical retransmissions: every policy gives
    /// back the stream exactly, across the wrap.
    #[test]
    fn lossless_reordered_duplicated_equals_stream((stream, txs) in lossless(), isn in isn(), p in 0usize..7) {
        let cfg = Config { overlap_policy: OverlapPolicy::ALL[p], ..Config::default() };
        let (out, st) = reassemble(isn, &txs, cfg);
        prop_assert_eq!(out.bytes, stream);
        prop_assert_eq!(out.skip, 0);
        prop_assert_eq!(st.gap_bytes, 0);
        prop_assert_eq!(st.overlap_conflicts, 0);
    }

    /// Segments with their own random bytes (overlaps differ), some lost:
    /// under the first-wins policy the output is the first-wins byte map,
    /// with exactly the missing bytes reported as skipped.
    #[test]
    fn conflicting_and_lossy_matches_first_wins_model(
        txs in prop::collection::vec((0u32..4000, prop::collection::vec(any::<u8>(), 1..400)), 1..40)
            .prop_map(|v| v.into_iter().map(|(off, data)| Tx { off, data, urg: None }).collect::<Vec<_>>()),
        isn in isn(),
    ) {
        let (want, gaps) = model_first(&txs);
        let (out, st) = reassemble(isn, &txs, Config::default());
        prop_assert_eq!(out.bytes, want);
        prop_assert_eq!(out.skip, gaps);
        prop_assert_eq!(st.gap_bytes, gaps);
    }

    /// Urgent pointers on a quarter of the segments, pointing within,
    /// just past or far past them: under `OutOfBand` the bytes taken and
    /// the stream left are the model receiver's, under every overlap
    /// policy (the copies agree); `Inline` keeps the stream whole.
    #[test]
    fn urgent_bytes_are_those_a_linux_receiver_takes(
        (stream, txs, ptrs) in lossless().prop_flat_map(|(stream, txs)| {
            let n = txs.len();
            (Just(stream), Just(txs), prop::collection::vec(prop::option::weighted(0.25, 0u16..700), n))
        }),
        isn in isn(),
        p in 0usize..7,
    ) {
        let txs: Vec<Tx> = txs
            .into_iter()
            .zip(ptrs)
            .map(|(t, urg)| Tx { urg, ..t })
            .collect();
        let policy = OverlapPolicy::ALL[p];
        let cfg = Config { overlap_policy: policy, urgent: UrgentPolicy::OutOfBand, ..Config::default() };
        let (want, taken) = model_urgent(&stream, &txs);
        let (out, st) = reassemble(isn, &txs, cfg);
        prop_assert_eq!(&out.urgent, &taken);
        prop_assert_eq!(out.bytes, want);
        prop_assert_eq!(st.urgent_bytes, taken.len() as u64);
        let cfg = Config { overlap_policy: policy, ..Config::default() };
        let (out, st) = reassemble(isn, &txs, cfg);
        prop_assert_eq!(out.bytes, stream);
        prop_assert_eq!(st.urgent_bytes, 0);
    }

    /// A stream sent in order, with copies of what was sent before (some
    /// changed in a byte, some running past what was sent) between its
    /// segments: with the check on, the conflicts raised and the bytes
    /// compared are the model's, under every overlap policy (nothing
    /// waits, so none applies), and the first copy of every byte is
    /// delivered; with it off, no conflict.
    #[test]
    fn retransmissions_are_checked_against_what_was_delivered(
        (stream, cuts, copies) in (prop::collection::vec(any::<u8>(), 1..2000)).prop_flat_map(|stream| {
            let n = stream.len();
            (
                Just(stream),
                prop::collection::vec(1usize..n.max(2), 0..30),
                prop::collection::vec((0usize..40, 0usize..2000, 1usize..300, prop::option::of(any::<(usize, u8)>())), 0..20),
            )
        }),
        keep in prop_oneof![1usize..64, 64usize..4096],
        isn in isn(),
        p in 0usize..7,
    ) {
        let n = stream.len();
        let mut cuts = cuts;
        cuts.extend([0, n]);
        cuts.sort_unstable();
        cuts.dedup();
        let mut txs = Vec::new();
        for (i, w) in cuts.windows(2).enumerate() {
            txs.push(Tx { off: w[0] as u32, data: stream[w[0]..w[1]].to_vec(), urg: None });
            for &(_, s, l, change) in copies.iter().filter(|c| c.0 == i) {
                // A copy of bytes already sent, ending anywhere; a fifth
                // of them the last byte sent alone (a keep-alive probe's
                // shape).
                let (s, l) = if s % 5 == 0 { (w[1] - 1, 1) } else { (s % w[1], l) };
                let mut data = stream[s..(s + l).min(n)].to_vec();
                if let Some((at, x)) = change {
                    let at = at % data.len();
                    data[at] ^= x.max(1);
                }
                txs.push(Tx { off: s as u32, data, urg: None });
            }
        }
        let (conflicts, checked, unchecked) = model_recheck(&txs, keep);
        let want: Vec<u8> = {
            let mut d = Vec::new();
            for t in &txs {
                let old = (t.off as usize + t.data.len()).min(d.len());
                d.extend_from_slice(&t.data[old - t.off as usize..]);
            }
            d
        };
        let policy = OverlapPolicy::ALL[p];
        let cfg = Config { overlap_policy: policy, retransmit_check: keep, ..Config::default() };
        let (out, st) = reassemble(isn, &txs, cfg);
        prop_assert_eq!(&out.bytes, &want);
        let got: Vec<(u64, u32)> = out.conflicts.iter().map(|c| (c.0, c.1)).collect();
        prop_assert_eq!(got, conflicts);
        prop_assert!(out.conflicts.iter().all(|c| !c.2));
        prop_assert_eq!((st.rechecked_bytes, st.unchecked_bytes), (checked, unchecked));
        let cfg = Config { overlap_policy: policy, ..Config::default() };
        let (out, st) = reassemble(isn, &txs, cfg);
        prop_assert_eq!(&out.bytes, &want);
        prop_assert!(out.conflicts.is_empty());
        prop_assert_eq!((st.rechecked_bytes, st.unchecked_bytes), (0, 0));
    }

    /// Tight page limits force holes to be skipped early; whatever is
    /// delivered is still exactly where it belongs, nothing is lost
    /// silently, and the accounting balances.
    #[test]
    fn tight_limits_never_misplace_bytes((stream, txs) in lossless(), isn in isn(), pages in 1usize..6) {
        let cfg = Config { max_pages_per_conn: pages, max_pages: pages + 1, ..Config::default() };
        let (out, st) = reassemble(isn, &txs, cfg);
        // Every delivered run sits exactly at its stream offset.
        for (off, run) in &out.runs {
            let off = *off as usize;
            prop_assert_eq!(&stream[off..off + run.len()], &run[..]);
        }
        let delivered: u64 = out.runs.iter().map(|r| r.1.len() as u64).sum();
        prop_assert_eq!(delivered, st.delivered_bytes);
        prop_assert!(delivered + st.gap_bytes <= stream.len() as u64);
        prop_assert!(st.balanced());
    }
}
