#!/usr/bin/env bash
# topicd benchmarks: one entry point (see BENCHMARKS.md).
#
#   bash bench/run.sh            full run (about 15-20 minutes on 2 cores)
#   bash bench/run.sh --quick    smoke run on small subsets (about 2 minutes after the build)
#
# Options: --quick, --skip-grpc (only accuracy and in-process timing), --strict (exit 1 when a
# target is missed; by default only errors fail the run), --help.
# Environment: TOPICD_DATA (default ../shared/data/reuters21578 next to the repo), TOPICD_TRAIN_TOKEN
# (bearer token for the hot-swap Train calls; a random one by default).
#
# Installs what it needs: a venv at bench/.venv (scikit-learn, numpy, grpcio, grpcio-tools,
# fasttext-wheel), h2load (apt-get nghttp2-client) when missing, and `cargo build --release` of topicd
# and the bench tools. Writes bench/out/results.md, bench/out/results.json and raw JSON in
# bench/out/raw/. Every server it starts listens on 127.0.0.1 only and is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MODE=full
SKIP_GRPC=0
STRICT=0
for arg in "$@"; do
  case "$arg" in
    --quick) MODE=quick ;;
    --skip-grpc) SKIP_GRPC=1 ;;
    --strict) STRICT=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

DATA=${TOPICD_DATA:-$ROOT/../shared/data/reuters21578}
OUT=$ROOT/bench/out
RAW=$OUT/raw
WORK=$OUT/work
VENV=$ROOT/bench/.venv
PY=$VENV/bin/python
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
TOKEN=${TOPICD_TRAIN_TOKEN:-bench-$(od -An -tx8 -N8 /dev/urandom | tr -d ' \n')}
STARTED=$(date +%s)

if [ "$MODE" = quick ]; then
  R8_TRAIN=1500 R8_TEST=600 MA_TRAIN=1500 MA_TEST=600
  RUNS=2 LAT_ROUNDS=2 LAT_DOCS=50 CV_FOLDS=2 FT_EPOCH=5 PAIRS=2 PAIR_RUNS=1
  LEVELS="1 32" ROUNDS=1 DUR=2 WARM=1 SWAP_ROUNDS=1 SWAP_DUR=4 SERVE_MAX=600
else
  R8_TRAIN=all R8_TEST=all MA_TRAIN=all MA_TEST=all
  RUNS=5 LAT_ROUNDS=5 LAT_DOCS=300 CV_FOLDS=5 FT_EPOCH=25 PAIRS=5 PAIR_RUNS=3
  LEVELS="1 8 32 128" ROUNDS=3 DUR=5 WARM=1 SWAP_ROUNDS=3 SWAP_DUR=10 SERVE_MAX=all
fi

step() { printf '\n== %s (%ds)\n' "$*" "$(( $(date +%s) - STARTED ))" >&2; }

# ---------------------------------------------------------------- cleanup: every server we start
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One run at a time: a second run would overwrite bench/out and share the cores with this one.
mkdir -p "$OUT"
exec 9> "$OUT/.lock"
if ! flock -n 9; then
  echo "run.sh: another bench/run.sh is running; waiting for it (at most 30 minutes)" >&2
  flock -w 1800 9 || { echo "run.sh: gave up waiting for the other run" >&2; exit 1; }
fi

# ---------------------------------------------------------------- setup
step "setup"
[ -f "$DATA/r8_train.jsonl" ] || { echo "run.sh: no data at $DATA (set TOPICD_DATA)" >&2; exit 1; }
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  source "$HOME/.cargo/env"
fi
if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
fi
if ! "$PY" -c 'import sklearn, numpy, scipy, grpc, grpc_tools, fasttext' 2>/dev/null; then
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$PY" -m pip install --quiet --disable-pip-version-check scikit-learn numpy grpcio grpcio-tools fasttext-wheel
fi
if [ "$SKIP_GRPC" = 0 ] && ! command -v h2load >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client) >&2 \
      || echo "run.sh: could not install h2load; the h2load rows will be missing" >&2
  else
    echo "run.sh: h2load missing and not root; the h2load rows will be missing" >&2
  fi
fi
cargo build --release --features bench --bin topicd \
  --example bench-engine --example bench-empty-server --example bench-load >&2

rm -rf "$RAW" "$WORK"
mkdir -p "$RAW" "$WORK"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

"$PY" - "$RAW/env.json" "$MODE" <<'EOF'
import json, os, platform, subprocess, sys, datetime
from importlib.metadata import version
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except Exception as e:
        return f"unavailable ({e.__class__.__name__})"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?")
pk = {}
for p in ["scikit-learn", "numpy", "scipy", "grpcio", "grpcio-tools", "fasttext-wheel"]:
    try: pk[p] = version(p)
    except Exception: pk[p] = "missing"
