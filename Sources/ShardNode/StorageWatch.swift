import Foundation
import Logging
import Synchronization
import VectorStorage

/// Watches whether the node's RocksDB takes writes (a failed write says so, or a new
/// background error and a probe write that fails). While it does not (it turned
/// read-only: disk full, an I/O error), it tries every `interval` to end that
/// (`Database.recoverWrites`: RocksDB's own recovery, else a reopen once the disk has
/// room), so the node returns to SERVING by itself once space is freed.
final class StorageWatch: @unchecked Sendable {
    // @unchecked: `reported` and `seenBackgroundErrors` are used only on the watch's thread.
    private let db: Database
    private let logger: Logger
    private var reported: StorageError?
    private var seenBackgroundErrors: UInt64
    private var thread: PeriodicThread?

    init(db: Database, logger: Logger, interval: Duration = .seconds(1)) {
        self.db = db
        self.logger = logger
        seenBackgroundErrors = db.integerProperty("rocksdb.background-errors") ?? 0
        thread = PeriodicThread(name: "shoal-storage-watch", interval: interval) { [unowned self] in check() }
    }

    /// Ends the watch (waits for a recovery attempt under way).
    func stop() { thread?.stop() }

    private func check() {
        // A flush or compaction can fail with no write to see it: RocksDB counts
        // background errors, and a new one is checked with a probe write.
        let backgroundErrors = db.integerProperty("rocksdb.background-errors") ?? 0
        if backgroundErrors > seenBackgroundErrors, db.writesStopped == nil {
            _ = try? db.put(Keys.writeProbe, [], sync: true)  // a failure sets `writesStopped`
        }
        seenBackgroundErrors = backgroundErrors
        guard let failure = db.writesStopped else { return }
        if reported == nil {
            logger.error("storage is read-only: writes are refused until it recovers", metadata: ["error": "\(failure)"])
            reported = failure
        }
        switch db.recoverWrites(probeKey: Keys.writeProbe) {
        case .recovered:
            logger.notice("storage takes writes again (RocksDB recovered by itself)")
            reported = nil
        case .reopened:
            logger.notice("storage takes writes again (the database was reopened)")
            reported = nil
        case .stillStopped(let error):
            logger.debug("storage still refuses writes", metadata: ["error": "\(error)"])
        }
    }
}
