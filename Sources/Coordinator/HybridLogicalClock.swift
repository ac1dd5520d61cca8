import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Issues write versions (`HLCVersion`) for a coordinator.
///
/// Contract:
/// - every `next()` returns a version strictly greater than every version
///   this clock returned before and every version passed to `observe(_:)`,
///   whichever thread calls it;
/// - versions follow the wall clock when it moves forward, and never go
///   backwards when it jumps back (the logical counter keeps counting from
///   the last version instead);
/// - nothing is persisted per write: a restarted coordinator calls
///   `observe(_:)` with the highest version its nodes report, and from then
///   on issues larger ones even if its wall clock is behind.
///
/// Thread-safe: the last issued version sits behind a `Mutex`.
public final class HybridLogicalClock: Sendable {
    /// Reads the wall clock in milliseconds since 1970.
    public typealias WallClock = @Sendable () -> UInt64

    private let wallClock: WallClock
    private let last: Mutex<UInt64>

    /// A clock on `wallClock` (the system's real-time clock by default),
    /// starting after `start`.
    public init(start: HLCVersion = .zero, wallClock: @escaping WallClock = HybridLogicalClock.systemMillis) {
        self.wallClock = wallClock
        self.last = Mutex(start.rawValue)
    }

    /// A new version, strictly greater than every version issued or observed.
    ///
    /// It is `(now, 0)` when the wall clock is ahead of the last version;
    /// otherwise the last version plus one, which carries into the physical
    /// part once the logical counter is full (borrowing a millisecond that
    /// the wall clock catches up with later).
    public func next() -> HLCVersion {
        let physical = HLCVersion(physicalMillis: min(wallClock(), HLCVersion.maxPhysicalMillis), logical: 0).rawValue
        return last.withLock { last in
            precondition(last < UInt64.max, "hybrid logical clock exhausted")
            last = max(physical, last + 1)
            return HLCVersion(rawValue: last)
        }
    }

    /// Moves the clock past `version` (one seen on a node or in a request):
    /// the next `next()` returns a larger version. Never moves it back.
    public func observe(_ version: HLCVersion) {
        last.withLock { last in last = max(last, version.rawValue) }
    }

    /// The last version issued or observed (`start` before any).
    public var current: HLCVersion {
        HLCVersion(rawValue: last.withLock { $0 })
    }

    /// Milliseconds since 1970 from the system's real-time clock.
    public static let systemMillis: WallClock = {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(max(0, ts.tv_sec)) * 1000 + UInt64(max(0, ts.tv_nsec)) / 1_000_000
    }
}
