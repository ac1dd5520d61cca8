@testable import Coordinator
import Foundation
import Logging
import ShoalProto
import ShoalRPC
import Synchronization
import Testing
import VectorCore

/// A fake shard node. Answers the node-level reads (SearchShards, GetShards,
/// CountShards) with one report per shard asked, in the order asked, and Health
/// (delayed and failing as the data calls are).
///
/// - a whole call: after `delay` (bounded by the call's timeout, past it
///   DEADLINE_EXCEEDED) and once `holdUntil` holds (polled); or fails with `error`;
/// - per shard: `shardErrors[shard]` is that shard's report (the others answer);
///   otherwise its `shards[shard]` data, or one hit named after the node at distance 1
///   and a count of `count`;
/// - a search answers the best `k` of its answered shards' hits, merged as a node does;
///   a get answers the asked ids found in `points`.
///
/// Records every data call (method and the shards it covered); `started` counts the calls
/// started, `completed` those whose completion has returned (the fan-out has taken the
/// answer). `holdStartUntil` keeps `start` from returning, its call already running.
final class FakeNode: UnaryTransport, Sendable {
    struct ShardData {
        var hits: [Shoal_V1_ScoredPoint] = []
        var count: UInt64 = 0
        var strategy: Shoal_V1_SearchStrategy = .unspecified
        var distancesComputed: UInt64 = 0
        var unindexedScanned: UInt64 = 0
    }

    struct Behaviour {
        var delay: Duration = .zero
        var holdUntil: (@Sendable () -> Bool)?
        /// `start` returns only once this holds (polled, blocking the caller's thread).
        var holdStartUntil: (@Sendable () -> Bool)?
        var error: ShoalError?
        var shardErrors: [UInt32: ShoalError] = [:]
        var shards: [UInt32: ShardData] = [:]
        var points: [String: Shoal_V1_Point] = [:]
    }

    /// One data call: its method and the shard reads it carried, in request order.
    struct Call {
        let method: String
        let reads: [Shoal_V1_ShardRead]
        var shards: [UInt32] { reads.map(\.shardID) }
    }

    let id: String
    let count: UInt64
    let behaviour = Mutex(Behaviour())
    private let log = Mutex<[Call]>([])
    private let starts = Atomic<Int>(0)
    private let completions = Atomic<Int>(0)

    var recorded: [Call] { log.withLock { $0 } }
    var calls: Int { log.withLock { $0.count } }
    var started: Int { starts.load(ordering: .acquiring) }
    var completed: Int { completions.load(ordering: .acquiring) }

    init(_ id: String, count: UInt64 = 10) {
        self.id = id
        self.count = count
    }

    /// Sets the whole-call behaviour; the per-shard setup stays.
    func set(delay: Duration = .zero, error: ShoalError? = nil) {
        behaviour.withLock {
            $0.delay = delay
            $0.error = error
            $0.holdUntil = nil
        }
    }

    func update(_ change: (inout Behaviour) -> Void) { behaviour.withLock { change(&$0) } }

    func forgetCalls() { log.withLock { $0.removeAll() } }

    func start(
        method: String, request: [UInt8], timeout: Duration?, metadata: [(String, String)], done: @escaping CallCompletion
    ) -> any StartedCall {
        starts.add(1, ordering: .releasing)
        let hold = behaviour.withLock { $0.holdStartUntil }
        let call = FakeCall(task: Task {
            do {
                done(.success(try await unary(method: method, request: request, timeout: timeout, metadata: metadata)))
            } catch {
                done(.failure(ShoalError(handlerError: error)))
            }
            completions.add(1, ordering: .releasing)
        })
        if let hold {
            let deadline = ContinuousClock.now + .seconds(600)
            while !hold(), ContinuousClock.now < deadline { usleep(2000) }
        }
        return call
    }

