import Logging
import Synchronization

/// Where the cluster state is kept: one file for the embedded `shoal serve`
/// (`FileMetadataStore`), etcd for a cluster of coordinators (`EtcdMetadataStore`).
///
/// Contract:
/// - a stored state has a `revision` that grows with every store;
/// - `store` is a compare-and-swap: it stores `next` only if the stored state is
///   still the one at `revision` (the one `next` was computed from), and answers
///   nil otherwise (someone else changed it: reload, recompute, try again);
/// - with a `term`, `store` also requires that term to still lead the cluster:
///   FAILED_PRECONDITION (nothing stored) once another leader was elected, so a
///   deposed leader changes nothing;
/// - an unreachable store is UNAVAILABLE, never a guess.
public protocol MetadataStore: Sendable {
    /// The newest stored state, nil if none was ever stored.
    func load() async throws -> StoredState?
    /// Stores `next`, computed from `previous` as stored at `revision`; the new
    /// revision, or nil on a conflict.
    func store(_ next: ClusterState, previous: ClusterState, over revision: Int64, term: Int64?) async throws -> Int64?
}

/// A state and the revision it was stored at (0: never stored).
public struct StoredState: Sendable, Equatable {
    public var state: ClusterState
    public var revision: Int64

    public init(state: ClusterState, revision: Int64) {
        self.state = state
        self.revision = revision
    }
}

/// The state in one file of a directory (`ClusterStateStore`), for a single
/// coordinator process. The revision is the state's epoch; conflicts come only
/// from two commits of this process racing, and the cached last state settles them.
public final class FileMetadataStore: MetadataStore {
    private let file: ClusterStateStore
    private let last: Mutex<StoredState?>

    /// The store in `directory`; loads what it holds (`ClusterStateStoreError.corrupt`
    /// for a damaged file: the coordinator must not start from it).
    public init(directory: String, logger: Logger) throws {
        file = try ClusterStateStore(directory: directory, logger: logger)
        last = Mutex(try file.load().map { StoredState(state: $0, revision: Int64($0.epoch)) })
    }

    public func load() async throws -> StoredState? { loadedAtStart }

    /// What the store holds now (its file was read once, at init).
    public var loadedAtStart: StoredState? { last.withLock { $0 } }

    public func store(_ next: ClusterState, previous: ClusterState, over revision: Int64, term: Int64?) async throws -> Int64? {
        try last.withLock { (last: inout StoredState?) throws -> Int64? in
            guard (last?.revision ?? 0) == revision else { return nil }
            try file.save(next)
            last = StoredState(state: next, revision: Int64(next.epoch))
            return Int64(next.epoch)
        }
    }
}
