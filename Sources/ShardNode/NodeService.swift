import Foundation
import Logging
import ShoalProto
import ShoalRPC
import Synchronization
import VectorCore
import VectorIndex
import VectorStorage

/// The `shoal.v1.Shard` service of one node: replica lifecycle, versioned writes,
/// get, search, count, paged snapshot scans, placement fences, stats and health.
/// Leader commands are fenced by their term, data requests by their placement epoch
/// (Fencing.swift).
public final class NodeService: Sendable {
    public let name: String
    public let nodeID: String
    public let store: ShardStore
    private let started = ContinuousClock.now
    private let logger: Logger
    let scans: ScanSessions
    /// What a request may ask for: `store.options.limits`, the coordinator's rules.
    private var limits: RequestLimits { store.options.limits }

    /// - Parameters:
    ///   - dataDirectory: the node's folder; its stable id is kept in `node-id` there,
    ///     its RocksDB in `rocksdb/`.
    public init(name: String, dataDirectory: URL, options: ShardStore.Options = .init(), logger: Logger) throws {
        self.name = name
        self.logger = logger
        self.nodeID = try Self.loadOrCreateID(in: dataDirectory)
        self.store = try ShardStore(directory: dataDirectory, options: options, logger: logger)
        self.scans = ScanSessions(store: store)
    }

    /// Registers the Shard service on `registry` (the gRPC server, and in `shoal serve`
    /// also the in-process transport its coordinator uses). Reads are blocking handlers:
    /// they run to completion on the registry's worker threads, and a full queue is
    /// answered RESOURCE_EXHAUSTED.
    public func register(on registry: any HandlerRegistry) throws {
        try registry.register(ShardRPC.health, limited: false) { [self] _, _ in health() }
        try registry.register(ShardRPC.createReplica) { [self] request, _ in try createReplica(request) }
        try registry.register(ShardRPC.dropReplica) { [self] request, _ in try dropReplica(request) }
        try registry.register(ShardRPC.writeBatch) { [self] request, _ in try await writeBatch(request) }
        try registry.registerBlocking(ShardRPC.get) { [self] request, _ in try get(request) }
        try registry.registerBlocking(ShardRPC.search) { [self] request, _ in try search(request) }
        try registry.registerBlocking(ShardRPC.count) { [self] request, _ in try count(request) }
        try registry.registerBlocking(ShardRPC.searchShards) { [self] request, _ in try searchShards(request) }
        try registry.registerBlocking(ShardRPC.getShards) { [self] request, _ in try getShards(request) }
        try registry.registerBlocking(ShardRPC.countShards) { [self] request, _ in try countShards(request) }
        try registry.register(ShardRPC.scan) { [self] request, _ in try scans.page(request) }
        try registry.register(ShardRPC.fenceReplica) { [self] request, _ in try fenceReplica(request) }
        try registry.registerBlocking(ShardRPC.stats) { [self] request, _ in try stats(request) }
    }

    /// Finishes queued writes, stops indexing, saves graph images.
    public func close() { store.close() }

    func health() -> Shoal_V1_HealthResponse {
        .health(id: nodeID, name: name, since: started, notServing: store.notServingReason)
    }

    func createReplica(_ request: Shoal_V1_CreateReplicaRequest) throws -> Shoal_V1_CreateReplicaResponse {
        guard !request.config.name.isEmpty else { throw ShoalError(.invalidArgument, "config.name (the collection) is empty") }
        let config = try ReplicaConfig(proto: request.config)
        let ref = ReplicaRef(collection: request.config.name, shard: request.shardID)
        let (created, number) = try store.createReplica(ref, config: config, term: request.term)
        return Shoal_V1_CreateReplicaResponse.with {
            $0.created = created
            $0.incarnation = number
        }
    }

    func dropReplica(_ request: Shoal_V1_DropReplicaRequest) throws -> Shoal_V1_DropReplicaResponse {
        let ref = try replicaRef(request.replica)
        let number = request.hasIncarnation ? request.incarnation : nil
        return try Shoal_V1_DropReplicaResponse.with { $0.dropped = try store.dropReplica(ref, number: number, term: request.term) }
    }

