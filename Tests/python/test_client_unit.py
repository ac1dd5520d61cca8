"""Unit tests of the Python client (Clients/python/shoal): where → Filter,
metadata conversion, batching, and the client end to end against an
in-process fake VectorStore server (brute force over numpy), so the request
shapes are exercised over real gRPC.

    PYTHONPATH=Clients/python .venv/bin/python -m pytest Tests/python/test_client_unit.py
"""
import math
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest

import shoal
from shoal.client import MAX_BATCH_BYTES, MAX_BATCH_POINTS, split_points
from shoal.filters import MAX_DEPTH, where_to_filter
from shoal.v1 import types_pb2, vector_store_pb2, vector_store_pb2_grpc
from shoal.values import from_value, metadata_from_proto, metadata_to_proto

F = types_pb2.Filter


def cond(field, **op):
    return F(condition=types_pb2.FieldCondition(field=field, **op))


def V(**kind):
    return types_pb2.Value(**kind)


def all_of(*fs):
    return F(all_of=types_pb2.FilterList(filters=list(fs)))


def any_of(*fs):
    return F(any_of=types_pb2.FilterList(filters=list(fs)))


# ---------------------------------------------------------------------------
# where → Filter
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("where, expected", [
    ({"label": 3}, cond("label", eq=V(int_value=3))),
    ({"label": {"$eq": 3}}, cond("label", eq=V(int_value=3))),
    ({"part": "tank"}, cond("part", eq=V(string_value="tank"))),
    ({"x": 2.5}, cond("x", eq=V(double_value=2.5))),
    ({"ok": True}, cond("ok", eq=V(bool_value=True))),
    ({"ok": {"$ne": False}}, cond("ok", ne=V(bool_value=False))),
    ({"n": {"$ne": 1}}, cond("n", ne=V(int_value=1))),
    ({"n": {"$gt": 2}}, cond("n", range=types_pb2.Range(gt=types_pb2.Number(int_value=2)))),
    ({"n": {"$gte": 2}}, cond("n", range=types_pb2.Range(gte=types_pb2.Number(int_value=2)))),
    ({"n": {"$lt": 0.5}}, cond("n", range=types_pb2.Range(lt=types_pb2.Number(double_value=0.5)))),
    ({"n": {"$lte": -1}}, cond("n", range=types_pb2.Range(lte=types_pb2.Number(int_value=-1)))),
    ({"n": {"$gte": 1, "$lt": 5.5}},
     cond("n", range=types_pb2.Range(gte=types_pb2.Number(int_value=1), lt=types_pb2.Number(double_value=5.5)))),
    ({"t": {"$in": ["a", 1, 2.5, True]}},
     cond("t", is_in=types_pb2.ValueList(values=[V(string_value="a"), V(int_value=1), V(double_value=2.5),
                                                  V(bool_value=True)]))),
    ({"t": {"$nin": ["a"]}}, cond("t", not_in=types_pb2.ValueList(values=[V(string_value="a")]))),
    ({"t": {"$exists": True}}, cond("t", exists=True)),
    ({"t": {"$exists": False}}, cond("t", exists=False)),
    ({"a": 1, "b": "x"}, all_of(cond("a", eq=V(int_value=1)), cond("b", eq=V(string_value="x")))),
    ({"n": {"$gt": 1, "$ne": 3}},
     all_of(cond("n", range=types_pb2.Range(gt=types_pb2.Number(int_value=1))), cond("n", ne=V(int_value=3)))),
    ({"$and": [{"a": 1}, {"b": 2}]}, all_of(cond("a", eq=V(int_value=1)), cond("b", eq=V(int_value=2)))),
    ({"$or": [{"a": 1}, {"b": 2}]}, any_of(cond("a", eq=V(int_value=1)), cond("b", eq=V(int_value=2)))),
    ({"$or": [{"a": 1}]}, any_of(cond("a", eq=V(int_value=1)))),
    ({"$not": {"a": 1}}, F(negate=cond("a", eq=V(int_value=1)))),
    ({"$not": {"a": 1, "b": 2}}, F(negate=all_of(cond("a", eq=V(int_value=1)), cond("b", eq=V(int_value=2))))),
    ({"$and": [{"$or": [{"a": 1}, {"$not": {"b": {"$in": ["x"]}}}]}, {"c": {"$exists": True}}], "d": 0},
     all_of(all_of(any_of(cond("a", eq=V(int_value=1)),
                          F(negate=cond("b", is_in=types_pb2.ValueList(values=[V(string_value="x")])))),
                   cond("c", exists=True)),
            cond("d", eq=V(int_value=0)))),
    ({"label": np.int64(3)}, cond("label", eq=V(int_value=3))),
    ({"label": np.float32(0.5)}, cond("label", eq=V(double_value=0.5))),
    ({"label": np.bool_(True)}, cond("label", eq=V(bool_value=True))),
])
def test_where_translation(where, expected):
    assert where_to_filter(where) == expected


