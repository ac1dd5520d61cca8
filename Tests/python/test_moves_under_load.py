"""Online shard moves under load (issue 6), on a real cluster from Cluster/launch.sh.

3 nodes hold clustered-128-l2 (100,000 points, L2) in 6 shards. A 4th node is
started and registered with `shoal admin add-node`, and `shoal admin rebalance
--wait` moves shards onto it while clients search and write without pause
(new ids, overwrites, deletes). Then `shoal admin drain` empties node1 under
the same load. After each: zero failed requests, every acknowledged write
present with its latest version, no shard on two nodes, an even spread, and
recall@10 as before.

The tests share one cluster and run in file order.
"""
import json
import os
import time

import numpy as np
import pytest

import shoal
from cluster_helpers import Cluster, admin, admin_json, bench_dataset
from move_load import Workload, check_placement, check_writes, node_replicas, recall_at_10, wait_for_indexing

SHARDS = 6
RECALL_QUERIES = 1000


@pytest.fixture(scope="module")
def data():
    folder = bench_dataset("clustered-128-l2")
    load = lambda name: np.load(os.path.join(folder, name))
    return dict(base=load("base.npy"), queries=load("queries.npy"), gt=load("gt_ids.npy"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, data):
    c = Cluster(str(tmp_path_factory.mktemp("moves-cluster")), nodes=3, spare=1)
    c.launch()
    try:
        base = data["base"]
        with shoal.Client(c.address, timeout=120) as client:
            col = client.create_collection("clustered", dimension=128, metric="l2", shards=SHARDS)
            col.upsert([str(i) for i in range(len(base))], base)
        wait_for_indexing(c.node_addresses)
        with shoal.Client(c.address, timeout=120) as client:
            c.recall_before = recall_at_10(client.get_collection("clustered"), data["queries"][:RECALL_QUERIES], data["gt"])
        c.figures = {"recall_before": c.recall_before}
        yield c
    finally:
        c.stop()
        figures = os.environ.get("SHOAL_TEST_FIGURES")
        if figures and getattr(c, "figures", None):
            with open(figures, "a") as f:
                f.write(json.dumps({"test": "moves_under_load", **c.figures}) + "\n")


def count(cluster):
    with shoal.Client(cluster.address) as client:
        return client.get_collection("clustered").count()


def run_under_load(cluster, data, *admin_args):
    """Runs `shoal admin ADMIN_ARGS` while the workload runs; returns (workload, admin output)."""
    work = Workload(cluster.address, "clustered", data["base"], data["queries"], name=admin_args[0])
    with work:
        time.sleep(2)  # a baseline for the latency figures
        started = time.monotonic()
        out = admin(cluster.address, *admin_args, timeout=900)
        ended = time.monotonic()
        time.sleep(1)
    before = work.latencies(end=started)
    during = work.latencies(started, ended)
    cluster.figures[admin_args[0]] = {
        "seconds": round(ended - started, 1), "searches": len(work.latencies()), "writes_acked": work.writes_acked,
        "failed_requests": len(work.failures),
        "search_p99_ms_before": round(float(np.percentile(before, 99)), 1) if before else None,
        "search_p99_ms_during": round(float(np.percentile(during, 99)), 1) if during else None,
    }
    return work, out


def assert_no_failures(work):
    assert not work.failures, f"{len(work.failures)} requests failed during the moves, e.g. {work.failures[:5]}"
    assert work.writes_acked > 100 and len(work.latencies()) > 100, work.summary()


def assert_every_task_done(tasks):
    """Each task is DONE, or FAILED and retried (its source missed a write) as one that is."""
    by_id = {t["task_id"]: t for t in tasks}
    for t in tasks:
        end = t
        while end["state"] == "failed" and end["retried_as"]:
            end = by_id[end["retried_as"]]
        assert end["state"] == "done", (t, end)


def test_rebalance_onto_a_new_node_under_load(cluster, data):
    cluster.launch(nodes=4)  # starts node4 only
    added = admin_json(cluster.address, "add-node", cluster.node_address("node4"))
    assert added["state"] == "active" and added["replicas"] == 0
    before = count(cluster)
    work, out = run_under_load(cluster, data, "rebalance", "--wait")
    assert out.returncode == 0, out.stdout + out.stderr + cluster.log("coordinator")
    lines = out.stdout.splitlines()
    moves = [line for line in lines if line.startswith("clustered ")]
    assert moves and lines[-1] == f"{len(moves)} of {len(moves)} moves done", out.stdout
    assert_no_failures(work)

    check_writes(cluster.address, "clustered", work, before, len(data["base"]))
    by_node = check_placement(cluster.address, "clustered", cluster.node_addresses)
    shards_per_node = sorted(len(v) for v in by_node.values())
    assert len(by_node) == 4 and shards_per_node == [3, 3, 3, 3], by_node  # 6 shards × 2 replicas
    assert_every_task_done(admin_json(cluster.address, "status", "--all"))


def test_drain_empties_a_node_under_load(cluster, data):
    node1 = cluster.node_id("node1")
    held = [s for (c, s) in node_replicas(cluster.node_address("node1")) if c == "clustered"]
    assert held, "node1 holds no shard to drain"
    before = count(cluster)
    work, out = run_under_load(cluster, data, "drain", "node1", "--wait")
    assert out.returncode == 0, out.stdout + out.stderr + cluster.log("coordinator")
    lines = out.stdout.splitlines()
    moves = [line for line in lines if line.startswith("clustered ")]
    assert len(moves) >= len(held) and lines[-1] == f"{len(moves)} of {len(moves)} moves done", out.stdout
    assert_no_failures(work)

    check_writes(cluster.address, "clustered", work, before, len(data["base"]))
    by_node = check_placement(cluster.address, "clustered", cluster.node_addresses)
    assert node1 not in by_node and sorted(len(v) for v in by_node.values()) == [4, 4, 4], by_node
    assert not [k for k in node_replicas(cluster.node_address("node1")) if k[0] == "clustered"]
    [listed] = [n for n in admin_json(cluster.address, "nodes") if n["node_id"] == node1]
    assert listed["state"] == "draining" and listed["replicas"] == 0


def test_recall_is_unchanged_after_the_moves(cluster, data):
    wait_for_indexing(cluster.node_addresses)
    with shoal.Client(cluster.address, timeout=120) as client:
        after = recall_at_10(client.get_collection("clustered"), data["queries"][:RECALL_QUERIES], data["gt"])
    cluster.figures["recall_after"] = after
    assert cluster.recall_before >= 0.95, cluster.recall_before
    assert abs(after - cluster.recall_before) <= 0.005, (cluster.recall_before, after)
