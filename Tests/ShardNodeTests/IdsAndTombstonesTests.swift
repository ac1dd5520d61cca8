import Foundation
import Logging
import Testing
import VectorCore
import VectorStorage

@testable import ShardNode

/// Ids are their UTF-8 bytes (before and after a restart), write outcomes count what
/// changed, and tombstones are collected once no older write can arrive.
@Suite struct IdsAndTombstonesTests {
    let ref = ReplicaRef(collection: "c", shard: 0)
    let config = ReplicaConfig(dimension: 4, metric: .l2)
    let nfc = "caf\u{E9}"  // é precomposed
    let nfd = "cafe\u{301}"  // e + combining acute

    func open(_ dir: URL, retention: Duration = .seconds(300)) async throws -> ShardStore {
        var options = ShardStore.Options()
        options.tombstoneRetention = retention
        options.replicaCapacity = 1 << 12
        return try await openStore(dir, options: options)
    }

    func tempDir() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("shoal-ids-\(UUID())")
    }

    @Test func canonicallyEquivalentIdsAreTwoPointsAcrossRestarts() async throws {
        #expect(nfc == nfd)  // what Swift's String says, and why ids must not be compared as Strings
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            let store = try await open(dir)
            defer { store.close() }
            try store.createReplica(ref, config: config)
            let replica = try store.replica(ref)
            let a = try await store.write([.upsert(id: nfc, vector: [1, 0, 0, 0], metadata: [:], version: 1)], to: replica)
            let b = try await store.write([.upsert(id: nfd, vector: [0, 1, 0, 0], metadata: [:], version: 2)], to: replica)
            #expect(a.applied == 1 && b.applied == 1 && b.ignored == 0)
            #expect(replica.count(nil) == 2)
            let (found, _) = try replica.get([nfc, nfd], includeTombstones: false)
            #expect(found.map { $0.2?.vector } == [[1, 0, 0, 0], [0, 1, 0, 0]])
            let d = try await store.write([.delete(id: nfc, version: 3)], to: replica)
            #expect(d.deletedLive == 1)
            #expect(replica.count(nil) == 1)
            let (after, missing) = try replica.get([nfc, nfd], includeTombstones: false)
            #expect(Array(after.map { Array($0.0.utf8) }) == [Array(nfd.utf8)])
            #expect(missing.map { Array($0.utf8) } == [Array(nfc.utf8)])
        }
        let store = try await open(dir)
        defer { store.close() }
        let replica = try store.replica(ref)
        #expect(replica.count(nil) == 1)
        #expect(replica.stats().tombstones == 1)
        let (found, _) = try replica.get([nfd], includeTombstones: false)
        #expect(found.first?.2?.vector == [0, 1, 0, 0])
        // Ties are broken by id bytes: "cafe\u{301}" (0x65 …) before "caf\u{E9}" (0xC3 …).
        _ = try await store.write([.upsert(id: nfc, vector: [0, 1, 0, 0], metadata: [:], version: 4)], to: replica)
        let hits = try replica.search(query: [0, 1, 0, 0], k: 2, ef: 16, filter: nil, exact: true).hits.map { Array($0.id.utf8) }
        #expect(hits == [Array(nfd.utf8), Array(nfc.utf8)])
    }

    @Test func deletesOfMissingIdsCountNothingAndTheirTombstonesAreCollected() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            let store = try await open(dir, retention: .seconds(3))  // long enough for the late write below, under load
            try store.createReplica(ref, config: config)
            let replica = try store.replica(ref)
            _ = try await store.write([.upsert(id: "live", vector: [1, 2, 3, 4], metadata: [:], version: 1)], to: replica)
            let missing = (0..<1000).map { WriteOp.delete(id: "ghost-\($0)", version: 2) }
            let outcome = try await store.write(missing + [.delete(id: "live", version: 2)], to: replica)
            #expect(outcome.applied == 1001 && outcome.deletedLive == 1)
            #expect(replica.stats().tombstones == 1001)
            // Until the retention has passed, a late older write is still refused.
            let late = try await store.write([.upsert(id: "live", vector: [0, 0, 0, 1], metadata: [:], version: 1)], to: replica)
            #expect(late.ignored == 1)
            let deadline = ContinuousClock.now + .seconds(20)
            while replica.stats().tombstones > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(replica.stats().tombstones == 0)
            #expect(replica.count(nil) == 0)
            store.close()
        }
        // Collected for good: nothing of them is left in RocksDB for the next start.
        let reopened = try await open(dir)
        defer { reopened.close() }
        #expect(try reopened.replica(ref).stats().tombstones == 0)
    }

    @Test func aReplicaReceivingCopiesKeepsItsTombstones() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try await open(dir)  // the background collector keeps them 300 s: this test collects by hand
        defer { store.close() }
        try store.createReplica(ref, config: config)
        let replica = try store.replica(ref)
        _ = try await store.write([.delete(id: "x", version: 5)], to: replica)
        try await Task.sleep(for: .milliseconds(300))
        replica.noteCopyWrite()  // a move's copy page arrives now
        let retention = Duration.milliseconds(200)
        // Old enough, but a copy arrived within the retention: kept.
        #expect(try replica.collectTombstones(retention: retention, committer: store.committer) == 0)
        #expect(replica.stats().tombstones == 1)
        // A copied older version of the deleted id is still refused.
        let copied = try await store.write([.upsert(id: "x", vector: [1, 1, 1, 1], metadata: [:], version: 4)], to: replica)
        #expect(copied.ignored == 1 && replica.count(nil) == 0)
        // Once the copies stopped for longer than the retention: collected.
        #expect(try replica.collectTombstones(retention: retention, committer: store.committer, now: .now + .seconds(1)) == 1)
        #expect(replica.stats().tombstones == 0)
    }
}
