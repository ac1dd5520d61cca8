// Cheap match-count estimates, for choosing exact search over the matches
// versus a filtered graph walk, and for ordering the children of an `and`.

extension PayloadIndex {
    /// An estimate of `evaluate(filter).count`, in `0...count`, without
    /// materializing any id set. Cost: a hash lookup per `eq`/`in` value, two
    /// binary searches plus a walk over chunk sizes per range, recursion over
    /// the tree.
    ///
    /// - `eq`, `range`, `exists` are exact: a string or bool posting list's
    ///   size, a count of the sorted numbers between two binary searches (for
    ///   a number's `eq` too), the field's presence count. `in` sums its
    ///   values' `eq` counts, capped at `count` (a string list matching two
    ///   values counts twice, as does `in [1, 1.0]`).
    /// - `ne`, `not_in`, `exists(false)`: `count` minus the above (exact when
    ///   that is).
    /// - `and`: the smallest child estimate (an upper bound when the children's
    ///   are); `or`: the sum of the children's, capped at `count`.
    /// - `not`: `count` minus the child's estimate (may undercount when the
    ///   child's estimate is high).
    public func estimate(_ filter: Filter) -> Int {
        switch filter {
        case .condition(let field, let condition):
            return estimate(condition, field: fields[field])
        case .and(let children):
            return children.map { estimate($0) }.min() ?? count
        case .or(let children):
            return Swift.min(count, children.reduce(0) { $0 + estimate($1) })
        case .not(let child):
            return Swift.max(0, count - estimate(child))
        }
    }

    private func estimate(_ condition: Condition, field index: FieldIndex?) -> Int {
        switch condition {
        case .eq(let v):
            return index.map { Self.equalCount(v, $0) } ?? 0
        case .ne(let v):
            return count - (index.map { Self.equalCount(v, $0) } ?? 0)
        case .in(let vs):
            return inCount(vs, index)
        case .notIn(let vs):
            return count - inCount(vs, index)
        case .exists(let present):
            let n = index?.present.count ?? 0
            return present ? n : count - n
        case .range(let lower, let upper):
            guard let index, let (lo, hi) = Self.slice(index.numbers, lower: lower, upper: upper) else { return 0 }
            return index.numbers.count(from: lo, to: hi)
        }
    }

    private func inCount(_ values: [MetadataValue], _ index: FieldIndex?) -> Int {
        guard let index else { return 0 }
        return Swift.min(count, values.reduce(0) { $0 + Self.equalCount($1, index) })
    }

    /// Exact size of `eq(operand)`: the posting list's, or the slice's.
    private static func equalCount(_ operand: MetadataValue, _ index: FieldIndex) -> Int {
        if let key = EqualityKey(operand) { return index.postings[key]?.count ?? 0 }
        guard let n = NumericKey(operand) else { return 0 }
        let (lo, hi) = index.numbers.equalRange(n)
        return index.numbers.count(from: lo, to: hi)
    }
}
