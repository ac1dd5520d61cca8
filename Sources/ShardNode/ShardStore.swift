import Foundation
import Logging
import ShoalProto
import Synchronization
import VectorCore
import VectorIndex
import VectorStorage

/// Everything a node stores: one RocksDB for all its replicas, the replicas
/// themselves, and the committer that writes for them.
public final class ShardStore: Sendable {
    public struct Options: Sendable {
        /// fsync the WAL before acknowledging a write (group commit shares it).
        public var sync = true
        /// Address space reserved per replica graph, in points.
        public var replicaCapacity = 1 << 22
        /// Address space all replica graphs together may reserve (`IndexFootprint`): a
        /// replica that would pass it is refused at create (RESOURCE_EXHAUSTED) and set
        /// aside at start.
        public var maxAddressSpace = ShardStore.defaultAddressSpaceBudget
        /// Graph image refresh: after this many changed points.
        public var imageEveryPoints = 50_000
        /// Benchmarks only: load without the graph images (rebuild every graph).
        public var ignoreImages = false
        /// Tests only: the indexer takes no work, so every write stays in the exact-scanned tail.
        public var indexingPaused = false
        /// How long a tombstone is kept after its delete was committed (and after the
        /// last copy page a shard move sent the replica). Longer than any request may
        /// last (the coordinator's 60 s), so no older write can still arrive.
        public var tombstoneRetention: Duration = .seconds(300)
        /// What a request may ask for, and the node's queue and backlog bounds.
        public var limits = RequestLimits()
        public init() {}
    }

    let db: Database
    let logger: Logger
    let options: Options
    let committer: Committer
    private let watch: StorageWatch
    private let state = Mutex<State>(State())
    private let tombstones: TombstoneCollector

    private struct State {
        var replicas: [ReplicaRef: Replica] = [:]
        var setAside: [ReplicaRef: SetAsideReplica] = [:]
        var nextNumber: UInt32 = 0
    }

