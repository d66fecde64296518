//! Multi-worker output is identical, stream by stream, to inline output,
//! and so is every frame's verdict and the reassembly totals, with a
//! dispatcher and rings, with fanout workers, and with a dispatcher that
//! runs a worker itself:
//! on generated traffic with reordering, duplication, overlaps, loss, IPv6,
//! VLANs, the sequence wrap and reused 4-tuples, and on the shared corpus.

mod common;

use std::path::Path;

use common::{generate, replay_file};
use weft_gen::{GenConfig, Hostile};
use weft_replay::app::ReplayOptions;
use weft_replay::config::Dispatch;
use weft_replay::digest::lines;

/// Every way frames reach workers: a dispatcher and rings, fanout workers
/// that each read the whole capture, and a dispatcher that runs worker 0
/// itself and rings the others.
const DISPATCH: [Dispatch; 3] = [Dispatch::Ring, Dispatch::Fanout, Dispatch::Hybrid];

fn digest(path: &Path, workers: usize, ring: usize, d: Dispatch) -> Run {
    let mut o = ReplayOptions::default();
    o.engine.dispatch = d;
    digest_with(path, workers, ring, o)
}

/// What a run delivered, stream by stream, and what it made of the frames.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    digests: Vec<String>,
    verdicts: Verdicts,
}

/// Every frame's verdict as any mode counts it (where a dispatcher counts
/// some and workers the rest, their sum), and the reassembly totals but
/// the peak of pages in use (per worker, so their sum is no one
/// pipeline's peak).
#[derive(Debug, PartialEq, Eq)]
struct Verdicts {
    frames: u64,
    not_tcp: u64,
    undecodable: u64,
    refused: u64,
    fragments: u64,
    defragmented: u64,
    short_on_wire: u64,
    reasm: weft_reasm::Stats,
}

impl Verdicts {
    fn of(s: &weft_engine::EngineStats) -> Verdicts {
        let (f, d) = (s.frames_total(), &s.dispatch);
        let mut reasm = s.reasm_total();
        reasm.pages_peak = 0;
        Verdicts {
            frames: d.frames,
            not_tcp: f.not_tcp + d.not_tcp,
            undecodable: f.undecodable() + d.undecodable,
            refused: f.refused + d.refused,
            fragments: f.fragments + d.fragments,
            defragmented: f.defragmented + d.defragmented,
            short_on_wire: f.short_on_wire + d.short_on_wire,
            reasm,
        }
    }
}

fn digest_with(path: &Path, workers: usize, ring: usize, mut o: ReplayOptions) -> Run {
    o.output.digest = true;
    o.engine.workers = Some(workers);
    o.engine.ring_capacity = ring;
    if workers == 0 {
        o.engine.dispatch = Dispatch::Auto;
    }
    let out = replay_file(path, &o);
    // Only the corpus capture with a damaged tail may end in an error.
    let damaged = path.to_string_lossy().contains("pgsql-5000");
    assert!(
        out.capture_errors.is_empty() || damaged,
        "{:?}",
        out.capture_errors
    );
    Run {
        digests: lines(&out.digests),
        verdicts: Verdicts::of(&out.stats),
    }
}

fn impaired(seed: u64) -> GenConfig {
    GenConfig {
        seed,
        conns: 600,
        concurrent: 150,
        min_bytes: 1,
        max_bytes: 30_000,
        exchanges: 3,
        reorder: 0.05,
        duplicate: 0.02,
        overlap: 0.02,
        loss: 0.03,
        fin_data: 0.3,
        ipv6_fraction: 0.2,
        vlan_fraction: 0.1,
        // VXLAN, Geneve and GTP-U: the dispatcher's full decode.
        tunnel_fraction: 0.2,
        wrap_fraction: 0.2,
        rst_fraction: 0.1,
        tuple_pool: 200,
        ..GenConfig::default()
    }
}

