import VectorCore

/// An error returned by RocksDB (or by this module's checks before calling it).
///
/// RocksDB's C API reports failure as a `malloc`ed message string whose prefix
/// is the name of the C++ `Status` code (`"IO error: ..."`, `"Corruption: ..."`).
/// ``StorageError/init(rocksDBMessage:)`` is the one place that prefix is parsed;
/// callers switch over ``kind``, never over the message text.
public struct StorageError: Error, Sendable, Equatable, CustomStringConvertible, StatusConvertible {
    /// The RocksDB `Status::Code` the error carries.
    public enum Kind: String, Sendable, CaseIterable {
        case notFound
        case corruption
        case notSupported
        case invalidArgument
        case ioError
        case mergeInProgress
        case incomplete
        case shutdownInProgress
        case timedOut
        case aborted
        case busy
        case expired
        case tryAgain
        case compactionTooLarge
        case columnFamilyDropped
        /// A message without a recognised prefix.
        case other
    }

    public var kind: Kind
    /// The full message as RocksDB produced it (prefix included), or this module's own text.
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// Classifies a RocksDB status message by its code-name prefix and keeps the whole message.
    public init(rocksDBMessage message: String) {
        self.kind = Self.prefixes.first { message.hasPrefix($0.prefix) }?.kind ?? .other
        self.message = message
    }

    /// `Status::ToString()` prefixes in RocksDB 7.8 (`util/status.cc`), checked against the
    /// strings in Debian's librocksdb.so.7.8.
    private static let prefixes: [(prefix: String, kind: Kind)] = [
        ("NotFound:", .notFound),
        ("Corruption:", .corruption),
        ("Not implemented:", .notSupported),
        ("Invalid argument:", .invalidArgument),
        ("IO error:", .ioError),
        ("Merge in progress:", .mergeInProgress),
        ("Result incomplete:", .incomplete),
        ("Shutdown in progress:", .shutdownInProgress),
        ("Operation timed out:", .timedOut),
        ("Operation aborted:", .aborted),
        ("Resource busy:", .busy),
        ("Operation expired:", .expired),
        ("Operation failed. Try again.:", .tryAgain),
        ("Compaction too large:", .compactionTooLarge),
        ("Column family dropped:", .columnFamilyDropped),
    ]

    public var description: String { "storage \(kind.rawValue): \(message)" }

    /// Whether a write failing with this error means RocksDB takes no more writes: it
    /// sets a background error and turns read-only after a failed WAL write, flush or
    /// compaction (no space, an I/O error) or on corruption, and answers every later
    /// write with that error until it recovers or is reopened. Reads go on.
    public var stopsWrites: Bool {
        switch kind {
        case .ioError, .corruption: true
        default: false
        }
    }

    /// What a call failing with this error answers: `statusCode` and the message.
    public var status: ShoalError { ShoalError(statusCode, "storage: \(message)") }

    /// The gRPC status a request failing with this error should carry.
    public var statusCode: StatusCode {
        switch kind {
        case .notFound: .notFound
        case .corruption: .dataLoss
        case .notSupported: .unimplemented
        case .invalidArgument: .invalidArgument
        case .busy, .tryAgain, .shutdownInProgress, .ioError: .unavailable
        case .timedOut, .expired: .deadlineExceeded
        case .aborted: .aborted
        case .mergeInProgress, .incomplete, .compactionTooLarge, .columnFamilyDropped, .other: .internal
        }
    }
}
