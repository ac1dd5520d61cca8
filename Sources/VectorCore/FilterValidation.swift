extension Filter {
    /// Rejects a filter no shard should run, with INVALID_ARGUMENT and a message
    /// naming the offending node by its path in wire-protocol terms
    /// (`filter.all_of[1].negate`, plus `(field "price")` for a condition):
    /// an empty field name (or one over 256 bytes); an empty `and`/`or`; a
    /// range with no bound, a non-numeric or non-finite bound, or lower > upper;
    /// an `eq`/`ne`/`in`/`not_in` operand that is a string list, a non-finite
    /// double or an over-long string; an empty `in`/`not_in` list, one mixing
    /// kinds (int and double together count as one kind, "number") or one longer
    /// than `limits.maxInValues`; depth over `limits.maxFilterDepth`; more than
    /// `limits.maxFilterConditions` conditions. The coordinator and the node both
    /// validate with their `RequestLimits`. Checks nodes depth-first in order and
    /// reports the first problem.
    public func validate(limits: RequestLimits) throws(ShoalError) {
        var conditions = 0
        try validate(path: "filter", depth: 1, conditions: &conditions, limits: limits)
    }

    private func validate(path: String, depth: Int, conditions: inout Int, limits: RequestLimits) throws(ShoalError) {
        guard depth <= limits.maxFilterDepth else {
            throw .invalidArgument(
                "invalid filter: nesting is deeper than \(limits.maxFilterDepth) levels (--max-filter-depth) at \(path); flatten nested all_of/any_of lists")
        }
        switch self {
        case .condition(let field, let condition):
            conditions += 1
            guard conditions <= limits.maxFilterConditions else {
                throw .invalidArgument(
                    "invalid filter: more than \(limits.maxFilterConditions) conditions (--max-filter-conditions; the limit is reached at \(path)); use in/not_in for long lists of values")
            }
            try validateFieldName(field, what: "invalid filter at \(path): field name", limits: limits)
            try condition.validate(at: "invalid filter at \(path) (field \(quotedForMessage(field)))", limits: limits)
        case .and(let children):
            try Self.validate(children, name: "all_of", path: path, depth: depth, conditions: &conditions, limits: limits)
        case .or(let children):
            try Self.validate(children, name: "any_of", path: path, depth: depth, conditions: &conditions, limits: limits)
        case .not(let child):
            try child.validate(path: path + ".negate", depth: depth + 1, conditions: &conditions, limits: limits)
        }
    }

    private static func validate(
        _ children: [Filter], name: String, path: String, depth: Int, conditions: inout Int, limits: RequestLimits
    ) throws(ShoalError) {
        guard !children.isEmpty else {
            throw .invalidArgument("invalid filter at \(path): \(name) needs at least one filter")
        }
        for (i, child) in children.enumerated() {
            try child.validate(path: "\(path).\(name)[\(i)]", depth: depth + 1, conditions: &conditions, limits: limits)
        }
    }
}

extension Condition {
    /// Checks this condition's operands; `context` starts every message.
    fileprivate func validate(at context: String, limits: RequestLimits) throws(ShoalError) {
        switch self {
        case .eq(let v):
            try Self.validateScalar(v, op: "eq", context: context, limits: limits)
        case .ne(let v):
            try Self.validateScalar(v, op: "ne", context: context, limits: limits)
        case .in(let vs):
            try Self.validateList(vs, op: "in", context: context, limits: limits)
        case .notIn(let vs):
            try Self.validateList(vs, op: "not_in", context: context, limits: limits)
        case .range(let lower, let upper):
            try Self.validateRange(lower: lower, upper: upper, context: context)
        case .exists:
            return
        }
    }

    private static func validateScalar(_ v: MetadataValue, op: String, context: String, limits: RequestLimits) throws(ShoalError) {
        if case .stringList = v {
            throw .invalidArgument(
                "\(context): \(op) takes one value, not a string list; a string-list field matches when any element equals the value, and in/not_in test several values")
        }
        try v.validate(context: "\(context): \(op) operand", limits: limits)
    }

    private static func validateList(_ vs: [MetadataValue], op: String, context: String, limits: RequestLimits) throws(ShoalError) {
        guard let first = vs.first else {
            throw .invalidArgument("\(context): \(op) needs at least one value")
        }
        guard vs.count <= limits.maxInValues else {
            throw .invalidArgument(
                "\(context): \(op) has \(vs.count) values; the limit is \(limits.maxInValues) (--max-in-values)")
        }
        for (i, v) in vs.enumerated() {
            try validateScalar(v, op: "\(op)[\(i)]", context: context, limits: limits)
            if !sameKind(first, v) {
                throw .invalidArgument(
                    "\(context): \(op) mixes value kinds (\(kindLabel(first)) at [0], \(kindLabel(v)) at [\(i)]); use values of one kind")
            }
        }
    }

    private static func validateRange(lower: Bound?, upper: Bound?, context: String) throws(ShoalError) {
        guard lower != nil || upper != nil else {
            throw .invalidArgument("\(context): range needs at least one bound (gt, gte, lt or lte)")
        }
        var keys: [NumericKey] = []
        for (name, bound) in [("lower", lower), ("upper", upper)] {
            guard let bound else { continue }
            guard bound.value.isNumber else {
                throw .invalidArgument(
                    "\(context): range \(name) bound must be a number (int or double), got \(bound.value.kindName) \(bound.value)")
            }
            if case .double(let d) = bound.value, !d.isFinite {
                throw .invalidArgument("\(context): range \(name) bound must be finite, got \(d)")
            }
            keys.append(NumericKey(bound.value)!)  // a finite number always has a key
        }
        if let lower, let upper, keys.count == 2, keys[1] < keys[0] {
            throw .invalidArgument(
                "\(context): range lower bound \(lower.value) is greater than upper bound \(upper.value), so nothing can match")
        }
    }

    /// Kinds for the mixed-kind check: int and double are both "number".
    private static func sameKind(_ a: MetadataValue, _ b: MetadataValue) -> Bool {
        kindLabel(a) == kindLabel(b)
    }

    private static func kindLabel(_ v: MetadataValue) -> String {
        v.isNumber ? "number" : v.kindName
    }
}
