/// An in-memory index over the metadata of the live points of one shard
/// replica, keyed by dense internal ids: it answers a `Filter` with the exact
/// set of matching ids (`evaluate`) and guesses a match count cheaply
/// (`estimate`), so the replica can choose between an exact scan of the
/// matches and a filtered graph walk.
///
/// Per field it keeps: the ids that have the field (`exists`), equality
/// postings for string and bool values (and each element of a string list),
/// and the numeric values sorted (ints and doubles in one exact order, so
/// `3` and `3.0` are neighbours) for ranges and numeric `eq`. It also keeps
/// each point's values compactly (interned field names), to un-index them on
/// replace or removal, to test a few candidates directly, and to answer
/// `metadata(of:)`.
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
    /// One field's value in a point's compact metadata.
    struct FieldValue: Sendable {
        /// The field name's ordinal in `fieldNames`.
        var field: UInt32
        var value: MetadataValue
    }

    /// Interned field names (ordinal → name, name → ordinal); never shrinks.
    private var fieldNames: [String] = []
    private var ordinals: [String: UInt32] = [:]
    /// The values of id `i` at index `i`, sorted by field ordinal; empty for
    /// ids that are not live. (About half the memory of a `Metadata` per point.)
    private var valuesById: [[FieldValue]] = []
    private(set) var live = IdSet()
    var fields: [String: FieldIndex] = [:]

    public init() {}

    /// Number of live points.
    public var count: Int { live.count }

    /// The live ids.
    public var liveIds: IdSet { live }

    /// Whether `id` is live.
    public func contains(_ id: UInt32) -> Bool { live.contains(id) }

    /// Distinct field names interned: every name `set` has seen (never shrinks).
    public var fieldNameCount: Int { fieldNames.count }

    /// Whether `name` is one of the interned field names.
    public func hasFieldName(_ name: String) -> Bool { ordinals[name] != nil }

    /// The metadata `id` was last `set` with; nil if it is not live.
    public func metadata(of id: UInt32) -> Metadata? {
        guard live.contains(id) else { return nil }
        return Metadata(uniqueKeysWithValues: valuesById[Int(id)].map { (fieldNames[Int($0.field)], $0.value) })
    }

    /// Makes `id` live with `metadata`, replacing whatever it had. Only fields
    /// whose value changed are re-indexed. Expects validated metadata, though
    /// any value is indexed consistently with `Filter.matches` (a NaN double
    /// is present for `exists` and matches nothing else).
    public func set(_ id: UInt32, _ metadata: Metadata) {
        let slot = Int(id)
        if slot >= valuesById.count {
            valuesById.append(contentsOf: repeatElement([], count: slot + 1 - valuesById.count))
        }
        let old = valuesById[slot]
        var new = metadata.map { FieldValue(field: intern($0.key), value: $0.value) }
        new.sort { $0.field < $1.field }
        for o in old where Self.value(of: o.field, in: new) != o.value {
            unindex(id, field: fieldNames[Int(o.field)], value: o.value)
        }
        for n in new where Self.value(of: n.field, in: old) != n.value {
            fields[fieldNames[Int(n.field)], default: FieldIndex()].insert(id, n.value)
        }
        valuesById[slot] = new
        live.insert(id)
    }

    /// Makes `id` not live and forgets its metadata; does nothing if it was
    /// not live.
    public func remove(_ id: UInt32) {
        guard live.contains(id) else { return }
        for o in valuesById[Int(id)] {
            unindex(id, field: fieldNames[Int(o.field)], value: o.value)
        }
        valuesById[Int(id)] = []
        live.remove(id)
    }

    private func intern(_ name: String) -> UInt32 {
        if let o = ordinals[name] { return o }
        let o = UInt32(fieldNames.count)
        fieldNames.append(name)
        ordinals[name] = o
        return o
    }

    private func unindex(_ id: UInt32, field: String, value: MetadataValue) {
        fields[field]?.remove(id, value)
        if fields[field]?.present.isEmpty == true {
            fields[field] = nil
        }
    }

    /// The value of field ordinal `field` in `values` (sorted by ordinal).
    private static func value(of field: UInt32, in values: [FieldValue]) -> MetadataValue? {
        let i = values.partitionPoint { $0.field < field }
        return i < values.count && values[i].field == field ? values[i].value : nil
    }

    /// Whether live `id`'s metadata matches `filter`, by `Filter.matches`:
    /// the direct test `evaluate` uses for a few candidates.
    public func liveMatches(_ id: UInt32, _ filter: Filter) -> Bool {
        let values = valuesById[Int(id)]
        return filter.matches { name in
            ordinals[name].flatMap { Self.value(of: $0, in: values) }
        }
    }

    /// Rebuilds every structure from the stored metadata and compares; traps
    /// on a difference. O(total indexed values): for tests and debugging.
    public func _checkInvariants() {
        live._checkInvariants()
        var expected: [String: FieldIndex] = [:]
        for (i, values) in valuesById.enumerated() {
            precondition(values.isEmpty || live.contains(UInt32(i)), "PayloadIndex: values kept for a removed id")
            for (a, b) in zip(values, values.dropFirst()) {
                precondition(a.field < b.field, "PayloadIndex: values not sorted by field")
            }
            for v in values {
                expected[fieldNames[Int(v.field)], default: FieldIndex()].insert(UInt32(i), v.value)
            }
        }
        precondition(live.isEmpty || Int(live.maxId) < valuesById.count, "PayloadIndex: live id without a slot")
        precondition(Set(expected.keys) == Set(fields.keys), "PayloadIndex: field set differs")
        for (field, index) in fields {
            index._checkInvariants()
            precondition(index.sameContents(as: expected[field]!), "PayloadIndex: field \(field) differs from a rebuild")
        }
    }
}
