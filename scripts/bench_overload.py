#!/usr/bin/env python3
"""Overload (issue 13): a 3-node cluster under more searches than it can answer, with writers beside.

Launches Cluster/launch.sh --nodes 3 in a temporary folder (or uses --address of a running
cluster; give --run-dir, its launch folder, for the memory figures), loads --points points of
--dataset (made by ../shared/bench/datasets.py) with metadata {"label": int} into a collection
of the default shard count and RF, waits for the graphs, then:

1. idle: --writers writer threads alone for --idle-seconds, each upserting batches of --batch
   new points (base vectors with a little noise, new ids, metadata) one after the other;
2. saturated: the writers go on and --searchers search threads join them for --seconds, each
   calling `Collection.search(q, k=--k)` (include_metadata default) one after the other.

Every thread has its own `shoal.Client(address, timeout=--timeout)` (one address: no retries;
the client raises shoal.ShoalError with the gRPC status `.code`). Every request's start,
latency and status code are recorded. Reported: counts per status (searches and writes, per
phase); latency p50/p99/max of the successes and of the RESOURCE_EXHAUSTED answers separately;
how many took longer than --slow seconds and how many hit DEADLINE_EXCEEDED (the goal: none
waits out its deadline; a server that is full should say so at once); write p50/p99 idle
against saturated; and the RSS of every Shoal process (coordinator and nodes, from the launch
folder's pid files; etcd too, for reference) sampled every second, as start / peak / end /
settled (--settle seconds after the load) per process. All client threads run in this one
Python process (its CPU use is reported: if it nears a whole core the client, not the
cluster, is what limits the offered load).

  SHOAL_BIN=.build/release/shoal .venv/bin/python scripts/bench_overload.py --data ../bench-data --out overload.json
  .venv/bin/python scripts/bench_overload.py --address 127.0.0.1:7100 --run-dir run/cluster --data ../bench-data

Figures, not assertions.
"""
import argparse
import json
import os
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_serving import (ROOT, LaunchedCluster, indexing_lag, load_dataset, pid_cpu_s,  # noqa: E402
                           upsert_retrying, uptime)

sys.path.insert(0, os.path.join(ROOT, "Clients", "python"))
import shoal  # noqa: E402

COLLECTION = "overload"


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.records = []  # (kind, start monotonic, latency s, status name)

    def call(self, kind, fn):
        t = time.monotonic()
        try:
            fn()
            status = "OK"
        except shoal.ShoalError as error:
            status = error.code.name
        except Exception as error:  # noqa: BLE001 (recorded as the client's own failure)
            status = "CLIENT_" + type(error).__name__
        latency = time.monotonic() - t
        with self.lock:
            self.records.append((kind, t, latency, status))
        return status


def searcher(address, queries, k, timeout, index, stop, rec, ready):
    with shoal.Client(address, timeout=timeout) as client:
        col = None
        try:
            col = client.get_collection(COLLECTION)
            col.search(queries[index], k=k)  # connected before the phase starts
        except shoal.ShoalError as error:
            print(f"searcher {index}: {error}", file=sys.stderr)
        ready.wait()
        if col is None:
            return
        n = index * 7919
        while not stop.is_set():
            q = queries[n % len(queries)]
            rec.call("search", lambda: col.search(q, k=k))
            n += 1


def writer(address, base, labels, batch, timeout, index, stop, rec, ready):
    rng = np.random.default_rng(1000 + index)
    with shoal.Client(address, timeout=timeout) as client:
        try:
            col = client.get_collection(COLLECTION)
        finally:
            ready.wait()
        n = 0
        while not stop.is_set():
            rows = rng.integers(0, len(base), batch)
            vectors = base[rows] + rng.normal(0, 0.01, (batch, base.shape[1])).astype(np.float32)
            ids = [f"w{index}-{n}-{j}" for j in range(batch)]
            metas = [{"label": int(labels[r])} for r in rows]
            rec.call("write", lambda: col.upsert(ids, vectors, metadatas=metas))
            n += 1


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def launch_pids(run_dir):
    """{name: pid} from the pid files of Cluster/launch.sh's folder (coordinator*, node*, etcd*)."""
    pids = {}
    for sub in sorted(os.listdir(run_dir)):
        path = os.path.join(run_dir, sub, "pid")
        if os.path.isfile(path) and not os.path.islink(os.path.join(run_dir, sub)):
            with open(path) as f:
                pids[sub] = int(f.read().strip())
    return pids


class RssSampler(threading.Thread):
    def __init__(self, pids, every=1.0):
        super().__init__(daemon=True)
        self.pids, self.every = pids, every
        self.samples = {name: [] for name in pids}  # name: [(t, kB)]
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            t = time.monotonic()
            for name, pid in self.pids.items():
                kb = rss_kb(pid)
                if kb is not None:
                    self.samples[name].append((t, kb))
            self.halt.wait(self.every)

    def summary(self, saturated_start, load_end):
        doc = {}
        for name, s in self.samples.items():
            if not s:
                continue
            during = [kb for t, kb in s if t <= load_end] or [s[0][1]]
            idle = [kb for t, kb in s if t <= saturated_start] or [s[0][1]]
            doc[name] = {"pid": self.pids[name], "start_mb": round(s[0][1] / 1024, 1),
                         "end_of_idle_mb": round(idle[-1] / 1024, 1),
                         "peak_mb": round(max(kb for _, kb in s) / 1024, 1),
                         "end_of_load_mb": round(during[-1] / 1024, 1), "settled_mb": round(s[-1][1] / 1024, 1),
                         "samples": len(s)}
        return doc


