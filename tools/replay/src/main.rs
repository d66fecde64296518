//! `weft-replay`: reassemble the TCP streams of captures.
//!
//! Exit status: 0 success, 1 input or runtime error (after processing
//! everything readable and printing the stats), 2 usage error, 130
//! interrupted (Ctrl-C: the output covers what was read, not the whole
//! input, so a script must not take it for a complete run).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use weft_engine::EngineError;
use weft_reasm::{OverlapPolicy, UrgentPolicy};
use weft_replay::app::{replay, replay_live, LiveInput, ReplayOptions, RunError};
use weft_replay::config::{parse_size, ConfigFile, Dispatch};
use weft_wire::DefragPolicy;

/// Writes a line to standard error as `eprintln!` does, but never panics:
/// a full or closed standard error (`2>/dev/full`, a pipe whose reader
/// left) loses the message, not the run's exit status.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// Reassemble the TCP streams of pcap/pcapng captures with weft.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    after_help = "Exit status: 0 success, 1 input or runtime error, 2 usage error, 130 interrupted (the output covers what was read)."
)]
struct Args {
    /// Capture files (pcap, pcapng, gzip-compressed; `-` reads standard input).
    #[arg(required_unless_present = "interface")]
    captures: Vec<PathBuf>,
    /// Capture live from this network interface instead of reading files
    /// (Linux, AF_PACKET; needs CAP_NET_RAW): until Ctrl-C, --duration or
    /// --count, then report as for files (exit status 0).
    #[arg(long, short = 'i', value_name = "NAME", conflicts_with_all = ["captures", "pace", "no_map"])]
    interface: Option<String>,
    /// Live capture: stop after SECS seconds.
    #[arg(long, value_name = "SECS", requires = "interface", value_parser = parse_seconds)]
    duration: Option<std::time::Duration>,
    /// Live capture: stop after N frames.
    #[arg(long, value_name = "N", requires = "interface")]
    count: Option<u64>,
    /// Live capture: put the interface in promiscuous mode while capturing.
    #[arg(long, requires = "interface")]
    promisc: bool,
    /// Live capture: the kernel's ring, per socket (fanout workers have one
    /// each), e.g. 256MiB (default 64MiB, in 1 MiB blocks; while the ring
    /// is full the kernel drops packets, and counts them; at most 64GiB,
    /// 65,535 blocks).
    #[arg(long, value_name = "SIZE", requires = "interface", value_parser = parse_ring)]
    live_ring: Option<usize>,
    /// A packet filter: a classic BPF program as `tcpdump -ddd EXPR`
    /// prints it (or -dd), e.g. `tcpdump -ddd 'tcp port 80' > f.bpf`.
    /// Frames it rejects are skipped. Capture files: run here on every
    /// frame, the rejected counted (compile it for the captures' link
    /// type: -y TYPE, default Ethernet). Live: run by the kernel on each
    /// socket (compile it for the interface: -i NAME).
    #[arg(long, value_name = "FILE")]
    bpf: Option<PathBuf>,
    /// Worker threads (default: one per available core).
    #[arg(long, short = 'w', value_name = "N")]
    workers: Option<usize>,
    /// Reassemble on the main thread, no workers (same as --workers 0;
    /// --dispatch ring or hybrid and --table-weights are then ignored).
    #[arg(long, conflicts_with = "workers")]
    inline: bool,
    /// How frames reach the workers: `ring` (a dispatcher thread hands each
    /// frame to its flow's worker), `fanout` (every worker reads the whole
    /// capture and keeps its own flows; memory-mapped files and blocking
    /// backpressure only), `hybrid` (as ring, the main thread being worker
    /// 0 as well) or `auto` (unless --pace or drop backpressure is asked:
    /// fanout where it can, else hybrid with no core to spare; else ring).
    #[arg(long, value_name = "MODE")]
    dispatch: Option<Dispatch>,
    /// Each worker's weight in the indirection table, one per worker, e.g.
    /// `2,5` (default: equal; where the main thread is worker 0, hybrid, 2
    /// for it and 5 for each other). Without --workers, sets how many;
    /// ignored inline.
    #[arg(long, value_name = "W,...", value_delimiter = ',')]
    table_weights: Option<Vec<u32>>,
    /// Print one digest line per half-connection on standard output:
    /// SRC_IP SRC_PORT DST_IP DST_PORT BYTES GAPBYTES SHA256, sorted.
    #[arg(long)]
    digest: bool,
    /// Print one line per overlap conflict (copies of the same bytes that
    /// differed: held out of order, or, with --retransmit-check, already
    /// delivered) on standard output, after the digest lines: conflict
    /// SRC_IP SRC_PORT DST_IP DST_PORT OFFSET LEN KEPT (first or new),
    /// sorted.
    #[arg(long)]
    conflicts: bool,
    /// Write each half-connection's bytes to a file in DIR (tcpflow names).
    #[arg(long, value_name = "DIR")]
    write_flows: Option<PathBuf>,
    /// Print a table of the run's statistics on standard error.
    #[arg(long)]
    stats: bool,
    /// Print the run's statistics as JSON on standard output (after any digest).
    #[arg(long)]
    json: bool,
    /// TOML file with engine and reassembler options (flags override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overlap policy: first, last, bsd, linux, old-linux, windows, solaris
    /// (also vista, macos, hpux10, hpux11, irix), for the hosts no
    /// `[[host]]` entry of the config names.
    #[arg(long, value_name = "POLICY")]
    overlap_policy: Option<OverlapPolicy>,
    /// Where IPv4 fragments overlap, whose bytes win: first, last, bsd,
    /// linux, windows, solaris, or discard (the datagram, as current
    /// Linux does in both families, IPv6 too where chosen; IPv6 otherwise
    /// follows RFC 5722); default first; for the hosts no `[[host]]`
    /// entry of the config names.
    #[arg(long, value_name = "POLICY")]
    defrag_policy: Option<DefragPolicy>,
    /// What becomes of the byte a TCP urgent pointer marks: `inline` (the
    /// default: it stays in the stream, as tshark shows it and as an
    /// application with SO_OOBINLINE reads it) or `oob` (taken out, as a
    /// Linux socket without SO_OOBINLINE takes it; counted as
    /// urgent_bytes).
    #[arg(long, value_name = "POLICY")]
    urgent: Option<UrgentPolicy>,
    /// Drop frames their capture records as whole whose IP length promises
    /// more than they hold, as the receiving host drops a packet that
    /// short; for captures whose records tell the length on the wire truly
    /// (counted as short_on_wire either way; default: reassembled as cut).
    #[arg(long)]
    drop_short_on_wire: bool,
    /// Take source-routed packets (IPv4 source route options, IPv6 type 0
    /// routing headers with segments left), for networks whose hosts
    /// accept them; by default they are refused (counted) as hosts refuse
    /// them.
    #[arg(long)]
    accept_source_routed: bool,
    /// Refuse packets whose IP length is 0 (IPv6 jumbograms aside), as a
    /// receiving host does: for captures taken on the wire. By default
    /// such a packet is as long as its frame, as captures taken on a
    /// sending host with segmentation offload ("BIG TCP") need.
    #[arg(long)]
    refuse_zero_ip_length: bool,
    /// Memory cap for buffered data, e.g. 256MiB (0: no limit; else at
    /// least one 2 KiB page).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memcap: Option<usize>,
    /// Pick up connections without a handshake (default true).
    #[arg(long, value_name = "BOOL")]
    midstream: Option<bool>,
    /// Refuse segments whose TCP timestamp is older than the last one their
    /// receiver accepted (PAWS, RFC 7323), as the receiver would; they are
    /// counted as rejected (`--paws` alone: true, `--paws=false` overrides a
    /// config file; default false).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    paws: Option<bool>,
    /// Refuse segments whose data starts past the window their receiver
    /// advertised, as a Linux receiver does, so data put beyond the window
    /// cannot take the place of what is sent again once it opens; counted
    /// as rejected. For captures of both directions without loss: one that
    /// lost a window update shows genuine data past the edge it knows
    /// (`--window-check` alone: true; default false).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    window_check: Option<bool>,
    /// Keep the last BYTES each direction delivered, e.g. 4KiB, and
    /// compare retransmissions of them with what was delivered: copies
    /// that differ (an injected segment raced ahead of the genuine one, a
    /// decoy sent first) are counted as overlap conflicts; bytes compared
    /// as rechecked, the others (delivered too long ago, in a hole, or not
    /// held) as unchecked. Up to BYTES a direction, within half the
    /// memcap; costs a copy of every byte (default 0: off).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    retransmit_check: Option<usize>,
    /// Reassemble at most BYTES of each direction, e.g. 1MiB (an IDS's
    /// reassembly depth: the start of each stream, where protocols put
    /// what they are told by); bytes past it are dropped as they come,
    /// counted as stopped, and the connection is tracked to its end as
    /// before (default 0: all).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    depth: Option<usize>,
    /// Replay at FACTOR times the capture's own speed (2: twice as fast;
    /// default: as fast as possible).
    #[arg(long, value_name = "FACTOR", value_parser = parse_pace)]
    pace: Option<f64>,
    /// No progress bar even on a terminal.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Do not map a capture file's pages ahead of the reader on a helper
    /// thread (it takes page faults off the reading thread, and with a
    /// core to spare reads the bytes into the shared cache).
    #[arg(long)]
    no_readahead: bool,
    /// Read capture files with ordinary reads instead of mapping them: for
    /// files another process may still write, rotate or truncate (a mapped
    /// file that shrinks, or a read error on its device, raises SIGBUS and
    /// ends the process). Costs a copy of each frame; no fanout workers.
    #[arg(long)]
    no_map: bool,
    /// Read the capture files as one, their frames in time order (each
    /// file's own order kept; of frames stamped alike, the file named
    /// first goes first): captures of one link taken at several points,
    /// e.g. a tap's two directions in two files. Default: one file after
    /// another. Costs a copy of each frame; no fanout workers.
    #[arg(long, conflicts_with = "interface")]
    merge: bool,
    /// Only read every frame and touch each byte once, then print the
    /// counts and time on standard error: the floor for comparisons.
    #[arg(long, conflicts_with_all = [
        "digest", "conflicts", "write_flows", "json", "pace", "workers", "inline", "dispatch",
        "table_weights", "stats", "config", "overlap_policy", "defrag_policy", "urgent",
        "drop_short_on_wire", "accept_source_routed", "refuse_zero_ip_length", "memcap",
        "midstream", "paws", "window_check", "retransmit_check", "depth", "interface", "merge",
        "bpf",
    ])]
    read_only: bool,
}

