import Etcd
import Synchronization
import Testing
import VectorCore

/// Watches against a real etcd.
@Suite struct WatchTests {
    @Test func deliversPutsAndDeletesInOrderByRevision() async throws {
        try await withEtcd { _, client in
            let start = try await client.put("/other", [0])
            let watch = Collector(client.watch(prefix: "/w/", after: start))
            let a = try await client.put("/w/a", [1])
            let b = try await client.put("/w/b", [2])
            try await client.put("/else", [9])
            let deleted = try await client.delete("/w/a")
            let txn = try await client.txn(if: [], then: [.put("/w/c", [3]), .delete("/w/b")])
            try await eventually("four batches") { watch.batches.count >= 4 }
            let batches = watch.batches
            #expect(batches.map(\.revision) == [a, b, deleted, txn.revision])
            #expect(batches.map { $0.events.map(\.kind) } == [[.put], [.put], [.delete], [.put, .delete]])
            #expect(batches.map { $0.events.map(\.kv.key) } == [["/w/a"], ["/w/b"], ["/w/a"], ["/w/c", "/w/b"]])
            #expect(batches[0].events[0].kv.value == [1])
            #expect(batches[3].events[0].kv.createRevision == txn.revision)
            watch.stop()
            #expect(watch.error == nil)
        }
    }

    @Test func replaysHistoryAfterAnOldRevision() async throws {
        try await withEtcd { _, client in
            let first = try await client.put("/h/1", [1])
            try await client.put("/h/2", [2])
            try await client.put("/h/3", [3])
            let watch = Collector(client.watch(prefix: "/h/", after: first))
            try await eventually("the two later puts") { watch.batches.count >= 2 }
            #expect(watch.batches.map { $0.events[0].kv.key } == ["/h/2", "/h/3"])
            watch.stop()
        }
    }

    @Test func resumesAfterEtcdRestartsWithoutRepeatsOrGaps() async throws {
        try await withEtcd { etcd, client in
            let start = try await client.put("/r", [0])
            let watch = Collector(client.watch(prefix: "/r/", after: start))
            try await client.put("/r/1", [1])
            try await eventually("the first put") { watch.batches.count == 1 }
            try await etcd.restart()
            try await client.put("/r/2", [2])
            try await client.put("/r/3", [3])
            try await eventually(timeout: .seconds(15), "the puts after the restart") { watch.batches.count >= 3 }
            #expect(watch.batches.map { $0.events[0].kv.key } == ["/r/1", "/r/2", "/r/3"])
            #expect(watch.error == nil)
            watch.stop()
        }
    }

    @Test func aCompactedRevisionFinishesTheWatch() async throws {
        try await withEtcd { etcd, client in
            let first = try await client.put("/c/1", [1])
            try await client.put("/c/1", [2])
            let last = try await client.put("/c/1", [3])
            try etcd.compact(revision: last)
            let watch = Collector(client.watch(prefix: "/c/", after: first))
            try await eventually("the watch finished") { watch.finished }
            #expect(watch.batches.isEmpty)
            #expect(watch.error as? EtcdError == .compacted(last))
        }
    }

    @Test func cancellingTheConsumerStopsTheWatch() async throws {
        try await withEtcd { _, client in
            let watch = Collector(client.watch(prefix: "/x/", after: 0))
            try await client.put("/x/1", [1])
            try await eventually("the put") { watch.batches.count == 1 }
            watch.stop()
            try await eventually("the consumer finished") { watch.finished }
            // withEtcd then checks the stream and channel are released.
        }
    }
}

/// Consumes a watch in a task of its own, keeping what it delivered.
final class Collector: Sendable {
    private struct State {
        var batches: [EtcdWatchBatch] = []
        var error: (any Error)?
        var finished = false
    }

    private let state = Mutex(State())
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(_ stream: AsyncThrowingStream<EtcdWatchBatch, any Error>) {
        // Holds `self` until the watch ends (a test stops it, or it finishes).
        let consumer = Task {
            do {
                for try await batch in stream { self.state.withLock { $0.batches.append(batch) } }
            } catch {
                self.state.withLock { $0.error = error }
            }
            self.state.withLock { $0.finished = true }
        }
        task.withLock { $0 = consumer }
    }

    var batches: [EtcdWatchBatch] { state.withLock { $0.batches } }
    var error: (any Error)? { state.withLock { $0.error } }
    var finished: Bool { state.withLock { $0.finished } }

    func stop() { task.withLock { $0?.cancel() } }
}