def test_where_none_and_empty_mean_no_filter():
    assert where_to_filter(None) is None
    assert where_to_filter({}) is None


def test_where_passes_a_filter_message_through():
    f = cond("a", exists=True)
    assert where_to_filter(f) is f


def test_where_bool_is_never_int():
    assert where_to_filter({"x": True}).condition.eq.WhichOneof("kind") == "bool_value"
    assert where_to_filter({"x": 1}).condition.eq.WhichOneof("kind") == "int_value"
    assert where_to_filter({"x": {"$in": [True, 1]}}).condition.is_in.values[0].WhichOneof("kind") == "bool_value"


def test_where_nesting_limit():
    def nested(depth):
        where = {"a": 1}
        for _ in range(depth - 1):
            where = {"$not": where}
        return where
    assert where_to_filter(nested(MAX_DEPTH)) is not None
    with pytest.raises(ValueError, match="nest at most 32"):
        where_to_filter(nested(MAX_DEPTH + 1))


@pytest.mark.parametrize("where, message", [
    ([{"a": 1}], "expected a dict"),
    ("label = 3", "expected a dict"),
    ({"$foo": 1}, "unknown operator '\\$foo'"),
    ({"a": {"$foo": 1}}, "unknown operator '\\$foo'"),
    ({"a": {"$and": [{"b": 1}]}}, "logical operators go outside"),
    ({"a": {}}, "empty operator dict"),
    ({"$and": []}, "non-empty list"),
    ({"$or": {"a": 1}}, "non-empty list"),
    ({"$and": [{}]}, "empty dict is not a filter"),
    ({"$and": [3]}, "expected a dict"),
    ({"$not": []}, "expected a dict"),
    ({"$not": {}}, "empty dict is not a filter"),
    ({"a": {"$in": []}}, "non-empty list"),
    ({"a": {"$in": "abc"}}, "non-empty list"),
    ({"a": {"$nin": [["x"]]}}, "must be a str, int, float or bool"),
    ({"a": {"$in": [None]}}, "is not a str, int, float or bool"),
    ({"a": {"$gt": "3"}}, "range bound must be an int or a float"),
    ({"a": {"$lte": True}}, "range bound must be an int or a float"),
    ({"a": {"$gte": float("nan")}}, "not a finite number"),
    ({"a": {"$exists": 1}}, "expects true or false"),
    ({"a": ["x", "y"]}, "use \\$in"),
    ({"a": {"$eq": ["x"]}}, "use \\$in"),
    ({"a": None}, "is not a str, int, float or bool"),
    ({"a": float("inf")}, "not a finite number"),
    ({"a": 1 << 63}, "does not fit in a 64-bit integer"),
    ({"": 1}, "non-empty strings"),
    ({3: 1}, "non-empty strings"),
])
def test_where_errors(where, message):
    with pytest.raises(ValueError, match=message):
        where_to_filter(where)


