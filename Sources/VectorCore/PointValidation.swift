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

    /// The largest squared length an l2 or ip vector may have: for any two such
    /// vectors, |a − b|² ≤ 4 · this and |a · b| ≤ this stay finite in Float.
    public static let maxSquaredNorm = Double(Float.greatestFiniteMagnitude) / 4

    /// Checks dimension and finiteness; for l2 and ip, that distances cannot overflow
    /// (squared length at most `maxSquaredNorm`); for cosine, refuses zero vectors and
    /// returns the unit vector (the length is taken in Double, so any finite non-zero
    /// vector has a direction, subnormal or near Float's largest values alike).
    public static func validateVector(
        _ vector: [Float], dimension: Int, metric: Metric, at place: @autoclosure () -> String
    ) throws(ShoalError) -> [Float] {
        guard vector.count == dimension else {
            throw ShoalError(.invalidArgument, "\(place()): vector has dimension \(vector.count), the collection has \(dimension)")
        }
        var norm: Double = 0
        for (i, x) in vector.enumerated() {
            guard x.isFinite else { throw ShoalError(.invalidArgument, "\(place()): vector[\(i)] is \(x), values must be finite") }
            norm += Double(x) * Double(x)
        }
        guard metric == .cosine else {
            guard norm <= maxSquaredNorm else {
                throw ShoalError(.invalidArgument,
                    "\(place()): the vector's squared length is \(norm), over \(maxSquaredNorm), the most whose \(metric) distances stay finite in float32; scale the vectors down")
            }
            return vector
        }
        guard norm > 0 else { throw ShoalError(.invalidArgument, "\(place()): a zero vector has no cosine direction") }
        let scale = 1 / norm.squareRoot()
        return vector.map { Float(Double($0) * scale) }
    }
}
