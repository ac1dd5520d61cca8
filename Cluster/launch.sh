#!/usr/bin/env bash
# Starts a local Shoal cluster on loopback: a coordinator and N shard nodes, one
# data and log folder each under RUN_DIR, and waits until every process answers
# Health.
#
#   Cluster/launch.sh [--nodes N] [--base-port P] [--dir RUN_DIR]
#
# Ports: the coordinator listens on P (clients connect there); node i (1..N) on P+i.
# Safe to run twice: processes already running from RUN_DIR are left alone, so
# `--nodes 4` on a running 3-node cluster starts node4 only; register it with
# `shoal admin add-node 127.0.0.1:P+4`.
# SHOAL_COORDINATOR_ARGS / SHOAL_NODE_ARGS: extra arguments for those processes
# (e.g. SHOAL_COORDINATOR_ARGS="--move-rate-limit 5000").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
nodes=3
base_port=7100
run_dir="$root/run/cluster"
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --dir) run_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "launch.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$run_dir"
run_dir=$(cd "$run_dir" && pwd)

"$root/scripts/install-deps.sh"
"$root/scripts/gen-python-stubs.sh" >/dev/null  # the Python client's stubs, from Protos/
if [ -z "${SHOAL_BIN:-}" ]; then
  echo "launch.sh: building shoal (release)…"
  (cd "$root" && swift build -c release --product shoal >"$run_dir/build.log" 2>&1) || {
    tail -30 "$run_dir/build.log" >&2; echo "launch.sh: build failed, see $run_dir/build.log" >&2; exit 1; }
  SHOAL_BIN=$(cd "$root" && swift build -c release --show-bin-path)/shoal
fi

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

for i in $(seq 1 "$nodes"); do
  name="node$i"
  port=$((base_port + i))
  dir="$run_dir/$name"
  mkdir -p "$dir/data"
  if alive "$dir/pid"; then
    echo "launch.sh: $name already running (pid $(cat "$dir/pid"))"
    continue
  fi
  nohup "$SHOAL_BIN" node --listen "127.0.0.1:$port" --data "$dir/data" --name "$name" \
    ${SHOAL_NODE_ARGS:-} >>"$dir/log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  echo "127.0.0.1:$port" >"$dir/address"
done

# Wait until a process answers Health (poll with a timeout).
wait_healthy() {  # wait_healthy NAME
  local dir="$run_dir/$1"
  local deadline=$((SECONDS + ${SHOAL_LAUNCH_TIMEOUT:-120}))
  until "$SHOAL_BIN" health --target "$(cat "$dir/address")" --timeout 1 >/dev/null 2>&1; do
    if ! alive "$dir/pid"; then
      echo "launch.sh: $1 exited; its log:" >&2; tail -20 "$dir/log" >&2; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then echo "launch.sh: $1 not healthy in time" >&2; exit 1; fi
    sleep 0.2
  done
}
node_list=""
for i in $(seq 1 "$nodes"); do
  wait_healthy "node$i"
  node_list="$node_list${node_list:+,}$(cat "$run_dir/node$i/address")"
done

dir="$run_dir/coordinator"
mkdir -p "$dir/data"
if alive "$dir/pid"; then
  echo "launch.sh: coordinator already running (pid $(cat "$dir/pid"))"
else
  nohup "$SHOAL_BIN" coordinator --listen "127.0.0.1:$base_port" --nodes "$node_list" --data "$dir/data" \
    ${SHOAL_COORDINATOR_ARGS:-} >>"$dir/log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  echo "127.0.0.1:$base_port" >"$dir/address"
fi
wait_healthy coordinator

echo "Shoal is up: coordinator 127.0.0.1:$base_port, $nodes nodes"
echo "  coordinator  $(cat "$run_dir/coordinator/address")  log: $run_dir/coordinator/log"
for i in $(seq 1 "$nodes"); do echo "  node$i        $(cat "$run_dir/node$i/address")  log: $run_dir/node$i/log"; done
echo "Python:      PYTHONPATH=$root/Clients/python $root/.venv/bin/python -c 'import shoal; print(shoal.Client(\"127.0.0.1:$base_port\").list_collections())'"
echo "Check it:    $SHOAL_BIN health --target 127.0.0.1:$base_port"
echo "Stop it:     Cluster/stop.sh --dir $run_dir"
