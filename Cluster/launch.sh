#!/usr/bin/env bash
# Starts a local Shoal cluster on loopback: M etcd members (the coordinators'
# shared cluster metadata), N shard nodes and C coordinators, one folder each
# under RUN_DIR, and waits until every process answers its health check.
#
#   Cluster/launch.sh [--nodes N] [--coordinators C] [--etcd-members M]
#                     [--base-port P] [--dir RUN_DIR]
#
# Defaults: 3 nodes, 1 coordinator, 1 etcd member (3 for a quorum that survives
# one loss), P 7100, RUN_DIR run/cluster. Ports:
#   coordinator1 P (clients connect there), coordinator I (2..C) P+40+I
#   node i (1..N, N <= 39) P+i
#   etcd member J (1..M) client P+80+J, peer P+90+J
# RUN_DIR:
#   etcd<J>/{data,log,pid}   etcd-endpoints   the client URLs, comma-separated
#   node<i>/{data,log,pid,address}
#   coordinator<I>/{data,log,pid,address}   coordinators   one address a line
#   coordinator -> coordinator1   (a symlink, for scripts of the 1-coordinator layout)
# Every coordinator serves the same API; clients may name them all and fail over:
#   shoal admin --coordinator "$(paste -sd, RUN_DIR/coordinators)" nodes
#   shoal.Client(open("RUN_DIR/coordinators").read().split())
# Safe to run twice: processes already running from RUN_DIR are left alone, so
# `--nodes 4` on a running 3-node cluster starts node4 only (register it with
# `shoal admin add-node 127.0.0.1:P+4`) and `--coordinators 3` adds coordinator3.
# The etcd member count is fixed when RUN_DIR is first launched.
# SHOAL_COORDINATOR_ARGS / SHOAL_NODE_ARGS: extra arguments for those processes
# (e.g. SHOAL_COORDINATOR_ARGS="--move-rate-limit 5000"); ETCD_BIN: the etcd
# executable (default: etcd on PATH); SHOAL_LAUNCH_TIMEOUT: seconds to wait for
# each process (120). Stop it all with Cluster/stop.sh --dir RUN_DIR.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
nodes=3
coordinators=1
etcd_members=1
base_port=7100
run_dir="$root/run/cluster"
die() { echo "launch.sh: $1" >&2; exit "${2:-1}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --coordinators) coordinators=$2; shift 2 ;;
    --etcd-members) etcd_members=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --dir) run_dir=$2; shift 2 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) die "unknown option $1" 2 ;;
  esac
done
in_range() { [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] || die "$1 must be $3..$4, got '$2'" 2; }
in_range --nodes "$nodes" 1 39
in_range --coordinators "$coordinators" 1 39
in_range --etcd-members "$etcd_members" 1 9
in_range --base-port "$base_port" 1 65435
mkdir -p "$run_dir"
run_dir=$(cd "$run_dir" && pwd)

"$root/scripts/install-deps.sh"
"$root/scripts/gen-python-stubs.sh" >/dev/null  # the Python client's stubs, from Protos/
if [ -z "${SHOAL_BIN:-}" ]; then
  echo "launch.sh: building shoal (release)…"
  (cd "$root" && swift build -c release --product shoal >"$run_dir/build.log" 2>&1) || {
    tail -30 "$run_dir/build.log" >&2; die "build failed, see $run_dir/build.log"; }
  SHOAL_BIN=$(cd "$root" && swift build -c release --show-bin-path)/shoal
fi
etcd_bin=${ETCD_BIN:-$(command -v etcd || true)}
[ -n "$etcd_bin" ] && [ -x "$etcd_bin" ] || die "no etcd executable (install etcd 3.4 or later, or set ETCD_BIN)"

. "$root/Cluster/common.sh"

# RUN_DIR/coordinator of the 1-coordinator layout becomes coordinator1 (before anything starts).
if [ -d "$run_dir/coordinator" ] && [ ! -L "$run_dir/coordinator" ]; then
  alive "$run_dir/coordinator/pid" && die "a coordinator of the old layout runs from $run_dir/coordinator: run stop.sh first"
  [ -e "$run_dir/coordinator1" ] && die "both $run_dir/coordinator and coordinator1 exist: remove one"
  mv "$run_dir/coordinator" "$run_dir/coordinator1"
fi

# Polls `check ARGS…` until it succeeds; NAME's process must stay alive meanwhile.
wait_until() {  # wait_until NAME WHAT CHECK ARGS…
  local name=$1 what=$2 dir="$run_dir/$1"
  shift 2
  local deadline=$((SECONDS + ${SHOAL_LAUNCH_TIMEOUT:-120}))
  until "$@" >/dev/null 2>&1; do
    alive "$dir/pid" || { echo "launch.sh: $name exited; its log:" >&2; tail -20 "$dir/log" >&2; exit 1; }
    [ $SECONDS -lt $deadline ] || die "$name not $what in time (see $dir/log)"
    sleep 0.2
  done
}

