// Exact filter evaluation over the index: the ids `Filter.matches` accepts,
// computed from postings and range slices instead of point by point.

extension PayloadIndex {
    /// Exactly the live ids whose metadata `filter.matches`, for any filter
    /// (validated or not; an empty `and` selects every live id, an empty `or`
    /// none). Recursion depth is the filter's depth.
    ///
    /// `and` evaluates its children from the smallest `estimate` up and stops
    /// once nothing is left; when the running result is much smaller than the
    /// next child's estimate (8×), it tests those few candidates' metadata with
    /// `Filter.matches` instead of materializing the child. `not` is the live
    /// set minus its child.
    public func evaluate(_ filter: Filter) -> IdSet {
        switch filter {
        case .condition(let field, let condition):
            return evaluate(condition, field: fields[field])
        case .or(let children):
            return IdSet.union(of: children.map { evaluate($0) })
        case .not(let child):
            return live.subtracting(evaluate(child))
        case .and(let children):
            return evaluateAnd(children)
        }
    }

    private func evaluateAnd(_ children: [Filter]) -> IdSet {
        let ordered = children.map { (filter: $0, estimate: estimate($0)) }.sorted { $0.estimate < $1.estimate }
        guard let first = ordered.first else { return live }
        var result = evaluate(first.filter)
        for next in ordered.dropFirst() {
            if result.isEmpty { break }
            if result.count * 8 < next.estimate {
                result = result.filter { liveMatches($0, next.filter) }
            } else {
                result = result.intersection(evaluate(next.filter))
            }
        }
        return result
    }

    /// The live ids whose value of the field indexed by `index` (nil: no live
    /// point has the field) satisfies `condition`.
    private func evaluate(_ condition: Condition, field index: FieldIndex?) -> IdSet {
        switch condition {
        case .eq(let v):
            return index.map { equal(to: v, in: $0) } ?? IdSet()
        case .ne(let v):
            return live.subtracting(index.map { equal(to: v, in: $0) } ?? IdSet())
        case .in(let vs):
            return index.map { i in IdSet.union(of: vs.map { equal(to: $0, in: i) }) } ?? IdSet()
        case .notIn(let vs):
            return live.subtracting(index.map { i in IdSet.union(of: vs.map { equal(to: $0, in: i) }) } ?? IdSet())
        case .exists(true):
            return index?.present ?? IdSet()
        case .exists(false):
            return live.subtracting(index?.present ?? IdSet())
        case .range(let lower, let upper):
            guard let index, let (lo, hi) = Self.slice(index.numbers, lower: lower, upper: upper) else {
                return IdSet()
            }
            return collect(index.numbers, from: lo, to: hi)
        }
    }

    /// The ids whose value `eq`-matches `operand`: a posting list for a string
    /// or bool, a one-value slice of the sorted numbers for a number.
    private func equal(to operand: MetadataValue, in index: FieldIndex) -> IdSet {
        if let key = EqualityKey(operand) { return index.postings[key] ?? IdSet() }
        guard let n = NumericKey(operand) else { return IdSet() }
        let (lo, hi) = index.numbers.equalRange(n)
        return collect(index.numbers, from: lo, to: hi)
    }

    /// The positions `lo..<hi` of the entries within both bounds; nil when a
    /// bound is not a number (the range then matches nothing).
    static func slice(
        _ numbers: SortedNumericList, lower: Condition.Bound?, upper: Condition.Bound?
    ) -> (SortedNumericList.Position, SortedNumericList.Position)? {
        var lo = numbers.start
        var hi = numbers.end
        if let lower {
            guard let b = NumericKey(lower.value) else { return nil }
            lo = lower.inclusive ? numbers.firstPosition { $0 < b } : numbers.firstPosition { $0 <= b }
        }
        if let upper {
            guard let b = NumericKey(upper.value) else { return nil }
            hi = upper.inclusive ? numbers.firstPosition { $0 <= b } : numbers.firstPosition { $0 < b }
        }
        return (lo, hi)
    }

    /// The ids of a range slice (unique, in value order) as a set: into a
    /// bitmap sized like the live set when the slice is dense, else sorted.
    private func collect(_ numbers: SortedNumericList, from lo: SortedNumericList.Position, to hi: SortedNumericList.Position) -> IdSet {
        let n = numbers.count(from: lo, to: hi)
        let capacity = Int(live.maxId) + 1
        if n > 64 && n > 4 * IdBitmap.wordCount(for: capacity) {
            var bitmap = IdBitmap(capacity: capacity)
            numbers.forEachId(from: lo, to: hi) { bitmap.insert($0) }
            return IdSet(bitmap: bitmap)
        }
        var ids: [UInt32] = []
        ids.reserveCapacity(n)
        numbers.forEachId(from: lo, to: hi) { ids.append($0) }
        ids.sort()
        return IdSet(sortedUnique: ids)
    }
}
