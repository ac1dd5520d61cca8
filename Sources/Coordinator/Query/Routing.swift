import ShoalProto
import Synchronization
import VectorCore

/// Where a collection's shards live, resolved from one state snapshot.
struct CollectionRoute: Sendable {
    let config: CollectionConfig
    let router: ShardRouter
    /// Per shard: the replicas that serve reads (in sync), in placement order; never empty.
    let readers: [[ShardTarget]]
    /// Per shard: every replica that takes writes (in sync, or catching up; not stale,
    /// not retiring). A target still copying has `copyingFor` set: a write it misses is
    /// recorded against its task, which copies again.
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
            let copying = state.runningMove(collection: name, shard: shard.shardId).flatMap { $0.phase < .switchReads ? $0 : nil }
            let targets = shard.replicas.map { replica in
                ShardTarget(shard: shard.shardId, nodeID: replica.nodeId, address: state.nodes[replica.nodeId]?.address ?? "", collection: name,
                            epoch: state.epoch, inSync: replica.state == .ready,
                            copyingFor: copying.flatMap { $0.to == replica.nodeId && replica.state == .catchingUp ? $0.id : nil })
            }
            let readable = shard.readable.compactMap { r in targets.first { $0.nodeID == r.nodeId } }
            guard !readable.isEmpty else {
                throw ShoalError(.unavailable, "shard \(shard.shardId) of \(name) has no readable replica")
            }
            readers.append(readable)
            writers.append(targets.filter { t in shard.replicas.contains { $0.nodeId == t.nodeID && ($0.state == .ready || $0.state == .catchingUp) } })
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
    /// In the shard's in-sync set (READY): it serves reads, and a write it misses takes it out.
    var inSync: Bool = true
    /// The task whose target this replica is, until that task switches reads to it.
    var copyingFor: String? = nil

    var ref: Shoal_V1_ReplicaRef {
        .with {
            $0.collection = collection
            $0.shardID = shard
        }
    }

    /// This shard in a node-level read, with the epoch it was routed by.
    var read: Shoal_V1_ShardRead {
        .with {
            $0.shardID = shard
            $0.placementEpoch = epoch
        }
    }

    var description: String { "shard \(shard) (node \(nodeID) at \(address))" }
}

/// Collections' routes, each resolved once per state epoch (every change to the
/// state raises the epoch): a read routes without walking the placement again.
final class RouteCache: Sendable {
    private let cache = Mutex<(epoch: UInt64, routes: [String: CollectionRoute])>((0, [:]))

    func route(_ name: String, in state: ClusterState) throws(ShoalError) -> CollectionRoute {
        if let cached = cache.withLock({ $0.epoch == state.epoch ? $0.routes[name] : nil }) { return cached }
        let route = try CollectionRoute(name, in: state)
        cache.withLock { cache in
            if state.epoch > cache.epoch { cache = (state.epoch, [:]) }
            if state.epoch == cache.epoch { cache.routes[name] = route }
        }
        return route
    }
}
