import VectorCore

/// The state changes of a shard move, one per step of the move protocol. Each
/// validates, throws `ShoalError` (nothing changed) or applies the change and
/// bumps `epoch`. The placement is valid after every step.
extension ClusterState {
    /// Finished moves kept for `TaskStatus`; older ones are forgotten.
    public static let finishedMovesKept = 100

    /// The running move of a shard, if any (there is at most one).
    public func runningMove(collection: String, shard: UInt32) -> MoveRecord? {
        moves.values.first { $0.state == .running && $0.collection == collection && $0.shard == shard }
    }

    /// Moves in creation order.
    public var movesInOrder: [MoveRecord] { moves.values.sorted { $0.number < $1.number } }

    /// Checks that `collection`/`shard` can move from `from` to `to` now: the shard
    /// exists, `from` holds a READY replica of it, `to` is an up node without one,
    /// and no other move of the shard is active (a new move), or running (`starting`:
    /// the pending move of that id is about to start; pending ones queue behind it).
    ///
    /// A catch-up (`kind`) instead needs `to` to hold a STALE replica of the shard; a
    /// replicate, like a move, an up node `to` without one.
    public func validateMove(
        collection: String, shard: UInt32, from: String, to: String, starting: String? = nil, kind: MoveKind = .move
    ) throws(ShoalError) {
        guard let state = collections[collection] else { throw .notFound("collection \"\(collection)\" does not exist") }
        guard shard < state.config.shardCount else {
            throw .notFound("collection \(collection) has no shard \(shard) (it has \(state.config.shardCount))")
        }
        guard nodes[from].map({ $0.state != .removed }) == true else { throw .notFound("no node \(from)") }
        guard let target = nodes[to], target.state != .removed else { throw .notFound("no node \(to)") }
        guard from != to else { throw .invalidArgument("shard \(shard) of \(collection) is already on node \(to)") }
        let replicas = state.shards[Int(shard)].replicas
        guard replicas.contains(where: { $0.nodeId == from && $0.state == .ready }) else {
            throw .failedPrecondition("node \(from) holds no ready (in-sync) replica of shard \(shard) of \(collection)")
        }
        if kind == .catchUp {
            guard replicas.contains(where: { $0.nodeId == to && $0.state == .stale }) else {
                throw .failedPrecondition("node \(to) holds no stale replica of shard \(shard) of \(collection) to catch up")
            }
        } else {
            guard !replicas.contains(where: { $0.nodeId == to }) else {
                throw .failedPrecondition("node \(to) already holds a replica of shard \(shard) of \(collection)")
            }
            guard target.state == .up else { throw .failedPrecondition("node \(to) is \(target.state.rawValue): it takes no new replicas") }
        }
        let blocking = moves.values.first { other in
            other.collection == collection && other.shard == shard && other.id != starting
                && (starting == nil ? other.isActive : other.state == .running)
        }
        if let other = blocking {
            throw .failedPrecondition("shard \(shard) of \(collection) is already moving (\(other.id), \(other.state.rawValue))")
        }
    }

    /// Queues a move (state PENDING) and returns its id. With `validateNow`, the move
    /// must be possible in the current placement; a planned chain of moves (a
    /// rebalance) is validated step by step when each starts instead.
    public mutating func addMove(
        collection: String, shard: UInt32, from: String, to: String, points: UInt64, nowMs: Int64, validateNow: Bool,
        kind: MoveKind = .move, replaces: String? = nil
    ) throws(ShoalError) -> String {
        if validateNow { try validateMove(collection: collection, shard: shard, from: from, to: to, kind: kind) }
        let id = "move-\(nextMoveNumber)"
        var move = MoveRecord(id: id, collection: collection, shard: shard, from: from, to: to, points: points, nowMs: nowMs)
        if kind != .move { move.kind = kind }
        move.replaces = replaces
        moves[id] = move
        nextMoveNumber += 1
        epoch += 1
        return id
    }

    /// PENDING → RUNNING, phase CREATE_REPLICA, once the move is still possible.
    public mutating func startMove(_ id: String, nowMs: Int64) throws(ShoalError) {
        let move = try record(id)
        guard move.state == .pending else { throw .failedPrecondition("move \(id) is \(move.state.rawValue), not pending") }
        try validateMove(collection: move.collection, shard: move.shard, from: move.from, to: move.to, starting: id, kind: move.taskKind)
        try update(id, nowMs: nowMs) { $0.state = .running; $0.phase = .createReplica }
    }

