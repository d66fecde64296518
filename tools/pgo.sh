#!/usr/bin/env bash
# Builds weft-replay with profile-guided optimisation (PGO): an instrumented
# build replays training traffic, and the final build is laid out by the
# profile it recorded (which calls to inline, which branches to put on the
# straight path). Callgrind counts about a fifth fewer instructions than the
# plain release build of the same source on the 110 MB capture of
# benches/README.md and on the shared corpus; benches/README.md and the
# README say which build each figure comes from.
#
#   bash tools/pgo.sh            builds target/pgo/use/release/weft-replay
#   bash tools/pgo.sh --check    ... then checks its digests: against ground
#                                truth (sample.pcap and generated traffic,
#                                inline and on workers), and against the
#                                instrumented build's on every capture of
#                                the shared corpus (WEFT_CORPUS, default
#                                ../shared/corpus) when it is there
#
# The training traffic is weft-gen's, made here from fixed seeds other than
# the benchmark captures': short and long connections, reordering,
# duplicates, overlaps, capture loss, timestamps, IPv6, VLANs and tunnels,
# and a little hostile traffic, replayed inline, on fanout workers and
# through rings, with and without digests. The same generator makes the
# benchmark captures, so the corpus instruction counts (real traffic) are
# the check that the profile is not one of the generated mix alone.
#
# Needs llvm-profdata of the compiler's own LLVM version: rustup's
# llvm-tools component, Debian's llvm-N, or WEFT_LLVM_PROFDATA; one of the
# first two is installed when none is there. RUSTFLAGS, if set, is kept and
# applies to both builds; CARGO_ENCODED_RUSTFLAGS is refused (it would
# replace the profile flags).
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
if [ -n "${CARGO_ENCODED_RUSTFLAGS:-}" ]; then
  echo "pgo.sh: CARGO_ENCODED_RUSTFLAGS is set; unset it (RUSTFLAGS is kept)" >&2
  exit 2
fi

out="$PWD/target/pgo"
logs="$out/logs"
mkdir -p "$logs"

# Runs a step under a time limit of $1 seconds, its standard output into
# file $2 and its standard error into log $3; shows the log's end and fails
# when the step fails or overruns.
into() {
  local secs=$1 to=$2 log="$logs/$3"
  shift 3
  local rc=0
  timeout -k 10 "$secs" "$@" >"$to" 2>"$log" || rc=$?
  if [ "$rc" -ne 0 ]; then
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      echo "pgo.sh: still running after ${secs}s: $*" >&2
    else
      echo "pgo.sh: failed (exit $rc): $*" >&2
    fi
    tail -n 20 "$log" >&2
    exit 1
  fi
}

# `into`, both outputs into log $2.
step() {
  local secs=$1 log=$2
  shift 2
  into "$secs" "$logs/$log.out" "$log" "$@"
  cat "$logs/$log.out" >>"$logs/$log"
}

# The profile-flag builds: the user's RUSTFLAGS (split on spaces, as cargo
# does) and the profile flag, encoded so that a path with spaces survives.
build_with() {
  local flag=$1 dir=$2 log=$3 encoded="" f
  for f in ${RUSTFLAGS:-}; do
    encoded+="$f"$'\x1f'
  done
  encoded+="$flag"
  step 1800 "$log" env -u RUSTFLAGS CARGO_ENCODED_RUSTFLAGS="$encoded" \
    CARGO_TARGET_DIR="$dir" cargo build --release -p weft-replay
}

# llvm-profdata of the LLVM the compiler was built with (same major version).
major="$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
[ -n "$major" ] || {
  echo "pgo.sh: rustc -vV names no LLVM version" >&2
  exit 1
}
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
if ! find_profdata >/dev/null; then
  echo "== no llvm-profdata for LLVM $major: rustup component add llvm-tools"
  timeout 120 rustup component add llvm-tools >"$logs/llvm-tools.log" 2>&1 || true
fi
if ! find_profdata >/dev/null && command -v apt-get >/dev/null; then
  echo "== ... or Debian's llvm-$major"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y --no-install-recommends "llvm-$major" ||
    { apt-get update && apt-get install -y --no-install-recommends "llvm-$major"; }; } \
    >>"$logs/llvm-tools.log" 2>&1 || true
fi
profdata="$(find_profdata)" || {
  echo "pgo.sh: no llvm-profdata for LLVM $major (rustup component add llvm-tools, or Debian's llvm-$major); see $logs/llvm-tools.log" >&2
  exit 1
}
echo "== llvm-profdata: $profdata"
"$profdata" --version | grep -q "LLVM version $major\." || {
  echo "pgo.sh: $profdata is not of LLVM $major" >&2
  exit 1
}

