import VectorCore

/// Everything the coordinator must remember across restarts: the nodes, the
/// collections and where every shard replica lives. A value type, persisted
/// by `ClusterStateStore` as JSON (`Codable`, sorted keys) behind a checksum.
///
/// Contract:
/// - `epoch` grows by one with every change made through the mutating
///   methods below; a store never replaces a state with one of a lower epoch;
/// - `validate()` holds after every mutating method that did not throw
///   (every shard has its `shardCount` entries, every replica names a known
///   node, no node holds two replicas of one shard).
public struct ClusterState: Sendable, Equatable, Codable {
    /// Bumped on every change; 0 for a new cluster.
    public internal(set) var epoch: UInt64
    /// Nodes by id.
    public internal(set) var nodes: [String: NodeInfo]
    /// Collections by name, each with its shard placement.
    public internal(set) var collections: [String: CollectionState]
    /// Shard moves by id: every active one, and the latest finished ones.
    public internal(set) var moves: [String: MoveRecord]
    /// The number the next move's id gets.
    public internal(set) var nextMoveNumber: Int
    /// Collections deleted (and not created again), with when: a replica of one
    /// that a node still holds is dropped, a decision on record.
    public internal(set) var deletedCollections: [String: DeletedCollection]
    /// Why the metadata must be rebuilt from the nodes (`shoal admin recover`) before
    /// moves run or replicas are dropped: it is older than what the nodes have seen.
    public internal(set) var needsRecover: String?

    /// An empty cluster at epoch 0.
    public init() {
        epoch = 0
        nodes = [:]
        collections = [:]
        moves = [:]
        nextMoveNumber = 1
        deletedCollections = [:]
        needsRecover = nil
    }

    private enum CodingKeys: String, CodingKey {
        case epoch, nodes, collections, moves, nextMoveNumber, deletedCollections, needsRecover
    }

    /// Decodes a saved state; one saved before moves existed has none.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epoch = try c.decode(UInt64.self, forKey: .epoch)
        nodes = try c.decode([String: NodeInfo].self, forKey: .nodes)
        collections = try c.decode([String: CollectionState].self, forKey: .collections)
        moves = try c.decodeIfPresent([String: MoveRecord].self, forKey: .moves) ?? [:]
        nextMoveNumber = try c.decodeIfPresent(Int.self, forKey: .nextMoveNumber) ?? 1
        deletedCollections = try c.decodeIfPresent([String: DeletedCollection].self, forKey: .deletedCollections) ?? [:]
        needsRecover = try c.decodeIfPresent(String.self, forKey: .needsRecover)
    }

    /// The nodes that can take new replicas (state `.up`), ordered by id.
    public var liveNodes: [NodeInfo] {
        nodes.values.filter { $0.state == .up }.sorted { $0.id < $1.id }
    }

    /// Replicas per node over every collection (nodes without any are absent).
    public var replicaCounts: [String: Int] {
        var counts: [String: Int] = [:]
        for collection in collections.values {
            for shard in collection.shards {
                for replica in shard.replicas { counts[replica.nodeId, default: 0] += 1 }
            }
        }
        return counts
    }
}

/// One node of the cluster.
public struct NodeInfo: Sendable, Hashable, Codable {
    /// Stable id (the node's `HealthResponse.node_id`).
    public var id: String
    /// gRPC address, `host:port`.
    public var address: String
    public var state: NodeState

    public init(id: String, address: String, state: NodeState = .up) {
        self.id = id
        self.address = address
        self.state = state
    }
}

/// A node's lifecycle state.
public enum NodeState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Serves, and may take new replicas.
    case up
    /// Serves its replicas while they move away; takes no new ones.
    case draining
    /// Left the cluster; holds no replicas. Kept so its id is not reused.
    case removed
}

/// A collection's fixed configuration (the twin of `shoal.v1.CollectionConfig`,
/// with every default resolved).
public struct CollectionConfig: Sendable, Hashable, Codable {
    public var name: String
    public var dimension: UInt32
    public var metric: Metric
    public var shardCount: UInt32
    public var replicationFactor: UInt32
    public var hnsw: HNSWConfig
    /// This incarnation of the collection: given at creation, recorded by every
    /// replica, so a drop decided for a deleted collection never hits a replica of a
    /// collection created again under the same name ("" for one created before uids).
    public var uid: String
    /// When a write is acknowledged.
    public var writeConsistency: WriteConsistency

    public init(
        name: String, dimension: UInt32, metric: Metric, shardCount: UInt32,
        replicationFactor: UInt32 = 1, hnsw: HNSWConfig = HNSWConfig(), uid: String = "",
        writeConsistency: WriteConsistency = .all
    ) {
        self.name = name
        self.dimension = dimension
        self.metric = metric
        self.shardCount = shardCount
        self.replicationFactor = replicationFactor
        self.hnsw = hnsw
        self.uid = uid
        self.writeConsistency = writeConsistency
    }

