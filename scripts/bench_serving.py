#!/usr/bin/env python3
"""The serving path (issue 13): chromadb in-process, `shoal serve` and a 3-node cluster, in one sitting.

The successor of bench_cluster.py (which still measures a cluster you started). For each
system, dataset (made by ../shared/bench/datasets.py) and k, every system driven through its
own Python client with the client's default options, one query a call:

- chroma:  chromadb 1.5.9 in-process (`chromadb.Client()`), `collection.query(query_embeddings=[q],
           n_results=k)` (default include: documents, metadatas, distances). Runs in a separate
           interpreter (--chroma-python, a venv with chromadb==1.5.9); the collection's space is
           set to the dataset's metric ("hnsw:space"), everything else default.
- serve:   `$SHOAL_BIN serve` (coordinator and node in one process) on a free port in a temporary
           folder, started and stopped by this script.
- cluster: Cluster/launch.sh --nodes 3 (one coordinator, one etcd member), stopped with
           Cluster/stop.sh. Collections with the server's default shard count and RF.
  Both Shoal systems: `shoal.Client(address)` (default timeout), `Collection.search(q, k=k)`
  (default include_metadata=True).

The base vectors go in with metadata {"label": int} (faces: labels.npy; other datasets: id % 100)
so every search fetches metadata. Shoal's searches start once the nodes report no indexing lag.
Measured per (system, dataset, k): single-client latency p50/p99 over --latency-queries queries
(≥ 300; after a short warm-up), recall@k of those answers against gt_ids.npy (recall@10 at k = 10),
then QPS with --clients client threads for --seconds (their latency p50/p99 too). The threads
share one client object in one process, as an application would: the GIL is shared by all three
systems alike (chroma's threads also run the engine in that process). --client-procs P spreads
the Shoal threads over P processes (each with its own client); chroma is in-process, so it stays
one process.

Printed: a table per dataset and k, the issue's goal ratios per dataset and k (cluster p50 /
chroma p50 ≤ 0.6, serve p50 / chroma p50 ≤ 0.4, cluster QPS / chroma QPS ≥ 3, p99/p50 ≤ 2 per
system) and `uptime` at start and end. Everything goes to --out. Machines are noisy: compare
ratios from one run.

  SHOAL_BIN=.build/release/shoal .venv/bin/python scripts/bench_serving.py --data ../bench-data --out serving.json
  # a ~2 minute run:
  SHOAL_BIN=.build/release/shoal .venv/bin/python scripts/bench_serving.py --data ../bench-data \\
      --datasets faces-512-cos --ks 10 --seconds 3 --latency-queries 300
"""
import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SYSTEMS = ["chroma", "serve", "cluster"]
GOALS = {"cluster_p50_over_chroma": 0.6, "serve_p50_over_chroma": 0.4, "cluster_qps_over_chroma": 3.0,
         "p99_over_p50": 2.0}
WARM_UP = 30


# --------------------------------------------------------------------------- datasets and measuring
def load_dataset(data, name):
    folder = os.path.join(data, name)
    with open(os.path.join(folder, "meta.json")) as f:
        meta = json.load(f)
    base = np.load(os.path.join(folder, "base.npy"))
    labels_path = os.path.join(folder, "labels.npy")
    labels = np.load(labels_path) if os.path.exists(labels_path) else np.arange(len(base)) % 100
    return {"name": name, "metric": "cosine" if meta["metric"] in ("cos", "cosine") else meta["metric"],
            "base": base, "queries": np.load(os.path.join(folder, "queries.npy")),
            "gt": np.load(os.path.join(folder, "gt_ids.npy")), "labels": labels}


def percentiles(lat_us):
    if not lat_us:
        return None, None
    a = np.asarray(lat_us)
    return round(float(np.percentile(a, 50)), 1), round(float(np.percentile(a, 99)), 1)


def recall(ids, gt, k):
    return float(np.mean([len(set(r[:k]) & set(g[:k].tolist())) / k for r, g in zip(ids, gt)]))


