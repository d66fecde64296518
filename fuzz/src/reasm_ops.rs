//! The reassembler driven by arbitrary segment sequences. After every
//! segment the byte accounting must balance; at the end, with no limit hit,
//! the output must equal a first-copy-wins byte map of what was sent. The
//! streams keep bytes (`keep_from`) in a cycle of ways, and each delivery
//! must offer first exactly what the one before kept (nothing when the keep
//! went over the small limit set here). Urgent bytes are taken out of band
//! (URG, with the pointer in the high nibble of `byte`): each must be
//! announced just before the delivery that lacks it, at an offset that
//! delivery covers, and the byte map counts it where it stood. The last
//! bytes delivered are kept to compare retransmissions with them: every
//! conflict raised (of held pieces or of delivered bytes) must cover a
//! byte where the first copy differs from the segment that raised it.
//! A third pass sets a reassembly depth (from the first byte), and the
//! streams stop their first wire direction after its fourth delivery: the
//! output must then be the byte map's bytes before the depth and the
//! stop.
//!
//! Input: 6-byte records `[flags, off_hi, off_lo, len, byte, dir]`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::rc::Rc;

use weft_reasm::{
    Config, ConnInfo, Context, Direction, Event, HeapPool, Reassembler, ScatterGather, Segment,
    Stream, StreamFactory, UrgentPolicy,
};
use weft_wire::{Dir, FlowKey, Seq, TcpFlags, TcpOptions, Timestamp};

/// The most bytes a stream may keep here, small so that keeps go over it.
const MAX_KEPT: usize = 96;

/// Delivered bytes, the newest connection's number, the conflicts
/// raised by the segment being processed (direction, offset, length), and
/// where each wire direction's stream stopped itself.
struct Out(
    BTreeMap<(u8, u64), u8>,
    u64,
    Vec<(u8, u64, u32)>,
    [Option<u64>; 2],
);
/// A stream, its connection's number (positions restart per connection),
/// what it kept in each direction, how many deliveries it had, per
/// direction whether it had one and whether one said `end`, and the
/// urgent bytes announced for the next delivery (direction, offset,
/// byte), and whether it stops its first wire direction.
struct S(
    Rc<RefCell<Out>>,
    u64,
    [Vec<u8>; 2],
    usize,
    [(bool, bool); 2],
    Vec<(Direction, u64, u8)>,
    bool,
);
impl Stream for S {
    fn reassembled(&mut self, sg: &mut ScatterGather<'_>, _: &Context) {
        let info = sg.info();
        let d = matches!(info.wire_dir, Dir::HiToLo) as u8;
        let (len, kept) = sg.lengths();
        let mut v = Vec::new();
        sg.copy_to(&mut v);
        let seen = &mut self.4[d as usize];
        assert!(!seen.1, "a delivery after the direction's end");
        *seen = (true, info.end);
        let was = &mut self.2[d as usize];
        assert_eq!(&v[..kept], &was[..], "kept bytes offered again, exactly");
        let k = match self.3 % 5 {
            0 => 0,
            1 => kept,
            2 => kept / 2,
            3 => len.saturating_sub(7),
            _ => len,
        };
        self.3 += 1;
        sg.keep_from(k);
        *was = if k < len && len - k <= MAX_KEPT {
            v[k..].to_vec()
        } else {
            Vec::new()
        };
        let mut out = self.0.borrow_mut();
        out.1 = out.1.max(self.1);
        // Connection `n`'s positions live in their own range of the map.
        let base = self.1 << 40;
        let urgent = std::mem::take(&mut self.5);
        assert!(urgent.iter().all(|u| u.0 == info.dir), "of this direction");
        assert_eq!(urgent.len(), info.urgent as usize, "announced as taken");
        let mut taken = urgent.iter().peekable();
        let mut pos = info.offset;
        let mut put = |pos: u64, b: u8| {
            let prev = out.0.insert((d, base + pos), b);
            assert!(prev.is_none(), "a stream position delivered twice");
        };
        for b in &v[kept..] {
            while let Some(u) = taken.next_if(|u| u.1 == pos) {
                put(pos, u.2);
                pos += 1;
            }
            put(pos, *b);
            pos += 1;
        }
        if let Some(u) = taken.next_if(|u| u.1 == pos) {
            put(pos, u.2);
            pos += 1;
        }
        if self.6 && d == 0 && self.3 == 4 && !info.end && out.3[0].is_none() {
            sg.stop();
            out.3[0] = Some(pos);
        }
        assert!(
            taken.next().is_none(),
            "an urgent byte outside its delivery"
        );
    }
    fn event(&mut self, ev: &Event, _: &Context) {
        match *ev {
            Event::Urgent { dir, offset, byte } => self.5.push((dir, offset, byte)),
            Event::OverlapConflict {
                dir, offset, len, ..
            } => {
                let d = u8::from(dir != Direction::ClientToServer);
                self.0.borrow_mut().2.push((d, offset, len));
            }
            _ => {}
        }
    }
    fn complete(&mut self, _: &Context) -> bool {
        for (had, ended) in self.4 {
            assert!(
                !had || ended,
                "a direction that had deliveries ends with one"
            );
        }
        true
    }
}
struct F(Rc<RefCell<Out>>, bool);
impl StreamFactory for F {
    type Stream = S;
    fn new_stream(&mut self, c: &ConnInfo, _: &Segment<'_>, _: &Context) -> S {
        S(
            self.0.clone(),
            c.id,
            [Vec::new(), Vec::new()],
            0,
            [(false, false); 2],
            Vec::new(),
            self.1,
        )
    }
}

