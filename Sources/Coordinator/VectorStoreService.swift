import Foundation
import GRPCBridge
import Logging
import ShoalProto
import ShoalRPC
import VectorCore

/// The public `shoal.v1.VectorStore` service: validates once, routes writes by id
/// hash with a version from the hybrid logical clock, fans reads out to one replica
/// of every shard under the caller's deadline, and merges.
public final class VectorStoreService: Sendable {
    static let defaultTimeout: Duration = .seconds(30)
    /// Searches of one SearchBatch in flight at once (each fans out to every shard).
    static let batchConcurrency = 16
    /// The longest a request may take, whatever deadline its caller set: requests
    /// route by one placement while in flight, and a shard move waits for them.
    static let maxRequestTime: Duration = .seconds(60)

    let cluster: ClusterController
    let versions: WriteVersions
    var clock: HybridLogicalClock { versions.clock }
    let logger: Logger
    /// What a request may ask for (the nodes check the same).
    let limits: RequestLimits

    public init(
        cluster: ClusterController, versions: WriteVersions = WriteVersions(clock: HybridLogicalClock()),
        limits: RequestLimits = RequestLimits(), logger: Logger
    ) {
        self.cluster = cluster
        self.limits = limits
        self.versions = versions
        self.logger = logger
    }

    public func register(on server: Server) throws {
        try server.registerLed(VectorStoreRPC.createCollection, cluster: cluster) { [self] request, _ in
            guard request.hasConfig else { throw ShoalError(.invalidArgument, "config is required") }
            let config = try await cluster.createCollection(request.config)
            return .with { $0.config = config.proto }
        }
        try server.registerLed(VectorStoreRPC.deleteCollection, cluster: cluster) { [self] request, _ in
            try await cluster.deleteCollection(request.name)
            return Shoal_V1_DeleteCollectionResponse()
        }
        try server.register(VectorStoreRPC.listCollections) { [self] _, _ in
            .with { $0.collections = cluster.snapshot.collections.values.map(\.config.proto).sorted { $0.name < $1.name } }
        }
        // Every request that reaches shards routes by one state, counted in flight
        // under its epoch: a shard move waits for those before its next step.
        try server.register(VectorStoreRPC.describeCollection) { [self] request, call in
            try await cluster.withCurrentPlacement { try await describe(request, state: $0, deadline: Self.deadline(call.deadline)) }
        }
        try server.register(VectorStoreRPC.upsert) { [self] request, call in
            try await cluster.withState { try await upsert(request, state: $0, deadline: Self.deadline(call.deadline)) }
        }
        try server.register(VectorStoreRPC.delete) { [self] request, call in
            try await cluster.withState { try await delete(request, state: $0, deadline: Self.deadline(call.deadline)) }
        }
        try server.register(VectorStoreRPC.get) { [self] request, call in
            try await cluster.withCurrentPlacement { try await get(request, state: $0, deadline: Self.deadline(call.deadline)) }
        }
        try server.register(VectorStoreRPC.search) { [self] request, call in
            try await cluster.withCurrentPlacement { try await search(try plan(request, state: $0), deadline: Self.deadline(call.deadline)) }
        }
        try server.register(VectorStoreRPC.searchBatch) { [self] request, call in
            try await cluster.withCurrentPlacement { try await searchBatch(request, state: $0, deadline: Self.deadline(call.deadline)) }
        }
        try server.register(VectorStoreRPC.count) { [self] request, call in
            try await cluster.withCurrentPlacement { try await count(request, state: $0, deadline: Self.deadline(call.deadline)) }
        }
    }

    // MARK: writes

