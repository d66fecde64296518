//! The `weft-replay` command as a user runs it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weft-replay"));
    c.arg("--quiet");
    c
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/sample.pcap")
}

fn sample_truth() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/sample.truth"),
    )
    .unwrap()
}

fn run(args: &[&str], file: &Path) -> Output {
    bin().args(args).arg(file).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A run's `--digest` lines and its `--json` report after them.
fn digest_and_json(o: &Output) -> (String, serde_json::Value) {
    let out = stdout(o);
    let (digest, json) = out.split_once('{').expect("digest, then JSON");
    let v = serde_json::from_str(&format!("{{{json}")).unwrap();
    (digest.to_owned(), v)
}

/// A frame counter of a `--json` report as every mode counts it: what the
/// workers counted and what the dispatcher did (`part` picks a table
/// within each, e.g. `defrag`, or none).
fn counted(v: &serde_json::Value, part: Option<&str>, key: &str) -> u64 {
    let of = |t: &serde_json::Value| {
        let t = part.map_or(t, |p| &t[p]);
        t[key].as_u64().unwrap()
    };
    of(&v["total"]["frames"]) + of(&v["dispatch"])
}

/// A lossy, reordered trace with its truth: some of the lost segments
/// end a direction (only the peer's ACK or RST tells), some carry a FIN.
fn lossy() -> (PathBuf, String) {
    let cfg = weft_gen::GenConfig {
        seed: 99,
        conns: 300,
        concurrent: 60,
        max_bytes: 40_000,
        reorder: 0.05,
        duplicate: 0.02,
        overlap: 0.02,
        loss: 0.05,
        fin_data: 0.3,
        syn_data: 0.2,
        ipv6_fraction: 0.3,
        vlan_fraction: 0.2,
        tunnel_fraction: 0.2,
        wrap_fraction: 0.3,
        tuple_pool: 80,
        ..weft_gen::GenConfig::default()
    };
    // A file of each test's own: tests run at once, and one writing the
    // file while another maps it would cut the other's capture short.
    let test = std::thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", "-");
    generated(&format!("cli-lossy-{test}.pcap"), &cfg)
}

/// The trace of `cfg` written to `name` in the test directory, and its
/// truth as `--digest` prints it.
fn generated(name: &str, cfg: &weft_gen::GenConfig) -> (PathBuf, String) {
    let path = tmp(name);
    let truth = weft_gen::generate(cfg, std::fs::File::create(&path).unwrap()).unwrap();
    (
        path,
        truth.lines().iter().map(|l| format!("{l}\n")).collect(),
    )
}

#[test]
fn digest_equals_truth_for_every_worker_count() {
    let (lossy, lossy_truth) = lossy();
    for (file, truth) in [(sample(), sample_truth()), (lossy, lossy_truth)] {
        for w in ["--inline", "-w1", "-w2", "-w3", "-w8"] {
            for d in [
                "--dispatch=auto",
                "--dispatch=ring",
                "--dispatch=fanout",
                "--dispatch=hybrid",
            ] {
                if w == "--inline" && d == "--dispatch=fanout" {
                    continue;
                }
                let o = run(&["--digest", w, d], &file);
                assert!(
                    o.status.success(),
                    "{w} {d}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                assert_eq!(stdout(&o), truth, "{} with {w} {d}", file.display());
            }
        }
    }
}

#[test]
fn standard_input_gives_the_same_digest() {
    let mut child = bin()
        .args(["--digest", "-w2", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(sample()).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(o.status.success());
    assert_eq!(stdout(&o), sample_truth());
}

/// `--no-map` reads files with ordinary reads: the same digests, and a
/// run that asks for fanout workers (which need a mapped file) is refused.
#[test]
fn unmapped_reading_gives_the_same_digest() {
    for w in ["--inline", "-w2"] {
        for d in ["--dispatch=auto", "--dispatch=ring", "--dispatch=hybrid"] {
            let o = run(&["--digest", "--no-map", w, d], &sample());
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(stdout(&o), sample_truth(), "{w} {d}");
        }
    }
    let o = run(
        &["--digest", "--no-map", "-w2", "--dispatch=fanout"],
        &sample(),
    );
    assert!(!o.status.success());
}

#[test]
fn flow_files_hash_to_the_digest() {
    let dir = tmp("flows");
    let _ = std::fs::remove_dir_all(&dir);
    let o = bin()
        .args(["--digest", "-w2", "--write-flows"])
        .arg(&dir)
        .arg(sample())
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut hashes: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            format!("{} {:x}", bytes.len(), Sha256::digest(&bytes))
        })
        .collect();
    let mut want: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            format!("{} {}", f[4], f[6])
        })
        .collect();
    // Directions with only a gap have no bytes and no file (no empty one).
    want.retain(|w| !w.starts_with("0 "));
    hashes.sort();
    want.sort();
    assert_eq!(hashes, want);
}

