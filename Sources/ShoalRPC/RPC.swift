import GRPCBridge
import ShoalProto
import SwiftProtobuf
import VectorCore

/// A typed method: its full gRPC name and its message types. Typed code sits here,
/// above the bytes-only transport (GRPCBridge, or an in-process `UnaryTransport`).
public struct RPC<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>: Sendable {
    public let path: String
    public init(_ path: String) { self.path = path }
}

extension Server {
    /// Registers a typed handler. Bytes that do not parse as `Request` get
    /// INVALID_ARGUMENT without reaching the handler. `limited`: whether its calls
    /// count against the server's concurrent-call limit (Health does not).
    public func register<Request, Response>(
        _ rpc: RPC<Request, Response>, limited: Bool = true,
        _ handler: @escaping @Sendable (Request, ServerRequest) async throws -> Response
    ) throws {
        try register(rpc.path, limited: limited) { call in
            let request: Request
            do {
                request = try Request(serializedBytes: call.bytes)
            } catch {
                throw ShoalError(.invalidArgument, "malformed \(Request.protoMessageName) message: \(error)")
            }
            let response: Response
            do {
                response = try await handler(request, call)
            } catch let error as any StatusConvertible {
                throw error.status
            }
            return try response.serializedBytes()
        }
    }
}

extension UnaryTransport {
    /// Calls a typed method. Throws `ShoalError` with the call's status, or
    /// INTERNAL if the reply does not parse.
    public func call<Request, Response>(
        _ rpc: RPC<Request, Response>, _ request: Request,
        timeout: Duration? = nil, metadata: [(String, String)] = []
    ) async throws -> Response {
        let bytes = try await unary(method: rpc.path, request: try request.serializedBytes(), timeout: timeout, metadata: metadata)
        do {
            return try Response(serializedBytes: bytes)
        } catch {
            throw ShoalError(.internal, "malformed \(Response.protoMessageName) reply from \(rpc.path): \(error)")
        }
    }
}
