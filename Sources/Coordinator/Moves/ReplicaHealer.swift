import Logging
import Synchronization
import VectorCore

/// Keeps every shard at its replication factor in sync, without an operator: while
/// this coordinator leads, it looks every `interval` for a stale replica whose node
/// answers again (a catch-up task), a replica whose node has been down for longer than
/// `lossTimeout` (a replicate task that replaces it on another node), and a shard with
/// fewer replicas than its factor (a replicate task), and hands them to the move
/// scheduler (`ClusterState.replicaRepairs` decides; `MoveExecution` carries out).
/// A running repair whose target's node goes down is cancelled (it rolls back), and
/// the in-sync replicas of a down node are marked stale (where another stays in sync).
public struct ReplicaHealer: Sendable {
    let cluster: ClusterController
    let scheduler: MoveScheduler
    let lossTimeout: Duration
    private let backoff = RepairBackoff()

    public init(cluster: ClusterController, scheduler: MoveScheduler, lossTimeout: Duration) {
        self.cluster = cluster
        self.scheduler = scheduler
        self.lossTimeout = lossTimeout
    }

    /// One look; returns the tasks it queued.
    @discardableResult
    func pass() async -> [MoveRecord] {
        let state = cluster.snapshot
        guard cluster.leadership.currentTerm != nil, state.needsRecover == nil else { return [] }
        var up = Set<String>()
        var lost = Set<String>()
        let now = ContinuousClock.now
        for node in state.nodes.values where node.state != .removed {
            switch cluster.health.state(of: node.id) {
            case .up: up.insert(node.id)
            case .suspect: break
            case .down: if let since = cluster.health.downSince(node.id), now - since >= lossTimeout { lost.insert(node.id) }
            }
        }
        // Replicas on a node the health checks call down leave the in-sync set now, not
        // at the next write they miss: `shoal admin shards` shows them stale, and the
        // node's return starts their catch-up (a quick one if nothing was missed).
        let down = state.nodes.values.filter { $0.state != .removed && cluster.health.state(of: $0.id) == .down }.map(\.id)
        if !down.isEmpty {
            do {
                try await cluster.commit { s throws(ShoalError) in
                    for node in down { s.markStaleWhereSafe(on: node, nowMs: nowMs()) }
                }
            } catch {
                cluster.logger.warning("could not mark the replicas of a down node stale", metadata: ["error": "\(error)"])
            }
        }
        // A catch-up or replicate task whose target's node went down would record a miss
        // for every write until its copy gave up: it rolls back now (a catch-up's target
        // is stale again) and is planned anew once the node is back.
        for task in state.moves.values where task.state == .running && task.taskKind != .move && task.phase < .switchReads
            && task.cancelRequestedMs == nil && cluster.health.state(of: task.to) == .down {
            do {
                try await cluster.commit { s throws(ShoalError) in try s.requestCancel(task.id, nowMs: nowMs()) }
                cluster.logger.warning("replica repair stopped: its target's node is down", metadata: ["task": "\(task.id)", "node": "\(task.to)"])
            } catch {
                cluster.logger.warning("could not stop a replica repair", metadata: ["task": "\(task.id)", "error": "\(error)"])
            }
        }
        // A repair that failed is not planned again for the same target at once.
        for task in state.moves.values where task.taskKind != .move && (task.state == .failed || task.state == .rolledBack) {
            backoff.note(failed: task)
        }
        var queued: [MoveRecord] = []
        for repair in state.replicaRepairs(up: up, lost: lost) where !backoff.waiting(repair) {
            do {
                queued += try await scheduler.submit([repair], validateNow: true)
                cluster.logger.info("replica repair queued", metadata: [
                    "kind": "\(repair.kind.rawValue)", "collection": "\(repair.collection)", "shard": "\(repair.shard)",
                    "from": "\(repair.from)", "to": "\(repair.to)", "replaces": "\(repair.replaces ?? "-")"])
            } catch {
                cluster.logger.warning("replica repair not queued", metadata: [
                    "collection": "\(repair.collection)", "shard": "\(repair.shard)", "error": "\(error)"])
            }
        }
        return queued
    }

    /// Looks every `interval` until the task is cancelled.
    public func run(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            await pass()
        }
    }
}

/// The repairs that failed lately: the same repair (shard, kind, target) waits
/// `pause` after a failure was first seen, so a repair that keeps failing is not
/// retried every second (each attempt is a task record, and records are kept 100 deep).
final class RepairBackoff: Sendable {
    static let pause: Duration = .seconds(10)
    private struct State {
        var seen = Set<String>()
        var until: [String: ContinuousClock.Instant] = [:]
    }
    private let state = Mutex(State())

    func note(failed task: MoveRecord) {
        let key = Self.key(task.collection, task.shard, task.taskKind, task.to)
        state.withLock { s in
            guard s.seen.insert(task.id).inserted else { return }
            s.until[key] = .now + Self.pause
        }
    }

    func waiting(_ repair: PlannedMove) -> Bool {
        let key = Self.key(repair.collection, repair.shard, repair.kind, repair.to)
        return state.withLock { s in
            s.until = s.until.filter { $0.value > .now }
            return s.until[key] != nil
        }
    }

    private static func key(_ collection: String, _ shard: UInt32, _ kind: MoveKind, _ to: String) -> String {
        "\(collection)/\(shard)/\(kind.rawValue)/\(to)"
    }
}