    /// The replica a data request names. Missing, for a request routed by a placement
    /// (`epoch` > 0): ABORTED, as for a fenced one, since the replica moved away or was
    /// dropped after that placement; the coordinator reads the newest and retries.
    private func dataReplica(_ proto: Shoal_V1_ReplicaRef, epoch: UInt64) throws(ShoalError) -> Replica {
        let ref = try replicaRef(proto)
        do {
            return try store.replica(ref)
        } catch where error.code == .notFound && epoch > 0 {
            throw ShoalError(.aborted, "replica \(ref) does not exist on this node (any more); this request was routed by placement epoch \(epoch): refresh the placement and retry (nothing was changed)")
        }
    }

    func writeBatch(_ request: Shoal_V1_WriteBatchRequest) async throws -> Shoal_V1_WriteBatchResponse {
        let replica = try dataReplica(request.replica, epoch: request.copy ? 0 : request.placementEpoch)
        let ops = try decodeOps(request, config: replica.config, limits: limits)
        // Refused early if the fence already excludes it; the commit checks again, and
        // that check is the one ordered with FenceReplica.
        if !request.copy { try replica.checkPlacement(request.placementEpoch) }
        if request.copy { replica.noteCopyWrite() }  // before the write: its records' tombstones must stay
        let origin: WriteOrigin = request.copy ? .leaderCopy(term: request.term) : .routed(placementEpoch: request.placementEpoch)
        let outcome = try await store.write(ops, to: replica, origin: origin)
        return Shoal_V1_WriteBatchResponse.with {
            $0.applied = UInt32(outcome.applied)
            $0.ignoredStale = UInt32(outcome.ignored)
            $0.deletedLive = UInt32(outcome.deletedLive)
            $0.sequence = outcome.sequence
            $0.staleVersion = outcome.staleVersion
        }
    }

    func count(_ request: Shoal_V1_ReplicaCountRequest) throws -> Shoal_V1_ReplicaCountResponse {
        let replica = try dataReplica(request.replica, epoch: request.placementEpoch)
        try replica.checkPlacement(request.placementEpoch)
        let filter = request.hasFilter ? try Filter(proto: request.filter, limits: limits) : nil
        return Shoal_V1_ReplicaCountResponse.with { $0.count = UInt64(replica.count(filter)) }
    }

    func get(_ request: Shoal_V1_ReplicaGetRequest) throws -> Shoal_V1_ReplicaGetResponse {
        let replica = try dataReplica(request.replica, epoch: request.placementEpoch)
        try replica.checkPlacement(request.placementEpoch)
        try limits.checkCount(request.ids.count, "a get takes")
        for (i, id) in request.ids.enumerated() { try validateID(id, at: "ids[\(i)]") }
        let (found, missing) = try replica.get(request.ids, includeTombstones: request.includeTombstones)
        return Shoal_V1_ReplicaGetResponse.with { reply in
            reply.missingIds = missing
            reply.points = found.map { id, record, point in
                versionedPoint(id: id, record: record, point: point, vector: request.includeVector, metadata: request.includeMetadata)
            }
        }
    }

    /// One replica's search (the per-shard method; the coordinator uses `searchShards`).
    /// The vector is validated and normalised here, since its caller may not have.
    func search(_ request: Shoal_V1_ReplicaSearchRequest) throws -> Shoal_V1_ReplicaSearchResponse {
        let replica = try dataReplica(request.replica, epoch: request.placementEpoch)
        try replica.checkPlacement(request.placementEpoch)
        try limits.checkSearch(k: request.k, offset: 0, ef: request.ef)  // k here is the coordinator's k + offset
        let query = try validateVector(request.vector, config: replica.config, at: "vector")
        let search = try ShardSearch(
            vector: query, k: Int(request.k), ef: Int(request.ef), filter: request.hasFilter ? try Filter(proto: request.filter, limits: limits) : nil,
            includeVector: request.includeVector, includeMetadata: request.includeMetadata, exact: request.exact)
        let (hits, reports) = try search.run(on: [(request.replica.shardID, .success(replica))])
        if reports[0].code != 0 { throw ShoalError(StatusCode(rawCode: reports[0].code), reports[0].message) }
        return Shoal_V1_ReplicaSearchResponse.with {
            $0.hits = hits
            $0.strategy = reports[0].strategy
            $0.distancesComputed = reports[0].distancesComputed
            $0.unindexedScanned = reports[0].unindexedScanned
        }
    }

