internal import CGRPCBridge
import Foundation
import Synchronization
import VectorCore

/// A gRPC server that moves bytes: register handlers by full method name, start,
/// and shut down. Calls to unregistered methods get UNIMPLEMENTED. At most
/// `maxConcurrentCalls` calls of limited methods run at once; the next one is
/// answered RESOURCE_EXHAUSTED on the gRPC thread that received it, never queued.
///
/// An async handler runs in a task of its own (one hop from the gRPC thread); a
/// blocking handler decodes on the gRPC thread, straight from gRPC's buffer, and
/// runs on a thread of `workers`, which answers from there (one hop each way); a
/// starting handler runs on the gRPC thread and answers from whichever thread its
/// work completes on (no hop of its own).
///
/// Call `shutdown()` before dropping the server; a server dropped while live is
/// shut down (calls cancelled) on a thread of its own.
public final class Server: HandlerRegistry, @unchecked Sendable {
    // @unchecked: `raw` is immutable; `handlers` is written only before `start`
    // (enforced by the bridge, which refuses registration afterwards) and then only read.
    private let raw: OpaquePointer
    private var handlers: [MethodHandler] = []
    private let isShutDown = Atomic<Bool>(false)
    private let calls: CallSlots
    /// Where blocking handlers run; stopped when the server shuts down if it made it.
    public let workers: WorkerPool
    private let ownsWorkers: Bool

    /// - Parameters:
    ///   - maxMessageBytes: the largest request or response; larger requests
    ///     are refused with RESOURCE_EXHAUSTED before reaching a handler.
    ///   - maxConcurrentCalls: calls of limited methods (see `register`) running at once.
    ///   - workers: the pool blocking handlers run on (shared with an in-process
    ///     transport by `shoal serve`); nil: one of its own, a thread per core.
    public init(maxMessageBytes: Int = 64 << 20, maxConcurrentCalls: Int = 1_024, workers: WorkerPool? = nil) throws {
        calls = CallSlots(limit: maxConcurrentCalls)
        self.workers = workers ?? WorkerPool(name: "server-worker", limits: RequestLimits())
        ownsWorkers = workers == nil
        let callbacks = sg_server_callbacks(dispatch: serverDispatch, cancel: serverCancel, release: serverRelease)
        var error = sg_error()
        guard let raw = sg_server_create(callbacks, Int32(clamping: maxMessageBytes), &error) else {
            throw ShoalError(bridge: &error)
        }
        self.raw = raw
    }

    deinit {
        if ownsWorkers { workers.stop() }
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
        try add(method, MethodHandler(.async(handler), calls: limited ? calls : nil, workers: workers))
    }

    /// Registers a blocking handler (`BlockingHandler`) for `method`, limited. Only before `start`.
    public func registerBlocking(_ method: String, handler: @escaping BlockingHandler) throws {
        try add(method, MethodHandler(.blocking(handler), calls: calls, workers: workers))
    }

    /// Registers a starting handler (`StartingHandler`) for `method`, limited. Only before `start`.
    public func registerStarting(_ method: String, handler: @escaping StartingHandler) throws {
        try add(method, MethodHandler(.starting(handler), calls: calls, workers: workers))
    }

    private func add(_ method: String, _ entry: MethodHandler) throws {
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
        if ownsWorkers { workers.stop() }
    }
}

/// A registered handler; the bridge holds an unretained pointer to it while the server lives.
private final class MethodHandler: Sendable {
    enum Kind {
        case async(UnaryHandler)
        case blocking(BlockingHandler)
        case starting(StartingHandler)
    }

    let kind: Kind
    /// The server's count of running calls, for a limited method.
    let calls: CallSlots?
    let workers: WorkerPool
    init(_ kind: Kind, calls: CallSlots?, workers: WorkerPool) {
        self.kind = kind
        self.calls = calls
        self.workers = workers
    }
}

/// The per-call context handed back to the bridge: owns the handler's task or its
/// started work (neither for a call refused at dispatch), which a cancel stops.
private final class ServerCallBox: Sendable {
    let task: Task<Void, Never>?
    let started: (any StartedCall)?
    init(task: Task<Void, Never>?, started: (any StartedCall)? = nil) {
        self.task = task
        self.started = started
        BridgeDiagnostics.swiftServerCalls.add(1, ordering: .relaxed)
    }
    deinit { BridgeDiagnostics.swiftServerCalls.subtract(1, ordering: .relaxed) }
}

