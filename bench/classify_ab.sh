#!/usr/bin/env bash
# Classification speed of two bench-engine builds, alternating, on one Reuters set.
#
#   bash bench/classify_ab.sh OLD_BENCH_ENGINE NEW_BENCH_ENGINE [PAIRS] [SET]
#
# Runs `bench-engine --runs 1` of the old build, then of the new one, PAIRS times (default 5), on
# SET (modapte90 or r8, default modapte90), and prints for each side the medians of the short-document
# latency (first and repeated call), `eval` throughput and single-thread batch throughput, and the
# median of the pairs' new/old ratios. Alternating makes a change in machine load hit both sides
# alike (see train_ab.sh). Build the old side as train_ab.sh's help shows.
#
# Environment: TOPICD_DATA (default ../shared/data/reuters21578 next to the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,12p' "$0"
  exit 0
fi
if [ $# -lt 2 ]; then
  echo "usage: bash bench/classify_ab.sh OLD_BENCH_ENGINE NEW_BENCH_ENGINE [PAIRS] [SET] (see --help)" >&2
  exit 2
fi
OLD=$1
NEW=$2
PAIRS=${3:-5}
SET=${4:-modapte90}
DATA=${TOPICD_DATA:-$PWD/../shared/data/reuters21578}
for bin in "$OLD" "$NEW"; do
  [ -x "$bin" ] || { echo "classify_ab.sh: $bin is not an executable bench-engine build" >&2; exit 2; }
done
for part in train test; do
  [ -f "$DATA/${SET}_$part.jsonl" ] || { echo "classify_ab.sh: no $DATA/${SET}_$part.jsonl (set TOPICD_DATA)" >&2; exit 2; }
done

measure() {
  "$1" --train "$DATA/${SET}_train.jsonl" --test "$DATA/${SET}_test.jsonl" --runs 1 2>/dev/null |
    python3 -c 'import json, sys
d = json.load(sys.stdin)
print(d["short_latency_us"]["median"], d["short_repeat_latency_us"]["median"],
      d["eval_docs_per_s_median"], d["batch_docs_per_s_median"])'
}
results=()
for pair in $(seq 1 "$PAIRS"); do
  old=$(measure "$OLD")
  new=$(measure "$NEW")
  echo "pair $pair: old $old | new $new" >&2
  results+=("$old $new")
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin if line.strip()]
names = ["short-document latency (us)", "repeated call latency (us)", "eval docs/s", "batch docs/s (1 thread)"]
print(f"pairs: {len(rows)}")
for i, name in enumerate(names):
    old = [r[i] for r in rows]
    new = [r[4 + i] for r in rows]
    ratios = [n / o for o, n in zip(old, new)]
    print(f"{name}: old {statistics.median(old):.1f}, new {statistics.median(new):.1f}, "
          f"new/old median of the pairs {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})")
'
