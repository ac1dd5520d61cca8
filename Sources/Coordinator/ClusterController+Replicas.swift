import Logging
import ShoalProto
import ShoalRPC
import VectorCore

/// What one node reported holding.
struct HeldReplicas: Sendable {
    let node: NodeInfo
    let replicas: [Shoal_V1_ReplicaStats]
    /// Replicas the node could not load at start (kept, not served).
    var setAside: [Shoal_V1_SetAsideReplica] = []
}

/// The replicas the nodes actually hold, and dropping those nothing should keep:
/// shared by the replica janitor, the coordinator's start and collection deletes.
extension ClusterController {
    /// Every replica each node (not removed) holds, asked now; a node that does not
    /// answer within 5 s is left out.
    nonisolated func heldReplicas() async -> [HeldReplicas] {
        var listing: [HeldReplicas] = []
        for node in snapshot.nodes.values.sorted(by: { $0.id < $1.id }) where node.state != .removed {
            guard let stats = try? await nodes.transport(for: node.address).call(ShardRPC.stats, Shoal_V1_StatsRequest(), timeout: .seconds(5))
            else { continue }
            listing.append(HeldReplicas(node: node, replicas: stats.replicas, setAside: stats.setAside))
        }
        return listing
    }

    /// Tells every node this coordinator's term (a Stats call carrying it), so a node
    /// refuses the commands of an older leader from now on, even before this one
    /// sends it anything else. A node that does not answer learns it later.
    nonisolated func announceTerm() async {
        guard let term = leadership.currentTerm, term > 0 else { return }
        await withTaskGroup(of: Void.self) { group in
            for node in snapshot.nodes.values where node.state != .removed {
                group.addTask {
                    _ = try? await self.nodes.transport(for: node.address).call(ShardRPC.stats, .with { $0.term = UInt64(term) }, timeout: .seconds(3))
                }
            }
        }
    }

    /// Drops the listed replicas that `pick` chooses, judged against the state as of
    /// now (read after the listing: a replica placed since is seen placed). Each drop
    /// names the listed incarnation, so a later replica of the same name stays.
    /// Logs each drop as `reason`; returns how many were dropped.
    @discardableResult
    nonisolated func drop(
        _ listing: [HeldReplicas], reason: Logger.Message, where pick: (ClusterState, NodeInfo, Shoal_V1_ReplicaStats) -> Bool
    ) async -> Int {
        let state = snapshot
        var dropped = 0
        for held in listing {
            for replica in held.replicas where pick(state, held.node, replica) {
                guard let term = leadership.currentTerm else { return dropped }  // only the leader drops
                do {
                    let reply = try await nodes.transport(for: held.node.address).call(ShardRPC.dropReplica, .with {
                        $0.replica = replica.replica
                        $0.incarnation = replica.incarnation
                        $0.term = UInt64(term)
                    }, timeout: .seconds(30))
                    guard reply.dropped else { continue }
                    dropped += 1
                    logger.warning(reason, metadata: [
                        "node": "\(held.node.id)", "collection": "\(replica.replica.collection)", "shard": "\(replica.replica.shardID)",
                        "points": "\(replica.points)", "incarnation": "\(replica.incarnation)"])
                } catch {
                    logger.warning("could not drop a replica", metadata: [
                        "node": "\(held.node.id)", "collection": "\(replica.replica.collection)", "shard": "\(replica.replica.shardID)",
                        "error": "\(error)"])
                }
            }
        }
        return dropped
    }
}
