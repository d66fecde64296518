//! Hostile traffic from weft-gen's attack modes: memory stays under the cap,
//! captured bytes are kept, every drop is counted, nothing panics or hangs.

mod common;

use std::path::PathBuf;

use common::{generate, replay_file};
use weft_gen::{GenConfig, Hostile};
use weft_reasm::DropReason;
use weft_replay::app::{Outcome, ReplayOptions};

fn run(path: &std::path::Path, tune: impl FnOnce(&mut ReplayOptions)) -> Outcome {
    let mut o = ReplayOptions::default();
    o.output.digest = true;
    o.engine.workers = Some(0);
    tune(&mut o);
    replay_file(path, &o)
}

fn flood(segments: u64) -> GenConfig {
    GenConfig {
        seed: 3,
        conns: 40,
        concurrent: 40,
        hostile: Some(Hostile::OooFlood),
        hostile_fraction: 0.25,
        flood_segments: segments,
        ..GenConfig::default()
    }
}

/// Every connection the flood does not touch is reassembled as its truth
/// says (the truth has no line for the flooding directions, whose bytes
/// weft delivers past the attacker's holes at the cap).
fn untouched_match_truth(out: &Outcome, truth: &[String]) {
    let ours = weft_replay::digest::lines(&out.digests);
    let missing: Vec<_> = truth.iter().filter(|l| !ours.contains(l)).collect();
    assert!(
        missing.is_empty(),
        "{} truth lines not delivered: {missing:?}",
        missing.len()
    );
    assert!(
        truth.len() > 40,
        "the untouched connections have lines: {}",
        truth.len()
    );
}

#[test]
fn out_of_order_flood_stays_under_the_memcap_and_keeps_every_captured_byte() {
    let (path, truth) = generate("ooo-flood.pcap", &flood(60_000));
    let memcap = 2 << 20;
    let out = run(&path, |o| o.pipeline.reasm.memcap = memcap);
    let s = out.stats.reasm_total();
    assert!(
        s.pages_peak as usize * 2048 <= memcap,
        "peak {} pages",
        s.pages_peak
    );
    assert!(s.memcap_flushes > 0, "the cap was reached");
    assert_eq!(
        s.dropped_total(),
        0,
        "at the cap weft delivers past holes, it drops nothing"
    );
    assert_eq!(
        s.delivered_bytes + s.duplicate_bytes + s.overlap_bytes,
        s.payload_bytes
    );
    assert!(s.gap_bytes > 0, "the attacker's holes are reported as gaps");
    untouched_match_truth(&out, &truth);
}

#[test]
fn per_connection_page_limit_bounds_one_flow() {
    let (path, truth) = generate("ooo-flood-conn.pcap", &flood(30_000));
    let out = run(&path, |o| o.pipeline.reasm.max_pages_per_conn = 64);
    let s = out.stats.reasm_total();
    assert!(s.pages_peak <= 64 * 10 + 64, "peak {}", s.pages_peak);
    // Pages a few bytes full: each flooding connection keeps its holes
    // open, as a receiver does, and gives up its farthest pieces, or the
    // pieces that would land past them all (this flood's, sent in rising
    // order); nothing else is dropped, and no hole is flushed past.
    let (pruned, refused) = (
        s.dropped(DropReason::Pruned),
        s.dropped(DropReason::MemoryLimit),
    );
    assert!(pruned + refused > 0 && s.memcap_flushes == 0, "{s:?}");
    assert_eq!(s.dropped_total(), pruned + refused);
    assert_eq!(s.dropped(DropReason::AfterSkip), 0);
    untouched_match_truth(&out, &truth);
}

