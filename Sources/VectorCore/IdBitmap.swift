/// A plain bitmap over dense `UInt32` ids: bit `id` of `words` is set when
/// the id is in the set. The dense storage behind a large `IdSet`.
///
/// Invariant (`_checkInvariants`): `count` equals the number of set bits.
/// `words` may have trailing zero words.
struct IdBitmap: Sendable {
    private(set) var words: [UInt64]
    private(set) var count: Int

    /// An empty bitmap with room for ids `0..<capacity` without growing.
    init(capacity: Int) {
        words = Array(repeating: 0, count: Self.wordCount(for: capacity))
        count = 0
    }

    /// Takes `words` as they are; counts the set bits.
    init(words: [UInt64]) {
        self.words = words
        count = words.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    /// Words needed for ids `0..<capacity`.
    static func wordCount(for capacity: Int) -> Int { (capacity + 63) >> 6 }

    @inline(__always)
    func contains(_ id: UInt32) -> Bool {
        let w = Int(id >> 6)
        return w < words.count && words[w] & (1 << UInt64(id & 63)) != 0
    }

    /// Adds `id`, growing the words as needed; returns false if it was present.
    @discardableResult
    mutating func insert(_ id: UInt32) -> Bool {
        let w = Int(id >> 6)
        if w >= words.count {
            words.append(contentsOf: repeatElement(0, count: Swift.max(w + 1 - words.count, words.count / 2)))
        }
        let bit: UInt64 = 1 << UInt64(id & 63)
        if words[w] & bit != 0 { return false }
        words[w] |= bit
        count += 1
        return true
    }

    /// Removes `id`; returns false if it was absent.
    @discardableResult
    mutating func remove(_ id: UInt32) -> Bool {
        let w = Int(id >> 6)
        let bit: UInt64 = 1 << UInt64(id & 63)
        guard w < words.count, words[w] & bit != 0 else { return false }
        words[w] &= ~bit
        count -= 1
        return true
    }

    /// Calls `body` with every id in ascending order.
    func forEach(_ body: (UInt32) -> Void) {
        for (w, word) in words.enumerated() where word != 0 {
            var bits = word
            let base = UInt32(w) << 6
            while bits != 0 {
                body(base | UInt32(bits.trailingZeroBitCount))
                bits &= bits - 1
            }
        }
    }

    /// The ids in ascending order.
    func sortedIds() -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(count)
        forEach { out.append($0) }
        return out
    }

    /// The first `length` words of `a` and `b` combined pairwise by `op`; a
    /// word past the end of either input counts as zero.
    static func combine(_ a: IdBitmap, _ b: IdBitmap, length n: Int, _ op: (UInt64, UInt64) -> UInt64) -> IdBitmap {
        let out = [UInt64](unsafeUninitializedCapacity: n) { buf, initialized in
            a.words.withUnsafeBufferPointer { wa in
                b.words.withUnsafeBufferPointer { wb in
                    for i in 0..<n {
                        buf[i] = op(i < wa.count ? wa[i] : 0, i < wb.count ? wb[i] : 0)
                    }
                }
            }
            initialized = n
        }
        return IdBitmap(words: out)
    }

    func _checkInvariants() {
        precondition(count == words.reduce(0) { $0 + $1.nonzeroBitCount }, "IdBitmap: count out of date")
    }
}
