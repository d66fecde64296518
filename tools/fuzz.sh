#!/usr/bin/env bash
# Runs each fuzz target under AFL++ for SECONDS (default 60) and prints how
# many executions ran and whether anything crashed or hung.
#   cargo install cargo-afl     # once; builds AFL++ for this toolchain
#   bash tools/fuzz.sh 300
# Crashes land in fuzz/out/<target>/default/crashes/. Copy each into
# fuzz/corpus/<target>/: tests/fuzz_replay.rs runs every corpus entry in the
# test suite, so the fix stays tested. New queue entries
# (fuzz/out/<target>/default/queue/) are worth adding the same way.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-60}"
cargo afl build --release
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_QUIET=1
status=0
for t in wire_parse capture_read reasm_ops defrag_ops bpf_run; do
  rm -rf "out/$t"; mkdir -p out
  timeout --preserve-status $((secs + 30)) cargo afl fuzz -V "$secs" -i "corpus/$t" -o "out/$t" "target/release/$t" >"out-$t.log" 2>&1 || true
  stats="out/$t/default/fuzzer_stats"
  execs=$(awk -F': ' '/^execs_done/ {print $2}' "$stats")
  crashes=$(awk -F': ' '/^saved_crashes/ {print $2}' "$stats")
  hangs=$(awk -F': ' '/^saved_hangs/ {print $2}' "$stats")
  edges=$(awk -F': ' '/^edges_found/ {print $2}' "$stats")
  echo "$t: ${execs} executions in ${secs} s, ${edges} edges, ${crashes} crashes, ${hangs} hangs"
  [ "${crashes}" = "0" ] && [ "${hangs}" = "0" ] || status=1
done
exit $status
