//! `--stats` (a table for people) and `--json` (for machines).

use serde_json::{json, Map, Value};
use weft_engine::FrameStats;
use weft_reasm::{DropReason, Stats};
use weft_wire::DefragStats;

use crate::app::{LiveReport, Outcome};

fn frame_json(f: &FrameStats) -> Value {
    json!({
        "frames": f.frames, "frame_bytes": f.frame_bytes, "tcp_segments": f.tcp_segments,
        "not_tcp": f.not_tcp, "truncated": f.truncated, "malformed": f.malformed,
        "unsupported": f.unsupported, "refused": f.refused, "short_on_wire": f.short_on_wire,
        "bad_checksum": f.bad_checksum,
        "bad_checksum_dropped": f.bad_checksum_dropped,
        "bad_tunnel_checksum": f.bad_tunnel_checksum, "fragments": f.fragments,
        "defragmented": f.defragmented, "defrag": defrag_json(&f.defrag),
    })
}

fn defrag_json(d: &DefragStats) -> Value {
    json!({
        "reassembled": d.reassembled, "timed_out": d.timed_out,
        "dropped_overlap": d.dropped_overlap, "dropped_limit": d.dropped_limit,
        "dropped_invalid": d.dropped_invalid, "abandoned_overlap": d.abandoned_overlap,
        "dropped_truncated": d.dropped_truncated, "replaced_overlap": d.replaced_overlap,
    })
}

fn reasm_json(s: &Stats) -> Value {
    let mut dropped = Map::new();
    for r in DropReason::ALL {
        dropped.insert(r.name().to_owned(), json!(s.dropped(r)));
    }
    json!({
        "segments": s.segments, "payload_bytes": s.payload_bytes,
        "delivered_bytes": s.delivered_bytes, "duplicate_bytes": s.duplicate_bytes,
        "overlap_bytes": s.overlap_bytes, "overlap_conflicts": s.overlap_conflicts,
        "rechecked_bytes": s.rechecked_bytes, "unchecked_bytes": s.unchecked_bytes,
        "buffered_bytes": s.buffered_bytes, "urgent_bytes": s.urgent_bytes, "dropped": dropped,
        "gap_bytes": s.gap_bytes, "gaps": s.gaps, "acked_gaps": s.acked_gaps,
        "truncated_bytes": s.truncated_bytes, "out_of_order_segments": s.out_of_order_segments,
        "conns_created": s.conns_created, "conns_closed": s.conns_closed,
        "conns_closed_fin": s.conns_closed_fin, "conns_closed_rst": s.conns_closed_rst,
        "conns_closed_idle": s.conns_closed_idle, "conns_evicted": s.conns_evicted,
        "rst_ignored": s.rst_ignored, "syn_ignored": s.syn_ignored, "segments_no_conn": s.segments_no_conn,
        "segments_no_ack": s.segments_no_ack,
        "segments_rejected": s.segments_rejected,
        "memcap_flushes": s.memcap_flushes, "memcap_prunes": s.memcap_prunes, "timeout_flushes": s.timeout_flushes,
        "deliveries": s.deliveries, "pages_peak": s.pages_peak,
        "kept_truncated_bytes": s.kept_truncated_bytes,
    })
}

/// Rates of a run: (frames/s, Gbit/s of TCP payload delivered).
pub fn rates(out: &Outcome) -> (f64, f64) {
    let secs = out.elapsed.as_secs_f64().max(1e-9);
    let frames = out.stats.dispatch.frames as f64;
    let bits = out.stats.reasm_total().delivered_bytes as f64 * 8.0;
    (frames / secs, bits / secs / 1e9)
}

