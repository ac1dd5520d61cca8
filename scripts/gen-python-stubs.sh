#!/usr/bin/env bash
# Generates the Python gRPC stubs for Protos/shoal/v1/*.proto into
# Clients/python/shoal/v1/ (git-ignored), with .venv's grpc_tools.protoc.
#
#   scripts/gen-python-stubs.sh           # skips when the stubs are current
#   scripts/gen-python-stubs.sh --force   # regenerates anyway
#
# Layout: Clients/python is the Python package root. The protos are compiled
# with -I Protos, so the module for shoal/v1/shard.proto is shoal.v1.shard_pb2
# and the generated imports (`from shoal.v1 import types_pb2`) resolve inside
# the `shoal` client package itself, with no import rewriting:
#   import shoal.v1.shard_pb2_grpc          # Clients/python on the path,
#   from shoal.v1 import types_pb2          # e.g. pip install -e Clients/python
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

py="$root/.venv/bin/python"
[ -x "$py" ] || { echo "gen-python-stubs: $py missing: run scripts/install-deps.sh" >&2; exit 1; }

protos=(Protos/shoal/v1/*.proto)
pkg=Clients/python/shoal/v1

# Current when every proto has its modules and none is newer than the stubs
# (or than this script).
if [ "$force" -eq 0 ] && [ -f "$pkg/__init__.py" ]; then
  current=1
  for p in "${protos[@]}" "$root/scripts/gen-python-stubs.sh"; do
    [ "$p" -nt "$pkg/__init__.py" ] && current=0
  done
  for p in "${protos[@]}"; do
    b=$(basename "$p" .proto)
    [ -f "$pkg/${b}_pb2.py" ] && [ -f "$pkg/${b}_pb2_grpc.py" ] || current=0
  done
  if [ "$current" -eq 1 ]; then
    echo "gen-python-stubs: $pkg is up to date" >&2
    exit 0
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m grpc_tools.protoc -I Protos \
  --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" \
  "${protos[@]}"
cat > "$tmp/shoal/v1/__init__.py" <<'PY'
"""Generated gRPC stubs for the shoal.v1 protocol (Protos/shoal/v1).

Do not edit: regenerate with scripts/gen-python-stubs.sh.
"""
PY

# Replace the whole folder: a removed .proto loses its modules.
rm -rf "$pkg"
mkdir -p "$(dirname "$pkg")"
mv "$tmp/shoal/v1" "$pkg"
echo "gen-python-stubs: ${#protos[@]} protos -> $pkg" >&2
