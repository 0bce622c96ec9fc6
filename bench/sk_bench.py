#!/usr/bin/env python3
"""Reference numbers for topicd's benchmarks: scikit-learn naive Bayes and fastText on one dataset.

    sk_bench.py --name r8 --train F.jsonl --test F.jsonl --out OUT.json
                [--multilabel] [--runs 5] [--latency-rounds 5] [--cv-folds 5]
                [--max-train N] [--max-test N] [--fasttext-epoch 25] [--short-words 80]

Accuracy (test set): a grid of CountVectorizer/TfidfVectorizer x MultinomialNB/ComplementNB x
alpha in {0.01, 0.1, 0.3, 1}; single-label files use the classifier directly, multi-label files
(--multilabel) use OneVsRestClassifier over a MultiLabelBinarizer. Reported picks:
  * sklearn defaults: CountVectorizer + MultinomialNB alpha=1 (no choice made at all);
  * chosen by k-fold cross-validation on the train set (a fair pick);
  * best on the test set (tuned on the test set: an upper bound, not a fair comparison);
  * fastText supervised (softmax, or one-vs-all with a probability threshold chosen on a 10%
    hold-out of the train set for --multilabel).
The metrics are computed exactly as `topicd eval` computes them (see metrics() below).

Timing (median of --runs): vectorize+fit of CountVectorizer + MultinomialNB alpha=0.1 (one-vs-rest
for --multilabel; after one untimed fit, whose time is kept as fit_first_s), batch
transform+predict_proba over the test set, and the latency of transform+predict_proba on one short
test document (at most --short-words words).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.model_selection import KFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.naive_bayes import ComplementNB, MultinomialNB
from sklearn.preprocessing import MultiLabelBinarizer

ALPHAS = [0.01, 0.1, 0.3, 1.0]
VECTORIZERS = {"count": CountVectorizer, "tfidf": TfidfVectorizer}
MODELS = {"mnb": MultinomialNB, "cnb": ComplementNB}


def read_jsonl(path, limit):
    docs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            o = json.loads(line)
            labels = list(o.get("labels") or [])
            if o.get("label"):
                gold = o["label"]
                labels = [gold] + [l for l in labels if l != gold]
            docs.append((o["text"], labels, o.get("label")))
            if len(docs) >= limit:
                break
    return docs


def metrics(docs, tops, tags):
    """The metrics of `topicd eval` (src/eval.rs), for predictions given as labels.

    accuracy: top label right (equal to "label" when the line has one, else among "labels");
    macro_f1: mean F1 of the top label against the gold top label ("label", else the first of
    "labels") over every label seen as gold or predicted top; tags: micro/macro F1, precision and
    recall of the predicted tag sets against the full gold label sets, macro over every label seen
    in either.
    """
    right = 0
    top_t, tag_t = {}, {}

    def tally(d, k):
        return d.setdefault(k, [0, 0, 0])  # tp, fp, fn

    for (_, labels, label), top, tg in zip(docs, tops, tags):
        gold = label if label is not None else labels[0]
        ok = (top == label) if label is not None else (top in labels)
        right += ok
        if top == gold:
            tally(top_t, gold)[0] += 1
        else:
            tally(top_t, top)[1] += 1
            tally(top_t, gold)[2] += 1
        for t in tg:
            tally(tag_t, t)[0 if t in labels else 1] += 1
        for l in labels:
            if l not in tg:
                tally(tag_t, l)[2] += 1

    def f1(t):
        d = 2 * t[0] + t[1] + t[2]
        return 2 * t[0] / d if d else 0.0

    def mean(v):
        return sum(v) / max(len(v), 1)

    tp = sum(t[0] for t in tag_t.values())
    fp = sum(t[1] for t in tag_t.values())
    fn = sum(t[2] for t in tag_t.values())
    return {
        "n": len(docs),
        "accuracy": right / len(docs),
        "macro_f1": mean([f1(t) for t in top_t.values()]),
        "tag_micro_f1": f1([tp, fp, fn]),
        "tag_macro_f1": mean([f1(t) for t in tag_t.values()]),
        "tag_precision": tp / (tp + fp) if tp + fp else 0.0,
        "tag_recall": tp / (tp + fn) if tp + fn else 0.0,
    }


class NB:
    """One grid point: vectorizer + (one-vs-rest) naive Bayes."""

    def __init__(self, vec, model, alpha, multilabel):
        self.vec_name, self.model_name, self.alpha, self.multilabel = vec, model, alpha, multilabel

    def name(self):
        return f"{self.vec_name}+{self.model_name} alpha={self.alpha:g}"

    def classifier(self):
        c = MODELS[self.model_name](alpha=self.alpha)
        return OneVsRestClassifier(c) if self.multilabel else c


def targets(docs, multilabel, mlb=None):
    if multilabel:
        return mlb.transform([d[1] for d in docs])
    return np.array([d[2] if d[2] is not None else d[1][0] for d in docs])


def predict(clf, X, multilabel, classes):
    """Top labels and tag sets, as topicd reports them."""
    proba = clf.predict_proba(X)
    top_idx = np.asarray(proba).argmax(axis=1)
    tops = [classes[i] for i in top_idx]
    if multilabel:
        pred = clf.predict(X)
        pred = pred.toarray() if hasattr(pred, "toarray") else np.asarray(pred)
        tags = [[classes[j] for j in np.flatnonzero(row)] for row in pred]
    else:
        tags = [[t] for t in tops]
    return tops, tags


def fit_eval(point, X_train, y_train, X_test, test_docs, classes):
    clf = point.classifier()
    clf.fit(X_train, y_train)
    cls = list(classes) if point.multilabel else list(clf.classes_)
    tops, tags = predict(clf, X_test, point.multilabel, cls)
    return metrics(test_docs, tops, tags)


def selection_score(m, multilabel):
    return m["tag_micro_f1"] if multilabel else m["accuracy"]


def grid(train, test, multilabel, mlb):
    """Every grid point trained on train, measured on test."""
    rows = []
    y_train = targets(train, multilabel, mlb)
    classes = mlb.classes_ if multilabel else None
    for vec_name, Vec in VECTORIZERS.items():
        vec = Vec()
        X_train = vec.fit_transform([d[0] for d in train])
        X_test = vec.transform([d[0] for d in test])
        for model_name in MODELS:
            for alpha in ALPHAS:
                p = NB(vec_name, model_name, alpha, multilabel)
                m = fit_eval(p, X_train, y_train, X_test, test, classes)
                rows.append({"config": p.name(), "vectorizer": vec_name, "model": model_name,
                             "alpha": alpha, **m})
    return rows


def cross_validate(train, multilabel, mlb, folds):
    """Mean selection score of every grid point over k folds of the train set."""
    scores = {}
    kf = KFold(n_splits=folds, shuffle=True, random_state=0)
    idx = np.arange(len(train))
    for tr, va in kf.split(idx):
        fold_train = [train[i] for i in tr]
        fold_val = [train[i] for i in va]
        y_tr = targets(fold_train, multilabel, mlb)
        classes = mlb.classes_ if multilabel else None
        for vec_name, Vec in VECTORIZERS.items():
            vec = Vec()
            X_tr = vec.fit_transform([d[0] for d in fold_train])
            X_va = vec.transform([d[0] for d in fold_val])
            for model_name in MODELS:
                for alpha in ALPHAS:
                    p = NB(vec_name, model_name, alpha, multilabel)
                    if multilabel:
                        # A label absent from this fold's train part cannot be fitted one-vs-rest.
                        keep = np.asarray(y_tr).sum(axis=0) > 0
                        clf = p.classifier()
                        clf.fit(X_tr, y_tr[:, keep])
                        cls = [c for c, k in zip(mlb.classes_, keep) if k]
                        tops, tags = predict(clf, X_va, True, cls)
                    else:
                        clf = p.classifier()
                        clf.fit(X_tr, y_tr)
                        tops, tags = predict(clf, X_va, False, list(clf.classes_))
                    m = metrics(fold_val, tops, tags)
                    scores.setdefault(p.name(), []).append(selection_score(m, multilabel))
    return {k: float(np.mean(v)) for k, v in scores.items()}


def ft_line(text):
    return " ".join(text.replace("\n", " ").split())


def fasttext_run(train, test, multilabel, epoch, threads):
    import fasttext  # imported here so that a broken wheel only loses this row

    def write(docs, path):
        with open(path, "w", encoding="utf-8") as f:
            for text, labels, label in docs:
                labs = labels if multilabel else [label if label is not None else labels[0]]
                f.write(" ".join("__label__" + l for l in labs) + " " + ft_line(text) + "\n")

    params = dict(lr=0.5, epoch=epoch, wordNgrams=2, dim=100, minCount=1, thread=threads,
                  loss="ova" if multilabel else "softmax", seed=1, verbose=0)

    def predict_all(model, docs):
        tops, probs = [], []
        for text, _, _ in docs:
            pairs = model.f.predict(ft_line(text) + "\n", -1, 0.0, "strict")
            pairs = [(p, l[len("__label__"):]) for p, l in pairs]
            tops.append(pairs[0][1] if pairs else "")
            probs.append(pairs)
        return tops, probs

    with tempfile.TemporaryDirectory() as tmp:
        threshold = None
        if multilabel:
            # Threshold chosen on a 10% hold-out of the train set (never on the test set).
            rng = np.random.default_rng(0)
            order = rng.permutation(len(train))
            cut = max(1, len(train) // 10)
            hold = [train[i] for i in order[:cut]]
            rest = [train[i] for i in order[cut:]]
            write(rest, os.path.join(tmp, "rest.txt"))
            m = fasttext.train_supervised(input=os.path.join(tmp, "rest.txt"), **params)
            _, probs = predict_all(m, hold)
            best = None
            for th in [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]:
                tags = [[l for p, l in ps if p >= th] for ps in probs]
                tops = [ps[0][1] if ps else "" for ps in probs]
                s = metrics(hold, tops, tags)["tag_micro_f1"]
                if best is None or s > best[0]:
                    best = (s, th)
            threshold = best[1]
        write(train, os.path.join(tmp, "train.txt"))
        t0 = time.perf_counter()
        model = fasttext.train_supervised(input=os.path.join(tmp, "train.txt"), **params)
        seconds = time.perf_counter() - t0
        tops, probs = predict_all(model, test)
        if multilabel:
            tags = [[l for p, l in ps if p >= threshold] for ps in probs]
        else:
            tags = [[t] for t in tops]
        m = metrics(test, tops, tags)
    cfg = f"fastText {params['loss']} lr=0.5 epoch={epoch} wordNgrams=2"
    if threshold is not None:
        cfg += f" threshold={threshold:g} (chosen on a train hold-out)"
    return {"config": cfg, "train_s": seconds, "threads": threads, **m}


def fit_seconds(texts, y, multilabel):
    """One timed CountVectorizer fit_transform + MultinomialNB(alpha=0.1) fit; returns (s, vec, clf)."""
    t0 = time.perf_counter()
    vec = CountVectorizer()
    X = vec.fit_transform(texts)
    clf = NB("count", "mnb", 0.1, multilabel).classifier()
    clf.fit(X, y)
    return time.perf_counter() - t0, vec, clf


def timed_fits(texts, y, multilabel, runs):
    """One untimed fit, as bench-engine starts its trainings, then `runs` timed ones: (the untimed
    fit's seconds, the timed fits' seconds, the last fit's vectorizer and classifier)."""
    first_s = fit_seconds(texts, y, multilabel)[0]
    fit_s = []
    vec = clf = None
    for _ in range(runs):
        seconds, vec, clf = fit_seconds(texts, y, multilabel)
        fit_s.append(seconds)
    return first_s, fit_s, vec, clf


def batch_rates(vec, clf, test_texts, runs):
    """Documents per second of transform + predict_proba over the whole test set: one untimed pass,
    then `runs` timed ones."""
    clf.predict_proba(vec.transform(test_texts)).argmax(axis=1)
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = clf.predict_proba(vec.transform(test_texts))
        p.argmax(axis=1)
        rates.append(len(test_texts) / (time.perf_counter() - t0))
    return rates


def timing(train, test, multilabel, mlb, runs, latency_rounds, short_words, latency_docs):
    """CountVectorizer + MultinomialNB alpha=0.1: fit time, batch throughput, one-document latency."""
    texts = [d[0] for d in train]
    y = targets(train, multilabel, mlb)
    test_texts = [d[0] for d in test]
    fit_first_s, fit_s, vec, clf = timed_fits(texts, y, multilabel, runs)
    batch = batch_rates(vec, clf, test_texts, runs)
    short = [t for t in test_texts if len(t.split()) <= short_words]
    # Evenly spread sample of the short documents (one-vs-rest over 90 labels takes ms per call).
    if len(short) > latency_docs:
        step = len(short) / latency_docs
        short = [short[int(i * step)] for i in range(latency_docs)]
    lat = []
    for _ in range(latency_rounds):
        for t in short:
            t0 = time.perf_counter()
            clf.predict_proba(vec.transform([t])).argmax(axis=1)
            lat.append((time.perf_counter() - t0) * 1e6)
    lat.sort()

    def pct(p):
        return lat[round(p / 100 * (len(lat) - 1))] if lat else None

    return {
        "config": "count+mnb alpha=0.1" + (" one-vs-rest" if multilabel else ""),
        "fit_first_s": fit_first_s,
        "fit_s": fit_s,
        "fit_median_s": statistics.median(fit_s),
        "batch_docs_per_s": batch,
        "batch_docs_per_s_median": statistics.median(batch),
        "short_docs": len(short),
        "short_latency_us": {"samples": len(lat), "median": pct(50), "p90": pct(90), "p99": pct(99)},
    }


def main():
    # One-vs-rest warns about labels absent from a (subset's) train part; they get a constant predictor.
    warnings.filterwarnings("ignore", category=UserWarning)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--multilabel", action="store_true")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--latency-rounds", type=int, default=5)
    ap.add_argument("--cv-folds", type=int, default=5)
    ap.add_argument("--max-train", type=int, default=sys.maxsize)
    ap.add_argument("--max-test", type=int, default=sys.maxsize)
    ap.add_argument("--fasttext-epoch", type=int, default=25)
    ap.add_argument("--fasttext-threads", type=int, default=2)
    ap.add_argument("--short-words", type=int, default=80)
    ap.add_argument("--latency-docs", type=int, default=sys.maxsize,
                    help="at most this many short documents in the latency loop")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: grid,cv,fasttext,timing")
    ap.add_argument("--only", choices=["fit", "predict"],
                    help="fit: one untimed fit (fit_first_s), then time --runs fits and nothing else (fit_s, "
                         "fit_median_s); bench/run.sh "
                         "alternates these with topicd's `bench-engine --only train-count`. predict: "
                         "fit once untimed, then time --runs batch predicts (batch_docs_per_s, "
                         "batch_docs_per_s_median), alternated with `bench-engine --only eval`")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))

    train = read_jsonl(a.train, a.max_train)
    test = read_jsonl(a.test, a.max_test)
    mlb = None
    if a.multilabel:
        mlb = MultiLabelBinarizer()
        mlb.fit([d[1] for d in train] + [d[1] for d in test])
    out = {"name": a.name, "train_docs": len(train), "test_docs": len(test), "multilabel": a.multilabel}
    if a.only == "fit":
        texts, y = [d[0] for d in train], targets(train, a.multilabel, mlb)
        out["fit_first_s"], out["fit_s"], _, _ = timed_fits(texts, y, a.multilabel, a.runs)
        out["fit_median_s"] = statistics.median(out["fit_s"])
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
        return
    if a.only == "predict":
        _, vec, clf = fit_seconds([d[0] for d in train], targets(train, a.multilabel, mlb), a.multilabel)
        out["batch_docs_per_s"] = batch_rates(vec, clf, [d[0] for d in test], a.runs)
        out["batch_docs_per_s_median"] = statistics.median(out["batch_docs_per_s"])
        with open(a.out, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
        return

    def log(msg):
        print(f"[sk_bench {a.name}] {msg}", file=sys.stderr, flush=True)

    if "grid" not in skip:
        t0 = time.perf_counter()
        rows = grid(train, test, a.multilabel, mlb)
        out["grid"] = rows
        out["sklearn_default"] = next(r for r in rows if r["config"] == "count+mnb alpha=1")
        best = max(rows, key=lambda r: selection_score(r, a.multilabel))
        out["sklearn_best_on_test"] = best
        if a.multilabel:
            out["sklearn_best_macro_on_test"] = max(rows, key=lambda r: r["tag_macro_f1"])
        log(f"grid: {len(rows)} points in {time.perf_counter() - t0:.1f} s; best on test {best['config']}")
        if "cv" not in skip and a.cv_folds >= 2:
            t0 = time.perf_counter()
            cv = cross_validate(train, a.multilabel, mlb, a.cv_folds)
            pick = max(cv, key=cv.get)
            row = next(r for r in rows if r["config"] == pick)
            out["sklearn_cv"] = {**row, "cv_folds": a.cv_folds, "cv_score": cv[pick]}
            log(f"{a.cv_folds}-fold CV on train picked {pick} in {time.perf_counter() - t0:.1f} s")
    if "fasttext" not in skip:
        try:
            t0 = time.perf_counter()
            out["fasttext"] = fasttext_run(train, test, a.multilabel, a.fasttext_epoch, a.fasttext_threads)
            log(f"fastText in {time.perf_counter() - t0:.1f} s")
        except Exception as e:  # report, do not hide
            out["fasttext"] = {"error": f"{type(e).__name__}: {e}"}
            log(f"fastText failed: {e}")
    if "timing" not in skip:
        out["timing"] = timing(train, test, a.multilabel, mlb, a.runs, a.latency_rounds, a.short_words,
                               a.latency_docs)
        log("timing done")
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