# Starts NAME (a folder of RUN_DIR) running COMMAND… unless it already runs.
start() {  # start NAME ADDRESS COMMAND…
  local name=$1 address=$2 dir="$run_dir/$1"
  shift 2
  mkdir -p "$dir"
  if alive "$dir/pid"; then
    echo "launch.sh: $name already running (pid $(cat "$dir/pid"))"
    return
  fi
  nohup "$@" >>"$dir/log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  echo "$address" >"$dir/address"
}

# etcd: every member first, then each one's /health (a member is healthy once it has a quorum).
etcd_healthy() {  # etcd_healthy CLIENT_URL
  python3 -c 'import json, sys, urllib.request
sys.exit(json.load(urllib.request.urlopen(sys.argv[1] + "/health", timeout=2)).get("health") != "true")' "$1"
}
initial_cluster=""
endpoints=""
for j in $(seq 1 "$etcd_members"); do
  initial_cluster="$initial_cluster${initial_cluster:+,}etcd$j=http://127.0.0.1:$((base_port + 90 + j))"
  endpoints="$endpoints${endpoints:+,}http://127.0.0.1:$((base_port + 80 + j))"
done
if [ -f "$run_dir/etcd-endpoints" ] && [ "$(cat "$run_dir/etcd-endpoints")" != "$endpoints" ]; then
  die "$run_dir was launched with etcd $(cat "$run_dir/etcd-endpoints"); the members cannot change (stop.sh, then remove $run_dir/etcd*)" 2
fi
for j in $(seq 1 "$etcd_members"); do
  client="http://127.0.0.1:$((base_port + 80 + j))"
  peer="http://127.0.0.1:$((base_port + 90 + j))"
  start "etcd$j" "$client" "$etcd_bin" --name "etcd$j" --data-dir "$run_dir/etcd$j/data" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$initial_cluster" --initial-cluster-state new \
    --auto-compaction-mode periodic --auto-compaction-retention 1h  # the version ceiling is rewritten every second
done
for j in $(seq 1 "$etcd_members"); do
  wait_until "etcd$j" healthy etcd_healthy "$(cat "$run_dir/etcd$j/address")"
done
echo "$endpoints" >"$run_dir/etcd-endpoints"

node_list=""
for i in $(seq 1 "$nodes"); do
  mkdir -p "$run_dir/node$i/data"
  start "node$i" "127.0.0.1:$((base_port + i))" "$SHOAL_BIN" node --listen "127.0.0.1:$((base_port + i))" \
    --data "$run_dir/node$i/data" --name "node$i" ${SHOAL_NODE_ARGS:-}
done
for i in $(seq 1 "$nodes"); do
  wait_until "node$i" healthy "$SHOAL_BIN" health --target "$(cat "$run_dir/node$i/address")" --timeout 1
  node_list="$node_list${node_list:+,}$(cat "$run_dir/node$i/address")"
done

# Coordinators: coordinator1 on P, coordinator I ≥ 2 on P+40+I, all on the same etcd.
: >"$run_dir/coordinators.new"
for c in $(seq 1 "$coordinators"); do
  port=$([ "$c" -eq 1 ] && echo "$base_port" || echo $((base_port + 40 + c)))
  mkdir -p "$run_dir/coordinator$c/data"
  start "coordinator$c" "127.0.0.1:$port" "$SHOAL_BIN" coordinator --listen "127.0.0.1:$port" --nodes "$node_list" \
    --data "$run_dir/coordinator$c/data" --etcd "$endpoints" --name "coordinator$c" ${SHOAL_COORDINATOR_ARGS:-}
done
ln -sfn coordinator1 "$run_dir/coordinator"
# Every running coordinator is listed, also those a larger --coordinators started before.
for c in $(seq 1 39); do
  dir="$run_dir/coordinator$c"
  if [ "$c" -le "$coordinators" ] || alive "$dir/pid"; then
    [ -f "$dir/address" ] || continue
    wait_until "coordinator$c" healthy "$SHOAL_BIN" health --target "$(cat "$dir/address")" --timeout 1
    cat "$dir/address" >>"$run_dir/coordinators.new"
  fi
done
mv "$run_dir/coordinators.new" "$run_dir/coordinators"

echo "Shoal is up: coordinators $(paste -sd, "$run_dir/coordinators"), $nodes nodes, etcd $endpoints"
for dir in "$run_dir"/coordinator[0-9]* "$run_dir"/node[0-9]* "$run_dir"/etcd[0-9]*; do
  if alive "$dir/pid"; then printf '  %-13s %-24s log: %s\n' "${dir##*/}" "$(cat "$dir/address")" "$dir/log"; fi
done
all=$(paste -sd, "$run_dir/coordinators")
echo "Python:      PYTHONPATH=$root/Clients/python $root/.venv/bin/python -c 'import shoal; print(shoal.Client(\"$all\").list_collections())'"
echo "Admin:       $SHOAL_BIN admin --coordinator $all nodes"
echo "Stop it:     Cluster/stop.sh --dir $run_dir"
