import Synchronization
import VectorCore

/// Calls to one of several servers that serve the same API (a cluster's
/// coordinators), failing over on UNAVAILABLE.
///
/// A call goes first to the transport that answered last (sticky; an answer that
/// is an error other than UNAVAILABLE counts). When it fails with UNAVAILABLE it
/// goes to the next, in order, cycling; after each round in which every one
/// failed it waits a backoff (`initialBackoff`, doubling up to `maxBackoff`).
/// Every attempt and every wait share the call's one `timeout`, counted from the
/// call's start; with no timeout it gives up after `roundsWithoutTimeout` rounds.
/// When none answers it throws UNAVAILABLE naming every target with its last
/// error. Any other error is thrown at once; cancelling the calling task ends the
/// call with CANCELLED (a backoff wait too). With one target it is that transport.
///
/// Every method is retried alike: a server that fails mid-call may have done the
/// work, so give it calls that are safe to repeat (reads, upserts and deletes by
/// id) or accept that one may run twice.
public final class FailoverTransport: UnaryTransport {
    public let targets: [String]
    private let transports: [any UnaryTransport]
    private let current = Atomic<Int>(0)
    private let initialBackoff: Duration
    private let maxBackoff: Duration
    public static let roundsWithoutTimeout = 3

    /// One `Channel` per `HOST:PORT` in `targets`.
    public convenience init(targets: [String], maxMessageBytes: Int = 64 << 20) throws {
        try self.init(targets: targets, transports: targets.map { try Channel(target: $0, maxMessageBytes: maxMessageBytes) })
    }

    /// `transports[i]` reaches `targets[i]` (named in errors).
    public init(
        targets: [String], transports: [any UnaryTransport],
        initialBackoff: Duration = .milliseconds(50), maxBackoff: Duration = .seconds(1)
    ) {
        precondition(!targets.isEmpty && targets.count == transports.count, "one transport per target, at least one")
        self.targets = targets
        self.transports = transports
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    /// The target calls go to first.
    public var currentTarget: String { targets[current.load(ordering: .relaxed)] }

    public func unary(
        method: String, request: [UInt8], timeout: Duration?, metadata: [(String, String)]
    ) async throws -> [UInt8] {
        if transports.count == 1 {
            return try await transports[0].unary(method: method, request: request, timeout: timeout, metadata: metadata)
        }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let start = current.load(ordering: .relaxed)
        var failures: [String: String] = [:]
        var backoff = initialBackoff
        var attempt = 0
        while deadline != nil || attempt < transports.count * Self.roundsWithoutTimeout {
            let remaining = deadline.map { $0 - .now }
            if let remaining, remaining <= .zero { break }
            let index = (start + attempt) % transports.count
            do {
                let reply = try await transports[index].unary(method: method, request: request, timeout: remaining, metadata: metadata)
                current.store(index, ordering: .relaxed)
                return reply
            } catch let error as ShoalError where error.code == .unavailable {
                failures[targets[index]] = error.message
            } catch let error as ShoalError {
                current.store(index, ordering: .relaxed)  // it answered, if only with an error
                throw error
            }
            attempt += 1
            if attempt % transports.count == 0 {  // a whole round failed
                let wait = deadline.map { min(backoff, $0 - .now) } ?? backoff
                if wait > .zero {
                    do { try await Task.sleep(for: wait) } catch { throw ShoalError(.cancelled, "the call was cancelled") }
                }
                backoff = min(backoff * 2, maxBackoff)
            }
        }
        throw ShoalError(.unavailable, "none of \(targets.joined(separator: ", ")) answered: " +
            targets.compactMap { target in failures[target].map { "\(target): \($0)" } }.joined(separator: "; "))
    }
}
