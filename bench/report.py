#!/usr/bin/env python3
"""Turns the raw measurements of bench/run.sh into one table.

    report.py h2load RUN.txt LOG > RUN.json     parse one h2load run (its output and --log-file)
    report.py table --raw DIR --out DIR [--strict]
                                                 print the tables (medians, ratios, PASS/MISS) and
                                                 write OUT/results.md and OUT/results.json

Nothing here is measured or assumed: every number comes from a file of the same run.
"""

import argparse
import glob
import json
import os
import re
import statistics
import sys


# ---------------------------------------------------------------- h2load parsing

def parse_h2load(txt_path, log_path):
    text = open(txt_path, encoding="utf-8", errors="replace").read()
    out = {"client": "h2load"}
    m = re.search(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s", text)
    out["rps"] = float(m.group(3)) if m else None
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", text)
    if m:
        keys = ["total", "started", "done", "succeeded", "failed", "errored", "timeout"]
        out.update({k: int(v) for k, v in zip(keys, m.groups())})
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        out["status_2xx"] = int(m.group(1))
        out["status_other"] = sum(int(x) for x in m.groups()[1:])
    # Log rows: start time, HTTP status (-1 for a failed stream), microseconds. h2load now and then
    # logs one row with status 0 that it also counts as succeeded; those are reported apart.
    lat = []
    failed_rows = no_status = 0
    if os.path.exists(log_path):
        with open(log_path) as f:
            for line in f:
                parts = line.split("\t")
                if len(parts) < 3:
                    continue
                status = parts[1].strip()
                if status == "200":
                    lat.append(int(parts[2]))
                elif status == "0":
                    no_status += 1
                else:
                    failed_rows += 1
    lat.sort()
    out["logged"] = len(lat) + failed_rows + no_status
    out["rows_without_status"] = no_status
    out["errors"] = max(failed_rows, out.get("failed", 0) + out.get("errored", 0) + out.get("timeout", 0)) \
        + out.get("status_other", 0)
    if out["rps"] is None or not lat:
        out["errors"] = max(out["errors"], 1)
        out["problem"] = text.strip().splitlines()[-3:] if text.strip() else ["no output"]
    for p in (50, 90, 99):
        out[f"p{p}_ms"] = lat[round(p / 100 * (len(lat) - 1))] / 1e3 if lat else None
    return out


# ---------------------------------------------------------------- helpers

def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=4):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if digits == 0 or abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


class Doc:
    def __init__(self):
        self.lines = []
        self.targets = []

    def p(self, line=""):
        self.lines.append(line)

    def table(self, header, rows):
        self.p("| " + " | ".join(header) + " |")
        self.p("|" + "|".join("---" for _ in header) + "|")
        for r in rows:
            self.p("| " + " | ".join(str(c) for c in r) + " |")
        self.p()

    def target(self, what, value, ok, detail=""):
        verdict = "n/a" if ok is None else ("PASS" if ok else "MISS")
        self.targets.append({"target": what, "value": value, "verdict": verdict, "detail": detail})
        return verdict


# ---------------------------------------------------------------- sections

DATASETS = [("r8", "R8 (single-label, 8 labels)"), ("modapte90", "ModApte-90 (multi-label, 90 labels)")]


