"""Cluster metadata in etcd (issue 11), on real clusters from Cluster/launch.sh.

- Two coordinators, three nodes plus a fourth: under search and write load through
  a client given both coordinators, the leader is SIGKILLed during a rebalance. No
  request fails, the other coordinator finishes the moves, every acknowledged write
  is there.
- The leader is SIGSTOPped past its lease while it copies a shard; the new leader
  resumes and finishes that move and runs another; the old one, woken, changes
  nothing: etcd and the nodes refuse it.
- A coordinator restarted with its clock an hour behind updates and deletes ids:
  every acknowledged update and delete is visible.
- etcd's data is wiped: nothing on the nodes is deleted, `shoal admin recover`
  brings back every collection and point, searches answer as before.
- etcd unreachable at start: a clear error and exit 1; etcd lost while running:
  writes fail with UNAVAILABLE, and work again once etcd is back.

Each test starts its own cluster (they kill parts of it) and stops it.
"""
import json
import os
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest

import shoal
from cluster_helpers import Cluster, admin, admin_json
from conftest import shoal_bin, wait_for
from move_load import Workload, check_writes, node_replicas

DIM = 32


def points(n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, DIM)).astype(np.float32)


def load_collection(address, name, base, shards):
    with shoal.Client(address, timeout=120) as client:
        col = client.create_collection(name, dimension=DIM, metric="l2", shards=shards, replication_factor=1)
        col.upsert([str(i) for i in range(len(base))], base)
        return col.count()


def coordinators(address):
    return admin_json(address, "coordinators")


def wait_leader(address, other_than=None, timeout=30):
    """The leading coordinator's name once one leads (and is not `other_than`)."""
    def leader():
        out = admin(address, "coordinators", "--json", timeout=10)
        if out.returncode != 0:
            return None
        name = json.loads(out.stdout)["leader"]
        return name if name and name != other_than else None
    return wait_for(leader, timeout, "a leading coordinator")


def tasks(address):
    return admin_json(address, "status", "--all")


def moves_of(address):
    doc = tasks(address)
    return doc["tasks"] if isinstance(doc, dict) else doc


def all_moves_done(address):
    out = admin(address, "status", "--all", "--json", timeout=30)
    if out.returncode != 0:
        return False
    doc = json.loads(out.stdout)
    listed = doc["tasks"] if isinstance(doc, dict) else doc
    return bool(listed) and all(t["state"] in ("done", "failed", "rolled_back") for t in listed) and listed


def shard_layout(address, collection):
    doc = admin_json(address, "shards", "--collection", collection)
    rows = doc["shards"] if isinstance(doc, dict) else doc
    return sorted((r["shard"], r["node_id"], r["state"]) for r in rows if "shard" in r and "node_id" in r)


