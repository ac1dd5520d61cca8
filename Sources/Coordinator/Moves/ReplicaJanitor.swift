/// Drops the replicas nodes hold whose drop the metadata records as decided
/// (`ClusterState.dropIsDecided`): what a finished or rolled-back move left on a
/// node that was down then, and replicas of deleted collections. Any other
/// replica the metadata does not place is an orphan: kept, and listed by
/// `shoal admin orphans`. Runs while this coordinator leads, once when it starts
/// leading and then every so often, so such a replica goes soon after its node is back.
///
/// Each drop names the incarnation the node reported: if the shard is placed on
/// that node again meanwhile (a new move creates a new incarnation), the late
/// drop leaves the new replica alone.
public struct ReplicaJanitor: Sendable {
    let cluster: ClusterController

    public init(cluster: ClusterController) {
        self.cluster = cluster
    }

    /// One pass over what the nodes hold (`listing`, or asked now); returns how many
    /// replicas it dropped.
    @discardableResult
    func sweep(_ listing: [HeldReplicas]? = nil) async -> Int {
        let held = if let listing { listing } else { await cluster.heldReplicas() }
        return await cluster.drop(held, reason: "dropped a replica the metadata decided to drop") { state, node, replica in
            state.dropIsDecided(collection: replica.replica.collection, shard: replica.replica.shardID, incarnation: replica.incarnation,
                                on: node.id, uid: replica.config.uid)
        }
    }

    /// Sweeps every `interval` until the task is cancelled.
    public func run(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            guard cluster.leadership.currentTerm != nil else { continue }
            await sweep()
        }
    }
}
