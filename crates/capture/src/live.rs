//! Live capture from a network interface: a Linux `AF_PACKET` socket with
//! a `TPACKET_V3` receive ring shared with the kernel (the crate's second
//! home of `unsafe`, with the memory maps of [`crate::raw`]).
//!
//! # The ring
//!
//! The kernel writes packets into blocks of a ring mapped into this process
//! and hands each block over whole: its status word turns from
//! `TP_STATUS_KERNEL` to `TP_STATUS_USER` once the block is full or its
//! timeout passed with packets in it. [`Live::next_block`] takes the blocks
//! in ring order; a [`LiveBlock`] lends one out, and the block goes back to
//! the kernel when the last clone of it is dropped, on whichever thread
//! that is. Frames are never copied: an engine can keep the block (an
//! `Arc<LiveBlock>` is an engine block) until its workers are done with
//! every frame in it. While every block is lent out the kernel has nowhere
//! to write and drops packets; it counts them ([`LiveStats::kernel_drops`]).
//!
//! A block still lent out from the ring's previous lap also says
//! `TP_STATUS_USER`: the reader keeps a flag per block, set when it lends
//! the block out and cleared once it was given back, and does not look at
//! a lent block at all (the kernel may be refilling it the moment it comes
//! back). A loom model checks this handoff.
//!
//! # What a frame looks like
//!
//! The kernel takes VLAN tags out of frames whose device strips them, and
//! says so beside the frame; the tag is put back in place (four bytes of
//! room are reserved before each frame for it, `PACKET_RESERVE`, as
//! libpcap does), so a frame looks as it did on the wire. On a loopback
//! device every packet passes twice, sent and received: the sent copy is
//! skipped, as libpcap does ([`LiveStats::loopback_copies`]).

#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

use crate::bpf::{BpfProgram, Insn};

/// `SOL_PACKET` socket options and values (linux/if_packet.h); the `libc`
/// crate's versions of these moved between its releases, the kernel's ABI
/// does not.
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_RESERVE: libc::c_int = 12;
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_FANOUT_HASH: u32 = 0;
const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
const PACKET_FANOUT_FLAG_UNIQUEID: u32 = 0x2000;
/// `SOL_SOCKET` options (asm-generic/socket.h: every architecture Rust
/// targets but PA-RISC).
const SO_ATTACH_FILTER: libc::c_int = 26;
const SO_DETACH_FILTER: libc::c_int = 27;
const TPACKET_V3: libc::c_int = 2;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const PACKET_OUTGOING: u8 = 4;
const ETH_P_ALL: u16 = 0x0003;

const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;

/// `ARPHRD_*` device types with a link layer this reader hands on.
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_RAWIP: u16 = 519;
const ARPHRD_NONE: u16 = 0xfffe;

/// `struct tpacket_req3`.
#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Default)]
struct TpacketStatsV3 {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

/// `struct packet_mreq`.
#[repr(C)]
struct PacketMreq {
    ifindex: libc::c_int,
    kind: libc::c_ushort,
    alen: libc::c_ushort,
    address: [u8; 8],
}

/// Offsets in a block's header (`struct tpacket_block_desc` with its
/// `tpacket_hdr_v1`).
mod block {
    pub const STATUS: usize = 8;
    pub const NUM_PKTS: usize = 12;
    pub const FIRST: usize = 16;
    pub const LEN: usize = 48;
}

/// Offsets in a packet's header (`struct tpacket3_hdr`), and where the
/// `struct sockaddr_ll` after it keeps the packet's type.
mod pkt {
    pub const NEXT: usize = 0;
    pub const SEC: usize = 4;
    pub const NSEC: usize = 8;
    pub const SNAPLEN: usize = 12;
    pub const LEN: usize = 16;
    pub const STATUS: usize = 20;
    pub const MAC: usize = 24;
    pub const VLAN_TCI: usize = 32;
    pub const VLAN_TPID: usize = 36;
    pub const LEN_HDR: usize = 48;
    /// `sll_pkttype`: `TPACKET_ALIGN(sizeof(tpacket3_hdr))` + 10.
    pub const PKTTYPE: usize = 58;
    /// The header and the `sockaddr_ll` (20 bytes) after it.
    pub const HDR_AND_ADDR: usize = 68;
}

// The handoff of a block, between the kernel, the reader and whichever
// thread drops a lent block's last clone. The kernel fills a block only
// while its status says kernel, and says user once it is full. A block
// the reader lent out still says user, as does one the kernel filled
// again after it came back: the reader cannot tell them apart by the
// block (nor read its number to do so: the kernel may be writing it),
// so it keeps its own flag per block, set when it lends the block and
// cleared once the block was given back.

/// How the reader loads a block's status: it acquires what the kernel
/// wrote before handing the block over.
const HANDED_OVER: Ordering = Ordering::Acquire;

/// How a block goes back to the kernel (its status), and then to the
/// reader (its lent flag): every read of it, on whichever thread dropped
/// the last clone, happens before the kernel refills it, and the reader
/// that sees the flag cleared sees the status given back (or the kernel's
/// later one).
const GIVEN_BACK: Ordering = Ordering::Release;

/// How the reader loads a block's lent flag (pairs with [`GIVEN_BACK`]).
const CAME_BACK: Ordering = Ordering::Acquire;

/// What the reader finds at the block it is to take next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// The kernel has it (filling it, or waiting to).
    Kernel,
    /// Handed over and not lent out: take it.
    New,
    /// Still lent out from the ring's last lap: the kernel stands still
    /// there too, until it is given back. Its status is not looked at.
    Lent,
}

impl Found {
    /// A block lent out or not, and if not, with status `status`
    /// (loaded after the flag).
    fn of(lent: bool, status: impl FnOnce() -> u32) -> Found {
        if lent {
            Found::Lent
        } else if status() & TP_STATUS_USER == 0 {
            Found::Kernel
        } else {
            Found::New
        }
    }
}

