import ShoalProto
import ShoalRPC
import VectorCore

/// VerifyCollection and RepairCollection: compare the replicas of each shard
/// (`ReplicaReader.compare`) and mend what differs, last writer wins (`ReplicaDiff`).
/// Shards are handled one at a time, each shard's replicas at once.
extension AdminService {
    /// Ids a verification reports per shard, at most.
    static let differenceSample = 10
    /// Records of one repair write batch.
    static let repairBatch = 1000

    func registerVerify(on server: any HandlerRegistry) throws {
        try server.register(AdminRPC.verifyCollection) { [self] request, _ in
            let comparisons = try await compare(request.collection, shard: request.hasShardID ? request.shardID : nil)
            return Self.verification(request.collection, comparisons)
        }
        try server.registerLed(AdminRPC.repairCollection, cluster: cluster) { [self] request, _ in
            try await repair(request.collection, shard: request.hasShardID ? request.shardID : nil)
        }
    }

    /// The comparison of every shard of `collection` (or of `shard` alone).
    func compare(_ collection: String, shard: UInt32?) async throws -> [ShardComparison] {
        var comparisons: [ShardComparison] = []
        for placement in try placements(collection, shard: shard) {
            let reader = ReplicaReader(nodes: cluster.nodes, collection: collection, shard: placement.shardID)
            comparisons.append(await reader.compare(placement))
        }
        return comparisons
    }

    /// Compares, writes each differing id's newest record to the replicas that lack
    /// it, and compares again.
    func repair(_ collection: String, shard: UInt32?) async throws -> Shoal_V1_RepairCollectionResponse {
        let term = try cluster.commandTerm()
        var repairs: [Shoal_V1_ShardRepair] = []
        for comparison in try await compare(collection, shard: shard) {
            let reader = ReplicaReader(nodes: cluster.nodes, collection: collection, shard: comparison.placement.shardID)
            repairs.append(await reader.repair(comparison, term: term))
        }
        let after = try await compare(collection, shard: shard)
        return .with {
            $0.shards = repairs
            $0.verification = Self.verification(collection, after)
        }
    }

    /// The shards asked for, with node addresses; NOT_FOUND for an unknown collection.
    private func placements(_ collection: String, shard: UInt32?) throws -> [Shoal_V1_ShardPlacement] {
        guard !collection.isEmpty else { throw ShoalError(.invalidArgument, "collection is required") }
        guard let all = cluster.snapshot.shardPlacements(of: collection) else {
            throw ShoalError(.notFound, "collection \"\(collection)\" does not exist")
        }
        guard let shard else { return all }
        guard let one = all.first(where: { $0.shardID == shard }) else {
            throw ShoalError(.invalidArgument, "collection \"\(collection)\" has no shard \(shard) (it has \(all.count): 0..<\(all.count))")
        }
        return [one]
    }

    static func verification(_ collection: String, _ comparisons: [ShardComparison]) -> Shoal_V1_VerifyCollectionResponse {
        .with {
            $0.collection = collection
            $0.shards = comparisons.map(\.proto)
            $0.identical = comparisons.allSatisfy(\.identical)
        }
    }
}

extension ShardComparison {
    var proto: Shoal_V1_ShardVerification {
        let behind = differing.map { Self.behind($0.states) }
        return .with { shard in
            shard.shardID = placement.shardID
            shard.identical = identical
            shard.differingCount = UInt64(differing.count)
            shard.replicas = placement.replicas.enumerated().map { r, replica in
                .with {
                    $0.nodeID = replica.nodeID
                    $0.address = replica.address
                    $0.state = replica.state
                    if let error = errors[r] {
                        $0.unreachable = true
                        $0.error = error
                        return
                    }
                    $0.pointCount = points[r]
                    $0.tombstoneCount = tombstones[r]
                    $0.digest = ReplicaDiff.hex(digests[r])
                    $0.matches = matches(r)
                    $0.behind = UInt64(behind.filter { $0.contains(r) }.count)
                }
            }
            shard.sample = differing.prefix(AdminService.differenceSample).map { d in
                .with { id in
                    id.id = d.id
                    id.replicas = zip(placement.replicas, d.states).compactMap { replica, state in
                        state.map { state in .with {
                            $0.nodeID = replica.nodeID
                            $0.kind = state.kind
                            $0.version = state.version
                        } }
                    }
                }
            }
        }
    }
}