    private enum CodingKeys: String, CodingKey {
        case name, dimension, metric, shardCount, replicationFactor, hnsw, uid, writeConsistency
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        dimension = try c.decode(UInt32.self, forKey: .dimension)
        metric = try c.decode(Metric.self, forKey: .metric)
        shardCount = try c.decode(UInt32.self, forKey: .shardCount)
        replicationFactor = try c.decode(UInt32.self, forKey: .replicationFactor)
        hnsw = try c.decode(HNSWConfig.self, forKey: .hnsw)
        uid = try c.decodeIfPresent(String.self, forKey: .uid) ?? ""
        writeConsistency = try c.decodeIfPresent(WriteConsistency.self, forKey: .writeConsistency) ?? .all
    }
}

/// How many replicas must commit a write before it is acknowledged (the twin of
/// `shoal.v1.WriteConsistency`; see there). Whatever the level, a replica that
/// misses a write leaves the in-sync set before the write is acknowledged.
public enum WriteConsistency: String, Sendable, Hashable, Codable, CaseIterable {
    /// Every in-sync replica committed it or left the in-sync set; at least one committed it.
    case all
    /// As `all`, and a majority of the replication factor committed it.
    case majority
    /// Acknowledged at the first in-sync replica's commit; the rest finish in the background.
    case one

    /// Commits a write needs before it is acknowledged, for a shard of `replicationFactor`.
    public func needed(replicationFactor: UInt32) -> Int {
        switch self {
        case .all, .one: 1
        case .majority: Int(replicationFactor) / 2 + 1
        }
    }
}

/// A deleted collection as the metadata remembers it.
public struct DeletedCollection: Sendable, Hashable, Codable {
    public var deletedMs: Int64
    /// The deleted incarnation (`CollectionConfig.uid`).
    public var uid: String
}

/// HNSW parameters of a collection (resolved: never 0).
public struct HNSWConfig: Sendable, Hashable, Codable {
    public var m: UInt32
    public var efConstruction: UInt32
    public var ef: UInt32

    public init(
        m: UInt32 = RequestLimits.hnswDefaults.m, efConstruction: UInt32 = RequestLimits.hnswDefaults.efConstruction,
        ef: UInt32 = RequestLimits.hnswDefaults.ef
    ) {
        self.m = m
        self.efConstruction = efConstruction
        self.ef = ef
    }
}

/// A collection's configuration and shard placement.
public struct CollectionState: Sendable, Hashable, Codable {
    public var config: CollectionConfig
    /// `shards[i]` is shard `i`; exactly `config.shardCount` entries.
    public var shards: [ShardAssignment]

    public init(config: CollectionConfig, shards: [ShardAssignment]) {
        self.config = config
        self.shards = shards
    }
}

/// The replicas of one shard.
public struct ShardAssignment: Sendable, Hashable, Codable {
    public var shardId: UInt32
    public var replicas: [Replica]

    public init(shardId: UInt32, replicas: [Replica]) {
        self.shardId = shardId
        self.replicas = replicas
    }

    /// The replicas that serve reads: those in sync.
    public var readable: [Replica] { replicas.filter { $0.state == .ready } }
}

/// One replica of a shard on a node.
public struct Replica: Sendable, Hashable, Codable {
    public var nodeId: String
    public var state: ReplicaState
    /// When this replica went stale (missed a write), while it is stale or catching up
    /// after being stale; nil otherwise.
    public var staleSinceMs: Int64?
    /// The lowest version a catch-up of this replica has copied from since it went
    /// stale (0: a rebuild). A later attempt starts no higher: an attempt that rolled
    /// back raised the replica's newest version without bringing everything below it.
    public var catchUpFloor: UInt64?

    public init(nodeId: String, state: ReplicaState = .ready, staleSinceMs: Int64? = nil) {
        self.nodeId = nodeId
        self.state = state
        self.staleSinceMs = staleSinceMs
    }
}

/// A replica's role (the twin of `shoal.v1.ReplicaState`).
public enum ReplicaState: String, Sendable, Hashable, Codable, CaseIterable {
    /// In sync: serves reads and receives writes.
    case ready
    /// A move target, a new replica restoring the replication factor, or a stale
    /// replica catching up: receives writes, copies from an in-sync replica, serves no reads.
    case catchingUp = "catching_up"
    /// A move source after reads switched away: serves neither reads nor writes; dropped next.
    case retiring
    /// Missed a write: serves neither reads nor writes until a catch-up brings it back.
    case stale
}
