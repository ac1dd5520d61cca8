/// A set of dense internal point ids (`UInt32`), cheap at every size: a
/// sorted array while the set is sparse, a bitmap once it is dense relative
/// to its largest id. Results of filter evaluation, and the postings of a
/// `PayloadIndex`.
///
/// - `contains` is O(1) on a bitmap and O(log n) on a sorted array; for a
///   hot predicate inside a graph walk, `bitmapped()` forces O(1).
/// - Iteration is in ascending id order, both ways.
/// - Equality compares the ids, not the representation.
///
/// Representation rule (with hysteresis, so alternating inserts and removes do
/// not thrash): a sorted array becomes a bitmap when it has more than 64 ids and
/// more than 4 per 64-bit word its largest id needs (the bitmap is then at most
/// half the array's size); a bitmap becomes a sorted array when it has fewer
/// than 32 ids or fewer ids than words.
public struct IdSet: Sendable {
    enum Storage: Sendable {
        /// Strictly ascending.
        case sorted([UInt32])
        case bitmap(IdBitmap)
    }

    var storage: Storage

    init(storage: Storage) {
        self.storage = storage
    }

    /// The empty set.
    public init() {
        storage = .sorted([])
    }

    /// The ids of `ids`, in any order, duplicates allowed.
    public init<S: Sequence<UInt32>>(_ ids: S) {
        var array = Array(ids)
        array.sort()
        var unique = 0
        for i in array.indices where i == 0 || array[i] != array[unique - 1] {
            array[unique] = array[i]
            unique += 1
        }
        array.removeLast(array.count - unique)
        self.init(sortedUnique: array)
    }

    /// `ids` must be strictly ascending (checked in debug builds).
    init(sortedUnique ids: [UInt32]) {
        storage = .sorted(ids)
        normalize()
    }

    /// From a bitmap, converted to a sorted array if that is smaller.
    init(bitmap: IdBitmap) {
        storage = .bitmap(bitmap)
        normalize()
    }

    public static var empty: IdSet { IdSet() }

    public var count: Int {
        switch storage {
        case .sorted(let a): a.count
        case .bitmap(let b): b.count
        }
    }

    public var isEmpty: Bool { count == 0 }

    /// Whether the bitmap representation is in use (O(1) `contains`).
    public var isBitmap: Bool {
        if case .bitmap = storage { true } else { false }
    }

    /// O(1) on a bitmap, O(log n) on a sorted array.
    @inline(__always)
    public func contains(_ id: UInt32) -> Bool {
        switch storage {
        case .sorted(let a): a.sortedContains(id)
        case .bitmap(let b): b.contains(id)
        }
    }

    /// The same ids stored as a bitmap, for O(1) `contains` in a hot loop (a
    /// graph walk). Costs one bit per id up to the largest.
    public func bitmapped() -> IdSet {
        guard case .sorted(let a) = storage else { return self }
        var b = IdBitmap(capacity: Int(a.last ?? 0) + 1)
        for id in a { b.insert(id) }
        return IdSet(storage: .bitmap(b))
    }

    /// The ids in ascending order.
    public var sortedIds: [UInt32] {
        switch storage {
        case .sorted(let a): a
        case .bitmap(let b): b.sortedIds()
        }
    }

    /// Adds `id`; returns false if it was present. Appending ids in ascending
    /// order is O(1) amortized; inserting into the middle of a sorted array
    /// moves its tail.
    @discardableResult
    public mutating func insert(_ id: UInt32) -> Bool {
        switch storage {
        case .bitmap(var b):
            storage = .sorted([])  // drop the second reference so `b` is uniquely owned
            defer { storage = .bitmap(b) }
            return b.insert(id)
        case .sorted(var a):
            storage = .sorted([])
            let inserted: Bool
            if a.last.map({ $0 < id }) ?? true {
                a.append(id)
                inserted = true
            } else {
                let i = a.sortedLowerBound(id)
                inserted = a[i] != id
                if inserted { a.insert(id, at: i) }
            }
            storage = .sorted(a)
            if inserted { normalize() }
            return inserted
        }
    }

    /// Removes `id`; returns false if it was absent.
    @discardableResult
    public mutating func remove(_ id: UInt32) -> Bool {
        let removed: Bool
        switch storage {
        case .bitmap(var b):
            storage = .sorted([])
            removed = b.remove(id)
            storage = .bitmap(b)
        case .sorted(var a):
            storage = .sorted([])
            let i = a.sortedLowerBound(id)
            removed = i < a.count && a[i] == id
            if removed { a.remove(at: i) }
            storage = .sorted(a)
        }
        if removed { normalize() }
        return removed
    }

    /// Applies the representation rule in the type's documentation.
    mutating func normalize() {
        switch storage {
        case .sorted(let a):
            guard a.count > 64, let last = a.last, a.count > 4 * (Int(last >> 6) + 1) else { return }
            var b = IdBitmap(capacity: Int(last) + 1)
            for id in a { b.insert(id) }
            storage = .bitmap(b)
        case .bitmap(let b):
            guard b.count < 32 || b.count < b.words.count else { return }
            storage = .sorted(b.sortedIds())
        }
    }

    /// Checks the representation's invariants; traps on a violation.
    public func _checkInvariants() {
        switch storage {
        case .sorted(let a):
            for i in a.indices.dropFirst() {
                precondition(a[i - 1] < a[i], "IdSet: sorted array not strictly ascending")
            }
        case .bitmap(let b):
            b._checkInvariants()
        }
    }
}
