"""The users' jobs (issue 14) against `shoal serve`: Classify, EvaluateClassifier and
AnomalyScore equal brute force computed here with NumPy, in exact mode, and are the
same for 1 and 6 shards; bad input gets a clear status and changes nothing."""
import grpc
import numpy as np
import pytest

import shoal
from shoal.v1 import vector_store_pb2, vector_store_pb2_grpc
from test_serve import start, stop

N, DIM, CLASSES = 400, 8, 4


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(14)
    centers = rng.standard_normal((CLASSES, DIM)).astype(np.float32) * 2.0
    classes = rng.integers(0, CLASSES, N)
    vectors = (centers[classes] + rng.standard_normal((N, DIM)).astype(np.float32) * 1.3).astype(np.float32)
    ids = [f"p{i:04d}" for i in range(N)]
    metadatas = [{"label": f"c{classes[i]}", "part": int(i % 3), "weight": float(i) / 7, "n": int(classes[i])}
                 for i in range(N)]
    for i in range(0, N, 37):
        del metadatas[i]["label"]  # a few points without a label: they neither vote nor get evaluated
    return dict(ids=ids, vectors=vectors, metadatas=metadatas, queries=rng.standard_normal((12, DIM)).astype(np.float32) * 2)


@pytest.fixture(scope="module")
def serve(tmp_path_factory, data):
    proc, log, address = start(str(tmp_path_factory.mktemp("jobs")))
    try:
        with shoal.Client(address, timeout=120) as client:
            cols = {}
            for metric in ("l2", "cosine"):
                for shards in (1, 6):
                    col = client.create_collection(f"{metric}{shards}", dimension=DIM, metric=metric, shards=shards)
                    col.upsert(data["ids"], data["vectors"], data["metadatas"])
                    cols[metric, shards] = col
            yield client, cols, address
    finally:
        stop(proc, log)


# ---------------------------------------------------------------- brute force

def distances(metric, query, vectors):
    if metric == "l2":
        return ((vectors.astype(np.float64) - query.astype(np.float64)) ** 2).sum(axis=1)
    q = query.astype(np.float64) / np.linalg.norm(query)
    v = vectors.astype(np.float64) / np.linalg.norm(vectors, axis=1, keepdims=True)
    return 1 - v @ q


def neighbours(data, metric, query, k, keep=lambda i: True, exclude=None):
    d = distances(metric, query, data["vectors"])
    order = sorted((d[i], data["ids"][i], i) for i in range(N) if keep(i) and i != exclude)
    return [(i, dist) for dist, _, i in order[:k]]


def vote(data, near, rule="majority"):
    weight, first = {}, {}
    for rank, (i, dist) in enumerate(near):
        label = data["metadatas"][i].get("label")
        if label is None:
            continue
        weight[label] = weight.get(label, 0) + (1 if rule == "majority" else 1 / (max(dist, 0) + 1e-6))
        first.setdefault(label, rank)
    if not weight:
        return None, {}
    best = max(weight, key=lambda label: (weight[label], -first[label]))
    total = sum(weight.values())
    return best, {label: w / total for label, w in weight.items()}


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("rule", ["majority", "distance_weighted"])
def test_classify_equals_a_brute_force_vote_for_1_and_6_shards(serve, data, metric, rule):
    _, cols, _ = serve
    for q in data["queries"]:
        for where, keep in ((None, lambda i: True), ({"part": 1}, lambda i: i % 3 == 1)):
            near = neighbours(data, metric, q, 7, keep)
            label, scores = vote(data, near, rule)
            answers = [cols[metric, shards].classify(q, k=7, where=where, vote=rule, exact=True) for shards in (1, 6)]
            for got in answers:
                assert [h.id for h in got.neighbors] == [data["ids"][i] for i, _ in near]
                assert got.label == label, (got, label, scores)
                assert got.scores.keys() == scores.keys()
                for key in scores:
                    assert got.scores[key] == pytest.approx(scores[key], rel=1e-4)
            assert answers[0].label == answers[1].label and answers[0].votes == answers[1].votes