def test_where_error_names_the_place():
    with pytest.raises(ValueError) as info:
        where_to_filter({"$or": [{"a": 1}, {"b": {"$gt": "x"}}]})
    assert "where['$or'][1]['b']['$gt']" in str(info.value)


# ---------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------

def test_metadata_kinds():
    proto = metadata_to_proto({"s": "tank", "i": 3, "f": 0.25, "b": True, "l": ["x", "y"], "t": ("z",), "e": [],
                               "ni": np.int32(7), "nf": np.float64(1.5), "nb": np.bool_(False), "big": -(1 << 63)})
    kinds = {k: v.WhichOneof("kind") for k, v in proto.items()}
    assert kinds == {"s": "string_value", "i": "int_value", "f": "double_value", "b": "bool_value",
                     "l": "string_list", "t": "string_list", "e": "string_list", "ni": "int_value",
                     "nf": "double_value", "nb": "bool_value", "big": "int_value"}
    back = metadata_from_proto(proto)
    assert back == {"s": "tank", "i": 3, "f": 0.25, "b": True, "l": ["x", "y"], "t": ["z"], "e": [], "ni": 7,
                    "nf": 1.5, "nb": False, "big": -(1 << 63)}
    assert type(back["b"]) is bool and type(back["i"]) is int and type(back["nb"]) is bool


def test_metadata_bool_is_not_int():
    assert metadata_to_proto({"x": True})["x"] == V(bool_value=True)
    assert metadata_to_proto({"x": 1})["x"] == V(int_value=1)
    assert metadata_to_proto({"x": False})["x"] != metadata_to_proto({"x": 0})["x"]
    assert from_value(V(bool_value=False)) is False


@pytest.mark.parametrize("metadata, message", [
    ({"x": [1, 2]}, "only strings"),
    ({"x": {"y": 1}}, "is not a str, int, float or bool"),
    ({"x": None}, "is not a str, int, float or bool"),
    ({"x": float("nan")}, "not a finite number"),
    ({"x": 1 << 64}, "64-bit"),
    ({"": 1}, "non-empty strings"),
    ({1: 1}, "non-empty strings"),
    ([("x", 1)], "expected a dict"),
])
def test_metadata_errors(metadata, message):
    with pytest.raises(ValueError, match=message):
        metadata_to_proto(metadata)


# ---------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------

def points(n, dimension):
    return [types_pb2.Point(id=f"p{i}", vector=[0.5] * dimension) for i in range(n)]


def test_split_by_count():
    sizes = [len(b) for b in split_points(points(2500, 4))]
    assert sizes == [MAX_BATCH_POINTS, MAX_BATCH_POINTS, 500]
    assert list(split_points([])) == []


def test_split_by_bytes():
    batches = list(split_points(points(600, 4096)))  # about 16 KiB a point
    assert sum(len(b) for b in batches) == 600
    assert len(batches) == 3
    for batch in batches:
        assert vector_store_pb2.UpsertRequest(collection="c", points=batch).ByteSize() <= MAX_BATCH_BYTES
    ids = [p.id for b in batches for p in b]
    assert ids == [f"p{i}" for i in range(600)]  # order kept


def test_split_oversized_point_goes_alone():
    big = types_pb2.Point(id="big", vector=[1.0] * 100)  # over 400 bytes; the small ones about 50
    batches = list(split_points(points(1, 10) + [big] + points(2, 10), max_points=100, max_bytes=150))
    assert [[p.id for p in b] for b in batches] == [["p0"], ["big"], ["p0", "p1"]]


# ---------------------------------------------------------------------------
# A fake VectorStore server: brute force over numpy, the documented semantics.
# ---------------------------------------------------------------------------

def _number(v):
    kind = v.WhichOneof("kind")
    return getattr(v, kind) if kind in ("int_value", "double_value") else None