/// A capture in the flow directory under a flow file's name (mapped, and
/// read by fanout workers) is not overwritten: that file is a flow error
/// (exit 1), and the others are written.
#[test]
fn a_flow_file_never_overwrites_an_input_capture() {
    let dir = tmp("flows-over-input");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The name of the client's half of the sample's first connection.
    let name = "010.117.105.202.64515-192.168.010.200.00021";
    let input = dir.join(name);
    let bytes = std::fs::read(sample()).unwrap();
    std::fs::write(&input, &bytes).unwrap();
    let o = bin()
        .args(["--json", "-w2", "--write-flows"])
        .arg(&dir)
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(
        std::fs::read(&input).unwrap(),
        bytes,
        "the capture is intact"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let errors = v["flow_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].as_str().unwrap().contains(name), "{errors:?}");
    let written = std::fs::read_dir(&dir).unwrap().count();
    assert!(written > 40, "the other flow files: {written}");
}

/// Settings no run can use are usage errors (exit 2) with a clear word,
/// not a crash, a silent fallback or an allocation of terabytes.
#[test]
fn impossible_settings_are_usage_errors() {
    let conf = config_file("huge-ring.toml", "ring_capacity = 1099511627776\n");
    // Settings that were taken and quietly broke the run: zero timeouts
    // (every connection ended at once), no table weights (inline), a
    // memcap below a page (every out-of-order byte dropped), no ring.
    let zero_idle = config_file("zero-idle.toml", "[reassembly]\nidle_timeout = \"0s\"\n");
    let zero_flush = config_file("zero-flush.toml", "[reassembly]\nflush_timeout = \"0\"\n");
    let no_weights = config_file("no-weights.toml", "table_weights = []\n");
    let tiny_cap = config_file("tiny-cap.toml", "[reassembly]\nmemcap = \"1KiB\"\n");
    let no_ring = config_file("no-ring.toml", "ring_capacity = 0\n");
    for (args, says) in [
        (&["--config", &zero_idle][..], "idle_timeout of zero"),
        (&["--config", &zero_flush], "flush_timeout of zero"),
        (&["--config", &no_weights], "one weight per worker"),
        (&["--config", &tiny_cap], "below one page"),
        (&["--memcap", "100"], "below one page"),
        (
            &["-w2", "--dispatch=ring", "--config", &no_ring],
            "at least 1",
        ),
        (&["--read-only", "-w", "500"], "cannot be used with"),
        (&["--read-only", "--stats"], "cannot be used with"),
    ] {
        let o = run(args, &sample());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(
        run(&["--memcap", "0", "--digest"], &sample())
            .status
            .success(),
        "0: no limit"
    );
    for (args, says) in [
        (&["-w", "200"][..], "at most 128"),
        (&["-w", "200", "--dispatch=ring"], "at most 128"),
        (&["--pace", "0"], "above 0"),
        (&["--pace=-1"], "above 0"),
        (&["--pace", "nan"], "above 0"),
        (&["-w2", "--dispatch=ring", "--config", &conf], "slots"),
    ] {
        let o = run(args, &sample());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// `--stats` shows the segments dropped for a bad checksum (they were in
/// the JSON only: the table's counts did not add up).
#[test]
fn stats_show_checksum_drops() {
    let mut bytes = std::fs::read(sample()).unwrap();
    // Damage the last byte of every tenth frame's payload.
    let (mut at, mut n) = (24, 0);
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        if n % 10 == 0 && caplen > 60 {
            bytes[at + 16 + caplen - 1] ^= 0x5a;
        }
        (at, n) = (at + 16 + caplen, n + 1);
    }
    let path = tmp("bad-checksums.pcap");
    std::fs::write(&path, bytes).unwrap();
    let conf = tmp("drop-bad.toml");
    std::fs::write(&conf, "drop_bad_checksums = true\n").unwrap();
    let o = bin()
        .args(["--inline", "--stats", "--config"])
        .arg(&conf)
        .arg(&path)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{table}");
    let dropped = table
        .lines()
        .find(|l| l.trim_start().starts_with("dropped") && !l.contains(':'))
        .unwrap_or_else(|| panic!("no checksum drops row:\n{table}"));
    assert!(table.contains("bad checksum"), "{table}");
    let count: u64 = dropped.split_whitespace().last().unwrap().parse().unwrap();
    assert!(count > 0, "{table}");
}

/// Output that cannot be written (a full disk) is a failure, not a
/// cut-off digest with a success status.
#[test]
fn output_that_cannot_be_written_is_exit_1() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("no /dev/full here: skipped");
        return;
    };
    let o = bin()
        .args(["--inline", "--digest"])
        .arg(sample())
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot write the output"));
    // A flow directory that cannot be made (a file stands in its path) is
    // such an output; and none is made for a run refused as a usage error.
    let file = tmp("a-file");
    std::fs::write(&file, b"x").unwrap();
    let o = run(
        &["--write-flows", file.join("sub").to_str().unwrap()],
        &sample(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot write flow files"));
    let dir = tmp("flows-of-a-refused-run");
    let _ = std::fs::remove_dir_all(&dir);
    let o = run(
        &[
            "--write-flows",
            dir.to_str().unwrap(),
            "--bpf",
            "/no/such.bpf",
        ],
        &sample(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.exists());
    // Nor is one left by a run the replay itself refuses (fanout inline).
    let o = run(
        &[
            "--write-flows",
            dir.to_str().unwrap(),
            "--inline",
            "--dispatch",
            "fanout",
        ],
        &sample(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!dir.exists());
}

#[test]
fn truncated_capture_is_exit_1_with_offset_and_stats() {
    let bytes = std::fs::read(sample()).unwrap();
    let cut = tmp("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let mut digests = Vec::new();
    for d in [
        &["--inline"][..],
        &["-w2", "--dispatch=ring"],
        &["-w2", "--dispatch=fanout"],
        &["-w2", "--dispatch=hybrid"],
    ] {
        let o = run(&[&["--stats", "--digest"][..], d].concat(), &cut);
        assert_eq!(o.status.code(), Some(1), "{d:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("cut.pcap") && err.contains("truncated") && err.contains("at byte"),
            "{d:?}: {err}"
        );
        // Fanout workers each meet the error; it is reported once.
        assert_eq!(err.matches("truncated").count(), 1, "{d:?}: {err}");
        assert!(err.contains("delivered"), "stats are still printed: {err}");
        assert!(
            !stdout(&o).is_empty(),
            "digests of what was read are printed"
        );
        digests.push(stdout(&o));
    }
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0], digests[2]);
}

#[test]
fn corrupt_and_missing_inputs_are_exit_1() {
    let junk = tmp("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let o = run(&["--digest"], &junk);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("junk.pcap"));
    let o = run(&["--digest"], Path::new("/nonexistent/capture.pcap"));
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn usage_errors_are_exit_2() {
    let o = bin().output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["--overlap-policy", "sideways"], &sample());
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["--dispatch", "sideways"], &sample());
    assert_eq!(o.status.code(), Some(2));
    // Fanout needs workers, blocking backpressure, and inputs every worker
    // can read.
    let o = run(&["--dispatch", "fanout", "--inline"], &sample());
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["--dispatch", "fanout", "-w2", "--merge"], &sample());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("merged captures"));
    let o = bin().args(["--merge", "-i", "lo"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    // A live ring past what the kernel's block count can hold is refused,
    // not cut short unseen.
    let o = bin()
        .args(["-i", "lo", "--live-ring", "100GiB"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at most 64GiB"));
    // The floor reads every frame: a filter would not be run.
    let bpf = sample().with_file_name("tcp-port-80.bpf");
    let o = run(&["--read-only", "--bpf", bpf.to_str().unwrap()], &sample());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used with"));
    let drop_cfg = tmp("drop.toml");
    std::fs::write(&drop_cfg, "backpressure = \"drop\"\n").unwrap();
    let o = bin()
        .args(["--dispatch", "fanout", "-w2", "--config"])
        .arg(&drop_cfg)
        .arg(sample())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = bin()
        .args(["--json", "-w2", "--config"])
        .arg(&drop_cfg)
        .arg(sample())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "auto falls back to rings with drop backpressure"
    );
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["dispatch"]["mode"], "ring");
    // (The capture's header alone: the run stops before reading on.)
    let header = std::fs::read(sample()).unwrap()[..24].to_vec();
    let o = piped(
        &["--dispatch", "fanout", "-w2"],
        header,
        24,
        std::time::Duration::ZERO,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("fanout dispatch needs"));
    let with_config = |name: &str, text: &str| {
        let cfg = tmp(name);
        std::fs::write(&cfg, text).unwrap();
        bin()
            .arg("--config")
            .arg(&cfg)
            .arg(sample())
            .output()
            .unwrap()
    };
    let o = with_config("bad.toml", "wrokers = 3\n");
    assert_eq!(o.status.code(), Some(2));
    // A value the file gives that no run can take names the file.
    let o = with_config("bad-value.toml", "dispatch = \"sideways\"\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad-value.toml"));
}

/// Several captures, one damaged in the middle, replay as one run in every
/// mode: the damage is reported once (every fanout worker meets it), the
/// captures after it are still read, and the digests agree.
#[test]
fn several_captures_with_a_damaged_one_agree_in_every_mode() {
    let bytes = std::fs::read(sample()).unwrap();
    let cut = tmp("cut-middle.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (lossy, _) = lossy();
    // Every run reads the three captures, fails (status 1) and names the
    // damage once.
    let read_all = |args: &[&str]| {
        let o = bin()
            .args(args)
            .arg(sample())
            .arg(&cut)
            .arg(&lossy)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(err.matches("cut-middle.pcap").count(), 1, "{args:?}: {err}");
        (stdout(&o), err)
    };
    let mut seen = Vec::new();
    for mode in [
        &["--inline"][..],
        &["-w3", "--dispatch=ring"],
        &["-w3", "--dispatch=fanout"],
        &["-w3", "--dispatch=hybrid"],
    ] {
        let (out, _) = read_all(&[&["--digest", "--json"][..], mode].concat());
        let (digests, json) = out.trim_end().rsplit_once('\n').unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        seen.push((digests.to_owned(), v["dispatch"]["frames"].clone()));
    }
    assert!(
        seen[0].1.as_u64().unwrap() > 665,
        "the capture after the damage was read"
    );
    assert_eq!(seen[1], seen[0]);
    assert_eq!(seen[2], seen[0]);
    assert_eq!(seen[3], seen[0]);
    // Merged, the damaged capture ends at its damage while the others go
    // on: the same frames are read (in another order).
    for mode in [&["--inline"][..], &["-w3"]] {
        let (out, _) = read_all(&[&["--json", "--merge"][..], mode].concat());
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["dispatch"]["frames"], seen[0].1, "{mode:?}");
    }
    // The floor reads the same frames.
    let (_, err) = read_all(&["--read-only"]);
    let frames = format!("read-only: {} frames", seen[0].1);
    assert!(err.contains(&frames), "{err}");
}

/// Table weights place flows: a weight of 0 gives a worker none, the
/// output stays the truth in every mode, and a count that is not one per
/// worker is a usage error.
#[test]
fn table_weights_place_the_flows() {
    for mode in ["--dispatch=ring", "--dispatch=fanout", "--dispatch=hybrid"] {
        for weights in ["0,1", "1,0", "1,4"] {
            let o = run(
                &[
                    "--json",
                    "--digest",
                    "-w2",
                    mode,
                    "--table-weights",
                    weights,
                ],
                &sample(),
            );
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let out = stdout(&o);
            let (digests, json) = out.trim_end().rsplit_once('\n').unwrap();
            assert_eq!(format!("{digests}\n"), sample_truth(), "{mode} {weights}");
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            let frames: Vec<u64> = v["workers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["frames"]["frames"].as_u64().unwrap())
                .collect();
            match weights {
                "0,1" => assert_eq!(frames, [0, 665], "{mode}"),
                "1,0" => assert_eq!(frames, [665, 0], "{mode}"),
                _ => assert!(frames.iter().all(|&n| n > 0), "{mode}: {frames:?}"),
            }
        }
    }
    let o = run(&["-w3", "--table-weights", "1,2"], &sample());
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("one per worker"));
    // Without --workers, as many workers as weights; inline, ignored.
    for (args, workers) in [
        (&["--table-weights", "1,1,1"][..], 3),
        (&["--inline", "--table-weights", "1,2"], 1),
    ] {
        let o = run(&[&["--json"][..], args].concat(), &sample());
        assert!(o.status.success(), "{args:?}");
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(v["workers"].as_array().unwrap().len(), workers, "{args:?}");
    }
    // Weights on the command line say how many workers over a config
    // file's count, as flags override the file.
    for count in [0, 2] {
        let cfg = tmp(&format!("workers-{count}.toml"));
        std::fs::write(&cfg, format!("workers = {count}\n")).unwrap();
        let o = bin()
            .args(["--json", "--table-weights", "1,2,3", "--config"])
            .arg(&cfg)
            .arg(sample())
            .output()
            .unwrap();
        assert!(o.status.success(), "config workers = {count}: {o:?}");
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(v["workers"].as_array().unwrap().len(), 3, "{count}");
    }
}

#[test]
fn json_stats_are_machine_readable() {
    for (args, mode) in [
        (&["--json", "-w2"][..], "fanout"),
        (&["--json", "-w2", "--dispatch=ring"][..], "ring"),
        (&["--json", "-w2", "--dispatch=hybrid"][..], "hybrid"),
        (&["--json", "--inline"][..], "inline"),
    ] {
        let o = run(args, &sample());
        assert!(o.status.success());
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(v["dispatch"]["mode"], mode);
        assert_eq!(v["dispatch"]["frames"], 665);
        let workers = if mode == "inline" { 1 } else { 2 };
        assert_eq!(v["workers"].as_array().unwrap().len(), workers);
        let total = &v["total"]["reassembly"];
        assert_eq!(total["gap_bytes"], 11584);
    }
}

/// The config file's settings take effect (its overlap policy decides
/// which copy of conflicting overlaps is delivered, `workers = 0` runs
/// inline), and a flag overrides the file.
#[test]
fn config_file_and_flags() {
    let gen = weft_gen::GenConfig {
        seed: 5,
        conns: 40,
        concurrent: 10,
        hostile: Some(weft_gen::Hostile::Conflict),
        hostile_fraction: 0.5,
        ..Default::default()
    };
    let trace = tmp("conflict.pcap");
    let truth = weft_gen::generate(&gen, std::fs::File::create(&trace).unwrap()).unwrap();
    let lines = |v: &[String]| v.iter().map(|l| format!("{l}\n")).collect::<String>();
    let (first, last) = (lines(truth.lines()), lines(truth.last_lines()));
    assert_ne!(
        first, last,
        "the trace's conflicts must tell the policies apart"
    );
    let cfg = tmp("weft.toml");
    std::fs::write(
        &cfg,
        "workers = 0\n[reassembly]\noverlap_policy = \"last\"\nmemcap = \"64MiB\"\n",
    )
    .unwrap();
    let with = |extra: &[&str]| {
        let o = bin()
            .args(["--digest", "--json", "--config"])
            .arg(&cfg)
            .args(extra)
            .arg(&trace)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = stdout(&o);
        let (digest, json) = out.rsplit_once("\n{").expect("digest lines, then the json");
        let v: serde_json::Value = serde_json::from_str(&format!("{{{json}")).unwrap();
        (
            format!("{digest}\n"),
            v["dispatch"]["mode"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        with(&[]),
        (last, "inline".to_owned()),
        "the file's policy and workers"
    );
    assert_eq!(
        with(&["--overlap-policy", "first"]).0,
        first,
        "the flag wins"
    );
}

#[test]
fn pcapng_with_mixed_link_types() {
    let Some(corpus) = corpus() else { return };
    let f = corpus.join("pcapng-multi-interface-sll-ether-truncated.pcapng");
    let o = run(&["--digest", "-w2"], &f);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).lines().count() > 10);
}

/// The corpus's request with two bytes of urgent data ("XY", the
/// pointer after the Y): the server's reply names the path it read. With
/// `--urgent oob` the request weft rebuilds has that path, in every mode,
/// and the byte taken out is counted; inline (the default) keeps it, as
/// tshark does.
#[test]
fn urgent_oob_rebuilds_the_request_the_server_read() {
    let Some(corpus) = corpus() else { return };
    let f = corpus.join("tcp-urgent-pointer-2byte-http.pcap");
    // The word after `before`, up to a space or the end.
    let path_in = |bytes: &[u8], before: &str| -> String {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let from = text.find(before).expect(before) + before.len();
        text[from..].split(' ').next().unwrap().to_owned()
    };
    for (urgent, mode) in [("oob", "--inline"), ("oob", "-w2"), ("inline", "--inline")] {
        let dir = tmp(&format!("urgent-{urgent}{mode}"));
        let _ = std::fs::remove_dir_all(&dir);
        let o = bin()
            .args(["--json", mode, "--urgent", urgent, "--write-flows"])
            .arg(&dir)
            .arg(&f)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let request = read("010.010.010.044.57796-010.010.010.055.09090");
        let reply = read("010.010.010.055.09090-010.010.010.044.57796");
        let asked = path_in(&request, "GET ");
        let served = path_in(&reply, "accessed the path: ");
        let taken = v["total"]["reassembly"]["urgent_bytes"].as_u64().unwrap();
        if urgent == "oob" {
            assert_eq!((asked.as_str(), taken), (served.as_str(), 1), "{mode}");
        } else {
            assert_eq!((asked.as_str(), taken), ("/malicXYious", 0));
            assert_eq!(served, "/malicXious");
        }
    }
}

/// The corpus's injections and evasions that send delivered bytes again,
/// changed: with `--retransmit-check`, each segment whose copy differs
/// from what was delivered is one overlap conflict, in every mode (a
/// QUANTUM-INSERT style response raced ahead of the genuine one, as Zeek
/// reports it once; suricata-verify's overlaps with different data; the
/// 5 segments of Zeek's reassembly trace that a first-copy comparison
/// finds, 3 of them against buffered copies, which are found without the
/// check too). Every retransmitted byte is compared, the streams are
/// the same with the check as without, and `--conflicts` lists each
/// conflict.
#[test]
fn retransmissions_that_differ_from_delivered_bytes_are_conflicts() {
    let Some(corpus) = corpus() else { return };
    for (name, with, without) in [
        ("tcp-quantum-insert-overlap-http", 1, 0),
        ("tcp-overlap-exact-diff-data-vlan", 1, 0),
        ("tcp-overlap-partial-diff-data-vlan", 1, 0),
        ("smtp-long-data-overlapping-retrans", 4, 0),
        ("tcp-rexmit-inconsistency-evasion-http", 5, 3),
    ] {
        let f = corpus.join(format!("{name}.pcap"));
        let plain = run(&["--digest", "--json"], &f);
        let (digest, v) = digest_and_json(&plain);
        let total = &v["total"]["reassembly"];
        assert_eq!(total["overlap_conflicts"], without, "{name}");
        assert_eq!(total["rechecked_bytes"], 0, "{name}");
        let modes: [&[&str]; 5] = [
            &["--inline"],
            &["-w2"],
            &["-w3"],
            &["-w2", "--dispatch", "ring"],
            &["-w2", "--dispatch", "hybrid"],
        ];
        for mode in modes {
            let args = [
                "--digest",
                "--conflicts",
                "--json",
                "--retransmit-check",
                "64KiB",
            ];
            let o = run(&[&args[..], mode].concat(), &f);
            let (d, v) = digest_and_json(&o);
            let (listed, d): (Vec<&str>, Vec<&str>) =
                d.lines().partition(|l| l.starts_with("conflict "));
            let case = format!("{name} {mode:?}");
            assert_eq!(d.join("\n").trim(), digest.trim(), "{case}");
            let total = &v["total"]["reassembly"];
            assert_eq!(total["overlap_conflicts"], with, "{case}");
            assert_eq!(listed.len(), with, "{case}: {listed:?}");
            assert_eq!(total["rechecked_bytes"], total["duplicate_bytes"], "{case}");
            assert_eq!(total["unchecked_bytes"], 0, "{case}");
            if name == "tcp-quantum-insert-overlap-http" {
                // The injected response's 43 bytes, kept as the client took them.
                let line = "conflict 96.126.98.124 80 178.200.100.200 39976 0 43 first";
                assert_eq!(listed, [line], "{case}");
                // Alone, the list is all the output.
                let o = run(&["--conflicts", "--retransmit-check", "64KiB"], &f);
                assert_eq!(stdout(&o), format!("{line}\n"), "{case}");
            }
        }
    }
}

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("WEFT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/corpus"
            ))
        });
    if dir.join("MANIFEST.tsv").is_file() {
        return Some(dir);
    }
    assert_ne!(
        std::env::var("WEFT_REQUIRE_CORPUS").as_deref(),
        Ok("1"),
        "corpus not found at {}",
        dir.display()
    );
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: corpus not found at {} (set WEFT_CORPUS)",
        dir.display()
    );
    None
}

