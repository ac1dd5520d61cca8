import EtcdProto
import GRPCBridge
import VectorCore

typealias WatchStream = EtcdStream<Etcdserverpb_WatchRequest, Etcdserverpb_WatchResponse>

extension EtcdClient {
    /// Every change under `prefix` after `revision` (events of one revision together), resuming after stream failures
    /// from the last delivered revision + 1; finishes throwing EtcdError.compacted if that revision was compacted.
    /// Cancelling the consuming task (or dropping the stream) stops the watch.
    ///
    /// One Watch stream at a time; a stream that fails (etcd restarted, unreachable,
    /// the member left) is reopened, on the next member if this one is unreachable,
    /// after 0.1–1 s. It finishes throwing only for compaction, a watch etcd cancels
    /// (`EtcdError.watchCanceled`), or a status no retry can fix (such as
    /// PERMISSION_DENIED). A paused member that keeps its connection open is not
    /// detected: the stream waits for it.
    public func watch(prefix: String, after revision: Int64) -> AsyncThrowingStream<EtcdWatchBatch, any Error> {
        let members = self.members
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await Self.runWatch(members: members, range: .prefix(prefix), from: revision + 1) {
                        continuation.yield($0)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Delivers batches from revision `next` on until cancelled (returns) or a final failure (throws).
    private static func runWatch(
        members: EtcdEndpoints, range: EtcdKeyRange, from first: Int64,
        deliver: (EtcdWatchBatch) -> Void
    ) async throws {
        var next = first
        var backoff = Duration.milliseconds(100)
        while !Task.isCancelled {
            let (index, channel) = members.current()
            do {
                let stream = try WatchStream(channel, method: EtcdRPC.watch)
                try await stream.send(.create(range, from: next))
                while true {
                    let response = try await stream.receive()
                    if response.compactRevision != 0 { throw EtcdError.compacted(response.compactRevision) }
                    if response.canceled { throw EtcdError.watchCanceled(response.cancelReason) }
                    backoff = .milliseconds(100)
                    for batch in EtcdWatchBatch.batches(response.events) {
                        deliver(batch)
                        next = batch.revision + 1
                    }
                }
            } catch let error as ShoalError where !Task.isCancelled && Self.watchMayResume(error) {
                if EtcdEndpoints.isUnreachable(error) { members.failed(index) }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(1))
            } catch {
                if Task.isCancelled { return }
                if let error = error as? ShoalError {
                    throw ShoalError(error.code, "etcd watch at \(members.addresses[index]): \(error.message)")
                }
                throw error
            }
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

extension Etcdserverpb_WatchRequest {
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
