//! One message (a request or a response): its segments, the impairments
//! applied to them, the receiver's ACKs, and its share of the truth.
//!
//! ACKs follow the receiver, which sits right after the capture point: it
//! gets data in capture order (lost segments too, at the position they had
//! before the capture dropped them) and acknowledges the contiguous prefix
//! it holds, at once for out-of-order arrivals (duplicate ACKs), every
//! second segment otherwise. So no ACK ever covers bytes that appear later
//! in the capture, except bytes the capture lost.

use sha2::Digest;

use super::{Conn, Kind, Tx};
use crate::config::{GenConfig, Hostile};
use crate::frame::{fill_payload, flags};

impl Conn {
    /// Plans `len` bytes from direction `d` (0: client to server); with
    /// `fin`, every copy of its last byte carries the sender's FIN.
    pub(super) fn plan_message(
        &mut self,
        cfg: &GenConfig,
        d: usize,
        len: u64,
        scratch: &mut Vec<u8>,
        fin: bool,
    ) {
        if len == 0 {
            return;
        }
        let base = self.halves[d].next;
        let mss = u64::from(self.mss);
        let segs: Vec<(u64, u32)> = (0..len.div_ceil(mss))
            .map(|i| (base + i * mss, (len - i * mss).min(mss) as u32))
            .collect();
        let n = segs.len();
        let mut lost = vec![false; n];
        let mut locked = vec![false; n];
        let mut conflict = None;
        let mut rexmit = None;
        if self.kind == Kind::Hostile(Hostile::Conflict) && n >= 2 {
            let k = self.rng.range(1, n as u64 - 1) as usize;
            locked[k - 1] = true;
            locked[k] = true;
            conflict = Some(k);
        }
        if self.kind == Kind::Hostile(Hostile::Rexmit) && n >= 2 {
            let k = self.rng.range(0, n as u64 - 2) as usize;
            // Every segment up to the one after k is kept from loss and
            // reordering: when k's other copy comes, the receiver holds
            // every byte before it and delivered k, so a last-wins
            // reassembler keeps the first copy too. (Only k and k + 1
            // kept, a segment before them reordered past the copy, or
            // lost, left k held out of order, and last-wins took the
            // copy.)
            locked[..=k + 1].fill(true);
            rexmit = Some(k);
        }
        for i in 0..n {
            if !locked[i] && self.rng.chance(cfg.loss) {
                lost[i] = true;
            }
        }
        let mut txs = self.transmissions(cfg, &segs, &lost, &locked, (conflict, rexmit));
        self.stamp_sent(d, &mut txs);
        self.reorder(cfg, &mut txs);
        if self.kind == Kind::Hostile(Hostile::HugeWindow) && n >= 2 {
            // The message's last segment the window admits goes first, up
            // to a whole message ahead (the first request's window is
            // the SYN-ACK's unscaled 64 KiB).
            let edge = self.edge[d];
            let last = segs
                .iter()
                .rposition(|&(off, len)| off + u64::from(len) <= edge);
            let at = last.and_then(|j| txs.iter().position(|t| t.seg == Some(j)));
            if let Some(at) = at {
                let t = txs.remove(at);
                txs.insert(0, t);
            }
        }
        self.emit(d, &segs, &txs, fin);
        self.hash(d, &segs, &lost, conflict, scratch);
        self.halves[d].next = base + len;
    }