def _scalar_equal(stored, operand):
    sk, ok = stored.WhichOneof("kind"), operand.WhichOneof("kind")
    if sk == "string_list":
        return ok == "string_value" and operand.string_value in stored.string_list.values
    if _number(stored) is not None and _number(operand) is not None:
        return _number(stored) == _number(operand)  # Python compares int and float exactly
    return sk == ok and getattr(stored, sk) == getattr(operand, ok)


def _range_ok(x, r):
    checks = [("gt", lambda b: x > b), ("gte", lambda b: x >= b), ("lt", lambda b: x < b), ("lte", lambda b: x <= b)]
    return all(check(_number(getattr(r, name))) for name, check in checks if r.HasField(name))


def matches(f, metadata):
    kind = f.WhichOneof("kind")
    if kind == "all_of":
        return all(matches(c, metadata) for c in f.all_of.filters)
    if kind == "any_of":
        return any(matches(c, metadata) for c in f.any_of.filters)
    if kind == "negate":
        return not matches(f.negate, metadata)
    c = f.condition
    v = metadata.get(c.field)
    op = c.WhichOneof("op")
    if op == "exists":
        return (v is not None) == c.exists
    if op in ("eq", "ne"):
        hit = v is not None and _scalar_equal(v, getattr(c, op))
        return hit if op == "eq" else not hit
    if op in ("is_in", "not_in"):
        hit = v is not None and any(_scalar_equal(v, x) for x in getattr(c, op).values)
        return hit if op == "is_in" else not hit
    return v is not None and _number(v) is not None and _range_ok(_number(v), c.range)


def check_filter(f, context):
    kind = f.WhichOneof("kind")
    if kind is None:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "filter: empty Filter (no kind set)")
    if kind in ("all_of", "any_of"):
        if not getattr(f, kind).filters:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"filter: empty {kind}")
        for child in getattr(f, kind).filters:
            check_filter(child, context)
    elif kind == "negate":
        check_filter(f.negate, context)


