import CVectorKernels

extension HNSWIndex {
    /// Exact top-`k` over the live points among `ids` (all live points when `ids` is nil): the test oracle
    /// and the fallback for selective filters. Ids that are not live are skipped.
    public func exactSearch(query: [Float], k: Int, ids: [UInt32]? = nil, filter: ((UInt32) -> Bool)? = nil) throws -> SearchResult {
        try query.withUnsafeBufferPointer { buf in
            try validate(buf)
            precondition(k > 0, "k must be positive")
            return withPrepared(buf) { q in
                if let ids { return exactScan(q, k: k, ids: ids, filter: filter, strategy: .exactFiltered) }
                return exactScan(q, k: k, filter: filter, strategy: filter == nil ? .exact : .exactFiltered)
            }
        }
    }

    /// Scans every id below the high-water mark.
    func exactScan(_ q: UnsafePointer<Float>, k: Int, filter: ((UInt32) -> Bool)?, strategy: SearchStrategy) -> SearchResult {
        let limit = UInt32(idLimit)
        return exactScan(q, k: k, ids: 0..<limit, filter: filter, strategy: strategy)
    }

    func exactScan(_ q: UnsafePointer<Float>, k: Int, ids: some Sequence<UInt32>, filter: ((UInt32) -> Bool)?,
                   strategy: SearchStrategy) -> SearchResult {
        epochs.reading {
            if store.codes != nil && ids.underestimatedCount >= 2048 {
                return quantizedScan(q, k: k, ids: ids, filter: filter, strategy: strategy)
            }
            var heap = PairHeap(capacity: k + 1)
            defer { heap.free() }
            var computed = 0
            let limit = UInt32(idLimit)
            for id in ids {
                guard id < limit, store.isLive(id) else { continue }
                if let filter, !filter(id) { continue }
                let d = distance(q, id)
                computed &+= 1
                if heap.count < k {
                    heap.push(d, id)
                } else if d < heap.topKey {
                    heap.pop()
                    heap.push(d, id)
                }
            }
            var hits = [SearchHit](repeating: SearchHit(id: 0, distance: 0), count: heap.count)
            var i = heap.count - 1
            while !heap.isEmpty {
                hits[i] = SearchHit(id: heap.topId, distance: heap.topKey)
                heap.pop()
                i -= 1
            }
            return SearchResult(hits: hits, strategy: strategy, distancesComputed: computed)
        }
    }
}

extension HNSWIndex {
    /// Exact search in two steps: rank every candidate by its int8 code (a quarter of the bytes of a full
    /// row), keep the best `max(8k, 64)`, and re-rank those on their full vectors.
    func quantizedScan(_ q: UnsafePointer<Float>, k: Int, ids: some Sequence<UInt32>, filter: ((UInt32) -> Bool)?,
                       strategy: SearchStrategy) -> SearchResult {
        let keep = max(8 * k, 64)
        var heap = PairHeap(capacity: keep + 1)
        defer { heap.free() }
        let limit = UInt32(idLimit)
        var computed = 0
        _ = withCodeRows(q) { rows in
            if let range = ids as? Range<UInt32> {
                // Whole-collection scan: rows in blocks through one C loop, then liveness, filter and heap.
                let block = 256
                withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { out in
                    var start = Int(range.lowerBound)
                    let end = Int(min(range.upperBound, limit))
                    while start < end {
                        let n = min(block, end - start)
                        shoal_scan_codes(rows.qCodes, rows.qScale, rows.qNorm, rows.codes + start * rows.stride, rows.stride,
                                         rows.codeLength, n, rows.isL2 ? 1 : 0, rows.bias, out.baseAddress!,
                                         params.allowSIMD ? 1 : 0)
                        for i in 0..<n {
                            let id = UInt32(start + i)
                            guard store.isLive(id) else { continue }
                            if let filter, !filter(id) { continue }
                            computed &+= 1
                            let approx = out[i]
                            if heap.count < keep {
                                heap.push(approx, id)
                            } else if approx < heap.topKey {
                                heap.pop()
                                heap.push(approx, id)
                            }
                        }
                        start += n
                    }
                }
                return
            }
            for id in ids {
                guard id < limit, store.isLive(id) else { continue }
                if let filter, !filter(id) { continue }
                let approx = rows(id)
                computed &+= 1
                if heap.count < keep {
                    heap.push(approx, id)
                } else if approx < heap.topKey {
                    heap.pop()
                    heap.push(approx, id)
                }
            }
        }
        var hits: [SearchHit] = []
        hits.reserveCapacity(heap.count)
        while !heap.isEmpty {
            hits.append(SearchHit(id: heap.topId, distance: distance(q, heap.topId)))
            heap.pop()
        }
        computed &+= hits.count
        hits.sort { $0.distance < $1.distance || ($0.distance == $1.distance && $0.id < $1.id) }
        return SearchResult(hits: Array(hits.prefix(k)), strategy: strategy, distancesComputed: computed)
    }
}

// MARK: - planner

extension HNSWIndex {
    /// Chooses graph or exact search by estimated cost, in units of one graph-walk distance:
    /// graph ≈ (distances per unit ef, measured on recent unfiltered walks) × ef ÷ selectivity, capped at
    /// the collection size; exact ≈ matches × `params.exactDistanceCost` (+ a predicate call per point when
    /// only a predicate is given). Small collections and selective filters therefore run exactly.
    public func plan(k: Int, ef: Int, filter: SearchFilter?) -> SearchStrategy {
        let n = max(count, 1)
        let perEf = Float(bitPattern: graphCostPerEf.load(ordering: .relaxed))
        let walk = perEf * Float(max(ef, k))
        let exactUnit = store.codes != nil ? params.quantizedScanCost : params.exactDistanceCost
        guard let filter else {
            return Float(n) * exactUnit < walk ? .exact : .graph
        }
        guard let matches = filter.estimatedMatches else { return .graphFiltered }
        let selectivity = Float(max(1, min(matches, n))) / Float(n)
        let graphCost = min(walk / selectivity, Float(n) * 1.5)
        var exactCost = Float(matches) * exactUnit
        if filter.matchingIds == nil { exactCost += Float(n) * 0.02 }
        return exactCost < graphCost ? .exactFiltered : .graphFiltered
    }

    /// Folds one unfiltered walk's distance count into the running cost estimate.
    func noteGraphCost(distances: Int, ef: Int) {
        let sample = Float(distances) / Float(ef)
        let old = Float(bitPattern: graphCostPerEf.load(ordering: .relaxed))
        graphCostPerEf.store((old * 0.98 + sample * 0.02).bitPattern, ordering: .relaxed)
    }
}
