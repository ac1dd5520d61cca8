private import CRocksDB

extension Database {
    /// Writes the memtables to SST files and waits until that is done. Not needed for
    /// durability (the WAL provides it); useful before measuring sizes or taking a backup.
    public func flush() throws(StorageError) {
        let options = rocksdb_flushoptions_create()!
        defer { rocksdb_flushoptions_destroy(options) }
        rocksdb_flushoptions_set_wait(options, 1)
        var error: RocksErrorMessage = nil
        try handle.read { (raw) throws(StorageError) in
            rocksdb_flush(raw, options, &error)
            try throwIfSet(error)
        }
    }

    /// `fsync`s the WAL, making every earlier `sync: false` write durable against power loss.
    public func syncWAL() throws(StorageError) {
        var error: RocksErrorMessage = nil
        try handle.read { (raw) throws(StorageError) in
            rocksdb_flush_wal(raw, 1, &error)
            try throwIfSet(error)
        }
    }

    /// A RocksDB property (`"rocksdb.stats"`, `"rocksdb.estimate-num-keys"`, …), or nil if unknown.
    public func property(_ name: String) -> String? {
        (try? handle.read { rocksdb_property_value($0, name) })?.map(takeMallocedString)
    }

    /// A numeric RocksDB property, or nil if unknown or not a number.
    public func integerProperty(_ name: String) -> UInt64? {
        property(name).flatMap { UInt64($0.trimmingWhitespace) }
    }

    /// Total bytes of live SST files (`rocksdb.total-sst-files-size`); memtables not included.
    public var totalSSTFilesSize: UInt64 { integerProperty("rocksdb.total-sst-files-size") ?? 0 }

    /// RocksDB's estimate of live data bytes after compaction (`rocksdb.estimate-live-data-size`).
    public var estimatedLiveDataSize: UInt64 { integerProperty("rocksdb.estimate-live-data-size") ?? 0 }

    /// RocksDB's estimate of the number of keys (`rocksdb.estimate-num-keys`); approximate
    /// with overwrites and deletes.
    public var estimatedKeyCount: UInt64 { integerProperty("rocksdb.estimate-num-keys") ?? 0 }

    /// Approximate on-disk bytes of SST data for keys in `[start, end)`. Memtable contents
    /// are not counted (the C API asks for files only): ``flush()`` first for recent writes.
    public func approximateSize(from start: [UInt8], to end: [UInt8]) throws(StorageError) -> UInt64 {
        var size: UInt64 = 0
        var error: RocksErrorMessage = nil
        start.withCBytes { s, sl in
            end.withCBytes { e, el in
                var starts: [UnsafePointer<CChar>?] = [s], ends: [UnsafePointer<CChar>?] = [e]
                var startLengths = [sl], endLengths = [el]
                try? handle.read { rocksdb_approximate_sizes($0, 1, &starts, &startLengths, &ends, &endLengths, &size, &error) }
            }
        }
        try throwIfSet(error)
        return size
    }

    /// Approximate on-disk bytes of SST data for keys starting with `prefix`.
    public func approximateSize(prefix: [UInt8]) throws(StorageError) -> UInt64 {
        // A prefix without a successor (empty or all 0xFF) has no finite upper key; a run of
        // 0xFF longer than any key Shoal writes stands in for the end of the key space.
        let end = KeyEncoding.prefixSuccessor(prefix) ?? [UInt8](repeating: 0xFF, count: prefix.count + 256)
        return try approximateSize(from: prefix, to: end)
    }

    /// Creates an openable copy of the database in `directory` (which must not exist),
    /// hard-linking SST files where the file system allows, after flushing the memtables.
    /// The copy is consistent: it holds every write committed before the call.
    public func checkpoint(to directory: String) throws(StorageError) {
        // One error variable per call: RocksDB frees a non-nil `*errptr` before storing a new
        // message, so a variable must never be reused after `throwIfSet` freed its string.
        try handle.read { (raw) throws(StorageError) in try checkpoint(raw, to: directory) }
    }

    private func checkpoint(_ raw: OpaquePointer, to directory: String) throws(StorageError) {
        var createError: RocksErrorMessage = nil
        let checkpoint = rocksdb_checkpoint_object_create(raw, &createError)
        try throwIfSet(createError)
        guard let checkpoint else { throw StorageError(.other, "rocksdb_checkpoint_object_create returned no handle") }
        defer { rocksdb_checkpoint_object_destroy(checkpoint) }
        // log_size_for_flush 0: always flush, so the checkpoint needs no WAL replay.
        var error: RocksErrorMessage = nil
        rocksdb_checkpoint_create(checkpoint, directory, 0, &error)
        try throwIfSet(error)
    }
}

extension String {
    fileprivate var trimmingWhitespace: Substring {
        let isSpace: (Character) -> Bool = { $0.isWhitespace }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = lastIndex(where: { !isSpace($0) })!
        return self[first...last]
    }
}
