#!/usr/bin/env bash
# Serving memory of `topicd serve` with the shipped default model, in about a minute: the peak and
# current resident set (VmHWM, VmRSS from /proc/PID/status) right after start, after 5 s of Classify
# load, and after SECONDS (default 30) more seconds of the same load while an incremental Train of
# 4 seed examples arrives every second (each saves and activates a new model: the hot swaps of
# bench/run.sh, without the rest of the benchmark).
#
#   bash bench/memory.sh [SECONDS]
#
# Builds topicd and the load client (`cargo build --release --features bench`), works on a copy of
# models/ in a temporary directory, listens on 127.0.0.1 only and stops the server on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_OF_SWAPS=${1:-30}
cargo build --release --features bench --bin topicd --example bench-load >&2
BIN=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cp -r models "$WORK/models"
TOKEN=memory-$(od -An -tx8 -N8 /dev/urandom | tr -d ' \n')
TOPICD_TRAIN_TOKEN=$TOKEN "$BIN/topicd" serve --addr 127.0.0.1:0 --model-dir "$WORK/models" \
  > "$WORK/stdout" 2> "$WORK/stderr" &
PID=$!
ADDR=""
for _ in $(seq 1 300); do
  ADDR=$(sed -n 's/^listening on //p' "$WORK/stdout" | head -n 1)
  [ -n "$ADDR" ] && break
  kill -0 "$PID" 2>/dev/null || { tail -n 20 "$WORK/stderr" >&2; exit 1; }
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "memory.sh: topicd did not start listening" >&2; exit 1; }

memory() {  # phase
  awk -v p="$1" '/^VmHWM|^VmRSS/ {v[$1]=$2} END {printf "%-24s VmHWM %7d kB (%.1f MiB)   VmRSS %7d kB (%.1f MiB)\n", p, v["VmHWM:"], v["VmHWM:"]/1024, v["VmRSS:"], v["VmRSS:"]/1024}' \
    "/proc/$PID/status"
}
load() {  # seconds, extra options
  local seconds=$1
  shift
  "$BIN/examples/bench-load" load --addr "http://$ADDR" --text-file bench/request.txt \
    --connections 8 --concurrency 8 --duration "$seconds" --warmup 1 "$@" > "$WORK/load.json"
}
sleep 0.5
memory "after start"
load 5
memory "after Classify load"
load "$SECONDS_OF_SWAPS" --train-every 1 --train-data seeds/train.jsonl --train-batch 4 --token "$TOKEN"
memory "after the hot swaps"
python3 -c 'import json, sys; t = json.load(open(sys.argv[1])).get("train") or {}; print("Train calls: %s ok, %s failed, median %.0f ms" % (t.get("ok"), t.get("errors"), t.get("median_ms") or 0))' "$WORK/load.json"
