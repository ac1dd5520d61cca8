"""Replica reads (issue 12) on a real cluster from Cluster/launch.sh: 3 nodes, one
collection of 6 shards with replication factor 2, a search loop running.

- A node SIGSTOPped for ~6 s: no search fails, none takes anywhere near the pause
  (hedged on the other replica), exact results stay the same; `shoal admin nodes`
  shows the node down, and up again after SIGCONT.
- A node SIGKILLed: no search fails (retried on the other replica), and count and
  get still see every point.

Each test starts its own cluster and stops it (SIGCONT first) in `finally`.
"""
import json
import os
import signal
import threading
import time

import numpy as np
import pytest

import shoal
from cluster_helpers import Cluster, admin, admin_json
from conftest import wait_for

DIM = 32
POINTS = 3000
QUERIES = 20
PAUSE = 6.0
# A functional bound, not a benchmark: a paused replica costs a hedging delay
# (at most 1 s), never the pause or the 10 s deadline.
SLOWEST = 2.0


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(str(tmp_path / "cluster"), nodes=3)
    try:
        c.launch()
        yield c
    finally:
        for i in range(1, c.nodes + 1):
            try:
                os.kill(c.pid(f"node{i}"), signal.SIGCONT)  # a paused process cannot act on SIGTERM
            except (FileNotFoundError, ProcessLookupError):
                pass
        c.stop()


@pytest.fixture
def loaded(cluster):
    client = shoal.Client(cluster.address, timeout=10)
    rng = np.random.default_rng(12)
    vectors = rng.standard_normal((POINTS, DIM)).astype(np.float32)
    col = client.create_collection("replicated", dimension=DIM, metric="l2", shards=6, replication_factor=2)
    ids = [f"p-{i}" for i in range(POINTS)]
    for start in range(0, POINTS, 500):
        col.upsert(ids=ids[start:start + 500], vectors=vectors[start:start + 500])
    placement = admin_json(cluster.address, "shards")
    replicas = placement["shards"] if isinstance(placement, dict) else placement
    assert len(replicas) == 12, replicas  # 6 shards × 2 replicas
    queries = rng.standard_normal((QUERIES, DIM)).astype(np.float32)
    expected = [[h.id for h in col.search(q, k=10, exact=True)] for q in queries]
    try:
        yield col, queries, expected
    finally:
        client.close()


class SearchLoop(threading.Thread):
    """Exact searches of `queries` one after another until stopped; records each
    one's latency, and every failure or result different from `expected`."""

    def __init__(self, address, queries, expected):
        super().__init__(daemon=True)
        self.client = shoal.Client(address, timeout=10)
        self.col = self.client.get_collection("replicated")
        self.queries, self.expected = queries, expected
        self.latencies, self.failures = [], []
        self.halt = threading.Event()

    def run(self):
        i = 0
        while not self.halt.is_set():
            q = i % len(self.queries)
            start = time.monotonic()
            try:
                hits = [h.id for h in self.col.search(self.queries[q], k=10, exact=True)]
                if hits != self.expected[q]:
                    self.failures.append(f"query {q}: {hits} != {self.expected[q]}")
            except shoal.ShoalError as error:
                self.failures.append(f"query {q}: {error}")
            self.latencies.append(time.monotonic() - start)
            i += 1

    def stop(self):
        self.halt.set()
        self.join(timeout=30)
        self.client.close()

    def searches_since(self, n):
        return len(self.latencies) - n


def health(address, node_id=None):
    """HEALTH of `node_id` (of every node without one) from `shoal admin nodes --json`;
    None when the admin call itself fails (it is polled, and the machine may be busy)."""
    out = admin(address, "nodes", "--json")
    if out.returncode != 0:
        return None
    listed = {n["node_id"]: n["health"] for n in json.loads(out.stdout)}
    return listed if node_id is None else listed.get(node_id)


def test_paused_node_costs_a_hedge_not_the_pause(cluster, loaded):
    col, queries, expected = loaded
    paused = cluster.node_id("node2")
    loop = SearchLoop(cluster.address, queries, expected)
    loop.start()
    try:
        wait_for(lambda: len(loop.latencies) >= 50, 30, "searches before the pause")
        before = len(loop.latencies)
        os.kill(cluster.pid("node2"), signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            wait_for(lambda: health(cluster.address, paused) == "down", 20, f"node2 ({paused}) shown down")
            time.sleep(max(0.0, PAUSE - (time.monotonic() - stopped)))  # the pause itself, not a readiness wait
            during = loop.searches_since(before)
        finally:
            os.kill(cluster.pid("node2"), signal.SIGCONT)
        wait_for(lambda: health(cluster.address, paused) == "up", 20, f"node2 ({paused}) shown up again")
        after = len(loop.latencies)
        wait_for(lambda: loop.searches_since(after) >= 50, 30, "searches after the pause")
    finally:
        loop.stop()
    assert loop.failures == []
    assert during > 20, f"only {during} searches answered during the pause"
    slowest = max(loop.latencies[before:])
    print(f"paused: {during} searches during the pause, slowest since {slowest * 1000:.0f} ms")
    assert slowest < SLOWEST, f"the slowest search took {slowest:.2f} s with a node paused {PAUSE} s"
    wait_for(lambda: set((health(cluster.address) or {"-": None}).values()) == {"up"}, 20, "every node shown up")


def test_killed_node_fails_no_search(cluster, loaded):
    col, queries, expected = loaded
    loop = SearchLoop(cluster.address, queries, expected)
    loop.start()
    try:
        wait_for(lambda: len(loop.latencies) >= 50, 30, "searches before the kill")
        before = len(loop.latencies)
        cluster.kill("node3")
        wait_for(lambda: loop.searches_since(before) >= 200, 60, "searches after the kill")
    finally:
        loop.stop()
    assert loop.failures == []
    print(f"killed: {len(loop.latencies) - before} searches since, slowest {max(loop.latencies[before:]) * 1000:.0f} ms")
    assert max(loop.latencies[before:]) < SLOWEST
    # The other reads take the same way round the dead node.
    assert col.count() == POINTS
    got = col.get([f"p-{i}" for i in range(0, POINTS, 7)])
    assert len(got) == len(range(0, POINTS, 7))
    wait_for(lambda: health(cluster.address, cluster.node_id("node3")) == "down", 20, "node3 shown down")
