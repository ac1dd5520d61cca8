"""The Shard service of a real `shoal node` process, through a stock grpcio client."""
import math
import random

import grpc
import numpy as np
import pytest

from shard_helpers import ShardClient, brute_force, from_value, value
from shoal.v1 import shard_pb2, types_pb2


@pytest.fixture
def shard(node):
    c = ShardClient(node.address)
    yield c
    c.close()


def random_points(n, dim, seed, start=0):
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    return [(f"p{start + i}", vecs[i], {"label": int(i % 10), "even": i % 2 == 0}) for i in range(n)], vecs


def test_upsert_get_delete_round_trip(shard):
    assert shard.create(dimension=4).created
    assert not shard.create(dimension=4).created  # same config again: a no-op
    r = shard.upsert([("a", [1, 0, 0, 0], {"name": "alpha", "n": 3, "x": 0.5, "ok": True, "tags": ["t1", "t2"]}),
                      ("b", [0, 1, 0, 0], None)], version=5)
    assert (r.applied, r.ignored_stale) == (2, 0)
    got = shard.get(["a", "b", "zz"])
    assert [p.point.id for p in got.points] == ["a", "b"] and list(got.missing_ids) == ["zz"]
    a = got.points[0]
    assert a.version == 5 and list(a.point.vector) == [1, 0, 0, 0]
    assert {k: from_value(v) for k, v in a.point.metadata.items()} == {"name": "alpha", "n": 3, "x": 0.5, "ok": True, "tags": ["t1", "t2"]}
    # An older or equal version is ignored; a newer one wins.
    assert shard.upsert([("a", [9, 9, 9, 9], None)], version=5).ignored_stale == 1
    assert shard.upsert([("a", [0, 0, 1, 0], {"name": "again"})], version=6).applied == 1
    assert list(shard.get(["a"]).points[0].point.vector) == [0, 0, 1, 0]
    # Delete, then a late older upsert stays ignored; the tombstone is visible on request.
    assert shard.delete(["a"], version=7).applied == 1
    assert shard.upsert([("a", [1, 1, 1, 1], None)], version=6).ignored_stale == 1
    assert list(shard.get(["a"]).missing_ids) == ["a"]
    tomb = shard.get(["a"], tombstones=True).points[0]
    assert tomb.tombstone and tomb.version == 7
    assert shard.count() == 1
    # Re-insert after delete with a newer version.
    assert shard.upsert([("a", [0, 0, 0, 1], None)], version=8).applied == 1
    assert shard.count() == 2
    hits = shard.search([0, 0, 0, 1], k=1).hits
    assert hits[0].id == "a" and hits[0].distance == pytest.approx(0) and hits[0].score == pytest.approx(0)


@pytest.mark.parametrize("metric,name", [(types_pb2.L2, "l2"), (types_pb2.COSINE, "cosine"), (types_pb2.IP, "ip")])
def test_search_recall_and_scores(node, metric, name):
    c = ShardClient(node.address, collection=f"r-{name}")
    try:
        c.create(dimension=16, metric=metric)
        points, vecs = random_points(2000, 16, seed=7)
        for i in range(0, len(points), 500):
            c.upsert(points[i:i + 500], version=1)
        rng = np.random.default_rng(11)
        recall = []
        for q in rng.standard_normal((30, 16)).astype(np.float32):
            truth, dist = brute_force(vecs, q, name, 10)
            reply = c.search(q, k=10, ef=128)
            got = [int(h.id[1:]) for h in reply.hits]
            recall.append(len(set(got) & set(truth.tolist())) / 10)
            exact = c.search(q, k=10, exact=True)
            assert [int(h.id[1:]) for h in exact.hits] == truth.tolist()
            assert [h.distance for h in exact.hits] == pytest.approx(dist.tolist(), abs=1e-3)
            for h in exact.hits:
                want = {"l2": -h.distance, "cosine": 1 - h.distance, "ip": -h.distance}[name]
                assert h.score == pytest.approx(want, abs=1e-5)
        assert np.mean(recall) >= 0.95
    finally:
        c.close()


def test_acknowledged_writes_are_searchable_while_the_graph_is_behind(tmp_path):
    from conftest import Node
    node = Node(str(tmp_path), extra_args=["--pause-indexing"])
    c = ShardClient(node.address)
    try:
        c.create(dimension=8)
        points, vecs = random_points(3000, 8, seed=3)
        for i in range(0, 3000, 1000):
            c.upsert(points[i:i + 1000], version=1)
        stats = c.stats()
        assert stats.points == 3000 and stats.indexing_lag == 3000 and stats.indexed_points == 0
        for i in (0, 1234, 2999):
            reply = c.search(vecs[i], k=1)
            assert reply.hits[0].id == f"p{i}" and reply.unindexed_scanned == 3000
        # Filtered, too.
        flt = types_pb2.Filter(condition=types_pb2.FieldCondition(field="label", eq=value(3)))
        assert c.count(flt) == 300
        assert all(h.id in {f"p{i}" for i in range(3, 3000, 10)} for h in c.search(vecs[3], k=20, flt=flt).hits)
    finally:
        c.close()
        node.stop()


