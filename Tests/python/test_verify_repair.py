"""`shoal admin verify` / `repair` against a real 3-node cluster, replication factor 2.

The tests share one cluster (two coordinators: verify and repair are also asked of
the one that does not lead) and run in file order: the replicas start identical;
some are made to diverge by writing to ONE replica directly through the Shard API;
verify names them, repair mends them (the newest version wins), verify passes
again; verify under live writes reports nothing transient; a node killed last
makes its shards unreadable.
"""
import json
import threading

import numpy as np
import pytest

import shoal
from cluster_helpers import Cluster, admin, admin_json, shard_of
from shard_helpers import ShardClient

COLLECTION = "verified"
POINTS = 3000
SHARDS = 4
DIM = 8


def verify(address, *args):
    return admin(address, "verify", "--collection", COLLECTION, *args)


def verify_json(address):
    out = verify(address, "--json")
    return out.returncode, json.loads(out.stdout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(str(tmp_path_factory.mktemp("verify-cluster")), nodes=3, coordinators=2)
    c.launch()
    try:
        vectors = np.random.default_rng(5).standard_normal((POINTS, DIM)).astype(np.float32)
        with shoal.Client(c.address) as client:
            col = client.create_collection(COLLECTION, dimension=DIM, metric="l2", shards=SHARDS, replication_factor=2)
            col.upsert(ids=[f"p{i}" for i in range(POINTS)], vectors=vectors)
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def placement(cluster):
    """{shard: [(node_id, address)]}, in placement order, from verify --json."""
    _, reply = verify_json(cluster.address)
    return {s["shard"]: [(r["node_id"], r["address"]) for r in s["replicas"]] for s in reply["shards"]}


def replica(address, shard):
    return ShardClient(address, collection=COLLECTION, shard=shard)


def record(address, shard, point_id):
    """(tombstone, version, vector) of one id on one replica; None if it holds no record."""
    client = replica(address, shard)
    try:
        reply = client.get([point_id], tombstones=True)
    finally:
        client.close()
    if not reply.points:
        return None
    p = reply.points[0]
    return p.tombstone, p.version, list(p.point.vector)


def ids_in(shard, count, start=0):
    return [f"p{i}" for i in range(start, POINTS) if shard_of(f"p{i}", SHARDS) == shard][:count]


def test_fresh_replicas_are_identical(cluster, placement):
    out = verify(cluster.address)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split() == ["SHARD", "NODE", "STATE", "POINTS", "DIGEST", "MATCH", "BEHIND"]
    assert lines[-1] == f"all {SHARDS} shards identical"
    code, reply = verify_json(cluster.address)
    assert code == 0 and reply["identical"] is True and len(reply["shards"]) == SHARDS
    total = 0
    for shard in reply["shards"]:
        assert shard["identical"] and shard["differing_count"] == 0 and shard["sample"] == []
        replicas = shard["replicas"]
        assert len(replicas) == 2 and len({r["node_id"] for r in replicas}) == 2
        assert len({r["digest"] for r in replicas}) == 1 and len(replicas[0]["digest"]) == 16
        assert all(r["matches"] and r["points"] == replicas[0]["points"] and r["state"] == "in_sync" for r in replicas)
        total += replicas[0]["points"]
    assert total == POINTS
    assert set(placement) == set(range(SHARDS))


def test_unknown_collection_or_shard_is_bad_input(cluster):
    out = admin(cluster.address, "verify", "--collection", "nope")
    assert out.returncode == 2 and "NOT_FOUND" in out.stderr
    out = verify(cluster.address, "--shard", str(SHARDS))
    assert out.returncode == 2 and "INVALID_ARGUMENT" in out.stderr


def diverge(placement):
    """Writes to ONE replica of shards 0..2: an extra point on shard 0's first replica,
    a newer version of an existing point on shard 1's second, and on shard 2's first a
    delete with a higher version. Returns what was written, by shard."""
    extra = next(f"extra{i}" for i in range(1000) if shard_of(f"extra{i}", SHARDS) == 0)
    newer, deleted = ids_in(1, 1)[0], ids_in(2, 1)[0]
    written = {}
    for shard, which, point_id in ((0, 0, extra), (1, 1, newer), (2, 0, deleted)):
        node_id, address = placement[shard][which]
        current = record(address, shard, point_id)
        version = (current[1] if current else replica_max_version(address, shard)) + 1
        client = replica(address, shard)
        try:
            if shard == 2:
                reply = client.delete([point_id], version)
            else:
                reply = client.upsert([(point_id, [float(shard + 7)] * DIM, None)], version)
            assert reply.applied == 1
        finally:
            client.close()
        written[shard] = (node_id, point_id, version)
    return written


def replica_max_version(address, shard):
    client = replica(address, shard)
    try:
        return client.stats().max_version
    finally:
        client.close()


def follower(cluster):
    """A coordinator that does not lead: verify is its own answer, repair it passes on."""
    reply = admin_json(cluster.address, "coordinators")
    return next(c["address"] for c in reply["coordinators"] if c["name"] != reply["leader"])


def test_verify_names_diverged_shards_and_nodes_then_repair_mends_them(cluster, placement):
    written = diverge(placement)
    cluster.written = written
    out = verify(follower(cluster))
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == f"3 of {SHARDS} shards differ"
    for shard, (node_id, point_id, _) in written.items():
        line = next(l for l in out.stdout.splitlines() if l.startswith(f"shard {shard} differs:"))
        assert node_id[:8] in line and point_id in line and "disagree on 1 id (" in line
    assert not any(l.startswith("shard 3 ") for l in out.stdout.splitlines())

    code, reply = verify_json(cluster.address)
    assert code == 1 and reply["identical"] is False
    by_shard = {s["shard"]: s for s in reply["shards"]}
    assert by_shard[3]["identical"]
    expected = {0: ("live", "absent"), 1: ("live", "live"), 2: ("deleted", "live")}
    for shard, (node_id, point_id, version) in written.items():
        s = by_shard[shard]
        assert not s["identical"] and s["differing_count"] == 1
        assert [x["id"] for x in s["sample"]] == [point_id]
        states = {r["node_id"]: (r["state"], r["version"]) for r in s["sample"][0]["replicas"]}
        other = next(n for n, _ in placement[shard] if n != node_id)
        assert states[node_id] == (expected[shard][0], version)
        assert states[other][0] == expected[shard][1] and states[other][1] < version
        assert len({r["digest"] for r in s["replicas"]}) == 2
        behind = {r["node_id"]: r["behind"] for r in s["replicas"]}
        assert behind == {node_id: 0, other: 1}, "the replica not written to lacks the newest record"

    out = admin(follower(cluster), "repair", "--collection", COLLECTION)
    assert out.returncode == 0, out.stdout + out.stderr
    for shard, (node_id, _, _) in written.items():
        other = next(n for n, _ in placement[shard] if n != node_id)
        copied = "0 points, 1 deletion" if shard == 2 else "1 point, 0 deletions"
        assert f"shard {shard}: 1 id differed; copied to {other[:8]}: {copied}" in out.stdout
    assert "shard 3: nothing to repair" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == f"all {SHARDS} shards identical"


def test_after_repair_verify_passes_and_the_newest_versions_won(cluster, placement):
    written = cluster.written
    out = verify(cluster.address)
    assert out.returncode == 0, out.stdout + out.stderr
    (_, extra, extra_v), (_, newer, newer_v), (_, deleted, deleted_v) = written[0], written[1], written[2]
    with shoal.Client(cluster.address) as client:
        col = client.get_collection(COLLECTION)
        got = {p.id: p for p in col.get([extra, newer, deleted])}
    assert set(got) == {extra, newer}, "the deleted point is gone, the extra one exists"
    assert np.allclose(got[extra].vector, [7.0] * DIM) and np.allclose(got[newer].vector, [8.0] * DIM)
    for shard, point_id, version, tombstone, vector in ((0, extra, extra_v, False, 7.0), (1, newer, newer_v, False, 8.0),
                                                        (2, deleted, deleted_v, True, None)):
        for _, address in placement[shard]:
            held = record(address, shard, point_id)
            assert held is not None and held[0] == tombstone and held[1] == version, (shard, address, held)
            if vector is not None:
                assert np.allclose(held[2], [vector] * DIM)


def test_repair_of_identical_replicas_copies_nothing(cluster):
    out = admin(cluster.address, "repair", "--collection", COLLECTION, "--shard", "1", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    reply = json.loads(out.stdout)
    assert reply["repairs"] == [{"shard": 1, "differing_count": 0, "replicas": []}]
    assert reply["verification"]["identical"] and [s["shard"] for s in reply["verification"]["shards"]] == [1]


def test_a_large_divergence_is_repaired_in_batches(cluster, placement):
    """More differing ids than one repair batch (1,000) in both directions on shard 3."""
    (first_id, first), (second_id, second) = placement[3]
    extra = [f"bulk{i}" for i in range(20000) if shard_of(f"bulk{i}", SHARDS) == 3][:1500]
    doomed = ids_in(3, 300)
    with shoal.Client(cluster.address) as client:
        before = client.get_collection(COLLECTION).count()
    version = max(replica_max_version(first, 3), replica_max_version(second, 3)) + 1
    a, b = replica(first, 3), replica(second, 3)
    try:
        assert a.upsert([(i, [1.0] * DIM, None) for i in extra], version).applied == len(extra)
        assert b.delete(doomed, version).applied == len(doomed)
    finally:
        a.close()
        b.close()
    code, reply = verify_json(cluster.address)
    shard = next(s for s in reply["shards"] if s["shard"] == 3)
    assert code == 1 and shard["differing_count"] == 1800 and len(shard["sample"]) == 10
    assert {r["node_id"]: r["behind"] for r in shard["replicas"]} == {first_id: 300, second_id: 1500}

    out = admin(cluster.address, "repair", "--collection", COLLECTION, "--shard", "3", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    repaired = json.loads(out.stdout)["repairs"][0]
    copied = {r["node_id"]: (r["points_copied"], r["tombstones_copied"], r["error"]) for r in repaired["replicas"]}
    assert copied == {first_id: (0, 300, ""), second_id: (1500, 0, "")}
    assert verify(cluster.address).returncode == 0
    with shoal.Client(cluster.address) as client:
        assert client.get_collection(COLLECTION).count() == before + 1500 - 300


def test_live_writes_are_not_reported_as_differences(cluster):
    stop = threading.Event()
    errors = []

    def write():
        rng = np.random.default_rng(9)
        n = 0
        try:
            with shoal.Client(cluster.address) as client:
                col = client.get_collection(COLLECTION)
                while not stop.is_set():
                    ids = [f"live{n + i}" for i in range(50)]
                    col.upsert(ids=ids, vectors=rng.standard_normal((50, DIM)).astype(np.float32))
                    col.delete(ids[:10])
                    n += 50
        except Exception as e:  # reported below
            errors.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(3):
            out = verify(cluster.address)
            assert out.returncode == 0, out.stdout + out.stderr
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not errors, errors
    assert verify(cluster.address).returncode == 0


def test_a_down_node_makes_its_shards_unreadable(cluster, placement):
    victim = "node3"
    victim_id = cluster.node_id(victim)
    cluster.kill(victim)
    out = verify(cluster.address, "--timeout", "60")
    assert out.returncode == 1, out.stdout + out.stderr
    held = sorted(s for s, replicas in placement.items() if any(n == victim_id for n, _ in replicas))
    assert held, "with 4 shards on 3 nodes at RF 2 every node holds some"
    for shard in held:
        assert f"shard {shard}: node {victim_id[:8]} ({cluster.node_address(victim)}) cannot be read" in out.stdout
    summary = out.stdout.strip().splitlines()[-1]
    assert summary == f"{len(held)} of {SHARDS} shards differ ({len(held)} cannot be read in full)"
    code, reply = verify_json(cluster.address)
    assert code == 1
    for s in reply["shards"]:
        down = [r for r in s["replicas"] if r["node_id"] == victim_id]
        assert s["identical"] == (not down)
        assert all(r["unreachable"] and r["error"] and not r["matches"] for r in down)
