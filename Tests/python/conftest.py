"""Shared fixtures: start real `shoal` processes on 127.0.0.1 and stop them."""
import contextlib
import os
import subprocess
import tempfile
import time

import pytest


def shoal_bin():
    path = os.environ.get("SHOAL_BIN")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("SHOAL_BIN must name the built shoal executable (scripts/test.sh sets it)")
    return path


def wait_for(condition, timeout, what):
    """Polls `condition` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


class Node:
    """A `shoal node` process on 127.0.0.1 with a port it picked (port 0)."""

    def __init__(self, directory, extra_args=()):
        self.dir = directory
        self.port_file = os.path.join(directory, "port")
        self.log_path = os.path.join(directory, "log")
        self.log = open(self.log_path, "ab")
        if os.path.exists(self.port_file):
            os.remove(self.port_file)  # a restart must not read the previous run's port
        self.proc = subprocess.Popen(
            [shoal_bin(), "node", "--listen", "127.0.0.1:0", "--data", os.path.join(directory, "data"),
             "--name", "test-node", "--port-file", self.port_file, *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        port = wait_for(self._read_port, 30, "the node's port file")
        self.address = f"127.0.0.1:{port}"

    def _read_port(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"node exited with {self.proc.returncode}: {open(self.log_path).read()[-2000:]}")
        try:
            with open(self.port_file) as f:
                return int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def kill(self):
        """SIGKILL: no clean shutdown, no final graph image."""
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()


@contextlib.contextmanager
def running_node(prefix="shoal-node-"):
    """A Node in a new temporary folder; stopped, and the folder removed, on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        n = Node(d)
        try:
            yield n
        finally:
            n.stop()


@pytest.fixture
def node():
    with running_node() as n:
        yield n
