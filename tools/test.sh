#!/usr/bin/env bash
# Runs every test of the workspace: unit, property, integration, corpus and
# doc tests, each criterion bench once (test mode), then the loom models of
# the ring and the arena. Needs only cargo; the corpus is found through
# WEFT_CORPUS (default ../shared/corpus) and skipped with a visible notice
# when absent, unless WEFT_REQUIRE_CORPUS=1.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (unit, integration, corpus, benches once)"
cargo test --workspace --all-targets
echo "== cargo test --doc"
cargo test --workspace --doc
echo "== loom models (ring, arena)"
RUSTFLAGS="--cfg weft_loom -C debug_assertions" LOOM_MAX_PREEMPTIONS=2 \
  CARGO_TARGET_DIR=target/loom cargo test -p weft-ring -p weft-arena --release --test loom