    func unary(method: String, request: [UInt8], timeout: Duration?, metadata: [(String, String)]) async throws -> [UInt8] {
        let isHealth = method == ShardRPC.health.path
        let reads = isHealth ? [] : try Self.reads(method: method, request: request)
        if !isHealth { log.withLock { $0.append(Call(method: method, reads: reads)) } }
        let now = behaviour.withLock { $0 }
        try await wait(now, timeout: timeout)
        if let error = now.error { throw error }
        if isHealth { return try Shoal_V1_HealthResponse.with { $0.nodeID = id }.serializedBytes() }
        let reports = reads.map { report(for: $0.shardID, now) }
        switch method {
        case ShardRPC.searchShards.path:
            let k = Int(try Shoal_V1_NodeSearchRequest(serializedBytes: request).k)
            let lists = reports.filter { $0.code == 0 }.map { data(for: $0.shardID, now).hits.sorted(by: TopKMerge.precedes) }
            return try Shoal_V1_NodeSearchResponse.with {
                $0.hits = TopKMerge.merge(lists, k: k)
                $0.shards = reports
            }.serializedBytes()
        case ShardRPC.getShards.path:
            return try Shoal_V1_NodeGetResponse.with { reply in
                reply.shards = reports
                for (read, report) in zip(reads, reports) where report.code == 0 {
                    reply.points += read.ids.compactMap { now.points[$0] }
                }
            }.serializedBytes()
        default:
            return try Shoal_V1_NodeCountResponse.with { $0.shards = reports }.serializedBytes()
        }
    }

    private static func reads(method: String, request: [UInt8]) throws -> [Shoal_V1_ShardRead] {
        switch method {
        case ShardRPC.searchShards.path: try Shoal_V1_NodeSearchRequest(serializedBytes: request).shards
        case ShardRPC.getShards.path: try Shoal_V1_NodeGetRequest(serializedBytes: request).shards
        case ShardRPC.countShards.path: try Shoal_V1_NodeCountRequest(serializedBytes: request).shards
        default: throw ShoalError(.unimplemented, "\(method)")
        }
    }

    private func wait(_ now: Behaviour, timeout: Duration?) async throws {
        let deadline = ContinuousClock.now + (timeout ?? .seconds(600))
        if now.delay > .zero {
            try await Task.sleep(until: min(.now + now.delay, deadline))
        }
        if let hold = now.holdUntil {
            while !hold(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
        }
        if ContinuousClock.now >= deadline { throw ShoalError(.deadlineExceeded, "deadline exceeded") }
    }

    private func data(for shard: UInt32, _ now: Behaviour) -> ShardData {
        now.shards[shard] ?? ShardData(hits: [.with { $0.id = id; $0.distance = 1 }], count: count)
    }

    private func report(for shard: UInt32, _ now: Behaviour) -> Shoal_V1_ShardReadReport {
        .with {
            $0.shardID = shard
            if let error = now.shardErrors[shard] {
                $0.code = error.code.rawValue
                $0.message = error.message
                return
            }
            let data = data(for: shard, now)
            $0.count = data.count
            $0.strategy = data.strategy
            $0.distancesComputed = data.distancesComputed
            $0.unindexedScanned = data.unindexedScanned
        }
    }
}

/// A fake call: cancelling it cancels its task (the fake's wait then throws CANCELLED).
private struct FakeCall: StartedCall {
    let task: Task<Void, Never>
    func cancel() { task.cancel() }
}

/// A metadata store that only holds one state.
struct HeldStore: MetadataStore {
    let held: StoredState
    func load() async throws -> StoredState? { held }
    func store(_ next: ClusterState, previous: ClusterState, over revision: Int64, term: Int64?) async throws -> Int64? { nil }
}

/// A service over fake nodes n1…n3 and collection "c": each shard's replicas on the
/// nodes `placement` lists, in that order.
struct FakeCluster {
    let nodes: [String: FakeNode]
    let service: VectorStoreService
    /// The service's methods as a client calls them (the handlers it registers).
    let api: LocalTransport
    var health: NodeHealthMonitor { service.cluster.health }

