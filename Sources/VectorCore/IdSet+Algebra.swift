// Set algebra on IdSet. Each operation picks its loop by representation:
// word-wise on two bitmaps, probes into a bitmap, merges or galloping
// searches on two sorted arrays. Results follow the representation rule.

extension IdSet {
    /// Ids in both sets. O(min) when one side is a bitmap or much smaller.
    public func intersection(_ other: IdSet) -> IdSet {
        switch (storage, other.storage) {
        case (.bitmap(let a), .bitmap(let b)):
            return IdSet(bitmap: IdBitmap.combine(a, b, length: Swift.min(a.words.count, b.words.count)) { $0 & $1 })
        case (.sorted(let a), .bitmap(let b)), (.bitmap(let b), .sorted(let a)):
            return IdSet(sortedUnique: a.filter { b.contains($0) })
        case (.sorted(let a), .sorted(let b)):
            return IdSet(sortedUnique: a.count <= b.count ? Self.intersect(a, b) : Self.intersect(b, a))
        }
    }

    /// Ids in either set.
    public func union(_ other: IdSet) -> IdSet {
        IdSet.union(of: [self, other])
    }

    /// Ids in this set and not in `other`.
    public func subtracting(_ other: IdSet) -> IdSet {
        switch (storage, other.storage) {
        case (.bitmap(let a), .bitmap(let b)):
            return IdSet(bitmap: IdBitmap.combine(a, b, length: a.words.count) { $0 & ~$1 })
        case (.bitmap(var a), .sorted(let b)):
            for id in b { a.remove(id) }
            return IdSet(bitmap: a)
        case (.sorted(let a), _):
            return IdSet(sortedUnique: a.filter { !other.contains($0) })
        }
    }

    /// The ids for which `isIncluded` is true, in the same representation rule.
    public func filter(_ isIncluded: (UInt32) throws -> Bool) rethrows -> IdSet {
        switch storage {
        case .sorted(let a):
            return IdSet(sortedUnique: try a.filter(isIncluded))
        case .bitmap(var b):
            try forEach { id in
                if try !isIncluded(id) { b.remove(id) }
            }
            return IdSet(bitmap: b)
        }
    }

    /// The union of many sets at once: one sort of the concatenation when the
    /// total is small, else one bitmap filled by all of them. Cheaper than
    /// folding `union` pairwise over long `in` lists and wide `or`s.
    public static func union(of sets: [IdSet]) -> IdSet {
        let nonEmpty = sets.filter { !$0.isEmpty }
        if nonEmpty.count <= 1 { return nonEmpty.first ?? IdSet() }
        var total = 0
        var maxId: UInt32 = 0
        for s in nonEmpty {
            total += s.count
            maxId = Swift.max(maxId, s.maxId)
        }
        let words = IdBitmap.wordCount(for: Int(maxId) + 1)
        if total <= 4 * words {
            var all: [UInt32] = []
            all.reserveCapacity(total)
            for s in nonEmpty { all.append(contentsOf: s.sortedIds) }
            return IdSet(all)
        }
        var out = IdBitmap(capacity: Int(maxId) + 1)
        for s in nonEmpty {
            out = mergeInto(out, s)
        }
        return IdSet(bitmap: out)
    }

    private static func mergeInto(_ acc: IdBitmap, _ s: IdSet) -> IdBitmap {
        switch s.storage {
        case .bitmap(let b):
            return IdBitmap.combine(acc, b, length: Swift.max(acc.words.count, b.words.count)) { $0 | $1 }
        case .sorted(let a):
            var acc = acc
            for id in a { acc.insert(id) }
            return acc
        }
    }

    /// The largest id (0 when empty).
    var maxId: UInt32 {
        switch storage {
        case .sorted(let a):
            return a.last ?? 0
        case .bitmap(let b):
            guard let w = b.words.lastIndex(where: { $0 != 0 }) else { return 0 }
            return UInt32(w) << 6 | UInt32(63 - b.words[w].leadingZeroBitCount)
        }
    }

    /// Sorted intersection; `small` is the shorter array. Merges when the sizes
    /// are close, else binary-searches each element of `small` in `large`
    /// starting where the previous search ended.
    private static func intersect(_ small: [UInt32], _ large: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        if small.count * 16 < large.count {
            var from = 0
            for id in small {
                from = large.sortedLowerBound(id, from: from)
                if from == large.count { break }
                if large[from] == id { out.append(id) }
            }
            return out
        }
        var i = 0
        var j = 0
        while i < small.count, j < large.count {
            let x = small[i]
            let y = large[j]
            if x < y {
                i += 1
            } else if y < x {
                j += 1
            } else {
                out.append(x)
                i += 1
                j += 1
            }
        }
        return out
    }
}
