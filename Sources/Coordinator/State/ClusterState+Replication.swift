import VectorCore

/// The in-sync set of each shard, and the tasks that restore it: a replica that
/// missed a write leaves the set (STALE) before the write is acknowledged; a catch-up
/// brings it back; a replicate task replaces a lost replica or one the shard lacks.
extension ClusterState {
    /// Takes `node`'s in-sync replica of `collection`/`shard` out of the in-sync set: it
    /// missed a write that another in-sync replica committed. UNAVAILABLE (nothing
    /// changed) if no other replica is in sync: the write must not be acknowledged.
    /// Nothing to do if the replica is not in sync (any more) or not placed. A task
    /// copying from it that has not switched reads rolls back.
    public mutating func markStale(collection: String, shard: UInt32, node: String, nowMs: Int64) throws(ShoalError) {
        guard let state = collections[collection], shard < state.config.shardCount else { return }
        var replicas = state.shards[Int(shard)].replicas
        guard let i = replicas.firstIndex(where: { $0.nodeId == node }), replicas[i].state == .ready else { return }
        guard replicas.contains(where: { $0.nodeId != node && $0.state == .ready }) else {
            throw ShoalError(.unavailable,
                "shard \(shard) of \(collection): node \(node) did not take the write and no other replica is in sync; the write is not acknowledged")
        }
        replicas[i].state = .stale
        replicas[i].staleSinceMs = nowMs
        try setReplicas(collection: collection, shard: shard, replicas)
        // A task copying from it copied (or would copy) without this write, which its
        // target may have missed too: the task rolls back. A catch-up or a replicate is
        // planned again by the healer; a move's change is carried on from a replica in sync.
        for task in moves.values where task.isActive && task.collection == collection && task.shard == shard && task.from == node
            && (task.state == .pending || task.phase < .switchReads) {
            try rollBackMove(task.id, as: .failed, error: "its source, node \(node), missed a write and is no longer in sync", nowMs: nowMs)
            try carryOn(task, nowMs: nowMs)
        }
    }

    /// Queues what a failed move `task` was to do (the shard's replica leaves `task.from`
    /// and one appears on `task.to`) as a replicate from another in-sync replica to the
    /// same target, replacing the source; recorded as `task.retriedAs`. Nothing for a
    /// catch-up or a replicate (the healer plans those again), for a move the operator
    /// cancelled, or without another replica in sync.
    private mutating func carryOn(_ task: MoveRecord, nowMs: Int64) throws(ShoalError) {
        guard task.taskKind == .move, task.cancelRequestedMs == nil, let state = collections[task.collection] else { return }
        guard let source = state.shards[Int(task.shard)].replicas.first(where: {
            $0.state == .ready && $0.nodeId != task.from && $0.nodeId != task.to
        }) else { return }
        let id = try addMove(collection: task.collection, shard: task.shard, from: source.nodeId, to: task.to, points: task.points,
                             nowMs: nowMs, validateNow: false, kind: .replicate, replaces: task.from)
        moves[task.id]?.retriedAs = id
    }

    /// Marks every in-sync replica on `node` stale whose shard keeps another in-sync
    /// replica (the others stay: a shard's last in-sync replica is never marked).
    public mutating func markStaleWhereSafe(on node: String, nowMs: Int64) {
        for name in collections.keys.sorted() {
            for shard in collections[name]!.shards where shard.replicas.contains(where: { $0.nodeId == node && $0.state == .ready }) {
                try? markStale(collection: name, shard: shard.shardId, node: node, nowMs: nowMs)
            }
        }
    }

    /// The tasks that would bring every shard back to its replication factor in sync,
    /// at most one per shard and none for a shard with an active move:
    /// - a STALE replica on a node in `up` catches up from an in-sync one;
    /// - otherwise a replica on a node in `lost` (down past the replica-loss timeout)
    ///   is replaced by a new one on the least loaded up node without one;
    /// - otherwise a shard with fewer replicas than its factor gets a new one.
    /// The source is an in-sync replica on a node in `up`; without one, nothing.
    /// Ordered by collection, then shard.
    public func replicaRepairs(up: Set<String>, lost: Set<String>) -> [PlannedMove] {
        var load = replicaCounts
        var planned: [PlannedMove] = []
        for name in collections.keys.sorted() {
            let collection = collections[name]!
            for shard in collection.shards {
                if moves.values.contains(where: { $0.isActive && $0.collection == name && $0.shard == shard.shardId }) { continue }
                let sources = shard.replicas.filter { $0.state == .ready && up.contains($0.nodeId) && !lost.contains($0.nodeId) }
                guard let source = sources.first else { continue }
                if let stale = shard.replicas.first(where: { $0.state == .stale && up.contains($0.nodeId) && !lost.contains($0.nodeId) }) {
                    planned.append(PlannedMove(collection: name, shard: shard.shardId, from: source.nodeId, to: stale.nodeId, points: 0, kind: .catchUp))
                    continue
                }
                let lostReplica = shard.replicas.first { lost.contains($0.nodeId) && $0.state != .retiring }
                let serving = shard.replicas.filter { $0.state != .retiring }.count
                guard lostReplica != nil || serving < Int(collection.config.replicationFactor) else { continue }
                let holders = Set(shard.replicas.map(\.nodeId))
                let candidates = nodes.values.filter { $0.state == .up && up.contains($0.id) && !lost.contains($0.id) && !holders.contains($0.id) }
                guard let target = candidates.min(by: { (load[$0.id] ?? 0, $0.id) < (load[$1.id] ?? 0, $1.id) }) else { continue }
                load[target.id, default: 0] += 1
                planned.append(PlannedMove(collection: name, shard: shard.shardId, from: source.nodeId, to: target.id, points: 0,
                                           kind: .replicate, replaces: lostReplica?.nodeId))
            }
        }
        return planned
    }
}
