//! `weft-replay --interface lo`: connections made while it captures come
//! out as digests of exactly the bytes sent, inline and with workers, and
//! connections left open time out while no traffic comes.
//!
//! Capturing needs `CAP_NET_RAW`. Without it the tests say so and pass,
//! unless `WEFT_REQUIRE_LIVE=1` (set by `.ci/run` where it may capture),
//! which makes them fail instead.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

/// One test at a time on `lo`: each sees the others' packets, and the
/// idle test needs a quiet device.
static LO: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether this process may open a packet socket; prints why not.
fn may_capture() -> bool {
    // The replay tool reports a refused capture itself, but a test must
    // tell "not allowed" from "broken" before it runs.
    let out = Command::new(env!("CARGO_BIN_EXE_weft-replay"))
        .args(["-i", "lo", "--count", "1", "--duration", "0.01", "-q"])
        .output()
        .expect("run weft-replay");
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return true;
    }
    assert!(
        err.contains("not permitted") || err.contains("denied"),
        "weft-replay -i lo failed otherwise: {err}"
    );
    let required = std::env::var("WEFT_REQUIRE_LIVE").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "WEFT_REQUIRE_LIVE=1 but capturing is not allowed: {err}"
    );
    eprintln!(
        "SKIPPED: live capture not allowed here ({}); WEFT_REQUIRE_LIVE=1 makes this fail",
        err.trim()
    );
    false
}

/// Runs `weft-replay -i lo ARGS` for `secs` seconds while `traffic` runs
/// (it starts once the capture is open: weft-replay says so on standard
/// error). Standard error in the output is what came after that line.
fn capture_while(args: &[&str], secs: &str, traffic: impl FnOnce()) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft-replay"))
        .args(["-i", "lo", "--duration", secs, "-q"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run weft-replay");
    let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).expect("read stderr");
    assert_eq!(line.trim(), "weft-replay: capturing on lo");
    // The rest of standard error on a thread of its own, so neither pipe
    // fills while the other is read.
    let rest = std::thread::spawn(move || {
        let mut rest = Vec::new();
        err.read_to_end(&mut rest).map(|_| rest)
    });
    traffic();
    let mut out = child.wait_with_output().expect("weft-replay output");
    out.stderr = rest.join().unwrap().expect("read stderr");
    out
}

/// A connection on 127.0.0.1 that sends `up` and gets `down` back, both
/// closed; its client's port.
fn exchange(up: &[u8], down: &[u8]) -> u16 {
    exchange_on(TcpListener::bind("127.0.0.1:0").unwrap(), up, down)
}

/// [`exchange`] with the server listening on `listener`.
fn exchange_on(listener: TcpListener, up: &[u8], down: &[u8]) -> u16 {
    let port = listener.local_addr().unwrap().port();
    let down = down.to_vec();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&down).unwrap();
        got
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for chunk in up.chunks(10_000) {
        c.write_all(chunk).unwrap();
    }
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(server.join().unwrap(), up);
    c.local_addr().unwrap().port()
}

/// The `--json` report: the last line of standard output.
fn report(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().expect("a report")).expect("JSON")
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn connections_made_while_capturing_come_out_as_their_bytes() {
    let _lo = LO.lock().unwrap_or_else(|e| e.into_inner());
    if !may_capture() {
        return;
    }
    let up: Vec<u8> = (0..400_000u32)
        .map(|i| (i % 251) as u8 ^ (i >> 9) as u8)
        .collect();
    let down = b"thanks, all of it".to_vec();
    let modes = [
        (&["--inline"][..], "inline"),
        (&["-w", "2", "--dispatch", "ring"], "ring"),
        (&["-w", "2", "--dispatch", "hybrid"], "hybrid"),
        // A socket per worker, the kernel dividing flows among them.
        (&["-w", "2", "--dispatch", "fanout"], "fanout"),
        (&["-w", "3"], "fanout"),
    ];
    for (mode, dispatch) in modes {
        let mut port = 0;
        let mut args = vec!["--digest", "--json"];
        args.extend_from_slice(mode);
        let out = capture_while(&args, "2", || port = exchange(&up, &down));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let client = format!("127.0.0.1 {port} 127.0.0.1 ");
        let server = format!(" 127.0.0.1 {port} ");
        let sent = stdout
            .lines()
            .find(|l| l.starts_with(&client))
            .unwrap_or_else(|| panic!("{mode:?}: no digest of port {port}: {stdout}"));
        assert!(
            sent.ends_with(&format!(" {} 0 {}", up.len(), sha(&up))),
            "{mode:?}: {sent}"
        );
        let back = stdout
            .lines()
            .find(|l| l.contains(&server) && !l.starts_with(&client))
            .unwrap_or_else(|| panic!("{mode:?}: no reply digest: {stdout}"));
        assert!(
            back.ends_with(&format!(" {} 0 {}", down.len(), sha(&down))),
            "{mode:?}: {back}"
        );
        let json = report(&out);
        let live = &json["live"];
        assert_eq!(live["interface"], "lo", "{mode:?}");
        assert_eq!(live["kernel_drops"], 0, "{mode:?}");
        assert_eq!(live["malformed"], 0, "{mode:?}");
        assert!(
            live["loopback_copies"].as_u64() > Some(0),
            "{mode:?}: {live}"
        );
        assert_eq!(json["interrupted"], false, "{mode:?}");
        assert_eq!(json["dispatch"]["mode"], dispatch, "{mode:?}");
    }
}

