import Coordinator
import Etcd
import EtcdTestSupport
import Foundation
import Logging
import Testing
import VectorCore

/// The cluster state in a real etcd: compare-and-swap changes, the leader's term as a
/// fence, the election through a lease, and the version ceiling.
@Suite(.serialized) struct EtcdMetadataTests {
    private func withStore(_ body: (EtcdTestServer, EtcdClient, EtcdMetadataStore) async throws -> Void) async throws {
        try await BridgeTestGate.run {
            let etcd = try await EtcdTestServer()
            defer { etcd.stop() }
            let client = try EtcdClient(endpoints: [etcd.endpoint], callTimeout: .seconds(5))
            try await body(etcd, client, EtcdMetadataStore(client: client, prefix: "/test/"))
        }
    }

    private func twoNodes() throws -> ClusterState {
        var state = ClusterState()
        try state.addNode(id: "n1", address: "127.0.0.1:1")
        try state.addNode(id: "n2", address: "127.0.0.1:2")
        let config = CollectionConfig(name: "c", dimension: 4, metric: .l2, shardCount: 2)
        try state.addCollection(config, shards: [ShardAssignment(shardId: 0, replicas: [Replica(nodeId: "n1")]),
                                                 ShardAssignment(shardId: 1, replicas: [Replica(nodeId: "n2")])])
        return state
    }

    @Test func changesAreCompareAndSwapOnTheRevisionTheyWereComputedFrom() async throws {
        try await withStore { _, _, store in
            #expect(try await store.load() == nil)
            let first = try twoNodes()
            let r1 = try #require(try await store.store(first, previous: ClusterState(), over: 0, term: nil))
            #expect(try await store.load() == StoredState(state: first, revision: r1))
            var second = first
            try second.removeCollection("c", nowMs: 1)
            let r2 = try #require(try await store.store(second, previous: first, over: r1, term: nil))
            #expect(r2 > r1)
            // A change computed from the older revision is refused: nothing stored.
            var stale = first
            try stale.addNode(id: "n3", address: "127.0.0.1:3")
            #expect(try await store.store(stale, previous: first, over: r1, term: nil) == nil)
            let loaded = try #require(try await store.load())
            #expect(loaded.state == second && loaded.revision == r2)
            #expect(loaded.state.collections.isEmpty && loaded.state.deletedCollections["c"]?.deletedMs == 1)
        }
    }

    @Test func aDeposedLeadersChangeIsRefusedByEtcd() async throws {
        try await withStore { _, client, store in
            let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
            let a = CoordinatorSession(client: client, store: store, name: "a", address: "127.0.0.1:10", ttl: .seconds(2), logger: quiet)
            let b = CoordinatorSession(client: client, store: store, name: "b", address: "127.0.0.1:11", ttl: .seconds(2), logger: quiet)
            try await a.open()
            try await b.open()
            let leadA = Task { await a.run(onLead: { _ in }, onFollow: {}) }
            defer { leadA.cancel() }
            try await eventually { a.currentTerm != nil }
            let leadB = Task { await b.run(onLead: { _ in }, onFollow: {}) }
            defer { leadB.cancel() }
            try await eventually { b.leaderAddress == "127.0.0.1:10" }
            #expect(b.currentTerm == nil)
            let termA = try #require(a.currentTerm)
            let state = try twoNodes()
            let r1 = try #require(try await store.store(state, previous: ClusterState(), over: 0, term: termA))
            // A stops renewing (as if paused): its lease runs out and b is elected, with a higher term.
            leadA.cancel()
            await a.close()
            try await eventually(timeout: .seconds(10)) { b.currentTerm != nil }
            let termB = try #require(b.currentTerm)
            #expect(termB > termA)
            #expect(a.currentTerm == nil)
            var change = state
            try change.addNode(id: "n3", address: "127.0.0.1:3")
            let refused = await #expect(throws: ShoalError.self) {
                _ = try await store.store(change, previous: state, over: r1, term: termA)
            }
            #expect(refused?.code == .failedPrecondition)
            #expect(try await store.load()?.state == state)  // nothing changed
            #expect(try await store.store(change, previous: state, over: r1, term: termB) != nil)
            let listed = try await b.coordinators()
            #expect(listed.leader?.name == "b" && listed.term == termB)
            await b.close()
        }
    }

    @Test func theVersionCeilingOnlyGrowsAndVersionsStartAboveIt() async throws {
        try await withStore { _, client, _ in
            let ceiling = EtcdVersionCeiling(client: client, key: "/test/versions")
            #expect(try await ceiling.current() == 0)
            #expect(try await ceiling.raise(to: 500) == 500)
            #expect(try await ceiling.raise(to: 100) == 500)  // never lowered
            // A coordinator whose wall clock is far behind still starts above the ceiling.
            let far = HLCVersion(physicalMillis: 10_000_000, logical: 0).rawValue
            _ = try await ceiling.raise(to: far)
            let versions = WriteVersions(clock: HybridLogicalClock(issuer: 3, wallClock: { 1_000 }), ceiling: ceiling, windowMillis: 50)
            try await versions.start()
            var last: UInt64 = 0
            for _ in 0..<200 {
                let v = try await versions.next()
                #expect(v > far && v > last && v % HybridLogicalClock.issuers == 3)
                last = v
            }
            #expect(try await ceiling.current() > last)  // reserved ahead of use
        }
    }

    private func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw EtcdTestServerError("timed out") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
