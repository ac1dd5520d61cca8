import Foundation
import ShoalProto
import ShoalRPC
import VectorCore

/// Reads the replicas of one shard for `verify` and `repair`, over the coordinator's
/// node transports: live points as (id, version) pairs by a paged scan without
/// vectors or metadata, and the records of given ids by Get. Memory is ids and
/// versions only (about 100k points per replica is a few MB).
struct ReplicaReader: Sendable {
    let nodes: NodeDirectory
    let collection: String
    let shard: UInt32

    static let scanPage: UInt32 = 5000
    static let getBatch = 1000
    static let callTimeout: Duration = .seconds(30)
    /// Reads of the ids the scans disagree on, and the pause between two.
    static let rereads = 3
    static let rereadPause: Duration = .milliseconds(200)

    var ref: Shoal_V1_ReplicaRef {
        .with {
            $0.collection = collection
            $0.shardID = shard
        }
    }

    /// The replica's live points at `address`, sorted by id bytes, and how many
    /// tombstones the scan saw. A scan whose snapshot the node released (idle too
    /// long: FAILED_PRECONDITION) starts again, twice at most.
    func scan(_ address: String) async throws -> (live: [LiveEntry], tombstones: UInt64) {
        var attempt = 1
        while true {
            do {
                return try await scanOnce(address)
            } catch let error as ShoalError where error.code == .failedPrecondition && attempt < 3 {
                attempt += 1
            }
        }
    }

    private func scanOnce(_ address: String) async throws -> (live: [LiveEntry], tombstones: UInt64) {
        let transport = try nodes.transport(for: address)
        var live: [LiveEntry] = []
        var tombstones: UInt64 = 0
        var token = Data()
        var snapshot: UInt64 = 0
        while true {
            let page = try await transport.call(ShardRPC.scan, .with {
                $0.replica = ref
                $0.pageToken = token
                $0.pageSize = Self.scanPage
                $0.snapshotID = snapshot
                $0.includeTombstones = true
            }, timeout: Self.callTimeout)
            if snapshot == 0 { live.reserveCapacity(Int(min(page.totalEstimate, 1 << 24))) }
            snapshot = page.snapshotID
            for record in page.points {
                if record.tombstone { tombstones += 1 } else { live.append(LiveEntry(id: record.point.id, version: record.version)) }
            }
            if page.done || page.nextPageToken.isEmpty { break }
            token = page.nextPageToken
        }
        return (ReplicaDiff.sortedByID(live), tombstones)
    }

    /// The records (tombstones included) the replica at `address` holds for `ids`, by
    /// id; `full`: with vector and metadata (to copy them).
    func records(_ ids: [String], at address: String, full: Bool) async throws -> [UTF8Key: Shoal_V1_VersionedPoint] {
        let transport = try nodes.transport(for: address)
        var found: [UTF8Key: Shoal_V1_VersionedPoint] = [:]
        for start in stride(from: 0, to: ids.count, by: Self.getBatch) {
            let reply = try await transport.call(ShardRPC.get, .with {
                $0.replica = ref
                $0.ids = Array(ids[start..<min(start + Self.getBatch, ids.count)])
                $0.includeVector = full
                $0.includeMetadata = full
                $0.includeTombstones = true
            }, timeout: Self.callTimeout)
            for record in reply.points { found[UTF8Key(record.point.id)] = record }
        }
        return found
    }

    /// What the replica at `address` holds for each of `ids`, in order.
    func states(_ ids: [String], at address: String) async throws -> [RecordState] {
        let found = try await records(ids, at: address, full: false)
        return ids.map { id in
            guard let record = found[UTF8Key(id)] else { return .absent }
            return record.tombstone ? .deleted(record.version) : .live(record.version)
        }
    }
}

/// One shard's replicas compared: what each holds, and the ids on which they still
/// differ after re-reading.
struct ShardComparison: Sendable {
    let placement: Shoal_V1_ShardPlacement
    /// Per replica (placement order), while comparing: its live points (the scan,
    /// then every re-read id as last re-read), sorted by id bytes. Emptied by
    /// `summarize`, which keeps only their count and digest.
    var live: [[LiveEntry]]
    var points: [UInt64]
    var digests: [UInt64]
    var tombstones: [UInt64]
    /// Per replica: why it could not be read; nil when it was.
    var errors: [String?]
    /// Ids whose difference persisted, in byte order, with each replica's state (nil: unreachable).
    var differing: [(id: String, states: [RecordState?])] = []

