import VectorCore
import VectorIndex

/// One hit of a replica search, before payloads are attached.
struct ReplicaHit: MergeableHit {
    var internalID: UInt32
    var id: String
    var distance: Float
}

struct ReplicaSearchResult {
    var hits: [ReplicaHit]
    var strategy: SearchStrategy
    var distancesComputed: Int
    var unindexedScanned: Int
}

/// What a search needs of a replica's maps, taken under the read lock in one short
/// step so the graph walk runs with no replica lock: the committer never waits for a
/// walk, and a walk never waits for a commit.
private struct SearchView {
    /// The filter's matches (nil: no filter).
    var matching: IdSet?
    /// Points whose newest version is not in the graph yet (scanned exactly), by internal id.
    var pending: [UInt32: PendingVector]
    /// Deleted points the graph still holds.
    var hiddenDeletes: Set<UInt32>
    var liveCount: Int

    /// Whether the graph may hold points the search must not return.
    var mustExclude: Bool { !pending.isEmpty || !hiddenDeletes.isEmpty }
}

extension Replica {
    /// Top-k by distance (ties by the external id's UTF-8 bytes, as the merge orders them)
    /// over every live point matching `filter`. `query` is already validated (dimension,
    /// finite) and, for cosine, normalised.
    ///
    /// Three steps: the view (read lock), the walk and the tail scan (no replica lock:
    /// the index allows inserts beside searches), then the external ids (read lock),
    /// where a point deleted since the view is dropped.
    func search(query: [Float], k: Int, ef: Int, filter: Filter?, exact: Bool) throws -> ReplicaSearchResult {
        let view = lock.read {
            SearchView(matching: filter.map { payload.evaluate($0) }.map { $0.count > 4096 ? $0.bitmapped() : $0 },
                       pending: pending, hiddenDeletes: unindexedDeletes, liveCount: liveCount)
        }
        var graphHits: [SearchHit] = []
        var strategy: SearchStrategy = exact ? .exact : (view.matching == nil ? .graph : .exactFiltered)
        var computed = 0
        if index.count > 0, view.matching?.isEmpty != true {
            let result = try searchGraph(query: query, k: k, ef: ef, view: view, exact: exact)
            (graphHits, strategy, computed) = (result.hits, result.strategy, result.distancesComputed)
        }
        var tail: [(UInt32, Float)] = []
        if !view.pending.isEmpty {
            // Prepared as the index prepares it, so a point ranks the same before and after the graph has it.
            let prepared = index.prepared(query)
            for (internalID, entry) in view.pending where view.matching?.contains(internalID) ?? true {
                tail.append((internalID, index.distance(prepared: prepared, entry.prepared)))
            }
        }
        var hits: [ReplicaHit] = lock.read {
            var hits: [ReplicaHit] = []
            hits.reserveCapacity(graphHits.count + tail.count)
            for hit in graphHits {
                if let id = externalIDs[hit.id] { hits.append(ReplicaHit(internalID: hit.id, id: id, distance: hit.distance)) }
            }
            for (internalID, distance) in tail {
                if let id = externalIDs[internalID] { hits.append(ReplicaHit(internalID: internalID, id: id, distance: distance)) }
            }
            return hits
        }
        hits.sort { TopKMerge.precedes($0, $1) }
        if hits.count > k { hits.removeLast(hits.count - k) }
        return ReplicaSearchResult(hits: hits, strategy: strategy, distancesComputed: computed + tail.count, unindexedScanned: tail.count)
    }

    /// The graph (or the index's exact scan) over indexed points. Points whose newest
    /// version is still pending, and deletes the graph has not seen, are excluded here:
    /// they are answered by the tail scan or not at all.
    private func searchGraph(query: [Float], k: Int, ef: Int, view: SearchView, exact: Bool) throws -> SearchResult {
        let pending = view.pending
        let hidden = view.hiddenDeletes
        let visible: (UInt32) -> Bool
        switch (view.matching, view.mustExclude) {
        case (nil, false): visible = { _ in true }
        case (nil, true): visible = { pending[$0] == nil && !hidden.contains($0) }
        case (let m?, false): visible = { m.contains($0) }
        case (let m?, true): visible = { m.contains($0) && pending[$0] == nil }
        }
        let matching = view.matching
        if exact {
            return try index.exactSearch(query: query, k: k, ids: matching?.sortedIds, filter: view.mustExclude || matching != nil ? visible : nil)
        }
        guard matching != nil || view.mustExclude else {
            return try index.search(query: query, k: k, ef: ef)
        }
        let estimate = matching?.count ?? max(0, view.liveCount - pending.count)
        let ids = matching.flatMap { $0.count <= 65_536 ? $0.sortedIds : nil }
        return try index.search(query: query, k: k, ef: ef, filter: SearchFilter(estimatedMatches: estimate, matchingIds: ids, visible))
    }

    /// What a search's hits carry besides id and distance, read in one short step under
    /// the read lock: metadata from the payload index (memory, not RocksDB), and the
    /// stored vector from RocksDB only when asked for. A hit whose point was deleted
    /// or overwritten since the search (another internal id now, or metadata that no
    /// longer matches `filter`) is nil: the caller drops it.
    func payloads(of hits: [ReplicaHit], vector: Bool, metadata: Bool, filter: Filter?) throws -> [HitPayload?] {
        let found: [HitPayload?] = lock.read {
            hits.map { hit in
                guard externalIDs[hit.internalID].map({ UTF8Key($0) == UTF8Key(hit.id) }) == true else { return nil }
                if let filter, !payload.liveMatches(hit.internalID, filter) { return nil }
                return HitPayload(metadata: metadata ? payload.metadata(of: hit.internalID) ?? [:] : nil)
            }
        }
        guard vector else { return found }
        let keys = hits.map { Keys.point(number, $0.internalID) }
        let stored = try db.multiGet(keys)
        return try zip(found, stored).map { payload, bytes in
            guard var payload, let bytes else { return nil }  // deleted since
            payload.vector = try bytes.withUnsafeBytes { try PointRecord.decodeVector($0) }
            return payload
        }
    }
}

/// A hit's metadata and vector, each only if asked for.
struct HitPayload {
    var metadata: Metadata?
    var vector: [Float]? = nil
}