#[test]
fn every_worker_count_matches_inline_and_the_truth() {
    let (path, truth) = generate("equivalence.pcap", &impaired(42));
    let inline = digest(&path, 0, 4096, Dispatch::Auto);
    assert_eq!(
        inline.digests, truth,
        "inline differs from the generator's truth"
    );
    for d in DISPATCH {
        for workers in [1, 2, 3, 4, 8] {
            let got = digest(&path, workers, 4096, d);
            assert_eq!(got, inline, "{workers} workers, {d:?}");
        }
    }
    // The same with connections prefetched ahead however few are live (by
    // default only once their records outgrow a core's cache).
    let mut eager = ReplayOptions::default();
    eager.pipeline.reasm.prefetch_min_bytes = 0;
    for (workers, d) in [
        (0, Dispatch::Auto),
        (1, Dispatch::Ring),
        (3, Dispatch::Fanout),
    ] {
        eager.engine.dispatch = d;
        let got = digest_with(&path, workers, 64, eager.clone());
        assert_eq!(got, inline, "{workers} workers, always prefetching");
    }
    // Read as a stream of 256 KiB buffers, handed to the workers and
    // reused once they are past them, rather than mapped.
    for d in [Dispatch::Ring, Dispatch::Hybrid] {
        let mut read = ReplayOptions {
            no_map: true,
            ..ReplayOptions::default()
        };
        read.engine.dispatch = d;
        for workers in [2, 3] {
            let got = digest_with(&path, workers, 64, read.clone());
            assert_eq!(got, inline, "{workers} workers, read, {d:?}");
        }
    }
    // The same with flows spread by the keyed hash instead of the public one.
    let mut keyed = ReplayOptions::default();
    keyed.engine.dispatch_hash = weft_engine::DispatchHash::Keyed;
    for d in DISPATCH {
        keyed.engine.dispatch = d;
        for workers in [2, 3, 8] {
            let got = digest_with(&path, workers, 4096, keyed.clone());
            assert_eq!(got, inline, "{workers} workers, keyed dispatch, {d:?}");
        }
    }
}

/// Timestamps that go back (a capture merged from several interfaces)
/// with a flush timeout short enough to fire between a flow's segments:
/// every mode still matches inline, because a worker's time reaches the
/// dispatcher's before it takes a frame stamped earlier (inline, the
/// reassembler's time never goes back). Without that, 15 of 18 runs like
/// these differed from inline by a line or two.
#[test]
fn time_going_back_fires_timeouts_alike_in_every_mode() {
    let mut fired = 0;
    for (seed, jitter_ns) in [(11, 500_000), (12, 3_000_000)] {
        let cfg = GenConfig {
            seed,
            conns: 1500,
            concurrent: 300,
            reorder: 0.1,
            reorder_window: 20,
            loss: 0.05,
            gap_ns: 20_000,
            jitter_ns,
            ..GenConfig::default()
        };
        let (path, truth) = generate(&format!("jitter-{seed}.pcap"), &cfg);
        let mut o = ReplayOptions::default();
        o.pipeline.reasm.flush_timeout_ns = Some(1_000_000);
        let inline = digest_with(&path, 0, 4096, o.clone());
        // The timeout fired: holes were skipped that the truth has filled.
        fired += inline.digests.iter().filter(|l| !truth.contains(l)).count();
        for d in DISPATCH {
            for workers in [1, 2, 3] {
                o.engine.dispatch = d;
                let got = digest_with(&path, workers, 4096, o.clone());
                assert_eq!(got, inline, "seed {seed}, {workers} workers, {d:?}");
            }
        }
    }
    assert!(fired > 100, "the flush timeout hardly fired: {fired}");
}

#[test]
fn tiny_rings_and_more_workers_than_cores_lose_nothing() {
    let (path, truth) = generate("tiny-rings.pcap", &impaired(7));
    for d in [Dispatch::Ring, Dispatch::Hybrid] {
        for (workers, ring) in [(5, 2), (8, 4), (3, 8), (16, 16)] {
            assert_eq!(
                digest(&path, workers, ring, d).digests,
                truth,
                "{workers} workers, ring {ring}, {d:?}"
            );
        }
    }
}

