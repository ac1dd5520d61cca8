import Foundation
import Testing
import VectorStorage

@Suite struct DatabaseTests {
    @Test func batchesSurviveCloseAndReopen() throws {
        try withTemporaryDirectory { path in
            var rng = SeededGenerator(seed: 21)
            var oracle = [[UInt8]: [UInt8]]()
            do {
                let db = try Database(path: path)
                let batch = WriteBatch()
                for b in 0..<20 {
                    batch.clear()
                    for _ in 0..<50 {
                        let key = rng.bytes(count: Int.random(in: 1...24, using: &rng))
                        let value = rng.bytes(count: Int.random(in: 0...600, using: &rng))
                        batch.put(key, value)
                        oracle[key] = value
                    }
                    // Deletes inside a batch, of keys written earlier.
                    if let victim = oracle.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }).first, b % 3 == 0 {
                        batch.delete(victim)
                        oracle[victim] = nil
                    }
                    #expect(batch.count > 0)
                    try db.write(batch, sync: b % 2 == 0)
                }
            }
            let db = try Database(path: path)
            for (key, value) in oracle {
                #expect(try db.get(key) == value)
            }
            let keys = Array(oracle.keys)
            let values = try db.multiGet(keys + [[0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE]])
            #expect(values.dropLast().map { $0 } == keys.map { oracle[$0] })
            #expect(values.last! == nil)
            var seen = 0
            try db.forEach(prefix: []) { key, value in
                #expect(oracle[[UInt8](key)] == [UInt8](value))
                seen += 1
                return true
            }
            #expect(seen == oracle.count)
        }
    }

    @Test func putGetDeleteAndEmptyValues() throws {
        try withTemporaryDirectory { path in
            let db = try Database(path: path)
            #expect(try db.get([1]) == nil)
            try db.put([1], [])
            #expect(try db.get([1]) == [])
            try db.put([1], [7, 8], sync: true)
            #expect(try db.get([1]) == [7, 8])
            try db.delete([1])
            #expect(try db.get([1]) == nil)
            try db.delete([2])  // absent: not an error
            #expect(try db.multiGet([]) == [])
        }
    }

    @Test(arguments: [Database.Options.Compression.none, .snappy, .lz4, .zstd])
    func everyCompressionChoiceIsLinkedIn(compression: Database.Options.Compression) throws {
        try withTemporaryDirectory { path in
            var options = Database.Options()
            options.compression = compression
            options.bloomBitsPerKey = nil
            do {
                let db = try Database(path: path, options: options)
                try db.put([1], Array(repeating: 7, count: 4_096))
                try db.flush()  // compression only runs when an SST file is written
            }
            #expect(try Database(path: path, options: options).get([1])?.count == 4_096)
        }
    }

    @Test func destroyRemovesTheDatabase() throws {
        try withTemporaryDirectory { path in
            do {
                let db = try Database(path: path)
                try db.put([1], [1])
                try db.syncWAL()
            }
            try Database.destroy(path: path)
            var options = Database.Options()
            options.createIfMissing = false
            #expect(throws: StorageError.self) { try Database(path: path, options: options) }
        }
    }

    @Test func deleteRangeAndDeletePrefix() throws {
        try withTemporaryDirectory { path in
            let db = try Database(path: path)
            let batch = WriteBatch()
            for a in UInt8(0)...3 {
                for b in [UInt8(0), 0x7F, 0xFF] { batch.put([a, b], [a, b]) }
            }
            try db.write(batch, sync: false)
            batch.clear()
            #expect(batch.count == 0)
            batch.deleteRange(from: [0, 0x7F], to: [1])
            try batch.deletePrefix([2])
            #expect(throws: StorageError.self) { try batch.deletePrefix([0xFF]) }
            try db.write(batch, sync: false)
            let left = try db.scan(prefix: [], limit: 100).entries.map(\.key)
            #expect(left == [[0, 0], [1, 0], [1, 0x7F], [1, 0xFF], [3, 0], [3, 0x7F], [3, 0xFF]])
        }
    }

    @Test func openingARegularFileThrowsATypedError() throws {
        try withTemporaryDirectory { path in
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            let file = path + "/not-a-directory"
            #expect(FileManager.default.createFile(atPath: file, contents: Data("hello".utf8)))
            let error = #expect(throws: StorageError.self) { try Database(path: file) }
            #expect(error?.kind == .ioError, "\(String(describing: error))")
            #expect(error?.message.contains("not-a-directory") == true)
        }
    }

    @Test func openingWithoutCreateIfMissingThrowsInvalidArgument() throws {
        try withTemporaryDirectory { path in
            var options = Database.Options()
            options.createIfMissing = false
            let error = #expect(throws: StorageError.self) { try Database(path: path + "/absent", options: options) }
            #expect(error?.kind == .invalidArgument, "\(String(describing: error))")
        }
    }

    @Test func aSecondOpenOfTheSamePathFailsOnTheLock() throws {
        try withTemporaryDirectory { path in
            do {
                let first = try Database(path: path)
                let error = #expect(throws: StorageError.self) { try Database(path: path) }
                #expect(error?.kind == .ioError, "\(String(describing: error))")
                withExtendedLifetime(first) {}
            }
            // Released at the end of its scope: the path opens again.
            _ = try Database(path: path)
        }
    }

    @Test func statusMessagesParseIntoKinds() {
        let cases: [(String, StorageError.Kind)] = [
            ("NotFound: x", .notFound), ("Corruption: bad block", .corruption),
            ("Not implemented: y", .notSupported), ("Invalid argument: z", .invalidArgument),
            ("IO error: No space left on device", .ioError), ("Resource busy: ", .busy),
            ("Operation timed out: ", .timedOut), ("Operation aborted: ", .aborted),
            ("Operation failed. Try again.: ", .tryAgain), ("Shutdown in progress: ", .shutdownInProgress),
            ("Result incomplete: ", .incomplete), ("Operation expired: ", .expired),
            ("Merge in progress: ", .mergeInProgress), ("Compaction too large: ", .compactionTooLarge),
            ("Column family dropped: ", .columnFamilyDropped), ("something else", .other),
        ]
        for (message, kind) in cases {
            let error = StorageError(rocksDBMessage: message)
            #expect(error.kind == kind, "\(message)")
            #expect(error.message == message)
        }
        #expect(StorageError(.corruption, "").statusCode == .dataLoss)
    }

    @Test func flushSizesAndCheckpoint() throws {
        try withTemporaryDirectory { path in
            let db = try Database(path: path + "/db")
            let batch = WriteBatch()
            var rng = SeededGenerator(seed: 22)
            for i in 0..<2_000 {
                var key = KeyEncoder(tag: 0x01)
                key.append(UInt32(i))
                let vector = (0..<64).map { _ in Float.random(in: -1...1, using: &rng) }
                vector.withUnsafeBytes { batch.put(key.bytes, bytes: $0) }
            }
            batch.put([0x02], [1])
            try db.write(batch, sync: true)
            try db.flush()
            #expect(db.totalSSTFilesSize > 2_000 * 64 * 4 / 2)  // LZ4 barely shrinks random floats
            #expect(db.estimatedLiveDataSize > 0)
            #expect(db.estimatedKeyCount > 1_000)
            #expect(try db.approximateSize(prefix: [0x01]) > 100_000)
            #expect(db.property("rocksdb.no-such-property") == nil)
            #expect(db.property("rocksdb.stats")?.isEmpty == false)

            try db.checkpoint(to: path + "/copy")
            try db.put([0x02], [2])  // after the checkpoint: not in the copy
            let copy = try Database(path: path + "/copy")
            #expect(try copy.get([0x02]) == [1])
            var key = KeyEncoder(tag: 0x01)
            key.append(UInt32(1_999))
            #expect(try copy.get(key.bytes)?.count == 256)
            #expect(throws: StorageError.self) { try db.checkpoint(to: path + "/copy") }
        }
    }

    /// Many threads reading and writing one database: RocksDB's own thread safety, and ours.
    @Test func concurrentWritersAndReaders() async throws {
        try await withTemporaryDirectoryAsync { path in
            let db = try Database(path: path)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        for i in 0..<200 {
                            try db.put([UInt8(writer)] + Array("\(i)".utf8), [UInt8(i % 256)])
                        }
                    }
                }
                group.addTask {
                    for _ in 0..<50 { _ = try db.scan(prefix: [1], limit: 10) }
                }
                try await group.waitForAll()
            }
            for writer in 0..<4 {
                #expect(try db.scan(prefix: [UInt8(writer)], limit: 1_000).entries.count == 200)
            }
        }
    }
}

func withTemporaryDirectoryAsync(_ name: String = #function, _ body: (String) async throws -> Void) async throws {
    let safe = name.filter { $0.isLetter || $0.isNumber }
    let root = FileManager.default.temporaryDirectory
        .appendingPathComponent("shoal-storage-tests-\(safe)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    try await body(root.path)
}
