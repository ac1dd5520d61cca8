// The brute-force oracle: a filter tested against one point's metadata.
// `PayloadIndex.evaluate` must select exactly the points this accepts.

extension Filter {
    /// Whether a point with `metadata` matches. Total: never fails, a type
    /// mismatch is `false`. Recursion depth is the filter's depth, so call it
    /// on validated filters (depth ≤ `RequestLimits.maxFilterDepth`).
    public func matches(_ metadata: Metadata) -> Bool {
        matches { metadata[$0] }
    }

    /// `matches(_:)` for metadata kept in another shape: `valueOf(field)` is
    /// the point's value of `field`, nil when it lacks the field.
    public func matches(valueOf: (String) -> MetadataValue?) -> Bool {
        switch self {
        case .condition(let field, let condition):
            condition.matches(valueOf(field))
        case .and(let children):
            children.allSatisfy { $0.matches(valueOf: valueOf) }
        case .or(let children):
            children.contains { $0.matches(valueOf: valueOf) }
        case .not(let child):
            !child.matches(valueOf: valueOf)
        }
    }
}

extension Condition {
    /// Whether a field holding `value` (nil: the field is missing) satisfies
    /// this condition, by the rules in `Condition`'s documentation.
    public func matches(_ value: MetadataValue?) -> Bool {
        switch self {
        case .eq(let operand):
            guard let value else { return false }
            return value.contains(operand)
        case .ne(let operand):
            guard let value else { return true }
            return !value.contains(operand)
        case .in(let operands):
            guard let value else { return false }
            return operands.contains { value.contains($0) }
        case .notIn(let operands):
            guard let value else { return true }
            return !operands.contains { value.contains($0) }
        case .range(let lower, let upper):
            guard let value, let x = NumericKey(value) else { return false }
            return Self.within(x, lower: lower, upper: upper)
        case .exists(let present):
            return (value != nil) == present
        }
    }

    /// `x` against both bounds; a bound that is not a number (or is NaN)
    /// makes the range match nothing. No bounds at all: any number.
    static func within(_ x: NumericKey, lower: Bound?, upper: Bound?) -> Bool {
        if let lower {
            guard let b = NumericKey(lower.value) else { return false }
            if lower.inclusive ? x < b : x <= b { return false }
        }
        if let upper {
            guard let b = NumericKey(upper.value) else { return false }
            if upper.inclusive ? b < x : b <= x { return false }
        }
        return true
    }
}

extension MetadataValue {
    /// `eq` semantics: this stored value equals the scalar `operand`, or, for a
    /// string list, one element equals it. Numbers compare by value.
    func contains(_ operand: MetadataValue) -> Bool {
        switch (self, operand) {
        case (.string(let a), .string(let b)): a == b
        case (.bool(let a), .bool(let b)): a == b
        case (.stringList(let list), .string(let b)): list.contains(b)
        case (.int, _), (.double, _):
            if let a = NumericKey(self), let b = NumericKey(operand) { a == b } else { false }
        default: false
        }
    }
}
