import VectorCore
import VectorIndex

/// One hit of a replica search, before ids and payloads are attached.
struct ReplicaHit {
    var internalID: UInt32
    var externalID: String
    var distance: Float
}

struct ReplicaSearchResult {
    var hits: [ReplicaHit]
    var strategy: SearchStrategy
    var distancesComputed: Int
    var unindexedScanned: Int
}

extension Replica {
    /// Top-k by distance (ties by the external id's UTF-8 bytes, as the merge orders them) over every live point matching `filter`.
    /// `query` is already validated (dimension, finite) and, for cosine, normalised.
    func search(query: [Float], k: Int, ef: Int, filter: Filter?, exact: Bool) throws -> ReplicaSearchResult {
        try lock.read {
            let matching = filter.map { payload.evaluate($0) }.map { $0.count > 4096 ? $0.bitmapped() : $0 }
            var graphHits: [SearchHit] = []
            var strategy: SearchStrategy = exact ? .exact : (matching == nil ? .graph : .exactFiltered)
            var computed = 0
            if index.count > 0, matching?.isEmpty != true {
                let result = try searchGraph(query: query, k: k, ef: ef, matching: matching, exact: exact)
                (graphHits, strategy, computed) = (result.hits, result.strategy, result.distancesComputed)
            }
            var hits = graphHits.compactMap { hit in
                externalIDs[hit.id].map { ReplicaHit(internalID: hit.id, externalID: $0, distance: hit.distance) }
            }
            let scanned = scanPending(query: index.prepared(query), matching: matching, into: &hits)
            hits.sort { $0.distance < $1.distance || ($0.distance == $1.distance && $0.externalID.utf8Precedes($1.externalID)) }
            if hits.count > k { hits.removeLast(hits.count - k) }
            return ReplicaSearchResult(hits: hits, strategy: strategy, distancesComputed: computed + scanned, unindexedScanned: scanned)
        }
    }

    /// The graph (or the index's exact scan) over indexed points. Points whose newest
    /// version is still pending, and deletes the graph has not seen, are excluded here:
    /// they are answered by `scanPending` or not at all.
    private func searchGraph(query: [Float], k: Int, ef: Int, matching: IdSet?, exact: Bool) throws -> SearchResult {
        let mustExclude = !pending.isEmpty || unindexedDeletes > 0
        let live = payload
        let pending = pending
        let visible: (UInt32) -> Bool
        switch (matching, mustExclude) {
        case (nil, false): visible = { _ in true }
        case (nil, true): visible = { live.contains($0) && pending[$0] == nil }
        case (let m?, false): visible = { m.contains($0) }
        case (let m?, true): visible = { m.contains($0) && pending[$0] == nil }
        }
        if exact {
            return try index.exactSearch(query: query, k: k, ids: matching?.sortedIds, filter: mustExclude || matching != nil ? visible : nil)
        }
        guard matching != nil || mustExclude else {
            return try index.search(query: query, k: k, ef: ef)
        }
        let estimate = matching?.count ?? max(0, liveCount - pending.count)
        let ids = matching.flatMap { $0.count <= 65_536 ? $0.sortedIds : nil }
        return try index.search(query: query, k: k, ef: ef, filter: SearchFilter(estimatedMatches: estimate, matchingIds: ids, visible))
    }

    /// Exact distances to the not-yet-indexed points; returns how many it computed.
    private func scanPending(query: [Float], matching: IdSet?, into hits: inout [ReplicaHit]) -> Int {
        var scanned = 0
        for (internalID, entry) in pending {
            if let matching, !matching.contains(internalID) { continue }
            guard let externalID = externalIDs[internalID] else { continue }
            scanned += 1
            hits.append(ReplicaHit(internalID: internalID, externalID: externalID, distance: index.distance(prepared: query, entry.prepared)))
        }
        return scanned
    }
}
