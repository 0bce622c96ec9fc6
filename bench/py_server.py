#!/usr/bin/env python3
"""The Python peer of the gRPC benchmark: topicd.v1.TopicClassifier/Classify served by grpcio with a
scikit-learn CountVectorizer + MultinomialNB (alpha=0.1) trained on the same data as topicd's model.

    py_server.py --train seeds/train.jsonl --pygen bench/out/pygen [--addr 127.0.0.1:0] [--workers 8]

The Python stubs are generated at run time (bench/run.sh: grpc_tools.protoc into --pygen). Prints
`listening on 127.0.0.1:PORT` once serving, like `topicd serve`; stops on SIGTERM or SIGINT.
Only Classify is implemented; the other methods answer UNIMPLEMENTED.
"""

import argparse
import json
import signal
import sys
import threading
from concurrent import futures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--pygen", required=True)
    ap.add_argument("--addr", default="127.0.0.1:0")
    ap.add_argument("--workers", type=int, default=8)
    a = ap.parse_args()

    sys.path.insert(0, a.pygen)
    import grpc
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from topicd.v1 import topicd_pb2, topicd_pb2_grpc

    texts, labels = [], []
    with open(a.train, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                texts.append(o["text"])
                labels.append(o.get("label") or o["labels"][0])
    vec = CountVectorizer()
    clf = MultinomialNB(alpha=0.1).fit(vec.fit_transform(texts), labels)
    classes = list(clf.classes_)
    version = "sklearn-mnb-alpha0.1"

    class Servicer(topicd_pb2_grpc.TopicClassifierServicer):
        def Classify(self, request, context):
            if not request.text.strip():
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "text is empty")
            proba = clf.predict_proba(vec.transform([request.text]))[0]
            order = sorted(range(len(classes)), key=lambda i: -proba[i])
            if request.top_k:
                order = order[: request.top_k]
            top = classes[order[0]]
            return topicd_pb2.ClassifyResponse(
                label=top,
                scores=[topicd_pb2.LabelScore(label=classes[i], probability=float(proba[i])) for i in order],
                tags=[top],
                model_version=version,
            )

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=a.workers))
    topicd_pb2_grpc.add_TopicClassifierServicer_to_server(Servicer(), server)
    host = a.addr.rsplit(":", 1)[0]
    port = server.add_insecure_port(a.addr)
    if port == 0:
        sys.exit(f"cannot bind {a.addr}")
    server.start()
    print(f"listening on {host}:{port}", flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
