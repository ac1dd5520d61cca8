import Coordinator
import Synchronization
import Testing

/// A ceiling in memory, shared by several coordinators' `WriteVersions`.
private final class MemoryCeiling: VersionCeiling {
    private let value = Mutex<UInt64>(0)
    func current() async throws -> UInt64 { value.withLock { $0 } }
    func raise(to wanted: UInt64) async throws -> UInt64 { value.withLock { $0 = max($0, wanted); return $0 } }
}

@Suite struct WriteVersionsTests {
    /// A coordinator whose clock is a minute behind another's issues versions within
    /// two windows of the other's, once a window has passed: writes of one moment carry
    /// versions of about that moment, whoever issued them (what a catch-up relies on).
    @Test func aCoordinatorWhoseClockIsBehindKeepsUpWithTheCeiling() async throws {
        let ceiling = MemoryCeiling()
        let now: @Sendable () -> UInt64 = { UInt64(ContinuousClock.now.nanosecondsSinceOrigin / 1_000_000) }
        let ahead = WriteVersions(clock: HybridLogicalClock(issuer: 1, wallClock: { 10_000_000 + now() }), ceiling: ceiling, windowMillis: 50)
        let behind = WriteVersions(clock: HybridLogicalClock(issuer: 2, wallClock: { 10_000_000 - 60_000 + now() }), ceiling: ceiling, windowMillis: 50)
        try await ahead.start()
        try await behind.start()
        let window = HLCVersion(physicalMillis: 50, logical: 0).rawValue
        _ = try await ahead.next()
        _ = try await behind.next()
        try await Task.sleep(for: .seconds(1))  // the ahead clock moves on; a frozen one would trail by 1 s
        // Polled, not timed: a busy machine may delay the background read of the ceiling.
        var lag = UInt64.max
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let b = try await behind.next()
            let a = try await ahead.next()
            lag = a > b ? a - b : 0
            if lag <= 3 * window { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(lag <= 3 * window, "the behind coordinator trails by \(lag / (window / 50)) ms")
    }
}

extension ContinuousClock.Instant {
    fileprivate var nanosecondsSinceOrigin: Int64 {
        let d = self - Self.origin
        return d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }
    private static let origin = ContinuousClock.now
}