#[test]
fn pace_replays_at_capture_speed_and_gives_the_same_digest() {
    // The sample spans a few milliseconds of capture time; 10x faster is quick.
    let o = run(&["--digest", "--pace", "10"], &sample());
    assert!(o.status.success());
    assert_eq!(stdout(&o), sample_truth());
    // A trace spanning about 2 s of capture time, at twice its pace, takes
    // about a second (and far less without pacing).
    let gen = weft_gen::GenConfig {
        seed: 8,
        conns: 20,
        concurrent: 2,
        max_bytes: 2_000,
        gap_ns: 20_000_000,
        ..Default::default()
    };
    let trace = tmp("paced.pcap");
    weft_gen::generate(&gen, std::fs::File::create(&trace).unwrap()).unwrap();
    let span = {
        let mut cap = weft_capture::Capture::open(&trace).unwrap();
        let (mut first, mut last) = (None, 0);
        while let Some(f) = cap.next_frame() {
            let t = f.unwrap().ts_nanos;
            first.get_or_insert(t);
            last = t;
        }
        last - first.unwrap()
    };
    assert!(span > 500_000_000, "the trace spans {span} ns");
    let start = std::time::Instant::now();
    let o = run(&["--digest", "--pace", "2"], &trace);
    assert!(o.status.success());
    let took = start.elapsed();
    assert!(
        took.as_nanos() as u64 >= span / 2 * 9 / 10,
        "{took:?} for {span} ns at 2x"
    );
}

