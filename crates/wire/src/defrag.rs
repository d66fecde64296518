//! IP defragmentation (RFC 791 §3.2, RFC 8200 §4.5), bounded under attack.
//!
//! The one part of weft-wire that allocates: each datagram in progress owns
//! the bytes received so far (only those: a fragment far into a datagram
//! costs its own size). Limits: at most `max_datagrams` in progress and `max_bytes` of
//! buffers (with a fixed per-datagram overhead counted); when either would
//! be exceeded the datagram nearest its deadline is evicted. Datagrams
//! older than their family's timeout (by capture time: `timeout_ns` for
//! IPv4, 30 s by default, `ipv6_timeout_ns` for IPv6, 60 s as RFC 8200
//! says) are discarded. A datagram may have at most
//! [`MAX_RANGES`] disjoint received ranges and [`MAX_RUNS`] stretches held
//! apart (fragments that arrive out of order each start one): a "tiny
//! fragment" flood is cut off there. Reassembled IPv4 datagrams longer than 65535 bytes and IPv6
//! payloads longer than 65535 are rejected.
//!
//! Where IPv4 fragments overlap, hosts disagree on which bytes they keep,
//! and an IDS that keeps others than its target sees another datagram than
//! the target does (Ptacek & Newsham, 1998). [`DefragConfig::policy`] names
//! the target's rule ([`DefragPolicy`], the target-based model of Novak,
//! "Target-Based Fragmentation Reassembly", 2005); the default is
//! **first-wins**: bytes already received are kept and the overlapping
//! part of a later fragment is discarded (counted in
//! [`DefragStats::dropped_overlap`]). IPv6 forbids overlaps (RFC 5722,
//! RFC 8200 §4.5), whatever the policy: a fragment that overlaps another
//! abandons its whole datagram, as the receiving host does
//! ([`DefragStats::abandoned_overlap`]), except an exact copy of bytes
//! already held (a duplicate), which is dropped alone.
//! [`DefragPolicy::Discard`] rules both families as current Linux does
//! (a fragment inside a run held is a duplicate whatever its bytes, other
//! overlaps discard the datagram and forget it); `linux` and `discard`
//! also take an IPv4 fragment other than the last whose length is not a
//! multiple of 8 as far as its last multiple, as Linux does, where the
//! other policies drop it (RFC 791). The header kept is the one of the
//! first offset-0 fragment seen.
//!
//! A fragment the capture cut short (snap length) cannot be completed: if
//! it is the last one, the datagram is rebuilt with the length the headers
//! promise over the bytes captured, so decoding it reports the missing tail
//! as cut by the capture (as for any truncated packet); any other cut
//! fragment is dropped alone ([`DefragStats::dropped_truncated`]) and its
//! datagram times out, unless that part comes again whole: a fragment whose
//! IP length lies (a host drops it) must not take the datagram's genuine
//! fragments with it.
//!
//! Timeouts and eviction go by each datagram's deadline (its first
//! fragment's time plus its family's timeout), earliest first (a heap, not
//! arrival order: one fragment stamped far in the future does not hold
//! back the expiry of every later one).
//!
//! `Defragmenter` is owned by one thread; it is `Send + Sync` (plain data).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use hashbrown::HashMap;

use crate::checksum::internet_checksum;
use crate::{Fragment, Timestamp};

/// Disjoint received ranges one datagram may hold before it is dropped.
pub const MAX_RANGES: usize = 256;

/// Stretches of bytes one datagram may hold apart before it is dropped:
/// each fragment that does not continue the one before it in the datagram
/// starts one, even where the ranges received merge (fragments sent in
/// reverse). A 64 KiB datagram in 1,280-byte fragments, reversed, makes 52;
/// in 8-byte ones up to 8,192, which made each duplicate IPv6 fragment
/// compare itself with thousands of them.
pub const MAX_RUNS: usize = 1024;

/// Owners one datagram's bytes may have under a policy that lets later
/// IPv4 fragments win ([`DefragPolicy`]): every fragment owns its bytes,
/// in order or not, so this is one per 8 bytes of the longest datagram
/// (a host reassembles 8-byte fragments in order; a lower bound here let
/// a sender pass a datagram the host takes by the IDS).
pub const MAX_OWNERS: usize = 65_536 / 8;

/// Bytes counted per datagram in progress besides its buffers.
const DATAGRAM_OVERHEAD: usize = 128;

/// Bytes counted for a B-tree of `len` entries of `K` → `V` (a
/// datagram's runs, owners, Linux queue): any entry at all takes a whole
/// leaf of the standard library's (11 entries and a header of at most 16
/// bytes), and past it nodes are at least about half full, so three times
/// the key and value an entry is an upper estimate.
fn tree_bytes<K, V>(len: usize) -> usize {
    let entry = std::mem::size_of::<(K, V)>();
    if len == 0 {
        0
    } else {
        (3 * entry * len).max(16 + 11 * entry)
    }
}

