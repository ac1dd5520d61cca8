import Synchronization
import VectorCore

/// Calls handlers registered in this same process: no socket, no HTTP/2 framing,
/// no second copy of the request. `shoal serve`'s coordinator reaches its own node
/// through it, with the same messages and the same rules as over gRPC.
///
/// Blocking handlers run on `workers` — the pool the process's gRPC server uses
/// too, so a node's reads have one budget whoever sends them — and complete from
/// the worker thread; async handlers run in the caller's task. A caller's timeout
/// is checked before the call starts; a blocking call cannot be stopped once it
/// runs (it is short), and an async one ends when its handler does.
public final class LocalTransport: UnaryTransport, HandlerRegistry, @unchecked Sendable {
    // @unchecked: `handlers` is guarded by its mutex; the rest is immutable.
    private enum Entry {
        case async(UnaryHandler)
        case blocking(BlockingHandler)
        case starting(StartingHandler)
    }

    private let handlers = Mutex<[String: Entry]>([:])
    public let workers: WorkerPool

    public init(workers: WorkerPool) {
        self.workers = workers
    }

    public func register(_ method: String, limited: Bool, handler: @escaping UnaryHandler) throws {
        try add(method, .async(handler))
    }

    public func registerBlocking(_ method: String, handler: @escaping BlockingHandler) throws {
        try add(method, .blocking(handler))
    }

    public func registerStarting(_ method: String, handler: @escaping StartingHandler) throws {
        try add(method, .starting(handler))
    }

    private func add(_ method: String, _ entry: Entry) throws {
        try handlers.withLock { handlers in
            guard handlers[method] == nil else { throw ShoalError(.alreadyExists, "\(method) is registered twice") }
            handlers[method] = entry
        }
    }

    public func unary(method: String, request: [UInt8], timeout: Duration?, metadata: [(String, String)]) async throws -> [UInt8] {
        let (entry, call) = try prepare(method, request, timeout, metadata)
        switch entry {
        case .async(let handler):
            do {
                return try await handler(ServerRequest(method: method, bytes: request, metadata: call.metadata, deadline: call.deadline))
            } catch {
                throw ShoalError(handlerError: error)
            }
        case .blocking(let handler):
            let work = try request.withUnsafeBytes { try handler($0, call) }
            return try await withCheckedThrowingContinuation { continuation in
                submit(work) { continuation.resume(with: $0) }
            }
        case .starting(let handler):
            let started = Mutex<(any StartedCall)?>(nil)
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    let handle = request.withUnsafeBytes { handler($0, call) { continuation.resume(with: $0) } }
                    started.withLock { $0 = handle }
                }
            } onCancel: {
                started.withLock { $0 }?.cancel()
            }
        }
    }

    public func start(
        method: String, request: [UInt8], timeout: Duration?, metadata: [(String, String)], done: @escaping CallCompletion
    ) -> any StartedCall {
        let entry: Entry
        let call: ServerRequest
        do {
            (entry, call) = try prepare(method, request, timeout, metadata)
        } catch {
            done(.failure(ShoalError(handlerError: error)))
            return FinishedCall()
        }
        switch entry {
        case .async:
            return startInTask(method: method, request: request, timeout: timeout, metadata: metadata, done: done)
        case .blocking(let handler):
            do {
                let work = try request.withUnsafeBytes { try handler($0, call) }
                submit(work, done)
            } catch {
                done(.failure(ShoalError(handlerError: error)))
            }
            return FinishedCall()  // a blocking call cannot be stopped (it is short)
        case .starting(let handler):
            return request.withUnsafeBytes { handler($0, call, done) }
        }
    }

    private func prepare(_ method: String, _ request: [UInt8], _ timeout: Duration?, _ metadata: [(String, String)]) throws(ShoalError)
        -> (Entry, ServerRequest)
    {
        guard let entry = handlers.withLock({ $0[method] }) else {
            throw ShoalError(.unimplemented, "\(method) is not served in this process")
        }
        if let timeout, timeout <= .zero { throw ShoalError(.deadlineExceeded, "the deadline passed before \(method) started") }
        let call = ServerRequest(method: method, bytes: [], metadata: metadata.map { (key: $0.0.lowercased(), value: $0.1) },
                                 deadline: timeout.map { ContinuousClock.now + $0 })
        return (entry, call)
    }

    private func submit(_ work: @escaping BlockingWork, _ done: @escaping CallCompletion) {
        let workers = workers
        let refusal = workers.submit(WorkerPool.Job(
            run: {
                do {
                    done(.success(try work()))
                } catch {
                    done(.failure(ShoalError(handlerError: error)))
                }
            },
            refused: { done(.failure(.busyWorkers(waited: $0, limit: workers.maxWait))) }))
        if let refusal { done(.failure(refusal)) }
    }
}
