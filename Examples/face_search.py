#!/usr/bin/env python3
"""Face search: find the same person in a gallery of face embeddings.

The gallery is ../shared/bench/datasets.py faces-512-cos (512-d unit vectors in
identity clusters, a stand-in for ArcFace embeddings of a public face set). For
n_results 1, 5 and 10 it prints, side by side: Shoal (through the Python client),
NumPy brute force and chromadb in-process (if installed), each with its p50
latency per query, recall against the exact neighbours and how often the top
hit is the query's own identity.

    python Examples/face_search.py                       # against Cluster/launch.sh (127.0.0.1:7100)
    python Examples/face_search.py --address 127.0.0.1:7700 --gallery 2000 --queries 50
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Clients", "python"))
import shoal  # noqa: E402


def dataset(data_dir):
    folder = os.path.join(data_dir, "faces-512-cos")
    if not os.path.exists(os.path.join(folder, "meta.json")):
        script = os.path.join(ROOT, "..", "shared", "bench", "datasets.py")
        subprocess.run([sys.executable, script, "--data", data_dir, "--only", "faces-512-cos"], check=True)
    load = lambda name: np.load(os.path.join(folder, name))
    return load("base.npy"), load("labels.npy"), load("queries.npy"), load("query_labels.npy")


def measure(search, queries, exact_ids, labels, query_labels, n):
    """After 20 warm-up queries: p50 ms, recall@n against exact_ids, and the share of
    queries whose top hit has the query's label."""
    for q in queries[:20]:
        search(q, n)
    times, recall, same = [], [], []
    for q, truth, label in zip(queries, exact_ids, query_labels):
        t = time.perf_counter()
        ids = search(q, n)
        times.append(time.perf_counter() - t)
        recall.append(len(set(ids) & set(truth[:n])) / n)
        same.append(labels[ids[0]] == label)
    return {"p50_ms": round(float(np.median(times)) * 1e3, 3), "recall": round(float(np.mean(recall)), 4),
            "top1_same_person": round(float(np.mean(same)), 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", default="127.0.0.1:7100", help="a coordinator, or `shoal serve`")
    ap.add_argument("--data", default=os.path.join(ROOT, ".build-test-data"))
    ap.add_argument("--gallery", type=int, default=0, help="gallery size (0: all 13,233)")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    base, labels, queries, query_labels = dataset(args.data)
    if args.gallery:
        base, labels = base[:args.gallery], labels[:args.gallery]
    queries, query_labels = queries[:args.queries], query_labels[:args.queries]
    unit = base / np.linalg.norm(base, axis=1, keepdims=True)
    exact_ids = np.argsort(-(queries @ unit.T), axis=1)[:, :10]

    systems = {}
    with shoal.Client(args.address, timeout=120) as client:
        if "faces-example" in [c.name for c in client.list_collections()]:
            client.delete_collection("faces-example")
        col = client.create_collection("faces-example", dimension=base.shape[1], metric="cosine")
        col.upsert([str(i) for i in range(len(base))], base, [{"person": int(p)} for p in labels])
        systems["shoal"] = lambda q, n: [int(h.id) for h in col.search(q, k=n, include_metadata=False)]
        systems["numpy brute force"] = lambda q, n: list(np.argsort(-(unit @ q))[:n])
        try:
            import chromadb
            chroma = chromadb.Client().get_or_create_collection("faces", metadata={"hnsw:space": "cosine"})
            for start in range(0, len(base), 5000):
                chroma.add(ids=[str(i) for i in range(start, min(start + 5000, len(base)))],
                           embeddings=base[start:start + 5000].tolist())
            systems["chromadb (in-process)"] = lambda q, n: [int(i) for i in chroma.query(query_embeddings=[q.tolist()], n_results=n)["ids"][0]]
        except ImportError:
            print("chromadb is not installed (pip install chromadb): its rows are left out")
        rows = []
        for n in (1, 5, 10):
            for name, search in systems.items():
                m = measure(search, queries, exact_ids, labels, query_labels, n)
                rows.append((n, name, m["p50_ms"], m["recall"], m["top1_same_person"]))
        client.delete_collection("faces-example")
    print(f"\nface search: gallery {len(base):,} faces × {base.shape[1]} d, {len(queries)} queries, one query per call")
    print(f"{'n_results':>9}  {'system':<24} {'p50 ms':>8} {'recall':>7} {'top-1 same person':>18}")
    for n, name, p50, recall, same in rows:
        print(f"{n:>9}  {name:<24} {p50:>8.3f} {recall:>7.3f} {same:>18.3f}")


if __name__ == "__main__":
    main()
