/// One key as etcd stores it. Keys are UTF-8 strings; values are bytes.
public struct EtcdKeyValue: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    /// The revision that created the key (0 for a key that does not exist).
    public var createRevision: Int64
    /// The revision of the key's last change.
    public var modRevision: Int64
    /// How many times the key changed since it was created (1 after the create).
    public var version: Int64
    /// The lease the key is attached to, 0 for none.
    public var lease: Int64

    public init(key: String, value: [UInt8], createRevision: Int64, modRevision: Int64, version: Int64, lease: Int64) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
        self.version = version
        self.lease = lease
    }
}

/// One condition of a transaction: a field of one key equals a value. A key that does
/// not exist has createRevision, modRevision and version 0, so
/// `.createRevision(key, equals: 0)` is "the key is absent".
public enum EtcdCompare: Sendable {
    case modRevision(String, equals: Int64)
    case createRevision(String, equals: Int64)
    case version(String, equals: Int64)
    case value(String, equals: [UInt8])
}

/// One operation of a transaction branch.
public enum EtcdOperation: Sendable {
    case put(String, [UInt8], lease: Int64 = 0)
    case delete(String)
    case deletePrefix(String)
    case get(String)
    case getPrefix(String)
}

/// What a transaction did.
public struct EtcdTxnResult: Sendable {
    /// Whether every comparison held (the `then` branch ran) or not (the `else` branch ran).
    public var succeeded: Bool
    /// The store's revision after the transaction.
    public var revision: Int64
    /// One entry per get/getPrefix op of the branch that ran, in order
    public var ranges: [[EtcdKeyValue]]

    public init(succeeded: Bool, revision: Int64, ranges: [[EtcdKeyValue]]) {
        self.succeeded = succeeded
        self.revision = revision
        self.ranges = ranges
    }
}

/// One change of one key. For a delete, `kv` holds the key and the deletion's revision
/// as `modRevision`; its value is empty.
public struct EtcdWatchEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case put, delete }
    public var kind: Kind
    public var kv: EtcdKeyValue

    public init(kind: Kind, kv: EtcdKeyValue) {
        self.kind = kind
        self.kv = kv
    }
}

/// The events of one revision (one put, delete or transaction), in etcd's order.
public struct EtcdWatchBatch: Sendable, Equatable {
    public var revision: Int64
    public var events: [EtcdWatchEvent]

    public init(revision: Int64, events: [EtcdWatchEvent]) {
        self.revision = revision
        self.events = events
    }
}

/// Errors of the etcd client that are not a plain call status (those are `ShoalError`).
public enum EtcdError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A watch asked for a revision etcd has compacted; the payload is the oldest
    /// revision etcd still has. Re-read the state, then watch from there.
    case compacted(Int64)
    /// etcd ended a watch for a reason other than compaction (its message).
    case watchCanceled(String)

    public var description: String {
        switch self {
        case .compacted(let revision): "etcd compacted the watched revisions; the oldest it still has is \(revision)"
        case .watchCanceled(let reason): "etcd cancelled the watch: \(reason)"
        }
    }
}
