//! AFL++ harness: see [`weft_fuzz::capture_read`].

fn main() {
    afl::fuzz!(|data: &[u8]| weft_fuzz::capture_read::run(data));
}