def accuracy_section(doc, raw, summary):
    doc.p("## Accuracy on the test sets")
    doc.p()
    doc.p("accuracy: top label right (R8: equal to the gold label; ModApte-90: among the gold labels); "
          "macro-F1: top label vs the gold (first) label, averaged over labels; tag micro/macro-F1: "
          "predicted tag sets vs the full gold label sets, macro over the labels. Same definitions for "
          "every system (those of `topicd eval`).")
    doc.p()
    for name, title in DATASETS:
        t = load(f"{raw}/topicd_eval_{name}.json")
        s = load(f"{raw}/sk_{name}.json") or {}
        if not t and not s:
            continue
        rows = []
        if t:
            rows.append(["topicd", "default settings (`topicd train`, internal CV)", fmt(t["accuracy"]),
                         fmt(t["macro_f1"]), fmt(t["tags"]["micro_f1"]), fmt(t["tags"]["macro_f1"])])
            summary.setdefault("accuracy", {})[name] = {"topicd": {
                "accuracy": t["accuracy"], "macro_f1": t["macro_f1"],
                "tag_micro_f1": t["tags"]["micro_f1"], "tag_macro_f1": t["tags"]["macro_f1"]}}

        def row(label, r, extra=""):
            if not r:
                return
            if "error" in r:
                rows.append([label, r["error"], "n/a", "n/a", "n/a", "n/a"])
                return
            rows.append([label, r["config"] + extra, fmt(r["accuracy"]), fmt(r["macro_f1"]),
                         fmt(r["tag_micro_f1"]), fmt(r["tag_macro_f1"])])
            summary.setdefault("accuracy", {}).setdefault(name, {})[label] = {
                k: r.get(k) for k in ("config", "accuracy", "macro_f1", "tag_micro_f1", "tag_macro_f1")}

        row("sklearn defaults", s.get("sklearn_default"))
        cv = s.get("sklearn_cv")
        row("sklearn, chosen by CV on train", cv, f" ({cv['cv_folds']}-fold)" if cv else "")
        row("fastText", s.get("fasttext"))
        pick = "tag micro-F1" if s.get("multilabel") else "accuracy"
        row("sklearn best on TEST (tuned on test)", s.get("sklearn_best_on_test"), f" (best {pick})")
        row("sklearn best on TEST (tuned on test)", s.get("sklearn_best_macro_on_test"), " (best tag macro-F1)")
        n = f"{t['n']} test docs" if t else ""
        doc.p(f"### {title}: {s.get('train_docs', '?')} train docs, {n}")
        doc.p()
        doc.table(["system", "configuration", "accuracy", "macro-F1", "tag micro-F1", "tag macro-F1"], rows)


def timing_section(doc, raw, summary):
    doc.p("## Training time (median of runs, in process)")
    doc.p()
    e0 = load(f"{raw}/engine_r8.json") or load(f"{raw}/engine_modapte90.json") or {}
    cv = f"{e0.get('default_folds', '?')}-fold internal CV over {len(e0.get('default_alpha_grid') or [])} alphas"
    doc.p(f"topicd: `Model::train` timed in process (bench/engine_bench.rs): default settings ({cv}, "
          "calibration, thresholds) and counting only (folds=0, no alpha grid), each kind after one "
          "untimed run, as scikit-learn's fit (runs at commit a5db6cd and earlier had no untimed run). "
          "sklearn: CountVectorizer fit_transform + MultinomialNB(alpha=0.1) fit (one-vs-rest for "
          "ModApte-90), one thread. fastText: supervised training with 2 threads (for scale only). "
          f"topicd uses the {os.cpu_count()} cores of this machine: chunks of documents are tokenized by "
          "a helper thread and, whenever the chunk it needs next is not ready, by the thread that "
          "assigns term ids; the counts are then added on two threads, the weights built on two, and "
          "the cross-validation folds and alpha candidates run in parallel; its results do not depend "
          "on the number of threads.")
    doc.p()
    rows = []
    for name, _ in DATASETS:
        e = load(f"{raw}/engine_{name}.json")
        s = load(f"{raw}/sk_{name}.json") or {}
        tm = s.get("timing")
        if not e or not tm:
            continue
        ft = (s.get("fasttext") or {}).get("train_s")
        speedup = ratio(tm["fit_median_s"], e["train_count_median_s"])
        rows.append([name, e["train_docs"], fmt(e["train_default_median_s"], 3), fmt(e["train_count_median_s"], 3),
                     fmt(tm["fit_median_s"], 3), fmt(ft, 2), f"{fmt(speedup, 2)}x",
                     f"{fmt(ratio(tm['fit_median_s'], e['train_default_median_s']), 2)}x"])
        summary.setdefault("training", {})[name] = {
            "topicd_default_s": e["train_default_median_s"], "topicd_count_s": e["train_count_median_s"],
            "sklearn_fit_s": tm["fit_median_s"], "fasttext_s": ft, "runs": e["runs"]}
    if rows:
        doc.table(["dataset", "train docs", "topicd default s", "topicd counting s", "sklearn fit s",
                   "fastText s", "sklearn / topicd counting", "sklearn / topicd default"], rows)
    pairs_section(doc, raw, summary)


