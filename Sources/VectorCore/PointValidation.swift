/// Checks on points and queries shared by the coordinator and the shard node, so a
/// bad request is refused at the first hop with the same message.
public enum PointValidation {
    public static let maxIDBytes = 1024

    public static func validateID(_ id: String, at place: @autoclosure () -> String) throws(ShoalError) {
        if id.isEmpty { throw ShoalError(.invalidArgument, "\(place()): the point id is empty") }
        if id.utf8.count > maxIDBytes {
            throw ShoalError(.invalidArgument, "\(place()): the point id is \(id.utf8.count) bytes, more than \(maxIDBytes)")
        }
    }

    /// Checks dimension and finiteness; for cosine, refuses zero vectors and returns the unit vector.
    public static func validateVector(
        _ vector: [Float], dimension: Int, metric: Metric, at place: @autoclosure () -> String
    ) throws(ShoalError) -> [Float] {
        guard vector.count == dimension else {
            throw ShoalError(.invalidArgument, "\(place()): vector has dimension \(vector.count), the collection has \(dimension)")
        }
        var norm: Float = 0
        for (i, x) in vector.enumerated() {
            guard x.isFinite else { throw ShoalError(.invalidArgument, "\(place()): vector[\(i)] is \(x), values must be finite") }
            norm += x * x
        }
        guard metric == .cosine else { return vector }
        guard norm > 0, norm.isFinite else { throw ShoalError(.invalidArgument, "\(place()): a zero vector has no cosine direction") }
        let scale = 1 / norm.squareRoot()
        return vector.map { $0 * scale }
    }
}
