"""Cluster/launch.sh and stop.sh: etcd members first (1 or 3, each healthy),
the RUN_DIR layout (etcd-endpoints, coordinators, the coordinator symlink),
idempotent relaunch, and stop.sh ending every process by its pid file; with a
`shoal coordinator` that takes --etcd, several coordinators and a client that
keeps working while the first is SIGKILLed."""
import json
import os
import signal
import subprocess
import tempfile
import urllib.request

import numpy as np
import pytest

import shoal
from cluster_helpers import ROOT, Cluster, admin
from conftest import shoal_bin, wait_for


def etcd_healthy(endpoint):
    try:
        with urllib.request.urlopen(endpoint + "/health", timeout=2) as reply:
            return json.load(reply).get("health") == "true"
    except OSError:
        return False


def pids(run_dir):
    """{name: pid} of every pid file under run_dir (the coordinator symlink not counted twice)."""
    found = {}
    for name in sorted(os.listdir(run_dir)):
        path = os.path.join(run_dir, name, "pid")
        if not os.path.islink(os.path.join(run_dir, name)) and os.path.exists(path):
            with open(path) as f:
                found[name] = int(f.read())
    return found


def running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:  # a zombie is gone for our purposes
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def coordinator_takes_etcd():
    out = subprocess.run([shoal_bin(), "coordinator", "--help"], capture_output=True, text=True, timeout=60)
    return "--etcd" in out.stdout + out.stderr


@pytest.mark.parametrize("members", [1, 3])
def test_etcd_members_then_nodes_then_coordinator_and_stop_ends_all(members):
    with tempfile.TemporaryDirectory(prefix="shoal-launch-") as run_dir:
        cluster = Cluster(run_dir, nodes=1, etcd_members=members)
        try:
            cluster.launch()
            p = cluster.base_port
            endpoints = [f"http://127.0.0.1:{p + 80 + j}" for j in range(1, members + 1)]
            with open(os.path.join(run_dir, "etcd-endpoints")) as f:
                assert f.read().strip() == ",".join(endpoints)
            assert all(etcd_healthy(e) for e in endpoints)
            for j in range(1, members + 1):
                assert os.path.isdir(os.path.join(run_dir, f"etcd{j}", "data", "member"))
                assert os.path.getsize(os.path.join(run_dir, f"etcd{j}", "log")) > 0
            assert cluster.coordinator_addresses == [cluster.address]
            assert os.readlink(os.path.join(run_dir, "coordinator")) == "coordinator1"
            with open(os.path.join(run_dir, "coordinator", "address")) as f:
                assert f.read().strip() == cluster.address
            with shoal.Client(cluster.address, timeout=30) as client:
                assert client.list_collections() == []
                client.create_collection("c", dimension=4, metric="l2", shards=1)

            before = pids(run_dir)
            assert sorted(before) == ["coordinator1", *[f"etcd{j}" for j in range(1, members + 1)], "node1"]
            out = cluster.launch()  # again: everything is running, nothing new starts
            assert pids(run_dir) == before and out.count("already running") == members + 2

            victims = [f"etcd{members}", "coordinator"]  # a member (of a quorum, with 3) and the coordinator
            for name in victims:
                cluster.kill(name)
            cluster.launch()  # starts again what died, on its data
            after = pids(run_dir)
            assert [n for n in before if after[n] != before[n]] == sorted([f"etcd{members}", "coordinator1"])
            assert all(etcd_healthy(e) for e in endpoints)
            with shoal.Client(cluster.address, timeout=30) as client:
                assert [c.name for c in client.list_collections()] == ["c"]  # the cluster state survived
            before = after
        finally:
            cluster.stop()
        assert pids(run_dir) == {}
        assert not any(running(pid) for pid in before.values())


