import EtcdProto
import GRPCBridge
import Synchronization
import VectorCore

typealias KeepAliveStream = EtcdStream<Etcdserverpb_LeaseKeepAliveRequest, Etcdserverpb_LeaseKeepAliveResponse>

extension EtcdClient {
    /// One keepalive round trip; returns the remaining TTL; throws NOT_FOUND (ShoalError) if the lease is gone.
    public func keepAliveOnce(_ id: Int64) async throws -> Int64 {
        let timeout = members.callTimeout
        let ttl = try await members.withFailover(EtcdRPC.leaseKeepAlive, idempotent: true) { channel in
            let stream = try KeepAliveStream(channel, method: EtcdRPC.leaseKeepAlive, timeout: timeout)
            try await stream.send(.keepAlive(id))
            return try await stream.receive().ttl
        }
        guard ttl > 0 else { throw ShoalError(.notFound, "etcd lease \(id) is gone (expired or revoked)") }
        return ttl
    }

    /// Keeps the lease alive in the background over one LeaseKeepAlive stream (reopened after failures), a round every `interval`.
    /// `ttl` is the lease's TTL: with no successful round for that long the lease is
    /// taken as lost. Dropping the keeper stops it, like `stop()`.
    public func keepAlive(_ id: Int64, ttl: Duration, every interval: Duration) -> EtcdLeaseKeeper {
        EtcdLeaseKeeper(id: id, ttl: ttl, interval: interval, members: members)
    }
}

extension Etcdserverpb_LeaseKeepAliveRequest {
    static func keepAlive(_ id: Int64) -> Self {
        var request = Self()
        request.id = id
        return request
    }
}

/// Keeps one lease alive until it is lost or stopped (see `EtcdClient.keepAlive`).
public final class EtcdLeaseKeeper: Sendable {
    public let id: Int64
    private let state: KeeperState
    private let task: Task<Void, Never>

    init(id: Int64, ttl: Duration, interval: Duration, members: EtcdEndpoints) {
        let state = KeeperState(ttl: ttl)
        self.id = id
        self.state = state
        self.task = Task { await Self.run(id: id, interval: interval, members: members, state: state) }
    }

    deinit { stop() }

    /// False once the lease is known lost: etcd answered TTL 0 / NOT_FOUND, or no keepalive succeeded for `ttl` since the last good one.
    /// (Also false after `stop()`: nothing keeps it alive any more.)
    public var isAlive: Bool { state.isAlive }

    /// How long the lease lasts at least without another good round: `ttl` from the
    /// last good one, by the monotonic clock (which runs on while the process is
    /// paused); zero once lost or stopped.
    public var timeLeft: Duration { state.isAlive ? max(.zero, state.timeLeft()) : .zero }

    /// Returns when lost (or stopped), or when the waiting task is cancelled.
    public func waitUntilLost() async { await state.waitUntilOver() }

    /// Stops keeping it alive (does not revoke).
    public func stop() {
        task.cancel()
        state.end()
    }

    /// Rounds over one stream; a failed stream is reopened (on the next member if
    /// it was unreachable) until the lease is lost or the task is cancelled.
    private static func run(id: Int64, interval: Duration, members: EtcdEndpoints, state: KeeperState) async {
        while !Task.isCancelled, state.isAlive {
            let (index, channel) = members.current()
            do {
                let stream = try KeepAliveStream(channel, method: EtcdRPC.leaseKeepAlive, metadata: EtcdRPC.requireLeader)
                while !Task.isCancelled {
                    // The lease runs from when etcd renewed it, at most as late as this send:
                    // a reply read late (a slow network, or a process paused in between)
                    // must not count as a renewal at the time it was read.
                    let sent = ContinuousClock.now
                    try await stream.send(.keepAlive(id))
                    let reply = try await stream.receive(within: min(members.callTimeout, state.timeLeft()))
                    guard reply.ttl > 0 else { return state.end() }
                    state.renewed(at: sent)
                    try await Task.sleep(for: min(interval, state.timeLeft()))
                }
            } catch {
                if Task.isCancelled { return }
                if let error = error as? ShoalError, EtcdEndpoints.isUnreachable(error) { members.failed(index) }
                if state.timeLeft() <= .zero { return state.end() }
                try? await Task.sleep(for: min(interval, .milliseconds(200), state.timeLeft()))
            }
        }
        state.end()  // lapsed (or stopped)
    }
}

/// The keeper's state, shared with its background task.
private final class KeeperState: Sendable {
    private struct Inner {
        var lastGood = ContinuousClock.now
        var over = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    let ttl: Duration
    private let inner = Mutex(Inner())

    init(ttl: Duration) { self.ttl = ttl }

    var isAlive: Bool { inner.withLock { !$0.over && ContinuousClock.now - $0.lastGood < ttl } }

    /// How long until the lease counts as lost without another good round.
    func timeLeft() -> Duration { inner.withLock { ttl - (ContinuousClock.now - $0.lastGood) } }

    func renewed(at instant: ContinuousClock.Instant) { inner.withLock { $0.lastGood = max($0.lastGood, instant) } }

    /// Lost or stopped: wakes every waiter. Idempotent.
    func end() {
        let waiters = inner.withLock { inner in
            inner.over = true
            defer { inner.waiters = [:] }
            return Array(inner.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once `end` ran (the background task ends the state when the lease
    /// lapses), or when the waiting task is cancelled.
    func waitUntilOver() async {
        let id = inner.withLock { inner in
            inner.nextWaiter += 1
            return inner.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = inner.withLock { inner in
                    if inner.over || Task.isCancelled { return true }
                    inner.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            inner.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
