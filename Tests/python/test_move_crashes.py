"""A shard move survives SIGKILL of its target, its source or the coordinator (issue 6).

Each case starts its own cluster (Cluster/launch.sh) of 3 nodes holding the
collection and an empty 4th, with copying slowed to 2,000 points/s, moves shard 0
to the 4th node while a client writes and searches, SIGKILLs one
process in the middle of the copy, and starts it again (launch.sh restarts what
died). The move must then complete, or roll back when its target stays down
past the retry window, and say which; every acknowledged write must be there
with its latest version, and no replica may be left where the map does not
list it.
"""
import contextlib
import json
import os
import signal
import time

import numpy as np
import pytest

import shoal
from cluster_helpers import Cluster, admin, admin_json, bench_dataset, shard_of
from conftest import wait_for
from move_load import Workload, check_placement, check_writes, shard_map

POINTS = 30_000
SHARDS = 3
RATE = 2000  # points per second a move copies


@pytest.fixture(scope="module")
def data():
    folder = bench_dataset("clustered-128-l2")
    return dict(base=np.load(os.path.join(folder, "base.npy"))[:POINTS],
                queries=np.load(os.path.join(folder, "queries.npy"))[:200])


def start_cluster(tmp_path, data, coordinator_args, node4_args="", replication_factor=1):
    """3 nodes holding the collection, and an empty node4 to move to."""
    c = Cluster(str(tmp_path / "cluster"), nodes=3, spare=1, env={"SHOAL_COORDINATOR_ARGS": coordinator_args})
    c.launch()
    with shoal.Client(c.address, timeout=120) as client:
        col = client.create_collection("crash", dimension=128, metric="l2", shards=SHARDS, replication_factor=replication_factor)
        col.upsert([str(i) for i in range(len(data["base"]))], data["base"])
    c.launch(nodes=4, env={"SHOAL_NODE_ARGS": node4_args})
    admin_json(c.address, "add-node", c.node_address("node4"))
    c.names = {c.node_id(f"node{i}"): f"node{i}" for i in (1, 2, 3, 4)}
    return c


def start_move(cluster):
    """Starts moving shard 0 to node4; returns (task id, source name, target name)."""
    source = shard_map(cluster.address, "crash").shards[0].replicas[0].node_id
    task = admin_json(cluster.address, "move", "0", "--to", "node4")
    return task["task_id"], cluster.names[source], "node4"


def task(cluster, task_id):
    """The task as `shoal admin status TASK --json` shows it; None while the coordinator is down."""
    out = admin(cluster.address, "status", task_id, "--json", "--timeout", "5")
    return json.loads(out.stdout)[0] if out.returncode == 0 else None


def wait_mid_copy(cluster, task_id):
    def copying():
        t = task(cluster, task_id)
        return t and t["phase"] == "copy_records" and 1000 <= t["records_copied"] < t["records_total"] and t
    return wait_for(copying, 60, "the move to be in the middle of its copy")


def wait_finished(cluster, task_id, timeout=180):
    def finished():
        t = task(cluster, task_id)
        return t and t["state"] in ("done", "failed", "rolled_back") and t
    return wait_for(finished, timeout, f"{task_id} to finish")


def wait_writes_meet_the_kill(work, victim, killed):
    """Until the workload's writes have met the process killed at `killed` (monotonic):
    for the move's target, a write to shard 0 that began after the kill and was
    acknowledged (the coordinator records the target's missed write before it
    acknowledges); for the source or the coordinator, a write that failed."""
    def met():
        if victim == "target":
            return any(shard_of(i, SHARDS) == 0 for i in work.acked_since(killed))
        return work.write_failures_since(killed)
    wait_for(met, 60, f"a write to meet the killed {victim}")


def wait_more_traffic(work):
    """Until the workload has written and searched again (after the move ended)."""
    since = time.monotonic()
    wait_for(lambda: len(work.acked_since(since)) >= 20 and len(work.latencies(start=since)) >= 5, 60,
             "writes and searches after the move")


def check_after(cluster, work, data):
    check_writes(cluster.address, "crash", work, POINTS, POINTS)
    return check_placement(cluster.address, "crash", cluster.node_addresses)


class Scene:
    """A cluster with shard 0 half-copied to node4 while `work` writes and searches."""


@contextlib.contextmanager
def mid_copy(tmp_path, data, name, coordinator_args=f"--move-rate-limit {RATE}", node4_args="", replication_factor=1):
    """Yields a Scene with the workload running; stops the workload, then the cluster."""
    scene = Scene()
    scene.cluster = start_cluster(tmp_path, data, coordinator_args, node4_args, replication_factor)
    try:
        scene.work = Workload(scene.cluster.address, "crash", data["base"], data["queries"], name=name, searchers=1, pause=0.02)
        with scene.work:
            scene.task_id, scene.source, scene.target = start_move(scene.cluster)
            wait_mid_copy(scene.cluster, scene.task_id)
            yield scene
            wait_more_traffic(scene.work)  # writes and searches go on after the move ended
        scene.checked = check_after(scene.cluster, scene.work, data)
    finally:
        scene.cluster.stop()