    /// This node's share of one search: every shard asked for, merged here. A shard it
    /// cannot answer (not held, fenced) is reported, not thrown; a malformed request is thrown.
    func searchShards(_ request: Shoal_V1_NodeSearchRequest) throws -> Shoal_V1_NodeSearchResponse {
        try limits.checkSearch(k: request.k, offset: 0, ef: request.ef)
        let search = try ShardSearch(
            vector: request.vector, k: Int(request.k), ef: Int(request.ef),
            filter: request.hasFilter ? try Filter(proto: request.filter, limits: limits) : nil,  // once for every shard
            includeVector: request.includeVector, includeMetadata: request.includeMetadata, exact: request.exact)
        let replicas = try shardReplicas(request.collection, request.shards)
        for case (_, .success(let replica)) in replicas where replica.config.dimension != request.vector.count {
            throw ShoalError(.invalidArgument, "vector has \(request.vector.count) components; the collection's dimension is \(replica.config.dimension)")
        }
        let (hits, reports) = try search.run(on: replicas)
        return Shoal_V1_NodeSearchResponse.with {
            $0.hits = hits
            $0.shards = reports
        }
    }

    /// This node's share of one get: the live points found, shard by shard.
    func getShards(_ request: Shoal_V1_NodeGetRequest) throws -> Shoal_V1_NodeGetResponse {
        try limits.checkCount(request.shards.reduce(0) { $0 + $1.ids.count }, "a get takes")
        for shard in request.shards {
            for (i, id) in shard.ids.enumerated() { try validateID(id, at: "shards[\(shard.shardID)].ids[\(i)]") }
        }
        var reply = Shoal_V1_NodeGetResponse()
        for ((shard, replica), read) in zip(try shardReplicas(request.collection, request.shards), request.shards) {
            reply.shards.append(ShardReport.of(shard, ran: {
                let (found, _) = try replica.get().get(read.ids, includeTombstones: false)
                for (id, _, point) in found {
                    guard let point else { continue }
                    reply.points.append(.with {
                        $0.id = id
                        if request.includeVector { $0.vector = point.vector }
                        if request.includeMetadata { $0.metadata = encodeMetadata(point.metadata) }
                    })
                }
            }))
        }
        return reply
    }

    /// This node's share of one count: a count per shard.
    func countShards(_ request: Shoal_V1_NodeCountRequest) throws -> Shoal_V1_NodeCountResponse {
        let filter = request.hasFilter ? try Filter(proto: request.filter, limits: limits) : nil
        return try Shoal_V1_NodeCountResponse.with { reply in
            reply.shards = try shardReplicas(request.collection, request.shards).map { shard, replica in
                var count = 0
                var report = ShardReport.of(shard, ran: { count = try replica.get().count(filter) })
                report.count = UInt64(count)
                return report
            }
        }
    }

    /// The replicas a node-level read names, each checked against its placement epoch:
    /// a shard not held or fenced past its epoch is its failure, reported by the caller.
    private func shardReplicas(_ collection: String, _ shards: [Shoal_V1_ShardRead]) throws(ShoalError)
        -> [(UInt32, Result<Replica, ShoalError>)]
    {
        guard !collection.isEmpty else { throw ShoalError(.invalidArgument, "collection is empty") }
        var seen = Set<UInt32>()
        return try shards.map { shard throws(ShoalError) in
            guard seen.insert(shard.shardID).inserted else { throw ShoalError(.invalidArgument, "shard \(shard.shardID) is asked for twice") }
            let ref = Shoal_V1_ReplicaRef.with { $0.collection = collection; $0.shardID = shard.shardID }
            do throws(ShoalError) {
                let replica = try dataReplica(ref, epoch: shard.placementEpoch)
                try replica.checkPlacement(shard.placementEpoch)
                return (shard.shardID, .success(replica))
            } catch {
                return (shard.shardID, .failure(error))
            }
        }
    }

