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

    public init(cluster: ClusterController) {
        self.cluster = cluster
    }

    /// One pass over what the nodes hold (`listing`, or asked now); returns how many
    /// replicas it dropped.
    @discardableResult
    func sweep(_ listing: [HeldReplicas]? = nil) async -> Int {
        let held = if let listing { listing } else { await cluster.heldReplicas() }
        return await cluster.drop(held, reason: "dropped a replica no placement names") { state, node, ref in
            state.isOrphan(collection: ref.collection, shard: ref.shardID, on: node.id)
        }
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
