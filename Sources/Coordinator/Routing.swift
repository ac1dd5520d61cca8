import ShoalProto
import VectorCore

/// Where a collection's shards live, resolved from one state snapshot.
struct CollectionRoute: Sendable {
    let config: CollectionConfig
    let router: ShardRouter
    /// Per shard: the replicas that serve reads (in sync), in placement order; never empty.
    let readers: [[ShardTarget]]
    /// Per shard: every replica that takes writes. A move target still copying has
    /// `copyingFor` set: a failed write to it does not fail the request.
    let writers: [[ShardTarget]]

    init(_ name: String, in state: ClusterState) throws(ShoalError) {
        guard let collection = state.collections[name] else {
            throw ShoalError(.notFound, "collection \"\(name)\" does not exist")
        }
        config = collection.config
        router = ShardRouter(shardCount: collection.config.shardCount)
        var readers: [[ShardTarget]] = []
        var writers: [[ShardTarget]] = []
        for shard in collection.shards.sorted(by: { $0.shardId < $1.shardId }) {
            let copying = state.runningMove(collection: name, shard: shard.shardId).flatMap { $0.phase == .copyRecords ? $0 : nil }
            let targets = shard.replicas.map { replica in
                ShardTarget(shard: shard.shardId, nodeID: replica.nodeId, address: state.nodes[replica.nodeId]?.address ?? "", collection: name,
                            epoch: state.epoch, copyingFor: copying.flatMap { $0.to == replica.nodeId ? $0.id : nil })
            }
            let readable = shard.readable.compactMap { r in targets.first { $0.nodeID == r.nodeId } }
            guard !readable.isEmpty else {
                throw ShoalError(.unavailable, "shard \(shard.shardId) of \(name) has no readable replica")
            }
            readers.append(readable)
            writers.append(targets.filter { t in shard.replicas.contains { $0.nodeId == t.nodeID && $0.state != .retiring } })
        }
        self.readers = readers
        self.writers = writers
    }

    var dimension: Int { Int(config.dimension) }
}

/// One replica of one shard, addressed.
struct ShardTarget: Sendable, CustomStringConvertible {
    let shard: UInt32
    let nodeID: String
    let address: String
    let collection: String
    /// The epoch of the state this target was routed by: sent with every data
    /// request, so a replica fenced past it refuses (ABORTED) instead of serving a
    /// stale placement.
    let epoch: UInt64
    /// The move whose target this replica is, while that move copies records.
    var copyingFor: String? = nil

    var ref: Shoal_V1_ReplicaRef {
        .with {
            $0.collection = collection
            $0.shardID = shard
        }
    }

    var description: String { "shard \(shard) (node \(nodeID) at \(address))" }
}