/// Urgent pointers on a twentieth of the data segments of impaired
/// traffic: kept inline (the default), the truth still holds; taken out
/// of band, every mode takes the same bytes as inline mode.
#[test]
fn urgent_bytes_leave_alike_in_every_mode() {
    let cfg = GenConfig {
        urgent: 0.05,
        ..impaired(7)
    };
    let (path, truth) = generate("urgent.pcap", &cfg);
    let inline = digest(&path, 0, 4096, Dispatch::Auto);
    assert_eq!(inline.digests, truth, "urgent bytes stay inline by default");
    assert_eq!(inline.verdicts.reasm.urgent_bytes, 0);
    let mut oob = ReplayOptions::default();
    oob.pipeline.reasm.urgent = weft_reasm::UrgentPolicy::OutOfBand;
    let taken = digest_with(&path, 0, 4096, oob.clone());
    let n = taken.verdicts.reasm.urgent_bytes;
    assert!(n > 50, "{n} urgent bytes taken");
    let differ = taken.digests.iter().filter(|l| !truth.contains(l)).count();
    assert!(differ > 10, "{differ} directions lost urgent bytes");
    for d in DISPATCH {
        oob.engine.dispatch = d;
        for workers in [1, 2, 3] {
            let got = digest_with(&path, workers, 64, oob.clone());
            assert_eq!(got, taken, "{workers} workers, {d:?}, out of band");
        }
    }
}

/// The receive-window check refuses nothing of impaired traffic whose
/// senders keep within their windows, capture loss (acknowledgments of
/// data never seen) included: every mode still gives the truth.
#[test]
fn the_window_check_refuses_nothing_senders_keep_within_their_windows() {
    let (path, truth) = generate("windows.pcap", &impaired(43));
    let mut o = ReplayOptions::default();
    o.output.window_check = true;
    for (workers, d) in [
        (0, Dispatch::Auto),
        (2, Dispatch::Fanout),
        (3, Dispatch::Ring),
    ] {
        o.engine.dispatch = d;
        let got = digest_with(&path, workers, 64, o.clone());
        assert_eq!(got.digests, truth, "{workers} workers, {d:?}");
        assert_eq!(got.verdicts.reasm.segments_rejected, 0);
    }
}

#[test]
fn corpus_multi_worker_equals_inline() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let files = common::corpus_captures(&dir);
    assert!(
        files.len() >= 80,
        "corpus looks incomplete: {} captures",
        files.len()
    );
    for f in files {
        let p = dir.join(&f);
        let inline = digest(&p, 0, 4096, Dispatch::Auto);
        for d in DISPATCH {
            for (workers, ring) in [(1, 4096), (2, 64), (3, 64), (4, 16), (8, 8)] {
                assert_eq!(
                    digest(&p, workers, ring, d),
                    inline,
                    "{f} with {workers} workers, {d:?}"
                );
            }
        }
        // Read as a stream (buffers handed over and reused, not a
        // mapping), the dispatcher running worker 0 or not.
        for d in [Dispatch::Ring, Dispatch::Hybrid] {
            let mut o = ReplayOptions {
                no_map: true,
                ..ReplayOptions::default()
            };
            o.engine.dispatch = d;
            assert_eq!(digest_with(&p, 2, 64, o), inline, "{f} read, {d:?}");
        }
    }
}

/// The retransmission check on impaired traffic (duplicates and
/// overlapping retransmissions that carry the same bytes), where a third
/// of the connections also send segments twice with different bytes:
/// the second copy before the hole ahead of the first (`conflict`), or
/// after the first was delivered (`rexmit`, an injection's shape). The
/// streams stay the truth (the first copy wins); same-bytes copies raise
/// nothing (the conflicts of `conflict` are those found without the
/// check); the copies `rexmit` sends after delivery raise conflicts only
/// the check finds; and every mode compares and counts exactly what
/// inline mode does.
#[test]
fn retransmissions_are_checked_alike_in_every_mode() {
    for (hostile, seed) in [(Hostile::Conflict, 11), (Hostile::Rexmit, 12)] {
        let cfg = GenConfig {
            hostile: Some(hostile),
            hostile_fraction: 0.3,
            ..impaired(seed)
        };
        let (path, truth) = generate(&format!("recheck-{hostile}.pcap"), &cfg);
        let plain = digest(&path, 0, 4096, Dispatch::Auto);
        assert_eq!(plain.digests, truth, "{hostile}");
        let mut o = ReplayOptions::default();
        o.pipeline.reasm.retransmit_check = 64 << 10;
        let checked = digest_with(&path, 0, 4096, o.clone());
        assert_eq!(checked.digests, truth, "{hostile}");
        let (with, without) = (&checked.verdicts.reasm, &plain.verdicts.reasm);
        assert!(with.rechecked_bytes > 100_000, "{hostile}: {with:?}");
        assert_eq!(
            with.rechecked_bytes + with.unchecked_bytes,
            with.duplicate_bytes,
            "{hostile}"
        );
        let (c, n) = (with.overlap_conflicts, without.overlap_conflicts);
        match hostile {
            Hostile::Conflict => assert!(c == n && n > 50, "{c} and {n} conflicts"),
            _ => assert!(c > n + 100, "{c} conflicts with the check, {n} without"),
        }
        for d in DISPATCH {
            o.engine.dispatch = d;
            for workers in [1, 2, 3] {
                let got = digest_with(&path, workers, 64, o.clone());
                assert_eq!(got, checked, "{hostile}: {workers} workers, {d:?}");
            }
        }
    }
}