def load_pair_files(raw, prefix):
    """The alternating pairs' outputs `{prefix}_{i}_topicd.json` / `{prefix}_{i}_sklearn.json`,
    i = 1, 2, …, as (topicd's JSON, sklearn's JSON) for each pair."""
    pairs = []
    for i in range(1, 1000):
        t, s = load(f"{raw}/{prefix}_{i}_topicd.json"), load(f"{raw}/{prefix}_{i}_sklearn.json")
        if not t or not s:
            break
        pairs.append((t, s))
    return pairs


def pair_figures(files, topicd_runs, topicd_median, sklearn_median):
    """(topicd's median, sklearn's median, topicd's number of runs) of each pair of `files`."""
    return [(t[topicd_median], s[sklearn_median], len(t[topicd_runs])) for t, s in files]


def pairs_section(doc, raw, summary):
    """Counting-only training against sklearn's fit, the two run alternately: the target's ratio."""
    rows = []
    for name, _ in DATASETS:
        files = load_pair_files(raw, f"pair_{name}")
        pairs = pair_figures(files, "train_count_s", "train_count_median_s", "fit_median_s")
        if not pairs:
            continue
        ratios = [ratio(s, t) for t, s, _ in pairs]
        m = med(ratios)
        v = doc.target(f"{name}: training >= 10x sklearn (topicd counting only vs sklearn vectorize+fit, "
                       "median of the alternating pairs)", m, m is not None and m >= 10)
        # The untimed first run of each process.
        firsts = pair_figures(files, "train_count_s", "train_count_first_s", "fit_first_s")
        first_ratios = [ratio(s, t) for t, s, _ in firsts]
        first = (f"{fmt(med([t for t, _, _ in firsts]), 3)} / {fmt(med([s for _, s, _ in firsts]), 3)}, "
                 f"{fmt(med(first_ratios), 2)}x")
        rows.append([name, len(pairs), pairs[0][2],
                     ", ".join(f"{fmt(t, 3)} / {fmt(s, 3)}" for t, s, _ in pairs),
                     ", ".join(f"{fmt(r, 1)}x" for r in ratios), fmt(med([t for t, _, _ in pairs]), 3),
                     fmt(med([s for _, s, _ in pairs]), 3), f"{fmt(m, 2)}x {v}", first])
        summary.setdefault("training_pairs", {})[name] = {
            "pairs": [{"topicd_count_s": t, "sklearn_fit_s": s} for t, s, _ in pairs],
            "ratios": ratios, "median_ratio": m,
            "first_runs": [{"topicd_count_s": t, "sklearn_fit_s": s} for t, s, _ in firsts],
            "first_run_median_ratio": med(first_ratios)}
    if rows:
        doc.p("### Training, the two sides alternating")
        doc.p()
        doc.p("The run times training once more for the target: topicd's counting-only training "
              "(`bench-engine --only train-count`) and scikit-learn's CountVectorizer + MultinomialNB fit "
              "(`sk_bench.py --only fit`) in turns, each pair one process of each right after the other "
              "(each side the median of its runs in that process), so that the machine's load moves both "
              "sides of a pair alike. The target's figure is the median of the pairs' ratios. Each process "
              "first trains once untimed, as the `eval` timings and criterion warm up first: topicd's first "
              "training in a process also pays for the kernel mapping the memory it touches for the first "
              "time, which later trainings reuse. The last column gives those first runs (medians over the "
              "pairs, and the median of their ratios); they are not what the target measures.")
        doc.p()
        doc.table(["dataset", "pairs", "timed runs per side", "topicd s / sklearn s, pair by pair",
                   "ratio per pair", "topicd median s", "sklearn median s",
                   "median ratio (>= 10x)", "first run: topicd s / sklearn s, ratio"], rows)

    doc.p("## Classification in process")
    doc.p()
    doc.p("Batch: every test document classified one after another on one thread (topicd `Model::classify`, "
          "default options) vs sklearn transform + predict_proba over the whole test set (one thread). "
          "Eval: the throughput `topicd eval` reports (`topicd::eval::evaluate`, all cores of this machine, "
          "wall clock). Latency: one short test document (at most 80 words) per call, median over the same "
          "documents for both; \"again\" times topicd's second call on each document right after an untimed "
          "first one (caches and branch predictors already hold that document).")
    doc.p()
    rows = []
    for name, _ in DATASETS:
        e = load(f"{raw}/engine_{name}.json")
        s = load(f"{raw}/sk_{name}.json") or {}
        tm = s.get("timing")
        if not e or not tm:
            continue
        tb, sb = e["batch_docs_per_s_median"], tm["batch_docs_per_s_median"]
        te = e.get("eval_docs_per_s_median")
        tl, sl = e["short_latency_us"]["median"], tm["short_latency_us"]["median"]
        again = (e.get("short_repeat_latency_us") or {}).get("median")
        vl = doc.target(f"{name}: <= 10 us per short document", tl, tl is not None and tl <= 10)
        rows.append([name, e["test_docs"], fmt(tb, 0), f"{fmt(te, 0)} ({e.get('eval_workers', '?')} threads)",
                     fmt(sb, 0), f"{fmt(ratio(tb, sb), 2)}x", f"{fmt(ratio(te, sb), 2)}x",
                     f"{fmt(tl, 1)} {vl}", fmt(e["short_latency_us"]["p99"], 1), fmt(again, 1), fmt(sl, 0),
                     f"{e['short_docs']} docs, median {fmt(e['short_words_median'], 0)} words"])
        summary.setdefault("classification", {})[name] = {
            "topicd_batch_docs_per_s": tb, "topicd_eval_docs_per_s": te, "sklearn_batch_docs_per_s": sb,
            "topicd_short_us_median": tl, "topicd_short_us_p99": e["short_latency_us"]["p99"],
            "topicd_short_us_again_median": again,
            "sklearn_short_us_median": sl}
    if rows:
        doc.table(["dataset", "test docs", "topicd batch docs/s", "topicd eval docs/s", "sklearn docs/s",
                   "batch / sklearn", "eval / sklearn",
                   "topicd us/short doc (<= 10)", "topicd p99 us", "topicd us, same doc again",
                   "sklearn us/short doc", "short docs"], rows)
    eval_pairs_section(doc, raw, summary)


