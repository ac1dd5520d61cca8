import Foundation
import GRPCBridge
import Logging
import ShoalProto
import ShoalRPC
import VectorCore

/// Starts a coordinator's services on `server`: loads the cluster state from
/// `dataDirectory`, registers the nodes at `nodeAddresses` (learning their ids),
/// moves the clock past every version the nodes hold, drops replicas no placement
/// names, and resumes unfinished shard moves.
public struct CoordinatorRuntime: Sendable {
    public let cluster: ClusterController
    public let vectorStore: VectorStoreService
    public let admin: AdminService
    public let scheduler: MoveScheduler

    public init(dataDirectory: String, name: String, logger: Logger, nodes: NodeDirectory = NodeDirectory(), moves: MoveOptions = MoveOptions()) throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        cluster = try ClusterController(store: try ClusterStateStore(directory: dataDirectory, logger: logger), nodes: nodes, logger: logger)
        let progress = MoveProgress()
        vectorStore = VectorStoreService(cluster: cluster, moves: progress, logger: logger)
        scheduler = MoveScheduler(cluster: cluster, progress: progress, options: moves, logger: logger)
        admin = AdminService(cluster: cluster, scheduler: scheduler, name: name)
    }

    public func register(on server: Server) throws {
        try vectorStore.register(on: server)
        try admin.register(on: server)
    }

    /// Joins every node (concurrently); a node that does not answer in `timeout` is
    /// logged and skipped. Then observes the nodes' largest versions, drops orphan
    /// replicas, and resumes the moves the state records as unfinished.
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
            await dropOrphans(on: node, held: stats.replicas.map(\.replica), logger: logger)
        }
        await scheduler.pump()
    }

    /// Drops the replicas of known collections that a node holds but the placement
    /// does not name and no active move is creating: what a move left when it
    /// finished or rolled back while that node was down. Replicas of collections the
    /// state does not know are left alone (a lost state file must not empty the
    /// nodes). Runs before any request or move, so nothing creates replicas meanwhile.
    private func dropOrphans(on node: NodeInfo, held: [Shoal_V1_ReplicaRef], logger: Logger) async {
        let state = cluster.snapshot
        for ref in held {
            guard let collection = state.collections[ref.collection] else { continue }
            let placed = ref.shardID < collection.config.shardCount
                && collection.shards[Int(ref.shardID)].replicas.contains { $0.nodeId == node.id }
            let moving = state.moves.values.contains { $0.isActive && $0.to == node.id && $0.collection == ref.collection && $0.shard == ref.shardID }
            guard !placed, !moving else { continue }
            do {
                _ = try await cluster.nodes.transport(for: node.address).call(ShardRPC.dropReplica, .with { $0.replica = ref }, timeout: .seconds(30))
                logger.warning("dropped a replica no placement names", metadata: [
                    "node": "\(node.id)", "collection": "\(ref.collection)", "shard": "\(ref.shardID)"])
            } catch {
                logger.warning("could not drop an orphan replica", metadata: ["node": "\(node.id)", "error": "\(error)"])
            }
        }
    }
}