def test_options_are_checked():
    launch = os.path.join(ROOT, "Cluster", "launch.sh")
    for args in (["--coordinators", "0"], ["--etcd-members", "x"], ["--nodes", "40"], ["--bogus"]):
        out = subprocess.run([launch, *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and out.stderr.startswith("launch.sh: "), (args, out.stderr)
    out = subprocess.run([launch, "--help"], capture_output=True, text=True, timeout=60)
    assert "--coordinators C" in out.stdout and "etcd-endpoints" in out.stdout and out.returncode == 0


WRAPPER = """#!/usr/bin/env bash
# shoal, but its coordinator lists --etcd in --help and drops --etcd and --name
# (each coordinator then keeps its own state): launch.sh's layout, not shared metadata.
if [ "${1:-}" = coordinator ]; then
  shift
  if [ "${1:-}" = --help ]; then "$REAL" coordinator --help; echo "  --etcd <etcd>"; exit 0; fi
  args=()
  while [ $# -gt 0 ]; do
    case "$1" in --etcd|--name) echo "wrapper: $1 $2" >&2; shift 2 ;; *) args+=("$1"); shift ;; esac
  done
  exec "$REAL" coordinator "${args[@]}"
fi
exec "$REAL" "$@"
"""


def test_several_coordinators_layout_with_a_stand_in_for_etcd_flags():
    """The script's side of --coordinators (ports, folders, flags, the coordinators
    file, a relaunch with fewer, stop.sh), with a shoal that ignores --etcd/--name."""
    with tempfile.TemporaryDirectory(prefix="shoal-launch-") as run_dir:
        wrapper = os.path.join(run_dir, "shoal-wrapper")
        with open(wrapper, "w") as f:
            f.write(WRAPPER)
        os.chmod(wrapper, 0o755)
        cluster = Cluster(os.path.join(run_dir, "run"), nodes=1, coordinators=3, etcd_members=3,
                          env={"SHOAL_BIN": wrapper, "REAL": shoal_bin()})
        try:
            cluster.launch()
            p = cluster.base_port
            expected = [f"127.0.0.1:{p}", f"127.0.0.1:{p + 42}", f"127.0.0.1:{p + 43}"]
            assert cluster.coordinator_addresses == expected
            endpoints = ",".join(f"http://127.0.0.1:{p + 80 + j}" for j in (1, 2, 3))
            for c in (1, 2, 3):
                log = cluster.log(f"coordinator{c}")
                assert f"wrapper: --etcd {endpoints}" in log and f"wrapper: --name coordinator{c}" in log, log
            out = admin(",".join(expected), "nodes")
            assert out.returncode == 0 and "node1" in out.stdout, out.stderr
            cluster.coordinators = 1
            cluster.launch()  # fewer: the running ones stay, and stay listed
            assert cluster.coordinator_addresses == expected
            before = pids(cluster.run_dir)
            assert len(before) == 3 + 1 + 3
        finally:
            cluster.stop()
        assert pids(cluster.run_dir) == {}
        assert not any(running(pid) for pid in before.values())


@pytest.mark.skipif("not coordinator_takes_etcd()", reason="this shoal coordinator has no --etcd yet")
def test_two_coordinators_share_the_cluster_and_survive_a_sigkill():
    with tempfile.TemporaryDirectory(prefix="shoal-launch-") as run_dir:
        cluster = Cluster(run_dir, nodes=2, coordinators=2)
        try:
            cluster.launch()
            second = f"127.0.0.1:{cluster.base_port + 42}"
            assert cluster.coordinator_addresses == [cluster.address, second]
            rng = np.random.default_rng(5)
            vectors = rng.standard_normal((50, 4)).astype(np.float32)
            ids = [f"v{i}" for i in range(50)]
            with shoal.Client(cluster.coordinator_addresses, timeout=30) as client:
                client.create_collection("c", dimension=4, metric="l2", shards=2).upsert(ids, vectors)
                with shoal.Client(second, timeout=30) as other:  # the second coordinator sees it
                    assert wait_for(lambda: other.get_collection("c").count() == 50, 30, "coordinator2 to see c")
                cluster.kill("coordinator1")
                col = client.get_collection("c")
                for i in range(20):
                    assert col.search(vectors[i], k=1)[0].id == ids[i]
            out = admin(",".join(cluster.coordinator_addresses), "nodes")
            assert out.returncode == 0, out.stderr
        finally:
            cluster.stop()
        assert pids(run_dir) == {}
