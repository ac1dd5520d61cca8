import Dispatch
import GRPCBridge
import VectorCore

/// A started call that runs `onCancel` when cancelled.
struct StartingCall: StartedCall {
    let onCancel: @Sendable () -> Void
    func cancel() { onCancel() }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(
    timeout: Duration = .seconds(10), _ what: String, _ condition: @Sendable () async -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while !(await condition()) {
        guard ContinuousClock.now < deadline else { throw TimeoutError(what: what) }
        try await Task.sleep(for: .milliseconds(5))
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for: \(what)" }
}

/// Records events from handlers so tests can wait for them.
actor EventLog {
    private(set) var events: [String] = []
    func record(_ event: String) { events.append(event) }
    func contains(_ event: String) -> Bool { events.contains(event) }
}

/// A server on 127.0.0.1 with the handlers the tests use, and a channel to it.
struct Fixture {
    let server: Server
    let channel: Channel
    let port: Int

    static let echo = "/shoal.test.Bridge/Echo"
    static let slow = "/shoal.test.Bridge/Slow"
    static let fails = "/shoal.test.Bridge/Fails"
    static let metadata = "/shoal.test.Bridge/Metadata"
    static let blocking = "/shoal.test.Bridge/Blocking"
    static let starting = "/shoal.test.Bridge/Starting"

    static func start(log: EventLog, maxMessageBytes: Int = 1 << 20) throws -> Fixture {
        let server = try Server(maxMessageBytes: maxMessageBytes)
        // Echo reverses the bytes, so a response can't be confused with its request.
        try server.register(echo) { request in Array(request.bytes.reversed()) }
        // Slow records start, then waits until cancelled (or 30 s) and records how it ended.
        try server.register(slow) { request in
            let tag = String(decoding: request.bytes, as: UTF8.self)
            await log.record("started \(tag)")
            do {
                try await Task.sleep(for: request.bytes.first == UInt8(ascii: "q") ? .milliseconds(200) : .seconds(30))
                await log.record("finished \(tag)")
                return Array("done \(tag)".utf8)
            } catch {
                await log.record("cancelled \(tag)")
                throw error
            }
        }
        try server.register(fails) { request in
            throw ShoalError(.invalidArgument, "bad input: \(request.bytes.count) bytes")
        }
        try server.register(metadata) { request in
            Array(request.metadata.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",").utf8)
        }
        // Blocking copies the request on the receiving thread (its buffer is gRPC's) and
        // answers it reversed from a worker; an empty request fails while decoding.
        try server.registerBlocking(blocking) { buffer, _ in
            guard !buffer.isEmpty else { throw ShoalError(.invalidArgument, "empty request") }
            let bytes = Array(buffer)
            return { Array(bytes.reversed()) }
        }
        // Starting answers from another thread: "now" at once (inside the handler),
        // "later" after 50 ms, anything else once cancelled ("cancelled <tag>" logged).
        try server.registerStarting(starting) { buffer, _, done in
            let tag = String(decoding: Array(buffer), as: UTF8.self)
            switch tag {
            case "now":
                done(.success(Array("answered now".utf8)))
                return FinishedCall()
            case "later":
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(50)) { done(.success(Array("answered later".utf8))) }
                return FinishedCall()
            default:
                return StartingCall {
                    Task { await log.record("cancelled \(tag)") }
                    done(.failure(ShoalError(.cancelled, "cancelled \(tag)")))
                }
            }
        }
        let port = try server.start(host: "127.0.0.1", port: 0)
        return Fixture(server: server, channel: try Channel(target: "127.0.0.1:\(port)"), port: port)
    }
}