    /// The capture-order transmissions before reordering: originals,
    /// conflicting copies (`conflict`: before the hole ahead of them;
    /// `rexmit`: after the segment that follows them), duplicates and
    /// overlapping retransmissions.
    fn transmissions(
        &mut self,
        cfg: &GenConfig,
        segs: &[(u64, u32)],
        lost: &[bool],
        locked: &[bool],
        (conflict, rexmit): (Option<usize>, Option<usize>),
    ) -> Vec<Tx> {
        let n = segs.len();
        let tx = |i: usize, lost: bool, fixed: bool| Tx {
            off: segs[i].0,
            len: segs[i].1,
            variant: 0,
            seg: Some(i),
            covers: Some(i),
            lost,
            fixed,
            stamp: None,
        };
        let mut txs = Vec::with_capacity(n + n / 4);
        let mut pending: Vec<(usize, Tx)> = Vec::new();
        for i in 0..n {
            if conflict == Some(i + 1) {
                continue; // the hole, sent after the conflicting copy
            }
            txs.push(tx(i, lost[i], locked[i]));
            if conflict == Some(i) {
                txs.push(Tx {
                    variant: 1,
                    seg: None,
                    ..tx(i, false, true)
                });
                txs.push(tx(i - 1, false, true));
            }
            if let Some(k) = rexmit.filter(|&k| k + 1 == i) {
                txs.push(Tx {
                    variant: 1,
                    seg: None,
                    ..tx(k, false, true)
                });
            }
            if !lost[i] && !locked[i] && self.rng.chance(cfg.duplicate) {
                txs.push(Tx {
                    seg: None,
                    ..tx(i, false, false)
                });
            }
            let clean = |j: usize| !lost[j] && !locked[j];
            if i > 0
                && i + 1 < n
                && clean(i - 1)
                && clean(i)
                && clean(i + 1)
                && self.rng.chance(cfg.overlap)
            {
                let (prev_off, prev_len) = segs[i - 1];
                let back = self
                    .rng
                    .range(1, u64::from(prev_len).min(self.mss.div_ceil(2).into()));
                let start = prev_off + u64::from(prev_len) - back;
                let (next_off, next_len) = segs[i + 1];
                // Up to two segments' worth (a sender that coalesces on
                // retransmission, or TSO seen on the sending host): the
                // range runs into the next segment, so a receiver holding
                // it meets an overlap whose tail is new (capped at one
                // segment, the range never reached it). Tiny segments stay
                // one byte.
                let most = if self.mss > 1 { 2 * self.mss } else { 1 };
                let end =
                    (next_off + self.rng.range(0, next_len.into())).min(start + u64::from(most));
                pending.push((
                    i + 1,
                    Tx {
                        off: start,
                        len: (end - start) as u32,
                        variant: 0,
                        seg: None,
                        covers: None,
                        lost: false,
                        fixed: false,
                        stamp: None,
                    },
                ));
            }
            while let Some(at) = pending.iter().position(|(after, _)| *after == i) {
                txs.push(pending.swap_remove(at).1);
            }
        }
        txs
    }

    /// Stamps the transmissions with sender `d`'s timestamps in the order
    /// they were sent (before reordering moves them): a network duplicate
    /// (an exact copy right after its original) has its original's.
    fn stamp_sent(&mut self, d: usize, txs: &mut [Tx]) {
        for i in 0..txs.len() {
            let t = &txs[i];
            let duplicate = t.seg.is_none() && t.variant == 0 && t.covers.is_some();
            txs[i].stamp = match (duplicate, i) {
                (true, 1..) => txs[i - 1].stamp,
                _ => self.stamp(d),
            };
        }
    }

    /// Moves a fraction of the transmissions later by 1 to W places; the
    /// others keep their relative order.
    fn reorder(&mut self, cfg: &GenConfig, txs: &mut Vec<Tx>) {
        if cfg.reorder <= 0.0 {
            return;
        }
        for i in (0..txs.len()).rev() {
            if txs[i].fixed || !self.rng.chance(cfg.reorder) {
                continue;
            }
            let d = self.rng.range(1, cfg.reorder_window.into()) as usize;
            let to = (i + d).min(txs.len() - 1);
            if to > i {
                let t = txs.remove(i);
                txs.insert(to, t);
            }
        }
    }