#[test]
fn interrupt_stops_reading_and_still_reports() {
    let cfg = weft_gen::GenConfig {
        seed: 12,
        conns: 20_000,
        concurrent: 2_000,
        max_bytes: 20_000,
        ..Default::default()
    };
    let path = tmp("interrupt.pcap");
    weft_gen::generate(&cfg, std::fs::File::create(&path).unwrap()).unwrap();
    // Paced a thousand times slower than captured, the run cannot end
    // before the signal, sent once its handler is installed.
    let child = bin()
        .args(["--stats", "--json", "-w1", "--pace", "0.001"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    catches_sigint(child.id());
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    // A run that ignored the signal would go on for hours: give it 60 s.
    let o = output_within(child, 60);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(130),
        "interrupted (or still running 60 s after Ctrl-C?): {err}"
    );
    assert!(
        err.contains("delivered"),
        "stats printed after Ctrl-C: {err}"
    );
    assert!(
        err.contains("interrupted") && err.contains("statistics cover what was read"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let read = v["dispatch"]["frames"].as_u64().unwrap();
    let total = {
        let mut cap = weft_capture::Capture::open(&path).unwrap();
        let mut n = 0u64;
        while let Some(f) = cap.next_frame() {
            f.unwrap();
            n += 1;
        }
        n
    };
    assert!(read < total, "stopped early: {read} of {total} frames");
    // At the pace's 5 ms a frame, the signal after ~0.5 s stops it within
    // a few hundred frames: the one it waited for is not sent unpaced,
    // nor are those up to the next look at the flag (1,024 frames).
    assert!(
        read < 1000,
        "{read} frames: sent on unpaced after the stop?"
    );
}

#[test]
fn read_only_counts_every_frame_and_readahead_changes_no_digest() {
    let bytes = std::fs::read(sample()).unwrap();
    let o = run(&["--read-only"], &sample());
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("read-only: 665 frames"), "{err}");
    assert!(stdout(&o).is_empty());
    // The captured bytes: the file minus its header and record headers.
    let captured = bytes.len() - 24 - 16 * 665;
    assert!(err.contains(&format!(", {captured} bytes,")), "{err}");
    // A damaged file: counts so far, then the error, exit 1.
    let cut = tmp("cut-read-only.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    let o = run(&["--read-only"], &cut);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("truncated"));
    // Usage: the floor does not produce digests.
    assert_eq!(
        run(&["--read-only", "--digest"], &sample()).status.code(),
        Some(2)
    );
    for w in ["--inline", "-w2"] {
        let o = run(&["--digest", "--no-readahead", w], &sample());
        assert_eq!(stdout(&o), sample_truth(), "{w} without read-ahead");
    }
}

/// Runs `weft-replay ARGS -` with `bytes` written to its standard input in
/// `chunk`-byte writes, `pause` apart.
fn piped(args: &[&str], bytes: Vec<u8>, chunk: usize, pause: std::time::Duration) -> Output {
    let mut child = bin()
        .args(args)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for c in bytes.chunks(chunk) {
            stdin.write_all(c)?;
            stdin.flush()?;
            std::thread::sleep(pause);
        }
        Ok::<(), std::io::Error>(())
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    o
}

/// A stream reaches the workers as shared read buffers (frames are not
/// copied one by one), and a trickling one, whose reads bring a frame or
/// less, falls back to copies: both give the truth.
#[test]
fn standard_input_is_shared_by_buffer_and_trickles_are_copied() {
    let bytes = std::fs::read(sample()).unwrap();
    let copied = |o: &Output| {
        let text = stdout(o);
        let json = text.lines().last().unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        (
            v["dispatch"]["copied"].as_u64().unwrap(),
            v["dispatch"]["frames"].as_u64().unwrap(),
        )
    };
    let digest_of = |o: &Output| {
        stdout(o)
            .lines()
            .filter(|l| !l.starts_with('{'))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    let fast = piped(
        &["--digest", "--json", "-w2"],
        bytes.clone(),
        1 << 20,
        Default::default(),
    );
    assert!(
        fast.status.success(),
        "{}",
        String::from_utf8_lossy(&fast.stderr)
    );
    assert_eq!(digest_of(&fast), sample_truth());
    let (n, frames) = copied(&fast);
    assert_eq!(frames, 665);
    assert!(n < frames / 4, "{n} of {frames} frames copied");
    let slow = piped(
        &["--digest", "--json", "-w2"],
        bytes,
        300,
        std::time::Duration::from_micros(200),
    );
    assert!(slow.status.success());
    assert_eq!(digest_of(&slow), sample_truth());
    let (n, frames) = copied(&slow);
    assert_eq!(frames, 665);
    assert!(
        n > frames / 2,
        "a trickle is copied frame by frame: {n} of {frames}"
    );
}

/// A pcap (microseconds, Ethernet) of `frames`, one a second.
fn pcap_of(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend(0xa1b2_c3d4u32.to_le_bytes());
    header.extend(2u16.to_le_bytes());
    header.extend(4u16.to_le_bytes());
    header.extend([0u8; 8]);
    header.extend(65_535u32.to_le_bytes());
    header.extend(1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        header.extend((1_700_000_000 + i as u32).to_le_bytes());
        header.extend(0u32.to_le_bytes());
        header.extend((f.len() as u32).to_le_bytes());
        header.extend((f.len() as u32).to_le_bytes());
        header.extend(f);
    }
    header
}

/// TCP flags of the hand-made frames below.
const S: u8 = 0x02;
const A: u8 = 0x10;
const F: u8 = 0x01;

/// The three-way handshake of [`ts_frame`]'s connection: client ISN 999,
/// server ISN 4,999, timestamps 100 and 7 on.
fn handshake() -> [Vec<u8>; 3] {
    [
        ts_frame(true, S, 999, 0, 100, b""),
        ts_frame(false, S | A, 4_999, 1_000, 7, b""),
        ts_frame(true, A, 1_000, 5_000, 101, b""),
    ]
}

/// An Ethernet header and an IPv4 header (no options, DF, TTL 64, no
/// checksum: nothing here verifies it) from `src` to `dst` for a `len`-byte
/// payload of protocol `proto`.
fn eth_ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], len: usize) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = (20 + len) as u16;
    f.extend([0x45, 0]);
    f.extend(total.to_be_bytes());
    f.extend([0, 0, 0x40, 0, 64, proto, 0, 0]);
    f.extend(src);
    f.extend(dst);
    f
}

/// An Ethernet/IPv4/TCP frame between 10.0.0.1:40000 (the client) and
/// 10.0.0.2:80, with the timestamp option `tsval`.
fn ts_frame(c2s: bool, flags: u8, seq: u32, ack: u32, tsval: u32, payload: &[u8]) -> Vec<u8> {
    let (client, server) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let (src, dst, sport, dport) = if c2s {
        (client, server, 40_000u16, 80u16)
    } else {
        (server, client, 80, 40_000)
    };
    let mut f = eth_ipv4(6, src, dst, 32 + payload.len());
    f.extend(sport.to_be_bytes());
    f.extend(dport.to_be_bytes());
    f.extend(seq.to_be_bytes());
    f.extend(ack.to_be_bytes());
    f.extend([8 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend([1, 1, 8, 10]);
    f.extend(tsval.to_be_bytes());
    f.extend(0u32.to_be_bytes());
    f.extend(payload);
    f
}

/// A config file `name` in the test directory holding `text`; its path.
fn config_file(name: &str, text: &str) -> String {
    let path = tmp(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The end of [`ts_frame`]'s connection once the client sent up to
/// `fin` (its FIN's sequence number): the server's ACK, both FINs, the
/// last ACK.
fn teardown(fin: u32) -> [Vec<u8>; 4] {
    [
        ts_frame(false, A, 5_000, fin, 8, b""),
        ts_frame(true, F | A, fin, 5_000, 104, b""),
        ts_frame(false, F | A, 5_000, fin + 1, 9, b""),
        ts_frame(true, A, fin + 1, 5_001, 105, b""),
    ]
}

/// Replays `path` with each case's flags (then `--json`), and checks the
/// client's digest is that of the case's 9 bytes, and how many bytes the
/// streams' checks refused.
fn check_refusals(path: &Path, cases: &[(&[&str], &[u8], u64)]) {
    let digest_of =
        |text: &[u8]| format!("10.0.0.1 40000 10.0.0.2 80 9 0 {:x}", Sha256::digest(text));
    for &(args, text, rejected) in cases {
        // The flags last: `--paws` right before the capture's path.
        let o = run(&[&["--json"][..], args].concat(), path);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (digest, v) = digest_and_json(&o);
        assert_eq!(digest.trim(), digest_of(text), "{args:?}");
        let total = &v["total"]["reassembly"];
        assert_eq!(total["dropped"]["rejected"], rejected, "{args:?}");
    }
}

/// `--paws` (or `paws = true` under `[reassembly]`): data forged with a
/// stale timestamp, ahead of the genuine segment at the same place, is
/// refused and counted, so the genuine bytes are what the digest hashes;
/// without it the first copy wins.
#[test]
fn paws_refuses_data_with_a_stale_timestamp() {
    let [syn, syn_ack, ack] = handshake();
    let frames = [
        syn,
        syn_ack,
        ack,
        ts_frame(true, A, 1_000, 5_000, 102, b"GET "),
        ts_frame(true, A, 1_004, 5_000, 50, b"/evil"),
        ts_frame(true, A, 1_004, 5_000, 103, b"/good"),
    ]
    .into_iter()
    .chain(teardown(1_009))
    .collect::<Vec<_>>();
    let path = tmp("paws.pcap");
    std::fs::write(&path, pcap_of(&frames)).unwrap();
    let config = config_file("paws.toml", "[reassembly]\npaws = true\n");
    check_refusals(
        &path,
        &[
            (&["--digest", "--inline"][..], &b"GET /evil"[..], 0),
            (&["--digest", "--inline", "--paws"][..], b"GET /good", 5),
            (&["--digest", "-w2", "--paws"][..], b"GET /good", 5),
            (
                &["--digest", "-w2", "--dispatch=ring", "--paws"][..],
                b"GET /good",
                5,
            ),
            (
                &["--digest", "--inline", "--config", &config][..],
                b"GET /good",
                5,
            ),
            (
                &["--digest", "--inline", "--config", &config, "--paws=false"][..],
                b"GET /evil",
                0,
            ),
        ],
    );
}

/// A frame of [`ts_frame`]'s connection without options, advertising
/// `window` (unscaled: no SYN here announces a shift).
fn win_frame(c2s: bool, flags: u8, seq: u32, ack: u32, window: u16, payload: &[u8]) -> Vec<u8> {
    let (client, server) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let (src, dst, sport, dport) = if c2s {
        (client, server, 40_000u16, 80u16)
    } else {
        (server, client, 80, 40_000)
    };
    let mut f = eth_ipv4(6, src, dst, 20 + payload.len());
    f.extend(sport.to_be_bytes());
    f.extend(dport.to_be_bytes());
    f.extend(seq.to_be_bytes());
    f.extend(ack.to_be_bytes());
    f.extend([5 << 4, flags]);
    f.extend(window.to_be_bytes());
    f.extend([0, 0, 0, 0]);
    f.extend(payload);
    f
}

/// `--window-check` (or `window_check = true` under `[reassembly]`): the
/// server's SYN-ACK opens a window of 4 bytes; data sent at its edge,
/// which the server drops, does not take the place of the bytes sent
/// again once the window opens, in every mode.
#[test]
fn the_window_check_refuses_data_past_the_receivers_window() {
    let frames = [
        win_frame(true, S, 999, 0, 65_535, b""),
        win_frame(false, S | A, 4_999, 1_000, 4, b""),
        win_frame(true, A, 1_000, 5_000, 65_535, b""),
        win_frame(true, A, 1_000, 5_000, 65_535, b"GET "),
        win_frame(true, A, 1_004, 5_000, 65_535, b"/evil"),
        win_frame(false, A, 5_000, 1_004, 100, b""),
        win_frame(true, A, 1_004, 5_000, 65_535, b"/good"),
    ]
    .into_iter()
    .chain(teardown(1_009))
    .collect::<Vec<_>>();
    let path = tmp("window.pcap");
    std::fs::write(&path, pcap_of(&frames)).unwrap();
    let config = config_file("window.toml", "[reassembly]\nwindow_check = true\n");
    check_refusals(
        &path,
        &[
            (&["--digest", "--inline"][..], &b"GET /evil"[..], 0),
            (
                &["--digest", "--inline", "--window-check"][..],
                b"GET /good",
                5,
            ),
            (&["--digest", "-w2", "--window-check"][..], b"GET /good", 5),
            (
                &["--digest", "--inline", "--paws", "--window-check"][..],
                b"GET /good",
                5,
            ),
            (
                &["--digest", "--inline", "--config", &config][..],
                b"GET /good",
                5,
            ),
            (
                &[
                    "--digest",
                    "--inline",
                    "--config",
                    &config,
                    "--window-check=false",
                ][..],
                b"GET /evil",
                0,
            ),
        ],
    );
}

/// `--defrag-policy` (or `policy` under `[defrag]`): a TCP segment comes
/// in IPv4 fragments, two of which carry different bytes for the same
/// place, the forged one first; which copy the digest hashes is the one
/// each policy's hosts keep, in every mode (the dispatcher defragments
/// for ring workers, each pipeline for inline and fanout ones), and
/// `discard` gives the datagram up.
#[test]
fn the_defrag_policy_decides_which_overlapping_fragment_is_delivered() {
    let [syn, syn_ack, ack] = handshake();
    let whole = ts_frame(true, A, 1_000, 5_000, 102, b"GET /ab/good.htm HTTP");
    let seg = &whole[34..];
    // A fragment of the segment (IP ID 7): `data` at byte `off`.
    let frag = |off: usize, more: bool, data: &[u8]| {
        let mut f = eth_ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], data.len());
        f[18..20].copy_from_slice(&7u16.to_be_bytes());
        let word = (off / 8) as u16 | if more { 0x2000 } else { 0 };
        f[20..22].copy_from_slice(&word.to_be_bytes());
        f.extend(data);
        f
    };
    let (forged, genuine) = (b"evil.htm", &seg[40..48]);
    let frames = [
        syn,
        syn_ack,
        ack,
        frag(40, true, forged),
        frag(40, true, genuine),
        frag(48, false, &seg[48..]),
        frag(0, true, &seg[..40]),
    ]
    .into_iter()
    .chain(teardown(1_021))
    .collect::<Vec<_>>();
    let path = tmp("defrag_policy.pcap");
    std::fs::write(&path, pcap_of(&frames)).unwrap();
    let config = config_file("defrag_policy.toml", "[defrag]\npolicy = \"linux\"\n");
    // Per host: the server's network rebuilds as Linux, the rest first-wins.
    let hosts = |net: &str, name: &str| {
        config_file(
            name,
            &format!("[[host]]\nnet = \"{net}\"\ndefrag_policy = \"linux\"\n"),
        )
    };
    let (server, other) = (
        hosts("10.0.0.2/32", "defrag_hosts_server.toml"),
        hosts("10.9.0.0/16", "defrag_hosts_other.toml"),
    );
    let line = |text: &[u8]| {
        format!(
            "10.0.0.1 40000 10.0.0.2 80 {} 0 {:x}",
            text.len(),
            Sha256::digest(text)
        )
    };
    let (evil, good) = (
        line(b"GET /ab/evil.htm HTTP"),
        line(b"GET /ab/good.htm HTTP"),
    );
    let cases = [
        ("first", &evil),
        ("last", &good),
        ("bsd", &evil),
        ("linux", &good),
        ("windows", &evil),
        ("solaris", &evil),
    ];
    for mode in [&["--inline"][..], &["-w2"], &["-w2", "--dispatch=ring"]] {
        for (policy, want) in cases {
            let o = run(
                &[mode, &["--digest", "--defrag-policy", policy]].concat(),
                &path,
            );
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert_eq!(stdout(&o).trim(), want.as_str(), "{policy} {mode:?}");
        }
        let o = run(&[mode, &["--digest", "--config", &config]].concat(), &path);
        assert_eq!(stdout(&o).trim(), good.as_str(), "config file, {mode:?}");
        for (file, want) in [(&server, &good), (&other, &evil)] {
            let o = run(&[mode, &["--digest", "--config", file]].concat(), &path);
            assert_eq!(stdout(&o).trim(), want.as_str(), "{file}, {mode:?}");
        }
        // Discard, as current Linux: the second copy lies inside the run
        // the first began, a duplicate dropped alone, so the first copy's
        // bytes are the datagram's; a copy reaching past it would have
        // discarded the datagram.
        let o = run(
            &[mode, &["--digest", "--json", "--defrag-policy", "discard"]].concat(),
            &path,
        );
        assert!(o.status.success());
        let (digest, v) = digest_and_json(&o);
        assert_eq!(digest.trim(), evil.as_str(), "discard, {mode:?}");
        let count = |k: &str| counted(&v, Some("defrag"), k);
        assert_eq!(
            (count("abandoned_overlap"), count("dropped_overlap")),
            (0, 1),
            "discard, {mode:?}: {v}"
        );
    }
    let o = run(&["--defrag-policy", "vista"], &path);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown policy is a usage error"
    );
}

/// A frame recorded whole (as long on the wire as in the capture) whose IP
/// length promises more than it holds is counted; with
/// `--drop-short-on-wire` it is dropped as a host drops a packet that
/// short (else a forged segment shows weft bytes the host never took,
/// ahead of the genuine ones). Without the flag, or cut by the snap length
/// (longer on the wire), it is reassembled as far as it goes. In every
/// mode, read mapped or from standard input.
#[test]
fn a_frame_shorter_on_the_wire_than_its_ip_length_is_counted_and_can_be_dropped() {
    let [syn, syn_ack, ack] = handshake();
    // "GET /evil", its IP length 100 bytes beyond the frame.
    let mut lying = ts_frame(true, A, 1_000, 5_000, 102, b"GET /evil");
    let total = u16::from_be_bytes([lying[16], lying[17]]) + 100;
    lying[16..18].copy_from_slice(&total.to_be_bytes());
    // The same inside IP-in-IP, past the dispatcher's header peek.
    let inner = &lying[14..];
    let mut tunnelled = eth_ipv4(4, [10, 9, 9, 1], [10, 9, 9, 2], inner.len());
    tunnelled.extend(inner);
    // A lone last fragment of another datagram, lying as well.
    let mut frag = eth_ipv4(6, [10, 0, 0, 1], [10, 0, 0, 2], 108);
    frag[18..20].copy_from_slice(&9u16.to_be_bytes());
    frag[20..22].copy_from_slice(&4u16.to_be_bytes());
    frag.extend([7; 8]);
    let frames = [
        syn,
        syn_ack,
        ack,
        lying,
        frag,
        tunnelled,
        ts_frame(true, A, 1_000, 5_000, 103, b"GET /good"),
    ]
    .into_iter()
    .chain(teardown(1_009))
    .collect::<Vec<_>>();
    let good = format!(
        "10.0.0.1 40000 10.0.0.2 80 9 0 {:x}",
        Sha256::digest(b"GET /good")
    );
    let mut cut_digest: Option<String> = None;
    for (cut, drop, name) in [
        (100u32, true, "cut"),
        (0, true, "whole"),
        (0, false, "kept"),
    ] {
        // The lying frames' lengths on the wire: their own, or 100 more.
        let mut pcap = pcap_of(&frames);
        let mut at = 24;
        for (i, f) in frames.iter().enumerate() {
            if (3..=5).contains(&i) {
                let wire = f.len() as u32 + cut;
                pcap[at + 12..at + 16].copy_from_slice(&wire.to_le_bytes());
            }
            at += 16 + f.len();
        }
        let path = tmp(&format!("short_on_wire_{name}.pcap"));
        std::fs::write(&path, &pcap).unwrap();
        let flag: &[&str] = if drop { &["--drop-short-on-wire"] } else { &[] };
        let modes: [&[&str]; 4] = [&["--inline"], &["-w2"], &["-w2", "--dispatch=ring"], &["-"]];
        for mode in modes {
            let o = if mode == ["-"] {
                let args = [&["--digest", "--json", "-w2"][..], flag].concat();
                piped(&args, pcap.clone(), 1 << 16, Default::default())
            } else {
                run(&[mode, &["--digest", "--json"], flag].concat(), &path)
            };
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let (digest, v) = digest_and_json(&o);
            let short = counted(&v, None, "short_on_wire");
            let want_short = if cut == 0 { 3 } else { 0 };
            assert_eq!(short, want_short, "{name} {mode:?}: {v}");
            if cut == 0 && drop {
                assert_eq!(digest.trim(), good, "{name} {mode:?}");
            } else {
                // As cut: the forged bytes count, and the tunnelled ones.
                assert!(!digest.contains(&good), "{name} {mode:?}");
                assert_eq!(digest.lines().count(), 2, "{name} {mode:?}");
                let want = cut_digest.get_or_insert_with(|| digest.to_owned());
                assert_eq!(digest, want.as_str(), "{name} {mode:?}");
            }
        }
    }
}

/// Why dropping frames short of their IP length is not the default: a
/// corpus capture records 5 frames 8 or 20 bytes short of their IP length
/// as whole, and the receiver acknowledges past their data. They are
/// counted either way; dropped, their bytes become gaps the receiver
/// acknowledged, which a host that had dropped them would never do.
#[test]
fn a_capture_that_lost_bytes_keeps_its_short_frames_by_default() {
    let Some(dir) = corpus() else {
        return;
    };
    let path = dir.join("tcp-rexmit-inconsistency-evasion-http.pcap");
    let json = |flags: &[&str]| {
        let o = run(&[&["--json", "--inline"][..], flags].concat(), &path);
        assert!(o.status.success());
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["total"].clone()
    };
    let (kept, dropped) = (json(&[]), json(&["--drop-short-on-wire"]));
    for t in [&kept, &dropped] {
        assert_eq!(t["frames"]["short_on_wire"], 5);
    }
    let field = |t: &serde_json::Value, k: &str| t["reassembly"][k].as_u64().unwrap();
    assert!(field(&dropped, "delivered_bytes") < field(&kept, "delivered_bytes"));
    assert!(field(&dropped, "acked_gaps") > field(&kept, "acked_gaps"));
}

/// On the real captures, 53 of which carry TCP timestamps, `--paws`
/// refuses nothing and changes no digest: real retransmissions carry
/// fresh timestamps, and out-of-order segments, one-sided captures and
/// midstream pickups do not set TS.Recent ahead of the data sent before
/// them. `--window-check` refuses nothing either but in one capture,
/// whose server sent 102 segments past the window its client last
/// advertised (its last ACK, 899,889 with a window of 65,535, where the
/// data reaches 1,023,578), bytes the client never acknowledged.
#[test]
fn paws_and_the_window_check_refuse_nothing_on_the_corpus_but_data_past_a_window() {
    let Some(corpus) = corpus() else { return };
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let f = entry.unwrap().path();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let plain = run(&["--digest", "--inline"], &f);
        let past_window = name == "http-206-retrans-ooo.pcap";
        // (PAWS refuses a few duplicate pure ACKs, whose timestamps lag:
        // no bytes.) The window check judges only segments with data.
        for (check, bytes) in [
            ("--paws", 0),
            ("--window-check", if past_window { 141_624 } else { 0 }),
        ] {
            let checked_run = run(&["--digest", "--inline", check, "--json"], &f);
            assert_eq!(plain.status.code(), checked_run.status.code(), "{name}");
            let (digest, v) = digest_and_json(&checked_run);
            if bytes == 0 {
                assert_eq!(digest, stdout(&plain), "{name} {check}");
            }
            let total = &v["total"]["reassembly"];
            assert_eq!(total["dropped"]["rejected"], bytes, "{name} {check}");
            if check == "--window-check" {
                let segments = if past_window { 102 } else { 0 };
                assert_eq!(total["segments_rejected"], segments, "{name}");
            }
        }
        checked += 1;
    }
    assert!(checked >= 80, "{checked} captures");
}

/// `inner` (an Ethernet frame) in VXLAN network `vni`, over IPv4/UDP.
fn in_vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut f = eth_ipv4(17, [192, 168, 0, 1], [192, 168, 0, 2], 8 + 8 + inner.len());
    f.extend(49_152u16.to_be_bytes());
    f.extend(4789u16.to_be_bytes());
    f.extend(((8 + 8 + inner.len()) as u16).to_be_bytes());
    f.extend([0, 0, 0x08, 0, 0, 0]);
    f.extend(&vni.to_be_bytes()[1..]);
    f.push(0);
    f.extend(inner);
    f
}

