"""Python client for Shoal, a distributed, sharded vector store.

    import shoal
    client = shoal.Client("127.0.0.1:7100")
    col = client.create_collection("faces", dimension=512, metric="cosine", shards=6)
    col.upsert(ids=["a", "b"], vectors=vectors, metadatas=[{"label": 3}, {"label": 4}])
    hits = col.search(vectors[0], k=10, where={"label": {"$gte": 3}})

Several coordinators of one cluster: ``shoal.Client("h1:p1,h2:p2")`` (or a
list); a call that gets UNAVAILABLE goes to the next (``shoal.failover``).

Server errors are raised as ``shoal.ShoalError`` (``.code``, ``.message``);
bad arguments caught before a call as ``ValueError``. ``where`` filters are
described in ``shoal.filters``.

The generated gRPC stubs live in the ``shoal.v1`` subpackage (created by
``scripts/gen-python-stubs.sh``; not committed), e.g.::

    import grpc
    from shoal.v1 import shard_pb2_grpc, types_pb2

    stub = shard_pb2_grpc.ShardStub(grpc.insecure_channel("127.0.0.1:7000"))
    health = stub.Health(types_pb2.HealthRequest())
"""
from .client import AnomalyScores, Classification, Client, Collection, CollectionInfo, Evaluation, Hit, Point
from .errors import (AlreadyExistsError, DeadlineExceededError, FailedPreconditionError, InvalidArgumentError,
                     NotFoundError, ResourceExhaustedError, ShoalError, UnavailableError)
from .filters import where_to_filter

__all__ = [
    "Client", "Collection", "CollectionInfo", "Hit", "Point", "where_to_filter",
    "Classification", "Evaluation", "AnomalyScores",
    "ShoalError", "InvalidArgumentError", "NotFoundError", "AlreadyExistsError", "ResourceExhaustedError",
    "FailedPreconditionError", "UnavailableError", "DeadlineExceededError",
]
