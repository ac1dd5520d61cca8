import ShoalProto
import ShoalRPC
import VectorCore

extension CollectionConfig {
    /// Largest shard count a collection may ask for.
    public static let maxShardCount: UInt32 = 1024

    /// The configuration a CreateCollection request asks for, validated and
    /// with every 0 resolved: shard count from `liveNodes`
    /// (`PlacementPlanner.defaultShardCount`), replication factor 1 on one live node
    /// and 2 on more (`PlacementPlanner.defaultReplicationFactor`), HNSW
    /// parameters by `RequestLimits.resolveHNSW` (the ranges the nodes accept).
    /// INVALID_ARGUMENT names the bad field.
    public init(resolving proto: Shoal_V1_CollectionConfig, liveNodes: Int) throws(ShoalError) {
        try Self.validateName(proto.name)
        guard RequestLimits.dimension.contains(proto.dimension) else {
            throw .invalidArgument("dimension \(proto.dimension) is out of range \(RequestLimits.dimension)")
        }
        guard let metric = try? Metric(proto: proto.metric) else {
            throw .invalidArgument("metric is required: COSINE, L2 or IP")
        }
        guard proto.shardCount <= Self.maxShardCount else {
            throw .invalidArgument("shard_count \(proto.shardCount) is over \(Self.maxShardCount)")
        }
        let resolved = try RequestLimits.resolveHNSW(m: proto.hnsw.m, efConstruction: proto.hnsw.efConstruction, ef: proto.hnsw.ef)
        let hnsw = HNSWConfig(m: resolved.m, efConstruction: resolved.efConstruction, ef: resolved.ef)
        self.init(
            name: proto.name, dimension: proto.dimension, metric: metric,
            shardCount: proto.shardCount == 0 ? PlacementPlanner.defaultShardCount(liveNodes: liveNodes) : proto.shardCount,
            replicationFactor: proto.replicationFactor == 0 ? PlacementPlanner.defaultReplicationFactor(liveNodes: liveNodes) : proto.replicationFactor,
            hnsw: hnsw)
        writeConsistency = try WriteConsistency(proto: proto.writeConsistency)
    }

    /// A collection name: 1...128 characters of `[A-Za-z0-9_-]`.
    public static func validateName(_ name: String) throws(ShoalError) {
        let ok = !name.isEmpty && name.utf8.count <= 128 && name.utf8.allSatisfy { c in
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
        guard ok else {
            throw .invalidArgument("collection name \(name.debugDescription): use 1 to 128 characters of A-Z a-z 0-9 _ -")
        }
    }

    /// The wire form (every field resolved).
    public var proto: Shoal_V1_CollectionConfig {
        var p = Shoal_V1_CollectionConfig()
        p.name = name
        p.dimension = dimension
        p.metric = metric.proto
        p.shardCount = shardCount
        p.replicationFactor = replicationFactor
        p.hnsw.m = hnsw.m
        p.hnsw.efConstruction = hnsw.efConstruction
        p.hnsw.ef = hnsw.ef
        p.uid = uid
        p.writeConsistency = writeConsistency.proto
        return p
    }
}

extension ReplicaState {
    public var proto: Shoal_V1_ReplicaState {
        switch self {
        case .ready: .ready
        case .catchingUp: .catchingUp
        case .retiring: .retiring
        case .stale: .stale
        }
    }
}

extension WriteConsistency {
    /// The level a request asks for; unspecified: `.all`.
    init(proto: Shoal_V1_WriteConsistency) throws(ShoalError) {
        switch proto {
        case .unspecified, .all: self = .all
        case .majority: self = .majority
        case .one: self = .one
        case .UNRECOGNIZED(let n): throw .invalidArgument("write_consistency \(n) is not ALL, MAJORITY or ONE")
        }
    }

    var proto: Shoal_V1_WriteConsistency {
        switch self {
        case .all: .all
        case .majority: .majority
        case .one: .one
        }
    }
}

extension ClusterState {
    /// The shard placement of a collection as DescribeCollection and ShardMap
    /// report it, ordered by shard id, with node addresses filled in; point
    /// counts are left 0 for the caller to fill from node statistics. Nil for
    /// an unknown collection.
    public func shardPlacements(of collection: String) -> [Shoal_V1_ShardPlacement]? {
        guard let state = collections[collection] else { return nil }
        return state.shards.map { shard in
            var p = Shoal_V1_ShardPlacement()
            p.collection = collection
            p.shardID = shard.shardId
            p.replicas = shard.replicas.map { replica in
                var r = Shoal_V1_ReplicaPlacement()
                r.nodeID = replica.nodeId
                r.address = nodes[replica.nodeId]?.address ?? ""
                r.state = replica.state.proto
                return r
            }
            return p
        }
    }
}
