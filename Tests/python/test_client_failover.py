"""The Python client given several coordinators (shoal.failover): unit tests
against in-process fake coordinators that share one cluster's metadata, and
integration tests against two real `shoal serve` processes, one of them dead
from the start or SIGKILLed while the client is in use.

    SHOAL_BIN=$PWD/.build/release/shoal PYTHONPATH=Clients/python \\
        .venv/bin/python -m pytest -q Tests/python/test_client_failover.py
"""
import contextlib
import json
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pytest

import shoal
from conftest import shoal_bin, wait_for
from hostile_helpers import Serve
from shoal.failover import parse_addresses
from shoal.v1 import types_pb2, vector_store_pb2, vector_store_pb2_grpc

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


# ---------------------------------------------------------------------------
# Fake coordinators: one shared catalog, each server failing on demand
# ---------------------------------------------------------------------------

class FakeCoordinator(vector_store_pb2_grpc.VectorStoreServicer):
    """Serves the collection calls from `catalog` (shared by every fake of a
    "cluster"). Methods in `fail_before` answer UNAVAILABLE without doing
    anything; those in `fail_after` do the work, then answer UNAVAILABLE (a
    coordinator that dies mid-call)."""

    def __init__(self, catalog):
        self.catalog = catalog
        self.fail_before, self.fail_after = set(), set()
        self.calls = []

    def _enter(self, method, context):
        self.calls.append(method)
        if method in self.fail_before:
            context.abort(UNAVAILABLE, "fake: down")

    def _leave(self, method, context, reply):
        if method in self.fail_after:
            context.abort(UNAVAILABLE, "fake: died mid-call")
        return reply

    def CreateCollection(self, request, context):
        self._enter("CreateCollection", context)
        if request.config.name in self.catalog:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"collection {request.config.name} already exists")
        config = types_pb2.CollectionConfig()
        config.CopyFrom(request.config)
        config.shard_count = config.shard_count or 2
        config.replication_factor = config.replication_factor or 1
        self.catalog[config.name] = config
        return self._leave("CreateCollection", context, vector_store_pb2.CreateCollectionResponse(config=config))

    def DeleteCollection(self, request, context):
        self._enter("DeleteCollection", context)
        if self.catalog.pop(request.name, None) is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no collection {request.name}")
        return self._leave("DeleteCollection", context, vector_store_pb2.DeleteCollectionResponse())

    def DescribeCollection(self, request, context):
        self._enter("DescribeCollection", context)
        if request.name not in self.catalog:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no collection {request.name}")
        return vector_store_pb2.DescribeCollectionResponse(config=self.catalog[request.name])

    def ListCollections(self, request, context):
        self._enter("ListCollections", context)
        configs = [self.catalog[name] for name in sorted(self.catalog)]
        return self._leave("ListCollections", context, vector_store_pb2.ListCollectionsResponse(collections=configs))

    def Count(self, request, context):
        self._enter("Count", context)
        if request.collection not in self.catalog:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no collection {request.collection}")
        return vector_store_pb2.CountResponse(count=7)


def serve_fake(fake, port=0):
    """A started gRPC server of `fake` on 127.0.0.1:`port` (0: any): (server, port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    vector_store_pb2_grpc.add_VectorStoreServicer_to_server(fake, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    assert bound and (bound == port or not port)
    server.start()
    return server, bound


@contextlib.contextmanager
def fake_cluster(size, servers=None):
    """`size` FakeCoordinators on their own ports over one catalog: (fakes, addresses).
    `servers`: a list that receives their gRPC servers (replace one to restart it)."""
    catalog, fakes, addresses = {}, [], []
    servers = [] if servers is None else servers
    try:
        for _ in range(size):
            fakes.append(FakeCoordinator(catalog))
            server, port = serve_fake(fakes[-1])
            servers.append(server)
            addresses.append(f"127.0.0.1:{port}")
        yield fakes, addresses
    finally:
        for server in servers:
            server.stop(None)


def dead_address():
    """A 127.0.0.1 port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_addresses_parse():
    assert parse_addresses("h1:1") == ["h1:1"]
    assert parse_addresses("h1:1, h2:2") == ["h1:1", "h2:2"]
    assert parse_addresses(["h1:1", "h2:2"]) == ["h1:1", "h2:2"]
    for bad in ("", "h1:1,,h2:2", [], ["h1:1", ""], [None]):
        with pytest.raises(ValueError):
            parse_addresses(bad)
    with shoal.Client(["127.0.0.1:1", "127.0.0.1:2"]) as client:
        assert (client.address, client.addresses) == ("127.0.0.1:1,127.0.0.1:2", ["127.0.0.1:1", "127.0.0.1:2"])


