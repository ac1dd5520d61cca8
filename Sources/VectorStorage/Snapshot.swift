private import CRocksDB

/// A consistent, read-only view of a ``Database`` at one point in time.
///
/// Created by ``Database/snapshot()``; released in `deinit`. It keeps its database open
/// (strong reference). Writes committed after the snapshot was taken are invisible through
/// it, so a paged scan across many calls sees one state. Safe to use from several threads.
public final class Snapshot: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; RocksDB snapshots are read-only objects
    // that may be used by concurrent reads.
    public let database: Database
    let handle = SnapshotHandle()

    init(database: Database) {
        self.database = database
        let handle = handle
        try? database.handle.read { (raw) throws(StorageError) in
            handle.raw = rocksdb_create_snapshot(raw)
            database.snapshots.withLock { $0[ObjectIdentifier(handle)] = handle }
        }
    }

    deinit {
        let handle = handle
        try? database.handle.read { (raw) throws(StorageError) in
            if let s = handle.raw { rocksdb_release_snapshot(raw, s) }
            handle.raw = nil
        }
        database.snapshots.withLock { $0[ObjectIdentifier(handle)] = nil }
    }

    /// What reading through a snapshot that `Database.reopen` ended throws.
    static let ended = StorageError(.aborted, "the snapshot ended: the database was reopened after a storage failure")

    /// The value of `key` as of this snapshot.
    public func get(_ key: [UInt8]) throws(StorageError) -> [UInt8]? {
        try database.get(key, snapshot: self)
    }

    /// The values of `keys` as of this snapshot.
    public func multiGet(_ keys: [[UInt8]]) throws(StorageError) -> [[UInt8]?] {
        try database.multiGet(keys, snapshot: self)
    }

    /// One page of the keys starting with `prefix`, as of this snapshot (see ``Database/scan(prefix:after:limit:snapshot:)``).
    public func scan(prefix: [UInt8], after: [UInt8]? = nil, limit: Int) throws(StorageError) -> ScanPage {
        try database.scan(prefix: prefix, after: after, limit: limit, snapshot: self)
    }

    /// Visits the keys starting with `prefix` as of this snapshot (see ``Database/forEach(prefix:after:snapshot:_:)``).
    public func forEach(
        prefix: [UInt8], after: [UInt8]? = nil,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try database.forEach(prefix: prefix, after: after, snapshot: self, body)
    }
}
