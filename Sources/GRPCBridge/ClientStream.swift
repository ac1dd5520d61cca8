internal import CGRPCBridge
import Synchronization
import VectorCore

extension Channel {
    /// Opens a bidirectional stream to `method`. It starts at once (connecting lazily,
    /// like unary calls); failures to connect arrive as the error of `receive`.
    /// timeout: for the whole stream (nil: none). INVALID_ARGUMENT for illegal metadata.
    public func openStream(
        method: String, timeout: Duration? = nil, metadata: [(String, String)] = []
    ) throws -> ClientStream {
        try ClientStream(channel: raw, method: method, timeout: timeout, metadata: metadata)
    }
}

/// One bidirectional streaming call: bytes in, bytes out, in order.
///
/// Messages from the server are buffered as they arrive until `receive` takes them.
/// Cancelling a task waiting in `send` or `receive` cancels the whole stream (both
/// then fail with CANCELLED), as does dropping the stream.
public final class ClientStream: Sendable {
    public let method: String
    private let state: StreamState
    private let handle: UncheckedPointer

    fileprivate init(channel: OpaquePointer, method: String, timeout: Duration?, metadata: [(String, String)]) throws {
        let state = StreamState()
        let timeoutMicros = timeout.map { max(0, $0.saturatingMicroseconds) } ?? -1
        let context = Unmanaged.passRetained(state)  // released by `done`
        var error = sg_error()
        let callbacks = sg_client_stream_callbacks(message: streamMessage, write_done: streamWriteDone, done: streamDone)
        let started = withMetadata(metadata) { entries, count in
            sg_client_stream_start(channel, method, timeoutMicros, entries, count, callbacks, context.toOpaque(), &error)
        }
        guard let started else {
            context.release()  // no callback runs for a stream that did not start
            throw ShoalError(bridge: &error)
        }
        self.method = method
        self.state = state
        self.handle = UncheckedPointer(started)
    }

    deinit {
        sg_client_stream_release(handle.pointer)  // cancels the stream if it still runs
    }

    /// Sends one message; returns once gRPC has written it. Throws the stream's final
    /// status if it ends first, or FAILED_PRECONDITION after `closeSend`.
    public func send(_ bytes: [UInt8]) async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                state.send(bytes, on: handle.pointer, continuation)
            }
        } onCancel: {
            sg_client_stream_cancel(handle.pointer)
        }
    }

    /// The next message from the server, or nil once it ended the stream with OK.
    /// Throws the final status if the stream failed (after the messages before it).
    /// One `receive` at a time (a second concurrent one is FAILED_PRECONDITION).
    public func receive() async throws -> [UInt8]? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[UInt8]?, any Error>) in
                state.receive(continuation)
            }
        } onCancel: {
            sg_client_stream_cancel(handle.pointer)
        }
    }

    /// No more messages from this side; the server sees the end after those sent.
    public func closeSend() {
        state.closeSend(handle.pointer)
    }

    /// Cancels the stream: waiting and later calls fail with CANCELLED.
    public func cancel() {
        sg_client_stream_cancel(handle.pointer)
    }
}

/// What the bridge's callbacks and the stream's callers share. `done` holds a +1
/// reference from the start until the stream is over.
private final class StreamState: Sendable {
    private enum End {
        case running
        case finished(ShoalError?)  // nil: the server ended it with OK
    }

    private struct Inner {
        var messages: [[UInt8]] = []
        var receiver: CheckedContinuation<[UInt8]?, any Error>?
        var writers: [CheckedContinuation<Void, any Error>] = []  // accepted by the bridge, in order
        var failedWriters: [CheckedContinuation<Void, any Error>] = []  // waiting for the final status
        var sendClosed = false
        var end = End.running
    }

    private let inner = Mutex(Inner())

    init() { BridgeDiagnostics.swiftClientStreams.add(1, ordering: .relaxed) }
    deinit { BridgeDiagnostics.swiftClientStreams.subtract(1, ordering: .relaxed) }

