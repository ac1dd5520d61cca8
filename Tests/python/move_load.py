"""A client workload that runs while shards move, and the checks made after it.

`Workload` runs searcher threads and one writer thread against a collection of
`base` points whose ids are "0".."n-1". The writer upserts batches of new ids
and overwrites of existing ids (the same vector, a new `write` tag in the metadata),
and deletes some of its own new ids. It records the outcome of every write: the
latest acknowledged state of an id, and the writes whose outcome is unknown
because the call failed (they may or may not have been applied).

`check_writes` then reads every id the writer touched and checks it shows its
latest acknowledged write (or a later unacknowledged one); `check_placement`
checks that each shard has its replication factor of in-sync replicas and that no
node keeps a replica the shard map does not list.
"""
import threading
import time

import grpc
import numpy as np

import shoal
from conftest import wait_for
from shoal.v1 import admin_pb2, admin_pb2_grpc, shard_pb2, shard_pb2_grpc, types_pb2

DELETED = "deleted"
PRESENT = ("present",)  # a base point the workload never acknowledged a write to: as it was


class Workload:
    def __init__(self, address, collection, base, queries, name="w", searchers=2, batch=10, pause=0.01, seed=5):
        self.address = address
        self.collection = collection
        self.base = base
        self.queries = queries
        self.searcher_count = searchers
        self.batch = batch
        self.pause = pause
        self.rng = np.random.default_rng(seed)
        self.name = name
        self.prefix = f"new-{name}-"  # this workload's own new ids
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        # id -> the latest acknowledged state: ("upsert", tag, vector) or (DELETED,)
        self.acked = {}
        # id -> states of failed (unacknowledged) writes issued after the latest ack
        self.unknown = {}
        self.failures = []  # (what, error text, monotonic time)
        self.search_ms = []  # (monotonic time, latency ms) of successful searches
        self.writes_acked = 0
        self.acked_calls = []  # (monotonic time the call began, ids) of each acknowledged write
        self.next_new = 0
        self.gen = 0
        self.threads = []

    # -- running -------------------------------------------------------------

    def start(self):
        for i in range(self.searcher_count):
            self.threads.append(threading.Thread(target=self._search_loop, args=(i,), daemon=True))
        self.threads.append(threading.Thread(target=self._write_loop, daemon=True))
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in self.threads), "a workload thread did not stop"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _fail(self, what, error):
        with self.lock:
            self.failures.append((what, str(error)[:300], time.monotonic()))

    def _search_loop(self, index):
        rng = np.random.default_rng(100 + index)
        with shoal.Client(self.address, timeout=30) as client:
            col = client.get_collection(self.collection)
            while not self.stop_event.is_set():
                q = self.queries[rng.integers(len(self.queries))]
                t0 = time.monotonic()
                try:
                    hits = col.search(q, k=10, include_metadata=False)
                    if len(hits) != 10:
                        self._fail("search", f"{len(hits)} hits, expected 10")
                        continue
                    with self.lock:
                        self.search_ms.append((t0, (time.monotonic() - t0) * 1000))
                except shoal.ShoalError as e:
                    self._fail("search", e)

    def _write_loop(self):
        with shoal.Client(self.address, timeout=30) as client:
            col = client.get_collection(self.collection)
            while not self.stop_event.is_set():
                self._write_once(col)
                time.sleep(self.pause)

    def _write_once(self, col):
        rng = self.rng
        half = self.batch // 2
        old = [int(i) for i in rng.choice(len(self.base), half, replace=False)]
        new = list(range(self.next_new, self.next_new + self.batch - half))
        self.next_new += len(new)
        self.gen += 1
        ids = [str(i) for i in old] + [f"{self.prefix}{n}" for n in new]
        # New points are copies of base points moved far off, so they never enter a
        # query's true top-10 and the dataset's ground truth stays valid.
        vectors = np.concatenate([self.base[old], self.base[[n % len(self.base) for n in new]] + 1000.0])
        tag = f"{self.name}/{self.gen}"  # which write of which workload
        states = [("upsert", tag, vectors[j]) for j in range(len(ids))]
        self._apply(ids, states, lambda: col.upsert(ids, vectors, [{"write": tag}] * len(ids)), "upsert")
        # Delete one earlier new id now and then: deletes (tombstones) must move too.
        if self.gen % 3 == 0 and self.next_new > 50:
            victim = f"{self.prefix}{int(rng.integers(self.next_new - 50))}"
            self._apply([victim], [(DELETED,)], lambda: col.delete([victim]), "delete")

    def _apply(self, ids, states, call, what):
        began = time.monotonic()
        try:
            call()
        except shoal.ShoalError as e:
            self._fail(what, e)
            with self.lock:
                for i, s in zip(ids, states):
                    self.unknown.setdefault(i, []).append(s)
            return
        with self.lock:
            for i, s in zip(ids, states):
                self.acked[i] = s
                self.unknown.pop(i, None)
            self.writes_acked += len(ids)
            self.acked_calls.append((began, ids))

    # -- figures ---------------------------------------------------------------

    def acked_since(self, start):
        """Ids of the acknowledged writes whose call began at or after `start` (monotonic)."""
        with self.lock:
            return [i for began, ids in self.acked_calls if began >= start for i in ids]

    def write_failures_since(self, start):
        """Failed writes (not searches) that failed at or after `start` (monotonic)."""
        with self.lock:
            return [f for f in self.failures if f[0] != "search" and f[2] >= start]

    def latencies(self, start=None, end=None):
        with self.lock:
            return [ms for t, ms in self.search_ms if (start is None or t >= start) and (end is None or t < end)]

    def summary(self):
        ms = self.latencies()
        return (f"{len(ms)} searches (p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms), "
                f"{self.writes_acked} writes acknowledged, {len(self.failures)} failed requests"
                if ms else f"no searches, {len(self.failures)} failed requests")


