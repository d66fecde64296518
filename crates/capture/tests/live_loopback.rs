//! Live capture on the loopback device: the bytes of a TCP connection made
//! by this test come out of the ring, each packet once, in order.
//!
//! Capturing needs `CAP_NET_RAW`. Without it the test says so and passes,
//! unless `WEFT_REQUIRE_LIVE=1` (set by `.ci/run` when it runs as root),
//! which makes it fail instead.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weft_capture::{Live, LiveOptions};

/// One test at a time on `lo`: each sees the others' packets, which fill
/// its ring too.
static LO: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Opens a capture on `lo`, or `None` (with a visible message) where this
/// process may not capture and nothing requires it.
fn open_loopback(opts: &LiveOptions) -> Option<Live> {
    match Live::open("lo", opts) {
        Ok(live) => Some(live),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let required = std::env::var("WEFT_REQUIRE_LIVE").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "WEFT_REQUIRE_LIVE=1 but capturing is not allowed: {e}"
            );
            eprintln!(
                "SKIPPED: live capture not allowed here ({e}); WEFT_REQUIRE_LIVE=1 makes this fail"
            );
            None
        }
        Err(e) => panic!("opening a capture on lo: {e}"),
    }
}

/// The TCP payload of an IPv4-over-Ethernet frame between the two ports,
/// with its sequence number, flags, and whether it goes from `a` to `b`.
fn tcp_between(frame: &[u8], a: u16, b: u16) -> Option<(bool, u32, u8, &[u8])> {
    if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] || frame[14] >> 4 != 4 {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 15) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[9] != 6 || total > ip.len() || ihl + 20 > total {
        return None;
    }
    let tcp = &ip[ihl..total];
    let (sport, dport) = (
        u16::from_be_bytes([tcp[0], tcp[1]]),
        u16::from_be_bytes([tcp[2], tcp[3]]),
    );
    let forward = (sport, dport) == (a, b);
    if !forward && (sport, dport) != (b, a) {
        return None;
    }
    let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
    let off = usize::from(tcp[12] >> 4) * 4;
    Some((forward, seq, tcp[13], tcp.get(off..)?))
}

#[test]
fn a_loopback_connection_comes_out_whole_and_once() {
    // Read only once the exchange is over: room for all of it, and for
    // whatever else passes on lo meanwhile.
    let opts = LiveOptions {
        blocks: 64,
        block_timeout: Duration::from_millis(20),
        ..LiveOptions::default()
    };
    let _lo = LO.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut live) = open_loopback(&opts) else {
        return;
    };
    assert_eq!(live.link_type(), 1, "lo frames carry an Ethernet header");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap().port();
    // 300 KB in many writes: many segments, several blocks.
    let sent: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let to_send = sent.clone();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(b"done").unwrap();
        got
    });
    let mut client = TcpStream::connect(("127.0.0.1", server)).unwrap();
    let client_port = client.local_addr().unwrap().port();
    for chunk in to_send.chunks(7_000) {
        client.write_all(chunk).unwrap();
    }
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).unwrap();
    assert_eq!(peer.join().unwrap(), sent);
    assert_eq!(reply, b"done");

    // Every segment of the connection, by sequence number: a copy seen
    // twice would show as a segment starting where one already did.
    let mut data: Vec<(u32, Vec<u8>)> = Vec::new();
    let (mut syn, mut fins) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fins < 2 && Instant::now() < deadline {
        let Some(block) = live.next_block(Duration::from_millis(100)).unwrap() else {
            continue;
        };
        for f in block.frames() {
            // Receive times, of the clock (packets received on two cores
            // can be stamped a little out of order: not checked).
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            assert!(
                f.ts_nanos <= now && f.ts_nanos + 60_000_000_000 > now,
                "{} at {now}",
                f.ts_nanos
            );
            let Some((forward, seq, flags, payload)) =
                tcp_between(block.frame(f), client_port, server)
            else {
                continue;
            };
            if forward {
                syn += usize::from(flags & 0x02 != 0);
                if !payload.is_empty() {
                    data.push((seq, payload.to_vec()));
                }
            }
            fins += usize::from(flags & 0x01 != 0);
        }
    }
    assert_eq!(
        (syn, fins),
        (1, 2),
        "the handshake and both FINs, once each"
    );
    data.sort_by_key(|(seq, _)| *seq);
    let mut stream = Vec::new();
    for (i, (seq, bytes)) in data.iter().enumerate() {
        if i > 0 {
            let (prev, b) = &data[i - 1];
            assert_eq!(
                prev.wrapping_add(b.len() as u32),
                *seq,
                "segments follow each other, none twice"
            );
        }
        stream.extend_from_slice(bytes);
    }
    assert_eq!(stream.len(), sent.len());
    assert!(stream == sent, "the captured bytes are those sent");
    let st = live.stats();
    assert_eq!(st.malformed, 0);
    assert!(
        st.loopback_copies > 0,
        "the sent copies were seen and skipped"
    );
    assert!(st.frames > 0 && st.blocks > 0);
    assert_eq!(st.kernel_drops, 0, "{st:?}");
}

