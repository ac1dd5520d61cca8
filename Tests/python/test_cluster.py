"""A 3-node cluster started by Cluster/launch.sh, driven by the Python client."""
import os
import subprocess
import time

import grpc
import numpy as np
import pytest

import shoal
from cluster_helpers import Cluster, bench_dataset
from shoal.v1 import types_pb2, vector_store_pb2, vector_store_pb2_grpc

def faces_dataset():
    """faces-512-cos from ../shared/bench/datasets.py (made once, cached)."""
    folder = bench_dataset("faces-512-cos")
    load = lambda name: np.load(os.path.join(folder, name))
    return load("base.npy"), load("queries.npy"), load("gt_ids.npy"), load("labels.npy")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(str(tmp_path_factory.mktemp("cluster")), nodes=3)
    c.launch()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def faces(cluster):
    base, queries, gt, labels = faces_dataset()
    client = shoal.Client(cluster.address)
    ids = [f"face-{i}" for i in range(len(base))]
    metas = [{"label": int(labels[i]), "half": "a" if i % 2 else "b", "rank": float(i % 97)} for i in range(len(base))]
    col = client.create_collection("faces", dimension=512, metric="cosine", shards=6, replication_factor=1)  # one replica: a dead node fails its shards
    col.upsert(ids=ids, vectors=base, metadatas=metas)
    one = client.create_collection("faces-one-shard", dimension=512, metric="cosine", shards=1, replication_factor=1)
    one.upsert(ids=ids, vectors=base, metadatas=metas)
    yield dict(client=client, col=col, one=one, base=base, queries=queries, gt=gt, labels=labels, metas=metas)
    client.close()


def brute(base, query, rows, k):
    b = base[rows] / np.linalg.norm(base[rows], axis=1, keepdims=True)
    q = query / np.linalg.norm(query)
    d = 1 - b @ q
    order = np.lexsort((np.array([f"face-{r}" for r in rows]), d))[:k]
    return [f"face-{rows[i]}" for i in order]


def test_collection_spread_over_three_nodes(faces, cluster):
    info = faces["col"].describe()
    assert faces["col"].count() == len(faces["base"])
    placement = vector_store_pb2_grpc.VectorStoreStub(grpc.insecure_channel(cluster.address)).DescribeCollection(
        vector_store_pb2.DescribeCollectionRequest(name="faces"), timeout=30)
    assert len(placement.shards) == 6
    assert len({s.replicas[0].node_id for s in placement.shards}) == 3
    assert sum(s.point_count for s in placement.shards) == len(faces["base"])


def test_recall_against_ground_truth(faces):
    queries, gt = faces["queries"][:200], faces["gt"][:200]
    results = faces["col"].search_batch(queries, k=10)
    recall = np.mean([len({h.id for h in hits} & {f"face-{i}" for i in gt[q][:10]}) / 10 for q, hits in enumerate(results)])
    assert recall >= 0.99, recall


def test_exact_is_identical_whatever_the_shard_count(faces):
    for q in faces["queries"][:40]:
        six = faces["col"].search(q, k=10, exact=True)
        one = faces["one"].search(q, k=10, exact=True)
        assert [h.id for h in six] == [h.id for h in one]
        assert [h.distance for h in six] == [h.distance for h in one]


@pytest.mark.parametrize("where,predicate", [
    ({"label": 0}, lambda m: m["label"] == 0),
    ({"label": {"$gte": 100, "$lt": 400}}, lambda m: 100 <= m["label"] < 400),
    ({"$and": [{"half": "a"}, {"rank": {"$lte": 10}}]}, lambda m: m["half"] == "a" and m["rank"] <= 10),
    ({"$or": [{"label": {"$in": [1, 2, 3]}}, {"rank": {"$gt": 95}}]}, lambda m: m["label"] in (1, 2, 3) or m["rank"] > 95),
    ({"$not": {"half": "a"}}, lambda m: m["half"] != "a"),
    ({"label": {"$nin": [0, 1]}, "half": {"$ne": "b"}}, lambda m: m["label"] not in (0, 1) and m["half"] != "b"),
])
def test_filtered_search_equals_brute_force(faces, where, predicate):
    rows = np.array([i for i, m in enumerate(faces["metas"]) if predicate(m)])
    assert faces["col"].count(where=where) == len(rows)
    for q in faces["queries"][:10]:
        exact = faces["col"].search(q, k=10, where=where, exact=True)
        assert [h.id for h in exact] == brute(faces["base"], q, rows, 10)
        approx = faces["col"].search(q, k=10, where=where)
        assert all(predicate(faces["metas"][int(h.id[5:])]) for h in approx)


