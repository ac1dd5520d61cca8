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
        return (Self.orphans(in: listing, of: state, collection: collection), Self.unreachable(listing, state))
    }

    static func unreachable(_ listing: [HeldReplicas], _ state: ClusterState) -> [String] {
        let answered = Set(listing.map(\.node.id))
        return state.nodes.values.filter { $0.state != .removed && !answered.contains($0.id) }.map(\.id).sorted()
    }

    /// The orphans `listing` shows against `state`: served replicas, and replicas their
    /// node set aside at start (kept like any orphan; never adopted: not servable).
    static func orphans(in listing: [HeldReplicas], of state: ClusterState, collection: String?) -> [HeldOrphan] {
        var found: [HeldOrphan] = []
        for held in listing {
            for replica in held.replicas where collection == nil || replica.replica.collection == collection {
                let ref = replica.replica
                guard state.isOrphan(collection: ref.collection, shard: ref.shardID, incarnation: replica.incarnation, on: held.node.id,
                                     uid: replica.config.uid) else { continue }
                found.append(HeldOrphan(
                    node: held.node.id, collection: ref.collection, shard: ref.shardID, incarnation: replica.incarnation,
                    points: replica.points, maxVersion: replica.maxVersion, config: CollectionConfig(recordedBy: replica)))
            }
            for aside in held.setAside where collection == nil || aside.replica.collection == collection {
                let ref = aside.replica
                guard state.isOrphan(collection: ref.collection, shard: ref.shardID, incarnation: aside.incarnation, on: held.node.id) else { continue }
                found.append(HeldOrphan(
                    node: held.node.id, collection: ref.collection, shard: ref.shardID, incarnation: aside.incarnation,
                    points: 0, maxVersion: 0, config: nil, setAsideReason: aside.reason))
            }
        }
        return found.sorted { ($0.collection, $0.shard, $0.node) < ($1.collection, $1.shard, $1.node) }
    }

    /// Adopts `found` into `state` (set-aside ones are skipped with their reason).
    static func adopt(_ found: [HeldOrphan], into state: inout ClusterState) -> AdoptionReport {
        let servable = found.filter { $0.setAsideReason == nil && state.isOrphan(collection: $0.collection, shard: $0.shard, incarnation: $0.incarnation, on: $0.node) }
        var report = state.adopt(servable)
        for aside in found where aside.setAsideReason != nil {
            report.skipped.append((aside, "its node set it aside at start (\(aside.setAsideReason!)); it cannot be served until that node can load it"))
        }
        return report
    }

    /// `shoal admin recover`: rebuilds the placement from what the nodes hold, in one
    /// change: placed replicas their answering node no longer holds (and replicas left
    /// mid-move) leave the placement, active moves end (deciding nothing), then every
    /// orphan that fits is adopted and the state no longer needs recovering. Deletes
    /// nothing. With `dryRun` only reports.
    func recover(dryRun: Bool) async throws -> (cleanup: ClusterState.RecoveryCleanup, report: AdoptionReport, unreachable: [String]) {
        let listing = await heldReplicas()
        let answered = Set(listing.map(\.node.id))
        let byNode = Dictionary(listing.map { ($0.node.id, $0) }, uniquingKeysWith: { a, _ in a })
        var cleanup = ClusterState.RecoveryCleanup()
        var report = AdoptionReport()
        let change = { (state: inout ClusterState) throws(ShoalError) -> Void in
            cleanup = state.cleanUpForRecovery(answered: answered, holds: { node, collection, shard in
                byNode[node]?.holds(collection, shard) ?? true
            }, nowMs: nowMs())
            report = Self.adopt(Self.orphans(in: listing, of: state, collection: nil), into: &state)
        }
        if dryRun {
            var copy = snapshot
            try change(&copy)
        } else {
            try await commit(change)
            logger.warning("cluster metadata recovered from the nodes", metadata: [
                "adopted": "\(report.adopted.count)", "created": "\(report.created)", "removed": "\(cleanup.removed.count)",
                "moves_ended": "\(cleanup.movesEnded)"])
        }
        return (cleanup, report, Self.unreachable(listing, snapshot))
    }

    /// Adopts the orphans of `collection` (all if nil) into the metadata (see
    /// `ClusterState.adopt`); with `dryRun` only reports.
    func adoptOrphans(collection: String?, dryRun: Bool) async throws -> (report: AdoptionReport, unreachable: [String]) {
        let listing = await heldReplicas()
        let found = Self.orphans(in: listing, of: snapshot, collection: collection)
        var report = AdoptionReport()
        if dryRun {
            var copy = snapshot
            report = Self.adopt(found, into: &copy)
        } else {
            // Judged again against the newest state: one placed meanwhile is no orphan.
            try await commit { state throws(ShoalError) in report = Self.adopt(found, into: &state) }
        }
        for orphan in report.adopted where !dryRun {
            logger.warning("adopted an orphan replica into the metadata", metadata: [
                "node": "\(orphan.node)", "collection": "\(orphan.collection)", "shard": "\(orphan.shard)",
                "incarnation": "\(orphan.incarnation)", "points": "\(orphan.points)"])
        }
        return (report, Self.unreachable(listing, snapshot))
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
            $0.term = try commandTerm()
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
        uid = replica.config.uid
        if replica.config.shardCount == 0 { shardCount = 0 }  // unknown: `adopt` infers it
    }
}