/// Which bytes an IPv4 host keeps where a fragment overlaps bytes it
/// already holds. Plain data: `Send + Sync`.
///
/// Each held byte came from one earlier fragment, its *owner* `[os, oe)`:
/// what the host still holds of it, as BSD and Linux stacks trim what
/// they hold (a fragment whose front a later one took starts where that
/// one ends; a fragment starts at the first byte it kept). A new fragment
/// `[ns, ne)` replaces the byte where the policy favours it over that
/// owner, and then owns the byte itself. The rules and host families are
/// those of Novak's paper (measured on the stacks of 2005; current Linux
/// discards instead, see [`Discard`](Self::Discard)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DefragPolicy {
    /// Bytes already held always win (HP-UX 11, Mac OS of the paper).
    #[default]
    First,
    /// The later fragment always wins (Cisco IOS).
    Last,
    /// The later fragment wins where it starts before the owner (`ns <
    /// os`): AIX, FreeBSD, HP-UX 10, IRIX.
    Bsd,
    /// As BSD, and also where it starts with the owner (`ns <= os`): Linux
    /// before 4.19.
    Linux,
    /// The later fragment wins only where it starts before the owner and
    /// ends after it (`ns < os && ne > oe`): Windows.
    Windows,
    /// As Windows, and also where it ends with the owner (`ns < os && ne
    /// >= oe`): Solaris, SunOS.
    Solaris,
    /// Overlaps discard the whole datagram, as current Linux does in both
    /// families (its ordered fragment queue: IPv4 since 4.19 and 5.0,
    /// IPv6 since 5.1; RFC 5722's rule for IPv6), and as Linux rules
    /// them: a fragment that lies
    /// inside a run it holds (fragments that arrived in order, each
    /// continuing the one that ended highest) is a duplicate, dropped
    /// alone whatever its bytes; any other overlap discards the datagram,
    /// which is then forgotten (its later fragments start a new one, as
    /// in Linux's queue), and so does a last fragment whose end differs
    /// from the datagram's or falls short of bytes held, a non-last
    /// fragment past the datagram's end, or a fragment of no bytes (an
    /// IPv4 one trimmed to none included); an IPv4 fragment reaching past
    /// 65,535 bytes is held, and its datagram fails when it is whole.
    /// Lengths are those the host saw (a last fragment the capture cut
    /// reaches as far as its header says). Applies to IPv6 datagrams too, where the
    /// destination's policy is this one; other IPv6 datagrams follow RFC
    /// 5722 strictly.
    Discard,
}

impl DefragPolicy {
    /// All policies, for tests and command-line help.
    pub const ALL: [DefragPolicy; 7] = [
        DefragPolicy::First,
        DefragPolicy::Last,
        DefragPolicy::Bsd,
        DefragPolicy::Linux,
        DefragPolicy::Windows,
        DefragPolicy::Solaris,
        DefragPolicy::Discard,
    ];

    /// The policy's name, as [`FromStr`] accepts it.
    pub fn name(self) -> &'static str {
        match self {
            DefragPolicy::First => "first",
            DefragPolicy::Last => "last",
            DefragPolicy::Bsd => "bsd",
            DefragPolicy::Linux => "linux",
            DefragPolicy::Windows => "windows",
            DefragPolicy::Solaris => "solaris",
            DefragPolicy::Discard => "discard",
        }
    }

    /// Does a later fragment covering `[ns, ne)` replace bytes owned by
    /// the fragment that covered `[os, oe)`? (`Discard` never gets here.)
    pub fn later_wins(self, (ns, ne): (u32, u32), (os, oe): (u32, u32)) -> bool {
        match self {
            DefragPolicy::First | DefragPolicy::Discard => false,
            DefragPolicy::Last => true,
            DefragPolicy::Bsd => ns < os,
            DefragPolicy::Linux => ns <= os,
            DefragPolicy::Windows => ns < os && ne > oe,
            DefragPolicy::Solaris => ns < os && ne >= oe,
        }
    }

    /// Whether held bytes may be replaced, so each byte's owner is kept.
    fn tracks_owners(self) -> bool {
        !matches!(self, DefragPolicy::First | DefragPolicy::Discard)
    }
}

impl fmt::Display for DefragPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DefragPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<DefragPolicy, String> {
        DefragPolicy::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = DefragPolicy::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown fragment overlap policy {s:?} (expected {})",
                    names.join(", ")
                )
            })
    }
}

/// Limits and overlap policy for a [`Defragmenter`]. Plain data: `Send +
/// Sync`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefragConfig {
    /// Datagrams in progress at once (default 4096). `0` holds none:
    /// every fragment is dropped (counted), which turns defragmentation
    /// off; there is no "no limit".
    pub max_datagrams: usize,
    /// Buffered bytes across all datagrams in progress (default 16 MiB).
    pub max_bytes: usize,
    /// Capture-time nanoseconds after an IPv4 datagram's first fragment
    /// at which it is discarded incomplete (default 30 s, as Linux).
    pub timeout_ns: u64,
    /// The same for IPv6 (default 60 s: RFC 8200 §4.5, and Linux).
    pub ipv6_timeout_ns: u64,
    /// Which bytes win where IPv4 fragments overlap (default
    /// [`DefragPolicy::First`]), for a destination `policy_by_host` does
    /// not name; IPv6 follows RFC 5722 strictly, unless the destination's
    /// policy is [`DefragPolicy::Discard`] (Linux's rules).
    pub policy: DefragPolicy,
    /// The policy of each destination host, by its address (the longest
    /// matching network's): a datagram is rebuilt as the host it goes to
    /// rebuilds it. Empty by default.
    pub policy_by_host: crate::NetTable<DefragPolicy>,
}

impl DefragConfig {
    /// The policy of the host at `dst`.
    pub fn policy_for(&self, dst: IpAddr) -> DefragPolicy {
        if self.policy_by_host.is_empty() {
            return self.policy;
        }
        self.policy_by_host.get(dst).unwrap_or(self.policy)
    }
}

