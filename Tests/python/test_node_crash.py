"""SIGKILL a node while a client streams synced write batches; after each restart
every acknowledged write is there with its latest version, found by search, and
no batch is half-applied. Cycles: SHOAL_CRASH_CYCLES (default 20)."""
import os
import random
import threading
import time

import grpc
import numpy as np

from conftest import Node
from shard_helpers import ShardClient, from_value

DIM = 8
BATCH = 10   # new ids per batch: b-0 … b-9
HOT = 5      # ids every batch overwrites: hot-0 … hot-4


def vector_for(batch, j):
    return np.random.default_rng(batch * 1000 + j).standard_normal(DIM).astype(np.float32)


def writer(address, first_batch, acked, stop):
    """Streams batches until the node dies or `stop` is set; records acknowledged batch numbers."""
    client = ShardClient(address)
    b = first_batch
    try:
        while not stop.is_set():
            points = [(f"{b}-{j}", vector_for(b, j), {"batch": b}) for j in range(BATCH)]
            points += [(f"hot-{j}", vector_for(b, 100 + j), {"batch": b}) for j in range(HOT)]
            client.upsert(points, version=b + 1, timeout=10)
            acked.append(b)
            b += 1
    except grpc.RpcError:
        pass  # the node was killed mid-call: that batch is unacknowledged
    finally:
        client.close()


def check(address, acked_all, last_written):
    client = ShardClient(address)
    try:
        # No batch half-applied: each batch's ids are all there or none.
        present_batches = []
        for b in range(last_written + 1):
            got = client.get([f"{b}-{j}" for j in range(BATCH)])
            assert len(got.points) in (0, BATCH), f"batch {b} half-applied: {len(got.points)} of {BATCH}"
            if got.points:
                present_batches.append(b)
                for p in got.points:
                    assert p.version == b + 1
        for b in acked_all:
            assert b in present_batches, f"acknowledged batch {b} lost"
        # The hot ids all carry one batch (the last applied), never older than the last acknowledged one.
        hot = client.get([f"hot-{j}" for j in range(HOT)])
        if acked_all:
            assert len(hot.points) == HOT
            batches = {from_value(p.point.metadata["batch"]) for p in hot.points}
            assert len(batches) == 1, f"hot ids from different batches: {batches}"
            (hb,) = batches
            assert hb >= max(acked_all) and all(p.version == hb + 1 for p in hot.points)
        # Acknowledged points are found by search (their own vector is the nearest).
        for b in random.Random(len(acked_all)).sample(acked_all, min(5, len(acked_all))):
            j = b % BATCH
            hits = client.search(vector_for(b, j), k=1).hits
            assert hits and hits[0].id == f"{b}-{j}" and hits[0].distance < 1e-4
        return len(present_batches)
    finally:
        client.close()


def test_sigkill_during_synced_writes_loses_nothing_acknowledged(tmp_path):
    cycles = int(os.environ.get("SHOAL_CRASH_CYCLES", "20"))
    rng = random.Random(2024)
    directory = str(tmp_path)
    acked_all = []
    next_batch = 0
    node = Node(directory, extra_args=["--image-every-points", "300"])
    ShardClient(node.address).create(dimension=DIM)
    try:
        for cycle in range(cycles):
            acked, stop = [], threading.Event()
            t = threading.Thread(target=writer, args=(node.address, next_batch, acked, stop))
            t.start()
            time.sleep(rng.uniform(0.05, 0.6))
            node.kill()
            stop.set()
            t.join(timeout=30)
            acked_all += acked
            last_written = next_batch + len(acked) + 1  # one more may be written but unacknowledged
            node = Node(directory, extra_args=["--image-every-points", "300"])
            present = check(node.address, acked_all, last_written)
            next_batch = last_written + 1
            assert present >= len(acked_all)
        assert len(acked_all) > cycles, "the writer hardly wrote anything; the test proves little"
    finally:
        node.stop()
