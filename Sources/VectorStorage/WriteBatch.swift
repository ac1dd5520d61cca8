private import CRocksDB

/// Operations applied together, atomically, by ``Database/write(_:sync:)``.
///
/// Owns its RocksDB batch (destroyed in `deinit`). Not thread-safe: build a batch on one
/// thread (or under a lock), then hand it to `write`. Operations apply in the order added;
/// a later operation on the same key wins.
public final class WriteBatch {
    let raw: OpaquePointer

    public init() {
        raw = rocksdb_writebatch_create()
    }

    deinit { rocksdb_writebatch_destroy(raw) }

    /// Stores `value` under `key`.
    public func put(_ key: [UInt8], _ value: [UInt8]) {
        key.withCBytes { k, kl in
            value.withCBytes { v, vl in rocksdb_writebatch_put(raw, k, kl, v, vl) }
        }
    }

    /// Stores the bytes `value` points at under `key` (copied now; e.g. a vector's
    /// `withUnsafeBytes`), without an intermediate array.
    public func put(_ key: [UInt8], bytes value: UnsafeRawBufferPointer) {
        let (v, vl) = value.cBytes
        key.withCBytes { k, kl in rocksdb_writebatch_put(raw, k, kl, v, vl) }
    }

    /// Removes `key`.
    public func delete(_ key: [UInt8]) {
        key.withCBytes { k, kl in rocksdb_writebatch_delete(raw, k, kl) }
    }

    /// Removes every key in `[start, end)` with one range tombstone (cheap to write; reads
    /// over the range pay until compaction drops it). Use it to drop a whole shard's keys.
    public func deleteRange(from start: [UInt8], to end: [UInt8]) {
        start.withCBytes { s, sl in
            end.withCBytes { e, el in rocksdb_writebatch_delete_range(raw, s, sl, e, el) }
        }
    }

    /// Removes every key starting with `prefix` (a range tombstone up to the prefix's successor).
    /// Throws `.invalidArgument` for a prefix with no successor (empty or all `0xFF`).
    public func deletePrefix(_ prefix: [UInt8]) throws(StorageError) {
        guard let end = KeyEncoding.prefixSuccessor(prefix) else {
            throw StorageError(.invalidArgument, "prefix \(prefix) has no successor; delete its keys one by one")
        }
        deleteRange(from: prefix, to: end)
    }

    /// Drops every operation, so the batch can be reused.
    public func clear() { rocksdb_writebatch_clear(raw) }

    /// The number of operations added.
    public var count: Int { Int(rocksdb_writebatch_count(raw)) }

    /// The batch's encoded size in bytes (what it adds to the WAL).
    public var byteSize: Int {
        var size = 0
        _ = rocksdb_writebatch_data(raw, &size)
        return size
    }
}

@available(*, unavailable, message: "WriteBatch is not thread-safe; build it on one thread")
extension WriteBatch: Sendable {}
