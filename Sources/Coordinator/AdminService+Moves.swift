import ShoalProto
import ShoalRPC
import VectorCore

/// MoveShard, Rebalance, DrainNode, TaskStatus: check the request against the
/// placement and the nodes' health, plan, and hand the moves to the scheduler.
extension AdminService {
    func moveShard(_ request: Shoal_V1_MoveShardRequest) async throws -> Shoal_V1_MoveShardResponse {
        guard !request.collection.isEmpty, !request.fromNodeID.isEmpty, !request.toNodeID.isEmpty else {
            throw ShoalError(.invalidArgument, "collection, from_node_id and to_node_id are required")
        }
        let state = cluster.snapshot
        try state.validateMove(collection: request.collection, shard: request.shardID, from: request.fromNodeID, to: request.toNodeID)
        let survey = await survey(state, collection: request.collection)
        for node in [request.fromNodeID, request.toNodeID] where survey.unreachable.contains(node) {
            throw ShoalError(.unavailable, "node \(node) (\(state.nodes[node]?.address ?? "?")) is down: it does not answer health checks")
        }
        let points = survey.shards.first { $0.collection == request.collection && $0.shard == request.shardID }?.points ?? 0
        let moves = try await scheduler.submit([PlannedMove(
            collection: request.collection, shard: request.shardID, from: request.fromNodeID, to: request.toNodeID, points: points)],
            validateNow: true)
        return .with { $0.task = task(moves[0]) }
    }

    func rebalance(_ request: Shoal_V1_RebalanceRequest) async throws -> Shoal_V1_RebalanceResponse {
        let state = cluster.snapshot
        if !request.collection.isEmpty, state.collections[request.collection] == nil {
            throw ShoalError(.notFound, "collection \"\(request.collection)\" does not exist")
        }
        if !request.dryRun { try refuseWhileMoving(state) }
        let survey = await survey(state, collection: request.collection)
        let planned = RebalancePlanner.plan(shards: survey.shards, nodes: survey.nodes)
        var started: [MoveRecord] = []
        if !request.dryRun, !planned.isEmpty {
            let concurrent = request.maxConcurrentMoves == 0 ? 1 : Int(request.maxConcurrentMoves)
            started = try await scheduler.submit(planned, validateNow: false, maxConcurrent: concurrent)
        }
        return .with {
            $0.moves = zip(planned.indices, planned).map { i, move in plan(move, taskID: started.indices.contains(i) ? started[i].id : "") }
            $0.loadBefore = Self.loads(survey.shards, nodes: survey.nodes)
            $0.loadAfter = Self.loads(Self.applying(planned, to: survey.shards), nodes: survey.nodes)
        }
    }

    /// Marks the node DRAINING and moves each of its replicas to the least-loaded
    /// active node that can take it, then evens out the active nodes (unless
    /// `dry_run`). The balancing moves are needed when the drained node's partners
    /// overlap: if one active node already holds every shard the drained node
    /// had, the evacuation alone can only fill the others.
    func drain(_ request: Shoal_V1_DrainNodeRequest) async throws -> Shoal_V1_DrainNodeResponse {
        let state = cluster.snapshot
        guard let node = state.nodes[request.nodeID], node.state != .removed else {
            throw ShoalError(.notFound, "no node \(request.nodeID)")
        }
        if let move = state.moves.values.first(where: { $0.isActive && ($0.from == node.id || $0.to == node.id) }) {
            throw ShoalError(.failedPrecondition, "node \(node.id) is part of \(move.id) (\(move.state.rawValue)); wait for it or cancel it")
        }
        var survey = await survey(state, collection: "")
        guard !survey.unreachable.contains(node.id) else {
            throw ShoalError(.unavailable, "node \(node.id) (\(node.address)) is down: its replicas cannot be copied; bring it back, or remove it with force")
        }
        survey.nodes = survey.nodes.map { $0.id == node.id ? NodeInfo(id: $0.id, address: $0.address, state: .draining) : $0 }
        let planned = RebalancePlanner.plan(shards: survey.shards, nodes: survey.nodes)
        let held = survey.shards.filter { $0.nodes.contains(node.id) }
        if let stuck = held.first(where: { shard in !planned.contains { $0.collection == shard.collection && $0.shard == shard.shard } }) {
            throw ShoalError(.failedPrecondition, "no active node can take shard \(stuck.shard) of \(stuck.collection) from node \(node.id); add a node first")
        }
        if request.dryRun { return .with { $0.moves = planned.map { plan($0, taskID: "") } } }
        try await cluster.commit { state throws(ShoalError) in try state.setNodeState(node.id, .draining) }
        let started = planned.isEmpty ? [] : try await scheduler.submit(planned, validateNow: false)
        return .with { $0.moves = zip(planned, started).map { plan($0, taskID: $1.id) } }
    }