impl Default for DefragConfig {
    fn default() -> DefragConfig {
        DefragConfig {
            max_datagrams: 4096,
            max_bytes: 16 << 20,
            timeout_ns: 30_000_000_000,
            ipv6_timeout_ns: 60_000_000_000,
            policy: DefragPolicy::First,
            policy_by_host: crate::NetTable::new(),
        }
    }
}

/// Counters. Plain data: `Send + Sync`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefragStats {
    /// Fragments pushed.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Datagrams discarded incomplete after the timeout.
    pub timed_out: u64,
    /// Fragments that overlapped bytes already held and lost some of
    /// their own bytes to them (first-wins: every such fragment).
    pub dropped_overlap: u64,
    /// Fragments some of whose bytes replaced bytes already held (the
    /// policy favoured them; never under first-wins).
    pub replaced_overlap: u64,
    /// Datagrams discarded to respect `max_datagrams`, `max_bytes`,
    /// [`MAX_RANGES`] or [`MAX_RUNS`].
    pub dropped_limit: u64,
    /// Fragments or datagrams rejected as malformed: too long, a non-last
    /// fragment not a multiple of 8 bytes (but as `linux` and `discard`
    /// trim it), or an end contradicting an earlier last fragment (under
    /// `discard`, such a fragment, and one of no bytes, discards its
    /// datagram too).
    pub dropped_invalid: u64,
    /// Datagrams abandoned because two of their fragments overlapped
    /// (other than as duplicates): IPv6, and any datagram under
    /// [`DefragPolicy::Discard`].
    pub abandoned_overlap: u64,
    /// Fragments other than the last dropped because their IP length
    /// promises more than the frame holds (cut by the capture, or a lie a
    /// host drops); their datagram completes if that part comes whole, or
    /// times out.
    pub dropped_truncated: u64,
}

impl DefragStats {
    /// Datagrams given up, each for one reason: timed out, over a limit or
    /// overlapping (IPv6); plus fragments rejected as malformed or cut
    /// short.
    pub fn dropped(&self) -> u64 {
        self.timed_out
            + self.dropped_limit
            + self.dropped_invalid
            + self.abandoned_overlap
            + self.dropped_truncated
    }

    /// Adds another defragmenter's counters.
    pub fn merge(&mut self, o: &DefragStats) {
        self.fragments += o.fragments;
        self.reassembled += o.reassembled;
        self.timed_out += o.timed_out;
        self.dropped_overlap += o.dropped_overlap;
        self.replaced_overlap += o.replaced_overlap;
        self.dropped_limit += o.dropped_limit;
        self.dropped_invalid += o.dropped_invalid;
        self.abandoned_overlap += o.abandoned_overlap;
        self.dropped_truncated += o.dropped_truncated;
    }
}

/// A reassembled datagram. Owned; `Send + Sync`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reassembled {
    /// The complete IP datagram with a rewritten header: IPv4 with MF
    /// clear, offset 0, total length and header checksum fixed; IPv6 with
    /// the fragment header removed and the payload length fixed. Feed it
    /// to [`crate::decode_ip`].
    pub packet: Vec<u8>,
    /// The fragments' folded VLAN IDs.
    pub vlan: u32,
    /// The fragments' virtual network ([`crate::FlowKey::vni`]): decode
    /// the datagram with [`crate::decode_ip_in`] in [`zone`](Self::zone).
    pub vni: u32,
    /// The tunnels the fragments came out of ([`crate::FlowKey::tunnel_ends`]).
    pub ends: u16,
}

