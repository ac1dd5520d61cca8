private import CRocksDB
import Foundation
import Synchronization

/// The RocksDB handle, swappable by `Database.reopen`: every call holds the read side
/// for its whole duration (an iteration included), a reopen the write side, so no call
/// ever sees a closed handle. Readers are preferred (glibc's default), so a call made
/// from inside another one (a scan's body reading a key) cannot deadlock on a waiting
/// reopen.
final class HandleLock: @unchecked Sendable {
    // @unchecked: `current` is read under the read lock and written under the write lock.
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    private var current: OpaquePointer?
    private let path: String

    init(_ raw: OpaquePointer, path: String) {
        pthread_rwlock_init(lock, nil)
        self.current = raw
        self.path = path
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` with the open handle; throws `.ioError` if the last reopen failed.
    func read<R>(_ body: (OpaquePointer) throws(StorageError) -> R) throws(StorageError) -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        guard let current else { throw StorageError(.ioError, "the database at \(path) is closed: reopening it failed") }
        return try body(current)
    }

    /// Runs `body` alone, with the handle (nil if closed) to replace.
    func exclusive<R>(_ body: (inout OpaquePointer?) throws(StorageError) -> R) throws(StorageError) -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&current)
    }

    func close() {
        try? exclusive { (raw) throws(StorageError) in
            if let open = raw { rocksdb_close(open) }
            raw = nil
        }
    }
}

/// A snapshot's RocksDB object; nil once released (by the snapshot's end or a reopen).
final class SnapshotHandle: @unchecked Sendable {
    // @unchecked: `raw` is read under the handle's read lock, and written under its
    // write lock (reopen) or by the snapshot's deinit, when nothing else uses it.
    var raw: OpaquePointer?
}

extension Database {
    /// Closes the handle and opens the database again: what a RocksDB that turned
    /// read-only (a failed WAL write, flush or compaction) needs to take writes again,
    /// since the C API has no `Resume`. Every acknowledged write is in the WAL, which
    /// the open replays. Waits for calls in flight; calls made meanwhile wait for it.
    /// Snapshots taken before end: reading through one throws `.aborted`. If the open
    /// fails, every call throws `.ioError` until a later `reopen` succeeds.
    public func reopen() throws(StorageError) {
        try handle.exclusive { (raw) throws(StorageError) in
            if let open = raw {
                snapshots.withLock { live in
                    for snapshot in live.values {
                        if let s = snapshot.raw { rocksdb_release_snapshot(open, s) }
                        snapshot.raw = nil
                    }
                }
                rocksdb_close(open)
                raw = nil
            }
            raw = try Self.open(path: path, options: options)
        }
        writeFailure.withLock { $0 = nil }
    }

    /// What `recoverWrites` found.
    public enum WriteRecovery: Sendable, Equatable {
        /// The probe write succeeded: RocksDB had recovered by itself (it does after
        /// ENOSPC once free space exceeds its reserve, the memtables' size).
        case recovered
        /// The probe failed, the database was reopened, and then it succeeded.
        case reopened
        /// Writes still fail (the error of the last try).
        case stillStopped(StorageError)
    }

    /// While writes are stopped (`writesStopped`), tries to end it: a synced put of
    /// `probeKey`; if that fails and the file system has room to replay the WAL (its
    /// size and `margin` free), a `reopen`, then the put again. Call it from a thread
    /// that may block.
    public func recoverWrites(probeKey: [UInt8], margin: UInt64 = 16 << 20) -> WriteRecovery {
        do {
            try put(probeKey, [], sync: true)
            return .recovered
        } catch {
            let needed = walBytes + margin
            guard let free = freeBytes, free >= needed else {
                return .stillStopped(StorageError(error.kind, "\(error.message) (reopen waits for \(needed >> 20) MiB free)"))
            }
        }
        do {
            try reopen()
            try put(probeKey, [], sync: true)
            return .reopened
        } catch {
            return .stillStopped(error)
        }
    }

    /// Bytes free for an unprivileged writer on the database's file system.
    var freeBytes: UInt64? {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return nil }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }

    /// Bytes of the write-ahead log files (what an open replays and flushes).
    var walBytes: UInt64 {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { $0.hasSuffix(".log") }.reduce(0) { total, name in
            let size = (try? FileManager.default.attributesOfItem(atPath: path + "/" + name)[.size] as? NSNumber)?.uint64Value
            return total + (size ?? 0)
        }
    }
}