#[test]
fn a_count_of_frames_is_of_all_readers() {
    let _lo = LO.lock().unwrap_or_else(|e| e.into_inner());
    if !may_capture() {
        return;
    }
    for mode in [&["--inline"][..], &["-w", "2", "--dispatch", "fanout"]] {
        let mut args = vec!["--json", "--count", "25"];
        args.extend_from_slice(mode);
        // Many connections: both sockets of a fanout group get frames.
        let out = capture_while(&args, "5", || {
            for _ in 0..20 {
                exchange(b"some bytes", b"back");
            }
        });
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json = report(&out);
        assert_eq!(
            json["dispatch"]["frames"], 25,
            "{mode:?}: {}",
            json["dispatch"]
        );
    }
}

#[test]
fn a_connection_left_open_times_out_while_nothing_comes() {
    let _lo = LO.lock().unwrap_or_else(|e| e.into_inner());
    if !may_capture() {
        return;
    }
    let config = std::env::temp_dir().join(format!("weft-live-idle-{}.toml", std::process::id()));
    std::fs::write(&config, "[reassembly]\nidle_timeout = \"1s\"\n").unwrap();
    for mode in [&["--inline"][..], &["-w", "2", "--dispatch", "ring"]] {
        let mut args = vec!["--json", "--config", config.to_str().unwrap()];
        args.extend_from_slice(mode);
        let mut holder = None;
        let out = capture_while(&args, "2.5", || {
            // Data, then silence: still open when the capture ends (no
            // frame moves packet time on), idle longer than the timeout.
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (s, _) = listener.accept().unwrap();
            c.write_all(b"hello, anyone?").unwrap();
            holder = Some((c, s));
        });
        drop(holder);
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json = report(&out);
        let closed_idle = json["total"]["reassembly"]["conns_closed_idle"]
            .as_u64()
            .unwrap();
        assert!(
            closed_idle >= 1,
            "{mode:?}: {}",
            json["total"]["reassembly"]
        );
    }
    let _ = std::fs::remove_file(config);
}

#[test]
fn table_weights_take_rings_and_refuse_fanout_before_capturing() {
    let _lo = LO.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_weft-replay"))
        .args([
            "-i",
            "lo",
            "-w",
            "2",
            "--dispatch",
            "fanout",
            "--table-weights",
            "1,2",
        ])
        .args(["--duration", "0.1", "-q"])
        .output()
        .expect("run weft-replay");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("table weights") && !err.contains("capturing on"),
        "{err}"
    );
    if !may_capture() {
        return;
    }
    let out = capture_while(
        &["-w", "2", "--table-weights", "1,2", "--json"],
        "0.3",
        || {},
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = report(&out);
    assert_ne!(json["dispatch"]["mode"], "fanout");
}

/// `--bpf` on a live interface: the kernel runs the program on each
/// socket (one, or a fanout group's), so of two connections only the one
/// it takes comes out, whole.
#[test]
fn a_bpf_filter_runs_in_the_kernel_on_every_socket() {
    let _lo = LO.lock().unwrap_or_else(|e| e.into_inner());
    if !may_capture() {
        return;
    }
    for mode in [
        &["--inline"][..],
        &["-w", "2", "--dispatch", "fanout"],
        &["-w", "2", "--dispatch", "ring"],
    ] {
        let kept = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = kept.local_addr().unwrap().port();
        // IPv4 TCP to or from the port (the header length read from the
        // IPv4 header, as libpcap's `tcp port P` does).
        let program = std::env::temp_dir().join(format!("weft-live-{port}.bpf"));
        std::fs::write(
            &program,
            format!(
                "11\n40 0 0 12\n21 0 8 2048\n48 0 0 23\n21 0 6 6\n177 0 0 14\n72 0 0 14\n\
                 21 2 0 {port}\n72 0 0 16\n21 0 1 {port}\n6 0 0 262144\n6 0 0 0\n"
            ),
        )
        .unwrap();
        let mut args = vec!["--digest", "--json", "--bpf", program.to_str().unwrap()];
        args.extend_from_slice(mode);
        let (up, down) = (vec![7u8; 30_000], b"ok".to_vec());
        let mut other = 0;
        let out = capture_while(&args, "2", || {
            other = exchange(&up, &down);
            exchange_on(kept, &up, &down);
        });
        let _ = std::fs::remove_file(&program);
        assert!(
            out.status.success(),
            "{mode:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('{')).collect();
        assert_eq!(
            lines.len(),
            2,
            "{mode:?}: only the kept connection: {stdout}"
        );
        for l in &lines {
            let f: Vec<&str> = l.split(' ').collect();
            assert!(
                f[1] == port.to_string() || f[3] == port.to_string(),
                "{mode:?}: {l}"
            );
            assert!(
                f[1] != other.to_string() && f[3] != other.to_string(),
                "{mode:?}: {l}"
            );
        }
        let sent = format!(" {} 0 {}", up.len(), sha(&up));
        assert!(
            lines.iter().any(|l| l.ends_with(&sent)),
            "{mode:?}: {stdout}"
        );
        assert_eq!(report(&out)["live"]["kernel_drops"], 0, "{mode:?}");
    }
}
