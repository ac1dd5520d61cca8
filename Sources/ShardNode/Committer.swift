import Foundation
import Logging
import Synchronization
import VectorCore
import VectorStorage

/// The node's one writer. Client batches queue here; the committer thread takes
/// everything queued, resolves versions in arrival order, writes it all as one
/// RocksDB batch (one WAL append, one fsync: group commit), then makes it visible
/// and acknowledges each batch. Nothing is acknowledged before RocksDB has it.
///
/// It also keeps the fences (Fencing.swift) where writes are committed: a group checks
/// each batch's origin (the leader term of a copy page, the placement fence of its
/// replica for a routed write) while it holds the gate, and a term or fence changes
/// only under the same gate (`leaderCommand`). So a FenceReplica that has answered
/// (a) had every group before it committed, applied and visible, a Scan's snapshot
/// opened later included, and (b) is seen by every group after it, which refuses a
/// batch routed by an older epoch, however long before the fence it was queued.
final class Committer: @unchecked Sendable {
    // @unchecked: `queue` and `stopping` are guarded by `monitor`.
    struct Outcome: Sendable {
        /// Ops applied (newer than what the replica held).
        var applied: Int
        /// Ops ignored as stale.
        var ignored: Int
        /// Applied deletes that removed a live point.
        var deletedLive: Int
        var sequence: UInt64
        /// The highest version held for an ignored op (0: none ignored).
        var staleVersion: UInt64 = 0
    }

    private struct Job {
        var replica: Replica
        var ops: [WriteOp]
        var origin: WriteOrigin
        var done: @Sendable (Result<Outcome, ShoalError>) -> Void
    }

    private let db: Database
    private let sync: Bool
    private let limits: RequestLimits
    private let logger: Logger
    private let monitor = Monitor()
    private var queue: [Job] = []
    /// Ops in `queue`: at most `limits.maxQueuedWriteOps`.
    private var queuedOps = 0
    private var stopping = false
    private var stopped = false
    /// Largest group: bounds memory and the latency of the first batch in it.
    private let maxJobsPerGroup = 512
    /// Held while a group is staged and written, and while a replica is dropped or
    /// fenced (`exclusive`, `leaderCommand`): a write lands wholly before a drop, which
    /// then deletes it, or finds the replica dropped; never in a replica's keys after
    /// their deletion. Guards the node's highest leader term.
    private let gate: Mutex<LeaderTerm>

    /// - Parameters:
    ///   - limits: `maxQueuedWriteOps` bounds the queue, `maxFieldNamesPerCollection`
    ///     each replica's field names.
    ///   - leaderTerm: the highest leader term the node has persisted.
    init(db: Database, sync: Bool, limits: RequestLimits, leaderTerm: LeaderTerm, logger: Logger) {
        self.gate = Mutex(leaderTerm)
        self.db = db
        self.sync = sync
        self.limits = limits
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "shoal-committer"
        thread.start()
    }

    /// Queues `ops` for the next group commit and waits for its outcome. A batch that
    /// would take the queue over `limits.maxQueuedWriteOps` is refused at once with
    /// RESOURCE_EXHAUSTED (nothing queued); so is one during shutdown, with UNAVAILABLE.
    /// `origin` is checked when the batch's group is committed: a copy page of an older
    /// leader term fails with FAILED_PRECONDITION, a write routed below the replica's
    /// placement fence with ABORTED, each having changed nothing.
    func submit(_ ops: [WriteOp], to replica: Replica, origin: WriteOrigin) async throws(ShoalError) -> Outcome {
        let result: Result<Outcome, ShoalError> = await withCheckedContinuation { continuation in
            let job = Job(replica: replica, ops: ops, origin: origin) { continuation.resume(returning: $0) }
            let refusal: ShoalError? = monitor.locked {
                guard !stopping else { return ShoalError(.unavailable, "the node is shutting down") }
                guard queuedOps + ops.count <= limits.maxQueuedWriteOps else {
                    return ShoalError(.resourceExhausted,
                        "the node's write queue is full (\(queuedOps) ops queued, the limit is \(limits.maxQueuedWriteOps), --max-queued-write-ops); retry later")
                }
                queuedOps += ops.count
                queue.append(job)
                monitor.signal()
                return nil
            }
            if let refusal { continuation.resume(returning: .failure(refusal)) }
        }
        return try result.get()
    }

    /// Runs `body` between two write groups.
    func exclusive<T>(_ body: () throws -> T) rethrows -> T {
        try gate.withLock { _ in try body() }
    }

    /// Runs `body` between two write groups as a command of the leader of `term`. An
    /// older nonzero term is refused with FAILED_PRECONDITION before `body` runs. A
    /// newer one is persisted with `body`'s own batch (`TermStamp.stage(into:)`), or
    /// alone (synced) after a `body` that staged nothing, before the answer; a `body`
    /// that throws before staging leaves the term as it was.
    func leaderCommand<T>(term: UInt64, _ body: (TermStamp) throws -> T) throws -> T {
        try gate.withLock { leader in
            let stamp = TermStamp(term: term, raises: try leader.admit(term))
            let result: T
            do {
                result = try body(stamp)
            } catch {
                if stamp.staged { leader.raise(to: term) }  // it may be on disk: never below it
                throw error
            }
            if stamp.raises && !stamp.staged {
                let batch = WriteBatch()
                stamp.stage(into: batch)
                try db.write(batch, sync: true)
            }
            leader.raise(to: term)
            return result
        }
    }