def test_graph_catches_up_and_results_stay_the_same(shard):
    shard.create(dimension=8)
    points, vecs = random_points(3000, 8, seed=5)
    before = None
    for i in range(0, 3000, 1000):
        shard.upsert(points[i:i + 1000], version=1)
    before = [h.id for h in shard.search(vecs[42], k=5, exact=True).hits]
    wait = 0
    while shard.stats().indexing_lag > 0:
        import time
        time.sleep(0.05)
        wait += 1
        assert wait < 1200, "indexer did not catch up in 60 s"
    assert shard.stats().indexed_points == 3000
    assert [h.id for h in shard.search(vecs[42], k=5, exact=True).hits] == before
    assert shard.search(vecs[42], k=1).hits[0].id == "p42"


# ---------------------------------------------------------------- filters vs brute force

FIELDS = ["label", "price", "tag", "flag", "tags"]


def random_metadata(rng):
    m = {}
    if rng.random() < 0.9:
        m["label"] = rng.randrange(10)
    if rng.random() < 0.8:
        m["price"] = rng.choice([rng.uniform(0, 100), float(rng.randrange(100))])
    if rng.random() < 0.8:
        m["tag"] = rng.choice(["red", "green", "blue", "x"])
    if rng.random() < 0.7:
        m["flag"] = rng.random() < 0.5
    if rng.random() < 0.6:
        m["tags"] = rng.sample(["a", "b", "c", "d"], rng.randrange(4))
    return m


def random_operand(rng, field):
    if field in ("label", "price"):
        return rng.choice([rng.randrange(10), float(rng.randrange(100)), rng.uniform(0, 100)])
    if field == "flag":
        return rng.random() < 0.5
    return rng.choice(["red", "green", "blue", "a", "b", "c", "zz"])


def is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def eq(fv, v):
    if fv is None:
        return False
    if isinstance(fv, list):
        return isinstance(v, str) and v in fv
    if is_number(fv) and is_number(v):
        return fv == v
    return type(fv) is type(v) and fv == v


def random_filter(rng, depth):
    """Returns (proto Filter, evaluator over a metadata dict)."""
    if depth == 0 or rng.random() < 0.45:
        field = rng.choice(FIELDS)
        kind = rng.choice(["eq", "ne", "range", "in", "not_in", "exists"])
        if kind in ("eq", "ne"):
            v = random_operand(rng, field)
            cond = types_pb2.FieldCondition(field=field, **{kind: value(v)})
            ev = (lambda m, f=field, v=v: eq(m.get(f), v)) if kind == "eq" else (lambda m, f=field, v=v: not eq(m.get(f), v))
        elif kind in ("in", "not_in"):
            vs = [random_operand(rng, field) for _ in range(rng.randrange(1, 4))]
            kinds = {type(v) if not is_number(v) else "num" for v in vs}
            if len(kinds) > 1:  # mixed kinds are invalid by design; keep to one
                vs = [vs[0]]
            lst = types_pb2.ValueList(values=[value(v) for v in vs])
            cond = types_pb2.FieldCondition(field=field, **({"is_in": lst} if kind == "in" else {"not_in": lst}))
            hit = lambda m, f=field, vs=vs: any(eq(m.get(f), v) for v in vs)
            ev = hit if kind == "in" else (lambda m, hit=hit: not hit(m))
        elif kind == "range":
            lo, hi = sorted([rng.uniform(0, 100), rng.uniform(0, 100)])
            lo_inc, hi_inc = rng.random() < 0.5, rng.random() < 0.5
            rg = types_pb2.Range()
            (rg.gte if lo_inc else rg.gt).double_value = lo
            if rng.random() < 0.7:
                (rg.lte if hi_inc else rg.lt).int_value = int(hi)
                hi = int(hi)
            else:
                hi = None
            cond = types_pb2.FieldCondition(field=field, range=rg)

            def ev(m, f=field, lo=lo, hi=hi, li=lo_inc, hi_i=hi_inc):
                x = m.get(f)
                if not is_number(x):
                    return False
                ok = x >= lo if li else x > lo
                if hi is not None:
                    ok = ok and (x <= hi if hi_i else x < hi)
                return ok
        else:
            want = rng.random() < 0.5
            cond = types_pb2.FieldCondition(field=field, exists=want)
            ev = lambda m, f=field, w=want: (f in m) == w
        return types_pb2.Filter(condition=cond), ev
    op = rng.choice(["and", "or", "not"])
    if op == "not":
        inner, iev = random_filter(rng, depth - 1)
        return types_pb2.Filter(negate=inner), (lambda m, iev=iev: not iev(m))
    kids = [random_filter(rng, depth - 1) for _ in range(rng.randrange(1, 4))]
    lst = types_pb2.FilterList(filters=[k[0] for k in kids])
    evs = [k[1] for k in kids]
    if op == "and":
        return types_pb2.Filter(all_of=lst), (lambda m, evs=evs: all(e(m) for e in evs))
    return types_pb2.Filter(any_of=lst), (lambda m, evs=evs: any(e(m) for e in evs))