    func send(_ bytes: [UInt8], on stream: OpaquePointer, _ continuation: CheckedContinuation<Void, any Error>) {
        // The bridge never calls back inside sg_client_stream_write, so it may run under the lock.
        let refusal: ShoalError? = inner.withLock { inner in
            if inner.sendClosed { return ShoalError(.failedPrecondition, "send after closeSend") }
            if case .finished(let error) = inner.end { return Self.endedError(error) }
            let accepted = bytes.withUnsafeBufferPointer { sg_client_stream_write(stream, $0.baseAddress, $0.count) }
            if accepted == 1 { inner.writers.append(continuation) } else { inner.failedWriters.append(continuation) }
            return nil
        }
        if let refusal { continuation.resume(throwing: refusal) }
    }

    func receive(_ continuation: CheckedContinuation<[UInt8]?, any Error>) {
        let result: Result<[UInt8]?, ShoalError>? = inner.withLock { inner in
            if !inner.messages.isEmpty { return .success(inner.messages.removeFirst()) }
            if case .finished(let error) = inner.end { return error.map { .failure($0) } ?? .success(nil) }
            if inner.receiver != nil { return .failure(ShoalError(.failedPrecondition, "a receive is already waiting")) }
            inner.receiver = continuation
            return nil
        }
        if let result { continuation.resume(with: result.mapError { $0 as any Error }) }
    }

    func closeSend(_ stream: OpaquePointer) {
        inner.withLock { inner in
            inner.sendClosed = true
            sg_client_stream_writes_done(stream)
        }
    }

    fileprivate func message(_ bytes: [UInt8]) {
        let receiver: CheckedContinuation<[UInt8]?, any Error>? = inner.withLock { inner in
            if let receiver = inner.receiver {
                inner.receiver = nil
                return receiver
            }
            inner.messages.append(bytes)
            return nil
        }
        receiver?.resume(returning: bytes)
    }

    fileprivate func writeDone(_ ok: Bool) {
        let writer: CheckedContinuation<Void, any Error>? = inner.withLock { inner in
            guard !inner.writers.isEmpty else { return nil }
            let writer = inner.writers.removeFirst()
            if ok { return writer }
            inner.failedWriters.append(writer)  // resumed with the final status
            return nil
        }
        writer?.resume()
    }

    fileprivate func done(_ error: ShoalError?) {
        let (receiver, writers) = inner.withLock { inner in
            inner.end = .finished(error)
            let receiver = inner.receiver
            inner.receiver = nil
            let writers = inner.failedWriters + inner.writers
            inner.failedWriters = []
            inner.writers = []
            return (receiver, writers)
        }
        if let error { receiver?.resume(throwing: error) } else { receiver?.resume(returning: nil) }
        for writer in writers { writer.resume(throwing: Self.endedError(error)) }
    }

    private static func endedError(_ error: ShoalError?) -> ShoalError {
        error ?? ShoalError(.failedPrecondition, "the server already ended the stream")
    }
}

private func streamMessage(_ context: UnsafeMutableRawPointer?, _ bytes: UnsafePointer<UInt8>?, _ length: Int) {
    let state = Unmanaged<StreamState>.fromOpaque(context!).takeUnretainedValue()
    state.message(length == 0 ? [] : Array(UnsafeBufferPointer(start: bytes, count: length)))
}

private func streamWriteDone(_ context: UnsafeMutableRawPointer?, _ ok: Int32) {
    Unmanaged<StreamState>.fromOpaque(context!).takeUnretainedValue().writeDone(ok != 0)
}

private func streamDone(_ context: UnsafeMutableRawPointer?, _ code: Int32, _ message: UnsafePointer<CChar>?, _ length: Int) {
    let state = Unmanaged<StreamState>.fromOpaque(context!).takeRetainedValue()
    state.done(code == 0 ? nil : ShoalError(StatusCode(rawCode: code), bridgeString(message, length)))
}