    /// The highest leader term the node has seen.
    var highestTerm: UInt64 { gate.withLock { $0.highest } }

    /// Commits what is queued, then stops the thread.
    func stop() {
        monitor.locked {
            stopping = true
            monitor.signal()
            while !stopped { monitor.wait(seconds: 0.1) }
        }
    }

    private func run() {
        while true {
            let jobs: [Job] = monitor.locked {
                while queue.isEmpty && !stopping { monitor.wait(seconds: 1) }
                let taken = Array(queue.prefix(maxJobsPerGroup))
                queue.removeFirst(taken.count)
                queuedOps -= taken.reduce(0) { $0 + $1.ops.count }
                return taken
            }
            if jobs.isEmpty {
                monitor.locked {
                    stopped = true
                    monitor.signal()
                }
                return
            }
            commit(jobs)
        }
    }

    private func commit(_ jobs: [Job]) {
        gate.withLock { leader in commitLocked(jobs, leader: &leader) }
    }

    /// Refuses a job its origin does not admit: a copy page of an older term than
    /// `leader`'s, a routed write its replica's fence excludes. Returns the term the job
    /// raises the node's highest to, if any.
    private func admit(_ job: Job, leader: LeaderTerm) throws(ShoalError) -> UInt64? {
        switch job.origin {
        case .leaderCopy(let term):
            return try leader.admit(term) ? term : nil
        case .routed(let epoch):
            try job.replica.placementFence.check(epoch, replica: job.replica.ref)
            return nil
        }
    }

    private func commitLocked(_ jobs: [Job], leader: inout LeaderTerm) {
        var groupLeader = leader  // raised by this group's copy pages; kept once written
        let batch = WriteBatch()
        var overlays: [ObjectIdentifier: [UTF8Key: IdRecord]] = [:]
        var sequences: [ObjectIdentifier: UInt64] = [:]
        var newFieldNames: [ObjectIdentifier: Set<String>] = [:]  // staged in this group, per replica
        var staged: [(job: Job, changes: [StagedChange], ignored: Int, deletedLive: Int, staleVersion: UInt64, sequence: UInt64)] = []
        var answered = Set<Int>()  // jobs already failed individually
        do {
            for (i, job) in jobs.enumerated() {
                let key = ObjectIdentifier(job.replica)
                if job.replica.dropped {
                    job.done(.failure(ShoalError(.notFound, "replica \(job.replica.ref) was dropped")))
                    answered.insert(i)
                    continue
                }
                let raisedTerm: UInt64?
                do throws(ShoalError) { raisedTerm = try admit(job, leader: groupLeader) } catch {
                    job.done(.failure(error))
                    answered.insert(i)
                    continue
                }
                if let refusal = job.replica.admitFieldNames(
                    job.ops, staged: &newFieldNames[key, default: []], limit: limits.maxFieldNamesPerCollection)
                {
                    job.done(.failure(refusal))  // refused whole: nothing of it staged
                    answered.insert(i)
                    continue
                }
                let sequence = (sequences[key] ?? job.replica.committedSequence) + 1
                var overlay = overlays[key] ?? [:]
                let (changes, ignored, deletedLive, staleVersion) = try job.replica.stage(job.ops, sequence: sequence, overlay: &overlay, into: batch)
                overlays[key] = overlay
                if let raisedTerm { groupLeader.raise(to: raisedTerm) }
                if !changes.isEmpty { sequences[key] = sequence }
                staged.append((job, changes, ignored, deletedLive, staleVersion, changes.isEmpty ? sequences[key] ?? job.replica.committedSequence : sequence))
            }
            if groupLeader.highest > leader.highest { LeaderTerm.stage(groupLeader.highest, into: batch) }
            if batch.count > 0 { try db.write(batch, sync: sync) }
            leader = groupLeader
        } catch {
            logger.error("write batch failed; nothing in it was acknowledged", metadata: ["error": "\(error)", "batches": "\(jobs.count)"])
            for (i, job) in jobs.enumerated() where !answered.contains(i) {
                job.done(.failure(ShoalError(.unavailable, (error as? StorageError)?.writeRefusal ?? "storage write failed: \(error)")))
            }
            return
        }
        for entry in staged {
            if !entry.changes.isEmpty { entry.job.replica.apply(entry.changes, sequence: entry.sequence) }
            entry.job.done(.success(Outcome(
                applied: entry.changes.count, ignored: entry.ignored, deletedLive: entry.deletedLive, sequence: entry.sequence,
                staleVersion: entry.staleVersion)))
        }
    }
}