    /// Queues the data packets (lost ones left out) and the receiver's ACKs;
    /// with `fin`, the packets that carry the last byte carry a FIN, and
    /// the ACK of the whole message covers it.
    ///
    /// A transmission whose end lies past the sender's window when its
    /// turn comes is held back (lost or not: the receiver gets it when
    /// the capture would have shown it) and sent as soon as the
    /// receiver's acknowledgments open the window far enough, before the
    /// transmissions still to come. It keeps its timestamp: every
    /// segment before it in sequence carries an older one, so a PAWS
    /// check refuses it no more than a reordered segment.
    fn emit(&mut self, d: usize, segs: &[(u64, u32)], txs: &[Tx], fin: bool) {
        let r = 1 - d;
        let from_client = d == 0;
        let n = segs.len();
        let end = segs[n - 1].0 + u64::from(segs[n - 1].1);
        let sender_ack = self.next_seq(r);
        let window = self.window();
        // The sender's data acknowledges all the peer sent.
        self.open(r, self.halves[r].next, window);
        let mut received = vec![false; n];
        let mut cum = 0usize;
        let mut since_ack = 0u32;
        let mut held: Vec<Tx> = Vec::new();
        let mut rest = txs.iter();
        loop {
            let edge = self.edge[d];
            let fits = |t: &Tx| t.off + u64::from(t.len) <= edge;
            let t = if let Some(at) = held.iter().position(fits) {
                held.remove(at)
            } else if let Some(&t) = rest.next() {
                if !fits(&t) {
                    held.push(t);
                    continue;
                }
                t
            } else if held.is_empty() {
                break;
            } else if since_ack > 0 {
                // Everything sent has arrived: the receiver's ACK of it
                // (owed, since it acknowledges every second segment)
                // opens the window.
                self.ack_to(d, segs, cum, fin, sender_ack);
                since_ack = 0;
                continue;
            } else {
                // Not reached: the receiver holds every byte below the
                // edge, and the window is at least a segment wide past
                // it. Sent anyway rather than never.
                debug_assert!(false, "a held segment the window never admits");
                held.remove(0)
            };
            if !t.lost {
                let push = match (t.off + u64::from(t.len) == end, fin) {
                    (true, true) => flags::PSH | flags::FIN,
                    (true, false) => flags::PSH,
                    (false, _) => 0,
                };
                let mut p = self.ctl(
                    from_client,
                    flags::ACK | push,
                    self.halves[d].seq(t.off),
                    sender_ack,
                );
                p.off = t.off;
                p.len = t.len;
                p.variant = t.variant;
                // Drawn only when asked: other traces stay as they were.
                if self.urgent > 0.0 && self.rng.chance(self.urgent) {
                    p.flags |= flags::URG;
                    p.urg = self.rng.range(0, u64::from(t.len + t.len / 2)) as u16;
                }
                p.ts = t.stamp.map(|s| (s, 0));
                self.push(p);
            }
            if let Some(s) = t.covers {
                received[s] = true;
            }
            let old = cum;
            while cum < n && received[cum] {
                cum += 1;
            }
            since_ack += 1;
            if cum == old || since_ack >= 2 {
                self.ack_to(d, segs, cum, fin, sender_ack);
                since_ack = 0;
            }
        }
        if since_ack > 0 {
            self.ack_to(d, segs, n, fin, sender_ack);
        }
    }

    /// Queues direction `d`'s receiver's ACK of segments `..cum` (with
    /// the FIN, when `fin` and `cum` is all of them) and opens the
    /// sender's window from there.
    fn ack_to(&mut self, d: usize, segs: &[(u64, u32)], cum: usize, fin: bool, seq: u32) {
        let n = segs.len();
        let (off, fin) = match segs.get(cum) {
            Some(&(off, _)) => (off, false),
            None => (segs[n - 1].0 + u64::from(segs[n - 1].1), fin),
        };
        let acked = self.halves[d].seq(off).wrapping_add(u32::from(fin));
        let a = self.ctl(d != 0, flags::ACK, seq, acked);
        self.push(a);
        self.open(d, off, self.window());
    }

    /// Adds the message to the direction's truth, in sequence order.
    pub(super) fn hash(
        &mut self,
        d: usize,
        segs: &[(u64, u32)],
        lost: &[bool],
        conflict: Option<usize>,
        scratch: &mut Vec<u8>,
    ) {
        let h = &mut self.halves[d];
        for (i, &(off, len)) in segs.iter().enumerate() {
            if lost[i] {
                h.gap += u64::from(len);
                continue;
            }
            scratch.resize(len as usize, 0);
            fill_payload(h.key, 0, off, scratch);
            h.first.update(&scratch[..]);
            if let Some(last) = &mut h.last {
                if conflict == Some(i) {
                    fill_payload(h.key, 1, off, scratch);
                }
                last.update(&scratch[..]);
            }
            h.delivered += u64::from(len);
        }
    }
}
