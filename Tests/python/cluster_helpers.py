"""Start and stop a real cluster with Cluster/launch.sh, on ports the test picks."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

from conftest import shoal_bin

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


DATA = os.path.join(ROOT, ".build-test-data")
SHARED_BENCH = os.path.abspath(os.path.join(ROOT, "..", "shared", "bench"))


def bench_dataset(name):
    """The folder of dataset `name` made by ../shared/bench/datasets.py (made once, cached)."""
    folder = os.path.join(DATA, name)
    if not os.path.exists(os.path.join(folder, "meta.json")):
        script = os.path.join(SHARED_BENCH, "datasets.py")
        if not os.path.exists(script):
            raise FileNotFoundError(f"{script} is missing: the repository expects ../shared beside it")
        subprocess.run([sys.executable, script, "--data", DATA, "--only", name], check=True, timeout=900)
    return folder


def fnv1a64(text):
    h = 0xcbf29ce484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def shard_of(point_id, shards):
    """The coordinator's routing: FNV-1a 64 of the id's UTF-8 bytes mod the shard count."""
    return fnv1a64(point_id) % shards


def admin(address, *args, timeout=90):
    """`shoal admin --coordinator ADDRESS ARGS...`, its output captured."""
    return subprocess.run([shoal_bin(), "admin", "--coordinator", address, *args],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def admin_json(address, *args, timeout=90):
    out = admin(address, *args, "--json", timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def launch_port_offsets(coordinators=1, etcd_members=1):
    """The ports launch.sh takes above P besides the nodes': coordinator I ≥ 2 at
    P+40+I, etcd member J at P+80+J (client) and P+90+J (peer)."""
    return ([40 + i for i in range(2, coordinators + 1)] +
            [o + j for j in range(1, etcd_members + 1) for o in (80, 90)])


def free_base_port(count, offsets=()):
    """A base port P with P..P+count and P+o for each of `offsets` free on 127.0.0.1 (checked by binding)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 40000)
        socks = []
        try:
            for p in [*range(base, base + count + 1), *(base + o for o in offsets)]:
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


class Cluster:
    """`spare`: ports kept free for nodes started later (`launch(nodes=...)`);
    `env`: extra environment for launch.sh (SHOAL_COORDINATOR_ARGS, ...);
    `coordinators`, `etcd_members`: launch.sh's --coordinators and --etcd-members."""

    def __init__(self, run_dir, nodes=3, spare=0, env=None, coordinators=1, etcd_members=1):
        self.run_dir = run_dir
        self.nodes = nodes
        self.env = env or {}
        self.coordinators = coordinators
        self.etcd_members = etcd_members
        self.base_port = free_base_port(nodes + spare, launch_port_offsets(coordinators, etcd_members))
        self.address = f"127.0.0.1:{self.base_port}"  # coordinator1

    def launch(self, nodes=None, env=None):
        """Starts what is not running (or `nodes` nodes, growing the cluster); waits until healthy.
        `env`: extra environment for this launch only (SHOAL_NODE_ARGS for the new nodes, ...)."""
        self.nodes = nodes or self.nodes
        env = dict(os.environ, SHOAL_LAUNCH_TIMEOUT="120", **{**self.env, **(env or {})})
        out = subprocess.run([os.path.join(ROOT, "Cluster", "launch.sh"), "--nodes", str(self.nodes),
                              "--coordinators", str(self.coordinators), "--etcd-members", str(self.etcd_members),
                              "--base-port", str(self.base_port), "--dir", self.run_dir],
                             env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"launch.sh failed:\n{out.stdout}\n{out.stderr}"
        return out.stdout

    def node_address(self, name):
        """node1… listen on base port + i."""
        return f"127.0.0.1:{self.base_port + int(name.removeprefix('node'))}"

    @property
    def coordinator_addresses(self):
        """Every running coordinator's address (RUN_DIR/coordinators), coordinator1 first."""
        with open(os.path.join(self.run_dir, "coordinators")) as f:
            return f.read().split()

    @property
    def node_addresses(self):
        return [self.node_address(f"node{i}") for i in range(1, self.nodes + 1)]

    def stop(self):
        subprocess.run([os.path.join(ROOT, "Cluster", "stop.sh"), "--dir", self.run_dir],
                       capture_output=True, text=True, timeout=120)

    def pid(self, name):
        with open(os.path.join(self.run_dir, name, "pid")) as f:
            return int(f.read())

    def kill(self, name):
        """SIGKILL one process (node1…, coordinator, coordinator2…, etcd1…) and wait until it is gone."""
        pid = self.pid(name)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
        raise TimeoutError(f"{name} did not die")

    def log(self, name, tail=3000):
        with open(os.path.join(self.run_dir, name, "log"), errors="replace") as f:
            return f.read()[-tail:]

    def node_id(self, name):
        with open(os.path.join(self.run_dir, name, "data", "node-id")) as f:
            return f.read().strip()
