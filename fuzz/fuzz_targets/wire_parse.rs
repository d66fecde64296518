//! AFL++ harness: see [`weft_fuzz::wire_parse`].

fn main() {
    afl::fuzz!(|data: &[u8]| weft_fuzz::wire_parse::run(data));
}
