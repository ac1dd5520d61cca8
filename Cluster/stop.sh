#!/usr/bin/env bash
# Stops the processes Cluster/launch.sh started from RUN_DIR (SIGTERM, then SIGKILL
# after a timeout). Safe to run twice.
#
#   Cluster/stop.sh [--dir RUN_DIR]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
run_dir="$root/run/cluster"
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) run_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "stop.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -d "$run_dir" ] || { echo "stop.sh: nothing to stop in $run_dir"; exit 0; }

pids=()
# The coordinator first, so it stops routing before the nodes go.
for pidfile in "$run_dir"/coordinator/pid "$run_dir"/node*/pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" && pids+=("$pid"); fi
  rm -f "$pidfile"
done
deadline=$((SECONDS + 20))
for pid in "${pids[@]}"; do
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.1
  done
done
echo "stop.sh: stopped ${#pids[@]} process(es) from $run_dir"