fn options(args: &Args) -> Result<ReplayOptions, String> {
    let mut o = ReplayOptions::default();
    let mut bpf = None;
    if let Some(path) = &args.config {
        let file = ConfigFile::load(path)?;
        file.apply(&mut o.pipeline, &mut o.engine, &mut o.output)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // Beside the config file, as its other paths would be.
        let dir = path.parent().unwrap_or(std::path::Path::new(""));
        bpf = file.bpf.as_ref().map(|b| dir.join(b));
    }
    if args.inline {
        o.engine.workers = Some(0);
    } else if let Some(w) = args.workers {
        o.engine.workers = Some(w);
    }
    if let Some(d) = args.dispatch {
        o.engine.dispatch = d;
    }
    if let Some(w) = &args.table_weights {
        o.engine.table_weights = Some(w.clone());
        if !args.inline && args.workers.is_none() {
            // Weights on the command line say how many workers, over a
            // config file's count, as every flag overrides the file.
            o.engine.workers = Some(w.len());
        }
    }
    if let Some(p) = args.overlap_policy {
        o.pipeline.reasm.overlap_policy = p;
    }
    if let Some(p) = args.defrag_policy {
        o.pipeline.defrag.policy = p;
    }
    if let Some(p) = args.urgent {
        o.pipeline.reasm.urgent = p;
    }
    if args.drop_short_on_wire {
        o.pipeline.drop_short_on_wire = true;
    }
    if args.accept_source_routed {
        o.pipeline.decode.accept_source_routed = true;
    }
    if args.refuse_zero_ip_length {
        o.pipeline.decode.take_zero_ip_length = false;
    }
    if let Some(m) = args.memcap {
        o.pipeline.reasm.memcap = m;
    }
    weft_replay::config::check_memcap(o.pipeline.reasm.memcap)?;
    if let Some(n) = args.retransmit_check {
        o.pipeline.reasm.retransmit_check = n;
    }
    if let Some(n) = args.depth {
        o.pipeline.reasm.depth = n as u64;
    }
    if let Some(m) = args.midstream {
        o.pipeline.reasm.midstream = m;
    }
    o.output.digest = args.digest;
    o.output.conflicts = args.conflicts;
    if let Some(p) = args.paws {
        o.output.paws = p;
    }
    if let Some(w) = args.window_check {
        o.output.window_check = w;
    }
    if let Some(dir) = &args.write_flows {
        // Made once every option is checked (`main`).
        o.output.flows = Some(dir.clone());
        o.output.inputs.clone_from(&args.captures);
    }
    if let Some(path) = args.bpf.as_ref().or(bpf.as_ref()) {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let program = weft_capture::BpfProgram::parse(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        o.filter = Some(program);
    }
    o.pace = args.pace;
    o.no_readahead = args.no_readahead;
    o.no_map = args.no_map;
    o.merge = args.merge;
    Ok(o)
}

/// A duration in seconds (fractions allowed), above 0.
fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 && f < 1e9 => Ok(std::time::Duration::from_secs_f64(f)),
        _ => Err(format!("{s:?}: seconds, above 0")),
    }
}

