import Logging
import Synchronization

/// Persists the `ClusterState` in one file of a directory, replaced atomically.
///
/// Contract:
/// - `save(_:)` returns only once the new state is durable: it writes a
///   temporary file, fsyncs it, renames it over the state file and fsyncs
///   the directory. A crash at any point leaves either the old or the new
///   state, never a mix;
/// - `load()` returns the last saved state, nil if none was ever saved, and
///   throws `.corrupt` if the file is damaged: it never silently starts an
///   empty cluster over a damaged one. A leftover temporary file (a save that
///   crashed before its rename) is ignored and removed;
/// - `save(_:)` refuses a state whose epoch is lower than the last one loaded
///   or saved through this store (`.staleEpoch`): a slow writer cannot roll
///   the cluster back.
///
/// Thread-safe: saves are serialized.
public final class ClusterStateStore: Sendable {
    public static let fileName = "cluster-state"

    /// The directory that holds the state file.
    public let directory: String
    /// The state file.
    public var statePath: String { directory + "/" + Self.fileName }
    /// Where a save writes before renaming.
    public var tempPath: String { statePath + ".tmp" }

    private let logger: Logger
    /// The highest epoch loaded or saved; nil before the first.
    private let lastEpoch = Mutex<UInt64?>(nil)

    /// A store in `directory`, created if missing.
    public init(directory: String, logger: Logger) throws(ClusterStateStoreError) {
        self.directory = directory
        self.logger = logger
        try FileIO.makeDirectory(directory)
    }

    /// The persisted state, or nil if none was ever saved.
    public func load() throws(ClusterStateStoreError) -> ClusterState? {
        if FileIO.exists(tempPath) {
            logger.warning("removing a cluster state save that did not finish", metadata: ["path": "\(tempPath)"])
            try FileIO.removeIfExists(tempPath)
        }
        guard let bytes = try FileIO.readIfExists(statePath) else { return nil }
        let state = try ClusterStateFile.decode(bytes, path: statePath)
        lastEpoch.withLock { $0 = max($0 ?? 0, state.epoch) }
        logger.info("loaded cluster state", metadata: ["epoch": "\(state.epoch)", "nodes": "\(state.nodes.count)",
                                                       "collections": "\(state.collections.count)"])
        return state
    }

    /// Makes `state` the persisted state, durably (see the contract above).
    public func save(_ state: ClusterState) throws(ClusterStateStoreError) {
        let bytes = try ClusterStateFile.encode(state)
        try lastEpoch.withLock { (last: inout UInt64?) throws(ClusterStateStoreError) in
            if let last, state.epoch < last { throw .staleEpoch(saved: last, given: state.epoch) }
            try FileIO.writeAndSync(tempPath, bytes)
            try FileIO.rename(tempPath, statePath)
            try FileIO.syncDirectory(directory)
            last = state.epoch
        }
    }
}

/// Why a cluster state could not be loaded or saved.
public enum ClusterStateStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The state file is damaged; the coordinator must not start from it.
    case corrupt(path: String, reason: String)
    /// A system call failed.
    case io(path: String, operation: String, errno: Int32)
    /// A save of a state older than one already saved.
    case staleEpoch(saved: UInt64, given: UInt64)

    public var description: String {
        switch self {
        case .corrupt(let path, let reason):
            "cluster state file \(path) is corrupt: \(reason). Refusing to start from it; "
                + "restore it from a backup (or move it away to start an empty cluster on purpose)"
        case .io(let path, let operation, let code):
            "cluster state: \(operation) \(path) failed: \(FileIO.describe(errno: code)) (errno \(code))"
        case .staleEpoch(let saved, let given):
            "cluster state: refusing to save epoch \(given) over epoch \(saved)"
        }
    }
}
