@testable import Coordinator
import Logging
import ShoalProto
import ShoalRPC
import Synchronization
import Testing
import VectorCore

/// A fake shard node: answers Search with one hit named after itself, Count with
/// `count` and Health, each after `delay` (bounded by the call's timeout), or fails
/// with `error`. Counts the data calls it was asked.
final class FakeNode: UnaryTransport, Sendable {
    struct Behaviour {
        var delay: Duration = .zero
        var error: ShoalError?
    }

    let id: String
    let count: UInt64
    let behaviour = Mutex(Behaviour())
    private let dataCalls = Atomic<Int>(0)
    var calls: Int { dataCalls.load(ordering: .relaxed) }

    init(_ id: String, count: UInt64 = 10) {
        self.id = id
        self.count = count
    }

    func set(delay: Duration = .zero, error: ShoalError? = nil) { behaviour.withLock { $0 = Behaviour(delay: delay, error: error) } }

    func unary(method: String, request: [UInt8], timeout: Duration?, metadata: [(String, String)]) async throws -> [UInt8] {
        let now = behaviour.withLock { $0 }
        if method != ShardRPC.health.path { dataCalls.add(1, ordering: .relaxed) }
        if now.delay > .zero {
            let wait = min(now.delay, timeout ?? now.delay)
            try await Task.sleep(for: wait)
            if wait < now.delay { throw ShoalError(.deadlineExceeded, "deadline exceeded") }
        }
        if let error = now.error { throw error }
        switch method {
        case ShardRPC.search.path:
            return try Shoal_V1_ReplicaSearchResponse.with { $0.hits = [.with { $0.id = id; $0.distance = 1 }] }.serializedBytes()
        case ShardRPC.count.path:
            return try Shoal_V1_ReplicaCountResponse.with { $0.count = count }.serializedBytes()
        case ShardRPC.health.path:
            return try Shoal_V1_HealthResponse.with { $0.nodeID = id }.serializedBytes()
        default:
            throw ShoalError(.unimplemented, "\(method)")
        }
    }
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

    /// Deadlines are generous (a busy test machine can stall a process for seconds): the
    /// tests tell behaviours apart by who answers, not by how fast.
    func search(allowPartial: Bool = false, timeout: Duration = .seconds(120)) async throws -> Shoal_V1_SearchResponse {
        let request = Shoal_V1_SearchRequest.with {
            $0.collection = "c"
            $0.vector = [0, 0]
            $0.k = 10
            $0.allowPartial = allowPartial
        }
        let state = service.cluster.snapshot
        return try await service.search(try service.plan(request, state: state), deadline: .now + timeout)
    }

    func count() async throws -> UInt64 {
        try await service.count(.with { $0.collection = "c" }, state: service.cluster.snapshot, deadline: .now + .seconds(120)).count
    }

    /// Health checks until `node` is down (each check of a failing node counts one).
    func markDown(_ node: String) async {
        let info = service.cluster.snapshot.nodes[node]!
        nodes[node]!.set(error: ShoalError(.unavailable, "stopped"))
        for _ in 0..<health.options.downAfter { await health.checkOnce([info]) }
    }
}

@Suite struct ReplicaReadTests {
    @Test func aSlowReplicaIsHedgedOnTheOther() async throws {
        let fake = try FakeCluster([["n1", "n2"]])
        fake.nodes["n1"]!.set(delay: .seconds(900))
        for _ in 0..<6 {
            // Without hedging a search that asked n1 first would wait out its deadline and fail.
            let reply = try await fake.search()
            #expect(reply.hits.map(\.id) == ["n2"])
        }
        #expect(fake.nodes["n1"]!.calls >= 2)  // asked first in turn, then hedged
        #expect(fake.health.outstanding("n1") == 0)  // the losing calls were cancelled
    }