@pytest.mark.parametrize("victim", ["target", "source", "coordinator"])
def test_move_completes_after_a_kill_mid_copy(tmp_path, data, victim):
    with mid_copy(tmp_path, data, victim) as scene:
        cluster = scene.cluster
        cluster.kill({"target": scene.target, "source": scene.source, "coordinator": "coordinator"}[victim])
        wait_writes_meet_the_kill(scene.work, victim, time.monotonic())  # the outage: writes meet a dead process
        cluster.launch()
        final = wait_finished(cluster, scene.task_id)
    assert final["state"] == "done", (final, cluster.log("coordinator"))
    assert final["records_copied"] == final["records_total"] > 0
    by_node = scene.checked
    assert 0 in by_node[cluster.node_id(scene.target)], by_node
    if victim == "target":  # the target served nothing yet: no request failed
        assert not scene.work.failures, scene.work.failures[:5]
    assert scene.work.writes_acked > 0, scene.work.summary()


def test_a_move_whose_source_misses_a_write_is_carried_on_from_the_other_replica(tmp_path, data):
    # Shard 0 has 2 replicas. Its move's source is SIGSTOPped mid-copy: a write to
    # shard 0 gives up on it after the replica write timeout (3 s) and it leaves the
    # in-sync set, so its copy lacks that write. The move fails and is retried as a
    # replicate from the other replica to node4 that replaces the source.
    with mid_copy(tmp_path, data, "stale-source", replication_factor=2) as scene:
        cluster = scene.cluster
        [other] = [r.node_id for r in shard_map(cluster.address, "crash").shards[0].replicas
                   if cluster.names[r.node_id] not in (scene.source, scene.target)]
        pid = cluster.pid(scene.source)
        os.kill(pid, signal.SIGSTOP)
        try:
            failed = wait_for(lambda: (t := task(cluster, scene.task_id)) and t["state"] == "failed" and t, 60,
                              "the move to fail once its source missed a write")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert "missed a write" in failed["error"] and failed["retried_as"], failed
        final = wait_finished(cluster, failed["retried_as"])
        waited = admin(cluster.address, "status", scene.task_id, "--watch")  # follows the retry
    assert final["state"] == "done" and final["kind"] == "replicate", (final, cluster.log("coordinator"))
    assert (final["from"], final["to"]) == (other, cluster.node_id("node4")), final
    assert waited.returncode == 0 and f"retried as {final['task_id']}" in waited.stdout, waited.stdout + waited.stderr
    assert not scene.work.failures, scene.work.failures[:5]  # the other replica took every write and read
    by_node = scene.checked
    assert 0 in by_node[cluster.node_id("node4")] and 0 in by_node[other], by_node
    assert 0 not in by_node.get(cluster.node_id(scene.source), []), by_node


def test_move_rolls_back_when_its_target_stays_down(tmp_path, data):
    args = f"--move-rate-limit {RATE} --move-retry-seconds 3 --orphan-sweep-seconds 1"
    with mid_copy(tmp_path, data, "down", args) as scene:
        cluster = scene.cluster
        cluster.kill(scene.target)
        final = wait_finished(cluster, scene.task_id, timeout=60)
        assert final["state"] == "failed" and "could not copy" in final["error"], final
        # The rollback gives up dropping the target's replica after 10 s; the
        # target then comes back holding it, and the janitor must drop it.
        wait_for(lambda: "could not be dropped now" in cluster.log("coordinator", tail=20000), 60,
                 "the rollback to give up dropping the target's replica")
        cluster.launch()
        wait_for(lambda: "dropped a replica the metadata decided to drop" in cluster.log("coordinator", tail=20000), 60,
                 "the janitor to drop the abandoned replica")
        shown = admin(cluster.address, "status", scene.task_id)
        assert shown.returncode == 0 and " failed " in shown.stdout, shown.stdout
    assert not scene.work.failures, scene.work.failures[:5]  # the target served nothing yet: no request failed
    assert 0 in scene.checked[cluster.node_id(scene.source)], scene.checked


def test_cancel_rolls_a_running_move_back(tmp_path, data):
    with mid_copy(tmp_path, data, "cancel") as scene:
        cluster = scene.cluster
        out = admin(cluster.address, "cancel", scene.task_id)
        assert out.returncode == 0, out.stdout + out.stderr
        final = wait_finished(cluster, scene.task_id, timeout=30)
        again = admin(cluster.address, "cancel", scene.task_id)
        assert again.returncode == 2 and "already finished" in again.stderr
    assert final["state"] == "rolled_back" and final["error"] == "cancelled by the operator", final
    assert not scene.work.failures, scene.work.failures[:5]
    by_node = scene.checked  # the target's replica is gone too
    assert 0 in by_node[cluster.node_id(scene.source)] and cluster.node_id("node4") not in by_node, by_node


def test_a_target_that_dies_while_its_graph_catches_up_gets_the_writes_it_missed(tmp_path, data):
    # node4 builds no graph, so the move waits for it (8 s here) after copying; the
    # target dies then, writes to it fail unseen by clients, and catch-up copies again.
    args = f"--move-rate-limit {RATE} --move-index-wait-seconds 8"
    with mid_copy(tmp_path, data, "graph", args, node4_args="--pause-indexing") as scene:
        cluster = scene.cluster

        def copied():
            t = task(cluster, scene.task_id)
            return t and t["phase"] == "copy_records" and t["records_copied"] == t["records_total"] > 0
        wait_for(copied, 60, "the copy to finish (the graph wait begins)")
        cluster.kill(scene.target)
        wait_writes_meet_the_kill(scene.work, "target", time.monotonic())  # writes to the shard now miss the target
        cluster.launch()  # node4 comes back indexing
        final = wait_finished(cluster, scene.task_id)
    assert final["state"] == "done", (final, cluster.log("coordinator"))
    assert "move copies again: the target missed writes" in cluster.log("coordinator", tail=50000)
    assert not scene.work.failures, scene.work.failures[:5]
    assert 0 in scene.checked[cluster.node_id(scene.target)], scene.checked
