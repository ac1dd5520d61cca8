import Foundation
import Testing
import VectorStorage

/// Kills a child that writes synced batches (`shoal-test-helpers storage-writer`) with
/// SIGKILL at seeded random points, reopens the database after each kill, and checks the
/// two promises of `write(_:sync: true)`: a reported batch is fully present, and no batch
/// is ever half applied.
@Suite struct CrashTests {
    static let batchSize = 24
    static let cycles = 6
    static let seed: UInt64 = 0x5EED

    @Test func syncedBatchesSurviveSIGKILLWhole() throws {
        let helper = try Self.helperPath()
        try withTemporaryDirectory { root in
            let dbPath = root + "/db"
            var rng = SeededGenerator(seed: Self.seed)
            var reported = Set<UInt64>()  // every batch a child said was committed
            var killedMidWrite = 0

            for cycle in 0..<Self.cycles {
                // 0 kills right after the child opened the database (during its first batch).
                let target = Int.random(in: 0...30, using: &rng)
                let child = try ChildProcess(
                    executable: helper,
                    arguments: [
                        "storage-writer", "--path", dbPath, "--batch-size", "\(Self.batchSize)", "--seed", "\(Self.seed)",
                        "--flush-every", "5",
                    ],
                    stderrPath: root + "/writer.stderr"
                )
                let ready = try child.readLine(timeout: .seconds(60))
                try #require(ready?.hasPrefix("ready ") == true, "child said \(ready ?? "nothing"): \(Self.stderr(root))")
                var seen = 0
                while seen < target {
                    guard let line = try child.readLine(timeout: .seconds(60)) else { break }
                    if let batch = Self.committedBatch(line) {
                        reported.insert(batch)
                        seen += 1
                    }
                }
                let status = child.killAndReap()
                #expect(status & 0x7F == SIGKILL, "child ended with status \(status), not by SIGKILL: \(Self.stderr(root))")
                // Lines written before the kill but not yet read still count as reported.
                for line in child.drainLines() {
                    if let batch = Self.committedBatch(line) { reported.insert(batch) }
                }

                let present = try Self.verify(dbPath: dbPath, cycle: cycle)
                #expect(reported.isSubset(of: present), "cycle \(cycle): reported batches missing after the kill")
                let maxReported = reported.max().map { Int($0) } ?? -1
                // At most one batch beyond the last report: written, killed before printing.
                if present.count == maxReported + 2 { killedMidWrite += 1 }
                #expect(present.count <= maxReported + 2, "cycle \(cycle): \(present.count) batches, last reported \(maxReported)")
            }
            #expect(reported.count > 0)

            // A last run exits by itself and continues the numbering.
            let before = try Self.verify(dbPath: dbPath, cycle: Self.cycles).count
            let child = try ChildProcess(
                executable: helper,
                arguments: [
                    "storage-writer", "--path", dbPath, "--batches", "3", "--batch-size", "\(Self.batchSize)",
                    "--seed", "\(Self.seed)",
                ],
                stderrPath: root + "/writer.stderr"
            )
            let lines = child.drainLines()
            #expect(child.waitForExit() == 0, "\(Self.stderr(root))")
            #expect(lines == ["ready \(before)"] + (before..<before + 3).map { "committed \($0)" })
            #expect(try Self.verify(dbPath: dbPath, cycle: Self.cycles + 1).count == before + 3)
            print("crash test: \(Self.cycles) kill cycles, \(reported.count) batches reported, "
                + "\(killedMidWrite) kills after a write but before its report")
        }
    }

    private static func committedBatch(_ line: String) -> UInt64? {
        line.hasPrefix("committed ") ? UInt64(line.dropFirst("committed ".count)) : nil
    }

    /// Reopens the database and checks every batch is whole; returns the batches present,
    /// which must be 0..<n (the writer commits them in order, each after the previous).
    private static func verify(dbPath: String, cycle: Int) throws -> Set<UInt64> {
        let db = try Database(path: dbPath)
        var markers = Set<UInt64>()
        for entry in try db.scan(prefix: Array("marker/".utf8), limit: 1_000_000).entries {
            let batch = try #require(UInt64(String(decoding: entry.key.dropFirst(7), as: UTF8.self)))
            #expect(entry.value == Array("\(batchSize)".utf8), "cycle \(cycle): marker \(batch)")
            markers.insert(batch)
        }
        var keysPerBatch = [UInt64: Int]()
        for entry in try db.scan(prefix: Array("batch/".utf8), limit: 1_000_000).entries {
            let parts = String(decoding: entry.key, as: UTF8.self).split(separator: "/")
            let batch = try #require(UInt64(parts[1])), index = try #require(UInt32(parts[2]))
            let intact = entry.value == Oracle.value(seed: seed, batch: batch, index: index)
            #expect(intact, "cycle \(cycle): value of \(batch)/\(index) differs from the oracle")
            keysPerBatch[batch, default: 0] += 1
        }
        #expect(Set(keysPerBatch.keys) == markers, "cycle \(cycle): a batch has keys without its marker or the reverse")
        for (batch, count) in keysPerBatch {
            #expect(count == batchSize, "cycle \(cycle): batch \(batch) is half applied (\(count) of \(batchSize) keys)")
        }
        #expect(markers == Set((0..<UInt64(markers.count))), "cycle \(cycle): batches are not a contiguous run from 0")
        return markers
    }

    /// The helper sits in the same build folder as the test bundle (`.build/debug/`).
    static func helperPath() throws -> String {
        var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        if let executable = Bundle.main.executableURL { candidates.append(executable.deletingLastPathComponent()) }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        var looked = [String]()
        for start in candidates {
            var directory = start.standardizedFileURL
            for _ in 0..<4 {  // the bundle may nest the executable (…/X.xctest/Contents/MacOS)
                let path = directory.appendingPathComponent("shoal-test-helpers").path
                looked.append(path)
                if FileManager.default.isExecutableFile(atPath: path) { return path }
                directory.deleteLastPathComponent()
            }
        }
        throw ChildProcess.Failure(description: """
            shoal-test-helpers not found next to the test bundle; build it first \
            (`swift build --product shoal-test-helpers`). Looked at: \(looked.joined(separator: ", "))
            """)
    }

    private static func stderr(_ root: String) -> String {
        (try? String(contentsOfFile: root + "/writer.stderr", encoding: .utf8)) ?? ""
    }

    /// An independent copy of the writer's value function (`StorageWriterFormat.value`).
    enum Oracle {
        static func value(seed: UInt64, batch: UInt64, index: UInt32) -> [UInt8] {
            var rng = SeededGenerator(seed: seed ^ (batch &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(index) &* 0xC2B2_AE3D_27D4_EB4F))
            let count = 64 + Int(rng.next() % 256)
            return (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        }
    }
}
