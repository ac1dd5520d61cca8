import ShoalProto
import ShoalRPC
import VectorCore

/// A validated search: what to ask each shard and how to merge.
struct SearchPlan: Sendable {
    static let maxK = 10_000
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

    init(_ request: Shoal_V1_SearchRequest, state: ClusterState) throws(ShoalError) {
        route = try CollectionRoute(request.collection, in: state)
        guard (1...UInt32(Self.maxK)).contains(request.k) else {
            throw ShoalError(.invalidArgument, "k must be 1…\(Self.maxK), got \(request.k)")
        }
        guard Int(request.offset) + Int(request.k) <= Self.maxK else {
            throw ShoalError(.invalidArgument, "offset + k must be at most \(Self.maxK), got \(Int(request.offset) + Int(request.k))")
        }
        if request.hasEf, !(1...100_000).contains(request.ef) {
            throw ShoalError(.invalidArgument, "ef must be 1…100000, got \(request.ef)")
        }
        vector = try PointValidation.validateVector(request.vector, dimension: route.dimension, metric: route.config.metric, at: "vector")
        if request.hasFilter { _ = try Filter(proto: request.filter) }  // validated once here, pushed down as is
        k = Int(request.k)
        offset = Int(request.offset)
        ef = request.hasEf ? request.ef : 0
        filter = request.hasFilter ? request.filter : nil
        includeVector = request.includeVector
        includeMetadata = request.includeMetadata
        exact = request.exact
        allowPartial = request.allowPartial
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
