"""The Shoal client: collections of points and k-nearest-neighbour search.

Example::

    import shoal
    client = shoal.Client("127.0.0.1:7100")
    col = client.create_collection("faces", dimension=512, metric="cosine", shards=6)
    col.upsert(ids=["a", "b"], vectors=vectors, metadatas=[{"label": 3}, {"label": 4}])
    hits = col.search(vectors[0], k=10, where={"label": 3})
    hits[0].id, hits[0].score, hits[0].distance, hits[0].metadata
"""
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from shoal.v1 import types_pb2, vector_store_pb2

from .errors import AlreadyExistsError, NotFoundError
from .failover import RECONNECT_OPTIONS, Coordinators, parse_addresses
from .filters import where_to_filter
from .values import as_matrix, as_vector, from_value, metadata_from_proto, metadata_to_proto

__all__ = ["Client", "Collection", "CollectionInfo", "Hit", "Point",
           "MAX_BATCH_POINTS", "MAX_BATCH_BYTES", "MAX_IDS_PER_CALL", "MAX_SEARCHES_PER_CALL"]

#: An upsert is split into calls of at most this many points ...
MAX_BATCH_POINTS = 1000
#: ... and at most this many bytes of encoded points (the server's message limit is larger).
MAX_BATCH_BYTES = 4 * 1024 * 1024
#: Get and Delete send at most this many ids per call.
MAX_IDS_PER_CALL = 1000
#: SearchBatch sends at most this many searches per call (the protocol's limit).
MAX_SEARCHES_PER_CALL = 1000

_METRICS = {"cosine": types_pb2.COSINE, "cos": types_pb2.COSINE, "l2": types_pb2.L2, "euclidean": types_pb2.L2,
            "ip": types_pb2.IP, "dot": types_pb2.IP, "inner_product": types_pb2.IP}
_METRIC_NAMES = {types_pb2.COSINE: "cosine", types_pb2.L2: "l2", types_pb2.IP: "ip"}
_CONSISTENCIES = {"all": types_pb2.ALL, "majority": types_pb2.MAJORITY, "one": types_pb2.ONE}
_CONSISTENCY_NAMES = {value: name for name, value in _CONSISTENCIES.items()}


@dataclass(frozen=True)
class CollectionInfo:
    """A collection's configuration, with the server's defaults resolved."""
    name: str
    dimension: int
    metric: str
    shards: int
    replication_factor: int
    m: int
    ef_construction: int
    ef: int
    write_consistency: str = "all"

    @classmethod
    def from_proto(cls, config):
        return cls(config.name, config.dimension, _METRIC_NAMES.get(config.metric, "unspecified"),
                   config.shard_count, config.replication_factor, config.hnsw.m, config.hnsw.ef_construction,
                   config.hnsw.ef, _CONSISTENCY_NAMES.get(config.write_consistency, "all"))


@dataclass
class Hit:
    """One search result. ``score``: higher is more similar; ``distance``: lower is."""
    id: str
    score: float
    distance: float
    metadata: Dict[str, Any] = field(default_factory=dict)
    vector: Optional[np.ndarray] = None


@dataclass
class Point:
    """A stored point, as returned by ``Collection.get``."""
    id: str
    vector: Optional[np.ndarray] = None
    metadata: Dict[str, Any] = field(default_factory=dict)


