internal import CGRPCBridge
import Foundation
import Synchronization
import VectorCore

/// What a handler sees of one call.
public struct ServerRequest: Sendable {
    /// Full method name, `/shoal.v1.Shard/Search`.
    public let method: String
    /// The request message, serialized.
    public let bytes: [UInt8]
    /// The client's metadata (keys are lower-case, as gRPC sends them).
    public let metadata: [(key: String, value: String)]
    /// When the client stops waiting, if it set a deadline.
    public let deadline: ContinuousClock.Instant?
}

/// Handles one unary call: returns the serialized response, or throws.
/// A thrown `ShoalError` becomes its status; `CancellationError` becomes CANCELLED;
/// anything else becomes INTERNAL with the error's description.
/// The handler's task is cancelled when the client cancels or its deadline passes.
public typealias UnaryHandler = @Sendable (ServerRequest) async throws -> [UInt8]

/// A gRPC server that moves bytes: register handlers by full method name, start,
/// and shut down. Calls to unregistered methods get UNIMPLEMENTED. At most
/// `maxConcurrentCalls` calls of limited methods run at once; the next one is
/// answered RESOURCE_EXHAUSTED on the gRPC thread that received it, never queued.
///
/// Call `shutdown()` before dropping the server; a server dropped while live is
/// shut down (calls cancelled) on a thread of its own.
public final class Server: @unchecked Sendable {
    // @unchecked: `raw` is immutable; `handlers` is written only before `start`
    // (enforced by the bridge, which refuses registration afterwards) and then only read.
    private let raw: OpaquePointer
    private var handlers: [MethodHandler] = []
    private let isShutDown = Atomic<Bool>(false)
    private let calls: CallCounter

    /// - Parameters:
    ///   - maxMessageBytes: the largest request or response; larger requests
    ///     are refused with RESOURCE_EXHAUSTED before reaching a handler.
    ///   - maxConcurrentCalls: calls of limited methods (see `register`) running at once.
    public init(maxMessageBytes: Int = 64 << 20, maxConcurrentCalls: Int = 1_024) throws {
        calls = CallCounter(limit: maxConcurrentCalls)
        let callbacks = sg_server_callbacks(dispatch: serverDispatch, cancel: serverCancel, release: serverRelease)
        var error = sg_error()
        guard let raw = sg_server_create(callbacks, Int32(clamping: maxMessageBytes), &error) else {
            throw ShoalError(bridge: &error)
        }
        self.raw = raw
    }

    deinit {
        if isShutDown.load(ordering: .acquiring) {
            sg_server_destroy(raw)  // nothing left in flight: returns at once
            return
        }
        // Destroying a server that was not shut down cancels its calls and blocks until
        // their handlers return; handlers need the cooperative pool, so never block it.
        let raw = UncheckedPointer(raw)
        let handlers = handlers
        Thread {
            sg_server_destroy(raw.pointer)
            withExtendedLifetime(handlers) {}
        }.start()
    }

    /// Registers `handler` for `method` (`/package.Service/Method`). Only before `start`.
    /// A `limited` method's calls count against `maxConcurrentCalls`; an unlimited one
    /// (Health) is answered however busy the server is.
    public func register(_ method: String, limited: Bool = true, handler: @escaping UnaryHandler) throws {
        let entry = MethodHandler(handler, calls: limited ? calls : nil)
        var error = sg_error()
        guard sg_server_register(raw, method, Unmanaged.passUnretained(entry).toOpaque(), &error) == 1 else {
            throw ShoalError(bridge: &error)
        }
        handlers.append(entry)  // keeps `entry` alive as long as the server
    }

    /// Binds `host:port` (port 0 picks a free port) and starts serving. Returns the bound port.
    @discardableResult
    public func start(host: String = "127.0.0.1", port: Int = 0) throws -> Int {
        var error = sg_error()
        var bound: Int32 = 0
        guard sg_server_start(raw, host, Int32(clamping: port), &bound, &error) == 1 else {
            throw ShoalError(bridge: &error)
        }
        return Int(bound)
    }

    /// Stops accepting calls, lets in-flight calls finish for up to `grace`, cancels the
    /// rest and waits until every handler has returned. Safe to call more than once.
    public func shutdown(grace: Duration = .seconds(5)) async {
        let raw = UncheckedPointer(raw)
        let ms = grace.saturatingMicroseconds / 1000
        // The bridge blocks until handlers finish, and handlers run on the cooperative pool:
        // wait on a thread of our own, never on a pool thread.
        await runBlocking { sg_server_shutdown(raw.pointer, ms) }
        isShutDown.store(true, ordering: .releasing)
    }
}

