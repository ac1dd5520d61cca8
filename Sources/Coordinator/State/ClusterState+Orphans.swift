import VectorCore

/// A replica a node holds that the metadata neither places nor decided to drop
/// (`ClusterState.isOrphan`), as the node reported it.
public struct HeldOrphan: Sendable, Hashable {
    public var node: String
    public var collection: String
    public var shard: UInt32
    public var incarnation: UInt32
    public var points: UInt64
    public var maxVersion: UInt64
    /// The collection's configuration as the replica recorded it (nil: the node did not say).
    public var config: CollectionConfig?
    /// Why its node set it aside at start (it could not load it); nil for a served replica.
    public var setAsideReason: String?

    public init(
        node: String, collection: String, shard: UInt32, incarnation: UInt32, points: UInt64, maxVersion: UInt64,
        config: CollectionConfig?, setAsideReason: String? = nil
    ) {
        self.node = node
        self.collection = collection
        self.shard = shard
        self.incarnation = incarnation
        self.points = points
        self.maxVersion = maxVersion
        self.config = config
        self.setAsideReason = setAsideReason
    }

    /// `NODE/COLLECTION/SHARD/INCARNATION` (collection names hold no `/`).
    public var id: String { "\(node)/\(collection)/\(shard)/\(incarnation)" }

    /// The parts of an `id`, or INVALID_ARGUMENT.
    public static func parse(id: String) throws(ShoalError) -> (node: String, collection: String, shard: UInt32, incarnation: UInt32) {
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, !parts[0].isEmpty, !parts[1].isEmpty, let shard = UInt32(parts[2]), let incarnation = UInt32(parts[3]) else {
            throw .invalidArgument("orphan id \(id.debugDescription) is not NODE/COLLECTION/SHARD/INCARNATION (see shoal admin orphans)")
        }
        return (String(parts[0]), String(parts[1]), shard, incarnation)
    }
}

/// What an adoption did.
public struct AdoptionReport: Sendable, Equatable {
    public var adopted: [HeldOrphan] = []
    public var skipped: [(orphan: HeldOrphan, reason: String)] = []
    /// Collections the adoption created.
    public var created: [String] = []
    /// Shards of created collections that no orphan holds.
    public var missing: [(collection: String, shard: UInt32)] = []

    public static func == (a: AdoptionReport, b: AdoptionReport) -> Bool {
        a.adopted == b.adopted && a.created == b.created
            && a.skipped.map { "\($0.orphan.id) \($0.reason)" } == b.skipped.map { "\($0.orphan.id) \($0.reason)" }
            && a.missing.map { "\($0.collection)/\($0.shard)" } == b.missing.map { "\($0.collection)/\($0.shard)" }
    }
}