def brute_force_evaluation(data, metric, k, keep=lambda i: True, group=None):
    correct = evaluated = 0
    for i in range(N):
        actual = data["metadatas"][i].get("label")
        if actual is None or not keep(i):
            continue
        scope = (lambda j: keep(j) and data["metadatas"][j][group] == data["metadatas"][i][group]) if group else keep
        predicted, _ = vote(data, neighbours(data, metric, data["vectors"][i], k, scope, exclude=i))
        evaluated += 1
        correct += predicted == actual
    return evaluated, correct


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_leave_one_out_never_counts_the_point_itself_and_matches_brute_force(serve, data, metric):
    _, cols, _ = serve
    evaluated, correct = brute_force_evaluation(data, metric, 5)
    results = [cols[metric, shards].evaluate_classifier(label_field="label", k=5, exact=True) for shards in (1, 6)]
    for got in results:
        assert (got.evaluated, got.correct) == (evaluated, correct)
        assert got.accuracy == pytest.approx(correct / evaluated)
        assert got.skipped == len(range(0, N, 37))
        assert sum(r["support"] for r in got.per_label.values()) == evaluated
        assert all(a != p for a, p, _ in got.confusions)
    assert results[0] == results[1]
    # k = 1: with itself counted the accuracy would be 1.0.
    assert cols[metric, 6].evaluate_classifier(label_field="label", k=1, exact=True).accuracy < 1.0

    grouped = cols[metric, 6].evaluate_classifier(label_field="label", k=5, exact=True, group_field="part", where={"part": {"$ne": 2}})
    assert (grouped.evaluated, grouped.correct) == brute_force_evaluation(data, metric, 5, keep=lambda i: i % 3 != 2, group="part")


