import ArgumentParser
import Foundation
import GRPCBridge
import ShoalProto
import ShoalRPC
import VectorCore

/// One `shoal node` process: durable ingest through gRPC, time until the graph has
/// caught up, restart time from the graph image and with a rebuild, peak memory.
struct NodeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Ingest, indexing and restart of one shard node.",
        discussion: "Example: swift run -c release shoal-bench node --points 1000000 --dim 128")

    @Option(help: "Points to ingest.") var points = 1_000_000
    @Option(help: "Vector dimension.") var dim = 128
    @Option(help: "Points per write batch.") var batch = 1000
    @Option(help: "Concurrent writers.") var writers = 4
    @Option(help: "Data folder (default: a new temporary one, removed afterwards).") var data: String?
    @Flag(help: "Acknowledge before fsync (the node's --no-sync).") var noSync = false
    @Flag(help: "Skip the rebuild measurement.") var skipRebuild = false
    @Option(help: "Seconds to wait for the graph to catch up.") var indexTimeout = 3600.0

    func run() async throws {
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("shoal").path
        guard FileManager.default.isExecutableFile(atPath: bin) else {
            throw ValidationError("no shoal binary next to shoal-bench (\(bin)): swift build -c release --product shoal")
        }
        let dir = data ?? FileManager.default.temporaryDirectory.appendingPathComponent("shoal-nodebench-\(UUID())").path
        defer { if data == nil { try? FileManager.default.removeItem(atPath: dir) } }
        var report: [String: Any] = ["points": points, "dim": dim, "batch": batch, "writers": writers, "sync": !noSync]

        var node = try NodeProcess(bin: bin, data: dir, extra: noSync ? ["--no-sync"] : [])
        let channel = try Channel(target: node.address)
        let ref = Shoal_V1_ReplicaRef.with { $0.collection = "bench"; $0.shardID = 0 }
        _ = try await channel.call(ShardRPC.createReplica, .with {
            $0.config = .with { $0.name = "bench"; $0.dimension = UInt32(dim); $0.metric = .l2 }
        })

        let start = ContinuousClock.now
        try await ingest(channel, ref: ref)
        let ingestSeconds = (ContinuousClock.now - start).seconds
        report["ingest_seconds"] = ingestSeconds
        report["ingest_points_per_s"] = Double(points) / ingestSeconds
        log("ingested \(points) points in \(fmt(ingestSeconds)) s: \(Int(Double(points) / ingestSeconds)) points/s")

        let caughtUp = try await waitForIndex(channel, ref: ref)
        report["index_caught_up_after_start_s"] = (caughtUp - start).seconds
        report["index_caught_up_after_ingest_s"] = (caughtUp - start).seconds - ingestSeconds
        log("graph caught up \(fmt((caughtUp - start).seconds - ingestSeconds)) s after the last write")
        report["peak_rss_mb_ingest"] = node.peakRSSMegabytes()

        // Clean stop (saves the image), then restart from it.
        node.terminate()
        let restart = ContinuousClock.now
        node = try NodeProcess(bin: bin, data: dir, extra: [])
        report["restart_from_image_s"] = (ContinuousClock.now - restart).seconds
        let channel2 = try Channel(target: node.address)
        let lag = try await channel2.call(ShardRPC.stats, .with { $0.replica = ref }).replicas.first?.indexingLag ?? 0
        report["restart_from_image_lag"] = lag
        report["peak_rss_mb_restart"] = node.peakRSSMegabytes()
        log("restart from the image: \(fmt((ContinuousClock.now - restart).seconds)) s (lag after load: \(lag))")
        node.terminate()

        if !skipRebuild {
            let rebuild = ContinuousClock.now
            node = try NodeProcess(bin: bin, data: dir, extra: ["--ignore-images"])
            let serving = (ContinuousClock.now - rebuild).seconds
            let done = try await waitForIndex(try Channel(target: node.address), ref: ref)
            report["rebuild_serving_s"] = serving
            report["rebuild_graph_s"] = (done - rebuild).seconds
            log("rebuild: serving after \(fmt(serving)) s, graph complete after \(fmt((done - rebuild).seconds)) s")
            node.terminate()
        }
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: json, as: UTF8.self))
    }

    private func ingest(_ channel: Channel, ref: Shoal_V1_ReplicaRef) async throws {
        let batches = (points + batch - 1) / batch
        let next = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<writers {
                group.addTask {
                    while let b = next.take(below: batches) {
                        var request = Shoal_V1_WriteBatchRequest()
                        request.replica = ref
                        var rng = SplitMix64(seed: UInt64(b) &* 0x9E37_79B9)
                        let first = b * batch
                        request.ops = (first..<min(first + batch, points)).map { i in
                            Shoal_V1_WriteOp.with {
                                $0.version = 1
                                $0.upsert = .with {
                                    $0.id = "p\(i)"
                                    $0.vector = (0..<dim).map { _ in rng.nextFloat() }
                                    $0.metadata = ["group": .with { $0.intValue = Int64(i % 100) }]
                                }
                            }
                        }
                        _ = try await channel.call(ShardRPC.writeBatch, request, timeout: .seconds(120))
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private func waitForIndex(_ channel: Channel, ref: Shoal_V1_ReplicaRef) async throws -> ContinuousClock.Instant {
        let deadline = ContinuousClock.now + .seconds(indexTimeout)
        while ContinuousClock.now < deadline {
            let stats = try await channel.call(ShardRPC.stats, .with { $0.replica = ref }).replicas.first
            if let stats, stats.indexingLag == 0, stats.indexedPoints == stats.points { return ContinuousClock.now }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw ValidationError("the graph did not catch up within \(indexTimeout) s")
    }

    private func log(_ line: String) { FileHandle.standardError.write(Data("node-bench: \(line)\n".utf8)) }
    private func fmt(_ x: Double) -> String { String(format: "%.2f", x) }
}

/// A `shoal node` child process on 127.0.0.1, ready when it has written its port file.
struct NodeProcess {
    let process: Process
    let address: String

    init(bin: String, data: String, extra: [String]) throws {
        let portFile = data + "/port"
        try? FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: portFile)
        process = Process()
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = ["node", "--listen", "127.0.0.1:0", "--data", data, "--port-file", portFile, "--log-level", "warning"] + extra
        try process.run()
        let deadline = Date().addingTimeInterval(600)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                address = "127.0.0.1:\(port)"
                return
            }
            guard process.isRunning else { throw ValidationError("shoal node exited with \(process.terminationStatus)") }
            Thread.sleep(forTimeInterval: 0.01)
        }
        process.terminate()
        throw ValidationError("shoal node did not start")
    }

    /// VmHWM of the process (peak resident set), in MiB.
    func peakRSSMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kb / 1024
    }

    func terminate() {
        process.terminate()
        process.waitUntilExit()
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func take(below limit: Int) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}

extension SplitMix64 {
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}