def rebalance_onto_node4(c, collection, queries):
    """Starts node4, rebalances onto it; returns the answers to `queries` and what each node holds."""
    c.launch(nodes=4)  # a coordinator that was down starts again with node4 in its --nodes
    out = admin(c.address, "add-node", c.node_address("node4"))
    assert out.returncode == 0 or "ALREADY_EXISTS" in out.stderr, out.stderr
    out = admin(c.address, "rebalance", "--wait", timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    with shoal.Client(c.address, timeout=60) as client:
        answers = [[h.id for h in hits] for hits in client.get_collection(collection).search_batch(queries, k=10)]
    return answers, {n: node_replicas(c.node_address(n)) for n in ("node1", "node2", "node3", "node4")}


def replace_etcd_data(c, source=None):
    """Stops coordinator1 and etcd, puts `source`'s copy of etcd's data in place (None:
    an empty folder, all metadata lost), and launches again."""
    c.kill("coordinator1")
    c.kill("etcd1")
    data = os.path.join(c.run_dir, "etcd1", "data")
    shutil.rmtree(data)
    if source:
        shutil.copytree(source, data)
    else:
        os.makedirs(data)
    c.launch()


def test_leader_killed_during_rebalance_fails_no_request(tmp_path):
    c = Cluster(str(tmp_path / "cluster"), nodes=3, spare=1, coordinators=2,
                env={"SHOAL_COORDINATOR_ARGS": "--move-rate-limit 500"})
    c.launch()
    try:
        both = ",".join(c.coordinator_addresses)
        base = points(12_000)
        queries = base[:200] + 0.01
        before = load_collection(both, "failover", base, shards=6)
        c.launch(nodes=4)
        assert admin(both, "add-node", c.node_address("node4")).returncode == 0
        leader = wait_leader(both)
        with Workload(both, "failover", base, queries, name="failover") as work:
            time.sleep(1)
            out = admin(both, "rebalance")
            assert out.returncode == 0, out.stdout + out.stderr
            wait_for(lambda: any(t["state"] == "running" for t in moves_of(both)), 60, "a running move")
            time.sleep(0.5)  # mid-copy
            c.kill(leader)
            killed = time.monotonic()
            successor = wait_leader(both, other_than=leader)
            failover_s = time.monotonic() - killed
            wait_for(lambda: all_moves_done(both), 300, "the moves to finish under the new leader")
            time.sleep(1)
        print(f"failover: {leader} killed, {successor} led after {failover_s:.2f} s; {work.summary()}")
        assert work.failures == [], work.failures[:5]
        finished = moves_of(both)
        assert all(t["state"] == "done" for t in finished), finished
        survivor = [a for a in c.coordinator_addresses if a != c.address] if leader == "coordinator1" else [c.address]
        check_writes(",".join(survivor), "failover", work, before, len(base))
        # The fourth node took shards: the new leader finished the rebalance.
        assert any(s[1] == c.node_id("node4") for s in shard_layout(both, "failover"))
    finally:
        c.stop()


def test_paused_leader_is_fenced_by_etcd_and_the_nodes(tmp_path):
    c = Cluster(str(tmp_path / "cluster"), nodes=3, spare=1, coordinators=2,
                env={"SHOAL_COORDINATOR_ARGS": "--move-rate-limit 400 --lease-ttl-seconds 3"})
    c.launch()
    paused = None
    try:
        both = ",".join(c.coordinator_addresses)
        base = points(8_000, seed=2)
        before = load_collection(both, "fenced", base, shards=4)
        c.launch(nodes=4)
        assert admin(both, "add-node", c.node_address("node4")).returncode == 0
        leader = wait_leader(both)
        layout = shard_layout(both, "fenced")
        shard, source = layout[0][0], layout[0][1]
        out = admin(both, "move", str(shard), "--collection", "fenced", "--to", "node4")
        assert out.returncode == 0, out.stdout + out.stderr
        wait_for(lambda: any(t["state"] == "running" and t["records_copied"] > 0 for t in moves_of(both)), 60, "copying")
        paused = c.pid(leader)
        os.kill(paused, signal.SIGSTOP)
        successor = wait_leader(both, other_than=leader, timeout=30)
        assert successor != leader
        # The new leader resumes the move, then makes one of its own.
        wait_for(lambda: all_moves_done(both), 300, "the paused leader's move to finish under the new leader")
        second = [s for s in shard_layout(both, "fenced") if s[1] != c.node_id("node4")][0]
        out = admin(both, "move", str(second[0]), "--collection", "fenced", "--to", "node4", "--wait", timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        made = shard_layout(both, "fenced")
        os.kill(paused, signal.SIGCONT)
        paused = None
        time.sleep(6)  # the old leader wakes, finds its lease gone and its term refused
        assert shard_layout(both, "fenced") == made, "the woken old leader changed the placement"
        assert all(t["state"] == "done" for t in moves_of(both))
        new = coordinators(both)
        assert new["leader"] == successor
        terms = {n: node_stats_term(c.node_address(n)) for n in ("node1", "node2", "node3", "node4")}
        term = next(x["term"] for x in new["coordinators"] if x["name"] == successor)
        assert all(t == term for t in terms.values()), (terms, term)
        with shoal.Client(both, timeout=60) as client:
            col = client.get_collection("fenced")
            assert col.count() == before
            got = col.get([str(i) for i in range(0, len(base), 7)], include_vector=True)
            assert len(got) == len(range(0, len(base), 7))
            assert all(np.array_equal(p.vector, base[int(p.id)]) for p in got)
        log = c.log(leader, tail=20000)
        assert "no longer leads" in log or "refused" in log, log[-2000:]
    finally:
        if paused:
            os.kill(paused, signal.SIGCONT)
        c.stop()


def node_stats_term(address):
    import grpc
    from shoal.v1 import shard_pb2, shard_pb2_grpc
    with grpc.insecure_channel(address) as channel:
        return shard_pb2_grpc.ShardStub(channel).Stats(shard_pb2.StatsRequest(), timeout=10).highest_term


def test_clock_set_back_loses_no_update_or_delete(tmp_path):
    c = Cluster(str(tmp_path / "cluster"), nodes=2)
    c.launch()
    try:
        base = points(2_000, seed=3)
        load_collection(c.address, "clock", base, shards=4)
        ids = [str(i) for i in range(500)]
        c.kill("coordinator1")
        c.launch(env={"SHOAL_COORDINATOR_ARGS": "--clock-offset-ms=-3600000"})  # an hour behind
        with shoal.Client(c.address, timeout=60) as client:
            col = client.get_collection("clock")
            updated = points(250, seed=4)
            assert col.upsert(ids[:250], updated, [{"v": 2}] * 250) == 250
            assert col.delete(ids[250:]) == 250
            got = {p.id: p for p in col.get(ids, include_vector=True)}
            assert sorted(got) == sorted(ids[:250])
            assert all(np.array_equal(got[i].vector, updated[k]) and got[i].metadata["v"] == 2 for k, i in enumerate(ids[:250]))
            assert col.count() == len(base) - 250
    finally:
        c.stop()


def test_wiped_metadata_is_recovered_from_the_nodes(tmp_path):
    c = Cluster(str(tmp_path / "cluster"), nodes=3, spare=1)
    c.launch()
    try:
        base = points(6_000, seed=5)
        queries = base[:50] + 0.01
        count = load_collection(c.address, "lost", base, shards=6)
        answers, held = rebalance_onto_node4(c, "lost", queries)
        replace_etcd_data(c)  # every bit of metadata lost
        with shoal.Client(c.address, timeout=60) as client:
            with pytest.raises(shoal.ShoalError):
                client.get_collection("lost").count()
        time.sleep(3)  # janitor sweeps: nothing may be dropped on a guess
        assert {n: node_replicas(c.node_address(n)) for n in held} == held
        orphans = admin_json(c.address, "orphans")["orphans"]
        assert len(orphans) == 6 and all(o["reason"] == "collection unknown" for o in orphans)
        out = admin(c.address, "recover")
        assert out.returncode == 0, out.stdout + out.stderr
        assert admin_json(c.address, "orphans")["orphans"] == []
        with shoal.Client(c.address, timeout=60) as client:
            col = client.get_collection("lost")
            assert col.count() == count
            again = [[h.id for h in hits] for hits in col.search_batch(queries, k=10)]
            assert again == answers
            assert (col.info.dimension, col.info.metric, col.info.shards) == (DIM, "l2", 6)
        assert {n: node_replicas(c.node_address(n)) for n in held} == held
    finally:
        c.stop()


def test_unreachable_etcd_at_start_is_a_clear_error(tmp_path):
    dead = Cluster(str(tmp_path / "x")).base_port + 80  # nobody listens there
    out = subprocess.run(
        [shoal_bin(), "coordinator", "--listen", "127.0.0.1:0", "--data", str(tmp_path / "c"),
         "--etcd", f"127.0.0.1:{dead}", "--etcd-timeout-seconds", "2"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 1, out
    assert "etcd" in out.stderr and f"127.0.0.1:{dead}" in out.stderr, out.stderr[-2000:]


def test_etcd_lost_while_running_makes_writes_unavailable_until_it_returns(tmp_path):
    c = Cluster(str(tmp_path / "cluster"), nodes=2, env={"SHOAL_COORDINATOR_ARGS": "--lease-ttl-seconds 3"})
    c.launch()
    try:
        base = points(1_000, seed=6)
        load_collection(c.address, "etcdloss", base, shards=2)
        with shoal.Client(c.address, timeout=10) as client:
            col = client.get_collection("etcdloss")
            c.kill("etcd1")

            def refused():
                try:
                    col.upsert(["x"], base[:1])
                    return False
                except shoal.ShoalError as e:
                    assert e.code.name == "UNAVAILABLE", e
                    return True
            wait_for(refused, 30, "writes to be refused with UNAVAILABLE")
            # Never a wrong answer: what a read returns is what was written.
            try:
                hits = col.search(base[5], k=1)
                assert hits[0].id == "5"
            except shoal.ShoalError as e:
                assert e.code.name == "UNAVAILABLE"
            c.launch()  # etcd back (same data)

            def accepted():
                try:
                    return col.upsert(["y"], base[:1]) == 1
                except shoal.ShoalError:
                    return False
            wait_for(accepted, 60, "writes to work again once etcd is back")
            assert col.count() == len(base) + 1 + (1 if col.get(["x"]) else 0)
    finally:
        c.stop()


def test_metadata_restored_from_an_older_snapshot_deletes_nothing_and_is_recovered(tmp_path):
    """etcd's data from before a rebalance is put back (the trial the issue describes
    with the old state file): the shards that moved are not dropped from the new
    node, and `recover` makes every point readable again."""
    c = Cluster(str(tmp_path / "cluster"), nodes=3, spare=1)
    c.launch()
    try:
        base = points(8_000, seed=8)
        queries = base[:50] + 0.01
        count = load_collection(c.address, "restored", base, shards=8)
        # A copy of etcd's data now: stop etcd for a consistent copy, start it again.
        c.kill("coordinator1")
        c.kill("etcd1")
        backup = str(tmp_path / "etcd-backup")
        shutil.copytree(os.path.join(c.run_dir, "etcd1", "data"), backup)
        answers, held = rebalance_onto_node4(c, "restored", queries)
        moved = held["node4"]
        assert moved, "the rebalance moved nothing onto node4"
        replace_etcd_data(c, backup)  # the old etcd data back
        time.sleep(3)  # the janitor sweeps (every 10 s; at least once when the leader starts)
        assert {n: node_replicas(c.node_address(n)) for n in held} == held, "a replica was dropped on a guess"
        orphans = admin_json(c.address, "orphans")["orphans"]
        assert sorted((o["collection"], o["shard"]) for o in orphans) == sorted(moved)
        out = admin(c.address, "recover")
        assert out.returncode == 0, out.stdout + out.stderr
        assert admin_json(c.address, "orphans")["orphans"] == []
        with shoal.Client(c.address, timeout=60) as client:
            col = client.get_collection("restored")
            assert col.count() == count
            assert [[h.id for h in hits] for hits in col.search_batch(queries, k=10)] == answers
            # Writes work again everywhere (the node terms are above what the restored etcd counts).
            assert col.upsert([str(i) for i in range(0, 8_000, 97)], base[0:8_000:97]) == len(range(0, 8_000, 97))
        assert {n: node_replicas(c.node_address(n)) for n in held} == held
    finally:
        c.stop()