/// The process's peak resident memory in bytes (Linux `VmHWM`), if known.
/// With a capture read from standard input (no memory map) this is the
/// engine's own memory: tables, pages, buffers.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The machine-readable report.
pub fn json(out: &Outcome) -> Value {
    let d = &out.stats.dispatch;
    let (pps, gbps) = rates(out);
    let workers: Vec<Value> = (0..out.stats.frames.len())
        .map(|i| {
            json!({
                "frames": frame_json(&out.stats.frames[i]),
                "reassembly": reasm_json(&out.stats.reasm[i]),
                "pinned": out.stats.pinned.get(i).copied().unwrap_or(false),
            })
        })
        .collect();
    json!({
        "elapsed_seconds": out.elapsed.as_secs_f64(),
        "frames_per_second": pps,
        "gbit_per_second": gbps,
        "bytes_read": out.bytes_read,
        "bpf_filtered": out.filtered,
        "peak_rss_bytes": peak_rss(),
        "interrupted": out.interrupted,
        "readahead": {
            "trials": out.readahead_trials.0,
            "reading_ahead_won": out.readahead_trials.1,
        },
        "capture_errors": out.capture_errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        "flow_errors": out.flow_errors,
        "dispatch": {
            "mode": out.dispatch,
            "frames": d.frames, "not_tcp": d.not_tcp, "undecodable": d.undecodable,
            "refused": d.refused,
            "fragments": d.fragments, "defragmented": d.defragmented,
            "short_on_wire": d.short_on_wire, "bad_checksum": d.bad_checksum,
            "bad_checksum_dropped": d.bad_checksum_dropped,
            "bad_tunnel_checksum": d.bad_tunnel_checksum,
            "defrag": defrag_json(&d.defrag), "copied": d.copied,
            "sent": d.sent, "ring_drops": d.ring_drops, "ring_full_waits": d.ring_full_waits,
        },
        "total": {
            "frames": frame_json(&out.stats.frames_total()),
            "reassembly": reasm_json(&out.stats.reasm_total()),
        },
        "workers": workers,
        "live": out.live.as_ref().map(live_json),
    })
}

/// A live capture's counters.
fn live_json(l: &LiveReport) -> Value {
    #[cfg(target_os = "linux")]
    {
        let s = &l.stats;
        json!({
            "interface": l.interface, "blocks": s.blocks, "frames": s.frames,
            "kernel_packets": s.kernel_packets, "kernel_drops": s.kernel_drops,
            "kernel_freezes": s.kernel_freezes, "loopback_copies": s.loopback_copies,
            "vlan_restored": s.vlan_restored, "truncated": s.truncated, "malformed": s.malformed,
            "checksum_not_ready": s.checksum_not_ready,
            "error": l.error,
        })
    }
    #[cfg(not(target_os = "linux"))]
    json!({ "interface": l.interface, "error": l.error })
}

