import Foundation
import GRPCBridge
import Logging
import ShoalProto
import ShoalRPC
import VectorCore

/// The operator's `shoal.v1.Admin` service: Health, ListNodes and ShardMap (read-only).
/// Adding, draining and removing nodes, moves and rebalancing arrive with the admin issue.
public final class AdminService: Sendable {
    let cluster: ClusterController
    let name: String
    private let started = ContinuousClock.now

    public init(cluster: ClusterController, name: String) {
        self.cluster = cluster
        self.name = name
    }

    public func register(on server: Server) throws {
        try server.register(AdminRPC.listNodes) { [self] _, _ in try await listNodes() }
        try server.register(AdminRPC.shardMap) { [self] request, _ in try await shardMap(request) }
        try server.register(AdminRPC.health) { [self] _, _ in .serving(id: "coordinator", name: name, since: started) }
    }
}

extension AdminService {
    /// Every node with its state as seen now: a node that does not answer Health within
    /// two seconds is UNREACHABLE; points are summed from its replicas' stats.
    func listNodes() async throws -> Shoal_V1_ListNodesResponse {
        let state = cluster.snapshot
        let counts = state.replicaCounts
        let nodes = cluster.nodes
        let infos = await withTaskGroup(of: Shoal_V1_NodeInfo.self) { group in
            for node in state.nodes.values where node.state != .removed {
                group.addTask {
                    var info = Shoal_V1_NodeInfo.with {
                        $0.nodeID = node.id
                        $0.address = node.address
                        $0.replicaCount = UInt32(counts[node.id] ?? 0)
                        $0.state = .unreachable
                    }
                    guard let transport = try? nodes.transport(for: node.address),
                          let health = try? await transport.call(ShardRPC.health, Shoal_V1_HealthRequest(), timeout: .seconds(2))
                    else { return info }
                    info.nodeName = health.nodeName
                    info.version = health.version
                    info.lastSeenUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
                    info.state = node.state == .draining ? .draining : .active
                    if let stats = try? await transport.call(ShardRPC.stats, Shoal_V1_StatsRequest(), timeout: .seconds(2)) {
                        info.pointCount = stats.replicas.reduce(0) { $0 + $1.points }
                    }
                    return info
                }
            }
            var all: [Shoal_V1_NodeInfo] = []
            for await info in group { all.append(info) }
            return all.sorted { $0.nodeID < $1.nodeID }
        }
        return .with { $0.nodes = infos }
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
        return .with {
            $0.shards = shards
            $0.epoch = state.epoch
        }
    }
}

/// Starts a coordinator's services on `server`: loads the cluster state from
/// `dataDirectory`, registers the nodes at `nodeAddresses` (learning their ids),
/// and moves the clock past every version the nodes hold.
public struct CoordinatorRuntime: Sendable {
    public let cluster: ClusterController
    public let vectorStore: VectorStoreService
    public let admin: AdminService

    public init(dataDirectory: String, name: String, logger: Logger, nodes: NodeDirectory = NodeDirectory()) throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        cluster = try ClusterController(store: try ClusterStateStore(directory: dataDirectory, logger: logger), nodes: nodes, logger: logger)
        vectorStore = VectorStoreService(cluster: cluster, logger: logger)
        admin = AdminService(cluster: cluster, name: name)
    }

    public func register(on server: Server) throws {
        try vectorStore.register(on: server)
        try admin.register(on: server)
    }

    /// Joins every node (concurrently); a node that does not answer in `timeout` is
    /// logged and skipped. Then observes the nodes' largest versions.
    public func join(_ nodeAddresses: [String], timeout: Duration, logger: Logger) async {
        await withTaskGroup(of: Void.self) { group in
            for address in nodeAddresses {
                group.addTask {
                    do { _ = try await cluster.join(address: address, timeout: timeout) } catch {
                        logger.error("node did not join", metadata: ["address": "\(address)", "error": "\(error)"])
                    }
                }
            }
        }
        for node in cluster.snapshot.nodes.values {
            guard let stats = try? await cluster.nodes.transport(for: node.address).call(ShardRPC.stats, Shoal_V1_StatsRequest(), timeout: .seconds(5)) else { continue }
            for replica in stats.replicas { vectorStore.clock.observe(HLCVersion(rawValue: replica.maxVersion)) }
        }
    }
}

