//! Traces parsed back: determinism, checksums, counts, truth re-derived
//! independently from the packets, and the hostile shapes.

mod common;

use common::{connections, derive_truth, off, read_pcap, P};
use weft_gen::{generate, GenConfig, Hostile, Truth};

fn run(cfg: &GenConfig) -> (Vec<u8>, Truth) {
    let mut pcap = Vec::new();
    let truth = generate(cfg, &mut pcap).expect("generate");
    (pcap, truth)
}

fn mixed() -> GenConfig {
    GenConfig {
        seed: 7,
        conns: 60,
        concurrent: 12,
        min_bytes: 0,
        max_bytes: 12_000,
        exchanges: 3,
        rst_fraction: 0.3,
        ipv6_fraction: 0.4,
        vlan_fraction: 0.4,
        wrap_fraction: 0.5,
        ..GenConfig::default()
    }
}

fn impaired() -> GenConfig {
    GenConfig {
        reorder: 0.2,
        duplicate: 0.1,
        overlap: 0.15,
        ..mixed()
    }
}

/// Parses, checks counts and timestamps against the summary.
fn parse_checked(pcap: &[u8], truth: &Truth) -> Vec<P> {
    let (_, pkts) = read_pcap(pcap);
    let s = truth.summary();
    assert_eq!(s.packets, pkts.len() as u64);
    assert_eq!(
        s.payload_bytes,
        pkts.iter().map(|p| p.payload.len() as u64).sum::<u64>()
    );
    assert_eq!(s.pcap_bytes, pcap.len() as u64);
    assert!(
        pkts.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
        "timestamps go back"
    );
    pkts
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let cfg = impaired();
    let (p1, t1) = run(&cfg);
    let (p2, t2) = run(&cfg);
    assert_eq!(p1, p2);
    assert_eq!(t1.lines(), t2.lines());
    let (p3, t3) = run(&GenConfig { seed: 8, ..cfg });
    assert_ne!(p1, p3);
    assert_ne!(t1.lines(), t3.lines());
}

#[test]
fn checksums_counts_and_variety() {
    let (pcap, truth) = run(&impaired());
    let pkts = parse_checked(&pcap, &truth);
    assert_eq!(truth.summary().connections, 60);
    assert!(pkts.iter().any(|p| p.src.is_ipv6()));
    assert!(pkts.iter().any(|p| p.src.is_ipv4()));
    assert!(pkts.iter().any(|p| p.vlan));
    assert!(pkts.iter().any(|p| p.rst));
    assert!(pkts.iter().any(|p| p.fin));
    // Segments are MSS-sized, but an overlapping retransmission may span
    // two (into the next segment, as one coalesced or TSO packet).
    assert!(pkts.iter().all(|p| p.payload.len() <= 2 * 1448));
    assert!(pkts.iter().any(|p| p.payload.len() > 1448));
    // Some data crosses the sequence wrap.
    assert!(pkts
        .iter()
        .any(|p| p.seq.checked_add(p.payload.len() as u32).is_none()));
    // Connections interleave: a SYN appears after another's data.
    let first_data = pkts.iter().position(|p| !p.payload.is_empty()).unwrap();
    assert!(pkts[first_data..].iter().any(|p| p.syn));
}

#[test]
fn truth_matches_rederivation_lossless() {
    let (pcap, truth) = run(&impaired());
    let pkts = parse_checked(&pcap, &truth);
    assert!(!truth.lines().is_empty());
    assert_eq!(derive_truth(&pkts, false), truth.lines());
    assert!(truth
        .lines()
        .iter()
        .all(|l| l.split(' ').nth(5) == Some("0")));
    assert_eq!(truth.lines(), truth.last_lines());
}

#[test]
fn truth_is_sorted_bytewise_and_formatted() {
    let (_, truth) = run(&impaired());
    let mut sorted = truth.lines().to_vec();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(sorted, truth.lines());
    let mut out = Vec::new();
    truth.write_to(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.lines().count(), truth.lines().len());
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), 7);
        assert_eq!(f[6].len(), 64);
        assert!(f[4].parse::<u64>().unwrap() > 0);
    }
}

