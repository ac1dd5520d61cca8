import Foundation
import GRPCBridge
import ShoalProto
import ShoalRPC
import VectorCore

/// Reads: get, search, search batches, count and describe, fanned out to one replica
/// per shard (`askReplica`: hedged and retried on the shard's other in-sync replicas).
extension VectorStoreService {

    func get(_ request: Shoal_V1_GetRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_GetResponse {
        let route = try CollectionRoute(request.collection, in: state)
        try limits.checkCount(request.ids.count, "a get takes")
        for (i, id) in request.ids.enumerated() { try PointValidation.validateID(id, at: "ids[\(i)]") }
        let byShard = route.router.partition(request.ids) { $0 }
        let found = try await withThrowingTaskGroup(of: Shoal_V1_ReplicaGetResponse.self) { group in
            for (shard, ids) in byShard.enumerated() where !ids.isEmpty {
                group.addTask {
                    try await self.askReplica(route.readers[shard], deadline: deadline) { target, transport, timeout in
                        try await transport.call(ShardRPC.get, .with {
                            $0.replica = target.ref
                            $0.placementEpoch = target.epoch
                            $0.ids = ids
                            $0.includeVector = request.includeVector
                            $0.includeMetadata = request.includeMetadata
                        }, timeout: timeout)
                    }
                }
            }
            var points: [UTF8Key: Shoal_V1_Point] = [:]
            for try await reply in group { for p in reply.points { points[UTF8Key(p.point.id)] = p.point } }
            return points
        }
        return .with { reply in
            reply.points = request.ids.compactMap { found[UTF8Key($0)] }
            reply.missingIds = request.ids.filter { found[UTF8Key($0)] == nil }
        }
    }

    func search(_ plan: SearchPlan, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_SearchResponse {
        let outcomes = await askEveryShard(plan.route.readers, deadline: deadline) { target, transport, timeout in
            try await transport.call(ShardRPC.search, plan.shardRequest(for: target), timeout: timeout)
        }
        let (replies, missing) = try Self.answers(outcomes, allowPartial: plan.allowPartial)
        let merged = TopKMerge.merge(replies.map(\.hits), k: plan.k, offset: plan.offset)
        try SearchReplySize.check(merged.reduce(0) { $0 + SearchReplySize.bytes(of: $1) }, limit: limits.maxMessageBytes, "the reply's hits take")
        return .with {
            $0.hits = merged
            $0.partial = !missing.isEmpty
            $0.missingShards = missing
        }
    }

    func searchBatch(_ request: Shoal_V1_SearchBatchRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_SearchBatchResponse {
        guard request.searches.count <= limits.maxSearchesPerBatch else {
            throw ShoalError(.resourceExhausted,
                "a search batch holds at most \(limits.maxSearchesPerBatch) searches (--max-searches-per-batch), got \(request.searches.count)")
        }
        var plans: [SearchPlan] = []
        for (i, search) in request.searches.enumerated() {
            do throws(ShoalError) {
                plans.append(try SearchPlan(search, state: state, limits: limits))
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
        let plan = try SearchPlan(request, state: state, limits: limits)
        try SearchPlan.checkCost([plan], limits: limits)
        return plan
    }

    func count(_ request: Shoal_V1_CountRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_CountResponse {
        let route = try CollectionRoute(request.collection, in: state)
        if request.hasFilter { _ = try Filter(proto: request.filter, limits: limits) }
        let outcomes = await askEveryShard(route.readers, deadline: deadline) { target, transport, timeout in
            try await transport.call(ShardRPC.count, .with {
                $0.replica = target.ref
                $0.placementEpoch = target.epoch
                if request.hasFilter { $0.filter = request.filter }
            }, timeout: timeout)
        }
        let (replies, missing) = try Self.answers(outcomes, allowPartial: request.allowPartial)
        let total = replies.reduce(0) { $0 + $1.count }
        return .with {
            $0.count = total
            $0.partial = !missing.isEmpty
            $0.missingShards = missing
        }
    }

    func describe(_ request: Shoal_V1_DescribeCollectionRequest, state: ClusterState, deadline: ContinuousClock.Instant?) async throws -> Shoal_V1_DescribeCollectionResponse {
        let route = try CollectionRoute(request.name, in: state)
        var placements = state.shardPlacements(of: request.name) ?? []
        let counts = await askEveryShard(route.readers, deadline: deadline) { target, transport, timeout in
            try await transport.call(ShardRPC.count, .with { $0.replica = target.ref; $0.placementEpoch = target.epoch }, timeout: timeout)
        }
        for i in placements.indices {
            placements[i].pointCount = (try? counts.first { $0.shard == placements[i].shardID }?.result.get())?.count ?? 0
        }
        return .with {
            $0.config = route.config.proto
            $0.shards = placements
            $0.pointCount = placements.reduce(0) { $0 + $1.pointCount }
        }
    }
}