    /// CREATE_REPLICA → COPY_RECORDS: the target replica (of `targetIncarnation`, as
    /// the target node created it) joins the placement as CATCHING_UP, so writes from
    /// now on go to both replicas. A catch-up's target is placed already (STALE): it
    /// becomes CATCHING_UP, and copies only records of at least `minVersion`.
    public mutating func beginDualWrite(
        _ id: String, targetIncarnation: UInt32, sourceIncarnation: UInt32? = nil, minVersion: UInt64? = nil, nowMs: Int64
    ) throws(ShoalError) {
        let move = try running(id, in: [.createReplica])
        var replicas = try replicas(of: move)
        if let i = replicas.firstIndex(where: { $0.nodeId == move.to }) {
            if move.taskKind == .catchUp {
                replicas[i].state = .catchingUp
                replicas[i].catchUpFloor = min(replicas[i].catchUpFloor ?? .max, minVersion ?? 0)
            }
        } else {
            replicas.append(Replica(nodeId: move.to, state: .catchingUp))
        }
        try setReplicas(collection: move.collection, shard: move.shard, replicas)
        try update(id, nowMs: nowMs) {
            $0.phase = .copyRecords
            $0.targetIncarnation = targetIncarnation
            $0.sourceIncarnation = sourceIncarnation
            $0.minVersion = minVersion
        }
    }

    /// Records a phase change that does not touch the placement (COPY_RECORDS →
    /// CATCH_UP, SWITCH_READS → DROP_SOURCE), or a finished copy pass's counts.
    public mutating func setMovePhase(_ id: String, _ phase: MovePhase, copied: UInt64? = nil, total: UInt64? = nil, nowMs: Int64) throws(ShoalError) {
        _ = try running(id, in: MovePhase.allCases)
        try update(id, nowMs: nowMs) { move in
            move.phase = phase
            if let copied { move.recordsCopied = copied }
            if let total { move.recordsTotal = total }
        }
    }

    /// Records that a write to `id`'s copying target failed while its source took it,
    /// before that write is acknowledged: the next copy pass brings the write, and reads
    /// do not switch to the target before that pass (`switchReads` checks the count).
    /// Once reads have switched, the target leaves the in-sync set instead. A move that
    /// has ended needs nothing (no change).
    public mutating func recordMissedWrite(_ id: String, nowMs: Int64) throws(ShoalError) {
        guard let move = moves[id], move.state == .running else { return }
        if move.phase >= .switchReads {
            // The target serves reads now: it leaves the in-sync set instead (UNAVAILABLE
            // if it is the only replica in sync, as after a move's switch at RF 1).
            try markStale(collection: move.collection, shard: move.shard, node: move.to, nowMs: nowMs)
            return
        }
        guard move.phase == .copyRecords || move.phase == .catchUp else {
            throw .unavailable("shard \(move.shard) of \(move.collection) is moving to node \(move.to), which did not take this write; try again")
        }
        try update(id, nowMs: nowMs) { $0.missedWrites = $0.misses + 1 }
    }

    /// CATCH_UP → SWITCH_READS: the target becomes READY (reads go there); a move's
    /// source becomes RETIRING (no reads, no writes), a replicate's lost replica leaves
    /// the placement. The point of no return. With `expectedMisses`: ABORTED if the
    /// target has missed more writes since (the last copy pass lacks them: copy again).
    public mutating func switchReads(_ id: String, expectedMisses: UInt64? = nil, nowMs: Int64) throws(ShoalError) {
        let move = try running(id, in: [.catchUp, .switchReads])
        guard move.phase == .catchUp else { return }
        if move.cancelRequestedMs != nil {
            throw .failedPrecondition("move \(id) was cancelled: it rolls back instead of switching reads")
        }
        if let expectedMisses, move.misses != expectedMisses {
            throw ShoalError(.aborted, "the target of \(id) missed writes since its last copy pass")
        }
        let replicas = try replicas(of: move).compactMap { replica -> Replica? in
            switch replica.nodeId {
            case move.to: Replica(nodeId: replica.nodeId, state: .ready)
            case move.from where move.taskKind == .move: Replica(nodeId: replica.nodeId, state: .retiring)
            case move.replaces where move.taskKind == .replicate: nil
            default: replica
            }
        }
        try setReplicas(collection: move.collection, shard: move.shard, replicas)
        try update(id, nowMs: nowMs) { $0.phase = .switchReads }
    }

