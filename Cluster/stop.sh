#!/usr/bin/env bash
# Stops the processes Cluster/launch.sh started from RUN_DIR: the coordinators
# first (so they stop routing while the nodes still answer), then the nodes, then
# the etcd members (which the coordinators need until they are gone). Each group
# gets SIGTERM, then SIGKILL after SHOAL_STOP_TIMEOUT seconds (20). By pid files
# only; safe to run twice.
#
#   Cluster/stop.sh [--dir RUN_DIR]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
run_dir="$root/run/cluster"
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) run_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "stop.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -d "$run_dir" ] || { echo "stop.sh: nothing to stop in $run_dir"; exit 0; }
. "$root/Cluster/common.sh"

stopped=0
# SIGTERM to every process of the given pid files, then wait; SIGKILL at the timeout.
stop_group() {  # stop_group PIDFILE…
  local pids=() pidfile pid
  for pidfile in "$@"; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if running "$pid"; then kill -TERM "$pid" && pids+=("$pid"); fi
    rm -f "$pidfile"
  done
  local deadline=$((SECONDS + ${SHOAL_STOP_TIMEOUT:-20}))
  for pid in ${pids[@]+"${pids[@]}"}; do
    while running "$pid"; do
      if [ $SECONDS -ge $deadline ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
      sleep 0.1
    done
  done
  stopped=$((stopped + ${#pids[@]}))
}

legacy=()  # RUN_DIR/coordinator of the 1-coordinator layout (now a symlink to coordinator1)
[ -L "$run_dir/coordinator" ] || legacy=("$run_dir/coordinator/pid")
stop_group ${legacy[@]+"${legacy[@]}"} "$run_dir"/coordinator[0-9]*/pid
stop_group "$run_dir"/node[0-9]*/pid
stop_group "$run_dir"/etcd[0-9]*/pid
echo "stop.sh: stopped $stopped process(es) from $run_dir"
