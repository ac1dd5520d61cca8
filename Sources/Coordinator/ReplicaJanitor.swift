import Logging
import ShoalProto
import ShoalRPC
import VectorCore

/// Drops the replicas nodes hold that nothing needs (`ClusterState.isOrphan`):
/// what a move left on a node that was down when it finished or rolled back.
/// Runs once when the coordinator starts and then every so often, so such a
/// replica goes soon after its node is back.
///
/// Each drop names the incarnation the node reported: if the shard is placed on
/// that node again meanwhile (a new move creates a new incarnation), the late
/// drop leaves the new replica alone.
public struct ReplicaJanitor: Sendable {
    let cluster: ClusterController
    let logger: Logger

    public init(cluster: ClusterController, logger: Logger) {
        self.cluster = cluster
        self.logger = logger
    }

    /// One pass over the nodes that answer; returns how many replicas it dropped.
    @discardableResult
    public func sweep() async -> Int {
        var dropped = 0
        for node in cluster.snapshot.nodes.values.sorted(by: { $0.id < $1.id }) where node.state != .removed {
            guard let transport = try? cluster.nodes.transport(for: node.address),
                  let held = try? await transport.call(ShardRPC.stats, Shoal_V1_StatsRequest(), timeout: .seconds(5)).replicas
            else { continue }
            let state = cluster.snapshot  // read after the node's list: a replica placed since is not an orphan
            for replica in held where state.isOrphan(collection: replica.replica.collection, shard: replica.replica.shardID, on: node.id) {
                do {
                    let reply = try await transport.call(ShardRPC.dropReplica, .with {
                        $0.replica = replica.replica
                        $0.incarnation = replica.incarnation
                    }, timeout: .seconds(30))
                    guard reply.dropped else { continue }
                    dropped += 1
                    logger.warning("dropped a replica no placement names", metadata: [
                        "node": "\(node.id)", "collection": "\(replica.replica.collection)", "shard": "\(replica.replica.shardID)",
                        "points": "\(replica.points)", "incarnation": "\(replica.incarnation)"])
                } catch {
                    logger.warning("could not drop an orphan replica", metadata: ["node": "\(node.id)", "error": "\(error)"])
                }
            }
        }
        return dropped
    }

    /// Sweeps every `interval` until the task is cancelled.
    public func run(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            await sweep()
        }
    }
}
