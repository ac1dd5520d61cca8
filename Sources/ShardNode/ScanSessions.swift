import Foundation
import ShoalProto
import Synchronization
import VectorCore
import VectorStorage

/// Paged scans of a replica over one RocksDB snapshot (for shard moves): the first
/// page opens a snapshot, later pages name it; it is released at the last page or
/// after a minute unused.
final class ScanSessions: Sendable {
    private struct Session {
        var ref: ReplicaRef
        var snapshot: Snapshot
        var sequence: UInt64
        var lastUsed: ContinuousClock.Instant
    }

    private let store: ShardStore
    private let sessions = Mutex<(next: UInt64, open: [UInt64: Session])>((1, [:]))
    static let idleTimeout: Duration = .seconds(60)

    init(store: ShardStore) { self.store = store }

    func page(_ request: Shoal_V1_ScanRequest) throws -> Shoal_V1_ScanResponse {
        let ref = try replicaRef(request.replica)
        let replica = try store.replica(ref)
        let pageSize = request.pageSize == 0 ? 1000 : Int(request.pageSize)
        let maxPageSize = store.options.limits.maxPointsPerRequest
        guard pageSize <= maxPageSize else {
            throw ShoalError(.invalidArgument, "page_size must be at most \(maxPageSize) (--max-points-per-request), got \(pageSize)")
        }
        let (id, session) = try openOrResume(request, ref: ref, replica: replica)
        let prefix = Keys.idPrefix(replica.number)
        var after: [UInt8]? = nil
        if !request.pageToken.isEmpty {
            let token = [UInt8](request.pageToken)
            guard token.starts(with: prefix) else { throw ShoalError(.invalidArgument, "page_token does not belong to replica \(ref)") }
            after = token
        }
        let page = try session.snapshot.scan(prefix: prefix, after: after, limit: pageSize)
        var points: [Shoal_V1_VersionedPoint] = []
        var liveKeys: [[UInt8]] = []
        var records: [(String, IdRecord)] = []
        for entry in page.entries {
            let record = try IdRecord(decoding: entry.value)
            if record.deleted && !request.includeTombstones { continue }
            if record.version < request.minVersion { continue }
            records.append((try Keys.externalID(fromIdKey: entry.key, prefixLength: prefix.count), record))
            if !record.deleted { liveKeys.append(Keys.point(replica.number, record.internalID)) }
        }
        var values = try session.snapshot.multiGet(liveKeys).makeIterator()
        for (externalID, record) in records {
            let point = try record.deleted ? nil : (values.next() ?? nil).map { try PointRecord(decoding: $0) }
            points.append(versionedPoint(id: externalID, record: record, point: point, vector: request.includeVector, metadata: request.includeMetadata))
        }
        if page.isComplete { _ = sessions.withLock { $0.open.removeValue(forKey: id) } }
        let stats = replica.stats()
        return Shoal_V1_ScanResponse.with {
            $0.points = points
            $0.done = page.isComplete
            $0.nextPageToken = page.nextAfter.map { Data($0) } ?? Data()
            $0.snapshotID = id
            $0.snapshotSequence = session.sequence
            $0.totalEstimate = UInt64(stats.points + (request.includeTombstones ? stats.tombstones : 0))
        }
    }

    private func openOrResume(_ request: Shoal_V1_ScanRequest, ref: ReplicaRef, replica: Replica) throws -> (UInt64, Session) {
        let now = ContinuousClock.now
        return try sessions.withLock { state in
            state.open = state.open.filter { now - $0.value.lastUsed < Self.idleTimeout }
            if request.snapshotID != 0 {
                guard var session = state.open[request.snapshotID], session.ref == ref else {
                    throw ShoalError(.notFound, "scan snapshot \(request.snapshotID) is unknown or expired; start the scan again")
                }
                session.lastUsed = now
                state.open[request.snapshotID] = session
                return (request.snapshotID, session)
            }
            // The sequence is read before the snapshot, so it is a lower bound of what the snapshot holds.
            let sequence = replica.lock.read { replica.committedSequence }
            let session = Session(ref: ref, snapshot: replica.db.snapshot(), sequence: sequence, lastUsed: now)
            let id = state.next
            state.next += 1
            state.open[id] = session
            return (id, session)
        }
    }
}
