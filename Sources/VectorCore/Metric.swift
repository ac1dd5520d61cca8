/// How two vectors are compared. The one place that defines distances and user-facing scores.
///
/// Internally every index works with a *distance* where smaller is nearer:
///
/// | metric | internal distance `d` (lower is nearer) | user-facing `score(d)` (higher is nearer) |
/// | --- | --- | --- |
/// | `.cosine` | `1 − cos(a, b)` (vectors normalised on insert and query, so `1 − a·b`) | cosine similarity `1 − d` |
/// | `.l2` | squared Euclidean distance `Σ (aᵢ − bᵢ)²` | `−d` |
/// | `.innerProduct` | `−a·b` | dot product `−d` |
///
/// The wire's `ScoredPoint` carries both: `distance` = `d` and `score` = `score(d)`, so
/// every metric sorts the same way on either (types.proto says the same).
public enum Metric: String, Sendable, Hashable, CaseIterable, Codable {
    case cosine
    case l2
    case innerProduct = "ip"

    /// Parses the names used on the wire and in dataset metadata: `cosine`/`cos`, `l2`/`euclidean`, `ip`/`dot`.
    public init?(name: String) {
        switch name.lowercased() {
        case "cosine", "cos", "angular": self = .cosine
        case "l2", "euclidean", "l2sq": self = .l2
        case "ip", "dot", "inner_product", "innerproduct": self = .innerProduct
        default: return nil
        }
    }

    /// The user-facing score of an internal distance (see the table above).
    @inlinable
    public func score(distance d: Float) -> Float {
        switch self {
        case .cosine: return 1 - d
        case .l2, .innerProduct: return -d
        }
    }

    /// The internal distance of a user-facing score; the inverse of `score(distance:)`.
    @inlinable
    public func distance(score s: Float) -> Float {
        switch self {
        case .cosine: return 1 - s
        case .l2, .innerProduct: return -s
        }
    }

}
