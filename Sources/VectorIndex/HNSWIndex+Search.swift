import CVectorKernels

/// Which nodes a layer search may return (all nodes are stepping stones).
protocol Acceptance {
    func accepts(_ id: UInt32) -> Bool
    /// True when some reachable nodes may be refused: the walk then keeps going until it holds `ef` results.
    var restricts: Bool { get }
}

struct AcceptLive: Acceptance {
    let store: NodeStore
    let restricts: Bool
    @inline(__always) func accepts(_ id: UInt32) -> Bool { store.isLive(id) }
}

/// No deletes and no filter: every reachable node is live (ids are published live before they are linked),
/// so no state load per node. A delete that races with such a walk may still see its point returned once.
struct AcceptAll: Acceptance {
    var restricts: Bool { false }
    @inline(__always) func accepts(_ id: UInt32) -> Bool { true }
}

struct AcceptLiveExcept: Acceptance {
    let store: NodeStore
    let id: UInt32
    var restricts: Bool { false }
    @inline(__always) func accepts(_ other: UInt32) -> Bool { other != id && store.isLive(other) }
}

struct AcceptFiltered: Acceptance {
    let store: NodeStore
    let filter: (UInt32) -> Bool
    var restricts: Bool { true }
    @inline(__always) func accepts(_ id: UInt32) -> Bool { store.isLive(id) && filter(id) }
}

extension HNSWIndex {
    /// Greedy descent on one upper level: moves `cur` to a local minimum of the distance to `q`.
    @inline(__always)
    func greedy(_ q: UnsafePointer<Float>, _ cur: inout UInt32, _ curDist: inout Float, level: Int, distances: inout Int) {
        var changed = true
        while changed {
            changed = false
            let list = store.links(cur, level: level)
            let n = Int(shoal_load_acquire_u32(list))
            for j in 0..<n {
                let nb = shoal_load_acquire_u32(list + 1 + j)
                let d = distance(q, nb)
                distances &+= 1
                if d < curDist {
                    curDist = d
                    cur = nb
                    changed = true
                }
            }
        }
    }

    /// Beam search on one level from one entry point; leaves at most `ef` accepted nodes in `ctx.results`
    /// (a max-heap by distance) and returns the distances computed.
    @inline(__always)
    func searchLayer<A: Acceptance, D: RowDistance>(_ ctx: SearchContext, _ dist: D, entry: UInt32, entryDistance: Float,
                                                    ef: Int, level: Int, accept: A) -> Int {
        let visited = ctx.visited
        let tag = ctx.nextTag(limit: idLimit)
        let batch = ctx.batch
        let ahead = params.prefetchAhead
        var computed = 0
        // Local copies: a class property costs a dynamic exclusivity check on every access.
        var results = ctx.results
        var candidates = ctx.candidates
        defer {
            ctx.results = results
            ctx.candidates = candidates
        }
        visited[Int(entry)] = tag
        var lower = Float.infinity
        if accept.accepts(entry) {
            results.push(entryDistance, entry)
            lower = entryDistance
        }
        candidates.push(-entryDistance, entry)
        let restricts = accept.restricts
        while !candidates.isEmpty {
            let candDist = -candidates.topKey
            if candDist > lower && (results.count >= ef || !restricts) { break }
            let c = candidates.topId
            candidates.pop()
            let list = store.links(c, level: level)
            let n = Int(shoal_load_acquire_u32(list))
            // Pass 1: mark unvisited neighbours and prefetch their rows; pass 2: distances.
            var fresh = 0
            for j in 0..<n {
                let nb = shoal_load_acquire_u32(list + 1 + j)
                if visited[Int(nb)] == tag { continue }
                visited[Int(nb)] = tag
                batch[fresh] = nb
                if ahead == 0 || fresh < ahead { dist.prefetch(nb) }
                fresh &+= 1
            }
            for i in 0..<fresh {
                let nb = batch[i]
                if ahead > 0 && i &+ ahead < fresh { dist.prefetch(batch[i &+ ahead]) }
                let d = dist(nb)
                if results.count < ef || d < lower {
                    candidates.push(-d, nb)
                    if accept.accepts(nb) {
                        results.push(d, nb)
                        if results.count > ef { results.pop() }
                        lower = results.topKey
                    }
                }
            }
            computed &+= fresh
            // The next expansion reads this list: start loading it now.
            if !candidates.isEmpty { shoal_prefetch(store.links(candidates.topId, level: level)) }
        }
        return computed
    }

    // MARK: public search

    /// The `k` nearest live points to `query` (nearest first), choosing graph or exact search by cost.
    ///
    /// - `ef`: beam width of the graph walk (default `params.ef`; raised to `k`).
    /// - `filter`: only points whose id satisfies the predicate are returned; filtered-out points are still
    ///   stepping stones. With `estimatedMatches` (or `matchingIds`), a selective filter runs as an exact search.
    public func search(query: [Float], k: Int, ef: Int? = nil, filter: SearchFilter? = nil) throws -> SearchResult {
        try query.withUnsafeBufferPointer { try search(query: $0, k: k, ef: ef, filter: filter) }
    }