def test_dead_first_address_fails_over_and_sticks():
    with fake_cluster(1) as (fakes, (live,)):
        fakes[0].catalog["c"] = types_pb2.CollectionConfig(name="c", dimension=3)
        with shoal.Client(f"{dead_address()},{live}", timeout=10) as client:
            assert [c.name for c in client.list_collections()] == ["c"]
            assert client._coordinators.current == live
            assert client.get_collection("c").count() == 7
            assert fakes[0].calls == ["ListCollections", "DescribeCollection", "Count"]


def test_unavailable_answer_goes_to_the_next_then_sticks():
    with fake_cluster(3) as (fakes, addresses):
        fakes[0].catalog["c"] = types_pb2.CollectionConfig(name="c", dimension=3)
        fakes[0].fail_before.add("ListCollections")
        fakes[1].fail_after.add("ListCollections")
        with shoal.Client(addresses, timeout=10) as client:
            assert [c.name for c in client.list_collections()] == ["c"]
            assert [f.calls for f in fakes] == [["ListCollections"]] * 3
            client.list_collections()
            assert [len(f.calls) for f in fakes] == [1, 1, 2]  # sticky: straight to the one that answered


def test_other_errors_are_not_retried():
    with fake_cluster(2) as (fakes, addresses):
        with shoal.Client(addresses, timeout=10) as client:
            with pytest.raises(shoal.NotFoundError) as info:
                client.get_collection("nope")
            assert not info.value.failed_over
            assert [len(f.calls) for f in fakes] == [1, 0]


def test_all_unavailable_cycles_within_the_timeout_and_names_every_address():
    with fake_cluster(2) as (fakes, addresses):
        for fake in fakes:
            fake.fail_before.add("ListCollections")
        dead = dead_address()
        with shoal.Client(addresses + [dead], timeout=0.6) as client:
            started = time.monotonic()
            with pytest.raises(shoal.UnavailableError) as info:
                client.list_collections()
            took = time.monotonic() - started
        assert took < 0.6 + 0.3, took  # the deadline is the call's, not one per attempt
        assert all(len(f.calls) >= 2 for f in fakes), [f.calls for f in fakes]  # more than one round
        assert all(a in info.value.message for a in addresses + [dead]), info.value.message


def test_no_time_left_is_unavailable_without_a_call():
    with fake_cluster(2) as (fakes, addresses):
        with shoal.Client(addresses, timeout=0) as client:
            with pytest.raises(shoal.UnavailableError) as info:
                client.list_collections()
        assert "the timeout passed" in info.value.message and [f.calls for f in fakes] == [[], []]


def test_no_timeout_gives_up_after_a_few_rounds():
    with fake_cluster(2) as (fakes, addresses):
        for fake in fakes:
            fake.fail_before.add("ListCollections")
        with shoal.Client(addresses, timeout=None) as client:
            with pytest.raises(shoal.UnavailableError):
                client.list_collections()
        assert [len(f.calls) for f in fakes] == [shoal.failover.ROUNDS_WITHOUT_DEADLINE] * 2


def test_after_every_coordinator_was_down_the_first_back_answers_at_once():
    """While all are down the client keeps calling, so gRPC backs off reconnecting
    (by default up to 2 minutes); RECONNECT_OPTIONS keep that under a second."""
    servers = []
    with fake_cluster(2, servers) as (fakes, addresses):
        with shoal.Client(addresses, timeout=2) as client:
            assert client.list_collections() == []
            for server in servers:
                server.stop(None)
            down_since = time.monotonic()
            while time.monotonic() - down_since < 6:
                with pytest.raises(shoal.UnavailableError):
                    client.list_collections()
            servers[1], _ = serve_fake(fakes[1], int(addresses[1].rsplit(":", 1)[1]))  # the second comes back
            assert client.list_collections() == []  # within its 2 s


