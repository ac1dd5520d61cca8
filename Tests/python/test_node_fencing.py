"""Leader-term and placement fences of a real `shoal node`, over the wire and across a restart."""
import grpc
import pytest

from conftest import Node
from shard_helpers import ShardClient
from shoal.v1 import shard_pb2, types_pb2


def status(call):
    """The gRPC status code `call` fails with (None if it succeeds)."""
    try:
        call()
    except grpc.RpcError as e:
        return e.code(), e.details()
    return None


def write(c, pid, epoch=0, copy=False, term=0):
    op = shard_pb2.WriteOp(version=1, upsert=types_pb2.Point(id=pid, vector=[1.0, 2.0, 3.0, 4.0]))
    return c.stub.WriteBatch(shard_pb2.WriteBatchRequest(replica=c.ref, ops=[op], copy=copy, term=term,
                                                         placement_epoch=epoch), timeout=30)


def fence(c, min_epoch=0, retire=False, term=0):
    return c.stub.FenceReplica(shard_pb2.FenceReplicaRequest(replica=c.ref, min_epoch=min_epoch, retire=retire,
                                                             term=term), timeout=10)


def test_fences_refuse_over_the_wire_and_survive_a_restart(tmp_path):
    node = Node(str(tmp_path))
    try:
        c = ShardClient(node.address)
        config = types_pb2.CollectionConfig(name="c", dimension=4, metric=types_pb2.L2)
        c.stub.CreateReplica(shard_pb2.CreateReplicaRequest(config=config, shard_id=0, term=7), timeout=10)
        write(c, "a", epoch=3)
        assert fence(c, min_epoch=12, term=7) == shard_pb2.FenceReplicaResponse(min_epoch=12)
        code, details = status(lambda: write(c, "stale", epoch=9))
        assert code == grpc.StatusCode.ABORTED and "fenced at placement epoch 12" in details
        assert status(lambda: c.stub.Count(shard_pb2.ReplicaCountRequest(replica=c.ref, placement_epoch=9)))[0] \
            == grpc.StatusCode.ABORTED
        code, details = status(lambda: fence(c, min_epoch=20, term=5))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "leader term 5 is older than term 7" in details
        assert status(lambda: write(c, "old-copy", copy=True, term=6))[0] == grpc.StatusCode.FAILED_PRECONDITION
        unknown = shard_pb2.FenceReplicaRequest(replica=shard_pb2.ReplicaRef(collection="c", shard_id=9), min_epoch=1)
        assert status(lambda: c.stub.FenceReplica(unknown, timeout=10))[0] == grpc.StatusCode.NOT_FOUND
        c.close()
    finally:
        node.stop()

    node = Node(str(tmp_path))
    try:
        c = ShardClient(node.address)
        stats = c.stub.Stats(shard_pb2.StatsRequest(), timeout=10)
        assert stats.highest_term == 7
        assert (stats.replicas[0].min_epoch, stats.replicas[0].retired) == (12, False)
        assert status(lambda: write(c, "stale", epoch=9))[0] == grpc.StatusCode.ABORTED
        assert write(c, "current", epoch=12).applied == 1
        assert c.count() == 2
        c.close()
    finally:
        node.stop()