class FakeStore(vector_store_pb2_grpc.VectorStoreServicer):
    """Collections in dicts; every request is recorded in `calls`."""

    def __init__(self):
        self.collections = {}
        self.calls = []
        self.lock = threading.Lock()

    def _record(self, method, request):
        with self.lock:
            self.calls.append((method, request))

    def _collection(self, name, context):
        if name not in self.collections:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no collection {name!r}")
        return self.collections[name]

    def CreateCollection(self, request, context):
        self._record("CreateCollection", request)
        c = types_pb2.CollectionConfig()
        c.CopyFrom(request.config)
        if not c.name or c.dimension == 0 or c.metric == types_pb2.METRIC_UNSPECIFIED:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name, dimension and metric are required")
        if c.name in self.collections:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"collection {c.name!r} already exists")
        c.shard_count = c.shard_count or 2
        c.replication_factor = c.replication_factor or 1
        c.hnsw.m, c.hnsw.ef_construction, c.hnsw.ef = c.hnsw.m or 16, c.hnsw.ef_construction or 200, c.hnsw.ef or 64
        self.collections[c.name] = {"config": c, "points": {}}
        return vector_store_pb2.CreateCollectionResponse(config=c)

    def DescribeCollection(self, request, context):
        self._record("DescribeCollection", request)
        col = self._collection(request.name, context)
        return vector_store_pb2.DescribeCollectionResponse(config=col["config"], point_count=len(col["points"]))

    def ListCollections(self, request, context):
        self._record("ListCollections", request)
        return vector_store_pb2.ListCollectionsResponse(
            collections=[self.collections[n]["config"] for n in sorted(self.collections)])

    def DeleteCollection(self, request, context):
        self._record("DeleteCollection", request)
        self._collection(request.name, context)
        del self.collections[request.name]
        return vector_store_pb2.DeleteCollectionResponse()

    def Upsert(self, request, context):
        self._record("Upsert", request)
        col = self._collection(request.collection, context)
        config = col["config"]
        if not 1 <= len(request.points) <= 10000:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "1..=10000 points per upsert")
        if len({p.id for p in request.points}) != len(request.points):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "duplicate ids in one upsert")
        staged = {}
        for p in request.points:
            v = np.array(p.vector, dtype=np.float32)
            if len(v) != config.dimension or not np.all(np.isfinite(v)):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"point {p.id!r}: wrong dimension or non-finite")
            if any(x.WhichOneof("kind") is None for x in p.metadata.values()):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"point {p.id!r}: a metadata Value with no kind")
            if config.metric == types_pb2.COSINE:
                v = v / np.linalg.norm(v)
            staged[p.id] = (v, dict(p.metadata))
        col["points"].update(staged)
        return vector_store_pb2.UpsertResponse(upserted=len(staged))

    def Get(self, request, context):
        self._record("Get", request)
        col = self._collection(request.collection, context)
        reply = vector_store_pb2.GetResponse()
        for i in request.ids:
            if i not in col["points"]:
                reply.missing_ids.append(i)
                continue
            v, m = col["points"][i]
            reply.points.append(types_pb2.Point(id=i, vector=v if request.include_vector else [],
                                                metadata=m if request.include_metadata else {}))
        return reply

    def Delete(self, request, context):
        self._record("Delete", request)
        col = self._collection(request.collection, context)
        return vector_store_pb2.DeleteResponse(deleted=sum(col["points"].pop(i, None) is not None for i in request.ids))

    def _search(self, request, context):
        col = self._collection(request.collection, context)
        config = col["config"]
        if not 1 <= request.k <= 10000:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"k {request.k} out of range 1..=10000")
        q = np.array(request.vector, dtype=np.float32)
        if len(q) != config.dimension:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "query: wrong dimension")
        if request.HasField("filter"):
            check_filter(request.filter, context)
        scored = []
        for pid, (v, m) in col["points"].items():
            if request.HasField("filter") and not matches(request.filter, m):
                continue
            if config.metric == types_pb2.COSINE:
                d = 1 - float(np.dot(v, q / np.linalg.norm(q)))
            elif config.metric == types_pb2.L2:
                d = float(np.sum((v - q) ** 2))
            else:
                d = -float(np.dot(v, q))
            scored.append((np.float32(d), pid.encode(), pid))
        scored.sort()
        reply = vector_store_pb2.SearchResponse()
        for d, _, pid in scored[request.offset:request.offset + request.k]:
            v, m = col["points"][pid]
            score = 1 - d if config.metric == types_pb2.COSINE else -d
            reply.hits.append(types_pb2.ScoredPoint(id=pid, distance=d, score=score,
                                                    vector=v if request.include_vector else [],
                                                    metadata=m if request.include_metadata else {}))
        return reply

    def Search(self, request, context):
        self._record("Search", request)
        return self._search(request, context)

    def SearchBatch(self, request, context):
        self._record("SearchBatch", request)
        return vector_store_pb2.SearchBatchResponse(results=[self._search(r, context) for r in request.searches])

    def Count(self, request, context):
        self._record("Count", request)
        col = self._collection(request.collection, context)
        if request.HasField("filter"):
            check_filter(request.filter, context)
            return vector_store_pb2.CountResponse(count=sum(matches(request.filter, m) for _, m in col["points"].values()))
        return vector_store_pb2.CountResponse(count=len(col["points"]))