/// Room the kernel leaves before each frame for a VLAN tag put back.
const VLAN_TAG: usize = 4;

/// How a [`Live`] capture's ring is laid out and what it asks the device.
///
/// The defaults: 64 blocks of 1 MiB (a 64 MiB ring, about 45,000
/// full-size frames: a quarter of a second of a saturated 10 Gbit/s
/// link), blocks handed over after 10 ms with packets in them, not
/// promiscuous.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveOptions {
    /// Bytes of a block: a power of two, at least the page size (4 KiB on
    /// most machines). A packet longer than a block is cut to it (counted
    /// in [`LiveStats::truncated`]). The ring is this socket's: sockets of
    /// a fanout group have one each.
    pub block_size: usize,
    /// Blocks in the ring, from 2 to 65,535. A block stays lent out while
    /// any frame of it waits in an engine (a worker's ring, the block each
    /// worker and the dispatcher hold last): give the ring several blocks
    /// per worker, or a slow one holds it all and the kernel drops.
    pub blocks: usize,
    /// How long the kernel fills a block that has packets before handing
    /// it over anyway: the most a packet waits at a low rate (at most
    /// 65.535 s).
    pub block_timeout: Duration,
    /// Put the device in promiscuous mode while the capture is open.
    pub promiscuous: bool,
    /// Join the `AF_PACKET` fanout group of this number on the device
    /// (a group of the network namespace, shared with any other process
    /// that names it; [`Live::open_group`] makes a new one). The
    /// kernel divides the device's packets among the group's sockets by
    /// a symmetric hash of their flow (both directions of a connection to
    /// one socket; some 4.x kernels' hash was not symmetric), after
    /// putting IPv4 fragments back together (Linux's rules), so each
    /// socket can feed its own reassembler. IPv6 fragments are divided by
    /// their addresses alone, and tunnelled flows by their outer headers
    /// (a VXLAN connection's two directions can reach two sockets): such
    /// traffic needs one socket and a dispatcher. A socket joins once
    /// bound, and takes every packet of the device in between
    /// ([`Live::open_group`] holds its sockets until all joined).
    pub fanout: Option<u16>,
    /// A socket filter the kernel runs on every packet before it reaches
    /// the ring (classic BPF, from `tcpdump -i IFACE -ddd EXPR`; the
    /// kernel checks it again and refuses what it cannot run): packets it
    /// rejects are neither captured nor counted in
    /// [`LiveStats::kernel_packets`], and one it returns a smaller length
    /// for is cut to it. It sees a packet as the kernel holds it, VLAN
    /// tag taken out where the device strips tags: compile it for the
    /// interface (`-i`), and libpcap's `vlan` asks the kernel for the
    /// tag. (The tag is put back after it ran: there, `len` and the
    /// length it returns count the frame without its 4 bytes, where on a
    /// capture file of the same traffic they count them.) Attached before
    /// the socket is bound, so no packet gets in unfiltered.
    pub filter: Option<BpfProgram>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            block_size: 1 << 20,
            blocks: 64,
            block_timeout: Duration::from_millis(10),
            promiscuous: false,
            fanout: None,
            filter: None,
        }
    }
}

/// A live capture's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Blocks taken from the ring.
    pub blocks: u64,
    /// Frames in the blocks taken (a reader that stops early, at a count
    /// of frames, may leave some of the last block's unread).
    pub frames: u64,
    /// Packets the kernel counted, as of the last [`Live::stats`]: those
    /// put in the ring (the loopback copies skipped included) and, as a
    /// `TPACKET_V3` socket counts, those it dropped.
    pub kernel_packets: u64,
    /// Packets the kernel dropped because the ring was full: the reader
    /// (or the workers holding its blocks) fell behind.
    pub kernel_drops: u64,
    /// Times the kernel found the ring full and waited for a block.
    pub kernel_freezes: u64,
    /// Sent copies of packets on a loopback device, skipped (each packet
    /// is seen there once sent and once received).
    pub loopback_copies: u64,
    /// Frames whose VLAN tag the device had stripped, put back.
    pub vlan_restored: u64,
    /// Frames longer than their block, cut (their wire length is kept).
    pub truncated: u64,
    /// Frames the ring described outside their block: skipped. A kernel
    /// never writes such; counted rather than trusted.
    pub malformed: u64,
    /// Frames whose checksums were not filled in yet when captured (sent
    /// by this host with checksum offload, or over loopback): see
    /// [`LiveFrame::checksum_ready`].
    pub checksum_not_ready: u64,
}

impl LiveStats {
    /// Adds `o`'s counts to these (the sockets of a fanout group).
    pub fn merge(&mut self, o: &LiveStats) {
        // Every field named: a new counter does not compile until merged.
        let LiveStats {
            blocks,
            frames,
            kernel_packets,
            kernel_drops,
            kernel_freezes,
            loopback_copies,
            vlan_restored,
            truncated,
            malformed,
            checksum_not_ready,
        } = *o;
        self.blocks += blocks;
        self.frames += frames;
        self.kernel_packets += kernel_packets;
        self.kernel_drops += kernel_drops;
        self.kernel_freezes += kernel_freezes;
        self.loopback_copies += loopback_copies;
        self.vlan_restored += vlan_restored;
        self.truncated += truncated;
        self.malformed += malformed;
        self.checksum_not_ready += checksum_not_ready;
    }
}

/// One frame of a [`LiveBlock`], by where it lies in the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveFrame {
    /// Offset of the frame's first byte in [`LiveBlock::bytes`].
    pub offset: usize,
    /// Bytes captured.
    pub len: usize,
    /// The packet's length on the wire; at least `len`.
    pub wire_len: u32,
    /// Receive time in nanoseconds since the Unix epoch (the kernel's
    /// `CLOCK_REALTIME`). Packets received on different cores can be
    /// stamped a little out of order.
    pub ts_nanos: u64,
    /// The frame's checksums are as sent. `false` for a packet this host
    /// sends with checksum offload (or over loopback), captured before the
    /// device filled them in (`TP_STATUS_CSUMNOTREADY`): verifying them
    /// would call a good packet bad.
    pub checksum_ready: bool,
}

