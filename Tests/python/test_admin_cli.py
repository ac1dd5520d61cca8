"""`shoal admin`: the operator CLI against a real 3-node cluster (Cluster/launch.sh).

The tests share one cluster and run in file order: read-only checks first, then a
4th node is added, shards are moved onto it and it is drained and removed.
A fake Admin server (in this process) drives `--wait` through failures and a terminal.
"""
import json
import os
import pty
import select
import socket
import subprocess
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest

import shoal
from cluster_helpers import Cluster, admin, admin_json
from conftest import running_node, shoal_bin
from shoal.v1 import admin_pb2, admin_pb2_grpc

POINTS = 600
SHARDS = 6
SUBCOMMANDS = ["nodes", "shards", "add-node", "drain", "remove-node", "move", "rebalance", "status", "cancel",
               "verify", "repair"]


def admin_tty(address, *args, timeout=90):
    """Runs `shoal admin` with stdout on a pseudo-terminal; returns (exit code, bytes shown)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([shoal_bin(), "admin", "--coordinator", address, *args],
                            stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(slave)
    shown = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            assert ready, "no output from the command in time"
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        proc.wait(timeout=timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    return proc.returncode, shown


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def placement(address, collection="faces"):
    """{shard: [(node_id, state)]} from `admin shards --json`."""
    shards = {}
    for r in admin_json(address, "shards", "--collection", collection):
        shards.setdefault(r["shard"], []).append((r["node_id"], r["state"]))
    return shards


def epoch(address):
    with grpc.insecure_channel(address) as channel:
        return admin_pb2_grpc.AdminStub(channel).ShardMap(admin_pb2.ShardMapRequest(), timeout=30).epoch


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(str(tmp_path_factory.mktemp("admin-cluster")), nodes=3)
    c.launch()
    try:
        vectors = np.random.default_rng(11).standard_normal((POINTS, 8)).astype(np.float32)
        with shoal.Client(c.address) as client:
            col = client.create_collection("faces", dimension=8, metric="cosine", shards=SHARDS, replication_factor=1)
            col.upsert(ids=[f"p{i}" for i in range(POINTS)], vectors=vectors)
        c.ids = {c.node_id(f"node{i}"): f"node{i}" for i in (1, 2, 3)}
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def node4(cluster):
    """A 4th node, started but not registered: the add-node test registers it."""
    with running_node("shoal-node4-") as n:
        yield n


def count(cluster):
    with shoal.Client(cluster.address) as client:
        return client.get_collection("faces").count()


# ---------------------------------------------------------------------------
# Help, usage and the coordinator's address: no server needed.
# ---------------------------------------------------------------------------

def test_help_shows_examples_and_exit_codes():
    top = subprocess.run([shoal_bin(), "admin", "--help"], capture_output=True, text=True, timeout=30)
    assert top.returncode == 0
    assert "Examples:" in top.stdout and "Exit codes:" in top.stdout
    assert all(f"\n  {code}  " in top.stdout for code in (0, 1, 2, 3))
    for sub in SUBCOMMANDS:
        assert sub in top.stdout
        out = subprocess.run([shoal_bin(), "admin", sub, "--help"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, sub
        assert "Examples:" in out.stdout and f"shoal admin {sub}" in out.stdout, sub
        assert "--json" in out.stdout and "--coordinator" in out.stdout, sub


def test_unknown_subcommand_is_a_usage_error():
    out = subprocess.run([shoal_bin(), "admin", "frobnicate"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 64 and "frobnicate" in out.stderr
    bad = subprocess.run([shoal_bin(), "admin", "add-node", "no-port-here"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 64 and "HOST:PORT" in bad.stderr


def test_unreachable_coordinator_exits_1():
    out = admin(f"127.0.0.1:{free_port()}", "nodes", "--timeout", "2")
    assert out.returncode == 1
    assert out.stderr.startswith("shoal admin: ") and "UNAVAILABLE" in out.stderr and out.stdout == ""


# ---------------------------------------------------------------------------
# Read-only: nodes and shards.
# ---------------------------------------------------------------------------

def test_nodes_table_and_json(cluster):
    out = admin(cluster.address, "nodes")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NODE", "NAME", "ADDRESS", "STATE", "REPLICAS", "POINTS", "VERSION", "HEALTH"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == set(cluster.ids)
    assert all(r[1] == cluster.ids[i] and r[3] == "active" and r[7] == "up" for i, r in rows.items())
    assert sum(int(r[4]) for r in rows.values()) == SHARDS
    assert sum(int(r[5].replace(",", "")) for r in rows.values()) == POINTS
    # --json, and the admin options before the subcommand as well as after it.
    before = json.loads(subprocess.run([shoal_bin(), "admin", "--coordinator", cluster.address, "--json", "nodes"],
                                       capture_output=True, text=True, timeout=60).stdout)
    after = admin_json(cluster.address, "nodes")
    for listed in (before, after):
        assert {n["node_id"] for n in listed} == set(cluster.ids)
        assert all(n["state"] == "active" and n["health"] == "up" and n["name"] == cluster.ids[n["node_id"]] and n["version"]
                   for n in listed)
        assert sum(n["points"] for n in listed) == POINTS and sum(n["replicas"] for n in listed) == SHARDS


def test_shards_table_and_json(cluster):
    out = admin(cluster.address, "shards")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["COLLECTION", "SHARD", "NODE", "POINTS", "STATE"]
    rows = [line.split() for line in lines[1:]]
    assert [int(r[1]) for r in rows] == list(range(SHARDS)) and all(r[0] == "faces" and r[4] == "in_sync" for r in rows)
    assert sum(int(r[3].replace(",", "")) for r in rows) == POINTS  # filled in where the map leaves 0
    assert all(any(i.startswith(r[2]) for i in cluster.ids) for r in rows)  # short node ids
    listed = admin_json(cluster.address, "shards", "--collection", "faces")
    assert sorted(r["shard"] for r in listed) == list(range(SHARDS))
    assert {r["node_id"] for r in listed} == set(cluster.ids)
    assert sum(r["points"] for r in listed) == POINTS and all(r["state"] == "in_sync" for r in listed)
    missing = admin(cluster.address, "shards", "--collection", "nope")
    assert missing.returncode == 2 and "NOT_FOUND" in missing.stderr and missing.stderr.startswith("shoal admin: ")


def test_move_checks_its_input_before_asking_the_server(cluster):
    at = epoch(cluster.address)
    holder = placement(cluster.address)[2][0][0]
    other = next(i for i in cluster.ids if i != holder)
    unknown = admin(cluster.address, "move", "2", "--to", "no-such-node")
    assert unknown.returncode == 2 and "unknown node \"no-such-node\"" in unknown.stderr
    same = admin(cluster.address, "move", "2", "--to", holder)
    assert same.returncode == 2 and f"shard 2 of faces is already on node {holder[:8]}" in same.stderr
    by_name = admin(cluster.address, "move", "2", "--to", cluster.ids[holder], "--collection", "faces")
    assert by_name.returncode == 2 and "already on node" in by_name.stderr
    shard = admin(cluster.address, "move", "99", "--to", other)
    assert shard.returncode == 2 and "has no shard 99" in shard.stderr
    source = admin(cluster.address, "move", "2", "--to", other, "--from", other)
    assert source.returncode == 2 and "holds no ready (in-sync) replica" in source.stderr
    collection = admin(cluster.address, "move", "2", "--to", other, "--collection", "nope")
    assert collection.returncode == 2 and "NOT_FOUND" in collection.stderr
    for out in (unknown, same, by_name, shard, source, collection):
        assert out.stderr.startswith("shoal admin: ") and out.stdout == ""
    assert epoch(cluster.address) == at  # nothing moved


def test_move_needs_a_collection_when_there_are_several(cluster):
    with shoal.Client(cluster.address) as client:
        client.create_collection("other", dimension=4, metric="l2", shards=1, replication_factor=1)
        try:
            out = admin(cluster.address, "move", "0", "--to", next(iter(cluster.ids)))
            assert out.returncode == 2 and "give --collection" in out.stderr and "faces, other" in out.stderr
        finally:
            client.delete_collection("other")


# ---------------------------------------------------------------------------
# Changing the cluster (needs the coordinator's AddNode, MoveShard, ... ).
# ---------------------------------------------------------------------------

def test_add_node_registers_a_fourth_node(cluster, node4):
    out = admin(cluster.address, "add-node", node4.address)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("added node ") and node4.address in out.stdout and "active" in out.stdout
    listed = admin_json(cluster.address, "nodes")
    assert len(listed) == 4
    new = next(n for n in listed if n["address"] == node4.address)
    assert new["state"] == "active" and new["replicas"] == 0
    node4.id = new["node_id"]
    again = admin(cluster.address, "add-node", node4.address)
    assert again.returncode == 2 and "ALREADY_EXISTS" in again.stderr
    nobody = admin(cluster.address, "add-node", f"127.0.0.1:{free_port()}", "--timeout", "10")
    assert nobody.returncode == 1 and "UNAVAILABLE" in nobody.stderr
    assert len(admin_json(cluster.address, "nodes")) == 4


def test_move_with_wait_then_status_shows_done(cluster, node4):
    source = placement(cluster.address)[0][0][0]
    out = admin(cluster.address, "move", "0", "--to", node4.id, "--wait")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:9] == ["TASK", "COLLECTION", "SHARD", "FROM", "TO", "STATE", "PHASE", "PROGRESS", "ERROR"]
    task_id = lines[1].split()[0]
    assert lines[1].split()[1:5] == ["faces", "0", source[:8], node4.id[:8]]
    assert any(line.startswith(f"{task_id} faces/0 ") and ": done " in line for line in lines)  # a change line
    assert lines[-1] == "1 of 1 moves done"
    [task] = admin_json(cluster.address, "status", task_id)
    assert task["task_id"] == task_id and task["state"] == "done" and task["error"] == ""
    assert (task["collection"], task["shard"], task["from"], task["to"]) == ("faces", 0, source, node4.id)
    assert task["records_copied"] == task["records_total"] > 0
    assert placement(cluster.address)[0] == [(node4.id, "in_sync")]
    assert count(cluster) == POINTS
    table = admin(cluster.address, "status", task_id)
    assert table.returncode == 0 and table.stdout.splitlines()[1].split()[5] == "done"


def test_status_json_lists_tasks_with_their_state(cluster):
    listed = admin_json(cluster.address, "status", "--all")
    assert isinstance(listed, list) and listed
    fields = {"task_id", "collection", "shard", "from", "to", "state", "phase", "records_copied", "records_total", "error"}
    assert all(fields <= set(t) for t in listed)
    assert all(t["state"] in {"pending", "running", "done", "failed", "rolled_back"} for t in listed)
    assert all(t["phase"] in {"create_replica", "copy_records", "catch_up", "switch_reads", "drop_source"} for t in listed)
    assert any(t["state"] == "done" for t in listed)
    running = admin_json(cluster.address, "status")
    assert all(t["state"] in {"pending", "running"} for t in running)
    watched = admin(cluster.address, "status", "--watch")  # nothing unfinished: returns at once
    assert watched.returncode == 0, watched.stderr


def test_move_on_a_terminal_draws_progress_bars(cluster, node4):
    code, shown = admin_tty(cluster.address, "move", "1", "--collection", "faces", "--to", node4.id, "--wait")
    text = shown.decode()
    assert code == 0, text
    assert "\x1b[2K" in text and "[############] 100%" in text and "faces/1 " in text and "→" in text
    assert "1 of 1 moves done" in text
    assert placement(cluster.address)[1] == [(node4.id, "in_sync")]


def test_rebalance_dry_run_prints_a_plan_and_changes_nothing(cluster):
    at, before = epoch(cluster.address), placement(cluster.address)
    out = admin(cluster.address, "rebalance", "--dry-run")
    assert out.returncode == 0, out.stderr
    plan = admin_json(cluster.address, "rebalance", "--dry-run")
    assert plan["dry_run"] is True and plan["balanced"] == (plan["moves"] == [])
    assert all(m["task_id"] == "" for m in plan["moves"])
    if plan["moves"]:
        assert out.stdout.splitlines()[0].split() == ["COLLECTION", "SHARD", "FROM", "TO", "POINTS", "TASK"]
        load = "NODE POINTS BEFORE POINTS AFTER REPLICAS BEFORE REPLICAS AFTER".split()
        assert load in [line.split() for line in out.stdout.splitlines()]
        assert "dry run: nothing started" in out.stdout
    else:
        assert "already balanced" in out.stdout
    assert sum(n["replicas"] for n in plan["load_after"]) == sum(n["replicas"] for n in plan["load_before"])
    assert epoch(cluster.address) == at and placement(cluster.address) == before
    assert admin_json(cluster.address, "status") == []


def test_remove_node_refuses_while_it_holds_replicas_then_drain_and_remove(cluster, node4):
    refused = admin(cluster.address, "remove-node", node4.id)
    assert refused.returncode == 2 and "FAILED_PRECONDITION" in refused.stderr
    dry = admin_json(cluster.address, "drain", node4.id, "--dry-run")
    assert sorted(m["shard"] for m in dry["moves"]) == [0, 1] and all(m["from"] == node4.id for m in dry["moves"])
    assert next(n for n in admin_json(cluster.address, "nodes") if n["node_id"] == node4.id)["state"] == "active"
    out = admin(cluster.address, "drain", node4.id[:8], "--wait")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0].split() == ["COLLECTION", "SHARD", "FROM", "TO", "POINTS", "TASK"]
    assert out.stdout.splitlines()[-1] == "2 of 2 moves done"
    assert all(node4.id not in [r[0] for r in rs] for rs in placement(cluster.address).values())
    assert count(cluster) == POINTS
    removed = admin(cluster.address, "remove-node", node4.id)
    assert removed.returncode == 0, removed.stderr
    assert {n["node_id"] for n in admin_json(cluster.address, "nodes")} == set(cluster.ids)


def test_move_to_a_node_that_is_down_exits_1(cluster):
    with running_node("shoal-node5-") as node5:
        added = admin_json(cluster.address, "add-node", node5.address)
    holder = placement(cluster.address)[3][0][0]
    out = admin(cluster.address, "move", "3", "--to", added["node_id"], "--timeout", "20")
    assert out.returncode == 1 and "UNAVAILABLE" in out.stderr and out.stderr.startswith("shoal admin: ")
    assert placement(cluster.address)[3] == [(holder, "in_sync")]
    gone = admin(cluster.address, "remove-node", added["node_id"], "--force")
    assert gone.returncode == 0, gone.stderr


def test_cancel_of_an_unknown_task_exits_2(cluster):
    out = admin(cluster.address, "cancel", "move-999999")
    assert out.returncode == 2 and "NOT_FOUND" in out.stderr and out.stderr.startswith("shoal admin: ")


# ---------------------------------------------------------------------------
# --wait against a scripted Admin server: failure (exit 3) and the terminal.
# ---------------------------------------------------------------------------

A, B = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"


class ScriptedAdmin(admin_pb2_grpc.AdminServicer):
    """Fixed nodes and plans; task `move-1` advances one step per TaskStatus call, then rolls back."""

    STEPS = [(admin_pb2.PENDING, admin_pb2.CREATE_REPLICA, 0), (admin_pb2.RUNNING, admin_pb2.COPY_RECORDS, 0),
             (admin_pb2.RUNNING, admin_pb2.COPY_RECORDS, 4500), (admin_pb2.RUNNING, admin_pb2.CATCH_UP, 9000),
             (admin_pb2.ROLLED_BACK, admin_pb2.CATCH_UP, 9000)]

    def __init__(self):
        self.calls = 0
        self.lock = threading.Lock()

    def ListNodes(self, request, context):
        return admin_pb2.ListNodesResponse(nodes=[admin_pb2.NodeInfo(node_id=i, state=admin_pb2.ACTIVE) for i in (A, B)])

    def Rebalance(self, request, context):
        moves = [admin_pb2.MovePlan(collection="faces", shard_id=s, from_node_id=A, to_node_id=B, point_count=1500)
                 for s in (3, 5)]
        load = lambda a, b, ra, rb: [admin_pb2.NodeLoad(node_id=A, point_count=a, replica_count=ra),
                                     admin_pb2.NodeLoad(node_id=B, point_count=b, replica_count=rb)]
        return admin_pb2.RebalanceResponse(moves=moves, load_before=load(6000, 0, 4, 0), load_after=load(3000, 3000, 2, 2))

    def DrainNode(self, request, context):
        if request.node_id != A:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "wrong node")
        return admin_pb2.DrainNodeResponse(moves=[admin_pb2.MovePlan(
            collection="faces", shard_id=3, from_node_id=A, to_node_id=B, point_count=9000, task_id="move-1")])

    def TaskStatus(self, request, context):
        with self.lock:
            state, phase, copied = self.STEPS[min(self.calls, len(self.STEPS) - 1)]
            self.calls += 1
        move = admin_pb2.MovePlan(collection="faces", shard_id=3, from_node_id=A, to_node_id=B, point_count=9000, task_id="move-1")
        task = admin_pb2.MoveTask(task_id="move-1", move=move, state=state, phase=phase, records_copied=copied,
                                  records_total=9000, error="cancelled by the operator" if state == admin_pb2.ROLLED_BACK else "")
        return admin_pb2.TaskStatusResponse(tasks=[task])


@pytest.fixture
def scripted():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    service = ScriptedAdmin()
    admin_pb2_grpc.add_AdminServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", service
    finally:
        server.stop(grace=None)


def test_watch_prints_each_change_and_exits_3_on_rollback(scripted):
    address, _ = scripted
    out = admin(address, "status", "move-1", "--watch")
    assert out.returncode == 3, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "move-1 faces/3 aaaaaaaa → bbbbbbbb: pending create_replica 0/9,000"
    assert lines[1:4] == ["move-1 faces/3 aaaaaaaa → bbbbbbbb: running copy_records 0/9,000",
                          "move-1 faces/3 aaaaaaaa → bbbbbbbb: running catch_up 9,000/9,000",
                          "move-1 faces/3 aaaaaaaa → bbbbbbbb: rolled_back catch_up 9,000/9,000 (cancelled by the operator)"]
    assert lines[-2:] == ["move-1 faces/3 aaaaaaaa → bbbbbbbb rolled_back: cancelled by the operator",
                          "1 of 1 moves did not finish: move-1"]


def test_watch_json_prints_only_the_final_tasks(scripted):
    address, _ = scripted
    out = admin(address, "status", "move-1", "--watch", "--json")
    assert out.returncode == 3
    [task] = json.loads(out.stdout)
    assert task["state"] == "rolled_back" and task["error"] == "cancelled by the operator" and task["from"] == A
    assert "shoal admin: move-1" in out.stderr


def test_watch_on_a_terminal_redraws_a_progress_bar(scripted):
    address, service = scripted
    code, shown = admin_tty(address, "status", "move-1", "--watch")
    text = shown.decode()
    assert code == 3, text
    assert "[............] 0%  faces/3 aaaaaaaa → bbbbbbbb  pending  0/9,000" in text
    assert "[######......] 50%  faces/3 aaaaaaaa → bbbbbbbb  copy_records  4,500/9,000" in text
    assert "[############] 100%  faces/3 aaaaaaaa → bbbbbbbb  rolled_back  9,000/9,000" in text
    assert text.count("\x1b[1A") == service.calls - 1  # redrawn in place after the first frame
    assert "1 of 1 moves did not finish: move-1" in text


def test_rebalance_plan_and_load_tables(scripted):
    address, _ = scripted
    out = admin(address, "rebalance", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "COLLECTION  SHARD  FROM      TO        POINTS  TASK",
        "faces       3      aaaaaaaa  bbbbbbbb  1,500   -",
        "faces       5      aaaaaaaa  bbbbbbbb  1,500   -",
        "",
        "NODE      POINTS BEFORE  POINTS AFTER  REPLICAS BEFORE  REPLICAS AFTER",
        "aaaaaaaa  6,000          3,000         4                2",
        "bbbbbbbb  0              3,000         0                2",
        "dry run: nothing started"]
    plan = admin_json(address, "rebalance", "--dry-run")
    assert plan["balanced"] is False and [m["shard"] for m in plan["moves"]] == [3, 5]
    assert plan["load_after"] == [{"node_id": A, "points": 3000, "replicas": 2}, {"node_id": B, "points": 3000, "replicas": 2}]


def test_drain_wait_follows_the_started_moves(scripted):
    address, _ = scripted
    out = admin(address, "drain", "aaaa", "--wait")  # a unique id prefix names the node
    assert out.returncode == 3, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:2] == ["COLLECTION  SHARD  FROM      TO        POINTS  TASK",
                         "faces       3      aaaaaaaa  bbbbbbbb  9,000   move-1"]
    assert lines[-1] == "1 of 1 moves did not finish: move-1"
    waited = json.loads(admin(address, "drain", A, "--wait", "--json").stdout)
    assert waited["moves"][0]["task_id"] == "move-1" and waited["tasks"][0]["state"] == "rolled_back"
