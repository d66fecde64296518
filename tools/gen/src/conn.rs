//! One connection's life, planned a phase at a time (handshake, each
//! request/response exchange, close), so memory holds one message's
//! packets per open connection, never a whole connection.
//!
//! Each direction's payload is a pure function of its stream key and
//! offset, so truth is hashed while planning, in sequence order, and the
//! bytes are produced again only when a packet is encoded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sha2::{Digest, Sha256};

use crate::config::{GenConfig, Hostile};
use crate::frame::{flags, Endpoint, Pkt, Tunnel};
use crate::rng::{mix64, Rng};

/// Window shift and raw window of ordinary connections (256 KiB).
const NORMAL_WS: u8 = 7;
const NORMAL_WIN: u16 = 2048;
/// Out-of-order segments planned per refill of an ooo-flood connection.
const FLOOD_BATCH: u64 = 1024;

/// What kind of traffic one connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    Hostile(Hostile),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshake,
    /// Exchanges still to make.
    Exchange(u32),
    /// Out-of-order segments still to send.
    Flood(u64),
    Close,
    Done,
}

/// One direction of the connection.
#[derive(Debug)]
struct Half {
    isn: u32,
    /// Payload stream key ([`fill_payload`]).
    key: u64,
    /// Stream offset of the next byte to send.
    next: u64,
    delivered: u64,
    gap: u64,
    /// SHA-256 of the delivered bytes (first-wins).
    first: Sha256,
    /// SHA-256 under last-wins; kept only for conflict connections.
    last: Option<Sha256>,
}

impl Half {
    fn seq(&self, off: u64) -> u32 {
        self.isn.wrapping_add(1).wrapping_add(off as u32)
    }
}

/// A data transmission as the capture sees it (or would have, if lost).
#[derive(Debug, Clone, Copy)]
struct Tx {
    off: u64,
    len: u32,
    variant: u8,
    /// The original segment this is (None for copies).
    seg: Option<usize>,
    /// The segment whose whole range this carries (originals and exact
    /// copies): the receiver holds that segment once this arrives.
    covers: Option<usize>,
    /// Missing from the capture (the receiver still got it).
    lost: bool,
    /// Part of a conflict: never moved by reordering.
    fixed: bool,
    /// The sender's timestamp when it sent this (in send order; a network
    /// duplicate has its original's).
    stamp: Option<u32>,
}

/// A connection being generated.
#[derive(Debug)]
pub(crate) struct Conn {
    rng: Rng,
    pub client: Endpoint,
    pub server: Endpoint,
    pub vlan: Option<u16>,
    /// The tunnel the connection's frames travel in, if any.
    pub tunnel: Option<Tunnel>,
    /// The network drawn for a VXLAN or Geneve tunnel
    /// ([`GenConfig::networks`]); 0 when none was.
    pub network: u32,
    kind: Kind,
    /// 0: client to server, 1: server to client.
    halves: [Half; 2],
    ws: u8,
    win: u16,
    mss: u32,
    rst: bool,
    /// The first FIN rides on a final message ([`GenConfig::fin_data`]).
    fin_data: bool,
    /// The SYN carries data ([`GenConfig::syn_data`]).
    syn_data: bool,
    /// Data segments sent with an urgent pointer ([`GenConfig::urgent`]).
    urgent: f64,
    ip_id: [u16; 2],
    /// Each sender's timestamp clock ([`GenConfig::timestamps`]).
    ts: Option<[u32; 2]>,
    phase: Phase,
    queue: Vec<Pkt>,
    pos: usize,
    flood_off: u64,
    /// The right edge of each direction's send window, as a stream
    /// offset: the receiver's latest acknowledgment plus its window.
    /// A sender never sends past it ([`Conn::emit`] holds a segment
    /// back until the receiver's acknowledgments open the window).
    edge: [u64; 2],
}

fn pick_addrs(rng: &mut Rng, v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        let r = |rng: &mut Rng| rng.below(1 << 16) as u16;
        let zeroish = rng.chance(0.5);
        let c = Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xc000 | r(rng) & 0xff,
            if zeroish { 0 } else { r(rng) },
            0,
            if zeroish { 0 } else { r(rng) },
            r(rng),
            r(rng),
        );
        let s = Ipv6Addr::new(0x2001, 0xdb8, 5, 0, 0, 0, 0, rng.range(1, 255) as u16);
        (IpAddr::V6(c), IpAddr::V6(s))
    } else {
        let c = Ipv4Addr::new(
            10,
            rng.below(256) as u8,
            rng.below(256) as u8,
            rng.range(1, 254) as u8,
        );
        let s = Ipv4Addr::new(192, 168, rng.below(16) as u8, rng.range(1, 254) as u8);
        (IpAddr::V4(c), IpAddr::V4(s))
    }
}

