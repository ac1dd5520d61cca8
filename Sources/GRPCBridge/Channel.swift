internal import CGRPCBridge
import Dispatch
import Synchronization
import VectorCore

/// A client channel to one `host:port`, shared by any number of concurrent calls.
/// It connects lazily and reconnects within a second after the peer comes back.
public final class Channel: UnaryTransport, @unchecked Sendable {
    // @unchecked: `raw` is immutable and the bridge's channel is thread-safe.
    let raw: OpaquePointer
    public let target: String

    /// Keepalive pings on a channel: one after `time` without one (with or without
    /// calls); no answer within `timeout` fails the channel's calls (UNAVAILABLE) and
    /// reconnects. Only to servers that accept pings this often (ours do; etcd does not).
    public struct Keepalive: Sendable {
        public var time: Duration
        public var timeout: Duration

        public init(time: Duration, timeout: Duration) {
            self.time = time
            self.timeout = timeout
        }

        /// Coordinator to node: a cut-off node is noticed within about 2 s.
        public static let toNodes = Keepalive(time: .seconds(1), timeout: .seconds(1))
    }

    public init(target: String, maxMessageBytes: Int = 64 << 20, keepalive: Keepalive? = nil) throws {
        var error = sg_error()
        let time = keepalive.map { Int32(clamping: $0.time.saturatingMicroseconds / 1000) } ?? 0
        let timeout = keepalive.map { Int32(clamping: $0.timeout.saturatingMicroseconds / 1000) } ?? 0
        guard let raw = sg_channel_create(target, Int32(clamping: maxMessageBytes), time, timeout, &error) else {
            throw ShoalError(bridge: &error)
        }
        self.raw = raw
        self.target = target
    }

    deinit {
        sg_channel_destroy(raw)  // in-flight calls keep the underlying channel alive
    }

    /// One unary call. Throws `ShoalError` with the call's status when it fails;
    /// cancelling the calling task cancels the call (CANCELLED).
    public func unary(
        method: String,
        request: [UInt8],
        timeout: Duration?,
        metadata: [(String, String)]
    ) async throws -> [UInt8] {
        let call = ClientCall()
        defer { call.release() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                call.start(channel: raw, method: method, request: request, timeout: timeout, metadata: metadata) {
                    continuation.resume(with: $0.mapError { $0 as any Error })
                }
            }
        } onCancel: {
            call.cancel()
        }
    }

    /// One unary call without a task: `done` runs on a gRPC thread (or at once,
    /// if the call cannot start).
    public func start(
        method: String, request: [UInt8], timeout: Duration?, metadata: [(String, String)], done: @escaping CallCompletion
    ) -> any StartedCall {
        let call = ClientCall()
        call.start(channel: raw, method: method, request: request, timeout: timeout, metadata: metadata) { result in
            done(result)
            // Not on this gRPC thread: the last reference to a channel must not be dropped here.
            DispatchQueue.global().async { call.release() }
        }
        return call
    }
}

/// One client call's state, shared by the caller (who may cancel it) and the
/// bridge's completion callback (which holds a +1 reference while the call runs).
///
/// `done` may run on any thread, even inside `sg_client_call_start`, and the owner
/// may call `release` as soon as `done` ran, possibly before `start` has stored the
/// handle: `released` makes `start` drop the handle itself then. `release` must not
/// run on a gRPC thread (it may free the last reference to the channel).
private final class ClientCall: StartedCall, @unchecked Sendable {
    // @unchecked: `handle`, `cancelRequested` and `released` are guarded by `lock`;
    // `done` is written once before the call starts and taken once by `finish`.
    private let lock = Mutex(())
    private var handle: OpaquePointer?
    private var cancelRequested = false
    private var released = false
    private var done: CallCompletion?

    init() { BridgeDiagnostics.swiftClientCalls.add(1, ordering: .relaxed) }
    deinit { BridgeDiagnostics.swiftClientCalls.subtract(1, ordering: .relaxed) }

    func start(
        channel: OpaquePointer, method: String, request: [UInt8],
        timeout: Duration?, metadata: [(String, String)], done: @escaping CallCompletion
    ) {
        self.done = done
        if lock.withLock({ _ in cancelRequested }) {
            finish(.failure(ShoalError(.cancelled, "the call was cancelled before it started")))
            return
        }
        let timeoutMicros = timeout.map { max(0, $0.saturatingMicroseconds) } ?? -1
        let context = Unmanaged.passRetained(self).toOpaque()
        // No lock is held here: `done` may run inside this call.
        let started = withMetadata(metadata) { entries, count in
            request.withUnsafeBufferPointer { body in
                sg_client_call_start(channel, method, body.baseAddress, body.count, timeoutMicros,
                                     entries, count, clientDone, context)
            }
        }
        let (cancelNow, releaseNow) = lock.withLock { _ in
            if !released { handle = started }
            return (cancelRequested && !released, released)
        }
        if cancelNow, let started { sg_client_call_cancel(started) }
        if releaseNow, let started { sg_client_call_release(started) }
    }

    func cancel() {
        lock.withLock { _ in
            cancelRequested = true
            if let handle { sg_client_call_cancel(handle) }
        }
    }

    /// Drops the owner's reference to the bridge call (after `done`, or if it never started).
    func release() {
        let toRelease = lock.withLock { _ in
            released = true
            defer { handle = nil }
            return handle
        }
        if let toRelease { sg_client_call_release(toRelease) }
    }

    /// Delivers the outcome, once.
    fileprivate func finish(_ result: Result<[UInt8], ShoalError>) {
        let done = self.done
        self.done = nil
        done?(result)
    }
}

private func clientDone(
    _ context: UnsafeMutableRawPointer?, _ code: Int32, _ message: UnsafePointer<CChar>?, _ messageLength: Int,
    _ response: UnsafePointer<UInt8>?, _ responseLength: Int
) {
    let call = Unmanaged<ClientCall>.fromOpaque(context!).takeRetainedValue()
    if code == 0 {
        call.finish(.success(responseLength == 0 ? [] : Array(UnsafeBufferPointer(start: response, count: responseLength))))
    } else {
        call.finish(.failure(ShoalError(StatusCode(rawCode: code), bridgeString(message, messageLength))))
    }
}

/// Lays out metadata as C entries for the duration of `body`.
func withMetadata<R>(
    _ metadata: [(String, String)], _ body: (UnsafePointer<sg_metadata>?, Int) -> R
) -> R {
    if metadata.isEmpty { return body(nil, 0) }
    // Keys and values are copied into one buffer so the pointers stay valid together.
    var storage: [UInt8] = []
    var ranges: [(Range<Int>, Range<Int>)] = []
    for (key, value) in metadata {
        let k = storage.count
        storage.append(contentsOf: key.lowercased().utf8)
        let v = storage.count
        storage.append(contentsOf: value.utf8)
        ranges.append((k..<v, v..<storage.count))
    }
    return storage.withUnsafeBufferPointer { bytes in
        let base = UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
        let entries = ranges.map { key, value in
            sg_metadata(key: base + key.lowerBound, key_len: key.count, value: base + value.lowerBound, value_len: value.count)
        }
        return entries.withUnsafeBufferPointer { body($0.baseAddress, $0.count) }
    }
}
