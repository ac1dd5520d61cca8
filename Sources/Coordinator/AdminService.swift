import Foundation
import Logging
import ShoalProto
import ShoalRPC
import VectorCore

/// The operator's `shoal.v1.Admin` service: nodes (list, add, drain, remove),
/// shard placement, shard moves (one at a time, or planned by Rebalance), which
/// `MoveScheduler` carries out, and the comparison and repair of replicas
/// (`AdminService+Verify.swift`).
public final class AdminService: Sendable {
    let cluster: ClusterController
    let scheduler: MoveScheduler
    let name: String
    private let started = ContinuousClock.now
    /// Why this process does not serve, if it does not (`shoal serve`: its embedded node's reason).
    let notServingReason: @Sendable () -> String?
    /// Every coordinator of the cluster (ListCoordinators); nil: this one alone, leading.
    let coordinators: (@Sendable () async throws -> Shoal_V1_ListCoordinatorsResponse)?
    private let startedMs = nowMs()

    public init(
        cluster: ClusterController, scheduler: MoveScheduler, name: String,
        coordinators: (@Sendable () async throws -> Shoal_V1_ListCoordinatorsResponse)? = nil,
        notServingReason: @escaping @Sendable () -> String? = { nil }
    ) {
        self.cluster = cluster
        self.scheduler = scheduler
        self.name = name
        self.coordinators = coordinators
        self.notServingReason = notServingReason
    }

    func coordinatorList() async throws -> Shoal_V1_ListCoordinatorsResponse {
        if let coordinators { return try await coordinators() }
        return .with { reply in
            reply.leader = name
            reply.coordinators = [.with {
                $0.name = name
                $0.address = name
                $0.role = .leader
                $0.startedUnixMs = startedMs
                $0.revision = cluster.stored.revision
            }]
        }
    }

    public func register(on server: any HandlerRegistry) throws {
        try server.register(AdminRPC.listNodes) { [self] _, _ in try await listNodes() }
        try server.registerLed(AdminRPC.addNode, cluster: cluster) { [self] request, _ in
            let node = try await cluster.addNode(address: request.address)
            let info = await nodeInfo(node, replicas: cluster.snapshot.replicaCounts[node.id] ?? 0)
            return .with { $0.node = info }
        }
        try server.registerLed(AdminRPC.removeNode, cluster: cluster) { [self] request, _ in
            try await cluster.commit { state throws(ShoalError) in
                try state.removeNode(request.nodeID, force: request.force, acceptDataLoss: request.acceptDataLoss)
            }
            return Shoal_V1_RemoveNodeResponse()
        }
        try server.registerLed(AdminRPC.drainNode, cluster: cluster) { [self] request, _ in try await drain(request) }
        try server.register(AdminRPC.shardMap) { [self] request, _ in try await shardMap(request) }
        try server.registerLed(AdminRPC.moveShard, cluster: cluster) { [self] request, _ in try await moveShard(request) }
        try server.registerLed(AdminRPC.rebalance, cluster: cluster) { [self] request, _ in try await rebalance(request) }
        try server.registerLed(AdminRPC.taskStatus, cluster: cluster) { [self] request, _ in try await taskStatus(request) }
        try server.registerLed(AdminRPC.cancelMove, cluster: cluster) { [self] request, _ in
            let move = try await scheduler.cancel(request.taskID)
            return .with { $0.task = task(move) }
        }
        try registerMetadata(on: server)
        try registerVerify(on: server)
        try server.register(AdminRPC.health, limited: false) { [self] _, _ in
            .health(id: "coordinator", name: name, since: started, notServing: notServingReason())
        }
    }
}

extension AdminService {
    /// Every node with its state as seen now: a node that does not answer Health within
    /// two seconds is UNREACHABLE; points are summed from its replicas' stats.
    func listNodes() async throws -> Shoal_V1_ListNodesResponse {
        let state = cluster.snapshot
        let counts = state.replicaCounts
        let infos = await withTaskGroup(of: Shoal_V1_NodeInfo.self) { group in
            for node in state.nodes.values where node.state != .removed {
                group.addTask { await self.nodeInfo(node, replicas: counts[node.id] ?? 0) }
            }
            var all: [Shoal_V1_NodeInfo] = []
            for await info in group { all.append(info) }
            return all.sorted { $0.nodeID < $1.nodeID }
        }
        return .with { $0.nodes = infos }
    }

    /// One node as ListNodes reports it, health-checked now.
    func nodeInfo(_ node: NodeInfo, replicas: Int) async -> Shoal_V1_NodeInfo {
        var info = Shoal_V1_NodeInfo.with {
            $0.nodeID = node.id
            $0.address = node.address
            $0.replicaCount = UInt32(replicas)
            $0.state = .unreachable
            $0.health = cluster.health.state(of: node.id).proto
        }
        guard let transport = try? cluster.nodes.transport(for: node.address),
              let health = try? await transport.call(ShardRPC.health, Shoal_V1_HealthRequest(), timeout: .seconds(2))
        else { return info }
        info.nodeName = health.nodeName
        info.version = health.version
        info.lastSeenUnixMs = nowMs()
        info.state = node.state == .draining ? .draining : .active
        if let stats = try? await transport.call(ShardRPC.stats, Shoal_V1_StatsRequest(), timeout: .seconds(2)) {
            info.pointCount = stats.replicas.reduce(0) { $0 + $1.points }
        }
        return info
    }

    /// Where every shard of one collection (or of all) lives, with the state's epoch.
    func shardMap(_ request: Shoal_V1_ShardMapRequest) async throws -> Shoal_V1_ShardMapResponse {
        let state = cluster.snapshot
        let names = request.collection.isEmpty ? state.collections.keys.sorted() : [request.collection]
        var shards: [Shoal_V1_ShardPlacement] = []
        for name in names {
            guard let placements = state.shardPlacements(of: name) else {
                throw ShoalError(.notFound, "collection \"\(name)\" does not exist")
            }
            shards += placements
        }
        let setAside = await setAsideReplicas(state).filter { request.collection.isEmpty || $0.collection == request.collection }
        return .with {
            $0.shards = shards
            $0.epoch = state.epoch
            $0.setAside = setAside
        }
    }

    /// The replicas each node that answers within 3 s has set aside at start.
    func setAsideReplicas(_ state: ClusterState) async -> [Shoal_V1_SetAsideReplicaInfo] {
        let nodes = cluster.nodes
        return await withTaskGroup(of: [Shoal_V1_SetAsideReplicaInfo].self) { group in
            for node in state.nodes.values where node.state != .removed {
                group.addTask {
                    guard let stats = try? await nodes.transport(for: node.address).call(ShardRPC.stats, Shoal_V1_StatsRequest(), timeout: .seconds(3))
                    else { return [] }
                    return stats.setAside.map { aside in
                        .with {
                            $0.nodeID = node.id
                            $0.collection = aside.replica.collection
                            $0.shardID = aside.replica.shardID
                            $0.incarnation = aside.incarnation
                            $0.reason = aside.reason
                        }
                    }
                }
            }
            var all: [Shoal_V1_SetAsideReplicaInfo] = []
            for await part in group { all += part }
            return all.sorted { ($0.collection, $0.shardID, $0.nodeID) < ($1.collection, $1.shardID, $1.nodeID) }
        }
    }
}
