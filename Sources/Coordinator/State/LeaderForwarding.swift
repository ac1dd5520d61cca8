import ShoalRPC
import VectorCore

/// Changes only the leader makes (collections, nodes, moves): a coordinator that
/// does not lead passes such a call on to the one that does, with the caller's
/// remaining deadline, and answers what the leader answered. A client may send
/// them to any coordinator.
extension ClusterController {
    /// The metadata key that marks a forwarded call: the receiver never forwards it again.
    static let forwardedKey = "x-shoal-forwarded"

    /// The leader's answer to `request` when this coordinator does not lead, nil when
    /// it leads (the caller then handles the request itself). While no leader is known
    /// (an election is under way) it waits up to 10 s within the caller's deadline;
    /// then UNAVAILABLE.
    nonisolated func forwardedToLeader<Request, Response>(
        _ rpc: RPC<Request, Response>, _ request: Request, _ call: ServerRequest
    ) async throws -> Response? {
        let giveUp = min(call.deadline ?? .now + .seconds(10), .now + .seconds(10))
        while true {
            if leadership.currentTerm != nil { return nil }
            if call.metadata.contains(where: { $0.key == Self.forwardedKey }) {
                throw ShoalError(.unavailable, "this coordinator was asked, as the leader, to make a change, but it does not lead (any more); try again")
            }
            if let leader = leadership.leaderAddress {
                let timeout = call.deadline.map { $0 - .now } ?? .seconds(60)
                do {
                    return try await nodes.transport(for: leader).call(rpc, request, timeout: timeout, metadata: [(Self.forwardedKey, "1")])
                } catch let error as ShoalError where error.code == .unavailable {
                    throw ShoalError(.unavailable, "the leading coordinator at \(leader) is unavailable: \(error.message)")
                }
            }
            guard ContinuousClock.now < giveUp else {
                throw ShoalError(.unavailable, "no coordinator leads the cluster now (an election is under way); try again")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

extension HandlerRegistry {
    /// Registers a handler for a change only the leader makes (see `forwardedToLeader`).
    func registerLed<Request, Response>(
        _ rpc: RPC<Request, Response>, cluster: ClusterController,
        _ handler: @escaping @Sendable (Request, ServerRequest) async throws -> Response
    ) throws {
        try register(rpc) { request, call in
            if let answer = try await cluster.forwardedToLeader(rpc, request, call) {
                // Read your writes: the caller's next request here must see the change
                // the leader made, before this coordinator's watch would deliver it.
                try? await cluster.refresh()
                return answer
            }
            return try await handler(request, call)
        }
    }
}
