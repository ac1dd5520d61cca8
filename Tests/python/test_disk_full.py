"""A node whose disk fills up: writes fail with UNAVAILABLE, Health says NOT_SERVING
and why, reads go on; once space is freed it serves again by itself, and after a
SIGKILL every acknowledged write is there at its latest version.

The node's data folder is a small tmpfs filled on purpose (needs root and `mount`)."""
import errno
import os
import subprocess
import tempfile
import threading
import time

import grpc
import numpy as np
import pytest

from conftest import Node, wait_for
from shard_helpers import ShardClient
from shoal.v1 import shard_pb2_grpc, types_pb2

DIM = 32
TMPFS_MB = 96


def mount_tmpfs(path, size_mb):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", path],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount is not permitted here: {done.stderr.strip()}")


def fill(path):
    """Writes zeros into `path` until the file system is full."""
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
        for size in (1 << 16, 1 << 12, 1):  # the last pages too
            while True:
                try:
                    f.write(chunk[:size])
                except OSError:
                    break


def health(address):
    with grpc.insecure_channel(address) as channel:
        return shard_pb2_grpc.ShardStub(channel).Health(types_pb2.HealthRequest(), timeout=5)


class Writer:
    """Upserts batches as fast as it can; remembers each acknowledged id's latest
    version and the status code of every failed write."""

    def __init__(self, address):
        self.client = ShardClient(address)
        self.acked = {}
        self.failures = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.version = 1
        self.thread = threading.Thread(target=self.run, daemon=True)

    def write_once(self, n):
        points = [(f"w{n}-{j}", np.full(DIM, n + j, np.float32), {"n": n}) for j in range(20)]
        points += [(f"hot{j}", np.full(DIM, -n, np.float32), {"n": n}) for j in range(3)]
        version = self.version
        self.version += 1
        self.client.upsert(points, version=version, timeout=10)
        with self.lock:
            for pid, _, _ in points:
                self.acked[pid] = version

    def run(self):
        n = 0
        while not self.stop.is_set():
            try:
                start = time.monotonic()
                self.write_once(n)
            except grpc.RpcError as e:
                with self.lock:
                    self.failures.append((e.code(), e.details(), time.monotonic() - start))
                time.sleep(0.01)
            n += 1


def test_disk_full_refuses_writes_keeps_reads_and_recovers():
    with tempfile.TemporaryDirectory(prefix="shoal-diskfull-") as d:
        data = os.path.join(d, "data")
        os.makedirs(data)
        mount_tmpfs(data, TMPFS_MB)
        node = None
        writer = None
        try:
            node = Node(d)
            client = ShardClient(node.address)
            client.create(DIM)
            writer = Writer(node.address)
            writer.write_once(-1)
            writer.thread.start()
            wait_for(lambda: len(writer.acked) > 2000, 60, "writes before the disk fills")

            filler = os.path.join(data, "filler")
            fill(filler)
            wait_for(lambda: writer.failures, 60, "a write to fail on the full disk")
            reply = wait_for(lambda: (lambda r: r if r.status == types_pb2.NOT_SERVING else None)(health(node.address)),
                             10, "Health to say NOT_SERVING")
            assert "storage is read-only" in reply.reason and "No space left on device" in reply.reason, reply.reason
            time.sleep(0.5)  # a few more refused writes
            with writer.lock:
                failures = list(writer.failures)
            print("failed writes:", {(code, details[:80]) for code, details, _ in failures})
            assert {code for code, _, _ in failures} == {grpc.StatusCode.UNAVAILABLE}, failures
            assert all(took < 2 for _, _, took in failures[1:]), "a refused write hung"

            # Other writes too: a new replica is refused with UNAVAILABLE, never INTERNAL.
            other = ShardClient(node.address, collection="other")
            with pytest.raises(grpc.RpcError) as refused:
                other.create(DIM)
            other.close()
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value

            # Reads go on: count, get, search, stats.
            with writer.lock:
                acked = dict(writer.acked)
            assert client.count() >= len(acked)
            got = client.get(["hot0", "w0-0"])
            assert {p.point.id for p in got.points} == {"hot0", "w0-0"}
            assert len(client.search(np.ones(DIM), k=5).hits) == 5
            assert client.stats().points >= len(acked) - 3

            # Space freed: SERVING again by itself, and writes succeed.
            os.remove(filler)
            wait_for(lambda: health(node.address).status == types_pb2.SERVING, 60, "Health to say SERVING again")
            assert health(node.address).reason == ""
            before = len(writer.failures)
            acked_before = len(writer.acked)
            wait_for(lambda: len(writer.acked) > acked_before + 200, 30, "writes to succeed again")
            writer.stop.set()
            writer.thread.join(timeout=15)
            assert len(writer.failures) == before or all(c == grpc.StatusCode.UNAVAILABLE for c, _, _ in writer.failures)

            print("".join(l for l in open(node.log_path) if "storage" in l))
            # SIGKILL, restart on the same folder: every acknowledged write at its latest version.
            client.close()
            node.kill()
            node = Node(d)
            client = ShardClient(node.address)
            ids = sorted(writer.acked)
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                got = {p.point.id: p.version for p in client.get(part).points}
                for pid in part:
                    assert got.get(pid) == writer.acked[pid], f"{pid}: acknowledged at {writer.acked[pid]}, found {got.get(pid)}"
            client.close()
        finally:
            if writer is not None:
                writer.stop.set()
                writer.thread.join(timeout=15)
                writer.client.close()
            if node is not None:
                node.stop()
            subprocess.run(["umount", "-l", data], check=False)


