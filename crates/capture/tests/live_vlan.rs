//! Live capture of VLAN-tagged frames whose tags the kernel strips on
//! receipt (every device does, before packet sockets see the frame): the
//! frames come out as they were on the wire, 802.1Q and 802.1ad tags put
//! back in place. Done in a network namespace of its own, with a veth pair
//! (frames sent into one end are received at the other), so the host's
//! devices are untouched.
//!
//! Needs `CAP_NET_ADMIN` and `CAP_NET_RAW`, the `ip` command and veth
//! devices: without them the test says so and passes.
#![cfg(target_os = "linux")]
#![allow(unsafe_code)]

use std::process::Command;
use std::time::Duration;

use weft_capture::{Live, LiveOptions};

/// Runs `ip ARGS` (in this thread's namespace); whether it worked.
fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// Sends `frame` out of `device` through a packet socket.
fn inject(device: &str, frame: &[u8]) {
    let name = std::ffi::CString::new(device).unwrap();
    // SAFETY: plain system calls on a socket this function owns; the
    // addresses and buffers passed live across each call, with their
    // lengths.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        assert!(fd >= 0, "packet socket");
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        assert_eq!(
            libc::bind(fd, (&addr as *const libc::sockaddr_ll).cast(), len),
            0
        );
        let sent = libc::send(fd, frame.as_ptr().cast(), frame.len(), 0);
        assert_eq!(sent, frame.len() as isize);
        libc::close(fd);
    }
}

/// A frame behind one tag (`tpid`, `tci`): Ethernet, IPv4, TCP.
fn tagged(tpid: u16, tci: u16) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&tpid.to_be_bytes());
    f.extend_from_slice(&tci.to_be_bytes());
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 99, 0, 1, 10, 99, 0, 2,
    ]);
    f.extend_from_slice(&[
        0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0,
    ]);
    f
}

/// Runs `test` on a thread in a network namespace of its own holding a
/// veth pair `t0`/`t1`, both up; says so and returns where one cannot be
/// made.
fn in_namespace_with_veth(test: impl FnOnce() + Send + 'static) {
    // A thread of its own: the namespace is the thread's (and its
    // children's, the `ip` commands').
    std::thread::spawn(move || {
        // SAFETY: plain system call; only this thread's namespace changes.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            let e = std::io::Error::last_os_error();
            eprintln!("SKIPPED: no network namespace of its own here ({e})");
            return;
        }
        if !ip(&["link", "add", "t0", "type", "veth", "peer", "name", "t1"])
            || !ip(&["link", "set", "t0", "up"])
            || !ip(&["link", "set", "t1", "up"])
        {
            eprintln!("SKIPPED: no veth pair here (the ip command, or veth devices, missing)");
            return;
        }
        test();
    })
    .join()
    .unwrap();
}

fn opts() -> LiveOptions {
    LiveOptions {
        block_timeout: Duration::from_millis(5),
        blocks: 4,
        ..LiveOptions::default()
    }
}

#[test]
fn stripped_vlan_tags_are_put_back_as_they_were_on_the_wire() {
    in_namespace_with_veth(|| {
        let mut live = Live::open("t1", &opts()).expect("a capture on the veth end");
        let sent = [tagged(0x8100, 0x000a), tagged(0x88a8, 0x2005)];
        for f in &sent {
            inject("t0", f);
        }
        let mut got = Vec::new();
        while let Some(block) = live.next_block(Duration::from_millis(500)).unwrap() {
            for f in block.frames() {
                let bytes = block.frame(f);
                if bytes.len() >= 18
                    && (bytes[12..14] == [0x81, 0x00] || bytes[12..14] == [0x88, 0xa8])
                {
                    got.push(bytes.to_vec());
                }
            }
            if got.len() == sent.len() {
                break;
            }
        }
        assert_eq!(got, sent, "the frames as sent, tags in place");
        assert_eq!(
            live.stats().vlan_restored,
            2,
            "the kernel had stripped them"
        );
    });
}

#[test]
fn a_device_that_goes_away_ends_the_capture_with_an_error() {
    in_namespace_with_veth(|| {
        let mut live = Live::open("t1", &opts()).expect("a capture on the veth end");
        assert!(ip(&["link", "del", "t0"]), "deleting the pair");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let err = loop {
            match live.next_block(Duration::from_millis(100)) {
                Err(e) => break e,
                Ok(_) => assert!(std::time::Instant::now() < deadline, "no error in 5 s"),
            }
        };
        assert!(err.to_string().starts_with("t1: "), "{err}");
    });
}