/// The socket and the ring mapped from it; shared by the reader and every
/// lent block, so the mapping outlives them all.
struct Ring {
    map: MmapRaw,
    block_size: usize,
    blocks: usize,
    /// Per block: lent out by the reader and not given back yet.
    lent: Box<[AtomicBool]>,
    // Declared last: closed after the mapping is gone.
    fd: OwnedFd,
}

impl Ring {
    /// The status word of block `i`.
    fn status(&self, i: usize) -> &AtomicU32 {
        debug_assert!(i < self.blocks);
        // SAFETY: the word lies inside the mapping (block `i` starts at
        // `i * block_size`, which is below its length, and a block is at
        // least 4 KiB), is 4-aligned (blocks start at multiples of the page
        // size), and lives as long as the mapping (the returned reference
        // borrows `self`, which owns it). This process reads it plainly
        // only while the block is lent (through `Live::take`'s slice and
        // `LiveBlock::bytes`, both over the whole block), and then makes no
        // atomic access to it: the reader looks at a block's status only
        // once its lent flag is acquired clear (`Ring::found`), and the
        // give-back (`Ring::release`) runs in `LiveBlock::drop`, when no
        // slice of the block is left. The kernel accesses it with its own
        // barriers, and while the ring is full it may read a lent block's
        // header: reads only.
        unsafe {
            AtomicU32::from_ptr(
                self.map
                    .as_mut_ptr()
                    .add(i * self.block_size + block::STATUS)
                    .cast(),
            )
        }
    }

    /// What block `i` is.
    fn found(&self, i: usize) -> Found {
        Found::of(self.lent[i].load(CAME_BACK), || {
            self.status(i).load(HANDED_OVER)
        })
    }

    /// Where block `i` starts.
    fn block_ptr(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.blocks);
        self.map.as_mut_ptr().wrapping_add(i * self.block_size)
    }

    /// Gives block `i` back to the kernel, then tells the reader.
    fn release(&self, i: usize) {
        self.status(i).store(TP_STATUS_KERNEL, GIVEN_BACK);
        self.lent[i].store(false, GIVEN_BACK);
    }
}

/// A live capture on one network interface, through a `TPACKET_V3` ring.
///
/// `Send` and `Sync`; its methods take `&mut self`: one thread reads.
/// Needs `CAP_NET_RAW` (root, or the capability granted to the program).
/// Linux only.
pub struct Live {
    ring: Arc<Ring>,
    /// The block to take next.
    next: usize,
    interface: String,
    link_type: u32,
    /// The device is a loopback: skip the sent copy of each packet.
    loopback: bool,
    /// The device's frames start with an Ethernet header (VLAN tags can be
    /// put back).
    ethernet: bool,
    stats: LiveStats,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("interface", &self.interface)
            .field("link_type", &self.link_type)
            .field("blocks", &self.ring.blocks)
            .field("block_size", &self.ring.block_size)
            .finish_non_exhaustive()
    }
}

/// The result of a libc call returning -1 on failure.
fn check(r: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(r)
}

/// Joins the fanout group `id` (its low 16 bits; the flags above): a
/// symmetric flow hash, IPv4 fragments put back together first.
fn join_fanout(fd: &OwnedFd, id: u32) -> io::Result<()> {
    let arg = id | (PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16;
    set_opt(fd, PACKET_FANOUT, &arg, "joining a fanout group")
}

/// The number of the fanout group `fd` is in.
fn fanout_id(fd: &OwnedFd) -> io::Result<u16> {
    Ok(fanout_arg(fd)? as u16)
}

/// `getsockopt(PACKET_FANOUT)`: the group's number, its type and flags
/// above it; 0 for a socket in no group.
fn fanout_arg(fd: &OwnedFd) -> io::Result<u32> {
    let mut arg: u32 = 0;
    let mut len = size_of::<u32>() as libc::socklen_t;
    // SAFETY: `arg` has room for `len` bytes, which the kernel fills.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            PACKET_FANOUT,
            (&mut arg as *mut u32).cast(),
            &mut len,
        )
    };
    check(r, "reading the fanout group")?;
    Ok(arg)
}

