#!/usr/bin/env bash
# Fails (exit 1, with a diff) when Sources/ShoalProto differs from what
# scripts/gen-protos.sh generates from Protos/. Run in CI; fix with
# `scripts/gen-protos.sh` and commit the result.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bash scripts/gen-protos.sh --out "$tmp/generated"

# Compare only generated files: both sides' *.pb.swift, nothing else.
mkdir -p "$tmp/committed"
find Sources/ShoalProto -maxdepth 1 -name '*.pb.swift' -exec cp {} "$tmp/committed/" \;

if diff -ru "$tmp/committed" "$tmp/generated" > "$tmp/diff"; then
  echo "check-generated: Sources/ShoalProto is up to date"
else
  sed -e "s|$tmp/committed|Sources/ShoalProto (committed)|" \
      -e "s|$tmp/generated|Sources/ShoalProto (regenerated)|" "$tmp/diff"
  echo "check-generated: Sources/ShoalProto is stale: run scripts/gen-protos.sh and commit" >&2
  exit 1
fi