/// Two connections with the same inner 4-tuple, sequence numbers and
/// timing in two VXLAN networks (as two tenants' private address ranges,
/// or two mirror sessions, give) are two connections in every mode: each
/// stream gets its own bytes, and each its own flow files.
#[test]
fn equal_tuples_in_two_vxlan_networks_are_two_connections() {
    let data = |vni: u32| -> Vec<u8> { format!("network {vni}: ").repeat(40).into_bytes() };
    let conn = |vni: u32| {
        let d = data(vni);
        let n = d.len() as u32;
        let mut frames = handshake().to_vec();
        frames.extend([
            ts_frame(true, A, 1_000, 5_000, 102, &d[..300]),
            ts_frame(true, A, 1_300, 5_000, 103, &d[300..]),
            ts_frame(false, A, 5_000, 1_000 + n, 8, b""),
            ts_frame(true, F | A, 1_000 + n, 5_000, 104, b""),
            ts_frame(false, F | A, 5_000, 1_001 + n, 9, b""),
            ts_frame(true, A, 1_001 + n, 5_001, 105, b""),
        ]);
        frames
    };
    // Interleaved frame by frame: each step of one, then of the other.
    let (one, two) = (conn(1), conn(2));
    let frames: Vec<Vec<u8>> = one
        .iter()
        .zip(&two)
        .flat_map(|(a, b)| [in_vxlan(1, a), in_vxlan(2, b)])
        .collect();
    let path = tmp("two-networks.pcap");
    std::fs::write(&path, pcap_of(&frames)).unwrap();
    let line = |vni: u32| {
        let d = data(vni);
        format!(
            "10.0.0.1 40000 10.0.0.2 80 {} 0 {:x}",
            d.len(),
            Sha256::digest(&d)
        )
    };
    let mut want = vec![line(1), line(2)];
    want.sort();
    for args in [
        &["--inline"][..],
        &["-w1"],
        &["-w2"],
        &["-w3"],
        &["-w1", "--dispatch=ring"],
        &["-w2", "--dispatch=ring"],
        &["-w3", "--dispatch=ring"],
        &["-w2", "--dispatch=hybrid"],
    ] {
        let o = run(&[args, &["--digest"]].concat(), &path);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let got: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
        assert_eq!(got, want, "{args:?}");
    }
    let dir = tmp("two-networks-flows");
    let _ = std::fs::remove_dir_all(&dir);
    let flows = dir.to_str().unwrap();
    let o = run(&["-w2", "--write-flows", flows], &path);
    assert!(o.status.success());
    let name = "010.000.000.001.40000-010.000.000.002.00080";
    for vni in [1, 2] {
        // Named with the network, then the tunnel (`-t` and its ends).
        let prefix = format!("{name}-vni{vni}-t");
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(&prefix)
            })
            .unwrap_or_else(|| panic!("no file named {prefix}…"));
        assert_eq!(
            std::fs::read(&file).unwrap(),
            data(vni),
            "{}",
            file.display()
        );
    }
}