def test_filters_match_brute_force(shard):
    rng = random.Random(1234)
    n, dim = 1500, 8
    shard.create(dimension=dim)
    vecs = np.random.default_rng(99).standard_normal((n, dim)).astype(np.float32)
    metas = [random_metadata(rng) for _ in range(n)]
    points = [(f"q{i}", vecs[i], metas[i]) for i in range(n)]
    for i in range(0, n, 500):
        shard.upsert(points[i:i + 500], version=1)
    query = vecs[0]
    for trial in range(120):
        flt, ev = random_filter(rng, depth=3)
        truth = [i for i in range(n) if ev(metas[i])]
        assert shard.count(flt) == len(truth), f"trial {trial}: {flt}"
        reply = shard.search(query, k=20, flt=flt, exact=True)
        want, _ = brute_force(vecs[truth], query, "l2", 20) if truth else ([], None)
        assert [h.id for h in reply.hits] == [f"q{truth[i]}" for i in want], f"trial {trial}: {flt}"
        approx = shard.search(query, k=10, flt=flt, ef=200)
        assert all(ev(metas[int(h.id[1:])]) for h in approx.hits), f"trial {trial}: a hit fails the filter"


# ---------------------------------------------------------------- bad input

def expect_status(code, call, *args, **kw):
    with pytest.raises(grpc.RpcError) as err:
        call(*args, **kw)
    assert err.value.code() == code, err.value.details()
    assert err.value.details()
    return err.value.details()


def test_bad_input_gets_a_clear_status_and_changes_nothing(shard):
    shard.create(dimension=4)
    shard.upsert([("keep", [1, 2, 3, 4], {"n": 1})], version=1)
    INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    assert "dimension 3" in expect_status(INVALID, shard.upsert, [("x", [1, 2, 3], None)], 2)
    assert "finite" in expect_status(INVALID, shard.upsert, [("x", [1, math.nan, 3, 4], None)], 2)
    assert "finite" in expect_status(INVALID, shard.upsert, [("x", [1, math.inf, 3, 4], None)], 2)
    assert "empty" in expect_status(INVALID, shard.upsert, [("", [1, 2, 3, 4], None)], 2)
    assert "bytes" in expect_status(INVALID, shard.upsert, [("x" * 2000, [1, 2, 3, 4], None)], 2)
    assert "version" in expect_status(INVALID, shard.upsert, [("x", [1, 2, 3, 4], None)], 0)
    assert "finite" in expect_status(INVALID, shard.upsert, [("x", [1, 2, 3, 4], {"v": math.nan})], 2)
    # A good op next to a bad one: the whole batch is refused.
    expect_status(INVALID, shard.upsert, [("good", [1, 1, 1, 1], None), ("bad", [1, 1], None)], 2)
    expect_status(grpc.StatusCode.RESOURCE_EXHAUSTED, shard.upsert, [(f"b{i}", [1, 1, 1, 1], None) for i in range(10001)], 2)
    unknown = shard_pb2.WriteBatchRequest(replica=shard_pb2.ReplicaRef(collection="nope", shard_id=0))
    assert "nope" in expect_status(NOT_FOUND, shard.stub.WriteBatch, unknown, timeout=5)
    expect_status(NOT_FOUND, shard.stub.Search, shard_pb2.ReplicaSearchRequest(
        replica=shard_pb2.ReplicaRef(collection="nope"), vector=[1, 2, 3, 4], k=1), timeout=5)
    # Search arguments.
    assert "k must" in expect_status(INVALID, shard.search, [1, 2, 3, 4], k=0)
    assert "k must" in expect_status(INVALID, shard.search, [1, 2, 3, 4], k=1_000_000)
    assert "dimension" in expect_status(INVALID, shard.search, [1, 2], k=1)
    assert "finite" in expect_status(INVALID, shard.search, [1, 2, math.nan, 4], k=1)
    # Malformed filters.
    empty = types_pb2.Filter()
    assert "filter" in expect_status(INVALID, shard.search, [1, 2, 3, 4], k=1, flt=empty)
    no_op = types_pb2.Filter(condition=types_pb2.FieldCondition(field="n"))
    assert "operator" in expect_status(INVALID, shard.search, [1, 2, 3, 4], k=1, flt=no_op)
    no_bounds = types_pb2.Filter(condition=types_pb2.FieldCondition(field="n", range=types_pb2.Range()))
    expect_status(INVALID, shard.count, no_bounds)
    empty_and = types_pb2.Filter(all_of=types_pb2.FilterList())
    expect_status(INVALID, shard.count, empty_and)
    # Malformed protobuf bytes.
    raw = shard.channel.unary_unary("/shoal.v1.Shard/WriteBatch")
    assert "WriteBatchRequest" in expect_status(INVALID, raw, b"\x0a\xff\xff\xff\xff", timeout=5)
    # Bad replica configs.
    bad = types_pb2.CollectionConfig(name="z", dimension=0, metric=types_pb2.L2)
    expect_status(INVALID, shard.stub.CreateReplica, shard_pb2.CreateReplicaRequest(config=bad), timeout=5)
    bad = types_pb2.CollectionConfig(name="z", dimension=4)
    assert "metric" in expect_status(INVALID, shard.stub.CreateReplica, shard_pb2.CreateReplicaRequest(config=bad), timeout=5)
    clash = types_pb2.CollectionConfig(name="c", dimension=8, metric=types_pb2.L2)
    expect_status(grpc.StatusCode.ALREADY_EXISTS, shard.stub.CreateReplica, shard_pb2.CreateReplicaRequest(config=clash), timeout=5)
    # Nothing changed.
    assert shard.count() == 1
    kept = shard.get(["keep", "x", "good"])
    assert [p.point.id for p in kept.points] == ["keep"] and kept.points[0].version == 1