def test_bad_input_through_the_public_api(faces, cluster):
    stub = vector_store_pb2_grpc.VectorStoreStub(grpc.insecure_channel(cluster.address))

    def status(call, request):
        with pytest.raises(grpc.RpcError) as err:
            call(request, timeout=30)
        assert err.value.details()
        return err.value.code(), err.value.details()

    p = lambda id="x", vec=None, **meta: types_pb2.Point(id=id, vector=vec if vec is not None else [0.1] * 512)
    INVALID = grpc.StatusCode.INVALID_ARGUMENT
    assert status(stub.Upsert, vector_store_pb2.UpsertRequest(collection="nope", points=[p()]))[0] == grpc.StatusCode.NOT_FOUND
    assert status(stub.Search, vector_store_pb2.SearchRequest(collection="nope", vector=[0.1] * 512, k=1))[0] == grpc.StatusCode.NOT_FOUND
    dup = types_pb2.CollectionConfig(name="faces", dimension=512, metric=types_pb2.COSINE)
    assert status(stub.CreateCollection, vector_store_pb2.CreateCollectionRequest(config=dup))[0] == grpc.StatusCode.ALREADY_EXISTS
    code, msg = status(stub.Upsert, vector_store_pb2.UpsertRequest(collection="faces", points=[p(vec=[0.1] * 3)]))
    assert code == INVALID and "dimension 3" in msg
    code, msg = status(stub.Upsert, vector_store_pb2.UpsertRequest(collection="faces", points=[p(vec=[float("nan")] * 512)]))
    assert code == INVALID and "finite" in msg
    assert status(stub.Upsert, vector_store_pb2.UpsertRequest(collection="faces", points=[p(id="")]))[0] == INVALID
    assert status(stub.Upsert, vector_store_pb2.UpsertRequest(collection="faces", points=[p(id="y" * 5000)]))[0] == INVALID
    assert status(stub.Upsert, vector_store_pb2.UpsertRequest(collection="faces", points=[p(id="a"), p(id="a")]))[0] == INVALID
    assert status(stub.Search, vector_store_pb2.SearchRequest(collection="faces", vector=[0.1] * 512, k=0))[0] == INVALID
    assert status(stub.Search, vector_store_pb2.SearchRequest(collection="faces", vector=[0.1] * 512, k=1,
                                                              filter=types_pb2.Filter()))[0] == INVALID
    big = vector_store_pb2.UpsertRequest(collection="faces", points=[p(id=f"b{i}") for i in range(10001)])
    assert status(stub.Upsert, big)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    bad = types_pb2.CollectionConfig(name="bad", dimension=0, metric=types_pb2.COSINE)
    assert status(stub.CreateCollection, vector_store_pb2.CreateCollectionRequest(config=bad))[0] == INVALID
    # Nothing changed.
    assert faces["col"].count() == len(faces["base"])
    assert faces["col"].get(["x", "a", "y" * 10]) == []
    assert sorted(c.name for c in faces["client"].list_collections()) == ["faces", "faces-one-shard"]


def test_cli_collections_and_search(faces, cluster):
    import json
    shoal_bin = os.environ["SHOAL_BIN"]
    run = lambda *args: subprocess.run([shoal_bin, *args, "--coordinator", cluster.address], capture_output=True, text=True, timeout=60)
    out = run("collections")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["COLLECTION", "DIMENSION", "METRIC", "SHARDS", "POINTS"]
    assert lines[1].split() == ["faces", "512", "cosine", "6", str(len(faces["base"]))]
    listed = json.loads(run("collections", "--json").stdout)
    assert {c["name"]: c["points"] for c in listed} == {"faces": len(faces["base"]), "faces-one-shard": len(faces["base"])}
    q = faces["base"][17]
    out = run("search", "--collection", "faces", "--vector", ",".join(map(str, q.tolist())), "--k", "3", "--json")
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)["hits"]
    assert hits[0]["id"] == "face-17" and hits[0]["metadata"]["label"] == int(faces["labels"][17]) and len(hits) == 3
    table = run("search", "--collection", "faces", "--vector", ",".join(map(str, q.tolist())), "--k", "2")
    assert table.stdout.splitlines()[0].split() == ["#", "ID", "SCORE", "DISTANCE", "METADATA"]
    assert table.stdout.splitlines()[1].split()[1] == "face-17"
    missing = run("search", "--collection", "nope", "--vector", "1,2")
    assert missing.returncode == 2 and "NOT_FOUND" in missing.stderr and "nope" in missing.stderr
    wrong = run("search", "--collection", "faces", "--vector", "1,2")
    assert wrong.returncode == 2 and "dimension 2" in wrong.stderr
    usage = run("search", "--collection", "faces")
    assert usage.returncode != 0 and "--vector" in usage.stderr
    down = subprocess.run([shoal_bin, "collections", "--coordinator", "127.0.0.1:1", "--timeout", "2"], capture_output=True, text=True, timeout=60)
    assert down.returncode == 1 and "UNAVAILABLE" in down.stderr


