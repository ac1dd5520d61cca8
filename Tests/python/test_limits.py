"""Limits against a real `shoal serve`: each breach is a clear status naming its flag,
changes nothing, and leaves the process serving; the flags change the limits."""
import contextlib
import os
import subprocess
import time

import numpy as np
import pytest

import shoal
from conftest import shoal_bin, wait_for


@contextlib.contextmanager
def serve(directory, *extra_args):
    """A `shoal serve` on a port it picked, with `extra_args`; SIGTERM at the end."""
    port_file = os.path.join(directory, "port")
    log_path = os.path.join(directory, "log")
    log = open(log_path, "ab")
    proc = subprocess.Popen([shoal_bin(), "serve", "--listen", "127.0.0.1:0", "--data", os.path.join(directory, "data"),
                             "--port-file", port_file, *extra_args], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)

    def port():
        assert proc.poll() is None, open(log_path).read()[-2000:]
        try:
            return int(open(port_file).read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0
    try:
        address = f"127.0.0.1:{wait_for(port, 60, 'shoal serve to listen')}"
        with shoal.Client(address) as client:
            yield proc, client
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def alive(proc, col, expected_count):
    assert proc.poll() is None
    assert col.count() == expected_count


def test_hostile_sizes_are_refused_and_change_nothing(tmp_path):
    rng = np.random.default_rng(10)
    with serve(str(tmp_path)) as (proc, client):
        col = client.create_collection("lim", dimension=16, metric="l2", shards=2)
        col.upsert(ids=[f"p{i}" for i in range(20)], vectors=rng.standard_normal((20, 16)), metadatas=[{"n": i} for i in range(20)])

        # 10^6-element $in: INVALID_ARGUMENT naming the limit (searched and counted).
        where = {"n": {"$in": list(range(1_000_000))}}
        with pytest.raises(shoal.InvalidArgumentError, match=r"has 1000000 values; the limit is 100000 \(--max-in-values\)"):
            col.search(rng.standard_normal(16), k=5, where=where)
        with pytest.raises(shoal.InvalidArgumentError, match="--max-in-values"):
            col.count(where=where)
        assert len(col.search(rng.standard_normal(16), k=5, where={"n": {"$in": list(range(100_000))}})) == 5
        alive(proc, col, 20)

        # 100 KiB of metadata in one point (two 50 KiB strings, each within the string limit).
        big = {"a": "x" * 51_200, "b": "y" * 51_200}
        with pytest.raises(shoal.InvalidArgumentError, match=r"the limit is 65536 bytes per point \(--max-metadata-bytes\)"):
            col.upsert(ids=["big"], vectors=rng.standard_normal((1, 16)), metadatas=[big])
        assert col.get(["big"]) == []
        alive(proc, col, 20)

        # 1,000 searches × k=10,000: refused before any node is asked, not after 15 s.
        started = time.monotonic()
        with pytest.raises(shoal.ResourceExhaustedError, match=r"10000000 hits in all .*the limit is 100000 \(--max-search-work\)"):
            col.search_batch(rng.standard_normal((1000, 16)), k=10_000)
        assert time.monotonic() - started < 5
        alive(proc, col, 20)

        # One search whose vectors alone could not fit a reply: k=10,000 × 2,048-d.
        wide = client.create_collection("wide", dimension=2048, metric="l2", shards=1)
        started = time.monotonic()
        with pytest.raises(shoal.ResourceExhaustedError, match=r"the reply could take \d+ bytes, over the 67108864-byte message limit"):
            wide.search(rng.standard_normal(2048), k=10_000, include_vector=True)
        assert time.monotonic() - started < 5
        assert wide.search(rng.standard_normal(2048), k=10_000, include_vector=False) == []
        alive(proc, col, 20)


def test_distinct_field_names_are_bounded_per_collection(tmp_path):
    rng = np.random.default_rng(11)
    with serve(str(tmp_path)) as (proc, client):
        col = client.create_collection("fields", dimension=4, metric="l2", shards=1)
        acknowledged, refused = 0, 0
        # 10^4 distinct names: 100 calls of 10 points with 10 new names each.
        for call in range(100):
            ids = [f"c{call}p{j}" for j in range(10)]
            metadatas = [{f"f{call}_{j}_{n}": n for n in range(10)} for j in range(10)]
            try:
                acknowledged += col.upsert(ids=ids, vectors=rng.standard_normal((10, 4)), metadatas=metadatas)
            except shoal.ResourceExhaustedError as error:
                assert "the limit is 1024 per collection shard (--max-field-names)" in str(error)
                assert col.get(ids[:1]) == []  # a refused call wrote nothing
                refused += 1
        assert acknowledged == 100 and refused == 90  # 10 calls bring 1,000 names; the 11th call's 100 more do not fit
        assert col.count() == acknowledged
        # Names already held are still taken.
        assert col.upsert(ids=["again"], vectors=rng.standard_normal((1, 4)), metadatas=[{"f0_0_0": 1}]) == 1
        alive(proc, col, acknowledged + 1)


def test_flags_lower_limits_and_show_in_help(tmp_path):
    for command in ("serve", "node", "coordinator"):
        out = subprocess.run([shoal_bin(), command, "--help"], capture_output=True, text=True, check=True).stdout
        for flag in ("--max-in-values", "--max-metadata-bytes", "--max-field-names", "--max-search-work",
                     "--max-concurrent-calls", "--max-queued-write-ops", "--max-index-backlog"):
            assert flag in out, (command, flag)
    rng = np.random.default_rng(12)
    with serve(str(tmp_path), "--max-in-values", "10", "--max-metadata-bytes", "100") as (proc, client):
        col = client.create_collection("low", dimension=4, metric="l2", shards=1)
        col.upsert(ids=["a"], vectors=rng.standard_normal((1, 4)), metadatas=[{"s": "x" * 80}])
        with pytest.raises(shoal.InvalidArgumentError, match=r"the limit is 100 bytes per point"):
            col.upsert(ids=["b"], vectors=rng.standard_normal((1, 4)), metadatas=[{"s": "x" * 100}])
        assert col.count(where={"s": {"$in": [str(i) for i in range(10)]}}) == 0
        with pytest.raises(shoal.InvalidArgumentError, match=r"has 11 values; the limit is 10 \(--max-in-values\)"):
            col.count(where={"s": {"$in": [str(i) for i in range(11)]}})
        alive(proc, col, 1)
    # A queue smaller than one write batch could never take it: refused at the start.
    bad = subprocess.run([shoal_bin(), "serve", "--data", str(tmp_path / "never"), "--max-queued-write-ops", "10"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "--max-queued-write-ops (10) must be at least --max-points-per-request" in bad.stderr