def eval_pairs_section(doc, raw, summary):
    """`topicd eval` throughput against sklearn's batch predict, the two run alternately: the target."""
    rows = []
    for name, _ in DATASETS:
        pairs = pair_figures(load_pair_files(raw, f"evalpair_{name}"), "eval_docs_per_s",
                             "eval_docs_per_s_median", "batch_docs_per_s_median")
        if not pairs:
            continue
        ratios = [ratio(t, s) for t, s, _ in pairs]
        m = med(ratios)
        v = doc.target(f"{name}: eval throughput >= 10x sklearn batch predict (median of the alternating pairs)",
                       m, m is not None and m >= 10)
        rows.append([name, len(pairs), pairs[0][2],
                     ", ".join(f"{fmt(t, 0)} / {fmt(s, 0)}" for t, s, _ in pairs),
                     ", ".join(f"{fmt(r, 1)}x" for r in ratios), fmt(med([t for t, _, _ in pairs]), 0),
                     fmt(med([s for _, s, _ in pairs]), 0), f"{fmt(m, 2)}x {v}"])
        summary.setdefault("eval_pairs", {})[name] = {
            "pairs": [{"topicd_eval_docs_per_s": t, "sklearn_batch_docs_per_s": s} for t, s, _ in pairs],
            "ratios": ratios, "median_ratio": m}
    if rows:
        doc.p()
        doc.p("### Eval throughput, the two sides alternating")
        doc.p()
        doc.p("As for training: `topicd eval`'s throughput on the model `topicd train` wrote "
              "(`bench-engine --only eval`, all cores) and scikit-learn's batch transform + predict_proba "
              "(`sk_bench.py --only predict`, one thread, fitted untimed first) in turns, each side the "
              "median of its runs in its process. The target's figure is the median of the pairs' ratios.")
        doc.p()
        doc.table(["dataset", "pairs", "runs per side", "topicd docs/s / sklearn docs/s, pair by pair",
                   "ratio per pair", "topicd median docs/s", "sklearn median docs/s",
                   "median ratio (>= 10x)"], rows)


