//! The pcap/pcapng readers on arbitrary bytes, whole and as a stream: must
//! not panic, must yield the same frames both ways, and must stop after an
//! error.

use std::io::Read;

use weft_capture::Capture;

/// A reader handing out at most 7 bytes per call.
struct Trickle(Vec<u8>, usize);
impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(7).min(self.0.len() - self.1);
        buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
        self.1 += n;
        Ok(n)
    }
}

fn frames(mut c: Capture) -> (Vec<(Vec<u8>, u64, u32)>, Option<String>) {
    let mut v = Vec::new();
    while let Some(f) = c.next_frame() {
        match f {
            Ok(f) => v.push((f.data.to_vec(), f.ts_nanos, f.link_type)),
            Err(e) => {
                assert!(c.next_frame().is_none(), "nothing after an error");
                return (v, Some(e.to_string()));
            }
        }
    }
    (v, None)
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let whole = Capture::from_bytes(data.to_vec(), "fuzz").map(frames);
        let stream = Capture::from_reader(Box::new(Trickle(data.to_vec(), 0)), "fuzz").map(frames);
        if let (Ok((a, ea)), Ok((b, eb))) = (whole, stream) {
            assert_eq!(a, b);
            assert_eq!(ea.is_some(), eb.is_some());
        }
    });
}
