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
///   `observe(_:)` with the highest version its nodes report (and the version
///   ceiling kept in etcd, `WriteVersions`), and from then on issues larger ones
///   even if its wall clock is behind;
/// - every version it issues is `≡ issuer (mod issuers)`: coordinators with
///   distinct `issuer` numbers never issue the same version (the tie-break
///   between coordinators writing at once).
///
/// Thread-safe: the last issued version sits behind a `Mutex`.
public final class HybridLogicalClock: Sendable {
    /// Reads the wall clock in milliseconds since 1970.
    public typealias WallClock = @Sendable () -> UInt64

    private let wallClock: WallClock
    private let last: Mutex<UInt64>
    /// This clock's residue: every version it issues is ≡ `issuer` (mod `issuers`).
    public let issuer: UInt64

    /// Coordinator numbers the low bits of a version tell apart.
    public static let issuers: UInt64 = 64

    /// A clock on `wallClock` (the system's real-time clock by default),
    /// starting after `start`, issuing versions ≡ `issuer % issuers`.
    public init(start: HLCVersion = .zero, issuer: UInt64 = 0, wallClock: @escaping WallClock = HybridLogicalClock.systemMillis) {
        self.wallClock = wallClock
        self.last = Mutex(start.rawValue)
        self.issuer = issuer % Self.issuers
    }

    /// A new version, strictly greater than every version issued or observed.
    ///
    /// It is the first version of this issuer at or after `(now, 0)` when the
    /// wall clock is ahead of the last version; otherwise the next one after the
    /// last version, which carries into the physical
    /// part once the logical counter is full (borrowing a millisecond that
    /// the wall clock catches up with later).
    public func next() -> HLCVersion {
        let physical = HLCVersion(physicalMillis: min(wallClock(), HLCVersion.maxPhysicalMillis), logical: 0).rawValue
        return last.withLock { last in
            precondition(last < UInt64.max - Self.issuers, "hybrid logical clock exhausted")
            let candidate = max(physical, last + 1)
            last = candidate + (issuer + Self.issuers - candidate % Self.issuers) % Self.issuers
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
