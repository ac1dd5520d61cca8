import Coordinator
import Foundation
import Logging
import Testing

/// A fresh directory under the system's temporary folder.
func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-coord-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func bytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

func write(_ path: String, _ contents: [UInt8]) { _ = FileManager.default.createFile(atPath: path, contents: Data(contents)) }

let quietLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

@Suite struct ClusterStateStoreTests {
    @Test func crc32cCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func roundTripAcrossStoreInstances() throws {
        let dir = temporaryDirectory()
        let store = try ClusterStateStore(directory: dir, logger: quietLogger)
        #expect(try store.load() == nil)
        let state = try sampleState()
        try store.save(state)
        let reopened = try ClusterStateStore(directory: dir, logger: quietLogger)
        #expect(try reopened.load() == state)
        #expect(!FileManager.default.fileExists(atPath: store.tempPath))
    }

    @Test func newerSaveReplacesOlder() throws {
        let dir = temporaryDirectory()
        let store = try ClusterStateStore(directory: dir, logger: quietLogger)
        var state = try sampleState()
        try store.save(state)
        try state.setNodeState("n3", .draining)
        try store.save(state)
        #expect(try ClusterStateStore(directory: dir, logger: quietLogger).load() == state)
    }

    /// A save that crashed mid-write leaves a partial temporary file: the
    /// previous state loads intact and the leftover is removed.
    @Test func halfWrittenTempFileDoesNotAffectTheLoadedState() throws {
        let dir = temporaryDirectory()
        let store = try ClusterStateStore(directory: dir, logger: quietLogger)
        let old = try sampleState()
        try store.save(old)
        var new = old
        try new.setNodeState("n1", .draining)
        let full = try ClusterStateFile.encode(new)
        write(store.tempPath, Array(full.prefix(full.count / 2)))
        let reopened = try ClusterStateStore(directory: dir, logger: quietLogger)
        #expect(try reopened.load() == old)
        #expect(!FileManager.default.fileExists(atPath: store.tempPath))
        try reopened.save(new)  // and the next save goes through
        #expect(try ClusterStateStore(directory: dir, logger: quietLogger).load() == new)
    }

    @Test func corruptFilesAreReportedNeverReset() throws {
        let dir = temporaryDirectory()
        let store = try ClusterStateStore(directory: dir, logger: quietLogger)
        try store.save(try sampleState())
        let good = bytes(store.statePath)
        var flipped = good
        flipped[good.count / 2] ^= 0x01
        let damaged: [(String, [UInt8])] = [
            ("checksum mismatch", flipped),
            ("truncated", Array(good.prefix(good.count - 10))),
            ("the file is empty", []),
            ("no header line", Array("garbage without a newline".utf8)),
            ("not a Shoal cluster state file", Array("{\"epoch\": 1}\n{}".utf8)),
            ("truncated", good + Array("x".utf8)),
            ("format version 9", Array(String(decoding: good, as: UTF8.self)
                .replacingOccurrences(of: "shoal-cluster-state 1 ", with: "shoal-cluster-state 9 ").utf8)),
        ]
        for (expected, contents) in damaged {
            write(store.statePath, contents)
            let error = #expect(throws: ClusterStateStoreError.self) {
                _ = try ClusterStateStore(directory: dir, logger: quietLogger).load()
            }
            guard case .corrupt(let path, let reason)? = error else {
                Issue.record("expected .corrupt for \(expected), got \(String(describing: error))")
                continue
            }
            #expect(path == store.statePath)
            #expect(reason.contains(expected), "\(reason)")
            #expect(error!.description.contains("Refusing to start"))
        }
    }

    @Test func checksumValidButInconsistentStateIsCorrupt() throws {
        // A body that decodes but breaks an invariant (a replica on an unknown node).
        let body = Array("""
            {"collections":{"c":{"config":{"dimension":2,"hnsw":{"ef":64,"efConstruction":200,"m":16},"metric":"l2",\
            "name":"c","replicationFactor":1,"shardCount":1},"shards":[{"replicas":[{"nodeId":"ghost","state":"ready"}],\
            "shardId":0}]}},"epoch":3,"nodes":{}}
            """.utf8)
        let crc = String(CRC32C.checksum(body), radix: 16)
        let file = Array("shoal-cluster-state 1 \(body.count) \(String(repeating: "0", count: 8 - crc.count) + crc)\n".utf8) + body
        let error = #expect(throws: ClusterStateStoreError.self) { try ClusterStateFile.decode(file, path: "p") }
        guard case .corrupt(_, let reason)? = error else { Issue.record("not corrupt"); return }
        #expect(reason.contains("ghost"))
    }

    @Test func refusesToSaveAnOlderEpoch() throws {
        let dir = temporaryDirectory()
        let store = try ClusterStateStore(directory: dir, logger: quietLogger)
        let old = try sampleState()
        var new = old
        try new.setNodeState("n1", .draining)
        try store.save(new)
        #expect(throws: ClusterStateStoreError.staleEpoch(saved: new.epoch, given: old.epoch)) { try store.save(old) }
        #expect(try ClusterStateStore(directory: dir, logger: quietLogger).load() == new)
    }
}
