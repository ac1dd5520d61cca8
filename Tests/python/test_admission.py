"""Admission before allocation, and replicas set aside at start (a real `shoal serve`).

A collection a node cannot reserve address space for is refused before anything is
persisted; a data folder that already holds such a replica (its catalog entry written
by the test helper, as an older Shoal could leave it) starts, sets that replica aside,
reports it, and serves everything else: it never crash-loops."""
import json
import os
import signal
import subprocess
import tempfile

import grpc
import numpy as np
import pytest

import shoal
from hostile_helpers import Serve
from shoal.v1 import shard_pb2, shard_pb2_grpc


def helpers_bin():
    path = os.path.join(os.path.dirname(os.environ["SHOAL_BIN"]), "shoal-test-helpers")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: build the shoal-test-helpers product next to shoal")
    return path


def node_stats(serve):
    return shard_pb2_grpc.ShardStub(serve.channel).Stats(shard_pb2.StatsRequest(), timeout=10)


def admin_shards(serve, *args):
    return subprocess.run([os.environ["SHOAL_BIN"], "admin", "--coordinator", serve.address, "shards", *args],
                          capture_output=True, text=True, timeout=60)


def test_a_collection_no_node_can_reserve_is_refused_before_anything_is_persisted():
    with tempfile.TemporaryDirectory(prefix="shoal-admission-") as d:
        serve = Serve(d)
        try:
            small = serve.client.create_collection("small", dimension=4, metric="l2", shards=2)
            small.upsert(["a", "b"], [[1, 2, 3, 4], [4, 3, 2, 1]])
            with pytest.raises(shoal.ShoalError) as refused:
                serve.client.create_collection("huge", dimension=65536, shards=1024)
            assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "address space" in refused.value.message and "--max-address-space-bytes" in refused.value.message
            assert [c.name for c in serve.client.list_collections()] == ["small"]
            assert serve.alive()
            stats = node_stats(serve)
            assert sorted((r.replica.collection, r.replica.shard_id) for r in stats.replicas) == [("small", 0), ("small", 1)]
            assert list(stats.set_aside) == []
            assert stats.address_space_reserved <= stats.address_space_budget
            # The folder restarts, after SIGKILL too, with the same collections and points.
            serve.restart(signal.SIGKILL)
            assert [c.name for c in serve.client.list_collections()] == ["small"]
            assert serve.client.get_collection("small").count() == 2
            assert serve.client.create_collection("later", dimension=8).count() == 0
        finally:
            serve.stop()


def test_a_folder_holding_a_replica_it_cannot_load_starts_and_sets_it_aside():
    with tempfile.TemporaryDirectory(prefix="shoal-setaside-") as d:
        serve = Serve(d)
        try:
            small = serve.client.create_collection("small", dimension=4, metric="l2", shards=2)
            small.upsert(["a", "b", "c"], [[1, 2, 3, 4], [4, 3, 2, 1], [0, 0, 0, 1]])
        finally:
            serve.stop()
        # What an older Shoal left: a catalog entry for a replica of 65,536 dimensions.
        written = subprocess.run([helpers_bin(), "catalog-writer", "--data", os.path.join(d, "shoal-data", "node"),
                                  "--collection", "huge", "--shard", "0", "--dimension", "65536"],
                                 capture_output=True, text=True, timeout=60)
        assert written.returncode == 0, written.stderr
        # A budget of 100 GB: that replica's graph needs 1.4 TB of address space.
        for sig in (signal.SIGTERM, signal.SIGKILL):  # and it starts every time, not only once
            serve = Serve(d, extra_args=["--max-address-space-bytes", str(100 * 10**9)])
            try:
                assert serve.alive()
                col = serve.client.get_collection("small")
                assert col.count() == 3
                assert [h.id for h in col.search([0, 0, 0, 1], k=1)] == ["c"]
                stats = node_stats(serve)
                assert [(r.replica.collection, r.replica.shard_id) for r in stats.set_aside] == [("huge", 0)]
                aside = stats.set_aside[0]
                assert aside.incarnation == 1000 and "address space" in aside.reason
                assert "huge" not in [r.replica.collection for r in stats.replicas]
                shards = admin_shards(serve)
                assert shards.returncode == 0, shards.stderr
                assert any(line.split()[:2] == ["huge", "0"] and line.split()[-1] == "set_aside" for line in shards.stdout.splitlines())
                assert "needs" in shards.stdout and "address space" in shards.stdout
                assert "replica set aside" in serve.log_tail(200_000)
                # The node still refuses what it cannot hold and serves the rest.
                serve.client.get_collection("small").upsert(["d"], [[1, 1, 1, 1]])
                serve.client.get_collection("small").delete(["d"])
            finally:
                serve.stop(sig)
        # The set-aside replica is data the metadata does not place: creating a collection of
        # that name is refused rather than drop it; the operator deletes it as an orphan.
        serve = Serve(d, extra_args=["--max-address-space-bytes", str(100 * 10**9)])
        try:
            with pytest.raises(shoal.ShoalError) as refused:
                serve.client.create_collection("huge", dimension=4, shards=1)
            assert refused.value.code.name == "FAILED_PRECONDITION" and "set aside" in str(refused.value)
            assert [r.incarnation for r in node_stats(serve).set_aside] == [1000]
            listed = subprocess.run([os.environ["SHOAL_BIN"], "admin", "--coordinator", serve.address, "orphans", "--json"],
                                    capture_output=True, text=True, timeout=60)
            assert listed.returncode == 0, listed.stderr
            orphans = json.loads(listed.stdout)["orphans"]
            assert [(o["collection"], o["shard"], o["incarnation"]) for o in orphans] == [("huge", 0, 1000)]
            assert orphans[0]["reason"].startswith("set aside: ")
            deleted = subprocess.run([os.environ["SHOAL_BIN"], "admin", "--coordinator", serve.address, "orphans",
                                      "--delete", orphans[0]["id"]], capture_output=True, text=True, timeout=60)
            assert deleted.returncode == 0, deleted.stderr
            huge = serve.client.create_collection("huge", dimension=4, shards=1)
            huge.upsert(["x"], [[1, 0, 0, 0]])
            stats = node_stats(serve)
            assert list(stats.set_aside) == []
            assert serve.client.get_collection("huge").count() == 1
            assert serve.client.get_collection("small").count() == 3
        finally:
            serve.stop()
