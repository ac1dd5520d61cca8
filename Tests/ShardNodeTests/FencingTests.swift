import Foundation
import ShoalProto
import Synchronization
import Testing
import VectorCore
import VectorStorage

@testable import ShardNode

/// The leader term fences the leader's commands; a replica's placement fence refuses
/// data requests routed by an older placement, and is ordered with the writes.
@Suite struct FencingTests {
    static let config = Shoal_V1_CollectionConfig.with {
        $0.name = "faces"
        $0.dimension = 4
        $0.metric = .l2
    }

    static func freshDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("shoal-fencing-\(UUID())")
    }

    static var options: ShardStore.Options {
        var options = ShardStore.Options()
        options.replicaCapacity = 1 << 12
        return options
    }

    /// Runs `body` on a node in a fresh folder, then closes the node and deletes the folder.
    static func withNode(_ body: (NodeService) async throws -> Void) async throws {
        let dir = freshDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let node = try NodeService(name: "n", dataDirectory: dir, options: options, logger: LogCapture().logger)
        defer { node.close() }
        try await body(node)
    }

    static func ref(_ shard: UInt32 = 0) -> Shoal_V1_ReplicaRef {
        .with { $0.collection = "faces"; $0.shardID = shard }
    }

    static func create(_ node: NodeService, shard: UInt32 = 0, term: UInt64 = 0) throws -> Shoal_V1_CreateReplicaResponse {
        try node.createReplica(.with { $0.config = config; $0.shardID = shard; $0.term = term })
    }

    static func write(_ node: NodeService, _ id: String, version: UInt64 = 1, epoch: UInt64 = 0, copy: Bool = false, term: UInt64 = 0) async throws
        -> Shoal_V1_WriteBatchResponse
    {
        try await node.writeBatch(.with {
            $0.replica = ref()
            $0.ops = [.with { op in
                op.version = version
                op.upsert = .with { $0.id = id; $0.vector = [1, 2, 3, 4] }
            }]
            $0.copy = copy
            $0.term = term
            $0.placementEpoch = epoch
        })
    }

    static func fence(_ node: NodeService, minEpoch: UInt64 = 0, retire: Bool = false, term: UInt64 = 0, incarnation: UInt32? = nil) throws
        -> Shoal_V1_FenceReplicaResponse
    {
        try node.fenceReplica(.with {
            $0.replica = ref()
            $0.minEpoch = minEpoch
            $0.retire = retire
            $0.term = term
            if let incarnation { $0.incarnation = incarnation }
        })
    }

    static func get(_ node: NodeService, _ ids: [String], epoch: UInt64 = 0) throws -> Shoal_V1_ReplicaGetResponse {
        try node.get(.with { $0.replica = ref(); $0.ids = ids; $0.placementEpoch = epoch })
    }

    static func search(_ node: NodeService, epoch: UInt64) throws -> Shoal_V1_ReplicaSearchResponse {
        try node.search(.with { $0.replica = ref(); $0.vector = [1, 2, 3, 4]; $0.k = 10; $0.placementEpoch = epoch })
    }

    static func count(_ node: NodeService, epoch: UInt64) throws -> UInt64 {
        try node.count(.with { $0.replica = ref(); $0.placementEpoch = epoch }).count
    }

    static func stats(_ node: NodeService) throws -> Shoal_V1_StatsResponse {
        try node.stats(Shoal_V1_StatsRequest())
    }

    /// The status `body` fails with (nil: it succeeded).
    static func refusal(_ body: () async throws -> Void) async -> ShoalError? {
        do {
            try await body()
            return nil
        } catch let error as ShoalError {
            return error
        } catch {
            Issue.record("not a ShoalError: \(error)")
            return nil
        }
    }

    // MARK: leader term

    @Test func aNewerTermRaisesTheHighestAndAnOlderOneChangesNothing() async throws {
        try await Self.withNode { node in
            #expect(try Self.stats(node).highestTerm == 0)
            _ = try Self.create(node, term: 5)
            #expect(try Self.stats(node).highestTerm == 5)

            // Create: an older term is refused and creates nothing; term 0 is not fenced.
            let old = await Self.refusal { _ = try Self.create(node, shard: 1, term: 3) }
            #expect(old?.code == .failedPrecondition)
            #expect(old?.message == "leader term 3 is older than term 5 this node has seen: a newer coordinator leads; this request changes nothing")
            #expect(node.store.replicaRefs.count == 1)
            _ = try Self.create(node, shard: 2, term: 0)

            // Copy pages carry the term; ordinary writes are not checked against it.
            #expect(await Self.refusal { _ = try await Self.write(node, "stale-copy", copy: true, term: 4) }?.code == .failedPrecondition)
            #expect(try Self.get(node, ["stale-copy"]).missingIds == ["stale-copy"])
            _ = try await Self.write(node, "unfenced-copy", copy: true, term: 0)
            _ = try await Self.write(node, "data", term: 1)  // copy false: the term is ignored
            _ = try await Self.write(node, "copy-7", copy: true, term: 7)
            #expect(try Self.stats(node).highestTerm == 7)
            #expect(try Self.get(node, ["unfenced-copy", "data", "copy-7"]).points.count == 3)

            // Fence and drop of an older term change nothing.
            #expect(await Self.refusal { _ = try Self.fence(node, minEpoch: 9, term: 6) }?.code == .failedPrecondition)
            #expect(try Self.stats(node).replicas[0].minEpoch == 0)
            let drop = await Self.refusal { _ = try node.dropReplica(.with { $0.replica = Self.ref(); $0.term = 6 }) }
            #expect(drop?.code == .failedPrecondition)
            #expect(try node.store.replica(ReplicaRef(collection: "faces", shard: 0)).stats().points == 3)

            // The current term and a newer one pass; the newer one raises the highest.
            #expect(try Self.fence(node, minEpoch: 9, term: 7).minEpoch == 9)
            #expect(try node.dropReplica(.with { $0.replica = Self.ref(); $0.term = 8 }).dropped)
            #expect(try Self.stats(node).highestTerm == 8)
            #expect(await Self.refusal { _ = try Self.create(node, term: 7) }?.code == .failedPrecondition)
        }
    }

    @Test func theHighestTermAndTheFencesSurviveARestart() async throws {
        let dir = Self.freshDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fenced = ReplicaRef(collection: "faces", shard: 0)
        let retired = ReplicaRef(collection: "faces", shard: 1)
        let config = try ReplicaConfig(proto: Self.config)
        do {
            let store = try await openStore(dir, options: Self.options)
            try store.createReplica(fenced, config: config, term: 3)
            try store.createReplica(retired, config: config)
            _ = try store.fenceReplica(fenced, number: nil, minEpoch: 12, retire: false, term: 3)
            _ = try store.fenceReplica(retired, number: nil, minEpoch: 4, retire: true, term: 0)
            // Raised by a copy page alone (its own group's batch).
            _ = try await store.write([.upsert(id: "p", vector: [1, 2, 3, 4], metadata: [:], version: 1)],
                                      to: try store.replica(fenced), origin: .leaderCopy(term: 9))
            #expect(store.highestTerm == 9)
            store.close()
        }
        do {
            let store = try await openStore(dir, options: Self.options)
            #expect(store.highestTerm == 9)
            #expect(try store.replica(fenced).placementFence == PlacementFence(minEpoch: 12, retired: false))
            #expect(try store.replica(retired).placementFence == PlacementFence(minEpoch: 4, retired: true))
            #expect(throws: ShoalError.self) { try store.createReplica(ReplicaRef(collection: "faces", shard: 2), config: config, term: 8) }
            // Raised by a command that changed nothing else (the replica exists): still persisted.
            #expect(try store.createReplica(fenced, config: config, term: 10) == (false, 0))
            store.close()
        }
        let store = try await openStore(dir, options: Self.options)
        defer { store.close() }
        #expect(store.highestTerm == 10)
    }

    // MARK: placement fence

    @Test func aFenceRefusesStaleDataRequestsAndPassesCurrentAndUncheckedOnes() async throws {
        try await Self.withNode { node in
            _ = try Self.create(node)
            _ = try await Self.write(node, "before", epoch: 9)
            #expect(try Self.fence(node, minEpoch: 12) == .with { $0.minEpoch = 12 })

            let stale = await Self.refusal { _ = try await Self.write(node, "stale", epoch: 9) }
            #expect(stale?.code == .aborted)
            #expect(stale?.message == "replica faces/0 was fenced at placement epoch 12; this request was routed by epoch 9: refresh the placement and retry (nothing was changed)")
            #expect(await Self.refusal { _ = try Self.get(node, ["before"], epoch: 11) }?.code == .aborted)
            #expect(await Self.refusal { _ = try Self.search(node, epoch: 11) }?.code == .aborted)
            #expect(await Self.refusal { _ = try Self.count(node, epoch: 1) }?.code == .aborted)

            // The fence's epoch, a later one, and epoch 0 (unchecked) pass.
            _ = try await Self.write(node, "current", epoch: 12)
            _ = try await Self.write(node, "later", epoch: 13)
            _ = try await Self.write(node, "unchecked", epoch: 0)
            // A copy page is leader traffic: its placement epoch is not checked.
            _ = try await Self.write(node, "copied", epoch: 9, copy: true)
            #expect(try Self.get(node, ["before", "stale", "current", "later", "unchecked", "copied"], epoch: 12).missingIds == ["stale"])
            #expect(try Self.search(node, epoch: 12).hits.count == 5)
            #expect(try Self.count(node, epoch: 0) == 5)
            #expect(try Self.count(node, epoch: 13) == 5)
        }
    }

    @Test func aRetiredReplicaRefusesEveryFencedDataRequest() async throws {
        try await Self.withNode { node in
            _ = try Self.create(node)
            _ = try await Self.write(node, "a", epoch: 3)
            #expect(try Self.fence(node, minEpoch: 5, retire: true) == .with { $0.minEpoch = 5; $0.retired = true })
            for epoch: UInt64 in [4, 5, 1000] {
                #expect(await Self.refusal { _ = try await Self.write(node, "w\(epoch)", epoch: epoch) }?.code == .aborted)
                #expect(await Self.refusal { _ = try Self.get(node, ["a"], epoch: epoch) }?.code == .aborted)
                #expect(await Self.refusal { _ = try Self.search(node, epoch: epoch) }?.code == .aborted)
                #expect(await Self.refusal { _ = try Self.count(node, epoch: epoch) }?.code == .aborted)
            }
            // One-way: a later fence without `retire` keeps it retired.
            #expect(try Self.fence(node, minEpoch: 6).retired)
            #expect(try Self.stats(node).replicas[0].retired)
            // Unchecked requests and leader traffic still pass.
            #expect(try Self.count(node, epoch: 0) == 1)
            _ = try await Self.write(node, "copied", copy: true)
            #expect(try Self.get(node, ["a", "copied", "w1000"]).missingIds == ["w1000"])
        }
    }

    @Test func minEpochNeverLowers() async throws {
        try await Self.withNode { node in
            _ = try Self.create(node)
            #expect(try Self.fence(node, minEpoch: 12).minEpoch == 12)
            #expect(try Self.fence(node, minEpoch: 5) == .with { $0.minEpoch = 12 })  // a no-op answering the current fence
            #expect(try Self.fence(node, minEpoch: 0).minEpoch == 12)
            #expect(try Self.stats(node).replicas[0].minEpoch == 12)
            #expect(await Self.refusal { _ = try await Self.write(node, "x", epoch: 6) }?.code == .aborted)
            #expect(try Self.fence(node, minEpoch: 20).minEpoch == 20)
        }
    }

    @Test func badFenceRequestsChangeNothing() async throws {
        try await Self.withNode { node in
            let incarnation = try Self.create(node, term: 2).incarnation
            let unknown = await Self.refusal { _ = try node.fenceReplica(.with { $0.replica = Self.ref(7); $0.minEpoch = 3; $0.term = 4 }) }
            #expect(unknown?.code == .notFound)
            let wrong = await Self.refusal { _ = try Self.fence(node, minEpoch: 3, term: 4, incarnation: incarnation + 1) }
            #expect(wrong?.code == .notFound)
            #expect(wrong?.message.contains("incarnation \(incarnation + 1)") == true)
            let unnamed = await Self.refusal { _ = try node.fenceReplica(.with { $0.minEpoch = 3 }) }
            #expect(unnamed?.code == .invalidArgument)
            let stats = try Self.stats(node)
            #expect(stats.highestTerm == 2)  // the refused requests' newer term raised nothing
            #expect(stats.replicas[0].minEpoch == 0 && !stats.replicas[0].retired)
            #expect(try Self.fence(node, minEpoch: 3, incarnation: incarnation).minEpoch == 3)
        }
    }

    @Test func aDroppedReplicasFenceGoesWithIt() async throws {
        try await Self.withNode { node in
            let first = try Self.create(node).incarnation
            _ = try Self.fence(node, minEpoch: 12, retire: true)
            #expect(try node.dropReplica(.with { $0.replica = Self.ref() }).dropped)
            #expect(try node.store.db.get(Keys.fence(first)) == nil)
            _ = try Self.create(node)
            #expect(try Self.stats(node).replicas[0].minEpoch == 0)
            _ = try await Self.write(node, "a", epoch: 1)
        }
    }

    /// Writes routed by the old epoch race a fence: every one answered OK is in a scan
    /// opened after the fence answered (and in a get), no refused one is, and every
    /// write sent after the answer is refused.
    @Test func aFenceIsOrderedWithTheWritesItRaces() async throws {
        try await Self.withNode { node in
            _ = try Self.create(node)
            final class Progress: Sendable {
                let fenced = Atomic<Bool>(false)
                let accepted = Atomic<Int>(0)
            }
            let progress = Progress()
            let writers = 8

            // Each writer sends one-op batches at epoch 5 until one is refused.
            let outcomes = Task {
                try await withThrowingTaskGroup(of: [(id: String, ok: Bool, sentAfterFence: Bool)].self) { group in
                    for w in 0..<writers {
                        group.addTask {
                            var log: [(id: String, ok: Bool, sentAfterFence: Bool)] = []
                            for i in 0..<100_000 {
                                let id = "w\(w)-\(i)"
                                let after = progress.fenced.load(ordering: .acquiring)
                                let refusal = await Self.refusal { _ = try await Self.write(node, id, epoch: 5) }
                                guard refusal == nil || refusal?.code == .aborted else { throw refusal! }
                                log.append((id, refusal == nil, after))
                                if refusal != nil { break }
                                progress.accepted.add(1, ordering: .relaxed)
                            }
                            return log
                        }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while progress.accepted.load(ordering: .relaxed) < 50, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
            _ = try Self.fence(node, minEpoch: 6)
            progress.fenced.store(true, ordering: .releasing)

            // Read right after the answer, while writers are still in flight.
            var scanned = Set<String>()
            var page = try node.scans.page(.with { $0.replica = Self.ref(); $0.pageSize = 10_000 })
            while true {
                scanned.formUnion(page.points.map(\.point.id))
                if page.done { break }
                let previous = page
                page = try node.scans.page(.with {
                    $0.replica = Self.ref()
                    $0.pageSize = 10_000
                    $0.snapshotID = previous.snapshotID
                    $0.pageToken = previous.nextPageToken
                })
            }
            let log = try await outcomes.value
            let got = try Self.get(node, log.map(\.id))
            let visible = Set(got.points.map(\.point.id))

            let ok = log.filter(\.ok).map(\.id)
            let refused = log.filter { !$0.ok }.map(\.id)
            #expect(!ok.isEmpty)  // writes raced the fence (50 were accepted before it, unless the machine crawled)
            #expect(refused.count == writers)  // every writer ended on a refusal
            #expect(log.filter(\.sentAfterFence).allSatisfy { !$0.ok })
            #expect(ok.filter { !scanned.contains($0) } == [], "accepted before the fence answered, missing from the scan after it")
            #expect(refused.filter { scanned.contains($0) || visible.contains($0) } == [])
            #expect(Set(ok) == visible)
        }
    }
}