    /// DROP_SOURCE → DONE: a move's source leaves the placement (a catch-up's and a
    /// replicate's stays).
    public mutating func completeMove(_ id: String, nowMs: Int64) throws(ShoalError) {
        let move = try running(id, in: [.switchReads, .dropSource])
        if move.taskKind == .move {
            try setReplicas(collection: move.collection, shard: move.shard, try replicas(of: move).filter { $0.nodeId != move.from })
        }
        try update(id, nowMs: nowMs) { $0.state = .done; $0.phase = .dropSource }
        pruneFinishedMoves()
    }

    /// Asks a running move to roll back: it does so at its next check, and can no
    /// longer switch reads. FAILED_PRECONDITION once it has switched them.
    public mutating func requestCancel(_ id: String, nowMs: Int64) throws(ShoalError) {
        let move = try record(id)
        guard move.state == .running else { throw .failedPrecondition("move \(id) is \(move.state.rawValue), not running") }
        guard move.phase < .switchReads else {
            throw .failedPrecondition("move \(id) has switched reads to node \(move.to); it can only finish")
        }
        try update(id, nowMs: nowMs) { $0.cancelRequestedMs = $0.cancelRequestedMs ?? nowMs }
    }

    /// Ends every active move of `collection` as FAILED (the collection is going):
    /// their executions stop at their next step.
    mutating func endMoves(ofCollection collection: String, nowMs: Int64) {
        for move in moves.values where move.isActive && move.collection == collection {
            moves[move.id]?.state = .failed
            moves[move.id]?.error = "collection \(collection) was deleted"
            moves[move.id]?.updatedMs = nowMs
            moves[move.id]?.finishedEpoch = epoch + 1
        }
        pruneFinishedMoves()
    }

    /// Ends a move that has not switched reads: the target leaves the placement (if
    /// it joined), the source stays as it was; a catch-up's target is STALE again.
    /// `state` is `.failed` or `.rolledBack`.
    public mutating func rollBackMove(_ id: String, as state: MoveState, error: String, nowMs: Int64) throws(ShoalError) {
        precondition(state == .failed || state == .rolledBack)
        let move = try record(id)
        guard move.isActive else { throw .failedPrecondition("move \(id) already finished (\(move.state.rawValue))") }
        guard move.state == .pending || move.phase < .switchReads else {
            throw .failedPrecondition("move \(id) has switched reads to node \(move.to); it can only finish")
        }
        if move.state == .running, collections[move.collection] != nil {
            var replicas = try replicas(of: move)
            if move.taskKind == .catchUp {
                if let i = replicas.firstIndex(where: { $0.nodeId == move.to && $0.state == .catchingUp }) {
                    replicas[i].state = .stale
                    try setReplicas(collection: move.collection, shard: move.shard, replicas)
                }
            } else if replicas.contains(where: { $0.nodeId == move.to }) {
                try setReplicas(collection: move.collection, shard: move.shard, replicas.filter { $0.nodeId != move.to })
            }
        }
        try update(id, nowMs: nowMs) { $0.state = state; $0.error = error }
        pruneFinishedMoves()
    }

