internal import CGRPCBridge
import Synchronization
import Foundation
import VectorCore

/// Counts of live bridge objects, for leak tests: all zero when nothing is in flight
/// and every server and channel has been dropped.
public struct BridgeDiagnostics: Sendable, Equatable, CustomStringConvertible {
    public var servers: Int
    public var serverCalls: Int
    public var channels: Int
    public var clientCalls: Int
    public var clientStreams: Int
    public var swiftServerCalls: Int
    public var swiftClientCalls: Int
    public var swiftClientStreams: Int

    public static func live() -> BridgeDiagnostics {
        let c = sg_debug_live_counts()
        return BridgeDiagnostics(
            servers: Int(c.servers), serverCalls: Int(c.server_calls), channels: Int(c.channels),
            clientCalls: Int(c.client_calls), clientStreams: Int(c.client_streams),
            swiftServerCalls: swiftServerCalls.load(ordering: .relaxed),
            swiftClientCalls: swiftClientCalls.load(ordering: .relaxed),
            swiftClientStreams: swiftClientStreams.load(ordering: .relaxed))
    }

    public var isEmpty: Bool {
        self == BridgeDiagnostics(servers: 0, serverCalls: 0, channels: 0, clientCalls: 0, clientStreams: 0,
                                  swiftServerCalls: 0, swiftClientCalls: 0, swiftClientStreams: 0)
    }

    public var description: String {
        "servers=\(servers) serverCalls=\(serverCalls) channels=\(channels) clientCalls=\(clientCalls) clientStreams=\(clientStreams) swiftServerCalls=\(swiftServerCalls) swiftClientCalls=\(swiftClientCalls) swiftClientStreams=\(swiftClientStreams)"
    }

    static let swiftServerCalls = Atomic<Int>(0)
    static let swiftClientCalls = Atomic<Int>(0)
    static let swiftClientStreams = Atomic<Int>(0)
}

/// A C pointer that crosses into a task; the bridge's contract says when it is valid.
struct UncheckedPointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

extension ShoalError {
    /// Takes the bridge's error out-parameter (and frees its message).
    init(bridge error: inout sg_error) {
        let message = error.message.map { String(cString: $0) } ?? "unknown bridge error"
        self.init(StatusCode(rawCode: error.code), message)
        sg_error_clear(&error)
    }
}

func bridgeString(_ bytes: UnsafePointer<CChar>?, _ length: Int) -> String {
    guard let bytes, length > 0 else { return "" }
    return UnsafeRawBufferPointer(start: bytes, count: length).withMemoryRebound(to: UInt8.self) {
        String(decoding: $0, as: UTF8.self)
    }
}

extension Duration {
    /// Whole microseconds, saturated at Int64's range (a 300,000-year timeout is "forever").
    var saturatingMicroseconds: Int64 {
        let (micros, overflow) = components.seconds.multipliedReportingOverflow(by: 1_000_000)
        if overflow { return components.seconds < 0 ? .min : .max }
        let (sum, overflow2) = micros.addingReportingOverflow(components.attoseconds / 1_000_000_000_000)
        return overflow2 ? .max : sum
    }
}

/// Runs a blocking C call on a thread of its own and resumes when it returns.
func runBlocking(_ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let thread = Thread {
            body()
            continuation.resume()
        }
        thread.start()
    }
}
