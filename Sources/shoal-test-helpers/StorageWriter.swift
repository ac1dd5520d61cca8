import ArgumentParser
import VectorStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes synced batches in a loop for the crash test (`VectorStorageTests`), which kills
/// this process with SIGKILL at a random moment and then checks what survived.
///
/// Batch `b` puts `batch-size` keys `b/0 … b/(K-1)` (see ``StorageWriterFormat``) and a
/// marker key, in one `WriteBatch`, written with `sync: true`. Only after that write
/// returns does it print `committed b` and flush stdout. Batches continue from the
/// highest marker already in the database, so runs can append to the same directory.
struct StorageWriter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage-writer",
        abstract: "Write synced batches to a RocksDB directory until killed (crash-test child)."
    )

    @Option(help: "Database directory (created if missing).")
    var path: String

    @Option(help: "Number of batches to write before exiting (0: until killed).")
    var batches: Int = 0

    @Option(name: .customLong("batch-size"), help: "Keys per batch, besides the marker.")
    var batchSize: Int = 16

    @Option(help: "Seed of the value contents.")
    var seed: UInt64 = 1

    @Option(name: .customLong("flush-every"), help: "Flush memtables to SST files every N batches (0: never), so kills also land in flushes.")
    var flushEvery: Int = 0

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        guard batches >= 0 else { throw ValidationError("--batches must not be negative") }
        guard flushEvery >= 0 else { throw ValidationError("--flush-every must not be negative") }
    }

    func run() async throws {
        let db = try Database(path: path)
        var next = try StorageWriterFormat.nextBatch(in: db)
        let end = batches == 0 ? UInt64.max : next + UInt64(batches)
        let batch = WriteBatch()
        emit("ready \(next)")
        while next < end {
            batch.clear()
            for index in 0..<UInt32(batchSize) {
                batch.put(
                    StorageWriterFormat.key(batch: next, index: index),
                    StorageWriterFormat.value(seed: seed, batch: next, index: index)
                )
            }
            batch.put(StorageWriterFormat.markerKey(batch: next), StorageWriterFormat.marker(seed: seed, batchSize: batchSize))
            try db.write(batch, sync: true)
            emit("committed \(next)")
            next += 1
            if flushEvery > 0 && next % UInt64(flushEvery) == 0 { try db.flush() }
        }
    }
}

/// The crash test's data layout. `Tests/VectorStorageTests/CrashTests.swift` keeps its
/// own copy as the oracle; change both together.
///   `batch/<b>/<i>` → `value(seed, b, i)` for i in 0..<K
///   `marker/<b>`    → `"K"` (the batch size, decimal)
/// Writes `line` and a newline straight to file descriptor 1 (no stdio buffer to flush),
/// so the parent sees it as soon as this returns.
private func emit(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 {
            if errno == EINTR { continue }
            return  // the parent went away; nothing useful to do
        }
        offset += written
    }
}

enum StorageWriterFormat {
    static func key(batch: UInt64, index: UInt32) -> [UInt8] { Array("batch/\(batch)/\(index)".utf8) }

    static func markerKey(batch: UInt64) -> [UInt8] { Array("marker/\(batch)".utf8) }

    static func marker(seed: UInt64, batchSize: Int) -> [UInt8] { Array("\(batchSize)".utf8) }

    /// 64 to 319 bytes from a SplitMix64 stream seeded by (seed, batch, index).
    static func value(seed: UInt64, batch: UInt64, index: UInt32) -> [UInt8] {
        var state = seed ^ (batch &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(index) &* 0xC2B2_AE3D_27D4_EB4F)
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let count = 64 + Int(next() % 256)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) }
    }

    /// One past the highest batch whose marker is in the database (0 if none).
    static func nextBatch(in db: Database) throws -> UInt64 {
        var next: UInt64 = 0
        try db.forEach(prefix: Array("marker/".utf8)) { key, _ in
            if let batch = UInt64(String(decoding: key.dropFirst("marker/".utf8.count), as: UTF8.self)) {
                next = max(next, batch + 1)
            }
            return true
        }
        return next
    }
}
