//! The fuzz targets on stable, in every test run: each target's committed
//! corpus (the seeds plus what AFL++ runs kept as new coverage), then seeded
//! havoc mutations of it. Fuzzing itself (`tools/fuzz.sh`) needs cargo-afl;
//! this replays what it found and keeps a little of its search running in
//! CI. `WEFT_FUZZ_ITERS` sets the mutations per target (default 20,000), and
//! `WEFT_FUZZ_SEED` the first seed (default 1), to search further locally.
//! A failing input is written beside the test binary's scratch files and
//! named in the failure, ready for `fuzz/corpus/<target>/`.

#[path = "../fuzz/src/bpf_run.rs"]
mod bpf_run;
#[path = "../fuzz/src/capture_read.rs"]
mod capture_read;
#[path = "../fuzz/src/defrag_ops.rs"]
mod defrag_ops;
#[path = "../fuzz/src/reasm_ops.rs"]
mod reasm_ops;
#[path = "../fuzz/src/wire_parse.rs"]
mod wire_parse;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Longest mutated input: the corpus entries are at most a few KiB.
const MAX_LEN: usize = 8 << 10;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("corpus file"))
        .collect();
    assert!(!inputs.is_empty(), "{} is empty", dir.display());
    inputs
}

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [u8; 8] = [0, 1, 0x7f, 0x80, 0xff, 0x40, 0x10, 0x20];

/// One to eight AFL-style havoc steps on `input`, sometimes spliced with
/// `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        let len = v.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 if len > 0 => {
                let i = rng.below(len);
                v[i] = v[i].wrapping_add(rng.below(35) as u8).wrapping_sub(17);
            }
            3 if len > 1 => {
                // A 16- or 32-bit field set to an edge value, either order.
                let w = if rng.below(2) == 0 { 2 } else { 4.min(len) };
                let i = rng.below(len - w + 1);
                let edge: [u8; 4] = match rng.below(4) {
                    0 => [0; 4],
                    1 => [0xff; 4],
                    2 => [0x80, 0, 0, 0],
                    _ => [0, 0, 0, 1],
                };
                v[i..i + w].copy_from_slice(&edge[..w]);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                v.drain(at..at + n);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                let block = v[at..at + n].to_vec();
                let to = rng.below(len + 1);
                v.splice(to..to, block);
            }
            6 => {
                let to = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(to..to, bytes);
            }
            7 if len > 0 => v.truncate(rng.below(len)),
            8 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
    }
    v.truncate(MAX_LEN);
    v
}

fn setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a number")),
        Err(_) => default,
    }
}

/// Runs `body` on every corpus entry, then on seeded mutations of them.
fn replay(target: &str, body: fn(&[u8])) {
    let inputs = corpus(target);
    let iters = setting("WEFT_FUZZ_ITERS", 20_000);
    let seed = setting("WEFT_FUZZ_SEED", 1);
    let check = |what: &str, data: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| body(data))).is_err() {
            let file =
                Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-{target}-failing"));
            std::fs::write(&file, data).expect("write the failing input");
            panic!(
                "{target} failed on {what}; the input ({} bytes) is in {}",
                data.len(),
                file.display()
            );
        }
    };
    for (i, data) in inputs.iter().enumerate() {
        check(&format!("corpus entry {i}"), data);
    }
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    for n in 0..iters {
        let a = &inputs[rng.below(inputs.len())];
        let b = &inputs[rng.below(inputs.len())];
        let data = mutate(&mut rng, a, b);
        check(&format!("mutation {n} of seed {seed}"), &data);
    }
    eprintln!(
        "{target}: {} corpus entries and {iters} mutations (seed {seed}) passed",
        inputs.len()
    );
}

#[test]
fn bpf_run_corpus_and_mutations() {
    replay("bpf_run", bpf_run::run);
}

#[test]
fn wire_parse_corpus_and_mutations() {
    replay("wire_parse", wire_parse::run);
}

#[test]
fn capture_read_corpus_and_mutations() {
    replay("capture_read", capture_read::run);
}

#[test]
fn defrag_ops_corpus_and_mutations() {
    // The seeds complete datagrams under every policy: the byte checks run.
    let inputs = corpus("defrag_ops");
    let checked: u64 = inputs.iter().map(|d| defrag_ops::run_counted(d)).sum();
    assert!(
        checked >= 11,
        "defrag_ops: {checked} datagrams of {} inputs checked",
        inputs.len()
    );
    replay("defrag_ops", defrag_ops::run);
}

#[test]
fn reasm_ops_corpus_and_mutations() {
    // The byte-map oracle must actually run on a share of the corpus (it
    // needs one connection of data segments, no drop, no forced flush):
    // 107 passes of 526 inputs when written, 13 before the data-only pass.
    let inputs = corpus("reasm_ops");
    let compared: usize = inputs.iter().map(|d| reasm_ops::run_counted(d)).sum();
    assert!(
        compared * 8 >= inputs.len(),
        "the byte map checked {compared} passes of {} inputs",
        inputs.len()
    );
    eprintln!(
        "reasm_ops: the byte map checked {compared} passes of {} inputs",
        inputs.len()
    );
    replay("reasm_ops", reasm_ops::run);
}

#[test]
fn mutation_is_reproducible_and_bounded() {
    let seed = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let run = |s| {
        let mut rng = Rng(s);
        (0..200)
            .map(|_| mutate(&mut rng, &seed, &seed))
            .collect::<Vec<_>>()
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
    assert!(a.iter().all(|v| v.len() <= MAX_LEN));
    assert!(a.iter().any(|v| v.as_slice() != seed), "nothing changed");
}