/// A trace whose segments carry TCP timestamps in the order they were
/// sent, with reordering, network duplicates, capture loss, sequence wrap,
/// data on SYNs and FINs, tunnels, VLANs and IPv6: with `--paws` every
/// mode still gives the truth (PAWS refuses no byte a receiver took), and
/// it does refuse (duplicates arriving after newer segments), counted.
#[test]
fn paws_gives_the_truth_of_a_timestamped_impaired_trace() {
    let cfg = weft_gen::GenConfig {
        seed: 17,
        conns: 400,
        concurrent: 80,
        max_bytes: 30_000,
        reorder: 0.05,
        duplicate: 0.03,
        loss: 0.02,
        fin_data: 0.3,
        syn_data: 0.2,
        timestamps: true,
        ipv6_fraction: 0.3,
        vlan_fraction: 0.2,
        tunnel_fraction: 0.2,
        wrap_fraction: 0.3,
        ..weft_gen::GenConfig::default()
    };
    let (path, truth) = generated("timestamped.pcap", &cfg);
    for args in [&["--inline"][..], &["-w2"], &["-w3", "--dispatch=ring"]] {
        for paws in [false, true] {
            let flag = if paws { "--paws" } else { "--paws=false" };
            let o = run(&[args, &["--digest", flag]].concat(), &path);
            assert!(o.status.success(), "{args:?} {flag}");
            assert_eq!(stdout(&o), truth, "{args:?} {flag}");
            let j = run(&[args, &["--json", flag]].concat(), &path);
            let v: serde_json::Value = serde_json::from_str(stdout(&j).trim()).unwrap();
            let rejected = v["total"]["reassembly"]["dropped"]["rejected"]
                .as_u64()
                .unwrap();
            assert_eq!(
                rejected > 0,
                paws,
                "{args:?} {flag}: {rejected} bytes rejected"
            );
            // Counted as segments too (pure ACKs among them carry no bytes).
            let segments = v["total"]["reassembly"]["segments_rejected"]
                .as_u64()
                .unwrap();
            assert_eq!(segments > 0, paws, "{args:?} {flag}");
            assert!(
                segments * 1448 >= rejected,
                "{segments} segments, {rejected} bytes"
            );
        }
    }
}

