import Logging
import ShoalProto
import ShoalRPC
import VectorCore

/// Orphans (replicas the metadata neither places nor decided to drop): listing,
/// adopting, deleting, and `recover`, which adopts everything it can after the
/// metadata was lost. Nothing here drops a replica except an explicit delete.
extension ClusterController {
    /// Every orphan the answering nodes hold (of `collection`, if given), and the
    /// nodes that did not answer.
    nonisolated func orphans(collection: String? = nil) async -> (orphans: [HeldOrphan], unreachable: [String]) {
        let listing = await heldReplicas()
        let state = snapshot
        let answered = Set(listing.map(\.node.id))
        let unreachable = state.nodes.values.filter { $0.state != .removed && !answered.contains($0.id) }.map(\.id).sorted()
        var found: [HeldOrphan] = []
        for held in listing {
            for replica in held.replicas where collection == nil || replica.replica.collection == collection {
                let ref = replica.replica
                guard state.isOrphan(collection: ref.collection, shard: ref.shardID, incarnation: replica.incarnation, on: held.node.id) else { continue }
                found.append(HeldOrphan(
                    node: held.node.id, collection: ref.collection, shard: ref.shardID, incarnation: replica.incarnation,
                    points: replica.points, maxVersion: replica.maxVersion, config: CollectionConfig(recordedBy: replica)))
            }
            // A replica the node set aside (it could not load it) and the metadata does not
            // place: kept like any orphan; it cannot be adopted until its node can load it.
            for aside in held.setAside where collection == nil || aside.replica.collection == collection {
                let ref = aside.replica
                guard state.isOrphan(collection: ref.collection, shard: ref.shardID, incarnation: aside.incarnation, on: held.node.id) else { continue }
                found.append(HeldOrphan(
                    node: held.node.id, collection: ref.collection, shard: ref.shardID, incarnation: aside.incarnation,
                    points: 0, maxVersion: 0, config: nil, setAsideReason: aside.reason))
            }
        }
        return (found.sorted { ($0.collection, $0.shard, $0.node) < ($1.collection, $1.shard, $1.node) }, unreachable)
    }

    /// Adopts the orphans of `collection` (all if nil) into the metadata (see
    /// `ClusterState.adopt`); with `dryRun` only reports.
    func adoptOrphans(collection: String?, dryRun: Bool) async throws -> (report: AdoptionReport, unreachable: [String]) {
        let (listed, unreachable) = await orphans(collection: collection)
        var report = AdoptionReport()
        for aside in listed where aside.setAsideReason != nil {
            report.skipped.append((aside, "its node set it aside at start (\(aside.setAsideReason!)); it cannot be served until that node can load it"))
        }
        let found = listed.filter { $0.setAsideReason == nil }
        let skippedAside = report.skipped
        if dryRun {
            var copy = snapshot
            report = copy.adopt(found)
            report.skipped += skippedAside
            return (report, unreachable)
        }
        try await commit { state throws(ShoalError) in
            // Judged again against the newest state: one placed meanwhile is no orphan.
            let still = found.filter { state.isOrphan(collection: $0.collection, shard: $0.shard, incarnation: $0.incarnation, on: $0.node) }
            report = state.adopt(still)
        }
        report.skipped += skippedAside
        for orphan in report.adopted {
            logger.warning("adopted an orphan replica into the metadata", metadata: [
                "node": "\(orphan.node)", "collection": "\(orphan.collection)", "shard": "\(orphan.shard)",
                "incarnation": "\(orphan.incarnation)", "points": "\(orphan.points)"])
        }
        return (report, unreachable)
    }

    /// Drops one orphan (`HeldOrphan.id`): NOT_FOUND unless a node holds it and it
    /// is an orphan now.
    func deleteOrphan(id: String) async throws -> Bool {
        let (nodeID, collection, shard, incarnation) = try HeldOrphan.parse(id: id)
        let state = snapshot
        guard let node = state.nodes[nodeID] else { throw ShoalError(.notFound, "no node \(nodeID) (orphan \(id))") }
        guard state.isOrphan(collection: collection, shard: shard, incarnation: incarnation, on: nodeID) else {
            throw ShoalError(.failedPrecondition, "\(id) is not an orphan: the metadata places it (or a move is making it); nothing was dropped")
        }
        let stats = try await nodes.transport(for: node.address).call(ShardRPC.stats, Shoal_V1_StatsRequest(), timeout: .seconds(5))
        let held = stats.replicas.contains { $0.replica.collection == collection && $0.replica.shardID == shard && $0.incarnation == incarnation }
            || stats.setAside.contains { $0.replica.collection == collection && $0.replica.shardID == shard && $0.incarnation == incarnation }
        guard held else {
            throw ShoalError(.notFound, "node \(nodeID) holds no replica \(collection)/\(shard) of incarnation \(incarnation) (orphan \(id))")
        }
        let reply = try await nodes.transport(for: node.address).call(ShardRPC.dropReplica, try .with {
            $0.replica = .with { $0.collection = collection; $0.shardID = shard }
            $0.incarnation = incarnation
            $0.term = UInt64(try leaderTerm())
        }, timeout: .seconds(30))
        if reply.dropped {
            logger.warning("deleted an orphan replica on the operator's request", metadata: [
                "node": "\(nodeID)", "collection": "\(collection)", "shard": "\(shard)", "incarnation": "\(incarnation)"])
        }
        return reply.dropped
    }
}

extension CollectionConfig {
    /// The configuration a replica recorded when it was created (nil if its node
    /// did not record one: a replica from before nodes kept it).
    init?(recordedBy replica: Shoal_V1_ReplicaStats) {
        guard replica.hasConfig, let config = try? CollectionConfig(resolving: replica.config, liveNodes: 1) else { return nil }
        self = config
        if replica.config.shardCount == 0 { shardCount = 0 }  // unknown: `adopt` infers it
    }
}
