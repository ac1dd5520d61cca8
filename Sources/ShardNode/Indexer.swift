import Foundation
import Logging
import VectorIndex
import VectorStorage

enum IndexWork {
    case upsert(UInt32, UInt64)  // internal id, the sequence whose vector to index
    case delete(UInt32)
}

/// The work of one committed client batch, applied to the graph as a unit so that
/// `indexedSequence` always names a fully indexed batch.
struct IndexBatch {
    var sequence: UInt64
    var items: [IndexWork]
}

/// Builds a replica's graph in the background, in commit order, and refreshes its
/// persisted image when enough has changed (and at shutdown). Searches never wait
/// for it: what it has not reached yet is scanned exactly.
final class Indexer: @unchecked Sendable {
    // @unchecked: `queue`, `stopping`, `stopped` are guarded by `monitor`.
    private unowned let replica: Replica
    private let monitor = Monitor()
    private var queue: [IndexBatch] = []
    private var stopping = false
    private var stopped = false
    private var changedSinceImage = 0
    private var lastImage = ContinuousClock.now
    /// Image refresh: after this many changed points, or this long with any change.
    var imageEveryPoints = 50_000
    var imageEvery: Duration = .seconds(60)
    /// Tests only: take no work while set (set before `start`).
    var paused = false

    init(replica: Replica) { self.replica = replica }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "shoal-indexer-\(replica.ref)"
        thread.start()
    }

    func enqueue(_ batch: IndexBatch) {
        monitor.locked {
            queue.append(batch)
            monitor.signal()
        }
    }

    /// Stops after the queue is drained; with `persist`, writes a final image.
    func stop(persist: Bool) {
        monitor.locked {
            stopping = true
            monitor.signal()
            while !stopped { monitor.wait(seconds: 0.1) }
        }
        if persist { persistImage() }
    }

    /// Blocks until everything enqueued so far is in the graph (tests, benchmarks).
    func waitUntilIdle(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if monitor.locked({ queue.isEmpty }), replica.lock.read({ replica.pending.isEmpty && replica.unindexedDeletes == 0 }) {
                return true
            }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }

    private func run() {
        // Graph building yields to ingest and search: writes are acknowledged at the
        // RocksDB commit and searchable at once, so the graph may fall behind for a while.
        lowerThreadPriority(by: 10)
        while true {
            let batches: [IndexBatch] = monitor.locked {
                while (queue.isEmpty || paused) && !stopping { monitor.wait(seconds: 1) }
                let taken = Array(queue.prefix(64))
                queue.removeFirst(taken.count)
                return taken
            }
            if batches.isEmpty {  // stopping, queue drained
                monitor.locked {
                    stopped = true
                    monitor.signal()
                }
                return
            }
            for batch in batches { apply(batch) }
            if changedSinceImage >= imageEveryPoints
                || (changedSinceImage > 0 && ContinuousClock.now - lastImage >= imageEvery && monitor.locked({ queue.isEmpty }))
            {
                persistImage()
            }
        }
    }

    private func apply(_ batch: IndexBatch) {
        let index = replica.index
        for item in batch.items {
            switch item {
            case .upsert(let internalID, let sequence):
                guard let vector = replica.lock.read({ replica.pending[internalID].flatMap { $0.sequence == sequence ? $0.vector : nil } }) else {
                    continue  // superseded by a newer write (its own item follows) or deleted
                }
                do {
                    if index.contains(id: internalID) {
                        try index.update(id: internalID, vector: vector)
                    } else {
                        try index.insert(id: internalID, vector: vector)
                    }
                } catch {
                    replica.logger.error("indexing failed; the point stays in the exact-scanned tail", metadata: ["internal_id": "\(internalID)", "error": "\(error)"])
                    continue
                }
                replica.lock.write {
                    if replica.pending[internalID]?.sequence == sequence { replica.pending[internalID] = nil }
                }
            case .delete(let internalID):
                if index.contains(id: internalID) { try? index.delete(id: internalID) }
                replica.lock.write { replica.unindexedDeletes -= 1 }
            }
            changedSinceImage += 1
        }
        replica.indexedSequence.store(batch.sequence, ordering: .releasing)
    }

    /// Writes the graph image with the sequence it covers. Runs on the indexer's thread
    /// (or after it stopped), so the graph does not change underneath.
    func persistImage() {
        let sequence = replica.indexedSequence.load(ordering: .acquiring)
        guard sequence > replica.imageSequence.load(ordering: .relaxed) || replica.imageSequence.load(ordering: .relaxed) == 0 && sequence > 0 else { return }
        let start = ContinuousClock.now
        do {
            let bytes = replica.index.serialize()
            try GraphImage.write(bytes, sequence: sequence, replica: replica.number, db: replica.db)
            replica.imageSequence.store(sequence, ordering: .relaxed)
            replica.imageTimeMs.store(UInt64(Date().timeIntervalSince1970 * 1000), ordering: .relaxed)
            changedSinceImage = 0
            lastImage = ContinuousClock.now
            replica.logger.info("graph image saved", metadata: [
                "sequence": "\(sequence)", "bytes": "\(bytes.count)", "seconds": "\((ContinuousClock.now - start).seconds)",
            ])
        } catch {
            replica.logger.error("could not save the graph image", metadata: ["error": "\(error)"])
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

/// Raises this thread's nice value (Linux threads have their own).
func lowerThreadPriority(by amount: Int32) {
    #if os(Linux)
    // The thread id, from /proc/thread-self -> "<pid>/task/<tid>" (gettid is not imported).
    guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self"),
          let tid = link.split(separator: "/").last.flatMap({ id_t($0) }) else { return }
    _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), tid, amount)
    #endif
}