def single_client(search, queries, gt, k, n):
    """p50/p99 (µs) of `n` queries one after the other, and recall@k of their answers."""
    for q in queries[:WARM_UP]:
        search(q, k)
    lat, ids = [], []
    for i in range(n):
        q = queries[i % len(queries)]
        t = time.perf_counter()
        r = search(q, k)
        lat.append((time.perf_counter() - t) * 1e6)
        ids.append(r)
    p50, p99 = percentiles(lat)
    return {"queries": n, "p50_us": p50, "p99_us": p99, "mean_us": round(float(np.mean(lat)), 1),
            "p99_over_p50": round(p99 / p50, 2), f"recall_at_{k}": round(recall(ids, gt[:n], k), 4)}


def run_threads(search, queries, k, threads, seconds, offset=0, start_at=None):
    """`threads` threads calling search until `seconds` have passed: (calls, latencies µs, elapsed s, errors)."""
    lock = threading.Lock()
    lat, errors = [], []
    ready = threading.Barrier(threads + 1)

    def worker(i):
        mine, n = [], offset + i * 7919
        ready.wait()
        stop = end[0]
        while True:
            t = time.perf_counter()
            if t >= stop:
                break
            try:
                search(queries[n % len(queries)], k)
            except Exception as error:  # noqa: BLE001 (recorded, the run goes on)
                with lock:
                    errors.append(repr(error)[:200])
                continue
            mine.append((time.perf_counter() - t) * 1e6)
            n += 1
        with lock:
            lat.extend(mine)

    end = [0.0]
    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for th in pool:
        th.start()
    if start_at is not None:  # processes of --client-procs start together
        time.sleep(max(0.0, start_at - time.time()))
    t0 = time.perf_counter()
    end[0] = t0 + seconds
    ready.wait()
    for th in pool:
        th.join()
    return len(lat), lat, time.perf_counter() - t0, errors


def concurrent(search, queries, k, threads, seconds):
    calls, lat, elapsed, errors = run_threads(search, queries, k, threads, seconds)
    return concurrent_doc(calls, lat, elapsed, errors, threads, 1)


def concurrent_doc(calls, lat, elapsed, errors, threads, procs):
    p50, p99 = percentiles(lat)
    return {"clients": threads, "processes": procs, "seconds": round(elapsed, 2), "calls": calls,
            "qps": round(calls / elapsed, 1), "p50_us": p50, "p99_us": p99, "errors": len(errors),
            "first_errors": errors[:3]}


# --------------------------------------------------------------------------- machine load
def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def busy_cpu_s():
    """Machine-wide busy CPU seconds (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def pid_cpu_s(pid):
    """utime + stime + children's of one process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuWindow:
    """Cores used by processes other than ours (this one, its children, the cluster's) over a window."""

    def __init__(self):
        self.t, self.busy, self.own, self.pids = time.monotonic(), busy_cpu_s(), {}, set()
        self.add(os.getpid())

    def add(self, pid):
        if pid not in self.pids:
            self.pids.add(pid)
            self.own[pid] = pid_cpu_s(pid)

    def own_now(self):
        return {pid: pid_cpu_s(pid) for pid in self.pids}

    def close(self, last_own=None):
        wall = time.monotonic() - self.t
        now = last_own or self.own_now()
        own = sum(max(0.0, now[p] - self.own[p]) for p in self.pids)
        return {"wall_s": round(wall, 1), "our_cores": round(own / wall, 2),
                "other_cores": round(max(0.0, busy_cpu_s() - self.busy - own) / wall, 2)}


# --------------------------------------------------------------------------- chroma (in its own interpreter)
def chroma_worker(args):
    """Runs under --chroma-python: prints one JSON line {dataset: entry}."""
    import chromadb
    client = chromadb.Client()
    out = {"chromadb": chromadb.__version__}
    for name in args.datasets:
        ds = load_dataset(args.data, name)
        base, queries, gt, labels = ds["base"], ds["queries"], ds["gt"], ds["labels"]
        cname = "bench-" + name
        if cname in [c.name if hasattr(c, "name") else c for c in client.list_collections()]:
            client.delete_collection(cname)
        col = client.create_collection(cname, metadata={"hnsw:space": "l2" if ds["metric"] == "l2" else "cosine"},
                                       embedding_function=None)
        batch = min(5000, client.get_max_batch_size())
        t = time.perf_counter()
        for s in range(0, len(base), batch):
            e = min(s + batch, len(base))
            col.add(ids=[str(i) for i in range(s, e)], embeddings=base[s:e],
                    metadatas=[{"label": int(x)} for x in labels[s:e]])
        upsert_s = time.perf_counter() - t
        entry = {"n": len(base), "upsert_seconds": round(upsert_s, 2), "ready_seconds": 0.0}

        def search(q, k):
            return [int(x) for x in col.query(query_embeddings=[q], n_results=k)["ids"][0]]

        for k in args.ks:
            entry[f"k{k}"] = {"single": single_client(search, queries, gt, k, args.latency_queries),
                              "concurrent": concurrent(search, queries, k, args.clients, args.seconds)}
            print(f"  chroma {name} k={k}: {brief(entry[f'k{k}'])}", file=sys.stderr, flush=True)
        out[name] = entry
        client.delete_collection(cname)
    print(json.dumps(out), flush=True)


