import VectorCore

/// The changes a coordinator makes to its cluster state. Each validates its
/// input, throws `ShoalError` (nothing changed) or applies the change and
/// bumps `epoch` by one.
extension ClusterState {
    /// Adds a node in state `.up`. ALREADY_EXISTS if the id is known
    /// (including a removed node: ids are never reused).
    public mutating func addNode(id: String, address: String) throws(ShoalError) {
        guard !id.isEmpty, !address.isEmpty else { throw .invalidArgument("a node needs an id and an address") }
        guard nodes[id] == nil else { throw ShoalError(.alreadyExists, "node \(id) is already in the cluster") }
        nodes[id] = NodeInfo(id: id, address: address)
        epoch += 1
    }

    /// Sets a known node's state. `.removed` requires that it holds no replicas
    /// (FAILED_PRECONDITION otherwise: drain it first).
    public mutating func setNodeState(_ id: String, _ state: NodeState) throws(ShoalError) {
        guard nodes[id] != nil else { throw .notFound("no node \(id)") }
        if state == .removed, let held = replicaCounts[id], held > 0 {
            throw ShoalError(.failedPrecondition, "node \(id) still holds \(held) replicas: drain it first")
        }
        nodes[id]!.state = state
        epoch += 1
    }

    /// Brings a removed node back (same id, possibly a new address) in state `.up`.
    public mutating func readdNode(id: String, address: String) throws(ShoalError) {
        guard let node = nodes[id] else { throw .notFound("no node \(id)") }
        guard node.state == .removed else { throw ShoalError(.alreadyExists, "node \(id) is already in the cluster (at \(node.address))") }
        nodes[id] = NodeInfo(id: id, address: address)
        epoch += 1
    }

    /// Removes a node. It must hold no replicas unless `force`, which takes its
    /// replicas out of the placement (their shards lose them); a shard it holds the
    /// only replica of is refused (FAILED_PRECONDITION) unless `acceptDataLoss`.
    /// Refused while a move involves the node.
    public mutating func removeNode(_ id: String, force: Bool, acceptDataLoss: Bool = false) throws(ShoalError) {
        guard let node = nodes[id], node.state != .removed else { throw .notFound("no node \(id)") }
        if let move = moves.values.first(where: { $0.isActive && ($0.from == id || $0.to == id) }) {
            throw .failedPrecondition("node \(id) is part of \(move.id) (\(move.state.rawValue)); wait for it or cancel it")
        }
        if force && !acceptDataLoss {
            let lost = collections.values.flatMap { collection in
                collection.shards.filter { shard in
                    shard.replicas.contains { $0.nodeId == id } && !shard.replicas.contains { $0.nodeId != id && $0.state == .ready }
                }
                    .map { "\(collection.config.name)/\($0.shardId)" }
            }.sorted()
            if !lost.isEmpty {
                throw .failedPrecondition("removing node \(id) would leave \(lost.count) shard(s) with no replica (\(lost.prefix(5).joined(separator: ", "))\(lost.count > 5 ? ", …" : "")): their data would be lost. Drain the node first, or add --accept-data-loss")
            }
        }
        if force {
            for (name, collection) in collections {
                for shard in collection.shards where shard.replicas.contains(where: { $0.nodeId == id }) {
                    collections[name]!.shards[Int(shard.shardId)].replicas.removeAll { $0.nodeId == id }
                }
            }
        }
        try setNodeState(id, .removed)
    }

    /// Adds a collection with the given placement (see `PlacementPlanner`).
    public mutating func addCollection(_ config: CollectionConfig, shards: [ShardAssignment]) throws(ShoalError) {
        guard collections[config.name] == nil else {
            throw ShoalError(.alreadyExists, "collection \(config.name) already exists")
        }
        var next = self
        next.collections[config.name] = CollectionState(config: config, shards: shards)
        next.deletedCollections[config.name] = nil
        try next.validate()
        next.epoch += 1
        self = next
    }

    /// Removes a collection, ending its active moves (FAILED). NOT_FOUND if unknown.
    public mutating func removeCollection(_ name: String, nowMs: Int64) throws(ShoalError) {
        guard let removed = collections.removeValue(forKey: name) else { throw .notFound("no collection \(name)") }
        endMoves(ofCollection: name, nowMs: nowMs)
        deletedCollections[name] = DeletedCollection(deletedMs: nowMs, uid: removed.config.uid)
        if deletedCollections.count > Self.deletedCollectionsKept {
            for (old, _) in deletedCollections.sorted(by: { ($0.value.deletedMs, $0.key) < ($1.value.deletedMs, $1.key) })
                .prefix(deletedCollections.count - Self.deletedCollectionsKept) { deletedCollections[old] = nil }
        }
        epoch += 1
    }

    /// Deleted collections remembered (their replicas on nodes that were down are dropped when they return).
    public static let deletedCollectionsKept = 1_000

    /// Replaces the replicas of one shard (a move step).
    public mutating func setReplicas(collection: String, shard: UInt32, _ replicas: [Replica]) throws(ShoalError) {
        guard let state = collections[collection] else { throw .notFound("no collection \(collection)") }
        guard shard < state.config.shardCount else {
            throw .invalidArgument("collection \(collection) has no shard \(shard) (it has \(state.config.shardCount))")
        }
        var next = self
        next.collections[collection]!.shards[Int(shard)].replicas = replicas
        try next.validate()
        next.epoch += 1
        self = next
    }

    /// Checks the invariants listed on `ClusterState`; the error names the
    /// first broken one. Run on every loaded state and after every change.
    public func validate() throws(ShoalError) {
        for (id, node) in nodes where node.id != id {
            throw .internal("node entry \(id) carries id \(node.id)")
        }
        for (name, collection) in collections {
            let config = collection.config
            guard config.name == name, config.shardCount > 0, config.dimension > 0 else {
                throw .invalidArgument("collection \(name): bad configuration \(config)")
            }
            guard collection.shards.count == Int(config.shardCount) else {
                throw .invalidArgument("collection \(name) has \(collection.shards.count) shard entries, not \(config.shardCount)")
            }
            for (i, shard) in collection.shards.enumerated() {
                try Self.validate(shard, index: i, of: name, nodes: nodes)
            }
        }
    }

    private static func validate(_ shard: ShardAssignment, index: Int, of name: String, nodes: [String: NodeInfo]) throws(ShoalError) {
        guard shard.shardId == UInt32(index) else {
            throw .invalidArgument("collection \(name): entry \(index) is shard \(shard.shardId)")
        }
        var seen = Set<String>()
        for replica in shard.replicas {
            guard let node = nodes[replica.nodeId], node.state != .removed else {
                throw .invalidArgument("collection \(name) shard \(index): replica on unknown or removed node \(replica.nodeId)")
            }
            guard seen.insert(replica.nodeId).inserted else {
                throw .invalidArgument("collection \(name) shard \(index): two replicas on node \(replica.nodeId)")
            }
        }
    }
}
