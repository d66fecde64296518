//! The whole `weft-replay` process under an out-of-order flood.

use std::io::Write;
use std::process::{Command, Stdio};

use weft_gen::{GenConfig, Hostile};

/// The whole process, capture on standard input (no memory map, so resident
/// memory is the engine's own): peak stays under the memcap plus a constant.
#[test]
fn process_peak_memory_under_flood_is_the_cap_plus_a_constant() {
    let cfg = GenConfig {
        seed: 3,
        conns: 40,
        concurrent: 40,
        hostile: Some(Hostile::OooFlood),
        hostile_fraction: 0.25,
        flood_segments: 100_000,
        ..GenConfig::default()
    };
    let mut bytes = Vec::new();
    weft_gen::generate(&cfg, &mut bytes).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft-replay"))
        .args(["-q", "--inline", "--json", "--memcap", "16MiB", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The flood must have met the cap, or the bound says nothing.
    let flushes = v["total"]["reassembly"]["memcap_flushes"].as_u64();
    assert!(
        flushes.is_some_and(|n| n > 0),
        "memcap never reached: {flushes:?}"
    );
    // Linux reports the peak (`VmHWM`); elsewhere the report has none.
    let peak = v["peak_rss_bytes"].as_u64();
    if cfg!(target_os = "linux") {
        assert!(peak.is_some(), "no peak in the report: {v}");
    }
    let Some(peak) = peak else {
        eprintln!("SKIPPED the peak bound: no peak RSS on this system");
        return;
    };
    eprintln!(
        "peak RSS under an out-of-order flood with a 16 MiB memcap: {} MiB",
        peak >> 20
    );
    assert!(
        peak < (16 << 20) + (48 << 20),
        "peak RSS {} MiB",
        peak >> 20
    );
}