def grpc_section(doc, raw, summary):
    files = glob.glob(f"{raw}/grpc/*.json")
    if not files:
        return
    runs = {}
    for f in files:
        m = re.match(r"(h2load|rust)_c(\d+)_(\w+?)_r(\d+)\.json$", os.path.basename(f))
        if m:
            runs.setdefault((m.group(1), int(m.group(2)), m.group(3)), []).append(load(f) or {})
    serve = load(f"{raw}/serve_data.json") or {}
    rounds = max(len(v) for v in runs.values())
    try:
        words = len(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "request.txt")).read().split())
    except OSError:
        words = "?"
    doc.p("## gRPC Classify: topicd serve vs Python peer vs empty handler")
    doc.p()
    doc.p(f"Client and server share the same {os.cpu_count()} cores (loopback, 127.0.0.1). Median of {rounds} "
          "interleaved rounds (topicd, empty, peer, topicd, ...). One short request text (bench/request.txt, "
          f"{words} words); models trained on {serve.get('serve_train', '?')} ({serve.get('docs', '?')} docs). "
          "topicd: `topicd serve`, default settings. peer: grpcio + sklearn CountVectorizer/MultinomialNB "
          "(bench/py_server.py). empty: tonic server whose Classify returns an empty response "
          "(bench/empty_server.rs), the ceiling. h2load: `-t 1`, concurrency c = connections x streams "
          "(c <= 8: c connections; above: 8 connections x c/8 streams); h2load counts HTTP 200 only, the "
          "Rust client (bench/load_client.rs, one thread) counts gRPC status codes. Errors: non-OK calls.")
    doc.p()
    checks = {n: load(f"{raw}/check_{n}.json") for n in ("topicd", "empty", "peer")}
    doc.p("Real calls before the load (gRPC status OK): " + ", ".join(
        f"{n} {c['ok']}/{c['calls']} OK (label {c.get('label') or '-'!r})" for n, c in checks.items() if c))
    doc.p()
    rows = []
    agg = {}
    for client in ("h2load", "rust"):
        levels = sorted({lv for (c, lv, _) in runs if c == client})
        for lv in levels:
            for server in ("topicd", "empty", "peer"):
                rs = runs.get((client, lv, server), [])
                if not rs:
                    continue
                a = {"rps": med([r.get("rps") for r in rs]), "p50": med([r.get("p50_ms") for r in rs]),
                     "p99": med([r.get("p99_ms") for r in rs]), "errors": sum(r.get("errors") or 0 for r in rs),
                     "rounds": len(rs)}
                agg[(client, lv, server)] = a
                rows.append([client, lv, server, fmt(a["rps"], 0), fmt(a["p50"], 3), fmt(a["p99"], 3), a["errors"]])
    summary["grpc"] = [{"client": c, "concurrency": lv, "server": s, **a} for (c, lv, s), a in agg.items()]
    doc.table(["client", "c", "server", "req/s", "p50 ms", "p99 ms", "errors"], rows)

    rows = []
    p99_all = []
    for client in ("h2load", "rust"):
        for lv in sorted({lv for (c, lv, _) in agg if c == client}):
            t, e, p = (agg.get((client, lv, s)) for s in ("topicd", "empty", "peer"))
            if not t:
                continue
            re_ = ratio(t["rps"], e["rps"]) if e else None
            rp = ratio(t["rps"], p["rps"]) if p else None
            lower = (t["p99"] is not None and p and p["p99"] is not None and t["p99"] < p["p99"])
            p99_all.append(lower)
            rows.append([client, lv, f"{fmt(re_, 2)}x {'PASS' if re_ and re_ >= 0.7 else 'MISS'}",
                         f"{fmt(rp, 1)}x {'PASS' if rp and rp >= 50 else 'MISS'}",
                         f"{fmt(t['p99'], 3)} vs {fmt(p['p99'] if p else None, 3)} {'PASS' if lower else 'MISS'}"])
    doc.p("Ratios (targets: topicd >= 0.7x the empty handler's throughput, >= 50x the peer's, lower p99 "
          "than the peer at every concurrency):")
    doc.p()
    doc.table(["client", "c", "topicd / empty req/s", "topicd / peer req/s", "p99 ms topicd vs peer"], rows)

    primary = "h2load" if any(c == "h2load" for (c, _, _) in agg) else "rust"
    top = max(lv for (c, lv, _) in agg if c == primary)
    t, e, p = (agg.get((primary, top, s)) for s in ("topicd", "empty", "peer"))
    if t and e:
        r = ratio(t["rps"], e["rps"])
        doc.target(f"topicd >= 0.7x empty handler throughput ({primary}, c={top})", r, r is not None and r >= 0.7)
    if t and p:
        r = ratio(t["rps"], p["rps"])
        doc.target(f"topicd >= 50x Python peer throughput ({primary}, c={top})", r, r is not None and r >= 50)
    if p99_all:
        doc.target("topicd p99 lower than the peer's at every concurrency (both clients)",
                   f"{sum(p99_all)}/{len(p99_all)} levels", all(p99_all))
    errs = sum(a["errors"] for (c, lv, s), a in agg.items() if s == "topicd")
    doc.target("topicd: no failed Classify under load", errs, errs == 0)


