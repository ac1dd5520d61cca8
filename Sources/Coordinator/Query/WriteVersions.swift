import Synchronization

/// A version ceiling kept in the metadata store: no coordinator issues a write
/// version above it, and it only grows (raised ahead of use, the way TiDB's
/// timestamp oracle persists a high-water mark before it hands out timestamps).
public protocol VersionCeiling: Sendable {
    /// The ceiling as stored now (0 if never set).
    func current() async throws -> UInt64
    /// Raises the stored ceiling to at least `wanted` (never lowers it); returns the
    /// ceiling as stored afterwards.
    func raise(to wanted: UInt64) async throws -> UInt64
}

/// The versions a coordinator gives its writes: its hybrid logical clock, kept
/// below a ceiling it reserves in the metadata store before use.
///
/// Contract:
/// - a version is returned only once the stored ceiling is above it, so a
///   coordinator that starts (or restarts, with a clock that stepped back) and
///   begins above the stored ceiling issues versions above every version any
///   coordinator issued before;
/// - the ceiling is reserved `window` ahead of the clock, so reserving costs one
///   store write per window, not one per write; a ceiling that cannot be raised
///   (etcd unreachable) makes `next()` throw UNAVAILABLE once the reserve is used;
/// - without a ceiling (`shoal serve`, one process) versions come from the clock
///   alone (it observes the node's versions at start).
public final class WriteVersions: Sendable {
    public let clock: HybridLogicalClock
    private let ceiling: (any VersionCeiling)?
    private let window: UInt64
    /// The ceiling as last stored (a raw version), 0 before `start`.
    private let reserved = Mutex<UInt64>(0)

    public init(clock: HybridLogicalClock, ceiling: (any VersionCeiling)? = nil, windowMillis: UInt64 = 1_000) {
        self.clock = clock
        self.ceiling = ceiling
        self.window = windowMillis << UInt64(HLCVersion.logicalBits)
        self.windowDuration = .milliseconds(Int64(windowMillis))
    }

    /// `window` as time: the stored ceiling is read again at least this often while
    /// writes are issued (`keepUp`), whether or not this coordinator needs a higher one.
    private let windowDuration: Duration
    private let lastRaise = Mutex<ContinuousClock.Instant?>(nil)

    /// Moves the clock past the stored ceiling: the first version issued is above
    /// every version issued before, by anyone.
    public func start() async throws {
        guard let ceiling else { return }
        let stored = try await ceiling.current()
        clock.observe(HLCVersion(rawValue: stored))
        reserved.withLock { $0 = max($0, stored) }
    }

    /// A new write version (see the contract).
    public func next() async throws -> UInt64 {
        let version = clock.next().rawValue
        guard let ceiling else { return version }
        let covered = reserved.withLock { $0 }
        if version < covered {
            // Ahead of need, and at least once a window: a coordinator whose clock is
            // behind never comes near the ceiling others raise, and must still keep up.
            let due = lastRaise.withLock { last in last.map { ContinuousClock.now - $0 >= windowDuration } ?? true }
            if covered - version < window / 2 || due { raiseInBackground(ceiling, from: version) }
            return version
        }
        let stored = try await ceiling.raise(to: version + window)
        keepUp(with: stored)
        return version
    }

    /// Records the stored ceiling, and moves the clock to within two windows of it: a
    /// coordinator whose clock is behind another's issues versions close to the other's,
    /// so writes of one moment carry versions of about that moment whoever issued them
    /// (a catch-up relies on it: `MoveExecution.catchUpMargin`).
    private func keepUp(with stored: UInt64) {
        lastRaise.withLock { $0 = .now }
        reserved.withLock { $0 = max($0, stored) }
        if stored > 2 * window { clock.observe(HLCVersion(rawValue: stored - 2 * window)) }
    }

    /// Raises the ceiling ahead of need, one raise at a time.
    private func raiseInBackground(_ ceiling: any VersionCeiling, from version: UInt64) {
        guard !raising.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let wanted = version + window
        Task { [self] in
            defer { raising.store(false, ordering: .releasing) }
            if let stored = try? await ceiling.raise(to: wanted) { keepUp(with: stored) }
        }
    }

    private let raising = Atomic<Bool>(false)
}