def test_single_address_is_never_retried():
    with fake_cluster(1) as (fakes, (address,)):
        fakes[0].fail_before.add("ListCollections")
        with shoal.Client(address, timeout=10) as client:
            with pytest.raises(shoal.UnavailableError) as info:
                client.list_collections()
        assert info.value.message == "fake: down" and fakes[0].calls == ["ListCollections"]


def test_create_after_failover_accepts_only_the_collection_asked_for():
    with fake_cluster(2) as (fakes, addresses):
        fakes[0].fail_after.add("CreateCollection")  # makes it, then dies
        with shoal.Client(addresses, timeout=10) as client:
            col = client.create_collection("c", dimension=8, metric="l2")
            assert (col.name, col.dimension, col.metric, col.info.shards) == ("c", 8, "l2", 2)
            assert fakes[1].calls == ["CreateCollection", "DescribeCollection"]

            fakes[0].catalog["other"] = types_pb2.CollectionConfig(name="other", dimension=4, metric=types_pb2.L2)
            fakes[0].fail_before.add("CreateCollection")
            for asked in ({"dimension": 8}, {"dimension": 4, "shards": 5}, {"dimension": 4, "metric": "ip"}):
                client._coordinators._current = 0  # the one that is down first
                with pytest.raises(shoal.AlreadyExistsError) as info:  # exists, but not as asked
                    client.create_collection("other", **{"metric": "l2", **asked})
                assert info.value.failed_over
            client._coordinators._current = 0
            assert client.create_collection("other", dimension=4, metric="l2").dimension == 4

            client._coordinators._current = 1
            with pytest.raises(shoal.AlreadyExistsError) as info:  # no failover: exists is an error
                client.create_collection("c", dimension=8, metric="l2")
            assert not info.value.failed_over


def test_delete_after_failover_takes_not_found_as_done():
    with fake_cluster(2) as (fakes, addresses):
        fakes[0].catalog["c"] = types_pb2.CollectionConfig(name="c", dimension=3)
        fakes[0].fail_after.add("DeleteCollection")  # deleted it, then died
        with shoal.Client(addresses, timeout=10) as client:
            client.delete_collection("c")
            assert "c" not in fakes[0].catalog and fakes[1].calls == ["DeleteCollection"]
            with pytest.raises(shoal.NotFoundError):  # answered by the first it tried: an error
                client.delete_collection("c")


# ---------------------------------------------------------------------------
# Two real `shoal serve` processes holding the same collection
# ---------------------------------------------------------------------------

DIM = 8


def dataset(n=200, seed=3):
    rng = np.random.default_rng(seed)
    return [f"p{i:04d}" for i in range(n)], rng.standard_normal((n, DIM)).astype(np.float32)


@contextlib.contextmanager
def serves(count):
    """`count` `shoal serve` processes, each with its own data and the same
    collection "c" holding the same points; each stopped by its pid on exit."""
    ids, vectors = dataset()
    with contextlib.ExitStack() as stack:
        started = []
        for _ in range(count):
            serve = Serve(stack.enter_context(tempfile.TemporaryDirectory(prefix="shoal-failover-")))
            stack.callback(serve.stop, signal.SIGTERM)
            started.append(serve)
            col = serve.client.create_collection("c", dimension=DIM, metric="l2", shards=2)
            assert col.upsert(ids, vectors, [{"n": i} for i in range(len(ids))]) == len(ids)
        yield started


def one_round(col, ids, vectors, i):
    """Every idempotent kind of call once; asserts each answer."""
    n = i % len(ids)
    hits = col.search(vectors[n], k=3)
    assert hits[0].id == ids[n], hits
    assert [len(h) for h in col.search_batch(vectors[n:n + 2], k=2)] == [2, 2]
    assert col.upsert([f"extra-{i}"], [vectors[n] + 100]) == 1  # far from every query
    assert col.count(where={"n": {"$lt": 10}}) == 10
    assert [p.id for p in col.get([ids[n]])] == [ids[n]]
    assert col.delete([f"gone-{i}"]) == 0


