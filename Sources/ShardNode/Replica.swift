import Foundation
import Logging
import Synchronization
import VectorCore
import VectorIndex
import VectorStorage

/// The collection settings a replica needs, and the collection's shape as the
/// coordinator gave it (recorded so the metadata can be rebuilt from the nodes).
public struct ReplicaConfig: Sendable, Equatable {
    public var dimension: Int
    public var metric: Metric
    public var hnsw: HNSWParameters
    /// The collection's shard count and replication factor (0: not recorded).
    public var shardCount: UInt32
    public var replicationFactor: UInt32
    /// The collection's incarnation as the coordinator named it ("" if not given).
    public var collectionUID: String

    public init(
        dimension: Int, metric: Metric, hnsw: HNSWParameters = HNSWParameters(), shardCount: UInt32 = 0, replicationFactor: UInt32 = 0,
        collectionUID: String = ""
    ) {
        self.dimension = dimension
        self.metric = metric
        self.hnsw = hnsw
        self.shardCount = shardCount
        self.replicationFactor = replicationFactor
        self.collectionUID = collectionUID
    }

    /// Whether a replica of `other` indexes the same way (what a repeated create must match).
    public func indexesLike(_ other: ReplicaConfig) -> Bool {
        dimension == other.dimension && metric == other.metric && hnsw == other.hnsw
    }
}

/// One write of a batch, validated, with its version.
enum WriteOp {
    case upsert(id: String, vector: [Float], metadata: Metadata, version: UInt64)
    case delete(id: String, version: UInt64)

    var id: String {
        switch self {
        case .upsert(let id, _, _, _), .delete(let id, _): id
        }
    }

    var version: UInt64 {
        switch self {
        case .upsert(_, _, _, let v), .delete(_, let v): v
        }
    }
}

/// A change staged for one id by the committer, applied to memory once RocksDB has it.
struct StagedChange {
    var externalID: String
    var record: IdRecord
    var previous: IdRecord?
    var vector: [Float]?
    var metadata: Metadata?
}

/// A vector written but not yet in the graph: searched exactly until the indexer has it.
struct PendingVector {
    /// As written (what the indexer inserts).
    var vector: [Float]
    /// As the index would store it (what the exact scan compares), so a point ranks the
    /// same before and after the graph has it.
    var prepared: [Float]
    var sequence: UInt64

    init(_ vector: [Float], index: HNSWIndex, sequence: UInt64) {
        self.vector = vector
        self.prepared = index.prepared(vector)
        self.sequence = sequence
    }
}

/// One shard replica on a node: points persisted in the node's RocksDB (the source of
/// truth), an HNSW graph over them built in the background, and a payload index.
///
/// Writes are staged and committed by the node's `Committer` (one thread, group commit),
/// then applied here under the write lock; a search takes the read lock twice, briefly
/// (its view of the maps, then its hits' ids), never across the graph walk, and sees
/// every acknowledged write: indexed points through the graph, the not-yet-indexed
/// tail (`pending`) by exact scan.
final class Replica: @unchecked Sendable {
    // @unchecked: mutable state below is guarded by `lock` (written only by the committer
    // and indexer threads, under the write lock); `nextInternalID` is committer-only.
    let ref: ReplicaRef
    let number: UInt32
    let config: ReplicaConfig
    let db: Database
    let logger: Logger
    let lock = RWLock()

    var index: HNSWIndex
    /// Keyed by the id's UTF-8 bytes, as RocksDB keys are (never by `String` equality).
    var ids: [UTF8Key: IdRecord] = [:]
    var externalIDs: [UInt32: String] = [:]
    let payload = PayloadIndex()
    var pending: [UInt32: PendingVector] = [:]
    /// Deleted points whose internal id the graph still holds (searches exclude them).
    var unindexedDeletes: Set<UInt32> = []
    var liveCount = 0
    var tombstoneCount = 0
    var committedSequence: UInt64 = 0
    var maxVersion: UInt64 = 0
    var dropped = false
    /// Data requests routed by an older placement are refused (Fencing.swift). Changed
    /// only between two write groups, under the write lock; the committer reads it
    /// between them, everyone else under the read lock.
    var placementFence = PlacementFence()
    /// Committed tombstones in commit order, from `tombstoneHead` on (see Tombstones.swift).
    var tombstoneQueue: [TombstoneEntry] = []
    var tombstoneHead = 0
    /// When a shard move's copy page last arrived (`nanosecondsSinceStart`, 0 = never).
    let lastCopyWrite = Atomic<Int64>(0)

    /// Committer-only.
    var nextInternalID: UInt32 = 0

    let indexedSequence = Atomic<UInt64>(0)
    let imageSequence = Atomic<UInt64>(0)
    let imageTimeMs = Atomic<UInt64>(0)
    private(set) var indexer: Indexer!

    /// Throws `IndexError.cannotReserve` when the graph's address space cannot be had.
    init(ref: ReplicaRef, number: UInt32, config: ReplicaConfig, db: Database, logger: Logger, capacity: Int) throws {
        self.ref = ref
        self.number = number
        self.config = config
        self.db = db
        var logger = logger
        logger[metadataKey: "replica"] = "\(ref)"
        self.logger = logger
        self.index = try HNSWIndex(dimension: config.dimension, metric: config.metric, params: config.hnsw, capacity: capacity)
        self.indexer = Indexer(replica: self)
    }

    // MARK: committer side

