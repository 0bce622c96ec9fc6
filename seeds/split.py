#!/usr/bin/env python3
"""Builds seeds/train.jsonl and seeds/dev.jsonl from the authored files in seeds/parts/.

The split is fixed by each article's id: an article goes to dev when the first byte of the SHA-256 of
its id, modulo 5, is 0 (about 20%). Adding articles never moves an existing one between the files.
Every line is checked (non-empty text, 40-300 words, labels drawn from the four topics, unique ids).
Usage: python3 seeds/split.py
"""

import hashlib
import json
import pathlib
import sys

TOPICS = {"security", "economy", "climate", "sanctions"}
HERE = pathlib.Path(__file__).resolve().parent


def is_dev(article_id: str) -> bool:
    return hashlib.sha256(article_id.encode("utf-8")).digest()[0] % 5 == 0


def main() -> int:
    seen = set()
    train, dev = [], []
    for part in sorted((HERE / "parts").glob("*.jsonl")):
        for number, line in enumerate(part.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{part.name}:{number}"
            article = json.loads(line)
            text, labels, article_id = article.get("text", ""), article.get("labels", []), article.get("id")
            words = len(text.split())
            problems = []
            if not article_id or article_id in seen:
                problems.append(f"missing or duplicate id {article_id!r}")
            if not labels or not set(labels) <= TOPICS or len(set(labels)) != len(labels):
                problems.append(f"labels {labels!r} must be distinct topics from {sorted(TOPICS)}")
            if not 40 <= words <= 300:
                problems.append(f"{words} words (40-300 allowed)")
            if problems:
                print(f"{where}: " + "; ".join(problems), file=sys.stderr)
                return 1
            seen.add(article_id)
            record = {"id": article_id, "text": text, "labels": labels}
            (dev if is_dev(article_id) else train).append(record)
    for name, records in (("train.jsonl", train), ("dev.jsonl", dev)):
        with open(HERE / name, "w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"train.jsonl: {len(train)} articles, dev.jsonl: {len(dev)} articles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