impl Reassembled {
    /// The fragments' VLANs, network and tunnel, to decode the datagram in.
    pub fn zone(&self) -> crate::Zone {
        crate::Zone {
            vlan: self.vlan,
            vni: self.vni,
            ends: self.ends,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    protocol: u8,
    vlan: u32,
    vni: u32,
    ends: u16,
}

#[derive(Debug)]
struct Datagram {
    /// Distinguishes this datagram from an earlier one with the same key in
    /// the age queue.
    generation: u64,
    /// Given up (an IPv6 overlap, a fragment cut by the capture): its
    /// buffers are freed, and the entry stays until its timeout so that
    /// the datagram's later fragments are dropped with it, not taken for
    /// a new datagram that would be counted again when it times out.
    abandoned: bool,
    version: u8,
    protocol: u8,
    /// The destination's overlap policy.
    policy: DefragPolicy,
    header: Vec<u8>,
    /// The bytes received, in arrival order, each byte once (first wins).
    /// Only what arrived is stored: a tiny fragment far into the datagram
    /// costs its own size, not a buffer zero-filled up to its offset (which
    /// made an 8-byte fragment at offset 65,520 cost a 64 KiB fill on the
    /// dispatcher's thread).
    held: Vec<u8>,
    /// Where the runs of `held` go: start in the datagram → `(length,
    /// start in held)`. Ordered by where they go, so a fragment finds
    /// those it covers at a cost that does not grow with how many there
    /// are (each fragment that arrives out of order starts one).
    runs: BTreeMap<u32, (u32, u32)>,
    /// The start of the run that took the last bytes added to `held`
    /// (the next fragment in order extends it).
    last_run: Option<u32>,
    /// Invariant: sorted, disjoint, non-adjacent, non-empty ranges; their
    /// union is the union of `runs`.
    have: Vec<(u32, u32)>,
    /// Under a policy that lets later fragments replace held bytes (IPv4):
    /// the owner of each held byte, by where its bytes start, disjoint,
    /// covering `have`; empty otherwise. Ordered so that a fragment
    /// changes the owners it touches without moving the others: with
    /// thousands held, a sender splitting and joining owners at the front
    /// made every fragment move them all (128 KiB).
    owners: BTreeMap<u32, Owner>,
    /// Under [`DefragPolicy::Discard`]: Linux's runs of fragments, start →
    /// end (see `queue`), and the run ending highest (Linux's tail).
    queue: BTreeMap<u32, u32>,
    tail: Option<(u32, u32)>,
    /// Payload length captured, known once the last fragment arrived.
    total: Option<u32>,
    /// Bytes the capture cut off the end of the last fragment.
    tail_missing: u32,
}

/// Reassembles IPv4 and IPv6 fragments; see the module docs for limits and
/// the overlap policy.
#[derive(Debug)]
pub struct Defragmenter {
    config: DefragConfig,
    map: HashMap<Key, Datagram>,
    /// Datagrams by deadline (the time of their first fragment plus their
    /// family's timeout), earliest on top; entries whose generation no
    /// longer matches the map are stale and skipped.
    ages: BinaryHeap<Reverse<(Timestamp, u64, Key)>>,
    bytes: usize,
    next_generation: u64,
    stats: DefragStats,
}

impl Defragmenter {
    /// An empty defragmenter with `config`'s limits.
    pub fn new(config: DefragConfig) -> Defragmenter {
        Defragmenter {
            config,
            map: HashMap::new(),
            ages: BinaryHeap::new(),
            bytes: 0,
            next_generation: 0,
            stats: DefragStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> DefragStats {
        self.stats
    }

    /// Datagrams in progress, and the abandoned ones remembered until their
    /// timeout (so that their later fragments are dropped with them).
    pub fn in_progress(&self) -> usize {
        self.map.len()
    }

    /// Bytes counted against `max_bytes`.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// Adds a fragment seen at `now`; returns the datagram it completes.
    pub fn push(&mut self, frag: &Fragment<'_>, now: Timestamp) -> Option<Reassembled> {
        self.stats.fragments += 1;
        self.expire(now);
        let key = Key {
            src: frag.src,
            dst: frag.dst,
            id: frag.id,
            // IPv6 fragments of one packet may name different next headers
            // (RFC 8200 §4.5: the offset-0 one counts); a host keys them
            // by addresses and identification alone.
            protocol: if frag.ip_version == 6 {
                0
            } else {
                frag.protocol
            },
            vlan: frag.vlan,
            vni: frag.vni,
            ends: frag.ends,
        };
        let held = self
            .map
            .get(&key)
            .map(|d| (d.abandoned, d.growth(frag), d.policy));
        if held.is_some_and(|(abandoned, ..)| abandoned) {
            // Part of a datagram already given up (and counted).
            return None;
        }
        if frag.missing > 0 && frag.more {
            // Its IP length promises more than the frame holds (at any
            // length, so before the multiple-of-8 test): cut by the
            // capture, or a lie a host drops. Dropped alone, so a lie
            // cannot make the datagram's genuine fragments be dropped with
            // it (a host completes the datagram from them); cut by the
            // capture, the datagram then times out.
            self.stats.dropped_truncated += 1;
            return None;
        }
        let mut trimmed;
        let mut frag = frag;
        let mut emptied = false;
        // The policy of the host it goes to.
        let policy = held.map_or_else(|| self.config.policy_for(frag.dst), |(.., p)| p);
        let linux_v4 =
            frag.ip_version == 4 && matches!(policy, DefragPolicy::Linux | DefragPolicy::Discard);
        if frag.more && frag.data.len() % 8 != 0 && linux_v4 {
            // Linux takes a fragment other than the last whose length is
            // not a multiple of 8 as far as the last multiple (IPv4); one
            // left with nothing it drops (`linux`, before 4.19) or
            // discards the datagram for (`discard`: see `Datagram::insert`).
            trimmed = *frag;
            trimmed.data = &frag.data[..frag.data.len() & !7];
            emptied = trimmed.data.is_empty() && policy == DefragPolicy::Linux;
            frag = &trimmed;
        }
        // Current Linux queues an IPv4 fragment reaching past 65,535
        // bytes (the datagram then fails when it is rebuilt, or when a
        // last fragment ends short of it).
        let end = u64::from(frag.offset) + frag.data.len() as u64 + u64::from(frag.missing);
        let oversize = end > 65535 && !(linux_v4 && policy == DefragPolicy::Discard);
        if oversize || emptied || (frag.more && frag.data.len() % 8 != 0) {
            self.stats.dropped_invalid += 1;
            return None;
        }
        let growth = match held {
            Some((_, growth, _)) => growth,
            None => {
                if !self.create(key, frag, now, policy) {
                    return None;
                }
                Datagram::growth_of_new(frag, policy)
            }
        };
        if growth > self.config.max_bytes {
            self.discard(&key);
            self.stats.dropped_limit += 1;
            return None;
        }
        while self.bytes + growth > self.config.max_bytes && self.evict_oldest() {}
        self.add(key, frag)
    }

    /// Discards datagrams whose first fragment is older than their
    /// family's timeout.
    pub fn expire(&mut self, now: Timestamp) {
        while let Some(&Reverse((deadline, generation, key))) = self.ages.peek() {
            // Nothing is due before the earliest deadline, stale or not: no
            // lookup for the fragments of datagrams in time.
            if now <= deadline {
                return;
            }
            match self.map.get(&key) {
                Some(d) if d.generation == generation => {
                    let counted = d.abandoned;
                    self.discard(&key);
                    if !counted {
                        self.stats.timed_out += 1;
                    }
                }
                _ => {}
            }
            self.ages.pop();
        }
    }

    fn create(
        &mut self,
        key: Key,
        frag: &Fragment<'_>,
        now: Timestamp,
        policy: DefragPolicy,
    ) -> bool {
        while self.map.len() >= self.config.max_datagrams && self.evict_oldest() {}
        if self.map.len() >= self.config.max_datagrams {
            self.stats.dropped_limit += 1;
            return false;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.map
            .insert(key, Datagram::new(generation, frag, policy));
        self.bytes += DATAGRAM_OVERHEAD;
        let timeout = if frag.ip_version == 6 {
            self.config.ipv6_timeout_ns
        } else {
            self.config.timeout_ns
        };
        let deadline = Timestamp(now.0.saturating_add(timeout));
        self.ages.push(Reverse((deadline, generation, key)));
        if self.ages.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.ages
                .retain(|Reverse((_, g, k))| map.get(k).is_some_and(|d| d.generation == *g));
        }
        true
    }

    fn add(&mut self, key: Key, frag: &Fragment<'_>) -> Option<Reassembled> {
        // The datagram may itself have been the oldest and evicted.
        let d = self.map.get_mut(&key)?;
        let policy = d.policy;
        let before = d.bytes();
        let outcome = d.insert(frag);
        let complete = matches!(outcome, Insert::Ok { .. }) && d.complete();
        let after = d.bytes();
        self.bytes = (self.bytes + after).saturating_sub(before);
        // `growth` is an estimate; settle any excess (possibly evicting
        // this very datagram).
        if self.bytes > self.config.max_bytes {
            while self.bytes > self.config.max_bytes && self.evict_oldest() {}
            if !self.map.contains_key(&key) {
                return None;
            }
        }
        match outcome {
            Insert::Ok { lost, won } => {
                self.stats.dropped_overlap += u64::from(lost);
                self.stats.replaced_overlap += u64::from(won);
            }
            Insert::Duplicate => {
                self.stats.dropped_overlap += 1;
                return None;
            }
            Insert::Invalid => {
                if policy == DefragPolicy::Discard {
                    // Linux kills its queue for a length that contradicts
                    // the datagram's, or a fragment of no bytes.
                    self.discard(&key);
                }
                self.stats.dropped_invalid += 1;
                return None;
            }
            Insert::TooManyRanges => {
                self.discard(&key);
                self.stats.dropped_limit += 1;
                return None;
            }
            Insert::Overlap => {
                if policy == DefragPolicy::Discard {
                    // Forgotten, as Linux kills its queue.
                    self.discard(&key);
                } else {
                    self.abandon(&key);
                }
                self.stats.abandoned_overlap += 1;
                return None;
            }
        }
        if !complete {
            return None;
        }
        let d = self.discard(&key)?;
        let packet = d.build();
        if packet.is_none() {
            self.stats.dropped_invalid += 1;
        } else {
            self.stats.reassembled += 1;
        }
        Some(Reassembled {
            packet: packet?,
            vlan: key.vlan,
            vni: key.vni,
            ends: key.ends,
        })
    }

    /// Gives datagram `key` up: its buffers go, the entry stays (see
    /// `Datagram::abandoned`).
    fn abandon(&mut self, key: &Key) {
        if let Some(d) = self.map.get_mut(key) {
            self.bytes = self.bytes.saturating_sub(d.bytes());
            d.abandoned = true;
            d.header = Vec::new();
            d.held = Vec::new();
            d.runs = BTreeMap::new();
            d.have = Vec::new();
            d.owners = BTreeMap::new();
            d.queue = BTreeMap::new();
        }
    }

    fn discard(&mut self, key: &Key) -> Option<Datagram> {
        let d = self.map.remove(key)?;
        self.bytes = self.bytes.saturating_sub(d.bytes() + DATAGRAM_OVERHEAD);
        Some(d)
    }

    /// Evicts the datagram closest to its deadline (the oldest, within a
    /// family); false if there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some(Reverse((_, generation, key))) = self.ages.pop() {
            if self
                .map
                .get(&key)
                .is_some_and(|d| d.generation == generation)
            {
                // An abandoned one was counted when it was given up.
                if !self.discard(&key).is_some_and(|d| d.abandoned) {
                    self.stats.dropped_limit += 1;
                }
                return true;
            }
        }
        false
    }
}

/// Bytes `[lo, hi)` of a datagram, held from the fragment that covered
/// `from` (see [`DefragPolicy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Owner {
    lo: u32,
    hi: u32,
    from: (u32, u32),
}

/// Where a fragment went in Linux's queue (see `Datagram::queue`).
enum Queued {
    New,
    Duplicate,
    Overlap,
}

enum Insert {
    /// Dropped alone as a duplicate ([`DefragPolicy::Discard`]).
    Duplicate,
    Ok {
        /// Some of the fragment's bytes lost to bytes held.
        lost: bool,
        /// Some of the fragment's bytes replaced bytes held.
        won: bool,
    },
    Invalid,
    TooManyRanges,
    /// IPv6 fragments that overlap (other than as a duplicate).
    Overlap,
}

impl Datagram {
    fn new(generation: u64, frag: &Fragment<'_>, policy: DefragPolicy) -> Datagram {
        Datagram {
            generation,
            abandoned: false,
            version: frag.ip_version,
            protocol: frag.protocol,
            policy,
            header: Vec::new(),
            held: Vec::new(),
            runs: BTreeMap::new(),
            last_run: None,
            have: Vec::new(),
            owners: BTreeMap::new(),
            queue: BTreeMap::new(),
            tail: None,
            total: None,
            tail_missing: 0,
        }
    }