/// The live capture `args` ask for, if any.
fn live_input(args: &Args) -> Option<LiveInput> {
    let interface = args.interface.clone()?;
    #[allow(unused_mut)]
    let mut live = LiveInput {
        interface,
        duration: args.duration,
        count: args.count,
        ..LiveInput::default()
    };
    #[cfg(target_os = "linux")]
    {
        live.options.promiscuous = args.promisc;
        if let Some(ring) = args.live_ring {
            // 1 MiB blocks, or smaller ones for a ring under 16 MiB: at
            // least 16 blocks (a block stays lent while the engine holds
            // any frame of it), of 64 KiB at least.
            let block = (ring / 16).clamp(64 << 10, 1 << 20);
            let block = 1 << block.ilog2();
            live.options.block_size = block;
            live.options.blocks = (ring / block).clamp(16, usize::from(u16::MAX));
        }
    }
    Some(live)
}

/// A live capture's ring: a size of at most 65,535 blocks of 1 MiB (the
/// kernel's ring counts its blocks in 16 bits here), refused beyond
/// rather than cut short unseen.
fn parse_ring(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    let most = usize::from(u16::MAX) << 20;
    if n > most {
        return Err(format!("{s:?}: a ring of at most 64GiB ({most} bytes)"));
    }
    Ok(n)
}

