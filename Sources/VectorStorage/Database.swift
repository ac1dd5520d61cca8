private import CRocksDB
import Synchronization

/// An open RocksDB database (the default column family), the sole owner of its handle.
///
/// - Lifetime: the database is closed in `deinit`, after the last reference goes away.
///   ``Snapshot``s hold a strong reference to their database, so a database is never
///   closed under a live snapshot. Opening the same path twice in one process fails
///   with an `.ioError` (RocksDB's `LOCK` file) until the first instance is released.
/// - Thread safety: every method may be called from any thread concurrently. RocksDB's
///   `DB` is thread-safe; the read and write options stored here are created in `init`
///   and never mutated afterwards, so sharing them is safe.
/// - Keys and values are arbitrary bytes; keys sort bytewise (RocksDB's default comparator).
public final class Database: @unchecked Sendable {
    // @unchecked Sendable: the handle is guarded by `handle` (read side for every call,
    // write side for `reopen`); the read and write options are created in `init` and
    // never mutated; `writeFailure` and `snapshots` are mutexes.
    let handle: HandleLock
    /// The directory the database lives in.
    public let path: String
    let options: Options
    private let readOptions: OpaquePointer
    private let writeOptionsSync: OpaquePointer
    private let writeOptionsNoSync: OpaquePointer
    /// The error of the last failed write that stops every write, until one succeeds.
    let writeFailure = Mutex<StorageError?>(nil)
    /// Live snapshots, ended (released) by `reopen`.
    let snapshots = Mutex<[ObjectIdentifier: SnapshotHandle]>([:])

    /// Opens (and by default creates) the database in directory `path`.
    /// Throws ``StorageError`` if RocksDB refuses: a path that is a regular file, a database
    /// locked by another instance, corrupt files, an unsupported option.
    public init(path: String, options: Options = Options()) throws(StorageError) {
        self.handle = HandleLock(try Self.open(path: path, options: options), path: path)
        self.path = path
        self.options = options
        self.readOptions = rocksdb_readoptions_create()
        self.writeOptionsSync = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(writeOptionsSync, 1)
        self.writeOptionsNoSync = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(writeOptionsNoSync, 0)
    }

    static func open(path: String, options: Options) throws(StorageError) -> OpaquePointer {
        let rocksOptions = options.makeRocksOptions()
        defer { rocksdb_options_destroy(rocksOptions) }
        var error: RocksErrorMessage = nil
        let raw = rocksdb_open(rocksOptions, path, &error)
        try throwIfSet(error)
        guard let raw else { throw StorageError(.other, "rocksdb_open returned no handle for \(path)") }
        return raw
    }

    deinit {
        rocksdb_readoptions_destroy(readOptions)
        rocksdb_writeoptions_destroy(writeOptionsSync)
        rocksdb_writeoptions_destroy(writeOptionsNoSync)
        handle.close()
    }

    /// Deletes the database files in `path` (the database must not be open).
    public static func destroy(path: String) throws(StorageError) {
        let rocksOptions = rocksdb_options_create()
        defer { rocksdb_options_destroy(rocksOptions) }
        var error: RocksErrorMessage = nil
        rocksdb_destroy_db(rocksOptions, path, &error)
        try throwIfSet(error)
    }

    // MARK: - Writes

    /// Applies every operation in `batch` atomically: after a crash, either all or none are present.
    ///
    /// Every write goes to the write-ahead log first. With `sync: true` the WAL is
    /// `fsync`ed before this returns, so the batch survives a machine crash or power loss;
    /// with `sync: false` it survives a process crash (the OS holds the WAL pages) but the
    /// last writes may be lost if the machine goes down. Blocks the calling thread for the
    /// disk write: call it from a thread that may block, not from the cooperative pool.
    /// The batch is left unchanged and may be reused or cleared.
    public func write(_ batch: WriteBatch, sync: Bool) throws(StorageError) {
        try writing { raw, error in rocksdb_write(raw, writeOptions(sync: sync), batch.raw, &error) }
    }

    /// Stores `value` under `key` (one-operation batch; see ``write(_:sync:)`` for `sync`).
    public func put(_ key: [UInt8], _ value: [UInt8], sync: Bool = false) throws(StorageError) {
        try writing { raw, error in
            key.withCBytes { k, kl in
                value.withCBytes { v, vl in rocksdb_put(raw, writeOptions(sync: sync), k, kl, v, vl, &error) }
            }
        }
    }

    /// Removes `key`; removing an absent key is not an error.
    public func delete(_ key: [UInt8], sync: Bool = false) throws(StorageError) {
        try writing { raw, error in key.withCBytes { k, kl in rocksdb_delete(raw, writeOptions(sync: sync), k, kl, &error) } }
    }