extension ClusterState {
    /// Puts orphans back into the metadata: a collection the metadata does not know
    /// is created from the configuration its replicas recorded (shard count from that
    /// configuration, or one more than the highest shard held); then each orphan,
    /// the most recent first (highest max version, then most points), joins its
    /// shard's placement as READY while the shard has fewer replicas than its
    /// replication factor. Orphans that do not fit are skipped with the reason, and
    /// stay where they are. Deletes nothing.
    public mutating func adopt(_ orphans: [HeldOrphan]) -> AdoptionReport {
        var report = AdoptionReport()
        var next = self
        let unknown = Dictionary(grouping: orphans.filter { next.collections[$0.collection] == nil }, by: \.collection)
        for (name, held) in unknown.sorted(by: { $0.key < $1.key }) {
            guard var config = held.compactMap(\.config).first else {
                for orphan in held { report.skipped.append((orphan, "its node did not record the collection's configuration")) }
                continue
            }
            config.name = name
            if config.shardCount == 0 { config.shardCount = (held.map(\.shard).max() ?? 0) + 1 }
            config.replicationFactor = max(1, config.replicationFactor)
            let shards = (0..<config.shardCount).map { ShardAssignment(shardId: $0, replicas: []) }
            next.collections[name] = CollectionState(config: config, shards: shards)
            next.deletedCollections[name] = nil
            report.created.append(name)
        }
        let ordered = orphans.sorted {
            ($0.collection, $0.shard, UInt64.max - $0.maxVersion, UInt64.max - $0.points, $0.node)
                < ($1.collection, $1.shard, UInt64.max - $1.maxVersion, UInt64.max - $1.points, $1.node)
        }
        for orphan in ordered {
            guard let collection = next.collections[orphan.collection] else { continue }  // skipped above
            let config = collection.config
            guard orphan.shard < config.shardCount else {
                report.skipped.append((orphan, "collection \(config.name) has \(config.shardCount) shards"))
                continue
            }
            if let recorded = orphan.config, recorded.dimension != config.dimension || recorded.metric != config.metric {
                report.skipped.append((orphan, "its configuration (dimension \(recorded.dimension), \(recorded.metric)) is not the collection's"))
                continue
            }
            guard let node = next.nodes[orphan.node], node.state != .removed else {
                report.skipped.append((orphan, "node \(orphan.node) is not in the cluster"))
                continue
            }
            let replicas = collection.shards[Int(orphan.shard)].replicas
            if replicas.contains(where: { $0.nodeId == orphan.node }) {
                report.skipped.append((orphan, "node \(orphan.node) already holds the placed replica of this shard"))
                continue
            }
            if next.moves.values.contains(where: { $0.isActive && $0.collection == orphan.collection && $0.shard == orphan.shard }) {
                report.skipped.append((orphan, "the shard is moving; adopt it once the move has finished"))
                continue
            }
            guard replicas.count < Int(config.replicationFactor) else {
                report.skipped.append((orphan, "the shard already has its \(config.replicationFactor) replica(s)"))
                continue
            }
            next.collections[orphan.collection]!.shards[Int(orphan.shard)].replicas.append(Replica(nodeId: orphan.node, state: .ready))
            report.adopted.append(orphan)
        }
        for name in report.created {
            for shard in next.collections[name]!.shards where shard.replicas.isEmpty {
                report.missing.append((name, shard.shardId))
            }
        }
        if !report.adopted.isEmpty || !report.created.isEmpty {
            next.epoch += 1
            self = next
        }
        return report
    }
}

extension ClusterState {
    /// Records that this metadata is older than what the nodes have seen (a placement
    /// fence at `fence`): the epoch moves past it, so requests routed by this state
    /// pass the fences again, and moves and drops wait for `recover`.
    mutating func markBehindNodes(fence: UInt64, reason: String) {
        needsRecover = reason
        epoch = max(epoch, fence) + 1  // requests routed by this state pass every fence
    }

    /// What `recover` changed besides adopting orphans.
    public struct RecoveryCleanup: Sendable, Equatable {
        /// Placed replicas their (answering) node no longer holds: taken out of the placement.
        public var removed: [(collection: String, shard: UInt32, node: String)] = []
        /// Moves that were active: ended (FAILED), deciding nothing about their replicas.
        public var movesEnded: [String] = []

        public static func == (a: Self, b: Self) -> Bool {
            a.movesEnded == b.movesEnded && a.removed.map { "\($0)" } == b.removed.map { "\($0)" }
        }
    }

    /// The first half of `recover`: takes out of the placement every replica whose node
    /// answered (`answered`) but does not hold it (`holds`) and every replica that is not
    /// READY (a move's target or source), and ends every active move
    /// (the metadata's record of it may be older than what happened), so the orphans
    /// can then be adopted into what is really there. Clears `needsRecover`.
    public mutating func cleanUpForRecovery(
        answered: Set<String>, holds: (String, String, UInt32) -> Bool, nowMs: Int64
    ) -> RecoveryCleanup {
        var cleanup = RecoveryCleanup()
        for move in movesInOrder where move.isActive {
            moves[move.id]?.state = .failed
            moves[move.id]?.error = "ended by shoal admin recover"
            moves[move.id]?.endedByRecover = true
            moves[move.id]?.updatedMs = nowMs
            moves[move.id]?.finishedEpoch = epoch + 1
            cleanup.movesEnded.append(move.id)
        }
        for name in collections.keys.sorted() {
            for (i, shard) in collections[name]!.shards.enumerated() {
                // A replica left mid-move (catching up, retiring) leaves the placement too:
                // it stays on its node as an orphan, and adoption below takes the most
                // recent replica the nodes hold for each shard that lacks one.
                let kept = shard.replicas.filter { replica in
                    let gone = replica.state != .ready || (answered.contains(replica.nodeId) && !holds(replica.nodeId, name, shard.shardId))
                    if gone { cleanup.removed.append((name, shard.shardId, replica.nodeId)) }
                    return !gone
                }
                collections[name]!.shards[i].replicas = kept
            }
        }
        needsRecover = nil
        epoch += 1
        return cleanup
    }
}
