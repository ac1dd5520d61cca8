#!/usr/bin/env python3
"""How much does moving a shard cost users? Times one shard move and compares
search latency before and during it.

Needs a running cluster of at least two nodes (Cluster/launch.sh, release build)
and a dataset folder made by ../shared/bench/datasets.py (base.npy, queries.npy,
gt_ids.npy). Creates collection `movebench` with ONE shard holding the whole
base set, measures single-client search latency (and recall@10), then moves the
shard to another node while the same client keeps searching and a second thread
upserts (overwrites) at --write-rate points/s. Prints one JSON object.

  .venv/bin/python scripts/bench_move.py --address 127.0.0.1:7100 \
      --data ../bench-data/clustered-128-l2 --points 100000
"""
import argparse
import json
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Clients", "python"))
import grpc  # noqa: E402
import shoal  # noqa: E402
from shoal.v1 import admin_pb2, admin_pb2_grpc, shard_pb2, shard_pb2_grpc  # noqa: E402


def percentile(values, p):
    return float(np.percentile(np.array(values), p)) if values else 0.0


def recall_at_10(col, queries, gt):
    hits = [col.search(q, k=10, include_metadata=False) for q in queries]
    return float(np.mean([len({int(h.id) for h in hs} & set(gt[i][:10].tolist())) / 10 for i, hs in enumerate(hits)]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", default="127.0.0.1:7100")
    ap.add_argument("--data", required=True)
    ap.add_argument("--points", type=int, default=100000)
    ap.add_argument("--write-rate", type=int, default=200, help="overwrites per second during the move")
    ap.add_argument("--baseline-seconds", type=float, default=20)
    args = ap.parse_args()

    base = np.load(os.path.join(args.data, "base.npy"))[: args.points].astype("float32")
    queries = np.load(os.path.join(args.data, "queries.npy")).astype("float32")
    gt = np.load(os.path.join(args.data, "gt_ids.npy"))
    n = len(base)
    metric = "cosine" if "cos" in os.path.basename(args.data) else "l2"

    client = shoal.Client(args.address, timeout=60)
    try:
        client.delete_collection("movebench")
    except shoal.NotFoundError:
        pass
    col = client.create_collection("movebench", base.shape[1], metric=metric, shards=1)
    t = time.perf_counter()
    for i in range(0, n, 2000):
        col.upsert([str(j) for j in range(i, min(n, i + 2000))], base[i:i + 2000])
    ingest_s = time.perf_counter() - t

    admin = admin_pb2_grpc.AdminStub(grpc.insecure_channel(args.address))
    shard = admin.ShardMap(admin_pb2.ShardMapRequest(collection="movebench")).shards[0]
    source = shard.replicas[0].node_id
    nodes = [x.node_id for x in admin.ListNodes(admin_pb2.ListNodesRequest()).nodes if x.state == admin_pb2.ACTIVE]
    target = next(x for x in nodes if x != source)
    # Wait until the source's graph has caught up, so "before" is steady state.
    deadline = time.time() + 600
    while time.time() < deadline:
        addr = shard.replicas[0].address
        stats = shard_pb2_grpc.ShardStub(grpc.insecure_channel(addr)).Stats(shard_pb2.StatsRequest()).replicas
        if all(r.indexing_lag == 0 for r in stats):
            break
        time.sleep(1)

    # Ground truth covers the whole base set only.
    use_gt = n == np.load(os.path.join(args.data, "base.npy"), mmap_mode="r").shape[0]
    recall_before = recall_at_10(col, queries[:1000], gt) if use_gt else None

    def search_for(seconds, stop_when=None):
        lat, errors, i = [], 0, 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end and not (stop_when and stop_when()):
            q = queries[i % len(queries)]
            t0 = time.perf_counter()
            try:
                col.search(q, k=10, include_metadata=False)
                lat.append((time.perf_counter() - t0) * 1000)
            except shoal.ShoalError:
                errors += 1
            i += 1
        return lat, errors

    before, _ = search_for(args.baseline_seconds)

    done = threading.Event()
    write_errors = [0]
    writes = [0]

    def writer():
        rng = np.random.default_rng(7)
        while not done.is_set():
            t0 = time.perf_counter()
            ids = rng.integers(0, n, 20)
            try:
                col.upsert([str(int(j)) for j in ids], base[ids])
                writes[0] += len(ids)
            except shoal.ShoalError:
                write_errors[0] += 1
            time.sleep(max(0.0, 20 / args.write_rate - (time.perf_counter() - t0)))

    w = threading.Thread(target=writer)
    w.start()
    task = admin.MoveShard(admin_pb2.MoveShardRequest(collection="movebench", shard_id=0, from_node_id=source, to_node_id=target)).task
    finished = {}

    def watch():
        while True:
            st = admin.TaskStatus(admin_pb2.TaskStatusRequest(task_id=task.task_id)).tasks[0]
            if st.state in (admin_pb2.DONE, admin_pb2.FAILED, admin_pb2.ROLLED_BACK):
                finished["task"] = st
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    t_move = time.perf_counter()
    watcher.start()
    during, search_errors = search_for(3600, stop_when=lambda: "task" in finished)
    watcher.join()
    move_s = time.perf_counter() - t_move
    done.set()
    w.join()
    after, _ = search_for(min(10, args.baseline_seconds))
    recall_after = recall_at_10(col, queries[:1000], gt) if use_gt else None
    st = finished["task"]
    print(json.dumps({
        "points": n, "dimension": int(base.shape[1]), "ingest_seconds": round(ingest_s, 1),
        "move_state": admin_pb2.TaskState.Name(st.state), "move_error": st.error,
        "move_seconds": round(move_s, 2), "move_seconds_by_task": (st.updated_unix_ms - st.created_unix_ms) / 1000,
        "records_copied": st.records_copied,
        "search_before_ms": {"p50": round(percentile(before, 50), 2), "p99": round(percentile(before, 99), 2), "n": len(before)},
        "search_during_ms": {"p50": round(percentile(during, 50), 2), "p99": round(percentile(during, 99), 2), "n": len(during)},
        "search_after_ms": {"p50": round(percentile(after, 50), 2), "p99": round(percentile(after, 99), 2), "n": len(after)},
        "failed_searches": search_errors, "failed_writes": write_errors[0], "points_overwritten": writes[0],
        "recall_before": recall_before, "recall_after": recall_after,
    }, indent=1))
    client.delete_collection("movebench")


if __name__ == "__main__":
    main()
