import Foundation
import GRPCBridge
import Logging
import ShoalProto
import ShoalRPC
import VectorCore

/// The operator's `shoal.v1.Admin` service. Health now; nodes, shard maps and moves
/// arrive with the admin issue.
public final class AdminService: Sendable {
    let cluster: ClusterController
    let name: String
    private let started = ContinuousClock.now

    public init(cluster: ClusterController, name: String) {
        self.cluster = cluster
        self.name = name
    }

    public func register(on server: Server) throws {
        try server.register(AdminRPC.health) { [self] _, _ in
            .with {
                $0.nodeID = "coordinator"
                $0.nodeName = name
                $0.status = .serving
                let up = ContinuousClock.now - started
                $0.uptimeMs = UInt64(up.components.seconds) * 1000 + UInt64(up.components.attoseconds / 1_000_000_000_000_000)
                $0.version = ShoalVersion.current
            }
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

