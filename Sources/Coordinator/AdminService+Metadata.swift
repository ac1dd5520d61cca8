import ShoalProto
import ShoalRPC
import VectorCore

/// The Admin calls over the cluster metadata itself: coordinators, orphans, recover.
extension AdminService {
    func registerMetadata(on server: any HandlerRegistry) throws {
        try server.register(AdminRPC.listCoordinators) { [self] _, _ in try await coordinatorList() }
        try server.registerLed(AdminRPC.listOrphans, cluster: cluster) { [self] request, _ in
            let (found, unreachable) = await cluster.orphans(collection: request.collection.isEmpty ? nil : request.collection)
            let state = cluster.snapshot
            return .with {
                $0.orphans = found.map { orphan in Self.proto(orphan, in: state) }
                $0.unreachableNodes = unreachable
                $0.needsRecover = state.needsRecover ?? ""
            }
        }
        try server.registerLed(AdminRPC.adoptOrphans, cluster: cluster) { [self] request, _ in
            let (report, _) = try await cluster.adoptOrphans(collection: request.collection.isEmpty ? nil : request.collection, dryRun: request.dryRun)
            let state = cluster.snapshot
            return .with {
                $0.adopted = report.adopted.map { Self.proto($0, in: state) }
                $0.skipped = Self.proto(skipped: report.skipped, in: state)
                $0.collectionsCreated = report.created
            }
        }
        try server.registerLed(AdminRPC.deleteOrphan, cluster: cluster) { [self] request, _ in
            let deleted = try await cluster.deleteOrphan(id: request.id)
            return Shoal_V1_DeleteOrphanResponse.with { $0.deleted = deleted }
        }
        try server.registerLed(AdminRPC.recover, cluster: cluster) { [self] request, _ in
            let (cleanup, report, unreachable) = try await cluster.recover(dryRun: request.dryRun)
            let state = cluster.snapshot
            var byShard: [String: Shoal_V1_RecoveredShard] = [:]
            for orphan in report.adopted {
                let key = "\(orphan.collection)/\(orphan.shard)"
                byShard[key, default: .with { $0.collection = orphan.collection; $0.shardID = orphan.shard }].nodeIds.append(orphan.node)
            }
            return .with {
                $0.collectionsCreated = report.created
                $0.shards = byShard.values.sorted { ($0.collection, $0.shardID) < ($1.collection, $1.shardID) }
                $0.missing = report.missing.map { missing in .with { $0.collection = missing.collection; $0.shardID = missing.shard } }
                $0.skipped = Self.proto(skipped: report.skipped, in: state)
                $0.unreachableNodes = unreachable
                $0.removed = cleanup.removed.map { gone in
                    .with { $0.collection = gone.collection; $0.shardID = gone.shard; $0.nodeIds = [gone.node] }
                }
                $0.movesEnded = cleanup.movesEnded
            }
        }
    }

    static func proto(skipped: [(orphan: HeldOrphan, reason: String)], in state: ClusterState) -> [Shoal_V1_SkippedOrphan] {
        skipped.map { skip in .with { $0.orphan = proto(skip.orphan, in: state); $0.reason = skip.reason } }
    }

    static func proto(_ orphan: HeldOrphan, in state: ClusterState) -> Shoal_V1_OrphanReplica {
        .with {
            $0.id = orphan.id
            $0.nodeID = orphan.node
            $0.collection = orphan.collection
            $0.shardID = orphan.shard
            $0.incarnation = orphan.incarnation
            $0.points = orphan.points
            $0.maxVersion = orphan.maxVersion
            $0.reason = orphan.setAsideReason.map { "set aside: \($0)" }
                ?? (state.collections[orphan.collection] == nil ? "collection unknown" : "not placed")
            if let config = orphan.config { $0.config = config.proto }
        }
    }
}