/// The human-readable table.
pub fn table(out: &Outcome) -> String {
    let f = out.stats.frames_total();
    let s = out.stats.reasm_total();
    let d = &out.stats.dispatch;
    let (pps, gbps) = rates(out);
    let mut t = String::new();
    let mut row = |k: &str, v: String| t.push_str(&format!("{k:<28} {v:>16}\n"));
    #[cfg(target_os = "linux")]
    if let Some(l) = &out.live {
        let k = &l.stats;
        row("live capture", l.interface.clone());
        row("  kernel: packets", k.kernel_packets.to_string());
        // Lost before weft saw them: the ring was full.
        row("  kernel: dropped", k.kernel_drops.to_string());
        if k.loopback_copies > 0 {
            row("  loopback sent copies", k.loopback_copies.to_string());
        }
        if k.vlan_restored > 0 {
            row("  vlan tags put back", k.vlan_restored.to_string());
        }
        if k.truncated + k.malformed > 0 {
            row(
                "  cut / malformed",
                format!("{} / {}", k.truncated, k.malformed),
            );
        }
        if k.checksum_not_ready > 0 {
            // Sent by this host with checksum offload: not to be verified.
            row(
                "  checksums not filled in",
                k.checksum_not_ready.to_string(),
            );
        }
    }
    if out.filtered > 0 {
        // Read and rejected by --bpf: never dispatched.
        row("frames filtered out (bpf)", out.filtered.to_string());
    }
    row("frames", d.frames.to_string());
    row("  tcp segments", f.tcp_segments.to_string());
    row("  not tcp", (f.not_tcp + d.not_tcp).to_string());
    row(
        "  undecodable",
        (f.undecodable() + d.undecodable).to_string(),
    );
    if f.refused + d.refused > 0 {
        // Dropped as their receiving hosts drop them (source-routed, ...).
        row(
            "  refused as by the host",
            (f.refused + d.refused).to_string(),
        );
    }
    if f.short_on_wire + d.short_on_wire > 0 {
        let n = f.short_on_wire + d.short_on_wire;
        row("  short on the wire", n.to_string());
    }
    row("  ip fragments", (f.fragments + d.fragments).to_string());
    let tunnel = f.bad_tunnel_checksum + d.bad_tunnel_checksum;
    if f.bad_checksum + d.bad_checksum + tunnel > 0 {
        row(
            "  bad checksum",
            (f.bad_checksum + d.bad_checksum).to_string(),
        );
        if tunnel > 0 {
            row("  bad tunnel header checksum", tunnel.to_string());
        }
        let dropped = f.bad_checksum_dropped + d.bad_checksum_dropped;
        row("    dropped for either", dropped.to_string());
    }
    let (fd, dd) = (f.defrag.dropped(), d.defrag.dropped());
    if fd + dd > 0 {
        row("    datagrams dropped", (fd + dd).to_string());
    }
    // A fragment may have lost some bytes and replaced others: both.
    let lost = f.defrag.dropped_overlap + d.defrag.dropped_overlap;
    let won = f.defrag.replaced_overlap + d.defrag.replaced_overlap;
    if lost + won > 0 {
        row(
            "    overlapping",
            format!("{lost} kept held bytes, {won} replaced some"),
        );
    }
    row("payload bytes", s.payload_bytes.to_string());
    row("  delivered", s.delivered_bytes.to_string());
    row("  duplicate", s.duplicate_bytes.to_string());
    row("  overlap", s.overlap_bytes.to_string());
    for r in DropReason::ALL {
        if s.dropped(r) > 0 {
            row(&format!("  dropped: {r}"), s.dropped(r).to_string());
        }
    }
    if s.urgent_bytes > 0 {
        row("  urgent, out of band", s.urgent_bytes.to_string());
    }
    if s.truncated_bytes > 0 {
        row("  cut by the snap length", s.truncated_bytes.to_string());
    }
    if s.buffered_bytes > 0 {
        row("  still buffered", s.buffered_bytes.to_string());
    }
    row("gap bytes (missing)", s.gap_bytes.to_string());
    row("overlap conflicts", s.overlap_conflicts.to_string());
    if s.rechecked_bytes + s.unchecked_bytes > 0 {
        row(
            "  retransmitted bytes compared / not",
            format!("{} / {}", s.rechecked_bytes, s.unchecked_bytes),
        );
    }
    row("out-of-order segments", s.out_of_order_segments.to_string());
    for (k, v) in [
        ("RSTs ignored (out of window)", s.rst_ignored),
        ("SYNs ignored (mid-connection)", s.syn_ignored),
        ("segments of no connection", s.segments_no_conn),
        ("segments without ACK (ignored)", s.segments_no_ack),
        ("timeout flushes", s.timeout_flushes),
    ] {
        if v > 0 {
            row(k, v.to_string());
        }
    }
    if s.segments_rejected > 0 {
        row(
            "segments rejected (accept)",
            s.segments_rejected.to_string(),
        );
    }
    row("connections", s.conns_created.to_string());
    row(
        "  closed fin / rst / idle",
        format!(
            "{} / {} / {}",
            s.conns_closed_fin, s.conns_closed_rst, s.conns_closed_idle
        ),
    );
    row("  evicted", s.conns_evicted.to_string());
    row("memcap flushes", s.memcap_flushes.to_string());
    if s.memcap_prunes > 0 {
        row("memcap prunes", s.memcap_prunes.to_string());
    }
    // Each worker's own peak, summed: an upper bound of the whole run's.
    row("pages peak (workers summed)", s.pages_peak.to_string());
    if s.kept_truncated_bytes > 0 {
        row(
            "kept bytes over the limit",
            s.kept_truncated_bytes.to_string(),
        );
    }
    let drops: u64 = d.ring_drops.iter().sum();
    if drops > 0 {
        row("ring drops", drops.to_string());
    }
    row(
        "workers",
        if out.dispatch == "inline" {
            "inline".into()
        } else {
            format!("{} ({})", out.stats.frames.len(), out.dispatch)
        },
    );
    let (held, won) = out.readahead_trials;
    if held > 0 {
        row("read-ahead trials (won)", format!("{held} ({won})"));
    }
    row("elapsed", format!("{:.3} s", out.elapsed.as_secs_f64()));
    row("rate", format!("{:.2} Mpkt/s", pps / 1e6));
    row("payload rate", format!("{gbps:.2} Gbit/s"));
    t
}
