import VectorCore

/// Places the shards of a new collection on the live nodes.
///
/// Contract of `plan(shardCount:replicationFactor:nodes:load:)`:
/// - only nodes in state `.up` take replicas;
/// - every shard gets `replicationFactor` replicas on distinct nodes, all
///   `.ready` (a new collection is empty: nothing to catch up);
/// - each replica goes to the node with the fewest replicas so far (the
///   existing `load` plus what this plan already assigned), ties broken by
///   node id: on an empty cluster this is round-robin, and on an uneven one
///   new shards fill the emptiest nodes first;
/// - deterministic: the same input gives the same plan.
public enum PlacementPlanner {
    /// Shards per live node when a collection does not say.
    public static let defaultShardsPerNode = 2
    /// Upper bound of the default shard count.
    public static let maxDefaultShardCount: UInt32 = 64

    /// The replication factor of a collection created without one: 1 on a single
    /// live node, 2 on more (a node can then fail without taking data offline).
    public static func defaultReplicationFactor(liveNodes: Int) -> UInt32 { liveNodes >= 2 ? 2 : 1 }

    /// The shard count for a collection created without one: two per live
    /// node (at least 1, at most 64).
    ///
    /// Why two: a shard is the unit of moving, so a collection needs more
    /// shards than nodes for a rebalance to even out load when a node joins
    /// (with 3 nodes and 6 shards a 4th node can take 1–2 shards; with 3
    /// shards it could take only a whole node's share). More shards cost
    /// fan-out and a per-shard top-k on every search, so the factor stays
    /// small. Qdrant defaults to one shard per node and Milvus to one shard
    /// per collection; both let users re-shard, which Shoal does not (the
    /// count is fixed at creation), hence the headroom.
    public static func defaultShardCount(liveNodes: Int) -> UInt32 {
        UInt32(min(Int(maxDefaultShardCount), max(1, defaultShardsPerNode * liveNodes)))
    }

    /// The placement of shards `0 ..< shardCount` (see the contract above).
    /// `load` counts the replicas each node already holds.
    ///
    /// Throws FAILED_PRECONDITION when there are no live nodes or fewer than
    /// `replicationFactor`, INVALID_ARGUMENT when a count is 0.
    public static func plan(
        shardCount: UInt32, replicationFactor: UInt32, nodes: [NodeInfo], load: [String: Int] = [:]
    ) throws(ShoalError) -> [ShardAssignment] {
        guard shardCount > 0, replicationFactor > 0 else {
            throw .invalidArgument("shard count and replication factor must be at least 1")
        }
        let live = nodes.filter { $0.state == .up }.map(\.id).sorted()
        guard !live.isEmpty else { throw ShoalError(.failedPrecondition, "no live nodes to place shards on") }
        guard live.count >= Int(replicationFactor) else {
            throw ShoalError(
                .failedPrecondition,
                "replication factor \(replicationFactor) needs as many live nodes; the cluster has \(live.count)")
        }
        var counts = live.map { load[$0] ?? 0 }
        return (0..<shardCount).map { shard in
            var chosen: [Int] = []
            for _ in 0..<replicationFactor {
                let pick = leastLoaded(counts, excluding: chosen)
                chosen.append(pick)
                counts[pick] += 1
            }
            return ShardAssignment(shardId: shard, replicas: chosen.map { Replica(nodeId: live[$0]) })
        }
    }

    /// The index of the smallest count not in `excluding` (the first on ties).
    private static func leastLoaded(_ counts: [Int], excluding: [Int]) -> Int {
        var best = -1
        for i in counts.indices where !excluding.contains(i) {
            if best < 0 || counts[i] < counts[best] { best = i }
        }
        return best
    }
}
