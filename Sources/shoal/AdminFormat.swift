import ShoalProto

// Pure formatting for `shoal admin`: state names, table rows, JSON objects and
// progress lines, built from the Admin service's messages. No I/O here.

extension Shoal_V1_NodeState {
    /// `active`, `draining`, `unreachable` (`unknown` for anything else).
    var name: String {
        switch self {
        case .active: "active"
        case .draining: "draining"
        case .unreachable: "unreachable"
        default: "unknown"
        }
    }
}

extension Shoal_V1_NodeHealth {
    /// `up`, `suspect`, `down` (`unknown` for anything else).
    var name: String {
        switch self {
        case .up: "up"
        case .suspect: "suspect"
        case .down: "down"
        default: "unknown"
        }
    }
}

extension Shoal_V1_ReplicaState {
    /// `in_sync`, `catching_up`, `retiring`, `stale` (`unknown` for anything else).
    var name: String {
        switch self {
        case .ready: "in_sync"
        case .catchingUp: "catching_up"
        case .retiring: "retiring"
        case .stale: "stale"
        default: "unknown"
        }
    }
}

extension Shoal_V1_TaskState {
    /// `pending`, `running`, `done`, `failed`, `rolled_back` (`unknown` for anything else).
    var name: String {
        switch self {
        case .pending: "pending"
        case .running: "running"
        case .done: "done"
        case .failed: "failed"
        case .rolledBack: "rolled_back"
        default: "unknown"
        }
    }

    /// DONE, FAILED or ROLLED_BACK: the task will not change any more.
    var isFinished: Bool { self == .done || self == .failed || self == .rolledBack }
}

extension Shoal_V1_MovePhase {
    /// `create_replica`, `copy_records`, `catch_up`, `switch_reads`, `drop_source`.
    var name: String {
        switch self {
        case .createReplica: "create_replica"
        case .copyRecords: "copy_records"
        case .catchUp: "catch_up"
        case .switchReads: "switch_reads"
        case .dropSource: "drop_source"
        default: "unknown"
        }
    }
}

/// `15700` → `15,700`.
func grouped(_ n: UInt64) -> String {
    let digits = Array(String(n))
    var out = ""
    for (i, d) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(d)
    }
    return out
}

/// Display names for node ids: the shortest prefix, at least 8 characters, that no
/// other known id shares. Resolves what an operator types back to one id.
struct NodeNames {
    let nodes: [Shoal_V1_NodeInfo]
    private let length: Int

    init(_ nodes: [Shoal_V1_NodeInfo]) {
        self.nodes = nodes
        let ids = nodes.map(\.nodeID)
        var length = 8
        while length < (ids.map(\.count).max() ?? 0), Set(ids.map { $0.prefix(length) }).count < ids.count { length += 1 }
        self.length = length
    }

    func short(_ id: String) -> String { String(id.prefix(length)) }

    /// The node `text` names: an exact id, a unique node name, or a unique id prefix; nil if none or several.
    func resolve(_ text: String) -> Shoal_V1_NodeInfo? {
        if let exact = nodes.first(where: { $0.nodeID == text }) { return exact }
        for match in [nodes.filter { $0.nodeName == text }, nodes.filter { $0.nodeID.hasPrefix(text) }] where match.count == 1 {
            return match[0]
        }
        return nil
    }
}

// MARK: - Tables

let nodeHeader = ["NODE", "NAME", "ADDRESS", "STATE", "REPLICAS", "POINTS", "VERSION", "HEALTH"]

func nodeRow(_ n: Shoal_V1_NodeInfo) -> [String] {
    [n.nodeID, n.nodeName.isEmpty ? "-" : n.nodeName, n.address, n.state.name, "\(n.replicaCount)", grouped(n.pointCount),
     n.version.isEmpty ? "-" : n.version, n.health.name]
}

func nodeObject(_ n: Shoal_V1_NodeInfo) -> [String: Any] {
    ["node_id": n.nodeID, "name": n.nodeName, "address": n.address, "state": n.state.name, "health": n.health.name,
     "replicas": n.replicaCount,
     "points": n.pointCount, "version": n.version, "last_seen_unix_ms": n.lastSeenUnixMs]
}

let shardHeader = ["COLLECTION", "SHARD", "NODE", "POINTS", "STATE"]

/// One row per replica. A replica's points: its own count if reported, else (for a
/// replica that holds the whole shard: in sync or RETIRING) the shard's `shardPoints`.
func shardRows(_ shard: Shoal_V1_ShardPlacement, shardPoints: UInt64, names: NodeNames) -> [(row: [String], object: [String: Any])] {
    shard.replicas.map { r in
        let points = r.pointCount > 0 || r.state == .catchingUp || r.state == .stale ? r.pointCount : shardPoints
        return ([shard.collection, "\(shard.shardID)", names.short(r.nodeID), grouped(points), r.state.name],
                ["collection": shard.collection, "shard": shard.shardID, "node_id": r.nodeID, "address": r.address,
                 "points": points, "state": r.state.name])
    }
}

/// A replica a node set aside at start, as a row of the shard table.
func setAsideRow(_ aside: Shoal_V1_SetAsideReplicaInfo, names: NodeNames) -> (row: [String], object: [String: Any]) {
    ([aside.collection, "\(aside.shardID)", names.short(aside.nodeID), "-", "set_aside"],
     ["collection": aside.collection, "shard": aside.shardID, "node_id": aside.nodeID, "points": 0, "state": "set_aside",
      "incarnation": aside.incarnation, "reason": aside.reason])
}

let planHeader = ["COLLECTION", "SHARD", "FROM", "TO", "POINTS", "TASK"]

