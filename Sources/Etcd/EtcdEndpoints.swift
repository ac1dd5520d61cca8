import GRPCBridge
import ShoalRPC
import Synchronization
import SwiftProtobuf
import VectorCore

/// The members of one etcd cluster, a channel to each, and the one in use.
///
/// Calls go to the member in use; one that answers UNAVAILABLE or DEADLINE_EXCEEDED
/// hands over to the next, and the client sticks with whichever member answered
/// last. Only when every member failed does a call fail with UNAVAILABLE.
final class EtcdEndpoints: Sendable {
    let addresses: [String]
    let callTimeout: Duration
    private let channels: [Channel]
    private let inUse = Mutex(0)

    init(_ addresses: [String], callTimeout: Duration) throws {
        guard !addresses.isEmpty else { throw ShoalError(.invalidArgument, "no etcd endpoints given") }
        for address in addresses { try Self.validate(address) }
        self.addresses = addresses
        self.callTimeout = callTimeout
        self.channels = try addresses.map { try Channel(target: $0) }
    }

    /// Checks one "host:port".
    static func validate(_ address: String) throws {
        if address.contains("://") {
            throw ShoalError(.invalidArgument, "etcd endpoint '\(address)': give host:port, without a scheme")
        }
        guard let colon = address.lastIndex(of: ":"), colon != address.startIndex,
              let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else {
            throw ShoalError(.invalidArgument, "etcd endpoint '\(address)' is not host:port")
        }
    }

    /// The member in use now, for a stream.
    func current() -> (index: Int, channel: Channel) {
        let index = inUse.withLock { $0 }
        return (index, channels[index])
    }

    /// Moves off member `index` (if it is still the one in use) after it failed.
    func failed(_ index: Int) {
        inUse.withLock { if $0 == index { $0 = (index + 1) % channels.count } }
    }

    private func succeeded(_ index: Int) {
        inUse.withLock { $0 = index }
    }

    /// Calls `rpc` on the member in use, moving through the others while they are
    /// unreachable. `idempotent`: whether a call that timed out may be sent again to
    /// another member (a write that timed out may have been applied, so it is not).
    func call<Request, Response>(
        _ rpc: RPC<Request, Response>, _ request: Request, idempotent: Bool
    ) async throws -> Response {
        try await withFailover(rpc.path, idempotent: idempotent) { channel in
            try await channel.call(rpc, request, timeout: callTimeout)
        }
    }

    /// Runs `body` against the member in use, then each next one while they fail with
    /// UNAVAILABLE or DEADLINE_EXCEEDED; sticks with the member that answered.
    /// Other failures keep their code, their message naming `what` and the member.
    func withFailover<T>(
        _ what: String, idempotent: Bool, _ body: (Channel) async throws -> T
    ) async throws -> T {
        var failures: [String] = []
        let first = inUse.withLock { $0 }
        for step in 0..<channels.count {
            let index = (first + step) % channels.count
            do {
                let result = try await body(channels[index])
                succeeded(index)
                return result
            } catch let error as ShoalError where Self.isUnreachable(error) {
                failed(index)
                if error.code == .deadlineExceeded && !idempotent {
                    throw ShoalError(.deadlineExceeded, "etcd at \(addresses[index]) did not answer \(what) within \(callTimeout); the write may or may not have been applied")
                }
                failures.append("\(addresses[index]): \(error)")
            } catch let error as ShoalError {
                throw ShoalError(error.code, "etcd \(what) at \(addresses[index]): \(error.message)")
            }
        }
        throw unavailable(failures)
    }

    /// A failure that says the member did not answer (rather than refused the call).
    static func isUnreachable(_ error: ShoalError) -> Bool {
        error.code == .unavailable || error.code == .deadlineExceeded
    }

    func unavailable(_ failures: [String]) -> ShoalError {
        ShoalError(.unavailable, "etcd at \(addresses.joined(separator: ",")) is unavailable: \(failures.joined(separator: "; "))")
    }
}