private func serverDispatch(_ methodContext: UnsafeMutableRawPointer?, _ rawCall: OpaquePointer?) -> UnsafeMutableRawPointer? {
    let entry = Unmanaged<MethodHandler>.fromOpaque(methodContext!).takeUnretainedValue()
    let call = UncheckedPointer(rawCall!)
    if let calls = entry.calls, !calls.enter() {
        // Completing during dispatch is allowed: the bridge releases the call after this returns.
        fail(call, ShoalError(.resourceExhausted, "the server is busy: \(calls.limit) calls are running, the limit (--max-concurrent-calls); retry later"))
        return Unmanaged.passRetained(ServerCallBox(task: nil)).toOpaque()
    }
    var length = 0
    let base = sg_server_call_request(rawCall, &length)
    let buffer = UnsafeRawBufferPointer(start: length == 0 ? nil : base, count: length)
    let timeout = sg_server_call_timeout_us(rawCall)
    let calls = entry.calls
    let metadata = (0..<sg_server_call_metadata_count(rawCall)).map { index in
        let entry = sg_server_call_metadata_at(rawCall, index)
        return (key: bridgeString(entry.key, entry.key_len), value: bridgeString(entry.value, entry.value_len))
    }
    let method = String(cString: sg_server_call_method(rawCall))
    let deadline = timeout < 0 ? nil : ContinuousClock.now + .microseconds(timeout)
    switch entry.kind {
    case .async(let handler):
        let request = ServerRequest(method: method, bytes: Array(buffer), metadata: metadata, deadline: deadline)
        let task = Task {
            defer { calls?.leave() }
            do {
                respond(call, try await handler(request))
            } catch {
                fail(call, ShoalError(handlerError: error))
            }
        }
        return Unmanaged.passRetained(ServerCallBox(task: task)).toOpaque()
    case .blocking(let handler):
        let request = ServerRequest(method: method, bytes: [], metadata: metadata, deadline: deadline)
        let work: BlockingWork
        do {
            work = try handler(buffer, request)
        } catch {
            calls?.leave()
            fail(call, ShoalError(handlerError: error))
            return Unmanaged.passRetained(ServerCallBox(task: nil)).toOpaque()
        }
        let workers = entry.workers
        let refusal = workers.submit(WorkerPool.Job(
            run: {
                defer { calls?.leave() }
                do {
                    respond(call, try work())
                } catch {
                    fail(call, ShoalError(handlerError: error))
                }
            },
            refused: { waited in
                calls?.leave()
                fail(call, .busyWorkers(waited: waited, limit: workers.maxWait))
            }))
        if let refusal {
            calls?.leave()
            fail(call, refusal)
        }
        return Unmanaged.passRetained(ServerCallBox(task: nil)).toOpaque()
    case .starting(let handler):
        let request = ServerRequest(method: method, bytes: [], metadata: metadata, deadline: deadline)
        let started = handler(buffer, request) { result in
            calls?.leave()
            switch result {
            case .success(let response): respond(call, response)
            case .failure(let error): fail(call, error)
            }
        }
        return Unmanaged.passRetained(ServerCallBox(task: nil, started: started)).toOpaque()
    }
}

private func respond(_ call: UncheckedPointer, _ response: [UInt8]) {
    response.withUnsafeBufferPointer { sg_server_call_respond(call.pointer, $0.baseAddress, $0.count) }
}

private func fail(_ call: UncheckedPointer, _ status: ShoalError) {
    var message = status.message
    message.withUTF8 { sg_server_call_fail(call.pointer, status.code.rawValue, $0.baseAddress, $0.count) }
}

private func serverCancel(_ callContext: UnsafeMutableRawPointer?) {
    let box = Unmanaged<ServerCallBox>.fromOpaque(callContext!).takeUnretainedValue()
    box.task?.cancel()
    box.started?.cancel()
}

private func serverRelease(_ callContext: UnsafeMutableRawPointer?) {
    Unmanaged<ServerCallBox>.fromOpaque(callContext!).release()
}
