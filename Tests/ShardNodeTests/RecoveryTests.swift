import Foundation
import Logging
import Testing
import VectorCore
import VectorStorage

@testable import ShardNode

/// In-process recovery checks of a node's store: the graph image is used when it is
/// good, and a damaged one is detected, logged and rebuilt, with identical results.
@Suite struct RecoveryTests {
    let ref = ReplicaRef(collection: "faces", shard: 3)
    let config = ReplicaConfig(dimension: 16, metric: .cosine)

    func points(_ n: Int, seed: UInt64) -> [WriteOp] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { i in
            let v = (0..<16).map { _ in Float(rng.nextDouble() * 2 - 1) }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return .upsert(id: "p\(i)", vector: v.map { $0 / norm }, metadata: ["i": .int(Int64(i))], version: 1)
        }
    }

    func open(_ dir: URL, log: LogCapture) async throws -> ShardStore {
        try await openStore(dir, log: log)
    }

    func results(_ store: ShardStore, queries: [[Float]]) throws -> [[String]] {
        let replica = try store.replica(ref)
        return try queries.map { q in try replica.search(query: q, k: 10, ef: 64, filter: nil, exact: false).hits.map(\.id) }
    }

    @Test func imageIsUsedAndDamagedImageIsRebuilt() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-recovery-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = LogCapture()
        let ops = points(1500, seed: 42)
        let queries = ops.prefix(20).map { op -> [Float] in
            guard case .upsert(_, let v, _, _) = op else { return [] }
            return v
        }
        var expected: [[String]] = []
        do {
            let store = try await open(dir, log: log)
            try store.createReplica(ref, config: config)
            let replica = try store.replica(ref)
            for chunk in stride(from: 0, to: ops.count, by: 500) {
                _ = try await store.write(Array(ops[chunk..<min(chunk + 500, ops.count)]), to: replica)
            }
            #expect(store.waitUntilIndexed(timeout: .seconds(60)))
            expected = try results(store, queries: queries)
            store.close()  // saves the image
        }
        do {
            let store = try await open(dir, log: log)
            let replica = try store.replica(ref)
            #expect(log.contains("replica loaded") && log.contains("from_image=1500") && log.contains("to_replay=0"))
            #expect(try results(store, queries: queries) == expected)
            // Damage one image chunk behind the store's back.
            try store.db.put(Keys.imageChunk(replica.number, 0), [1, 2, 3], sync: true)
            store.close()
        }
        let log2 = LogCapture()
        let store = try await open(dir, log: log2)
        #expect(log2.contains("graph image unusable, rebuilding"))
        #expect(store.waitUntilIndexed(timeout: .seconds(60)))
        #expect(try store.replica(ref).index.count == 1500)
        let rebuilt = try results(store, queries: queries)
        // Same seed, same insertion order: the rebuilt graph gives the same answers.
        #expect(rebuilt == expected)
        store.close()
    }

    /// A final image that cannot be written within the stop's budget is skipped (the
    /// stop stays bounded) and the next start replays every point instead.
    @Test func aFinalImageOverBudgetIsSkippedAndReplayed() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-recovery-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = LogCapture()
        do {
            let store = try await open(dir, log: log)
            try store.createReplica(ref, config: config)
            _ = try await store.write(points(600, seed: 7), to: try store.replica(ref))
            #expect(store.waitUntilIndexed(timeout: .seconds(60)))
            store.close(imageBudget: .zero)
        }
        #expect(log.contains("final graph image not saved"))
        let store = try await open(dir, log: log)
        #expect(log.contains("no graph image") && log.contains("to_replay=600"))
        #expect(store.waitUntilIndexed(timeout: .seconds(60)))
        #expect(try store.replica(ref).count(nil) == 600)
        store.close()
    }

    /// The image header round-trips, and a header of the older 36-byte layout (a zero
    /// word before the time) still reads, so images saved before it load without a rebuild.
    @Test func imageHeaderOfBothLayoutsReads() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-recovery-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try await open(dir, log: LogCapture())
        defer { store.close() }
        let bytes = (0..<(GraphImage.chunkSize + 10)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try GraphImage.write(bytes, sequence: 77, replica: 5, db: store.db)
        let (header, read) = try #require(try GraphImage.read(replica: 5, db: store.db))
        #expect(header.sequence == 77 && header.length == UInt64(bytes.count) && header.chunks == 2)
        #expect(read == bytes)

        var legacy = [UInt8]()
        legacy.appendBigEndian(UInt64(78))
        legacy.appendBigEndian(UInt64(bytes.count))
        legacy.appendBigEndian(UInt32(2))
        legacy.appendBigEndian(UInt64(0))
        legacy.appendBigEndian(header.timeMs)
        try store.db.put(Keys.imageHeader(5), legacy, sync: true)
        let (old, oldBytes) = try #require(try GraphImage.read(replica: 5, db: store.db))
        #expect(old.sequence == 78 && old.timeMs == header.timeMs && oldBytes == bytes)

        try store.db.put(Keys.imageHeader(5), Array(legacy.prefix(30)), sync: true)
        #expect(throws: ShoalError.self) { try GraphImage.read(replica: 5, db: store.db) }
    }
}

/// A log handler that keeps messages (with metadata) for assertions.
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    var logger: Logger {
        Logger(label: "test") { _ in Handler(capture: self) }
    }

    func contains(_ text: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return lines.contains { $0.contains(text) }
    }

    fileprivate func append(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append("\(event.message) " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
    }
}

extension SplitMix64 {
    mutating func nextDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

@Suite struct ReplayBatchTests {
    /// Each batch is labelled with a sequence all of whose upserts are in it or before:
    /// a stop after any batch leaves an image the next load completes.
    @Test func replayBatchesAreLabelledWithTheSequenceTheyComplete() {
        let upserts: [(internalID: UInt32, sequence: UInt64)] = [(5, 12), (1, 10), (2, 10), (3, 11), (4, 11), (6, 13)]
        let batches = Replica.replayBatches(
            deletes: [.delete(9)], upserts: upserts, imageSequence: 8, committed: 15, size: 2)
        #expect(batches.map(\.sequence) == [9, 10, 11, 15])
        #expect(batches.map(\.items.count) == [1, 2, 2, 2])
        let order = batches.dropFirst().flatMap(\.items).map(\.internalID)
        #expect(order == [1, 2, 3, 4, 5, 6])
        // Labels never fall below the image's sequence, and without deletes start at the first chunk.
        let plain = Replica.replayBatches(deletes: [], upserts: [(1, 3), (2, 4)], imageSequence: 8, committed: 9, size: 1)
        #expect(plain.map(\.sequence) == [8, 9])
    }
}