    fn bytes(&self) -> usize {
        self.header.capacity()
            + self.held.capacity()
            + tree_bytes::<u32, (u32, u32)>(self.runs.len())
            + self.have.capacity() * 8
            + tree_bytes::<u32, Owner>(self.owners.len())
            + tree_bytes::<u32, u32>(self.queue.len())
    }

    /// Bytes this fragment would add to the buffers, at most (vectors may
    /// double; `add` settles the exact figure).
    fn growth(&self, frag: &Fragment<'_>) -> usize {
        Self::growth_with(frag, self.header.is_empty(), self.policy)
    }

    /// [`growth`](Self::growth) for a datagram just created under `policy`.
    fn growth_of_new(frag: &Fragment<'_>, policy: DefragPolicy) -> usize {
        Self::growth_with(frag, true, policy)
    }

    fn growth_with(frag: &Fragment<'_>, headerless: bool, policy: DefragPolicy) -> usize {
        let header = if frag.offset == 0 && headerless {
            frag.header.len()
        } else {
            0
        };
        // A run, an owner split in three and the fragment's own pieces, or
        // a run of Linux's queue, or the first leaf of each tree the
        // policy uses.
        let runs = tree_bytes::<u32, (u32, u32)>(1);
        let tracks = frag.ip_version == 4 && policy.tracks_owners();
        let owners = if tracks {
            tree_bytes::<u32, Owner>(4)
        } else {
            0
        };
        let queue = if policy == DefragPolicy::Discard {
            tree_bytes::<u32, u32>(1)
        } else {
            0
        };
        frag.data.len() + header + runs + 16 + owners + queue
    }