fn pick_endpoints(rng: &mut Rng, cfg: &GenConfig) -> (Endpoint, Endpoint) {
    const PORTS: [u16; 8] = [80, 443, 8080, 25, 22, 3306, 8443, 21];
    let v6 = rng.chance(cfg.ipv6_fraction);
    let (cip, sip) = pick_addrs(rng, v6);
    let sport = if rng.chance(0.8) {
        PORTS[rng.below(PORTS.len() as u64) as usize]
    } else {
        rng.range(1, 1023) as u16
    };
    let client = Endpoint {
        ip: cip,
        port: rng.range(1024, 65535) as u16,
    };
    let server = Endpoint {
        ip: sip,
        port: sport,
    };
    (client, server)
}

fn new_half(rng: &mut Rng, cfg: &GenConfig, conflict: bool) -> Half {
    let isn = if rng.chance(cfg.wrap_fraction) {
        0u32.wrapping_sub(rng.range(1, 8192) as u32)
    } else {
        rng.next_u64() as u32
    };
    Half {
        isn,
        key: rng.next_u64(),
        next: 0,
        delivered: 0,
        gap: 0,
        first: Sha256::new(),
        last: conflict.then(Sha256::new),
    }
}

impl Conn {
    /// A connection whose every choice derives from `seed`.
    pub fn new(cfg: &GenConfig, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let kind = match cfg.hostile {
            Some(h) if rng.chance(cfg.hostile_fraction) => Kind::Hostile(h),
            _ => Kind::Normal,
        };
        let (client, server) = if cfg.tuple_pool > 0 {
            // The 4-tuple is a pure function of its pool index.
            let idx = rng.below(cfg.tuple_pool.into());
            pick_endpoints(&mut Rng::new(mix64(cfg.seed ^ mix64(idx))), cfg)
        } else {
            pick_endpoints(&mut rng, cfg)
        };
        let vlan = rng
            .chance(cfg.vlan_fraction)
            .then(|| rng.range(1, 4094) as u16);
        let tunnel = rng.chance(cfg.tunnel_fraction).then(|| match rng.below(3) {
            0 => Tunnel::Vxlan,
            1 => Tunnel::Geneve,
            _ => Tunnel::Gtpu,
        });
        let conflict = kind == Kind::Hostile(Hostile::Conflict);
        let halves = [
            new_half(&mut rng, cfg, conflict),
            new_half(&mut rng, cfg, conflict),
        ];
        let (ws, win) = match kind {
            Kind::Hostile(Hostile::HugeWindow | Hostile::OooFlood) => (14, u16::MAX),
            _ => (NORMAL_WS, NORMAL_WIN),
        };
        let mss = match kind {
            Kind::Hostile(Hostile::TinySegments) => 1,
            _ => u32::from(cfg.mss),
        };
        let rst = rng.chance(cfg.rst_fraction);
        let ip_id = [rng.next_u64() as u16, rng.next_u64() as u16];
        // Drawn last and only when asked: other traces stay as they were.
        let fin_data =
            cfg.fin_data > 0.0 && kind == Kind::Normal && !rst && rng.chance(cfg.fin_data);
        let syn_data = cfg.syn_data > 0.0 && kind == Kind::Normal && rng.chance(cfg.syn_data);
        let ts = cfg
            .timestamps
            .then(|| [rng.next_u64() as u32, rng.next_u64() as u32]);
        let overlay = matches!(tunnel, Some(Tunnel::Vxlan | Tunnel::Geneve));
        let network = if cfg.networks > 0 && overlay {
            rng.range(1, cfg.networks.into()) as u32
        } else {
            0
        };
        Conn {
            rng,
            client,
            server,
            vlan,
            tunnel,
            network,
            kind,
            halves,
            ws,
            win,
            mss,
            rst,
            fin_data,
            syn_data,
            urgent: if kind == Kind::Normal {
                cfg.urgent
            } else {
                0.0
            },
            ip_id,
            ts,
            phase: Phase::Handshake,
            queue: Vec::new(),
            pos: 0,
            flood_off: 0,
            edge: [0; 2],
        }
    }

    /// The VNI a VXLAN or Geneve tunnel header carries: the drawn
    /// network, else 42.
    pub fn vni(&self) -> u32 {
        if self.network != 0 {
            self.network
        } else {
            42
        }
    }

