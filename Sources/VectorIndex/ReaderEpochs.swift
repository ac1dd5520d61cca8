import CVectorKernels
import Synchronization

/// Grace periods for memory that searches may still read: a search registers in the current epoch;
/// `synchronize()` advances the epoch and waits until every search registered in the old one has left.
/// After it returns, no search can hold an id it could not reach at the time of the call.
final class ReaderEpochs: Sendable {
    private let epoch = Atomic<UInt64>(0)
    private let even = Atomic<Int>(0)
    private let odd = Atomic<Int>(0)
    private let writers = Lock()

    /// Registers a reader; pass the returned epoch to `leave`.
    @inline(__always)
    func enter() -> UInt64 {
        while true {
            let e = epoch.load(ordering: .sequentiallyConsistent)
            if e & 1 == 0 { even.add(1, ordering: .sequentiallyConsistent) } else { odd.add(1, ordering: .sequentiallyConsistent) }
            if epoch.load(ordering: .sequentiallyConsistent) == e { return e }
            leave(e)
        }
    }

    @inline(__always)
    func leave(_ e: UInt64) {
        if e & 1 == 0 { even.subtract(1, ordering: .sequentiallyConsistent) } else { odd.subtract(1, ordering: .sequentiallyConsistent) }
    }

    /// Waits until every reader that entered before this call has left. Must not be called while registered.
    func synchronize() {
        writers.withLock {
            let e = epoch.add(1, ordering: .sequentiallyConsistent).oldValue
            if e & 1 == 0 {
                while even.load(ordering: .sequentiallyConsistent) != 0 { shoal_yield() }
            } else {
                while odd.load(ordering: .sequentiallyConsistent) != 0 { shoal_yield() }
            }
        }
    }

    @inline(__always)
    func reading<R>(_ body: () throws -> R) rethrows -> R {
        let e = enter()
        defer { leave(e) }
        return try body()
    }
}
