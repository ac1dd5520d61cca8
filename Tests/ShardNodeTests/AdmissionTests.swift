import Foundation
import Testing
import VectorCore
import VectorIndex
import VectorStorage

@testable import ShardNode

/// A replica is admitted against the node's address-space budget before anything is
/// persisted, and one that cannot be loaded at start is set aside, never a crash.
@Suite struct AdmissionTests {
    let config = ReplicaConfig(dimension: 4, metric: .l2)

    func open(_ dir: URL, budget: Int) async throws -> ShardStore {
        var options = ShardStore.Options()
        options.replicaCapacity = 1 << 12
        options.maxAddressSpace = budget
        return try await openStore(dir, options: options)
    }

    @Test func anIndexThatCannotBeReservedThrows() {
        // 2^32 − 1 rows of 65,536 floats: a petabyte, far past any address space.
        #expect(throws: IndexError.self) { try HNSWIndex(dimension: 65_536, metric: .l2, capacity: Int(UInt32.max)) }
    }

    @Test func aReplicaOverTheBudgetIsRefusedAndNothingIsPersisted() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-admission-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let one = config.hnsw.reservedBytes(dimension: 4, capacity: 1 << 12)
        do {
            let store = try await open(dir, budget: one + one / 2)
            defer { store.close() }
            try store.createReplica(ReplicaRef(collection: "a", shard: 0), config: config)
            #expect(store.reservedAddressSpace == one)
            do {
                try store.createReplica(ReplicaRef(collection: "b", shard: 0), config: config)
                Issue.record("a replica over the budget was created")
            } catch let error as ShoalError {
                #expect(error.code == .resourceExhausted && error.message.contains("--max-address-space-bytes"))
            }
            #expect(store.replicaRefs.map(\.collection) == ["a"])
        }
        let store = try await open(dir, budget: one + one / 2)
        defer { store.close() }
        #expect(store.replicaRefs.map(\.collection) == ["a"])
        #expect(store.setAsideReplicas.isEmpty)
    }

    @Test func aReplicaThatCannotBeLoadedIsSetAsideAndTheOthersServe() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-setaside-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let one = config.hnsw.reservedBytes(dimension: 4, capacity: 1 << 12)
        do {
            let store = try await open(dir, budget: 10 * one)
            defer { store.close() }
            try store.createReplica(ReplicaRef(collection: "a", shard: 0), config: config)
            let replica = try store.replica(ReplicaRef(collection: "a", shard: 0))
            _ = try await store.write([.upsert(id: "p", vector: [1, 2, 3, 4], metadata: [:], version: 1)], to: replica)
        }
        let huge = ReplicaRef(collection: "huge", shard: 0)
        try ShardStore.writeCatalogEntry(directory: dir, huge, number: 7, config: ReplicaConfig(dimension: 65_536, metric: .l2))
        for _ in 0..<2 {  // every start, not just the first
            let store = try await open(dir, budget: 10 * one)
            defer { store.close() }
            #expect(store.replicaRefs.map(\.collection) == ["a"])
            #expect(store.setAsideReplicas.map(\.ref) == [huge])
            #expect(store.setAsideReplicas.first?.number == 7)
            #expect(try store.replica(ReplicaRef(collection: "a", shard: 0)).count(nil) == 1)
            #expect(throws: ShoalError.self) { try store.replica(huge) }
        }
        // Its data is kept (the catalog still names it) until it is dropped.
        let store = try await open(dir, budget: 10 * one)
        defer { store.close() }
        #expect(try store.dropReplica(huge))
        #expect(store.setAsideReplicas.isEmpty)
        let (created, number) = try store.createReplica(huge, config: config)
        #expect(created && number > 7)
    }
}