/// A ring of two small blocks, each handed over within a millisecond of
/// its first packet: it stalls unless lent blocks come back.
fn two_blocks() -> LiveOptions {
    LiveOptions {
        block_size: 1 << 16,
        blocks: 2,
        block_timeout: Duration::from_millis(1),
        ..LiveOptions::default()
    }
}

/// A connection on lo sending 50 bytes every millisecond until the
/// returned flag is set; join the thread after setting it.
fn trickle() -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let go = Arc::clone(&stop);
    let sender = std::thread::spawn(move || {
        let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        while !go.load(Ordering::Relaxed) {
            s.write_all(&[1u8; 50]).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    (stop, sender)
}

#[test]
fn blocks_go_back_to_the_kernel_when_dropped_on_any_thread() {
    let _lo = LO.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut live) = open_loopback(&two_blocks()) else {
        return;
    };
    let (stop, sender) = trickle();
    let (tx, rx) = std::sync::mpsc::channel::<weft_capture::LiveBlock>();
    // Blocks are dropped on another thread, a little later.
    let dropper = std::thread::spawn(move || {
        for b in rx {
            std::thread::sleep(Duration::from_millis(1));
            drop(b);
        }
    });
    let mut taken = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while taken < 20 && Instant::now() < deadline {
        if let Some(b) = live.next_block(Duration::from_millis(50)).unwrap() {
            taken += 1;
            tx.send(b).unwrap();
        }
    }
    drop(tx);
    dropper.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    assert!(
        taken >= 20,
        "a ring of two blocks went round {taken} times in 5 s"
    );
}

#[test]
fn a_block_still_lent_is_not_taken_again() {
    let _lo = LO.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut live) = open_loopback(&two_blocks()) else {
        return;
    };
    let (stop, sender) = trickle();
    let take = |live: &mut Live| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(b) = live.next_block(Duration::from_millis(50)).unwrap() {
                return b;
            }
            assert!(Instant::now() < deadline, "no block came");
        }
    };
    // Both blocks lent: the ring's next one is the first, still ours.
    let first = take(&mut live);
    let second = take(&mut live);
    let first_frames = first.frames().to_vec();
    assert!(live
        .next_block(Duration::from_millis(100))
        .unwrap()
        .is_none());
    // Given back, it is filled again and comes round with new frames.
    drop(first);
    let again = take(&mut live);
    assert_ne!(again.frames(), &first_frames[..]);
    drop((second, again));
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
}

#[test]
fn a_fanout_group_divides_connections_whole_among_its_sockets() {
    let _lo = LO.lock().unwrap_or_else(|e| e.into_inner());
    let opts = LiveOptions {
        blocks: 16,
        block_timeout: Duration::from_millis(5),
        ..LiveOptions::default()
    };
    // Permission first, as every test here: then the group.
    if open_loopback(&opts).is_none() {
        return;
    }
    let group = Live::open_group("lo", &opts, 2).expect("a fanout group on lo");
    let ids: Vec<Option<u16>> = group.iter().map(Live::fanout_group).collect();
    assert!(ids[0].is_some() && ids[0] == ids[1], "one group: {ids:?}");
    let other = Live::open_group("lo", &opts, 1).expect("another group");
    assert_ne!(
        other[0].fanout_group(),
        ids[0],
        "a group of its own each time"
    );
    drop(other);
    let [first, second]: [Live; 2] = group.try_into().unwrap();
    // Sixteen connections, 20 KB one way each.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap().port();
    let acceptor = std::thread::spawn(move || {
        for _ in 0..16 {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            assert_eq!(got.len(), 20_000);
        }
    });
    let mut clients = Vec::new();
    for _ in 0..16 {
        let mut c = TcpStream::connect(("127.0.0.1", server)).unwrap();
        clients.push(c.local_addr().unwrap().port());
        c.write_all(&[9u8; 20_000]).unwrap();
    }
    acceptor.join().unwrap();
    // Per socket: each client port's payload bytes (both directions) and
    // whether any frame of it came there.
    let mut seen = Vec::new();
    for mut live in [first, second] {
        let mut bytes = std::collections::HashMap::<u16, usize>::new();
        while let Some(block) = live.next_block(Duration::from_millis(300)).unwrap() {
            for f in block.frames() {
                for &port in &clients {
                    if let Some((_, _, _, payload)) = tcp_between(block.frame(f), port, server) {
                        *bytes.entry(port).or_default() += payload.len();
                    }
                }
            }
        }
        assert_eq!(live.stats().kernel_drops, 0);
        seen.push(bytes);
    }
    for port in &clients {
        let on: Vec<usize> = seen.iter().filter_map(|s| s.get(port).copied()).collect();
        assert_eq!(
            on,
            vec![20_000],
            "connection {port}: on one socket only, whole"
        );
    }
    assert!(
        seen.iter().all(|s| !s.is_empty()),
        "both sockets got connections: {seen:?}"
    );
}