    public func search(query: UnsafeBufferPointer<Float>, k: Int, ef: Int? = nil, filter: SearchFilter? = nil) throws -> SearchResult {
        try validate(query)
        precondition(k > 0, "k must be positive")
        let efEff = max(ef ?? params.ef, k)
        let strategy = plan(k: k, ef: efEff, filter: filter)
        return withPrepared(query) { q in
            switch strategy {
            case .exact:
                return exactScan(q, k: k, filter: nil, strategy: .exact)
            case .exactFiltered:
                if let ids = filter!.matchingIds {
                    return exactScan(q, k: k, ids: ids, filter: filter!.matches, strategy: .exactFiltered)
                }
                return exactScan(q, k: k, filter: filter!.matches, strategy: .exactFiltered)
            case .graph, .graphFiltered:
                return graphSearch(q, k: k, ef: efEff, filter: filter?.matches)
            }
        }
    }

    /// Graph search only (no planner): the HNSW walk with an optional predicate.
    public func graphSearch(query: [Float], k: Int, ef: Int, filter: ((UInt32) -> Bool)? = nil) throws -> SearchResult {
        try query.withUnsafeBufferPointer { try graphSearch(query: $0, k: k, ef: ef, filter: filter) }
    }

    /// `quantized` overrides `params.quantizedTraversal` for this walk (ignored without an int8 copy).
    public func graphSearch(query: UnsafeBufferPointer<Float>, k: Int, ef: Int, filter: ((UInt32) -> Bool)? = nil,
                            quantized: Bool? = nil) throws -> SearchResult {
        try validate(query)
        return withPrepared(query) { graphSearch($0, k: k, ef: max(ef, k), filter: filter, useCodes: quantized) }
    }

    func graphSearch(_ q: UnsafePointer<Float>, k: Int, ef: Int, filter: ((UInt32) -> Bool)?,
                     useCodes: Bool? = nil) -> SearchResult {
        let useCodes = useCodes ?? params.quantizedTraversal ?? true  // only taken when the int8 copy exists
        return epochs.reading {
            guard let (ep, top) = loadEntry() else { return SearchResult(hits: [], strategy: .graph, distancesComputed: 0) }
            return pool.withContext { ctx in
                var cur = ep
                var curDist = distance(q, ep)
                var computed = 1
                var l = top
                while l > 0 {
                    greedy(q, &cur, &curDist, level: l, distances: &computed)
                    l -= 1
                }
                let strategy: SearchStrategy = filter == nil ? .graph : .graphFiltered
                let restricts = filter != nil || deletedCount.load(ordering: .relaxed) > 0
                let layer: Int
                if useCodes, let coded = withCodeRows(q, { codes -> (Int, [SearchHit]) in
                    // Walk on int8 rows, then re-rank the ef survivors on full vectors.
                    let entryDistance = codes(cur)
                    let walked: Int
                    if let filter {
                        walked = searchLayer(ctx, codes, entry: cur, entryDistance: entryDistance, ef: ef, level: 0,
                                             accept: AcceptFiltered(store: store, filter: filter))
                    } else {
                        walked = searchLayer(ctx, codes, entry: cur, entryDistance: entryDistance, ef: ef, level: 0,
                                             accept: AcceptLive(store: store, restricts: restricts))
                    }
                    return (walked, drainAscending(ctx))
                }) {
                    var hits = coded.1
                    for i in hits.indices { hits[i].distance = distance(q, hits[i].id) }
                    hits.sort { $0.distance < $1.distance || ($0.distance == $1.distance && $0.id < $1.id) }
                    computed += coded.0 + hits.count
                    if filter == nil { noteGraphCost(distances: coded.0, ef: ef) }
                    return SearchResult(hits: Array(hits.prefix(k)), strategy: strategy, distancesComputed: computed)
                }
                let rows = floatRows(q)
                if let filter {
                    layer = searchLayer(ctx, rows, entry: cur, entryDistance: curDist, ef: ef, level: 0,
                                        accept: AcceptFiltered(store: store, filter: filter))
                } else if !restricts {
                    layer = searchLayer(ctx, rows, entry: cur, entryDistance: curDist, ef: ef, level: 0, accept: AcceptAll())
                    noteGraphCost(distances: layer, ef: ef)
                } else {
                    layer = searchLayer(ctx, rows, entry: cur, entryDistance: curDist, ef: ef, level: 0,
                                        accept: AcceptLive(store: store, restricts: restricts))
                    noteGraphCost(distances: layer, ef: ef)
                }
                computed += layer
                while ctx.results.count > k { ctx.results.pop() }
                return SearchResult(hits: drainAscending(ctx), strategy: strategy, distancesComputed: computed)
            }
        }
    }
}