/// A pacing factor: a finite number above 0.
fn parse_pace(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(format!(
            "{s:?}: a factor above 0 (1 = the capture's own pace)"
        )),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let opts = match options(&args) {
        Ok(o) => o,
        Err(e) => {
            say!("weft-replay: {e}");
            return ExitCode::from(2);
        }
    };
    // The flow directory this run made, to take back if the run is
    // refused before it writes anything.
    let mut made = None;
    if let Some(dir) = &args.write_flows {
        if !dir.exists() {
            made = Some(dir.clone());
        }
        // An output that cannot be written is a runtime error, as a flow
        // file that cannot be is.
        if let Err(e) = std::fs::create_dir_all(dir) {
            say!(
                "weft-replay: cannot write flow files to {}: {e}",
                dir.display()
            );
            return ExitCode::from(1);
        }
    }
    if args.read_only {
        let start = std::time::Instant::now();
        let (r, result) =
            weft_replay::app::read_only(&args.captures, !args.no_readahead, args.no_map);
        let secs = start.elapsed().as_secs_f64();
        say!(
            "read-only: {} frames, {} bytes, checksum {:016x}, {secs:.3} s, {:.2} M frames/s",
            r.frames,
            r.bytes,
            r.checksum,
            r.frames as f64 / secs.max(1e-9) / 1e6
        );
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                say!("weft-replay: {e}");
                ExitCode::from(1)
            }
        };
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl-C stops reading; everything read is still flushed and
        // reported. A second one ends the process at once (status 130):
        // a reader blocked on a stream that sends nothing never looks at
        // the flag, and a long flush may not be wanted.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::Relaxed) {
                say!("weft-replay: interrupted twice; nothing more is reported");
                std::process::exit(130);
            }
        });
    }
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(progress_bar);
    let mut progress = |read: u64, total: Option<u64>, frames: u64| {
        if let Some(b) = &bar {
            if let Some(t) = total {
                b.set_length(t);
            }
            b.set_position(read);
            b.set_message(format!("{frames} frames"));
        }
    };
    let result = match live_input(&args) {
        Some(live) => {
            // On standard error, as tcpdump says it: a script can wait for
            // it before sending what is to be captured.
            let mut opened = || say!("weft-replay: capturing on {}", live.interface);
            replay_live(&live, &opts, &stop, &mut progress, &mut opened)
        }
        None => replay(&args.captures, &opts, &stop, &mut progress),
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let out = match result {
        Ok(o) => o,
        Err(RunError::Open(e)) => {
            say!("weft-replay: {e}");
            return ExitCode::from(1);
        }
        Err(RunError::Live(e)) => {
            say!("weft-replay: live capture on {e}");
            return ExitCode::from(1);
        }
        Err(
            e @ (RunError::NoFanout
            | RunError::Filter(_)
            | RunError::Engine(EngineError::Setting(_))),
        ) => {
            say!("weft-replay: {e}");
            if let Some(dir) = &made {
                // Still empty: removed (a directory with files stays).
                let _ = std::fs::remove_dir(dir);
            }
            return ExitCode::from(2);
        }
        Err(e) => {
            say!("weft-replay: {e}");
            return ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let mut written = Ok(());
    if args.digest {
        for l in weft_replay::digest::lines(&out.digests) {
            written = written.and_then(|()| writeln!(stdout, "{l}"));
        }
    }
    if args.conflicts {
        for l in weft_replay::digest::lines(&out.conflicts) {
            written = written.and_then(|()| writeln!(stdout, "{l}"));
        }
    }
    if args.json {
        written = written.and_then(|()| writeln!(stdout, "{}", weft_replay::report::json(&out)));
    }
    written = written.and_then(|()| stdout.flush());
    if args.stats {
        say!(
            "{}",
            weft_replay::report::table(&out).trim_end_matches('\n')
        );
    }
    let mut status = ExitCode::SUCCESS;
    match written {
        // A reader that stopped early (`| head`) wanted no more.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            // A full disk must not pass for a complete digest.
            say!("weft-replay: cannot write the output: {e}");
            status = ExitCode::from(1);
        }
        Ok(()) => {}
    }
    for e in &out.capture_errors {
        say!("weft-replay: {e}");
        status = ExitCode::from(1);
    }
    if let Some(e) = out.live.as_ref().and_then(|l| l.error.as_ref()) {
        say!("weft-replay: live capture ended: {e}");
        status = ExitCode::from(1);
    }
    for e in &out.flow_errors {
        say!("weft-replay: cannot write flow file: {e}");
        status = ExitCode::from(1);
    }
    if out.interrupted {
        say!("weft-replay: interrupted; statistics cover what was read");
        // 128 + SIGINT, as shells report a command Ctrl-C stopped; an
        // error found before it still says 1.
        if status == ExitCode::SUCCESS {
            status = ExitCode::from(130);
        }
    }
    status
}

fn progress_bar() -> indicatif::ProgressBar {
    let b = indicatif::ProgressBar::new(0);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b
}
