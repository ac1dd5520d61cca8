"""A thin client for the internal Shard service, for the node's tests."""
import grpc
import numpy as np

from shoal.v1 import shard_pb2, shard_pb2_grpc, types_pb2


def value(v):
    """A Python value as a shoal.v1.Value (bool before int: bool is an int in Python)."""
    if isinstance(v, bool):
        return types_pb2.Value(bool_value=v)
    if isinstance(v, int):
        return types_pb2.Value(int_value=v)
    if isinstance(v, float):
        return types_pb2.Value(double_value=v)
    if isinstance(v, str):
        return types_pb2.Value(string_value=v)
    if isinstance(v, list):
        return types_pb2.Value(string_list=types_pb2.StringList(values=v))
    raise TypeError(v)


def from_value(v):
    kind = v.WhichOneof("kind")
    if kind == "string_list":
        return list(v.string_list.values)
    return getattr(v, kind)


class ShardClient:
    def __init__(self, address, collection="c", shard=0):
        self.channel = grpc.insecure_channel(address)
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.stub = shard_pb2_grpc.ShardStub(self.channel)
        self.ref = shard_pb2.ReplicaRef(collection=collection, shard_id=shard)

    def close(self):
        self.channel.close()

    def create(self, dimension, metric=types_pb2.L2, **hnsw):
        config = types_pb2.CollectionConfig(name=self.ref.collection, dimension=dimension, metric=metric,
                                            hnsw=types_pb2.HnswParams(**hnsw))
        return self.stub.CreateReplica(shard_pb2.CreateReplicaRequest(config=config, shard_id=self.ref.shard_id), timeout=10)

    def upsert(self, points, version, timeout=30):
        """points: [(id, vector, metadata)] all at `version` (or a list of versions)."""
        versions = version if isinstance(version, list) else [version] * len(points)
        ops = [shard_pb2.WriteOp(version=ver, upsert=types_pb2.Point(
                   id=pid, vector=list(map(float, vec)), metadata={k: value(v) for k, v in (meta or {}).items()}))
               for (pid, vec, meta), ver in zip(points, versions)]
        return self.stub.WriteBatch(shard_pb2.WriteBatchRequest(replica=self.ref, ops=ops), timeout=timeout)

    def delete(self, ids, version):
        ops = [shard_pb2.WriteOp(version=version, delete_id=i) for i in ids]
        return self.stub.WriteBatch(shard_pb2.WriteBatchRequest(replica=self.ref, ops=ops), timeout=30)

    def get(self, ids, tombstones=False):
        return self.stub.Get(shard_pb2.ReplicaGetRequest(replica=self.ref, ids=ids, include_vector=True,
                                                         include_metadata=True, include_tombstones=tombstones), timeout=30)

    def search(self, vector, k=10, flt=None, exact=False, ef=0, metadata=False):
        req = shard_pb2.ReplicaSearchRequest(replica=self.ref, vector=list(map(float, vector)), k=k, ef=ef,
                                             exact=exact, include_metadata=metadata)
        if flt is not None:
            req.filter.CopyFrom(flt)
        return self.stub.Search(req, timeout=30)

    def count(self, flt=None):
        req = shard_pb2.ReplicaCountRequest(replica=self.ref)
        if flt is not None:
            req.filter.CopyFrom(flt)
        return self.stub.Count(req, timeout=30).count

    def stats(self):
        return self.stub.Stats(shard_pb2.StatsRequest(replica=self.ref), timeout=10).replicas[0]


def brute_force(base, query, metric, k):
    """Exact top-k indices and distances with the node's conventions."""
    if metric == "l2":
        d = ((base - query) ** 2).sum(1)
    elif metric == "cosine":
        b = base / np.linalg.norm(base, axis=1, keepdims=True)
        q = query / np.linalg.norm(query)
        d = 1 - b @ q
    else:
        d = -(base @ query)
    order = np.argsort(d, kind="stable")[:k]
    return order, d[order]
