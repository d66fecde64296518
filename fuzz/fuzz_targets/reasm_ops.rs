//! AFL++ harness: see [`weft_fuzz::reasm_ops`].

fn main() {
    afl::fuzz!(|data: &[u8]| weft_fuzz::reasm_ops::run(data));
}
