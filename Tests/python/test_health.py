"""A stock grpcio client, generated from Protos/ only, calls a Swift node."""
import grpc
import pytest

from shoal.v1 import shard_pb2_grpc, types_pb2


def test_health_reply_is_typed(node):
    with grpc.insecure_channel(node.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = shard_pb2_grpc.ShardStub(channel)
        reply = stub.Health(types_pb2.HealthRequest(), timeout=5)
    assert isinstance(reply, types_pb2.HealthResponse)
    assert reply.status == types_pb2.SERVING
    assert reply.node_name == "test-node"
    assert len(reply.node_id) == 36  # a UUID, kept in the node's data folder
    assert reply.version


def test_node_id_survives_restart(node):
    from conftest import Node
    with grpc.insecure_channel(node.address) as channel:
        first = shard_pb2_grpc.ShardStub(channel).Health(types_pb2.HealthRequest(), timeout=5).node_id
    node.stop()
    again = Node(node.dir)
    try:
        with grpc.insecure_channel(again.address) as channel:
            second = shard_pb2_grpc.ShardStub(channel).Health(types_pb2.HealthRequest(), timeout=5).node_id
    finally:
        again.stop()
    assert first == second


def test_unknown_method_is_unimplemented(node):
    with grpc.insecure_channel(node.address) as channel:
        call = channel.unary_unary("/shoal.v1.Shard/NoSuchMethod")
        with pytest.raises(grpc.RpcError) as err:
            call(b"", timeout=5)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_malformed_request_is_invalid_argument(node):
    with grpc.insecure_channel(node.address) as channel:
        call = channel.unary_unary("/shoal.v1.Shard/Health")
        with pytest.raises(grpc.RpcError) as err:
            call(b"\xff\xff\xff", timeout=5)  # not a valid protobuf encoding
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "HealthRequest" in err.value.details()
