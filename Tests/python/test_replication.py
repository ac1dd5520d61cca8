"""Replication and failover through the public API, the CLI and real processes.

3 nodes, replication factor 2, 6 shards, 100k points; a client keeps searching and
writing (move_load.Workload, which records every acknowledged write). A node is
SIGKILLed, or paused with SIGSTOP, under that load: no request fails (the
coordinator retries reads on the other replica and takes the missing replica out
of the in-sync set before it acknowledges a write), writes keep being acknowledged,
the node's replicas catch up when it is back, and afterwards `shoal admin verify`
finds every pair of replicas identical and every acknowledged write is there.
A node that never comes back has its replicas re-created on the others
(--replica-loss-timeout), and no shard is ever without an in-sync replica.
"""
import os
import signal
import subprocess
import time

import grpc
import numpy as np
import pytest

import shoal
from cluster_helpers import Cluster, admin, admin_json, shoal_bin
from conftest import wait_for
from move_load import Workload, check_writes
from shoal.v1 import types_pb2, vector_store_pb2, vector_store_pb2_grpc

POINTS = 100_000
DIM = 32
SHARDS = 6
COLLECTION = "rep"


def load(address, name, points, shards=SHARDS, rf=2, dim=DIM, seed=1):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((points, dim)).astype(np.float32)
    with shoal.Client(address, timeout=120) as client:
        col = client.create_collection(name, dim, metric="l2", shards=shards, replication_factor=rf)
        for start in range(0, points, 5000):
            end = min(points, start + 5000)
            col.upsert([str(i) for i in range(start, end)], base[start:end])
        assert col.count() == points
    return base


def replica_states(address, name):
    """[(shard, node_id, state)] from `shoal admin shards --json`."""
    return [(r["shard"], r["node_id"], r["state"]) for r in admin_json(address, "shards", "--collection", name)]


def all_in_sync(address, name, rf=2):
    rows = replica_states(address, name)
    per_shard = {}
    for shard, _, state in rows:
        per_shard.setdefault(shard, []).append(state)
    return len(per_shard) == SHARDS and all(states == ["in_sync"] * rf for states in per_shard.values())


def verify(address, name):
    out = subprocess.run([shoal_bin(), "admin", "--coordinator", address, "verify", "--collection", name],
                         capture_output=True, text=True, timeout=300)
    return out.returncode, out.stdout + out.stderr


def wait_until_verified(address, name, timeout=120):
    """Every replica in sync, and verify finds every pair identical."""
    wait_for(lambda: all_in_sync(address, name), timeout, "every replica back in sync")
    deadline = time.monotonic() + 30
    while True:
        code, text = verify(address, name)
        if code == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert code == 0, text


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    cluster = Cluster(str(tmp_path_factory.mktemp("replication")), nodes=3)
    try:
        cluster.launch()
        base = load(cluster.address, COLLECTION, POINTS)
        yield cluster, base
    finally:
        cluster.stop()


def run_fault(cluster, base, fault, restore, during=6.0):
    """Runs the workload, applies `fault` after 3 s, `restore` after `during` more;
    returns (workload, fault start, fault end, writes acknowledged while faulted)."""
    queries = base[np.random.default_rng(9).choice(len(base), 200, replace=False)]
    count_before = POINTS
    with shoal.Client(cluster.address) as client:
        count_before = client.get_collection(COLLECTION).count()
    work = Workload(cluster.address, COLLECTION, base, queries, name=fault.__name__, searchers=3, batch=20, pause=0.005)
    with work:
        time.sleep(3)
        acked_before = work.writes_acked
        t0 = time.monotonic()
        fault()
        time.sleep(during)
        acked_during = work.writes_acked - acked_before
        restore()
        t1 = time.monotonic()
        wait_until_verified(cluster.address, COLLECTION)
        time.sleep(2)
    print(f"{fault.__name__}: {work.summary()}; {acked_during} writes acknowledged during the fault")
    assert not work.failures, f"{len(work.failures)} requests failed, e.g. {work.failures[:3]}"
    assert acked_during > 0, "no write was acknowledged while the node was out"
    check_writes(cluster.address, COLLECTION, work, count_before, POINTS)
    return work, t0, t1


def test_a_node_killed_under_load_costs_no_request_and_catches_up(loaded):
    cluster, base = loaded
    assert all_in_sync(cluster.address, COLLECTION)

    def kill_node2():
        cluster.kill("node2")

    def restart_node2():
        cluster.launch()

    run_fault(cluster, base, kill_node2, restart_node2)
    tasks = admin_json(cluster.address, "status", "--all")
    assert any(t["kind"] == "catch_up" and t["state"] == "done" for t in tasks), tasks
    # Exact results are the same whichever replica answers (reads spread over both).
    with shoal.Client(cluster.address) as client:
        col = client.get_collection(COLLECTION)
        for q in base[:5]:
            first = [(h.id, h.distance) for h in col.search(q, k=10, exact=True)]
            for _ in range(10):
                assert [(h.id, h.distance) for h in col.search(q, k=10, exact=True)] == first