@pytest.fixture
def fake():
    store = FakeStore()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.max_receive_message_length", 64 << 20)])
    vector_store_pb2_grpc.add_VectorStoreServicer_to_server(store, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = shoal.Client(f"127.0.0.1:{port}", timeout=10)
    yield store, client
    client.close()
    server.stop(None)


def calls(store, method):
    return [r for m, r in store.calls if m == method]


def dataset(n=300, dimension=8, seed=1):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dimension)).astype(np.float32)
    ids = [f"pt-{i}" for i in range(n)]
    metadatas = [{"label": i % 5, "part": ["tank", "wing", "hull"][i % 3], "w": float(i) / 10, "even": i % 2 == 0,
                  "tags": ["a"] if i % 4 == 0 else ["b", "c"]} for i in range(n)]
    return ids, vectors, metadatas


def oracle(vectors, ids, metadatas, q, k, keep=lambda m: True, metric="l2"):
    rows = []
    for i, v, m in zip(ids, vectors, metadatas):
        if keep(m):
            d = float(np.sum((v - q) ** 2)) if metric == "l2" else -float(np.dot(v, q))
            rows.append((np.float32(d), i.encode(), i))
    rows.sort()
    return [i for _, _, i in rows[:k]]


# ---------------------------------------------------------------------------
# End to end against the fake server
# ---------------------------------------------------------------------------

def test_collections_lifecycle(fake):
    store, client = fake
    col = client.create_collection("faces", dimension=512, metric="cosine", shards=6)
    sent = calls(store, "CreateCollection")[0].config
    assert (sent.name, sent.dimension, sent.metric, sent.shard_count) == ("faces", 512, types_pb2.COSINE, 6)
    assert (col.name, col.dimension, col.metric, col.info.shards, col.info.replication_factor) == \
        ("faces", 512, "cosine", 6, 1)
    client.create_collection("alpha", dimension=3, metric="l2")
    assert [c.name for c in client.list_collections()] == ["alpha", "faces"]
    assert client.get_collection("alpha").info.shards == 2  # the server's default, resolved
    client.delete_collection("alpha")
    assert [c.name for c in client.list_collections()] == ["faces"]
    assert client.get_or_create_collection("faces", dimension=512).name == "faces"
    assert client.get_or_create_collection("new", dimension=4, metric="ip").metric == "ip"


def test_server_errors_are_shoal_errors(fake):
    store, client = fake
    client.create_collection("c", dimension=3, metric="l2")
    with pytest.raises(shoal.AlreadyExistsError) as info:
        client.create_collection("c", dimension=3, metric="l2")
    assert isinstance(info.value, shoal.ShoalError)
    assert info.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert "already exists" in info.value.message
    with pytest.raises(shoal.ShoalError) as info:
        client.get_collection("nope")
    assert isinstance(info.value, shoal.NotFoundError) and info.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(shoal.NotFoundError):
        client.delete_collection("nope")
    col = client.get_collection("c")
    col.upsert(["a"], [[1, 2, 3]])
    with pytest.raises(shoal.InvalidArgumentError) as info:  # an empty Filter message, passed through raw
        col.search([1, 2, 3], k=1, where=types_pb2.Filter())
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and "empty Filter" in info.value.message
    with pytest.raises(shoal.InvalidArgumentError):  # non-finite component: the server's check
        col.upsert(["b"], [[1, float("nan"), 3]])


def test_unreachable_server_is_unavailable():
    client = shoal.Client("127.0.0.1:1", timeout=2)
    with pytest.raises(shoal.ShoalError) as info:
        client.list_collections()
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    client.close()


