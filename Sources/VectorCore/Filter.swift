/// A boolean expression over a point's metadata: the Swift twin of
/// `shoal.v1.Filter`. The coordinator validates it (`validate()`) and pushes it
/// down; a shard evaluates it with `PayloadIndex.evaluate` or, point by point,
/// with `matches(_:)` (the oracle).
///
/// Semantics (the same as the wire protocol's, and what Qdrant and Chroma users
/// expect):
/// - `and` matches when every child matches, `or` when at least one does,
///   `not` when its child does not. (An empty `and` would match everything and
///   an empty `or` nothing; `validate()` rejects both.)
/// - A condition tests one field; see `Condition` for each operator.
/// - Evaluation never fails: a type mismatch is simply "no match".
public indirect enum Filter: Sendable, Hashable {
    case condition(field: String, Condition)
    case and([Filter])
    case or([Filter])
    case not(Filter)

    /// `.condition(field: field, condition)`.
    public static func field(_ field: String, _ condition: Condition) -> Filter {
        .condition(field: field, condition)
    }
}

/// A test on one metadata field's value.
///
/// - `eq(v)`: the field equals `v`. Numbers compare by value across int and
///   double (`3 == 3.0`); a number never equals a string or a bool. On a
///   string-list field, matches when any element equals `v`. A missing field
///   never matches. The operand is a scalar (a string-list operand matches
///   nothing and is rejected by validation).
/// - `ne(v)`: exactly `not(eq(v))`: matches a point whose field is missing, of
///   another kind, different, or (for a string list) has no element equal to `v`.
/// - `range(lower:upper:)`: the field is a number (int or double) within both
///   given bounds; a missing or non-numeric field (string, bool, string list)
///   never matches. Bounds compare exactly across int and double.
/// - `in(vs)`: `eq` for at least one of `vs` (any element of a string list).
/// - `notIn(vs)`: exactly `not(in(vs))`, so it matches points lacking the field.
/// - `exists(true)`: the field is present (with any value, even an empty list);
///   `exists(false)`: the field is absent.
public enum Condition: Sendable, Hashable {
    case eq(MetadataValue)
    case ne(MetadataValue)
    case range(lower: Bound?, upper: Bound?)
    case `in`([MetadataValue])
    case notIn([MetadataValue])
    case exists(Bool)

    /// One end of a range: a number (`.int` or `.double`) and whether the end
    /// itself is included.
    public struct Bound: Sendable, Hashable {
        public var value: MetadataValue
        public var inclusive: Bool

        public init(_ value: MetadataValue, inclusive: Bool) {
            self.value = value
            self.inclusive = inclusive
        }
    }

    /// `field > v`
    public static func gt(_ v: MetadataValue) -> Condition { .range(lower: Bound(v, inclusive: false), upper: nil) }
    /// `field >= v`
    public static func gte(_ v: MetadataValue) -> Condition { .range(lower: Bound(v, inclusive: true), upper: nil) }
    /// `field < v`
    public static func lt(_ v: MetadataValue) -> Condition { .range(lower: nil, upper: Bound(v, inclusive: false)) }
    /// `field <= v`
    public static func lte(_ v: MetadataValue) -> Condition { .range(lower: nil, upper: Bound(v, inclusive: true)) }
    /// `lower <= field <= upper`
    public static func between(_ lower: MetadataValue, _ upper: MetadataValue) -> Condition {
        .range(lower: Bound(lower, inclusive: true), upper: Bound(upper, inclusive: true))
    }
}
