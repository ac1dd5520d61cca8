/// The key of an equality posting list: a string or a bool. Strings from
/// plain values and from string-list elements share keys, since `eq("a")`
/// matches both. Numbers have no postings: `eq` on a number is a one-value
/// slice of the sorted numbers (so a high-cardinality double field costs no
/// hash entry per value).
enum EqualityKey: Hashable, Sendable {
    case string(String)
    case bool(Bool)

    /// Nil for numbers and string lists.
    init?(_ value: MetadataValue) {
        switch value {
        case .string(let s): self = .string(s)
        case .bool(let b): self = .bool(b)
        case .int, .double, .stringList: return nil
        }
    }
}

/// Everything `PayloadIndex` keeps for one field.
struct FieldIndex: Sendable {
    /// Ids that have the field, whatever its value.
    var present = IdSet()
    /// Ids per string or bool value (per element for string lists).
    var postings: [EqualityKey: IdSet] = [:]
    /// Numeric values with their ids, sorted.
    var numbers = SortedNumericList()

    /// Indexes `value` as `id`'s value of this field.
    mutating func insert(_ id: UInt32, _ value: MetadataValue) {
        present.insert(id)
        for key in Self.keys(of: value) {
            postings[key, default: IdSet()].insert(id)
        }
        if let n = NumericKey(value) {
            numbers.insert(NumericEntry(key: n, id: id))
        }
    }

    /// Undoes `insert(id, value)`.
    mutating func remove(_ id: UInt32, _ value: MetadataValue) {
        present.remove(id)
        for key in Self.keys(of: value) {
            postings[key]?.remove(id)
            if postings[key]?.isEmpty == true { postings[key] = nil }
        }
        if let n = NumericKey(value) {
            numbers.remove(NumericEntry(key: n, id: id))
        }
    }

    /// The posting keys a stored value appears under (duplicates in a list
    /// are harmless: inserting an id twice is a no-op).
    private static func keys(of value: MetadataValue) -> [EqualityKey] {
        if case .stringList(let list) = value { return list.map { .string($0) } }
        return EqualityKey(value).map { [$0] } ?? []
    }

    func _checkInvariants() {
        present._checkInvariants()
        numbers._checkInvariants()
        for (_, ids) in postings {
            precondition(!ids.isEmpty, "FieldIndex: empty posting list kept")
            ids._checkInvariants()
        }
    }

    /// Same ids everywhere as `other` (representations may differ).
    func sameContents(as other: FieldIndex) -> Bool {
        guard present == other.present, postings == other.postings, numbers.count == other.numbers.count else {
            return false
        }
        var a: [UInt32] = []
        var b: [UInt32] = []
        numbers.forEachId(from: numbers.start, to: numbers.end) { a.append($0) }
        other.numbers.forEachId(from: other.numbers.start, to: other.numbers.end) { b.append($0) }
        return a == b
    }
}
