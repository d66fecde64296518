//! The fuzz targets' bodies, one module each. The AFL++ harnesses in
//! `fuzz_targets/` call them; the workspace test `tests/fuzz_replay.rs`
//! includes the same files and runs them over the committed corpus and
//! seeded mutations of it, so every CI run repeats what fuzzing found.
//! Each body panics when a property it checks breaks.

pub mod bpf_run;
pub mod capture_read;
pub mod defrag_ops;
pub mod reasm_ops;
pub mod wire_parse;