json.dump({
    "mode": sys.argv[2],
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "nproc": os.cpu_count(), "cpu": cpu, "memory": mem, "kernel": platform.release(),
    "rustc": sh("rustc", "-V"), "python": platform.python_version(), "packages": pk,
    "h2load": sh("h2load", "--version"), "loadavg": open("/proc/loadavg").read().split()[:3], "commit": sh("git", "rev-parse", "--short", "HEAD"),
}, open(sys.argv[1], "w"), indent=1)
EOF

# subset FILE N OUT: the first N lines (all when N is "all").
subset() {
  if [ "$2" = all ]; then cp "$1" "$3"; else head -n "$2" "$1" > "$3"; fi
}

# ---------------------------------------------------------------- accuracy and in-process timing
run_dataset() {  # name train test max_train max_test multilabel(0/1)
  local name=$1 train=$WORK/$1_train.jsonl test=$WORK/$1_test.jsonl ml=()
  subset "$2" "$4" "$train"
  subset "$3" "$5" "$test"
  [ "$6" = 1 ] && ml=(--multilabel)
  step "$name: topicd train + eval (CLI, default settings)"
  "$BIN/topicd" train --data "$train" --out "$WORK/$name.model" 2> "$WORK/topicd_train_$name.log"
  "$BIN/topicd" eval --model "$WORK/$name.model" --data "$test" --json > "$RAW/topicd_eval_$name.json"
  step "$name: topicd in-process timing (bench-engine)"
  "$BIN/examples/bench-engine" --train "$train" --test "$test" --runs "$RUNS" \
    --latency-rounds "$LAT_ROUNDS" --latency-docs "$LAT_DOCS" > "$RAW/engine_$name.json"
  step "$name: scikit-learn and fastText"
  "$PY" "$ROOT/bench/sk_bench.py" --name "$name" "${ml[@]}" --train "$train" --test "$test" \
    --out "$RAW/sk_$name.json" --runs "$RUNS" --latency-rounds "$LAT_ROUNDS" --latency-docs "$LAT_DOCS" \
    --cv-folds "$CV_FOLDS" --fasttext-epoch "$FT_EPOCH"
  # Training time once more, the two sides alternating (topicd, sklearn, topicd, …), so that a
  # change in the machine's load during the run hits both sides of each pair's ratio alike.
  step "$name: training, topicd counting and scikit-learn fit alternating ($PAIRS pairs)"
  local i
  for i in $(seq 1 "$PAIRS"); do
    "$BIN/examples/bench-engine" --only train-count --train "$train" --runs "$PAIR_RUNS" \
      > "$RAW/pair_${name}_${i}_topicd.json"
    "$PY" "$ROOT/bench/sk_bench.py" --only fit --name "$name" "${ml[@]}" --train "$train" --test "$test" \
      --runs "$PAIR_RUNS" --out "$RAW/pair_${name}_${i}_sklearn.json"
  done
  # The same for classification throughput: `topicd eval`'s rate on the model trained above and
  # scikit-learn's batch predict, in turns.
  step "$name: eval throughput, topicd eval and scikit-learn batch predict alternating ($PAIRS pairs)"
  for i in $(seq 1 "$PAIRS"); do
    "$BIN/examples/bench-engine" --only eval --model "$WORK/$name.model" --test "$test" \
      --runs "$PAIR_RUNS" > "$RAW/evalpair_${name}_${i}_topicd.json"
    "$PY" "$ROOT/bench/sk_bench.py" --only predict --name "$name" "${ml[@]}" --train "$train" \
      --test "$test" --runs "$PAIR_RUNS" --out "$RAW/evalpair_${name}_${i}_sklearn.json"
  done
}
run_dataset r8 "$DATA/r8_train.jsonl" "$DATA/r8_test.jsonl" "$R8_TRAIN" "$R8_TEST" 0
run_dataset modapte90 "$DATA/modapte90_train.jsonl" "$DATA/modapte90_test.jsonl" "$MA_TRAIN" "$MA_TEST" 1

# ---------------------------------------------------------------- gRPC
# start_server NAME CMD...: starts CMD in the background, waits for `listening on ADDR`, and sets
# NAME_PID and NAME_ADDR.
start_server() {
  local name=$1 pid addr=""
  shift
  "$@" > "$WORK/$name.stdout" 2> "$WORK/$name.stderr" &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 600); do
    addr=$(sed -n 's/^listening on //p' "$WORK/$name.stdout" | head -n 1)
    [ -n "$addr" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run.sh: server $name exited before listening:" >&2
      tail -n 20 "$WORK/$name.stderr" >&2
      return 1
    fi
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "run.sh: server $name did not print 'listening on' within 60 s" >&2; return 1; }
  printf -v "${name}_PID" '%s' "$pid"
  printf -v "${name}_ADDR" '%s' "$addr"
  echo "$name: pid $pid, listening on $addr" >&2
}