    private func upsert(_ request: Shoal_V1_UpsertRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_UpsertResponse {
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

    private func delete(_ request: Shoal_V1_DeleteRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_DeleteResponse {
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
    private func refuseWritesWithoutSession() throws(ShoalError) {
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
    private func writeToShards<Item: Sendable>(
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
                                route.writers[shard], counted: route.readers[shard], ops: ops(items, version), deadline: deadline)
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
    private func writeToReplicas(
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

    // MARK: reads

    private func get(_ request: Shoal_V1_GetRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_GetResponse {
        let route = try CollectionRoute(request.collection, in: state)
        try limits.checkCount(request.ids.count, "a get takes")
        for (i, id) in request.ids.enumerated() { try PointValidation.validateID(id, at: "ids[\(i)]") }
        let nodes = cluster.nodes
        let byShard = route.router.partition(request.ids) { $0 }
        let found = try await withThrowingTaskGroup(of: Shoal_V1_ReplicaGetResponse.self) { group in
            for (shard, ids) in byShard.enumerated() where !ids.isEmpty {
                let target = route.readers[shard]
                group.addTask {
                    try await Self.call(target, nodes: nodes, deadline: deadline) {
                        try await $0.call(ShardRPC.get, .with {
                            $0.replica = target.ref
                            $0.placementEpoch = target.epoch
                            $0.ids = ids
                            $0.includeVector = request.includeVector
                            $0.includeMetadata = request.includeMetadata
                        }, timeout: $1)
                    }
                }
            }
            var points: [UTF8Key: Shoal_V1_Point] = [:]
            for try await reply in group { for p in reply.points { points[UTF8Key(p.point.id)] = p.point } }
            return points
        }
        return .with { reply in
            reply.points = request.ids.compactMap { found[UTF8Key($0)] }
            reply.missingIds = request.ids.filter { found[UTF8Key($0)] == nil }
        }
    }

    func search(_ plan: SearchPlan, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_SearchResponse {
        let nodes = cluster.nodes
        let outcomes = await withTaskGroup(of: (UInt32, Result<Shoal_V1_ReplicaSearchResponse, ShoalError>).self) { group in
            for target in plan.route.readers {
                group.addTask {
                    let request = plan.shardRequest(for: target)
                    do {
                        return (target.shard, .success(try await Self.call(target, nodes: nodes, deadline: deadline) {
                            try await $0.call(ShardRPC.search, request, timeout: $1)
                        }))
                    } catch let error as ShoalError {
                        return (target.shard, .failure(error))
                    } catch {
                        return (target.shard, .failure(ShoalError(.internal, "\(target): \(error)")))
                    }
                }
            }
            var all: [(UInt32, Result<Shoal_V1_ReplicaSearchResponse, ShoalError>)] = []
            for await outcome in group { all.append(outcome) }
            return all.sorted { $0.0 < $1.0 }
        }
        var lists: [[Shoal_V1_ScoredPoint]] = []
        var missing: [UInt32] = []
        for (shard, outcome) in outcomes {
            switch outcome {
            case .success(let reply): lists.append(reply.hits)
            case .failure(let error):
                guard plan.allowPartial, error.code == .unavailable || error.code == .deadlineExceeded else { throw error }
                missing.append(shard)
            }
        }
        let merged = TopKMerge.merge(lists, k: plan.k, offset: plan.offset)
        try SearchReplySize.check(merged.reduce(0) { $0 + SearchReplySize.bytes(of: $1) }, limit: limits.maxMessageBytes, "the reply's hits take")
        return .with {
            $0.hits = merged
            $0.partial = !missing.isEmpty
            $0.missingShards = missing
        }
    }

    private func searchBatch(_ request: Shoal_V1_SearchBatchRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_SearchBatchResponse {
        guard request.searches.count <= limits.maxSearchesPerBatch else {
            throw ShoalError(.resourceExhausted,
                "a search batch holds at most \(limits.maxSearchesPerBatch) searches (--max-searches-per-batch), got \(request.searches.count)")
        }
        var plans: [SearchPlan] = []
        for (i, search) in request.searches.enumerated() {
            do throws(ShoalError) {
                plans.append(try SearchPlan(search, state: state, limits: limits))
            } catch {
                throw ShoalError(error.code, "searches[\(i)]: \(error.message)")
            }
        }
        try SearchPlan.checkCost(plans, limits: limits)
        let limit = limits.maxMessageBytes
        let results = try await withThrowingTaskGroup(of: (Int, Shoal_V1_SearchResponse).self) { group in
            // At most `batchConcurrency` searches of the batch in flight: each asks every
            // shard, and a batch must not take the nodes' whole call limit by itself.
            var next = 0
            func startNext() {
                guard next < plans.count else { return }
                let (i, plan) = (next, plans[next])
                group.addTask { (i, try await self.search(plan, deadline: deadline)) }
                next += 1
            }
            for _ in 0..<Self.batchConcurrency { startNext() }
            var out = [Shoal_V1_SearchResponse](repeating: .init(), count: plans.count)
            var bytes = 0
            for try await (i, result) in group {
                // Metadata sizes are known only now: stop (cancelling the rest) once over.
                bytes += result.hits.reduce(0) { $0 + SearchReplySize.bytes(of: $1) }
                try SearchReplySize.check(bytes, limit: limit, "the batch's replies so far take")
                out[i] = result
                startNext()
            }
            return out
        }
        return .with { $0.results = results }
    }

    /// A validated search whose cost is within the limits (`checkCost`).
    private func plan(_ request: Shoal_V1_SearchRequest, state: ClusterState) throws(ShoalError) -> SearchPlan {
        let plan = try SearchPlan(request, state: state, limits: limits)
        try SearchPlan.checkCost([plan], limits: limits)
        return plan
    }

    private func count(_ request: Shoal_V1_CountRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_CountResponse {
        let route = try CollectionRoute(request.collection, in: state)
        if request.hasFilter { _ = try Filter(proto: request.filter, limits: limits) }
        let nodes = cluster.nodes
        var total: UInt64 = 0
        var missing: [UInt32] = []
        try await withThrowingTaskGroup(of: (UInt32, Result<UInt64, ShoalError>).self) { group in
            for target in route.readers {
                group.addTask {
                    do {
                        let reply = try await Self.call(target, nodes: nodes, deadline: deadline) {
                            try await $0.call(ShardRPC.count, .with {
                                $0.replica = target.ref
                                $0.placementEpoch = target.epoch
                                if request.hasFilter { $0.filter = request.filter }
                            }, timeout: $1)
                        }
                        return (target.shard, .success(reply.count))
                    } catch let error as ShoalError {
                        return (target.shard, .failure(error))
                    }
                }
            }
            for try await (shard, outcome) in group {
                switch outcome {
                case .success(let n): total += n
                case .failure(let error):
                    guard request.allowPartial, error.code == .unavailable || error.code == .deadlineExceeded else { throw error }
                    missing.append(shard)
                }
            }
        }
        return .with {
            $0.count = total
            $0.partial = !missing.isEmpty
            $0.missingShards = missing.sorted()
        }
    }

    private func describe(_ request: Shoal_V1_DescribeCollectionRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_DescribeCollectionResponse {
        let route = try CollectionRoute(request.name, in: state)
        var placements = state.shardPlacements(of: request.name) ?? []
        let nodes = cluster.nodes
        for i in placements.indices {
            let target = route.readers[Int(placements[i].shardID)]
            placements[i].pointCount = (try? await Self.call(target, nodes: nodes, deadline: deadline) {
                try await $0.call(ShardRPC.count, .with { $0.replica = target.ref; $0.placementEpoch = target.epoch }, timeout: $1)
            })?.count ?? 0
        }
        return .with {
            $0.config = route.config.proto
            $0.shards = placements
            $0.pointCount = placements.reduce(0) { $0 + $1.pointCount }
        }
    }

    /// The caller's deadline, or the default timeout without one; never later than
    /// `maxRequestTime` from now.
    static func deadline(_ caller: ContinuousClock.Instant?) -> ContinuousClock.Instant {
        let now = ContinuousClock.now
        return min(caller ?? now + defaultTimeout, now + maxRequestTime)
    }

    /// One call to one shard replica under the caller's deadline. A failure becomes
    /// UNAVAILABLE (or the deadline) naming the shard and node; argument errors pass through.
    static func call<R: Sendable>(
        _ target: ShardTarget, nodes: NodeDirectory, deadline: ContinuousClock.Instant?,
        _ body: @Sendable (any UnaryTransport, Duration) async throws -> R
    ) async throws(ShoalError) -> R {
        let timeout = deadline.map { $0 - ContinuousClock.now } ?? defaultTimeout
        guard timeout > .zero else { throw ShoalError(.deadlineExceeded, "the deadline passed before \(target) was asked") }
        do {
            return try await body(try nodes.transport(for: target.address), timeout)
        } catch let error as ShoalError {
            switch error.code {
            case .invalidArgument, .notFound, .alreadyExists, .resourceExhausted, .failedPrecondition, .aborted:
                throw error
            case .deadlineExceeded:
                throw ShoalError(.deadlineExceeded, "\(target) did not answer in time")
            default:
                throw ShoalError(.unavailable, "\(target) is unavailable: \(error)")
            }
        } catch {
            throw ShoalError(.unavailable, "\(target) is unavailable: \(error)")
        }
    }
}
