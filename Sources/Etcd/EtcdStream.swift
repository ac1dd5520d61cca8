import GRPCBridge
import SwiftProtobuf
import VectorCore

/// Typed messages over one of etcd's bidi streams (LeaseKeepAlive, Watch).
struct EtcdStream<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>: Sendable {
    let stream: ClientStream

    init(_ channel: Channel, method: String, timeout: Duration? = nil, metadata: [(String, String)] = []) throws {
        stream = try channel.openStream(method: method, timeout: timeout, metadata: metadata)
    }

    func send(_ request: Request) async throws {
        try await stream.send(try request.serializedBytes())
    }

    /// The next message; UNAVAILABLE if etcd ended the stream, DEADLINE_EXCEEDED if
    /// none came within `timeout` (the stream is cancelled then).
    func receive(within timeout: Duration? = nil) async throws -> Response {
        let bytes: [UInt8]?
        if let timeout {
            bytes = try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                group.addTask { try await stream.receive() }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw ShoalError(.deadlineExceeded, "no answer on \(stream.method) within \(timeout)")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } else {
            bytes = try await stream.receive()
        }
        guard let bytes else { throw ShoalError(.unavailable, "etcd ended the \(stream.method) stream") }
        do {
            return try Response(serializedBytes: bytes)
        } catch {
            throw ShoalError(.internal, "malformed \(Response.protoMessageName) from \(stream.method): \(error)")
        }
    }
}
