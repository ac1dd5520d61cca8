import Foundation
import Testing
import VectorCore

@testable import ShardNode

/// A replica's number is its incarnation: never given to another replica of the
/// node, across drops and restarts, so a drop can name the one it means.
@Suite struct ReplicaIncarnationTests {
    let config = ReplicaConfig(dimension: 4, metric: .l2)

    static func freshDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("shoal-incarnation-\(UUID())")
    }

    @Test func numbersAreNeverReusedAcrossDropsAndRestarts() async throws {
        let dir = Self.freshDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = ReplicaRef(collection: "c", shard: 0)
        let b = ReplicaRef(collection: "c", shard: 1)
        let log = LogCapture()
        do {
            let store = try await RecoveryTests().open(dir, log: log)
            #expect(try store.createReplica(a, config: config) == (true, 0))
            #expect(try store.createReplica(b, config: config) == (true, 1))
            #expect(try store.createReplica(b, config: config) == (false, 1))  // exists: the same incarnation
            #expect(try store.dropReplica(b))  // the highest number goes
            #expect(try store.createReplica(b, config: config) == (true, 2))
            #expect(try store.dropReplica(b))
            store.close()
        }
        let store = try await RecoveryTests().open(dir, log: log)
        #expect(try store.createReplica(b, config: config) == (true, 3))  // not 1 or 2 again, though neither exists
        store.close()
    }

    @Test func dataNoCatalogEntryNamesIsDeletedAtStart() async throws {
        let dir = Self.freshDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let kept = ReplicaRef(collection: "c", shard: 0)
        let lost = ReplicaRef(collection: "c", shard: 1)
        let log = LogCapture()
        var lostNumber: UInt32 = 0
        do {
            let store = try await RecoveryTests().open(dir, log: log)
            try store.createReplica(kept, config: config)
            lostNumber = try store.createReplica(lost, config: config).number
            for ref in [kept, lost] {
                _ = try await store.write([.upsert(id: "p", vector: [1, 2, 3, 4], metadata: [:], version: 1)], to: try store.replica(ref))
            }
            // A drop stopped halfway: the catalog entry is gone, the data is not.
            try store.db.delete(Keys.catalog(lost), sync: true)
            store.close()
        }
        let store = try await RecoveryTests().open(dir, log: log)
        #expect(log.contains("deleted the data of a replica dropped before the node stopped"))
        var left = 0
        try store.db.forEach(prefix: Keys.replica(lostNumber)) { _, _ in left += 1; return true }
        #expect(left == 0)
        #expect(try store.replica(kept).stats().points == 1)
        store.close()
    }

    @Test func aDropNamingAnotherIncarnationKeepsTheReplica() async throws {
        let dir = Self.freshDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ref = ReplicaRef(collection: "c", shard: 0)
        let store = try await RecoveryTests().open(dir, log: LogCapture())
        try store.createReplica(ref, config: config)
        try store.dropReplica(ref)
        let (_, current) = try store.createReplica(ref, config: config)
        _ = try await store.write([.upsert(id: "p", vector: [1, 2, 3, 4], metadata: [:], version: 1)], to: try store.replica(ref))
        #expect(try store.dropReplica(ref, number: current - 1) == false)  // a late drop of the earlier one
        #expect(try store.replica(ref).stats().points == 1)
        #expect(try store.dropReplica(ref, number: current))
        #expect(throws: ShoalError.self) { try store.replica(ref) }
        store.close()
    }
}
