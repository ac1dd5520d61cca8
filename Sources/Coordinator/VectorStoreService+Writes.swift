import Foundation
import GRPCBridge
import ShoalProto
import ShoalRPC
import VectorCore

/// Writes: validated once, versioned, sent to every replica that takes them.
extension VectorStoreService {

    func upsert(_ request: Shoal_V1_UpsertRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_UpsertResponse {
        let route = try CollectionRoute(request.collection, in: state)
        try limits.checkCount(request.points.count, "an upsert holds")
        var seen = Set<UTF8Key>()  // ids are their bytes: NFC and NFD spellings are two points
        var points = request.points
        for i in points.indices {
            let place = "points[\(i)]"
            try PointValidation.validateID(points[i].id, at: place)
            guard seen.insert(UTF8Key(points[i].id)).inserted else {
                throw ShoalError(.invalidArgument, "\(place): id \"\(points[i].id)\" appears twice in one upsert")
            }
            points[i].vector = try PointValidation.validateVector(
                points[i].vector, dimension: route.dimension, metric: route.config.metric, at: "\(place) (id \"\(points[i].id)\")")
            do throws(ShoalError) { _ = try decodeMetadata(points[i].metadata, limits: limits) } catch {
                throw ShoalError(.invalidArgument, "\(place) (id \"\(points[i].id)\"): \(error.message)")
            }
        }
        try refuseWritesWithoutSession()
        let version = try await versions.next()
        let byShard = route.router.partition(points) { $0.id }
        let tally = try await writeToShards(route, byShard: byShard, version: version, deadline: deadline) { points, version in
            points.map { point in Shoal_V1_WriteOp.with { $0.version = version; $0.upsert = point } }
        }
        return .with {
            $0.upserted = tally.applied
            $0.ignoredStale = tally.ignoredStale
        }
    }

    func delete(_ request: Shoal_V1_DeleteRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_DeleteResponse {
        let route = try CollectionRoute(request.collection, in: state)
        try limits.checkCount(request.ids.count, "a delete holds")
        for (i, id) in request.ids.enumerated() { try PointValidation.validateID(id, at: "ids[\(i)]") }
        try refuseWritesWithoutSession()
        let version = try await versions.next()
        let byShard = route.router.partition(request.ids) { $0 }
        let tally = try await writeToShards(route, byShard: byShard, version: version, deadline: deadline) { ids, version in
            ids.map { id in Shoal_V1_WriteOp.with { $0.version = version; $0.deleteID = id } }
        }
        return .with { $0.deleted = tally.deletedLive }
    }

    /// UNAVAILABLE while this coordinator cannot prove its copy of the placement is
    /// current (its session with etcd is gone): a write routed by a stale placement
    /// could miss a moved shard's new replica.
    func refuseWritesWithoutSession() throws(ShoalError) {
        if let why = cluster.leadership.writeRefusal { throw ShoalError(.unavailable, why) }
    }

    /// What the shards' authoritative replicas (each shard's reader) report of one write.
    struct WriteTally: Sendable {
        var applied: UInt64 = 0
        var ignoredStale: UInt64 = 0
        var deletedLive: UInt64 = 0

        mutating func add(_ reply: Shoal_V1_WriteBatchResponse) {
            applied += UInt64(reply.applied)
            ignoredStale += UInt64(reply.ignoredStale)
            deletedLive += UInt64(reply.deletedLive)
        }
    }

    /// Sends each shard its part to every replica that takes writes; all must succeed,
    /// except a move target still copying: its failure is recorded against the move
    /// (which then copies again) and the request succeeds on the source. The counts
    /// are the shard readers' answers: what a read will see.
    ///
    /// A shard's part is sent again, with a new version, when a replica refused it as
    /// routed by a stale placement (ABORTED: the newest state is read first), or when
    /// the reader ignored ops as stale because this coordinator's clock is behind the
    /// version it holds (the clock moves past that version first); at most
    /// `writeAttempts` times. What is still ignored then is reported, never counted.
    func writeToShards<Item: Sendable>(
        _ route: CollectionRoute, byShard: [[Item]], version: UInt64, deadline: ContinuousClock.Instant?,
        ops: @escaping @Sendable ([Item], UInt64) -> [Shoal_V1_WriteOp]
    ) async throws -> WriteTally {
        try await withThrowingTaskGroup(of: Shoal_V1_WriteBatchResponse.self) { group in
            for (shard, items) in byShard.enumerated() where !items.isEmpty {
                group.addTask {
                    var route = route
                    var version = version
                    for attempt in 1...Self.writeAttempts {
                        let reply: Shoal_V1_WriteBatchResponse
                        do {
                            reply = try await self.writeToReplicas(
                                route.writers[shard], counted: route.readers[shard][0], ops: ops(items, version), deadline: deadline)
                        } catch let error as ShoalError where error.code == .aborted && attempt < Self.writeAttempts {
                            try await self.cluster.refresh()
                            route = try CollectionRoute(route.config.name, in: self.cluster.snapshot)
                            version = try await self.versions.next()
                            continue
                        }
                        guard reply.ignoredStale > 0, reply.staleVersion >= version, attempt < Self.writeAttempts else { return reply }
                        self.clock.observe(HLCVersion(rawValue: reply.staleVersion))
                        version = try await self.versions.next()
                    }
                    throw ShoalError(.internal, "unreachable: the last write attempt returns")
                }
            }
            var tally = WriteTally()
            for try await reply in group { tally.add(reply) }
            return tally
        }
    }

    /// Attempts of one shard's part of a write (see `writeToShards`).
    static let writeAttempts = 3

    /// One shard's write to each of its writable replicas, concurrently. A copying
    /// target's failure is recorded as a miss in the cluster metadata only once every
    /// replica has answered, so after the source committed the write, and before the
    /// write is acknowledged: a copy pass whose snapshot missed the write began before
    /// the miss was recorded, and the move copies again. Once the move has left
    /// COPY_RECORDS the record is refused and so is the write.
    ///
    /// Returns the answer of `counted` (the shard's reader), or of the first replica
    /// that is not a copying target if the reader takes no writes.
    func writeToReplicas(
        _ targets: [ShardTarget], counted: ShardTarget, ops: [Shoal_V1_WriteOp], deadline: ContinuousClock.Instant?
    ) async throws -> Shoal_V1_WriteBatchResponse {
        let nodes = cluster.nodes
        let outcomes = await withTaskGroup(of: (ShardTarget, Result<Shoal_V1_WriteBatchResponse, ShoalError>).self) { group in
            for target in targets {
                group.addTask {
                    let request = Shoal_V1_WriteBatchRequest.with {
                        $0.replica = target.ref
                        $0.ops = ops
                        $0.placementEpoch = target.epoch
                    }
                    do throws(ShoalError) {
                        return (target, .success(try await Self.call(target, nodes: nodes, deadline: deadline) {
                            try await $0.call(ShardRPC.writeBatch, request, timeout: $1)
                        }))
                    } catch {
                        return (target, .failure(error))
                    }
                }
            }
            var all: [(ShardTarget, Result<Shoal_V1_WriteBatchResponse, ShoalError>)] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        for case (let target, .failure) in outcomes {
            if let move = target.copyingFor {
                try await cluster.commit(asLeader: false) { state throws(ShoalError) in try state.recordMissedWrite(move, nowMs: nowMs()) }
            }
        }
        var answer: Shoal_V1_WriteBatchResponse?
        for (target, outcome) in outcomes where target.copyingFor == nil {
            let reply = try outcome.get()
            if target.nodeID == counted.nodeID || answer == nil { answer = reply }
        }
        guard let answer else { throw ShoalError(.unavailable, "shard \(counted.shard) has no replica that takes writes") }
        return answer
    }
}