func planRow(_ m: Shoal_V1_MovePlan, names: NodeNames) -> [String] {
    [m.collection, "\(m.shardID)", names.short(m.fromNodeID), names.short(m.toNodeID), grouped(m.pointCount),
     m.taskID.isEmpty ? "-" : m.taskID]
}

func planObject(_ m: Shoal_V1_MovePlan) -> [String: Any] {
    ["collection": m.collection, "shard": m.shardID, "from": m.fromNodeID, "to": m.toNodeID, "points": m.pointCount,
     "task_id": m.taskID]
}

let loadHeader = ["NODE", "POINTS BEFORE", "POINTS AFTER", "REPLICAS BEFORE", "REPLICAS AFTER"]

/// One row per node in either list, in node order; a node missing from one side counts 0 there.
func loadRows(before: [Shoal_V1_NodeLoad], after: [Shoal_V1_NodeLoad], names: NodeNames) -> [[String]] {
    let b = Dictionary(before.map { ($0.nodeID, $0) }, uniquingKeysWith: { x, _ in x })
    let a = Dictionary(after.map { ($0.nodeID, $0) }, uniquingKeysWith: { x, _ in x })
    return Set(b.keys).union(a.keys).sorted().map { id in
        [names.short(id), grouped(b[id]?.pointCount ?? 0), grouped(a[id]?.pointCount ?? 0),
         "\(b[id]?.replicaCount ?? 0)", "\(a[id]?.replicaCount ?? 0)"]
    }
}

func loadObject(_ l: Shoal_V1_NodeLoad) -> [String: Any] {
    ["node_id": l.nodeID, "points": l.pointCount, "replicas": l.replicaCount]
}

let taskHeader = ["TASK", "COLLECTION", "SHARD", "FROM", "TO", "STATE", "PHASE", "PROGRESS", "ERROR", "KIND"]

func taskRow(_ t: Shoal_V1_MoveTask, names: NodeNames) -> [String] {
    [t.taskID, t.move.collection, "\(t.move.shardID)", names.short(t.move.fromNodeID), names.short(t.move.toNodeID),
     t.state.name, t.phase.name, "\(grouped(t.recordsCopied))/\(grouped(t.recordsTotal))",
     t.error.isEmpty ? "-" : t.error + (t.retriedAs.isEmpty ? "" : "; retried as \(t.retriedAs)"),
     t.kind.isEmpty ? "move" : t.kind]
}

func taskObject(_ t: Shoal_V1_MoveTask) -> [String: Any] {
    ["task_id": t.taskID, "kind": t.kind.isEmpty ? "move" : t.kind, "collection": t.move.collection, "shard": t.move.shardID, "from": t.move.fromNodeID,
     "to": t.move.toNodeID, "points": t.move.pointCount, "state": t.state.name, "phase": t.phase.name,
     "records_copied": t.recordsCopied, "records_total": t.recordsTotal, "error": t.error, "retried_as": t.retriedAs,
     "created_unix_ms": t.createdUnixMs, "updated_unix_ms": t.updatedUnixMs]
}

// MARK: - Progress

/// `[#######.....] 58%`: the share of records copied; 100% once the task is DONE.
func progressBar(copied: UInt64, total: UInt64, done: Bool = false, width: Int = 12) -> String {
    let fraction = done ? 1 : total == 0 ? 0 : min(1, Double(copied) / Double(total))
    let filled = Int((fraction * Double(width)).rounded(.down))
    let percent = Int((fraction * 100).rounded(.down))
    return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(percent)%"
}

/// `faces/3 3f2a1b0c → 9d8e7f6a`
func moveLabel(_ t: Shoal_V1_MoveTask, names: NodeNames) -> String {
    "\(t.move.collection)/\(t.move.shardID) \(names.short(t.move.fromNodeID)) → \(names.short(t.move.toNodeID))"
}

/// One redrawn terminal line: `[#######.....] 58%  faces/3 a → b  copy_records  9,120/15,700`;
/// a task that is not running shows its state instead of its phase.
func progressLine(_ t: Shoal_V1_MoveTask, names: NodeNames) -> String {
    let step = t.state == .running ? t.phase.name : t.state.name
    return "\(progressBar(copied: t.recordsCopied, total: t.recordsTotal, done: t.state == .done))  \(moveLabel(t, names: names))  \(step)  \(grouped(t.recordsCopied))/\(grouped(t.recordsTotal))"
}

/// The line printed (without a terminal) when a task's state or phase changes.
func changeLine(_ t: Shoal_V1_MoveTask, names: NodeNames) -> String {
    "\(t.taskID) \(moveLabel(t, names: names)): \(t.state.name) \(t.phase.name) \(grouped(t.recordsCopied))/\(grouped(t.recordsTotal))"
        + (t.error.isEmpty ? "" : " (\(t.error))")
}

/// The closing lines after waiting, and the exit status: 0 if every task is DONE, 3 otherwise.
func waitOutcome(_ tasks: [Shoal_V1_MoveTask], names: NodeNames) -> (lines: [String], status: Int32) {
    let bad = tasks.filter { $0.state != .done }
    if bad.isEmpty { return (["\(tasks.count) of \(tasks.count) moves done"], 0) }
    let lines = bad.map { t in
        "\(t.taskID) \(moveLabel(t, names: names)) \(t.state.name)" + (t.error.isEmpty ? "" : ": \(t.error)")
    }
    return (lines + ["\(bad.count) of \(tasks.count) moves did not finish: \(bad.map(\.taskID).joined(separator: ", "))"], 3)
}