/// ACKs never cover bytes the capture has not shown yet (lossless).
#[test]
fn acks_follow_captured_data() {
    let (pcap, truth) = run(&impaired());
    let pkts = parse_checked(&pcap, &truth);
    let conns = connections(&pkts);
    // Replay, tracking per direction the contiguous prefix seen so far.
    let mut seen: std::collections::HashMap<(std::net::IpAddr, u16, u32), Vec<bool>> =
        Default::default();
    let isns: std::collections::HashMap<_, _> = conns
        .iter()
        .flat_map(|c| {
            let (a, ap, b, bp) = c.tuple.unwrap();
            [
                ((a, ap), c.dirs[0].isn.unwrap()),
                ((b, bp), c.dirs[1].isn.unwrap()),
            ]
        })
        .collect();
    let mut checked = 0;
    for p in &pkts {
        if p.syn {
            continue;
        }
        if let Some(&isn) = isns.get(&(p.src, p.sport)) {
            let m = seen.entry((p.src, p.sport, isn)).or_default();
            let o = off(isn, p.seq) as usize;
            if m.len() < o + p.payload.len() {
                m.resize(o + p.payload.len(), false);
            }
            m[o..o + p.payload.len()].iter_mut().for_each(|b| *b = true);
        }
        if p.payload.is_empty() && !p.fin && !p.rst {
            let peer_isn = isns[&(p.dst, p.dport)];
            let acked = off(peer_isn, p.ack) as usize;
            let m = seen
                .get(&(p.dst, p.dport, peer_isn))
                .cloned()
                .unwrap_or_default();
            let prefix = m.iter().take_while(|&&b| b).count();
            let fin_extra = 1; // the ACK of a FIN covers one more
            assert!(
                acked <= prefix + fin_extra,
                "ACK {acked} beyond captured prefix {prefix}"
            );
            checked += 1;
        }
    }
    assert!(checked > 100);
}

/// Data ends past the window its receiver last advertised, or `None`:
/// each sender keeps within the right edge (acknowledgment plus window,
/// scaled unless on a SYN) of the last segment its peer sent.
fn window_overrun(pkts: &[P]) -> Option<String> {
    type End = (std::net::IpAddr, u16);
    let mut shift: std::collections::HashMap<End, u8> = Default::default();
    // The right edge each sender may fill, by the sender's end.
    let mut edge: std::collections::HashMap<(End, End), u32> = Default::default();
    for (i, p) in pkts.iter().enumerate() {
        let (me, peer) = ((p.src, p.sport), (p.dst, p.dport));
        if p.syn {
            shift.insert(me, p.wscale.unwrap_or(0));
            if !p.has_ack {
                // A new connection on the tuple: no edge for either yet.
                edge.remove(&(me, peer));
                edge.remove(&(peer, me));
            }
        }
        let end = p.seq.wrapping_add(p.payload.len() as u32);
        if !p.syn && !p.payload.is_empty() {
            if let Some(&e) = edge.get(&(me, peer)) {
                if (end.wrapping_sub(e) as i32) > 0 {
                    return Some(format!(
                        "packet {i} from {me:?}: ends {} bytes past the window",
                        end.wrapping_sub(e)
                    ));
                }
            }
        }
        if p.has_ack && !p.rst {
            let win = if p.syn {
                u32::from(p.win)
            } else {
                u32::from(p.win) << shift.get(&me).copied().unwrap_or(0)
            };
            let e = p.ack.wrapping_add(win);
            let slot = edge.entry((peer, me)).or_insert(e);
            // The right edge never moves back.
            if (e.wrapping_sub(*slot) as i32) > 0 {
                *slot = e;
            }
        }
    }
    None
}