    /// Stages `ops` (one client batch at `sequence`) into `batch`. Versions decide: a write
    /// whose version is not newer than the stored one is ignored (counted in `ignored`;
    /// `staleVersion` is the highest stored version that made one so);
    /// `deletedLive` counts the applied deletes that removed a live point. `overlay` carries the
    /// records staged earlier in the same group commit.
    func stage(_ ops: [WriteOp], sequence: UInt64, overlay: inout [UTF8Key: IdRecord], into batch: WriteBatch) throws
        -> (changes: [StagedChange], ignored: Int, deletedLive: Int, staleVersion: UInt64)
    {
        var changes: [StagedChange] = []
        var ignored = 0
        var deletedLive = 0
        var staleVersion: UInt64 = 0
        for op in ops {
            let key = UTF8Key(op.id)
            let current = overlay[key] ?? ids[key]
            if let current, op.version <= current.version {
                ignored += 1
                staleVersion = max(staleVersion, current.version)
                continue
            }
            let record: IdRecord
            var change = StagedChange(externalID: op.id, record: IdRecord(internalID: 0, version: 0, sequence: 0, deleted: false), previous: current)
            switch op {
            case .upsert(let id, let vector, let metadata, let version):
                let internalID: UInt32
                if let current, !current.deleted {
                    internalID = current.internalID
                } else {
                    internalID = nextInternalID
                    nextInternalID += 1
                }
                record = IdRecord(internalID: internalID, version: version, sequence: sequence, deleted: false)
                batch.put(Keys.point(number, internalID), PointRecord(vector: vector, id: id, metadata: metadata).encoded())
                change.vector = vector
                change.metadata = metadata
            case .delete(_, let version):
                if let current, !current.deleted {
                    deletedLive += 1
                    batch.delete(Keys.point(number, current.internalID))
                    record = IdRecord(internalID: current.internalID, version: version, sequence: sequence, deleted: true)
                } else {
                    record = IdRecord(internalID: IdRecord.noInternalID, version: version, sequence: sequence, deleted: true)
                }
            }
            change.record = record
            batch.put(Keys.id(number, op.id), record.encoded())
            overlay[key] = record
            changes.append(change)
        }
        return (changes, ignored, deletedLive, staleVersion)
    }

    /// Makes committed changes visible (write lock) and hands them to the indexer.
    func apply(_ changes: [StagedChange], sequence: UInt64) {
        var work: [IndexWork] = []
        lock.write {
            for change in changes {
                let previousLive = change.previous.flatMap { $0.deleted ? nil : $0.internalID }
                if change.record.deleted {
                    if let old = previousLive {
                        payload.remove(old)
                        pending[old] = nil
                        externalIDs[old] = nil
                        liveCount -= 1
                        unindexedDeletes.insert(old)
                        work.append(.delete(old))
                    }
                    if change.previous?.deleted != true { tombstoneCount += 1 }
                    queueTombstone(UTF8Key(change.externalID), version: change.record.version)
                } else {
                    let internalID = change.record.internalID
                    if previousLive == nil {
                        liveCount += 1
                        if change.previous?.deleted == true { tombstoneCount -= 1 }
                        externalIDs[internalID] = change.externalID
                    }
                    payload.set(internalID, change.metadata ?? [:])
                    pending[internalID] = PendingVector(change.vector ?? [], index: index, sequence: sequence)
                    work.append(.upsert(internalID, sequence))
                }
                ids[UTF8Key(change.externalID)] = change.record
                maxVersion = max(maxVersion, change.record.version)
            }
            committedSequence = sequence
        }
        indexer.enqueue(IndexBatch(sequence: sequence, items: work))
    }

    // MARK: reads

    /// Points by external id, with versions; tombstones if asked.
    func get(_ externalIDs: [String], includeTombstones: Bool) throws -> (found: [(String, IdRecord, PointRecord?)], missing: [String]) {
        let records = lock.read { externalIDs.map { ($0, ids[UTF8Key($0)]) } }
        var found: [(String, IdRecord, PointRecord?)] = []
        var missing: [String] = []
        let liveKeys = records.compactMap { _, r in r.flatMap { $0.deleted ? nil : Keys.point(number, $0.internalID) } }
        var values = try db.multiGet(liveKeys).makeIterator()
        for (id, record) in records {
            guard let record else {
                missing.append(id)
                continue
            }
            if record.deleted {
                if includeTombstones { found.append((id, record, nil)) } else { missing.append(id) }
                continue
            }
            guard let bytes = values.next() ?? nil else {
                missing.append(id)  // deleted between the two reads
                continue
            }
            found.append((id, record, try PointRecord(decoding: bytes)))
        }
        return (found, missing)
    }

    /// Refuses (ABORTED) a data request routed by `placementEpoch` that the replica's
    /// placement fence excludes; 0 is not checked.
    func checkPlacement(_ placementEpoch: UInt64) throws(ShoalError) {
        guard placementEpoch > 0 else { return }
        try lock.read { placementFence }.check(placementEpoch, replica: ref)
    }

    func count(_ filter: Filter?) -> Int {
        lock.read { filter.map { payload.evaluate($0).count } ?? liveCount }
    }

    func stats() -> ReplicaStatsSnapshot {
        lock.read {
            ReplicaStatsSnapshot(
                points: liveCount, tombstones: tombstoneCount, indexedPoints: index.count,
                pendingPoints: pending.count, sequence: committedSequence,
                indexedSequence: indexedSequence.load(ordering: .relaxed),
                imageSequence: imageSequence.load(ordering: .relaxed),
                imageTimeMs: imageTimeMs.load(ordering: .relaxed), maxVersion: maxVersion,
                placementFence: placementFence)
        }
    }
}

struct ReplicaStatsSnapshot {
    var points: Int
    var tombstones: Int
    var indexedPoints: Int
    var pendingPoints: Int
    var sequence: UInt64
    var indexedSequence: UInt64
    var imageSequence: UInt64
    var imageTimeMs: UInt64
    var maxVersion: UInt64
    var placementFence: PlacementFence
}
