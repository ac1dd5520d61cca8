import ShoalProto
import ShoalRPC
import SwiftProtobuf
import Synchronization
import VectorCore

extension ShoalError {
    /// A node refused the read for want of a read thread (`ShoalError.fullQueue`,
    /// `busyWorkers`): another replica's node may well have one.
    var isBusy: Bool { code == .resourceExhausted && message.hasPrefix("busy:") }
}

/// A node-level read's reply: one report per shard asked, in the order asked.
protocol NodeReadReply: SwiftProtobuf.Message, Sendable {
    var shards: [Shoal_V1_ShardReadReport] { get }
}

extension Shoal_V1_NodeSearchResponse: NodeReadReply {}
extension Shoal_V1_NodeGetResponse: NodeReadReply {}
extension Shoal_V1_NodeCountResponse: NodeReadReply {}

/// How one shard of a fanned-out read went.
enum ShardAnswer: Sendable {
    /// `reply` (an index into `NodeReadOutcome.replies`) answered it, as `report` says, from `nodeID`.
    case answered(reply: Int, report: Shoal_V1_ShardReadReport, nodeID: String)
    case failed(ShoalError)
}

/// What a fanned-out read collected: the replies, and per shard (in `readers`' order)
/// which reply answered it or why none did.
struct NodeReadOutcome<Reply: Sendable>: Sendable {
    var replies: [Reply]
    var shards: [ShardAnswer]
    /// Shard ids, in `shards`' order.
    var shardIDs: [UInt32]

    /// The shards missing. A shard may be missing only with `allowPartial` and only for
    /// want of a replica that answers (UNAVAILABLE, DEADLINE_EXCEEDED); any other failure
    /// is thrown (the lowest shard's).
    func missing(allowPartial: Bool) throws(ShoalError) -> [UInt32] {
        var missing: [UInt32] = []
        for (shard, answer) in zip(shardIDs, shards) {
            guard case .failed(let error) = answer else { continue }
            guard allowPartial, error.code == .unavailable || error.code == .deadlineExceeded else { throw error }
            missing.append(shard)
        }
        return missing
    }
}

/// One read fanned out to the nodes: each node is sent one request covering every
/// shard it is asked for (not one per shard), and answers shard by shard.
///
/// - which replica: the first choices ask as few nodes as cover every shard (nodes
///   not down first, then fewest requests outstanding, ties in turn), the rest of each
///   shard's replicas follow (`NodeHealthMonitor.readOrder`); the shards whose chosen
///   replica is on one node go in one call;
/// - hedging: a call with no answer after its node's hedging delay
///   (`NodeHealthMonitor.hedgeDelay`) has its shards asked of their next replicas as
///   well (grouped by node again); the first answer per shard wins;
/// - a shard a replica cannot answer (UNAVAILABLE, DEADLINE_EXCEEDED: the whole call;
///   FAILED_PRECONDITION, ABORTED: that shard's report) is asked of its next replica at
///   once; any other error is that shard's answer, and ends the read;
/// - when no replica of a shard answered: ABORTED if one was (a stale placement:
///   `ClusterController.withCurrentPlacement` refreshes it), else DEADLINE_EXCEEDED once
///   the deadline passed, else UNAVAILABLE naming the shard and each replica's error.
///
/// No task per call or per shard: calls start with `UnaryTransport.start`, their
/// completions (on the transport's threads) update the state under one lock, and the
/// caller is handed the outcome once, when every shard is settled. Outcomes and
/// latencies are reported to the health monitor.
final class NodeFanOut<Request: SwiftProtobuf.Message, Reply: NodeReadReply>: @unchecked Sendable {
    // @unchecked: `state` is a Mutex; the rest is immutable.
    typealias MakeRequest = @Sendable ([ShardTarget]) -> Request

    private struct Shard {
        let order: [ShardTarget]
        var next = 0
        var calls = 0
        var failures: [ShoalError] = []
        var answer: ShardAnswer?
    }

    private struct Call {
        let nodeID: String
        let shards: [Int]
        var handle: (any StartedCall)?
        var hedged = false
        /// The armed hedge, disarmed when the call ends.
        var hedge: DeadlineTimer.Token?

        /// Stops the call and its hedge (outside the lock).
        func stop() {
            handle?.cancel()
            if let hedge { DeadlineTimer.shared.cancel(hedge) }
        }
    }

    private struct State {
        var shards: [Shard]
        var calls: [Int: Call] = [:]
        var nextCall = 0
        var replies: [Reply] = []
        var onDone: (@Sendable (NodeReadOutcome<Reply>) -> Void)?
        var finished = false
    }