/// Senders never send past the receiver's window, in any mode: a
/// receiver that checks its window (as weft's `--window-check` does)
/// takes every byte of the truth. The first request of a huge-window
/// connection may only use the SYN-ACK's unscaled 64 KiB.
#[test]
fn senders_keep_within_the_advertised_window() {
    let huge = GenConfig {
        hostile: Some(Hostile::HugeWindow),
        conns: 30,
        min_bytes: 60_000,
        max_bytes: 200_000,
        ..mixed()
    };
    let cases = [
        ("impaired", impaired()),
        ("huge-window", huge.clone()),
        (
            "huge-window, lossy",
            GenConfig {
                loss: 0.1,
                reorder: 0.2,
                ..huge
            },
        ),
        (
            "jumbo segments far reordered",
            GenConfig {
                conns: 6,
                mss: 9000,
                reorder: 0.3,
                reorder_window: 64,
                min_bytes: 300_000,
                max_bytes: 1_000_000,
                ..impaired()
            },
        ),
        (
            "fast open and fins on data",
            GenConfig {
                syn_data: 1.0,
                fin_data: 1.0,
                loss: 0.1,
                max_bytes: 200_000,
                ..impaired()
            },
        ),
    ];
    for (name, cfg) in cases {
        let (pcap, truth) = run(&cfg);
        let pkts = parse_checked(&pcap, &truth);
        assert_eq!(window_overrun(&pkts), None, "{name}");
        if cfg.loss == 0.0 {
            assert_eq!(derive_truth(&pkts, false), truth.lines(), "{name}");
        }
    }
}

#[test]
fn fins_ride_on_the_last_data_and_the_truth_holds() {
    let cfg = GenConfig {
        fin_data: 1.0,
        rst_fraction: 0.0,
        ..impaired()
    };
    let (pcap, truth) = run(&cfg);
    let pkts = parse_checked(&pcap, &truth);
    // Every connection: the closer's FIN on data (sometimes reordered
    // ahead of a hole, or sent twice), the peer's on its own.
    let on_data = pkts.iter().filter(|p| p.fin && !p.payload.is_empty());
    let bare = pkts.iter().filter(|p| p.fin && p.payload.is_empty());
    assert_eq!(bare.count() as u64, cfg.conns);
    assert!(on_data.count() as u64 >= cfg.conns);
    // Each FIN sits right after the last byte of its direction, wherever
    // a copy of it came in the capture.
    for c in connections(&pkts) {
        assert!(c.dirs.iter().all(|d| d.fin.is_some()), "{:?}", c.tuple);
        for d in &c.dirs {
            assert_eq!(Some(d.bytes.len() as u64), d.fin, "{:?}", c.tuple);
        }
    }
    assert_eq!(derive_truth(&pkts, false), truth.lines());
}

#[test]
fn syn_data_is_the_start_of_the_first_request_and_is_acknowledged() {
    let cfg = GenConfig {
        syn_data: 1.0,
        ..impaired()
    };
    let (pcap, truth) = run(&cfg);
    let pkts = parse_checked(&pcap, &truth);
    let syns: Vec<&P> = pkts.iter().filter(|p| p.syn && !p.has_ack).collect();
    assert_eq!(syns.len() as u64, cfg.conns);
    assert!(syns.iter().all(|p| !p.payload.is_empty()));
    // Each SYN-ACK acknowledges the SYN's data as well as the SYN.
    for sa in pkts.iter().filter(|p| p.syn && p.has_ack) {
        let syn = syns
            .iter()
            .find(|s| (s.src, s.sport) == (sa.dst, sa.dport))
            .expect("its SYN");
        let want = syn.seq.wrapping_add(1 + syn.payload.len() as u32);
        assert_eq!(sa.ack, want);
    }
    assert_eq!(derive_truth(&pkts, false), truth.lines());
}

#[test]
fn jitter_sends_timestamps_back_within_its_bound() {
    let cfg = GenConfig {
        jitter_ns: 40_000,
        gap_ns: 10_000,
        ..impaired()
    };
    let (pcap, truth) = run(&cfg);
    let (_, pkts) = read_pcap(&pcap);
    assert_eq!(truth.summary().packets, pkts.len() as u64);
    let back: Vec<u64> = pkts
        .windows(2)
        .filter(|w| w[1].ts_ns < w[0].ts_ns)
        .map(|w| w[0].ts_ns - w[1].ts_ns)
        .collect();
    assert!(
        back.len() > pkts.len() / 10,
        "{} of {}",
        back.len(),
        pkts.len()
    );
    assert!(
        back.iter().all(|&b| b <= 2 * cfg.jitter_ns),
        "{:?}",
        back.iter().max()
    );
    // The packets, and so the truth, are what they are without jitter.
    assert_eq!(derive_truth(&pkts, false), truth.lines());
}

