import Foundation
import ShoalProto
import Testing
import VectorCore

@testable import ShardNode

/// A node's own limits: distinct field names per replica (job-atomic), the committer's
/// queue, and the indexing backlog.
@Suite struct NodeLimitsTests {
    let config = ReplicaConfig(dimension: 2, metric: .l2)
    let ref = ReplicaRef(collection: "c", shard: 0)

    func withStore(_ limits: RequestLimits, pausedIndexing: Bool = false, _ body: (ShardStore, Replica) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-limits-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        var options = ShardStore.Options()
        options.limits = limits
        options.sync = false
        options.indexingPaused = pausedIndexing
        let store = try ShardStore(directory: dir, options: options, logger: LogCapture().logger)
        try store.createReplica(ref, config: config)
        try await body(store, try store.replica(ref))
        store.close()
    }

    static func upsert(_ id: String, _ metadata: Metadata = [:], version: UInt64 = 1) -> WriteOp {
        .upsert(id: id, vector: [1, 2], metadata: metadata, version: version)
    }

    static func code(_ body: () async throws -> Void) async -> (StatusCode, String)? {
        do {
            try await body()
            return nil
        } catch let error as ShoalError {
            return (error.code, error.message)
        } catch {
            return (.unknown, "\(error)")
        }
    }

    @Test func fieldNamesAreBoundedPerReplicaAndJobsAreRefusedWhole() async throws {
        var limits = RequestLimits()
        limits.maxFieldNamesPerCollection = 6
        try await withStore(limits) { store, replica in
            _ = try await store.write([Self.upsert("a", ["f1": 1, "f2": 2]), Self.upsert("b", ["f3": 3])], to: replica)
            // Three names held; a job bringing 4 more (7 > 6) is refused whole.
            let refused = await Self.code {
                _ = try await store.write([Self.upsert("c", ["f1": 1]), Self.upsert("d", ["g1": 1, "g2": 2, "g3": 3, "g4": 4])], to: replica)
            }
            #expect(refused?.0 == .resourceExhausted)
            #expect(refused?.1.contains("holds 3 distinct metadata field names and this write brings 4 more; the limit is 6") == true)
            #expect(try replica.get(["c", "d"], includeTombstones: true).missing == ["c", "d"])
            // Ten concurrent jobs with one new name each for three free slots: exactly three
            // commit, whether or not they share a group; the rest write nothing.
            let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
                for i in 0..<10 {
                    group.addTask {
                        let ok = await Self.code { _ = try await store.write([Self.upsert("n\(i)", ["h\(i)": 1, "f2": 0])], to: replica) } == nil
                        return (i, ok)
                    }
                }
                var all: [(Int, Bool)] = []
                for await o in group { all.append(o) }
                return all
            }
            let committed = outcomes.filter(\.1).map { "n\($0.0)" }
            #expect(committed.count == 3)
            #expect(replica.stats().points == 2 + 3)
            let missing = Set(try replica.get((0..<10).map { "n\($0)" }, includeTombstones: true).missing)
            #expect(missing == Set((0..<10).map { "n\($0)" }).subtracting(committed))
            // Names already held are still accepted.
            _ = try await store.write([Self.upsert("z", ["f1": 9, "h\(committed[0].dropFirst())": 1])], to: replica)
        }
    }

    @Test func aBatchLargerThanTheQueueIsRefusedAtOnce() async throws {
        var limits = RequestLimits()
        limits.maxQueuedWriteOps = 10
        try await withStore(limits) { store, replica in
            _ = try await store.write((0..<10).map { Self.upsert("p\($0)") }, to: replica)
            let refused = await Self.code { _ = try await store.write((0..<11).map { Self.upsert("q\($0)") }, to: replica) }
            #expect(refused?.0 == .resourceExhausted)
            #expect(refused?.1.contains("the node's write queue is full") == true)
            #expect(refused?.1.contains("the limit is 10, --max-queued-write-ops") == true)
            #expect(replica.stats().points == 10)
        }
    }

    @Test func upsertsWaitForTheIndexerDeletesDoNot() async throws {
        var limits = RequestLimits()
        limits.maxIndexBacklog = 5
        try await withStore(limits, pausedIndexing: true) { store, replica in
            _ = try await store.write((0..<5).map { Self.upsert("p\($0)") }, to: replica)
            #expect(store.indexBacklog == 5)
            let refused = await Self.code { _ = try await store.write([Self.upsert("late")], to: replica) }
            #expect(refused?.0 == .resourceExhausted)
            #expect(refused?.1.contains("the node's indexing backlog is full (5 points not yet in a graph, the limit is 5, --max-index-backlog); retry later") == true)
            let outcome = try await store.write([.delete(id: "p0", version: 2)], to: replica)
            #expect(outcome.applied == 1)
            #expect(store.indexBacklog == 4)
            _ = try await store.write([Self.upsert("late")], to: replica)  // room again
        }
    }

    @Test func theNodeChecksMetadataBytesAndInListsWithItsLimits() throws {
        var limits = RequestLimits()
        limits.maxMetadataBytes = 1_000
        limits.maxInValues = 3
        let request = Shoal_V1_WriteBatchRequest.with {
            $0.ops = [.with {
                $0.version = 1
                $0.upsert = .with {
                    $0.id = "p"
                    $0.vector = [1, 2]
                    $0.metadata = ["a": .with { $0.stringValue = String(repeating: "x", count: 600) },
                                   "b": .with { $0.stringValue = String(repeating: "y", count: 600) }]
                }
            }]
        }
        let error = #expect(throws: ShoalError.self) { _ = try decodeOps(request, config: config, limits: limits) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message == #"ops[0] (id "p"): metadata is 1210 bytes; the limit is 1000 bytes per point (--max-metadata-bytes)"#)
        _ = try decodeOps(request, config: config, limits: RequestLimits())
        let filter = Shoal_V1_Filter.with {
            $0.condition = .with {
                $0.field = "n"
                $0.isIn = .with { $0.values = (0..<4).map { i in .with { $0.intValue = Int64(i) } } }
            }
        }
        let inError = #expect(throws: ShoalError.self) { _ = try Filter(proto: filter, limits: limits) }
        #expect(inError?.message.contains("in has 4 values; the limit is 3 (--max-in-values)") == true)
    }
}