def check_writes(address, collection, workload, count_before, base_count):
    """Every id the workload wrote shows its latest acknowledged write (or one of the
    later unacknowledged ones); the collection holds `count_before` points plus the
    workload's live new ones; base points ("0" ..< base_count) are all there."""
    with shoal.Client(address, timeout=60) as client:
        col = client.get_collection(collection)
        ids = sorted(set(workload.acked) | set(workload.unknown))
        found = {}
        for start in range(0, len(ids), 500):
            for p in col.get(ids[start:start + 500], include_vector=True):
                found[p.id] = p
        wrong = []
        for i in ids:
            if i in workload.acked:
                allowed = [workload.acked[i]]
            else:  # never acknowledged: as before the workload
                allowed = [(DELETED,)] if i.startswith(workload.prefix) else [PRESENT]
            allowed += workload.unknown.get(i, [])
            got = found.get(i)
            if not any(_matches(got, s) for s in allowed):
                wrong.append((i, _describe(got), [_describe_state(s) for s in allowed]))
        assert not wrong, f"{len(wrong)} ids do not show their latest acknowledged write, e.g. {wrong[:5]}"
        live_new = sum(1 for i, s in workload.acked.items() if i.startswith(workload.prefix) and s[0] == "upsert")
        if not workload.unknown:
            assert col.count() == count_before + live_new, (col.count(), count_before, live_new)
        # Spot check the base points nobody touched: present, with their vectors.
        untouched = [str(i) for i in range(0, base_count, max(1, base_count // 2000)) if str(i) not in workload.acked]
        got = {p.id: p for p in col.get(untouched, include_vector=True)}
        assert len(got) == len(untouched), f"{len(untouched) - len(got)} untouched base points are missing"


def _matches(point, state):
    if state[0] == DELETED:
        return point is None
    if state is PRESENT:
        return point is not None
    if point is None:
        return False
    _, tag, vector = state
    if point.metadata.get("write") != tag:
        return False
    return vector is None or np.array_equal(point.vector, np.asarray(vector, dtype=np.float32))


def _describe(point):
    return "absent" if point is None else f"write {point.metadata.get('write')}"


def _describe_state(state):
    return {DELETED: "absent", "present": "present"}.get(state[0]) or f"write {state[1]}"


def shard_map(address, collection):
    with grpc.insecure_channel(address) as channel:
        return admin_pb2_grpc.AdminStub(channel).ShardMap(admin_pb2.ShardMapRequest(collection=collection), timeout=30)


def node_replicas(address):
    """{(collection, shard): live points} held by the node at `address`."""
    return {(r.replica.collection, r.replica.shard_id): r.points for r in _stats(address)}


def check_placement(address, collection, node_addresses):
    """Each shard has exactly its replication factor of replicas, all in sync (READY),
    on distinct nodes that hold them; no node holds a replica of the collection that
    the map does not list. Returns {node_id: [shard ids]}."""
    smap = shard_map(address, collection)
    with shoal.Client(address) as client:
        col = client.get_collection(collection)
        rf, points = col.info.replication_factor, col.count()
    by_node = {}
    listed = set()
    for s in smap.shards:
        assert len(s.replicas) == rf, f"shard {s.shard_id} has {len(s.replicas)} replicas, not {rf}: {s.replicas}"
        assert len({r.node_id for r in s.replicas}) == rf, f"shard {s.shard_id} has two replicas on one node: {s.replicas}"
        for r in s.replicas:
            assert r.state == types_pb2.READY, f"shard {s.shard_id} on {r.node_id} is {types_pb2.ReplicaState.Name(r.state)}"
            by_node.setdefault(r.node_id, []).append(s.shard_id)
            listed.add((r.address, s.shard_id))
    held = 0
    for node_address in node_addresses:
        replicas = {k: v for k, v in node_replicas(node_address).items() if k[0] == collection}
        for (_, shard), count in replicas.items():
            assert (node_address, shard) in listed, f"node {node_address} still holds shard {shard} ({count} points)"
            held += count
    assert held == rf * points, "the nodes' replicas hold other points than the collection"
    return by_node


def wait_for_indexing(node_addresses, timeout=600):
    """Until every replica on these nodes has its graph caught up."""
    wait_for(lambda: all(r.indexing_lag == 0 for a in node_addresses for r in _stats(a)), timeout,
             "the nodes' graphs to catch up")


def _stats(address):
    with grpc.insecure_channel(address) as channel:
        return shard_pb2_grpc.ShardStub(channel).Stats(shard_pb2.StatsRequest(), timeout=30).replicas


def recall_at_10(col, queries, gt):
    results = col.search_batch(queries, k=10, include_metadata=False)
    return float(np.mean([len({h.id for h in hits} & {str(i) for i in gt[q][:10]}) / 10
                          for q, hits in enumerate(results)]))
