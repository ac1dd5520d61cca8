"""Start and stop a real cluster with Cluster/launch.sh, on ports the test picks."""
import os
import random
import signal
import socket
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_base_port(count):
    """A base port P with P..P+count free on 127.0.0.1 (checked by binding)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 40000)
        socks = []
        try:
            for p in range(base, base + count + 1):
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
    def __init__(self, run_dir, nodes=3):
        self.run_dir = run_dir
        self.nodes = nodes
        self.base_port = free_base_port(nodes)
        self.address = f"127.0.0.1:{self.base_port}"

    def launch(self):
        env = dict(os.environ, SHOAL_LAUNCH_TIMEOUT="120")
        out = subprocess.run([os.path.join(ROOT, "Cluster", "launch.sh"), "--nodes", str(self.nodes),
                              "--base-port", str(self.base_port), "--dir", self.run_dir],
                             env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"launch.sh failed:\n{out.stdout}\n{out.stderr}"
        return out.stdout

    def stop(self):
        subprocess.run([os.path.join(ROOT, "Cluster", "stop.sh"), "--dir", self.run_dir],
                       capture_output=True, text=True, timeout=120)

    def pid(self, name):
        with open(os.path.join(self.run_dir, name, "pid")) as f:
            return int(f.read())

    def kill(self, name):
        """SIGKILL one process (node1…, coordinator) and wait until it is gone."""
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

    def node_id(self, name):
        with open(os.path.join(self.run_dir, name, "data", "node-id")) as f:
            return f.read().strip()
