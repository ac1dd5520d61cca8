/// An in-memory index over the metadata of the live points of one shard
/// replica, keyed by dense internal ids: it answers a `Filter` with the exact
/// set of matching ids (`evaluate`) and guesses a match count cheaply
/// (`estimate`), so the replica can choose between an exact scan of the
/// matches and a filtered graph walk.
///
/// Per field it keeps: the ids that have the field (`exists`), equality
/// postings for string and bool values (and each element of a string list),
/// and the numeric values sorted (ints and doubles in one exact order, so
/// `3` and `3.0` are neighbours) for ranges and numeric `eq`. It also keeps each point's metadata, to un-index it on
/// replace or removal and to test few candidates directly.
///
/// Not thread-safe: a class with mutable state and no lock. The owner (the
/// replica, an actor or a lock holder) serializes every call; results
/// (`IdSet`) are values and may be sent anywhere.
///
/// The universe: the live ids are exactly those passed to `set` and not
/// removed since, with or without metadata. Every live point must be `set`
/// (with `[:]` if it has no metadata), or `not`, `ne` and `not_in` cannot
/// select it.
public final class PayloadIndex {
    /// Metadata of id `i` at index `i`; nil for ids never set or removed.
    private var metadataById: [Metadata?] = []
    private(set) var live = IdSet()
    var fields: [String: FieldIndex] = [:]

    public init() {}

    /// Number of live points.
    public var count: Int { live.count }

    /// The live ids.
    public var liveIds: IdSet { live }

    /// Whether `id` is live.
    public func contains(_ id: UInt32) -> Bool { live.contains(id) }

    /// The metadata `id` was last `set` with; nil if it is not live.
    public func metadata(of id: UInt32) -> Metadata? {
        Int(id) < metadataById.count ? metadataById[Int(id)] : nil
    }

    /// Makes `id` live with `metadata`, replacing whatever it had. Only fields
    /// whose value changed are re-indexed. Expects validated metadata, though
    /// any value is indexed consistently with `Filter.matches` (a NaN double
    /// is present for `exists` and matches nothing else).
    public func set(_ id: UInt32, _ metadata: Metadata) {
        let slot = Int(id)
        if slot >= metadataById.count {
            metadataById.append(contentsOf: repeatElement(nil, count: slot + 1 - metadataById.count))
        }
        let old = metadataById[slot] ?? [:]
        for (field, value) in old where metadata[field] != value {
            unindex(id, field: field, value: value)
        }
        for (field, value) in metadata where old[field] != value {
            fields[field, default: FieldIndex()].insert(id, value)
        }
        metadataById[slot] = metadata
        live.insert(id)
    }

    /// Makes `id` not live and forgets its metadata; does nothing if it was
    /// not live.
    public func remove(_ id: UInt32) {
        guard let old = metadata(of: id) else { return }
        for (field, value) in old {
            unindex(id, field: field, value: value)
        }
        metadataById[Int(id)] = nil
        live.remove(id)
    }

    private func unindex(_ id: UInt32, field: String, value: MetadataValue) {
        fields[field]?.remove(id, value)
        if fields[field]?.present.isEmpty == true {
            fields[field] = nil
        }
    }

    /// Metadata of a live id, for direct tests of few candidates.
    func liveMetadata(_ id: UInt32) -> Metadata {
        metadataById[Int(id)] ?? [:]
    }

    /// Rebuilds every structure from the stored metadata and compares; traps
    /// on a difference. O(total indexed values): for tests and debugging.
    public func _checkInvariants() {
        live._checkInvariants()
        var expected: [String: FieldIndex] = [:]
        for (i, m) in metadataById.enumerated() {
            precondition((m != nil) == live.contains(UInt32(i)), "PayloadIndex: live set out of step")
            for (field, value) in m ?? [:] {
                expected[field, default: FieldIndex()].insert(UInt32(i), value)
            }
        }
        precondition(Set(expected.keys) == Set(fields.keys), "PayloadIndex: field set differs")
        for (field, index) in fields {
            index._checkInvariants()
            precondition(index.sameContents(as: expected[field]!), "PayloadIndex: field \(field) differs from a rebuild")
        }
    }
}
