//! AFL++ harness: see [`weft_fuzz::defrag_ops`].

fn main() {
    afl::fuzz!(|data: &[u8]| weft_fuzz::defrag_ops::run(data));
}
