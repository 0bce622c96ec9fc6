#!/usr/bin/env bash
# Instructions and mispredicted branches per classified document, counted by callgrind's simulation.
#
#   bash bench/instructions.sh                  the current build (cargo build --release first)
#   bash bench/instructions.sh BIN [BIN ...]    given topicd binaries, side by side
#
# A low-noise complement to run.sh: on a shared virtual machine the wall clock of the same build
# varies more from run to run than most single optimisations change it, while instruction counts move
# by well under 1% between runs and mispredictions by a few percent (`topicd eval` classifies on both
# cores, and the order in which valgrind interleaves the two threads changes what the simulated
# predictor has seen and which malloc paths run). Only `Model::classify` is counted (not reading files or loading the model),
# default settings, on the Reuters test sets and on their short documents (at most 80 words,
# the documents run.sh's latency figure uses). To compare with an older commit, build it elsewhere:
#
#   git worktree add /tmp/topicd-old COMMIT && (cd /tmp/topicd-old && cargo build --release)
#   bash bench/instructions.sh /tmp/topicd-old/target/release/topicd target/release/topicd
#
# Needs valgrind (installed with apt-get when missing) and python3. Environment: TOPICD_DATA (default
# ../shared/data/reuters21578 next to the repo). Writes bench/out/instructions.md; about 3 minutes per
# binary.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=${TOPICD_DATA:-$ROOT/../shared/data/reuters21578}
OUT=$ROOT/bench/out
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,22p' "$0"
  exit 0
fi
for file in r8_train r8_test modapte90_train modapte90_test; do
  if [ ! -f "$DATA/$file.jsonl" ]; then
    echo "instructions.sh: $DATA/$file.jsonl not found; set TOPICD_DATA to the reuters21578 folder" >&2
    exit 2
  fi
done
if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
  echo "installing valgrind" >&2
  apt-get install -y valgrind >/dev/null
fi

BINARIES=("$@")
if [ ${#BINARIES[@]} -eq 0 ]; then
  cargo build --release --quiet
  BINARIES=("${CARGO_TARGET_DIR:-$ROOT/target}/release/topicd")
fi

# The short documents: at most 80 words, as in run.sh's latency measurement.
for set in r8 modapte90; do
  python3 - "$DATA/${set}_test.jsonl" "$WORK/${set}_short.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as dst:
    for line in src:
        if len(json.loads(line)["text"].split()) <= 80:
            dst.write(line)
EOF
done

mkdir -p "$OUT"
REPORT=$OUT/instructions.md
{
  echo "Per document, in \`Model::classify\` only (callgrind): instructions executed, and the"
  echo "conditional plus indirect branches its branch simulation mispredicted."
  echo
  echo "| binary | documents | docs | instructions / doc | mispredicted branches / doc |"
  echo "|---|---|---|---|---|"
} >"$REPORT"

n=0
for bin in "${BINARIES[@]}"; do
  n=$((n + 1))
  models=$WORK/models$n
  mkdir -p "$models"
  for set in r8 modapte90; do
    echo "binary $n: training $set" >&2
    "$bin" train --data "$DATA/${set}_train.jsonl" --out "$models/$set.model" >/dev/null 2>&1
    for part in test short; do
      if [ "$part" = test ]; then data=$DATA/${set}_test.jsonl; else data=$WORK/${set}_short.jsonl; fi
      echo "binary $n: callgrind on $set $part" >&2
      profile=$WORK/callgrind.$n.$set.$part
      valgrind --tool=callgrind --branch-sim=yes --toggle-collect='*Model::classify*' \
        --callgrind-out-file="$profile" "$bin" eval --model "$models/$set.model" --data "$data" \
        >/dev/null 2>"$WORK/valgrind.log"
      docs=$(wc -l <"$data")
      # PROGRAM TOTALS: Ir Bc Bcm Bi Bim
      callgrind_annotate --auto=no "$profile" 2>/dev/null | awk -v bin="$bin" -v set="$set" -v part="$part" -v docs="$docs" '
        /PROGRAM TOTALS/ {
          n = 0
          for (i = 1; i <= NF; i++) if ($i ~ /^[0-9,]+$/) { gsub(",", "", $i); v[++n] = $i }
          name = (part == "test") ? set " test" : set " short (<= 80 words)"
          printf "| %s | %s | %d | %.0f | %.0f |\n", bin, name, docs, v[1] / docs, (v[3] + v[5]) / docs
        }' >>"$REPORT"
    done
  done
done
cat "$REPORT"