    /// Whether the metadata records a decision to drop the replica of
    /// `collection`/`shard` of `incarnation` that `node` holds (recording collection
    /// incarnation `uid`): the move that made it there failed or rolled back, the move
    /// that took the shard off that node finished, or that very incarnation of the
    /// collection was deleted (and the name not used again). Nothing
    /// else is dropped: a replica the metadata does not place for any other reason
    /// (a lost or restored-from-backup state) is an orphan, kept and listed.
    public func dropIsDecided(collection: String, shard: UInt32, incarnation: UInt32, on node: String, uid: String? = nil) -> Bool {
        guard needsRecover == nil else { return false }  // metadata older than the nodes decides nothing
        if collections[collection] == nil {
            guard let deleted = deletedCollections[collection], let uid, !uid.isEmpty else { return false }
            return deleted.uid == uid
        }
        guard !isPlaced(collection: collection, shard: shard, on: node) else { return false }
        let mine = moves.values.filter { $0.collection == collection && $0.shard == shard && $0.endedByRecover != true }
        // A replica that an ended move created and left behind is named by its
        // incarnation, which its node never gives another replica: that decision
        // holds whatever else runs now (such as a retry of the move to the same node).
        if mine.contains(where: { $0.abandoned(incarnation, on: node) }) { return true }
        if mine.contains(where: { $0.isActive && $0.to == node }) { return false }
        return mine.contains { move in
            switch (move.state, move.taskKind) {
            case (.done, .move): move.from == node && move.sourceIncarnation == incarnation
            // The replaced replica's incarnation was unknown (its node was down): the
            // decision covers what the node held then, not a replica put there later.
            case (.done, .replicate): move.replaces == node && !mine.contains { $0.number > move.number && ($0.to == node || $0.from == node) }
            case (.done, .catchUp): false
            case (.failed, _), (.rolledBack, _), (.pending, _), (.running, _): false
            }
        }
    }

    /// Whether a replica `node` holds is an orphan: the metadata neither places it,
    /// nor has an active move making it there, nor records a decision to drop it.
    public func isOrphan(collection: String, shard: UInt32, incarnation: UInt32, on node: String, uid: String? = nil) -> Bool {
        if isPlaced(collection: collection, shard: shard, on: node) { return false }
        if moves.values.contains(where: { $0.isActive && $0.to == node && $0.collection == collection && $0.shard == shard }) { return false }
        return !dropIsDecided(collection: collection, shard: shard, incarnation: incarnation, on: node, uid: uid)
    }

    /// Whether the placement puts a replica of `collection`/`shard` on `node`.
    public func isPlaced(collection: String, shard: UInt32, on node: String) -> Bool {
        placedReplica(collection: collection, shard: shard, on: node) != nil
    }

    /// The placed replica of `collection`/`shard` on `node`, if any.
    public func placedReplica(collection: String, shard: UInt32, on node: String) -> Replica? {
        guard let state = collections[collection], shard < state.config.shardCount else { return nil }
        return state.shards[Int(shard)].replicas.first { $0.nodeId == node }
    }

    // MARK: helpers

    private func record(_ id: String) throws(ShoalError) -> MoveRecord {
        guard let move = moves[id] else { throw .notFound("no move \(id)") }
        return move
    }

    private func running(_ id: String, in phases: [MovePhase]) throws(ShoalError) -> MoveRecord {
        let move = try record(id)
        guard move.state == .running, phases.contains(move.phase) else {
            throw .failedPrecondition("move \(id) is \(move.state.rawValue) in phase \(move.phase.rawValue)")
        }
        return move
    }

    private func replicas(of move: MoveRecord) throws(ShoalError) -> [Replica] {
        guard let collection = collections[move.collection], move.shard < collection.config.shardCount else {
            throw .notFound("collection \(move.collection) (of \(move.id)) no longer exists")
        }
        return collection.shards[Int(move.shard)].replicas
    }

    private mutating func update(_ id: String, nowMs: Int64, _ change: (inout MoveRecord) -> Void) throws(ShoalError) {
        guard var move = moves[id] else { throw .notFound("no move \(id)") }
        change(&move)
        move.updatedMs = nowMs
        if !move.isActive && move.finishedEpoch == nil { move.finishedEpoch = epoch + 1 }
        moves[id] = move
        epoch += 1
    }

    /// Keeps the `finishedMovesKept` most recently finished moves, by the epoch they
    /// finished at (a move that has just finished is always among them).
    private mutating func pruneFinishedMoves() {
        // By the epoch they finished at, not by wall-clock time: a coordinator whose clock
        // is behind must not make recent records (and the drop decisions they carry) look old.
        let finished = moves.values.filter { !$0.isActive }.sorted {
            ($0.finishedEpoch ?? 0, $0.number) > ($1.finishedEpoch ?? 0, $1.number)
        }
        for old in finished.dropFirst(Self.finishedMovesKept) { moves[old.id] = nil }
    }
}
