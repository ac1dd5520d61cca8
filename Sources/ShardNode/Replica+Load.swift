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
        var imageSequence: UInt64 = 0
        do {
            if useImage, let (header, bytes) = try GraphImage.read(replica: number, db: db) {
                let loaded = try HNSWIndex(image: bytes)
                guard loaded.dimension == config.dimension, loaded.metric == config.metric else {
                    throw ShoalError(.dataLoss, "graph image is for dimension \(loaded.dimension) \(loaded.metric)")
                }
                index = loaded
                imageSequence = header.sequence
                self.imageSequence.store(header.sequence, ordering: .relaxed)
                imageTimeMs.store(header.timeMs, ordering: .relaxed)
            } else {
                logger.info("no graph image: building the graph from the stored points")
            }
        } catch {
            logger.warning("graph image unusable, rebuilding the graph from the stored points", metadata: ["error": "\(error)"])
            index = HNSWIndex(dimension: config.dimension, metric: config.metric, params: config.hnsw, capacity: index.capacity)
            imageSequence = 0
        }

        // Id records: versions, tombstones, the live internal ids and the write sequence.
        let idPrefix = Keys.idPrefix(number)
        var liveInternal: [UInt32: UInt64] = [:]  // internal id -> sequence
        var maxInternal: Int64 = -1
        try db.forEach(prefix: idPrefix) { key, value in
            let record = try IdRecord(decoding: Array(value))
            let externalID = try Keys.externalID(fromIdKey: Array(key), prefixLength: idPrefix.count)
            ids[externalID] = record
            committedSequence = max(committedSequence, record.sequence)
            maxVersion = max(maxVersion, record.version)
            if record.internalID != IdRecord.noInternalID { maxInternal = max(maxInternal, Int64(record.internalID)) }
            if record.deleted {
                tombstoneCount += 1
            } else {
                liveInternal[record.internalID] = record.sequence
                externalIDs[record.internalID] = externalID
            }
            return true
        }
        nextInternalID = UInt32(maxInternal + 1)
        liveCount = liveInternal.count

        // Points: metadata for the payload index; vectors written after the image for the graph.
        var replay: [IndexWork] = []
        try db.forEach(prefix: Keys.pointPrefix(number)) { _, value in
            let point = try PointRecord(decoding: Array(value))
            guard let record = ids[point.id], !record.deleted, let sequence = liveInternal[record.internalID] else { return true }
            payload.set(record.internalID, point.metadata)
            if sequence > imageSequence || !index.contains(id: record.internalID) {
                pending[record.internalID] = PendingVector(point.vector, index: index, sequence: sequence)
                replay.append(.upsert(record.internalID, sequence))
            }
            return true
        }

        // Graph nodes that are no longer live (deleted or replaced after the image).
        for id in 0..<UInt32(index.idLimit) where index.contains(id: id) && liveInternal[id] == nil {
            replay.append(.delete(id))
            unindexedDeletes += 1
        }
        indexedSequence.store(imageSequence, ordering: .relaxed)
        if !replay.isEmpty { indexer.enqueue(IndexBatch(sequence: committedSequence, items: replay)) }
        logger.info("replica loaded", metadata: [
            "points": "\(liveCount)", "tombstones": "\(tombstoneCount)", "from_image": "\(index.count)",
            "to_replay": "\(replay.count)", "sequence": "\(committedSequence)", "image_sequence": "\(imageSequence)",
            "seconds": "\((ContinuousClock.now - start).seconds)",
        ])
    }
}
