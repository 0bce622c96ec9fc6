#!/usr/bin/env bash
# Counting-only training time of two bench-engine builds, alternating, on one training file.
#
#   bash bench/train_ab.sh OLD_BENCH_ENGINE NEW_BENCH_ENGINE [PAIRS] [TRAIN.jsonl]
#
# Runs `bench-engine --only train-count --runs 3` of the old build, then of the new one, PAIRS times
# (default 6), and prints each side's medians and the median of the pairs' new/old ratios. Alternating
# makes a change in machine load hit both sides alike; on this shared virtual machine two blocks of
# runs minutes apart differ more than most single changes do. Both builds must train the same model
# (compare the files `topicd train` writes with `cmp`) for the comparison to mean anything.
#
# To build the old side from an earlier commit:
#
#   git worktree add /tmp/topicd-old COMMIT
#   (cd /tmp/topicd-old && cargo build --release --features bench --example bench-engine)
#   cargo build --release --features bench --example bench-engine
#   bash bench/train_ab.sh /tmp/topicd-old/target/release/examples/bench-engine \
#     target/release/examples/bench-engine
#
# Environment: TOPICD_DATA (default ../shared/data/reuters21578 next to the repo); the default
# training file is its modapte90_train.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,21p' "$0"
  exit 0
fi
if [ $# -lt 2 ]; then
  echo "usage: bash bench/train_ab.sh OLD_BENCH_ENGINE NEW_BENCH_ENGINE [PAIRS] [TRAIN.jsonl] (see --help)" >&2
  exit 2
fi
OLD=$1
NEW=$2
PAIRS=${3:-6}
DATA=${TOPICD_DATA:-$PWD/../shared/data/reuters21578}
TRAIN=${4:-$DATA/modapte90_train.jsonl}
for bin in "$OLD" "$NEW"; do
  [ -x "$bin" ] || { echo "train_ab.sh: $bin is not an executable bench-engine build" >&2; exit 2; }
done
[ -f "$TRAIN" ] || { echo "train_ab.sh: no training file $TRAIN (set TOPICD_DATA)" >&2; exit 2; }

median_of() {
  "$1" --only train-count --train "$TRAIN" --runs 3 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["train_count_median_s"])'
}
results=()
for pair in $(seq 1 "$PAIRS"); do
  old=$(median_of "$OLD")
  new=$(median_of "$NEW")
  echo "pair $pair: old ${old} s, new ${new} s" >&2
  results+=("$old $new")
done
printf '%s\n' "${results[@]}" | python3 bench/pair_ratios.py s 3
