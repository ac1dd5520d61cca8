import CVectorKernels

/// A mutual-exclusion lock over a pthread mutex. Used instead of `Synchronization.Mutex`, whose futex-based
/// implementation the thread sanitizer cannot see (it reports the data it protects as racing).
final class Lock: @unchecked Sendable {
    private let raw: OpaquePointer

    init() { raw = shoal_mutex_create()! }
    deinit { shoal_mutex_destroy(raw) }

    @inline(__always)
    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        shoal_mutex_lock(raw)
        defer { shoal_mutex_unlock(raw) }
        return try body()
    }
}
