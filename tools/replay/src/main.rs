//! `weft-replay`: reassemble the TCP streams of captures.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use weft_engine::PipelineConfig;
use weft_reasm::OverlapPolicy;

/// Reassemble the TCP streams of pcap/pcapng captures.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Capture files (`-` reads standard input).
    #[arg(required = true)]
    captures: Vec<PathBuf>,
    /// Print one digest line per half-connection.
    #[arg(long)]
    digest: bool,
    /// Print the run's statistics on standard error.
    #[arg(long)]
    stats: bool,
    /// Overlap policy: first, last, bsd, linux, old-linux, windows, solaris.
    #[arg(long, default_value = "first")]
    overlap_policy: OverlapPolicy,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut cfg = PipelineConfig::default();
    cfg.reasm.overlap_policy = args.overlap_policy;
    let mut status = ExitCode::SUCCESS;
    let mut all = Vec::new();
    for path in &args.captures {
        match weft_replay::digest_file(path, cfg.clone()) {
            Ok((d, fs, st, err)) => {
                all.extend(d);
                if args.stats {
                    eprintln!("{fs:#?}\n{st:#?}");
                }
                if let Some(e) = err {
                    eprintln!("weft-replay: {e}");
                    status = ExitCode::from(1);
                }
            }
            Err(e) => {
                eprintln!("weft-replay: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if args.digest {
        for l in weft_replay::digest::lines(&all) {
            println!("{l}");
        }
    }
    status
}