    /// The stream key of the sender's direction.
    pub fn key(&self, from_client: bool) -> u64 {
        self.halves[usize::from(!from_client)].key
    }

    /// The next IPv4 identification of a sender.
    pub fn next_ip_id(&mut self, from_client: bool) -> u16 {
        let id = &mut self.ip_id[usize::from(!from_client)];
        *id = id.wrapping_add(1);
        *id
    }

    /// The next packet in capture order, or `None` once the connection is
    /// over. `scratch` is reused for hashing payload.
    pub fn next_packet(&mut self, cfg: &GenConfig, scratch: &mut Vec<u8>) -> Option<Pkt> {
        loop {
            if let Some(p) = self.queue.get(self.pos) {
                self.pos += 1;
                return Some(*p);
            }
            self.queue.clear();
            self.pos = 0;
            if !self.plan(cfg, scratch) {
                return None;
            }
        }
    }

    /// Appends the truth of each direction with data: (first-wins line,
    /// last-wins line). Consumes the hashes.
    pub fn truth_lines(self, out: &mut Vec<(String, String)>) {
        for (d, h) in self.halves.into_iter().enumerate() {
            if h.delivered == 0 && h.gap == 0 {
                continue;
            }
            let (src, dst) = if d == 0 {
                (self.client, self.server)
            } else {
                (self.server, self.client)
            };
            let prefix = format!(
                "{} {} {} {} {} {}",
                src.ip, src.port, dst.ip, dst.port, h.delivered, h.gap
            );
            let first = format!("{prefix} {:x}", h.first.finalize());
            let last = match h.last {
                Some(l) => format!("{prefix} {:x}", l.finalize()),
                None => first.clone(),
            };
            out.push((first, last));
        }
    }

    /// Plans the next phase into the queue; false when there is none.
    fn plan(&mut self, cfg: &GenConfig, scratch: &mut Vec<u8>) -> bool {
        match self.phase {
            Phase::Handshake => self.plan_handshake(cfg, scratch),
            Phase::Exchange(0) => self.phase = Phase::Close,
            Phase::Exchange(n) => {
                let req = self.rng.range(cfg.min_bytes.into(), cfg.max_bytes.into());
                let resp = self.rng.range(cfg.min_bytes.into(), cfg.max_bytes.into());
                self.plan_message(cfg, 0, req, scratch, false);
                self.plan_message(cfg, 1, resp, scratch, false);
                self.phase = Phase::Exchange(n - 1);
            }
            Phase::Flood(n) => self.plan_flood(n),
            Phase::Close => self.plan_close(cfg, scratch),
            Phase::Done => return false,
        }
        true
    }

    /// The next timestamp of sender `d` (0: the client), if timestamps
    /// are on: one tick of its clock.
    fn stamp(&mut self, d: usize) -> Option<u32> {
        let clocks = self.ts.as_mut()?;
        clocks[d] = clocks[d].wrapping_add(1);
        Some(clocks[d])
    }

    /// Queues `p`, stamped with its sender's next timestamp unless it
    /// carries one (and echoing the peer's clock).
    fn push(&mut self, mut p: Pkt) {
        let d = usize::from(!p.from_client);
        if let Some(clocks) = self.ts {
            let tsval = match p.ts {
                Some((tsval, _)) => tsval,
                None => self.stamp(d).unwrap_or(clocks[d]),
            };
            p.ts = Some((tsval, clocks[1 - d]));
        }
        self.queue.push(p);
    }

    fn ctl(&self, from_client: bool, fl: u8, seq: u32, ack: u32) -> Pkt {
        Pkt {
            from_client,
            flags: fl,
            seq,
            ack,
            win: self.win,
            syn_opts: None,
            ts: None,
            off: 0,
            len: 0,
            variant: 0,
            urg: 0,
        }
    }

    /// Sequence number of a sender's next byte, and its peer's ACK for it.
    fn next_seq(&self, d: usize) -> u32 {
        self.halves[d].seq(self.halves[d].next)
    }

    /// The window every segment but a SYN advertises, in bytes (scaled).
    fn window(&self) -> u64 {
        u64::from(self.win) << self.ws
    }

    /// Direction `d`'s receiver acknowledged stream offset `acked` with
    /// `window` bytes: the sender's right edge moves there, never back.
    fn open(&mut self, d: usize, acked: u64, window: u64) {
        self.edge[d] = self.edge[d].max(acked + window);
    }

