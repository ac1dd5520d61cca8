import VectorCore

/// Random metadata and filters over small value domains, so that conditions
/// hit often: the fuel of the PayloadIndex property test.
enum PayloadGen {
    static let words = ["a", "b", "c", "d", "", "3"]
    static let ints: [Int64] = [-5, -1, 0, 1, 2, 3, 7, 1 << 53, (1 << 53) + 1, .max, .min]
    static let doubles: [Double] = [-2.5, -1, -0.0, 0, 0.5, 1, 2.5, 3, 3.5, 0x1p53, 1e300, -1e300]
    /// Fields and the kind each usually holds; "mixed" holds any kind; "absent" never appears.
    static let fields = ["s", "i", "d", "b", "tags", "mixed", "absent"]

    static func scalar<G: RandomNumberGenerator>(_ g: inout G) -> MetadataValue {
        switch Int.random(in: 0..<4, using: &g) {
        case 0: .string(g.pick(words))
        case 1: .int(g.pick(ints))
        case 2: .double(g.pick(doubles))
        default: .bool(g.chance(0.5))
        }
    }

    static func list<G: RandomNumberGenerator>(_ g: inout G) -> MetadataValue {
        .stringList((0..<Int.random(in: 0...3, using: &g)).map { _ in g.pick(words) })
    }

    static func value<G: RandomNumberGenerator>(for field: String, _ g: inout G) -> MetadataValue {
        switch field {
        case "s": .string(g.pick(words))
        case "i": .int(g.pick(ints))
        case "d": .double(g.pick(doubles))
        case "b": .bool(g.chance(0.5))
        case "tags": list(&g)
        default: g.chance(0.2) ? list(&g) : scalar(&g)
        }
    }

    /// Each field present with probability 0.7.
    static func metadata<G: RandomNumberGenerator>(_ g: inout G) -> Metadata {
        var m: Metadata = [:]
        for f in fields.dropLast() where g.chance(0.7) {
            m[f] = value(for: f, &g)
        }
        return m
    }

    static func number<G: RandomNumberGenerator>(_ g: inout G) -> MetadataValue {
        g.chance(0.5) ? .int(g.pick(ints)) : .double(g.pick(doubles))
    }

    /// Operands of the field's usual kind most of the time, anything otherwise.
    static func operand<G: RandomNumberGenerator>(for field: String, _ g: inout G) -> MetadataValue {
        if g.chance(0.25) { return scalar(&g) }
        if field == "tags" { return .string(g.pick(words)) }
        let v = value(for: field, &g)
        if case .stringList = v { return .string(g.pick(words)) }
        return v
    }

    static func bound<G: RandomNumberGenerator>(_ g: inout G) -> Condition.Bound? {
        g.chance(0.2) ? nil : Condition.Bound(number(&g), inclusive: g.chance(0.5))
    }

    static func condition<G: RandomNumberGenerator>(for field: String, _ g: inout G) -> Condition {
        switch Int.random(in: 0..<6, using: &g) {
        case 0: return .eq(operand(for: field, &g))
        case 1: return .ne(operand(for: field, &g))
        case 2: return .range(lower: bound(&g), upper: bound(&g))
        case 3: return .in((0..<Int.random(in: 1...4, using: &g)).map { _ in operand(for: field, &g) })
        case 4: return .notIn((0..<Int.random(in: 1...4, using: &g)).map { _ in operand(for: field, &g) })
        default: return .exists(g.chance(0.5))
        }
    }

    /// A random tree; nodes at `depth == maxDepth` are conditions.
    static func filter<G: RandomNumberGenerator>(depth: Int = 1, maxDepth: Int = 4, _ g: inout G) -> Filter {
        if depth >= maxDepth || g.chance(0.35) {
            let f = g.pick(fields)
            return .condition(field: f, condition(for: f, &g))
        }
        let children = { (g: inout G) -> [Filter] in
            (0..<Int.random(in: 1...3, using: &g)).map { _ in filter(depth: depth + 1, maxDepth: maxDepth, &g) }
        }
        switch Int.random(in: 0..<5, using: &g) {
        case 0, 1: return .and(children(&g))
        case 2, 3: return .or(children(&g))
        default: return .not(filter(depth: depth + 1, maxDepth: maxDepth, &g))
        }
    }
}
