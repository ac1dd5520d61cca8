import Foundation
import Logging
import Synchronization
import VectorIndex
import VectorStorage

enum IndexWork {
    case upsert(UInt32, UInt64)  // internal id, the sequence whose vector to index
    case delete(UInt32)

    var internalID: UInt32 {
        switch self {
        case .upsert(let id, _), .delete(let id): id
        }
    }
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
    /// Set by `stop`: the indexing threads stop at their next chunk boundary.
    private let interrupted = Atomic<Bool>(false)
    private var changedSinceImage = 0
    private var lastImage = ContinuousClock.now
    /// Image refresh: after this many changed points, or this long with any change.
    var imageEveryPoints = 50_000
    var imageEvery: Duration = .seconds(60)
    /// Backlogs of at least this many changes are indexed by two threads.
    var parallelThreshold = 512
    /// Items taken off the queue at once (one batch at least, however large).
    var itemsPerTake = 8192
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

    /// Stops at the next chunk boundary (at most 64 points later) and, with `persist`,
    /// writes a final image of what is indexed (if it can be by `deadline`, when given);
    /// work still queued is dropped. That loses
    /// nothing: `indexedSequence` names the last fully applied batch, the image header
    /// says so, and the next start replays every point written after it.
    func stop(persist: Bool, deadline: ContinuousClock.Instant? = nil) {
        interrupt()
        monitor.locked {
            queue.removeAll()
            stopping = true
            monitor.signal()
            while !stopped { monitor.wait(seconds: 0.1) }
        }
        if persist { persistImage(before: deadline) }
    }

    /// Makes the indexing threads stop at their next chunk boundary (`stop` then waits).
    func interrupt() { interrupted.store(true, ordering: .relaxed) }

