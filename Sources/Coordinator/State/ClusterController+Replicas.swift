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
    /// The highest leader term the node has seen.
    var highestTerm: UInt64 = 0

    /// Whether the node holds a replica (served or set aside) of `collection`/`shard`.
    func holds(_ collection: String, _ shard: UInt32) -> Bool {
        replicas.contains { $0.replica.collection == collection && $0.replica.shardID == shard }
            || setAside.contains { $0.replica.collection == collection && $0.replica.shardID == shard }
    }
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
            listing.append(HeldReplicas(node: node, replicas: stats.replicas, setAside: stats.setAside, highestTerm: stats.highestTerm))
        }
        return listing
    }

    /// Takes up the lead against what the nodes report (`listing`): raises this
    /// leader's command term past every term a node has seen, then tells every node
    /// that term (a Stats call carrying it), so a node refuses an older leader's
    /// commands from now on, even before this one sends it anything else. If a node
    /// holds a placement fence above the metadata's epoch, the metadata is older
    /// than what the nodes have seen (etcd lost or restored from an older snapshot):
    /// the epoch is raised past the fences (so requests are served again) and the
    /// state is marked as needing `shoal admin recover`, which blocks moves and the
    /// janitor's drops until it runs. A node that does not answer learns the term later.
    nonisolated func takeUpLead(_ listing: [HeldReplicas]) async {
        guard let term = leadership.currentTerm, term > 0 else { return }
        if let seen = listing.map(\.highestTerm).max() { raiseCommandTerm(above: seen) }
        guard let command = try? commandTerm() else { return }
        await withTaskGroup(of: Void.self) { group in
            for node in snapshot.nodes.values where node.state != .removed {
                group.addTask {
                    _ = try? await self.nodes.transport(for: node.address).call(ShardRPC.stats, .with { $0.term = command }, timeout: .seconds(3))
                }
            }
        }
        let fence = listing.flatMap(\.replicas).map(\.minEpoch).max() ?? 0
        guard fence > snapshot.epoch else { return }  // a fence at the current epoch is a move's, as it should be
        do {
            try await commit { state throws(ShoalError) in
                guard fence > state.epoch else { return }
                state.markBehindNodes(fence: fence, reason: "the nodes hold placement fences up to epoch \(fence), beyond this metadata's epoch \(state.epoch): the cluster metadata is older than what the nodes have seen (etcd lost or restored from an older snapshot); run `shoal admin recover`")
            }
            logger.error("the cluster metadata is older than what the nodes have seen; moves and replica drops wait for `shoal admin recover`",
                         metadata: ["fence": "\(fence)"])
        } catch {
            logger.error("could not record that the metadata is behind the nodes", metadata: ["error": "\(error)"])
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
                guard let term = try? commandTerm() else { return dropped }  // only the leader drops
                do {
                    let reply = try await nodes.transport(for: held.node.address).call(ShardRPC.dropReplica, .with {
                        $0.replica = replica.replica
                        $0.incarnation = replica.incarnation
                        $0.term = term
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
