#!/usr/bin/env python3
"""kNN classification of product photos by quality, within each part.

A stand-in for image embeddings of a production line: 6 parts, each photographed
as "ok", "scratch" or "dent"; every (part, quality) is a cluster of 64-d vectors,
and the parts overlap, so a neighbour from another part misleads. New photos are
classified among their own part (the filter), and the collection's leave-one-out
accuracy is measured with and without grouping by part.

    python Examples/classify_parts.py                    # against Cluster/launch.sh (127.0.0.1:7100)
    python Examples/classify_parts.py --address 127.0.0.1:7700 --per-class 40
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "Clients", "python"))
import shoal  # noqa: E402

QUALITIES = ["ok", "scratch", "dent"]


def line(rng, parts, dim=64):
    """The look of each (part, quality): parts overlap, and a defect looks different on each part."""
    part_centre = rng.standard_normal((parts, 1, dim)) * 0.8
    return part_centre + rng.standard_normal((parts, len(QUALITIES), dim)) * 0.9


def photos(rng, look, per_class):
    vectors, meta = [], []
    for part in range(look.shape[0]):
        for q in range(len(QUALITIES)):
            vectors.append(look[part, q] + rng.standard_normal((per_class, look.shape[2])) * 2.0)
            meta += [{"part": part, "quality": QUALITIES[q]}] * per_class
    return np.vstack(vectors).astype(np.float32), meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", default="127.0.0.1:7100")
    ap.add_argument("--parts", type=int, default=6)
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--k", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    look = line(rng, args.parts)
    vectors, meta = photos(rng, look, args.per_class)
    with shoal.Client(args.address, timeout=300) as client:
        if "parts-example" in [c.name for c in client.list_collections()]:
            client.delete_collection("parts-example")
        col = client.create_collection("parts-example", dimension=vectors.shape[1], metric="l2")
        col.upsert([f"photo-{i}" for i in range(len(vectors))], vectors, meta)

        new, truth = photos(rng, look, 1)
        print("new photos, classified among their own part:")
        for v, m in list(zip(new, truth))[::2]:
            got = col.classify(v, k=args.k, label_field="quality", where={"part": m["part"]})
            scores = ", ".join(f"{label} {score:.2f}" for label, score in got.scores.items())
            print(f"  part {m['part']}  actual {m['quality']:<8} predicted {got.label:<8} ({scores})")

        for title, group in (("all parts mixed", None), ("within each part", "part")):
            ev = col.evaluate_classifier(label_field="quality", k=args.k, group_field=group)
            print(f"\nleave-one-out accuracy, {title}: {ev.accuracy:.3f} over {ev.evaluated} photos")
            for label, row in ev.per_label.items():
                print(f"  {label:<8} precision {row['precision']:.3f}  recall {row['recall']:.3f}  ({row['support']} photos)")
            for actual, predicted, count in ev.confusions[:3]:
                print(f"  confused: {count} × {actual} taken for {predicted}")
        client.delete_collection("parts-example")


if __name__ == "__main__":
    main()
