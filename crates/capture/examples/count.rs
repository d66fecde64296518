//! Counts frames and captured bytes in a capture.
//!
//! `cargo run -p weft-capture --release --example count -- FILE [--buffered]`
//! (`-` reads standard input).

use std::process::ExitCode;
use std::time::Instant;

use weft_capture::Capture;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: count FILE|- [--buffered]");
        return ExitCode::from(2);
    };
    let opened = match args.next().as_deref() {
        Some("--buffered") => Capture::open_buffered(&path),
        _ => Capture::open(&path),
    };
    let mut cap = match opened {
        Ok(cap) => cap,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    let (mut frames, mut bytes, mut wire) = (0u64, 0u64, 0u64);
    let mut failed = false;
    while let Some(next) = cap.next_frame() {
        match next {
            Ok(frame) => {
                frames += 1;
                bytes += frame.data.len() as u64;
                wire += u64::from(frame.wire_len);
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}: {:?}, {frames} frames, {bytes} captured bytes ({wire} on the wire), \
         {} input bytes in {secs:.3} s",
        cap.name(),
        cap.format(),
        cap.bytes_read(),
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