def run_chroma(args, cpu):
    cmd = [args.chroma_python, os.path.abspath(__file__), "--worker-chroma", "--data", args.data,
           "--datasets", ",".join(args.datasets), "--ks", ",".join(map(str, args.ks)),
           "--seconds", str(args.seconds), "--clients", str(args.clients),
           "--latency-queries", str(args.latency_queries)]
    env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    cpu.add(p.pid)
    last = cpu.own_now()
    while True:  # the worker's CPU sampled while it lives (it is gone by the end)
        try:
            stdout = p.communicate(timeout=1)[0] or ""
            break
        except subprocess.TimeoutExpired:
            last = cpu.own_now()
    if p.returncode != 0:
        raise RuntimeError(f"the chroma worker exited {p.returncode}")
    return json.loads(stdout.strip().splitlines()[-1]), last


# --------------------------------------------------------------------------- Shoal: serve and the cluster
def shoal_bin():
    path = os.environ.get("SHOAL_BIN") or os.path.join(ROOT, ".build", "release", "shoal")
    if not os.access(path, os.X_OK):
        sys.exit(f"bench_serving: no shoal executable at {path} (build it: swift build -c release --product shoal)")
    return path


def free_port(span=(), low=27000, high=29999, tries=300):
    """A port P in [low, high] with P + each offset of `span` free on 127.0.0.1 (checked by binding)."""
    rng = random.Random()
    for _ in range(tries):
        base = rng.randrange(low, high - max(span, default=0))
        socks = []
        try:
            for p in [base, *(base + o for o in span)]:
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port")


def healthy(address, timeout=1):
    return subprocess.run([shoal_bin(), "health", "--target", address, "--timeout", str(timeout)],
                          capture_output=True, timeout=timeout + 10).returncode == 0


