import CVectorKernels

extension HNSWIndex {
    /// Tombstones `id`: it is never returned again, and the lists of its neighbours are repaired so the graph
    /// stays navigable. Its memory is reclaimed by `vacuum()`. Throws `notFound` if `id` is not live.
    public func delete(id: UInt32) throws {
        try validate(id: id)
        store.lock(id)
        guard store.state(id) == .live else {
            store.unlock(id)
            throw IndexError.notFound(id: id)
        }
        store.setState(id, .deleted)
        store.unlock(id)
        liveCount.subtract(1, ordering: .relaxed)
        deletedCount.add(1, ordering: .relaxed)
        epochs.reading {
            let level = Int(store.levels[Int(id)])
            for l in 0...level {
                for nb in store.neighbours(id, level: l) where nb != id && store.isLive(nb) {
                    repairList(nb, level: l)
                }
            }
        }
        if let (ep, _) = loadEntry(), ep == id { ensureLiveEntry() }
    }

    /// Re-inserts `id` with a new vector (the id keeps its level, which is a function of the id).
    /// The old point is tombstoned and its neighbours repaired, searches that could still reach it finish,
    /// then the row is rewritten and linked again.
    ///
    /// A search that reaches the id through a one-directional link left unrepaired may, for the duration of
    /// the rewrite, compute one distance against a partly written row: it can mis-rank that point in that
    /// one search. Rows and link lists are never freed while reachable, so memory stays valid.
    public func update(id: UInt32, vector: [Float]) throws {
        try vector.withUnsafeBufferPointer { try update(id: id, vector: $0) }
    }

    public func update(id: UInt32, vector: UnsafeBufferPointer<Float>) throws {
        try validate(id: id)
        try validate(vector)
        try maintenance.withLock {
            switch store.state(id) {
            case .empty:
                break
            case .live:
                try delete(id: id)
                fallthrough
            case .deleted:
                epochs.synchronize()
                store.lock(id)
                for l in 0...Int(store.levels[Int(id)]) { shoal_store_release_u32(store.links(id, level: l), 0) }
                store.setState(id, .empty)
                store.unlock(id)
                deletedCount.subtract(1, ordering: .relaxed)
            }
            epochs.reading { insertFresh(id, vector) }
        }
    }

    /// Reclaims every tombstone: removes all links to tombstoned ids (repairing the lists that held them),
    /// waits for searches that could still reach them, then frees their links and marks the ids empty so they
    /// can be inserted again. Returns the number of ids reclaimed. Runs alongside searches and inserts.
    @discardableResult
    public func vacuum() -> Int {
        maintenance.withLock {
            let limit = UInt32(idLimit)
            let dead = (0..<limit).filter { store.state($0) == .deleted }
            if dead.isEmpty { return 0 }
            epochs.reading {
                // Every non-empty node, tombstones included: a node deleted after the snapshot is still reachable.
                for x in 0..<limit where store.state(x) != .empty {
                    for l in 0...Int(store.levels[Int(x)]) { repairList(x, level: l) }
                }
            }
            ensureLiveEntry()
            epochs.synchronize()
            for d in dead {
                store.lock(d)
                shoal_store_release_u32(store.links(d, level: 0), 0)
                store.freeUpper(d)
                store.setState(d, .empty)
                store.unlock(d)
            }
            deletedCount.subtract(dead.count, ordering: .relaxed)
            return dead.count
        }
    }

    /// Rewrites `node`'s list on `level` without tombstoned ids, choosing replacements among the tombstones'
    /// own neighbours with the HNSW heuristic. Does nothing when the list holds no tombstone.
    func repairList(_ node: UInt32, level: Int) {
        store.lock(node)
        defer { store.unlock(node) }
        let current = store.neighbours(node, level: level)
        guard current.contains(where: { !store.isLive($0) }) else { return }
        var seen = Set<UInt32>([node])
        var pool: [UInt32] = []
        for e in current where seen.insert(e).inserted {
            if store.isLive(e) {
                pool.append(e)
            } else if Int(store.levels[Int(e)]) >= level, store.state(e) == .deleted {
                for f in store.neighbours(e, level: level) where store.isLive(f) && seen.insert(f).inserted {
                    pool.append(f)
                }
            }
        }
        let v = store.vector(node)
        var cands = pool.map { SearchHit(id: $0, distance: distance(v, store.vector($0))) }
        cands.sort { $0.distance < $1.distance }
        store.setNeighbours(node, level: level, selectNeighbours(cands, max: store.maxLinks(level: level)).lazy.map(\.id))
    }

    /// Checks the graph's structural invariants (tests, debug builds): list lengths within bounds, no self
    /// links, every link to an id that holds a point with at least that level, a live entry point when any
    /// point is live. Call with no concurrent writers.
    public func _checkInvariants() {
        let limit = UInt32(idLimit)
        var live = 0
        for x in 0..<limit where store.state(x) != .empty {
            if store.isLive(x) { live += 1 }
            for l in 0...Int(store.levels[Int(x)]) {
                let list = store.neighbours(x, level: l)
                precondition(list.count <= store.maxLinks(level: l), "list of \(x) on level \(l) too long")
                for y in list {
                    precondition(y != x, "self link at \(x)")
                    precondition(y < limit && store.state(y) != .empty, "link \(x) → \(y) to an empty id")
                    precondition(Int(store.levels[Int(y)]) >= l, "link \(x) → \(y) above its level")
                }
            }
        }
        precondition(live == count, "live count \(count) but \(live) live ids")
        if live > 0 {
            let (ep, top) = loadEntry()!
            precondition(store.isLive(ep), "entry point \(ep) is not live")
            precondition(Int(store.levels[Int(ep)]) == top, "entry level mismatch")
        }
    }

    /// Moves the entry point to a live node of the highest level when the current one is not live.
    func ensureLiveEntry() {
        topLock.withLock {
            guard let (ep, _) = loadEntry(), !store.isLive(ep) else { return }
            var best: (UInt32, Int)?
            for x in 0..<UInt32(idLimit) where store.isLive(x) {
                let l = Int(store.levels[Int(x)])
                if best == nil || l > best!.1 { best = (x, l) }
            }
            if let (id, level) = best { storeEntry(id, level: level) } else { entry.store(0, ordering: .releasing) }
        }
    }
}
