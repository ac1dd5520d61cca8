#!/usr/bin/env bash
# Shoal's index against hnswlib and faiss on the same datasets, back to back in one sitting.
#   scripts/bench-index.sh [DATA_DIR] [PEERS_DIR] [OUT_DIR]
# Needs the peers' venv (bash PEERS_DIR/setup.sh) and datasets (PEERS_DIR/datasets.py --data DATA_DIR).
set -euo pipefail
DATA=${1:-/work/bench-data}
PEERS=${2:-/work/bench-peers}
OUT=${3:-$DATA/results}
DATASETS=${DATASETS:-clustered-128-l2 faces-512-cos}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
swift build -c release --product shoal-bench
for ds in $DATASETS; do
  "$PEERS/.venv/bin/python" "$PEERS/peers.py" "$ds" --data "$DATA" --peers hnswlib,faiss-hnsw,faiss-flat \
      --efs 10,20,40,80,160,320 --reps 1 --build-reps 1 --build-threads 1 --wait-idle "${WAIT_IDLE:-60}" \
      --out "$OUT/peers-$ds.json"
  # Same courtesy for Shoal: wait (up to WAIT_IDLE s) for other processes to use under 0.15 cores.
  "$PEERS/.venv/bin/python" -c "import sys; sys.path.insert(0, '$PEERS'); import peers; print('machine load before shoal: %.2f cores' % peers.wait_quiet(${WAIT_IDLE:-60}), file=sys.stderr)"
  .build/release/shoal-bench index --data "$DATA/$ds" --m 16 --ef-construction 200 --ef 10,20,40,80,160,320 \
      --threads 1 --filter-selectivity 0.01,0.1,0.5 --reps 3 --json > "$OUT/shoal-$ds.json"
done
python3 - "$OUT" $DATASETS <<'PY'
import json, sys
out = sys.argv[1]
for ds in sys.argv[2:]:
    p = json.load(open(f"{out}/peers-{ds}.json"))
    s = json.load(open(f"{out}/shoal-{ds}.json"))
    print(f"\n## {ds}\n")
    print("| engine | ef | recall@10 | QPS 1 thread | p50 µs | p99 µs | build s | strategy |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in p["peers"].items():
        b = r["build"]["1"]["median_s"] if "build" in r else float("nan")
        for row in r["sweep"]:
            bq = row.get("batch", {}).get("qps", float("nan"))
            print(f"| {name} | {row['ef']} | {row['recall10']:.4f} | {bq:.0f} (batched), {row['single']['qps']:.0f} (one a call) "
                  f"| {row['single']['lat_ms_p50']*1000:.0f} | {row['single']['lat_ms_p99']*1000:.0f} | {b:.1f} | |")
    for row in s["sweep"]:
        g, c = row["graph_only"], row.get("graph_int8_walk") or {}
        walks = f"float walk {g['recall_at_10']:.4f} @ {g['qps']:.0f}"
        if c:
            walks += f", int8 walk {c['recall_at_10']:.4f} @ {c['qps']:.0f}"
        print(f"| shoal | {row['ef']} | {row['recall_at_10']:.4f} | {row['qps']:.0f} | {row['p50_us']:.0f} | {row['p99_us']:.0f} "
              f"| {s['build_seconds']:.1f} | {','.join(row['strategy'])} ({walks}) |")
    print(f"\nshoal bytes/vector {s['bytes_per_vector']:.0f}; image {s['image']}")
    for name, r in p["peers"].items():
        print(f"{name} index_mb_est {r.get('index_mb_est', float('nan')):.1f} MB ({r.get('index_mb_est', 0)*1048576/s['n']:.0f} B/vector)")
    print("\n| selectivity | matches | ef | recall@10 | QPS | strategy |")
    print("| --- | --- | --- | --- | --- | --- |")
    for f in s["filtered"]:
        print(f"| {f['selectivity']} | {f['matches']} | {f['ef']} | {f['recall_at_10']:.4f} | {f['qps']:.0f} | {','.join(f['strategy'])} |")
PY
