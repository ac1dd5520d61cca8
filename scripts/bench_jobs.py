#!/usr/bin/env python3
"""The users' jobs (issue 14) measured in one sitting on faces-512-cos (13,233 faces × 512, cosine):

1. face search, n_results 1/5/10, one query per call: `shoal serve` and the 3-node cluster
   (Cluster/launch.sh) through the Python client, NumPy brute force, chromadb in-process:
   p50 latency, recall against the exact neighbours, and how often the top hit is the
   query's own identity;
2. leave-one-out kNN accuracy (k = 5, majority) over every stored face: Shoal's
   `evaluate_classifier` (serve and cluster) next to the same loop written with chromadb
   (query k + 1, drop the point itself, vote), with the time each took.

Run it with an interpreter that has chromadb (and grpcio, numpy), e.g. a venv with
`pip install chromadb==1.5.9`:

    SHOAL_BIN=.build/release/shoal /path/to/venv/bin/python scripts/bench_jobs.py --data .build-test-data
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "Clients", "python"))
sys.path.insert(0, os.path.join(ROOT, "Examples"))
from bench_serving import LaunchedCluster, Serve, indexing_lag, upsert_retrying  # noqa: E402
from face_search import measure  # noqa: E402

K = 5


def vote(labels):
    """Majority over labels nearest first; a tie goes to the label seen first (the nearer)."""
    counts, first = {}, {}
    for rank, label in enumerate(labels):
        counts[label] = counts.get(label, 0) + 1
        first.setdefault(label, rank)
    return max(counts, key=lambda label: (counts[label], -first[label]))


def chroma_loo(chroma, base, labels, batch=200):
    correct = 0
    started = time.perf_counter()
    for start in range(0, len(base), batch):
        rows = base[start:start + batch]
        reply = chroma.query(query_embeddings=rows.tolist(), n_results=K + 1, include=["metadatas"])
        for offset, (ids, metas) in enumerate(zip(reply["ids"], reply["metadatas"])):
            own = str(start + offset)
            kept = [m["person"] for i, m in zip(ids, metas) if i != own][:K]
            correct += vote(kept) == int(labels[start + offset])
    return {"accuracy": round(correct / len(base), 4), "seconds": round(time.perf_counter() - started, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, ".build-test-data"))
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--out", help="also write the figures as JSON here")
    args = ap.parse_args()
    import chromadb
    import shoal
    folder = os.path.join(args.data, "faces-512-cos")
    base, labels = np.load(os.path.join(folder, "base.npy")), np.load(os.path.join(folder, "labels.npy"))
    queries = np.load(os.path.join(folder, "queries.npy"))[:args.queries]
    query_labels = np.load(os.path.join(folder, "query_labels.npy"))[:args.queries]
    unit = base / np.linalg.norm(base, axis=1, keepdims=True)
    exact_ids = np.argsort(-(queries @ unit.T), axis=1)[:, :10]
    figures = {"dataset": "faces-512-cos", "points": len(base), "queries": len(queries), "search": {}, "leave_one_out": {}}

    systems, started = {}, []
    try:
        for system in (Serve(), LaunchedCluster()):
            system.start()
            started.append(system)
            client = shoal.Client(system.address, timeout=600)
            col = client.create_collection("faces", dimension=base.shape[1], metric="cosine")
            upsert_retrying(col, base, labels)
            if system.name == "cluster":
                nodes = [f"127.0.0.1:{system.base_port + i}" for i in range(1, system.nodes + 1)]
                deadline = time.monotonic() + 600
                while indexing_lag(nodes) and time.monotonic() < deadline:
                    time.sleep(0.5)
            systems[f"shoal {system.name}"] = (client, col)
        searches = {name: (lambda c: lambda q, n: [int(h.id) for h in c.search(q, k=n, include_metadata=False)])(col)
                    for name, (_, col) in systems.items()}
        searches["numpy brute force"] = lambda q, n: list(np.argsort(-(unit @ q))[:n])
        chroma = chromadb.Client().get_or_create_collection("faces", metadata={"hnsw:space": "cosine"})
        for s in range(0, len(base), 5000):
            chroma.add(ids=[str(i) for i in range(s, min(s + 5000, len(base)))], embeddings=base[s:s + 5000].tolist(),
                       metadatas=[{"person": int(p)} for p in labels[s:s + 5000]])
        searches["chromadb in-process"] = lambda q, n: [int(i) for i in chroma.query(query_embeddings=[q.tolist()], n_results=n)["ids"][0]]
        for n in (1, 5, 10):
            for name, search in searches.items():
                figures["search"][f"{name} n={n}"] = m = measure(search, queries, exact_ids, labels, query_labels, n)
                print(f"n_results {n:>2}  {name:<20} p50 {m['p50_ms']:7.3f} ms  recall {m['recall']:.3f}  top-1 same person {m['top1_same_person']:.3f}", flush=True)
        for name, (_, col) in systems.items():
            for page_size, how in ((0, "one call"), (1000, "pages of 1000")):
                t = time.perf_counter()
                ev = col.evaluate_classifier(label_field="label", k=K, page_size=page_size, progress=False)
                figures["leave_one_out"][f"{name}, {how}"] = m = {"accuracy": round(ev.accuracy, 4), "evaluated": ev.evaluated,
                                                                  "seconds": round(time.perf_counter() - t, 1)}
                print(f"leave-one-out k={K} {name + ', ' + how:<30} accuracy {ev.accuracy:.4f} over {ev.evaluated}  {m['seconds']} s", flush=True)
        figures["leave_one_out"]["chromadb loop"] = m = chroma_loo(chroma, base, labels)
        print(f"leave-one-out k={K} {'chromadb loop':<30} accuracy {m['accuracy']:.4f} over {len(base)}  {m['seconds']} s", flush=True)
    finally:
        for system in started:
            system.stop()
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
