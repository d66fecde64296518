//! AFL++ harness: see [`weft_fuzz::bpf_run`].

fn main() {
    afl::fuzz!(|data: &[u8]| weft_fuzz::bpf_run::run(data));
}
