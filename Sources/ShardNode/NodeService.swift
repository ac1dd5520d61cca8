import Foundation
import GRPCBridge
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

    public func register(on server: Server) throws {
        try server.register(ShardRPC.health, limited: false) { [self] _, _ in health() }
        try server.register(ShardRPC.createReplica) { [self] request, _ in try createReplica(request) }
        try server.register(ShardRPC.dropReplica) { [self] request, _ in try dropReplica(request) }
        try server.register(ShardRPC.writeBatch) { [self] request, _ in try await writeBatch(request) }
        try server.register(ShardRPC.get) { [self] request, _ in try get(request) }
        try server.register(ShardRPC.search) { [self] request, _ in try search(request) }
        try server.register(ShardRPC.count) { [self] request, _ in try count(request) }
        try server.register(ShardRPC.scan) { [self] request, _ in try scans.page(request) }
        try server.register(ShardRPC.fenceReplica) { [self] request, _ in try fenceReplica(request) }
        try server.register(ShardRPC.stats) { [self] request, _ in try stats(request) }
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

    func search(_ request: Shoal_V1_ReplicaSearchRequest) throws -> Shoal_V1_ReplicaSearchResponse {
        let replica = try dataReplica(request.replica, epoch: request.placementEpoch)
        try replica.checkPlacement(request.placementEpoch)
        try limits.checkSearch(k: request.k, offset: 0, ef: request.ef)  // k here is the coordinator's k + offset
        let query = try validateVector(request.vector, config: replica.config, at: "vector")
        let filter = request.hasFilter ? try Filter(proto: request.filter, limits: limits) : nil
        let k = Int(request.k)
        let ef = max(k, request.ef == 0 ? replica.config.hnsw.ef : Int(request.ef))
        let result = try replica.search(query: query, k: k, ef: ef, filter: filter, exact: request.exact)
        let metric = replica.config.metric
        let payloads = try hitPayloads(result.hits, replica: replica, vector: request.includeVector, metadata: request.includeMetadata)
        return Shoal_V1_ReplicaSearchResponse.with { reply in
            reply.strategy = result.strategy.proto
            reply.distancesComputed = UInt64(result.distancesComputed)
            reply.unindexedScanned = UInt64(result.unindexedScanned)
            reply.hits = zip(result.hits, payloads).map { hit, payload in
                Shoal_V1_ScoredPoint.with {
                    $0.id = hit.externalID
                    $0.distance = hit.distance
                    $0.score = metric.score(distance: hit.distance)
                    if let point = payload {
                        if request.includeVector { $0.vector = point.vector }
                        if request.includeMetadata { $0.metadata = encodeMetadata(point.metadata) }
                    }
                }
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

    /// Vectors and metadata of hits, read only when asked for.
    private func hitPayloads(_ hits: [ReplicaHit], replica: Replica, vector: Bool, metadata: Bool) throws -> [PointRecord?] {
        guard vector || metadata else { return hits.map { _ in nil } }
        let keys = hits.map { Keys.point(replica.number, $0.internalID) }
        return try replica.db.multiGet(keys).map { bytes in try bytes.map { try PointRecord(decoding: $0) } }
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
        case .exact, .exactFiltered: .exact
        }
    }
}