echo "== training traffic (weft-gen)"
step 1200 gen-build.log cargo build --release -p weft-gen
# Name, then weft-gen's arguments. A capture is made again when its
# arguments changed; it is written under a temporary name and moved into
# place with its truth only once both are whole.
train="$out/train"
mkdir -p "$train"
names=()
while read -r name args; do
  names+=("$name")
  if [ -f "$train/$name.pcap" ] && [ -f "$train/$name.truth" ] &&
    [ "$(cat "$train/$name.args" 2>/dev/null)" = "$args" ]; then
    continue
  fi
  rm -f "$train/$name".*
  # shellcheck disable=SC2086 # the arguments are words
  step 600 "gen-$name.log" cargo run --release --quiet -p weft-gen -- $args \
    --out "$train/$name.pcap.part" --truth "$train/$name.truth.part"
  mv "$train/$name.pcap.part" "$train/$name.pcap"
  mv "$train/$name.truth.part" "$train/$name.truth"
  echo "$args" >"$train/$name.args"
done <<'EOF'
mixed --seed 101 --conns 3000 --concurrent 1500 --min-bytes 200 --max-bytes 40000 --exchanges 3 --reorder 0.02 --duplicate 0.01 --overlap 0.005 --loss 0.002
short --seed 102 --conns 20000 --concurrent 8000 --min-bytes 1 --max-bytes 3000 --exchanges 4 --reorder 0.01 --fin-data 0.3 --syn-data 0.1
long --seed 103 --conns 500 --concurrent 100 --min-bytes 1000 --max-bytes 100000 --exchanges 2 --timestamps --reorder 0.005 --ipv6-fraction 0.3
tunnels --seed 104 --conns 2000 --concurrent 500 --tunnel-fraction 0.3 --networks 4 --vlan-fraction 0.3 --tuple-pool 300 --reorder 0.01 --jitter-ns 2000
flood --seed 105 --conns 20 --concurrent 20 --hostile ooo-flood --flood-segments 5000 --hostile-fraction 0.5
EOF

echo "== instrumented build"
rm -rf "$out/raw"
build_with "-Cprofile-generate=$out/raw" "$out/gen" build-gen.log
instrumented="$out/gen/release/weft-replay"
echo "== training runs"
for name in "${names[@]}"; do
  for mode in "--inline" "-w 2" "-w 2 --dispatch ring" "--inline --digest" "-w 2 --digest"; do
    # shellcheck disable=SC2086 # the mode is words
    step 600 "train-$name.log" "$instrumented" $mode "$train/$name.pcap"
  done
done
step 300 merge.log "$profdata" merge -o "$out/weft.profdata" "$out/raw"

echo "== optimised build"
build_with "-Cprofile-use=$out/weft.profdata" "$out/use" build-use.log
bin="$out/use/release/weft-replay"
echo "built $bin"

if $check; then
  echo "== checking the optimised build's digests"
  same() {
    cmp -s "$1" "$2" || {
      echo "pgo.sh: digests differ: $3" >&2
      diff "$1" "$2" | head -n 10 >&2
      exit 1
    }
  }
  got="$out/check"
  mkdir -p "$got"
  into 60 "$got/sample" check.log "$bin" --digest tests/data/sample.pcap
  same "$got/sample" tests/data/sample.truth "sample.pcap against its truth"
  for name in mixed short long tunnels; do
    for mode in "--inline" "-w 3" "-w 2 --dispatch ring"; do
      # shellcheck disable=SC2086 # the mode is words
      into 600 "$got/$name" check.log "$bin" $mode --digest "$train/$name.pcap"
      same "$got/$name" "$train/$name.truth" "$mode $name against its truth"
    done
  done
  corpus="${WEFT_CORPUS:-../shared/corpus}"
  if [ -d "$corpus" ]; then
    n=0
    for f in "$corpus"/*.pcap "$corpus"/*.pcapng "$corpus"/*.gz; do
      [ -f "$f" ] || continue
      # Either build's exit status (some captures end damaged) must agree too.
      a=0 b=0
      timeout 120 "$instrumented" --digest "$f" >"$got/a" 2>/dev/null || a=$?
      timeout 120 "$bin" --digest "$f" >"$got/b" 2>/dev/null || b=$?
      if [ "$a" -ne "$b" ] || [ "$a" -eq 124 ]; then
        echo "pgo.sh: exit $b against the instrumented build's $a: $f" >&2
        exit 1
      fi
      same "$got/a" "$got/b" "$f against the instrumented build"
      n=$((n + 1))
    done
    echo "the corpus: $n captures, the same digests as the instrumented build"
  elif [ "${WEFT_REQUIRE_CORPUS:-0}" = 1 ]; then
    echo "pgo.sh: the corpus is not at $corpus and WEFT_REQUIRE_CORPUS=1" >&2
    exit 1
  else
    echo "the corpus: not found at $corpus, not compared (skipped)"
  fi
  echo "the optimised build's digests equal the truth"
fi