    /// What ending the read leaves to do outside the lock: hand the outcome over, and
    /// stop the calls still running.
    private struct Ending {
        var deliver: (@Sendable () -> Void)?
        var running: [Call] = []

        func run() {
            deliver?()
            for call in running { call.stop() }
        }
    }

    /// A call to start: outside the lock (its completion may run inside `start`).
    private struct Launch {
        let id: Int
        let targets: [ShardTarget]
    }

    private let rpc: RPC<Request, Reply>
    private let makeRequest: MakeRequest
    private let nodes: NodeDirectory
    private let health: NodeHealthMonitor
    private let deadline: ContinuousClock.Instant?
    private let state: Mutex<State>
    private let shardIDs: [UInt32]

    private init(
        _ rpc: RPC<Request, Reply>, readers: [[ShardTarget]], nodes: NodeDirectory, health: NodeHealthMonitor,
        deadline: ContinuousClock.Instant?, makeRequest: @escaping MakeRequest
    ) {
        self.rpc = rpc
        self.makeRequest = makeRequest
        self.nodes = nodes
        self.health = health
        self.deadline = deadline
        shardIDs = readers.map { $0[0].shard }
        state = Mutex(State(shards: health.readOrder(readers).map { Shard(order: $0) }))
    }

    /// Reads every shard of `readers` (each shard's in-sync replicas) with one call per
    /// node, within `deadline`. `makeRequest` builds a node's request for its shards.
    static func read(
        _ rpc: RPC<Request, Reply>, readers: [[ShardTarget]], nodes: NodeDirectory, health: NodeHealthMonitor,
        deadline: ContinuousClock.Instant?, makeRequest: @escaping MakeRequest
    ) async -> NodeReadOutcome<Reply> {
        let fanOut = NodeFanOut(rpc, readers: readers, nodes: nodes, health: health, deadline: deadline, makeRequest: makeRequest)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                fanOut.begin { continuation.resume(returning: $0) }
            }
        } onCancel: {
            fanOut.cancelAll()
        }
    }

    /// `read` without a task: `done` gets the outcome once, on the thread of the
    /// reply that settled the last shard (or at once). The returned call stops the read.
    static func start(
        _ rpc: RPC<Request, Reply>, readers: [[ShardTarget]], nodes: NodeDirectory, health: NodeHealthMonitor,
        deadline: ContinuousClock.Instant?, makeRequest: @escaping MakeRequest,
        done: @escaping @Sendable (NodeReadOutcome<Reply>) -> Void
    ) -> any StartedCall {
        let fanOut = NodeFanOut(rpc, readers: readers, nodes: nodes, health: health, deadline: deadline, makeRequest: makeRequest)
        fanOut.begin(done)
        return FanOutCall { fanOut.cancelAll() }
    }

    private func begin(_ done: @escaping @Sendable (NodeReadOutcome<Reply>) -> Void) {
        // Load shedding: a shard whose every replica's node refused a read as busy just
        // now fails the read here, before any node is asked (see `busyWindow`).
        let nodeIDs = Set(state.withLock { $0.shards.flatMap { $0.order.map(\.nodeID) } })
        let busy = health.busy(nodeIDs)
        let launches = state.withLock { state -> [Launch] in
            state.onDone = done
            if !busy.isEmpty, let s = state.shards.indices.first(where: { s in state.shards[s].order.allSatisfy { busy.contains($0.nodeID) } }) {
                let target = state.shards[s].order[0]
                state.shards[s].answer = .failed(ShoalError(.resourceExhausted,
                    "busy: every replica of shard \(target.shard) of \(target.collection) refused a read as busy in the last \(health.options.busyWindow.milliseconds) ms; retry later"))
                return []
            }
            return assign(Array(state.shards.indices), in: &state)
        }
        start(launches)
    }

    // MARK: under the lock

    /// Gives each of `shards` its next replica and groups them into one call per node.
    /// A shard with no replica left is settled (if nothing of it is in flight).
    private func assign(_ shards: [Int], in state: inout State) -> [Launch] {
        var byNode: [String: [Int]] = [:]
        var nodeOrder: [String] = []
        for s in shards where state.shards[s].answer == nil {
            guard state.shards[s].next < state.shards[s].order.count else {
                if state.shards[s].calls == 0 { state.shards[s].answer = .failed(noReplicaAnswered(s, state)) }
                continue
            }
            let target = state.shards[s].order[state.shards[s].next]
            if byNode[target.nodeID] == nil { nodeOrder.append(target.nodeID) }
            byNode[target.nodeID, default: []].append(s)
        }
        var launches: [Launch] = []
        for node in nodeOrder {
            let mine = byNode[node]!
            let id = state.nextCall
            state.nextCall += 1
            var targets: [ShardTarget] = []
            for s in mine {
                targets.append(state.shards[s].order[state.shards[s].next])
                state.shards[s].next += 1
                state.shards[s].calls += 1
            }
            state.calls[id] = Call(nodeID: node, shards: mine)
            launches.append(Launch(id: id, targets: targets))
        }
        return launches
    }

    /// Takes one call's outcome: settles the shards it answered, records the failures,
    /// and returns the retries to start.
    private func complete(_ id: Int, _ result: Result<Reply, ShoalError>, in state: inout State) -> [Launch] {
        guard let call = state.calls.removeValue(forKey: id) else { return [] }
        var replyIndex: Int?
        var retry: [Int] = []
        for (i, s) in call.shards.enumerated() {
            state.shards[s].calls -= 1
            let error: ShoalError?
            switch result {
            case .success(let reply):
                guard i < reply.shards.count, reply.shards[i].shardID == shardIDs[s] else {
                    error = ShoalError(.internal, "node \(call.nodeID) answered for other shards than asked")
                    break
                }
                let report = reply.shards[i]
                if report.code == 0 {
                    if state.shards[s].answer == nil {
                        if replyIndex == nil {
                            replyIndex = state.replies.count
                            state.replies.append(reply)
                        }
                        state.shards[s].answer = .answered(reply: replyIndex!, report: report, nodeID: call.nodeID)
                    }
                    error = nil
                } else {
                    error = ShoalError(StatusCode(rawCode: report.code), report.message)
                }
            case .failure(let failure):
                error = failure
            }
            guard let error, state.shards[s].answer == nil else { continue }
            if VectorStoreService.replicaCannotAnswer(error) || error.isBusy {
                state.shards[s].failures.append(error)
                if state.shards[s].calls == 0 { retry.append(s) }
            } else {
                state.shards[s].answer = .failed(error)
            }
        }
        return assign(retry, in: &state)
    }

    /// The shards of call `id` still unanswered, asked of their next replicas (once per call).
    private func hedge(_ id: Int, in state: inout State) -> [Launch] {
        guard let call = state.calls[id], !call.hedged else { return [] }
        state.calls[id]!.hedged = true
        let open = call.shards.filter { state.shards[$0].answer == nil && state.shards[$0].next < state.shards[$0].order.count }
        return assign(open, in: &state)
    }

    /// Whether the read is over: every shard settled, or one failed in a way that fails the read.
    private func isDone(_ state: State) -> Bool {
        var settled = true
        for shard in state.shards {
            switch shard.answer {
            case nil: settled = false
            case .failed(let error) where error.code != .unavailable && error.code != .deadlineExceeded: return true
            default: break
            }
        }
        return settled
    }

    /// Ends the read once every shard is settled (or one failed the read): what to
    /// deliver and stop, outside the lock.
    private func finishIfDone(_ state: inout State) -> Ending {
        guard !state.finished, isDone(state), let onDone = state.onDone else { return Ending() }
        state.finished = true
        state.onDone = nil
        // Ended early by a failure that fails the read: the unsettled shards carry it too.
        let ending = state.shards.lazy.compactMap { shard -> ShoalError? in
            if case .failed(let error) = shard.answer, error.code != .unavailable, error.code != .deadlineExceeded { return error }
            return nil
        }.first
        let shards = state.shards.map { $0.answer ?? .failed(ending ?? ShoalError(.cancelled, "the read ended before this shard answered")) }
        let outcome = NodeReadOutcome(replies: state.replies, shards: shards, shardIDs: shardIDs)
        return Ending(deliver: { onDone(outcome) }, running: Array(state.calls.values))
    }

    private func noReplicaAnswered(_ s: Int, _ state: State) -> ShoalError {
        let failures = state.shards[s].failures
        if let fenced = failures.first(where: { $0.code == .aborted }) { return fenced }
        // Every replica's node too busy: overload, answered as such.
        if !failures.isEmpty, failures.allSatisfy(\.isBusy) { return failures[0] }
        let reasons = failures.map(\.message).joined(separator: "; ")
        let target = state.shards[s].order[0]
        let name = "shard \(target.shard) of \(target.collection)"
        if let deadline, ContinuousClock.now >= deadline {
            return ShoalError(.deadlineExceeded, "\(name): no replica answered in time: \(reasons)")
        }
        return ShoalError(.unavailable, "\(name): no replica answered: \(reasons)")
    }

    // MARK: outside the lock

    private func start(_ launches: [Launch]) {
        for launch in launches { start(launch) }
        // Shards settled while assigning (no replica left) may finish the read.
        state.withLock { finishIfDone(&$0) }.run()
    }

    private func start(_ launch: Launch) {
        let nodeID = launch.targets[0].nodeID
        let address = launch.targets[0].address
        let timeout = deadline.map { $0 - ContinuousClock.now } ?? VectorStoreService.defaultTimeout
        guard timeout > .zero else {
            finish(launch.id, .failure(ShoalError(.deadlineExceeded, "the deadline passed before node \(nodeID) at \(address) was asked")), started: nil)
            return
        }
        let transport: any UnaryTransport
        let bytes: [UInt8]
        do {
            transport = try nodes.transport(for: address)
            bytes = try makeRequest(launch.targets).serializedBytes()
        } catch {
            finish(launch.id, .failure(ShoalError(.unavailable, "node \(nodeID) at \(address) is unavailable: \(error)")), started: nil)
            return
        }
        health.begin(nodeID)
        let started = ContinuousClock.now
        let handle = transport.start(method: rpc.path, request: bytes, timeout: timeout, metadata: []) { [self] result in
            finish(launch.id, result.flatMap { bytes in
                Result { () throws(ShoalError) in try Reply.decode(reply: bytes, from: rpc.path) }
            }, started: started)
        }
        // A hedge only for a call with a shard that has another replica to ask. A call
        // still running when the read ended while it was starting is cancelled here.
        let (mayHedge, ended) = state.withLock { state -> (Bool, Bool) in
            guard let call = state.calls[launch.id] else { return (false, false) }
            guard !state.finished else { return (false, true) }
            state.calls[launch.id]!.handle = handle
            return (call.shards.contains { state.shards[$0].next < state.shards[$0].order.count }, false)
        }
        if ended { handle.cancel() }
        guard mayHedge else { return }
        let hedgeAfter = health.hedgeDelay(for: nodeID)
        let token = DeadlineTimer.shared.schedule(after: hedgeAfter) { [self] in
            let (launches, ending) = state.withLock { state in
                let launches = state.finished ? [] : hedge(launch.id, in: &state)
                return (launches, finishIfDone(&state))
            }
            ending.run()
            start(launches)
        }
        let armed = state.withLock { state -> Bool in
            guard state.calls[launch.id] != nil, !state.finished else { return false }
            state.calls[launch.id]!.hedge = token
            return true
        }
        if !armed { DeadlineTimer.shared.cancel(token) }
    }

    /// One call's outcome (from the transport's thread, or at once if it could not start).
    private func finish(_ id: Int, _ result: Result<Reply, ShoalError>, started: ContinuousClock.Instant?) {
        let (nodeID, hedge) = state.withLock { ($0.calls[id]?.nodeID, $0.calls[id]?.hedge) }
        if let hedge { DeadlineTimer.shared.cancel(hedge) }
        if let nodeID, let started {
            health.end(nodeID)
            switch result {
            case .success: health.reportSuccess(nodeID, latency: .now - started)
            // A call cancelled because the read ended says nothing about the node.
            case .failure(let error) where error.code == .unavailable || error.code == .deadlineExceeded: health.reportFailure(nodeID)
            case .failure(let error) where error.isBusy: health.reportBusy(nodeID)
            case .failure: break
            }
        }
        let result = result.mapError { error in Self.named(error, nodeID: nodeID) }
        let (launches, ending) = state.withLock { state in
            let launches = complete(id, result, in: &state)
            return (launches, finishIfDone(&state))
        }
        ending.run()
        start(launches)
    }

    private func cancelAll() {
        let calls = state.withLock { Array($0.calls.values) }
        for call in calls { call.stop() }
    }

    /// A call's failure as the read reports it: argument errors, refusals and fences
    /// pass through; the rest become UNAVAILABLE (or the deadline) naming the node.
    private static func named(_ error: ShoalError, nodeID: String?) -> ShoalError {
        let node = "node \(nodeID ?? "?")"
        switch error.code {
        case .invalidArgument, .notFound, .alreadyExists, .resourceExhausted, .failedPrecondition, .aborted, .cancelled: return error
        case .deadlineExceeded: return ShoalError(.deadlineExceeded, "\(node) did not answer in time: \(error.message)")
        default: return ShoalError(.unavailable, "\(node) is unavailable: \(error.message)")
        }
    }
}

/// A fanned-out read in flight, as its starter sees it.
private struct FanOutCall: StartedCall {
    let stop: @Sendable () -> Void
    func cancel() { stop() }
}