    func taskStatus(_ request: Shoal_V1_TaskStatusRequest) async throws -> Shoal_V1_TaskStatusResponse {
        let state = cluster.snapshot
        if !request.taskID.isEmpty {
            guard let move = state.moves[request.taskID] else { throw ShoalError(.notFound, "no move \(request.taskID)") }
            return .with { $0.tasks = [task(move)] }
        }
        let moves = state.movesInOrder.reversed().filter { request.includeFinished || $0.isActive }
        return .with { $0.tasks = moves.map(task) }
    }

    /// A move as TaskStatus reports it; a running copy's progress is live.
    func task(_ move: MoveRecord) -> Shoal_V1_MoveTask {
        .with {
            $0.taskID = move.id
            $0.move = plan(PlannedMove(collection: move.collection, shard: move.shard, from: move.from, to: move.to, points: move.points), taskID: move.id)
            $0.state = move.state.proto
            $0.phase = move.phase.proto
            $0.recordsCopied = move.recordsCopied
            $0.recordsTotal = move.recordsTotal
            if move.state == .running, move.phase <= .catchUp, let live = scheduler.progress.copied(move.id) {
                $0.recordsCopied = live.copied
                $0.recordsTotal = live.total
            }
            $0.createdUnixMs = move.createdMs
            $0.updatedUnixMs = move.updatedMs
            $0.error = move.error
            $0.kind = move.taskKind.rawValue
            $0.retriedAs = move.retriedAs ?? ""
        }
    }

    // MARK: helpers

    private func plan(_ move: PlannedMove, taskID: String) -> Shoal_V1_MovePlan {
        .with {
            $0.collection = move.collection
            $0.shardID = move.shard
            $0.fromNodeID = move.from
            $0.toNodeID = move.to
            $0.pointCount = move.points
            $0.taskID = taskID
        }
    }

    private func refuseWhileMoving(_ state: ClusterState) throws {
        let active = state.moves.values.filter(\.isActive)
        guard active.isEmpty else {
            throw ShoalError(.failedPrecondition, "\(active.count) moves are still pending or running; wait for them (shoal admin status) or cancel them")
        }
    }

    /// What the planners need, asked of the nodes now: every shard of `collection`
    /// (empty: all) with its points, and the nodes that can take part. A node that
    /// does not answer is left out, and so are the shards it holds (they cannot be
    /// copied from it).
    private func survey(_ state: ClusterState, collection: String) async -> (shards: [ShardLoad], nodes: [NodeInfo], unreachable: Set<String>) {
        let members = state.nodes.values.filter { $0.state != .removed }
        let nodes = cluster.nodes
        let stats = await withTaskGroup(of: (String, Shoal_V1_StatsResponse?).self) { group in
            for node in members {
                group.addTask {
                    (node.id, try? await nodes.transport(for: node.address).call(ShardRPC.stats, Shoal_V1_StatsRequest(), timeout: .seconds(3)))
                }
            }
            var all: [String: Shoal_V1_StatsResponse] = [:]
            for await (id, reply) in group { if let reply { all[id] = reply } }
            return all
        }
        let unreachable = Set(members.map(\.id)).subtracting(stats.keys)
        var shards: [ShardLoad] = []
        for (name, state) in state.collections where collection.isEmpty || name == collection {
            for shard in state.shards {
                let holders = shard.replicas.map(\.nodeId)
                guard !holders.isEmpty, holders.allSatisfy({ !unreachable.contains($0) }) else { continue }
                let reader = shard.readable.first?.nodeId ?? holders[0]
                let points = stats[reader]?.replicas.first { $0.replica.collection == name && $0.replica.shardID == shard.shardId }?.points ?? 0
                shards.append(ShardLoad(collection: name, shard: shard.shardId, points: points, nodes: holders))
            }
        }
        return (shards, members.filter { !unreachable.contains($0.id) }, unreachable)
    }

    private static func applying(_ moves: [PlannedMove], to shards: [ShardLoad]) -> [ShardLoad] {
        var shards = shards
        for move in moves {
            guard let i = shards.firstIndex(where: { $0.collection == move.collection && $0.shard == move.shard }) else { continue }
            shards[i].nodes = shards[i].nodes.map { $0 == move.from ? move.to : $0 }
        }
        return shards
    }

    private static func loads(_ shards: [ShardLoad], nodes: [NodeInfo]) -> [Shoal_V1_NodeLoad] {
        nodes.map(\.id).sorted().map { id in
            let held = shards.filter { $0.nodes.contains(id) }
            return .with {
                $0.nodeID = id
                $0.pointCount = held.reduce(0) { $0 + $1.points }
                $0.replicaCount = UInt32(held.count)
            }
        }
    }
}

extension MoveState {
    var proto: Shoal_V1_TaskState {
        switch self {
        case .pending: .pending
        case .running: .running
        case .done: .done
        case .failed: .failed
        case .rolledBack: .rolledBack
        }
    }
}

extension MovePhase {
    var proto: Shoal_V1_MovePhase {
        switch self {
        case .createReplica: .createReplica
        case .copyRecords: .copyRecords
        case .catchUp: .catchUp
        case .switchReads: .switchReads
        case .dropSource: .dropSource
        }
    }
}
