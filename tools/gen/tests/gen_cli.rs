//! The command line writes what the library generates.

use std::process::Command;

use weft_gen::{generate, GenConfig, Hostile};

#[test]
fn cli_matches_library() {
    let dir = std::env::temp_dir().join(format!("weft-gen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pcap, first, last) = (dir.join("t.pcap"), dir.join("first"), dir.join("last"));
    let out = Command::new(env!("CARGO_BIN_EXE_weft-gen"))
        .args([
            "--seed",
            "5",
            "--conns",
            "20",
            "--concurrent",
            "4",
            "--max-bytes",
            "5000",
        ])
        .args([
            "--reorder",
            "0.1",
            "--loss",
            "0.05",
            "--hostile",
            "conflict",
            "--nanos",
        ])
        .arg("-o")
        .arg(&pcap)
        .arg("--truth")
        .arg(&first)
        .arg("--truth-last")
        .arg(&last)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = GenConfig {
        seed: 5,
        conns: 20,
        concurrent: 4,
        max_bytes: 5000,
        reorder: 0.1,
        loss: 0.05,
        hostile: Some(Hostile::Conflict),
        nanos: true,
        ..GenConfig::default()
    };
    let mut lib_pcap = Vec::new();
    let truth = generate(&cfg, &mut lib_pcap).unwrap();
    assert_eq!(std::fs::read(&pcap).unwrap(), lib_pcap);
    let mut t = Vec::new();
    truth.write_to(&mut t).unwrap();
    assert_eq!(std::fs::read(&first).unwrap(), t);
    let mut t = Vec::new();
    truth.write_last_to(&mut t).unwrap();
    assert_eq!(std::fs::read(&last).unwrap(), t);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains(&truth.summary().to_string()), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cli_streams_to_stdout_and_rejects_bad_input() {
    let out = Command::new(env!("CARGO_BIN_EXE_weft-gen"))
        .args(["--conns", "3", "--max-bytes", "100"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut lib_pcap = Vec::new();
    let cfg = GenConfig {
        conns: 3,
        max_bytes: 100,
        ..GenConfig::default()
    };
    generate(&cfg, &mut lib_pcap).unwrap();
    assert_eq!(out.stdout, lib_pcap);
    let bad = Command::new(env!("CARGO_BIN_EXE_weft-gen"))
        .args(["--loss", "1.5", "-o", "/dev/null"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let bad = Command::new(env!("CARGO_BIN_EXE_weft-gen"))
        .args(["--hostile", "nope", "-o", "/dev/null"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