    fn insert(&mut self, frag: &Fragment<'_>) -> Insert {
        let policy = self.policy;
        let start = frag.offset;
        let end = start + frag.data.len() as u32;
        // Before the length checks: an overlapping IPv6 fragment abandons
        // the datagram whatever else is wrong with it.
        let linux = policy == DefragPolicy::Discard;
        let strict = self.version == 6 && !linux;
        if strict && self.overlaps(start, end) && !self.holds_copy(start, frag.data) {
            return Insert::Overlap;
        }
        // Under Linux's rules, lengths as the host saw them: a last
        // fragment the capture cut reaches as far as its header says.
        let (reach, total) = if linux {
            let t = self.total.map(|t| t + self.tail_missing);
            (end + frag.missing, t)
        } else {
            (end, self.total)
        };
        let past_total = total.is_some_and(|t| reach > t);
        let held_end = self.have.last().map_or(0, |r| r.1);
        if past_total || (!frag.more && (held_end > reach || total.is_some_and(|t| t != reach))) {
            return Insert::Invalid;
        }
        // (Under Linux's rules the first last fragment's length stays: a
        // later one equals it, or is a duplicate of it.)
        let keeps_total = linux && self.total.is_some();
        if !frag.more && !keeps_total {
            // What is held may already reach past what the capture kept
            // of it (it is then a duplicate of whole fragments held).
            let (t, missing) = if linux {
                let t = end.max(held_end);
                (t, reach - t)
            } else {
                (end, frag.missing)
            };
            self.total = Some(t);
            self.tail_missing = missing;
        }
        if start == 0 && self.header.is_empty() {
            self.header = frag.header.to_vec();
            self.protocol = frag.protocol;
        }
        if linux {
            // No bytes, as the host saw it.
            if start == reach {
                return Insert::Invalid;
            }
            match self.queue(start, reach) {
                Queued::Overlap => return Insert::Overlap,
                // Dropped alone: no byte of it kept, and (as in Linux)
                // the datagram is not completed by it.
                Queued::Duplicate => return Insert::Duplicate,
                Queued::New => {}
            }
        }
        if start == end {
            return Insert::Ok {
                lost: false,
                won: false,
            };
        }
        let (lost, won) = if self.version == 4 && policy.tracks_owners() {
            self.settle(start, end, frag.data, policy)
        } else {
            (self.overlaps(start, end), false)
        };
        self.copy_gaps(start, end, frag.data);
        self.merge(start, end);
        // Owners start at multiples of 8 (a fragment's offset, or the
        // end of one, itself a multiple but for the last): never more.
        debug_assert!(self.owners.len() <= MAX_OWNERS);
        if self.have.len() > MAX_RANGES || self.runs.len() > MAX_RUNS {
            return Insert::TooManyRanges;
        }
        Insert::Ok { lost, won }
    }