/// Runs the target on one input: as given, then with SYN, FIN and RST
/// cleared, so that the first-wins byte map (which applies only to a single
/// connection of data segments) checks most inputs, not the few without
/// those flags.
pub fn run(data: &[u8]) {
    run_counted(data);
}

/// [`run`], returning how many of its passes the byte map checked.
pub fn run_counted(data: &[u8]) -> usize {
    let depth = data.first().map_or(1, |&b| 1 + u64::from(b));
    usize::from(run_once(data, false, 0))
        + usize::from(run_once(data, true, 0))
        + usize::from(run_once(data, true, depth))
}

/// One pass; `data_only` clears SYN, FIN and RST; `depth`, the
/// reassembly depth (0: none). Returns whether the first-wins byte map was
/// compared.
fn run_once(data: &[u8], data_only: bool, depth: u64) -> bool {
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    let b: IpAddr = "10.0.0.2".parse().unwrap();
    let (key, fwd) = FlowKey::new(a, 1, b, 2, 0);
    let out = Rc::new(RefCell::new(Out(BTreeMap::new(), 0, Vec::new(), [None; 2])));
    let cfg = Config {
        max_pages_per_conn: 64,
        max_pages: 128,
        max_kept_bytes: MAX_KEPT,
        urgent: UrgentPolicy::OutOfBand,
        retransmit_check: 48,
        depth,
        ..Config::default()
    };
    // Heap pages: an arena per run would spend the run in mmap/munmap.
    let mut r = Reassembler::with_pool(cfg, F(out.clone(), depth != 0), HeapPool::new(2048, 128));
    let isn = [u32::MAX - 300, 77];
    // First-copy-wins byte map, by offset from each direction's first
    // data segment (where a midstream stream starts).
    let mut first: [Option<u32>; 2] = [None, None];
    let mut sent: BTreeMap<(u8, u64), u8> = BTreeMap::new();
    let mut plain = true; // only data segments: the byte map applies
                          // Conflicts with the byte of the segment that raised them.
    let mut conflicts: Vec<((u8, u64, u32), u8)> = Vec::new();
    for (n, rec) in data.chunks_exact(6).enumerate() {
        let d = rec[5] & 1;
        let mask = if data_only { 0x30 } else { 0x37 };
        let flags = TcpFlags(rec[0] & mask | TcpFlags::ACK.0);
        let off = u16::from_be_bytes([rec[1], rec[2]]) as u32;
        let payload = vec![rec[4]; rec[3] as usize];
        plain &= flags.0 & (TcpFlags::SYN.0 | TcpFlags::FIN.0 | TcpFlags::RST.0) == 0;
        let dir = if d == 0 { fwd } else { fwd.reverse() };
        r.process(&Segment {
            key,
            dir,
            hash: 0,
            seq: Seq(isn[d as usize]) + off,
            ack: Seq(0),
            flags,
            window: 65535,
            urgent: u16::from(rec[4] >> 4),
            options: TcpOptions::default(),
            payload: &payload,
            payload_missing: 0,
            ts: Timestamp(n as u64 * 1_000_000),
        });
        let st = r.stats();
        assert!(st.balanced(), "{st:?}");
        let raised = std::mem::take(&mut out.borrow_mut().2);
        conflicts.extend(raised.into_iter().map(|c| (c, rec[4])));
        if payload.is_empty() {
            continue;
        }
        let f = *first[d as usize].get_or_insert(off);
        for (i, &byte) in payload.iter().enumerate() {
            let p = off as i64 + i as i64 - f as i64;
            if p >= 0 && (depth == 0 || (p as u64) < depth) {
                sent.entry((d, p as u64)).or_insert(byte);
            }
        }
    }
    r.flush_all();
    let st = r.stats();
    assert!(
        st.balanced() && st.buffered_bytes == 0 && st.pages_in_use == 0 && st.kept_bytes == 0,
        "{st:?}"
    );
    let one_conn = out.borrow().1 == 0 && st.conns_created <= 1;
    let compared = plain
        && one_conn
        && st.memcap_flushes == 0
        && st.dropped_total() == st.dropped(weft_reasm::DropReason::Stopped)
        && st.acked_gaps == 0;
    assert!(
        st.rechecked_bytes + st.unchecked_bytes <= st.duplicate_bytes,
        "{st:?}"
    );
    if compared {
        // What the stream stopped itself at is not expected past it; the
        // conflicts are checked against every byte sent (one raised
        // before the stop may lie past it).
        let all = sent.clone();
        let stops = out.borrow().3;
        sent.retain(|&(d, p), _| stops[usize::from(d)].map_or(true, |s| p < s));
        assert_eq!(
            out.borrow().0,
            sent,
            "output differs from the first-wins byte map"
        );
        // The client is the first data segment's sender.
        let client = data
            .chunks_exact(6)
            .find(|r| r[3] > 0)
            .map_or(0, |r| r[5] & 1);
        for ((d, offset, len), byte) in conflicts {
            let d = d ^ client;
            let differs = (offset..offset + u64::from(len)).any(|p| all[&(d, p)] != byte);
            assert!(differs, "a conflict where the copies agree");
        }
    }
    drop(r);
    compared
}