def test_admin_lists_nodes_and_the_shard_map(faces, cluster):
    from shoal.v1 import admin_pb2, admin_pb2_grpc
    stub = admin_pb2_grpc.AdminStub(grpc.insecure_channel(cluster.address))
    nodes = stub.ListNodes(admin_pb2.ListNodesRequest(), timeout=30).nodes
    assert len(nodes) == 3 and all(n.state == admin_pb2.ACTIVE for n in nodes)
    assert {n.node_id for n in nodes} == {cluster.node_id(f"node{i}") for i in (1, 2, 3)}
    assert sum(n.replica_count for n in nodes) == 7  # faces (6 shards) + faces-one-shard (1)
    assert sum(n.point_count for n in nodes) == 2 * len(faces["base"])
    shard_map = stub.ShardMap(admin_pb2.ShardMapRequest(collection="faces"), timeout=30)
    assert sorted(s.shard_id for s in shard_map.shards) == list(range(6)) and shard_map.epoch > 0
    assert len(stub.ShardMap(admin_pb2.ShardMapRequest(), timeout=30).shards) == 7
    with pytest.raises(grpc.RpcError) as err:
        stub.ShardMap(admin_pb2.ShardMapRequest(collection="nope"), timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_node_failure_fails_fast_or_returns_partial_results(faces, cluster):
    col, q = faces["col"], faces["queries"][0]
    full = [h.id for h in col.search(q, k=10, exact=True)]
    cluster.kill("node2")
    start = time.monotonic()
    with pytest.raises(shoal.ShoalError) as err:
        col.search(q, k=10)
    assert time.monotonic() - start < 5, "a dead node must fail the search fast, not at the deadline"
    assert err.value.code == grpc.StatusCode.UNAVAILABLE and "shard" in err.value.message
    partial = col.search(q, k=10, exact=True, allow_partial=True)
    assert partial.partial and len(partial.missing_shards) == 2
    assert set(full) >= {h.id for h in partial if h.id in full}  # what the live shards return is a subset of the truth
    from shoal.v1 import admin_pb2, admin_pb2_grpc
    states = {n.node_id: n.state for n in admin_pb2_grpc.AdminStub(grpc.insecure_channel(cluster.address)).ListNodes(
        admin_pb2.ListNodesRequest(), timeout=30).nodes}
    assert states[cluster.node_id("node2")] == admin_pb2.UNREACHABLE
    cluster.launch()  # brings node2 back; the others keep running
    deadline = time.monotonic() + 30
    while True:
        try:
            again = col.search(q, k=10, exact=True)
            break
        except shoal.ShoalError:
            assert time.monotonic() < deadline, "full results did not come back after the node restarted"
            time.sleep(0.2)
    assert [h.id for h in again] == full


def test_restart_keeps_every_point_and_the_same_results(faces, cluster):
    col = faces["col"]
    queries = faces["queries"][:20]
    before = [[h.id for h in hits] for hits in col.search_batch(queries, k=10)]
    cluster.stop()
    cluster.launch()
    client = shoal.Client(cluster.address)
    try:
        again = client.get_collection("faces")
        assert again.count() == len(faces["base"])
        assert [[h.id for h in hits] for hits in again.search_batch(queries, k=10)] == before
        got = again.get(["face-0", "face-13232"])
        assert [p.id for p in got] == ["face-0", "face-13232"]
    finally:
        client.close()