def test_a_paused_node_costs_at_most_the_hedging_delay_and_serves_no_stale_read(loaded):
    cluster, base = loaded
    wait_for(lambda: all_in_sync(cluster.address, COLLECTION), 60, "every replica in sync")
    pid = cluster.pid("node3")
    written = []

    def pause_node3():
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: any(n["health"] == "down" for n in admin_json(cluster.address, "nodes")), 30, "node3 seen down")

    def resume_node3():
        # Writes made while node3 was paused: visible at once after it resumes, though
        # its replicas lack them (they are stale, and serve no read until caught up).
        with shoal.Client(cluster.address) as client:
            col = client.get_collection(COLLECTION)
            ids = [f"paused-{i}" for i in range(200)]
            col.upsert(ids, np.full((200, DIM), 500.0, dtype=np.float32))
            written.extend(ids)
            os.kill(pid, signal.SIGCONT)
            for _ in range(20):
                got = col.get(ids)
                assert len(got) == len(ids), f"{len(ids) - len(got)} writes acknowledged during the pause not visible after it"
            col.delete(ids)  # the workload's checks count only its own points

    try:
        work, t0, t1 = run_fault(cluster, base, pause_node3, resume_node3, during=8.0)
    finally:
        os.kill(pid, signal.SIGCONT)
    during = work.latencies(t0, t1)
    normal = work.latencies(None, t0)
    print(f"search during the pause: {len(during)} p50 {np.percentile(during, 50):.1f} ms p99 {np.percentile(during, 99):.1f} ms "
          f"max {max(during):.0f} ms; before: p99 {np.percentile(normal, 99):.1f} ms")
    # Functional bound, not a benchmark: no search waits out the pause (8 s) or its deadline.
    assert max(during) < 3000, f"a search took {max(during):.0f} ms while node3 was paused"
    with shoal.Client(cluster.address) as client:
        assert written and client.get_collection(COLLECTION).get(written) == []


def test_a_node_lost_for_good_gets_its_replicas_recreated(tmp_path):
    cluster = Cluster(str(tmp_path), nodes=3, env={"SHOAL_COORDINATOR_ARGS": "--replica-loss-timeout 4"})
    try:
        cluster.launch()
        load(cluster.address, "lost", 6000, dim=8)
        lost_id = cluster.node_id("node3")
        assert any(node == lost_id for _, node, _ in replica_states(cluster.address, "lost"))
        cluster.kill("node3")
        deadline = time.monotonic() + 120
        seen_stale = False
        while True:
            rows = replica_states(cluster.address, "lost")
            seen_stale = seen_stale or any(n == lost_id and s == "stale" for _, n, s in rows)
            shards = {}
            for shard, node, state in rows:
                shards.setdefault(shard, []).append((node, state))
            # Never a shard without an in-sync replica.
            assert all(any(s == "in_sync" for _, s in reps) for reps in shards.values()), rows
            if all(sorted(s for n, s in reps if n != lost_id) == ["in_sync", "in_sync"] and all(n != lost_id for n, _ in reps)
                   for reps in shards.values()):
                break
            assert time.monotonic() < deadline, f"the replication factor was not restored: {rows}"
            time.sleep(0.3)
        # Without a write to miss, node3's replicas were marked stale once it was seen down.
        assert seen_stale, "node3's replicas were never shown stale"
        tasks = admin_json(cluster.address, "status", "--all")
        assert any(t["kind"] == "replicate" and t["state"] == "done" for t in tasks), tasks
        with shoal.Client(cluster.address) as client:
            col = client.get_collection("lost")
            assert col.count() == 6000
            assert len(col.get([str(i) for i in range(0, 6000, 7)])) == len(range(0, 6000, 7))
        code, text = verify(cluster.address, "lost")
        assert code == 0, text
    finally:
        cluster.stop()


def test_replication_factor_defaults_and_bad_values(tmp_path):
    cluster = Cluster(str(tmp_path), nodes=2)
    try:
        cluster.launch()
        with shoal.Client(cluster.address) as client:
            assert client.create_collection("dflt", 4, metric="l2").info.replication_factor == 2
            with pytest.raises(shoal.ShoalError) as info:
                client.create_collection("toomany", 4, metric="l2", replication_factor=3)
            assert info.value.code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)
            assert "replication factor 3" in str(info.value)
            assert [c.info.name for c in client.list_collections()] == ["dflt"]
            with pytest.raises(ValueError):
                client.create_collection("bad", 4, write_consistency="quorum")
            made = client.create_collection("maj", 4, metric="l2", write_consistency="majority")
            assert made.info.write_consistency == "majority"
        # An unknown consistency value from a raw gRPC client: INVALID_ARGUMENT, nothing created.
        with grpc.insecure_channel(cluster.address) as channel:
            stub = vector_store_pb2_grpc.VectorStoreStub(channel)
            config = types_pb2.CollectionConfig(name="raw", dimension=4, metric=types_pb2.L2, write_consistency=9)
            with pytest.raises(grpc.RpcError) as raw:
                stub.CreateCollection(vector_store_pb2.CreateCollectionRequest(config=config), timeout=30)
            assert raw.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with shoal.Client(cluster.address) as client:
            assert sorted(c.info.name for c in client.list_collections()) == ["dflt", "maj"]
    finally:
        cluster.stop()


def test_majority_writes_need_a_majority_and_all_writes_need_one(tmp_path):
    """RF 2: with one node down, `majority` (2 of 2) refuses writes with UNAVAILABLE,
    `all` (the default) takes them on the replica left in sync."""
    cluster = Cluster(str(tmp_path), nodes=2)
    try:
        cluster.launch()
        with shoal.Client(cluster.address, timeout=30) as client:
            maj = client.create_collection("maj", 4, metric="l2", shards=2, write_consistency="majority")
            every = client.create_collection("all", 4, metric="l2", shards=2)
            maj.upsert(["a", "b"], np.ones((2, 4), dtype=np.float32))
            cluster.kill("node2")
            every.upsert([f"x{i}" for i in range(20)], np.ones((20, 4), dtype=np.float32))
            assert every.count() == 20
            with pytest.raises(shoal.ShoalError) as info:
                maj.upsert([f"y{i}" for i in range(20)], np.ones((20, 4), dtype=np.float32))
            assert info.value.code == grpc.StatusCode.UNAVAILABLE and "majority" in str(info.value)
            assert len(maj.get(["a", "b"])) == 2  # reads still served by the replica left
    finally:
        cluster.stop()
