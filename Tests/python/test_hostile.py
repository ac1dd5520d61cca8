"""Hostile-in-meaning requests against a real `shoal serve` (issue 10).

Every request gets a clear status or a correct answer; a refusal changes
nothing (count and a get of the touched ids are as before); the process is
alive after every case (Admin.Health polled); at the end the same data folder
is SIGTERM-restarted and SIGKILL-restarted and holds the same collections,
counts and points as before.

Statuses: RESOURCE_EXHAUSTED for capacity and size limits (address space,
batch work, reply size, message size, distinct field names), INVALID_ARGUMENT
for malformed input and per-request shape limits ($in length, metadata bytes,
filter depth and width, id length). INTERNAL and UNKNOWN are never accepted.
"""
import functools
import signal
import subprocess
import threading
import time
import unicodedata

import grpc
import numpy as np
import pytest

from hostile_helpers import (EXHAUSTED, INVALID, NOT_FOUND, OK, Serve, field_bytes, packed_floats, raw, raw_point,
                             raw_upsert, snapshot, status, upsert_request)
from shoal.v1 import types_pb2, vector_store_pb2

DIM = 8
BASE = 200  # points p0 … p199 in "base"


def vec(seed, dim=DIM):
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def base_metadata(i):
    return {"n": i, "tag": ["a", "b"][i % 2], "s": f"s{i}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Serve(str(tmp_path_factory.mktemp("hostile")))
    base = s.client.create_collection("base", dimension=DIM, metric="l2", shards=2)
    ids = [f"p{i}" for i in range(BASE)]
    base.upsert(ids=ids, vectors=np.stack([vec(i) for i in range(BASE)]), metadatas=[base_metadata(i) for i in range(BASE)])
    s.client.create_collection("cos", dimension=DIM, metric="cosine", shards=2)
    #: per collection, the ids the restart tests compare (present or deliberately absent)
    s.touched = {"base": set(ids[:20]) | {"p199"}, "cos": set()}
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def process_stays_alive(server):
    yield
    if not server.alive():
        tail = server.log_tail()
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
        server.log.close()
        server.start()  # the next case gets a process again
        pytest.fail(f"shoal serve did not survive the case: {tail}")


def col(server, name="base"):
    return server.client.get_collection(name)


def assert_unchanged(server, name, ids, call, accepted):
    """Runs `call`; its status must be in `accepted` and, unless it is OK, count and the
    points `ids` of collection `name` must be as before."""
    c = col(server, name)
    before = snapshot(c, ids)
    code, reply = call()
    assert code in accepted, f"{code}: {str(reply)[:300]}"
    if code != OK:
        assert isinstance(reply, str) and reply, "a refusal must say why"
        assert snapshot(c, ids) == before
    return code, reply


def one_point(id_="x", vector=None, metadata=None, dim=DIM):
    return [(id_, vec(7, dim) if vector is None else vector, metadata)]


def search_request(vector=None, collection="base", **kw):
    return vector_store_pb2.SearchRequest(collection=collection, vector=list(map(float, vec(1) if vector is None else vector)),
                                          **{"k": 10, **kw})


def metadata_of(**values):
    return {k: v if isinstance(v, types_pb2.Value) else types_pb2.Value(string_value=v) for k, v in values.items()}


def nested(depth):
    """A filter `depth` nodes deep: negate(negate(… condition …))."""
    f = types_pb2.Filter(condition=types_pb2.FieldCondition(field="n", exists=True))
    for _ in range(depth - 1):
        f = types_pb2.Filter(negate=f)
    return f


def all_of_conditions(count):
    return types_pb2.Filter(all_of=types_pb2.FilterList(filters=[
        types_pb2.Filter(condition=types_pb2.FieldCondition(field="n", ne=types_pb2.Value(int_value=-1 - i)))
        for i in range(count)]))


@functools.lru_cache(maxsize=1)
def million_values():
    """10^6 distinct int Values (built once: it takes about 2 s)."""
    return types_pb2.ValueList(values=[types_pb2.Value(int_value=i) for i in range(1_000_000)])


def in_filter(values):
    return types_pb2.Filter(condition=types_pb2.FieldCondition(field="n", is_in=types_pb2.ValueList(values=values)))


def range_filter(**bounds):
    return types_pb2.Filter(condition=types_pb2.FieldCondition(field="n", range=types_pb2.Range(**bounds)))


# ---------------------------------------------------------------------------
# Refusals of malformed or over-limit data requests: a clear status, nothing changed
# ---------------------------------------------------------------------------

def _upsert(points, collection="base"):
    """A case sending these points (a callable: built when the case runs)."""
    return lambda s: status(s.stub.Upsert, upsert_request(collection, points() if callable(points) else points), timeout=30)


def _search(filter=None, **kw):
    def call(s):
        request = search_request(**kw)
        if filter is not None:
            request.filter.CopyFrom(filter() if callable(filter) else filter)
        return status(s.stub.Search, request, timeout=30)
    return call


def _count(filt):
    return lambda s: status(s.stub.Count, vector_store_pb2.CountRequest(
        collection="base", filter=filt() if callable(filt) else filt), timeout=30)


def _raw(method, payload_fn):
    return lambda s: raw(s, method, payload_fn())


BIG_STRING = "x" * 65_537
REFUSALS = {
    # vectors
    "wrong dimension": (_upsert(one_point(vector=vec(1, DIM - 1))), {INVALID}),
    "empty vector": (_upsert(one_point(vector=[])), {INVALID}),
    "NaN component": (_upsert(one_point(vector=[0.0] * (DIM - 1) + [float("nan")])), {INVALID}),
    "+inf component": (_upsert(one_point(vector=[float("inf")] + [0.0] * (DIM - 1))), {INVALID}),
    "-inf query": (_search(vector=[float("-inf")] * DIM), {INVALID}),
    "NaN query": (_search(vector=[float("nan")] * DIM), {INVALID}),
    "query of wrong dimension": (_search(vector=vec(1, DIM + 1)), {INVALID}),
    "cosine zero vector": (_upsert(one_point("z0", vector=[0.0] * DIM), "cos"), {INVALID}),
    "cosine negative-zero vector": (_upsert(one_point("z1", vector=[-0.0] * DIM), "cos"), {INVALID}),
    # ids
    "empty id": (_upsert(one_point("")), {INVALID}),
    "1,025-byte id": (_upsert(one_point("i" * 1025)), {INVALID}),
    "1,025-byte multibyte id": (_upsert(one_point("é" * 512 + "a")), {INVALID}),
    "empty id in delete": (lambda s: status(s.stub.Delete, vector_store_pb2.DeleteRequest(collection="base", ids=["p0", ""])), {INVALID}),
    "duplicate ids in one upsert": (_upsert(one_point("dup") + one_point("dup", vector=vec(9))), {INVALID}),
    "10,001 points in one upsert": (_upsert(lambda: [(f"big{i}", vec(i), None) for i in range(10_001)]), {EXHAUSTED, INVALID}),
    "10,001 ids in one delete": (lambda s: status(s.stub.Delete, vector_store_pb2.DeleteRequest(
        collection="base", ids=[f"p{i}" for i in range(10_001)])), {EXHAUSTED, INVALID}),
    "10,001 ids in one get": (lambda s: status(s.stub.Get, vector_store_pb2.GetRequest(
        collection="base", ids=[f"p{i}" for i in range(10_001)])), {EXHAUSTED, INVALID}),
    # search shape
    "k=0": (_search(k=0), {INVALID}),
    "k=10,001": (_search(k=10_001), {INVALID}),
    "offset overflow": (_search(k=10, offset=2**32 - 1), {INVALID}),
    "offset + k = 10,001": (_search(k=1, offset=10_000), {INVALID}),
    "ef=2^32-1": (_search(ef=2**32 - 1), {INVALID}),
    "1,001 searches in a batch": (lambda s: status(s.stub.SearchBatch, vector_store_pb2.SearchBatchRequest(
        searches=[search_request() for _ in range(1001)])), {EXHAUSTED, INVALID}),
    "batch naming an unknown collection": (lambda s: status(s.stub.SearchBatch, vector_store_pb2.SearchBatchRequest(
        searches=[search_request(), search_request(collection="nope")])), {NOT_FOUND, INVALID}),
    # metadata
    "value with no kind": (_upsert(one_point("m1", metadata={"a": types_pb2.Value()})), {INVALID}),
    "empty field name": (_upsert(one_point("m2", metadata=metadata_of(**{"": "v"}))), {INVALID}),
    "257-byte field name": (_upsert(one_point("m3", metadata=metadata_of(**{"k" * 257: "v"}))), {INVALID}),
    "NaN metadata double": (_upsert(one_point("m4", metadata={"d": types_pb2.Value(double_value=float("nan"))})), {INVALID}),
    "string value over 64 KiB": (_upsert(one_point("m5", metadata=metadata_of(big=BIG_STRING))), {INVALID}),
    "list of 5,000 elements": (_upsert(one_point("m6", metadata={"l": types_pb2.Value(
        string_list=types_pb2.StringList(values=["e"] * 5000))})), {INVALID}),
    "metadata with 1,025 fields": (_upsert(one_point("m7", metadata={
        f"f{i}": types_pb2.Value(int_value=i) for i in range(1025)})), {INVALID}),
    "100 KiB of metadata": (_upsert(one_point("m8", metadata=metadata_of(a="a" * 50_000, b="b" * 52_000))), {INVALID}),
    "1 MiB of metadata": (_upsert(lambda: one_point("m9", metadata=metadata_of(
        **{f"k{i}": "v" * 65_000 for i in range(16)}))), {INVALID, EXHAUSTED}),
    # filters
    "filter 33 deep (search)": (_search(filter=nested(33)), {INVALID}),
    "filter 33 deep (count)": (_count(nested(33)), {INVALID}),
    "filter of 1,025 conditions": (_search(filter=all_of_conditions(1025)), {INVALID}),
    "10^6-element $in": (_search(filter=lambda: in_filter(million_values().values)), {INVALID}),
    "10^6-element $nin (count)": (_count(lambda: types_pb2.Filter(condition=types_pb2.FieldCondition(
        field="n", not_in=million_values()))), {INVALID}),
    "$in mixing kinds": (_search(filter=in_filter([types_pb2.Value(int_value=1), types_pb2.Value(string_value="1")])), {INVALID}),
    "empty $in": (_search(filter=in_filter([])), {INVALID}),
    "range lower > upper": (_search(filter=range_filter(gte=types_pb2.Number(int_value=10), lt=types_pb2.Number(int_value=5))), {INVALID}),
    "range with no bound": (_search(filter=range_filter()), {INVALID}),
    "range bound NaN": (_count(range_filter(gt=types_pb2.Number(double_value=float("nan")))), {INVALID}),
    "empty filter": (_search(filter=types_pb2.Filter()), {INVALID}),
    "empty all_of": (_search(filter=types_pb2.Filter(all_of=types_pb2.FilterList())), {INVALID}),
    "condition with empty field": (_count(types_pb2.Filter(condition=types_pb2.FieldCondition(field="", exists=True))), {INVALID}),
    "eq on a string list": (_count(types_pb2.Filter(condition=types_pb2.FieldCondition(field="tag", eq=types_pb2.Value(
        string_list=types_pb2.StringList(values=["a"]))))), {INVALID}),
    # bytes no client would send
    "unknown filter operator (raw)": (_raw("Count", lambda: field_bytes(1, b"base") + field_bytes(
        2, field_bytes(1, field_bytes(1, b"n") + field_bytes(15, b"\x08\x01")))), {INVALID}),
    "garbage bytes (Upsert)": (_raw("Upsert", lambda: b"\xff\xff\xff\xff\x0f garbage"), {INVALID}),
    "garbage bytes (Search)": (_raw("Search", lambda: b"\x0a\xff\xff\xff\xff\x0f"), {INVALID}),
    "truncated message": (_raw("Upsert", lambda: raw_upsert("base", [raw_point(b"tr", [0.5] * DIM)])[:-5]), {INVALID}),
    "invalid UTF-8 id (raw)": (_raw("Upsert", lambda: raw_upsert("base", [raw_point(b"bad\xff\xfe", [0.5] * DIM)])), {INVALID}),
    "unpaired surrogate id (raw)": (_raw("Upsert", lambda: raw_upsert("base", [raw_point(b"s\xed\xa0\x80", [0.5] * DIM)])), {INVALID}),
    "overlong UTF-8 id (raw)": (_raw("Upsert", lambda: raw_upsert("base", [raw_point(b"\xc0\xaf", [0.5] * DIM)])), {INVALID}),
    "invalid UTF-8 id in delete (raw)": (_raw("Delete", lambda: field_bytes(1, b"base") + field_bytes(2, b"p0\xff")), {INVALID}),
    "invalid UTF-8 collection name (raw)": (_raw("Upsert", lambda: field_bytes(1, b"ba\xffse") + field_bytes(
        2, raw_point(b"u1", [0.5] * DIM))), {INVALID}),
    "unpaired surrogate collection name (raw)": (_raw("Search", lambda: field_bytes(1, b"b\xed\xb0\x80") + field_bytes(
        2, packed_floats([0.5] * DIM)) + b"\x18\x0a"), {INVALID}),
    "invalid UTF-8 metadata key (raw)": (_raw("Upsert", lambda: raw_upsert("base", [raw_point(b"u2", [0.5] * DIM) + field_bytes(
        3, field_bytes(1, b"k\xff") + field_bytes(2, b"\x10\x01"))])), {INVALID}),
    "invalid UTF-8 metadata string (raw)": (_raw("Upsert", lambda: raw_upsert("base", [raw_point(b"u3", [0.5] * DIM) + field_bytes(
        3, field_bytes(1, b"k") + field_bytes(2, field_bytes(1, b"v\xed\xa0\x80")))])), {INVALID}),
    "invalid UTF-8 filter field (raw)": (_raw("Count", lambda: field_bytes(1, b"base") + field_bytes(
        2, field_bytes(1, field_bytes(1, b"n\xff") + b"\x38\x01"))), {INVALID}),
    "70 MiB request": (_raw("Upsert", lambda: raw_upsert("base", [raw_point(b"huge", [0.5] * DIM)])
                            + field_bytes(15, bytes(70 << 20))), {EXHAUSTED}),
}
TOUCHED = ["p0", "p1", "p199", "x", "z0", "z1", "dup", "big0", "big10000", "tr", "huge", "u1", "u2", "u3"] + [f"m{i}" for i in range(1, 10)]


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_and_nothing_changed(server, case):
    call, accepted = REFUSALS[case]
    name = "cos" if case.startswith("cosine") else "base"
    assert_unchanged(server, name, TOUCHED, lambda: call(server), accepted)


@pytest.mark.parametrize("method,request_", [
    ("Search", search_request(collection="nope")),
    ("Upsert", upsert_request("nope", one_point())),
    ("Get", vector_store_pb2.GetRequest(collection="nope", ids=["p0"])),
    ("Delete", vector_store_pb2.DeleteRequest(collection="nope", ids=["p0"])),
    ("Count", vector_store_pb2.CountRequest(collection="nope")),
    ("DescribeCollection", vector_store_pb2.DescribeCollectionRequest(name="nope")),
    ("DeleteCollection", vector_store_pb2.DeleteCollectionRequest(name="nope")),
])
def test_unknown_collection_is_not_found(server, method, request_):
    code, message = status(getattr(server.stub, method), request_, timeout=30)
    assert code == NOT_FOUND and "nope" in message


# ---------------------------------------------------------------------------
# Collections: refused configs leave nothing behind; borderline HNSW parameters
# are refused at create or give a usable collection, never one its node refuses
# ---------------------------------------------------------------------------

def _config(name="c1", dimension=DIM, metric=types_pb2.L2, shards=1, **kw):
    hnsw = types_pb2.HnswParams(**{k: kw.pop(k) for k in ("m", "ef_construction", "ef") if k in kw})
    return types_pb2.CollectionConfig(name=name, dimension=dimension, metric=metric, shard_count=shards, hnsw=hnsw, **kw)


BAD_CONFIGS = {
    "dimension 0": (_config(dimension=0), {INVALID}),
    "dimension 65,537": (_config(dimension=65_537), {INVALID}),
    "metric unset": (_config(metric=types_pb2.METRIC_UNSPECIFIED), {INVALID}),
    "name with /": (_config(name="a/b"), {INVALID}),
    "name of 129 chars": (_config(name="n" * 129), {INVALID}),
    "unicode name": (_config(name="café"), {INVALID}),
    "empty name": (_config(name=""), {INVALID}),
    "name with a space": (_config(name="a b"), {INVALID}),
    "name ..": (_config(name=".."), {INVALID}),
    "hnsw m=1": (_config(m=1), {INVALID}),
    "hnsw m=129": (_config(m=129), {INVALID}),
    "ef_construction 20,000": (_config(ef_construction=20_000), {INVALID}),
    "ef 200,000": (_config(ef=200_000), {INVALID}),
    "1,025 shards": (_config(shards=1025), {INVALID, EXHAUSTED}),
    "replication 2 on one node": (_config(replication_factor=2), {grpc.StatusCode.FAILED_PRECONDITION, INVALID}),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_collection_config_is_refused(server, case):
    config, accepted = BAD_CONFIGS[case]
    if config.name == "c1":  # a unique name, so a config wrongly accepted does not spill into the next case
        config.name = f"bad{list(BAD_CONFIGS).index(case)}"
    before = [c.name for c in server.client.list_collections()]
    code, message = status(server.stub.CreateCollection, vector_store_pb2.CreateCollectionRequest(config=config), timeout=30)
    assert code in accepted, f"{code}: {message}"
    assert [c.name for c in server.client.list_collections()] == before


def test_create_with_invalid_utf8_name_is_invalid(server):
    before = [c.name for c in server.client.list_collections()]
    config = field_bytes(1, b"col\xed\xa0\x80") + b"\x10\x08\x18\x02"  # name, dimension 8, metric L2
    code, message = raw(server, "CreateCollection", field_bytes(1, config))
    assert code == INVALID, f"{code}: {message}"
    assert [c.name for c in server.client.list_collections()] == before


def test_create_without_config_is_invalid(server):
    code, _ = status(server.stub.CreateCollection, vector_store_pb2.CreateCollectionRequest(), timeout=30)
    assert code == INVALID


def test_creating_a_collection_twice_keeps_the_first(server):
    server.client.create_collection("twice", dimension=4, metric="l2", shards=1)
    code, message = status(server.client.create_collection, "twice", dimension=16, metric="ip", shards=3)
    assert code == grpc.StatusCode.ALREADY_EXISTS, f"{code}: {message}"
    info = server.client.get_collection("twice").info
    assert (info.dimension, info.metric, info.shards) == (4, "l2", 1)
    server.client.delete_collection("twice")


@pytest.mark.parametrize("hnsw", [dict(ef_construction=0), dict(m=2), dict(m=128), dict(ef_construction=1), dict(ef_construction=3),
                                  dict(ef_construction=4), dict(ef_construction=4096), dict(ef_construction=4097),
                                  dict(ef_construction=5000), dict(ef_construction=10_000), dict(ef=1)],
                         ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()))
def test_hnsw_parameters_refused_at_create_or_usable(server, hnsw):
    name = "h-" + "-".join(f"{k}{v}" for k, v in hnsw.items()).replace("_", "")
    code, reply = status(server.client.create_collection, name, dimension=DIM, metric="l2", shards=1, **hnsw)
    assert code in (OK, INVALID), f"{code}: {reply}"
    names = [c.name for c in server.client.list_collections()]
    if code != OK:
        assert name not in names and list(hnsw)[0] in reply
        return
    try:
        vectors = np.stack([vec(100 + i) for i in range(60)])
        code, reply = status(reply.upsert, ids=[f"q{i}" for i in range(60)], vectors=vectors)
        assert code == OK and reply == 60, f"created with {hnsw} but its node refuses writes: {code}: {reply}"
        c = col(server, name)
        assert c.count() == 60
        for i in (0, 33, 59):
            hits = c.search(vectors[i], k=1, exact=True)
            assert hits[0].id == f"q{i}"
        assert len(c.search(vectors[5], k=10)) == 10
    finally:
        server.client.delete_collection(name)


def test_huge_collection_is_refused_and_the_folder_restarts(tmp_path):
    """dimension 65,536 × 1,024 shards: RESOURCE_EXHAUSTED before anything is persisted."""
    s = Serve(str(tmp_path))
    try:
        s.client.create_collection("small", dimension=4, metric="l2", shards=1).upsert(["a"], [[1, 2, 3, 4]])
        started = time.monotonic()
        code, message = status(s.client.create_collection, "huge", dimension=65_536, metric="l2", shards=1024)
        if code != EXHAUSTED:
            try:
                s.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        died = s.proc.poll() is not None and [l for l in s.log_tail(100_000).splitlines() if "rror" in l][:3]
        assert code == EXHAUSTED, f"{code}: {message} (the process died: {died})" if died else f"{code}: {message}"
        assert time.monotonic() - started < 10
        assert s.alive()
        assert [c.name for c in s.client.list_collections()] == ["small"]
        s.client.create_collection("later", dimension=4, metric="l2", shards=1).upsert(["b"], [[4, 3, 2, 1]])
        s.restart(signal.SIGKILL)
        assert sorted(c.name for c in s.client.list_collections()) == ["later", "small"]
        assert col(s, "small").count() == 1 and col(s, "later").get(["b"])[0].vector.tolist() == [4, 3, 2, 1]
    finally:
        if s.proc.poll() is None:
            s.stop()


# ---------------------------------------------------------------------------
# Ids are bytes
# ---------------------------------------------------------------------------

def nfd(s):
    return unicodedata.normalize("NFD", s)


ID_PAIRS = {
    "café NFC vs NFD": ("caf\u00e9", "cafe\u0301"),
    "Å: U+00C5 vs A + ring": ("\u00c5", "A\u030a"),
    "Å: Angstrom sign vs U+00C5": ("\u212b", "\u00c5"),
    "combining mark order": ("a\u0301\u0323", "a\u0323\u0301"),
    "Hangul precomposed vs jamo": ("\uac00", "\u1100\u1161"),
    "ligature ﬁ vs fi": ("\ufb01", "fi"),
    "fullwidth vs ASCII": ("\uff21\uff22\uff23", "ABC"),
    "NUL inside vs without": ("a\x00b", "ab"),
    "trailing NUL": ("id\x00", "id"),
    "CRLF vs LF": ("l\r\n", "l\n"),
}


@pytest.mark.parametrize("case", list(ID_PAIRS))
def test_ids_differing_in_bytes_are_distinct_points(server, case):
    first, second = ID_PAIRS[case]
    assert first.encode() != second.encode()
    c = col(server, "base")
    first, second = f"u-{first}", f"u-{second}"
    server.touched["base"] |= {first, second}
    count = c.count()
    n = list(ID_PAIRS).index(case)
    va, vb = vec(5000 + n), vec(6000 + n)
    assert c.upsert([first], [va], [{"which": "first"}]) == 1
    assert c.upsert([second], [vb], [{"which": "second"}]) == 1
    assert c.count() == count + 2
    got = {p.id: p for p in c.get([first, second])}
    assert set(got) == {first, second}
    assert np.array_equal(got[first].vector, va) and got[first].metadata == {"which": "first"}
    assert np.array_equal(got[second].vector, vb) and got[second].metadata == {"which": "second"}
    assert [h.id for h in c.search(va, k=1, exact=True)] == [first]
    assert [h.id for h in c.search(vb, k=1)] == [second]
    assert c.delete([first]) == 1
    assert c.count() == count + 1
    assert [p.id for p in c.get([first, second])] == [second]
    reply = server.stub.Get(vector_store_pb2.GetRequest(collection="base", ids=[first, second]))
    assert list(reply.missing_ids) == [first]


def test_nul_bytes_round_trip_through_get_search_and_delete(server):
    c = col(server, "base")
    ids = ["\x00", "\x00\x00", "n\x00ul"]
    server.touched["base"] |= set(ids)
    count = c.count()
    vectors = np.stack([vec(7000 + i) for i in range(3)])
    assert c.upsert(ids, vectors) == 3 and c.count() == count + 3
    assert [p.id for p in c.get(ids)] == ids
    for i, v in zip(ids, vectors):
        assert c.search(v, k=1)[0].id == i
    assert c.delete(["\x00\x00"]) == 1
    assert [p.id for p in c.get(ids)] == ["\x00", "n\x00ul"] and c.count() == count + 2


@pytest.mark.parametrize("id_", ["i" * 1024, "é" * 512, "\U0001f600" * 256], ids=["ascii", "2-byte", "4-byte"])
def test_1024_byte_id_is_accepted(server, id_):
    assert len(id_.encode()) == 1024
    c = col(server, "base")
    server.touched["base"].add(id_)
    count = c.count()
    v = vec(len(id_))
    assert c.upsert([id_], [v]) == 1 and c.count() == count + 1
    assert c.get([id_])[0].id == id_ and c.search(v, k=1, exact=True)[0].id == id_


# ---------------------------------------------------------------------------
# Counts that tell the truth
# ---------------------------------------------------------------------------

def test_delete_of_ids_that_never_existed_counts_zero(server):
    c = col(server, "base")
    count = c.count()
    assert c.delete([f"never-{i}" for i in range(1000)]) == 0
    assert c.count() == count


def test_delete_of_three_existing_among_missing_counts_three(server):
    c = col(server, "base")
    c.upsert(["d1", "d2", "d3"], np.stack([vec(8001), vec(8002), vec(8003)]))
    server.touched["base"] |= {"d1", "d2", "d3", "missing-0"}
    count = c.count()
    ids = ["d1", "d2", "d3"] + [f"missing-{i}" for i in range(997)]
    assert c.delete(ids) == 3
    assert c.count() == count - 3 and c.get(["d1", "d2", "d3"]) == []
    assert c.delete(["d1", "d2", "d3"]) == 0  # already gone


def test_upserted_counts_points_applied(server):
    c = col(server, "base")
    count = c.count()
    ids = [f"w{i}" for i in range(5)] + ["p10", "p11", "p12", "p13", "p14"]  # 5 new, 5 replacements
    server.touched["base"] |= set(ids)
    vectors = np.stack([vec(9000 + i) for i in range(10)])
    reply = server.stub.Upsert(upsert_request("base", [(i, v, None) for i, v in zip(ids, vectors)]))
    assert reply.upserted == 10
    assert c.count() == count + 5
    assert all(np.array_equal(p.vector, v) for p, v in zip(c.get(ids), vectors))


def test_empty_search_batch_is_refused_or_empty(server):
    code, reply = status(server.stub.SearchBatch, vector_store_pb2.SearchBatchRequest())
    assert code == INVALID or (code == OK and len(reply.results) == 0), f"{code}: {reply}"


def test_empty_upsert_writes_nothing(server):
    c = col(server, "base")
    count = c.count()
    code, reply = status(server.stub.Upsert, vector_store_pb2.UpsertRequest(collection="base"))
    assert (code == OK and reply.upserted == 0) or code == INVALID, f"{code}: {reply}"
    assert c.count() == count


# ---------------------------------------------------------------------------
# Extreme but finite numbers: accepted and answered correctly
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,vector", [
    ("1e38", [1e38] * DIM),
    ("float max", [3.4028235e38, -3.4028235e38] * (DIM // 2)),
    ("subnormals", [1e-45, 2e-45, -1e-45, 1e-40, 0.0, -0.0, 1.1754942e-38, 5e-44]),
    ("negative zero", [-0.0] * (DIM - 1) + [3.0]),
], ids=lambda x: x if isinstance(x, str) else "")
def test_extreme_finite_components_l2(server, name, vector):
    c = col(server, "base")
    id_ = f"extreme-{name}"
    server.touched["base"].add(id_)
    v = np.array(vector, dtype=np.float32)
    assert np.isfinite(v).all()
    squared = float(np.sum(v.astype(np.float64) ** 2))
    count = c.count()
    code, reply = status(c.upsert, [id_], [v])
    if squared > float(np.finfo(np.float32).max) / 4:
        # Distances to it could overflow float32: refused, with the reason, and nothing changed.
        assert code == INVALID and "scale" in str(reply), f"{code}: {reply}"
        assert c.count() == count and c.get([id_]) == []
        return
    assert code == OK and reply == 1, f"{code}: {reply}"
    got = c.get([id_])[0].vector
    assert got.tobytes() == v.tobytes()  # bit for bit, the sign of zero included
    hits = c.search(v, k=3, exact=True)
    assert hits[0].id == id_ and hits[0].distance == 0
    assert c.search(v, k=1)[0].id == id_
    others = c.search(vec(1), k=BASE, exact=True)
    assert all(np.isfinite(h.distance) or h.id.startswith("extreme-") for h in others)


@pytest.mark.parametrize("vector", [[1e38] * DIM, [1e-40] * DIM], ids=["1e38 (norm overflows)", "subnormal (norm underflows)"])
def test_cosine_extreme_components_refused_or_right(server, vector):
    c = col(server, "cos")
    id_ = f"cx-{vector[0]}"
    count = c.count()
    code, reply = status(c.upsert, [id_], [vector])
    assert code in (OK, INVALID), f"{code}: {reply}"
    if code == INVALID:
        assert c.count() == count and c.get([id_]) == []
        return
    server.touched["cos"].add(id_)
    stored = c.get([id_])[0].vector
    expected = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    assert np.allclose(stored, expected, atol=1e-6), stored
    # Every case here has the same direction: any of them may come first (ties go by id bytes).
    hits = c.search(vector, k=3)
    assert id_ in [h.id for h in hits if abs(h.score - 1) < 1e-5]


# ---------------------------------------------------------------------------
# Search: the largest legal asks answer correctly; work too large is refused before it starts
# ---------------------------------------------------------------------------

def test_k_10000_on_a_small_collection_returns_everything_in_order(server):
    c = col(server, "base")
    count = c.count()
    hits = c.search(vec(3), k=10_000, exact=True, include_metadata=False)
    assert len(hits) == count
    assert all(a.distance <= b.distance for a, b in zip(hits, hits[1:]))
    assert len(c.search(vec(3), k=10, offset=9_990)) == 0  # past the end: empty, not an error


def test_ef_100000_is_accepted(server):
    c = col(server, "base")
    exact = [h.id for h in c.search(vec(4), k=10, exact=True)]
    assert [h.id for h in c.search(vec(4), k=10, ef=100_000)] == exact


def test_search_batch_of_1000_times_k_10000_is_refused_at_once(server):
    batch = vector_store_pb2.SearchBatchRequest(
        searches=[search_request(vector=vec(i), k=10_000, include_vector=True, include_metadata=True) for i in range(1000)])
    started = time.monotonic()
    code, message = status(server.stub.SearchBatch, batch, timeout=60)
    took = time.monotonic() - started
    assert code == EXHAUSTED, f"{code}: {message}"
    assert took < 3, f"refused only after {took:.1f} s: the work ran before the check"


def test_search_reply_over_64_mib_is_refused(server):
    """k=10,000 with vectors on a 16,384-wide collection of 1,050 points: a 69 MB reply."""
    dim, n = 16_384, 1_050
    wide = server.client.create_collection("wide", dimension=dim, metric="l2", shards=1, m=4, ef_construction=8)
    try:
        rng = np.random.default_rng(11)
        for start in range(0, n, 60):
            size = min(60, n - start)
            wide.upsert([f"w{start + i}" for i in range(size)], rng.standard_normal((size, dim), dtype=np.float32))
        assert wide.count() == n
        started = time.monotonic()
        code, message = status(server.stub.Search, search_request(
            vector=rng.standard_normal(dim), collection="wide", k=10_000, include_vector=True, exact=True), timeout=60)
        took = time.monotonic() - started
        assert code == EXHAUSTED, f"{code}: {message}"
        assert took < 5, f"refused only after {took:.1f} s"
        hits = wide.search(rng.standard_normal(dim), k=100, include_vector=True, exact=True)  # a fitting reply answers
        assert len(hits) == 100 and hits[0].vector.shape == (dim,)
    finally:
        server.client.delete_collection("wide")


def test_a_burst_of_concurrent_calls_is_answered_or_refused(server):
    codes, c = [], col(server, "base")

    def one(i):
        codes.append(status(c.search, vec(i), k=50, include_vector=True)[0])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(codes) == 64 and set(codes) <= {OK, EXHAUSTED} and OK in codes


def test_deleting_a_collection_while_searching(server):
    c = server.client.create_collection("doomed", dimension=DIM, metric="l2", shards=2)
    c.upsert([f"o{i}" for i in range(300)], np.stack([vec(i) for i in range(300)]))
    codes, stop = [], threading.Event()

    def searcher():
        while not stop.is_set():
            codes.append(status(c.search, vec(len(codes)), k=20)[0])
    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        server.client.delete_collection("doomed")
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert OK in codes and set(codes) <= {OK, NOT_FOUND, grpc.StatusCode.UNAVAILABLE}, set(codes)
    assert codes[-1] == NOT_FOUND
    assert "doomed" not in [x.name for x in server.client.list_collections()]


# ---------------------------------------------------------------------------
# Metadata limits that are per collection
# ---------------------------------------------------------------------------

def test_metadata_with_1024_fields_is_accepted(server):
    c = server.client.create_collection("fields1024", dimension=DIM, metric="l2", shards=1)
    server.touched["fields1024"] = {"wide"}
    metadata = {f"f{i}": i for i in range(1024)}
    assert c.upsert(["wide"], [vec(1)], [metadata]) == 1
    assert c.get(["wide"])[0].metadata == metadata
    assert c.count(where={"f1023": 1023}) == 1


def test_ten_thousand_distinct_field_names(server):
    """10 fields per point, 1,000 points: 10^4 names. Some batches may be refused with
    RESOURCE_EXHAUSTED; what is acknowledged is exactly what is counted."""
    c = server.client.create_collection("names", dimension=DIM, metric="l2", shards=1)
    acknowledged, refused = [], []
    for batch in range(10):
        ids = [f"n{batch}-{j}" for j in range(100)]
        metadatas = [{f"field-{batch}-{j}-{f}": f for f in range(10)} for j in range(100)]
        code, reply = status(c.upsert, ids, np.stack([vec(j) for j in range(100)]), metadatas)
        assert code in (OK, EXHAUSTED), f"{code}: {reply}"
        if code == OK:
            assert reply == 100
            acknowledged += ids
        else:
            assert "field" in reply
            refused += ids
    assert c.count() == len(acknowledged)
    assert len(c.get(acknowledged)) == len(acknowledged) and c.get(refused) == []
    server.touched["names"] = set(acknowledged[::97]) | set(refused[::97])


# ---------------------------------------------------------------------------
# Restarts on the same folder: the same collections, counts and points
# ---------------------------------------------------------------------------

def everything(server):
    """{name: (info, count, {id: (vector bytes, metadata)})} over the touched ids of every collection."""
    out = {}
    for c in server.client.list_collections():
        count, points = snapshot(c, sorted(server.touched.get(c.name, ())))
        out[c.name] = (c.info, count, points)
    return out


def assert_same(after, before):
    assert sorted(after) == sorted(before), "the collections differ"
    for name, (info, count, points) in before.items():
        assert after[name][0] == info, f"{name}: configuration"
        assert after[name][1] == count, f"{name}: count {after[name][1]}, was {count}"
        assert sorted(after[name][2]) == sorted(points), f"{name}: the touched ids present differ"
        for id_, point in points.items():
            assert after[name][2][id_] == point, f"{name}: point {id_!r} differs"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_restart_keeps_every_collection_and_point(server, sig):
    before = everything(server)
    took = server.restart(sig)
    assert took < 30
    assert server.alive()
    assert_same(everything(server), before)
    c = col(server, "base")
    if "u-caf\u00e9" in server.touched["base"]:  # the NFC/NFD case ran: the NFD point alone is there
        assert [p.id for p in c.get(["u-caf\u00e9", "u-cafe\u0301"])] == ["u-cafe\u0301"]
    for i in (0, 50, 199):
        assert c.search(vec(i), k=1, exact=True)[0].id == f"p{i}"
