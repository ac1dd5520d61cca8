#!/usr/bin/env python3
"""Coordinator failover and the metadata watch, measured on a local cluster.

Starts Cluster/launch.sh with 3 nodes and 2 coordinators (one etcd member) in a
temporary folder, loads random vectors, and runs search clients given both
coordinators. Then:

1. watch cost: search latency while the metadata is quiet, and while another
   client changes it without pause (creates and deletes a small collection), so
   every coordinator's watch fires;
2. failover: SIGKILLs the leading coordinator (the one the clients use) and
   reports the time until another one leads (polled through `shoal admin
   coordinators` every 20 ms), the failed requests (expected none) and the
   search latency in the second after the kill against the seconds before.

  SHOAL_BIN=.build/release/shoal .venv/bin/python scripts/bench_failover.py --out failover.json

Figures, not assertions: the suite's tests check behaviour.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "Clients", "python"))
sys.path.insert(0, os.path.join(ROOT, "Tests", "python"))
import shoal  # noqa: E402
from cluster_helpers import Cluster  # noqa: E402  (the launch script on free ports)
from move_load import wait_for_indexing  # noqa: E402


def admin_json(shoal_bin, address, *args):
    out = subprocess.run([shoal_bin, "admin", "--coordinator", address, *args, "--json"],
                         capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout) if out.returncode == 0 else None


class Searchers:
    def __init__(self, address, collection, queries, threads):
        self.address, self.collection, self.queries = address, collection, queries
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.samples = []  # (start, ms)
        self.failures = []  # (time, error)
        self.threads = [threading.Thread(target=self.loop, args=(i,), daemon=True) for i in range(threads)]

    def loop(self, index):
        rng = np.random.default_rng(index)
        with shoal.Client(self.address, timeout=30) as client:
            col = client.get_collection(self.collection)
            while not self.stop.is_set():
                q = self.queries[rng.integers(len(self.queries))]
                t = time.monotonic()
                try:
                    col.search(q, k=10, include_metadata=False)
                    with self.lock:
                        self.samples.append((t, (time.monotonic() - t) * 1000))
                except shoal.ShoalError as e:
                    with self.lock:
                        self.failures.append((t, str(e)[:200]))

    def window(self, start, end):
        with self.lock:
            return latency_window(self.samples, start, end)


def latency_window(samples, start, end, label="searches"):
    """Count, p50, p99 and max of the latencies of the (start, ms) samples that started in [start, end)."""
    ms = [m for t, m in samples if start <= t < end]
    if not ms:
        return {label: 0}
    return {label: len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(max(ms), 1)}


def kill_leader(shoal_bin, run_dir, addresses, searchers, seconds):
    """SIGKILLs the leading coordinator; the time until another leads, and the searches around it."""
    both = ",".join(addresses)
    leader = admin_json(shoal_bin, both, "coordinators")["leader"]
    with open(os.path.join(run_dir, leader, "address")) as f:
        gone = f.read().strip()
    survivor = ",".join(a for a in addresses if a != gone)
    killed = kill(run_dir, leader)
    new_leader = None
    while time.monotonic() - killed < 30:
        doc = admin_json(shoal_bin, survivor, "coordinators")
        if doc and doc["leader"] and doc["leader"] != leader:
            new_leader = doc["leader"]
            break
        time.sleep(0.02)
    elected = time.monotonic()
    time.sleep(seconds)
    return {"killed": leader, "new_leader": new_leader, "kill_to_new_leader_s": round(elected - killed, 2),
            "failed_requests": len([f for f in searchers.failures if f[0] >= killed]),
            "search_before_kill": searchers.window(killed - seconds, killed),
            "search_first_second_after_kill": searchers.window(killed, killed + 1),
            "search_until_new_leader": searchers.window(killed, elected),
            "search_after_new_leader": searchers.window(elected, elected + seconds)}


def kill_coordinator(run_dir, name, searchers, seconds):
    """SIGKILLs the coordinator the clients send to (the first address): the blip they see."""
    killed = kill(run_dir, name)
    time.sleep(seconds)
    return {"killed": name, "failed_requests": len([f for f in searchers.failures if f[0] >= killed]),
            "search_before_kill": searchers.window(killed - seconds, killed),
            "search_first_second_after_kill": searchers.window(killed, killed + 1),
            "search_after": searchers.window(killed + 1, killed + seconds)}


def kill(run_dir, name):
    with open(os.path.join(run_dir, name, "pid")) as f:
        pid = int(f.read())
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    return killed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--phase-seconds", type=float, default=10)
    parser.add_argument("--out")
    args = parser.parse_args()
    shoal_bin = os.environ.setdefault("SHOAL_BIN", os.path.join(ROOT, ".build", "release", "shoal"))
    run_dir = tempfile.mkdtemp(prefix="shoal-failover-")
    cluster = Cluster(run_dir, nodes=3, coordinators=2)
    cluster.launch()
    try:
        with open(os.path.join(run_dir, "coordinators")) as f:
            addresses = f.read().split()
        both = ",".join(addresses)
        rng = np.random.default_rng(7)
        vectors = rng.standard_normal((args.points, args.dimension)).astype(np.float32)
        with shoal.Client(both, timeout=300) as client:
            col = client.create_collection("failover", dimension=args.dimension, metric="l2", shards=6)
            col.upsert([str(i) for i in range(args.points)], vectors)
        wait_for_indexing(cluster.node_addresses)  # measure searches of built graphs, not of an exact-scanned tail
        queries = vectors[:1000] + 0.01
        searchers = Searchers(both, "failover", queries, args.clients)
        for t in searchers.threads:
            t.start()
        time.sleep(2)  # warm up
        figures = {"points": args.points, "dimension": args.dimension, "clients": args.clients}

        # 1. The watch: quiet metadata, then metadata changing all the time.
        quiet_start = time.monotonic()
        time.sleep(args.phase_seconds)
        quiet_end = busy_start = time.monotonic()
        changes = [0]
        stop_changes = threading.Event()

        def churn():
            with shoal.Client(both, timeout=30) as client:
                while not stop_changes.is_set():
                    client.create_collection("churn", dimension=4, metric="l2", shards=1)
                    client.delete_collection("churn")
                    changes[0] += 2
        churner = threading.Thread(target=churn, daemon=True)
        churner.start()
        time.sleep(args.phase_seconds)
        stop_changes.set()
        churner.join(timeout=60)
        busy_end = time.monotonic()
        figures["watch"] = {"quiet": searchers.window(quiet_start, quiet_end),
                            "metadata_changing": searchers.window(busy_start, busy_end),
                            "metadata_changes_per_s": round(changes[0] / (busy_end - busy_start), 1)}

        # 2. Failover: kill the leader, then (restarted) the coordinator the clients use.
        figures["failover"] = kill_leader(shoal_bin, run_dir, addresses, searchers, args.phase_seconds)
        cluster.launch()  # the killed coordinator starts again
        time.sleep(2)
        figures["client_coordinator_killed"] = kill_coordinator(run_dir, "coordinator1", searchers, args.phase_seconds)
        searchers.stop.set()
        for t in searchers.threads:
            t.join(timeout=60)
        figures["failed_requests_total"] = len(searchers.failures)
        print(json.dumps(figures, indent=2))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(figures, f, indent=2)
    finally:
        cluster.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
