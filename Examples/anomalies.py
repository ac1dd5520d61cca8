#!/usr/bin/env python3
"""Anomaly scoring: flag new items that are far from normal data.

Normal traffic is a mixture of 10 clusters in 32-d; new items are mostly normal,
with a few drawn far from every cluster. Each new item gets its k-NN score (the
mean distance to its k nearest stored items); the threshold is the stored
items' own p99 (each scored without itself), so no loop and no guess.

    python Examples/anomalies.py                         # against Cluster/launch.sh (127.0.0.1:7100)
    python Examples/anomalies.py --address 127.0.0.1:7700 --normal 2000
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Clients", "python"))
import shoal  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", default="127.0.0.1:7100")
    ap.add_argument("--normal", type=int, default=20_000)
    ap.add_argument("--k", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((10, 32)) * 4
    normal = (centres[rng.integers(0, 10, args.normal)] + rng.standard_normal((args.normal, 32))).astype(np.float32)
    new = (centres[rng.integers(0, 10, 40)] + rng.standard_normal((40, 32))).astype(np.float32)
    odd = np.sort(rng.choice(40, 4, replace=False))
    new[odd] = rng.standard_normal((4, 32)).astype(np.float32) * 9  # far from every cluster
    with shoal.Client(args.address, timeout=300) as client:
        if "traffic-example" in [c.name for c in client.list_collections()]:
            client.delete_collection("traffic-example")
        col = client.create_collection("traffic-example", dimension=32, metric="l2")
        col.upsert([f"n{i}" for i in range(args.normal)], normal)
        for method in ("knn", "centroid"):
            result = col.anomaly_score(new, method=method, k=args.k)
            threshold = result.percentiles["p99"]
            flagged = np.flatnonzero(result.scores > threshold)
            print(f"{method}: stored items' scores p50 {result.percentiles['p50']:.2f}  p90 {result.percentiles['p90']:.2f}  "
                  f"p99 {threshold:.2f} (over {result.sampled})")
            print(f"  flagged above p99: items {[int(i) for i in flagged]}; planted outliers: {[int(i) for i in odd]}")
        client.delete_collection("traffic-example")


if __name__ == "__main__":
    main()
