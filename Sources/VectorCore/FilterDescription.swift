// Readable renderings of filters for logs, test failures and error messages.

extension Filter: CustomStringConvertible {
    /// E.g. `all_of(price >= 10, any_of(tags == "new", not(exists(sold))))`.
    public var description: String {
        switch self {
        case .condition(let field, let condition):
            condition.description(field: field)
        case .and(let children):
            "all_of(" + children.map(\.description).joined(separator: ", ") + ")"
        case .or(let children):
            "any_of(" + children.map(\.description).joined(separator: ", ") + ")"
        case .not(let child):
            "not(\(child))"
        }
    }
}

extension Condition {
    /// This condition applied to `field`, e.g. `price in [1, 2]`.
    public func description(field: String) -> String {
        switch self {
        case .eq(let v): return "\(field) == \(v)"
        case .ne(let v): return "\(field) != \(v)"
        case .in(let vs): return "\(field) in \(Self.list(vs))"
        case .notIn(let vs): return "\(field) not_in \(Self.list(vs))"
        case .exists(let present): return present ? "exists(\(field))" : "not_exists(\(field))"
        case .range(let lower, let upper):
            var parts: [String] = []
            if let lower { parts.append("\(field) \(lower.inclusive ? ">=" : ">") \(lower.value)") }
            if let upper { parts.append("\(field) \(upper.inclusive ? "<=" : "<") \(upper.value)") }
            return parts.isEmpty ? "\(field) in any range" : parts.joined(separator: " && ")
        }
    }

    private static func list(_ vs: [MetadataValue]) -> String {
        "[" + vs.map(\.description).joined(separator: ", ") + "]"
    }
}