    init(_ placement: Shoal_V1_ShardPlacement) {
        self.placement = placement
        let count = placement.replicas.count
        live = Array(repeating: [], count: count)
        points = Array(repeating: 0, count: count)
        digests = Array(repeating: 0, count: count)
        tombstones = Array(repeating: 0, count: count)
        errors = Array(repeating: nil, count: count)
    }

    /// Keeps each replica's point count and digest, and lets go of its points.
    mutating func summarize() {
        for r in live.indices {
            points[r] = UInt64(live[r].count)
            digests[r] = ReplicaDiff.digest(live[r])
        }
        live = Array(repeating: [], count: live.count)
    }

    var reachable: [Int] { errors.indices.filter { errors[$0] == nil } }
    var identical: Bool { errors.allSatisfy { $0 == nil } && differing.isEmpty }

    /// The replicas a repair of `states` (one id) writes to, as placement indices.
    static func behind(_ states: [RecordState?]) -> [Int] {
        let held = states.indices.filter { states[$0] != nil }
        guard let fix = ReplicaDiff.repair(held.map { states[$0]! }) else { return [] }
        return fix.targets.map { held[$0] }
    }

    /// Whether replica `r` holds the same live point as every other reachable replica for every differing id.
    func matches(_ r: Int) -> Bool {
        errors[r] == nil && differing.allSatisfy { d in
            d.states.allSatisfy { other in other == nil || other?.liveVersion == d.states[r]?.liveVersion }
        }
    }
}

extension ReplicaReader {
    /// Scans every replica of `placement` at once (ids and versions only), then
    /// re-reads the ids the scans disagree on (`rereads` times, `rereadPause` apart)
    /// until they agree: only ids that differ in every re-read are reported, and
    /// each replica's digest counts every re-read id as last read. A replica whose
    /// scan or re-read fails is unreachable from then on.
    func compare(_ placement: Shoal_V1_ShardPlacement) async -> ShardComparison {
        var comparison = ShardComparison(placement)
        let scans = await Self.each(placement.replicas.indices.map { ($0, placement.replicas[$0].address) }) { address in
            try await scan(address)
        }
        for (r, result) in scans {
            switch result {
            case .success(let scan): (comparison.live[r], comparison.tombstones[r]) = scan
            case .failure(let error): comparison.errors[r] = Self.reason(error)
            }
        }
        var pending = ReplicaDiff.differingIDs(comparison.reachable.map { comparison.live[$0] })
        var reread: [UTF8Key: [RecordState?]] = [:]
        for round in 0..<Self.rereads where !pending.isEmpty {
            if round > 0 { try? await Task.sleep(for: Self.rereadPause) }
            let states = await readStates(pending, comparison: &comparison)
            pending = pending.enumerated().filter { j, id in
                let row = states.map { $0?[j] }
                reread[UTF8Key(id)] = row
                return !ReplicaDiff.agree(row.compactMap { $0 })
            }.map(\.element)
        }
        comparison.differing = pending.map { ($0, reread[UTF8Key($0)] ?? []) }
        for r in comparison.reachable {
            comparison.live[r] = ReplicaDiff.settled(comparison.live[r], reread: reread.compactMapValues { $0[r] })
        }
        comparison.summarize()
        return comparison
    }

    /// Each reachable replica's states of `ids` (nil for one that is not, or that fails now: it is marked so).
    private func readStates(_ ids: [String], comparison: inout ShardComparison) async -> [[RecordState]?] {
        let targets = comparison.reachable.map { ($0, comparison.placement.replicas[$0].address) }
        let results = await Self.each(targets) { address in try await states(ids, at: address) }
        var read: [[RecordState]?] = Array(repeating: nil, count: comparison.errors.count)
        for (r, result) in results {
            switch result {
            case .success(let states): read[r] = states
            case .failure(let error): comparison.errors[r] = Self.reason(error)
            }
        }
        return read
    }

    static func reason(_ error: any Error) -> String {
        (error as? ShoalError)?.description ?? "\(error)"
    }
}

extension ReplicaReader {
    /// `body` for each (replica index, address) at once; the outcomes by replica index.
    static func each<T: Sendable>(
        _ replicas: [(Int, String)], _ body: @escaping @Sendable (String) async throws -> T
    ) async -> [(Int, Result<T, any Error>)] {
        await withTaskGroup(of: (Int, Result<T, any Error>).self) { group in
            for (r, address) in replicas {
                group.addTask {
                    do { return (r, .success(try await body(address))) } catch { return (r, .failure(error)) }
                }
            }
            var all: [(Int, Result<T, any Error>)] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
    }
}
