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

extension IdSet: Sequence {
    /// Ascending ids.
    public struct Iterator: IteratorProtocol {
        private let storage: Storage
        private var index = 0
        private var bits: UInt64 = 0

        init(_ storage: Storage) { self.storage = storage }

        public mutating func next() -> UInt32? {
            switch storage {
            case .sorted(let a):
                guard index < a.count else { return nil }
                defer { index += 1 }
                return a[index]
            case .bitmap(let b):
                while bits == 0 {
                    guard index < b.words.count else { return nil }
                    bits = b.words[index]
                    index += 1
                }
                let id = UInt32(index - 1) << 6 | UInt32(bits.trailingZeroBitCount)
                bits &= bits - 1
                return id
            }
        }
    }

    public func makeIterator() -> Iterator { Iterator(storage) }

    public var underestimatedCount: Int { count }

    /// Calls `body` with every id in ascending order (faster than the iterator).
    public func forEach(_ body: (UInt32) throws -> Void) rethrows {
        switch storage {
        case .sorted(let a):
            for id in a { try body(id) }
        case .bitmap(let b):
            for (w, word) in b.words.enumerated() where word != 0 {
                var bits = word
                while bits != 0 {
                    try body(UInt32(w) << 6 | UInt32(bits.trailingZeroBitCount))
                    bits &= bits - 1
                }
            }
        }
    }
}

extension IdSet: Equatable {
    public static func == (a: IdSet, b: IdSet) -> Bool {
        a.count == b.count && a.elementsEqual(b)
    }
}

extension IdSet: CustomStringConvertible {
    public var description: String {
        let head = prefix(16).map(String.init).joined(separator: ", ")
        return "IdSet(\(count): [\(head)\(count > 16 ? ", …" : "")])"
    }
}

extension Array where Element == UInt32 {
    /// First index whose element is not less than `id` (`count` if none).
    /// The array is sorted ascending.
    func sortedLowerBound(_ id: UInt32, from start: Int = 0) -> Int {
        var lo = start
        var hi = count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if self[mid] < id { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func sortedContains(_ id: UInt32) -> Bool {
        let i = sortedLowerBound(id)
        return i < count && self[i] == id
    }
}
