import Foundation
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

    /// Sends each shard its part to every replica that takes writes, acknowledged as
    /// `writeToReplicas` says. The counts are an in-sync replica's answers (the shard's
    /// first reader's if it committed): what a read will see.
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
                                route.writers[shard], counted: route.readers[shard][0], config: route.config, ops: ops(items, version), deadline: deadline)
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

    /// One shard's write to each of its writable replicas, concurrently, acknowledged
    /// as the collection's write consistency says (`WriteConsistency`):
    /// - a refusal of the request itself by any replica (INVALID_ARGUMENT, ABORTED:
    ///   routed by a stale placement, or RESOURCE_EXHAUSTED from an in-sync replica: too
    ///   busy) fails it as it is;
    /// - with no in-sync replica committed, or fewer than a majority for `.majority`,
    ///   the write fails (UNAVAILABLE, or the replicas' own error), nothing marked;
    /// - otherwise an in-sync replica that failed leaves the in-sync set in the metadata
    ///   (`ClusterState.markStale`) once every replica has answered, so after the others
    ///   committed, and before the write is acknowledged;
    /// - a copying target's failure is recorded as a miss against its task, which then
    ///   copies again before reads may switch to it (a pass whose snapshot missed the
    ///   write began before the miss was recorded).
    /// With `.one` it is acknowledged at the first in-sync commit, and the rest is
    /// settled in the background (every replica that did not take it then leaves the
    /// in-sync set or counts a miss). A replica whose miss is survivable (others are in
    /// sync, or it is copying) gets at most `replicaWriteTimeout` and is skipped while
    /// its node is down: a replica that hangs (a cut-off or paused node) costs one write
    /// that long, then no longer receives writes.
    ///
    /// Returns the answer of `counted` (the shard's first reader) if it committed, else
    /// of another in-sync replica that did.
    func writeToReplicas(
        _ targets: [ShardTarget], counted: ShardTarget, config: CollectionConfig, ops: [Shoal_V1_WriteOp], deadline: ContinuousClock.Instant?
    ) async throws -> Shoal_V1_WriteBatchResponse {
        let inSync = targets.filter(\.inSync).count
        let health = cluster.health
        let calls = targets.map { target in
            (target, Task {
                // A replica whose miss is survivable (another is in sync, or it is copying)
                // gets a bounded share of the write, and none while its node is down.
                let bounded = inSync > 1 || target.copyingFor != nil
                if bounded, health.state(of: target.nodeID) == .down {
                    return Result<Shoal_V1_WriteBatchResponse, ShoalError>.failure(ShoalError(.unavailable, "\(target) is down (health checks)"))
                }
                let due = bounded ? min(deadline ?? .now + Self.defaultTimeout, .now + Self.replicaWriteTimeout) : deadline
                return await self.writeOne(target, ops: ops, deadline: due)
            })
        }
        if config.writeConsistency == .one, let first = await Self.firstSuccess(calls.filter { $0.0.inSync }.map(\.1)) {
            Task {
                do { _ = try await self.settle(calls, counted: counted, config: config, acknowledged: true) } catch {
                    logger.warning("a write acknowledged by one replica did not settle on the others", metadata: ["error": "\(error)"])
                }
            }
            return first
        }
        return try await settle(calls, counted: counted, config: config, acknowledged: false)
    }

    /// How long one replica's part of a write may take while other replicas are in sync.
    static let replicaWriteTimeout: Duration = .seconds(3)

    private func writeOne(_ target: ShardTarget, ops: [Shoal_V1_WriteOp], deadline: ContinuousClock.Instant?) async -> Result<Shoal_V1_WriteBatchResponse, ShoalError> {
        let request = Shoal_V1_WriteBatchRequest.with {
            $0.replica = target.ref
            $0.ops = ops
            $0.placementEpoch = target.epoch
        }
        do throws(ShoalError) {
            return .success(try await Self.call(target, nodes: cluster.nodes, deadline: deadline) {
                try await $0.call(ShardRPC.writeBatch, request, timeout: $1)
            })
        } catch {
            return .failure(error)
        }
    }

    /// Waits for every replica's answer and applies the rules of `writeToReplicas`.
    /// `acknowledged`: a `.one` write already acknowledged: nothing can fail it any more,
    /// so every replica that did not take it leaves the in-sync set (or counts a miss).
    private func settle(
        _ calls: [(ShardTarget, Task<Result<Shoal_V1_WriteBatchResponse, ShoalError>, Never>)], counted: ShardTarget,
        config: CollectionConfig, acknowledged: Bool
    ) async throws -> Shoal_V1_WriteBatchResponse {
        var outcomes: [(ShardTarget, Result<Shoal_V1_WriteBatchResponse, ShoalError>)] = []
        for (target, call) in calls { outcomes.append((target, await call.value)) }
        // A refusal of the request itself (bad, routed by a stale placement, or an in-sync
        // replica too busy to take it) fails it as it is, with nothing marked.
        if !acknowledged {
            for case (let target, .failure(let error)) in outcomes
            where error.code == .invalidArgument || error.code == .aborted || (target.inSync && error.code == .resourceExhausted) {
                throw error
            }
        }
        let committed = outcomes.compactMap { target, outcome in target.inSync ? (try? outcome.get()).map { (target, $0) } : nil }
        guard !committed.isEmpty else {
            if let error = outcomes.lazy.compactMap({ $0.0.inSync ? $0.1.failure : nil }).first { throw error }
            throw ShoalError(.unavailable, "shard \(counted.shard) has no replica that takes writes")
        }
        let needed = config.writeConsistency.needed(replicationFactor: config.replicationFactor)
        guard acknowledged || committed.count >= needed else {
            throw ShoalError(.unavailable,
                "shard \(counted.shard) of \(config.name): \(committed.count) replica(s) committed the write; write_consistency \(config.writeConsistency.rawValue) needs \(needed) (it may be on some replicas: try again)")
        }
        for case (let target, .failure(let error)) in outcomes {
            if let move = target.copyingFor {
                try await cluster.commit(asLeader: false) { state throws(ShoalError) in try state.recordMissedWrite(move, nowMs: nowMs()) }
            } else if target.inSync {
                try await cluster.commit(asLeader: false) { state throws(ShoalError) in
                    try state.markStale(collection: target.collection, shard: target.shard, node: target.nodeID, nowMs: nowMs())
                }
                logger.warning("a replica missed a write and left the in-sync set", metadata: [
                    "collection": "\(target.collection)", "shard": "\(target.shard)", "node": "\(target.nodeID)", "error": "\(error)"])
            }
        }
        return committed.first { $0.0.nodeID == counted.nodeID }?.1 ?? committed[0].1
    }

    /// The first successful answer among `calls`, as soon as it arrives; nil if none
    /// succeeds. The calls run on either way.
    static func firstSuccess<R: Sendable>(_ calls: [Task<Result<R, ShoalError>, Never>]) async -> R? {
        let race = FirstSuccess<R>(count: calls.count)
        return await withCheckedContinuation { continuation in
            race.start(continuation)
            for call in calls { Task { race.offer(await call.value) } }
        }
    }
}