/// A program taking IPv4 TCP frames to or from `port` (an options-aware
/// header length, as libpcap's `tcp port P` reads it).
fn tcp_port(port: u16) -> weft_capture::BpfProgram {
    let p = u32::from(port);
    let text = format!(
        "11\n40 0 0 12\n21 0 8 2048\n48 0 0 23\n21 0 6 6\n177 0 0 14\n72 0 0 14\n\
         21 2 0 {p}\n72 0 0 16\n21 0 1 {p}\n6 0 0 262144\n6 0 0 0\n"
    );
    weft_capture::BpfProgram::parse(&text).unwrap()
}

/// With a socket filter taking one connection's port, a capture (a
/// single socket, or a fanout group, whose hold filter the program
/// replaces) sees that connection, both ways, and nothing else: the
/// kernel runs the program as `BpfProgram::run` does.
#[test]
fn the_kernel_runs_the_socket_filter_as_the_interpreter_does() {
    let _lo = LO.lock().unwrap_or_else(|e| e.into_inner());
    for group in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap().port();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let other_port = other.local_addr().unwrap().port();
        let filter = tcp_port(server);
        let opts = LiveOptions {
            blocks: 16,
            block_timeout: Duration::from_millis(5),
            filter: Some(filter.clone()),
            ..LiveOptions::default()
        };
        let lives = if group {
            if open_loopback(&LiveOptions::default()).is_none() {
                return;
            }
            Live::open_group("lo", &opts, 2).expect("a fanout group on lo")
        } else {
            match open_loopback(&opts) {
                Some(live) => vec![live],
                None => return,
            }
        };
        // A connection to each listener, 5 KB one way.
        for l in [listener, other] {
            let port = l.local_addr().unwrap().port();
            let acceptor = std::thread::spawn(move || {
                let (mut s, _) = l.accept().unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                got.len()
            });
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(&[3u8; 5_000]).unwrap();
            drop(c);
            assert_eq!(acceptor.join().unwrap(), 5_000);
        }
        let (mut frames, mut to_server, mut from_server, mut payload) = (0, 0, 0, 0);
        for mut live in lives {
            while let Some(block) = live.next_block(Duration::from_millis(300)).unwrap() {
                for f in block.frames() {
                    let frame = block.frame(f);
                    frames += 1;
                    assert_ne!(
                        filter.run(frame, f.wire_len),
                        0,
                        "a frame the program rejects"
                    );
                    let ip = &frame[14..];
                    let tcp = &ip[usize::from(ip[0] & 15) * 4..];
                    let (sport, dport) = (
                        u16::from_be_bytes([tcp[0], tcp[1]]),
                        u16::from_be_bytes([tcp[2], tcp[3]]),
                    );
                    assert!(sport != other_port && dport != other_port);
                    to_server += usize::from(dport == server);
                    from_server += usize::from(sport == server);
                    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
                    let hdr = usize::from(ip[0] & 15) * 4 + usize::from(tcp[12] >> 4) * 4;
                    payload += total - hdr;
                }
            }
        }
        assert!(
            to_server >= 3 && from_server >= 2,
            "group {group}: {to_server} frames to the port, {from_server} from it, of {frames}"
        );
        assert_eq!(
            payload, 5_000,
            "group {group}: the filtered connection's bytes"
        );
    }
}
