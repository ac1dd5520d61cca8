import Testing
import VectorStorage

@Suite struct ScanTests {
    /// Random keys over an alphabet heavy in 0x00 and 0xFF; the oracle is a sorted filter.
    private static func populate(_ db: Database, seed: UInt64, count: Int) throws -> [[UInt8]] {
        var rng = SeededGenerator(seed: seed)
        var keys = Set<[UInt8]>()
        let batch = WriteBatch()
        while keys.count < count {
            let key = rng.edgyBytes(count: Int.random(in: 1...5, using: &rng))
            if keys.insert(key).inserted { batch.put(key, key.reversed()) }
        }
        try db.write(batch, sync: false)
        return keys.sorted { $0.lexicographicallyPrecedes($1) }
    }

    @Test(arguments: [
        [], [0x00], [0x01], [0xFF], [0xFF, 0xFF], [0x01, 0xFF], [0x7F, 0xFF, 0xFF], [0xFE, 0xFF], [0x00, 0x00],
    ] as [[UInt8]])
    func prefixScanReturnsExactlyThePrefixedKeysInOrder(prefix: [UInt8]) throws {
        try withTemporaryDirectory { path in
            let db = try Database(path: path)
            let all = try Self.populate(db, seed: 31, count: 3_000)
            let expected = all.filter { $0.starts(with: prefix) }
            let page = try db.scan(prefix: prefix, limit: 100_000)
            #expect(page.entries.map(\.key) == expected)
            #expect(page.entries.allSatisfy { $0.value == $0.key.reversed() })
            #expect(page.isComplete)

            var streamed = [[UInt8]]()
            try db.forEach(prefix: prefix) { key, _ in
                streamed.append([UInt8](key))
                return true
            }
            #expect(streamed == expected)
        }
    }

    @Test(arguments: [1, 2, 7, 64])
    func pagedScanCoversEveryKeyExactlyOnce(limit: Int) throws {
        try withTemporaryDirectory { path in
            let db = try Database(path: path)
            let all = try Self.populate(db, seed: 32, count: 1_500)
            for prefix: [UInt8] in [[], [0xFF], [0x01, 0xFF], [0x00]] {
                let expected = all.filter { $0.starts(with: prefix) }
                var collected = [[UInt8]]()
                var after: [UInt8]? = nil
                var pages = 0
                repeat {
                    let page = try db.scan(prefix: prefix, after: after, limit: limit)
                    #expect(page.entries.count <= limit)
                    #expect(page.isComplete || page.entries.count == limit)
                    collected += page.entries.map(\.key)
                    after = page.nextAfter
                    pages += 1
                } while after != nil && pages <= expected.count + 1
                #expect(collected == expected, "prefix \(prefix) limit \(limit)")
            }
        }
    }

    @Test func startAfterKeysOutsideThePrefix() throws {
        try withTemporaryDirectory { path in
            let db = try Database(path: path)
            for key: [UInt8] in [[1, 0], [1, 5], [1, 0xFF], [2, 0]] { try db.put(key, []) }
            #expect(try db.scan(prefix: [1], after: [0, 9], limit: 10).entries.map(\.key) == [[1, 0], [1, 5], [1, 0xFF]])
            #expect(try db.scan(prefix: [1], after: [1, 5], limit: 10).entries.map(\.key) == [[1, 0xFF]])
            #expect(try db.scan(prefix: [1], after: [1, 1], limit: 10).entries.map(\.key) == [[1, 5], [1, 0xFF]])
            #expect(try db.scan(prefix: [1], after: [1, 0xFF], limit: 10).entries.isEmpty)
            #expect(try db.scan(prefix: [1], after: [3], limit: 10).entries.isEmpty)
            #expect(throws: StorageError.self) { try db.scan(prefix: [1], limit: 0) }
        }
    }

    @Test func rangeScanAndEarlyStop() throws {
        try withTemporaryDirectory { path in
            let db = try Database(path: path)
            for i in UInt8(0)..<10 { try db.put([i], [i]) }
            var keys = [UInt8]()
            try db.forEach(from: [3], to: [7]) { key, _ in
                keys.append(key[0])
                return keys.count < 3
            }
            #expect(keys == [3, 4, 5])
            struct Stop: Error {}
            #expect(throws: Stop.self) { try db.forEach(prefix: []) { _, _ in throw Stop() } }
        }
    }
}

@Suite struct SnapshotTests {
    @Test func writesAfterASnapshotAreInvisibleThroughIt() throws {
        try withTemporaryDirectory { path in
            let db = try Database(path: path)
            try db.put([1, 1], [1])
            try db.put([1, 2], [1])
            let snapshot = db.snapshot()
            try db.put([1, 1], [2])  // overwrite
            try db.delete([1, 2])  // delete
            try db.put([1, 3], [2])  // insert

            #expect(try snapshot.get([1, 1]) == [1])
            #expect(try snapshot.get([1, 2]) == [1])
            #expect(try snapshot.get([1, 3]) == nil)
            #expect(try snapshot.multiGet([[1, 1], [1, 3]]) == [[1], nil])
            var visited = 0
            try snapshot.forEach(prefix: [1]) { _, value in
                #expect(Array(value) == [1])
                visited += 1
                return true
            }
            #expect(visited == 2)
            #expect(try snapshot.scan(prefix: [1], limit: 10).entries == [
                KeyValue(key: [1, 1], value: [1]), KeyValue(key: [1, 2], value: [1]),
            ])

            #expect(try db.get([1, 1]) == [2])
            #expect(try db.get([1, 2]) == nil)
            #expect(try db.get([1, 3]) == [2])
            #expect(try db.scan(prefix: [1], limit: 10).entries.map(\.key) == [[1, 1], [1, 3]])
        }
    }

    /// The shard-move pattern: a paged scan over many calls, with writes in between,
    /// sees exactly the snapshot's keys.
    @Test func pagedScanThroughASnapshotIgnoresConcurrentWrites() throws {
        try withTemporaryDirectory { path in
            let db = try Database(path: path)
            var rng = SeededGenerator(seed: 41)
            var expected = [[UInt8]]()
            for i in 0..<500 {
                var key = KeyEncoder(tag: 9)
                key.append(UInt64(i * 2))
                expected.append(key.bytes)
                try db.put(key.bytes, rng.bytes(count: 8))
            }
            let snapshot = db.snapshot()
            var collected = [[UInt8]]()
            var after: [UInt8]? = nil
            var step = 0
            repeat {
                let page = try snapshot.scan(prefix: [9], after: after, limit: 37)
                collected += page.entries.map(\.key)
                after = page.nextAfter
                // Between pages: inserts ahead of and behind the cursor, deletes, overwrites.
                var key = KeyEncoder(tag: 9)
                key.append(UInt64(step * 7 + 1))
                try db.put(key.bytes, [])
                try db.delete(expected[(step * 13) % expected.count])
                try db.put(expected[(step * 17) % expected.count], [0])
                step += 1
            } while after != nil
            #expect(collected == expected)
            #expect(try db.scan(prefix: [9], limit: 10_000).entries.count != expected.count)
        }
    }
}