class Serve:
    """`shoal serve` in a temporary folder on a free port."""
    name = "serve"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="shoal-serving-serve-")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen([shoal_bin(), "serve", "--listen", self.address, "--data",
                                      os.path.join(self.dir, "data"), "--port-file", port_file,
                                      "--log-level", "warning"], stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (os.path.exists(port_file) and healthy(self.address)):
            if self.proc.poll() is not None:
                raise RuntimeError(f"shoal serve exited {self.proc.returncode}: see {self.dir}/log")
            if time.monotonic() > deadline:
                raise RuntimeError("shoal serve not healthy in 120 s")
            time.sleep(0.2)

    def pids(self):
        return [self.proc.pid] if self.proc else []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class LaunchedCluster:
    """Cluster/launch.sh --nodes N in a temporary folder (ports P..P+N, etcd P+81 and P+91)."""
    name = "cluster"

    def __init__(self, nodes=3):
        self.nodes = nodes
        self.dir = tempfile.mkdtemp(prefix="shoal-serving-cluster-")
        self.base_port = free_port(span=[*range(1, nodes + 1), 81, 91])
        self.address = f"127.0.0.1:{self.base_port}"

    def start(self):
        env = dict(os.environ, SHOAL_BIN=shoal_bin())
        out = subprocess.run([os.path.join(ROOT, "Cluster", "launch.sh"), "--nodes", str(self.nodes),
                              "--base-port", str(self.base_port), "--dir", self.dir],
                             env=env, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"launch.sh failed:\n{out.stdout}\n{out.stderr}")

    def pids(self):
        pids = []
        for sub in sorted(os.listdir(self.dir)):
            path = os.path.join(self.dir, sub, "pid")
            if os.path.isfile(path) and not os.path.islink(os.path.join(self.dir, sub)):
                with open(path) as f:
                    pids.append(int(f.read().strip()))
        return pids

    def stop(self):
        subprocess.run([os.path.join(ROOT, "Cluster", "stop.sh"), "--dir", self.dir],
                       capture_output=True, text=True, timeout=180)
        shutil.rmtree(self.dir, ignore_errors=True)


def indexing_lag(addresses):
    import grpc
    from shoal.v1 import shard_pb2, shard_pb2_grpc
    lag = 0
    for a in addresses:
        with grpc.insecure_channel(a) as ch:
            lag += sum(r.indexing_lag for r in shard_pb2_grpc.ShardStub(ch).Stats(shard_pb2.StatsRequest(),
                                                                                      timeout=30).replicas)
    return lag


def upsert_retrying(col, base, labels, chunk=1000, tries=5):
    """Upserts base (ids "0"…, metadata {"label"}) in calls of `chunk` points; a call that fails
    UNAVAILABLE or DEADLINE_EXCEEDED is repeated (an upsert may be). Returns the repeats: [error]."""
    import shoal
    repeats = []
    for s in range(0, len(base), chunk):
        e = min(s + chunk, len(base))
        for attempt in range(tries):
            try:
                col.upsert([str(i) for i in range(s, e)], base[s:e], metadatas=[{"label": int(x)} for x in labels[s:e]])
                break
            except (shoal.UnavailableError, shoal.DeadlineExceededError) as error:
                repeats.append(str(error)[:200])
                print(f"  upsert of points {s}..{e} failed ({error}); again", file=sys.stderr, flush=True)
                if attempt == tries - 1:
                    raise
                time.sleep(1)
    return repeats


def shoal_searcher(address, collection):
    import shoal
    client = shoal.Client(address)  # the client's defaults
    col = client.get_collection(collection)

    def search(q, k):
        return [int(h.id) for h in col.search(q, k=k)]
    return client, search


def proc_worker(address, collection, data, dataset, k, threads, seconds, offset, start_at, results):
    """One process of --client-procs: its own client and threads (multiprocessing, spawn)."""
    sys.path.insert(0, os.path.join(ROOT, "Clients", "python"))
    queries = np.load(os.path.join(data, dataset, "queries.npy"))
    client, search = shoal_searcher(address, collection)
    search(queries[0], k)  # connected before the start
    results.put(run_threads(search, queries, k, threads, seconds, offset=offset, start_at=start_at))
    client.close()


def concurrent_procs(args, address, collection, dataset, k):
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 5.0  # the processes' imports and connections first
    per = [args.clients // args.client_procs + (1 if i < args.clients % args.client_procs else 0)
           for i in range(args.client_procs)]
    procs = [ctx.Process(target=proc_worker, args=(address, collection, args.data, dataset, k, n, args.seconds,
                                                   i * 104729, start_at, results)) for i, n in enumerate(per)]
    for p in procs:
        p.start()
    got = [results.get(timeout=args.seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    lat = [x for g in got for x in g[1]]
    return concurrent_doc(sum(g[0] for g in got), lat, max(g[2] for g in got), [e for g in got for e in g[3]],
                          args.clients, args.client_procs)


def run_shoal(system, args, cpu):
    sys.path.insert(0, os.path.join(ROOT, "Clients", "python"))
    import shoal
    system.start()
    for pid in system.pids():
        cpu.add(pid)
    out = {"address": system.address, "pids": system.pids()}
    try:
        admin = shoal.Client(system.address, timeout=300)
        for name in args.datasets:
            ds = load_dataset(args.data, name)
            base, queries, gt, labels = ds["base"], ds["queries"], ds["gt"], ds["labels"]
            cname = "bench-" + name
            if cname in {c.name for c in admin.list_collections()}:
                admin.delete_collection(cname)
            col = admin.create_collection(cname, dimension=base.shape[1], metric=ds["metric"])  # default shards, RF
            t = time.perf_counter()
            repeats = upsert_retrying(col, base, labels)
            upsert_s = time.perf_counter() - t
            desc = col.describe()
            addresses = sorted({r["address"] for s in desc["shards"] for r in s["replicas"]})
            t = time.perf_counter()
            while indexing_lag(addresses):  # search built graphs
                time.sleep(0.25)
            entry = {"n": len(base), "upsert_seconds": round(upsert_s, 2), "upsert_calls_repeated": repeats,
                     "ready_seconds": round(time.perf_counter() - t, 2),
                     "shards": desc["info"].shards, "replication_factor": desc["info"].replication_factor,
                     "ef": desc["info"].ef, "m": desc["info"].m}
            client, search = shoal_searcher(system.address, cname)
            try:
                for k in args.ks:
                    single = single_client(search, queries, gt, k, args.latency_queries)
                    if args.client_procs > 1:
                        conc = concurrent_procs(args, system.address, cname, name, k)
                    else:
                        conc = concurrent(search, queries, k, args.clients, args.seconds)
                    entry[f"k{k}"] = {"single": single, "concurrent": conc}
                    print(f"  {system.name} {name} k={k}: {brief(entry[f'k{k}'])}", file=sys.stderr, flush=True)
            finally:
                client.close()
            out[name] = entry
            admin.delete_collection(cname)
        admin.close()
        return out, cpu.own_now()
    finally:
        system.stop()


# --------------------------------------------------------------------------- report
def brief(m):
    s, c = m["single"], m["concurrent"]
    rec = next((v for key, v in s.items() if key.startswith("recall_at_")), None)
    return (f"p50 {s['p50_us']:.0f} µs p99 {s['p99_us']:.0f} µs, recall {rec}; "
            f"{c['clients']} clients {c['qps']:.0f} QPS (p50 {c['p50_us'] or 0:.0f} µs), {c['errors']} errors")


def ratios(results, datasets, ks):
    doc = {}
    for name in datasets:
        for k in ks:
            def get(system, part, key):
                try:
                    return results[system][name][f"k{k}"][part][key]
                except (KeyError, TypeError):
                    return None

            def div(a, b):
                return round(a / b, 3) if a is not None and b else None
            chroma_p50, chroma_qps = get("chroma", "single", "p50_us"), get("chroma", "concurrent", "qps")
            doc[f"{name} k={k}"] = {
                "cluster_p50_over_chroma": div(get("cluster", "single", "p50_us"), chroma_p50),
                "serve_p50_over_chroma": div(get("serve", "single", "p50_us"), chroma_p50),
                "cluster_qps_over_chroma": div(get("cluster", "concurrent", "qps"), chroma_qps),
                "p99_over_p50": {s: get(s, "single", "p99_over_p50") for s in SYSTEMS if s in results}}
    return doc


def verdict(value, goal, at_most=True):
    if value is None:
        return "  —  "
    ok = value <= goal if at_most else value >= goal
    return f"{value:5.2f} {'ok ' if ok else 'MISS'}"


def table(results, ratio_doc, datasets, ks, clients):
    lines = [f"{'dataset':17} {'k':>2} {'system':8} {'p50 µs':>8} {'p99 µs':>8} {'p99/p50':>7} "
             f"{'QPS' + str(clients):>8} {'p50@' + str(clients):>9} {'p99@' + str(clients):>9} {'recall@k':>8}"]
    for name in datasets:
        for k in ks:
            for s in SYSTEMS:
                m = results.get(s, {}).get(name, {}).get(f"k{k}") if isinstance(results.get(s), dict) else None
                if not m:
                    continue
                sg, c = m["single"], m["concurrent"]
                lines.append(f"{name:17} {k:>2} {s:8} {sg['p50_us']:8.0f} {sg['p99_us']:8.0f} {sg['p99_over_p50']:7.2f} "
                             f"{c['qps']:8.0f} {c['p50_us'] or 0:9.0f} {c['p99_us'] or 0:9.0f} "
                             f"{sg[f'recall_at_{k}']:8.3f}" + (f"  ({c['errors']} errors)" if c["errors"] else ""))
    lines.append("")
    lines.append("goals: cluster p50/chroma ≤ 0.6, serve p50/chroma ≤ 0.4, cluster QPS/chroma ≥ 3, p99/p50 ≤ 2")
    lines.append(f"{'':20} {'cluster/chroma p50':>18} {'serve/chroma p50':>16} {'cluster/chroma QPS':>18}   "
                 + " ".join(f"{'p99/p50 ' + s:>15}" for s in SYSTEMS))
    for key, r in ratio_doc.items():
        lines.append(f"{key:20} {verdict(r['cluster_p50_over_chroma'], 0.6):>18} {verdict(r['serve_p50_over_chroma'], 0.4):>16} "
                     f"{verdict(r['cluster_qps_over_chroma'], 3.0, at_most=False):>18}   "
                     + " ".join(f"{verdict(r['p99_over_p50'].get(s), 2.0):>15}" for s in SYSTEMS))
    lines.append("")
    lines.append("loading: upsert s (points/s), then s until searchable (Shoal: no indexing lag)")
    for name in datasets:
        for s in SYSTEMS:
            e = results.get(s, {}).get(name) if isinstance(results.get(s), dict) else None
            if e:
                extra = f", {e['shards']} shards RF {e['replication_factor']}" if "shards" in e else ""
                if e.get("upsert_calls_repeated"):
                    extra += f", {len(e['upsert_calls_repeated'])} upsert calls repeated (UNAVAILABLE/DEADLINE)"
                lines.append(f"  {name:17} {s:8} upsert {e['upsert_seconds']:7.2f} s ({e['n'] / e['upsert_seconds']:7.0f}/s), "
                             f"ready +{e['ready_seconds']:.2f} s{extra}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "bench-data"), help="datasets.py's folder")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="of chroma,serve,cluster (run in this order)")
    ap.add_argument("--datasets", default="faces-512-cos,clustered-128-l2")
    ap.add_argument("--ks", default="1,5,10")
    ap.add_argument("--seconds", type=float, default=10.0, help="of each concurrent (QPS) measurement")
    ap.add_argument("--latency-queries", type=int, default=1000, help="single-client queries per k (≥ 300)")
    ap.add_argument("--clients", type=int, default=16, help="client threads of the QPS measurement")
    ap.add_argument("--client-procs", type=int, default=1,
                    help="spread the Shoal client threads over this many processes (chroma stays in one)")
    ap.add_argument("--chroma-python", default="/tmp/pv/bin/python", help="an interpreter with chromadb==1.5.9")
    ap.add_argument("--nodes", type=int, default=3, help="nodes of the launched cluster")
    ap.add_argument("--out", help="write every figure to this JSON file")
    ap.add_argument("--worker-chroma", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.datasets = [d for d in args.datasets.split(",") if d]
    args.ks = [int(k) for k in args.ks.split(",") if k]
    args.data = os.path.abspath(args.data)
    if args.worker_chroma:
        return chroma_worker(args)
    if args.latency_queries < 300:
        ap.error("--latency-queries must be ≥ 300")
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        ap.error(f"unknown systems {sorted(unknown)}")
    if "chroma" in systems and not os.access(args.chroma_python, os.X_OK):
        ap.error(f"--chroma-python {args.chroma_python} is missing")
    start_load = uptime()
    print(f"start: {start_load}", file=sys.stderr, flush=True)
    figures = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "cores": os.cpu_count(), "uptime_start": start_load,
               "settings": {"systems": systems, "datasets": args.datasets, "ks": args.ks, "seconds": args.seconds,
                            "latency_queries": args.latency_queries, "clients": args.clients,
                            "client_procs": args.client_procs, "nodes": args.nodes,
                            "shoal_bin": shoal_bin() if set(systems) & {"serve", "cluster"} else None},
               "results": {}, "cpu": {}}
    try:
        for s in systems:
            print(f"[{s}] {uptime()}", file=sys.stderr, flush=True)
            cpu = CpuWindow()
            if s == "chroma":
                figures["results"][s], last = run_chroma(args, cpu)
            else:
                system = Serve() if s == "serve" else LaunchedCluster(args.nodes)
                figures["results"][s], last = run_shoal(system, args, cpu)
            figures["cpu"][s] = cpu.close(last)
            print(f"[{s}] done: {figures['cpu'][s]}", file=sys.stderr, flush=True)
        figures["complete"] = True
    finally:
        figures["uptime_end"] = uptime()
        figures["ratios"] = ratios(figures["results"], args.datasets, args.ks)
        if args.out:  # also what was measured before a failure ("complete" absent)
            with open(args.out, "w") as f:
                json.dump(figures, f, indent=1)
    print(table(figures["results"], figures["ratios"], args.datasets, args.ks, args.clients))
    print()
    for s, c in figures["cpu"].items():
        print(f"{s:8} {c['wall_s']:6.0f} s; cores used by other processes meanwhile: {c['other_cores']:.2f}")
    print(f"start: {figures['uptime_start']}")
    print(f"end:   {figures['uptime_end']}")
    if args.clients > 1 and args.client_procs == 1:
        print(f"(the {args.clients} client threads of each system share one Python process and its GIL)")


if __name__ == "__main__":
    main()
