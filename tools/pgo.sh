#!/usr/bin/env bash
# Builds weft-replay with profile-guided optimisation (PGO): an instrumented
# build replays training traffic, and the final build is laid out by the
# profile it recorded. On the 1.1 GB capture of benches/README.md it runs
# about a fifth fewer instructions than the plain release build (callgrind);
# the README's tables say which build each figure comes from.
#
#   bash tools/pgo.sh            builds target/pgo/use/release/weft-replay
#   bash tools/pgo.sh --check    ... then checks its digests against ground
#                                truth (sample.pcap and generated traffic),
#                                inline and on workers
#
# The training traffic is weft-gen's, made here from fixed seeds, with
# shapes unlike the benchmark captures' (their seeds and sizes are never
# used): short and long connections, reordering, duplicates, overlaps,
# capture loss, timestamps, IPv6, VLANs and tunnels, and a little hostile
# traffic, replayed inline, on fanout workers and through rings, with and
# without digests. Needs llvm-profdata of the compiler's own LLVM version
# (rustup's llvm-tools component or Debian's llvm-N package; one of them is
# added here when neither is there).
set -euo pipefail
cd "$(dirname "$0")/.."
check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *)
    echo "usage: tools/pgo.sh [--check]" >&2
    exit 2
    ;;
esac

out="$PWD/target/pgo"
# llvm-profdata of the LLVM the compiler was built with (same major
# version): WEFT_LLVM_PROFDATA, rustup's llvm-tools, or Debian's llvm-N;
# added (rustup, else apt-get) when none is there.
major="$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
find_profdata() {
  local tool
  for tool in "${WEFT_LLVM_PROFDATA:-}" \
    "$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata" \
    "/usr/lib/llvm-$major/bin/llvm-profdata"; do
    if [ -n "$tool" ] && [ -x "$tool" ]; then
      echo "$tool"
      return 0
    fi
  done
  return 1
}
if ! profdata="$(find_profdata)"; then
  echo "== no llvm-profdata for LLVM $major: rustup component add llvm-tools"
  if ! timeout 300 rustup component add llvm-tools || ! profdata="$(find_profdata)"; then
    echo "== ... or apt-get install llvm-$major"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "llvm-$major" >/dev/null || true
  fi
fi
profdata="$(find_profdata)" || {
  echo "pgo.sh: no llvm-profdata for LLVM $major (rustup component add llvm-tools, or Debian's llvm-$major)" >&2
  exit 1
}
echo "== llvm-profdata: $profdata"

echo "== training traffic (weft-gen)"
cargo build --release --quiet -p weft-gen
gen=target/release/weft-gen
train="$out/train"
mkdir -p "$train"
# name, then weft-gen's arguments; every capture has a truth file.
while read -r name args; do
  [ -f "$train/$name.pcap" ] && [ -f "$train/$name.truth" ] && continue
  # shellcheck disable=SC2086 # the arguments are words
  "$gen" $args --out "$train/$name.pcap" --truth "$train/$name.truth" 2>/dev/null
done <<'EOF'
mixed --seed 101 --conns 3000 --concurrent 1500 --min-bytes 200 --max-bytes 40000 --exchanges 3 --reorder 0.02 --duplicate 0.01 --overlap 0.005 --loss 0.002
short --seed 102 --conns 20000 --concurrent 8000 --min-bytes 1 --max-bytes 3000 --exchanges 4 --reorder 0.01 --fin-data 0.3 --syn-data 0.1
long --seed 103 --conns 500 --concurrent 100 --min-bytes 1000 --max-bytes 100000 --exchanges 2 --timestamps --reorder 0.005 --ipv6-fraction 0.3
tunnels --seed 104 --conns 2000 --concurrent 500 --tunnel-fraction 0.3 --networks 4 --vlan-fraction 0.3 --tuple-pool 300 --reorder 0.01 --jitter-ns 2000
flood --seed 105 --conns 20 --concurrent 20 --hostile ooo-flood --flood-segments 5000 --hostile-fraction 0.5
EOF

echo "== instrumented build"
rm -rf "$out/raw"
RUSTFLAGS="-Cprofile-generate=$out/raw" CARGO_TARGET_DIR="$out/gen" \
  cargo build --release --quiet -p weft-replay
echo "== training runs"
for f in "$train"/*.pcap; do
  for mode in "--inline" "-w 2" "-w 2 --dispatch ring" "--inline --digest" "-w 2 --digest"; do
    # shellcheck disable=SC2086 # the mode is words
    "$out/gen/release/weft-replay" $mode "$f" >/dev/null 2>&1 || {
      echo "pgo.sh: the instrumented replay failed: $mode $f" >&2
      exit 1
    }
  done
done
"$profdata" merge -o "$out/weft.profdata" "$out/raw"

echo "== optimised build"
RUSTFLAGS="-Cprofile-use=$out/weft.profdata" CARGO_TARGET_DIR="$out/use" \
  cargo build --release --quiet -p weft-replay
bin="$out/use/release/weft-replay"
echo "built $bin"

if $check; then
  echo "== checking the optimised build against ground truth"
  "$bin" --digest tests/data/sample.pcap | cmp - tests/data/sample.truth
  for name in mixed short long tunnels; do
    for mode in "--inline" "-w 3" "-w 2 --dispatch ring"; do
      # shellcheck disable=SC2086 # the mode is words
      "$bin" $mode --digest "$train/$name.pcap" 2>/dev/null | cmp - "$train/$name.truth" || {
        echo "pgo.sh: the optimised build's digests differ from the truth: $mode $name" >&2
        exit 1
      }
    done
  done
  echo "the optimised build's digests equal the truth"
fi