def memory_section(doc, raw, summary):
    path = f"{raw}/memory.jsonl"
    if not os.path.exists(path):
        return
    mem = {}
    for line in open(path):
        if line.strip():
            o = json.loads(line)
            mem.setdefault(o["server"], {})[o["phase"]] = o
    doc.p("## Memory: peak RSS (VmHWM, /proc/PID/status)")
    doc.p()
    rows = []
    for server in ("topicd", "empty", "peer"):
        m = mem.get(server, {})
        mb = {ph: m[ph]["vmhwm_kb"] / 1024 for ph in m}
        rows.append([server] + [fmt(mb.get(ph), 1) for ph in ("loaded", "after-load", "after-swaps")])
    doc.table(["server", "MB after start (model loaded)", "MB after the load test", "MB after the hot-swap test"],
              rows)
    t = mem.get("topicd", {})
    if t:
        peak = max(v["vmhwm_kb"] for v in t.values()) / 1024
        doc.target("topicd serving peak RSS <= 50 MB (default settings model)", peak, peak <= 50)
    summary["memory_mb"] = {s: {ph: v["vmhwm_kb"] / 1024 for ph, v in m.items()} for s, m in mem.items()}


def swap_section(doc, raw, summary):
    steady = [load(f) for f in sorted(glob.glob(f"{raw}/swap_steady_r*.json"))]
    train = [load(f) for f in sorted(glob.glob(f"{raw}/swap_train_r*.json"))]
    steady, train = [s for s in steady if s], [s for s in train if s]
    if not steady or not train:
        return
    doc.p("## Hot swap under load (topicd, Rust client, 8 connections x 1 stream)")
    doc.p()
    t0 = next((r["train"] for r in train if r.get("train")), {})
    doc.p(f"Steady state vs the same load while another task sends an incremental Train ({t0.get('batch', '?')} "
          f"examples, bearer token) every {t0.get('every_s', '?')} s, each activating a new model; interleaved "
          "rounds, medians.")
    doc.p()
    rows = []
    out = {}
    for label, rs in (("steady", steady), ("with Train calls", train)):
        a = {"rps": med([r["rps"] for r in rs]), "p50": med([r["p50_ms"] for r in rs]),
             "p99": med([r["p99_ms"] for r in rs]), "errors": sum(r["errors"] for r in rs)}
        tr = [r.get("train") for r in rs if r.get("train")]
        a["train_ok"] = sum(x["ok"] for x in tr)
        a["train_errors"] = sum(x["errors"] for x in tr)
        a["train_median_ms"] = med([x.get("median_ms") for x in tr])
        first = next((x["first_error"] for x in tr if x.get("first_error")), None)
        out[label] = a
        rows.append([label, len(rs), fmt(a["rps"], 0), fmt(a["p50"], 3), fmt(a["p99"], 3), a["errors"],
                     f"{a['train_ok']} ok / {a['train_errors']} failed" + (f" ({first})" if first else "")
                     if tr else "-", fmt(a["train_median_ms"], 1) if tr else "-"])
    doc.table(["state", "rounds", "req/s", "p50 ms", "p99 ms", "Classify errors", "Train calls", "Train median ms"],
              rows)
    s, t = out["steady"], out["with Train calls"]
    errors = t["errors"] + t["train_errors"]
    doc.target("hot swap: no error (Classify and Train)", errors, errors == 0 and t["train_ok"] > 0,
               "" if t["train_ok"] > 0 else "no Train call succeeded")
    r = ratio(t["p99"], s["p99"])
    doc.target("hot swap: p99 <= 2x steady-state p99", r, r is not None and r <= 2)
    summary["hot_swap"] = out


