import Foundation
import ShoalProto
import SwiftProtobuf
import VectorCore

/// A typed method: its full gRPC name and its message types. Typed code sits here,
/// above the bytes-only transport (GRPCBridge, or `LocalTransport` in process).
public struct RPC<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>: Sendable {
    public let path: String
    public init(_ path: String) { self.path = path }
}

extension HandlerRegistry {
    /// Registers a typed handler. Bytes that do not parse as `Request` get
    /// INVALID_ARGUMENT without reaching the handler. `limited`: whether its calls
    /// count against the registry's concurrent-call limit (Health does not).
    public func register<Request, Response>(
        _ rpc: RPC<Request, Response>, limited: Bool = true,
        _ handler: @escaping @Sendable (Request, ServerRequest) async throws -> Response
    ) throws {
        try register(rpc.path, limited: limited) { call in
            let request = try Request.decode(call.bytes)
            let response: Response
            do {
                response = try await handler(request, call)
            } catch let error as any StatusConvertible {
                throw error.status
            }
            return try response.serializedBytes()
        }
    }

    /// Registers a typed blocking handler (`BlockingHandler`): the request is decoded
    /// from the transport's buffer on the receiving thread, `handler` runs on a worker.
    public func registerBlocking<Request, Response>(
        _ rpc: RPC<Request, Response>,
        _ handler: @escaping @Sendable (Request, ServerRequest) throws -> Response
    ) throws {
        try registerBlocking(rpc.path) { buffer, call in
            let request = try Request.decode(buffer)
            return {
                do {
                    return try handler(request, call).serializedBytes()
                } catch let error as any StatusConvertible {
                    throw error.status
                }
            }
        }
    }

    /// Registers a typed starting handler (`StartingHandler`): the request is decoded
    /// from the transport's buffer on the receiving thread (INVALID_ARGUMENT if it does
    /// not parse, without reaching `handler`); `handler` starts the work and hands the
    /// response or its status to `done`, once, from any thread.
    public func registerStarting<Request, Response>(
        _ rpc: RPC<Request, Response>,
        _ handler: @escaping @Sendable (Request, ServerRequest, @escaping @Sendable (Result<Response, ShoalError>) -> Void) -> any StartedCall
    ) throws {
        try registerStarting(rpc.path) { buffer, call, done in
            let request: Request
            do throws(ShoalError) {
                request = try Request.decode(buffer)
            } catch {
                done(.failure(error))
                return FinishedCall()
            }
            return handler(request, call) { result in
                done(result.flatMap { response in
                    Result { () throws(ShoalError) in
                        do {
                            return try response.serializedBytes()
                        } catch {
                            throw ShoalError(.internal, "could not encode the \(Response.protoMessageName) reply: \(error)")
                        }
                    }
                })
            }
        }
    }
}

extension SwiftProtobuf.Message {
    /// Decodes a reply of `path`; INTERNAL if it does not parse.
    public static func decode(reply bytes: [UInt8], from path: String) throws(ShoalError) -> Self {
        do {
            return try Self(serializedBytes: bytes)
        } catch {
            throw ShoalError(.internal, "malformed \(protoMessageName) reply from \(path): \(error)")
        }
    }

    /// Decodes a request; INVALID_ARGUMENT if it does not parse.
    static func decode(_ bytes: [UInt8]) throws(ShoalError) -> Self {
        do {
            return try Self(serializedBytes: bytes)
        } catch {
            throw ShoalError(.invalidArgument, "malformed \(protoMessageName) message: \(error)")
        }
    }

    /// Decodes a request from a borrowed buffer, without copying it first.
    static func decode(_ buffer: UnsafeRawBufferPointer) throws(ShoalError) -> Self {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return Self() }
        do {
            return try Self(serializedBytes: Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: buffer.count, deallocator: .none))
        } catch {
            throw ShoalError(.invalidArgument, "malformed \(protoMessageName) message: \(error)")
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
        return try Response.decode(reply: bytes, from: rpc.path)
    }
}
