private import CRocksDB

/// One key and its value, copied out of the database.
public struct KeyValue: Sendable, Hashable {
    public var key: [UInt8]
    public var value: [UInt8]

    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// One page of a forward scan.
public struct ScanPage: Sendable, Equatable {
    /// Entries in ascending key order.
    public var entries: [KeyValue]
    /// The key to pass as `after` for the next page; nil when the scan has no more entries.
    public var nextAfter: [UInt8]?

    public var isComplete: Bool { nextAfter == nil }

    /// Debug check (`assert`ed after every scan): keys strictly ascending, all with `prefix`,
    /// all after `after`, at most `limit`, and `nextAfter` is the last key of a full page.
    func _checkInvariants(prefix: [UInt8], after: [UInt8]?, limit: Int) -> Bool {
        let keys = entries.map(\.key)
        let ascending = zip(keys, keys.dropFirst()).allSatisfy { $0.lexicographicallyPrecedes($1) }
        let prefixed = keys.allSatisfy { $0.starts(with: prefix) }
        let pastStart = after.map { start in keys.allSatisfy { start.lexicographicallyPrecedes($0) } } ?? true
        let resumable = nextAfter == nil || (entries.count == limit && nextAfter == keys.last)
        return ascending && prefixed && pastStart && entries.count <= limit && resumable
    }
}

extension Database {
    /// Reads up to `limit` entries whose keys start with `prefix`, in ascending key order,
    /// beginning with the first key strictly greater than `after` (or at the prefix when nil).
    ///
    /// Paging: pass the previous page's ``ScanPage/nextAfter`` as `after` until it is nil;
    /// with the same `snapshot` on every call the pages together hold every key of that
    /// point in time exactly once. Without a snapshot each page reads the latest state.
    public func scan(
        prefix: [UInt8], after: [UInt8]? = nil, limit: Int, snapshot: Snapshot? = nil
    ) throws(StorageError) -> ScanPage {
        guard limit > 0 else { throw StorageError(.invalidArgument, "scan limit must be positive, got \(limit)") }
        var entries = [KeyValue]()
        var hasMore = false
        try iterate(
            from: Self.startKey(lowerBound: prefix, after: after),
            to: KeyEncoding.prefixSuccessor(prefix), snapshot: snapshot
        ) { key, value in
            if entries.count == limit {
                hasMore = true
                return false
            }
            entries.append(KeyValue(key: [UInt8](key), value: [UInt8](value)))
            return true
        }
        let page = ScanPage(entries: entries, nextAfter: hasMore ? entries.last?.key : nil)
        assert(page._checkInvariants(prefix: prefix, after: after, limit: limit))
        return page
    }

    /// Calls `body` with each entry whose key starts with `prefix`, in ascending order,
    /// beginning after `after` if given, until `body` returns false. The buffers point into
    /// RocksDB's iterator and are valid only during that call of `body`: copy what you keep.
    /// Rethrows what `body` throws; throws ``StorageError`` if the iterator fails.
    public func forEach(
        prefix: [UInt8], after: [UInt8]? = nil, snapshot: Snapshot? = nil,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try forEach(from: prefix, to: KeyEncoding.prefixSuccessor(prefix), after: after, snapshot: snapshot, body)
    }

    /// Calls `body` with each entry in `[lowerBound, upperBound)` (no upper bound when nil),
    /// in ascending order, as ``forEach(prefix:after:snapshot:_:)`` does.
    public func forEach(
        from lowerBound: [UInt8], to upperBound: [UInt8]?, after: [UInt8]? = nil, snapshot: Snapshot? = nil,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        var thrown: (any Error)?
        try iterate(from: Self.startKey(lowerBound: lowerBound, after: after), to: upperBound, snapshot: snapshot) {
            key, value in
            do { return try body(key, value) } catch {
                thrown = error
                return false
            }
        }
        if let thrown { throw thrown }
    }

    /// The smallest key that is both `>= lowerBound` and `> after`.
    static func startKey(lowerBound: [UInt8], after: [UInt8]?) -> [UInt8] {
        guard let after else { return lowerBound }
        let justAfter = after + [0]  // the smallest key greater than `after`
        return justAfter.lexicographicallyPrecedes(lowerBound) ? lowerBound : justAfter
    }

    /// Walks an iterator from `start` up to (excluding) `upperBound`, calling `visit` with
    /// each entry until it returns false, then checks the iterator's status.
    /// The upper bound is enforced by RocksDB (`iterate_upper_bound`), so the iterator
    /// never reads past the range.
    func iterate(
        from start: [UInt8], to upperBound: [UInt8]?, snapshot: Snapshot?,
        _ visit: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Bool
    ) throws(StorageError) {
        // The read side of the handle is held for the whole iteration (see `HandleLock`).
        try handle.read { (raw) throws(StorageError) in
            if let snapshot { precondition(snapshot.database === self, "snapshot belongs to another database") }
            let options = rocksdb_readoptions_create()!
            // The C API keeps a pointer to the bound's bytes: they must outlive the iterator.
            let bound = upperBound.map(PinnedBytes.init)
            defer {
                rocksdb_readoptions_destroy(options)
                withExtendedLifetime(bound) {}
            }
            if let snapshot {
                guard let snapshotRaw = snapshot.handle.raw else { throw Snapshot.ended }
                rocksdb_readoptions_set_snapshot(options, snapshotRaw)
            }
            if let bound { rocksdb_readoptions_set_iterate_upper_bound(options, bound.pointer, bound.count) }
            // Scans of a whole shard should not evict the working set of point lookups.
            rocksdb_readoptions_set_fill_cache(options, 0)

            let iterator = rocksdb_create_iterator(raw, options)!
            defer { rocksdb_iter_destroy(iterator) }
            start.withCBytes { s, sl in rocksdb_iter_seek(iterator, s, sl) }
            while rocksdb_iter_valid(iterator) != 0 {
                var keyLength = 0, valueLength = 0
                let key = rocksdb_iter_key(iterator, &keyLength)
                let value = rocksdb_iter_value(iterator, &valueLength)
                let keepGoing = visit(
                    UnsafeRawBufferPointer(start: key, count: keyLength),
                    UnsafeRawBufferPointer(start: value, count: valueLength)
                )
                if !keepGoing { break }
                rocksdb_iter_next(iterator)
            }
            var error: RocksErrorMessage = nil
            rocksdb_iter_get_error(iterator, &error)
            try throwIfSet(error)
        }
    }
}
