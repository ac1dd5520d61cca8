import Foundation
import Synchronization

/// A thread of its own that runs `body` every `interval` until `stop()`, which
/// wakes it and waits for a pass under way to end. The node's background chores
/// (tombstone collection, the storage watch) run on one each.
final class PeriodicThread: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(name: String, interval: Duration, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in  // held until the thread ends, at `stop()`
            while true {
                _ = wake.wait(timeout: .now() + interval.seconds)
                if stopping.load(ordering: .relaxed) { break }
                body()
            }
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Ends the thread (waits for a pass under way). Call once.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        wake.signal()
        finished.wait()
    }
}
