import GRPCBridge
import VectorCore

/// Reading one shard from one of its in-sync replicas, hedged and retried on the others.
extension VectorStoreService {
    /// Asks one of a shard's `replicas` (`CollectionRoute.readers[shard]`) and returns the
    /// first answer, all within the caller's `deadline`:
    /// - the order: replicas whose node is not down first, then the fewest requests
    ///   outstanding, ties in turn (`NodeHealthMonitor.preferred`);
    /// - hedging: with no answer after the replica's hedging delay (its node's recent
    ///   p95, `NodeHealthMonitor.hedgeDelay`), the next replica is asked as well; the
    ///   first success wins and the other calls are cancelled;
    /// - a replica that cannot answer (UNAVAILABLE, DEADLINE_EXCEEDED, FAILED_PRECONDITION:
    ///   set aside or not held, ABORTED: fenced past this placement) has the next asked at
    ///   once; any other error (INVALID_ARGUMENT, NOT_FOUND, …) is the answer;
    /// - when none answers: ABORTED if one was (the placement is stale:
    ///   `ClusterController.withCurrentPlacement` refreshes it), else DEADLINE_EXCEEDED if
    ///   the deadline passed, else UNAVAILABLE naming the shard and each replica's error.
    /// Outcomes and latencies are reported to the health monitor.
    func askReplica<R: Sendable>(
        _ replicas: [ShardTarget], deadline: ContinuousClock.Instant?,
        _ body: @escaping @Sendable (ShardTarget, any UnaryTransport, Duration) async throws -> R
    ) async throws(ShoalError) -> R {
        let health = cluster.health
        let nodes = cluster.nodes
        let order = health.preferred(replicas) { $0.nodeID }
        let outcome = await withTaskGroup(of: ReplicaEvent<R>.self) { group -> Result<R, ShoalError> in
            var asked = 0
            var running = 0
            var failures: [ShoalError] = []
            func askNext() {
                let target = order[asked]
                let attempt = asked
                asked += 1
                running += 1
                group.addTask { .answer(await Self.ask(target, nodes: nodes, health: health, deadline: deadline, body)) }
                guard asked < order.count else { return }
                let delay = health.hedgeDelay(for: target.nodeID)
                group.addTask {
                    try? await Task.sleep(for: delay)
                    return .hedge(after: attempt)
                }
            }
            askNext()
            while let event = await group.next() {
                switch event {
                case .hedge(let attempt):
                    // Only the newest replica's timer hedges: an earlier one's was overtaken.
                    if attempt == asked - 1, asked < order.count, !Task.isCancelled { askNext() }
                case .answer(.success(let reply)):
                    group.cancelAll()
                    return .success(reply)
                case .answer(.failure(let error)):
                    running -= 1
                    guard Self.replicaCannotAnswer(error) else {
                        group.cancelAll()
                        return .failure(error)
                    }
                    failures.append(error)
                    if asked < order.count {
                        askNext()
                    } else if running == 0 {
                        group.cancelAll()
                        return .failure(Self.noReplicaAnswered(order[0], failures, deadline: deadline))
                    }
                }
            }
            return .failure(Self.noReplicaAnswered(order[0], failures, deadline: deadline))
        }
        return try outcome.get()
    }

    /// `askReplica` for every shard at once (`readers`: each shard's replicas): each
    /// shard's outcome, in shard order.
    func askEveryShard<R: Sendable>(
        _ readers: [[ShardTarget]], deadline: ContinuousClock.Instant?,
        _ body: @escaping @Sendable (ShardTarget, any UnaryTransport, Duration) async throws -> R
    ) async -> [ShardOutcome<R>] {
        await withTaskGroup(of: ShardOutcome<R>.self) { group in
            for replicas in readers {
                group.addTask {
                    do throws(ShoalError) {
                        return ShardOutcome(shard: replicas[0].shard, result: .success(try await self.askReplica(replicas, deadline: deadline, body)))
                    } catch {
                        return ShardOutcome(shard: replicas[0].shard, result: .failure(error))
                    }
                }
            }
            var all: [ShardOutcome<R>] = []
            for await outcome in group { all.append(outcome) }
            return all.sorted { $0.shard < $1.shard }
        }
    }

    /// The answers of `outcomes` and the shards missing from them. A shard may be
    /// missing only with `allowPartial` and only for want of a replica that answers
    /// (UNAVAILABLE, DEADLINE_EXCEEDED); any other failure is thrown (the lowest shard's).
    static func answers<R>(_ outcomes: [ShardOutcome<R>], allowPartial: Bool) throws(ShoalError) -> (answers: [R], missing: [UInt32]) {
        var answers: [R] = []
        var missing: [UInt32] = []
        for outcome in outcomes {
            switch outcome.result {
            case .success(let reply): answers.append(reply)
            case .failure(let error):
                guard allowPartial, error.code == .unavailable || error.code == .deadlineExceeded else { throw error }
                missing.append(outcome.shard)
            }
        }
        return (answers, missing)
    }

    /// One call to one replica, counted as outstanding on its node and reported to `health`.
    private static func ask<R: Sendable>(
        _ target: ShardTarget, nodes: NodeDirectory, health: NodeHealthMonitor, deadline: ContinuousClock.Instant?,
        _ body: @Sendable (ShardTarget, any UnaryTransport, Duration) async throws -> R
    ) async -> Result<R, ShoalError> {
        health.begin(target.nodeID)
        defer { health.end(target.nodeID) }
        let started = ContinuousClock.now
        do throws(ShoalError) {
            let reply = try await call(target, nodes: nodes, deadline: deadline) { try await body(target, $0, $1) }
            health.reportSuccess(target.nodeID, latency: .now - started)
            return .success(reply)
        } catch {
            // A call cancelled because another replica answered says nothing about this node.
            if !Task.isCancelled, error.code == .unavailable || error.code == .deadlineExceeded { health.reportFailure(target.nodeID) }
            return .failure(error)
        }
    }

    /// Whether `error` says this replica cannot answer now, so another should be asked.
    static func replicaCannotAnswer(_ error: ShoalError) -> Bool {
        switch error.code {
        case .unavailable, .deadlineExceeded, .failedPrecondition, .aborted: true
        default: false
        }
    }

    /// The error of a shard none of whose replicas answered (see `askReplica`).
    static func noReplicaAnswered(_ target: ShardTarget, _ failures: [ShoalError], deadline: ContinuousClock.Instant?) -> ShoalError {
        if let fenced = failures.first(where: { $0.code == .aborted }) { return fenced }
        let reasons = failures.map(\.message).joined(separator: "; ")
        let name = "shard \(target.shard) of \(target.collection)"
        if let deadline, ContinuousClock.now >= deadline {
            return ShoalError(.deadlineExceeded, "\(name): no replica answered in time: \(reasons)")
        }
        return ShoalError(.unavailable, "\(name): no replica answered: \(reasons)")
    }
}

/// One shard's outcome of a read.
struct ShardOutcome<R: Sendable>: Sendable {
    let shard: UInt32
    let result: Result<R, ShoalError>
}

/// What `askReplica`'s task group hears: a replica's outcome, or that a replica's
/// hedging delay passed without one.
enum ReplicaEvent<R: Sendable>: Sendable {
    case answer(Result<R, ShoalError>)
    case hedge(after: Int)
}
