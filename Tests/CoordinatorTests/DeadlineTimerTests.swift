@testable import Coordinator
import Foundation
import Synchronization
import Testing

/// The hedges' timer: actions run once, at or after their deadline, in deadline
/// order; cancelled ones never run.
@Suite struct DeadlineTimerTests {
    /// Polls `condition` every millisecond for at most 60 s.
    static func eventually(_ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        return condition()
    }

    @Test func actionsRunInDeadlineOrderAndNotBefore() async throws {
        let timer = DeadlineTimer(name: "test-timer")
        let ran = Mutex<[(Int, ContinuousClock.Instant)]>([])
        let armed = ContinuousClock.now
        // Armed latest first: each new one is the earliest and re-arms the sleeping thread.
        for (i, ms) in [(3, 60), (2, 40), (1, 20)] {
            _ = timer.schedule(after: .milliseconds(ms)) { ran.withLock { $0.append((i, .now)) } }
        }
        #expect(try await Self.eventually { ran.withLock { $0.count } == 3 })
        let order = ran.withLock { $0 }
        #expect(order.map(\.0) == [1, 2, 3])
        for ((i, at), ms) in zip(order, [20, 40, 60]) { #expect(at - armed >= .milliseconds(ms), "action \(i) ran early") }
        #expect(timer.armed == 0)
    }

    @Test func aCancelledActionNeverRuns() async throws {
        let timer = DeadlineTimer(name: "test-timer")
        let ran = Mutex<[Int]>([])
        let first = timer.schedule(after: .milliseconds(10)) { ran.withLock { $0.append(1) } }
        _ = timer.schedule(after: .milliseconds(30)) { ran.withLock { $0.append(2) } }
        let third = timer.schedule(after: .milliseconds(20)) { ran.withLock { $0.append(3) } }
        timer.cancel(first)
        timer.cancel(third)
        #expect(timer.armed == 1)
        // Actions run in deadline order: once 2 (30 ms) ran, 1 and 3 would have before it.
        #expect(try await Self.eventually { ran.withLock { $0.contains(2) } })
        #expect(ran.withLock { $0 } == [2])
        timer.cancel(first)  // cancelling again, or after the deadline, does nothing
        #expect(timer.armed == 0)
    }
}