def test_a_paged_evaluation_equals_one_call_and_reports_progress(serve, data):
    _, cols, address = serve
    col = cols["cosine", 6]
    whole = col.evaluate_classifier(k=5, exact=True, page_size=0, group_field="part")
    seen = []
    paged = col.evaluate_classifier(k=5, exact=True, page_size=64, group_field="part", progress=lambda done, total: seen.append((done, total)))
    assert paged == whole
    assert len(seen) == -(-N // 64) and seen[-1] == (N, N) and [d for d, _ in seen] == sorted(d for d, _ in seen), seen
    sampled = col.evaluate_classifier(k=5, exact=True, page_size=50, sample=120)
    assert sampled.evaluated + sampled.skipped == 120
    assert sampled == col.evaluate_classifier(k=5, exact=True, page_size=0, sample=120)
    with grpc.insecure_channel(address) as channel:
        stub = vector_store_pb2_grpc.VectorStoreStub(channel)
        for token in (b"junk", (10 ** 6).to_bytes(8, "big")):
            with pytest.raises(grpc.RpcError) as refused:
                stub.EvaluateClassifier(vector_store_pb2.EvaluateClassifierRequest(
                    collection="cosine6", label_field="label", k=5, page_size=10, page_token=token), timeout=30)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in refused.value.details()


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_anomaly_scores_and_percentiles_equal_brute_force(serve, data, metric):
    _, cols, _ = serve
    queries = np.vstack([data["queries"], data["vectors"][:3] * 8])
    # knn: the mean distance to the k nearest stored points; over stored points, each left out.
    expected = [np.mean([d for _, d in neighbours(data, metric, q, 5)]) for q in queries]
    own = [np.mean([d for _, d in neighbours(data, metric, data["vectors"][i], 5, exclude=i)]) for i in range(N)]
    for shards in (1, 6):
        got = cols[metric, shards].anomaly_score(queries, method="knn", k=5, exact=True)
        np.testing.assert_allclose(got.scores, expected, rtol=1e-4, atol=1e-6)
        assert got.sampled == N and got.percentiles[99] == got.percentiles["p99"]
        for p in (50, 90, 95, 99):
            assert got.percentiles[f"p{p}"] == pytest.approx(np.percentile(own, p), rel=1e-4)
    # centroid: the distance to the mean (of unit vectors for cosine); each stored point left out of the mean.
    v = data["vectors"].astype(np.float64)
    if metric == "cosine":
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
    total = v.sum(axis=0)
    expected = [distances(metric, q, (total / N)[None, :].astype(np.float64))[0] for q in queries]
    own = [distances(metric, data["vectors"][i], ((total - v[i]) / (N - 1))[None, :])[0] for i in range(N)]
    for shards in (1, 6):
        got = cols[metric, shards].anomaly_score(queries, method="centroid")
        np.testing.assert_allclose(got.scores, expected, rtol=1e-6, atol=1e-9)
        for p in (50, 90, 95, 99):
            assert got.percentiles[f"p{p}"] == pytest.approx(np.percentile(own, p), rel=1e-6)
    # far-out vectors (scaled: far for l2 only) score above p99
    if metric == "l2":
        assert (cols[metric, 6].anomaly_score(data["vectors"][:3] * 8, k=5, exact=True).scores
                > cols[metric, 6].anomaly_score(data["vectors"][:1], k=5, exact=True).percentiles["p99"]).all()


def test_bad_input_gets_a_clear_status_and_changes_nothing(serve, data):
    client, cols, address = serve
    col = cols["l2", 6]
    q = data["queries"][0]
    with pytest.raises(shoal.FailedPreconditionError, match="label field \"nope\""):
        col.classify(q, k=5, label_field="nope")
    with pytest.raises(shoal.FailedPreconditionError, match="label field \"nope\""):
        col.evaluate_classifier(label_field="nope", k=5)
    with pytest.raises(shoal.InvalidArgumentError, match="holds a double; labels are strings or ints"):
        col.classify(q, k=5, label_field="weight")
    assert col.classify(q, k=5, label_field="n").label in range(CLASSES)  # int labels work
    with pytest.raises(shoal.FailedPreconditionError, match=f"k = 1000, but only {N} stored points match"):
        col.classify(q, k=1000)
    with pytest.raises(shoal.FailedPreconditionError, match="no stored point matches the filter"):
        col.classify(q, k=5, where={"label": "nobody"})
    with pytest.raises(shoal.FailedPreconditionError, match="no stored point"):
        col.anomaly_score([q], k=5, where={"label": "nobody"})
    ip = client.create_collection("ip", dimension=DIM, metric="ip")
    ip.upsert(["a"], [q], [{"label": "x"}])
    with pytest.raises(shoal.InvalidArgumentError, match="distance_weighted"):
        ip.classify(q, k=1, vote="distance_weighted")
    with pytest.raises(ValueError):
        col.classify(q, vote="loudest")
    # Past the client's own checks, the server refuses too.
    with grpc.insecure_channel(address) as channel:
        stub = vector_store_pb2_grpc.VectorStoreStub(channel)
        bad = list(map(float, q))
        bad[2] = float("nan")
        for call, request in ((stub.Classify, vector_store_pb2.ClassifyRequest(collection="l26", vector=bad, k=3, label_field="label")),
                              (stub.Classify, vector_store_pb2.ClassifyRequest(collection="l26", vector=list(q), k=3, label_field="")),
                              (stub.Classify, vector_store_pb2.ClassifyRequest(collection="l26", vector=list(q)[:3], k=3, label_field="label")),
                              (stub.AnomalyScore, vector_store_pb2.AnomalyScoreRequest(collection="l26", vectors=[vector_store_pb2.Vector(values=bad)], k=3)),
                              (stub.EvaluateClassifier, vector_store_pb2.EvaluateClassifierRequest(collection="l26", label_field="label", k=0))):
            with pytest.raises(grpc.RpcError) as refused:
                call(request, timeout=30)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
        with pytest.raises(grpc.RpcError) as missing:
            stub.Classify(vector_store_pb2.ClassifyRequest(collection="nope", vector=list(q), k=3, label_field="label"), timeout=30)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert col.count() == N


def test_the_cli_classifies_and_evaluates_as_the_client_does(serve, data):
    import json
    import subprocess
    from conftest import shoal_bin
    _, cols, address = serve
    q = data["queries"][1]
    run = lambda *args: subprocess.run([shoal_bin(), *args, "--coordinator", address, "--json"], capture_output=True, text=True, timeout=120)
    out = run("classify", "--collection", "l26", "--vector", ",".join(map(str, q.tolist())), "--k", "7", "--where", "part=1", "--exact")
    assert out.returncode == 0, out.stderr
    got, want = json.loads(out.stdout), cols["l2", 6].classify(q, k=7, where={"part": 1}, exact=True)
    assert got["label"] == want.label and [n["id"] for n in got["neighbors"]] == [h.id for h in want.neighbors]
    out = run("evaluate", "--collection", "l26", "--k", "5", "--group-field", "part", "--exact")
    assert out.returncode == 0, out.stderr
    got, want = json.loads(out.stdout), cols["l2", 6].evaluate_classifier(k=5, group_field="part", exact=True)
    assert (got["evaluated"], got["correct"]) == (want.evaluated, want.correct)
    assert {r["label"]: r["support"] for r in got["per_label"]} == {k: v["support"] for k, v in want.per_label.items()}
    bad = run("evaluate", "--collection", "l26", "--label-field", "nope")
    assert bad.returncode == 2 and "FAILED_PRECONDITION" in bad.stderr and "nope" in bad.stderr
