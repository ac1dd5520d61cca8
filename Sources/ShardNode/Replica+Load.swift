import Foundation
import Logging
import VectorCore
import VectorIndex
import VectorStorage

extension Replica {
    /// Rebuilds the replica's memory from RocksDB: the graph from its image (or from
    /// scratch if the image is missing or damaged, which is logged), then every point
    /// written after the image goes to the pending tail for the indexer to replay.
    func load(useImage: Bool = true) throws {
        let start = ContinuousClock.now
        if let fence = try db.get(Keys.fence(number)) { placementFence = try PlacementFence(decoding: fence) }
        // The graph image loads on a thread of its own while the id records are scanned.
        let image = ImageLoad(replica: self, useImage: useImage)
        image.start()
        // Id records: versions, tombstones, the live internal ids and the write sequence.
        let idPrefix = Keys.idPrefix(number)
        let expected = Int(min(db.estimatedKeyCount / 2, 50_000_000))
        ids.reserveCapacity(expected)
        externalIDs.reserveCapacity(expected)
        var liveInternal: [UInt32: UInt64] = [:]  // internal id -> sequence
        liveInternal.reserveCapacity(expected)
        var maxInternal: Int64 = -1
        try db.forEach(prefix: idPrefix) { key, value in
            let record = try IdRecord(decoding: Array(value))
            let externalID = try Keys.externalID(fromIdKey: Array(key), prefixLength: idPrefix.count)
            ids[UTF8Key(externalID)] = record
            committedSequence = max(committedSequence, record.sequence)
            maxVersion = max(maxVersion, record.version)
            if record.internalID != IdRecord.noInternalID { maxInternal = max(maxInternal, Int64(record.internalID)) }
            if record.deleted {
                tombstoneCount += 1
                queueTombstone(UTF8Key(externalID), version: record.version, committed: start)
            } else {
                liveInternal[record.internalID] = record.sequence
                externalIDs[record.internalID] = externalID
            }
            return true
        }
        nextInternalID = UInt32(maxInternal + 1)
        liveCount = liveInternal.count
        let imageSequence = image.finish()

        // Points: metadata for the payload index; vectors written after the image for the graph.
        var replay: [(internalID: UInt32, sequence: UInt64)] = []
        var deletes: [IndexWork] = []
        let pointPrefix = Keys.pointPrefix(number)
        try db.forEach(prefix: pointPrefix) { key, value in
            var decoder = KeyDecoder(Array(key[pointPrefix.count...]))
            let internalID = try decoder.readUInt32()
            guard let sequence = liveInternal[internalID] else { return true }
            payload.set(internalID, try PointRecord.decodeMetadata(value))
            if sequence > imageSequence || !index.contains(id: internalID) {
                pending[internalID] = PendingVector(try PointRecord.decodeVector(value), index: index, sequence: sequence)
                replay.append((internalID, sequence))
            }
            return true
        }

        // Graph nodes that are no longer live (deleted or replaced after the image).
        for id in 0..<UInt32(index.idLimit) where index.contains(id: id) && liveInternal[id] == nil {
            deletes.append(.delete(id))
            unindexedDeletes.insert(id)
        }
        indexedSequence.store(imageSequence, ordering: .relaxed)
        for batch in Self.replayBatches(deletes: deletes, upserts: replay, imageSequence: imageSequence, committed: committedSequence) {
            indexer.enqueue(batch)
        }
        logger.info("replica loaded", metadata: [
            "points": "\(liveCount)", "tombstones": "\(tombstoneCount)", "from_image": "\(index.count)",
            "to_replay": "\(replay.count + deletes.count)", "sequence": "\(committedSequence)", "image_sequence": "\(imageSequence)",
            "seconds": "\((ContinuousClock.now - start).seconds)",
        ])
    }
}

extension Replica {
    /// The replay of a load as batches a stopping indexer can end between: the deletes
    /// first, then the upserts in sequence order, `size` at a time. Each batch is labelled
    /// with the newest sequence whose upserts are all in it or before it (the last batch
    /// with `committed`), so an image saved after any of them names a sequence at which
    /// every live point written up to it is in the graph with its current vector; the
    /// next load replays the rest (later points, and any the graph does not hold).
    static func replayBatches(
        deletes: [IndexWork], upserts: [(internalID: UInt32, sequence: UInt64)],
        imageSequence: UInt64, committed: UInt64, size: Int = 4096
    ) -> [IndexBatch] {
        var batches: [IndexBatch] = []
        let sorted = upserts.sorted { ($0.sequence, $0.internalID) < ($1.sequence, $1.internalID) }
        var label = imageSequence
        if !deletes.isEmpty {
            label = max(label, sorted.first.map { $0.sequence - 1 } ?? committed)
            batches.append(IndexBatch(sequence: label, items: deletes))
        }
        for start in stride(from: 0, to: sorted.count, by: size) {
            let end = min(start + size, sorted.count)
            let covered = end == sorted.count ? committed : sorted[end].sequence - 1
            label = max(label, covered)
            batches.append(IndexBatch(sequence: label, items: sorted[start..<end].map { .upsert($0.internalID, $0.sequence) }))
        }
        return batches
    }
}

/// Reads and decodes a replica's graph image on its own thread; `finish` installs
/// it (or a fresh graph if it is missing or damaged, which is logged) and returns
/// the sequence it covers.
private final class ImageLoad: @unchecked Sendable {
    // @unchecked: `result` is written by the thread before `done` is signalled and read after.
    private let replica: Replica
    private let useImage: Bool
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<(GraphImage.Header, HNSWIndex)?, any Error> = .success(nil)

    init(replica: Replica, useImage: Bool) {
        self.replica = replica
        self.useImage = useImage
    }

    func start() {
        guard useImage else {
            done.signal()
            return
        }
        Thread { [self] in
            result = Result {
                guard let (header, bytes) = try GraphImage.read(replica: replica.number, db: replica.db) else { return nil }
                let loaded = try HNSWIndex(image: bytes)
                guard loaded.dimension == replica.config.dimension, loaded.metric == replica.config.metric else {
                    throw ShoalError(.dataLoss, "graph image is for dimension \(loaded.dimension) \(loaded.metric)")
                }
                return (header, loaded)
            }
            done.signal()
        }.start()
    }

    func finish() -> UInt64 {
        done.wait()
        switch result {
        case .success(let (header, index)?):
            replica.index = index
            replica.imageSequence.store(header.sequence, ordering: .relaxed)
            replica.imageTimeMs.store(header.timeMs, ordering: .relaxed)
            return header.sequence
        case .success(nil):
            replica.logger.info("no graph image: building the graph from the stored points")
        case .failure(let error):
            replica.logger.warning("graph image unusable, rebuilding the graph from the stored points", metadata: ["error": "\(error)"])
        }
        return 0
    }
}