    /// Blocks until everything enqueued so far is in the graph (tests, benchmarks).
    func waitUntilIdle(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if monitor.locked({ queue.isEmpty }), replica.lock.read({ replica.pending.isEmpty && replica.unindexedDeletes.isEmpty }) {
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
                if stopping { return [] }
                // Up to 64 batches and about `itemsPerTake` items: a long replay advances
                // `indexedSequence` (and the periodic image) as it goes.
                var count = 0, items = 0
                while count < min(64, queue.count), count == 0 || items + queue[count].items.count <= itemsPerTake {
                    items += queue[count].items.count
                    count += 1
                }
                let taken = Array(queue.prefix(count))
                queue.removeFirst(count)
                return taken
            }
            if batches.isEmpty {  // stopping
                monitor.locked {
                    stopped = true
                    monitor.signal()
                }
                return
            }
            apply(batches)
            if interrupted.load(ordering: .relaxed) { continue }  // `stop` saves the image
            if changedSinceImage >= imageEveryPoints
                || (changedSinceImage > 0 && ContinuousClock.now - lastImage >= imageEvery && monitor.locked({ queue.isEmpty }))
            {
                persistImage()
            }
        }
    }

    /// Applies the taken batches to the graph. A large backlog (a restart's replay, a
    /// bulk load) is split by internal id between this thread and a second one, each
    /// keeping commit order for its ids. Interrupted by `stop`, it advances
    /// `indexedSequence` only to the last batch both threads applied in full.
    private func apply(_ batches: [IndexBatch]) {
        guard !batches.isEmpty else { return }
        let items = batches.flatMap(\.items)
        var complete: Int  // batches applied in full
        if items.count < parallelThreshold {
            let applied = applyItems(items[...])
            var end = 0
            complete = 0
            for batch in batches {
                end += batch.items.count
                guard end <= applied else { break }
                complete += 1
            }
            changedSinceImage += applied
        } else {
            // Per part: its items, and the batch each came from.
            var parts: [[IndexWork]] = [[], []]
            var origins: [[Int]] = [[], []]
            for (b, batch) in batches.enumerated() {
                for item in batch.items {
                    parts[Int(item.internalID & 1)].append(item)
                    origins[Int(item.internalID & 1)].append(b)
                }
            }
            let helper = DispatchSemaphore(value: 0)
            let second = parts[1]
            let secondApplied = Atomic<Int>(0)
            Thread { [self] in
                lowerThreadPriority(by: 10)
                secondApplied.store(applyItems(second[...]), ordering: .relaxed)
                helper.signal()
            }.start()
            let firstApplied = applyItems(parts[0][...])
            helper.wait()
            let applied = [firstApplied, secondApplied.load(ordering: .relaxed)]
            // A part has finished every batch before the one its first unapplied item is from.
            complete = (0..<2).map { p in applied[p] < parts[p].count ? origins[p][applied[p]] : batches.count }.min()!
            changedSinceImage += applied[0] + applied[1]
        }
        if complete > 0 { replica.indexedSequence.store(batches[complete - 1].sequence, ordering: .releasing) }
    }

    /// Inserts, updates and deletes in the graph. The replica's write lock is taken once
    /// per chunk, not per point: until then a point is in both the graph and the pending
    /// tail, and searches read it from the tail, so results do not change.
    /// Returns how many items (a prefix) it applied: all of them unless `stop` interrupted.
    private func applyItems(_ items: ArraySlice<IndexWork>) -> Int {
        let index = replica.index
        for chunk in stride(from: items.startIndex, to: items.endIndex, by: 64) {
            if interrupted.load(ordering: .relaxed) { return chunk - items.startIndex }
            let slice = items[chunk..<min(chunk + 64, items.endIndex)]
            let vectors: [UInt32: [Float]] = replica.lock.read {
                var found: [UInt32: [Float]] = [:]
                for case .upsert(let id, let sequence) in slice {
                    if let p = replica.pending[id], p.sequence == sequence { found[id] = p.vector }
                }
                return found
            }
            var indexed: [(UInt32, UInt64)] = []
            var deleted: [UInt32] = []
            for item in slice {
                switch item {
                case .upsert(let internalID, let sequence):
                    guard let vector = vectors[internalID] else { continue }  // superseded (its own item follows) or deleted
                    do {
                        if index.contains(id: internalID) {
                            try index.update(id: internalID, vector: vector)
                        } else {
                            try index.insert(id: internalID, vector: vector)
                        }
                        indexed.append((internalID, sequence))
                    } catch {
                        replica.logger.error("indexing failed; the point stays in the exact-scanned tail", metadata: ["internal_id": "\(internalID)", "error": "\(error)"])
                    }
                case .delete(let internalID):
                    if index.contains(id: internalID) { try? index.delete(id: internalID) }
                    deleted.append(internalID)
                }
            }
            replica.lock.write {
                for (id, sequence) in indexed where replica.pending[id]?.sequence == sequence { replica.pending[id] = nil }
                for id in deleted { replica.unindexedDeletes.remove(id) }
            }
        }
        return items.count
    }

    /// Writes the graph image with the sequence it covers. Runs on the indexer's thread
    /// (or after it stopped), so the graph does not change underneath. With a
    /// `deadline`, the image is written only if it can be by then, at the rate earlier
    /// saves wrote (`GraphImage.writeRate`); else the last image stays, and the next
    /// start replays what came after it.
    func persistImage(before deadline: ContinuousClock.Instant? = nil) {
        let sequence = replica.indexedSequence.load(ordering: .acquiring)
        guard sequence > replica.imageSequence.load(ordering: .relaxed) || replica.imageSequence.load(ordering: .relaxed) == 0 && sequence > 0 else { return }
        let start = ContinuousClock.now
        do {
            let bytes = replica.index.serialize()
            let expected = Duration.seconds(Double(bytes.count) / Double(GraphImage.writeRate.load(ordering: .relaxed)))
            if let deadline, ContinuousClock.now + expected > deadline {
                replica.logger.warning("final graph image not saved: it would not be written in time; the next start replays the points after the last image", metadata: [
                    "bytes": "\(bytes.count)", "expected_seconds": "\(expected.seconds)", "image_sequence": "\(replica.imageSequence.load(ordering: .relaxed))",
                ])
                return
            }
            let writeStart = ContinuousClock.now
            try GraphImage.write(bytes, sequence: sequence, replica: replica.number, db: replica.db)
            GraphImage.observe(bytes: bytes.count, took: ContinuousClock.now - writeStart)
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