/// A trace whose VXLAN and Geneve connections come from four networks and
/// share a small pool of 4-tuples, so the same tuple is often open in two
/// networks at once, with reordering, duplicates and loss: every mode
/// gives the truth, and leaving the network out of the key (`key_vni =
/// false`) does not (the connections merge).
#[test]
fn equal_tuples_in_many_networks_at_once_give_the_truth() {
    let cfg = weft_gen::GenConfig {
        seed: 21,
        conns: 300,
        concurrent: 40,
        tuple_pool: 8,
        tunnel_fraction: 1.0,
        networks: 4,
        max_bytes: 8_000,
        reorder: 0.05,
        duplicate: 0.02,
        loss: 0.02,
        ..weft_gen::GenConfig::default()
    };
    let (path, truth) = generated("networks.pcap", &cfg);
    for args in [
        &["--inline"][..],
        &["-w2"],
        &["-w3"],
        &["-w2", "--dispatch=ring"],
        &["-w3", "--dispatch=ring"],
        &["-w3", "--dispatch=hybrid"],
    ] {
        let o = run(&[args, &["--digest"]].concat(), &path);
        assert!(o.status.success(), "{args:?}");
        assert_eq!(stdout(&o), truth, "{args:?}");
    }
    let config = config_file("unkeyed.toml", "key_vni = false\n");
    let o = run(&["--digest", "--config", &config], &path);
    assert!(o.status.success());
    assert_ne!(stdout(&o), truth, "merged across networks");
}

/// A source-routed segment (IPv4 strict source route) carrying forged
/// bytes ahead of the genuine ones is refused as its host refuses it, in
/// every mode, and counted; with `--accept-source-routed` its bytes are
/// taken, first, as a host that accepts source routes takes them.
#[test]
fn a_source_routed_segment_is_refused_unless_accepted() {
    let [syn, syn_ack, ack] = handshake();
    let mut forged = ts_frame(true, A, 1_000, 5_000, 102, b"GET /evil");
    // A strict source route (its last address the server, the
    // connection's end) and an end of options behind the IPv4 header:
    // header length and IP length to match (checksums are not verified
    // here, and `eth_ipv4` leaves them 0).
    forged.splice(34..34, [0x89, 7, 4, 10, 0, 0, 2, 0]);
    forged[14] = 0x47;
    let total = u16::from_be_bytes([forged[16], forged[17]]) + 8;
    forged[16..18].copy_from_slice(&total.to_be_bytes());
    let frames = [syn, syn_ack, ack, forged]
        .into_iter()
        .chain([ts_frame(true, A, 1_000, 5_000, 103, b"GET /good")])
        .chain(teardown(1_009))
        .collect::<Vec<_>>();
    let path = tmp("source_routed.pcap");
    std::fs::write(&path, pcap_of(&frames)).unwrap();
    let digest = |payload: &[u8]| {
        format!(
            "10.0.0.1 40000 10.0.0.2 80 9 0 {:x}",
            Sha256::digest(payload)
        )
    };
    let modes: [&[&str]; 3] = [&["--inline"], &["-w2"], &["-w2", "--dispatch=ring"]];
    for (flag, want, refused) in [
        (&[][..], digest(b"GET /good"), 1),
        (&["--accept-source-routed"][..], digest(b"GET /evil"), 0),
    ] {
        for mode in modes {
            let o = run(&[mode, &["--digest", "--json"], flag].concat(), &path);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let (got, v) = digest_and_json(&o);
            let n = counted(&v, None, "refused");
            assert_eq!(n, refused, "{flag:?} {mode:?}: {v}");
            assert!(got.lines().any(|l| l == want), "{flag:?} {mode:?}: {got}");
        }
    }
    let o = run(&["--stats", "--inline"], &path);
    let table = String::from_utf8_lossy(&o.stderr);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("  refused as by the host") && l.trim_end().ends_with(" 1")),
        "{table}"
    );
}

/// A segment whose IPv4 total length is 0 is as long as its frame by
/// default (captures of segmentation offload on a sending host); with
/// `--refuse-zero-ip-length` it is refused as a receiving host refuses
/// it, in every mode.
#[test]
fn a_zero_ip_length_is_the_frames_unless_refused() {
    let [syn, syn_ack, ack] = handshake();
    let mut data = ts_frame(true, A, 1_000, 5_000, 102, b"GET /good");
    data[16..18].fill(0);
    let frames = [syn, syn_ack, ack, data]
        .into_iter()
        .chain(teardown(1_009))
        .collect::<Vec<_>>();
    let path = tmp("zero_ip_length.pcap");
    std::fs::write(&path, pcap_of(&frames)).unwrap();
    let good = format!(
        "10.0.0.1 40000 10.0.0.2 80 9 0 {:x}",
        Sha256::digest(b"GET /good")
    );
    let modes: [&[&str]; 3] = [&["--inline"], &["-w2"], &["-w2", "--dispatch=ring"]];
    for (flag, refused) in [(&[][..], 0), (&["--refuse-zero-ip-length"][..], 1)] {
        for mode in modes {
            let o = run(&[mode, &["--digest", "--json"], flag].concat(), &path);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let (digest, v) = digest_and_json(&o);
            let n = counted(&v, None, "refused");
            assert_eq!(n, refused, "{flag:?} {mode:?}: {v}");
            assert_eq!(digest.contains(&good), refused == 0, "{flag:?} {mode:?}");
        }
    }
}