    /// The default `Options.maxAddressSpace`: 64 TiB (half of x86-64's 128 TiB of user
    /// address space), or half of RLIMIT_AS when that is lower.
    public static var defaultAddressSpaceBudget: Int {
        var budget = 64 << 40
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            budget = min(budget, Int(clamping: limit.rlim_cur / 2))
        }
        return budget
    }

    public init(directory: URL, options: Options = Options(), logger: Logger) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.db = try Database(path: directory.appendingPathComponent("rocksdb").path)
        self.logger = logger
        self.options = options
        self.committer = Committer(db: db, sync: options.sync, limits: options.limits, leaderTerm: try LeaderTerm.load(from: db), logger: logger)
        tombstones = TombstoneCollector(retention: options.tombstoneRetention, committer: committer)
        self.watch = StorageWatch(db: db, logger: logger)
        try loadCatalog()
        tombstones.start { [unowned self] in state.withLock { Array($0.replicas.values) } }
    }

    /// Loads every replica in the catalog (graph image + replay of later writes). One
    /// that cannot be loaded (an undecodable record, over the address-space budget, a
    /// reservation or a load that fails) is set aside and logged; the others are served.
    private func loadCatalog() throws {
        var entries: [(ReplicaRef, UInt32, Result<ReplicaConfig, any Error>)] = []
        var unnamed = 0
        try db.forEach(prefix: [Keys.catalogTag]) { key, value in
            var decoder = KeyDecoder(Array(key))
            guard (try? decoder.readTag()) != nil, let collection = try? decoder.readString(), let shard = try? decoder.readUInt32(),
                  value.count >= 4 else {
                unnamed += 1
                return true
            }
            let bytes = Array(value)
            entries.append((ReplicaRef(collection: collection, shard: shard), bytes.readBigEndian(at: 0), Result { try Self.decodeCatalog(bytes).1 }))
            return true
        }
        if unnamed > 0 {
            logger.error("catalog records that name no replica were ignored; no replica data is deleted at this start", metadata: ["count": "\(unnamed)"])
        }
        for (ref, number, config) in entries {
            do {
                let config = try config.get()
                try admit(ref, config, reserved: state.withLock { Self.reserved(by: $0.replicas.values) })
                let replica = try makeReplica(ref, number: number, config: config)
                try replica.load(useImage: !options.ignoreImages)
                replica.indexer.start()
                state.withLock { $0.replicas[ref] = replica }
            } catch {
                let reason = (error as? ShoalError)?.message ?? "\(error)"
                state.withLock { $0.setAside[ref] = SetAsideReplica(ref: ref, number: number, reason: reason) }
                logger.error("replica set aside: it could not be loaded; the node serves the others and keeps its data", metadata: [
                    "replica": "\(ref)", "number": "\(number)", "reason": "\(reason)"])
            }
            state.withLock { $0.nextNumber = max($0.nextNumber, number + 1) }
        }
        if let stored = try db.get(Keys.nextReplicaNumber), stored.count == 4 {
            let next: UInt32 = stored.readBigEndian(at: 0)
            state.withLock { $0.nextNumber = max($0.nextNumber, next) }
        }
        // A catalog key that does not decode may name data: then nothing is deleted.
        if unnamed == 0 { try deleteUnnamedData(named: Set(entries.map { $0.1 })) }
    }

    public var replicaRefs: [ReplicaRef] { state.withLock { Array($0.replicas.keys) } }

    /// Replicas set aside at start, by collection and shard.
    public var setAsideReplicas: [SetAsideReplica] {
        state.withLock { Array($0.setAside.values) }.sorted { ($0.ref.collection, $0.ref.shard) < ($1.ref.collection, $1.ref.shard) }
    }

    /// Address space the served replicas' graphs reserve.
    public var reservedAddressSpace: Int { state.withLock { Self.reserved(by: $0.replicas.values) } }

    func replica(_ ref: ReplicaRef) throws(ShoalError) -> Replica {
        let (replica, setAside) = state.withLock { ($0.replicas[ref], $0.setAside[ref]) }
        if let replica { return replica }
        if let setAside {
            throw ShoalError(.failedPrecondition, "replica \(ref) is set aside on this node: \(setAside.reason)")
        }
        throw ShoalError(.notFound, "replica \(ref) does not exist on this node")
    }

    private static func reserved(by replicas: some Sequence<Replica>) -> Int {
        replicas.reduce(0) { $0 + $1.index.reservedBytes }
    }

    /// Refuses (RESOURCE_EXHAUSTED) a replica whose graph would take the node's
    /// reserved address space past `options.maxAddressSpace`.
    private func admit(_ ref: ReplicaRef, _ config: ReplicaConfig, reserved: Int) throws(ShoalError) {
        let need = config.hnsw.reservedBytes(dimension: config.dimension, capacity: options.replicaCapacity)
        let budget = options.maxAddressSpace
        guard need <= budget - reserved else {
            throw ShoalError(.resourceExhausted,
                "replica \(ref) needs \(need) bytes of address space for its graph (dimension \(config.dimension), room for \(options.replicaCapacity) points); this node has \(max(0, budget - reserved)) of its \(budget) left (--max-address-space-bytes)")
        }
    }

    /// A replica with its graph reserved (RESOURCE_EXHAUSTED if it cannot be) and its
    /// indexer configured, not started.
    private func makeReplica(_ ref: ReplicaRef, number: UInt32, config: ReplicaConfig) throws(ShoalError) -> Replica {
        let replica: Replica
        do {
            replica = try Replica(ref: ref, number: number, config: config, db: db, logger: logger, capacity: options.replicaCapacity)
        } catch {
            throw ShoalError(.resourceExhausted, "replica \(ref): the graph's address space cannot be reserved: \(error)")
        }
        replica.indexer.imageEveryPoints = options.imageEveryPoints
        replica.indexer.paused = options.indexingPaused
        return replica
    }

    /// Creates an empty replica. Creating one that exists with the same config is a
    /// no-op (`created` false); with another config it is ALREADY_EXISTS. Returns the
    /// replica's number, which no other replica of this node ever gets. A leader `term`
    /// older than the node's highest is refused (`Committer.leaderCommand`); 0: not fenced.
    @discardableResult
    public func createReplica(_ ref: ReplicaRef, config: ReplicaConfig, term: UInt64 = 0) throws -> (created: Bool, number: UInt32) {
        try committer.leaderCommand(term: term) { stamp in try createLocked(ref, config: config, stamp: stamp) }
    }

    private func createLocked(_ ref: ReplicaRef, config: ReplicaConfig, stamp: TermStamp) throws -> (created: Bool, number: UInt32) {
        try state.withLock { state in
            if let existing = state.replicas[ref] {
                guard existing.config.indexesLike(config) else {
                    throw ShoalError(.alreadyExists, "replica \(ref) exists with dimension \(existing.config.dimension), metric \(existing.config.metric)")
                }
                return (false, existing.number)
            }
            if let setAside = state.setAside[ref] {
                throw ShoalError(.failedPrecondition, "replica \(ref) is set aside on this node (\(setAside.reason)); drop it first")
            }
            // Admitted and reserved before anything is persisted: a replica the node
            // cannot hold leaves no catalog entry behind to fail every later start.
            try admit(ref, config, reserved: Self.reserved(by: state.replicas.values))
            let number = state.nextNumber
            let replica = try makeReplica(ref, number: number, config: config)
            let batch = WriteBatch()
            batch.put(Keys.catalog(ref), try Self.encodeCatalog(number, config))
            var next = [UInt8]()
            next.appendBigEndian(number + 1)
            batch.put(Keys.nextReplicaNumber, next)
            stamp.stage(into: batch)
            try db.write(batch, sync: true)
            replica.indexer.start()
            state.replicas[ref] = replica
            state.nextNumber += 1
            logger.info("replica created", metadata: [
                "replica": "\(ref)", "number": "\(number)", "dimension": "\(config.dimension)", "metric": "\(config.metric)"])
            return (true, number)
        }
    }

    /// Drops a replica and all its data: the one named `ref`, if its number is
    /// `number` (when given). Returns false if there was no such replica. A leader
    /// `term` older than the node's highest is refused (`Committer.leaderCommand`).
    @discardableResult
    public func dropReplica(_ ref: ReplicaRef, number: UInt32? = nil, term: UInt64 = 0) throws -> Bool {
        do { return try dropLoadedReplica(ref, number: number, term: term) } catch is DroppedSetAside { return true }
    }

    private struct DroppedSetAside: Error {}

    private func dropLoadedReplica(_ ref: ReplicaRef, number: UInt32?, term: UInt64) throws -> Bool {
        // Forgotten between two write groups, catalog entry included: every group before
        // is in RocksDB (and deleted below), every group after finds the replica marked
        // dropped and writes nothing. A create of the same name that follows writes its
        // own entry after this one is gone. The data goes below; if the node stops
        // first, the next start deletes it (no entry names it).
        let taken = try committer.leaderCommand(term: term) { stamp in
            let replica = try state.withLock { state throws -> Replica? in
                try forget(ref, number: number, in: &state, stamp: stamp)
            }
            replica?.lock.write { replica?.dropped = true }
            return replica
        }
        guard let replica = taken else { return false }
        replica.indexer.stop(persist: false)
        let batch = WriteBatch()
        try batch.deletePrefix(Keys.replica(replica.number))
        try db.write(batch, sync: true)
        logger.info("replica dropped", metadata: ["replica": "\(ref)", "number": "\(replica.number)"])
        return true
    }

    /// Removes `ref` (of `number`, when given) from the catalog and from `state`: a loaded
    /// replica is returned; a set-aside one has its data deleted too (`DroppedSetAside`).
    private func forget(_ ref: ReplicaRef, number: UInt32?, in state: inout State, stamp: TermStamp) throws -> Replica? {
        func deleteCatalogEntry() throws {
            let batch = WriteBatch()
            batch.delete(Keys.catalog(ref))
            stamp.stage(into: batch)
            try db.write(batch, sync: true)
        }
        if let setAside = state.setAside[ref], number == nil || setAside.number == number {
            try deleteCatalogEntry()
            state.setAside[ref] = nil
            let batch = WriteBatch()
            try batch.deletePrefix(Keys.replica(setAside.number))
            try db.write(batch, sync: true)
            logger.info("set-aside replica dropped", metadata: ["replica": "\(ref)", "number": "\(setAside.number)"])
            throw DroppedSetAside()
        }
        guard let replica = state.replicas[ref], number == nil || replica.number == number else { return nil }
        try deleteCatalogEntry()
        return state.replicas.removeValue(forKey: ref)
    }

    /// Deletes the data of replica numbers that no catalog entry names: what a drop
    /// left when the node stopped between forgetting a replica and deleting its data.
    private func deleteUnnamedData(named: Set<UInt32>) throws {
        var from = [Keys.replicaTag]
        while true {
            var found: UInt32?
            try db.forEach(from: from, to: [Keys.replicaTag + 1]) { key, _ in
                var decoder = KeyDecoder(Array(key))
                _ = try decoder.readTag()
                found = try decoder.readUInt32()
                return false
            }
            guard let number = found else { return }
            if !named.contains(number) {
                let batch = WriteBatch()
                try batch.deletePrefix(Keys.replica(number))
                try db.write(batch, sync: true)
                logger.warning("deleted the data of a replica dropped before the node stopped", metadata: ["number": "\(number)"])
            }
            guard number < UInt32.max else { return }
            from = Keys.replica(number + 1)
        }
    }

    /// Why the node takes no writes, if it does not: its RocksDB turned read-only (disk
    /// full, an I/O error). Health reports it; writes are refused with it at once.
    public var notServingReason: String? {
        db.writesStopped.map(\.writeRefusal)
    }

    /// Commits `ops` to `replica`: UNAVAILABLE at once while the storage is read-only.
    /// Upserts are refused with RESOURCE_EXHAUSTED while the node's indexing backlog
    /// (`indexBacklog`) is at `limits.maxIndexBacklog` or more; a batch of deletes only
    /// is always taken. The backlog can pass the limit by what is queued when it is
    /// reached (at most `maxQueuedWriteOps`).
    /// `origin` is checked at the commit (`Committer.submit`).
    func write(_ ops: [WriteOp], to replica: Replica, origin: WriteOrigin = .routed(placementEpoch: 0)) async throws(ShoalError) -> Committer.Outcome {
        if let reason = notServingReason { throw ShoalError(.unavailable, reason) }
        if ops.contains(where: \.isUpsert) {
            let backlog = indexBacklog
            guard backlog < options.limits.maxIndexBacklog else {
                throw ShoalError(.resourceExhausted,
                    "the node's indexing backlog is full (\(backlog) points not yet in a graph, the limit is \(options.limits.maxIndexBacklog), --max-index-backlog); retry later")
            }
        }
        return try await committer.submit(ops, to: replica, origin: origin)
    }

    /// Points written but not yet in their replica's graph, over all of this node's replicas.
    var indexBacklog: Int {
        let replicas = state.withLock { Array($0.replicas.values) }
        return replicas.reduce(0) { total, replica in total + replica.lock.read { replica.pending.count } }
    }

    /// Waits until every replica's graph has caught up with its writes (benchmarks, tests).
    public func waitUntilIndexed(timeout: Duration) -> Bool {
        let replicas = state.withLock { Array($0.replicas.values) }
        return replicas.allSatisfy { $0.indexer.waitUntilIdle(timeout: timeout) }
    }

    /// Finishes queued writes, then stops every indexer at its next chunk boundary and
    /// saves each graph image (several at once) that can be written within
    /// `imageBudget`, whatever the indexing backlog: what the images do not hold is
    /// replayed at the next start.
    public func close(imageBudget: Duration = .seconds(5)) {
        tombstones.stop()
        watch.stop()
        committer.stop()
        let replicas = state.withLock { Array($0.replicas.values) }
        for replica in replicas { replica.indexer.interrupt() }
        let deadline = ContinuousClock.now + imageBudget
        DispatchQueue.concurrentPerform(iterations: replicas.count) { replicas[$0].indexer.stop(persist: true, deadline: deadline) }
    }

    static func encodeCatalog(_ number: UInt32, _ config: ReplicaConfig) throws -> [UInt8] {
        var out = [UInt8]()
        out.appendBigEndian(number)
        out.append(contentsOf: try config.proto(collection: "").serializedBytes() as [UInt8])
        return out
    }

    /// Writes a catalog entry as `createReplica` would, without admitting or loading
    /// anything: for tests that need a data folder holding a replica the node cannot load.
    package static func writeCatalogEntry(directory: URL, _ ref: ReplicaRef, number: UInt32, config: ReplicaConfig) throws {
        let db = try Database(path: directory.appendingPathComponent("rocksdb").path)
        let batch = WriteBatch()
        batch.put(Keys.catalog(ref), try encodeCatalog(number, config))
        let stored: UInt32 = try db.get(Keys.nextReplicaNumber).flatMap { $0.count == 4 ? $0.readBigEndian(at: 0) : nil } ?? 0
        var next = [UInt8]()
        next.appendBigEndian(max(stored, number + 1))
        batch.put(Keys.nextReplicaNumber, next)
        try db.write(batch, sync: true)
    }

    static func decodeCatalog(_ bytes: [UInt8]) throws -> (UInt32, ReplicaConfig) {
        guard bytes.count >= 4 else { throw ShoalError(.dataLoss, "catalog record of \(bytes.count) bytes") }
        let proto = try Shoal_V1_CollectionConfig(serializedBytes: Array(bytes[4...]))
        let config = try ReplicaConfig(proto: proto)
        return (bytes.readBigEndian(at: 0), config)
    }
}

