import ShoalProto
import ShoalRPC
import VectorCore

/// A validated search: what to ask each shard and how to merge.
struct SearchPlan: Sendable {
    let route: CollectionRoute
    let vector: [Float]
    let k: Int
    let offset: Int
    let ef: UInt32
    let filter: Shoal_V1_Filter?
    let includeVector: Bool
    let includeMetadata: Bool
    let exact: Bool
    let allowPartial: Bool

    /// Validates `request` against `limits`: k, offset and ef, the vector, the filter,
    /// and the largest reply it can imply (`replyBytesBound`, at most
    /// `limits.maxMessageBytes`, else RESOURCE_EXHAUSTED).
    init(_ request: Shoal_V1_SearchRequest, state: ClusterState, limits: RequestLimits) throws(ShoalError) {
        route = try CollectionRoute(request.collection, in: state)
        if request.hasEf, request.ef == 0 { throw ShoalError(.invalidArgument, "ef must be \(RequestLimits.hnswEf.lowerBound)…\(RequestLimits.hnswEf.upperBound), got 0") }
        try limits.checkSearch(k: request.k, offset: request.offset, ef: request.ef)
        vector = try PointValidation.validateVector(request.vector, dimension: route.dimension, metric: route.config.metric, at: "vector")
        if request.hasFilter { _ = try Filter(proto: request.filter, limits: limits) }  // validated once here, pushed down as is
        k = Int(request.k)
        offset = Int(request.offset)
        ef = request.hasEf ? request.ef : 0
        filter = request.hasFilter ? request.filter : nil
        includeVector = request.includeVector
        includeMetadata = request.includeMetadata
        exact = request.exact
        allowPartial = request.allowPartial
    }

    /// What this search costs the shards: `k + offset` hits to find, merge and skip.
    var work: Int { k + offset }

    /// The most bytes the reply's hits can take without metadata (unknown in advance;
    /// the merge counts it as it goes): k hits of an id at its byte bound, a vector
    /// when asked for, and `SearchReplySize.perHitOverhead` of fields and framing.
    var replyBytesBound: Int {
        k * (PointValidation.maxIDBytes + (includeVector ? 4 * route.dimension + 6 : 0) + SearchReplySize.perHitOverhead)
    }

    func shardRequest(for target: ShardTarget) -> Shoal_V1_ReplicaSearchRequest {
        .with {
            $0.replica = target.ref
            $0.vector = vector
            $0.k = UInt32(k + offset)
            $0.ef = ef
            if let filter { $0.filter = filter }
            $0.includeVector = includeVector
            $0.includeMetadata = includeMetadata
            $0.exact = exact
        }
    }
}

/// Reply sizes of searches, checked against `RequestLimits.maxMessageBytes`.
enum SearchReplySize {
    /// Bytes of one hit besides its id, vector and metadata: score, distance, tags and lengths.
    static let perHitOverhead = 32

    /// The bytes `hit` takes in a reply: its id, vector and metadata as encoded, plus the overhead.
    static func bytes(of hit: Shoal_V1_ScoredPoint) -> Int {
        var metadata = 0
        for (key, value) in hit.metadata { metadata += key.utf8.count + 8 + bytes(of: value) }
        return hit.id.utf8.count + 4 * hit.vector.count + 6 + metadata + perHitOverhead
    }

    private static func bytes(of value: Shoal_V1_Value) -> Int {
        switch value.kind {
        case .stringValue(let s): s.utf8.count + 2
        case .stringList(let list): list.values.reduce(4) { $0 + $1.utf8.count + 2 }
        case .intValue, .doubleValue: 9
        case .boolValue: 2
        case nil: 0
        }
    }

    /// RESOURCE_EXHAUSTED for a reply of `bytes` over `limit`; `what` says whether it is a bound or a count so far.
    static func check(_ bytes: Int, limit: Int, _ what: String) throws(ShoalError) {
        guard bytes <= limit else {
            throw ShoalError(.resourceExhausted,
                "\(what) \(bytes) bytes, over the \(limit)-byte message limit (--max-message-bytes); ask for fewer hits (k), fewer searches, or include_vector=false")
        }
    }
}
