// Iteration, equality and rendering of IdSet; binary search on sorted id arrays.

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