    @Test(arguments: [StatusCode.unavailable, .deadlineExceeded, .failedPrecondition, .aborted])
    func anErroringReplicaIsRetriedOnTheOther(_ code: StatusCode) async throws {
        let fake = try FakeCluster([["n1", "n2"]], options: FakeCluster.noHedging)
        fake.nodes["n1"]!.set(error: ShoalError(code, "cannot answer"))
        for _ in 0..<6 {  // answered within the 120 s deadline, so not by a hedge (600 s): retried at once
            #expect(try await fake.search().hits.map(\.id) == ["n2"])
            #expect(try await fake.count() == 10)
        }
        #expect(fake.nodes["n1"]!.calls >= 2)
    }

    @Test func countAndDescribeSumEveryShardFromTheReplicasThatAnswer() async throws {
        let fake = try FakeCluster([["n1", "n2"], ["n2", "n3"]])
        fake.nodes["n2"]!.set(error: ShoalError(.unavailable, "connection refused"))
        for _ in 0..<4 { #expect(try await fake.count() == 20) }
        let described = try await fake.service.describe(.with { $0.name = "c" }, state: fake.service.cluster.snapshot, deadline: .now + .seconds(120))
        #expect(described.shards.map(\.pointCount) == [10, 10] && described.pointCount == 20)
    }

    @Test func otherErrorsPassStraightThrough() async throws {
        let fake = try FakeCluster([["n1", "n2"]])
        for node in fake.nodes.values { node.set(error: ShoalError(.invalidArgument, "bad filter")) }
        let error = await #expect(throws: ShoalError.self) { try await fake.search() }
        #expect(error == ShoalError(.invalidArgument, "bad filter"))
        #expect(fake.nodes["n1"]!.calls + fake.nodes["n2"]!.calls == 1)
    }

    @Test func aDownNodeIsSkippedUnlessAllAre() async throws {
        let fake = try FakeCluster([["n1", "n2"]], options: FakeCluster.noHedging)  // n1 is not even a hedge
        await fake.markDown("n1")
        #expect(fake.health.state(of: "n1") == .down)
        fake.nodes["n1"]!.set()  // it would answer, but is not asked
        let before = fake.nodes["n1"]!.calls
        for _ in 0..<6 { #expect(try await fake.search().hits.map(\.id) == ["n2"]) }
        #expect(fake.nodes["n1"]!.calls == before)

        await fake.markDown("n2")  // and it stays unable to answer
        #expect(fake.health.state(of: "n1") == .down && fake.health.state(of: "n2") == .down)
        for _ in 0..<4 { #expect(try await fake.search().hits.map(\.id) == ["n1"]) }  // all down: asked anyway
        #expect(fake.health.state(of: "n1") == .up)  // a data call succeeded
    }

    @Test func aShardWithoutAnAnsweringReplicaIsUnavailableOrMissing() async throws {
        let fake = try FakeCluster([["n1", "n2"], ["n3", "n2"]])
        fake.nodes["n1"]!.set(error: ShoalError(.unavailable, "connection refused"))
        fake.nodes["n2"]!.set(delay: .seconds(30))
        let error = await #expect(throws: ShoalError.self) { try await fake.search(timeout: .milliseconds(500)) }
        #expect(error?.code == .deadlineExceeded || error?.code == .unavailable)
        #expect(error?.message.contains("shard 0 of c") == true, "\(error?.message ?? "")")

        fake.nodes["n2"]!.set(error: ShoalError(.unavailable, "connection refused"))
        let unavailable = await #expect(throws: ShoalError.self) { try await fake.search() }
        #expect(unavailable?.code == .unavailable)
        #expect(unavailable?.message.contains("shard 0 of c") == true)
        #expect(unavailable?.message.contains("node n1") == true && unavailable?.message.contains("node n2") == true)

        let partial = try await fake.search(allowPartial: true)
        #expect(partial.partial && partial.missingShards == [0])
        #expect(partial.hits.map(\.id) == ["n3"])
    }

    @Test func abortedFromEveryReplicaReachesThePlacementRefresh() async throws {
        let fake = try FakeCluster([["n1", "n2"]])
        for node in fake.nodes.values { node.set(error: ShoalError(.aborted, "fenced past epoch")) }
        let error = await #expect(throws: ShoalError.self) { try await fake.search(allowPartial: true) }
        #expect(error?.code == .aborted)
    }

    @Test func healthGoesUpSuspectDownUp() async throws {
        let fake = try FakeCluster([["n1", "n2"]])
        let health = fake.health
        let n1 = fake.service.cluster.snapshot.nodes["n1"]!
        #expect(health.state(of: "unknown") == .up)
        await health.checkOnce([n1])
        #expect(health.state(of: "n1") == .up)
        fake.nodes["n1"]!.set(error: ShoalError(.unavailable, "stopped"))
        await health.checkOnce([n1])
        #expect(health.state(of: "n1") == .suspect)
        await health.checkOnce([n1])
        #expect(health.state(of: "n1") == .suspect && health.downSince("n1") == nil)
        await health.checkOnce([n1])
        #expect(health.state(of: "n1") == .down)
        let since = try #require(health.downSince("n1"))
        await health.checkOnce([n1])
        #expect(health.downSince("n1") == since)  // down since the first time
        fake.nodes["n1"]!.set()
        await health.checkOnce([n1])
        #expect(health.state(of: "n1") == .up && health.downSince("n1") == nil)

        health.reportFailure("n1")
        #expect(health.state(of: "n1") == .suspect)
        health.reportSuccess("n1", latency: .milliseconds(1))
        #expect(health.state(of: "n1") == .up)
        health.reportFailure("n9")  // a node never checked
        #expect(health.state(of: "n9") == .suspect)
    }

    @Test func theMonitorChecksInTheBackground() async throws {
        var options = NodeHealthMonitor.Options()
        options.interval = .milliseconds(10)
        options.timeout = .milliseconds(50)
        let fake = try FakeCluster([["n1", "n2"]], options: options)
        let cluster = fake.service.cluster
        fake.nodes["n2"]!.set(delay: .seconds(30))  // paused: every check times out
        fake.health.start { Array(cluster.snapshot.nodes.values) }
        defer { fake.health.stop() }
        let deadline = ContinuousClock.now + .seconds(30)
        while fake.health.state(of: "n2") != .down, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(fake.health.state(of: "n2") == .down)
        #expect(fake.health.state(of: "n1") == .up)
    }

    @Test func hedgeDelayIsTheRecentP95WithinBounds() throws {
        let health = NodeHealthMonitor(directory: NodeDirectory { _ in FakeNode("x") })
        #expect(health.hedgeDelay(for: "n1") == .milliseconds(50))  // no samples yet
        for ms in 1...100 { health.reportSuccess("n1", latency: .milliseconds(ms)) }
        #expect(health.hedgeDelay(for: "n1") == .milliseconds(95))
        for _ in 0..<256 { health.reportSuccess("n1", latency: .microseconds(10)) }  // the ring forgets the old ones
        #expect(health.hedgeDelay(for: "n1") == .milliseconds(5))
        for _ in 0..<256 { health.reportSuccess("n2", latency: .seconds(20)) }
        #expect(health.hedgeDelay(for: "n2") == .seconds(1))
    }

    @Test func replicasAreAskedLeastLoadedFirstThenInTurn() {
        let health = NodeHealthMonitor(directory: NodeDirectory { _ in FakeNode("x") })
        let ids = ["a", "b", "c"]
        let firsts = (0..<6).map { _ in health.preferred(ids) { $0 }[0] }
        #expect(Set(firsts) == Set(ids))  // ties in turn
        health.begin("a")
        health.begin("b")
        #expect((0..<6).allSatisfy { _ in health.preferred(ids) { $0 }[0] == "c" })
        health.end("a")
        health.end("b")
    }
}
