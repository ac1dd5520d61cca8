#!/usr/bin/env python3
"""End-to-end benchmark of a running Shoal cluster through the Python client.

For each dataset folder (made by ../shared/bench/datasets.py): creates a collection,
upserts the base vectors, then measures single-client latency (p50/p99, one query a
call) and QPS with --clients concurrent clients, at k = 1, 5, 10, and recall@10.
Start the cluster first (Cluster/launch.sh, release build). Compare with
../shared/bench/peers.py --peers chroma on the same folders, in the same sitting.
bench_serving.py supersedes it: chroma, `shoal serve` and a cluster it launches, in one run.

  .venv/bin/python scripts/bench_cluster.py --address 127.0.0.1:7100 \
      --data ../bench-data --datasets faces-512-cos,clustered-128-l2 --out results.json
"""
import argparse
import json
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Clients", "python"))
import shoal  # noqa: E402


def node_stats(address):
    import grpc
    from shoal.v1 import shard_pb2, shard_pb2_grpc
    with grpc.insecure_channel(address) as ch:
        return shard_pb2_grpc.ShardStub(ch).Stats(shard_pb2.StatsRequest(), timeout=10).replicas


def measure(col, queries, k, clients, seconds_cap=20.0):
    lat = []
    for q in queries[:300]:
        t = time.perf_counter()
        col.search(q, k=k, include_metadata=False)
        lat.append((time.perf_counter() - t) * 1e6)
    lat.sort()
    done = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds_cap

    def worker(offset):
        n = 0
        i = offset
        while time.perf_counter() < stop and n < len(queries):
            col.search(queries[i % len(queries)], k=k, include_metadata=False)
            i += clients
            n += 1
        with lock:
            done[0] += n

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    return {"p50_us": lat[len(lat) // 2], "p99_us": lat[int(len(lat) * 0.99)], "qps_concurrent": done[0] / elapsed}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", default="127.0.0.1:7100")
    ap.add_argument("--data", required=True)
    ap.add_argument("--datasets", default="faces-512-cos,clustered-128-l2")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--shards", type=int, default=6)
    ap.add_argument("--out")
    args = ap.parse_args()
    client = shoal.Client(args.address, timeout=120)
    report = {}
    for name in args.datasets.split(","):
        folder = os.path.join(args.data, name)
        meta = json.load(open(os.path.join(folder, "meta.json")))
        base = np.load(os.path.join(folder, "base.npy"))
        queries = np.load(os.path.join(folder, "queries.npy"))
        gt = np.load(os.path.join(folder, "gt_ids.npy"))
        metric = "cosine" if meta["metric"] in ("cosine", "cos") else meta["metric"]
        cname = "bench-" + name
        if cname in {c.name for c in client.list_collections()}:
            client.delete_collection(cname)
        col = client.create_collection(cname, dimension=base.shape[1], metric=metric, shards=args.shards)
        t = time.perf_counter()
        col.upsert(ids=[str(i) for i in range(len(base))], vectors=base)
        upsert_s = time.perf_counter() - t
        # Wait for the graphs (asking the nodes' Shard.Stats): the benchmark is of search on built indexes.
        t = time.perf_counter()
        addresses = {r["address"] for s in col.describe()["shards"] for r in s["replicas"]}
        while any(rep.indexing_lag for a in addresses for rep in node_stats(a)):
            time.sleep(0.5)
        entry_index_wait = time.perf_counter() - t
        hits = col.search_batch(queries[:500], k=10)
        recall = float(np.mean([len({int(h.id) for h in hs} & set(gt[i][:10].tolist())) / 10 for i, hs in enumerate(hits)]))
        entry = {"n": len(base), "index_wait_seconds": entry_index_wait, "upsert_seconds": upsert_s, "upsert_points_per_s": len(base) / upsert_s, "recall_at_10": recall}
        for k in (1, 5, 10):
            entry[f"k{k}"] = measure(col, queries, k, args.clients)
            print(name, k, entry[f"k{k}"], file=sys.stderr)
        report[name] = entry
        client.delete_collection(cname)
    out = json.dumps(report, indent=1)
    print(out)
    if args.out:
        open(args.out, "w").write(out)


if __name__ == "__main__":
    main()
