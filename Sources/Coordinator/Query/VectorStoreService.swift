import Foundation
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
    /// Routes per state epoch.
    let routes = RouteCache()
    /// Reads running at once (`limits.maxConcurrentReads`); the next is refused.
    let reads: CallSlots

    public init(
        cluster: ClusterController, versions: WriteVersions = WriteVersions(clock: HybridLogicalClock()),
        limits: RequestLimits = RequestLimits(), logger: Logger
    ) {
        self.cluster = cluster
        self.limits = limits
        self.reads = CallSlots(limit: limits.maxConcurrentReads)
        self.versions = versions
        self.logger = logger
    }

    public func register(on server: any HandlerRegistry) throws {
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
        // Get, Search and Count run on the thread that received them and answer from
        // the thread of the last node reply: no task, no hop of their own.
        try server.registerStarting(VectorStoreRPC.get) { [self] request, call, done in
            startRead(done) { [self] state, finish in startGet(request, state: state, deadline: Self.deadline(call.deadline), finish) }
        }
        try server.registerStarting(VectorStoreRPC.search) { [self] request, call, done in
            startRead(done) { [self] state, finish in
                let plan: SearchPlan
                do throws(ShoalError) {
                    plan = try self.plan(request, state: state)
                } catch {
                    finish(.failure(error))
                    return FinishedCall()
                }
                return startNodes(ShardRPC.searchShards, plan.route.readers, deadline: Self.deadline(call.deadline)) { plan.nodeRequest(for: $0) } _: {
                    [self] outcome in finish(Result { () throws(ShoalError) in try searchReply(plan, outcome) })
                }
            }
        }
        try server.register(VectorStoreRPC.searchBatch) { [self] request, call in
            try await read { try await searchBatch(request, state: $0, deadline: Self.deadline(call.deadline)) }
        }
        try server.registerStarting(VectorStoreRPC.count) { [self] request, call, done in
            startRead(done) { [self] state, finish in startCount(request, state: state, deadline: Self.deadline(call.deadline), finish) }
        }
        // Jobs: each of its searches takes a read slot and a placement of its own.
        try server.register(VectorStoreRPC.classify) { [self] request, call in
            try await classify(request, deadline: Self.deadline(call.deadline))
        }
        try server.register(VectorStoreRPC.evaluateClassifier) { [self] request, call in
            try await evaluateClassifier(request, deadline: Self.deadline(call.deadline))
        }
        try server.register(VectorStoreRPC.anomalyScore) { [self] request, call in
            try await anomalyScore(request, deadline: Self.deadline(call.deadline))
        }
    }

    /// Runs one read in a slot of `reads` against the current placement; with every
    /// slot taken, RESOURCE_EXHAUSTED at once (a coordinator never queues reads).
    func read<R>(_ body: (ClusterState) async throws -> R) async throws -> R {
        guard reads.enter() else {
            throw ShoalError(.resourceExhausted,
                "busy: \(reads.limit) reads are running on this coordinator, the limit (--max-concurrent-reads); retry later")
        }
        defer { reads.leave() }
        return try await cluster.withCurrentPlacement(body)
    }

    /// `read` for a handler that answers through a callback (`registerStarting`): the
    /// same slot, the same state counted in flight, the same retries after ABORTED (the
    /// refresh between them runs in a task: it is rare, and waits on the metadata).
    /// `body` starts the read against the state and hands its result to `finish`.
    func startRead<R: Sendable>(
        _ done: @escaping @Sendable (Result<R, ShoalError>) -> Void, attempt: Int = 1,
        _ body: @escaping @Sendable (ClusterState, @escaping @Sendable (Result<R, ShoalError>) -> Void) -> any StartedCall
    ) -> any StartedCall {
        if attempt == 1, !reads.enter() {
            done(.failure(ShoalError(.resourceExhausted,
                "busy: \(reads.limit) reads are running on this coordinator, the limit (--max-concurrent-reads); retry later")))
            return FinishedCall()
        }
        let state = cluster.beginRequest()
        return body(state) { [self] result in
            cluster.endRequest(state)
            if case .failure(let error) = result, error.code == .aborted, attempt < 3 {
                Task { [self] in
                    do {
                        try await cluster.refresh()
                    } catch {
                        reads.leave()
                        done(.failure(ShoalError(handlerError: error)))
                        return
                    }
                    _ = startRead(done, attempt: attempt + 1, body)
                }
                return
            }
            reads.leave()
            done(result)
        }
    }

    /// The caller's deadline, or the default timeout without one; never later than
    /// `maxRequestTime` from now.
    static func deadline(_ caller: ContinuousClock.Instant?) -> ContinuousClock.Instant {
        let now = ContinuousClock.now
        return min(caller ?? now + defaultTimeout, now + maxRequestTime)
    }
}

extension VectorStoreService {
    /// One call to one shard replica under the caller's deadline (writes). A failure
    /// becomes UNAVAILABLE (or the deadline) naming the shard and node; argument errors pass through.
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

    /// Whether `error` says this replica cannot answer now, so another should be asked
    /// (UNAVAILABLE, DEADLINE_EXCEEDED; FAILED_PRECONDITION: set aside or not held;
    /// ABORTED: fenced past this placement).
    static func replicaCannotAnswer(_ error: ShoalError) -> Bool {
        switch error.code {
        case .unavailable, .deadlineExceeded, .failedPrecondition, .aborted: true
        default: false
        }
    }
}
