//! The floor of any reassembler reading a capture: map it, read every
//! frame, touch every byte once. `floor FILE` prints frames, bytes, seconds.

use std::process::ExitCode;
use std::time::Instant;

use weft_capture::Capture;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: floor FILE");
        return ExitCode::from(2);
    };
    let mut cap = match Capture::open(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let start = Instant::now();
    let (mut frames, mut bytes, mut sum) = (0u64, 0u64, 0u64);
    while let Some(Ok(f)) = cap.next_frame() {
        frames += 1;
        bytes += f.data.len() as u64;
        let mut w = f.data.chunks_exact(8);
        for x in &mut w {
            sum = sum.wrapping_add(u64::from_le_bytes(x.try_into().expect("8 bytes")));
        }
        sum = w
            .remainder()
            .iter()
            .fold(sum, |s, &b| s.wrapping_add(u64::from(b)));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "frames={frames} bytes={bytes} seconds={secs:.3} frames_per_s={:.0} checksum={sum:x}",
        frames as f64 / secs
    );
    ExitCode::SUCCESS
}
