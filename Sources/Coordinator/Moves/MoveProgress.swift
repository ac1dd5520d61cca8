import Synchronization

/// What the leader knows about its running moves that is not worth persisting:
/// copy progress. Lost on restart, which is safe: a resumed move copies afresh.
/// (Writes a target missed are in the metadata: `MoveRecord.missedWrites`.)
public final class MoveProgress: Sendable {
    private struct Entry {
        var copied: UInt64 = 0
        var total: UInt64 = 0
        /// The most records any copy pass got through: grows only when a pass gets
        /// further than every earlier one.
        var furthest: UInt64 = 0
    }

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    func report(_ move: String, copied: UInt64, total: UInt64) {
        entries.withLock { entries in
            entries[move, default: Entry()].copied = copied
            entries[move, default: Entry()].total = total
            entries[move, default: Entry()].furthest = max(entries[move]?.furthest ?? 0, copied)
        }
    }

    func furthestCopied(_ move: String) -> UInt64 { entries.withLock { $0[move]?.furthest ?? 0 } }

    /// Records copied and the estimated total of the current copy pass, if one ran.
    func copied(_ move: String) -> (copied: UInt64, total: UInt64)? {
        entries.withLock { $0[move].map { ($0.copied, $0.total) } }
    }

    func forget(_ move: String) { _ = entries.withLock { $0.removeValue(forKey: move) } }
}
