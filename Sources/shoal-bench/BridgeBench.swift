import ArgumentParser
import Foundation
import GRPCBridge
import VectorCore

/// Unary round trips through the C++ bridge over loopback: latency one call at a
/// time, and calls/s with many in flight; then the same server driven by a Python
/// grpcio client (scripts/bench_bridge_client.py) for comparison.
struct BridgeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bridge",
        abstract: "gRPC bridge round-trip latency and throughput (Swift and Python clients).")

    @Option(help: "Sequential calls measured for latency.") var calls = 5_000
    @Option(help: "Calls for the throughput run.") var throughputCalls = 50_000
    @Option(help: "Calls in flight during the throughput run.") var inFlight = 64
    @Option(help: "Request and response size in bytes.") var payload = 256
    @Option(help: "Python interpreter with grpcio (empty: skip the Python client).") var python = ".venv/bin/python"
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let method = "/shoal.bench.Bridge/Echo"
        let server = try Server()
        try server.register(method) { $0.bytes }
        let port = try server.start()
        let channel = try Channel(target: "127.0.0.1:\(port)")
        let request = [UInt8](repeating: 0x5A, count: payload)

        for _ in 0..<500 { _ = try await channel.unary(method: method, request: request) }  // warm-up
        var latencies: [Double] = []
        latencies.reserveCapacity(calls)
        for _ in 0..<calls {
            let start = ContinuousClock.now
            _ = try await channel.unary(method: method, request: request)
            latencies.append((ContinuousClock.now - start).seconds * 1e6)
        }
        latencies.sort()
        let throughput = try await Self.throughput(channel, method: method, request: request, calls: throughputCalls, inFlight: inFlight)

        var result: [String: Any] = [
            "payload_bytes": payload,
            "swift": [
                "p50_us": percentile(latencies, 0.50), "p99_us": percentile(latencies, 0.99),
                "calls_per_s": throughput, "in_flight": inFlight,
            ],
        ]
        if !python.isEmpty {
            result["python"] = try Self.pythonClient(python, port: port, method: method, payload: payload, inFlight: inFlight)
        }
        await server.shutdown()
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for (client, figures) in result.sorted(by: { $0.key < $1.key }) {
                guard let figures = figures as? [String: Any] else { continue }
                print("\(client): " + figures.sorted { $0.key < $1.key }.map { "\($0.key)=\(format($0.value))" }.joined(separator: " "))
            }
        }
    }

    private static func throughput(_ channel: Channel, method: String, request: [UInt8], calls: Int, inFlight: Int) async throws -> Double {
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            var started = 0
            for _ in 0..<min(inFlight, calls) {
                group.addTask { _ = try await channel.unary(method: method, request: request) }
                started += 1
            }
            while try await group.next() != nil, started < calls {
                group.addTask { _ = try await channel.unary(method: method, request: request) }
                started += 1
            }
            try await group.waitForAll()
        }
        return Double(calls) / (ContinuousClock.now - start).seconds
    }

    private static func pythonClient(_ python: String, port: Int, method: String, payload: Int, inFlight: Int) throws -> Any {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../scripts/bench_bridge_client.py").standardized.path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--target", "127.0.0.1:\(port)", "--method", method,
                             "--payload", "\(payload)", "--in-flight", "\(inFlight)"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ShoalError(.internal, "the Python client failed") }
        return try JSONSerialization.jsonObject(with: data)
    }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

private func format(_ value: Any) -> String {
    if let d = value as? Double { return String(format: "%.1f", d) }
    return "\(value)"
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
