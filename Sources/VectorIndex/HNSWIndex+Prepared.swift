extension HNSWIndex {
    /// `vector` as the index stores it and compares it (unit length for cosine).
    /// Distances between prepared vectors from ``distance(prepared:_:)`` equal the
    /// index's own bit for bit, so a caller that scans vectors the graph does not hold
    /// yet (a shard's not-yet-indexed tail) ranks them exactly as the index would.
    public func prepared(_ vector: [Float]) -> [Float] {
        var copy = vector
        if metric == .cosine { normalize(&copy) }
        return copy
    }

    /// The index's distance kernel on two prepared vectors of this index's dimension.
    public func distance(prepared a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == dimension && b.count == dimension)
        return a.withUnsafeBufferPointer { p in b.withUnsafeBufferPointer { distance(p.baseAddress!, $0.baseAddress!) } }
    }
}