def test_drop_replica_removes_everything(shard):
    shard.create(dimension=4)
    shard.upsert([("a", [1, 2, 3, 4], None)], version=1)
    assert shard.stub.DropReplica(shard_pb2.DropReplicaRequest(replica=shard.ref), timeout=5).dropped
    expect_status(grpc.StatusCode.NOT_FOUND, shard.get, ["a"])
    shard.create(dimension=4)
    assert shard.count() == 0


def test_a_drop_naming_an_earlier_incarnation_keeps_the_replica(shard):
    first = shard.create(dimension=4).incarnation
    assert shard.stub.DropReplica(shard_pb2.DropReplicaRequest(replica=shard.ref), timeout=5).dropped
    second = shard.create(dimension=4)
    assert second.created and second.incarnation != first
    shard.upsert([("a", [1, 2, 3, 4], None)], version=1)
    [stats] = shard.stub.Stats(shard_pb2.StatsRequest(), timeout=5).replicas
    assert stats.incarnation == second.incarnation
    late = shard.stub.DropReplica(shard_pb2.DropReplicaRequest(replica=shard.ref, incarnation=first), timeout=5)
    assert not late.dropped and shard.count() == 1
    assert shard.stub.DropReplica(shard_pb2.DropReplicaRequest(replica=shard.ref, incarnation=second.incarnation), timeout=5).dropped
    expect_status(grpc.StatusCode.NOT_FOUND, shard.get, ["a"])


def test_paged_scan_sees_one_snapshot(shard):
    shard.create(dimension=4)
    shard.upsert([(f"s{i:03}", [i, 1, 1, 1], None) for i in range(250)], version=1)
    shard.delete(["s000"], version=2)
    seen, token, snap = [], b"", 0
    while True:
        page = shard.stub.Scan(shard_pb2.ScanRequest(replica=shard.ref, page_token=token, page_size=64, snapshot_id=snap,
                                                     include_vector=True, include_tombstones=True), timeout=10)
        if not seen:
            # Writes after the first page are not in the scan.
            shard.upsert([("zzz-late", [1, 1, 1, 1], None)], version=3)
        seen += [(p.point.id, p.tombstone, p.version) for p in page.points]
        snap, token = page.snapshot_id, page.next_page_token
        if page.done:
            break
    assert len(seen) == 250 and seen[0] == ("s000", True, 2)
    assert [s[0] for s in seen] == sorted(s[0] for s in seen)
    assert "zzz-late" not in {s[0] for s in seen}
