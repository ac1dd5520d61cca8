import Foundation

/// How one process calls another's method: bytes in, bytes out.
/// `GRPCBridge.Channel` implements it over gRPC; `ShoalRPC.LocalTransport` calls
/// handlers in the same process (the embedded `shoal serve`), and tests fake it.
/// Typed code (protobuf messages) sits above this protocol, never inside it.
public protocol UnaryTransport: Sendable {
    /// Calls `method` (a full gRPC name, `/shoal.v1.Shard/Search`) with `request`.
    /// Throws `ShoalError` carrying the call's status when it does not succeed.
    func unary(
        method: String,
        request: [UInt8],
        timeout: Duration?,
        metadata: [(String, String)]
    ) async throws -> [UInt8]

    /// Starts the same call without a task: `done` runs exactly once, on any thread,
    /// possibly before `start` returns. The default runs `unary` in a task; a
    /// transport that completes on its own threads (gRPC's) overrides it, so a
    /// fan-out collects its replies without a task per call.
    func start(
        method: String,
        request: [UInt8],
        timeout: Duration?,
        metadata: [(String, String)],
        done: @escaping CallCompletion
    ) -> any StartedCall
}

/// Where a started call's outcome goes.
public typealias CallCompletion = @Sendable (Result<[UInt8], ShoalError>) -> Void

/// A call in flight: `cancel` asks it to stop (its completion then reports
/// CANCELLED unless it already ran). Safe to call any number of times, from any thread.
public protocol StartedCall: Sendable {
    func cancel()
}

extension UnaryTransport {
    public func unary(method: String, request: [UInt8], timeout: Duration? = nil) async throws -> [UInt8] {
        try await unary(method: method, request: request, timeout: timeout, metadata: [])
    }

    public func start(
        method: String, request: [UInt8], timeout: Duration?, metadata: [(String, String)], done: @escaping CallCompletion
    ) -> any StartedCall {
        startInTask(method: method, request: request, timeout: timeout, metadata: metadata, done: done)
    }

    /// `start` as a task running `unary`: the default, and what a transport that
    /// overrides `start` for some methods uses for the rest.
    public func startInTask(
        method: String, request: [UInt8], timeout: Duration?, metadata: [(String, String)], done: @escaping CallCompletion
    ) -> any StartedCall {
        TaskCall(Task {
            do {
                done(.success(try await unary(method: method, request: request, timeout: timeout, metadata: metadata)))
            } catch {
                done(.failure(ShoalError(handlerError: error)))
            }
        })
    }
}

/// A call with nothing left to stop (it completed, or cannot be stopped).
public struct FinishedCall: StartedCall {
    public init() {}
    public func cancel() {}
}

/// A started call that is a task.
private struct TaskCall: StartedCall {
    let task: Task<Void, Never>
    init(_ task: Task<Void, Never>) { self.task = task }
    func cancel() { task.cancel() }
}

// MARK: the server side

/// What a handler sees of one call, whichever transport delivered it.
public struct ServerRequest: Sendable {
    /// Full method name, `/shoal.v1.Shard/Search`.
    public let method: String
    /// The request message, serialized (empty for a blocking handler, which
    /// decoded it from the transport's own buffer).
    public let bytes: [UInt8]
    /// The client's metadata (keys are lower-case, as gRPC sends them).
    public let metadata: [(key: String, value: String)]
    /// When the client stops waiting, if it set a deadline.
    public let deadline: ContinuousClock.Instant?

    public init(method: String, bytes: [UInt8], metadata: [(key: String, value: String)], deadline: ContinuousClock.Instant?) {
        self.method = method
        self.bytes = bytes
        self.metadata = metadata
        self.deadline = deadline
    }
}

/// Handles one unary call: returns the serialized response, or throws.
/// A thrown `ShoalError` becomes its status; `CancellationError` becomes CANCELLED;
/// anything else becomes INTERNAL with the error's description.
/// The handler's task is cancelled when the client cancels or its deadline passes.
public typealias UnaryHandler = @Sendable (ServerRequest) async throws -> [UInt8]

/// A short CPU-bound handler, in two steps: `decode` runs on the thread that
/// received the call, with the transport's own buffer (valid during the call
/// only), and returns the work; the work runs to completion on a thread of the
/// registry's `WorkerPool` — never on Swift's cooperative pool — and returns the
/// serialized response. Errors become statuses as for `UnaryHandler`.
public typealias BlockingHandler = @Sendable (UnsafeRawBufferPointer, ServerRequest) throws -> BlockingWork
public typealias BlockingWork = @Sendable () throws -> [UInt8]

/// A handler that answers through `done` instead of returning: it runs on the thread
/// that received the call, with the transport's own buffer (valid during the call
/// only), starts its work without blocking (calls to other processes, with
/// callbacks: `UnaryTransport.start`) and returns what stops that work if the
/// client cancels. `done` runs exactly once, on any thread, possibly before the
/// handler returns. For the coordinator's reads: a fan-out needs no thread, and no
/// task, while it waits for its nodes.
public typealias StartingHandler = @Sendable (UnsafeRawBufferPointer, ServerRequest, @escaping CallCompletion) -> any StartedCall

/// Where services register their methods: the gRPC server (`GRPCBridge.Server`)
/// or an in-process transport (`ShoalRPC.LocalTransport`). Services depend on
/// this, not on a transport.
public protocol HandlerRegistry: AnyObject, Sendable {
    /// Registers `handler` for `method` (`/package.Service/Method`). A `limited`
    /// method's calls count against the registry's concurrent-call limit (Health's do not).
    func register(_ method: String, limited: Bool, handler: @escaping UnaryHandler) throws
    /// Registers a blocking handler (see `BlockingHandler`). Its work waits in the
    /// registry's bounded `WorkerPool` queue; a call that finds the queue full, or
    /// waits there too long, is answered RESOURCE_EXHAUSTED without running.
    func registerBlocking(_ method: String, handler: @escaping BlockingHandler) throws
    /// Registers a starting handler (see `StartingHandler`), limited.
    func registerStarting(_ method: String, handler: @escaping StartingHandler) throws
}

extension ShoalError {
    /// The status a handler's thrown error becomes.
    public init(handlerError error: any Error) {
        switch error {
        case let error as ShoalError: self = error
        case is CancellationError: self = ShoalError(.cancelled, "the call was cancelled")
        default: self = ShoalError(.internal, String(describing: error))
        }
    }
}