def stats(latencies):
    if not latencies:
        return {"n": 0}
    a = np.asarray(latencies) * 1000
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "max_ms": round(float(a.max()), 2)}


def phase_doc(records, kind, start, end, slow, batch=0):
    mine = [(lat, st) for k, t, lat, st in records if k == kind and start <= t < end]
    counts = {}
    for _, st in mine:
        counts[st] = counts.get(st, 0) + 1
    return {"requests": len(mine), "points": counts.get("OK", 0) * batch if kind == "write" else None, "per_s": round(len(mine) / (end - start), 1) if end > start else None,
            "ok_per_s": round(counts.get("OK", 0) / (end - start), 1) if end > start else None,
            "status_counts": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
            "ok": stats([lat for lat, st in mine if st == "OK"]),
            "resource_exhausted": stats([lat for lat, st in mine if st == "RESOURCE_EXHAUSTED"]),
            "all": stats([lat for lat, _ in mine]),
            f"over_{slow:g}s": sum(1 for lat, _ in mine if lat > slow),
            "deadline_exceeded": counts.get("DEADLINE_EXCEEDED", 0)}


def load(address, ds, points, timeout=300):
    base, labels = ds["base"][:points], ds["labels"][:points]
    with shoal.Client(address, timeout=timeout) as client:
        if COLLECTION in {c.name for c in client.list_collections()}:
            client.delete_collection(COLLECTION)
        col = client.create_collection(COLLECTION, dimension=base.shape[1], metric=ds["metric"])
        t = time.monotonic()
        repeats = upsert_retrying(col, base, labels)
        upsert_s = time.monotonic() - t
        desc = col.describe()
        addresses = sorted({r["address"] for s in desc["shards"] for r in s["replicas"]})
        while indexing_lag(addresses):
            time.sleep(0.25)
        return {"points": len(base), "dim": base.shape[1], "metric": ds["metric"], "upsert_s": round(upsert_s, 2), "upsert_calls_repeated": repeats,
                "ready_s": round(time.monotonic() - t, 2), "shards": desc["info"].shards,
                "replication_factor": desc["info"].replication_factor}


def line(name, d, slow):
    def lat(s):
        return f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms" if s["n"] else "none"
    counts = ", ".join(f"{k} {v}" for k, v in d["status_counts"].items()) or "none"
    return (f"  {name:18} {d['requests']:7} requests ({d['per_s']}/s; OK {d['ok_per_s']}/s): {counts}\n"
            f"  {'':18} OK: {lat(d['ok'])}; RESOURCE_EXHAUSTED: {lat(d['resource_exhausted'])}\n"
            f"  {'':18} over {slow:g} s: {d[f'over_{slow:g}s']}, DEADLINE_EXCEEDED: {d['deadline_exceeded']}")


