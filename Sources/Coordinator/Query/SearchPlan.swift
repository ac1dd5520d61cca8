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
    let explain: Bool

    /// Validates `request` against `limits`: k, offset and ef, the vector, the filter,
    /// and the reply it implies (`replyBytesEstimate`, at most
    /// `limits.maxMessageBytes`, else RESOURCE_EXHAUSTED).
    init(_ request: Shoal_V1_SearchRequest, route: CollectionRoute, limits: RequestLimits) throws(ShoalError) {
        self.route = route
        if request.hasEf, request.ef == 0 { throw ShoalError(.invalidArgument, "ef must be \(RequestLimits.hnswEf.lowerBound)…\(RequestLimits.hnswEf.upperBound), got 0") }
        try limits.checkSearch(k: request.k, offset: request.offset, ef: request.ef)
        // Validated and, for cosine, normalised once, here: the nodes take it as is.
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
        explain = request.explain
    }

    /// The same, routed by `state` directly (no route cache).
    init(_ request: Shoal_V1_SearchRequest, state: ClusterState, limits: RequestLimits) throws(ShoalError) {
        try self.init(request, route: try CollectionRoute(request.collection, in: state), limits: limits)
    }

    /// What this search costs the shards: `k + offset` hits to find, merge and skip.
    var work: Int { k + offset }

    /// The bytes the reply's k hits take before metadata: a vector each when asked for,
    /// `SearchReplySize.perHitOverhead`, and an id counted at `SearchReplySize.idBytesEstimate`.
    /// Metadata and longer ids are unknown in advance: the merge counts the real bytes
    /// as replies arrive (`SearchReplySize.bytes(of:)`).
    var replyBytesEstimate: Int {
        k * (SearchReplySize.idBytesEstimate + (includeVector ? 4 * route.dimension + 6 : 0) + SearchReplySize.perHitOverhead)
    }

    /// Refuses, before any node is asked, searches whose total work Σ (k + offset) is
    /// over `limits.maxSearchWork`, or whose hits could make a reply larger than
    /// `limits.maxMessageBytes` (each counted at `SearchPlan.replyBytesEstimate`).
    static func checkCost(_ plans: [SearchPlan], limits: RequestLimits) throws(ShoalError) {
        let work = plans.reduce(0) { $0 + $1.work }
        guard work <= limits.maxSearchWork else {
            throw ShoalError(.resourceExhausted,
                "the searches ask for \(work) hits in all (Σ k + offset); the limit is \(limits.maxSearchWork) (--max-search-work); split the batch or lower k")
        }
        try SearchReplySize.check(plans.reduce(0) { $0 + $1.replyBytesEstimate }, limit: limits.maxMessageBytes, "the reply could take")
    }

    /// What one node is asked: every shard of `targets` (all on that node), each for
    /// `k + offset` hits, merged there.
    func nodeRequest(for targets: [ShardTarget]) -> Shoal_V1_NodeSearchRequest {
        .with {
            $0.collection = route.config.name
            $0.shards = targets.map(\.read)
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
    /// What an id counts for before the reply is known. Not the 1,024-byte id bound: at
    /// that size no batch near `maxSearchWork` hits would pass; a longer id is counted
    /// at its real size by the merge.
    static let idBytesEstimate = 64

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
