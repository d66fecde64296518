//! Shared helpers of the workspace-level tests.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use weft_gen::GenConfig;
use weft_replay::app::{replay, Outcome, ReplayOptions};

/// Writes the trace `cfg` describes to the tests' temporary folder as
/// `name`; returns its path and the generator's truth lines.
pub fn generate(name: &str, cfg: &GenConfig) -> (PathBuf, Vec<String>) {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let truth = weft_gen::generate(cfg, std::fs::File::create(&path).unwrap()).unwrap();
    (path, truth.lines().to_vec())
}

/// Replays `path` as `weft-replay` would with `opts`, and checks that every
/// payload byte is accounted for.
pub fn replay_file(path: &Path, opts: &ReplayOptions) -> Outcome {
    let out = replay(
        &[path.to_path_buf()],
        opts,
        &AtomicBool::new(false),
        &mut |_, _, _| {},
    )
    .unwrap();
    assert!(out.stats.reasm_total().balanced());
    out
}

/// The shared capture corpus: `$WEFT_CORPUS`, else `../shared/corpus` beside
/// the checkout. `None` (after a visible notice) when it is absent, unless
/// `WEFT_REQUIRE_CORPUS=1`, which turns absence into a failure (CI sets it).
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("WEFT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus")));
    if dir.join("MANIFEST.tsv").is_file() {
        return Some(dir);
    }
    if std::env::var("WEFT_REQUIRE_CORPUS").as_deref() == Ok("1") {
        panic!(
            "corpus not found at {} and WEFT_REQUIRE_CORPUS=1",
            dir.display()
        );
    }
    // Straight to the process's stderr: the test harness captures eprintln!.
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED: corpus not found at {} (set WEFT_CORPUS)",
        dir.display()
    );
    None
}

/// Capture files of the corpus, sorted.
pub fn corpus_captures(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read corpus dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    v.sort();
    v
}
