import Foundation
import GRPCBridge
import Logging
import ShoalProto
import ShoalRPC
import VectorCore

/// The `shoal.v1.Shard` service of one node. Today it answers Health; replicas,
/// writes and search arrive with the shard-node issue.
public final class NodeService: Sendable {
    public let name: String
    public let nodeID: String
    private let started = ContinuousClock.now
    private let logger: Logger

    /// - Parameters:
    ///   - dataDirectory: the node's folder; its stable id is kept in `node-id` there.
    public init(name: String, dataDirectory: URL, logger: Logger) throws {
        self.name = name
        self.logger = logger
        self.nodeID = try Self.loadOrCreateID(in: dataDirectory)
    }

    public func register(on server: Server) throws {
        try server.register(ShardRPC.health) { [self] _, _ in health() }
    }

    func health() -> Shoal_V1_HealthResponse {
        var reply = Shoal_V1_HealthResponse()
        reply.nodeID = nodeID
        reply.nodeName = name
        reply.status = .serving
        let up = ContinuousClock.now - started
        reply.uptimeMs = UInt64(up.components.seconds) * 1000 + UInt64(up.components.attoseconds / 1_000_000_000_000_000)
        reply.version = ShoalVersion.current
        return reply
    }

    /// A node keeps one id for life, written once into its data folder.
    private static func loadOrCreateID(in directory: URL) throws -> String {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("node-id")
        if let existing = try? String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
           !existing.isEmpty {
            return existing
        }
        let id = UUID().uuidString.lowercased()
        try Data(id.utf8).write(to: file, options: .atomic)
        return id
    }
}