class Client:
    """A connection to a Shoal coordinator (or ``shoal serve``), or to several.

    ``address``: ``"host:port"``; several coordinators of one cluster as
    ``"h1:p1,h2:p2"`` or a list of addresses. ``timeout`` (seconds) is the
    deadline of every call. Use as a context manager, or call ``close()``.

    With several addresses the client keeps one channel per coordinator and
    sends each call to the one that answered last; a call that fails with
    UNAVAILABLE goes to the next, cycling with a short backoff, until one
    answers or the call's ``timeout`` (counted once, from the call's start)
    runs out (see ``shoal.failover``). Reads (search, search_batch, get,
    count, list_collections, get_collection, describe), upserts and deletes
    by id are safe to repeat, so they simply are. The collection calls are
    not, and a coordinator that failed mid-call may have done the work:

    - ``create_collection`` is repeated on the next coordinator; if that one
      answers ALREADY_EXISTS, the collection is described and the call
      succeeds only if it has the settings asked for (name, dimension,
      metric, and each setting given as non-zero), else AlreadyExistsError.
    - ``delete_collection`` is repeated; NOT_FOUND after a failover means an
      earlier attempt deleted it, and the call succeeds.

    With one address (or ``channel``) nothing is retried: every error is raised.
    An UNAVAILABLE a coordinator answers itself (a shard with no readable
    replica) looks like an unreachable one and is retried too, so with several
    addresses it is raised only when ``timeout`` has passed.
    ``Collection.delete`` after a failover may count fewer points than it
    removed (an earlier attempt removed them).
    """

    def __init__(self, address="127.0.0.1:7100", timeout=30.0, channel=None, options=None):
        addresses = parse_addresses(address)
        self.address = address if isinstance(address, str) else ",".join(addresses)
        self.addresses = addresses
        self.timeout = timeout
        opts = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        if channel is not None:
            addresses = addresses[:1]
        elif len(addresses) > 1:
            opts += RECONNECT_OPTIONS
        self._coordinators = Coordinators(addresses, opts + list(options or []),
                                          channels=[channel] if channel is not None else None)

    def close(self):
        self._coordinators.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request, timeout=None):
        return self._coordinators.call(method, request, timeout or self.timeout)

    def create_collection(self, name, dimension, metric="cosine", shards=0, replication_factor=0,
                          m=0, ef_construction=0, ef=0, write_consistency="all"):
        """Creates a collection. 0 means the server's default (shards: from the node count;
        replication_factor: 1 on one node, 2 on more). ``write_consistency``: when a write is
        acknowledged: "all" (every in-sync replica committed it or left the in-sync set),
        "majority" (and a majority of the replication factor committed it) or "one"."""
        if metric not in _METRICS:
            raise ValueError(f"metric {metric!r}: expected one of 'cosine', 'l2', 'ip'")
        if write_consistency not in _CONSISTENCIES:
            raise ValueError(f"write_consistency {write_consistency!r}: expected one of 'all', 'majority', 'one'")
        for label, value in (("dimension", dimension), ("shards", shards), ("replication_factor", replication_factor),
                             ("m", m), ("ef_construction", ef_construction), ("ef", ef)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{label} must be a non-negative int, got {value!r}")
        config = types_pb2.CollectionConfig(
            name=name, dimension=dimension, metric=_METRICS[metric], shard_count=shards,
            replication_factor=replication_factor, write_consistency=_CONSISTENCIES[write_consistency],
            hnsw=types_pb2.HnswParams(m=m, ef_construction=ef_construction, ef=ef))
        try:
            reply = self._call("CreateCollection", vector_store_pb2.CreateCollectionRequest(config=config))
        except AlreadyExistsError as error:
            if not error.failed_over:
                raise
            existing = self.get_collection(name)  # an attempt that failed over may have created it
            if not _created_as_asked(existing.info, config):
                raise
            return existing
        return Collection(self, CollectionInfo.from_proto(reply.config))

    def get_collection(self, name):
        """The collection ``name``; NotFoundError if there is none."""
        reply = self._call("DescribeCollection", vector_store_pb2.DescribeCollectionRequest(name=name))
        return Collection(self, CollectionInfo.from_proto(reply.config))

    def get_or_create_collection(self, name, dimension, **kwargs):
        """The collection ``name``, created with these settings if missing."""
        try:
            return self.get_collection(name)
        except NotFoundError:
            return self.create_collection(name, dimension, **kwargs)

    def list_collections(self):
        """Every collection, ordered by name."""
        reply = self._call("ListCollections", vector_store_pb2.ListCollectionsRequest())
        return [Collection(self, CollectionInfo.from_proto(c)) for c in reply.collections]

    def delete_collection(self, name):
        """Deletes a collection and its points; NotFoundError if there is none."""
        try:
            self._call("DeleteCollection", vector_store_pb2.DeleteCollectionRequest(name=name))
        except NotFoundError as error:
            if not error.failed_over:  # else an attempt that failed over deleted it
                raise


def _created_as_asked(info, config):
    """Whether the collection ``info`` has every setting ``config`` asks for (0: the server's default)."""
    asked = [(info.name, config.name), (info.dimension, config.dimension),
             (info.metric, _METRIC_NAMES.get(config.metric)),
             (info.write_consistency, _CONSISTENCY_NAMES.get(config.write_consistency, "all"))]
    asked += [(have, want) for have, want in ((info.shards, config.shard_count),
                                              (info.replication_factor, config.replication_factor),
                                              (info.m, config.hnsw.m), (info.ef_construction, config.hnsw.ef_construction),
                                              (info.ef, config.hnsw.ef)) if want]
    return all(have == want for have, want in asked)


class Collection:
    """A handle on one collection. Obtain it from a ``Client``."""

    def __init__(self, client, info):
        self._client = client
        self.info = info

    name = property(lambda self: self.info.name)
    dimension = property(lambda self: self.info.dimension)
    metric = property(lambda self: self.info.metric)

    def __repr__(self):
        return f"Collection({self.info})"

    def _call(self, method, request, timeout=None):
        return self._client._call(method, request, timeout)

    def describe(self):
        """``{"info", "point_count", "shards": [{"shard_id", "point_count", "replicas": [...]}]}``."""
        reply = self._call("DescribeCollection", vector_store_pb2.DescribeCollectionRequest(name=self.name))
        self.info = CollectionInfo.from_proto(reply.config)
        shards = [{"shard_id": s.shard_id, "point_count": s.point_count,
                   "replicas": [{"node_id": r.node_id, "address": r.address,
                                 "state": types_pb2.ReplicaState.Name(r.state), "point_count": r.point_count}
                                for r in s.replicas]} for s in reply.shards]
        return {"info": self.info, "point_count": reply.point_count, "shards": shards}

    def upsert(self, ids, vectors, metadatas=None):
        """Inserts or replaces points; returns how many were written.

        Everything is validated before the first call (ValueError). Large
        inputs go in several calls (≤ MAX_BATCH_POINTS points and about
        ≤ MAX_BATCH_BYTES each); each call is atomic, the whole is not: if a
        later call fails, the earlier ones stay written (an upsert can simply
        be retried).
        """
        points = self._points(ids, vectors, metadatas)
        written = 0  # no points: no call
        for batch in split_points(points):
            request = vector_store_pb2.UpsertRequest(collection=self.name, points=batch)
            written += self._call("Upsert", request).upserted
        return written

    def _points(self, ids, vectors, metadatas):
        ids = _ids(ids)
        if not ids:
            return []
        matrix = as_matrix(vectors, count=len(ids), dimension=self.dimension or None)
        if metadatas is None:
            metadatas = [None] * len(ids)
        metadatas = list(metadatas)
        if len(metadatas) != len(ids):
            raise ValueError(f"metadatas: {len(metadatas)} entries for {len(ids)} ids")
        seen = set()
        for i in ids:
            if i in seen:
                raise ValueError(f"ids: {i!r} appears twice in one upsert")
            seen.add(i)
        return [types_pb2.Point(id=i, vector=matrix[n].tolist(), metadata=metadata_to_proto(metadatas[n], f"metadatas[{n}]"))
                for n, i in enumerate(ids)]

    def search(self, vector, k=10, where=None, exact=False, ef=None, offset=0,
               include_metadata=True, include_vector=False, allow_partial=False, explain=False):
        """The ``k`` nearest points to ``vector`` under ``where``, best first.

        With ``explain=True`` the hits' ``explain`` lists, shard by shard, how the
        search ran: ``{"shard", "node", "strategy", "distances_computed",
        "unindexed_scanned"}``, strategy one of "graph", "filtered_graph", "exact",
        "exact_over_matches".
        """
        request = self._search_request(vector, k, where, exact, ef, offset, include_metadata, include_vector,
                                       allow_partial, explain)
        return _hits(self._call("Search", request))

    def search_batch(self, vectors, k=10, where=None, exact=False, ef=None, offset=0,
                     include_metadata=True, include_vector=False, allow_partial=False, explain=False):
        """One ``search`` per row of ``vectors`` (same k and filter); a list of hit lists."""
        if len(vectors) == 0:
            return []
        matrix = as_matrix(vectors, dimension=self.dimension or None)
        requests = [self._search_request(row, k, where, exact, ef, offset, include_metadata, include_vector,
                                         allow_partial, explain) for row in matrix]
        results = []
        for start in range(0, len(requests), MAX_SEARCHES_PER_CALL):
            batch = vector_store_pb2.SearchBatchRequest(searches=requests[start:start + MAX_SEARCHES_PER_CALL])
            results += [_hits(r) for r in self._call("SearchBatch", batch).results]
        return results

    def _search_request(self, vector, k, where, exact, ef, offset, include_metadata, include_vector, allow_partial,
                        explain=False):
        _positive_int(k, "k")
        _positive_int(offset, "offset", allow_zero=True)
        if ef is not None:
            _positive_int(ef, "ef")
        # .tolist(): protobuf fills a repeated float from a list ~5x faster than from a
        # numpy array, which it walks element by element (~100 µs at 512 dimensions).
        request = vector_store_pb2.SearchRequest(
            collection=self.name, vector=as_vector(vector, dimension=self.dimension or None).tolist(), k=k, exact=bool(exact),
            offset=offset, include_metadata=include_metadata, include_vector=include_vector,
            allow_partial=allow_partial, explain=bool(explain))
        if ef is not None:
            request.ef = ef
        filt = where_to_filter(where)
        if filt is not None:
            request.filter.CopyFrom(filt)
        return request

    def get(self, ids, include_vector=True, include_metadata=True):
        """The points with these ids that exist, in the order asked for."""
        ids = _ids(ids)
        points = []
        for start in range(0, len(ids), MAX_IDS_PER_CALL):
            request = vector_store_pb2.GetRequest(collection=self.name, ids=ids[start:start + MAX_IDS_PER_CALL],
                                                  include_vector=include_vector, include_metadata=include_metadata)
            for p in self._call("Get", request).points:
                vector = np.array(p.vector, dtype=np.float32) if include_vector else None
                points.append(Point(p.id, vector, metadata_from_proto(p.metadata)))
        return points

    def delete(self, ids):
        """Deletes points by id; returns how many existed."""
        ids = _ids(ids)
        deleted = 0
        for start in range(0, len(ids), MAX_IDS_PER_CALL):
            request = vector_store_pb2.DeleteRequest(collection=self.name, ids=ids[start:start + MAX_IDS_PER_CALL])
            deleted += self._call("Delete", request).deleted
        return deleted

    def count(self, where=None):
        """Live points, optionally under a filter."""
        request = vector_store_pb2.CountRequest(collection=self.name)
        filt = where_to_filter(where)
        if filt is not None:
            request.filter.CopyFrom(filt)
        return self._call("Count", request).count

    # ------------------------------------------------------------------ jobs

    def classify(self, vector, k=5, label_field="label", where=None, vote="majority", exact=False, exclude_id=None):
        """Classifies ``vector`` by the labels of its ``k`` nearest points under ``where``.

        ``vote``: "majority" (one vote per neighbour) or "distance_weighted" (weight
        1 / (distance + 1e-6); cosine and l2 only). The highest score wins; a tie goes to
        the label of the nearest neighbour among the tied ones. Neighbours without
        ``label_field`` do not vote. ``exclude_id``: leave that stored point out of the
        neighbours (leave-one-out). Returns a ``Classification``.
        """
        _positive_int(k, "k")
        request = vector_store_pb2.ClassifyRequest(
            collection=self.name, vector=as_vector(vector, dimension=self.dimension or None).tolist(), k=k,
            label_field=label_field, vote=_vote(vote), exact=bool(exact), exclude_id=exclude_id or "")
        _set_filter(request, where)
        reply = self._call("Classify", request)
        return Classification(from_value(reply.label), {from_value(s.label): s.score for s in reply.scores},
                              {from_value(s.label): s.votes for s in reply.scores}, [_hit(h) for h in reply.neighbors])

    def evaluate_classifier(self, label_field="label", k=5, where=None, group_field=None, sample=None,
                            vote="majority", exact=False, top_confusions=10, page_size=1000, progress=None):
        """Leave-one-out accuracy of ``classify`` over the stored points under ``where``.

        Each point (all, or ``sample`` of them chosen by a stable hash of the id) is
        classified by its ``k`` nearest *other* points under ``where`` and, with
        ``group_field``, only among points with its own value of that field. It runs
        ``page_size`` points per call (0: all in one call, which must fit in the
        server's request time); ``progress``: True draws a bar on stderr (default:
        when stderr is a terminal), or a callable gets (done, total) after each page.
        Returns an ``Evaluation`` (``accuracy``, ``per_label``, ``confusions``).
        """
        _positive_int(k, "k")
        _positive_int(page_size, "page_size", allow_zero=True)
        if sample is not None:
            _positive_int(sample, "sample")
        request = vector_store_pb2.EvaluateClassifierRequest(
            collection=self.name, label_field=label_field, k=k, group_field=group_field or "", sample=sample or 0,
            vote=_vote(vote), exact=bool(exact), top_confusions=top_confusions, page_size=page_size)
        _set_filter(request, where)
        with _Progress(f"evaluating {self.name}", progress) as bar:
            while True:
                reply = self._call("EvaluateClassifier", request)
                bar.update(reply.evaluated + reply.skipped, reply.total)
                if not reply.next_page_token:
                    break
                request.page_token = reply.next_page_token
                del request.tally[:]
                request.tally.extend(reply.tally)
                request.skipped = reply.skipped
        per_label = {from_value(r.label): {"precision": r.precision, "recall": r.recall, "support": r.support}
                     for r in reply.per_label}
        confusions = [(from_value(c.actual), from_value(c.predicted), c.count) for c in reply.confusions]
        return Evaluation(reply.accuracy, per_label, confusions, reply.evaluated, reply.correct, reply.skipped)

    def anomaly_score(self, vectors, method="knn", k=5, where=None, exact=False, sample=None, timeout=600):
        """Anomaly scores of ``vectors`` (higher: more anomalous), in the collection's
        distance convention: ``method="knn"``, the mean distance to the ``k`` nearest
        stored points under ``where``; ``"centroid"``, the distance to the mean of those
        points' vectors (unit-normalised first for cosine). ``percentiles`` holds p50,
        p90, p95 and p99 of the same score over stored points, each left out of its own
        neighbours or mean (``sample`` of them, default 1000). Returns ``AnomalyScores``.
        """
        matrix = as_matrix(vectors, dimension=self.dimension or None)
        if method not in _ANOMALY_METHODS:
            raise ValueError(f"method must be one of {', '.join(_ANOMALY_METHODS)}, got {method!r}")
        _positive_int(k, "k")
        if sample is not None:
            _positive_int(sample, "sample")
        scores = []
        percentiles, sampled = Percentiles(), 0
        for start in range(0, len(matrix), 1000):
            request = vector_store_pb2.AnomalyScoreRequest(
                collection=self.name, vectors=[vector_store_pb2.Vector(values=row.tolist()) for row in matrix[start:start + 1000]],
                method=_ANOMALY_METHODS[method], k=k, exact=bool(exact), sample=sample or 0)
            _set_filter(request, where)
            reply = self._call("AnomalyScore", request, timeout=timeout)
            scores += list(reply.scores)
            percentiles = Percentiles(p50=reply.p50, p90=reply.p90, p95=reply.p95, p99=reply.p99)
            sampled = reply.sampled
        return AnomalyScores(np.array(scores, dtype=np.float64), percentiles, sampled)


_VOTES = {"majority": vector_store_pb2.VOTE_MAJORITY, "distance_weighted": vector_store_pb2.VOTE_DISTANCE_WEIGHTED}
_ANOMALY_METHODS = {"knn": vector_store_pb2.ANOMALY_KNN, "centroid": vector_store_pb2.ANOMALY_CENTROID}


def _vote(vote):
    if vote not in _VOTES:
        raise ValueError(f"vote must be one of {', '.join(_VOTES)}, got {vote!r}")
    return _VOTES[vote]


def _set_filter(request, where):
    filt = where_to_filter(where)
    if filt is not None:
        request.filter.CopyFrom(filt)


@dataclass
class Classification:
    """``label``: the predicted label; ``scores``: label → score (shares summing to 1),
    best first; ``votes``: label → neighbours with it; ``neighbors``: the hits used."""
    label: Any
    scores: Dict[Any, float]
    votes: Dict[Any, int]
    neighbors: List["Hit"]


@dataclass
class Evaluation:
    """``accuracy`` over ``evaluated`` points; ``per_label``: label → {"precision",
    "recall", "support"}; ``confusions``: (actual, predicted, count), most frequent first."""
    accuracy: float
    per_label: Dict[Any, Dict[str, float]]
    confusions: List[tuple]
    evaluated: int
    correct: int
    skipped: int


class Percentiles(dict):
    """{"p50", "p90", "p95", "p99"} → score; also indexed by the number (``p[99]``)."""

    def __getitem__(self, key):
        if isinstance(key, (int, float)) and not isinstance(key, bool):
            key = f"p{key:g}"
        return super().__getitem__(key)


@dataclass
class AnomalyScores:
    """``scores[i]`` scores the i-th vector; ``percentiles``: {"p50", "p90", "p95", "p99"}
    of the stored points' leave-one-out scores, over ``sampled`` points."""
    scores: np.ndarray
    percentiles: Dict[str, float]
    sampled: int


class _Progress:
    """Progress of a paged job: a bar on stderr (``show`` True, or None and stderr is a
    terminal), or a callable given (done, total) after each page."""

    def __init__(self, what, show=None):
        self.what = what
        self.callback = show if callable(show) else None
        self.draw = show is True or (show is None and sys.stderr.isatty())
        self.drawn = False

    def __enter__(self):
        return self

    def update(self, done, total):
        if self.callback:
            self.callback(done, total)
        if self.draw and total:
            filled = int(30 * done / total)
            sys.stderr.write(f"\r{self.what} [{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,}")
            sys.stderr.flush()
            self.drawn = True

    def __exit__(self, *exc):
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()


def split_points(points, max_points=MAX_BATCH_POINTS, max_bytes=MAX_BATCH_BYTES):
    """Consecutive batches of ``points`` with ≤ max_points each and ≤ max_bytes
    of encoded points each (a single larger point goes alone)."""
    batch, size = [], 0
    for point in points:
        point_size = point.ByteSize() + 8  # field tag and length prefix, generously
        if batch and (len(batch) == max_points or size + point_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(point)
        size += point_size
    if batch:
        yield batch


def _ids(ids):
    if isinstance(ids, str):
        raise ValueError("ids: expected a list of ids, got a single string")
    ids = list(ids)
    for n, i in enumerate(ids):
        if not isinstance(i, str) or not i:
            raise ValueError(f"ids[{n}]: ids are non-empty strings, got {i!r}")
    return ids


def _positive_int(value, name, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (0 if allow_zero else 1):
        raise ValueError(f"{name} must be {'a non-negative' if allow_zero else 'a positive'} int, got {value!r}")


class Hits(list):
    """Search hits, best first. ``partial`` is True when ``allow_partial`` let the
    search answer without some shards; ``missing_shards`` names them. ``explain``
    (with ``explain=True``): one dict per shard that answered, by shard id."""

    def __init__(self, hits, partial=False, missing_shards=(), explain=()):
        super().__init__(hits)
        self.partial = partial
        self.missing_shards = list(missing_shards)
        self.explain = list(explain)

    @property
    def distances_computed(self):
        """Distance evaluations over every shard (0 without ``explain=True``)."""
        return sum(e["distances_computed"] for e in self.explain)


# SearchStrategy values as the client names them.
STRATEGIES = {0: "unspecified", 1: "graph", 2: "filtered_graph", 3: "exact", 4: "exact_over_matches"}


def _hits(response):
    explain = [{"shard": e.shard_id, "node": e.node_id, "strategy": STRATEGIES.get(e.strategy, str(e.strategy)),
                "distances_computed": e.distances_computed, "unindexed_scanned": e.unindexed_scanned}
               for e in response.explain]
    return Hits([_hit(h) for h in response.hits], response.partial, response.missing_shards, explain)


def _hit(h):
    vector = np.array(h.vector, dtype=np.float32) if len(h.vector) else None
    return Hit(h.id, h.score, h.distance, metadata_from_proto(h.metadata), vector)