memory() {  # phase: VmHWM and VmRSS of every server
  local name pid
  for name in topicd empty peer; do
    pid=${name}_PID
    pid=${!pid}
    awk -v s="$name" -v p="$1" '/^VmHWM|^VmRSS/ {v[$1]=$2} END {printf "{\"server\":\"%s\",\"phase\":\"%s\",\"vmhwm_kb\":%d,\"vmrss_kb\":%d}\n", s, p, v["VmHWM:"], v["VmRSS:"]}' \
      "/proc/$pid/status" >> "$RAW/memory.jsonl"
  done
}

if [ "$SKIP_GRPC" = 0 ]; then
  step "gRPC: model, stubs and servers"
  SERVE_SRC=$ROOT/seeds/train.jsonl
  [ -s "$SERVE_SRC" ] || SERVE_SRC=$DATA/r8_train.jsonl
  SERVE_TRAIN=$WORK/serve_train.jsonl
  subset "$SERVE_SRC" "$SERVE_MAX" "$SERVE_TRAIN"
  echo "{\"serve_train\": \"${SERVE_SRC#"$ROOT"/}\", \"docs\": $(wc -l < "$SERVE_TRAIN")}" > "$RAW/serve_data.json"
  "$BIN/topicd" train --data "$SERVE_TRAIN" --out "$WORK/models" 2> "$WORK/topicd_train_serve.log"
  mkdir -p "$WORK/pygen"
  "$PY" -m grpc_tools.protoc -I "$ROOT/proto" --python_out="$WORK/pygen" --grpc_python_out="$WORK/pygen" \
    "$ROOT/proto/topicd/v1/topicd.proto"
  "$BIN/examples/bench-load" frame --text-file "$ROOT/bench/request.txt" --out "$WORK/body.bin"

  TOPICD_TRAIN_TOKEN=$TOKEN start_server topicd "$BIN/topicd" serve --addr 127.0.0.1:0 --model-dir "$WORK/models"
  start_server empty "$BIN/examples/bench-empty-server" --addr 127.0.0.1:0
  start_server peer "$PY" "$ROOT/bench/py_server.py" --train "$SERVE_TRAIN" --pygen "$WORK/pygen" --addr 127.0.0.1:0
  sleep 1
  memory loaded

  for name in topicd empty peer; do
    addr=${name}_ADDR
    "$BIN/examples/bench-load" check --addr "http://${!addr}" --text-file "$ROOT/bench/request.txt" \
      > "$RAW/check_$name.json" || { echo "run.sh: $name did not answer Classify with OK:" >&2; cat "$RAW/check_$name.json" >&2; exit 1; }
  done

  mkdir -p "$RAW/grpc"
  for round in $(seq 1 "$ROUNDS"); do
    for level in $LEVELS; do
      if [ "$level" -le 8 ]; then conns=$level streams=1; else conns=8 streams=$((level / 8)); fi
      for name in topicd empty peer; do
        addr=${name}_ADDR
        addr=${!addr}
        step "gRPC round $round/$ROUNDS, concurrency $level, $name"
        if command -v h2load >/dev/null 2>&1; then
          base=$RAW/grpc/h2load_c${level}_${name}_r${round}
          rm -f "$WORK/h2load.log"
          h2load -c "$conns" -m "$streams" -t 1 -D "$DUR" --warm-up-time="$WARM" -d "$WORK/body.bin" \
            -H 'content-type: application/grpc' -H 'te: trailers' --log-file="$WORK/h2load.log" \
            "http://$addr/topicd.v1.TopicClassifier/Classify" > "$base.txt" 2>&1 || true
          "$PY" "$ROOT/bench/report.py" h2load "$base.txt" "$WORK/h2load.log" > "$base.json"
          awk -F'\t' '$2 != 200' "$WORK/h2load.log" > "$base.non200.log" 2>/dev/null || true
        fi
        "$BIN/examples/bench-load" load --addr "http://$addr" --text-file "$ROOT/bench/request.txt" \
          --connections "$conns" --concurrency "$level" --duration "$DUR" --warmup "$WARM" \
          > "$RAW/grpc/rust_c${level}_${name}_r${round}.json"
      done
    done
  done
  memory after-load

  for round in $(seq 1 "$SWAP_ROUNDS"); do
    step "hot swap round $round/$SWAP_ROUNDS: steady state, then Train every second"
    "$BIN/examples/bench-load" load --addr "http://$topicd_ADDR" --text-file "$ROOT/bench/request.txt" \
      --connections 8 --concurrency 8 --duration "$SWAP_DUR" --warmup "$WARM" > "$RAW/swap_steady_r$round.json"
    "$BIN/examples/bench-load" load --addr "http://$topicd_ADDR" --text-file "$ROOT/bench/request.txt" \
      --connections 8 --concurrency 8 --duration "$SWAP_DUR" --warmup "$WARM" \
      --train-every 1 --train-data "$SERVE_TRAIN" --train-batch 4 --token "$TOKEN" > "$RAW/swap_train_r$round.json"
  done
  memory after-swaps
  cleanup
fi

step "report"
strict=()
[ "$STRICT" = 1 ] && strict=(--strict)
"$PY" "$ROOT/bench/report.py" table --raw "$RAW" --out "$OUT" "${strict[@]}"
