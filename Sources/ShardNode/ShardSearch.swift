import Dispatch
import Foundation
import Synchronization
import ShoalProto
import ShoalRPC
import VectorCore

/// One search over some replicas of one collection on this node: each replica's top
/// k, merged here (`TopKMerge`, the coordinator's order), then the payloads of the
/// merged k only — so a node with several shards reads k hits' metadata, not k per shard.
struct ShardSearch {
    /// Validated; for cosine, normalised.
    let vector: [Float]
    let k: Int
    /// 0: each replica's default (raised to k).
    let ef: Int
    let filter: Filter?
    let includeVector: Bool
    let includeMetadata: Bool
    let exact: Bool

    /// Points (over the shards asked) below which the shards are searched one after
    /// another: an exact scan of 2k 512-d points takes ~100 µs, and handing a shard to
    /// another thread costs 20–50 µs on a small VM.
    static let parallelAbove = 4_000
    /// Node searches running now, over every call: the shards of one search go to
    /// other threads only while fewer run than there are cores — under load every
    /// core already has a search, and splitting one would only add hand-offs.
    static let running = Atomic<Int>(0)
    static let cores = ProcessInfo.processInfo.activeProcessorCount

    init(vector: [Float], k: Int, ef: Int, filter: Filter?, includeVector: Bool, includeMetadata: Bool, exact: Bool) {
        (self.vector, self.k, self.ef, self.filter) = (vector, k, ef, filter)
        (self.includeVector, self.includeMetadata, self.exact) = (includeVector, includeMetadata, exact)
    }

    /// The merged hits over the replicas that answered, and a report per shard in
    /// `replicas`' order (a failed lookup is that shard's failure).
    func run(on replicas: [(UInt32, Result<Replica, ShoalError>)]) throws -> ([Shoal_V1_ScoredPoint], [Shoal_V1_ShardReadReport]) {
        var results = [Result<ReplicaSearchResult, ShoalError>?](repeating: nil, count: replicas.count)
        let live = replicas.compactMap { try? $0.1.get() }
        let others = Self.running.wrappingAdd(1, ordering: .relaxed).oldValue
        defer { Self.running.wrappingSubtract(1, ordering: .relaxed) }
        if live.count > 1, others + 1 < Self.cores, live.reduce(0, { $0 + $1.index.count }) >= Self.parallelAbove {
            results.withUnsafeMutableBufferPointer { out in
                let out = UncheckedBuffer(out)
                DispatchQueue.concurrentPerform(iterations: replicas.count) { i in out.set(i, search(replicas[i].1)) }
            }
        } else {
            for i in replicas.indices { results[i] = search(replicas[i].1) }
        }
        var lists: [[NodeHit]] = []
        var reports: [Shoal_V1_ShardReadReport] = []
        var answered: [Replica] = []
        for ((shard, replica), result) in zip(replicas, results) {
            reports.append(ShardReport.of(shard, searched: {
                let result = try result!.get()
                let replica = try replica.get()
                lists.append(result.hits.map { NodeHit(hit: $0, replica: answered.count) })
                answered.append(replica)
                return result
            }))
        }
        let merged = TopKMerge.merge(lists, k: k)
        // Payloads replica by replica, then back in merged order; a hit overwritten or
        // deleted since its search has none and is dropped.
        var payloads = [HitPayload?](repeating: nil, count: merged.count)
        if includeVector || includeMetadata || filter != nil {
            for (r, replica) in answered.enumerated() {
                let mine = merged.indices.filter { merged[$0].replica == r }
                guard !mine.isEmpty else { continue }
                let found = try replica.payloads(of: mine.map { merged[$0].hit }, vector: includeVector, metadata: includeMetadata, filter: filter)
                for (i, payload) in zip(mine, found) { payloads[i] = payload }
            }
        } else {
            payloads = merged.map { _ in HitPayload() }
        }
        var hits: [Shoal_V1_ScoredPoint] = []
        hits.reserveCapacity(merged.count)
        for (hit, payload) in zip(merged, payloads) {
            guard let payload else { continue }
            let metric = answered[hit.replica].config.metric
            hits.append(.with {
                $0.id = hit.id
                $0.distance = hit.distance
                $0.score = metric.score(distance: hit.distance)
                if let vector = payload.vector { $0.vector = vector }
                if let metadata = payload.metadata { $0.metadata = encodeMetadata(metadata) }
            })
        }
        return (hits, reports)
    }

    private func search(_ replica: Result<Replica, ShoalError>) -> Result<ReplicaSearchResult, ShoalError> {
        Result { () throws(ShoalError) in
            let replica = try replica.get()
            let ef = max(k, ef == 0 ? replica.config.hnsw.ef : ef)
            do {
                return try replica.search(query: vector, k: k, ef: ef, filter: filter, exact: exact)
            } catch let error as ShoalError {
                throw error
            } catch {
                throw ShoalError(.internal, "search of \(replica.ref) failed: \(error)")
            }
        }
    }
}

/// A hit of a node-level merge: which of the answering replicas it came from.
private struct NodeHit: MergeableHit {
    let hit: ReplicaHit
    let replica: Int
    var id: String { hit.id }
    var distance: Float { hit.distance }
}

/// Reports of a node-level read, one per shard.
enum ShardReport {
    /// Runs `body` for `shard`: its report says OK (with what a search returned) or why not.
    static func of(_ shard: UInt32, searched body: () throws -> ReplicaSearchResult?) -> Shoal_V1_ShardReadReport {
        Shoal_V1_ShardReadReport.with { report in
            report.shardID = shard
            do {
                if let result = try body() {
                    report.strategy = result.strategy.proto
                    report.distancesComputed = UInt64(result.distancesComputed)
                    report.unindexedScanned = UInt64(result.unindexedScanned)
                }
            } catch {
                let status = ShoalError(handlerError: error)
                report.code = status.code.rawValue
                report.message = status.message
            }
        }
    }

    static func of(_ shard: UInt32, ran body: () throws -> Void) -> Shoal_V1_ShardReadReport {
        of(shard, searched: {
            try body()
            return nil
        })
    }
}

/// Writes into distinct slots of a buffer from `concurrentPerform`'s threads.
private struct UncheckedBuffer<T>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<T?>
    init(_ buffer: UnsafeMutableBufferPointer<T?>) { self.buffer = buffer }
    func set(_ i: Int, _ value: T) { buffer[i] = value }
}
