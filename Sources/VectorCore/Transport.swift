/// How one process calls another's method: bytes in, bytes out.
/// `GRPCBridge.Channel` implements it over gRPC; an in-process implementation
/// lets the embedded `shoal serve` skip the network. Typed code (protobuf
/// messages) sits above this protocol, never inside it.
public protocol UnaryTransport: Sendable {
    /// Calls `method` (a full gRPC name, `/shoal.v1.Shard/Search`) with `request`.
    /// Throws `ShoalError` carrying the call's status when it does not succeed.
    func unary(
        method: String,
        request: [UInt8],
        timeout: Duration?,
        metadata: [(String, String)]
    ) async throws -> [UInt8]
}

extension UnaryTransport {
    public func unary(method: String, request: [UInt8], timeout: Duration? = nil) async throws -> [UInt8] {
        try await unary(method: method, request: request, timeout: timeout, metadata: [])
    }
}
