#!/usr/bin/env bash
# Fails (exit 1, with a diff) when Sources/ShoalProto or Sources/EtcdProto differs
# from what scripts/gen-protos.sh generates from Protos/. Run in CI; fix with
# `scripts/gen-protos.sh` and commit the result.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bash scripts/gen-protos.sh --out "$tmp/generated"

# Compare only generated files: both sides' *.pb.swift, nothing else.
stale=0
for target in ShoalProto EtcdProto; do
  mkdir -p "$tmp/committed/$target"
  find "Sources/$target" -maxdepth 1 -name '*.pb.swift' -exec cp {} "$tmp/committed/$target/" \;
  if diff -ru "$tmp/committed/$target" "$tmp/generated/$target" > "$tmp/diff"; then
    echo "check-generated: Sources/$target is up to date"
  else
    sed -e "s|$tmp/committed/$target|Sources/$target (committed)|" \
        -e "s|$tmp/generated/$target|Sources/$target (regenerated)|" "$tmp/diff"
    echo "check-generated: Sources/$target is stale: run scripts/gen-protos.sh and commit" >&2
    stale=1
  fi
done
exit $stale
