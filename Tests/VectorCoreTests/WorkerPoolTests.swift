import Foundation
import Synchronization
import Testing
import VectorCore

/// The read threads' admission: a full queue, or a queue whose work would outlast
/// `maxWait`, refuses at `submit`; a job that still waited too long is refused, not run.
/// What the jobs did, in order.
final class JobLog: Sendable {
    private let entries = Mutex<[String]>([])
    func add(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

@Suite struct WorkerPoolTests {
    /// Polls `condition` every millisecond for at most 60 s.
    static func eventually(_ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        return condition()
    }

    /// A job that records its name when it runs or is refused, and runs for `busy`.
    static func job(_ name: String, _ log: JobLog, busy: Duration = .zero) -> WorkerPool.Job {
        WorkerPool.Job(
            run: {
                if busy > .zero { Thread.sleep(forTimeInterval: busy / .seconds(1)) }
                log.add("ran \(name)")
            },
            refused: { _ in log.add("refused \(name)") })
    }

    @Test func aFullQueueRefusesAtOnce() async throws {
        let pool = WorkerPool(name: "test-pool", threads: 1, queueLimit: 2, maxWait: .seconds(600))
        defer { pool.stop() }
        let log = JobLog()
        let release = Flag()
        #expect(pool.submit(WorkerPool.Job(
            run: { while !release.isSet { Thread.sleep(forTimeInterval: 0.001) } },
            refused: { _ in })) == nil)
        #expect(try await Self.eventually { pool.busy == 1 })
        #expect(pool.submit(Self.job("a", log)) == nil)
        #expect(pool.submit(Self.job("b", log)) == nil)
        let refusal = pool.submit(Self.job("c", log))
        #expect(refusal?.code == .resourceExhausted)
        #expect(refusal?.message.hasPrefix("busy: 2 reads already wait") == true)
        release.set()
        #expect(try await Self.eventually { log.all.count == 2 })
        #expect(log.all == ["ran a", "ran b"])
    }

    @Test func workThatWouldOutlastTheWaitLimitIsRefusedAtAdmission() async throws {
        // Jobs of ~100 ms on one thread, a 190 ms wait limit: with one running and one
        // queued, a third would wait ~200 ms and is told so at once. (Sleeps only ever
        // overshoot: the learned run time stays in 95…190 ms unless the machine
        // stretches a 100 ms sleep by 90 ms.)
        let pool = WorkerPool(name: "test-pool", threads: 1, queueLimit: 100, maxWait: .milliseconds(190))
        defer { pool.stop() }
        let log = JobLog()
        #expect(pool.submit(Self.job("warm", log, busy: .milliseconds(100))) == nil)  // teaches the pool the run time
        #expect(try await Self.eventually { log.all == ["ran warm"] && pool.busy == 0 })
        let release = Flag()
        #expect(pool.submit(WorkerPool.Job(  // holds the thread until released
            run: {
                while !release.isSet { Thread.sleep(forTimeInterval: 0.001) }
                log.add("ran a")
            },
            refused: { _ in log.add("refused a") })) == nil)
        #expect(try await Self.eventually { pool.busy == 1 })
        #expect(pool.submit(Self.job("b", log, busy: .milliseconds(100))) == nil)  // would wait ~100 ms
        let started = ContinuousClock.now
        let refusal = pool.submit(Self.job("c", log, busy: .milliseconds(100)))  // would wait ~200 ms
        #expect(ContinuousClock.now - started < .seconds(1))  // answered, not queued
        #expect(refusal?.code == .resourceExhausted)
        #expect(refusal?.message.contains("over the 190 ms limit (--max-read-wait-ms)") == true)
        #expect(refusal?.message.hasPrefix("busy:") == true)
        release.set()
        #expect(try await Self.eventually { log.all.count == 3 })
        // b waited for a, which the test held: it may run or be refused for waiting; never c.
        #expect(Array(log.all.prefix(2)) == ["ran warm", "ran a"])
        #expect(!log.all.contains { $0.hasSuffix(" c") })
    }

    @Test func anIdleThreadTakesAJobHoweverLongJobsRun() async throws {
        // One job runs longer than the wait limit; the next still gets in once the thread is free.
        let pool = WorkerPool(name: "test-pool", threads: 1, queueLimit: 100, maxWait: .milliseconds(10))
        defer { pool.stop() }
        let log = JobLog()
        #expect(pool.submit(Self.job("long", log, busy: .milliseconds(40))) == nil)
        #expect(try await Self.eventually { log.all == ["ran long"] && pool.busy == 0 })
        #expect(pool.submit(Self.job("next", log, busy: .milliseconds(40))) == nil)
        #expect(try await Self.eventually { log.all.count == 2 })
        #expect(log.all == ["ran long", "ran next"])
    }
}