/// Attaches (or replaces) `fd`'s socket filter: `insns`, which the kernel
/// checks and copies. `what` names it in an error.
fn attach_filter(fd: &OwnedFd, insns: &[Insn], what: &str) -> io::Result<()> {
    let code: Vec<libc::sock_filter> = insns
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let len = libc::c_ushort::try_from(code.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: too long")))?;
    let prog = libc::sock_fprog {
        len,
        filter: code.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points to `code`, `len` instructions long, both alive
    // for the call; the kernel only reads the program, and copies it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    check(r, what).map(drop)
}

/// `setsockopt(fd, SOL_PACKET, opt, value)`.
fn set_opt<T>(fd: &OwnedFd, opt: libc::c_int, value: &T, what: &str) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of `size_of::<T>()` bytes, which
    // the kernel only reads; the descriptor is open (owned).
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            opt,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    check(r, what).map(drop)
}

impl Live {
    /// Opens a capture on `interface` (a name such as `eth0` or `lo`).
    ///
    /// Errors: no such interface (`NotFound`), no permission to capture
    /// (`PermissionDenied`: it takes `CAP_NET_RAW`), a device whose link
    /// layer is neither Ethernet nor raw IP (`Unsupported`), options out
    /// of range (`InvalidInput`), or the kernel refusing the ring (its
    /// size, for one, is bounded by memory).
    pub fn open(interface: &str, opts: &LiveOptions) -> io::Result<Live> {
        Live::open_held(interface, opts, false)
    }

    /// [`open`](Self::open), taking nothing (a socket filter drops every
    /// packet, from before it is bound) if `held`.
    fn open_held(interface: &str, opts: &LiveOptions, held: bool) -> io::Result<Live> {
        let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_owned());
        // SAFETY: plain system call.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        if !opts.block_size.is_power_of_two()
            || opts.block_size < page.max(4096)
            || opts.block_size > 1 << 30
        {
            return Err(invalid(&format!(
                "block size: a power of two from the page size ({page} bytes) to 1 GiB"
            )));
        }
        // The kernel keeps block numbers in 16 bits.
        if opts.blocks < 2
            || opts.blocks > usize::from(u16::MAX)
            || opts
                .blocks
                .checked_mul(opts.block_size)
                .map_or(true, |n| n > 1 << 40)
        {
            return Err(invalid(
                "blocks: from 2 to 65,535, and a ring of at most 1 TiB",
            ));
        }
        // And the timeout in 16 bits of milliseconds.
        if opts.block_timeout > Duration::from_millis(u64::from(u16::MAX)) {
            return Err(invalid("block timeout: at most 65.535 s"));
        }
        let name =
            CString::new(interface).map_err(|_| invalid("interface name with a NUL byte"))?;
        // SAFETY: `name` is a NUL-terminated string that outlives the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no network interface named {interface:?}"),
            ));
        }
        // Protocol 0: the socket receives nothing until it is bound to the
        // interface below, so no packet of another interface gets in first.
        // SAFETY: plain system call with integer arguments.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        let fd = check(fd, "packet socket (capturing needs CAP_NET_RAW)")?;
        // SAFETY: `fd` was just returned by `socket` and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        set_opt(&fd, PACKET_VERSION, &TPACKET_V3, "TPACKET_V3")?;
        set_opt(
            &fd,
            PACKET_RESERVE,
            &(VLAN_TAG as libc::c_uint),
            "PACKET_RESERVE",
        )?;
        // Frames are what TPACKET_V1/V2 cut blocks into; V3 packs packets
        // of any size, but the kernel still checks the numbers.
        let frame_size: u32 = 2048;
        let block_size = opts.block_size as u32;
        let req = TpacketReq3 {
            block_size,
            block_nr: opts.blocks as u32,
            frame_size,
            frame_nr: (block_size / frame_size) * opts.blocks as u32,
            retire_blk_tov: (opts.block_timeout.as_millis() as u32).max(1),
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        set_opt(&fd, PACKET_RX_RING, &req, "PACKET_RX_RING")?;
        if held {
            // One instruction, `ret #0`: take nothing of any packet.
            let drop_all = [Insn {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: 0,
            }];
            attach_filter(&fd, &drop_all, "holding the capture until it starts")?;
        } else if let Some(filter) = &opts.filter {
            attach_filter(&fd, filter.instructions(), "the socket filter")?;
        }
        let map = MmapOptions::new()
            .len(opts.block_size * opts.blocks)
            .map_raw(&fd)?;
        let ring = Ring {
            map,
            block_size: opts.block_size,
            blocks: opts.blocks,
            lent: (0..opts.blocks).map(|_| AtomicBool::new(false)).collect(),
            fd,
        };
        // SAFETY: an all-zero `sockaddr_ll` is a valid value of the plain C struct.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: `addr` is a `sockaddr_ll` of the given length.
        let r = unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        check(r, "binding to the interface")?;
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `addr` has room for `len` bytes, which the kernel fills.
        let r = unsafe {
            libc::getsockname(
                ring.fd.as_raw_fd(),
                (&mut addr as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        check(r, "reading the interface's type")?;
        let (link_type, ethernet) = match addr.sll_hatype {
            ARPHRD_ETHER | ARPHRD_LOOPBACK => (1, true),
            ARPHRD_RAWIP | ARPHRD_NONE => (101, false),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("{interface}: device type {other} is neither Ethernet nor raw IP"),
                ))
            }
        };
        if opts.promiscuous {
            let mreq = PacketMreq {
                ifindex: ifindex as libc::c_int,
                kind: PACKET_MR_PROMISC,
                alen: 0,
                address: [0; 8],
            };
            set_opt(&ring.fd, PACKET_ADD_MEMBERSHIP, &mreq, "promiscuous mode")?;
        }
        if let Some(group) = opts.fanout {
            // Once bound: the group is the device's.
            join_fanout(&ring.fd, u32::from(group))?;
        }
        Ok(Live {
            ring: Arc::new(ring),
            next: 0,
            interface: interface.to_owned(),
            link_type,
            loopback: addr.sll_hatype == ARPHRD_LOOPBACK,
            ethernet,
            stats: LiveStats::default(),
        })
    }

    /// `n` captures on `interface` in a new fanout group (see
    /// [`LiveOptions::fanout`], which this sets). The kernel picks a
    /// number no group uses when it makes this one; another process that
    /// names that number with the same settings would still join it. The
    /// sockets take nothing until the last one joined (each drops every
    /// packet by a socket filter until then): before, each would have
    /// taken every packet, or the group divided them among fewer sockets.
    /// The capture starts when this returns. At most 256 sockets (the
    /// kernel's default for a group); needs a kernel that picks group
    /// numbers (4.7 and later).
    pub fn open_group(interface: &str, opts: &LiveOptions, n: usize) -> io::Result<Vec<Live>> {
        if n == 0 || n > 256 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a fanout group of 1 to 256 sockets",
            ));
        }
        let mut alone = opts.clone();
        alone.fanout = None;
        let first = Live::open_held(interface, &alone, true)?;
        join_fanout(&first.ring.fd, PACKET_FANOUT_FLAG_UNIQUEID << 16)?;
        let id = fanout_id(&first.ring.fd)?;
        let mut group = vec![first];
        let mut member = opts.clone();
        member.fanout = Some(id);
        for _ in 1..n {
            group.push(Live::open_held(interface, &member, true)?);
        }
        for live in &group {
            live.start(opts.filter.as_ref())?;
        }
        Ok(group)
    }

    /// Takes packets from now on: replaces the socket filter a held
    /// capture drops them with by `filter` (in one step: no packet gets in
    /// unfiltered), or removes it.
    fn start(&self, filter: Option<&BpfProgram>) -> io::Result<()> {
        if let Some(filter) = filter {
            return attach_filter(&self.ring.fd, filter.instructions(), "the socket filter");
        }
        // The option's value is not read, but must be an int's size.
        let unused: libc::c_int = 0;
        // SAFETY: `unused` is a live int of the size given.
        let r = unsafe {
            libc::setsockopt(
                self.ring.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_DETACH_FILTER,
                (&unused as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        check(r, "starting the capture").map(drop)
    }

    /// The number of the fanout group this capture is in, if any.
    pub fn fanout_group(&self) -> Option<u16> {
        fanout_arg(&self.ring.fd)
            .ok()
            .filter(|&a| a != 0)
            .map(|a| a as u16)
    }

    /// The interface's name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The frames' link type (a pcap `LINKTYPE_*` value: 1 for Ethernet
    /// and loopback devices, 101 for raw IP ones).
    pub fn link_type(&self) -> u32 {
        self.link_type
    }

    /// The next block of frames, waiting up to `timeout` for one; `None`
    /// if none came by then. An error if the socket reports one (the
    /// device went down, for one).
    pub fn next_block(&mut self, timeout: Duration) -> io::Result<Option<LiveBlock>> {
        let deadline = Instant::now() + timeout;
        // The kernel says "readable" while the block before the one it
        // fills is not its own, which is the case whenever the engine
        // holds the last block: a poll that returns with nothing new is
        // followed by a sleep, growing up to 1 ms, rather than another.
        let mut nap = Duration::from_micros(50);
        loop {
            let found = self.ring.found(self.next);
            if found == Found::New {
                return Ok(Some(self.take()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            if found == Found::Kernel
                && self.poll(left)?
                && self.ring.found(self.next) != Found::Kernel
            {
                continue;
            }
            std::thread::sleep(nap.min(left));
            nap = (nap * 2).min(Duration::from_millis(1));
        }
    }

    /// Waits up to `left` for the kernel to hand a block over; whether
    /// `poll` said something happened. An error the socket holds is
    /// returned (and cleared).
    fn poll(&self, left: Duration) -> io::Result<bool> {
        let fd = self.ring.fd.as_raw_fd();
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid `pollfd`, counted as one.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        if p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            let mut err: libc::c_int = 0;
            let mut len = size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: `err` has room for `len` bytes, which the kernel fills.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    (&mut err as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            check(r, "reading the capture socket's error")?;
            if err != 0 || p.revents & libc::POLLNVAL != 0 {
                let e = io::Error::from_raw_os_error(if err != 0 { err } else { libc::EBADF });
                return Err(io::Error::new(e.kind(), format!("{}: {e}", self.interface)));
            }
        }
        Ok(r > 0)
    }

    /// Takes the block at `self.next`, found new.
    fn take(&mut self) -> LiveBlock {
        let i = self.next;
        self.next = (i + 1) % self.ring.blocks;
        // Only this thread sets the flag, and no other reads it before the
        // block is lent (`LiveBlock::drop` clears it).
        self.ring.lent[i].store(true, Ordering::Relaxed);
        // SAFETY: the block lies inside the mapping, which `self.ring`
        // keeps. It was found not lent out (its flag acquired cleared,
        // after the last `LiveBlock` for it gave it back) and then handed
        // over (status acquired, after the kernel filled it), so the kernel
        // leaves it alone and no `LiveBlock` for it lives. This is the only
        // reference to it until the `LiveBlock` made below, after its last
        // use.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(self.ring.block_ptr(i), self.ring.block_size) };
        let frames = index_block(bytes, self.ethernet, self.loopback, &mut self.stats);
        self.stats.blocks += 1;
        self.stats.frames += frames.len() as u64;
        LiveBlock {
            ring: Arc::clone(&self.ring),
            index: i,
            frames,
        }
    }

    /// The counters, with the kernel's added up to now.
    pub fn stats(&mut self) -> LiveStats {
        let mut k = TpacketStatsV3::default();
        let mut len = size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: `k` has room for `len` bytes, which the kernel fills.
        let r = unsafe {
            libc::getsockopt(
                self.ring.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                (&mut k as *mut TpacketStatsV3).cast(),
                &mut len,
            )
        };
        // The kernel's counters restart at every read: added up here.
        if r == 0 {
            self.stats.kernel_packets += u64::from(k.packets);
            self.stats.kernel_drops += u64::from(k.drops);
            self.stats.kernel_freezes += u64::from(k.freeze_q_cnt);
        }
        self.stats
    }
}

/// A block of a [`Live`] capture's ring, lent out: its frames, in place.
/// It goes back to the kernel when dropped.
///
/// `Send` and `Sync`: the bytes are not written while it lives (neither
/// by this process, which wrote what it had to before lending it, nor by
/// the kernel, until it is given back), so an `Arc<LiveBlock>` can be an
/// engine's block, read by its workers.
pub struct LiveBlock {
    ring: Arc<Ring>,
    index: usize,
    frames: Vec<LiveFrame>,
}

impl std::fmt::Debug for LiveBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveBlock")
            .field("index", &self.index)
            .field("frames", &self.frames.len())
            .finish_non_exhaustive()
    }
}

impl LiveBlock {
    /// The block's frames, in the order received.
    pub fn frames(&self) -> &[LiveFrame] {
        &self.frames
    }

    /// The block's bytes; frames lie at their offsets in it.
    pub fn bytes(&self) -> &[u8] {
        let r = &self.ring;
        // SAFETY: inside the mapping (as `Ring::block_ptr`). The block is
        // lent to this `LiveBlock` until it drops: the kernel does not
        // write it, and the only mutable reference made to it (in
        // `Live::take`) ended before this value existed.
        unsafe {
            std::slice::from_raw_parts(r.map.as_ptr().add(self.index * r.block_size), r.block_size)
        }
    }

    /// The bytes of `frame` (one of [`frames`](Self::frames)).
    pub fn frame(&self, frame: &LiveFrame) -> &[u8] {
        &self.bytes()[frame.offset..frame.offset + frame.len]
    }
}

impl AsRef<[u8]> for LiveBlock {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

impl Drop for LiveBlock {
    fn drop(&mut self) {
        self.ring.release(self.index);
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The frames of a block handed over by the kernel, `block` being all of
/// it; puts stripped VLAN tags back (an Ethernet device's) and skips the
/// sent copies of a loopback device's packets. Checks every offset the
/// block gives: what lies outside it is counted in `stats.malformed`
/// and not handed on.
fn index_block(
    block: &mut [u8],
    ethernet: bool,
    loopback: bool,
    stats: &mut LiveStats,
) -> Vec<LiveFrame> {
    let mut frames = Vec::new();
    if block.len() < block::LEN {
        return frames;
    }
    let count = u32_at(block, block::NUM_PKTS) as usize;
    let mut at = u32_at(block, block::FIRST) as usize;
    for k in 0..count {
        let left = (count - k) as u64;
        if at
            .checked_add(pkt::HDR_AND_ADDR)
            .map_or(true, |end| end > block.len())
        {
            stats.malformed += left;
            break;
        }
        let next = u32_at(block, at + pkt::NEXT) as usize;
        let snaplen = u32_at(block, at + pkt::SNAPLEN) as usize;
        let wire = u32_at(block, at + pkt::LEN);
        let status = u32_at(block, at + pkt::STATUS);
        let mac = at + usize::from(u16_at(block, at + pkt::MAC));
        let ts = u64::from(u32_at(block, at + pkt::SEC)) * 1_000_000_000
            + u64::from(u32_at(block, at + pkt::NSEC));
        let inside =
            mac >= at + pkt::LEN_HDR && mac.checked_add(snaplen).is_some_and(|e| e <= block.len());
        if !inside {
            stats.malformed += 1;
        } else if loopback && block[at + pkt::PKTTYPE] == PACKET_OUTGOING {
            stats.loopback_copies += 1;
        } else {
            let tci = u32_at(block, at + pkt::VLAN_TCI);
            let mut frame = LiveFrame {
                offset: mac,
                len: snaplen,
                wire_len: wire.max(snaplen as u32),
                ts_nanos: ts,
                checksum_ready: status & TP_STATUS_CSUMNOTREADY == 0,
            };
            stats.checksum_not_ready += u64::from(!frame.checksum_ready);
            // libpcap's test: a tag the kernel says is valid, or any
            // non-zero tag (kernels before the flag).
            let tagged = ethernet && (status & TP_STATUS_VLAN_VALID != 0 || tci != 0);
            if tagged && snaplen >= 12 && mac >= at + pkt::HDR_AND_ADDR + VLAN_TAG {
                let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
                    u16_at(block, at + pkt::VLAN_TPID)
                } else {
                    0x8100
                };
                let start = mac - VLAN_TAG;
                block.copy_within(mac..mac + 12, start);
                block[start + 12..start + 14].copy_from_slice(&tpid.to_be_bytes());
                block[start + 14..start + 16].copy_from_slice(&(tci as u16).to_be_bytes());
                frame.offset = start;
                frame.len += VLAN_TAG;
                frame.wire_len = frame.wire_len.saturating_add(VLAN_TAG as u32);
                stats.vlan_restored += 1;
            }
            if (frame.len as u64) < u64::from(frame.wire_len) {
                stats.truncated += 1;
            }
            frames.push(frame);
        }
        if next == 0 {
            if k + 1 < count {
                stats.malformed += left - 1;
            }
            break;
        }
        at = at.saturating_add(next);
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block of `size` bytes holding `packets`: (frame bytes, status,
    /// VLAN TCI, packet type), laid out as the kernel lays them out.
    fn block_of(size: usize, packets: &[(&[u8], u32, u16, u8)]) -> Vec<u8> {
        let mut b = vec![0u8; size];
        let put32 =
            |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        put32(&mut b, block::NUM_PKTS, packets.len() as u32);
        put32(&mut b, block::FIRST, 48);
        let mut at = 48;
        for (k, (frame, status, tci, kind)) in packets.iter().enumerate() {
            // netoff = ALIGN16(68 + 16) + 4; macoff = netoff - 14.
            let mac = 100 - 14;
            let len = mac + frame.len();
            let next = if k + 1 == packets.len() {
                0
            } else {
                (len + 15) & !15
            };
            put32(&mut b, at + pkt::NEXT, next as u32);
            put32(&mut b, at + pkt::SEC, 1_700_000_000);
            put32(&mut b, at + pkt::NSEC, k as u32);
            put32(&mut b, at + pkt::SNAPLEN, frame.len() as u32);
            put32(&mut b, at + pkt::LEN, frame.len() as u32 + 1);
            put32(&mut b, at + pkt::STATUS, TP_STATUS_USER | status);
            b[at + pkt::MAC..at + pkt::MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            put32(&mut b, at + pkt::VLAN_TCI, u32::from(*tci));
            b[at + pkt::PKTTYPE] = *kind;
            b[at + mac..at + len].copy_from_slice(frame);
            at += next;
        }
        b
    }

    fn eth(tail: &[u8]) -> Vec<u8> {
        let mut f = vec![1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x08, 0x00];
        f.extend_from_slice(tail);
        f
    }

    #[test]
    fn frames_come_out_in_order_with_their_times() {
        let (a, c) = (eth(b"first"), eth(b"second one"));
        let mut b = block_of(4096, &[(&a, 0, 0, 0), (&c, TP_STATUS_CSUMNOTREADY, 0, 0)]);
        let mut st = LiveStats::default();
        let f = index_block(&mut b, true, false, &mut st);
        assert_eq!(f.len(), 2);
        assert!(f[0].checksum_ready && !f[1].checksum_ready);
        assert_eq!(st.checksum_not_ready, 1);
        assert_eq!(&b[f[0].offset..f[0].offset + f[0].len], &a[..]);
        assert_eq!(&b[f[1].offset..f[1].offset + f[1].len], &c[..]);
        assert_eq!(f[1].ts_nanos, 1_700_000_000_000_000_001);
        assert_eq!(f[0].wire_len, a.len() as u32 + 1);
        assert_eq!(st.truncated, 2);
        assert_eq!(st.malformed, 0);
    }

    #[test]
    fn a_stripped_vlan_tag_is_put_back_in_place() {
        let a = eth(b"payload");
        let mut b = block_of(4096, &[(&a, TP_STATUS_VLAN_VALID, 0x0123, 0)]);
        let mut st = LiveStats::default();
        let f = index_block(&mut b, true, false, &mut st);
        let got = &b[f[0].offset..f[0].offset + f[0].len];
        let mut want = a[..12].to_vec();
        want.extend_from_slice(&[0x81, 0x00, 0x01, 0x23]);
        want.extend_from_slice(&a[12..]);
        assert_eq!(got, &want[..]);
        assert_eq!(f[0].wire_len, a.len() as u32 + 1 + 4);
        assert_eq!(st.vlan_restored, 1);
        // Not on a raw IP device: its frames have no Ethernet header.
        let mut b = block_of(4096, &[(&a, TP_STATUS_VLAN_VALID, 0x0123, 0)]);
        let f = index_block(&mut b, false, false, &mut st);
        assert_eq!(&b[f[0].offset..f[0].offset + f[0].len], &a[..]);
    }

    #[test]
    fn loopback_skips_the_sent_copy() {
        let a = eth(b"x");
        let mut b = block_of(4096, &[(&a, 0, 0, PACKET_OUTGOING), (&a, 0, 0, 0)]);
        let mut st = LiveStats::default();
        assert_eq!(index_block(&mut b, true, true, &mut st).len(), 1);
        assert_eq!(st.loopback_copies, 1);
        // Elsewhere a sent packet is one to reassemble.
        let mut b = block_of(4096, &[(&a, 0, 0, PACKET_OUTGOING), (&a, 0, 0, 0)]);
        assert_eq!(index_block(&mut b, true, false, &mut st).len(), 2);
    }

    #[test]
    fn offsets_outside_the_block_are_counted_not_followed() {
        let a = eth(b"abc");
        let put32 =
            |b: &mut [u8], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        // A frame running past the block's end.
        let mut b = block_of(4096, &[(&a, 0, 0, 0), (&a, 0, 0, 0)]);
        put32(&mut b, 48 + pkt::SNAPLEN, 5000);
        let mut st = LiveStats::default();
        assert_eq!(index_block(&mut b, true, false, &mut st).len(), 1);
        assert_eq!(st.malformed, 1);
        // A next offset past the end: the packets it leaves out are counted.
        let mut b = block_of(4096, &[(&a, 0, 0, 0), (&a, 0, 0, 0), (&a, 0, 0, 0)]);
        put32(&mut b, 48 + pkt::NEXT, 1 << 30);
        let mut st = LiveStats::default();
        assert_eq!(index_block(&mut b, true, false, &mut st).len(), 1);
        assert_eq!(st.malformed, 2);
        // A count beyond the chain: the chain ends early.
        let mut b = block_of(4096, &[(&a, 0, 0, 0)]);
        put32(&mut b, block::NUM_PKTS, 3);
        let mut st = LiveStats::default();
        assert_eq!(index_block(&mut b, true, false, &mut st).len(), 1);
        assert_eq!(st.malformed, 2);
        // A first packet past the end, and a block too short for a header.
        let mut b = block_of(4096, &[(&a, 0, 0, 0)]);
        put32(&mut b, block::FIRST, u32::MAX);
        let mut st = LiveStats::default();
        assert!(index_block(&mut b, true, false, &mut st).is_empty());
        assert_eq!(st.malformed, 1);
        assert!(index_block(&mut [0u8; 20], true, false, &mut st).is_empty());
    }

    proptest::proptest! {
        /// Whatever a block holds (a kernel that wrote nonsense, memory
        /// the ring shares with it): no panic, every frame inside the
        /// block and past its own header, and every packet the block
        /// claims accounted for.
        #[test]
        fn any_block_indexes_safely(
            mut block in proptest::collection::vec(proptest::num::u8::ANY, 0..1024),
            count in 0u32..40,
            first in 0u32..1100,
            nexts in proptest::collection::vec(
                proptest::prop_oneof![1 => proptest::strategy::Just(0u32), 6 => 1u32..300],
                40,
            ),
            ethernet: bool,
            loopback: bool,
        ) {
            // A plausible chain often enough: headers where the count and
            // offsets say, their fields random.
            if block.len() >= block::LEN {
                block[block::NUM_PKTS..block::NUM_PKTS + 4].copy_from_slice(&count.to_ne_bytes());
                block[block::FIRST..block::FIRST + 4].copy_from_slice(&first.to_ne_bytes());
                let mut at = first as usize;
                for next in &nexts {
                    if at + 4 > block.len() {
                        break;
                    }
                    block[at..at + 4].copy_from_slice(&next.to_ne_bytes());
                    if *next == 0 {
                        break;
                    }
                    at += *next as usize;
                }
            }
            let len = block.len();
            // The chain may have written over the count: as it stands.
            let count = if len >= block::LEN { u32_at(&block, block::NUM_PKTS) } else { 0 };
            let mut st = LiveStats::default();
            let frames = index_block(&mut block, ethernet, loopback, &mut st);
            for f in &frames {
                proptest::prop_assert!(f.offset + f.len <= len);
                proptest::prop_assert!(f.offset >= block::LEN);
                proptest::prop_assert!(u64::from(f.wire_len) >= f.len as u64);
            }
            let told = frames.len() as u64 + st.malformed + st.loopback_copies;
            proptest::prop_assert_eq!(told, u64::from(count));
        }
    }

    /// A held capture takes nothing (its filter drops every packet, and
    /// the kernel does not count those) until it starts.
    #[test]
    fn a_held_capture_takes_nothing_until_started() {
        use std::io::Write;
        let opts = LiveOptions {
            block_timeout: Duration::from_millis(5),
            blocks: 4,
            ..LiveOptions::default()
        };
        let mut live = match Live::open_held("lo", &opts, true) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                let required = std::env::var("WEFT_REQUIRE_LIVE").is_ok_and(|v| v == "1");
                assert!(
                    !required,
                    "WEFT_REQUIRE_LIVE=1 but capturing is not allowed: {e}"
                );
                eprintln!("SKIPPED: live capture not allowed here ({e})");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let traffic = || {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let _s = l.accept().unwrap();
            c.write_all(b"anyone?").unwrap();
        };
        traffic();
        assert!(live
            .next_block(Duration::from_millis(100))
            .unwrap()
            .is_none());
        assert_eq!(live.stats().kernel_packets, 0);
        live.start(None).unwrap();
        traffic();
        let block = live.next_block(Duration::from_secs(2)).unwrap();
        assert!(block.is_some_and(|b| !b.frames().is_empty()));
    }

    #[test]
    fn bad_options_are_refused_before_any_system_call() {
        let cases = [
            (3000, 4, 10),
            (1 << 20, 1, 10),
            (4096, usize::MAX, 10),
            (1 << 16, 65_536, 10),
            (1 << 20, 4, 65_536),
        ];
        for (block_size, blocks, ms) in cases {
            let opts = LiveOptions {
                block_size,
                blocks,
                block_timeout: Duration::from_millis(ms),
                ..LiveOptions::default()
            };
            let e = Live::open("lo", &opts).unwrap_err();
            assert_eq!(
                e.kind(),
                io::ErrorKind::InvalidInput,
                "{block_size} {blocks}"
            );
        }
        let e = Live::open("no-such-interface-0", &LiveOptions::default()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}

/// A loom model of the block handoff: the kernel fills blocks in ring
/// order, each only once it is the kernel's again; the reader finds them
/// by [`Found::of`], loading as [`Ring::found`] does, and marks them lent
/// as [`Live::take`] does; a block is given back as [`Ring::release`]
/// does, the first on another thread, late. The kernel's side is
/// modelled as `af_packet.c` behaves: it reads a block's status before
/// filling it, and publishes the block's packets before its status. Run by
/// `tools/test.sh` with `--cfg weft_loom_live` (not `weft_loom`, which
/// would give the arena's buffer pool loom's `Arc`).
#[cfg(all(test, weft_loom_live))]
mod loom_model {
    use super::{Found, CAME_BACK, GIVEN_BACK, HANDED_OVER, TP_STATUS_KERNEL, TP_STATUS_USER};
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    /// A block as the kernel and the reader share it: its status and what
    /// the kernel writes (its data); and the reader's lent flag.
    struct Block {
        status: AtomicU32,
        data: UnsafeCell<u64>,
        lent: AtomicBool,
    }

    impl Block {
        fn new() -> Block {
            Block {
                status: AtomicU32::new(TP_STATUS_KERNEL),
                data: UnsafeCell::new(0),
                lent: AtomicBool::new(false),
            }
        }

        fn data(&self) -> u64 {
            // SAFETY (model): loom checks this read against every write.
            self.data.with(|d| unsafe { *d })
        }

        /// As `Ring::found`.
        fn found(&self) -> Found {
            Found::of(self.lent.load(CAME_BACK), || self.status.load(HANDED_OVER))
        }

        /// As `Ring::release`.
        fn release(&self) {
            self.status.store(TP_STATUS_KERNEL, GIVEN_BACK);
            self.lent.store(false, GIVEN_BACK);
        }
    }

    /// The kernel's `tries` packets: each fills the block the kernel is
    /// at if that one is the kernel's (the k-th block filled, into slot
    /// (k - 1) % 2, gets data k) and is dropped if not, as a full ring
    /// drops. Bounded, so loom explores every order without spinning.
    fn kernel(ring: &[Block; 2], tries: u64) {
        let mut filled = 0;
        for _ in 0..tries {
            let b = &ring[filled as usize % 2];
            if b.status.load(Ordering::Acquire) != TP_STATUS_KERNEL {
                thread::yield_now();
                continue;
            }
            filled += 1;
            // SAFETY (model): loom checks this write against every access.
            b.data.with_mut(|d| unsafe { *d = filled });
            b.status.store(TP_STATUS_USER, Ordering::Release);
        }
    }

    #[test]
    fn blocks_are_taken_once_each_in_order_and_never_while_written() {
        loom::model(|| {
            let ring = Arc::new([Block::new(), Block::new()]);
            let k = {
                let ring = Arc::clone(&ring);
                thread::spawn(move || kernel(&ring, 4))
            };
            let (mut next, mut taken, mut lender) = (0, 0, None);
            for _ in 0..5 {
                let b = &ring[next];
                match b.found() {
                    Found::New => {
                        b.lent.store(true, Ordering::Relaxed);
                        taken += 1;
                        assert_eq!(b.data(), taken, "each block once, in order, written");
                        if taken == 1 {
                            // Lent to another thread, which reads it and
                            // gives it back whenever it runs.
                            let ring = Arc::clone(&ring);
                            lender = Some(thread::spawn(move || {
                                assert_eq!(ring[0].data(), 1);
                                ring[0].release();
                            }));
                        } else {
                            b.release();
                        }
                        next = (next + 1) % 2;
                    }
                    Found::Kernel | Found::Lent => thread::yield_now(),
                }
            }
            k.join().unwrap();
            if let Some(l) = lender {
                l.join().unwrap();
            }
        });
    }
}
