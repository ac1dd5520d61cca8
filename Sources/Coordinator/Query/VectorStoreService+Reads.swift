import Foundation
import ShoalProto
import ShoalRPC
import SwiftProtobuf
import VectorCore

/// Reads: get, search, search batches, count and describe, fanned out with one call
/// per node (`NodeFanOut`: hedged and retried on the shards' other in-sync replicas).
extension VectorStoreService {

    func startGet(
        _ request: Shoal_V1_GetRequest, state: ClusterState, deadline: ContinuousClock.Instant?,
        _ finish: @escaping @Sendable (Result<Shoal_V1_GetResponse, ShoalError>) -> Void
    ) -> any StartedCall {
        let route: CollectionRoute
        let byShard: [[String]]
        do throws(ShoalError) {
            route = try routes.route(request.collection, in: state)
            try limits.checkCount(request.ids.count, "a get takes")
            for (i, id) in request.ids.enumerated() { try PointValidation.validateID(id, at: "ids[\(i)]") }
            byShard = route.router.partition(request.ids) { $0 }
        } catch {
            finish(.failure(error))
            return FinishedCall()
        }
        let asked = route.readers.enumerated().filter { !byShard[$0.offset].isEmpty }.map(\.element)
        return startNodes(ShardRPC.getShards, asked, deadline: deadline) { targets in
            .with {
                $0.collection = request.collection
                $0.shards = targets.map { target in
                    var read = target.read
                    read.ids = byShard[Int(target.shard)]
                    return read
                }
                $0.includeVector = request.includeVector
                $0.includeMetadata = request.includeMetadata
            }
        } _: { outcome in
            finish(Result { () throws(ShoalError) in
                _ = try outcome.missing(allowPartial: false)
                var found: [UTF8Key: Shoal_V1_Point] = [:]
                for reply in outcome.replies { for point in reply.points { found[UTF8Key(point.id)] = point } }
                return .with { reply in
                    reply.points = request.ids.compactMap { found[UTF8Key($0)] }
                    reply.missingIds = request.ids.filter { found[UTF8Key($0)] == nil }
                }
            })
        }
    }