    /// Under a policy that lets later fragments win: replaces the held
    /// bytes of `[start, end)` whose owners `policy` favours the fragment
    /// over, and makes the fragment the owner of those and of the bytes
    /// not yet held (which `copy_gaps` then keeps). Returns whether some
    /// held bytes were kept against it, and whether some were replaced.
    ///
    /// As the hosts do, a fragment is compared with what is left of each
    /// held one: an owner whose front the fragment takes then starts
    /// where the fragment ends, and the fragment itself starts at the
    /// first byte it keeps (a BSD or Linux stack trims the fragments it
    /// holds, and a later one meets the trimmed offsets). The decisions
    /// of this one fragment are all taken against its own start.
    /// Only the owners it touches are rebuilt (found by binary search):
    /// fragments in order cost the same at any count.
    fn settle(&mut self, start: u32, end: u32, src: &[u8], policy: DefragPolicy) -> (bool, bool) {
        let new = (start, end);
        if self
            .owners
            .last_key_value()
            .map_or(true, |(_, o)| o.hi <= start)
        {
            // Past every owner (fragments in order): all its bytes are its
            // own, and it joins none (its neighbour's fragment ended
            // before it began).
            let own = Owner {
                lo: start,
                hi: end,
                from: new,
            };
            self.owners.insert(start, own);
            return (false, false);
        }
        let touched: Vec<Owner> = overlapping(&self.owners, start, end, |_, o| o.hi)
            .map(|(_, &o)| o)
            .collect();
        // The first byte the fragment keeps: a gap, or an owner it beats
        // (`end` if none).
        let mut first = start;
        for o in &touched {
            if first < o.lo || policy.later_wins(new, o.from) {
                break;
            }
            first = o.hi.min(end);
        }
        let mine = (first, end);
        let (mut lost, mut won) = (false, false);
        let mut window: Vec<Owner> = Vec::with_capacity(touched.len() + 4);
        // Neighbours from one fragment are one owner.
        let push = |window: &mut Vec<Owner>, o: Owner| match window.last_mut() {
            Some(last) if last.hi == o.lo && last.from == o.from => last.hi = o.hi,
            _ => window.push(o),
        };
        let mut wins = Vec::new();
        let mut cur = start;
        for &o in &touched {
            let (lo, hi) = (o.lo.max(start), o.hi.min(end));
            if cur < lo {
                push(
                    &mut window,
                    Owner {
                        lo: cur,
                        hi: lo,
                        from: mine,
                    },
                );
            }
            if policy.later_wins(new, o.from) {
                if o.lo < start {
                    push(&mut window, Owner { hi: start, ..o });
                }
                push(&mut window, Owner { lo, hi, from: mine });
                if o.hi > end {
                    // What is left of it now starts where this one ends.
                    let from = (end, o.from.1);
                    push(
                        &mut window,
                        Owner {
                            lo: end,
                            hi: o.hi,
                            from,
                        },
                    );
                }
                wins.push((lo, hi));
                won = true;
            } else {
                push(&mut window, o);
                lost = true;
            }
            cur = hi;
        }
        if cur < end {
            push(
                &mut window,
                Owner {
                    lo: cur,
                    hi: end,
                    from: mine,
                },
            );
        }
        // Join the window to its neighbours where they are one owner
        // (none of them touched: those start within `[start, end)`).
        if let Some(w) = window.first_mut() {
            if let Some((_, &before)) = self.owners.range(..w.lo).next_back() {
                if before.hi == w.lo && before.from == w.from {
                    w.lo = before.lo;
                    self.owners.remove(&before.lo);
                }
            }
        }
        if let Some(w) = window.last_mut() {
            if let Some(&after) = self.owners.get(&w.hi) {
                if after.from == w.from {
                    w.hi = after.hi;
                    self.owners.remove(&after.lo);
                }
            }
        }
        for o in &touched {
            self.owners.remove(&o.lo);
        }
        self.owners.extend(window.into_iter().map(|o| (o.lo, o)));
        for (lo, hi) in wins {
            self.overwrite(lo, hi, &src[(lo - start) as usize..(hi - start) as usize]);
        }
        (lost, won)
    }

    /// Places `[start, end)` in Linux's queue of fragment runs as its
    /// `inet_frag_queue_insert` does: past the tail's end it
    /// continues the tail's run if it starts where the tail ends, starts
    /// a run of its own beyond, and overlaps if it starts before; else it
    /// is a duplicate if it lies inside one run, new if it touches none,
    /// an overlap otherwise.
    fn queue(&mut self, start: u32, end: u32) -> Queued {
        match self.tail {
            Some((ts, te)) if te < end => {
                if start < te {
                    return Queued::Overlap;
                }
                let run = if start == te { ts } else { start };
                self.queue.insert(run, end);
                self.tail = Some((run, end));
                Queued::New
            }
            Some(_) => match overlapping(&self.queue, start, end, |_, &e| e).next() {
                None => {
                    self.queue.insert(start, end);
                    Queued::New
                }
                Some((&s, &e)) if s <= start && end <= e => Queued::Duplicate,
                Some(_) => Queued::Overlap,
            },
            None => {
                self.queue.insert(start, end);
                self.tail = Some((start, end));
                Queued::New
            }
        }
    }

    /// Replaces the held bytes of `[lo, hi)` (all held) with `data`.
    fn overwrite(&mut self, lo: u32, hi: u32, data: &[u8]) {
        for (&rs, &(rl, at)) in overlapping(&self.runs, lo, hi, |rs, r| rs + r.0) {
            let (a, b) = (lo.max(rs), hi.min(rs + rl));
            self.held[(at + a - rs) as usize..(at + b - rs) as usize]
                .copy_from_slice(&data[(a - lo) as usize..(b - lo) as usize]);
        }
    }

    /// Whether any byte of `[start, end)` is held already.
    fn overlaps(&self, start: u32, end: u32) -> bool {
        let i = self.have.partition_point(|r| r.1 <= start);
        self.have.get(i).is_some_and(|r| r.0 < end)
    }

