//! The pcap/pcapng readers on arbitrary bytes, whole, as a stream, and as a
//! stream whose buffers are shared (held until the end, as workers would):
//! must not panic, must yield the same frames every way, must never change
//! bytes of a shared buffer, and must stop after an error.

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

/// The frames read (bytes, time, link type) and the error that ended them.
type Frames = (Vec<(Vec<u8>, u64, u32)>, Option<String>);

fn frames(mut c: Capture) -> Frames {
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

/// Like `frames`, holding every buffer a frame was read into and checking at
/// the end that each frame's bytes are still there.
fn shared_frames(mut c: Capture) -> Frames {
    let mut v = Vec::new();
    let mut held = Vec::new();
    let mut block = c.current_block();
    let mut stale = false;
    loop {
        if stale {
            block = c.current_block();
            stale = false;
        }
        let Some(f) = c.next_frame() else { break };
        match f {
            Ok(f) => {
                match block.offset_of(f.data) {
                    Some(off) => held.push((block.clone(), off, f.data.to_vec())),
                    None => stale = true,
                }
                v.push((f.data.to_vec(), f.ts_nanos, f.link_type));
            }
            Err(e) => {
                assert!(c.next_frame().is_none(), "nothing after an error");
                return (v, Some(e.to_string()));
            }
        }
    }
    for (b, off, bytes) in &held {
        assert_eq!(
            &b[*off..*off + bytes.len()],
            &bytes[..],
            "a shared buffer was overwritten"
        );
    }
    (v, None)
}

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let whole = Capture::from_bytes(data.to_vec(), "fuzz").map(frames);
    let stream = Capture::from_reader(Box::new(Trickle(data.to_vec(), 0)), "fuzz").map(frames);
    let shared =
        Capture::from_reader(Box::new(Trickle(data.to_vec(), 0)), "fuzz").map(shared_frames);
    if let (Ok((a, ea)), Ok((b, eb)), Ok((c, ec))) = (whole, stream, shared) {
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(ea.is_some(), eb.is_some());
        assert_eq!(ea.is_some(), ec.is_some());
    }
}
