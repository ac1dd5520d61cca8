import Foundation
import Logging
import Synchronization
import VectorCore
import VectorStorage

/// A tombstone as committed: the id, the version it holds, and when this node
/// committed it (or loaded it at start).
struct TombstoneEntry {
    var key: UTF8Key
    var version: UInt64
    var committed: ContinuousClock.Instant
}

/// Tombstone collection: a delete keeps a tombstone (the id's version, no point) so
/// that an older write arriving late is still ignored; once no older write can
/// arrive, the tombstone is deleted.
///
/// Older writes come from two places: client writes in flight (a request lasts at
/// most the coordinator's request time, 60 s) and a shard move's copy pages (taken
/// from a snapshot, so arbitrarily old). Hence the rule: a replica deletes the
/// tombstones committed more than `retention` ago, and none while it has received a
/// copy page within `retention`.
extension Replica {
    /// Records that a shard move's copy page reached this replica.
    func noteCopyWrite() {
        lastCopyWrite.store(max(1, ContinuousClock.now.nanosecondsSinceStart), ordering: .relaxed)
    }

    /// Queues a committed tombstone for collection (write lock held).
    func queueTombstone(_ key: UTF8Key, version: UInt64, committed: ContinuousClock.Instant = .now) {
        tombstoneQueue.append(TombstoneEntry(key: key, version: version, committed: committed))
    }

    /// Deletes (between two write groups) the tombstones committed before
    /// `now - retention` that still hold the version they were committed with; returns
    /// how many. Nothing while a copy page arrived within `retention`.
    func collectTombstones(retention: Duration, committer: Committer, now: ContinuousClock.Instant = .now) throws -> Int {
        let horizon = now - retention
        let copied = lastCopyWrite.load(ordering: .relaxed)
        if copied != 0, ContinuousClock.Instant.fromNanosecondsSinceStart(copied) > horizon { return 0 }
        var collected = 0
        while true {
            let done = try committer.exclusive { () throws -> Bool in
                guard !dropped else { return true }
                let due = lock.read { tombstoneQueue[tombstoneHead...].prefix { $0.committed <= horizon }.prefix(4096) }
                guard !due.isEmpty else { return true }
                let batch = WriteBatch()
                var purge: [UTF8Key] = []
                for entry in due {
                    guard let record = ids[entry.key], record.deleted, record.version == entry.version else { continue }
                    batch.delete(Keys.id(number, entry.key.string))
                    purge.append(entry.key)
                }
                // Not synced: a tombstone that comes back after a crash is collected again.
                if batch.count > 0 { try db.write(batch, sync: false) }
                lock.write {
                    tombstoneHead += due.count
                    if tombstoneHead > 4096 && tombstoneHead * 2 > tombstoneQueue.count {
                        tombstoneQueue.removeFirst(tombstoneHead)
                        tombstoneHead = 0
                    }
                    for key in purge { ids[key] = nil }
                    tombstoneCount -= purge.count
                }
                collected += purge.count
                return due.count < 4096
            }
            if done { return collected }
        }
    }
}

/// Runs tombstone collection over a node's replicas every `retention / 4` (1…60 s).
final class TombstoneCollector: Sendable {
    private let retention: Duration
    private let committer: Committer
    private let thread = Mutex<PeriodicThread?>(nil)

    init(retention: Duration, committer: Committer) {
        self.retention = retention
        self.committer = committer
    }

    /// Starts the thread; `replicas` lists the node's replicas at each pass.
    func start(replicas: @escaping @Sendable () -> [Replica]) {
        let period = Duration.seconds(min(60, max(1, retention.seconds / 4)))
        let started = PeriodicThread(name: "shoal-tombstones", interval: period) { [retention, committer] in
            for replica in replicas() {
                do {
                    let n = try replica.collectTombstones(retention: retention, committer: committer)
                    if n > 0 { replica.logger.debug("tombstones collected", metadata: ["count": "\(n)"]) }
                } catch {
                    replica.logger.warning("tombstone collection failed; retried later", metadata: ["error": "\(error)"])
                }
            }
        }
        thread.withLock { $0 = started }
    }

    func stop() { thread.withLock { $0 }?.stop() }
}

extension ContinuousClock.Instant {
    private static let origin = ContinuousClock.now

    /// Nanoseconds since a fixed instant of this process (for atomics).
    var nanosecondsSinceStart: Int64 {
        let d = self - Self.origin
        return d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }

    static func fromNanosecondsSinceStart(_ ns: Int64) -> Self { origin + .nanoseconds(ns) }
}