    /// Runs one write call on the handle and keeps `writesStopped` up to date.
    private func writing(_ call: (OpaquePointer, inout RocksErrorMessage) -> Void) throws(StorageError) {
        do {
            try handle.read { (raw) throws(StorageError) in
                var error: RocksErrorMessage = nil
                call(raw, &error)
                try throwIfSet(error)
            }
        } catch {
            if error.stopsWrites { writeFailure.withLock { $0 = error } }
            throw error
        }
        writeFailure.withLock { if $0 != nil { $0 = nil } }
    }

    /// Why RocksDB refuses writes (it turned read-only after a write or flush failed:
    /// no space, an I/O error, corruption), or nil if the last write succeeded. Reads
    /// go on meanwhile; `recoverWrites` tries to end it.
    public var writesStopped: StorageError? { writeFailure.withLock { $0 } }

    private func writeOptions(sync: Bool) -> OpaquePointer {
        sync ? writeOptionsSync : writeOptionsNoSync
    }

    // MARK: - Point reads

    /// The value stored under `key`, or nil if there is none. Reads the latest committed
    /// state, or the state at `snapshot` if one is given (it must come from this database).
    public func get(_ key: [UInt8], snapshot: Snapshot? = nil) throws(StorageError) -> [UInt8]? {
        try withReadOptions(snapshot: snapshot) { (raw, options) throws(StorageError) in
            var error: RocksErrorMessage = nil
            var length = 0
            let value = key.withCBytes { k, kl in rocksdb_get(raw, options, k, kl, &length, &error) }
            try throwIfSet(error)
            return value.map { takeMallocedBytes($0, count: length) }
        }
    }

    /// The values of `keys`, in the same order (nil where absent), read at one point in time.
    /// Throws the first per-key error RocksDB reports (all of them are freed).
    public func multiGet(_ keys: [[UInt8]], snapshot: Snapshot? = nil) throws(StorageError) -> [[UInt8]?] {
        if keys.isEmpty { return [] }
        // One contiguous copy so every key has a stable pointer during the call.
        let flat = keys.flatMap { $0 }
        var offsets = [Int](), sizes = [Int]()
        offsets.reserveCapacity(keys.count)
        sizes.reserveCapacity(keys.count)
        var offset = 0
        for key in keys {
            offsets.append(offset)
            sizes.append(key.count)
            offset += key.count
        }
        var values = [UnsafeMutablePointer<CChar>?](repeating: nil, count: keys.count)
        var valueSizes = [Int](repeating: 0, count: keys.count)
        var errors = [UnsafeMutablePointer<CChar>?](repeating: nil, count: keys.count)
        try withReadOptions(snapshot: snapshot) { (raw, options) throws(StorageError) in
            flat.withCBytes { base, _ in
                let pointers: [UnsafePointer<CChar>?] = offsets.map { offset in base.map { $0 + offset } }
                rocksdb_multi_get(raw, options, keys.count, pointers, sizes, &values, &valueSizes, &errors)
            }
        }
        var firstError: StorageError?
        var results = [[UInt8]?]()
        results.reserveCapacity(keys.count)
        for index in keys.indices {
            if let error = errors[index] {
                if firstError == nil { firstError = StorageError(rocksDBMessage: String(cString: error)) }
                rocksdb_free(error)
            }
            results.append(values[index].map { takeMallocedBytes($0, count: valueSizes[index]) })
        }
        if let firstError { throw firstError }
        return results
    }

    /// Calls `body` with the handle (read side held) and read options: the shared ones,
    /// or for `snapshot` (it must come from this database) options made for the call.
    /// Throws `.aborted` if `reopen` has ended the snapshot.
    func withReadOptions<R>(
        snapshot: Snapshot?, _ body: (OpaquePointer, OpaquePointer) throws(StorageError) -> R
    ) throws(StorageError) -> R {
        try handle.read { (raw) throws(StorageError) in
            guard let snapshot else { return try body(raw, readOptions) }
            precondition(snapshot.database === self, "snapshot belongs to another database")
            guard let snapshotRaw = snapshot.handle.raw else { throw Snapshot.ended }
            let options = rocksdb_readoptions_create()!
            defer { rocksdb_readoptions_destroy(options) }
            rocksdb_readoptions_set_snapshot(options, snapshotRaw)
            return try body(raw, options)
        }
    }

    // MARK: - Snapshots

    /// A consistent point-in-time view for reads and scans; released when the returned
    /// object is. Holding a snapshot pins old versions of overwritten keys (disk space),
    /// so release it when a paged scan is done.
    public func snapshot() -> Snapshot {
        Snapshot(database: self)
    }

    /// The sequence number of the last committed write.
    public var latestSequenceNumber: UInt64 {
        (try? handle.read { rocksdb_get_latest_sequence_number($0) }) ?? 0
    }
}