/// A capture split by direction into two files, as a tap that sends each
/// direction to its own port is captured: read merged, in time order,
/// they reassemble to the truth and to what the whole capture gives,
/// frame verdicts included, inline and with workers, named in either
/// order; read one after the other they do not. Fanout workers cannot
/// merge (a usage error).
#[test]
fn captures_of_each_direction_merge_into_the_whole() {
    use std::net::IpAddr;
    use weft_capture::Capture;
    use weft_wire::{decode, DecodeOptions, Decoded, LinkType};
    let (path, truth) = generate("whole.pcap", &impaired(47));
    let bytes = std::fs::read(&path).unwrap();
    let (mut to_server, mut to_client) = (bytes[..24].to_vec(), bytes[..24].to_vec());
    let mut cap = Capture::open(&path).unwrap();
    let opts = DecodeOptions::default();
    while let Some(f) = cap.next_frame() {
        let f = f.unwrap();
        let record = f.offset as usize..f.offset as usize + 16 + f.data.len();
        // The generator's clients are 10/8 and 2001:db8:c0xx::/48.
        let from_client = match decode(LinkType::Ethernet, f.data, &opts) {
            Ok(Decoded::Tcp(p)) => match p.key.src(p.dir).0 {
                IpAddr::V4(a) => a.octets()[0] == 10,
                IpAddr::V6(a) => a.segments()[2] & 0xff00 == 0xc000,
            },
            _ => true,
        };
        let out = if from_client {
            &mut to_server
        } else {
            &mut to_client
        };
        out.extend_from_slice(&bytes[record]);
    }
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (a, b) = (dir.join("to-server.pcap"), dir.join("to-client.pcap"));
    std::fs::write(&a, &to_server).unwrap();
    std::fs::write(&b, &to_client).unwrap();
    assert!(to_server.len() > 100_000 && to_client.len() > 100_000);
    let whole = digest(&path, 0, 4096, Dispatch::Auto);
    assert_eq!(whole.digests, truth);
    let read = |files: &[&std::path::PathBuf], merge: bool, workers: usize, d: Dispatch| {
        let mut o = ReplayOptions {
            merge,
            ..ReplayOptions::default()
        };
        o.output.digest = true;
        o.engine.workers = Some(workers);
        o.engine.dispatch = d;
        o.engine.ring_capacity = 64;
        let files: Vec<_> = files.iter().map(|p| p.to_path_buf()).collect();
        let stop = std::sync::atomic::AtomicBool::new(false);
        weft_replay::app::replay(&files, &o, &stop, &mut |_, _, _| {}).map(|out| {
            assert!(out.capture_errors.is_empty());
            assert!(out.stats.reasm_total().balanced());
            Run {
                digests: lines(&out.digests),
                verdicts: Verdicts::of(&out.stats),
            }
        })
    };
    for (workers, d) in [
        (0, Dispatch::Auto),
        (2, Dispatch::Ring),
        (2, Dispatch::Hybrid),
    ] {
        for files in [[&a, &b], [&b, &a]] {
            let got = read(&files, true, workers, d).unwrap();
            assert_eq!(got, whole, "{workers} workers, {d:?}, {files:?}");
        }
    }
    let apart = read(&[&a, &b], false, 0, Dispatch::Auto).unwrap();
    assert_ne!(apart.digests, truth, "read one after the other");
    assert!(matches!(
        read(&[&a, &b], true, 2, Dispatch::Fanout),
        Err(weft_replay::app::RunError::NoFanout)
    ));
}