#[test]
fn syn_flood_is_bounded_by_the_connection_limit() {
    let cfg = GenConfig {
        seed: 4,
        conns: 50_000,
        hostile: Some(Hostile::SynFlood),
        ..GenConfig::default()
    };
    let (path, _) = generate("syn-flood.pcap", &cfg);
    let out = run(&path, |o| o.pipeline.reasm.max_conns = 5_000);
    let s = out.stats.reasm_total();
    assert!(s.conns_created > 5_000, "{} SYNs", s.conns_created);
    assert!(s.conns_evicted >= s.conns_created - 5_000);
}

#[test]
fn tiny_segments_and_huge_windows_reassemble_to_the_truth() {
    for (name, mode) in [
        ("tiny.pcap", Hostile::TinySegments),
        ("huge-window.pcap", Hostile::HugeWindow),
    ] {
        let cfg = GenConfig {
            seed: 5,
            conns: 30,
            concurrent: 10,
            hostile: Some(mode),
            ..GenConfig::default()
        };
        let (path, truth) = generate(name, &cfg);
        let out = run(&path, |_| {});
        assert_eq!(weft_replay::digest::lines(&out.digests), truth, "{name}");
    }
}

/// Far-ahead segments of huge-window senders keep within the windows
/// the receivers advertised (the first request within the SYN-ACK's
/// unscaled 64 KiB): a receive-window check refuses none of them.
#[test]
fn huge_windows_pass_the_window_check() {
    let cfg = GenConfig {
        seed: 7,
        conns: 30,
        concurrent: 10,
        min_bytes: 60_000,
        max_bytes: 300_000,
        reorder: 0.1,
        loss: 0.05,
        hostile: Some(Hostile::HugeWindow),
        ..GenConfig::default()
    };
    let (path, truth) = generate("huge-window-checked.pcap", &cfg);
    let out = run(&path, |o| o.output.window_check = true);
    assert_eq!(out.stats.reasm_total().segments_rejected, 0);
    assert_eq!(weft_replay::digest::lines(&out.digests), truth);
}

#[test]
fn conflicting_retransmissions_follow_the_policy() {
    let cfg = GenConfig {
        seed: 6,
        conns: 80,
        concurrent: 20,
        hostile: Some(Hostile::Conflict),
        ..GenConfig::default()
    };
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conflict.pcap");
    let truth = weft_gen::generate(&cfg, std::fs::File::create(&path).unwrap()).unwrap();
    let first = run(&path, |o| {
        o.pipeline.reasm.overlap_policy = weft::OverlapPolicy::First
    });
    assert_eq!(weft_replay::digest::lines(&first.digests), truth.lines());
    let last = run(&path, |o| {
        o.pipeline.reasm.overlap_policy = weft::OverlapPolicy::Last
    });
    assert_eq!(
        weft_replay::digest::lines(&last.digests),
        truth.last_lines()
    );
    assert!(first.stats.reasm_total().overlap_conflicts > 0);
}

/// A segment sent again with other bytes once its receiver took it
/// (`--hostile rexmit`), among reordered and lost segments: every policy
/// keeps the first copy, as the receiver did, last-wins too (it takes a
/// copy only of data still held, and the capture's losses before it are
/// skipped as the receiver's acknowledgments show them).
#[test]
fn a_copy_sent_after_delivery_loses_under_every_policy_despite_loss_and_reordering() {
    let cfg = GenConfig {
        seed: 3,
        conns: 200,
        hostile: Some(Hostile::Rexmit),
        reorder: 0.3,
        loss: 0.2,
        duplicate: 0.2,
        ..GenConfig::default()
    };
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rexmit-lossy.pcap");
    let truth = weft_gen::generate(&cfg, std::fs::File::create(&path).unwrap()).unwrap();
    assert_eq!(truth.lines(), truth.last_lines());
    for policy in [weft::OverlapPolicy::First, weft::OverlapPolicy::Last] {
        let out = run(&path, |o| o.pipeline.reasm.overlap_policy = policy);
        assert_eq!(
            weft_replay::digest::lines(&out.digests),
            truth.lines(),
            "{policy:?}"
        );
    }
}
