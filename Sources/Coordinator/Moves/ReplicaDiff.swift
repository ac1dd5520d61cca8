import VectorCore

/// What one replica holds for one id, as `Shard.Get` with tombstones reports it.
public enum RecordState: Sendable, Hashable {
    case absent
    /// A tombstone left by the delete with this version.
    case deleted(UInt64)
    /// A live point written with this version.
    case live(UInt64)

    /// The version of a live point; nil for a tombstone or no record (the two are
    /// equal to a comparison: tombstones are collected at different times).
    public var liveVersion: UInt64? {
        if case .live(let version) = self { return version }
        return nil
    }

    /// The version of the record; 0 when there is none.
    public var version: UInt64 {
        switch self {
        case .absent: 0
        case .deleted(let version), .live(let version): version
        }
    }
}

/// A live point of a replica, as a verification keeps it: its id and version only.
public struct LiveEntry: Sendable, Hashable {
    public let id: String
    public let version: UInt64

    public init(id: String, version: UInt64) {
        self.id = id
        self.version = version
    }
}

/// The comparison and repair rule of `shoal admin verify` / `repair`, pure.
///
/// Replicas are compared by their LIVE points: the same ids at the same versions.
/// A tombstone on one replica and no record on another are equal; a live point
/// against a tombstone, against nothing, or at another version is a difference.
/// Repair is last writer wins: the record with the highest version among the
/// replicas goes to every replica that does not hold that very record.
public enum ReplicaDiff {
    /// Whether the replicas' states of one id agree (every live version equal, a
    /// tombstone counting as no record).
    public static func agree(_ states: [RecordState]) -> Bool {
        guard let first = states.first else { return true }
        return states.allSatisfy { $0.liveVersion == first.liveVersion }
    }

    /// The index of the winning state: the highest version; at equal versions a
    /// tombstone wins (a delete is never undone by a tie), then the first replica.
    /// Nil when no replica holds a record.
    public static func winner(_ states: [RecordState]) -> Int? {
        var best: Int?
        for (i, state) in states.enumerated() where state != .absent {
            guard let b = best else { best = i; continue }
            let (v, w) = (state.version, states[b].version)
            if v > w || (v == w && state.liveVersion == nil && states[b].liveVersion != nil) { best = i }
        }
        return best
    }

    /// What repairing one id does: the replica holding the winning record and the
    /// replicas to write it to (all that do not hold exactly it). Nil when the
    /// states already agree.
    public static func repair(_ states: [RecordState]) -> (source: Int, targets: [Int])? {
        guard !agree(states), let source = winner(states) else { return nil }
        return (source, states.indices.filter { states[$0] != states[source] })
    }

    /// The ids on which replicas' live points differ, in UTF-8 byte order. Each
    /// list must be sorted by id in UTF-8 byte order with no id twice
    /// (`sortedByID`). One merge walk over all lists.
    public static func differingIDs(_ replicas: [[LiveEntry]]) -> [String] {
        var cursors = Array(repeating: 0, count: replicas.count)
        var differing: [String] = []
        while true {
            var next: String?
            for (r, list) in replicas.enumerated() where cursors[r] < list.count {
                let id = list[cursors[r]].id
                if next.map({ id.utf8Precedes($0) }) ?? true { next = id }
            }
            guard let id = next else { return differing }
            var versions: [UInt64?] = []
            for (r, list) in replicas.enumerated() {
                if cursors[r] < list.count, UTF8Key(list[cursors[r]].id) == UTF8Key(id) {
                    versions.append(list[cursors[r]].version)
                    cursors[r] += 1
                } else {
                    versions.append(nil)
                }
            }
            if Set(versions).count > 1 { differing.append(id) }
        }
    }

    /// A replica's sorted live points with the ids in `reread` replaced by what was
    /// read again (a tombstone or no record: not live). Sorted by id bytes.
    public static func settled(_ sorted: [LiveEntry], reread: [UTF8Key: RecordState]) -> [LiveEntry] {
        guard !reread.isEmpty else { return sorted }
        var kept = sorted.filter { reread[UTF8Key($0.id)] == nil }
        for (key, state) in reread {
            if let version = state.liveVersion { kept.append(LiveEntry(id: key.string, version: version)) }
        }
        return sortedByID(kept)
    }

    /// `entries` in UTF-8 byte order of their ids.
    public static func sortedByID(_ entries: [LiveEntry]) -> [LiveEntry] {
        entries.sorted { $0.id.utf8Precedes($1.id) }
    }

    /// FNV-1a 64 over sorted live points: per point the id's UTF-8 length (4 bytes,
    /// little endian), its bytes, and the version (8 bytes, little endian).
    public static func digest(_ sorted: [LiveEntry]) -> UInt64 {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(sorted.reduce(0) { $0 + 12 + $1.id.utf8.count })
        for entry in sorted {
            withUnsafeBytes(of: UInt32(entry.id.utf8.count).littleEndian) { bytes += $0 }
            bytes += entry.id.utf8
            withUnsafeBytes(of: entry.version.littleEndian) { bytes += $0 }
        }
        return FNV1a64.hash(bytes)
    }

    /// `digest` as 16 lowercase hex digits.
    public static func hex(_ digest: UInt64) -> String {
        let digits = String(digest, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