/// `--bpf` with tcpdump's program for `tcp port 80`: in every mode, the
/// digests are the truth's lines of the port-80 connections, and the
/// frames it rejects are counted once (fanout workers each read them
/// all); a program keeping 64 bytes of each frame cuts them, as a snap
/// length does; a program only a live capture can run is a usage error.
#[test]
fn a_bpf_filter_keeps_its_connections_in_every_mode() {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/tcp-port-80.bpf");
    let program = program.to_str().unwrap();
    let want: String = sample_truth()
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f[1] == "80" || f[3] == "80"
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(want.lines().count(), 4);
    for mode in [
        &["--inline"][..],
        &["-w", "2", "--dispatch", "fanout"],
        &["-w", "2", "--dispatch", "ring"],
        &["-w", "3", "--dispatch", "hybrid"],
    ] {
        let o = run(
            &[mode, &["--digest", "--json", "--bpf", program]].concat(),
            &sample(),
        );
        assert!(o.status.success(), "{mode:?}: {o:?}");
        let (digest, v) = digest_and_json(&o);
        assert_eq!(digest, want, "{mode:?}");
        assert_eq!(v["bpf_filtered"], 610, "{mode:?}");
        assert_eq!(v["dispatch"]["frames"], 55, "{mode:?}");
    }
    // A trickle on standard input: frames copied one by one, filtered as
    // well.
    let slow = piped(
        &["--digest", "--json", "-w2", "--bpf", program],
        std::fs::read(sample()).unwrap(),
        300,
        std::time::Duration::from_micros(200),
    );
    assert!(slow.status.success());
    let (digest, v) = digest_and_json(&slow);
    assert_eq!(digest, want);
    assert_eq!(v["bpf_filtered"], 610);
    assert!(
        v["dispatch"]["copied"].as_u64() > Some(27),
        "{}",
        v["dispatch"]
    );
    let cut = tmp("keep-64.bpf");
    std::fs::write(&cut, "1\n6 0 0 64\n").unwrap();
    let o = run(&["--json", "--bpf", cut.to_str().unwrap()], &sample());
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["bpf_filtered"], 0);
    assert!(
        v["total"]["reassembly"]["truncated_bytes"]
            .as_u64()
            .unwrap()
            > 200_000
    );
    let live_only = tmp("inbound.bpf");
    // `tcpdump -i lo -ddd inbound`: the packet type, a kernel extension.
    std::fs::write(
        &live_only,
        "4\n40 0 0 4294963204\n21 0 1 4\n6 0 0 0\n6 0 0 262144\n",
    )
    .unwrap();
    let o = run(&["--bpf", live_only.to_str().unwrap()], &sample());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("kernel extension 4"), "{err}");
    let o = run(&["--bpf", "/nonexistent.bpf"], &sample());
    assert_eq!(o.status.code(), Some(2));
    // From a config file, beside it; the flag wins.
    let dir = tmp("bpf-config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(program, dir.join("port80.bpf")).unwrap();
    let cfg = dir.join("weft.toml");
    std::fs::write(&cfg, "bpf = \"port80.bpf\"\n").unwrap();
    let o = run(&["--digest", "--config", cfg.to_str().unwrap()], &sample());
    assert_eq!(stdout(&o), want);
    let o = run(
        &[
            "--digest",
            "--config",
            cfg.to_str().unwrap(),
            "--bpf",
            cut.to_str().unwrap(),
        ],
        &sample(),
    );
    assert!(o.status.success());
    assert_ne!(stdout(&o), want, "--bpf wins over the file's");
}

/// `--depth 1000`: each half-connection's flow file is the first bytes of
/// the one a full run writes, at most 1,000 of them, in every mode; the
/// rest is counted as stopped, and every connection still closes.
#[test]
fn depth_keeps_the_start_of_every_stream() {
    let flows = |name: &str, extra: &[&str]| {
        let dir = tmp(name);
        let _ = std::fs::remove_dir_all(&dir);
        let o = bin()
            .args(["--json", "--write-flows"])
            .arg(&dir)
            .args(extra)
            .arg(sample())
            .output()
            .unwrap();
        assert!(o.status.success(), "{extra:?}: {o:?}");
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let mut files = std::collections::BTreeMap::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            files.insert(e.file_name(), std::fs::read(e.path()).unwrap());
        }
        (files, v)
    };
    let (full, v) = flows("depth-full", &[]);
    assert_eq!(v["total"]["reassembly"]["dropped"]["stopped"], 0);
    let closes = |v: &serde_json::Value| {
        let r = &v["total"]["reassembly"];
        ["conns_closed_fin", "conns_closed_rst", "conns_closed_idle"].map(|k| r[k].clone())
    };
    let closed = closes(&v);
    for mode in [&["--inline"][..], &["-w", "2"]] {
        let (cut, v) = flows("depth-1000", &[mode, &["--depth", "1000"]].concat());
        assert!(!cut.is_empty());
        let mut shortened = 0;
        for (name, bytes) in &cut {
            let whole = &full[name];
            assert!(bytes.len() <= 1000, "{name:?}: {}", bytes.len());
            assert!(whole.starts_with(bytes), "{name:?}: not the start");
            shortened += usize::from(bytes.len() < whole.len());
        }
        assert!(shortened > 20, "{mode:?}: {shortened} streams shortened");
        let r = &v["total"]["reassembly"];
        assert!(r["dropped"]["stopped"].as_u64() > Some(100_000), "{r}");
        assert_eq!(
            closes(&v),
            closed,
            "{mode:?}: each connection closes as it did"
        );
    }
}

/// The digest's GAPBYTES column sums to the stats' gap bytes, with a
/// depth too: bytes passed over past the depth are not missing (they were
/// counted as gaps, thousands of times the capture's loss).
#[test]
fn digest_gaps_are_the_stats_gaps_under_a_depth() {
    let (path, _) = lossy();
    for extra in [
        &[][..],
        &["--depth", "1000"],
        &["--depth", "1000", "-w", "2"],
    ] {
        let o = bin()
            .args(["--digest", "--json"])
            .args(extra)
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{extra:?}");
        let (digest, v) = digest_and_json(&o);
        let column: u64 = digest
            .lines()
            .map(|l| l.split(' ').nth(5).unwrap().parse::<u64>().unwrap())
            .sum();
        let gaps = v["total"]["reassembly"]["gap_bytes"].as_u64().unwrap();
        assert!(gaps > 0, "{extra:?}: a lossy trace");
        assert_eq!(column, gaps, "{extra:?}");
    }
}

/// A reader blocked on a stream that sends nothing never looks at the
/// stop flag: a second Ctrl-C ends the process at once, status 130.
#[test]
fn a_second_interrupt_ends_a_blocked_reader() {
    let header = std::fs::read(sample()).unwrap()[..24].to_vec();
    let mut child = bin()
        .args(["--stats", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The header, then silence with the pipe held open.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&header).unwrap();
    stdin.flush().unwrap();
    let pid = child.id().to_string();
    catches_sigint(child.id());
    for _ in 0..2 {
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let o = output_within(child, 30);
    drop(stdin);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted twice"), "{err}");
}

/// A standard error that cannot be written (full, or a pipe whose reader
/// left) loses the messages, not the exit status: no panic.
#[test]
fn an_unwritable_standard_error_keeps_the_exit_status() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let o = bin()
        .arg(tmp("no-such-capture.pcap"))
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let o = bin()
        .args(["--stats", "--digest"])
        .arg(sample())
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), sample_truth());
}

/// Waits (up to 10 s) until process `pid` catches SIGINT, i.e. has its
/// handler installed: a signal sent before would end it at once.
fn catches_sigint(pid: u32) {
    let status = format!("/proc/{pid}/status");
    for _ in 0..1000 {
        let caught = std::fs::read_to_string(&status).ok().and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("SigCgt:"))?;
            u64::from_str_radix(line["SigCgt:".len()..].trim(), 16).ok()
        });
        // SIGINT is signal 2: bit 1 of the mask.
        if caught.is_some_and(|m| m & 0b10 != 0) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Waits for `child`'s output, killing it if it has not ended within
/// `secs` (a run that ignored a signal would go on: the test fails on its
/// status instead of hanging).
fn output_within(child: std::process::Child, secs: u64) -> Output {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        if done_rx
            .recv_timeout(std::time::Duration::from_secs(secs))
            .is_err()
        {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    });
    let o = child.wait_with_output().unwrap();
    let _ = done_tx.send(());
    o
}