def test_dead_address_then_live_serve():
    with serves(1) as (live,):
        ids, vectors = dataset()
        with shoal.Client([dead_address(), live.address], timeout=10) as client:
            col = client.get_collection("c")
            for i in range(5):
                one_round(col, ids, vectors, i)
            assert [c.name for c in client.list_collections()] == ["c"]
            assert client._coordinators.current == live.address


def test_sigkill_of_the_coordinator_in_use_fails_no_call():
    """Four threads share one client; the coordinator they use is SIGKILLed after
    20 rounds (so calls are in flight on it) and every thread goes on for 15 rounds
    more: not one call may fail."""
    with serves(2) as pair:
        ids, vectors = dataset()
        by_address = {s.address: s for s in pair}
        with shoal.Client(",".join(by_address), timeout=10) as client:
            col = client.get_collection("c")
            first = client._coordinators.current
            victim = by_address[first]
            done, errors, acked_after_kill, lock = [0], [], [], threading.Lock()

            def work(worker):
                try:
                    after_kill, i = 0, worker * 1000
                    while after_kill < 15:
                        killed = victim.proc.poll() is not None  # then only the survivor can answer
                        one_round(col, ids, vectors, i)
                        with lock:
                            done[0] += 1
                            if killed:
                                acked_after_kill.append(f"extra-{i}")
                        i += 1
                        after_kill += killed
                except Exception as error:  # noqa: BLE001 — reported below, with the thread's round
                    errors.append(f"worker {worker}, round {i}: {error!r}")

            workers = [threading.Thread(target=work, args=(w,)) for w in range(4)]
            for w in workers:
                w.start()
            try:
                wait_for(lambda: done[0] >= 20 or errors, 60, "20 rounds of calls")
                victim.stop(signal.SIGKILL)
            finally:
                for w in workers:
                    w.join(timeout=120)
            assert not errors, errors
            assert not any(w.is_alive() for w in workers)
            assert victim.proc.returncode == -signal.SIGKILL
            assert client._coordinators.current != first
            survivor = next(s for s in pair if s is not victim)
            assert len(acked_after_kill) >= 4 * 15
            stored = survivor.client.get_collection("c").get(acked_after_kill)  # every acknowledged write
            assert sorted(p.id for p in stored) == sorted(acked_after_kill)


# ---------------------------------------------------------------------------
# The CLI: --coordinator with several addresses (FailoverTransport)
# ---------------------------------------------------------------------------

def shoal_cli(*args):
    return subprocess.run([shoal_bin(), *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_cli_skips_a_dead_coordinator_and_names_every_one_when_all_fail():
    with serves(1) as (live,):
        dead = dead_address()
        listed = shoal_cli("collections", "--coordinator", f"{dead},{live.address}", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [c["name"] for c in json.loads(listed.stdout)] == ["c"]
        nodes = shoal_cli("admin", "--coordinator", f"{dead},{live.address}", "--json", "nodes")
        assert nodes.returncode == 0, nodes.stderr
        shards = shoal_cli("admin", "shards", "--coordinator", f"{dead}, {live.address}", "--collection", "c")
        assert shards.returncode == 0, shards.stderr
    other = dead_address()
    for command in (["collections"], ["admin", "nodes"]):
        out = shoal_cli(*command, "--coordinator", f"{dead},{other}", "--timeout", "2")
        assert out.returncode == 1 and out.stdout == "", out
        assert "UNAVAILABLE" in out.stderr and f"{dead}:" in out.stderr and f"{other}:" in out.stderr, out.stderr
    for bad in ("127.0.0.1:1,nonsense", "127.0.0.1:1,,127.0.0.1:2", ""):
        out = shoal_cli("collections", "--coordinator", bad)
        assert out.returncode == 64 and "expected HOST:PORT" in out.stderr, out