    init(_ placement: [[String]], options: NodeHealthMonitor.Options = FakeCluster.fastHedging) throws {
        var state = ClusterState()
        for id in ["n1", "n2", "n3"] { try state.addNode(id: id, address: "\(id):1") }
        let config = CollectionConfig(name: "c", dimension: 2, metric: .l2, shardCount: UInt32(placement.count),
                                      replicationFactor: UInt32(placement[0].count))
        try state.addCollection(config, shards: placement.enumerated().map { shard, ids in
            ShardAssignment(shardId: UInt32(shard), replicas: ids.map { Replica(nodeId: $0) })
        })
        let fakes = Dictionary(uniqueKeysWithValues: ["n1", "n2", "n3"].map { ($0, FakeNode($0)) })
        let directory = NodeDirectory { address in fakes[String(address.prefix(2))]! }
        let cluster = ClusterController(
            store: HeldStore(held: StoredState(state: state, revision: 1)), loaded: StoredState(state: state, revision: 1),
            nodes: directory, health: NodeHealthMonitor(directory: directory, options: options), logger: Logger(label: "test"))
        nodes = fakes
        service = VectorStoreService(cluster: cluster, logger: Logger(label: "test"))
        api = LocalTransport(workers: WorkerPool(name: "fake-api", threads: 1, queueLimit: 8, maxWait: .seconds(600)))
        try service.register(on: api)
    }

    static var fastHedging: NodeHealthMonitor.Options {
        var options = NodeHealthMonitor.Options()
        options.defaultHedgeDelay = .milliseconds(20)
        return options
    }

    /// Hedging only after ten minutes: longer than any test's deadline.
    static var noHedging: NodeHealthMonitor.Options {
        var options = NodeHealthMonitor.Options()
        options.defaultHedgeDelay = .seconds(600)
        options.minHedgeDelay = .seconds(600)
        options.maxHedgeDelay = .seconds(600)
        return options
    }

    /// Every data call the nodes recorded, by node id.
    var recorded: [String: [FakeNode.Call]] { nodes.mapValues(\.recorded) }

    func forgetCalls() { for node in nodes.values { node.forgetCalls() } }

    /// Deadlines are generous (a busy test machine can stall a process for seconds): the
    /// tests tell behaviours apart by who answers, not by how fast.
    func search(
        k: UInt32 = 10, offset: UInt32 = 0, explain: Bool = false, allowPartial: Bool = false, timeout: Duration = .seconds(120)
    ) async throws -> Shoal_V1_SearchResponse {
        let request = Shoal_V1_SearchRequest.with {
            $0.collection = "c"
            $0.vector = [0, 0]
            $0.k = k
            $0.offset = offset
            $0.explain = explain
            $0.allowPartial = allowPartial
        }
        return try await api.call(VectorStoreRPC.search, request, timeout: timeout)
    }

    func count(allowPartial: Bool = false) async throws -> Shoal_V1_CountResponse {
        try await api.call(VectorStoreRPC.count, .with { $0.collection = "c"; $0.allowPartial = allowPartial }, timeout: .seconds(120))
    }

    func count() async throws -> UInt64 { try await count(allowPartial: false).count }

    func describe() async throws -> Shoal_V1_DescribeCollectionResponse {
        try await api.call(VectorStoreRPC.describeCollection, .with { $0.name = "c" }, timeout: .seconds(120))
    }

    func get(_ ids: [String]) async throws -> Shoal_V1_GetResponse {
        try await api.call(VectorStoreRPC.get, .with { $0.collection = "c"; $0.ids = ids }, timeout: .seconds(120))
    }

    /// Health checks until `node` is down (each check of a failing node counts one).
    func markDown(_ node: String) async {
        let info = service.cluster.snapshot.nodes[node]!
        nodes[node]!.set(error: ShoalError(.unavailable, "stopped"))
        for _ in 0..<health.options.downAfter { await health.checkOnce([info]) }
    }

    /// Makes `others` look busy (one request outstanding each) so every shard asks its
    /// replica on `node` first; undone by `release`.
    func preferring(_ node: String) -> [String] {
        let others = nodes.keys.filter { $0 != node }
        for other in others { health.begin(other) }
        return others
    }

    func release(_ others: [String]) { for other in others { health.end(other) } }
}