def test_upsert_search_get_delete_count(fake):
    store, client = fake
    ids, vectors, metadatas = dataset()
    col = client.create_collection("parts", dimension=8, metric="l2")
    assert col.upsert(ids=ids, vectors=vectors, metadatas=metadatas) == 300
    assert col.count() == 300

    q = vectors[17] + 0.01
    hits = col.search(q, k=10)
    assert [h.id for h in hits] == oracle(vectors, ids, metadatas, q, 10)
    assert hits[0].id == "pt-17"
    assert all(math.isclose(h.score, -h.distance, rel_tol=1e-6) for h in hits)
    assert hits[0].metadata == metadatas[17] and hits[0].vector is None

    where = {"label": 3, "part": {"$in": ["tank", "hull"]}}
    hits = col.search(q.tolist(), k=5, where=where, include_vector=True)
    expected = oracle(vectors, ids, metadatas, q, 5, lambda m: m["label"] == 3 and m["part"] in ("tank", "hull"))
    assert [h.id for h in hits] == expected
    assert np.allclose(hits[0].vector, vectors[int(hits[0].id[3:])])

    page = col.search(q, k=5, offset=5)
    assert [h.id for h in page] == oracle(vectors, ids, metadatas, q, 10)[5:]

    batch = col.search_batch(vectors[:3], k=4, where={"even": True})
    assert len(batch) == 3
    for row, hits in zip(vectors[:3], batch):
        assert [h.id for h in hits] == oracle(vectors, ids, metadatas, row, 4, lambda m: m["even"])
    assert len(calls(store, "SearchBatch")[0].searches) == 3
    assert col.search_batch([], k=3) == []

    got = col.get(["pt-5", "missing", "pt-2"])
    assert [p.id for p in got] == ["pt-5", "pt-2"]
    assert np.allclose(got[0].vector, vectors[5]) and got[0].metadata == metadatas[5]
    assert got[1].vector.dtype == np.float32
    assert col.get(["pt-5"], include_vector=False)[0].vector is None

    assert col.delete(["pt-5", "pt-6", "missing"]) == 2
    assert col.count() == 298
    assert col.get(["pt-5"]) == []


def test_count_under_every_operator(fake):
    store, client = fake
    ids, vectors, metadatas = dataset(n=120)
    col = client.create_collection("ops", dimension=8, metric="ip")
    col.upsert(ids, vectors, metadatas)
    cases = [
        ({"label": 3}, lambda m: m["label"] == 3),
        ({"label": 3.0}, lambda m: m["label"] == 3),  # int and float compare by value
        ({"label": {"$ne": 3}}, lambda m: m["label"] != 3),
        ({"w": {"$gt": 2.5, "$lte": 8}}, lambda m: 2.5 < m["w"] <= 8),
        ({"w": {"$gte": 11}}, lambda m: m["w"] >= 11),
        ({"w": {"$lt": 1}}, lambda m: m["w"] < 1),
        ({"part": {"$nin": ["tank"]}}, lambda m: m["part"] != "tank"),
        ({"tags": "c"}, lambda m: "c" in m["tags"]),  # any element of a string list
        ({"tags": {"$in": ["a", "zzz"]}}, lambda m: "a" in m["tags"]),
        ({"even": True}, lambda m: m["even"]),
        ({"even": 1}, lambda m: False),  # a bool never equals a number
        ({"missing": {"$exists": False}}, lambda m: True),
        ({"label": {"$exists": True}}, lambda m: True),
        ({"missing": {"$ne": 1}}, lambda m: True),  # absent fields match $ne
        ({"$or": [{"label": 1}, {"$not": {"even": True}}]}, lambda m: m["label"] == 1 or not m["even"]),
        ({"$and": [{"label": {"$in": [1, 2]}}, {"part": "wing"}]}, lambda m: m["label"] in (1, 2) and m["part"] == "wing"),
        ({"part": {"$gt": 1}}, lambda m: False),  # range matches numbers only
    ]
    for where, keep in cases:
        assert col.count(where) == sum(keep(m) for m in metadatas), where
    q = vectors[0]
    assert [h.id for h in col.search(q, k=7, where={"label": {"$gte": 2}})] == \
        oracle(vectors, ids, metadatas, q, 7, lambda m: m["label"] >= 2, metric="ip")