#[test]
fn loss_gaps_are_the_removed_bytes() {
    let cfg = GenConfig {
        loss: 0.1,
        ..impaired()
    };
    let (pcap, truth) = run(&cfg);
    let pkts = parse_checked(&pcap, &truth);
    let lost = truth.summary().lost_bytes;
    assert!(lost > 0);
    let gaps: u64 = truth
        .lines()
        .iter()
        .map(|l| l.split(' ').nth(5).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(gaps, lost);
    // Gaps re-derived: the receiver's ACKs span bytes absent from the capture.
    assert_eq!(derive_truth(&pkts, false), truth.lines());
    // Every gap is whole segments' worth: at most `loss` of the data.
    let data: u64 = truth
        .lines()
        .iter()
        .map(|l| l.split(' ').nth(4).unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(lost < data / 4);
}

#[test]
fn conflict_first_and_last_truths() {
    let cfg = GenConfig {
        hostile: Some(Hostile::Conflict),
        ..impaired()
    };
    let (pcap, truth) = run(&cfg);
    let pkts = parse_checked(&pcap, &truth);
    assert_ne!(truth.lines(), truth.last_lines());
    assert_eq!(derive_truth(&pkts, false), truth.lines());
    assert_eq!(derive_truth(&pkts, true), truth.last_lines());
}

#[test]
fn rexmit_copies_differ_but_both_truths_keep_the_first() {
    let cfg = GenConfig {
        hostile: Some(Hostile::Rexmit),
        ..impaired()
    };
    let (pcap, truth) = run(&cfg);
    let pkts = parse_checked(&pcap, &truth);
    assert_eq!(truth.lines(), truth.last_lines());
    assert_eq!(derive_truth(&pkts, false), truth.lines());
    // A byte map where the last copy wins sees the second copies differ.
    let last = derive_truth(&pkts, true);
    let differ = last.iter().filter(|l| !truth.lines().contains(l)).count();
    assert!(
        differ > truth.lines().len() / 4,
        "{differ} directions differ"
    );
    assert_eq!("rexmit".parse::<Hostile>(), Ok(Hostile::Rexmit));
}

#[test]
fn ooo_flood_hole_never_acked() {
    let cfg = GenConfig {
        hostile: Some(Hostile::OooFlood),
        conns: 3,
        concurrent: 3,
        flood_segments: 5000,
        ..mixed()
    };
    let (pcap, truth) = run(&cfg);
    let pkts = parse_checked(&pcap, &truth);
    assert!(truth.lines().is_empty());
    let conns = connections(&pkts);
    assert_eq!(conns.len(), 3);
    for c in &conns {
        let (a, ap, _, _) = c.tuple.unwrap();
        let isn = c.dirs[0].isn.unwrap();
        let data: Vec<&P> = pkts
            .iter()
            .filter(|p| p.src == a && p.sport == ap && !p.payload.is_empty())
            .collect();
        assert_eq!(data.len(), 5000);
        assert!(data
            .iter()
            .all(|p| off(isn, p.seq) >= 1448 && p.payload.len() <= 8));
        let acks = pkts
            .iter()
            .filter(|p| p.dst == a && p.dport == ap && !p.syn);
        for p in acks {
            assert_eq!(p.ack, isn.wrapping_add(1), "hole acknowledged");
        }
        assert!(c.dirs[1].bytes.is_empty());
    }
}

#[test]
fn syn_flood_is_syns_only() {
    let cfg = GenConfig {
        hostile: Some(Hostile::SynFlood),
        conns: 2000,
        concurrent: 100,
        ..mixed()
    };
    let (pcap, truth) = run(&cfg);
    let pkts = parse_checked(&pcap, &truth);
    assert!(truth.lines().is_empty());
    assert!(pkts.iter().all(|p| p.syn && p.payload.is_empty()));
    assert_eq!(pkts.iter().filter(|p| !p.has_ack).count(), 2000);
    let sources: std::collections::HashSet<_> = pkts.iter().map(|p| p.src).collect();
    assert!(sources.len() > 1000);
}

#[test]
fn tiny_segments_are_one_byte() {
    let cfg = GenConfig {
        hostile: Some(Hostile::TinySegments),
        conns: 10,
        max_bytes: 300,
        ..impaired()
    };
    let (pcap, truth) = run(&cfg);
    let pkts = parse_checked(&pcap, &truth);
    assert!(pkts.iter().all(|p| p.payload.len() <= 1));
    assert_eq!(derive_truth(&pkts, false), truth.lines());
}

#[test]
fn huge_window_scale_and_far_segments() {
    let cfg = GenConfig {
        hostile: Some(Hostile::HugeWindow),
        conns: 10,
        min_bytes: 20_000,
        max_bytes: 60_000,
        ..mixed()
    };
    let (pcap, truth) = run(&cfg);
    let pkts = parse_checked(&pcap, &truth);
    assert!(pkts.iter().filter(|p| p.syn).all(|p| p.wscale == Some(14)));
    assert!(pkts.iter().filter(|p| !p.syn).all(|p| p.win == u16::MAX));
    assert_eq!(derive_truth(&pkts, false), truth.lines());
    // Some segment lands at least 15 KB ahead of everything seen before it.
    let mut high: std::collections::HashMap<_, u64> = Default::default();
    let mut far = false;
    for p in pkts.iter().filter(|p| !p.payload.is_empty()) {
        let k = (p.src, p.sport);
        let h = high.entry(k).or_insert(p.seq as u64);
        if p.seq.wrapping_sub(*h as u32) as i32 > 15_000 {
            far = true;
        }
        *h = p.seq.wrapping_add(p.payload.len() as u32) as u64;
    }
    assert!(far);
}

#[test]
fn nanosecond_pcap() {
    let cfg = GenConfig {
        nanos: true,
        conns: 5,
        gap_ns: 333,
        ..mixed()
    };
    let (pcap, truth) = run(&cfg);
    let (nanos, pkts) = read_pcap(&pcap);
    assert!(nanos);
    assert!(pkts.iter().any(|p| p.ts_ns % 1000 != 0));
    assert_eq!(derive_truth(&pkts, false), truth.lines());
}

#[test]
fn invalid_config_is_refused() {
    let cfg = GenConfig {
        min_bytes: 10,
        max_bytes: 5,
        ..GenConfig::default()
    };
    let err = generate(&cfg, Vec::new()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    // Timestamps with retransmissions a PAWS check would drop, and a clock
    // that would wrap: the truth would be wrong, so both are refused.
    for bad in [
        GenConfig {
            timestamps: true,
            overlap: 0.1,
            ..GenConfig::default()
        },
        GenConfig {
            timestamps: true,
            hostile: Some(Hostile::Conflict),
            ..GenConfig::default()
        },
        GenConfig {
            gap_ns: 4_000_000_000_000_000_000,
            ..GenConfig::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
    assert!("bogus".parse::<Hostile>().is_err());
    assert_eq!("ooo-flood".parse::<Hostile>(), Ok(Hostile::OooFlood));
}

#[test]
fn reused_tuples_get_a_line_each() {
    let cfg = GenConfig {
        tuple_pool: 3,
        conns: 30,
        concurrent: 2,
        ..impaired()
    };
    let (pcap, truth) = run(&cfg);
    let pkts = parse_checked(&pcap, &truth);
    assert_eq!(derive_truth(&pkts, false), truth.lines());
    let tuples: std::collections::HashSet<String> = truth
        .lines()
        .iter()
        .map(|l| l.split(' ').take(4).collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        tuples.len() < truth.lines().len() / 2,
        "{} tuples",
        tuples.len()
    );
}
