#!/usr/bin/env python3
"""Replication and node failover, measured on a local cluster.

Starts Cluster/launch.sh with 3 nodes and one coordinator in a temporary folder, then:

1. write throughput at replication factor 1 and 2: a collection each (6 shards,
   --dim, l2), one after the other on the same cluster; --write-points random
   points upserted in batches of 500 from --write-threads clients. Points/s, batch
   latency p50/p99, and the time the graphs then take to catch up;
2. SIGKILL under load: an RF 2 collection of --points points (dim 32), --searchers
   search threads (k = 10) and one writer (move_load's, batches of 20), every
   request's start, latency and outcome recorded. After the warm-up node2 is
   SIGKILLed; after the down time it is started again (launch.sh) and every replica
   is waited back `in_sync` (`shoal admin shards --json`, polled). Failed requests
   (expected 0), the time from the kill to the first acknowledged write, the longest
   search in the second after the kill, search and write p50/p99/max before, while
   down, while catching up and after; the catch-up time (restart to all in sync);
3. SIGSTOP under load: the same load, node3 paused for the down time, then SIGCONT.
   Failed requests, search and write latency during the pause against before, the
   time from SIGCONT to all in sync.

Windows are by request start time. --quick: tiny sizes and short phases, a smoke
run of the script, no figures to quote.

  SHOAL_BIN=.build/release/shoal .venv/bin/python scripts/bench_replication.py --out replication.json

Figures, not assertions: Tests/python/test_replication.py checks the behaviour.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import numpy as np

from bench_failover import Searchers, latency_window  # also puts Clients/python and Tests/python on sys.path
import shoal
from cluster_helpers import Cluster
from conftest import wait_for
from move_load import Workload, wait_for_indexing
from test_replication import SHARDS, all_in_sync, load, replica_states

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
COLLECTION = "rep"
FAILOVER_DIM = 32  # as test_replication
WRITE_BATCH = 500


class TimedWriter(Workload):
    """move_load's writer alone (upserts of `batch` points, a delete now and then), every
    write's start, latency and outcome kept: `samples` (start, ms) of the acknowledged
    ones, `attempts` (start, end, ok) of all."""

    def __init__(self, address, collection, base, name, batch=20):
        super().__init__(address, collection, base, queries=None, name=name, searchers=0, batch=batch, pause=0.005)
        self.samples = []
        self.attempts = []

    def _apply(self, ids, states, call, what):
        failed = len(self.failures)  # only this thread adds to it
        start = time.monotonic()
        super()._apply(ids, states, call, what)
        end = time.monotonic()
        with self.lock:
            ok = len(self.failures) == failed
            self.attempts.append((start, end, ok))
            if ok:
                self.samples.append((start, (end - start) * 1000))

    def window(self, start, end):
        with self.lock:
            doc = latency_window(self.samples, start, end, label="writes")
        doc["writes_per_s"] = round(doc["writes"] / (end - start), 1) if end > start else None
        return doc

    def first_ack_after(self, t, started_after=False):
        """Seconds from `t` to the first acknowledgement after it (of a write started after it)."""
        with self.lock:
            ends = [e for s, e, ok in self.attempts if ok and e > t and (s >= t or not started_after)]
        return round(min(ends) - t, 3) if ends else None


def write_throughput(address, name, rf, vectors, threads, node_addresses):
    """Upserts `vectors` into a new collection in batches of WRITE_BATCH from `threads` clients."""
    with shoal.Client(address, timeout=300) as client:
        client.create_collection(name, vectors.shape[1], metric="l2", shards=SHARDS, replication_factor=rf)
    batches = [(s, min(s + WRITE_BATCH, len(vectors))) for s in range(0, len(vectors), WRITE_BATCH)]
    lock = threading.Lock()
    latencies, failures, written = [], [], [0]
    ready = threading.Barrier(threads + 1)

    def run(mine):
        with shoal.Client(address, timeout=300) as client:
            col = client.get_collection(name)
            ready.wait()
            for s, e in mine:
                t = time.monotonic()
                try:
                    col.upsert([str(i) for i in range(s, e)], vectors[s:e])
                    with lock:
                        latencies.append((t, (time.monotonic() - t) * 1000))
                        written[0] += e - s
                except shoal.ShoalError as error:
                    with lock:
                        failures.append(str(error)[:200])

    workers = [threading.Thread(target=run, args=(batches[i::threads],), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    ready.wait()
    start = time.monotonic()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - start
    wait_for_indexing(node_addresses)  # so the next collection is not measured against this one's graph building
    indexed = time.monotonic() - start - elapsed
    with shoal.Client(address, timeout=60) as client:
        count = client.get_collection(name).count()
    return {"replication_factor": rf, "points": len(vectors), "count_after": count, "failed_batches": len(failures),
            "seconds": round(elapsed, 2), "points_per_s": round(written[0] / elapsed, 1),
            "batch_latency": latency_window(latencies, float("-inf"), float("inf"), label="batches"),
            "graphs_caught_up_after_s": round(indexed, 2), "errors": failures[:3]}


def wait_in_sync(address, timeout=300):
    """The time every replica of COLLECTION is in sync again (polled), or None after `timeout` s."""
    def synced():
        try:
            return all_in_sync(address, COLLECTION) and time.monotonic()
        except (AssertionError, ValueError, subprocess.TimeoutExpired):  # `shoal admin` failed: poll again
            return None
    try:
        return wait_for(synced, timeout, "every replica in sync")
    except TimeoutError:
        return None


def not_in_sync(address):
    """["shard:state"] of the replicas of COLLECTION not in sync (None if `shoal admin` fails)."""
    try:
        return sorted(f"{shard}:{state}" for shard, _, state in replica_states(address, COLLECTION) if state != "in_sync")
    except (AssertionError, ValueError, subprocess.TimeoutExpired):
        return None


def under_load(cluster, base, searchers, fault, name):
    """Runs the searchers and a writer around `fault(searches, writes)`; its figures and the failed requests."""
    queries = base[np.random.default_rng(9).choice(len(base), min(200, len(base)), replace=False)]
    searches = Searchers(cluster.address, COLLECTION, queries, searchers)
    writes = TimedWriter(cluster.address, COLLECTION, base, name)  # new ids "new-NAME-…"
    for t in searches.threads:
        t.start()
    writes.start()
    try:
        figures = fault(searches, writes)
    finally:
        searches.stop.set()
        for t in searches.threads:
            t.join(timeout=60)
        writes.stop()
    failures = [("search", t, e) for t, e in searches.failures] + [(w, t, e) for w, e, t in writes.failures]
    figures["failed_requests"] = {"searches": len(searches.failures), "writes": len(writes.failures),
                                  "first": [f"{w}: {e}" for w, _, e in sorted(failures, key=lambda f: f[1])[:3]]}
    figures["requests"] = {"searches": len(searches.samples) + len(searches.failures), "writes": len(writes.attempts)}
    return figures


def windows(searches, writes, **spans):
    return {name: {"search": searches.window(a, b), "write": writes.window(a, b)} for name, (a, b) in spans.items()}


def kill_node2(cluster, phases):
    def fault(searches, writes):
        time.sleep(phases["warm_up"])
        killed = time.monotonic()
        cluster.kill("node2")
        time.sleep(max(0.0, killed + phases["down"] - time.monotonic()))
        stale = not_in_sync(cluster.address)
        restart = time.monotonic()
        cluster.launch()  # starts node2 again, waits until it is healthy
        up = time.monotonic()
        synced = wait_in_sync(cluster.address)
        time.sleep(phases["after"])
        with searches.lock:
            in_flight = [ms for t, ms in searches.samples if t < killed < t + ms / 1000]
        return {"down_s": round(restart - killed, 2), "not_in_sync_before_restart": stale,
                "kill_to_first_write_ack_s": writes.first_ack_after(killed),
                "kill_to_first_ack_of_a_write_started_after_kill_s": writes.first_ack_after(killed, started_after=True),
                "search_max_ms_first_second_after_kill": searches.window(killed, killed + 1).get("max_ms"),
                "search_max_ms_in_flight_at_kill": round(max(in_flight), 1) if in_flight else None,
                "restart_s": round(up - restart, 2),
                "restart_to_all_in_sync_s": round(synced - restart, 2) if synced else None,
                "node_up_to_all_in_sync_s": round(synced - up, 2) if synced else None,
                "windows": windows(searches, writes, before=(killed - phases["warm_up"], killed),
                                   down=(killed, restart), catching_up=(restart, synced or up),
                                   after=(synced or up, (synced or up) + phases["after"]))}
    return fault


def pause_node3(cluster, phases):
    def fault(searches, writes):
        time.sleep(phases["warm_up"])
        pid = cluster.pid("node3")
        paused = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(phases["down"])
            stale = not_in_sync(cluster.address)
        finally:
            resumed = time.monotonic()
            os.kill(pid, signal.SIGCONT)
        synced = wait_in_sync(cluster.address)
        time.sleep(phases["after"])
        return {"paused_s": round(resumed - paused, 2), "not_in_sync_at_sigcont": stale,
                "stop_to_first_write_ack_s": writes.first_ack_after(paused),
                "stop_to_first_ack_of_a_write_started_after_stop_s": writes.first_ack_after(paused, started_after=True),
                "sigcont_to_all_in_sync_s": round(synced - resumed, 2) if synced else None,
                "windows": windows(searches, writes, before=(paused - phases["warm_up"], paused),
                                   paused=(paused, resumed), catching_up=(resumed, synced or resumed),
                                   after=(synced or resumed, (synced or resumed) + phases["after"]))}
    return fault


def summary(figures):
    def lat(w):
        if "p50_ms" not in w:
            return "none"
        return f"p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms, max {w['max_ms']} ms"

    lines = [f"write throughput ({figures['write_points']} points, dim {figures['dim']}, "
             f"{figures['write_threads']} clients, batches of {WRITE_BATCH}):"]
    for t in figures["write_throughput"]:
        lines.append(f"  RF {t['replication_factor']}: {t['points_per_s']} points/s, batch {lat(t['batch_latency'])}, "
                     f"{t['failed_batches']} failed, graphs caught up {t['graphs_caught_up_after_s']} s later")
    for key, title in (("sigkill_node2", "SIGKILL node2"), ("sigstop_node3", "SIGSTOP node3")):
        f = figures[key]
        fail = f["failed_requests"]
        lines.append(f"{title} ({figures['points']} points, {figures['searchers']} searchers + 1 writer): "
                     f"{fail['searches']} failed searches, {fail['writes']} failed writes "
                     f"of {f['requests']['searches']} / {f['requests']['writes']}")
        for k, v in f.items():
            if k not in ("windows", "failed_requests", "requests"):
                lines.append(f"  {k}: {v}")
        for name, w in f["windows"].items():
            lines.append(f"  {name:12} search {w['search']['searches']:6} {lat(w['search'])}; "
                         f"write {w['write']['writes_per_s']}/s {lat(w['write'])}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, help="points of the failover collection (100000; --quick 4000)")
    parser.add_argument("--dim", type=int, default=128, help="dimension of the write-throughput collections")
    parser.add_argument("--write-points", type=int, help="points upserted at each RF (50000; --quick 3000)")
    parser.add_argument("--write-threads", type=int, default=4, help="clients upserting at once")
    parser.add_argument("--searchers", type=int, default=4, help="search threads under the faults")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, short phases: a smoke run")
    parser.add_argument("--out", help="write every figure to this JSON file")
    args = parser.parse_args()
    points = args.points or (4000 if args.quick else 100_000)
    write_points = args.write_points or (3000 if args.quick else 50_000)
    phases = {"warm_up": 2, "down": 3, "after": 2} if args.quick else {"warm_up": 5, "down": 10, "after": 5}
    os.environ.setdefault("SHOAL_BIN", os.path.join(ROOT, ".build", "release", "shoal"))
    run_dir = tempfile.mkdtemp(prefix="shoal-replication-")
    cluster = Cluster(run_dir, nodes=3)
    figures = {"quick": args.quick, "points": points, "dim": args.dim, "write_points": write_points,
               "write_threads": args.write_threads, "searchers": args.searchers, "phases_s": phases}
    try:
        cluster.launch()
        vectors = np.random.default_rng(7).standard_normal((write_points, args.dim)).astype(np.float32)
        figures["write_throughput"] = [write_throughput(cluster.address, f"write-rf{rf}", rf, vectors,
                                                        args.write_threads, cluster.node_addresses) for rf in (1, 2)]
        with shoal.Client(cluster.address, timeout=120) as client:
            for rf in (1, 2):
                client.delete_collection(f"write-rf{rf}")
        del vectors
        base = load(cluster.address, COLLECTION, points, rf=2, dim=FAILOVER_DIM)
        wait_for_indexing(cluster.node_addresses)  # searches of built graphs
        if not wait_in_sync(cluster.address, timeout=120):
            raise RuntimeError("the loaded collection's replicas are not all in sync")
        figures["sigkill_node2"] = under_load(cluster, base, args.searchers, kill_node2(cluster, phases), "sigkill")
        if not wait_in_sync(cluster.address, timeout=120):
            raise RuntimeError("the replicas are not all in sync after the SIGKILL run")
        figures["sigstop_node3"] = under_load(cluster, base, args.searchers, pause_node3(cluster, phases), "sigstop")
        figures["complete"] = True
        print(summary(figures))
        if args.quick:
            print("(--quick: a smoke run of the script; these figures are not a benchmark)")
    finally:
        cluster.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
        if args.out:  # also what was measured before a failure ("complete" absent)
            with open(args.out, "w") as f:
                json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