def table(args):
    raw = args.raw
    env = load(f"{raw}/env.json") or {}
    doc = Doc()
    summary = {"env": env}
    doc.p(f"# topicd benchmarks ({env.get('mode', '?')} run, {env.get('date', '?')}, commit {env.get('commit', '?')})")
    doc.p()
    pk = env.get("packages", {})
    doc.p(f"Load average (1/5/15 min) at start: {env.get('loadavg', '?')}; at the end: "
          f"{open('/proc/loadavg').read().split()[:3] if os.path.exists('/proc/loadavg') else '?'} "
          "(anything else running on the machine shows here).")
    doc.p()
    doc.p(f"Machine: {env.get('nproc', '?')} cores, {env.get('cpu', '?')}, {env.get('memory', '?')} RAM, "
          f"Linux {env.get('kernel', '?')}. {env.get('rustc', '?')}; Python {env.get('python', '?')}, "
          + ", ".join(f"{k} {v}" for k, v in pk.items()) + f"; {env.get('h2load', '?')}.")
    doc.p()
    accuracy_section(doc, raw, summary)
    timing_section(doc, raw, summary)
    grpc_section(doc, raw, summary)
    memory_section(doc, raw, summary)
    swap_section(doc, raw, summary)

    doc.p("## Targets")
    doc.p()
    doc.table(["target", "measured", "verdict"],
              [[t["target"], fmt(t["value"], 2) + (f" ({t['detail']})" if t["detail"] else ""), t["verdict"]]
               for t in doc.targets])
    summary["targets"] = doc.targets
    text = "\n".join(doc.lines)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    misses = [t for t in doc.targets if t["verdict"] == "MISS"]
    print(f"\n{len(doc.targets) - len(misses)} targets met, {len(misses)} missed; written to "
          f"{os.path.join(args.out, 'results.md')}", file=sys.stderr)
    return 1 if args.strict and misses else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("h2load")
    h.add_argument("txt")
    h.add_argument("log")
    t = sub.add_parser("table")
    t.add_argument("--raw", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--strict", action="store_true")
    a = ap.parse_args()
    if a.cmd == "h2load":
        print(json.dumps(parse_h2load(a.txt, a.log)))
        return 0
    return table(a)


if __name__ == "__main__":
    sys.exit(main())
