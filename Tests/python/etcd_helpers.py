"""Start and stop a real etcd member on 127.0.0.1 for a test (Debian's etcd-server).

    with Etcd(tmp_path) as etcd:
        etcd.endpoint          # "127.0.0.1:PORT", for `--etcd`
        etcd.stop(); etcd.start()     # same ports, same data
        etcd.pause(); etcd.resume()   # SIGSTOP / SIGCONT
        etcd.wipe()                   # stop and delete the data

Ports are picked by binding port 0; readiness is etcd's HTTP /health, polled with a
timeout. Leaving the `with` block (or `close()`) always kills the process.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")


def free_port():
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    def __init__(self, directory, start=True, timeout=20):
        self.dir = os.path.join(str(directory), f"etcd-{os.getpid()}-{free_port()}")
        os.makedirs(self.dir, exist_ok=True)
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "etcd.log")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.name = f"test-{self.client_port}"
        self.endpoint = f"127.0.0.1:{self.client_port}"
        self.timeout = timeout
        self.proc = None
        if start:
            self.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self._kill()

    def start(self):
        """Starts etcd on the same ports and data folder; returns once /health says true."""
        if self.running:
            return
        peer, client = f"http://127.0.0.1:{self.peer_port}", f"http://{self.endpoint}"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [ETCD_BIN, "--name", self.name, "--data-dir", self.data_dir,
                 "--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"{self.name}={peer}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.timeout
        while not self.healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited at start ({self.proc.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                self._kill()
                raise TimeoutError(f"etcd on {self.endpoint} not healthy after {self.timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def healthy(self):
        try:
            with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=2) as reply:
                return json.loads(reply.read()).get("health") == "true"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace=5):
        """SIGTERM, then SIGKILL if etcd has not exited within `grace` seconds."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a paused etcd cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def pause(self):
        if self.running:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        if self.running:
            os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self):
        self.stop()
        self.start()

    def wipe(self):
        """Stops etcd and deletes its data: the next start() begins an empty cluster."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def close(self):
        """Kills etcd (if running) and removes its folder."""
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self, tail=4000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return ""

    def _kill(self):
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self.proc = None
