#!/usr/bin/env bash
# `eval` throughput of two bench-engine builds, alternating, on one Reuters set's saved model.
#
#   bash bench/eval_ab.sh OLD_BENCH_ENGINE NEW_BENCH_ENGINE [PAIRS] [SET] [RUNS]
#
# Trains SET's model once (modapte90 or r8, default r8) with target/release/topicd into a temporary
# directory, then runs `bench-engine --only eval --runs RUNS` (default 10) of the old build, then of
# the new one, PAIRS times (default 20), and prints each side's median and the median of the pairs'
# new/old ratios. classify_ab.sh times `eval` once per process, next to the other measures; this
# script times only `eval`, many times, which is what a change of a few percent needs on this shared
# machine. Both builds must read the same model format. Build the old side as train_ab.sh's help shows.
#
# Environment: TOPICD_DATA (default ../shared/data/reuters21578 next to the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,13p' "$0"
  exit 0
fi
if [ $# -lt 2 ]; then
  echo "usage: bash bench/eval_ab.sh OLD_BENCH_ENGINE NEW_BENCH_ENGINE [PAIRS] [SET] [RUNS] (see --help)" >&2
  exit 2
fi
OLD=$1
NEW=$2
PAIRS=${3:-20}
SET=${4:-r8}
RUNS=${5:-10}
DATA=${TOPICD_DATA:-$PWD/../shared/data/reuters21578}
for bin in "$OLD" "$NEW"; do
  [ -x "$bin" ] || { echo "eval_ab.sh: $bin is not an executable bench-engine build" >&2; exit 2; }
done
[ -x target/release/topicd ] || { echo "eval_ab.sh: build target/release/topicd first (cargo build --release)" >&2; exit 2; }
[ -f "$DATA/${SET}_train.jsonl" ] || { echo "eval_ab.sh: no data at $DATA (set TOPICD_DATA)" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
target/release/topicd train --data "$DATA/${SET}_train.jsonl" --out "$WORK/model" 2> "$WORK/train.log"
rate() {
  "$1" --only eval --model "$WORK/model" --test "$DATA/${SET}_test.jsonl" --runs "$RUNS" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["eval_docs_per_s_median"])'
}
results=()
for pair in $(seq 1 "$PAIRS"); do
  old=$(rate "$OLD")
  new=$(rate "$NEW")
  echo "pair $pair: old $old docs/s, new $new docs/s" >&2
  results+=("$old $new")
done
printf '%s\n' "${results[@]}" | python3 bench/pair_ratios.py docs/s 0