    func search(_ plan: SearchPlan, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_SearchResponse {
        try searchReply(plan, await readNodes(ShardRPC.searchShards, plan.route.readers, deadline: deadline) { plan.nodeRequest(for: $0) })
    }

    /// The merged reply to `plan` from what its nodes answered.
    func searchReply(_ plan: SearchPlan, _ outcome: NodeReadOutcome<Shoal_V1_NodeSearchResponse>) throws(ShoalError) -> Shoal_V1_SearchResponse {
        let missing = try outcome.missing(allowPartial: plan.allowPartial)
        let merged = TopKMerge.merge(outcome.replies.map(\.hits), k: plan.k, offset: plan.offset)
        try SearchReplySize.check(merged.reduce(0) { $0 + SearchReplySize.bytes(of: $1) }, limit: limits.maxMessageBytes, "the reply's hits take")
        return .with {
            $0.hits = merged
            $0.partial = !missing.isEmpty
            $0.missingShards = missing
            if plan.explain { $0.explain = Self.explanation(outcome) }
        }
    }

    /// What each shard that answered did, by shard id.
    static func explanation(_ outcome: NodeReadOutcome<Shoal_V1_NodeSearchResponse>) -> [Shoal_V1_ShardSearchReport] {
        zip(outcome.shardIDs, outcome.shards).compactMap { shard, answer in
            guard case .answered(_, let report, let nodeID) = answer else { return nil }
            return .with {
                $0.shardID = shard
                $0.nodeID = nodeID
                $0.strategy = report.strategy
                $0.distancesComputed = report.distancesComputed
                $0.unindexedScanned = report.unindexedScanned
            }
        }
    }

    /// Reads `readers`' shards with one call per node (`NodeFanOut`).
    func readNodes<Request: SwiftProtobuf.Message, Reply: NodeReadReply>(
        _ rpc: RPC<Request, Reply>, _ readers: [[ShardTarget]], deadline: ContinuousClock.Instant?,
        _ makeRequest: @escaping @Sendable ([ShardTarget]) -> Request
    ) async -> NodeReadOutcome<Reply> {
        await NodeFanOut.read(rpc, readers: readers, nodes: cluster.nodes, health: cluster.health, deadline: deadline, makeRequest: makeRequest)
    }

    /// `readNodes` without a task: `done` gets the outcome on the thread of the last reply.
    func startNodes<Request: SwiftProtobuf.Message, Reply: NodeReadReply>(
        _ rpc: RPC<Request, Reply>, _ readers: [[ShardTarget]], deadline: ContinuousClock.Instant?,
        _ makeRequest: @escaping @Sendable ([ShardTarget]) -> Request,
        _ done: @escaping @Sendable (NodeReadOutcome<Reply>) -> Void
    ) -> any StartedCall {
        NodeFanOut.start(rpc, readers: readers, nodes: cluster.nodes, health: cluster.health, deadline: deadline,
                         makeRequest: makeRequest, done: done)
    }

    func searchBatch(_ request: Shoal_V1_SearchBatchRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_SearchBatchResponse {
        guard request.searches.count <= limits.maxSearchesPerBatch else {
            throw ShoalError(.resourceExhausted,
                "a search batch holds at most \(limits.maxSearchesPerBatch) searches (--max-searches-per-batch), got \(request.searches.count)")
        }
        var plans: [SearchPlan] = []
        for (i, search) in request.searches.enumerated() {
            do throws(ShoalError) {
                plans.append(try SearchPlan(search, route: try routes.route(search.collection, in: state), limits: limits))
            } catch {
                throw ShoalError(error.code, "searches[\(i)]: \(error.message)")
            }
        }
        try SearchPlan.checkCost(plans, limits: limits)
        let limit = limits.maxMessageBytes
        let results = try await withThrowingTaskGroup(of: (Int, Shoal_V1_SearchResponse).self) { group in
            // At most `batchConcurrency` searches of the batch in flight: each asks every
            // shard, and a batch must not take the nodes' whole call limit by itself.
            var next = 0
            func startNext() {
                guard next < plans.count else { return }
                let (i, plan) = (next, plans[next])
                group.addTask { (i, try await self.search(plan, deadline: deadline)) }
                next += 1
            }
            for _ in 0..<Self.batchConcurrency { startNext() }
            var out = [Shoal_V1_SearchResponse](repeating: .init(), count: plans.count)
            var bytes = 0
            for try await (i, result) in group {
                // Metadata sizes are known only now: stop (cancelling the rest) once over.
                bytes += result.hits.reduce(0) { $0 + SearchReplySize.bytes(of: $1) }
                try SearchReplySize.check(bytes, limit: limit, "the batch's replies so far take")
                out[i] = result
                startNext()
            }
            return out
        }
        return .with { $0.results = results }
    }

    /// A validated search whose cost is within the limits (`checkCost`).
    func plan(_ request: Shoal_V1_SearchRequest, state: ClusterState) throws(ShoalError) -> SearchPlan {
        let plan = try SearchPlan(request, route: try routes.route(request.collection, in: state), limits: limits)
        try SearchPlan.checkCost([plan], limits: limits)
        return plan
    }

    func startCount(
        _ request: Shoal_V1_CountRequest, state: ClusterState, deadline: ContinuousClock.Instant?,
        _ finish: @escaping @Sendable (Result<Shoal_V1_CountResponse, ShoalError>) -> Void
    ) -> any StartedCall {
        let route: CollectionRoute
        do throws(ShoalError) {
            route = try routes.route(request.collection, in: state)
            if request.hasFilter { _ = try Filter(proto: request.filter, limits: limits) }
        } catch {
            finish(.failure(error))
            return FinishedCall()
        }
        return startNodes(ShardRPC.countShards, route.readers, deadline: deadline, countRequest(route, filter: request.hasFilter ? request.filter : nil)) { outcome in
            finish(Result { () throws(ShoalError) in
                let missing = try outcome.missing(allowPartial: request.allowPartial)
                return .with {
                    $0.count = Self.counts(outcome).values.reduce(0, +)
                    $0.partial = !missing.isEmpty
                    $0.missingShards = missing
                }
            })
        }
    }

    func describe(_ request: Shoal_V1_DescribeCollectionRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_DescribeCollectionResponse {
        let route = try routes.route(request.name, in: state)
        var placements = state.shardPlacements(of: request.name) ?? []
        let counts = Self.counts(await countShards(route, filter: nil, deadline: deadline))
        for i in placements.indices { placements[i].pointCount = counts[placements[i].shardID] ?? 0 }
        return .with {
            $0.config = route.config.proto
            $0.shards = placements
            $0.pointCount = placements.reduce(0) { $0 + $1.pointCount }
        }
    }

    private func countShards(_ route: CollectionRoute, filter: Shoal_V1_Filter?, deadline: ContinuousClock.Instant?) async
        -> NodeReadOutcome<Shoal_V1_NodeCountResponse>
    {
        await readNodes(ShardRPC.countShards, route.readers, deadline: deadline, countRequest(route, filter: filter))
    }

    /// A node's CountShards request for its shards of `route`.
    private func countRequest(_ route: CollectionRoute, filter: Shoal_V1_Filter?) -> @Sendable ([ShardTarget]) -> Shoal_V1_NodeCountRequest {
        { targets in
            .with {
                $0.collection = route.config.name
                $0.shards = targets.map(\.read)
                if let filter { $0.filter = filter }
            }
        }
    }

    /// The count of each shard that answered, by shard id.
    private static func counts(_ outcome: NodeReadOutcome<Shoal_V1_NodeCountResponse>) -> [UInt32: UInt64] {
        var counts: [UInt32: UInt64] = [:]
        for (shard, answer) in zip(outcome.shardIDs, outcome.shards) {
            if case .answered(_, let report, _) = answer { counts[shard] = report.count }
        }
        return counts
    }
}
