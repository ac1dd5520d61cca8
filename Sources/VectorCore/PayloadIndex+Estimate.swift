// Cheap match-count estimates, for choosing exact search over the matches
// versus a filtered graph walk, and for ordering the children of an `and`.

extension PayloadIndex {
    /// An estimate of `evaluate(filter).count`, in `0...count`, without
    /// materializing any id set. Cost: a hash lookup per `eq`/`in` value, two
    /// binary searches plus a walk over chunk sizes per range, recursion over
    /// the tree.
    ///
    /// - `eq`, `in`, `range`, `exists` are exact: posting-list sizes (summed
    ///   over `in` values, which for string lists may count a point once per
    ///   matching element, so capped at `count`), range counts by binary search,
    ///   the field's presence count.
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
            return index?.matching(v).count ?? 0
        case .ne(let v):
            return count - (index?.matching(v).count ?? 0)
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
        return Swift.min(count, values.reduce(0) { $0 + index.matching($1).count })
    }
}
