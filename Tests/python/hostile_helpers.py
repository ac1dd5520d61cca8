"""Helpers for test_hostile.py: a `shoal serve` process that can be SIGTERM- and
SIGKILL-restarted on its data folder, gRPC status capture, raw calls with
hand-built protobuf bytes, and snapshots of what a collection holds."""
import os
import signal
import struct
import subprocess

import grpc
import numpy as np

import shoal
from conftest import shoal_bin, wait_for
from shoal.v1 import admin_pb2_grpc, types_pb2, vector_store_pb2, vector_store_pb2_grpc

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
NOT_FOUND = grpc.StatusCode.NOT_FOUND


class Serve:
    """`shoal serve` on 127.0.0.1 (port 0, read from --port-file) with its data in
    `directory`; `restart(sig)` stops it with `sig` and starts it on the same folder."""

    def __init__(self, directory, extra_args=()):
        self.dir = directory
        self.extra_args = list(extra_args)
        self.port_file = os.path.join(directory, "port")
        self.log_path = os.path.join(directory, "log")
        self.proc = None
        self.start()

    def start(self):
        if os.path.exists(self.port_file):
            os.remove(self.port_file)  # a restart must not read the previous run's port
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [shoal_bin(), "serve", "--listen", "127.0.0.1:0", "--data", os.path.join(self.dir, "shoal-data"),
             "--port-file", self.port_file, *self.extra_args], stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        port = wait_for(self._read_port, 60, "shoal serve to listen")
        self.address = f"127.0.0.1:{port}"
        opts = [("grpc.max_send_message_length", 128 << 20), ("grpc.max_receive_message_length", 128 << 20)]
        self.channel = grpc.insecure_channel(self.address, options=opts)
        self.stub = vector_store_pb2_grpc.VectorStoreStub(self.channel)
        self.client = shoal.Client(self.address, timeout=30)

    def _read_port(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"shoal serve exited with {self.proc.returncode}: {self.log_tail()}")
        try:
            with open(self.port_file) as f:
                return int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def log_tail(self, chars=3000):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-chars:]

    def alive(self):
        """Running, and Admin.Health answers SERVING."""
        if self.proc.poll() is not None:
            return False
        try:
            reply = admin_pb2_grpc.AdminStub(self.channel).Health(types_pb2.HealthRequest(), timeout=10)
        except grpc.RpcError:
            return False
        return reply.status == types_pb2.SERVING

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends `sig` and waits for the exit; returns the seconds it took."""
        import time
        self.client.close()
        self.channel.close()
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self.log.close()
        return time.monotonic() - started

    def restart(self, sig):
        took = self.stop(sig)
        self.start()
        return took


def status(fn, *args, **kwargs):
    """(code, reply or message) of a call: OK and the reply, or the error's code and message."""
    try:
        return OK, fn(*args, **kwargs)
    except shoal.ShoalError as error:
        return error.code, error.message
    except grpc.RpcError as error:
        return error.code(), error.details()


def raw(server, method, payload, timeout=30):
    """Calls /shoal.v1.VectorStore/<method> with `payload` bytes as they are; (code, reply bytes or message)."""
    call = server.channel.unary_unary(f"/shoal.v1.VectorStore/{method}")
    return status(call, payload, timeout=timeout)


# Hand-built protobuf encoding, for bytes the generated classes refuse to produce.

def varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(number, data):
    """A length-delimited field (string, bytes, message, packed)."""
    return varint(number << 3 | 2) + varint(len(data)) + data


def packed_floats(values):
    return struct.pack(f"<{len(values)}f", *values)


def raw_point(id_bytes, vector):
    return field_bytes(1, id_bytes) + field_bytes(2, packed_floats(vector))


def raw_upsert(collection, points):
    return field_bytes(1, collection.encode()) + b"".join(field_bytes(2, p) for p in points)


# What a collection holds, to compare before and after.

def snapshot(col, ids):
    """(count, {id: (vector bytes, metadata)}) of the given ids that exist."""
    points = col.get(list(ids)) if ids else []
    return col.count(), {p.id: (np.asarray(p.vector, dtype=np.float32).tobytes(), p.metadata) for p in points}


def upsert_request(collection, points):
    """An UpsertRequest of (id, vector, metadata proto dict) triples, unvalidated by the client."""
    return vector_store_pb2.UpsertRequest(
        collection=collection,
        points=[types_pb2.Point(id=i, vector=list(map(float, v)), metadata=m or {}) for i, v, m in points])