    fn plan_handshake(&mut self, cfg: &GenConfig, scratch: &mut Vec<u8>) {
        let (c, s) = (self.halves[0].isn, self.halves[1].isn);
        let mut syn = self.ctl(true, flags::SYN, c, 0);
        syn.syn_opts = Some((self.ws, self.mss.min(65_535) as u16));
        syn.win = 64_240;
        if self.syn_data {
            // The request's first bytes, at offset 0 (the byte after the
            // SYN's own sequence number); the truth takes them first.
            let len = self.rng.range(1, u64::from(self.mss.min(1000)));
            syn.len = len as u32;
            self.hash(0, &[(0, syn.len)], &[false], None, scratch);
            self.halves[0].next = len;
        }
        self.push(syn);
        // Past the SYN and its data, if any.
        let c_next = self.next_seq(0);
        if self.kind == Kind::Hostile(Hostile::SynFlood) {
            if self.rng.chance(0.5) {
                let mut sa = self.ctl(false, flags::SYN | flags::ACK, s, c.wrapping_add(1));
                sa.syn_opts = Some((self.ws, self.mss.min(65_535) as u16));
                sa.win = 65_535;
                self.push(sa);
            }
            self.phase = Phase::Done;
            return;
        }
        let mut sa = self.ctl(false, flags::SYN | flags::ACK, s, c_next);
        sa.syn_opts = Some((self.ws, self.mss.min(65_535) as u16));
        sa.win = 65_535;
        self.push(sa);
        // A SYN's window is never scaled: the client's first bytes fit
        // in the SYN-ACK's 64 KiB until the server's next ACK.
        self.open(0, self.halves[0].next, u64::from(sa.win));
        let ack = self.ctl(true, flags::ACK, c_next, s.wrapping_add(1));
        self.push(ack);
        self.open(1, 0, self.window());
        self.phase = if self.kind == Kind::Hostile(Hostile::OooFlood) {
            // The withheld first segment: [0, mss) never appears.
            self.flood_off = u64::from(self.mss);
            Phase::Flood(cfg.flood_segments)
        } else {
            Phase::Exchange(self.rng.range(1, cfg.exchanges.into()) as u32)
        };
    }

    fn plan_flood(&mut self, left: u64) {
        let hole_ack = self.halves[0].seq(0);
        let server_seq = self.next_seq(1);
        let batch = left.min(FLOOD_BATCH);
        for i in 0..batch {
            let len = self.rng.range(1, 8) as u32;
            let off = self.flood_off;
            self.flood_off += u64::from(len) + self.rng.below(u64::from(len) + 1);
            let mut p = self.ctl(
                true,
                flags::ACK | flags::PSH,
                self.halves[0].seq(off),
                server_seq,
            );
            p.off = off;
            p.len = len;
            self.push(p);
            if i % 16 == 15 {
                // Duplicate ACKs that never move past the hole.
                self.push(self.ctl(false, flags::ACK, server_seq, hole_ack));
            }
        }
        if left == batch {
            let rst = self.ctl(true, flags::RST | flags::ACK, hole_ack, server_seq);
            self.push(rst);
            self.phase = Phase::Done;
        } else {
            self.phase = Phase::Flood(left - batch);
        }
    }

    fn plan_close(&mut self, cfg: &GenConfig, scratch: &mut Vec<u8>) {
        let c = usize::from(self.rng.chance(0.5));
        let o = 1 - c;
        let from_c = c == 0;
        let fin = flags::FIN | flags::ACK;
        if self.fin_data {
            // The closer's FIN on its final message's last segment (the
            // peer's ACK of it covers the FIN); `cs` is then the FIN's
            // sequence number.
            // At least a byte: the FIN needs a segment to ride on.
            let (lo, hi) = (cfg.min_bytes.max(1), cfg.max_bytes.max(1));
            let len = self.rng.range(lo.into(), hi.into());
            self.plan_message(cfg, c, len, scratch, true);
        }
        let (cs, os) = (self.next_seq(c), self.next_seq(o));
        if self.rst {
            let p = self.ctl(from_c, flags::RST | flags::ACK, cs, os);
            self.push(p);
        } else {
            if !self.fin_data {
                self.push(self.ctl(from_c, fin, cs, os));
            }
            let b = self.ctl(!from_c, fin, os, cs.wrapping_add(1));
            let last = self.ctl(from_c, flags::ACK, cs.wrapping_add(1), os.wrapping_add(1));
            self.push(b);
            self.push(last);
        }
        self.phase = Phase::Done;
    }
}

mod message;
