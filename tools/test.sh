#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, integration, corpus and
# doc tests, each criterion bench once (test mode), then the loom models of
# the ring, the arena and the live capture's block handoff. Needs only cargo; the corpus is found through
# WEFT_CORPUS (default ../shared/corpus) and skipped with a visible notice
# when absent, unless WEFT_REQUIRE_CORPUS=1.
#
# Each step has a time limit (generous: about ten times what it takes on a
# 2-core machine, build included), so a test that hangs fails the run
# instead of holding it until an outer limit.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs a step under a limit of $1 seconds; says so when the limit ends it.
limited() {
  local secs=$1
  shift
  local rc=0
  timeout -k 30 "$secs" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "FAILED: still running after ${secs}s (a hung test?): $*" >&2
  fi
  return "$rc"
}

echo "== cargo test (unit, integration, corpus, benches once)"
limited 1800 cargo test --workspace --all-targets
echo "== cargo test --doc"
limited 900 cargo test --workspace --doc
echo "== loom models (ring, arena)"
RUSTFLAGS="--cfg weft_loom -C debug_assertions" LOOM_MAX_PREEMPTIONS=2 \
  CARGO_TARGET_DIR=target/loom limited 1200 cargo test -p weft-ring -p weft-arena --release --test loom
echo "== loom model (live capture's block handoff)"
# A cfg of its own: under weft_loom the arena's buffer pool takes loom's Arc.
RUSTFLAGS="--cfg weft_loom_live -C debug_assertions" LOOM_MAX_PREEMPTIONS=2 \
  CARGO_TARGET_DIR=target/loom-live limited 900 cargo test -p weft-capture --release --lib loom_model