    /// Whether `data` at `start` is held already, byte for byte: a
    /// duplicate fragment.
    fn holds_copy(&self, start: u32, data: &[u8]) -> bool {
        let end = start + data.len() as u32;
        let i = self.have.partition_point(|r| r.1 <= start);
        if !self.have.get(i).is_some_and(|r| r.0 <= start && end <= r.1) {
            return false;
        }
        // The runs that cover `[start, end)` cover it once: compare each
        // one's share.
        overlapping(&self.runs, start, end, |rs, r| rs + r.0).all(|(&rs, &(rl, at))| {
            let (lo, hi) = (start.max(rs), end.min(rs + rl));
            let held = &self.held[(at + lo - rs) as usize..(at + hi - rs) as usize];
            held == &data[(lo - start) as usize..(hi - start) as usize]
        })
    }

    /// Keeps the parts of `[start, end)` not yet held.
    fn copy_gaps(&mut self, start: u32, end: u32, src: &[u8]) {
        let mut cur = start;
        let (held, runs, last_run) = (&mut self.held, &mut self.runs, &mut self.last_run);
        let mut keep = |from: u32, to: u32| {
            let part = &src[(from - start) as usize..(to - start) as usize];
            // Each byte of the datagram (at most 65,535) is kept once, so
            // offsets into `held` fit in u32.
            let at = held.len() as u32;
            let last = last_run.and_then(|rs| Some((rs, runs.get_mut(&rs)?)));
            match last {
                // Right after the last run, in the datagram and in `held`
                // (fragments in order): one run.
                Some((rs, last)) if rs + last.0 == from && last.1 + last.0 == at => {
                    last.0 += to - from;
                }
                _ => {
                    runs.insert(from, (to - from, at));
                    *last_run = Some(from);
                }
            }
            held.extend_from_slice(part);
        };
        let first = self.have.partition_point(|r| r.1 <= start);
        for &(a, b) in &self.have[first..] {
            if a >= end {
                break;
            }
            if a > cur {
                keep(cur, a);
            }
            cur = b;
        }
        if cur < end {
            keep(cur, end);
        }
    }

    fn merge(&mut self, start: u32, end: u32) {
        let i = self.have.partition_point(|r| r.1 < start);
        let mut j = i;
        let (mut s, mut e) = (start, end);
        while let Some(&(a, b)) = self.have.get(j) {
            if a > e {
                break;
            }
            s = s.min(a);
            e = e.max(b);
            j += 1;
        }
        self.have.splice(i..j, [(s, e)]);
    }

    fn complete(&self) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        !self.header.is_empty() && (total == 0 || self.have == [(0, total)])
    }

    /// The whole datagram with its header rewritten; `None` if too long.
    fn build(self) -> Option<Vec<u8>> {
        let total = self.total? as usize;
        let mut p = self.header;
        let hlen = p.len();
        // Complete: the runs cover `[0, total)` exactly once.
        p.resize(hlen + total, 0);
        for (&start, &(len, at)) in &self.runs {
            let (start, len, at) = (start as usize, len as usize, at as usize);
            p.get_mut(hlen + start..hlen + start + len)?
                .copy_from_slice(self.held.get(at..at + len)?);
        }
        // A tail the capture cut: promised by the length fields, not held.
        let promised = total + self.tail_missing as usize;
        if self.version == 4 {
            if hlen < 20 {
                return None;
            }
            let len = u16::try_from(hlen + promised).ok()?;
            let flags = p.get(6)? & 0x40; // keep DF only
            p.get_mut(2..4)?.copy_from_slice(&len.to_be_bytes());
            p.get_mut(6..8)?.copy_from_slice(&[flags, 0]);
            p.get_mut(10..12)?.copy_from_slice(&[0, 0]);
            let sum = internet_checksum(p.get(..hlen)?, 0);
            p.get_mut(10..12)?.copy_from_slice(&sum.to_be_bytes());
        } else {
            let len = u16::try_from(hlen.checked_sub(40)? + promised).ok()?;
            p.get_mut(4..6)?.copy_from_slice(&len.to_be_bytes());
            let at = last_next_header(&p[..hlen])?;
            *p.get_mut(at)? = self.protocol;
        }
        Some(p)
    }
}

/// The entries of `map` (disjoint, keyed by where each starts; `end_of`
/// gives where one ends) that overlap `[lo, hi)`, in order: found by
/// search, at a cost that does not grow with the entries around them.
fn overlapping<T>(
    map: &BTreeMap<u32, T>,
    lo: u32,
    hi: u32,
    end_of: impl Fn(u32, &T) -> u32,
) -> std::collections::btree_map::Range<'_, u32, T> {
    let from = match map.range(..=lo).next_back() {
        Some((&s, t)) if end_of(s, t) > lo => s,
        _ => lo,
    };
    map.range(from..hi.max(from))
}

/// Offset of the last next-header field in an IPv6 header chain (the one
/// that named the fragment header).
fn last_next_header(header: &[u8]) -> Option<usize> {
    let mut field = 6;
    let mut at = 40;
    while at < header.len() {
        let len = match header.get(field)? {
            0 | 43 | 60 => (usize::from(*header.get(at + 1)?) + 1) * 8,
            51 => (usize::from(*header.get(at + 1)?) + 2) * 4,
            _ => return None,
        };
        field = at;
        at += len;
    }
    Some(field)
}
