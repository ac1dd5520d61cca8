import CVectorKernels
import Dispatch
import Synchronization

extension HNSWIndex {
    /// Inserts `vector` under internal id `id`. An id that holds a point (live or tombstoned) is updated:
    /// see `update(id:vector:)`.
    public func insert(id: UInt32, vector: [Float]) throws {
        try vector.withUnsafeBufferPointer { try insert(id: id, vector: $0) }
    }

    /// Inserts from an unsafe buffer (no copy of the caller's array).
    public func insert(id: UInt32, vector: UnsafeBufferPointer<Float>) throws {
        try validate(id: id)
        try validate(vector)
        if store.state(id) != .empty {
            try update(id: id, vector: vector)
            return
        }
        epochs.reading { insertFresh(id, vector) }
    }

    /// Inserts rows `0..<count` of a row-major matrix as ids `firstId + row`, on `threads` threads.
    /// The graph is the same whatever the thread count up to insertion-order effects (levels are seeded per id).
    public func insert(contentsOf rows: UnsafeBufferPointer<Float>, firstId: UInt32 = 0, threads: Int = 1) throws {
        precondition(rows.count % dimension == 0, "rows must be a whole number of vectors")
        let n = rows.count / dimension
        guard n > 0 else { return }
        try validate(id: firstId + UInt32(n - 1))
        for x in rows where !x.isFinite { throw IndexError.nonFiniteValue }
        let baseBits = UInt(bitPattern: rows.baseAddress!)  // raw pointers are not Sendable; the caller's buffer outlives the call
        let dim = dimension
        // Insert the first point alone so every thread starts from an entry point.
        try insert(id: firstId, vector: UnsafeBufferPointer(start: rows.baseAddress!, count: dim))
        let workers = max(1, min(threads, n))
        let next = AtomicCounter(1)
        let body: @Sendable (Int) -> Void = { [self] _ in
            let base = UnsafePointer<Float>(bitPattern: baseBits)!
            while true {
                let row = next.take(16)
                if row >= n { return }
                for r in row..<min(row + 16, n) {
                    let v = UnsafeBufferPointer(start: base + r * dim, count: dim)
                    epochs.reading { insertFresh(firstId + UInt32(r), v) }
                }
            }
        }
        if workers == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: body) }
    }

    /// Writes the vector and node metadata, publishes the id as live, then links it into the graph.
    func insertFresh(_ id: UInt32, _ vector: UnsafeBufferPointer<Float>) {
        let row = store.mutableVector(id)
        row.update(from: vector.baseAddress!, count: dimension)
        if metric == .cosine { normalize(UnsafeMutableBufferPointer(start: row, count: dimension)) }
        store.encode(id)
        let level = levelFor(id)
        store.levels[Int(id)] = UInt8(level)
        store.freeUpper(id)
        store.allocateUpper(id, level: level)
        shoal_store_release_u32(store.links(id, level: 0), 0)
        store.setState(id, .live)
        liveCount.add(1, ordering: .relaxed)
        var hw = highWater.load(ordering: .relaxed)
        while hw <= id {
            let (done, now) = highWater.compareExchange(expected: hw, desired: id + 1, ordering: .acquiringAndReleasing)
            if done { break }
            hw = now
        }
        pool.withContext { ctx in link(id, level: level, ctx: ctx) }
    }

    /// Connects a published node on every level it has.
    func link(_ id: UInt32, level: Int, ctx: SearchContext) {
        if loadEntry() == nil {
            let placed = topLock.withLock { () -> Bool in
                if loadEntry() != nil { return false }
                storeEntry(id, level: level)
                return true
            }
            if placed { return }
        }
        let (_, top) = loadEntry()!
        if level > top {
            topLock.withLock {
                let (ep, top) = loadEntry()!
                connect(id, level: level, from: ep, top: top, ctx: ctx)
                if level > top { storeEntry(id, level: level) }
            }
        } else {
            let (ep, top) = loadEntry()!
            connect(id, level: level, from: ep, top: top, ctx: ctx)
        }
    }

    func connect(_ id: UInt32, level: Int, from ep: UInt32, top: Int, ctx: SearchContext) {
        guard ep != id else { return }
        let q = store.vector(id)
        var cur = ep
        var curDist = distance(q, ep)
        var count = 0
        var l = top
        while l > level {
            greedy(q, &cur, &curDist, level: l, distances: &count)
            l -= 1
        }
        l = min(level, top)
        while l >= 0 {
            _ = searchLayer(ctx, floatRows(q), entry: cur, entryDistance: curDist, ef: params.efConstruction, level: l,
                            accept: AcceptLiveExcept(store: store, id: id))
            var found = drainAscending(ctx)
            if found.isEmpty { l -= 1; continue }
            cur = found[0].id
            curDist = found[0].distance
            found = selectNeighbours(found, max: params.m)
            // Checked under the node's lock, so a vacuum sweep that already passed this node has seen no
            // link to a point it is reclaiming (see `vacuum()`).
            store.lock(id)
            store.setNeighbours(id, level: l, found.lazy.map(\.id).filter { self.store.isLive($0) })
            store.unlock(id)
            for hit in found { addLink(from: hit.id, to: id, distance: hit.distance, level: l) }
            l -= 1
        }
    }

    /// Pops a context's result heap into an array sorted nearest first.
    func drainAscending(_ ctx: SearchContext) -> [SearchHit] {
        let n = ctx.results.count
        var out = [SearchHit](repeating: SearchHit(id: 0, distance: 0), count: n)
        var i = n - 1
        while !ctx.results.isEmpty {
            out[i] = SearchHit(id: ctx.results.topId, distance: ctx.results.topKey)
            ctx.results.pop()
            i -= 1
        }
        return out
    }

    /// HNSW's neighbour heuristic: keep a candidate only if it is nearer to the base than to every kept one.
    /// `candidates` sorted nearest first; returns at most `max`.
    func selectNeighbours(_ candidates: [SearchHit], max: Int) -> [SearchHit] {
        if candidates.count <= max { return candidates }
        var kept: [SearchHit] = []
        kept.reserveCapacity(max)
        for c in candidates {
            if kept.count >= max { break }
            let v = store.vector(c.id)
            var good = true
            for r in kept where distance(v, store.vector(r.id)) < c.distance {
                good = false
                break
            }
            if good { kept.append(c) }
        }
        return kept
    }

    /// Adds `newId` to `node`'s list on `level`, pruning with the heuristic when the list is full.
    func addLink(from node: UInt32, to newId: UInt32, distance d: Float, level: Int) {
        store.lock(node)
        defer { store.unlock(node) }
        guard store.isLive(node), store.isLive(newId) else { return }
        let list = store.links(node, level: level)
        let n = Int(shoal_load_acquire_u32(list))
        for j in 0..<n where shoal_load_acquire_u32(list + 1 + j) == newId { return }
        let maxN = store.maxLinks(level: level)
        if n < maxN {
            shoal_store_release_u32(list + 1 + n, newId)
            shoal_store_release_u32(list, UInt32(n + 1))
            return
        }
        let v = store.vector(node)
        var cands = [SearchHit(id: newId, distance: d)]
        cands.reserveCapacity(n + 1)
        for j in 0..<n {
            let e = shoal_load_acquire_u32(list + 1 + j)
            if store.isLive(e) { cands.append(SearchHit(id: e, distance: distance(v, store.vector(e)))) }
        }
        cands.sort { $0.distance < $1.distance }
        store.setNeighbours(node, level: level, selectNeighbours(cands, max: maxN).lazy.map(\.id))
    }
}

/// A tiny atomic work counter for the parallel build.
final class AtomicCounter: Sendable {
    private let value: Atomic<Int>
    init(_ start: Int) { value = Atomic(start) }
    func take(_ n: Int) -> Int { value.add(n, ordering: .relaxed).oldValue }
}