def summary(f, slow):
    out = [f"collection: {f['collection']}",
           f"load: {f['searchers']} search threads (k={f['k']}) + {f['writers']} writers (batches of {f['batch']}), "
           f"client timeout {f['timeout_s']} s; idle {f['idle_seconds']} s, saturated {f['seconds']} s",
           "idle (writers alone):", line("writes", f["idle"]["write"], slow),
           "saturated:", line("searches", f["saturated"]["search"], slow), line("writes", f["saturated"]["write"], slow)]
    wi, ws = f["idle"]["write"]["ok"], f["saturated"]["write"]["ok"]
    if wi["n"] and ws["n"]:
        out.append(f"write p50/p99 idle {wi['p50_ms']}/{wi['p99_ms']} ms -> saturated {ws['p50_ms']}/{ws['p99_ms']} ms "
                   f"(p50 x{ws['p50_ms'] / wi['p50_ms']:.1f}, p99 x{ws['p99_ms'] / wi['p99_ms']:.1f})")
    if f.get("late"):
        out.append(f"after the phase: {f['late']}")
    out.append(f"client process: {f['client_cores']} cores during the saturated phase")
    if f.get("rss"):
        out.append(f"points written: {f['points_written']} (idle {f['idle']['write']['points']}, "
                   f"saturated {f['saturated']['write']['points']}) on top of {f['collection']['points']}")
        out.append("RSS (MB)        start  end-of-idle    peak  end-of-load  settled")
        for name, r in f["rss"].items():
            out.append(f"  {name:13} {r['start_mb']:7.1f} {r['end_of_idle_mb']:12.1f} {r['peak_mb']:7.1f} "
                       f"{r['end_of_load_mb']:12.1f} {r['settled_mb']:8.1f}")
    out.append(f"start: {f['uptime_start']}")
    out.append(f"end:   {f['uptime_end']}")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", help="a running cluster's coordinator (default: launch one)")
    ap.add_argument("--run-dir", help="with --address: its Cluster/launch.sh folder, for the processes' RSS")
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "bench-data"), help="datasets.py's folder")
    ap.add_argument("--dataset", default="faces-512-cos")
    ap.add_argument("--points", type=int, default=0, help="points loaded first (0: the whole base set)")
    ap.add_argument("--searchers", type=int, default=64)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64, help="points of one write")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30.0, help="of the saturated phase")
    ap.add_argument("--idle-seconds", type=float, default=10.0, help="of the writers-alone phase")
    ap.add_argument("--settle", type=float, default=5.0, help="RSS sampled this long after the load")
    ap.add_argument("--timeout", type=float, default=5.0, help="client deadline of every call, s")
    ap.add_argument("--slow", type=float, default=1.0, help="count the requests slower than this, s")
    ap.add_argument("--nodes", type=int, default=3, help="nodes of the launched cluster")
    ap.add_argument("--out", help="write every figure (and every request, with --records) to this JSON file")
    ap.add_argument("--records", action="store_true", help="also write every request to --out")
    args = ap.parse_args()
    ds = load_dataset(os.path.abspath(args.data), args.dataset)
    points = args.points or len(ds["base"])
    cluster = None
    figures = {"uptime_start": uptime(), "dataset": args.dataset, "searchers": args.searchers,
               "writers": args.writers, "batch": args.batch, "k": args.k, "seconds": args.seconds,
               "idle_seconds": args.idle_seconds, "timeout_s": args.timeout}
    print(f"start: {figures['uptime_start']}", file=sys.stderr, flush=True)
    try:
        if args.address:
            address, run_dir = args.address, args.run_dir
        else:
            cluster = LaunchedCluster(args.nodes)
            cluster.start()
            address, run_dir = cluster.address, cluster.dir
        figures["address"] = address
        figures["collection"] = load(address, ds, points)
        print(f"loaded: {figures['collection']}", file=sys.stderr, flush=True)
        rss = RssSampler(launch_pids(run_dir) if run_dir else {})
        rss.start()
        rec, stop_writes, stop_searches = Recorder(), threading.Event(), threading.Event()
        base = ds["base"][:points]
        wready = threading.Barrier(args.writers + 1)
        writers = [threading.Thread(target=writer, args=(address, base, ds["labels"], args.batch, args.timeout, i,
                                                          stop_writes, rec, wready), daemon=True)
                   for i in range(args.writers)]
        for t in writers:
            t.start()
        wready.wait()
        idle_start = time.monotonic()
        print(f"idle phase: {args.writers} writers for {args.idle_seconds} s", file=sys.stderr, flush=True)
        sready = threading.Barrier(args.searchers + 1)
        searchers = [threading.Thread(target=searcher, args=(address, ds["queries"], args.k, args.timeout, i,
                                                              stop_searches, rec, sready), daemon=True)
                     for i in range(args.searchers)]
        for t in searchers:  # they connect (one search each, unrecorded) during the idle phase
            t.start()
        time.sleep(max(0.0, idle_start + args.idle_seconds - time.monotonic()))
        sready.wait()
        sat_start = time.monotonic()
        cpu0 = pid_cpu_s(os.getpid())
        print(f"saturated phase: + {args.searchers} searchers for {args.seconds} s", file=sys.stderr, flush=True)
        time.sleep(args.seconds)
        sat_end = time.monotonic()
        figures["client_cores"] = round((pid_cpu_s(os.getpid()) - cpu0) / (sat_end - sat_start), 2)
        stop_searches.set()
        stop_writes.set()
        for t in searchers + writers:
            t.join(timeout=args.timeout + 30)
        drained = time.monotonic()
        time.sleep(args.settle)
        rss.halt.set()
        rss.join()
        records = list(rec.records)
        figures["idle"] = {"write": phase_doc(records, "write", idle_start, sat_start, args.slow, args.batch)}
        figures["saturated"] = {kind: phase_doc(records, kind, sat_start, sat_end, args.slow, args.batch)
                                for kind in ("search", "write")}
        figures["points_written"] = args.batch * sum(1 for k, _, _, st in records if k == "write" and st == "OK")
        figures["late"] = {"in_flight_at_end_s": round(drained - sat_end, 2),
                           "longest_request_s": round(max((lat for _, _, lat, _ in records), default=0), 2)}
        figures["rss"] = rss.summary(sat_start, sat_end)
        if args.records:
            figures["records"] = [(k, round(t - idle_start, 4), round(lat, 5), st) for k, t, lat, st in records]
        figures["complete"] = True
    finally:
        if cluster:
            cluster.stop()
        figures["uptime_end"] = uptime()
        if args.out:
            with open(args.out, "w") as f:
                json.dump(figures, f, indent=1)
    print(summary(figures, args.slow))


if __name__ == "__main__":
    main()
