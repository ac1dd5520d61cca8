import Foundation
import Synchronization

/// A fixed set of threads that run short CPU-bound jobs (a node's searches, gets,
/// counts, stats) to completion, off Swift's cooperative pool, so async work (a
/// coordinator's fan-out, the committer's callers) never waits behind a graph walk.
///
/// The queue is bounded three ways, and the caller is told at once, so overload is
/// answered (RESOURCE_EXHAUSTED, "busy: …"), never queued without end:
/// - `submit` refuses a job when `queueLimit` jobs are waiting;
/// - `submit` refuses a job that would wait longer than `maxWait`, by the mean run
///   time of recent jobs (the work ahead of it spread over the threads) — so under
///   saturation the refusal comes at admission, in microseconds, not after the wait;
/// - a job that still waited longer than `maxWait` (the estimate was low) is not
///   run but `refused` (it would answer after its caller stopped caring).
public final class WorkerPool: @unchecked Sendable {
    // @unchecked: `queue` and `head` are guarded by `condition`.
    public struct Job: Sendable {
        /// Runs on a worker thread.
        public var run: @Sendable () -> Void
        /// Runs instead of `run` when the job waited longer than `maxWait`, with how long.
        public var refused: @Sendable (Duration) -> Void

        public init(run: @escaping @Sendable () -> Void, refused: @escaping @Sendable (Duration) -> Void) {
            self.run = run
            self.refused = refused
        }
    }

    public let threads: Int
    public let queueLimit: Int
    public let maxWait: Duration
    private let condition = NSCondition()
    private var queue: [(job: Job, since: ContinuousClock.Instant)] = []
    private var head = 0
    private var stopped = false
    private let running = Atomic<Int>(0)
    /// Mean run time of recent jobs in nanoseconds (moving average, weight 1/8), 0
    /// before the first; guarded by `condition`.
    private var meanRunNs: Double = 0

    /// - Parameters:
    ///   - threads: worker threads (at least 1).
    ///   - queueLimit: jobs that may wait for a thread (at least 1).
    ///   - maxWait: the longest a job may wait before it is refused instead of run.
    public init(name: String, threads: Int, queueLimit: Int, maxWait: Duration) {
        self.threads = max(1, threads)
        self.queueLimit = max(1, queueLimit)
        self.maxWait = maxWait
        for i in 0..<self.threads {
            let thread = Thread { [self] in work() }
            thread.name = "\(name)-\(i)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Queues `job`, or says why not (the job dropped): the pool is stopped, `queueLimit`
    /// jobs already wait, or the work ahead of it would keep it waiting over `maxWait`.
    public func submit(_ job: Job) -> ShoalError? {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { return ShoalError(.unavailable, "the read threads are stopping") }
        let waiting = queue.count - head
        guard waiting < queueLimit else { return .fullQueue(queueLimit) }
        // Jobs that must start before this one does, beyond the threads free now.
        let ahead = waiting + running.load(ordering: .relaxed) - threads + 1
        if ahead > 0, meanRunNs > 0 {
            let expected = Duration.nanoseconds(Int64(Double(ahead) * meanRunNs / Double(threads)))
            if expected > maxWait { return .expectedWait(expected, waiting: waiting, limit: maxWait) }
        }
        queue.append((job, .now))
        condition.signal()
        return nil
    }

    /// Jobs waiting for a thread now.
    public var waiting: Int {
        condition.lock()
        defer { condition.unlock() }
        return queue.count - head
    }

    /// Jobs running now.
    public var busy: Int { running.load(ordering: .relaxed) }

    /// Lets the threads exit once the queue is empty; later submits are refused.
    /// The pool lives on while a thread runs (the threads hold it).
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func work() {
        var ran: Duration?
        while let (job, since) = next(after: ran) {
            let started = ContinuousClock.now
            let waited = started - since
            if waited > maxWait {
                job.refused(waited)
                ran = nil
                continue
            }
            running.wrappingAdd(1, ordering: .relaxed)
            job.run()
            running.wrappingSubtract(1, ordering: .relaxed)
            ran = .now - started
        }
    }

    /// The next job to run (nil once stopped and empty); first folds the last job's
    /// run time, if one ran, into the mean.
    private func next(after ran: Duration?) -> (Job, ContinuousClock.Instant)? {
        condition.lock()
        defer { condition.unlock() }
        if let ran {
            let ns = Double(ran / .nanoseconds(1))
            meanRunNs = meanRunNs == 0 ? ns : meanRunNs + (ns - meanRunNs) / 8
        }
        while head == queue.count {
            if stopped { return nil }
            condition.wait()
        }
        let entry = queue[head]
        head += 1
        if head > 1024, head * 2 > queue.count {  // drop the consumed prefix now and then
            queue.removeFirst(head)
            head = 0
        }
        return entry
    }
}

/// Slots for calls running at once, at most `limit`: a call that finds none free
/// is refused, never queued.
public final class CallSlots: Sendable {
    public let limit: Int
    private let running = Atomic<Int>(0)
    public init(limit: Int) { self.limit = limit }

    /// Takes a slot; false (and nothing taken) if all `limit` are in use.
    public func enter() -> Bool {
        if running.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue <= limit { return true }
        running.wrappingSubtract(1, ordering: .acquiringAndReleasing)
        return false
    }

    public func leave() { running.wrappingSubtract(1, ordering: .acquiringAndReleasing) }

    /// Calls running now.
    public var inUse: Int { running.load(ordering: .relaxed) }
}

extension WorkerPool {
    /// A pool sized by `limits`: `readThreads` (0: one per core), `maxQueuedReads`, `maxReadWait`.
    public convenience init(name: String, limits: RequestLimits) {
        self.init(name: name, threads: limits.effectiveReadThreads, queueLimit: limits.maxQueuedReads, maxWait: limits.maxReadWait)
    }
}

extension ShoalError {
    /// A blocking call that found the worker queue full.
    public static func fullQueue(_ limit: Int) -> ShoalError {
        ShoalError(.resourceExhausted, "busy: \(limit) reads already wait for a worker, the limit (--max-queued-reads); retry later")
    }

    /// A blocking call refused at admission: the work queued ahead of it would keep it
    /// waiting about `expected`, over the pool's `maxWait`.
    public static func expectedWait(_ expected: Duration, waiting: Int, limit: Duration) -> ShoalError {
        ShoalError(.resourceExhausted,
            "busy: \(waiting) reads wait for a worker, about \(expected.milliseconds) ms of work, over the \(limit.milliseconds) ms limit (--max-read-wait-ms); retry later")
    }

    /// A blocking call that waited longer than the pool's `maxWait` for a worker.
    public static func busyWorkers(waited: Duration, limit: Duration) -> ShoalError {
        ShoalError(.resourceExhausted,
            "busy: the read waited \(waited.milliseconds) ms for a worker, over the \(limit.milliseconds) ms limit (--max-read-wait-ms); retry later")
    }
}

extension Duration {
    /// Whole milliseconds (truncated).
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
