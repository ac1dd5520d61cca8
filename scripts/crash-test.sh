#!/usr/bin/env bash
# The node's SIGKILL crash test with more cycles than the suite runs (default 100).
#   scripts/crash-test.sh [CYCLES]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
bash scripts/gen-python-stubs.sh
swift build --product shoal
SHOAL_CRASH_CYCLES=${1:-100} SHOAL_BIN="$(swift build --show-bin-path)/shoal" PYTHONPATH="$root/Clients/python" \
  .venv/bin/python -m pytest -q Tests/python/test_node_crash.py