extension RecordState {
    var kind: Shoal_V1_ReplicaRecordState.Kind {
        switch self {
        case .absent: .absent
        case .deleted: .deleted
        case .live: .live
        }
    }
}

extension ReplicaReader {
    /// Writes every differing id's newest record (fetched whole from a replica that
    /// holds it, `AdminService.repairBatch` ids at a time) to the replicas that lack
    /// it, as copy writes under `term`: a replica that holds a newer version by then
    /// keeps it. A replica that fails is reported with its error and written no more;
    /// the others still are.
    func repair(_ comparison: ShardComparison, term: UInt64) async -> Shoal_V1_ShardRepair {
        let replicas = comparison.placement.replicas
        var fixes: [Int: [(id: String, targets: [Int])]] = [:]
        for d in comparison.differing {
            let targets = ShardComparison.behind(d.states)
            guard let source = d.states.indices.first(where: { r in d.states[r] != nil && !targets.contains(r) }) else { continue }
            fixes[source, default: []].append((d.id, targets))
        }
        var outcome: [Int: Shoal_V1_ReplicaRepair] = [:]
        func report(_ r: Int) -> Shoal_V1_ReplicaRepair { outcome[r] ?? .with { $0.nodeID = replicas[r].nodeID } }
        for (source, items) in fixes.sorted(by: { $0.key < $1.key }) {
            for start in stride(from: 0, to: items.count, by: AdminService.repairBatch) {
                let chunk = items[start..<min(start + AdminService.repairBatch, items.count)]
                let records: [UTF8Key: Shoal_V1_VersionedPoint]
                do {
                    records = try await self.records(chunk.map(\.id), at: replicas[source].address, full: true)
                } catch {
                    for target in Set(chunk.flatMap(\.targets)) {
                        outcome[target] = report(target)
                        outcome[target]?.error = "could not read the newest records from node \(replicas[source].nodeID): \(Self.reason(error))"
                    }
                    break
                }
                var ops: [Int: [Shoal_V1_WriteOp]] = [:]
                for item in chunk {
                    guard let record = records[UTF8Key(item.id)] else { continue }  // collected since: the next verify tells
                    let op = Shoal_V1_WriteOp.with {
                        $0.version = record.version
                        if record.tombstone { $0.deleteID = record.point.id } else { $0.upsert = record.point }
                    }
                    for target in item.targets { ops[target, default: []].append(op) }
                }
                for (target, batch) in ops.sorted(by: { $0.key < $1.key }) where report(target).error.isEmpty {
                    var written = report(target)
                    await write(batch, to: replicas[target].address, term: term, report: &written)
                    outcome[target] = written
                }
            }
        }
        return .with {
            $0.shardID = comparison.placement.shardID
            $0.differingCount = UInt64(comparison.differing.count)
            $0.replicas = outcome.sorted { $0.key < $1.key }.map(\.value)
        }
    }

    /// Writes one batch of copied records to one replica, counting into `report` (its error on failure).
    private func write(_ batch: [Shoal_V1_WriteOp], to address: String, term: UInt64, report: inout Shoal_V1_ReplicaRepair) async {
        do {
            let reply = try await nodes.transport(for: address).call(ShardRPC.writeBatch, .with {
                $0.replica = ref
                $0.ops = batch
                $0.copy = true
                $0.term = term
            }, timeout: Self.callTimeout)
            let deletes = UInt64(batch.filter { if case .deleteID = $0.op { true } else { false } }.count)
            report.tombstonesCopied += deletes
            report.pointsCopied += UInt64(batch.count) - deletes
            report.ignoredStale += UInt64(reply.ignoredStale)
        } catch {
            report.error = Self.reason(error)
        }
    }
}
