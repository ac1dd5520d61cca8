/// gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
/// Every error Shoal returns to a client carries one of these.
public enum StatusCode: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case ok = 0
    case cancelled = 1
    case unknown = 2
    case invalidArgument = 3
    case deadlineExceeded = 4
    case notFound = 5
    case alreadyExists = 6
    case permissionDenied = 7
    case resourceExhausted = 8
    case failedPrecondition = 9
    case aborted = 10
    case outOfRange = 11
    case unimplemented = 12
    case `internal` = 13
    case unavailable = 14
    case dataLoss = 15
    case unauthenticated = 16

    /// Maps any raw code; values outside the gRPC range become `.unknown`.
    public init(rawCode: Int32) {
        self = StatusCode(rawValue: rawCode) ?? .unknown
    }

    public var description: String {
        switch self {
        case .ok: "OK"
        case .cancelled: "CANCELLED"
        case .unknown: "UNKNOWN"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .notFound: "NOT_FOUND"
        case .alreadyExists: "ALREADY_EXISTS"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .failedPrecondition: "FAILED_PRECONDITION"
        case .aborted: "ABORTED"
        case .outOfRange: "OUT_OF_RANGE"
        case .unimplemented: "UNIMPLEMENTED"
        case .internal: "INTERNAL"
        case .unavailable: "UNAVAILABLE"
        case .dataLoss: "DATA_LOSS"
        case .unauthenticated: "UNAUTHENTICATED"
        }
    }
}

/// An error with a gRPC status code and a message a person can act on.
/// Handlers throw it to fail a call with that status; clients receive it.
public struct ShoalError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String

    public init(_ code: StatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    public static func invalidArgument(_ message: String) -> ShoalError { ShoalError(.invalidArgument, message) }
    public static func notFound(_ message: String) -> ShoalError { ShoalError(.notFound, message) }
    public static func unavailable(_ message: String) -> ShoalError { ShoalError(.unavailable, message) }
    public static func `internal`(_ message: String) -> ShoalError { ShoalError(.internal, message) }
    public static func failedPrecondition(_ message: String) -> ShoalError { ShoalError(.failedPrecondition, message) }
}

/// An error from a layer below the handlers (storage) that knows the status a call
/// failing with it should carry; the RPC layer turns it into that `ShoalError`.
public protocol StatusConvertible: Error {
    var status: ShoalError { get }
}