def test_search_request_shape(fake):
    store, client = fake
    col = client.create_collection("shape", dimension=4, metric="cosine")
    col.upsert(["a", "b"], np.eye(4, dtype=np.float32)[:2])
    col.search([1, 0, 0, 0], k=3)
    col.search(np.array([1, 0, 0, 0], dtype=np.float64), k=2, ef=50, exact=True, where={"x": 1}, allow_partial=True)
    first, second = calls(store, "Search")
    assert not first.HasField("ef") and not first.HasField("filter") and not first.exact
    assert first.include_metadata and not first.include_vector and first.offset == 0
    assert second.HasField("ef") and second.ef == 50 and second.exact and second.allow_partial
    assert second.filter == cond("x", eq=V(int_value=1))
    assert list(second.vector) == [1, 0, 0, 0]
    hits = col.search([2, 0, 0, 0], k=2)
    assert hits[0].id == "a" and math.isclose(hits[0].score, 1.0, rel_tol=1e-6) and abs(hits[0].distance) < 1e-6


def test_large_upserts_are_batched(fake):
    store, client = fake
    col = client.create_collection("big", dimension=4, metric="l2")
    n = 2 * MAX_BATCH_POINTS + 345
    ids = [f"id{i}" for i in range(n)]
    assert col.upsert(ids, np.ones((n, 4), dtype=np.float32), [{"i": i} for i in range(n)]) == n
    assert [len(r.points) for r in calls(store, "Upsert")] == [MAX_BATCH_POINTS, MAX_BATCH_POINTS, 345]
    assert col.count() == n

    wide = client.create_collection("wide", dimension=8192, metric="l2")  # 32 KiB a point
    store.calls.clear()
    assert wide.upsert([f"w{i}" for i in range(300)], np.zeros((300, 8192), dtype=np.float32)) == 300
    sizes = [r.ByteSize() for r in calls(store, "Upsert")]
    assert len(sizes) >= 3 and max(sizes) <= MAX_BATCH_BYTES

    store.calls.clear()
    assert len(col.get(ids)) == n  # gets and deletes are batched too
    assert all(len(r.ids) <= 1000 for r in calls(store, "Get"))
    assert col.delete(ids) == n and len(calls(store, "Delete")) == 3


def test_bad_input_fails_before_any_call(fake):
    store, client = fake
    col = client.create_collection("v", dimension=3, metric="l2")
    store.calls.clear()
    n = 1500
    metadatas = [{"ok": 1} for _ in range(n)]
    metadatas[1400] = {"bad": [1, 2]}  # in the second batch: the first must not be sent either
    with pytest.raises(ValueError, match=r"metadatas\[1400\]\['bad'\]"):
        col.upsert([f"p{i}" for i in range(n)], np.zeros((n, 3)), metadatas)
    with pytest.raises(ValueError, match="appears twice"):
        col.upsert(["a", "a"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="2 vectors for 3 ids"):
        col.upsert(["a", "b", "c"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="dimension is 3"):
        col.upsert(["a"], [[1, 2]])
    with pytest.raises(ValueError, match="1 entries for 2 ids"):
        col.upsert(["a", "b"], np.zeros((2, 3)), [{}])
    with pytest.raises(ValueError, match="single string"):
        col.delete("abc")
    with pytest.raises(ValueError, match="non-empty strings"):
        col.get(["a", ""])
    with pytest.raises(ValueError, match="unknown operator"):
        col.search([1, 2, 3], k=3, where={"$nope": 1})
    with pytest.raises(ValueError, match="unknown operator"):
        col.count({"a": {"$regex": "x"}})
    with pytest.raises(ValueError, match="k must be a positive int"):
        col.search([1, 2, 3], k=0)
    with pytest.raises(ValueError, match="k must be a positive int"):
        col.search([1, 2, 3], k=True)
    with pytest.raises(ValueError, match="dimension is 3"):
        col.search([1, 2], k=3)
    with pytest.raises(ValueError, match="metric"):
        client.create_collection("x", dimension=3, metric="hamming")
    assert store.calls == []
    assert col.upsert([], np.zeros((0, 3))) == 0 and store.calls == []