/// A registered handler; the bridge holds an unretained pointer to it while the server lives.
private final class MethodHandler: Sendable {
    let handler: UnaryHandler
    /// The server's count of running calls, for a limited method.
    let calls: CallCounter?
    init(_ handler: @escaping UnaryHandler, calls: CallCounter?) {
        self.handler = handler
        self.calls = calls
    }
}

/// Calls of limited methods running now, at most `limit`.
private final class CallCounter: Sendable {
    let limit: Int
    private let running = Atomic<Int>(0)
    init(limit: Int) { self.limit = limit }

    /// Takes a slot; false (and nothing taken) if all `limit` are in use.
    func enter() -> Bool {
        if running.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue <= limit { return true }
        running.wrappingSubtract(1, ordering: .acquiringAndReleasing)
        return false
    }

    func leave() { running.wrappingSubtract(1, ordering: .acquiringAndReleasing) }
}

/// The per-call context handed back to the bridge: owns the handler's task (none for
/// a call refused at dispatch).
private final class ServerCallBox: Sendable {
    let task: Task<Void, Never>?
    init(task: Task<Void, Never>?) {
        self.task = task
        BridgeDiagnostics.swiftServerCalls.add(1, ordering: .relaxed)
    }
    deinit { BridgeDiagnostics.swiftServerCalls.subtract(1, ordering: .relaxed) }
}

private func serverDispatch(_ methodContext: UnsafeMutableRawPointer?, _ rawCall: OpaquePointer?) -> UnsafeMutableRawPointer? {
    let entry = Unmanaged<MethodHandler>.fromOpaque(methodContext!).takeUnretainedValue()
    let call = UncheckedPointer(rawCall!)
    if let calls = entry.calls, !calls.enter() {
        // Completing during dispatch is allowed: the bridge releases the call after this returns.
        var message = "the server is busy: \(calls.limit) calls are running, the limit (--max-concurrent-calls); retry later"
        message.withUTF8 { sg_server_call_fail(call.pointer, StatusCode.resourceExhausted.rawValue, $0.baseAddress, $0.count) }
        return Unmanaged.passRetained(ServerCallBox(task: nil)).toOpaque()
    }
    var length = 0
    let base = sg_server_call_request(rawCall, &length)
    let bytes = length == 0 ? [] : Array(UnsafeBufferPointer(start: base, count: length))
    let timeout = sg_server_call_timeout_us(rawCall)
    let request = ServerRequest(
        method: String(cString: sg_server_call_method(rawCall)),
        bytes: bytes,
        metadata: (0..<sg_server_call_metadata_count(rawCall)).map { index in
            let entry = sg_server_call_metadata_at(rawCall, index)
            return (key: bridgeString(entry.key, entry.key_len), value: bridgeString(entry.value, entry.value_len))
        },
        deadline: timeout < 0 ? nil : ContinuousClock.now + .microseconds(timeout)
    )
    let handler = entry.handler
    let calls = entry.calls
    let task = Task {
        defer { calls?.leave() }
        do {
            let response = try await handler(request)
            response.withUnsafeBufferPointer { sg_server_call_respond(call.pointer, $0.baseAddress, $0.count) }
        } catch {
            let status = ShoalError(handlerError: error)
            var message = status.message
            message.withUTF8 { sg_server_call_fail(call.pointer, status.code.rawValue, $0.baseAddress, $0.count) }
        }
    }
    return Unmanaged.passRetained(ServerCallBox(task: task)).toOpaque()
}

private func serverCancel(_ callContext: UnsafeMutableRawPointer?) {
    Unmanaged<ServerCallBox>.fromOpaque(callContext!).takeUnretainedValue().task?.cancel()
}

private func serverRelease(_ callContext: UnsafeMutableRawPointer?) {
    Unmanaged<ServerCallBox>.fromOpaque(callContext!).release()
}

extension ShoalError {
    /// The status a handler's thrown error becomes.
    init(handlerError error: any Error) {
        switch error {
        case let error as ShoalError: self = error
        case is CancellationError: self = ShoalError(.cancelled, "the call was cancelled")
        default: self = ShoalError(.internal, String(describing: error))
        }
    }
}