def test_serve_on_a_full_disk_says_not_serving_in_both_healths():
    """`shoal serve`: the coordinator's Health tells its node's truth too; the public
    API refuses writes with UNAVAILABLE, answers reads, and recovers."""
    import shoal
    from shoal.v1 import admin_pb2_grpc
    from test_serve import start, stop

    def healths(address):
        with grpc.insecure_channel(address) as channel:
            request = types_pb2.HealthRequest()
            return (admin_pb2_grpc.AdminStub(channel).Health(request, timeout=5),
                    shard_pb2_grpc.ShardStub(channel).Health(request, timeout=5))

    with tempfile.TemporaryDirectory(prefix="shoal-diskfull-serve-") as d:
        data = os.path.join(d, "shoal-data")
        os.makedirs(data)
        mount_tmpfs(data, TMPFS_MB)
        proc = None
        try:
            proc, log, address = start(d)
            vectors = np.random.default_rng(5).standard_normal((200, DIM)).astype(np.float32)
            with shoal.Client(address, timeout=10) as client:
                col = client.create_collection("full", dimension=DIM, metric="l2", shards=1)
                col.upsert(ids=[f"a{i}" for i in range(200)], vectors=vectors)
                filler = os.path.join(data, "filler")
                fill(filler)

                written = []  # ids of acknowledged writes

                def refused():
                    pid = f"x{len(written)}"
                    try:
                        col.upsert(ids=[pid], vectors=vectors[:1])
                        written.append(pid)
                        return None
                    except shoal.ShoalError as e:
                        return e
                error = wait_for(refused, 30, "a write to be refused")
                assert error.code == grpc.StatusCode.UNAVAILABLE, error
                coordinator, node = wait_for(
                    lambda: (lambda h: h if h[0].status == types_pb2.NOT_SERVING else None)(healths(address)),
                    10, "the coordinator's Health to say NOT_SERVING")
                assert node.status == types_pb2.NOT_SERVING
                for reply in (coordinator, node):
                    assert reply.reason.startswith("storage is read-only: IO error: No space left on device"), reply.reason
                assert col.count() == 200 + len(written)
                assert col.search(vectors[3], k=1)[0].id == "a3"
                assert len(col.get(["a1", "a2"])) == 2

                os.remove(filler)
                wait_for(lambda: all(h.status == types_pb2.SERVING for h in healths(address)), 60, "SERVING again")
                wait_for(lambda: refused() is None, 30, "writes to succeed again")
                assert col.count() == 200 + len(written)
                assert len(col.get(written)) == len(written)
            stop(proc, log)
            proc = None
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()
            subprocess.run(["umount", "-l", data], check=False)
