import EtcdProto
import GRPCBridge
import Synchronization
import VectorCore

typealias WatchStream = EtcdStream<Etcdserverpb_WatchRequest, Etcdserverpb_WatchResponse>

extension EtcdClient {
    /// Every change under `prefix` after `revision` (events of one revision together), resuming after stream failures
    /// from the last delivered revision + 1; finishes throwing EtcdError.compacted if that revision was compacted.
    /// Cancelling the consuming task (or dropping the stream) stops the watch.
    ///
    /// One Watch stream at a time; a stream that fails (etcd restarted, unreachable,
    /// the member left) is reopened, on the next member if this one is unreachable,
    /// after 0.1–1 s. A member that loses its leader ends the stream (etcd's
    /// "hasleader" requirement), and one that answers nothing, not even a progress
    /// request, for 3 × callTimeout is given up. It finishes throwing only for
    /// compaction, a watch etcd cancels (`EtcdError.watchCanceled`), or a status no
    /// retry can fix (such as PERMISSION_DENIED).
    public func watch(prefix: String, after revision: Int64) -> AsyncThrowingStream<EtcdWatchBatch, any Error> {
        let members = self.members
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await Self.runWatch(members: members, range: .prefix(prefix), from: revision + 1) { batch in
                        continuation.yield(batch)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Delivers batches from revision `first` on until cancelled (returns) or a final failure (throws).
    private static func runWatch(
        members: EtcdEndpoints, range: EtcdKeyRange, from first: Int64,
        deliver: @escaping @Sendable (EtcdWatchBatch) -> Void
    ) async throws {
        let progress = WatchProgress(next: first)
        var backoff = Duration.milliseconds(50)
        while !Task.isCancelled {
            let (index, channel) = members.current()
            do {
                try await watchOnce(channel, range: range, progress: progress, timeout: members.callTimeout, deliver: deliver)
            } catch let error as ShoalError where !Task.isCancelled && Self.watchMayResume(error) {
                if EtcdEndpoints.isUnreachable(error) { members.failed(index) }
                // A stream etcd answered on was working: try again soon; otherwise back off.
                backoff = progress.takeAnswered() ? .milliseconds(100) : min(backoff * 2, .seconds(1))
                try? await Task.sleep(for: backoff)
            } catch {
                if Task.isCancelled { return }
                if let error = error as? ShoalError {
                    throw ShoalError(error.code, "etcd watch at \(members.addresses[index]): \(error.message)")
                }
                throw error
            }
        }
    }

    /// One Watch stream, until it fails. Beside the reader, a prober asks a stream that
    /// has been quiet for 2 × `timeout` for progress (etcd answers with a bare header)
    /// and gives the stream up, UNAVAILABLE, after `timeout` more without a word: a
    /// frozen member keeps its connection open but answers nothing.
    private static func watchOnce(
        _ channel: Channel, range: EtcdKeyRange, progress: WatchProgress, timeout: Duration,
        deliver: @escaping @Sendable (EtcdWatchBatch) -> Void
    ) async throws {
        let stream = try WatchStream(channel, method: EtcdRPC.watch, metadata: EtcdRPC.requireLeader)
        try await stream.send(.create(range, from: progress.next))
        progress.heard(answer: false)  // the silence counts from here
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while true {
                    let response = try await stream.receive()
                    progress.heard()
                    if response.compactRevision != 0 { throw EtcdError.compacted(response.compactRevision) }
                    if response.canceled { throw EtcdError.watchCanceled(response.cancelReason) }
                    for batch in EtcdWatchBatch.batches(response.events) {
                        deliver(batch)
                        progress.delivered(batch.revision)
                    }
                }
            }
            group.addTask {
                let quiet = timeout * 2
                while true {
                    try await Task.sleep(for: timeout)
                    let silence = progress.silence
                    if silence >= quiet + timeout {
                        throw ShoalError(.unavailable, "no answer on the watch stream for \(silence)")
                    }
                    if silence >= quiet { try await stream.send(.progress) }
                }
            }
            _ = try await group.next()  // both children only end by throwing
        }
    }

    /// Statuses after which reopening the watch can help.
    private static func watchMayResume(_ error: ShoalError) -> Bool {
        switch error.code {
        case .unavailable, .deadlineExceeded, .cancelled, .unknown, .internal, .aborted, .resourceExhausted: true
        default: false
        }
    }
}

/// Where a watch has got to, shared by its reader and its prober.
private final class WatchProgress: Sendable {
    private struct State {
        var next: Int64
        var lastHeard = ContinuousClock.now
        var answered = false  // etcd answered on the current stream
    }

    private let state: Mutex<State>

    init(next: Int64) { state = Mutex(State(next: next)) }

    /// The first revision not yet delivered.
    var next: Int64 { state.withLock { $0.next } }
    var silence: Duration { state.withLock { ContinuousClock.now - $0.lastHeard } }
    func heard(answer: Bool = true) {
        state.withLock { state in
            state.lastHeard = ContinuousClock.now
            if answer { state.answered = true }
        }
    }

    /// Whether etcd answered since the last call.
    func takeAnswered() -> Bool {
        state.withLock { state in
            defer { state.answered = false }
            return state.answered
        }
    }
    func delivered(_ revision: Int64) { state.withLock { $0.next = revision + 1 } }
}

extension Etcdserverpb_WatchRequest {
    static let progress: Self = {
        var request = Self()
        request.progressRequest = Etcdserverpb_WatchProgressRequest()
        return request
    }()

    static func create(_ range: EtcdKeyRange, from revision: Int64) -> Self {
        var request = Self()
        request.createRequest.key = range.key
        request.createRequest.rangeEnd = range.rangeEnd
        request.createRequest.startRevision = revision
        return request
    }
}

extension EtcdWatchBatch {
    /// Groups events by revision, keeping etcd's order.
    static func batches(_ events: [Mvccpb_Event]) -> [EtcdWatchBatch] {
        var batches: [EtcdWatchBatch] = []
        for event in events.map(EtcdWatchEvent.init) {
            if batches.last?.revision == event.kv.modRevision {
                batches[batches.count - 1].events.append(event)
            } else {
                batches.append(EtcdWatchBatch(revision: event.kv.modRevision, events: [event]))
            }
        }
        return batches
    }
}