/// A replica in the catalog the node could not load at start: kept, not served.
public struct SetAsideReplica: Sendable {
    public let ref: ReplicaRef
    public let number: UInt32
    public let reason: String
}

extension StorageError {
    /// How a write refused for this error is explained (Health's reason too).
    var writeRefusal: String { stopsWrites ? "storage is read-only: \(message)" : "storage write failed: \(message)" }
}

extension ReplicaConfig {
    /// The wire form, named `collection`.
    func proto(collection: String) -> Shoal_V1_CollectionConfig {
        .with {
            $0.name = collection
            $0.dimension = UInt32(dimension)
            $0.metric = metric.proto
            $0.hnsw.m = UInt32(hnsw.m)
            $0.hnsw.efConstruction = UInt32(hnsw.efConstruction)
            $0.hnsw.ef = UInt32(hnsw.ef)
            $0.shardCount = shardCount
            $0.replicationFactor = replicationFactor
            $0.uid = collectionUID
        }
    }

    /// From a wire config: dimension 1…65,536, a known metric, HNSW parameters resolved
    /// and checked by `RequestLimits.resolveHNSW` (the coordinator's rule: zeros mean
    /// the defaults M=16, ef_construction=200, ef=64).
    init(proto: Shoal_V1_CollectionConfig) throws(ShoalError) {
        guard RequestLimits.dimension.contains(proto.dimension) else {
            throw ShoalError(.invalidArgument, "dimension \(proto.dimension) is out of range \(RequestLimits.dimension)")
        }
        let resolved = try RequestLimits.resolveHNSW(m: proto.hnsw.m, efConstruction: proto.hnsw.efConstruction, ef: proto.hnsw.ef)
        var hnsw = HNSWParameters()
        hnsw.m = Int(resolved.m)
        hnsw.efConstruction = Int(resolved.efConstruction)
        hnsw.ef = Int(resolved.ef)
        self.init(dimension: Int(proto.dimension), metric: try Metric(proto: proto.metric), hnsw: hnsw,
                  shardCount: proto.shardCount, replicationFactor: proto.replicationFactor, collectionUID: proto.uid)
    }
}
