"""Python client for Shoal, a distributed, sharded vector store.

The generated gRPC stubs live in the ``shoal.v1`` subpackage (created by
``scripts/gen-python-stubs.sh``; not committed), e.g.::

    import grpc
    from shoal.v1 import shard_pb2_grpc, types_pb2

    stub = shard_pb2_grpc.ShardStub(grpc.insecure_channel("127.0.0.1:7000"))
    health = stub.Health(types_pb2.HealthRequest())
"""
