import Logging
import VectorCore

/// Runs the moves recorded in the cluster state: resumes running ones after a
/// restart, starts pending ones in creation order (at most `maxConcurrent` at
/// once, never two of one shard), and cancels on request.
public actor MoveScheduler {
    let cluster: ClusterController
    let progress: MoveProgress
    let options: MoveOptions
    private let logger: Logger
    private var running: [String: Task<Void, Never>] = [:]
    /// Running moves whose execution stopped without finishing (past switching
    /// reads, where only finishing is correct): started again after this instant.
    private var retryAfter: [String: ContinuousClock.Instant] = [:]
    static let restartPause: Duration = .seconds(5)
    /// Catch-up and replicate tasks run at once (besides moves).
    static let concurrentRepairs = 3
    /// Moves started at once; set by the latest Rebalance that asked.
    private var maxConcurrent = 1

    public init(cluster: ClusterController, progress: MoveProgress, options: MoveOptions, logger: Logger) {
        self.cluster = cluster
        self.progress = progress
        self.options = options
        self.logger = logger
    }

    /// Queues moves (PENDING) and starts what may start. `validateNow`: see `ClusterState.addMove`.
    func submit(_ moves: [PlannedMove], validateNow: Bool, maxConcurrent: Int? = nil) async throws -> [MoveRecord] {
        if let maxConcurrent { self.maxConcurrent = max(1, maxConcurrent) }
        var ids: [String] = []
        let now = nowMs()
        try await cluster.commit { state throws(ShoalError) in
            var next = state
            ids = []
            for move in moves {
                ids.append(try next.addMove(collection: move.collection, shard: move.shard, from: move.from, to: move.to,
                                            points: move.points, nowMs: now, validateNow: validateNow, kind: move.kind, replaces: move.replaces))
            }
            state = next
        }
        await pump()
        let state = cluster.snapshot
        return ids.compactMap { state.moves[$0] }
    }

    /// Starts every running move not yet running in this process (after a restart,
    /// or on becoming the leader), then pending moves while there is room. Only
    /// while this coordinator leads. One pass at a time: a pump asked for during a
    /// pass runs again after it.
    public func pump() async {
        guard !pumping else { pumpAgain = true; return }
        pumping = true
        defer { pumping = false }
        repeat {
            pumpAgain = false
            await pumpOnce()
        } while pumpAgain
    }

    private var pumping = false
    private var pumpAgain = false

    private func pumpOnce() async {
        guard cluster.leadership.currentTerm != nil else { return }
        let state = cluster.snapshot
        if let why = state.needsRecover {
            if state.moves.values.contains(where: \.isActive) { logger.warning("moves wait for recover", metadata: ["reason": "\(why)"]) }
            return
        }
        let now = ContinuousClock.now
        for move in state.movesInOrder where move.state == .running && running[move.id] == nil {
            if let after = retryAfter[move.id], after > now { continue }
            launch(move.id)
        }
        for move in state.movesInOrder where move.state == .pending {
            // Moves run `maxConcurrent` at a time; tasks restoring the in-sync set have
            // their own room, so a long rebalance does not keep a stale replica stale.
            let repair = move.taskKind != .move
            let busy = running.keys.filter { (state.moves[$0]?.taskKind != .move) == repair }.count
            guard busy < (repair ? Self.concurrentRepairs : maxConcurrent) else { continue }
            let current = cluster.snapshot
            if current.moves.values.contains(where: {
                $0.state == .running && $0.collection == move.collection && $0.shard == move.shard
            }) { continue }
            do {
                try await cluster.commit { state throws(ShoalError) in try state.startMove(move.id, nowMs: nowMs()) }
                launch(move.id)
            } catch let error as ShoalError where error.code == .unavailable || cluster.leadership.currentTerm == nil {
                logger.warning("move not started now", metadata: ["move": "\(move.id)", "error": "\(error)"])
                return
            } catch {
                logger.warning("move cannot start", metadata: ["move": "\(move.id)", "error": "\(error)"])
                _ = try? await cluster.commit { state throws(ShoalError) in
                    try state.rollBackMove(move.id, as: .failed, error: "could not start: \(error)", nowMs: nowMs())
                }
            }
        }
    }

    /// Stops every move execution of this process (it no longer leads); the moves
    /// stay recorded where they are, for the next leader to resume.
    public func stopAll() async {
        let tasks = Array(running.values)
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    /// Cancels a pending move at once; asks a running one to roll back (it does so
    /// at its next page or retry) and waits up to `wait` for that.
    func cancel(_ id: String, wait: Duration = .seconds(10)) async throws -> MoveRecord {
        guard let move = cluster.snapshot.moves[id] else { throw ShoalError(.notFound, "no move \(id)") }
        switch move.state {
        case .pending:
            try await cluster.commit { state throws(ShoalError) in
                try state.rollBackMove(id, as: .rolledBack, error: "cancelled by the operator", nowMs: nowMs())
            }
            await pump()
        case .running:
            // Recorded in the state: the move can no longer switch reads, and a
            // restarted coordinator rolls it back too.
            try await cluster.commit { state throws(ShoalError) in try state.requestCancel(id, nowMs: nowMs()) }
            if let task = running[id] {
                _ = await withTaskGroup(of: Bool.self) { group in
                    group.addTask { await task.value; return true }
                    group.addTask { try? await Task.sleep(for: wait); return false }
                    let first = await group.next()!
                    group.cancelAll()
                    return first
                }
            }
        case .done, .failed, .rolledBack:
            throw ShoalError(.failedPrecondition, "move \(id) already finished (\(move.state.rawValue))")
        }
        return cluster.snapshot.moves[id] ?? move
    }

    /// Ids of the moves running in this process.
    var runningIDs: Set<String> { Set(running.keys) }

    private func launch(_ id: String) {
        let execution = MoveExecution(id: id, cluster: cluster, progress: progress, options: options, logger: logger)
        running[id] = Task {
            await execution.run()
            self.finished(id)
        }
    }

    private func finished(_ id: String) {
        running[id] = nil
        if cluster.snapshot.moves[id]?.state == .running {
            retryAfter[id] = ContinuousClock.now + Self.restartPause
            Task {
                try? await Task.sleep(for: Self.restartPause)
                await self.pump()
            }
        } else {
            retryAfter[id] = nil
            progress.forget(id)
        }
        Task { await self.pump() }
    }
}
