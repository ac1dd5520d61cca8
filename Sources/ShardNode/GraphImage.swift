import Foundation
import Synchronization
import VectorCore
import VectorStorage

/// The persisted HNSW graph of a replica, in 4 MiB chunks under the replica's prefix,
/// with a header naming the replica write sequence it covers. The image checks its
/// own integrity (VectorIndex's checksum over every byte); this layer checks the length.
///
///     header: u64 sequence, u64 length, u32 chunks, u64 unix ms
///
/// Headers written before this layout have a zero u64 between the chunk count and the
/// time (36 bytes); they are still read.
enum GraphImage {
    static let chunkSize = 4 << 20
    /// Bytes per second the saves so far wrote (the last one; 100 MB/s until one has),
    /// to judge whether a final image fits in the stop's time budget.
    static let writeRate = Atomic<Int>(100_000_000)

    static func observe(bytes: Int, took: Duration) {
        guard bytes >= 1 << 20, took.seconds > 0 else { return }  // small saves are all overhead
        writeRate.store(max(1 << 20, Int(Double(bytes) / took.seconds)), ordering: .relaxed)
    }

    struct Header {
        var sequence: UInt64
        var length: UInt64
        var chunks: UInt32
        var timeMs: UInt64
    }

    static func write(_ bytes: [UInt8], sequence: UInt64, replica: UInt32, db: Database) throws {
        let batch = WriteBatch()
        try batch.deletePrefix(Keys.imageChunkPrefix(replica))
        var chunks: UInt32 = 0
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + chunkSize, bytes.count)
            bytes.withUnsafeBytes { raw in
                batch.put(Keys.imageChunk(replica, chunks), bytes: UnsafeRawBufferPointer(rebasing: raw[offset..<end]))
            }
            chunks += 1
            offset = end
        }
        var header = [UInt8]()
        header.appendBigEndian(sequence)
        header.appendBigEndian(UInt64(bytes.count))
        header.appendBigEndian(chunks)
        header.appendBigEndian(UInt64(Date().timeIntervalSince1970 * 1000))
        batch.put(Keys.imageHeader(replica), header)
        try db.write(batch, sync: false)  // a cache of the points: losing it costs a rebuild, never data
    }

    /// The image and its header, or nil if there is none. Throws if it is damaged.
    static func read(replica: UInt32, db: Database) throws -> (Header, [UInt8])? {
        guard let raw = try db.get(Keys.imageHeader(replica)) else { return nil }
        guard raw.count == 28 || raw.count == 36 else { throw ShoalError(.dataLoss, "graph image header of \(raw.count) bytes") }
        let header = Header(
            sequence: raw.readBigEndian(at: 0), length: raw.readBigEndian(at: 8), chunks: raw.readBigEndian(at: 16),
            timeMs: raw.readBigEndian(at: raw.count - 8))
        var bytes = [UInt8]()
        bytes.reserveCapacity(Int(header.length))
        for chunk in 0..<header.chunks {
            guard let part = try db.get(Keys.imageChunk(replica, chunk)) else {
                throw ShoalError(.dataLoss, "graph image chunk \(chunk) of \(header.chunks) is missing")
            }
            bytes.append(contentsOf: part)
        }
        guard bytes.count == Int(header.length) else {
            throw ShoalError(.dataLoss, "graph image of \(bytes.count) bytes, its header says \(header.length)")
        }
        return (header, bytes)
    }
}
