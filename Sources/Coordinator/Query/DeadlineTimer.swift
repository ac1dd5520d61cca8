import Foundation

/// Runs short actions at their deadlines on one thread of its own; an action
/// cancelled before its deadline costs no wake-up of its own.
///
/// Why not `DispatchQueue.asyncAfter`: every fanned-out read arms a hedge per node
/// call and nearly every one is cancelled (the node answered first). With GCD each
/// still fired, waking the dispatch manager and a worker thread three times per
/// search (perf: 7% of the coordinator's samples in `_dispatch_mgr_thread`). Here the
/// thread sleeps until the earliest action still armed; cancelled ones are dropped
/// when they reach the front, in one pass per wake-up.
///
/// Actions run one at a time on the timer's thread and must return quickly (the
/// hedges start calls, which do not block).
final class DeadlineTimer: @unchecked Sendable {
    // @unchecked: every field below `condition` is guarded by it.
    typealias Token = UInt64

    /// The coordinator's hedges share one timer (one thread per process).
    static let shared = DeadlineTimer(name: "shoal-hedge-timer")

    private struct Entry {
        let deadline: ContinuousClock.Instant
        let token: Token
    }

    private let condition = NSCondition()
    /// A min-heap on `deadline`; entries whose token left `actions` are cancelled.
    private var heap: [Entry] = []
    private var actions: [Token: @Sendable () -> Void] = [:]
    private var nextToken: Token = 1

    init(name: String) {
        let thread = Thread { self.run() }  // lives as long as the process
        thread.name = name
        thread.start()
    }

    /// Arms `action` to run `delay` from now; returns the token that cancels it.
    func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> Token {
        let deadline = ContinuousClock.now + delay
        condition.lock()
        defer { condition.unlock() }
        let token = nextToken
        nextToken += 1
        actions[token] = action
        push(Entry(deadline: deadline, token: token))
        // Only a new earliest deadline needs the sleeping thread to re-arm.
        if heap[0].token == token { condition.signal() }
        return token
    }

    /// Disarms `token`'s action if it has not started (no effect otherwise).
    func cancel(_ token: Token) {
        condition.lock()
        actions[token] = nil
        condition.unlock()
    }

    /// Actions armed and not cancelled.
    var armed: Int {
        condition.lock()
        defer { condition.unlock() }
        return actions.count
    }

    private func run() {
        condition.lock()
        while true {
            while let top = heap.first, actions[top.token] == nil { _ = pop() }
            guard let top = heap.first else {
                condition.wait()
                continue
            }
            let now = ContinuousClock.now
            guard top.deadline <= now else {
                _ = condition.wait(until: Date(timeIntervalSinceNow: (top.deadline - now) / .seconds(1)))
                continue
            }
            _ = pop()
            let action = actions.removeValue(forKey: top.token)
            condition.unlock()
            action?()
            condition.lock()
        }
    }

    // MARK: the heap

    private func push(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private func pop() -> Entry {
        let top = heap[0]
        let last = heap.removeLast()
        guard !heap.isEmpty else { return top }
        heap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { break }
            let right = left + 1
            let child = right < heap.count && heap[right].deadline < heap[left].deadline ? right : left
            guard heap[child].deadline < heap[parent].deadline else { break }
            heap.swapAt(child, parent)
            parent = child
        }
        return top
    }
}
