import EtcdTestSupport
import GRPCBridge
import Testing
import VectorCore

/// `Server(maxConcurrentCalls:)`: N calls held open, the N+1th refused at once with
/// RESOURCE_EXHAUSTED, an unlimited method (Health) still answered, and a slot freed
/// when a call ends. In `BridgeTests`, whose tests run one at a time (live counters).
extension BridgeTests {
    static let hold = "/shoal.test.Bridge/Hold"
    static let health = "/shoal.test.Bridge/Health"

    @Test func callsOverTheLimitAreRefusedAtOnce() async throws {
        try await BridgeTestGate.run {
            try await callsOverTheLimit()
            try await eventually("bridge objects released (\(BridgeDiagnostics.live()))") { BridgeDiagnostics.live().isEmpty }
        }
    }

    private func callsOverTheLimit() async throws {
        let log = EventLog()
        let limit = 4
        let server = try Server(maxConcurrentCalls: limit)
        try server.register(Self.hold) { request in
            let tag = String(decoding: request.bytes, as: UTF8.self)
            await log.record("started \(tag)")
            try await Task.sleep(for: .seconds(30))  // until cancelled
            return Array(request.bytes)
        }
        try server.register(Self.health, limited: false) { _ in [1] }
        let port = try server.start(host: "127.0.0.1", port: 0)
        let channel = try Channel(target: "127.0.0.1:\(port)")
        var held: [Task<[UInt8], any Error>] = []
        for i in 0..<limit {
            held.append(Task { try await channel.unary(method: Self.hold, request: Array("h\(i)".utf8), timeout: .seconds(60)) })
        }
        for i in 0..<limit { try await eventually("call h\(i) running") { await log.contains("started h\(i)") } }

        let start = ContinuousClock.now
        let error = await #expect(throws: ShoalError.self) {
            _ = try await channel.unary(method: Self.hold, request: Array("over".utf8), timeout: .seconds(20))
        }
        #expect(error?.code == .resourceExhausted)
        #expect(error?.message.contains("\(limit) calls are running") == true)
        #expect(error?.message.contains("--max-concurrent-calls") == true)
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(await !log.contains("started over"))
        #expect(try await channel.unary(method: Self.health, request: [], timeout: .seconds(5)) == [1])

        // One call ends: its slot is free again.
        held[0].cancel()
        try await eventually("a slot is free") { await Self.startsAgain(channel, log: log) }
        for task in held { task.cancel() }
        await server.shutdown(grace: .seconds(2))
    }

    /// Whether a new held call is admitted (it then runs until the server shuts down).
    private static func startsAgain(_ channel: Channel, log: EventLog) async -> Bool {
        let call = Task { try await channel.unary(method: hold, request: Array("again".utf8), timeout: .seconds(3)) }
        let admitted = (try? await eventually(timeout: .seconds(2), "again running") { await log.contains("started again") }) != nil
        call.cancel()
        return admitted
    }
}