    func fenceReplica(_ request: Shoal_V1_FenceReplicaRequest) throws -> Shoal_V1_FenceReplicaResponse {
        let ref = try replicaRef(request.replica)
        let fence = try store.fenceReplica(ref, number: request.hasIncarnation ? request.incarnation : nil,
                                           minEpoch: request.minEpoch, retire: request.retire, term: request.term)
        return Shoal_V1_FenceReplicaResponse.with {
            $0.minEpoch = fence.minEpoch
            $0.retired = fence.retired
        }
    }

    func stats(_ request: Shoal_V1_StatsRequest) throws -> Shoal_V1_StatsResponse {
        if request.term > 0 { try store.announce(term: request.term) }
        let refs = request.hasReplica ? [try replicaRef(request.replica)] : store.replicaRefs.sorted { ($0.collection, $0.shard) < ($1.collection, $1.shard) }
        let nowMs = UInt64(Date().timeIntervalSince1970 * 1000)
        return try Shoal_V1_StatsResponse.with { reply in
            reply.nodeID = nodeID
            reply.addressSpaceBudget = UInt64(store.options.maxAddressSpace)
            reply.addressSpaceReserved = UInt64(store.reservedAddressSpace)
            reply.replicaCapacity = UInt64(store.options.replicaCapacity)
            reply.highestTerm = store.highestTerm
            reply.tombstoneRetentionMs = UInt64(store.options.tombstoneRetention.components.seconds * 1000 + store.options.tombstoneRetention.components.attoseconds / 1_000_000_000_000_000)
            reply.setAside = store.setAsideReplicas.filter { !request.hasReplica || $0.ref == (try? replicaRef(request.replica)) }.map { aside in
                Shoal_V1_SetAsideReplica.with {
                    $0.replica = .with { $0.collection = aside.ref.collection; $0.shardID = aside.ref.shard }
                    $0.incarnation = aside.number
                    $0.reason = aside.reason
                }
            }
            reply.replicas = try refs.compactMap { ref in
                // Listed but dropped since: left out (unless it was the one asked for).
                guard let replica = request.hasReplica ? try store.replica(ref) : try? store.replica(ref) else { return nil }
                let s = replica.stats()
                return Shoal_V1_ReplicaStats.with {
                    $0.replica = Shoal_V1_ReplicaRef.with { $0.collection = ref.collection; $0.shardID = ref.shard }
                    $0.points = UInt64(s.points)
                    $0.tombstones = UInt64(s.tombstones)
                    $0.bytesOnDisk = (try? replica.db.approximateSize(prefix: Keys.replica(replica.number))).map { UInt64($0) } ?? 0
                    $0.indexedPoints = UInt64(s.indexedPoints)
                    $0.indexingLag = UInt64(s.pendingPoints)
                    $0.sequence = s.sequence
                    $0.imageSequence = s.imageSequence
                    $0.imageAgeMs = s.imageTimeMs == 0 ? 0 : nowMs - min(nowMs, s.imageTimeMs)
                    $0.maxVersion = s.maxVersion
                    $0.incarnation = replica.number
                    $0.config = replica.config.proto(collection: ref.collection)
                    $0.minEpoch = s.placementFence.minEpoch
                    $0.retired = s.placementFence.retired
                }
            }
        }
    }

    /// A node keeps one id for life, written once into its data folder.
    private static func loadOrCreateID(in directory: URL) throws -> String {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("node-id")
        if let existing = try? String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
           !existing.isEmpty {
            return existing
        }
        let id = UUID().uuidString.lowercased()
        try Data(id.utf8).write(to: file, options: .atomic)
        return id
    }
}

func versionedPoint(id: String, record: IdRecord, point: PointRecord?, vector: Bool, metadata: Bool) -> Shoal_V1_VersionedPoint {
    Shoal_V1_VersionedPoint.with {
        $0.version = record.version
        $0.tombstone = record.deleted
        $0.point.id = id
        if let point {
            if vector { $0.point.vector = point.vector }
            if metadata { $0.point.metadata = encodeMetadata(point.metadata) }
        }
    }
}

extension SearchStrategy {
    var proto: Shoal_V1_SearchStrategy {
        switch self {
        case .graph: .hnsw
        case .graphFiltered: .hnswFiltered
        case .exact: .exact
        case .exactFiltered: .exactFiltered
        }
    }
}
