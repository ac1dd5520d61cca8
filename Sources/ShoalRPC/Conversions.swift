import ShoalProto
import VectorCore

// Wire (Shoal_V1_*) ↔ domain (VectorCore) conversions, shared by the coordinator
// and the shard node. Decoding validates shape (oneofs set, known enums) and
// reports INVALID_ARGUMENT naming the place; domain rules (finite numbers, limits)
// are checked by VectorCore's `validate` functions afterwards.

extension Metric {
    public init(proto: Shoal_V1_Metric) throws(ShoalError) {
        switch proto {
        case .cosine: self = .cosine
        case .l2: self = .l2
        case .ip: self = .innerProduct
        case .unspecified, .UNRECOGNIZED:
            throw ShoalError(.invalidArgument, "metric must be one of cosine, l2, ip")
        }
    }

    public var proto: Shoal_V1_Metric {
        switch self {
        case .cosine: .cosine
        case .l2: .l2
        case .innerProduct: .ip
        }
    }
}

extension MetadataValue {
    public init(proto: Shoal_V1_Value, context: @autoclosure () -> String) throws(ShoalError) {
        switch proto.kind {
        case .stringValue(let s): self = .string(s)
        case .intValue(let i): self = .int(i)
        case .doubleValue(let d): self = .double(d)
        case .boolValue(let b): self = .bool(b)
        case .stringList(let list): self = .stringList(list.values)
        case nil: throw ShoalError(.invalidArgument, "\(context()): a value with no kind set")
        }
    }

    public var proto: Shoal_V1_Value {
        var value = Shoal_V1_Value()
        switch self {
        case .string(let s): value.stringValue = s
        case .int(let i): value.intValue = i
        case .double(let d): value.doubleValue = d
        case .bool(let b): value.boolValue = b
        case .stringList(let l): value.stringList = Shoal_V1_StringList.with { $0.values = l }
        }
        return value
    }
}

/// Decodes a point's metadata map and validates it against `limits`.
public func decodeMetadata(_ proto: [String: Shoal_V1_Value], limits: RequestLimits) throws(ShoalError) -> Metadata {
    var metadata = Metadata(minimumCapacity: proto.count)
    for (key, value) in proto {
        metadata[key] = try MetadataValue(proto: value, context: "metadata field \"\(key)\"")
    }
    try metadata.validateMetadata(limits: limits)
    return metadata
}

public func encodeMetadata(_ metadata: Metadata) -> [String: Shoal_V1_Value] {
    metadata.mapValues(\.proto)
}

extension Filter {
    /// Decodes a wire filter and validates it against `limits` (`Filter.validate`):
    /// INVALID_ARGUMENT with the place in the tree for anything malformed.
    public init(proto: Shoal_V1_Filter, limits: RequestLimits) throws(ShoalError) {
        self = try Filter.decode(proto, path: "filter")
        try validate(limits: limits)
    }

    private static func decode(_ proto: Shoal_V1_Filter, path: String) throws(ShoalError) -> Filter {
        switch proto.kind {
        case .condition(let c):
            return .condition(field: c.field, try decodeCondition(c, path: path))
        case .allOf(let list):
            var children: [Filter] = []
            for (i, child) in list.filters.enumerated() { children.append(try decode(child, path: "\(path).all_of[\(i)]")) }
            return .and(children)
        case .anyOf(let list):
            var children: [Filter] = []
            for (i, child) in list.filters.enumerated() { children.append(try decode(child, path: "\(path).any_of[\(i)]")) }
            return .or(children)
        case .negate(let inner):
            return .not(try decode(inner, path: "\(path).negate"))
        case nil:
            throw ShoalError(.invalidArgument, "invalid filter at \(path): empty filter (set condition, all_of, any_of or negate)")
        }
    }

    private static func decodeCondition(_ c: Shoal_V1_FieldCondition, path: String) throws(ShoalError) -> Condition {
        let here = "\(path) (field \"\(c.field)\")"
        switch c.op {
        case .eq(let v): return .eq(try MetadataValue(proto: v, context: "invalid filter at \(here): eq"))
        case .ne(let v): return .ne(try MetadataValue(proto: v, context: "invalid filter at \(here): ne"))
        case .isIn(let list): return .in(try values(list, "invalid filter at \(here): is_in"))
        case .notIn(let list): return .notIn(try values(list, "invalid filter at \(here): not_in"))
        case .exists(let flag): return .exists(flag)
        case .range(let r):
            if r.hasGt && r.hasGte { throw ShoalError(.invalidArgument, "invalid filter at \(here): range sets both gt and gte") }
            if r.hasLt && r.hasLte { throw ShoalError(.invalidArgument, "invalid filter at \(here): range sets both lt and lte") }
            let lower = try r.hasGt ? bound(r.gt, inclusive: false, here) : r.hasGte ? bound(r.gte, inclusive: true, here) : nil
            let upper = try r.hasLt ? bound(r.lt, inclusive: false, here) : r.hasLte ? bound(r.lte, inclusive: true, here) : nil
            return .range(lower: lower, upper: upper)
        case nil:
            throw ShoalError(.invalidArgument, "invalid filter at \(here): no operator (eq, ne, range, is_in, not_in or exists)")
        }
    }

    private static func values(_ list: Shoal_V1_ValueList, _ context: String) throws(ShoalError) -> [MetadataValue] {
        var out: [MetadataValue] = []
        for (i, v) in list.values.enumerated() { out.append(try MetadataValue(proto: v, context: "\(context)[\(i)]")) }
        return out
    }

    private static func bound(_ n: Shoal_V1_Number, inclusive: Bool, _ here: String) throws(ShoalError) -> Condition.Bound {
        switch n.kind {
        case .intValue(let i): return Condition.Bound(.int(i), inclusive: inclusive)
        case .doubleValue(let d): return Condition.Bound(.double(d), inclusive: inclusive)
        case nil: throw ShoalError(.invalidArgument, "invalid filter at \(here): a range bound with no number set")
        }
    }
}

extension Shoal_V1_HealthResponse {
    /// The reply for a process started at `started`: SERVING, or NOT_SERVING with
    /// `notServing` as the reason. One definition for nodes and coordinators.
    public static func health(
        id: String, name: String, since started: ContinuousClock.Instant, notServing reason: String? = nil
    ) -> Shoal_V1_HealthResponse {
        let up = ContinuousClock.now - started
        return .with {
            $0.nodeID = id
            $0.nodeName = name
            $0.status = reason == nil ? .serving : .notServing
            $0.reason = reason ?? ""
            $0.uptimeMs = UInt64(max(0, up.components.seconds)) * 1000 + UInt64(max(0, up.components.attoseconds) / 1_000_000_000_000_000)
            $0.version = ShoalVersion.current
        }
    }
}
extension Shoal_V1_ScoredPoint: MergeableHit {}
